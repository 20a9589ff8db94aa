//! X12: every public sample read (separators from the ISA, envelope faults reported), 850s
//! mapped to the canonical order (snapshots), other sets refused by name, errors naming the
//! element, line and value, and every document Ordo writes read back by the same reader.

use std::path::PathBuf;

use ordo_channels::x12::ack::{LineDecision, SetVerdict, functional_ack_997, po_ack_855};
use ordo_channels::x12::inbound::{self, Envelopes, SetOutcome};
use ordo_channels::x12::write::{Envelope, SetBuilder, Version, interchange};
use ordo_channels::x12::{self, EnvelopeIssue, Party};
use ordo_domain::orders::model::LineItem;
use ordo_types::{Code, Timestamp};

fn sample(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/samples/x12").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("the public sample at {path:?}: {e}"))
}

const SAMPLES: [&str; 11] = [
    "edinet_x12.810a.edi",
    "edinet_x12.810b.edi",
    "edinet_x12.850.edi",
    "edinet_x12.850a.edi",
    "node-x12_850.edi",
    "node-x12_850_2_newline_terminated.edi",
    "node-x12_855.edi",
    "x12types_004010_850.edi",
    "x12types_005010_810_min.edi",
    "x12types_005010_846_min.edi",
    "x12types_005010_856_min.edi",
];

fn channel() -> Code {
    Code::new("EDI-ACME").unwrap()
}

/// The purchase orders of a file, read leniently (the published samples' control totals are
/// not all right).
fn purchase_orders(text: &str) -> Vec<x12::po850::PurchaseOrder> {
    let parsed = x12::parse(text).unwrap();
    inbound::read(text, &parsed, &channel(), Envelopes::Lenient)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|o| match o {
            SetOutcome::PurchaseOrder(po) => Some(*po),
            SetOutcome::Refused { .. } => None,
        })
        .collect()
}

#[test]
fn every_public_sample_is_read_with_its_envelope_checked() {
    let mut summary = String::new();
    for name in SAMPLES {
        let text = sample(name);
        let parsed = x12::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        for i in &parsed {
            let sets: Vec<String> = i.groups.iter().flat_map(|g| &g.sets).map(|s| s.code.to_owned()).collect();
            let issues: Vec<String> = i
                .issues
                .iter()
                .chain(i.groups.iter().flat_map(|g| &g.issues))
                .chain(i.groups.iter().flat_map(|g| g.sets.iter().flat_map(|s| &s.issues)))
                .map(ToString::to_string)
                .collect();
            summary.push_str(&format!(
                "{name}: {} -> {} sets {:?}, segments {}, issues {:?}\n",
                i.sender(),
                i.receiver(),
                sets,
                i.groups.iter().flat_map(|g| &g.sets).map(|s| s.segments.len()).sum::<usize>(),
                issues
            ));
        }
    }
    insta::assert_snapshot!(summary);
}

#[test]
fn separators_come_from_the_isa() {
    let (tilde_text, newline_text) = (sample("node-x12_850.edi"), sample("node-x12_850_2_newline_terminated.edi"));
    let tilde = x12::parse(&tilde_text).unwrap();
    let newline = x12::parse(&newline_text).unwrap();
    assert_eq!(tilde[0].delimiters.segment, b'~');
    assert_eq!(newline[0].delimiters.segment, b'\n');
    assert_eq!(tilde[0].delimiters.component, b'>');
    // 4010: ISA11 is the standards id, not a repetition separator.
    assert_eq!(tilde[0].delimiters.repetition, None);
    // The same document either way.
    assert_eq!(
        purchase_orders(&sample("node-x12_850.edi")),
        purchase_orders(&sample("node-x12_850_2_newline_terminated.edi"))
    );
    // Other separators: `|` elements, `^` components, `!` terminators, CR LF between segments.
    let odd = sample("node-x12_850.edi").replace('*', "|").replace('>', "^").replace('~', "!\r\n");
    let pos = purchase_orders(&odd);
    assert_eq!(pos, purchase_orders(&sample("node-x12_850.edi")));
    assert_eq!(x12::parse(&odd).unwrap()[0].delimiters.segment, b'!');
}

#[test]
fn the_public_850s_map_to_canonical_orders() {
    for name in ["node-x12_850.edi", "x12types_004010_850.edi", "edinet_x12.850.edi", "edinet_x12.850a.edi"] {
        let pos = purchase_orders(&sample(name));
        assert_eq!(pos.len(), 1, "{name}");
        insta::assert_snapshot!(name, serde_json::to_string_pretty(&pos[0].order).unwrap());
    }
}

#[test]
fn an_850_reads_exactly() {
    let po = purchase_orders(&sample("node-x12_850.edi")).remove(0);
    let o = &po.order;
    assert_eq!(o.channel_order_id, "08292233294");
    assert_eq!(o.placed_at.to_string(), "2010-11-27T00:00:00.000Z");
    // GS04/GS05: 20101127 1719.
    assert_eq!(o.channel_updated_at.to_string(), "2010-11-27T17:19:00.000Z");
    assert_eq!(o.shipping.deliver_by.map(|d| d.to_string()).as_deref(), Some("2010-12-14"));
    assert_eq!(
        (o.ship_to.name.as_str(), o.ship_to.city.as_str(), o.ship_to.region.as_str()),
        ("XYZ RETAIL", "SOLON", "OH")
    );
    assert_eq!(o.lines.len(), 6);
    assert_eq!(o.lines[0].item, LineItem::Sku(ordo_types::Sku::new("AB3542").unwrap()));
    // 9.25, 13.79, 10.99, 4.35, 7.5, 9.55 — R decimals, read exactly.
    let prices: Vec<i64> = o.lines.iter().map(|l| l.unit_price_minor).collect();
    assert_eq!(prices, [925, 1379, 1099, 435, 750, 955]);
    // AMT*1*13045.94 is the PO total: Σ quantity × price.
    assert_eq!(o.net_minor(), 1_304_594);
    assert!(o.tags.contains(&"department:038".to_owned()), "{:?}", o.tags);
    // The x12-types sample leaves PO101 empty and names items by the buyer's catalog number.
    let po = purchase_orders(&sample("x12types_004010_850.edi")).remove(0);
    let ids: Vec<&str> = po.order.lines.iter().map(|l| l.line_id.as_str()).collect();
    assert_eq!(ids, ["1", "2", "3", "4", "5", "6", "7"]);
    assert_eq!(po.order.lines[0].item, LineItem::Listing("000111111".into()));
    assert_eq!(po.order.lines[0].uom, "case");
}

#[test]
fn strict_envelopes_refuse_faulty_control_numbers() {
    // edinet 850: IEA02 000000001 against ISA13 000000055, as published.
    let text = sample("edinet_x12.850.edi");
    let parsed = x12::parse(&text).unwrap();
    assert_eq!(
        parsed[0].issues,
        [EnvelopeIssue::InterchangeControlMismatch { header: "000000055".into(), trailer: "000000001".into() }]
    );
    let outcomes = inbound::read(&text, &parsed, &channel(), Envelopes::Strict);
    match &outcomes[0][0][0] {
        SetOutcome::Refused { reason, verdict } => {
            assert!(reason.contains("IEA02"), "{reason}");
            assert!(matches!(verdict, SetVerdict::Rejected { .. }));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // A set whose SE01 is wrong is refused with AK5 code 4.
    let good = sample("node-x12_850.edi");
    let bad = good.replace("SE*33*000000010", "SE*31*000000010");
    let parsed = x12::parse(&bad).unwrap();
    let outcome = &inbound::read(&bad, &parsed, &channel(), Envelopes::Strict)[0][0][0];
    assert_eq!(outcome.verdict(), SetVerdict::Rejected { codes: vec!["4"], segment: None });
    let ack = functional_ack_997(&parsed[0].groups[0], &[outcome.verdict()]);
    let text = write(ack, "FA", "997");
    assert!(text.contains("AK5*R*4~"), "{text}");
    assert!(text.contains("AK9*R*1*1*0~"), "{text}");
}

#[test]
fn sets_ordo_does_not_take_in_are_refused_by_name() {
    for (name, code) in [
        ("edinet_x12.810a.edi", "810 (Invoice)"),
        ("node-x12_855.edi", "855 (Purchase Order Acknowledgment)"),
        ("x12types_005010_856_min.edi", "856 (Ship Notice/Manifest)"),
        ("x12types_005010_846_min.edi", "846 (Inventory Inquiry/Advice)"),
    ] {
        let text = sample(name);
        let parsed = x12::parse(&text).unwrap();
        match &inbound::read(&text, &parsed, &channel(), Envelopes::Lenient)[0][0][0] {
            SetOutcome::Refused { reason, verdict } => {
                assert!(reason.contains(code), "{name}: {reason}");
                assert_eq!(*verdict, SetVerdict::Rejected { codes: vec!["1"], segment: None });
            }
            other => panic!("{name}: expected a refusal, got {other:?}"),
        }
    }
}

#[test]
fn unreadable_input_names_what_and_where() {
    let err = x12::parse("hello").unwrap_err();
    assert!(err.message.contains("must start with an ISA"), "{err}");
    assert_eq!(err.value.as_deref(), Some("hel"));
    let err = x12::parse("ISA*00*  *00").unwrap_err();
    assert!(err.message.contains("cut short"), "{err}");
    // A segment outside its envelope.
    let text = sample("node-x12_850.edi").replace("GS*PO*", "XX*PO*");
    let err = x12::parse(&text).unwrap_err();
    assert!(err.message.contains("outside its envelope"), "{err}");
    // Bad content: the element, its value and its line.
    let text = sample("node-x12_850_2_newline_terminated.edi").replace("PO1*2*220*EA*13.79", "PO1*2*22x*EA*13.79");
    let parsed = x12::parse(&text).unwrap();
    match &inbound::read(&text, &parsed, &channel(), Envelopes::Lenient)[0][0][0] {
        SetOutcome::Refused { reason, verdict } => {
            assert_eq!(reason, "line 18, column PO102 (\"22x\"): expected a positive whole quantity");
            match verdict {
                SetVerdict::Rejected { codes, segment: Some(f) } => {
                    assert_eq!(codes, &vec!["5"]);
                    // ST 1, BEG 2, REF 3–4, ITD 5, DTM 6, PKG 7–8, TD5 9, N1 N3 N4 10–12, PO1 PID PO4 13–15: the second PO1 is 16.
                    assert_eq!((f.segment_id.as_str(), f.position, f.element, f.value.as_str()), ("PO1", 16, 2, "22x"));
                }
                other => panic!("{other:?}"),
            }
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let text = sample("node-x12_850.edi").replace("PO1*1*120*EA*9.25", "PO1*1*120*EA*9.255");
    let parsed = x12::parse(&text).unwrap();
    match &inbound::read(&text, &parsed, &channel(), Envelopes::Lenient)[0][0][0] {
        SetOutcome::Refused { reason, .. } => assert!(reason.contains("PO104 (\"9.255\")"), "{reason}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn envelope() -> Envelope {
    Envelope {
        sender: "ZZ:ORDO".parse().unwrap(),
        receiver: Party { qualifier: "01".into(), id: "999999999".into() },
        control_number: 42,
        at: Timestamp::from_millis(1_795_000_000_000),
        usage: 'T',
        version: Version::v4010(),
    }
}

fn write(set: SetBuilder, functional_id: &str, code: &str) -> String {
    interchange(&envelope(), functional_id, &[(code, set)])
}

#[test]
fn what_ordo_writes_it_reads_back_with_a_clean_envelope() {
    let po = purchase_orders(&sample("node-x12_850.edi")).remove(0);
    let decisions: Vec<LineDecision> = po
        .lines
        .iter()
        .enumerate()
        .map(|(n, l)| match n {
            0 => LineDecision {
                accepted: 100,
                backordered: 20,
                expected_on: "2010-12-01".parse().ok(),
                held: 0,
                rejected: 0,
            },
            1 => LineDecision { accepted: 0, backordered: 0, expected_on: None, held: 0, rejected: l.quantity },
            _ => LineDecision { accepted: l.quantity, backordered: 0, expected_on: None, held: 0, rejected: 0 },
        })
        .collect();
    let text = write(po_ack_855(&po, &decisions, "2010-11-28".parse().unwrap()), "PR", "855");
    let parsed = x12::parse(&text).unwrap();
    let i = &parsed[0];
    assert!(i.issues.is_empty() && i.groups[0].issues.is_empty() && i.groups[0].sets[0].issues.is_empty());
    assert_eq!(i.sender().to_string(), "ZZ:ORDO");
    assert_eq!(i.control_number(), "000000042");
    // The ISA is the fixed 106 characters.
    assert_eq!(text.find('\n'), Some(106));
    let set = &i.groups[0].sets[0];
    assert_eq!(set.code, "855");
    let bak = &set.segments[0];
    assert_eq!((bak.id, bak.element(2), bak.element(3), bak.element(9)), ("BAK", "AC", "08292233294", "20101128"));
    let acks: Vec<(String, String)> = set
        .segments
        .iter()
        .filter(|s| s.id == "ACK")
        .map(|s| (s.element(1).to_owned(), s.element(2).to_owned()))
        .collect();
    assert_eq!(acks[..3], [("IA".into(), "100".into()), ("IB".into(), "20".into()), ("IR".into(), "220".into())]);
    insta::assert_snapshot!("855", text);
}

#[test]
fn separators_inside_values_cannot_split_a_segment() {
    let mut b = SetBuilder::new();
    b.segment("N1", &["ST", "Tom*Jerry~s >Shop^"]);
    let text = write(b, "PO", "850");
    let parsed = x12::parse(&text).unwrap();
    let n1 = &parsed[0].groups[0].sets[0].segments[0];
    assert_eq!(n1.element(2), "Tom Jerry s  Shop");
}

#[test]
fn the_846_lists_available_to_sell() {
    use ordo_channels::x12::outbound::{AvailabilityAdvice, inventory_advice_846};
    let items = vec![
        AvailabilityAdvice { sku: "TEE-BLK-M".into(), partner_item: Some("B-778".into()), available: 12 },
        AvailabilityAdvice { sku: "MUG".into(), partner_item: None, available: -3 },
    ];
    let text = write(inventory_advice_846("ATS-42", Timestamp::from_millis(1_795_000_000_000), &items), "IB", "846");
    let parsed = x12::parse(&text).unwrap();
    let set = &parsed[0].groups[0].sets[0];
    assert!(set.issues.is_empty());
    let qty: Vec<(&str, &str)> =
        set.segments.iter().filter(|s| s.id == "QTY").map(|s| (s.element(1), s.element(2))).collect();
    // Never a negative advice: an oversold item is advised as 0.
    assert_eq!(qty, [("33", "12"), ("33", "0")]);
    let lin = set.segments.iter().find(|s| s.id == "LIN").unwrap();
    assert_eq!((lin.element(3), lin.element(5)), ("TEE-BLK-M", "B-778"));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Any corruption of a real 850 is read or refused with a message, never a panic.
    #[test]
    fn damaged_interchanges_never_panic(cut in 0usize..1200, byte in proptest::num::u8::ANY, at in 0usize..1200) {
        let text = sample("node-x12_850.edi");
        let mut bytes = text.into_bytes();
        if at < bytes.len() && byte.is_ascii() {
            bytes[at] = byte;
        }
        bytes.truncate(cut.min(bytes.len()));
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if let Ok(parsed) = x12::parse(&text) {
            let outcomes = inbound::read(&text, &parsed, &channel(), Envelopes::Strict);
            for (i, groups) in parsed.iter().zip(&outcomes) {
                for (g, sets) in i.groups.iter().zip(groups) {
                    let verdicts: Vec<_> = sets.iter().map(SetOutcome::verdict).collect();
                    let ack = functional_ack_997(g, &verdicts);
                    let written = write(ack, "FA", "997");
                    proptest::prop_assert!(x12::parse(&written).is_ok());
                }
            }
        }
    }
}
