//! The orders the state holds and the commands that move them: capture (idempotent per channel
//! order id, guarded by the channel's `updated_at`), validation into holds, sourcing, reservation
//! (the ledger's two-phase commit), manual hold/release, payment updates that clear holds, and
//! cancellation that voids reservations.
//!
//! Every accepted command becomes one [`OrderEvent`] carrying the order's whole new record and
//! the inventory movements it made, so replay is a plain replacement and the ledger stays the
//! only place units move.

use std::collections::{BTreeMap, BTreeSet};

use ordo_ledger::Posting;
use ordo_types::{ChannelCode, Code, CurrencyCode, Date, LocationCode, Sku, Timestamp, Units};
use serde::{Deserialize, Serialize};

use super::allocation::{Supply, expected_date};
use super::lifecycle::{Actor, HoldCode, IllegalTransition, OrderStatus, StatusChange};
use super::model::{AccountStatus, LineItem, Order, OrderKey, PaymentStatus};
use super::sourcing::{self, DemandLine, NodeCandidate, SourcingOutcome, SourcingPolicy, ZoneBand};
use super::validation::{self, HoldFinding, ValidationContext, ValidationRules};
use crate::catalog::{Address, Item};
use crate::inventory::{Account, MoveCommand, MoveRejection, Movement, MovementKind};
use crate::state::State;

/// Per-node settings sourcing needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NodeSettings {
    /// Carrier cut-off in the node's time zone, `(hour, minute)`.
    pub cutoff_local: (u8, u8),
    /// Shipments the node can release per day.
    pub daily_capacity: u32,
    pub cost_per_shipment_minor: i64,
    pub cost_per_unit_minor: i64,
}

impl Default for NodeSettings {
    fn default() -> Self {
        Self { cutoff_local: (15, 0), daily_capacity: 1_000, cost_per_shipment_minor: 300, cost_per_unit_minor: 25 }
    }
}

/// Order master data, each entry set by its own command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum OrderSetting {
    /// A channel listing id (ASIN, seller SKU, buyer part number) that means one of our SKUs.
    Listing {
        channel: ChannelCode,
        listing: String,
        sku: Sku,
    },
    /// The channel's list price of one each.
    Price {
        channel: ChannelCode,
        sku: Sku,
        currency: CurrencyCode,
        unit_price_minor: i64,
    },
    ShippingMethods {
        channel: ChannelCode,
        methods: BTreeSet<String>,
    },
    Customer {
        channel: ChannelCode,
        customer_id: String,
        status: AccountStatus,
    },
    /// Whether sales to `country` / `region` ("" = the whole country) carry tax.
    Taxable {
        country: String,
        region: String,
        taxable: bool,
    },
    Node {
        location: LocationCode,
        settings: NodeSettings,
    },
    Policy(SourcingPolicy),
    Rules(ValidationRules),
    /// The sales-tax rate of a ship-to jurisdiction (`region` "" = the whole country), in basis
    /// points: what validation checks a channel's tax against.
    TaxRate {
        country: String,
        region: String,
        rate_bp: u32,
    },
}

/// One line's fulfilment state. An order line of a bundle becomes one record per component
/// (`line_id` `"<order line>/<component sku>"`), since only components hold stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineRecord {
    pub line_id: String,
    /// The channel's order line this record fulfils.
    pub order_line_id: String,
    /// `None` when the line's item did not resolve (the order is then held `SKU_UNKNOWN`).
    pub sku: Option<Sku>,
    /// Base units ordered.
    pub units: Units,
    pub reservations: Vec<LineReservation>,
    pub backordered: Units,
    /// When the backordered units are expected: the earliest open purchase expectation or
    /// in-transit transfer that covers them after every backorder already waiting (see
    /// [`super::allocation::expected_date`]); `None` when no open supply covers them.
    pub expected_on: Option<Date>,
    /// Units cancelled (by a line cancel, or the remainder of a partial dispatch).
    pub cancelled: Units,
    /// Units the warehouse picked (`committed → picked`).
    pub picked: Units,
    /// Units that left in a shipment (`picked → customer`).
    pub shipped: Units,
}

impl LineRecord {
    pub fn reserved(&self) -> Units {
        self.reservations.iter().map(|r| r.units).sum()
    }

    /// Units still wanted: ordered less cancelled.
    pub fn open(&self) -> Units {
        self.units - self.cancelled
    }
}

/// One parcel (or set of parcels under one tracking number) that left a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentRecord {
    pub shipment_id: String,
    pub location: LocationCode,
    pub carrier: String,
    pub service: String,
    pub tracking: String,
    pub lines: Vec<ShippedLine>,
    pub shipped_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ShippedLine {
    /// A [`LineRecord::line_id`].
    pub line_id: String,
    pub units: Units,
}

/// What the warehouse reports when a shipment leaves. `lines` empty means every picked unit at
/// `location` not yet shipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ShipmentRequest {
    pub shipment_id: String,
    pub location: LocationCode,
    pub carrier: String,
    pub service: String,
    pub tracking: String,
    #[serde(default)]
    pub lines: Vec<ShippedLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineReservation {
    /// The inventory reservation (two-phase) holding these units.
    pub reservation: Code,
    pub location: LocationCode,
    pub units: Units,
}

/// Everything Ordo knows about one order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRecord {
    pub order: Order,
    pub status: OrderStatus,
    pub holds: BTreeSet<HoldCode>,
    pub findings: Vec<HoldFinding>,
    pub lines: Vec<LineRecord>,
    /// The last sourcing decision, with every candidate and why it won or lost.
    pub sourcing: Option<SourcingOutcome>,
    pub history: Vec<StatusChange>,
    /// What the channel was offered of each SKU when the order was captured.
    pub offered: BTreeMap<Sku, Units>,
    /// When this record was decided (its reservations count against node capacity that day).
    pub decided_at: Timestamp,
    pub shipments: Vec<ShipmentRecord>,
}

impl OrderRecord {
    pub fn key(&self) -> OrderKey {
        self.order.key()
    }

    /// `(shipped, ordered)` base units of one channel order line, over all its records (a
    /// bundle line's components together): the share of the line that has left, which sales,
    /// settlements, returns and invoices all prorate by.
    /// Units of a channel order line that have shipped, in the line's own terms (a bundle line
    /// counts whole bundles): what returns and refunds count against.
    pub fn shipped_units(&self, order_line_id: &str) -> Units {
        let quantity = self.order.lines.iter().find(|l| l.line_id == order_line_id).map_or(0, |l| l.quantity);
        let (shipped, units) = self.shipped_of(order_line_id);
        if units == 0 { 0 } else { shipped * quantity / units }
    }

    pub fn shipped_of(&self, order_line_id: &str) -> (Units, Units) {
        self.lines
            .iter()
            .filter(|l| l.order_line_id == order_line_id)
            .fold((0, 0), |(shipped, units), l| (shipped + l.shipped, units + l.units))
    }

    /// What shipment `index` (of [`Self::shipments`]) carried of each channel order line: units
    /// in the order line's own unit (a bundle line counts bundles), and its share of the line's
    /// net and of the taxes the seller collects — cumulative shares, exactly as the general
    /// ledger books them, so a line's shipments add up to the line. Packing slips, invoices and
    /// EDI ship notices all read this.
    pub fn shipment_share(&self, index: usize) -> Vec<ShipmentShare> {
        // Order-line base units shipped up to and including shipment `upto`.
        let shipped_through = |order_line: &str, upto: Option<usize>| -> (Units, Units) {
            let parts: Vec<_> = self.lines.iter().filter(|l| l.order_line_id == order_line).collect();
            let units: Units = parts.iter().map(|l| l.units).sum();
            let shipped: Units = upto.map_or(0, |upto| {
                self.shipments[..=upto]
                    .iter()
                    .flat_map(|s| &s.lines)
                    .filter(|s| parts.iter().any(|p| p.line_id == s.line_id))
                    .map(|s| s.units)
                    .sum()
            });
            (shipped, units)
        };
        let mut out = Vec::new();
        for line in &self.order.lines {
            let (after, units) = shipped_through(&line.line_id, Some(index));
            let (before, _) = shipped_through(&line.line_id, index.checked_sub(1));
            if after == before || units == 0 {
                continue;
            }
            let share = |total: i64| {
                crate::accounting::prorate(total, after, units) - crate::accounting::prorate(total, before, units)
            };
            out.push(ShipmentShare {
                line_id: line.line_id.clone(),
                item: line.item.clone(),
                quantity: (after - before) * line.quantity / units,
                uom: line.uom.clone(),
                unit_price_minor: line.unit_price_minor,
                net_minor: share(line.net_minor()),
                taxes: line
                    .tax_lines
                    .iter()
                    .filter(|t| !t.channel_collected)
                    .map(|t| (t.jurisdiction.clone(), share(t.amount_minor)))
                    .collect(),
            });
        }
        out
    }
}

/// One channel order line's part of one shipment ([`OrderRecord::shipment_share`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShipmentShare {
    pub line_id: String,
    pub item: LineItem,
    /// In the order line's unit of measure.
    pub quantity: Units,
    pub uom: String,
    pub unit_price_minor: i64,
    pub net_minor: i64,
    /// Seller-collected tax per jurisdiction.
    pub taxes: Vec<(String, i64)>,
}

/// A request concerning orders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderCommand {
    Capture(Box<Order>),
    Hold {
        key: OrderKey,
        actor: Actor,
        reason: String,
    },
    /// Releases every hold (an operator's override) and sources the order.
    Release {
        key: OrderKey,
        actor: Actor,
        reason: String,
    },
    Cancel {
        key: OrderKey,
        actor: Actor,
        reason: String,
    },
    UpdatePayment {
        key: OrderKey,
        status: PaymentStatus,
        actor: Actor,
    },
    Configure(OrderSetting),
    /// Reserves newly arrived stock for a backordered order (issued by the engine, in rank
    /// order, when stock of a SKU it waits for arrives).
    Reallocate {
        key: OrderKey,
    },
    /// Cancels one order line (every component of a bundle line), voiding its reservations;
    /// cancelling the last open line cancels the order.
    CancelLine {
        key: OrderKey,
        line_id: String,
        actor: Actor,
        reason: String,
    },
    /// Releases an allocated order to the warehouse floor. A partially allocated order is
    /// released only with `ship_partial`, which cancels what is still backordered.
    Dispatch {
        key: OrderKey,
        actor: Actor,
        ship_partial: bool,
    },
    /// The warehouse started picking (pick list issued).
    StartPicking {
        key: OrderKey,
        actor: Actor,
    },
    /// Picked and packed: every reserved unit moves `committed → picked`.
    Pack {
        key: OrderKey,
        actor: Actor,
    },
    /// A shipment left: its units move `picked → customer` (posting the reservation).
    Ship {
        key: OrderKey,
        actor: Actor,
        shipment: ShipmentRequest,
    },
    /// The carrier delivered one shipment; the order is delivered when all shipped are.
    ConfirmDelivery {
        key: OrderKey,
        actor: Actor,
        shipment_id: String,
    },
    Close {
        key: OrderKey,
        actor: Actor,
        reason: String,
    },
    /// The packer's cartons for what is picked and not yet shipped: what each holds, its weight
    /// and dimensions (for the carrier, the ship notice and the packing slip). Replaces the
    /// order's open cartons; cartons already shipped stay as they were.
    Packages {
        key: OrderKey,
        actor: Actor,
        packages: Vec<Package>,
    },
}

/// One carton of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Package {
    pub package_id: String,
    pub weight_grams: u32,
    pub length_mm: u32,
    pub width_mm: u32,
    pub height_mm: u32,
    /// Line records and units in it.
    pub lines: Vec<ShippedLine>,
}

/// What the journal records for orders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderEvent {
    /// The order's new record and the movements (commits, releases) that produced it.
    Recorded {
        record: Box<OrderRecord>,
        movements: Vec<Movement>,
    },
    Configured(OrderSetting),
    /// The order's open cartons (see [`OrderCommand::Packages`]).
    Packaged {
        key: OrderKey,
        packages: Vec<Package>,
    },
}

/// Why an order command was refused, most fundamental first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderRejection {
    #[error("order has no lines")]
    NoLines,
    #[error("line id {0:?} appears twice")]
    DuplicateLine(String),
    #[error("channel order id must not be empty")]
    EmptyOrderId,
    #[error("unknown channel {0}")]
    UnknownChannel(ChannelCode),
    #[error("unknown order {0}")]
    UnknownOrder(OrderKey),
    #[error("order {key} has no line {line_id:?}")]
    UnknownLine { key: OrderKey, line_id: String },
    #[error("order {key} has no shipment {shipment_id:?}")]
    UnknownShipment { key: OrderKey, shipment_id: String },
    #[error("order {0} is already captured with exactly this content")]
    AlreadyCaptured(OrderKey),
    #[error("order {key}: this delivery (updated {got}) is not newer than the one held (updated {held})")]
    StaleUpdate { key: OrderKey, held: Timestamp, got: Timestamp },
    #[error("order {key} is {} and can no longer be changed by the channel", status.as_str())]
    TooLateToUpdate { key: OrderKey, status: OrderStatus },
    #[error("order {key} has picked or shipped units; cancel is refused (return them to stock first)")]
    PickedUnits { key: OrderKey },
    #[error("order {key} has no holds to release")]
    NotHeld { key: OrderKey },
    #[error("order {key} is already on hold by hand (MANUAL)")]
    AlreadyHeld { key: OrderKey },
    #[error("order {key}: {} cannot be overridden; correct the cause or cancel the order", hold.as_str())]
    CannotOverride { key: OrderKey, hold: HoldCode },
    #[error("a reason is required")]
    MissingReason,
    #[error("{field} is required")]
    MissingField { field: &'static str },
    #[error("order {key}: line {line_id:?} is already cancelled")]
    LineAlreadyCancelled { key: OrderKey, line_id: String },
    #[error("order {key} is only partially allocated; dispatch it with ship_partial to cancel the rest")]
    NotFullyAllocated { key: OrderKey },
    #[error("order {key} already has a shipment {shipment_id:?}")]
    DuplicateShipment { key: OrderKey, shipment_id: String },
    #[error("order {key}: nothing picked at {location} is waiting to ship")]
    NothingToShip { key: OrderKey, location: LocationCode },
    #[error("order {key}: line {line_id:?} has {left} picked unit(s) at {location} waiting to ship, not {asked}")]
    ShipExceedsPicked { key: OrderKey, line_id: String, location: LocationCode, asked: Units, left: Units },
    #[error("order {key}: shipment {shipment_id:?} is already delivered")]
    AlreadyDelivered { key: OrderKey, shipment_id: String },
    #[error("order {key} waits for stock that is still not available")]
    NothingToAllocate { key: OrderKey },
    #[error(transparent)]
    Illegal(#[from] IllegalTransition),
    #[error("unknown SKU {0}")]
    UnknownSku(Sku),
    #[error("unknown location {0}")]
    UnknownLocation(LocationCode),
    #[error(transparent)]
    Stock(#[from] MoveRejection),
    #[error("package {package_id:?}: {reason}")]
    BadPackage { package_id: String, reason: String },
    #[error(
        "tax rate for {country:?}: a country is ISO 3166-1 alpha-2 and a rate 0 to 10000 basis points, not {rate_bp}"
    )]
    BadTaxRate { country: String, rate_bp: u32 },
}

/// Order state kept inside [`State`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OrderBook {
    /// Boxed: a record is large, and a map node shifts its values on every insert.
    pub(crate) orders: BTreeMap<OrderKey, Box<OrderRecord>>,
    /// Each order's cartons, in the order they were packed.
    packages: BTreeMap<OrderKey, Vec<Package>>,
    listings: BTreeMap<(ChannelCode, String), Sku>,
    prices: BTreeMap<(ChannelCode, Sku), (CurrencyCode, i64)>,
    shipping_methods: BTreeMap<ChannelCode, BTreeSet<String>>,
    customers: BTreeMap<(ChannelCode, String), AccountStatus>,
    taxable: BTreeMap<(String, String), bool>,
    tax_rates: BTreeMap<(String, String), u32>,
    pub(crate) nodes: BTreeMap<LocationCode, NodeSettings>,
    policy: Option<SourcingPolicy>,
    rules: ValidationRules,
    /// Shipments planned per node and day, against its daily capacity.
    planned: BTreeMap<(LocationCode, i32), u32>,
    next_reservation: u64,
    /// Per SKU, the orders waiting for it (backordered lines).
    backorders: BTreeMap<Sku, BTreeSet<OrderKey>>,
    /// Per SKU, the units those orders wait for (a new backorder queues behind them).
    backordered_units: BTreeMap<Sku, Units>,
}

/// The sourcing policy used until one is configured: three zones by distance.
pub fn default_policy() -> SourcingPolicy {
    SourcingPolicy {
        split_penalty_minor: 500,
        max_shipments: 3,
        units_per_parcel: 4,
        zones: vec![
            ZoneBand { max_km: 300, zone: 2, cost_per_parcel_minor: 600, transit_days: 1 },
            ZoneBand { max_km: 1_500, zone: 5, cost_per_parcel_minor: 900, transit_days: 3 },
            ZoneBand { max_km: 20_100, zone: 8, cost_per_parcel_minor: 1_400, transit_days: 5 },
        ],
    }
}

impl OrderBook {
    pub fn get(&self, key: &OrderKey) -> Option<&OrderRecord> {
        self.orders.get(key).map(|r| &**r)
    }

    /// The channel's listing id for `sku` (the first, by listing id, when several map to it).
    pub fn listing_of(&self, channel: &ChannelCode, sku: &Sku) -> Option<&str> {
        self.listings.iter().find(|((c, _), s)| c == channel && *s == sku).map(|((_, l), _)| l.as_str())
    }

    /// The channel's list price of one base unit of `sku`: its currency and amount.
    pub fn list_price(&self, channel: &ChannelCode, sku: &Sku) -> Option<(CurrencyCode, i64)> {
        self.prices.get(&(channel.clone(), sku.clone())).copied()
    }

    pub fn all(&self) -> impl Iterator<Item = &OrderRecord> {
        self.orders.values().map(|r| &**r)
    }

    pub fn rules(&self) -> &ValidationRules {
        &self.rules
    }

    /// Stores an order's new record (moved in, not copied) and updates the indexes.
    pub(crate) fn record(&mut self, record: Box<OrderRecord>) {
        let key = record.key();
        let old = self.orders.remove(&key);
        // Capacity: an order counts once per node it holds reservations at, on the day it was
        // last decided; a re-decision moves it, a cancel removes it.
        let shipments = |r: &OrderRecord| -> Vec<(LocationCode, i32)> {
            let day = r.decided_at.date().days_since_epoch();
            let mut slots: Vec<(LocationCode, i32)> =
                r.lines.iter().flat_map(|l| &l.reservations).map(|x| (x.location.clone(), day)).collect();
            slots.sort_unstable();
            slots.dedup();
            slots
        };
        match &old {
            None => self.next_reservation += record.lines.iter().map(|l| l.reservations.len() as u64).sum::<u64>(),
            Some(old) => {
                let before: BTreeSet<&Code> =
                    old.lines.iter().flat_map(|l| l.reservations.iter().map(|x| &x.reservation)).collect();
                let new =
                    record.lines.iter().flat_map(|l| &l.reservations).filter(|r| !before.contains(&r.reservation));
                self.next_reservation += new.count() as u64;
                for slot in shipments(old) {
                    if let Some(n) = self.planned.get_mut(&slot) {
                        *n = n.saturating_sub(1);
                    }
                }
                for line in old.lines.iter().filter(|l| l.backordered > 0) {
                    if let (Some(sku), Some(n)) =
                        (&line.sku, line.sku.as_ref().and_then(|s| self.backordered_units.get_mut(s)))
                    {
                        *n -= line.backordered;
                        if *n <= 0 {
                            self.backordered_units.remove(sku);
                        }
                    }
                }
                for sku in old.lines.iter().filter_map(|l| l.sku.as_ref()) {
                    if let Some(set) = self.backorders.get_mut(sku) {
                        set.remove(&key);
                        if set.is_empty() {
                            self.backorders.remove(sku);
                        }
                    }
                }
            }
        }
        for slot in shipments(&record) {
            *self.planned.entry(slot).or_default() += 1;
        }
        if matches!(record.status, OrderStatus::Backordered | OrderStatus::PartiallyAllocated) {
            for line in record.lines.iter().filter(|l| l.backordered > 0) {
                if let Some(sku) = &line.sku {
                    self.backorders.entry(sku.clone()).or_default().insert(key.clone());
                    *self.backordered_units.entry(sku.clone()).or_default() += line.backordered;
                }
            }
        }
        self.orders.insert(key, record);
    }

    pub(crate) fn apply(&mut self, event: &OrderEvent) {
        match event {
            OrderEvent::Configured(setting) => match setting.clone() {
                OrderSetting::Listing { channel, listing, sku } => {
                    self.listings.insert((channel, listing), sku);
                }
                OrderSetting::Price { channel, sku, currency, unit_price_minor } => {
                    self.prices.insert((channel, sku), (currency, unit_price_minor));
                }
                OrderSetting::ShippingMethods { channel, methods } => {
                    self.shipping_methods.insert(channel, methods);
                }
                OrderSetting::Customer { channel, customer_id, status } => {
                    self.customers.insert((channel, customer_id), status);
                }
                OrderSetting::Taxable { country, region, taxable } => {
                    self.taxable.insert((country, region), taxable);
                }
                OrderSetting::Node { location, settings } => {
                    self.nodes.insert(location, settings);
                }
                OrderSetting::Policy(p) => self.policy = Some(p),
                OrderSetting::Rules(r) => self.rules = r,
                OrderSetting::TaxRate { country, region, rate_bp } => {
                    self.tax_rates.insert((country, region), rate_bp);
                }
            },
            OrderEvent::Recorded { record, .. } => self.record(record.clone()),
            OrderEvent::Packaged { key, packages } => {
                let shipped = self.shipped_packages(key);
                let mut all: Vec<Package> = self
                    .packages
                    .get(key)
                    .into_iter()
                    .flatten()
                    .filter(|p| shipped.contains(&p.package_id))
                    .cloned()
                    .collect();
                all.extend(packages.iter().cloned());
                self.packages.insert(key.clone(), all);
            }
        }
    }

    /// An order's cartons, in the order they were packed.
    pub fn packages(&self, key: &OrderKey) -> &[Package] {
        self.packages.get(key).map_or(&[], Vec::as_slice)
    }

    /// Which shipment (index into the record's shipments) carried each carton: cartons are
    /// filled and shipped in order, so a carton went with the first shipment by which the units
    /// shipped cover it and every carton before it. `None`: still open.
    pub fn package_shipments(&self, key: &OrderKey) -> Vec<(&Package, Option<usize>)> {
        let packages = self.packages(key);
        let Some(record) = self.orders.get(key) else { return packages.iter().map(|p| (p, None)).collect() };
        let mut left: BTreeMap<&str, Units> = BTreeMap::new();
        let mut out = Vec::with_capacity(packages.len());
        let mut next = 0;
        for (index, shipment) in record.shipments.iter().enumerate() {
            for l in &shipment.lines {
                *left.entry(l.line_id.as_str()).or_insert(0) += l.units;
            }
            while let Some(p) = packages.get(next) {
                let covered = p.lines.iter().all(|l| left.get(l.line_id.as_str()).is_some_and(|u| *u >= l.units));
                if !covered {
                    break;
                }
                for l in &p.lines {
                    *left.get_mut(l.line_id.as_str()).expect("covered") -= l.units;
                }
                out.push((p, Some(index)));
                next += 1;
            }
        }
        out.extend(packages[next..].iter().map(|p| (p, None)));
        out
    }

    fn shipped_packages(&self, key: &OrderKey) -> BTreeSet<String> {
        self.package_shipments(key)
            .into_iter()
            .filter(|(_, s)| s.is_some())
            .map(|(p, _)| p.package_id.clone())
            .collect()
    }
}

/// The validation context over the state, with the figures offered at capture.
struct Context<'a> {
    state: &'a State,
    offered: &'a BTreeMap<Sku, Units>,
}

impl ValidationContext for Context<'_> {
    fn item(&self, sku: &Sku) -> Option<&Item> {
        self.state.item(sku)
    }
    fn resolve(&self, channel: &ChannelCode, item: &LineItem) -> Option<Sku> {
        resolve(self.state, channel, item)
    }
    fn taxable(&self, country: &str, region: &str) -> bool {
        let t = &self.state.orders.taxable;
        t.get(&(country.to_owned(), region.to_owned()))
            .or_else(|| t.get(&(country.to_owned(), String::new())))
            .copied()
            .unwrap_or(false)
    }
    fn known_shipping_method(&self, channel: &ChannelCode, method: &str) -> bool {
        self.state.orders.shipping_methods.get(channel).is_some_and(|m| m.contains(method))
    }
    fn tax_rate(&self, country: &str, region: &str) -> Option<u32> {
        let t = &self.state.orders.tax_rates;
        // Asked for every taxable order: no keys to build when there is no table.
        if t.is_empty() {
            return None;
        }
        t.get(&(country.to_owned(), region.to_owned())).or_else(|| t.get(&(country.to_owned(), String::new()))).copied()
    }
    fn customer_status(&self, channel: &ChannelCode, customer_id: &str) -> Option<AccountStatus> {
        self.state.orders.customers.get(&(channel.clone(), customer_id.to_owned())).copied()
    }
    fn list_price(&self, channel: &ChannelCode, sku: &Sku) -> Option<(CurrencyCode, i64)> {
        self.state.orders.list_price(channel, sku)
    }
    fn offered(&self, _channel: &ChannelCode, sku: &Sku) -> Units {
        self.offered.get(sku).copied().unwrap_or(0)
    }
    fn location_address(&self, location: &LocationCode) -> Option<&Address> {
        self.state.location(location).map(|l| &l.address)
    }
}

/// A line's SKU: ours when the catalog has it, else the channel's listing map's (a seller SKU
/// that differs from Ordo's is mapped like any listing id).
fn resolve(state: &State, channel: &ChannelCode, item: &LineItem) -> Option<Sku> {
    let listing = |l: &str| state.orders.listings.get(&(channel.clone(), l.to_owned())).cloned();
    match item {
        LineItem::Sku(s) => state.item(s).map(|i| i.sku.clone()).or_else(|| listing(s.as_str())),
        LineItem::Listing(l) => listing(l),
    }
}

/// A decision in progress: the record being built and the movements it makes.
pub(super) struct Draft<'a> {
    pub(super) state: &'a State,
    pub(super) record: OrderRecord,
    pub(super) movements: Vec<Movement>,
    pub(super) now: Timestamp,
    next_reservation: u64,
    /// Units this decision released earlier (an update voids the order's own reservations):
    /// still committed in `state`, but available to the order being decided.
    freed: BTreeMap<(Sku, LocationCode), Units>,
}

impl Draft<'_> {
    /// Records an action that keeps the status (a line cancelled, a hold added, a delivery):
    /// a history entry whose `from` equals its `to`.
    pub(super) fn note(&mut self, actor: &Actor, reason: &str) {
        let status = self.record.status;
        self.record.history.push(StatusChange {
            from: status,
            to: status,
            actor: actor.clone(),
            reason: reason.to_owned(),
            at: self.now,
        });
    }

    pub(super) fn transition(&mut self, to: OrderStatus, actor: &Actor, reason: &str) -> Result<(), OrderRejection> {
        let from = self.record.status;
        from.transition(to)?;
        self.record.status = to;
        self.record.history.push(StatusChange {
            from,
            to,
            actor: actor.clone(),
            reason: reason.to_owned(),
            at: self.now,
        });
        Ok(())
    }

    /// Re-validates; returns whether the order may proceed (no holds left). Cancelled order
    /// lines are not validated: cancelling a line is how an operator drops an unfixable one.
    pub(super) fn validate(&mut self) -> bool {
        let ctx = Context { state: self.state, offered: &self.record.offered };
        let cancelled: BTreeSet<&str> = self
            .record
            .lines
            .iter()
            .filter(|l| l.cancelled > 0 && l.open() == 0)
            .map(|l| l.order_line_id.as_str())
            .collect();
        let findings = if cancelled.is_empty() {
            validation::validate(&self.record.order, &self.state.orders.rules, &ctx)
        } else {
            let mut open = self.record.order.clone();
            open.lines.retain(|l| !cancelled.contains(l.line_id.as_str()));
            validation::validate(&open, &self.state.orders.rules, &ctx)
        };
        self.record.findings = findings;
        let found = validation::hold_codes(&self.record.findings);
        // Person-only holds stay until a person releases them.
        let mut holds: BTreeSet<HoldCode> =
            self.record.holds.iter().copied().filter(|h| validation::CLEARED_BY_PERSON_ONLY.contains(h)).collect();
        holds.extend(found);
        self.record.holds = holds;
        self.record.holds.is_empty()
    }

    pub(super) fn hold(&mut self, actor: &Actor) -> Result<(), OrderRejection> {
        let codes: Vec<&str> = self.record.holds.iter().map(|h| h.as_str()).collect();
        let reason = format!("held: {}", codes.join(", "));
        if self.record.status != OrderStatus::OnHold {
            self.transition(OrderStatus::OnHold, actor, &reason)?;
        }
        Ok(())
    }

    /// Sources what is not yet reserved and reserves it (two-phase commit movements).
    pub(super) fn source_and_reserve(&mut self, actor: &Actor) -> Result<(), OrderRejection> {
        if self.record.lines.iter().all(|l| l.sku.is_none() || l.reserved() >= l.open()) {
            // Everything is already reserved (e.g. a hold released on an allocated order).
            return self.settle_status(actor, "every line is already reserved");
        }
        let state = self.state;
        let order = &self.record.order;
        let channel =
            state.channel(&order.channel).ok_or_else(|| OrderRejection::UnknownChannel(order.channel.clone()))?;
        let demand: Vec<DemandLine> = self
            .record
            .lines
            .iter()
            .filter_map(|l| {
                let open = l.open() - l.reserved();
                Some(DemandLine { line_id: l.line_id.clone(), sku: l.sku.clone()?, units: open })
                    .filter(|d| d.units > 0)
            })
            .collect();
        let mut node_codes: Vec<&LocationCode> = channel.locations.iter().collect();
        match &order.fulfillment {
            super::model::FulfillmentIntent::PickUpInStore { store: l }
            | super::model::FulfillmentIntent::SoldInStore { store: l }
            | super::model::FulfillmentIntent::DropShip { supplier: l } => {
                if !node_codes.contains(&l) {
                    node_codes.push(l);
                }
            }
            super::model::FulfillmentIntent::Ship { .. } | super::model::FulfillmentIntent::ByChannel => {}
        }
        let today = self.now.date().days_since_epoch();
        let mut nodes = Vec::with_capacity(node_codes.len());
        let sku_ids: Vec<Option<u32>> = demand.iter().map(|d| state.sku_id(&d.sku)).collect();
        for code in node_codes {
            let (Some(location), Some(location_id)) = (state.location(code), state.location_dense_id(code)) else {
                continue;
            };
            let settings = state.orders.nodes.get(code).cloned().unwrap_or_default();
            let planned = state.orders.planned.get(&(code.clone(), today)).copied().unwrap_or(0);
            let available = demand
                .iter()
                .zip(&sku_ids)
                .map(|(d, id)| {
                    let free = id.map_or(0, |s| state.free_units(s, location_id));
                    let freed = if self.freed.is_empty() {
                        0
                    } else {
                        self.freed.get(&(d.sku.clone(), code.clone())).copied().unwrap_or(0)
                    };
                    (d.sku.clone(), (free + freed).max(0))
                })
                .collect();
            nodes.push(NodeCandidate {
                location,
                available,
                cutoff_local: settings.cutoff_local,
                capacity_remaining: settings.daily_capacity.saturating_sub(planned),
                cost_per_shipment_minor: settings.cost_per_shipment_minor,
                cost_per_unit_minor: settings.cost_per_unit_minor,
            });
        }
        let policy = state.orders.policy.clone().unwrap_or_else(default_policy);
        let request = sourcing::SourcingRequest { order, lines: demand, nodes, policy: &policy, now: self.now };
        let outcome = sourcing::source(&request);
        let assigned: Vec<(String, Sku, LocationCode, Units)> = outcome
            .decision()
            .filter(|_| !matches!(outcome, SourcingOutcome::PickupStoreCannotFill { .. }))
            .map(|d| {
                d.shipments
                    .iter()
                    .flat_map(|s| {
                        s.lines.iter().map(|l| (l.line_id.clone(), l.sku.clone(), s.location.clone(), l.units))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let pickup_short = matches!(outcome, SourcingOutcome::PickupStoreCannotFill { .. });
        let no_node = matches!(outcome, SourcingOutcome::NoEligibleNode { .. });
        self.record.sourcing = Some(outcome);
        if pickup_short || no_node {
            self.record.holds.insert(if pickup_short {
                HoldCode::PickupStoreCannotFill
            } else {
                HoldCode::NoEligibleNode
            });
            return self.hold(actor);
        }
        for (line_id, sku, location, units) in assigned {
            self.next_reservation += 1;
            let reservation = Code::new(format!("RSV-{}", self.next_reservation)).expect("generated codes are valid");
            // Built here and checked together with this decision's releases (check_combined):
            // checked alone it could not use the units an update has just freed.
            let movement = Movement {
                kind: MovementKind::Commit { location: location.clone() },
                postings: vec![Posting::new(
                    Account::stock(&location, crate::inventory::StockState::Available),
                    Account::stock(&location, crate::inventory::StockState::Committed),
                    units,
                )],
                sku,
                reference: Some(reservation.clone()),
                reason: None,
            };
            self.movements.push(movement);
            let line = self.record.lines.iter_mut().find(|l| l.line_id == line_id).expect("sourced lines exist");
            line.reservations.push(LineReservation { reservation, location, units });
        }
        self.check_combined()?;
        let reason = match &self.record.sourcing {
            Some(o) => o.decision().map_or_else(String::new, |d| d.reason.clone()),
            None => String::new(),
        };
        self.settle_status(actor, &reason)
    }

    /// Moves the order to allocated, partially allocated or backordered, as its lines say.
    pub(super) fn settle_status(&mut self, actor: &Actor, reason: &str) -> Result<(), OrderRejection> {
        let state = self.state;
        let channel = &self.record.order.channel;
        for line in &mut self.record.lines {
            let before = line.backordered;
            line.backordered = if line.sku.is_some() { (line.open() - line.reserved()).max(0) } else { 0 };
            line.expected_on = match &line.sku {
                Some(sku) if line.backordered > 0 => {
                    // This order's own earlier backorder is not ahead of itself.
                    let waiting = state.orders.backordered_units.get(sku).copied().unwrap_or(0) - before;
                    expected_arrival(state, channel, sku, waiting.max(0), line.backordered, self.now)
                }
                _ => None,
            };
        }
        let wanted: Units = self.record.lines.iter().map(LineRecord::open).sum();
        let reserved: Units = self.record.lines.iter().map(LineRecord::reserved).sum();
        let to = if reserved == wanted {
            OrderStatus::Allocated
        } else if reserved == 0 {
            OrderStatus::Backordered
        } else {
            OrderStatus::PartiallyAllocated
        };
        if self.record.status != to {
            self.transition(to, actor, reason)?;
        }
        Ok(())
    }

    /// Commits decided one by one must also hold together (two lines of one SKU at one node).
    pub(super) fn check_combined(&self) -> Result<(), OrderRejection> {
        let mut by_sku: BTreeMap<&Sku, Vec<Posting<Account>>> = BTreeMap::new();
        for m in &self.movements {
            by_sku.entry(&m.sku).or_default().extend(m.postings.iter().cloned());
        }
        for (sku, postings) in by_sku {
            self.state.check_sku_postings(sku, &postings)?;
        }
        Ok(())
    }

    /// Voids every open reservation of the order.
    fn release_reservations(&mut self) -> Result<(), OrderRejection> {
        for i in 0..self.record.lines.len() {
            self.release_line(i)?;
        }
        Ok(())
    }

    /// Voids the open reservations of line record `i`.
    pub(super) fn release_line(&mut self, i: usize) -> Result<(), OrderRejection> {
        for r in std::mem::take(&mut self.record.lines[i].reservations) {
            let open = self.state.reservation_record(&r.reservation).map_or(0, |x| x.committed);
            if open > 0 {
                let m =
                    self.state.decide_move_pub(&MoveCommand::Release { reservation: r.reservation, units: None })?;
                *self.freed.entry((m.sku.clone(), r.location.clone())).or_default() += open;
                self.movements.push(m);
            }
        }
        Ok(())
    }

    fn finish(mut self) -> OrderEvent {
        self.record.decided_at = self.now;
        OrderEvent::Recorded { record: Box::new(self.record), movements: self.movements }
    }
}

/// When `units` more of `sku` may be expected at the channel's nodes, after `ahead` units other
/// backorders already wait for: open purchase expectations by their date, transfers in transit
/// after the zone transit days for the distance they travel (transfers carry no date of their own).
fn expected_arrival(
    state: &State,
    channel: &ChannelCode,
    sku: &Sku,
    ahead: Units,
    units: Units,
    now: Timestamp,
) -> Option<Date> {
    let nodes = &state.channel(channel)?.locations;
    let (expectations, transfers) = state.open_supply(sku);
    if expectations.is_empty() && transfers.is_empty() {
        return None;
    }
    let policy = state.orders.policy.clone().unwrap_or_else(default_policy);
    let today = now.date();
    let mut supplies: Vec<Supply> = expectations
        .into_iter()
        .filter(|e| nodes.contains(&e.location))
        .map(|e| Supply { due: e.expected_on.max(today), units: e.open })
        .collect();
    for t in transfers.into_iter().filter(|t| nodes.contains(&t.to)) {
        let km = match (state.location(&t.from).and_then(|l| l.geo), state.location(&t.to).and_then(|l| l.geo)) {
            (Some(a), Some(b)) => sourcing::great_circle_km(a, b),
            _ => u32::MAX,
        };
        let days = policy.zones.iter().find(|z| km <= z.max_km).or(policy.zones.last()).map_or(1, |z| z.transit_days);
        supplies.push(Supply { due: today.add_days(i32::from(days)), units: t.in_transit });
    }
    expected_date(ahead, units, &supplies)
}

/// Whether the warehouse has already picked or shipped any of the order's units: from then on
/// neither the channel nor an operator can re-decide or cancel it here.
fn warehouse_started(state: &State, record: &OrderRecord) -> bool {
    record
        .lines
        .iter()
        .flat_map(|l| &l.reservations)
        .any(|r| state.reservation_record(&r.reservation).is_some_and(|x| x.picked + x.shipped > 0))
}

fn new_record(state: &State, mut order: Order) -> Result<OrderRecord, OrderRejection> {
    // The exchange tag marks Ordo's own replacement orders (never confirmed to the channel): a
    // channel's or a person's order may not claim it.
    order.tags.retain(|t| !t.starts_with(crate::returns::EXCHANGE_TAG));
    if order.channel_order_id.trim().is_empty() {
        return Err(OrderRejection::EmptyOrderId);
    }
    if order.lines.is_empty() {
        return Err(OrderRejection::NoLines);
    }
    let mut ids = BTreeSet::new();
    for l in &order.lines {
        if !ids.insert(&l.line_id) {
            return Err(OrderRejection::DuplicateLine(l.line_id.clone()));
        }
    }
    if state.channel(&order.channel).is_none() {
        return Err(OrderRejection::UnknownChannel(order.channel.clone()));
    }
    let mut lines = Vec::with_capacity(order.lines.len());
    let mut ordered_skus = Vec::with_capacity(order.lines.len());
    for l in &order.lines {
        let sku = resolve(state, &order.channel, &l.item);
        let item = sku.as_ref().and_then(|s| state.item(s));
        let units = item.and_then(|i| i.to_base_units(l.quantity, &l.uom).ok()).unwrap_or(l.quantity);
        let line = |line_id: String, sku: Option<Sku>, units: Units| LineRecord {
            line_id,
            order_line_id: l.line_id.clone(),
            sku,
            units,
            reservations: Vec::new(),
            backordered: 0,
            expected_on: None,
            cancelled: 0,
            picked: 0,
            shipped: 0,
        };
        match item {
            Some(bundle) if bundle.is_bundle() => {
                for c in &bundle.components {
                    let component_units = units.saturating_mul(Units::from(c.quantity));
                    lines.push(line(format!("{}/{}", l.line_id, c.sku), Some(c.sku.clone()), component_units));
                }
            }
            _ => lines.push(line(l.line_id.clone(), sku.clone(), units)),
        }
        ordered_skus.extend(sku);
    }
    let offered = ordered_skus
        .into_iter()
        .map(|s| {
            let figure = state.ats(&s, &order.channel).unwrap_or(0);
            (s, figure)
        })
        .collect();
    Ok(OrderRecord {
        order,
        status: OrderStatus::Received,
        holds: BTreeSet::new(),
        findings: Vec::new(),
        lines,
        sourcing: None,
        history: Vec::new(),
        offered,
        decided_at: Timestamp::from_millis(0),
        shipments: Vec::new(),
    })
}

/// Decides an order command against the state. Pure.
pub fn decide(state: &State, command: &OrderCommand, now: Timestamp) -> Result<OrderEvent, OrderRejection> {
    let book = &state.orders;
    let draft = |record: OrderRecord| Draft {
        state,
        record,
        movements: Vec::new(),
        now,
        next_reservation: book.next_reservation,
        freed: BTreeMap::new(),
    };
    let find = |key: &OrderKey| {
        book.orders.get(key).map(|r| (**r).clone()).ok_or_else(|| OrderRejection::UnknownOrder(key.clone()))
    };
    let need_reason = |r: &str| if r.trim().is_empty() { Err(OrderRejection::MissingReason) } else { Ok(()) };
    let event = match command {
        OrderCommand::Configure(setting) => {
            match setting {
                OrderSetting::Listing { channel, sku, .. } | OrderSetting::Price { channel, sku, .. } => {
                    state.channel(channel).ok_or_else(|| OrderRejection::UnknownChannel(channel.clone()))?;
                    state.item(sku).ok_or_else(|| OrderRejection::UnknownSku(sku.clone()))?;
                }
                OrderSetting::ShippingMethods { channel, .. } | OrderSetting::Customer { channel, .. } => {
                    state.channel(channel).ok_or_else(|| OrderRejection::UnknownChannel(channel.clone()))?;
                }
                OrderSetting::Node { location, .. } => {
                    state.location(location).ok_or_else(|| OrderRejection::UnknownLocation(location.clone()))?;
                }
                OrderSetting::TaxRate { country, rate_bp, .. } => {
                    if country.len() != 2 || *rate_bp > 10_000 {
                        return Err(OrderRejection::BadTaxRate { country: country.clone(), rate_bp: *rate_bp });
                    }
                }
                OrderSetting::Taxable { .. } | OrderSetting::Policy(_) | OrderSetting::Rules(_) => {}
            }
            return Ok(OrderEvent::Configured(setting.clone()));
        }
        OrderCommand::Capture(order) => {
            let key = order.key();
            let actor = Actor::Connector(order.channel.to_string());
            let order: &Order = order;
            let mut d = match book.orders.get(&key) {
                None => draft(new_record(state, order.clone())?),
                Some(held) if held.order == *order => return Err(OrderRejection::AlreadyCaptured(key)),
                Some(held) if order.channel_updated_at <= held.order.channel_updated_at => {
                    return Err(OrderRejection::StaleUpdate {
                        key,
                        held: held.order.channel_updated_at,
                        got: order.channel_updated_at,
                    });
                }
                Some(held) => {
                    use OrderStatus as S;
                    if !matches!(
                        held.status,
                        S::Received | S::OnHold | S::Validated | S::Allocated | S::PartiallyAllocated | S::Backordered
                    ) || warehouse_started(state, held)
                    {
                        return Err(OrderRejection::TooLateToUpdate { key, status: held.status });
                    }
                    // An update replaces the order: void what it reserved, then decide afresh with
                    // those units counted as available to it (and as offered to the channel).
                    let fresh = new_record(state, order.clone())?;
                    let mut d = draft((**held).clone());
                    d.release_reservations()?;
                    d.record.order = fresh.order;
                    d.record.lines = fresh.lines;
                    d.record.offered = fresh.offered;
                    for ((sku, _), units) in &d.freed {
                        *d.record.offered.entry(sku.clone()).or_default() += units;
                    }
                    d
                }
            };
            if d.record.order.fulfillment == super::model::FulfillmentIntent::ByChannel {
                // The channel ships from its own stock: nothing to validate against Ordo's
                // stock, nothing to source or reserve.
                if d.record.status != OrderStatus::Validated {
                    d.transition(
                        OrderStatus::Validated,
                        &actor,
                        "fulfilled by the channel from its own stock: recorded, nothing reserved",
                    )?;
                }
                return Ok(d.finish());
            }
            if matches!(d.record.order.fulfillment, super::model::FulfillmentIntent::SoldInStore { .. })
                && d.record.status == OrderStatus::Received
            {
                d.transition(OrderStatus::Validated, &actor, "sold over the store's till")?;
                d.source_and_reserve(&Actor::System)?;
                return Ok(d.finish());
            }
            let updating = d.record.status != OrderStatus::Received;
            if updating {
                if d.validate() {
                    if d.record.status == OrderStatus::OnHold {
                        d.transition(OrderStatus::Validated, &actor, "holds cleared by the channel's update")?;
                    }
                    d.source_and_reserve(&Actor::System)?;
                } else {
                    d.hold(&actor)?;
                }
                return Ok(d.finish());
            }
            if d.validate() {
                if d.record.status == OrderStatus::OnHold {
                    d.transition(OrderStatus::Validated, &actor, "holds cleared by the update")?;
                } else {
                    d.transition(OrderStatus::Validated, &actor, "passed validation")?;
                }
                d.source_and_reserve(&Actor::System)?;
            } else {
                d.hold(&Actor::System)?;
            }
            d
        }
        OrderCommand::Packages { key, actor: _, packages } => {
            let record = find(key)?;
            let bad = |package_id: &str, reason: &str| OrderRejection::BadPackage {
                package_id: package_id.to_owned(),
                reason: reason.to_owned(),
            };
            if packages.is_empty() {
                return Err(bad("", "no packages given"));
            }
            let shipped_ids = book.shipped_packages(key);
            let mut ids = BTreeSet::new();
            let mut packed: BTreeMap<&str, Units> = BTreeMap::new();
            for p in packages {
                if p.package_id.trim().is_empty() || !ids.insert(p.package_id.as_str()) {
                    return Err(bad(&p.package_id, "package ids are given and unique"));
                }
                if shipped_ids.contains(&p.package_id) {
                    return Err(bad(&p.package_id, "already shipped"));
                }
                if p.weight_grams == 0 || p.length_mm == 0 || p.width_mm == 0 || p.height_mm == 0 {
                    return Err(bad(&p.package_id, "weight and dimensions are positive"));
                }
                if p.lines.is_empty() || p.lines.iter().any(|l| l.units <= 0) {
                    return Err(bad(&p.package_id, "a package holds at least one unit of each line it lists"));
                }
                for l in &p.lines {
                    if !record.lines.iter().any(|r| r.line_id == l.line_id) {
                        return Err(OrderRejection::UnknownLine { key: key.clone(), line_id: l.line_id.clone() });
                    }
                    *packed.entry(l.line_id.as_str()).or_insert(0) += l.units;
                }
            }
            // Only what is picked and not yet shipped can be in an open carton.
            for (line_id, units) in packed {
                let line = record.lines.iter().find(|r| r.line_id == line_id).expect("checked above");
                let open = line.picked - line.shipped;
                if units > open {
                    return Err(bad(
                        &packages[0].package_id,
                        &format!("line {line_id} has {open} unit(s) picked and not shipped, the packages hold {units}"),
                    ));
                }
            }
            return Ok(OrderEvent::Packaged { key: key.clone(), packages: packages.clone() });
        }
        OrderCommand::Hold { key, actor, reason } => {
            need_reason(reason)?;
            let mut d = draft(find(key)?);
            if d.record.holds.contains(&HoldCode::Manual) {
                return Err(OrderRejection::AlreadyHeld { key: key.clone() });
            }
            if d.record.status == OrderStatus::OnHold {
                // Held already for another cause: the operator's hold is added beside it, so
                // the order stays held after that cause clears.
                d.record.holds.insert(HoldCode::Manual);
                d.note(actor, reason);
            } else {
                d.record.status.transition(OrderStatus::OnHold)?;
                d.record.holds.insert(HoldCode::Manual);
                d.transition(OrderStatus::OnHold, actor, reason)?;
            }
            d
        }
        OrderCommand::Release { key, actor, reason } => {
            need_reason(reason)?;
            let mut d = draft(find(key)?);
            if d.record.holds.is_empty() {
                return Err(OrderRejection::NotHeld { key: key.clone() });
            }
            if d.record.holds.contains(&HoldCode::SkuUnknown) {
                // There is nothing to reserve for a line that names no item: fix the listing
                // map or the order (a channel update re-decides it), or cancel.
                return Err(OrderRejection::CannotOverride { key: key.clone(), hold: HoldCode::SkuUnknown });
            }
            d.record.holds.clear();
            d.transition(OrderStatus::Validated, actor, reason)?;
            d.source_and_reserve(&Actor::System)?;
            d
        }
        OrderCommand::UpdatePayment { key, status, actor } => {
            let mut d = draft(find(key)?);
            d.record.order.payment_status = *status;
            use OrderStatus as S;
            match d.record.status {
                S::OnHold => {
                    // Re-validate the whole order: the payment hold clears, any new finding holds.
                    if d.validate() {
                        d.transition(S::Validated, actor, "hold cleared: payment updated")?;
                        d.source_and_reserve(&Actor::System)?;
                    }
                }
                S::Allocated | S::PartiallyAllocated | S::Backordered => {
                    // A failed or refunded payment holds a decided order before it is released
                    // to the floor; its reservations stay until the hold is worked.
                    if !d.validate() {
                        d.hold(actor)?;
                    }
                }
                _ => d.note(actor, &format!("payment {status:?}").to_lowercase()),
            }
            d
        }
        OrderCommand::Reallocate { key } => {
            let mut d = draft(find(key)?);
            if !matches!(d.record.status, OrderStatus::Backordered | OrderStatus::PartiallyAllocated) {
                return Err(OrderRejection::NothingToAllocate { key: key.clone() });
            }
            d.source_and_reserve(&Actor::System)?;
            if d.movements.is_empty() {
                return Err(OrderRejection::NothingToAllocate { key: key.clone() });
            }
            d
        }
        OrderCommand::CancelLine { key, line_id, actor, reason } => {
            need_reason(reason)?;
            let mut d = draft(find(key)?);
            d.cancel_line(line_id, actor, reason)?;
            d
        }
        OrderCommand::Dispatch { key, actor, ship_partial } => {
            let mut d = draft(find(key)?);
            d.dispatch(actor, *ship_partial)?;
            d
        }
        OrderCommand::StartPicking { key, actor } => {
            let mut d = draft(find(key)?);
            d.start_picking(actor)?;
            d
        }
        OrderCommand::Pack { key, actor } => {
            let mut d = draft(find(key)?);
            d.pack(actor)?;
            d
        }
        OrderCommand::Ship { key, actor, shipment } => {
            let mut d = draft(find(key)?);
            d.ship(actor, shipment)?;
            d
        }
        OrderCommand::ConfirmDelivery { key, actor, shipment_id } => {
            let mut d = draft(find(key)?);
            d.confirm_delivery(actor, shipment_id)?;
            d
        }
        OrderCommand::Close { key, actor, reason } => {
            need_reason(reason)?;
            let mut d = draft(find(key)?);
            d.transition(OrderStatus::Closed, actor, reason)?;
            d
        }
        OrderCommand::Cancel { key, actor, reason } => {
            need_reason(reason)?;
            let mut d = draft(find(key)?);
            d.record.status.transition(OrderStatus::Cancelled)?;
            if warehouse_started(state, &d.record) {
                return Err(OrderRejection::PickedUnits { key: key.clone() });
            }
            d.release_reservations()?;
            for line in &mut d.record.lines {
                line.backordered = 0;
                line.expected_on = None;
                line.cancelled = line.units;
            }
            d.transition(OrderStatus::Cancelled, actor, reason)?;
            d
        }
    };
    Ok(event.finish())
}

/// How an order ranks for scarce stock (see [`super::allocation`]).
pub fn rank(state: &State, order: &Order) -> super::allocation::AllocationRank {
    super::allocation::AllocationRank {
        channel_priority: state.channel(&order.channel).map_or(u16::MAX, |c| c.priority),
        service_level: order.shipping.service_level,
        promised_by: validation::promised_by(order),
        placed_at: order.placed_at,
        key: order.key(),
    }
}

/// Backordered orders waiting for any of `skus`, best-ranked first: the order in which newly
/// arrived stock is offered to them.
pub fn backorders_waiting_for(state: &State, skus: &BTreeSet<Sku>) -> Vec<OrderKey> {
    let book = &state.orders;
    let keys: BTreeSet<&OrderKey> = skus.iter().filter_map(|s| book.backorders.get(s)).flatten().collect();
    let mut ranked: Vec<(super::allocation::AllocationRank, OrderKey)> =
        keys.into_iter().filter_map(|k| book.orders.get(k)).map(|r| (rank(state, &r.order), r.key())).collect();
    ranked.sort();
    ranked.into_iter().map(|(_, k)| k).collect()
}

/// The exception queue: held orders in working order (see [`validation::exception_order`]).
pub fn exceptions(state: &State, now: Timestamp) -> Vec<&OrderRecord> {
    let mut entries: Vec<(validation::ExceptionEntry, &OrderRecord)> = state
        .orders
        .all()
        .filter(|r| r.status == OrderStatus::OnHold)
        .map(|r| {
            let priority = state.channel(&r.order.channel).map_or(u16::MAX, |c| c.priority);
            (validation::ExceptionEntry::new(&r.order, r.holds.clone(), r.order.net_minor(), priority), r)
        })
        .collect();
    entries.sort_by(|a, b| validation::exception_order(&a.0, &b.0, now));
    entries.into_iter().map(|(_, r)| r).collect()
}
