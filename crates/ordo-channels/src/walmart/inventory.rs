//! Walmart availability: the bulk inventory feed (`feedType=inventory`), one entry per SKU.

use serde_json::{Value, json};

use crate::availability::{AvailabilityUpdate, advertised};

pub fn inventory_feed(updates: &[AvailabilityUpdate]) -> Value {
    let items: Vec<Value> = updates
        .iter()
        .map(|u| json!({"sku": u.channel_item, "quantity": {"unit": "EACH", "amount": advertised(u.available)}}))
        .collect();
    json!({"InventoryHeader": {"version": "1.4"}, "Inventory": items})
}
