//! Any bytes as a channel's order document (Shopify, Walmart, Magento, Amazon getOrders and
//! getOrderItems, Ordo's canonical order) or a Shopify refund: mapped or refused with a message,
//! never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let channel = ordo_types::Code::new("WEB").expect("valid code");
    let _ = ordo_channels::shopify::orders::parse(&text, channel.clone());
    let _ = ordo_channels::walmart::orders::parse(&text, channel.clone());
    let _ = ordo_channels::magento::orders::parse(&text, channel.clone());
    let _ = ordo_channels::amazon::orders::pair(&[text.to_string()], &[text.to_string()], &channel);
    let _ = serde_json::from_str::<ordo_domain::orders::model::Order>(&text);
    let _ = ordo_channels::shopify::orders::verify_webhook(b"secret", data, &text);
    let _ = ordo_channels::shopify::refunds::order_of(&text);
    for currency in ["USD", "JPY", "KWD"] {
        let currency = ordo_types::CurrencyCode::new(currency).expect("valid currency");
        if let Ok(refund) = ordo_channels::shopify::refunds::parse(&text, currency) {
            let _ = refund.canonical(channel.clone());
        }
    }
});
