//! Shopify Payments payouts (`GET /admin/api/…/shopify_payments/payouts.json`): each payout's
//! `amount` is what reached the bank; its `summary` says how — charges, refunds, adjustments,
//! reserved funds and retried payouts, each gross and fee (decimal strings). Each payout becomes
//! one canonical settlement whose lines are those components (a fee is deducted, so it is a
//! negative line), so the same reconciliation and payout posting apply as for Amazon.
//!
//! Only payouts that moved money (`paid`, `in_transit`) are settlements; `scheduled`, `failed`
//! and `canceled` ones are reported back, not imported.

use ordo_domain::settlement::{FeeType, Settlement, SettlementLine};
use ordo_types::{ChannelCode, CurrencyCode};
use serde::Deserialize;

use crate::FormatError;

#[derive(Deserialize)]
struct Payouts {
    payouts: Vec<Payout>,
}

#[derive(Deserialize)]
struct Payout {
    id: u64,
    status: String,
    date: String,
    currency: String,
    amount: String,
    summary: std::collections::BTreeMap<String, String>,
}

/// The summary's components in order: field prefix, what it is, the transaction type it stands for.
const COMPONENTS: [(&str, FeeType, FeeType, &str); 5] = [
    ("charges", FeeType::Principal, FeeType::Commission, "Charge"),
    ("refunds", FeeType::Principal, FeeType::Commission, "Refund"),
    ("adjustments", FeeType::Adjustment, FeeType::Commission, "Adjustment"),
    ("reserved_funds", FeeType::Reserve, FeeType::Reserve, "Reserve"),
    ("retried_payouts", FeeType::Other, FeeType::Other, "RetriedPayout"),
];

/// What a payouts file held: the settlements to import, and the payouts that are not (yet) money.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutFile {
    pub settlements: Vec<Settlement>,
    /// `(payout id, status)` of payouts that did not move money.
    pub skipped: Vec<(String, String)>,
}

pub fn parse(text: &str, channel: ChannelCode) -> Result<PayoutFile, FormatError> {
    let file: Payouts = serde_json::from_str(text).map_err(|e| FormatError {
        line: e.line() as u64,
        column: Some(format!("character {}", e.column())),
        value: None,
        message: format!("not a Shopify payouts document: {e}"),
    })?;
    let mut out = PayoutFile { settlements: Vec::new(), skipped: Vec::new() };
    for (n, p) in file.payouts.into_iter().enumerate() {
        let at = |field: &str, value: &str, message: String| FormatError {
            line: n as u64 + 1,
            column: Some(format!("payouts[{n}].{field}")),
            value: Some(value.to_owned()),
            message,
        };
        if !matches!(p.status.as_str(), "paid" | "in_transit") {
            out.skipped.push((p.id.to_string(), p.status));
            continue;
        }
        let currency = CurrencyCode::new(&p.currency).map_err(|e| at("currency", &p.currency, e.to_string()))?;
        let money = |field: &str, value: &str| {
            let minor =
                ordo_types::parse_decimal(value, currency.exponent()).map_err(|e| at(field, value, e.to_string()))?;
            if minor.abs() > ordo_domain::accounting::MAX_AMOUNT_MINOR {
                return Err(at(field, value, "beyond any payout amount".into()));
            }
            Ok(minor)
        };
        let date = p.date.parse().map_err(|_| at("date", &p.date, "expected YYYY-MM-DD".into()))?;
        let mut lines = Vec::new();
        for (prefix, gross_type, fee_type, transaction) in COMPONENTS {
            for (suffix, fee, sign) in [("gross_amount", gross_type, 1), ("fee_amount", fee_type, -1)] {
                let field = format!("{prefix}_{suffix}");
                let Some(value) = p.summary.get(&field) else { continue };
                let amount = money(&format!("summary.{field}"), value)? * sign;
                if amount == 0 {
                    continue;
                }
                lines.push(SettlementLine {
                    source_line: n as u64 + 1,
                    transaction_type: transaction.to_owned(),
                    order_id: None,
                    amount_type: field.clone(),
                    amount_description: field,
                    amount_minor: amount,
                    sku: None,
                    quantity: None,
                    fee_type: fee,
                });
            }
        }
        out.settlements.push(Settlement {
            channel: channel.clone(),
            settlement_id: p.id.to_string(),
            start: None,
            end: None,
            deposit_date: Some(date),
            currency,
            stated_total_minor: money("amount", &p.amount)?,
            lines,
        });
    }
    Ok(out)
}

/// The payouts document as a [`crate::SettlementSource`] (payouts that moved no money left out).
pub struct PayoutsDocument;

impl crate::SettlementSource for PayoutsDocument {
    fn name(&self) -> &'static str {
        "shopify-payouts"
    }
    fn settlements(&self, text: &str, channel: ChannelCode) -> Result<crate::SettlementFile, FormatError> {
        parse(text, channel).map(|f| crate::SettlementFile {
            settlements: f.settlements,
            left_out: f
                .skipped
                .into_iter()
                .map(|(id, status)| {
                    let why = format!("payout {id} is {status}: no money moved, not imported");
                    (id, why)
                })
                .collect(),
        })
    }
}
