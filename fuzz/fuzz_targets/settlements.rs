//! Any bytes as an Amazon V2 settlement report, a Shopify payouts or balance transactions
//! document: read or refused with a message, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let channel = ordo_types::Code::new("AMZ").expect("valid code");
    let _ = ordo_channels::amazon::settlement::parse(&text, channel.clone());
    let _ = ordo_channels::shopify::payouts::parse(&text, channel.clone());
    let _ = ordo_channels::shopify::balance::parse(&text, channel);
});
