//! Dead letters: outside payloads Ordo could not read — a malformed webhook body, an order file
//! that does not map — kept raw with the reason, in the journal, so nothing a channel sent is
//! lost and an operator can fix the cause and redrive it.

use serde::{Deserialize, Serialize};

use ordo_types::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub id: u64,
    /// Where it came from: `shopify-webhook:WEB`, `import:shopify-order:WEB`, …
    pub source: String,
    pub received_at: Timestamp,
    pub reason: String,
    pub raw: String,
    /// When it was redriven, and what came of it.
    pub redriven: Option<(Timestamp, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeadLetterCommand {
    Keep { source: String, reason: String, raw: String },
    MarkRedriven { id: u64, outcome: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeadLetterEvent {
    Kept(DeadLetter),
    Redriven { id: u64, at: Timestamp, outcome: String },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeadLetterRejection {
    #[error("unknown dead letter {0}")]
    Unknown(u64),
    #[error("dead letter {0} was already redriven")]
    AlreadyRedriven(u64),
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DeadLetters {
    letters: Vec<DeadLetter>,
}

impl DeadLetters {
    pub fn all(&self) -> &[DeadLetter] {
        &self.letters
    }

    pub fn get(&self, id: u64) -> Option<&DeadLetter> {
        self.letters.iter().find(|d| d.id == id)
    }

    pub(crate) fn decide(
        &self,
        command: &DeadLetterCommand,
        now: Timestamp,
    ) -> Result<DeadLetterEvent, DeadLetterRejection> {
        match command {
            DeadLetterCommand::Keep { source, reason, raw } => Ok(DeadLetterEvent::Kept(DeadLetter {
                id: self.letters.last().map_or(1, |d| d.id + 1),
                source: source.clone(),
                received_at: now,
                reason: reason.clone(),
                raw: raw.clone(),
                redriven: None,
            })),
            DeadLetterCommand::MarkRedriven { id, outcome } => {
                let letter = self.get(*id).ok_or(DeadLetterRejection::Unknown(*id))?;
                if letter.redriven.is_some() {
                    return Err(DeadLetterRejection::AlreadyRedriven(*id));
                }
                Ok(DeadLetterEvent::Redriven { id: *id, at: now, outcome: outcome.clone() })
            }
        }
    }

    pub(crate) fn apply(&mut self, event: &DeadLetterEvent) {
        match event {
            DeadLetterEvent::Kept(d) => self.letters.push(d.clone()),
            DeadLetterEvent::Redriven { id, at, outcome } => {
                if let Some(d) = self.letters.iter_mut().find(|d| d.id == *id) {
                    d.redriven = Some((*at, outcome.clone()));
                }
            }
        }
    }
}
