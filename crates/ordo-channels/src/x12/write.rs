//! Writing X12: an interchange around one functional group of transaction sets, with the
//! envelope Ordo's readers check (fixed-width ISA, matching control numbers, segment and set
//! counts), so whatever Ordo writes it can read back.

use ordo_types::Timestamp;

use super::{Delimiters, Party};

/// The version an interchange is written in: ISA12 and GS08. Answers (997, 855) use the
/// version the partner wrote in; documents Ordo starts use the partner's configured one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub isa12: String,
    pub gs08: String,
}

impl Version {
    pub fn v4010() -> Self {
        Self { isa12: "00401".into(), gs08: "004010".into() }
    }
    pub fn v5010() -> Self {
        Self { isa12: "00501".into(), gs08: "005010".into() }
    }
}

/// Who writes to whom, when, under which control number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub sender: Party,
    pub receiver: Party,
    /// ISA13 and GS06 (at most 9 digits); must not repeat for the same partner.
    pub control_number: u32,
    pub at: Timestamp,
    /// `P` production or `T` test (answer in the usage the partner wrote in).
    pub usage: char,
    pub version: Version,
}

/// One transaction set's segments (ST and SE are added by [`interchange`]).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SetBuilder {
    segments: Vec<Vec<String>>,
}

impl SetBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a segment; values are cleaned of separators and trailing empty elements dropped.
    pub fn segment<S: AsRef<str>>(&mut self, id: &str, elements: &[S]) -> &mut Self {
        let mut row = Vec::with_capacity(elements.len() + 1);
        row.push(id.to_owned());
        row.extend(elements.iter().map(|e| clean(e.as_ref())));
        while row.len() > 1 && row.last().is_some_and(String::is_empty) {
            row.pop();
        }
        self.segments.push(row);
        self
    }

    pub fn len(&self) -> usize {
        self.segments.len()
    }

    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }
}

/// X12 has no escape: a separator inside a value would split it. Names and addresses from other
/// channels may hold them, so they become spaces (and control characters with them).
fn clean(value: &str) -> String {
    let d = Delimiters::default();
    let separators = [d.element, d.component, d.segment, d.repetition.unwrap_or(d.segment)];
    value
        .chars()
        .map(|c| if c.is_control() || (c.is_ascii() && separators.contains(&(c as u8))) { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

fn pad(value: &str, width: usize) -> String {
    format!("{:<width$}", value.chars().take(width).collect::<String>())
}

/// An interchange holding one functional group (`functional_id`: PO, PR, SH, IN, IB, FA) of
/// `sets` (code, segments), numbered 0001, 0002…; segments end in `~` and a line break.
pub fn interchange(envelope: &Envelope, functional_id: &str, sets: &[(&str, SetBuilder)]) -> String {
    assert!(envelope.control_number <= 999_999_999, "ISA13 holds nine digits");
    let d = Delimiters::default();
    let (e, t) = (d.element as char, d.segment as char);
    let moment = chrono::DateTime::from_timestamp_millis(envelope.at.millis()).unwrap_or_default();
    let control = format!("{:09}", envelope.control_number);
    let isa11 = if envelope.version.isa12.as_str() >= "00402" { d.repetition.map_or('U', char::from) } else { 'U' };
    let mut out = String::with_capacity(256 + sets.iter().map(|(_, s)| s.len() * 40).sum::<usize>());
    let mut push = |fields: &[&str]| {
        out.push_str(&fields.join(&e.to_string()));
        out.push(t);
        out.push('\n');
    };
    push(&[
        "ISA",
        "00",
        &pad("", 10),
        "00",
        &pad("", 10),
        &envelope.sender.qualifier,
        &pad(&envelope.sender.id, 15),
        &envelope.receiver.qualifier,
        &pad(&envelope.receiver.id, 15),
        &moment.format("%y%m%d").to_string(),
        &moment.format("%H%M").to_string(),
        &isa11.to_string(),
        &envelope.version.isa12,
        &control,
        "0",
        &envelope.usage.to_string(),
        &(d.component as char).to_string(),
    ]);
    let group = envelope.control_number.to_string();
    push(&[
        "GS",
        functional_id,
        &envelope.sender.id,
        &envelope.receiver.id,
        &moment.format("%Y%m%d").to_string(),
        &moment.format("%H%M").to_string(),
        &group,
        "X",
        &envelope.version.gs08,
    ]);
    for (n, (code, set)) in sets.iter().enumerate() {
        let number = format!("{:04}", n + 1);
        push(&["ST", code, &number]);
        for row in &set.segments {
            push(&row.iter().map(String::as_str).collect::<Vec<_>>());
        }
        push(&["SE", &(set.segments.len() + 2).to_string(), &number]);
    }
    push(&["GE", &sets.len().to_string(), &group]);
    push(&["IEA", "1", &control]);
    out
}

/// Minor units as an X12 `R` (explicit decimal) value: `1995` at exponent 2 → `19.95`,
/// `1900` → `19` (no trailing zeros, as R values are written).
pub fn decimal_r(minor: i64, exponent: u32) -> String {
    let text = ordo_types::format_decimal(minor, exponent);
    if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_owned() } else { text }
}
