//! Walmart Marketplace formats.

pub mod inventory;
pub mod orders;
