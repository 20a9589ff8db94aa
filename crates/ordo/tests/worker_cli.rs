//! `ordo worker --until-idle` end to end: a stock movement's availability and a shipment's
//! confirmation delivered to a fake Shopify on loopback from the outbox, nothing sent twice on a
//! second run, the token never printed; a channel that refuses leaves a relay dead letter that
//! `ordo outbox dead-letters` lists and `ordo outbox redrive` delivers once it is fixed.

mod common;

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use common::{Db, retailer, serve_on_loopback};
use serde_json::{Value, json};

#[derive(Default)]
struct Shop {
    token: String,
    calls: Vec<Value>,
}

async fn graphql(State(shop): State<Arc<Mutex<Shop>>>, headers: HeaderMap, body: String) -> axum::response::Response {
    let mut shop = shop.lock().unwrap();
    if headers.get("X-Shopify-Access-Token").and_then(|v| v.to_str().ok()) != Some(shop.token.as_str()) {
        return (axum::http::StatusCode::UNAUTHORIZED, "{\"errors\":\"[API] Invalid API key or access token\"}")
            .into_response();
    }
    let body: Value = serde_json::from_str(&body).unwrap();
    let query = body["query"].as_str().unwrap_or_default().to_owned();
    shop.calls.push(body);
    let answer = if query.contains("inventorySetQuantities") {
        json!({"data": {"inventorySetQuantities": {"userErrors": []}}})
    } else if query.contains("fulfillmentOrders") {
        json!({"data": {"order": {"fulfillmentOrders": {"nodes": [{"id": "gid://shopify/FulfillmentOrder/9", "status": "OPEN"}]}}}})
    } else {
        json!({"data": {"fulfillmentCreate": {"fulfillment": {"id": "gid://shopify/Fulfillment/1"}, "userErrors": []}}})
    };
    axum::Json(answer).into_response()
}

#[test]
fn the_worker_relays_the_outbox_and_dead_letters_are_redriven() {
    let db = Db::new();
    retailer(&db, "WEB", "shopify", "EAST");
    let shop = Arc::new(Mutex::new(Shop { token: "shpat_worker_secret".into(), ..Default::default() }));
    let (_runtime, url) = serve_on_loopback(
        axum::Router::new()
            .route("/admin/api/2025-10/graphql.json", axum::routing::post(graphql))
            .with_state(shop.clone()),
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("relay.json");
    std::fs::write(
        &config,
        json!({"channels": [{"channel": "WEB", "kind": "shopify", "endpoint": url, "token_env": "ORDO_TEST_TOKEN",
            "location_gid": "gid://shopify/Location/1", "items": {"MUG": "gid://shopify/InventoryItem/77"},
            "max_attempts": 2, "backoff_base_ms": 5, "timeout_ms": 2000}]})
        .to_string(),
    )
    .unwrap();
    let worker = |token: &str| {
        let mut command = db.command(&["worker", "--config", config.to_str().unwrap(), "--until-idle"]);
        command.env("ORDO_TEST_TOKEN", token);
        command.output().unwrap()
    };
    db.ok(&["move", "receipt", "--sku", "MUG", "--location", "EAST", "--quantity", "6"]);
    let out = worker("shpat_worker_secret");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!printed.contains("shpat_worker_secret"), "the token is never printed: {printed}");
    assert!(printed.contains("channel:WEB: 1 rows read"), "{printed}");
    {
        let s = shop.lock().unwrap();
        assert_eq!(s.calls.len(), 1);
        let q = &s.calls[0]["variables"]["input"]["quantities"][0];
        assert_eq!(
            (q["inventoryItemId"].as_str(), q["quantity"].as_i64()),
            (Some("gid://shopify/InventoryItem/77"), Some(6))
        );
    }
    // Again: nothing new, nothing sent.
    assert!(worker("shpat_worker_secret").status.success());
    assert_eq!(shop.lock().unwrap().calls.len(), 1);

    // The token is rotated on Shopify's side: the next availability is refused, dead-lettered
    // with the reason, and the cursor moves on.
    shop.lock().unwrap().token = "shpat_rotated".into();
    db.ok(&["move", "receipt", "--sku", "MUG", "--location", "EAST", "--quantity", "1"]);
    assert!(worker("shpat_worker_secret").status.success());
    let dead = db.json(&["outbox", "dead-letters", "--json"]);
    assert_eq!(dead.as_array().unwrap().len(), 1);
    assert_eq!(dead[0]["destination"], "channel:WEB");
    assert!(dead[0]["reason"].as_str().unwrap().starts_with("authentication: HTTP 401"), "{dead:#}");
    let id = dead[0]["id"].as_u64().unwrap().to_string();
    // Redriven with the new token: the current figure (7) goes.
    let mut redrive = db.command(&["outbox", "redrive", &id, "--config", config.to_str().unwrap()]);
    redrive.env("ORDO_TEST_TOKEN", "shpat_rotated");
    let out = redrive.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let last = shop.lock().unwrap().calls.last().cloned().unwrap();
    assert_eq!(last["variables"]["input"]["quantities"][0]["quantity"], 7);
    let dead = db.json(&["outbox", "dead-letters", "--json"]);
    assert!(dead[0]["redriven_at"].is_string());
    let mut again = db.command(&["outbox", "redrive", &id, "--config", config.to_str().unwrap()]);
    again.env("ORDO_TEST_TOKEN", "shpat_rotated");
    let again = again.output().unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already redriven"));
    let status = db.ok(&["outbox", "status"]);
    assert!(status.contains("channel:WEB") && status.contains("outbox head"), "{status}");
}
