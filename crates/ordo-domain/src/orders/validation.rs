//! Order validation rules producing hold codes, and the exception queue order.
//!
//! # Validation
//!
//! [`validate`] runs every enabled rule of [`ValidationRules`] over a captured [`Order`] and
//! returns [`HoldFinding`]s: one [`HoldCode`] each, with the line it concerns (if any) and a
//! detail that names the field, line and value at fault. An order with no findings passes; one
//! with findings goes `on_hold` with their codes. Everything the order alone cannot tell — the
//! catalog, listing maps, tax jurisdictions, shipping methods, the retailer's customer records,
//! price lists and what each channel was offered — comes from a [`ValidationContext`], which the
//! engine implements over its state and tests over a fixture. Validation reads no clock and does
//! no I/O; the same order, rules and context always give the same findings.
//!
//! | Code | Holds when | Line |
//! |------|------------|------|
//! | `PAYMENT_NOT_CAPTURED` | `payment_status` is not `captured` (`authorized` passes only with `accept_authorized`) | — |
//! | `FRAUD_REVIEW` | `fraud.recommendation` is `review` or `cancel`, or `fraud.score` ≥ `fraud_review_score` | — |
//! | `ADDRESS_INCOMPLETE` | `ship_to` lacks name, line1, city, postal code or country, lacks a region where the country needs one, or the country is not two upper-case letters; for pickup orders `ship_to` is not needed but `customer.name` is | — |
//! | `TAX_MISSING` | a line with net value > 0 has no tax line while its jurisdiction is taxable (any tax line counts, a channel-collected one included) | each |
//! | `SHIPPING_METHOD_UNKNOWN` | `shipping.method` is not one of the channel's methods | — |
//! | `CUSTOMER_ON_HOLD` | the order's or the retailer's record of the customer says `credit_hold` or `blocked` (the stricter wins) | — |
//! | `SKU_UNKNOWN` | the item does not resolve to a catalog SKU, the quantity is not positive, or the unit of measure is not the item's | each |
//! | `PRICE_MISMATCH` | the unit price is more than `price_tolerance_bp` from the channel's list price, or in another currency | each |
//! | `STOCK_DISCREPANCY` | the order's units of a SKU (summed over its lines) exceed what the channel was offered | first line of the SKU |
//!
//! Findings are sorted by code (the declaration order of [`HoldCode`]) then line id (order-level
//! findings first, then line ids compared as text), with at most one per `(code, line)`. A line
//! that does not resolve to a catalog item, or whose quantity or unit of measure is bad, is
//! reported once under `SKU_UNKNOWN` and skipped by the price and stock rules, which need it.
//!
//! # Clearing
//!
//! Re-validating a held order (after a payment-captured event, a customer record update, a new
//! listing mapping…) and passing the fresh findings to [`clearable`] gives the holds whose cause
//! is gone. Three codes never clear themselves, because their absence on re-validation does not
//! mean the problem was solved:
//!
//! * `MANUAL` has no rule: an operator set it, so only an operator releases it.
//! * `PICKUP_STORE_CANNOT_FILL` is raised by sourcing, not validation; the customer chose that
//!   store, and moving or splitting the order is a person's call (it is never re-sourced silently).
//! * `STOCK_DISCREPANCY` compares against what the channel was offered at capture. Once the
//!   order has reserved stock, or stock moved, re-validation sees different figures, so a clean
//!   result proves nothing; someone must decide to wait, source elsewhere, backorder or cancel.
//!
//! A rule that is disabled produces no findings, so re-validating with it disabled clears its
//! holds: disabling a rule releases the orders it held.
//!
//! # Exception queue
//!
//! Held orders are worked in the order of [`exception_order`] (and [`sort_exceptions`]):
//!
//! 1. **Promise risk.** First the orders whose promise is already due (`promised_by ≤ now`: it
//!    can no longer be kept by acting later), all alike — the promise is broken, so among them
//!    what is at stake decides; then orders with a future promise, soonest first; then orders
//!    without a promise.
//! 2. **Higher order value** (`value_minor`, functional-currency minor units) first.
//! 3. **Channel priority**, 1 first.
//! 4. **Older `placed_at`** first.
//! 5. **Order key** (channel, then channel order id), then — for two entries of the same key — the
//!    holds and the exact promise, so the order is total: two entries compare equal only when they
//!    are identical, and any permutation of the same entries sorts to the same sequence.
//!
//! An order's promise ([`promised_by`]) is the channel's ship-by instant when it gives one,
//! otherwise 00:00 UTC on the promised delivery date (the latest moment by which the goods must
//! be on their way for any carrier to deliver that day — deliberately early, as delivery dates
//! carry no time and a held order is not yet picked), otherwise none.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use ordo_types::{ChannelCode, CurrencyCode, LocationCode, Sku, Timestamp, Units};
use serde::{Deserialize, Serialize};

use super::lifecycle::HoldCode;
use super::model::{
    AccountStatus, FraudRecommendation, FulfillmentIntent, LineItem, Order, OrderKey, OrderLine, PaymentStatus,
};
use crate::catalog::{Address, Item};

/// The codes [`validate`] can produce, in rule order. `PICKUP_STORE_CANNOT_FILL` (sourcing) and
/// `MANUAL` (an operator) have no validation rule.
pub const RULE_CODES: [HoldCode; 10] = [
    HoldCode::PaymentNotCaptured,
    HoldCode::FraudReview,
    HoldCode::AddressIncomplete,
    HoldCode::TaxMissing,
    HoldCode::ShippingMethodUnknown,
    HoldCode::CustomerOnHold,
    HoldCode::SkuUnknown,
    HoldCode::PriceMismatch,
    HoldCode::StockDiscrepancy,
    HoldCode::TaxMismatch,
];

/// Holds that only a person clears; see the module documentation for why.
pub const CLEARED_BY_PERSON_ONLY: [HoldCode; 3] =
    [HoldCode::Manual, HoldCode::PickupStoreCannotFill, HoldCode::StockDiscrepancy];

const MILLIS_PER_DAY: i64 = 86_400_000;
const BASIS_POINTS: i128 = 10_000;

/// Which rules run and their thresholds. Reads from JSON with every field optional (missing
/// fields take the [`Default`] values).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct ValidationRules {
    /// The rules that run, by the code they produce. Default: all of [`RULE_CODES`]. Codes
    /// without a rule (`MANUAL`, `PICKUP_STORE_CANNOT_FILL`) have no effect here.
    pub enabled: BTreeSet<HoldCode>,
    /// Accept an authorized (not yet captured) payment. Default `false`: hold until captured.
    pub accept_authorized: bool,
    /// A fraud score (0–100) at or above this holds the order for review. Default 75.
    pub fraud_review_score: u8,
    /// How far, in basis points of the list price, a unit price may deviate either way before
    /// it holds. Default 200 (2 %); exactly 2 % passes.
    pub price_tolerance_bp: u32,
    /// ISO 3166-1 alpha-2 countries whose addresses need a region (state, province, territory).
    /// Default `AU`, `CA`, `US`.
    pub countries_requiring_region: BTreeSet<String>,
}

impl Default for ValidationRules {
    fn default() -> Self {
        Self {
            enabled: RULE_CODES.into_iter().collect(),
            accept_authorized: false,
            fraud_review_score: 75,
            price_tolerance_bp: 200,
            countries_requiring_region: ["AU", "CA", "US"].into_iter().map(String::from).collect(),
        }
    }
}

/// What validation needs to know beyond the order. The engine implements it over its state;
/// every method must be deterministic (same answer for the same state).
pub trait ValidationContext {
    /// The catalog item with this SKU, if the catalog holds it.
    fn item(&self, sku: &Sku) -> Option<&Item>;

    /// The catalog SKU a line asks for on `channel`: a [`LineItem::Sku`] that is in the catalog,
    /// or the SKU the channel's listing map gives a [`LineItem::Listing`]; `None` when unknown.
    /// (A SKU returned here that [`item`](Self::item) does not know is still reported unknown.)
    fn resolve(&self, channel: &ChannelCode, item: &LineItem) -> Option<Sku>;

    /// Whether sales to this jurisdiction (ISO country code, region as on the address, possibly
    /// empty) must carry tax.
    fn taxable(&self, country: &str, region: &str) -> bool;

    /// The sales-tax rate in basis points Ordo's table has for the jurisdiction (the region's,
    /// else the country's); `None` when the table has none (nothing to check against).
    fn tax_rate(&self, _country: &str, _region: &str) -> Option<u32> {
        None
    }

    /// Whether `method` is one of the channel's shipping method codes.
    fn known_shipping_method(&self, channel: &ChannelCode, method: &str) -> bool;

    /// The retailer's own record of the customer's account status, if it has one. Customer ids
    /// are the channel's, so the channel is given too.
    fn customer_status(&self, channel: &ChannelCode, customer_id: &str) -> Option<AccountStatus>;

    /// The channel's list price of one base unit (each) of `sku`, in minor units of the currency.
    fn list_price(&self, channel: &ChannelCode, sku: &Sku) -> Option<(CurrencyCode, i64)>;

    /// The units (eaches) of `sku` the channel was offered — its available-to-sell when the
    /// order was captured.
    fn offered(&self, channel: &ChannelCode, sku: &Sku) -> Units;

    /// The address of a location; the tax jurisdiction of a pickup order is its store's.
    fn location_address(&self, location: &LocationCode) -> Option<&Address>;
}

/// One reason to hold an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldFinding {
    pub code: HoldCode,
    /// The order line concerned; `None` for findings about the whole order.
    pub line_id: Option<String>,
    /// What is wrong, naming the field, line and value.
    pub detail: String,
}

impl fmt::Display for HoldFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.line_id {
            Some(line) => write!(f, "{} (line {line}): {}", self.code.as_str(), self.detail),
            None => write!(f, "{}: {}", self.code.as_str(), self.detail),
        }
    }
}

/// The distinct codes among `findings`: the holds to put the order on.
pub fn hold_codes(findings: &[HoldFinding]) -> BTreeSet<HoldCode> {
    findings.iter().map(|f| f.code).collect()
}

/// Runs every enabled rule over `order`. Findings are sorted by code then line id, at most one
/// per `(code, line)`; an empty result means the order passes.
pub fn validate(order: &Order, rules: &ValidationRules, ctx: &impl ValidationContext) -> Vec<HoldFinding> {
    let on = |code: HoldCode| rules.enabled.contains(&code);
    let lines: Vec<LineFacts<'_>> = order.lines.iter().map(|line| LineFacts::of(order, line, ctx)).collect();
    let mut findings = Vec::new();

    if on(HoldCode::PaymentNotCaptured) {
        check_payment(order, rules, &mut findings);
    }
    if on(HoldCode::FraudReview) {
        check_fraud(order, rules, &mut findings);
    }
    if on(HoldCode::AddressIncomplete) {
        check_address(order, rules, &mut findings);
    }
    if on(HoldCode::TaxMissing) {
        check_tax(order, ctx, &mut findings);
    }
    if on(HoldCode::TaxMismatch) {
        check_tax_rate(order, ctx, &mut findings);
    }
    if on(HoldCode::ShippingMethodUnknown) {
        check_shipping_method(order, ctx, &mut findings);
    }
    if on(HoldCode::CustomerOnHold) {
        check_customer(order, ctx, &mut findings);
    }
    if on(HoldCode::SkuUnknown) {
        for facts in lines.iter().filter(|f| !f.problems.is_empty()) {
            let detail = format!("line {}: {}", facts.line.line_id, facts.problems.join("; "));
            push(&mut findings, HoldCode::SkuUnknown, Some(&facts.line.line_id), detail);
        }
    }
    if on(HoldCode::PriceMismatch) {
        check_prices(order, rules, &lines, ctx, &mut findings);
    }
    if on(HoldCode::StockDiscrepancy) {
        check_stock(order, &lines, ctx, &mut findings);
    }

    // Stable: for a repeated (code, line) — only possible with duplicate line ids — the first
    // finding produced is the one kept.
    findings.sort_by(|a, b| (a.code, &a.line_id).cmp(&(b.code, &b.line_id)));
    findings.dedup_by(|later, kept| later.code == kept.code && later.line_id == kept.line_id);
    findings
}

/// The holds in `current` whose cause is gone: no finding of that code in `findings_now` (the
/// result of re-validating the order). `MANUAL`, `PICKUP_STORE_CANNOT_FILL` and
/// `STOCK_DISCREPANCY` are never returned; only a person clears them (see the module docs).
pub fn clearable(current: &BTreeSet<HoldCode>, findings_now: &[HoldFinding]) -> BTreeSet<HoldCode> {
    let still = hold_codes(findings_now);
    current.iter().copied().filter(|code| !CLEARED_BY_PERSON_ONLY.contains(code) && !still.contains(code)).collect()
}

fn push(findings: &mut Vec<HoldFinding>, code: HoldCode, line_id: Option<&str>, detail: String) {
    findings.push(HoldFinding { code, line_id: line_id.map(str::to_owned), detail });
}

/// What the line rules need to know about one line, resolved once.
struct LineFacts<'a> {
    line: &'a OrderLine,
    /// The catalog item the line resolves to.
    item: Option<&'a Item>,
    /// Base units of one line unit (1 for `each`), when the item and its unit of measure are known.
    uom_factor: Option<Units>,
    /// The line's quantity in base units, when the item, unit and a positive quantity are known.
    base_units: Option<Units>,
    /// Why the line is `SKU_UNKNOWN`; empty when it is fine.
    problems: Vec<String>,
}

impl<'a> LineFacts<'a> {
    fn of<C: ValidationContext>(order: &Order, line: &'a OrderLine, ctx: &'a C) -> Self {
        let mut problems = Vec::new();
        let item = match ctx.resolve(&order.channel, &line.item) {
            None => {
                problems.push(match &line.item {
                    LineItem::Sku(sku) => format!("SKU {sku} is not in the catalog"),
                    LineItem::Listing(id) => {
                        format!("listing {id:?} has no SKU mapping for channel {}", order.channel)
                    }
                });
                None
            }
            Some(sku) => {
                let item = ctx.item(&sku);
                if item.is_none() {
                    problems.push(match &line.item {
                        LineItem::Sku(asked) if *asked == sku => format!("SKU {sku} is not in the catalog"),
                        LineItem::Sku(asked) => {
                            format!("SKU {asked} resolves to SKU {sku}, which is not in the catalog")
                        }
                        LineItem::Listing(id) => {
                            format!("listing {id:?} maps to SKU {sku}, which is not in the catalog")
                        }
                    });
                }
                item
            }
        };
        if line.quantity <= 0 {
            problems.push(format!("quantity {} is not positive", line.quantity));
        }
        let mut uom_factor = None;
        let mut base_units = None;
        if let Some(item) = item {
            match item.to_base_units(1, &line.uom) {
                Ok(factor) => uom_factor = Some(factor),
                Err(_) => problems.push(format!("uom {:?} is not a unit of measure of SKU {}", line.uom, item.sku)),
            }
            if uom_factor.is_some() && line.quantity > 0 {
                match item.to_base_units(line.quantity, &line.uom) {
                    Ok(units) => base_units = Some(units),
                    Err(_) => problems.push(format!("quantity {} {} is out of range", line.quantity, line.uom)),
                }
            }
        }
        Self { line, item, uom_factor, base_units, problems }
    }
}

fn check_payment(order: &Order, rules: &ValidationRules, findings: &mut Vec<HoldFinding>) {
    let detail = match order.payment_status {
        PaymentStatus::Captured => return,
        PaymentStatus::Authorized if rules.accept_authorized => return,
        PaymentStatus::Authorized => {
            "payment_status is authorized, not captured (authorized payments are not accepted)".to_owned()
        }
        PaymentStatus::Pending => "payment_status is pending, not captured".to_owned(),
        PaymentStatus::Failed => "payment_status is failed".to_owned(),
        PaymentStatus::Refunded => "payment_status is refunded".to_owned(),
    };
    push(findings, HoldCode::PaymentNotCaptured, None, detail);
}

fn check_fraud(order: &Order, rules: &ValidationRules, findings: &mut Vec<HoldFinding>) {
    let mut reasons = Vec::new();
    match order.fraud.recommendation {
        Some(FraudRecommendation::Review) => reasons.push("fraud.recommendation is review".to_owned()),
        Some(FraudRecommendation::Cancel) => reasons.push("fraud.recommendation is cancel".to_owned()),
        Some(FraudRecommendation::Accept) | None => {}
    }
    if let Some(score) = order.fraud.score
        && score >= rules.fraud_review_score
    {
        reasons.push(format!("fraud.score {score} is at or above the review threshold {}", rules.fraud_review_score));
    }
    if !reasons.is_empty() {
        push(findings, HoldCode::FraudReview, None, reasons.join("; "));
    }
}

fn is_blank(value: &str) -> bool {
    value.trim().is_empty()
}

fn check_address(order: &Order, rules: &ValidationRules, findings: &mut Vec<HoldFinding>) {
    if let FulfillmentIntent::PickUpInStore { store } = &order.fulfillment {
        if is_blank(&order.customer.name) {
            let detail = format!("customer.name is empty; a pickup order at store {store} needs the collector's name");
            push(findings, HoldCode::AddressIncomplete, None, detail);
        }
        return;
    }
    let to = &order.ship_to;
    let mut problems = Vec::new();
    let required = [
        ("name", &to.name),
        ("line1", &to.line1),
        ("city", &to.city),
        ("postal_code", &to.postal_code),
        ("country", &to.country),
    ];
    let missing: Vec<&str> = required.iter().filter(|(_, value)| is_blank(value)).map(|(field, _)| *field).collect();
    if !missing.is_empty() {
        problems.push(format!("ship_to is missing {}", missing.join(", ")));
    }
    if !is_blank(&to.country) {
        let well_formed = to.country.len() == 2 && to.country.bytes().all(|b| b.is_ascii_uppercase());
        if !well_formed {
            problems
                .push(format!("ship_to.country {:?} is not two upper-case letters (ISO 3166-1 alpha-2)", to.country));
        } else if rules.countries_requiring_region.contains(&to.country) && is_blank(&to.region) {
            problems.push(format!("ship_to.region is required for country {}", to.country));
        }
    }
    if !problems.is_empty() {
        push(findings, HoldCode::AddressIncomplete, None, problems.join("; "));
    }
}

/// Where tax is owed: the pickup store's address for a pickup order (when the context knows the
/// store), otherwise the ship-to address; `None` when there is no country to go by.
fn tax_jurisdiction<'a>(order: &'a Order, ctx: &'a impl ValidationContext) -> Option<(&'a str, &'a str)> {
    if let FulfillmentIntent::PickUpInStore { store } = &order.fulfillment
        && let Some(address) = ctx.location_address(store)
        && !is_blank(&address.country)
    {
        return Some((&address.country, &address.region));
    }
    let to = &order.ship_to;
    (!is_blank(&to.country)).then_some((to.country.as_str(), to.region.as_str()))
}

fn check_tax(order: &Order, ctx: &impl ValidationContext, findings: &mut Vec<HoldFinding>) {
    let Some((country, region)) = tax_jurisdiction(order, ctx) else { return };
    if !ctx.taxable(country, region) {
        return;
    }
    let jurisdiction = if is_blank(region) { country.to_owned() } else { format!("{country}-{region}") };
    for line in order.lines.iter().filter(|l| l.net_minor() > 0 && l.tax_lines.is_empty()) {
        let detail = format!(
            "line {}: net value {} {} has no tax line, and {jurisdiction} is taxable",
            line.line_id,
            line.net_minor(),
            order.currency
        );
        push(findings, HoldCode::TaxMissing, Some(&line.line_id), detail);
    }
}

/// The tax the seller collects on each line against the table's rate for the jurisdiction:
/// net × rate, rounded half up to the minor unit, with one minor unit of tolerance per tax line
/// (channels round per line and per jurisdiction). Marketplace-collected tax is the
/// marketplace's to compute.
fn check_tax_rate(order: &Order, ctx: &impl ValidationContext, findings: &mut Vec<HoldFinding>) {
    let Some((country, region)) = tax_jurisdiction(order, ctx) else { return };
    if !ctx.taxable(country, region) {
        return;
    }
    let Some(rate_bp) = ctx.tax_rate(country, region) else { return };
    for line in &order.lines {
        let seller: Vec<_> = line.tax_lines.iter().filter(|t| !t.channel_collected).collect();
        if seller.is_empty() {
            continue;
        }
        let charged: i64 = seller.iter().map(|t| t.amount_minor).sum();
        let expected =
            ((i128::from(line.net_minor()) * i128::from(rate_bp) * 2 + BASIS_POINTS) / (2 * BASIS_POINTS)) as i64;
        if (charged - expected).abs() > seller.len() as i64 {
            let detail = format!(
                "line {}: tax {} {} charged, the table's {} bp on {} makes {}",
                line.line_id,
                charged,
                order.currency,
                rate_bp,
                line.net_minor(),
                expected
            );
            push(findings, HoldCode::TaxMismatch, Some(&line.line_id), detail);
        }
    }
}

fn check_shipping_method(order: &Order, ctx: &impl ValidationContext, findings: &mut Vec<HoldFinding>) {
    let method = &order.shipping.method;
    if is_blank(method) || !ctx.known_shipping_method(&order.channel, method) {
        let detail = format!("shipping.method {method:?} is not a shipping method of channel {}", order.channel);
        push(findings, HoldCode::ShippingMethodUnknown, None, detail);
    }
}

fn account_status_name(status: AccountStatus) -> &'static str {
    match status {
        AccountStatus::Active => "active",
        AccountStatus::CreditHold => "credit_hold",
        AccountStatus::Blocked => "blocked",
    }
}

/// Higher is stricter.
fn strictness(status: AccountStatus) -> u8 {
    match status {
        AccountStatus::Active => 0,
        AccountStatus::CreditHold => 1,
        AccountStatus::Blocked => 2,
    }
}

fn check_customer(order: &Order, ctx: &impl ValidationContext, findings: &mut Vec<HoldFinding>) {
    let customer = &order.customer;
    let on_order = customer.account_status;
    let on_record = ctx.customer_status(&order.channel, &customer.id);
    let strictest = on_record.filter(|r| strictness(*r) > strictness(on_order)).unwrap_or(on_order);
    if strictest == AccountStatus::Active {
        return;
    }
    let source = match on_record {
        Some(record) if record == on_order => "per the order and the retailer's customer record",
        Some(record) if record == strictest => "per the retailer's customer record",
        _ => "per the order's customer.account_status",
    };
    let mut detail = format!("customer {} is {} {source}", customer.id, account_status_name(strictest));
    if let Some(record) = on_record
        && record != on_order
    {
        let (other, other_status) =
            if record == strictest { ("the order", on_order) } else { ("the retailer's record", record) };
        detail.push_str(&format!(" ({other} says {})", account_status_name(other_status)));
    }
    push(findings, HoldCode::CustomerOnHold, None, detail);
}

/// How far `actual` is from `expected`, in basis points of `expected`, rounded away from zero;
/// `None` when `expected` is zero.
fn deviation_bp(actual: i128, expected: i128) -> Option<i128> {
    if expected == 0 {
        return None;
    }
    let diff = actual - expected;
    let magnitude = (diff.unsigned_abs() * BASIS_POINTS.unsigned_abs()).div_ceil(expected.unsigned_abs());
    let magnitude = i128::try_from(magnitude).unwrap_or(i128::MAX);
    Some(if diff < 0 { -magnitude } else { magnitude })
}

fn check_prices(
    order: &Order,
    rules: &ValidationRules,
    lines: &[LineFacts<'_>],
    ctx: &impl ValidationContext,
    findings: &mut Vec<HoldFinding>,
) {
    for facts in lines {
        let (Some(item), Some(factor)) = (facts.item, facts.uom_factor) else { continue };
        let Some((currency, list_each)) = ctx.list_price(&order.channel, &item.sku) else { continue };
        let line = facts.line;
        if currency != order.currency {
            let detail = format!(
                "line {}: order currency {} differs from the list price currency {currency} of SKU {} on channel {}",
                line.line_id, order.currency, item.sku, order.channel
            );
            push(findings, HoldCode::PriceMismatch, Some(&line.line_id), detail);
            continue;
        }
        let expected = i128::from(list_each) * i128::from(factor);
        let actual = i128::from(line.unit_price_minor);
        let diff = (actual - expected).abs();
        // Exactly at the tolerance passes: |actual − expected| ≤ tolerance × |expected|.
        if diff * BASIS_POINTS <= i128::from(rules.price_tolerance_bp) * expected.abs() {
            continue;
        }
        let per = if factor == 1 { String::new() } else { format!(" ({factor} × {list_each} per {})", line.uom) };
        let by = match deviation_bp(actual, expected) {
            Some(bp) => format!("{bp:+} bp"),
            None => "any amount, as the list price is 0".to_owned(),
        };
        let detail = format!(
            "line {}: unit_price_minor {} {currency} differs from the list price {expected}{per} of SKU {} on \
             channel {} by {by}, beyond the {} bp tolerance",
            line.line_id, line.unit_price_minor, item.sku, order.channel, rules.price_tolerance_bp
        );
        push(findings, HoldCode::PriceMismatch, Some(&line.line_id), detail);
    }
}

fn check_stock(order: &Order, lines: &[LineFacts<'_>], ctx: &impl ValidationContext, findings: &mut Vec<HoldFinding>) {
    // SKU → (units ordered, line ids in order of appearance). BTreeMap: findings come out in SKU
    // order before the final sort, whatever the line order.
    let mut ordered: BTreeMap<&Sku, (Units, Vec<&str>)> = BTreeMap::new();
    for facts in lines {
        let (Some(item), Some(units)) = (facts.item, facts.base_units) else { continue };
        let entry = ordered.entry(&item.sku).or_default();
        entry.0 = entry.0.saturating_add(units);
        entry.1.push(&facts.line.line_id);
    }
    for (sku, (units, line_ids)) in ordered {
        let offered = ctx.offered(&order.channel, sku);
        if units <= offered {
            continue;
        }
        let across = if line_ids.len() == 1 {
            format!("line {}", line_ids[0])
        } else {
            format!("lines {}", line_ids.join(", "))
        };
        let detail =
            format!("SKU {sku}: channel {} sold {units} each ({across}) but was offered {offered}", order.channel);
        push(findings, HoldCode::StockDiscrepancy, Some(line_ids[0]), detail);
    }
}

/// When the order must leave to keep its promise: the channel's ship-by instant if it gives one,
/// otherwise 00:00 UTC on the promised delivery date, otherwise `None` (no promise).
pub fn promised_by(order: &Order) -> Option<Timestamp> {
    order.shipping.ship_by.or_else(|| {
        order
            .shipping
            .deliver_by
            .map(|date| Timestamp::from_millis(i64::from(date.days_since_epoch()) * MILLIS_PER_DAY))
    })
}

/// A held order as the exception queue sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExceptionEntry {
    pub key: OrderKey,
    pub holds: BTreeSet<HoldCode>,
    /// See [`promised_by`].
    pub promised_by: Option<Timestamp>,
    /// Order value in the functional currency's minor units (converted by the caller).
    pub value_minor: i64,
    /// The channel's priority, 1 highest.
    pub channel_priority: u16,
    pub placed_at: Timestamp,
}

impl ExceptionEntry {
    /// The entry for `order`, with its promise from [`promised_by`]. The value is the caller's:
    /// converting to the functional currency needs rates the order does not carry.
    pub fn new(order: &Order, holds: BTreeSet<HoldCode>, value_minor: i64, channel_priority: u16) -> Self {
        Self {
            key: order.key(),
            holds,
            promised_by: promised_by(order),
            value_minor,
            channel_priority,
            placed_at: order.placed_at,
        }
    }
}

/// The first key of the queue order: broken promises, then upcoming ones soonest first, then none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum PromiseRisk {
    /// Due at or before `now`; all alike.
    Due,
    Upcoming(Timestamp),
    NoPromise,
}

fn promise_risk(promised_by: Option<Timestamp>, now: Timestamp) -> PromiseRisk {
    match promised_by {
        Some(at) if at <= now => PromiseRisk::Due,
        Some(at) => PromiseRisk::Upcoming(at),
        None => PromiseRisk::NoPromise,
    }
}

/// The exception queue order at `now` (see the module documentation): promise risk, higher
/// value, channel priority, older placement, key. A total order: `Equal` only for identical
/// entries.
pub fn exception_order(a: &ExceptionEntry, b: &ExceptionEntry, now: Timestamp) -> Ordering {
    promise_risk(a.promised_by, now)
        .cmp(&promise_risk(b.promised_by, now))
        .then_with(|| b.value_minor.cmp(&a.value_minor))
        .then_with(|| a.channel_priority.cmp(&b.channel_priority))
        .then_with(|| a.placed_at.cmp(&b.placed_at))
        .then_with(|| a.key.cmp(&b.key))
        .then_with(|| a.holds.cmp(&b.holds))
        .then_with(|| a.promised_by.cmp(&b.promised_by))
}

/// Sorts `entries` into exception queue order at `now`, most urgent first.
pub fn sort_exceptions(entries: &mut [ExceptionEntry], now: Timestamp) {
    entries.sort_by(|a, b| exception_order(a, b, now));
}

#[cfg(test)]
mod tests {
    use ordo_types::Date;
    use proptest::prelude::*;

    use super::*;
    use crate::orders::model::{PostalAddress, TaxLine};

    fn code(s: &str) -> ChannelCode {
        ChannelCode::new(s).unwrap()
    }

    fn sku(s: &str) -> Sku {
        Sku::new(s).unwrap()
    }

    fn usd() -> CurrencyCode {
        CurrencyCode::new("USD").unwrap()
    }

    fn item(s: &str, conversions: &[(&str, u32)]) -> Item {
        Item {
            sku: sku(s),
            title: s.to_owned(),
            style: None,
            options: BTreeMap::new(),
            gtin: None,
            uom_conversions: conversions.iter().map(|(u, f)| ((*u).to_owned(), *f)).collect(),
            components: vec![],
            sku_class: None,
        }
    }

    fn address(country: &str, region: &str) -> Address {
        Address {
            line1: "1 Store Way".into(),
            city: "Somewhere".into(),
            region: region.into(),
            postal_code: "00000".into(),
            country: country.into(),
        }
    }

    /// A small retailer: channel SHOP (Shopify) and AMZ (Amazon). Only the US is taxable, and
    /// not Oregon, which has no sales tax.
    struct Fixture {
        items: BTreeMap<Sku, Item>,
        listings: BTreeMap<(ChannelCode, String), Sku>,
        methods: BTreeSet<(ChannelCode, String)>,
        customers: BTreeMap<String, AccountStatus>,
        prices: BTreeMap<(ChannelCode, Sku), (CurrencyCode, i64)>,
        offered: BTreeMap<(ChannelCode, Sku), Units>,
        locations: BTreeMap<LocationCode, Address>,
    }

    fn fixture() -> Fixture {
        let shop = code("SHOP");
        let amz = code("AMZ");
        Fixture {
            items: [item("TEE", &[]), item("MUG", &[("case", 12)]), item("JACKET", &[])]
                .into_iter()
                .map(|i| (i.sku.clone(), i))
                .collect(),
            listings: BTreeMap::from([
                ((shop.clone(), "gid-7".to_owned()), sku("TEE")),
                ((shop.clone(), "gid-stale".to_owned()), sku("RETIRED")),
                ((amz.clone(), "B00TEE".to_owned()), sku("TEE")),
            ]),
            methods: BTreeSet::from([
                (shop.clone(), "standard".to_owned()),
                (shop.clone(), "express".to_owned()),
                (amz.clone(), "Std".to_owned()),
            ]),
            customers: BTreeMap::from([
                ("C-1".to_owned(), AccountStatus::Active),
                ("C-CREDIT".to_owned(), AccountStatus::CreditHold),
                ("C-BLOCKED".to_owned(), AccountStatus::Blocked),
            ]),
            prices: BTreeMap::from([
                ((shop.clone(), sku("TEE")), (usd(), 2_500)),
                ((shop.clone(), sku("MUG")), (usd(), 1_000)),
                ((shop.clone(), sku("JACKET")), (usd(), 10_000)),
                ((amz.clone(), sku("TEE")), (CurrencyCode::new("EUR").unwrap(), 2_300)),
            ]),
            offered: BTreeMap::from([
                ((shop.clone(), sku("TEE")), 10),
                ((shop.clone(), sku("MUG")), 30),
                ((shop, sku("JACKET")), 5),
            ]),
            locations: BTreeMap::from([(code("NYC-01"), address("US", "NY")), (code("PDX-01"), address("US", "OR"))]),
        }
    }

    impl ValidationContext for Fixture {
        fn item(&self, sku: &Sku) -> Option<&Item> {
            self.items.get(sku)
        }
        fn resolve(&self, channel: &ChannelCode, item: &LineItem) -> Option<Sku> {
            match item {
                LineItem::Sku(s) => self.items.contains_key(s).then(|| s.clone()),
                LineItem::Listing(id) => self.listings.get(&(channel.clone(), id.clone())).cloned(),
            }
        }
        fn taxable(&self, country: &str, region: &str) -> bool {
            country == "US" && region != "OR"
        }
        fn tax_rate(&self, country: &str, region: &str) -> Option<u32> {
            // New York State and City combined: 8.875 %, rounded as channels send it.
            (country == "US" && region == "NY").then_some(888)
        }
        fn known_shipping_method(&self, channel: &ChannelCode, method: &str) -> bool {
            self.methods.contains(&(channel.clone(), method.to_owned()))
        }
        fn customer_status(&self, _channel: &ChannelCode, customer_id: &str) -> Option<AccountStatus> {
            self.customers.get(customer_id).copied()
        }
        fn list_price(&self, channel: &ChannelCode, sku: &Sku) -> Option<(CurrencyCode, i64)> {
            self.prices.get(&(channel.clone(), sku.clone())).copied()
        }
        fn offered(&self, channel: &ChannelCode, sku: &Sku) -> Units {
            self.offered.get(&(channel.clone(), sku.clone())).copied().unwrap_or(0)
        }
        fn location_address(&self, location: &LocationCode) -> Option<&Address> {
            self.locations.get(location)
        }
    }

    /// A TEE line at its list price, with New York tax.
    fn line(id: &str, item: LineItem, quantity: Units, unit_price_minor: i64) -> OrderLine {
        OrderLine {
            line_id: id.to_owned(),
            item,
            quantity,
            uom: "each".to_owned(),
            unit_price_minor,
            discount_minor: 0,
            tax_lines: vec![TaxLine {
                jurisdiction: "US-NY".into(),
                rate_bp: 888,
                amount_minor: unit_price_minor * quantity * 888 / 10_000,
                channel_collected: false,
            }],
        }
    }

    fn tee(id: &str, quantity: Units) -> OrderLine {
        line(id, LineItem::Sku(sku("TEE")), quantity, 2_500)
    }

    /// An order every rule passes: captured, low fraud score, complete US-NY address, taxed
    /// line at list price, known method, active customer, in stock.
    fn clean_order() -> Order {
        serde_json::from_str(
            r#"{
                "channel": "SHOP",
                "channel_order_id": "1001",
                "channel_updated_at": 1795000000000,
                "placed_at": 1795000000000,
                "customer": {"id": "C-1", "name": "Ada Lovelace", "account_status": "active"},
                "ship_to": {"name": "Ada Lovelace", "line1": "1 Main St", "city": "Brooklyn", "region": "NY",
                            "postal_code": "11201", "country": "US"},
                "lines": [{"line_id": "1", "item": {"sku": "TEE"}, "quantity": 2, "unit_price_minor": 2500,
                           "tax_lines": [{"jurisdiction": "US-NY", "rate_bp": 888, "amount_minor": 444}]}],
                "shipping": {"method": "standard", "service_level": "standard"},
                "payment_status": "captured",
                "fraud": {"score": 10, "recommendation": "accept"},
                "fulfillment": {"ship": {"ship_from_store_allowed": false}},
                "currency": "USD"
            }"#,
        )
        .unwrap()
    }

    fn run_with(order: &Order, rules: &ValidationRules) -> Vec<HoldFinding> {
        validate(order, rules, &fixture())
    }

    fn run(order: &Order) -> Vec<HoldFinding> {
        run_with(order, &ValidationRules::default())
    }

    fn codes(findings: &[HoldFinding]) -> Vec<HoldCode> {
        findings.iter().map(|f| f.code).collect()
    }

    /// The only finding, asserting it has `code`.
    fn only(order: &Order, code: HoldCode) -> HoldFinding {
        let findings = run(order);
        assert_eq!(codes(&findings), [code], "{findings:#?}");
        findings.into_iter().next().unwrap()
    }

    fn passes(order: &Order) {
        let findings = run(order);
        assert!(findings.is_empty(), "{findings:#?}");
    }

    #[test]
    fn defaults_are_as_documented() {
        let rules = ValidationRules::default();
        assert_eq!(rules.enabled, RULE_CODES.into_iter().collect());
        assert!(!rules.accept_authorized);
        assert_eq!(rules.fraud_review_score, 75);
        assert_eq!(rules.price_tolerance_bp, 200);
        assert_eq!(rules.countries_requiring_region, ["AU", "CA", "US"].map(String::from).into());
        let from_json: ValidationRules = serde_json::from_str(r#"{"accept_authorized": true}"#).unwrap();
        assert_eq!(from_json, ValidationRules { accept_authorized: true, ..ValidationRules::default() });
        assert!(serde_json::from_str::<ValidationRules>(r#"{"fraud_score": 1}"#).is_err());
    }

    #[test]
    fn a_clean_order_passes() {
        passes(&clean_order());
    }

    #[test]
    fn payment_must_be_captured_and_authorized_only_when_accepted() {
        let mut order = clean_order();
        for (status, name) in [
            (PaymentStatus::Pending, "pending"),
            (PaymentStatus::Failed, "failed"),
            (PaymentStatus::Refunded, "refunded"),
            (PaymentStatus::Authorized, "authorized"),
        ] {
            order.payment_status = status;
            let finding = only(&order, HoldCode::PaymentNotCaptured);
            assert_eq!(finding.line_id, None);
            assert!(finding.detail.contains(&format!("payment_status is {name}")), "{finding}");
        }
        // Authorized passes once the retailer accepts authorizations; the others still hold.
        let accepting = ValidationRules { accept_authorized: true, ..ValidationRules::default() };
        assert!(run_with(&order, &accepting).is_empty());
        order.payment_status = PaymentStatus::Pending;
        assert_eq!(codes(&run_with(&order, &accepting)), [HoldCode::PaymentNotCaptured]);
    }

    #[test]
    fn fraud_score_holds_from_the_threshold_and_on_review_or_cancel() {
        let mut order = clean_order();
        order.fraud.score = Some(74);
        passes(&order);
        order.fraud.score = Some(75);
        let finding = only(&order, HoldCode::FraudReview);
        assert!(finding.detail.contains("fraud.score 75 is at or above the review threshold 75"), "{finding}");

        order.fraud.score = Some(3);
        for (rec, name) in [(FraudRecommendation::Review, "review"), (FraudRecommendation::Cancel, "cancel")] {
            order.fraud.recommendation = Some(rec);
            let finding = only(&order, HoldCode::FraudReview);
            assert!(finding.detail.contains(&format!("fraud.recommendation is {name}")), "{finding}");
        }
        // No assessment at all is not a reason to hold.
        order.fraud = Default::default();
        passes(&order);
    }

    #[test]
    fn address_fields_region_and_country_shape() {
        let mut order = clean_order();
        order.ship_to.city = "  ".into();
        order.ship_to.postal_code = String::new();
        let finding = only(&order, HoldCode::AddressIncomplete);
        assert!(finding.detail.contains("ship_to is missing city, postal_code"), "{finding}");

        // Region: required in the US, not in Great Britain (which is not taxable in the fixture).
        let mut order = clean_order();
        order.ship_to.region = String::new();
        let finding = only(&order, HoldCode::AddressIncomplete);
        assert!(finding.detail.contains("ship_to.region is required for country US"), "{finding}");
        order.ship_to.country = "GB".into();
        passes(&order);

        for bad in ["us", "USA", "U1"] {
            order.ship_to.country = bad.into();
            let finding = only(&order, HoldCode::AddressIncomplete);
            assert!(finding.detail.contains(&format!("ship_to.country {bad:?}")), "{finding}");
        }
    }

    #[test]
    fn pickup_orders_need_the_customer_name_not_an_address() {
        let mut order = clean_order();
        order.fulfillment = FulfillmentIntent::PickUpInStore { store: code("NYC-01") };
        order.ship_to = PostalAddress::default();
        passes(&order);
        order.customer.name = String::new();
        let finding = only(&order, HoldCode::AddressIncomplete);
        assert!(finding.detail.contains("customer.name is empty"), "{finding}");
        assert!(finding.detail.contains("NYC-01"), "{finding}");
    }

    #[test]
    fn tax_lines_are_required_where_the_jurisdiction_is_taxable() {
        let mut order = clean_order();
        order.lines[0].tax_lines.clear();
        let finding = only(&order, HoldCode::TaxMissing);
        assert_eq!(finding.line_id.as_deref(), Some("1"));
        assert!(finding.detail.contains("line 1: net value 5000 USD has no tax line"), "{finding}");
        assert!(finding.detail.contains("US-NY is taxable"), "{finding}");

        // Oregon has no sales tax: no tax line is fine.
        order.ship_to.region = "OR".into();
        passes(&order);
    }

    #[test]
    fn a_channel_collected_tax_line_counts_as_present() {
        let mut order = clean_order();
        order.lines[0].tax_lines =
            vec![TaxLine { jurisdiction: "US-NY".into(), rate_bp: 888, amount_minor: 0, channel_collected: true }];
        passes(&order);
    }

    #[test]
    fn a_line_with_no_net_value_needs_no_tax() {
        let mut order = clean_order();
        let mut gift = tee("2", 1);
        gift.discount_minor = 2_500;
        gift.tax_lines.clear();
        order.lines.push(gift);
        passes(&order);
        order.lines[1].discount_minor = 2_499;
        let finding = only(&order, HoldCode::TaxMissing);
        assert_eq!(finding.line_id.as_deref(), Some("2"));
        assert!(finding.detail.contains("net value 1 USD"), "{finding}");
    }

    #[test]
    fn pickup_orders_are_taxed_where_the_store_is() {
        let mut order = clean_order();
        order.ship_to = PostalAddress::default();
        order.lines[0].tax_lines.clear();
        order.fulfillment = FulfillmentIntent::PickUpInStore { store: code("PDX-01") };
        passes(&order);
        order.fulfillment = FulfillmentIntent::PickUpInStore { store: code("NYC-01") };
        let finding = only(&order, HoldCode::TaxMissing);
        assert!(finding.detail.contains("US-NY is taxable"), "{finding}");
    }

    #[test]
    fn shipping_method_must_be_the_channels() {
        let mut order = clean_order();
        order.shipping.method = "express".into();
        passes(&order);
        // "Std" is AMZ's method, not SHOP's.
        order.shipping.method = "Std".into();
        let finding = only(&order, HoldCode::ShippingMethodUnknown);
        assert!(finding.detail.contains(r#"shipping.method "Std" is not a shipping method of channel SHOP"#));
    }

    #[test]
    fn customer_holds_come_from_the_order_or_the_retailer_record_whichever_is_stricter() {
        let mut order = clean_order();
        // Unknown to the retailer and active on the order: passes.
        order.customer.id = "C-NEW".into();
        passes(&order);

        // The channel says active, the retailer's record says credit hold.
        order.customer.id = "C-CREDIT".into();
        let finding = only(&order, HoldCode::CustomerOnHold);
        assert_eq!(
            finding.detail,
            "customer C-CREDIT is credit_hold per the retailer's customer record (the order says active)"
        );

        // The order says blocked: stricter than the record's credit hold.
        order.customer.account_status = AccountStatus::Blocked;
        let finding = only(&order, HoldCode::CustomerOnHold);
        assert_eq!(
            finding.detail,
            "customer C-CREDIT is blocked per the order's customer.account_status (the retailer's record says credit_hold)"
        );

        // The record says active, the order says credit hold: still held.
        order.customer.id = "C-1".into();
        order.customer.account_status = AccountStatus::CreditHold;
        only(&order, HoldCode::CustomerOnHold);
    }

    #[test]
    fn skus_must_be_in_the_catalog() {
        let mut order = clean_order();
        order.lines[0].item = LineItem::Sku(sku("GHOST"));
        let finding = only(&order, HoldCode::SkuUnknown);
        assert_eq!(finding.line_id.as_deref(), Some("1"));
        assert_eq!(finding.detail, "line 1: SKU GHOST is not in the catalog");
    }

    #[test]
    fn listings_must_be_mapped_for_the_channel() {
        let mut order = clean_order();
        order.lines[0].item = LineItem::Listing("gid-7".into());
        passes(&order);
        // Mapped on AMZ only.
        order.lines[0].item = LineItem::Listing("B00TEE".into());
        let finding = only(&order, HoldCode::SkuUnknown);
        assert_eq!(finding.detail, r#"line 1: listing "B00TEE" has no SKU mapping for channel SHOP"#);
        // Mapped to a SKU the catalog no longer has.
        order.lines[0].item = LineItem::Listing("gid-stale".into());
        let finding = only(&order, HoldCode::SkuUnknown);
        assert!(finding.detail.contains("maps to SKU RETIRED, which is not in the catalog"), "{finding}");
    }

    #[test]
    fn quantity_and_unit_of_measure_are_checked_against_the_item() {
        let mut order = clean_order();
        order.lines[0].quantity = 0;
        order.lines[0].tax_lines.clear(); // net 0: no tax needed
        let finding = only(&order, HoldCode::SkuUnknown);
        assert_eq!(finding.detail, "line 1: quantity 0 is not positive");

        // MUG comes in cases of 12: 2 cases at 12 × 10.00 is fine; a pallet is not a MUG unit.
        let mut order = clean_order();
        order.lines[0] = line("1", LineItem::Sku(sku("MUG")), 2, 12_000);
        order.lines[0].uom = "case".into();
        passes(&order);
        order.lines[0].uom = "pallet".into();
        let finding = only(&order, HoldCode::SkuUnknown);
        assert_eq!(finding.detail, r#"line 1: uom "pallet" is not a unit of measure of SKU MUG"#);

        // Several problems on one line are one finding.
        order.lines[0].item = LineItem::Sku(sku("GHOST"));
        order.lines[0].quantity = -1;
        order.lines[0].tax_lines.clear(); // net below 0: no tax to check
        let finding = only(&order, HoldCode::SkuUnknown);
        assert_eq!(finding.detail, "line 1: SKU GHOST is not in the catalog; quantity -1 is not positive");
    }

    #[test]
    fn price_tolerance_is_inclusive_at_two_percent_either_way() {
        let jacket = |price| {
            let mut order = clean_order();
            order.lines[0] = line("1", LineItem::Sku(sku("JACKET")), 1, price);
            order
        };
        // List price 100.00: 102.00 and 98.00 are exactly 2 %.
        passes(&jacket(10_200));
        passes(&jacket(9_800));
        let finding = only(&jacket(10_201), HoldCode::PriceMismatch);
        assert_eq!(finding.line_id.as_deref(), Some("1"));
        assert!(finding.detail.contains("unit_price_minor 10201 USD differs from the list price 10000"), "{finding}");
        assert!(finding.detail.contains("by +201 bp, beyond the 200 bp tolerance"), "{finding}");
        let finding = only(&jacket(9_799), HoldCode::PriceMismatch);
        assert!(finding.detail.contains("by -201 bp"), "{finding}");

        // A tolerance of 0 demands the exact list price.
        let exact = ValidationRules { price_tolerance_bp: 0, ..ValidationRules::default() };
        assert!(run_with(&jacket(10_000), &exact).is_empty());
        assert_eq!(codes(&run_with(&jacket(10_001), &exact)), [HoldCode::PriceMismatch]);
    }

    #[test]
    fn prices_compare_per_unit_of_measure_and_in_the_same_currency() {
        // A case of 12 MUGs at list 10.00 each is expected at 120.00: 122.40 is exactly 2 %.
        let mut order = clean_order();
        order.lines[0] = line("1", LineItem::Sku(sku("MUG")), 1, 12_240);
        order.lines[0].uom = "case".into();
        passes(&order);
        order.lines[0].unit_price_minor = 12_241;
        let finding = only(&order, HoldCode::PriceMismatch);
        assert!(finding.detail.contains("list price 12000 (12 × 1000 per case)"), "{finding}");

        // AMZ lists TEE in EUR; this order is in USD. (AMZ offers nothing in the fixture, so
        // the stock rule fires too.)
        let mut order = clean_order();
        order.channel = code("AMZ");
        order.shipping.method = "Std".into();
        order.lines[0].item = LineItem::Listing("B00TEE".into());
        let findings = run(&order);
        assert_eq!(codes(&findings), [HoldCode::PriceMismatch, HoldCode::StockDiscrepancy], "{findings:#?}");
        assert!(findings[0].detail.contains("order currency USD differs from the list price currency EUR"));

        // No list price for the channel: nothing to compare against.
        let mut rules = ValidationRules::default();
        rules.enabled.remove(&HoldCode::StockDiscrepancy);
        let mut fx = fixture();
        fx.prices.clear();
        assert!(validate(&order, &rules, &fx).is_empty());
    }

    #[test]
    fn stock_is_summed_across_lines_of_one_sku() {
        // SHOP was offered 10 TEE: 6 + 4 is exactly that.
        let mut order = clean_order();
        order.lines = vec![tee("1", 6), tee("2", 4)];
        passes(&order);
        // 6 + 5 = 11 > 10, though each line alone would fit: one finding, on the first line.
        order.lines[1] = tee("2", 5);
        let findings = run(&order);
        assert_eq!(codes(&findings), [HoldCode::StockDiscrepancy], "{findings:#?}");
        assert_eq!(findings[0].line_id.as_deref(), Some("1"));
        assert_eq!(findings[0].detail, "SKU TEE: channel SHOP sold 11 each (lines 1, 2) but was offered 10");
    }

    #[test]
    fn stock_counts_base_units() {
        // SHOP was offered 30 MUG: 2 cases (24) fit, 3 cases (36) do not.
        let mut order = clean_order();
        order.lines[0] = line("1", LineItem::Sku(sku("MUG")), 2, 12_000);
        order.lines[0].uom = "case".into();
        passes(&order);
        order.lines[0].quantity = 3;
        order.lines[0].tax_lines[0].amount_minor = 3 * 12_000 * 888 / 10_000; // taxed as it should be
        let finding = only(&order, HoldCode::StockDiscrepancy);
        assert_eq!(finding.detail, "SKU MUG: channel SHOP sold 36 each (line 1) but was offered 30");
    }

    /// Everything wrong at once; also a duplicate line id.
    fn awful_order() -> Order {
        let mut order = clean_order();
        order.payment_status = PaymentStatus::Pending;
        order.fraud.recommendation = Some(FraudRecommendation::Review);
        order.ship_to.city = String::new();
        order.shipping.method = "warp".into();
        order.customer.id = "C-BLOCKED".into();
        let mut untaxed = tee("3", 20);
        untaxed.tax_lines.clear();
        // 0.50 of tax on a 0.01 line: not what 8.88 % makes.
        let mut overtaxed = line("10", LineItem::Sku(sku("JACKET")), 1, 1);
        overtaxed.tax_lines =
            vec![TaxLine { jurisdiction: "US-NY".into(), rate_bp: 888, amount_minor: 50, channel_collected: false }];
        order.lines = vec![
            line("2", LineItem::Sku(sku("GHOST")), 1, 100),
            untaxed,
            overtaxed,
            line("2", LineItem::Listing("nope".into()), 1, 100),
        ];
        order
    }

    #[test]
    fn findings_are_sorted_by_code_then_line_and_unique_per_pair() {
        let findings = run(&awful_order());
        let pairs: Vec<(HoldCode, Option<&str>)> = findings.iter().map(|f| (f.code, f.line_id.as_deref())).collect();
        assert_eq!(
            pairs,
            [
                (HoldCode::PaymentNotCaptured, None),
                (HoldCode::FraudReview, None),
                (HoldCode::AddressIncomplete, None),
                (HoldCode::TaxMissing, Some("3")),
                (HoldCode::ShippingMethodUnknown, None),
                (HoldCode::CustomerOnHold, None),
                // The two lines with id "2" give one finding: the first one's.
                (HoldCode::SkuUnknown, Some("2")),
                (HoldCode::PriceMismatch, Some("10")),
                (HoldCode::StockDiscrepancy, Some("3")),
                (HoldCode::TaxMismatch, Some("10")),
            ]
        );
        assert!(findings[6].detail.contains("GHOST"), "{}", findings[6]);
        assert_eq!(findings[0].to_string(), "PAYMENT_NOT_CAPTURED: payment_status is pending, not captured");
        assert!(findings[3].to_string().starts_with("TAX_MISSING (line 3): line 3:"));
    }

    #[test]
    fn tax_is_checked_against_the_rate_table_to_the_cent() {
        // 2 × 25.00 at 8.88 % = 4.44 exactly: passes; 4.45 is within a cent of rounding; 4.47 holds.
        let mut order = clean_order();
        assert!(run(&order).is_empty());
        order.lines[0].tax_lines[0].amount_minor = 445;
        assert!(run(&order).is_empty());
        order.lines[0].tax_lines[0].amount_minor = 447;
        let finding = only(&order, HoldCode::TaxMismatch);
        assert_eq!(finding.detail, "line 1: tax 447 USD charged, the table's 888 bp on 5000 makes 444");
        // Marketplace-collected tax is the marketplace's to compute.
        order.lines[0].tax_lines[0].channel_collected = true;
        assert!(!codes(&run(&order)).contains(&HoldCode::TaxMismatch));
        // No rate in the table for Massachusetts: nothing to check against.
        let mut order = clean_order();
        order.ship_to.region = "MA".into();
        order.lines[0].tax_lines[0].amount_minor = 999;
        assert!(!codes(&run(&order)).contains(&HoldCode::TaxMismatch));
    }

    #[test]
    fn disabled_rules_produce_nothing() {
        let mut order = clean_order();
        order.payment_status = PaymentStatus::Pending;
        let mut rules = ValidationRules::default();
        rules.enabled.remove(&HoldCode::PaymentNotCaptured);
        assert!(run_with(&order, &rules).is_empty());

        let awful = awful_order();
        for disabled in RULE_CODES {
            let mut rules = ValidationRules::default();
            rules.enabled.remove(&disabled);
            let found = hold_codes(&run_with(&awful, &rules));
            let expected: BTreeSet<HoldCode> = RULE_CODES.into_iter().filter(|c| *c != disabled).collect();
            assert_eq!(found, expected, "disabling {disabled:?}");
        }
        let none = ValidationRules { enabled: BTreeSet::new(), ..ValidationRules::default() };
        assert!(run_with(&awful, &none).is_empty());
    }

    #[test]
    fn payment_capture_clears_its_hold_but_never_manual_ones() {
        let mut order = clean_order();
        order.payment_status = PaymentStatus::Authorized;
        order.fraud.score = Some(90);
        let mut holds = hold_codes(&run(&order));
        assert_eq!(holds, BTreeSet::from([HoldCode::PaymentNotCaptured, HoldCode::FraudReview]));
        holds.extend([HoldCode::Manual, HoldCode::PickupStoreCannotFill, HoldCode::StockDiscrepancy]);

        // The payment-captured event arrives; re-validation still finds the fraud score.
        order.payment_status = PaymentStatus::Captured;
        let now = run(&order);
        assert_eq!(clearable(&holds, &now), BTreeSet::from([HoldCode::PaymentNotCaptured]));

        // Even with nothing found at all, the person-only holds stay.
        assert_eq!(clearable(&holds, &[]), BTreeSet::from([HoldCode::PaymentNotCaptured, HoldCode::FraudReview]));
        assert!(clearable(&BTreeSet::from(CLEARED_BY_PERSON_ONLY), &[]).is_empty());
    }

    #[test]
    fn promised_by_is_ship_by_else_midnight_utc_of_the_delivery_date() {
        let mut order = clean_order();
        assert_eq!(promised_by(&order), None);
        let date: Date = "2026-11-28".parse().unwrap();
        order.shipping.deliver_by = Some(date);
        let midnight = promised_by(&order).unwrap();
        assert_eq!(midnight.to_string(), "2026-11-28T00:00:00.000Z");
        assert_eq!(midnight.date(), date);
        let ship_by = Timestamp::from_millis(midnight.millis() + 5 * 86_400_000);
        order.shipping.ship_by = Some(ship_by);
        assert_eq!(promised_by(&order), Some(ship_by), "ship-by wins even when later");

        let entry = ExceptionEntry::new(&order, BTreeSet::from([HoldCode::Manual]), 4_200, 2);
        assert_eq!(entry.key, order.key());
        assert_eq!(entry.promised_by, Some(ship_by));
        assert_eq!(entry.placed_at, order.placed_at);
    }

    const HOUR: i64 = 3_600_000;
    const DAY: i64 = 24 * HOUR;
    const NOW: Timestamp = Timestamp(1_795_000_000_000);

    fn entry(
        id: &str,
        promised_in: Option<i64>,
        value_minor: i64,
        channel_priority: u16,
        placed_ago: i64,
    ) -> ExceptionEntry {
        ExceptionEntry {
            key: OrderKey { channel: code("SHOP"), channel_order_id: id.to_owned() },
            holds: BTreeSet::from([HoldCode::FraudReview]),
            promised_by: promised_in.map(|d| Timestamp(NOW.0 + d)),
            value_minor,
            channel_priority,
            placed_at: Timestamp(NOW.0 - placed_ago),
        }
    }

    fn ids(entries: &[ExceptionEntry]) -> Vec<&str> {
        entries.iter().map(|e| e.key.channel_order_id.as_str()).collect()
    }

    #[test]
    fn exception_queue_worked_example() {
        let mut queue = vec![
            // No promise at all: last, however valuable.
            entry("E-no-promise", None, 1_000_000, 1, 9 * DAY),
            // Promise in two days: after the sooner promise, despite being worth far more.
            entry("D-in-2-days", Some(2 * DAY), 90_000, 1, DAY),
            // Broken three days ago, worth 50.00.
            entry("A-overdue-3d", Some(-3 * DAY), 5_000, 1, 5 * DAY),
            // Promise in two hours, worth 10.00: the soonest promise still to keep.
            entry("C-in-2-hours", Some(2 * HOUR), 1_000, 3, HOUR),
            // Broken an hour ago, worth 200.00: both overdue orders are already late, so the
            // higher value goes first, though A is more overdue.
            entry("B-overdue-1h", Some(-HOUR), 20_000, 2, 2 * DAY),
        ];
        sort_exceptions(&mut queue, NOW);
        assert_eq!(ids(&queue), ["B-overdue-1h", "A-overdue-3d", "C-in-2-hours", "D-in-2-days", "E-no-promise"]);

        // Two days later D's promise is broken too, and its value puts it first.
        sort_exceptions(&mut queue, Timestamp(NOW.0 + 2 * DAY));
        assert_eq!(ids(&queue), ["D-in-2-days", "B-overdue-1h", "A-overdue-3d", "C-in-2-hours", "E-no-promise"]);
    }

    #[test]
    fn exception_queue_tie_breaks() {
        let mut queue = vec![
            // Same promise and value throughout.
            entry("z-prio-2-oldest", Some(DAY), 5_000, 2, 10 * DAY),
            entry("y-prio-1-newer", Some(DAY), 5_000, 1, DAY),
            entry("x-prio-1-older", Some(DAY), 5_000, 1, 2 * DAY),
            // Identical to x but for the key: the key decides.
            entry("w-prio-1-older", Some(DAY), 5_000, 1, 2 * DAY),
            // Promise exactly now: already due, ahead of every upcoming promise.
            entry("v-due-now", Some(0), 1, 9, 0),
        ];
        sort_exceptions(&mut queue, NOW);
        assert_eq!(ids(&queue), ["v-due-now", "w-prio-1-older", "x-prio-1-older", "y-prio-1-newer", "z-prio-2-oldest"]);
    }

    fn arb_entry() -> impl Strategy<Value = ExceptionEntry> {
        // Small ranges so that ties on every key are frequent.
        (
            prop::sample::select(vec!["SHOP", "AMZ"]),
            0u8..3,
            prop::collection::btree_set(prop::sample::select(HoldCode::ALL.to_vec()), 0..3),
            prop::option::of(-3i64..3),
            0i64..3,
            1u16..3,
            0i64..3,
        )
            .prop_map(|(channel, id, holds, promised, value, priority, placed)| ExceptionEntry {
                key: OrderKey { channel: code(channel), channel_order_id: id.to_string() },
                holds,
                promised_by: promised.map(|p| Timestamp(NOW.0 + p * HOUR)),
                value_minor: value * 1_000,
                channel_priority: priority,
                placed_at: Timestamp(NOW.0 - placed * DAY),
            })
    }

    proptest! {
        /// `exception_order` is a total order: sorting is idempotent, any permutation sorts to
        /// the identical sequence, and only identical entries compare equal.
        #[test]
        fn sort_exceptions_is_a_total_order(
            (entries, shuffled) in prop::collection::vec(arb_entry(), 0..12)
                .prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle()))
        ) {
            let mut sorted = entries.clone();
            sort_exceptions(&mut sorted, NOW);
            let mut again = sorted.clone();
            sort_exceptions(&mut again, NOW);
            prop_assert_eq!(&again, &sorted);
            let mut other = shuffled;
            sort_exceptions(&mut other, NOW);
            prop_assert_eq!(&other, &sorted);
            for a in &entries {
                for b in &entries {
                    let ab = exception_order(a, b, NOW);
                    prop_assert_eq!(ab, exception_order(b, a, NOW).reverse());
                    prop_assert_eq!(ab == Ordering::Equal, a == b);
                }
            }
            for w in sorted.windows(2) {
                prop_assert_ne!(exception_order(&w[0], &w[1], NOW), Ordering::Greater);
            }
        }
    }
}
