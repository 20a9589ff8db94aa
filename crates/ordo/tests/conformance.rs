//! Store conformance: the contract of `ordo_engine::Store` (see `crates/ordo-engine/src/store.rs`)
//! checked the same way against every implementation. Each check is written once, generic over a
//! [`Backend`], and `conformance_suite!` instantiates one test module per store, so SQLite and
//! PostgreSQL cannot drift apart.
//!
//! The PostgreSQL tests need a server: `postgres://postgres@127.0.0.1:5432/postgres` unless
//! `ORDO_TEST_PG_URL` says otherwise. Each test creates a database of its own and drops it at
//! the end. A missing server FAILS these tests on purpose: a skipped contract check is
//! indistinguishable from a passing one in CI output.

use std::collections::BTreeMap;
use std::sync::Barrier;
use std::time::Duration;

use ordo_domain::catalog::{
    Address, AllocationPolicy, Capabilities, Channel, ChannelKind, Component, Item, LegalEntity, Location, LocationKind,
};
use ordo_domain::inventory::{Buckets, MoveCommand, OutsideAccount, ReasonCode};
use ordo_domain::{AvailabilityChanged, Command, Event, State, StockRow};
use ordo_engine::{
    AvailabilityRow, BatchOutcome, CommandError, CommitBatch, Engine, FixedClock, JournalRecord, Request, Store,
    StoreError,
};
use ordo_store_postgres::PostgresStore;
use ordo_store_sqlite::SqliteStore;
use ordo_types::{Code, CurrencyCode, Date, Sku, Timestamp, Units};

// ----- backends ------------------------------------------------------------------------------

/// One test's database, and how to reach it.
trait Backend {
    type S: Store + ordo_engine::Outbox + 'static;

    /// A new, empty database for one test.
    fn fresh() -> Self;

    /// A new connection to this test's database (every call is a separate writer).
    fn open(&self) -> Self::S;

    /// Runs `sql` on the store's own connection; `Err` carries the database's message.
    fn raw(store: &mut Self::S, sql: &str) -> Result<(), String>;

    /// Statements besides UPDATE and DELETE that would destroy journal rows on this database.
    fn other_destructive_statements() -> &'static [&'static str] {
        &[]
    }
}

struct SqliteBackend {
    dir: tempfile::TempDir,
}

impl Backend for SqliteBackend {
    type S = SqliteStore;

    fn fresh() -> Self {
        Self { dir: tempfile::tempdir().expect("temporary directory") }
    }

    fn open(&self) -> SqliteStore {
        SqliteStore::open(self.dir.path().join("ordo.db")).expect("open SQLite store")
    }

    fn raw(store: &mut SqliteStore, sql: &str) -> Result<(), String> {
        store.connection().execute_batch(sql).map_err(|e| e.to_string())
    }
}

const DEFAULT_PG_SERVER: &str = "postgres://postgres@127.0.0.1:5432/postgres";

struct PostgresBackend {
    server: String,
    url: String,
    name: String,
}

impl Backend for PostgresBackend {
    type S = PostgresStore;

    fn fresh() -> Self {
        let server = std::env::var("ORDO_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_PG_SERVER.to_owned());
        let url = ordo_store_postgres::create_fresh_database(&server, "ordo_test").unwrap_or_else(|e| {
            panic!("these tests need PostgreSQL at {server} (override with ORDO_TEST_PG_URL): {e}")
        });
        let name = url
            .parse::<ordo_store_postgres::postgres::Config>()
            .expect("create_fresh_database returns a valid URL")
            .get_dbname()
            .expect("the URL names the new database")
            .to_owned();
        Self { server, url, name }
    }

    fn open(&self) -> PostgresStore {
        PostgresStore::connect(&self.url).expect("connect PostgreSQL store")
    }

    fn raw(store: &mut PostgresStore, sql: &str) -> Result<(), String> {
        store
            .client()
            .batch_execute(sql)
            .map_err(|e| e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_owned()))
    }

    fn other_destructive_statements() -> &'static [&'static str] {
        &["TRUNCATE journal"]
    }
}

impl Drop for PostgresBackend {
    fn drop(&mut self) {
        // Best effort: a leftover test database is clutter, not a failure.
        let _ = ordo_store_postgres::drop_database(&self.server, &self.name);
    }
}

// ----- the suite, once per backend ---------------------------------------------------------

macro_rules! conformance_suite {
    ($module:ident, $backend:ty) => {
        mod $module {
            use super::*;

            #[test]
            fn commands_persist_across_reopen() {
                super::commands_persist_across_reopen::<$backend>();
            }

            #[test]
            fn projections_match_state() {
                super::projections_match_state::<$backend>();
            }

            #[test]
            fn rejected_command_changes_nothing() {
                super::rejected_command_changes_nothing::<$backend>();
            }

            #[test]
            fn rejected_group_rolls_back_alone() {
                super::rejected_group_rolls_back_alone::<$backend>();
            }

            #[test]
            fn journal_rows_cannot_be_updated_or_deleted() {
                super::journal_rows_cannot_be_updated_or_deleted::<$backend>();
            }

            #[test]
            fn taken_or_skipped_sequence_is_a_conflict() {
                super::taken_or_skipped_sequence_is_a_conflict::<$backend>();
            }

            #[test]
            fn interleaved_writers_never_fork() {
                super::interleaved_writers_never_fork::<$backend>();
            }

            #[test]
            fn concurrent_writer_threads_never_fork() {
                super::concurrent_writer_threads_never_fork::<$backend>();
            }

            #[test]
            fn coalesced_projections_are_rebuilt_after_a_crash() {
                super::coalesced_projections_are_rebuilt_after_a_crash::<$backend>();
            }

            #[test]
            fn a_large_projection_write_is_spread_over_batches() {
                super::a_large_projection_write_is_spread_over_batches::<$backend>();
            }

            #[test]
            fn coalescing_writer_is_covered_by_the_other_writer() {
                super::coalescing_writer_is_covered_by_the_other_writer::<$backend>();
            }

            #[test]
            fn relay_cursors_and_dead_letters() {
                super::relay_cursors_and_dead_letters::<$backend>();
            }

            #[test]
            fn snapshot_then_more_commands_equals_full_replay() {
                super::snapshot_then_more_commands_equals_full_replay::<$backend>();
            }
        }
    };
}

conformance_suite!(sqlite, SqliteBackend);
conformance_suite!(postgres, PostgresBackend);

// ----- fixtures ------------------------------------------------------------------------------

/// The relays' side of the outbox: rows read in id order from any point, cursors that only move
/// forward, dead letters kept with their reason and redriven once, the bus cursor marking rows
/// delivered.
fn relay_cursors_and_dead_letters<B: Backend>() {
    use ordo_engine::{Outbox, RelayDeadLetter};
    let backend = B::fresh();
    let mut engine = open_engine(&backend);
    run_ok(&mut engine, ones(catalog()));
    for m in movements() {
        run_ok(&mut engine, vec![Request::One(m)]);
    }
    let mut relay = backend.open();
    let head = relay.outbox_head().unwrap();
    assert!(head >= 3, "the movements queued availability messages");
    let all = relay.outbox_after(0, 10_000).unwrap();
    assert_eq!(all.len() as u64, engine.store_mut().outbox_pending().unwrap());
    assert!(all.windows(2).all(|w| w[0].id < w[1].id), "id order");
    assert_eq!(all.last().map(|r| r.id), Some(head));
    assert_eq!(relay.outbox_after(all[1].id, 1).unwrap(), vec![all[2].clone()]);
    assert!(relay.outbox_after(head, 10).unwrap().is_empty());

    assert_eq!(relay.outbox_cursor("channel:WEB").unwrap(), 0);
    let letter = RelayDeadLetter {
        id: 0,
        destination: "channel:WEB".into(),
        outbox_id: all[1].id,
        topic: all[1].topic.clone(),
        key: all[1].key.clone(),
        payload: "[]".into(),
        reason: "rejected: HTTP 422".into(),
        attempts: 1,
        failed_at: now(),
        redriven_at: None,
    };
    relay.outbox_advance("channel:WEB", all[2].id, std::slice::from_ref(&letter), now()).unwrap();
    // Cursors never move back (a late writer of an older position changes nothing).
    relay.outbox_advance("channel:WEB", all[0].id, &[], now()).unwrap();
    assert_eq!(backend.open().outbox_cursor("channel:WEB").unwrap(), all[2].id);
    let kept = relay.relay_dead_letters().unwrap();
    assert_eq!(kept.len(), 1);
    assert!(kept[0].id > 0);
    assert_eq!(RelayDeadLetter { id: 0, ..kept[0].clone() }, letter);
    relay.relay_redriven(kept[0].id, now()).unwrap();
    assert_eq!(relay.relay_dead_letters().unwrap()[0].redriven_at, Some(now()));
    assert!(relay.relay_redriven(kept[0].id, now()).is_err(), "redriven once");
    assert!(relay.relay_redriven(999, now()).is_err(), "unknown");

    // A channel's cursor does not mark anything delivered; the bus's does.
    assert_eq!(engine.store_mut().outbox_pending().unwrap(), all.len() as u64);
    relay.outbox_advance(ordo_engine::BUS_DESTINATION, head, &[], now()).unwrap();
    assert_eq!(engine.store_mut().outbox_pending().unwrap(), 0);
}

fn sku(s: &str) -> Sku {
    Sku::new(s).expect("valid SKU")
}

fn code(s: &str) -> Code {
    Code::new(s).expect("valid code")
}

/// 2026-11-26T10:00:00Z, the moment every test runs at.
fn now() -> Timestamp {
    let day: Date = "2026-11-26".parse().expect("valid date");
    Timestamp::from_millis(i64::from(day.days_since_epoch()) * 86_400_000 + 10 * 3_600_000)
}

fn open_engine<B: Backend>(backend: &B) -> Engine<B::S> {
    Engine::open(backend.open(), Box::new(FixedClock::at(now()))).expect("open engine")
}

const ENTITY: &str = "ACME";
const SKUS: [&str; 3] = ["SKU-A", "SKU-B", "KIT"];
const CHANNELS: [&str; 2] = ["WEB", "AMZ"];

fn location(c: &str) -> Command {
    Command::DefineLocation(Location {
        code: code(c),
        name: format!("Location {c}"),
        kind: LocationKind::Warehouse,
        legal_entity: code(ENTITY),
        address: Address::default(),
        geo: None,
        time_zone: "UTC".into(),
        capabilities: Capabilities { ship: true, pickup: false, returns: true },
    })
}

fn item(s: &str, components: &[(&str, u32)]) -> Command {
    Command::DefineItem(Item {
        sku: sku(s),
        title: format!("Item {s}"),
        style: None,
        options: BTreeMap::new(),
        gtin: None,
        uom_conversions: BTreeMap::new(),
        components: components.iter().map(|(c, q)| Component { sku: sku(c), quantity: *q }).collect(),
        sku_class: None,
    })
}

fn channel(c: &str, kind: ChannelKind, locations: &[&str], priority: u16) -> Command {
    Command::DefineChannel(Channel {
        code: code(c),
        name: format!("Channel {c}"),
        kind,
        legal_entity: code(ENTITY),
        locations: locations.iter().map(|l| code(l)).collect(),
        priority,
        allocation: AllocationPolicy {
            // AMZ sees half, so the two channels' figures differ and both are checked.
            percentage_cap: (c == "AMZ").then_some(50),
            buffer: 0,
            incoming_window_days: Some(30),
        },
    })
}

/// Two warehouses, two channels, two stocked SKUs and a bundle of them.
fn catalog() -> Vec<Command> {
    vec![
        Command::DefineLegalEntity(LegalEntity {
            code: code(ENTITY),
            name: "Acme Ltd".into(),
            functional_currency: CurrencyCode::new("USD").expect("valid currency"),
        }),
        location("WH1"),
        location("WH2"),
        item("SKU-A", &[]),
        item("SKU-B", &[]),
        item("KIT", &[("SKU-A", 1), ("SKU-B", 2)]),
        channel("WEB", ChannelKind::Shopify, &["WH1", "WH2"], 1),
        channel("AMZ", ChannelKind::Amazon, &["WH1"], 2),
    ]
}

fn receipt(s: &str, l: &str, units: Units) -> Command {
    Command::Move(MoveCommand::Receipt { sku: sku(s), location: code(l), units, expectation: None })
}

fn reserve(r: &str, s: &str, l: &str, units: Units) -> Command {
    Command::Move(MoveCommand::Commit { reservation: code(r), sku: sku(s), location: code(l), units })
}

/// A day's worth of every kind of movement the projections have a column for.
fn movements() -> Vec<Command> {
    vec![
        receipt("SKU-A", "WH1", 100),
        receipt("SKU-B", "WH1", 50),
        receipt("SKU-A", "WH2", 20),
        reserve("R1", "SKU-A", "WH1", 10),
        Command::Move(MoveCommand::Pick { reservation: code("R1"), units: 10 }),
        Command::Move(MoveCommand::Ship { reservation: code("R1"), units: 4 }),
        Command::Move(MoveCommand::TransferShip {
            transfer: code("T1"),
            sku: sku("SKU-B"),
            from: code("WH1"),
            to: code("WH2"),
            units: 5,
        }),
        Command::Move(MoveCommand::Hold {
            sku: sku("SKU-A"),
            location: code("WH2"),
            units: 3,
            reason: ReasonCode::QualityHold,
        }),
        Command::Move(MoveCommand::Expect {
            expectation: code("PO1"),
            sku: sku("SKU-B"),
            location: code("WH2"),
            units: 30,
            expected_on: "2026-12-01".parse().expect("valid date"),
        }),
    ]
}

fn ones(commands: Vec<Command>) -> Vec<Request> {
    commands.into_iter().map(Request::One).collect()
}

/// Runs a batch that must be accepted whole; returns the outcome for its counters.
fn run_ok<S: Store>(engine: &mut Engine<S>, requests: Vec<Request>) -> BatchOutcome {
    let outcome = engine.execute(requests);
    for (i, result) in outcome.results.iter().enumerate() {
        if let Err(e) = result {
            panic!("request {i} of the batch failed: {e}");
        }
    }
    outcome
}

/// Outbox rows a batch leaves: one message per batch that changed any figure.
fn outbox_rows(outcome: &BatchOutcome) -> u64 {
    u64::from(!outcome.availability.is_empty())
}

// ----- observations --------------------------------------------------------------------------

/// Every journal sequence, in the order the store replays them.
fn journal_seqs<S: Store>(store: &mut S) -> Vec<u64> {
    let mut seqs = Vec::new();
    store.replay(0, &mut |seq, _| seqs.push(seq)).expect("replay journal");
    seqs
}

fn assert_contiguous(seqs: &[u64], expected_len: u64) {
    let expected: Vec<u64> = (1..=expected_len).collect();
    assert_eq!(seqs, expected.as_slice(), "journal sequences must be exactly 1..={expected_len}");
}

fn sorted_stock(mut rows: Vec<StockRow>) -> Vec<StockRow> {
    rows.sort_by(|a, b| (&a.sku, &a.location).cmp(&(&b.sku, &b.location)));
    rows
}

fn all_ats(state: &State) -> Vec<(String, String, Option<Units>)> {
    let mut out = Vec::new();
    for s in SKUS {
        for c in CHANNELS {
            out.push((s.to_owned(), c.to_owned(), state.ats(&sku(s), &code(c))));
        }
    }
    out
}

/// The engine-visible state must match: sequence, stock, ATS, and then everything else.
fn assert_same_state(actual: &State, expected: &State, context: &str) {
    assert_eq!(actual.last_seq(), expected.last_seq(), "{context}: last_seq");
    assert_eq!(sorted_stock(actual.stock_rows()), sorted_stock(expected.stock_rows()), "{context}: stock rows");
    assert_eq!(all_ats(actual), all_ats(expected), "{context}: ATS");
    // Pending change tracking (projection rows not yet written) is not part of the ledger.
    let (mut actual, mut expected) = (actual.clone(), expected.clone());
    actual.clear_dirty();
    expected.clear_dirty();
    assert!(actual == expected, "{context}: full state differs");
}

/// What the store's projections say, for before/after comparisons.
#[derive(Debug, PartialEq)]
struct Projections {
    seqs: Vec<u64>,
    stock: Vec<StockRow>,
    availability: Vec<(String, String, Units)>,
    outbox_pending: u64,
    projection_seq: Option<u64>,
}

fn projections<S: Store>(store: &mut S) -> Projections {
    Projections {
        seqs: journal_seqs(store),
        stock: store.stock_projection().expect("stock projection"),
        availability: store.availability_projection().expect("availability projection"),
        outbox_pending: store.outbox_pending().expect("outbox count"),
        projection_seq: store.projection_seq().expect("projection mark"),
    }
}

/// The projections written batch by batch agree with the state the journal produces.
fn assert_projections_match<S: Store>(store: &mut S, state: &State) {
    let stored: Vec<StockRow> =
        store.stock_projection().expect("stock projection").into_iter().filter(|r| !r.buckets.is_empty()).collect();
    assert_eq!(sorted_stock(stored), sorted_stock(state.stock_rows()), "stock projection (non-zero rows) vs state");
    let availability = store.availability_projection().expect("availability projection");
    for (s, c, ats) in &availability {
        assert_eq!(state.ats(&sku(s), &code(c)), Some(*ats), "availability projection for {s} on {c}");
    }
    // ATS starts at zero, so any non-zero figure changed at some point and must be projected.
    for (s, c, ats) in all_ats(state) {
        if ats.is_some_and(|a| a != 0) {
            assert!(
                availability.iter().any(|(ps, pc, _)| *ps == s && *pc == c),
                "{s} on {c} has ATS {ats:?} but no availability row"
            );
        }
    }
}

// ----- the checks ----------------------------------------------------------------------------

fn commands_persist_across_reopen<B: Backend>() {
    let backend = B::fresh();
    let mut first = open_engine(&backend);
    for command in catalog().into_iter().chain(movements()) {
        first.execute_one(command.clone()).unwrap_or_else(|e| panic!("{command:?} was refused: {e}"));
    }
    let expected_seq = (catalog().len() + movements().len()) as u64;
    assert_eq!(first.state().last_seq(), expected_seq);

    let mut second = open_engine(&backend);
    assert_same_state(second.state(), first.state(), "reopened engine");
    assert_eq!(second.startup().snapshot_seq, None);
    assert_eq!(second.startup().replayed, expected_seq);
    assert_contiguous(&journal_seqs(second.store_mut()), expected_seq);
    // Spot-check a figure a human would: SKU-A at WH1 after receiving 100 and shipping 4.
    let a_wh1 = second.state().buckets(&sku("SKU-A"), &code("WH1"));
    assert_eq!((a_wh1.available(), a_wh1.on_hand()), (90, 96));
}

fn projections_match_state<B: Backend>() {
    let backend = B::fresh();
    let mut engine = open_engine(&backend);
    let mut published = 0;
    published += outbox_rows(&run_ok(&mut engine, ones(catalog())));
    published += outbox_rows(&run_ok(&mut engine, ones(movements())));
    assert!(published > 0, "the movements must change some ATS");

    let state = engine.state().clone();
    assert_projections_match(engine.store_mut(), &state);
    assert_eq!(
        engine.store_mut().outbox_pending().expect("outbox count"),
        published,
        "one outbox message per batch that changed ATS"
    );

    // A second batch that empties a row: the projection keeps the row, at zero.
    let unhold = Command::Move(MoveCommand::Unhold { sku: sku("SKU-A"), location: code("WH2"), units: 3 });
    published += outbox_rows(&run_ok(&mut engine, vec![Request::One(unhold)]));
    let state = engine.state().clone();
    assert_projections_match(engine.store_mut(), &state);
    assert_eq!(engine.store_mut().outbox_pending().expect("outbox count"), published);

    // A fresh connection reads the same committed projections.
    let mut other = backend.open();
    assert_projections_match(&mut other, &state);
}

fn rejected_command_changes_nothing<B: Backend>() {
    let backend = B::fresh();
    let mut engine = open_engine(&backend);
    run_ok(&mut engine, ones(catalog()));
    run_ok(&mut engine, ones(movements()));
    let state_before = engine.state().clone();
    let before = projections(engine.store_mut());

    let over_reserve = reserve("R-BIG", "SKU-A", "WH1", 1_000);
    match engine.execute_one(over_reserve) {
        Err(CommandError::Rejected(_)) => {}
        other => panic!("reserving more than is available must be rejected, got {other:?}"),
    }
    assert_eq!(engine.state().last_seq(), state_before.last_seq());
    assert_same_state(engine.state(), &state_before, "after a rejection");
    assert_eq!(projections(engine.store_mut()), before, "journal and projections after a rejection");
    let mut reopened = open_engine(&backend);
    assert_same_state(reopened.state(), &state_before, "reopened after a rejection");
    assert_eq!(projections(reopened.store_mut()), before);
}

fn rejected_group_rolls_back_alone<B: Backend>() {
    let backend = B::fresh();
    let mut engine = open_engine(&backend);
    run_ok(&mut engine, ones(catalog()));
    run_ok(&mut engine, vec![Request::One(receipt("SKU-B", "WH1", 10))]);
    let head = engine.state().last_seq();
    let outbox_before = engine.store_mut().outbox_pending().expect("outbox count");

    let outcome = engine.execute(vec![
        Request::One(receipt("SKU-A", "WH1", 5)),
        Request::Group(vec![receipt("SKU-B", "WH1", 7), reserve("R-ALL", "SKU-B", "WH1", 1_000)]),
        Request::Group(vec![receipt("SKU-B", "WH2", 4), reserve("R-OK", "SKU-B", "WH2", 3)]),
        Request::One(receipt("SKU-A", "WH2", 2)),
    ]);
    assert_eq!(outcome.results.len(), 4);
    assert_eq!(outcome.results[0], Ok(vec![head + 1]));
    assert!(
        matches!(outcome.results[1], Err(CommandError::RejectedInGroup { index: 1, .. })),
        "second group command must be rejected: {:?}",
        outcome.results[1]
    );
    assert_eq!(outcome.results[2], Ok(vec![head + 2, head + 3]));
    assert_eq!(outcome.results[3], Ok(vec![head + 4]));

    // The rejected group's receipt of 7 is nowhere: not in memory, journal or projections.
    let state = engine.state().clone();
    assert_eq!(state.last_seq(), head + 4);
    assert_eq!(state.buckets(&sku("SKU-B"), &code("WH1")).available(), 10);
    assert_eq!(state.buckets(&sku("SKU-B"), &code("WH2")).on_hand(), 4);
    assert_contiguous(&journal_seqs(engine.store_mut()), head + 4);
    assert_projections_match(engine.store_mut(), &state);
    assert_eq!(engine.store_mut().outbox_pending().expect("outbox count"), outbox_before + outbox_rows(&outcome));
    let reopened = open_engine(&backend);
    assert_same_state(reopened.state(), &state, "reopened after a partly rejected batch");
    // The refused group's records were sealed into the chain before it was refused: the chain
    // must not keep them (every row after links to the last one kept).
    let (rows, problems) = engine.verify_chain().expect("chain read");
    assert_eq!(rows, head + 4);
    assert_eq!(problems, Vec::<String>::new());
}

fn journal_rows_cannot_be_updated_or_deleted<B: Backend>() {
    let backend = B::fresh();
    let mut engine = open_engine(&backend);
    run_ok(&mut engine, ones(catalog()));
    run_ok(&mut engine, ones(movements()));
    let state = engine.state().clone();
    let before = projections(engine.store_mut());

    let mut raw = backend.open();
    let mut attempts = vec![
        "UPDATE journal SET kind = 'tampered' WHERE seq = 1",
        "UPDATE journal SET seq = seq + 1000",
        "DELETE FROM journal WHERE seq = 2",
        "DELETE FROM journal",
    ];
    attempts.extend(B::other_destructive_statements());
    for sql in attempts {
        match B::raw(&mut raw, sql) {
            Ok(()) => panic!("`{sql}` succeeded on the journal"),
            Err(message) => {
                assert!(message.contains("journal rows cannot be"), "`{sql}` failed for the wrong reason: {message}")
            }
        }
    }
    assert_eq!(projections(&mut raw), before, "journal after tampering attempts");
    let reopened = open_engine(&backend);
    assert_same_state(reopened.state(), &state, "reopened after tampering attempts");
}

fn taken_or_skipped_sequence_is_a_conflict<B: Backend>() {
    let backend = B::fresh();
    let mut store = backend.open();
    let entity = Event::LegalEntityDefined(LegalEntity {
        code: code(ENTITY),
        name: "Acme Ltd".into(),
        functional_currency: CurrencyCode::new("USD").expect("valid currency"),
    });
    let stock = [StockRow {
        sku: sku("SKU-A"),
        location: code("WH1"),
        buckets: Buckets { states: [1, 2, 3, 4, 5, 6], in_transit_inbound: 7, incoming: 8 },
    }];
    let availability = [AvailabilityChanged { sku: sku("SKU-A"), channel: code("WEB"), old: 0, new: 1 }];
    let availability_rows =
        [AvailabilityRow { sku: "SKU-A".into(), figures: vec![("WEB".into(), 1), ("AMZ".into(), 0)] }];
    assert_eq!(store.last_recorded_at(), Ok(None), "an empty journal has no last record");
    assert_eq!(store.projection_seq(), Ok(Some(0)), "an empty database's projections are complete");
    assert_eq!(store.begin(), Ok(0), "an empty journal's head is 0");
    let first = [JournalRecord::new(1, now(), &entity)];
    store
        .commit(&CommitBatch {
            first_seq: 1,
            records: &first,
            stock: &[],
            availability: &[],
            availability_rows: &[],
            messages: &[],
            projection_seq: Some(1),
            now: now(),
        })
        .expect("first append");
    let committed = projections(&mut store);

    // Sequence 1 is taken: the store must refuse it, writing none of the batch.
    assert_eq!(store.begin(), Ok(1));
    let again = store.commit(&CommitBatch {
        first_seq: 1,
        records: &first,
        stock: &stock,
        availability: &availability,
        availability_rows: &availability_rows,
        messages: &[],
        projection_seq: Some(99),
        now: now(),
    });
    assert_eq!(again, Err(StoreError::Conflict { seq: 1 }));
    store.rollback();
    assert_eq!(projections(&mut store), committed, "after a taken sequence");

    // Sequence 3 would leave a hole at 2: also a conflict, never a gap.
    assert_eq!(store.begin(), Ok(1));
    let skipping = [JournalRecord::new(3, now(), &entity)];
    let gap = store.commit(&CommitBatch {
        first_seq: 3,
        records: &skipping,
        stock: &stock,
        availability: &availability,
        availability_rows: &availability_rows,
        messages: &[],
        projection_seq: Some(99),
        now: now(),
    });
    assert!(matches!(gap, Err(StoreError::Conflict { .. })), "a gap must be refused: {gap:?}");
    store.rollback();
    assert_eq!(projections(&mut store), committed, "after a skipped sequence");

    // The right sequence still goes through, projections and outbox with it, atomically.
    assert_eq!(store.begin(), Ok(1));
    let later = Timestamp::from_millis(now().millis() + 86_400_000);
    let second = [JournalRecord::new(2, later, &entity)];
    store
        .commit(&CommitBatch {
            first_seq: 2,
            records: &second,
            stock: &stock,
            availability: &availability,
            availability_rows: &availability_rows,
            messages: &[(
                2,
                ordo_domain::outbox::OutboxMessage {
                    topic: ordo_domain::outbox::EDI_DOCUMENT,
                    key: "EDI-ACME".into(),
                    payload: "{}".into(),
                },
            )],
            projection_seq: Some(2),
            now: now(),
        })
        .expect("append at the head");
    // The engine recomputes ATS as of the last record on open, so the store must report it.
    assert_eq!(store.last_recorded_at(), Ok(Some(later)));
    let after = projections(&mut backend.open());
    assert_contiguous(&after.seqs, 2);
    assert_eq!(after.stock, stock.to_vec());
    assert_eq!(
        after.availability,
        vec![("SKU-A".to_owned(), "AMZ".to_owned(), 0), ("SKU-A".to_owned(), "WEB".to_owned(), 1)]
    );
    // The batch's availability message and the message its event owed.
    assert_eq!(after.outbox_pending, 2);
    assert_eq!(after.projection_seq, Some(2));

    // An empty batch commits too (the engine sends one when every request was rejected).
    assert_eq!(store.begin(), Ok(2));
    store
        .commit(&CommitBatch {
            first_seq: 3,
            records: &[],
            stock: &[],
            availability: &[],
            availability_rows: &[],
            messages: &[],
            projection_seq: None,
            now: now(),
        })
        .expect("empty batch");
    assert_eq!(store.projection_seq(), Ok(Some(2)), "a batch without projections leaves the mark alone");

    // Replay starts strictly after `after`, in sequence order, payloads intact.
    let mut replayed = Vec::new();
    store.replay(1, &mut |seq, payload| replayed.push((seq, payload.to_vec()))).expect("replay");
    assert_eq!(replayed, vec![(2, second[0].payload.clone())]);
}

fn interleaved_writers_never_fork<B: Backend>() {
    let backend = B::fresh();
    let mut a = open_engine(&backend);
    let mut b = open_engine(&backend);
    let mut published = 0;

    // A defines the catalog; B knows nothing of it until its next batch.
    published += outbox_rows(&run_ok(&mut a, ones(catalog())));
    let setup = catalog().len() as u64;

    // B receives stock, catching up on A's catalog first.
    let received = run_ok(&mut b, vec![Request::One(receipt("SKU-A", "WH1", 10))]);
    assert_eq!(received.caught_up, setup, "B catches up on the catalog");
    published += outbox_rows(&received);

    // A reserves stock only B has seen: A must catch up inside the lock, then decide.
    let reserved = a.execute(vec![Request::One(reserve("R-A", "SKU-A", "WH1", 8))]);
    assert_eq!(reserved.caught_up, 1, "A catches up on B's receipt");
    assert_eq!(reserved.results, vec![Ok(vec![setup + 2])]);
    published += outbox_rows(&reserved);

    // B, still believing 10 are available, tries to reserve 5: after catching up only 2 are.
    let refused = b.execute(vec![Request::One(reserve("R-B", "SKU-A", "WH1", 5))]);
    assert_eq!(refused.caught_up, 1, "B catches up on A's reservation");
    assert!(
        matches!(refused.results[0], Err(CommandError::Rejected(_))),
        "units must not be promised twice: {:?}",
        refused.results[0]
    );
    published += outbox_rows(&refused);
    let b_reserves = run_ok(&mut b, vec![Request::One(reserve("R-B", "SKU-A", "WH1", 2))]);
    let a_receives = run_ok(&mut a, vec![Request::One(receipt("SKU-B", "WH2", 6))]);
    let b_receives = run_ok(&mut b, vec![Request::One(receipt("SKU-A", "WH2", 1))]);
    assert_eq!(b_reserves.caught_up, 0, "B is current after its refused batch");
    assert_eq!((a_receives.caught_up, b_receives.caught_up), (1, 1), "each catches up on the other");
    for outcome in [&b_reserves, &a_receives, &b_receives] {
        published += outbox_rows(outcome);
    }
    let total = setup + 5;

    // An empty batch is how an idle engine catches up.
    let a_sync = run_ok(&mut a, vec![]);
    assert_eq!(a_sync.caught_up, 1);
    assert_eq!(run_ok(&mut b, vec![]).caught_up, 0, "B wrote last");

    let mut fresh = open_engine(&backend);
    let replayed = fresh.replay_from_scratch().expect("replay from scratch");
    assert_contiguous(&journal_seqs(fresh.store_mut()), total);
    assert_same_state(a.state(), &replayed, "writer A vs replay");
    assert_same_state(b.state(), &replayed, "writer B vs replay");
    assert_same_state(fresh.state(), &replayed, "fresh engine vs replay");
    assert_projections_match(fresh.store_mut(), &replayed);
    assert_eq!(fresh.store_mut().outbox_pending().expect("outbox count"), published);
    // The journal chain runs unbroken across both writers (each links to the other's rows).
    assert_eq!(fresh.verify_chain().expect("chain check"), (total, vec![]));
    assert!(fresh.store_mut().chain_head().expect("chain head").is_some_and(|c| c.len() == 32));

    // No unit lost or doubled: 10 received at WH1, all of them reserved, 8 + 2.
    let wh1 = replayed.buckets(&sku("SKU-A"), &code("WH1"));
    assert_eq!((wh1.available(), wh1.on_hand()), (0, 10));
    assert_eq!(replayed.reservation_record(&code("R-A")).map(|r| r.committed), Some(8));
    assert_eq!(-replayed.outside_balance(&sku("SKU-A"), OutsideAccount::Supplier), 11);
}

fn concurrent_writer_threads_never_fork<B: Backend>() {
    const PER_WRITER: u64 = 200;
    let backend = B::fresh();
    let mut setup = open_engine(&backend);
    let mut published = outbox_rows(&run_ok(&mut setup, ones(catalog())));
    let setup_events = catalog().len() as u64;

    struct Tally {
        published: u64,
        caught_up: u64,
        max_attempts: u32,
    }
    let writers: Vec<(Engine<B::S>, Units)> = vec![(open_engine(&backend), 1), (open_engine(&backend), 2)];
    let start = Barrier::new(writers.len());
    let finished: Vec<(Engine<B::S>, Tally)> = std::thread::scope(|scope| {
        let handles: Vec<_> = writers
            .into_iter()
            .map(|(mut engine, units)| {
                let start = &start;
                scope.spawn(move || {
                    let mut tally = Tally { published: 0, caught_up: 0, max_attempts: 0 };
                    start.wait();
                    for _ in 0..PER_WRITER {
                        let outcome = engine.execute(vec![Request::One(receipt("SKU-A", "WH1", units))]);
                        if let Err(e) = &outcome.results[0] {
                            panic!("writer receiving {units}: {e}");
                        }
                        tally.published += outbox_rows(&outcome);
                        tally.caught_up += outcome.caught_up;
                        tally.max_attempts = tally.max_attempts.max(outcome.commit_attempts);
                    }
                    (engine, tally)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("writer thread")).collect()
    });

    let total = setup_events + 2 * PER_WRITER;
    let mut fresh = open_engine(&backend);
    assert_contiguous(&journal_seqs(fresh.store_mut()), total);
    let replayed = fresh.replay_from_scratch().expect("replay from scratch");
    assert_same_state(fresh.state(), &replayed, "fresh engine vs replay");
    let wh1 = replayed.buckets(&sku("SKU-A"), &code("WH1"));
    assert_eq!(wh1.available(), PER_WRITER as Units * (1 + 2), "summed receipts");

    for (mut engine, tally) in finished {
        // The write lock serializes writers up front; a retry would mean it did not.
        assert_eq!(tally.max_attempts, 1, "a batch needed a retry");
        let last = run_ok(&mut engine, vec![]);
        // Each writer catches up on every event of the other exactly once.
        assert_eq!(tally.caught_up + last.caught_up, PER_WRITER);
        assert_same_state(engine.state(), &replayed, "writer after catching up");
        published += tally.published;
    }
    assert_projections_match(fresh.store_mut(), &replayed);
    assert_eq!(fresh.store_mut().outbox_pending().expect("outbox count"), published);
}

fn snapshot_then_more_commands_equals_full_replay<B: Backend>() {
    let backend = B::fresh();
    let mut engine = open_engine(&backend);
    run_ok(&mut engine, ones(catalog()));
    run_ok(&mut engine, ones(movements()));
    let snapshot_seq = engine.snapshot().expect("snapshot");
    assert_eq!(snapshot_seq, engine.state().last_seq());
    // Snapshotting again at the same sequence is harmless.
    assert_eq!(engine.snapshot().expect("repeat snapshot"), snapshot_seq);

    run_ok(
        &mut engine,
        vec![
            Request::One(Command::Move(MoveCommand::TransferReceive { transfer: code("T1"), units: 5 })),
            Request::One(receipt("SKU-B", "WH2", 12)),
            Request::One(reserve("R2", "SKU-B", "WH2", 4)),
        ],
    );
    let expected = engine.state().clone();
    drop(engine);

    let mut reopened = open_engine(&backend);
    let startup = reopened.startup();
    assert_eq!(startup.snapshot_seq, Some(snapshot_seq));
    assert_eq!(startup.replayed, 3, "only the events after the snapshot");
    assert_same_state(reopened.state(), &expected, "snapshot + tail vs live engine");
    let replayed = reopened.replay_from_scratch().expect("replay from scratch");
    assert_same_state(reopened.state(), &replayed, "snapshot + tail vs full replay");
    assert_projections_match(reopened.store_mut(), &replayed);
}

/// Long enough that no test ever reaches it: projections are written only when forced.
const NEVER: Duration = Duration::from_secs(3600);

fn coalesced_projections_are_rebuilt_after_a_crash<B: Backend>() {
    let backend = B::fresh();
    let mut engine = open_engine(&backend);
    run_ok(&mut engine, ones(catalog()));
    engine.set_projection_interval(NEVER);
    run_ok(&mut engine, ones(movements()));
    let expected = engine.state().clone();

    // The journal is committed; the projections still stand at the catalog.
    let mut reader = backend.open();
    assert_eq!(reader.projection_seq(), Ok(Some(catalog().len() as u64)));
    assert!(reader.stock_projection().expect("stock projection").is_empty());

    // A crash: no flush on the way out. (Leaks the connection, which the test can afford.)
    std::mem::forget(engine);

    let mut reopened = open_engine(&backend);
    assert_same_state(reopened.state(), &expected, "reopened after a crash");
    assert_eq!(reopened.store_mut().projection_seq(), Ok(Some(expected.last_seq())));
    assert_projections_match(reopened.store_mut(), &expected);
}

/// Coalesced rows beyond one batch's share are written over the batches that follow; the
/// projection mark moves only with the last of them, and a crash in between is repaired on open.
fn a_large_projection_write_is_spread_over_batches<B: Backend>() {
    const BULK: usize = 5_000;
    let backend = B::fresh();
    let mut engine = open_engine(&backend);
    run_ok(&mut engine, ones(catalog()));
    let bulk: Vec<String> = (0..BULK).map(|i| format!("BULK-{i:05}")).collect();
    run_ok(&mut engine, ones(bulk.iter().map(|s| item(s, &[])).collect()));
    let receipts = |units| -> Vec<Request> {
        bulk.iter().flat_map(|s| ["WH1", "WH2"].map(|l| Request::One(receipt(s, l, units)))).collect()
    };
    engine.set_projection_interval(NEVER);
    run_ok(&mut engine, receipts(3));
    let mark = engine.state().last_seq() - 2 * BULK as u64;
    let mut reader = backend.open();
    assert_eq!(reader.projection_seq(), Ok(Some(mark)));

    // Due at every batch from now on: each writes at most its share of the pending rows.
    engine.set_projection_interval(Duration::from_nanos(1));
    let pending = 2 * BULK + BULK; // stock rows and availability rows
    let slices = pending.div_ceil(ordo_engine::PROJECTION_ROWS_PER_BATCH);
    assert!(slices >= 2, "the test must need more than one batch");
    let mut batches = 0;
    loop {
        run_ok(&mut engine, vec![Request::One(receipt("SKU-A", "WH1", 1))]);
        batches += 1;
        if reader.projection_seq() != Ok(Some(mark)) {
            break;
        }
        let written = reader.stock_projection().expect("stock projection").len();
        assert!(
            written > 0 && written <= 2 * BULK + 1,
            "batch {batch}: {written} stock rows written so far",
            batch = batches
        );
        assert!(batches <= slices, "the write never ends");
    }
    // Each batch re-marks the two rows its own receipt touched: at most one slice more.
    assert!((slices..=slices + 1).contains(&batches), "{batches} batches for {slices} slices");
    let expected = engine.state().clone();
    assert_eq!(reader.projection_seq(), Ok(Some(expected.last_seq())), "the last slice moves the mark");
    assert_projections_match(&mut reader, &expected);

    // Busy batches, each marking more rows than a slice (2,000 stock rows and 1,000 SKUs' figures
    // of the ones already written): the write still ends, since a slice is at least twice what
    // its batch marked.
    engine.set_projection_interval(NEVER);
    run_ok(&mut engine, receipts(1));
    engine.set_projection_interval(Duration::from_nanos(1));
    let mark = reader.projection_seq().expect("mark");
    let mut busy = 0;
    while reader.projection_seq().expect("mark") == mark {
        busy += 1;
        assert!(busy <= 20, "the write never ends under batches that mark more than a slice");
        let start = (busy * 1_000) % BULK;
        let requests = bulk[start..start + 1_000]
            .iter()
            .flat_map(|s| ["WH1", "WH2"].map(|l| Request::One(receipt(s, l, 1))))
            .collect();
        run_ok(&mut engine, requests);
    }
    let expected = engine.state().clone();
    assert_eq!(reader.projection_seq(), Ok(Some(expected.last_seq())));
    assert_projections_match(&mut reader, &expected);

    // Again, and a crash halfway: the next open rewrites what was not written.
    engine.set_projection_interval(NEVER);
    run_ok(&mut engine, receipts(2));
    engine.set_projection_interval(Duration::from_nanos(1));
    run_ok(&mut engine, vec![Request::One(receipt("SKU-A", "WH1", 1))]);
    let expected = engine.state().clone();
    assert!(reader.projection_seq().expect("mark") < Some(expected.last_seq()));
    std::mem::forget(engine);
    let mut reopened = open_engine(&backend);
    assert_eq!(reopened.store_mut().projection_seq(), Ok(Some(expected.last_seq())));
    assert_projections_match(reopened.store_mut(), &expected);
}

fn coalescing_writer_is_covered_by_the_other_writer<B: Backend>() {
    let backend = B::fresh();
    let mut lazy = open_engine(&backend);
    let mut eager = open_engine(&backend);
    run_ok(&mut lazy, ones(catalog()));
    lazy.set_projection_interval(NEVER);
    run_ok(&mut lazy, ones(movements()));

    // The eager writer's batch catches up on the lazy one's events and writes their rows too,
    // so the projection mark it records is true even though the lazy writer never flushed.
    run_ok(&mut eager, vec![Request::One(receipt("SKU-B", "WH1", 1))]);
    let expected = eager.state().clone();
    let mut reader = backend.open();
    assert_eq!(reader.projection_seq(), Ok(Some(expected.last_seq())));
    assert_projections_match(&mut reader, &expected);

    std::mem::forget(lazy);
    let reopened = open_engine(&backend);
    assert_same_state(reopened.state(), &expected, "reopened after the lazy writer vanished");
}
