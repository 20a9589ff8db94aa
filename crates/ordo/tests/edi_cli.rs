//! EDI end to end: a partner's 850 captured and answered (997 and 855 written and queued in the
//! outbox), the same interchange re-sent ignored, other sets and garbage refused and kept, and
//! the 846, 856 and 810 Ordo writes read back by Ordo's own X12 reader.

mod common;

use common::{Db, fixture};
use ordo_channels::x12;

fn fixture_arg(name: &str) -> String {
    fixture(name).to_str().expect("UTF-8 path").to_owned()
}

const PO: &str =
    "ISA*00*          *00*          *ZZ*ACMEBUYER      *ZZ*ORDO           *261127*1000*U*00401*000000101*0*P*>~
GS*PO*ACMEBUYER*ORDO*20261127*1000*101*X*004010~
ST*850*0001~
BEG*00*SA*PO-7001**20261127~
N1*BY*Acme Stores Inc.~
N1*ST*Acme Store 12~
N3*1 Main St~
N4*Brooklyn*NY*11201*US~
PO1*1*6*EA*20*PE*VN*TEE~
PO1*2*3*EA*12*PE*BP*B-MUG~
CTT*2~
SE*10*0001~
GE*1*101~
IEA*1*000000101~
";

fn setup(db: &Db) {
    db.ok(&["entity", "add", "US-RETAIL", "--name", "Ordo Outfitters Inc.", "--currency", "USD"]);
    db.ok(&["location", "import", &fixture_arg("orders/locations.csv")]);
    db.ok(&["item", "import", &fixture_arg("orders/items.csv")]);
    db.ok(&[
        "channel",
        "add",
        "EDI-ACME",
        "--name",
        "Acme (EDI)",
        "--kind",
        "edi",
        "--entity",
        "US-RETAIL",
        "--locations",
        "EAST",
    ]);
    db.ok(&["move", "receipt", "--sku", "TEE", "--location", "EAST", "--quantity", "10"]);
    db.ok(&["move", "receipt", "--sku", "MUG", "--location", "EAST", "--quantity", "4"]);
    let settings = db.dir.path().join("settings.json");
    let mut rules = serde_json::to_value(ordo_domain::orders::validation::ValidationRules::default()).unwrap();
    // B2B orders are invoiced on terms: authorized by the trading agreement.
    rules["accept_authorized"] = true.into();
    let lines = serde_json::json!([
        {"listing": {"channel": "EDI-ACME", "listing": "B-MUG", "sku": "MUG"}},
        {"shipping_methods": {"channel": "EDI-ACME", "methods": ["routing guide"]}},
        {"node": {"location": "EAST", "settings": {"cutoff_local": [16, 0], "daily_capacity": 100,
                  "cost_per_shipment_minor": 300, "cost_per_unit_minor": 20}}},
        {"rules": rules},
    ]);
    std::fs::write(&settings, lines.to_string()).unwrap();
    db.ok(&["order", "settings", "--file", settings.to_str().unwrap()]);
}

fn outbox_documents(db: &Db) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open(&db.path).unwrap();
    let mut st =
        conn.prepare("SELECT message_key, payload FROM outbox WHERE topic = 'edi_document' ORDER BY id").unwrap();
    st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .unwrap()
        .map(|r| {
            let (key, payload) = r.unwrap();
            let v: serde_json::Value = serde_json::from_str(&payload).unwrap();
            (key, v["set_code"].as_str().unwrap().to_owned())
        })
        .collect()
}

/// The only set of the only group of `text`, after checking its envelope is clean.
fn segments(text: &str) -> Vec<(String, Vec<String>)> {
    let parsed = x12::parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(parsed.len(), 1);
    let i = &parsed[0];
    assert!(i.issues.is_empty(), "{:?}", i.issues);
    let set = &i.groups[0].sets[0];
    assert!(i.groups[0].issues.is_empty() && set.issues.is_empty(), "{text}");
    set.segments.iter().map(|s| (s.id.to_owned(), (1..=s.len()).map(|n| s.element(n).to_owned()).collect())).collect()
}

fn find<'a>(segments: &'a [(String, Vec<String>)], id: &str) -> Vec<&'a Vec<String>> {
    segments.iter().filter(|(s, _)| s == id).map(|(_, e)| e).collect()
}

#[test]
fn a_purchase_order_is_captured_acknowledged_and_never_taken_twice() {
    let db = Db::new();
    setup(&db);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("po-7001.edi");
    std::fs::write(&file, PO).unwrap();
    let acks = dir.path().join("acks");
    std::fs::create_dir(&acks).unwrap();
    let out =
        db.ok(&["import", "x12", file.to_str().unwrap(), "--channel", "EDI-ACME", "--acks", acks.to_str().unwrap()]);
    assert!(out.contains("EDI-ACME/PO-7001: "), "{out}");
    let order = db.json(&["order", "show", "EDI-ACME/PO-7001", "--json"]);
    assert_eq!(order["order"]["customer"]["name"], "Acme Stores Inc.");
    assert_eq!(order["order"]["lines"][1]["unit_price_minor"], 1200);

    // 997: the set accepted.
    let ack = std::fs::read_to_string(acks.join("po-7001.edi.997.edi")).unwrap();
    let s = segments(&ack);
    assert_eq!(find(&s, "AK1")[0], &vec!["PO".to_owned(), "101".to_owned()]);
    assert_eq!(find(&s, "AK5")[0][0], "A");
    assert_eq!(find(&s, "AK9")[0][..4], ["A", "1", "1", "1"]);
    // Addressed back to the partner, in the partner's version and usage.
    let parsed = x12::parse(&ack).unwrap();
    assert_eq!(parsed[0].receiver().to_string(), "ZZ:ACMEBUYER");
    assert_eq!((parsed[0].usage(), parsed[0].header.element(12)), ("P", "00401"));

    // 855: every line accepted as ordered.
    let ack = std::fs::read_to_string(acks.join("po-7001.edi.855.edi")).unwrap();
    let s = segments(&ack);
    assert_eq!(find(&s, "BAK")[0][..3], ["00", "AD", "PO-7001"]);
    let acks_: Vec<(&str, &str)> = find(&s, "ACK").iter().map(|e| (e[0].as_str(), e[1].as_str())).collect();
    assert_eq!(acks_, [("IA", "6"), ("IA", "3")]);
    // The answers are journaled and queued for the partner, with distinct control numbers.
    assert_eq!(
        outbox_documents(&db),
        [("EDI-ACME".to_owned(), "997".to_owned()), ("EDI-ACME".to_owned(), "855".to_owned())]
    );
    let control = |text: &str| x12::parse(text).unwrap()[0].control_number().to_owned();
    assert_ne!(control(&std::fs::read_to_string(acks.join("po-7001.edi.997.edi")).unwrap()), control(&ack));

    // The same interchange again: recognised, nothing recorded, nothing sent.
    let before = db.journal_seq();
    let out =
        db.ok(&["import", "x12", file.to_str().unwrap(), "--channel", "EDI-ACME", "--acks", acks.to_str().unwrap()]);
    assert!(out.contains("interchange 000000101 from ZZ:ACMEBUYER ignored"), "{out}");
    assert_eq!(db.journal_seq(), before);
    assert_eq!(outbox_documents(&db).len(), 2);

    // Ship it, then the ship notice and the invoice.
    // A second PO asks for more mugs than the channel was offered: held for review, and the
    // 855 says so (AH, IH) rather than promising or refusing them.
    let second = PO
        .replace("000000101", "000000102")
        .replace("*101*X*", "*102*X*")
        .replace("GE*1*101", "GE*1*102")
        .replace("PO-7001", "PO-7002")
        .replace("PO1*2*3*EA", "PO1*2*5*EA");
    let file2 = dir.path().join("po-7002.edi");
    std::fs::write(&file2, second).unwrap();
    db.ok(&["import", "x12", file2.to_str().unwrap(), "--channel", "EDI-ACME", "--acks", acks.to_str().unwrap()]);
    let s = segments(&std::fs::read_to_string(acks.join("po-7002.edi.855.edi")).unwrap());
    assert_eq!(find(&s, "BAK")[0][1], "AH");
    let acks_: Vec<(&str, &str)> = find(&s, "ACK").iter().map(|e| (e[0].as_str(), e[1].as_str())).collect();
    assert_eq!(acks_, [("IH", "6"), ("IH", "5")]);
    assert_eq!(db.json(&["order", "show", "EDI-ACME/PO-7002", "--json"])["status"], "on_hold");
    db.ok(&["order", "cancel", "EDI-ACME/PO-7002", "--reason", "partner asked too much"]);

    db.ok(&["order", "dispatch", "EDI-ACME/PO-7001"]);
    db.ok(&["order", "pick", "EDI-ACME/PO-7001"]);
    db.ok(&["order", "pack", "EDI-ACME/PO-7001"]);
    // Two cartons; a carton cannot hold more than is picked and not shipped.
    let over = db.refused(&["order", "packages", "EDI-ACME/PO-7001", "--package", "CTN-1:2500:400x300x200:1=7"]);
    assert!(over.contains("line 1 has 6 unit(s) picked and not shipped, the packages hold 7"), "{over}");
    let malformed = db.run(&["order", "packages", "EDI-ACME/PO-7001", "--package", "CTN-1:heavy:400x300x200:1=6"]);
    assert!(!malformed.status.success());
    assert!(String::from_utf8_lossy(&malformed.stderr).contains("expected ID:WEIGHT_G:LxWxH_MM"));
    db.ok(&[
        "order",
        "packages",
        "EDI-ACME/PO-7001",
        "--package",
        "CTN-1:2500:400x300x200:1=6",
        "--package",
        "CTN-2:1250:305x200x150:2=3",
    ]);
    let shipped =
        db.run(&["ship", "EDI-ACME/PO-7001", "--carrier", "UPSN", "--tracking", "1Z999", "--shipment", "SH-1"]);
    assert!(shipped.status.success());
    // The partner hears of it as an 856 and is invoiced with an 810, queued with the shipment.
    let said = String::from_utf8_lossy(&shipped.stderr);
    assert!(said.contains("856 ") && said.contains("810 ") && said.contains("queued for EDI-ACME"), "{said}");
    // The shipment queued its confirmation for the channel in the same commit.
    let conn = rusqlite::Connection::open(&db.path).unwrap();
    let (key, payload): (String, String) = conn
        .query_row("SELECT message_key, payload FROM outbox WHERE topic = 'shipment_confirmed'", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(key, "EDI-ACME/PO-7001");
    let confirmation: serde_json::Value = serde_json::from_str(&payload).unwrap();
    assert_eq!((confirmation["tracking"].as_str(), confirmation["carrier"].as_str()), (Some("1Z999"), Some("UPSN")));
    assert_eq!(confirmation["lines"][1]["listing"], "B-MUG");
    assert_eq!(confirmation["lines"][1]["quantity"], 3);
    let asn = db.ok(&["export", "x12-856", "--order", "EDI-ACME/PO-7001", "--shipment", "SH-1"]);
    let s = segments(&asn);
    // Shipment, order, packs, items (0001): 2 cartons, 3.75 kg; each carton's id, weight and size.
    let bsn = find(&s, "BSN")[0];
    assert_eq!((bsn[0].as_str(), bsn[1].as_str(), bsn[4].as_str()), ("00", "SH-1", "0001"));
    assert_eq!(find(&s, "TD1")[0], &vec!["CTN25", "2", "", "", "", "G", "3.75", "KG"]);
    let cartons: Vec<&str> = find(&s, "MAN").iter().map(|e| e[1].as_str()).collect();
    assert_eq!(cartons, ["CTN-1", "CTN-2"]);
    let measures: Vec<String> = find(&s, "MEA").iter().map(|e| format!("{}={}{}", e[1], e[2], e[3])).collect();
    assert_eq!(measures, ["G=2.5KG", "LN=40CM", "WD=30CM", "HT=20CM", "G=1.25KG", "LN=30.5CM", "WD=20CM", "HT=15CM"]);
    let levels: Vec<&str> = find(&s, "HL").iter().map(|e| e[2].as_str()).collect();
    assert_eq!(levels, ["S", "O", "P", "I", "P", "I"]);
    assert_eq!(find(&s, "PRF")[0][0], "PO-7001");
    assert_eq!(find(&s, "REF")[0], &vec!["CN".to_owned(), "1Z999".to_owned()]);
    let shipped: Vec<(&str, &str)> = find(&s, "SN1").iter().map(|e| (e[1].as_str(), e[2].as_str())).collect();
    assert_eq!(shipped, [("6", "EA"), ("3", "EA")]);
    // Packed line records name Ordo's SKU.
    let lin: Vec<&str> = find(&s, "LIN").iter().map(|e| e[2].as_str()).collect();
    assert_eq!(lin, ["TEE", "MUG"]);
    // CTT01 counts the HL segments.
    assert_eq!(find(&s, "CTT")[0][0], find(&s, "HL").len().to_string());

    let slip = db.ok(&["order", "document", "EDI-ACME/PO-7001", "--shipment", "SH-1", "--kind", "packing-slip"]);
    assert!(slip.contains("<td>CTN-2</td><td class=\"n\">1250 g</td><td>305 × 200 × 150</td><td>3 × 2</td>"), "{slip}");
    let invoice = db.ok(&["export", "x12-810", "--order", "EDI-ACME/PO-7001", "--shipment", "SH-1"]);
    let s = segments(&invoice);
    assert_eq!(find(&s, "BIG")[0][3], "PO-7001");
    // 6 × 20.00 + 3 × 12.00 = 156.00, two implied decimals.
    assert_eq!(find(&s, "TDS")[0][0], "15600");
    let it1: Vec<(&str, &str)> = find(&s, "IT1").iter().map(|e| (e[1].as_str(), e[3].as_str())).collect();
    assert_eq!(it1, [("6", "20"), ("3", "12")]);

    // Availability advice: TEE 10 − 6 shipped = 4, MUG 4 − 3 = 1 (under the partner's id).
    let advice = db.ok(&["export", "availability", "--channel", "EDI-ACME", "--format", "x12-846"]);
    let s = segments(&advice);
    let lines: Vec<(String, String)> = find(&s, "LIN")
        .iter()
        .zip(find(&s, "QTY"))
        .map(|(lin, qty)| (lin[2].clone() + &lin.get(4).map(|p| format!("/{p}")).unwrap_or_default(), qty[1].clone()))
        .collect();
    assert!(lines.contains(&("TEE".to_owned(), "4".to_owned())), "{lines:?}");
    assert!(lines.contains(&("MUG/B-MUG".to_owned(), "1".to_owned())), "{lines:?}");
    let sent: Vec<String> = outbox_documents(&db).into_iter().map(|(_, c)| c).collect();
    // Sent on their own after the shipment, then again on request, then the advice.
    assert_eq!(sent, ["997", "855", "997", "855", "856", "810", "856", "810", "846"]);
}

#[test]
fn other_sets_and_garbage_are_refused_and_kept() {
    let db = Db::new();
    setup(&db);
    let invoice = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/samples/x12/x12types_005010_810_min.edi");
    let dir = tempfile::tempdir().unwrap();
    let out = db.run(&[
        "import",
        "x12",
        invoice.to_str().unwrap(),
        "--channel",
        "EDI-ACME",
        "--acks",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("transaction set 810 (Invoice) is not one Ordo takes in"), "{err}");
    // The 997 rejects it as not supported (AK5 R 1).
    let ack = std::fs::read_to_string(dir.path().join("x12types_005010_810_min.edi.997.edi")).unwrap();
    assert!(ack.contains("AK5*R*1~") && ack.contains("AK9*R*1*1*0~"), "{ack}");
    let garbage = dir.path().join("garbage.edi");
    std::fs::write(&garbage, "UNA:+.? 'UNB+UNOC:3+SENDER'").unwrap();
    let before = db.journal_seq();
    let err = db.refused(&["import", "x12", garbage.to_str().unwrap(), "--channel", "EDI-ACME"]);
    assert!(err.contains("must start with an ISA segment"), "{err}");
    let letters = db.json(&["deadletter", "list", "--json"]);
    let sources: Vec<&str> = letters.as_array().unwrap().iter().map(|d| d["source"].as_str().unwrap()).collect();
    assert_eq!(sources, ["import:x12:EDI-ACME", "import:x12:EDI-ACME"]);
    // The garbage is kept raw: nothing but the dead letter was recorded.
    assert_eq!(db.journal_seq(), before + 1);
    assert_eq!(letters[1]["raw"], "UNA:+.? 'UNB+UNOC:3+SENDER'");
}

/// `ordo worker` for a trading partner: the documents Ordo journaled (here an 846 on request)
/// are posted to the partner's endpoint, and availability changes since the last round go out
/// on their own as one 846 of the SKUs that changed, read back by Ordo's X12 reader, with
/// control numbers that keep increasing and never meet the journal's.
#[test]
fn the_worker_sends_partner_documents_and_an_846_of_what_changed() {
    use std::sync::{Arc, Mutex};
    let db = Db::new();
    setup(&db);
    type Received = Arc<Mutex<Vec<(Option<String>, String)>>>;
    let received: Received = Arc::default();
    async fn documents(
        axum::extract::State(received): axum::extract::State<Received>,
        headers: axum::http::HeaderMap,
        body: String,
    ) -> &'static str {
        let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
        received.lock().unwrap().push((auth, body));
        "{}"
    }
    let (_runtime, url) = common::serve_on_loopback(
        axum::Router::new().route("/documents", axum::routing::post(documents)).with_state(received.clone()),
    );
    let config = db.dir.path().join("relay.json");
    std::fs::write(
        &config,
        serde_json::json!({"channels": [{"channel": "EDI-ACME", "kind": "edi", "endpoint": url,
            "token_env": "ORDO_TEST_EDI_TOKEN", "partner": "ZZ:ACMEBUYER", "items": {"MUG": "B-MUG"}}]})
        .to_string(),
    )
    .unwrap();
    let worker = || {
        let mut command = db.command(&["worker", "--config", config.to_str().unwrap(), "--until-idle"]);
        command.env("ORDO_TEST_EDI_TOKEN", "van-secret");
        let out = command.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    let partner = || -> Vec<String> { received.lock().unwrap().iter().map(|(_, body)| body.clone()).collect() };
    // The receipts of `setup` changed availability: one 846 for both SKUs.
    worker();
    let sent = partner();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let s = segments(&sent[0]);
    let advised: Vec<(String, String)> = find(&s, "LIN")
        .iter()
        .zip(find(&s, "QTY"))
        .map(|(lin, qty)| (lin[2].clone() + &lin.get(4).map(|p| format!("/{p}")).unwrap_or_default(), qty[1].clone()))
        .collect();
    assert_eq!(advised, [("MUG/B-MUG".to_owned(), "4".to_owned()), ("TEE".to_owned(), "10".to_owned())]);
    let first = x12::parse(&sent[0]).unwrap();
    assert_eq!(first[0].receiver().to_string(), "ZZ:ACMEBUYER");
    let first_control: u32 = first[0].control_number().parse().unwrap();
    assert!(first_control > 1_000, "the relay's numbers stay clear of the journal's: {first_control}");
    assert_eq!(received.lock().unwrap()[0].0.as_deref(), Some("Bearer van-secret"));
    // Nothing new: nothing sent.
    worker();
    assert_eq!(partner().len(), 1);
    // One MUG more, and an 846 of everything on request: the journaled document is sent as
    // written, and the change as an advice of MUG alone.
    db.ok(&["move", "receipt", "--sku", "MUG", "--location", "EAST", "--quantity", "1"]);
    db.ok(&["export", "availability", "--channel", "EDI-ACME", "--format", "x12-846", "--partner", "ZZ:ACMEBUYER"]);
    worker();
    let sent = partner();
    assert_eq!(sent.len(), 3, "{sent:?}");
    let controls: Vec<u32> = sent.iter().map(|t| x12::parse(t).unwrap()[0].control_number().parse().unwrap()).collect();
    let journal = controls.iter().filter(|c| **c < 1_000).count();
    assert_eq!(journal, 1, "the requested 846 carries the journal's number: {controls:?}");
    let relay: Vec<u32> = controls.iter().copied().filter(|c| *c >= 1_000).collect();
    assert!(relay.len() == 2 && relay[1] > relay[0], "{controls:?}");
    let mug_only =
        sent.iter().find(|t| x12::parse(t).unwrap()[0].control_number().parse::<u32>().unwrap() == relay[1]).unwrap();
    let s = segments(mug_only);
    assert_eq!(find(&s, "LIN").len(), 1);
    assert_eq!(find(&s, "QTY")[0][1], "5");
}
