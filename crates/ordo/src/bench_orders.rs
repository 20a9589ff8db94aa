//! Order benchmarks (BENCHMARKS.md, issue #3):
//! - `pipeline`: orders captured, validated, sourced across N nodes and reserved, durably
//!   committed in batches through the pipelined engine;
//! - `flash_sale`: one SKU with a fixed stock, many concurrent submitters through the engine
//!   thread; checks that exactly the stock was committed and nothing oversold.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use ordo_domain::Command;
use ordo_domain::catalog::{
    AllocationPolicy, Capabilities, Channel, ChannelKind, GeoPoint, LegalEntity, Location, LocationKind,
};
use ordo_domain::inventory::{MoveCommand, StockState};
use ordo_domain::orders::book::{OrderCommand, OrderSetting};
use ordo_domain::orders::lifecycle::OrderStatus;
use ordo_domain::orders::model::{
    AccountStatus, Customer, FraudAssessment, FulfillmentIntent, LineItem, Order, OrderLine, PaymentStatus,
    PostalAddress, ServiceLevel, Shipping,
};
use ordo_engine::{Engine, EngineHandle, FixedClock, Request};
use ordo_types::{Code, CurrencyCode, Sku, Timestamp};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::bench::{Backend, T0, engine, open, percentile, plain_item, setup, sku};

fn code(s: &str) -> Code {
    Code::new(s).expect("bench codes are valid")
}

/// Nodes spread over the continental US, one channel selling from all of them.
pub(crate) fn catalog(skus: usize, nodes: usize) -> Vec<Command> {
    let mut out = vec![Command::DefineLegalEntity(LegalEntity {
        code: code("BENCH"),
        name: "Bench Retail".into(),
        functional_currency: CurrencyCode::new("USD").expect("valid"),
    })];
    let zones = ["America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles"];
    for n in 0..nodes {
        out.push(Command::DefineLocation(Location {
            code: code(&format!("NODE-{n}")),
            name: format!("Node {n}"),
            kind: LocationKind::Warehouse,
            legal_entity: code("BENCH"),
            address: Default::default(),
            geo: Some(GeoPoint {
                latitude_micro: 30_000_000 + (n as i32 % 4) * 3_000_000,
                longitude_micro: -75_000_000 - (n as i32) * 5_000_000,
            }),
            time_zone: zones[n % zones.len()].into(),
            capabilities: Capabilities { ship: true, pickup: false, returns: true },
        }));
    }
    out.extend((0..skus).map(plain_item));
    out.push(Command::DefineChannel(Channel {
        code: code("WEB"),
        name: "Web".into(),
        kind: ChannelKind::Shopify,
        legal_entity: code("BENCH"),
        locations: (0..nodes).map(|n| code(&format!("NODE-{n}"))).collect(),
        priority: 1,
        allocation: AllocationPolicy::default(),
    }));
    for n in 0..nodes {
        out.push(Command::Order(OrderCommand::Configure(OrderSetting::Node {
            location: code(&format!("NODE-{n}")),
            settings: ordo_domain::orders::book::NodeSettings {
                cutoff_local: (17, 0),
                daily_capacity: 10_000_000,
                cost_per_shipment_minor: 250 + 10 * n as i64,
                cost_per_unit_minor: 20,
            },
        })));
    }
    out.push(Command::Order(OrderCommand::Configure(OrderSetting::ShippingMethods {
        channel: code("WEB"),
        methods: ["ground".to_owned()].into(),
    })));
    out
}

pub(crate) fn order(id: usize, lines: Vec<(Sku, i64)>, now: Timestamp, rng: &mut StdRng) -> Command {
    let order = Order {
        channel: code("WEB"),
        channel_order_id: format!("B-{id}"),
        channel_updated_at: now,
        placed_at: now,
        customer: Customer {
            id: format!("C-{}", id % 1_000),
            name: "Bench Customer".into(),
            email: None,
            account_status: AccountStatus::Active,
        },
        ship_to: PostalAddress {
            name: "Bench Customer".into(),
            line1: "1 Main St".into(),
            line2: String::new(),
            city: "Springfield".into(),
            region: "IL".into(),
            postal_code: "62701".into(),
            country: "US".into(),
            geo: Some(GeoPoint {
                latitude_micro: rng.random_range(30_000_000..45_000_000),
                longitude_micro: rng.random_range(-120_000_000..-75_000_000),
            }),
        },
        bill_to: None,
        lines: lines
            .into_iter()
            .enumerate()
            .map(|(i, (s, quantity))| OrderLine {
                line_id: (i + 1).to_string(),
                item: LineItem::Sku(s),
                quantity,
                uom: "each".into(),
                unit_price_minor: 1_999,
                discount_minor: 0,
                tax_lines: vec![],
            })
            .collect(),
        shipping: Shipping {
            method: "ground".into(),
            service_level: ServiceLevel::Standard,
            ship_by: None,
            deliver_by: None,
        },
        payment_status: PaymentStatus::Captured,
        fraud: FraudAssessment::default(),
        fulfillment: FulfillmentIntent::Ship { ship_from_store_allowed: false },
        currency: CurrencyCode::new("USD").expect("valid"),
        tags: vec![],
    };
    Command::Order(OrderCommand::Capture(Box::new(order)))
}

/// The order pipeline workload: how many orders, in what batches, over what catalog.
pub struct Workload {
    pub orders: usize,
    pub batch: usize,
    pub skus: usize,
    pub nodes: usize,
    pub lines: usize,
    /// Also time deciding alone, in memory.
    pub decide_only: bool,
}

pub fn pipeline(backend: Backend, pg_server: &str, workload: Workload) -> Result<()> {
    let Workload { orders, batch, skus, nodes, lines, decide_only } = workload;
    let (target, _dir) = open(backend, pg_server, "orders")?;
    let mut e = engine(&target)?;
    setup(&mut e, catalog(skus, nodes))?;
    // Plenty of stock everywhere, so the figure is about deciding, not about running dry.
    let mut rng = StdRng::seed_from_u64(11);
    let receipts: Vec<Command> = (0..skus)
        .flat_map(|i| (0..nodes).map(move |n| (i, n)))
        .map(|(i, n)| {
            Command::Move(MoveCommand::Receipt {
                sku: sku(i),
                location: code(&format!("NODE-{n}")),
                units: 10_000,
                expectation: None,
            })
        })
        .collect();
    setup(&mut e, receipts)?;
    let now = Timestamp::from_millis(T0);
    let mut prebuilt: std::collections::VecDeque<Vec<Request>> = (0..orders)
        .map(|id| {
            let ls = (0..lines).map(|_| (sku(rng.random_range(0..skus)), rng.random_range(1..=3))).collect();
            Request::One(order(id, ls, now, &mut rng))
        })
        .collect::<Vec<_>>()
        .chunks(batch)
        .map(<[Request]>::to_vec)
        .collect();
    if decide_only {
        let mut state = e.state().clone();
        let started = Instant::now();
        for batch in &prebuilt {
            for request in batch {
                let Request::One(command) = request else { continue };
                if let Ok(event) = state.decide(command, now) {
                    let seq = state.last_seq() + 1;
                    state.apply_owned(seq, event);
                }
            }
            state.refresh_availability(now);
        }
        let elapsed = started.elapsed();
        println!(
            "bench orders (decided and applied in memory, no journal or store): {orders} orders in {:.2} s = {:.0} orders/s",
            elapsed.as_secs_f64(),
            orders as f64 / elapsed.as_secs_f64()
        );
    }
    e.set_projection_interval(Duration::from_secs(5));
    let mut latencies = Vec::new();
    let mut accepted = 0usize;
    let started = Instant::now();
    e.execute_stream(
        |_| Some((prebuilt.pop_front()?, Instant::now())),
        |outcome, handed| {
            latencies.push(handed.elapsed());
            accepted += outcome.results.iter().filter(|r| r.is_ok()).count();
        },
    );
    e.flush_projections()?;
    let elapsed = started.elapsed();
    latencies.sort();
    let allocated = e.state().orders().all().filter(|r| r.status == OrderStatus::Allocated).count();
    let split = e
        .state()
        .orders()
        .all()
        .filter(|r| {
            let n: std::collections::BTreeSet<_> =
                r.lines.iter().flat_map(|l| &l.reservations).map(|x| &x.location).collect();
            n.len() > 1
        })
        .count();
    println!(
        "bench orders: backend={backend:?} skus={skus} nodes={nodes} lines/order={lines} batch={batch}: {orders} orders ({accepted} accepted, {allocated} allocated, {split} split) in {:.2} s = {:.0} orders/s; ack latency p50 {:.1} ms, p99 {:.1} ms",
        elapsed.as_secs_f64(),
        orders as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
    );
    let problems = e.state().check_invariants(now);
    drop(e);
    crate::bench::discard(&target, pg_server);
    if !problems.is_empty() {
        bail!("invariants broken after the run: {problems:?}");
    }
    Ok(())
}

pub fn flash_sale(units: i64, orders: usize, tasks: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let target = crate::backend::Target::Sqlite(dir.path().join("flash.db"));
    let mut e = Engine::open(target.create_store()?, Box::new(FixedClock::at(Timestamp::from_millis(T0))))?;
    setup(&mut e, catalog(1, 1))?;
    setup(
        &mut e,
        vec![Command::Move(MoveCommand::Receipt { sku: sku(0), location: code("NODE-0"), units, expectation: None })],
    )?;
    e.set_projection_interval(Duration::from_secs(5));
    let (handle, thread) = EngineHandle::spawn(e, 1_000);
    let now = Timestamp::from_millis(T0);
    let per_task = orders / tasks;
    // Built before the clock starts, as the channels would have built them.
    let work: Vec<Vec<Request>> = (0..tasks)
        .map(|t| {
            let mut rng = StdRng::seed_from_u64(t as u64);
            (0..per_task).map(|i| Request::One(order(t * per_task + i, vec![(sku(0), 1)], now, &mut rng))).collect()
        })
        .collect();
    let started = Instant::now();
    let workers: Vec<_> = work
        .into_iter()
        .map(|requests| {
            let handle = handle.clone();
            std::thread::spawn(move || {
                // Each task keeps a window of submissions in flight, like a connector would.
                let mut pending = std::collections::VecDeque::new();
                let mut ok = 0usize;
                for r in requests {
                    pending.push_back(handle.submit(r));
                    if pending.len() >= 64 {
                        ok += usize::from(pending.pop_front().expect("non-empty").wait().is_ok());
                    }
                }
                ok + pending.into_iter().map(|p| usize::from(p.wait().is_ok())).sum::<usize>()
            })
        })
        .collect();
    let mut decided = 0;
    for w in workers {
        decided += w.join().expect("worker finished");
    }
    let elapsed = started.elapsed();
    drop(handle);
    let mut e = thread.join().expect("engine thread finished");
    e.flush_projections()?;
    let b = e.state().buckets(&sku(0), &code("NODE-0"));
    let committed = b.get(StockState::Committed);
    let allocated = e.state().orders().all().filter(|r| r.status == OrderStatus::Allocated).count();
    println!(
        "bench flash-sale: {units} units, {} orders from {tasks} tasks: {decided} decided in {:.2} s = {:.0} orders/s; {allocated} orders allocated, {committed} units committed, {} available, oversold {}",
        per_task * tasks,
        elapsed.as_secs_f64(),
        (per_task * tasks) as f64 / elapsed.as_secs_f64(),
        b.available(),
        (committed - units).max(0),
    );
    if committed != units || b.available() != 0 {
        bail!("flash sale broke the ledger: committed {committed}, available {}", b.available());
    }
    Ok(())
}
