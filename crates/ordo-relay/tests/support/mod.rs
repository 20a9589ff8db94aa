//! Test support: an engine over a real SQLite file with a small catalog, and a fake Shopify
//! Admin API — a real HTTP server on 127.0.0.1 that keeps inventory levels, applies
//! `inventorySetQuantities` with compare-and-set, creates fulfillments, and fails on demand
//! (429 with Retry-After, 5xx, answers slower than the client's timeout, bad credentials).
#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ordo_domain::Command;
use ordo_domain::catalog::{
    AllocationPolicy, Capabilities, Channel, ChannelKind, Item, LegalEntity, Location, LocationKind,
};
use ordo_domain::inventory::MoveCommand;
use ordo_engine::{Engine, FixedClock, Request};
use ordo_store_sqlite::SqliteStore;
use ordo_types::{Code, CurrencyCode, Sku};
use serde_json::{Value, json};

pub fn code(s: &str) -> Code {
    Code::new(s).unwrap()
}

pub fn sku(i: usize) -> Sku {
    Sku::new(format!("SKU-{i}")).unwrap()
}

pub fn engine(path: &std::path::Path, skus: usize) -> Engine<SqliteStore> {
    let clock = FixedClock::at(ordo_types::Timestamp::from_millis(1_795_000_000_000));
    let mut engine = Engine::open(SqliteStore::open(path).unwrap(), Box::new(clock)).unwrap();
    let mut setup = vec![
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
        setup.push(Command::DefineItem(Item {
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
    setup.push(Command::DefineChannel(Channel {
        code: code("WEB"),
        name: "Web".into(),
        kind: ChannelKind::Shopify,
        legal_entity: code("E"),
        locations: vec![code("WH")],
        priority: 1,
        allocation: AllocationPolicy::default(),
    }));
    let outcome = engine.execute(setup.into_iter().map(Request::One).collect());
    assert!(outcome.error.is_none() && outcome.results.iter().all(Result::is_ok), "{outcome:?}");
    engine
}

pub fn receipt(i: usize, units: i64) -> Request {
    Request::One(Command::Move(MoveCommand::Receipt { sku: sku(i), location: code("WH"), units, expectation: None }))
}

/// A failure the fake server answers with instead of doing the work.
#[derive(Debug, Clone)]
pub enum Fault {
    TooManyRequests {
        retry_after: &'static str,
    },
    ServerError(u16),
    /// Answers after this long (longer than the relay's timeout).
    Slow(Duration),
}

#[derive(Default)]
pub struct FakeShopify {
    pub token: String,
    /// Inventory item gid → available, at the one location.
    pub levels: BTreeMap<String, i64>,
    pub faults: VecDeque<Fault>,
    /// Every request that got through (faults excluded): the GraphQL body.
    pub calls: Vec<Value>,
    pub fulfillments: Vec<Value>,
    pub refunds: Vec<Value>,
    /// Requests answered with a fault.
    pub faulted: u32,
}

pub type Shared = Arc<Mutex<FakeShopify>>;

async fn graphql(State(shop): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let fault = {
        let mut s = shop.lock().unwrap();
        if headers.get("X-Shopify-Access-Token").and_then(|v| v.to_str().ok()) != Some(s.token.as_str()) {
            return (StatusCode::UNAUTHORIZED, r#"{"errors":"[API] Invalid API key or access token"}"#).into_response();
        }
        let f = s.faults.pop_front();
        if f.is_some() {
            s.faulted += 1;
        }
        f
    };
    match fault {
        Some(Fault::TooManyRequests { retry_after }) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("Retry-After", retry_after)],
                "{\"errors\":\"Exceeded 2 calls per second\"}",
            )
                .into_response();
        }
        Some(Fault::ServerError(status)) => {
            return (StatusCode::from_u16(status).unwrap(), "{\"errors\":\"Internal error\"}").into_response();
        }
        Some(Fault::Slow(d)) => tokio::time::sleep(d).await,
        None => {}
    }
    let body: Value = serde_json::from_str(&body).unwrap();
    let query = body["query"].as_str().unwrap_or_default().to_owned();
    let mut s = shop.lock().unwrap();
    s.calls.push(body.clone());
    let answer = if query.contains("inventorySetQuantities") {
        let input = &body["variables"]["input"];
        let ignore = input["ignoreCompareQuantity"].as_bool().unwrap_or(false);
        let quantities = input["quantities"].as_array().cloned().unwrap_or_default();
        let mut errors = Vec::new();
        for (n, q) in quantities.iter().enumerate() {
            let item = q["inventoryItemId"].as_str().unwrap_or_default();
            let persisted = s.levels.get(item).copied().unwrap_or(0);
            if !ignore && q["compareQuantity"].as_i64() != Some(persisted) {
                errors.push(json!({"code": "COMPARE_QUANTITY_STALE", "field": ["input", "quantities", n.to_string(), "compareQuantity"],
                                   "message": "The compareQuantity value does not match persisted value."}));
            }
        }
        if errors.is_empty() {
            for q in &quantities {
                s.levels.insert(q["inventoryItemId"].as_str().unwrap().to_owned(), q["quantity"].as_i64().unwrap());
            }
        }
        json!({"data": {"inventorySetQuantities": {"inventoryAdjustmentGroup": null, "userErrors": errors}}})
    } else if query.contains("fulfillmentOrders") {
        json!({"data": {"order": {"fulfillmentOrders": {"nodes": [
            {"id": "gid://shopify/FulfillmentOrder/1", "status": "CLOSED"},
            {"id": "gid://shopify/FulfillmentOrder/2", "status": "OPEN"}]}}}})
    } else if query.contains("fulfillmentCreate") {
        s.fulfillments.push(body["variables"]["fulfillment"].clone());
        json!({"data": {"fulfillmentCreate": {"fulfillment": {"id": "gid://shopify/Fulfillment/1", "status": "SUCCESS"}, "userErrors": []}}})
    } else if query.contains("transactions(") {
        json!({"data": {"order": {"transactions": [
            {"id": "gid://shopify/OrderTransaction/1", "gateway": "shopify_payments", "kind": "AUTHORIZATION", "status": "SUCCESS",
             "amountSet": {"shopMoney": {"currencyCode": "USD"}}},
            {"id": "gid://shopify/OrderTransaction/2", "gateway": "shopify_payments", "kind": "CAPTURE", "status": "SUCCESS",
             "amountSet": {"shopMoney": {"currencyCode": "USD"}}}]}}})
    } else if query.contains("refundCreate") {
        s.refunds.push(body["variables"]["input"].clone());
        json!({"data": {"refundCreate": {"refund": {"id": "gid://shopify/Refund/1"}, "userErrors": []}}})
    } else {
        json!({"errors": [{"message": format!("unknown operation: {query}")}]})
    };
    axum::Json(answer).into_response()
}

/// Starts the fake on a free port; returns its base URL and its state.
pub async fn start_fake_shopify(token: &str) -> (String, Shared) {
    let shared: Shared = Arc::new(Mutex::new(FakeShopify { token: token.into(), ..Default::default() }));
    let app = axum::Router::new()
        .route("/admin/api/2025-10/graphql.json", axum::routing::post(graphql))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use axum::serve::ListenerExt;
        axum::serve(listener.tap_io(|tcp| drop(tcp.set_nodelay(true))), app).await.unwrap()
    });
    (format!("http://{addr}"), shared)
}

/// A Shopify destination for `channel` at `endpoint`, with quick retries for tests.
pub fn shopify_destination(endpoint: &str, token: &str, max_attempts: u32) -> ordo_relay::config::ChannelDestination {
    use ordo_relay::config::{ChannelDestination, Credentials, Secret};
    ChannelDestination {
        channel: "WEB".into(),
        endpoint: endpoint.into(),
        credentials: Credentials::Shopify {
            access_token: Secret::new(token),
            location_gid: "gid://shopify/Location/7".into(),
        },
        items: (0..50).map(|i| (format!("SKU-{i}"), format!("gid://shopify/InventoryItem/{}", 1000 + i))).collect(),
        rate_per_second: 1_000.0,
        burst: 100,
        retry: ordo_relay::RetryPolicy {
            base: Duration::from_millis(10),
            cap: Duration::from_millis(50),
            max_attempts,
        },
        timeout: Duration::from_millis(300),
        every: None,
    }
}

/// Commits `message` to the outbox as the engine would with a batch (no journal rows of its own).
pub fn queue_message(engine: &mut Engine<SqliteStore>, message: ordo_domain::outbox::OutboxMessage) {
    use ordo_engine::Store as _;
    let head = engine.store_mut().begin().unwrap();
    engine
        .store_mut()
        .commit(&ordo_engine::CommitBatch {
            first_seq: head + 1,
            records: &[],
            stock: &[],
            availability: &[],
            availability_rows: &[],
            messages: &[(head, message)],
            projection_seq: None,
            now: ordo_types::Timestamp::from_millis(1_795_000_000_000),
        })
        .unwrap();
}
