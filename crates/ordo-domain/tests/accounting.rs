//! The general ledger's posting rules, each as a worked example with figures computed by hand in
//! the comments, plus a property: over random receipts, sales, adjustments and write-offs every
//! entry balances, every entity's trial balance is zero and inventory value equals the Inventory
//! account (the `World` checks those invariants after every step).

mod support;

use ordo_domain::accounting::{AccountingCommand, AccountingRejection, GlAccount, PostingRule, PurchaseCost};
use ordo_domain::inventory::{Disposition, ReasonCode};
use ordo_domain::orders::book::{OrderCommand, OrderSetting, ShipmentRequest, ShippedLine};
use ordo_domain::orders::lifecycle::Actor;
use ordo_domain::orders::model::Order;
use ordo_domain::{Command, Rejection};
use ordo_types::CurrencyCode;
use proptest::prelude::*;
use support::*;

fn usd() -> CurrencyCode {
    CurrencyCode::new("USD").unwrap()
}

fn eur() -> CurrencyCode {
    CurrencyCode::new("EUR").unwrap()
}

/// WEB's price list in euros (the price check compares in the order's currency).
fn euro_prices(w: &mut World) {
    for (s, p) in [("TEE", 2000), ("MUG", 1200)] {
        w.run(Command::Order(OrderCommand::Configure(OrderSetting::Price {
            channel: code("WEB"),
            sku: sku(s),
            currency: eur(),
            unit_price_minor: p,
        })));
    }
}

/// The EUR → USD rate in force from `on`.
fn eur_rate(on: &str, rate_nanos: i64) -> Command {
    Command::Accounting(AccountingCommand::SetFxRate { from: eur(), to: usd(), from_date: date(on), rate_nanos })
}

fn cost(s: &str, unit: i64, landed: i64) -> Command {
    Command::Accounting(AccountingCommand::SetPurchaseCost {
        sku: sku(s),
        cost: PurchaseCost { unit_cost_minor: unit, landed_cost_per_unit_minor: landed },
    })
}

fn balance(w: &World, account: GlAccount) -> i64 {
    w.state.gl().balances().get(&(code(ENTITY), account)).copied().unwrap_or(0)
}

fn value(w: &World, s: &str) -> (i64, i64) {
    let v = w.state.gl().valuation().get(&(code(ENTITY), sku(s))).copied().unwrap_or_default();
    (v.units, v.value_minor)
}

/// One warehouse, TEE and MUG, channel WEB with prices, shipping method and taxable US.
fn world() -> World {
    let mut w = World::new();
    w.run(location("WH", true));
    w.run(item("TEE"));
    w.run(item("MUG"));
    w.run(plain_channel("WEB", &["WH"], 1));
    for (s, p) in [("TEE", 2000), ("MUG", 1200)] {
        w.run(Command::Order(OrderCommand::Configure(OrderSetting::Price {
            channel: code("WEB"),
            sku: sku(s),
            currency: usd(),
            unit_price_minor: p,
        })));
    }
    w.run(Command::Order(OrderCommand::Configure(OrderSetting::ShippingMethods {
        channel: code("WEB"),
        methods: ["ground".to_owned()].into(),
    })));
    w.run(Command::Order(OrderCommand::Configure(OrderSetting::Taxable {
        country: "US".into(),
        region: String::new(),
        taxable: true,
    })));
    w
}

fn order(id: &str, currency: &str, tee_price: i64) -> Order {
    serde_json::from_value(serde_json::json!({
        "channel": "WEB", "channel_order_id": id,
        "channel_updated_at": now().millis(), "placed_at": now().millis(),
        "customer": {"id": "C-1", "name": "Ada", "account_status": "active"},
        "ship_to": {"name": "Ada", "line1": "1 Main St", "city": "Boston", "region": "MA",
                    "postal_code": "02101", "country": "US"},
        "lines": [
            {"line_id": "1", "item": {"sku": "TEE"}, "quantity": 3, "unit_price_minor": tee_price,
             "tax_lines": [{"jurisdiction": "US-MA", "rate_bp": 625, "amount_minor": 375}]},
            {"line_id": "2", "item": {"sku": "MUG"}, "quantity": 1, "unit_price_minor": 1200,
             "tax_lines": [{"jurisdiction": "US-MA", "rate_bp": 625, "amount_minor": 75},
                           {"jurisdiction": "US-MKT", "rate_bp": 100, "amount_minor": 12, "channel_collected": true}]}
        ],
        "shipping": {"method": "ground", "service_level": "standard"},
        "payment_status": "captured",
        "fulfillment": {"ship": {"ship_from_store_allowed": false}},
        "currency": currency
    }))
    .unwrap()
}

fn ops() -> Actor {
    Actor::User("ops".into())
}

/// Captures `o` and takes it to packed (all units picked at WH).
fn packed(w: &mut World, o: Order) -> ordo_domain::orders::model::OrderKey {
    let key = o.key();
    w.run(Command::Order(OrderCommand::Capture(Box::new(o))));
    for c in [
        OrderCommand::Dispatch { key: key.clone(), actor: ops(), ship_partial: false },
        OrderCommand::StartPicking { key: key.clone(), actor: ops() },
        OrderCommand::Pack { key: key.clone(), actor: ops() },
    ] {
        w.run(Command::Order(c));
    }
    key
}

fn ship(w: &mut World, key: &ordo_domain::orders::model::OrderKey, id: &str, lines: &[(&str, i64)]) {
    let shipment = ShipmentRequest {
        shipment_id: id.into(),
        location: code("WH"),
        carrier: "UPS".into(),
        service: "ground".into(),
        tracking: format!("1Z{id}"),
        lines: lines.iter().map(|(l, u)| ShippedLine { line_id: (*l).into(), units: *u }).collect(),
    };
    w.run(Command::Order(OrderCommand::Ship { key: key.clone(), actor: ops(), shipment }));
}

#[test]
fn receipts_capitalize_purchase_and_landed_cost_at_moving_average() {
    let mut w = world();
    // 10 TEE at 8.00 + 0.50 landed = 85.00 into inventory, owed to the supplier until invoiced.
    w.run(cost("TEE", 800, 50));
    w.mv(receipt("TEE", "WH", 10));
    assert_eq!(value(&w, "TEE"), (10, 8_500));
    assert_eq!(balance(&w, GlAccount::Inventory), 8_500);
    assert_eq!(balance(&w, GlAccount::GoodsReceivedNotInvoiced), -8_500);
    // 10 more at 9.20 + 0.50 = 97.00: 20 units worth 182.00, a moving average of 9.10.
    w.run(cost("TEE", 920, 50));
    w.mv(receipt("TEE", "WH", 10));
    assert_eq!(value(&w, "TEE"), (20, 18_200));
    let last = w.state.gl().entries().last().unwrap();
    assert_eq!((last.1.rule, last.1.postings[0].units), (PostingRule::Receipt, 9_700));
    assert_eq!(last.0, w.state.last_seq(), "posted in the receipt's own journal event");
}

#[test]
fn a_shipment_books_the_sale_with_its_tax_and_the_cost_of_goods_sold() {
    let mut w = world();
    w.run(cost("TEE", 800, 50));
    w.mv(receipt("TEE", "WH", 10));
    w.run(cost("TEE", 920, 50));
    w.mv(receipt("TEE", "WH", 10));
    w.run(cost("MUG", 400, 0));
    w.mv(receipt("MUG", "WH", 5));
    let key = packed(&mut w, order("1001", "USD", 2000));
    // Capturing, dispatching, picking and packing move stock but no money.
    assert_eq!(balance(&w, GlAccount::Revenue), 0);
    ship(&mut w, &key, "S1", &[]);
    // Sale: revenue 3 × 20.00 + 12.00 = 72.00; tax payable US-MA 3.75 + 0.75 = 4.50; the
    // marketplace's own 0.12 is neither ours to collect nor to pay; receivable 76.50.
    assert_eq!(balance(&w, GlAccount::Revenue), -7_200);
    assert_eq!(balance(&w, GlAccount::TaxPayable("US-MA".into())), -450);
    assert_eq!(balance(&w, GlAccount::TaxPayable("US-MKT".into())), 0);
    assert_eq!(balance(&w, GlAccount::ChannelReceivable(code("WEB"))), 7_650);
    // Cost of sale at moving average: TEE 182.00 × 3/20 = 27.30, MUG 20.00 × 1/5 = 4.00.
    assert_eq!(balance(&w, GlAccount::CostOfGoodsSold), 2_730 + 400);
    assert_eq!(value(&w, "TEE"), (17, 18_200 - 2_730));
    assert_eq!(value(&w, "MUG"), (4, 1_600));
    assert_eq!(balance(&w, GlAccount::Inventory), 18_200 - 2_730 + 1_600);
}

#[test]
fn partial_shipments_recognise_cumulative_shares_that_add_up_to_the_cent() {
    let mut w = world();
    w.mv(receipt("TEE", "WH", 10));
    w.mv(receipt("MUG", "WH", 5));
    // TEE at 20.01: line net 60.03, tax 3.75 over 3 units.
    let key = packed(&mut w, order("1002", "USD", 2001));
    ship(&mut w, &key, "S1", &[("1", 1)]);
    // 1 of 3: revenue 60.03 × 1/3 = 20.01, tax 3.75 × 1/3 = 1.25.
    assert_eq!(balance(&w, GlAccount::Revenue), -2_001);
    assert_eq!(balance(&w, GlAccount::TaxPayable("US-MA".into())), -125);
    ship(&mut w, &key, "S2", &[("1", 1)]);
    // 2 of 3: 40.02 − 20.01 = 20.01; tax round(2.50) − 1.25 = 1.25.
    assert_eq!(balance(&w, GlAccount::Revenue), -4_002);
    ship(&mut w, &key, "S3", &[]);
    // The rest (the last TEE and the MUG) completes the order exactly: 60.03 + 12.00, 3.75 + 0.75.
    assert_eq!(balance(&w, GlAccount::Revenue), -7_203);
    assert_eq!(balance(&w, GlAccount::TaxPayable("US-MA".into())), -450);
    assert_eq!(w.state.gl().entries().iter().filter(|(_, e)| e.rule == PostingRule::Sale).count(), 3);
    // Received without a purchase cost: valued at zero, so no cost of sale is booked.
    assert_eq!(balance(&w, GlAccount::CostOfGoodsSold), 0);
}

#[test]
fn a_sale_in_another_currency_is_converted_at_the_rate_in_force_or_refused() {
    let mut w = world();
    w.mv(receipt("TEE", "WH", 10));
    w.mv(receipt("MUG", "WH", 5));
    euro_prices(&mut w);
    let key = packed(&mut w, order("1003", "EUR", 2000));
    let shipment = ShipmentRequest {
        shipment_id: "S1".into(),
        location: code("WH"),
        carrier: "UPS".into(),
        service: "ground".into(),
        tracking: "1ZS1".into(),
        lines: vec![],
    };
    let ship_all = Command::Order(OrderCommand::Ship { key: key.clone(), actor: ops(), shipment });
    // No EUR → USD rate yet: the shipment is refused with what is missing, nothing changes.
    assert_eq!(
        w.reject(ship_all.clone()),
        Rejection::Accounting(AccountingRejection::NoFxRate { from: eur(), to: usd(), date: now().date() })
    );
    // A rate set for a later day does not count; one in force today does: 1.0842.
    w.run(eur_rate("2026-11-27", 2_000_000_000));
    assert!(matches!(w.reject(ship_all.clone()), Rejection::Accounting(AccountingRejection::NoFxRate { .. })));
    w.run(eur_rate("2026-11-01", 1_084_200_000));
    w.run(ship_all);
    // Revenue €72.00 × 1.0842 = $78.06 (78.0624); tax €4.50 × 1.0842 = $4.88 (4.8789).
    assert_eq!(balance(&w, GlAccount::Revenue), -7_806);
    assert_eq!(balance(&w, GlAccount::TaxPayable("US-MA".into())), -488);
    assert_eq!(w.state.gl().entries().last().unwrap().1.currency, usd());
}

/// A payout in another currency: the bank gets each line at the deposit date's rate, the
/// receivable gives up what the sale booked (at the shipping day's rate), and the difference is
/// a realized exchange loss — the receivable is cleared to the cent.
#[test]
fn a_foreign_currency_payout_realizes_the_exchange_difference() {
    use ordo_domain::settlement::{FeeType, Settlement, SettlementLine};
    let mut w = world();
    w.mv(receipt("TEE", "WH", 10));
    w.mv(receipt("MUG", "WH", 5));
    euro_prices(&mut w);
    w.run(eur_rate("2026-11-01", 1_084_200_000));
    let key = packed(&mut w, order("1004", "EUR", 2000));
    ship(&mut w, &key, "S1", &[]);
    let receivable = GlAccount::ChannelReceivable(code("WEB"));
    // Booked at 1.0842: revenue €72.00 → $78.06, seller-collected tax €4.50 → $4.88.
    assert_eq!(balance(&w, receivable.clone()), 8_294);
    // The euro fell to 1.0500 by the deposit.
    w.run(eur_rate("2026-12-01", 1_050_000_000));
    let line = |n: u64, fee_type: FeeType, amount_minor: i64| SettlementLine {
        source_line: n,
        transaction_type: "Order".into(),
        order_id: Some("1004".into()),
        amount_type: "ItemPrice".into(),
        amount_description: fee_type.as_str().into(),
        amount_minor,
        sku: None,
        quantity: None,
        fee_type,
    };
    let settlement = Settlement {
        channel: code("WEB"),
        settlement_id: "EUR-1".into(),
        start: None,
        end: None,
        deposit_date: Some(date("2026-12-10")),
        currency: eur(),
        stated_total_minor: 7_000,
        lines: vec![line(2, FeeType::Principal, 7_200), line(3, FeeType::Tax, 450), line(4, FeeType::Commission, -650)],
    };
    w.run(Command::Accounting(AccountingCommand::ImportSettlement(Box::new(settlement))));
    // Bank: €70.00 × 1.05 = $73.50. Receivable: −$82.94 (what the sale booked), cleared.
    // Commission: €6.50 × 1.05 = $6.83 (6.825). Realized loss: the proceeds €76.50 are worth
    // $80.33 (78.06 → 75.60, 4.88 → 4.73) less than booked: 82.94 − 80.33 = $2.61.
    assert_eq!(balance(&w, GlAccount::Bank), 7_350);
    assert_eq!(balance(&w, receivable), 0);
    assert_eq!(balance(&w, GlAccount::MarketplaceFees), 683);
    assert_eq!(balance(&w, GlAccount::RealizedFx), 261);
    let (_, entry) = w.state.gl().entries().last().unwrap();
    assert_eq!(entry.rule, PostingRule::Payout);
}

/// A payment processor's payout per order (Shopify balance transactions): the charge's gross
/// is what Ordo shipped plus the tax it booked — 72.00 + 4.50 = 76.50 — so the order reconciles
/// whole, the processing fee is a charge, and the receivable is cleared.
#[test]
fn a_gross_charge_reconciles_against_what_was_shipped_plus_its_tax() {
    use ordo_domain::settlement::{FeeType, Settlement, SettlementLine};
    let mut w = world();
    w.mv(receipt("TEE", "WH", 10));
    w.mv(receipt("MUG", "WH", 5));
    let key = packed(&mut w, order("3001", "USD", 2000));
    ship(&mut w, &key, "S1", &[]);
    let receivable = GlAccount::ChannelReceivable(code("WEB"));
    assert_eq!(balance(&w, receivable.clone()), 7_650);
    let line = |n: u64, fee_type: FeeType, amount_minor: i64, order: &str| SettlementLine {
        source_line: n,
        transaction_type: "Charge".into(),
        order_id: Some(order.into()),
        amount_type: "charge".into(),
        amount_description: fee_type.as_str().into(),
        amount_minor,
        sku: None,
        quantity: None,
        fee_type,
    };
    let settlement = Settlement {
        channel: code("WEB"),
        settlement_id: "PAYOUT-9".into(),
        start: None,
        end: None,
        deposit_date: Some(now().date()),
        currency: usd(),
        stated_total_minor: 7_650 - 252 + 999,
        lines: vec![
            line(1, FeeType::Gross, 7_650, "3001"),
            line(2, FeeType::Commission, -252, "3001"),
            // A charge for an order Ordo never had: a variance, not lost.
            line(3, FeeType::Gross, 999, "9999"),
        ],
    };
    w.run(Command::Accounting(AccountingCommand::ImportSettlement(Box::new(settlement))));
    let reconciled = w.state.gl().settlements().values().next().unwrap().clone();
    let mine = reconciled.orders.iter().find(|o| o.order_id == "3001").unwrap();
    assert_eq!(mine.amounts[&FeeType::Gross], (Some(7_650), 7_650));
    let variances: Vec<Option<&str>> = reconciled.variances.iter().map(|v| v.order_id.as_deref()).collect();
    assert_eq!(variances, [Some("9999")]);
    assert_eq!(balance(&w, receivable), -999, "3001 cleared; the unknown charge credited, awaiting a person");
    assert_eq!(balance(&w, GlAccount::Bank), 8_397);
    assert_eq!(balance(&w, GlAccount::MarketplaceFees), 252);
}

/// The tax rate table: Massachusetts at 6.25 %; the worked order's tax matches it and is
/// allocated; one charging 4.00 instead of 3.75 on the tees is held TAX_MISMATCH.
#[test]
fn tax_is_checked_against_the_ship_to_regions_rate() {
    use ordo_domain::orders::book::OrderRejection;
    use ordo_domain::orders::lifecycle::{HoldCode, OrderStatus};
    let mut w = world();
    w.mv(receipt("TEE", "WH", 10));
    w.mv(receipt("MUG", "WH", 5));
    let rate = |country: &str, rate_bp| {
        Command::Order(OrderCommand::Configure(OrderSetting::TaxRate {
            country: country.into(),
            region: "MA".into(),
            rate_bp,
        }))
    };
    assert!(
        matches!(w.reject(rate("USA", 625)), Rejection::Order(r) if matches!(*r, OrderRejection::BadTaxRate { .. }))
    );
    assert!(matches!(w.reject(rate("US", 10_001)), Rejection::Order(_)));
    w.run(rate("US", 625));
    // 3 × 20.00 × 6.25 % = 3.75 and 12.00 × 6.25 % = 0.75, as the order says.
    let good = order("2001", "USD", 2000);
    let key = good.key();
    w.run(Command::Order(OrderCommand::Capture(Box::new(good))));
    assert_eq!(w.state.orders().get(&key).unwrap().status, OrderStatus::Allocated);
    let mut bad = order("2002", "USD", 2000);
    bad.lines[0].tax_lines[0].amount_minor = 400;
    let key = bad.key();
    w.run(Command::Order(OrderCommand::Capture(Box::new(bad))));
    let record = w.state.orders().get(&key).unwrap();
    assert_eq!(record.status, OrderStatus::OnHold);
    assert_eq!(record.holds.iter().copied().collect::<Vec<_>>(), [HoldCode::TaxMismatch]);
}

#[test]
fn adjustments_write_offs_and_returns_move_value_at_moving_average() {
    let mut w = world();
    w.run(cost("TEE", 1000, 0));
    w.mv(receipt("TEE", "WH", 4));
    // Count correction −1: 10.00 of shrink into Inventory adjustment.
    w.mv(adjust("TEE", "WH", -1, ReasonCode::CountCorrection));
    assert_eq!(balance(&w, GlAccount::InventoryAdjustment), 1_000);
    assert_eq!(value(&w, "TEE"), (3, 3_000));
    // Found one: back in at the moving average (10.00), not at the purchase cost.
    w.run(cost("TEE", 1_300, 0));
    w.mv(adjust("TEE", "WH", 1, ReasonCode::CountCorrection));
    assert_eq!(value(&w, "TEE"), (4, 4_000));
    assert_eq!(balance(&w, GlAccount::InventoryAdjustment), 0);
    // A customer return comes back at the moving average and credits cost of goods sold.
    w.mv(return_receipt("TEE", "WH", 1, None));
    assert_eq!(balance(&w, GlAccount::CostOfGoodsSold), -1_000);
    assert_eq!(value(&w, "TEE"), (5, 5_000));
    // Inspected as damaged, then written off: 10.00 of write-offs; moving between states alone
    // moves no value.
    w.mv(dispose("TEE", "WH", 1, Disposition::Damaged));
    assert_eq!((balance(&w, GlAccount::WriteOff), value(&w, "TEE")), (0, (5, 5_000)));
    w.mv(write_off("TEE", "WH", 1, ReasonCode::Damaged));
    assert_eq!(balance(&w, GlAccount::WriteOff), 1_000);
    assert_eq!(value(&w, "TEE"), (4, 4_000));
}

#[test]
fn settings_are_checked() {
    let w = world();
    assert_eq!(w.reject(cost("NOPE", 100, 0)), Rejection::Accounting(AccountingRejection::UnknownSku(sku("NOPE"))));
    assert_eq!(w.reject(cost("TEE", -1, 0)), Rejection::Accounting(AccountingRejection::NegativeCost));
    let same = Command::Accounting(AccountingCommand::SetFxRate {
        from: usd(),
        to: usd(),
        from_date: date("2026-11-01"),
        rate_nanos: 1,
    });
    assert!(matches!(w.reject(same), Rejection::Accounting(AccountingRejection::SameCurrency { .. })));
}

#[derive(Debug, Clone)]
enum Step {
    Cost(i64, i64),
    Receive(i64),
    Adjust(i64),
    WriteOff(i64),
    Sell(i64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0i64..5_000, 0i64..500).prop_map(|(c, l)| Step::Cost(c, l)),
        (1i64..20).prop_map(Step::Receive),
        (-5i64..5).prop_map(Step::Adjust),
        (1i64..5).prop_map(Step::WriteOff),
        (1i64..4).prop_map(Step::Sell),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Whatever happens, the books balance and inventory value follows the units: the World
    /// asserts every invariant (entries balance, trial balance zero, valuation = Inventory
    /// account, valued units = physical units) after each accepted command; here the replay of
    /// the journal also gives the same ledger.
    #[test]
    fn the_books_balance_and_inventory_value_follows_the_units(steps in prop::collection::vec(step(), 1..40)) {
        let mut w = world();
        let mut orders = 0;
        for s in steps {
            let cmd = match s {
                Step::Cost(c, l) => cost("TEE", c, l),
                Step::Receive(n) => Command::Move(receipt("TEE", "WH", n)),
                Step::Adjust(d) => Command::Move(adjust("TEE", "WH", d, ReasonCode::CountCorrection)),
                Step::WriteOff(n) => {
                    // A return inspected as damaged, then written off.
                    w.run(Command::Move(return_receipt("TEE", "WH", n, None)));
                    w.run(Command::Move(dispose("TEE", "WH", n, Disposition::Damaged)));
                    Command::Move(write_off("TEE", "WH", n, ReasonCode::Damaged))
                }
                Step::Sell(n) => {
                    orders += 1;
                    let mut o = order(&format!("P{orders}"), "USD", 2000);
                    o.lines.truncate(1);
                    o.lines[0].quantity = n;
                    if w.b("TEE", "WH").get(ordo_domain::inventory::StockState::Available) < n {
                        continue;
                    }
                    let key = packed(&mut w, o);
                    let shipment = ShipmentRequest {
                        shipment_id: "S".into(), location: code("WH"), carrier: "UPS".into(),
                        service: "ground".into(), tracking: "1Z".into(), lines: vec![],
                    };
                    Command::Order(OrderCommand::Ship { key, actor: ops(), shipment })
                }
            };
            let _ = w.try_run(cmd);
        }
        let (units, value_minor) = value(&w, "TEE");
        prop_assert_eq!(balance(&w, GlAccount::Inventory), value_minor);
        prop_assert!(units >= 0 && value_minor >= 0);
        let mut replayed = ordo_domain::State::new();
        for (i, e) in w.events.iter().enumerate() {
            replayed.apply(i as u64 + 1, e);
        }
        prop_assert_eq!(replayed.gl(), w.state.gl());
    }
}

#[test]
fn a_transfer_to_another_entity_moves_value_between_their_books() {
    let mut w = world();
    w.run(legal_entity("ACME-EU"));
    let Command::DefineLocation(mut eu) = location("EU-WH", false) else { unreachable!() };
    eu.legal_entity = code("ACME-EU");
    w.run(Command::DefineLocation(eu));
    w.run(cost("TEE", 1000, 50));
    w.mv(receipt("TEE", "WH", 4));
    // 2 of 4 units worth 42.00 leave ACME at moving average (21.00): ACME is owed it by
    // ACME-EU, whose inventory it is from the moment it ships.
    w.mv(transfer_ship("T1", "TEE", "WH", "EU-WH", 2));
    let eu_balance = |account| w.state.gl().balances().get(&(code("ACME-EU"), account)).copied().unwrap_or(0);
    assert_eq!(balance(&w, GlAccount::DueFrom(code("ACME-EU"))), 2_100);
    assert_eq!(balance(&w, GlAccount::Inventory), 2_100);
    assert_eq!(eu_balance(GlAccount::Inventory), 2_100);
    assert_eq!(eu_balance(GlAccount::DueTo(code("ACME"))), -2_100);
    // Receiving it moves units between states of ACME-EU's own stock, and no value.
    let entries = w.state.gl().entries().len();
    w.mv(transfer_receive("T1", 2));
    assert_eq!(w.state.gl().entries().len(), entries);
    let eu_value = w.state.gl().valuation().get(&(code("ACME-EU"), sku("TEE"))).copied().unwrap();
    assert_eq!((eu_value.units, eu_value.value_minor), (2, 2_100));
}

// ----- returns ------------------------------------------------------------------------------

use ordo_domain::returns::{Grade, ReturnCommand, ReturnPolicy, ReturnRejection, RmaStatus};

fn policy(trusted: &[&str]) -> Command {
    Command::Returns(ReturnCommand::SetPolicy {
        channel: code("WEB"),
        policy: ReturnPolicy {
            window_days: 30,
            returnable_classes: Default::default(),
            restocking_fee_bp: 1_000,
            return_shipping_minor: 500,
            trusted_customers: trusted.iter().map(|c| (*c).to_owned()).collect(),
            refund_approval_above_minor: 10_000,
        },
    })
}

fn ret(c: ReturnCommand) -> Command {
    Command::Returns(c)
}

fn authorize(rma: &str, key: &ordo_domain::orders::model::OrderKey, lines: &[(&str, i64)]) -> Command {
    ret(ReturnCommand::Authorize {
        rma_id: rma.into(),
        order: key.clone(),
        lines: lines.iter().map(|(l, u)| ((*l).to_owned(), *u)).collect(),
        reason: "too small".into(),
    })
}

fn returns_rejection(r: Rejection) -> ReturnRejection {
    match r {
        Rejection::Returns(r) => r,
        other => panic!("expected a return rejection, got {other:?}"),
    }
}

/// WEB with a 30-day policy (10 % restocking, 5.00 return label, refunds above 100.00 approved),
/// TEE and MUG received at cost and order 2001 shipped whole.
fn shipped_world(trusted: &[&str]) -> (World, ordo_domain::orders::model::OrderKey) {
    let mut w = world();
    w.run(cost("TEE", 1_000, 0));
    w.mv(receipt("TEE", "WH", 10));
    w.mv(receipt("MUG", "WH", 5));
    w.run(policy(trusted));
    let key = packed(&mut w, order("2001", "USD", 2000));
    ship(&mut w, &key, "S1", &[]);
    (w, key)
}

#[test]
fn a_return_is_authorized_received_inspected_and_refunded_by_grade_and_policy() {
    let (mut w, key) = shipped_world(&[]);
    let receivable = || GlAccount::ChannelReceivable(code("WEB"));
    let receivable_after_sale = balance(&w, receivable());
    // 2 of the 3 TEE: 40.00 paid, and 3.75 × 2/3 = 2.50 of US-MA tax.
    w.run(authorize("RMA-1", &key, &[("1", 2)]));
    let rma = w.state.returns().get("RMA-1").unwrap().clone();
    assert_eq!(
        (rma.status, rma.lines[0].paid_net_minor, rma.lines[0].paid_tax_minor["US-MA"]),
        (RmaStatus::Authorized, 4_000, 250)
    );
    assert!(rma.refund.is_none(), "not a trusted customer: refunded after inspection");
    // Out of order steps are refused.
    assert!(matches!(
        returns_rejection(
            w.reject(ret(ReturnCommand::Inspect { rma_id: "RMA-1".into(), grades: vec![("1".into(), Grade::B)] }))
        ),
        ReturnRejection::Illegal { .. }
    ));
    assert!(matches!(
        returns_rejection(w.reject(ret(ReturnCommand::Refund { rma_id: "RMA-1".into() }))),
        ReturnRejection::Illegal { .. }
    ));
    // Back into quality control, valued at moving average (10.00) against cost of goods sold.
    let cogs = balance(&w, GlAccount::CostOfGoodsSold);
    w.run(ret(ReturnCommand::Receive { rma_id: "RMA-1".into(), location: code("WH") }));
    assert_eq!(w.b("TEE", "WH").get(ordo_domain::inventory::StockState::QualityControl), 2);
    assert_eq!(balance(&w, GlAccount::CostOfGoodsSold), cogs - 2_000);
    // Graded B: resellable, back to available, with a restocking fee.
    assert!(matches!(
        returns_rejection(w.reject(ret(ReturnCommand::Inspect { rma_id: "RMA-1".into(), grades: vec![] }))),
        ReturnRejection::MissingGrade(_)
    ));
    let available = w.b("TEE", "WH").get(ordo_domain::inventory::StockState::Available);
    w.run(ret(ReturnCommand::Inspect { rma_id: "RMA-1".into(), grades: vec![("1".into(), Grade::B)] }));
    assert_eq!(w.b("TEE", "WH").get(ordo_domain::inventory::StockState::Available), available + 2);
    // Refund: 40.00 + 2.50 − 4.00 restocking (10 %) − 5.00 label = 33.50.
    w.run(ret(ReturnCommand::Refund { rma_id: "RMA-1".into() }));
    let refund = w.state.returns().get("RMA-1").unwrap().refund.clone().unwrap();
    assert_eq!((refund.amount_minor, refund.restocking_fee_minor, refund.return_shipping_minor), (3_350, 400, 500));
    assert_eq!(balance(&w, GlAccount::SalesReturns), 4_000);
    assert_eq!(balance(&w, GlAccount::RestockingFees), -400);
    assert_eq!(balance(&w, receivable()), receivable_after_sale - 3_350);
    assert_eq!(
        returns_rejection(w.reject(ret(ReturnCommand::Refund { rma_id: "RMA-1".into() }))),
        ReturnRejection::AlreadyRefunded("RMA-1".into())
    );
    // Only 1 TEE is left to return on that line.
    assert_eq!(
        returns_rejection(w.reject(authorize("RMA-2", &key, &[("1", 2)]))),
        ReturnRejection::TooManyUnits { line: "1".into(), asked: 2, returnable: 1 }
    );
}

#[test]
fn trusted_customers_are_refunded_at_once_and_the_window_and_classes_hold() {
    let (mut w, key) = shipped_world(&["C-1"]);
    // Trusted: refunded at authorization, no restocking fee: 12.00 + 0.75 − 5.00 = 7.75.
    w.run(authorize("RMA-T", &key, &[("2", 1)]));
    let refund = w.state.returns().get("RMA-T").unwrap().refund.clone().unwrap();
    assert_eq!((refund.amount_minor, refund.restocking_fee_minor), (775, 0));
    // Grade D: written off from quality control at moving average.
    w.run(ret(ReturnCommand::Receive { rma_id: "RMA-T".into(), location: code("WH") }));
    w.run(ret(ReturnCommand::Inspect { rma_id: "RMA-T".into(), grades: vec![("2".into(), Grade::D)] }));
    assert_eq!(balance(&w, GlAccount::WriteOff), 0, "MUG was received without a cost");
    assert_eq!(w.b("MUG", "WH").get(ordo_domain::inventory::StockState::QualityControl), 0);
    // After the window: refused, naming the day it closed.
    let mut late = w.state.clone();
    let later = ordo_types::Timestamp::from_millis(now().millis() + 31 * 86_400_000);
    let refused = late.decide(&authorize("RMA-L", &key, &[("1", 1)]), later).unwrap_err();
    assert!(matches!(returns_rejection(refused), ReturnRejection::OutsideWindow { days: 30, .. }));
    // A policy limited to a class TEE is not in.
    let Command::Returns(ReturnCommand::SetPolicy { channel, mut policy }) = policy(&[]) else { unreachable!() };
    policy.returnable_classes = [code("apparel")].into();
    late.apply(late.last_seq() + 1, &late.decide(&ret(ReturnCommand::SetPolicy { channel, policy }), now()).unwrap());
    assert!(matches!(
        returns_rejection(late.decide(&authorize("RMA-C", &key, &[("1", 1)]), now()).unwrap_err()),
        ReturnRejection::NotReturnable { .. }
    ));
}

#[test]
fn refunds_above_the_threshold_wait_for_a_second_person() {
    let (mut w, key) = shipped_world(&[]);
    w.run(authorize("RMA-1", &key, &[("1", 3), ("2", 1)]));
    w.run(ret(ReturnCommand::Receive { rma_id: "RMA-1".into(), location: code("WH") }));
    let grades = vec![("1".to_owned(), Grade::A), ("2".to_owned(), Grade::A)];
    w.run(ret(ReturnCommand::Inspect { rma_id: "RMA-1".into(), grades }));
    // 60.00 + 12.00 + 4.50 − 5.00 = 71.50 is under 100.00: no approval needed.
    let gated = |by: &str| Command::Gated {
        by: by.into(),
        note: String::new(),
        command: Box::new(ret(ReturnCommand::Refund { rma_id: "RMA-1".into() })),
    };
    let low = w.state.clone();
    let event = low.decide(&gated("cs"), now()).unwrap();
    assert!(matches!(event, ordo_domain::Event::Accounted { .. }), "{event:?}");
    // With a 50.00 threshold it becomes a request, approved by someone else.
    let Command::Returns(ReturnCommand::SetPolicy { channel, mut policy }) = policy(&[]) else { unreachable!() };
    policy.refund_approval_above_minor = 5_000;
    w.run(ret(ReturnCommand::SetPolicy { channel, policy }));
    w.run(gated("cs"));
    assert!(w.state.returns().get("RMA-1").unwrap().refund.is_none());
    let id = w.state.approvals().all().next().unwrap().id;
    assert!(w.try_run(Command::Approve { id, by: "cs".into(), reason: "ok".into() }).is_err(), "not by the requester");
    w.run(Command::Approve { id, by: "finance".into(), reason: "checked".into() });
    assert_eq!(w.state.returns().get("RMA-1").unwrap().refund.as_ref().unwrap().amount_minor, 7_150);
}

// ----- waves --------------------------------------------------------------------------------

#[test]
fn a_wave_releases_promises_before_the_cutoff_first_then_by_service_and_age() {
    use ordo_domain::orders::model::ServiceLevel;
    use ordo_domain::orders::waves::plan;
    let mut w = world();
    w.mv(receipt("TEE", "WH", 30));
    w.mv(receipt("MUG", "WH", 10));
    let capture = |w: &mut World, id: &str, level: ServiceLevel, ship_by: Option<i64>, minutes: i64| {
        let mut o = order(id, "USD", 2000);
        o.shipping.service_level = level;
        o.shipping.ship_by = ship_by.map(ordo_types::Timestamp::from_millis);
        o.placed_at = ordo_types::Timestamp::from_millis(now().millis() - minutes * 60_000);
        w.run(Command::Order(OrderCommand::Capture(Box::new(o))));
    };
    // now is 10:00 UTC; WH (UTC) cuts off at 15:00.
    capture(&mut w, "OLD-STANDARD", ServiceLevel::Standard, None, 300);
    capture(&mut w, "NEXT-DAY", ServiceLevel::NextDay, None, 10);
    capture(&mut w, "MUST-GO", ServiceLevel::Standard, Some(now().millis() + 3 * 3_600_000), 5);
    capture(&mut w, "LATER-PROMISE", ServiceLevel::Standard, Some(now().millis() + 30 * 3_600_000), 1);
    let wave = plan(&w.state, &code("WH"), now(), 10).unwrap();
    assert_eq!(wave.next_cutoff.millis(), now().millis() + 5 * 3_600_000);
    let ids: Vec<&str> = wave.orders.iter().map(|o| o.key.channel_order_id.as_str()).collect();
    assert_eq!(ids, ["MUST-GO", "LATER-PROMISE", "NEXT-DAY", "OLD-STANDARD"]);
    assert!(wave.orders[0].before_cutoff && !wave.orders[1].before_cutoff);
    // The pick list: 4 orders × 3 TEE and 1 MUG.
    let picks: Vec<(&str, i64, usize)> =
        wave.pick_list.iter().map(|p| (p.sku.as_str(), p.units, p.orders.len())).collect();
    assert_eq!(picks, [("MUG", 4, 4), ("TEE", 12, 4)]);
    // A limit takes the most urgent; released orders leave the next plan.
    let two = plan(&w.state, &code("WH"), now(), 2).unwrap();
    for o in &two.orders {
        w.run(Command::Order(OrderCommand::Dispatch { key: o.key.clone(), actor: ops(), ship_partial: false }));
        w.run(Command::Order(OrderCommand::StartPicking { key: o.key.clone(), actor: ops() }));
    }
    let rest = plan(&w.state, &code("WH"), now(), 10).unwrap();
    assert_eq!(
        rest.orders.iter().map(|o| o.key.channel_order_id.as_str()).collect::<Vec<_>>(),
        ["NEXT-DAY", "OLD-STANDARD"]
    );
    assert!(plan(&w.state, &code("NOPE"), now(), 10).is_err());
}

/// Regressions from review: a line named twice in one RMA, shares rounded per RMA, a fee above
/// the refund, and a location moved to another entity under its stock.
#[test]
fn returns_cannot_refund_more_than_was_paid_nor_strand_valued_stock() {
    let mut w = world();
    w.mv(receipt("TEE", "WH", 10));
    w.mv(receipt("MUG", "WH", 5));
    w.run(policy(&[]));
    let mut o = order("3001", "USD", 2000);
    o.lines.truncate(1);
    o.lines[0].quantity = 2;
    o.lines[0].discount_minor = 1;
    let key = packed(&mut w, o);
    ship(&mut w, &key, "S1", &[]);
    assert_eq!(
        returns_rejection(w.reject(authorize("RMA-D", &key, &[("1", 1), ("1", 1)]))),
        ReturnRejection::DuplicateLine("1".into())
    );
    // 39.99 paid for 2: two returns of one refund 20.00 and 19.99, never 40.00.
    w.run(authorize("RMA-A", &key, &[("1", 1)]));
    w.run(authorize("RMA-B", &key, &[("1", 1)]));
    let paid: Vec<i64> =
        ["RMA-A", "RMA-B"].iter().map(|r| w.state.returns().get(r).unwrap().lines[0].paid_net_minor).collect();
    assert_eq!(paid, [2_000, 1_999]);
    let Command::Returns(ReturnCommand::SetPolicy { channel, mut policy }) = policy(&[]) else { unreachable!() };
    policy.restocking_fee_bp = 20_000;
    assert_eq!(
        returns_rejection(w.reject(ret(ReturnCommand::SetPolicy { channel, policy }))),
        ReturnRejection::FeeAboveRefund(20_000)
    );
    // WH holds valued stock: it cannot move to another entity's books.
    w.run(legal_entity("ACME-EU"));
    let Command::DefineLocation(mut moved) = location("WH", true) else { unreachable!() };
    moved.legal_entity = code("ACME-EU");
    assert!(matches!(
        w.reject(Command::DefineLocation(moved)),
        Rejection::Catalog(ordo_domain::catalog::CatalogRejection::EntityChangeWithStock(_))
    ));
    assert_eq!(
        w.reject(cost("TEE", 1_000_000_000_001, 0)),
        Rejection::Accounting(AccountingRejection::AmountOutOfRange)
    );
}

#[derive(Debug, Clone)]
enum ReturnStep {
    Authorize(u8, i64, i64),
    Receive(u8),
    Inspect(u8, u8, u8),
    Refund(u8),
    Exchange(u8, u8),
    ChannelRefund(u8, i64, i64, bool, i64),
}

fn return_step() -> impl Strategy<Value = ReturnStep> {
    prop_oneof![
        (0u8..2, 0i64..4, 0i64..3).prop_map(|(r, a, b)| ReturnStep::Authorize(r, a, b)),
        (0u8..2).prop_map(ReturnStep::Receive),
        (0u8..2, 0u8..4, 0u8..4).prop_map(|(r, a, b)| ReturnStep::Inspect(r, a, b)),
        (0u8..2).prop_map(ReturnStep::Refund),
        (0u8..2, 0u8..3).prop_map(|(r, l)| ReturnStep::Exchange(r, l)),
        (0u8..2, 0i64..4, 0i64..3, any::<bool>(), 0i64..10_000)
            .prop_map(|(r, a, b, back, amount)| ReturnStep::ChannelRefund(r, a, b, back, amount)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(160))]

    /// Whatever order return steps come in: the books and the ledger stay consistent (checked by
    /// the World after every accepted step), a refused step changes nothing, no line is returned
    /// beyond what shipped, no refund is negative, and the order's refunds and exchange credits
    /// never exceed what the customer paid.
    #[test]
    fn returns_never_refund_more_than_was_paid(steps in prop::collection::vec(return_step(), 1..30), trusted in any::<bool>()) {
        let (mut w, key) = shipped_world(if trusted { &["C-1"] } else { &[] });
        let grade = |g: u8| [Grade::A, Grade::B, Grade::C, Grade::D][usize::from(g % 4)];
        for step in steps {
            let rma = |r: u8| format!("RMA-{r}");
            let command = match step {
                ReturnStep::Authorize(r, a, b) => {
                    let lines: Vec<(&str, i64)> = [("1", a), ("2", b)].into_iter().filter(|(_, u)| *u > 0).collect();
                    authorize(&rma(r), &key, &lines)
                }
                ReturnStep::Receive(r) => ret(ReturnCommand::Receive { rma_id: rma(r), location: code("WH") }),
                ReturnStep::Inspect(r, a, b) => ret(ReturnCommand::Inspect {
                    rma_id: rma(r),
                    grades: vec![("1".into(), grade(a)), ("2".into(), grade(b))],
                }),
                ReturnStep::Refund(r) => ret(ReturnCommand::Refund { rma_id: rma(r) }),
                // Like for like: line 1, line 2, or both.
                ReturnStep::Exchange(r, l) => {
                    let lines: &[(&str, &str)] = match l {
                        0 => &[("1", "TEE")],
                        1 => &[("2", "MUG")],
                        _ => &[("1", "TEE"), ("2", "MUG")],
                    };
                    exchange(&rma(r), &format!("EX-{r}"), lines)
                }
                ReturnStep::ChannelRefund(r, a, b, back, amount) => {
                    let lines: Vec<(&str, i64, bool)> =
                        [("1", a, back), ("2", b, back)].into_iter().filter(|(_, u, _)| *u > 0).collect();
                    channel_refund(&format!("C{r}"), &key, &lines, amount)
                }
            };
            let before = w.state.clone();
            if w.try_run(command).is_err() {
                prop_assert_eq!(&w.state, &before, "a refused step changed the state");
            }
        }
        let rmas: Vec<_> = w.state.returns().all().cloned().collect();
        for line in ["1", "2"] {
            let returned: i64 = rmas.iter().flat_map(|r| &r.lines).filter(|l| l.order_line_id == line).map(|l| l.units).sum();
            let shipped = if line == "1" { 3 } else { 1 };
            prop_assert!(returned <= shipped, "line {line}: {returned} returned of {shipped}");
        }
        let credited: i64 =
            rmas.iter().filter_map(|r| w.state.returns().exchange(&r.rma_id)).map(|x| x.credit.amount_minor).sum();
        let refunded: i64 =
            rmas.iter().filter_map(|r| r.refund.as_ref()).map(|f| f.amount_minor).sum::<i64>() + credited;
        prop_assert!(rmas.iter().filter_map(|r| r.refund.as_ref()).all(|f| f.amount_minor >= 0));
        // What was paid: 3 × 20.00 + 3.75 tax, 12.00 + 0.75 tax.
        prop_assert!(refunded <= 6_000 + 375 + 1_200 + 75, "refunded {refunded}");
    }
}

// ----- exchanges ----------------------------------------------------------------------------

fn exchange(rma: &str, replacement: &str, lines: &[(&str, &str)]) -> Command {
    ret(ReturnCommand::Exchange {
        rma_id: rma.into(),
        replacement_order_id: replacement.into(),
        lines: lines.iter().map(|(l, s)| ((*l).to_owned(), sku(s))).collect(),
    })
}

/// `shipped_world` plus TEE-L, listed on WEB at TEE's price (a size swap), with stock.
fn exchange_world(trusted: &[&str]) -> (World, ordo_domain::orders::model::OrderKey) {
    let (mut w, key) = shipped_world(trusted);
    w.run(item("TEE-L"));
    w.run(Command::Order(OrderCommand::Configure(OrderSetting::Price {
        channel: code("WEB"),
        sku: sku("TEE-L"),
        currency: usd(),
        unit_price_minor: 2000,
    })));
    w.run(cost("TEE-L", 1_000, 0));
    w.mv(receipt("TEE-L", "WH", 5));
    // Not listed on WEB: worth anything, so never swapped for a listed SKU.
    w.run(item("HAT"));
    w.mv(receipt("HAT", "WH", 5));
    (w, key)
}

#[test]
fn an_exchange_ships_a_replacement_at_what_was_paid_and_refunds_the_other_lines() {
    let (mut w, key) = exchange_world(&[]);
    let receivable = || GlAccount::ChannelReceivable(code("WEB"));
    let receivable_after_sale = balance(&w, receivable());
    let tax = || GlAccount::TaxPayable("US-MA".into());
    let tax_after_sale = balance(&w, tax());
    w.run(authorize("RMA-X", &key, &[("1", 2), ("2", 1)]));
    // Not before inspection: the goods must be back and graded.
    assert!(matches!(
        returns_rejection(w.reject(exchange("RMA-X", "EX-1", &[("1", "TEE-L")]))),
        ReturnRejection::Illegal { action: "exchanged", .. }
    ));
    w.run(ret(ReturnCommand::Receive { rma_id: "RMA-X".into(), location: code("WH") }));
    let grades = vec![("1".to_owned(), Grade::B), ("2".to_owned(), Grade::C)];
    w.run(ret(ReturnCommand::Inspect { rma_id: "RMA-X".into(), grades }));
    // What is refused, and changes nothing.
    assert_eq!(
        returns_rejection(w.reject(exchange("RMA-X", "EX-1", &[("9", "TEE-L")]))),
        ReturnRejection::NotOnRma { rma: "RMA-X".into(), line: "9".into() }
    );
    assert_eq!(
        returns_rejection(w.reject(exchange("RMA-X", "EX-1", &[("1", "NOPE")]))),
        ReturnRejection::UnknownSku(sku("NOPE"))
    );
    assert_eq!(
        returns_rejection(w.reject(exchange("RMA-X", "2001", &[("1", "TEE-L")]))),
        ReturnRejection::ReplacementExists(key.clone())
    );
    // A MUG (12.00) for a TEE (20.00) is not even.
    assert!(matches!(
        returns_rejection(w.reject(exchange("RMA-X", "EX-1", &[("1", "MUG")]))),
        ReturnRejection::UnevenExchange { returned_price: 2_000, replacement_price: 1_200, .. }
    ));
    assert_eq!(
        returns_rejection(w.reject(exchange("RMA-X", "EX-1", &[("1", "HAT")]))),
        ReturnRejection::NotListed { sku: sku("HAT"), channel: code("WEB") }
    );
    assert_eq!(
        returns_rejection(w.reject(exchange("RMA-X", "EX-1", &[("1", "TEE-L"), ("1", "TEE")]))),
        ReturnRejection::DuplicateLine("1".into())
    );

    // The TEEs (line 1, graded B) swapped for TEE-L; the MUG (line 2, graded C) refunded.
    let event = w.state.decide(&exchange("RMA-X", "EX-1", &[("1", "TEE-L")]), now()).unwrap();
    w.run(exchange("RMA-X", "EX-1", &[("1", "TEE-L")]));
    let rma = w.state.returns().get("RMA-X").unwrap().clone();
    assert_eq!(rma.status, RmaStatus::Closed);
    // Line 2's refund: 12.00 + 0.75 − 1.20 restocking (10 % for grade C) − 5.00 label = 6.55.
    let refund = rma.refund.clone().unwrap();
    assert_eq!((refund.net_minor, refund.restocking_fee_minor, refund.return_shipping_minor), (1_200, 120, 500));
    assert_eq!(refund.amount_minor, 655);
    // Line 1's credit: 2 × 20.00 and 2/3 of 3.75 tax = 42.50, no fee: the sale is kept.
    let ex = w.state.returns().exchange("RMA-X").unwrap().clone();
    assert_eq!((ex.credit.net_minor, ex.credit.amount_minor, ex.credit.restocking_fee_minor), (4_000, 4_250, 0));
    // The replacement: same customer and address, priced at what was paid, reserved at WH.
    let replacement = w.state.orders().get(&ex.replacement).unwrap().clone();
    let original = w.state.orders().get(&key).unwrap();
    assert_eq!(replacement.order.channel_order_id, "EX-1");
    assert_eq!(replacement.order.exchange_of(), Some("RMA-X"));
    assert_eq!(
        (&replacement.order.customer, &replacement.order.ship_to),
        (&original.order.customer, &original.order.ship_to)
    );
    assert_eq!((replacement.order.net_minor(), replacement.order.tax_minor()), (4_000, 250));
    assert_eq!(replacement.order.lines[0].quantity, 2);
    assert!(replacement.holds.is_empty(), "{:?}", replacement.findings);
    assert_eq!(replacement.status, ordo_domain::orders::lifecycle::OrderStatus::Allocated);
    assert_eq!(w.b("TEE-L", "WH").get(ordo_domain::inventory::StockState::Committed), 2);
    // Books: both lines leave revenue; the receivable drops by the refund and the credit.
    assert_eq!(balance(&w, GlAccount::SalesReturns), 4_000 + 1_200);
    assert_eq!(balance(&w, tax()), tax_after_sale + 250 + 75);
    assert_eq!(balance(&w, GlAccount::RestockingFees), -120);
    assert_eq!(balance(&w, receivable()), receivable_after_sale - 655 - 4_250);
    let rules: Vec<PostingRule> = w.state.gl().entries().iter().rev().take(2).map(|(_, e)| e.rule).collect();
    assert!(rules.contains(&PostingRule::Exchange) && rules.contains(&PostingRule::Refund), "{rules:?}");
    // The channel is told of the refund of line 2 only.
    let messages = ordo_domain::outbox::messages_of(&event, now());
    assert_eq!(messages.len(), 1);
    let refund_message: serde_json::Value = serde_json::from_str(&messages[0].payload).unwrap();
    assert_eq!(refund_message["amount_minor"], 655);
    assert_eq!(refund_message["lines"], serde_json::json!([{"line_id": "2", "sku": "MUG", "units": 1}]));
    // Settled: no refund, no second exchange.
    assert_eq!(
        returns_rejection(w.reject(exchange("RMA-X", "EX-2", &[("1", "TEE-L")]))),
        ReturnRejection::AlreadyRefunded("RMA-X".into())
    );
    assert!(matches!(
        returns_rejection(w.reject(ret(ReturnCommand::Refund { rma_id: "RMA-X".into() }))),
        ReturnRejection::ReplacementNotCancelled { .. }
    ));

    // The replacement ships: its sale restores the receivable the channel settles once, and
    // nothing is confirmed to the channel (it never had order EX-1).
    let ex_key = ex.replacement.clone();
    for c in [
        OrderCommand::Dispatch { key: ex_key.clone(), actor: ops(), ship_partial: false },
        OrderCommand::StartPicking { key: ex_key.clone(), actor: ops() },
        OrderCommand::Pack { key: ex_key.clone(), actor: ops() },
    ] {
        w.run(Command::Order(c));
    }
    let shipment = ShipmentRequest {
        shipment_id: "SX".into(),
        location: code("WH"),
        carrier: "UPS".into(),
        service: "ground".into(),
        tracking: "1ZSX".into(),
        lines: vec![],
    };
    let ship_cmd = Command::Order(OrderCommand::Ship { key: ex_key.clone(), actor: ops(), shipment });
    let shipped = w.state.decide(&ship_cmd, now()).unwrap();
    assert!(ordo_domain::outbox::messages_of(&shipped, now()).is_empty());
    w.run(ship_cmd);
    assert_eq!(balance(&w, receivable()), receivable_after_sale - 655);
    assert_eq!(balance(&w, tax()), tax_after_sale + 75);
    // The replacement can itself be returned, within its own shipment's window.
    w.run(authorize("RMA-Y", &ex_key, &[("1", 1)]));
    assert_eq!(w.state.returns().get("RMA-Y").unwrap().lines[0].paid_net_minor, 2_000);
}

#[test]
fn a_cancelled_replacement_refunds_the_exchange_credit_and_books_nothing_more() {
    let (mut w, key) = exchange_world(&[]);
    w.run(authorize("RMA-X", &key, &[("1", 2)]));
    w.run(ret(ReturnCommand::Receive { rma_id: "RMA-X".into(), location: code("WH") }));
    w.run(ret(ReturnCommand::Inspect { rma_id: "RMA-X".into(), grades: vec![("1".into(), Grade::A)] }));
    w.run(exchange("RMA-X", "EX-1", &[("1", "TEE-L")]));
    let receivable = || GlAccount::ChannelReceivable(code("WEB"));
    let after_credit = balance(&w, receivable());
    // While the replacement may still ship, the credit is not refunded.
    assert!(matches!(
        returns_rejection(w.reject(ret(ReturnCommand::Refund { rma_id: "RMA-X".into() }))),
        ReturnRejection::ReplacementNotCancelled { status: "allocated", .. }
    ));
    let ex_key = w.state.returns().exchange("RMA-X").unwrap().replacement.clone();
    w.run(Command::Order(OrderCommand::Cancel { key: ex_key, actor: ops(), reason: "TEE-L discontinued".into() }));
    assert_eq!(w.b("TEE-L", "WH").get(ordo_domain::inventory::StockState::Committed), 0);
    // Refunded: the whole credit (2 × 20.00 + 2.50 tax), told to the channel for line 1; the
    // receivable already carries it (the credit took it off, no replacement sale put it back).
    let command = ret(ReturnCommand::Refund { rma_id: "RMA-X".into() });
    let event = w.state.decide(&command, now()).unwrap();
    let messages = ordo_domain::outbox::messages_of(&event, now());
    assert_eq!(messages.len(), 1);
    let message: serde_json::Value = serde_json::from_str(&messages[0].payload).unwrap();
    assert_eq!(message["amount_minor"], 4_250);
    assert_eq!(message["lines"], serde_json::json!([{"line_id": "1", "units": 2}]));
    w.run(command);
    assert_eq!(w.state.returns().exchange_refund("RMA-X").unwrap().amount_minor, 4_250);
    assert_eq!(balance(&w, receivable()), after_credit);
    assert_eq!(
        returns_rejection(w.reject(ret(ReturnCommand::Refund { rma_id: "RMA-X".into() }))),
        ReturnRejection::AlreadyRefunded("RMA-X".into())
    );
}

#[test]
fn an_order_cannot_claim_to_be_an_exchange_replacement() {
    let (mut w, _) = exchange_world(&[]);
    let mut o = order("5001", "USD", 2000);
    o.tags = vec!["exchange:RMA-Z".into(), "vip".into()];
    let key = o.key();
    w.run(Command::Order(OrderCommand::Capture(Box::new(o))));
    let record = w.state.orders().get(&key).unwrap();
    assert_eq!(record.order.tags, ["vip"]);
    assert_eq!(record.order.exchange_of(), None, "its shipments are confirmed to the channel");
}

#[test]
fn a_trusted_customer_already_refunded_cannot_also_exchange() {
    let (mut w, key) = exchange_world(&["C-1"]);
    w.run(authorize("RMA-T", &key, &[("1", 1)]));
    w.run(ret(ReturnCommand::Receive { rma_id: "RMA-T".into(), location: code("WH") }));
    w.run(ret(ReturnCommand::Inspect { rma_id: "RMA-T".into(), grades: vec![("1".into(), Grade::A)] }));
    assert_eq!(
        returns_rejection(w.reject(exchange("RMA-T", "EX-T", &[("1", "TEE")]))),
        ReturnRejection::AlreadyRefunded("RMA-T".into())
    );
}

// ----- refunds the channel issued -----------------------------------------------------------

fn channel_refund(
    id: &str,
    key: &ordo_domain::orders::model::OrderKey,
    lines: &[(&str, i64, bool)],
    amount: i64,
) -> Command {
    ret(ReturnCommand::RecordChannelRefund(ordo_domain::returns::ChannelRefund {
        refund_id: id.into(),
        order: key.clone(),
        lines: lines.iter().map(|(l, u, r)| ((*l).to_owned(), *u, *r)).collect(),
        amount_minor: amount,
        note: String::new(),
    }))
}

#[test]
fn a_refund_the_channel_issued_is_booked_once_and_never_refunded_again() {
    let (mut w, key) = shipped_world(&[]);
    let receivable = || GlAccount::ChannelReceivable(code("WEB"));
    let receivable_after_sale = balance(&w, receivable());
    // Refused, changing nothing: negative money, a line the order does not have.
    assert_eq!(
        returns_rejection(w.reject(channel_refund("R0", &key, &[("1", 1, true)], -1))),
        ReturnRejection::NegativeRefund(-1)
    );
    assert!(matches!(
        returns_rejection(w.reject(channel_refund("R0", &key, &[("9", 1, true)], 100))),
        ReturnRejection::UnknownLine { .. }
    ));
    // Shopify refunded 2 TEE, to come back: 40.00 + 2.50 tax, exactly their price.
    let command = channel_refund("R1", &key, &[("1", 2, true)], 4_250);
    let event = w.state.decide(&command, now()).unwrap();
    assert!(ordo_domain::outbox::messages_of(&event, now()).is_empty(), "the channel refunded it: nothing to tell it");
    w.run(command);
    let rma = w.state.returns().get("WEB-REFUND-R1").unwrap().clone();
    assert_eq!(rma.status, RmaStatus::Authorized, "the goods are to come back");
    let refund = rma.refund.clone().unwrap();
    assert_eq!((refund.net_minor, refund.amount_minor, refund.restocking_fee_minor), (4_000, 4_250, 0));
    assert_eq!(balance(&w, GlAccount::SalesReturns), 4_000);
    assert_eq!(balance(&w, receivable()), receivable_after_sale - 4_250);
    assert_eq!(
        returns_rejection(w.reject(channel_refund("R1", &key, &[("1", 1, true)], 100))),
        ReturnRejection::RmaExists("WEB-REFUND-R1".into()),
        "a refund is recorded once"
    );
    // The parcel arrives and is inspected like any return; nothing is refunded a second time.
    w.run(ret(ReturnCommand::Receive { rma_id: rma.rma_id.clone(), location: code("WH") }));
    w.run(ret(ReturnCommand::Inspect { rma_id: rma.rma_id.clone(), grades: vec![("1".into(), Grade::A)] }));
    assert_eq!(w.state.returns().get("WEB-REFUND-R1").unwrap().status, RmaStatus::Closed);
    assert_eq!(
        returns_rejection(w.reject(ret(ReturnCommand::Refund { rma_id: rma.rma_id.clone() }))),
        ReturnRejection::AlreadyRefunded(rma.rma_id.clone())
    );
    // Ordo's own RMA cannot take those units again.
    assert_eq!(
        returns_rejection(w.reject(authorize("RMA-2", &key, &[("1", 2)]))),
        ReturnRejection::TooManyUnits { line: "1".into(), asked: 2, returnable: 1 }
    );
    // The MUG kept by the customer, refunded with 5.00 of shipping: 12.00 + 0.75 + 5.00.
    w.run(channel_refund("R2", &key, &[("2", 1, false)], 1_775));
    let kept = w.state.returns().get("WEB-REFUND-R2").unwrap().clone();
    assert_eq!(kept.status, RmaStatus::Closed, "nothing comes back");
    assert_eq!(kept.refund.unwrap().amount_minor, 1_275);
    assert_eq!(balance(&w, GlAccount::SalesReturns), 4_000 + 1_200 + 500, "shipping given back, as a return");
    assert_eq!(balance(&w, receivable()), receivable_after_sale - 4_250 - 1_775);
    // The last TEE, of which the channel gave back only 10.00 of 21.25: it kept the rest.
    w.run(channel_refund("R3", &key, &[("1", 5, true)], 1_000));
    let last = w.state.returns().get("WEB-REFUND-R3").unwrap().clone();
    assert_eq!(last.lines[0].units, 1, "only what shipped and was not returned");
    let refund = last.refund.unwrap();
    assert_eq!((refund.amount_minor, refund.restocking_fee_minor), (1_000, 1_125));
    assert_eq!(balance(&w, receivable()), receivable_after_sale - 4_250 - 1_775 - 1_000);
}

#[test]
fn a_channel_refund_splits_what_comes_back_from_what_is_kept_and_books_no_unshipped_money() {
    let mut w = world();
    w.mv(receipt("TEE", "WH", 10));
    w.mv(receipt("MUG", "WH", 5));
    w.run(policy(&[]));
    // 3 TEE (20.00, 3.75 tax) and 1 MUG (12.00, 0.75 tax): 2 TEE and the MUG shipped, 1 TEE not.
    let key = packed(&mut w, order("4001", "USD", 2000));
    ship(&mut w, &key, "S1", &[("1", 2), ("2", 1)]);
    let receivable = || GlAccount::ChannelReceivable(code("WEB"));
    let before = balance(&w, receivable());
    // Out of range, refused.
    assert_eq!(
        returns_rejection(w.reject(channel_refund("R9", &key, &[("1", 1, true)], 2_000_000_000_000))),
        ReturnRejection::RefundOutOfRange(2_000_000_000_000)
    );
    // Every TEE (2 shipped, 1 not) and the MUG, the TEEs to come back, the MUG kept: 63.75 + 12.75.
    // The unshipped TEE's 21.25 is not Ordo's to book; the rest splits into two RMAs.
    w.run(channel_refund("R1", &key, &[("1", 3, true), ("2", 1, false)], 7_650));
    let back = w.state.returns().get("WEB-REFUND-R1").unwrap().clone();
    let kept = w.state.returns().get("WEB-REFUND-R1-KEPT").unwrap().clone();
    assert_eq!((back.status, back.lines[0].units), (RmaStatus::Authorized, 2));
    assert_eq!((kept.status, kept.lines[0].sku.as_str()), (RmaStatus::Closed, "MUG"));
    assert_eq!(back.refund.unwrap().amount_minor, 4_250);
    assert_eq!(kept.refund.unwrap().amount_minor, 1_275);
    assert_eq!(balance(&w, receivable()), before - 4_250 - 1_275);
    // Now only the unshipped TEE is left on that line: its refund is nothing of Ordo's to book.
    assert_eq!(
        returns_rejection(w.reject(channel_refund("R0", &key, &[("1", 1, false)], 2_125))),
        ReturnRejection::OnlyUnshipped(key.clone())
    );
    // Receiving the RMA brings back the TEEs only: the kept MUG is not stock.
    w.run(ret(ReturnCommand::Receive { rma_id: "WEB-REFUND-R1".into(), location: code("WH") }));
    assert_eq!(w.b("TEE", "WH").get(ordo_domain::inventory::StockState::QualityControl), 2);
    assert_eq!(w.b("MUG", "WH").get(ordo_domain::inventory::StockState::QualityControl), 0);
}

#[test]
fn a_channel_refund_of_units_on_an_open_rma_is_refused() {
    let (mut w, key) = shipped_world(&[]);
    w.run(authorize("RMA-1", &key, &[("1", 3)]));
    let before = w.state.clone();
    assert_eq!(
        returns_rejection(w.reject(channel_refund("R1", &key, &[("1", 1, true)], 2_125))),
        ReturnRejection::OnOpenRma { rma: "RMA-1".into(), line: "1".into() }
    );
    assert_eq!(w.state, before);
    // Money alone (a price adjustment) is its own record, booked as a return.
    w.run(channel_refund("R2", &key, &[], 300));
    let record = w.state.returns().get("WEB-REFUND-R2").unwrap().clone();
    assert!(record.lines.is_empty() && record.status == RmaStatus::Closed);
    assert_eq!(balance(&w, GlAccount::SalesReturns), 300);
}

#[test]
fn the_channel_telling_of_ordos_own_refund_books_nothing_again() {
    let (mut w, key) = shipped_world(&[]);
    w.run(authorize("RMA-1", &key, &[("2", 1)]));
    w.run(ret(ReturnCommand::Receive { rma_id: "RMA-1".into(), location: code("WH") }));
    w.run(ret(ReturnCommand::Inspect { rma_id: "RMA-1".into(), grades: vec![("2".into(), Grade::A)] }));
    w.run(ret(ReturnCommand::Refund { rma_id: "RMA-1".into() }));
    let books = w.state.gl().balances().clone();
    // Shopify's refunds/create for the refund Ordo's relay created, under Ordo's note.
    let echo = |note: &str| {
        ret(ReturnCommand::RecordChannelRefund(ordo_domain::returns::ChannelRefund {
            refund_id: "R-ECHO".into(),
            order: key.clone(),
            lines: vec![("2".into(), 1, false)],
            amount_minor: 775,
            note: note.into(),
        }))
    };
    assert_eq!(
        returns_rejection(w.reject(echo(&ordo_domain::returns::refund_note("RMA-1")))),
        ReturnRejection::OwnRefund("RMA-1".into())
    );
    assert_eq!(w.state.gl().balances(), &books);
    // Any other note is the merchant's own refund: recorded (here as money beyond the goods,
    // the MUG being returned already).
    w.run(echo("goodwill"));
    assert_ne!(w.state.gl().balances(), &books);
}
