//! Channel relays against fake channel APIs (real HTTP servers on 127.0.0.1): availability
//! coalesced per SKU and written conditionally, rate limits and server errors and timeouts
//! retried, conflicting changes resolved to Ordo's figure, hopeless failures dead-lettered with
//! the reason and redriven with the current figure, shipments confirmed with tracking (Shopify);
//! Amazon's Feeds API in its three steps; Walmart's inventory feed with its headers.

mod support;

use ordo_engine::{Outbox, Store};
use ordo_relay::connectors::Connector;
use ordo_relay::{ChannelRelay, DeliveryError};
use ordo_store_sqlite::SqliteStore;
use support::*;

fn item(i: usize) -> String {
    format!("gid://shopify/InventoryItem/{}", 1000 + i)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn availability_is_coalesced_per_sku_and_set_conditionally() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ordo.db");
    let mut engine = engine(&path, 3);
    // Five batches: SKU-0 changes three times, SKU-1 twice, SKU-2 once.
    for batch in [
        vec![receipt(0, 5)],
        vec![receipt(0, 2), receipt(1, 4)],
        vec![receipt(0, 1)],
        vec![receipt(1, 1)],
        vec![receipt(2, 9)],
    ] {
        let outcome = engine.execute(batch);
        assert!(outcome.error.is_none());
    }
    let rows = engine.store_mut().outbox_pending().unwrap();
    assert_eq!(rows, 5, "one availability message per batch");
    let (url, shop) = start_fake_shopify("shpat_test").await;
    let mut store = SqliteStore::open(&path).unwrap();
    let mut relay = ChannelRelay::new(Connector::new(shopify_destination(&url, "shpat_test", 5)));
    assert_eq!(relay.pass(&mut store).await.unwrap(), 5);
    {
        let s = shop.lock().unwrap();
        // One call: only the newest figure per SKU, compared against the figure before the first.
        assert_eq!(s.calls.len(), 1);
        let q = &s.calls[0]["variables"]["input"]["quantities"];
        let sent: Vec<(String, i64, i64)> = q
            .as_array()
            .unwrap()
            .iter()
            .map(|q| {
                (
                    q["inventoryItemId"].as_str().unwrap().to_owned(),
                    q["compareQuantity"].as_i64().unwrap(),
                    q["quantity"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(sent, [(item(0), 0, 8), (item(1), 0, 5), (item(2), 0, 9)]);
        assert_eq!(s.calls[0]["variables"]["input"]["quantities"][0]["locationId"], "gid://shopify/Location/7");
        assert_eq!(s.levels[&item(0)], 8);
    }
    // Nothing new: nothing sent. The cursor moved past what was delivered.
    assert_eq!(relay.pass(&mut store).await.unwrap(), 0);
    assert_eq!(store.outbox_cursor("channel:WEB").unwrap(), 5);
    // A later movement sends only that SKU, compared against what Shopify was last told.
    engine.execute(vec![receipt(2, 1)]);
    relay.pass(&mut store).await.unwrap();
    let s = shop.lock().unwrap();
    assert_eq!(s.calls.len(), 2);
    assert_eq!(s.calls[1]["variables"]["input"]["quantities"][0]["compareQuantity"], 9);
    assert_eq!(s.levels[&item(2)], 10);
    assert_eq!(relay.stats.dead_letters, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_server_errors_and_timeouts_are_retried() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ordo.db");
    let mut engine = engine(&path, 1);
    engine.execute(vec![receipt(0, 3)]);
    let (url, shop) = start_fake_shopify("shpat_test").await;
    shop.lock().unwrap().faults.extend([
        Fault::TooManyRequests { retry_after: "0.05" },
        Fault::ServerError(502),
        Fault::Slow(std::time::Duration::from_millis(900)),
        Fault::ServerError(503),
    ]);
    let mut store = SqliteStore::open(&path).unwrap();
    let mut relay = ChannelRelay::new(Connector::new(shopify_destination(&url, "shpat_test", 8)));
    relay.pass(&mut store).await.unwrap();
    let s = shop.lock().unwrap();
    assert_eq!(s.faulted, 4);
    assert_eq!(s.levels[&item(0)], 3, "delivered after four failures");
    assert_eq!(relay.stats.retries, 4);
    assert!(store.relay_dead_letters().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_on_the_channel_meanwhile_is_set_to_ordos_figure() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ordo.db");
    let mut engine = engine(&path, 2);
    engine.execute(vec![receipt(0, 6), receipt(1, 2)]);
    let (url, shop) = start_fake_shopify("shpat_test").await;
    // Someone sold one of SKU-0 in Shopify's own admin before Ordo's first publish.
    shop.lock().unwrap().levels.insert(item(0), -1);
    let mut store = SqliteStore::open(&path).unwrap();
    let mut relay = ChannelRelay::new(Connector::new(shopify_destination(&url, "shpat_test", 3)));
    relay.pass(&mut store).await.unwrap();
    let s = shop.lock().unwrap();
    assert_eq!((s.levels[&item(0)], s.levels[&item(1)]), (6, 2));
    assert_eq!(relay.stats.conflicts, 1);
    // The stale item was forced (no compare); the other went conditionally.
    let forced = &s.calls[1]["variables"]["input"];
    assert_eq!(forced["ignoreCompareQuantity"], true);
    assert_eq!(forced["quantities"][0]["inventoryItemId"], item(0));
    assert_eq!(s.calls[2]["variables"]["input"]["quantities"][0]["compareQuantity"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hopeless_failures_are_dead_lettered_with_the_reason_and_redriven() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ordo.db");
    let mut engine = engine(&path, 1);
    engine.execute(vec![receipt(0, 4)]);
    let (url, shop) = start_fake_shopify("shpat_right").await;
    let mut store = SqliteStore::open(&path).unwrap();
    // Wrong credentials: no retry can help.
    let mut relay = ChannelRelay::new(Connector::new(shopify_destination(&url, "shpat_wrong", 5)));
    relay.pass(&mut store).await.unwrap();
    let dead = store.relay_dead_letters().unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (dead[0].attempts, dead[0].destination.as_str(), dead[0].topic.as_str()),
        (1, "channel:WEB", "availability_changed")
    );
    assert!(dead[0].reason.starts_with("authentication: HTTP 401"), "{}", dead[0].reason);
    assert!(!dead[0].reason.contains("shpat"), "no secret in a reason: {}", dead[0].reason);
    // The cursor moved on: other messages are not held up behind it.
    assert_eq!(store.outbox_cursor("channel:WEB").unwrap(), 1);
    // A server that keeps failing: given up after the policy's attempts.
    engine.execute(vec![receipt(0, 1)]);
    shop.lock().unwrap().faults.extend(std::iter::repeat_n(Fault::ServerError(500), 3));
    let mut relay = ChannelRelay::new(Connector::new(shopify_destination(&url, "shpat_right", 3)));
    relay.pass(&mut store).await.unwrap();
    let dead = store.relay_dead_letters().unwrap();
    assert_eq!(dead.len(), 2);
    assert_eq!(dead[1].attempts, 3);
    assert!(dead[1].reason.contains("HTTP 500"), "{}", dead[1].reason);
    // Redrive: the figure sent is the current one (5), not the stale one that failed (4).
    engine.execute(vec![receipt(0, 2)]);
    relay.redrive(&dead[0], |sku| (sku == "SKU-0").then_some(7)).await.unwrap();
    store.relay_redriven(dead[0].id, ordo_types::Timestamp::from_millis(1)).unwrap();
    assert_eq!(shop.lock().unwrap().levels[&item(0)], 7);
    assert!(store.relay_redriven(dead[0].id, ordo_types::Timestamp::from_millis(2)).is_err(), "only once");
    let err = ChannelRelay::new(Connector::new(shopify_destination(&url, "shpat_wrong", 2)))
        .redrive(&dead[1], |_| Some(7))
        .await
        .unwrap_err();
    assert!(matches!(err, DeliveryError::Auth(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipments_are_confirmed_with_tracking_against_the_open_fulfillment_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ordo.db");
    let mut engine = engine(&path, 1);
    // A shipment confirmation as the domain writes it (ordo_domain::outbox), committed with a
    // journal row like any batch.
    let message = ordo_domain::outbox::OutboxMessage {
        topic: ordo_domain::outbox::SHIPMENT_CONFIRMED,
        key: "WEB/450789469".into(),
        payload: serde_json::json!({"channel": "WEB", "channel_order_id": "450789469", "shipment_id": "S-1",
            "carrier": "UPS", "service": "ground", "tracking": "1Z999AA10123456784", "shipped_at": 1_795_000_000_000i64,
            "lines": [{"line_id": "1", "sku": "SKU-0", "listing": null, "quantity": 1, "uom": "each"}]})
        .to_string(),
    };
    queue_message(&mut engine, message);
    let (url, shop) = start_fake_shopify("shpat_test").await;
    let mut store = SqliteStore::open(&path).unwrap();
    let mut relay = ChannelRelay::new(Connector::new(shopify_destination(&url, "shpat_test", 3)));
    relay.pass(&mut store).await.unwrap();
    let s = shop.lock().unwrap();
    assert_eq!(s.fulfillments.len(), 1);
    let f = &s.fulfillments[0];
    assert_eq!(f["lineItemsByFulfillmentOrder"][0]["fulfillmentOrderId"], "gid://shopify/FulfillmentOrder/2");
    assert_eq!(f["trackingInfo"]["number"], "1Z999AA10123456784");
    assert_eq!(f["trackingInfo"]["company"], "UPS");
    assert_eq!(relay.stats.messages, 1);
}

/// A fake SP-API Feeds API: documents created with a pre-signed upload URL on the same server,
/// uploads kept, feeds created over an uploaded document — the first `createFeed` answered 429.
#[derive(Default)]
struct FakeFeeds {
    base: String,
    documents: Vec<String>,
    uploads: std::collections::BTreeMap<String, (Option<String>, String)>,
    feeds: Vec<serde_json::Value>,
    throttle_next_feed: bool,
    tokens_seen: Vec<Option<String>>,
}

type Feeds = std::sync::Arc<std::sync::Mutex<FakeFeeds>>;

async fn start_fake_amazon() -> (String, Feeds) {
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    let feeds: Feeds = Default::default();
    fn token(h: &HeaderMap) -> Option<String> {
        h.get("x-amz-access-token").and_then(|v| v.to_str().ok()).map(str::to_owned)
    }
    let app = axum::Router::new()
        .route(
            "/feeds/2021-06-30/documents",
            axum::routing::post(|State(f): State<Feeds>, headers: HeaderMap, body: String| async move {
                let mut f = f.lock().unwrap();
                f.tokens_seen.push(token(&headers));
                let asked: serde_json::Value = serde_json::from_str(&body).unwrap();
                assert_eq!(asked["contentType"], "application/json; charset=UTF-8");
                let id = format!("amzn1.tortuga.4.na.{}", f.documents.len() + 1);
                f.documents.push(id.clone());
                axum::Json(serde_json::json!({"feedDocumentId": id, "url": format!("{}/upload/{id}", f.base)}))
            }),
        )
        .route(
            "/upload/{id}",
            axum::routing::put(
                |State(f): State<Feeds>, Path(id): Path<String>, headers: HeaderMap, body: String| async move {
                    f.lock().unwrap().uploads.insert(id, (token(&headers), body));
                    StatusCode::OK
                },
            ),
        )
        .route(
            "/feeds/2021-06-30/feeds",
            axum::routing::post(|State(f): State<Feeds>, headers: HeaderMap, body: String| async move {
                let mut f = f.lock().unwrap();
                f.tokens_seen.push(token(&headers));
                if std::mem::take(&mut f.throttle_next_feed) {
                    return (StatusCode::TOO_MANY_REQUESTS, [("Retry-After", "0")], "{}".to_owned()).into_response();
                }
                let feed: serde_json::Value = serde_json::from_str(&body).unwrap();
                f.feeds.push(feed);
                axum::Json(serde_json::json!({"feedId": format!("5000{}", f.feeds.len())})).into_response()
            }),
        )
        .with_state(feeds.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    feeds.lock().unwrap().base = base.clone();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, feeds)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amazon_availability_goes_through_the_feeds_api_in_its_three_steps() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ordo.db");
    let mut engine = engine(&path, 2);
    for batch in [vec![receipt(0, 5)], vec![receipt(0, 2), receipt(1, 4)]] {
        assert!(engine.execute(batch).error.is_none());
    }
    let (url, feeds) = start_fake_amazon().await;
    feeds.lock().unwrap().throttle_next_feed = true;
    let mut destination = shopify_destination(&url, "Atza|amazon-token", 3);
    destination.credentials = ordo_relay::config::Credentials::Amazon {
        access_token: ordo_relay::config::Secret::new("Atza|amazon-token"),
        seller_id: "A1SELLER".into(),
        product_type: "SHIRT".into(),
        marketplace_id: "ATVPDKIKX0DER".into(),
    };
    destination.items = [("SKU-0".to_owned(), "SELLER-SKU-0".to_owned())].into();
    let mut store = SqliteStore::open(&path).unwrap();
    let mut relay = ChannelRelay::new(Connector::new(destination));
    assert_eq!(relay.pass(&mut store).await.unwrap(), 2);
    let f = feeds.lock().unwrap();
    // Throttled once: the round was tried again, over a new document.
    assert_eq!(f.documents.len(), 2);
    assert_eq!(f.feeds.len(), 1);
    let feed = &f.feeds[0];
    assert_eq!(feed["feedType"], "JSON_LISTINGS_FEED");
    assert_eq!(feed["marketplaceIds"], serde_json::json!(["ATVPDKIKX0DER"]));
    let document = feed["inputFeedDocumentId"].as_str().unwrap();
    let (upload_token, uploaded) = &f.uploads[document];
    assert_eq!(upload_token, &None, "the pre-signed upload never carries the SP-API token");
    assert!(f.tokens_seen.iter().all(|t| t.as_deref() == Some("Atza|amazon-token")), "{:?}", f.tokens_seen);
    let uploaded: serde_json::Value = serde_json::from_str(uploaded).unwrap();
    assert_eq!(uploaded["header"]["sellerId"], "A1SELLER");
    let sent: Vec<(String, i64)> = uploaded["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let value = &m["patches"][0]["value"][0];
            (m["sku"].as_str().unwrap().to_owned(), value["quantity"].as_i64().unwrap())
        })
        .collect();
    // Coalesced: SKU-0 once at its newest figure, under its seller SKU; SKU-1 under its own name.
    assert_eq!(sent, [("SELLER-SKU-0".to_owned(), 7), ("SKU-1".to_owned(), 4)]);
    assert_eq!(relay.stats.dead_letters, 0);
    assert_eq!(relay.stats.retries, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walmart_availability_is_one_inventory_feed_with_the_marketplace_headers() {
    use axum::http::HeaderMap;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ordo.db");
    let mut engine = engine(&path, 2);
    assert!(engine.execute(vec![receipt(0, 3), receipt(1, 6)]).error.is_none());
    type Calls = std::sync::Arc<std::sync::Mutex<Vec<(Vec<(String, String)>, String, String)>>>;
    let calls: Calls = Default::default();
    let app = axum::Router::new()
        .route(
            "/v3/feeds",
            axum::routing::post(
                |axum::extract::State(c): axum::extract::State<Calls>,
                 axum::extract::RawQuery(q): axum::extract::RawQuery,
                 headers: HeaderMap,
                 body: String| async move {
                    let headers = headers
                        .iter()
                        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
                        .collect();
                    c.lock().unwrap().push((headers, q.unwrap_or_default(), body));
                    axum::Json(serde_json::json!({"feedId": "F1"}))
                },
            ),
        )
        .with_state(calls.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let mut destination = shopify_destination(&url, "wm-token", 3);
    destination.credentials =
        ordo_relay::config::Credentials::Walmart { access_token: ordo_relay::config::Secret::new("wm-token") };
    destination.items = [("SKU-1".to_owned(), "WM-SKU-1".to_owned())].into();
    let mut store = SqliteStore::open(&path).unwrap();
    let mut relay = ChannelRelay::new(Connector::new(destination));
    relay.pass(&mut store).await.unwrap();
    let calls = calls.lock().unwrap();
    assert_eq!(calls.len(), 1);
    let (headers, query, body) = &calls[0];
    let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    assert_eq!(query, "feedType=inventory");
    assert_eq!(header("wm_sec.access_token"), Some("wm-token"));
    assert_eq!(header("wm_svc.name"), Some("Walmart Marketplace"));
    assert!(header("wm_qos.correlation_id").is_some_and(|c| !c.is_empty()));
    let feed: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(feed["InventoryHeader"]["version"], "1.4");
    let sent: Vec<(String, i64)> = feed["Inventory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["sku"].as_str().unwrap().to_owned(), i["quantity"]["amount"].as_i64().unwrap()))
        .collect();
    assert_eq!(sent, [("SKU-0".to_owned(), 3), ("WM-SKU-1".to_owned(), 6)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refunds_move_money_against_the_orders_captured_payment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ordo.db");
    let mut engine = engine(&path, 1);
    // A refund as the domain writes it: 33.50 back for two units of line 1.
    let message = ordo_domain::outbox::OutboxMessage {
        topic: ordo_domain::outbox::REFUND_ISSUED,
        key: "WEB/450789469".into(),
        payload: serde_json::json!({"channel": "WEB", "channel_order_id": "450789469", "rma_id": "RMA-1",
            "amount_minor": 3_350, "net_minor": 4_000, "tax_minor": {"US-MA": 250}, "restocking_fee_minor": 400,
            "return_shipping_minor": 500, "lines": [{"line_id": "1", "sku": "SKU-0", "units": 2}]})
        .to_string(),
    };
    queue_message(&mut engine, message);
    let (url, shop) = start_fake_shopify("shpat_test").await;
    let mut store = SqliteStore::open(&path).unwrap();
    let mut relay = ChannelRelay::new(Connector::new(shopify_destination(&url, "shpat_test", 3)));
    relay.pass(&mut store).await.unwrap();
    let s = shop.lock().unwrap();
    assert_eq!(s.refunds.len(), 1, "{:?}", s.calls);
    let input = &s.refunds[0];
    assert_eq!(input["orderId"], "gid://shopify/Order/450789469");
    // Named so that Shopify's refunds/create of it is recognised as Ordo's own.
    assert_eq!(input["note"], "Ordo RMA-1");
    assert_eq!(input["refundLineItems"][0]["lineItemId"], "gid://shopify/LineItem/1");
    assert_eq!(input["refundLineItems"][0]["quantity"], 2);
    // The money: Ordo's figure (fees kept), against the capture, not the authorization.
    let t = &input["transactions"][0];
    assert_eq!((t["amount"].as_str(), t["kind"].as_str()), (Some("33.50"), Some("REFUND")));
    assert_eq!(
        (t["parentId"].as_str(), t["gateway"].as_str()),
        (Some("gid://shopify/OrderTransaction/2"), Some("shopify_payments"))
    );
    assert_eq!(relay.stats.dead_letters, 0);
}
