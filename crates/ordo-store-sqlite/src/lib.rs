//! The embedded default store: one SQLite file in WAL mode with `synchronous=FULL`, so an
//! acknowledged batch is on disk. Implements the engine's [`Store`] contract.
//!
//! Single writing is enforced by SQLite itself (`BEGIN IMMEDIATE` takes the one write lock,
//! waiting up to the busy timeout) and, as a backstop, by the journal's primary key: a batch is
//! inserted at explicit sequence numbers, so a writer that is behind gets a conflict, never a fork.

use std::path::Path;
use std::time::Duration;

use ordo_domain::StockRow;
use ordo_domain::inventory::Buckets;
use ordo_engine::{CommitBatch, Store, StoreError};
use ordo_types::{Code, Sku, Timestamp};
use rusqlite::{Connection, ErrorCode, OptionalExtension, params};

const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS ordo_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS journal (
    seq         INTEGER PRIMARY KEY CHECK (seq > 0),
    recorded_at INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    sku         TEXT,
    payload     BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_by_sku ON journal (sku, seq);
CREATE TRIGGER IF NOT EXISTS journal_no_update BEFORE UPDATE ON journal
BEGIN SELECT RAISE(ABORT, 'journal rows cannot be updated'); END;
CREATE TRIGGER IF NOT EXISTS journal_no_delete BEFORE DELETE ON journal
BEGIN SELECT RAISE(ABORT, 'journal rows cannot be deleted'); END;
CREATE TABLE IF NOT EXISTS stock_balance (
    sku             TEXT NOT NULL,
    location        TEXT NOT NULL,
    available       INTEGER NOT NULL,
    committed       INTEGER NOT NULL,
    picked          INTEGER NOT NULL,
    reserved        INTEGER NOT NULL,
    quality_control INTEGER NOT NULL,
    damaged         INTEGER NOT NULL,
    in_transit      INTEGER NOT NULL,
    incoming        INTEGER NOT NULL,
    on_hand         INTEGER NOT NULL,
    updated_seq     INTEGER NOT NULL,
    PRIMARY KEY (sku, location)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS availability (
    sku         TEXT NOT NULL,
    channel     TEXT NOT NULL,
    ats         INTEGER NOT NULL,
    updated_seq INTEGER NOT NULL,
    PRIMARY KEY (sku, channel)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    journal_seq  INTEGER NOT NULL,
    topic        TEXT NOT NULL,
    message_key  TEXT NOT NULL,
    payload      TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    delivered_at INTEGER
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (id) WHERE delivered_at IS NULL;
CREATE TABLE IF NOT EXISTS snapshot (
    seq      INTEGER PRIMARY KEY,
    taken_at INTEGER NOT NULL,
    state    BLOB NOT NULL
);
"#;

pub struct SqliteStore {
    conn: Connection,
    in_transaction: bool,
    head: u64,
}

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(db)?;
        Self::with_connection(conn)
    }

    fn with_connection(conn: Connection) -> Result<Self, StoreError> {
        conn.busy_timeout(Duration::from_secs(30)).map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(db)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(db)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(db)?;
        conn.execute_batch(SCHEMA).map_err(db)?;
        let version: Option<String> = conn
            .query_row("SELECT value FROM ordo_meta WHERE key = 'schema_version'", [], |r| r.get(0))
            .optional()
            .map_err(db)?;
        match version {
            None => {
                conn.execute(
                    "INSERT INTO ordo_meta (key, value) VALUES ('schema_version', ?1)",
                    [SCHEMA_VERSION.to_string()],
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
        Ok(Self { conn, in_transaction: false, head: 0 })
    }

    /// The underlying connection, for read-only reporting queries and tests.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    fn write(&mut self, batch: &CommitBatch<'_>) -> Result<(), StoreError> {
        if batch.first_seq != self.head + 1 {
            return Err(StoreError::Conflict { seq: batch.first_seq });
        }
        let last_seq = batch.records.last().map_or(self.head, |r| r.seq);
        {
            let mut insert = self
                .conn
                .prepare_cached(
                    "INSERT INTO journal (seq, recorded_at, kind, sku, payload) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(db)?;
            for (i, r) in batch.records.iter().enumerate() {
                assert_eq!(r.seq, batch.first_seq + i as u64, "batch sequences are contiguous");
                insert.execute(params![r.seq as i64, r.recorded_at.millis(), r.kind, r.sku, r.payload]).map_err(
                    |e| match e.sqlite_error_code() {
                        Some(ErrorCode::ConstraintViolation) => StoreError::Conflict { seq: r.seq },
                        _ => db(e),
                    },
                )?;
            }
        }
        {
            let mut upsert = self
                .conn
                .prepare_cached(
                    "INSERT INTO stock_balance (sku, location, available, committed, picked, reserved, quality_control,
                         damaged, in_transit, incoming, on_hand, updated_seq)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                     ON CONFLICT (sku, location) DO UPDATE SET available = excluded.available,
                         committed = excluded.committed, picked = excluded.picked, reserved = excluded.reserved,
                         quality_control = excluded.quality_control, damaged = excluded.damaged,
                         in_transit = excluded.in_transit, incoming = excluded.incoming, on_hand = excluded.on_hand,
                         updated_seq = excluded.updated_seq",
                )
                .map_err(db)?;
            for row in batch.stock {
                let s = &row.buckets.states;
                upsert
                    .execute(params![
                        row.sku.as_str(),
                        row.location.as_str(),
                        s[0],
                        s[1],
                        s[2],
                        s[3],
                        s[4],
                        s[5],
                        row.buckets.in_transit_inbound,
                        row.buckets.incoming,
                        row.buckets.on_hand(),
                        last_seq as i64
                    ])
                    .map_err(db)?;
            }
        }
        {
            let mut upsert = self
                .conn
                .prepare_cached(
                    "INSERT INTO availability (sku, channel, ats, updated_seq) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (sku, channel) DO UPDATE SET ats = excluded.ats, updated_seq = excluded.updated_seq",
                )
                .map_err(db)?;
            let mut outbox = self
                .conn
                .prepare_cached(
                    "INSERT INTO outbox (journal_seq, topic, message_key, payload, created_at)
                     VALUES (?1, 'availability_changed', ?2, ?3, ?4)",
                )
                .map_err(db)?;
            for change in batch.availability {
                upsert
                    .execute(params![change.sku.as_str(), change.channel.as_str(), change.new, last_seq as i64])
                    .map_err(db)?;
                let key = format!("{}/{}", change.channel, change.sku);
                let payload = serde_json::to_string(change).expect("serializable");
                outbox.execute(params![last_seq as i64, key, payload, batch.now.millis()]).map_err(db)?;
            }
        }
        self.conn.execute_batch("COMMIT").map_err(db)?;
        self.in_transaction = false;
        self.head = last_seq;
        Ok(())
    }
}

impl Store for SqliteStore {
    fn begin(&mut self) -> Result<u64, StoreError> {
        assert!(!self.in_transaction, "begin inside an open transaction");
        self.conn.execute_batch("BEGIN IMMEDIATE").map_err(db)?;
        self.in_transaction = true;
        let head: i64 =
            self.conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM journal", [], |r| r.get(0)).map_err(db)?;
        self.head = head as u64;
        Ok(self.head)
    }

    fn commit(&mut self, batch: &CommitBatch<'_>) -> Result<(), StoreError> {
        assert!(self.in_transaction, "commit without begin");
        self.write(batch)
    }

    fn rollback(&mut self) {
        if self.in_transaction {
            let _ = self.conn.execute_batch("ROLLBACK");
            self.in_transaction = false;
        }
    }

    fn replay(&mut self, after: u64, visit: &mut dyn FnMut(u64, &[u8])) -> Result<(), StoreError> {
        let mut stmt =
            self.conn.prepare_cached("SELECT seq, payload FROM journal WHERE seq > ?1 ORDER BY seq").map_err(db)?;
        let mut rows = stmt.query([after as i64]).map_err(db)?;
        while let Some(row) = rows.next().map_err(db)? {
            let seq: i64 = row.get(0).map_err(db)?;
            let payload = row.get_ref(1).map_err(db)?.as_blob().map_err(|e| db(e.into()))?;
            visit(seq as u64, payload);
        }
        Ok(())
    }

    fn load_snapshot(&mut self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        self.conn
            .query_row("SELECT seq, state FROM snapshot ORDER BY seq DESC LIMIT 1", [], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Vec<u8>>(1)?))
            })
            .optional()
            .map_err(db)
    }

    fn save_snapshot(&mut self, seq: u64, state: &[u8]) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO snapshot (seq, taken_at, state) VALUES (?1, CAST(strftime('%s','now') AS INTEGER) * 1000, ?2)
                 ON CONFLICT (seq) DO NOTHING",
                params![seq as i64, state],
            )
            .map_err(db)?;
        Ok(())
    }

    fn stock_projection(&mut self) -> Result<Vec<StockRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT sku, location, available, committed, picked, reserved, quality_control, damaged,
                        in_transit, incoming FROM stock_balance ORDER BY sku, location",
            )
            .map_err(db)?;
        let rows = stmt
            .query_map([], |r| {
                let mut states = [0i64; 6];
                for (i, s) in states.iter_mut().enumerate() {
                    *s = r.get(2 + i)?;
                }
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, states, r.get::<_, i64>(8)?, r.get::<_, i64>(9)?))
            })
            .map_err(db)?;
        let mut out = Vec::new();
        for row in rows {
            let (sku, location, states, in_transit_inbound, incoming) = row.map_err(db)?;
            out.push(StockRow {
                sku: Sku::new(sku).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                location: Code::new(location).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                buckets: Buckets { states, in_transit_inbound, incoming },
            });
        }
        Ok(out)
    }

    fn availability_projection(&mut self) -> Result<Vec<(String, String, i64)>, StoreError> {
        let mut stmt =
            self.conn.prepare("SELECT sku, channel, ats FROM availability ORDER BY sku, channel").map_err(db)?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    fn last_recorded_at(&mut self) -> Result<Option<Timestamp>, StoreError> {
        let at: Option<i64> = self
            .conn
            .query_row("SELECT recorded_at FROM journal ORDER BY seq DESC LIMIT 1", [], |r| r.get(0))
            .optional()
            .map_err(db)?;
        Ok(at.map(Timestamp::from_millis))
    }

    fn outbox_pending(&mut self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL", [], |r| r.get(0))
            .map_err(db)?;
        Ok(n as u64)
    }
}
