//! Command-line grammar (clap) and dispatch. Each subcommand turns flags into domain commands or
//! queries; a rejected command prints the typed rejection and exits non-zero, changing nothing.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use ordo_domain::catalog::{AllocationPolicy, Channel, ChannelKind, LegalEntity, SafetyStockScope};
use ordo_domain::csv_import::{self, CsvCommand};
use ordo_domain::inventory::{Disposition, MoveCommand, ReasonCode};
use ordo_domain::{Command, State};
use ordo_engine::{CommandError, Engine, Request};
use ordo_types::{Code, CurrencyCode, Date, Sku, Units};

use crate::backend::{AnyStore, Target};
use crate::report;

#[derive(Parser, Debug)]
#[command(name = "ordo", version, about = "Ordo: inventory ledger and available-to-sell for ecommerce retail")]
pub struct Cli {
    /// SQLite database file (the default store).
    #[arg(long, global = true, default_value = "ordo.db", env = "ORDO_DB")]
    db: PathBuf,
    /// PostgreSQL URL (postgres://…); when given, used instead of --db.
    #[arg(long, global = true, env = "ORDO_DATABASE_URL")]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Cmd,
}

impl Cli {
    fn target(&self) -> Target {
        match &self.database_url {
            Some(url) => Target::Postgres(url.clone()),
            None => Target::Sqlite(self.db.clone()),
        }
    }
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Create the database (schema only); safe to run again.
    Init,
    /// Legal entities.
    #[command(subcommand)]
    Entity(EntityCmd),
    /// Items (SKUs, variants, bundles).
    #[command(subcommand)]
    Item(ItemCmd),
    /// Locations (warehouses, stores, 3PLs, drop-ship suppliers).
    #[command(subcommand)]
    Location(LocationCmd),
    /// Sales channels and their allocation policies.
    #[command(subcommand)]
    Channel(ChannelCmd),
    /// Safety stock rules.
    #[command(subcommand)]
    Safety(SafetyCmd),
    /// Record one stock movement (or import a file of them).
    #[command(subcommand)]
    Move(MoveCmd),
    /// Stock per SKU and location, every state.
    Stock {
        #[arg(long)]
        sku: Option<String>,
        #[arg(long)]
        location: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Available-to-sell per SKU and channel.
    Ats {
        #[arg(long)]
        channel: Option<String>,
        #[arg(long)]
        sku: Option<String>,
        /// Show every term of one SKU's figure (needs --channel).
        #[arg(long, value_name = "SKU")]
        explain: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Orders: capture from canonical JSON, inspect, hold, release, cancel, configure.
    #[command(subcommand)]
    Order(OrderCmd),
    /// Orders, optionally filtered by status or hold code.
    Orders {
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        hold: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Held orders in the order to work them (promise risk, value, channel priority, age).
    Exceptions {
        #[arg(long)]
        json: bool,
    },
    /// Check every invariant and that replaying the journal reproduces state and projections.
    Verify {
        #[arg(long)]
        json: bool,
    },
    /// Write a snapshot so the next start replays only newer events.
    Snapshot,
    /// Serve the HTTP API (README, "Service") until interrupted.
    Serve {
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: std::net::SocketAddr,
        /// How far the SQL projection tables (stock, availability) may lag the journal, in ms;
        /// 0 writes them with every batch. API reads come from the engine and are always exact.
        #[arg(long, default_value_t = SERVE_PROJECTION_INTERVAL_MS)]
        projection_interval_ms: u64,
    },
    /// Users of the API: `ordo user add NAME --role ROLE` (password from ORDO_PASSWORD).
    #[command(subcommand)]
    User(UserCmd),
    /// API tokens: `ordo token create --user NAME` prints the token as its last word.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Build a small realistic retailer in the database (replacing it) and show it.
    Demo {
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    /// Measure throughput and latency (see BENCHMARKS.md).
    #[command(subcommand)]
    Bench(crate::bench::BenchCmd),
    /// The general ledger: trial balance, entries, inventory valuation, purchase costs, FX rates.
    #[command(subcommand)]
    Gl(GlCmd),
    /// Channel files: orders (Shopify, Amazon, Walmart, Magento, X12 850, POS sales) and settlements.
    #[command(subcommand)]
    Import(ImportCmd),
    /// Runs the outbox relays of a relay configuration (channels and the event bus), each in its
    /// own thread with its own database connection, until stopped (Ctrl-C / SIGTERM: delivery is
    /// at least once, so an interrupted pass is sent again) or, with --until-idle, until nothing
    /// is left to deliver.
    Worker {
        /// The relay configuration (JSON; see README.md, "Outbox relays").
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        until_idle: bool,
    },
    /// Reconciliation poll: a channel's order API read for orders updated since the last poll
    /// (what webhooks never delivered), captured like imports; the checkpoint is kept in the
    /// database per channel.
    Poll {
        /// shopify (reconciliation of webhooks) or amazon (pull: LastUpdatedAfter)
        #[arg(value_parser = ["shopify", "amazon"])]
        kind: String,
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        channel: String,
        /// Start here (ISO 8601) instead of the saved checkpoint.
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// The outbox: relay cursors and dead letters; redrive a dead letter.
    #[command(subcommand)]
    Outbox(OutboxCmd),
    /// Documents for channels and partners (X12 846, 856, 810), journaled as sent.
    #[command(subcommand)]
    Export(ExportCmd),
    /// Reconciled settlements, their variances and the channels' contracted fees.
    #[command(subcommand)]
    Settlement(SettlementCmd),
    /// Returns: policies, authorizations (RMAs), receipt, inspection, refunds.
    #[command(subcommand)]
    Return(ReturnCmd),
    /// Waves: a node's allocated orders released to its floor by carrier cut-off and promise.
    #[command(subcommand)]
    Wave(WaveCmd),
    /// Outside payloads that could not be read, kept raw with the reason.
    #[command(subcommand)]
    Deadletter(DeadletterCmd),
    /// Ship confirm: a packed order leaves with carrier and tracking (`ordo order ship`, with the
    /// location defaulting to the one node the order was picked at).
    Ship {
        /// CHANNEL/CHANNEL_ORDER_ID
        id: String,
        #[arg(long)]
        carrier: String,
        #[arg(long)]
        tracking: String,
        #[arg(long, default_value = "ground")]
        service: String,
        #[arg(long)]
        location: Option<String>,
        #[arg(long)]
        shipment: Option<String>,
        /// LINE=UNITS, repeatable (default: everything picked there).
        #[arg(long = "line")]
        lines: Vec<String>,
        #[arg(long, env = "USER", default_value = "cli")]
        user: String,
    },
}

#[derive(Subcommand, Debug)]
enum DeadletterCmd {
    List {
        #[arg(long)]
        json: bool,
    },
    /// One dead letter, with its raw payload.
    Show { id: u64 },
    /// Read it again with today's mapping (after the cause was fixed: a listing, a SKU, the
    /// parser) and take it in; it is marked redriven only if that succeeds.
    Redrive { id: u64 },
}

#[derive(Subcommand, Debug)]
enum WaveCmd {
    /// Show the next wave and its pick list without releasing it.
    Plan {
        #[arg(long)]
        node: String,
        #[arg(long, default_value_t = 200)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Release the next wave: each order dispatched and its pick list issued (→ picking).
    Release {
        #[arg(long)]
        node: String,
        #[arg(long, default_value_t = 200)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum ReturnCmd {
    /// A channel's return policy.
    Policy {
        #[arg(long)]
        channel: String,
        #[arg(long, default_value_t = 30)]
        window_days: u16,
        /// SKU classes that may be returned (repeat); none: every class.
        #[arg(long = "class")]
        classes: Vec<String>,
        #[arg(long, default_value_t = 0)]
        restocking_fee_bp: u32,
        /// What the customer pays for the return label (decimal, off the refund).
        #[arg(long, default_value = "0")]
        return_shipping: String,
        /// Customers refunded at authorization (repeat).
        #[arg(long = "trusted")]
        trusted: Vec<String>,
        /// Refunds above this (decimal) need a second person when requested through the gate.
        #[arg(long, default_value = "100")]
        approval_above: String,
    },
    /// Authorize a return against shipped lines: `--line LINE_ID:UNITS` (repeat).
    Create {
        #[arg(long)]
        rma: String,
        /// CHANNEL/CHANNEL_ORDER_ID
        #[arg(long)]
        order: String,
        #[arg(long = "line", required = true)]
        lines: Vec<String>,
        #[arg(long)]
        reason: String,
    },
    /// The parcel is back: its units go into quality control at LOCATION.
    Receive {
        #[arg(long)]
        rma: String,
        #[arg(long)]
        location: String,
    },
    /// Grade every line (A as new … D unsellable): `--grade LINE_ID:B` (repeat).
    Inspect {
        #[arg(long)]
        rma: String,
        #[arg(long = "grade", required = true)]
        grades: Vec<String>,
    },
    /// Refund an inspected RMA under its channel's policy.
    Refund {
        #[arg(long)]
        rma: String,
    },
    /// Settle an inspected RMA with goods: `--line LINE_ID:SKU` (repeat) ships the line's
    /// returned units again as SKU (the same or another at its list price) in a replacement
    /// order; the RMA's other lines are refunded.
    Exchange {
        #[arg(long)]
        rma: String,
        /// The replacement order's id on the RMA's channel [default: EX-RMA]
        #[arg(long)]
        order_id: Option<String>,
        #[arg(long = "line", required = true)]
        lines: Vec<String>,
    },
    /// One RMA, or all.
    Show {
        rma: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum ImportCmd {
    /// An Amazon V2 flat-file settlement report: reconciled against Ordo's orders, the payout
    /// posted; an unknown layout is refused with what it lacks. The same settlement twice
    /// changes nothing.
    AmazonSettlement {
        file: std::path::PathBuf,
        /// The Ordo channel the report is for.
        #[arg(long, default_value = "AMAZON-US")]
        channel: String,
        #[arg(long)]
        json: bool,
    },
    /// Shopify orders (webhook bodies or REST `{"order": …}` documents), captured; one already
    /// captured with the same content changes nothing; a cancelled one is captured, then cancelled.
    ShopifyOrder {
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        #[arg(long, default_value = "SHOPIFY-DTC")]
        channel: String,
        /// Print the canonical orders.
        #[arg(long)]
        json: bool,
    },
    /// Shopify refunds issued on Shopify's side (`refunds/create` webhook bodies or REST
    /// `{"refund": …}` documents), recorded as RMAs already refunded so Ordo never pays them again;
    /// one already recorded changes nothing; one of an order Ordo does not hold is kept as a dead
    /// letter to redrive once the order is in.
    ShopifyRefund {
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        #[arg(long, default_value = "SHOPIFY-DTC")]
        channel: String,
        /// Print the RMAs recorded.
        #[arg(long)]
        json: bool,
    },
    /// Amazon SP-API orders: `getOrders` answers paired with `getOrderItems` answers by
    /// `AmazonOrderId` (give both kinds of file, in any order); FBA orders are recorded, never
    /// reserved from Ordo's stock.
    AmazonOrder {
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        #[arg(long, default_value = "AMAZON-US")]
        channel: String,
        #[arg(long)]
        json: bool,
    },
    /// Store POS sales (CSV: transaction_id, store, time, sku, quantity, unit_price, tender[, tax,
    /// tax_jurisdiction, currency]): each transaction posted at once as a sale from that store's
    /// stock (captured, picked and handed over in one transaction; revenue and cost booked). The
    /// same file twice posts nothing the second time.
    PosCsv {
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        #[arg(long, default_value = "POS")]
        channel: String,
        #[arg(long)]
        json: bool,
    },
    /// Walmart Marketplace orders (`GET /v3/orders/{id}` documents), captured like Shopify's.
    WalmartOrder {
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        #[arg(long, default_value = "WALMART")]
        channel: String,
        #[arg(long)]
        json: bool,
    },
    /// Magento 2 / Adobe Commerce orders (`GET /V1/orders/{id}` documents), parent items only.
    MagentoOrder {
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        #[arg(long, default_value = "MAGENTO")]
        channel: String,
        #[arg(long)]
        json: bool,
    },
    /// X12 interchanges from a B2B partner: 850 purchase orders captured (a cancellation
    /// cancels), answered with a 997 and an 855 written beside the file (or to `--acks`) and
    /// queued for the partner; a re-sent interchange is ignored; other sets are refused by name.
    X12 {
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        #[arg(long, default_value = "EDI")]
        channel: String,
        /// Ordo's interchange address (QUALIFIER:ID).
        #[arg(long, default_value = "ZZ:ORDO")]
        sender: String,
        /// Directory for the 997 and 855 copies.
        #[arg(long)]
        acks: Option<std::path::PathBuf>,
        /// Read sets under faulty envelopes (wrong control numbers or counts) instead of refusing.
        #[arg(long)]
        lenient_envelopes: bool,
        #[arg(long)]
        json: bool,
    },
    /// Shopify Payments balance transactions (`balance/transactions.json`): each payout's
    /// transactions reconciled per order (a charge's gross against what Ordo shipped plus its
    /// tax, the processing fee as a charge) and posted; transactions not yet paid out reported.
    ShopifyBalance {
        file: std::path::PathBuf,
        #[arg(long, default_value = "SHOPIFY-DTC")]
        channel: String,
        #[arg(long)]
        json: bool,
    },
    /// Shopify Payments payouts (the REST `payouts.json` document): each paid or in-transit
    /// payout reconciled as a settlement (its summary's components against its amount) and posted.
    ShopifyPayouts {
        file: std::path::PathBuf,
        #[arg(long, default_value = "SHOPIFY-DTC")]
        channel: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum OutboxCmd {
    /// Messages waiting, and each relay's cursor.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Messages the relays gave up on, with the reason.
    DeadLetters {
        #[arg(long)]
        json: bool,
    },
    /// Delivers a dead letter again through its destination in the configuration (availability
    /// is sent as it stands now, never the stale figure that failed).
    Redrive {
        id: u64,
        #[arg(long)]
        config: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum ExportCmd {
    /// Every item's available-to-sell on a channel, in the channel's format.
    Availability {
        #[arg(long)]
        channel: String,
        #[arg(long, value_enum)]
        format: AvailabilityFormat,
        #[arg(long, default_value = "ZZ:ORDO")]
        sender: String,
        /// The partner's interchange address (default: the sender of its latest interchange).
        #[arg(long)]
        partner: Option<String>,
        /// Write the document here instead of standard output.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// Shopify: the location the figures are for (`gid://shopify/Location/…`).
        #[arg(long)]
        location_gid: Option<String>,
        /// Amazon: the seller id.
        #[arg(long)]
        seller_id: Option<String>,
    },
    /// An X12 856 ship notice for one shipment of an order.
    #[command(name = "x12-856")]
    X12_856 {
        #[arg(long)]
        order: String,
        #[arg(long)]
        shipment: String,
        #[arg(long, default_value = "ZZ:ORDO")]
        sender: String,
        #[arg(long)]
        partner: Option<String>,
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// An X12 810 invoice for one shipment of an order.
    #[command(name = "x12-810")]
    X12_810 {
        #[arg(long)]
        order: String,
        #[arg(long)]
        shipment: String,
        #[arg(long, default_value = "ZZ:ORDO")]
        sender: String,
        #[arg(long)]
        partner: Option<String>,
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum AvailabilityFormat {
    /// The GraphQL `inventorySetQuantities` request (needs --location-gid).
    Shopify,
    /// A `JSON_LISTINGS_FEED` of fulfillment-availability patches (needs --seller-id).
    Amazon,
    /// The bulk inventory feed.
    Walmart,
    #[value(name = "x12-846")]
    X12_846,
}

#[derive(Subcommand, Debug)]
enum SettlementCmd {
    /// One settlement: the channel's stated total beside Ordo's reconciled total, per fee type
    /// and per order (expected vs actual).
    Show {
        /// The channel's settlement id.
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// The variance queue: every line or order that did not reconcile, with the reason.
    Variances {
        #[arg(long)]
        json: bool,
    },
    /// A channel's contracted commission (basis points of principal) and tolerance.
    Fees {
        #[arg(long)]
        channel: String,
        #[arg(long)]
        commission_bp: u32,
        /// Decimal, in the settlement currency's units (e.g. 0.01).
        #[arg(long, default_value = "0.01")]
        tolerance: String,
    },
}

#[derive(Subcommand, Debug)]
enum GlCmd {
    /// Balances per account (debit positive), per legal entity; they sum to zero.
    TrialBalance {
        #[arg(long)]
        entity: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Journal entries (GL detail), newest last.
    Entries {
        #[arg(long)]
        entity: Option<String>,
        /// Only the last N.
        #[arg(long, default_value_t = 50)]
        last: usize,
        #[arg(long)]
        json: bool,
    },
    /// Inventory valuation per entity and SKU at moving-average cost; equals the Inventory account.
    Valuation {
        #[arg(long)]
        json: bool,
    },
    /// A SKU's purchase cost (in the receiving entity's currency), used to value receipts.
    Cost {
        #[arg(long)]
        sku: String,
        /// Decimal, e.g. 8.00.
        #[arg(long)]
        unit_cost: String,
        /// Freight, duty and handling per unit, capitalized (decimal).
        #[arg(long, default_value = "0")]
        landed: String,
        /// Minor-unit digits of the currency the cost is in (2 for USD, 0 for JPY).
        #[arg(long, default_value_t = 2)]
        exponent: u32,
    },
    /// An exchange rate in force from a date: units of TO per unit of FROM.
    Fx {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        /// YYYY-MM-DD
        #[arg(long)]
        date: String,
        /// Decimal, up to 9 places, e.g. 1.0842.
        #[arg(long)]
        rate: String,
    },
}

#[derive(Subcommand, Debug)]
enum UserCmd {
    Add {
        name: String,
        /// admin, ops_manager, warehouse, finance, customer_service, integration or viewer.
        #[arg(long)]
        role: String,
    },
    List,
}

#[derive(Subcommand, Debug)]
enum TokenCmd {
    Create {
        #[arg(long)]
        user: String,
        /// Days until it stops working (default: no expiry).
        #[arg(long)]
        expires_days: Option<u32>,
        /// Limit the token to this channel's orders (repeat for several); others answer 404.
        #[arg(long = "channel")]
        channels: Vec<ordo_types::ChannelCode>,
    },
    /// Revoke by the token's id (the second field of `ordo_ID_…`, also shown by `token list`).
    Revoke {
        id: String,
    },
    List,
}

#[derive(Subcommand, Debug)]
enum OrderCmd {
    /// A shipment's invoice or packing slip as printable HTML (to stdout).
    Document {
        /// CHANNEL/CHANNEL_ORDER_ID
        id: String,
        #[arg(long)]
        shipment: String,
        #[arg(long, value_enum, default_value = "invoice")]
        kind: crate::documents::Kind,
    },
    /// Capture an order from a canonical order JSON file (schema: README.md, "Orders").
    Create {
        #[arg(long)]
        file: PathBuf,
    },
    /// One order: status, holds, lines, the sourcing decision with every candidate, history.
    Show {
        /// CHANNEL/CHANNEL_ORDER_ID
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Put an order on hold.
    Hold {
        id: String,
        #[arg(long)]
        reason: String,
        #[arg(long, env = "USER", default_value = "cli")]
        user: String,
    },
    /// Release every hold (an override) and source the order.
    Release {
        id: String,
        #[arg(long)]
        reason: String,
        #[arg(long, env = "USER", default_value = "cli")]
        user: String,
    },
    /// Cancel an order (or with --line one order line), voiding its reservations.
    Cancel {
        id: String,
        #[arg(long)]
        reason: String,
        /// Cancel only this order line (every component of a bundle line).
        #[arg(long)]
        line: Option<String>,
        #[arg(long, env = "USER", default_value = "cli")]
        user: String,
    },
    /// Release an allocated order to the warehouse floor.
    Dispatch {
        id: String,
        /// Release a partially allocated order, cancelling what is still backordered.
        #[arg(long)]
        ship_partial: bool,
        #[arg(long, env = "USER", default_value = "cli")]
        user: String,
    },
    /// The pick list is issued.
    Pick {
        id: String,
        #[arg(long, env = "USER", default_value = "cli")]
        user: String,
    },
    /// Picked and packed: reserved units move committed → picked.
    Pack {
        id: String,
        #[arg(long, env = "USER", default_value = "cli")]
        user: String,
    },
    /// A shipment leaves a node: picked → customer (all picked units there unless --line).
    Ship {
        id: String,
        #[arg(long)]
        location: String,
        #[arg(long)]
        carrier: String,
        #[arg(long, default_value = "ground")]
        service: String,
        #[arg(long)]
        tracking: String,
        /// Defaults to ORDER_ID-N (the order's Nth shipment).
        #[arg(long)]
        shipment: Option<String>,
        /// LINE=UNITS, repeatable; LINE is a line record id (`1`, or `1/SKU` for a bundle part).
        #[arg(long = "line")]
        lines: Vec<String>,
        #[arg(long, env = "USER", default_value = "cli")]
        user: String,
    },
    /// The cartons picked units are packed in, for the carrier, the ship notice and the packing
    /// slip: `--package ID:WEIGHT_G:LxWxH_MM:LINE=UNITS[,LINE=UNITS…]`, repeatable (replaces the
    /// order's open cartons).
    Packages {
        id: String,
        #[arg(long = "package", required = true)]
        packages: Vec<String>,
        #[arg(long, env = "USER", default_value = "cli")]
        user: String,
    },
    /// The carrier delivered a shipment.
    Deliver {
        id: String,
        #[arg(long)]
        shipment: String,
        #[arg(long, env = "USER", default_value = "cli")]
        user: String,
    },
    /// Close a shipped or delivered order.
    Close {
        id: String,
        #[arg(long)]
        reason: String,
        #[arg(long, env = "USER", default_value = "cli")]
        user: String,
    },
    /// Record the channel's payment status (a capture clears PAYMENT_NOT_CAPTURED holds).
    Payment {
        id: String,
        /// pending, authorized, captured, failed or refunded.
        #[arg(long)]
        status: String,
        #[arg(long, env = "USER", default_value = "cli")]
        user: String,
    },
    /// Load order settings (listings, prices, shipping methods, customers, tax, nodes, policy,
    /// rules) from a JSON array; all or nothing.
    Settings {
        #[arg(long)]
        file: PathBuf,
    },
}

pub(crate) fn order_key(raw: &str) -> Result<ordo_domain::orders::model::OrderKey> {
    let (channel, id) = raw.split_once('/').context("an order is named CHANNEL/CHANNEL_ORDER_ID")?;
    Ok(ordo_domain::orders::model::OrderKey { channel: code("channel", channel)?, channel_order_id: id.to_owned() })
}

fn order_command(engine: &mut Engine<AnyStore>, command: OrderCmd) -> Result<ExitCode> {
    use ordo_domain::orders::book::{OrderCommand, OrderSetting};
    use ordo_domain::orders::lifecycle::Actor;
    let order = |c: OrderCommand| Command::Order(c);
    match command {
        OrderCmd::Create { file } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let parsed: ordo_domain::orders::model::Order = match serde_json::from_str(&text) {
                Ok(o) => o,
                Err(e) => {
                    eprintln!("rejected: {}: {e}; nothing was captured", file.display());
                    return Ok(ExitCode::from(1));
                }
            };
            let key = parsed.key();
            let code = submit(engine, order(OrderCommand::Capture(Box::new(parsed))))?;
            if code == ExitCode::SUCCESS
                && let Some(r) = engine.state().orders().get(&key)
            {
                println!("order {key}: {}", r.status.as_str());
            }
            Ok(code)
        }
        OrderCmd::Document { id, shipment, kind } => {
            match crate::documents::render(engine.state(), &order_key(&id)?, &shipment, kind) {
                Ok(html) => {
                    print!("{html}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("refused: {e}");
                    Ok(ExitCode::from(1))
                }
            }
        }
        OrderCmd::Show { id, json } => {
            let key = order_key(&id)?;
            let record = engine.state().orders().get(&key).with_context(|| format!("unknown order {key}"))?;
            report::order(record, json);
            Ok(ExitCode::SUCCESS)
        }
        OrderCmd::Hold { id, reason, user } => {
            submit(engine, order(OrderCommand::Hold { key: order_key(&id)?, actor: Actor::User(user), reason }))
        }
        OrderCmd::Release { id, reason, user } => {
            submit(engine, order(OrderCommand::Release { key: order_key(&id)?, actor: Actor::User(user), reason }))
        }
        OrderCmd::Cancel { id, reason, line: None, user } => {
            submit(engine, order(OrderCommand::Cancel { key: order_key(&id)?, actor: Actor::User(user), reason }))
        }
        OrderCmd::Cancel { id, reason, line: Some(line_id), user } => submit(
            engine,
            order(OrderCommand::CancelLine { key: order_key(&id)?, line_id, actor: Actor::User(user), reason }),
        ),
        OrderCmd::Dispatch { id, ship_partial, user } => submit(
            engine,
            order(OrderCommand::Dispatch { key: order_key(&id)?, actor: Actor::User(user), ship_partial }),
        ),
        OrderCmd::Pick { id, user } => {
            submit(engine, order(OrderCommand::StartPicking { key: order_key(&id)?, actor: Actor::User(user) }))
        }
        OrderCmd::Pack { id, user } => {
            submit(engine, order(OrderCommand::Pack { key: order_key(&id)?, actor: Actor::User(user) }))
        }
        OrderCmd::Ship { id, location, carrier, service, tracking, shipment, lines, user } => {
            use ordo_domain::orders::book::{ShipmentRequest, ShippedLine};
            let key = order_key(&id)?;
            let lines = lines
                .iter()
                .map(|raw| {
                    let (line_id, units) = raw.split_once('=').context("--line is LINE=UNITS")?;
                    let units = units.parse().with_context(|| format!("--line {raw}: units must be a whole number"))?;
                    Ok(ShippedLine { line_id: line_id.to_owned(), units })
                })
                .collect::<Result<Vec<_>>>()?;
            let shipment_id = shipment.unwrap_or_else(|| {
                let n = engine.state().orders().get(&key).map_or(0, |r| r.shipments.len()) + 1;
                format!("{}-{n}", key.channel_order_id)
            });
            let shipment = ShipmentRequest {
                shipment_id: shipment_id.clone(),
                location: code("location", &location)?,
                carrier,
                service,
                tracking,
                lines,
            };
            let done = submit(engine, order(OrderCommand::Ship { key, actor: Actor::User(user), shipment }))?;
            if done == ExitCode::SUCCESS {
                // A B2B partner hears of the shipment as an 856 and is invoiced with an 810.
                crate::edi::after_shipment(engine, &id, &shipment_id)?;
            }
            Ok(done)
        }
        OrderCmd::Packages { id, packages, user } => {
            use ordo_domain::orders::book::{Package, ShippedLine};
            let parse = |raw: &str| -> Result<Package> {
                let shape = || format!("--package {raw}: expected ID:WEIGHT_G:LxWxH_MM:LINE=UNITS[,LINE=UNITS…]");
                let parts: Vec<&str> = raw.split(':').collect();
                let [id, weight, dims, lines] = parts.as_slice() else { bail!(shape()) };
                let dims: Vec<u32> = dims.split('x').map(str::parse).collect::<Result<_, _>>().with_context(shape)?;
                let [length_mm, width_mm, height_mm] = dims.as_slice() else { bail!(shape()) };
                let lines = lines
                    .split(',')
                    .map(|l| {
                        let (line_id, units) = l.split_once('=').with_context(shape)?;
                        Ok(ShippedLine { line_id: line_id.to_owned(), units: units.parse().with_context(shape)? })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(Package {
                    package_id: (*id).to_owned(),
                    weight_grams: weight.parse().with_context(shape)?,
                    length_mm: *length_mm,
                    width_mm: *width_mm,
                    height_mm: *height_mm,
                    lines,
                })
            };
            let packages = packages.iter().map(|p| parse(p)).collect::<Result<Vec<_>>>()?;
            submit(engine, order(OrderCommand::Packages { key: order_key(&id)?, actor: Actor::User(user), packages }))
        }
        OrderCmd::Deliver { id, shipment, user } => submit(
            engine,
            order(OrderCommand::ConfirmDelivery {
                key: order_key(&id)?,
                actor: Actor::User(user),
                shipment_id: shipment,
            }),
        ),
        OrderCmd::Close { id, reason, user } => {
            submit(engine, order(OrderCommand::Close { key: order_key(&id)?, actor: Actor::User(user), reason }))
        }
        OrderCmd::Payment { id, status, user } => {
            let status = serde_json::from_value(serde_json::Value::String(status.clone()))
                .with_context(|| format!("unknown payment status {status:?}"))?;
            submit(
                engine,
                order(OrderCommand::UpdatePayment { key: order_key(&id)?, status, actor: Actor::User(user) }),
            )
        }
        OrderCmd::Settings { file } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let settings: Vec<OrderSetting> = match serde_json::from_str(&text) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("rejected: {}: {e}; nothing was loaded", file.display());
                    return Ok(ExitCode::from(1));
                }
            };
            let lines: Vec<u64> = (1..=settings.len() as u64).collect();
            let commands =
                settings.into_iter().map(|s| CsvCommand { line: 0, command: order(OrderCommand::Configure(s)) });
            let commands: Vec<CsvCommand> = commands
                .zip(lines)
                .map(|(mut c, n)| {
                    c.line = n;
                    c
                })
                .collect();
            import(engine, "setting", Ok(commands))
        }
    }
}

#[derive(Subcommand, Debug)]
enum EntityCmd {
    Add {
        code: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        currency: String,
    },
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum ItemCmd {
    /// Import items from CSV (all lines or none).
    Import { file: PathBuf },
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum LocationCmd {
    /// Import locations from CSV (all lines or none).
    Import { file: PathBuf },
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum ChannelCmd {
    /// Define or redefine a channel.
    Add {
        code: String,
        #[arg(long)]
        name: String,
        /// shopify, amazon, walmart, magento, edi, pos or other.
        #[arg(long, value_parser = parse_channel_kind)]
        kind: ChannelKind,
        #[arg(long)]
        entity: String,
        /// Locations it sells from, in preference order: A,B,C.
        #[arg(long, value_delimiter = ',', required = true)]
        locations: Vec<String>,
        /// 1 is the highest.
        #[arg(long, default_value_t = 1)]
        priority: u16,
        #[arg(long)]
        percentage_cap: Option<u8>,
        #[arg(long, default_value_t = 0)]
        buffer: Units,
        #[arg(long)]
        incoming_window_days: Option<u16>,
    },
    /// Ring-fence units of a SKU for this channel (0 removes the pool).
    Pool {
        code: String,
        #[arg(long)]
        sku: String,
        #[arg(long)]
        quantity: Units,
    },
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum SafetyCmd {
    /// Set safety stock for a SKU, a SKU at a location, a SKU class or a location.
    Set {
        #[arg(long)]
        sku: Option<String>,
        #[arg(long)]
        location: Option<String>,
        #[arg(long)]
        class: Option<String>,
        #[arg(long)]
        quantity: Units,
    },
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
struct At {
    #[arg(long)]
    sku: String,
    #[arg(long)]
    location: String,
}

#[derive(Args, Debug)]
struct Qty {
    #[arg(long, allow_negative_numbers = true)]
    quantity: Units,
    /// Unit of measure of --quantity (`each` or one of the item's conversions, e.g. `case`).
    #[arg(long, default_value = "each")]
    uom: String,
}

#[derive(Subcommand, Debug)]
enum MoveCmd {
    /// Units arrive from a supplier (optionally against an expectation).
    Receipt {
        #[command(flatten)]
        at: At,
        #[command(flatten)]
        qty: Qty,
        #[arg(long)]
        expectation: Option<String>,
    },
    /// A purchase-order line expected on a date (incoming, not stock).
    Expect {
        #[arg(long)]
        expectation: String,
        #[command(flatten)]
        at: At,
        #[command(flatten)]
        qty: Qty,
        #[arg(long)]
        expected_on: String,
    },
    CancelExpectation {
        #[arg(long)]
        expectation: String,
    },
    /// Ship a transfer from one location to another (units go in transit).
    Transfer {
        #[arg(long)]
        transfer: String,
        #[arg(long)]
        sku: String,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        #[command(flatten)]
        qty: Qty,
    },
    TransferReceive {
        #[arg(long)]
        transfer: String,
        #[arg(long)]
        quantity: Units,
    },
    /// Reserve available units for an order line (two-phase: pending).
    Commit {
        #[arg(long)]
        reservation: String,
        #[command(flatten)]
        at: At,
        #[command(flatten)]
        qty: Qty,
    },
    /// Void (part of) a reservation.
    Release {
        #[arg(long)]
        reservation: String,
        #[arg(long)]
        quantity: Option<Units>,
    },
    Pick {
        #[arg(long)]
        reservation: String,
        #[arg(long)]
        quantity: Units,
    },
    /// Post a reservation: picked units leave to the customer.
    Ship {
        #[arg(long)]
        reservation: String,
        #[arg(long)]
        quantity: Units,
    },
    /// A customer return arrives into quality control.
    Return {
        #[command(flatten)]
        at: At,
        #[command(flatten)]
        qty: Qty,
        #[arg(long)]
        reference: Option<String>,
    },
    /// Decide what happens to inspected units in quality control.
    Dispose {
        #[command(flatten)]
        at: At,
        #[command(flatten)]
        qty: Qty,
        /// restock, damaged or write_off.
        #[arg(long, value_parser = parse_disposition)]
        disposition: Disposition,
    },
    /// Damaged units leave the books.
    WriteOff {
        #[command(flatten)]
        at: At,
        #[command(flatten)]
        qty: Qty,
        #[arg(long)]
        reason: String,
    },
    Hold {
        #[command(flatten)]
        at: At,
        #[command(flatten)]
        qty: Qty,
        #[arg(long)]
        reason: String,
    },
    Unhold {
        #[command(flatten)]
        at: At,
        #[command(flatten)]
        qty: Qty,
    },
    /// A physical count of everything on hand; the difference is booked to available.
    Count {
        #[command(flatten)]
        at: At,
        #[arg(long)]
        counted: Units,
    },
    /// Add (positive) or remove (negative) available units, with a reason code.
    Adjust {
        #[command(flatten)]
        at: At,
        #[command(flatten)]
        qty: Qty,
        #[arg(long)]
        reason: String,
    },
    /// Book the exact opposite of an earlier movement.
    Reverse {
        #[arg(long)]
        movement: u64,
        #[arg(long)]
        reason: String,
    },
    /// Import movements from CSV (all lines or none).
    Import { file: PathBuf },
}

fn parse_channel_kind(raw: &str) -> Result<ChannelKind, String> {
    ChannelKind::parse(raw)
        .ok_or_else(|| format!("expected one of {}", ChannelKind::ALL.map(ChannelKind::as_str).join(", ")))
}

fn parse_disposition(raw: &str) -> Result<Disposition, String> {
    Disposition::parse(raw)
        .ok_or_else(|| format!("expected one of {}", Disposition::ALL.map(Disposition::as_str).join(", ")))
}

fn party(raw: &str) -> Result<ordo_channels::x12::Party> {
    raw.parse().map_err(|e: String| anyhow::anyhow!(e))
}

pub(crate) fn code(what: &str, raw: &str) -> Result<Code> {
    Code::new(raw).with_context(|| format!("invalid {what}"))
}

fn sku(raw: &str) -> Result<Sku> {
    Sku::new(raw).context("invalid SKU")
}

fn reason(raw: &str) -> Result<ReasonCode> {
    ReasonCode::parse(raw).with_context(|| {
        format!("unknown reason code {raw:?}; use one of {}", ReasonCode::ALL.map(|r| r.as_str()).join(", "))
    })
}

/// Converts `qty` to base units with the item's unit of measure.
fn units(state: &State, sku: &Sku, qty: &Qty) -> Result<Units> {
    if qty.uom == ordo_domain::catalog::BASE_UOM {
        return Ok(qty.quantity);
    }
    let item = state.item(sku).with_context(|| format!("unknown SKU {sku}"))?;
    Ok(item.to_base_units(qty.quantity, &qty.uom)?)
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    let target = cli.target();
    match cli.command {
        Cmd::Init => {
            target.create_store()?;
            println!("database ready: {}", report::describe_target(&target));
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Demo { seed } => crate::demo::run(&target, seed),
        Cmd::Bench(b) => crate::bench::run(&target, b),
        Cmd::Stock { sku, location, json } => {
            // From the ledger itself, not the projection: exact even while projections lag.
            let engine = target.open_engine()?;
            let mut rows: Vec<_> = engine
                .state()
                .stock_rows()
                .into_iter()
                .filter(|r| sku.as_deref().is_none_or(|s| r.sku.as_str() == s))
                .filter(|r| location.as_deref().is_none_or(|l| r.location.as_str() == l))
                .collect();
            rows.sort_by(|a, b| (a.sku.as_str(), a.location.as_str()).cmp(&(b.sku.as_str(), b.location.as_str())));
            report::stock(&rows, json);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Serve { addr, projection_interval_ms } => {
            let mut engine = target.open_engine()?;
            engine.set_projection_interval(std::time::Duration::from_millis(projection_interval_ms));
            serve(engine, addr)
        }
        Cmd::Worker { config, until_idle } => crate::relays::worker(&target, &config, until_idle),
        Cmd::Outbox(OutboxCmd::Status { json }) => crate::relays::status(&target, json),
        Cmd::Outbox(OutboxCmd::DeadLetters { json }) => crate::relays::dead_letters(&target, json),
        Cmd::Outbox(OutboxCmd::Redrive { id, config }) => crate::relays::redrive(&target, id, &config),
        command => {
            let mut engine = target.open_engine()?;
            run_with_engine(&mut engine, command)
        }
    }
}

/// `ordo serve`'s projection interval: a write of every changed row once a second rather than
/// with each batch (rows changed by many batches are written once; see BENCHMARKS.md, issue 4).
pub const SERVE_PROJECTION_INTERVAL_MS: u64 = 1_000;

fn serve(engine: Engine<AnyStore>, addr: std::net::SocketAddr) -> Result<ExitCode> {
    let (handle, thread) = ordo_engine::EngineHandle::spawn(engine, 1_000);
    let service = ordo_api::Service::new(handle, || ordo_engine::Clock::now(&ordo_engine::SystemClock));
    if let Ok(secret) = std::env::var("ORDO_SHOPIFY_WEBHOOK_SECRET")
        && !secret.is_empty()
    {
        service.set_shopify_webhook_secret(secret.as_bytes());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
        println!("ordo serving on http://{} (OpenAPI at /api/openapi.json)", listener.local_addr()?);
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        ordo_api::serve(listener, service, shutdown).await.context("serving")
    })?;
    // Every engine handle lived in the runtime: once it is gone the engine thread ends and
    // writes the projection rows still pending.
    drop(runtime);
    thread.join().map_err(|_| anyhow::anyhow!("the engine thread panicked"))?;
    Ok(ExitCode::SUCCESS)
}

fn user_command(engine: &mut Engine<AnyStore>, command: UserCmd) -> Result<ExitCode> {
    use ordo_domain::access::{AccessCommand, Role, User};
    match command {
        UserCmd::Add { name, role } => {
            let role = Role::parse(&role).with_context(|| {
                let all: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
                format!("unknown role {role:?}; one of {}", all.join(", "))
            })?;
            let password = match std::env::var("ORDO_PASSWORD") {
                Ok(p) => p,
                Err(_) => {
                    eprint!("password for {name}: ");
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line.trim_end_matches(['\r', '\n']).to_owned()
                }
            };
            if password.chars().count() < 8 {
                eprintln!("rejected: a password needs at least 8 characters; nothing was recorded");
                return Ok(ExitCode::from(1));
            }
            let user =
                User { name, role, password_hash: ordo_api::auth::hash_password(&password), created_at: engine.now() };
            submit(engine, Command::Access(AccessCommand::AddUser(user)))
        }
        UserCmd::List => {
            for u in engine.state().access().users() {
                println!("{}\t{}", u.name, u.role.as_str());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Captures the orders a channel's files hold (all files read first: one that does not map is
/// refused and kept as a dead letter, and nothing is captured). An order already captured with
/// the same content changes nothing; a cancelled one is captured, then cancelled.
fn import_orders(
    engine: &mut Engine<AnyStore>,
    files: &[std::path::PathBuf],
    source: &str,
    parse: impl Fn(&str) -> Result<(ordo_domain::orders::model::Order, bool), ordo_channels::FormatError>,
    json: bool,
) -> Result<ExitCode> {
    let mut mapped = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        match parse(&text) {
            Ok(o) => mapped.push(o),
            Err(e) => {
                eprintln!("refused: {}: {e}", file.display());
                keep_dead_letter(engine, source.to_owned(), e.to_string(), text)?;
                return Ok(ExitCode::from(1));
            }
        }
    }
    capture_mapped(engine, mapped, json)
}

/// Captures mapped channel orders (a cancelled one is captured, then cancelled); one already
/// captured with the same content changes nothing.
fn capture_mapped(
    engine: &mut Engine<AnyStore>,
    mapped: Vec<(ordo_domain::orders::model::Order, bool)>,
    json: bool,
) -> Result<ExitCode> {
    use ordo_domain::orders::book::{OrderCommand, OrderRejection};
    use ordo_domain::orders::lifecycle::{Actor, OrderStatus};
    let mut code_out = ExitCode::SUCCESS;
    let bar = progress(mapped.len(), "orders");
    for (order, cancelled) in &mapped {
        bar.inc(1);
        let key = order.key();
        match engine.execute_one(attributed(Command::Order(OrderCommand::Capture(Box::new(order.clone()))))) {
            Ok(_) => {}
            Err(CommandError::Rejected(ordo_domain::Rejection::Order(r)))
                if matches!(*r, OrderRejection::AlreadyCaptured(_)) =>
            {
                eprintln!("{key} is already captured with this content; nothing changed");
            }
            Err(CommandError::Store(e)) => return Err(e).context("the database refused the change"),
            Err(e) => {
                eprintln!("rejected: {key}: {e}");
                code_out = ExitCode::from(1);
                continue;
            }
        }
        let open = engine.state().orders().get(&key).is_some_and(|r| r.status != OrderStatus::Cancelled);
        if *cancelled && open {
            let actor = Actor::Connector(key.channel.to_string());
            let cancel = OrderCommand::Cancel { key: key.clone(), actor, reason: "cancelled on the channel".into() };
            if let Err(e) = engine.execute_one(attributed(Command::Order(cancel))) {
                eprintln!("rejected: cancelling {key}: {e}");
                code_out = ExitCode::from(1);
            }
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&mapped.iter().map(|(o, _)| o).collect::<Vec<_>>())?);
    } else {
        for (o, _) in &mapped {
            let key = o.key();
            let status = engine.state().orders().get(&key).map(|r| r.status.as_str()).unwrap_or("not captured");
            println!("{key}: {status}");
        }
    }
    Ok(code_out)
}

/// `ordo poll shopify|amazon`: orders updated since the checkpoint (less a minute of overlap:
/// capture is idempotent, a late-committed update is not lost), captured; the checkpoint moves to
/// the newest update taken in. An order that does not map is kept as a dead letter; the rest go.
fn poll_orders(
    engine: &mut Engine<AnyStore>,
    kind: &str,
    config: &std::path::Path,
    channel: &str,
    since: Option<String>,
    json: bool,
) -> Result<ExitCode> {
    use ordo_engine::Outbox;
    let text = std::fs::read_to_string(config).with_context(|| format!("reading {}", config.display()))?;
    let relay = ordo_relay::RelayConfig::parse(&text, |name| std::env::var(name).ok())?;
    let destination = relay
        .channels
        .into_iter()
        .find(|c| c.channel == channel)
        .with_context(|| format!("channel {channel} is not configured in {}", config.display()))?;
    let configured = match destination.credentials {
        ordo_relay::config::Credentials::Shopify { .. } => "shopify",
        ordo_relay::config::Credentials::Amazon { .. } => "amazon",
        ordo_relay::config::Credentials::Walmart { .. } => "walmart",
        ordo_relay::config::Credentials::Edi { .. } => "edi",
    };
    if configured != kind {
        bail!("channel {channel} is configured as a {configured} channel, not {kind}");
    }
    let channel = code("channel", channel)?;
    let checkpoint_name = format!("poll:{channel}");
    let since = match since {
        Some(s) => s,
        None => {
            let millis = engine.store_mut().outbox_cursor(&checkpoint_name)? as i64;
            ordo_types::Timestamp::from_millis((millis - 60_000).max(0)).to_string()
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let connector = ordo_relay::connectors::Connector::new(destination);
    let documents = runtime
        .block_on(ordo_relay::connectors::OrderSource::orders_updated_since(&connector, &since))
        .map_err(|e| anyhow::anyhow!("polling {channel}: {e}"))?;
    // Each order's document and what it mapped to.
    let mut read: Vec<ordo_channels::amazon::orders::ReadOrder> = Vec::new();
    match documents {
        ordo_relay::connectors::OrderDocuments::Amazon { orders, items } => {
            read = ordo_channels::amazon::orders::map_each(&orders, &items, &channel)?;
        }
        ordo_relay::connectors::OrderDocuments::Shopify(documents) => {
            for document in documents {
                let result =
                    ordo_channels::shopify::orders::parse(&document, channel.clone()).map(|o| (o.order, o.cancelled));
                read.push((document, result));
            }
        }
    }
    let mut mapped = Vec::new();
    let mut newest = 0i64;
    for (document, result) in read {
        match result {
            Ok((order, cancelled)) => {
                newest = newest.max(order.channel_updated_at.millis());
                mapped.push((order, cancelled));
            }
            Err(e) => {
                eprintln!("refused: an order from {channel}'s Orders API: {e}");
                keep_dead_letter(engine, format!("poll:{kind}:{channel}"), e.to_string(), document)?;
            }
        }
    }
    eprintln!("{} order(s) updated since {since}", mapped.len());
    let code_out = capture_mapped(engine, mapped, json)?;
    if newest > 0 {
        let now = engine.now();
        engine.store_mut().outbox_advance(&checkpoint_name, newest as u64, &[], now)?;
    }
    Ok(code_out)
}

/// `ordo import pos-csv`: every transaction one all-or-nothing group — captured (sold over the
/// till: not validated, reserved at that store), released, picked, packed and handed over.
fn pos_import(engine: &mut Engine<AnyStore>, files: &[PathBuf], channel: Code, json: bool) -> Result<ExitCode> {
    use ordo_domain::orders::book::{OrderCommand, OrderRejection, ShipmentRequest};
    use ordo_domain::orders::lifecycle::Actor;
    if engine.state().channel(&channel).is_none() {
        bail!("unknown channel {channel}");
    }
    let source = format!("import:pos-csv:{channel}");
    let mut code_out = ExitCode::SUCCESS;
    let mut posted = Vec::new();
    for file in files {
        let data = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let sales = match ordo_channels::pos::parse(&data, channel.clone()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("refused: {}: {e}", file.display());
                keep_dead_letter(engine, source.clone(), e.to_string(), String::from_utf8_lossy(&data).into_owned())?;
                code_out = ExitCode::from(1);
                continue;
            }
        };
        let text = String::from_utf8_lossy(&data).into_owned();
        let file_lines: Vec<&str> = text.lines().collect();
        let actor = Actor::Connector(channel.to_string());
        let bar = progress(sales.len(), "sales");
        for sale in sales {
            bar.inc(1);
            let key = sale.order.key();
            let steps = vec![
                OrderCommand::Capture(Box::new(sale.order.clone())),
                OrderCommand::Dispatch { key: key.clone(), actor: actor.clone(), ship_partial: false },
                OrderCommand::StartPicking { key: key.clone(), actor: actor.clone() },
                OrderCommand::Pack { key: key.clone(), actor: actor.clone() },
                OrderCommand::Ship {
                    key: key.clone(),
                    actor: actor.clone(),
                    shipment: ShipmentRequest {
                        shipment_id: key.channel_order_id.clone(),
                        location: sale.store.clone(),
                        carrier: "in-store".into(),
                        service: "till".into(),
                        // Handed over the counter: the till receipt is its proof.
                        tracking: format!("receipt {}", key.channel_order_id),
                        lines: Vec::new(),
                    },
                },
            ];
            let group = steps.into_iter().map(|c| attributed(Command::Order(c))).collect();
            let outcome = engine.execute(vec![ordo_engine::Request::Group(group)]);
            if let Some(e) = outcome.error {
                return Err(e).context("the database refused the sale");
            }
            match outcome.results.into_iter().next().expect("one result") {
                Ok(_) => posted.push(sale.order),
                Err(CommandError::RejectedInGroup { index: 0, rejection: ordo_domain::Rejection::Order(r) })
                    if matches!(*r, OrderRejection::AlreadyCaptured(_)) =>
                {
                    eprintln!("{key} was already posted; nothing changed");
                }
                Err(e) => {
                    let reason = format!("{key}: {e}");
                    eprintln!("refused: {} line(s) {:?}: {reason}", file.display(), sale.lines);
                    // The transaction's own rows, with the header, kept to fix and redrive.
                    let mut raw = vec![file_lines.first().copied().unwrap_or_default()];
                    raw.extend(sale.lines.iter().filter_map(|l| file_lines.get(*l as usize - 1).copied()));
                    keep_dead_letter(engine, source.clone(), reason, raw.join("\n"))?;
                    code_out = ExitCode::from(1);
                }
            }
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&posted)?);
    } else {
        for o in &posted {
            let key = o.key();
            let status = engine.state().orders().get(&key).map_or("not captured", |r| r.status.as_str());
            println!("{key}: {status}");
        }
    }
    Ok(code_out)
}

/// A progress bar on standard error for `len` items of a large import (drawn only when
/// standard error is a terminal).
pub(crate) fn progress(len: usize, what: &str) -> indicatif::ProgressBar {
    if len < 100 {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template(&format!("{{bar:40}} {{pos}}/{{len}} {what} ({{eta}})"))
    {
        bar.set_style(style);
    }
    bar
}

/// A settlement document read by its source, reconciled and posted; what it left out said; an
/// unreadable one refused with where and kept as a dead letter.
fn import_settlement_file(
    engine: &mut Engine<AnyStore>,
    source: &dyn ordo_channels::SettlementSource,
    file: &std::path::Path,
    channel: &str,
    json: bool,
) -> Result<ExitCode> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    match source.settlements(&text, code("channel", channel)?) {
        Ok(parsed) => {
            for (_, why) in &parsed.left_out {
                eprintln!("{why}");
            }
            import_settlements(engine, parsed.settlements, json)
        }
        Err(e) => {
            eprintln!("refused: {}: {e}", file.display());
            keep_dead_letter(engine, format!("import:{}:{channel}", source.name()), e.to_string(), text)?;
            Ok(ExitCode::from(1))
        }
    }
}

/// Keeps an unreadable file's content as a dead letter and says where to find it.
pub(crate) fn keep_dead_letter(
    engine: &mut Engine<AnyStore>,
    source: String,
    reason: String,
    raw: String,
) -> Result<()> {
    let keep = ordo_domain::deadletter::DeadLetterCommand::Keep { source, reason, raw };
    engine.execute_one(attributed(Command::DeadLetter(keep))).map_err(|e| anyhow::anyhow!("{e}"))?;
    let id = engine.state().dead_letters().all().last().map_or(0, |d| d.id);
    eprintln!("kept as dead letter {id} (`ordo deadletter show {id}`)");
    Ok(())
}

fn deadletter_command(engine: &mut Engine<AnyStore>, command: DeadletterCmd) -> Result<ExitCode> {
    match command {
        DeadletterCmd::List { json } => {
            let all = engine.state().dead_letters().all();
            if json {
                println!("{}", serde_json::to_string_pretty(all)?);
            } else {
                for d in all {
                    let state =
                        d.redriven.as_ref().map_or_else(|| "waiting".to_owned(), |(_, o)| format!("redriven: {o}"));
                    println!("{}\t{}\t{}\t{}\t{}", d.id, d.received_at, d.source, d.reason, state);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        DeadletterCmd::Show { id } => match engine.state().dead_letters().get(id) {
            Some(d) => {
                println!(
                    "dead letter {} from {} at {}\nreason: {}\n{}",
                    d.id, d.source, d.received_at, d.reason, d.raw
                );
                Ok(ExitCode::SUCCESS)
            }
            None => {
                eprintln!("unknown dead letter {id}");
                Ok(ExitCode::from(1))
            }
        },
        DeadletterCmd::Redrive { id } => {
            let Some(d) = engine.state().dead_letters().get(id).cloned() else {
                eprintln!("unknown dead letter {id}");
                return Ok(ExitCode::from(1));
            };
            if d.redriven.is_some() {
                eprintln!("dead letter {id} was already redriven");
                return Ok(ExitCode::from(1));
            }
            let channel = code("channel", d.source.rsplit(':').next().unwrap_or_default())?;
            let (command, done) = if d.source.contains("shopify-refund:") {
                // A refund of an order Ordo did not hold yet: read with that order's currency now.
                match shopify_refund_of(engine.state(), &channel, &d.raw) {
                    Ok(refund) => {
                        let done = format!("recorded {}", refund.rma_id());
                        (Command::Returns(ordo_domain::returns::ReturnCommand::RecordChannelRefund(refund)), done)
                    }
                    Err(e) => {
                        eprintln!("still not recordable, nothing changed: {e}");
                        return Ok(ExitCode::from(1));
                    }
                }
            } else if d.source.starts_with("shopify-webhook:") || d.source.starts_with("import:shopify-order:") {
                match ordo_channels::shopify::orders::parse(&d.raw, channel) {
                    Ok(m) => {
                        let done = format!("captured {}", m.order.key());
                        (Command::Order(ordo_domain::orders::book::OrderCommand::Capture(Box::new(m.order))), done)
                    }
                    Err(e) => {
                        eprintln!("still unreadable, nothing changed: {e}");
                        return Ok(ExitCode::from(1));
                    }
                }
            } else {
                eprintln!("dead letter {id} ({}) is redriven by importing the corrected file again", d.source);
                return Ok(ExitCode::from(1));
            };
            let mark = |outcome: String| {
                Command::DeadLetter(ordo_domain::deadletter::DeadLetterCommand::MarkRedriven { id, outcome })
            };
            let outcome = engine
                .execute(vec![ordo_engine::Request::Group(vec![attributed(command), attributed(mark(done.clone()))])]);
            if let Some(e) = outcome.error {
                return Err(e).context("the database refused the change");
            }
            match outcome.results.into_iter().next().expect("one request") {
                Ok(_) => {
                    println!("redriven: {done}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("rejected, nothing changed: {e}");
                    Ok(ExitCode::from(1))
                }
            }
        }
    }
}

/// A Shopify refund document as the canonical channel refund, its money read in the currency of
/// the order it refunds (which Ordo must hold).
fn shopify_refund_of(
    state: &State,
    channel: &ordo_types::ChannelCode,
    raw: &str,
) -> Result<ordo_domain::returns::ChannelRefund, ordo_channels::FormatError> {
    let order_id = ordo_channels::shopify::refunds::order_of(raw)?;
    let key = ordo_domain::orders::model::OrderKey { channel: channel.clone(), channel_order_id: order_id };
    let currency = state.orders().get(&key).map(|r| r.order.currency).ok_or_else(|| {
        ordo_channels::FormatError::at(1, format!("a refund of order {key}, which Ordo does not hold"))
    })?;
    Ok(ordo_channels::shopify::refunds::parse(raw, currency)?.canonical(channel.clone()))
}

/// `ordo import shopify-refund`: each file one refund, recorded on its own.
fn import_shopify_refunds(
    engine: &mut Engine<AnyStore>,
    files: &[std::path::PathBuf],
    channel: ordo_types::ChannelCode,
    json: bool,
) -> Result<ExitCode> {
    use ordo_domain::returns::{ReturnCommand, ReturnRejection};
    let source = format!("import:shopify-refund:{channel}");
    let mut failed = false;
    let mut recorded = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let refund = match shopify_refund_of(engine.state(), &channel, &text) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("refused: {}: {e}", file.display());
                keep_dead_letter(engine, source.clone(), e.to_string(), text)?;
                failed = true;
                continue;
            }
        };
        let rma_id = refund.rma_id();
        match engine.execute_one(attributed(Command::Returns(ReturnCommand::RecordChannelRefund(refund)))) {
            Ok(_) => {
                eprintln!("{}: recorded {rma_id}", file.display());
                recorded.push(rma_id);
            }
            Err(CommandError::Rejected(ordo_domain::Rejection::Returns(ReturnRejection::RmaExists(_)))) => {
                eprintln!("{}: {rma_id} was already recorded; nothing changed", file.display());
            }
            Err(CommandError::Store(e)) => return Err(e).context("the database refused the change"),
            Err(e) => {
                eprintln!("rejected: {}: {e}; nothing changed", file.display());
                failed = true;
            }
        }
    }
    if json {
        let returns = engine.state().returns();
        let rmas: Vec<&ordo_domain::returns::Rma> = recorded.iter().filter_map(|id| returns.get(id)).collect();
        report::rmas(returns, &rmas, true);
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn return_command(engine: &mut Engine<AnyStore>, command: ReturnCmd) -> Result<ExitCode> {
    use ordo_domain::returns::{Grade, ReturnCommand, ReturnPolicy};
    let pairs = |raw: &[String], what: &str| -> Result<Vec<(String, String)>> {
        raw.iter()
            .map(|p| {
                p.split_once(':')
                    .map(|(a, b)| (a.to_owned(), b.to_owned()))
                    .with_context(|| format!("{what} {p:?} is not LINE_ID:VALUE"))
            })
            .collect()
    };
    let command = match command {
        ReturnCmd::Policy {
            channel,
            window_days,
            classes,
            restocking_fee_bp,
            return_shipping,
            trusted,
            approval_above,
        } => ReturnCommand::SetPolicy {
            channel: code("channel", &channel)?,
            policy: ReturnPolicy {
                window_days,
                returnable_classes: classes.iter().map(|c| code("class", c)).collect::<Result<_>>()?,
                restocking_fee_bp,
                return_shipping_minor: ordo_types::parse_decimal(&return_shipping, 2).context("--return-shipping")?,
                trusted_customers: trusted.into_iter().collect(),
                refund_approval_above_minor: ordo_types::parse_decimal(&approval_above, 2)
                    .context("--approval-above")?,
            },
        },
        ReturnCmd::Create { rma, order, lines, reason } => ReturnCommand::Authorize {
            rma_id: rma,
            order: order_key(&order)?,
            lines: pairs(&lines, "--line")?
                .into_iter()
                .map(|(l, u)| u.parse().map(|u| (l, u)).with_context(|| format!("units {u:?} are not a whole number")))
                .collect::<Result<_>>()?,
            reason,
        },
        ReturnCmd::Receive { rma, location } => {
            ReturnCommand::Receive { rma_id: rma, location: code("location", &location)? }
        }
        ReturnCmd::Inspect { rma, grades } => ReturnCommand::Inspect {
            rma_id: rma,
            grades: pairs(&grades, "--grade")?
                .into_iter()
                .map(|(l, g)| {
                    Grade::parse(&g).map(|g| (l, g)).with_context(|| format!("grade {g:?} is not A, B, C or D"))
                })
                .collect::<Result<_>>()?,
        },
        ReturnCmd::Refund { rma } => ReturnCommand::Refund { rma_id: rma },
        ReturnCmd::Exchange { rma, order_id, lines } => ReturnCommand::Exchange {
            replacement_order_id: order_id.unwrap_or_else(|| format!("EX-{rma}")),
            rma_id: rma,
            lines: pairs(&lines, "--line")?
                .into_iter()
                .map(|(l, s)| ordo_types::Sku::new(s.clone()).map(|s| (l, s)).with_context(|| format!("SKU {s:?}")))
                .collect::<Result<_>>()?,
        },
        ReturnCmd::Show { rma, json } => {
            let returns = engine.state().returns();
            let shown: Vec<&ordo_domain::returns::Rma> = match &rma {
                Some(id) => match returns.get(id) {
                    Some(r) => vec![r],
                    None => {
                        eprintln!("unknown RMA {id}");
                        return Ok(ExitCode::from(1));
                    }
                },
                None => returns.all().collect(),
            };
            report::rmas(returns, &shown, json);
            return Ok(ExitCode::SUCCESS);
        }
    };
    submit(engine, Command::Returns(command))
}

/// Imports a file's settlements all or none (one group; a settlement already imported is left as
/// it is and said so) and shows what reconciliation made of each.
fn import_settlements(
    engine: &mut Engine<AnyStore>,
    settlements: Vec<ordo_domain::settlement::Settlement>,
    json: bool,
) -> Result<ExitCode> {
    use ordo_domain::accounting::AccountingCommand;
    let mut keys = Vec::new();
    let mut commands = Vec::new();
    for settlement in settlements {
        let key = (settlement.channel.clone(), settlement.settlement_id.clone());
        if engine.state().gl().settlements().contains_key(&key) {
            eprintln!("settlement {} of {} was already imported; nothing changed", key.1, key.0);
        } else {
            commands.push(attributed(Command::Accounting(AccountingCommand::ImportSettlement(Box::new(settlement)))));
        }
        keys.push(key);
    }
    if !commands.is_empty() {
        let outcome = engine.execute(vec![ordo_engine::Request::Group(commands)]);
        if let Some(e) = outcome.error {
            return Err(e).context("the database refused the change");
        }
        for r in outcome.results {
            if let Err(e) = r {
                eprintln!("rejected, nothing imported: {e}");
                return Ok(ExitCode::from(1));
            }
        }
    }
    for key in keys {
        report::settlement(&engine.state().gl().settlements()[&key], json);
    }
    Ok(ExitCode::SUCCESS)
}

fn gl_command(engine: &mut Engine<AnyStore>, command: GlCmd) -> Result<ExitCode> {
    use ordo_domain::accounting::{AccountingCommand, PurchaseCost};
    match command {
        GlCmd::TrialBalance { entity, json } => {
            report::trial_balance(engine.state(), entity.as_deref(), json);
            Ok(ExitCode::SUCCESS)
        }
        GlCmd::Entries { entity, last, json } => {
            report::gl_entries(engine.state(), entity.as_deref(), last, json);
            Ok(ExitCode::SUCCESS)
        }
        GlCmd::Valuation { json } => {
            report::valuation(engine.state(), json);
            Ok(ExitCode::SUCCESS)
        }
        GlCmd::Cost { sku: s, unit_cost, landed, exponent } => {
            let cost = PurchaseCost {
                unit_cost_minor: ordo_types::parse_decimal(&unit_cost, exponent).context("--unit-cost")?,
                landed_cost_per_unit_minor: ordo_types::parse_decimal(&landed, exponent).context("--landed")?,
            };
            submit(engine, Command::Accounting(AccountingCommand::SetPurchaseCost { sku: sku(&s)?, cost }))
        }
        GlCmd::Fx { from, to, date, rate } => {
            let currency = |raw: &str| ordo_types::CurrencyCode::new(raw).with_context(|| format!("currency {raw:?}"));
            let command = AccountingCommand::SetFxRate {
                from: currency(&from)?,
                to: currency(&to)?,
                from_date: date.parse().context("--date")?,
                rate_nanos: ordo_types::parse_decimal(&rate, 9).context("--rate")?,
            };
            submit(engine, Command::Accounting(command))
        }
    }
}

fn token_command(engine: &mut Engine<AnyStore>, command: TokenCmd) -> Result<ExitCode> {
    use ordo_domain::access::{AccessCommand, Token};
    match command {
        TokenCmd::Create { user, expires_days, channels } => {
            let (id, token, sha256_hex) = ordo_api::auth::new_token();
            let now = engine.now();
            let expires_at =
                expires_days.map(|d| ordo_types::Timestamp::from_millis(now.millis() + i64::from(d) * 86_400_000));
            let record = Token { id: id.clone(), user, sha256_hex, created_at: now, expires_at, revoked_at: None };
            let command = if channels.is_empty() {
                AccessCommand::IssueToken(record)
            } else {
                AccessCommand::IssueScopedToken { token: record, channels }
            };
            match engine.execute_one(Command::Access(command)) {
                Ok(_) => {
                    // The token is shown once; only its hash is kept.
                    println!("token {id} created; it is shown only now: {token}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("rejected: {e}");
                    Ok(ExitCode::from(1))
                }
            }
        }
        TokenCmd::Revoke { id } => {
            let at = engine.now();
            submit(engine, Command::Access(AccessCommand::RevokeToken { id, at }))
        }
        TokenCmd::List => {
            let access = engine.state().access();
            for t in access.tokens() {
                let state = if t.revoked_at.is_some() { "revoked" } else { "live" };
                let scope = match access.token_scope(&t.id) {
                    Some(channels) => channels.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(","),
                    None => "all channels".to_owned(),
                };
                println!("{}\t{}\t{}\t{}", t.id, t.user, state, scope);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Commands typed at the command line, attributed to the operator (`$USER`) in the journal.
pub(crate) fn attributed(command: Command) -> Command {
    let origin = ordo_domain::access::Origin {
        actor: std::env::var("USER").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| "cli".to_owned()),
        role: None,
        source: ordo_domain::access::Source::Cli,
        request_id: ordo_api::auth::random_hex(8),
    };
    Command::Attributed { origin, command: Box::new(command) }
}

fn submit(engine: &mut Engine<AnyStore>, command: Command) -> Result<ExitCode> {
    match engine.execute_one(attributed(command)) {
        Ok(seqs) => {
            println!(
                "ok: recorded at journal sequence {}",
                seqs.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(CommandError::Store(e)) => Err(e).context("the database refused the change"),
        Err(e) => {
            eprintln!("rejected: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

fn import(
    engine: &mut Engine<AnyStore>,
    what: &str,
    parsed: Result<Vec<CsvCommand>, csv_import::CsvError>,
) -> Result<ExitCode> {
    let commands = match parsed {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rejected: {what} file, {e}; nothing was imported");
            return Ok(ExitCode::from(1));
        }
    };
    let lines: Vec<u64> = commands.iter().map(|c| c.line).collect();
    let group = commands.into_iter().map(|c| c.command).collect();
    let outcome = engine.execute(vec![Request::Group(group)]);
    match outcome.results.into_iter().next().expect("one result") {
        Ok(seqs) => {
            println!("ok: imported {} {what} line(s)", seqs.len());
            Ok(ExitCode::SUCCESS)
        }
        Err(CommandError::RejectedInGroup { index, rejection }) => {
            eprintln!("rejected: {what} file, line {}: {rejection}; nothing was imported", lines[index]);
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(e).context("import failed"),
    }
}

fn read(path: &PathBuf) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn run_with_engine(engine: &mut Engine<AnyStore>, command: Cmd) -> Result<ExitCode> {
    match command {
        Cmd::Entity(EntityCmd::Add { code: c, name, currency }) => {
            let e = LegalEntity {
                code: code("legal entity code", &c)?,
                name,
                functional_currency: CurrencyCode::new(&currency)?,
            };
            submit(engine, Command::DefineLegalEntity(e))
        }
        Cmd::Entity(EntityCmd::List { json }) => {
            report::entities(engine.state(), json);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Item(ItemCmd::Import { file }) => {
            let data = read(&file)?;
            import(engine, "item", csv_import::parse_items(&data))
        }
        Cmd::Item(ItemCmd::List { json }) => {
            report::items(engine.state(), json);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Location(LocationCmd::Import { file }) => {
            let data = read(&file)?;
            import(engine, "location", csv_import::parse_locations(&data))
        }
        Cmd::Location(LocationCmd::List { json }) => {
            report::locations(engine.state(), json);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Channel(ChannelCmd::Add {
            code: c,
            name,
            kind,
            entity,
            locations,
            priority,
            percentage_cap,
            buffer,
            incoming_window_days,
        }) => {
            let channel = Channel {
                code: code("channel code", &c)?,
                name,
                kind,
                legal_entity: code("legal entity", &entity)?,
                locations: locations.iter().map(|l| code("location", l)).collect::<Result<_>>()?,
                priority,
                allocation: AllocationPolicy { percentage_cap, buffer, incoming_window_days },
            };
            submit(engine, Command::DefineChannel(channel))
        }
        Cmd::Channel(ChannelCmd::Pool { code: c, sku: s, quantity }) => {
            submit(engine, Command::SetChannelPool { channel: code("channel", &c)?, sku: sku(&s)?, units: quantity })
        }
        Cmd::Channel(ChannelCmd::List { json }) => {
            report::channels(engine.state(), json);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Safety(SafetyCmd::Set { sku: s, location, class, quantity }) => {
            let scope = match (s, location, class) {
                (Some(s), Some(l), None) => SafetyStockScope::SkuAtLocation(sku(&s)?, code("location", &l)?),
                (Some(s), None, None) => SafetyStockScope::Sku(sku(&s)?),
                (None, Some(l), None) => SafetyStockScope::Location(code("location", &l)?),
                (None, None, Some(c)) => SafetyStockScope::SkuClass(code("SKU class", &c)?),
                _ => bail!("give --sku, --location, --sku with --location, or --class"),
            };
            submit(engine, Command::SetSafetyStock { scope, units: quantity })
        }
        Cmd::Safety(SafetyCmd::List { json }) => {
            report::safety(engine.state(), json);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Move(MoveCmd::Import { file }) => {
            let data = read(&file)?;
            let parsed = csv_import::parse_movements(&data, engine.state());
            import(engine, "movement", parsed)
        }
        Cmd::Move(m) => {
            let command = move_command(engine.state(), m)?;
            submit(engine, Command::Move(command))
        }
        Cmd::Ats { channel, sku: s, explain, json } => {
            if let Some(explain_sku) = explain {
                let channel = channel.context("--explain needs --channel")?;
                // The cached figures are as of the last batch; explain the same instant.
                let as_of = engine.availability_as_of()?;
                let explanation = ordo_domain::availability::explain(
                    engine.state(),
                    &sku(&explain_sku)?,
                    &code("channel", &channel)?,
                    as_of,
                )?;
                report::explanation(&explanation, json);
            } else {
                report::ats(engine.state(), channel.as_deref(), s.as_deref(), json)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Verify { json } => crate::report::verify(engine, json),
        Cmd::Order(c) => order_command(engine, c),
        Cmd::Ship { id, carrier, tracking, service, location, shipment, lines, user } => {
            let location = match location {
                Some(l) => l,
                None => {
                    let key = order_key(&id)?;
                    let record = engine.state().orders().get(&key).with_context(|| format!("unknown order {key}"))?;
                    let mut nodes: Vec<&str> = record
                        .lines
                        .iter()
                        .flat_map(|l| &l.reservations)
                        .filter(|r| r.units > 0)
                        .map(|r| r.location.as_str())
                        .collect();
                    nodes.sort_unstable();
                    nodes.dedup();
                    match nodes.as_slice() {
                        [one] => (*one).to_owned(),
                        [] => bail!("order {key} has nothing picked to ship"),
                        many => bail!("order {key} is picked at {}; say which with --location", many.join(", ")),
                    }
                }
            };
            order_command(engine, OrderCmd::Ship { id, location, carrier, service, tracking, shipment, lines, user })
        }
        Cmd::Orders { state, hold, json } => {
            let status = state
                .map(|s| {
                    ordo_domain::orders::lifecycle::OrderStatus::parse(&s)
                        .with_context(|| format!("unknown order status {s:?}"))
                })
                .transpose()?;
            let hold = hold
                .map(|h| {
                    ordo_domain::orders::lifecycle::HoldCode::parse(&h)
                        .with_context(|| format!("unknown hold code {h:?}"))
                })
                .transpose()?;
            let records: Vec<_> = engine
                .state()
                .orders()
                .all()
                .filter(|r| status.is_none_or(|s| r.status == s))
                .filter(|r| hold.is_none_or(|h| r.holds.contains(&h)))
                .collect();
            report::orders(&records, json);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Exceptions { json } => {
            let now = engine.now();
            let queue = ordo_domain::orders::book::exceptions(engine.state(), now);
            report::orders(&queue, json);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Snapshot => {
            let seq = engine.snapshot()?;
            println!("ok: snapshot at journal sequence {seq}");
            Ok(ExitCode::SUCCESS)
        }
        Cmd::User(c) => user_command(engine, c),
        Cmd::Token(c) => token_command(engine, c),
        Cmd::Gl(c) => gl_command(engine, c),
        Cmd::Import(ImportCmd::AmazonSettlement { file, channel, json }) => {
            import_settlement_file(engine, &ordo_channels::amazon::settlement::V2FlatFile, &file, &channel, json)
        }
        Cmd::Import(ImportCmd::ShopifyOrder { files, channel, json }) => {
            let channel = code("channel", &channel)?;
            let source = format!("import:shopify-order:{channel}");
            let parse = |text: &str| {
                ordo_channels::shopify::orders::parse(text, channel.clone()).map(|o| (o.order, o.cancelled))
            };
            import_orders(engine, &files, &source, parse, json)
        }
        Cmd::Import(ImportCmd::ShopifyRefund { files, channel, json }) => {
            import_shopify_refunds(engine, &files, code("channel", &channel)?, json)
        }
        Cmd::Import(ImportCmd::MagentoOrder { files, channel, json }) => {
            let channel = code("channel", &channel)?;
            let source = format!("import:magento-order:{channel}");
            let parse = |text: &str| ordo_channels::magento::orders::parse(text, channel.clone());
            import_orders(engine, &files, &source, parse, json)
        }
        Cmd::Import(ImportCmd::AmazonOrder { files, channel, json }) => {
            let channel = code("channel", &channel)?;
            let source = format!("import:amazon-order:{channel}");
            let mut orders = Vec::new();
            let mut items = Vec::new();
            for file in &files {
                let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
                if ordo_channels::amazon::orders::items_of(&text).is_ok() {
                    items.push(text);
                } else {
                    orders.push(text);
                }
            }
            let read = match ordo_channels::amazon::orders::map_each(&orders, &items, &channel) {
                Ok(read) => read,
                Err(e) => {
                    eprintln!("refused: {e}");
                    keep_dead_letter(engine, source, e.to_string(), orders.join("\n"))?;
                    return Ok(ExitCode::from(1));
                }
            };
            // An order that does not map is refused and kept alone; the others are captured.
            let mut mapped = Vec::new();
            let mut refused = false;
            for (document, result) in read {
                match result {
                    Ok(order) => mapped.push(order),
                    Err(e) => {
                        eprintln!("refused: {e}");
                        keep_dead_letter(engine, source.clone(), e.to_string(), document)?;
                        refused = true;
                    }
                }
            }
            let code_out = capture_mapped(engine, mapped, json)?;
            Ok(if refused { ExitCode::from(1) } else { code_out })
        }
        Cmd::Poll { kind, config, channel, since, json } => poll_orders(engine, &kind, &config, &channel, since, json),
        Cmd::Import(ImportCmd::PosCsv { files, channel, json }) => {
            pos_import(engine, &files, code("channel", &channel)?, json)
        }
        Cmd::Import(ImportCmd::WalmartOrder { files, channel, json }) => {
            let channel = code("channel", &channel)?;
            let source = format!("import:walmart-order:{channel}");
            let parse = |text: &str| ordo_channels::walmart::orders::parse(text, channel.clone()).map(|o| (o, false));
            import_orders(engine, &files, &source, parse, json)
        }
        Cmd::Import(ImportCmd::X12 { files, channel, sender, acks, lenient_envelopes, json }) => {
            let envelopes = if lenient_envelopes {
                ordo_channels::x12::inbound::Envelopes::Lenient
            } else {
                ordo_channels::x12::inbound::Envelopes::Strict
            };
            crate::edi::import_x12(
                engine,
                &files,
                code("channel", &channel)?,
                party(&sender)?,
                acks.as_deref(),
                envelopes,
                json,
            )
        }
        Cmd::Export(ExportCmd::Availability {
            channel,
            format: AvailabilityFormat::X12_846,
            sender,
            partner,
            out,
            ..
        }) => {
            let partner = partner.as_deref().map(party).transpose()?;
            crate::edi::export_846(engine, code("channel", &channel)?, party(&sender)?, partner, out)
        }
        Cmd::Export(ExportCmd::Availability { channel, format, out, location_gid, seller_id, .. }) => {
            let channel = code("channel", &channel)?;
            let state = engine.state();
            if state.channel(&channel).is_none() {
                bail!("unknown channel {channel}");
            }
            // The whole figure for every item, compared against nothing: a full resync.
            let updates: Vec<ordo_channels::availability::AvailabilityUpdate> = state
                .items()
                .iter()
                .map(|i| {
                    let available = state.ats(&i.sku, &channel).unwrap_or(0);
                    ordo_channels::availability::AvailabilityUpdate {
                        sku: i.sku.to_string(),
                        channel_item: state.orders().listing_of(&channel, &i.sku).unwrap_or(i.sku.as_str()).to_owned(),
                        previous: available,
                        available,
                    }
                })
                .collect();
            let document = match format {
                AvailabilityFormat::Shopify => {
                    let location = location_gid.context("--location-gid is needed for the Shopify format")?;
                    let calls: Vec<_> = updates
                        .chunks(ordo_channels::shopify::inventory::MAX_QUANTITIES)
                        .map(|c| {
                            ordo_channels::shopify::inventory::set_quantities_request(
                                &location,
                                c,
                                false,
                                "ordo://export",
                            )
                        })
                        .collect();
                    serde_json::Value::Array(calls)
                }
                AvailabilityFormat::Amazon => {
                    let seller = seller_id.context("--seller-id is needed for the Amazon format")?;
                    ordo_channels::amazon::listings::listings_feed(&seller, "PRODUCT", &updates)
                }
                AvailabilityFormat::Walmart => ordo_channels::walmart::inventory::inventory_feed(&updates),
                AvailabilityFormat::X12_846 => unreachable!("handled above"),
            };
            let text = serde_json::to_string_pretty(&document)?;
            match out {
                Some(path) => std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?,
                None => println!("{text}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Export(ExportCmd::X12_856 { order, shipment, sender, partner, out }) => {
            let partner = partner.as_deref().map(party).transpose()?;
            let kind = crate::edi::ShipmentDocument::ShipNotice856;
            crate::edi::export_shipment(engine, kind, &order, &shipment, party(&sender)?, partner, out)
        }
        Cmd::Export(ExportCmd::X12_810 { order, shipment, sender, partner, out }) => {
            let partner = partner.as_deref().map(party).transpose()?;
            let kind = crate::edi::ShipmentDocument::Invoice810;
            crate::edi::export_shipment(engine, kind, &order, &shipment, party(&sender)?, partner, out)
        }
        Cmd::Import(ImportCmd::ShopifyBalance { file, channel, json }) => {
            import_settlement_file(engine, &ordo_channels::shopify::balance::BalanceTransactions, &file, &channel, json)
        }
        Cmd::Import(ImportCmd::ShopifyPayouts { file, channel, json }) => {
            import_settlement_file(engine, &ordo_channels::shopify::payouts::PayoutsDocument, &file, &channel, json)
        }
        Cmd::Return(c) => return_command(engine, c),
        Cmd::Deadletter(c) => deadletter_command(engine, c),
        Cmd::Wave(WaveCmd::Plan { node, limit, json }) => {
            let now = engine.now();
            match ordo_domain::orders::waves::plan(engine.state(), &code("node", &node)?, now, limit) {
                Ok(wave) => {
                    report::wave(&wave, json);
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("rejected: {e}");
                    Ok(ExitCode::from(1))
                }
            }
        }
        Cmd::Wave(WaveCmd::Release { node, limit, json }) => {
            let now = engine.now();
            let wave = match ordo_domain::orders::waves::plan(engine.state(), &code("node", &node)?, now, limit) {
                Ok(wave) => wave,
                Err(e) => {
                    eprintln!("rejected: {e}");
                    return Ok(ExitCode::from(1));
                }
            };
            let actor =
                ordo_domain::orders::lifecycle::Actor::User(std::env::var("USER").unwrap_or_else(|_| "cli".into()));
            // One group per order: an order that cannot go (changed since the plan) stays behind
            // alone, the rest of the wave goes.
            let requests: Vec<ordo_engine::Request> = wave
                .orders
                .iter()
                .map(|o| {
                    let key = o.key.clone();
                    ordo_engine::Request::Group(vec![
                        attributed(Command::Order(ordo_domain::orders::book::OrderCommand::Dispatch {
                            key: key.clone(),
                            actor: actor.clone(),
                            ship_partial: false,
                        })),
                        attributed(Command::Order(ordo_domain::orders::book::OrderCommand::StartPicking {
                            key,
                            actor: actor.clone(),
                        })),
                    ])
                })
                .collect();
            let outcome = engine.execute(requests);
            if let Some(e) = outcome.error {
                return Err(e).context("the database refused the wave");
            }
            for (o, r) in wave.orders.iter().zip(&outcome.results) {
                if let Err(e) = r {
                    eprintln!("{} stays behind: {e}", o.key);
                }
            }
            report::wave(&wave, json);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Settlement(SettlementCmd::Show { id, json }) => {
            match engine.state().gl().settlements().iter().find(|((_, s), _)| *s == id) {
                Some((_, r)) => {
                    report::settlement(r, json);
                    Ok(ExitCode::SUCCESS)
                }
                None => {
                    eprintln!("no settlement {id:?} has been imported");
                    Ok(ExitCode::from(1))
                }
            }
        }
        Cmd::Settlement(SettlementCmd::Variances { json }) => {
            report::variances(engine.state(), json);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Settlement(SettlementCmd::Fees { channel, commission_bp, tolerance }) => {
            let schedule = ordo_domain::settlement::FeeSchedule {
                commission_bp,
                tolerance_minor: ordo_types::parse_decimal(&tolerance, 2).context("--tolerance")?,
            };
            let channel = code("channel", &channel)?;
            submit(
                engine,
                Command::Accounting(ordo_domain::accounting::AccountingCommand::SetFeeSchedule { channel, schedule }),
            )
        }
        Cmd::Init
        | Cmd::Demo { .. }
        | Cmd::Bench(_)
        | Cmd::Stock { .. }
        | Cmd::Serve { .. }
        | Cmd::Worker { .. }
        | Cmd::Outbox(_) => {
            unreachable!("handled before opening")
        }
    }
}

fn move_command(state: &State, m: MoveCmd) -> Result<MoveCommand> {
    let at = |a: &At| -> Result<(Sku, Code)> { Ok((sku(&a.sku)?, code("location", &a.location)?)) };
    Ok(match m {
        MoveCmd::Receipt { at: a, qty, expectation } => {
            let (sku, location) = at(&a)?;
            MoveCommand::Receipt {
                units: units(state, &sku, &qty)?,
                sku,
                location,
                expectation: expectation.map(|e| code("expectation", &e)).transpose()?,
            }
        }
        MoveCmd::Expect { expectation, at: a, qty, expected_on } => {
            let (sku, location) = at(&a)?;
            MoveCommand::Expect {
                expectation: code("expectation", &expectation)?,
                units: units(state, &sku, &qty)?,
                sku,
                location,
                expected_on: expected_on.parse::<Date>()?,
            }
        }
        MoveCmd::CancelExpectation { expectation } => {
            MoveCommand::CancelExpectation { expectation: code("expectation", &expectation)? }
        }
        MoveCmd::Transfer { transfer, sku: s, from, to, qty } => {
            let sku = sku(&s)?;
            MoveCommand::TransferShip {
                transfer: code("transfer", &transfer)?,
                units: units(state, &sku, &qty)?,
                sku,
                from: code("location", &from)?,
                to: code("location", &to)?,
            }
        }
        MoveCmd::TransferReceive { transfer, quantity } => {
            MoveCommand::TransferReceive { transfer: code("transfer", &transfer)?, units: quantity }
        }
        MoveCmd::Commit { reservation, at: a, qty } => {
            let (sku, location) = at(&a)?;
            MoveCommand::Commit {
                reservation: code("reservation", &reservation)?,
                units: units(state, &sku, &qty)?,
                sku,
                location,
            }
        }
        MoveCmd::Release { reservation, quantity } => {
            MoveCommand::Release { reservation: code("reservation", &reservation)?, units: quantity }
        }
        MoveCmd::Pick { reservation, quantity } => {
            MoveCommand::Pick { reservation: code("reservation", &reservation)?, units: quantity }
        }
        MoveCmd::Ship { reservation, quantity } => {
            MoveCommand::Ship { reservation: code("reservation", &reservation)?, units: quantity }
        }
        MoveCmd::Return { at: a, qty, reference } => {
            let (sku, location) = at(&a)?;
            MoveCommand::ReturnReceipt {
                units: units(state, &sku, &qty)?,
                sku,
                location,
                reference: reference.map(|r| code("reference", &r)).transpose()?,
            }
        }
        MoveCmd::Dispose { at: a, qty, disposition } => {
            let (sku, location) = at(&a)?;
            MoveCommand::Dispose { units: units(state, &sku, &qty)?, sku, location, disposition }
        }
        MoveCmd::WriteOff { at: a, qty, reason: r } => {
            let (sku, location) = at(&a)?;
            MoveCommand::WriteOff { units: units(state, &sku, &qty)?, sku, location, reason: reason(&r)? }
        }
        MoveCmd::Hold { at: a, qty, reason: r } => {
            let (sku, location) = at(&a)?;
            MoveCommand::Hold { units: units(state, &sku, &qty)?, sku, location, reason: reason(&r)? }
        }
        MoveCmd::Unhold { at: a, qty } => {
            let (sku, location) = at(&a)?;
            MoveCommand::Unhold { units: units(state, &sku, &qty)?, sku, location }
        }
        MoveCmd::Count { at: a, counted } => {
            let (sku, location) = at(&a)?;
            MoveCommand::Count { sku, location, counted_on_hand: counted }
        }
        MoveCmd::Adjust { at: a, qty, reason: r } => {
            let (sku, location) = at(&a)?;
            MoveCommand::Adjust { delta: units(state, &sku, &qty)?, sku, location, reason: reason(&r)? }
        }
        MoveCmd::Reverse { movement, reason: r } => MoveCommand::Reverse { movement, reason: reason(&r)? },
        MoveCmd::Import { .. } => unreachable!("handled by the caller"),
    })
}
