//! Four-eyes approvals in the domain: the gate turns a large adjustment into a request, the
//! requester cannot approve it, another user's approval applies it, and replay reproduces all.

mod support;

use ordo_domain::approvals::{ApprovalRejection, ApprovalStatus};
use ordo_domain::inventory::ReasonCode;
use ordo_domain::{Command, Rejection};
use support::*;

fn gated(by: &str, delta: i64) -> Command {
    Command::Gated {
        by: by.into(),
        note: "cycle count".into(),
        command: Box::new(Command::Move(adjust("TEE", "WH", delta, ReasonCode::Found))),
    }
}

#[test]
fn a_large_adjustment_waits_for_another_person_and_replays() {
    let mut w = World::new();
    w.run(location("WH", true));
    w.run(item("TEE"));
    w.mv(receipt("TEE", "WH", 10));
    w.run(gated("ann", 3));
    assert_eq!(w.b("TEE", "WH").available(), 13, "below the threshold: at once");
    w.run(gated("ann", 500));
    assert_eq!(w.b("TEE", "WH").available(), 13, "above: a request");
    let request = w.state.approvals().pending().next().expect("pending").clone();
    assert!(request.why.contains("500"), "{}", request.why);
    // A request that could never apply is refused at once.
    assert!(matches!(w.reject(gated("ann", -1_000)), Rejection::Move(_)));
    assert_eq!(
        w.reject(Command::Approve { id: request.id, by: "ann".into(), reason: "mine".into() }),
        Rejection::Approval(ApprovalRejection::SelfApproval { id: request.id, user: "ann".into() })
    );
    assert_eq!(
        w.reject(Command::Approve { id: request.id, by: "bob".into(), reason: " ".into() }),
        Rejection::Approval(ApprovalRejection::MissingReason)
    );
    w.run(Command::Approve { id: request.id, by: "bob".into(), reason: "recount agrees".into() });
    assert_eq!(w.b("TEE", "WH").available(), 513);
    assert!(matches!(w.state.approvals().get(request.id).unwrap().status, ApprovalStatus::Approved { .. }));
    assert_eq!(
        w.reject(Command::RejectApproval { id: request.id, by: "cy".into(), reason: "late".into() }),
        Rejection::Approval(ApprovalRejection::NotPending(request.id))
    );
    w.assert_conserved("TEE");
    let (replayed, live) = w.replayed_and_live();
    assert_eq!(replayed, live);
}
