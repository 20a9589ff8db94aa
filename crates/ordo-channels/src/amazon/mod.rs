//! Amazon Selling Partner API formats.

pub mod listings;
pub mod orders;
pub mod settlement;
