//! The double-entry kernel shared by Ordo's ledgers: a posting moves a positive number of units
//! from one account to another, so every posting balances by construction, and a set of postings
//! is accepted only if no account with a floor would end below it.
//!
//! The kernel knows nothing about SKUs or money. The inventory ledger plugs in buckets
//! `(sku, location, state)` and outside accounts; the general ledger (later) plugs in GL accounts.
//! Corrections are never edits: [`reverse`] produces the postings that undo a set.

use ordo_types::Units;
use serde::{Deserialize, Serialize};

/// One balanced movement of `units` (> 0) from `from` to `to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posting<A> {
    pub from: A,
    pub to: A,
    pub units: Units,
}

impl<A> Posting<A> {
    pub fn new(from: A, to: A, units: Units) -> Self {
        assert!(units > 0, "a posting moves a positive number of units");
        Self { from, to, units }
    }
}

/// Read access to balances. Implemented by each ledger over its own storage layout.
pub trait Balances<A> {
    fn balance(&self, account: &A) -> Units;
    /// The lowest balance the account may hold, or `None` when it is unbounded (outside
    /// accounts such as `supplier` or `customer`, which go negative as units flow out of them).
    fn floor(&self, account: &A) -> Option<Units>;
}

/// Write access to balances.
pub trait Book<A>: Balances<A> {
    fn add(&mut self, account: &A, delta: Units);
}

/// A set of postings would take `account` below its floor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overdraft<A> {
    pub account: A,
    pub balance: Units,
    /// The net change the postings would make (negative).
    pub change: Units,
    pub floor: Units,
}

/// Net change per account, in first-touched order. The changes always sum to zero.
pub fn net<A: PartialEq + Clone>(postings: &[Posting<A>]) -> Vec<(A, Units)> {
    let mut changes: Vec<(A, Units)> = Vec::with_capacity(postings.len() * 2);
    let mut bump = |account: &A, delta: Units| match changes.iter_mut().find(|(a, _)| a == account) {
        Some((_, d)) => *d += delta,
        None => changes.push((account.clone(), delta)),
    };
    for p in postings {
        assert!(p.units > 0, "posting with non-positive units");
        bump(&p.from, -p.units);
        bump(&p.to, p.units);
    }
    debug_assert_eq!(changes.iter().map(|(_, d)| d).sum::<Units>(), 0);
    changes
}

/// Checks that applying `postings` keeps every floored account at or above its floor.
/// Postings that touch the same account are netted first, so a set that moves units
/// through an account (in, then out) is judged by its end result.
pub fn check<A: PartialEq + Clone, B: Balances<A> + ?Sized>(
    book: &B,
    postings: &[Posting<A>],
) -> Result<(), Overdraft<A>> {
    for (account, change) in net(postings) {
        if change >= 0 {
            continue;
        }
        if let Some(floor) = book.floor(&account) {
            let balance = book.balance(&account);
            if balance + change < floor {
                return Err(Overdraft { account, balance, change, floor });
            }
        }
    }
    Ok(())
}

/// Applies postings that passed [`check`]. Panics (a programmer error) if they would overdraw.
pub fn apply<A: PartialEq + Clone + std::fmt::Debug, B: Book<A>>(book: &mut B, postings: &[Posting<A>]) {
    for (account, change) in net(postings) {
        let after = book.balance(&account) + change;
        if let Some(floor) = book.floor(&account) {
            assert!(after >= floor, "posting overdraws {account:?}: {after} < {floor}");
        }
        book.add(&account, change);
    }
}

/// The postings that exactly undo `postings`.
pub fn reverse<A: Clone>(postings: &[Posting<A>]) -> Vec<Posting<A>> {
    postings.iter().rev().map(|p| Posting { from: p.to.clone(), to: p.from.clone(), units: p.units }).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    /// Accounts 0..4 have a floor of zero; 4 and 5 are outside accounts.
    #[derive(Default)]
    struct TestBook(BTreeMap<u8, Units>);

    impl Balances<u8> for TestBook {
        fn balance(&self, a: &u8) -> Units {
            self.0.get(a).copied().unwrap_or(0)
        }
        fn floor(&self, a: &u8) -> Option<Units> {
            (*a < 4).then_some(0)
        }
    }

    impl Book<u8> for TestBook {
        fn add(&mut self, a: &u8, d: Units) {
            *self.0.entry(*a).or_default() += d;
        }
    }

    #[test]
    fn overdraft_names_the_account_and_amounts() {
        let mut book = TestBook::default();
        apply(&mut book, &[Posting::new(4, 0, 5)]);
        let err = check(&book, &[Posting::new(0, 1, 7)]).unwrap_err();
        assert_eq!(err, Overdraft { account: 0, balance: 5, change: -7, floor: 0 });
    }

    #[test]
    fn netting_allows_pass_through() {
        let book = TestBook::default();
        // 3 units arrive in 0 and leave it within the same set.
        assert!(check(&book, &[Posting::new(4, 0, 3), Posting::new(0, 1, 3)]).is_ok());
        assert!(check(&book, &[Posting::new(0, 1, 3), Posting::new(4, 0, 2)]).is_err());
    }

    fn posting() -> impl Strategy<Value = Posting<u8>> {
        (0u8..6, 0u8..6, 1i64..20)
            .prop_filter("distinct", |(a, b, _)| a != b)
            .prop_map(|(a, b, u)| Posting::new(a, b, u))
    }

    proptest! {
        #[test]
        fn postings_conserve_units_and_floors_hold(sets in prop::collection::vec(prop::collection::vec(posting(), 1..4), 1..60)) {
            let mut book = TestBook::default();
            for set in &sets {
                match check(&book, set) {
                    Ok(()) => apply(&mut book, set),
                    Err(o) => prop_assert!(o.balance + o.change < o.floor && book.balance(&o.account) == o.balance),
                }
                prop_assert_eq!(book.0.values().sum::<Units>(), 0);
                for a in 0u8..4 {
                    prop_assert!(book.balance(&a) >= 0);
                }
            }
        }

        #[test]
        fn reverse_undoes(set in prop::collection::vec(posting(), 1..6)) {
            let mut book = TestBook::default();
            // fund everything generously from the outside so the set is legal
            for a in 0u8..4 { book.add(&a, 1_000); book.add(&4, -1_000); }
            let start = book.0.clone();
            apply(&mut book, &set);
            apply(&mut book, &reverse(&set));
            let non_zero = |m: &BTreeMap<u8, Units>| m.iter().filter(|(_, v)| **v != 0).map(|(k, v)| (*k, *v)).collect::<Vec<_>>();
            prop_assert_eq!(non_zero(&start), non_zero(&book.0));
        }
    }
}
