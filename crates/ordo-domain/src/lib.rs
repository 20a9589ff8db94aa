//! Ordo's pure domain: master data, the inventory unit ledger and available-to-sell.
//!
//! Nothing here does I/O, reads a clock or iterates a hash map in an order that matters. The
//! engine hands [`State::decide`] a command and `now`; it gets back the events to journal or a
//! typed rejection, and [`State::apply`] folds events into state, both live and on replay.

pub mod access;
pub mod accounting;
pub mod approvals;
pub mod audit;
pub mod availability;
pub mod catalog;
pub mod csv_import;
pub mod deadletter;
pub mod edi;
pub mod inventory;
pub mod orders;
pub mod outbox;
pub mod returns;
pub mod settlement;
mod state;

pub use availability::{AtsExplanation, AvailabilityChanged};
pub use state::{Command, Event, Rejection, State, StockRow, response_of};
