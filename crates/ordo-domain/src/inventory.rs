//! The inventory unit ledger: stock states, accounts, movements and the records that two-phase
//! movements keep open (reservations, transfers, purchase expectations).
//!
//! Every movement is a list of balanced postings between accounts of one SKU. Physical buckets
//! `(location, state)`, in-transit transfers and incoming expectations have a floor of zero;
//! the outside accounts (`supplier`, `customer`, `adjustment`, `write_off`) are unbounded and
//! carry the other side of units entering or leaving the business.

use ordo_ledger::Posting;
use ordo_types::{Date, LocationCode, Reference, Sku, Units};
use serde::{Deserialize, Serialize};

/// The physical states a unit can be in at a location.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StockState {
    Available,
    Committed,
    Picked,
    Reserved,
    QualityControl,
    Damaged,
}

impl StockState {
    pub const ALL: [StockState; 6] =
        [Self::Available, Self::Committed, Self::Picked, Self::Reserved, Self::QualityControl, Self::Damaged];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::Committed => "committed",
            Self::Picked => "picked",
            Self::Reserved => "reserved",
            Self::QualityControl => "quality_control",
            Self::Damaged => "damaged",
        }
    }
}

/// Accounts outside the business that balance units entering or leaving it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutsideAccount {
    Supplier,
    Customer,
    Adjustment,
    WriteOff,
}

impl OutsideAccount {
    pub const ALL: [OutsideAccount; 4] = [Self::Supplier, Self::Customer, Self::Adjustment, Self::WriteOff];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Supplier => "supplier",
            Self::Customer => "customer",
            Self::Adjustment => "adjustment",
            Self::WriteOff => "write_off",
        }
    }
}

/// An account of the inventory ledger, always for one SKU (the movement's).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Account {
    Stock {
        location: LocationCode,
        state: StockState,
    },
    /// Units shipped on a transfer and not yet received at its destination.
    InTransit {
        transfer: Reference,
    },
    /// Open quantity of a purchase expectation (not stock: a promise with a date).
    Incoming {
        expectation: Reference,
    },
    Outside(OutsideAccount),
}

impl Account {
    pub fn stock(location: &LocationCode, state: StockState) -> Self {
        Self::Stock { location: location.clone(), state }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Stock { location, state } => format!("{}@{location}", state.as_str()),
            Self::InTransit { transfer } => format!("in_transit[{transfer}]"),
            Self::Incoming { expectation } => format!("incoming[{expectation}]"),
            Self::Outside(o) => o.as_str().to_owned(),
        }
    }
}

/// Why an adjustment, hold or write-off was made. A closed list so reports can group by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReasonCode {
    CountCorrection,
    Found,
    Lost,
    Theft,
    Damaged,
    Expired,
    Sample,
    ReturnToVendor,
    CustomerHold,
    QualityHold,
    Promotion,
    DataCorrection,
    Other,
}

impl ReasonCode {
    pub const ALL: [ReasonCode; 13] = [
        Self::CountCorrection,
        Self::Found,
        Self::Lost,
        Self::Theft,
        Self::Damaged,
        Self::Expired,
        Self::Sample,
        Self::ReturnToVendor,
        Self::CustomerHold,
        Self::QualityHold,
        Self::Promotion,
        Self::DataCorrection,
        Self::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::CountCorrection => "count_correction",
            Self::Found => "found",
            Self::Lost => "lost",
            Self::Theft => "theft",
            Self::Damaged => "damaged",
            Self::Expired => "expired",
            Self::Sample => "sample",
            Self::ReturnToVendor => "return_to_vendor",
            Self::CustomerHold => "customer_hold",
            Self::QualityHold => "quality_hold",
            Self::Promotion => "promotion",
            Self::DataCorrection => "data_correction",
            Self::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// What happens to a returned unit after inspection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    Restock,
    Damaged,
    WriteOff,
}

impl Disposition {
    pub const ALL: [Disposition; 3] = [Self::Restock, Self::Damaged, Self::WriteOff];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Restock => "restock",
            Self::Damaged => "damaged",
            Self::WriteOff => "write_off",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

/// A movement request: one call of `ordo move …`, one line of a movement CSV.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum MoveCommand {
    /// Units arrive from a supplier into `available`; against an expectation, its open quantity shrinks.
    Receipt {
        sku: Sku,
        location: LocationCode,
        units: Units,
        expectation: Option<Reference>,
    },
    /// A purchase order line expected at `location` on `expected_on` (memo, not stock).
    Expect {
        expectation: Reference,
        sku: Sku,
        location: LocationCode,
        units: Units,
        expected_on: Date,
    },
    /// Closes what is left open on an expectation (supplier short-shipped or the PO was cancelled).
    CancelExpectation {
        expectation: Reference,
    },
    TransferShip {
        transfer: Reference,
        sku: Sku,
        from: LocationCode,
        to: LocationCode,
        units: Units,
    },
    TransferReceive {
        transfer: Reference,
        units: Units,
    },
    /// Phase one of a reservation: `available → committed`, kept open under `reservation`.
    Commit {
        reservation: Reference,
        sku: Sku,
        location: LocationCode,
        units: Units,
    },
    /// Voids (part of) a reservation: `committed → available`. `None` releases all that is committed.
    Release {
        reservation: Reference,
        units: Option<Units>,
    },
    Pick {
        reservation: Reference,
        units: Units,
    },
    /// Posts a reservation: `picked → customer`.
    Ship {
        reservation: Reference,
        units: Units,
    },
    ReturnReceipt {
        sku: Sku,
        location: LocationCode,
        units: Units,
        reference: Option<Reference>,
    },
    Dispose {
        sku: Sku,
        location: LocationCode,
        units: Units,
        disposition: Disposition,
    },
    /// Damaged units leave the books.
    WriteOff {
        sku: Sku,
        location: LocationCode,
        units: Units,
        reason: ReasonCode,
    },
    Hold {
        sku: Sku,
        location: LocationCode,
        units: Units,
        reason: ReasonCode,
    },
    Unhold {
        sku: Sku,
        location: LocationCode,
        units: Units,
    },
    /// A physical count of all units on hand; the difference is booked against `available`.
    Count {
        sku: Sku,
        location: LocationCode,
        counted_on_hand: Units,
    },
    Adjust {
        sku: Sku,
        location: LocationCode,
        delta: Units,
        reason: ReasonCode,
    },
    /// Books the exact opposite of an earlier movement (by journal sequence).
    Reverse {
        movement: u64,
        reason: ReasonCode,
    },
}

/// A movement as recorded in the journal: the postings plus what kind of movement made them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Movement {
    pub kind: MovementKind,
    pub sku: Sku,
    pub postings: Vec<Posting<Account>>,
    /// The reservation, transfer, expectation or return this movement belongs to.
    pub reference: Option<Reference>,
    pub reason: Option<ReasonCode>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MovementKind {
    Receipt,
    Expect { location: LocationCode, expected_on: Date },
    CancelExpectation,
    TransferShip { from: LocationCode, to: LocationCode },
    TransferReceive,
    Commit { location: LocationCode },
    Release,
    Pick,
    Ship,
    ReturnReceipt,
    Restock,
    Damage,
    WriteOff,
    Hold,
    Unhold,
    Count { counted_on_hand: Units },
    Adjust,
    Reversal { of: u64 },
}

impl MovementKind {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Receipt => "receipt",
            Self::Expect { .. } => "expect",
            Self::CancelExpectation => "cancel_expectation",
            Self::TransferShip { .. } => "transfer_ship",
            Self::TransferReceive => "transfer_receive",
            Self::Commit { .. } => "commit",
            Self::Release => "release",
            Self::Pick => "pick",
            Self::Ship => "ship",
            Self::ReturnReceipt => "return_receipt",
            Self::Restock => "restock",
            Self::Damage => "damage",
            Self::WriteOff => "write_off",
            Self::Hold => "hold",
            Self::Unhold => "unhold",
            Self::Count { .. } => "count",
            Self::Adjust => "adjust",
            Self::Reversal { .. } => "reversal",
        }
    }

    /// Whether a movement of this kind may be undone with `Reverse`. Two-phase kinds are closed
    /// by their own counterpart (release, cancel expectation) so their open records stay true.
    pub fn is_reversible(&self) -> bool {
        matches!(
            self,
            Self::Receipt
                | Self::ReturnReceipt
                | Self::Restock
                | Self::Damage
                | Self::WriteOff
                | Self::Hold
                | Self::Unhold
                | Self::Count { .. }
                | Self::Adjust
        )
    }
}

/// The prefix of reservation references that orders make; movements cannot create or void them.
pub const ORDER_RESERVATION_PREFIX: &str = "RSV-";

/// The most units one movement may move: far above any real movement, far below overflow.
pub const MAX_UNITS_PER_MOVEMENT: Units = 1_000_000_000;

/// Why a movement was refused, most fundamental first (the first that applies is reported).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoveRejection {
    #[error("quantity must be positive, got {0}")]
    QuantityNotPositive(Units),
    #[error(
        "reservation {0} belongs to an order: reservations named RSV-… are made, voided, picked and shipped by its order (ordo order pack/ship/cancel)"
    )]
    OrderReservation(Reference),
    #[error("quantity is out of range (at most {MAX_UNITS_PER_MOVEMENT} units per movement)")]
    QuantityOutOfRange,
    #[error("adjustment of 0 units changes nothing")]
    ZeroAdjustment,
    #[error("counted quantity must not be negative, got {0}")]
    NegativeCount(Units),
    #[error("unknown SKU {0}")]
    UnknownSku(Sku),
    #[error("SKU {0} is a bundle; it holds no stock of its own, move its components")]
    BundleHasNoStock(Sku),
    #[error("unknown location {0}")]
    UnknownLocation(LocationCode),
    #[error("transfer from {0} to itself")]
    TransferToSameLocation(LocationCode),
    #[error("location {location} does not accept returns")]
    LocationDoesNotAcceptReturns { location: LocationCode },
    #[error("{kind} {reference} already exists")]
    ReferenceExists { kind: &'static str, reference: Reference },
    #[error("unknown {kind} {reference}")]
    UnknownReference { kind: &'static str, reference: Reference },
    #[error("expectation {expectation} is for SKU {expected_sku} at {expected_location}, not {sku} at {location}")]
    ExpectationMismatch {
        expectation: Reference,
        expected_sku: Sku,
        expected_location: LocationCode,
        sku: Sku,
        location: LocationCode,
    },
    #[error("{kind} {reference} has nothing open")]
    NothingOpen { kind: &'static str, reference: Reference },
    #[error("{kind} {reference} has {open} units open, cannot take {requested}")]
    ExceedsOpen { kind: &'static str, reference: Reference, open: Units, requested: Units },
    #[error("unknown movement {0}")]
    UnknownMovement(u64),
    #[error("movement {movement} ({kind}) cannot be reversed; {hint}")]
    NotReversible { movement: u64, kind: &'static str, hint: &'static str },
    #[error(
        "reservation {reservation} has {picked} units picked and {committed} committed: pick before shipping {requested}"
    )]
    NotPicked { reservation: Reference, picked: Units, committed: Units, requested: Units },
    #[error("movement {movement} was already reversed by movement {by}")]
    AlreadyReversed { movement: u64, by: u64 },
    #[error(
        "counted {counted} on hand, but {not_available} units are committed, picked, reserved or in quality control/damaged"
    )]
    CountBelowUnavailableStock { counted: Units, not_available: Units },
    #[error("{sku}: {account} would go negative (has {balance}, needs {needed})")]
    InsufficientStock { sku: Sku, account: String, balance: Units, needed: Units },
}

/// An open reservation (the pending phase of a two-phase movement).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub sku: Sku,
    pub location: LocationCode,
    pub committed: Units,
    pub picked: Units,
    pub shipped: Units,
    pub released: Units,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    pub sku: Sku,
    pub from: LocationCode,
    pub to: LocationCode,
    pub shipped: Units,
    pub in_transit: Units,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expectation {
    pub sku: Sku,
    pub location: LocationCode,
    pub expected_on: Date,
    pub expected: Units,
    pub open: Units,
}

/// Per `(sku, location)` counters: the six physical states, plus units in transit towards the
/// location and units expected there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Buckets {
    pub states: [Units; 6],
    pub in_transit_inbound: Units,
    pub incoming: Units,
}

impl Buckets {
    pub fn get(&self, state: StockState) -> Units {
        self.states[state.index()]
    }

    pub fn available(&self) -> Units {
        self.get(StockState::Available)
    }

    /// `on_hand = available + committed + picked + reserved + quality_control + damaged`.
    pub fn on_hand(&self) -> Units {
        self.states.iter().sum()
    }

    pub fn is_empty(&self) -> bool {
        *self == Buckets::default()
    }
}
