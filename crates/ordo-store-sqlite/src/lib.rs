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
use ordo_engine::{AvailabilityRow, CommitBatch, Store, StoreError, availability_message};
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
    payload     BLOB NOT NULL,
    chain       BLOB
);
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
    sku         TEXT PRIMARY KEY,
    figures     TEXT NOT NULL, -- JSON object: channel code -> available-to-sell
    updated_seq INTEGER NOT NULL
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
CREATE TABLE IF NOT EXISTS outbox_cursor (
    destination TEXT PRIMARY KEY,
    last_id     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox_dead_letter (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    destination TEXT NOT NULL,
    outbox_id   INTEGER NOT NULL,
    topic       TEXT NOT NULL,
    message_key TEXT NOT NULL,
    payload     TEXT NOT NULL,
    reason      TEXT NOT NULL,
    attempts    INTEGER NOT NULL,
    failed_at   INTEGER NOT NULL,
    redriven_at INTEGER
);
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
    _checkpointer: Option<Checkpointer>,
}

/// How often the background checkpointer copies committed WAL pages into the database file
/// while the store is written to. Often enough that the writer's own checkpoint (every ~4 MiB
/// of WAL, ~7 a second under HTTP load) finds little left to copy: at 250 ms it still copied
/// and fsynced up to 4 MiB itself, 8–20 ms inside a commit, seven times a second (commit p99
/// 11.7 ms → 6 ms at 20 ms; BENCHMARKS.md, issue 4).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(20);
/// The longest wait between checkpoints of a store nothing is written to.
const CHECKPOINT_IDLE_EVERY: Duration = Duration::from_millis(500);
/// Pages of WAL (~4 MiB) at which the writer checkpoints in its own commit. Under a steady stream
/// of commits the background checkpointer never catches the WAL's end, so only the writer's own
/// checkpoint completes and lets the next transaction restart the WAL from its beginning. It
/// copies little (the background one has copied the rest), and a WAL reused in place is
/// overwritten rather than extended: its fsync then needs no file-system journal commit, which on
/// ext4 waits for the database file's dirty pages. With a 512 MiB threshold the WAL grew by
/// ~30 MB/s under HTTP load and a few commits a run waited 90–180 ms on that fsync; at 4 MiB
/// none took 20 ms (BENCHMARKS.md, issue 4).
const WRITER_CHECKPOINT_PAGES: i64 = 1_024;

/// Checkpoints the WAL from its own thread and connection, so the writer's own checkpoint (see
/// [`WRITER_CHECKPOINT_PAGES`]) finds most pages already copied. Alone, the writer's checkpoint
/// copied and fsynced tens of MiB inside a commit: every request in that batch and behind it
/// waited (p99 26 ms → 6 ms at 8 connections when the copying moved off the commit path). A
/// PASSIVE checkpoint from another connection never blocks the writer.
struct Checkpointer {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    fn start(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(db)?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("ordo-checkpoint".into())
            .spawn(move || {
                let mut wait = CHECKPOINT_EVERY;
                let mut last_log = -1;
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(wait) {
                    // Busy or failed: the next round, or the writer's own checkpoint, catches up.
                    let frames = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                        Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
                    });
                    // Nothing written since the last round and everything copied: an idle store
                    // is looked at less and less often, up to `CHECKPOINT_IDLE_EVERY`.
                    wait = match frames {
                        Ok((log, copied)) if log == copied && log == last_log => (wait * 2).min(CHECKPOINT_IDLE_EVERY),
                        _ => CHECKPOINT_EVERY,
                    };
                    last_log = frames.map_or(-1, |(log, _)| log);
                }
            })
            .map_err(|e| StoreError::Database(format!("starting the checkpointer: {e}")))?;
        Ok(Self { stop: Some(stop), thread: Some(thread) })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let conn = Connection::open(path.as_ref()).map_err(db)?;
        let mut store = Self::with_connection(conn)?;
        store._checkpointer = Some(Checkpointer::start(path.as_ref())?);
        Ok(store)
    }

    fn with_connection(conn: Connection) -> Result<Self, StoreError> {
        conn.busy_timeout(Duration::from_secs(30)).map_err(db)?;
        conn.set_prepared_statement_cache_capacity(64);
        conn.pragma_update(None, "journal_mode", "WAL").map_err(db)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(db)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(db)?;
        // A large page cache and in-memory statement journals keep a 1,000-movement batch from
        // spilling pages mid-transaction. Checkpoints run off the commit path (`Checkpointer`).
        conn.pragma_update(None, "cache_size", -65_536).map_err(db)?;
        conn.pragma_update(None, "temp_store", "MEMORY").map_err(db)?;
        conn.pragma_update(None, "wal_autocheckpoint", WRITER_CHECKPOINT_PAGES).map_err(db)?;
        conn.execute_batch(SCHEMA).map_err(db)?;
        // Journals written before the chain existed gain the column; their rows have no link.
        let has_chain: bool = conn
            .query_row("SELECT COUNT(*) FROM pragma_table_info('journal') WHERE name = 'chain'", [], |r| r.get(0))
            .map_err(db)?;
        if !has_chain {
            conn.execute_batch("ALTER TABLE journal ADD COLUMN chain BLOB").map_err(db)?;
        }
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
        Ok(Self { conn, in_transaction: false, head: 0, _checkpointer: None })
    }

    /// The underlying connection, for read-only reporting queries and tests.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    fn write(&mut self, batch: &CommitBatch<'_>) -> Result<(), StoreError> {
        if batch.first_seq != self.head + 1 {
            return Err(StoreError::Conflict { seq: batch.first_seq });
        }
        let last_seq = batch.records.last().map_or(self.head, |r| r.seq) as i64;
        for (i, r) in batch.records.iter().enumerate() {
            assert_eq!(r.seq, batch.first_seq + i as u64, "batch sequences are contiguous");
        }
        let conn = &self.conn;
        chunked(
            conn,
            "INSERT INTO journal (seq, recorded_at, kind, sku, payload, chain) VALUES ",
            6,
            "",
            batch.records,
            |st, r, p| {
                st.raw_bind_parameter(p, r.seq as i64)?;
                st.raw_bind_parameter(p + 1, r.recorded_at.millis())?;
                st.raw_bind_parameter(p + 2, r.kind)?;
                st.raw_bind_parameter(p + 3, r.sku.as_deref())?;
                st.raw_bind_parameter(p + 4, r.payload.as_slice())?;
                st.raw_bind_parameter(p + 5, r.chain.as_slice())
            },
        )
        .map_err(|e| match e.sqlite_error_code() {
            Some(ErrorCode::ConstraintViolation) => StoreError::Conflict { seq: batch.first_seq },
            _ => db(e),
        })?;
        chunked(
            conn,
            "INSERT INTO stock_balance (sku, location, available, committed, picked, reserved, quality_control,
                 damaged, in_transit, incoming, on_hand, updated_seq) VALUES ",
            12,
            " ON CONFLICT (sku, location) DO UPDATE SET available = excluded.available,
                 committed = excluded.committed, picked = excluded.picked, reserved = excluded.reserved,
                 quality_control = excluded.quality_control, damaged = excluded.damaged,
                 in_transit = excluded.in_transit, incoming = excluded.incoming, on_hand = excluded.on_hand,
                 updated_seq = excluded.updated_seq",
            batch.stock,
            |st, row, p| {
                st.raw_bind_parameter(p, row.sku.as_str())?;
                st.raw_bind_parameter(p + 1, row.location.as_str())?;
                for (i, v) in row.buckets.states.iter().enumerate() {
                    st.raw_bind_parameter(p + 2 + i, *v)?;
                }
                st.raw_bind_parameter(p + 8, row.buckets.in_transit_inbound)?;
                st.raw_bind_parameter(p + 9, row.buckets.incoming)?;
                st.raw_bind_parameter(p + 10, row.buckets.on_hand())?;
                st.raw_bind_parameter(p + 11, last_seq)
            },
        )
        .map_err(db)?;
        chunked(
            conn,
            "INSERT INTO availability (sku, figures, updated_seq) VALUES ",
            3,
            " ON CONFLICT (sku) DO UPDATE SET figures = excluded.figures, updated_seq = excluded.updated_seq",
            batch.availability_rows,
            |st, row, p| {
                st.raw_bind_parameter(p, row.sku.as_str())?;
                st.raw_bind_parameter(p + 1, row.figures_json())?;
                st.raw_bind_parameter(p + 2, last_seq)
            },
        )
        .map_err(db)?;
        if !batch.availability.is_empty() {
            conn.prepare_cached(
                "INSERT INTO outbox (journal_seq, topic, message_key, payload, created_at)
                 VALUES (?1, 'availability_changed', ?2, ?3, ?4)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    last_seq,
                    // Partition key, not an id: the outbox row id identifies the message.
                    "availability",
                    availability_message(batch.availability),
                    batch.now.millis()
                ])
            })
            .map_err(db)?;
        }
        for (seq, m) in batch.messages {
            conn.prepare_cached(
                "INSERT INTO outbox (journal_seq, topic, message_key, payload, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut st| st.execute(params![*seq as i64, m.topic, m.key, m.payload, batch.now.millis()]))
            .map_err(db)?;
        }
        if let Some(seq) = batch.projection_seq {
            conn.prepare_cached(
                "INSERT INTO ordo_meta (key, value) VALUES ('projection_seq', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .and_then(|mut st| st.execute([seq.to_string()]))
            .map_err(db)?;
        }
        conn.execute_batch("COMMIT").map_err(db)?;
        self.in_transaction = false;
        self.head = last_seq as u64;
        Ok(())
    }
}

/// Rows per multi-row statement: one statement per 64 rows costs far less than 64 statements.
const CHUNK_ROWS: usize = 64;

/// Executes `prefix (?,…),(?,…)… suffix` over `rows` in chunks, binding each row with `bind`
/// (given the statement, the row and the 1-based index of its first parameter).
fn chunked<T>(
    conn: &Connection,
    prefix: &str,
    columns: usize,
    suffix: &str,
    rows: &[T],
    mut bind: impl FnMut(&mut rusqlite::CachedStatement<'_>, &T, usize) -> rusqlite::Result<()>,
) -> rusqlite::Result<()> {
    for chunk in rows.chunks(CHUNK_ROWS) {
        let mut sql = String::with_capacity(prefix.len() + suffix.len() + chunk.len() * (columns * 2 + 3));
        sql.push_str(prefix);
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push(',');
            }
            sql.push('(');
            sql.push_str(&vec!["?"; columns].join(","));
            sql.push(')');
        }
        sql.push_str(suffix);
        let mut st = conn.prepare_cached(&sql)?;
        for (i, row) in chunk.iter().enumerate() {
            bind(&mut st, row, i * columns + 1)?;
        }
        st.raw_execute()?;
    }
    Ok(())
}

impl Store for SqliteStore {
    fn begin(&mut self) -> Result<u64, StoreError> {
        assert!(!self.in_transaction, "begin inside an open transaction");
        self.conn.execute_batch("BEGIN IMMEDIATE").map_err(db)?;
        self.in_transaction = true;
        match self.conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM journal", [], |r| r.get::<_, i64>(0)) {
            Ok(head) => {
                self.head = head as u64;
                Ok(self.head)
            }
            Err(e) => {
                // Never keep the write lock after a failed begin: the caller will not roll back.
                self.rollback();
                Err(db(e))
            }
        }
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
        let mut stmt = self.conn.prepare("SELECT sku, figures FROM availability ORDER BY sku").map_err(db)?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))).map_err(db)?;
        let mut out = Vec::new();
        for row in rows {
            let (sku, figures) = row.map_err(db)?;
            out.extend(AvailabilityRow::parse_figures(&sku, &figures)?);
        }
        out.sort();
        Ok(out)
    }

    fn projection_seq(&mut self) -> Result<Option<u64>, StoreError> {
        let value: Option<String> = self
            .conn
            .query_row("SELECT value FROM ordo_meta WHERE key = 'projection_seq'", [], |r| r.get(0))
            .optional()
            .map_err(db)?;
        match value {
            // A database that never committed a batch has nothing to project.
            None => Ok(Some(0)),
            Some(v) => v.parse().map(Some).map_err(|_| StoreError::Corrupt(format!("projection_seq {v:?}"))),
        }
    }

    fn last_recorded_at(&mut self) -> Result<Option<Timestamp>, StoreError> {
        let at: Option<i64> = self
            .conn
            .query_row("SELECT recorded_at FROM journal ORDER BY seq DESC LIMIT 1", [], |r| r.get(0))
            .optional()
            .map_err(db)?;
        Ok(at.map(Timestamp::from_millis))
    }

    fn chain_head(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        let chain: Option<Option<Vec<u8>>> = self
            .conn
            .query_row("SELECT chain FROM journal ORDER BY seq DESC LIMIT 1", [], |r| r.get(0))
            .optional()
            .map_err(db)?;
        Ok(chain.flatten())
    }

    fn audit(&mut self, visit: &mut dyn FnMut(ordo_engine::chain::AuditRow<'_>)) -> Result<(), StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT seq, recorded_at, kind, payload, chain FROM journal ORDER BY seq")
            .map_err(db)?;
        let mut rows = stmt.query([]).map_err(db)?;
        while let Some(row) = rows.next().map_err(db)? {
            let seq: i64 = row.get(0).map_err(db)?;
            let recorded_at: i64 = row.get(1).map_err(db)?;
            let kind = row.get_ref(2).map_err(db)?.as_str().map_err(|e| db(e.into()))?;
            let payload = row.get_ref(3).map_err(db)?.as_blob().map_err(|e| db(e.into()))?;
            let chain = row.get_ref(4).map_err(db)?.as_blob_or_null().map_err(|e| db(e.into()))?;
            visit(ordo_engine::chain::AuditRow { seq: seq as u64, recorded_at, kind, payload, chain });
        }
        Ok(())
    }

    fn outbox_pending(&mut self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL", [], |r| r.get(0))
            .map_err(db)?;
        Ok(n as u64)
    }
}

impl ordo_engine::Outbox for SqliteStore {
    fn outbox_after(&mut self, after: u64, limit: usize) -> Result<Vec<ordo_engine::OutboxRow>, StoreError> {
        let cursor = after;
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT id, journal_seq, topic, message_key, payload, created_at FROM outbox
                 WHERE id > ?1 ORDER BY id LIMIT ?2",
            )
            .map_err(db)?;
        let rows = st
            .query_map(params![cursor as i64, limit as i64], |r| {
                Ok(ordo_engine::OutboxRow {
                    id: r.get::<_, i64>(0)? as u64,
                    journal_seq: r.get::<_, i64>(1)? as u64,
                    topic: r.get(2)?,
                    key: r.get(3)?,
                    payload: r.get(4)?,
                    created_at: Timestamp::from_millis(r.get(5)?),
                })
            })
            .map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    fn outbox_advance(
        &mut self,
        destination: &str,
        to: u64,
        dead: &[ordo_engine::RelayDeadLetter],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction().map_err(db)?;
        tx.execute(
            "INSERT INTO outbox_cursor (destination, last_id) VALUES (?1, ?2)
             ON CONFLICT (destination) DO UPDATE SET last_id = MAX(last_id, excluded.last_id)",
            params![destination, to as i64],
        )
        .map_err(db)?;
        for d in dead {
            tx.execute(
                "INSERT INTO outbox_dead_letter
                 (destination, outbox_id, topic, message_key, payload, reason, attempts, failed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    d.destination,
                    d.outbox_id as i64,
                    d.topic,
                    d.key,
                    d.payload,
                    d.reason,
                    d.attempts,
                    d.failed_at.millis()
                ],
            )
            .map_err(db)?;
        }
        if destination == ordo_engine::BUS_DESTINATION {
            tx.execute(
                "UPDATE outbox SET delivered_at = ?1 WHERE delivered_at IS NULL AND id <= ?2",
                params![now.millis(), to as i64],
            )
            .map_err(db)?;
        }
        tx.commit().map_err(db)
    }

    fn outbox_head(&mut self) -> Result<u64, StoreError> {
        let head: Option<i64> = self.conn.query_row("SELECT MAX(id) FROM outbox", [], |r| r.get(0)).map_err(db)?;
        Ok(head.unwrap_or(0) as u64)
    }

    fn outbox_cursor(&mut self, destination: &str) -> Result<u64, StoreError> {
        let cursor: Option<i64> = self
            .conn
            .prepare_cached("SELECT last_id FROM outbox_cursor WHERE destination = ?1")
            .and_then(|mut st| st.query_row([destination], |r| r.get(0)).optional())
            .map_err(db)?;
        Ok(cursor.unwrap_or(0) as u64)
    }

    fn relay_dead_letters(&mut self) -> Result<Vec<ordo_engine::RelayDeadLetter>, StoreError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT id, destination, outbox_id, topic, message_key, payload, reason, attempts, failed_at,
                        redriven_at FROM outbox_dead_letter ORDER BY id",
            )
            .map_err(db)?;
        let rows = st
            .query_map([], |r| {
                Ok(ordo_engine::RelayDeadLetter {
                    id: r.get::<_, i64>(0)? as u64,
                    destination: r.get(1)?,
                    outbox_id: r.get::<_, i64>(2)? as u64,
                    topic: r.get(3)?,
                    key: r.get(4)?,
                    payload: r.get(5)?,
                    reason: r.get(6)?,
                    attempts: r.get(7)?,
                    failed_at: Timestamp::from_millis(r.get(8)?),
                    redriven_at: r.get::<_, Option<i64>>(9)?.map(Timestamp::from_millis),
                })
            })
            .map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    fn relay_redriven(&mut self, id: u64, now: Timestamp) -> Result<(), StoreError> {
        let changed = self
            .conn
            .execute(
                "UPDATE outbox_dead_letter SET redriven_at = ?1 WHERE id = ?2 AND redriven_at IS NULL",
                params![now.millis(), id as i64],
            )
            .map_err(db)?;
        if changed == 1 {
            Ok(())
        } else {
            Err(StoreError::Corrupt(format!("relay dead letter {id} is unknown or already redriven")))
        }
    }
}
