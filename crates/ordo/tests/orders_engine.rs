//! Orders through the engine: captures arriving in one batch compete for short stock in rank
//! order, and stock that arrives later is reserved for backorders automatically, in the same
//! batch as the receipt, best-ranked first.

use ordo_domain::Command;
use ordo_domain::catalog::{
    AllocationPolicy, Capabilities, Channel, ChannelKind, Item, LegalEntity, Location, LocationKind,
};
use ordo_domain::inventory::MoveCommand;
use ordo_domain::orders::book::{OrderCommand, OrderSetting};
use ordo_domain::orders::lifecycle::{HoldCode, OrderStatus};
use ordo_domain::orders::model::{Order, OrderKey};
use ordo_engine::{Engine, FixedClock, Request};
use ordo_store_sqlite::SqliteStore;
use ordo_types::{Code, CurrencyCode, Sku, Timestamp};

fn code(s: &str) -> Code {
    Code::new(s).unwrap()
}

fn setup() -> Vec<Command> {
    let mut out = vec![
        Command::DefineLegalEntity(LegalEntity {
            code: code("E"),
            name: "E".into(),
            functional_currency: CurrencyCode::new("USD").unwrap(),
        }),
        Command::DefineLocation(Location {
            code: code("WH"),
            name: "WH".into(),
            kind: LocationKind::Warehouse,
            legal_entity: code("E"),
            address: Default::default(),
            geo: None,
            time_zone: "UTC".into(),
            capabilities: Capabilities { ship: true, pickup: false, returns: true },
        }),
        Command::DefineItem(Item {
            sku: Sku::new("HOT").unwrap(),
            title: "Hot item".into(),
            style: None,
            options: Default::default(),
            gtin: None,
            uom_conversions: Default::default(),
            components: vec![],
            sku_class: None,
        }),
    ];
    for (c, priority) in [("MARKET", 1), ("WEB", 2)] {
        out.push(Command::DefineChannel(Channel {
            code: code(c),
            name: c.into(),
            kind: ChannelKind::Other,
            legal_entity: code("E"),
            locations: vec![code("WH")],
            priority,
            allocation: AllocationPolicy::default(),
        }));
        out.push(Command::Order(OrderCommand::Configure(OrderSetting::ShippingMethods {
            channel: code(c),
            methods: ["ground".to_owned()].into(),
        })));
    }
    // Channels may sell into backorder here.
    let mut rules = ordo_domain::orders::validation::ValidationRules::default();
    rules.enabled.remove(&HoldCode::StockDiscrepancy);
    out.push(Command::Order(OrderCommand::Configure(OrderSetting::Rules(rules))));
    out
}

fn order(channel: &str, id: &str, units: i64, placed_at: i64) -> Command {
    let json = format!(
        r#"{{"channel": "{channel}", "channel_order_id": "{id}", "channel_updated_at": {placed_at}, "placed_at": {placed_at},
            "customer": {{"id": "C", "name": "C", "account_status": "active"}},
            "ship_to": {{"name": "C", "line1": "1 St", "city": "Berlin", "region": "", "postal_code": "10115", "country": "DE"}},
            "lines": [{{"line_id": "1", "item": {{"sku": "HOT"}}, "quantity": {units}, "unit_price_minor": 1000}}],
            "shipping": {{"method": "ground", "service_level": "standard"}},
            "payment_status": "captured", "fulfillment": {{"ship": {{"ship_from_store_allowed": false}}}}, "currency": "USD"}}"#
    );
    let order: Order = serde_json::from_str(&json).unwrap();
    Command::Order(OrderCommand::Capture(Box::new(order)))
}

fn key(channel: &str, id: &str) -> OrderKey {
    OrderKey { channel: code(channel), channel_order_id: id.into() }
}

fn receipt(units: i64) -> Command {
    Command::Move(MoveCommand::Receipt {
        sku: Sku::new("HOT").unwrap(),
        location: code("WH"),
        units,
        expectation: None,
    })
}

#[test]
fn captures_in_one_batch_are_served_by_rank_and_arrivals_go_to_backorders_in_rank_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orders.db");
    let mut engine =
        Engine::open(SqliteStore::open(&path).unwrap(), Box::new(FixedClock::at(Timestamp::from_millis(1_000_000))))
            .unwrap();
    engine.execute(vec![Request::Group(setup())]).results[0].clone().unwrap();
    engine.execute_one(receipt(3)).unwrap();

    // One batch: the web order (priority 2) arrives first, the marketplace order (priority 1)
    // second; 3 units for 2 + 2. The marketplace order is served first and gets both of its
    // units; the web order gets the 1 left and backorders 1.
    let outcome =
        engine.execute(vec![Request::One(order("WEB", "W1", 2, 10)), Request::One(order("MARKET", "M1", 2, 20))]);
    assert!(outcome.results.iter().all(|r| r.is_ok()), "{:?}", outcome.results);
    let book = engine.state().orders();
    let m1 = book.get(&key("MARKET", "M1")).unwrap();
    let w1 = book.get(&key("WEB", "W1")).unwrap();
    assert_eq!((m1.status, m1.lines[0].reserved()), (OrderStatus::Allocated, 2));
    assert_eq!((w1.status, w1.lines[0].reserved(), w1.lines[0].backordered), (OrderStatus::PartiallyAllocated, 1, 1));
    // Results come back in submission order, each with its own journal sequence.
    let seqs: Vec<u64> = outcome.results.iter().map(|r| r.as_ref().unwrap()[0]).collect();
    assert!(seqs[0] > seqs[1], "the web order was decided second: {seqs:?}");

    // A second web order backorders entirely; then 2 units arrive. W1 (older) is filled first,
    // then W2 gets the remaining unit — all in the receipt's own batch.
    engine.execute_one(order("WEB", "W2", 2, 30)).unwrap();
    assert_eq!(engine.state().orders().get(&key("WEB", "W2")).unwrap().status, OrderStatus::Backordered);
    let receipt_batch = engine.execute(vec![Request::One(receipt(2))]);
    assert!(receipt_batch.results[0].is_ok());
    let book = engine.state().orders();
    let w1 = book.get(&key("WEB", "W1")).unwrap();
    let w2 = book.get(&key("WEB", "W2")).unwrap();
    assert_eq!((w1.status, w1.lines[0].reserved()), (OrderStatus::Allocated, 2));
    assert_eq!((w2.status, w2.lines[0].reserved(), w2.lines[0].backordered), (OrderStatus::PartiallyAllocated, 1, 1));
    assert_eq!(engine.state().buckets(&Sku::new("HOT").unwrap(), &code("WH")).available(), 0);

    // Cancelling M1 frees its 2 units: they go to W2's backorder in the cancel's own batch.
    engine
        .execute_one(Command::Order(OrderCommand::Cancel {
            key: key("MARKET", "M1"),
            actor: ordo_domain::orders::lifecycle::Actor::User("cs".into()),
            reason: "customer asked".into(),
        }))
        .unwrap();
    let w2 = engine.state().orders().get(&key("WEB", "W2")).unwrap().clone();
    assert_eq!((w2.status, w2.lines[0].reserved()), (OrderStatus::Allocated, 2));
    assert_eq!(engine.state().buckets(&Sku::new("HOT").unwrap(), &code("WH")).available(), 1);

    // Order reservations are the orders' own: a hand-made movement cannot make or void them.
    let refused = engine.execute_one(Command::Move(MoveCommand::Release { reservation: code("RSV-1"), units: None }));
    assert!(refused.unwrap_err().to_string().contains("belongs to an order"));
    // Once the warehouse picked, the channel can no longer change the order, nor can it be cancelled.
    let r = w2.lines[0].reservations[0].reservation.clone();
    let by_hand = engine.execute_one(Command::Move(MoveCommand::Pick { reservation: r, units: 1 }));
    assert!(by_hand.unwrap_err().to_string().contains("belongs to an order"));
    let floor = ordo_domain::orders::lifecycle::Actor::User("floor".into());
    for step in [
        OrderCommand::Dispatch { key: key("WEB", "W2"), actor: floor.clone(), ship_partial: false },
        OrderCommand::StartPicking { key: key("WEB", "W2"), actor: floor.clone() },
        OrderCommand::Pack { key: key("WEB", "W2"), actor: floor },
    ] {
        engine.execute_one(Command::Order(step)).unwrap();
    }
    let mut update: Order = match order("WEB", "W2", 1, 31) {
        Command::Order(OrderCommand::Capture(o)) => *o,
        _ => unreachable!(),
    };
    update.placed_at = Timestamp::from_millis(30);
    assert!(engine.execute_one(Command::Order(OrderCommand::Capture(Box::new(update)))).is_err());
    let cancel = engine.execute_one(Command::Order(OrderCommand::Cancel {
        key: key("WEB", "W2"),
        actor: ordo_domain::orders::lifecycle::Actor::System,
        reason: "late".into(),
    }));
    assert!(cancel.unwrap_err().to_string().contains("picked or shipped"));

    // Everything replays to the same state.
    let replayed = engine.replay_from_scratch().unwrap();
    assert_eq!(&replayed, engine.state());
    assert!(engine.state().check_invariants(engine.now()).is_empty());
}
