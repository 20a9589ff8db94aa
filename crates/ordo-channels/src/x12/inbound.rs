//! What an inbound interchange holds for Ordo: each transaction set read as a purchase order or
//! refused with its 997 verdict. Envelope faults refuse the sets they touch unless the partner is
//! read leniently (published and legacy partners' files get control totals wrong).

use ordo_types::ChannelCode;

use super::ack::{SegmentFault, SetVerdict};
use super::po850::{self, PurchaseOrder};
use super::{Interchange, set_name};
use crate::FormatError;

/// How strictly envelopes are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Envelopes {
    /// A set under a faulty envelope (its own trailer, its group's or its interchange's) is refused.
    #[default]
    Strict,
    /// Envelope faults are reported but the sets are read.
    Lenient,
}

/// One set's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetOutcome {
    PurchaseOrder(Box<PurchaseOrder>),
    Refused { verdict: SetVerdict, reason: String },
}

impl SetOutcome {
    /// The 997 verdict: accepted when it was read.
    pub fn verdict(&self) -> SetVerdict {
        match self {
            Self::PurchaseOrder(_) => SetVerdict::Accepted,
            Self::Refused { verdict, .. } => verdict.clone(),
        }
    }
}

/// Every set of every group, in file order: `outcomes[i][g][s]` for interchange i, group g, set s.
pub fn read(
    input: &str,
    interchanges: &[Interchange<'_>],
    channel: &ChannelCode,
    envelopes: Envelopes,
) -> Vec<Vec<Vec<SetOutcome>>> {
    interchanges
        .iter()
        .map(|interchange| {
            interchange
                .groups
                .iter()
                .map(|group| {
                    group
                        .sets
                        .iter()
                        .map(|set| {
                            let mut issues = Vec::new();
                            if envelopes == Envelopes::Strict {
                                issues.extend(interchange.issues.iter().cloned());
                                issues.extend(group.issues.iter().cloned());
                                issues.extend(set.issues.iter().cloned());
                            }
                            if !issues.is_empty() {
                                let reason = issues.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
                                // Only a set's own faults have AK5 codes; its envelope's are
                                // reported at AK9 (group) or by the interchange.
                                let own: Vec<_> = set.issues.iter().map(|i| i.code()).collect();
                                let codes = if own.is_empty() { vec!["5"] } else { own };
                                return SetOutcome::Refused {
                                    verdict: SetVerdict::Rejected { codes, segment: None },
                                    reason: format!("envelope: {reason}"),
                                };
                            }
                            if set.code != "850" {
                                return SetOutcome::Refused {
                                    verdict: SetVerdict::Rejected { codes: vec!["1"], segment: None },
                                    reason: format!(
                                        "transaction set {} ({}) is not one Ordo takes in; Ordo takes in 850 purchase orders",
                                        set.code,
                                        set_name(set.code)
                                    ),
                                };
                            }
                            match po850::parse(input, interchange, group, set, channel.clone()) {
                                Ok(po) => SetOutcome::PurchaseOrder(Box::new(po)),
                                Err(e) => SetOutcome::Refused {
                                    verdict: SetVerdict::Rejected { codes: vec!["5"], segment: fault(input, set, &e) },
                                    reason: e.to_string(),
                                },
                            }
                        })
                        .collect()
                })
                .collect()
        })
        .collect()
}

/// The AK3/AK4 position of a mapping error that names an element (`PO104`).
fn fault(input: &str, set: &super::TransactionSet<'_>, e: &FormatError) -> Option<SegmentFault> {
    let column = e.column.as_deref()?;
    // `PO104`: the segment id, then the element's two-digit position.
    let (id, element) = column.split_at_checked(column.len().checked_sub(2)?)?;
    let element: usize = element.parse().ok()?;
    // Position in the set counting ST as 1: the segment of that id on the error's line holding
    // the value found (the first such, when a file has no line breaks).
    let value = e.value.as_deref().unwrap_or_default();
    let position = set
        .segments
        .iter()
        .position(|s| s.id == id && s.element(element) == value && super::line_of(input, s.offset) == e.line)?
        + 2;
    Some(SegmentFault { segment_id: id.to_owned(), position, element, value: e.value.clone().unwrap_or_default() })
}
