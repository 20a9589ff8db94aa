//! `ordo import amazon-order`: getOrders and getOrderItems files paired by AmazonOrderId; a
//! merchant-fulfilled order reserves Ordo's stock, an FBA order is recorded without touching it,
//! a cancelled one ends cancelled, and the same files again change nothing.

mod common;

use common::{Db, retailer};
use serde_json::json;

#[test]
fn amazon_orders_are_captured_and_fba_reserves_nothing() {
    let db = Db::new();
    retailer(&db, "AMAZON-US", "amazon", "EAST");
    db.ok(&["move", "receipt", "--sku", "MUG", "--location", "EAST", "--quantity", "10"]);
    let dir = tempfile::tempdir().unwrap();
    let settings = dir.path().join("settings.json");
    std::fs::write(
        &settings,
        json!([
            {"listing": {"channel": "AMAZON-US", "listing": "AMZ-MUG-1", "sku": "MUG"}},
            {"shipping_methods": {"channel": "AMAZON-US", "methods": ["Std US D2D Dom", "Standard"]}},
            {"taxable": {"country": "US", "region": "", "taxable": false}},
            {"node": {"location": "EAST", "settings": {"cutoff_local": [16, 0], "daily_capacity": 100,
                      "cost_per_shipment_minor": 300, "cost_per_unit_minor": 20}}}
        ])
        .to_string(),
    )
    .unwrap();
    db.ok(&["order", "settings", "--file", settings.to_str().unwrap()]);
    let address = json!({"Name": "A", "AddressLine1": "1 Main St", "City": "Brooklyn", "StateOrRegion": "NY",
                         "PostalCode": "11201", "CountryCode": "US"});
    let order = |id: &str, status: &str, channel: &str| {
        json!({"AmazonOrderId": id, "PurchaseDate": "2026-11-20T10:00:00Z", "LastUpdateDate": "2026-11-20T11:00:00Z",
               "OrderStatus": status, "FulfillmentChannel": channel, "ShipServiceLevel": "Std US D2D Dom",
               "OrderTotal": {"CurrencyCode": "USD", "Amount": "24.00"}, "ShippingAddress": address})
    };
    let orders = dir.path().join("orders.json");
    std::fs::write(
        &orders,
        json!({"payload": {"Orders": [order("111-1", "Unshipped", "MFN"), order("111-2", "Shipped", "AFN"), order("111-3", "Canceled", "MFN")]}})
            .to_string(),
    )
    .unwrap();
    let mut files = vec![orders.to_str().unwrap().to_owned()];
    for (n, id) in ["111-1", "111-2", "111-3"].iter().enumerate() {
        let path = dir.path().join(format!("items-{n}.json"));
        // The seller SKU is the channel's: mapped to Ordo's MUG by the listing.
        let items = json!({"payload": {"AmazonOrderId": id, "OrderItems": [{"OrderItemId": format!("{n}1"), "SellerSKU": "AMZ-MUG-1",
            "ASIN": "B0MUG", "QuantityOrdered": 2, "ItemPrice": {"CurrencyCode": "USD", "Amount": "24.00"}}]}});
        std::fs::write(&path, items.to_string()).unwrap();
        files.push(path.to_str().unwrap().to_owned());
    }
    let mut args = vec!["import", "amazon-order"];
    args.extend(files.iter().map(String::as_str));
    let out = db.ok(&args);
    assert!(out.contains("AMAZON-US/111-1: allocated"), "{out}");
    assert!(out.contains("AMAZON-US/111-2: validated"), "{out}");
    assert!(out.contains("AMAZON-US/111-3: cancelled"), "{out}");
    // Only the merchant-fulfilled order holds Ordo's stock: 10 − 2.
    let ats = db.json(&["ats", "--channel", "AMAZON-US", "--sku", "MUG", "--json"]);
    assert_eq!(ats[0]["ats"], 8);
    let fba = db.json(&["order", "show", "AMAZON-US/111-2", "--json"]);
    assert_eq!(fba["lines"][0]["reservations"], json!([]));
    assert_eq!(fba["order"]["fulfillment"], "by_channel");
    // The channel's own formats for a full resync, under the channel's ids.
    let feed =
        db.json(&["export", "availability", "--channel", "AMAZON-US", "--format", "amazon", "--seller-id", "A1SELLER"]);
    let mug = feed["messages"].as_array().unwrap().iter().find(|m| m["sku"] == "AMZ-MUG-1").unwrap();
    assert_eq!(mug["patches"][0]["value"][0]["quantity"], 8);
    assert_eq!(feed["header"]["sellerId"], "A1SELLER");
    let walmart = db.json(&["export", "availability", "--channel", "AMAZON-US", "--format", "walmart"]);
    assert!(
        walmart["Inventory"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["sku"] == "AMZ-MUG-1" && i["quantity"]["amount"] == 8)
    );
    let err = db.refused(&["export", "availability", "--channel", "AMAZON-US", "--format", "shopify"]);
    assert!(err.contains("--location-gid"), "{err}");
    let shopify = db.json(&[
        "export",
        "availability",
        "--channel",
        "AMAZON-US",
        "--format",
        "shopify",
        "--location-gid",
        "gid://shopify/Location/1",
    ]);
    assert_eq!(shopify[0]["variables"]["input"]["ignoreCompareQuantity"], true);
    let before = db.journal_seq();
    let again = db.run(&args);
    assert!(again.status.success());
    let said = String::from_utf8_lossy(&again.stderr);
    assert_eq!(said.matches("already captured with this content").count(), 3, "{said}");
    assert_eq!(db.journal_seq(), before, "the same files again change nothing");
}
