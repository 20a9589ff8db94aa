//! Wave planning: which allocated orders a node releases to its floor next, in the order the
//! carrier's cut-off and the customers' promises call for, and the pick list that goes with them.
//!
//! A wave takes the node's allocated orders whose every reservation is at that node (a split
//! order is released by the wave of its last node, see `ordo order dispatch`), ordered by: a
//! promise that falls before the node's next carrier cut-off first, then promised date, service
//! level (fastest first), age. Releasing it is ordinary order commands (`Dispatch`,
//! `StartPicking`), so every transition keeps its actor and time — release-to-ship cycle time is
//! read from the orders' histories.

use std::collections::BTreeMap;

use ordo_types::{LocationCode, Sku, Timestamp, Units};
use serde::Serialize;

use crate::State;
use crate::orders::lifecycle::OrderStatus;
use crate::orders::model::{OrderKey, ServiceLevel};

const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WaveOrder {
    pub key: OrderKey,
    pub promised_by: Option<Timestamp>,
    pub service_level: ServiceLevel,
    pub placed_at: Timestamp,
    /// Its promise falls before the node's next cut-off: it must leave in this wave.
    pub before_cutoff: bool,
}

/// One line of a pick list: a SKU at the node, how many, for which orders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PickLine {
    pub sku: Sku,
    pub units: Units,
    pub orders: Vec<OrderKey>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Wave {
    pub node: LocationCode,
    /// The node's next carrier cut-off (its own time zone), as an instant.
    pub next_cutoff: Timestamp,
    pub orders: Vec<WaveOrder>,
    pub pick_list: Vec<PickLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WaveRejection {
    #[error("unknown location {0}")]
    UnknownNode(LocationCode),
}

/// The next wave of `node` at `now`, at most `limit` orders.
pub fn plan(state: &State, node: &LocationCode, now: Timestamp, limit: usize) -> Result<Wave, WaveRejection> {
    let location = state.location(node).ok_or_else(|| WaveRejection::UnknownNode(node.clone()))?;
    let settings = state.orders.nodes.get(node).cloned().unwrap_or_default();
    let tz = location.time_zone.parse::<chrono_tz::Tz>().ok();
    let local_now = crate::orders::sourcing::local_ms(tz, now);
    let (hour, minute) = settings.cutoff_local;
    let cutoff_of_day = i64::from(hour) * 3_600_000 + i64::from(minute) * 60_000;
    let offset = local_now - now.millis();
    let mut cutoff_local = local_now.div_euclid(DAY_MS) * DAY_MS + cutoff_of_day;
    if cutoff_local <= local_now {
        cutoff_local += DAY_MS;
    }
    let next_cutoff = Timestamp::from_millis(cutoff_local - offset);
    let mut orders: Vec<WaveOrder> = state
        .orders()
        .all()
        .filter(|r| r.status == OrderStatus::Allocated)
        .filter(|r| {
            let mut at = r.lines.iter().flat_map(|l| &l.reservations).map(|x| &x.location).peekable();
            at.peek().is_some() && at.all(|l| l == node)
        })
        .map(|r| {
            let promised_by = crate::orders::validation::promised_by(&r.order);
            WaveOrder {
                key: r.key(),
                promised_by,
                service_level: r.order.shipping.service_level,
                placed_at: r.order.placed_at,
                before_cutoff: promised_by.is_some_and(|p| p <= next_cutoff),
            }
        })
        .collect();
    orders.sort_by_key(|o| {
        (!o.before_cutoff, o.promised_by.is_none(), o.promised_by, o.service_level, o.placed_at, o.key.clone())
    });
    orders.truncate(limit);
    let mut picks: BTreeMap<Sku, (Units, Vec<OrderKey>)> = BTreeMap::new();
    for o in &orders {
        let record = state.orders().get(&o.key).expect("planned from the book");
        for line in &record.lines {
            let Some(sku) = &line.sku else { continue };
            let units = line.reserved();
            if units > 0 {
                let entry = picks.entry(sku.clone()).or_default();
                entry.0 += units;
                if entry.1.last() != Some(&o.key) {
                    entry.1.push(o.key.clone());
                }
            }
        }
    }
    let pick_list = picks.into_iter().map(|(sku, (units, orders))| PickLine { sku, units, orders }).collect();
    Ok(Wave { node: node.clone(), next_cutoff, orders, pick_list })
}
