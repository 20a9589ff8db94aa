//! Worked examples of available-to-sell: safety stock, percentage caps, buffers, fixed pools,
//! incoming within a window, bundles, and the `AvailabilityChanged` events a refresh publishes.

mod support;

use ordo_domain::availability::{self, ComponentTerm, LocationTerm};
use ordo_domain::catalog::{CatalogRejection, SafetyStockScope};
use ordo_domain::inventory::{MoveRejection, ReasonCode};
use ordo_domain::{AvailabilityChanged, Command, Rejection};
use ordo_types::Units;
use support::*;

fn safety(scope: SafetyStockScope, units: Units) -> Command {
    Command::SetSafetyStock { scope, units }
}

fn explain(w: &World, s: &str, c: &str) -> ordo_domain::AtsExplanation {
    availability::explain(&w.state, &sku(s), &code(c), w.now).unwrap()
}

fn loc_term(
    l: &str,
    available: Units,
    safety_stock: Units,
    sellable: Units,
    pooled_for_other_channels: Units,
    pooled_for_this_channel: Units,
) -> LocationTerm {
    LocationTerm {
        location: code(l),
        available,
        safety_stock,
        sellable,
        pooled_for_other_channels,
        pooled_for_this_channel,
    }
}

/// Every `(sku, channel)` figure, in definition order.
fn ats_table(w: &World) -> Vec<(String, String, Units)> {
    let mut rows = Vec::new();
    for item in w.state.items() {
        for c in w.state.channels() {
            rows.push((item.sku.to_string(), c.code.to_string(), w.state.ats(&item.sku, &c.code).unwrap()));
        }
    }
    rows
}

// ----- safety stock ---------------------------------------------------------------------

#[test]
fn safety_stock_most_specific_rule_wins() {
    let mut w = World::new();
    w.run(location("WH", true));
    w.run(location("ST", false));
    w.run(item_in_class("TEE", "APPAREL"));
    w.run(item_in_class("MUG", "APPAREL"));
    w.run(item("CAP"));
    w.run(plain_channel("WEB", &["WH", "ST"], 1));
    for s in ["TEE", "MUG", "CAP"] {
        w.mv(receipt(s, "WH", 20));
        w.mv(receipt(s, "ST", 10));
        assert_eq!(w.ats(s, "WEB"), 30);
    }

    // Location rule WH = 2 applies to all three: (20 − 2) + 10 = 28.
    let changes = w.run(safety(SafetyStockScope::Location(code("WH")), 2));
    assert_eq!(
        changes,
        vec![change("TEE", "WEB", 30, 28), change("MUG", "WEB", 30, 28), change("CAP", "WEB", 30, 28),]
    );

    // Class APPAREL = 3 beats the location rule, at both locations: (20 − 3) + (10 − 3) = 24.
    // CAP has no class and keeps the location rule (28), so it is not republished.
    let changes = w.run(safety(SafetyStockScope::SkuClass(code("APPAREL")), 3));
    assert_eq!(changes, vec![change("TEE", "WEB", 28, 24), change("MUG", "WEB", 28, 24)]);
    assert_eq!(w.ats("CAP", "WEB"), 28);

    // SKU TEE = 4 beats the class: (20 − 4) + (10 − 4) = 22; MUG stays on the class rule.
    let changes = w.run(safety(SafetyStockScope::Sku(sku("TEE")), 4));
    assert_eq!(changes, vec![change("TEE", "WEB", 24, 22)]);
    assert_eq!(w.ats("MUG", "WEB"), 24);

    // TEE@ST = 1 beats the SKU rule at ST only: (20 − 4) + (10 − 1) = 25.
    let changes = w.run(safety(SafetyStockScope::SkuAtLocation(sku("TEE"), code("ST")), 1));
    assert_eq!(changes, vec![change("TEE", "WEB", 22, 25)]);

    // TEE@WH = 25 is more than the 20 available: sellable floors at 0, so 0 + 9 = 9.
    let changes = w.run(safety(SafetyStockScope::SkuAtLocation(sku("TEE"), code("WH")), 25));
    assert_eq!(changes, vec![change("TEE", "WEB", 25, 9)]);
    assert_eq!(w.state.safety_rules().len(), 5);

    let e = explain(&w, "TEE", "WEB");
    assert_eq!(e.ats, 9);
    assert!(e.bundle.is_none());
    let t = e.stocked.unwrap();
    assert_eq!(t.locations, vec![loc_term("WH", 20, 25, 0, 0, 0), loc_term("ST", 10, 1, 9, 0, 0)]);
    assert_eq!(t.pool, None);
    assert_eq!(t.from_locations, 9);
    assert_eq!((t.incoming_counted, t.before_cap, t.after_cap), (0, 9, 9));
    assert_eq!((t.percentage_cap, t.buffer), (None, 0));

    // MUG: class rule 3 at both locations: 17 + 7.
    let e = explain(&w, "MUG", "WEB");
    assert_eq!(e.stocked.unwrap().locations, vec![loc_term("WH", 20, 3, 17, 0, 0), loc_term("ST", 10, 3, 7, 0, 0)]);
    assert_eq!(e.ats, 24);
}

// ----- percentage cap and buffer ---------------------------------------------------------

#[test]
fn percentage_cap_rounds_down_and_buffer_floors_at_zero() {
    let mut w = World::new();
    w.run(location("WH", true));
    w.run(item("TEE"));
    w.run(plain_channel("WEB", &["WH"], 1));
    w.run(channel("AMZ", &["WH"], 1, policy(Some(33), 0, None)));
    w.run(channel("EBAY", &["WH"], 1, policy(Some(50), 3, None)));
    w.run(channel("POS", &["WH"], 1, policy(None, 5, None)));

    let changes = w.mv(receipt("TEE", "WH", 20));
    // WEB 20; AMZ ⌊20 × 33 / 100⌋ = ⌊6.6⌋ = 6; EBAY ⌊20 × 50 / 100⌋ − 3 = 7; POS 20 − 5 = 15.
    assert_eq!(
        changes,
        vec![
            change("TEE", "WEB", 0, 20),
            change("TEE", "AMZ", 0, 6),
            change("TEE", "EBAY", 0, 7),
            change("TEE", "POS", 0, 15),
        ]
    );

    let changes = w.mv(receipt("TEE", "WH", 1));
    // 21: AMZ ⌊6.93⌋ = 6 and EBAY ⌊10.5⌋ − 3 = 7 do not move; only WEB and POS are republished.
    assert_eq!(changes, vec![change("TEE", "WEB", 20, 21), change("TEE", "POS", 15, 16)]);
    assert_eq!((w.ats("TEE", "AMZ"), w.ats("TEE", "EBAY")), (6, 7));

    let changes = w.mv(adjust("TEE", "WH", -16, ReasonCode::Lost));
    // 5: AMZ ⌊1.65⌋ = 1; EBAY ⌊2.5⌋ − 3 < 0 → 0; POS 5 − 5 = 0.
    assert_eq!(
        changes,
        vec![
            change("TEE", "WEB", 21, 5),
            change("TEE", "AMZ", 6, 1),
            change("TEE", "EBAY", 7, 0),
            change("TEE", "POS", 16, 0),
        ]
    );

    let t = explain(&w, "TEE", "EBAY").stocked.unwrap();
    assert_eq!(t.from_locations, 5);
    assert_eq!((t.before_cap, t.percentage_cap, t.after_cap), (5, Some(50), 2));
    assert_eq!(t.buffer, 3);
    assert_eq!(explain(&w, "TEE", "EBAY").ats, 0);
}

// ----- fixed pools -------------------------------------------------------------------------

/// WH 10 and ST 6 of TEE; WEB (priority 1) sells from [WH, ST], AMZ (2) from [WH], POS (3) from [ST].
fn pools_world() -> World {
    let mut w = World::new();
    w.run(location("WH", true));
    w.run(location("ST", false));
    w.run(item("TEE"));
    w.run(plain_channel("WEB", &["WH", "ST"], 1));
    w.run(plain_channel("AMZ", &["WH"], 2));
    w.run(plain_channel("POS", &["ST"], 3));
    w.mv(receipt("TEE", "WH", 10));
    w.mv(receipt("TEE", "ST", 6));
    // Without pools every channel sees the sellable units at its own locations.
    assert_eq!((w.ats("TEE", "WEB"), w.ats("TEE", "AMZ"), w.ats("TEE", "POS")), (16, 10, 6));
    w
}

#[test]
fn a_pool_is_ring_fenced_for_its_channel() {
    let mut w = pools_world();
    let changes = w.run(pool("AMZ", "TEE", 4));
    // AMZ takes 4 at WH: AMZ 4; WEB (6 left at WH) + 6 at ST = 12; POS (ST only) unchanged at 6.
    assert_eq!(changes, vec![change("TEE", "WEB", 16, 12), change("TEE", "AMZ", 10, 4)]);
    assert_eq!(w.state.pool(&code("AMZ"), &sku("TEE")), 4);
    assert_eq!(w.ats("TEE", "POS"), 6);

    // More stock at WH does not grow the pooled channel's figure: it sees exactly its grant.
    let changes = w.mv(receipt("TEE", "WH", 5));
    assert_eq!(changes, vec![change("TEE", "WEB", 12, 17)]);
    assert_eq!(w.ats("TEE", "AMZ"), 4);

    // A pool of 0 removes it.
    let changes = w.run(pool("AMZ", "TEE", 0));
    assert_eq!(changes, vec![change("TEE", "WEB", 17, 21), change("TEE", "AMZ", 4, 15)]);
    assert_eq!(w.state.pool(&code("AMZ"), &sku("TEE")), 0);
}

#[test]
fn when_stock_is_short_the_higher_priority_pool_is_filled_first() {
    let mut w = pools_world();
    w.run(pool("AMZ", "TEE", 4));
    let changes = w.run(pool("WEB", "TEE", 8));
    // WEB (priority 1) draws first, from WH first: 8 of WH's 10. AMZ (priority 2) wants 4 at WH
    // but only 2 are left. POS sees ST's 6, untouched.
    assert_eq!(changes, vec![change("TEE", "WEB", 12, 8), change("TEE", "AMZ", 4, 2)]);
    assert_eq!(w.ats("TEE", "POS"), 6);

    let e = explain(&w, "TEE", "AMZ");
    assert_eq!(e.ats, 2);
    let t = e.stocked.unwrap();
    assert_eq!(t.pool, Some(4));
    assert_eq!(t.from_locations, 2);
    assert_eq!(t.locations, vec![loc_term("WH", 10, 0, 10, 8, 2)]);

    let changes = w.run(pool("WEB", "TEE", 14));
    // WEB takes WH 10 then ST 4 = 14; AMZ gets nothing; POS sees 6 − 4 = 2.
    assert_eq!(changes, vec![change("TEE", "WEB", 8, 14), change("TEE", "AMZ", 2, 0), change("TEE", "POS", 6, 2),]);
    let e = explain(&w, "TEE", "POS");
    assert_eq!(e.ats, 2);
    let t = e.stocked.unwrap();
    assert_eq!(t.pool, None);
    assert_eq!(t.locations, vec![loc_term("ST", 6, 0, 6, 4, 0)]);
    assert_eq!(t.from_locations, 2);
    let t = explain(&w, "TEE", "WEB").stocked.unwrap();
    assert_eq!(t.locations, vec![loc_term("WH", 10, 0, 10, 0, 10), loc_term("ST", 6, 0, 6, 0, 4)]);

    // 3 more at ST: WEB's grant is already full, so only POS gains: 9 − 4 = 5.
    let changes = w.mv(receipt("TEE", "ST", 3));
    assert_eq!(changes, vec![change("TEE", "POS", 2, 5)]);

    // Committing 5 at WH leaves WH 5: WEB now takes WH 5 + ST 9 = 14, and POS is left nothing.
    let changes = w.mv(commit("R1", "TEE", "WH", 5));
    assert_eq!(changes, vec![change("TEE", "POS", 5, 0)]);
    assert_eq!(w.ats("TEE", "WEB"), 14);

    // Dropping WEB's pool: AMZ takes 4 of WH's 5; WEB sees 1 + 9 = 10; POS 9.
    let changes = w.run(pool("WEB", "TEE", 0));
    assert_eq!(changes, vec![change("TEE", "WEB", 14, 10), change("TEE", "AMZ", 0, 4), change("TEE", "POS", 0, 9),]);
}

#[test]
fn pool_order_follows_priority_not_definition_order() {
    let mut w = World::new();
    w.run(location("WH", true));
    w.run(item("TEE"));
    w.run(plain_channel("LOW", &["WH"], 5));
    w.run(plain_channel("HIGH", &["WH"], 1));
    w.run(plain_channel("OPEN", &["WH"], 9));
    w.run(pool("LOW", "TEE", 5));
    w.run(pool("HIGH", "TEE", 5));
    w.mv(receipt("TEE", "WH", 6));
    // HIGH is defined later but ranks first: HIGH 5, LOW the last 1, nothing left for OPEN.
    assert_eq!((w.ats("TEE", "HIGH"), w.ats("TEE", "LOW"), w.ats("TEE", "OPEN")), (5, 1, 0));
    // With a safety stock of 2 at WH only 4 are sellable: HIGH 4, LOW 0.
    let changes = w.run(Command::SetSafetyStock { scope: SafetyStockScope::Location(code("WH")), units: 2 });
    assert_eq!(changes, vec![change("TEE", "LOW", 1, 0), change("TEE", "HIGH", 5, 4)]);
}

// ----- incoming within a window ------------------------------------------------------------

#[test]
fn incoming_counts_only_within_the_channel_window_and_at_its_locations() {
    let mut w = World::new();
    w.run(location("WH", true));
    w.run(location("ST", false));
    w.run(item("TEE"));
    w.run(channel("WEB", &["WH"], 1, policy(None, 0, Some(7))));
    w.run(plain_channel("B2B", &["WH"], 1));
    w.run(channel("STORE", &["ST"], 1, policy(None, 0, Some(30))));
    w.run(channel("MIX", &["WH"], 1, policy(Some(50), 1, Some(7))));
    w.mv(receipt("TEE", "WH", 3));
    // MIX: ⌊3 × 50%⌋ − 1 = 0.
    assert_eq!([w.ats("TEE", "WEB"), w.ats("TEE", "B2B"), w.ats("TEE", "STORE"), w.ats("TEE", "MIX")], [3, 3, 0, 0]);

    // Today is 2026-11-26; a 7-day window reaches 2026-12-03 inclusive.
    let changes = w.mv(expect("PO1", "TEE", "WH", 5, "2026-12-03"));
    // WEB 3 + 5 = 8; MIX ⌊8 × 50%⌋ − 1 = 3; B2B counts no incoming.
    assert_eq!(changes, vec![change("TEE", "WEB", 3, 8), change("TEE", "MIX", 0, 3)]);

    // One day past the window: nothing changes anywhere.
    let changes = w.mv(expect("PO2", "TEE", "WH", 7, "2026-12-04"));
    assert_eq!(changes, vec![]);

    // At ST, inside STORE's 30 days; WEB does not sell from ST.
    let changes = w.mv(expect("PO3", "TEE", "ST", 9, "2026-11-30"));
    assert_eq!(changes, vec![change("TEE", "STORE", 0, 9)]);

    let e = explain(&w, "TEE", "WEB");
    assert_eq!(e.ats, 8);
    let t = e.stocked.unwrap();
    assert_eq!(t.incoming_window_days, Some(7));
    let incoming: Vec<_> = t
        .incoming
        .iter()
        .map(|i| (i.expectation.to_string(), i.location.to_string(), i.expected_on, i.open, i.counted))
        .collect();
    assert_eq!(
        incoming,
        vec![
            ("PO1".into(), "WH".into(), date("2026-12-03"), 5, true),
            ("PO2".into(), "WH".into(), date("2026-12-04"), 7, false),
        ]
    );
    assert_eq!((t.from_locations, t.incoming_counted, t.before_cap), (3, 5, 8));

    let t = explain(&w, "TEE", "MIX").stocked.unwrap();
    assert_eq!((t.before_cap, t.after_cap, t.buffer), (8, 4, 1));

    // B2B has no window: incoming is listed but never counted.
    let t = explain(&w, "TEE", "B2B").stocked.unwrap();
    assert_eq!(t.incoming_window_days, None);
    assert!(t.incoming.iter().all(|i| !i.counted));
    assert_eq!(t.incoming.len(), 2);
    assert_eq!(t.incoming_counted, 0);

    // 2 of PO1 arrive: WH 5 on hand, PO1 3 open. WEB 5 + 3 = 8 and MIX ⌊4⌋ − 1 = 3 are
    // unchanged; only B2B (on-hand only) moves.
    let changes = w.mv(receipt_against("TEE", "WH", 2, "PO1"));
    assert_eq!(changes, vec![change("TEE", "B2B", 3, 5)]);

    // Cancelling PO1 drops its 3 from WEB and MIX: WEB 5, MIX ⌊2.5⌋ − 1 = 1.
    let changes = w.mv(cancel_expectation("PO1"));
    assert_eq!(changes, vec![change("TEE", "WEB", 8, 5), change("TEE", "MIX", 3, 1)]);
}

// ----- bundles -----------------------------------------------------------------------------

#[test]
fn a_bundle_offers_the_minimum_over_its_components() {
    let mut w = World::new();
    w.run(location("WH", true));
    w.run(item("A"));
    w.run(item("B"));
    w.run(bundle("KIT", &[("A", 3), ("B", 2)]));
    w.run(plain_channel("WEB", &["WH"], 1));
    w.mv(receipt("A", "WH", 10));
    // No B yet: ⌊0 / 2⌋ = 0.
    assert_eq!(w.ats("KIT", "WEB"), 0);
    let changes = w.mv(receipt("B", "WH", 5));
    // min(⌊10 / 3⌋, ⌊5 / 2⌋) = min(3, 2) = 2.
    assert_eq!(changes, vec![change("B", "WEB", 0, 5), change("KIT", "WEB", 0, 2)]);
    let changes = w.mv(receipt("B", "WH", 1));
    // min(3, ⌊6 / 2⌋ = 3) = 3.
    assert_eq!(changes, vec![change("B", "WEB", 5, 6), change("KIT", "WEB", 2, 3)]);
    let changes = w.mv(adjust("A", "WH", -2, ReasonCode::Lost));
    // min(⌊8 / 3⌋ = 2, 3) = 2.
    assert_eq!(changes, vec![change("A", "WEB", 10, 8), change("KIT", "WEB", 3, 2)]);

    let e = explain(&w, "KIT", "WEB");
    assert_eq!(e.ats, 2);
    assert!(e.stocked.is_none());
    let b = e.bundle.unwrap();
    assert!(b.sharing_with.is_empty());
    assert_eq!(
        b.components,
        vec![
            ComponentTerm { sku: sku("A"), per_bundle: 3, component_ats: 8, bundles_alone: 2, granted_units: 6 },
            ComponentTerm { sku: sku("B"), per_bundle: 2, component_ats: 6, bundles_alone: 3, granted_units: 4 },
        ]
    );
}

/// Component ATS per channel must cover what every bundle built from it promises.
fn assert_no_double_count(w: &World, component: &str, bundles: &[(&str, Units)]) {
    for c in w.state.channels() {
        let promised: Units = bundles.iter().map(|(b, q)| w.ats(b, c.code.as_str()) * q).sum();
        let own = w.ats(component, c.code.as_str());
        assert!(promised <= own, "{component} on {}: bundles promise {promised}, it offers {own}", c.code);
    }
}

#[test]
fn bundles_sharing_a_component_split_it_fairly() {
    let mut w = World::new();
    w.run(location("WH", true));
    w.run(item("A"));
    w.run(item("B"));
    w.run(item("C"));
    w.run(bundle("K1", &[("A", 2), ("B", 1)]));
    w.run(bundle("K2", &[("A", 1), ("C", 1)]));
    w.run(plain_channel("WEB", &["WH"], 1));
    w.run(channel("AMZ", &["WH"], 1, policy(Some(50), 0, None)));
    w.mv(receipt("B", "WH", 10));
    w.mv(receipt("C", "WH", 10));
    assert_eq!((w.ats("K1", "WEB"), w.ats("K2", "WEB")), (0, 0));

    let changes = w.mv(receipt("A", "WH", 10));
    // WEB: A 10, B 10, C 10. Alone K1 could take ⌊10/2⌋ = 5 and K2 10, i.e. 20 A's out of 10.
    //   Fair level L: 2·min(5, L) + min(10, L) ≤ 10 → L = 3 (9 A's). Leftover A = 1: K1 (first)
    //   needs 2, cannot; K2 needs 1, takes it → K1 3, K2 4 (3·2 + 4 = 10 A's).
    // AMZ (50%): A 5, B 5, C 5. K1 alone ⌊5/2⌋ = 2, K2 5. L: 2·min(2, L) + min(5, L) ≤ 5 → L = 1
    //   (3 A's). Leftover A = 2: K1 takes 1 more (up to its cap 2) → 0 left; K2 stays 1.
    //   → K1 2, K2 1 (2·2 + 1 = 5 A's).
    assert_eq!(
        changes,
        vec![
            change("A", "WEB", 0, 10),
            change("A", "AMZ", 0, 5),
            change("K1", "WEB", 0, 3),
            change("K1", "AMZ", 0, 2),
            change("K2", "WEB", 0, 4),
            change("K2", "AMZ", 0, 1),
        ]
    );
    assert_no_double_count(&w, "A", &[("K1", 2), ("K2", 1)]);
    assert_no_double_count(&w, "B", &[("K1", 1)]);
    assert_no_double_count(&w, "C", &[("K2", 1)]);

    let e = explain(&w, "K1", "WEB");
    assert_eq!(e.ats, 3);
    let b = e.bundle.unwrap();
    assert_eq!(b.sharing_with, vec![sku("K2")]);
    assert_eq!(
        b.components,
        vec![
            ComponentTerm { sku: sku("A"), per_bundle: 2, component_ats: 10, bundles_alone: 5, granted_units: 6 },
            ComponentTerm { sku: sku("B"), per_bundle: 1, component_ats: 10, bundles_alone: 10, granted_units: 3 },
        ]
    );
    let e = explain(&w, "K2", "AMZ");
    assert_eq!(e.ats, 1);
    let b = e.bundle.unwrap();
    assert_eq!(b.sharing_with, vec![sku("K1")]);
    assert_eq!(
        b.components,
        vec![
            ComponentTerm { sku: sku("A"), per_bundle: 1, component_ats: 5, bundles_alone: 5, granted_units: 1 },
            ComponentTerm { sku: sku("C"), per_bundle: 1, component_ats: 5, bundles_alone: 5, granted_units: 1 },
        ]
    );

    let changes = w.mv(receipt("A", "WH", 10));
    // WEB: A 20. K1 cap min(10, 10) = 10, K2 cap min(20, 10) = 10. 2L + L ≤ 20 → L = 6 (18 A's).
    //   Leftover A 2: K1 takes 1 more (2 A's) → K1 7, K2 6 (14 + 6 = 20).
    // AMZ: A 10, B 5, C 5. K1 cap min(5, 5) = 5, K2 cap min(10, 5) = 5. 3L ≤ 10 → L = 3.
    //   Leftover A 1: K1 needs 2, cannot; K2 takes 1 → K1 3, K2 4 (6 + 4 = 10).
    assert_eq!(
        changes,
        vec![
            change("A", "WEB", 10, 20),
            change("A", "AMZ", 5, 10),
            change("K1", "WEB", 3, 7),
            change("K1", "AMZ", 2, 3),
            change("K2", "WEB", 4, 6),
            change("K2", "AMZ", 1, 4),
        ]
    );
    assert_no_double_count(&w, "A", &[("K1", 2), ("K2", 1)]);

    // B runs short: K1 is capped by B at 2, so K2 may take the A's K1 no longer can.
    // WEB: A 20, B 2, C 10. K1 cap 2, K2 cap 10: 2·min(2, L) + min(10, L) ≤ 20 → L = 10
    //   (4 + 10 = 14 A's). → K1 2, K2 10. C: 10 ≤ 10.
    w.mv(adjust("B", "WH", -8, ReasonCode::Lost));
    assert_eq!((w.ats("K1", "WEB"), w.ats("K2", "WEB")), (2, 10));
    // AMZ: A 10, B 1, C 5. K1 cap 1, K2 cap 5: 2 + 5 = 7 ≤ 10 → K1 1, K2 5.
    assert_eq!((w.ats("K1", "AMZ"), w.ats("K2", "AMZ")), (1, 5));
    assert_no_double_count(&w, "A", &[("K1", 2), ("K2", 1)]);
}

#[test]
fn bundles_hold_no_stock_and_do_not_nest() {
    let mut w = World::new();
    w.run(location("WH", true));
    w.run(item("A"));
    w.run(item("C"));
    w.run(bundle("KIT", &[("A", 2)]));
    w.run(plain_channel("WEB", &["WH"], 1));
    w.mv(receipt("A", "WH", 5));
    let kit = || MoveRejection::BundleHasNoStock(sku("KIT"));
    assert_eq!(w.reject_move(receipt("KIT", "WH", 1)), kit());
    assert_eq!(w.reject_move(commit("R1", "KIT", "WH", 1)), kit());
    assert_eq!(w.reject_move(count("KIT", "WH", 3)), kit());
    assert_eq!(w.reject_move(adjust("KIT", "WH", 1, ReasonCode::Found)), kit());
    assert_eq!(w.reject_move(transfer_ship("T1", "KIT", "WH", "WH2", 1)), kit());
    assert_eq!(w.reject_move(expect("PO1", "KIT", "WH", 1, "2026-12-01")), kit());
    assert_eq!(w.reject_move(return_receipt("KIT", "WH", 1, None)), kit());
    assert_eq!(w.reject_move(hold("KIT", "WH", 1, ReasonCode::QualityHold)), kit());

    let catalog = |r: Rejection| match r {
        Rejection::Catalog(c) => c,
        other => panic!("expected a catalog rejection, got {other:?}"),
    };
    assert_eq!(
        catalog(w.reject(bundle("BIG", &[("KIT", 1), ("A", 1)]))),
        CatalogRejection::NestedBundle { bundle: sku("BIG"), component: sku("KIT") }
    );
    assert_eq!(
        catalog(w.reject(bundle("A", &[("C", 1)]))),
        CatalogRejection::ComponentCannotBecomeBundle { sku: sku("A"), bundle: sku("KIT") }
    );
    assert_eq!(
        catalog(w.reject(bundle("BIG", &[("A", 1), ("A", 2)]))),
        CatalogRejection::DuplicateComponent { bundle: sku("BIG"), component: sku("A") }
    );
    assert_eq!(
        catalog(w.reject(bundle("BIG", &[("A", 0)]))),
        CatalogRejection::ZeroComponentQuantity { bundle: sku("BIG"), component: sku("A") }
    );
    assert_eq!(catalog(w.reject(bundle("BIG", &[("NOPE", 1)]))), CatalogRejection::UnknownSku(sku("NOPE")));
    // The bundle's figure is untouched by all that: ⌊5 / 2⌋ = 2.
    assert_eq!(w.ats("KIT", "WEB"), 2);
}

#[test]
fn reversal_cannot_put_stock_into_an_item_that_became_a_bundle() {
    let mut w = World::new();
    w.run(location("WH", true));
    w.run(item("A"));
    w.run(item("X"));
    w.run(plain_channel("WEB", &["WH"], 1));
    w.mv(adjust("X", "WH", 3, ReasonCode::Found));
    let minus = w.mv_seq(adjust("X", "WH", -3, ReasonCode::Lost));
    // X is back to nothing at all (adjustment −3 + 3 = 0), so it may become a bundle.
    assert_eq!(w.outsides("X"), [0; 4]);
    w.run(bundle("X", &[("A", 1)]));
    // Reversing the −3 would book 3 units into the bundle's own `available`.
    assert_eq!(w.reject_move(reverse(minus, ReasonCode::DataCorrection)), MoveRejection::BundleHasNoStock(sku("X")));
    assert!(w.state.stock_rows().iter().all(|r| r.sku != sku("X")));
}

// ----- AvailabilityChanged -------------------------------------------------------------------

#[test]
fn refresh_publishes_exactly_what_changed() {
    let mut w = World::new();
    w.run(location("WH", true));
    w.run(location("ST", false));
    w.run(item("TEE"));
    w.run(item("MUG"));
    w.run(plain_channel("WEB", &["WH", "ST"], 1));
    w.run(plain_channel("POS", &["ST"], 2));

    let step = |w: &mut World, m, expected: Vec<AvailabilityChanged>| {
        let before = ats_table(w);
        let changes = w.mv(m);
        assert_eq!(changes, expected);
        // The published changes are exactly the difference between the two tables.
        let after = ats_table(w);
        let diff: Vec<AvailabilityChanged> =
            before.iter().zip(&after).filter(|(b, a)| b.2 != a.2).map(|(b, a)| change(&b.0, &b.1, b.2, a.2)).collect();
        assert_eq!(changes, diff);
        // Nothing is left pending.
        assert_eq!(w.state.refresh_availability(w.now), vec![]);
    };

    // 10 at WH: WEB sees it, POS (ST only) does not, MUG untouched.
    step(&mut w, receipt("TEE", "WH", 10), vec![change("TEE", "WEB", 0, 10)]);
    // 4 leave WH for ST: in transit counts nowhere, WEB 6.
    step(&mut w, transfer_ship("T1", "TEE", "WH", "ST", 4), vec![change("TEE", "WEB", 10, 6)]);
    // They arrive at ST: WEB 6 + 4 = 10, POS 4.
    step(&mut w, transfer_receive("T1", 4), vec![change("TEE", "WEB", 6, 10), change("TEE", "POS", 0, 4)]);
    // MUG moves; TEE is not republished.
    step(&mut w, receipt("MUG", "ST", 5), vec![change("MUG", "WEB", 0, 5), change("MUG", "POS", 0, 5)]);
    step(
        &mut w,
        hold("TEE", "ST", 1, ReasonCode::CustomerHold),
        vec![change("TEE", "WEB", 10, 9), change("TEE", "POS", 4, 3)],
    );
    // A count that matches (ST has 4 on hand) and a return into quality control change no figure.
    step(&mut w, count("TEE", "ST", 4), vec![]);
    step(&mut w, return_receipt("MUG", "WH", 2, None), vec![]);
    // A commit at WH: WEB 9 − 2 = 7, POS unaffected.
    step(&mut w, commit("R1", "TEE", "WH", 2), vec![change("TEE", "WEB", 9, 7)]);
}
