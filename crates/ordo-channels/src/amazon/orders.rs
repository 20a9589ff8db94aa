//! Amazon SP-API orders: `getOrders` (`payload.Orders[]`) paired with `getOrderItems`
//! (`payload.OrderItems[]`) by `AmazonOrderId`, mapped to the canonical order.
//!
//! Money is `{"CurrencyCode", "Amount"}` with the amount a decimal string, read exactly in the
//! currency's minor units (a JPY amount with decimals is refused, naming the field). `ItemPrice`
//! is the line's price for its whole quantity: the unit price is its share, any remainder a
//! discount, so the line's net is exactly what Amazon charged; `PromotionDiscount` is a discount;
//! `ItemTax` is collected and remitted by Amazon (marketplace facilitator). `AFN` orders are
//! fulfilled by Amazon from its own stock (FBA): recorded, never reserved from Ordo's. A
//! `Pending` order has no payment yet; `Canceled` is captured, then cancelled.

use ordo_domain::orders::model::{
    AccountStatus, Customer, FraudAssessment, FulfillmentIntent, LineItem, Order, OrderLine, PaymentStatus,
    PostalAddress, ServiceLevel, Shipping, TaxLine,
};
use ordo_types::{ChannelCode, CurrencyCode, Sku, Timestamp};
use serde_json::Value;

use crate::{FormatError, json_document, json_text as text};

/// The orders of a `getOrders` answer (`{"payload": {"Orders": […]}}`, or the bare list).
pub fn orders_of(input: &str) -> Result<Vec<Value>, FormatError> {
    let doc = json_document(input)?;
    let list = doc["payload"]["Orders"].as_array().or_else(|| doc["Orders"].as_array()).or_else(|| doc.as_array());
    list.cloned().ok_or_else(|| FormatError::field("payload.Orders", &Value::Null, "missing: not a getOrders answer"))
}

/// The order id and items of a `getOrderItems` answer.
pub fn items_of(input: &str) -> Result<(String, Vec<Value>), FormatError> {
    let doc = json_document(input)?;
    let payload = if doc["payload"].is_object() { &doc["payload"] } else { &doc };
    let id = text("payload.AmazonOrderId", &payload["AmazonOrderId"])?;
    let items = payload["OrderItems"]
        .as_array()
        .cloned()
        .ok_or_else(|| FormatError::field("payload.OrderItems", &Value::Null, "missing: not a getOrderItems answer"))?;
    Ok((id, items))
}

fn time(path: &str, v: &Value) -> Result<Timestamp, FormatError> {
    let t = text(path, v)?;
    chrono::DateTime::parse_from_rfc3339(&t)
        .map(|d| Timestamp::from_millis(d.timestamp_millis()))
        .map_err(|_| FormatError::field(path, v, "expected an ISO 8601 time such as 2026-11-27T10:00:00Z"))
}

/// Maps one order (`orders[index]` of its file) with its items. `true`: cancelled on Amazon.
pub fn map(order: &Value, index: usize, items: &[Value], channel: ChannelCode) -> Result<(Order, bool), FormatError> {
    let at = |f: &str| format!("payload.Orders[{index}].{f}");
    let id = text(&at("AmazonOrderId"), &order["AmazonOrderId"])?;
    let placed_at = time(&at("PurchaseDate"), &order["PurchaseDate"])?;
    let updated_at = if order["LastUpdateDate"].is_null() {
        placed_at
    } else {
        time(&at("LastUpdateDate"), &order["LastUpdateDate"])?
    };
    let currency_text = [&order["OrderTotal"]["CurrencyCode"]]
        .into_iter()
        .chain(items.iter().map(|i| &i["ItemPrice"]["CurrencyCode"]))
        .find_map(|v| v.as_str())
        .ok_or_else(|| {
            FormatError::field(
                &at("OrderTotal.CurrencyCode"),
                &Value::Null,
                "missing: no currency on the order or its items",
            )
        })?;
    let currency = CurrencyCode::new(currency_text).map_err(|_| {
        FormatError::field(&at("OrderTotal.CurrencyCode"), &Value::from(currency_text), "not an ISO 4217 code")
    })?;
    let money = |path: &str, m: &Value| -> Result<i64, FormatError> {
        if m.is_null() {
            return Ok(0);
        }
        if let Some(c) = m["CurrencyCode"].as_str()
            && c != currency.as_str()
        {
            return Err(FormatError::field(
                &format!("{path}.CurrencyCode"),
                &m["CurrencyCode"],
                format!("the order is in {currency}"),
            ));
        }
        ordo_types::parse_decimal(&text(&format!("{path}.Amount"), &m["Amount"])?, currency.exponent())
            .map_err(|e| FormatError::field(&format!("{path}.Amount"), &m["Amount"], e.to_string()))
            .and_then(|v| {
                if v.abs() > ordo_domain::accounting::MAX_AMOUNT_MINOR {
                    Err(FormatError::field(&format!("{path}.Amount"), &m["Amount"], "out of range"))
                } else {
                    Ok(v)
                }
            })
    };
    if items.is_empty() {
        return Err(FormatError::field(
            &at("AmazonOrderId"),
            &Value::from(id),
            "no getOrderItems answer for this order",
        ));
    }
    let mut lines = Vec::new();
    for (n, item) in items.iter().enumerate() {
        let path = |f: &str| format!("payload.OrderItems[{n}].{f}");
        let quantity = item["QuantityOrdered"]
            .as_i64()
            .or_else(|| item["QuantityOrdered"].as_str().and_then(|s| s.parse().ok()))
            .filter(|q| (0..=1_000_000).contains(q))
            .ok_or_else(|| {
                FormatError::field(
                    &path("QuantityOrdered"),
                    &item["QuantityOrdered"],
                    "expected a whole number up to 1000000",
                )
            })?;
        if quantity == 0 {
            // A line cancelled before shipping: nothing to fulfil or charge.
            continue;
        }
        let line_price = money(&path("ItemPrice"), &item["ItemPrice"])?;
        let unit_price_minor = (line_price + quantity - 1) / quantity;
        let rounding = unit_price_minor * quantity - line_price;
        let promotion = money(&path("PromotionDiscount"), &item["PromotionDiscount"])?;
        let tax = money(&path("ItemTax"), &item["ItemTax"])?;
        let seller_sku = item["SellerSKU"].as_str().unwrap_or_default();
        let item_ref = match Sku::new(seller_sku) {
            Ok(s) => LineItem::Sku(s),
            Err(_) => LineItem::Listing(text(&path("ASIN"), &item["ASIN"])?),
        };
        let region = order["ShippingAddress"]["StateOrRegion"].as_str().unwrap_or_default();
        let country = order["ShippingAddress"]["CountryCode"].as_str().unwrap_or_default();
        lines.push(OrderLine {
            line_id: text(&path("OrderItemId"), &item["OrderItemId"])?,
            item: item_ref,
            quantity,
            uom: ordo_domain::catalog::BASE_UOM.to_owned(),
            unit_price_minor,
            discount_minor: rounding + promotion,
            tax_lines: if tax == 0 {
                Vec::new()
            } else {
                vec![TaxLine {
                    jurisdiction: format!("{country}-{region}"),
                    rate_bp: 0,
                    amount_minor: tax,
                    channel_collected: true,
                }]
            },
        });
    }
    if lines.is_empty() {
        return Err(FormatError::field(&at("AmazonOrderId"), &Value::from(id), "every item has quantity 0"));
    }
    let a = &order["ShippingAddress"];
    let s = |f: &str| a[f].as_str().unwrap_or_default().to_owned();
    let ship_to = PostalAddress {
        name: s("Name"),
        line1: s("AddressLine1"),
        line2: [s("AddressLine2"), s("AddressLine3")]
            .into_iter()
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(", "),
        city: s("City"),
        region: s("StateOrRegion"),
        postal_code: s("PostalCode"),
        country: s("CountryCode"),
        geo: None,
    };
    let category = order["ShipmentServiceLevelCategory"].as_str().unwrap_or("Standard");
    let service_level = match category {
        "SameDay" => ServiceLevel::SameDay,
        "NextDay" => ServiceLevel::NextDay,
        "SecondDay" | "Expedited" | "Priority" => ServiceLevel::TwoDay,
        "FreeEconomy" | "Scheduled" => ServiceLevel::Economy,
        _ => ServiceLevel::Standard,
    };
    let ship_by = if order["LatestShipDate"].is_null() {
        None
    } else {
        Some(time(&at("LatestShipDate"), &order["LatestShipDate"])?)
    };
    let deliver_by = if order["LatestDeliveryDate"].is_null() {
        None
    } else {
        Some(time(&at("LatestDeliveryDate"), &order["LatestDeliveryDate"])?.date())
    };
    let status = order["OrderStatus"].as_str().unwrap_or_default();
    let buyer = &order["BuyerInfo"];
    let customer_id = buyer["BuyerEmail"].as_str().map_or_else(|| format!("amazon:{id}"), str::to_owned);
    let mut tags = vec!["amazon".to_owned()];
    if order["IsPrime"].as_bool() == Some(true) {
        tags.push("prime".into());
    }
    if order["IsBusinessOrder"].as_bool() == Some(true) {
        tags.push("business".into());
    }
    let fulfillment = match order["FulfillmentChannel"].as_str() {
        Some("AFN") => FulfillmentIntent::ByChannel,
        _ => FulfillmentIntent::Ship { ship_from_store_allowed: false },
    };
    let order_out = Order {
        channel,
        channel_order_id: id,
        channel_updated_at: updated_at,
        placed_at,
        customer: Customer {
            id: customer_id,
            name: buyer["BuyerName"].as_str().map_or_else(|| ship_to.name.clone(), str::to_owned),
            email: buyer["BuyerEmail"].as_str().map(str::to_owned),
            account_status: AccountStatus::Active,
        },
        ship_to,
        bill_to: None,
        lines,
        shipping: Shipping {
            method: order["ShipServiceLevel"].as_str().unwrap_or(category).to_owned(),
            service_level,
            ship_by,
            deliver_by,
        },
        // Amazon collects the payment; a Pending order is not yet paid for.
        payment_status: if status == "Pending" { PaymentStatus::Pending } else { PaymentStatus::Captured },
        fraud: FraudAssessment::default(),
        fulfillment,
        currency,
        tags,
    };
    Ok((order_out, status == "Canceled"))
}

/// A channel order mapped, and whether the channel cancelled it.
pub type MappedOrder = (Order, bool);

/// One order as read: its JSON, and what it mapped to.
pub type ReadOrder = (String, Result<MappedOrder, FormatError>);

/// Every order of `orders_files` (getOrders answers) with its items from `items_files`
/// (getOrderItems answers), each mapped on its own: the order's JSON and what it mapped to, so
/// one order that does not map holds up no other. `Err`: a file is not such an answer at all.
pub fn map_each(
    orders_files: &[String],
    items_files: &[String],
    channel: &ChannelCode,
) -> Result<Vec<ReadOrder>, FormatError> {
    let mut items = std::collections::BTreeMap::new();
    for f in items_files {
        let (id, list) = items_of(f)?;
        items.entry(id).or_insert_with(Vec::new).extend(list);
    }
    let mut out = Vec::new();
    for f in orders_files {
        for (n, o) in orders_of(f)?.iter().enumerate() {
            let id = o["AmazonOrderId"].as_str().unwrap_or_default();
            let lines = items.get(id).map(Vec::as_slice).unwrap_or(&[]);
            out.push((o.to_string(), map(o, n, lines, channel.clone())));
        }
    }
    Ok(out)
}

/// Pairs every order of `orders_files` with its items from `items_files` and maps them, all or
/// nothing.
pub fn pair(
    orders_files: &[String],
    items_files: &[String],
    channel: &ChannelCode,
) -> Result<Vec<(Order, bool)>, FormatError> {
    map_each(orders_files, items_files, channel)?.into_iter().map(|(_, mapped)| mapped).collect()
}
