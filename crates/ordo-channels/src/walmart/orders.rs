//! Walmart Marketplace orders (`GET /v3/orders/{purchaseOrderId}`, `{"order": …}`, or one element
//! of a list's `elements.order`) mapped to the canonical order.
//!
//! Money is a JSON number (`10`, `0.8`), read exactly from its text; quantities are strings;
//! times are epoch milliseconds. A line's PRODUCT charge is the line's amount (its quantity's
//! worth); other charges (shipping) are not booked yet. Walmart is a marketplace facilitator:
//! the tax it lists is collected and remitted by Walmart (`channel_collected`). The method code
//! gives the service level (Value → economy, Standard, Express → two-day, OneDay → next-day).

use ordo_domain::orders::model::{
    AccountStatus, Customer, FraudAssessment, FulfillmentIntent, LineItem, Order, OrderLine, PaymentStatus,
    PostalAddress, ServiceLevel, Shipping, TaxLine,
};
use ordo_types::{ChannelCode, CurrencyCode, Timestamp};
use serde_json::Value;

use crate::{FormatError, json_document, json_text as text};

fn millis(path: &str, v: &Value) -> Result<Timestamp, FormatError> {
    v.as_i64().map(Timestamp::from_millis).ok_or_else(|| FormatError::field(path, v, "expected epoch milliseconds"))
}

/// ISO 3166 alpha-3 codes Walmart writes, as the alpha-2 codes Ordo's tax and address rules use.
fn country(code: &str) -> String {
    match code {
        "USA" => "US".into(),
        "CAN" => "CA".into(),
        "MEX" => "MX".into(),
        other => other.to_owned(),
    }
}

pub fn parse(text_in: &str, channel: ChannelCode) -> Result<Order, FormatError> {
    let document = json_document(text_in)?;
    let o = document.get("order").unwrap_or(&document);
    let id = text("purchaseOrderId", &o["purchaseOrderId"])?;
    let placed_at = millis("orderDate", &o["orderDate"])?;
    let info = &o["shippingInfo"];
    let a = &info["postalAddress"];
    let s = |f: &str| a[f].as_str().unwrap_or_default().to_owned();
    let ship_to = PostalAddress {
        name: s("name"),
        line1: s("address1"),
        line2: s("address2"),
        city: s("city"),
        region: s("state"),
        postal_code: s("postalCode"),
        country: country(&s("country")),
        geo: None,
    };
    let method = info["methodCode"].as_str().unwrap_or("Standard").to_owned();
    let service_level = match method.as_str() {
        "Value" => ServiceLevel::Economy,
        "Express" => ServiceLevel::TwoDay,
        "OneDay" | "NextDay" => ServiceLevel::NextDay,
        _ => ServiceLevel::Standard,
    };
    let ship_by = if info["estimatedShipDate"].is_null() {
        None
    } else {
        Some(millis("shippingInfo.estimatedShipDate", &info["estimatedShipDate"])?)
    };
    let deliver_by = if info["estimatedDeliveryDate"].is_null() {
        None
    } else {
        Some(millis("shippingInfo.estimatedDeliveryDate", &info["estimatedDeliveryDate"])?.date())
    };
    let mut currency: Option<CurrencyCode> = None;
    let mut lines = Vec::new();
    let items = o["orderLines"]["orderLine"]
        .as_array()
        .ok_or_else(|| FormatError::field("orderLines.orderLine", &Value::Null, "missing"))?;
    for (n, l) in items.iter().enumerate() {
        let at = |f: &str| format!("orderLines.orderLine[{n}].{f}");
        let quantity_text = text(&at("orderLineQuantity.amount"), &l["orderLineQuantity"]["amount"])?;
        let quantity: i64 = quantity_text.parse().ok().filter(|q| *q > 0).ok_or_else(|| {
            FormatError::field(
                &at("orderLineQuantity.amount"),
                &l["orderLineQuantity"]["amount"],
                "expected a positive whole number",
            )
        })?;
        let charges = l["charges"]["charge"].as_array().cloned().unwrap_or_default();
        let product = charges
            .iter()
            .position(|c| c["chargeType"] == "PRODUCT")
            .ok_or_else(|| FormatError::field(&at("charges.charge"), &l["charges"], "no PRODUCT charge"))?;
        let c = &charges[product];
        let cat = |f: &str| at(&format!("charges.charge[{product}].{f}"));
        let line_currency = CurrencyCode::new(&text(&cat("chargeAmount.currency"), &c["chargeAmount"]["currency"])?)
            .map_err(|_| {
                FormatError::field(
                    &cat("chargeAmount.currency"),
                    &c["chargeAmount"]["currency"],
                    "not an ISO 4217 code",
                )
            })?;
        if currency.is_some_and(|cur| cur != line_currency) {
            return Err(FormatError::field(
                &cat("chargeAmount.currency"),
                &c["chargeAmount"]["currency"],
                "one order, one currency",
            ));
        }
        currency = Some(line_currency);
        let exponent = line_currency.exponent();
        let amount_text = text(&cat("chargeAmount.amount"), &c["chargeAmount"]["amount"])?;
        let amount = ordo_types::parse_decimal(&amount_text, exponent).map_err(|e| {
            FormatError::field(&cat("chargeAmount.amount"), &c["chargeAmount"]["amount"], e.to_string())
        })?;
        if amount % quantity != 0 {
            return Err(FormatError::field(
                &cat("chargeAmount.amount"),
                &c["chargeAmount"]["amount"],
                "does not divide by the quantity",
            ));
        }
        let mut tax_lines = Vec::new();
        if !c["tax"].is_null() {
            let tax_text = text(&cat("tax.taxAmount.amount"), &c["tax"]["taxAmount"]["amount"])?;
            tax_lines.push(TaxLine {
                jurisdiction: c["tax"]["taxName"].as_str().unwrap_or("tax").to_owned(),
                rate_bp: 0,
                amount_minor: ordo_types::parse_decimal(&tax_text, exponent).map_err(|e| {
                    FormatError::field(&cat("tax.taxAmount.amount"), &c["tax"]["taxAmount"]["amount"], e.to_string())
                })?,
                channel_collected: true,
            });
        }
        lines.push(OrderLine {
            line_id: text(&at("lineNumber"), &l["lineNumber"])?,
            item: LineItem::Sku(
                ordo_types::Sku::new(text(&at("item.sku"), &l["item"]["sku"])?)
                    .map_err(|e| FormatError::field(&at("item.sku"), &l["item"]["sku"], e.to_string()))?,
            ),
            quantity,
            uom: ordo_domain::catalog::BASE_UOM.to_owned(),
            unit_price_minor: amount / quantity,
            discount_minor: 0,
            tax_lines,
        });
    }
    let currency = currency
        .ok_or_else(|| FormatError::field("orderLines.orderLine", &Value::Null, "an order needs at least one line"))?;
    Ok(Order {
        channel,
        channel_order_id: id,
        channel_updated_at: placed_at,
        placed_at,
        customer: Customer {
            id: text("customerOrderId", &o["customerOrderId"]).unwrap_or_else(|_| "walmart".into()),
            name: ship_to.name.clone(),
            email: o["customerEmailId"].as_str().map(str::to_owned),
            account_status: AccountStatus::Active,
        },
        ship_to,
        bill_to: None,
        lines,
        shipping: Shipping { method, service_level, ship_by, deliver_by },
        payment_status: PaymentStatus::Captured,
        fraud: FraudAssessment::default(),
        fulfillment: FulfillmentIntent::Ship { ship_from_store_allowed: false },
        currency,
        tags: Vec::new(),
    })
}
