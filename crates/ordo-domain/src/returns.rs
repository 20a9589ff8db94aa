//! Returns under ERP control: a return authorization (RMA) against shipped order lines, checked
//! against the channel's return policy (window, returnable classes); receipt into
//! `quality_control`; inspection with a grade per line that decides the disposition; and the
//! refund computed from grade and policy.
//!
//! | grade | meaning | disposition | restocking fee |
//! |---|---|---|---|
//! | A | as new | restock (→ available) | no |
//! | B | opened, resellable | restock | yes |
//! | C | damaged, repairable | refurbish (→ damaged, awaiting repair) | yes |
//! | D | unsellable | write off (quality_control → write-off) | yes |
//!
//! The refund of a line is its share of what the customer paid for the units returned (net of
//! discounts, plus the tax Ordo collected), less the restocking fee for its grade; the policy's
//! return-shipping charge, when the customer pays it, comes off the RMA's refund once. A trusted
//! customer is refunded at authorization (before the goods are back, without a restocking fee);
//! everyone else after inspection. Refunds above the policy's threshold go through the four-eyes
//! gate (`Command::Gated`). Each RMA change is one event carrying the RMA's whole new record and
//! the stock movements it made, like orders; the general ledger books them (`accounting`).

use std::collections::{BTreeMap, BTreeSet};

use ordo_types::{ChannelCode, LocationCode, Sku, SkuClass, Timestamp, Units};
use serde::{Deserialize, Serialize};

use crate::inventory::{Disposition, MoveCommand, MoveRejection, Movement};
use crate::orders::model::OrderKey;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnPolicy {
    /// Days after the last shipment within which a return is authorized.
    pub window_days: u16,
    /// SKU classes that may be returned; empty: every class.
    pub returnable_classes: BTreeSet<SkuClass>,
    /// Restocking fee in basis points of the line's refund, for grades B–D.
    pub restocking_fee_bp: u32,
    /// Charged to the customer (off the refund) for the return label; 0 when the retailer pays.
    pub return_shipping_minor: i64,
    /// Customers refunded at authorization.
    pub trusted_customers: BTreeSet<String>,
    /// Refunds above this need a second person's approval (when requested through the gate).
    pub refund_approval_above_minor: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum Grade {
    A,
    B,
    C,
    D,
}

impl Grade {
    pub fn disposition(self) -> Option<Disposition> {
        match self {
            Self::A | Self::B => Some(Disposition::Restock),
            Self::C => Some(Disposition::Damaged),
            Self::D => Some(Disposition::WriteOff),
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "A" | "a" => Some(Self::A),
            "B" | "b" => Some(Self::B),
            "C" | "c" => Some(Self::C),
            "D" | "d" => Some(Self::D),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RmaStatus {
    Authorized,
    Received,
    Inspected,
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RmaLine {
    pub order_line_id: String,
    pub sku: Sku,
    pub units: Units,
    /// What the customer paid for these units: net of discounts, and the tax by jurisdiction
    /// Ordo collected (marketplace-collected tax is the marketplace's to refund).
    pub paid_net_minor: i64,
    pub paid_tax_minor: BTreeMap<String, i64>,
    pub grade: Option<Grade>,
}

/// A refund as issued: what goes back to the customer and what was kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    pub net_minor: i64,
    pub tax_minor: BTreeMap<String, i64>,
    pub restocking_fee_minor: i64,
    pub return_shipping_minor: i64,
    /// net + tax − fees: what the customer gets.
    pub amount_minor: i64,
    pub at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rma {
    pub rma_id: String,
    pub order: OrderKey,
    pub customer_id: String,
    pub reason: String,
    pub lines: Vec<RmaLine>,
    pub status: RmaStatus,
    pub authorized_at: Timestamp,
    pub location: Option<LocationCode>,
    pub received_at: Option<Timestamp>,
    pub inspected_at: Option<Timestamp>,
    pub refund: Option<Refund>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReturnCommand {
    SetPolicy { channel: ChannelCode, policy: ReturnPolicy },
    Authorize { rma_id: String, order: OrderKey, lines: Vec<(String, Units)>, reason: String },
    Receive { rma_id: String, location: LocationCode },
    Inspect { rma_id: String, grades: Vec<(String, Grade)> },
    Refund { rma_id: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReturnEvent {
    PolicySet {
        channel: ChannelCode,
        policy: ReturnPolicy,
    },
    /// The RMA's new record and the movements that made it (receipt, dispositions).
    Recorded {
        rma: Box<Rma>,
        movements: Vec<Movement>,
    },
}

/// Why a return command was refused, most fundamental first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReturnRejection {
    #[error("unknown channel {0}")]
    UnknownChannel(ChannelCode),
    #[error("{0} has no return policy; set one with `ordo return policy`")]
    NoPolicy(ChannelCode),
    #[error("unknown RMA {0}")]
    UnknownRma(String),
    #[error("RMA {0} already exists")]
    RmaExists(String),
    #[error("unknown order {0}")]
    UnknownOrder(OrderKey),
    #[error("order {0} has shipped nothing to return")]
    NothingShipped(OrderKey),
    #[error("an RMA needs at least one line")]
    NoLines,
    #[error("order {order} has no line {line:?}")]
    UnknownLine { order: OrderKey, line: String },
    #[error("line {line:?}: {asked} units asked, {returnable} shipped and not yet returned")]
    TooManyUnits { line: String, asked: Units, returnable: Units },
    #[error("the return window of {days} days closed on {closed}")]
    OutsideWindow { days: u16, closed: ordo_types::Date },
    #[error("{sku} (class {class}) is not returnable under {channel}'s policy")]
    NotReturnable { sku: Sku, class: String, channel: ChannelCode },
    #[error("RMA {rma} is {status:?}; it cannot be {action} now")]
    Illegal { rma: String, status: RmaStatus, action: &'static str },
    #[error("line {0:?} has no grade; grade every line (A–D)")]
    MissingGrade(String),
    #[error("RMA {0} is already refunded")]
    AlreadyRefunded(String),
    #[error("line {0:?} appears twice; give each line once with all its units")]
    DuplicateLine(String),
    #[error("a restocking fee of {0} bp is more than the whole refund")]
    FeeAboveRefund(u32),
    #[error("{sku} at {location}: {needed} units to dispose, {held} in quality control")]
    NotInQualityControl { sku: Sku, location: LocationCode, needed: Units, held: Units },
    #[error(transparent)]
    Move(#[from] MoveRejection),
}

/// The returns book inside [`crate::State`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Returns {
    pub(crate) policies: BTreeMap<ChannelCode, ReturnPolicy>,
    pub(crate) rmas: BTreeMap<String, Rma>,
}

impl Returns {
    pub fn get(&self, rma_id: &str) -> Option<&Rma> {
        self.rmas.get(rma_id)
    }

    pub fn all(&self) -> impl Iterator<Item = &Rma> {
        self.rmas.values()
    }

    pub fn policy(&self, channel: &ChannelCode) -> Option<&ReturnPolicy> {
        self.policies.get(channel)
    }

    pub(crate) fn apply(&mut self, event: &ReturnEvent) {
        match event {
            ReturnEvent::PolicySet { channel, policy } => {
                self.policies.insert(channel.clone(), policy.clone());
            }
            ReturnEvent::Recorded { rma, .. } => {
                self.rmas.insert(rma.rma_id.clone(), (**rma).clone());
            }
        }
    }
}

/// `amount × part / whole` for refunds (see [`crate::accounting::prorate`]).
fn share(amount: i64, part: Units, whole: Units) -> i64 {
    if whole == 0 { 0 } else { crate::accounting::prorate(amount, part, whole) }
}

impl crate::State {
    pub fn returns(&self) -> &Returns {
        &self.returns
    }

    pub(crate) fn decide_return(
        &self,
        command: &ReturnCommand,
        now: Timestamp,
    ) -> Result<ReturnEvent, ReturnRejection> {
        match command {
            ReturnCommand::SetPolicy { channel, policy } => {
                if self.channel(channel).is_none() {
                    return Err(ReturnRejection::UnknownChannel(channel.clone()));
                }
                if policy.restocking_fee_bp > 10_000 {
                    return Err(ReturnRejection::FeeAboveRefund(policy.restocking_fee_bp));
                }
                Ok(ReturnEvent::PolicySet { channel: channel.clone(), policy: policy.clone() })
            }
            ReturnCommand::Authorize { rma_id, order, lines, reason } => {
                let policy = self
                    .returns
                    .policies
                    .get(&order.channel)
                    .ok_or_else(|| ReturnRejection::NoPolicy(order.channel.clone()))?;
                if self.returns.rmas.contains_key(rma_id) {
                    return Err(ReturnRejection::RmaExists(rma_id.clone()));
                }
                let record = self.orders.get(order).ok_or_else(|| ReturnRejection::UnknownOrder(order.clone()))?;
                let last_shipped = record.shipments.iter().map(|s| s.shipped_at).max();
                let Some(last_shipped) = last_shipped else {
                    return Err(ReturnRejection::NothingShipped(order.clone()));
                };
                if lines.is_empty() {
                    return Err(ReturnRejection::NoLines);
                }
                let closed = last_shipped.date().add_days(i32::from(policy.window_days));
                if now.date() > closed {
                    return Err(ReturnRejection::OutsideWindow { days: policy.window_days, closed });
                }
                let mut rma_lines = Vec::new();
                for (n, (line_id, _)) in lines.iter().enumerate() {
                    if lines[..n].iter().any(|(other, _)| other == line_id) {
                        return Err(ReturnRejection::DuplicateLine(line_id.clone()));
                    }
                }
                for (line_id, units) in lines {
                    let order_line =
                        record.order.lines.iter().find(|l| l.line_id == *line_id).ok_or_else(|| {
                            ReturnRejection::UnknownLine { order: order.clone(), line: line_id.clone() }
                        })?;
                    let (shipped, ordered) = record.shipped_of(line_id);
                    // Bundles return whole: the order line's units shipped, in the line's terms.
                    let shipped_units = if ordered == 0 { 0 } else { shipped * order_line.quantity / ordered };
                    let already: Units = self
                        .returns
                        .rmas
                        .values()
                        .filter(|r| r.order == *order)
                        .flat_map(|r| &r.lines)
                        .filter(|l| l.order_line_id == *line_id)
                        .map(|l| l.units)
                        .sum();
                    let returnable = shipped_units - already;
                    if *units <= 0 || *units > returnable {
                        return Err(ReturnRejection::TooManyUnits { line: line_id.clone(), asked: *units, returnable });
                    }
                    let sku = record
                        .lines
                        .iter()
                        .find(|l| l.order_line_id == *line_id)
                        .and_then(|p| p.sku.clone())
                        .ok_or_else(|| ReturnRejection::UnknownLine { order: order.clone(), line: line_id.clone() })?;
                    if !policy.returnable_classes.is_empty() {
                        let class = self.item(&sku).and_then(|i| i.sku_class.clone());
                        if class.as_ref().is_none_or(|c| !policy.returnable_classes.contains(c)) {
                            return Err(ReturnRejection::NotReturnable {
                                sku,
                                class: class.map_or_else(|| "none".to_owned(), |c| c.to_string()),
                                channel: order.channel.clone(),
                            });
                        }
                    }
                    // Cumulative shares: RMAs of one line never refund more than it was paid.
                    let cumulative = |total: i64| {
                        share(total, already + units, order_line.quantity) - share(total, already, order_line.quantity)
                    };
                    let mut tax = BTreeMap::new();
                    for t in order_line.tax_lines.iter().filter(|t| !t.channel_collected) {
                        *tax.entry(t.jurisdiction.clone()).or_insert(0) += cumulative(t.amount_minor);
                    }
                    rma_lines.push(RmaLine {
                        order_line_id: line_id.clone(),
                        sku,
                        units: *units,
                        paid_net_minor: cumulative(order_line.net_minor()),
                        paid_tax_minor: tax,
                        grade: None,
                    });
                }
                let mut rma = Rma {
                    rma_id: rma_id.clone(),
                    order: order.clone(),
                    customer_id: record.order.customer.id.clone(),
                    reason: reason.clone(),
                    lines: rma_lines,
                    status: RmaStatus::Authorized,
                    authorized_at: now,
                    location: None,
                    received_at: None,
                    inspected_at: None,
                    refund: None,
                };
                if policy.trusted_customers.contains(&rma.customer_id) {
                    rma.refund = Some(refund_of(&rma, policy, false, now));
                }
                Ok(ReturnEvent::Recorded { rma: Box::new(rma), movements: Vec::new() })
            }
            ReturnCommand::Receive { rma_id, location } => {
                let mut rma = self.rma(rma_id)?.clone();
                if rma.status != RmaStatus::Authorized {
                    return Err(illegal(&rma, "received"));
                }
                let mut movements = Vec::new();
                for l in &rma.lines {
                    let receipt = MoveCommand::ReturnReceipt {
                        sku: l.sku.clone(),
                        location: location.clone(),
                        units: l.units,
                        reference: ordo_types::Code::new(rma_id.clone()).ok(),
                    };
                    movements.push(self.decide_move_pub(&receipt)?);
                }
                rma.status = RmaStatus::Received;
                rma.location = Some(location.clone());
                rma.received_at = Some(now);
                Ok(ReturnEvent::Recorded { rma: Box::new(rma), movements })
            }
            ReturnCommand::Inspect { rma_id, grades } => {
                let mut rma = self.rma(rma_id)?.clone();
                if rma.status != RmaStatus::Received {
                    return Err(illegal(&rma, "inspected"));
                }
                let location = rma.location.clone().expect("a received RMA has its location");
                // All lines leave quality control together: together they must be there.
                let mut needed: BTreeMap<&Sku, Units> = BTreeMap::new();
                for l in &rma.lines {
                    *needed.entry(&l.sku).or_insert(0) += l.units;
                }
                for (sku, needed) in needed {
                    let held = self.buckets(sku, &location).get(crate::inventory::StockState::QualityControl);
                    if held < needed {
                        return Err(ReturnRejection::NotInQualityControl {
                            sku: sku.clone(),
                            location: location.clone(),
                            needed,
                            held,
                        });
                    }
                }
                let mut movements = Vec::new();
                for l in &mut rma.lines {
                    let grade = grades
                        .iter()
                        .find(|(id, _)| *id == l.order_line_id)
                        .map(|(_, g)| *g)
                        .ok_or_else(|| ReturnRejection::MissingGrade(l.order_line_id.clone()))?;
                    l.grade = Some(grade);
                    if let Some(disposition) = grade.disposition() {
                        let dispose = MoveCommand::Dispose {
                            sku: l.sku.clone(),
                            location: location.clone(),
                            units: l.units,
                            disposition,
                        };
                        movements.push(self.decide_move_pub(&dispose)?);
                    }
                }
                // A trusted customer's RMA was refunded at authorization: inspection closes it.
                rma.status = if rma.refund.is_some() { RmaStatus::Closed } else { RmaStatus::Inspected };
                rma.inspected_at = Some(now);
                Ok(ReturnEvent::Recorded { rma: Box::new(rma), movements })
            }
            ReturnCommand::Refund { rma_id } => {
                let mut rma = self.rma(rma_id)?.clone();
                if rma.refund.is_some() {
                    return Err(ReturnRejection::AlreadyRefunded(rma_id.clone()));
                }
                if rma.status != RmaStatus::Inspected {
                    return Err(illegal(&rma, "refunded"));
                }
                let policy = self
                    .returns
                    .policies
                    .get(&rma.order.channel)
                    .ok_or_else(|| ReturnRejection::NoPolicy(rma.order.channel.clone()))?;
                rma.refund = Some(refund_of(&rma, policy, true, now));
                rma.status = RmaStatus::Closed;
                Ok(ReturnEvent::Recorded { rma: Box::new(rma), movements: Vec::new() })
            }
        }
    }

    fn rma(&self, rma_id: &str) -> Result<&Rma, ReturnRejection> {
        self.returns.rmas.get(rma_id).ok_or_else(|| ReturnRejection::UnknownRma(rma_id.to_owned()))
    }
}

fn illegal(rma: &Rma, action: &'static str) -> ReturnRejection {
    ReturnRejection::Illegal { rma: rma.rma_id.clone(), status: rma.status, action }
}

/// The refund of `rma` under `policy`: restocking fees by grade when `graded`, the return label
/// once.
fn refund_of(rma: &Rma, policy: &ReturnPolicy, graded: bool, at: Timestamp) -> Refund {
    let mut net = 0;
    let mut tax: BTreeMap<String, i64> = BTreeMap::new();
    let mut fee = 0;
    for l in &rma.lines {
        net += l.paid_net_minor;
        for (j, t) in &l.paid_tax_minor {
            *tax.entry(j.clone()).or_insert(0) += t;
        }
        if graded && l.grade.is_some_and(|g| g != Grade::A) {
            fee += crate::accounting::prorate(l.paid_net_minor, i64::from(policy.restocking_fee_bp), 10_000);
        }
    }
    let gross = net + tax.values().sum::<i64>();
    let fee = fee.min(gross.max(0));
    let shipping = policy.return_shipping_minor.min(gross - fee).max(0);
    Refund {
        net_minor: net,
        tax_minor: tax,
        restocking_fee_minor: fee,
        return_shipping_minor: shipping,
        amount_minor: gross - fee - shipping,
        at,
    }
}

/// Why a return step (decided as `event`) needs a second person: a refund above its channel's
/// threshold, or an inspection that writes off more units than the approval policy allows.
pub fn approval_reason(state: &crate::State, event: &crate::Event) -> Option<String> {
    let crate::Event::Returns(ReturnEvent::Recorded { rma, movements }) = event.effect() else { return None };
    let written_off: Units = movements
        .iter()
        .filter(|m| m.kind == crate::inventory::MovementKind::WriteOff)
        .flat_map(|m| &m.postings)
        .map(|p| p.units)
        .sum();
    let limit = state.approvals.policy.write_off_units;
    if written_off > limit {
        return Some(format!(
            "inspection of RMA {} writes off {written_off} units, above the {limit} unit threshold",
            rma.rma_id
        ));
    }
    let refund = rma.refund.as_ref()?;
    let before = state.returns.rmas.get(&rma.rma_id).and_then(|r| r.refund.as_ref());
    let threshold = state.returns.policies.get(&rma.order.channel)?.refund_approval_above_minor;
    (before.is_none() && refund.amount_minor > threshold).then(|| {
        format!(
            "a refund of {} minor units is above the {threshold} threshold (RMA {})",
            refund.amount_minor, rma.rma_id
        )
    })
}
