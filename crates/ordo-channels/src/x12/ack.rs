//! The answers to an inbound interchange: the 997 functional acknowledgement (did each set read
//! as X12 — envelope, syntax, mapping) and the 855 purchase order acknowledgement (what Ordo will
//! ship of each line: accepted, backordered or rejected, from the captured order's record).

use ordo_domain::orders::book::OrderRecord;
use ordo_types::Date;

use super::po850::{PoLine, PurchaseOrder};
use super::write::SetBuilder;
use super::{EnvelopeIssue, Group};

/// Whether a set was taken in, and if not, why (AK5 codes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetVerdict {
    Accepted,
    /// Rejected with AK5 codes: `1` not supported, `2`–`4` envelope faults, `5` segments in error.
    Rejected {
        codes: Vec<&'static str>,
        segment: Option<SegmentFault>,
    },
}

/// Where a set's content is wrong (AK3/AK4): the segment id, its position in the set (ST = 1),
/// the element's position and the value found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentFault {
    pub segment_id: String,
    pub position: usize,
    pub element: usize,
    pub value: String,
}

impl SetVerdict {
    pub fn from_issues(issues: &[EnvelopeIssue]) -> Self {
        if issues.is_empty() {
            Self::Accepted
        } else {
            Self::Rejected { codes: issues.iter().map(EnvelopeIssue::code).collect(), segment: None }
        }
    }
}

/// A 997 for `group`, one verdict per set in the group's order.
pub fn functional_ack_997(group: &Group<'_>, verdicts: &[SetVerdict]) -> SetBuilder {
    assert_eq!(group.sets.len(), verdicts.len(), "one verdict per set");
    let mut b = SetBuilder::new();
    b.segment("AK1", &[group.functional_id(), group.control_number()]);
    for (set, verdict) in group.sets.iter().zip(verdicts) {
        b.segment("AK2", &[set.code, set.control_number]);
        match verdict {
            SetVerdict::Accepted => {
                b.segment("AK5", &["A"]);
            }
            SetVerdict::Rejected { codes, segment } => {
                if let Some(f) = segment {
                    b.segment("AK3", &[f.segment_id.as_str(), &f.position.to_string()]);
                    b.segment("AK4", &[f.element.to_string().as_str(), "", "7", &f.value]);
                }
                let mut ak5 = vec!["R"];
                ak5.extend(codes.iter().take(5));
                b.segment("AK5", &ak5);
            }
        }
    }
    let received = group.sets.len();
    let accepted = verdicts.iter().filter(|v| **v == SetVerdict::Accepted).count();
    let status = if !group.issues.is_empty() || accepted == 0 && received > 0 {
        "R"
    } else if accepted < received {
        "P"
    } else {
        "A"
    };
    let mut ak9 = vec![status.to_owned(), received.to_string(), received.to_string(), accepted.to_string()];
    ak9.extend(group.issues.iter().map(|i| i.code().to_owned()).take(5));
    b.segment("AK9", &ak9);
    b
}

/// What Ordo will do with one PO line, in the PO's unit of measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineDecision {
    pub accepted: i64,
    pub backordered: i64,
    /// When the backordered quantity is expected, if known.
    pub expected_on: Option<Date>,
    /// Units waiting on a hold (review, stock discrepancy…): neither promised nor refused.
    pub held: i64,
    pub rejected: i64,
}

/// Line decisions from the captured order (none: the PO was refused — every line rejected).
/// Units reserved become accepted, backordered units backordered, the rest of an order on hold
/// held, and a line whose item Ordo does not know (or cancelled units) rejected; base units are
/// converted back to the PO's unit.
pub fn decisions(po: &PurchaseOrder, record: Option<&OrderRecord>) -> Vec<LineDecision> {
    po.lines
        .iter()
        .map(|line| {
            let rejected_all =
                LineDecision { accepted: 0, backordered: 0, expected_on: None, held: 0, rejected: line.quantity };
            let Some(record) = record else { return rejected_all };
            let records: Vec<_> = record.lines.iter().filter(|l| l.order_line_id == line.line_id).collect();
            let units: i64 = records.iter().map(|l| l.units).sum();
            if records.is_empty() || units == 0 || records.iter().any(|l| l.sku.is_none()) {
                return rejected_all;
            }
            // Shipped and picked units were reserved first; the share is what counts.
            let reserved: i64 = records.iter().map(|l| l.reserved() + l.picked + l.shipped).sum::<i64>().min(units);
            let backordered: i64 = records.iter().map(|l| l.backordered).sum::<i64>().min(units - reserved);
            let in_po_unit = |base: i64| base * line.quantity / units;
            let cancelled: i64 = records.iter().map(|l| l.cancelled).sum::<i64>().min(units - reserved - backordered);
            let accepted = in_po_unit(reserved);
            let backordered_po = in_po_unit(reserved + backordered) - accepted;
            let on_hold = record.status == ordo_domain::orders::lifecycle::OrderStatus::OnHold;
            let rejected = if on_hold { in_po_unit(cancelled) } else { line.quantity - accepted - backordered_po };
            LineDecision {
                accepted,
                backordered: backordered_po,
                expected_on: records.iter().filter_map(|l| l.expected_on).max(),
                held: line.quantity - accepted - backordered_po - rejected,
                rejected,
            }
        })
        .collect()
}

fn echo_po1(b: &mut SetBuilder, line: &PoLine) {
    let mut po1 = vec![
        line.line_id.clone(),
        line.quantity.to_string(),
        line.uom_code.clone(),
        line.unit_price.clone(),
        line.price_basis.clone(),
    ];
    for (q, v) in &line.product_ids {
        po1.push(q.clone());
        po1.push(v.clone());
    }
    b.segment("PO1", &po1);
}

/// An 855 for `po`: BAK02 `AD` when every line is accepted as ordered, `AH` when any is on
/// hold, `AC` when any line changed, `RJ` when nothing is accepted; per line ACK `IA`
/// accepted, `IB` backordered (with the expected date, qualifier 068), `IH` on hold, `IR`
/// rejected.
pub fn po_ack_855(po: &PurchaseOrder, decisions: &[LineDecision], today: Date) -> SetBuilder {
    assert_eq!(po.lines.len(), decisions.len(), "one decision per PO line");
    let ccyymmdd = |d: Date| d.to_string().replace('-', "");
    let accepted_all = decisions.iter().all(|d| d.backordered == 0 && d.rejected == 0 && d.held == 0);
    let nothing = decisions.iter().all(|d| d.accepted == 0 && d.backordered == 0 && d.held == 0);
    let kind = if nothing {
        "RJ"
    } else if decisions.iter().any(|d| d.held > 0) {
        "AH"
    } else if accepted_all {
        "AD"
    } else {
        "AC"
    };
    let mut b = SetBuilder::new();
    b.segment("BAK", &["00", kind, &po.po_number, &po.po_date, "", "", "", "", &ccyymmdd(today)]);
    b.segment("CUR", &["SE", po.order.currency.as_str()]);
    for (line, d) in po.lines.iter().zip(decisions) {
        echo_po1(&mut b, line);
        if d.accepted > 0 {
            b.segment("ACK", &["IA", &d.accepted.to_string(), &line.uom_code]);
        }
        if d.backordered > 0 {
            let date = d.expected_on.map(ccyymmdd).unwrap_or_default();
            let qualifier = if date.is_empty() { "" } else { "068" };
            b.segment("ACK", &["IB", &d.backordered.to_string(), &line.uom_code, qualifier, &date]);
        }
        if d.held > 0 {
            b.segment("ACK", &["IH", &d.held.to_string(), &line.uom_code]);
        }
        if d.rejected > 0 {
            b.segment("ACK", &["IR", &d.rejected.to_string(), &line.uom_code]);
        }
    }
    let hash: i64 = po.lines.iter().map(|l| l.quantity).sum();
    b.segment("CTT", &[po.lines.len().to_string(), hash.to_string()]);
    b
}
