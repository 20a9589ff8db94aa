//! The audit trail of one entity, read from the journal: who changed it (actor, role, source,
//! request id, from the `Attributed` wrapper journaled with the change) and what changed, before
//! and after.
//!
//! Every journal event carries the after-image of what it changed (an order's whole record, an
//! item's definition, a movement's postings), so the before-image is the previous after-image of
//! the same entity. The journal is hash-chained, so no image in between can be dropped or edited
//! without `ordo verify` noticing: the before/after shown here is as tamper-evident as the
//! changes themselves. Pure: the caller feeds events in journal order.

use std::collections::BTreeMap;

use ordo_types::{Sku, Timestamp, Units};
use serde::Serialize;
use serde_json::Value;

use crate::access::{AccessEvent, Origin, Role, Source};
use crate::inventory::{Account, Movement};
use crate::orders::book::OrderEvent;
use crate::orders::model::OrderKey;
use crate::state::Event;

/// What an audit query is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditEntity {
    Order(OrderKey),
    Sku(Sku),
    Approval(u64),
    /// A user: changes to the user and its tokens, and every change the user made.
    User(String),
}

/// Why an entity name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("entity {0:?} is not one of order:CHANNEL/ID, sku:SKU, approval:N, user:NAME")]
pub struct BadEntity(pub String);

impl AuditEntity {
    pub fn parse(raw: &str) -> Result<Self, BadEntity> {
        let bad = || BadEntity(raw.to_owned());
        let (kind, id) = raw.split_once(':').filter(|(_, id)| !id.is_empty()).ok_or_else(bad)?;
        Ok(match kind {
            "order" => {
                let (channel, order_id) = id.split_once('/').filter(|(_, o)| !o.is_empty()).ok_or_else(bad)?;
                let channel = ordo_types::Code::new(channel).map_err(|_| bad())?;
                Self::Order(OrderKey { channel, channel_order_id: order_id.to_owned() })
            }
            "sku" => Self::Sku(Sku::new(id).map_err(|_| bad())?),
            "approval" => Self::Approval(id.parse().map_err(|_| bad())?),
            "user" => Self::User(id.to_owned()),
            _ => return Err(bad()),
        })
    }
}

/// One field (or ledger account) an event changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub what: String,
    pub before: Value,
    pub after: Value,
}

/// One journal event that concerns the entity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub seq: u64,
    pub recorded_at: Timestamp,
    pub kind: &'static str,
    pub actor: Option<String>,
    pub role: Option<Role>,
    pub source: Option<Source>,
    pub request_id: Option<String>,
    pub changes: Vec<Change>,
}

/// Reads the journal in order and keeps the last image of the entity, so each entry can say
/// what was there before.
#[derive(Debug)]
pub struct AuditTrail {
    entity: AuditEntity,
    /// The entity's last after-image (order record or item definition) as JSON.
    image: Option<Value>,
    /// Ledger balances of the SKU, by account (a SKU's entries show its accounts before/after).
    balances: BTreeMap<Account, Units>,
    /// Token id → user, to attribute a revocation to the user it concerns.
    token_users: BTreeMap<String, String>,
}

impl AuditTrail {
    pub fn new(entity: AuditEntity) -> Self {
        Self { entity, image: None, balances: BTreeMap::new(), token_users: BTreeMap::new() }
    }

    /// The entry `event` (journaled at `seq`) makes, if it concerns the entity.
    pub fn visit(&mut self, seq: u64, recorded_at: Timestamp, event: &Event) -> Option<AuditEntry> {
        let origin = origin_of(event);
        let effect = event.effect();
        let entity = self.entity.clone();
        let changes = match (&entity, effect) {
            (AuditEntity::Order(key), _) if order_recorded(effect).is_some_and(|(r, _)| r.key() == *key) => {
                let (record, _) = order_recorded(effect).expect("matched above");
                let after = serde_json::to_value(record).expect("order records serialize");
                Some(self.replace_image(after, &["history"]))
            }
            (AuditEntity::Sku(sku), _) => self.sku_changes(sku, effect),
            (AuditEntity::Approval(id), _) => approval_changes(*id, event),
            (AuditEntity::User(name), _) => {
                let own = self.user_changes(name, effect);
                let acted = origin.is_some_and(|o| o.actor == *name);
                match own {
                    Some(changes) => Some(changes),
                    None if acted => Some(Vec::new()),
                    None => None,
                }
            }
            _ => None,
        }?;
        Some(AuditEntry {
            seq,
            recorded_at,
            kind: event.kind_name(),
            actor: origin.map(|o| o.actor.clone()),
            role: origin.and_then(|o| o.role),
            source: origin.map(|o| o.source),
            request_id: origin.map(|o| o.request_id.clone()),
            changes,
        })
    }

    /// Swaps in the new after-image and lists the top-level fields that differ (`skip`: fields
    /// that only accumulate, such as an order's status history, which the trail itself is).
    fn replace_image(&mut self, after: Value, skip: &[&str]) -> Vec<Change> {
        let before = self.image.replace(after.clone()).unwrap_or(Value::Null);
        let empty = serde_json::Map::new();
        let old = before.as_object().unwrap_or(&empty);
        let new = after.as_object().unwrap_or(&empty);
        let mut fields: Vec<&String> = old.keys().chain(new.keys()).filter(|k| !skip.contains(&k.as_str())).collect();
        fields.sort();
        fields.dedup();
        fields
            .into_iter()
            .filter(|f| old.get(*f) != new.get(*f))
            .map(|f| Change {
                what: f.clone(),
                before: old.get(f).cloned().unwrap_or(Value::Null),
                after: new.get(f).cloned().unwrap_or(Value::Null),
            })
            .collect()
    }

    fn sku_changes(&mut self, sku: &Sku, effect: &Event) -> Option<Vec<Change>> {
        match effect {
            Event::ItemDefined(item) if item.sku == *sku => {
                let after = serde_json::to_value(item).expect("items serialize");
                Some(self.replace_image(after, &[]))
            }
            Event::Moved(m) => self.post(sku, std::slice::from_ref(m)),
            Event::Returns(crate::returns::ReturnEvent::Recorded { movements, .. }) => self.post(sku, movements),
            _ if order_recorded(effect).is_some() => {
                let (record, movements) = order_recorded(effect).expect("matched above");
                let posted = self.post(sku, movements);
                let ordered = record.lines.iter().any(|l| l.sku.as_ref() == Some(sku));
                posted.or(ordered.then(Vec::new))
            }
            _ => None,
        }
    }

    /// Applies the SKU's postings among `movements` to the running balances; the accounts they
    /// touched, before and after, or `None` when none was the SKU's.
    fn post(&mut self, sku: &Sku, movements: &[Movement]) -> Option<Vec<Change>> {
        let mut before: BTreeMap<Account, Units> = BTreeMap::new();
        for m in movements.iter().filter(|m| m.sku == *sku) {
            for p in &m.postings {
                for (account, delta) in [(&p.from, -p.units), (&p.to, p.units)] {
                    let balance = self.balances.entry(account.clone()).or_insert(0);
                    before.entry(account.clone()).or_insert(*balance);
                    *balance += delta;
                }
            }
        }
        if before.is_empty() {
            return None;
        }
        Some(
            before
                .into_iter()
                .map(|(account, was)| Change {
                    what: account.describe(),
                    before: was.into(),
                    after: self.balances[&account].into(),
                })
                .collect(),
        )
    }

    fn user_changes(&mut self, name: &str, effect: &Event) -> Option<Vec<Change>> {
        let change = |what: String, before: Value, after: Value| Some(vec![Change { what, before, after }]);
        match effect {
            Event::Access(AccessEvent::UserAdded(u)) if u.name == name => {
                change("role".into(), Value::Null, u.role.as_str().into())
            }
            Event::Access(AccessEvent::TokenIssued(t) | AccessEvent::ScopedTokenIssued { token: t, .. }) => {
                self.token_users.insert(t.id.clone(), t.user.clone());
                (t.user == name).then(|| vec![token_change(&t.id, Value::Null, "live")])
            }
            Event::Access(AccessEvent::TokenRevoked { id, .. }) => (self.token_users.get(id).map(String::as_str)
                == Some(name))
            .then(|| vec![token_change(id, "live".into(), "revoked")]),
            _ => None,
        }
    }
}

fn token_change(id: &str, before: Value, after: &str) -> Change {
    Change { what: format!("token {id}"), before, after: after.into() }
}

/// The order record (and its movements) an effect records: an order's own event, or the
/// replacement order an exchange captures.
fn order_recorded(effect: &Event) -> Option<(&crate::orders::book::OrderRecord, &[Movement])> {
    let order_event = match effect {
        Event::Order(e) => e,
        Event::Returns(crate::returns::ReturnEvent::Exchanged { replacement, .. }) => &**replacement,
        _ => return None,
    };
    match order_event {
        OrderEvent::Recorded { record, movements } => Some((record, movements.as_slice())),
        _ => None,
    }
}

fn approval_changes(id: u64, event: &Event) -> Option<Vec<Change>> {
    let status = |before: Value, after: &str| Some(vec![Change { what: "status".into(), before, after: after.into() }]);
    match event {
        Event::ApprovalRequested(r) if r.id == id => status(Value::Null, "pending"),
        Event::Approved { id: n, .. } if *n == id => status("pending".into(), "approved"),
        Event::ApprovalRejected { id: n, .. } if *n == id => status("pending".into(), "rejected"),
        Event::Idempotent { event, .. } | Event::Attributed { event, .. } => approval_changes(id, event),
        _ => None,
    }
}

/// The outermost attribution: who asked for this change.
fn origin_of(event: &Event) -> Option<&Origin> {
    match event {
        Event::Attributed { origin, .. } => Some(origin),
        Event::Idempotent { event, .. } | Event::Approved { event, .. } => origin_of(event),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::{Token, User};

    fn token(id: &str, user: &str) -> Token {
        Token {
            id: id.into(),
            user: user.into(),
            sha256_hex: format!("hash-{id}"),
            created_at: Timestamp(0),
            expires_at: None,
            revoked_at: None,
        }
    }

    #[test]
    fn entities_parse_or_say_what_is_accepted() {
        assert!(
            matches!(AuditEntity::parse("order:WEB/1001"), Ok(AuditEntity::Order(k)) if k.channel_order_id == "1001")
        );
        assert_eq!(AuditEntity::parse("approval:7"), Ok(AuditEntity::Approval(7)));
        for bad in ["order:WEB", "order:/1", "approval:x", "planet:mars", "sku:", "user"] {
            assert_eq!(AuditEntity::parse(bad), Err(BadEntity(bad.into())), "{bad}");
        }
    }

    #[test]
    fn a_users_trail_follows_its_tokens_to_revocation() {
        let mut trail = AuditTrail::new(AuditEntity::User("ana".into()));
        let user =
            User { name: "ana".into(), role: Role::Viewer, password_hash: String::new(), created_at: Timestamp(0) };
        let events = [
            Event::Access(AccessEvent::UserAdded(user)),
            Event::Access(AccessEvent::TokenIssued(token("t1", "ana"))),
            Event::Access(AccessEvent::TokenIssued(token("t2", "bob"))),
            Event::Access(AccessEvent::TokenRevoked { id: "t2".into(), at: Timestamp(1) }),
            Event::Access(AccessEvent::TokenRevoked { id: "t1".into(), at: Timestamp(1) }),
        ];
        let entries: Vec<AuditEntry> =
            events.iter().enumerate().filter_map(|(i, e)| trail.visit(i as u64 + 1, Timestamp(0), e)).collect();
        let seen: Vec<(u64, String, Value, Value)> = entries
            .iter()
            .flat_map(|e| e.changes.iter().map(move |c| (e.seq, c.what.clone(), c.before.clone(), c.after.clone())))
            .collect();
        assert_eq!(
            seen,
            vec![
                (1, "role".into(), Value::Null, "viewer".into()),
                (2, "token t1".into(), Value::Null, "live".into()),
                (5, "token t1".into(), "live".into(), "revoked".into()),
            ]
        );
    }
}
