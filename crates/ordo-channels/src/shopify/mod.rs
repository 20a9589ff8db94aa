//! Shopify formats.

pub mod payouts;
