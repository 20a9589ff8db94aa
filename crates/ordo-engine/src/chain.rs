//! The journal's tamper-evident chain: every row carries
//! `HMAC-SHA256(key, previous link ‖ seq ‖ recorded_at ‖ kind ‖ payload)`. Changing, deleting,
//! inserting or reordering a row breaks every later link; recomputing the links needs the key,
//! which comes from configuration (`ORDO_AUDIT_KEY`) and is never stored in the database.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::store::JournalRecord;

/// One link; the link before the first row is all zeroes.
pub type Link = [u8; 32];

/// The link of a row given the one before it.
pub fn link(key: &[u8], previous: &Link, seq: u64, recorded_at: i64, kind: &str, payload: &[u8]) -> Link {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(previous);
    mac.update(&seq.to_be_bytes());
    mac.update(&recorded_at.to_be_bytes());
    mac.update(kind.as_bytes());
    mac.update(&[0]);
    mac.update(payload);
    mac.finalize().into_bytes().into()
}

/// Links `record` after `previous`; returns the new head.
pub(crate) fn seal(key: &[u8], previous: &Link, record: &mut JournalRecord) -> Link {
    let l = link(key, previous, record.seq, record.recorded_at.millis(), record.kind, &record.payload);
    record.chain = l.to_vec();
    l
}

/// One journal row as the chain check reads it.
pub struct AuditRow<'a> {
    pub seq: u64,
    pub recorded_at: i64,
    pub kind: &'a str,
    pub payload: &'a [u8],
    pub chain: Option<&'a [u8]>,
}

/// Walks rows in sequence order and reports every place the chain does not hold.
#[derive(Default)]
pub struct ChainCheck {
    previous: Link,
    expected_seq: u64,
    pub rows: u64,
    pub problems: Vec<String>,
}

impl ChainCheck {
    pub fn visit(&mut self, key: &[u8], row: AuditRow<'_>) {
        self.rows += 1;
        let expected_seq = self.expected_seq + 1;
        if row.seq != expected_seq {
            self.problems.push(format!("journal row {} follows {}: rows are missing", row.seq, self.expected_seq));
        }
        self.expected_seq = row.seq;
        let computed = link(key, &self.previous, row.seq, row.recorded_at, row.kind, row.payload);
        match row.chain {
            None => self.problems.push(format!("journal row {} has no chain link", row.seq)),
            Some(stored) if stored != computed.as_slice() => {
                if self.problems.len() < 20 {
                    self.problems.push(format!(
                        "journal row {} does not match its chain link (changed, inserted or reordered, or another audit key)",
                        row.seq
                    ));
                }
            }
            Some(_) => {}
        }
        // Continue from the stored link, so one edited row is reported once, not for every
        // row after it.
        self.previous = match row.chain.and_then(|c| <Link>::try_from(c).ok()) {
            Some(stored) => stored,
            None => computed,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(seq, recorded_at, kind, payload, stored link)`.
    type Row = (u64, i64, &'static str, Vec<u8>, Vec<u8>);

    fn rows(key: &[u8]) -> Vec<Row> {
        let mut prev = [0u8; 32];
        (1..=4)
            .map(|seq| {
                let payload = vec![seq as u8; 3];
                let l = link(key, &prev, seq, 100 + seq as i64, "moved", &payload);
                prev = l;
                (seq, 100 + seq as i64, "moved", payload, l.to_vec())
            })
            .collect()
    }

    fn check(key: &[u8], rows: &[Row]) -> Vec<String> {
        let mut c = ChainCheck::default();
        for (seq, at, kind, payload, chain) in rows {
            c.visit(key, AuditRow { seq: *seq, recorded_at: *at, kind, payload, chain: Some(chain) });
        }
        c.problems
    }

    #[test]
    fn any_edit_deletion_reorder_or_wrong_key_is_found() {
        let key = b"secret";
        let good = rows(key);
        assert_eq!(check(key, &good), Vec::<String>::new());
        let mut edited = good.clone();
        edited[1].1 += 1; // recorded_at changed
        assert_eq!(check(key, &edited).len(), 1, "{:?}", check(key, &edited));
        let mut deleted = good.clone();
        deleted.remove(2);
        let p = check(key, &deleted);
        assert!(p.iter().any(|m| m.contains("missing")) && p.iter().any(|m| m.contains("row 4")), "{p:?}");
        let mut swapped = good.clone();
        swapped.swap(1, 2);
        assert!(!check(key, &swapped).is_empty());
        assert_eq!(check(b"other", &good).len(), 4, "another key matches nothing");
    }
}
