//! Availability as the channels take it: one update per SKU, Ordo's newest figure and the
//! figure Ordo last published (what a conditional write compares against), under the channel's
//! own id for the item. Each channel module writes these in its format.

/// One SKU's new available-to-sell for one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvailabilityUpdate {
    pub sku: String,
    /// The channel's id for the item (Shopify inventory item gid, Amazon seller SKU, Walmart
    /// SKU); the SKU itself when the channel lists it under it.
    pub channel_item: String,
    /// What Ordo last published (the conditional write's compare value).
    pub previous: i64,
    pub available: i64,
}

/// Channels take no negative availability: an oversold SKU is advertised as 0.
pub fn advertised(available: i64) -> i64 {
    available.max(0)
}
