//! The engine thread: requests queued while a batch is being processed are committed together in
//! the next batch (group commit), every submitter gets its own answer only after the commit, and
//! concurrent submitters never lose or duplicate a movement.

use std::sync::mpsc;

use ordo_domain::catalog::{
    AllocationPolicy, Capabilities, Channel, ChannelKind, Item, LegalEntity, Location, LocationKind,
};
use ordo_domain::inventory::{MoveCommand, MoveRejection};
use ordo_domain::{Command, Rejection};
use ordo_engine::{CommandError, Engine, EngineHandle, FixedClock, Request, Store};
use ordo_store_sqlite::SqliteStore;
use ordo_types::{Code, CurrencyCode, Sku, Timestamp};

fn code(s: &str) -> Code {
    Code::new(s).unwrap()
}

fn sku(i: usize) -> Sku {
    Sku::new(format!("SKU-{i}")).unwrap()
}

fn catalog(skus: usize) -> Vec<Command> {
    let mut out = vec![
        Command::DefineLegalEntity(LegalEntity {
            code: code("E"),
            name: "Entity".into(),
            functional_currency: CurrencyCode::new("USD").unwrap(),
        }),
        Command::DefineLocation(Location {
            code: code("WH"),
            name: "Warehouse".into(),
            kind: LocationKind::Warehouse,
            legal_entity: code("E"),
            address: Default::default(),
            geo: None,
            time_zone: "UTC".into(),
            capabilities: Capabilities { ship: true, pickup: false, returns: true },
        }),
    ];
    for i in 0..skus {
        out.push(Command::DefineItem(Item {
            sku: sku(i),
            title: format!("Item {i}"),
            style: None,
            options: Default::default(),
            gtin: None,
            uom_conversions: Default::default(),
            components: vec![],
            sku_class: None,
        }));
    }
    out.push(Command::DefineChannel(Channel {
        code: code("WEB"),
        name: "Web".into(),
        kind: ChannelKind::Shopify,
        legal_entity: code("E"),
        locations: vec![code("WH")],
        priority: 1,
        allocation: AllocationPolicy::default(),
    }));
    out
}

fn receipt(i: usize, units: i64) -> Request {
    Request::One(Command::Move(MoveCommand::Receipt { sku: sku(i), location: code("WH"), units, expectation: None }))
}

fn open(path: &std::path::Path) -> Engine<SqliteStore> {
    Engine::open(SqliteStore::open(path).unwrap(), Box::new(FixedClock::at(Timestamp::from_millis(0)))).unwrap()
}

/// SKU-`i`'s available units as the stock projection holds them.
fn projected_available(path: &std::path::Path, i: usize) -> i64 {
    let store = SqliteStore::open(path).unwrap();
    store
        .connection()
        .query_row("SELECT available FROM stock_balance WHERE sku = ?1", [sku(i).to_string()], |r| r.get(0))
        .unwrap()
}

fn outbox_rows(path: &std::path::Path) -> i64 {
    let store = SqliteStore::open(path).unwrap();
    store.connection().query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0)).unwrap()
}

#[test]
fn requests_queued_during_a_batch_commit_together_and_each_gets_its_answer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("handle.db");
    let engine = open(&path);
    let (handle, thread) = EngineHandle::spawn(engine, 1_000);
    handle.submit(Request::Group(catalog(10))).wait().unwrap();
    let before = outbox_rows(&path);

    // Hold the engine thread inside a query while 50 submissions queue up behind it.
    let (release, gate) = mpsc::channel::<()>();
    let (entered, wait_entered) = mpsc::channel::<()>();
    let blocker = {
        let handle = handle.clone();
        std::thread::spawn(move || {
            handle.query(move |_| {
                entered.send(()).unwrap();
                gate.recv().unwrap();
            })
        })
    };
    wait_entered.recv().unwrap();
    let mut pending: Vec<_> = (0..50).map(|i| handle.submit(receipt(i % 10, 1 + i as i64))).collect();
    // One that must be rejected without affecting its batch-mates.
    pending.push(handle.submit(receipt(0, 0)));
    release.send(()).unwrap();
    blocker.join().unwrap();

    let rejected = pending.pop().unwrap().wait();
    assert_eq!(rejected, Err(CommandError::Rejected(Rejection::Move(MoveRejection::QuantityNotPositive(0)))));
    let seqs: Vec<u64> = pending.into_iter().map(|p| p.wait().unwrap()[0]).collect();
    // Acknowledged in submission order with contiguous journal sequences.
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    // All 50 movements went out in ONE batch: one outbox message.
    assert_eq!(outbox_rows(&path) - before, 1);

    // Units: SKU-k received Σ (1 + i) over i ≡ k (mod 10), i < 50.
    let totals =
        handle.query(|state| (0..10).map(|k| state.buckets(&sku(k), &code("WH")).available()).collect::<Vec<_>>());
    for (k, total) in totals.iter().enumerate() {
        let expected: i64 = (0..50).filter(|i| i % 10 == k).map(|i| 1 + i as i64).sum();
        assert_eq!(*total, expected, "SKU-{k}");
    }
    drop(handle);
    let engine = thread.join().unwrap();
    assert_eq!(engine.state().last_seq(), seqs[49]);
}

#[test]
fn concurrent_submitters_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("concurrent.db");
    let engine = open(&path);
    let (handle, thread) = EngineHandle::spawn(engine, 64);
    handle.submit(Request::Group(catalog(4))).wait().unwrap();
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let handle = handle.clone();
            std::thread::spawn(move || {
                for _ in 0..100 {
                    handle.submit(receipt(w, 2)).wait().unwrap();
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    drop(handle);
    let mut engine = thread.join().unwrap();
    for w in 0..4 {
        assert_eq!(engine.state().buckets(&sku(w), &code("WH")).available(), 200);
    }
    // The journal holds exactly setup + 400 events, and a fresh replay agrees with the live state.
    let replayed = engine.replay_from_scratch().unwrap();
    assert_eq!(replayed.last_seq(), engine.state().last_seq());
    assert_eq!(&replayed, engine.state());
    let journal_rows: i64 =
        engine.store_mut().connection().query_row("SELECT COUNT(*) FROM journal", [], |r| r.get(0)).unwrap();
    assert_eq!(journal_rows as u64, engine.state().last_seq());
    assert_eq!(engine.store_mut().outbox_pending().unwrap() as i64, outbox_rows(&path));
}

/// The pipeline acknowledges every batch in order, after its commit, and leaves exactly the
/// journal a one-batch-at-a-time engine would.
#[test]
fn a_stream_of_batches_commits_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stream.db");
    let mut engine = open(&path);
    engine.execute(vec![Request::Group(catalog(10))]);
    let setup_seq = engine.state().last_seq();
    let mut batches = (0..40).map(|b| (0..25).map(|i| receipt((b + i) % 10, 1)).collect::<Vec<_>>());
    let mut acknowledged = Vec::new();
    engine.execute_stream(
        |_| batches.next().map(|b| (b, ())),
        |outcome, ()| {
            assert!(outcome.error.is_none());
            acknowledged.extend(outcome.results.into_iter().map(|r| r.unwrap()[0]));
        },
    );
    let expected: Vec<u64> = (setup_seq + 1..=setup_seq + 1_000).collect();
    assert_eq!(acknowledged, expected);
    for k in 0..10 {
        assert_eq!(engine.state().buckets(&sku(k), &code("WH")).available(), 100);
    }
    drop(engine);
    let mut reopened = open(&path);
    assert_eq!(reopened.state().last_seq(), setup_seq + 1_000);
    let replayed = reopened.replay_from_scratch().unwrap();
    assert_eq!(&replayed, reopened.state());
}

/// A clock that, once armed, holds the batch being decided until an earlier batch has been
/// acknowledged (or ten seconds pass), and records which came first.
#[derive(Clone, Default)]
struct AckWatch(std::sync::Arc<(std::sync::Mutex<AckWatchState>, std::sync::Condvar)>);

#[derive(Default)]
struct AckWatchState {
    armed: bool,
    acknowledged: usize,
    acknowledged_while_deciding: Option<bool>,
}

impl AckWatch {
    fn update(&self, f: impl FnOnce(&mut AckWatchState)) {
        f(&mut self.0.0.lock().unwrap());
        self.0.1.notify_all();
    }
}

impl ordo_engine::Clock for AckWatch {
    fn now(&self) -> Timestamp {
        let (lock, acknowledged) = &*self.0;
        let mut state = lock.lock().unwrap();
        if std::mem::take(&mut state.armed) {
            let (mut state, _) = acknowledged
                .wait_timeout_while(state, std::time::Duration::from_secs(10), |s| s.acknowledged == 0)
                .unwrap();
            state.acknowledged_while_deciding = Some(state.acknowledged > 0);
        }
        Timestamp::from_millis(0)
    }
}

/// A committed batch's callers hear back as soon as it is committed, not once the engine has
/// decided the batch after it: the acknowledgement leaves from the committing thread.
#[test]
fn a_committed_batch_is_acknowledged_while_the_next_is_being_decided() {
    let dir = tempfile::tempdir().unwrap();
    let watch = AckWatch::default();
    let mut engine =
        Engine::open(SqliteStore::open(dir.path().join("ack.db")).unwrap(), Box::new(watch.clone())).unwrap();
    engine.execute(vec![Request::Group(catalog(2))]);
    let mut handed = 0;
    let on_ack = watch.clone();
    engine.execute_stream(
        |_| {
            handed += 1;
            if handed == 2 {
                // Asked while batch 1 commits; batch 2 is decided next, on this thread.
                watch.update(|s| s.armed = true);
            }
            (handed <= 2).then(|| (vec![receipt(0, 1)], handed))
        },
        |outcome, batch| {
            assert!(outcome.results.iter().all(|r| r.is_ok()), "batch {batch}");
            on_ack.update(|s| s.acknowledged += 1);
        },
    );
    assert_eq!(watch.0.0.lock().unwrap().acknowledged, 2);
    assert_eq!(
        watch.0.0.lock().unwrap().acknowledged_while_deciding,
        Some(true),
        "batch 1 was acknowledged only after batch 2 had been decided"
    );
}

/// Another process writes while the pipeline has a batch committing and the next one decided:
/// the decided batch must not land on top (its journal position is taken); it is re-decided
/// after catching up, nothing is lost and nothing is applied twice.
#[test]
fn a_write_from_another_process_mid_stream_is_caught_up_not_forked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stream-conflict.db");
    let mut engine = open(&path);
    engine.execute(vec![Request::Group(catalog(2))]);
    let mut other = open(&path);
    let mut calls = 0;
    let mut outcomes = Vec::new();
    engine.execute_stream(
        |_| {
            calls += 1;
            if calls == 4 {
                // Lands between two of our batches, while one of them is in flight.
                other
                    .execute_one(Command::Move(MoveCommand::Receipt {
                        sku: sku(1),
                        location: code("WH"),
                        units: 1_000,
                        expectation: None,
                    }))
                    .unwrap();
            }
            (calls <= 10).then(|| (vec![receipt(0, 1), receipt(1, 1)], calls))
        },
        |outcome, batch| outcomes.push((batch, outcome)),
    );
    // Every batch's outcome comes back once, in order, with its own token — the re-decided too.
    let batches: Vec<usize> = outcomes.iter().map(|(batch, _)| *batch).collect();
    assert_eq!(batches, (1..=10).collect::<Vec<_>>());
    let outcomes: Vec<_> = outcomes.into_iter().map(|(_, outcome)| outcome).collect();
    assert_eq!(outcomes.len(), 10);
    assert!(outcomes.iter().flat_map(|o| &o.results).all(|r| r.is_ok()));
    // The batch decided before the other process wrote was decided again, after it.
    assert!(outcomes.iter().any(|o| o.redecided), "the pipeline never met the other writer");
    assert_eq!(engine.state().buckets(&sku(0), &code("WH")).available(), 10);
    assert_eq!(engine.state().buckets(&sku(1), &code("WH")).available(), 1_010);
    let head = engine.state().last_seq();
    let replayed = engine.replay_from_scratch().unwrap();
    assert_eq!(&replayed, engine.state());
    let rows: i64 =
        engine.store_mut().connection().query_row("SELECT COUNT(*) FROM journal", [], |r| r.get(0)).unwrap();
    assert_eq!(rows as u64, head);
}

/// A store whose commits can be made to fail, to drive the engine's failure paths.
struct FailingStore {
    inner: SqliteStore,
    fail: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Store for FailingStore {
    fn begin(&mut self) -> Result<u64, ordo_engine::StoreError> {
        self.inner.begin()
    }
    fn commit(&mut self, batch: &ordo_engine::CommitBatch<'_>) -> Result<(), ordo_engine::StoreError> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(ordo_engine::StoreError::Database("disk full".into()));
        }
        self.inner.commit(batch)
    }
    fn rollback(&mut self) {
        self.inner.rollback()
    }
    fn replay(&mut self, after: u64, visit: &mut dyn FnMut(u64, &[u8])) -> Result<(), ordo_engine::StoreError> {
        self.inner.replay(after, visit)
    }
    fn load_snapshot(&mut self) -> Result<Option<(u64, Vec<u8>)>, ordo_engine::StoreError> {
        self.inner.load_snapshot()
    }
    fn save_snapshot(&mut self, seq: u64, state: &[u8]) -> Result<(), ordo_engine::StoreError> {
        self.inner.save_snapshot(seq, state)
    }
    fn stock_projection(&mut self) -> Result<Vec<ordo_domain::StockRow>, ordo_engine::StoreError> {
        self.inner.stock_projection()
    }
    fn availability_projection(&mut self) -> Result<Vec<(String, String, i64)>, ordo_engine::StoreError> {
        self.inner.availability_projection()
    }
    fn outbox_pending(&mut self) -> Result<u64, ordo_engine::StoreError> {
        self.inner.outbox_pending()
    }
    fn projection_seq(&mut self) -> Result<Option<u64>, ordo_engine::StoreError> {
        self.inner.projection_seq()
    }
    fn last_recorded_at(&mut self) -> Result<Option<Timestamp>, ordo_engine::StoreError> {
        self.inner.last_recorded_at()
    }
    fn chain_head(&mut self) -> Result<Option<Vec<u8>>, ordo_engine::StoreError> {
        self.inner.chain_head()
    }
    fn audit(
        &mut self,
        visit: &mut dyn FnMut(ordo_engine::chain::AuditRow<'_>),
    ) -> Result<(), ordo_engine::StoreError> {
        self.inner.audit(visit)
    }
}

/// Regression (review of #2): with projections lagging, a store that refuses every commit used
/// to send the engine into reload → flush → fail → reload … until the stack overflowed.
#[test]
fn a_store_that_refuses_commits_yields_errors_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("failing.db");
    let mut engine = open(&path);
    engine.execute(vec![Request::Group(catalog(2))]);
    engine.set_projection_interval(std::time::Duration::from_secs(3_600));
    engine.execute(vec![receipt(0, 5)]);
    std::mem::forget(engine); // a crash: the coalesced projection rows were never written

    let fail = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let store = FailingStore { inner: SqliteStore::open(&path).unwrap(), fail: fail.clone() };
    let mut engine = Engine::open(store, Box::new(FixedClock::at(Timestamp::from_millis(0)))).unwrap();
    let outcome = engine.execute(vec![receipt(1, 3)]);
    assert!(matches!(outcome.error, Some(ordo_engine::StoreError::Database(_))), "{:?}", outcome.error);
    // Nothing refused is visible, and once the store recovers the lagging rows are repaired.
    assert_eq!(engine.state().buckets(&sku(1), &code("WH")).available(), 0);
    fail.store(false, std::sync::atomic::Ordering::SeqCst);
    engine.execute(vec![receipt(1, 3)]).results[0].clone().unwrap();
    let mut rows = engine.store_mut().stock_projection().unwrap();
    rows.sort_by(|a, b| a.sku.cmp(&b.sku));
    let available: Vec<(String, i64)> = rows.iter().map(|r| (r.sku.to_string(), r.buckets.available())).collect();
    assert_eq!(available, [("SKU-0".to_owned(), 5), ("SKU-1".to_owned(), 3)]);
    assert_eq!(engine.store_mut().projection_seq().unwrap(), Some(engine.state().last_seq()));
}

/// Regression (review of #2): the CLI's store wrapper must pass the projection bookkeeping
/// through, so a CLI command repairs projections a crashed writer left behind.
#[test]
fn the_cli_repairs_projections_left_lagging_by_a_crashed_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lagging.db");
    let mut engine = open(&path);
    engine.execute(vec![Request::Group(catalog(2))]);
    engine.set_projection_interval(std::time::Duration::from_secs(3_600));
    engine.execute(vec![receipt(0, 7)]);
    std::mem::forget(engine);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ordo"))
        .arg("--db")
        .arg(&path)
        .args(["verify", "--json"])
        .env_remove("ORDO_DB")
        .env_remove("ORDO_DATABASE_URL")
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true, "{report:#}");
    assert_eq!(projected_available(&path, 0), 7);
}

/// Coalesced projection rows do not wait for more traffic: an engine with nothing to do for a
/// projection interval writes them itself, and the projection mark reaches the journal's end.
#[test]
fn an_idle_engine_writes_its_coalesced_projections() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idle.db");
    let mut engine = open(&path);
    engine.set_projection_interval(std::time::Duration::from_millis(200));
    let (handle, thread) = EngineHandle::spawn(engine, 1_000);
    handle.submit(Request::Group(catalog(2))).wait().unwrap();
    let head = handle.submit(receipt(1, 9)).wait().unwrap()[0];
    let mut reader = SqliteStore::open(&path).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while reader.projection_seq().unwrap() != Some(head) {
        assert!(std::time::Instant::now() < deadline, "the idle engine never wrote its projections");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(projected_available(&path, 1), 9);
    drop(handle);
    thread.join().unwrap();
}

/// Regression (review of #2): on a new date, a batch whose every command is refused journals
/// nothing and must publish nothing either.
#[test]
fn a_refused_batch_on_a_new_day_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new-day.db");
    let clock = FixedClock::at(Timestamp::from_millis(0));
    let mut engine = Engine::open(SqliteStore::open(&path).unwrap(), Box::new(clock.clone())).unwrap();
    let mut setup = catalog(1);
    // Give the channel an incoming window so the date matters.
    if let Some(Command::DefineChannel(c)) = setup.last_mut() {
        c.allocation.incoming_window_days = Some(3);
    }
    engine.execute(vec![Request::Group(setup)]);
    engine
        .execute_one(Command::Move(MoveCommand::Expect {
            expectation: code("PO-1"),
            sku: sku(0),
            location: code("WH"),
            units: 9,
            expected_on: "1970-01-05".parse().unwrap(),
        }))
        .unwrap();
    assert_eq!(engine.state().ats(&sku(0), &code("WEB")), Some(0), "due in 4 days, outside the 3-day window");
    let before = engine.store_mut().outbox_pending().unwrap();
    clock.set(Timestamp::from_millis(2 * 86_400_000)); // two days later: PO-1 now falls inside the window
    let refused = engine.execute(vec![receipt(0, 0)]);
    assert!(refused.results[0].is_err());
    assert_eq!(engine.store_mut().outbox_pending().unwrap(), before, "a refused batch wrote to the outbox");
    engine.execute(vec![receipt(0, 1)]).results[0].clone().unwrap();
    assert_eq!(engine.state().ats(&sku(0), &code("WEB")), Some(10), "1 on hand + 9 incoming inside the window");
    drop(engine);
    let mut reopened = Engine::open(SqliteStore::open(&path).unwrap(), Box::new(clock)).unwrap();
    let replayed = reopened.replay_from_scratch().unwrap();
    assert_eq!(&replayed, reopened.state());
}
