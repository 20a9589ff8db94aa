//! `ordo worker` and `ordo outbox …`: the outbox relays of `ordo-relay` run from the command
//! line over the configured database, and what they left behind inspected and redriven.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use ordo_engine::Outbox;
use ordo_relay::RelayConfig;
use serde_json::json;

use crate::backend::Target;

fn config(path: &Path) -> Result<RelayConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    RelayConfig::parse(&text, |name| std::env::var(name).ok()).with_context(|| format!("in {}", path.display()))
}

pub fn worker(target: &Target, path: &Path, until_idle: bool) -> Result<ExitCode> {
    let config = config(path)?;
    if config.channels.is_empty() && config.bus.is_none() {
        bail!("{} configures no channel and no bus: nothing to relay", path.display());
    }
    // Fail now, not in a relay thread, when the database is not there.
    target.open_store()?;
    let names: Vec<String> = config
        .channels
        .iter()
        .map(|c| c.name())
        .chain(config.bus.as_ref().map(|b| format!("bus ({} stream {})", b.url, b.stream)))
        .collect();
    eprintln!("relaying to {}", names.join(", "));
    let opener = target.clone();
    let open: ordo_relay::worker::OpenStore = Arc::new(move || {
        opener
            .open_store()
            .map(|s| Box::new(s) as Box<dyn Outbox>)
            .map_err(|e| ordo_engine::StoreError::Database(e.to_string()))
    });
    let worker =
        ordo_relay::worker::Worker::start(config, open, until_idle, Arc::new(|line: &str| eprintln!("{line}")));
    let mut failed = false;
    for (name, stats) in worker.join() {
        match stats {
            Ok(s) => println!(
                "{name}: {} rows read, {} calls, {} availability updates, {} messages, {} retries, {} conflicts, {} dead letters",
                s.rows_read, s.calls, s.availability_updates, s.messages, s.retries, s.conflicts, s.dead_letters
            ),
            Err(e) => {
                eprintln!("{name}: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

pub fn status(target: &Target, as_json: bool) -> Result<ExitCode> {
    let mut store = target.open_store()?;
    let pending = ordo_engine::Store::outbox_pending(&mut store)?;
    let head = store.outbox_head()?;
    let mut cursors = Vec::new();
    for name in known_destinations(&mut store)? {
        cursors.push((name.clone(), store.outbox_cursor(&name)?));
    }
    if as_json {
        let c: Vec<_> =
            cursors.iter().map(|(n, c)| json!({"destination": n, "cursor": c, "behind": head - c})).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"head": head, "undelivered_to_bus": pending, "relays": c}))?
        );
    } else {
        println!("outbox head {head}; {pending} not yet on the bus");
        for (n, c) in cursors {
            println!("{n}\tcursor {c}\t{} behind", head - c);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The bus and every destination with a dead letter.
fn known_destinations(store: &mut crate::backend::AnyStore) -> Result<Vec<String>> {
    let mut names: Vec<String> = store.relay_dead_letters()?.into_iter().map(|d| d.destination).collect();
    names.push(ordo_engine::BUS_DESTINATION.into());
    names.sort();
    names.dedup();
    Ok(names)
}

pub fn dead_letters(target: &Target, as_json: bool) -> Result<ExitCode> {
    let letters = target.open_store()?.relay_dead_letters()?;
    if as_json {
        let values: Vec<_> = letters
            .iter()
            .map(|d| {
                json!({"id": d.id, "destination": d.destination, "outbox_id": d.outbox_id, "topic": d.topic,
                       "key": d.key, "reason": d.reason, "attempts": d.attempts, "failed_at": d.failed_at.to_string(),
                       "redriven_at": d.redriven_at.map(|t| t.to_string()), "payload": d.payload})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&values)?);
    } else {
        for d in &letters {
            let state = d.redriven_at.map_or_else(|| "waiting".to_owned(), |t| format!("redriven {t}"));
            println!(
                "{}\t{}\t{}\toutbox {}\t{} attempt(s)\t{}\t{state}",
                d.id, d.destination, d.topic, d.outbox_id, d.attempts, d.reason
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn redrive(target: &Target, id: u64, path: &Path) -> Result<ExitCode> {
    let config = config(path)?;
    let mut store = target.open_store()?;
    let letter = store
        .relay_dead_letters()?
        .into_iter()
        .find(|d| d.id == id)
        .with_context(|| format!("unknown relay dead letter {id}"))?;
    if let Some(at) = letter.redriven_at {
        bail!("relay dead letter {id} was already redriven at {at}");
    }
    let destination = config
        .channels
        .into_iter()
        .find(|c| c.name() == letter.destination)
        .with_context(|| format!("{} is not configured in {}", letter.destination, path.display()))?;
    // The current figures, from the ledger.
    let engine = target.open_engine()?;
    let channel = ordo_types::Code::new(destination.channel.clone()).context("channel code")?;
    let state = engine.state();
    let current = |sku: &str| ordo_types::Sku::new(sku).ok().and_then(|s| state.ats(&s, &channel));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut relay = ordo_relay::ChannelRelay::new(ordo_relay::connectors::Connector::new(destination));
    match runtime.block_on(relay.redrive(&letter, current)) {
        Ok(()) => {
            store.relay_redriven(id, engine.now())?;
            println!("ok: relay dead letter {id} delivered to {}", letter.destination);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("refused: {}: {e}", letter.destination);
            Ok(ExitCode::from(1))
        }
    }
}
