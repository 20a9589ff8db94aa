//! CSV formats for bulk master data and movements. Parsing turns each data line into a command
//! or an error naming the line, column and value; nothing is applied here. The importer then
//! submits the whole file as one atomic group, so a file is either fully applied or not at all.
//!
//! Items: `sku,title,style,options,gtin,uom_conversions,components,sku_class`
//! (`options` = `size=M;colour=Black`, `uom_conversions` = `case=12;inner=6`,
//! `components` = `SKU-A:1;SKU-B:2`). Locations: `code,name,kind,legal_entity,address_line1,city,
//! region,postal_code,country,latitude,longitude,time_zone,capabilities` (`capabilities` =
//! `ship;pickup;returns`). Movements: `type,sku,location,quantity,uom,reason,reference,to_location,
//! expected_on`. Only `sku,title` (items), `code,name,kind,legal_entity,time_zone` (locations) and
//! `type` (movements) are required columns; the others may be left out.

use std::collections::BTreeMap;

use ordo_types::{Code, Date, Sku, Units};

use crate::State;
use crate::catalog::{Address, Capabilities, Component, GeoPoint, Gtin, Item, Location, LocationKind};
use crate::inventory::{Disposition, MoveCommand, ReasonCode};
use crate::state::Command;

/// A CSV problem at a line (1-based, the header is line 1) and, where known, a column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}{}: {message}", column.as_ref().map(|c| format!(", column {c}")).unwrap_or_default())]
pub struct CsvError {
    pub line: u64,
    pub column: Option<String>,
    pub message: String,
}

/// One parsed data line and the command it became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvCommand {
    pub line: u64,
    pub command: Command,
}

struct Sheet {
    headers: Vec<String>,
    rows: Vec<(u64, csv::StringRecord)>,
}

fn read_sheet(data: &[u8], known: &[&str], required: &[&str]) -> Result<Sheet, CsvError> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).flexible(false).from_reader(data);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| CsvError { line: 1, column: None, message: e.to_string() })?
        .iter()
        .map(str::to_owned)
        .collect();
    for h in &headers {
        if !known.contains(&h.as_str()) {
            return Err(CsvError {
                line: 1,
                column: Some(h.clone()),
                message: format!("unknown column; expected some of: {}", known.join(", ")),
            });
        }
    }
    for r in required {
        if !headers.iter().any(|h| h == r) {
            return Err(CsvError {
                line: 1,
                column: Some((*r).to_owned()),
                message: "required column is missing".into(),
            });
        }
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| CsvError {
            line: e.position().map_or(0, |p| line_at(data, p)),
            column: None,
            message: match e.kind() {
                csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
                    format!("expected {expected_len} fields like the header, found {len}")
                }
                _ => e.to_string(),
            },
        })?;
        let line = record.position().map_or(0, |p| line_at(data, p));
        rows.push((line, record));
    }
    if rows.is_empty() {
        return Err(CsvError { line: 1, column: None, message: "the file has a header but no data lines".into() });
    }
    Ok(Sheet { headers, rows })
}

/// The 1-based line a record starts on, counted from its byte offset: the csv crate's own line
/// counter is off by one for CRLF files (what spreadsheet exports produce).
fn line_at(data: &[u8], position: &csv::Position) -> u64 {
    // After a CRLF record the reported offset can sit on the '\n' that ends the previous line.
    let mut end = (position.byte() as usize).min(data.len());
    if data.get(end) == Some(&b'\n') {
        end += 1;
    }
    data[..end].iter().filter(|b| **b == b'\n').count() as u64 + 1
}

struct Row<'a> {
    line: u64,
    headers: &'a [String],
    record: &'a csv::StringRecord,
}

impl Row<'_> {
    fn get(&self, column: &str) -> &str {
        self.headers.iter().position(|h| h == column).and_then(|i| self.record.get(i)).unwrap_or("")
    }

    fn error(&self, column: &str, message: impl Into<String>) -> CsvError {
        let value = self.get(column);
        let message = message.into();
        CsvError {
            line: self.line,
            column: Some(column.to_owned()),
            message: if value.is_empty() { message } else { format!("{value:?}: {message}") },
        }
    }

    fn required(&self, column: &str) -> Result<&str, CsvError> {
        match self.get(column) {
            "" => Err(self.error(column, "a value is required")),
            v => Ok(v),
        }
    }

    fn optional(&self, column: &str) -> Option<&str> {
        Some(self.get(column)).filter(|v| !v.is_empty())
    }

    fn parse<T, E: std::fmt::Display>(
        &self,
        column: &str,
        f: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<T, CsvError> {
        f(self.required(column)?).map_err(|e| self.error(column, e.to_string()))
    }

    /// `k=v;k=v` pairs.
    fn pairs(&self, column: &str) -> Result<Vec<(String, String)>, CsvError> {
        let Some(raw) = self.optional(column) else {
            return Ok(Vec::new());
        };
        raw.split(';')
            .map(|pair| {
                let (k, v) = pair
                    .split_once(['=', ':'])
                    .ok_or_else(|| self.error(column, format!("{pair:?} is not name=value")))?;
                let (k, v) = (k.trim(), v.trim());
                if k.is_empty() || v.is_empty() {
                    return Err(self.error(column, format!("{pair:?} is not name=value")));
                }
                Ok((k.to_owned(), v.to_owned()))
            })
            .collect()
    }
}

fn each_row<T>(sheet: &Sheet, mut f: impl FnMut(&Row<'_>) -> Result<T, CsvError>) -> Result<Vec<(u64, T)>, CsvError> {
    sheet
        .rows
        .iter()
        .map(|(line, record)| {
            let row = Row { line: *line, headers: &sheet.headers, record };
            f(&row).map(|t| (*line, t))
        })
        .collect()
}

const ITEM_COLUMNS: [&str; 8] =
    ["sku", "title", "style", "options", "gtin", "uom_conversions", "components", "sku_class"];

pub fn parse_items(data: &[u8]) -> Result<Vec<CsvCommand>, CsvError> {
    let sheet = read_sheet(data, &ITEM_COLUMNS, &["sku", "title"])?;
    let mut seen: BTreeMap<Sku, u64> = BTreeMap::new();
    let rows = each_row(&sheet, |row| {
        let sku = row.parse("sku", str::parse::<Sku>)?;
        if let Some(first) = seen.insert(sku.clone(), row.line) {
            return Err(row.error("sku", format!("duplicate of line {first}")));
        }
        let gtin = match row.optional("gtin") {
            Some(g) => Some(Gtin::new(g).map_err(|e| row.error("gtin", e.to_string()))?),
            None => None,
        };
        let mut uom_conversions = BTreeMap::new();
        for (uom, factor) in row.pairs("uom_conversions")? {
            let factor: u32 = factor.parse().ok().filter(|f| *f >= 2).ok_or_else(|| {
                row.error("uom_conversions", format!("{uom}={factor}: a factor is a whole number ≥ 2"))
            })?;
            uom_conversions.insert(uom, factor);
        }
        let mut components = Vec::new();
        for (sku, quantity) in row.pairs("components")? {
            let sku = Sku::new(sku).map_err(|e| row.error("components", e.to_string()))?;
            let quantity: u32 = quantity.parse().ok().filter(|q| *q >= 1).ok_or_else(|| {
                row.error("components", format!("{sku}:{quantity}: a quantity is a whole number ≥ 1"))
            })?;
            components.push(Component { sku, quantity });
        }
        let sku_class = match row.optional("sku_class") {
            Some(c) => Some(Code::new(c).map_err(|e| row.error("sku_class", e.to_string()))?),
            None => None,
        };
        Ok(Command::DefineItem(Item {
            sku,
            title: row.required("title")?.to_owned(),
            style: row.optional("style").map(str::to_owned),
            options: row.pairs("options")?.into_iter().collect(),
            gtin,
            uom_conversions,
            components,
            sku_class,
        }))
    })?;
    // Bundles may name components defined further down the file: define plain items first.
    let mut commands: Vec<CsvCommand> = rows.into_iter().map(|(line, command)| CsvCommand { line, command }).collect();
    commands.sort_by_key(|c| matches!(&c.command, Command::DefineItem(i) if i.is_bundle()));
    Ok(commands)
}

const LOCATION_COLUMNS: [&str; 13] = [
    "code",
    "name",
    "kind",
    "legal_entity",
    "address_line1",
    "city",
    "region",
    "postal_code",
    "country",
    "latitude",
    "longitude",
    "time_zone",
    "capabilities",
];

pub fn parse_locations(data: &[u8]) -> Result<Vec<CsvCommand>, CsvError> {
    let sheet = read_sheet(data, &LOCATION_COLUMNS, &["code", "name", "kind", "legal_entity", "time_zone"])?;
    let rows = each_row(&sheet, |row| {
        let kind_names: Vec<&str> = LocationKind::ALL.iter().map(|k| k.as_str()).collect();
        let kind = LocationKind::parse(row.required("kind")?)
            .ok_or_else(|| row.error("kind", format!("expected one of {}", kind_names.join(", "))))?;
        let geo = match (row.optional("latitude"), row.optional("longitude")) {
            (None, None) => None,
            (Some(lat), Some(lon)) => Some(GeoPoint::parse(lat, lon).map_err(|e| {
                let column = if GeoPoint::parse(lat, "0").is_err() { "latitude" } else { "longitude" };
                row.error(column, e.to_string())
            })?),
            (Some(_), None) => {
                return Err(row.error("longitude", "latitude is given, longitude is missing"));
            }
            (None, Some(_)) => {
                return Err(row.error("latitude", "longitude is given, latitude is missing"));
            }
        };
        let mut capabilities = Capabilities::default();
        if let Some(raw) = row.optional("capabilities") {
            for cap in raw.split(';').map(str::trim) {
                match cap {
                    "ship" => capabilities.ship = true,
                    "pickup" => capabilities.pickup = true,
                    "returns" => capabilities.returns = true,
                    other => {
                        return Err(row.error("capabilities", format!("{other:?} is not one of ship, pickup, returns")));
                    }
                }
            }
        }
        let time_zone = row.required("time_zone")?.to_owned();
        crate::catalog::validate_time_zone(&time_zone).map_err(|e| row.error("time_zone", e.to_string()))?;
        Ok(Command::DefineLocation(Location {
            code: row.parse("code", str::parse::<Code>)?,
            name: row.required("name")?.to_owned(),
            kind,
            legal_entity: row.parse("legal_entity", str::parse::<Code>)?,
            address: Address {
                line1: row.get("address_line1").to_owned(),
                city: row.get("city").to_owned(),
                region: row.get("region").to_owned(),
                postal_code: row.get("postal_code").to_owned(),
                country: row.get("country").to_owned(),
            },
            geo,
            time_zone,
            capabilities,
        }))
    })?;
    Ok(rows.into_iter().map(|(line, command)| CsvCommand { line, command }).collect())
}

const MOVEMENT_COLUMNS: [&str; 9] =
    ["type", "sku", "location", "quantity", "uom", "reason", "reference", "to_location", "expected_on"];

/// The movement types a movement CSV (and `ordo move`) accepts.
pub const MOVEMENT_TYPES: [&str; 17] = [
    "receipt",
    "expect",
    "cancel_expectation",
    "transfer_ship",
    "transfer_receive",
    "commit",
    "release",
    "pick",
    "ship",
    "return_receipt",
    "restock",
    "damage",
    "write_off",
    "hold",
    "unhold",
    "count",
    "adjust",
];

/// Parses a movement CSV. Quantities are converted to base units with each item's unit of
/// measure (`uom`, default `each`), so `state` is needed to look the item up.
pub fn parse_movements(data: &[u8], state: &State) -> Result<Vec<CsvCommand>, CsvError> {
    let sheet = read_sheet(data, &MOVEMENT_COLUMNS, &["type"])?;
    let rows = each_row(&sheet, |row| {
        let sku = || row.parse("sku", str::parse::<Sku>);
        let location = |column: &str| row.parse(column, str::parse::<Code>);
        let reference = || row.parse("reference", str::parse::<Code>);
        let quantity = |sku: Option<&Sku>| -> Result<Units, CsvError> {
            let raw: Units = row.parse("quantity", |q| q.parse::<Units>().map_err(|_| "not a whole number"))?;
            let uom = row.optional("uom").unwrap_or(crate::catalog::BASE_UOM);
            match (sku.and_then(|s| state.item(s)), uom) {
                (_, crate::catalog::BASE_UOM) => Ok(raw),
                (Some(item), uom) => item.to_base_units(raw, uom).map_err(|e| row.error("uom", e.to_string())),
                (None, _) => Err(row.error("uom", "a unit of measure needs a known SKU")),
            }
        };
        let reason = || {
            row.parse("reason", |r| {
                ReasonCode::parse(r).ok_or_else(|| {
                    format!("not a reason code; use one of {}", ReasonCode::ALL.map(|r| r.as_str()).join(", "))
                })
            })
        };
        let kind = row.required("type")?;
        let command = match kind {
            "receipt" => {
                let sku = sku()?;
                let expectation = match row.optional("reference") {
                    Some(_) => Some(reference()?),
                    None => None,
                };
                MoveCommand::Receipt { units: quantity(Some(&sku))?, sku, location: location("location")?, expectation }
            }
            "expect" => {
                let sku = sku()?;
                MoveCommand::Expect {
                    expectation: reference()?,
                    units: quantity(Some(&sku))?,
                    sku,
                    location: location("location")?,
                    expected_on: row.parse("expected_on", str::parse::<Date>)?,
                }
            }
            "cancel_expectation" => MoveCommand::CancelExpectation { expectation: reference()? },
            "transfer_ship" => {
                let sku = sku()?;
                MoveCommand::TransferShip {
                    transfer: reference()?,
                    units: quantity(Some(&sku))?,
                    sku,
                    from: location("location")?,
                    to: location("to_location")?,
                }
            }
            "transfer_receive" => MoveCommand::TransferReceive { transfer: reference()?, units: quantity(None)? },
            "commit" => {
                let sku = sku()?;
                MoveCommand::Commit {
                    reservation: reference()?,
                    units: quantity(Some(&sku))?,
                    sku,
                    location: location("location")?,
                }
            }
            "release" => MoveCommand::Release {
                reservation: reference()?,
                units: match row.optional("quantity") {
                    Some(_) => Some(quantity(None)?),
                    None => None,
                },
            },
            "pick" => MoveCommand::Pick { reservation: reference()?, units: quantity(None)? },
            "ship" => MoveCommand::Ship { reservation: reference()?, units: quantity(None)? },
            "return_receipt" => {
                let sku = sku()?;
                MoveCommand::ReturnReceipt {
                    units: quantity(Some(&sku))?,
                    sku,
                    location: location("location")?,
                    reference: match row.optional("reference") {
                        Some(_) => Some(reference()?),
                        None => None,
                    },
                }
            }
            "restock" | "damage" => {
                let sku = sku()?;
                MoveCommand::Dispose {
                    units: quantity(Some(&sku))?,
                    sku,
                    location: location("location")?,
                    disposition: if kind == "restock" { Disposition::Restock } else { Disposition::Damaged },
                }
            }
            "write_off" => {
                let sku = sku()?;
                MoveCommand::WriteOff {
                    units: quantity(Some(&sku))?,
                    sku,
                    location: location("location")?,
                    reason: reason()?,
                }
            }
            "hold" => {
                let sku = sku()?;
                MoveCommand::Hold {
                    units: quantity(Some(&sku))?,
                    sku,
                    location: location("location")?,
                    reason: reason()?,
                }
            }
            "unhold" => {
                let sku = sku()?;
                MoveCommand::Unhold { units: quantity(Some(&sku))?, sku, location: location("location")? }
            }
            "count" => {
                let sku = sku()?;
                MoveCommand::Count { counted_on_hand: quantity(Some(&sku))?, sku, location: location("location")? }
            }
            "adjust" => {
                let sku = sku()?;
                MoveCommand::Adjust {
                    delta: quantity(Some(&sku))?,
                    sku,
                    location: location("location")?,
                    reason: reason()?,
                }
            }
            other => {
                return Err(row.error(
                    "type",
                    format!("{other:?} is not a movement type; use one of {}", MOVEMENT_TYPES.join(", ")),
                ));
            }
        };
        Ok(Command::Move(command))
    })?;
    Ok(rows.into_iter().map(|(line, command)| CsvCommand { line, command }).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_numbers_are_right_for_lf_and_crlf_files() {
        for newline in ["\n", "\r\n"] {
            let csv = ["sku,title,gtin", "A,Alpha,", "B,Beta,", "C,Gamma,123", ""].join(newline);
            let err = parse_items(csv.as_bytes()).unwrap_err();
            assert_eq!((err.line, err.column.as_deref()), (4, Some("gtin")), "{newline:?}");
            let csv = ["sku,title", "A,Alpha", "B,Beta,extra", ""].join(newline);
            assert_eq!(parse_items(csv.as_bytes()).unwrap_err().line, 3, "{newline:?}");
        }
    }

    #[test]
    fn items_parse_with_variants_uoms_and_bundles_after_components() {
        let csv = "sku,title,style,options,gtin,uom_conversions,components,sku_class\n\
                   GIFT,Gift set,,,,,TEE-M:1;MUG:2,\n\
                   TEE-M,Tee M,TEE,size=M;colour=Black,036000291452,case=12,,apparel\n\
                   MUG,Mug,,,,,,\n";
        let commands = parse_items(csv.as_bytes()).unwrap();
        assert_eq!(commands.len(), 3);
        let Command::DefineItem(last) = &commands[2].command else { panic!() };
        assert_eq!(last.sku.as_str(), "GIFT");
        assert_eq!(commands[2].line, 2);
        let Command::DefineItem(tee) = &commands[0].command else { panic!() };
        assert_eq!(tee.options.get("size").map(String::as_str), Some("M"));
        assert_eq!(tee.uom_conversions.get("case"), Some(&12));
        assert_eq!(last.components[1], Component { sku: Sku::new("MUG").unwrap(), quantity: 2 });
    }

    #[test]
    fn item_errors_name_line_column_and_value() {
        let csv = "sku,title,gtin\nA,Alpha,\nB,Beta,12345\n";
        let err = parse_items(csv.as_bytes()).unwrap_err();
        assert_eq!(err.line, 3);
        assert_eq!(err.column.as_deref(), Some("gtin"));
        assert!(err.to_string().contains("\"12345\""), "{err}");

        let err = parse_items(b"sku,title\nA,Alpha\nA,Again\n").unwrap_err();
        assert_eq!((err.line, err.column.as_deref()), (3, Some("sku")));
        assert!(err.message.contains("duplicate of line 2"));

        let err = parse_items(b"sku,title,colour\nA,Alpha,red\n").unwrap_err();
        assert_eq!((err.line, err.column.as_deref()), (1, Some("colour")));

        let err = parse_items(b"sku,title\nA,Alpha,extra\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.message.contains("expected 2 fields"), "{err}");

        let err = parse_items(b"sku\nA\n").unwrap_err();
        assert_eq!(err.column.as_deref(), Some("title"));

        let err = parse_items(b"sku,title,components\nB,Bundle,A:0\n").unwrap_err();
        assert_eq!(err.column.as_deref(), Some("components"));
    }

    #[test]
    fn locations_parse_and_report_bad_coordinates() {
        let ok = "code,name,kind,legal_entity,latitude,longitude,time_zone,capabilities\n\
                  WH1,East DC,warehouse,US,40.7,-74.0,America/New_York,ship;returns\n";
        let commands = parse_locations(ok.as_bytes()).unwrap();
        let Command::DefineLocation(l) = &commands[0].command else { panic!() };
        assert!(l.capabilities.ship && l.capabilities.returns && !l.capabilities.pickup);
        assert_eq!(l.geo.unwrap().latitude_micro, 40_700_000);

        let bad = "code,name,kind,legal_entity,latitude,longitude,time_zone\n\
                   WH1,East DC,warehouse,US,40.7,-74.0,America/New_York\n\
                   ST1,Store,store,US,40.7,-200,America/New_York\n";
        let err = parse_locations(bad.as_bytes()).unwrap_err();
        assert_eq!((err.line, err.column.as_deref()), (3, Some("longitude")));

        let bad_kind = "code,name,kind,legal_entity,time_zone\nX,X,depot,US,UTC\n";
        let err = parse_locations(bad_kind.as_bytes()).unwrap_err();
        assert_eq!((err.line, err.column.as_deref()), (2, Some("kind")));
        assert!(err.message.contains("warehouse"));
    }

    #[test]
    fn movements_parse_types_and_reject_unknown_ones() {
        let state = State::new();
        let csv = "type,sku,location,quantity,reason,reference\n\
                   receipt,A,WH1,10,,\n\
                   adjust,A,WH1,-2,lost,\n\
                   commit,A,WH1,3,,R1\n\
                   release,,,,,R1\n";
        let commands = parse_movements(csv.as_bytes(), &state).unwrap();
        assert_eq!(commands.len(), 4);
        assert!(matches!(commands[3].command, Command::Move(MoveCommand::Release { units: None, .. })));

        let err = parse_movements(b"type,sku,location,quantity\nteleport,A,WH1,1\n", &state).unwrap_err();
        assert_eq!((err.line, err.column.as_deref()), (2, Some("type")));
        let err = parse_movements(b"type,sku,location,quantity\nreceipt,A,WH1,ten\n", &state).unwrap_err();
        assert_eq!((err.line, err.column.as_deref()), (2, Some("quantity")));
        let err = parse_movements(b"type,sku,location,quantity,reason\nadjust,A,WH1,1,because\n", &state).unwrap_err();
        assert_eq!(err.column.as_deref(), Some("reason"));
    }
}
