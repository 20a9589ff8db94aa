//! Amazon's settlement report, `GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2`: tab-separated, a
//! header row, then one summary row (settlement id, period, deposit date, total, currency; the
//! transaction columns empty), then one row per money component (`transaction-type`,
//! `amount-type`, `amount-description`, signed `amount`).
//!
//! The layout is detected from the header row. The deprecated V1 layout (`price-type`,
//! `item-related-fee-type`… columns) and anything else are refused with a message that names
//! what is missing. Amounts are exact decimals in the report's currency; EU files write a decimal
//! comma (`95,00`), which is read as such; trailing spaces and a trailing blank line are ignored.

use ordo_domain::settlement::{FeeType, Settlement, SettlementLine};
use ordo_types::{ChannelCode, CurrencyCode, Date};

use crate::FormatError;

/// Columns every V2 file has (the others are read when present).
const REQUIRED: [&str; 8] = [
    "settlement-id",
    "total-amount",
    "currency",
    "transaction-type",
    "order-id",
    "amount-type",
    "amount-description",
    "amount",
];

/// Reads a V2 flat-file settlement report of `channel`.
pub fn parse(text: &str, channel: ChannelCode) -> Result<Settlement, FormatError> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b'\t')
        .quoting(false)
        .flexible(true)
        .has_headers(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| FormatError::at(1, format!("the header row does not read: {e}")))?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    let column = |name: &str| headers.iter().position(|h| h == name);
    let missing: Vec<&str> = REQUIRED.iter().copied().filter(|c| column(c).is_none()).collect();
    if !missing.is_empty() {
        let legacy = column("price-type").is_some() || column("item-related-fee-type").is_some();
        let message = if legacy {
            "this is the legacy (V1) settlement flat-file layout, which Amazon retired; request \
             GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2"
                .to_owned()
        } else {
            format!("unknown settlement layout: the header row lacks {}", missing.join(", "))
        };
        return Err(FormatError { line: 1, column: None, value: None, message });
    }
    let at = |name: &str| column(name).expect("required columns are present");
    let optional = |record: &csv::StringRecord, name: &str| -> Option<String> {
        column(name).and_then(|i| record.get(i)).map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned)
    };
    // The summary row makes the settlement; the rows after it are its lines.
    let mut settlement: Option<Settlement> = None;
    for (n, record) in reader.records().enumerate() {
        let line = n as u64 + 2;
        let record = record.map_err(|e| FormatError::at(line, format!("the row does not read: {e}")))?;
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        let field = |name: &str| record.get(at(name)).map(str::trim).unwrap_or_default();
        let bad = |name: &str, message: &str| FormatError {
            line,
            column: Some(name.to_owned()),
            value: Some(field(name).to_owned()),
            message: message.to_owned(),
        };
        let id = field("settlement-id");
        if id.is_empty() {
            return Err(bad("settlement-id", "every row names its settlement"));
        }
        let Some(current) = &mut settlement else {
            // The first row is the summary: the total and currency of the whole settlement.
            let currency = CurrencyCode::new(field("currency")).map_err(|_| bad("currency", "not an ISO 4217 code"))?;
            if field("total-amount").is_empty() {
                return Err(bad("total-amount", "the first row is the summary and states the total"));
            }
            let total = amount(field("total-amount"), currency).map_err(|m| bad("total-amount", &m))?;
            let date = |name: &str| -> Result<Option<Date>, FormatError> {
                optional(&record, name).map(|v| date(&v).ok_or_else(|| bad(name, "not a date"))).transpose()
            };
            settlement = Some(Settlement {
                channel: channel.clone(),
                settlement_id: id.to_owned(),
                start: date("settlement-start-date")?,
                end: date("settlement-end-date")?,
                deposit_date: date("deposit-date")?,
                currency,
                stated_total_minor: total,
                lines: Vec::new(),
            });
            continue;
        };
        if id != current.settlement_id {
            let message = format!("one file is one settlement; this row is not of {}", current.settlement_id);
            return Err(bad("settlement-id", &message));
        }
        let currency = current.currency;
        if !field("currency").is_empty() && field("currency") != currency.as_str() {
            return Err(bad("currency", &format!("the settlement is in {currency}")));
        }
        let amount_minor = amount(field("amount"), currency).map_err(|m| bad("amount", &m))?;
        let quantity = optional(&record, "quantity-purchased")
            .map(|q| q.parse::<i64>().map_err(|_| bad("quantity-purchased", "not a whole number")))
            .transpose()?;
        let (transaction_type, amount_type, description) =
            (field("transaction-type"), field("amount-type"), field("amount-description"));
        current.lines.push(SettlementLine {
            source_line: line,
            transaction_type: transaction_type.to_owned(),
            order_id: optional(&record, "order-id"),
            amount_type: amount_type.to_owned(),
            amount_description: description.to_owned(),
            amount_minor,
            sku: optional(&record, "sku"),
            quantity,
            fee_type: FeeType::of_amazon(transaction_type, amount_type, description),
        });
    }
    settlement.ok_or_else(|| FormatError::at(2, "no summary row: the report is empty"))
}

/// An amount in the report's currency: `-19.50`, `95,00` (EU), `1.234,56`.
fn amount(text: &str, currency: CurrencyCode) -> Result<i64, String> {
    let normalized = match (text.contains('.'), text.contains(',')) {
        (true, true) => text.replace('.', "").replace(',', "."),
        (false, true) => text.replace(',', "."),
        _ => text.to_owned(),
    };
    let minor = ordo_types::parse_decimal(&normalized, currency.exponent()).map_err(|e| e.to_string())?;
    if minor.abs() > ordo_domain::accounting::MAX_AMOUNT_MINOR {
        return Err("beyond any settlement amount".into());
    }
    Ok(minor)
}

/// `2026-06-16 00:00:00 UTC`, `2026-06-16T00:00:00+00:00`, `2026-06-16`, or `16.06.2026`.
fn date(text: &str) -> Option<Date> {
    if let Some(iso) = text.get(..10)
        && let Ok(d) = iso.parse()
    {
        return Some(d);
    }
    let mut parts = text.split('.');
    let (d, m, y) = (parts.next()?, parts.next()?, parts.next()?.get(..4)?);
    format!("{y}-{m:0>2}-{d:0>2}").parse().ok()
}

/// The V2 flat-file settlement report as a [`crate::SettlementSource`].
pub struct V2FlatFile;

impl crate::SettlementSource for V2FlatFile {
    fn name(&self) -> &'static str {
        "amazon-settlement"
    }
    fn settlements(&self, text: &str, channel: ChannelCode) -> Result<crate::SettlementFile, FormatError> {
        parse(text, channel).map(|s| crate::SettlementFile { settlements: vec![s], left_out: Vec::new() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_decimal_points_and_commas_exactly() {
        let usd = CurrencyCode::new("USD").unwrap();
        assert_eq!(amount("-19.50", usd), Ok(-1_950));
        assert_eq!(amount("95,00", usd), Ok(9_500));
        assert_eq!(amount("1.234,56", usd), Ok(123_456));
        assert!(amount("12.345", usd).is_err());
        assert_eq!(amount("1500", CurrencyCode::new("JPY").unwrap()), Ok(1_500));
    }

    #[test]
    fn dates_in_the_layouts_amazon_writes() {
        let d: Date = "2026-06-16".parse().unwrap();
        for text in ["2026-06-16 00:00:00 UTC", "2026-06-16T00:00:00+00:00", "2026-06-16", "16.06.2026"] {
            assert_eq!(date(text), Some(d), "{text}");
        }
        assert_eq!(date("yesterday"), None);
    }
}
