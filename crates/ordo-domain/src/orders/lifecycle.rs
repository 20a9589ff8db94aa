//! The order state machine: the statuses an order moves through, the one table of legal
//! transitions, hold codes, and who made a change and why. Every transition is recorded as an
//! event with its actor and reason; a transition not in the table is a typed rejection.
//!
//! ```text
//! received ─┬─► validated ─┬─► allocated ───────────┬─► released ─► picking ─► packed ─┬─► shipped ─► delivered ─► closed
//!           │              ├─► partially_allocated ─┤                                   └─► partially_shipped ─► shipped
//!           │              └─► backordered ─────────┘
//!           └─► on_hold ──► validated (when every hold is released, overridden or clears itself)
//! allocated ─► partially_allocated | backordered (the channel's update asks for more than is free)
//! any status before shipped ─► cancelled (releasing its reservations)
//! ```

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Received,
    OnHold,
    Validated,
    Allocated,
    PartiallyAllocated,
    Backordered,
    Released,
    Picking,
    Packed,
    PartiallyShipped,
    Shipped,
    Delivered,
    Closed,
    Cancelled,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 14] = [
        Self::Received,
        Self::OnHold,
        Self::Validated,
        Self::Allocated,
        Self::PartiallyAllocated,
        Self::Backordered,
        Self::Released,
        Self::Picking,
        Self::Packed,
        Self::PartiallyShipped,
        Self::Shipped,
        Self::Delivered,
        Self::Closed,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::OnHold => "on_hold",
            Self::Validated => "validated",
            Self::Allocated => "allocated",
            Self::PartiallyAllocated => "partially_allocated",
            Self::Backordered => "backordered",
            Self::Released => "released",
            Self::Picking => "picking",
            Self::Packed => "packed",
            Self::PartiallyShipped => "partially_shipped",
            Self::Shipped => "shipped",
            Self::Delivered => "delivered",
            Self::Closed => "closed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// No transition leaves a terminal status.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Closed | Self::Cancelled)
    }

    /// The statuses this one may move to. The single source of truth for the state machine.
    pub fn successors(self) -> &'static [OrderStatus] {
        use OrderStatus as S;
        match self {
            S::Received => &[S::Validated, S::OnHold, S::Cancelled],
            S::OnHold => &[S::Validated, S::Cancelled],
            S::Validated => &[S::Allocated, S::PartiallyAllocated, S::Backordered, S::OnHold, S::Cancelled],
            S::PartiallyAllocated => &[S::Allocated, S::Backordered, S::Released, S::OnHold, S::Cancelled],
            S::Backordered => &[S::Allocated, S::PartiallyAllocated, S::OnHold, S::Cancelled],
            S::Allocated => &[S::Released, S::PartiallyAllocated, S::Backordered, S::OnHold, S::Cancelled],
            S::Released => &[S::Picking, S::Cancelled],
            S::Picking => &[S::Packed, S::Cancelled],
            S::Packed => &[S::Shipped, S::PartiallyShipped, S::Cancelled],
            S::PartiallyShipped => &[S::PartiallyShipped, S::Shipped],
            S::Shipped => &[S::Delivered, S::Closed],
            S::Delivered => &[S::Closed],
            S::Closed | S::Cancelled => &[],
        }
    }

    /// Checks one transition against the table.
    pub fn transition(self, to: OrderStatus) -> Result<OrderStatus, IllegalTransition> {
        if self.successors().contains(&to) { Ok(to) } else { Err(IllegalTransition { from: self, to }) }
    }
}

/// A transition the table does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an order cannot go from {} to {}", from.as_str(), to.as_str())]
pub struct IllegalTransition {
    pub from: OrderStatus,
    pub to: OrderStatus,
}

/// Why an order is held for a person to look at. Each is produced by one validation rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HoldCode {
    PaymentNotCaptured,
    FraudReview,
    AddressIncomplete,
    TaxMissing,
    ShippingMethodUnknown,
    CustomerOnHold,
    SkuUnknown,
    PriceMismatch,
    StockDiscrepancy,
    /// The chosen pickup store cannot fill the order; it is not sent elsewhere silently.
    PickupStoreCannotFill,
    /// No node may serve the order at all (none ships to the address, none holds the SKUs, the
    /// drop-ship supplier is unknown). Clears itself when the order is decided again.
    NoEligibleNode,
    /// An operator put the order on hold by hand.
    Manual,
    /// The tax the channel charged differs from the ship-to region's rate in Ordo's tax table.
    TaxMismatch,
}

impl HoldCode {
    pub const ALL: [HoldCode; 13] = [
        Self::PaymentNotCaptured,
        Self::FraudReview,
        Self::AddressIncomplete,
        Self::TaxMissing,
        Self::ShippingMethodUnknown,
        Self::CustomerOnHold,
        Self::SkuUnknown,
        Self::PriceMismatch,
        Self::StockDiscrepancy,
        Self::PickupStoreCannotFill,
        Self::NoEligibleNode,
        Self::Manual,
        Self::TaxMismatch,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PaymentNotCaptured => "PAYMENT_NOT_CAPTURED",
            Self::FraudReview => "FRAUD_REVIEW",
            Self::AddressIncomplete => "ADDRESS_INCOMPLETE",
            Self::TaxMissing => "TAX_MISSING",
            Self::ShippingMethodUnknown => "SHIPPING_METHOD_UNKNOWN",
            Self::CustomerOnHold => "CUSTOMER_ON_HOLD",
            Self::SkuUnknown => "SKU_UNKNOWN",
            Self::PriceMismatch => "PRICE_MISMATCH",
            Self::StockDiscrepancy => "STOCK_DISCREPANCY",
            Self::PickupStoreCannotFill => "PICKUP_STORE_CANNOT_FILL",
            Self::NoEligibleNode => "NO_ELIGIBLE_NODE",
            Self::Manual => "MANUAL",
            Self::TaxMismatch => "TAX_MISMATCH",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|h| h.as_str() == s)
    }
}

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    /// Ordo's own automation (validation, allocation, sourcing).
    System,
    /// A person, by user name.
    User(String),
    /// A channel connector, by channel code.
    Connector(String),
}

/// One recorded status change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    pub from: OrderStatus,
    pub to: OrderStatus,
    pub actor: Actor,
    pub reason: String,
    pub at: ordo_types::Timestamp,
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_table_allows_the_documented_path_and_nothing_from_terminal_states() {
        use OrderStatus as S;
        let happy = [
            S::Received,
            S::Validated,
            S::Allocated,
            S::Released,
            S::Picking,
            S::Packed,
            S::Shipped,
            S::Delivered,
            S::Closed,
        ];
        for pair in happy.windows(2) {
            assert_eq!(pair[0].transition(pair[1]), Ok(pair[1]), "{:?}", pair);
        }
        assert!(S::Received.transition(S::OnHold).is_ok());
        assert!(S::OnHold.transition(S::Validated).is_ok());
        assert!(S::Packed.transition(S::PartiallyShipped).is_ok());
        assert!(S::PartiallyShipped.transition(S::Shipped).is_ok());
        for status in S::ALL {
            assert_eq!(status.successors().is_empty(), status.is_terminal(), "{status:?}");
            assert!(status.transition(S::Received).is_err(), "nothing goes back to received");
        }
        let err = S::Shipped.transition(S::Cancelled).unwrap_err();
        assert_eq!(err.to_string(), "an order cannot go from shipped to cancelled");
        assert!(S::Received.transition(S::Released).is_err(), "validation and allocation cannot be skipped");
        assert!(S::OnHold.transition(S::Allocated).is_err(), "a held order is validated again first");
    }

    #[test]
    fn names_round_trip() {
        for s in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{}\"", s.as_str()));
        }
        for h in HoldCode::ALL {
            assert_eq!(HoldCode::parse(h.as_str()), Some(h));
            assert_eq!(serde_json::to_string(&h).unwrap(), format!("\"{}\"", h.as_str()));
        }
    }

    proptest! {
        /// Whatever is attempted, only table transitions are ever applied, and an order that
        /// reached a terminal status never leaves it.
        #[test]
        fn random_attempts_only_apply_legal_transitions(attempts in prop::collection::vec(0usize..14, 1..60)) {
            let mut status = OrderStatus::Received;
            let mut terminal_seen = false;
            for i in attempts {
                let to = OrderStatus::ALL[i];
                match status.transition(to) {
                    Ok(next) => {
                        prop_assert!(status.successors().contains(&next));
                        prop_assert!(!terminal_seen);
                        status = next;
                    }
                    Err(e) => prop_assert_eq!(e, IllegalTransition { from: status, to }),
                }
                terminal_seen |= status.is_terminal();
            }
        }
    }
}
