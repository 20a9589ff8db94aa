//! Channel connectors: each channel's own formats read into Ordo's canonical model (and, later,
//! written back). Connectors translate; they never decide — every business rule lives in
//! `ordo-domain`. One module per channel.

pub mod amazon;
pub mod availability;
pub mod magento;
pub mod pos;
pub mod shopify;
pub mod walmart;
pub mod x12;

/// What a settlement document held: the settlements to import, and what it left out (payouts
/// or transactions that did not move money yet), as `(id, a sentence saying why)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementFile {
    pub settlements: Vec<ordo_domain::settlement::Settlement>,
    pub left_out: Vec<(String, String)>,
}

/// A channel's settlement documents read into canonical settlements (Amazon's V2 flat file,
/// Shopify payouts, Shopify balance transactions).
pub trait SettlementSource {
    /// The document's name, for messages and dead letters (`amazon-settlement`).
    fn name(&self) -> &'static str;
    fn settlements(&self, text: &str, channel: ordo_types::ChannelCode) -> Result<SettlementFile, FormatError>;
}

/// Says whether a webhook delivery came from the channel, from its raw body and headers, before
/// anything reads the body.
pub trait WebhookVerifier {
    fn verify(&self, body: &[u8], header: &dyn Fn(&str) -> Option<String>) -> bool;
}

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

    /// A wrong field of a JSON document: its path (`line_items[0].price`) and the value there.
    pub(crate) fn field(path: &str, value: &serde_json::Value, message: impl Into<String>) -> Self {
        let value = match value {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        };
        Self { line: 1, column: Some(path.to_owned()), value, message: message.into() }
    }
}

/// A channel's JSON document, or where it stops being JSON.
pub(crate) fn json_document(text: &str) -> Result<serde_json::Value, FormatError> {
    serde_json::from_str(text).map_err(|e| FormatError {
        line: e.line() as u64,
        column: Some(format!("character {}", e.column())),
        value: None,
        message: format!("not JSON: {e}"),
    })
}

/// A JSON string or number as text (channels write ids and amounts either way).
pub(crate) fn json_text_of(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A required text field (string or number, not blank), trimmed.
pub(crate) fn json_text(path: &str, v: &serde_json::Value) -> Result<String, FormatError> {
    match json_text_of(v).map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()) {
        Some(s) => Ok(s),
        None if v.is_null() => Err(FormatError::field(path, v, "missing")),
        None => Err(FormatError::field(path, v, "expected text")),
    }
}
