//! Printable documents of a shipment: the packing slip that goes in the parcel and the invoice
//! for what it contained, as self-contained HTML (print to PDF from any browser). Amounts are
//! the shipment's share of each line exactly as the general ledger booked it (cumulative shares,
//! so a line's invoices add up to the line); every outside text is escaped.

use std::fmt::Write as _;

use anyhow::{Result, bail};
use ordo_domain::State;
use ordo_domain::orders::model::OrderKey;
use ordo_types::format_decimal;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Invoice,
    PackingSlip,
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn description(item: &ordo_domain::orders::model::LineItem) -> String {
    match item {
        ordo_domain::orders::model::LineItem::Sku(s) => s.to_string(),
        ordo_domain::orders::model::LineItem::Listing(l) => l.clone(),
    }
}

/// The document of `kind` for `shipment_id` of `key`.
pub fn render(state: &State, key: &OrderKey, shipment_id: &str, kind: Kind) -> Result<String> {
    let Some(record) = state.orders().get(key) else { bail!("unknown order {key}") };
    let Some(index) = record.shipments.iter().position(|s| s.shipment_id == shipment_id) else {
        bail!("order {key} has no shipment {shipment_id:?}")
    };
    let shipment = &record.shipments[index];
    let order = &record.order;
    let seller = state
        .channel(&order.channel)
        .and_then(|c| state.legal_entities().find(|e| e.code == c.legal_entity))
        .map_or_else(|| order.channel.to_string(), |e| e.name.clone());
    let exponent = order.currency.exponent();
    let money = |minor: i64| format!("{} {}", format_decimal(minor, exponent), order.currency);
    let title = match kind {
        Kind::Invoice => format!("Invoice INV-{}-{}", order.channel_order_id, shipment.shipment_id),
        Kind::PackingSlip => format!("Packing slip {}", shipment.shipment_id),
    };
    let to = &order.ship_to;
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\n\
         <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;width:100%}}\
         td,th{{border-bottom:1px solid #ccc;padding:4px;text-align:left}}.n{{text-align:right}}</style></head>\n<body>\n\
         <h1>{title}</h1>\n<p>{seller}<br>Order {order_ref} placed {placed}<br>Shipped {shipped} from {node} by {carrier} {service}, tracking {tracking}</p>\n\
         <h2>Ship to</h2>\n<p>{name}<br>{line1}{line2}<br>{city}, {region} {postal}<br>{country}</p>\n",
        title = escape(&title),
        seller = escape(&seller),
        order_ref = escape(&key.to_string()),
        placed = order.placed_at,
        shipped = shipment.shipped_at,
        node = escape(shipment.location.as_str()),
        carrier = escape(&shipment.carrier),
        service = escape(&shipment.service),
        tracking = escape(&shipment.tracking),
        name = escape(&to.name),
        line1 = escape(&to.line1),
        line2 = if to.line2.is_empty() { String::new() } else { format!("<br>{}", escape(&to.line2)) },
        city = escape(&to.city),
        region = escape(&to.region),
        postal = escape(&to.postal_code),
        country = escape(&to.country),
    );
    let rows = record.shipment_share(index);
    let cartons: Vec<_> =
        state.orders().package_shipments(key).into_iter().filter(|(_, s)| *s == Some(index)).map(|(p, _)| p).collect();
    if !cartons.is_empty() {
        html.push_str("<h2>Cartons</h2>\n<table>\n<tr><th>carton</th><th class=\"n\">weight</th><th>size (mm)</th><th>contents</th></tr>\n");
        for c in &cartons {
            let contents: Vec<String> =
                c.lines.iter().map(|l| format!("{} × {}", l.units, escape(&l.line_id))).collect();
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td class=\"n\">{} g</td><td>{} × {} × {}</td><td>{}</td></tr>",
                escape(&c.package_id),
                c.weight_grams,
                c.length_mm,
                c.width_mm,
                c.height_mm,
                contents.join(", ")
            );
        }
        html.push_str("</table>\n");
    }
    match kind {
        Kind::PackingSlip => {
            html.push_str("<table>\n<tr><th>line</th><th>item</th><th class=\"n\">units</th></tr>\n");
            for r in &rows {
                let _ = writeln!(
                    html,
                    "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
                    escape(&r.line_id),
                    escape(&description(&r.item)),
                    r.quantity
                );
            }
            html.push_str("</table>\n");
        }
        Kind::Invoice => {
            html.push_str(
                "<table>\n<tr><th>line</th><th>item</th><th class=\"n\">units</th><th class=\"n\">net</th></tr>\n",
            );
            let mut taxes: std::collections::BTreeMap<String, i64> = Default::default();
            for r in &rows {
                let _ = writeln!(
                    html,
                    "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                    escape(&r.line_id),
                    escape(&description(&r.item)),
                    r.quantity,
                    money(r.net_minor)
                );
                for (j, t) in &r.taxes {
                    *taxes.entry(j.clone()).or_insert(0) += t;
                }
            }
            let net: i64 = rows.iter().map(|r| r.net_minor).sum();
            let _ = writeln!(html, "<tr><th colspan=\"3\">net</th><td class=\"n\">{}</td></tr>", money(net));
            for (j, t) in &taxes {
                let _ = writeln!(
                    html,
                    "<tr><th colspan=\"3\">tax {}</th><td class=\"n\">{}</td></tr>",
                    escape(j),
                    money(*t)
                );
            }
            let total = net + taxes.values().sum::<i64>();
            let _ =
                writeln!(html, "<tr><th colspan=\"3\">total</th><td class=\"n\">{}</td></tr>\n</table>", money(total));
        }
    }
    html.push_str("</body></html>\n");
    Ok(html)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_text_is_escaped() {
        assert_eq!(escape("<b>\"Tom & Jerry's\"</b>"), "&lt;b&gt;&quot;Tom &amp; Jerry&#39;s&quot;&lt;/b&gt;");
    }
}
