//! The single-writer engine: one owner of the authoritative [`State`], taking commands in
//! batches, appending the batch's events and projections to the store in ONE transaction, and
//! acknowledging only after that commit (group commit).
//!
//! The engine also defines the ports it needs — [`Store`] (journal + projections + snapshots)
//! and [`Clock`] — so the domain stays free of I/O and time, and so SQLite and PostgreSQL are
//! two implementations of one contract.

// Rejections carry the offending values (SKU, location, reference) so messages can name them;
// they are produced once per refused command, never in a loop, so their size costs nothing that
// boxing every one of them would not cost more.
#![allow(clippy::result_large_err, clippy::large_enum_variant)]

mod codec;
mod handle;
mod store;

use std::time::{Duration, Instant};

use ordo_domain::{AvailabilityChanged, Command, Event, Rejection, State};
use ordo_types::Timestamp;

pub use codec::{decode_event, encode_event};
pub mod chain;
pub use handle::{EngineHandle, Submission};
pub use store::{
    AvailabilityRow, BUS_DESTINATION, CommitBatch, JournalRecord, Outbox, OutboxRow, RelayDeadLetter, Store,
    StoreError, availability_message, parse_availability_message,
};

/// Where the engine gets `now`. Injected so tests and replays are deterministic.
pub trait Clock: Send {
    fn now(&self) -> Timestamp;
}

/// Wall-clock time.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Timestamp::from_millis(ms)
    }
}

/// A clock that stays where it is put (tests, simulation).
#[derive(Debug, Clone, Default)]
pub struct FixedClock(pub std::sync::Arc<std::sync::atomic::AtomicI64>);

impl FixedClock {
    pub fn at(ts: Timestamp) -> Self {
        Self(std::sync::Arc::new(std::sync::atomic::AtomicI64::new(ts.millis())))
    }

    pub fn set(&self, ts: Timestamp) {
        self.0.store(ts.millis(), std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.load(std::sync::atomic::Ordering::SeqCst))
    }
}

/// One unit of work for a batch: a single command, or a group applied all-or-nothing
/// (a CSV file, a multi-line order).
#[derive(Debug, Clone)]
pub enum Request {
    One(Command),
    Group(Vec<Command>),
    /// Like `One`, and the outcome carries the answer the event earned
    /// ([`ordo_domain::response_of`]), so a caller needs no query after the commit.
    Answered(Command),
}

/// An HTTP-style answer: status and JSON body.
pub type Answer = (u16, String);

/// A batch decided in memory: each request's result and answer, and the journal records.
type Decided = (Vec<Result<Sequences, CommandError>>, Vec<Option<Answer>>, Vec<JournalRecord>);

/// Why a request was not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Rejected(Rejection),
    /// Command `index` (0-based) of a group was rejected; nothing of the group was applied.
    #[error("command {} of the group was rejected: {rejection}", index + 1)]
    RejectedInGroup { index: usize, rejection: Rejection },
    #[error("the batch could not be committed: {0}")]
    Store(StoreError),
}

/// Journal sequence numbers of the events one request produced.
pub type Sequences = Vec<u64>;

/// What a committed batch did.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    pub results: Vec<Result<Sequences, CommandError>>,
    /// Per request: the answer of an accepted `Request::Answered`.
    pub answers: Vec<Option<Answer>>,
    /// Set when the batch as a whole failed to commit (every result then carries it too).
    pub error: Option<StoreError>,
    /// The pipeline had decided this batch on a state the journal no longer matched (another
    /// writer, or a failed commit before it), so it was decided again after a rebuild.
    pub redecided: bool,
    pub availability: Vec<AvailabilityChanged>,
    /// Events another writer had appended and this engine caught up on before deciding.
    pub caught_up: u64,
    pub commit_attempts: u32,
}

/// How the engine's state was rebuilt on open.
#[derive(Debug, Clone, Copy, Default)]
pub struct StartupReport {
    pub snapshot_seq: Option<u64>,
    pub replayed: u64,
    pub millis: u128,
}

pub struct Engine<S: Store> {
    core: Core,
    store: S,
    startup: StartupReport,
    /// A reload failed: `core.state` may hold batches the store refused and must not be read
    /// or decided on until a reload succeeds.
    stale: bool,
}

/// Everything the engine owns except the store, so a batch can be decided while the store
/// commits the previous one on another thread (see [`Engine::execute_stream`]).
struct Core {
    state: State,
    clock: Box<dyn Clock>,
    /// The date the cached availability figures (and their projection) are computed for.
    ats_date: ordo_types::Date,
    /// How long projection writes may be coalesced across batches (zero: every batch).
    projection_interval: Duration,
    /// SKUs that gained available units in the batch being decided (offered to backorders).
    arrived: std::collections::BTreeSet<ordo_types::Sku>,
    /// Projection rows are known to lag the journal; the next batch writes all pending rows.
    projections_lag: bool,
    last_projection_flush: Instant,
    /// Pending projection rows are being written, a slice per batch, until none are left.
    draining: bool,
    /// The journal chain's last link (the next row is linked to it) and the key links are made
    /// with (see [`chain`]).
    chain_head: chain::Link,
    audit_key: Vec<u8>,
    /// Outbox messages of the batch being decided (`ordo_domain::outbox::messages_of`).
    messages: Vec<(u64, ordo_domain::outbox::OutboxMessage)>,
}

/// A decided batch, owning everything its commit writes.
struct Prepared {
    first_seq: u64,
    results: Vec<Result<Sequences, CommandError>>,
    answers: Vec<Option<Answer>>,
    records: Vec<JournalRecord>,
    stock: Vec<ordo_domain::StockRow>,
    availability: Vec<AvailabilityChanged>,
    availability_rows: Vec<AvailabilityRow>,
    messages: Vec<(u64, ordo_domain::outbox::OutboxMessage)>,
    projection_seq: Option<u64>,
    now: Timestamp,
}

impl Prepared {
    fn batch(&self) -> CommitBatch<'_> {
        CommitBatch {
            first_seq: self.first_seq,
            records: &self.records,
            stock: &self.stock,
            availability: &self.availability,
            availability_rows: &self.availability_rows,
            messages: &self.messages,
            projection_seq: self.projection_seq,
            now: self.now,
        }
    }
}

const MAX_COMMIT_ATTEMPTS: u32 = 5;
/// Coalesced projection rows are written early when this many rows are pending.
const MAX_PENDING_PROJECTION_ROWS: usize = 250_000;
/// Coalesced projection rows written with one batch at least (~3 ms of a commit): a second's
/// rows under full load (~5,500) go out over a few batches instead of adding ~15 ms to one.
pub const PROJECTION_ROWS_PER_BATCH: usize = 1_024;

impl<S: Store> Engine<S> {
    /// Opens the engine: loads the newest snapshot if any, replays the journal after it,
    /// and recomputes availability.
    pub fn open(mut store: S, clock: Box<dyn Clock>) -> Result<Self, StoreError> {
        let started = Instant::now();
        let (state, snapshot_seq) = Self::load(&mut store, true)?;
        let replayed = state.last_seq() - snapshot_seq.unwrap_or(0);
        let core = Core {
            state,
            clock,
            ats_date: ordo_types::Date(0),
            projection_interval: Duration::ZERO,
            arrived: std::collections::BTreeSet::new(),
            projections_lag: false,
            last_projection_flush: Instant::now(),
            draining: false,
            chain_head: [0; 32],
            audit_key: Vec::new(),
            messages: Vec::new(),
        };
        let mut engine = Self { core, store, startup: StartupReport::default(), stale: false };
        engine.finish_rebuild()?;
        if engine.core.projections_lag {
            // Repair now, once, so readers of the projections see the head. A failure leaves
            // the rows marked for the next batch that commits.
            let _ = engine.flush_projections();
        }
        engine.startup = StartupReport { snapshot_seq, replayed, millis: started.elapsed().as_millis() };
        Ok(engine)
    }

    fn load(store: &mut S, use_snapshot: bool) -> Result<(State, Option<u64>), StoreError> {
        let mut state = State::new();
        let mut snapshot_seq = None;
        // A snapshot is a cache of the journal: one written by a build whose state had another
        // shape (it is not self-describing) is passed over, and the journal alone rebuilds.
        if use_snapshot
            && let Some((seq, bytes)) = store.load_snapshot()?
            && let Ok(cached) = postcard::from_bytes::<State>(&bytes)
            && cached.last_seq() == seq
        {
            state = cached;
            snapshot_seq = Some(seq);
        }
        // A full rebuild recomputes and (if needed) rewrites everything: no per-row tracking.
        state.set_change_tracking(false);
        let replayed = replay_into(store, &mut state);
        state.set_change_tracking(true);
        replayed?;
        Ok((state, snapshot_seq))
    }

    /// Recomputes all availability as of the last journal record, which is what the
    /// projections hold; the first batch on a later date refreshes everything (see `execute`).
    fn finish_rebuild(&mut self) -> Result<(), StoreError> {
        self.load_chain_head()?;
        let as_of = self.projection_time()?;
        self.core.state.mark_all_dirty();
        self.core.state.refresh_availability(as_of);
        self.core.state.clear_dirty();
        // Whatever write was under way is moot: the rows are rewritten below, or already match.
        self.core.draining = false;
        self.core.ats_date = as_of.date();
        let head = self.core.state.last_seq();
        if self.store.projection_seq()?.is_some_and(|p| p < head) {
            // A writer stopped before flushing coalesced projections: every row is rewritten by
            // the next batch that commits. Never written from here: this also runs after a
            // failed commit, and writing on the failure path could fail again, without end.
            self.core.state.mark_all_stock_dirty();
            self.core.state.mark_all_availability_dirty();
            self.core.projections_lag = true;
        }
        Ok(())
    }

    /// Lets projection writes be coalesced over `interval` (the journal is still committed, and
    /// acknowledged, batch by batch). Zero — the default — writes them with every batch.
    /// Reads that must be exact come from the engine's state; SQL readers see projections as of
    /// the journal position recorded with them, at most `interval` behind.
    pub fn set_projection_interval(&mut self, interval: Duration) {
        self.core.projection_interval = interval;
    }

    pub fn projection_interval(&self) -> Duration {
        self.core.projection_interval
    }

    /// Whether projection rows are waiting to be written (coalesced, or part of a write
    /// spread over batches: a write under way always has rows pending).
    pub fn has_unwritten_projections(&self) -> bool {
        self.core.state.has_pending_projection_rows()
    }

    /// Writes every projection row changed since the last write, in its own transaction.
    pub fn flush_projections(&mut self) -> Result<(), StoreError> {
        let outcome = self.execute(Vec::new());
        debug_assert!(outcome.results.is_empty());
        match outcome.error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn projection_time(&mut self) -> Result<Timestamp, StoreError> {
        Ok(self.store.last_recorded_at()?.unwrap_or_else(|| self.core.clock.now()))
    }

    /// Rebuilds the state from the journal alone (no snapshot), as `ordo verify` does.
    pub fn replay_from_scratch(&mut self) -> Result<State, StoreError> {
        let (mut state, _) = Self::load(&mut self.store, false)?;
        let as_of = self.projection_time()?;
        state.mark_all_dirty();
        state.refresh_availability(as_of);
        state.clear_dirty();
        Ok(state)
    }

    /// The instant the cached availability is computed for.
    pub fn availability_as_of(&mut self) -> Result<Timestamp, StoreError> {
        self.projection_time()
    }

    pub fn state(&self) -> &State {
        &self.core.state
    }

    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    pub fn startup(&self) -> StartupReport {
        self.startup
    }

    pub fn now(&self) -> Timestamp {
        self.core.clock.now()
    }

    /// Submits one command as its own batch.
    pub fn execute_one(&mut self, command: Command) -> Result<Sequences, CommandError> {
        self.execute(vec![Request::One(command)]).results.pop().expect("one result per request")
    }

    /// Applies a batch of requests and commits it in one transaction. Each request succeeds or
    /// is rejected on its own; a rejected request changes nothing.
    pub fn execute(&mut self, requests: Vec<Request>) -> BatchOutcome {
        if self.stale
            && let Err(e) = self.reload()
        {
            return Self::failed(&requests, e, 0);
        }
        let flush_all = requests.is_empty();
        let mut attempts = 0;
        let mut caught_up = 0;
        loop {
            attempts += 1;
            let head = match self.store.begin() {
                Ok(h) => h,
                Err(e) => return Self::failed(&requests, e, attempts),
            };
            if head != self.core.state.last_seq() {
                // Another writer appended: catch up inside our write lock before deciding.
                match self.catch_up(head) {
                    Ok(n) => caught_up += n,
                    Err(e) => {
                        self.store.rollback();
                        return Self::failed(&requests, e, attempts);
                    }
                }
            }
            let prepared = self.core.prepare(&requests, flush_all);
            match self.store.commit(&prepared.batch()) {
                Ok(()) => return prepared.outcome(caught_up, attempts),
                Err(e) => {
                    self.store.rollback();
                    // Memory holds events the database refused: rebuild before anything else.
                    if let Err(reload) = self.reload() {
                        return Self::failed(&requests, reload, attempts);
                    }
                    if !(matches!(e, StoreError::Conflict { .. }) && attempts < MAX_COMMIT_ATTEMPTS) {
                        return Self::failed(&requests, e, attempts);
                    }
                }
            }
        }
    }

    /// Executes batches as `next` supplies them, as a two-stage pipeline: while the store commits
    /// batch N on a second thread, batch N+1 is decided here. `next(true)` may block for work;
    /// `next(false)` must not (it is asked while a batch is committing); `None` from a blocking
    /// call ends the stream. Each batch comes with a token of the caller's (whom to answer, when
    /// it was handed over), given back to `done` with the batch's outcome.
    ///
    /// `done` receives each outcome in order, only after its commit, and for a batch the
    /// pipeline commits it runs on the committing thread (`ordo-commit`), right after the
    /// commit: an acknowledgement then waits neither for the next batch to be decided nor for
    /// this thread. The next commit waits for `done` instead, so `done` should only hand
    /// outcomes on.
    ///
    /// The committing thread appends a batch only if the journal head is exactly where the
    /// batch expects it. If it is not (another process wrote) or a commit fails, the pipeline
    /// stops, the state is rebuilt from the store, and the affected batches are re-run through
    /// [`Engine::execute`], which catches up before deciding.
    pub fn execute_stream<T: Send>(
        &mut self,
        mut next: impl FnMut(bool) -> Option<(Vec<Request>, T)>,
        mut done: impl FnMut(BatchOutcome, T) + Send,
    ) {
        while let Some(first) = next(true) {
            if !self.at_head() {
                // Another writer got in since our last batch: catch up the ordinary way.
                let (requests, token) = first;
                done(self.execute(requests), token);
                continue;
            }
            let (retry, ended) = self.pipeline(first, &mut next, &mut done);
            if !retry.is_empty() {
                if let Err(e) = self.reload() {
                    for (requests, token) in retry {
                        done(Self::failed(&requests, e.clone(), 1), token);
                    }
                    continue;
                }
                for (requests, token) in retry {
                    let mut outcome = self.execute(requests);
                    outcome.redecided = true;
                    done(outcome, token);
                }
            }
            if ended {
                return;
            }
        }
    }

    /// Whether the journal ends where this engine's state does (false also on a store error,
    /// which the ordinary path then reports).
    fn at_head(&mut self) -> bool {
        let head = self.store.begin();
        self.store.rollback();
        head.is_ok_and(|h| h == self.core.state.last_seq())
    }

    /// Runs the pipeline until the stream ends (`true`) or a commit fails; returns the batches
    /// that were decided but not committed, oldest first.
    fn pipeline<T: Send>(
        &mut self,
        first: (Vec<Request>, T),
        next: &mut impl FnMut(bool) -> Option<(Vec<Request>, T)>,
        done: &mut (impl FnMut(BatchOutcome, T) + Send),
    ) -> (Vec<(Vec<Request>, T)>, bool) {
        let Engine { core, store, .. } = self;
        std::thread::scope(|scope| {
            let (jobs, job_inbox) = std::sync::mpsc::sync_channel::<(Prepared, T)>(1);
            // Per job: `None` once committed and acknowledged, else the token of a batch that
            // was not committed (every batch after a failure is not).
            let (results_out, results) = std::sync::mpsc::channel::<Option<T>>();
            let committer = std::thread::Builder::new().name("ordo-commit".into());
            committer
                .spawn_scoped(scope, move || {
                    let mut failed = false;
                    for (job, token) in job_inbox {
                        failed = failed || commit_at_expected_head(store, &job).is_err();
                        let returned = if failed {
                            Some(token)
                        } else {
                            done(job.outcome(0, 1), token);
                            None
                        };
                        if results_out.send(returned).is_err() {
                            return;
                        }
                    }
                })
                .expect("spawn the committing thread");
            let mut in_flight: std::collections::VecDeque<Vec<Request>> = std::collections::VecDeque::new();
            let mut upcoming = Some(first);
            let mut ended = false;
            loop {
                if let Some((requests, token)) = upcoming.take() {
                    let prepared = core.prepare(&requests, false);
                    in_flight.push_back(requests);
                    jobs.send((prepared, token)).expect("the committing thread outlives the pipeline");
                }
                if in_flight.len() < 2 && !ended {
                    upcoming = next(in_flight.is_empty());
                    if upcoming.is_some() {
                        continue;
                    }
                    if in_flight.is_empty() {
                        ended = true;
                    }
                }
                let Some(requests) = in_flight.pop_front() else { break };
                let answer = || results.recv().expect("the committing thread answers every job");
                if let Some(token) = answer() {
                    drop(jobs);
                    let mut retry = vec![(requests, token)];
                    for requests in in_flight.drain(..) {
                        retry.push((requests, answer().expect("nothing commits after a failed commit")));
                    }
                    // Every batch taken from `next` is decided at once (the `continue` above).
                    debug_assert!(upcoming.is_none());
                    return (retry, false);
                }
                if ended && in_flight.is_empty() {
                    break;
                }
            }
            (Vec::new(), ended)
        })
    }

    fn failed(requests: &[Request], e: StoreError, attempts: u32) -> BatchOutcome {
        BatchOutcome {
            results: requests.iter().map(|_| Err(CommandError::Store(e.clone()))).collect(),
            answers: vec![None; requests.len()],
            error: Some(e),
            commit_attempts: attempts,
            ..Default::default()
        }
    }

    fn catch_up(&mut self, head: u64) -> Result<u64, StoreError> {
        if head < self.core.state.last_seq() {
            return Err(StoreError::Corrupt(format!(
                "the journal ends at {head} but this engine has applied up to {}",
                self.core.state.last_seq()
            )));
        }
        let before = self.core.state.last_seq();
        replay_into(&mut self.store, &mut self.core.state)?;
        self.load_chain_head()?;
        // The rows the other writer touched stay dirty: rewriting them is idempotent, and it
        // keeps the projections whole even if that writer had not flushed its own yet.
        self.core.state.refresh_availability(self.core.clock.now());
        Ok(self.core.state.last_seq() - before)
    }

    fn load_chain_head(&mut self) -> Result<(), StoreError> {
        self.core.chain_head = match self.store.chain_head()? {
            Some(link) => link
                .try_into()
                .map_err(|_| StoreError::Corrupt("the journal's last chain link is not 32 bytes".into()))?,
            None => [0; 32],
        };
        Ok(())
    }

    /// The key journal rows are linked with from now on (`ORDO_AUDIT_KEY`; empty when unset).
    /// Every writer of one journal must use the same key, or `verify_chain` reports the rows.
    pub fn set_audit_key(&mut self, key: &[u8]) {
        self.core.audit_key = key.to_vec();
    }

    /// Recomputes the journal chain with this engine's key: every changed, inserted, deleted or
    /// reordered row is reported. Returns `(rows checked, problems)`.
    pub fn verify_chain(&mut self) -> Result<(u64, Vec<String>), StoreError> {
        let mut check = chain::ChainCheck::default();
        let key = self.core.audit_key.clone();
        self.store.audit(&mut |row| check.visit(&key, row))?;
        Ok((check.rows, check.problems))
    }

    /// Applies what other writers (another process, the CLI beside a server) appended since
    /// this engine's last batch, without taking the write lock: reads see the journal's
    /// committed end. Returns how many events were applied.
    pub fn catch_up_reads(&mut self) -> Result<u64, StoreError> {
        if self.stale {
            return Ok(0);
        }
        let before = self.core.state.last_seq();
        replay_into(&mut self.store, &mut self.core.state)?;
        let applied = self.core.state.last_seq() - before;
        if applied > 0 {
            self.core.state.refresh_availability(self.core.clock.now());
            self.load_chain_head()?;
        }
        Ok(applied)
    }

    /// Discards in-memory state and rebuilds it from the store.
    pub fn reload(&mut self) -> Result<(), StoreError> {
        match Self::load(&mut self.store, true) {
            Ok((state, _)) => {
                self.core.state = state;
                self.stale = false;
                self.finish_rebuild()
            }
            Err(e) => {
                // Never leave refused batches readable: drop them until a reload succeeds.
                self.core.state = State::new();
                self.stale = true;
                Err(e)
            }
        }
    }

    /// Writes a snapshot of the current state so the next start replays only what follows.
    pub fn snapshot(&mut self) -> Result<u64, StoreError> {
        let bytes = postcard::to_stdvec(&self.core.state).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let seq = self.core.state.last_seq();
        self.store.save_snapshot(seq, &bytes)?;
        Ok(seq)
    }
}

impl Prepared {
    fn outcome(self, caught_up: u64, commit_attempts: u32) -> BatchOutcome {
        BatchOutcome {
            results: self.results,
            answers: self.answers,
            availability: self.availability,
            caught_up,
            commit_attempts,
            error: None,
            redecided: false,
        }
    }
}

impl Core {
    /// Decides and applies a batch in memory and gathers what its commit must write. Touches no
    /// store: the caller commits, and on failure discards this state by reloading.
    fn prepare(&mut self, requests: &[Request], flush_all: bool) -> Prepared {
        let now = self.clock.now();
        let first_seq = self.state.last_seq() + 1;
        let marked_before = self.state.projection_rows_marked();
        self.arrived.clear();
        let (results, answers, mut records) = self.decide_batch(requests, now);
        if now.date() != self.ats_date && !records.is_empty() {
            // Incoming windows are counted in days: a new date can change any figure. Only a
            // batch that journals something moves the date forward, so the figures written are
            // always as of the last journal record — what a restart recomputes them for.
            if self.state.channels().iter().any(|c| c.allocation.incoming_window_days.is_some()) {
                self.state.mark_all_dirty();
            }
            self.ats_date = now.date();
        }
        let mut availability = self.state.refresh_availability(now);
        let arrived = std::mem::take(&mut self.arrived);
        if !arrived.is_empty() {
            let more = self.reallocate_backorders(&arrived, now, &mut records);
            if !more.is_empty() {
                availability = merge_changes(availability, more);
            }
        }
        let marked_here = self.state.projection_rows_marked().saturating_sub(marked_before);
        let due = self.projections_lag
            || self.projection_interval.is_zero()
            || self.last_projection_flush.elapsed() >= self.projection_interval
            || self.state.pending_projection_rows() > MAX_PENDING_PROJECTION_ROWS;
        if due && !self.draining {
            self.draining = true;
            self.last_projection_flush = Instant::now();
            self.projections_lag = false;
        }
        let (stock, availability_rows, flushed) = if flush_all || self.draining {
            // Taken now, not after the commit: the next batch may be decided before this one
            // commits. If the commit fails, the reload sees `projection_seq` behind and rewrites.
            // Coalesced rows are written a slice per batch: all of them in one commit held every
            // request behind it for ~100 ms (68,000 stock rows after 5 s of order capture). A
            // slice is at least twice what this batch marked, so the pending rows shrink with every
            // batch however busy, and the write ends.
            let limit = if flush_all || self.projection_interval.is_zero() {
                usize::MAX
            } else {
                PROJECTION_ROWS_PER_BATCH.max(2 * marked_here)
            };
            let stock = self.state.take_dirty_stock_up_to(limit);
            let availability_rows = self.availability_rows(limit - stock.len());
            let flushed = !self.state.has_pending_projection_rows();
            self.draining &= !flushed;
            (stock, availability_rows, flushed)
        } else {
            (Vec::new(), Vec::new(), false)
        };
        Prepared {
            first_seq,
            results,
            answers,
            records,
            stock,
            availability,
            availability_rows,
            messages: std::mem::take(&mut self.messages),
            // Rows are never older than this mark; it moves once every pending row is written.
            projection_seq: flushed.then(|| self.state.last_seq()),
            now,
        }
    }

    /// Availability projection rows for (at most `limit` of) the SKUs changed since the last
    /// projection write.
    fn availability_rows(&mut self, limit: usize) -> Vec<AvailabilityRow> {
        self.state
            .take_dirty_availability_up_to(limit)
            .into_iter()
            .map(|(sku, figures)| AvailabilityRow {
                sku: sku.to_string(),
                figures: figures.into_iter().map(|(c, a)| (c.to_string(), a)).collect(),
            })
            .collect()
    }

    fn decide_batch(&mut self, requests: &[Request], now: Timestamp) -> Decided {
        let mut records = Vec::new();
        let mut results: Vec<Option<Result<Sequences, CommandError>>> = vec![None; requests.len()];
        let mut answers: Vec<Option<Answer>> = vec![None; requests.len()];
        for index in self.decision_order(requests) {
            let request = &requests[index];
            let results = &mut results[index];
            match request {
                Request::Answered(command) => match self.state.decide(command, now) {
                    Ok(event) => {
                        let seq = self.state.last_seq() + 1;
                        let mut inner = &event;
                        while let Event::Attributed { event, .. } = inner {
                            inner = event;
                        }
                        answers[index] = Some(match inner {
                            Event::Idempotent { record, .. } => (record.status, record.body.clone()),
                            other => ordo_domain::response_of(other, seq),
                        });
                        *results = Some(Ok(vec![self.append(event, now, &mut records)]));
                    }
                    Err(r) => *results = Some(Err(CommandError::Rejected(r))),
                },
                Request::One(command) => match self.state.decide(command, now) {
                    Ok(event) => *results = Some(Ok(vec![self.append(event, now, &mut records)])),
                    Err(r) => *results = Some(Err(CommandError::Rejected(r))),
                },
                Request::Group(commands) => {
                    // A group is all-or-nothing: keep the state from before it to restore.
                    let before = (commands.len() > 1).then(|| self.state.clone());
                    // The chain head moves with every sealed record: a refused group's records
                    // are dropped, so the head must go back with them.
                    let mark = (records.len(), self.messages.len(), self.chain_head);
                    let mut seqs = Vec::with_capacity(commands.len());
                    let mut failure = None;
                    for (index, command) in commands.iter().enumerate() {
                        match self.state.decide(command, now) {
                            Ok(event) => seqs.push(self.append(event, now, &mut records)),
                            Err(rejection) => {
                                failure = Some(CommandError::RejectedInGroup { index, rejection });
                                break;
                            }
                        }
                    }
                    match failure {
                        None => *results = Some(Ok(seqs)),
                        Some(e) => {
                            records.truncate(mark.0);
                            self.messages.truncate(mark.1);
                            self.chain_head = mark.2;
                            if let Some(before) = before {
                                self.state = before;
                            }
                            *results = Some(Err(e));
                        }
                    }
                }
            }
        }
        let results = results.into_iter().map(|r| r.expect("every request decided")).collect();
        (results, answers, records)
    }

    /// The order requests are decided in: as given, except that within each run of consecutive
    /// order captures the best-ranked order goes first (channel priority, service level,
    /// promise, age), so orders arriving together compete for short stock fairly.
    fn decision_order(&self, requests: &[Request]) -> Vec<usize> {
        use ordo_domain::orders::book::OrderCommand;
        let capture = |c: &Command| -> Option<ordo_domain::orders::allocation::AllocationRank> {
            let mut c = c;
            while let Command::Idempotent { command, .. } | Command::Attributed { command, .. } = c {
                c = command;
            }
            match c {
                Command::Order(OrderCommand::Capture(order)) => {
                    Some(ordo_domain::orders::book::rank(&self.state, order))
                }
                _ => None,
            }
        };
        let rank = |r: &Request| match r {
            Request::One(c) | Request::Answered(c) => capture(c),
            Request::Group(_) => None,
        };
        let mut order: Vec<usize> = (0..requests.len()).collect();
        let mut start = 0;
        while start < requests.len() {
            let mut end = start;
            while end < requests.len() && rank(&requests[end]).is_some() {
                end += 1;
            }
            if end > start + 1 {
                order[start..end].sort_by_cached_key(|i| rank(&requests[*i]));
            }
            start = end.max(start + 1);
        }
        order
    }

    /// Offers stock that arrived in this batch to backordered orders, best-ranked first; their
    /// reservations join the batch. Returns the availability changes this made.
    fn reallocate_backorders(
        &mut self,
        arrived: &std::collections::BTreeSet<ordo_types::Sku>,
        now: Timestamp,
        records: &mut Vec<JournalRecord>,
    ) -> Vec<AvailabilityChanged> {
        use ordo_domain::orders::book::{OrderCommand, backorders_waiting_for};
        let waiting = backorders_waiting_for(&self.state, arrived);
        if waiting.is_empty() {
            return Vec::new();
        }
        for key in waiting {
            if let Ok(event) = self.state.decide(&Command::Order(OrderCommand::Reallocate { key }), now) {
                self.append(event, now, records);
            }
        }
        self.state.refresh_availability(now)
    }

    fn append(&mut self, event: Event, now: Timestamp, records: &mut Vec<JournalRecord>) -> u64 {
        // Units becoming available (receipts, returns restocked, releases…) may fill backorders.
        let into_available = |m: &ordo_domain::inventory::Movement| {
            m.postings.iter().any(|p| {
                matches!(
                    p.to,
                    ordo_domain::inventory::Account::Stock { state: ordo_domain::inventory::StockState::Available, .. }
                )
            })
        };
        match event.effect() {
            Event::Moved(m) if into_available(m) => {
                self.arrived.insert(m.sku.clone());
            }
            Event::Order(ordo_domain::orders::book::OrderEvent::Recorded { movements, .. }) => {
                self.arrived.extend(movements.iter().filter(|m| into_available(m)).map(|m| m.sku.clone()));
            }
            _ => {}
        }
        let seq = self.state.last_seq() + 1;
        self.messages.extend(ordo_domain::outbox::messages_of(&event, now).into_iter().map(|m| (seq, m)));
        let mut record = JournalRecord::new(seq, now, &event);
        self.chain_head = chain::seal(&self.audit_key, &self.chain_head, &mut record);
        records.push(record);
        self.state.apply_owned(seq, event);
        seq
    }
}

/// Folds a second round of availability changes into the first: one change per SKU and
/// channel, from the first old figure to the last new one (dropped if they end up equal).
fn merge_changes(first: Vec<AvailabilityChanged>, second: Vec<AvailabilityChanged>) -> Vec<AvailabilityChanged> {
    let mut merged: std::collections::BTreeMap<(ordo_types::Sku, ordo_types::Code), AvailabilityChanged> =
        first.into_iter().map(|c| ((c.sku.clone(), c.channel.clone()), c)).collect();
    for c in second {
        merged.entry((c.sku.clone(), c.channel.clone())).and_modify(|m| m.new = c.new).or_insert(c);
    }
    merged.into_values().filter(|c| c.old != c.new).collect()
}

/// Commits `job` only if the journal head is where the job was decided against.
fn commit_at_expected_head<S: Store>(store: &mut S, job: &Prepared) -> Result<(), StoreError> {
    let head = store.begin()?;
    let result = if head + 1 == job.first_seq {
        store.commit(&job.batch())
    } else {
        Err(StoreError::Conflict { seq: head + 1 })
    };
    if result.is_err() {
        store.rollback();
    }
    result
}

impl<S: Store> Drop for Engine<S> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return; // the store may be mid-transaction; the next open repairs lagging projections
        }
        if self.has_unwritten_projections() {
            // Best effort: a failure here is repaired on the next open (projections lag the head).
            let _ = self.flush_projections();
        }
    }
}

/// Applies every journal record after `state.last_seq()`. Reading and decoding run on this
/// thread while a second thread applies, so a cold start uses both cores.
fn replay_into<S: Store + ?Sized>(store: &mut S, state: &mut State) -> Result<(), StoreError> {
    const CHUNK: usize = 4_096;
    let after = state.last_seq();
    std::thread::scope(|scope| {
        let (chunks, inbox) = std::sync::mpsc::sync_channel::<Vec<(u64, Event)>>(8);
        let applier = scope.spawn(move || -> Result<(), StoreError> {
            for chunk in inbox {
                for (seq, event) in chunk {
                    if seq != state.last_seq() + 1 {
                        return Err(StoreError::Corrupt(format!(
                            "journal gap: expected {}, found {seq}",
                            state.last_seq() + 1
                        )));
                    }
                    state.apply_owned(seq, event);
                }
            }
            Ok(())
        });
        let mut failure = None;
        let mut chunk = Vec::with_capacity(CHUNK);
        let read = store.replay(after, &mut |seq, payload| {
            if failure.is_some() {
                return;
            }
            match decode_event(payload) {
                Ok(event) => {
                    chunk.push((seq, event));
                    if chunk.len() == CHUNK {
                        // A closed inbox means the applier stopped on an error, reported below.
                        let _ = chunks.send(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK)));
                    }
                }
                Err(e) => failure = Some(StoreError::Corrupt(format!("journal record {seq} does not decode: {e}"))),
            }
        });
        if !chunk.is_empty() {
            let _ = chunks.send(chunk);
        }
        drop(chunks);
        let applied = applier.join().expect("the replay thread does not panic");
        read?;
        if let Some(e) = failure {
            return Err(e);
        }
        applied
    })
}
