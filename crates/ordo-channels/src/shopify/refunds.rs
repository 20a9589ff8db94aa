//! Shopify refunds — the REST Refund resource, as the `refunds/create` webhook delivers it and as
//! `GET /orders/{id}/refunds/{id}.json` wraps it (`{"refund": …}`): a refund the merchant issued
//! on Shopify's side, which Ordo records so its own return flow never refunds those units again.
//!
//! What the customer got back is the sum of the refund's successful `refund` transactions (the
//! money that moved), not the line items' prices: Shopify may keep a fee or add shipping. Each
//! refund line item says which order line and how many units, and whether the goods come back:
//! `restock_type` `return` or `legacy_restock` (or the older top-level `"restock": true`) means
//! they do, `no_restock` that the customer keeps them, `cancel` that they were never shipped.

use ordo_types::{CurrencyCode, Timestamp, Units};
use serde_json::Value;

use crate::{FormatError, json_document, json_text};

/// What happens to a refunded line's goods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restock {
    /// The customer sends them back.
    Return,
    /// The customer keeps them (a goodwill refund).
    NoRestock,
    /// Never shipped: the line was cancelled (the order's update carries that).
    Cancel,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundedLine {
    /// The order's `line_items[].id`: the canonical order's line id.
    pub line_id: String,
    pub units: Units,
    pub restock: Restock,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShopifyRefund {
    pub refund_id: String,
    pub channel_order_id: String,
    pub created_at: Timestamp,
    pub lines: Vec<RefundedLine>,
    /// Σ successful `refund` transactions, in minor units of the order's currency.
    pub amount_minor: i64,
    pub note: String,
}

impl ShopifyRefund {
    /// As the canonical channel refund of `channel`: lines cancelled before they shipped are left
    /// out (the order's own update cancels them).
    pub fn canonical(&self, channel: ordo_types::ChannelCode) -> ordo_domain::returns::ChannelRefund {
        ordo_domain::returns::ChannelRefund {
            refund_id: self.refund_id.clone(),
            order: ordo_domain::orders::model::OrderKey { channel, channel_order_id: self.channel_order_id.clone() },
            lines: self
                .lines
                .iter()
                .filter(|l| l.restock != Restock::Cancel)
                .map(|l| (l.line_id.clone(), l.units, l.restock == Restock::Return))
                .collect(),
            amount_minor: self.amount_minor,
            note: self.note.clone(),
        }
    }
}

/// The order a refund document is for (to look up its currency before reading the money).
pub fn order_of(text: &str) -> Result<String, FormatError> {
    let document = json_document(text)?;
    let r = document.get("refund").unwrap_or(&document);
    json_text("order_id", &r["order_id"])
}

/// Reads a refund webhook body or REST document; money in `currency` (the order's).
pub fn parse(text: &str, currency: CurrencyCode) -> Result<ShopifyRefund, FormatError> {
    let document = json_document(text)?;
    let r = document.get("refund").unwrap_or(&document);
    let refund_id = json_text("id", &r["id"])?;
    let channel_order_id = json_text("order_id", &r["order_id"])?;
    let created = json_text("created_at", &r["created_at"])?;
    let created_at = chrono::DateTime::parse_from_rfc3339(&created)
        .map(|d| Timestamp::from_millis(d.timestamp_millis()))
        .map_err(|_| FormatError::field("created_at", &r["created_at"], "expected an ISO 8601 time with offset"))?;
    let legacy_restock = r["restock"].as_bool().unwrap_or(false);
    let mut lines = Vec::new();
    let items = match &r["refund_line_items"] {
        Value::Null => &Vec::new(),
        Value::Array(items) => items,
        other => return Err(FormatError::field("refund_line_items", other, "expected a list")),
    };
    for (n, l) in items.iter().enumerate() {
        let at = |f: &str| format!("refund_line_items[{n}].{f}");
        let units = l["quantity"]
            .as_i64()
            .filter(|q| *q > 0)
            .ok_or_else(|| FormatError::field(&at("quantity"), &l["quantity"], "expected a positive whole number"))?;
        let restock = match l["restock_type"].as_str() {
            Some("return" | "legacy_restock") => Restock::Return,
            Some("no_restock") => Restock::NoRestock,
            Some("cancel") => Restock::Cancel,
            None if l["restock_type"].is_null() => {
                if legacy_restock {
                    Restock::Return
                } else {
                    Restock::NoRestock
                }
            }
            _ => {
                return Err(FormatError::field(
                    &at("restock_type"),
                    &l["restock_type"],
                    "expected return, legacy_restock, no_restock or cancel",
                ));
            }
        };
        lines.push(RefundedLine { line_id: json_text(&at("line_item_id"), &l["line_item_id"])?, units, restock });
    }
    let mut amount_minor = 0i64;
    let transactions = match &r["transactions"] {
        Value::Null => &Vec::new(),
        Value::Array(t) => t,
        other => return Err(FormatError::field("transactions", other, "expected a list")),
    };
    for (k, t) in transactions.iter().enumerate() {
        let at = |f: &str| format!("transactions[{k}].{f}");
        // Only money that moved: a failed or pending refund transaction refunds nothing.
        if t["kind"].as_str() != Some("refund") || t["status"].as_str().is_some_and(|s| s != "success") {
            continue;
        }
        if let Some(c) = t["currency"].as_str()
            && c != currency.as_str()
        {
            return Err(FormatError::field(&at("currency"), &t["currency"], format!("the order is in {currency}")));
        }
        let text = json_text(&at("amount"), &t["amount"])?;
        let amount = ordo_types::parse_decimal(&text, currency.exponent())
            .map_err(|e| FormatError::field(&at("amount"), &t["amount"], e.to_string()))?;
        if amount < 0 {
            return Err(FormatError::field(&at("amount"), &t["amount"], "a refund transaction's amount is positive"));
        }
        amount_minor = amount_minor
            .checked_add(amount)
            .ok_or_else(|| FormatError::field(&at("amount"), &t["amount"], "the refund's total is out of range"))?;
    }
    let note = r["note"].as_str().unwrap_or_default().to_owned();
    Ok(ShopifyRefund { refund_id, channel_order_id, created_at, lines, amount_minor, note })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> String {
        let path =
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/samples/shopify/shopify_python_api_refund.json");
        std::fs::read_to_string(path).expect("the shared Shopify refund sample")
    }

    fn usd() -> CurrencyCode {
        CurrencyCode::new("USD").unwrap()
    }

    #[test]
    fn the_public_sample_reads_with_its_lines_restocked_and_the_money_that_moved() {
        let refund = parse(&sample(), usd()).unwrap();
        assert_eq!((refund.refund_id.as_str(), refund.channel_order_id.as_str()), ("509562969", "450789469"));
        assert_eq!(refund.amount_minor, 20_900, "the transaction's 209.00, not the lines' 398.00");
        assert_eq!(
            refund.lines,
            [
                RefundedLine { line_id: "703073504".into(), units: 1, restock: Restock::Return },
                RefundedLine { line_id: "466157049".into(), units: 1, restock: Restock::Return },
            ]
        );
        assert_eq!(refund.created_at.millis(), 1_466_444_106_000);
        assert_eq!(order_of(&sample()).unwrap(), "450789469");
        let canonical = refund.canonical(ordo_types::Code::new("WEB").unwrap());
        assert_eq!(canonical.rma_id(), "WEB-REFUND-509562969");
        assert_eq!(canonical.lines, [("703073504".to_owned(), 1, true), ("466157049".to_owned(), 1, true)]);
    }

    #[test]
    fn restock_types_failed_transactions_and_bad_fields() {
        let body = serde_json::json!({
            "id": 1, "order_id": 2, "created_at": "2026-11-20T10:00:00Z",
            "refund_line_items": [
                {"line_item_id": 10, "quantity": 2, "restock_type": "no_restock"},
                {"line_item_id": 11, "quantity": 1, "restock_type": "cancel"}
            ],
            "transactions": [
                {"kind": "refund", "status": "success", "amount": "12.50", "currency": "USD"},
                {"kind": "refund", "status": "failure", "amount": "99.00"},
                {"kind": "sale", "status": "success", "amount": "5.00"}
            ]
        });
        let refund = parse(&body.to_string(), usd()).unwrap();
        assert_eq!(refund.amount_minor, 1_250);
        assert_eq!(refund.lines.iter().map(|l| l.restock).collect::<Vec<_>>(), [Restock::NoRestock, Restock::Cancel]);
        let bad = body.to_string().replace("\"no_restock\"", "\"maybe\"");
        let e = parse(&bad, usd()).unwrap_err();
        assert_eq!(e.column.as_deref(), Some("refund_line_items[0].restock_type"));
        let bad = body.to_string().replace("\"12.50\"", "\"12.5.0\"");
        assert_eq!(parse(&bad, usd()).unwrap_err().column.as_deref(), Some("transactions[0].amount"));
        let bad = body.to_string().replace("\"USD\"", "\"EUR\"");
        assert!(parse(&bad, usd()).unwrap_err().message.contains("the order is in USD"));
        let bad = body.to_string().replace("\"quantity\":2", "\"quantity\":0");
        assert_eq!(parse(&bad, usd()).unwrap_err().column.as_deref(), Some("refund_line_items[0].quantity"));
        assert_eq!(parse("{\"id\": 1}", usd()).unwrap_err().column.as_deref(), Some("order_id"));
    }
}
