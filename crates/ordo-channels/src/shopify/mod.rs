//! Shopify formats.

pub mod balance;
pub mod fulfillment;
pub mod inventory;
pub mod orders;
pub mod payouts;
pub mod refunds;
