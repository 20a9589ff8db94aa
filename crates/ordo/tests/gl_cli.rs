//! `ordo gl …` end to end: purchase costs and exchange rates from the command line (bad input
//! refused with what is wrong, nothing recorded), receipts and adjustments posted, the trial
//! balance and valuation as tables and JSON, and `ordo verify` checking the books.

mod common;

use common::{Db, fixture};

fn setup(db: &Db) {
    db.ok(&["entity", "add", "US-RETAIL", "--name", "US", "--currency", "USD"]);
    db.ok(&["location", "import", fixture("locations.csv").to_str().unwrap()]);
    db.ok(&["item", "import", fixture("items.csv").to_str().unwrap()]);
}

#[test]
fn costs_receipts_and_the_trial_balance_from_the_command_line() {
    let db = Db::new();
    setup(&db);
    let before = db.journal_seq();
    for (args, message) in [
        (vec!["gl", "cost", "--sku", "TEE-M", "--unit-cost", "8.005"], "more decimal places than the currency has"),
        (vec!["gl", "cost", "--sku", "TEE-M", "--unit-cost", "eight"], "expected a decimal number"),
        (vec!["gl", "cost", "--sku", "NOPE", "--unit-cost", "8"], "unknown SKU NOPE"),
        (vec!["gl", "fx", "--from", "EUR", "--to", "EUR", "--date", "2026-11-01", "--rate", "1"], "needs no rate"),
        (vec!["gl", "fx", "--from", "EUR", "--to", "USD", "--date", "2026-13-01", "--rate", "1.08"], "--date"),
    ] {
        let out = db.run(&args);
        assert!(!out.status.success(), "{args:?}");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(text.contains(message), "{args:?}: {text}");
    }
    assert_eq!(db.journal_seq(), before, "refused settings record nothing");
    db.ok(&["gl", "cost", "--sku", "TEE-M", "--unit-cost", "8.00", "--landed", "0.50"]);
    db.ok(&["gl", "fx", "--from", "EUR", "--to", "USD", "--date", "2026-11-01", "--rate", "1.0842"]);
    db.ok(&["move", "receipt", "--sku", "TEE-M", "--location", "WH1", "--quantity", "10"]);
    db.ok(&["move", "adjust", "--sku", "TEE-M", "--location", "WH1", "--quantity", "-2", "--reason", "theft"]);
    // 10 × 8.50 = 85.00 in; 2 × 8.50 = 17.00 of shrink out.
    let tb = db.json(&["gl", "trial-balance", "--json"]);
    let balance = |number: &str| -> String {
        let row = tb.as_array().unwrap().iter().find(|r| r["account"] == number);
        row.unwrap_or_else(|| panic!("no account {number} in {tb:#}"))["balance"].as_str().unwrap().to_owned()
    };
    assert_eq!(balance("1300"), "68.00");
    assert_eq!(balance("2100"), "-85.00");
    assert_eq!(balance("5100"), "17.00");
    let table = db.ok(&["gl", "trial-balance"]);
    assert!(table.contains("US-RETAIL: debits − credits = 0 (balanced: true)"), "{table}");
    let valuation = db.json(&["gl", "valuation", "--json"]);
    assert_eq!(valuation[0]["units"], 8);
    assert_eq!(valuation[0]["value_minor"], 6_800);
    let entries = db.json(&["gl", "entries", "--json"]);
    assert_eq!(entries.as_array().unwrap().len(), 2);
    assert_eq!(entries[0]["entry"]["rule"], "receipt");
    assert_eq!(db.json(&["verify", "--json"])["ok"], true);
}
