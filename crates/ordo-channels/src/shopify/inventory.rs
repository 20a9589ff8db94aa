//! Shopify availability: the GraphQL Admin `inventorySetQuantities` mutation (absolute
//! `available` quantities at one location, compare-and-set on the figure Ordo last published),
//! and reading its answer into the connector error taxonomy's terms.

use serde_json::{Value, json};

use crate::availability::{AvailabilityUpdate, advertised};

pub const SET_QUANTITIES: &str = "mutation inventorySetQuantities($input: InventorySetQuantitiesInput!) { \
inventorySetQuantities(input: $input) { inventoryAdjustmentGroup { reason } userErrors { code field message } } }";

/// Shopify takes at most this many quantities per call.
pub const MAX_QUANTITIES: usize = 250;

/// The request body. `compare` false sends `ignoreCompareQuantity` (after a stale compare:
/// Ordo is the system of record, and the sale that moved Shopify's figure reaches Ordo as an
/// order).
pub fn set_quantities_request(
    location_gid: &str,
    updates: &[AvailabilityUpdate],
    compare: bool,
    reference: &str,
) -> Value {
    assert!(updates.len() <= MAX_QUANTITIES, "at most {MAX_QUANTITIES} quantities per call");
    let quantities: Vec<Value> = updates
        .iter()
        .map(|u| {
            let mut q = json!({"inventoryItemId": u.channel_item, "locationId": location_gid, "quantity": advertised(u.available)});
            if compare {
                q["compareQuantity"] = advertised(u.previous).into();
            }
            q
        })
        .collect();
    json!({
        "query": SET_QUANTITIES,
        "variables": {"input": {
            "name": "available",
            "reason": "correction",
            "referenceDocumentUri": reference,
            "ignoreCompareQuantity": !compare,
            "quantities": quantities,
        }}
    })
}

/// What Shopify answered, in the terms the relay acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetQuantitiesAnswer {
    Applied,
    /// `COMPARE_QUANTITY_STALE` for these inventory items: someone changed them since.
    Stale(Vec<String>),
    /// The GraphQL cost limit (`THROTTLED`).
    Throttled,
    /// Any other user error: the request is wrong and retrying will not help.
    Refused(String),
}

/// Reads the response body of [`set_quantities_request`].
pub fn read_answer(body: &Value, updates: &[AvailabilityUpdate]) -> SetQuantitiesAnswer {
    if let Some(errors) = body["errors"].as_array() {
        if errors.iter().any(|e| e["extensions"]["code"] == "THROTTLED") {
            return SetQuantitiesAnswer::Throttled;
        }
        return SetQuantitiesAnswer::Refused(body["errors"].to_string());
    }
    let user_errors = body["data"]["inventorySetQuantities"]["userErrors"].as_array().cloned().unwrap_or_default();
    if user_errors.is_empty() {
        return if body["data"]["inventorySetQuantities"].is_object() {
            SetQuantitiesAnswer::Applied
        } else {
            SetQuantitiesAnswer::Refused(format!("not an inventorySetQuantities answer: {body}"))
        };
    }
    if user_errors.iter().all(|e| e["code"] == "COMPARE_QUANTITY_STALE") {
        // `field` is ["input", "quantities", "<index>", "compareQuantity"].
        let stale = user_errors
            .iter()
            .filter_map(|e| e["field"].get(2).and_then(Value::as_str).and_then(|i| i.parse::<usize>().ok()))
            .filter_map(|i| updates.get(i).map(|u| u.channel_item.clone()))
            .collect();
        return SetQuantitiesAnswer::Stale(stale);
    }
    SetQuantitiesAnswer::Refused(Value::Array(user_errors).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(item: &str, previous: i64, available: i64) -> AvailabilityUpdate {
        AvailabilityUpdate {
            sku: item.into(),
            channel_item: format!("gid://shopify/InventoryItem/{item}"),
            previous,
            available,
        }
    }

    #[test]
    fn requests_compare_against_the_figure_last_published() {
        let body = set_quantities_request(
            "gid://shopify/Location/9",
            &[update("1", 5, 3), update("2", 0, -2)],
            true,
            "ordo://outbox/7",
        );
        let input = &body["variables"]["input"];
        assert_eq!(input["name"], "available");
        assert_eq!(input["ignoreCompareQuantity"], false);
        assert_eq!(input["quantities"][0]["compareQuantity"], 5);
        assert_eq!(input["quantities"][0]["quantity"], 3);
        // Oversold: advertised as 0.
        assert_eq!(input["quantities"][1]["quantity"], 0);
        let forced = set_quantities_request("gid://shopify/Location/9", &[update("1", 5, 3)], false, "r");
        assert_eq!(forced["variables"]["input"]["ignoreCompareQuantity"], true);
        assert!(forced["variables"]["input"]["quantities"][0].get("compareQuantity").is_none());
    }

    #[test]
    fn answers_are_read_into_what_the_relay_does() {
        let updates = [update("1", 5, 3), update("2", 1, 4)];
        let ok = json!({"data": {"inventorySetQuantities": {"inventoryAdjustmentGroup": null, "userErrors": []}}});
        assert_eq!(read_answer(&ok, &updates), SetQuantitiesAnswer::Applied);
        let stale = json!({"data": {"inventorySetQuantities": {"userErrors": [
            {"code": "COMPARE_QUANTITY_STALE", "field": ["input", "quantities", "1", "compareQuantity"], "message": "stale"}]}}});
        assert_eq!(
            read_answer(&stale, &updates),
            SetQuantitiesAnswer::Stale(vec!["gid://shopify/InventoryItem/2".into()])
        );
        let throttled = json!({"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}]});
        assert_eq!(read_answer(&throttled, &updates), SetQuantitiesAnswer::Throttled);
        let bad = json!({"data": {"inventorySetQuantities": {"userErrors": [{"code": "INVALID_LOCATION", "field": ["input"], "message": "no"}]}}});
        assert!(
            matches!(read_answer(&bad, &updates), SetQuantitiesAnswer::Refused(m) if m.contains("INVALID_LOCATION"))
        );
    }
}
