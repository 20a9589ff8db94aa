//! Shopify Payments balance transactions (`GET /admin/api/…/shopify_payments/balance/
//! transactions.json`): the per-order detail of payouts. Each payout's transactions become one
//! canonical settlement (the payout id its settlement id) whose lines are per order: a charge's
//! `amount` is the customer's gross payment (reconciled whole against what Ordo shipped plus the
//! tax it booked), its `fee` the processing fee; refunds, disputes (chargebacks), reserves and
//! adjustments as themselves. The `payout` transaction is the sweep to the bank: its amount,
//! negated, is the settlement's stated total. Transactions not yet in a payout are left out and
//! reported.

use std::collections::BTreeMap;

use ordo_domain::settlement::{FeeType, Settlement, SettlementLine};
use ordo_types::{ChannelCode, CurrencyCode, Date};
use serde_json::Value;

use crate::{FormatError, json_document, json_text as text, json_text_of};

/// What a balance transactions file held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceFile {
    pub settlements: Vec<Settlement>,
    /// Transactions not in any payout yet (their ids).
    pub pending: Vec<String>,
}

/// One payout as its transactions are read: lines, the sweep's amount, its date and currency.
#[derive(Default)]
struct PayoutSoFar {
    lines: Vec<SettlementLine>,
    stated: Option<i64>,
    date: Option<Date>,
    currency: Option<CurrencyCode>,
}

pub fn parse(input: &str, channel: ChannelCode) -> Result<BalanceFile, FormatError> {
    let doc = json_document(input)?;
    let list = doc["transactions"].as_array().ok_or_else(|| {
        FormatError::field("transactions", &Value::Null, "missing: not a balance transactions document")
    })?;
    let mut payouts: BTreeMap<String, PayoutSoFar> = BTreeMap::new();
    let mut pending = Vec::new();
    for (n, t) in list.iter().enumerate() {
        let at = |f: &str| format!("transactions[{n}].{f}");
        let id = text(&at("id"), &t["id"])?;
        let Some(payout) = json_text_of(&t["payout_id"]).filter(|p| !p.is_empty()) else {
            pending.push(id);
            continue;
        };
        let currency = CurrencyCode::new(&text(&at("currency"), &t["currency"])?)
            .map_err(|_| FormatError::field(&at("currency"), &t["currency"], "not an ISO 4217 code"))?;
        let money = |f: &str| -> Result<i64, FormatError> {
            if t[f].is_null() {
                return Ok(0);
            }
            ordo_types::parse_decimal(&text(&at(f), &t[f])?, currency.exponent())
                .map_err(|e| FormatError::field(&at(f), &t[f], e.to_string()))
                .and_then(|v| {
                    if v.abs() > ordo_domain::accounting::MAX_AMOUNT_MINOR {
                        Err(FormatError::field(&at(f), &t[f], "out of range"))
                    } else {
                        Ok(v)
                    }
                })
        };
        let amount = money("amount")?;
        let fee = money("fee")?;
        let net = money("net")?;
        if amount - fee != net {
            return Err(FormatError::field(&at("net"), &t["net"], format!("net is amount − fee = {}", amount - fee)));
        }
        let kind = text(&at("type"), &t["type"])?;
        let processed = t["processed_at"]
            .as_str()
            .and_then(|p| chrono::DateTime::parse_from_rfc3339(p).ok())
            .and_then(|d| d.date_naive().to_string().parse::<Date>().ok());
        let entry = payouts.entry(payout).or_default();
        match entry.currency {
            Some(c) if c != currency => {
                return Err(FormatError::field(&at("currency"), &t["currency"], format!("the payout is in {c}")));
            }
            _ => entry.currency = Some(currency),
        }
        if kind == "payout" {
            // The sweep to the bank: negative in the balance, positive at the bank.
            entry.stated = Some(-amount);
            entry.date = processed.or(entry.date);
            continue;
        }
        entry.date = entry.date.max(processed);
        let order_id = json_text_of(&t["source_order_id"]).filter(|o| !o.is_empty());
        let (transaction_type, fee_type) = match kind.as_str() {
            "charge" => ("Charge", FeeType::Gross),
            "refund" => ("Refund", FeeType::Principal),
            "dispute" => ("Chargeback", FeeType::Chargeback),
            "reserve" => ("Reserve", FeeType::Reserve),
            "adjustment" => ("Adjustment", FeeType::Adjustment),
            _ => ("Other", FeeType::Other),
        };
        let line = |amount_minor: i64, fee_type: FeeType, description: &str| SettlementLine {
            source_line: n as u64 + 1,
            transaction_type: transaction_type.to_owned(),
            order_id: order_id.clone(),
            amount_type: kind.clone(),
            amount_description: description.to_owned(),
            amount_minor,
            sku: None,
            quantity: None,
            fee_type,
        };
        entry.lines.push(line(amount, fee_type, "amount"));
        if fee != 0 {
            // The processing fee is deducted: a charge against the payout.
            entry.lines.push(line(-fee, FeeType::Commission, "fee"));
        }
    }
    let settlements = payouts
        .into_iter()
        .map(|(id, p)| Settlement {
            channel: channel.clone(),
            settlement_id: id,
            start: None,
            end: None,
            deposit_date: p.date,
            currency: p.currency.unwrap_or_else(|| CurrencyCode::new("USD").expect("USD is a currency")),
            stated_total_minor: p.stated.unwrap_or_else(|| p.lines.iter().map(|l| l.amount_minor).sum()),
            lines: p.lines,
        })
        .collect();
    Ok(BalanceFile { settlements, pending })
}

/// Balance transactions as a [`crate::SettlementSource`] (transactions not paid out left out).
pub struct BalanceTransactions;

impl crate::SettlementSource for BalanceTransactions {
    fn name(&self) -> &'static str {
        "shopify-balance"
    }
    fn settlements(&self, text: &str, channel: ChannelCode) -> Result<crate::SettlementFile, FormatError> {
        parse(text, channel).map(|f| crate::SettlementFile {
            settlements: f.settlements,
            left_out: f
                .pending
                .into_iter()
                .map(|id| {
                    let why = format!("transaction {id} is not in a payout yet, not imported");
                    (id, why)
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(id: u64, kind: &str, payout: Option<u64>, amount: &str, fee: &str, net: &str, order: Option<u64>) -> Value {
        serde_json::json!({"id": id, "type": kind, "payout_id": payout, "payout_status": "paid", "currency": "USD",
            "amount": amount, "fee": fee, "net": net, "source_order_id": order, "processed_at": "2026-11-20T10:00:00-05:00"})
    }

    #[test]
    fn a_payout_is_its_transactions_per_order_and_its_sweep() {
        let doc = serde_json::json!({"transactions": [
            txn(1, "charge", Some(77), "53.00", "1.84", "51.16", Some(1001)),
            txn(2, "refund", Some(77), "-10.00", "0.00", "-10.00", Some(1001)),
            txn(3, "charge", Some(77), "21.20", "0.91", "20.29", Some(1002)),
            txn(4, "payout", Some(77), "-61.45", "0.00", "-61.45", None),
            txn(5, "charge", None, "5.00", "0.45", "4.55", Some(1003)),
        ]});
        let file = parse(&doc.to_string(), ordo_types::Code::new("WEB").unwrap()).unwrap();
        assert_eq!(file.pending, ["5"]);
        let s = &file.settlements[0];
        assert_eq!((s.settlement_id.as_str(), s.stated_total_minor), ("77", 6_145));
        assert_eq!(s.deposit_date.map(|d| d.to_string()).as_deref(), Some("2026-11-20"));
        let lines: Vec<(Option<&str>, FeeType, i64)> =
            s.lines.iter().map(|l| (l.order_id.as_deref(), l.fee_type, l.amount_minor)).collect();
        assert_eq!(
            lines,
            [
                (Some("1001"), FeeType::Gross, 5_300),
                (Some("1001"), FeeType::Commission, -184),
                (Some("1001"), FeeType::Principal, -1_000),
                (Some("1002"), FeeType::Gross, 2_120),
                (Some("1002"), FeeType::Commission, -91),
            ]
        );
        // The lines add up to the sweep.
        assert_eq!(s.lines.iter().map(|l| l.amount_minor).sum::<i64>(), 6_145);
        let bad = doc.to_string().replace("\"51.16\"", "\"51.17\"");
        let err = parse(&bad, ordo_types::Code::new("WEB").unwrap()).unwrap_err();
        assert_eq!(err.column.as_deref(), Some("transactions[0].net"));
    }
}
