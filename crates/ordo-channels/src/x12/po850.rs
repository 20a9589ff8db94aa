//! X12 850 purchase orders from B2B trading partners, mapped to the canonical order.
//!
//! The order is `(channel, BEG03)`: the partner's PO number. BEG01 says what the document does:
//! `00` original, `05` replace (a later one wins by the group's send time), `01` cancellation.
//! A line's item is the partner's vendor part number (`VN`, our own SKU as the partner knows it)
//! when given, else the partner's own id (buyer part `BP`, buyer item `IN`, UPC `UP`, GTIN `UK`,
//! EAN `EN`, catalog `CB`) as a listing the channel's listing map turns into a SKU. Unit prices
//! are `R` decimals read exactly in the PO's currency (`CUR02`, else USD). B2B purchase orders
//! are invoiced on terms, not paid at order: the payment is `authorized` by the trading agreement,
//! so a B2B channel's rules accept authorized orders.

use ordo_domain::orders::model::{
    AccountStatus, Customer, FraudAssessment, FulfillmentIntent, LineItem, Order, OrderLine, PaymentStatus,
    PostalAddress, ServiceLevel, Shipping,
};
use ordo_types::{ChannelCode, CurrencyCode, Sku};

use super::{Group, Interchange, Segment, TransactionSet, element_error, instant};
use crate::FormatError;

/// What an 850 asks: BEG01.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Original,
    Cancellation,
    Replace,
}

/// A PO line as the partner wrote it, kept to echo in the 855.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoLine {
    /// PO101, or the line's position when the partner left it empty.
    pub line_id: String,
    pub quantity: i64,
    /// PO103 as written (`EA`, `CA`…).
    pub uom_code: String,
    /// PO104 as written.
    pub unit_price: String,
    /// PO105, the basis of the unit price (`TE` per each, `PE` price per each…), as written.
    pub price_basis: String,
    /// Product id qualifier and value pairs (PO106/07, PO108/09…).
    pub product_ids: Vec<(String, String)>,
}

/// An 850 read: the canonical order plus what the acknowledgement echoes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseOrder {
    pub order: Order,
    pub purpose: Purpose,
    /// BEG03.
    pub po_number: String,
    /// BEG05, as written (`CCYYMMDD`).
    pub po_date: String,
    pub lines: Vec<PoLine>,
}

/// The UOM codes Ordo knows by name; any other code is taken as the item's conversion of the
/// same (lower-cased) name.
fn uom(code: &str) -> String {
    match code {
        "EA" | "UN" | "PC" => ordo_domain::catalog::BASE_UOM.to_owned(),
        "CA" | "CS" => "case".into(),
        "PK" => "pack".into(),
        "BX" => "box".into(),
        "DZ" => "dozen".into(),
        "PL" => "pallet".into(),
        other => other.to_ascii_lowercase(),
    }
}

/// Product id qualifiers in the order a line's item is taken from them.
const LISTING_QUALIFIERS: [&str; 6] = ["BP", "IN", "UP", "UK", "EN", "CB"];

/// Reads one 850 set of `group` in `interchange`. `input` is the whole file, for line numbers.
pub fn parse(
    input: &str,
    interchange: &Interchange<'_>,
    group: &Group<'_>,
    set: &TransactionSet<'_>,
    channel: ChannelCode,
) -> Result<PurchaseOrder, FormatError> {
    assert_eq!(set.code, "850", "po850::parse reads 850 sets only");
    let at_set = || FormatError::at(super::line_of(input, set.offset), "");
    let missing = |what: &str| FormatError { message: format!("the 850 has no {what} segment"), ..at_set() };
    let beg = set.segments.iter().find(|s| s.id == "BEG").ok_or_else(|| missing("BEG"))?;
    let purpose = match beg.element(1) {
        "00" | "06" => Purpose::Original,
        "01" | "03" => Purpose::Cancellation,
        "05" => Purpose::Replace,
        _ => return Err(element_error(input, beg, 1, "unknown purpose: expected 00, 01 or 05")),
    };
    let po_number = beg.element(3);
    if po_number.is_empty() {
        return Err(element_error(input, beg, 3, "the PO number is missing"));
    }
    let po_date = beg.element(5);
    let placed_at = instant(po_date, "").ok_or_else(|| element_error(input, beg, 5, "expected a date CCYYMMDD"))?;
    // The partner's send time orders re-sent and replacing documents.
    let channel_updated_at = instant(group.header.element(4), group.header.element(5))
        .ok_or_else(|| element_error(input, &group.header, 4, "expected a date CCYYMMDD and a time HHMM"))?;
    let currency = match set.segments.iter().find(|s| s.id == "CUR") {
        Some(cur) => CurrencyCode::new(cur.element(2))
            .map_err(|_| element_error(input, cur, 2, "not an ISO 4217 currency code"))?,
        None => CurrencyCode::new("USD").expect("USD is a currency"),
    };

    let mut ship_to: Option<PostalAddress> = None;
    let mut buyer_name: Option<String> = None;
    let mut ship_by = None;
    let mut deliver_by = None;
    let mut method = String::new();
    let mut department = None;
    let mut lines: Vec<PoLine> = Vec::new();
    let mut order_lines: Vec<OrderLine> = Vec::new();
    // The N1 loop the following N2/N3/N4 belong to.
    let mut party: Option<(&str, PostalAddress)> = None;
    let mut in_detail = false;
    let close_party = |party: &mut Option<(&str, PostalAddress)>, ship_to: &mut Option<PostalAddress>| {
        if let Some(("ST", address)) = party.take() {
            ship_to.get_or_insert(address);
        }
    };
    for s in &set.segments {
        match s.id {
            "N1" | "PO1" | "CTT" | "AMT" => close_party(&mut party, &mut ship_to),
            _ => {}
        }
        match s.id {
            "N1" if !in_detail => {
                let name = s.element(2).to_owned();
                if matches!(s.element(1), "BY" | "BT") && !name.is_empty() {
                    buyer_name.get_or_insert(name.clone());
                }
                party = Some((s.element(1), PostalAddress { name, ..PostalAddress::default() }));
            }
            "N2" => {
                if let Some((_, a)) = party.as_mut() {
                    a.line2 = s.element(1).to_owned();
                }
            }
            "N3" => {
                if let Some((_, a)) = party.as_mut() {
                    a.line1 = s.element(1).to_owned();
                    if !s.element(2).is_empty() {
                        a.line2 = s.element(2).to_owned();
                    }
                }
            }
            "N4" => {
                if let Some((_, a)) = party.as_mut() {
                    a.city = s.element(1).to_owned();
                    a.region = s.element(2).to_owned();
                    a.postal_code = s.element(3).to_owned();
                    a.country = match s.element(4) {
                        "" | "USA" => "US".to_owned(),
                        c => c.to_owned(),
                    };
                }
            }
            "DTM" if !in_detail => {
                let day = || super::date(s.element(2)).ok_or_else(|| element_error(input, s, 2, "expected CCYYMMDD"));
                match s.element(1) {
                    "002" => deliver_by = Some(day()?),
                    "010" | "038" => {
                        let d = day()?;
                        ship_by =
                            Some(ordo_types::Timestamp::from_millis(i64::from(d.days_since_epoch()) * 86_400_000));
                    }
                    _ => {}
                }
            }
            "TD5" if method.is_empty() => {
                method = [s.element(5), s.element(3)].into_iter().find(|m| !m.is_empty()).unwrap_or("").to_owned();
            }
            "REF" if s.element(1) == "DP" => department = Some(s.element(2).to_owned()),
            "PO1" => {
                in_detail = true;
                let n = lines.len();
                let line_id = if s.element(1).is_empty() { (n + 1).to_string() } else { s.element(1).to_owned() };
                if lines.iter().any(|l| l.line_id == line_id) {
                    return Err(element_error(input, s, 1, "a line number appears twice in the PO"));
                }
                let quantity = ordo_types::parse_decimal(s.element(2), 0)
                    .ok()
                    .filter(|q| *q > 0)
                    .ok_or_else(|| element_error(input, s, 2, "expected a positive whole quantity"))?;
                let uom_code = s.element(3);
                if uom_code.is_empty() {
                    return Err(element_error(input, s, 3, "the unit of measure is missing"));
                }
                let unit_price_minor = ordo_types::parse_decimal(s.element(4), currency.exponent())
                    .ok()
                    .filter(|p| *p >= 0)
                    .ok_or_else(|| {
                        element_error(
                            input,
                            s,
                            4,
                            format!("expected a unit price with at most {} decimals", currency.exponent()),
                        )
                    })?;
                let product_ids: Vec<(String, String)> = (6..s.len())
                    .step_by(2)
                    .map(|q| (s.element(q).to_owned(), s.element(q + 1).to_owned()))
                    .filter(|(q, v)| !q.is_empty() && !v.is_empty())
                    .collect();
                let find = |q: &str| product_ids.iter().find(|(k, _)| k == q).map(|(_, v)| v.clone());
                let item = match find("VN").and_then(|v| Sku::new(v).ok()) {
                    Some(sku) => LineItem::Sku(sku),
                    None => match LISTING_QUALIFIERS.iter().find_map(|q| find(q)) {
                        Some(listing) => LineItem::Listing(listing),
                        None => {
                            return Err(element_error(
                                input,
                                s,
                                6,
                                "the line names no product (VN, BP, IN, UP, UK, EN or CB)",
                            ));
                        }
                    },
                };
                order_lines.push(OrderLine {
                    line_id: line_id.clone(),
                    item,
                    quantity,
                    uom: uom(uom_code),
                    unit_price_minor,
                    discount_minor: 0,
                    tax_lines: Vec::new(),
                });
                lines.push(PoLine {
                    line_id,
                    quantity,
                    uom_code: uom_code.to_owned(),
                    unit_price: s.element(4).to_owned(),
                    price_basis: s.element(5).to_owned(),
                    product_ids,
                });
            }
            _ => {}
        }
    }
    close_party(&mut party, &mut ship_to);
    if lines.is_empty() && purpose != Purpose::Cancellation {
        return Err(missing("PO1"));
    }
    check_line_count(input, set, lines.len())?;
    let sender = interchange.sender();
    let mut tags = vec!["edi".to_owned(), "x12-850".to_owned()];
    if !beg.element(2).is_empty() {
        tags.push(format!("po-type:{}", beg.element(2)));
    }
    if let Some(d) = department {
        tags.push(format!("department:{d}"));
    }
    let order = Order {
        channel,
        channel_order_id: po_number.to_owned(),
        channel_updated_at,
        placed_at,
        customer: Customer {
            id: sender.id.clone(),
            name: buyer_name.unwrap_or_else(|| sender.id.clone()),
            email: None,
            account_status: AccountStatus::Active,
        },
        ship_to: ship_to.unwrap_or_default(),
        bill_to: None,
        lines: order_lines,
        shipping: Shipping {
            method: if method.is_empty() { "routing guide".into() } else { method },
            service_level: ServiceLevel::Standard,
            ship_by,
            deliver_by,
        },
        payment_status: PaymentStatus::Authorized,
        fraud: FraudAssessment::default(),
        fulfillment: FulfillmentIntent::Ship { ship_from_store_allowed: false },
        currency,
        tags,
    };
    Ok(PurchaseOrder { order, purpose, po_number: po_number.to_owned(), po_date: po_date.to_owned(), lines })
}

/// CTT01 states the number of PO1 lines: a PO whose lines were lost in transit must not be
/// taken as complete.
fn check_line_count(input: &str, set: &TransactionSet<'_>, counted: usize) -> Result<(), FormatError> {
    let Some(ctt) = set.segments.iter().find(|s: &&Segment<'_>| s.id == "CTT") else { return Ok(()) };
    match ctt.element(1).parse::<usize>() {
        Ok(n) if n == counted => Ok(()),
        _ => Err(element_error(input, ctt, 1, format!("CTT01 states the number of PO1 lines; the PO has {counted}"))),
    }
}
