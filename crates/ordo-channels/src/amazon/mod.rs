//! Amazon Selling Partner API formats.

pub mod settlement;
