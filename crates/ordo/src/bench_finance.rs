//! Finance benchmarks (issue 6): journal entries posted durably through the engine, and a
//! settlement of a million lines read and reconciled against the orders it pays for.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use ordo_domain::accounting::{AccountingCommand, PurchaseCost, prorate};
use ordo_domain::inventory::{MoveCommand, ReasonCode};
use ordo_domain::orders::book::{OrderCommand, OrderRecord, ShipmentRequest};
use ordo_domain::orders::lifecycle::Actor;
use ordo_domain::{Command, State};
use ordo_engine::Request;
use ordo_types::{Code, Timestamp};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::bench::{Backend, T0, engine, open, percentile, setup, sku};

fn code(s: &str) -> Code {
    Code::new(s).expect("bench codes are valid")
}

/// `ordo bench gl`: `entries` movements that each post one journal entry (receipts valued at
/// purchase cost, count corrections at moving average), durably committed in batches.
pub fn post_entries(backend: Backend, pg_server: &str, entries: usize, batch: usize, skus: usize) -> Result<()> {
    let (target, _dir) = open(backend, pg_server, "gl")?;
    let mut e = engine(&target)?;
    let mut catalog = crate::bench_orders::catalog(skus, 8);
    catalog.extend((0..skus).map(|i| {
        Command::Accounting(AccountingCommand::SetPurchaseCost {
            sku: sku(i),
            cost: PurchaseCost { unit_cost_minor: 500 + (i as i64 % 1_000), landed_cost_per_unit_minor: 25 },
        })
    }));
    setup(&mut e, catalog)?;
    e.set_projection_interval(Duration::from_secs(5));
    let before = e.state().gl().entries().len();
    // Receipts of 3 units, then one unit counted short, so every movement is valid and valued.
    let mut prebuilt: std::collections::VecDeque<Vec<Request>> = (0..entries)
        .map(|n| {
            let (s, l) = (sku((n / 2) % skus), code(&format!("NODE-{}", (n / 2 / skus) % 8)));
            Request::One(Command::Move(if n % 2 == 0 {
                MoveCommand::Receipt { sku: s, location: l, units: 3, expectation: None }
            } else {
                MoveCommand::Adjust { sku: s, location: l, delta: -1, reason: ReasonCode::CountCorrection }
            }))
        })
        .collect::<Vec<_>>()
        .chunks(batch)
        .map(<[Request]>::to_vec)
        .collect();
    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut refused = 0usize;
    let mut failure = None;
    e.execute_stream(
        |_| Some((prebuilt.pop_front()?, Instant::now())),
        |outcome, handed| {
            latencies.push(handed.elapsed());
            refused += outcome.results.iter().filter(|r| r.is_err()).count();
            if let Some(err) = outcome.error {
                failure.get_or_insert(err);
            }
        },
    );
    if let Some(err) = failure {
        bail!("store error: {err}");
    }
    let elapsed = started.elapsed();
    let posted = e.state().gl().entries().len() - before;
    latencies.sort();
    println!(
        "bench gl: backend={backend:?} {entries} movements in batches of {batch} → {posted} journal entries posted and committed in {:.2} s = {:.0} entries/s; ack latency p50 {:.1} ms, p99 {:.1} ms; {refused} refused",
        elapsed.as_secs_f64(),
        posted as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
    );
    let problems = e.state().gl().check();
    drop(e);
    crate::bench::discard(&target, pg_server);
    if posted != entries || refused > 0 || !problems.is_empty() {
        bail!("{posted} of {entries} entries posted, {refused} refused; {problems:?}");
    }
    Ok(())
}

/// `ordo bench reconcile`: `orders` AMAZON orders shipped (in memory), then a V2 settlement
/// report of `lines` lines paying for them (principal, marketplace tax and its withholding,
/// commission per order line; a share of them for orders Ordo never saw): the report parsed,
/// then reconciled and its payout decided and applied — each timed.
pub fn reconcile(orders: usize, lines: usize) -> Result<()> {
    let now = Timestamp::from_millis(T0);
    let mut state = State::new();
    let mut seq = 0;
    let mut run = |state: &mut State, command: Command| -> Result<()> {
        let event = state.decide(&command, now).map_err(|e| anyhow::anyhow!("{command:?}: {e}"))?;
        seq += 1;
        state.apply(seq, &event);
        state.refresh_availability(now);
        Ok(())
    };
    let skus = 1_000;
    for c in crate::bench_orders::catalog(skus, 8) {
        run(&mut state, c)?;
    }
    for i in 0..skus {
        for n in 0..8 {
            let location = code(&format!("NODE-{n}"));
            run(
                &mut state,
                Command::Move(MoveCommand::Receipt { sku: sku(i), location, units: 100_000, expectation: None }),
            )?;
        }
    }
    let mut rng = StdRng::seed_from_u64(11);
    let built = Instant::now();
    let ops = || Actor::User("bench".into());
    let mut keys = Vec::with_capacity(orders);
    for id in 0..orders {
        use rand::Rng;
        let lines = (0..3).map(|_| (sku(rng.random_range(0..skus)), rng.random_range(1..=3))).collect();
        let Command::Order(OrderCommand::Capture(order)) = crate::bench_orders::order(id, lines, now, &mut rng) else {
            unreachable!("order() builds a capture")
        };
        let key = order.key();
        run(&mut state, Command::Order(OrderCommand::Capture(order)))?;
        let location =
            state.orders().get(&key).and_then(|r| r.lines[0].reservations.first()).map(|r| r.location.clone());
        let Some(location) = location else {
            if id == 0 {
                eprintln!(
                    "  (first order not allocated: {:?})",
                    state.orders().get(&key).map(|r| (r.status, &r.holds))
                );
            }
            continue;
        };
        // One node per order in this workload (all stocked everywhere), so one shipment ships it.
        for c in [
            OrderCommand::Dispatch { key: key.clone(), actor: ops(), ship_partial: false },
            OrderCommand::StartPicking { key: key.clone(), actor: ops() },
            OrderCommand::Pack { key: key.clone(), actor: ops() },
            OrderCommand::Ship {
                key: key.clone(),
                actor: ops(),
                shipment: ShipmentRequest {
                    shipment_id: "S1".into(),
                    location,
                    carrier: "UPS".into(),
                    service: "ground".into(),
                    tracking: "1Z".into(),
                    lines: vec![],
                },
            },
        ] {
            if let Err(e) = run(&mut state, Command::Order(c)) {
                if id == 0 {
                    eprintln!("  (first order not shipped: {e})");
                }
                break;
            }
        }
        keys.push(key);
    }
    let shipped: Vec<&OrderRecord> =
        keys.iter().filter_map(|k| state.orders().get(k)).filter(|r| !r.shipments.is_empty()).collect();
    println!(
        "  {} orders captured and shipped in memory in {:.1} s (setup, not measured)",
        shipped.len(),
        built.elapsed().as_secs_f64()
    );
    let shipped_count = shipped.len();
    let report = settlement_report(&shipped, lines);
    let parse_started = Instant::now();
    let settlement =
        ordo_channels::amazon::settlement::parse(&report, code("WEB")).map_err(|e| anyhow::anyhow!("{e}"))?;
    let parsed = parse_started.elapsed();
    let n = settlement.lines.len();
    let started = Instant::now();
    let event = state
        .decide(&Command::Accounting(AccountingCommand::ImportSettlement(Box::new(settlement))), now)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let decided = started.elapsed();
    state.apply(seq + 1, &event);
    let total = started.elapsed();
    let r = state.gl().settlements().values().next().expect("reconciled");
    println!(
        "bench reconcile: {n} settlement lines ({:.1} MB) against {} orders: parsed in {:.2} s ({:.0} lines/s), reconciled and payout decided in {:.2} s, applied in {:.2} s → {:.2} s reconcile ({:.0} lines/s); {} variances, stated {} = reconciled {}",
        report.len() as f64 / 1e6,
        shipped_count,
        parsed.as_secs_f64(),
        n as f64 / parsed.as_secs_f64(),
        decided.as_secs_f64(),
        (total - decided).as_secs_f64(),
        total.as_secs_f64(),
        n as f64 / total.as_secs_f64(),
        r.variances.len(),
        r.settlement.stated_total_minor,
        r.reconciled_total_minor,
    );
    if r.settlement.stated_total_minor != r.reconciled_total_minor || !state.gl().check().is_empty() {
        bail!("the bench settlement does not reconcile");
    }
    Ok(())
}

/// A V2 report of at least `lines` lines for `shipped` (repeated as later settlement periods
/// would, under fresh order ids, when `lines` asks for more than the orders have).
fn settlement_report(shipped: &[&OrderRecord], lines: usize) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(lines * 110);
    out.push_str("settlement-id\tsettlement-start-date\tsettlement-end-date\tdeposit-date\ttotal-amount\tcurrency\ttransaction-type\torder-id\tamount-type\tamount-description\tamount\tsku\tquantity-purchased\n");
    let mut body = String::with_capacity(lines * 100);
    let mut total = 0i64;
    let mut written = 0;
    let mut round = 0;
    let mut row = |order: &str, at: &str, desc: &str, minor: i64, sku: &str, body: &mut String| {
        total += minor;
        let _ = writeln!(
            body,
            "BENCH-1\t\t\t\t\tUSD\tOrder\t{order}\t{at}\t{desc}\t{}\t{sku}\t1",
            ordo_types::format_decimal(minor, 2)
        );
    };
    if shipped.is_empty() {
        return out;
    }
    while written < lines {
        for r in shipped {
            let id = if round == 0 {
                r.order.channel_order_id.clone()
            } else {
                format!("{}-R{round}", r.order.channel_order_id)
            };
            for line in &r.order.lines {
                let principal = line.net_minor();
                let sku = "SKU";
                row(&id, "ItemPrice", "Principal", principal, sku, &mut body);
                let tax: i64 = line.tax_lines.iter().map(|t| t.amount_minor).sum();
                row(&id, "ItemPrice", "Tax", tax, sku, &mut body);
                row(&id, "ItemFees", "MarketplaceFacilitatorTax-Principal", -tax, sku, &mut body);
                row(&id, "ItemFees", "Commission", -prorate(principal, 1_500, 10_000), sku, &mut body);
                written += 4;
            }
            if written >= lines {
                break;
            }
        }
        round += 1;
    }
    let _ = writeln!(
        out,
        "BENCH-1\t2026-11-01\t2026-11-14\t2026-11-16\t{}\tUSD\t\t\t\t\t\t\t",
        ordo_types::format_decimal(total, 2)
    );
    out.push_str(&body);
    out
}
