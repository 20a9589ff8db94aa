//! `ordo import x12` and `ordo export x12-846|x12-856|x12-810`: EDI trading partners through
//! the X12 readers and writers of `ordo-channels`.
//!
//! An inbound interchange is recorded (sender + ISA13) in the same transaction as the orders it
//! captures, so a re-sent interchange is recognised and ignored. Every document Ordo writes
//! (997, 855, 846, 856, 810) takes a control number issued from the journal and is journaled as
//! sent, which queues it in the outbox for the partner's transport; a copy is written to a file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use ordo_channels::x12::{
    self, Party,
    ack::{SetVerdict, decisions, functional_ack_997, po_ack_855},
    inbound::{self, Envelopes, SetOutcome},
    po850::{PurchaseOrder, Purpose},
    write::{Envelope, SetBuilder, Version, interchange},
};
use ordo_domain::Command;
use ordo_domain::edi::{EdiCommand, EdiDocument};
use ordo_domain::orders::book::{OrderCommand, OrderRejection};
use ordo_domain::orders::lifecycle::Actor;
use ordo_engine::{CommandError, Engine, Request};
use ordo_types::ChannelCode;

use crate::backend::AnyStore;
use crate::cli::{attributed, keep_dead_letter};

/// One document to send: its set code, functional group id, reference and segments.
struct Outgoing {
    set_code: &'static str,
    functional_id: &'static str,
    reference: String,
    receiver: Party,
    usage: char,
    version: Version,
    sets: Vec<SetBuilder>,
    copy: CopyTo,
}

/// Where a copy of a sent document goes (the document itself is journaled and queued either way).
enum CopyTo {
    File(PathBuf),
    Stdout,
    /// Only said on standard error (documents sent on their own, after a shipment).
    Quiet,
}

impl CopyTo {
    fn of(out: Option<PathBuf>) -> Self {
        out.map_or(Self::Stdout, Self::File)
    }
}

/// Issues control numbers for `documents`, journals them as sent (queuing them in the outbox)
/// and writes each to its file.
fn send(engine: &mut Engine<AnyStore>, channel: &ChannelCode, sender: &Party, documents: Vec<Outgoing>) -> Result<()> {
    if documents.is_empty() {
        return Ok(());
    }
    let issue = EdiCommand::IssueControlNumbers { channel: channel.clone(), count: documents.len() as u32 };
    engine.execute_one(attributed(Command::Edi(issue))).map_err(|e| anyhow::anyhow!("{e}"))?;
    let last = engine.state().partners().last_issued(channel);
    let first = last + 1 - documents.len() as u32;
    let now = engine.now();
    let mut sends = Vec::new();
    let mut files = Vec::new();
    for (n, d) in documents.into_iter().enumerate() {
        let control_number = first + n as u32;
        let envelope = Envelope {
            sender: sender.clone(),
            receiver: d.receiver,
            control_number,
            at: now,
            usage: d.usage,
            version: d.version,
        };
        let sets: Vec<(&str, SetBuilder)> = d.sets.into_iter().map(|s| (d.set_code, s)).collect();
        let text = interchange(&envelope, d.functional_id, &sets);
        files.push((d.copy, text.clone(), d.set_code, control_number));
        sends.push(attributed(Command::Edi(EdiCommand::Send {
            channel: channel.clone(),
            document: EdiDocument { set_code: d.set_code.into(), control_number, reference: d.reference, text },
        })));
    }
    let outcome = engine.execute(vec![Request::Group(sends)]);
    if let Some(e) = outcome.error {
        return Err(e).context("the database refused the documents");
    }
    if let Some(Err(e)) = outcome.results.into_iter().next() {
        bail!("the documents were refused: {e}");
    }
    for (copy, text, code, control) in files {
        match copy {
            CopyTo::File(file) => {
                std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
                println!("{code} {control:09} -> {}", file.display());
            }
            CopyTo::Stdout => print!("{text}"),
            CopyTo::Quiet => eprintln!("{code} {control:09} queued for {channel}"),
        }
    }
    Ok(())
}

/// `997`, `997-2` for the second interchange of a file…
fn suffix(code: &str, interchange: usize) -> String {
    if interchange == 0 { code.to_owned() } else { format!("{code}-{}", interchange + 1) }
}

fn ack_path(dir: Option<&Path>, file: &Path, suffix: &str) -> PathBuf {
    let stem = file.file_name().map_or_else(|| "interchange".into(), |s| s.to_string_lossy().into_owned());
    let dir = dir.map(Path::to_path_buf).or_else(|| file.parent().map(Path::to_path_buf)).unwrap_or_default();
    dir.join(format!("{stem}.{suffix}.edi"))
}

/// `ordo import x12 FILE… --channel C`.
pub fn import_x12(
    engine: &mut Engine<AnyStore>,
    files: &[PathBuf],
    channel: ChannelCode,
    sender: Party,
    acks: Option<&Path>,
    envelopes: Envelopes,
    json: bool,
) -> Result<ExitCode> {
    if engine.state().channel(&channel).is_none() {
        bail!("unknown channel {channel}");
    }
    let mut exit = ExitCode::SUCCESS;
    let mut captured = Vec::new();
    for file in files {
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let source = format!("import:x12:{channel}");
        let parsed = match x12::parse(&text) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("refused: {}: {e}", file.display());
                keep_dead_letter(engine, source, e.to_string(), text.clone())?;
                exit = ExitCode::from(1);
                continue;
            }
        };
        let outcomes = inbound::read(&text, &parsed, &channel, envelopes);
        let any_po = outcomes.iter().flatten().flatten().any(|o| matches!(o, SetOutcome::PurchaseOrder(_)));
        for reason in outcomes.iter().flatten().flatten().filter_map(|o| match o {
            SetOutcome::Refused { reason, .. } => Some(reason),
            SetOutcome::PurchaseOrder(_) => None,
        }) {
            eprintln!("refused: {}: {reason}", file.display());
            exit = ExitCode::from(1);
        }
        if !any_po {
            keep_dead_letter(engine, source, "no 850 purchase order Ordo could take in".into(), text.clone())?;
        }
        let mut documents = Vec::new();
        for (ii, (interchange_read, groups)) in parsed.iter().zip(&outcomes).enumerate() {
            let partner = interchange_read.sender();
            let receive = EdiCommand::Receive {
                channel: channel.clone(),
                sender: partner.to_string(),
                control_number: interchange_read.control_number().to_owned(),
            };
            let pos: Vec<&PurchaseOrder> = groups
                .iter()
                .flatten()
                .filter_map(|o| match o {
                    SetOutcome::PurchaseOrder(po) => Some(&**po),
                    SetOutcome::Refused { .. } => None,
                })
                .collect();
            // The receipt and the captures commit together; a PO Ordo refuses (or already holds
            // with this content) is taken out and the rest retried.
            let mut excluded: Vec<Option<String>> = vec![None; pos.len()];
            loop {
                let mut group = vec![attributed(Command::Edi(receive.clone()))];
                let mut index_of = Vec::new();
                for (n, po) in pos.iter().enumerate().filter(|(n, _)| excluded[*n].is_none()) {
                    let command = match po.purpose {
                        Purpose::Cancellation => OrderCommand::Cancel {
                            key: po.order.key(),
                            actor: Actor::Connector(channel.to_string()),
                            reason: "cancelled by the partner (850 BEG01 01)".into(),
                        },
                        Purpose::Original | Purpose::Replace => OrderCommand::Capture(Box::new(po.order.clone())),
                    };
                    group.push(attributed(Command::Order(command)));
                    index_of.push(n);
                }
                let outcome = engine.execute(vec![Request::Group(group)]);
                if let Some(e) = outcome.error {
                    return Err(e).context("the database refused the interchange");
                }
                match outcome.results.into_iter().next().expect("one result") {
                    Ok(_) => break,
                    Err(CommandError::RejectedInGroup { index: 0, rejection }) => {
                        println!(
                            "{}: interchange {} from {partner} ignored: {rejection}",
                            file.display(),
                            interchange_read.control_number()
                        );
                        excluded.iter_mut().for_each(|e| *e = Some("duplicate interchange".into()));
                        break;
                    }
                    Err(CommandError::RejectedInGroup { index, rejection }) => {
                        let n = index_of[index - 1];
                        let already = matches!(&rejection, ordo_domain::Rejection::Order(r)
                            if matches!(**r, OrderRejection::AlreadyCaptured(_)));
                        if already {
                            println!("{}: already captured with this content", pos[n].order.key());
                        } else {
                            eprintln!("rejected: {}: {rejection}", pos[n].order.key());
                            exit = ExitCode::from(1);
                        }
                        excluded[n] = Some(rejection.to_string());
                    }
                    Err(e) => bail!("the interchange was refused: {e}"),
                }
            }
            if excluded.iter().all(|e| e.as_deref() == Some("duplicate interchange")) && !pos.is_empty() {
                continue;
            }
            let usage = interchange_read.usage().chars().next().unwrap_or('P');
            let version = Version {
                isa12: interchange_read.header.element(12).to_owned(),
                gs08: interchange_read.groups.first().map_or("004010", |g| g.version()).to_owned(),
            };
            let mut functional_acks = Vec::new();
            for (group, group_outcomes) in interchange_read.groups.iter().zip(groups) {
                let verdicts: Vec<SetVerdict> = group_outcomes.iter().map(SetOutcome::verdict).collect();
                functional_acks.push(functional_ack_997(group, &verdicts));
            }
            documents.push(Outgoing {
                set_code: "997",
                functional_id: "FA",
                reference: format!("{partner} {}", interchange_read.control_number()),
                receiver: partner.clone(),
                usage,
                version: version.clone(),
                sets: functional_acks,
                copy: CopyTo::File(ack_path(acks, file, &suffix("997", ii))),
            });
            let mut answers = Vec::new();
            for po in pos.iter().filter(|po| po.purpose != Purpose::Cancellation) {
                let record = engine.state().orders().get(&po.order.key()).filter(|r| r.order == po.order);
                answers.push(po_ack_855(po, &decisions(po, record), engine.now().date()));
                if record.is_some() {
                    captured.push(po.order.clone());
                }
            }
            if !answers.is_empty() {
                documents.push(Outgoing {
                    set_code: "855",
                    functional_id: "PR",
                    reference: pos.iter().map(|p| p.po_number.as_str()).collect::<Vec<_>>().join(" "),
                    receiver: partner.clone(),
                    usage,
                    version,
                    sets: answers,
                    copy: CopyTo::File(ack_path(acks, file, &suffix("855", ii))),
                });
            }
        }
        send(engine, &channel, &sender, documents)?;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&captured)?);
    } else {
        for o in &captured {
            let key = o.key();
            let status = engine.state().orders().get(&key).map_or("not captured", |r| r.status.as_str());
            println!("{key}: {status}");
        }
    }
    Ok(exit)
}

/// Where a document Ordo starts goes: `--partner`, else the sender of the partner's latest
/// interchange on the channel.
fn partner(engine: &Engine<AnyStore>, channel: &ChannelCode, given: Option<Party>) -> Result<Party> {
    if engine.state().channel(channel).is_none() {
        bail!("unknown channel {channel}");
    }
    match given {
        Some(p) => Ok(p),
        None => match engine.state().partners().last_sender(channel) {
            Some(s) => s.parse().map_err(|e: String| anyhow::anyhow!(e)),
            None => {
                bail!("no interchange was received on {channel} yet: say which partner with --partner QUALIFIER:ID")
            }
        },
    }
}

/// `ordo export availability --channel C --format x12-846`: every item's available-to-sell on
/// the channel, under the partner's item ids where the channel's listings have them.
pub fn export_846(
    engine: &mut Engine<AnyStore>,
    channel: ChannelCode,
    sender: Party,
    given: Option<Party>,
    out: Option<PathBuf>,
) -> Result<ExitCode> {
    use ordo_channels::x12::outbound::{AvailabilityAdvice, inventory_advice_846};
    let receiver = partner(engine, &channel, given)?;
    let state = engine.state();
    let items: Vec<AvailabilityAdvice> = state
        .items()
        .iter()
        .map(|i| AvailabilityAdvice {
            sku: i.sku.to_string(),
            partner_item: state.orders().listing_of(&channel, &i.sku).map(str::to_owned),
            available: state.ats(&i.sku, &channel).unwrap_or(0),
        })
        .collect();
    let reference = format!("ATS-{}", engine.now().millis());
    let advice = inventory_advice_846(&reference, engine.now(), &items);
    let document = Outgoing {
        set_code: "846",
        functional_id: "IB",
        reference,
        receiver,
        usage: 'P',
        version: Version::v4010(),
        sets: vec![advice],
        copy: CopyTo::of(out),
    };
    send(engine, &channel, &sender, vec![document])?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShipmentDocument {
    ShipNotice856,
    Invoice810,
}

/// The cartons shipment `shipment` of `key` carried.
fn packages_of<'a>(
    state: &'a ordo_domain::State,
    key: &ordo_domain::orders::model::OrderKey,
    shipment: &str,
) -> Vec<&'a ordo_domain::orders::book::Package> {
    let Some(index) = state.orders().get(key).and_then(|r| r.shipments.iter().position(|s| s.shipment_id == shipment))
    else {
        return Vec::new();
    };
    state.orders().package_shipments(key).into_iter().filter(|(_, s)| *s == Some(index)).map(|(p, _)| p).collect()
}

/// `ordo export x12-856|x12-810 --order ORDER --shipment ID`.
pub fn export_shipment(
    engine: &mut Engine<AnyStore>,
    kind: ShipmentDocument,
    order: &str,
    shipment: &str,
    sender: Party,
    given: Option<Party>,
    out: Option<PathBuf>,
) -> Result<ExitCode> {
    let key = crate::cli::order_key(order)?;
    let receiver = partner(engine, &key.channel, given)?;
    let document = shipment_document(engine, kind, &key, shipment, receiver, CopyTo::of(out))?;
    send(engine, &key.channel, &sender, vec![document])?;
    Ok(ExitCode::SUCCESS)
}

/// The 856 or 810 of one shipment, addressed to `receiver`.
fn shipment_document(
    engine: &Engine<AnyStore>,
    kind: ShipmentDocument,
    key: &ordo_domain::orders::model::OrderKey,
    shipment: &str,
    receiver: Party,
    copy: CopyTo,
) -> Result<Outgoing> {
    use ordo_channels::x12::outbound::{invoice_810, ship_notice_856};
    let record = engine.state().orders().get(key).with_context(|| format!("unknown order {key}"))?;
    let (set_code, functional_id, set) = match kind {
        ShipmentDocument::ShipNotice856 => {
            ("856", "SH", ship_notice_856(record, shipment, &packages_of(engine.state(), key, shipment))?)
        }
        ShipmentDocument::Invoice810 => ("810", "IN", invoice_810(record, shipment, engine.now().date())?),
    };
    Ok(Outgoing {
        set_code,
        functional_id,
        reference: format!("{key} {shipment}"),
        receiver,
        usage: 'P',
        version: Version::v4010(),
        sets: vec![set],
        copy,
    })
}

/// After a shipment of an order from an EDI partner: its 856 ship notice and 810 invoice,
/// journaled and queued for the partner (who sent the PO) in one go.
pub fn after_shipment(engine: &mut Engine<AnyStore>, order: &str, shipment: &str) -> Result<()> {
    let key = crate::cli::order_key(order)?;
    let is_edi = engine.state().channel(&key.channel).is_some_and(|c| c.kind == ordo_domain::catalog::ChannelKind::Edi);
    // An exchange's replacement answers no purchase order of the partner's.
    let replacement = engine.state().orders().get(&key).is_some_and(|r| r.order.exchange_of().is_some());
    if !is_edi || replacement {
        return Ok(());
    }
    let Some(receiver) = engine.state().partners().last_sender(&key.channel).and_then(|s| s.parse::<Party>().ok())
    else {
        eprintln!(
            "{} has no partner address yet (no interchange received): send the ship notice with `ordo export x12-856 --partner`",
            key.channel
        );
        return Ok(());
    };
    let documents = vec![
        shipment_document(engine, ShipmentDocument::ShipNotice856, &key, shipment, receiver.clone(), CopyTo::Quiet)?,
        shipment_document(engine, ShipmentDocument::Invoice810, &key, shipment, receiver, CopyTo::Quiet)?,
    ];
    send(engine, &key.channel, &"ZZ:ORDO".parse().map_err(|e: String| anyhow::anyhow!(e))?, documents)
}
