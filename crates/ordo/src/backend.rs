//! Chooses the store from the command line (`--db PATH` or `--database-url postgres://…`) and
//! opens the engine over it. The only place the binary knows there are two backends.

use anyhow::{Context, Result, bail};
use ordo_domain::StockRow;
use ordo_engine::{CommitBatch, Engine, Store, StoreError, SystemClock};
use ordo_store_postgres::PostgresStore;
use ordo_store_sqlite::SqliteStore;

pub enum AnyStore {
    Sqlite(SqliteStore),
    Postgres(Box<PostgresStore>),
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            AnyStore::Sqlite($s) => $e,
            AnyStore::Postgres($s) => $e,
        }
    };
}

impl Store for AnyStore {
    fn begin(&mut self) -> Result<u64, StoreError> {
        delegate!(self, s => s.begin())
    }
    fn commit(&mut self, batch: &CommitBatch<'_>) -> Result<(), StoreError> {
        delegate!(self, s => s.commit(batch))
    }
    fn rollback(&mut self) {
        delegate!(self, s => s.rollback())
    }
    fn replay(&mut self, after: u64, visit: &mut dyn FnMut(u64, &[u8])) -> Result<(), StoreError> {
        delegate!(self, s => s.replay(after, visit))
    }
    fn load_snapshot(&mut self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        delegate!(self, s => s.load_snapshot())
    }
    fn save_snapshot(&mut self, seq: u64, state: &[u8]) -> Result<(), StoreError> {
        delegate!(self, s => s.save_snapshot(seq, state))
    }
    fn stock_projection(&mut self) -> Result<Vec<StockRow>, StoreError> {
        delegate!(self, s => s.stock_projection())
    }
    fn availability_projection(&mut self) -> Result<Vec<(String, String, i64)>, StoreError> {
        delegate!(self, s => s.availability_projection())
    }
    fn outbox_pending(&mut self) -> Result<u64, StoreError> {
        delegate!(self, s => s.outbox_pending())
    }
    fn projection_seq(&mut self) -> Result<Option<u64>, StoreError> {
        delegate!(self, s => s.projection_seq())
    }
    fn last_recorded_at(&mut self) -> Result<Option<ordo_types::Timestamp>, StoreError> {
        delegate!(self, s => s.last_recorded_at())
    }
    fn chain_head(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        delegate!(self, s => s.chain_head())
    }
    fn audit(&mut self, visit: &mut dyn FnMut(ordo_engine::chain::AuditRow<'_>)) -> Result<(), StoreError> {
        delegate!(self, s => s.audit(visit))
    }
}

/// Where the data lives, as given on the command line.
impl ordo_engine::Outbox for AnyStore {
    fn outbox_after(&mut self, after: u64, limit: usize) -> Result<Vec<ordo_engine::OutboxRow>, StoreError> {
        delegate!(self, s => s.outbox_after(after, limit))
    }
    fn outbox_advance(
        &mut self,
        destination: &str,
        to: u64,
        dead: &[ordo_engine::RelayDeadLetter],
        now: ordo_types::Timestamp,
    ) -> Result<(), StoreError> {
        delegate!(self, s => s.outbox_advance(destination, to, dead, now))
    }
    fn outbox_head(&mut self) -> Result<u64, StoreError> {
        delegate!(self, s => s.outbox_head())
    }
    fn outbox_cursor(&mut self, destination: &str) -> Result<u64, StoreError> {
        delegate!(self, s => s.outbox_cursor(destination))
    }
    fn relay_dead_letters(&mut self) -> Result<Vec<ordo_engine::RelayDeadLetter>, StoreError> {
        delegate!(self, s => s.relay_dead_letters())
    }
    fn relay_redriven(&mut self, id: u64, now: ordo_types::Timestamp) -> Result<(), StoreError> {
        delegate!(self, s => s.relay_redriven(id, now))
    }
}

#[derive(Debug, Clone)]
pub enum Target {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

impl Target {
    /// Opens an existing database. A mistyped `--db` path must not silently become a new, empty
    /// database that answers every query with nothing.
    pub fn open_store(&self) -> Result<AnyStore> {
        if let Target::Sqlite(path) = self
            && !path.exists()
        {
            bail!("no database at {}; create one with `ordo init` (or `ordo demo`)", path.display());
        }
        self.create_store()
    }

    /// Opens the database, creating it (schema included) if it does not exist.
    pub fn create_store(&self) -> Result<AnyStore> {
        Ok(match self {
            Target::Sqlite(path) => AnyStore::Sqlite(
                SqliteStore::open(path).with_context(|| format!("opening SQLite database {}", path.display()))?,
            ),
            Target::Postgres(url) => {
                AnyStore::Postgres(Box::new(PostgresStore::connect(url).context("connecting to PostgreSQL")?))
            }
        })
    }

    pub fn open_engine(&self) -> Result<Engine<AnyStore>> {
        self.engine_over(self.open_store()?)
    }

    /// Opens the engine, creating the database if needed (`init`, `demo`).
    pub fn create_engine(&self) -> Result<Engine<AnyStore>> {
        self.engine_over(self.create_store()?)
    }

    fn engine_over(&self, store: AnyStore) -> Result<Engine<AnyStore>> {
        let mut engine = Engine::open(store, Box::new(SystemClock)).context("rebuilding state from the journal")?;
        // The journal chain's key: configuration, never the database (see ordo_engine::chain).
        engine.set_audit_key(std::env::var("ORDO_AUDIT_KEY").unwrap_or_default().as_bytes());
        Ok(engine)
    }
}
