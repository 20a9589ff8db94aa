//! Shopify shipment confirmations: the GraphQL Admin `fulfillmentCreate` mutation with tracking,
//! for the fulfillment order of the Shopify order (the order's gid comes from its numeric id).

use serde_json::{Value, json};

pub const FULFILLMENT_CREATE: &str = "mutation fulfillmentCreate($fulfillment: FulfillmentInput!) { \
fulfillmentCreate(fulfillment: $fulfillment) { fulfillment { id status } userErrors { field message } } }";

/// The request for one shipment (`shipment_confirmed` payload): tracking and carrier, the
/// customer notified. Lines are by fulfillment order: Shopify fulfils the whole fulfillment
/// order unless line items are given, so a partial shipment lists its quantities.
pub fn fulfillment_create_request(fulfillment_order_gid: &str, confirmation: &Value, partial: bool) -> Value {
    let mut by_order = json!({"fulfillmentOrderId": fulfillment_order_gid});
    if partial {
        let lines: Vec<Value> = confirmation["lines"]
            .as_array()
            .map(|ls| ls.iter().map(|l| json!({"id": l["line_id"], "quantity": l["quantity"]})).collect())
            .unwrap_or_default();
        by_order["fulfillmentOrderLineItems"] = Value::Array(lines);
    }
    json!({
        "query": FULFILLMENT_CREATE,
        "variables": {"fulfillment": {
            "lineItemsByFulfillmentOrder": [by_order],
            "notifyCustomer": true,
            "trackingInfo": {"company": confirmation["carrier"], "number": confirmation["tracking"]},
        }}
    })
}

/// The user errors of a `fulfillmentCreate` answer (empty: created).
pub fn user_errors(body: &Value) -> Vec<String> {
    let mut out: Vec<String> =
        body["errors"].as_array().map(|e| e.iter().map(Value::to_string).collect()).unwrap_or_default();
    if let Some(errors) = body["data"]["fulfillmentCreate"]["userErrors"].as_array() {
        out.extend(errors.iter().map(|e| e["message"].as_str().unwrap_or_default().to_owned()));
    }
    out
}
