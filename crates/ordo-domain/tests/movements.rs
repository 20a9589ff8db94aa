//! Worked examples of every movement, and of the rejections that must leave the state untouched.
//!
//! Buckets are written `[available, committed, picked, reserved, quality_control, damaged]`,
//! then units in transit towards the location, then units expected there. Outside accounts are
//! written `[supplier, customer, adjustment, write_off]`: they carry the other side of every unit
//! that entered (negative) or left (positive) the business.

mod support;

use ordo_domain::catalog::CatalogRejection;
use ordo_domain::inventory::{Disposition, MoveRejection, MovementKind, OutsideAccount, ReasonCode, StockState};
use ordo_domain::{Command, Event, Rejection};
use support::*;

/// seq 1 ACME, 2 WH (accepts returns), 3 ST (does not), 4 TEE, 5 MUG, 6 channel WEB [WH, ST].
fn world() -> World {
    let mut w = World::new();
    w.run(location("WH", true));
    w.run(location("ST", false));
    w.run(item("TEE"));
    w.run(item("MUG"));
    w.run(plain_channel("WEB", &["WH", "ST"], 1));
    assert_eq!(w.last_seq(), 6);
    w
}

fn last_movement(w: &World) -> &ordo_domain::inventory::Movement {
    match w.events.last().map(Event::effect) {
        Some(Event::Moved(m)) => m,
        other => panic!("last event is not a movement: {other:?}"),
    }
}

#[test]
fn receipt_books_supplier_units_into_available() {
    let mut w = world();
    w.mv(receipt("TEE", "WH", 10));
    // 10 units in from the supplier: available 10, supplier −10.
    assert_eq!(w.b("TEE", "WH"), buckets([10, 0, 0, 0, 0, 0], 0, 0));
    assert_eq!(w.b("TEE", "WH").on_hand(), 10);
    assert_eq!(w.outsides("TEE"), [-10, 0, 0, 0]);
    // Nothing else moved.
    assert_eq!(w.b("TEE", "ST"), buckets([0; 6], 0, 0));
    assert_eq!(w.outsides("MUG"), [0; 4]);
    w.mv(receipt("TEE", "WH", 5));
    assert_eq!(w.b("TEE", "WH"), buckets([15, 0, 0, 0, 0, 0], 0, 0));
    assert_eq!(w.outsides("TEE"), [-15, 0, 0, 0]);
    assert_eq!(w.ats("TEE", "WEB"), 15);
    w.assert_conserved("TEE");
}

#[test]
fn receipt_against_an_expectation_shrinks_incoming() {
    let mut w = world();
    w.mv(expect("PO1", "TEE", "WH", 8, "2026-12-01"));
    // A promise of 8: incoming 8 (not stock), supplier −8.
    assert_eq!(w.b("TEE", "WH"), buckets([0; 6], 0, 8));
    assert_eq!(w.outsides("TEE"), [-8, 0, 0, 0]);
    let e = w.state.expectation(&code("PO1")).unwrap();
    assert_eq!((e.expected, e.open), (8, 8));
    assert_eq!(e.expected_on, date("2026-12-01"));

    w.mv(receipt_against("TEE", "WH", 5, "PO1"));
    // 5 arrive: available 5, incoming 8 − 5 = 3; supplier −8 − 5 + 5 = −8.
    assert_eq!(w.b("TEE", "WH"), buckets([5, 0, 0, 0, 0, 0], 0, 3));
    assert_eq!(w.outsides("TEE"), [-8, 0, 0, 0]);
    assert_eq!(w.state.expectation(&code("PO1")).unwrap().open, 3);
    let m = last_movement(&w);
    assert_eq!(m.kind, MovementKind::Receipt);
    assert_eq!(m.reference, Some(code("PO1")));

    // Over-delivery: 6 arrive against the 3 still open. All 6 are stocked; only 3 close the PO.
    // available 11, incoming 0, supplier −8 − 6 + 3 = −11.
    w.mv(receipt_against("TEE", "WH", 6, "PO1"));
    assert_eq!(w.b("TEE", "WH"), buckets([11, 0, 0, 0, 0, 0], 0, 0));
    assert_eq!(w.outsides("TEE"), [-11, 0, 0, 0]);
    let e = w.state.expectation(&code("PO1")).unwrap();
    assert_eq!((e.expected, e.open), (8, 0));
    w.assert_conserved("TEE");

    // Nothing left to cancel.
    assert_eq!(
        w.reject_move(cancel_expectation("PO1")),
        MoveRejection::NothingOpen { kind: "expectation", reference: code("PO1") }
    );
}

#[test]
fn expect_then_cancel_closes_what_is_left() {
    let mut w = world();
    w.mv(expect("PO2", "MUG", "ST", 12, "2026-12-10"));
    assert_eq!(w.b("MUG", "ST"), buckets([0; 6], 0, 12));
    w.mv(receipt_against("MUG", "ST", 4, "PO2"));
    // available 4, incoming 12 − 4 = 8, supplier −12 − 4 + 4 = −12.
    assert_eq!(w.b("MUG", "ST"), buckets([4, 0, 0, 0, 0, 0], 0, 8));
    assert_eq!(w.outsides("MUG"), [-12, 0, 0, 0]);

    w.mv(cancel_expectation("PO2"));
    // The 8 still open go back to the supplier: incoming 0, supplier −12 + 8 = −4.
    assert_eq!(w.b("MUG", "ST"), buckets([4, 0, 0, 0, 0, 0], 0, 0));
    assert_eq!(w.outsides("MUG"), [-4, 0, 0, 0]);
    let e = w.state.expectation(&code("PO2")).unwrap();
    assert_eq!((e.expected, e.open), (12, 0));
    assert_eq!(last_movement(&w).kind, MovementKind::CancelExpectation);
    w.assert_conserved("MUG");

    assert_eq!(
        w.reject_move(cancel_expectation("PO2")),
        MoveRejection::NothingOpen { kind: "expectation", reference: code("PO2") }
    );
    assert_eq!(
        w.reject_move(expect("PO2", "MUG", "ST", 1, "2026-12-10")),
        MoveRejection::ReferenceExists { kind: "expectation", reference: code("PO2") }
    );
    assert_eq!(
        w.reject_move(cancel_expectation("PO404")),
        MoveRejection::UnknownReference { kind: "expectation", reference: code("PO404") }
    );
}

#[test]
fn receipt_against_the_wrong_expectation_is_rejected() {
    let mut w = world();
    w.mv(expect("PO3", "MUG", "ST", 5, "2026-12-10"));
    assert_eq!(
        w.reject_move(receipt_against("TEE", "ST", 1, "PO3")),
        MoveRejection::ExpectationMismatch {
            expectation: code("PO3"),
            expected_sku: sku("MUG"),
            expected_location: code("ST"),
            sku: sku("TEE"),
            location: code("ST"),
        }
    );
    assert_eq!(
        w.reject_move(receipt_against("MUG", "WH", 1, "PO3")),
        MoveRejection::ExpectationMismatch {
            expectation: code("PO3"),
            expected_sku: sku("MUG"),
            expected_location: code("ST"),
            sku: sku("MUG"),
            location: code("WH"),
        }
    );
    assert_eq!(
        w.reject_move(receipt_against("MUG", "ST", 1, "PO9")),
        MoveRejection::UnknownReference { kind: "expectation", reference: code("PO9") }
    );
    assert_eq!(w.reject_move(expect("PO4", "MUG", "ST", 0, "2026-12-10")), MoveRejection::QuantityNotPositive(0));
}

#[test]
fn transfer_ships_into_transit_and_receives_in_parts() {
    let mut w = world();
    w.mv(receipt("TEE", "WH", 10));
    w.mv(transfer_ship("T1", "TEE", "WH", "ST", 6));
    // WH available 10 − 6 = 4; 6 in transit towards ST (not on hand anywhere).
    assert_eq!(w.b("TEE", "WH"), buckets([4, 0, 0, 0, 0, 0], 0, 0));
    assert_eq!(w.b("TEE", "ST"), buckets([0; 6], 6, 0));
    let t = w.state.transfer(&code("T1")).unwrap();
    assert_eq!((t.shipped, t.in_transit), (6, 6));
    assert_eq!((t.from.clone(), t.to.clone()), (code("WH"), code("ST")));
    // 4 on hand + 6 in transit − 10 from the supplier = 0.
    w.assert_conserved("TEE");
    assert_eq!(w.ats("TEE", "WEB"), 4);

    w.mv(transfer_receive("T1", 4));
    // ST available 4, still 6 − 4 = 2 in transit.
    assert_eq!(w.b("TEE", "ST"), buckets([4, 0, 0, 0, 0, 0], 2, 0));
    assert_eq!(w.state.transfer(&code("T1")).unwrap().in_transit, 2);

    assert_eq!(
        w.reject_move(transfer_receive("T1", 3)),
        MoveRejection::ExceedsOpen { kind: "transfer", reference: code("T1"), open: 2, requested: 3 }
    );

    w.mv(transfer_receive("T1", 2));
    assert_eq!(w.b("TEE", "ST"), buckets([6, 0, 0, 0, 0, 0], 0, 0));
    assert_eq!(w.b("TEE", "WH"), buckets([4, 0, 0, 0, 0, 0], 0, 0));
    let t = w.state.transfer(&code("T1")).unwrap();
    assert_eq!((t.shipped, t.in_transit), (6, 0));
    assert_eq!(w.outsides("TEE"), [-10, 0, 0, 0]);
    assert_eq!(w.ats("TEE", "WEB"), 10);
    w.assert_conserved("TEE");

    assert_eq!(
        w.reject_move(transfer_receive("T1", 1)),
        MoveRejection::ExceedsOpen { kind: "transfer", reference: code("T1"), open: 0, requested: 1 }
    );
    assert_eq!(
        w.reject_move(transfer_ship("T1", "TEE", "WH", "ST", 1)),
        MoveRejection::ReferenceExists { kind: "transfer", reference: code("T1") }
    );
    assert_eq!(
        w.reject_move(transfer_ship("T2", "TEE", "WH", "WH", 1)),
        MoveRejection::TransferToSameLocation(code("WH"))
    );
    assert_eq!(
        w.reject_move(transfer_ship("T2", "TEE", "WH", "ST", 5)),
        MoveRejection::InsufficientStock { sku: sku("TEE"), account: "available@WH".into(), balance: 4, needed: 5 }
    );
    assert_eq!(
        w.reject_move(transfer_ship("T2", "TEE", "WH", "NOWHERE", 1)),
        MoveRejection::UnknownLocation(code("NOWHERE"))
    );
    assert_eq!(
        w.reject_move(transfer_receive("T9", 1)),
        MoveRejection::UnknownReference { kind: "transfer", reference: code("T9") }
    );
    assert_eq!(w.reject_move(transfer_receive("T1", 0)), MoveRejection::QuantityNotPositive(0));
}

#[test]
fn commit_release_pick_ship_two_phase() {
    let mut w = world();
    w.mv(receipt("TEE", "WH", 10));
    w.mv(commit("R1", "TEE", "WH", 7));
    // available 10 − 7 = 3, committed 7.
    assert_eq!(w.b("TEE", "WH"), buckets([3, 7, 0, 0, 0, 0], 0, 0));
    assert_eq!(w.ats("TEE", "WEB"), 3);

    w.mv(release("R1", Some(2)));
    // Partial release: committed 5, available 5.
    assert_eq!(w.b("TEE", "WH"), buckets([5, 5, 0, 0, 0, 0], 0, 0));
    let r = w.state.reservation_record(&code("R1")).unwrap();
    assert_eq!((r.committed, r.picked, r.shipped, r.released), (5, 0, 0, 2));

    w.mv(pick("R1", 3));
    // committed 2, picked 3.
    assert_eq!(w.b("TEE", "WH"), buckets([5, 2, 3, 0, 0, 0], 0, 0));

    assert_eq!(
        w.reject_move(ship("R1", 4)),
        MoveRejection::NotPicked { reservation: code("R1"), picked: 3, committed: 2, requested: 4 }
    );
    assert_eq!(
        w.reject_move(pick("R1", 3)),
        MoveRejection::ExceedsOpen { kind: "reservation", reference: code("R1"), open: 2, requested: 3 }
    );

    w.mv(ship("R1", 3));
    // The 3 picked leave to the customer: on hand 5 + 2 = 7; customer +3.
    assert_eq!(w.b("TEE", "WH"), buckets([5, 2, 0, 0, 0, 0], 0, 0));
    assert_eq!(w.b("TEE", "WH").on_hand(), 7);
    assert_eq!(w.outsides("TEE"), [-10, 3, 0, 0]);
    w.assert_conserved("TEE");

    // Release with no quantity releases all that is still committed (2).
    w.mv(release("R1", None));
    assert_eq!(w.b("TEE", "WH"), buckets([7, 0, 0, 0, 0, 0], 0, 0));
    let r = w.state.reservation_record(&code("R1")).unwrap();
    assert_eq!((r.committed, r.picked, r.shipped, r.released), (0, 0, 3, 4));
    assert_eq!(w.ats("TEE", "WEB"), 7);

    assert_eq!(
        w.reject_move(release("R1", None)),
        MoveRejection::NothingOpen { kind: "reservation", reference: code("R1") }
    );
    assert_eq!(
        w.reject_move(release("R1", Some(1))),
        MoveRejection::ExceedsOpen { kind: "reservation", reference: code("R1"), open: 0, requested: 1 }
    );
    assert_eq!(
        w.reject_move(commit("R1", "TEE", "WH", 1)),
        MoveRejection::ReferenceExists { kind: "reservation", reference: code("R1") }
    );
    assert_eq!(
        w.reject_move(commit("R2", "TEE", "WH", 8)),
        MoveRejection::InsufficientStock { sku: sku("TEE"), account: "available@WH".into(), balance: 7, needed: 8 }
    );
    assert_eq!(
        w.reject_move(pick("R9", 1)),
        MoveRejection::UnknownReference { kind: "reservation", reference: code("R9") }
    );
    assert_eq!(w.reject_move(release("R1", Some(-1))), MoveRejection::QuantityNotPositive(-1));
    assert_eq!(w.reject_move(commit("R2", "TEE", "WH", 0)), MoveRejection::QuantityNotPositive(0));
}

#[test]
fn returns_go_to_quality_control_then_are_disposed() {
    let mut w = world();
    w.mv(return_receipt("TEE", "WH", 3, Some("RMA1")));
    // The customer sends 3 back: quality_control 3, customer −3.
    assert_eq!(w.b("TEE", "WH"), buckets([0, 0, 0, 0, 3, 0], 0, 0));
    assert_eq!(w.outsides("TEE"), [0, -3, 0, 0]);
    assert_eq!(last_movement(&w).reference, Some(code("RMA1")));
    // Units in quality control are not sellable.
    assert_eq!(w.ats("TEE", "WEB"), 0);

    assert_eq!(
        w.reject_move(return_receipt("TEE", "ST", 1, None)),
        MoveRejection::LocationDoesNotAcceptReturns { location: code("ST") }
    );

    w.mv(dispose("TEE", "WH", 1, Disposition::Restock));
    assert_eq!(w.b("TEE", "WH"), buckets([1, 0, 0, 0, 2, 0], 0, 0));
    assert_eq!(last_movement(&w).kind, MovementKind::Restock);
    assert_eq!(w.ats("TEE", "WEB"), 1);

    w.mv(dispose("TEE", "WH", 1, Disposition::Damaged));
    assert_eq!(w.b("TEE", "WH"), buckets([1, 0, 0, 0, 1, 1], 0, 0));
    assert_eq!(last_movement(&w).kind, MovementKind::Damage);

    w.mv(dispose("TEE", "WH", 1, Disposition::WriteOff));
    // Written-off units leave the books: write_off +1.
    assert_eq!(w.b("TEE", "WH"), buckets([1, 0, 0, 0, 0, 1], 0, 0));
    assert_eq!(w.outsides("TEE"), [0, -3, 0, 1]);
    assert_eq!(last_movement(&w).kind, MovementKind::WriteOff);

    assert_eq!(
        w.reject_move(dispose("TEE", "WH", 1, Disposition::Restock)),
        MoveRejection::InsufficientStock {
            sku: sku("TEE"),
            account: "quality_control@WH".into(),
            balance: 0,
            needed: 1
        }
    );

    // The damaged unit is written off with a reason.
    w.mv(write_off("TEE", "WH", 1, ReasonCode::Damaged));
    assert_eq!(w.b("TEE", "WH"), buckets([1, 0, 0, 0, 0, 0], 0, 0));
    assert_eq!(last_movement(&w).reason, Some(ReasonCode::Damaged));
    // 1 on hand; customer −3, write_off +2: 1 − 3 + 2 = 0.
    assert_eq!(w.outsides("TEE"), [0, -3, 0, 2]);
    w.assert_conserved("TEE");
    assert_eq!(
        w.reject_move(write_off("TEE", "WH", 1, ReasonCode::Damaged)),
        MoveRejection::InsufficientStock { sku: sku("TEE"), account: "damaged@WH".into(), balance: 0, needed: 1 }
    );
}

#[test]
fn hold_and_unhold_move_between_available_and_reserved() {
    let mut w = world();
    w.mv(receipt("MUG", "WH", 10));
    w.mv(hold("MUG", "WH", 4, ReasonCode::QualityHold));
    assert_eq!(w.b("MUG", "WH"), buckets([6, 0, 0, 4, 0, 0], 0, 0));
    assert_eq!(last_movement(&w).reason, Some(ReasonCode::QualityHold));
    assert_eq!(w.ats("MUG", "WEB"), 6);

    assert_eq!(
        w.reject_move(unhold("MUG", "WH", 5)),
        MoveRejection::InsufficientStock { sku: sku("MUG"), account: "reserved@WH".into(), balance: 4, needed: 5 }
    );
    assert_eq!(
        w.reject_move(hold("MUG", "WH", 7, ReasonCode::CustomerHold)),
        MoveRejection::InsufficientStock { sku: sku("MUG"), account: "available@WH".into(), balance: 6, needed: 7 }
    );

    w.mv(unhold("MUG", "WH", 3));
    assert_eq!(w.b("MUG", "WH"), buckets([9, 0, 0, 1, 0, 0], 0, 0));
    assert_eq!(w.outsides("MUG"), [-10, 0, 0, 0]);
    assert_eq!(w.ats("MUG", "WEB"), 9);
    w.assert_conserved("MUG");
}

#[test]
fn count_books_the_difference_against_available() {
    let mut w = world();
    w.mv(receipt("TEE", "WH", 10));
    w.mv(commit("R1", "TEE", "WH", 3));
    w.mv(hold("TEE", "WH", 2, ReasonCode::CustomerHold));
    // available 5, committed 3, reserved 2: on hand 10, of which 5 not available.
    assert_eq!(w.b("TEE", "WH"), buckets([5, 3, 0, 2, 0, 0], 0, 0));

    w.mv(count("TEE", "WH", 8));
    // 8 counted vs 10 on hand: −2, booked to available (5 → 3), adjustment +2.
    assert_eq!(w.b("TEE", "WH"), buckets([3, 3, 0, 2, 0, 0], 0, 0));
    assert_eq!(w.outsides("TEE"), [-10, 0, 2, 0]);
    let m = last_movement(&w);
    assert_eq!(m.kind, MovementKind::Count { counted_on_hand: 8 });
    assert_eq!(m.reason, Some(ReasonCode::CountCorrection));

    assert_eq!(
        w.reject_move(count("TEE", "WH", 4)),
        MoveRejection::CountBelowUnavailableStock { counted: 4, not_available: 5 }
    );
    assert_eq!(w.reject_move(count("TEE", "WH", -1)), MoveRejection::NegativeCount(-1));

    // Exactly the unavailable units: available goes to 0.
    w.mv(count("TEE", "WH", 5));
    assert_eq!(w.b("TEE", "WH"), buckets([0, 3, 0, 2, 0, 0], 0, 0));
    assert_eq!(w.outsides("TEE"), [-10, 0, 5, 0]);

    w.mv(count("TEE", "WH", 12));
    // 12 vs 5: +7 found, available 7, adjustment 5 − 7 = −2.
    assert_eq!(w.b("TEE", "WH"), buckets([7, 3, 0, 2, 0, 0], 0, 0));
    assert_eq!(w.outsides("TEE"), [-10, 0, -2, 0]);

    // A count that matches books nothing.
    let before = w.state.buckets(&sku("TEE"), &code("WH"));
    w.mv(count("TEE", "WH", 12));
    assert!(last_movement(&w).postings.is_empty());
    assert_eq!(w.b("TEE", "WH"), before);
    assert_eq!(w.outsides("TEE"), [-10, 0, -2, 0]);
    w.assert_conserved("TEE");

    // A count at a location that never held the SKU.
    w.mv(count("MUG", "ST", 4));
    assert_eq!(w.b("MUG", "ST"), buckets([4, 0, 0, 0, 0, 0], 0, 0));
    assert_eq!(w.outsides("MUG"), [0, 0, -4, 0]);
}

#[test]
fn adjust_books_a_signed_delta_with_a_reason() {
    let mut w = world();
    w.mv(receipt("TEE", "WH", 10));
    w.mv(adjust("TEE", "WH", -3, ReasonCode::Lost));
    assert_eq!(w.b("TEE", "WH"), buckets([7, 0, 0, 0, 0, 0], 0, 0));
    assert_eq!(w.outsides("TEE"), [-10, 0, 3, 0]);
    let m = last_movement(&w);
    assert_eq!((m.kind.clone(), m.reason), (MovementKind::Adjust, Some(ReasonCode::Lost)));

    w.mv(adjust("TEE", "WH", 2, ReasonCode::Found));
    // 7 + 2 = 9; adjustment 3 − 2 = 1.
    assert_eq!(w.b("TEE", "WH"), buckets([9, 0, 0, 0, 0, 0], 0, 0));
    assert_eq!(w.outsides("TEE"), [-10, 0, 1, 0]);
    w.assert_conserved("TEE");

    assert_eq!(
        w.reject_move(adjust("TEE", "WH", -10, ReasonCode::Theft)),
        MoveRejection::InsufficientStock { sku: sku("TEE"), account: "available@WH".into(), balance: 9, needed: 10 }
    );
    assert_eq!(w.reject_move(adjust("TEE", "WH", 0, ReasonCode::Other)), MoveRejection::ZeroAdjustment);
    assert_eq!(w.reject_move(adjust("TEE", "WH", i64::MIN, ReasonCode::Other)), MoveRejection::QuantityOutOfRange);
    let too_many = ordo_domain::inventory::MAX_UNITS_PER_MOVEMENT + 1;
    assert_eq!(w.reject_move(adjust("TEE", "WH", too_many, ReasonCode::Found)), MoveRejection::QuantityOutOfRange);
    assert_eq!(w.reject_move(receipt("TEE", "WH", too_many)), MoveRejection::QuantityOutOfRange);
}

#[test]
fn reverse_undoes_once_and_only_reversible_kinds() {
    let mut w = world();
    let receipt_seq = w.mv_seq(receipt("TEE", "WH", 10));
    assert_eq!(receipt_seq, 7);
    let adjust_seq = w.mv_seq(adjust("TEE", "WH", -3, ReasonCode::Lost));
    assert_eq!(w.b("TEE", "WH").available(), 7);

    let reversal_seq = w.mv_seq(reverse(adjust_seq, ReasonCode::DataCorrection));
    // The −3 is undone: available 10, adjustment back to 0.
    assert_eq!(w.b("TEE", "WH"), buckets([10, 0, 0, 0, 0, 0], 0, 0));
    assert_eq!(w.outsides("TEE"), [-10, 0, 0, 0]);
    let m = last_movement(&w);
    assert_eq!(m.kind, MovementKind::Reversal { of: adjust_seq });
    assert_eq!(m.reason, Some(ReasonCode::DataCorrection));

    assert_eq!(
        w.reject_move(reverse(adjust_seq, ReasonCode::DataCorrection)),
        MoveRejection::AlreadyReversed { movement: adjust_seq, by: reversal_seq }
    );
    // A reversal itself cannot be reversed.
    assert!(matches!(
        w.reject_move(reverse(reversal_seq, ReasonCode::Other)),
        MoveRejection::NotReversible { movement, .. } if movement == reversal_seq
    ));

    let commit_seq = w.mv_seq(commit("R1", "TEE", "WH", 4));
    assert!(matches!(
        w.reject_move(reverse(commit_seq, ReasonCode::Other)),
        MoveRejection::NotReversible { movement, .. } if movement == commit_seq
    ));
    // A master-data event is not a movement at all.
    assert!(matches!(w.reject_move(reverse(1, ReasonCode::Other)), MoveRejection::NotReversible { movement: 1, .. }));
    assert_eq!(w.reject_move(reverse(999, ReasonCode::Other)), MoveRejection::UnknownMovement(999));
    assert_eq!(w.reject_move(reverse(0, ReasonCode::Other)), MoveRejection::UnknownMovement(0));
    // Undoing the receipt would take 10 from available, which holds 10 − 4 committed = 6.
    assert_eq!(
        w.reject_move(reverse(receipt_seq, ReasonCode::DataCorrection)),
        MoveRejection::InsufficientStock { sku: sku("TEE"), account: "available@WH".into(), balance: 6, needed: 10 }
    );
    w.mv(release("R1", None));
    w.mv(reverse(receipt_seq, ReasonCode::DataCorrection));
    assert_eq!(w.b("TEE", "WH"), buckets([0; 6], 0, 0));
    assert_eq!(w.outsides("TEE"), [0; 4]);
    assert_eq!(w.ats("TEE", "WEB"), 0);
}

#[test]
fn reversing_a_receipt_against_an_expectation_reopens_it() {
    let mut w = world();
    w.mv(expect("PO1", "TEE", "WH", 8, "2026-12-01"));
    let seq = w.mv_seq(receipt_against("TEE", "WH", 5, "PO1"));
    assert_eq!(w.b("TEE", "WH"), buckets([5, 0, 0, 0, 0, 0], 0, 3));
    w.mv(reverse(seq, ReasonCode::DataCorrection));
    // Back to before the receipt: nothing on hand, 8 expected, supplier −8.
    assert_eq!(w.b("TEE", "WH"), buckets([0; 6], 0, 8));
    assert_eq!(w.state.expectation(&code("PO1")).unwrap().open, 8);
    assert_eq!(w.outsides("TEE"), [-8, 0, 0, 0]);
    w.assert_conserved("TEE");
}

#[test]
fn unknown_sku_and_location_are_rejected_first() {
    let w = world();
    assert_eq!(w.reject_move(receipt("NOPE", "WH", 1)), MoveRejection::UnknownSku(sku("NOPE")));
    assert_eq!(w.reject_move(receipt("TEE", "NOWHERE", 1)), MoveRejection::UnknownLocation(code("NOWHERE")));
    // Quantity is checked before the SKU.
    assert_eq!(w.reject_move(receipt("NOPE", "WH", -2)), MoveRejection::QuantityNotPositive(-2));
    assert_eq!(
        w.reject_move(hold("TEE", "WH", 1, ReasonCode::QualityHold)),
        MoveRejection::InsufficientStock { sku: sku("TEE"), account: "available@WH".into(), balance: 0, needed: 1 }
    );
}

#[test]
fn catalog_rejections_change_nothing() {
    let mut w = world();
    w.run(bundle("KIT", &[("TEE", 1), ("MUG", 2)]));
    let catalog = |r: Rejection| match r {
        Rejection::Catalog(c) => c,
        other => panic!("expected a catalog rejection, got {other:?}"),
    };
    assert_eq!(catalog(w.reject(pool("WEB", "TEE", -1))), CatalogRejection::NegativePool(-1));
    assert_eq!(catalog(w.reject(pool("NOPE", "TEE", 1))), CatalogRejection::UnknownChannel(code("NOPE")));
    assert_eq!(catalog(w.reject(pool("WEB", "KIT", 1))), CatalogRejection::BundleHasNoStock(sku("KIT")));
    assert_eq!(
        catalog(w.reject(Command::SetSafetyStock {
            scope: ordo_domain::catalog::SafetyStockScope::Sku(sku("KIT")),
            units: 1
        })),
        CatalogRejection::BundleHasNoStock(sku("KIT"))
    );
    assert_eq!(
        catalog(w.reject(Command::SetSafetyStock {
            scope: ordo_domain::catalog::SafetyStockScope::Location(code("WH")),
            units: -1
        })),
        CatalogRejection::NegativeSafetyStock(-1)
    );
    assert_eq!(
        catalog(w.reject(channel("BAD", &["WH", "WH"], 1, policy(None, 0, None)))),
        CatalogRejection::DuplicateLocation(code("WH"))
    );
    assert_eq!(
        catalog(w.reject(channel("BAD", &["WH"], 1, policy(Some(0), 0, None)))),
        CatalogRejection::InvalidPercentage(0)
    );
    assert_eq!(
        catalog(w.reject(channel("BAD", &["WH"], 1, policy(Some(101), 0, None)))),
        CatalogRejection::InvalidPercentage(101)
    );
    assert_eq!(
        catalog(w.reject(channel("BAD", &["WH"], 1, policy(None, -1, None)))),
        CatalogRejection::NegativeBuffer(-1)
    );
    assert_eq!(catalog(w.reject(channel("BAD", &["WH"], 0, policy(None, 0, None)))), CatalogRejection::InvalidPriority);
    assert_eq!(
        catalog(w.reject(channel("BAD", &[], 1, policy(None, 0, None)))),
        CatalogRejection::ChannelWithoutLocations(code("BAD"))
    );
    // A stocked SKU cannot turn into a bundle.
    w.mv(receipt("MUG", "ST", 1));
    assert_eq!(
        catalog(w.reject(bundle("CAP", &[("CAP", 1)]))),
        CatalogRejection::BundleContainsItself { bundle: sku("CAP") }
    );
    w.run(item("CAP"));
    w.mv(receipt("CAP", "ST", 1));
    assert_eq!(
        catalog(w.reject(bundle("CAP", &[("MUG", 1)]))),
        CatalogRejection::StockedItemCannotBecomeBundle { sku: sku("CAP") }
    );
}

#[test]
fn stock_states_sum_to_on_hand() {
    let mut w = world();
    w.mv(receipt("TEE", "WH", 20));
    w.mv(commit("R1", "TEE", "WH", 6));
    w.mv(pick("R1", 2));
    w.mv(hold("TEE", "WH", 3, ReasonCode::Promotion));
    w.mv(return_receipt("TEE", "WH", 4, None));
    w.mv(dispose("TEE", "WH", 1, Disposition::Damaged));
    // available 20 − 6 − 3 = 11, committed 4, picked 2, reserved 3, qc 3, damaged 1.
    let b = w.b("TEE", "WH");
    assert_eq!(b, buckets([11, 4, 2, 3, 3, 1], 0, 0));
    assert_eq!(b.on_hand(), 24);
    for (state, expected) in StockState::ALL.into_iter().zip([11, 4, 2, 3, 3, 1]) {
        assert_eq!(w.state_of("TEE", "WH", state), expected, "{}", state.as_str());
    }
    // 24 inside = 20 from the supplier + 4 returned by customers.
    assert_eq!(w.outside("TEE", OutsideAccount::Supplier), -20);
    assert_eq!(w.outside("TEE", OutsideAccount::Customer), -4);
    w.assert_conserved("TEE");
    let rows = w.state.stock_rows();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].sku.clone(), rows[0].location.clone()), (sku("TEE"), code("WH")));
}
