//! Available-to-sell (ATS): what each channel may offer of each SKU, derived from balances and
//! policy by explicit rules, never stored as a source of truth.
//!
//! For a stocked SKU, per location: `sellable = max(0, available − safety_stock)`. Fixed pools
//! are then ring-fenced from those units, channel by channel in priority order (1 first, ties by
//! definition order), each drawing from its own locations in its preference order — so when
//! stock is short the higher-priority channel's pool is filled first. A channel with a pool
//! offers exactly what was granted to it; any other channel offers the sellable units left at its
//! locations after every pool was carved out. Then, in this order: `+ incoming` due within the
//! channel's window (optional), `× percentage cap` (rounded down), `− buffer`, floored at zero.
//!
//! A bundle offers, per channel, `min over components ⌊component units granted to it / per-bundle
//! quantity⌋`. Bundles that share a component split that component's channel figure between them
//! (max-min fair: each bundle gets the same number of bundle units up to what its other
//! components allow, then leftovers go in SKU order), so the units promised across bundles never
//! exceed the component's own figure.

use std::collections::BTreeSet;

use ordo_types::{ChannelCode, Date, LocationCode, Reference, Sku, Timestamp, Units};
use serde::{Deserialize, Serialize};

use crate::state::State;

/// Published whenever a channel's figure for a SKU changes; this is what reaches channels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvailabilityChanged {
    pub sku: Sku,
    pub channel: ChannelCode,
    pub old: Units,
    pub new: Units,
}

/// Every term that produced one channel's figure for one SKU (`ordo ats --explain`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AtsExplanation {
    pub sku: Sku,
    pub channel: ChannelCode,
    /// For a stocked SKU, how the figure was reached; `None` for bundles.
    pub stocked: Option<StockedTerms>,
    /// For a bundle, its components; `None` for stocked SKUs.
    pub bundle: Option<BundleTerms>,
    pub ats: Units,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockedTerms {
    pub locations: Vec<LocationTerm>,
    /// This channel's fixed pool for the SKU, if it has one.
    pub pool: Option<Units>,
    /// Units the channel takes from its locations: its pool grant, or what other pools left.
    pub from_locations: Units,
    pub incoming_window_days: Option<u16>,
    pub incoming: Vec<IncomingTerm>,
    pub incoming_counted: Units,
    pub before_cap: Units,
    pub percentage_cap: Option<u8>,
    pub after_cap: Units,
    pub buffer: Units,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocationTerm {
    pub location: LocationCode,
    pub available: Units,
    pub safety_stock: Units,
    pub sellable: Units,
    /// Units ring-fenced here for other channels' pools.
    pub pooled_for_other_channels: Units,
    /// Units ring-fenced here for this channel's pool.
    pub pooled_for_this_channel: Units,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomingTerm {
    pub expectation: Reference,
    pub location: LocationCode,
    pub expected_on: Date,
    pub open: Units,
    pub counted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleTerms {
    pub components: Vec<ComponentTerm>,
    /// Bundles sharing at least one component with this one (their figures are split fairly).
    pub sharing_with: Vec<Sku>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentTerm {
    pub sku: Sku,
    pub per_bundle: u32,
    /// The component's own ATS on this channel.
    pub component_ats: Units,
    /// Bundles this component alone would allow, ignoring sharing.
    pub bundles_alone: Units,
    /// Component units promised to this bundle after the fair split.
    pub granted_units: Units,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExplainError {
    #[error("unknown SKU {0}")]
    UnknownSku(Sku),
    #[error("unknown channel {0}")]
    UnknownChannel(ChannelCode),
}

/// ATS per channel for a stocked SKU; when `explain` names a channel, also its terms.
fn stocked_sku(state: &State, s: u32, now: Timestamp, explain: Option<u32>) -> (Vec<Units>, Option<StockedTerms>) {
    let cat = &state.catalog;
    let inv = &state.inventory;
    let channel_count = cat.channels.len();
    // (location, available, safety, sellable, remaining after pools)
    let mut locs: Vec<(u32, Units, Units, Units, Units)> = inv.stock[s as usize]
        .iter()
        .map(|(l, b)| {
            let safety = cat.safety_stock(s, *l);
            let sellable = (b.available() - safety).max(0);
            (*l, b.available(), safety, sellable, sellable)
        })
        .collect();
    let pools = &cat.pools[s as usize];
    let mut granted = vec![0; channel_count];
    let mut pooled_at: Vec<(u32, u32, Units)> = Vec::new(); // (channel, location, units)
    if !pools.is_empty() {
        let mut order: Vec<(u16, u32, Units)> =
            pools.iter().map(|(c, u)| (cat.channels[*c as usize].priority, *c, *u)).collect();
        order.sort_unstable();
        for (_, c, pool) in order {
            let mut need = pool;
            for l in &cat.channel_locations[c as usize] {
                if need == 0 {
                    break;
                }
                if let Ok(i) = locs.binary_search_by_key(l, |e| e.0) {
                    let take = need.min(locs[i].4);
                    if take > 0 {
                        locs[i].4 -= take;
                        need -= take;
                        granted[c as usize] += take;
                        pooled_at.push((c, *l, take));
                    }
                }
            }
        }
    }
    let today = now.date();
    let mut out = Vec::with_capacity(channel_count);
    let mut terms = None;
    for (c, (channel, channel_locs)) in cat.channels.iter().zip(&cat.channel_locations).enumerate() {
        let pool = pools.iter().find(|(ch, _)| *ch as usize == c).map(|(_, u)| *u);
        let from_locations = match pool {
            Some(_) => granted[c],
            None => {
                channel_locs.iter().filter_map(|l| locs.binary_search_by_key(l, |e| e.0).ok().map(|i| locs[i].4)).sum()
            }
        };
        let policy = &channel.allocation;
        let mut incoming_counted = 0;
        let mut incoming_terms = Vec::new();
        let wants_terms = explain == Some(c as u32);
        if policy.incoming_window_days.is_some() || wants_terms {
            let horizon = policy.incoming_window_days.map(|d| today.add_days(i32::from(d)));
            for reference in &inv.open_expectations[s as usize] {
                let e = &inv.expectations[reference];
                let l = cat.location_ids[&e.location];
                if !channel_locs.contains(&l) {
                    continue;
                }
                let counted = horizon.is_some_and(|h| e.expected_on <= h);
                if counted {
                    incoming_counted += e.open;
                }
                if wants_terms {
                    incoming_terms.push(IncomingTerm {
                        expectation: reference.clone(),
                        location: e.location.clone(),
                        expected_on: e.expected_on,
                        open: e.open,
                        counted,
                    });
                }
            }
        }
        let before_cap = from_locations + incoming_counted;
        let after_cap = match policy.percentage_cap {
            Some(p) => before_cap * Units::from(p) / 100,
            None => before_cap,
        };
        let ats = (after_cap - policy.buffer).max(0);
        out.push(ats);
        if wants_terms {
            let locations = channel_locs
                .iter()
                .map(|l| {
                    let (available, safety, sellable) = match locs.binary_search_by_key(l, |e| e.0) {
                        Ok(i) => (locs[i].1, locs[i].2, locs[i].3),
                        Err(_) => (0, cat.safety_stock(s, *l), 0),
                    };
                    let pooled = |mine: bool| -> Units {
                        pooled_at
                            .iter()
                            .filter(|(ch, pl, _)| pl == l && ((*ch as usize == c) == mine))
                            .map(|e| e.2)
                            .sum()
                    };
                    LocationTerm {
                        location: cat.locations[*l as usize].code.clone(),
                        available,
                        safety_stock: safety,
                        sellable,
                        pooled_for_other_channels: pooled(false),
                        pooled_for_this_channel: pooled(true),
                    }
                })
                .collect();
            terms = Some(StockedTerms {
                locations,
                pool,
                from_locations,
                incoming_window_days: policy.incoming_window_days,
                incoming: incoming_terms,
                incoming_counted,
                before_cap,
                percentage_cap: policy.percentage_cap,
                after_cap,
                buffer: policy.buffer,
            });
        }
    }
    (out, terms)
}

/// The bundles connected to `start` through shared components (including `start`), sorted.
fn bundle_group(state: &State, start: u32) -> Vec<u32> {
    let cat = &state.catalog;
    let mut group = BTreeSet::from([start]);
    let mut queue = vec![start];
    while let Some(b) = queue.pop() {
        for component in &cat.items[b as usize].components {
            let cid = cat.sku_ids[&component.sku];
            for other in &cat.bundles_of[cid as usize] {
                if group.insert(*other) {
                    queue.push(*other);
                }
            }
        }
    }
    group.into_iter().collect()
}

/// Bundle units per bundle of `group` on channel `c`, split fairly (see the module comment).
fn split_group(state: &State, group: &[u32], c: usize) -> Vec<Units> {
    let cat = &state.catalog;
    // per bundle: [(component id, per-bundle quantity)]
    let needs: Vec<Vec<(u32, Units)>> = group
        .iter()
        .map(|b| {
            cat.items[*b as usize]
                .components
                .iter()
                .map(|comp| (cat.sku_ids[&comp.sku], Units::from(comp.quantity)))
                .collect()
        })
        .collect();
    let supply = |x: u32| state.ats[x as usize][c];
    let caps: Vec<Units> = needs.iter().map(|n| n.iter().map(|(x, q)| supply(*x) / q).min().unwrap_or(0)).collect();
    let mut components: Vec<u32> = needs.iter().flatten().map(|(x, _)| *x).collect();
    components.sort_unstable();
    components.dedup();
    let feasible = |level: Units| {
        components.iter().all(|x| {
            let used: Units = needs
                .iter()
                .zip(&caps)
                .flat_map(|(n, cap)| n.iter().filter(|(y, _)| y == x).map(move |(_, q)| cap.min(&level) * q))
                .sum();
            used <= supply(*x)
        })
    };
    let (mut lo, mut hi) = (0, caps.iter().copied().max().unwrap_or(0));
    while lo < hi {
        let mid = lo + (hi - lo + 1) / 2;
        if feasible(mid) { lo = mid } else { hi = mid - 1 }
    }
    let mut alloc: Vec<Units> = caps.iter().map(|cap| (*cap).min(lo)).collect();
    let mut remaining: Vec<(u32, Units)> = components.iter().map(|x| (*x, supply(*x))).collect();
    let take = |remaining: &mut Vec<(u32, Units)>, n: &[(u32, Units)], units: Units| {
        for (x, q) in n {
            let r = remaining.iter_mut().find(|(y, _)| y == x).expect("component listed");
            r.1 -= units * q;
            assert!(r.1 >= 0, "bundle split over-promised a component");
        }
    };
    for (i, n) in needs.iter().enumerate() {
        take(&mut remaining, n, alloc[i]);
    }
    for (i, n) in needs.iter().enumerate() {
        let room = n
            .iter()
            .map(|(x, q)| remaining.iter().find(|(y, _)| y == x).expect("component listed").1 / q)
            .min()
            .unwrap_or(0);
        let extra = room.min(caps[i] - alloc[i]);
        if extra > 0 {
            take(&mut remaining, n, extra);
            alloc[i] += extra;
        }
    }
    alloc
}

/// Recomputes `skus` (and the bundle groups they feed), updating `state.ats`.
pub(crate) fn refresh(state: &mut State, skus: &[u32], now: Timestamp) -> Vec<AvailabilityChanged> {
    let mut changes: Vec<(u32, u32, Units, Units)> = Vec::new();
    let mut bundles: BTreeSet<u32> = BTreeSet::new();
    for &s in skus {
        if state.catalog.items[s as usize].is_bundle() {
            bundles.insert(s);
            continue;
        }
        let (figures, _) = stocked_sku(state, s, now, None);
        for (c, new) in figures.into_iter().enumerate() {
            let old = std::mem::replace(&mut state.ats[s as usize][c], new);
            if old != new {
                changes.push((s, c as u32, old, new));
            }
        }
        bundles.extend(state.catalog.bundles_of[s as usize].iter().copied());
    }
    let mut done: BTreeSet<u32> = BTreeSet::new();
    for b in bundles {
        if done.contains(&b) {
            continue;
        }
        let group = bundle_group(state, b);
        for c in 0..state.catalog.channels.len() {
            let alloc = split_group(state, &group, c);
            for (bundle, new) in group.iter().zip(alloc) {
                let old = std::mem::replace(&mut state.ats[*bundle as usize][c], new);
                if old != new {
                    changes.push((*bundle, c as u32, old, new));
                }
            }
        }
        done.extend(group);
    }
    changes.sort_unstable();
    for (s, ..) in &changes {
        state.note_availability_changed(*s);
    }
    changes
        .into_iter()
        .map(|(s, c, old, new)| AvailabilityChanged {
            sku: state.catalog.items[s as usize].sku.clone(),
            channel: state.catalog.channels[c as usize].code.clone(),
            old,
            new,
        })
        .collect()
}

/// Explains one channel's figure for one SKU, computed afresh at `now`.
pub fn explain(
    state: &State,
    sku: &Sku,
    channel: &ChannelCode,
    now: Timestamp,
) -> Result<AtsExplanation, ExplainError> {
    let cat = &state.catalog;
    let s = *cat.sku_ids.get(sku).ok_or_else(|| ExplainError::UnknownSku(sku.clone()))?;
    let c = *cat.channel_ids.get(channel).ok_or_else(|| ExplainError::UnknownChannel(channel.clone()))?;
    let item = &cat.items[s as usize];
    if !item.is_bundle() {
        let (figures, terms) = stocked_sku(state, s, now, Some(c));
        return Ok(AtsExplanation {
            sku: sku.clone(),
            channel: channel.clone(),
            stocked: terms,
            bundle: None,
            ats: figures[c as usize],
        });
    }
    let group = bundle_group(state, s);
    let alloc = split_group(state, &group, c as usize);
    let mine = alloc[group.iter().position(|b| *b == s).expect("bundle is in its group")];
    let components = item
        .components
        .iter()
        .map(|comp| {
            let x = cat.sku_ids[&comp.sku];
            let component_ats = state.ats[x as usize][c as usize];
            ComponentTerm {
                sku: comp.sku.clone(),
                per_bundle: comp.quantity,
                component_ats,
                bundles_alone: component_ats / Units::from(comp.quantity),
                granted_units: mine * Units::from(comp.quantity),
            }
        })
        .collect();
    let sharing_with = group.iter().filter(|b| **b != s).map(|b| cat.items[*b as usize].sku.clone()).collect();
    Ok(AtsExplanation {
        sku: sku.clone(),
        channel: channel.clone(),
        stocked: None,
        bundle: Some(BundleTerms { components, sharing_with }),
        ats: mine,
    })
}

/// Availability invariants: the cache equals a fresh computation; every figure is between zero
/// and what the channel could physically sell (plus counted incoming); bundles never promise
/// more of a component than the component's own figure.
pub(crate) fn check(state: &State, now: Timestamp) -> Vec<String> {
    let mut problems = Vec::new();
    let cat = &state.catalog;
    let mut fresh = state.clone();
    fresh.clear_dirty();
    let all: Vec<u32> = (0..cat.items.len() as u32).collect();
    refresh(&mut fresh, &all, now);
    for (s, item) in cat.items.iter().enumerate() {
        for (c, channel) in cat.channels.iter().enumerate() {
            let cached = state.ats[s][c];
            if fresh.ats[s][c] != cached {
                problems.push(format!(
                    "ATS {} on {}: cached {cached}, recomputed {}",
                    item.sku, channel.code, fresh.ats[s][c]
                ));
            }
            if cached < 0 {
                problems.push(format!("ATS {} on {} is negative ({cached})", item.sku, channel.code));
            }
            if !item.is_bundle() {
                let physical: Units =
                    cat.channel_locations[c].iter().map(|l| state.inventory.buckets(s as u32, *l).available()).sum();
                let incoming: Units = state.inventory.open_expectations[s]
                    .iter()
                    .map(|r| &state.inventory.expectations[r])
                    .filter(|e| cat.channel_locations[c].contains(&cat.location_ids[&e.location]))
                    .map(|e| e.open)
                    .sum();
                let ceiling = physical + if channel.allocation.incoming_window_days.is_some() { incoming } else { 0 };
                if cached > ceiling {
                    problems
                        .push(format!("ATS {} on {} is {cached}, above sellable {ceiling}", item.sku, channel.code));
                }
            } else {
                for comp in &item.components {
                    let x = cat.sku_ids[&comp.sku] as usize;
                    let promised: Units = cat.bundles_of[x]
                        .iter()
                        .map(|b| {
                            let q = cat.items[*b as usize]
                                .components
                                .iter()
                                .find(|k| k.sku == comp.sku)
                                .map_or(0, |k| k.quantity);
                            state.ats[*b as usize][c] * Units::from(q)
                        })
                        .sum();
                    if promised > state.ats[x][c] {
                        problems.push(format!(
                            "bundles promise {promised} of {} on {} but it offers {}",
                            comp.sku, channel.code, state.ats[x][c]
                        ));
                    }
                }
            }
        }
    }
    problems.sort();
    problems.dedup();
    problems
}
