//! Magento 2 / Adobe Commerce orders (`GET /V1/orders/{id}`, or one of `GET /V1/orders`'
//! `items`) mapped to the canonical order.
//!
//! Only parent items become lines: a bundle's and a configurable's children repeat their parent
//! (a configurable child carries price 0, a bundle's children carry the parts' prices), so
//! counting them would order — and bill — twice. A simple or configurable parent is its `sku`; a
//! bundle's `sku` is Magento's composite of its parts, so the bundle is its `product_id` as a
//! listing (mapped to the Ordo bundle by the channel's listings). Money is a JSON number read
//! exactly; times are UTC without an offset.

use ordo_domain::orders::model::{
    AccountStatus, Customer, FraudAssessment, FulfillmentIntent, LineItem, Order, OrderLine, PaymentStatus,
    PostalAddress, ServiceLevel, Shipping, TaxLine,
};
use ordo_types::{ChannelCode, CurrencyCode, Timestamp};
use serde_json::Value;

use crate::{FormatError, json_document, json_text as text};

pub fn parse(input: &str, channel: ChannelCode) -> Result<(Order, bool), FormatError> {
    let o = json_document(input)?;
    let currency = CurrencyCode::new(&text("order_currency_code", &o["order_currency_code"])?)
        .map_err(|_| FormatError::field("order_currency_code", &o["order_currency_code"], "not an ISO 4217 code"))?;
    let money = |path: &str, v: &Value| -> Result<i64, FormatError> {
        if v.is_null() {
            return Ok(0);
        }
        ordo_types::parse_decimal(&text(path, v)?, currency.exponent())
            .map_err(|e| FormatError::field(path, v, e.to_string()))
    };
    let time = |path: &str, v: &Value| -> Result<Timestamp, FormatError> {
        let t = text(path, v)?;
        chrono::NaiveDateTime::parse_from_str(&t, "%Y-%m-%d %H:%M:%S")
            .map(|d| Timestamp::from_millis(d.and_utc().timestamp_millis()))
            .map_err(|_| FormatError::field(path, v, "expected YYYY-MM-DD HH:MM:SS (UTC)"))
    };
    let placed_at = time("created_at", &o["created_at"])?;
    let updated_at = if o["updated_at"].is_null() { placed_at } else { time("updated_at", &o["updated_at"])? };
    let shipping = &o["extension_attributes"]["shipping_assignments"][0]["shipping"];
    let a = &shipping["address"];
    let s = |f: &str| a[f].as_str().unwrap_or_default().to_owned();
    let street: Vec<&str> =
        a["street"].as_array().map(|l| l.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    let ship_to = PostalAddress {
        name: format!("{} {}", s("firstname"), s("lastname")).trim().to_owned(),
        line1: street.first().copied().unwrap_or_default().to_owned(),
        line2: street.get(1..).map(|rest| rest.join(", ")).unwrap_or_default(),
        city: s("city"),
        region: s("region_code"),
        postal_code: s("postcode"),
        country: s("country_id"),
        geo: None,
    };
    let mut lines = Vec::new();
    let items = o["items"].as_array().ok_or_else(|| FormatError::field("items", &Value::Null, "missing"))?;
    for (n, item) in items.iter().enumerate().filter(|(_, i)| i["parent_item_id"].is_null()) {
        let path = |f: &str| format!("items[{n}].{f}");
        let quantity_text = text(&path("qty_ordered"), &item["qty_ordered"])?;
        let quantity = ordo_types::parse_decimal(&quantity_text, 0).ok().filter(|q| *q > 0).ok_or_else(|| {
            FormatError::field(&path("qty_ordered"), &item["qty_ordered"], "expected a positive whole number")
        })?;
        let line_item = if item["product_type"] == "bundle" {
            LineItem::Listing(text(&path("product_id"), &item["product_id"])?)
        } else {
            let sku = text(&path("sku"), &item["sku"])?;
            LineItem::Sku(
                ordo_types::Sku::new(sku).map_err(|e| FormatError::field(&path("sku"), &item["sku"], e.to_string()))?,
            )
        };
        let tax_minor = money(&path("tax_amount"), &item["tax_amount"])?;
        let tax_lines = if tax_minor != 0 {
            let percent = item["tax_percent"].as_f64().map(|p| format!("{p}")).unwrap_or_default();
            vec![TaxLine {
                jurisdiction: format!("{}-{}", ship_to.country, ship_to.region),
                rate_bp: ordo_types::parse_decimal(&percent, 2).ok().and_then(|r| u32::try_from(r).ok()).unwrap_or(0),
                amount_minor: tax_minor,
                channel_collected: false,
            }]
        } else {
            Vec::new()
        };
        lines.push(OrderLine {
            line_id: text(&path("item_id"), &item["item_id"])?,
            item: line_item,
            quantity,
            uom: ordo_domain::catalog::BASE_UOM.to_owned(),
            unit_price_minor: money(&path("price"), &item["price"])?,
            discount_minor: money(&path("discount_amount"), &item["discount_amount"])?,
            tax_lines,
        });
    }
    let state = o["state"].as_str().unwrap_or("new");
    let payment_status = match state {
        "processing" | "complete" | "closed" => PaymentStatus::Captured,
        _ => PaymentStatus::Pending,
    };
    let order = Order {
        channel,
        channel_order_id: text("increment_id", &o["increment_id"])?,
        channel_updated_at: updated_at,
        placed_at,
        customer: Customer {
            id: text("customer_id", &o["customer_id"]).unwrap_or_else(|_| "guest".into()),
            name: [o["customer_firstname"].as_str(), o["customer_lastname"].as_str()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" "),
            email: o["customer_email"].as_str().map(str::to_owned),
            account_status: AccountStatus::Active,
        },
        ship_to,
        bill_to: None,
        lines,
        shipping: Shipping {
            method: shipping["method"].as_str().or(o["shipping_description"].as_str()).unwrap_or("standard").to_owned(),
            service_level: ServiceLevel::Standard,
            ship_by: None,
            deliver_by: None,
        },
        payment_status,
        fraud: FraudAssessment::default(),
        fulfillment: FulfillmentIntent::Ship { ship_from_store_allowed: false },
        currency,
        tags: Vec::new(),
    };
    Ok((order, state == "canceled"))
}
