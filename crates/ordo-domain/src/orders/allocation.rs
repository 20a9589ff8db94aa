//! Who gets scarce stock first. When a SKU cannot cover every open demand, reservations are made
//! in one documented order: channel priority (1 first), then service level (same-day before
//! next-day before standard…), then the promised date (soonest first; none last), then age
//! (placed earliest first), then the order key, so the order is total and replay-stable.
//! What cannot be reserved becomes a backorder whose expected date comes from the earliest open
//! purchase expectations or in-transit transfers that would cover it; arriving stock goes to
//! backorders in the same order.

use std::cmp::Ordering;

use ordo_types::{Date, Timestamp, Units};
use serde::{Deserialize, Serialize};

use super::model::{OrderKey, ServiceLevel};

/// The facts that rank a demand for scarce stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocationRank {
    pub channel_priority: u16,
    pub service_level: ServiceLevel,
    pub promised_by: Option<Timestamp>,
    pub placed_at: Timestamp,
    pub key: OrderKey,
}

impl Ord for AllocationRank {
    fn cmp(&self, other: &Self) -> Ordering {
        self.channel_priority
            .cmp(&other.channel_priority)
            .then(self.service_level.cmp(&other.service_level))
            .then(match (self.promised_by, other.promised_by) {
                (Some(a), Some(b)) => a.cmp(&b),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            })
            .then(self.placed_at.cmp(&other.placed_at))
            .then_with(|| self.key.cmp(&other.key))
    }
}

impl PartialOrd for AllocationRank {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// One line's demand for one SKU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Demand {
    pub rank: AllocationRank,
    pub line_id: String,
    pub units: Units,
}

/// What a demand received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub key: OrderKey,
    pub line_id: String,
    pub reserved: Units,
    pub backordered: Units,
}

/// Splits `available` units of one SKU among `demands` in rank order; a demand is filled fully
/// before the next one gets anything (no order is starved to give every order a little).
pub fn allocate(available: Units, demands: &[Demand]) -> Vec<Grant> {
    assert!(available >= 0, "available units are never negative");
    let mut order: Vec<&Demand> = demands.iter().collect();
    order.sort_by(|a, b| a.rank.cmp(&b.rank).then_with(|| a.line_id.cmp(&b.line_id)));
    let mut left = available;
    order
        .into_iter()
        .map(|d| {
            assert!(d.units > 0, "a demand asks for at least one unit");
            let reserved = d.units.min(left);
            left -= reserved;
            Grant { key: d.rank.key.clone(), line_id: d.line_id.clone(), reserved, backordered: d.units - reserved }
        })
        .collect()
}

/// Stock expected to arrive: an open purchase expectation or an in-transit transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Supply {
    pub due: Date,
    pub units: Units,
}

/// The date by which `units` more (beyond what earlier backorders already wait for, `ahead`)
/// are expected to arrive, walking supplies by due date; `None` if open supply never covers it.
pub fn expected_date(ahead: Units, units: Units, supplies: &[Supply]) -> Option<Date> {
    let mut sorted: Vec<&Supply> = supplies.iter().collect();
    sorted.sort_by_key(|s| s.due);
    let needed = ahead + units;
    let mut covered = 0;
    for s in sorted {
        covered += s.units;
        if covered >= needed {
            return Some(s.due);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn rank(
        channel_priority: u16,
        level: ServiceLevel,
        promised: Option<i64>,
        placed: i64,
        id: &str,
    ) -> AllocationRank {
        AllocationRank {
            channel_priority,
            service_level: level,
            promised_by: promised.map(Timestamp::from_millis),
            placed_at: Timestamp::from_millis(placed),
            key: OrderKey { channel: ordo_types::Code::new("CH").unwrap(), channel_order_id: id.into() },
        }
    }

    fn demand(rank: AllocationRank, units: Units) -> Demand {
        Demand { rank, line_id: "1".into(), units }
    }

    #[test]
    fn short_stock_goes_by_priority_then_service_then_promise_then_age() {
        use ServiceLevel::*;
        // 10 units for 5 orders of 4 each. Expected order:
        //   A: channel priority 1 (marketplace) beats everything else        → 4
        //   B: priority 2, next-day beats standard                           → 4
        //   C: priority 2, standard, promised earlier than D                 → 2 (only 2 left)
        //   D: priority 2, standard, later promise                           → 0
        //   E: priority 2, standard, no promise, oldest — still last         → 0
        let demands = vec![
            demand(rank(2, Standard, None, 1, "E"), 4),
            demand(rank(2, Standard, Some(500), 5, "D"), 4),
            demand(rank(2, NextDay, Some(900), 9, "B"), 4),
            demand(rank(2, Standard, Some(300), 7, "C"), 4),
            demand(rank(1, Economy, None, 8, "A"), 4),
        ];
        let grants = allocate(10, &demands);
        let got: Vec<(&str, Units, Units)> =
            grants.iter().map(|g| (g.key.channel_order_id.as_str(), g.reserved, g.backordered)).collect();
        assert_eq!(got, [("A", 4, 0), ("B", 4, 0), ("C", 2, 2), ("D", 0, 4), ("E", 0, 4)]);
    }

    #[test]
    fn same_rank_falls_back_to_age_then_key() {
        let demands = vec![
            demand(rank(1, ServiceLevel::Standard, None, 5, "Z"), 1),
            demand(rank(1, ServiceLevel::Standard, None, 5, "Y"), 1),
        ];
        let grants = allocate(1, &demands);
        assert_eq!((grants[0].key.channel_order_id.as_str(), grants[0].reserved), ("Y", 1));
    }

    #[test]
    fn backorders_get_dates_from_the_supply_that_covers_them() {
        let d = |s: &str| s.parse::<Date>().unwrap();
        let supplies = [Supply { due: d("2026-12-05"), units: 6 }, Supply { due: d("2026-12-01"), units: 4 }];
        // 4 units arrive on Dec 1, 6 more on Dec 5 (10 in total).
        assert_eq!(expected_date(0, 4, &supplies), Some(d("2026-12-01")));
        assert_eq!(expected_date(2, 4, &supplies), Some(d("2026-12-05")), "2 units already wait ahead");
        assert_eq!(expected_date(6, 4, &supplies), Some(d("2026-12-05")));
        assert_eq!(expected_date(7, 4, &supplies), None, "11 units needed, 10 coming");
    }

    proptest! {
        #[test]
        fn allocation_conserves_units_and_never_over_reserves(
            available in 0i64..50,
            asks in prop::collection::vec((1u16..4, 0usize..5, 1i64..10, 0i64..100), 1..12),
        ) {
            let levels = [ServiceLevel::SameDay, ServiceLevel::NextDay, ServiceLevel::TwoDay, ServiceLevel::Standard, ServiceLevel::Economy];
            let demands: Vec<Demand> = asks
                .iter()
                .enumerate()
                .map(|(i, (p, l, units, placed))| demand(rank(*p, levels[*l], None, *placed, &format!("O{i}")), *units))
                .collect();
            let grants = allocate(available, &demands);
            let reserved: Units = grants.iter().map(|g| g.reserved).sum();
            let asked: Units = demands.iter().map(|d| d.units).sum();
            prop_assert_eq!(reserved, available.min(asked));
            prop_assert_eq!(reserved + grants.iter().map(|g| g.backordered).sum::<Units>(), asked);
            // Rank order: once a demand is short, every later one gets nothing.
            let first_short = grants.iter().position(|g| g.backordered > 0);
            if let Some(i) = first_short {
                prop_assert!(grants[i + 1..].iter().all(|g| g.reserved == 0));
            }
        }
    }
}
