//! What the channels must be told when a business event is journaled, as outbox messages written
//! in the same transaction as the event (the relay delivers them later, at least once): a
//! shipment to confirm, a refund to pass on, an EDI document to send. Availability changes are
//! queued by the engine per batch (coalesced), not here.

use serde_json::json;

use crate::orders::book::OrderEvent;
use crate::orders::model::LineItem;
use crate::returns::ReturnEvent;
use crate::state::Event;
use ordo_types::Timestamp;

pub const SHIPMENT_CONFIRMED: &str = "shipment_confirmed";
pub const REFUND_ISSUED: &str = "refund_issued";
pub const EDI_DOCUMENT: &str = "edi_document";
pub const AVAILABILITY_CHANGED: &str = "availability_changed";

/// One message for the outbox: its topic, its partition key (messages of one key are delivered
/// in order) and its JSON payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    pub topic: &'static str,
    pub key: String,
    pub payload: String,
}

/// The messages `event` (decided at `now`) owes the channels.
pub fn messages_of(event: &Event, now: Timestamp) -> Vec<OutboxMessage> {
    match event.effect() {
        // A replacement order of an exchange is Ordo's, not the channel's: nothing to confirm.
        Event::Order(OrderEvent::Recorded { record, movements })
            if movements.iter().any(|m| matches!(m.kind, crate::inventory::MovementKind::Ship))
                && record.order.exchange_of().is_none() =>
        {
            // A ship command adds exactly one shipment: the record's last.
            let Some(index) = record.shipments.len().checked_sub(1) else { return Vec::new() };
            let shipment = &record.shipments[index];
            let lines: Vec<_> = record
                .shipment_share(index)
                .into_iter()
                .map(|s| {
                    let (sku, listing) = match &s.item {
                        LineItem::Sku(sku) => (Some(sku.to_string()), None),
                        LineItem::Listing(l) => (None, Some(l.clone())),
                    };
                    json!({"line_id": s.line_id, "sku": sku, "listing": listing, "quantity": s.quantity, "uom": s.uom})
                })
                .collect();
            let key = record.key();
            vec![OutboxMessage {
                topic: SHIPMENT_CONFIRMED,
                key: key.to_string(),
                payload: json!({
                    "channel": key.channel.as_str(),
                    "channel_order_id": key.channel_order_id,
                    "shipment_id": shipment.shipment_id,
                    "location": shipment.location.as_str(),
                    "carrier": shipment.carrier,
                    "service": shipment.service,
                    "tracking": shipment.tracking,
                    "shipped_at": shipment.shipped_at.millis(),
                    "lines": lines,
                })
                .to_string(),
            }]
        }
        Event::Returns(ReturnEvent::Recorded { rma, .. }) => refund_message(rma, &[], now).into_iter().collect(),
        Event::Returns(ReturnEvent::Exchanged { rma, exchange, .. }) => {
            refund_message(rma, &exchange.lines, now).into_iter().collect()
        }
        Event::Returns(ReturnEvent::ExchangeRefunded { rma_id, order, lines, refund }) => vec![OutboxMessage {
            topic: REFUND_ISSUED,
            key: order.to_string(),
            payload: json!({
                "channel": order.channel.as_str(),
                "channel_order_id": order.channel_order_id,
                "rma_id": rma_id,
                "amount_minor": refund.amount_minor,
                "net_minor": refund.net_minor,
                "tax_minor": refund.tax_minor,
                "restocking_fee_minor": 0,
                "return_shipping_minor": 0,
                "lines": lines.iter().map(|(l, u)| json!({"line_id": l, "units": u})).collect::<Vec<_>>(),
            })
            .to_string(),
        }],
        Event::Edi(crate::edi::EdiEvent::Sent { channel, document, .. }) => vec![OutboxMessage {
            topic: EDI_DOCUMENT,
            key: channel.to_string(),
            payload: json!({
                "channel": channel.as_str(),
                "set_code": document.set_code,
                "control_number": document.control_number,
                "reference": document.reference,
                "text": document.text,
            })
            .to_string(),
        }],
        _ => Vec::new(),
    }
}

/// The refund `rma` owes the channel, if the step decided at `now` refunded it: its lines but
/// those `exchanged` (settled with a replacement, not money).
fn refund_message(
    rma: &crate::returns::Rma,
    exchanged: &[(String, ordo_types::Sku)],
    now: Timestamp,
) -> Option<OutboxMessage> {
    let refund = rma.refund.as_ref().filter(|r| r.at == now)?;
    let lines: Vec<_> = rma
        .lines
        .iter()
        .filter(|l| !exchanged.iter().any(|(id, _)| *id == l.order_line_id))
        .map(|l| json!({"line_id": l.order_line_id, "sku": l.sku.as_str(), "units": l.units}))
        .collect();
    Some(OutboxMessage {
        topic: REFUND_ISSUED,
        key: rma.order.to_string(),
        payload: json!({
            "channel": rma.order.channel.as_str(),
            "channel_order_id": rma.order.channel_order_id,
            "rma_id": rma.rma_id,
            "amount_minor": refund.amount_minor,
            "net_minor": refund.net_minor,
            "tax_minor": refund.tax_minor,
            "restocking_fee_minor": refund.restocking_fee_minor,
            "return_shipping_minor": refund.return_shipping_minor,
            "lines": lines,
        })
        .to_string(),
    })
}
