//! Walmart Marketplace formats.

pub mod orders;
