//! Shopify formats.

pub mod orders;
pub mod payouts;
