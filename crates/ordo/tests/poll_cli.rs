//! `ordo poll shopify|amazon`: fake Shopify and Amazon order APIs on loopback (paged by the `Link`
//! header and by `NextToken`) are read for orders updated since the checkpoint; what is new is
//! captured (FBA without reserving), what was already captured changes nothing, and the
//! checkpoint moves to the newest update taken in.

mod common;

use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use common::{Db, retailer, serve_on_loopback};
use serde_json::{Value, json};

#[derive(Default)]
struct Shop {
    orders: Vec<Value>,
    /// The `updated_at_min` of every first-page request.
    asked_since: Vec<String>,
    base: String,
}

async fn orders(
    State(shop): State<Arc<Mutex<Shop>>>,
    headers: HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> axum::response::Response {
    if headers.get("X-Shopify-Access-Token").and_then(|v| v.to_str().ok()) != Some("shpat_poll") {
        return (axum::http::StatusCode::UNAUTHORIZED, "{\"errors\":\"[API] Invalid API key\"}").into_response();
    }
    let mut shop = shop.lock().unwrap();
    let page: usize = q.get("page_info").and_then(|p| p.parse().ok()).unwrap_or(0);
    if page == 0 {
        shop.asked_since.push(q.get("updated_at_min").cloned().unwrap_or_default());
    }
    let since = shop.asked_since.last().cloned().unwrap_or_default();
    let since = chrono::DateTime::parse_from_rfc3339(&since).map(|d| d.timestamp_millis()).unwrap_or(0);
    let matching: Vec<Value> = shop
        .orders
        .iter()
        .filter(|o| {
            chrono::DateTime::parse_from_rfc3339(o["updated_at"].as_str().unwrap()).unwrap().timestamp_millis() >= since
        })
        .cloned()
        .collect();
    // One order a page, to exercise the Link header.
    let body = json!({"orders": matching.get(page).cloned().into_iter().collect::<Vec<_>>()});
    let mut response = axum::Json(body).into_response();
    if page + 1 < matching.len() {
        let next =
            format!("<{}/admin/api/2025-10/orders.json?limit=250&page_info={}>; rel=\"next\"", shop.base, page + 1);
        response.headers_mut().insert("Link", next.parse().unwrap());
    }
    response
}

#[test]
fn the_orders_api_is_polled_for_what_webhooks_missed() {
    let db = Db::new();
    retailer(&db, "WEB", "shopify", "EAST");

    let sample = std::fs::read_to_string(
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/samples/shopify/shopify_python_api_order.json"),
    )
    .unwrap();
    let sample: Value = serde_json::from_str(&sample).unwrap();
    let base = sample.get("order").cloned().unwrap_or(sample);
    let order = |id: u64, updated: &str| {
        let mut o = base.clone();
        o["id"] = id.into();
        o["updated_at"] = updated.into();
        o
    };
    let shop = Arc::new(Mutex::new(Shop {
        orders: vec![order(1001, "2026-11-20T10:00:00-05:00"), order(1002, "2026-11-21T10:00:00-05:00")],
        ..Default::default()
    }));
    let (_runtime, url) = serve_on_loopback(
        axum::Router::new()
            .route("/admin/api/2025-10/orders.json", axum::routing::get(orders))
            .with_state(shop.clone()),
    );
    shop.lock().unwrap().base = url.clone();

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("relay.json");
    std::fs::write(
        &config,
        json!({"channels": [{"channel": "WEB", "kind": "shopify", "endpoint": url, "token_env": "ORDO_TEST_SHOPIFY_TOKEN",
                              "location_gid": "gid://shopify/Location/1"}]})
        .to_string(),
    )
    .unwrap();
    let poll = |since: Option<&str>| {
        let mut args = vec!["poll", "shopify", "--config", config.to_str().unwrap(), "--channel", "WEB"];
        if let Some(s) = since {
            args.extend(["--since", s]);
        }
        let mut command = db.command(&args);
        command.env("ORDO_TEST_SHOPIFY_TOKEN", "shpat_poll");
        command.output().unwrap()
    };
    let out = poll(Some("2026-11-01T00:00:00Z"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("WEB/1001") && said.contains("WEB/1002"), "both pages taken in: {said}");

    // A later update of 1002 and a new 1003: the next poll starts from the checkpoint (the newest
    // update taken in, less a minute of overlap) and takes in what changed.
    {
        let mut s = shop.lock().unwrap();
        s.orders.push(order(1003, "2026-11-22T09:00:00Z"));
    }
    let before = db.journal_seq();
    let out = poll(None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let asked = shop.lock().unwrap().asked_since.clone();
    assert_eq!(asked[1], "2026-11-21T14:59:00.000Z", "from the checkpoint: {asked:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("WEB/1003"), "{said}");
    // 1002 came again (the overlap) and changed nothing; only 1003 was recorded.
    assert_eq!(db.journal_seq(), before + 1);

    // Wrong credentials: refused with the channel's answer, nothing recorded.
    let before = db.journal_seq();
    let mut command = db.command(&["poll", "shopify", "--config", config.to_str().unwrap(), "--channel", "WEB"]);
    command.env("ORDO_TEST_SHOPIFY_TOKEN", "wrong");
    let out = command.output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("authentication: HTTP 401"));
    assert_eq!(db.journal_seq(), before);
}

#[derive(Default)]
struct Marketplace {
    asked_after: Vec<String>,
}

async fn get_orders(
    State(m): State<Arc<Mutex<Marketplace>>>,
    headers: HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> axum::response::Response {
    if headers.get("x-amz-access-token").and_then(|v| v.to_str().ok()) != Some("Atza|poll") {
        return (axum::http::StatusCode::FORBIDDEN, "{\"errors\":[{\"code\":\"Unauthorized\"}]}").into_response();
    }
    assert_eq!(q.get("MarketplaceIds").map(String::as_str), Some("ATVPDKIKX0DER"));
    let order = |id: &str, channel: &str, updated: &str| {
        json!({"AmazonOrderId": id, "PurchaseDate": "2026-11-20T10:00:00Z", "LastUpdateDate": updated,
               "OrderStatus": "Unshipped", "FulfillmentChannel": channel, "ShipServiceLevel": "Std",
               "OrderTotal": {"CurrencyCode": "USD", "Amount": "12.00"},
               "ShippingAddress": {"Name": "A", "AddressLine1": "1 Main St", "City": "Brooklyn", "StateOrRegion": "NY",
                                   "PostalCode": "11201", "CountryCode": "US"}})
    };
    let body = match q.get("NextToken").map(String::as_str) {
        None => {
            m.lock().unwrap().asked_after.push(q.get("LastUpdatedAfter").cloned().unwrap_or_default());
            json!({"payload": {"Orders": [order("114-1", "MFN", "2026-11-20T11:00:00Z")], "NextToken": "page-2"}})
        }
        Some("page-2") => json!({"payload": {"Orders": [order("114-2", "AFN", "2026-11-20T12:30:00Z")]}}),
        Some(other) => panic!("unknown NextToken {other}"),
    };
    axum::Json(body).into_response()
}

async fn get_order_items(axum::extract::Path(id): axum::extract::Path<String>) -> axum::Json<Value> {
    axum::Json(
        json!({"payload": {"AmazonOrderId": id, "OrderItems": [{"OrderItemId": format!("{id}-1"), "SellerSKU": "MUG",
        "ASIN": "B0MUG", "QuantityOrdered": 1, "ItemPrice": {"CurrencyCode": "USD", "Amount": "12.00"}}]}}),
    )
}

#[test]
fn amazon_orders_are_pulled_after_the_checkpoint_with_their_items() {
    let db = Db::new();
    retailer(&db, "AMAZON-US", "amazon", "EAST");
    let market = Arc::new(Mutex::new(Marketplace::default()));
    let (_runtime, url) = serve_on_loopback(
        axum::Router::new()
            .route("/orders/v0/orders", axum::routing::get(get_orders))
            .route("/orders/v0/orders/{id}/orderItems", axum::routing::get(get_order_items))
            .with_state(market.clone()),
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("relay.json");
    std::fs::write(
        &config,
        json!({"channels": [{"channel": "AMAZON-US", "kind": "amazon", "endpoint": url, "token_env": "ORDO_TEST_AMAZON_TOKEN",
                              "seller_id": "A1SELLER"}]})
        .to_string(),
    )
    .unwrap();
    let poll = |since: Option<&str>| {
        let mut args = vec!["poll", "amazon", "--config", config.to_str().unwrap(), "--channel", "AMAZON-US"];
        if let Some(s) = since {
            args.extend(["--since", s]);
        }
        let mut command = db.command(&args);
        command.env("ORDO_TEST_AMAZON_TOKEN", "Atza|poll");
        command.output().unwrap()
    };
    let out = poll(Some("2026-11-19T00:00:00Z"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("AMAZON-US/114-1: ") && said.contains("AMAZON-US/114-2: validated"), "both pages: {said}");
    let fba = db.json(&["order", "show", "AMAZON-US/114-2", "--json"]);
    assert_eq!(fba["order"]["fulfillment"], "by_channel");
    // The next poll asks from the newest LastUpdateDate taken in, less a minute.
    let before = db.journal_seq();
    let out = poll(None);
    assert!(out.status.success());
    assert_eq!(market.lock().unwrap().asked_after, ["2026-11-19T00:00:00Z", "2026-11-20T12:29:00.000Z"]);
    assert_eq!(db.journal_seq(), before, "the same orders again change nothing");
}
