//! Magento 2 / Adobe Commerce formats.

pub mod orders;
