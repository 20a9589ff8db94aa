//! The relays: each destination (a channel connection, the event bus) reads the outbox from its
//! own cursor, delivers what concerns it, and moves the cursor — with whatever it had to give up
//! on, as dead letters with the reason — in one transaction.
//!
//! A channel relay coalesces availability: of all the changes to a SKU in what it read, only the
//! newest figure is sent (compared against the figure before the first). Retries follow the
//! destination's policy (backoff with jitter; a rate-limited answer's own wait), under its rate
//! limit. The bus relay publishes every row, in outbox order, with the outbox id as the message
//! id, and never gives up: while the bus is down the cursor waits, and nothing is lost.

use std::collections::BTreeMap;
use std::time::Duration;

use ordo_channels::availability::AvailabilityUpdate;
use ordo_domain::outbox::{AVAILABILITY_CHANGED, EDI_DOCUMENT, REFUND_ISSUED, SHIPMENT_CONFIRMED};
use ordo_engine::{Outbox, OutboxRow, RelayDeadLetter, StoreError};
use ordo_types::Timestamp;
use serde_json::Value;

use crate::config::BusDestination;
use crate::connectors::{Connector, DocumentPublisher, FulfillmentPublisher, InventoryPublisher, RefundPublisher};
use crate::delivery::{DeliveryError, RateLimiter, RetryPolicy};

/// Rows a relay reads at a time.
pub const READ_LIMIT: usize = 1_000;

/// How often a busy relay persists its cursor (always at once with dead letters, and when idle).
pub const PERSIST_EVERY: Duration = Duration::from_millis(250);

/// A cursor move for the background writer.
struct Persist {
    name: String,
    to: u64,
    dead: Vec<RelayDeadLetter>,
    done: Option<std::sync::mpsc::Sender<()>>,
}

/// Writes cursor moves from its own thread and connection, so a relay never waits for the
/// database's write lock (on SQLite the engine holds it for most of every second under load).
/// Moves queued together are written as one: dead letters all kept, each cursor at its latest.
#[derive(Clone)]
pub struct CursorWriter(std::sync::mpsc::Sender<Persist>);

impl CursorWriter {
    pub fn spawn(mut store: Box<dyn Outbox>, log: impl Fn(&str) + Send + 'static) -> Self {
        let (tx, rx) = std::sync::mpsc::channel::<Persist>();
        std::thread::Builder::new()
            .name("relay-cursors".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    batch.extend(rx.try_iter());
                    let mut latest: BTreeMap<String, u64> = BTreeMap::new();
                    let mut dead: BTreeMap<String, Vec<RelayDeadLetter>> = BTreeMap::new();
                    let mut done = Vec::new();
                    for p in batch {
                        let to = latest.entry(p.name.clone()).or_insert(0);
                        *to = (*to).max(p.to);
                        dead.entry(p.name).or_default().extend(p.dead);
                        done.extend(p.done);
                    }
                    for (name, to) in latest {
                        let letters = dead.remove(&name).unwrap_or_default();
                        if let Err(e) = store.outbox_advance(&name, to, &letters, now()) {
                            log(&format!(
                                "{name}: cursor not saved ({e}); the messages after the saved one will be sent again"
                            ));
                        }
                    }
                    for d in done {
                        let _ = d.send(());
                    }
                }
            })
            .expect("a cursor writer thread");
        Self(tx)
    }
}

/// A relay's position in the outbox: held in memory, persisted now and then.
#[derive(Default)]
struct Cursor {
    /// Loaded from the store on the first pass.
    at: Option<u64>,
    persisted: u64,
    last_persist: Option<std::time::Instant>,
    writer: Option<CursorWriter>,
}

impl Cursor {
    fn position(&mut self, store: &mut dyn Outbox, name: &str) -> Result<u64, StoreError> {
        match self.at {
            Some(at) => Ok(at),
            None => {
                let at = store.outbox_cursor(name)?;
                self.at = Some(at);
                self.persisted = at;
                Ok(at)
            }
        }
    }

    /// Moves to `to` (with `dead`), persisting when due: dead letters at once, otherwise at most
    /// every [`PERSIST_EVERY`] — or whenever `force` (a relay stopping).
    fn advance(
        &mut self,
        store: &mut dyn Outbox,
        name: &str,
        to: u64,
        dead: &[RelayDeadLetter],
        force: bool,
    ) -> Result<(), StoreError> {
        self.at = Some(to);
        let due = self.last_persist.is_none_or(|t| t.elapsed() >= PERSIST_EVERY);
        // `force` always goes through (and waits): it also makes sure that moves handed to the
        // writer before it are written, which a relay that stops must know.
        if force || ((!dead.is_empty() || due) && (to > self.persisted || !dead.is_empty())) {
            match &self.writer {
                Some(writer) => {
                    let (done, wait) = if force {
                        let (tx, rx) = std::sync::mpsc::channel();
                        (Some(tx), Some(rx))
                    } else {
                        (None, None)
                    };
                    let persist = Persist { name: name.to_owned(), to, dead: dead.to_vec(), done };
                    if writer.0.send(persist).is_err() {
                        // The writer is gone: write here.
                        store.outbox_advance(name, to, dead, now())?;
                    } else if let Some(wait) = wait {
                        let _ = wait.recv();
                    }
                }
                None => store.outbox_advance(name, to, dead, now())?,
            }
            self.persisted = to;
            self.last_persist = Some(std::time::Instant::now());
        }
        Ok(())
    }
}

/// What a relay did, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayStats {
    pub rows_read: u64,
    pub calls: u64,
    pub availability_updates: u64,
    pub messages: u64,
    pub retries: u64,
    pub conflicts: u64,
    pub dead_letters: u64,
    /// Time spent reading the outbox, delivering, and moving the cursor.
    pub reading: Duration,
    pub delivering: Duration,
    pub advancing: Duration,
}

fn now() -> Timestamp {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Timestamp::from_millis(since.as_millis() as i64)
}

/// One unit of delivery.
enum Work {
    Availability { updates: Vec<AvailabilityUpdate>, first_outbox: u64 },
    Message { row: OutboxRow, payload: Value },
}

pub struct ChannelRelay {
    pub connector: Connector,
    limiter: RateLimiter,
    cursor: Cursor,
    pub stats: RelayStats,
}

impl ChannelRelay {
    pub fn new(connector: Connector) -> Self {
        let d = &connector.destination;
        let limiter = RateLimiter::new(d.rate_per_second, d.burst);
        Self { connector, limiter, cursor: Cursor::default(), stats: RelayStats::default() }
    }

    pub fn name(&self) -> String {
        self.connector.destination.name()
    }

    /// Persists the cursor through `writer` instead of the relay's own connection.
    pub fn with_cursor_writer(mut self, writer: CursorWriter) -> Self {
        self.cursor.writer = Some(writer);
        self
    }

    fn dead(
        &self,
        outbox_id: u64,
        topic: &str,
        key: &str,
        payload: String,
        e: &DeliveryError,
        attempts: u32,
    ) -> RelayDeadLetter {
        RelayDeadLetter {
            id: 0,
            destination: self.name(),
            outbox_id,
            topic: topic.to_owned(),
            key: key.to_owned(),
            payload,
            reason: e.to_string(),
            attempts,
            failed_at: now(),
            redriven_at: None,
        }
    }

    /// What `rows` hold for this channel, availability coalesced per SKU.
    fn plan(&self, rows: &[OutboxRow], dead: &mut Vec<RelayDeadLetter>) -> Vec<Work> {
        let channel = self.connector.destination.channel.as_str();
        let mut work = Vec::new();
        let mut coalesced: BTreeMap<String, AvailabilityUpdate> = BTreeMap::new();
        let mut first_availability = None;
        for row in rows {
            if row.topic == AVAILABILITY_CHANGED {
                match ordo_engine::parse_availability_message(&row.payload) {
                    Ok(changes) => {
                        for c in changes.into_iter().filter(|c| c.channel.as_str() == channel) {
                            first_availability.get_or_insert(row.id);
                            coalesced.entry(c.sku.to_string()).and_modify(|u| u.available = c.new).or_insert_with(
                                || AvailabilityUpdate {
                                    sku: c.sku.to_string(),
                                    channel_item: self.connector.channel_item(c.sku.as_str()),
                                    previous: c.old,
                                    available: c.new,
                                },
                            );
                        }
                    }
                    Err(e) => {
                        let e = DeliveryError::Malformed(e.to_string());
                        dead.push(self.dead(row.id, &row.topic, &row.key, row.payload.clone(), &e, 0));
                    }
                }
                continue;
            }
            if ![SHIPMENT_CONFIRMED, REFUND_ISSUED, EDI_DOCUMENT].contains(&row.topic.as_str()) {
                continue;
            }
            match serde_json::from_str::<Value>(&row.payload) {
                Ok(payload) if payload["channel"] == channel => work.push(Work::Message { row: row.clone(), payload }),
                Ok(_) => {}
                Err(e) => {
                    let e = DeliveryError::Malformed(format!("payload is not JSON: {e}"));
                    dead.push(self.dead(row.id, &row.topic, &row.key, row.payload.clone(), &e, 0));
                }
            }
        }
        if let Some(first_outbox) = first_availability {
            // Unchanged in the end (sold and restocked in the window): nothing to send.
            let updates: Vec<AvailabilityUpdate> =
                coalesced.into_values().filter(|u| u.previous != u.available).collect();
            if !updates.is_empty() {
                work.insert(0, Work::Availability { updates, first_outbox });
            }
        }
        work
    }

    /// Waits out a failed attempt: the channel's own wait when it named one, else backoff.
    async fn pause(&mut self, e: &DeliveryError, attempt: u32) {
        self.stats.retries += 1;
        let wait = match e {
            DeliveryError::RateLimited { retry_after } => *retry_after,
            _ => self.connector.destination.retry.backoff(attempt),
        };
        tokio::time::sleep(wait).await;
    }

    async fn deliver_availability(
        &mut self,
        updates: &[AvailabilityUpdate],
        reference: &str,
    ) -> Result<(), (DeliveryError, u32)> {
        let policy = self.connector.destination.retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.limiter.acquire().await;
            self.stats.calls += 1;
            match self.connector.publish_availability(updates, reference).await {
                Ok(conflicts) => {
                    self.stats.conflicts += u64::from(conflicts);
                    self.stats.availability_updates += updates.len() as u64;
                    return Ok(());
                }
                Err(e) if e.retryable() && attempt < policy.max_attempts => self.pause(&e, attempt).await,
                Err(e) => return Err((e, attempt)),
            }
        }
    }

    async fn deliver_message(&mut self, topic: &str, payload: &Value) -> Result<(), (DeliveryError, u32)> {
        let policy = self.connector.destination.retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.limiter.acquire().await;
            self.stats.calls += 1;
            let result = match topic {
                SHIPMENT_CONFIRMED => self.connector.confirm_shipment(payload).await,
                REFUND_ISSUED => self.connector.pass_refund(payload).await,
                EDI_DOCUMENT => self.connector.send_document(payload).await,
                _ => Ok(()),
            };
            match result {
                Ok(()) => {
                    self.stats.messages += 1;
                    return Ok(());
                }
                Err(e) if e.retryable() && attempt < policy.max_attempts => self.pause(&e, attempt).await,
                Err(e) => return Err((e, attempt)),
            }
        }
    }

    /// One pass over the outbox: returns the rows read (0: nothing new).
    pub async fn pass(&mut self, store: &mut dyn Outbox) -> Result<usize, StoreError> {
        let started = std::time::Instant::now();
        let name = self.name();
        let after = self.cursor.position(store, &name)?;
        let rows = store.outbox_after(after, READ_LIMIT)?;
        self.stats.reading += started.elapsed();
        let Some(last) = rows.last().map(|r| r.id) else {
            // Idle: persist where we are if it is time.
            self.cursor.advance(store, &name, after, &[], false)?;
            return Ok(0);
        };
        let started = std::time::Instant::now();
        self.stats.rows_read += rows.len() as u64;
        let mut dead = Vec::new();
        for work in self.plan(&rows, &mut dead) {
            match work {
                Work::Availability { updates, first_outbox } => {
                    let chunk_size = self.connector.max_batch();
                    for chunk in updates.chunks(chunk_size) {
                        let reference = format!("ordo://outbox/{first_outbox}-{last}");
                        if let Err((e, attempts)) = self.deliver_availability(chunk, &reference).await {
                            let payload = serde_json::json!(chunk
                                .iter()
                                .map(|u| serde_json::json!({"sku": u.sku, "channel_item": u.channel_item, "previous": u.previous, "available": u.available}))
                                .collect::<Vec<_>>())
                            .to_string();
                            dead.push(self.dead(
                                first_outbox,
                                AVAILABILITY_CHANGED,
                                "availability",
                                payload,
                                &e,
                                attempts,
                            ));
                        }
                    }
                }
                Work::Message { row, payload } => {
                    if let Err((e, attempts)) = self.deliver_message(&row.topic, &payload).await {
                        dead.push(self.dead(row.id, &row.topic, &row.key, row.payload.clone(), &e, attempts));
                    }
                }
            }
        }
        self.stats.dead_letters += dead.len() as u64;
        self.stats.delivering += started.elapsed();
        let started = std::time::Instant::now();
        self.cursor.advance(store, &name, last, &dead, false)?;
        self.stats.advancing += started.elapsed();
        Ok(rows.len())
    }

    /// Persists the cursor now (a relay that stops).
    pub fn flush(&mut self, store: &mut dyn Outbox) -> Result<(), StoreError> {
        match self.cursor.at {
            Some(at) => self.cursor.advance(store, &self.name(), at, &[], true),
            None => Ok(()),
        }
    }

    /// Delivers a dead letter again (`ordo outbox redrive`). Availability is re-sent as
    /// `current` gives it now — never the stale figure that failed.
    pub async fn redrive(
        &mut self,
        letter: &RelayDeadLetter,
        current: impl Fn(&str) -> Option<i64>,
    ) -> Result<(), DeliveryError> {
        if letter.topic == AVAILABILITY_CHANGED {
            let failed: Vec<Value> = serde_json::from_str(&letter.payload)
                .map_err(|e| DeliveryError::Malformed(format!("dead letter payload: {e}")))?;
            let updates: Vec<AvailabilityUpdate> = failed
                .iter()
                .filter_map(|u| {
                    let sku = u["sku"].as_str()?;
                    Some(AvailabilityUpdate {
                        sku: sku.to_owned(),
                        channel_item: self.connector.channel_item(sku),
                        previous: u["previous"].as_i64()?,
                        available: current(sku).unwrap_or(u["available"].as_i64()?),
                    })
                })
                .collect();
            return self
                .deliver_availability(&updates, &format!("ordo://relay-dead-letter/{}", letter.id))
                .await
                .map_err(|(e, _)| e);
        }
        let payload: Value = serde_json::from_str(&letter.payload)
            .map_err(|e| DeliveryError::Malformed(format!("dead letter payload: {e}")))?;
        self.deliver_message(&letter.topic, &payload).await.map_err(|(e, _)| e)
    }
}

/// The event bus relay (NATS JetStream).
pub struct BusRelay {
    pub config: BusDestination,
    context: Option<async_nats::jetstream::Context>,
    failures: u32,
    cursor: Cursor,
    pub stats: RelayStats,
}

impl BusRelay {
    pub fn new(config: BusDestination) -> Self {
        Self { config, context: None, failures: 0, cursor: Cursor::default(), stats: RelayStats::default() }
    }

    /// Persists the cursor through `writer` instead of the relay's own connection.
    pub fn with_cursor_writer(mut self, writer: CursorWriter) -> Self {
        self.cursor.writer = Some(writer);
        self
    }

    async fn context(&mut self) -> Result<async_nats::jetstream::Context, DeliveryError> {
        if let Some(c) = &self.context {
            return Ok(c.clone());
        }
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(2))
            .connect(self.config.url.as_str())
            .await
            .map_err(|e| DeliveryError::Transient(format!("bus at {}: {e}", self.config.url)))?;
        let mut context = async_nats::jetstream::new(client);
        context.set_timeout(Duration::from_secs(2));
        context
            .get_or_create_stream(async_nats::jetstream::stream::Config {
                name: self.config.stream.clone(),
                subjects: vec![format!("{}.>", self.config.subject_prefix)],
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            })
            .await
            .map_err(|e| DeliveryError::Transient(format!("stream {}: {e}", self.config.stream)))?;
        self.context = Some(context.clone());
        Ok(context)
    }

    /// One pass: publishes the rows after the bus cursor in order, moving the cursor over those
    /// the bus acknowledged. Returns the rows delivered; a bus that is down is an `Err` to wait on.
    pub async fn pass(&mut self, store: &mut dyn Outbox) -> Result<usize, BusError> {
        let name = ordo_engine::BUS_DESTINATION;
        let after = self.cursor.position(store, name).map_err(BusError::Store)?;
        let rows = store.outbox_after(after, READ_LIMIT).map_err(BusError::Store)?;
        if rows.is_empty() {
            self.cursor.advance(store, name, after, &[], false).map_err(BusError::Store)?;
            return Ok(0);
        }
        self.stats.rows_read += rows.len() as u64;
        let context = match self.context().await {
            Ok(c) => c,
            Err(e) => return Err(self.failed(e)),
        };
        // Pipelined: every publish sent, then the acknowledgements awaited in order.
        let mut pending = Vec::with_capacity(rows.len());
        let mut failure = None;
        for row in &rows {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", row.id.to_string().as_str());
            headers.insert("Ordo-Topic", row.topic.as_str());
            headers.insert("Ordo-Key", row.key.as_str());
            headers.insert("Ordo-Journal-Seq", row.journal_seq.to_string().as_str());
            let subject = format!("{}.{}", self.config.subject_prefix, row.topic);
            match context.publish_with_headers(subject, headers, row.payload.clone().into()).await {
                Ok(ack) => pending.push((row.id, ack)),
                Err(e) => {
                    failure = Some(DeliveryError::Transient(format!("publish: {e}")));
                    break;
                }
            }
        }
        let mut delivered_to = None;
        let mut delivered = 0;
        for (id, ack) in pending {
            match ack.await {
                Ok(_) => {
                    delivered_to = Some(id);
                    delivered += 1;
                }
                Err(e) => {
                    failure.get_or_insert(DeliveryError::Transient(format!("acknowledgement: {e}")));
                    break;
                }
            }
        }
        if let Some(to) = delivered_to {
            self.cursor.advance(store, name, to, &[], false).map_err(BusError::Store)?;
            self.stats.messages += delivered as u64;
        }
        match failure {
            None => {
                self.failures = 0;
                Ok(delivered)
            }
            Some(e) => Err(self.failed(e)),
        }
    }

    /// Persists the cursor now (a relay that stops).
    pub fn flush(&mut self, store: &mut dyn Outbox) -> Result<(), StoreError> {
        match self.cursor.at {
            Some(at) => self.cursor.advance(store, ordo_engine::BUS_DESTINATION, at, &[], true),
            None => Ok(()),
        }
    }

    fn failed(&mut self, e: DeliveryError) -> BusError {
        // A connection that failed is dropped; the next pass connects afresh.
        self.context = None;
        self.failures = self.failures.saturating_add(1);
        self.stats.retries += 1;
        BusError::Down { error: e, wait: self.config.retry.backoff(self.failures) }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("the bus is unreachable ({error}); trying again in {wait:?}")]
    Down { error: DeliveryError, wait: Duration },
    #[error(transparent)]
    Store(StoreError),
}

/// The retry policy a bus uses when none is configured.
pub fn bus_retry() -> RetryPolicy {
    RetryPolicy { base: Duration::from_millis(100), cap: Duration::from_secs(5), max_attempts: u32::MAX }
}
