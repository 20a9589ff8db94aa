//! Orders through the state: capture → validate → source → reserve, holds and the exception
//! queue, payment updates that clear holds, idempotent and stale re-deliveries, cancellation
//! that voids reservations — with the ledger's invariants checked after every step.

mod support;

use ordo_domain::orders::book::{OrderCommand, OrderRejection, OrderSetting, ShipmentRequest, ShippedLine};
use ordo_domain::orders::lifecycle::{Actor, HoldCode, OrderStatus};
use ordo_domain::orders::model::{Order, PaymentStatus};
use ordo_domain::{Command, Rejection};
use support::*;

const ORDER: &str = r##"{
    "channel": "WEB",
    "channel_order_id": "#1001",
    "channel_updated_at": 1795000000000,
    "placed_at": 1795000000000,
    "customer": {"id": "C-1", "name": "Ada Lovelace", "account_status": "active"},
    "ship_to": {"name": "Ada Lovelace", "line1": "1 Main St", "city": "Boston", "region": "MA",
                "postal_code": "02101", "country": "US"},
    "lines": [
        {"line_id": "1", "item": {"sku": "TEE"}, "quantity": 3, "unit_price_minor": 2000,
         "tax_lines": [{"jurisdiction": "US-MA", "rate_bp": 625, "amount_minor": 375}]},
        {"line_id": "2", "item": {"listing": "B0MUG"}, "quantity": 1, "unit_price_minor": 1200,
         "tax_lines": [{"jurisdiction": "US-MA", "rate_bp": 625, "amount_minor": 75}]}
    ],
    "shipping": {"method": "ground", "service_level": "standard"},
    "payment_status": "captured",
    "fulfillment": {"ship": {"ship_from_store_allowed": false}},
    "currency": "USD"
}"##;

fn order() -> Order {
    serde_json::from_str(ORDER).unwrap()
}

fn key() -> ordo_domain::orders::model::OrderKey {
    order().key()
}

fn cmd(c: OrderCommand) -> Command {
    Command::Order(c)
}

fn setting(s: OrderSetting) -> Command {
    Command::Order(OrderCommand::Configure(s))
}

/// Two warehouses selling on WEB; TEE and MUG; the listing, prices, shipping method and tax.
fn world(tee_east: i64, tee_west: i64) -> World {
    let mut w = World::new();
    w.run(location("EAST", true));
    w.run(location("WEST", true));
    w.run(item("TEE"));
    w.run(item("MUG"));
    w.run(plain_channel("WEB", &["EAST", "WEST"], 1));
    w.run(setting(OrderSetting::Listing { channel: code("WEB"), listing: "B0MUG".into(), sku: sku("MUG") }));
    for (s, p) in [("TEE", 2000), ("MUG", 1200)] {
        w.run(setting(OrderSetting::Price {
            channel: code("WEB"),
            sku: sku(s),
            currency: ordo_types::CurrencyCode::new("USD").unwrap(),
            unit_price_minor: p,
        }));
    }
    w.run(setting(OrderSetting::ShippingMethods { channel: code("WEB"), methods: ["ground".to_owned()].into() }));
    w.run(setting(OrderSetting::Taxable { country: "US".into(), region: String::new(), taxable: true }));
    if tee_east > 0 {
        w.mv(receipt("TEE", "EAST", tee_east));
    }
    if tee_west > 0 {
        w.mv(receipt("TEE", "WEST", tee_west));
    }
    w.mv(receipt("MUG", "EAST", 5));
    w
}

fn record(w: &World) -> &ordo_domain::orders::book::OrderRecord {
    w.state.orders().get(&key()).expect("order captured")
}

#[test]
fn a_clean_order_is_validated_sourced_to_one_node_and_reserved() {
    let mut w = world(10, 10);
    w.run(cmd(OrderCommand::Capture(Box::new(order()))));
    let r = record(&w);
    assert_eq!(r.status, OrderStatus::Allocated, "{:#?}", r.history);
    assert!(r.holds.is_empty(), "{:?}", r.findings);
    // Only EAST holds both SKUs, so a single shipment from EAST beats a split.
    let nodes: Vec<&str> = r.lines.iter().flat_map(|l| &l.reservations).map(|x| x.location.as_str()).collect();
    assert_eq!(nodes, ["EAST", "EAST"]);
    // 3 TEE and 1 MUG moved available → committed at EAST.
    assert_eq!(w.b("TEE", "EAST"), buckets([7, 3, 0, 0, 0, 0], 0, 0));
    assert_eq!(w.b("MUG", "EAST"), buckets([4, 1, 0, 0, 0, 0], 0, 0));
    let path: Vec<OrderStatus> = r.history.iter().map(|c| c.to).collect();
    assert_eq!(path, [OrderStatus::Validated, OrderStatus::Allocated]);
    // The channel's figure follows: 20 TEE − 3 reserved = 17.
    assert_eq!(w.ats("TEE", "WEB"), 17);
}

#[test]
fn recapture_is_idempotent_and_old_redeliveries_are_refused() {
    let mut w = world(10, 0);
    w.run(cmd(OrderCommand::Capture(Box::new(order()))));
    let before = w.state.clone();
    assert_eq!(
        w.reject(cmd(OrderCommand::Capture(Box::new(order())))),
        Rejection::Order(Box::new(OrderRejection::AlreadyCaptured(key())))
    );
    let mut stale = order();
    stale.lines[0].quantity = 4;
    assert!(matches!(
        w.reject(cmd(OrderCommand::Capture(Box::new(stale)))),
        Rejection::Order(r) if matches!(*r, OrderRejection::StaleUpdate { .. })
    ));
    assert_eq!(w.state, before);
    // A newer delivery updates the order: its reservation is voided and made again for 4.
    let mut newer = order();
    newer.lines[0].quantity = 4;
    newer.channel_updated_at = ordo_types::Timestamp::from_millis(newer.channel_updated_at.millis() + 1);
    w.run(cmd(OrderCommand::Capture(Box::new(newer))));
    assert_eq!(w.b("TEE", "EAST"), buckets([6, 4, 0, 0, 0, 0], 0, 0));
    assert_eq!(record(&w).lines[0].reserved(), 4);
}

#[test]
fn unpaid_orders_hold_and_clear_when_payment_is_captured() {
    let mut w = world(10, 0);
    let mut unpaid = order();
    unpaid.payment_status = PaymentStatus::Pending;
    w.run(cmd(OrderCommand::Capture(Box::new(unpaid))));
    let r = record(&w);
    assert_eq!(r.status, OrderStatus::OnHold);
    assert_eq!(r.holds.iter().copied().collect::<Vec<_>>(), [HoldCode::PaymentNotCaptured]);
    assert_eq!(w.b("TEE", "EAST").get(ordo_domain::inventory::StockState::Committed), 0, "held orders reserve nothing");
    let queue = ordo_domain::orders::book::exceptions(&w.state, w.now);
    assert_eq!(queue.iter().map(|r| r.key()).collect::<Vec<_>>(), [key()]);

    w.run(cmd(OrderCommand::UpdatePayment {
        key: key(),
        status: PaymentStatus::Captured,
        actor: Actor::Connector("WEB".into()),
    }));
    let r = record(&w);
    assert_eq!(r.status, OrderStatus::Allocated);
    assert!(r.holds.is_empty());
    assert!(ordo_domain::orders::book::exceptions(&w.state, w.now).is_empty());
    assert_eq!(w.b("TEE", "EAST"), buckets([7, 3, 0, 0, 0, 0], 0, 0));
}

/// Selling more than the channel was offered is held for a person (STOCK_DISCREPANCY); with
/// that rule off (a retailer that lets the channel oversell into backorders) the order is
/// partially reserved and the rest backordered.
#[test]
fn short_stock_splits_or_backorders() {
    let mut w = world(2, 0);
    w.run(cmd(OrderCommand::Capture(Box::new(order()))));
    assert_eq!(record(&w).holds.iter().copied().collect::<Vec<_>>(), [HoldCode::StockDiscrepancy]);

    // 2 TEE at EAST, 0 at WEST: 2 of 3 reserved, 1 backordered.
    let mut w = world(2, 0);
    let mut rules = ordo_domain::orders::validation::ValidationRules::default();
    rules.enabled.remove(&HoldCode::StockDiscrepancy);
    w.run(setting(OrderSetting::Rules(rules)));
    w.run(cmd(OrderCommand::Capture(Box::new(order()))));
    let r = record(&w);
    assert_eq!(r.status, OrderStatus::PartiallyAllocated);
    assert_eq!((r.lines[0].reserved(), r.lines[0].backordered), (2, 1));
    assert_eq!((r.lines[1].reserved(), r.lines[1].backordered), (1, 0));

    // 1 TEE at EAST, 2 at WEST: the order is filled by a split across both.
    let mut w = world(1, 2);
    w.run(cmd(OrderCommand::Capture(Box::new(order()))));
    let r = record(&w);
    assert_eq!(r.status, OrderStatus::Allocated);
    let mut at: Vec<(String, i64)> =
        r.lines[0].reservations.iter().map(|x| (x.location.to_string(), x.units)).collect();
    at.sort();
    assert_eq!(at, [("EAST".to_owned(), 1), ("WEST".to_owned(), 2)]);
}

#[test]
fn cancel_voids_reservations_and_is_final() {
    let mut w = world(10, 0);
    w.run(cmd(OrderCommand::Capture(Box::new(order()))));
    assert_eq!(
        w.reject(cmd(OrderCommand::Cancel { key: key(), actor: Actor::User("sam".into()), reason: " ".into() })),
        Rejection::Order(Box::new(OrderRejection::MissingReason))
    );
    w.run(cmd(OrderCommand::Cancel { key: key(), actor: Actor::User("sam".into()), reason: "customer asked".into() }));
    assert_eq!(record(&w).status, OrderStatus::Cancelled);
    assert_eq!(w.b("TEE", "EAST"), buckets([10, 0, 0, 0, 0, 0], 0, 0));
    assert_eq!(w.b("MUG", "EAST"), buckets([5, 0, 0, 0, 0, 0], 0, 0));
    assert!(matches!(
        w.reject(cmd(OrderCommand::Cancel { key: key(), actor: Actor::System, reason: "again".into() })),
        Rejection::Order(r) if matches!(*r, OrderRejection::Illegal(_))
    ));
}

#[test]
fn manual_hold_and_release_with_reasons() {
    let mut w = world(10, 0);
    let mut unpaid = order();
    unpaid.payment_status = PaymentStatus::Pending;
    w.run(cmd(OrderCommand::Capture(Box::new(unpaid))));
    // An operator overrides the payment hold: sourced and reserved.
    w.run(cmd(OrderCommand::Release { key: key(), actor: Actor::User("ops".into()), reason: "paid by wire".into() }));
    assert_eq!(record(&w).status, OrderStatus::Allocated);
    w.run(cmd(OrderCommand::Hold { key: key(), actor: Actor::User("ops".into()), reason: "address check".into() }));
    let r = record(&w);
    assert_eq!(r.status, OrderStatus::OnHold);
    assert!(r.holds.contains(&HoldCode::Manual));
    let last = r.history.last().unwrap();
    assert_eq!((last.actor.clone(), last.reason.as_str()), (Actor::User("ops".into()), "address check"));
    // A payment event does not clear a person's hold.
    w.run(cmd(OrderCommand::UpdatePayment { key: key(), status: PaymentStatus::Captured, actor: Actor::System }));
    assert_eq!(record(&w).status, OrderStatus::OnHold);
    assert_eq!(
        w.reject(cmd(OrderCommand::Release { key: key(), actor: Actor::User("ops".into()), reason: String::new() })),
        Rejection::Order(Box::new(OrderRejection::MissingReason))
    );
}

#[test]
fn unknown_items_hold_without_reserving_and_replay_reproduces_orders() {
    let mut w = world(10, 0);
    let mut o = order();
    o.lines[1].item = ordo_domain::orders::model::LineItem::Listing("NOPE".into());
    w.run(cmd(OrderCommand::Capture(Box::new(o))));
    let r = record(&w);
    assert_eq!(r.status, OrderStatus::OnHold);
    assert!(r.holds.contains(&HoldCode::SkuUnknown));
    // Nothing can be reserved for a line that names no item: the hold cannot be overridden.
    assert!(matches!(
        w.reject(cmd(OrderCommand::Release { key: key(), actor: Actor::User("ops".into()), reason: "ship it".into() })),
        Rejection::Order(r) if matches!(*r, OrderRejection::CannotOverride { hold: HoldCode::SkuUnknown, .. })
    ));
    // Replaying the events rebuilds the same orders and balances.
    let (replayed, live) = w.replayed_and_live();
    assert_eq!(replayed, live);
}

/// Node capacity counts each order once per node it ships from, on the day it was decided; a
/// cancelled order gives its slot back.
#[test]
fn daily_capacity_is_used_once_per_order_and_node_and_freed_by_cancel() {
    use ordo_domain::orders::book::NodeSettings;
    let mut w = world(10, 10);
    for (node, capacity) in [("EAST", 1), ("WEST", 0)] {
        let settings = NodeSettings { daily_capacity: capacity, ..NodeSettings::default() };
        w.run(setting(OrderSetting::Node { location: code(node), settings }));
    }
    let with_id = |id: &str| {
        let mut o = order();
        o.channel_order_id = id.into();
        cmd(OrderCommand::Capture(Box::new(o)))
    };
    let key_of = |id: &str| ordo_domain::orders::model::OrderKey { channel: code("WEB"), channel_order_id: id.into() };
    w.run(with_id("A"));
    assert_eq!(w.state.orders().get(&key_of("A")).unwrap().status, OrderStatus::Allocated);
    // EAST's one shipment today is taken and WEST ships none: B has no node and waits.
    w.run(with_id("B"));
    assert_eq!(w.state.orders().get(&key_of("B")).unwrap().status, OrderStatus::OnHold);
    w.run(cmd(OrderCommand::Cancel { key: key_of("A"), actor: Actor::User("cs".into()), reason: "asked".into() }));
    w.run(with_id("C"));
    assert_eq!(w.state.orders().get(&key_of("C")).unwrap().status, OrderStatus::Allocated);
}

fn ops() -> Actor {
    Actor::User("ops".into())
}

fn shipment(id: &str, location: &str, lines: &[(&str, i64)]) -> ShipmentRequest {
    ShipmentRequest {
        shipment_id: id.into(),
        location: code(location),
        carrier: "UPS".into(),
        service: "ground".into(),
        tracking: format!("1Z{id}"),
        lines: lines.iter().map(|(l, u)| ShippedLine { line_id: (*l).into(), units: *u }).collect(),
    }
}

fn order_rejection(r: Rejection) -> OrderRejection {
    match r {
        Rejection::Order(r) => *r,
        other => panic!("expected an order rejection, got {other:?}"),
    }
}

/// The whole way from capture to closed, with the ledger following every step:
/// committed → picked on pack, picked → customer per shipment, partial shipments allowed.
#[test]
fn an_order_goes_from_allocated_to_closed_through_the_floor_and_two_shipments() {
    let mut w = world(10, 0);
    w.run(cmd(OrderCommand::Capture(Box::new(order()))));
    // Shipping before the floor has it, or packing before picking, is not in the table.
    assert!(matches!(
        order_rejection(w.reject(cmd(OrderCommand::Ship {
            key: key(),
            actor: ops(),
            shipment: shipment("S1", "EAST", &[])
        }))),
        OrderRejection::Illegal(_)
    ));
    w.run(cmd(OrderCommand::Dispatch { key: key(), actor: ops(), ship_partial: false }));
    assert!(matches!(
        order_rejection(w.reject(cmd(OrderCommand::Pack { key: key(), actor: ops() }))),
        OrderRejection::Illegal(_)
    ));
    w.run(cmd(OrderCommand::StartPicking { key: key(), actor: ops() }));
    w.run(cmd(OrderCommand::Pack { key: key(), actor: ops() }));
    assert_eq!(w.b("TEE", "EAST"), buckets([7, 0, 3, 0, 0, 0], 0, 0));
    assert_eq!(w.b("MUG", "EAST"), buckets([4, 0, 1, 0, 0, 0], 0, 0));
    // Picked units cannot be cancelled here (they go back to stock first), nor moved by hand.
    assert!(matches!(
        order_rejection(w.reject(cmd(OrderCommand::Cancel { key: key(), actor: ops(), reason: "late".into() }))),
        OrderRejection::PickedUnits { .. }
    ));
    let rsv = record(&w).lines[0].reservations[0].reservation.to_string();
    assert!(matches!(w.reject_move(ship(&rsv, 1)), ordo_domain::inventory::MoveRejection::OrderReservation(_)));

    // First parcel: 2 of the 3 TEE. More than was picked, or an unknown line, is refused.
    assert!(matches!(
        order_rejection(w.reject(cmd(OrderCommand::Ship {
            key: key(),
            actor: ops(),
            shipment: shipment("S1", "EAST", &[("1", 4)])
        }))),
        OrderRejection::ShipExceedsPicked { asked: 4, left: 3, .. }
    ));
    assert!(matches!(
        order_rejection(w.reject(cmd(OrderCommand::Ship {
            key: key(),
            actor: ops(),
            shipment: shipment("S1", "EAST", &[("9", 1)])
        }))),
        OrderRejection::UnknownLine { .. }
    ));
    assert!(matches!(
        order_rejection(w.reject(cmd(OrderCommand::Ship {
            key: key(),
            actor: ops(),
            shipment: shipment("S1", "WEST", &[])
        }))),
        OrderRejection::NothingToShip { .. }
    ));
    w.run(cmd(OrderCommand::Ship { key: key(), actor: ops(), shipment: shipment("S1", "EAST", &[("1", 2)]) }));
    assert_eq!(record(&w).status, OrderStatus::PartiallyShipped);
    assert_eq!(w.b("TEE", "EAST"), buckets([7, 0, 1, 0, 0, 0], 0, 0));
    assert_eq!(w.outside("TEE", ordo_domain::inventory::OutsideAccount::Customer), 2);
    assert!(matches!(
        order_rejection(w.reject(cmd(OrderCommand::Ship {
            key: key(),
            actor: ops(),
            shipment: shipment("S1", "EAST", &[])
        }))),
        OrderRejection::DuplicateShipment { .. }
    ));
    // The second parcel takes everything still picked at EAST.
    w.run(cmd(OrderCommand::Ship { key: key(), actor: ops(), shipment: shipment("S2", "EAST", &[]) }));
    let r = record(&w);
    assert_eq!(r.status, OrderStatus::Shipped);
    assert_eq!(r.shipments.len(), 2);
    assert_eq!(
        r.shipments[1].lines.iter().map(|l| (l.line_id.as_str(), l.units)).collect::<Vec<_>>(),
        [("1", 1), ("2", 1)]
    );
    assert_eq!((r.lines[0].picked, r.lines[0].shipped), (3, 3));
    assert_eq!(w.b("TEE", "EAST"), buckets([7, 0, 0, 0, 0, 0], 0, 0));
    assert_eq!(w.b("MUG", "EAST"), buckets([4, 0, 0, 0, 0, 0], 0, 0));
    w.assert_conserved("TEE");
    w.assert_conserved("MUG");
    let reservation = w.state.reservation_record(&r.lines[0].reservations[0].reservation).unwrap();
    assert_eq!((reservation.committed, reservation.picked, reservation.shipped), (0, 0, 3));

    // Delivered once every shipment is; then closed.
    w.run(cmd(OrderCommand::ConfirmDelivery {
        key: key(),
        actor: Actor::Connector("UPS".into()),
        shipment_id: "S1".into(),
    }));
    assert_eq!(record(&w).status, OrderStatus::Shipped);
    assert!(matches!(
        order_rejection(w.reject(cmd(OrderCommand::ConfirmDelivery {
            key: key(),
            actor: ops(),
            shipment_id: "S1".into()
        }))),
        OrderRejection::AlreadyDelivered { .. }
    ));
    w.run(cmd(OrderCommand::ConfirmDelivery { key: key(), actor: ops(), shipment_id: "S2".into() }));
    assert_eq!(record(&w).status, OrderStatus::Delivered);
    w.run(cmd(OrderCommand::Close { key: key(), actor: ops(), reason: "return window over".into() }));
    let r = record(&w);
    assert_eq!(r.status, OrderStatus::Closed);
    let path: Vec<OrderStatus> = r.history.iter().filter(|c| c.from != c.to).map(|c| c.to).collect();
    use OrderStatus as S;
    assert_eq!(
        path,
        [
            S::Validated,
            S::Allocated,
            S::Released,
            S::Picking,
            S::Packed,
            S::PartiallyShipped,
            S::Shipped,
            S::Delivered,
            S::Closed
        ]
    );
    for change in &r.history {
        assert!(change.from == change.to || change.from.successors().contains(&change.to), "{change:?}");
    }
}

/// A partially allocated order ships complete by default; `ship_partial` ships what is
/// reserved and cancels the rest, which stops waiting for stock.
#[test]
fn a_partially_allocated_order_is_dispatched_only_with_ship_partial() {
    let mut w = world(2, 0);
    let mut rules = ordo_domain::orders::validation::ValidationRules::default();
    rules.enabled.remove(&HoldCode::StockDiscrepancy);
    w.run(setting(OrderSetting::Rules(rules)));
    w.run(cmd(OrderCommand::Capture(Box::new(order()))));
    assert_eq!(record(&w).status, OrderStatus::PartiallyAllocated);
    assert!(matches!(
        order_rejection(w.reject(cmd(OrderCommand::Dispatch { key: key(), actor: ops(), ship_partial: false }))),
        OrderRejection::NotFullyAllocated { .. }
    ));
    w.run(cmd(OrderCommand::Dispatch { key: key(), actor: ops(), ship_partial: true }));
    let r = record(&w);
    assert_eq!(r.status, OrderStatus::Released);
    assert_eq!((r.lines[0].open(), r.lines[0].cancelled, r.lines[0].backordered), (2, 1, 0));
    assert!(ordo_domain::orders::book::backorders_waiting_for(&w.state, &[sku("TEE")].into()).is_empty());
    // Stock arriving later is not taken by the released order.
    w.mv(receipt("TEE", "EAST", 5));
    assert_eq!(w.b("TEE", "EAST"), buckets([5, 2, 0, 0, 0, 0], 0, 0));
}

/// Cancelling one line voids only its reservation; cancelling the cause of a hold clears it;
/// cancelling the last open line cancels the order.
#[test]
fn line_cancels_release_their_reservations_and_can_clear_a_hold() {
    let mut w = world(10, 0);
    w.run(cmd(OrderCommand::Capture(Box::new(order()))));
    w.run(cmd(OrderCommand::CancelLine {
        key: key(),
        line_id: "2".into(),
        actor: ops(),
        reason: "out of mugs".into(),
    }));
    let r = record(&w);
    assert_eq!(r.status, OrderStatus::Allocated);
    assert_eq!((r.lines[1].cancelled, r.lines[1].reserved()), (1, 0));
    assert_eq!(w.b("MUG", "EAST"), buckets([5, 0, 0, 0, 0, 0], 0, 0));
    assert_eq!(w.b("TEE", "EAST"), buckets([7, 3, 0, 0, 0, 0], 0, 0));
    assert!(matches!(
        order_rejection(w.reject(cmd(OrderCommand::CancelLine {
            key: key(),
            line_id: "2".into(),
            actor: ops(),
            reason: "again".into()
        }))),
        OrderRejection::LineAlreadyCancelled { .. }
    ));
    assert!(matches!(
        order_rejection(w.reject(cmd(OrderCommand::CancelLine {
            key: key(),
            line_id: "7".into(),
            actor: ops(),
            reason: "x".into()
        }))),
        OrderRejection::UnknownLine { .. }
    ));
    w.run(cmd(OrderCommand::CancelLine {
        key: key(),
        line_id: "1".into(),
        actor: ops(),
        reason: "customer asked".into(),
    }));
    assert_eq!(record(&w).status, OrderStatus::Cancelled);
    assert_eq!(w.b("TEE", "EAST"), buckets([10, 0, 0, 0, 0, 0], 0, 0));

    // An order held for a line naming no item goes ahead once that line is cancelled.
    let mut w = world(10, 0);
    let mut o = order();
    o.lines[1].item = ordo_domain::orders::model::LineItem::Listing("NOPE".into());
    w.run(cmd(OrderCommand::Capture(Box::new(o))));
    assert_eq!(record(&w).status, OrderStatus::OnHold);
    w.run(cmd(OrderCommand::CancelLine { key: key(), line_id: "2".into(), actor: ops(), reason: "not ours".into() }));
    let r = record(&w);
    assert_eq!(r.status, OrderStatus::Allocated, "{:?}", r.findings);
    assert_eq!(w.b("TEE", "EAST"), buckets([7, 3, 0, 0, 0, 0], 0, 0));
}

/// A bundle holds no stock: its order line reserves the components.
#[test]
fn a_bundle_line_reserves_its_components() {
    let mut w = world(10, 0);
    w.run(bundle("GIFT", &[("TEE", 2), ("MUG", 1)]));
    w.run(setting(OrderSetting::Price {
        channel: code("WEB"),
        sku: sku("GIFT"),
        currency: ordo_types::CurrencyCode::new("USD").unwrap(),
        unit_price_minor: 4500,
    }));
    let mut o = order();
    o.lines.truncate(1);
    o.lines[0].item = ordo_domain::orders::model::LineItem::Sku(sku("GIFT"));
    o.lines[0].quantity = 2;
    o.lines[0].unit_price_minor = 4500;
    o.lines[0].tax_lines[0].amount_minor = 563;
    w.run(cmd(OrderCommand::Capture(Box::new(o))));
    let r = record(&w);
    assert_eq!(r.status, OrderStatus::Allocated, "{:?}", r.findings);
    let lines: Vec<(&str, &str, i64)> =
        r.lines.iter().map(|l| (l.line_id.as_str(), l.order_line_id.as_str(), l.reserved())).collect();
    assert_eq!(lines, [("1/TEE", "1", 4), ("1/MUG", "1", 2)]);
    assert_eq!(w.b("TEE", "EAST"), buckets([6, 4, 0, 0, 0, 0], 0, 0));
    assert_eq!(w.b("MUG", "EAST"), buckets([3, 2, 0, 0, 0, 0], 0, 0));
    // Cancelling the order line cancels both components.
    w.run(cmd(OrderCommand::CancelLine {
        key: key(),
        line_id: "1".into(),
        actor: ops(),
        reason: "changed mind".into(),
    }));
    assert_eq!(record(&w).status, OrderStatus::Cancelled);
    assert_eq!(w.b("TEE", "EAST"), buckets([10, 0, 0, 0, 0, 0], 0, 0));
}

/// A backorder's expected date is the purchase expectation that covers it after the
/// backorders already waiting.
#[test]
fn backorders_carry_the_date_of_the_supply_that_covers_them() {
    let mut w = world(0, 0);
    let mut rules = ordo_domain::orders::validation::ValidationRules::default();
    rules.enabled.remove(&HoldCode::StockDiscrepancy);
    w.run(setting(OrderSetting::Rules(rules)));
    w.mv(expect("PO-1", "TEE", "EAST", 4, "2027-01-10"));
    w.mv(expect("PO-2", "TEE", "WEST", 10, "2027-01-20"));
    let with_id = |id: &str| {
        let mut o = order();
        o.channel_order_id = id.into();
        o.lines.truncate(1);
        cmd(OrderCommand::Capture(Box::new(o)))
    };
    let key_of = |id: &str| ordo_domain::orders::model::OrderKey { channel: code("WEB"), channel_order_id: id.into() };
    w.run(with_id("A"));
    w.run(with_id("B"));
    w.run(with_id("C"));
    w.run(with_id("D"));
    w.run(with_id("E"));
    let expected: Vec<Option<ordo_types::Date>> = ["A", "B", "C", "D", "E"]
        .iter()
        .map(|id| w.state.orders().get(&key_of(id)).unwrap().lines[0].expected_on)
        .collect();
    // 3 units each against 4 on Jan 10 and 10 more on Jan 20 (14): A by the 10th, B, C and D
    // (12 units in all) by the 20th, E (15) not covered by anything open.
    let (jan10, jan20) = (Some(date("2027-01-10")), Some(date("2027-01-20")));
    assert_eq!(expected, [jan10, jan20, jan20, jan20, None]);
    assert_eq!(record_of(&w, "A").status, OrderStatus::Backordered);
}

fn record_of<'a>(w: &'a World, id: &str) -> &'a ordo_domain::orders::book::OrderRecord {
    let key = ordo_domain::orders::model::OrderKey { channel: code("WEB"), channel_order_id: id.into() };
    w.state.orders().get(&key).unwrap()
}

/// A failed payment holds a decided order (keeping its reservations); an operator's hold can
/// be added to an order already held for something else and outlives that cause.
#[test]
fn failed_payments_hold_decided_orders_and_manual_holds_stack() {
    let mut w = world(10, 0);
    w.run(cmd(OrderCommand::Capture(Box::new(order()))));
    w.run(cmd(OrderCommand::UpdatePayment {
        key: key(),
        status: PaymentStatus::Failed,
        actor: Actor::Connector("WEB".into()),
    }));
    let r = record(&w);
    assert_eq!(r.status, OrderStatus::OnHold);
    assert_eq!(r.holds.iter().copied().collect::<Vec<_>>(), [HoldCode::PaymentNotCaptured]);
    assert_eq!(w.b("TEE", "EAST"), buckets([7, 3, 0, 0, 0, 0], 0, 0), "reservations are kept while held");
    w.run(cmd(OrderCommand::Hold { key: key(), actor: ops(), reason: "call the customer".into() }));
    assert_eq!(record(&w).holds.iter().copied().collect::<Vec<_>>(), [HoldCode::PaymentNotCaptured, HoldCode::Manual]);
    w.run(cmd(OrderCommand::UpdatePayment {
        key: key(),
        status: PaymentStatus::Captured,
        actor: Actor::Connector("WEB".into()),
    }));
    let r = record(&w);
    assert_eq!((r.status, r.holds.iter().copied().collect::<Vec<_>>()), (OrderStatus::OnHold, vec![HoldCode::Manual]));
    w.run(cmd(OrderCommand::Release { key: key(), actor: ops(), reason: "customer confirmed".into() }));
    assert_eq!(record(&w).status, OrderStatus::Allocated);
    assert_eq!(w.b("TEE", "EAST"), buckets([7, 3, 0, 0, 0, 0], 0, 0));
}
