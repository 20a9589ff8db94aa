//! `ordo import pos-csv`: till sales posted at once from the store's stock (the ledger moves,
//! revenue and cost are booked), the same file again posts nothing, a sale the store cannot
//! cover is refused alone and kept, a malformed row is answered with line, column and value.

mod common;

use common::{Db, retailer};

const SALES: &str = "transaction_id,store,time,sku,quantity,unit_price,tax,tender
T-1001,STORE-1,2026-11-27T10:15:00Z,SOCK,2,8.00,1.42,card
T-1001,STORE-1,2026-11-27T10:15:00Z,MUG,1,12.00,1.07,card
T-1002,STORE-1,2026-11-27 10:20:00,SOCK,1,7.50,,cash
";

#[test]
fn till_sales_are_posted_from_the_store_once() {
    let db = Db::new();
    retailer(&db, "POS", "pos", "STORE-1");
    db.ok(&["gl", "cost", "--sku", "SOCK", "--unit-cost", "2.00"]);
    db.ok(&["gl", "cost", "--sku", "MUG", "--unit-cost", "5.00"]);
    db.ok(&["move", "receipt", "--sku", "SOCK", "--location", "STORE-1", "--quantity", "5"]);
    db.ok(&["move", "receipt", "--sku", "MUG", "--location", "STORE-1", "--quantity", "1"]);
    db.ok(&["move", "receipt", "--sku", "MUG", "--location", "EAST", "--quantity", "9"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sales.csv");
    std::fs::write(&file, SALES).unwrap();
    let out = db.ok(&["import", "pos-csv", file.to_str().unwrap()]);
    assert!(out.contains("POS/STORE-1-T-1001: shipped") && out.contains("POS/STORE-1-T-1002: shipped"), "{out}");
    // The store's shelf: SOCK 5 − 3, MUG 1 − 1; the warehouse untouched.
    let stock = db.json(&["stock", "--json"]);
    // (A bucket that is all zeros is not listed.)
    let on_hand = |sku: &str, loc: &str| {
        stock
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["sku"] == sku && r["location"] == loc)
            .map_or(0.into(), |r| r["available"].clone())
    };
    assert_eq!(
        (on_hand("SOCK", "STORE-1"), on_hand("MUG", "STORE-1"), on_hand("MUG", "EAST")),
        (2.into(), 0.into(), 9.into())
    );
    // Booked at the till: revenue 16.00 + 12.00 + 7.50 = 35.50, tax 2.49, cost 3 × 2.00 + 5.00.
    let tb = db.json(&["gl", "trial-balance", "--json"]);
    let balance = |name: &str| {
        tb.as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"].as_str().is_some_and(|n| n.contains(name)))
            .map(|r| r["balance"].as_str().unwrap().to_owned())
    };
    assert_eq!(balance("Revenue").as_deref(), Some("-35.50"), "{tb:#}");
    assert_eq!(balance("Cost of goods").as_deref(), Some("11.00"), "{tb:#}");
    assert_eq!(db.json(&["verify", "--json"])["ok"], true);

    // Again: nothing posted twice.
    let before = db.journal_seq();
    let again = db.run(&["import", "pos-csv", file.to_str().unwrap()]);
    assert!(again.status.success());
    assert_eq!(String::from_utf8_lossy(&again.stderr).matches("already posted").count(), 2);
    assert_eq!(db.journal_seq(), before);

    // A sale the store's shelf cannot cover is refused alone (and kept); the next one posts.
    let more = dir.path().join("more.csv");
    std::fs::write(
        &more,
        "transaction_id,store,time,sku,quantity,unit_price,tender\nT-2001,STORE-1,2026-11-27T12:00:00Z,MUG,1,12.00,card\nT-2002,STORE-1,2026-11-27T12:01:00Z,SOCK,1,8.00,card\n",
    )
    .unwrap();
    let out = db.run(&["import", "pos-csv", more.to_str().unwrap()]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("POS/STORE-1-T-2001") && said.contains("line(s) [2]"), "{said}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("POS/STORE-1-T-2002: shipped"));
    let letters = db.json(&["deadletter", "list", "--json"]);
    assert_eq!(
        letters[0]["raw"],
        "transaction_id,store,time,sku,quantity,unit_price,tender\nT-2001,STORE-1,2026-11-27T12:00:00Z,MUG,1,12.00,card"
    );
    // All or nothing: the refused sale left no order behind.
    assert!(db.refused(&["order", "show", "POS/STORE-1-T-2001"]).contains("unknown order"));

    // A malformed row: line, column, value; nothing posted.
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "transaction_id,store,time,sku,quantity,unit_price,tender\nT-3001,STORE-1,2026-11-27T13:00:00Z,SOCK,1,8.005,card\n").unwrap();
    let before = db.journal_seq();
    let err = db.refused(&["import", "pos-csv", bad.to_str().unwrap()]);
    assert!(err.contains("line 2, column unit_price (\"8.005\")"), "{err}");
    assert_eq!(db.journal_seq(), before + 1, "only the dead letter");
}
