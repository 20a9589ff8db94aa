//! The server store: the engine's [`Store`] contract on PostgreSQL (15+), for deployments where
//! several processes or hosts share one ledger, or where operations wants the journal in a
//! database it already backs up and monitors. Same tables and columns as the SQLite store, so
//! reports and tooling read either.
//!
//! Writers are serialized by a transaction-scoped advisory lock taken in [`Store::begin`]: it is
//! released by the server on COMMIT, ROLLBACK or a dropped connection, so a crashed writer can
//! never leave the ledger locked. As with SQLite, the journal's primary key is the backstop: a
//! batch is inserted at explicit sequence numbers, so a writer that is behind gets a
//! [`StoreError::Conflict`], never a fork. Journal rows are protected against UPDATE, DELETE and
//! TRUNCATE by a trigger.
//!
//! Uses the synchronous `postgres` client without TLS (`NoTls`): the store is meant to talk to a
//! database on the same host or a private network; put a TLS-terminating proxy in between
//! otherwise.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use ordo_domain::StockRow;
use ordo_domain::inventory::Buckets;
use ordo_engine::{AvailabilityRow, CommitBatch, Store, StoreError, availability_message};
use ordo_types::{Code, Sku, Timestamp};
use postgres::error::SqlState;
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, NoTls, Statement};

/// Re-exported so callers (tests, the CLI) can run raw SQL on [`PostgresStore::client`] and parse
/// connection strings without depending on a second copy of the crate.
pub use postgres;

const SCHEMA_VERSION: i64 = 1;

/// The advisory-lock key every Ordo writer takes ("ORDO" in ASCII). Advisory locks are scoped to
/// one database, so ledgers in different databases of one server never wait on each other.
const WRITER_LOCK: i64 = 0x4f52_444f;

/// Same wait as the SQLite store's busy timeout: a writer stuck behind another for longer than
/// this gets an error instead of hanging its callers forever.
const LOCK_TIMEOUT: &str = "30s";

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS ordo_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS journal (
    seq         BIGINT PRIMARY KEY CHECK (seq > 0),
    recorded_at BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    sku         TEXT,
    payload     BYTEA NOT NULL,
    chain       BYTEA
);
ALTER TABLE journal ADD COLUMN IF NOT EXISTS chain BYTEA;
CREATE INDEX IF NOT EXISTS journal_by_sku ON journal (sku, seq);
CREATE OR REPLACE FUNCTION ordo_journal_is_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'journal rows cannot be updated or deleted (attempted %)', TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;
-- Statement level, so even an UPDATE or DELETE matching no row is refused: nothing may try.
CREATE OR REPLACE TRIGGER journal_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON journal
    FOR EACH STATEMENT EXECUTE FUNCTION ordo_journal_is_append_only();
CREATE TABLE IF NOT EXISTS stock_balance (
    sku             TEXT NOT NULL,
    location        TEXT NOT NULL,
    available       BIGINT NOT NULL,
    committed       BIGINT NOT NULL,
    picked          BIGINT NOT NULL,
    reserved        BIGINT NOT NULL,
    quality_control BIGINT NOT NULL,
    damaged         BIGINT NOT NULL,
    in_transit      BIGINT NOT NULL,
    incoming        BIGINT NOT NULL,
    on_hand         BIGINT NOT NULL,
    updated_seq     BIGINT NOT NULL,
    PRIMARY KEY (sku, location)
);
CREATE TABLE IF NOT EXISTS availability (
    sku         TEXT PRIMARY KEY,
    figures     TEXT NOT NULL, -- JSON object: channel code -> available-to-sell
    updated_seq BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    journal_seq  BIGINT NOT NULL,
    topic        TEXT NOT NULL,
    message_key  TEXT NOT NULL,
    payload      TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    delivered_at BIGINT
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (id) WHERE delivered_at IS NULL;
CREATE TABLE IF NOT EXISTS outbox_cursor (
    destination TEXT PRIMARY KEY,
    last_id     BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox_dead_letter (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    destination TEXT NOT NULL,
    outbox_id   BIGINT NOT NULL,
    topic       TEXT NOT NULL,
    message_key TEXT NOT NULL,
    payload     TEXT NOT NULL,
    reason      TEXT NOT NULL,
    attempts    INTEGER NOT NULL,
    failed_at   BIGINT NOT NULL,
    redriven_at BIGINT
);
CREATE TABLE IF NOT EXISTS snapshot (
    seq      BIGINT PRIMARY KEY,
    taken_at BIGINT NOT NULL,
    state    BYTEA NOT NULL
);
"#;

// One statement per table per batch, whatever the batch size: arrays travel as single
// parameters and UNNEST turns them back into rows server-side, so a 10,000-event batch costs the
// same four statements (one round trip each) as a one-event batch.
const INSERT_JOURNAL: &str = "INSERT INTO journal (seq, recorded_at, kind, sku, payload, chain)
     SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::bytea[], $6::bytea[])";

const UPSERT_STOCK: &str = "INSERT INTO stock_balance (sku, location, available, committed, picked, reserved,
         quality_control, damaged, in_transit, incoming, on_hand, updated_seq)
     SELECT u.*, $12::bigint FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[],
         $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[]) AS u
     ON CONFLICT (sku, location) DO UPDATE SET available = EXCLUDED.available,
         committed = EXCLUDED.committed, picked = EXCLUDED.picked, reserved = EXCLUDED.reserved,
         quality_control = EXCLUDED.quality_control, damaged = EXCLUDED.damaged,
         in_transit = EXCLUDED.in_transit, incoming = EXCLUDED.incoming, on_hand = EXCLUDED.on_hand,
         updated_seq = EXCLUDED.updated_seq";

const UPSERT_AVAILABILITY: &str = "INSERT INTO availability (sku, figures, updated_seq)
     SELECT u.*, $3::bigint FROM UNNEST($1::text[], $2::text[]) AS u
     ON CONFLICT (sku) DO UPDATE SET figures = EXCLUDED.figures, updated_seq = EXCLUDED.updated_seq";

// One message per batch, keyed by the batch's last sequence, as the SQLite store writes it.
const INSERT_OUTBOX: &str = "INSERT INTO outbox (journal_seq, topic, message_key, payload, created_at)
     VALUES ($1, 'availability_changed', $2, $3, $4)";

// In ordo_meta, as text, exactly as the SQLite store keeps it.
const SET_PROJECTION_SEQ: &str = "INSERT INTO ordo_meta (key, value) VALUES ('projection_seq', $1)
     ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value";

const REPLAY: &str = "SELECT seq, payload FROM journal WHERE seq > $1 ORDER BY seq";

/// Statements prepared once per connection: the commit path then costs one round trip each.
struct Prepared {
    insert_journal: Statement,
    upsert_stock: Statement,
    upsert_availability: Statement,
    insert_outbox: Statement,
    set_projection_seq: Statement,
    replay: Statement,
}

pub struct PostgresStore {
    client: Client,
    prepared: Prepared,
    // `postgres::Transaction` borrows the client for its lifetime, which the begin/commit split
    // of the `Store` trait cannot express; the transaction is driven with plain SQL instead.
    in_transaction: bool,
    head: u64,
}

/// Describes a driver error with its cause: the driver's own `Display` says only "db error".
fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => {
            let mut s = format!("{}: {} ({})", d.severity(), d.message(), d.code().code());
            if let Some(detail) = d.detail() {
                s.push_str("; ");
                s.push_str(detail);
            }
            s
        }
        None => {
            let mut s = e.to_string();
            let mut cause = std::error::Error::source(e);
            while let Some(c) = cause {
                s.push_str(": ");
                s.push_str(&c.to_string());
                cause = c.source();
            }
            s
        }
    }
}

fn db(e: postgres::Error) -> StoreError {
    StoreError::Database(describe(&e))
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

impl PostgresStore {
    /// Connects (`postgres://user@host:port/dbname` or `host=… dbname=…`) and creates or checks
    /// the schema.
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        let mut client = Client::connect(url, NoTls).map_err(db)?;
        client.batch_execute(&format!("SET lock_timeout = '{LOCK_TIMEOUT}'")).map_err(db)?;
        Self::ensure_schema(&mut client)?;
        let prepared = Prepared {
            insert_journal: client.prepare(INSERT_JOURNAL).map_err(db)?,
            upsert_stock: client.prepare(UPSERT_STOCK).map_err(db)?,
            upsert_availability: client.prepare(UPSERT_AVAILABILITY).map_err(db)?,
            insert_outbox: client.prepare(INSERT_OUTBOX).map_err(db)?,
            set_projection_seq: client.prepare(SET_PROJECTION_SEQ).map_err(db)?,
            replay: client.prepare(REPLAY).map_err(db)?,
        };
        Ok(Self { client, prepared, in_transaction: false, head: 0 })
    }

    fn ensure_schema(client: &mut Client) -> Result<(), StoreError> {
        // Concurrent `CREATE TABLE IF NOT EXISTS` from two processes can still collide in the
        // system catalogs; the writer lock makes first-time setup one process at a time.
        let mut tx = client.transaction().map_err(db)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITER_LOCK]).map_err(db)?;
        tx.batch_execute(SCHEMA).map_err(db)?;
        let version: Option<String> = tx
            .query_opt("SELECT value FROM ordo_meta WHERE key = 'schema_version'", &[])
            .map_err(db)?
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(db)?;
        match version {
            None => {
                tx.execute(
                    "INSERT INTO ordo_meta (key, value) VALUES ('schema_version', $1)",
                    &[&SCHEMA_VERSION.to_string()],
                )
                .map_err(db)?;
            }
            Some(v) if v == SCHEMA_VERSION.to_string() => {}
            Some(v) => {
                return Err(StoreError::Corrupt(format!(
                    "database schema version {v} is not supported by this build (expects {SCHEMA_VERSION})"
                )));
            }
        }
        tx.commit().map_err(db)
    }

    /// The underlying connection, for read-only reporting queries and tests. Using it while the
    /// engine has a batch open would run inside that batch's transaction.
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    fn write(&mut self, batch: &CommitBatch<'_>) -> Result<(), StoreError> {
        if batch.first_seq != self.head + 1 {
            return Err(StoreError::Conflict { seq: batch.first_seq });
        }
        let last_seq = batch.records.last().map_or(self.head, |r| r.seq);
        let to_i64 = |v: u64| i64::try_from(v).map_err(|_| corrupt(format!("sequence {v} exceeds BIGINT")));

        if !batch.records.is_empty() {
            let n = batch.records.len();
            let mut seqs = Vec::with_capacity(n);
            let mut recorded = Vec::with_capacity(n);
            let mut kinds = Vec::with_capacity(n);
            let mut skus = Vec::with_capacity(n);
            let mut payloads = Vec::with_capacity(n);
            let mut chains = Vec::with_capacity(n);
            for (i, r) in batch.records.iter().enumerate() {
                assert_eq!(r.seq, batch.first_seq + i as u64, "batch sequences are contiguous");
                seqs.push(to_i64(r.seq)?);
                recorded.push(r.recorded_at.millis());
                kinds.push(r.kind);
                skus.push(r.sku.as_deref());
                payloads.push(r.payload.as_slice());
                chains.push(r.chain.as_slice());
            }
            let params: [&(dyn postgres::types::ToSql + Sync); 6] =
                [&seqs, &recorded, &kinds, &skus, &payloads, &chains];
            self.client.execute(&self.prepared.insert_journal, &params).map_err(|e| {
                if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
                    StoreError::Conflict { seq: batch.first_seq }
                } else {
                    db(e)
                }
            })?;
        }

        if !batch.stock.is_empty() {
            let n = batch.stock.len();
            let mut sku = Vec::with_capacity(n);
            let mut location = Vec::with_capacity(n);
            let mut states: [Vec<i64>; 6] = std::array::from_fn(|_| Vec::with_capacity(n));
            let mut in_transit = Vec::with_capacity(n);
            let mut incoming = Vec::with_capacity(n);
            let mut on_hand = Vec::with_capacity(n);
            // ON CONFLICT DO UPDATE refuses to touch one row twice in a statement; the last
            // value written for a key is the one a row-by-row upsert would have left.
            let mut seen = HashSet::with_capacity(n);
            for row in batch.stock.iter().rev() {
                if !seen.insert((row.sku.as_str(), row.location.as_str())) {
                    continue;
                }
                sku.push(row.sku.as_str());
                location.push(row.location.as_str());
                for (column, value) in states.iter_mut().zip(row.buckets.states) {
                    column.push(value);
                }
                in_transit.push(row.buckets.in_transit_inbound);
                incoming.push(row.buckets.incoming);
                on_hand.push(row.buckets.on_hand());
            }
            let [available, committed, picked, reserved, quality_control, damaged] = &states;
            self.client
                .execute(
                    &self.prepared.upsert_stock,
                    &[
                        &sku,
                        &location,
                        available,
                        committed,
                        picked,
                        reserved,
                        quality_control,
                        damaged,
                        &in_transit,
                        &incoming,
                        &on_hand,
                        &to_i64(last_seq)?,
                    ],
                )
                .map_err(db)?;
        }

        if !batch.availability_rows.is_empty() {
            let n = batch.availability_rows.len();
            let mut sku = Vec::with_capacity(n);
            let mut figures = Vec::with_capacity(n);
            let mut seen = HashSet::with_capacity(n);
            for row in batch.availability_rows.iter().rev() {
                if seen.insert(row.sku.as_str()) {
                    sku.push(row.sku.as_str());
                    figures.push(row.figures_json());
                }
            }
            self.client
                .execute(&self.prepared.upsert_availability, &[&sku, &figures, &to_i64(last_seq)?])
                .map_err(db)?;
        }

        if !batch.availability.is_empty() {
            let last = to_i64(last_seq)?;
            self.client
                .execute(
                    &self.prepared.insert_outbox,
                    &[&last, &"availability", &availability_message(batch.availability), &batch.now.millis()],
                )
                .map_err(db)?;
        }
        for (seq, m) in batch.messages {
            self.client
                .execute(
                    "INSERT INTO outbox (journal_seq, topic, message_key, payload, created_at)
                     VALUES ($1, $2, $3, $4, $5)",
                    &[&(*seq as i64), &m.topic, &m.key, &m.payload, &batch.now.millis()],
                )
                .map_err(db)?;
        }

        if let Some(seq) = batch.projection_seq {
            self.client.execute(&self.prepared.set_projection_seq, &[&seq.to_string()]).map_err(db)?;
        }

        self.client.batch_execute("COMMIT").map_err(db)?;
        self.in_transaction = false;
        self.head = last_seq;
        Ok(())
    }

    fn open_transaction(&mut self) -> Result<u64, StoreError> {
        // READ COMMITTED takes a fresh snapshot per statement, so the head read after the lock
        // is granted sees everything the previous lock holder committed. (REPEATABLE READ would
        // fix its snapshot at the lock statement, before the wait ended, and miss it.)
        self.client.batch_execute("BEGIN ISOLATION LEVEL READ COMMITTED").map_err(db)?;
        self.in_transaction = true;
        self.client.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITER_LOCK]).map_err(db)?;
        let head: i64 = self
            .client
            .query_one("SELECT COALESCE(MAX(seq), 0)::bigint FROM journal", &[])
            .map_err(db)?
            .try_get(0)
            .map_err(db)?;
        u64::try_from(head).map_err(|_| corrupt(format!("journal head {head} is negative")))
    }
}

impl Store for PostgresStore {
    fn begin(&mut self) -> Result<u64, StoreError> {
        assert!(!self.in_transaction, "begin inside an open transaction");
        match self.open_transaction() {
            Ok(head) => {
                self.head = head;
                Ok(head)
            }
            Err(e) => {
                // The engine does not roll back a failed begin; do it here so the next begin
                // starts clean instead of inside a half-open transaction.
                self.rollback();
                Err(e)
            }
        }
    }

    fn commit(&mut self, batch: &CommitBatch<'_>) -> Result<(), StoreError> {
        assert!(self.in_transaction, "commit without begin");
        self.write(batch)
    }

    fn rollback(&mut self) {
        if self.in_transaction {
            // Nothing useful to do if this fails: a broken connection has already ended the
            // transaction server-side, and with it the advisory lock.
            let _ = self.client.batch_execute("ROLLBACK");
            self.in_transaction = false;
        }
    }

    fn replay(&mut self, after: u64, visit: &mut dyn FnMut(u64, &[u8])) -> Result<(), StoreError> {
        let after = i64::try_from(after).map_err(|_| corrupt(format!("sequence {after}")))?;
        // query_raw streams: rows are decoded as they arrive, with back-pressure on the socket,
        // so a million-event journal never sits in memory as a whole.
        let mut rows = self.client.query_raw(&self.prepared.replay, [after]).map_err(db)?;
        while let Some(row) = rows.next().map_err(db)? {
            let seq: i64 = row.try_get(0).map_err(db)?;
            let payload: &[u8] = row.try_get(1).map_err(db)?;
            visit(seq as u64, payload);
        }
        Ok(())
    }

    fn load_snapshot(&mut self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        let row =
            self.client.query_opt("SELECT seq, state FROM snapshot ORDER BY seq DESC LIMIT 1", &[]).map_err(db)?;
        match row {
            None => Ok(None),
            Some(r) => {
                let seq: i64 = r.try_get(0).map_err(db)?;
                let state: Vec<u8> = r.try_get(1).map_err(db)?;
                Ok(Some((seq as u64, state)))
            }
        }
    }

    fn save_snapshot(&mut self, seq: u64, state: &[u8]) -> Result<(), StoreError> {
        let seq = i64::try_from(seq).map_err(|_| corrupt(format!("sequence {seq}")))?;
        self.client
            .execute(
                "INSERT INTO snapshot (seq, taken_at, state)
                 VALUES ($1, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::bigint, $2)
                 ON CONFLICT (seq) DO NOTHING",
                &[&seq, &state],
            )
            .map_err(db)?;
        Ok(())
    }

    fn stock_projection(&mut self) -> Result<Vec<StockRow>, StoreError> {
        let rows = self
            .client
            .query(
                "SELECT sku, location, available, committed, picked, reserved, quality_control,
                        damaged, in_transit, incoming
                 FROM stock_balance ORDER BY sku, location",
                &[],
            )
            .map_err(db)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let mut states = [0i64; 6];
            for (i, s) in states.iter_mut().enumerate() {
                *s = r.try_get(2 + i).map_err(db)?;
            }
            out.push(StockRow {
                sku: Sku::new(r.try_get::<_, String>(0).map_err(db)?).map_err(corrupt)?,
                location: Code::new(r.try_get::<_, String>(1).map_err(db)?).map_err(corrupt)?,
                buckets: Buckets {
                    states,
                    in_transit_inbound: r.try_get(8).map_err(db)?,
                    incoming: r.try_get(9).map_err(db)?,
                },
            });
        }
        Ok(out)
    }

    fn availability_projection(&mut self) -> Result<Vec<(String, String, i64)>, StoreError> {
        let rows = self.client.query("SELECT sku, figures FROM availability ORDER BY sku", &[]).map_err(db)?;
        let mut out = Vec::new();
        for r in rows {
            let sku: String = r.try_get(0).map_err(db)?;
            let figures: String = r.try_get(1).map_err(db)?;
            let mut triples = AvailabilityRow::parse_figures(&sku, &figures)?;
            triples.sort();
            out.extend(triples);
        }
        Ok(out)
    }

    fn projection_seq(&mut self) -> Result<Option<u64>, StoreError> {
        let row = self.client.query_opt("SELECT value FROM ordo_meta WHERE key = 'projection_seq'", &[]).map_err(db)?;
        match row {
            // A database that never committed a batch has nothing to project.
            None => Ok(Some(0)),
            Some(r) => {
                let v: String = r.try_get(0).map_err(db)?;
                v.parse().map(Some).map_err(|_| StoreError::Corrupt(format!("projection_seq {v:?}")))
            }
        }
    }

    fn last_recorded_at(&mut self) -> Result<Option<Timestamp>, StoreError> {
        let row =
            self.client.query_opt("SELECT recorded_at FROM journal ORDER BY seq DESC LIMIT 1", &[]).map_err(db)?;
        row.map(|r| r.try_get(0).map(Timestamp::from_millis)).transpose().map_err(db)
    }

    fn chain_head(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        let row = self.client.query_opt("SELECT chain FROM journal ORDER BY seq DESC LIMIT 1", &[]).map_err(db)?;
        Ok(match row {
            Some(r) => r.try_get::<_, Option<Vec<u8>>>(0).map_err(db)?,
            None => None,
        })
    }

    fn audit(&mut self, visit: &mut dyn FnMut(ordo_engine::chain::AuditRow<'_>)) -> Result<(), StoreError> {
        let mut rows = self
            .client
            .query_raw(
                "SELECT seq, recorded_at, kind, payload, chain FROM journal ORDER BY seq",
                std::iter::empty::<i64>(),
            )
            .map_err(db)?;
        while let Some(row) = rows.next().map_err(db)? {
            let seq: i64 = row.try_get(0).map_err(db)?;
            let recorded_at: i64 = row.try_get(1).map_err(db)?;
            let kind: &str = row.try_get(2).map_err(db)?;
            let payload: &[u8] = row.try_get(3).map_err(db)?;
            let chain: Option<&[u8]> = row.try_get(4).map_err(db)?;
            visit(ordo_engine::chain::AuditRow { seq: seq as u64, recorded_at, kind, payload, chain });
        }
        Ok(())
    }

    fn outbox_pending(&mut self) -> Result<u64, StoreError> {
        let n: i64 = self
            .client
            .query_one("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL", &[])
            .map_err(db)?
            .try_get(0)
            .map_err(db)?;
        Ok(n as u64)
    }
}

/// Identifiers Ordo creates are plain lower-case names, so they never need quoting rules.
fn check_identifier(what: &str, name: &str, max: usize) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= max
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::Database(format!(
            "{what} {name:?} must be 1-{max} characters of a-z, 0-9 and _, starting with a letter"
        )))
    }
}

/// `url` with its database replaced by `dbname`; accepts both URL and `key=value` forms.
pub fn with_database(url: &str, dbname: &str) -> Result<String, StoreError> {
    let rewritten = match ["postgresql://", "postgres://"]
        .iter()
        .find_map(|scheme| url.strip_prefix(scheme).map(|rest| (*scheme, rest)))
    {
        Some((scheme, rest)) => {
            let (before_query, query) = match rest.split_once('?') {
                Some((b, q)) => (b, Some(q)),
                None => (rest, None),
            };
            let authority = before_query.split('/').next().unwrap_or(before_query);
            let mut s = format!("{scheme}{authority}/{dbname}");
            if let Some(q) = query {
                // A `dbname=` query parameter would win over the path.
                let kept: Vec<&str> = q.split('&').filter(|p| !p.starts_with("dbname=")).collect();
                if !kept.is_empty() {
                    s.push('?');
                    s.push_str(&kept.join("&"));
                }
            }
            s
        }
        // In the key=value form the last occurrence of a key wins.
        None => format!("{url} dbname={dbname}"),
    };
    rewritten
        .parse::<postgres::Config>()
        .map_err(|e| StoreError::Database(format!("invalid connection string: {}", describe(&e))))?;
    Ok(rewritten)
}

/// Creates an empty database named `<prefix>_<unique suffix>` on the server `server_url` points
/// at (any database there to connect to, e.g. `postgres`) and returns the URL of the new one.
/// For tests, benchmarks and demos that each want a ledger of their own.
pub fn create_fresh_database(server_url: &str, prefix: &str) -> Result<String, StoreError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    check_identifier("database prefix", prefix, 24)?;
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    // pid separates concurrent processes, the counter threads of one process, the time reruns
    // of a process that got a recycled pid; together well under the 63-byte name limit.
    let name = format!("{prefix}_{}_{}_{}", std::process::id(), nanos, COUNTER.fetch_add(1, Ordering::Relaxed));
    let url = with_database(server_url, &name)?;
    let mut client = Client::connect(server_url, NoTls).map_err(db)?;
    client.batch_execute(&format!("CREATE DATABASE {name}")).map_err(db)?;
    Ok(url)
}

/// Drops database `name` (if it exists), disconnecting anyone still using it.
pub fn drop_database(server_url: &str, name: &str) -> Result<(), StoreError> {
    check_identifier("database name", name, 63)?;
    let mut client = Client::connect(server_url, NoTls).map_err(db)?;
    client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).map_err(db)
}

impl ordo_engine::Outbox for PostgresStore {
    fn outbox_after(&mut self, after: u64, limit: usize) -> Result<Vec<ordo_engine::OutboxRow>, StoreError> {
        let cursor = after as i64;
        // Identity values are handed out at insert but become visible at commit: a row with a
        // lower id may still be in flight. Only one writer commits at a time (the engine holds
        // the advisory writer lock), so ids commit in order and a cursor never skips one.
        let rows = self
            .client
            .query(
                "SELECT id, journal_seq, topic, message_key, payload, created_at FROM outbox
                 WHERE id > $1 ORDER BY id LIMIT $2",
                &[&cursor, &(limit as i64)],
            )
            .map_err(db)?;
        rows.iter()
            .map(|r| {
                Ok(ordo_engine::OutboxRow {
                    id: r.try_get::<_, i64>(0).map_err(db)? as u64,
                    journal_seq: r.try_get::<_, i64>(1).map_err(db)? as u64,
                    topic: r.try_get(2).map_err(db)?,
                    key: r.try_get(3).map_err(db)?,
                    payload: r.try_get(4).map_err(db)?,
                    created_at: Timestamp::from_millis(r.try_get(5).map_err(db)?),
                })
            })
            .collect()
    }

    fn outbox_advance(
        &mut self,
        destination: &str,
        to: u64,
        dead: &[ordo_engine::RelayDeadLetter],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.client.transaction().map_err(db)?;
        tx.execute(
            "INSERT INTO outbox_cursor (destination, last_id) VALUES ($1, $2)
             ON CONFLICT (destination) DO UPDATE SET last_id = GREATEST(outbox_cursor.last_id, EXCLUDED.last_id)",
            &[&destination, &(to as i64)],
        )
        .map_err(db)?;
        for d in dead {
            tx.execute(
                "INSERT INTO outbox_dead_letter
                 (destination, outbox_id, topic, message_key, payload, reason, attempts, failed_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &d.destination,
                    &(d.outbox_id as i64),
                    &d.topic,
                    &d.key,
                    &d.payload,
                    &d.reason,
                    &(d.attempts as i32),
                    &d.failed_at.millis(),
                ],
            )
            .map_err(db)?;
        }
        if destination == ordo_engine::BUS_DESTINATION {
            tx.execute(
                "UPDATE outbox SET delivered_at = $1 WHERE delivered_at IS NULL AND id <= $2",
                &[&now.millis(), &(to as i64)],
            )
            .map_err(db)?;
        }
        tx.commit().map_err(db)
    }

    fn outbox_head(&mut self) -> Result<u64, StoreError> {
        let row = self.client.query_one("SELECT MAX(id) FROM outbox", &[]).map_err(db)?;
        Ok(row.try_get::<_, Option<i64>>(0).map_err(db)?.unwrap_or(0) as u64)
    }

    fn outbox_cursor(&mut self, destination: &str) -> Result<u64, StoreError> {
        let row = self
            .client
            .query_opt("SELECT last_id FROM outbox_cursor WHERE destination = $1", &[&destination])
            .map_err(db)?;
        Ok(row.map(|r| r.try_get::<_, i64>(0)).transpose().map_err(db)?.unwrap_or(0) as u64)
    }

    fn relay_dead_letters(&mut self) -> Result<Vec<ordo_engine::RelayDeadLetter>, StoreError> {
        let rows = self
            .client
            .query(
                "SELECT id, destination, outbox_id, topic, message_key, payload, reason, attempts, failed_at,
                        redriven_at FROM outbox_dead_letter ORDER BY id",
                &[],
            )
            .map_err(db)?;
        rows.iter()
            .map(|r| {
                Ok(ordo_engine::RelayDeadLetter {
                    id: r.try_get::<_, i64>(0).map_err(db)? as u64,
                    destination: r.try_get(1).map_err(db)?,
                    outbox_id: r.try_get::<_, i64>(2).map_err(db)? as u64,
                    topic: r.try_get(3).map_err(db)?,
                    key: r.try_get(4).map_err(db)?,
                    payload: r.try_get(5).map_err(db)?,
                    reason: r.try_get(6).map_err(db)?,
                    attempts: r.try_get::<_, i32>(7).map_err(db)? as u32,
                    failed_at: Timestamp::from_millis(r.try_get(8).map_err(db)?),
                    redriven_at: r.try_get::<_, Option<i64>>(9).map_err(db)?.map(Timestamp::from_millis),
                })
            })
            .collect()
    }

    fn relay_redriven(&mut self, id: u64, now: Timestamp) -> Result<(), StoreError> {
        let changed = self
            .client
            .execute(
                "UPDATE outbox_dead_letter SET redriven_at = $1 WHERE id = $2 AND redriven_at IS NULL",
                &[&now.millis(), &(id as i64)],
            )
            .map_err(db)?;
        if changed == 1 {
            Ok(())
        } else {
            Err(StoreError::Corrupt(format!("relay dead letter {id} is unknown or already redriven")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_is_replaced_in_both_connection_string_forms() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x_1").unwrap(),
            "postgres://postgres@127.0.0.1:5432/x_1"
        );
        assert_eq!(
            with_database("postgresql://u:p@h/db?sslmode=disable&dbname=db", "x_1").unwrap(),
            "postgresql://u:p@h/x_1?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:5432", "x_1").unwrap(), "postgres://h:5432/x_1");
        assert_eq!(
            with_database("host=127.0.0.1 user=postgres dbname=postgres", "x_1").unwrap(),
            "host=127.0.0.1 user=postgres dbname=postgres dbname=x_1"
        );
    }

    #[test]
    fn only_plain_identifiers_become_database_names() {
        assert!(check_identifier("n", "ordo_test", 24).is_ok());
        for bad in ["", "Ordo", "1abc", "a-b", "a;drop", "a\"b"] {
            assert!(check_identifier("n", bad, 24).is_err(), "{bad}");
        }
    }
}
