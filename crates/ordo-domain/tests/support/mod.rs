//! A small builder for integration tests: master-data constructors, movement-command shorthands
//! and a `World` that runs commands the way the engine does (decide → apply with the next
//! sequence number → refresh availability) and checks the ledger invariants after every step.

#![allow(dead_code)]

use std::collections::BTreeMap;

use ordo_domain::catalog::{
    Address, AllocationPolicy, Capabilities, Channel, ChannelKind, Component, Item, LegalEntity, Location, LocationKind,
};
use ordo_domain::inventory::{
    Buckets, Disposition, MoveCommand, MoveRejection, OutsideAccount, ReasonCode, StockState,
};
use ordo_domain::{AvailabilityChanged, Command, Event, Rejection, State};
use ordo_types::{Code, CurrencyCode, Date, Sku, Timestamp, Units};

pub fn sku(s: &str) -> Sku {
    Sku::new(s).unwrap()
}

pub fn code(s: &str) -> Code {
    Code::new(s).unwrap()
}

pub fn date(s: &str) -> Date {
    s.parse().unwrap()
}

/// The fixed "now" of every test: 2026-11-26T10:00:00Z.
pub fn now() -> Timestamp {
    let day = i64::from(date("2026-11-26").days_since_epoch());
    Timestamp::from_millis(day * 86_400_000 + 10 * 3_600_000)
}

pub const ENTITY: &str = "ACME";

pub fn legal_entity(c: &str) -> Command {
    Command::DefineLegalEntity(LegalEntity {
        code: code(c),
        name: format!("{c} Ltd"),
        functional_currency: CurrencyCode::new("USD").unwrap(),
    })
}

pub fn location(c: &str, returns: bool) -> Command {
    Command::DefineLocation(Location {
        code: code(c),
        name: format!("Location {c}"),
        kind: LocationKind::Warehouse,
        legal_entity: code(ENTITY),
        address: Address::default(),
        geo: None,
        time_zone: "UTC".into(),
        capabilities: Capabilities { ship: true, pickup: false, returns },
    })
}

pub fn item_def(s: &str, class: Option<&str>, components: &[(&str, u32)]) -> Item {
    Item {
        sku: sku(s),
        title: format!("Item {s}"),
        style: None,
        options: BTreeMap::new(),
        gtin: None,
        uom_conversions: BTreeMap::new(),
        components: components.iter().map(|(c, q)| Component { sku: sku(c), quantity: *q }).collect(),
        sku_class: class.map(code),
    }
}

pub fn item(s: &str) -> Command {
    Command::DefineItem(item_def(s, None, &[]))
}

pub fn item_in_class(s: &str, class: &str) -> Command {
    Command::DefineItem(item_def(s, Some(class), &[]))
}

pub fn bundle(s: &str, components: &[(&str, u32)]) -> Command {
    Command::DefineItem(item_def(s, None, components))
}

pub fn policy(cap: Option<u8>, buffer: Units, window: Option<u16>) -> AllocationPolicy {
    AllocationPolicy { percentage_cap: cap, buffer, incoming_window_days: window }
}

pub fn channel(c: &str, locations: &[&str], priority: u16, allocation: AllocationPolicy) -> Command {
    Command::DefineChannel(Channel {
        code: code(c),
        name: format!("Channel {c}"),
        kind: ChannelKind::Other,
        legal_entity: code(ENTITY),
        locations: locations.iter().map(|l| code(l)).collect(),
        priority,
        allocation,
    })
}

pub fn plain_channel(c: &str, locations: &[&str], priority: u16) -> Command {
    channel(c, locations, priority, AllocationPolicy::default())
}

pub fn pool(c: &str, s: &str, units: Units) -> Command {
    Command::SetChannelPool { channel: code(c), sku: sku(s), units }
}

// ----- movement shorthands ----------------------------------------------------------------

pub fn receipt(s: &str, l: &str, units: Units) -> MoveCommand {
    MoveCommand::Receipt { sku: sku(s), location: code(l), units, expectation: None }
}

pub fn receipt_against(s: &str, l: &str, units: Units, expectation: &str) -> MoveCommand {
    MoveCommand::Receipt { sku: sku(s), location: code(l), units, expectation: Some(code(expectation)) }
}

pub fn expect(e: &str, s: &str, l: &str, units: Units, on: &str) -> MoveCommand {
    MoveCommand::Expect { expectation: code(e), sku: sku(s), location: code(l), units, expected_on: date(on) }
}

pub fn cancel_expectation(e: &str) -> MoveCommand {
    MoveCommand::CancelExpectation { expectation: code(e) }
}

pub fn transfer_ship(t: &str, s: &str, from: &str, to: &str, units: Units) -> MoveCommand {
    MoveCommand::TransferShip { transfer: code(t), sku: sku(s), from: code(from), to: code(to), units }
}

pub fn transfer_receive(t: &str, units: Units) -> MoveCommand {
    MoveCommand::TransferReceive { transfer: code(t), units }
}

pub fn commit(r: &str, s: &str, l: &str, units: Units) -> MoveCommand {
    MoveCommand::Commit { reservation: code(r), sku: sku(s), location: code(l), units }
}

pub fn release(r: &str, units: Option<Units>) -> MoveCommand {
    MoveCommand::Release { reservation: code(r), units }
}

pub fn pick(r: &str, units: Units) -> MoveCommand {
    MoveCommand::Pick { reservation: code(r), units }
}

pub fn ship(r: &str, units: Units) -> MoveCommand {
    MoveCommand::Ship { reservation: code(r), units }
}

pub fn return_receipt(s: &str, l: &str, units: Units, reference: Option<&str>) -> MoveCommand {
    MoveCommand::ReturnReceipt { sku: sku(s), location: code(l), units, reference: reference.map(code) }
}

pub fn dispose(s: &str, l: &str, units: Units, disposition: Disposition) -> MoveCommand {
    MoveCommand::Dispose { sku: sku(s), location: code(l), units, disposition }
}

pub fn write_off(s: &str, l: &str, units: Units, reason: ReasonCode) -> MoveCommand {
    MoveCommand::WriteOff { sku: sku(s), location: code(l), units, reason }
}

pub fn hold(s: &str, l: &str, units: Units, reason: ReasonCode) -> MoveCommand {
    MoveCommand::Hold { sku: sku(s), location: code(l), units, reason }
}

pub fn unhold(s: &str, l: &str, units: Units) -> MoveCommand {
    MoveCommand::Unhold { sku: sku(s), location: code(l), units }
}

pub fn count(s: &str, l: &str, counted_on_hand: Units) -> MoveCommand {
    MoveCommand::Count { sku: sku(s), location: code(l), counted_on_hand }
}

pub fn adjust(s: &str, l: &str, delta: Units, reason: ReasonCode) -> MoveCommand {
    MoveCommand::Adjust { sku: sku(s), location: code(l), delta, reason }
}

pub fn reverse(movement: u64, reason: ReasonCode) -> MoveCommand {
    MoveCommand::Reverse { movement, reason }
}

/// Buckets from `[available, committed, picked, reserved, quality_control, damaged]`, units in
/// transit towards the location and units expected there.
pub fn buckets(states: [Units; 6], in_transit_inbound: Units, incoming: Units) -> Buckets {
    Buckets { states, in_transit_inbound, incoming }
}

pub fn change(s: &str, c: &str, old: Units, new: Units) -> AvailabilityChanged {
    AvailabilityChanged { sku: sku(s), channel: code(c), old, new }
}

// ----- the world --------------------------------------------------------------------------

/// A state plus the events accepted so far, driven like the engine drives it.
pub struct World {
    pub state: State,
    pub now: Timestamp,
    pub events: Vec<Event>,
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

impl World {
    /// An empty state with the legal entity `ACME` defined (sequence 1).
    pub fn new() -> Self {
        let mut w = Self { state: State::new(), now: now(), events: Vec::new() };
        w.run(legal_entity(ENTITY));
        w
    }

    /// decide → apply(next seq) → refresh; asserts the invariants hold afterwards.
    pub fn try_run(&mut self, cmd: Command) -> Result<Vec<AvailabilityChanged>, Rejection> {
        let event = self.state.decide(&cmd, self.now)?;
        let seq = self.state.last_seq() + 1;
        self.state.apply(seq, &event);
        self.events.push(event);
        let changes = self.state.refresh_availability(self.now);
        let problems = self.state.check_invariants(self.now);
        assert!(problems.is_empty(), "invariants broken after {cmd:?}: {problems:#?}");
        Ok(changes)
    }

    #[track_caller]
    pub fn run(&mut self, cmd: Command) -> Vec<AvailabilityChanged> {
        match self.try_run(cmd.clone()) {
            Ok(changes) => changes,
            Err(r) => panic!("{cmd:?} was rejected: {r}"),
        }
    }

    #[track_caller]
    pub fn mv(&mut self, m: MoveCommand) -> Vec<AvailabilityChanged> {
        self.run(Command::Move(m))
    }

    /// Runs `m` and returns the sequence number its event was applied at.
    #[track_caller]
    pub fn mv_seq(&mut self, m: MoveCommand) -> u64 {
        self.mv(m);
        self.state.last_seq()
    }

    /// Asserts `cmd` is rejected and that deciding it changed nothing.
    #[track_caller]
    pub fn reject(&self, cmd: Command) -> Rejection {
        let before = self.state.clone();
        let rejection = match self.state.decide(&cmd, self.now) {
            Ok(event) => panic!("{cmd:?} was accepted as {event:?}"),
            Err(r) => r,
        };
        assert_eq!(self.state, before, "a rejected decide changed the state");
        // Nothing was marked dirty either: a refresh on a copy publishes nothing.
        assert_eq!(self.state.clone().refresh_availability(self.now), vec![]);
        rejection
    }

    #[track_caller]
    pub fn reject_move(&self, m: MoveCommand) -> MoveRejection {
        match self.reject(Command::Move(m)) {
            Rejection::Move(r) => r,
            other => panic!("expected a movement rejection, got {other:?}"),
        }
    }

    pub fn last_seq(&self) -> u64 {
        self.state.last_seq()
    }

    pub fn b(&self, s: &str, l: &str) -> Buckets {
        self.state.buckets(&sku(s), &code(l))
    }

    pub fn ats(&self, s: &str, c: &str) -> Units {
        self.state.ats(&sku(s), &code(c)).unwrap_or_else(|| panic!("no ATS for {s} on {c}"))
    }

    pub fn outside(&self, s: &str, account: OutsideAccount) -> Units {
        self.state.outside_balance(&sku(s), account)
    }

    /// `[supplier, customer, adjustment, write_off]` for one SKU.
    pub fn outsides(&self, s: &str) -> [Units; 4] {
        OutsideAccount::ALL.map(|a| self.outside(s, a))
    }

    /// Units of `s` inside the business: on hand everywhere, in transit and still expected.
    pub fn inside(&self, s: &str) -> Units {
        self.state
            .locations()
            .iter()
            .map(|l| {
                let b = self.state.buckets(&sku(s), &l.code);
                b.on_hand() + b.in_transit_inbound + b.incoming
            })
            .sum()
    }

    /// Units are conserved: everything inside is balanced by the outside accounts.
    #[track_caller]
    pub fn assert_conserved(&self, s: &str) {
        let outside: Units = self.outsides(s).iter().sum();
        assert_eq!(self.inside(s) + outside, 0, "{s}: inside {} + outside {outside} != 0", self.inside(s));
    }

    /// `(state rebuilt by replaying every event, the live state)`, change tracking cleared on
    /// both, for comparing: replay must reproduce live exactly.
    pub fn replayed_and_live(&self) -> (State, State) {
        let mut replayed = State::new();
        for (i, e) in self.events.iter().enumerate() {
            replayed.apply(i as u64 + 1, e);
        }
        replayed.mark_all_dirty();
        replayed.refresh_availability(self.now);
        replayed.clear_dirty();
        let mut live = self.state.clone();
        live.clear_dirty();
        (replayed, live)
    }

    pub fn state_of(&self, s: &str, l: &str, state: StockState) -> Units {
        self.b(s, l).get(state)
    }
}
