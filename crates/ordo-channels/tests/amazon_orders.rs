//! Amazon SP-API orders: the public getOrders and getOrderItems samples read, exact money (a JPY
//! amount with decimals refused, naming the field), ItemPrice as the line's whole price, FBA
//! orders marked fulfilled by the channel, and pairing by AmazonOrderId.

use std::path::PathBuf;

use ordo_channels::amazon::orders::{items_of, map, orders_of, pair};
use ordo_domain::orders::model::{FulfillmentIntent, LineItem, PaymentStatus, ServiceLevel};
use ordo_types::Code;
use serde_json::json;

fn sample(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/samples/amazon").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("the public sample at {path:?}: {e}"))
}

fn channel() -> Code {
    Code::new("AMAZON-US").unwrap()
}

fn items(order_id: &str, lines: serde_json::Value) -> String {
    json!({"payload": {"AmazonOrderId": order_id, "OrderItems": lines}}).to_string()
}

#[test]
fn the_public_get_orders_sample_maps_with_its_items() {
    let orders = orders_of(&sample("spapi_ordersV0_getOrders_doc_example.json")).unwrap();
    assert_eq!(orders.len(), 1);
    let lines = json!([{"ASIN": "B00TEE", "SellerSKU": "TEE-M", "OrderItemId": "68828574383266", "QuantityOrdered": 3,
        "ItemPrice": {"CurrencyCode": "USD", "Amount": "10.00"},
        "ItemTax": {"CurrencyCode": "USD", "Amount": "0.60"},
        "PromotionDiscount": {"CurrencyCode": "USD", "Amount": "1.00"}}]);
    let (order, cancelled) = map(&orders[0], 0, lines.as_array().unwrap(), channel()).unwrap();
    assert!(!cancelled);
    assert_eq!(order.channel_order_id, "902-3159896-1390916");
    assert_eq!(order.placed_at.to_string(), "2017-01-20T19:49:35.000Z");
    assert_eq!(
        (order.ship_to.city.as_str(), order.ship_to.region.as_str(), order.ship_to.country.as_str()),
        ("Canton", "MI", "US")
    );
    assert_eq!(order.customer.name, "John Doe");
    assert_eq!(order.shipping.service_level, ServiceLevel::Standard);
    assert_eq!(order.shipping.ship_by.unwrap().to_string(), "2017-01-25T19:49:35.000Z");
    // Pending: Amazon has not taken the payment yet.
    assert_eq!(order.payment_status, PaymentStatus::Pending);
    assert_eq!(order.fulfillment, FulfillmentIntent::Ship { ship_from_store_allowed: false });
    let line = &order.lines[0];
    assert_eq!(line.item, LineItem::Sku(ordo_types::Sku::new("TEE-M").unwrap()));
    // ItemPrice is for all 3: 10.00 / 3 → 3.34 each, 0.02 of rounding back as discount, plus
    // the 1.00 promotion: the line's net is exactly 10.00 − 1.00.
    assert_eq!((line.unit_price_minor, line.discount_minor), (334, 102));
    assert_eq!(order.net_minor(), 900);
    assert_eq!(line.tax_lines[0].amount_minor, 60);
    assert!(line.tax_lines[0].channel_collected, "Amazon collects and remits it");
    insta::assert_snapshot!(serde_json::to_string_pretty(&order).unwrap());
}

#[test]
fn the_public_get_order_items_sample_is_refused_where_its_money_is_not_exact() {
    let (id, lines) = items_of(&sample("spapi_ordersV0_getOrderItems_doc_example.json")).unwrap();
    assert_eq!(id, "903-1671087-0812628");
    assert_eq!(lines.len(), 2);
    let order = json!({"AmazonOrderId": id, "PurchaseDate": "2013-09-05T01:30:00Z", "OrderStatus": "Unshipped",
        "FulfillmentChannel": "MFN", "ShippingAddress": {"Name": "Taro", "City": "Tokyo", "CountryCode": "JP"}});
    // The sample's prices are JPY with two decimals: yen have none.
    let err = map(&order, 0, &lines, channel()).unwrap_err();
    assert_eq!(err.column.as_deref(), Some("payload.OrderItems[0].ItemPrice.Amount"));
    assert_eq!(err.value.as_deref(), Some("25.99"));
    assert!(err.message.contains("more decimal places than the currency has"), "{err}");
}

#[test]
fn fba_orders_are_the_channels_to_fulfil_and_orders_pair_with_their_items() {
    let orders = json!({"payload": {"Orders": [
        {"AmazonOrderId": "111-1", "PurchaseDate": "2026-11-20T10:00:00Z", "LastUpdateDate": "2026-11-20T11:00:00Z",
         "OrderStatus": "Unshipped", "FulfillmentChannel": "MFN", "ShipmentServiceLevelCategory": "NextDay",
         "OrderTotal": {"CurrencyCode": "USD", "Amount": "24.00"},
         "ShippingAddress": {"Name": "A", "AddressLine1": "1 Main St", "City": "Brooklyn", "StateOrRegion": "NY", "PostalCode": "11201", "CountryCode": "US"}},
        {"AmazonOrderId": "111-2", "PurchaseDate": "2026-11-20T10:05:00Z", "OrderStatus": "Shipped", "FulfillmentChannel": "AFN",
         "OrderTotal": {"CurrencyCode": "USD", "Amount": "12.00"},
         "ShippingAddress": {"Name": "B", "City": "Austin", "StateOrRegion": "TX", "CountryCode": "US"}},
        {"AmazonOrderId": "111-3", "PurchaseDate": "2026-11-20T10:06:00Z", "OrderStatus": "Canceled", "FulfillmentChannel": "MFN",
         "OrderTotal": {"CurrencyCode": "USD", "Amount": "12.00"},
         "ShippingAddress": {"Name": "C", "City": "Austin", "StateOrRegion": "TX", "CountryCode": "US"}}
    ]}})
    .to_string();
    let line = |id: &str, qty: i64, amount: &str| {
        json!([{"OrderItemId": id, "SellerSKU": "MUG", "ASIN": "B0MUG", "QuantityOrdered": qty,
        "ItemPrice": {"CurrencyCode": "USD", "Amount": amount}}])
    };
    let files = [
        items("111-2", line("9", 1, "12.00")),
        items("111-1", line("7", 2, "24.00")),
        items("111-3", line("8", 1, "12.00")),
    ];
    let mapped = pair(std::slice::from_ref(&orders), &files, &channel()).unwrap();
    let summary: Vec<(String, bool, bool, ServiceLevel, PaymentStatus)> = mapped
        .iter()
        .map(|(o, c)| {
            (
                o.channel_order_id.clone(),
                *c,
                o.fulfillment == FulfillmentIntent::ByChannel,
                o.shipping.service_level,
                o.payment_status,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("111-1".into(), false, false, ServiceLevel::NextDay, PaymentStatus::Captured),
            ("111-2".into(), false, true, ServiceLevel::Standard, PaymentStatus::Captured),
            ("111-3".into(), true, false, ServiceLevel::Standard, PaymentStatus::Captured),
        ]
    );
    assert_eq!(mapped[0].0.lines[0].unit_price_minor, 1200);
    // An order whose items were not given is refused by name.
    let err = pair(&[orders], &files[..2], &channel()).unwrap_err();
    assert!(err.message.contains("no getOrderItems answer"), "{err}");
    assert_eq!(err.value.as_deref(), Some("111-3"));
}
