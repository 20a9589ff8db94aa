//! The canonical, channel-neutral order: what every connector maps Shopify, Amazon, Walmart,
//! Magento, EDI 850 and POS orders into, and what `ordo order create --file` reads as JSON.
//!
//! Money is integer minor units in the order's currency; never floats. A channel order is
//! identified by `(channel, channel_order_id)`; `channel_updated_at` orders re-deliveries.

use ordo_types::{ChannelCode, CurrencyCode, Date, LocationCode, Sku, Timestamp, Units};
use serde::{Deserialize, Serialize};

use crate::catalog::GeoPoint;

/// Identifies an order across Ordo: the channel and the channel's own order id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OrderKey {
    pub channel: ChannelCode,
    pub channel_order_id: String,
}

impl std::fmt::Display for OrderKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.channel, self.channel_order_id)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    Active,
    CreditHold,
    Blocked,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Customer {
    /// The channel's or the retailer's customer id.
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    pub account_status: AccountStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PostalAddress {
    pub name: String,
    pub line1: String,
    #[serde(default)]
    pub line2: String,
    pub city: String,
    pub region: String,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// Where the address is, when the channel or a geocoder knows (sourcing uses it for zones).
    #[serde(default)]
    pub geo: Option<GeoPoint>,
}

/// What a line asks for: our SKU, or the channel's listing id (ASIN, seller SKU, buyer part
/// number…) that the channel's listing map translates to a SKU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum LineItem {
    Sku(Sku),
    Listing(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct TaxLine {
    /// Where the tax is owed, e.g. `US-NY`.
    pub jurisdiction: String,
    /// Rate in basis points (8.875 % = 888, rounded by the channel).
    pub rate_bp: u32,
    pub amount_minor: i64,
    /// Collected and remitted by the marketplace (marketplace-facilitator laws).
    #[serde(default)]
    pub channel_collected: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct OrderLine {
    /// The channel's line id, unique within the order.
    pub line_id: String,
    pub item: LineItem,
    pub quantity: Units,
    /// `each` or one of the item's conversions.
    #[serde(default = "each")]
    pub uom: String,
    pub unit_price_minor: i64,
    #[serde(default)]
    pub discount_minor: i64,
    #[serde(default)]
    pub tax_lines: Vec<TaxLine>,
}

fn each() -> String {
    crate::catalog::BASE_UOM.to_owned()
}

impl OrderLine {
    /// Line value after discount, before tax.
    pub fn net_minor(&self) -> i64 {
        self.unit_price_minor.saturating_mul(self.quantity).saturating_sub(self.discount_minor)
    }
}

/// How fast the customer was promised the goods, fastest first (the order used when stock is
/// short: a next-day order is served before a standard one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ServiceLevel {
    SameDay,
    NextDay,
    TwoDay,
    Standard,
    Economy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Shipping {
    /// The channel's shipping method code, mapped to a carrier service later.
    pub method: String,
    pub service_level: ServiceLevel,
    /// Promised ship-by instant, if the channel gives one.
    #[serde(default)]
    pub ship_by: Option<Timestamp>,
    /// Promised delivery date, if the channel gives one.
    #[serde(default)]
    pub deliver_by: Option<Date>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Pending,
    Authorized,
    Captured,
    Failed,
    Refunded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum FraudRecommendation {
    Accept,
    Review,
    Cancel,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct FraudAssessment {
    /// 0 (no risk) to 100 (certain fraud), as the channel's or a provider's model scores it.
    #[serde(default)]
    pub score: Option<u8>,
    #[serde(default)]
    pub recommendation: Option<FraudRecommendation>,
}

/// How the customer wants the goods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum FulfillmentIntent {
    /// Delivered to `ship_to`; stores may ship it only if `ship_from_store_allowed`.
    Ship { ship_from_store_allowed: bool },
    /// Buy online, pick up in store: fixed to that store.
    PickUpInStore { store: LocationCode },
    /// Shipped by a drop-ship supplier straight to the customer.
    DropShip { supplier: LocationCode },
    /// Fulfilled by the channel from its own stock (Amazon FBA, Walmart WFS): recorded for the
    /// books and settlements, never reserved from Ordo's ledger.
    ByChannel,
    /// Sold over a store's till (POS): the customer already has the goods. Not validated (a sale
    /// that happened is a fact, not a request); reserved from that store only.
    SoldInStore { store: LocationCode },
}

/// The canonical order, as captured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Order {
    pub channel: ChannelCode,
    pub channel_order_id: String,
    /// The channel's last-modified time: a re-delivery older than what we hold is ignored.
    pub channel_updated_at: Timestamp,
    pub placed_at: Timestamp,
    pub customer: Customer,
    pub ship_to: PostalAddress,
    #[serde(default)]
    pub bill_to: Option<PostalAddress>,
    pub lines: Vec<OrderLine>,
    pub shipping: Shipping,
    pub payment_status: PaymentStatus,
    #[serde(default)]
    pub fraud: FraudAssessment,
    pub fulfillment: FulfillmentIntent,
    pub currency: CurrencyCode,
    #[serde(default)]
    pub tags: Vec<String>,
}

impl Order {
    pub fn key(&self) -> OrderKey {
        OrderKey { channel: self.channel.clone(), channel_order_id: self.channel_order_id.clone() }
    }

    /// Sum of line values after discounts, before tax.
    pub fn net_minor(&self) -> i64 {
        self.lines.iter().map(OrderLine::net_minor).fold(0i64, i64::saturating_add)
    }

    /// The RMA this order replaces goods for, when it is an exchange's replacement (Ordo's own
    /// order: the channel never had it, so nothing about it is confirmed to the channel).
    pub fn exchange_of(&self) -> Option<&str> {
        self.tags.iter().find_map(|t| t.strip_prefix(crate::returns::EXCHANGE_TAG))
    }

    pub fn tax_minor(&self) -> i64 {
        self.lines.iter().flat_map(|l| &l.tax_lines).map(|t| t.amount_minor).fold(0i64, i64::saturating_add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r##"{
        "channel": "SHOPIFY-DTC",
        "channel_order_id": "#1001",
        "channel_updated_at": 1795000000000,
        "placed_at": 1795000000000,
        "customer": {"id": "C-42", "name": "Ada Lovelace", "email": "ada@example.com", "account_status": "active"},
        "ship_to": {"name": "Ada Lovelace", "line1": "1 Main St", "city": "Brooklyn", "region": "NY",
                    "postal_code": "11201", "country": "US",
                    "geo": {"latitude_micro": 40693000, "longitude_micro": -73990000}},
        "lines": [
            {"line_id": "1", "item": {"sku": "TEE-CLASSIC-BLK-M"}, "quantity": 2, "unit_price_minor": 2500,
             "discount_minor": 500,
             "tax_lines": [{"jurisdiction": "US-NY", "rate_bp": 888, "amount_minor": 400}]},
            {"line_id": "2", "item": {"listing": "B00X4WHP5E"}, "quantity": 1, "uom": "each", "unit_price_minor": 1200}
        ],
        "shipping": {"method": "standard", "service_level": "next_day", "deliver_by": "2026-11-28"},
        "payment_status": "captured",
        "fraud": {"score": 12, "recommendation": "accept"},
        "fulfillment": {"ship": {"ship_from_store_allowed": true}},
        "currency": "USD",
        "tags": ["vip"]
    }"##;

    #[test]
    fn canonical_json_reads_with_defaults_and_exact_money() {
        let order: Order = serde_json::from_str(SAMPLE).unwrap();
        assert_eq!(order.key().to_string(), "SHOPIFY-DTC/#1001");
        assert_eq!(order.lines[1].item, LineItem::Listing("B00X4WHP5E".into()));
        assert_eq!(order.lines[0].uom, "each");
        // 2 × 25.00 − 5.00 + 1 × 12.00 = 57.00
        assert_eq!(order.net_minor(), 5_700);
        assert_eq!(order.tax_minor(), 400);
        assert_eq!(order.shipping.deliver_by.unwrap().to_string(), "2026-11-28");
        let again: Order = serde_json::from_str(&serde_json::to_string(&order).unwrap()).unwrap();
        assert_eq!(again, order);
    }

    #[test]
    fn service_levels_sort_fastest_first() {
        let mut levels = [ServiceLevel::Standard, ServiceLevel::SameDay, ServiceLevel::Economy, ServiceLevel::NextDay];
        levels.sort();
        assert_eq!(
            levels,
            [ServiceLevel::SameDay, ServiceLevel::NextDay, ServiceLevel::Standard, ServiceLevel::Economy]
        );
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused() {
        let bad = SAMPLE.replace("\"captured\"", "\"paid\"");
        let err = serde_json::from_str::<Order>(&bad).unwrap_err().to_string();
        assert!(err.contains("paid"), "{err}");
        let typo = SAMPLE.replace("\"unit_price_minor\": 1200", "\"unit_prize_minor\": 1200");
        let err = serde_json::from_str::<Order>(&typo).unwrap_err().to_string();
        assert!(err.contains("unit_prize_minor"), "{err}");
    }
}
