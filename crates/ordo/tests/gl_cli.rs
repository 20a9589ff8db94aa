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

fn settlement_sample() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/samples/amazon/settlement_v2_flatfile_xieyi138_sample.txt")
}

#[test]
fn a_settlement_report_is_imported_once_reconciled_and_its_variances_listed() {
    let db = Db::new();
    setup(&db);
    db.ok(&[
        "channel",
        "add",
        "AMAZON-US",
        "--name",
        "Amazon",
        "--kind",
        "amazon",
        "--entity",
        "US-RETAIL",
        "--locations",
        "WH1",
    ]);
    // A file of another layout is refused with what it lacks, and nothing is recorded.
    let dir = tempfile::tempdir().unwrap();
    let legacy = dir.path().join("legacy.txt");
    std::fs::write(&legacy, "settlement-id\ttotal-amount\tcurrency\tprice-type\tprice-amount\n1\t2.00\tUSD\t\t\n")
        .unwrap();
    let before = db.journal_seq();
    let refused = db.refused(&["import", "amazon-settlement", legacy.to_str().unwrap()]);
    assert!(refused.contains("line 1") && refused.contains("legacy (V1)"), "{refused}");
    // Nothing imported; the file is kept raw as a dead letter, with the reason.
    assert!(refused.contains("kept as dead letter 1"), "{refused}");
    assert_eq!(db.journal_seq(), before + 1);
    let kept = db.json(&["deadletter", "list", "--json"]);
    assert_eq!(kept[0]["source"], "import:amazon-settlement:AMAZON-US");
    assert!(kept[0]["raw"].as_str().unwrap().starts_with("settlement-id\ttotal-amount"));
    let shown = db.ok(&["deadletter", "show", "1"]);
    assert!(shown.contains("reason: line 1"), "{shown}");
    assert!(db.refused(&["deadletter", "redrive", "1"]).contains("importing the corrected file again"));
    let sample = settlement_sample();
    let shown = db.json(&["import", "amazon-settlement", sample.to_str().unwrap(), "--json"]);
    assert_eq!(
        (shown["stated_total_minor"].as_i64(), shown["reconciled_total_minor"].as_i64()),
        (Some(58_289), Some(58_289))
    );
    assert_eq!(shown["balanced"], true);
    assert_eq!(shown["by_fee_type"]["reserve"], 40_044);
    let seq = db.journal_seq();
    // Again: nothing new.
    let out = db.run(&["import", "amazon-settlement", sample.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already imported"));
    assert_eq!(db.journal_seq(), seq);
    let show = db.json(&["settlement", "show", "28471003921", "--json"]);
    assert_eq!(show["settlement_id"], "28471003921");
    let variances = db.json(&["settlement", "variances", "--json"]);
    assert_eq!(variances.as_array().unwrap().len(), 4, "the sample's four orders are not in Ordo: {variances:#}");
    assert!(variances[0]["variance"]["reason"].as_str().unwrap().contains("not in Ordo"));
    // The payout reached the bank; the books still balance.
    let tb = db.json(&["gl", "trial-balance", "--json"]);
    let bank = tb.as_array().unwrap().iter().find(|r| r["account"] == "1000").unwrap();
    assert_eq!(bank["balance"], "582.89");
    assert_eq!(db.json(&["verify", "--json"])["ok"], true);
    assert_eq!(db.refused(&["settlement", "show", "nope"]), "no settlement \"nope\" has been imported\n");
}

#[test]
fn shopify_payouts_import_all_or_nothing_and_disagreements_are_variances() {
    let db = Db::new();
    setup(&db);
    db.ok(&[
        "channel",
        "add",
        "SHOPIFY-DTC",
        "--name",
        "Shopify",
        "--kind",
        "shopify",
        "--entity",
        "US-RETAIL",
        "--locations",
        "WH1",
    ]);
    let payouts = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/samples/shopify/shopify_python_api_payouts.json");
    let payouts = payouts.to_str().unwrap();
    // One payout is in CAD and no rate is set: the whole file is refused, nothing recorded.
    let before = db.journal_seq();
    let refused = db.refused(&["import", "shopify-payouts", payouts]);
    assert!(refused.contains("no CAD → USD exchange rate"), "{refused}");
    assert_eq!(db.journal_seq(), before);
    db.ok(&["gl", "fx", "--from", "CAD", "--to", "USD", "--date", "2019-01-01", "--rate", "0.7541"]);
    let out = db.run(&["import", "shopify-payouts", payouts, "--json"]);
    assert!(out.status.success(), "{}", common::describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("payout 854088011 is scheduled"));
    let variances = db.json(&["settlement", "variances", "--json"]);
    let disagreeing: Vec<&str> =
        variances.as_array().unwrap().iter().map(|v| v["variance"]["settlement_id"].as_str().unwrap()).collect();
    assert_eq!(disagreeing, ["39438702", "974708905"], "the fixture's two payouts whose summary misses their amount");
    let paid = db.json(&["settlement", "show", "710174591", "--json"]);
    assert_eq!((paid["stated_total_minor"].as_i64(), paid["balanced"].as_bool()), (Some(4_190), Some(true)));
    assert_eq!(db.json(&["verify", "--json"])["ok"], true);
}

#[test]
fn returns_from_the_command_line_over_the_demo_retailer() {
    let db = Db::new();
    let out = db.ok(&["demo"]);
    assert!(out.contains("RMA-1001") && out.contains("graded [B]"), "{out}");
    let rma = db.json(&["return", "show", "RMA-1001", "--json"]);
    let refund = &rma[0]["refund"];
    // Paid minus 10 % restocking (grade B) minus the 5.95 label.
    let paid: i64 = rma[0]["lines"][0]["paid_net_minor"].as_i64().unwrap()
        + rma[0]["lines"][0]["paid_tax_minor"].as_object().unwrap().values().map(|v| v.as_i64().unwrap()).sum::<i64>();
    let fee = refund["restocking_fee_minor"].as_i64().unwrap();
    assert_eq!(fee, (rma[0]["lines"][0]["paid_net_minor"].as_i64().unwrap() * 1_000 + 5_000) / 10_000);
    assert_eq!(refund["amount_minor"].as_i64().unwrap(), paid - fee - 595);
    let order = format!(
        "{}/{}",
        rma[0]["order"]["channel"].as_str().unwrap(),
        rma[0]["order"]["channel_order_id"].as_str().unwrap()
    );
    let line = rma[0]["lines"][0]["order_line_id"].as_str().unwrap().to_owned();
    let before = db.journal_seq();
    for (args, message) in [
        (
            vec![
                "return",
                "create",
                "--rma",
                "RMA-1001",
                "--order",
                order.as_str(),
                "--line",
                &format!("{line}:1"),
                "--reason",
                "x",
            ],
            "RMA RMA-1001 already exists",
        ),
        (
            vec!["return", "create", "--rma", "RMA-9", "--order", "SHOPIFY-DTC/NOPE", "--line", "1:1", "--reason", "x"],
            "unknown order",
        ),
        (
            vec!["return", "create", "--rma", "RMA-9", "--order", order.as_str(), "--line", "1", "--reason", "x"],
            "is not LINE_ID:VALUE",
        ),
        (vec!["return", "inspect", "--rma", "RMA-1001", "--grade", "1:E"], "grade \"E\" is not A, B, C or D"),
        (vec!["return", "refund", "--rma", "RMA-1001"], "already refunded"),
        (vec!["return", "receive", "--rma", "RMA-404", "--location", "WH-EAST"], "unknown RMA RMA-404"),
        (vec!["return", "exchange", "--rma", "RMA-1001", "--line", "1"], "is not LINE_ID:VALUE"),
        (vec!["return", "exchange", "--rma", "RMA-1001", "--line", &format!("{line}:TEE")], "already refunded"),
    ] {
        let out = db.run(&args);
        assert!(!out.status.success(), "{args:?}");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(text.contains(message), "{args:?}: {text}");
    }
    assert_eq!(db.journal_seq(), before, "refused return commands record nothing");
    // The demo's third return was exchanged like for like: a replacement order, nothing refunded.
    let exchanged = db.json(&["return", "show", "RMA-1003", "--json"]);
    let replacement = &exchanged[0]["exchange"]["replacement"];
    assert_eq!(exchanged[0]["refund"], serde_json::Value::Null);
    let replacement =
        format!("{}/{}", replacement["channel"].as_str().unwrap(), replacement["channel_order_id"].as_str().unwrap());
    let shown = db.json(&["order", "show", &replacement, "--json"]);
    assert_eq!(shown["order"]["tags"], serde_json::json!(["exchange:RMA-1003"]));
    // An exchange from the command line, with the replacement's id defaulted from the RMA.
    let orders = db.json(&["orders", "--json"]);
    let returned: Vec<String> = db
        .json(&["return", "show", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["order"]["channel_order_id"].as_str().unwrap().to_owned())
        .collect();
    let other = orders
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["order"]["channel"] == "SHOPIFY-DTC"
                && !r["shipments"].as_array().unwrap().is_empty()
                && !returned.iter().any(|id| r["order"]["channel_order_id"] == id.as_str())
        })
        .expect("another shipped web order");
    let other_key = format!("SHOPIFY-DTC/{}", other["order"]["channel_order_id"].as_str().unwrap());
    let other_line = other["order"]["lines"][0]["line_id"].as_str().unwrap().to_owned();
    let other_sku = other["lines"][0]["sku"].as_str().unwrap().to_owned();
    let at = other["shipments"][0]["location"].as_str().unwrap().to_owned();
    db.ok(&[
        "return",
        "create",
        "--rma",
        "RMA-7",
        "--order",
        &other_key,
        "--line",
        &format!("{other_line}:1"),
        "--reason",
        "x",
    ]);
    db.ok(&["return", "receive", "--rma", "RMA-7", "--location", &at]);
    db.ok(&["return", "inspect", "--rma", "RMA-7", "--grade", &format!("{other_line}:A")]);
    db.ok(&["return", "exchange", "--rma", "RMA-7", "--line", &format!("{other_line}:{other_sku}")]);
    let shown = db.json(&["order", "show", "SHOPIFY-DTC/EX-RMA-7", "--json"]);
    assert_eq!(shown["order"]["lines"][0]["item"]["sku"], other_sku.as_str());
    let table = db.ok(&["return", "show", "RMA-7"]);
    assert!(table.contains("EX-RMA-7"), "{table}");
    let tb = db.json(&["gl", "trial-balance", "--json"]);
    assert!(tb.as_array().unwrap().iter().any(|r| r["account"] == "4100"), "sales returns are booked: {tb:#}");
    assert_eq!(db.json(&["verify", "--json"])["ok"], true);
}

#[test]
fn an_invoice_shows_what_the_ledger_booked_for_its_shipment() {
    let db = Db::new();
    db.ok(&["demo"]);
    let orders = db.json(&["orders", "--json"]);
    let shipped = orders
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["order"]["channel"] == "SHOPIFY-DTC" && !r["shipments"].as_array().unwrap().is_empty())
        .expect("the demo ships web orders");
    let key = format!("SHOPIFY-DTC/{}", shipped["order"]["channel_order_id"].as_str().unwrap());
    let shipment = shipped["shipments"][0]["shipment_id"].as_str().unwrap();
    let invoice = db.ok(&["order", "document", &key, "--shipment", shipment]);
    assert!(invoice.starts_with("<!doctype html>") && invoice.contains("Ordo Outfitters Inc."), "{invoice}");
    // The sale entry of that shipment: its revenue credit is the invoice's net.
    let entries = db.json(&["gl", "entries", "--last", "100000", "--json"]);
    let reference = format!("{key} shipment {shipment}");
    let entry = entries.as_array().unwrap().iter().find(|e| e["entry"]["reference"] == reference.as_str()).unwrap();
    let revenue: i64 = entry["entry"]["postings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["from"] == "revenue")
        .map(|p| p["units"].as_i64().unwrap())
        .sum();
    let net =
        format!("<tr><th colspan=\"3\">net</th><td class=\"n\">{}.{:02} USD</td></tr>", revenue / 100, revenue % 100);
    assert!(invoice.contains(&net), "expected {net} in {invoice}");
    let slip = db.ok(&["order", "document", &key, "--shipment", shipment, "--kind", "packing-slip"]);
    assert!(slip.contains("Packing slip") && !slip.contains("USD"), "no prices on a packing slip: {slip}");
    assert!(db.refused(&["order", "document", &key, "--shipment", "NOPE"]).contains("has no shipment \"NOPE\""));
}

#[test]
fn an_unreadable_shopify_order_is_kept_and_redriven_only_when_it_reads() {
    let db = Db::new();
    setup(&db);
    db.ok(&[
        "channel",
        "add",
        "SHOPIFY-DTC",
        "--name",
        "Shopify",
        "--kind",
        "shopify",
        "--entity",
        "US-RETAIL",
        "--locations",
        "WH1",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("order.json");
    // A line with neither a SKU nor a variant id cannot be mapped.
    std::fs::write(&file, r#"{"order": {"id": 1001, "currency": "USD", "created_at": "2026-11-20T10:00:00-05:00", "line_items": [{"id": 1, "quantity": 1, "price": "5.00"}]}}"#).unwrap();
    let refused = db.refused(&["import", "shopify-order", file.to_str().unwrap()]);
    assert!(refused.contains("line_items[0].variant_id") && refused.contains("kept as dead letter 1"), "{refused}");
    let seq = db.journal_seq();
    let again = db.refused(&["deadletter", "redrive", "1"]);
    assert!(again.contains("still unreadable, nothing changed"), "{again}");
    assert_eq!(db.journal_seq(), seq);
    let list = db.ok(&["deadletter", "list"]);
    assert!(list.contains("import:shopify-order:SHOPIFY-DTC") && list.contains("waiting"), "{list}");
    assert_eq!(db.refused(&["deadletter", "show", "9"]), "unknown dead letter 9\n");
}

#[test]
fn ship_confirm_finds_the_node_the_order_was_picked_at() {
    let db = Db::new();
    db.ok(&["demo"]);
    // A wave of one: dispatched and its pick list issued.
    let wave = db.json(&["wave", "release", "--node", "WH-EAST", "--limit", "1", "--json"]);
    assert_eq!(wave["orders"].as_array().unwrap().len(), 1, "{wave:#}");
    assert!(!wave["pick_list"].as_array().unwrap().is_empty());
    let picking = db.json(&["orders", "--state", "picking", "--json"]);
    assert_eq!(picking.as_array().unwrap().len(), 1);
    let order = &picking[0]["order"];
    let key = format!("{}/{}", order["channel"].as_str().unwrap(), order["channel_order_id"].as_str().unwrap());
    // Not packed yet: the state machine refuses, and nothing changes.
    let seq = db.journal_seq();
    let refused = db.refused(&["ship", &key, "--carrier", "UPS", "--tracking", "1Z1"]);
    assert!(refused.starts_with("rejected:"), "{refused}");
    assert_eq!(db.journal_seq(), seq);
    db.ok(&["order", "pack", &key]);
    db.ok(&["ship", &key, "--carrier", "UPS", "--tracking", "1Z1"]);
    let shown = db.json(&["order", "show", &key, "--json"]);
    assert_eq!(shown["status"], "shipped");
    assert_eq!(shown["shipments"][0]["tracking"], "1Z1");
}
