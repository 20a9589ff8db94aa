//! The whole in-memory state of one ledger partition: catalog, balances, open two-phase records
//! and the cached available-to-sell figures, with `decide` (command → event or rejection) and
//! `apply` (event → new state).
//!
//! SKUs, locations and channels are interned to dense ids in the order they were first defined,
//! so the same journal always produces the same ids; events themselves carry codes.

use std::collections::{BTreeMap, BTreeSet};

/// Fx hashing: these maps are keyed by our own codes and ids, never by untrusted input that
/// could be crafted to collide, and lookups sit on the hot path of every movement.
type HashMap<K, V> = rustc_hash::FxHashMap<K, V>;

use ordo_ledger::{Balances, Book, Overdraft, Posting};
use ordo_types::{ChannelCode, Code, LegalEntityCode, LocationCode, Reference, Sku, Timestamp, Units};
use serde::{Deserialize, Serialize};

use crate::availability::{self, AvailabilityChanged};
use crate::catalog::{CatalogRejection, Channel, Item, LegalEntity, Location, SafetyStockScope, validate_time_zone};
use crate::inventory::{
    Account, Buckets, Disposition, Expectation, MAX_UNITS_PER_MOVEMENT, MoveCommand, MoveRejection, Movement,
    MovementKind, OutsideAccount, ReasonCode, Reservation, StockState, Transfer,
};

/// A request to change the state. Each accepted command becomes exactly one [`Event`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    DefineLegalEntity(LegalEntity),
    DefineItem(Item),
    DefineLocation(Location),
    DefineChannel(Channel),
    SetSafetyStock {
        scope: SafetyStockScope,
        units: Units,
    },
    /// Ring-fences `units` of `sku` for `channel` (0 removes the pool).
    SetChannelPool {
        channel: ChannelCode,
        sku: Sku,
        units: Units,
    },
    Move(MoveCommand),
    Order(crate::orders::book::OrderCommand),
    Access(crate::access::AccessCommand),
    /// `command` under an idempotency key: its event and the response it earned are journaled
    /// together, so a repeat can be answered identically and never runs twice.
    Idempotent {
        user: String,
        key: String,
        request_sha256_hex: String,
        command: Box<Command>,
    },
    /// `command` on behalf of `by` through the four-eyes gate: takes effect at once unless the
    /// approval policy says it needs a second person, in which case it becomes a request.
    Gated {
        by: String,
        note: String,
        command: Box<Command>,
    },
    /// A different user approves a pending request: its command takes effect now.
    Approve {
        id: u64,
        by: String,
        reason: String,
    },
    RejectApproval {
        id: u64,
        by: String,
        reason: String,
    },
    SetApprovalPolicy(crate::approvals::ApprovalPolicy),
    /// `command` as done by someone, from somewhere: the journal row carries who, in which role,
    /// through which door and under which request id (the audit trail).
    Attributed {
        origin: crate::access::Origin,
        command: Box<Command>,
    },
    /// The general ledger's settings: purchase costs, exchange rates.
    Accounting(crate::accounting::AccountingCommand),
    /// Return authorizations, receipt, inspection and refunds.
    Returns(crate::returns::ReturnCommand),
    /// Keep an unreadable outside payload, or mark one redriven.
    DeadLetter(crate::deadletter::DeadLetterCommand),
    /// EDI partners: interchanges received, control numbers issued, documents sent.
    Edi(crate::edi::EdiCommand),
}

/// What the journal records. Replaying events in sequence order rebuilds the state exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    LegalEntityDefined(LegalEntity),
    ItemDefined(Item),
    LocationDefined(Location),
    ChannelDefined(Channel),
    SafetyStockSet {
        scope: SafetyStockScope,
        units: Units,
    },
    ChannelPoolSet {
        channel: ChannelCode,
        sku: Sku,
        units: Units,
    },
    Moved(Movement),
    Order(crate::orders::book::OrderEvent),
    Access(crate::access::AccessEvent),
    Idempotent {
        record: crate::access::IdempotencyRecord,
        event: Box<Event>,
    },
    ApprovalRequested(crate::approvals::ApprovalRequest),
    Approved {
        id: u64,
        by: String,
        reason: String,
        at: Timestamp,
        event: Box<Event>,
    },
    ApprovalRejected {
        id: u64,
        by: String,
        reason: String,
        at: Timestamp,
    },
    ApprovalPolicySet(crate::approvals::ApprovalPolicy),
    Attributed {
        origin: crate::access::Origin,
        event: Box<Event>,
    },
    Accounting(crate::accounting::AccountingEvent),
    /// A business event with the journal entries its posting rules made when it was decided,
    /// and the moving-average valuations those leave (entity, SKU → units and value).
    Accounted {
        entries: Vec<crate::accounting::JournalEntry>,
        valuation: Vec<(ordo_types::LegalEntityCode, Sku, crate::accounting::Valuation)>,
        event: Box<Event>,
    },
    Returns(crate::returns::ReturnEvent),
    DeadLetter(crate::deadletter::DeadLetterEvent),
    Edi(crate::edi::EdiEvent),
}

impl Event {
    /// The event that changed the business, inside any idempotency, approval or attribution
    /// wrappers.
    pub fn effect(&self) -> &Event {
        match self {
            Self::Idempotent { event, .. }
            | Self::Approved { event, .. }
            | Self::Attributed { event, .. }
            | Self::Accounted { event, .. } => event.effect(),
            other => other,
        }
    }

    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::LegalEntityDefined(_) => "legal_entity_defined",
            Self::ItemDefined(_) => "item_defined",
            Self::LocationDefined(_) => "location_defined",
            Self::ChannelDefined(_) => "channel_defined",
            Self::SafetyStockSet { .. } => "safety_stock_set",
            Self::ChannelPoolSet { .. } => "channel_pool_set",
            Self::Moved(_) => "moved",
            Self::Order(crate::orders::book::OrderEvent::Recorded { .. }) => "order_recorded",
            Self::Order(crate::orders::book::OrderEvent::Configured(_)) => "order_configured",
            Self::Order(crate::orders::book::OrderEvent::Packaged { .. }) => "order_packaged",
            Self::Access(_) => "access",
            Self::Idempotent { event, .. } => event.kind_name(),
            Self::ApprovalRequested(_) => "approval_requested",
            Self::Approved { .. } => "approved",
            Self::ApprovalRejected { .. } => "approval_rejected",
            Self::ApprovalPolicySet(_) => "approval_policy_set",
            Self::Attributed { event, .. } => event.kind_name(),
            Self::Accounting(_) => "accounting",
            Self::Accounted { event, .. } => event.kind_name(),
            Self::Returns(_) => "returns",
            Self::DeadLetter(_) => "dead_letter",
            Self::Edi(_) => "edi",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error(transparent)]
    Catalog(#[from] CatalogRejection),
    #[error(transparent)]
    Move(#[from] MoveRejection),
    #[error(transparent)]
    Order(Box<crate::orders::book::OrderRejection>),
    #[error(transparent)]
    Access(#[from] crate::access::AccessRejection),
    #[error(transparent)]
    Approval(#[from] crate::approvals::ApprovalRejection),
    #[error(transparent)]
    Accounting(#[from] crate::accounting::AccountingRejection),
    #[error(transparent)]
    Returns(#[from] crate::returns::ReturnRejection),
    #[error(transparent)]
    DeadLetter(#[from] crate::deadletter::DeadLetterRejection),
    #[error(transparent)]
    Edi(#[from] crate::edi::EdiRejection),
    #[error("idempotency key {0:?} was already used for a different request")]
    IdempotencyKeyReused(String),
    /// The same request under the same key was already carried out: here is its answer.
    #[error("this request was already carried out (idempotency key {key:?})")]
    AlreadyAnswered { key: String, status: u16, body: String },
}

/// One `(sku, location)` row of the stock projection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockRow {
    pub sku: Sku,
    pub location: LocationCode,
    pub buckets: Buckets,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ReversibleMovement {
    sku: Sku,
    postings: Vec<Posting<Account>>,
    reversed_by: Option<u64>,
}

/// Catalog entries interned to dense ids.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub(crate) struct Catalog {
    pub entities: BTreeMap<LegalEntityCode, LegalEntity>,
    pub items: Vec<Item>,
    pub sku_ids: HashMap<Sku, u32>,
    pub locations: Vec<Location>,
    pub location_ids: HashMap<LocationCode, u32>,
    pub channels: Vec<Channel>,
    pub channel_ids: HashMap<ChannelCode, u32>,
    /// Per channel, its location ids in preference order.
    pub channel_locations: Vec<Vec<u32>>,
    pub gtins: HashMap<String, u32>,
    pub safety_rules: BTreeMap<SafetyStockScope, Units>,
    pub safety_sku_location: HashMap<(u32, u32), Units>,
    pub safety_sku: HashMap<u32, Units>,
    pub safety_class: HashMap<Code, Units>,
    pub safety_location: HashMap<u32, Units>,
    /// Per SKU, `(channel id, ring-fenced units)`.
    pub pools: Vec<Vec<(u32, Units)>>,
    /// Per SKU, the bundles it is a component of (sorted).
    pub bundles_of: Vec<Vec<u32>>,
}

impl Catalog {
    /// Safety stock for `sku` at `location`: the most specific rule wins.
    pub fn safety_stock(&self, sku: u32, location: u32) -> Units {
        if let Some(u) = self.safety_sku_location.get(&(sku, location)) {
            return *u;
        }
        if let Some(u) = self.safety_sku.get(&sku) {
            return *u;
        }
        if let Some(class) = &self.items[sku as usize].sku_class
            && let Some(u) = self.safety_class.get(class)
        {
            return *u;
        }
        self.safety_location.get(&location).copied().unwrap_or(0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub(crate) struct Inventory {
    /// Per SKU, `(location id, buckets)` sorted by location id.
    pub stock: Vec<Vec<(u32, Buckets)>>,
    /// Per SKU, the outside accounts in [`OutsideAccount`] order.
    pub outside: Vec<[Units; 4]>,
    /// Ordered maps, not hash maps: these grow with every order and purchase and are kept, and a
    /// hash map doubles all at once — rehashing 229,000 reservations held the engine, and every
    /// request waiting on it, for ~130 ms. A B-tree grows a node at a time.
    pub reservations: BTreeMap<Reference, Reservation>,
    pub transfers: BTreeMap<Reference, Transfer>,
    pub expectations: BTreeMap<Reference, Expectation>,
    /// Per SKU, its expectations with units still open.
    pub open_expectations: Vec<BTreeSet<Reference>>,
    /// Per SKU, its transfers with units still in transit.
    pub open_transfers: Vec<BTreeSet<Reference>>,
    /// Reversible movements by journal sequence, in sequence order (appended as applied).
    reversible: Vec<(u64, ReversibleMovement)>,
}

impl Inventory {
    pub fn buckets(&self, sku: u32, location: u32) -> Buckets {
        let row = &self.stock[sku as usize];
        match row.binary_search_by_key(&location, |(l, _)| *l) {
            Ok(i) => row[i].1,
            Err(_) => Buckets::default(),
        }
    }

    fn reversible(&self, seq: u64) -> Option<&ReversibleMovement> {
        self.reversible.binary_search_by_key(&seq, |(s, _)| *s).ok().map(|i| &self.reversible[i].1)
    }

    fn buckets_mut(&mut self, sku: u32, location: u32) -> &mut Buckets {
        let row = &mut self.stock[sku as usize];
        let i = match row.binary_search_by_key(&location, |(l, _)| *l) {
            Ok(i) => i,
            Err(i) => {
                row.insert(i, (location, Buckets::default()));
                i
            }
        };
        &mut row[i].1
    }
}

/// The authoritative state of a ledger partition.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct State {
    pub(crate) catalog: Catalog,
    pub(crate) inventory: Inventory,
    /// Per SKU, per channel id: the last published available-to-sell.
    pub(crate) ats: Vec<Vec<Units>>,
    pub(crate) orders: crate::orders::book::OrderBook,
    pub(crate) access: crate::access::Access,
    pub(crate) approvals: crate::approvals::Approvals,
    pub(crate) gl: crate::accounting::GeneralLedger,
    pub(crate) returns: crate::returns::Returns,
    pub(crate) dead_letters: crate::deadletter::DeadLetters,
    pub(crate) partners: crate::edi::Partners,
    last_seq: u64,
    #[serde(skip)]
    dirty: Dirty,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
/// Change tracking. Plain vectors, sorted and deduplicated when taken: pushing is far cheaper
/// than keeping a set ordered on every movement.
struct Dirty {
    all_skus: bool,
    skus: Vec<u32>,
    stock: Vec<(u32, u32)>,
    /// SKUs whose available-to-sell changed since the availability projection was last written.
    availability: Vec<u32>,
    /// Movements are not tracked (see [`State::set_change_tracking`]).
    untracked: bool,
    /// Length of `stock` + `availability` after their last compaction.
    compacted_len: usize,
}

/// The ledger view of one SKU's accounts.
struct SkuLedger<'a, I> {
    inventory: I,
    catalog: &'a Catalog,
    sku: u32,
}

impl<I: std::ops::Deref<Target = Inventory>> Balances<Account> for SkuLedger<'_, I> {
    fn balance(&self, account: &Account) -> Units {
        match account {
            Account::Stock { location, state } => match self.catalog.location_ids.get(location) {
                Some(l) => self.inventory.buckets(self.sku, *l).get(*state),
                None => 0,
            },
            Account::InTransit { transfer } => self.inventory.transfers.get(transfer).map_or(0, |t| t.in_transit),
            Account::Incoming { expectation } => self.inventory.expectations.get(expectation).map_or(0, |e| e.open),
            Account::Outside(o) => self.inventory.outside[self.sku as usize][o.index()],
        }
    }

    fn floor(&self, account: &Account) -> Option<Units> {
        match account {
            Account::Outside(_) => None,
            _ => Some(0),
        }
    }
}

impl Book<Account> for SkuLedger<'_, &mut Inventory> {
    fn add(&mut self, account: &Account, delta: Units) {
        let sku = self.sku;
        match account {
            Account::Stock { location, state } => {
                let l = self.catalog.location_ids[location];
                self.inventory.buckets_mut(sku, l).states[state.index()] += delta;
            }
            Account::InTransit { transfer } => {
                let t = self.inventory.transfers.get_mut(transfer).expect("transfer recorded before posting");
                t.in_transit += delta;
                let in_transit = t.in_transit;
                let l = self.catalog.location_ids[&t.to];
                self.inventory.buckets_mut(sku, l).in_transit_inbound += delta;
                let set = &mut self.inventory.open_transfers[sku as usize];
                if in_transit > 0 {
                    set.insert(transfer.clone());
                } else {
                    set.remove(transfer);
                }
            }
            Account::Incoming { expectation } => {
                let e = self.inventory.expectations.get_mut(expectation).expect("expectation recorded before posting");
                e.open += delta;
                let open = e.open;
                let l = self.catalog.location_ids[&e.location];
                self.inventory.buckets_mut(sku, l).incoming += delta;
                let set = &mut self.inventory.open_expectations[sku as usize];
                if open > 0 {
                    set.insert(expectation.clone());
                } else {
                    set.remove(expectation);
                }
            }
            Account::Outside(o) => self.inventory.outside[sku as usize][o.index()] += delta,
        }
    }
}

fn require_text(field: &'static str, value: &str) -> Result<(), CatalogRejection> {
    if value.trim().is_empty() { Err(CatalogRejection::MissingField { field }) } else { Ok(()) }
}

fn positive(units: Units) -> Result<(), MoveRejection> {
    if units <= 0 {
        Err(MoveRejection::QuantityNotPositive(units))
    } else if units > MAX_UNITS_PER_MOVEMENT {
        Err(MoveRejection::QuantityOutOfRange)
    } else {
        Ok(())
    }
}

impl State {
    pub fn new() -> Self {
        Self::default()
    }

    /// The sequence number of the last event applied.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    // ----- decide -------------------------------------------------------------------------

    /// Validates `command` against the current state. Pure: nothing changes until the returned
    /// event is applied. `now` stamps nothing here; it is part of the signature so rules that
    /// depend on time (expiring reservations, dated rules) never reach for a clock.
    pub fn decide(&self, command: &Command, _now: Timestamp) -> Result<Event, Rejection> {
        Ok(match command {
            Command::DefineLegalEntity(e) => {
                require_text("name", &e.name)?;
                Event::LegalEntityDefined(e.clone())
            }
            Command::DefineItem(item) => {
                self.validate_item(item)?;
                Event::ItemDefined(item.clone())
            }
            Command::DefineLocation(l) => {
                require_text("name", &l.name)?;
                validate_time_zone(&l.time_zone)?;
                if !self.catalog.entities.contains_key(&l.legal_entity) {
                    return Err(CatalogRejection::UnknownLegalEntity(l.legal_entity.clone()).into());
                }
                // Its stock is valued in its entity's books: moving the location would strand it.
                if let Some(id) = self.catalog.location_ids.get(&l.code)
                    && self.catalog.locations[*id as usize].legal_entity != l.legal_entity
                    && self.inventory.stock.iter().any(|locs| locs.iter().any(|(at, b)| at == id && b.on_hand() != 0))
                {
                    return Err(CatalogRejection::EntityChangeWithStock(l.code.clone()).into());
                }
                Event::LocationDefined(l.clone())
            }
            Command::DefineChannel(c) => {
                self.validate_channel(c)?;
                Event::ChannelDefined(c.clone())
            }
            Command::SetSafetyStock { scope, units } => {
                if *units < 0 {
                    return Err(CatalogRejection::NegativeSafetyStock(*units).into());
                }
                match scope {
                    SafetyStockScope::SkuAtLocation(s, l) => {
                        self.stock_sku_for_catalog(s)?;
                        self.location_for_catalog(l)?;
                    }
                    SafetyStockScope::Sku(s) => {
                        self.stock_sku_for_catalog(s)?;
                    }
                    SafetyStockScope::SkuClass(_) => {}
                    SafetyStockScope::Location(l) => {
                        self.location_for_catalog(l)?;
                    }
                }
                Event::SafetyStockSet { scope: scope.clone(), units: *units }
            }
            Command::SetChannelPool { channel, sku, units } => {
                if *units < 0 {
                    return Err(CatalogRejection::NegativePool(*units).into());
                }
                self.stock_sku_for_catalog(sku)?;
                if !self.catalog.channel_ids.contains_key(channel) {
                    return Err(CatalogRejection::UnknownChannel(channel.clone()).into());
                }
                Event::ChannelPoolSet { channel: channel.clone(), sku: sku.clone(), units: *units }
            }
            Command::Move(m) => self.accounted(Event::Moved(self.decide_move(m)?), _now)?,
            Command::Order(c) => self.accounted(
                Event::Order(crate::orders::book::decide(self, c, _now).map_err(|e| Rejection::Order(Box::new(e)))?),
                _now,
            )?,
            Command::Accounting(c) => self.decide_accounting(c, _now)?,
            Command::Returns(c) => self.accounted(Event::Returns(self.decide_return(c, _now)?), _now)?,
            Command::DeadLetter(c) => Event::DeadLetter(self.dead_letters.decide(c, _now)?),
            Command::Edi(c) => Event::Edi(self.partners.decide(c, |ch| self.channel(ch).is_some(), _now)?),
            Command::Access(c) => {
                if let crate::access::AccessCommand::IssueScopedToken { channels, .. } = c
                    && let Some(unknown) = channels.iter().find(|ch| self.channel(ch).is_none())
                {
                    return Err(crate::access::AccessRejection::UnknownChannel(unknown.clone()).into());
                }
                Event::Access(self.access.decide(c)?)
            }
            Command::Idempotent { user, key, request_sha256_hex, command } => {
                if let Some(held) = self.access.idempotency(user, key) {
                    // Never a second effect: a repeat is refused with the first answer.
                    if held.request_sha256_hex != *request_sha256_hex {
                        return Err(Rejection::IdempotencyKeyReused(key.clone()));
                    }
                    return Err(Rejection::AlreadyAnswered {
                        key: key.clone(),
                        status: held.status,
                        body: held.body.clone(),
                    });
                }
                if matches!(**command, Command::Idempotent { .. }) {
                    return Err(Rejection::IdempotencyKeyReused(key.clone()));
                }
                let event = self.decide(command, _now)?;
                let (status, body) = response_of(&event, self.last_seq + 1);
                let record = crate::access::IdempotencyRecord {
                    user: user.clone(),
                    key: key.clone(),
                    request_sha256_hex: request_sha256_hex.clone(),
                    status,
                    body,
                };
                Event::Idempotent { record, event: Box::new(event) }
            }
            Command::Gated { by, note, command } => {
                // Decided now even when it will wait, so a request that could never apply is
                // refused at once rather than at approval.
                let event = self.decide(command, _now)?;
                let why =
                    self.approvals.policy.reason(command).or_else(|| crate::returns::approval_reason(self, &event));
                match why {
                    None => event,
                    Some(why) => Event::ApprovalRequested(crate::approvals::ApprovalRequest {
                        id: self.approvals.next_id(),
                        requested_by: by.clone(),
                        requested_at: _now,
                        why,
                        note: note.clone(),
                        command: (**command).clone(),
                        status: crate::approvals::ApprovalStatus::Pending,
                    }),
                }
            }
            Command::Approve { id, by, reason } => {
                let request = self.approvals.decidable(*id, by, reason)?;
                let event = self.decide(&request.command, _now)?;
                Event::Approved { id: *id, by: by.clone(), reason: reason.clone(), at: _now, event: Box::new(event) }
            }
            Command::RejectApproval { id, by, reason } => {
                self.approvals.decidable(*id, by, reason)?;
                Event::ApprovalRejected { id: *id, by: by.clone(), reason: reason.clone(), at: _now }
            }
            Command::SetApprovalPolicy(p) => Event::ApprovalPolicySet(p.clone()),
            Command::Attributed { origin, command } => {
                Event::Attributed { origin: origin.clone(), event: Box::new(self.decide(command, _now)?) }
            }
        })
    }

    fn stock_sku_for_catalog(&self, sku: &Sku) -> Result<u32, CatalogRejection> {
        let id = *self.catalog.sku_ids.get(sku).ok_or_else(|| CatalogRejection::UnknownSku(sku.clone()))?;
        if self.catalog.items[id as usize].is_bundle() {
            return Err(CatalogRejection::BundleHasNoStock(sku.clone()));
        }
        Ok(id)
    }

    fn location_for_catalog(&self, l: &LocationCode) -> Result<u32, CatalogRejection> {
        self.catalog.location_ids.get(l).copied().ok_or_else(|| CatalogRejection::UnknownLocation(l.clone()))
    }

    fn validate_item(&self, item: &Item) -> Result<(), CatalogRejection> {
        require_text("title", &item.title)?;
        for (uom, factor) in &item.uom_conversions {
            if uom.trim().is_empty() || uom == crate::catalog::BASE_UOM || *factor < 2 {
                return Err(CatalogRejection::InvalidConversion { uom: uom.clone() });
            }
        }
        let existing = self.catalog.sku_ids.get(&item.sku).copied();
        if let Some(gtin) = &item.gtin
            && let Some(owner) = self.catalog.gtins.get(gtin.as_str())
            && Some(*owner) != existing
        {
            return Err(CatalogRejection::GtinInUse {
                gtin: gtin.as_str().to_owned(),
                sku: self.catalog.items[*owner as usize].sku.clone(),
            });
        }
        let mut seen = BTreeSet::new();
        for c in &item.components {
            if c.sku == item.sku {
                return Err(CatalogRejection::BundleContainsItself { bundle: item.sku.clone() });
            }
            if !seen.insert(&c.sku) {
                return Err(CatalogRejection::DuplicateComponent {
                    bundle: item.sku.clone(),
                    component: c.sku.clone(),
                });
            }
            if c.quantity == 0 {
                return Err(CatalogRejection::ZeroComponentQuantity {
                    bundle: item.sku.clone(),
                    component: c.sku.clone(),
                });
            }
            let id = *self.catalog.sku_ids.get(&c.sku).ok_or_else(|| CatalogRejection::UnknownSku(c.sku.clone()))?;
            if self.catalog.items[id as usize].is_bundle() {
                return Err(CatalogRejection::NestedBundle { bundle: item.sku.clone(), component: c.sku.clone() });
            }
        }
        if item.is_bundle()
            && let Some(id) = existing
        {
            if let Some(b) = self.catalog.bundles_of[id as usize].first() {
                return Err(CatalogRejection::ComponentCannotBecomeBundle {
                    sku: item.sku.clone(),
                    bundle: self.catalog.items[*b as usize].sku.clone(),
                });
            }
            let stocked = self.inventory.stock[id as usize].iter().any(|(_, b)| !b.is_empty())
                || self.inventory.outside[id as usize] != [0; 4]
                || !self.catalog.pools[id as usize].is_empty();
            if stocked {
                return Err(CatalogRejection::StockedItemCannotBecomeBundle { sku: item.sku.clone() });
            }
        }
        Ok(())
    }

    fn validate_channel(&self, c: &Channel) -> Result<(), CatalogRejection> {
        require_text("name", &c.name)?;
        if let Some(p) = c.allocation.percentage_cap
            && !(1..=100).contains(&p)
        {
            return Err(CatalogRejection::InvalidPercentage(p));
        }
        if c.allocation.buffer < 0 {
            return Err(CatalogRejection::NegativeBuffer(c.allocation.buffer));
        }
        if c.priority == 0 {
            return Err(CatalogRejection::InvalidPriority);
        }
        if !self.catalog.entities.contains_key(&c.legal_entity) {
            return Err(CatalogRejection::UnknownLegalEntity(c.legal_entity.clone()));
        }
        if c.locations.is_empty() {
            return Err(CatalogRejection::ChannelWithoutLocations(c.code.clone()));
        }
        let mut seen = BTreeSet::new();
        for l in &c.locations {
            self.location_for_catalog(l)?;
            if !seen.insert(l) {
                return Err(CatalogRejection::DuplicateLocation(l.clone()));
            }
        }
        Ok(())
    }

    fn stock_sku(&self, sku: &Sku) -> Result<u32, MoveRejection> {
        let id = *self.catalog.sku_ids.get(sku).ok_or_else(|| MoveRejection::UnknownSku(sku.clone()))?;
        if self.catalog.items[id as usize].is_bundle() {
            return Err(MoveRejection::BundleHasNoStock(sku.clone()));
        }
        Ok(id)
    }

    fn location_id(&self, l: &LocationCode) -> Result<u32, MoveRejection> {
        self.catalog.location_ids.get(l).copied().ok_or_else(|| MoveRejection::UnknownLocation(l.clone()))
    }

    fn check_postings(&self, sku: u32, postings: &[Posting<Account>]) -> Result<(), MoveRejection> {
        let view = SkuLedger { inventory: &self.inventory, catalog: &self.catalog, sku };
        ordo_ledger::check(&view, postings).map_err(|o: Overdraft<Account>| MoveRejection::InsufficientStock {
            sku: self.catalog.items[sku as usize].sku.clone(),
            account: o.account.describe(),
            balance: o.balance,
            needed: -o.change,
        })
    }

    fn decide_move_inner(&self, command: &MoveCommand) -> Result<Movement, MoveRejection> {
        use Account::Outside;
        use OutsideAccount as O;
        use StockState as S;
        let stock = Account::stock;
        let movement = |kind, sku: &Sku, postings, reference: Option<&Reference>, reason| Movement {
            kind,
            sku: sku.clone(),
            postings,
            reference: reference.cloned(),
            reason,
        };
        let (sku_id, m) = match command {
            MoveCommand::Receipt { sku, location, units, expectation } => {
                positive(*units)?;
                let id = self.stock_sku(sku)?;
                self.location_id(location)?;
                let mut postings = vec![Posting::new(Outside(O::Supplier), stock(location, S::Available), *units)];
                if let Some(e) = expectation {
                    let exp = self
                        .inventory
                        .expectations
                        .get(e)
                        .ok_or_else(|| MoveRejection::UnknownReference { kind: "expectation", reference: e.clone() })?;
                    if exp.sku != *sku || exp.location != *location {
                        return Err(MoveRejection::ExpectationMismatch {
                            expectation: e.clone(),
                            expected_sku: exp.sku.clone(),
                            expected_location: exp.location.clone(),
                            sku: sku.clone(),
                            location: location.clone(),
                        });
                    }
                    let consumed = exp.open.min(*units);
                    if consumed > 0 {
                        postings.push(Posting::new(
                            Account::Incoming { expectation: e.clone() },
                            Outside(O::Supplier),
                            consumed,
                        ));
                    }
                }
                (id, movement(MovementKind::Receipt, sku, postings, expectation.as_ref(), None))
            }
            MoveCommand::Expect { expectation, sku, location, units, expected_on } => {
                positive(*units)?;
                let id = self.stock_sku(sku)?;
                self.location_id(location)?;
                if self.inventory.expectations.contains_key(expectation) {
                    return Err(MoveRejection::ReferenceExists { kind: "expectation", reference: expectation.clone() });
                }
                let postings = vec![Posting::new(
                    Outside(O::Supplier),
                    Account::Incoming { expectation: expectation.clone() },
                    *units,
                )];
                let kind = MovementKind::Expect { location: location.clone(), expected_on: *expected_on };
                (id, movement(kind, sku, postings, Some(expectation), None))
            }
            MoveCommand::CancelExpectation { expectation } => {
                let exp = self.inventory.expectations.get(expectation).ok_or_else(|| {
                    MoveRejection::UnknownReference { kind: "expectation", reference: expectation.clone() }
                })?;
                if exp.open == 0 {
                    return Err(MoveRejection::NothingOpen { kind: "expectation", reference: expectation.clone() });
                }
                let postings = vec![Posting::new(
                    Account::Incoming { expectation: expectation.clone() },
                    Outside(O::Supplier),
                    exp.open,
                )];
                let id = self.catalog.sku_ids[&exp.sku];
                (id, movement(MovementKind::CancelExpectation, &exp.sku, postings, Some(expectation), None))
            }
            MoveCommand::TransferShip { transfer, sku, from, to, units } => {
                positive(*units)?;
                let id = self.stock_sku(sku)?;
                self.location_id(from)?;
                self.location_id(to)?;
                if from == to {
                    return Err(MoveRejection::TransferToSameLocation(from.clone()));
                }
                if self.inventory.transfers.contains_key(transfer) {
                    return Err(MoveRejection::ReferenceExists { kind: "transfer", reference: transfer.clone() });
                }
                let postings = vec![Posting::new(
                    stock(from, S::Available),
                    Account::InTransit { transfer: transfer.clone() },
                    *units,
                )];
                let kind = MovementKind::TransferShip { from: from.clone(), to: to.clone() };
                (id, movement(kind, sku, postings, Some(transfer), None))
            }
            MoveCommand::TransferReceive { transfer, units } => {
                positive(*units)?;
                let t = self
                    .inventory
                    .transfers
                    .get(transfer)
                    .ok_or_else(|| MoveRejection::UnknownReference { kind: "transfer", reference: transfer.clone() })?;
                if *units > t.in_transit {
                    return Err(MoveRejection::ExceedsOpen {
                        kind: "transfer",
                        reference: transfer.clone(),
                        open: t.in_transit,
                        requested: *units,
                    });
                }
                let postings = vec![Posting::new(
                    Account::InTransit { transfer: transfer.clone() },
                    stock(&t.to, S::Available),
                    *units,
                )];
                let id = self.catalog.sku_ids[&t.sku];
                (id, movement(MovementKind::TransferReceive, &t.sku, postings, Some(transfer), None))
            }
            MoveCommand::Commit { reservation, sku, location, units } => {
                positive(*units)?;
                let id = self.stock_sku(sku)?;
                self.location_id(location)?;
                if self.inventory.reservations.contains_key(reservation) {
                    return Err(MoveRejection::ReferenceExists { kind: "reservation", reference: reservation.clone() });
                }
                let postings = vec![Posting::new(stock(location, S::Available), stock(location, S::Committed), *units)];
                let kind = MovementKind::Commit { location: location.clone() };
                (id, movement(kind, sku, postings, Some(reservation), None))
            }
            MoveCommand::Release { reservation, units } => {
                let r = self.reservation(reservation)?;
                let units = match units {
                    Some(u) => {
                        positive(*u)?;
                        *u
                    }
                    None if r.committed == 0 => {
                        return Err(MoveRejection::NothingOpen { kind: "reservation", reference: reservation.clone() });
                    }
                    None => r.committed,
                };
                self.within_open("reservation", reservation, r.committed, units)?;
                let postings =
                    vec![Posting::new(stock(&r.location, S::Committed), stock(&r.location, S::Available), units)];
                let id = self.catalog.sku_ids[&r.sku];
                (id, movement(MovementKind::Release, &r.sku, postings, Some(reservation), None))
            }
            MoveCommand::Pick { reservation, units } => {
                positive(*units)?;
                let r = self.reservation(reservation)?;
                self.within_open("reservation", reservation, r.committed, *units)?;
                let postings =
                    vec![Posting::new(stock(&r.location, S::Committed), stock(&r.location, S::Picked), *units)];
                let id = self.catalog.sku_ids[&r.sku];
                (id, movement(MovementKind::Pick, &r.sku, postings, Some(reservation), None))
            }
            MoveCommand::Ship { reservation, units } => {
                positive(*units)?;
                let r = self.reservation(reservation)?;
                if *units > r.picked {
                    return Err(MoveRejection::NotPicked {
                        reservation: reservation.clone(),
                        picked: r.picked,
                        committed: r.committed,
                        requested: *units,
                    });
                }
                let postings = vec![Posting::new(stock(&r.location, S::Picked), Outside(O::Customer), *units)];
                let id = self.catalog.sku_ids[&r.sku];
                (id, movement(MovementKind::Ship, &r.sku, postings, Some(reservation), None))
            }
            MoveCommand::ReturnReceipt { sku, location, units, reference } => {
                positive(*units)?;
                let id = self.stock_sku(sku)?;
                let l = self.location_id(location)?;
                if !self.catalog.locations[l as usize].capabilities.returns {
                    return Err(MoveRejection::LocationDoesNotAcceptReturns { location: location.clone() });
                }
                let postings = vec![Posting::new(Outside(O::Customer), stock(location, S::QualityControl), *units)];
                (id, movement(MovementKind::ReturnReceipt, sku, postings, reference.as_ref(), None))
            }
            MoveCommand::Dispose { sku, location, units, disposition } => {
                positive(*units)?;
                let id = self.stock_sku(sku)?;
                self.location_id(location)?;
                let from = stock(location, S::QualityControl);
                let (kind, to) = match disposition {
                    Disposition::Restock => (MovementKind::Restock, stock(location, S::Available)),
                    Disposition::Damaged => (MovementKind::Damage, stock(location, S::Damaged)),
                    Disposition::WriteOff => (MovementKind::WriteOff, Outside(O::WriteOff)),
                };
                (id, movement(kind, sku, vec![Posting::new(from, to, *units)], None, None))
            }
            MoveCommand::WriteOff { sku, location, units, reason } => {
                positive(*units)?;
                let id = self.stock_sku(sku)?;
                self.location_id(location)?;
                let postings = vec![Posting::new(stock(location, S::Damaged), Outside(O::WriteOff), *units)];
                (id, movement(MovementKind::WriteOff, sku, postings, None, Some(*reason)))
            }
            MoveCommand::Hold { sku, location, units, reason } => {
                positive(*units)?;
                let id = self.stock_sku(sku)?;
                self.location_id(location)?;
                let postings = vec![Posting::new(stock(location, S::Available), stock(location, S::Reserved), *units)];
                (id, movement(MovementKind::Hold, sku, postings, None, Some(*reason)))
            }
            MoveCommand::Unhold { sku, location, units } => {
                positive(*units)?;
                let id = self.stock_sku(sku)?;
                self.location_id(location)?;
                let postings = vec![Posting::new(stock(location, S::Reserved), stock(location, S::Available), *units)];
                (id, movement(MovementKind::Unhold, sku, postings, None, None))
            }
            MoveCommand::Count { sku, location, counted_on_hand } => {
                if *counted_on_hand < 0 {
                    return Err(MoveRejection::NegativeCount(*counted_on_hand));
                }
                if *counted_on_hand > MAX_UNITS_PER_MOVEMENT {
                    return Err(MoveRejection::QuantityOutOfRange);
                }
                let id = self.stock_sku(sku)?;
                let l = self.location_id(location)?;
                let b = self.inventory.buckets(id, l);
                let delta = counted_on_hand - b.on_hand();
                let not_available = b.on_hand() - b.available();
                if *counted_on_hand < not_available {
                    return Err(MoveRejection::CountBelowUnavailableStock { counted: *counted_on_hand, not_available });
                }
                let postings = adjustment_postings(location, delta);
                let kind = MovementKind::Count { counted_on_hand: *counted_on_hand };
                (id, movement(kind, sku, postings, None, Some(ReasonCode::CountCorrection)))
            }
            MoveCommand::Adjust { sku, location, delta, reason } => {
                if *delta == 0 {
                    return Err(MoveRejection::ZeroAdjustment);
                }
                if delta.checked_abs().is_none_or(|d| d > MAX_UNITS_PER_MOVEMENT) {
                    return Err(MoveRejection::QuantityOutOfRange);
                }
                let id = self.stock_sku(sku)?;
                self.location_id(location)?;
                let postings = adjustment_postings(location, *delta);
                (id, movement(MovementKind::Adjust, sku, postings, None, Some(*reason)))
            }
            MoveCommand::Reverse { movement: seq, reason } => {
                let original = self.inventory.reversible(*seq).ok_or(if (1..=self.last_seq).contains(seq) {
                    MoveRejection::NotReversible {
                        movement: *seq,
                        kind: "not a receipt, return, disposition, write-off, hold, count or adjustment",
                        hint: "release reservations, cancel expectations, receive transfers, or redefine master data",
                    }
                } else {
                    MoveRejection::UnknownMovement(*seq)
                })?;
                if let Some(by) = original.reversed_by {
                    return Err(MoveRejection::AlreadyReversed { movement: *seq, by });
                }
                // The SKU may have become a bundle since (once it held nothing); a reversal
                // must not book stock into a bundle.
                let id = self.stock_sku(&original.sku)?;
                let postings = ordo_ledger::reverse(&original.postings);
                (id, movement(MovementKind::Reversal { of: *seq }, &original.sku, postings, None, Some(*reason)))
            }
        };
        for p in &m.postings {
            assert!(p.units > 0 && p.from != p.to, "malformed posting built by decide: {p:?}");
        }
        self.check_postings(sku_id, &m.postings)?;
        Ok(m)
    }

    /// [`State::decide`] for one movement, for order decisions that make several at once
    /// (and may touch the reservations orders own).
    pub(crate) fn decide_move_pub(&self, command: &MoveCommand) -> Result<Movement, MoveRejection> {
        self.decide_move_inner(command)
    }

    /// A movement asked for directly: the reservations orders own are theirs to make and void.
    fn decide_move(&self, command: &MoveCommand) -> Result<Movement, MoveRejection> {
        let order_owned = |r: &Reference| r.as_str().starts_with(crate::inventory::ORDER_RESERVATION_PREFIX);
        match command {
            MoveCommand::Commit { reservation, .. }
            | MoveCommand::Release { reservation, .. }
            | MoveCommand::Pick { reservation, .. }
            | MoveCommand::Ship { reservation, .. }
                if order_owned(reservation) =>
            {
                Err(MoveRejection::OrderReservation(reservation.clone()))
            }
            _ => self.decide_move_inner(command),
        }
    }

    /// Checks a set of postings of one SKU against the current balances.
    pub(crate) fn check_sku_postings(&self, sku: &Sku, postings: &[Posting<Account>]) -> Result<(), MoveRejection> {
        let id = self.stock_sku(sku)?;
        self.check_postings(id, postings)
    }

    /// The safety stock that applies to `sku` at `location` (0 for unknown codes).
    pub fn safety_stock_at(&self, sku: &Sku, location: &LocationCode) -> Units {
        match (self.catalog.sku_ids.get(sku), self.catalog.location_ids.get(location)) {
            (Some(s), Some(l)) => self.catalog.safety_stock(*s, *l),
            _ => 0,
        }
    }

    /// The orders the state holds.
    pub fn access(&self) -> &crate::access::Access {
        &self.access
    }

    pub fn approvals(&self) -> &crate::approvals::Approvals {
        &self.approvals
    }

    pub fn orders(&self) -> &crate::orders::book::OrderBook {
        &self.orders
    }

    fn reservation(&self, reference: &Reference) -> Result<&Reservation, MoveRejection> {
        self.inventory
            .reservations
            .get(reference)
            .ok_or_else(|| MoveRejection::UnknownReference { kind: "reservation", reference: reference.clone() })
    }

    fn within_open(
        &self,
        kind: &'static str,
        reference: &Reference,
        open: Units,
        units: Units,
    ) -> Result<(), MoveRejection> {
        if units > open {
            return Err(MoveRejection::ExceedsOpen { kind, reference: reference.clone(), open, requested: units });
        }
        Ok(())
    }

    // ----- apply --------------------------------------------------------------------------

    /// Folds one journaled event into the state. `seq` must follow the last applied sequence.
    /// [`State::apply`] taking the event by value, so large events (orders) move into the state
    /// instead of being copied. The engine uses this; results are identical.
    pub fn apply_owned(&mut self, seq: u64, event: Event) {
        match event {
            Event::Order(crate::orders::book::OrderEvent::Recorded { record, movements }) => {
                assert_eq!(seq, self.last_seq + 1, "events must be applied in journal order");
                self.last_seq = seq;
                for m in &movements {
                    self.apply_movement(seq, m);
                }
                self.orders.record(record);
            }
            Event::Idempotent { record, event } => {
                self.apply_owned(seq, *event);
                self.access.remember(record);
            }
            Event::Attributed { event, .. } => self.apply_owned(seq, *event),
            Event::Accounted { entries, valuation, event } => {
                self.apply_owned(seq, *event);
                self.post(seq, &entries, &valuation);
            }
            other => self.apply(seq, &other),
        }
    }

    pub fn apply(&mut self, seq: u64, event: &Event) {
        assert_eq!(seq, self.last_seq + 1, "events must be applied in journal order");
        self.last_seq = seq;
        self.apply_effect(seq, event);
    }

    /// What an event does, wrappers (idempotency, approval, attribution) included: they carry
    /// the event they wrap, applied at the same sequence.
    fn apply_effect(&mut self, seq: u64, event: &Event) {
        match event {
            Event::LegalEntityDefined(e) => {
                self.catalog.entities.insert(e.code.clone(), e.clone());
            }
            Event::ItemDefined(item) => self.apply_item(item),
            Event::LocationDefined(l) => match self.catalog.location_ids.get(&l.code) {
                Some(id) => {
                    self.catalog.locations[*id as usize] = l.clone();
                    self.dirty.all_skus = true;
                }
                None => {
                    let id = self.catalog.locations.len() as u32;
                    self.catalog.location_ids.insert(l.code.clone(), id);
                    self.catalog.locations.push(l.clone());
                }
            },
            Event::ChannelDefined(c) => {
                let locations: Vec<u32> = c.locations.iter().map(|l| self.catalog.location_ids[l]).collect();
                match self.catalog.channel_ids.get(&c.code) {
                    Some(id) => {
                        self.catalog.channels[*id as usize] = c.clone();
                        self.catalog.channel_locations[*id as usize] = locations;
                    }
                    None => {
                        let id = self.catalog.channels.len() as u32;
                        self.catalog.channel_ids.insert(c.code.clone(), id);
                        self.catalog.channels.push(c.clone());
                        self.catalog.channel_locations.push(locations);
                        for row in &mut self.ats {
                            row.push(0);
                        }
                    }
                }
                self.dirty.all_skus = true;
            }
            Event::SafetyStockSet { scope, units } => self.apply_safety(scope, *units),
            Event::ChannelPoolSet { channel, sku, units } => {
                let c = self.catalog.channel_ids[channel];
                let s = self.catalog.sku_ids[sku];
                let pools = &mut self.catalog.pools[s as usize];
                pools.retain(|(ch, _)| *ch != c);
                if *units > 0 {
                    pools.push((c, *units));
                    pools.sort_unstable();
                }
                self.dirty.skus.push(s);
            }
            Event::Moved(m) => self.apply_movement(seq, m),
            Event::Order(e) => {
                if let crate::orders::book::OrderEvent::Recorded { movements, .. } = e {
                    for m in movements {
                        self.apply_movement(seq, m);
                    }
                }
                self.orders.apply(e);
            }
            Event::Access(e) => self.access.apply(e),
            Event::Idempotent { record, event } => {
                self.apply_effect(seq, event);
                self.access.remember(record.clone());
            }
            Event::ApprovalRequested(r) => {
                self.approvals.requests.insert(r.id, r.clone());
            }
            Event::Approved { id, by, reason, at, event } => {
                self.apply_effect(seq, event);
                if let Some(r) = self.approvals.requests.get_mut(id) {
                    r.status =
                        crate::approvals::ApprovalStatus::Approved { by: by.clone(), at: *at, reason: reason.clone() };
                }
            }
            Event::ApprovalRejected { id, by, reason, at } => {
                if let Some(r) = self.approvals.requests.get_mut(id) {
                    r.status =
                        crate::approvals::ApprovalStatus::Rejected { by: by.clone(), at: *at, reason: reason.clone() };
                }
            }
            Event::ApprovalPolicySet(p) => self.approvals.policy = p.clone(),
            Event::Attributed { event, .. } => self.apply_effect(seq, event),
            Event::Accounting(e) => self.gl.apply(e),
            Event::DeadLetter(e) => self.dead_letters.apply(e),
            Event::Edi(e) => self.partners.apply(e),
            Event::Returns(e) => {
                match e {
                    crate::returns::ReturnEvent::Recorded { movements, .. } => {
                        for m in movements {
                            self.apply_movement_with(seq, m, false);
                        }
                    }
                    crate::returns::ReturnEvent::Exchanged { replacement, .. } => {
                        self.apply_effect(seq, &Event::Order((**replacement).clone()));
                    }
                    crate::returns::ReturnEvent::PolicySet { .. }
                    | crate::returns::ReturnEvent::RefundedByChannel { .. }
                    | crate::returns::ReturnEvent::ExchangeRefunded { .. } => {}
                }
                self.returns.apply(e);
            }
            Event::Accounted { entries, valuation, event } => {
                self.apply_effect(seq, event);
                self.post(seq, entries, valuation);
            }
        }
    }

    fn post(
        &mut self,
        seq: u64,
        entries: &[crate::accounting::JournalEntry],
        valuation: &[(ordo_types::LegalEntityCode, Sku, crate::accounting::Valuation)],
    ) {
        self.gl.post(seq, entries);
        self.gl.revalue(valuation.iter().map(|(e, s, v)| ((e.clone(), s.clone()), *v)));
    }

    /// `event` with the journal entries the posting rules make of it (unchanged when none).
    fn accounted(&self, event: Event, now: Timestamp) -> Result<Event, Rejection> {
        use crate::orders::book::OrderEvent;
        let mut postings = crate::accounting::Postings::default();
        let date = now.date();
        match &event {
            Event::Moved(m) => postings.value_movements(self, std::slice::from_ref(m), date)?,
            Event::Order(OrderEvent::Recorded { record, movements }) => {
                postings.value_movements(self, movements, date)?;
                if !record.shipments.is_empty() {
                    postings.recognize_sale(self, self.orders.get(&record.key()), record, date)?;
                }
            }
            Event::Returns(crate::returns::ReturnEvent::Recorded { rma, movements }) => {
                postings.value_movements(self, movements, date)?;
                let before = self.returns.get(&rma.rma_id).and_then(|r| r.refund.as_ref());
                if let (None, Some(refund)) = (before, &rma.refund) {
                    postings.refund(self, rma, refund, date)?;
                }
            }
            Event::Returns(crate::returns::ReturnEvent::Exchanged { rma, exchange, replacement }) => {
                if let OrderEvent::Recorded { movements, .. } = &**replacement {
                    postings.value_movements(self, movements, date)?;
                }
                if let Some(refund) = &rma.refund {
                    postings.refund(self, rma, refund, date)?;
                }
                postings.exchange_credit(self, rma, &exchange.credit, date)?;
            }
            Event::Returns(crate::returns::ReturnEvent::RefundedByChannel { returning, kept, beyond_goods_minor }) => {
                // What went beyond the goods is booked once, with the first record.
                let mut beyond = *beyond_goods_minor;
                for rma in returning.iter().chain(kept) {
                    if let Some(refund) = &rma.refund {
                        postings.channel_refund(self, rma, refund, std::mem::take(&mut beyond), date)?;
                    }
                }
            }
            _ => {}
        }
        if postings.is_empty() && postings.valuation.is_empty() {
            return Ok(event);
        }
        let valuation = postings.valuation.into_iter().map(|((e, s), v)| (e, s, v)).collect();
        Ok(Event::Accounted { entries: postings.entries, valuation, event: Box::new(event) })
    }

    /// Units valued by each entity equal the physical units at its locations plus what is in
    /// transit to them (stock sent to another entity is valued there from the moment it leaves;
    /// within one entity the sender's and receiver's entity are the same).
    fn check_valued_units(&self) -> Vec<String> {
        let mut physical: BTreeMap<(ordo_types::LegalEntityCode, Sku), Units> = BTreeMap::new();
        for (s, locs) in self.inventory.stock.iter().enumerate() {
            let sku = &self.catalog.items[s].sku;
            for (l, b) in locs {
                let entity = self.catalog.locations[*l as usize].legal_entity.clone();
                *physical.entry((entity, sku.clone())).or_insert(0) += b.on_hand();
            }
        }
        for t in self.inventory.transfers.values() {
            if let Some(l) = self.location(&t.to) {
                *physical.entry((l.legal_entity.clone(), t.sku.clone())).or_insert(0) += t.in_transit;
            }
        }
        let mut problems = Vec::new();
        let valued = self.gl.valuation();
        let keys: BTreeSet<&(ordo_types::LegalEntityCode, Sku)> = physical.keys().chain(valued.keys()).collect();
        for key in keys {
            let (p, v) = (physical.get(key).copied().unwrap_or(0), valued.get(key).map_or(0, |v| v.units));
            if p != v {
                problems.push(format!("{} {}: {p} units on hand but {v} valued", key.0, key.1));
            }
        }
        problems
    }

    fn decide_accounting(&self, c: &crate::accounting::AccountingCommand, now: Timestamp) -> Result<Event, Rejection> {
        use crate::accounting::{AccountingCommand as C, AccountingEvent as E, AccountingRejection as R};
        match c {
            C::SetFeeSchedule { channel, schedule } => {
                if self.channel(channel).is_none() {
                    return Err(R::UnknownChannel(channel.clone()).into());
                }
                Ok(Event::Accounting(E::FeeScheduleSet { channel: channel.clone(), schedule: *schedule }))
            }
            C::ImportSettlement(settlement) => {
                let channel = self.channel(&settlement.channel).ok_or(R::UnknownChannel(settlement.channel.clone()))?;
                let key = (settlement.channel.clone(), settlement.settlement_id.clone());
                if self.gl.settlements().contains_key(&key) {
                    return Err(R::SettlementAlreadyImported { channel: key.0, id: key.1 }.into());
                }
                let entity = channel.legal_entity.clone();
                let functional =
                    self.catalog.entities.get(&entity).ok_or(R::UnknownEntity(entity.clone()))?.functional_currency;
                let date = settlement.deposit_date.unwrap_or(now.date());
                let rate = self.gl.fx_rate(settlement.currency, functional, date);
                let reconciled = crate::settlement::reconcile(self, (**settlement).clone());
                // The rate an order's sale was booked at: the one in force the day it shipped.
                let sale_rate = |order_id: &str| {
                    let key = crate::orders::model::OrderKey {
                        channel: settlement.channel.clone(),
                        channel_order_id: order_id.to_owned(),
                    };
                    let shipped = self.orders.get(&key)?.shipments.first()?.shipped_at.date();
                    self.gl.fx_rate(settlement.currency, functional, shipped)
                };
                let entry = crate::settlement::payout_entry(&reconciled, entity, functional, rate, date, sale_rate)?;
                Ok(Event::Accounted {
                    entries: vec![entry],
                    valuation: Vec::new(),
                    event: Box::new(Event::Accounting(E::SettlementReconciled(Box::new(reconciled)))),
                })
            }
            other => Ok(Event::Accounting(crate::accounting::decide(other, |sku| self.item(sku).is_some())?)),
        }
    }

    /// Outside payloads kept because they could not be read.
    pub fn dead_letters(&self) -> &crate::deadletter::DeadLetters {
        &self.dead_letters
    }

    pub fn partners(&self) -> &crate::edi::Partners {
        &self.partners
    }

    /// The general ledger: balances, entries, valuations, costs and rates.
    pub fn gl(&self) -> &crate::accounting::GeneralLedger {
        &self.gl
    }

    fn apply_item(&mut self, item: &Item) {
        let id = match self.catalog.sku_ids.get(&item.sku) {
            Some(id) => {
                let id = *id;
                let old = std::mem::replace(&mut self.catalog.items[id as usize], item.clone());
                if let Some(g) = &old.gtin {
                    self.catalog.gtins.remove(g.as_str());
                }
                for c in &old.components {
                    let cid = self.catalog.sku_ids[&c.sku];
                    self.catalog.bundles_of[cid as usize].retain(|b| *b != id);
                    self.dirty.skus.push(cid);
                }
                id
            }
            None => {
                let id = self.catalog.items.len() as u32;
                self.catalog.sku_ids.insert(item.sku.clone(), id);
                self.catalog.items.push(item.clone());
                self.catalog.pools.push(Vec::new());
                self.catalog.bundles_of.push(Vec::new());
                self.inventory.stock.push(Vec::new());
                self.inventory.outside.push([0; 4]);
                self.inventory.open_expectations.push(BTreeSet::new());
                self.inventory.open_transfers.push(BTreeSet::new());
                self.ats.push(vec![0; self.catalog.channels.len()]);
                id
            }
        };
        if let Some(g) = &item.gtin {
            self.catalog.gtins.insert(g.as_str().to_owned(), id);
        }
        for c in &item.components {
            let cid = self.catalog.sku_ids[&c.sku];
            let list = &mut self.catalog.bundles_of[cid as usize];
            if let Err(i) = list.binary_search(&id) {
                list.insert(i, id);
            }
        }
        self.dirty.skus.push(id);
    }

    fn apply_safety(&mut self, scope: &SafetyStockScope, units: Units) {
        let c = &mut self.catalog;
        c.safety_rules.insert(scope.clone(), units);
        match scope {
            SafetyStockScope::SkuAtLocation(s, l) => {
                let (s, l) = (c.sku_ids[s], c.location_ids[l]);
                c.safety_sku_location.insert((s, l), units);
                self.dirty.skus.push(s);
            }
            SafetyStockScope::Sku(s) => {
                let s = c.sku_ids[s];
                c.safety_sku.insert(s, units);
                self.dirty.skus.push(s);
            }
            SafetyStockScope::SkuClass(class) => {
                c.safety_class.insert(class.clone(), units);
                self.dirty.all_skus = true;
            }
            SafetyStockScope::Location(l) => {
                c.safety_location.insert(c.location_ids[l], units);
                self.dirty.all_skus = true;
            }
        }
    }

    fn apply_movement(&mut self, seq: u64, m: &Movement) {
        self.apply_movement_with(seq, m, true);
    }

    /// `reversible`: whether `ordo move reverse` may undo it later — not for movements a document
    /// (an RMA) made, which only that document moves, and of which one event may hold several.
    fn apply_movement_with(&mut self, seq: u64, m: &Movement, reversible: bool) {
        let sku = self.catalog.sku_ids[&m.sku];
        let reference = m.reference.as_ref();
        // Open records first, so postings into them find them.
        match &m.kind {
            MovementKind::Expect { location, expected_on } => {
                let e = Expectation {
                    sku: m.sku.clone(),
                    location: location.clone(),
                    expected_on: *expected_on,
                    expected: m.postings[0].units,
                    open: 0,
                };
                self.inventory.expectations.insert(reference.expect("expectation reference").clone(), e);
            }
            MovementKind::TransferShip { from, to } => {
                let t = Transfer {
                    sku: m.sku.clone(),
                    from: from.clone(),
                    to: to.clone(),
                    shipped: m.postings[0].units,
                    in_transit: 0,
                };
                self.inventory.transfers.insert(reference.expect("transfer reference").clone(), t);
            }
            MovementKind::Commit { location } => {
                let r = Reservation {
                    sku: m.sku.clone(),
                    location: location.clone(),
                    committed: m.postings[0].units,
                    picked: 0,
                    shipped: 0,
                    released: 0,
                };
                self.inventory.reservations.insert(reference.expect("reservation reference").clone(), r);
            }
            MovementKind::Release | MovementKind::Pick | MovementKind::Ship => {
                let units = m.postings[0].units;
                let r = self.inventory.reservations.get_mut(reference.expect("reservation reference")).expect("open");
                match m.kind {
                    MovementKind::Release => {
                        r.committed -= units;
                        r.released += units;
                    }
                    MovementKind::Pick => {
                        r.committed -= units;
                        r.picked += units;
                    }
                    _ => {
                        r.picked -= units;
                        r.shipped += units;
                    }
                }
                assert!(r.committed >= 0 && r.picked >= 0, "reservation counters went negative");
            }
            MovementKind::Reversal { of } => {
                let at = self
                    .inventory
                    .reversible
                    .binary_search_by_key(of, |(s, _)| *s)
                    .expect("reversed movement is recorded");
                let original = &mut self.inventory.reversible[at].1;
                assert!(original.reversed_by.is_none(), "movement {of} reversed twice");
                original.reversed_by = Some(seq);
            }
            _ => {}
        }
        for p in m.postings.iter().filter(|_| !self.dirty.untracked) {
            for account in [&p.from, &p.to] {
                let location = match account {
                    Account::Stock { location, .. } => Some(location),
                    Account::InTransit { transfer } => Some(&self.inventory.transfers[transfer].to),
                    Account::Incoming { expectation } => Some(&self.inventory.expectations[expectation].location),
                    Account::Outside(_) => None,
                };
                if let Some(l) = location {
                    self.dirty.stock.push((sku, self.catalog.location_ids[l]));
                }
            }
        }
        let mut ledger = SkuLedger { inventory: &mut self.inventory, catalog: &self.catalog, sku };
        ordo_ledger::apply(&mut ledger, &m.postings);
        if reversible && m.kind.is_reversible() {
            debug_assert!(self.inventory.reversible.last().is_none_or(|(s, _)| *s < seq));
            self.inventory.reversible.push((
                seq,
                ReversibleMovement { sku: m.sku.clone(), postings: m.postings.clone(), reversed_by: None },
            ));
        }
        if !self.dirty.untracked {
            self.dirty.skus.push(sku);
        }
    }

    // ----- availability and projections ------------------------------------------------------

    /// Recomputes available-to-sell for every SKU touched since the last call (and every bundle
    /// that shares a component with one), updates the cache and returns what changed, in
    /// `(sku, channel)` order.
    pub fn refresh_availability(&mut self, now: Timestamp) -> Vec<AvailabilityChanged> {
        let dirty = sorted_unique(std::mem::take(&mut self.dirty.skus));
        let all = std::mem::take(&mut self.dirty.all_skus);
        let skus: Vec<u32> =
            if all { (0..self.catalog.items.len() as u32).collect() } else { dirty.into_iter().collect() };
        availability::refresh(self, &skus, now)
    }

    /// Forces a full recompute on the next [`State::refresh_availability`].
    pub fn mark_all_dirty(&mut self) {
        self.dirty.all_skus = true;
    }

    /// Stock rows touched since the last call, in `(sku, location)` id order.
    pub fn take_dirty_stock(&mut self) -> Vec<StockRow> {
        self.take_dirty_stock_up_to(usize::MAX)
    }

    /// Like [`State::take_dirty_stock`], at most `limit` rows; the rest stay pending, so a large
    /// projection write can be spread over several commits.
    pub fn take_dirty_stock_up_to(&mut self, limit: usize) -> Vec<StockRow> {
        let taken = take_up_to(&mut self.dirty.stock, limit);
        self.dirty.compacted_len = self.dirty.stock.len() + self.dirty.availability.len();
        taken
            .into_iter()
            .map(|(s, l)| StockRow {
                sku: self.catalog.items[s as usize].sku.clone(),
                location: self.catalog.locations[l as usize].code.clone(),
                buckets: self.inventory.buckets(s, l),
            })
            .collect()
    }

    /// Marks every stock row as changed, so the next [`State::take_dirty_stock`] returns all.
    pub fn mark_all_stock_dirty(&mut self) {
        for (s, locs) in self.inventory.stock.iter().enumerate() {
            for (l, _) in locs {
                self.dirty.stock.push((s as u32, *l));
            }
        }
    }

    /// Turns change tracking for projections off (a full replay, which recomputes and
    /// rewrites everything anyway) or back on.
    pub fn set_change_tracking(&mut self, on: bool) {
        self.dirty.untracked = !on;
    }

    pub(crate) fn note_availability_changed(&mut self, sku: u32) {
        self.dirty.availability.push(sku);
    }

    /// At most `limit` of the SKUs whose available-to-sell changed since the last call, in
    /// definition order, each with its figure on every channel (channel definition order); the
    /// rest stay pending.
    pub fn take_dirty_availability_up_to(&mut self, limit: usize) -> Vec<(Sku, Vec<(ChannelCode, Units)>)> {
        let taken = take_up_to(&mut self.dirty.availability, limit);
        self.dirty.compacted_len = self.dirty.stock.len() + self.dirty.availability.len();
        taken
            .into_iter()
            .map(|s| {
                let figures = self
                    .catalog
                    .channels
                    .iter()
                    .zip(&self.ats[s as usize])
                    .map(|(c, a)| (c.code.clone(), *a))
                    .collect();
                (self.catalog.items[s as usize].sku.clone(), figures)
            })
            .collect()
    }

    /// How many projection rows (stock and availability) are waiting to be written. Compacts
    /// the change-tracking vectors when they have grown, so the answer is exact and cheap.
    pub fn pending_projection_rows(&mut self) -> usize {
        let d = &mut self.dirty;
        if d.stock.len() + d.availability.len() > 2 * d.compacted_len.max(4_096) {
            d.stock = sorted_unique(std::mem::take(&mut d.stock));
            d.availability = sorted_unique(std::mem::take(&mut d.availability));
            d.compacted_len = d.stock.len() + d.availability.len();
        }
        d.stock.len() + d.availability.len()
    }

    /// Marks every SKU's availability as changed (a full projection rewrite).
    pub fn mark_all_availability_dirty(&mut self) {
        self.dirty.availability.extend(0..self.catalog.items.len() as u32);
    }

    /// How many projection row marks are held, repeats included (cheap; grows by what a batch
    /// marks until rows are taken or compacted).
    pub fn projection_rows_marked(&self) -> usize {
        self.dirty.stock.len() + self.dirty.availability.len()
    }

    /// Whether any stock or availability projection row is waiting to be written.
    pub fn has_pending_projection_rows(&self) -> bool {
        !self.dirty.stock.is_empty() || !self.dirty.availability.is_empty()
    }

    /// Drops pending change tracking (after a rebuild, when projections are rewritten whole).
    pub fn clear_dirty(&mut self) {
        self.dirty = Dirty { untracked: self.dirty.untracked, ..Dirty::default() };
    }

    // ----- queries ------------------------------------------------------------------------

    pub fn item(&self, sku: &Sku) -> Option<&Item> {
        self.catalog.sku_ids.get(sku).map(|id| &self.catalog.items[*id as usize])
    }

    pub fn items(&self) -> &[Item] {
        &self.catalog.items
    }

    pub fn locations(&self) -> &[Location] {
        &self.catalog.locations
    }

    pub fn location(&self, code: &LocationCode) -> Option<&Location> {
        self.catalog.location_ids.get(code).map(|id| &self.catalog.locations[*id as usize])
    }

    pub fn channels(&self) -> &[Channel] {
        &self.catalog.channels
    }

    pub fn channel(&self, code: &ChannelCode) -> Option<&Channel> {
        self.catalog.channel_ids.get(code).map(|id| &self.catalog.channels[*id as usize])
    }

    pub fn legal_entities(&self) -> impl Iterator<Item = &LegalEntity> {
        self.catalog.entities.values()
    }

    pub fn safety_rules(&self) -> &BTreeMap<SafetyStockScope, Units> {
        &self.catalog.safety_rules
    }

    pub fn pool(&self, channel: &ChannelCode, sku: &Sku) -> Units {
        let (Some(c), Some(s)) = (self.catalog.channel_ids.get(channel), self.catalog.sku_ids.get(sku)) else {
            return 0;
        };
        self.catalog.pools[*s as usize].iter().find(|(ch, _)| ch == c).map_or(0, |(_, u)| *u)
    }

    pub fn reservation_record(&self, reference: &Reference) -> Option<&Reservation> {
        self.inventory.reservations.get(reference)
    }

    pub fn transfer(&self, reference: &Reference) -> Option<&Transfer> {
        self.inventory.transfers.get(reference)
    }

    pub fn expectation(&self, reference: &Reference) -> Option<&Expectation> {
        self.inventory.expectations.get(reference)
    }

    /// What of `sku` may still arrive: open purchase expectations and transfers in transit.
    pub fn open_supply(&self, sku: &Sku) -> (Vec<&Expectation>, Vec<&Transfer>) {
        let Some(&s) = self.catalog.sku_ids.get(sku) else { return Default::default() };
        let inv = &self.inventory;
        (
            inv.open_expectations[s as usize].iter().map(|r| &inv.expectations[r]).collect(),
            inv.open_transfers[s as usize].iter().map(|r| &inv.transfers[r]).collect(),
        )
    }

    /// Dense ids for hot loops that look at many `(sku, location)` pairs: resolve once, then
    /// [`State::free_units`] per pair without hashing text.
    pub(crate) fn sku_id(&self, sku: &Sku) -> Option<u32> {
        self.catalog.sku_ids.get(sku).copied()
    }

    pub(crate) fn location_dense_id(&self, location: &LocationCode) -> Option<u32> {
        self.catalog.location_ids.get(location).copied()
    }

    /// Available units above safety stock at a location, by dense ids.
    pub(crate) fn free_units(&self, sku: u32, location: u32) -> Units {
        self.inventory.buckets(sku, location).available() - self.catalog.safety_stock(sku, location)
    }

    pub fn buckets(&self, sku: &Sku, location: &LocationCode) -> Buckets {
        match (self.catalog.sku_ids.get(sku), self.catalog.location_ids.get(location)) {
            (Some(s), Some(l)) => self.inventory.buckets(*s, *l),
            _ => Buckets::default(),
        }
    }

    /// Balance of an outside account for one SKU.
    pub fn outside_balance(&self, sku: &Sku, account: OutsideAccount) -> Units {
        self.catalog.sku_ids.get(sku).map_or(0, |s| self.inventory.outside[*s as usize][account.index()])
    }

    /// Every non-empty `(sku, location)` row, in SKU then location definition order.
    pub fn stock_rows(&self) -> Vec<StockRow> {
        let mut rows = Vec::new();
        for (s, locs) in self.inventory.stock.iter().enumerate() {
            for (l, b) in locs {
                if !b.is_empty() {
                    rows.push(StockRow {
                        sku: self.catalog.items[s].sku.clone(),
                        location: self.catalog.locations[*l as usize].code.clone(),
                        buckets: *b,
                    });
                }
            }
        }
        rows
    }

    /// The cached available-to-sell of `sku` on `channel` (as last published).
    pub fn ats(&self, sku: &Sku, channel: &ChannelCode) -> Option<Units> {
        let s = *self.catalog.sku_ids.get(sku)?;
        let c = *self.catalog.channel_ids.get(channel)?;
        Some(self.ats[s as usize][c as usize])
    }

    /// Checks every ledger invariant; returns one line per violation (empty when sound).
    pub fn check_invariants(&self, now: Timestamp) -> Vec<String> {
        let mut problems = self.gl.check();
        problems.extend(self.check_valued_units());
        let inv = &self.inventory;
        let mut in_transit_to: HashMap<(u32, u32), Units> = HashMap::default();
        for t in inv.transfers.values() {
            if t.in_transit < 0 {
                problems.push(format!("transfer of {} has negative in-transit {}", t.sku, t.in_transit));
            }
            *in_transit_to.entry((self.catalog.sku_ids[&t.sku], self.catalog.location_ids[&t.to])).or_default() +=
                t.in_transit;
        }
        let mut incoming_at: HashMap<(u32, u32), Units> = HashMap::default();
        for e in inv.expectations.values() {
            if e.open < 0 {
                problems.push(format!("expectation for {} has negative open quantity {}", e.sku, e.open));
            }
            *incoming_at.entry((self.catalog.sku_ids[&e.sku], self.catalog.location_ids[&e.location])).or_default() +=
                e.open;
        }
        let mut reserved_at: HashMap<(u32, u32), (Units, Units)> = HashMap::default();
        for r in inv.reservations.values() {
            let e =
                reserved_at.entry((self.catalog.sku_ids[&r.sku], self.catalog.location_ids[&r.location])).or_default();
            e.0 += r.committed;
            e.1 += r.picked;
        }
        for (s, locs) in inv.stock.iter().enumerate() {
            let sku = &self.catalog.items[s].sku;
            let mut total: Units = inv.outside[s].iter().sum();
            for (l, b) in locs {
                let loc = &self.catalog.locations[*l as usize].code;
                for state in StockState::ALL {
                    if b.get(state) < 0 {
                        problems.push(format!("{sku}@{loc}: {} is negative ({})", state.as_str(), b.get(state)));
                    }
                }
                total += b.on_hand();
                let key = (s as u32, *l);
                if b.in_transit_inbound != in_transit_to.get(&key).copied().unwrap_or(0) {
                    problems.push(format!("{sku}@{loc}: in_transit does not equal its open transfers"));
                }
                if b.incoming != incoming_at.get(&key).copied().unwrap_or(0) {
                    problems.push(format!("{sku}@{loc}: incoming does not equal its open expectations"));
                }
                let (committed, picked) = reserved_at.get(&key).copied().unwrap_or((0, 0));
                if b.get(StockState::Committed) != committed || b.get(StockState::Picked) != picked {
                    problems.push(format!("{sku}@{loc}: committed/picked do not equal its reservations"));
                }
            }
            total += inv.transfers.values().filter(|t| t.sku == *sku).map(|t| t.in_transit).sum::<Units>();
            total += inv.expectations.values().filter(|e| e.sku == *sku).map(|e| e.open).sum::<Units>();
            if total != 0 {
                problems.push(format!("{sku}: accounts do not balance (sum {total})"));
            }
        }
        problems.extend(availability::check(self, now));
        problems
    }
}

fn sorted_unique<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort_unstable();
    v.dedup();
    v
}

/// Compacts `pending` and takes the first `limit` entries of it (all of them when fewer),
/// leaving the rest sorted and unique.
fn take_up_to<T: Ord>(pending: &mut Vec<T>, limit: usize) -> Vec<T> {
    let mut all = sorted_unique(std::mem::take(pending));
    if all.len() > limit {
        *pending = all.split_off(limit);
    }
    all
}

/// Postings for a signed change of `available` against the `adjustment` account.
fn adjustment_postings(location: &LocationCode, delta: Units) -> Vec<Posting<Account>> {
    let available = Account::stock(location, StockState::Available);
    let outside = Account::Outside(OutsideAccount::Adjustment);
    match delta.cmp(&0) {
        std::cmp::Ordering::Greater => vec![Posting::new(outside, available, delta)],
        std::cmp::Ordering::Less => vec![Posting::new(available, outside, -delta)],
        std::cmp::Ordering::Equal => vec![],
    }
}

/// The HTTP answer a successful command earns: `201` and a summary of what it recorded (an
/// order's key, status and holds — the full record is a `GET` away), as JSON. One function for
/// first answers and repeats, so an idempotent repeat is identical byte for byte; kept small
/// because it is journaled with the effect.
pub fn response_of(event: &Event, seq: u64) -> (u16, String) {
    let body = match event {
        Event::Order(crate::orders::book::OrderEvent::Recorded { record, .. }) => serde_json::json!({
            "kind": "order",
            "channel": record.order.channel,
            "channel_order_id": record.order.channel_order_id,
            "status": record.status,
            "holds": record.holds,
            "journal_seq": seq,
        }),
        Event::Idempotent { event, .. } | Event::Attributed { event, .. } | Event::Accounted { event, .. } => {
            return response_of(event, seq);
        }
        Event::ApprovalRequested(r) => {
            let body = serde_json::json!({
                "kind": "approval_requested", "approval_id": r.id, "why": r.why, "journal_seq": seq,
            });
            return (202, body.to_string());
        }
        Event::Approved { id, event, .. } => serde_json::json!({
            "kind": "approved", "approval_id": id, "effect": event.kind_name(), "journal_seq": seq,
        }),
        other => serde_json::json!({ "kind": other.kind_name(), "journal_seq": seq }),
    };
    (201, body.to_string())
}

impl crate::accounting::PostingContext for State {
    fn ledger(&self) -> &crate::accounting::GeneralLedger {
        &self.gl
    }

    fn entity_of_location(&self, location: &LocationCode) -> Option<ordo_types::LegalEntityCode> {
        self.location(location).map(|l| l.legal_entity.clone())
    }

    fn entity_of_channel(&self, channel: &ChannelCode) -> Option<ordo_types::LegalEntityCode> {
        self.channel(channel).map(|c| c.legal_entity.clone())
    }

    fn functional_currency(&self, entity: &ordo_types::LegalEntityCode) -> Option<ordo_types::CurrencyCode> {
        self.catalog.entities.get(entity).map(|e| e.functional_currency)
    }

    fn order(&self, key: &crate::orders::model::OrderKey) -> Option<&crate::orders::book::OrderRecord> {
        self.orders.get(key)
    }
}

impl crate::settlement::SettlementContext for State {
    fn order(&self, key: &crate::orders::model::OrderKey) -> Option<&crate::orders::book::OrderRecord> {
        self.orders.get(key)
    }

    fn fee_schedule(&self, channel: &ChannelCode) -> Option<crate::settlement::FeeSchedule> {
        self.gl.fee_schedule(channel)
    }

    fn refund_booked(&self, key: &crate::orders::model::OrderKey) -> bool {
        self.returns.all().any(|r| r.order == *key && r.refund.is_some())
    }
}
