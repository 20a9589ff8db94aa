//! Sourcing: choosing fulfillment nodes for an order (warehouses, 3PLs, stores, drop-ship
//! suppliers) and explaining the choice.
//!
//! [`source`] is a pure function of a [`SourcingRequest`]: the order, its demand already
//! resolved to SKUs ([`DemandLine`]), every node that could be asked ([`NodeCandidate`]: the
//! stock it can give this order, its carrier cut-off, remaining capacity and costs), the
//! [`SourcingPolicy`] and `now`. It reads no clock, does no I/O, iterates no hash map and uses
//! no floating point, so the same request gives the same [`SourcingOutcome`] byte for byte,
//! whatever order the nodes come in.
//!
//! # Eligibility (by the order's [`FulfillmentIntent`])
//! * `Ship { ship_from_store_allowed }`: warehouses and 3PLs with the `ship` capability, plus
//!   stores with it when ship-from-store is allowed. Drop-ship suppliers are never used.
//! * `DropShip { supplier }`: exactly that supplier (it must be a drop-ship supplier; its `ship`
//!   capability is not required, shipping is what a supplier does).
//! * `PickUpInStore { store }`: exactly that location, which needs the `pickup` capability. If
//!   it cannot fill every unit (stock or capacity) the outcome is
//!   [`SourcingOutcome::PickupStoreCannotFill`]: the order goes to the exception queue and is
//!   never moved to another node silently.
//! * A node with `capacity_remaining == 0` is rejected ("capacity exhausted"). A plan uses one
//!   shipment per node, so any capacity above zero is enough.
//!
//! A rejected node is still listed among the candidates, with why, but its plan is not priced.
//!
//! # Cost of a plan (integer minor units of the order's currency)
//! Per shipment: `parcels × zone cost_per_parcel + cost_per_shipment + units × cost_per_unit`,
//! with `parcels = ceil(units / units_per_parcel)`. The zone is the first [`ZoneBand`] whose
//! `max_km` covers the great-circle distance from the node to `ship_to`; a distance beyond the
//! last band, or a missing geo point on either side, is priced at the farthest band, and the
//! plan's notes (and the decision's reason, when it is the chosen plan) say so. A pickup ships
//! no parcel: zero parcels, zero shipping, no zone. The plan adds `split_penalty × (shipments −
//! 1)`. Distances are computed with the haversine formula on a 6 371 km sphere in 128-bit
//! fixed-point integers and rounded to the nearest km, so they are identical on every platform.
//!
//! # Service level
//! A node ships today (its own calendar date, from its IANA `time_zone` via `chrono-tz`) when
//! `now`'s local time is before its cut-off, else tomorrow. Expected delivery is the ship date
//! plus the zone's `transit_days` in calendar days: no weekends, holidays or carrier calendars
//! are modelled. A pickup is ready on the ship date (its cut-off is the store's same-day-ready
//! cut-off). A shipment misses the SLA when it arrives after `shipping.deliver_by`, or ships
//! after the local date of `shipping.ship_by` in the node's zone. An unknown time-zone name is
//! read as UTC and noted on the candidate.
//!
//! # Choice
//! 1. The cheapest single node that fills every unit and meets the SLA (ties: location code).
//!    Single-node plans win outright: a split is used only when no single node can fill on time,
//!    even if it would be cheaper.
//! 2. Otherwise the cheapest on-time split of 2..=`max_shipments` nodes (ties: fewer shipments,
//!    then location codes). Every combination of eligible nodes holding any demanded SKU is
//!    tried in a fixed order (at most [`MAX_SPLIT_PLANS`]); within one, each line's units go to
//!    the node with the lowest marginal unit rate (`cost_per_unit + ceil(cost_per_parcel /
//!    units_per_parcel)`, then `cost_per_shipment`, then code) that still has stock, then to the
//!    next, so a line may be split across nodes. A combination in which a node gets nothing is
//!    the same plan as a smaller one and is skipped.
//! 3. Otherwise, if some plan fills every unit but none is on time, the cheapest of them (single
//!    or split); the decision's reason starts with "Late".
//! 4. Otherwise the plan that fills the most units (ties: on time first, then cost, fewer
//!    shipments, codes) → [`SourcingOutcome::Partial`], the rest listed as unfilled for
//!    backorder. Plans one node over `max_shipments` that would fill everything are listed as
//!    rejected ("exceeds max shipments N") so a person can see what a split would have done.
//!
//! Every plan considered is returned in [`SourcingDecision::candidates`], sorted by number of
//! nodes then node codes, with its cost breakdown, feasibility, problems and a verdict.

use std::collections::BTreeMap;

use chrono::{Offset, TimeZone};
use ordo_types::{Date, LocationCode, Sku, Timestamp, Units};
use serde::{Deserialize, Serialize};

use crate::catalog::{GeoPoint, Location, LocationKind};
use crate::orders::model::{FulfillmentIntent, Order};

/// At most this many split combinations are evaluated per order (node counts are small, ≤ ~12,
/// so this is a guard against a pathological request, not a working limit).
pub const MAX_SPLIT_PLANS: usize = 20_000;

/// Split plans priced (and listed) when a single node already fills the order on time.
pub const SPLIT_PLANS_SHOWN_WHEN_SINGLE_WINS: usize = 3;

/// Mean Earth radius used for great-circle distances.
pub const EARTH_RADIUS_KM: u32 = 6_371;

/// What to source: an order line resolved to one of our SKUs, in base units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DemandLine {
    pub line_id: String,
    pub sku: Sku,
    /// Base units wanted; lines with zero or fewer units are ignored.
    pub units: Units,
}

/// Units per SKU for the handful of SKUs one order asks for: a short list searched in place,
/// since a map per node and plan made sourcing mostly allocation. Keys are unique (a repeated
/// key replaces the earlier entry, as in a map).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SkuUnits(Vec<(Sku, Units)>);

impl SkuUnits {
    pub fn get(&self, sku: &Sku) -> Option<&Units> {
        self.0.iter().find(|(s, _)| s == sku).map(|(_, u)| u)
    }

    pub fn get_mut(&mut self, sku: &Sku) -> Option<&mut Units> {
        self.0.iter_mut().find(|(s, _)| s == sku).map(|(_, u)| u)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<(Sku, Units)> for SkuUnits {
    fn from_iter<I: IntoIterator<Item = (Sku, Units)>>(iter: I) -> Self {
        let mut out = SkuUnits(Vec::new());
        for (sku, units) in iter {
            match out.get_mut(&sku) {
                Some(u) => *u = units,
                None => out.0.push((sku, units)),
            }
        }
        out
    }
}

/// A location that could be asked to fulfil the order, with what it can give this order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeCandidate<'a> {
    pub location: &'a Location,
    /// Units this node can give this order per SKU, already net of safety stock and other
    /// reservations. Missing or non-positive entries mean none.
    pub available: SkuUnits,
    /// Carrier cut-off, `(hour, minute)` in the node's time zone; `(24, 0)` means it always
    /// ships the same day.
    pub cutoff_local: (u8, u8),
    /// Shipments the node can still release today.
    pub capacity_remaining: u32,
    /// Handling cost of one shipment from this node.
    pub cost_per_shipment_minor: i64,
    /// Margin impact per unit (store labour, 3PL fee…).
    pub cost_per_unit_minor: i64,
}

/// The retailer's sourcing knobs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SourcingPolicy {
    /// Added once per shipment beyond the first.
    pub split_penalty_minor: i64,
    /// At most this many nodes per order (1 = never split; 0 is read as 1).
    pub max_shipments: u8,
    /// Units that fit one parcel (0 is read as 1).
    pub units_per_parcel: u32,
    /// Distance bands; read in ascending `max_km` order whatever order they are given in.
    pub zones: Vec<ZoneBand>,
}

/// Shipments whose great-circle distance is at most `max_km` fall in this zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ZoneBand {
    pub max_km: u32,
    pub zone: u8,
    pub cost_per_parcel_minor: i64,
    pub transit_days: u8,
}

/// Everything [`source`] needs; nothing else is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcingRequest<'a> {
    /// Read for the fulfillment intent, `ship_to.geo` and `shipping` (ship-by, deliver-by).
    pub order: &'a Order,
    /// The demand after listing → SKU mapping and unit-of-measure conversion, in line order.
    pub lines: Vec<DemandLine>,
    /// Every location that could be asked; codes are expected to be unique (a repeated code is
    /// rejected as "listed twice", keeping the first in the given order).
    pub nodes: Vec<NodeCandidate<'a>>,
    pub policy: &'a SourcingPolicy,
    pub now: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourcingOutcome {
    /// Every unit assigned (possibly late: see [`SourcingDecision::meets_sla`]).
    Sourced(SourcingDecision),
    /// Not every unit could be assigned (possibly none); `decision.unfilled` is to be
    /// backordered.
    Partial(SourcingDecision),
    /// The pickup store lacks stock or capacity: the order goes to the exception queue, never
    /// silently to another node. `decision` shows what the store could give.
    PickupStoreCannotFill { store: LocationCode, decision: SourcingDecision },
    /// No node may serve the order at all (or there is nothing to source); `reason` says why,
    /// node by node.
    NoEligibleNode { reason: String },
}

impl SourcingOutcome {
    pub fn decision(&self) -> Option<&SourcingDecision> {
        match self {
            Self::Sourced(d) | Self::Partial(d) | Self::PickupStoreCannotFill { decision: d, .. } => Some(d),
            Self::NoEligibleNode { .. } => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourcingDecision {
    /// One per node used, in location-code order.
    pub shipments: Vec<Shipment>,
    /// What no node gives, per demand line, in line order.
    pub unfilled: Vec<DemandLine>,
    pub total_cost_minor: i64,
    pub cost: PlanCost,
    /// Every shipment arrives by deliver-by and ships by ship-by (unfilled units aside); false
    /// when nothing ships.
    pub meets_sla: bool,
    /// Every plan considered, sorted by number of nodes then node codes.
    pub candidates: Vec<CandidateEvaluation>,
    /// One sentence: why the chosen plan won.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipment {
    pub location: LocationCode,
    /// What this node ships, in demand-line order.
    pub lines: Vec<AssignedLine>,
    pub units: Units,
    /// `ceil(units / units_per_parcel)`; 0 for a pickup.
    pub parcels: i64,
    /// Great-circle km to the ship-to address; `None` for a pickup or a missing geo point.
    pub distance_km: Option<u32>,
    /// `None` for a pickup.
    pub zone: Option<u8>,
    pub cutoff_passed: bool,
    /// The node's local date the shipment leaves (or a pickup is ready).
    pub ship_date: Date,
    /// `ship_date` + the zone's transit days (calendar days).
    pub expected_delivery: Date,
    pub meets_sla: bool,
    pub cost: ShipmentCost,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignedLine {
    pub line_id: String,
    pub sku: Sku,
    pub units: Units,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ShipmentCost {
    /// Parcels × the zone's cost per parcel.
    pub shipping_minor: i64,
    /// The node's cost per shipment.
    pub handling_minor: i64,
    /// Units × the node's cost per unit.
    pub units_minor: i64,
    pub total_minor: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PlanCost {
    pub shipping_minor: i64,
    pub handling_minor: i64,
    pub units_minor: i64,
    /// `split_penalty × (shipments − 1)`.
    pub split_penalty_minor: i64,
    pub total_minor: i64,
}

/// One plan considered: a single node or a combination of nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CandidateEvaluation {
    /// The nodes of the plan, in code order.
    pub nodes: Vec<LocationCode>,
    pub units_assigned: Units,
    pub fills_all: bool,
    pub meets_sla: bool,
    /// Zero for a node rejected before pricing.
    pub cost: PlanCost,
    /// Fills every unit, on time, from eligible nodes, within max shipments.
    pub feasible: bool,
    pub chosen: bool,
    /// Why the plan is not feasible, e.g. "WH-WEST lacks 2 × TEE-M", "WH-EAST: capacity
    /// exhausted"; empty for a feasible plan.
    pub problems: Vec<String>,
    /// Assumptions made while pricing (missing geo, unknown time zone…).
    pub notes: Vec<String>,
    /// One phrase: chosen, or why not.
    pub verdict: String,
}

const DAY_MS: i64 = 86_400_000;

/// Chooses the nodes that fulfil the order. See the module documentation for the rules.
pub fn source(request: &SourcingRequest<'_>) -> SourcingOutcome {
    let lines: Vec<DemandLine> = request.lines.iter().filter(|l| l.units > 0).cloned().collect();
    if lines.is_empty() {
        return SourcingOutcome::NoEligibleNode { reason: "The order has no units to source.".to_owned() };
    }
    let pickup_store = match &request.order.fulfillment {
        FulfillmentIntent::PickUpInStore { store } | FulfillmentIntent::SoldInStore { store } => Some(store),
        _ => None,
    };
    let mut zones = request.policy.zones.clone();
    zones.sort_by_key(|z| z.max_km);
    if pickup_store.is_none() && zones.is_empty() {
        return SourcingOutcome::NoEligibleNode {
            reason: "The sourcing policy has no zone bands to price shipping with.".to_owned(),
        };
    }
    let ctx = Context {
        order: request.order,
        lines: &lines,
        demanded: lines.iter().fold(0, |sum, l| sum.saturating_add(l.units)),
        zones: &zones,
        max_shipments: usize::from(request.policy.max_shipments.max(1)),
        units_per_parcel: i64::from(request.policy.units_per_parcel.max(1)),
        split_penalty: request.policy.split_penalty_minor,
        now: request.now,
    };

    let mut sorted: Vec<&NodeCandidate<'_>> = request.nodes.iter().collect();
    sorted.sort_by(|a, b| a.location.code.cmp(&b.location.code));
    let mut profiles: Vec<Profile> = Vec::with_capacity(sorted.len());
    for node in sorted {
        let duplicate = profiles.last().is_some_and(|p| p.code == node.location.code);
        profiles.push(ctx.profile(node, duplicate));
    }

    if let Some(store) = pickup_store {
        match profiles.iter().find(|p| &p.code == store) {
            None => {
                return SourcingOutcome::NoEligibleNode {
                    reason: format!("Pickup store {store} is not among the candidate nodes."),
                };
            }
            Some(p) if p.problems.is_empty() => {}
            Some(p) if p.only_capacity_exhausted => {
                let candidates = profiles.iter().map(rejected_evaluation).collect();
                let unfilled = lines.clone();
                let reason = format!(
                    "Pickup store {store} cannot fill the order ({store}: capacity exhausted); a pickup order never \
                     moves to another node, so it goes to the exception queue."
                );
                let decision = SourcingDecision {
                    shipments: vec![],
                    unfilled,
                    total_cost_minor: 0,
                    cost: PlanCost::default(),
                    meets_sla: false,
                    candidates,
                    reason,
                };
                return SourcingOutcome::PickupStoreCannotFill { store: store.clone(), decision };
            }
            Some(p) => {
                return SourcingOutcome::NoEligibleNode {
                    reason: format!("Pickup store {store} may not serve this order: {}.", p.problems.join("; ")),
                };
            }
        }
    }

    let eligible: Vec<usize> = (0..profiles.len()).filter(|&i| profiles[i].problems.is_empty()).collect();
    if eligible.is_empty() {
        let reason = if profiles.is_empty() {
            "No candidate nodes were given.".to_owned()
        } else {
            let why: Vec<String> = profiles.iter().flat_map(|p| p.problems.iter().cloned()).collect();
            format!("No node may serve this order: {}.", why.join("; "))
        };
        return SourcingOutcome::NoEligibleNode { reason };
    }

    // Single-node plans, then splits within the limit. A single on-time node always wins
    // (rule 4), so when one exists only the first few splits are priced, for the record:
    // pricing every combination of 8 nodes is most of the cost of sourcing an order.
    let mut plans: Vec<Plan> = eligible.iter().map(|&i| ctx.plan(&[i], &profiles, true)).collect();
    let single_suffices = plans.iter().any(|p| p.fills_all && p.within_limit && p.meets_sla);
    let pool: Vec<usize> = eligible.iter().copied().filter(|&i| !profiles[i].stock.is_empty()).collect();
    let mut budget = if single_suffices { SPLIT_PLANS_SHOWN_WHEN_SINGLE_WINS } else { MAX_SPLIT_PLANS };
    let mut truncated = false;
    for size in 2..=ctx.max_shipments.min(pool.len()) {
        let ran_out = ctx.splits(&pool, size, &profiles, true, &mut budget, &mut plans);
        truncated |= ran_out && !single_suffices;
    }

    let full = |p: &&Plan| p.fills_all && p.within_limit;
    let by_cost = |a: &&Plan, b: &&Plan| a.sort_key().cmp(&b.sort_key());
    let single_on_time = plans.iter().filter(full).filter(|p| p.nodes.len() == 1 && p.meets_sla).min_by(by_cost);
    let split_on_time = plans.iter().filter(full).filter(|p| p.nodes.len() > 1 && p.meets_sla).min_by(by_cost);
    let late = plans.iter().filter(full).min_by(by_cost);
    let (chosen, kind) = if let Some(p) = single_on_time {
        (Some(p.nodes.clone()), Choice::Single)
    } else if let Some(p) = split_on_time {
        (Some(p.nodes.clone()), Choice::Split)
    } else if let Some(p) = late {
        (Some(p.nodes.clone()), Choice::Late)
    } else {
        // Nothing fills everything: show what one shipment more would have done, then take the
        // plan that fills the most.
        let size = ctx.max_shipments + 1;
        if size <= pool.len() {
            let mut over = Vec::new();
            truncated |= ctx.splits(&pool, size, &profiles, false, &mut budget, &mut over);
            plans.extend(over.into_iter().filter(|p| p.fills_all));
        }
        let best = plans.iter().filter(|p| p.within_limit).min_by(|a, b| {
            (std::cmp::Reverse(a.assigned), !a.meets_sla, a.sort_key()).cmp(&(
                std::cmp::Reverse(b.assigned),
                !b.meets_sla,
                b.sort_key(),
            ))
        });
        match best {
            Some(p) if p.assigned > 0 => (Some(p.nodes.clone()), Choice::Partial),
            _ => (None, Choice::Nothing),
        }
    };
    let chosen_plan = chosen.as_ref().and_then(|nodes| plans.iter().find(|p| &p.nodes == nodes));

    let single_on_time_count = plans.iter().filter(full).filter(|p| p.nodes.len() == 1 && p.meets_sla).count();
    let mut reason = match (kind, chosen_plan) {
        (Choice::Single, Some(p)) if single_on_time_count == 1 => format!(
            "{} is the only node that fills all {} alone and meets the SLA: {} minor ({})",
            p.label(),
            plural_units(ctx.demanded),
            p.cost.total_minor,
            breakdown(&p.cost)
        ),
        (Choice::Single, Some(p)) => format!(
            "{} fills all {} alone and meets the SLA at the lowest cost of the {} single nodes that do: {} minor \
             ({})",
            p.label(),
            plural_units(ctx.demanded),
            single_on_time_count,
            p.cost.total_minor,
            breakdown(&p.cost)
        ),
        (Choice::Split, Some(p)) => format!(
            "No single node fills all {} on time, so {} is the cheapest on-time split of at most {} \
             shipments: {} minor ({})",
            plural_units(ctx.demanded),
            p.label(),
            ctx.max_shipments,
            p.cost.total_minor,
            breakdown(&p.cost)
        ),
        (Choice::Late, Some(p)) => format!(
            "Late: no plan fills all {} on time, so {} is the cheapest plan that fills them: {} minor ({}); {}",
            plural_units(ctx.demanded),
            p.label(),
            p.cost.total_minor,
            breakdown(&p.cost),
            p.sla_problems.join("; ")
        ),
        (Choice::Partial, Some(p)) => format!(
            "No plan of at most {} shipment{} fills all {}; {} fills the most ({}, {} to backorder) at {} minor \
             ({})",
            ctx.max_shipments,
            if ctx.max_shipments == 1 { "" } else { "s" },
            plural_units(ctx.demanded),
            p.label(),
            plural_units(p.assigned),
            ctx.demanded - p.assigned,
            p.cost.total_minor,
            breakdown(&p.cost)
        ),
        _ => format!("No eligible node holds any of the {} demanded; all go to backorder", plural_units(ctx.demanded)),
    };
    // A pickup has exactly one plan, the store's.
    if let Some(store) = pickup_store
        && let Some(p) = plans.first()
        && !p.fills_all
    {
        reason = format!(
            "Pickup store {store} cannot fill the order ({}); a pickup order never moves to another node, so it goes \
             to the exception queue",
            p.problems.join("; ")
        );
    }
    if let Some(p) = chosen_plan
        && !p.notes.is_empty()
    {
        reason.push_str("; note: ");
        reason.push_str(&p.notes.join("; "));
    }
    if truncated {
        reason.push_str(&format!("; the split search stopped after {MAX_SPLIT_PLANS} plans"));
    }
    reason.push('.');

    let mut candidates: Vec<CandidateEvaluation> =
        profiles.iter().filter(|p| !p.problems.is_empty()).map(rejected_evaluation).collect();
    candidates.extend(plans.iter().map(|p| p.evaluation(chosen_plan, kind)));
    candidates.sort_by(|a, b| (a.nodes.len(), &a.nodes).cmp(&(b.nodes.len(), &b.nodes)));

    let decision = match chosen_plan {
        Some(p) => SourcingDecision {
            shipments: p.shipments.clone(),
            unfilled: p.unfilled.clone(),
            total_cost_minor: p.cost.total_minor,
            cost: p.cost,
            meets_sla: p.meets_sla && !p.shipments.is_empty(),
            candidates,
            reason,
        },
        None => SourcingDecision {
            shipments: vec![],
            unfilled: lines.clone(),
            total_cost_minor: 0,
            cost: PlanCost::default(),
            meets_sla: false,
            candidates,
            reason,
        },
    };
    let fills_all = chosen_plan.is_some_and(|p| p.fills_all);
    match (pickup_store, fills_all) {
        (_, true) => SourcingOutcome::Sourced(decision),
        (Some(store), false) => SourcingOutcome::PickupStoreCannotFill { store: store.clone(), decision },
        (None, false) => SourcingOutcome::Partial(decision),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Choice {
    Single,
    Split,
    Late,
    Partial,
    Nothing,
}

fn plural_units(n: Units) -> String {
    if n == 1 { "1 unit".to_owned() } else { format!("{n} units") }
}

fn breakdown(c: &PlanCost) -> String {
    let mut s = format!("shipping {}, handling {}, units {}", c.shipping_minor, c.handling_minor, c.units_minor);
    if c.split_penalty_minor != 0 {
        s.push_str(&format!(", split penalty {}", c.split_penalty_minor));
    }
    s
}

fn rejected_evaluation(p: &Profile) -> CandidateEvaluation {
    CandidateEvaluation {
        nodes: vec![p.code.clone()],
        units_assigned: 0,
        fills_all: false,
        meets_sla: false,
        cost: PlanCost::default(),
        feasible: false,
        chosen: false,
        problems: p.problems.clone(),
        notes: p.notes.clone(),
        verdict: format!("rejected: {}", p.problems.join("; ")),
    }
}

struct Context<'r> {
    order: &'r Order,
    lines: &'r [DemandLine],
    demanded: Units,
    zones: &'r [ZoneBand],
    max_shipments: usize,
    units_per_parcel: i64,
    split_penalty: i64,
    now: Timestamp,
}

/// What is known about one node before any plan is built.
struct Profile {
    code: LocationCode,
    /// Why the node may not serve this order; empty when eligible.
    problems: Vec<String>,
    /// The only problem is capacity (matters for a pickup store).
    only_capacity_exhausted: bool,
    notes: Vec<String>,
    pickup: bool,
    distance_km: Option<u32>,
    zone: Option<ZoneBand>,
    cutoff_passed: bool,
    ship_date: Date,
    expected_delivery: Date,
    sla_problem: Option<String>,
    /// Marginal cost of one more unit, used to rank nodes inside a combination.
    rate: i64,
    cost_per_shipment: i64,
    cost_per_unit: i64,
    /// Positive stock of demanded SKUs only.
    stock: SkuUnits,
}

struct Plan {
    nodes: Vec<LocationCode>,
    shipments: Vec<Shipment>,
    unfilled: Vec<DemandLine>,
    assigned: Units,
    fills_all: bool,
    meets_sla: bool,
    within_limit: bool,
    cost: PlanCost,
    problems: Vec<String>,
    sla_problems: Vec<String>,
    notes: Vec<String>,
}

impl Plan {
    fn sort_key(&self) -> (i64, usize, &[LocationCode]) {
        (self.cost.total_minor, self.nodes.len(), &self.nodes)
    }

    fn label(&self) -> String {
        join_codes(&self.nodes)
    }

    fn feasible(&self) -> bool {
        self.problems.is_empty()
    }

    fn evaluation(&self, chosen: Option<&Plan>, kind: Choice) -> CandidateEvaluation {
        let is_chosen = chosen.is_some_and(|c| c.nodes == self.nodes);
        let verdict = match chosen {
            _ if is_chosen => match kind {
                Choice::Late => "chosen, although late".to_owned(),
                Choice::Partial => format!("chosen for partial fill: {} units to backorder", self.unfilled_units()),
                _ if !self.fills_all => format!("cannot fill: {}", self.problems.join("; ")),
                _ => "chosen".to_owned(),
            },
            _ if !self.feasible() => format!("rejected: {}", self.problems.join("; ")),
            Some(c) if c.nodes.len() == 1 && self.nodes.len() > 1 && self.cost.total_minor < c.cost.total_minor => {
                format!(
                    "feasible and {} minor cheaper, but a single node fills the order on time and splits are used \
                     only when none can",
                    c.cost.total_minor - self.cost.total_minor
                )
            }
            Some(c) if self.cost.total_minor > c.cost.total_minor => format!(
                "feasible, but costs {} minor, {} more than the chosen plan",
                self.cost.total_minor,
                self.cost.total_minor - c.cost.total_minor
            ),
            Some(_) => {
                "feasible at the same cost; the chosen plan wins the tie (fewer shipments, then codes)".to_owned()
            }
            None => "feasible".to_owned(),
        };
        CandidateEvaluation {
            nodes: self.nodes.clone(),
            units_assigned: self.assigned,
            fills_all: self.fills_all,
            meets_sla: self.meets_sla,
            cost: self.cost,
            feasible: self.feasible(),
            chosen: is_chosen,
            problems: self.problems.clone(),
            notes: self.notes.clone(),
            verdict,
        }
    }

    fn unfilled_units(&self) -> Units {
        self.unfilled.iter().map(|l| l.units).sum()
    }
}

fn join_codes(codes: &[LocationCode]) -> String {
    codes.iter().map(LocationCode::as_str).collect::<Vec<_>>().join(" + ")
}

impl Context<'_> {
    fn profile(&self, node: &NodeCandidate<'_>, duplicate: bool) -> Profile {
        let loc = node.location;
        let code = loc.code.clone();
        let mut problems = Vec::new();
        let mut notes = Vec::new();
        if duplicate {
            problems.push(format!("{code}: listed twice; the first entry is used"));
        }
        let mut pickup = false;
        match &self.order.fulfillment {
            FulfillmentIntent::Ship { ship_from_store_allowed } => match loc.kind {
                LocationKind::Warehouse | LocationKind::ThirdPartyLogistics if !loc.capabilities.ship => {
                    problems.push(format!("{code}: may not ship: ship capability off"));
                }
                LocationKind::Warehouse | LocationKind::ThirdPartyLogistics => {}
                LocationKind::Store if !ship_from_store_allowed => {
                    problems.push(format!("{code}: store may not ship: ship-from-store not allowed"));
                }
                LocationKind::Store if !loc.capabilities.ship => {
                    problems.push(format!("{code}: store may not ship: ship capability off"));
                }
                LocationKind::Store => {}
                LocationKind::DropShipSupplier => {
                    problems.push(format!("{code}: drop-ship supplier, used only for drop-ship orders"));
                }
            },
            FulfillmentIntent::DropShip { supplier } if supplier != &code => {
                problems.push(format!("{code}: drop-ship order goes only to supplier {supplier}"));
            }
            FulfillmentIntent::DropShip { .. } => {
                if loc.kind != LocationKind::DropShipSupplier {
                    problems.push(format!("{code} is a {}, not a drop-ship supplier", loc.kind.as_str()));
                }
            }
            FulfillmentIntent::PickUpInStore { store } if store != &code => {
                problems.push(format!("{code}: pickup order is fixed to store {store}"));
            }
            FulfillmentIntent::PickUpInStore { .. } => {
                pickup = true;
                if !loc.capabilities.pickup {
                    problems.push(format!("{code}: does not offer pickup"));
                }
            }
            FulfillmentIntent::ByChannel => {
                problems.push(format!("{code}: the channel fulfils this order from its own stock"));
            }
            FulfillmentIntent::SoldInStore { store } if store != &code => {
                problems.push(format!("{code}: sold over the till of store {store}"));
            }
            // Handed over at the till: no parcel, no capacity of the pickup kind needed.
            FulfillmentIntent::SoldInStore { .. } => pickup = true,
        }
        let only_capacity_exhausted = problems.is_empty() && node.capacity_remaining == 0;
        if node.capacity_remaining == 0 {
            problems.push(format!("{code}: capacity exhausted"));
        }

        // Zone and distance.
        let (distance_km, zone) = if pickup {
            (None, None)
        } else {
            let distance = match (loc.geo, self.order.ship_to.geo) {
                (Some(from), Some(to)) => Some(great_circle_km(from, to)),
                _ => None,
            };
            let farthest = self.zones.last().copied();
            let zone = match distance {
                Some(km) => match self.zones.iter().find(|z| km <= z.max_km) {
                    Some(z) => Some(*z),
                    None => {
                        if let Some(z) = farthest {
                            notes.push(format!(
                                "{code}: {km} km is beyond the last zone band ({} km), priced as zone {}",
                                z.max_km, z.zone
                            ));
                        }
                        farthest
                    }
                },
                None => {
                    if let Some(z) = farthest {
                        if self.order.ship_to.geo.is_none() {
                            notes.push(format!(
                                "no geo for the ship-to address: priced at the farthest zone {}",
                                z.zone
                            ));
                        } else {
                            notes.push(format!("no geo for {code}: priced at the farthest zone {}", z.zone));
                        }
                    }
                    farthest
                }
            };
            (distance, zone)
        };

        // Service level in the node's own time zone.
        let tz = match loc.time_zone.parse::<chrono_tz::Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                notes.push(format!("{code}: unknown time zone {:?}, read as UTC", loc.time_zone));
                None
            }
        };
        let local_now = local_ms(tz, self.now);
        let today = Date(local_now.div_euclid(DAY_MS) as i32);
        let (hour, minute) = node.cutoff_local;
        let cutoff_ms = i64::from(hour) * 3_600_000 + i64::from(minute) * 60_000;
        let cutoff_passed = local_now.rem_euclid(DAY_MS) >= cutoff_ms;
        let ship_date = if cutoff_passed { today.add_days(1) } else { today };
        let transit = zone.map_or(0, |z| i32::from(z.transit_days));
        let expected_delivery = ship_date.add_days(transit);
        let tz_name = if tz.is_some() { loc.time_zone.as_str() } else { "UTC" };
        let mut lateness = Vec::new();
        if let Some(ship_by) = self.order.shipping.ship_by {
            let ship_by_date = Date(local_ms(tz, ship_by).div_euclid(DAY_MS) as i32);
            if ship_date > ship_by_date {
                lateness.push(format!("after ship-by {ship_by_date}"));
            }
        }
        if let Some(deliver_by) = self.order.shipping.deliver_by
            && expected_delivery > deliver_by
        {
            let verb = if pickup { "ready" } else { "arrives" };
            lateness.push(format!("{verb} {expected_delivery}, after deliver-by {deliver_by}"));
        }
        let sla_problem = (!lateness.is_empty()).then(|| {
            let when = if cutoff_passed {
                format!("cut-off {hour:02}:{minute:02} {tz_name} passed, ships {ship_date}")
            } else {
                format!("ships {ship_date}")
            };
            format!("{code}: {when}, {}", lateness.join(", "))
        });

        let rate = if pickup {
            node.cost_per_unit_minor
        } else {
            let per_parcel = zone.map_or(0, |z| z.cost_per_parcel_minor);
            node.cost_per_unit_minor.saturating_add(ceil_div(per_parcel, self.units_per_parcel))
        };
        let stock = self
            .lines
            .iter()
            .filter_map(|l| node.available.get(&l.sku).filter(|u| **u > 0).map(|u| (l.sku.clone(), *u)))
            .collect();
        Profile {
            code,
            problems,
            only_capacity_exhausted,
            notes,
            pickup,
            distance_km,
            zone,
            cutoff_passed,
            ship_date,
            expected_delivery,
            sla_problem,
            rate,
            cost_per_shipment: node.cost_per_shipment_minor,
            cost_per_unit: node.cost_per_unit_minor,
            stock,
        }
    }

    /// Adds every non-degenerate combination of `size` nodes from `pool` (indices in code
    /// order) to `out`, in lexicographic order. Returns true if the budget ran out.
    fn splits(
        &self,
        pool: &[usize],
        size: usize,
        profiles: &[Profile],
        within_limit: bool,
        budget: &mut usize,
        out: &mut Vec<Plan>,
    ) -> bool {
        let n = pool.len();
        if size == 0 || size > n {
            return false;
        }
        let mut idx: Vec<usize> = (0..size).collect();
        loop {
            if *budget == 0 {
                return true;
            }
            *budget -= 1;
            let combo: Vec<usize> = idx.iter().map(|&i| pool[i]).collect();
            let plan = self.plan(&combo, profiles, within_limit);
            if plan.shipments.len() == size {
                out.push(plan);
            }
            // Next combination.
            let Some(pos) = (0..size).rev().find(|&i| idx[i] < n - size + i) else {
                return false;
            };
            idx[pos] += 1;
            for j in pos + 1..size {
                idx[j] = idx[j - 1] + 1;
            }
        }
    }

    /// Assigns the demand greedily to the nodes of `combo` (profile indices in code order) and
    /// prices the result.
    fn plan(&self, combo: &[usize], profiles: &[Profile], within_limit: bool) -> Plan {
        let mut ranked: Vec<usize> = combo.to_vec();
        ranked.sort_by(|&a, &b| {
            let (pa, pb) = (&profiles[a], &profiles[b]);
            (pa.rate, pa.cost_per_shipment, &pa.code).cmp(&(pb.rate, pb.cost_per_shipment, &pb.code))
        });
        let mut stock: Vec<SkuUnits> = ranked.iter().map(|&i| profiles[i].stock.clone()).collect();
        let mut given: BTreeMap<usize, Vec<(usize, Units)>> = BTreeMap::new();
        let mut unfilled = Vec::new();
        let mut short: BTreeMap<&Sku, Units> = BTreeMap::new();
        for (li, line) in self.lines.iter().enumerate() {
            let mut need = line.units;
            for (pos, s) in stock.iter_mut().enumerate() {
                if need == 0 {
                    break;
                }
                if let Some(have) = s.get_mut(&line.sku) {
                    let take = need.min(*have);
                    if take > 0 {
                        *have -= take;
                        need -= take;
                        given.entry(ranked[pos]).or_default().push((li, take));
                    }
                }
            }
            if need > 0 {
                unfilled.push(DemandLine { line_id: line.line_id.clone(), sku: line.sku.clone(), units: need });
                *short.entry(&line.sku).or_default() += need;
            }
        }

        let mut shipments = Vec::new();
        let mut cost = PlanCost::default();
        let mut sla_problems = Vec::new();
        for &i in combo {
            let Some(parts) = given.get(&i) else { continue };
            let p = &profiles[i];
            let units: Units = parts.iter().map(|(_, u)| *u).sum();
            let parcels = if p.pickup { 0 } else { ceil_div(units, self.units_per_parcel) };
            let shipping = p.zone.map_or(0, |z| parcels.saturating_mul(z.cost_per_parcel_minor));
            let units_cost = units.saturating_mul(p.cost_per_unit);
            let total = shipping.saturating_add(p.cost_per_shipment).saturating_add(units_cost);
            cost.shipping_minor = cost.shipping_minor.saturating_add(shipping);
            cost.handling_minor = cost.handling_minor.saturating_add(p.cost_per_shipment);
            cost.units_minor = cost.units_minor.saturating_add(units_cost);
            if let Some(problem) = &p.sla_problem {
                sla_problems.push(problem.clone());
            }
            shipments.push(Shipment {
                location: p.code.clone(),
                lines: parts
                    .iter()
                    .map(|&(li, u)| AssignedLine {
                        line_id: self.lines[li].line_id.clone(),
                        sku: self.lines[li].sku.clone(),
                        units: u,
                    })
                    .collect(),
                units,
                parcels,
                distance_km: p.distance_km,
                zone: p.zone.map(|z| z.zone),
                cutoff_passed: p.cutoff_passed,
                ship_date: p.ship_date,
                expected_delivery: p.expected_delivery,
                meets_sla: p.sla_problem.is_none(),
                cost: ShipmentCost {
                    shipping_minor: shipping,
                    handling_minor: p.cost_per_shipment,
                    units_minor: units_cost,
                    total_minor: total,
                },
            });
        }
        let extra = i64::try_from(shipments.len().saturating_sub(1)).unwrap_or(i64::MAX);
        cost.split_penalty_minor = self.split_penalty.saturating_mul(extra);
        cost.total_minor = cost
            .shipping_minor
            .saturating_add(cost.handling_minor)
            .saturating_add(cost.units_minor)
            .saturating_add(cost.split_penalty_minor);

        let nodes: Vec<LocationCode> = combo.iter().map(|&i| profiles[i].code.clone()).collect();
        let mut problems = Vec::new();
        let (lack, who) = if nodes.len() == 1 { ("lacks", nodes[0].to_string()) } else { ("lack", join_codes(&nodes)) };
        for (sku, n) in &short {
            problems.push(format!("{who} {lack} {n} × {sku}"));
        }
        problems.extend(sla_problems.iter().cloned());
        if !within_limit {
            problems.push(format!("exceeds max shipments {}", self.max_shipments));
        }
        let mut notes: Vec<String> = Vec::new();
        for &i in combo {
            for note in &profiles[i].notes {
                if !notes.contains(note) {
                    notes.push(note.clone());
                }
            }
        }
        let assigned = shipments.iter().fold(0, |sum: Units, s| sum.saturating_add(s.units));
        Plan {
            nodes,
            fills_all: unfilled.is_empty(),
            meets_sla: sla_problems.is_empty(),
            shipments,
            unfilled,
            assigned,
            within_limit,
            cost,
            problems,
            sla_problems,
            notes,
        }
    }
}

/// `now` as milliseconds since the epoch on the wall clock of `tz` (UTC when unknown).
pub(crate) fn local_ms(tz: Option<chrono_tz::Tz>, at: Timestamp) -> i64 {
    let offset_s = match (tz, chrono::DateTime::from_timestamp_millis(at.0)) {
        (Some(tz), Some(utc)) => i64::from(tz.offset_from_utc_datetime(&utc.naive_utc()).fix().local_minus_utc()),
        _ => 0,
    };
    at.0.saturating_add(offset_s * 1000)
}

/// `ceil(a / b)` for `b > 0`, rounding towards positive infinity for negative `a` too.
fn ceil_div(a: i64, b: i64) -> i64 {
    -((-a).div_euclid(b))
}

/// Great-circle distance in whole km (haversine on a sphere of [`EARTH_RADIUS_KM`]).
///
/// Floating point is fine here although the domain avoids it for money: the distance only picks
/// a zone band, and a sourcing decision is journaled with its result, so replay never recomputes
/// it on another machine. (An all-integer version with a bisected arcsine cost ~20 % of the whole
/// order pipeline.)
pub fn great_circle_km(a: GeoPoint, b: GeoPoint) -> u32 {
    let rad = |micro: i32| f64::from(micro) / 1_000_000.0 * std::f64::consts::PI / 180.0;
    let (lat1, lat2) = (rad(a.latitude_micro), rad(b.latitude_micro));
    let dlat = lat2 - lat1;
    let dlon = rad(b.longitude_micro) - rad(a.longitude_micro);
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    let km = 2.0 * f64::from(EARTH_RADIUS_KM) * h.clamp(0.0, 1.0).sqrt().asin();
    km.round() as u32
}

#[cfg(test)]
mod tests {
    use ordo_types::{ChannelCode, CurrencyCode};
    use proptest::prelude::*;

    use super::*;
    use crate::catalog::{Address, Capabilities};
    use crate::orders::model::{
        AccountStatus, Customer, FraudAssessment, PaymentStatus, PostalAddress, ServiceLevel, Shipping,
    };

    // Distances to Brooklyn (f64 haversine, R = 6 371 km): WH-EAST (Edison NJ) 40.6 km, 3PL-NEWARK
    // 16.1 km, ST-BKLYN 1.3 km, SUP-A (Allentown PA) 126.9 km, SUP-B (Philadelphia) 129.2 km,
    // WH-CENTRAL (Joliet IL) 1 182.9 km, WH-WEST (Ontario CA) 3 886.9 km.
    // To Chicago: WH-EAST 1 115.0 km, WH-WEST 2 754.8 km.
    const BROOKLYN: GeoPoint = GeoPoint { latitude_micro: 40_693_000, longitude_micro: -73_990_000 };
    const CHICAGO: GeoPoint = GeoPoint { latitude_micro: 41_878_100, longitude_micro: -87_629_800 };
    const EDISON: GeoPoint = GeoPoint { latitude_micro: 40_518_700, longitude_micro: -74_412_100 };
    const NEWARK: GeoPoint = GeoPoint { latitude_micro: 40_735_700, longitude_micro: -74_172_400 };
    const BKLYN_STORE: GeoPoint = GeoPoint { latitude_micro: 40_686_000, longitude_micro: -73_977_000 };
    const ALLENTOWN: GeoPoint = GeoPoint { latitude_micro: 40_608_400, longitude_micro: -75_490_200 };
    const PHILADELPHIA: GeoPoint = GeoPoint { latitude_micro: 39_952_600, longitude_micro: -75_165_200 };
    const JOLIET: GeoPoint = GeoPoint { latitude_micro: 41_525_000, longitude_micro: -88_081_700 };
    const ONTARIO: GeoPoint = GeoPoint { latitude_micro: 34_063_300, longitude_micro: -117_650_900 };

    const NY: &str = "America/New_York";
    const LA: &str = "America/Los_Angeles";
    const CHI: &str = "America/Chicago";

    fn code(s: &str) -> LocationCode {
        LocationCode::new(s).unwrap()
    }

    fn sku(s: &str) -> Sku {
        Sku::new(s).unwrap()
    }

    fn date(s: &str) -> Date {
        s.parse().unwrap()
    }

    /// `YYYY-MM-DD`T`hh:mm`Z.
    fn at(day: &str, hour: i64, minute: i64) -> Timestamp {
        Timestamp(i64::from(date(day).0) * DAY_MS + hour * 3_600_000 + minute * 60_000)
    }

    /// 2026-11-26T14:00Z: 09:00 in New York, 06:00 in Los Angeles, before every 15:00 cut-off.
    fn morning() -> Timestamp {
        at("2026-11-26", 14, 0)
    }

    fn location(c: &str, kind: LocationKind, geo: Option<GeoPoint>, tz: &str) -> Location {
        Location {
            code: code(c),
            name: c.to_owned(),
            kind,
            legal_entity: code("ORDO-US"),
            address: Address::default(),
            geo,
            time_zone: tz.to_owned(),
            capabilities: Capabilities { ship: true, pickup: kind == LocationKind::Store, returns: false },
        }
    }

    fn east() -> Location {
        location("WH-EAST", LocationKind::Warehouse, Some(EDISON), NY)
    }
    fn newark() -> Location {
        location("3PL-NEWARK", LocationKind::ThirdPartyLogistics, Some(NEWARK), NY)
    }
    fn store() -> Location {
        location("ST-BKLYN", LocationKind::Store, Some(BKLYN_STORE), NY)
    }
    fn central() -> Location {
        location("WH-CENTRAL", LocationKind::Warehouse, Some(JOLIET), CHI)
    }
    fn west() -> Location {
        location("WH-WEST", LocationKind::Warehouse, Some(ONTARIO), LA)
    }

    fn order(fulfillment: FulfillmentIntent, ship_to: Option<GeoPoint>, deliver_by: Option<&str>) -> Order {
        Order {
            channel: ChannelCode::new("SHOPIFY-DTC").unwrap(),
            channel_order_id: "1001".to_owned(),
            channel_updated_at: Timestamp(0),
            placed_at: Timestamp(0),
            customer: Customer {
                id: "C-1".to_owned(),
                name: "Ada".to_owned(),
                email: None,
                account_status: AccountStatus::Active,
            },
            ship_to: PostalAddress { geo: ship_to, ..PostalAddress::default() },
            bill_to: None,
            lines: vec![],
            shipping: Shipping {
                method: "standard".to_owned(),
                service_level: ServiceLevel::Standard,
                ship_by: None,
                deliver_by: deliver_by.map(date),
            },
            payment_status: PaymentStatus::Captured,
            fraud: FraudAssessment::default(),
            fulfillment,
            currency: CurrencyCode::new("USD").unwrap(),
            tags: vec![],
        }
    }

    fn ship(ship_from_store_allowed: bool) -> FulfillmentIntent {
        FulfillmentIntent::Ship { ship_from_store_allowed }
    }

    /// Cut-off 15:00 local, capacity 10.
    fn node<'a>(
        location: &'a Location,
        stock: &[(&str, Units)],
        per_shipment: i64,
        per_unit: i64,
    ) -> NodeCandidate<'a> {
        NodeCandidate {
            location,
            available: stock.iter().map(|(s, u)| (sku(s), *u)).collect(),
            cutoff_local: (15, 0),
            capacity_remaining: 10,
            cost_per_shipment_minor: per_shipment,
            cost_per_unit_minor: per_unit,
        }
    }

    /// 3 units per parcel. Zones: ≤ 300 km → 2 (700/parcel, 1 day), ≤ 1 500 km → 4 (1 000, 2 days),
    /// ≤ 3 000 km → 6 (1 300, 2 days), ≤ 5 000 km → 8 (1 800, 4 days). Given out of order on
    /// purpose: the engine reads them by distance.
    fn policy(split_penalty_minor: i64, max_shipments: u8) -> SourcingPolicy {
        let band = |max_km, zone, cost_per_parcel_minor, transit_days| ZoneBand {
            max_km,
            zone,
            cost_per_parcel_minor,
            transit_days,
        };
        SourcingPolicy {
            split_penalty_minor,
            max_shipments,
            units_per_parcel: 3,
            zones: vec![
                band(1_500, 4, 1_000, 2),
                band(300, 2, 700, 1),
                band(5_000, 8, 1_800, 4),
                band(3_000, 6, 1_300, 2),
            ],
        }
    }

    fn demand(lines: &[(&str, &str, Units)]) -> Vec<DemandLine> {
        lines.iter().map(|(id, s, u)| DemandLine { line_id: (*id).to_owned(), sku: sku(s), units: *u }).collect()
    }

    fn run(
        order: &Order,
        lines: Vec<DemandLine>,
        nodes: Vec<NodeCandidate<'_>>,
        policy: &SourcingPolicy,
    ) -> SourcingOutcome {
        run_at(order, lines, nodes, policy, morning())
    }

    fn run_at(
        order: &Order,
        lines: Vec<DemandLine>,
        nodes: Vec<NodeCandidate<'_>>,
        policy: &SourcingPolicy,
        now: Timestamp,
    ) -> SourcingOutcome {
        source(&SourcingRequest { order, lines, nodes, policy, now })
    }

    fn sourced(outcome: SourcingOutcome) -> SourcingDecision {
        match outcome {
            SourcingOutcome::Sourced(d) => d,
            other => panic!("expected Sourced, got {other:#?}"),
        }
    }

    fn candidate<'d>(decision: &'d SourcingDecision, codes: &[&str]) -> &'d CandidateEvaluation {
        let codes: Vec<LocationCode> = codes.iter().map(|c| code(c)).collect();
        decision.candidates.iter().find(|c| c.nodes == codes).unwrap_or_else(|| panic!("no candidate {codes:?}"))
    }

    fn shipped_from(decision: &SourcingDecision) -> Vec<&str> {
        decision.shipments.iter().map(|s| s.location.as_str()).collect()
    }

    #[test]
    fn a_single_node_that_fills_beats_a_split_once_the_split_penalty_is_counted() {
        let (e, n) = (east(), newark());
        let o = order(ship(false), Some(BROOKLYN), None);
        let lines = demand(&[("1", "TEE-M", 2), ("2", "MUG", 2)]);
        let nodes = || vec![node(&e, &[("TEE-M", 2), ("MUG", 2)], 300, 100), node(&n, &[("MUG", 2)], 100, 0)];
        let d = sourced(run(&o, lines.clone(), nodes(), &policy(500, 2)));
        // WH-EAST alone, 41 km → zone 2: 4 units → ceil(4/3) = 2 parcels × 700 = 1 400 shipping,
        // + 300 handling + 4 × 100 units = 2 100.
        assert_eq!(shipped_from(&d), ["WH-EAST"]);
        let s = &d.shipments[0];
        assert_eq!((s.units, s.parcels, s.zone, s.distance_km), (4, 2, Some(2), Some(41)));
        assert_eq!(
            s.cost,
            ShipmentCost { shipping_minor: 1_400, handling_minor: 300, units_minor: 400, total_minor: 2_100 }
        );
        // 09:00 in New York is before the 15:00 cut-off: ships today, zone 2 arrives a day later.
        assert_eq!((s.ship_date, s.expected_delivery), (date("2026-11-26"), date("2026-11-27")));
        assert_eq!(d.total_cost_minor, 2_100);
        assert!(d.meets_sla && d.unfilled.is_empty());
        assert_eq!(
            d.reason,
            "WH-EAST is the only node that fills all 4 units alone and meets the SLA: 2100 minor (shipping 1400, \
             handling 300, units 400)."
        );

        // The split: 3PL-NEWARK ranks first (rate 0 + ceil(700/3) = 234 vs 100 + 234 = 334) and
        // takes the 2 MUG: 1 parcel 700 + 100 + 0 = 800; WH-EAST takes 2 TEE-M: 700 + 300 + 200
        // = 1 200. 2 000 before the penalty — cheaper than 2 100 — but 2 500 with it.
        let split = candidate(&d, &["3PL-NEWARK", "WH-EAST"]);
        assert_eq!(
            split.cost,
            PlanCost {
                shipping_minor: 1_400,
                handling_minor: 400,
                units_minor: 200,
                split_penalty_minor: 500,
                total_minor: 2_500
            }
        );
        assert!(split.feasible && !split.chosen);
        assert_eq!(split.verdict, "feasible, but costs 2500 minor, 400 more than the chosen plan");
        let alone = candidate(&d, &["3PL-NEWARK"]);
        assert_eq!(alone.problems, ["3PL-NEWARK lacks 2 × TEE-M"]);
        assert_eq!((alone.units_assigned, alone.cost.total_minor), (2, 800));
        let nodes_listed: Vec<Vec<&str>> =
            d.candidates.iter().map(|c| c.nodes.iter().map(LocationCode::as_str).collect()).collect();
        assert_eq!(nodes_listed, [vec!["3PL-NEWARK"], vec!["WH-EAST"], vec!["3PL-NEWARK", "WH-EAST"]]);

        // Without a penalty the split (2 000) is cheaper than WH-EAST (2 100), yet a single node
        // that fills on time still wins: splits are only for when no single node can.
        let d = sourced(run(&o, lines, nodes(), &policy(0, 2)));
        assert_eq!(shipped_from(&d), ["WH-EAST"]);
        let split = candidate(&d, &["3PL-NEWARK", "WH-EAST"]);
        assert_eq!(split.cost.total_minor, 2_000);
        assert!(split.verdict.starts_with("feasible and 100 minor cheaper, but a single node"), "{}", split.verdict);
    }

    #[test]
    fn splits_when_no_single_node_fills_and_is_partial_when_one_shipment_is_the_limit() {
        let (e, c) = (east(), central());
        let o = order(ship(false), Some(BROOKLYN), None);
        let lines = demand(&[("L1", "TEE-M", 4), ("L2", "MUG", 2)]);
        let nodes = || vec![node(&c, &[("TEE-M", 1), ("MUG", 5)], 200, 50), node(&e, &[("TEE-M", 3)], 300, 100)];

        // Two shipments allowed. Ranks: WH-EAST 100 + ceil(700/3) = 334, WH-CENTRAL (1 183 km,
        // zone 4) 50 + ceil(1 000/3) = 384. L1 (4 TEE-M): 3 from WH-EAST, 1 from WH-CENTRAL; L2
        // (2 MUG): WH-CENTRAL. WH-CENTRAL: 3 units, 1 parcel 1 000 + 200 + 150 = 1 350; WH-EAST:
        // 3 units, 1 parcel 700 + 300 + 300 = 1 300; + 500 penalty = 3 150.
        let d = sourced(run(&o, lines.clone(), nodes(), &policy(500, 2)));
        assert_eq!(shipped_from(&d), ["WH-CENTRAL", "WH-EAST"]);
        let lines_of = |s: &Shipment| s.lines.iter().map(|l| (l.line_id.clone(), l.units)).collect::<Vec<_>>();
        assert_eq!(lines_of(&d.shipments[0]), [("L1".to_owned(), 1), ("L2".to_owned(), 2)]);
        assert_eq!(lines_of(&d.shipments[1]), [("L1".to_owned(), 3)]);
        assert_eq!(d.shipments[0].cost.total_minor, 1_350);
        assert_eq!(d.shipments[0].zone, Some(4));
        assert_eq!(d.shipments[1].cost.total_minor, 1_300);
        assert_eq!(d.cost.split_penalty_minor, 500);
        assert_eq!(d.total_cost_minor, 3_150);
        assert!(
            d.reason.starts_with("No single node fills all 6 units on time, so WH-CENTRAL + WH-EAST"),
            "{}",
            d.reason
        );
        assert_eq!(candidate(&d, &["WH-EAST"]).problems, ["WH-EAST lacks 2 × MUG", "WH-EAST lacks 1 × TEE-M"]);
        assert_eq!(candidate(&d, &["WH-CENTRAL"]).problems, ["WH-CENTRAL lacks 3 × TEE-M"]);

        // One shipment at most: each node alone fills 3 of 6 units; the tie goes to the cheaper,
        // WH-EAST (1 300 vs WH-CENTRAL 3 units: 1 000 + 200 + 150 = 1 350). 1 TEE-M and 2 MUG go
        // to backorder. The two-node plan is listed, rejected for exceeding the limit.
        let SourcingOutcome::Partial(d) = run(&o, lines, nodes(), &policy(500, 1)) else { panic!("expected Partial") };
        assert_eq!(shipped_from(&d), ["WH-EAST"]);
        assert_eq!(d.total_cost_minor, 1_300);
        assert_eq!(d.unfilled, demand(&[("L1", "TEE-M", 1), ("L2", "MUG", 2)]));
        assert!(
            d.reason.starts_with(
                "No plan of at most 1 shipment fills all 6 units; WH-EAST fills the most (3 units, 3 to backorder) at \
                 1300 minor"
            ),
            "{}",
            d.reason
        );
        let over = candidate(&d, &["WH-CENTRAL", "WH-EAST"]);
        assert_eq!(over.problems, ["exceeds max shipments 1"]);
        assert!(over.fills_all && !over.feasible && !over.chosen);
        assert_eq!(over.cost.total_minor, 3_150);
        assert_eq!(candidate(&d, &["WH-CENTRAL"]).cost.total_minor, 1_350);
    }

    #[test]
    fn a_passed_cut_off_makes_the_near_node_late_so_a_farther_one_that_still_ships_today_wins() {
        let (e, w) = (east(), west());
        let nodes = || vec![node(&e, &[("TEE-M", 1)], 300, 100), node(&w, &[("TEE-M", 1)], 300, 100)];
        let lines = demand(&[("1", "TEE-M", 1)]);
        // 20:30Z = 15:30 EST (past WH-EAST's 15:00 cut-off) and 12:30 PST (before WH-WEST's).
        let now = at("2026-11-26", 20, 30);
        // To Chicago: WH-EAST 1 115 km → zone 4, 2 days: ships 11-27, arrives 11-29, 1 000 + 300
        // + 100 = 1 400. WH-WEST 2 755 km → zone 6, 2 days: ships 11-26, arrives 11-28, 1 300 +
        // 300 + 100 = 1 700.
        let o = order(ship(false), Some(CHICAGO), Some("2026-11-28"));
        let d = sourced(run_at(&o, lines.clone(), nodes(), &policy(500, 2), now));
        assert_eq!(shipped_from(&d), ["WH-WEST"]);
        let s = &d.shipments[0];
        assert_eq!((s.zone, s.cutoff_passed), (Some(6), false));
        assert_eq!((s.ship_date, s.expected_delivery), (date("2026-11-26"), date("2026-11-28")));
        assert_eq!(d.total_cost_minor, 1_700);
        assert!(d.meets_sla);
        let late = candidate(&d, &["WH-EAST"]);
        assert_eq!(
            late.problems,
            ["WH-EAST: cut-off 15:00 America/New_York passed, ships 2026-11-27, arrives 2026-11-29, after \
                 deliver-by 2026-11-28"]
        );
        assert_eq!((late.fills_all, late.meets_sla, late.cost.total_minor), (true, false, 1_400));

        // A day more of slack: both are on time and the cheaper WH-EAST wins.
        let o = order(ship(false), Some(CHICAGO), Some("2026-11-29"));
        let d = sourced(run_at(&o, lines.clone(), nodes(), &policy(500, 2), now));
        assert_eq!((shipped_from(&d), d.total_cost_minor), (vec!["WH-EAST"], 1_400));

        // A ship-by of 2026-11-26T23:00Z (18:00 in New York) is missed by WH-EAST too.
        let mut o = order(ship(false), Some(CHICAGO), None);
        o.shipping.ship_by = Some(at("2026-11-26", 23, 0));
        let d = sourced(run_at(&o, lines, nodes(), &policy(500, 2), now));
        assert_eq!(shipped_from(&d), ["WH-WEST"]);
        assert_eq!(
            candidate(&d, &["WH-EAST"]).problems,
            ["WH-EAST: cut-off 15:00 America/New_York passed, ships 2026-11-27, after ship-by 2026-11-26"]
        );
    }

    #[test]
    fn when_every_full_plan_is_late_the_cheapest_is_chosen_and_marked_late() {
        let (e, w) = (east(), west());
        let nodes = vec![node(&e, &[("TEE-M", 1)], 300, 100), node(&w, &[("TEE-M", 1)], 300, 100)];
        // Deliver-by 11-27: WH-EAST arrives 11-29, WH-WEST 11-28; both late, WH-EAST is cheaper
        // (1 400 vs 1 700, as above).
        let o = order(ship(false), Some(CHICAGO), Some("2026-11-27"));
        let d = sourced(run_at(&o, demand(&[("1", "TEE-M", 1)]), nodes, &policy(500, 2), at("2026-11-26", 20, 30)));
        assert_eq!((shipped_from(&d), d.total_cost_minor), (vec!["WH-EAST"], 1_400));
        assert!(!d.meets_sla && !d.shipments[0].meets_sla);
        assert!(d.reason.starts_with("Late: no plan fills all 1 unit on time, so WH-EAST"), "{}", d.reason);
        assert!(d.reason.contains("arrives 2026-11-29, after deliver-by 2026-11-27"), "{}", d.reason);
        assert_eq!(candidate(&d, &["WH-EAST"]).verdict, "chosen, although late");
    }

    #[test]
    fn a_pickup_order_stays_at_its_store_even_when_a_warehouse_has_the_stock() {
        let (e, st) = (east(), store());
        let o = order(FulfillmentIntent::PickUpInStore { store: code("ST-BKLYN") }, Some(BROOKLYN), Some("2026-11-26"));
        let nodes =
            |store_units| vec![node(&e, &[("TEE-M", 5)], 10, 0), node(&st, &[("TEE-M", store_units)], 150, 200)];

        // The store has it: no parcel leaves, so 0 shipping + 150 handling + 1 × 200 = 350; ready
        // today (09:00 New York, before the cut-off), which meets a same-day deliver-by.
        let d = sourced(run(&o, demand(&[("1", "TEE-M", 1)]), nodes(1), &policy(500, 2)));
        assert_eq!(shipped_from(&d), ["ST-BKLYN"]);
        let s = &d.shipments[0];
        assert_eq!((s.parcels, s.zone, s.distance_km), (0, None, None));
        assert_eq!(s.cost, ShipmentCost { shipping_minor: 0, handling_minor: 150, units_minor: 200, total_minor: 350 });
        assert_eq!((s.ship_date, s.expected_delivery), (date("2026-11-26"), date("2026-11-26")));
        assert_eq!(candidate(&d, &["WH-EAST"]).problems, ["WH-EAST: pickup order is fixed to store ST-BKLYN"]);

        // Two wanted, the store holds one: the exception queue, never WH-EAST's five.
        let out = run(&o, demand(&[("1", "TEE-M", 2)]), nodes(1), &policy(500, 2));
        let SourcingOutcome::PickupStoreCannotFill { store: s, decision: d } = out else { panic!("{out:#?}") };
        assert_eq!(s, code("ST-BKLYN"));
        assert_eq!(shipped_from(&d), ["ST-BKLYN"]);
        assert_eq!(d.unfilled, demand(&[("1", "TEE-M", 1)]));
        assert!(
            d.reason.contains("(ST-BKLYN lacks 1 × TEE-M)") && d.reason.contains("exception queue"),
            "{}",
            d.reason
        );

        // No capacity left at the store: the same exception, nothing assigned.
        let mut n = nodes(5);
        n[1].capacity_remaining = 0;
        let out = run(&o, demand(&[("1", "TEE-M", 1)]), n, &policy(500, 2));
        let SourcingOutcome::PickupStoreCannotFill { decision: d, .. } = out else { panic!("{out:#?}") };
        assert!(d.shipments.is_empty());
        assert_eq!(candidate(&d, &["ST-BKLYN"]).problems, ["ST-BKLYN: capacity exhausted"]);

        // A store that does not offer pickup cannot take the order at all.
        let mut no_pickup = store();
        no_pickup.capabilities.pickup = false;
        let n = vec![node(&e, &[("TEE-M", 5)], 10, 0), node(&no_pickup, &[("TEE-M", 5)], 150, 200)];
        assert_eq!(
            run(&o, demand(&[("1", "TEE-M", 1)]), n, &policy(500, 2)),
            SourcingOutcome::NoEligibleNode {
                reason: "Pickup store ST-BKLYN may not serve this order: ST-BKLYN: does not offer pickup.".to_owned()
            }
        );
    }

    #[test]
    fn drop_ship_goes_only_to_the_named_supplier_and_suppliers_never_serve_other_orders() {
        let (e, a, b) = (
            east(),
            location("SUP-A", LocationKind::DropShipSupplier, Some(ALLENTOWN), NY),
            location("SUP-B", LocationKind::DropShipSupplier, Some(PHILADELPHIA), NY),
        );
        let nodes = || {
            vec![node(&a, &[("MUG", 9)], 100, 0), node(&b, &[("MUG", 9)], 400, 50), node(&e, &[("MUG", 9)], 300, 100)]
        };
        let lines = demand(&[("1", "MUG", 1)]);
        // SUP-B, 129 km → zone 2: 700 + 400 + 50 = 1 150, though SUP-A would cost 800.
        let o = order(FulfillmentIntent::DropShip { supplier: code("SUP-B") }, Some(BROOKLYN), None);
        let d = sourced(run(&o, lines.clone(), nodes(), &policy(500, 2)));
        assert_eq!((shipped_from(&d), d.total_cost_minor), (vec!["SUP-B"], 1_150));
        assert_eq!(candidate(&d, &["SUP-A"]).problems, ["SUP-A: drop-ship order goes only to supplier SUP-B"]);
        assert_eq!(candidate(&d, &["WH-EAST"]).problems, ["WH-EAST: drop-ship order goes only to supplier SUP-B"]);

        // A ship order never uses a supplier: WH-EAST, 700 + 300 + 100 = 1 100.
        let d = sourced(run(&o_ship(), lines.clone(), nodes(), &policy(500, 2)));
        assert_eq!((shipped_from(&d), d.total_cost_minor), (vec!["WH-EAST"], 1_100));
        assert_eq!(candidate(&d, &["SUP-A"]).problems, ["SUP-A: drop-ship supplier, used only for drop-ship orders"]);

        // Naming a warehouse as the supplier leaves nothing eligible.
        let o = order(FulfillmentIntent::DropShip { supplier: code("WH-EAST") }, Some(BROOKLYN), None);
        let SourcingOutcome::NoEligibleNode { reason } = run(&o, lines, nodes(), &policy(500, 2)) else { panic!() };
        assert!(reason.contains("WH-EAST is a warehouse, not a drop-ship supplier"), "{reason}");
    }

    fn o_ship() -> Order {
        order(ship(false), Some(BROOKLYN), None)
    }

    #[test]
    fn stores_ship_only_when_ship_from_store_is_allowed() {
        let (e, st) = (east(), store());
        let nodes = || vec![node(&e, &[("TEE-M", 5)], 300, 100), node(&st, &[("TEE-M", 5)], 150, 200)];
        let lines = demand(&[("1", "TEE-M", 1)]);
        // ST-BKLYN, 1 km → zone 2: 700 + 150 + 200 = 1 050; WH-EAST: 700 + 300 + 100 = 1 100.
        let d = sourced(run(&order(ship(true), Some(BROOKLYN), None), lines.clone(), nodes(), &policy(500, 2)));
        assert_eq!((shipped_from(&d), d.total_cost_minor), (vec!["ST-BKLYN"], 1_050));
        let d = sourced(run(&order(ship(false), Some(BROOKLYN), None), lines, nodes(), &policy(500, 2)));
        assert_eq!((shipped_from(&d), d.total_cost_minor), (vec!["WH-EAST"], 1_100));
        let st = candidate(&d, &["ST-BKLYN"]);
        assert_eq!(st.problems, ["ST-BKLYN: store may not ship: ship-from-store not allowed"]);
        assert_eq!(st.verdict, "rejected: ST-BKLYN: store may not ship: ship-from-store not allowed");
    }

    #[test]
    fn a_node_with_no_capacity_left_is_skipped_for_the_next() {
        let (e, n) = (east(), newark());
        let nodes = |east_capacity| {
            let mut wh = node(&e, &[("TEE-M", 5)], 300, 100);
            wh.capacity_remaining = east_capacity;
            let mut tpl = node(&n, &[("TEE-M", 5)], 350, 100);
            tpl.capacity_remaining = 3;
            vec![wh, tpl]
        };
        let lines = demand(&[("1", "TEE-M", 1)]);
        // WH-EAST would cost 1 100 but is full; 3PL-NEWARK: 700 + 350 + 100 = 1 150.
        let d = sourced(run(&o_ship(), lines.clone(), nodes(0), &policy(500, 2)));
        assert_eq!((shipped_from(&d), d.total_cost_minor), (vec!["3PL-NEWARK"], 1_150));
        assert_eq!(candidate(&d, &["WH-EAST"]).problems, ["WH-EAST: capacity exhausted"]);
        assert_eq!(sourced(run(&o_ship(), lines.clone(), nodes(1), &policy(500, 2))).total_cost_minor, 1_100);

        let mut none_left = nodes(0);
        none_left[1].capacity_remaining = 0;
        assert_eq!(
            run(&o_ship(), lines, none_left, &policy(500, 2)),
            SourcingOutcome::NoEligibleNode {
                reason: "No node may serve this order: 3PL-NEWARK: capacity exhausted; WH-EAST: capacity exhausted."
                    .to_owned()
            }
        );
    }

    #[test]
    fn a_missing_geo_point_is_priced_at_the_farthest_zone_and_said_so() {
        let e = east();
        let lines = demand(&[("1", "TEE-M", 1)]);
        // No ship-to geo: zone 8 (the farthest band) for everyone: 1 800 + 300 + 100 = 2 200, and
        // its 4 transit days: ships 11-26, arrives 11-30.
        let o = order(ship(false), None, None);
        let d = sourced(run(&o, lines.clone(), vec![node(&e, &[("TEE-M", 1)], 300, 100)], &policy(500, 2)));
        let s = &d.shipments[0];
        assert_eq!((s.zone, s.distance_km, s.expected_delivery), (Some(8), None, date("2026-11-30")));
        assert_eq!(d.total_cost_minor, 2_200);
        assert!(
            d.reason.ends_with("; note: no geo for the ship-to address: priced at the farthest zone 8."),
            "{}",
            d.reason
        );

        // A node without geo: 3PL-NEWARK would cost 700 + 100 + 0 = 800 at zone 2, but priced at
        // zone 8 it is 1 800 + 100 = 1 900, so WH-EAST (1 100) wins.
        let mut n = newark();
        n.geo = None;
        let nodes = vec![node(&e, &[("TEE-M", 1)], 300, 100), node(&n, &[("TEE-M", 1)], 100, 0)];
        let d = sourced(run(&o_ship(), lines, nodes, &policy(500, 2)));
        assert_eq!((shipped_from(&d), d.total_cost_minor), (vec!["WH-EAST"], 1_100));
        let c = candidate(&d, &["3PL-NEWARK"]);
        assert_eq!(c.cost.total_minor, 1_900);
        assert_eq!(c.notes, ["no geo for 3PL-NEWARK: priced at the farthest zone 8"]);
    }

    #[test]
    fn an_unknown_time_zone_is_read_as_utc_and_noted() {
        let mars = location("WH-MARS", LocationKind::Warehouse, Some(EDISON), "Mars/Olympus");
        // 20:30 read as UTC is past the 15:00 cut-off: ships 11-27, zone 2 arrives 11-28.
        let d = sourced(run_at(
            &o_ship(),
            demand(&[("1", "TEE-M", 1)]),
            vec![node(&mars, &[("TEE-M", 1)], 300, 100)],
            &policy(500, 2),
            at("2026-11-26", 20, 30),
        ));
        let s = &d.shipments[0];
        assert!(s.cutoff_passed);
        assert_eq!((s.ship_date, s.expected_delivery), (date("2026-11-27"), date("2026-11-28")));
        assert_eq!(candidate(&d, &["WH-MARS"]).notes, ["WH-MARS: unknown time zone \"Mars/Olympus\", read as UTC"]);
    }

    #[test]
    fn the_decision_does_not_depend_on_the_order_nodes_come_in() {
        let (e, w, c, n, st) = (east(), west(), central(), newark(), store());
        let o = order(ship(true), Some(BROOKLYN), Some("2026-11-30"));
        let lines = demand(&[("1", "TEE-M", 4), ("2", "MUG", 3), ("3", "CAP", 1)]);
        let nodes = vec![
            node(&e, &[("TEE-M", 2), ("MUG", 1)], 300, 100),
            node(&w, &[("TEE-M", 9), ("MUG", 9)], 250, 80),
            node(&c, &[("CAP", 1), ("MUG", 2)], 200, 50),
            node(&n, &[("TEE-M", 2)], 350, 90),
            node(&st, &[("TEE-M", 1), ("CAP", 1)], 150, 200),
        ];
        let p = policy(400, 3);
        let first = run(&o, lines.clone(), nodes.clone(), &p);
        let json = serde_json::to_string(&first).unwrap();
        for turn in 1..nodes.len() {
            let mut shuffled = nodes.clone();
            shuffled.rotate_left(turn);
            if turn % 2 == 0 {
                shuffled.reverse();
            }
            let again = run(&o, lines.clone(), shuffled, &p);
            assert_eq!(again, first);
            assert_eq!(serde_json::to_string(&again).unwrap(), json);
        }
        let d = first.decision().unwrap();
        assert!(d.shipments.len() >= 2 && d.shipments.len() <= 3, "{d:#?}");
        assert_eq!(d.candidates.iter().filter(|c| c.chosen).count(), 1);
        let keys: Vec<_> = d.candidates.iter().map(|c| (c.nodes.len(), c.nodes.clone())).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
    }

    #[test]
    fn nothing_to_source_and_no_stock_anywhere() {
        let e = east();
        let nodes = || vec![node(&e, &[("MUG", 1)], 300, 100)];
        assert!(matches!(
            run(&o_ship(), demand(&[("1", "TEE-M", 0)]), nodes(), &policy(500, 2)),
            SourcingOutcome::NoEligibleNode { .. }
        ));
        let SourcingOutcome::Partial(d) = run(&o_ship(), demand(&[("1", "TEE-M", 2)]), nodes(), &policy(500, 2)) else {
            panic!()
        };
        assert!(d.shipments.is_empty());
        assert_eq!(d.unfilled, demand(&[("1", "TEE-M", 2)]));
        assert_eq!(d.reason, "No eligible node holds any of the 2 units demanded; all go to backorder.");
    }

    fn haversine_f64(a: GeoPoint, b: GeoPoint) -> f64 {
        let rad = |micro: i32| f64::from(micro) / 1e6_f64 * std::f64::consts::PI / 180.0;
        let (p1, p2) = (rad(a.latitude_micro), rad(b.latitude_micro));
        let (dp, dl) = (p2 - p1, rad(b.longitude_micro) - rad(a.longitude_micro));
        let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
        2.0 * 6_371.0 * h.sqrt().asin()
    }

    #[test]
    fn great_circle_distances_in_integer_arithmetic() {
        let p = |lat: i32, lon: i32| GeoPoint { latitude_micro: lat, longitude_micro: lon };
        assert_eq!(great_circle_km(BROOKLYN, BROOKLYN), 0);
        // One degree along the equator: 6 371 × π / 180 = 111.19 km.
        assert_eq!(great_circle_km(p(0, 0), p(0, 1_000_000)), 111);
        // Antipodes: 6 371 × π = 20 015.09 km; across the date line the short way: 2° = 222.39.
        assert_eq!(great_circle_km(p(0, 0), p(0, 180_000_000)), 20_015);
        assert_eq!(great_circle_km(p(0, 179_000_000), p(0, -179_000_000)), 222);
        // JFK → LAX: 3 974.34 km.
        assert_eq!(great_circle_km(p(40_641_300, -73_778_100), p(33_941_600, -118_408_500)), 3_974);
        assert_eq!(great_circle_km(EDISON, CHICAGO), 1_115);
        assert_eq!(great_circle_km(ONTARIO, CHICAGO), 2_755);
    }

    proptest! {
        #[test]
        fn integer_distance_matches_floating_point_within_a_km(
            lat1 in -90_000_000i32..=90_000_000, lon1 in -180_000_000i32..=180_000_000,
            lat2 in -90_000_000i32..=90_000_000, lon2 in -180_000_000i32..=180_000_000,
        ) {
            let (a, b) = (GeoPoint { latitude_micro: lat1, longitude_micro: lon1 },
                          GeoPoint { latitude_micro: lat2, longitude_micro: lon2 });
            let exact = haversine_f64(a, b);
            let got = f64::from(great_circle_km(a, b));
            prop_assert!((got - exact).abs() <= 1.0, "{got} vs {exact}");
        }

        #[test]
        fn assignments_respect_stock_demand_and_the_shipment_limit(
            stock in proptest::collection::vec(proptest::collection::vec(0i64..6, 3), 1..6),
            capacity in proptest::collection::vec(0u32..3, 6),
            costs in proptest::collection::vec((0i64..500, 0i64..200), 6),
            wanted in proptest::collection::vec((0usize..3, 1i64..8), 1..5),
            max_shipments in 0u8..4,
            store_allowed in any::<bool>(),
        ) {
            const SKUS: [&str; 3] = ["A", "B", "C"];
            const SITES: [(GeoPoint, LocationKind); 6] = [
                (EDISON, LocationKind::Warehouse),
                (ONTARIO, LocationKind::Warehouse),
                (JOLIET, LocationKind::ThirdPartyLogistics),
                (NEWARK, LocationKind::ThirdPartyLogistics),
                (BKLYN_STORE, LocationKind::Store),
                (ALLENTOWN, LocationKind::DropShipSupplier),
            ];
            let locations: Vec<Location> = (0..stock.len())
                .map(|i| location(&format!("N{i}"), SITES[i].1, Some(SITES[i].0), [NY, LA, CHI][i % 3]))
                .collect();
            let nodes: Vec<NodeCandidate<'_>> = locations
                .iter()
                .enumerate()
                .map(|(i, loc)| {
                    let per_sku: Vec<(&str, Units)> = SKUS.iter().copied().zip(stock[i].iter().copied()).collect();
                    let mut n = node(loc, &per_sku, costs[i].0, costs[i].1);
                    n.capacity_remaining = capacity[i];
                    n
                })
                .collect();
            let lines: Vec<DemandLine> = wanted
                .iter()
                .enumerate()
                .map(|(i, (s, u))| DemandLine { line_id: format!("L{i}"), sku: sku(SKUS[*s]), units: *u })
                .collect();
            let o = order(ship(store_allowed), Some(BROOKLYN), Some("2026-11-28"));
            let p = policy(300, max_shipments);
            let outcome = run(&o, lines.clone(), nodes.clone(), &p);

            let mut reversed = nodes.clone();
            reversed.reverse();
            prop_assert_eq!(&run(&o, lines.clone(), reversed, &p), &outcome);

            let Some(d) = outcome.decision() else { return Ok(()) };
            prop_assert!(d.shipments.len() <= usize::from(max_shipments.max(1)));
            let mut per_node_sku: BTreeMap<(String, String), Units> = BTreeMap::new();
            let mut per_line: BTreeMap<String, Units> = BTreeMap::new();
            for s in &d.shipments {
                let i: usize = s.location.as_str()[1..].parse().unwrap();
                prop_assert!(capacity[i] > 0);
                prop_assert_eq!(s.units, s.lines.iter().map(|l| l.units).sum::<Units>());
                for l in &s.lines {
                    prop_assert!(l.units > 0);
                    *per_node_sku.entry((s.location.to_string(), l.sku.to_string())).or_default() += l.units;
                    *per_line.entry(l.line_id.clone()).or_default() += l.units;
                }
            }
            for ((loc, s), units) in &per_node_sku {
                let i: usize = loc[1..].parse().unwrap();
                let j = SKUS.iter().position(|k| k == s).unwrap();
                prop_assert!(*units <= stock[i][j], "{loc} gives {units} × {s}, holds {}", stock[i][j]);
            }
            for l in &d.unfilled {
                *per_line.entry(l.line_id.clone()).or_default() += l.units;
            }
            for line in &lines {
                prop_assert_eq!(per_line.get(&line.line_id).copied().unwrap_or(0), line.units);
            }
            let unfilled: Units = d.unfilled.iter().map(|l| l.units).sum();
            prop_assert_eq!(matches!(outcome, SourcingOutcome::Sourced(_)), unfilled == 0);
            let shipment_total: i64 = d.shipments.iter().map(|s| s.cost.total_minor).sum();
            prop_assert_eq!(d.total_cost_minor, shipment_total + d.cost.split_penalty_minor);
        }
    }
}
