//! Store POS sales as a CSV export, one row per sold line:
//! `transaction_id,store,time,sku,quantity,unit_price,tender` and optionally `tax`,
//! `tax_jurisdiction` and `currency` (default USD). Rows of one `(store, transaction_id)` are one
//! sale, mapped to a canonical order sold over that store's till (`SoldInStore`): the customer
//! already has the goods, so the sale is posted from that store's stock at once. Times are
//! RFC 3339 or `YYYY-MM-DD HH:MM:SS` (UTC); money is decimal text read exactly.

use ordo_domain::orders::model::{
    AccountStatus, Customer, FraudAssessment, FulfillmentIntent, LineItem, Order, OrderLine, PaymentStatus,
    PostalAddress, ServiceLevel, Shipping, TaxLine,
};
use ordo_types::{ChannelCode, Code, CurrencyCode, Sku, Timestamp};

use crate::FormatError;

/// One sale: its order, and the file's lines it came from (1-based, header is line 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PosSale {
    pub order: Order,
    pub store: Code,
    pub lines: Vec<u64>,
}

const REQUIRED: [&str; 7] = ["transaction_id", "store", "time", "sku", "quantity", "unit_price", "tender"];

fn time(text: &str) -> Option<Timestamp> {
    chrono::DateTime::parse_from_rfc3339(text).map(|d| Timestamp::from_millis(d.timestamp_millis())).ok().or_else(
        || {
            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
                .ok()
                .map(|d| Timestamp::from_millis(d.and_utc().timestamp_millis()))
        },
    )
}

pub fn parse(data: &[u8], channel: ChannelCode) -> Result<Vec<PosSale>, FormatError> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(data);
    let headers = reader.headers().map_err(|e| FormatError::at(1, format!("not a CSV file: {e}")))?.clone();
    let column = |name: &str| headers.iter().position(|h| h == name);
    let missing: Vec<&str> = REQUIRED.iter().copied().filter(|c| column(c).is_none()).collect();
    if !missing.is_empty() {
        return Err(FormatError::at(1, format!("the header lacks {}", missing.join(", "))));
    }
    let mut sales: Vec<PosSale> = Vec::new();
    for (n, record) in reader.records().enumerate() {
        let line = n as u64 + 2;
        let record = record.map_err(|e| FormatError::at(line, format!("not CSV: {e}")))?;
        let field = |name: &str| column(name).and_then(|i| record.get(i)).unwrap_or_default();
        let bad = |name: &str, message: &str| FormatError {
            line,
            column: Some(name.to_owned()),
            value: Some(field(name).to_owned()).filter(|v| !v.is_empty()),
            message: message.to_owned(),
        };
        let transaction = field("transaction_id");
        if transaction.is_empty() {
            return Err(bad("transaction_id", "missing"));
        }
        let store = Code::new(field("store")).map_err(|_| bad("store", "expected a location code"))?;
        let at = time(field("time")).ok_or_else(|| bad("time", "expected RFC 3339 or YYYY-MM-DD HH:MM:SS (UTC)"))?;
        let sku = Sku::new(field("sku")).map_err(|_| bad("sku", "expected a SKU"))?;
        let quantity: i64 = field("quantity").parse().map_err(|_| bad("quantity", "expected a whole number"))?;
        if quantity <= 0 {
            return Err(bad("quantity", "a sale sells at least one; returns at the till go through `ordo return`"));
        }
        let currency = match field("currency") {
            "" => CurrencyCode::new("USD").expect("USD is a currency"),
            c => CurrencyCode::new(c).map_err(|_| bad("currency", "not an ISO 4217 code"))?,
        };
        let money = |name: &str| -> Result<i64, FormatError> {
            match field(name) {
                "" if name == "tax" => Ok(0),
                text => ordo_types::parse_decimal(text, currency.exponent()).map_err(|e| bad(name, &e.to_string())),
            }
        };
        let unit_price_minor = money("unit_price")?;
        if unit_price_minor < 0 {
            return Err(bad("unit_price", "a price is not negative"));
        }
        let tax = money("tax")?;
        let tender = field("tender");
        if tender.is_empty() {
            return Err(bad("tender", "missing (cash, card, gift_card…)"));
        }
        let id = format!("{store}-{transaction}");
        let sale = match sales.iter_mut().find(|s| s.order.channel_order_id == id) {
            Some(s) => s,
            None => {
                sales.push(PosSale {
                    order: Order {
                        channel: channel.clone(),
                        channel_order_id: id.clone(),
                        channel_updated_at: at,
                        placed_at: at,
                        customer: Customer {
                            id: "walk-in".into(),
                            name: "Walk-in customer".into(),
                            email: None,
                            account_status: AccountStatus::Active,
                        },
                        ship_to: PostalAddress { name: format!("store {store}"), ..PostalAddress::default() },
                        bill_to: None,
                        lines: Vec::new(),
                        shipping: Shipping {
                            method: "till".into(),
                            service_level: ServiceLevel::SameDay,
                            ship_by: None,
                            deliver_by: None,
                        },
                        payment_status: PaymentStatus::Captured,
                        fraud: FraudAssessment::default(),
                        fulfillment: FulfillmentIntent::SoldInStore { store: store.clone() },
                        currency,
                        tags: vec!["pos".into()],
                    },
                    store: store.clone(),
                    lines: Vec::new(),
                });
                sales.last_mut().expect("just pushed")
            }
        };
        if sale.order.currency != currency {
            return Err(bad("currency", "one sale is in one currency"));
        }
        if sale.store != store {
            return Err(bad("store", "a transaction id belongs to one store"));
        }
        let tender_tag = format!("tender:{tender}");
        if !sale.order.tags.contains(&tender_tag) {
            sale.order.tags.push(tender_tag);
        }
        let jurisdiction = match field("tax_jurisdiction") {
            "" => format!("store:{store}"),
            j => j.to_owned(),
        };
        sale.order.lines.push(OrderLine {
            line_id: (sale.order.lines.len() + 1).to_string(),
            item: LineItem::Sku(sku),
            quantity,
            uom: ordo_domain::catalog::BASE_UOM.to_owned(),
            unit_price_minor,
            discount_minor: 0,
            tax_lines: if tax == 0 {
                Vec::new()
            } else {
                vec![TaxLine { jurisdiction, rate_bp: 0, amount_minor: tax, channel_collected: false }]
            },
        });
        sale.lines.push(line);
    }
    Ok(sales)
}
