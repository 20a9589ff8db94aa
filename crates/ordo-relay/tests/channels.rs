//! Channel relays against a fake Shopify (a real HTTP server on 127.0.0.1): availability
//! coalesced per SKU and written conditionally, rate limits and server errors and timeouts
//! retried, conflicting changes resolved to Ordo's figure, hopeless failures dead-lettered with
//! the reason and redriven with the current figure, shipments confirmed with tracking.

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
