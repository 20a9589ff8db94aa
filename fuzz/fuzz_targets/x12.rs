//! Any bytes as an X12 interchange: read, every set mapped, the 997 written and read back —
//! refused with a message or accepted, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ordo_channels::x12::{self, ack, inbound, write};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(parsed) = x12::parse(&text) else { return };
    let channel = ordo_types::Code::new("EDI").expect("valid code");
    for envelopes in [inbound::Envelopes::Strict, inbound::Envelopes::Lenient] {
        let outcomes = inbound::read(&text, &parsed, &channel, envelopes);
        for (interchange, groups) in parsed.iter().zip(&outcomes) {
            for (group, sets) in interchange.groups.iter().zip(groups) {
                let verdicts: Vec<_> = sets.iter().map(inbound::SetOutcome::verdict).collect();
                let envelope = write::Envelope {
                    sender: "ZZ:ORDO".parse().expect("valid party"),
                    receiver: "ZZ:PARTNER".parse().expect("valid party"),
                    control_number: 1,
                    at: ordo_types::Timestamp::from_millis(0),
                    usage: 'T',
                    version: write::Version::v4010(),
                };
                let text = write::interchange(&envelope, "FA", &[("997", ack::functional_ack_997(group, &verdicts))]);
                assert!(x12::parse(&text).is_ok(), "Ordo must read what it writes");
                for outcome in sets {
                    if let inbound::SetOutcome::PurchaseOrder(po) = outcome {
                        let decisions = ack::decisions(po, None);
                        let _ = ack::po_ack_855(po, &decisions, ordo_types::Date(0));
                    }
                }
            }
        }
    }
});
