//! Marketplace settlement reconciliation: a channel's settlement report (what it paid, line by
//! line) matched against Ordo's own orders, per order and per fee type, with everything that does
//! not match — unknown orders, refunds Ordo has not booked, principal or tax that differ from what
//! was shipped, commissions above the contracted rate — put in a variance queue with a reason,
//! and the payout posted to the general ledger.
//!
//! Reading the channel's file is the connector's job (`ordo-channels`); this module takes the
//! canonical [`Settlement`] and never sees a file format.

use std::collections::BTreeMap;

use ordo_types::{ChannelCode, CurrencyCode, Date};
use serde::{Deserialize, Serialize};

use crate::accounting::{AccountingRejection, GlAccount, JournalEntry, PostingRule, prorate};
use crate::orders::book::OrderRecord;
use crate::orders::model::OrderKey;

/// One settlement (payout) as the channel reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settlement {
    pub channel: ChannelCode,
    pub settlement_id: String,
    pub start: Option<Date>,
    pub end: Option<Date>,
    pub deposit_date: Option<Date>,
    pub currency: CurrencyCode,
    /// The total the channel states it deposited.
    pub stated_total_minor: i64,
    pub lines: Vec<SettlementLine>,
}

/// One money component of a settlement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementLine {
    /// Where it was in the channel's file (1-based), so a variance can be found there.
    pub source_line: u64,
    pub transaction_type: String,
    pub order_id: Option<String>,
    pub amount_type: String,
    pub amount_description: String,
    pub amount_minor: i64,
    pub sku: Option<String>,
    pub quantity: Option<i64>,
    pub fee_type: FeeType,
}

/// What a settlement line is, whatever the channel calls it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeeType {
    Principal,
    Tax,
    Shipping,
    Promotion,
    /// Tax the marketplace collected and withholds to remit itself (nets against `Tax`).
    TaxWithheld,
    Commission,
    FulfillmentFee,
    Chargeback,
    ServiceFee,
    Adjustment,
    Reserve,
    Other,
    /// What a payment processor charged the customer, principal, tax and shipping together
    /// (Shopify Payments' charge): reconciled against what Ordo shipped plus the tax it booked.
    Gross,
}

impl FeeType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Principal => "principal",
            Self::Tax => "tax",
            Self::Shipping => "shipping",
            Self::Promotion => "promotion",
            Self::TaxWithheld => "tax_withheld",
            Self::Commission => "commission",
            Self::FulfillmentFee => "fulfillment_fee",
            Self::Chargeback => "chargeback",
            Self::ServiceFee => "service_fee",
            Self::Adjustment => "adjustment",
            Self::Reserve => "reserve",
            Self::Other => "other",
            Self::Gross => "gross",
        }
    }

    /// Amazon's transaction type, amount type and description → fee type.
    pub fn of_amazon(transaction_type: &str, amount_type: &str, description: &str) -> Self {
        let d = description.to_ascii_lowercase();
        match (transaction_type, amount_type) {
            (_, "ItemPrice") if d == "principal" => Self::Principal,
            (_, "ItemPrice") if d == "tax" || d.ends_with("tax") && !d.contains("shipping") => Self::Tax,
            (_, "ItemPrice") if d.starts_with("shipping") => Self::Shipping,
            (_, "ItemPrice") => Self::Other,
            (_, "Promotion") => Self::Promotion,
            (_, "ItemWithheldTax") => Self::TaxWithheld,
            _ if d.starts_with("marketplacefacilitator") => Self::TaxWithheld,
            _ if d.contains("commission") || d.contains("referral") => Self::Commission,
            _ if d.contains("fulfillment") || d.contains("fba") => Self::FulfillmentFee,
            _ if d.contains("chargeback") => Self::Chargeback,
            _ if d.contains("reserve") => Self::Reserve,
            ("ServiceFee", _) => Self::ServiceFee,
            ("Adjustment", _) => Self::Adjustment,
            _ => Self::Other,
        }
    }

    /// Proceeds settle what the channel owes for sales; the rest are the channel's charges,
    /// holds and corrections.
    fn is_proceeds(self) -> bool {
        matches!(self, Self::Principal | Self::Tax | Self::Shipping | Self::Promotion | Self::Gross)
    }
}

/// A channel's contracted fees, against which charged commissions are checked (fee leakage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeSchedule {
    /// Referral fee (commission) in basis points of principal.
    pub commission_bp: u32,
    /// Allowed difference per order before a charge is a variance, in minor units.
    pub tolerance_minor: i64,
}

/// Why a settlement line or order did not reconcile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variance {
    pub settlement_id: String,
    pub order_id: Option<String>,
    pub fee_type: FeeType,
    pub expected_minor: Option<i64>,
    pub actual_minor: i64,
    pub reason: String,
    /// The file lines it comes from.
    pub source_lines: Vec<u64>,
}

/// Expected against actual for one order of a settlement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderReconciliation {
    pub order_id: String,
    pub known: bool,
    /// Per fee type: (expected, actual); expected is `None` where Ordo has no expectation.
    pub amounts: BTreeMap<FeeType, (Option<i64>, i64)>,
}

/// A reconciled settlement as kept in the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconciledSettlement {
    pub settlement: Settlement,
    /// Σ of the lines: what the report actually adds up to.
    pub reconciled_total_minor: i64,
    pub orders: Vec<OrderReconciliation>,
    pub variances: Vec<Variance>,
    /// Per fee type, the whole settlement.
    pub by_fee_type: BTreeMap<FeeType, i64>,
    /// Commission charged above the contracted schedule, over all orders (fee leakage).
    pub fee_leakage_minor: i64,
    /// Orders whose refunds Ordo already booked (RMAs): the channel's refund lines for them
    /// settle the receivable those refunds credited, rather than being booked again.
    pub refunds_booked: Vec<String>,
}

/// What reconciliation needs to look up.
pub trait SettlementContext {
    fn order(&self, key: &OrderKey) -> Option<&OrderRecord>;
    fn fee_schedule(&self, channel: &ChannelCode) -> Option<FeeSchedule>;
    /// Whether Ordo booked a refund for the order (an RMA refunded).
    fn refund_booked(&self, key: &OrderKey) -> bool;
}

/// Matches every line of `settlement` to Ordo's orders and says what differs.
pub fn reconcile(ctx: &impl SettlementContext, settlement: Settlement) -> ReconciledSettlement {
    let id = settlement.settlement_id.clone();
    let reconciled_total_minor: i64 = settlement.lines.iter().map(|l| l.amount_minor).sum();
    let mut by_fee_type: BTreeMap<FeeType, i64> = BTreeMap::new();
    let mut per_order: BTreeMap<&str, Vec<&SettlementLine>> = BTreeMap::new();
    for line in &settlement.lines {
        *by_fee_type.entry(line.fee_type).or_insert(0) += line.amount_minor;
        if let Some(order) = line.order_id.as_deref().filter(|o| !o.is_empty()) {
            per_order.entry(order).or_default().push(line);
        }
    }
    let mut variances = Vec::new();
    if reconciled_total_minor != settlement.stated_total_minor {
        variances.push(Variance {
            settlement_id: id.clone(),
            order_id: None,
            fee_type: FeeType::Other,
            expected_minor: Some(settlement.stated_total_minor),
            actual_minor: reconciled_total_minor,
            reason: "the lines do not add up to the settlement's stated total".into(),
            source_lines: Vec::new(),
        });
    }
    let schedule = ctx.fee_schedule(&settlement.channel);
    let mut fee_leakage_minor = 0;
    let mut refunds_booked = Vec::new();
    let mut orders = Vec::new();
    for (order_id, lines) in per_order {
        let key = OrderKey { channel: settlement.channel.clone(), channel_order_id: order_id.to_owned() };
        let record = ctx.order(&key);
        let mut actual: BTreeMap<FeeType, (i64, Vec<u64>)> = BTreeMap::new();
        let mut refunds: (i64, Vec<u64>) = (0, Vec::new());
        for l in &lines {
            if l.transaction_type.eq_ignore_ascii_case("Refund") && l.fee_type.is_proceeds() {
                refunds.0 += l.amount_minor;
                refunds.1.push(l.source_line);
                continue;
            }
            let slot = actual.entry(l.fee_type).or_insert((0, Vec::new()));
            slot.0 += l.amount_minor;
            slot.1.push(l.source_line);
        }
        let mut amounts: BTreeMap<FeeType, (Option<i64>, i64)> = BTreeMap::new();
        let all_lines = || lines.iter().map(|l| l.source_line).collect::<Vec<_>>();
        let Some(record) = record else {
            for (fee, (a, _)) in &actual {
                amounts.insert(*fee, (None, *a));
            }
            variances.push(Variance {
                settlement_id: id.clone(),
                order_id: Some(order_id.to_owned()),
                fee_type: FeeType::Principal,
                expected_minor: None,
                actual_minor: lines.iter().map(|l| l.amount_minor).sum(),
                reason: format!("order {key} is not in Ordo"),
                source_lines: all_lines(),
            });
            orders.push(OrderReconciliation { order_id: order_id.to_owned(), known: false, amounts });
            continue;
        };
        // Expected proceeds: what was shipped, net of discounts, and the tax Ordo booked.
        let shipped_share = |total: i64, line_id: &str| -> i64 {
            let (shipped, units) = record.shipped_of(line_id);
            if units == 0 { 0 } else { prorate(total, shipped, units) }
        };
        let expected_principal: i64 = record.order.lines.iter().map(|l| shipped_share(l.net_minor(), &l.line_id)).sum();
        let expected_tax: i64 = record
            .order
            .lines
            .iter()
            .flat_map(|l| l.tax_lines.iter().map(move |t| (l, t)))
            .filter(|(_, t)| !t.channel_collected)
            .map(|(l, t)| shipped_share(t.amount_minor, &l.line_id))
            .sum();
        // A processor's gross charge is compared whole; a marketplace's lines part by part.
        let comparisons = if actual.contains_key(&FeeType::Gross) {
            vec![(FeeType::Gross, expected_principal + expected_tax)]
        } else {
            vec![(FeeType::Principal, expected_principal), (FeeType::Tax, expected_tax)]
        };
        for (fee, expected) in comparisons {
            let (a, source) = actual.get(&fee).cloned().unwrap_or_default();
            // Tax the marketplace withheld was never Ordo's to receive: it nets against tax; a
            // promotion the channel funded out of the price nets against principal.
            let netted = if fee == FeeType::Tax { FeeType::TaxWithheld } else { FeeType::Promotion };
            let net = a + actual.get(&netted).map_or(0, |w| w.0);
            amounts.insert(fee, (Some(expected), net));
            if net != expected {
                variances.push(Variance {
                    settlement_id: id.clone(),
                    order_id: Some(order_id.to_owned()),
                    fee_type: fee,
                    expected_minor: Some(expected),
                    actual_minor: net,
                    reason: format!("{} paid differs from what Ordo shipped", fee.as_str()),
                    source_lines: source,
                });
            }
        }
        if let Some(s) = schedule {
            let basis = amounts.get(&FeeType::Principal).or_else(|| amounts.get(&FeeType::Gross)).map_or(0, |a| a.1);
            let contracted = -prorate(basis, i64::from(s.commission_bp), 10_000);
            let (charged, source) = actual.get(&FeeType::Commission).cloned().unwrap_or_default();
            amounts.insert(FeeType::Commission, (Some(contracted), charged));
            // Commissions are negative: charging more is a more negative amount.
            let leak = contracted - charged;
            if leak > s.tolerance_minor {
                fee_leakage_minor += leak;
                variances.push(Variance {
                    settlement_id: id.clone(),
                    order_id: Some(order_id.to_owned()),
                    fee_type: FeeType::Commission,
                    expected_minor: Some(contracted),
                    actual_minor: charged,
                    reason: format!("commission above the contracted {} bp", s.commission_bp),
                    source_lines: source,
                });
            }
        }
        for (fee, (a, _)) in &actual {
            amounts.entry(*fee).or_insert((None, *a));
        }
        if refunds.0 != 0 && ctx.refund_booked(&key) {
            refunds_booked.push(order_id.to_owned());
        } else if refunds.0 != 0 {
            variances.push(Variance {
                settlement_id: id.clone(),
                order_id: Some(order_id.to_owned()),
                fee_type: FeeType::Principal,
                expected_minor: None,
                actual_minor: refunds.0,
                reason: "refund that Ordo has not booked".into(),
                source_lines: refunds.1,
            });
        }
        orders.push(OrderReconciliation { order_id: order_id.to_owned(), known: true, amounts });
    }
    ReconciledSettlement {
        settlement,
        reconciled_total_minor,
        orders,
        variances,
        by_fee_type,
        fee_leakage_minor,
        refunds_booked,
    }
}

/// The payout's journal entry: the bank receives what the lines add up to; proceeds settle the
/// channel receivable, charges are expenses, reserves an asset held by the channel, refunds a
/// contra-revenue; a stated total the lines do not reach is a settlement variance, not lost.
///
/// In a currency other than the entity's, the bank gets each line at the payout date's rate,
/// while an order's proceeds take off the receivable what its sale booked — at the rate of the
/// day it shipped (`sale_rate` of the order id) — and the difference is realized exchange gain
/// or loss. So a fully settled order leaves nothing on the receivable, whatever the rates did.
pub fn payout_entry(
    r: &ReconciledSettlement,
    entity: ordo_types::LegalEntityCode,
    functional: CurrencyCode,
    rate_nanos: Option<i64>,
    date: Date,
    sale_rate: impl Fn(&str) -> Option<i64>,
) -> Result<JournalEntry, AccountingRejection> {
    let s = &r.settlement;
    let convert = |amount: i64| -> Result<i64, AccountingRejection> {
        if s.currency == functional {
            return Ok(amount);
        }
        let rate = rate_nanos.ok_or(AccountingRejection::NoFxRate { from: s.currency, to: functional, date })?;
        Ok(prorate(amount, rate, 1_000_000_000))
    };
    let receivable = GlAccount::ChannelReceivable(s.channel.clone());
    let mut legs: BTreeMap<GlAccount, i64> = BTreeMap::new();
    for line in &s.lines {
        // A refund Ordo did not book is booked here; one it booked (an RMA) was already taken
        // off the receivable, which this line now settles. Refunded tax nets with its withholding.
        let booked = line.order_id.as_ref().is_some_and(|o| r.refunds_booked.contains(o));
        let refund = line.transaction_type.eq_ignore_ascii_case("Refund")
            && matches!(line.fee_type, FeeType::Principal | FeeType::Promotion)
            && !booked;
        let account = match line.fee_type {
            _ if refund => GlAccount::SalesReturns,
            // Ordo's orders carry no shipping charge yet: what the channel paid for it is income.
            FeeType::Shipping => GlAccount::ShippingIncome,
            f if f.is_proceeds() => receivable.clone(),
            FeeType::TaxWithheld => receivable.clone(),
            FeeType::Reserve => GlAccount::ReserveHeldByChannel(s.channel.clone()),
            FeeType::Adjustment => GlAccount::OtherIncome,
            _ => GlAccount::MarketplaceFees,
        };
        // A line's amount flows to the bank from this account: credit it by the amount.
        let at_payout = convert(line.amount_minor)?;
        let booked_at = (account == receivable && s.currency != functional)
            .then(|| line.order_id.as_deref().and_then(&sale_rate))
            .flatten();
        match booked_at {
            Some(rate) => {
                let at_sale = prorate(line.amount_minor, rate, 1_000_000_000);
                *legs.entry(receivable.clone()).or_insert(0) -= at_sale;
                *legs.entry(GlAccount::RealizedFx).or_insert(0) -= at_payout - at_sale;
            }
            None => *legs.entry(account).or_insert(0) -= at_payout,
        }
    }
    let bank: i64 = -legs.values().sum::<i64>();
    *legs.entry(GlAccount::Bank).or_insert(0) += bank;
    let variance = convert(s.stated_total_minor)? - bank;
    if variance != 0 {
        // The channel says it paid more (or less) than its lines: the bank gets the stated sum.
        *legs.entry(GlAccount::Bank).or_insert(0) += variance;
        *legs.entry(GlAccount::SettlementVariance).or_insert(0) -= variance;
    }
    let postings = crate::accounting::postings_from_legs(&legs);
    Ok(JournalEntry {
        entity,
        currency: functional,
        date,
        rule: PostingRule::Payout,
        reference: format!("{} settlement {}", s.channel, s.settlement_id),
        postings,
    })
}
