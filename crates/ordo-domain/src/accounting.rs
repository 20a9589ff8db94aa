//! The general ledger: money as double-entry journal entries between GL accounts, per legal
//! entity, in the entity's functional currency — the second ledger of "two ledgers, one
//! discipline", on the same kernel as stock (`ordo_ledger::Posting`: an amount moves from the
//! credited account to the debited one, so every entry balances by construction).
//!
//! Entries are never typed in: posting rules derive them from the business events, when the
//! event is decided, and they are journaled inside it (`Event::Accounted`), so replay reproduces
//! the ledger exactly and a later change of rules never rewrites history.
//!
//! Posting rules (README, "Finance", works each through with figures):
//! - **Receipt** (supplier → stock): Dr Inventory / Cr Goods received not invoiced, at the SKU's
//!   purchase cost plus landed cost per unit (capitalized); a SKU without a purchase cost enters
//!   at its current moving-average cost.
//! - **Shipment, cost side** (picked → customer): Dr Cost of goods sold / Cr Inventory at the
//!   moving-average cost of the shipping location's entity.
//! - **Shipment, sale side**: Dr Channel receivable / Cr Revenue (line net of discounts) /
//!   Cr Tax payable per jurisdiction, for the units this shipment completes; tax a marketplace
//!   collects and remits itself (`channel_collected`) is neither receivable nor payable.
//!   Amounts are recognised cumulatively (a line's share after this shipment minus its share
//!   before), so partial shipments never lose or invent a cent. In another currency than the
//!   entity's, converted at the rate in force on the shipment date.
//! - **Adjustment** (counts, corrections): Dr/Cr Inventory adjustment at moving-average cost.
//! - **Write-off** (damaged → write-off): Dr Write-offs and shrink / Cr Inventory.
//! - **Customer return into stock**: Dr Inventory / Cr Cost of goods sold at moving-average cost.
//!
//! Moving-average cost is kept as (units, value) per entity and SKU: units leaving take
//! `value × n / units` (rounded), so the last unit out takes exactly what is left and inventory
//! value always equals the Inventory account.

use std::collections::BTreeMap;

use ordo_ledger::Posting;
use ordo_types::{ChannelCode, CurrencyCode, Date, LegalEntityCode, Sku, Units};
use serde::{Deserialize, Serialize};

use crate::inventory::{Account, Movement, OutsideAccount};
use crate::orders::book::OrderRecord;

/// A GL account of one legal entity's chart.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GlAccount {
    ChannelReceivable(ChannelCode),
    Inventory,
    GoodsReceivedNotInvoiced,
    TaxPayable(String),
    Revenue,
    CostOfGoodsSold,
    InventoryAdjustment,
    WriteOff,
    /// What another entity of the group owes this one (stock sent to it on a transfer).
    DueFrom(LegalEntityCode),
    /// What this entity owes another of the group (stock received from it).
    DueTo(LegalEntityCode),
    Bank,
    /// Commissions, fulfilment and service fees a marketplace charges.
    MarketplaceFees,
    /// Funds a marketplace holds back from a payout (its reserve).
    ReserveHeldByChannel(ChannelCode),
    /// Refunds to customers (contra-revenue).
    SalesReturns,
    /// Reimbursements and other credits from a channel.
    OtherIncome,
    /// What a channel's stated payout and its own lines disagree by.
    SettlementVariance,
    /// Restocking fees kept from refunds.
    RestockingFees,
    /// What customers paid for shipping.
    ShippingIncome,
    /// Exchange differences realized when a receivable in another currency is settled at a rate
    /// other than the one it was booked at (gain: credit; loss: debit).
    RealizedFx,
}

impl GlAccount {
    /// The account number in the standard chart (assets 1xxx, liabilities 2xxx, revenue 4xxx,
    /// expenses 5xxx).
    pub fn number(&self) -> &'static str {
        match self {
            Self::ChannelReceivable(_) => "1100",
            Self::Inventory => "1300",
            Self::GoodsReceivedNotInvoiced => "2100",
            Self::TaxPayable(_) => "2200",
            Self::Revenue => "4000",
            Self::CostOfGoodsSold => "5000",
            Self::InventoryAdjustment => "5100",
            Self::WriteOff => "5200",
            Self::DueFrom(_) => "1400",
            Self::DueTo(_) => "2400",
            Self::Bank => "1000",
            Self::MarketplaceFees => "5300",
            Self::ReserveHeldByChannel(_) => "1150",
            Self::SalesReturns => "4100",
            Self::OtherIncome => "4900",
            Self::SettlementVariance => "5900",
            Self::RestockingFees => "4200",
            Self::ShippingIncome => "4300",
            Self::RealizedFx => "7100",
        }
    }

    pub fn name(&self) -> String {
        match self {
            Self::ChannelReceivable(c) => format!("Channel receivable {c}"),
            Self::Inventory => "Inventory".into(),
            Self::GoodsReceivedNotInvoiced => "Goods received not invoiced".into(),
            Self::TaxPayable(j) => format!("Tax payable {j}"),
            Self::Revenue => "Revenue".into(),
            Self::CostOfGoodsSold => "Cost of goods sold".into(),
            Self::InventoryAdjustment => "Inventory adjustment".into(),
            Self::WriteOff => "Write-offs and shrink".into(),
            Self::DueFrom(e) => format!("Due from {e}"),
            Self::DueTo(e) => format!("Due to {e}"),
            Self::Bank => "Bank".into(),
            Self::MarketplaceFees => "Marketplace fees".into(),
            Self::ReserveHeldByChannel(c) => format!("Reserve held by {c}"),
            Self::SalesReturns => "Sales returns and refunds".into(),
            Self::OtherIncome => "Other income".into(),
            Self::SettlementVariance => "Settlement variance".into(),
            Self::RestockingFees => "Restocking fees".into(),
            Self::ShippingIncome => "Shipping income".into(),
            Self::RealizedFx => "Realized exchange differences".into(),
        }
    }
}

/// Which posting rule made an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PostingRule {
    Receipt,
    Sale,
    CostOfSale,
    Adjustment,
    WriteOff,
    CustomerReturn,
    SupplierReturn,
    IntercompanyTransfer,
    Payout,
    Refund,
    /// Returned units credited against a replacement order (an exchange: no money moves).
    Exchange,
}

/// A balanced journal entry of one entity, in its functional currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub entity: LegalEntityCode,
    pub currency: CurrencyCode,
    pub date: Date,
    pub rule: PostingRule,
    /// What it is about: an order and shipment, or a SKU and location.
    pub reference: String,
    /// Each moves `units` (an amount in minor units, > 0) from the credited account (`from`) to
    /// the debited one (`to`).
    pub postings: Vec<Posting<GlAccount>>,
}

/// Purchase cost of a SKU, in the functional currency of the entity receiving it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseCost {
    pub unit_cost_minor: i64,
    /// Freight, duty and handling per unit, capitalized into inventory on receipt.
    pub landed_cost_per_unit_minor: i64,
}

/// Requests to the ledger's own settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccountingCommand {
    SetPurchaseCost {
        sku: Sku,
        cost: PurchaseCost,
    },
    /// `rate_nanos` units of `to` per unit of `from`, ×10⁹ (a rate, so not money: 1.0842 EUR→USD
    /// is 1_084_200_000), in force from `from_date` until a later rate.
    SetFxRate {
        from: CurrencyCode,
        to: CurrencyCode,
        from_date: Date,
        rate_nanos: i64,
    },
    /// The channel's contracted fees, against which settlements' commissions are checked.
    SetFeeSchedule {
        channel: ChannelCode,
        schedule: crate::settlement::FeeSchedule,
    },
    /// A channel's settlement report: reconciled against Ordo's orders and its payout posted.
    /// A settlement id is taken once per channel.
    ImportSettlement(Box<crate::settlement::Settlement>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccountingEvent {
    PurchaseCostSet { sku: Sku, cost: PurchaseCost },
    FxRateSet { from: CurrencyCode, to: CurrencyCode, from_date: Date, rate_nanos: i64 },
    FeeScheduleSet { channel: ChannelCode, schedule: crate::settlement::FeeSchedule },
    SettlementReconciled(Box<crate::settlement::ReconciledSettlement>),
}

/// Why an accounting command, or a posting a business event needs, was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountingRejection {
    #[error("unknown SKU {0}")]
    UnknownSku(Sku),
    #[error("a cost must not be negative")]
    NegativeCost,
    #[error("an exchange rate must be positive")]
    NonPositiveRate,
    #[error("{from} → {to}: converting a currency into itself needs no rate")]
    SameCurrency { from: CurrencyCode, to: CurrencyCode },
    #[error("no {from} → {to} exchange rate in force on {date}; set one with `ordo gl fx`")]
    NoFxRate { from: CurrencyCode, to: CurrencyCode, date: Date },
    #[error("unknown legal entity {0}")]
    UnknownEntity(LegalEntityCode),
    #[error("unknown channel {0}")]
    UnknownChannel(ChannelCode),
    #[error("an amount is out of range (above {MAX_AMOUNT_MINOR} minor units)")]
    AmountOutOfRange,
    #[error("settlement {id} of {channel} is already imported")]
    SettlementAlreadyImported { channel: ChannelCode, id: String },
}

/// The largest amount a cost, a settlement line or an inventory value may reach, in minor units
/// (10¹⁵: ten trillion dollars): far above any retailer's figure, far below where i64 arithmetic
/// on it (× units, × rates) could overflow unnoticed.
pub const MAX_AMOUNT_MINOR: i64 = 1_000_000_000_000_000;

/// Units and value on hand of one SKU in one entity: the moving-average cost is value / units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Valuation {
    pub units: Units,
    pub value_minor: i64,
}

impl Valuation {
    /// The value `units` take out at moving-average cost (all that is left for the last one).
    fn value_of(&self, units: Units) -> i64 {
        assert!(units <= self.units, "valued units never go below zero: {units} of {}", self.units);
        if units == self.units { self.value_minor } else { prorate(self.value_minor, units, self.units) }
    }
}

/// `amount × part / whole`, rounded half away from zero, without overflow.
pub fn prorate(amount: i64, part: i64, whole: i64) -> i64 {
    assert!(whole > 0, "prorating over nothing");
    let n = i128::from(amount) * i128::from(part);
    let d = i128::from(whole);
    let q = (n.abs() + d / 2) / d;
    i64::try_from(if n < 0 { -q } else { q }).expect("a prorated amount fits its whole")
}

/// The general ledger's state inside [`crate::State`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GeneralLedger {
    /// Debit-positive balance per entity and account.
    balances: BTreeMap<(LegalEntityCode, GlAccount), i64>,
    entries: Vec<(u64, JournalEntry)>,
    costs: BTreeMap<Sku, PurchaseCost>,
    valuation: BTreeMap<(LegalEntityCode, Sku), Valuation>,
    fx: BTreeMap<(CurrencyCode, CurrencyCode), BTreeMap<Date, i64>>,
    fee_schedules: BTreeMap<ChannelCode, crate::settlement::FeeSchedule>,
    settlements: BTreeMap<(ChannelCode, String), crate::settlement::ReconciledSettlement>,
}

impl GeneralLedger {
    pub fn balances(&self) -> &BTreeMap<(LegalEntityCode, GlAccount), i64> {
        &self.balances
    }

    /// Every entry with the journal sequence of the event it was posted in.
    pub fn entries(&self) -> &[(u64, JournalEntry)] {
        &self.entries
    }

    pub fn valuation(&self) -> &BTreeMap<(LegalEntityCode, Sku), Valuation> {
        &self.valuation
    }

    pub fn purchase_cost(&self, sku: &Sku) -> Option<PurchaseCost> {
        self.costs.get(sku).copied()
    }

    /// The `from` → `to` rate in force on `date` (the latest set on or before it).
    pub fn fx_rate(&self, from: CurrencyCode, to: CurrencyCode, date: Date) -> Option<i64> {
        self.fx.get(&(from, to))?.range(..=date).next_back().map(|(_, r)| *r)
    }

    pub fn fee_schedule(&self, channel: &ChannelCode) -> Option<crate::settlement::FeeSchedule> {
        self.fee_schedules.get(channel).copied()
    }

    /// Reconciled settlements by channel and the channel's settlement id.
    pub fn settlements(&self) -> &BTreeMap<(ChannelCode, String), crate::settlement::ReconciledSettlement> {
        &self.settlements
    }

    pub(crate) fn apply(&mut self, event: &AccountingEvent) {
        match event {
            AccountingEvent::FeeScheduleSet { channel, schedule } => {
                self.fee_schedules.insert(channel.clone(), *schedule);
            }
            AccountingEvent::SettlementReconciled(r) => {
                let key = (r.settlement.channel.clone(), r.settlement.settlement_id.clone());
                self.settlements.insert(key, (**r).clone());
            }
            AccountingEvent::PurchaseCostSet { sku, cost } => {
                self.costs.insert(sku.clone(), *cost);
            }
            AccountingEvent::FxRateSet { from, to, from_date, rate_nanos } => {
                self.fx.entry((*from, *to)).or_default().insert(*from_date, *rate_nanos);
            }
        }
    }

    pub(crate) fn post(&mut self, seq: u64, entries: &[JournalEntry]) {
        for entry in entries {
            assert!(entry.postings.iter().all(|p| p.units > 0), "postings move positive amounts: {entry:?}");
            for p in &entry.postings {
                *self.balances.entry((entry.entity.clone(), p.to.clone())).or_insert(0) += p.units;
                *self.balances.entry((entry.entity.clone(), p.from.clone())).or_insert(0) -= p.units;
            }
            self.entries.push((seq, entry.clone()));
        }
    }

    pub(crate) fn revalue(&mut self, changes: impl Iterator<Item = ((LegalEntityCode, Sku), Valuation)>) {
        for (key, v) in changes {
            self.valuation.insert(key, v);
        }
    }

    /// Accounting invariants: every entry balances (by construction, asserted here), each
    /// entity's trial balance sums to zero, and each entity's inventory valuation equals its
    /// Inventory account.
    pub fn check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut per_entity: BTreeMap<&LegalEntityCode, i64> = BTreeMap::new();
        for ((entity, _), balance) in &self.balances {
            *per_entity.entry(entity).or_insert(0) += balance;
        }
        for (entity, sum) in per_entity {
            if sum != 0 {
                problems.push(format!("trial balance of {entity} sums to {sum}, not 0"));
            }
        }
        let mut valued: BTreeMap<&LegalEntityCode, i64> = BTreeMap::new();
        for ((entity, sku), v) in &self.valuation {
            if v.units < 0 || v.value_minor < 0 || (v.units == 0 && v.value_minor != 0) {
                problems
                    .push(format!("{entity} {sku}: valuation {} units worth {} is impossible", v.units, v.value_minor));
            }
            *valued.entry(entity).or_insert(0) += v.value_minor;
        }
        let entities: std::collections::BTreeSet<&LegalEntityCode> =
            valued.keys().copied().chain(self.balances.keys().map(|(e, _)| e)).collect();
        for entity in entities {
            let value = valued.get(entity).copied().unwrap_or(0);
            let account = self.balances.get(&(entity.clone(), GlAccount::Inventory)).copied().unwrap_or(0);
            if value != account {
                problems.push(format!("{entity}: inventory valuation {value} ≠ Inventory account {account}"));
            }
        }
        problems
    }
}

/// What the rules need to know about the world, read from the state before the event applies.
pub trait PostingContext {
    fn ledger(&self) -> &GeneralLedger;
    fn entity_of_location(&self, location: &ordo_types::LocationCode) -> Option<LegalEntityCode>;
    fn entity_of_channel(&self, channel: &ChannelCode) -> Option<LegalEntityCode>;
    fn functional_currency(&self, entity: &LegalEntityCode) -> Option<CurrencyCode>;
    fn order(&self, key: &crate::orders::model::OrderKey) -> Option<&OrderRecord>;
}

/// The entries one decided event needs, with the valuations they leave.
#[derive(Debug, Default)]
pub struct Postings {
    pub entries: Vec<JournalEntry>,
    pub valuation: BTreeMap<(LegalEntityCode, Sku), Valuation>,
}

impl Postings {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Values the movements: each posting between an owned account (stock, in transit) and an
    /// outside one moves value in or out of inventory at moving-average cost.
    pub fn value_movements(
        &mut self,
        ctx: &impl PostingContext,
        movements: &[Movement],
        date: Date,
    ) -> Result<(), AccountingRejection> {
        for m in movements {
            if let crate::inventory::MovementKind::TransferShip { from, to } = &m.kind {
                self.transfer_between_entities(ctx, m, from, to, date)?;
            }
            for p in &m.postings {
                let (inward, owned, outside) = match (&p.from, &p.to) {
                    (Account::Stock { location, .. }, to) if !owned(to) => (false, location, to),
                    (from, Account::Stock { location, .. }) if !owned(from) => (true, location, from),
                    _ => continue,
                };
                let Some(entity) = ctx.entity_of_location(owned) else { continue };
                let currency = ctx
                    .functional_currency(&entity)
                    .ok_or_else(|| AccountingRejection::UnknownEntity(entity.clone()))?;
                let key = (entity.clone(), m.sku.clone());
                let mut v =
                    self.valuation.get(&key).or_else(|| ctx.ledger().valuation.get(&key)).copied().unwrap_or_default();
                let (counter, rule) = match (outside, inward) {
                    (Account::Outside(OutsideAccount::Customer), true) => {
                        (GlAccount::CostOfGoodsSold, PostingRule::CustomerReturn)
                    }
                    (Account::Outside(OutsideAccount::Customer), false) => {
                        (GlAccount::CostOfGoodsSold, PostingRule::CostOfSale)
                    }
                    (Account::Outside(OutsideAccount::Adjustment), _) => {
                        (GlAccount::InventoryAdjustment, PostingRule::Adjustment)
                    }
                    (Account::Outside(OutsideAccount::WriteOff), _) => (GlAccount::WriteOff, PostingRule::WriteOff),
                    (_, true) => (GlAccount::GoodsReceivedNotInvoiced, PostingRule::Receipt),
                    (_, false) => (GlAccount::GoodsReceivedNotInvoiced, PostingRule::SupplierReturn),
                };
                let amount = if inward {
                    let unit = match (rule, ctx.ledger().costs.get(&m.sku)) {
                        (PostingRule::Receipt, Some(c)) => c.unit_cost_minor + c.landed_cost_per_unit_minor,
                        _ if v.units > 0 => prorate(v.value_minor, 1, v.units),
                        _ => ctx
                            .ledger()
                            .costs
                            .get(&m.sku)
                            .map_or(0, |c| c.unit_cost_minor + c.landed_cost_per_unit_minor),
                    };
                    let amount = unit
                        .checked_mul(p.units)
                        .filter(|a| *a <= MAX_AMOUNT_MINOR && v.value_minor + a <= MAX_AMOUNT_MINOR)
                        .ok_or(AccountingRejection::AmountOutOfRange)?;
                    v.units += p.units;
                    v.value_minor += amount;
                    amount
                } else {
                    let amount = v.value_of(p.units);
                    v.units -= p.units;
                    v.value_minor -= amount;
                    amount
                };
                self.valuation.insert(key, v);
                if amount > 0 {
                    let (from, to) =
                        if inward { (counter, GlAccount::Inventory) } else { (GlAccount::Inventory, counter) };
                    self.entries.push(JournalEntry {
                        entity,
                        currency,
                        date,
                        rule,
                        reference: format!("{} {} {}", m.kind.name(), m.sku, owned),
                        postings: vec![Posting::new(from, to, amount)],
                    });
                }
            }
        }
        Ok(())
    }

    /// Stock shipped to a location of another entity belongs to that entity from the moment it
    /// leaves (its value moves with it, at the sender's moving-average cost): the sender books
    /// Due from / Inventory, the receiver Inventory / Due to.
    fn transfer_between_entities(
        &mut self,
        ctx: &impl PostingContext,
        m: &Movement,
        from: &ordo_types::LocationCode,
        to: &ordo_types::LocationCode,
        date: Date,
    ) -> Result<(), AccountingRejection> {
        let (Some(sender), Some(receiver)) = (ctx.entity_of_location(from), ctx.entity_of_location(to)) else {
            return Ok(());
        };
        if sender == receiver {
            return Ok(());
        }
        let units: Units =
            m.postings.iter().filter(|p| matches!(p.to, Account::InTransit { .. })).map(|p| p.units).sum();
        let current = |v: &BTreeMap<(LegalEntityCode, Sku), Valuation>, key: &(LegalEntityCode, Sku)| {
            v.get(key).or_else(|| ctx.ledger().valuation.get(key)).copied().unwrap_or_default()
        };
        let sender_key = (sender.clone(), m.sku.clone());
        let receiver_key = (receiver.clone(), m.sku.clone());
        let mut out = current(&self.valuation, &sender_key);
        let mut into = current(&self.valuation, &receiver_key);
        let amount = out.value_of(units);
        out.units -= units;
        out.value_minor -= amount;
        into.units += units;
        into.value_minor += amount;
        self.valuation.insert(sender_key, out);
        self.valuation.insert(receiver_key, into);
        if amount > 0 {
            let reference = format!("transfer {} {from} → {to}", m.sku);
            for (entity, posting) in [
                (&sender, Posting::new(GlAccount::Inventory, GlAccount::DueFrom(receiver.clone()), amount)),
                (&receiver, Posting::new(GlAccount::DueTo(sender.clone()), GlAccount::Inventory, amount)),
            ] {
                let currency = ctx
                    .functional_currency(entity)
                    .ok_or_else(|| AccountingRejection::UnknownEntity(entity.clone()))?;
                self.entries.push(JournalEntry {
                    entity: entity.clone(),
                    currency,
                    date,
                    rule: PostingRule::IntercompanyTransfer,
                    reference: reference.clone(),
                    postings: vec![posting],
                });
            }
        }
        Ok(())
    }

    /// The sale side of whatever `after` shipped beyond `before` (an order record and its
    /// previous version, if any).
    pub fn recognize_sale(
        &mut self,
        ctx: &impl PostingContext,
        before: Option<&OrderRecord>,
        after: &OrderRecord,
        date: Date,
    ) -> Result<(), AccountingRejection> {
        let order = &after.order;
        let Some(entity) = ctx.entity_of_channel(&order.channel) else { return Ok(()) };
        let functional =
            ctx.functional_currency(&entity).ok_or_else(|| AccountingRejection::UnknownEntity(entity.clone()))?;
        let convert = |amount: i64| -> Result<i64, AccountingRejection> {
            if order.currency == functional {
                return Ok(amount);
            }
            let rate = ctx.ledger().fx_rate(order.currency, functional, date).ok_or(AccountingRejection::NoFxRate {
                from: order.currency,
                to: functional,
                date,
            })?;
            Ok(prorate(amount, rate, 1_000_000_000))
        };
        let receivable = GlAccount::ChannelReceivable(order.channel.clone());
        let mut postings = Vec::new();
        for line in &order.lines {
            let (shipped_after, units) = after.shipped_of(&line.line_id);
            let shipped_before = before.map_or(0, |b| b.shipped_of(&line.line_id).0);
            if shipped_after == shipped_before || units == 0 {
                continue;
            }
            // Cumulative shares: what this shipment completes, rounded so the shares add up.
            let share = |total: i64| -> Result<i64, AccountingRejection> {
                convert(prorate(total, shipped_after, units))
                    .and_then(|a| Ok(a - convert(prorate(total, shipped_before, units))?))
            };
            let revenue = share(line.net_minor())?;
            if revenue > 0 {
                postings.push(Posting::new(GlAccount::Revenue, receivable.clone(), revenue));
            }
            for tax in line.tax_lines.iter().filter(|t| !t.channel_collected) {
                let amount = share(tax.amount_minor)?;
                if amount > 0 {
                    postings.push(Posting::new(
                        GlAccount::TaxPayable(tax.jurisdiction.clone()),
                        receivable.clone(),
                        amount,
                    ));
                }
            }
        }
        if !postings.is_empty() {
            let shipment = after.shipments.last().map_or("", |s| s.shipment_id.as_str());
            self.entries.push(JournalEntry {
                entity,
                currency: functional,
                date,
                rule: PostingRule::Sale,
                reference: format!("{} shipment {shipment}", order.key()),
                postings,
            });
        }
        Ok(())
    }
}

/// Debit-positive legs that sum to zero as postings, each from a credited account to a debited one.
pub fn postings_from_legs(legs: &BTreeMap<GlAccount, i64>) -> Vec<Posting<GlAccount>> {
    let mut debits: Vec<(GlAccount, i64)> =
        legs.iter().filter(|(_, v)| **v > 0).map(|(a, v)| (a.clone(), *v)).collect();
    let mut credits: Vec<(GlAccount, i64)> =
        legs.iter().filter(|(_, v)| **v < 0).map(|(a, v)| (a.clone(), -*v)).collect();
    assert_eq!(debits.iter().map(|d| d.1).sum::<i64>(), credits.iter().map(|c| c.1).sum::<i64>(), "legs balance");
    let mut postings = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < debits.len() && j < credits.len() {
        let amount = debits[i].1.min(credits[j].1);
        postings.push(Posting::new(credits[j].0.clone(), debits[i].0.clone(), amount));
        debits[i].1 -= amount;
        credits[j].1 -= amount;
        if debits[i].1 == 0 {
            i += 1;
        }
        if credits[j].1 == 0 {
            j += 1;
        }
    }
    postings
}

impl Postings {
    /// A refund issued: the customer's money back out of what the channel owes (Dr Sales returns
    /// and the tax payable it reverses, Cr Channel receivable), the fees kept as income.
    pub fn refund(
        &mut self,
        ctx: &impl PostingContext,
        rma: &crate::returns::Rma,
        refund: &crate::returns::Refund,
        date: Date,
    ) -> Result<(), AccountingRejection> {
        self.credit_customer(ctx, rma, refund, 0, PostingRule::Refund, date)
    }

    /// A refund the channel issued itself: as a refund, plus what it gave back beyond the goods
    /// (shipping, adjustments) as a sales return too.
    pub fn channel_refund(
        &mut self,
        ctx: &impl PostingContext,
        rma: &crate::returns::Rma,
        refund: &crate::returns::Refund,
        beyond_goods_minor: i64,
        date: Date,
    ) -> Result<(), AccountingRejection> {
        self.credit_customer(ctx, rma, refund, beyond_goods_minor, PostingRule::Refund, date)
    }

    /// The returned units an exchange credits against its replacement: booked as a refund with
    /// no fees (the replacement's sale, at shipment, restores the receivable).
    pub fn exchange_credit(
        &mut self,
        ctx: &impl PostingContext,
        rma: &crate::returns::Rma,
        credit: &crate::returns::Refund,
        date: Date,
    ) -> Result<(), AccountingRejection> {
        self.credit_customer(ctx, rma, credit, 0, PostingRule::Exchange, date)
    }

    fn credit_customer(
        &mut self,
        ctx: &impl PostingContext,
        rma: &crate::returns::Rma,
        refund: &crate::returns::Refund,
        beyond_goods_minor: i64,
        rule: PostingRule,
        date: Date,
    ) -> Result<(), AccountingRejection> {
        let Some(order) = ctx.order(&rma.order) else { return Ok(()) };
        let order = &order.order;
        let Some(entity) = ctx.entity_of_channel(&order.channel) else { return Ok(()) };
        let functional =
            ctx.functional_currency(&entity).ok_or_else(|| AccountingRejection::UnknownEntity(entity.clone()))?;
        let rate = if order.currency == functional {
            1_000_000_000
        } else {
            ctx.ledger().fx_rate(order.currency, functional, date).ok_or(AccountingRejection::NoFxRate {
                from: order.currency,
                to: functional,
                date,
            })?
        };
        let convert = |amount: i64| prorate(amount, rate, 1_000_000_000);
        let mut legs: BTreeMap<GlAccount, i64> = BTreeMap::new();
        *legs.entry(GlAccount::SalesReturns).or_insert(0) += convert(refund.net_minor);
        for (j, t) in &refund.tax_minor {
            *legs.entry(GlAccount::TaxPayable(j.clone())).or_insert(0) += convert(*t);
        }
        *legs.entry(GlAccount::RestockingFees).or_insert(0) -= convert(refund.restocking_fee_minor);
        *legs.entry(GlAccount::OtherIncome).or_insert(0) -= convert(refund.return_shipping_minor);
        *legs.entry(GlAccount::SalesReturns).or_insert(0) += convert(beyond_goods_minor);
        // The receivable takes what balances the converted legs (rounding stays in one place).
        let rest: i64 = legs.values().sum();
        *legs.entry(GlAccount::ChannelReceivable(order.channel.clone())).or_insert(0) -= rest;
        legs.retain(|_, v| *v != 0);
        let postings = postings_from_legs(&legs);
        if !postings.is_empty() {
            self.entries.push(JournalEntry {
                entity,
                currency: functional,
                date,
                rule,
                reference: format!("{} RMA {}", rma.order, rma.rma_id),
                postings,
            });
        }
        Ok(())
    }
}

fn owned(account: &Account) -> bool {
    matches!(account, Account::Stock { .. } | Account::InTransit { .. })
}

/// Settings commands, checked against the catalog.
pub fn decide(
    command: &AccountingCommand,
    sku_known: impl Fn(&Sku) -> bool,
) -> Result<AccountingEvent, AccountingRejection> {
    match command {
        AccountingCommand::SetPurchaseCost { sku, cost } => {
            if !sku_known(sku) {
                return Err(AccountingRejection::UnknownSku(sku.clone()));
            }
            if cost.unit_cost_minor < 0 || cost.landed_cost_per_unit_minor < 0 {
                return Err(AccountingRejection::NegativeCost);
            }
            // A unit cost of a billion (in minor units) is beyond any stocked item.
            if cost.unit_cost_minor + cost.landed_cost_per_unit_minor > 1_000_000_000_000 {
                return Err(AccountingRejection::AmountOutOfRange);
            }
            Ok(AccountingEvent::PurchaseCostSet { sku: sku.clone(), cost: *cost })
        }
        AccountingCommand::SetFeeSchedule { .. } | AccountingCommand::ImportSettlement(_) => {
            unreachable!("decided by the state, which knows channels and orders")
        }
        AccountingCommand::SetFxRate { from, to, from_date, rate_nanos } => {
            if from == to {
                return Err(AccountingRejection::SameCurrency { from: *from, to: *to });
            }
            if *rate_nanos <= 0 {
                return Err(AccountingRejection::NonPositiveRate);
            }
            Ok(AccountingEvent::FxRateSet { from: *from, to: *to, from_date: *from_date, rate_nanos: *rate_nanos })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prorating_rounds_half_away_from_zero_and_shares_add_up() {
        assert_eq!(prorate(1000, 1, 3), 333);
        assert_eq!(prorate(1000, 2, 3), 667);
        assert_eq!(prorate(-1000, 2, 3), -667);
        assert_eq!(prorate(5, 1, 2), 3);
        // Cumulative shares of 1000 over 3 shipments of 1 unit: 333 + 334 + 333.
        let shares: Vec<i64> = (1..=3).map(|n| prorate(1000, n, 3) - prorate(1000, n - 1, 3)).collect();
        assert_eq!(shares, [333, 334, 333]);
        assert_eq!(shares.iter().sum::<i64>(), 1000);
    }

    #[test]
    fn the_last_unit_out_takes_what_is_left() {
        let v = Valuation { units: 3, value_minor: 1000 };
        assert_eq!(v.value_of(1), 333);
        assert_eq!(v.value_of(3), 1000);
    }
}
