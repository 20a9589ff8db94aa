//! Four-eyes approvals: sensitive changes requested through a gate (`Command::Gated`) become an
//! approval request instead of taking effect — stock adjustments and write-offs above a units
//! threshold, item master changes, list prices and tax mappings — and take effect only when a
//! different user approves them. The requester can never approve their own request; pending
//! requests are listed, and every request, approval and rejection is a journal event.

use std::collections::BTreeMap;

use ordo_types::{Timestamp, Units};
use serde::{Deserialize, Serialize};

use crate::inventory::MoveCommand;
use crate::orders::book::{OrderCommand, OrderSetting};
use crate::state::Command;

/// What needs a second person. Thresholds are in units (base eaches) per movement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalPolicy {
    /// An adjustment (or count correction) moving more than this many units.
    pub adjustment_units: Units,
    /// A write-off of more than this many units.
    pub write_off_units: Units,
    /// Item master changes (new or changed items).
    pub item_master: bool,
    /// List prices and tax mappings.
    pub prices_and_tax: bool,
}

impl Default for ApprovalPolicy {
    fn default() -> Self {
        Self { adjustment_units: 100, write_off_units: 50, item_master: true, prices_and_tax: true }
    }
}

impl ApprovalPolicy {
    /// Why `command` needs approval under this policy, or `None`.
    pub fn reason(&self, command: &Command) -> Option<String> {
        match command {
            Command::Move(MoveCommand::Adjust { delta, .. }) if delta.abs() > self.adjustment_units => {
                Some(format!("an adjustment of {delta} units is above the {} unit threshold", self.adjustment_units))
            }
            Command::Move(MoveCommand::WriteOff { units, .. }) if *units > self.write_off_units => {
                Some(format!("a write-off of {units} units is above the {} unit threshold", self.write_off_units))
            }
            Command::DefineItem(item) if self.item_master => Some(format!("item master change ({})", item.sku)),
            Command::Order(OrderCommand::Configure(OrderSetting::Price { sku, channel, .. }))
                if self.prices_and_tax =>
            {
                Some(format!("list price change ({sku} on {channel})"))
            }
            Command::Order(OrderCommand::Configure(OrderSetting::Taxable { country, region, .. }))
                if self.prices_and_tax =>
            {
                Some(format!("tax mapping change ({country}{}{region})", if region.is_empty() { "" } else { "-" }))
            }
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    Pending,
    Approved { by: String, at: Timestamp, reason: String },
    Rejected { by: String, at: Timestamp, reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    pub id: u64,
    pub requested_by: String,
    pub requested_at: Timestamp,
    /// Why it needs approval (from the policy) and what the requester said.
    pub why: String,
    pub note: String,
    pub command: Command,
    pub status: ApprovalStatus,
}

/// Why an approval command was refused, most fundamental first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalRejection {
    #[error("unknown approval request {0}")]
    UnknownRequest(u64),
    #[error("approval request {0} is no longer pending")]
    NotPending(u64),
    #[error("{user} requested approval {id} and cannot approve it; a different user must")]
    SelfApproval { id: u64, user: String },
    #[error("a reason is required")]
    MissingReason,
}

/// The approval requests and the policy, inside [`crate::State`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Approvals {
    pub(crate) policy: ApprovalPolicy,
    pub(crate) requests: BTreeMap<u64, ApprovalRequest>,
}

impl Approvals {
    pub fn policy(&self) -> &ApprovalPolicy {
        &self.policy
    }

    pub fn get(&self, id: u64) -> Option<&ApprovalRequest> {
        self.requests.get(&id)
    }

    pub fn all(&self) -> impl Iterator<Item = &ApprovalRequest> {
        self.requests.values()
    }

    pub fn pending(&self) -> impl Iterator<Item = &ApprovalRequest> {
        self.requests.values().filter(|r| r.status == ApprovalStatus::Pending)
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.requests.keys().next_back().map_or(1, |k| k + 1)
    }

    /// Checks an approve or reject against the request; returns it.
    pub(crate) fn decidable(&self, id: u64, by: &str, reason: &str) -> Result<&ApprovalRequest, ApprovalRejection> {
        if reason.trim().is_empty() {
            return Err(ApprovalRejection::MissingReason);
        }
        let request = self.requests.get(&id).ok_or(ApprovalRejection::UnknownRequest(id))?;
        if request.status != ApprovalStatus::Pending {
            return Err(ApprovalRejection::NotPending(id));
        }
        if request.requested_by == by {
            return Err(ApprovalRejection::SelfApproval { id, user: by.to_owned() });
        }
        Ok(request)
    }
}
