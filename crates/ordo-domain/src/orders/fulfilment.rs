//! An order after its decision: dispatch to the warehouse floor, picking, packing (units
//! `committed → picked`), shipments (`picked → customer`, several per order when partial),
//! delivery and closing — and cancelling single lines while nothing of them is picked.
//!
//! Each step is one transition of the [`super::lifecycle`] table, and units move only through
//! the reservation's two-phase pattern in the inventory ledger, so the order's counters
//! (`picked`, `shipped`) and the ledger's reservation records never disagree.

use std::collections::BTreeMap;

use ordo_types::Units;

use super::book::{Draft, OrderRejection, ShipmentRecord, ShipmentRequest, ShippedLine};
use super::lifecycle::{Actor, IllegalTransition, OrderStatus};
use crate::inventory::MoveCommand;

impl Draft<'_> {
    /// Cancels every record of order line `line_id` (all components of a bundle line).
    pub(super) fn cancel_line(&mut self, line_id: &str, actor: &Actor, reason: &str) -> Result<(), OrderRejection> {
        let key = self.record.key();
        let status = self.record.status;
        status.transition(OrderStatus::Cancelled)?;
        let indexes: Vec<usize> =
            (0..self.record.lines.len()).filter(|&i| self.record.lines[i].order_line_id == line_id).collect();
        if indexes.is_empty() {
            return Err(OrderRejection::UnknownLine { key, line_id: line_id.to_owned() });
        }
        if indexes.iter().all(|&i| self.record.lines[i].open() == 0) {
            return Err(OrderRejection::LineAlreadyCancelled { key, line_id: line_id.to_owned() });
        }
        if indexes.iter().any(|&i| self.line_started(i)) {
            return Err(OrderRejection::PickedUnits { key });
        }
        for &i in &indexes {
            self.release_line(i)?;
            let line = &mut self.record.lines[i];
            line.cancelled = line.units;
            line.backordered = 0;
            line.expected_on = None;
        }
        let what = format!("line {line_id} cancelled: {reason}");
        if self.record.lines.iter().all(|l| l.open() == 0) {
            return self.transition(OrderStatus::Cancelled, actor, &what);
        }
        match status {
            OrderStatus::Allocated | OrderStatus::PartiallyAllocated | OrderStatus::Backordered => {
                self.note(actor, &what);
                self.settle_status(actor, &what)
            }
            OrderStatus::OnHold => {
                self.note(actor, &what);
                // The cancelled line may have been the cause of a hold (an unknown SKU).
                if self.validate() {
                    self.transition(OrderStatus::Validated, actor, "holds cleared by the line cancel")?;
                    self.source_and_reserve(&Actor::System)?;
                }
                Ok(())
            }
            _ => {
                self.note(actor, &what);
                Ok(())
            }
        }
    }

    /// Releases the order to the floor.
    pub(super) fn dispatch(&mut self, actor: &Actor, ship_partial: bool) -> Result<(), OrderRejection> {
        let status = self.record.status;
        status.transition(OrderStatus::Released)?;
        let mut dropped: Units = 0;
        if status == OrderStatus::PartiallyAllocated {
            if !ship_partial {
                return Err(OrderRejection::NotFullyAllocated { key: self.record.key() });
            }
            for line in &mut self.record.lines {
                dropped += line.backordered;
                line.cancelled += line.backordered;
                line.backordered = 0;
                line.expected_on = None;
            }
        }
        let reason = if dropped > 0 {
            format!("released to the floor; {dropped} backordered unit(s) cancelled to ship what is reserved")
        } else {
            "released to the floor".to_owned()
        };
        self.transition(OrderStatus::Released, actor, &reason)
    }

    pub(super) fn start_picking(&mut self, actor: &Actor) -> Result<(), OrderRejection> {
        self.transition(OrderStatus::Picking, actor, "pick list issued")
    }

    /// Picks every unit still committed under the order's reservations.
    pub(super) fn pack(&mut self, actor: &Actor) -> Result<(), OrderRejection> {
        self.record.status.transition(OrderStatus::Packed)?;
        let state = self.state;
        let mut picked: Units = 0;
        for line in &mut self.record.lines {
            for r in &line.reservations {
                let committed = state.reservation_record(&r.reservation).map_or(0, |x| x.committed);
                if committed > 0 {
                    let m = state
                        .decide_move_pub(&MoveCommand::Pick { reservation: r.reservation.clone(), units: committed })?;
                    self.movements.push(m);
                    line.picked += committed;
                    picked += committed;
                }
            }
        }
        self.check_combined()?;
        self.transition(OrderStatus::Packed, actor, &format!("{picked} unit(s) picked and packed"))
    }

    /// Ships picked units from one node.
    pub(super) fn ship(&mut self, actor: &Actor, request: &ShipmentRequest) -> Result<(), OrderRejection> {
        let key = self.record.key();
        let status = self.record.status;
        if !matches!(status, OrderStatus::Packed | OrderStatus::PartiallyShipped) {
            return Err(IllegalTransition { from: status, to: OrderStatus::Shipped }.into());
        }
        for (field, value) in
            [("shipment_id", &request.shipment_id), ("carrier", &request.carrier), ("tracking", &request.tracking)]
        {
            if value.trim().is_empty() {
                return Err(OrderRejection::MissingField { field });
            }
        }
        if self.record.shipments.iter().any(|s| s.shipment_id == request.shipment_id) {
            return Err(OrderRejection::DuplicateShipment { key, shipment_id: request.shipment_id.clone() });
        }
        let location = &request.location;
        // Picked and not yet shipped, per line record, at this node.
        let waiting = |line: &super::book::LineRecord| -> Units {
            line.reservations
                .iter()
                .filter(|r| &r.location == location)
                .filter_map(|r| self.state.reservation_record(&r.reservation))
                .map(|x| x.picked)
                .sum()
        };
        let mut wanted: BTreeMap<usize, Units> = BTreeMap::new();
        if request.lines.is_empty() {
            for (i, line) in self.record.lines.iter().enumerate() {
                let left = waiting(line);
                if left > 0 {
                    wanted.insert(i, left);
                }
            }
        } else {
            for asked in &request.lines {
                let Some(i) = self.record.lines.iter().position(|l| l.line_id == asked.line_id) else {
                    return Err(OrderRejection::UnknownLine { key, line_id: asked.line_id.clone() });
                };
                if asked.units <= 0 {
                    return Err(crate::inventory::MoveRejection::QuantityNotPositive(asked.units).into());
                }
                *wanted.entry(i).or_default() += asked.units;
            }
            for (&i, &units) in &wanted {
                let line = &self.record.lines[i];
                let left = waiting(line);
                if units > left {
                    return Err(OrderRejection::ShipExceedsPicked {
                        key,
                        line_id: line.line_id.clone(),
                        location: location.clone(),
                        asked: units,
                        left,
                    });
                }
            }
        }
        if wanted.is_empty() {
            return Err(OrderRejection::NothingToShip { key, location: location.clone() });
        }
        let mut shipped_lines = Vec::with_capacity(wanted.len());
        for (i, units) in wanted {
            let mut left = units;
            for r in self.record.lines[i].reservations.iter().filter(|r| &r.location == location) {
                let picked = self.state.reservation_record(&r.reservation).map_or(0, |x| x.picked);
                let take = left.min(picked);
                if take > 0 {
                    let m = self
                        .state
                        .decide_move_pub(&MoveCommand::Ship { reservation: r.reservation.clone(), units: take })?;
                    self.movements.push(m);
                    left -= take;
                }
            }
            debug_assert_eq!(left, 0, "checked against what is waiting above");
            let line = &mut self.record.lines[i];
            line.shipped += units;
            shipped_lines.push(ShippedLine { line_id: line.line_id.clone(), units });
        }
        self.check_combined()?;
        let all_out = self.record.lines.iter().filter(|l| l.sku.is_some()).all(|l| l.shipped >= l.open());
        self.record.shipments.push(ShipmentRecord {
            shipment_id: request.shipment_id.clone(),
            location: location.clone(),
            carrier: request.carrier.clone(),
            service: request.service.clone(),
            tracking: request.tracking.clone(),
            lines: shipped_lines,
            shipped_at: self.now,
            delivered_at: None,
        });
        let to = if all_out { OrderStatus::Shipped } else { OrderStatus::PartiallyShipped };
        let reason = format!(
            "shipment {} from {location} via {} {} tracking {}",
            request.shipment_id, request.carrier, request.service, request.tracking
        );
        self.transition(to, actor, &reason)
    }

    pub(super) fn confirm_delivery(&mut self, actor: &Actor, shipment_id: &str) -> Result<(), OrderRejection> {
        let key = self.record.key();
        let status = self.record.status;
        if !matches!(status, OrderStatus::Shipped | OrderStatus::PartiallyShipped) {
            return Err(IllegalTransition { from: status, to: OrderStatus::Delivered }.into());
        }
        let now = self.now;
        let Some(shipment) = self.record.shipments.iter_mut().find(|s| s.shipment_id == shipment_id) else {
            return Err(OrderRejection::UnknownShipment { key, shipment_id: shipment_id.to_owned() });
        };
        if shipment.delivered_at.is_some() {
            return Err(OrderRejection::AlreadyDelivered { key, shipment_id: shipment_id.to_owned() });
        }
        shipment.delivered_at = Some(now);
        let what = format!("shipment {shipment_id} delivered");
        if status == OrderStatus::Shipped && self.record.shipments.iter().all(|s| s.delivered_at.is_some()) {
            self.transition(OrderStatus::Delivered, actor, &what)
        } else {
            self.note(actor, &what);
            Ok(())
        }
    }

    /// Whether any unit of line record `i` was picked or shipped.
    fn line_started(&self, i: usize) -> bool {
        self.record.lines[i]
            .reservations
            .iter()
            .any(|r| self.state.reservation_record(&r.reservation).is_some_and(|x| x.picked + x.shipped > 0))
    }
}
