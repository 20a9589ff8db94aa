//! `ordo demo`: a small but realistic apparel retailer — warehouses on both coasts, a flagship
//! store, a 3PL and a drop-ship supplier, five channels with different allocation policies,
//! ~200 variant SKUs plus bundles — and a few hundred movements of a normal week, all through the
//! same commands and CSV importers an operator would use.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use ordo_domain::catalog::{AllocationPolicy, Channel, ChannelKind, LegalEntity, SafetyStockScope};
use ordo_domain::csv_import;
use ordo_domain::inventory::{Disposition, MoveCommand, ReasonCode};
use ordo_domain::{Command, State};
use ordo_engine::{Engine, Request, Store};
use ordo_types::{Code, CurrencyCode, Sku, Units};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::backend::{AnyStore, Target};
use crate::report;

const STYLES: [(&str, &str); 12] = [
    ("TEE-CLASSIC", "Classic Tee"),
    ("TEE-POCKET", "Pocket Tee"),
    ("HOODIE-ZIP", "Zip Hoodie"),
    ("HOODIE-PULL", "Pullover Hoodie"),
    ("CREW-FLEECE", "Fleece Crew"),
    ("JOGGER", "Jogger Pant"),
    ("SHORT-RUN", "Running Short"),
    ("POLO-PIQUE", "Pique Polo"),
    ("TANK-RIB", "Rib Tank"),
    ("JACKET-SHELL", "Shell Jacket"),
    ("VEST-PUFF", "Puffer Vest"),
    ("LONGSLEEVE", "Long-Sleeve Tee"),
];
const SIZES: [&str; 4] = ["S", "M", "L", "XL"];
const COLOURS: [(&str, &str); 4] = [("BLK", "Black"), ("NVY", "Navy"), ("HTR", "Heather"), ("OLV", "Olive")];
const ACCESSORIES: [(&str, &str); 12] = [
    ("MUG-LOGO", "Logo Mug"),
    ("CAP-DAD", "Dad Cap"),
    ("BEANIE", "Knit Beanie"),
    ("SOCK-CREW", "Crew Socks"),
    ("TOTE", "Canvas Tote"),
    ("BOTTLE", "Steel Bottle"),
    ("STICKER", "Sticker Pack"),
    ("KEYCHAIN", "Keychain"),
    ("GLOVES", "Fleece Gloves"),
    ("SCARF", "Wool Scarf"),
    ("LANYARD", "Lanyard"),
    ("PATCH", "Iron-on Patch"),
];

/// A GTIN-12 with a correct check digit, derived from a running number.
fn gtin(n: u64) -> String {
    let body = format!("{:011}", 81_000_000_000 + n);
    let sum: u32 =
        body.bytes().rev().enumerate().map(|(i, b)| u32::from(b - b'0') * if i % 2 == 0 { 3 } else { 1 }).sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}

fn items_csv() -> String {
    let mut csv = String::from("sku,title,style,options,gtin,uom_conversions,components,sku_class\n");
    let mut n = 1;
    for (style, title) in STYLES {
        for (colour_code, colour) in COLOURS {
            for size in SIZES {
                writeln!(
                    csv,
                    "{style}-{colour_code}-{size},{title} {colour} {size},{style},size={size};colour={colour},{},case=24,,apparel",
                    gtin(n)
                )
                .expect("write to string");
                n += 1;
            }
        }
    }
    for (sku, title) in ACCESSORIES {
        writeln!(csv, "{sku},{title},,,{},case=12,,accessories", gtin(n)).expect("write to string");
        n += 1;
    }
    // Bundles: the two gift sets share the mug, so their figures must split it.
    let bundles = [
        ("GIFT-TEE-MUG", "Tee & Mug Gift Set", "TEE-CLASSIC-BLK-M:1;MUG-LOGO:1"),
        ("GIFT-HOODIE-MUG", "Hoodie & Mug Gift Set", "HOODIE-ZIP-NVY-L:1;MUG-LOGO:1"),
        ("KIT-WINTER", "Winter Kit", "BEANIE:1;GLOVES:1;SCARF:1"),
        ("PACK-SOCKS-3", "Crew Socks 3-Pack", "SOCK-CREW:3"),
        ("KIT-GYM", "Gym Kit", "SHORT-RUN-BLK-M:1;TANK-RIB-BLK-M:1;BOTTLE:1"),
        ("PACK-TEE-2", "Classic Tee 2-Pack", "TEE-CLASSIC-BLK-M:2"),
    ];
    for (sku, title, components) in bundles {
        writeln!(csv, "{sku},{title},,,,,{components},bundles").expect("write to string");
    }
    csv
}

const LOCATIONS_CSV: &str = "code,name,kind,legal_entity,address_line1,city,region,postal_code,country,latitude,longitude,time_zone,capabilities
WH-EAST,East Coast DC,warehouse,US-RETAIL,100 Port St,Newark,NJ,07114,US,40.735657,-74.172366,America/New_York,ship;returns
WH-WEST,West Coast DC,warehouse,US-RETAIL,2500 Logistics Way,Reno,NV,89502,US,39.529633,-119.813803,America/Los_Angeles,ship;returns
STORE-NYC,SoHo Flagship,store,US-RETAIL,120 Prince St,New York,NY,10012,US,40.725006,-73.998683,America/New_York,ship;pickup;returns
3PL-TX,Dallas 3PL,3pl,US-RETAIL,800 Freight Rd,Dallas,TX,75247,US,32.810921,-96.870486,America/Chicago,ship
DS-ACME,Acme Drop-Ship,drop_ship_supplier,US-RETAIL,1 Supplier Ave,Columbus,OH,43215,US,39.961176,-82.998794,America/New_York,ship
";

fn code(s: &str) -> Code {
    Code::new(s).expect("demo codes are valid")
}

fn sku(s: &str) -> Sku {
    Sku::new(s).expect("demo SKUs are valid")
}

fn channel(
    code_: &str,
    name: &str,
    kind: ChannelKind,
    locations: &[&str],
    priority: u16,
    policy: AllocationPolicy,
) -> Command {
    Command::DefineChannel(Channel {
        code: code(code_),
        name: name.into(),
        kind,
        legal_entity: code("US-RETAIL"),
        locations: locations.iter().map(|l| code(l)).collect(),
        priority,
        allocation: policy,
    })
}

fn master_data() -> Result<Vec<Request>> {
    let mut setup = vec![Command::DefineLegalEntity(LegalEntity {
        code: code("US-RETAIL"),
        name: "Ordo Outfitters Inc.".into(),
        functional_currency: CurrencyCode::new("USD")?,
    })];
    setup.extend(csv_import::parse_locations(LOCATIONS_CSV.as_bytes())?.into_iter().map(|c| c.command));
    let items: Vec<Command> = csv_import::parse_items(items_csv().as_bytes())?.into_iter().map(|c| c.command).collect();
    // Purchase costs (with freight and duty per unit) value the week's receipts in the ledger.
    let costs: Vec<Command> = items
        .iter()
        .enumerate()
        .filter_map(|(n, c)| match c {
            Command::DefineItem(item) if !item.is_bundle() => {
                Some(Command::Accounting(ordo_domain::accounting::AccountingCommand::SetPurchaseCost {
                    sku: item.sku.clone(),
                    cost: ordo_domain::accounting::PurchaseCost {
                        unit_cost_minor: 450 + (n as i64 * 377) % 2_400,
                        landed_cost_per_unit_minor: 35,
                    },
                }))
            }
            _ => None,
        })
        .collect();
    setup.extend(items);
    setup.extend(costs);
    let p = |percentage_cap, buffer, incoming_window_days| AllocationPolicy {
        percentage_cap,
        buffer,
        incoming_window_days,
    };
    setup.extend([
        channel(
            "SHOPIFY-DTC",
            "Shopify web store",
            ChannelKind::Shopify,
            &["WH-EAST", "WH-WEST", "STORE-NYC"],
            2,
            p(None, 0, Some(7)),
        ),
        channel(
            "AMAZON-US",
            "Amazon US (MFN)",
            ChannelKind::Amazon,
            &["WH-EAST", "WH-WEST", "3PL-TX"],
            1,
            p(Some(80), 2, None),
        ),
        channel(
            "WALMART",
            "Walmart Marketplace",
            ChannelKind::Walmart,
            &["WH-WEST", "3PL-TX"],
            3,
            p(Some(50), 1, None),
        ),
        channel(
            "B2B-EDI",
            "Wholesale partners (EDI)",
            ChannelKind::Edi,
            &["WH-EAST", "DS-ACME"],
            4,
            p(None, 0, Some(30)),
        ),
        channel("POS-NYC", "SoHo store POS", ChannelKind::Pos, &["STORE-NYC"], 1, p(None, 0, None)),
    ]);
    setup.push(Command::SetSafetyStock { scope: SafetyStockScope::SkuClass(code("apparel")), units: 2 });
    setup.push(Command::SetSafetyStock { scope: SafetyStockScope::Location(code("STORE-NYC")), units: 1 });
    setup.push(Command::SetSafetyStock { scope: SafetyStockScope::Sku(sku("MUG-LOGO")), units: 4 });
    setup.push(Command::SetSafetyStock {
        scope: SafetyStockScope::SkuAtLocation(sku("TEE-CLASSIC-BLK-M"), code("WH-EAST")),
        units: 5,
    });
    for (s, units) in [("TEE-CLASSIC-BLK-M", 20), ("HOODIE-ZIP-NVY-L", 10)] {
        setup.push(Command::SetChannelPool { channel: code("AMAZON-US"), sku: sku(s), units });
    }
    setup.push(Command::SetChannelPool { channel: code("B2B-EDI"), sku: sku("JOGGER-BLK-M"), units: 30 });
    Ok(vec![Request::Group(setup)])
}

/// A normal week: receipts, purchase orders, transfers, orders reserved/picked/shipped,
/// returns inspected, holds, counts and adjustments — a few hundred movements in all.
fn week(state: &State, rng: &mut StdRng, today: ordo_types::Date) -> Vec<Command> {
    let stocked: Vec<Sku> = state.items().iter().filter(|i| !i.is_bundle()).map(|i| i.sku.clone()).collect();
    let mut moves = Vec::new();
    let m = |c: MoveCommand| Command::Move(c);
    for s in &stocked {
        for (loc, max) in [("WH-EAST", 60), ("WH-WEST", 40)] {
            let units: Units = rng.random_range(0..=max);
            if units > 0 {
                moves.push(m(MoveCommand::Receipt { sku: s.clone(), location: code(loc), units, expectation: None }));
            }
        }
    }
    for (i, s) in stocked.iter().step_by(4).enumerate() {
        moves.push(m(MoveCommand::Receipt {
            sku: s.clone(),
            location: code("STORE-NYC"),
            units: 6,
            expectation: None,
        }));
        moves.push(m(MoveCommand::Receipt { sku: s.clone(), location: code("3PL-TX"), units: 25, expectation: None }));
        moves.push(m(MoveCommand::Expect {
            expectation: code(&format!("PO-1{i:03}")),
            sku: s.clone(),
            location: code("WH-EAST"),
            units: 48,
            expected_on: today.add_days(rng.random_range(2..=21)),
        }));
    }
    for s in stocked.iter().skip(2).step_by(16) {
        moves.push(m(MoveCommand::Receipt {
            sku: s.clone(),
            location: code("DS-ACME"),
            units: 200,
            expectation: None,
        }));
    }
    // Half of the purchase orders that are due soon arrive, one short-shipped and closed.
    for i in (0..stocked.len() / 4).step_by(3) {
        let reference = code(&format!("PO-1{i:03}"));
        let s = stocked[i * 4].clone();
        moves.push(m(MoveCommand::Receipt {
            sku: s,
            location: code("WH-EAST"),
            units: 40,
            expectation: Some(reference.clone()),
        }));
        if i % 2 == 0 {
            moves.push(m(MoveCommand::CancelExpectation { expectation: reference }));
        }
    }
    for (i, s) in stocked.iter().step_by(9).enumerate() {
        moves.push(m(MoveCommand::TransferShip {
            transfer: code(&format!("TR-{i:04}")),
            sku: s.clone(),
            from: code("WH-EAST"),
            to: code("STORE-NYC"),
            units: 4,
        }));
        if i % 3 != 0 {
            moves.push(m(MoveCommand::TransferReceive { transfer: code(&format!("TR-{i:04}")), units: 4 }));
        }
    }
    for i in 0..90 {
        let s = stocked[rng.random_range(0..stocked.len())].clone();
        let reservation = code(&format!("SO-{:05}-1", 10_000 + i));
        let units = rng.random_range(1..=3);
        moves.push(m(MoveCommand::Commit {
            reservation: reservation.clone(),
            sku: s,
            location: code("WH-EAST"),
            units,
        }));
        match i % 6 {
            0 => moves.push(m(MoveCommand::Release { reservation, units: None })),
            1 | 2 => moves.push(m(MoveCommand::Pick { reservation, units })),
            _ => {
                moves.push(m(MoveCommand::Pick { reservation: reservation.clone(), units }));
                moves.push(m(MoveCommand::Ship { reservation, units }));
            }
        }
    }
    for s in stocked.iter().skip(1).step_by(20) {
        moves.push(m(MoveCommand::ReturnReceipt {
            sku: s.clone(),
            location: code("WH-WEST"),
            units: 3,
            reference: Some(code("RMA-2001")),
        }));
        moves.push(m(MoveCommand::Dispose {
            sku: s.clone(),
            location: code("WH-WEST"),
            units: 2,
            disposition: Disposition::Restock,
        }));
        moves.push(m(MoveCommand::Dispose {
            sku: s.clone(),
            location: code("WH-WEST"),
            units: 1,
            disposition: Disposition::Damaged,
        }));
    }
    for s in stocked.iter().skip(3).step_by(25) {
        moves.push(m(MoveCommand::Hold {
            sku: s.clone(),
            location: code("WH-EAST"),
            units: 2,
            reason: ReasonCode::QualityHold,
        }));
        moves.push(m(MoveCommand::Count { sku: s.clone(), location: code("WH-WEST"), counted_on_hand: 10 }));
        moves.push(m(MoveCommand::Adjust {
            sku: s.clone(),
            location: code("WH-EAST"),
            delta: -1,
            reason: ReasonCode::Damaged,
        }));
    }
    moves
}

pub fn run(target: &Target, seed: u64) -> Result<ExitCode> {
    match target {
        Target::Sqlite(path) => {
            for suffix in ["", "-wal", "-shm"] {
                let mut p = path.as_os_str().to_owned();
                p.push(suffix);
                match std::fs::remove_file(&p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e).with_context(|| format!("removing the previous demo database {p:?}")),
                }
            }
        }
        Target::Postgres(_) => {}
    }
    let mut engine = target.create_engine()?;
    if engine.state().last_seq() != 0 {
        bail!("the PostgreSQL database already holds a journal; run the demo on an empty database");
    }
    let started = std::time::Instant::now();
    let setup = engine.execute(master_data()?);
    for r in setup.results {
        r.context("defining the demo master data")?;
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let moves = week(engine.state(), &mut rng, engine.now().date());
    let attempted = moves.len();
    let mut accepted = 0;
    let mut rejected: Vec<String> = Vec::new();
    for chunk in moves.chunks(100) {
        let outcome = engine.execute(chunk.iter().cloned().map(Request::One).collect());
        for r in outcome.results {
            match r {
                Ok(_) => accepted += 1,
                Err(e) => rejected.push(e.to_string()),
            }
        }
    }
    // A day of orders across the channels.
    let skus: Vec<Sku> = engine.state().items().iter().filter(|i| !i.is_bundle()).map(|i| i.sku.clone()).collect();
    for r in engine.execute(vec![Request::Group(crate::demo_orders::settings(&skus))]).results {
        r.context("defining the demo order settings")?;
    }
    let orders = crate::demo_orders::day_of_orders(&skus, engine.now(), 400, seed);
    let mut order_refusals = Vec::new();
    for chunk in orders.chunks(100) {
        for r in engine.execute(chunk.iter().cloned().map(Request::One).collect()).results {
            if let Err(e) = r {
                order_refusals.push(e.to_string());
            }
        }
    }
    let floor = crate::demo_orders::afternoon_on_the_floor(engine.state());
    for chunk in floor.chunks(200) {
        for r in engine.execute(chunk.iter().cloned().map(Request::One).collect()).results {
            if let Err(e) = r {
                order_refusals.push(e.to_string());
            }
        }
    }
    // Customers send some of it back: authorized, received, inspected and refunded.
    for r in engine.execute(returns(engine.state())).results {
        r.context("the demo's returns")?;
    }
    // Amazon pays out for what shipped: its settlement report, reconciled against the orders.
    let report = amazon_settlement(engine.state());
    let settlement = ordo_channels::amazon::settlement::parse(&report, code("AMAZON-US"))
        .map_err(|e| anyhow::anyhow!("the demo's own settlement report: {e}"))?;
    let fees = ordo_domain::settlement::FeeSchedule { commission_bp: 1_500, tolerance_minor: 1 };
    use ordo_domain::accounting::AccountingCommand;
    for r in engine
        .execute(vec![Request::Group(vec![
            Command::Accounting(AccountingCommand::SetFeeSchedule { channel: code("AMAZON-US"), schedule: fees }),
            Command::Accounting(AccountingCommand::ImportSettlement(Box::new(settlement))),
        ])])
        .results
    {
        r.context("reconciling the demo settlement")?;
    }
    print_summary(&mut engine, target, attempted, accepted, &rejected, started.elapsed())?;
    print_orders(&engine, &order_refusals);
    print_ledger(&engine);
    Ok(ExitCode::SUCCESS)
}

/// Returns on the web store: a 30-day policy (10 % restocking, 5.95 label), and three shipped
/// orders' first lines sent back — one resellable (B) and one unsellable (D), refunded, and one
/// faulty (C) exchanged for a new unit of the same SKU.
fn returns(state: &State) -> Vec<Request> {
    use ordo_domain::returns::{Grade, ReturnCommand, ReturnPolicy};
    let channel = code("SHOPIFY-DTC");
    let mut commands = vec![ReturnCommand::SetPolicy {
        channel: channel.clone(),
        policy: ReturnPolicy {
            window_days: 30,
            returnable_classes: Default::default(),
            restocking_fee_bp: 1_000,
            return_shipping_minor: 595,
            trusted_customers: Default::default(),
            refund_approval_above_minor: 50_000,
        },
    }];
    let shipped = state.orders().all().filter(|r| r.order.channel == channel && !r.shipments.is_empty());
    for (n, r) in shipped.take(3).enumerate() {
        let rma_id = format!("RMA-{}", 1001 + n);
        let line = &r.order.lines[0];
        let location = r.shipments[0].location.clone();
        commands.extend([
            ReturnCommand::Authorize {
                rma_id: rma_id.clone(),
                order: r.key(),
                lines: vec![(line.line_id.clone(), 1)],
                reason: ["too small", "arrived damaged", "stopped working"][n].into(),
            },
            ReturnCommand::Receive { rma_id: rma_id.clone(), location },
            ReturnCommand::Inspect {
                rma_id: rma_id.clone(),
                grades: vec![(line.line_id.clone(), [Grade::B, Grade::D, Grade::C][n])],
            },
        ]);
        let same_sku = r.lines.iter().find(|l| l.order_line_id == line.line_id).and_then(|l| l.sku.clone());
        match same_sku {
            Some(sku) if n == 2 => commands.push(ReturnCommand::Exchange {
                replacement_order_id: format!("EX-{rma_id}"),
                rma_id,
                lines: vec![(line.line_id.clone(), sku)],
            }),
            _ => commands.push(ReturnCommand::Refund { rma_id }),
        }
    }
    vec![Request::Group(commands.into_iter().map(Command::Returns).collect())]
}

/// A V2 flat-file settlement as Amazon would send it for the demo's shipped AMAZON-US orders:
/// principal and the marketplace-collected tax as shipped, a 15 % commission (17 % on one order:
/// fee leakage), one order Ordo never received, a subscription fee and a reserve.
fn amazon_settlement(state: &State) -> String {
    use ordo_domain::accounting::prorate;
    let header = "settlement-id\tsettlement-start-date\tsettlement-end-date\tdeposit-date\ttotal-amount\tcurrency\ttransaction-type\torder-id\tmerchant-order-id\tadjustment-id\tshipment-id\tmarketplace-name\tamount-type\tamount-description\tamount\tfulfillment-id\tposted-date\tposted-date-time\torder-item-code\tmerchant-order-item-id\tmerchant-adjustment-item-id\tsku\tquantity-purchased\tpromotion-id";
    let mut rows: Vec<(String, String, String, String, i64, String)> = Vec::new();
    let row = |t: &str, order: &str, at: &str, desc: &str, minor: i64, sku: &str| {
        (t.to_owned(), order.to_owned(), at.to_owned(), desc.to_owned(), minor, sku.to_owned())
    };
    let shipped = state.orders().all().filter(|r| r.order.channel.as_str() == "AMAZON-US" && !r.shipments.is_empty());
    for (n, r) in shipped.enumerate() {
        let id = &r.order.channel_order_id;
        for line in &r.order.lines {
            let (done, units) = r.shipped_of(&line.line_id);
            if done == 0 {
                continue;
            }
            let sku = match &line.item {
                ordo_domain::orders::model::LineItem::Sku(s) => s.to_string(),
                ordo_domain::orders::model::LineItem::Listing(l) => l.clone(),
            };
            let principal = prorate(line.net_minor(), done, units);
            rows.push(row("Order", id, "ItemPrice", "Principal", principal, &sku));
            for tax in line.tax_lines.iter().filter(|t| t.channel_collected) {
                let amount = prorate(tax.amount_minor, done, units);
                rows.push(row("Order", id, "ItemPrice", "Tax", amount, &sku));
                rows.push(row("Order", id, "ItemFees", "MarketplaceFacilitatorTax-Principal", -amount, &sku));
            }
            let rate = if n == 3 { 1_700 } else { 1_500 };
            rows.push(row("Order", id, "ItemFees", "Commission", -prorate(principal, rate, 10_000), &sku));
        }
    }
    rows.push(row("Order", "114-0000000-0000001", "ItemPrice", "Principal", 2_500, "MUG-LOGO"));
    rows.push(row("Order", "114-0000000-0000001", "ItemFees", "Commission", -375, "MUG-LOGO"));
    rows.push(row("ServiceFee", "", "other-transaction", "Subscription Fee", -3_999, ""));
    rows.push(row("Transfer", "", "other-transaction", "Current Reserve Amount", -10_000, ""));
    let total: i64 = rows.iter().map(|r| r.4).sum();
    let money = |minor: i64| ordo_types::format_decimal(minor, 2);
    let mut out = format!("{header}\n");
    out.push_str(&format!(
        "DEMO-0001\t2026-11-01 00:00:00 UTC\t2026-11-14 23:59:59 UTC\t2026-11-16 00:00:00 UTC\t{}\tUSD{}\n",
        money(total),
        "\t".repeat(18)
    ));
    for (t, order, at, desc, minor, sku) in rows {
        out.push_str(&format!(
            "DEMO-0001\t\t\t\t\tUSD\t{t}\t{order}\t\t\t\tamazon.com\t{at}\t{desc}\t{}\tMFN\t\t\t\t\t\t{sku}\t\t\n",
            money(minor)
        ));
    }
    out
}

fn print_ledger(engine: &Engine<AnyStore>) {
    use ordo_domain::accounting::GlAccount;
    let gl = engine.state().gl();
    let entity = code("US-RETAIL");
    let total = |pick: &dyn Fn(&GlAccount) -> bool| -> i64 {
        gl.balances().iter().filter(|((e, a), _)| *e == entity && pick(a)).map(|(_, b)| *b).sum()
    };
    let usd = |minor: i64| format!("{} USD", ordo_types::format_decimal(minor, 2));
    println!();
    println!("The general ledger of US-RETAIL ({} journal entries, `ordo gl trial-balance`):", gl.entries().len());
    println!("  inventory          {}", usd(total(&|a| *a == GlAccount::Inventory)));
    println!("  revenue            {}", usd(-total(&|a| *a == GlAccount::Revenue)));
    println!("  cost of goods sold {}", usd(total(&|a| *a == GlAccount::CostOfGoodsSold)));
    println!("  tax payable        {}", usd(-total(&|a| matches!(a, GlAccount::TaxPayable(_)))));
    println!("  channel receivable {}", usd(total(&|a| matches!(a, GlAccount::ChannelReceivable(_)))));
    println!("  bank               {}", usd(total(&|a| *a == GlAccount::Bank)));
    println!("  marketplace fees   {}", usd(total(&|a| *a == GlAccount::MarketplaceFees)));
    println!("  debits − credits   {}", total(&|_| true));
    for r in engine.state().returns().all() {
        if let Some(f) = &r.refund {
            println!(
                "  {} on {}: {} unit(s) back, graded {:?}, refunded {} (restocking fee {}, label {})",
                r.rma_id,
                r.order,
                r.lines.iter().map(|l| l.units).sum::<i64>(),
                r.lines.iter().filter_map(|l| l.grade).collect::<Vec<_>>(),
                usd(f.amount_minor),
                usd(f.restocking_fee_minor),
                usd(f.return_shipping_minor)
            );
        }
    }
    for r in engine.state().returns().all() {
        if let Some(x) = engine.state().returns().exchange(&r.rma_id) {
            println!(
                "  {} on {}: exchanged like for like, replacement order {} (credit {}, nothing refunded)",
                r.rma_id,
                r.order,
                x.replacement,
                usd(x.credit.amount_minor)
            );
        }
    }
    for r in gl.settlements().values() {
        let s = &r.settlement;
        println!();
        println!(
            "Settlement {} of {}: stated {}, reconciled {}; {} orders, fee leakage {}; {} variance(s)",
            s.settlement_id,
            s.channel,
            usd(s.stated_total_minor),
            usd(r.reconciled_total_minor),
            r.orders.len(),
            usd(r.fee_leakage_minor),
            r.variances.len()
        );
        println!("  ordo settlement show {}   # per fee type and per order", s.settlement_id);
        println!("  ordo settlement variances         # what did not reconcile, and why");
    }
}

fn print_orders(engine: &Engine<AnyStore>, refusals: &[String]) {
    use ordo_domain::orders::lifecycle::OrderStatus;
    let book = engine.state().orders();
    println!();
    // Replacements of exchanges are Ordo's own orders, not the channels' day.
    let captured = || book.all().filter(|r| r.order.exchange_of().is_none());
    println!("A day of orders ({} captured):", captured().count());
    let mut by_status: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for r in captured() {
        *by_status.entry(r.status.as_str()).or_default() += 1;
    }
    let rows: Vec<Vec<String>> = by_status.iter().map(|(s, n)| vec![(*s).to_owned(), n.to_string()]).collect();
    report::table(&["status", "orders"], &rows);
    let split = book
        .all()
        .filter(|r| {
            let nodes: std::collections::BTreeSet<_> =
                r.lines.iter().flat_map(|l| &l.reservations).map(|x| &x.location).collect();
            nodes.len() > 1
        })
        .count();
    println!("  {split} order(s) split across nodes; {} refused commands", refusals.len());
    let queue = ordo_domain::orders::book::exceptions(engine.state(), engine.now());
    println!();
    println!("Exception queue, first 5 of {} (`ordo exceptions`):", queue.len());
    report::orders(&queue.iter().take(5).copied().collect::<Vec<_>>(), false);
    if let Some(r) = book.all().find(|r| r.status == OrderStatus::Allocated) {
        println!();
        println!("Try: ordo order show {}   # the sourcing decision and every candidate", r.key());
    }
    if let Some(r) = book.all().find(|r| r.shipments.len() > 1).or_else(|| book.all().find(|r| !r.shipments.is_empty()))
    {
        println!("     ordo order show {}   # its shipments, tracking and the floor's history", r.key());
    }
}

fn print_summary(
    engine: &mut Engine<AnyStore>,
    target: &Target,
    attempted: usize,
    accepted: usize,
    rejected: &[String],
    elapsed: std::time::Duration,
) -> Result<()> {
    let state = engine.state();
    let bundles = state.items().iter().filter(|i| i.is_bundle()).count();
    println!("Ordo demo retailer in {}", report::describe_target(target));
    println!(
        "  {} locations, {} channels, {} SKUs ({} bundles), {} journal events, built in {} ms",
        state.locations().len(),
        state.channels().len(),
        state.items().len(),
        bundles,
        state.last_seq(),
        elapsed.as_millis()
    );
    println!(
        "  {attempted} movements attempted: {accepted} accepted, {} rejected by the ledger's rules",
        rejected.len()
    );
    if let Some(first) = rejected.first() {
        println!("  (e.g. \"{first}\" — rejected commands change nothing)");
    }
    println!();
    println!("Positions of two SKUs (`ordo stock --sku …`):");
    let rows: Vec<_> = state
        .stock_rows()
        .into_iter()
        .filter(|r| ["TEE-CLASSIC-BLK-M", "MUG-LOGO"].contains(&r.sku.as_str()))
        .collect();
    report::stock(&rows, false);
    println!();
    println!("Available-to-sell per channel (`ordo ats --sku …`):");
    let showcase =
        ["TEE-CLASSIC-BLK-M", "HOODIE-ZIP-NVY-L", "MUG-LOGO", "GIFT-TEE-MUG", "GIFT-HOODIE-MUG", "JOGGER-BLK-M"];
    let mut body = Vec::new();
    for s in showcase {
        let mut row = vec![s.to_owned()];
        for ch in state.channels() {
            row.push(state.ats(&sku(s), &ch.code).unwrap_or(0).to_string());
        }
        body.push(row);
    }
    let mut headers = vec!["sku"];
    headers.extend(state.channels().iter().map(|c| c.code.as_str()));
    report::table(&headers, &body);
    println!();
    println!("Totals per channel (units offered across all SKUs):");
    let totals: Vec<Vec<String>> = state
        .channels()
        .iter()
        .map(|ch| {
            let total: Units = state.items().iter().filter_map(|i| state.ats(&i.sku, &ch.code)).sum();
            vec![ch.code.to_string(), ch.kind.as_str().to_owned(), total.to_string()]
        })
        .collect();
    report::table(&["channel", "kind", "ats units"], &totals);
    let pending = engine.store_mut().outbox_pending()?;
    println!();
    println!(
        "{pending} messages wait in the outbox for the channels (availability, shipment confirmations, refunds): \
         `ordo worker --config relay.json` delivers them, `ordo outbox status` shows where each relay is."
    );
    println!();
    println!("Try next:");
    println!("  ordo ats --explain TEE-CLASSIC-BLK-M --channel AMAZON-US   # every term of one figure");
    println!("  ordo ats --explain GIFT-TEE-MUG --channel SHOPIFY-DTC      # a bundle sharing a component");
    println!("  ordo move receipt --sku MUG-LOGO --location WH-EAST --quantity 2 --uom case");
    println!(
        "  ordo move adjust --sku MUG-LOGO --location WH-EAST --quantity -500 --reason lost   # rejected: would go negative"
    );
    println!("  ordo stock --sku MUG-LOGO --json");
    println!("  ordo verify                                               # invariants + replay + projections");
    Ok(())
}
