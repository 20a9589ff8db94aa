//! The public Shopify order sample mapped to the canonical order, field by field, and bad
//! payloads refused with the field and value.

use std::path::PathBuf;

use ordo_channels::shopify::orders::parse;
use ordo_domain::orders::model::{LineItem, PaymentStatus};
use ordo_types::Code;

fn sample() -> String {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/samples/shopify/shopify_python_api_order.json");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("the public sample at {path:?}: {e}"))
}

#[test]
fn the_public_order_sample_maps_to_the_canonical_order() {
    let mapped = parse(&sample(), Code::new("SHOPIFY-DTC").unwrap()).unwrap();
    let o = &mapped.order;
    assert_eq!(o.channel_order_id, "450789469");
    // 2008-01-10T11:00:00-05:00 is 16:00 UTC.
    assert_eq!(o.placed_at.to_string(), "2008-01-10T16:00:00.000Z");
    assert_eq!(o.currency.as_str(), "USD");
    assert_eq!(o.payment_status, PaymentStatus::Authorized);
    assert_eq!(o.shipping.method, "Free Shipping");
    assert_eq!(
        (o.ship_to.city.as_str(), o.ship_to.region.as_str(), o.ship_to.country.as_str()),
        ("Louisville", "KY", "US")
    );
    assert_eq!(o.ship_to.geo.map(|g| (g.latitude_micro, g.longitude_micro)), Some((45_416_340, -75_686_800)));
    assert_eq!(o.lines[0].item, LineItem::Sku(ordo_types::Sku::new("IPOD2008GREEN").unwrap()));
    assert_eq!((o.lines[0].quantity, o.lines[0].unit_price_minor), (1, 19_900));
    assert!(!mapped.cancelled);
    // The REST wrapper and the bare webhook body map the same.
    let value: serde_json::Value = serde_json::from_str(&sample()).unwrap();
    let bare = value.get("order").unwrap_or(&value).to_string();
    assert_eq!(parse(&bare, Code::new("SHOPIFY-DTC").unwrap()).unwrap(), mapped);
}

#[test]
fn bad_payloads_name_the_field_and_value() {
    let channel = || Code::new("SHOPIFY-DTC").unwrap();
    let bad_price = sample().replacen("\"199.00\"", "\"19x.00\"", 1);
    let e = parse(&bad_price, channel()).unwrap_err();
    assert_eq!((e.column.as_deref(), e.value.as_deref()), (Some("line_items[0].price"), Some("19x.00")), "{e}");
    let e = parse(&sample().replacen("\"currency\": \"USD\"", "\"currency\": \"usd\"", 1), channel()).unwrap_err();
    assert_eq!(e.column.as_deref(), Some("currency"), "{e}");
    assert!(parse("{\"order\": {}}", channel()).unwrap_err().to_string().contains("id"));
    assert!(parse("not json", channel()).unwrap_err().message.contains("not JSON"));
}

#[test]
fn the_walmart_order_sample_maps_with_exact_money_from_json_numbers() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/samples/walmart/walmart_getAnOrder_doc_example.json");
    let text = std::fs::read_to_string(path).unwrap();
    let o = ordo_channels::walmart::orders::parse(&text, Code::new("WALMART").unwrap()).unwrap();
    assert_eq!(o.channel_order_id, "1796277083022");
    assert_eq!(o.placed_at.millis(), 1_568_466_571_000);
    assert_eq!((o.ship_to.region.as_str(), o.ship_to.country.as_str()), ("NY", "US"));
    assert_eq!(o.shipping.service_level, ordo_domain::orders::model::ServiceLevel::Economy);
    assert_eq!(o.lines[0].line_id, "4");
    // `"amount": 10` and a tax of `0.8`: 10.00 and 0.80, exactly, collected by Walmart.
    assert_eq!((o.lines[0].quantity, o.lines[0].unit_price_minor), (1, 1_000));
    assert_eq!((o.lines[0].tax_lines[0].amount_minor, o.lines[0].tax_lines[0].channel_collected), (80, true));
    assert_eq!(o.shipping.deliver_by.unwrap().to_string(), "2019-09-25");
    let bad = text.replacen("\"amount\": 10", "\"amount\": 10.001", 1);
    let e = ordo_channels::walmart::orders::parse(&bad, Code::new("WALMART").unwrap()).unwrap_err();
    assert_eq!(e.column.as_deref(), Some("orderLines.orderLine[0].charges.charge[0].chargeAmount.amount"), "{e}");
}

#[test]
fn the_magento_order_sample_counts_parent_items_only() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/samples/magento/adobe_commerce_GET_V1_orders_3_tutorial.json");
    let text = std::fs::read_to_string(path).unwrap();
    let (o, cancelled) = ordo_channels::magento::orders::parse(&text, Code::new("MAGENTO").unwrap()).unwrap();
    assert!(!cancelled);
    assert_eq!(o.channel_order_id, "000000003");
    assert_eq!(o.placed_at.to_string(), "2017-08-21T22:22:19.000Z");
    // 9 items, 4 of them parents: 22 + 18 + 68 + 52 = 160, the order's subtotal — the bundle's
    // parts and the configurable's child are not lines of their own.
    assert_eq!(o.lines.len(), 4);
    assert_eq!(o.net_minor(), 16_000);
    assert_eq!(o.lines[2].item, LineItem::Listing("51".into()), "a bundle is its product id");
    assert_eq!(o.lines[3].item, LineItem::Sku(ordo_types::Sku::new("MH01-S-Gray").unwrap()));
    assert_eq!((o.ship_to.region.as_str(), o.ship_to.line1.as_str()), ("NY", "123 Oak Ave"));
    assert_eq!(o.payment_status, PaymentStatus::Pending);
}
