//! Shopify orders — the REST Order resource, as `orders/create` and `orders/updated` webhooks
//! deliver it and as `GET /orders/{id}.json` wraps it (`{"order": …}`) — mapped to the canonical
//! order, and the webhook's signature checked.
//!
//! Money is decimal text (`"199.00"`, sometimes `"5.5"`, sometimes a JSON number): read exactly in
//! the order's currency, never through a float. Ids exceed 2^53 and are kept as text. A line's
//! item is its `sku` when it has one, else its `variant_id` as a listing (mapped to a SKU by the
//! channel's listings). Times carry the shop's offset and become UTC instants.

use hmac::{Hmac, Mac};
use ordo_domain::catalog::GeoPoint;
use ordo_domain::orders::model::{
    AccountStatus, Customer, FraudAssessment, FulfillmentIntent, LineItem, Order, OrderLine, PaymentStatus,
    PostalAddress, ServiceLevel, Shipping, TaxLine,
};
use ordo_types::{ChannelCode, CurrencyCode, Timestamp};
use serde_json::Value;
use sha2::Sha256;

use crate::{FormatError, json_document, json_text, json_text_of};

/// Whether `signature` (the `X-Shopify-Hmac-Sha256` header: base64 of HMAC-SHA256 over the raw
/// body, keyed by the app's secret) is right for `body`. Constant-time.
pub fn verify_webhook(secret: &[u8], body: &[u8], signature: &str) -> bool {
    use base64::Engine as _;
    let Ok(expected) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// A Shopify order as the canonical order, and whether Shopify has cancelled it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShopifyOrder {
    pub order: Order,
    pub cancelled: bool,
}

/// Shopify's webhook signature check as a [`crate::WebhookVerifier`]: `X-Shopify-Hmac-Sha256`
/// under the app's secret.
pub struct ShopifyWebhooks<'a> {
    pub secret: &'a [u8],
}

impl crate::WebhookVerifier for ShopifyWebhooks<'_> {
    fn verify(&self, body: &[u8], header: &dyn Fn(&str) -> Option<String>) -> bool {
        header("x-shopify-hmac-sha256").is_some_and(|signature| verify_webhook(self.secret, body, signature.trim()))
    }
}

/// Maps a webhook body or a REST `{"order": …}` document of `channel`.
pub fn parse(text: &str, channel: ChannelCode) -> Result<ShopifyOrder, FormatError> {
    let document = json_document(text)?;
    let o = document.get("order").unwrap_or(&document);
    let missing = |path: &str| FormatError::field(path, &Value::Null, "missing");
    let text_of = json_text_of;
    let get_text = json_text;
    let id = get_text("id", &o["id"])?;
    let currency_text = get_text("currency", &o["currency"])?;
    let currency = CurrencyCode::new(&currency_text)
        .map_err(|_| FormatError::field("currency", &o["currency"], "not an ISO 4217 code"))?;
    let money = |path: &str, v: &Value| -> Result<i64, FormatError> {
        let t = get_text(path, v)?;
        ordo_types::parse_decimal(&t, currency.exponent()).map_err(|e| FormatError::field(path, v, e.to_string()))
    };
    let money_or_zero =
        |path: &str, v: &Value| -> Result<i64, FormatError> { if v.is_null() { Ok(0) } else { money(path, v) } };
    let instant = |path: &str, v: &Value| -> Result<Timestamp, FormatError> {
        let t = get_text(path, v)?;
        chrono::DateTime::parse_from_rfc3339(&t)
            .map(|d| Timestamp::from_millis(d.timestamp_millis()))
            .map_err(|_| FormatError::field(path, v, "expected an ISO 8601 time with offset"))
    };
    let placed_at = instant("created_at", &o["created_at"])?;
    let updated_at = if o["updated_at"].is_null() { placed_at } else { instant("updated_at", &o["updated_at"])? };
    let mut lines = Vec::new();
    let items = o["line_items"].as_array().ok_or_else(|| missing("line_items"))?;
    for (n, l) in items.iter().enumerate() {
        let at = |f: &str| format!("line_items[{n}].{f}");
        let item = match l["sku"].as_str().map(str::trim).filter(|s| !s.is_empty()) {
            Some(sku) => LineItem::Sku(
                ordo_types::Sku::new(sku).map_err(|e| FormatError::field(&at("sku"), &l["sku"], e.to_string()))?,
            ),
            None => LineItem::Listing(get_text(&at("variant_id"), &l["variant_id"])?),
        };
        let quantity = l["quantity"]
            .as_i64()
            .filter(|q| *q > 0)
            .ok_or_else(|| FormatError::field(&at("quantity"), &l["quantity"], "expected a positive whole number"))?;
        let mut tax_lines = Vec::new();
        for (k, t) in l["tax_lines"].as_array().into_iter().flatten().enumerate() {
            let tat = |f: &str| format!("line_items[{n}].tax_lines[{k}].{f}");
            let rate = text_of(&t["rate"]).unwrap_or_default();
            tax_lines.push(TaxLine {
                jurisdiction: get_text(&tat("title"), &t["title"])?,
                rate_bp: ordo_types::parse_decimal(&rate, 4)
                    .ok()
                    .and_then(|r| u32::try_from(r).ok())
                    .ok_or_else(|| FormatError::field(&tat("rate"), &t["rate"], "expected a rate such as 0.06"))?,
                amount_minor: money(&tat("price"), &t["price"])?,
                channel_collected: t["channel_liable"].as_bool().unwrap_or(false),
            });
        }
        lines.push(OrderLine {
            line_id: get_text(&at("id"), &l["id"])?,
            item,
            quantity,
            uom: ordo_domain::catalog::BASE_UOM.to_owned(),
            unit_price_minor: money(&at("price"), &l["price"])?,
            discount_minor: money_or_zero(&at("total_discount"), &l["total_discount"])?,
            tax_lines,
        });
    }
    let address = |a: &Value, path: &str| -> Result<PostalAddress, FormatError> {
        let s = |f: &str| a[f].as_str().unwrap_or_default().to_owned();
        let geo = match (text_of(&a["latitude"]), text_of(&a["longitude"])) {
            (Some(lat), Some(lon)) => {
                let micro = |t: &str, f: &str| {
                    ordo_types::parse_decimal(t, 6)
                        .ok()
                        .and_then(|v| i32::try_from(v).ok())
                        .ok_or_else(|| FormatError::field(&format!("{path}.{f}"), &a[f], "expected degrees"))
                };
                Some(GeoPoint { latitude_micro: micro(&lat, "latitude")?, longitude_micro: micro(&lon, "longitude")? })
            }
            _ => None,
        };
        Ok(PostalAddress {
            name: s("name"),
            line1: s("address1"),
            line2: s("address2"),
            city: s("city"),
            region: if s("province_code").is_empty() { s("province") } else { s("province_code") },
            postal_code: s("zip"),
            country: if s("country_code").is_empty() { s("country") } else { s("country_code") },
            geo,
        })
    };
    let ship_to = if o["shipping_address"].is_object() {
        address(&o["shipping_address"], "shipping_address")?
    } else {
        PostalAddress::default()
    };
    let bill_to =
        if o["billing_address"].is_object() { Some(address(&o["billing_address"], "billing_address")?) } else { None };
    let c = &o["customer"];
    let customer = Customer {
        id: text_of(&c["id"]).unwrap_or_else(|| "guest".into()),
        name: [c["first_name"].as_str(), c["last_name"].as_str()].into_iter().flatten().collect::<Vec<_>>().join(" "),
        email: o["email"].as_str().map(str::to_owned),
        account_status: AccountStatus::Active,
    };
    let method = o["shipping_lines"]
        .as_array()
        .and_then(|s| s.first())
        .and_then(|s| s["code"].as_str().or(s["title"].as_str()))
        .unwrap_or("standard")
        .to_owned();
    let payment_status = match o["financial_status"].as_str().unwrap_or("pending") {
        "authorized" => PaymentStatus::Authorized,
        "paid" | "partially_paid" => PaymentStatus::Captured,
        "refunded" | "partially_refunded" => PaymentStatus::Refunded,
        "voided" => PaymentStatus::Failed,
        _ => PaymentStatus::Pending,
    };
    let tags = o["tags"]
        .as_str()
        .map(|t| t.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    Ok(ShopifyOrder {
        order: Order {
            channel,
            channel_order_id: id,
            channel_updated_at: updated_at,
            placed_at,
            customer,
            ship_to,
            bill_to,
            lines,
            shipping: Shipping { method, service_level: ServiceLevel::Standard, ship_by: None, deliver_by: None },
            payment_status,
            fraud: FraudAssessment::default(),
            fulfillment: FulfillmentIntent::Ship { ship_from_store_allowed: false },
            currency,
            tags,
        },
        cancelled: !o["cancelled_at"].is_null(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_hmac_vector_verifies_and_a_changed_byte_does_not() {
        let body = br#"{"id":1234567890,"email":"customer@example.com","total_price":"123.45"}"#;
        let signature = "QNyObTlKbMx2qDlPF/ZOZcBqg5OgPg+2oky3zldc0Gw=";
        assert!(verify_webhook(b"test-webhook-secret", body, signature));
        assert!(!verify_webhook(b"test-webhook-secret", &body[..body.len() - 1], signature));
        assert!(!verify_webhook(b"another-secret", body, signature));
        assert!(!verify_webhook(b"test-webhook-secret", body, "not base64!"));
    }
}
