//! `ordo bench …`: the measurements behind BENCHMARKS.md. Each prints one line of figures per
//! case so runs can be compared side by side; none of them asserts anything about time.
//!
//! - `movements`: movements applied and durably committed per second, by batch size, on SQLite
//!   (a fresh temp file) or PostgreSQL (a fresh database).
//! - `ats`: full available-to-sell recompute and the incremental update after one movement.
//! - `replay`: cold start (journal replay) of N events, with and without a snapshot.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Subcommand, ValueEnum};
use ordo_domain::catalog::{
    AllocationPolicy, Capabilities, Channel, ChannelKind, Item, LegalEntity, Location, LocationKind,
};
use ordo_domain::inventory::{MoveCommand, ReasonCode};
use ordo_domain::{Command, State};
use ordo_engine::{Engine, FixedClock, Request};
use ordo_types::{Code, CurrencyCode, Sku, Timestamp, Units};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::backend::{AnyStore, Target};

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Subcommand, Debug)]
pub enum BenchCmd {
    /// Movements applied and durably committed per second, by batch size.
    Movements {
        #[arg(long, value_enum, default_value = "sqlite")]
        backend: Backend,
        /// Batch sizes to measure, e.g. 1,100,1000.
        #[arg(long, value_delimiter = ',', default_value = "1,100,1000")]
        batches: Vec<usize>,
        /// Movements per batch size (batch size 1 uses a tenth, fsync per movement is slow).
        #[arg(long, default_value_t = 200_000)]
        movements: usize,
        #[arg(long, default_value_t = 10_000)]
        skus: usize,
        /// PostgreSQL server to create the fresh benchmark database on.
        #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
        pg_server: String,
        /// Coalesce projection writes over this many milliseconds (0: every batch).
        #[arg(long, default_value_t = 0)]
        projection_interval_ms: u64,
        /// Commit each batch before deciding the next (no pipelining), as the CLI does.
        #[arg(long)]
        sequential: bool,
    },
    /// Full ATS recompute and incremental update latency.
    Ats {
        #[arg(long, default_value_t = 100_000)]
        skus: usize,
        #[arg(long, default_value_t = 10)]
        locations: usize,
        #[arg(long, default_value_t = 5)]
        channels: usize,
        #[arg(long, default_value_t = 20_000)]
        updates: usize,
    },
    /// Cold start: replay a journal of N events (built first in a temp SQLite file).
    Replay {
        #[arg(long, default_value_t = 1_000_000)]
        events: usize,
        #[arg(long, value_enum, default_value = "sqlite")]
        backend: Backend,
        #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
        pg_server: String,
    },
    /// Order pipeline: capture → validate → source → reserve → durably committed, orders/s.
    Orders {
        #[arg(long, value_enum, default_value = "sqlite")]
        backend: Backend,
        #[arg(long, default_value_t = 100_000)]
        orders: usize,
        #[arg(long, default_value_t = 1_000)]
        batch: usize,
        #[arg(long, default_value_t = 10_000)]
        skus: usize,
        #[arg(long, default_value_t = 8)]
        nodes: usize,
        #[arg(long, default_value_t = 3)]
        lines: usize,
        /// Also time the same orders decided and applied in memory only (no journal, no store):
        /// how much of the pipeline is deciding.
        #[arg(long)]
        decide_only: bool,
        #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
        pg_server: String,
    },
    /// Order capture over HTTP: authenticated, one idempotency key per request, many connections.
    Http {
        #[arg(long, default_value_t = 50_000)]
        orders: usize,
        #[arg(long, default_value_t = 64)]
        connections: usize,
        #[arg(long, default_value_t = 10_000)]
        skus: usize,
        /// Drive the server with `wrk` (a separate process) for this many seconds instead of the
        /// in-process client; `--orders` is then ignored.
        #[arg(long)]
        wrk: Option<u64>,
        /// wrk's threads (each a busy event loop on the same 2 cores as the server).
        #[arg(long, default_value_t = 1)]
        wrk_threads: usize,
        /// Send the orders as signed Shopify `orders/create` webhooks instead of API captures.
        #[arg(long)]
        webhooks: bool,
    },
    /// Journal entries posted durably: movements that each post one entry, in batches.
    Gl {
        #[arg(long, value_enum, default_value = "sqlite")]
        backend: Backend,
        #[arg(long, default_value_t = 1_000_000)]
        entries: usize,
        #[arg(long, default_value_t = 1_000)]
        batch: usize,
        #[arg(long, default_value_t = 10_000)]
        skus: usize,
        #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
        pg_server: String,
    },
    /// A settlement report of LINES lines read and reconciled against ORDERS shipped orders.
    Reconcile {
        #[arg(long, default_value_t = 1_000_000)]
        lines: usize,
        #[arg(long, default_value_t = 50_000)]
        orders: usize,
    },
    /// X12: an interchange of MEGABYTES of 850 purchase orders read (separators, envelopes,
    /// control numbers and counts checked), then read and mapped to canonical orders.
    X12 {
        #[arg(long, default_value_t = 10)]
        megabytes: usize,
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// From a stock movement to the availability update received by a (fake, loopback) Shopify
    /// endpoint, through the engine, the outbox and a channel relay, under RATE movements/s.
    Relay {
        #[arg(long, default_value_t = 5_000)]
        rate: u32,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value_t = 2_000)]
        skus: usize,
    },
    /// Flash sale: one SKU with a fixed number of units, many orders from many threads at once.
    FlashSale {
        #[arg(long, default_value_t = 10_000)]
        units: i64,
        #[arg(long, default_value_t = 200_000)]
        orders: usize,
        #[arg(long, default_value_t = 64)]
        tasks: usize,
    },
}

pub(crate) const T0: i64 = 1_795_000_000_000; // 2026-11-18, a fixed instant so runs are comparable

fn code(s: String) -> Code {
    Code::new(s).expect("bench codes are valid")
}

/// A plain stocked item `SKU-nnnnnn`, as every benchmark catalog uses.
pub(crate) fn plain_item(i: usize) -> Command {
    Command::DefineItem(Item {
        sku: sku(i),
        title: format!("Item {i}"),
        style: None,
        options: Default::default(),
        gtin: None,
        uom_conversions: Default::default(),
        components: vec![],
        sku_class: None,
    })
}

pub(crate) fn sku(i: usize) -> Sku {
    Sku::new(format!("SKU-{i:06}")).expect("bench SKUs are valid")
}

fn location(i: usize) -> Code {
    code(format!("LOC-{i:02}"))
}

/// A catalog of `skus` SKUs, `locations` locations and `channels` channels with mixed policies.
fn catalog(skus: usize, locations: usize, channels: usize) -> Vec<Command> {
    let mut out = vec![Command::DefineLegalEntity(LegalEntity {
        code: code("BENCH".into()),
        name: "Bench Retail".into(),
        functional_currency: CurrencyCode::new("USD").expect("valid"),
    })];
    for l in 0..locations {
        out.push(Command::DefineLocation(Location {
            code: location(l),
            name: format!("Location {l}"),
            kind: if l % 4 == 3 { LocationKind::Store } else { LocationKind::Warehouse },
            legal_entity: code("BENCH".into()),
            address: Default::default(),
            geo: None,
            time_zone: "America/New_York".into(),
            capabilities: Capabilities { ship: true, pickup: l % 4 == 3, returns: true },
        }));
    }
    out.extend((0..skus).map(plain_item));
    for c in 0..channels {
        // Channel c sells from a window of locations; policies vary so every term is exercised.
        let locs: Vec<Code> = (0..locations).filter(|l| (l + c) % 3 != 0 || locations < 3).map(location).collect();
        out.push(Command::DefineChannel(Channel {
            code: code(format!("CH-{c}")),
            name: format!("Channel {c}"),
            kind: ChannelKind::Other,
            legal_entity: code("BENCH".into()),
            locations: locs,
            priority: (c + 1) as u16,
            allocation: AllocationPolicy {
                percentage_cap: (c % 2 == 1).then_some(80),
                buffer: (c % 3) as Units,
                incoming_window_days: (c == 0).then_some(14),
            },
        }));
    }
    out
}

fn random_movement(rng: &mut StdRng, skus: usize, locations: usize, n: usize) -> Command {
    let s = sku(rng.random_range(0..skus));
    let l = location(rng.random_range(0..locations));
    Command::Move(match n % 4 {
        0 | 1 => MoveCommand::Receipt { sku: s, location: l, units: rng.random_range(1..=20), expectation: None },
        2 => MoveCommand::Adjust { sku: s, location: l, delta: 1, reason: ReasonCode::Found },
        _ => MoveCommand::Hold { sku: s, location: l, units: 1, reason: ReasonCode::QualityHold },
    })
}

pub(crate) fn open(backend: Backend, pg_server: &str, label: &str) -> Result<(Target, Option<tempfile::TempDir>)> {
    Ok(match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().context("creating a temp directory")?;
            (Target::Sqlite(dir.path().join(format!("{label}.db"))), Some(dir))
        }
        Backend::Postgres => {
            let url = ordo_store_postgres::create_fresh_database(pg_server, &format!("ordo_bench_{label}"))
                .context("creating a fresh PostgreSQL database")?;
            (Target::Postgres(url), None)
        }
    })
}

pub(crate) fn engine(target: &Target) -> Result<Engine<AnyStore>> {
    Ok(Engine::open(target.create_store()?, Box::new(FixedClock::at(Timestamp::from_millis(T0))))?)
}

pub(crate) fn setup(engine: &mut Engine<AnyStore>, commands: Vec<Command>) -> Result<()> {
    for chunk in commands.chunks(10_000) {
        let outcome = engine.execute(vec![Request::Group(chunk.to_vec())]);
        for r in outcome.results {
            r.context("bench setup")?;
        }
    }
    Ok(())
}

/// Drops a bench's PostgreSQL database (its engine already dropped); SQLite's goes with its
/// temporary directory.
pub(crate) fn discard(target: &Target, pg_server: &str) {
    if let Target::Postgres(url) = target
        && let Some(name) = url.rsplit('/').next()
    {
        let _ = ordo_store_postgres::drop_database(pg_server, name);
    }
}

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

pub fn run(_target: &Target, cmd: BenchCmd) -> Result<ExitCode> {
    match cmd {
        BenchCmd::Movements { backend, batches, movements, skus, pg_server, projection_interval_ms, sequential } => {
            println!(
                "bench movements: backend={backend:?} skus={skus} locations=10 channels=5 projection_interval={projection_interval_ms}ms {}",
                if sequential { "sequential" } else { "pipelined" }
            );
            for batch in batches {
                let (target, _dir) = open(backend, &pg_server, &format!("mv{batch}"))?;
                let mut engine = engine(&target)?;
                setup(&mut engine, catalog(skus, 10, 5))?;
                engine.set_projection_interval(Duration::from_millis(projection_interval_ms));
                let total = if batch == 1 { movements / 10 } else { movements };
                let mut rng = StdRng::seed_from_u64(42);
                let mut latencies = Vec::with_capacity(total / batch + 1);
                let mut accepted = 0usize;
                let mut store_error = None;
                // Requests are built before the clock starts: clients build them on their own
                // threads; what is measured is the engine deciding and committing them.
                let mut prebuilt: std::collections::VecDeque<Vec<Request>> = (0..total)
                    .map(|i| Request::One(random_movement(&mut rng, skus, 10, i)))
                    .collect::<Vec<_>>()
                    .chunks(batch)
                    .map(<[Request]>::to_vec)
                    .collect();
                let started = Instant::now();
                let mut next_batch = |_: &mut StdRng| prebuilt.pop_front();
                let mut tally = |outcome: ordo_engine::BatchOutcome, latency: Duration| {
                    latencies.push(latency);
                    accepted += outcome.results.iter().filter(|r| r.is_ok()).count();
                    if let Some(e) = outcome.error {
                        store_error.get_or_insert(e);
                    }
                };
                if sequential {
                    while let Some(requests) = next_batch(&mut rng) {
                        let t = Instant::now();
                        let outcome = engine.execute(requests);
                        tally(outcome, t.elapsed());
                    }
                } else {
                    // Latency: from the batch being handed to the engine to its acknowledgement.
                    engine.execute_stream(
                        |_| Some((next_batch(&mut rng)?, Instant::now())),
                        |outcome, handed| tally(outcome, handed.elapsed()),
                    );
                }
                if let Some(e) = store_error {
                    anyhow::bail!("store error: {e}");
                }
                engine.flush_projections()?;
                let elapsed = started.elapsed();
                latencies.sort();
                println!(
                    "  batch {batch:>5}: {total} movements ({accepted} accepted) in {:.2} s = {:>9.0} movements/s; ack latency p50 {:.2} ms, p99 {:.2} ms",
                    elapsed.as_secs_f64(),
                    total as f64 / elapsed.as_secs_f64(),
                    percentile(&latencies, 0.5).as_secs_f64() * 1e3,
                    percentile(&latencies, 0.99).as_secs_f64() * 1e3,
                );
                drop(engine);
                discard(&target, &pg_server);
            }
        }
        BenchCmd::Ats { skus, locations, channels, updates } => {
            let now = Timestamp::from_millis(T0);
            let mut state = State::new();
            let mut seq = 0;
            let mut apply = |state: &mut State, command: &Command| {
                let event = state.decide(command, now).expect("bench command is valid");
                seq += 1;
                state.apply(seq, &event);
            };
            for c in catalog(skus, locations, channels) {
                apply(&mut state, &c);
            }
            let mut rng = StdRng::seed_from_u64(7);
            for s in 0..skus {
                for l in 0..locations {
                    let units = rng.random_range(0..50);
                    if units > 0 {
                        let c = MoveCommand::Receipt { sku: sku(s), location: location(l), units, expectation: None };
                        apply(&mut state, &Command::Move(c));
                    }
                }
            }
            state.take_dirty_stock();
            let mut fulls = Vec::new();
            for _ in 0..5 {
                state.mark_all_dirty();
                let t = Instant::now();
                let changes = state.refresh_availability(now);
                fulls.push(t.elapsed());
                std::hint::black_box(changes);
            }
            fulls.sort();
            println!(
                "bench ats: {skus} SKUs × {locations} locations × {channels} channels: full recompute best {:.1} ms, median {:.1} ms",
                fulls[0].as_secs_f64() * 1e3,
                percentile(&fulls, 0.5).as_secs_f64() * 1e3
            );
            let mut incremental = Vec::with_capacity(updates);
            for i in 0..updates {
                let command = random_movement(&mut rng, skus, locations, i);
                let t = Instant::now();
                if let Ok(event) = state.decide(&command, now) {
                    seq += 1;
                    state.apply(seq, &event);
                }
                let changes = state.refresh_availability(now);
                incremental.push(t.elapsed());
                std::hint::black_box(changes);
                state.take_dirty_stock();
            }
            incremental.sort();
            let mean = incremental.iter().sum::<Duration>() / updates as u32;
            println!(
                "  incremental (decide + apply one movement + recompute touched SKU on all channels): mean {:.1} µs, p50 {:.1} µs, p99 {:.1} µs",
                mean.as_secs_f64() * 1e6,
                percentile(&incremental, 0.5).as_secs_f64() * 1e6,
                percentile(&incremental, 0.99).as_secs_f64() * 1e6
            );
        }
        BenchCmd::Orders { backend, orders, batch, skus, nodes, lines, decide_only, pg_server } => {
            let workload = crate::bench_orders::Workload { orders, batch, skus, nodes, lines, decide_only };
            crate::bench_orders::pipeline(backend, &pg_server, workload)?;
        }
        BenchCmd::Http { orders, connections, skus, wrk, wrk_threads, webhooks } => match wrk {
            None => crate::bench_http::run(orders, connections, skus, webhooks)?,
            Some(seconds) => crate::bench_http::run_wrk(seconds, connections, wrk_threads, skus)?,
        },
        BenchCmd::Gl { backend, entries, batch, skus, pg_server } => {
            crate::bench_finance::post_entries(backend, &pg_server, entries, batch, skus)?;
        }
        BenchCmd::Reconcile { lines, orders } => crate::bench_finance::reconcile(orders, lines)?,
        BenchCmd::X12 { megabytes, rounds } => x12(megabytes, rounds)?,
        BenchCmd::Relay { rate, seconds, skus } => crate::bench_relay::run(rate, seconds, skus)?,
        BenchCmd::FlashSale { units, orders, tasks } => {
            crate::bench_orders::flash_sale(units, orders, tasks)?;
        }
        BenchCmd::Replay { events, backend, pg_server } => {
            let (target, _dir) = open(backend, &pg_server, "replay")?;
            let skus = 10_000;
            let mut e = engine(&target)?;
            setup(&mut e, catalog(skus, 10, 5))?;
            let mut rng = StdRng::seed_from_u64(9);
            let build = Instant::now();
            let mut n = e.state().last_seq() as usize;
            while n < events {
                let requests: Vec<Request> = (n..(n + 10_000).min(events))
                    .map(|i| Request::One(random_movement(&mut rng, skus, 10, i)))
                    .collect();
                e.execute(requests);
                n = e.state().last_seq() as usize;
            }
            println!("bench replay: built {} events in {:.1} s", e.state().last_seq(), build.elapsed().as_secs_f64());
            drop(e);
            for round in 0..3 {
                let t = Instant::now();
                let e = engine(&target)?;
                println!(
                    "  cold start {}: replayed {} events in {:.3} s",
                    round + 1,
                    e.startup().replayed,
                    t.elapsed().as_secs_f64()
                );
            }
            let mut e = engine(&target)?;
            e.snapshot()?;
            drop(e);
            let t = Instant::now();
            let e = engine(&target)?;
            println!(
                "  cold start from snapshot at {}: replayed {} events in {:.3} s",
                e.startup().snapshot_seq.unwrap_or(0),
                e.startup().replayed,
                t.elapsed().as_secs_f64()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// An interchange of `bytes` or more of 850s: one group, sets of 1–8 lines of realistic shape
/// (N1/N3/N4 ship-to, PO1 with UPC and vendor part, PID, CTT), line breaks after segments.
pub fn x12_interchange(bytes: usize) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes + 4096);
    out.push_str(
        "ISA*00*          *00*          *ZZ*BENCHBUYER     *ZZ*ORDO           *261127*1000*U*00401*000000001*0*P*>~\n",
    );
    out.push_str("GS*PO*BENCHBUYER*ORDO*20261127*1000*1*X*004010~\n");
    let mut sets = 0usize;
    while out.len() < bytes {
        sets += 1;
        let start = out.len();
        let lines = 1 + sets % 8;
        let _ = write!(
            out,
            "ST*850*{sets:04}~\nBEG*00*SA*PO-{sets}**20261127~\nREF*DP*{:03}~\nDTM*002*20261204~\nTD5*****UPSG~\n\
             N1*ST*Store {sets}*92*{sets}~\nN3*{} Commerce Way~\nN4*Columbus*OH*43215*US~\n",
            sets % 1000,
            100 + sets % 9000
        );
        for l in 1..=lines {
            let _ = write!(
                out,
                "PO1*{l}*{}*EA*{}.{:02}*PE*UP*0{:011}*VN*SKU-{:05}~\nPID*F****ITEM {l} OF PO {sets}~\n",
                1 + (sets + l) % 48,
                3 + (sets * l) % 97,
                (sets + l) % 100,
                (sets * 7 + l) % 100_000_000_000,
                (sets * 13 + l) % 10_000
            );
        }
        let _ = writeln!(out, "CTT*{lines}~");
        let segments = out[start..].matches('~').count() + 1;
        let _ = writeln!(out, "SE*{segments}*{sets:04}~");
    }
    let _ = write!(out, "GE*{sets}*1~\nIEA*1*000000001~\n");
    out
}

fn x12(megabytes: usize, rounds: usize) -> Result<()> {
    use ordo_channels::x12::{self, inbound};
    let text = x12_interchange(megabytes * 1_000_000);
    let mb = text.len() as f64 / 1_000_000.0;
    let channel = ordo_types::Code::new("EDI-BENCH").expect("valid code");
    let parsed = x12::parse(&text).map_err(|e| anyhow::anyhow!("{e}"))?;
    let sets: usize = parsed.iter().flat_map(|i| &i.groups).map(|g| g.sets.len()).sum();
    anyhow::ensure!(parsed[0].issues.is_empty() && parsed[0].groups[0].issues.is_empty(), "the envelope must be clean");
    drop(parsed);
    println!("x12: {mb:.1} MB, {sets} purchase orders, {rounds} rounds (best and median)");
    let mut parse_secs = Vec::new();
    let mut map_secs = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        let parsed = x12::parse(&text).map_err(|e| anyhow::anyhow!("{e}"))?;
        parse_secs.push(started.elapsed().as_secs_f64());
        let started = Instant::now();
        let outcomes = inbound::read(&text, &parsed, &channel, inbound::Envelopes::Strict);
        map_secs.push(started.elapsed().as_secs_f64());
        let mapped =
            outcomes.iter().flatten().flatten().filter(|o| matches!(o, inbound::SetOutcome::PurchaseOrder(_))).count();
        anyhow::ensure!(mapped == sets, "every set maps ({mapped} of {sets})");
    }
    let report = |what: &str, secs: &mut Vec<f64>| {
        secs.sort_by(f64::total_cmp);
        let (best, median) = (secs[0], secs[secs.len() / 2]);
        println!(
            "  {what:<34} best {:>7.1} ms  {:>7.1} MB/s   median {:>7.1} ms  {:>7.1} MB/s",
            best * 1e3,
            mb / best,
            median * 1e3,
            mb / median
        );
    };
    let mut both: Vec<f64> = parse_secs.iter().zip(&map_secs).map(|(a, b)| a + b).collect();
    report("read (segments + envelopes)", &mut parse_secs);
    report("map to canonical orders", &mut map_secs);
    report("read + map", &mut both);
    Ok(())
}
