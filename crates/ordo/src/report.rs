//! What the CLI prints: aligned tables for people, and `--json` shapes for scripts. The JSON
//! shapes are part of the interface (documented in README.md) and only ever gain fields.

use std::process::ExitCode;

use anyhow::{Result, bail};
use ordo_domain::availability::AtsExplanation;
use ordo_domain::inventory::StockState;
use ordo_domain::{State, StockRow};
use ordo_engine::{Engine, Store};
use serde_json::{Value, json};

use crate::backend::{AnyStore, Target};

pub fn describe_target(target: &Target) -> String {
    match target {
        Target::Sqlite(p) => format!("SQLite {}", p.display()),
        Target::Postgres(url) => format!("PostgreSQL {}", url.split('@').next_back().unwrap_or("")),
    }
}

/// Prints rows as left-aligned columns.
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row.clone());
    }
}

fn print_json(value: &Value) {
    println!("{}", serde_json::to_string_pretty(value).expect("JSON values serialize"));
}

pub fn stock_json(row: &StockRow) -> Value {
    let b = &row.buckets;
    let mut o = json!({
        "sku": row.sku.as_str(),
        "location": row.location.as_str(),
        "on_hand": b.on_hand(),
    });
    for state in StockState::ALL {
        o[state.as_str()] = json!(b.get(state));
    }
    o["in_transit"] = json!(b.in_transit_inbound);
    o["incoming"] = json!(b.incoming);
    o
}

pub fn stock(rows: &[StockRow], as_json: bool) {
    if as_json {
        print_json(&Value::Array(rows.iter().map(stock_json).collect()));
        return;
    }
    let mut headers = vec!["sku", "location", "on_hand"];
    headers.extend(StockState::ALL.map(|s| s.as_str()));
    headers.extend(["in_transit", "incoming"]);
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let b = &r.buckets;
            let mut cells = vec![r.sku.to_string(), r.location.to_string(), b.on_hand().to_string()];
            cells.extend(StockState::ALL.map(|s| b.get(s).to_string()));
            cells.extend([b.in_transit_inbound.to_string(), b.incoming.to_string()]);
            cells
        })
        .collect();
    table(&headers, &body);
    println!("{} row(s)", rows.len());
}

pub fn ats(state: &State, channel: Option<&str>, sku: Option<&str>, as_json: bool) -> Result<()> {
    if let Some(c) = channel
        && !state.channels().iter().any(|ch| ch.code.as_str() == c)
    {
        bail!("unknown channel {c}");
    }
    if let Some(s) = sku
        && !state.items().iter().any(|i| i.sku.as_str() == s)
    {
        bail!("unknown SKU {s}");
    }
    let mut rows = Vec::new();
    for item in state.items().iter().filter(|i| sku.is_none_or(|s| i.sku.as_str() == s)) {
        for ch in state.channels().iter().filter(|c| channel.is_none_or(|x| c.code.as_str() == x)) {
            let figure = state.ats(&item.sku, &ch.code).expect("known SKU and channel");
            rows.push((item.sku.to_string(), ch.code.to_string(), figure, item.is_bundle()));
        }
    }
    if as_json {
        let values = rows.iter().map(|(s, c, a, b)| json!({"sku": s, "channel": c, "ats": a, "bundle": b})).collect();
        print_json(&Value::Array(values));
    } else {
        let body: Vec<Vec<String>> = rows
            .iter()
            .map(|(s, c, a, b)| {
                vec![s.clone(), c.clone(), a.to_string(), if *b { "bundle".into() } else { String::new() }]
            })
            .collect();
        table(&["sku", "channel", "ats", ""], &body);
    }
    Ok(())
}

pub fn explanation(e: &AtsExplanation, as_json: bool) {
    if as_json {
        print_json(&serde_json::to_value(e).expect("serializable"));
        return;
    }
    println!("ATS of {} on channel {} = {}", e.sku, e.channel, e.ats);
    if let Some(t) = &e.stocked {
        println!();
        let body: Vec<Vec<String>> = t
            .locations
            .iter()
            .map(|l| {
                vec![
                    l.location.to_string(),
                    l.available.to_string(),
                    l.safety_stock.to_string(),
                    l.sellable.to_string(),
                    l.pooled_for_other_channels.to_string(),
                    l.pooled_for_this_channel.to_string(),
                ]
            })
            .collect();
        table(&["location", "available", "- safety", "= sellable", "pooled for others", "pooled for this"], &body);
        println!();
        match t.pool {
            Some(p) => println!("  fixed pool of {p}: granted from locations        {}", t.from_locations),
            None => println!("  sellable at the channel's locations, after pools {}", t.from_locations),
        }
        for i in &t.incoming {
            println!(
                "  incoming {} at {} on {}: {} {}",
                i.expectation,
                i.location,
                i.expected_on,
                i.open,
                if i.counted { "(counted)" } else { "(outside the window, not counted)" }
            );
        }
        match t.incoming_window_days {
            Some(d) => println!("+ incoming due within {d} day(s)                   {}", t.incoming_counted),
            None => println!("+ incoming (channel counts none)                  0"),
        }
        println!("= before cap                                       {}", t.before_cap);
        match t.percentage_cap {
            Some(p) => println!("× percentage cap {p}% (rounded down)              = {}", t.after_cap),
            None => println!("  no percentage cap                                {}", t.after_cap),
        }
        println!("- buffer                                           {}", t.buffer);
        println!("= ATS (never below 0)                              {}", e.ats);
    }
    if let Some(b) = &e.bundle {
        println!("bundle: ATS = min over components of ⌊units granted / per bundle⌋");
        let body: Vec<Vec<String>> = b
            .components
            .iter()
            .map(|c| {
                vec![
                    c.sku.to_string(),
                    c.per_bundle.to_string(),
                    c.component_ats.to_string(),
                    c.bundles_alone.to_string(),
                    c.granted_units.to_string(),
                ]
            })
            .collect();
        table(&["component", "per bundle", "component ATS", "bundles alone", "granted units"], &body);
        if !b.sharing_with.is_empty() {
            let names: Vec<String> = b.sharing_with.iter().map(|s| s.to_string()).collect();
            println!(
                "components are shared with {}: their ATS is split fairly, never double counted",
                names.join(", ")
            );
        }
    }
}

pub fn entities(state: &State, as_json: bool) {
    let list: Vec<_> = state.legal_entities().collect();
    if as_json {
        print_json(&serde_json::to_value(&list).expect("serializable"));
    } else {
        let body: Vec<Vec<String>> =
            list.iter().map(|e| vec![e.code.to_string(), e.name.clone(), e.functional_currency.to_string()]).collect();
        table(&["code", "name", "currency"], &body);
    }
}

pub fn items(state: &State, as_json: bool) {
    if as_json {
        print_json(&serde_json::to_value(state.items()).expect("serializable"));
        return;
    }
    let body: Vec<Vec<String>> = state
        .items()
        .iter()
        .map(|i| {
            let options: Vec<String> = i.options.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let components: Vec<String> = i.components.iter().map(|c| format!("{}×{}", c.quantity, c.sku)).collect();
            vec![
                i.sku.to_string(),
                i.title.clone(),
                i.style.clone().unwrap_or_default(),
                options.join(" "),
                i.gtin.as_ref().map(|g| g.as_str().to_owned()).unwrap_or_default(),
                components.join(" + "),
            ]
        })
        .collect();
    table(&["sku", "title", "style", "options", "gtin", "components"], &body);
}

pub fn locations(state: &State, as_json: bool) {
    if as_json {
        print_json(&serde_json::to_value(state.locations()).expect("serializable"));
        return;
    }
    let body: Vec<Vec<String>> = state
        .locations()
        .iter()
        .map(|l| {
            let caps =
                [("ship", l.capabilities.ship), ("pickup", l.capabilities.pickup), ("returns", l.capabilities.returns)];
            let caps: Vec<&str> = caps.iter().filter(|(_, on)| *on).map(|(n, _)| *n).collect();
            vec![
                l.code.to_string(),
                l.name.clone(),
                l.kind.as_str().into(),
                l.legal_entity.to_string(),
                l.time_zone.clone(),
                caps.join(","),
            ]
        })
        .collect();
    table(&["code", "name", "kind", "entity", "time zone", "capabilities"], &body);
}

pub fn channels(state: &State, as_json: bool) {
    if as_json {
        print_json(&serde_json::to_value(state.channels()).expect("serializable"));
        return;
    }
    let body: Vec<Vec<String>> = state
        .channels()
        .iter()
        .map(|c| {
            let a = &c.allocation;
            vec![
                c.code.to_string(),
                c.kind.as_str().into(),
                c.priority.to_string(),
                c.locations.iter().map(|l| l.to_string()).collect::<Vec<_>>().join(","),
                a.percentage_cap.map(|p| format!("{p}%")).unwrap_or_default(),
                a.buffer.to_string(),
                a.incoming_window_days.map(|d| format!("{d}d")).unwrap_or_default(),
            ]
        })
        .collect();
    table(&["code", "kind", "priority", "locations", "cap", "buffer", "incoming window"], &body);
}

pub fn safety(state: &State, as_json: bool) {
    use ordo_domain::catalog::SafetyStockScope as S;
    let rows: Vec<(String, String, i64)> = state
        .safety_rules()
        .iter()
        .map(|(scope, units)| {
            let (kind, what) = match scope {
                S::SkuAtLocation(s, l) => ("sku_at_location", format!("{s}@{l}")),
                S::Sku(s) => ("sku", s.to_string()),
                S::SkuClass(c) => ("sku_class", c.to_string()),
                S::Location(l) => ("location", l.to_string()),
            };
            (kind.to_owned(), what, *units)
        })
        .collect();
    if as_json {
        let v = rows.iter().map(|(k, w, u)| json!({"scope": k, "applies_to": w, "units": u})).collect();
        print_json(&Value::Array(v));
    } else {
        let body: Vec<Vec<String>> = rows.iter().map(|(k, w, u)| vec![k.clone(), w.clone(), u.to_string()]).collect();
        table(&["scope", "applies to", "units"], &body);
    }
}

fn sorted(mut rows: Vec<StockRow>) -> Vec<StockRow> {
    rows.retain(|r| !r.buckets.is_empty());
    rows.sort_by(|a, b| (a.sku.as_str(), a.location.as_str()).cmp(&(b.sku.as_str(), b.location.as_str())));
    rows
}

/// `ordo verify`: invariants, replay equality, projections equal to state.
pub fn verify(engine: &mut Engine<AnyStore>, as_json: bool) -> Result<ExitCode> {
    let as_of = engine.availability_as_of()?;
    let mut problems = engine.state().check_invariants(as_of);
    // First the chain: an edited, inserted, deleted or reordered journal row, even one that
    // replays cleanly (a changed timestamp), breaks its HMAC link.
    let (chained, chain_problems) = engine.verify_chain()?;
    problems.extend(chain_problems);
    let replayed = engine.replay_from_scratch()?;
    if &replayed != engine.state() {
        problems.push("replaying the whole journal does not reproduce the state opened from the snapshot".into());
    }
    problems.extend(replayed.check_invariants(as_of).into_iter().map(|p| format!("after full replay: {p}")));
    let state = engine.state().clone();
    let projection = sorted(engine.store_mut().stock_projection()?);
    let live = sorted(state.stock_rows());
    if projection != live {
        let differing = projection.iter().filter(|r| !live.contains(r)).count()
            + live.iter().filter(|r| !projection.contains(r)).count();
        problems.push(format!("stock projection differs from the ledger in {differing} row(s)"));
    }
    let availability = engine.store_mut().availability_projection()?;
    let mut mismatched = 0;
    let mut seen = std::collections::BTreeSet::new();
    for (sku, channel, figure) in &availability {
        seen.insert((sku.clone(), channel.clone()));
        let expected = state.items().iter().find(|i| i.sku.as_str() == sku).and_then(|i| {
            state.channels().iter().find(|c| c.code.as_str() == channel).and_then(|c| state.ats(&i.sku, &c.code))
        });
        if expected != Some(*figure) {
            mismatched += 1;
        }
    }
    for item in state.items() {
        for ch in state.channels() {
            if !seen.contains(&(item.sku.to_string(), ch.code.to_string())) && state.ats(&item.sku, &ch.code) != Some(0)
            {
                mismatched += 1;
            }
        }
    }
    if mismatched > 0 {
        problems.push(format!("availability projection differs from the ledger in {mismatched} figure(s)"));
    }
    let ok = problems.is_empty();
    if as_json {
        print_json(&json!({
            "ok": ok, "journal_seq": state.last_seq(), "chain_rows": chained, "stock_rows": live.len(), "problems": problems
        }));
    } else if ok {
        println!(
            "ok: {} journal events replay to the same state and their chain holds; {} stock rows and every ATS figure match the projections; all invariants hold",
            state.last_seq(),
            live.len()
        );
    } else {
        for p in &problems {
            println!("violation: {p}");
        }
        println!("{} violation(s)", problems.len());
    }
    // 1 is a refused command, 2 a usage error (clap); 3 says the data failed verification.
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(3) })
}

fn functional(state: &State, entity: &ordo_types::LegalEntityCode) -> ordo_types::CurrencyCode {
    state
        .legal_entities()
        .find(|e| e.code == *entity)
        .map(|e| e.functional_currency)
        .unwrap_or_else(|| ordo_types::CurrencyCode::new("XXX").expect("ISO 4217's no-currency code"))
}

/// `ordo gl trial-balance`: debit-positive balances per entity and account, and their total.
pub fn trial_balance(state: &State, entity: Option<&str>, as_json: bool) {
    let rows: Vec<(&ordo_types::LegalEntityCode, &ordo_domain::accounting::GlAccount, i64)> = state
        .gl()
        .balances()
        .iter()
        .filter(|((e, _), b)| **b != 0 && entity.is_none_or(|x| e.as_str() == x))
        .map(|((e, a), b)| (e, a, *b))
        .collect();
    if as_json {
        let json: Vec<Value> = rows
            .iter()
            .map(|(e, a, b)| {
                let currency = functional(state, e);
                json!({"entity": e, "account": a.number(), "name": a.name(), "balance_minor": b,
                       "balance": ordo_types::format_decimal(*b, currency.exponent()), "currency": currency})
            })
            .collect();
        print_json(&Value::Array(json));
        return;
    }
    let mut body: Vec<Vec<String>> = Vec::new();
    let mut totals: std::collections::BTreeMap<&ordo_types::LegalEntityCode, i64> = Default::default();
    for (e, a, b) in &rows {
        let currency = functional(state, e);
        let text = ordo_types::format_decimal(b.abs(), currency.exponent());
        let (debit, credit) = if *b >= 0 { (text, String::new()) } else { (String::new(), text) };
        body.push(vec![e.to_string(), a.number().into(), a.name(), debit, credit, currency.to_string()]);
        *totals.entry(e).or_insert(0) += b;
    }
    table(&["entity", "account", "name", "debit", "credit", "currency"], &body);
    for (e, total) in totals {
        println!("{e}: debits − credits = {total} (balanced: {})", total == 0);
    }
}

/// `ordo gl entries`: the last `last` journal entries (GL detail).
pub fn gl_entries(state: &State, entity: Option<&str>, last: usize, as_json: bool) {
    let entries: Vec<&(u64, ordo_domain::accounting::JournalEntry)> =
        state.gl().entries().iter().filter(|(_, e)| entity.is_none_or(|x| e.entity.as_str() == x)).collect();
    let shown = &entries[entries.len().saturating_sub(last)..];
    if as_json {
        print_json(&json!(shown.iter().map(|(seq, e)| json!({"journal_seq": seq, "entry": e})).collect::<Vec<_>>()));
        return;
    }
    let mut body = Vec::new();
    for (seq, e) in shown {
        for p in &e.postings {
            let amount = ordo_types::format_decimal(p.units, e.currency.exponent());
            body.push(vec![
                seq.to_string(),
                e.date.to_string(),
                e.entity.to_string(),
                format!("{:?}", e.rule),
                format!("{} {}", p.to.number(), p.to.name()),
                format!("{} {}", p.from.number(), p.from.name()),
                format!("{amount} {}", e.currency),
                e.reference.clone(),
            ]);
        }
    }
    table(&["seq", "date", "entity", "rule", "debit", "credit", "amount", "reference"], &body);
}

/// `ordo gl valuation`: units and value per entity and SKU, and the Inventory account beside.
pub fn valuation(state: &State, as_json: bool) {
    let rows: Vec<_> = state.gl().valuation().iter().filter(|(_, v)| v.units != 0 || v.value_minor != 0).collect();
    if as_json {
        let json: Vec<Value> = rows
            .iter()
            .map(|((e, s), v)| json!({"entity": e, "sku": s, "units": v.units, "value_minor": v.value_minor}))
            .collect();
        print_json(&Value::Array(json));
        return;
    }
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|((e, s), v)| {
            let currency = functional(state, e);
            let average = if v.units > 0 { v.value_minor / v.units } else { 0 };
            vec![
                e.to_string(),
                s.to_string(),
                v.units.to_string(),
                ordo_types::format_decimal(average, currency.exponent()),
                ordo_types::format_decimal(v.value_minor, currency.exponent()),
                currency.to_string(),
            ]
        })
        .collect();
    table(&["entity", "sku", "units", "average cost", "value", "currency"], &body);
}

/// `ordo settlement show` and the import's answer: stated beside reconciled, per fee type, per
/// order, and the variances.
pub fn settlement(r: &ordo_domain::settlement::ReconciledSettlement, as_json: bool) {
    if as_json {
        print_json(&json!({
            "channel": r.settlement.channel,
            "settlement_id": r.settlement.settlement_id,
            "currency": r.settlement.currency,
            "deposit_date": r.settlement.deposit_date,
            "lines": r.settlement.lines.len(),
            "stated_total_minor": r.settlement.stated_total_minor,
            "reconciled_total_minor": r.reconciled_total_minor,
            "balanced": r.reconciled_total_minor == r.settlement.stated_total_minor,
            "by_fee_type": r.by_fee_type.iter().map(|(f, a)| (f.as_str(), *a)).collect::<std::collections::BTreeMap<_, _>>(),
            "fee_leakage_minor": r.fee_leakage_minor,
            "orders": r.orders,
            "variances": r.variances,
        }));
        return;
    }
    let s = &r.settlement;
    let amount = |minor: i64| format!("{} {}", ordo_types::format_decimal(minor, s.currency.exponent()), s.currency);
    println!(
        "settlement {} of {} ({} lines, deposited {})",
        s.settlement_id,
        s.channel,
        s.lines.len(),
        s.deposit_date.map(|d| d.to_string()).unwrap_or_else(|| "-".into())
    );
    println!("  stated total     {}", amount(s.stated_total_minor));
    println!(
        "  reconciled total {}  ({})",
        amount(r.reconciled_total_minor),
        if r.reconciled_total_minor == s.stated_total_minor { "to the cent" } else { "DIFFERS" }
    );
    let body: Vec<Vec<String>> = r.by_fee_type.iter().map(|(f, a)| vec![f.as_str().to_owned(), amount(*a)]).collect();
    table(&["fee type", "amount"], &body);
    let known = r.orders.iter().filter(|o| o.known).count();
    println!(
        "  {} orders: {known} matched in Ordo, {} not; fee leakage {}; {} variance(s) (`ordo settlement variances`)",
        r.orders.len(),
        r.orders.len() - known,
        amount(r.fee_leakage_minor),
        r.variances.len()
    );
}

/// `ordo settlement variances`: the variance queue of every imported settlement.
pub fn variances(state: &State, as_json: bool) {
    let all: Vec<(&ordo_domain::settlement::ReconciledSettlement, &ordo_domain::settlement::Variance)> =
        state.gl().settlements().values().flat_map(|r| r.variances.iter().map(move |v| (r, v))).collect();
    if as_json {
        print_json(&json!(
            all.iter().map(|(r, v)| json!({"channel": r.settlement.channel, "variance": v})).collect::<Vec<_>>()
        ));
        return;
    }
    let body: Vec<Vec<String>> = all
        .iter()
        .map(|(r, v)| {
            let e = r.settlement.currency.exponent();
            vec![
                r.settlement.channel.to_string(),
                v.settlement_id.clone(),
                v.order_id.clone().unwrap_or_default(),
                v.fee_type.as_str().to_owned(),
                v.expected_minor.map(|x| ordo_types::format_decimal(x, e)).unwrap_or_else(|| "-".into()),
                ordo_types::format_decimal(v.actual_minor, e),
                v.reason.clone(),
                v.source_lines.iter().map(u64::to_string).collect::<Vec<_>>().join(","),
            ]
        })
        .collect();
    table(&["channel", "settlement", "order", "fee type", "expected", "actual", "reason", "file lines"], &body);
}

/// `ordo return show`: RMAs with their lines, grades and refund.
pub fn rmas(returns: &ordo_domain::returns::Returns, rmas: &[&ordo_domain::returns::Rma], as_json: bool) {
    if as_json {
        let rows: Vec<serde_json::Value> = rmas
            .iter()
            .map(|r| {
                let mut row = json!(r);
                row["exchange"] = json!(returns.exchange(&r.rma_id));
                row["exchange_refund"] = json!(returns.exchange_refund(&r.rma_id));
                row
            })
            .collect();
        print_json(&json!(rows));
        return;
    }
    let body: Vec<Vec<String>> = rmas
        .iter()
        .map(|r| {
            let lines: Vec<String> = r
                .lines
                .iter()
                .map(|l| format!("{}×{}{}", l.units, l.sku, l.grade.map(|g| format!(" ({g:?})")).unwrap_or_default()))
                .collect();
            let refund = r.refund.as_ref().map_or_else(
                || "-".to_owned(),
                |f| {
                    format!(
                        "{} (fee {}, label {})",
                        ordo_types::format_decimal(f.amount_minor, 2),
                        ordo_types::format_decimal(f.restocking_fee_minor, 2),
                        ordo_types::format_decimal(f.return_shipping_minor, 2)
                    )
                },
            );
            let exchange = returns.exchange(&r.rma_id).map_or_else(
                || "-".to_owned(),
                |x| {
                    let swapped: Vec<String> = x.lines.iter().map(|(line, sku)| format!("{line}→{sku}")).collect();
                    let cancelled = returns.exchange_refund(&r.rma_id).map_or_else(String::new, |f| {
                        format!("; cancelled, refunded {}", ordo_types::format_decimal(f.amount_minor, 2))
                    });
                    format!(
                        "{} {} (credit {}{cancelled})",
                        x.replacement.channel_order_id,
                        swapped.join(", "),
                        ordo_types::format_decimal(x.credit.amount_minor, 2)
                    )
                },
            );
            vec![
                r.rma_id.clone(),
                r.order.to_string(),
                format!("{:?}", r.status).to_lowercase(),
                lines.join(", "),
                refund,
                exchange,
            ]
        })
        .collect();
    table(&["rma", "order", "status", "lines", "refund", "exchange"], &body);
}

/// `ordo wave plan|release`: the orders in release order and the pick list.
pub fn wave(w: &ordo_domain::orders::waves::Wave, as_json: bool) {
    if as_json {
        print_json(&json!(w));
        return;
    }
    println!("wave at {}: {} order(s), next carrier cut-off {}", w.node, w.orders.len(), w.next_cutoff);
    let body: Vec<Vec<String>> = w
        .orders
        .iter()
        .map(|o| {
            vec![
                o.key.to_string(),
                o.promised_by.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                format!("{:?}", o.service_level),
                if o.before_cutoff { "ships today".into() } else { String::new() },
            ]
        })
        .collect();
    table(&["order", "promised by", "service", ""], &body);
    println!("pick list:");
    let picks: Vec<Vec<String>> =
        w.pick_list.iter().map(|p| vec![p.sku.to_string(), p.units.to_string(), p.orders.len().to_string()]).collect();
    table(&["sku", "units", "orders"], &picks);
}

fn money(minor: i64, currency: &str) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    format!("{sign}{}.{:02} {currency}", minor.abs() / 100, minor.abs() % 100)
}

/// `ordo orders` and `ordo exceptions`: one row per order (JSON: the full records).
pub fn orders(records: &[&ordo_domain::orders::book::OrderRecord], as_json: bool) {
    if as_json {
        print_json(&serde_json::to_value(records).expect("serializable"));
        return;
    }
    let body: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            let holds: Vec<&str> = r.holds.iter().map(|h| h.as_str()).collect();
            let reserved: i64 = r.lines.iter().map(|l| l.reserved()).sum();
            let backordered: i64 = r.lines.iter().map(|l| l.backordered).sum();
            vec![
                r.key().to_string(),
                r.status.as_str().to_owned(),
                holds.join(","),
                money(r.order.net_minor(), r.order.currency.as_str()),
                reserved.to_string(),
                backordered.to_string(),
                r.order.placed_at.to_string(),
            ]
        })
        .collect();
    table(&["order", "status", "holds", "value", "reserved", "backordered", "placed"], &body);
    println!("{} order(s)", records.len());
}

/// `ordo order show`: everything about one order, including why it was sourced where it was.
pub fn order(r: &ordo_domain::orders::book::OrderRecord, as_json: bool) {
    if as_json {
        print_json(&serde_json::to_value(r).expect("serializable"));
        return;
    }
    let o = &r.order;
    println!("order {}  status {}", r.key(), r.status.as_str());
    println!(
        "  customer {} ({:?}), {} · {} · placed {} · payment {:?}",
        o.customer.name,
        o.customer.account_status,
        money(o.net_minor(), o.currency.as_str()),
        o.shipping.method,
        o.placed_at,
        o.payment_status
    );
    if !r.holds.is_empty() {
        let holds: Vec<&str> = r.holds.iter().map(|h| h.as_str()).collect();
        println!("  holds: {}", holds.join(", "));
    }
    if !r.findings.is_empty() {
        println!("  {}:", if r.holds.is_empty() { "findings (overridden)" } else { "findings" });
        for f in &r.findings {
            println!("    {f}");
        }
    }
    println!();
    let body: Vec<Vec<String>> = r
        .lines
        .iter()
        .map(|l| {
            let at: Vec<String> =
                l.reservations.iter().map(|x| format!("{}@{} ({})", x.units, x.location, x.reservation)).collect();
            let backordered = match (l.backordered, l.expected_on) {
                (0, _) => "0".to_owned(),
                (n, Some(on)) => format!("{n} (expected {on})"),
                (n, None) => format!("{n} (no open supply)"),
            };
            vec![
                l.line_id.clone(),
                l.sku.as_ref().map_or("?".to_owned(), |s| s.to_string()),
                l.units.to_string(),
                at.join(" "),
                backordered,
                l.cancelled.to_string(),
                l.picked.to_string(),
                l.shipped.to_string(),
            ]
        })
        .collect();
    table(&["line", "sku", "units", "reserved", "backordered", "cancelled", "picked", "shipped"], &body);
    if !r.shipments.is_empty() {
        println!();
        let rows: Vec<Vec<String>> = r
            .shipments
            .iter()
            .map(|s| {
                let lines: Vec<String> = s.lines.iter().map(|l| format!("{}×{}", l.units, l.line_id)).collect();
                vec![
                    s.shipment_id.clone(),
                    s.location.to_string(),
                    format!("{} {} {}", s.carrier, s.service, s.tracking),
                    lines.join(" "),
                    s.shipped_at.to_string(),
                    s.delivered_at.map_or_else(|| "-".to_owned(), |t| t.to_string()),
                ]
            })
            .collect();
        table(&["shipment", "from", "carrier / tracking", "lines", "shipped", "delivered"], &rows);
    }
    if let Some(outcome) = &r.sourcing {
        println!();
        match outcome.decision() {
            Some(d) => {
                println!("sourcing: {}", d.reason);
                let rows: Vec<Vec<String>> = d
                    .candidates
                    .iter()
                    .map(|c| {
                        let nodes: Vec<&str> = c.nodes.iter().map(|n| n.as_str()).collect();
                        vec![
                            nodes.join("+"),
                            c.units_assigned.to_string(),
                            c.cost.total_minor.to_string(),
                            c.verdict.clone(),
                        ]
                    })
                    .collect();
                table(&["candidate", "units", "cost (minor)", "verdict"], &rows);
            }
            None => println!("sourcing: {outcome:?}"),
        }
    }
    println!();
    for c in &r.history {
        if c.from == c.to {
            println!("  {}  ({})  by {:?}: {}", c.at, c.to.as_str(), c.actor, c.reason);
        } else {
            println!("  {}  {} → {}  by {:?}: {}", c.at, c.from.as_str(), c.to.as_str(), c.actor, c.reason);
        }
    }
}
