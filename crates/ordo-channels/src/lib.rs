//! Channel connectors: each channel's own formats read into Ordo's canonical model (and, later,
//! written back). Connectors translate; they never decide — every business rule lives in
//! `ordo-domain`. One module per channel.

pub mod amazon;
pub mod magento;
pub mod shopify;
pub mod walmart;

/// What is wrong with an outside payload, and where: the line (1-based) and column of the file,
/// and the value found there, so a person can fix the file and an operator can find it again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}{}{}: {message}", column.as_ref().map(|c| format!(", column {c}")).unwrap_or_default(), value.as_ref().map(|v| format!(" ({v:?})")).unwrap_or_default())]
pub struct FormatError {
    pub line: u64,
    pub column: Option<String>,
    pub value: Option<String>,
    pub message: String,
}

impl FormatError {
    pub fn at(line: u64, message: impl Into<String>) -> Self {
        Self { line, column: None, value: None, message: message.into() }
    }
}
