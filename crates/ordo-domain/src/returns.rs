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
//!
//! An **exchange** settles an inspected RMA with goods instead of money: each exchanged line's
//! returned units go out again as a replacement order on the same channel, for the same
//! customer, address and shipping method, of the same SKU (a faulty unit replaced) or another
//! one at the same list price (a size or colour swap). The exchange is even: the replacement is
//! priced at what the customer paid for the units returned (the line's unit price, its share of
//! the discount and of the tax Ordo collected), so no money moves and no restocking fee or
//! return label is charged — the retailer keeps the sale. Ordo refuses an exchange for a SKU the
//! channel lists at another price than the returned one (refund it and take a new order). Lines
//! not exchanged are refunded in the same step, by grade and policy as above. The books see a
//! credit for the returned units (Dr Sales returns, Dr Tax payable / Cr Channel receivable, rule
//! `exchange`) and, when the replacement ships, its sale, which restores the receivable the
//! channel settles once. The replacement is tagged `exchange:RMA` and its shipment is not
//! confirmed to the channel, which never had that order. A replacement that is cancelled leaves
//! the credit of what did not ship to be refunded (`Refund` on the RMA).

use std::collections::{BTreeMap, BTreeSet};

use ordo_types::{ChannelCode, LocationCode, Sku, SkuClass, Timestamp, Units};
use serde::{Deserialize, Serialize};

use crate::inventory::{Disposition, MoveCommand, MoveRejection, Movement};
use crate::orders::book::{OrderCommand, OrderEvent, OrderRecord, OrderRejection};
use crate::orders::model::{FulfillmentIntent, LineItem, Order, OrderKey, OrderLine, PaymentStatus, Shipping, TaxLine};

/// The tag a replacement order carries, followed by its RMA's id.
pub const EXCHANGE_TAG: &str = "exchange:";

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

impl Refund {
    /// Net and tax given back whole: no restocking fee, no return label (an exchange's credit,
    /// the refund of a replacement that never shipped).
    pub fn without_fees(net_minor: i64, tax_minor: BTreeMap<String, i64>, at: Timestamp) -> Self {
        let amount_minor = net_minor + tax_minor.values().sum::<i64>();
        Self { net_minor, tax_minor, restocking_fee_minor: 0, return_shipping_minor: 0, amount_minor, at }
    }
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

/// An RMA settled (in part) with a replacement order instead of a refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exchange {
    pub rma_id: String,
    pub replacement: OrderKey,
    /// Each exchanged order line and the SKU sent in its place (for all the line's returned units).
    pub lines: Vec<(String, Sku)>,
    /// What the returned units of those lines were worth, credited against the replacement:
    /// never a fee or a label, and `amount_minor` is what the replacement is priced at.
    pub credit: Refund,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReturnCommand {
    SetPolicy {
        channel: ChannelCode,
        policy: ReturnPolicy,
    },
    Authorize {
        rma_id: String,
        order: OrderKey,
        lines: Vec<(String, Units)>,
        reason: String,
    },
    Receive {
        rma_id: String,
        location: LocationCode,
    },
    Inspect {
        rma_id: String,
        grades: Vec<(String, Grade)>,
    },
    Refund {
        rma_id: String,
    },
    /// Settles an inspected RMA: `lines` (order line, replacement SKU) go out again as order
    /// `replacement_order_id` on the same channel; the RMA's other lines are refunded.
    Exchange {
        rma_id: String,
        replacement_order_id: String,
        lines: Vec<(String, Sku)>,
    },
    /// A refund the channel issued itself (a Shopify `refunds/create`): recorded as an RMA already
    /// refunded, so Ordo never refunds those units again.
    RecordChannelRefund(ChannelRefund),
}

/// A refund a channel issued on its own side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelRefund {
    /// The channel's refund id (unique per channel): the RMA is `{channel}-REFUND-{id}`.
    pub refund_id: String,
    pub order: OrderKey,
    /// Order line, units refunded, and whether the goods come back.
    pub lines: Vec<(String, Units, bool)>,
    /// The money that went back to the customer, in the order's currency.
    pub amount_minor: i64,
    /// The channel's note on the refund (`Ordo RMA-7` on a refund Ordo itself passed on).
    pub note: String,
}

/// The note Ordo puts on a refund it passes to a channel, naming the RMA.
pub fn refund_note(rma_id: &str) -> String {
    format!("Ordo {rma_id}")
}

impl ChannelRefund {
    pub fn rma_id(&self) -> String {
        format!("{}-REFUND-{}", self.order.channel, self.refund_id)
    }
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
    /// The RMA closed by an exchange (its `refund`, if any, is of the lines not exchanged), and
    /// the replacement order as captured.
    Exchanged {
        rma: Box<Rma>,
        exchange: Box<Exchange>,
        replacement: Box<OrderEvent>,
    },
    /// A refund the channel issued, as RMAs whose `refund` is what it gave back for the goods:
    /// those coming back (authorized) and those the customer keeps (closed; for a refund of money
    /// alone, the refund's record with no lines); `beyond_goods_minor` is what it refunded beyond
    /// the goods' price (shipping, adjustments).
    RefundedByChannel {
        returning: Option<Box<Rma>>,
        kept: Option<Box<Rma>>,
        beyond_goods_minor: i64,
    },
    /// The credit of an exchange whose replacement was cancelled, refunded for what did not ship.
    ExchangeRefunded {
        rma_id: String,
        order: OrderKey,
        /// The original order's lines and the units refunded of each (what did not ship again).
        lines: Vec<(String, Units)>,
        refund: Box<Refund>,
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
    #[error("RMA {rma} has no line {line:?} to exchange")]
    NotOnRma { rma: String, line: String },
    #[error("unknown SKU {0}: a replacement must be an item of the catalog")]
    UnknownSku(Sku),
    #[error("order {0} already exists; choose another id for the replacement")]
    ReplacementExists(OrderKey),
    #[error(
        "line {line:?}: {channel} lists {replacement} at {replacement_price} {currency_replacement}, {returned} at \
         {returned_price} {currency_returned}; an exchange is even — refund the line and take a new order"
    )]
    UnevenExchange {
        line: String,
        channel: ChannelCode,
        returned: Sku,
        returned_price: i64,
        currency_returned: ordo_types::CurrencyCode,
        replacement: Sku,
        replacement_price: i64,
        currency_replacement: ordo_types::CurrencyCode,
    },
    #[error(
        "{sku} has no list price on {channel}: an exchange for another SKU needs both listed at one price \
         (`ordo order settings` price lines)"
    )]
    NotListed { sku: Sku, channel: ChannelCode },
    #[error("order {0} was fulfilled by the channel; its exchanges are the channel's")]
    FulfilledByChannel(OrderKey),
    #[error("the replacement order: {0}")]
    Replacement(Box<OrderRejection>),
    #[error("a refund of {0} minor units: a refund is never negative")]
    NegativeRefund(i64),
    #[error("RMA {rma} was exchanged; its replacement {order} is {status}: cancel it before refunding the credit")]
    ReplacementNotCancelled { rma: String, order: OrderKey, status: &'static str },
    #[error("the refund is Ordo's own for RMA {0}, passed on to the channel: already booked")]
    OwnRefund(String),
    #[error("a refund of {0} minor units is out of range")]
    RefundOutOfRange(i64),
    #[error(
        "line {line:?} is on RMA {rma}, not refunded yet: settle that RMA as refunded by the channel (it \
         would refund the units again)"
    )]
    OnOpenRma { rma: String, line: String },
    #[error("the refund of order {0} is of units that never shipped: the order's update cancels them")]
    OnlyUnshipped(OrderKey),
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
    pub(crate) exchanges: BTreeMap<String, Exchange>,
    /// Exchanges whose replacement was cancelled, and what was refunded for them.
    pub(crate) exchange_refunds: BTreeMap<String, Refund>,
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

    /// The exchange that settled `rma_id`, if it was settled with goods.
    pub fn exchange(&self, rma_id: &str) -> Option<&Exchange> {
        self.exchanges.get(rma_id)
    }

    /// What was refunded of an exchange whose replacement was cancelled.
    pub fn exchange_refund(&self, rma_id: &str) -> Option<&Refund> {
        self.exchange_refunds.get(rma_id)
    }

    pub(crate) fn apply(&mut self, event: &ReturnEvent) {
        match event {
            ReturnEvent::PolicySet { channel, policy } => {
                self.policies.insert(channel.clone(), policy.clone());
            }
            ReturnEvent::Recorded { rma, .. } => {
                self.rmas.insert(rma.rma_id.clone(), (**rma).clone());
            }
            ReturnEvent::ExchangeRefunded { rma_id, refund, .. } => {
                self.exchange_refunds.insert(rma_id.clone(), (**refund).clone());
            }
            ReturnEvent::RefundedByChannel { returning, kept, .. } => {
                for rma in returning.iter().chain(kept) {
                    self.rmas.insert(rma.rma_id.clone(), (**rma).clone());
                }
            }
            ReturnEvent::Exchanged { rma, exchange, .. } => {
                self.rmas.insert(rma.rma_id.clone(), (**rma).clone());
                self.exchanges.insert(rma.rma_id.clone(), (**exchange).clone());
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
                    let line = self.rma_line(record, line_id, *units)?;
                    if !policy.returnable_classes.is_empty() {
                        let class = self.item(&line.sku).and_then(|i| i.sku_class.clone());
                        if class.as_ref().is_none_or(|c| !policy.returnable_classes.contains(c)) {
                            return Err(ReturnRejection::NotReturnable {
                                sku: line.sku,
                                class: class.map_or_else(|| "none".to_owned(), |c| c.to_string()),
                                channel: order.channel.clone(),
                            });
                        }
                    }
                    rma_lines.push(line);
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
                if self.returns.exchanges.contains_key(rma_id) {
                    return self.decide_exchange_refund(rma_id, now);
                }
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
            ReturnCommand::Exchange { rma_id, replacement_order_id, lines } => {
                self.decide_exchange(rma_id, replacement_order_id, lines, now)
            }
            ReturnCommand::RecordChannelRefund(refund) => self.decide_channel_refund(refund, now),
        }
    }

    /// An exchange whose replacement was cancelled: the customer is owed the credit of what did
    /// not ship (each replacement line's price and tax for its unshipped units). No entry: the
    /// credit already took it off the receivable, and no sale of the replacement put it back;
    /// the channel is told, and pays out that much less.
    fn decide_exchange_refund(&self, rma_id: &str, now: Timestamp) -> Result<ReturnEvent, ReturnRejection> {
        let exchange = &self.returns.exchanges[rma_id];
        if self.returns.exchange_refunds.contains_key(rma_id) {
            return Err(ReturnRejection::AlreadyRefunded(rma_id.to_owned()));
        }
        let replacement = self
            .orders
            .get(&exchange.replacement)
            .ok_or_else(|| ReturnRejection::UnknownOrder(exchange.replacement.clone()))?;
        if replacement.status != crate::orders::lifecycle::OrderStatus::Cancelled {
            return Err(ReturnRejection::ReplacementNotCancelled {
                rma: rma_id.to_owned(),
                order: exchange.replacement.clone(),
                status: replacement.status.as_str(),
            });
        }
        let mut net = 0;
        let mut tax: BTreeMap<String, i64> = BTreeMap::new();
        let mut lines = Vec::new();
        // A replacement line keeps the id of the original line it replaces.
        for line in &replacement.order.lines {
            let unshipped = line.quantity - replacement.shipped_units(&line.line_id);
            if unshipped > 0 {
                lines.push((line.line_id.clone(), unshipped));
            }
            net += share(line.net_minor(), unshipped, line.quantity);
            for t in &line.tax_lines {
                *tax.entry(t.jurisdiction.clone()).or_insert(0) += share(t.amount_minor, unshipped, line.quantity);
            }
        }
        let refund = Refund::without_fees(net, tax, now);
        Ok(ReturnEvent::ExchangeRefunded {
            rma_id: rma_id.to_owned(),
            order: self.rma(rma_id)?.order.clone(),
            lines,
            refund: Box::new(refund),
        })
    }

    /// A channel's own refund: a fact, so no policy, window or class applies. Its units are the
    /// shipped ones not yet returned: those coming back on one RMA (authorized: received and
    /// inspected as usual), those the customer keeps on another (closed). The money of units that
    /// never shipped is not Ordo's to book (no sale was); the goods' paid share is the RMAs'
    /// refund, what the channel kept of it a restocking fee (shared by value), and what it gave
    /// beyond (shipping, adjustments) is booked apart. Refused while an Ordo RMA holds those units
    /// unrefunded — that RMA would refund them again.
    fn decide_channel_refund(&self, refund: &ChannelRefund, now: Timestamp) -> Result<ReturnEvent, ReturnRejection> {
        let base_id = refund.rma_id();
        let kept_id = format!("{base_id}-KEPT");
        if self.returns.rmas.contains_key(&base_id) || self.returns.rmas.contains_key(&kept_id) {
            return Err(ReturnRejection::RmaExists(base_id));
        }
        let order = &refund.order;
        let record = self.orders.get(order).ok_or_else(|| ReturnRejection::UnknownOrder(order.clone()))?;
        // The channel telling of a refund Ordo passed on to it: booked when Ordo issued it.
        if let Some(own) = self.returns.rmas.values().find(|r| {
            r.order == *order
                && refund.note.trim() == refund_note(&r.rma_id)
                && (r.refund.is_some() || self.returns.exchange_refunds.contains_key(&r.rma_id))
        }) {
            return Err(ReturnRejection::OwnRefund(own.rma_id.clone()));
        }
        if refund.amount_minor < 0 {
            return Err(ReturnRejection::NegativeRefund(refund.amount_minor));
        }
        // Far beyond any order; keeps every sum and conversion of it in range.
        if refund.amount_minor > 1_000_000_000_000 {
            return Err(ReturnRejection::RefundOutOfRange(refund.amount_minor));
        }
        if record.shipments.is_empty() {
            return Err(ReturnRejection::NothingShipped(order.clone()));
        }
        for (n, (line_id, units, _)) in refund.lines.iter().enumerate() {
            if refund.lines[..n].iter().any(|(other, _, _)| other == line_id) {
                return Err(ReturnRejection::DuplicateLine(line_id.clone()));
            }
            if !record.order.lines.iter().any(|l| l.line_id == *line_id) {
                return Err(ReturnRejection::UnknownLine { order: order.clone(), line: line_id.clone() });
            }
            if *units <= 0 {
                return Err(ReturnRejection::TooManyUnits { line: line_id.clone(), asked: *units, returnable: 0 });
            }
        }
        let (mut returning, mut kept) = (Vec::new(), Vec::new());
        let mut never_shipped_minor = 0;
        for (line_id, units, back) in &refund.lines {
            let taken = (*units).min(self.returnable(record, line_id));
            if *units > taken {
                if let Some(open) = self.returns.rmas.values().find(|r| {
                    r.order == *order && r.refund.is_none() && r.lines.iter().any(|l| l.order_line_id == *line_id)
                }) {
                    return Err(ReturnRejection::OnOpenRma { rma: open.rma_id.clone(), line: line_id.clone() });
                }
                let ordered = record.order.lines.iter().find(|l| l.line_id == *line_id).expect("checked above");
                let unshipped = (*units - taken).min(ordered.quantity - record.shipped_units(line_id));
                let gross = ordered.net_minor()
                    + ordered.tax_lines.iter().filter(|t| !t.channel_collected).map(|t| t.amount_minor).sum::<i64>();
                never_shipped_minor += share(gross, unshipped, ordered.quantity);
            }
            if taken > 0 {
                let line = self.rma_line(record, line_id, taken)?;
                if *back { returning.push(line) } else { kept.push(line) }
            }
        }
        let goods = |lines: &[RmaLine]| -> i64 {
            lines.iter().map(|l| l.paid_net_minor + l.paid_tax_minor.values().sum::<i64>()).sum()
        };
        let (goods_returning, goods_kept) = (goods(&returning), goods(&kept));
        let total_goods = goods_returning + goods_kept;
        let paid_back = (refund.amount_minor - never_shipped_minor).max(0);
        if returning.is_empty() && kept.is_empty() && paid_back == 0 {
            return Err(ReturnRejection::OnlyUnshipped(order.clone()));
        }
        let shortfall = (total_goods - paid_back).max(0);
        let fee_returning = if total_goods == 0 { 0 } else { share(shortfall, goods_returning, total_goods) };
        let rma = |rma_id: String, lines: Vec<RmaLine>, fee: i64, status: RmaStatus| {
            let net: i64 = lines.iter().map(|l| l.paid_net_minor).sum();
            let mut tax: BTreeMap<String, i64> = BTreeMap::new();
            for (j, t) in lines.iter().flat_map(|l| &l.paid_tax_minor) {
                *tax.entry(j.clone()).or_insert(0) += t;
            }
            let gross = goods(&lines);
            Box::new(Rma {
                rma_id,
                order: order.clone(),
                customer_id: record.order.customer.id.clone(),
                reason: format!("refunded by {} (refund {})", order.channel, refund.refund_id),
                lines,
                status,
                authorized_at: now,
                location: None,
                received_at: None,
                inspected_at: None,
                refund: Some(Refund {
                    net_minor: net,
                    tax_minor: tax,
                    restocking_fee_minor: fee,
                    return_shipping_minor: 0,
                    amount_minor: gross - fee,
                    at: now,
                }),
            })
        };
        let returning_rma =
            (!returning.is_empty()).then(|| rma(base_id.clone(), returning, fee_returning, RmaStatus::Authorized));
        // What the customer keeps — or, for money alone, the refund's record.
        let kept_rma = (!kept.is_empty() || returning_rma.is_none()).then(|| {
            let id = if returning_rma.is_some() { kept_id } else { base_id };
            rma(id, kept, shortfall - fee_returning, RmaStatus::Closed)
        });
        Ok(ReturnEvent::RefundedByChannel {
            returning: returning_rma,
            kept: kept_rma,
            beyond_goods_minor: (paid_back - total_goods).max(0),
        })
    }

    fn decide_exchange(
        &self,
        rma_id: &str,
        replacement_order_id: &str,
        lines: &[(String, Sku)],
        now: Timestamp,
    ) -> Result<ReturnEvent, ReturnRejection> {
        let mut rma = self.rma(rma_id)?.clone();
        if rma.refund.is_some() {
            return Err(ReturnRejection::AlreadyRefunded(rma.rma_id));
        }
        if rma.status != RmaStatus::Inspected {
            return Err(illegal(&rma, "exchanged"));
        }
        if lines.is_empty() {
            return Err(ReturnRejection::NoLines);
        }
        for (n, (line_id, _)) in lines.iter().enumerate() {
            if lines[..n].iter().any(|(other, _)| other == line_id) {
                return Err(ReturnRejection::DuplicateLine(line_id.clone()));
            }
        }
        let policy = self
            .returns
            .policies
            .get(&rma.order.channel)
            .ok_or_else(|| ReturnRejection::NoPolicy(rma.order.channel.clone()))?;
        let record = self.orders.get(&rma.order).ok_or_else(|| ReturnRejection::UnknownOrder(rma.order.clone()))?;
        let original = &record.order;
        let key = OrderKey { channel: original.channel.clone(), channel_order_id: replacement_order_id.to_owned() };
        if self.orders.get(&key).is_some() {
            return Err(ReturnRejection::ReplacementExists(key));
        }
        let fulfillment = match &original.fulfillment {
            FulfillmentIntent::ByChannel => return Err(ReturnRejection::FulfilledByChannel(rma.order.clone())),
            // The till's customer collects the replacement where they bought the original.
            FulfillmentIntent::SoldInStore { store } => FulfillmentIntent::PickUpInStore { store: store.clone() },
            // The supplier shipped the original; the replacement comes from Ordo's own stock.
            FulfillmentIntent::DropShip { .. } => FulfillmentIntent::Ship { ship_from_store_allowed: false },
            other => other.clone(),
        };
        let mut order_lines = Vec::new();
        let mut credit_net = 0;
        let mut credit_tax: BTreeMap<String, i64> = BTreeMap::new();
        for (line_id, replacement) in lines {
            let returned = rma
                .lines
                .iter()
                .find(|l| l.order_line_id == *line_id)
                .ok_or_else(|| ReturnRejection::NotOnRma { rma: rma.rma_id.clone(), line: line_id.clone() })?;
            let ordered =
                original.lines.iter().find(|l| l.line_id == *line_id).expect("an RMA's lines are lines of its order");
            if self.item(replacement).is_none() {
                return Err(ReturnRejection::UnknownSku(replacement.clone()));
            }
            if *replacement != returned.sku {
                // Another SKU only when the channel lists both, at one price: an unlisted one
                // could be worth anything.
                let listed = |sku: &Sku| {
                    self.orders.list_price(&original.channel, sku).ok_or_else(|| ReturnRejection::NotListed {
                        sku: sku.clone(),
                        channel: original.channel.clone(),
                    })
                };
                let (currency_returned, returned_price) = listed(&returned.sku)?;
                let (currency_replacement, replacement_price) = listed(replacement)?;
                if (currency_returned, returned_price) != (currency_replacement, replacement_price) {
                    return Err(ReturnRejection::UnevenExchange {
                        line: line_id.clone(),
                        channel: original.channel.clone(),
                        returned: returned.sku.clone(),
                        returned_price,
                        currency_returned,
                        replacement: replacement.clone(),
                        replacement_price,
                        currency_replacement,
                    });
                }
            }
            credit_net += returned.paid_net_minor;
            for (j, t) in &returned.paid_tax_minor {
                *credit_tax.entry(j.clone()).or_insert(0) += t;
            }
            let tax_lines = returned
                .paid_tax_minor
                .iter()
                .map(|(jurisdiction, amount)| TaxLine {
                    jurisdiction: jurisdiction.clone(),
                    rate_bp: ordered
                        .tax_lines
                        .iter()
                        .find(|t| t.jurisdiction == *jurisdiction && !t.channel_collected)
                        .map_or(0, |t| t.rate_bp),
                    amount_minor: *amount,
                    channel_collected: false,
                })
                .collect();
            order_lines.push(OrderLine {
                line_id: line_id.clone(),
                item: LineItem::Sku(replacement.clone()),
                quantity: returned.units,
                uom: ordered.uom.clone(),
                unit_price_minor: ordered.unit_price_minor,
                // What was paid is the unit price less the line's share of its discount.
                discount_minor: ordered.unit_price_minor.saturating_mul(returned.units) - returned.paid_net_minor,
                tax_lines,
            });
        }
        let order = Order {
            channel: original.channel.clone(),
            channel_order_id: replacement_order_id.to_owned(),
            channel_updated_at: now,
            placed_at: now,
            customer: original.customer.clone(),
            ship_to: original.ship_to.clone(),
            bill_to: original.bill_to.clone(),
            lines: order_lines,
            shipping: Shipping {
                method: original.shipping.method.clone(),
                service_level: original.shipping.service_level,
                ship_by: None,
                deliver_by: None,
            },
            payment_status: PaymentStatus::Captured,
            fraud: Default::default(),
            fulfillment,
            currency: original.currency,
            tags: Vec::new(),
        };
        let mut replacement = crate::orders::book::decide(self, &OrderCommand::Capture(Box::new(order)), now)
            .map_err(|e| ReturnRejection::Replacement(Box::new(e)))?;
        // Only here does an order get the tag: a capture drops any it is sent with.
        if let OrderEvent::Recorded { record, .. } = &mut replacement {
            record.order.tags.push(format!("{EXCHANGE_TAG}{}", rma.rma_id));
        }
        let credit = Refund::without_fees(credit_net, credit_tax, now);
        let refunded: Vec<RmaLine> =
            rma.lines.iter().filter(|l| !lines.iter().any(|(id, _)| *id == l.order_line_id)).cloned().collect();
        if !refunded.is_empty() {
            let rest = Rma { lines: refunded, ..rma.clone() };
            rma.refund = Some(refund_of(&rest, policy, true, now));
        }
        rma.status = RmaStatus::Closed;
        let exchange = Exchange { rma_id: rma.rma_id.clone(), replacement: key, lines: lines.to_vec(), credit };
        Ok(ReturnEvent::Exchanged {
            rma: Box::new(rma),
            exchange: Box::new(exchange),
            replacement: Box::new(replacement),
        })
    }

    /// Units of an order line shipped and not yet on an RMA (bundles in the line's own terms).
    fn returnable(&self, record: &OrderRecord, line_id: &str) -> Units {
        // Bundles return whole: the order line's units shipped, in the line's terms.
        let shipped_units = record.shipped_units(line_id);
        let order = record.key();
        let already: Units = self
            .returns
            .rmas
            .values()
            .filter(|r| r.order == order)
            .flat_map(|r| &r.lines)
            .filter(|l| l.order_line_id == line_id)
            .map(|l| l.units)
            .sum();
        shipped_units - already
    }

    /// `units` of an order line as an RMA line: what the customer paid for them, as cumulative
    /// shares so that RMAs of one line never come to more than it was paid.
    fn rma_line(&self, record: &OrderRecord, line_id: &str, units: Units) -> Result<RmaLine, ReturnRejection> {
        let order = record.key();
        let unknown = || ReturnRejection::UnknownLine { order: order.clone(), line: line_id.to_owned() };
        let order_line = record.order.lines.iter().find(|l| l.line_id == line_id).ok_or_else(unknown)?;
        let returnable = self.returnable(record, line_id);
        if units <= 0 || units > returnable {
            return Err(ReturnRejection::TooManyUnits { line: line_id.to_owned(), asked: units, returnable });
        }
        let already = record.shipped_units(line_id) - returnable;
        let sku =
            record.lines.iter().find(|l| l.order_line_id == line_id).and_then(|p| p.sku.clone()).ok_or_else(unknown)?;
        let cumulative = |total: i64| {
            share(total, already + units, order_line.quantity) - share(total, already, order_line.quantity)
        };
        let mut tax = BTreeMap::new();
        for t in order_line.tax_lines.iter().filter(|t| !t.channel_collected) {
            *tax.entry(t.jurisdiction.clone()).or_insert(0) += cumulative(t.amount_minor);
        }
        Ok(RmaLine {
            order_line_id: line_id.to_owned(),
            sku,
            units,
            paid_net_minor: cumulative(order_line.net_minor()),
            paid_tax_minor: tax,
            grade: None,
        })
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
    let (rma, movements) = match event.effect() {
        crate::Event::Returns(ReturnEvent::Recorded { rma, movements }) => (rma, movements.as_slice()),
        crate::Event::Returns(ReturnEvent::Exchanged { rma, .. }) => (rma, [].as_slice()),
        crate::Event::Returns(ReturnEvent::ExchangeRefunded { rma_id, order, refund, .. }) => {
            let threshold = state.returns.policies.get(&order.channel)?.refund_approval_above_minor;
            return (refund.amount_minor > threshold).then(|| {
                format!(
                    "a refund of {} minor units is above the {threshold} threshold (RMA {rma_id}, exchange cancelled)",
                    refund.amount_minor
                )
            });
        }
        _ => return None,
    };
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
