//! The storage port. A store keeps the journal (append-only, one row per event, keyed by a
//! unique sequence), the projections written with each batch, and snapshots.
//!
//! Contract every implementation honours (checked by the conformance suite in the `ordo` crate):
//! `begin` takes the database's write lock and reports the journal head; `commit` appends the
//! batch at exactly `first_seq` (a taken sequence is a [`StoreError::Conflict`], never an
//! overwrite) together with its projections and outbox rows, atomically; journal rows can be
//! neither updated nor deleted.

use ordo_domain::{AvailabilityChanged, Event, StockRow};
use ordo_types::Timestamp;

/// One journal row as stored: the event's postcard bytes plus columns for querying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalRecord {
    pub seq: u64,
    pub recorded_at: Timestamp,
    pub kind: &'static str,
    pub sku: Option<String>,
    pub payload: Vec<u8>,
    /// The row's link in the journal chain ([`crate::chain`]); set by the engine before commit.
    pub chain: Vec<u8>,
}

impl JournalRecord {
    pub fn new(seq: u64, recorded_at: Timestamp, event: &Event) -> Self {
        let sku = match event.effect() {
            Event::ItemDefined(i) => Some(i.sku.to_string()),
            Event::Moved(m) => Some(m.sku.to_string()),
            Event::ChannelPoolSet { sku, .. } => Some(sku.to_string()),
            _ => None,
        };
        Self { seq, recorded_at, kind: event.kind_name(), sku, payload: crate::encode_event(event), chain: Vec::new() }
    }
}

/// One SKU's available-to-sell on every channel, in channel definition order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvailabilityRow {
    pub sku: String,
    pub figures: Vec<(String, i64)>,
}

impl AvailabilityRow {
    /// The figures as a JSON object `{"CHANNEL": ats, …}`, as both stores keep them.
    pub fn figures_json(&self) -> String {
        let map: serde_json::Map<String, serde_json::Value> =
            self.figures.iter().map(|(c, a)| (c.clone(), serde_json::Value::from(*a))).collect();
        serde_json::Value::Object(map).to_string()
    }

    /// Expands a stored row back into `(sku, channel, ats)` triples.
    pub fn parse_figures(sku: &str, json: &str) -> Result<Vec<(String, String, i64)>, StoreError> {
        let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(json)
            .map_err(|e| StoreError::Corrupt(format!("availability row for {sku} is not a JSON object: {e}")))?;
        map.into_iter()
            .map(|(channel, v)| {
                v.as_i64()
                    .map(|a| (sku.to_owned(), channel.clone(), a))
                    .ok_or_else(|| StoreError::Corrupt(format!("availability of {sku} on {channel} is not an integer")))
            })
            .collect()
    }
}

/// The outbox payload of one batch's availability changes, in SKU/channel order:
/// `{"fields":["sku","channel","old","new"],"changes":[["SKU-1","WEB",3,5],…]}`. Rows rather than
/// objects: a batch carries thousands of changes and this halves what every batch writes.
pub fn availability_message(changes: &[AvailabilityChanged]) -> String {
    let mut out: Vec<u8> = Vec::with_capacity(48 + changes.len() * 32);
    out.extend_from_slice(br#"{"fields":["sku","channel","old","new"],"changes":["#);
    for (i, c) in changes.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let row = (c.sku.as_str(), c.channel.as_str(), c.old, c.new);
        serde_json::to_writer(&mut out, &row).expect("a change serializes");
    }
    out.extend_from_slice(b"]}");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// Reads a payload written by [`availability_message`] back into changes.
pub fn parse_availability_message(payload: &str) -> Result<Vec<AvailabilityChanged>, StoreError> {
    #[derive(serde::Deserialize)]
    struct Message {
        changes: Vec<(String, String, i64, i64)>,
    }
    let corrupt = |e: &dyn std::fmt::Display| StoreError::Corrupt(format!("availability message: {e}"));
    let message: Message = serde_json::from_str(payload).map_err(|e| corrupt(&e))?;
    message
        .changes
        .into_iter()
        .map(|(sku, channel, old, new)| {
            Ok(AvailabilityChanged {
                sku: ordo_types::Sku::new(sku).map_err(|e| corrupt(&e))?,
                channel: ordo_types::Code::new(channel).map_err(|e| corrupt(&e))?,
                old,
                new,
            })
        })
        .collect()
}

/// Everything one batch writes, in one transaction.
#[derive(Debug)]
pub struct CommitBatch<'a> {
    /// The sequence the first record must take: the journal head the engine expects, plus one.
    pub first_seq: u64,
    pub records: &'a [JournalRecord],
    /// Stock projection rows the batch changed (full row values, upserted).
    pub stock: &'a [StockRow],
    /// ATS changes, queued in the outbox as one message per batch (coalesced per SKU and channel).
    pub availability: &'a [AvailabilityChanged],
    /// Messages the batch's events owe the channels (shipments, refunds, EDI documents), each
    /// with the journal sequence of its event; queued in the outbox after the availability row.
    pub messages: &'a [(u64, ordo_domain::outbox::OutboxMessage)],
    /// For every SKU whose ATS changed, its figures on every channel (the availability
    /// projection keeps one row per SKU, so a movement costs one row write, not one per channel).
    pub availability_rows: &'a [AvailabilityRow],
    /// Set when the projections written here bring them up to this journal sequence; stores
    /// record it so a restart knows whether coalesced projection writes were lost.
    pub projection_seq: Option<u64>,
    pub now: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Another writer already appended at this sequence: catch up and retry.
    #[error("journal sequence {seq} is already taken by another writer")]
    Conflict { seq: u64 },
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(String),
}

pub trait Store: Send {
    /// Starts the writer's transaction, holding the database's write lock until `commit` or
    /// `rollback`, and returns the last journal sequence (0 when empty).
    fn begin(&mut self) -> Result<u64, StoreError>;

    /// Appends and commits the batch. On error the transaction is left for `rollback`.
    fn commit(&mut self, batch: &CommitBatch<'_>) -> Result<(), StoreError>;

    /// Abandons the open transaction, if any.
    fn rollback(&mut self);

    /// Calls `visit(seq, payload)` for every journal record after `after`, in order.
    fn replay(&mut self, after: u64, visit: &mut dyn FnMut(u64, &[u8])) -> Result<(), StoreError>;

    fn load_snapshot(&mut self) -> Result<Option<(u64, Vec<u8>)>, StoreError>;

    fn save_snapshot(&mut self, seq: u64, state: &[u8]) -> Result<(), StoreError>;

    /// The stock projection, every row, ordered by SKU then location.
    fn stock_projection(&mut self) -> Result<Vec<StockRow>, StoreError>;

    /// The availability projection `(sku, channel, ats)`, ordered by SKU then channel.
    fn availability_projection(&mut self) -> Result<Vec<(String, String, i64)>, StoreError>;

    /// Number of outbox rows not yet delivered.
    fn outbox_pending(&mut self) -> Result<u64, StoreError>;

    /// The journal sequence the projections were last brought up to (`Some(0)` for a store
    /// that never committed a batch).
    fn projection_seq(&mut self) -> Result<Option<u64>, StoreError>;

    /// When the last journal record was written (`None` for an empty journal). Availability
    /// depends on the date (incoming windows), and the projections hold figures as of then.
    fn last_recorded_at(&mut self) -> Result<Option<Timestamp>, StoreError>;

    /// The chain link of the journal's last row (`None` for an empty journal or a row written
    /// before the chain existed).
    fn chain_head(&mut self) -> Result<Option<Vec<u8>>, StoreError>;

    /// Every journal row in sequence order, with the columns the chain covers.
    fn audit(&mut self, visit: &mut dyn FnMut(crate::chain::AuditRow<'_>)) -> Result<(), StoreError>;
}

/// One outbox row as a relay reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// The message id: increasing in commit order, unique for the database's life.
    pub id: u64,
    pub journal_seq: u64,
    pub topic: String,
    pub key: String,
    pub payload: String,
    pub created_at: Timestamp,
}

/// A message a relay gave up on, with why: kept for an operator to fix and redrive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayDeadLetter {
    pub id: u64,
    /// The relay destination that could not take it (`channel:SHOPIFY-DTC`, `bus`).
    pub destination: String,
    pub outbox_id: u64,
    pub topic: String,
    pub key: String,
    /// What was to be delivered (for availability, the coalesced figures).
    pub payload: String,
    pub reason: String,
    pub attempts: u32,
    pub failed_at: Timestamp,
    pub redriven_at: Option<Timestamp>,
}

/// The relays' side of the outbox: each destination reads the outbox from its own cursor, so one
/// slow or failing channel never holds up another, and moves its cursor (with any dead letters)
/// in one transaction once the rows before it are delivered or dead-lettered. A crash between a
/// delivery and the cursor move re-delivers: delivery is at least once, so receivers deduplicate
/// (the outbox id is the message id). Moving a cursor is a write, which on SQLite waits for the
/// engine's write lock: relays do it every so often, not after every delivery.
pub trait Outbox: Send {
    /// Up to `limit` rows with an id above `after`, in id order (a relay reads from the cursor it
    /// holds in memory, which it persists with [`Outbox::outbox_advance`] now and then).
    fn outbox_after(&mut self, after: u64, limit: usize) -> Result<Vec<OutboxRow>, StoreError>;

    /// Moves `destination`'s cursor to `to` and keeps `dead` (their `id` is assigned here),
    /// atomically. The bus destination (`bus`) also marks the rows delivered.
    fn outbox_advance(
        &mut self,
        destination: &str,
        to: u64,
        dead: &[RelayDeadLetter],
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// The newest outbox row's id (0 when empty).
    fn outbox_head(&mut self) -> Result<u64, StoreError>;

    /// `destination`'s cursor (0 before its first delivery).
    fn outbox_cursor(&mut self, destination: &str) -> Result<u64, StoreError>;

    /// Every relay dead letter, oldest first.
    fn relay_dead_letters(&mut self) -> Result<Vec<RelayDeadLetter>, StoreError>;

    /// Marks a relay dead letter redriven (refused if unknown or already redriven).
    fn relay_redriven(&mut self, id: u64, now: Timestamp) -> Result<(), StoreError>;
}

/// The destination name of the event bus relay.
pub const BUS_DESTINATION: &str = "bus";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn availability_messages_round_trip() {
        let changes = vec![
            AvailabilityChanged {
                sku: ordo_types::Sku::new("TEE \"M\"").unwrap(),
                channel: ordo_types::Code::new("WEB").unwrap(),
                old: 3,
                new: 0,
            },
            AvailabilityChanged {
                sku: ordo_types::Sku::new("MUG").unwrap(),
                channel: ordo_types::Code::new("AMZ").unwrap(),
                old: 0,
                new: 12,
            },
        ];
        let message = availability_message(&changes);
        assert!(
            message.starts_with(r#"{"fields":["sku","channel","old","new"],"changes":[["TEE \"M\"","WEB",3,0]"#),
            "{message}"
        );
        assert_eq!(parse_availability_message(&message).unwrap(), changes);
        assert_eq!(parse_availability_message(&availability_message(&[])).unwrap(), vec![]);
        assert!(parse_availability_message("[]").is_err());
    }
}
