//! EDI trading-partner bookkeeping: which interchanges each partner sent (a re-sent interchange
//! — same sender, same ISA13 — is recognised and ignored), the control numbers Ordo issues to
//! each partner (never repeated: ISA13 is how partners spot duplicates), and the documents Ordo
//! sent (997, 855, 846, 856, 810), kept in the journal and queued in the outbox with the change
//! that caused them.

use std::collections::BTreeMap;

use ordo_types::{ChannelCode, Timestamp};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EdiCommand {
    /// An inbound interchange: refused when the partner already sent this control number.
    Receive { channel: ChannelCode, sender: String, control_number: String },
    /// Issue the next `count` outbound control numbers for the partner on `channel`.
    IssueControlNumbers { channel: ChannelCode, count: u32 },
    /// A document Ordo sends the partner, written under a control number it issued.
    Send { channel: ChannelCode, document: EdiDocument },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdiDocument {
    /// The transaction set: `997`, `855`, `846`, `856`, `810`.
    pub set_code: String,
    pub control_number: u32,
    /// What it answers or describes: an interchange, a PO number, a shipment.
    pub reference: String,
    /// The interchange text, as sent.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EdiEvent {
    Received { channel: ChannelCode, sender: String, control_number: String, at: Timestamp },
    ControlNumbersIssued { channel: ChannelCode, first: u32, count: u32 },
    Sent { channel: ChannelCode, document: EdiDocument, at: Timestamp },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EdiRejection {
    #[error("unknown channel {0}")]
    UnknownChannel(ChannelCode),
    #[error("interchange {control_number} from {sender} on {channel} was already received at {at}")]
    DuplicateInterchange { channel: ChannelCode, sender: String, control_number: String, at: Timestamp },
    #[error("control numbers are 1 to 999999999; {channel} would pass the last")]
    ControlNumbersExhausted { channel: ChannelCode },
    #[error("control number {control_number} was not issued to {channel}")]
    ControlNumberNotIssued { channel: ChannelCode, control_number: u32 },
    #[error("control number {control_number} was already used for a {set_code} to {channel}")]
    ControlNumberUsed { channel: ChannelCode, control_number: u32, set_code: String },
}

/// A document as kept (the text lives in the journal; the state keeps what finds it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentDocument {
    pub set_code: String,
    pub control_number: u32,
    pub reference: String,
    pub sent_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Partners {
    /// `(channel, sender, ISA13)` → when it arrived.
    received: BTreeMap<(ChannelCode, String, String), Timestamp>,
    /// The last control number issued per channel.
    issued: BTreeMap<ChannelCode, u32>,
    sent: BTreeMap<ChannelCode, Vec<SentDocument>>,
}

const MAX_CONTROL: u32 = 999_999_999;

impl Partners {
    pub fn received_at(&self, channel: &ChannelCode, sender: &str, control_number: &str) -> Option<Timestamp> {
        self.received.get(&(channel.clone(), sender.to_owned(), control_number.to_owned())).copied()
    }

    /// The sender of the partner's latest interchange on `channel`: where answers and advices go
    /// unless told otherwise.
    pub fn last_sender(&self, channel: &ChannelCode) -> Option<&str> {
        self.received
            .iter()
            .filter(|((c, _, _), _)| c == channel)
            .max_by_key(|(_, at)| **at)
            .map(|((_, sender, _), _)| sender.as_str())
    }

    pub fn sent(&self, channel: &ChannelCode) -> &[SentDocument] {
        self.sent.get(channel).map_or(&[], Vec::as_slice)
    }

    pub fn last_issued(&self, channel: &ChannelCode) -> u32 {
        self.issued.get(channel).copied().unwrap_or(0)
    }

    pub(crate) fn decide(
        &self,
        command: &EdiCommand,
        channel_known: impl Fn(&ChannelCode) -> bool,
        now: Timestamp,
    ) -> Result<EdiEvent, EdiRejection> {
        let channel = match command {
            EdiCommand::Receive { channel, .. }
            | EdiCommand::IssueControlNumbers { channel, .. }
            | EdiCommand::Send { channel, .. } => channel,
        };
        if !channel_known(channel) {
            return Err(EdiRejection::UnknownChannel(channel.clone()));
        }
        match command {
            EdiCommand::Receive { channel, sender, control_number } => {
                if let Some(at) = self.received_at(channel, sender, control_number) {
                    return Err(EdiRejection::DuplicateInterchange {
                        channel: channel.clone(),
                        sender: sender.clone(),
                        control_number: control_number.clone(),
                        at,
                    });
                }
                Ok(EdiEvent::Received {
                    channel: channel.clone(),
                    sender: sender.clone(),
                    control_number: control_number.clone(),
                    at: now,
                })
            }
            EdiCommand::IssueControlNumbers { channel, count } => {
                let last = self.last_issued(channel);
                if last.checked_add(*count).is_none_or(|end| end > MAX_CONTROL) {
                    return Err(EdiRejection::ControlNumbersExhausted { channel: channel.clone() });
                }
                Ok(EdiEvent::ControlNumbersIssued { channel: channel.clone(), first: last + 1, count: *count })
            }
            EdiCommand::Send { channel, document } => {
                let n = document.control_number;
                if n == 0 || n > self.last_issued(channel) {
                    return Err(EdiRejection::ControlNumberNotIssued { channel: channel.clone(), control_number: n });
                }
                if let Some(used) = self.sent(channel).iter().find(|d| d.control_number == n) {
                    return Err(EdiRejection::ControlNumberUsed {
                        channel: channel.clone(),
                        control_number: n,
                        set_code: used.set_code.clone(),
                    });
                }
                Ok(EdiEvent::Sent { channel: channel.clone(), document: document.clone(), at: now })
            }
        }
    }

    pub(crate) fn apply(&mut self, event: &EdiEvent) {
        match event {
            EdiEvent::Received { channel, sender, control_number, at } => {
                self.received.insert((channel.clone(), sender.clone(), control_number.clone()), *at);
            }
            EdiEvent::ControlNumbersIssued { channel, first, count } => {
                self.issued.insert(channel.clone(), first + count - 1);
            }
            EdiEvent::Sent { channel, document, at } => {
                self.sent.entry(channel.clone()).or_default().push(SentDocument {
                    set_code: document.set_code.clone(),
                    control_number: document.control_number,
                    reference: document.reference.clone(),
                    sent_at: *at,
                });
            }
        }
    }
}
