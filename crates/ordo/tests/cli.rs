//! End-to-end tests of the `ordo` binary: every test runs the real executable
//! (`CARGO_BIN_EXE_ordo`) against a SQLite file of its own (`--db <tempdir>/x.db`) and asserts on
//! what it prints, its exit code and what the database holds afterwards.
//!
//! The shared worked example (`build_worked_ledger`) sets up master data through the CLI (entity,
//! location and item CSV imports, channels, safety stock, a channel pool) and then records one
//! movement of every kind, so the stock and ATS figures at the end are known exactly.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ordo_domain::catalog::{AllocationPolicy, Channel, ChannelKind, LegalEntity};
use ordo_domain::csv_import;
use ordo_domain::inventory::MoveCommand;
use ordo_domain::{Command as DomainCommand, State};
use ordo_engine::{Clock, CommandError, Engine, Request, SystemClock};
use ordo_store_sqlite::SqliteStore;
use ordo_types::{Code, CurrencyCode, Sku, Units};
use serde_json::{Value, json};

mod common;
use common::{BIN, Db, describe};

/// The per-state fields every `ordo stock --json` row must carry, besides sku/location/on_hand.
const STATE_FIELDS: [&str; 8] =
    ["available", "committed", "picked", "reserved", "quality_control", "damaged", "in_transit", "incoming"];

use common::fixture;

// ----- running the binary ------------------------------------------------------------------

impl Db {
    fn stock(&self) -> Value {
        self.json(&["stock", "--json"])
    }

    fn verify(&self) -> Value {
        self.json(&["verify", "--json"])
    }

    /// Everything a refused command must leave untouched.
    fn observe(&self) -> Observation {
        Observation {
            stock: self.stock(),
            ats: self.json(&["ats", "--json"]),
            items: self.json(&["item", "list", "--json"]),
            locations: self.json(&["location", "list", "--json"]),
            journal_seq: self.journal_seq(),
        }
    }

    /// Writes `contents` to a file next to the database.
    fn file(&self, name: &str, contents: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, contents).expect("write test file");
        p.to_str().expect("UTF-8 path").to_owned()
    }

    fn engine(&self) -> Engine<SqliteStore> {
        Engine::open(SqliteStore::open(&self.path).expect("open SQLite store"), Box::new(SystemClock))
            .expect("open engine")
    }
}

#[derive(Debug, PartialEq)]
struct Observation {
    stock: Value,
    ats: Value,
    items: Value,
    locations: Value,
    journal_seq: u64,
}

/// The journal sequence from `ok: recorded at journal sequence N`.
fn recorded(stdout: &str) -> u64 {
    stdout
        .trim()
        .strip_prefix("ok: recorded at journal sequence ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("expected `ok: recorded at journal sequence N`, got {stdout:?}"))
}

/// One `ordo stock --json` row reduced to the fields this suite checks, after asserting that
/// every one of them is present and an integer.
fn stock_row(row: &Value) -> Value {
    let mut o = json!({"sku": row["sku"], "location": row["location"]});
    assert!(row["sku"].is_string() && row["location"].is_string(), "row without sku/location: {row}");
    for field in std::iter::once("on_hand").chain(STATE_FIELDS) {
        assert!(row[field].is_i64(), "stock row lacks integer field {field}: {row}");
        o[field] = row[field].clone();
    }
    o
}

/// Expected stock row; `on_hand` is the sum of the six physical states.
fn expect_row(sku: &str, location: &str, s: [i64; 8]) -> Value {
    let mut o = json!({"sku": sku, "location": location, "on_hand": s[..6].iter().sum::<i64>()});
    for (field, v) in STATE_FIELDS.iter().zip(s) {
        o[*field] = json!(v);
    }
    o
}

fn stock_rows(stock: &Value) -> Vec<Value> {
    stock.as_array().expect("stock --json is an array").iter().map(stock_row).collect()
}

/// The stock row of one SKU at one location (`None` when the CLI lists no such row).
fn row_of(stock: &Value, sku: &str, location: &str) -> Option<Value> {
    stock_rows(stock).into_iter().find(|r| r["sku"] == sku && r["location"] == location)
}

fn ats_of(ats: &Value, sku: &str, channel: &str) -> i64 {
    let rows = ats.as_array().expect("ats --json is an array");
    let row = rows
        .iter()
        .find(|r| r["sku"] == sku && r["channel"] == channel)
        .unwrap_or_else(|| panic!("no ATS row for {sku} on {channel}: {ats:#}"));
    row["ats"].as_i64().expect("ats is an integer")
}

fn today_plus(days: i32) -> String {
    SystemClock.now().date().add_days(days).to_string()
}

// ----- the worked example ----------------------------------------------------------------------

/// Master data through the CLI: one legal entity, three locations and four items (one bundle)
/// from CSV fixtures, two channels, a safety-stock rule and a channel pool. Returns the number of
/// journal events it wrote.
fn setup_master_data(db: &Db) -> u64 {
    let out = db.ok(&["entity", "add", "US-RETAIL", "--name", "Ordo Outfitters Inc.", "--currency", "USD"]);
    assert_eq!(recorded(&out), 1);
    let out = db.ok(&["location", "import", fixture("locations.csv").to_str().unwrap()]);
    assert_eq!(out.trim(), "ok: imported 3 location line(s)");
    let out = db.ok(&["item", "import", fixture("items.csv").to_str().unwrap()]);
    assert_eq!(out.trim(), "ok: imported 4 item line(s)");
    let out = db.ok(&[
        "channel",
        "add",
        "WEB",
        "--name",
        "Web store",
        "--kind",
        "shopify",
        "--entity",
        "US-RETAIL",
        "--locations",
        "WH1,WH2",
        "--priority",
        "2",
        "--incoming-window-days",
        "30",
    ]);
    assert_eq!(recorded(&out), 9);
    let out = db.ok(&[
        "channel",
        "add",
        "AMZ",
        "--name",
        "Amazon",
        "--kind",
        "amazon",
        "--entity",
        "US-RETAIL",
        "--locations",
        "WH1",
        "--priority",
        "1",
        "--percentage-cap",
        "50",
        "--buffer",
        "1",
    ]);
    assert_eq!(recorded(&out), 10);
    let out = db.ok(&["safety", "set", "--sku", "TEE-M", "--location", "WH1", "--quantity", "2"]);
    assert_eq!(recorded(&out), 11);
    let out = db.ok(&["channel", "pool", "AMZ", "--sku", "MUG", "--quantity", "5"]);
    assert_eq!(recorded(&out), 12);
    12
}

/// Facts about the worked example the tests check against.
struct Worked {
    /// Expected date of the open purchase order PO-1 (today + 5).
    po_date: String,
    /// Journal sequence of the `adjust -2 lost` movement (reversed later).
    adjust_seq: u64,
    /// Journal sequence of the reversal.
    reverse_seq: u64,
    /// Journal sequence of the commit of reservation SO-1.
    commit_seq: u64,
    journal_seq: u64,
}

/// Asserts the stock row of `sku` at `location` after one step of the worked sequence.
fn assert_row(db: &Db, step: &str, sku: &str, location: &str, s: [i64; 8]) {
    let stock = db.json(&["stock", "--sku", sku, "--location", location, "--json"]);
    let rows = stock_rows(&stock);
    assert_eq!(rows, vec![expect_row(sku, location, s)], "after {step}");
}

/// Master data plus one movement of every kind; asserts each step's effect on the way.
/// States in the arrays: available, committed, picked, reserved, quality_control, damaged,
/// in_transit, incoming.
fn build_worked_ledger(db: &Db) -> Worked {
    let mut seq = setup_master_data(db);
    let mut step = |args: &[&str]| -> u64 {
        let s = recorded(&db.ok(args));
        seq += 1;
        assert_eq!(s, seq, "`ordo {}` took the next journal sequence", args.join(" "));
        s
    };
    let po_date = today_plus(5);
    let tee = ["--sku", "TEE-M", "--location", "WH1"];
    let with = |extra: &[&'static str]| -> Vec<&str> { tee.iter().chain(extra).copied().collect() };

    // 2 cases of 12 arrive: 24 eaches.
    step(&[&["move", "receipt"][..], &with(&["--quantity", "2", "--uom", "case"])].concat());
    assert_row(db, "receipt of 2 cases", "TEE-M", "WH1", [24, 0, 0, 0, 0, 0, 0, 0]);

    step(
        &[
            &["move", "expect", "--expectation", "PO-1"][..],
            &tee,
            &["--quantity", "10", "--expected-on", po_date.as_str()],
        ]
        .concat(),
    );
    assert_row(db, "expect", "TEE-M", "WH1", [24, 0, 0, 0, 0, 0, 0, 10]);

    step(&[&["move", "receipt"][..], &with(&["--quantity", "4", "--expectation", "PO-1"])].concat());
    assert_row(db, "receipt against PO-1", "TEE-M", "WH1", [28, 0, 0, 0, 0, 0, 0, 6]);

    step(&[
        "move",
        "transfer",
        "--transfer",
        "TR-1",
        "--sku",
        "TEE-M",
        "--from",
        "WH1",
        "--to",
        "WH2",
        "--quantity",
        "5",
    ]);
    assert_row(db, "transfer", "TEE-M", "WH1", [23, 0, 0, 0, 0, 0, 0, 6]);
    assert_row(db, "transfer", "TEE-M", "WH2", [0, 0, 0, 0, 0, 0, 5, 0]);

    step(&["move", "transfer-receive", "--transfer", "TR-1", "--quantity", "3"]);
    assert_row(db, "transfer-receive", "TEE-M", "WH2", [3, 0, 0, 0, 0, 0, 2, 0]);

    let commit_seq = step(&[&["move", "commit", "--reservation", "SO-1"][..], &tee, &["--quantity", "4"]].concat());
    assert_row(db, "commit", "TEE-M", "WH1", [19, 4, 0, 0, 0, 0, 0, 6]);

    step(&["move", "release", "--reservation", "SO-1", "--quantity", "1"]);
    assert_row(db, "release", "TEE-M", "WH1", [20, 3, 0, 0, 0, 0, 0, 6]);

    step(&["move", "pick", "--reservation", "SO-1", "--quantity", "2"]);
    assert_row(db, "pick", "TEE-M", "WH1", [20, 1, 2, 0, 0, 0, 0, 6]);

    step(&["move", "ship", "--reservation", "SO-1", "--quantity", "1"]);
    assert_row(db, "ship", "TEE-M", "WH1", [20, 1, 1, 0, 0, 0, 0, 6]);

    step(&[&["move", "return"][..], &with(&["--quantity", "3", "--reference", "RMA-1"])].concat());
    assert_row(db, "return", "TEE-M", "WH1", [20, 1, 1, 0, 3, 0, 0, 6]);

    step(&[&["move", "dispose"][..], &with(&["--quantity", "1", "--disposition", "restock"])].concat());
    assert_row(db, "dispose restock", "TEE-M", "WH1", [21, 1, 1, 0, 2, 0, 0, 6]);

    step(&[&["move", "dispose"][..], &with(&["--quantity", "1", "--disposition", "damaged"])].concat());
    assert_row(db, "dispose damaged", "TEE-M", "WH1", [21, 1, 1, 0, 1, 1, 0, 6]);

    step(&[&["move", "hold"][..], &with(&["--quantity", "2", "--reason", "quality_hold"])].concat());
    assert_row(db, "hold", "TEE-M", "WH1", [19, 1, 1, 2, 1, 1, 0, 6]);

    step(&[&["move", "unhold"][..], &with(&["--quantity", "1"])].concat());
    assert_row(db, "unhold", "TEE-M", "WH1", [20, 1, 1, 1, 1, 1, 0, 6]);

    let adjust_seq = step(&[&["move", "adjust"][..], &with(&["--quantity", "-2", "--reason", "lost"])].concat());
    assert_row(db, "adjust -2", "TEE-M", "WH1", [18, 1, 1, 1, 1, 1, 0, 6]);

    let adjust = adjust_seq.to_string();
    let reverse_seq = step(&["move", "reverse", "--movement", adjust.as_str(), "--reason", "data_correction"]);
    assert_row(db, "reverse of the adjustment", "TEE-M", "WH1", [20, 1, 1, 1, 1, 1, 0, 6]);

    // On hand is 25; counting 24 books -1 to available.
    step(&[&["move", "count"][..], &with(&["--counted", "24"])].concat());
    assert_row(db, "count", "TEE-M", "WH1", [19, 1, 1, 1, 1, 1, 0, 6]);

    step(&[&["move", "write-off"][..], &with(&["--quantity", "1", "--reason", "damaged"])].concat());
    assert_row(db, "write-off", "TEE-M", "WH1", [19, 1, 1, 1, 1, 0, 0, 6]);

    // MUG: 2 cases of 6 + 8 eaches, -1 damaged, 2 committed (fixtures/movements.csv).
    let out = db.ok(&["move", "import", fixture("movements.csv").to_str().unwrap()]);
    assert_eq!(out.trim(), "ok: imported 4 movement line(s)");
    seq += 4;

    Worked { po_date, adjust_seq, reverse_seq, commit_seq, journal_seq: seq }
}

fn worked_stock() -> Vec<Value> {
    vec![
        expect_row("MUG", "WH1", [9, 2, 0, 0, 0, 0, 0, 0]),
        expect_row("MUG", "WH2", [8, 0, 0, 0, 0, 0, 0, 0]),
        expect_row("TEE-M", "WH1", [19, 1, 1, 1, 1, 0, 0, 6]),
        expect_row("TEE-M", "WH2", [3, 0, 0, 0, 0, 0, 2, 0]),
    ]
}

// ----- 1 & 2: setup, movements, stock and ATS ----------------------------------------------------

#[test]
fn setup_through_the_cli_defines_master_data() {
    let db = Db::new();
    assert_eq!(setup_master_data(&db), 12);

    let entities = db.json(&["entity", "list", "--json"]);
    assert_eq!(entities.as_array().map(Vec::len), Some(1), "{entities:#}");
    assert_eq!(entities[0]["code"], "US-RETAIL");
    assert_eq!(entities[0]["functional_currency"], "USD");

    let locations = db.json(&["location", "list", "--json"]);
    let codes: Vec<&str> = locations.as_array().unwrap().iter().map(|l| l["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["WH1", "WH2", "STORE1"]);
    assert_eq!(locations[0]["kind"], "warehouse");
    assert_eq!(locations[0]["geo"], json!({"latitude_micro": 40_735_657, "longitude_micro": -74_172_366}));
    assert_eq!(locations[0]["capabilities"], json!({"ship": true, "pickup": false, "returns": true}));
    assert_eq!(locations[2]["kind"], "store");
    assert_eq!(locations[2]["time_zone"], "America/New_York");

    // The bundle is line 2 of the file but is defined after its components.
    let items = db.json(&["item", "list", "--json"]);
    let skus: Vec<&str> = items.as_array().unwrap().iter().map(|i| i["sku"].as_str().unwrap()).collect();
    assert_eq!(skus, ["TEE-M", "MUG", "SOCK", "GIFT"]);
    assert_eq!(items[0]["gtin"], "810000000012");
    assert_eq!(items[0]["uom_conversions"], json!({"case": 12}));
    assert_eq!(items[0]["options"], json!({"colour": "Black", "size": "M"}));
    assert_eq!(items[3]["components"], json!([{"sku": "TEE-M", "quantity": 1}, {"sku": "MUG", "quantity": 1}]));

    let channels = db.json(&["channel", "list", "--json"]);
    assert_eq!(channels[0]["code"], "WEB");
    assert_eq!(channels[0]["locations"], json!(["WH1", "WH2"]));
    assert_eq!(channels[0]["allocation"]["incoming_window_days"], 30);
    assert_eq!(channels[1]["code"], "AMZ");
    assert_eq!(channels[1]["allocation"]["percentage_cap"], 50);
    assert_eq!(channels[1]["allocation"]["buffer"], 1);

    let safety = db.json(&["safety", "list", "--json"]);
    assert_eq!(safety, json!([{"scope": "sku_at_location", "applies_to": "TEE-M@WH1", "units": 2}]));

    // Nothing is stocked yet, so `stock` lists no rows.
    assert_eq!(db.stock(), json!([]));
    assert_eq!(db.journal_seq(), 12);
}

#[test]
fn every_movement_kind_through_the_cli_gives_exact_stock() {
    let db = Db::new();
    let worked = build_worked_ledger(&db);

    // Every row, every state, exact; ordered by SKU then location.
    assert_eq!(stock_rows(&db.stock()), worked_stock());
    assert_eq!(db.journal_seq(), worked.journal_seq);

    // The filters select rows.
    let mug = db.json(&["stock", "--sku", "MUG", "--json"]);
    assert_eq!(stock_rows(&mug), worked_stock()[..2].to_vec());
    let wh2 = db.json(&["stock", "--location", "WH2", "--json"]);
    assert_eq!(stock_rows(&wh2), vec![worked_stock()[1].clone(), worked_stock()[3].clone()]);

    // The human table shows the same figures under the same headers.
    let table = db.ok(&["stock", "--sku", "TEE-M"]);
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header[..3], ["sku", "location", "on_hand"]);
    assert_eq!(header[3..], STATE_FIELDS);
    let wh1: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(wh1, ["TEE-M", "WH1", "23", "19", "1", "1", "1", "1", "0", "0", "6"]);
    assert!(table.trim_end().ends_with("2 row(s)"), "{table}");

    // A reversal cannot itself be reversed twice over the same original.
    let again = worked.adjust_seq.to_string();
    let err = db.refused(&["move", "reverse", "--movement", &again, "--reason", "data_correction"]);
    assert!(
        err.contains(&format!(
            "movement {} was already reversed by movement {}",
            worked.adjust_seq, worked.reverse_seq
        )),
        "{err}"
    );
    // Two-phase movements are closed by their counterpart, not reversed.
    let commit = worked.commit_seq.to_string();
    let err = db.refused(&["move", "reverse", "--movement", &commit, "--reason", "data_correction"]);
    assert!(err.contains(&format!("movement {commit}")) && err.contains("cannot be reversed"), "{err}");

    // A release without --quantity releases everything still committed; a cancelled
    // expectation leaves nothing incoming.
    db.ok(&["move", "release", "--reservation", "SO-1"]);
    db.ok(&["move", "cancel-expectation", "--expectation", "PO-1"]);
    assert_eq!(row_of(&db.stock(), "TEE-M", "WH1"), Some(expect_row("TEE-M", "WH1", [20, 0, 1, 1, 1, 0, 0, 0])));
    assert_eq!(db.journal_seq(), worked.journal_seq + 2);
}

#[test]
fn uom_case_converts_to_eaches() {
    let db = Db::new();
    setup_master_data(&db);
    db.ok(&["move", "receipt", "--sku", "MUG", "--location", "WH2", "--quantity", "3", "--uom", "case"]);
    db.ok(&[
        "move",
        "adjust",
        "--sku",
        "MUG",
        "--location",
        "WH2",
        "--quantity",
        "-1",
        "--uom",
        "case",
        "--reason",
        "lost",
    ]);
    db.ok(&["move", "receipt", "--sku", "MUG", "--location", "WH2", "--quantity", "2", "--uom", "each"]);
    // 3×6 − 1×6 + 2 = 14.
    assert_eq!(row_of(&db.stock(), "MUG", "WH2"), Some(expect_row("MUG", "WH2", [14, 0, 0, 0, 0, 0, 0, 0])));

    // An item without that unit of measure refuses it, naming the SKU and the unit.
    let before = db.observe();
    let err =
        db.refused(&["move", "receipt", "--sku", "SOCK", "--location", "WH2", "--quantity", "1", "--uom", "case"]);
    assert!(err.contains("\"case\"") && err.contains("SOCK"), "{err}");
    let err =
        db.refused(&["move", "receipt", "--sku", "MUG", "--location", "WH2", "--quantity", "1", "--uom", "pallet"]);
    assert!(err.contains("\"pallet\"") && err.contains("MUG"), "{err}");
    assert_eq!(db.observe(), before);
}

#[test]
fn ats_json_and_explanations() {
    let db = Db::new();
    let worked = build_worked_ledger(&db);
    let ats = db.json(&["ats", "--json"]);
    let rows = ats.as_array().expect("array");
    // One row per item and channel, each exactly {sku, channel, ats, bundle}.
    assert_eq!(rows.len(), 4 * 2);
    for r in rows {
        let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        for k in ["sku", "channel", "ats", "bundle"] {
            assert!(keys.contains(&k), "ATS row lacks {k}: {r}");
        }
        assert_eq!(r["bundle"], json!(r["sku"] == "GIFT"), "{r}");
    }
    // TEE-M on WEB: WH1 19 − safety 2 = 17, WH2 3, + 6 incoming within 30 days = 26.
    // TEE-M on AMZ: WH1 only, 17 × 50% = 8, − buffer 1 = 7.
    // MUG: AMZ's pool of 5 is ring-fenced at WH1 (9 → 4 left), so WEB gets 4 + 8 = 12 and AMZ
    // 5 × 50% − 1 = 1. GIFT = min(TEE-M, MUG) per channel. SOCK has no stock.
    let expected = [
        ("TEE-M", "WEB", 26),
        ("TEE-M", "AMZ", 7),
        ("MUG", "WEB", 12),
        ("MUG", "AMZ", 1),
        ("GIFT", "WEB", 12),
        ("GIFT", "AMZ", 1),
        ("SOCK", "WEB", 0),
        ("SOCK", "AMZ", 0),
    ];
    for (sku, channel, figure) in expected {
        assert_eq!(ats_of(&ats, sku, channel), figure, "ATS of {sku} on {channel}");
    }
    // Filters.
    let amz = db.json(&["ats", "--channel", "AMZ", "--sku", "MUG", "--json"]);
    assert_eq!(amz, json!([{"sku": "MUG", "channel": "AMZ", "ats": 1, "bundle": false}]));

    // --explain, human text: every term of the figure.
    let text = db.ok(&["ats", "--explain", "TEE-M", "--channel", "WEB"]);
    assert!(text.contains("ATS of TEE-M on channel WEB = 26"), "{text}");
    let cells = |line_start: &str| -> Vec<String> {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(line_start))
            .unwrap_or_else(|| panic!("no line starting {line_start:?} in:\n{text}"));
        line.split_whitespace().map(str::to_owned).collect()
    };
    let header = text.lines().find(|l| l.starts_with("location")).expect("location table");
    for term in ["available", "- safety", "= sellable", "pooled for others", "pooled for this"] {
        assert!(header.contains(term), "{header}");
    }
    assert_eq!(cells("WH1"), ["WH1", "19", "2", "17", "0", "0"]);
    assert_eq!(cells("WH2"), ["WH2", "3", "0", "3", "0", "0"]);
    assert_eq!(cells("sellable at the channel's locations").last().unwrap(), "20");
    assert!(text.contains(&format!("incoming PO-1 at WH1 on {}: 6 (counted)", worked.po_date)), "{text}");
    assert_eq!(cells("+ incoming due within 30 day(s)").last().unwrap(), "6");
    assert_eq!(cells("= before cap").last().unwrap(), "26");
    assert_eq!(cells("no percentage cap").last().unwrap(), "26");
    assert_eq!(cells("- buffer").last().unwrap(), "0");
    assert_eq!(cells("= ATS (never below 0)").last().unwrap(), "26");

    let text = db.ok(&["ats", "--explain", "TEE-M", "--channel", "AMZ"]);
    assert!(text.contains("ATS of TEE-M on channel AMZ = 7"), "{text}");
    assert!(text.contains("+ incoming (channel counts none)"), "{text}");
    let cap = text.lines().find(|l| l.contains("percentage cap 50%")).unwrap_or_else(|| panic!("{text}"));
    assert!(cap.trim_end().ends_with("= 8"), "{cap}");
    let buffer = text.lines().find(|l| l.starts_with("- buffer")).unwrap();
    assert!(buffer.trim_end().ends_with(" 1"), "{buffer}");

    // The pooled channel's explanation shows its fixed pool and where it was granted from.
    let text = db.ok(&["ats", "--explain", "MUG", "--channel", "WEB"]);
    assert!(text.contains("ATS of MUG on channel WEB = 12"), "{text}");
    let wh1: Vec<&str> = text.lines().find(|l| l.starts_with("WH1")).unwrap().split_whitespace().collect();
    assert_eq!(wh1, ["WH1", "9", "0", "9", "5", "0"]);
    let text = db.ok(&["ats", "--explain", "MUG", "--channel", "AMZ"]);
    assert!(text.contains("fixed pool of 5: granted from locations") && text.contains("= 1"), "{text}");

    // Bundle explanation.
    let text = db.ok(&["ats", "--explain", "GIFT", "--channel", "WEB"]);
    assert!(text.contains("ATS of GIFT on channel WEB = 12"), "{text}");
    assert!(text.contains("bundle: ATS = min over components"), "{text}");
    let comp = |sku: &str| -> Vec<String> {
        text.lines().find(|l| l.starts_with(sku)).unwrap().split_whitespace().map(str::to_owned).collect()
    };
    assert_eq!(comp("TEE-M"), ["TEE-M", "1", "26", "26", "12"]);
    assert_eq!(comp("MUG"), ["MUG", "1", "12", "12", "12"]);

    // --explain --json: the same terms as fields.
    let e = db.json(&["ats", "--explain", "TEE-M", "--channel", "WEB", "--json"]);
    assert_eq!(e["sku"], "TEE-M");
    assert_eq!(e["channel"], "WEB");
    assert_eq!(e["ats"], 26);
    assert_eq!(e["bundle"], Value::Null);
    let t = &e["stocked"];
    assert_eq!(
        t["locations"],
        json!([
            {"location": "WH1", "available": 19, "safety_stock": 2, "sellable": 17,
             "pooled_for_other_channels": 0, "pooled_for_this_channel": 0},
            {"location": "WH2", "available": 3, "safety_stock": 0, "sellable": 3,
             "pooled_for_other_channels": 0, "pooled_for_this_channel": 0},
        ])
    );
    assert_eq!(t["pool"], Value::Null);
    assert_eq!(t["from_locations"], 20);
    assert_eq!(t["incoming_window_days"], 30);
    assert_eq!(t["incoming_counted"], 6);
    assert_eq!(t["before_cap"], 26);
    assert_eq!(t["percentage_cap"], Value::Null);
    assert_eq!(t["after_cap"], 26);
    assert_eq!(t["buffer"], 0);
    let incoming = t["incoming"].as_array().expect("incoming terms");
    assert_eq!(incoming.len(), 1);
    assert_eq!(incoming[0]["expectation"], "PO-1");
    assert_eq!(incoming[0]["location"], "WH1");
    assert_eq!(incoming[0]["open"], 6);
    assert_eq!(incoming[0]["counted"], true);
    // `expected_on` is serialized as the raw `Date` (days since 1970-01-01) today; accept the
    // YYYY-MM-DD spelling too in case the JSON gains a readable form.
    let days = SystemClock.now().date().add_days(5).days_since_epoch();
    assert!(
        incoming[0]["expected_on"] == json!(days) || incoming[0]["expected_on"] == json!(worked.po_date),
        "{}",
        incoming[0]
    );

    let e = db.json(&["ats", "--explain", "TEE-M", "--channel", "AMZ", "--json"]);
    assert_eq!(
        (&e["ats"], &e["stocked"]["before_cap"], &e["stocked"]["percentage_cap"], &e["stocked"]["after_cap"]),
        (&json!(7), &json!(17), &json!(50), &json!(8))
    );
    assert_eq!((&e["stocked"]["buffer"], &e["stocked"]["incoming_counted"]), (&json!(1), &json!(0)));

    let e = db.json(&["ats", "--explain", "MUG", "--channel", "AMZ", "--json"]);
    assert_eq!((&e["stocked"]["pool"], &e["stocked"]["from_locations"], &e["ats"]), (&json!(5), &json!(5), &json!(1)));
    assert_eq!(e["stocked"]["locations"][0]["pooled_for_this_channel"], 5);

    let e = db.json(&["ats", "--explain", "GIFT", "--channel", "WEB", "--json"]);
    assert_eq!(e["stocked"], Value::Null);
    assert_eq!(e["ats"], 12);
    assert_eq!(
        e["bundle"]["components"],
        json!([
            {"sku": "TEE-M", "per_bundle": 1, "component_ats": 26, "bundles_alone": 26, "granted_units": 12},
            {"sku": "MUG", "per_bundle": 1, "component_ats": 12, "bundles_alone": 12, "granted_units": 12},
        ])
    );
    assert_eq!(e["bundle"]["sharing_with"], json!([]));

    // Queries that cannot be answered say why.
    let err = db.refused(&["ats", "--explain", "TEE-M"]);
    assert!(err.contains("--explain needs --channel"), "{err}");
    let err = db.refused(&["ats", "--explain", "TEE-M", "--channel", "EBAY"]);
    assert!(err.contains("unknown channel EBAY"), "{err}");
    let err = db.refused(&["ats", "--explain", "NOPE", "--channel", "WEB"]);
    assert!(err.contains("unknown SKU NOPE"), "{err}");
    let err = db.refused(&["ats", "--channel", "EBAY"]);
    assert!(err.contains("unknown channel EBAY"), "{err}");
}

// ----- 3: refusals -------------------------------------------------------------------------------

#[test]
fn refused_commands_exit_nonzero_name_the_problem_and_change_nothing() {
    let db = Db::new();
    build_worked_ledger(&db);
    let before = db.observe();

    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec!["move", "receipt", "--sku", "NOPE", "--location", "WH1", "--quantity", "1"],
            vec!["rejected: ", "unknown SKU NOPE"],
        ),
        (
            vec!["move", "receipt", "--sku", "TEE-M", "--location", "NOWHERE", "--quantity", "1"],
            vec!["rejected: ", "unknown location NOWHERE"],
        ),
        (
            vec!["move", "adjust", "--sku", "TEE-M", "--location", "WH1", "--quantity", "-500", "--reason", "lost"],
            vec!["TEE-M", "available@WH1", "would go negative", "has 19", "needs 500"],
        ),
        (
            vec!["move", "commit", "--reservation", "SO-9", "--sku", "MUG", "--location", "WH2", "--quantity", "9"],
            vec!["MUG", "available@WH2", "would go negative", "has 8", "needs 9"],
        ),
        (
            vec!["move", "transfer", "--transfer", "TR-9", "--sku", "TEE-M", "--from", "WH2", "--to", "WH1"]
                .into_iter()
                .chain(["--quantity", "4"])
                .collect(),
            vec!["available@WH2", "would go negative", "has 3", "needs 4"],
        ),
        (
            vec!["move", "adjust", "--sku", "TEE-M", "--location", "WH1", "--quantity", "-1", "--reason", "because"],
            vec!["unknown reason code \"because\"", "lost", "count_correction"],
        ),
        (
            vec!["move", "hold", "--sku", "TEE-M", "--location", "WH1", "--quantity", "1", "--reason", "nope"],
            vec!["unknown reason code \"nope\""],
        ),
        (
            vec!["move", "adjust", "--sku", "TEE-M", "--location", "WH1", "--quantity", "0", "--reason", "lost"],
            vec!["adjustment of 0 units changes nothing"],
        ),
        (
            vec!["move", "receipt", "--sku", "TEE-M", "--location", "WH1", "--quantity", "-3"],
            vec!["quantity must be positive, got -3"],
        ),
        (
            vec!["move", "commit", "--reservation", "SO-1", "--sku", "TEE-M", "--location", "WH1", "--quantity", "1"],
            vec!["reservation SO-1 already exists"],
        ),
        (vec!["move", "pick", "--reservation", "SO-404", "--quantity", "1"], vec!["unknown reservation SO-404"]),
        (
            vec!["move", "ship", "--reservation", "SO-1", "--quantity", "5"],
            vec!["reservation SO-1 has 1 units picked and 1 committed: pick before shipping 5"],
        ),
        (
            vec!["move", "transfer-receive", "--transfer", "TR-1", "--quantity", "3"],
            vec!["transfer TR-1 has 2 units open, cannot take 3"],
        ),
        (
            vec!["move", "return", "--sku", "TEE-M", "--location", "WH2", "--quantity", "1"],
            vec!["location WH2 does not accept returns"],
        ),
        (vec!["move", "receipt", "--sku", "GIFT", "--location", "WH1", "--quantity", "1"], vec!["GIFT is a bundle"]),
        (
            vec!["move", "count", "--sku", "TEE-M", "--location", "WH1", "--counted", "3"],
            vec!["counted 3 on hand", "4 units are committed"],
        ),
        (vec!["move", "reverse", "--movement", "999", "--reason", "other"], vec!["unknown movement 999"]),
        (vec!["channel", "pool", "EBAY", "--sku", "MUG", "--quantity", "1"], vec!["unknown channel EBAY"]),
        (vec!["safety", "set", "--sku", "NOPE", "--quantity", "1"], vec!["unknown SKU NOPE"]),
        (
            vec![
                "channel",
                "add",
                "X",
                "--name",
                "X",
                "--kind",
                "other",
                "--entity",
                "US-RETAIL",
                "--locations",
                "WH9",
            ],
            vec!["unknown location WH9"],
        ),
        (vec!["entity", "add", "EU", "--name", "EU", "--currency", "euro"], vec!["currency \"euro\" is not valid"]),
    ];
    for (args, needles) in cases {
        let err = db.refused(&args);
        for needle in needles {
            assert!(err.contains(needle), "`ordo {}`: stderr lacks {needle:?}:\n{err}", args.join(" "));
        }
        assert_eq!(db.observe(), before, "`ordo {}` changed something", args.join(" "));
    }
}

#[test]
fn item_csv_with_a_bad_gtin_on_line_3_imports_nothing() {
    let db = Db::new();
    db.ok(&["entity", "add", "US-RETAIL", "--name", "US", "--currency", "USD"]);
    let before = db.observe();
    let file = db.file(
        "items.csv",
        "sku,title,gtin,uom_conversions\n\
         GOOD-1,Good one,810000000012,case=12\n\
         BAD,Bad GTIN,810000000013,\n\
         GOOD-2,Good two,,\n",
    );
    let err = db.refused(&["item", "import", &file]);
    assert!(err.contains("line 3"), "{err}");
    assert!(err.contains("column gtin"), "{err}");
    assert!(err.contains("810000000013") && err.contains("check digit"), "{err}");
    assert!(err.contains("nothing was imported"), "{err}");
    let after = db.observe();
    assert_eq!(after, before);
    assert_eq!(after.items, json!([]));
    assert_eq!(after.journal_seq, 1);
}

#[test]
fn location_csv_with_a_bad_coordinate_imports_nothing() {
    let db = Db::new();
    db.ok(&["entity", "add", "US-RETAIL", "--name", "US", "--currency", "USD"]);
    let before = db.observe();
    let file = db.file(
        "locations.csv",
        "code,name,kind,legal_entity,latitude,longitude,time_zone\n\
         WH1,East,warehouse,US-RETAIL,40.7,-74.0,America/New_York\n\
         WH2,West,warehouse,US-RETAIL,39.5,-119.8,America/Los_Angeles\n\
         ST1,Store,store,US-RETAIL,95.5,-73.9,America/New_York\n",
    );
    let err = db.refused(&["location", "import", &file]);
    assert!(err.contains("line 4"), "{err}");
    assert!(err.contains("column latitude"), "{err}");
    assert!(err.contains("95.5"), "{err}");
    assert!(err.contains("nothing was imported"), "{err}");
    let after = db.observe();
    assert_eq!(after, before);
    assert_eq!(after.locations, json!([]));
}

#[test]
fn csv_failing_a_domain_rule_on_a_later_line_imports_nothing() {
    let db = Db::new();
    db.ok(&["entity", "add", "US-RETAIL", "--name", "US", "--currency", "USD"]);
    let before = db.observe();

    // A bundle naming an unknown component. Bundles are defined after plain items, so the
    // rejection comes from the last command of the group; it must still name the bundle's line.
    let file = db.file(
        "bundle.csv",
        "sku,title,components\n\
         A,Alpha,\n\
         KIT,Kit,A:1;GHOST:2\n\
         B,Beta,\n",
    );
    let err = db.refused(&["item", "import", &file]);
    assert!(err.contains("line 3"), "{err}");
    assert!(err.contains("unknown SKU GHOST"), "{err}");
    assert!(err.contains("nothing was imported"), "{err}");
    assert_eq!(db.observe(), before);

    // Line 4 reuses line 2's GTIN: only discoverable after line 2 was decided in the group.
    let file = db.file(
        "gtin.csv",
        "sku,title,gtin\n\
         A,Alpha,810000000012\n\
         B,Beta,810000000029\n\
         C,Gamma,810000000012\n",
    );
    let err = db.refused(&["item", "import", &file]);
    assert!(err.contains("line 4"), "{err}");
    assert!(err.contains("GTIN 810000000012 already belongs to SKU A"), "{err}");
    assert_eq!(db.observe(), before);

    // A location of an unknown legal entity on line 3.
    let file = db.file(
        "locations.csv",
        "code,name,kind,legal_entity,time_zone\n\
         WH1,East,warehouse,US-RETAIL,UTC\n\
         WH2,West,warehouse,EU-RETAIL,UTC\n",
    );
    let err = db.refused(&["location", "import", &file]);
    assert!(err.contains("line 3") && err.contains("unknown legal entity EU-RETAIL"), "{err}");
    let after = db.observe();
    assert_eq!(after, before);
    assert_eq!((after.items, after.locations), (json!([]), json!([])));
}

#[test]
fn movement_csv_with_a_row_going_negative_applies_nothing() {
    let db = Db::new();
    setup_master_data(&db);
    db.ok(&["move", "receipt", "--sku", "MUG", "--location", "WH1", "--quantity", "5"]);
    let before = db.observe();

    // Line 4 needs 20 but lines 2-3 leave 5 + 6 + 3 = 14 available.
    let file = db.file(
        "moves.csv",
        "type,sku,location,quantity,uom,reason,reference\n\
         receipt,MUG,WH1,1,case,,\n\
         receipt,MUG,WH1,3,,,\n\
         adjust,MUG,WH1,-20,,lost,\n\
         receipt,SOCK,WH2,7,,,\n",
    );
    let err = db.refused(&["move", "import", &file]);
    assert!(err.contains("line 4"), "{err}");
    assert!(err.contains("available@WH1 would go negative (has 14, needs 20)"), "{err}");
    assert!(err.contains("nothing was imported"), "{err}");
    assert_eq!(db.observe(), before);
    assert_eq!(stock_rows(&before.stock), vec![expect_row("MUG", "WH1", [5, 0, 0, 0, 0, 0, 0, 0])]);

    // A parse error (unknown reason code) names line and column.
    let file = db.file(
        "moves2.csv",
        "type,sku,location,quantity,reason\n\
         receipt,MUG,WH1,1,\n\
         adjust,MUG,WH1,-1,misplaced\n",
    );
    let err = db.refused(&["move", "import", &file]);
    assert!(err.contains("line 3") && err.contains("column reason") && err.contains("misplaced"), "{err}");
    assert_eq!(db.observe(), before);

    // An unknown location on a later line.
    let file = db.file("moves3.csv", "type,sku,location,quantity\nreceipt,MUG,WH1,1\nreceipt,MUG,WH7,1\n");
    let err = db.refused(&["move", "import", &file]);
    assert!(err.contains("line 3") && err.contains("unknown location WH7"), "{err}");
    assert_eq!(db.observe(), before);

    // A missing file is an error, not a silent no-op.
    let err = db.refused(&["move", "import", "no-such-file.csv"]);
    assert!(err.contains("no-such-file.csv"), "{err}");
    assert_eq!(db.observe(), before);
}

// ----- 4: verify ---------------------------------------------------------------------------------

#[test]
fn verify_passes_on_a_healthy_database_and_after_the_demo() {
    let db = Db::new();
    let worked = build_worked_ledger(&db);
    let out = db.ok(&["verify"]);
    assert!(out.starts_with(&format!("ok: {} journal events replay to the same state", worked.journal_seq)), "{out}");
    let v = db.verify();
    assert_eq!(v["ok"], true);
    assert_eq!(v["journal_seq"], worked.journal_seq);
    assert_eq!(v["stock_rows"], 4);
    assert_eq!(v["problems"], json!([]));

    let demo = Db::new();
    let out = demo.ok(&["demo"]);
    assert!(out.contains("Ordo demo retailer in SQLite"), "{out}");
    assert!(out.contains("5 locations, 5 channels, 210 SKUs (6 bundles)"), "{out}");
    let v = demo.verify();
    assert_eq!(v["ok"], true, "{v:#}");
    assert!(v["journal_seq"].as_u64().unwrap() > 1000, "{v}");
    assert!(v["stock_rows"].as_u64().unwrap() > 100, "{v}");
    // The demo's suggested next commands work.
    let before = demo.stock();
    demo.ok(&["move", "receipt", "--sku", "MUG-LOGO", "--location", "WH-EAST", "--quantity", "2", "--uom", "case"]);
    let after = demo.stock();
    let avail = |s: &Value| row_of(s, "MUG-LOGO", "WH-EAST").unwrap()["available"].as_i64().unwrap();
    assert_eq!(avail(&after), avail(&before) + 24);
    let err = demo.refused(&[
        "move",
        "adjust",
        "--sku",
        "MUG-LOGO",
        "--location",
        "WH-EAST",
        "--quantity",
        "-500",
        "--reason",
        "lost",
    ]);
    assert!(err.contains(&format!("has {}, needs 500", avail(&after))), "{err}");
    assert_eq!(demo.verify()["ok"], true);
}

/// Someone with write access to the database drops the append-only triggers and edits the
/// journal: a changed timestamp (which replays cleanly), a deleted row, a reordering — each
/// breaks the HMAC chain; and the chain only verifies with the key it was written with.
#[test]
fn verify_detects_an_edited_deleted_or_reordered_journal_row_through_the_keyed_chain() {
    let db = Db::new();
    build_worked_ledger(&db);
    let keyed = |args: &[&str], key: &str| db.command(args).env("ORDO_AUDIT_KEY", key).output().unwrap();
    db.ok(&["move", "receipt", "--sku", "MUG", "--location", "WH1", "--quantity", "3"]);
    db.ok(&["move", "receipt", "--sku", "MUG", "--location", "WH1", "--quantity", "4"]);
    let seq = db.journal_seq() as i64;
    // The links are keyed: under another key no row verifies.
    let out = keyed(&["verify", "--json"], "another key");
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["problems"].as_array().unwrap().len(), 20.min(seq as usize), "{v:#}");
    let check = |key: &str| -> (Option<i32>, String) {
        let out = keyed(&["verify", "--json"], key);
        (out.status.code(), String::from_utf8_lossy(&out.stdout).to_string())
    };

    let conn = rusqlite::Connection::open(&db.path).unwrap();
    // Every open re-creates the append-only triggers, so they are dropped before each edit.
    let unguard = || {
        conn.execute_batch("DROP TRIGGER IF EXISTS journal_no_update; DROP TRIGGER IF EXISTS journal_no_delete;")
            .unwrap()
    };
    unguard();
    // A timestamp moved by a second: the state replays the same, the chain does not hold.
    conn.execute("UPDATE journal SET recorded_at = recorded_at + 1000 WHERE seq = ?1", [seq]).unwrap();
    let (code, out) = check("");
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains(&format!("journal row {seq} does not match its chain link")), "{out}");
    unguard();
    conn.execute("UPDATE journal SET recorded_at = recorded_at - 1000 WHERE seq = ?1", [seq]).unwrap();
    // A deleted row leaves a gap.
    let row: (i64, i64, String, Vec<u8>, Vec<u8>) = conn
        .query_row("SELECT seq, recorded_at, kind, payload, chain FROM journal WHERE seq = ?1", [seq - 1], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap();
    assert_eq!(check("").0, Some(0), "restored");
    unguard();
    conn.execute("DELETE FROM journal WHERE seq = ?1", [seq - 1]).unwrap();
    // A gap stops the engine from even opening the journal: refused, naming the gap.
    let out = keyed(&["verify", "--json"], "");
    assert_ne!(out.status.code(), Some(0), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(err.contains(&format!("{}", seq - 1)), "{err}");
    // The two receipts swapped (both replay fine in either order): the links break.
    unguard();
    conn.execute("UPDATE journal SET seq = ?1 WHERE seq = ?2", [seq - 1, seq]).unwrap();
    conn.execute(
        "INSERT INTO journal (seq, recorded_at, kind, sku, payload, chain) VALUES (?1, ?2, ?3, 'MUG', ?4, ?5)",
        rusqlite::params![seq, row.1, row.2, row.3, row.4],
    )
    .unwrap();
    let out = keyed(&["verify", "--json"], "");
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("does not match its chain link"), "{}", describe(&out));
}

#[test]
fn verify_detects_a_tampered_projection_and_the_journal_is_append_only() {
    let db = Db::new();
    let worked = build_worked_ledger(&db);
    db.ok(&["verify"]);

    {
        let conn = rusqlite::Connection::open(&db.path).expect("open the database directly");
        // The journal refuses updates and deletes.
        let e = conn.execute("UPDATE journal SET kind = 'forged' WHERE seq = 1", []).expect_err("UPDATE refused");
        assert!(e.to_string().contains("journal rows cannot be updated"), "{e}");
        let e = conn.execute("DELETE FROM journal", []).expect_err("DELETE refused");
        assert!(e.to_string().contains("journal rows cannot be deleted"), "{e}");
        let e = conn.execute("DELETE FROM journal WHERE seq = ?1", [worked.journal_seq as i64]).expect_err("refused");
        assert!(e.to_string().contains("journal rows cannot be deleted"), "{e}");
        let (count, max): (i64, i64) =
            conn.query_row("SELECT COUNT(*), MAX(seq) FROM journal", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        assert_eq!((count as u64, max as u64), (worked.journal_seq, worked.journal_seq));
    }
    assert_eq!(db.verify()["ok"], true);

    // Tamper with one projection row behind the engine's back.
    {
        let conn = rusqlite::Connection::open(&db.path).unwrap();
        let n = conn
            .execute(
                "UPDATE stock_balance SET available = available + 1, on_hand = on_hand + 1
                 WHERE sku = 'TEE-M' AND location = 'WH1'",
                [],
            )
            .unwrap();
        assert_eq!(n, 1);
    }
    let out = db.run(&["verify"]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("violation: stock projection differs from the ledger"), "{text}");
    assert!(text.trim_end().ends_with("1 violation(s)"), "{text}");

    let out = db.run(&["verify", "--json"]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["journal_seq"], worked.journal_seq);
    let problems = v["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{v:#}");
    assert!(problems[0].as_str().unwrap().contains("stock projection differs"), "{v:#}");

    // The availability projection is checked too.
    {
        let conn = rusqlite::Connection::open(&db.path).unwrap();
        conn.execute("UPDATE stock_balance SET available = available - 1, on_hand = on_hand - 1 WHERE sku = 'TEE-M' AND location = 'WH1'", []).unwrap();
        let figures: String =
            conn.query_row("SELECT figures FROM availability WHERE sku = 'MUG'", [], |r| r.get(0)).unwrap();
        let mut f: Value = serde_json::from_str(&figures).unwrap();
        assert_eq!(f, json!({"WEB": 12, "AMZ": 1}));
        f["WEB"] = json!(13);
        conn.execute("UPDATE availability SET figures = ?1 WHERE sku = 'MUG'", [f.to_string()]).unwrap();
    }
    let out = db.run(&["verify", "--json"]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["problems"], json!(["availability projection differs from the ledger in 1 figure(s)"]), "{v:#}");
}

// ----- 5: several processes, one ledger ----------------------------------------------------------

fn code(s: &str) -> Code {
    Code::new(s).unwrap()
}

fn sku(s: &str) -> Sku {
    Sku::new(s).unwrap()
}

fn receipt(s: &str, location: &str, units: Units) -> DomainCommand {
    DomainCommand::Move(MoveCommand::Receipt { sku: sku(s), location: code(location), units, expectation: None })
}

/// Master data for the in-process engine: the fixtures' entity, locations and items, one channel.
fn engine_master_data() -> Vec<DomainCommand> {
    let mut commands = vec![DomainCommand::DefineLegalEntity(LegalEntity {
        code: code("US-RETAIL"),
        name: "Ordo Outfitters Inc.".into(),
        functional_currency: CurrencyCode::new("USD").unwrap(),
    })];
    let read = |name: &str| std::fs::read(fixture(name)).unwrap();
    commands.extend(csv_import::parse_locations(&read("locations.csv")).unwrap().into_iter().map(|c| c.command));
    commands.extend(csv_import::parse_items(&read("items.csv")).unwrap().into_iter().map(|c| c.command));
    commands.push(DomainCommand::DefineChannel(Channel {
        code: code("WEB"),
        name: "Web store".into(),
        kind: ChannelKind::Shopify,
        legal_entity: code("US-RETAIL"),
        locations: vec![code("WH1"), code("WH2")],
        priority: 1,
        allocation: AllocationPolicy { percentage_cap: None, buffer: 0, incoming_window_days: None },
    }));
    commands
}

fn available(state: &State, s: &str, location: &str) -> Units {
    state.buckets(&sku(s), &code(location)).available()
}

/// The journal's row count and lowest and highest sequence, read directly.
fn journal_extent(path: &Path) -> (u64, u64, u64) {
    let conn = rusqlite::Connection::open(path).unwrap();
    let (n, lo, hi): (i64, i64, i64) = conn
        .query_row("SELECT COUNT(*), COALESCE(MIN(seq), 0), COALESCE(MAX(seq), 0) FROM journal", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    (n as u64, lo as u64, hi as u64)
}

#[test]
fn a_second_process_writing_is_caught_up_on_never_forked() {
    let db = Db::new();
    // This engine stands for a long-running ordo process holding the database open.
    let mut engine = db.engine();
    let setup = engine.execute(vec![Request::Group(engine_master_data())]);
    assert!(setup.results.iter().all(Result::is_ok), "{:?}", setup.results);
    assert_eq!(setup.caught_up, 0);
    let defined = engine.state().last_seq();
    assert_eq!(defined, 9); // entity + 3 locations + 4 items + 1 channel
    let first = engine.execute(vec![Request::One(receipt("TEE-M", "WH1", 10))]);
    assert_eq!(first.results[0].as_ref().unwrap(), &vec![defined + 1]);
    assert_eq!(first.caught_up, 0);

    // A second process records a movement on the same file.
    let cli_seq = recorded(&db.ok(&["move", "receipt", "--sku", "TEE-M", "--location", "WH1", "--quantity", "7"]));
    assert_eq!(cli_seq, defined + 2);
    assert_eq!(engine.state().last_seq(), defined + 1, "the engine has not seen it yet");

    // The engine's next batch catches up on it before deciding: committing 17 is only possible
    // with the CLI's 7 units, and a reservation the CLI made cannot be made twice.
    let cli_commit = recorded(&db.ok(&[
        "move",
        "commit",
        "--reservation",
        "SO-CLI",
        "--sku",
        "TEE-M",
        "--location",
        "WH1",
        "--quantity",
        "2",
    ]));
    assert_eq!(cli_commit, defined + 3);
    let outcome = engine.execute(vec![
        Request::One(receipt("TEE-M", "WH2", 3)),
        Request::One(DomainCommand::Move(MoveCommand::Commit {
            reservation: code("SO-1"),
            sku: sku("TEE-M"),
            location: code("WH1"),
            units: 15,
        })),
        Request::One(DomainCommand::Move(MoveCommand::Commit {
            reservation: code("SO-CLI"),
            sku: sku("TEE-M"),
            location: code("WH2"),
            units: 1,
        })),
    ]);
    assert_eq!(outcome.caught_up, 2, "caught up on the CLI's receipt and commit");
    assert_eq!(outcome.commit_attempts, 1);
    assert_eq!(outcome.results[0].as_ref().unwrap(), &vec![defined + 4]);
    assert_eq!(outcome.results[1].as_ref().unwrap(), &vec![defined + 5]);
    match &outcome.results[2] {
        Err(CommandError::Rejected(r)) => assert!(r.to_string().contains("reservation SO-CLI already exists"), "{r}"),
        other => panic!("expected SO-CLI to be refused as existing, got {other:?}"),
    }

    // One caught-up event on its own: the brief's exact case.
    db.ok(&["move", "receipt", "--sku", "MUG", "--location", "WH2", "--quantity", "4"]);
    let outcome = engine.execute(vec![Request::One(receipt("MUG", "WH1", 1))]);
    assert_eq!(outcome.caught_up, 1);
    assert_eq!(outcome.results[0].as_ref().unwrap(), &vec![defined + 7]);

    let state = engine.state();
    let total = defined + 7;
    assert_eq!(state.last_seq(), total);
    assert_eq!(available(state, "TEE-M", "WH1"), 0); // 10 + 7 − 2 − 15
    assert_eq!(state.buckets(&sku("TEE-M"), &code("WH1")).get(ordo_domain::inventory::StockState::Committed), 17);
    assert_eq!(available(state, "TEE-M", "WH2"), 3);
    assert_eq!(available(state, "MUG", "WH2"), 4);
    assert_eq!(available(state, "MUG", "WH1"), 1);
    assert_eq!(state.ats(&sku("TEE-M"), &code("WEB")), Some(3));
    assert_eq!(state.ats(&sku("MUG"), &code("WEB")), Some(5));

    // The CLI sees the same ledger, contiguous and verified.
    let v = db.verify();
    assert_eq!(v["ok"], true, "{v:#}");
    assert_eq!(v["journal_seq"], total);
    assert_eq!(journal_extent(&db.path), (total, 1, total));
    let stock = db.stock();
    assert_eq!(row_of(&stock, "TEE-M", "WH1"), Some(expect_row("TEE-M", "WH1", [0, 17, 0, 0, 0, 0, 0, 0])));
    assert_eq!(row_of(&stock, "MUG", "WH2"), Some(expect_row("MUG", "WH2", [4, 0, 0, 0, 0, 0, 0, 0])));
    assert_eq!(ats_of(&db.json(&["ats", "--json"]), "TEE-M", "WEB"), 3);

    // A fresh engine rebuilt from the journal agrees with the long-running one.
    let fresh = db.engine();
    assert_eq!(fresh.state(), engine.state());
}

#[test]
fn concurrent_cli_writers_and_an_in_process_engine_never_fork() {
    let db = Db::new();
    let mut engine = db.engine();
    let setup = engine.execute(vec![Request::Group(engine_master_data())]);
    assert!(setup.results.iter().all(Result::is_ok));
    let defined = engine.state().last_seq();

    let done = Arc::new(AtomicBool::new(false));
    let worker = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            // (units received by this engine, events it caught up on, batches)
            let (mut units, mut caught_up, mut batches) = (0, 0, 0u32);
            loop {
                let finished = done.load(Ordering::SeqCst);
                let outcome = engine
                    .execute(vec![Request::One(receipt("SOCK", "WH1", 1)), Request::One(receipt("SOCK", "WH2", 2))]);
                for r in &outcome.results {
                    assert!(r.is_ok(), "in-process receipt failed: {r:?}");
                }
                units += 3;
                caught_up += outcome.caught_up;
                batches += 1;
                // One more batch after the CLI processes finished, so everything is caught up.
                if finished || batches >= 400 {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            (engine, units, caught_up, batches)
        })
    };

    let quantities = [10, 20, 30, 40, 50];
    let children: Vec<_> = quantities
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let location = if i % 2 == 0 { "WH1" } else { "WH2" };
            db.command(&["move", "receipt", "--sku", "SOCK", "--location", location, "--quantity", &q.to_string()])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn ordo")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", describe(&out));
        recorded(&String::from_utf8(out.stdout).unwrap());
    }
    done.store(true, Ordering::SeqCst);
    let (mut engine, engine_units, caught_up, batches) = worker.join().expect("engine thread");
    // Make sure the engine has seen every CLI event (a no-op batch still catches up).
    let last = engine.execute(vec![]);
    let caught_up = caught_up + last.caught_up;

    let cli_units: Units = quantities.iter().sum();
    assert_eq!(caught_up, quantities.len() as u64, "every CLI event was caught up on exactly once");
    let total_events = defined + 2 * u64::from(batches) + quantities.len() as u64;
    let state = engine.state();
    assert_eq!(state.last_seq(), total_events);
    let sock = available(state, "SOCK", "WH1") + available(state, "SOCK", "WH2");
    assert_eq!(sock, engine_units + cli_units);

    let v = db.verify();
    assert_eq!(v["ok"], true, "{v:#}");
    assert_eq!(v["journal_seq"], total_events);
    assert_eq!(journal_extent(&db.path), (total_events, 1, total_events));
    let stock = db.stock();
    let on_hand: i64 =
        ["WH1", "WH2"].iter().map(|l| row_of(&stock, "SOCK", l).unwrap()["on_hand"].as_i64().unwrap()).sum();
    assert_eq!(on_hand, engine_units + cli_units);
    assert_eq!(db.engine().state(), engine.state());
}

// ----- 6: snapshots ------------------------------------------------------------------------------

#[test]
fn snapshot_then_more_movements_still_verifies() {
    let db = Db::new();
    let worked = build_worked_ledger(&db);
    let out = db.ok(&["snapshot"]);
    assert_eq!(out.trim(), format!("ok: snapshot at journal sequence {}", worked.journal_seq));
    assert_eq!(db.verify()["ok"], true);

    db.ok(&["move", "receipt", "--sku", "SOCK", "--location", "WH2", "--quantity", "9"]);
    db.ok(&["move", "pick", "--reservation", "SO-1", "--quantity", "1"]);
    db.ok(&["move", "ship", "--reservation", "SO-1", "--quantity", "2"]);
    let v = db.verify();
    assert_eq!(v["ok"], true, "{v:#}");
    assert_eq!(v["journal_seq"], worked.journal_seq + 3);

    // A second snapshot, and the state opened from it still matches the journal.
    let out = db.ok(&["snapshot"]);
    assert_eq!(out.trim(), format!("ok: snapshot at journal sequence {}", worked.journal_seq + 3));
    db.ok(&["move", "adjust", "--sku", "SOCK", "--location", "WH2", "--quantity", "-4", "--reason", "theft"]);
    assert_eq!(db.verify()["ok"], true);

    let mut expected = worked_stock();
    expected[2] = expect_row("TEE-M", "WH1", [19, 0, 0, 1, 1, 0, 0, 6]);
    expected.push(expect_row("SOCK", "WH2", [5, 0, 0, 0, 0, 0, 0, 0]));
    expected
        .sort_by(|a, b| (a["sku"].as_str(), a["location"].as_str()).cmp(&(b["sku"].as_str(), b["location"].as_str())));
    assert_eq!(stock_rows(&db.stock()), expected);
    let ats = db.json(&["ats", "--json"]);
    assert_eq!(ats_of(&ats, "SOCK", "WEB"), 5);
    assert_eq!(ats_of(&ats, "TEE-M", "WEB"), 26);

    // Opening from the newest snapshot gives the same state as replaying everything.
    let mut engine = db.engine();
    assert_eq!(engine.startup().snapshot_seq, Some(worked.journal_seq + 3));
    assert_eq!(engine.startup().replayed, 1);
    let replayed = engine.replay_from_scratch().unwrap();
    assert_eq!(&replayed, engine.state());
}

/// A snapshot is only a cache: one that does not decode as this build's state (written by a
/// build whose state had another shape, or damaged) is passed over and the journal rebuilds.
#[test]
fn a_snapshot_of_another_shape_is_passed_over() {
    let db = Db::new();
    let worked = build_worked_ledger(&db);
    db.ok(&["snapshot"]);
    let conn = rusqlite::Connection::open(&db.path).unwrap();
    conn.execute("UPDATE snapshot SET state = X'0102030405'", []).unwrap();
    drop(conn);
    let engine = db.engine();
    assert_eq!(engine.startup().snapshot_seq, None);
    assert_eq!(engine.startup().replayed, worked.journal_seq);
    assert_eq!(db.verify()["ok"], true);
    assert_eq!(stock_rows(&db.stock()), worked_stock());
}

// ----- dates -------------------------------------------------------------------------------------

/// `ordo ats` reports the cached figures, computed as of the last journal write; its explanation
/// must explain that same figure even when the date has moved on since (incoming windows count
/// days, so the same ledger gives different figures on different dates).
#[test]
fn ats_and_its_explanation_agree_when_the_last_write_was_on_an_earlier_day() {
    let db = Db::new();
    let today = SystemClock.now();
    let clock = ordo_engine::FixedClock::at(ordo_types::Timestamp::from_millis(today.millis() - 10 * 86_400_000));
    let mut engine = Engine::open(SqliteStore::open(&db.path).unwrap(), Box::new(clock)).unwrap();
    let mut setup = engine_master_data();
    let DomainCommand::DefineChannel(web) = setup.last_mut().unwrap() else { panic!() };
    web.allocation.incoming_window_days = Some(7);
    setup.push(receipt("TEE-M", "WH1", 5));
    setup.push(DomainCommand::Move(MoveCommand::Expect {
        expectation: code("PO-1"),
        sku: sku("TEE-M"),
        location: code("WH1"),
        units: 10,
        // Outside the 7-day window ten days ago, inside it today.
        expected_on: today.date().add_days(2),
    }));
    let outcome = engine.execute(vec![Request::Group(setup)]);
    assert!(outcome.results.iter().all(Result::is_ok), "{:?}", outcome.results);
    drop(engine);

    let figure = ats_of(&db.json(&["ats", "--sku", "TEE-M", "--channel", "WEB", "--json"]), "TEE-M", "WEB");
    let explained = db.json(&["ats", "--explain", "TEE-M", "--channel", "WEB", "--json"]);
    assert_eq!(explained["ats"], json!(figure), "`ats` says {figure}, its explanation {explained:#}");
    assert_eq!(explained["stocked"]["incoming"][0]["open"], 10, "{explained:#}");
}

/// A mistyped `--db` must not silently become a new, empty database.
#[test]
fn commands_on_a_missing_database_are_refused() {
    let db = Db::new();
    for args in [
        &["stock", "--json"][..],
        &["ats"],
        &["verify"],
        &["move", "receipt", "--sku", "A", "--location", "L", "--quantity", "1"],
    ] {
        let mut full = vec!["--db", "typo.db"];
        full.extend_from_slice(args);
        let out = Command::new(BIN).args(&full).current_dir(db.dir.path()).env_remove("ORDO_DB").output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
        assert!(String::from_utf8_lossy(&out.stderr).contains("no database at typo.db"), "{}", describe(&out));
        assert!(!db.dir.path().join("typo.db").exists());
    }
}

// ----- regressions -----------------------------------------------------------------------------

/// The csv crate's line counter is one too low for CRLF files (BurntSushi/rust-csv#395).
#[test]
fn csv_errors_name_the_right_line_in_crlf_files() {
    let db = Db::new();
    db.ok(&["entity", "add", "US-RETAIL", "--name", "US", "--currency", "USD"]);
    let file = db.file("items.csv", "sku,title,gtin\r\nA,Alpha,\r\nB,Beta,\r\nC,Gamma,123\r\n");
    let err = db.refused(&["item", "import", &file]);
    assert!(err.contains("line 4, column gtin"), "{err}");
    let file = db.file("items2.csv", "sku,title\r\nA,Alpha\r\nB,Beta,extra\r\n");
    let err = db.refused(&["item", "import", &file]);
    assert!(err.contains("line 3"), "{err}");
}

/// Quantities are bounded per movement, so no balance can be driven to overflow.
#[test]
fn a_receipt_overflowing_a_balance_is_refused_cleanly() {
    let db = Db::new();
    setup_master_data(&db);
    let before = db.observe();
    for quantity in [i64::MAX.to_string(), "1000000001".to_owned()] {
        let err = db.refused(&["move", "receipt", "--sku", "SOCK", "--location", "WH1", "--quantity", &quantity]);
        assert!(err.contains("out of range"), "{err}");
        assert_eq!(db.observe(), before);
    }
    db.ok(&["move", "receipt", "--sku", "SOCK", "--location", "WH1", "--quantity", "1000000000"]);
}
