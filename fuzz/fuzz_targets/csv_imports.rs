//! Any bytes as an item, location, movement or POS sales CSV file: read or refused with line,
//! column and value, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ordo_domain::csv_import::parse_items(data);
    let _ = ordo_domain::csv_import::parse_locations(data);
    let _ = ordo_domain::csv_import::parse_movements(data, &ordo_domain::State::new());
    let _ = ordo_channels::pos::parse(data, ordo_types::Code::new("POS").expect("valid code"));
});
