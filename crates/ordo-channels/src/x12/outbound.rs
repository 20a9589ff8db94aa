//! Documents Ordo sends B2B partners: the 846 inventory advice (available-to-sell per item),
//! and for a shipment the 856 ship notice and the 810 invoice — both from the order's shipment
//! share ([`OrderRecord::shipment_share`]), so the EDI invoice carries exactly the amounts the
//! general ledger booked and the printable invoice shows.

use ordo_domain::orders::book::{OrderRecord, Package};
use ordo_domain::orders::model::LineItem;
use ordo_types::{Date, Timestamp};

use super::write::{SetBuilder, decimal_r};

fn ccyymmdd(d: Date) -> String {
    d.to_string().replace('-', "")
}

fn hhmm(t: Timestamp) -> String {
    let minutes = t.millis().rem_euclid(86_400_000) / 60_000;
    format!("{:02}{:02}", minutes / 60, minutes % 60)
}

/// X12 unit-of-measure code of an Ordo unit (the inverse of the 850 reader's mapping).
pub fn uom_code(uom: &str) -> String {
    match uom {
        ordo_domain::catalog::BASE_UOM => "EA".into(),
        "case" => "CA".into(),
        "pack" => "PK".into(),
        "box" => "BX".into(),
        "dozen" => "DZ".into(),
        "pallet" => "PL".into(),
        other => other.to_ascii_uppercase(),
    }
}

/// The product id pair naming a line's item: our SKU as the partner's vendor part number, or the
/// partner's own id when the order named the item that way.
fn product_id(item: &LineItem) -> [String; 2] {
    match item {
        LineItem::Sku(s) => ["VN".into(), s.to_string()],
        LineItem::Listing(l) => ["BP".into(), l.clone()],
    }
}

/// One item's available-to-sell for a partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvailabilityAdvice {
    pub sku: String,
    /// The partner's id for the item, when the channel's listing map has one.
    pub partner_item: Option<String>,
    pub available: i64,
}

/// An 846 inventory advice: `QTY*33` (quantity available for sale) per item.
pub fn inventory_advice_846(reference: &str, at: Timestamp, items: &[AvailabilityAdvice]) -> SetBuilder {
    let mut b = SetBuilder::new();
    b.segment("BIA", &["00", "SI", reference, &ccyymmdd(at.date()), &hhmm(at)]);
    for (n, item) in items.iter().enumerate() {
        let mut lin = vec![(n + 1).to_string(), "VN".into(), item.sku.clone()];
        if let Some(p) = &item.partner_item {
            lin.extend(["BP".into(), p.clone()]);
        }
        b.segment("LIN", &lin);
        b.segment("QTY", &["33", &item.available.max(0).to_string(), "EA"]);
    }
    let hash: i64 = items.iter().map(|i| i.available.max(0)).sum();
    b.segment("CTT", &[items.len().to_string(), hash.to_string()]);
    b
}

/// Why a shipment document cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error("order {order} has no shipment {shipment:?}")]
    UnknownShipment { order: String, shipment: String },
    #[error("X12 amounts carry two implied decimals; {currency} has {exponent}")]
    CurrencyTooFine { currency: String, exponent: u32 },
}

fn shipment_index(record: &OrderRecord, shipment_id: &str) -> Result<usize, DocumentError> {
    record.shipments.iter().position(|s| s.shipment_id == shipment_id).ok_or_else(|| DocumentError::UnknownShipment {
        order: record.key().to_string(),
        shipment: shipment_id.to_owned(),
    })
}

fn ship_to(b: &mut SetBuilder, record: &OrderRecord) {
    let a = &record.order.ship_to;
    b.segment("N1", &["ST", &a.name]);
    b.segment("N3", &[&a.line1, &a.line2]);
    b.segment("N4", &[&a.city, &a.region, &a.postal_code, &a.country]);
}

/// An 856 ship notice for one shipment: hierarchy 0004 (shipment, order, items) when nothing
/// says how it was packed; 0001 (shipment, order, packs, items) with the cartons it carried —
/// each with its id (MAN*CP), weight and dimensions (MEA), and the line records and units in it.
pub fn ship_notice_856(
    record: &OrderRecord,
    shipment_id: &str,
    packages: &[&Package],
) -> Result<SetBuilder, DocumentError> {
    let index = shipment_index(record, shipment_id)?;
    let shipment = &record.shipments[index];
    let at = shipment.shipped_at;
    let structure = if packages.is_empty() { "0004" } else { "0001" };
    let mut b = SetBuilder::new();
    b.segment("BSN", &["00", &shipment.shipment_id, &ccyymmdd(at.date()), &hhmm(at), structure]);
    b.segment("HL", &["1", "", "S"]);
    if !packages.is_empty() {
        let grams: u64 = packages.iter().map(|p| u64::from(p.weight_grams)).sum();
        b.segment(
            "TD1",
            &[
                "CTN25".to_owned(),
                packages.len().to_string(),
                String::new(),
                String::new(),
                String::new(),
                "G".into(),
                kilograms(grams),
                "KG".into(),
            ],
        );
    }
    b.segment("TD5", &["", "2", &shipment.carrier, "", &shipment.service]);
    b.segment("REF", &["CN", &shipment.tracking]);
    b.segment("DTM", &["011", &ccyymmdd(at.date()), &hhmm(at)]);
    ship_to(&mut b, record);
    b.segment("N1", &["SF", "", "92", shipment.location.as_str()]);
    b.segment("HL", &["2", "1", "O"]);
    b.segment("PRF", &[&record.order.channel_order_id, "", "", &ccyymmdd(record.order.placed_at.date())]);
    let mut hl = 2;
    if packages.is_empty() {
        for share in record.shipment_share(index) {
            hl += 1;
            b.segment("HL", &[hl.to_string(), "2".into(), "I".into()]);
            let [q, v] = product_id(&share.item);
            b.segment("LIN", &[share.line_id.as_str(), &q, &v]);
            b.segment("SN1", &["", &share.quantity.to_string(), &uom_code(&share.uom)]);
        }
    } else {
        for p in packages {
            hl += 1;
            let pack = hl;
            b.segment("HL", &[pack.to_string(), "2".into(), "P".into()]);
            b.segment("MAN", &["CP", &p.package_id]);
            b.segment("MEA", &["PD".to_owned(), "G".into(), kilograms(u64::from(p.weight_grams)), "KG".into()]);
            for (qualifier, mm) in [("LN", p.length_mm), ("WD", p.width_mm), ("HT", p.height_mm)] {
                b.segment("MEA", &["PD".to_owned(), qualifier.into(), centimetres(mm), "CM".into()]);
            }
            for l in &p.lines {
                hl += 1;
                b.segment("HL", &[hl.to_string(), pack.to_string(), "I".into()]);
                let sku = record.lines.iter().find(|r| r.line_id == l.line_id).and_then(|r| r.sku.as_ref());
                let product =
                    sku.map_or_else(|| ["VN".to_owned(), l.line_id.clone()], |s| ["VN".to_owned(), s.to_string()]);
                b.segment("LIN", &[l.line_id.as_str(), &product[0], &product[1]]);
                b.segment("SN1", &["", &l.units.to_string(), "EA"]);
            }
        }
    }
    b.segment("CTT", &[hl.to_string()]);
    Ok(b)
}

/// Grams as kilograms with three decimals (`1250` → `1.25`).
fn kilograms(grams: u64) -> String {
    decimal_r(grams as i64, 3)
}

/// Millimetres as centimetres with one decimal (`305` → `30.5`).
fn centimetres(mm: u32) -> String {
    decimal_r(i64::from(mm), 1)
}

/// An 810 invoice for one shipment: IT1 per line at the order's unit price, the lines' discounts
/// as one allowance (SAC C310), seller-collected tax per jurisdiction (TXI), and the total (TDS,
/// two implied decimals) = net + tax, as booked.
pub fn invoice_810(record: &OrderRecord, shipment_id: &str, invoiced_on: Date) -> Result<SetBuilder, DocumentError> {
    let index = shipment_index(record, shipment_id)?;
    let shipment = &record.shipments[index];
    let order = &record.order;
    let exponent = order.currency.exponent();
    if exponent > 2 {
        return Err(DocumentError::CurrencyTooFine { currency: order.currency.to_string(), exponent });
    }
    let n2 = |minor: i64| (minor * 10i64.pow(2 - exponent)).to_string();
    let shares = record.shipment_share(index);
    let mut b = SetBuilder::new();
    b.segment(
        "BIG",
        &[
            ccyymmdd(invoiced_on),
            format!("INV-{}-{}", order.channel_order_id, shipment.shipment_id),
            ccyymmdd(order.placed_at.date()),
            order.channel_order_id.clone(),
        ],
    );
    b.segment("CUR", &["SE", order.currency.as_str()]);
    ship_to(&mut b, record);
    b.segment("DTM", &["011", &ccyymmdd(shipment.shipped_at.date())]);
    let mut gross = 0i64;
    let mut taxes: std::collections::BTreeMap<&str, i64> = Default::default();
    for share in &shares {
        let [q, v] = product_id(&share.item);
        b.segment(
            "IT1",
            &[
                share.line_id.clone(),
                share.quantity.to_string(),
                uom_code(&share.uom),
                decimal_r(share.unit_price_minor, exponent),
                String::new(),
                q,
                v,
            ],
        );
        gross += share.unit_price_minor * share.quantity;
        for (j, t) in &share.taxes {
            *taxes.entry(j).or_insert(0) += t;
        }
    }
    let net: i64 = shares.iter().map(|s| s.net_minor).sum();
    let tax: i64 = taxes.values().sum();
    b.segment("TDS", &[n2(net + tax)]);
    for (j, t) in &taxes {
        b.segment("TXI", &["ST", &decimal_r(*t, exponent), "", "VD", j]);
    }
    // Discounts as an allowance; a rounding remainder the other way as a charge.
    if gross > net {
        b.segment("SAC", &["A", "C310", "", "", &n2(gross - net)]);
    } else if gross < net {
        b.segment("SAC", &["C", "ZZZZ", "", "", &n2(net - gross)]);
    }
    b.segment("CTT", &[shares.len().to_string()]);
    Ok(b)
}
