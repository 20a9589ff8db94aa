//! Amazon availability: a `JSON_LISTINGS_FEED` of `PATCH` messages replacing each SKU's
//! `fulfillment_availability` (merchant-fulfilled, channel code `DEFAULT`). FBA listings are
//! Amazon's stock, never Ordo's to set.

use serde_json::{Value, json};

use crate::availability::{AvailabilityUpdate, advertised};

pub fn listings_feed(seller_id: &str, product_type: &str, updates: &[AvailabilityUpdate]) -> Value {
    let messages: Vec<Value> = updates
        .iter()
        .enumerate()
        .map(|(n, u)| {
            json!({
                "messageId": n + 1,
                "sku": u.channel_item,
                "operationType": "PATCH",
                "productType": product_type,
                "patches": [{
                    "op": "replace",
                    "path": "/attributes/fulfillment_availability",
                    "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": advertised(u.available)}]
                }]
            })
        })
        .collect();
    json!({"header": {"sellerId": seller_id, "version": "2.0", "issueLocale": "en_US"}, "messages": messages})
}
