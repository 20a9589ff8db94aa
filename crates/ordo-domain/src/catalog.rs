//! Master data: legal entities, items (with variants, units of measure and bundle components),
//! locations and channels, plus the safety-stock rules and channel pools that feed
//! available-to-sell. Definitions are validated here, against what the catalog already holds,
//! before an event is written.

use std::collections::BTreeMap;

use ordo_types::{ChannelCode, CurrencyCode, LegalEntityCode, LocationCode, Sku, SkuClass, Units};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegalEntity {
    pub code: LegalEntityCode,
    pub name: String,
    pub functional_currency: CurrencyCode,
}

/// A sellable or stockable item. An item with `components` is a bundle (kit): it holds no stock
/// of its own and its availability is derived from its components.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Item {
    pub sku: Sku,
    pub title: String,
    /// The style (parent product) this SKU is a variant of, e.g. `TEE-CLASSIC` for `TEE-CLASSIC-BLK-M`.
    pub style: Option<String>,
    /// Variant option values, e.g. `size=M`, `colour=Black`.
    pub options: BTreeMap<String, String>,
    pub gtin: Option<Gtin>,
    /// Alternative units of measure and how many base units (eaches) each holds, e.g. `case=12`.
    pub uom_conversions: BTreeMap<String, u32>,
    pub components: Vec<Component>,
    pub sku_class: Option<SkuClass>,
}

impl Item {
    pub fn is_bundle(&self) -> bool {
        !self.components.is_empty()
    }

    /// Base units in `quantity` of `uom` (`each` or one of the item's conversions).
    pub fn to_base_units(&self, quantity: Units, uom: &str) -> Result<Units, CatalogRejection> {
        if uom == BASE_UOM {
            return Ok(quantity);
        }
        match self.uom_conversions.get(uom) {
            Some(factor) => quantity.checked_mul(Units::from(*factor)).ok_or(CatalogRejection::QuantityOutOfRange),
            None => Err(CatalogRejection::UnknownUnitOfMeasure { sku: self.sku.clone(), uom: uom.to_owned() }),
        }
    }
}

/// The base unit of measure every quantity in the ledger is counted in.
pub const BASE_UOM: &str = "each";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Component {
    pub sku: Sku,
    pub quantity: u32,
}

/// A GTIN-8/12/13/14 (UPC and EAN are GTINs), check digit verified.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Gtin(#[cfg_attr(feature = "schema", schemars(regex(pattern = "^([0-9]{8}|[0-9]{12,14})$")))] String);

impl Gtin {
    pub fn new(value: &str) -> Result<Self, CatalogRejection> {
        let bad = |reason: &'static str| CatalogRejection::InvalidGtin { value: value.to_owned(), reason };
        if !matches!(value.len(), 8 | 12 | 13 | 14) {
            return Err(bad("a GTIN has 8, 12, 13 or 14 digits"));
        }
        if !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("a GTIN has digits only"));
        }
        let digits: Vec<u32> = value.bytes().map(|b| u32::from(b - b'0')).collect();
        let (body, check) = digits.split_at(digits.len() - 1);
        let sum: u32 = body.iter().rev().enumerate().map(|(i, d)| if i % 2 == 0 { d * 3 } else { *d }).sum();
        if (10 - sum % 10) % 10 != check[0] {
            return Err(bad("the check digit does not match"));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum LocationKind {
    Warehouse,
    Store,
    ThirdPartyLogistics,
    DropShipSupplier,
}

impl LocationKind {
    pub const ALL: [LocationKind; 4] =
        [Self::Warehouse, Self::Store, Self::ThirdPartyLogistics, Self::DropShipSupplier];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Warehouse => "warehouse",
            Self::Store => "store",
            Self::ThirdPartyLogistics => "3pl",
            Self::DropShipSupplier => "drop_ship_supplier",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Address {
    pub line1: String,
    pub city: String,
    pub region: String,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
}

/// Latitude and longitude in millionths of a degree, so coordinates compare exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct GeoPoint {
    pub latitude_micro: i32,
    pub longitude_micro: i32,
}

impl GeoPoint {
    /// Parses decimal degrees such as `40.712776` without going through floating point.
    pub fn parse(latitude: &str, longitude: &str) -> Result<Self, CatalogRejection> {
        let lat = parse_micro_degrees("latitude", latitude, 90)?;
        let lon = parse_micro_degrees("longitude", longitude, 180)?;
        Ok(Self { latitude_micro: lat, longitude_micro: lon })
    }
}

fn parse_micro_degrees(field: &'static str, raw: &str, limit: i64) -> Result<i32, CatalogRejection> {
    let bad = || CatalogRejection::InvalidCoordinate { field, value: raw.to_owned() };
    let (negative, digits) = match raw.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, raw),
    };
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() || frac.len() > 6 || !whole.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let whole: i64 = whole.parse().map_err(|_| bad())?;
    let frac_micro: i64 = format!("{frac:0<6}").parse().map_err(|_| bad())?;
    let micro = whole * 1_000_000 + frac_micro;
    if micro > limit * 1_000_000 {
        return Err(bad());
    }
    Ok(if negative { -micro } else { micro } as i32)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Capabilities {
    pub ship: bool,
    pub pickup: bool,
    pub returns: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Location {
    pub code: LocationCode,
    pub name: String,
    pub kind: LocationKind,
    pub legal_entity: LegalEntityCode,
    pub address: Address,
    pub geo: Option<GeoPoint>,
    /// IANA time-zone name, e.g. `America/New_York`; cut-off times are read in it.
    pub time_zone: String,
    pub capabilities: Capabilities,
}

/// Checks the shape of an IANA zone name (`UTC` or `Area/Location[/Sub]`).
pub fn validate_time_zone(tz: &str) -> Result<(), CatalogRejection> {
    let ok = tz == "UTC"
        || (tz.contains('/')
            && tz.split('/').all(|part| {
                !part.is_empty()
                    && part.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                    && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+'))
            }));
    if ok { Ok(()) } else { Err(CatalogRejection::InvalidTimeZone { value: tz.to_owned() }) }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    Shopify,
    Amazon,
    Walmart,
    Magento,
    Edi,
    Pos,
    Other,
}

impl ChannelKind {
    pub const ALL: [ChannelKind; 7] =
        [Self::Shopify, Self::Amazon, Self::Walmart, Self::Magento, Self::Edi, Self::Pos, Self::Other];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Shopify => "shopify",
            Self::Amazon => "amazon",
            Self::Walmart => "walmart",
            Self::Magento => "magento",
            Self::Edi => "edi",
            Self::Pos => "pos",
            Self::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// How much of the stock a channel could see it is actually offered. Applied in this order:
/// fixed pools (per SKU, see [`crate::availability`]), percentage cap, buffer.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AllocationPolicy {
    /// Offer at most this percentage (1–100) of the shared stock the channel can see.
    pub percentage_cap: Option<u8>,
    /// Units held back from this channel's figure (the last units go to other channels).
    pub buffer: Units,
    /// Count open purchase-order quantity expected within this many days.
    pub incoming_window_days: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Channel {
    pub code: ChannelCode,
    pub name: String,
    pub kind: ChannelKind,
    pub legal_entity: LegalEntityCode,
    /// Locations the channel may sell from, in preference order (pools are drawn in this order).
    pub locations: Vec<LocationCode>,
    /// 1 is the highest. When stock is short, fixed pools are granted in priority order.
    pub priority: u16,
    pub allocation: AllocationPolicy,
}

/// What a safety-stock rule applies to. The most specific rule wins:
/// SKU at location, then SKU, then SKU class, then location.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SafetyStockScope {
    SkuAtLocation(Sku, LocationCode),
    Sku(Sku),
    SkuClass(SkuClass),
    Location(LocationCode),
}

/// Why a master-data command was refused, most fundamental first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogRejection {
    #[error("{field} must not be empty")]
    MissingField { field: &'static str },
    #[error("location {0} holds stock: it cannot move to another legal entity (transfer the stock first)")]
    EntityChangeWithStock(LocationCode),
    #[error("GTIN {value:?} is not valid: {reason}")]
    InvalidGtin { value: String, reason: &'static str },
    #[error("{field} {value:?} is not a decimal number of degrees in range")]
    InvalidCoordinate { field: &'static str, value: String },
    #[error("time zone {value:?} is not an IANA zone name such as America/New_York")]
    InvalidTimeZone { value: String },
    #[error("unit of measure {uom:?} is not defined for SKU {sku}")]
    UnknownUnitOfMeasure { sku: Sku, uom: String },
    #[error("unit-of-measure conversion {uom:?} must hold at least 2 base units")]
    InvalidConversion { uom: String },
    #[error("quantity is out of range")]
    QuantityOutOfRange,
    #[error("percentage cap {0} must be between 1 and 100")]
    InvalidPercentage(u8),
    #[error("buffer {0} must not be negative")]
    NegativeBuffer(Units),
    #[error("priority must be at least 1")]
    InvalidPriority,
    #[error("unknown legal entity {0}")]
    UnknownLegalEntity(LegalEntityCode),
    #[error("unknown SKU {0}")]
    UnknownSku(Sku),
    #[error("unknown location {0}")]
    UnknownLocation(LocationCode),
    #[error("unknown channel {0}")]
    UnknownChannel(ChannelCode),
    #[error("channel {0} must sell from at least one location")]
    ChannelWithoutLocations(ChannelCode),
    #[error("location {0} is listed twice")]
    DuplicateLocation(LocationCode),
    #[error("bundle {bundle} lists component {component} more than once")]
    DuplicateComponent { bundle: Sku, component: Sku },
    #[error("bundle {bundle}: component {component} must have a quantity of at least 1")]
    ZeroComponentQuantity { bundle: Sku, component: Sku },
    #[error("bundle {bundle} cannot contain itself")]
    BundleContainsItself { bundle: Sku },
    #[error("bundle {bundle}: component {component} is itself a bundle; nest components directly")]
    NestedBundle { bundle: Sku, component: Sku },
    #[error("SKU {sku} is a component of bundle {bundle} and cannot become a bundle")]
    ComponentCannotBecomeBundle { sku: Sku, bundle: Sku },
    #[error("SKU {sku} has stock or open movements and cannot become a bundle")]
    StockedItemCannotBecomeBundle { sku: Sku },
    #[error("GTIN {gtin} already belongs to SKU {sku}")]
    GtinInUse { gtin: String, sku: Sku },
    #[error("{0} is a bundle; channel pools and safety stock apply to its components")]
    BundleHasNoStock(Sku),
    #[error("safety stock {0} must not be negative")]
    NegativeSafetyStock(Units),
    #[error("pool {0} must not be negative")]
    NegativePool(Units),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gtin_check_digits() {
        assert!(Gtin::new("036000291452").is_ok()); // UPC-A
        assert!(Gtin::new("4006381333931").is_ok()); // EAN-13
        assert!(Gtin::new("96385074").is_ok()); // EAN-8
        assert!(
            matches!(Gtin::new("036000291453"), Err(CatalogRejection::InvalidGtin { reason, .. }) if reason.contains("check digit"))
        );
        assert!(Gtin::new("03600029145X").is_err());
        assert!(Gtin::new("123").is_err());
    }

    #[test]
    fn coordinates_parse_exactly() {
        let p = GeoPoint::parse("40.712776", "-74.005974").unwrap();
        assert_eq!(p, GeoPoint { latitude_micro: 40_712_776, longitude_micro: -74_005_974 });
        assert_eq!(GeoPoint::parse("-0.5", "0").unwrap().latitude_micro, -500_000);
        assert!(GeoPoint::parse("91", "0").is_err());
        assert!(GeoPoint::parse("40.1234567", "0").is_err());
        assert!(GeoPoint::parse("north", "0").is_err());
    }

    #[test]
    fn time_zones_are_shaped_like_iana_names() {
        for ok in ["UTC", "America/New_York", "America/Argentina/Buenos_Aires", "Etc/GMT+5"] {
            assert!(validate_time_zone(ok).is_ok(), "{ok}");
        }
        for bad in ["", "EST5", "america/new_york", "Europe/"] {
            assert!(validate_time_zone(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn units_of_measure_convert_to_eaches() {
        let item = Item {
            sku: Sku::new("MUG").unwrap(),
            title: "Mug".into(),
            style: None,
            options: BTreeMap::new(),
            gtin: None,
            uom_conversions: BTreeMap::from([("case".to_owned(), 12)]),
            components: vec![],
            sku_class: None,
        };
        assert_eq!(item.to_base_units(3, "case").unwrap(), 36);
        assert_eq!(item.to_base_units(3, "each").unwrap(), 3);
        assert!(matches!(item.to_base_units(1, "pallet"), Err(CatalogRejection::UnknownUnitOfMeasure { .. })));
    }
}
