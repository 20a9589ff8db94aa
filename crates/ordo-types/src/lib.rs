//! Ordo's vocabulary: validated identifiers, quantities, dates and timestamps shared by every crate.
//!
//! Everything here is parsed once at the edge (`FromStr` / `new`) and trusted afterwards, so the
//! domain never re-checks a SKU's shape or a date's format.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Why a raw value could not become one of the vocabulary types.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("{what} must not be empty")]
    Empty { what: &'static str },
    #[error("{what} is longer than {max} characters: {value:?}")]
    TooLong { what: &'static str, max: usize, value: String },
    #[error("{what} {value:?} contains {found:?}; {allowed}")]
    BadCharacter { what: &'static str, value: String, found: char, allowed: &'static str },
    #[error("{what} {value:?} is not valid: {reason}")]
    Invalid { what: &'static str, value: String, reason: &'static str },
}

fn check_text(what: &'static str, value: &str, max: usize) -> Result<(), ParseError> {
    if value.trim().is_empty() {
        return Err(ParseError::Empty { what });
    }
    if value.chars().count() > max {
        return Err(ParseError::TooLong { what, max, value: value.to_owned() });
    }
    if value.trim() != value {
        return Err(ParseError::Invalid { what, value: value.to_owned(), reason: "leading or trailing whitespace" });
    }
    if let Some(found) = value.chars().find(|c| c.is_control()) {
        return Err(ParseError::BadCharacter {
            what,
            value: value.to_owned(),
            found,
            allowed: "control characters are not allowed",
        });
    }
    Ok(())
}

/// A stock-keeping unit code, as the retailer spells it (case-sensitive, 1–64 characters).
///
/// Shared text (`Arc<str>`): SKUs and codes are copied into every movement, reservation, order
/// line and sourcing candidate, and a copy should cost a counter increment, not an allocation.
#[derive(Debug, Clone, Eq, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct Sku(Arc<str>);

impl Sku {
    pub const MAX_LEN: usize = 64;

    pub fn new(value: impl Into<String>) -> Result<Self, ParseError> {
        let value = value.into();
        check_text("SKU", &value, Self::MAX_LEN)?;
        Ok(Self(value.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A short code naming a location, channel, legal entity, SKU class or reference
/// (`[A-Za-z0-9._-]`, 1–64 characters) so it is safe in CLI flags, file names and URLs.
#[derive(Debug, Clone, Eq, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct Code(Arc<str>);

impl Code {
    pub const MAX_LEN: usize = 64;

    pub fn new(value: impl Into<String>) -> Result<Self, ParseError> {
        let value = value.into();
        check_text("code", &value, Self::MAX_LEN)?;
        if let Some(found) = value.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
            return Err(ParseError::BadCharacter {
                what: "code",
                value,
                found,
                allowed: "only letters, digits, '.', '_' and '-' are allowed",
            });
        }
        Ok(Self(value.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! text_newtype_impls {
    ($($t:ident),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl FromStr for $t {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }
        impl TryFrom<String> for $t {
            type Error = ParseError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }
        impl From<$t> for String {
            fn from(v: $t) -> String {
                v.0.as_ref().to_owned()
            }
        }
        // Copies of one value share one allocation: equal pointers settle equality at once.
        impl PartialEq for $t {
            fn eq(&self, other: &Self) -> bool {
                Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
            }
        }
        // By content, as equality is (the pointer test above is only a shortcut).
        impl std::hash::Hash for $t {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                self.0.hash(state)
            }
        }
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    )*};
}
text_newtype_impls!(Sku, Code);

/// Codes of the different things a code can name; aliases keep signatures readable.
pub type LocationCode = Code;
pub type ChannelCode = Code;
pub type LegalEntityCode = Code;
pub type SkuClass = Code;
/// A caller-chosen reference: a reservation, transfer or purchase-order expectation id.
pub type Reference = Code;

/// An ISO 4217 currency code (three upper-case letters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CurrencyCode([u8; 3]);

impl CurrencyCode {
    pub fn new(value: &str) -> Result<Self, ParseError> {
        let bytes = value.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_uppercase) {
            return Err(ParseError::Invalid {
                what: "currency",
                value: value.to_owned(),
                reason: "expected an ISO 4217 code of three upper-case letters, e.g. USD",
            });
        }
        Ok(Self([bytes[0], bytes[1], bytes[2]]))
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("validated ASCII")
    }
}

impl fmt::Display for CurrencyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
impl FromStr for CurrencyCode {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}
impl TryFrom<String> for CurrencyCode {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(&s)
    }
}
impl From<CurrencyCode> for String {
    fn from(v: CurrencyCode) -> String {
        v.as_str().to_owned()
    }
}

impl CurrencyCode {
    /// ISO 4217 minor-unit digits: 0 for yen and won, 3 for the Gulf dinars, 2 otherwise.
    pub fn exponent(&self) -> u32 {
        match self.as_str() {
            "JPY" | "KRW" | "VND" | "CLP" | "ISK" | "UGX" | "XAF" | "XOF" | "PYG" => 0,
            "BHD" | "KWD" | "OMR" | "JOD" | "TND" | "LYD" | "IQD" => 3,
            _ => 2,
        }
    }
}

/// Exact decimal text (`"199.00"`, `"-5.5"`, `"12"`) as an integer of `exponent` fraction
/// digits: `parse_decimal("5.5", 2) == 550`. More fraction digits than that is refused, not
/// rounded: money never passes through a float.
pub fn parse_decimal(text: &str, exponent: u32) -> Result<i64, ParseError> {
    let bad = |reason: &'static str| ParseError::Invalid { what: "amount", value: text.to_owned(), reason };
    let t = text.trim();
    let (negative, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && fraction.is_empty() {
        return Err(bad("expected a decimal number such as 12.34"));
    }
    if !whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(bad("expected a decimal number such as 12.34"));
    }
    if fraction.len() > exponent as usize {
        return Err(bad("more decimal places than the currency has"));
    }
    let scale = 10i64.pow(exponent);
    let whole: i64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| bad("too large"))? };
    let padded = format!("{fraction:0<width$}", width = exponent as usize);
    let fraction: i64 = if padded.is_empty() { 0 } else { padded.parse().map_err(|_| bad("too large"))? };
    let value = whole.checked_mul(scale).and_then(|w| w.checked_add(fraction)).ok_or_else(|| bad("too large"))?;
    Ok(if negative { -value } else { value })
}

/// An integer of `exponent` fraction digits as decimal text: `format_decimal(-550, 2) == "-5.50"`.
pub fn format_decimal(value: i64, exponent: u32) -> String {
    if exponent == 0 {
        return value.to_string();
    }
    let scale = 10u64.pow(exponent);
    let sign = if value < 0 { "-" } else { "" };
    let magnitude = value.unsigned_abs();
    format!("{sign}{}.{:0width$}", magnitude / scale, magnitude % scale, width = exponent as usize)
}

/// A point in time, in milliseconds since the Unix epoch (UTC). The domain never reads a clock:
/// the engine stamps each batch with one `Timestamp` from its injected clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    /// The calendar date (UTC) this instant falls on.
    pub fn date(self) -> Date {
        Date(self.0.div_euclid(86_400_000) as i32)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match chrono::DateTime::from_timestamp_millis(self.0) {
            Some(t) => write!(f, "{}", t.format("%Y-%m-%dT%H:%M:%S%.3fZ")),
            None => write!(f, "{}ms", self.0),
        }
    }
}

/// A calendar date, stored as days since 1970-01-01; written `YYYY-MM-DD` in human-readable
/// formats (JSON) and as the day number in binary ones (the journal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(pub i32);

impl Serialize for Date {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() { serializer.collect_str(self) } else { serializer.serialize_i32(self.0) }
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            text.parse().map_err(serde::de::Error::custom)
        } else {
            i32::deserialize(deserializer).map(Date)
        }
    }
}

impl Date {
    pub fn days_since_epoch(self) -> i32 {
        self.0
    }

    pub fn add_days(self, days: i32) -> Date {
        Date(self.0 + days)
    }
}

impl FromStr for Date {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| ParseError::Invalid {
            what: "date",
            value: s.to_owned(),
            reason: "expected YYYY-MM-DD",
        })?;
        let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid epoch");
        Ok(Date((d - epoch).num_days() as i32))
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid epoch");
        match epoch.checked_add_signed(chrono::TimeDelta::days(i64::from(self.0))) {
            Some(d) => write!(f, "{}", d.format("%Y-%m-%d")),
            None => write!(f, "day {}", self.0),
        }
    }
}

/// JSON Schemas that say exactly what the parsers above accept, so an API client (or a schema
/// fuzzer) can tell a well-formed value from a refused one without calling the server.
#[cfg(feature = "schema")]
mod schema {
    use std::borrow::Cow;

    use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

    use super::{Code, CurrencyCode, Date, Sku};

    // Control characters are C0, DEL and C1; a SKU may hold inner spaces but no padding.
    const NOT_CONTROL: &str = r"[^\x00-\x1f\x7f-\x9f]";
    const NOT_CONTROL_OR_SPACE: &str =
        r"[^\s\x00-\x1f\x7f-\x9f\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";

    impl JsonSchema for Sku {
        fn schema_name() -> Cow<'static, str> {
            "Sku".into()
        }
        fn json_schema(_: &mut SchemaGenerator) -> Schema {
            let pattern = format!("^{NOT_CONTROL_OR_SPACE}(?:{NOT_CONTROL}*{NOT_CONTROL_OR_SPACE})?$");
            json_schema!({
                "type": "string", "minLength": 1, "maxLength": Sku::MAX_LEN, "pattern": pattern,
                "description": "a stock-keeping unit, case-sensitive, without control characters or padding"
            })
        }
    }

    impl JsonSchema for Code {
        fn schema_name() -> Cow<'static, str> {
            "Code".into()
        }
        fn json_schema(_: &mut SchemaGenerator) -> Schema {
            json_schema!({
                "type": "string", "minLength": 1, "maxLength": Code::MAX_LEN, "pattern": "^[A-Za-z0-9._-]+$",
                "description": "a code naming a location, channel, entity, class or reference"
            })
        }
    }

    impl JsonSchema for CurrencyCode {
        fn schema_name() -> Cow<'static, str> {
            "CurrencyCode".into()
        }
        fn json_schema(_: &mut SchemaGenerator) -> Schema {
            json_schema!({"type": "string", "pattern": "^[A-Z]{3}$", "description": "ISO 4217"})
        }
    }

    impl JsonSchema for Date {
        fn schema_name() -> Cow<'static, str> {
            "Date".into()
        }
        fn json_schema(_: &mut SchemaGenerator) -> Schema {
            json_schema!({"type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"})
        }
    }
}

/// A count of whole base units (eaches). Signed so that deltas and outside accounts, which
/// legitimately go negative, share the type; physical buckets are kept ≥ 0 by the ledger.
pub type Units = i64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_parse_exactly_or_are_refused() {
        assert_eq!(parse_decimal("199.00", 2), Ok(19_900));
        assert_eq!(parse_decimal("5.5", 2), Ok(550));
        assert_eq!(parse_decimal("-0.07", 2), Ok(-7));
        assert_eq!(parse_decimal("12", 2), Ok(1_200));
        assert_eq!(parse_decimal("1.0842", 9), Ok(1_084_200_000));
        assert_eq!(parse_decimal("1500", 0), Ok(1_500));
        for bad in ["", "-", "1.234", "1,00", "1e3", "abc", "99999999999999999999"] {
            assert!(parse_decimal(bad, 2).is_err(), "{bad}");
        }
        assert_eq!(format_decimal(-550, 2), "-5.50");
        assert_eq!(format_decimal(7, 3), "0.007");
        assert_eq!(format_decimal(1_500, 0), "1500");
        assert_eq!(CurrencyCode::new("JPY").unwrap().exponent(), 0);
        assert_eq!(CurrencyCode::new("USD").unwrap().exponent(), 2);
    }

    proptest::proptest! {
        #[test]
        fn decimals_round_trip(value in -i64::MAX..=i64::MAX, exponent in 0u32..4) {
            proptest::prop_assert_eq!(parse_decimal(&format_decimal(value, exponent), exponent), Ok(value));
        }
    }

    #[test]
    fn sku_rejects_empty_control_and_padding() {
        assert!(matches!(Sku::new(""), Err(ParseError::Empty { .. })));
        assert!(matches!(Sku::new(" A"), Err(ParseError::Invalid { .. })));
        assert!(matches!(Sku::new("A\tB"), Err(ParseError::BadCharacter { .. })));
        assert!(matches!(Sku::new("X".repeat(65)), Err(ParseError::TooLong { .. })));
        assert_eq!(Sku::new("TEE-BLK M").unwrap().as_str(), "TEE-BLK M");
    }

    #[test]
    fn code_allows_only_safe_characters() {
        assert!(Code::new("WH-EAST_1.a").is_ok());
        let err = Code::new("WH EAST").unwrap_err();
        assert!(err.to_string().contains("' '"), "{err}");
    }

    #[test]
    fn currency_is_three_upper_case_letters() {
        assert_eq!(CurrencyCode::new("EUR").unwrap().as_str(), "EUR");
        assert!(CurrencyCode::new("eur").is_err());
        assert!(CurrencyCode::new("EURO").is_err());
    }

    #[test]
    fn dates_round_trip_and_timestamps_fall_on_dates() {
        let d: Date = "2026-11-26".parse().unwrap();
        assert_eq!(d.to_string(), "2026-11-26");
        assert_eq!(d.add_days(7).to_string(), "2026-12-03");
        assert!("2026-13-01".parse::<Date>().is_err());
        let ts = Timestamp::from_millis(i64::from(d.0) * 86_400_000 + 3_600_000);
        assert_eq!(ts.date(), d);
        assert_eq!(ts.to_string(), "2026-11-26T01:00:00.000Z");
    }

    #[test]
    fn dates_are_text_in_json() {
        let d: Date = "2026-12-03".parse().unwrap();
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, "\"2026-12-03\"");
        assert_eq!(serde_json::from_str::<Date>(&json).unwrap(), d);
        assert!(serde_json::from_str::<Date>("\"2026-02-30\"").is_err());
    }

    proptest::proptest! {
        #[test]
        fn date_display_parses_back(days in -100_000i32..100_000) {
            let d = Date(days);
            proptest::prop_assert_eq!(d.to_string().parse::<Date>().unwrap(), d);
        }
    }
}
