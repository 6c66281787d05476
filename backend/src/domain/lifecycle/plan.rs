//! A transition decided before anything is written: [`plan`] reads the [`PlanFacts`] loaded up
//! front and the request, checks every rule of the table's row, and returns the [`Plan`] of every
//! change (the RMA's columns, unit moves, stock, shipments, records, the event and its notice),
//! or the [`Refusal`]. Pure: no database, no clock (the facts carry `now`).
use super::{Field, Notice, Refusal, Status, TransitionRequest, UnitEffect, authorize};
use crate::domain::carrier::Carrier;
use crate::domain::policy::{self, Facts, PartFacts, ReplacementKind, UnitFacts};
use crate::domain::sla::Entered;
use crate::domain::types::{Condition, Location, Role, Serial};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::collections::HashMap;
use uuid::Uuid;

/// Technician time one step may report: a day.
pub const MAX_LABOR_MINUTES: i32 = 1440;

/// Shipment directions: the replacement out, the failed unit back, and a unit's trip to its
/// hardware vendor and back.
pub const OUTBOUND: &str = "outbound";
pub const RETURN: &str = "return";
pub const TO_VENDOR: &str = "to_vendor";
pub const FROM_VENDOR: &str = "from_vendor";

/// A catalog part the request or the RMA names.
#[derive(Clone, Debug)]
pub struct PartRef {
    pub id: Uuid,
    pub facts: PartFacts,
}

/// A unit the plan may move: its row's ids and what the guards know of it.
#[derive(Clone, Debug)]
pub struct UnitRef {
    pub id: Uuid,
    pub part_id: Uuid,
    pub slot_id: Option<Uuid>,
    pub parent_unit_id: Option<Uuid>,
    pub facts: UnitFacts,
}

/// A site or a depot: its id, its code and its postal address (for shipments).
#[derive(Clone, Debug, PartialEq)]
pub struct Place {
    pub id: Uuid,
    pub code: String,
    pub address: String,
}

/// Who acts.
#[derive(Clone, Debug)]
pub struct ActorFacts {
    pub role: Role,
    pub email: String,
    /// A depot technician's depot.
    pub depot: Option<Place>,
    /// A customer's user: must not learn which serials exist at other customers.
    pub one_organization: bool,
}

/// The RMA as it stands.
#[derive(Clone, Debug)]
pub struct RmaFacts {
    pub id: Uuid,
    pub number: String,
    pub status: Status,
    pub version: i32,
    pub keep_your_drive: bool,
    pub replacement_kind: Option<ReplacementKind>,
    pub replacement_part: Option<PartRef>,
    pub bag_number: Option<String>,
    pub labor_minutes: i32,
    pub entered: Entered,
}

/// A unit named in `parts_removed` that already exists.
#[derive(Clone, Debug)]
pub struct KnownUnit {
    pub id: Uuid,
    pub part_id: Uuid,
    pub parent_unit_id: Option<Uuid>,
}

/// Everything a plan is decided on, read before it (see `services::rmas::facts`).
#[derive(Clone, Debug)]
pub struct PlanFacts {
    pub now: DateTime<Utc>,
    pub actor: ActorFacts,
    pub rma: RmaFacts,
    pub site: Place,
    pub return_depot: Place,
    /// The depot the request names (`depot`), when it names a known one.
    pub named_depot: Option<Place>,
    /// The part the request names at approval (`replacement_part`), when known.
    pub named_part: Option<PartRef>,
    pub failed: UnitRef,
    pub returned: UnitRef,
    pub replacement: Option<UnitRef>,
    /// The units the request names by serial (normalised), as far as they exist.
    pub named: HashMap<String, UnitRef>,
    /// Checklist steps required before approval that are not recorded yet.
    pub missing_checks: Vec<String>,
    /// The recorded checklist results (kept with a decision: approval or restore).
    pub checked: Vec<Value>,
    /// The finding codes the request names, in the catalog's spelling, and those it does not hold.
    pub finding_codes: Vec<String>,
    pub unknown_finding_codes: Vec<String>,
    /// The depots an approval reserves a spare from, in order of preference.
    pub reserve_from: Vec<Place>,
    /// The vendor the unit visited (coming back from it).
    pub vendor: Option<String>,
    /// `parts_removed` serials that exist, and the part numbers the unknown ones give.
    pub removed_units: HashMap<String, KnownUnit>,
    pub removed_parts: HashMap<String, Uuid>,
}

/// Where a unit goes.
#[derive(Clone, Debug, PartialEq)]
pub struct Destination {
    pub location: Location,
    pub site_id: Option<Uuid>,
    pub depot_id: Option<Uuid>,
    pub slot_id: Option<Uuid>,
    pub parent_unit_id: Option<Uuid>,
    pub replaced_by: Option<Uuid>,
}

impl Destination {
    pub fn loose_at_site(site: Uuid) -> Destination {
        Destination {
            location: Location::Site,
            site_id: Some(site),
            ..Destination::in_transit()
        }
    }
    pub fn at_depot(depot: Uuid) -> Destination {
        Destination {
            location: Location::Depot,
            depot_id: Some(depot),
            ..Destination::in_transit()
        }
    }
    pub fn in_transit() -> Destination {
        Destination {
            location: Location::InTransit,
            site_id: None,
            depot_id: None,
            slot_id: None,
            parent_unit_id: None,
            replaced_by: None,
        }
    }
}

/// One unit moved, in order (a slot is freed before it is filled).
#[derive(Clone, Debug, PartialEq)]
pub struct Move {
    pub unit_id: Uuid,
    pub to: Destination,
    pub condition: Option<Condition>,
}

/// The RMA's new columns; `None` leaves one as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RmaUpdate {
    pub labor_minutes: Option<i32>,
    pub resolution: Option<String>,
    pub decision: Option<Decision>,
    pub replacement_unit_id: Option<Option<Uuid>>,
    pub returned_unit_id: Option<Uuid>,
    pub return_depot_id: Option<Uuid>,
    pub bag_number: Option<String>,
    pub destruction_certificate: Option<String>,
}

/// What an approval decides.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub fault_code: Option<String>,
    pub keep_your_drive: bool,
    pub replacement_kind: Option<ReplacementKind>,
    pub replacement_part_id: Option<Uuid>,
}

/// A spare to set aside at approval: the first available unit of the part at the first of the
/// depots that has one.
#[derive(Clone, Debug, PartialEq)]
pub struct Reserve {
    pub part_id: Uuid,
    pub depots: Vec<Place>,
    /// The request asked for one depot: nothing there is a refusal, not an approval without a spare.
    pub required: bool,
}

/// A shipment created by the transition.
#[derive(Clone, Debug, PartialEq)]
pub struct NewShipment {
    pub direction: &'static str,
    pub unit_id: Uuid,
    pub carrier: Carrier,
    pub tracking_number: String,
    pub from_address: String,
    pub to_address: String,
    pub depot_id: Option<Uuid>,
    pub packages: i32,
    pub weight_kg: Option<f64>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// A component taken out of the repaired unit that depot had no row for: registered failed on
/// the depot's shelf.
#[derive(Clone, Debug, PartialEq)]
pub struct NewUnit {
    pub serial: String,
    pub part_id: Uuid,
    pub depot_id: Uuid,
    pub replaced_by: Option<Uuid>,
}

/// A repair record written with the transition.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub unit_id: Uuid,
    pub kind: &'static str,
    pub details: Value,
}

/// Every change a transition makes, decided.
#[derive(Clone, Debug)]
pub struct Plan {
    pub from: Status,
    pub to: Status,
    /// The version the RMA must still be at.
    pub version: i32,
    pub entered: Entered,
    pub closed: bool,
    pub rma: RmaUpdate,
    /// A reservation lives while the RMA is approved: shipping consumes it, anything else frees it.
    pub release_reservation: bool,
    pub reserve: Option<Reserve>,
    /// The unit a shipment takes off `depot_id`'s shelf.
    pub take_from_stock: Option<(Uuid, Uuid)>,
    /// Stock units built into the repaired unit at the return depot, with their serials.
    pub consume: Vec<(Uuid, String)>,
    pub new_units: Vec<NewUnit>,
    pub moves: Vec<Move>,
    /// A slot's occupant changes: `(slot, pulled, installed)`.
    pub slot_swap: Option<(Uuid, Uuid, Uuid)>,
    /// Shipments of the RMA in these directions are delivered at these times.
    pub deliveries: Vec<(&'static str, DateTime<Utc>)>,
    pub shipments: Vec<NewShipment>,
    pub records: Vec<Record>,
    /// Shelves `(depot, part)` whose available count changes: checked against their thresholds.
    pub shelves: Vec<(Uuid, Uuid)>,
    /// What the event records (the request's fields of this row, and what was checked).
    pub fields: Value,
    pub note: Option<String>,
    pub notice: Option<Notice>,
    pub attach_label: bool,
}

impl Plan {
    /// Whether the plan changes no row but the RMA's own (besides adding its records, its event
    /// and its notices): nothing on a shelf, in a slot or on the road moves.
    pub fn moves_only_the_rma(&self) -> bool {
        !self.release_reservation
            && self.reserve.is_none()
            && self.take_from_stock.is_none()
            && self.consume.is_empty()
            && self.new_units.is_empty()
            && self.moves.is_empty()
            && self.slot_swap.is_none()
            && self.deliveries.is_empty()
            && self.shipments.is_empty()
            && self.shelves.is_empty()
    }
}

fn invalid(message: impl Into<String>) -> Refusal {
    Refusal::Invalid(message.into())
}

/// Decides the transition `request` asks of the RMA in `facts`, or why it may not be made.
pub fn plan(facts: &PlanFacts, req: &TransitionRequest) -> Result<Plan, Refusal> {
    let rma = &facts.rma;
    let from = rma.status;
    let to: Status = req.to.parse().map_err(invalid)?;
    let row = authorize(from, to, facts.actor.role, rma.keep_your_drive, |f| req.has(f))?;
    if req.version != rma.version {
        return Err(Refusal::Stale(format!(
            "{} is at version {}, not {}; reload it and try again",
            rma.number, rma.version, req.version
        )));
    }
    let uses = |f: Field| row.required.contains(&f) || row.optional.contains(&f);
    let has_effect = |e: UnitEffect| row.effects.contains(&e);
    let labor_minutes = req.labor_minutes.filter(|_| uses(Field::LaborMinutes));
    if labor_minutes.is_some_and(|m| !(0..=MAX_LABOR_MINUTES).contains(&m)) {
        return Err(invalid(format!(
            "labor_minutes must be between 0 and {MAX_LABOR_MINUTES} (one day)"
        )));
    }

    // Every serial the request names, normalised; a malformed one is refused naming its field.
    let serial_of = |field: Field| -> Result<Option<String>, Refusal> {
        match (uses(field), req.text(field)) {
            (true, Some(raw)) => Serial::parse(raw)
                .map(|s| Some(s.into_string()))
                .map_err(|e| invalid(format!("{field}: {e}"))),
            _ => Ok(None),
        }
    };
    let replacement_serial = serial_of(Field::ReplacementSerial)?;
    let spare_serial = serial_of(Field::SpareSerial)?;
    let installed_serial = serial_of(Field::InstalledSerial)?;
    let pulled_serial = serial_of(Field::PulledSerial)?;
    let scanned_serial = serial_of(Field::ScannedSerial)?;
    let parts_consumed: Vec<String> = match (uses(Field::PartsConsumed), &req.parts_consumed) {
        (true, Some(list)) => list
            .iter()
            .map(|s| Serial::parse(s).map(Serial::into_string).map_err(invalid))
            .collect::<Result<_, _>>()?,
        _ => vec![],
    };

    let approving = has_effect(UnitEffect::RecordDecision);
    let keep_your_drive = match approving {
        true => req.keep_your_drive.unwrap_or(false),
        false => rma.keep_your_drive,
    };
    let replacement_kind = match approving {
        true => req
            .text(Field::ReplacementKind)
            .map(str::parse::<ReplacementKind>)
            .transpose()
            .map_err(invalid)?,
        false => rma.replacement_kind,
    };
    let replacement_part = match (approving, req.text(Field::ReplacementPart)) {
        (true, Some(number)) => Some(
            facts
                .named_part
                .clone()
                .ok_or_else(|| invalid(format!("unknown part number `{number}`")))?,
        ),
        (true, None) => None,
        (false, _) => rma.replacement_part.clone(),
    };
    let named_depot = match (uses(Field::Depot), req.text(Field::Depot)) {
        (true, Some(code)) => Some(
            facts
                .named_depot
                .clone()
                .ok_or_else(|| invalid(format!("unknown depot `{code}`; depots are CAM and SAC")))?,
        ),
        _ => None,
    };

    // A customer's technician must not learn which serials exist at other customers: for them an
    // unknown serial is refused by the guards in the same words as a known one that does not fit.
    let named_serials = [
        &replacement_serial,
        &spare_serial,
        &installed_serial,
        &pulled_serial,
        &scanned_serial,
    ]
    .into_iter()
    .flatten()
    .chain(&parts_consumed);
    if !facts.actor.one_organization {
        for serial in named_serials {
            if !facts.named.contains_key(serial) {
                return Err(invalid(format!("unknown serial {serial}")));
            }
        }
    }

    let named_facts: HashMap<String, UnitFacts> =
        facts.named.iter().map(|(s, u)| (s.clone(), u.facts.clone())).collect();
    let guard_facts = Facts {
        actor_depot: facts.actor.depot.as_ref().map(|d| d.code.as_str()),
        site: &facts.site.code,
        return_depot: &facts.return_depot.code,
        failed: &facts.failed.facts,
        returned: &facts.returned.facts,
        replacement_kind,
        replacement_part: replacement_part.as_ref().map(|p| &p.facts),
        replacement: facts.replacement.as_ref().map(|u| &u.facts),
        named: &named_facts,
        replacement_serial: replacement_serial.as_deref(),
        spare_serial: spare_serial.as_deref(),
        installed_serial: installed_serial.as_deref(),
        pulled_serial: pulled_serial.as_deref(),
        scanned_serial: scanned_serial.as_deref(),
        parts_consumed: &parts_consumed,
        test_results: req.test_results.as_deref().unwrap_or_default(),
        carrier: req.text(Field::Carrier),
        tracking_number: req.text(Field::TrackingNumber),
        packages: req.packages,
        weight_kg: req.weight_kg,
        missing_checks: &facts.missing_checks,
        recorded_bag: rma.bag_number.as_deref(),
        bag_number: req.text(Field::BagNumber),
        sanitization_method: req.text(Field::SanitizationMethod),
        sanitization_certificate: req.text(Field::SanitizationCertificate),
        keep_your_drive,
        unknown_finding_codes: &facts.unknown_finding_codes,
    };
    policy::check_guards(row, &guard_facts)?;

    // The units this transition moves.
    let unit = |s: &Option<String>| s.as_ref().and_then(|s| facts.named.get(s));
    let installed = match from {
        Status::Approved => unit(&spare_serial),
        _ => unit(&installed_serial),
    };
    let pulled = match (replacement_kind, &replacement_part) {
        (Some(ReplacementKind::Fru), Some(p)) if p.id != facts.failed.part_id => unit(&pulled_serial),
        _ => Some(&facts.failed),
    };
    let returned_id = match pulled {
        Some(p) if has_effect(UnitEffect::Swap) => p.id,
        _ => facts.returned.id,
    };
    let now = facts.now;
    let site = &facts.site;
    let depot = &facts.return_depot;
    // The guards checked the shipment's details; parsed again, they are in their normal forms.
    let shipment = |direction, unit_id, from_address: &str, to_address: &str, depot_id| -> Result<_, Refusal> {
        let carrier = Carrier::parse(req.text(Field::Carrier).unwrap_or_default()).map_err(invalid)?;
        let tracking_number = carrier
            .tracking_number(req.text(Field::TrackingNumber).unwrap_or_default())
            .map_err(invalid)?;
        Ok(NewShipment {
            direction,
            unit_id,
            carrier,
            tracking_number,
            from_address: from_address.to_string(),
            to_address: to_address.to_string(),
            depot_id,
            packages: req.packages.unwrap_or(1),
            weight_kg: req.weight_kg,
            delivered_at: None,
        })
    };

    let mut entered = rma.entered.clone();
    entered.enter(to, now);
    let mut out = Plan {
        from,
        to,
        version: rma.version,
        entered,
        closed: to.is_end(),
        rma: RmaUpdate {
            labor_minutes: labor_minutes.map(|m| rma.labor_minutes + m),
            ..Default::default()
        },
        release_reservation: from == Status::Approved,
        reserve: None,
        take_from_stock: None,
        consume: vec![],
        new_units: vec![],
        moves: vec![],
        slot_swap: None,
        deliveries: vec![],
        shipments: vec![],
        records: vec![],
        shelves: vec![],
        fields: req.recorded_fields(row),
        note: req.text(Field::Note).map(str::to_string),
        notice: row.notice,
        attach_label: row.notice == Some(Notice::ReplacementShipped) && !keep_your_drive,
    };
    let mv = |unit_id, to, condition| Move { unit_id, to, condition };
    let record = |unit_id, kind, details| Record { unit_id, kind, details };
    for effect in row.effects {
        match effect {
            UnitEffect::RecordResolution => out.rma.resolution = req.text(Field::Resolution).map(Into::into),
            UnitEffect::RecordDecision => {
                out.rma.decision = Some(Decision {
                    fault_code: req.text(Field::FaultCode).map(Into::into),
                    keep_your_drive,
                    replacement_kind,
                    replacement_part_id: match replacement_kind {
                        Some(ReplacementKind::Fru) => replacement_part.as_ref().map(|p| p.id),
                        _ => None,
                    },
                })
            }
            UnitEffect::RecordBag => out.rma.bag_number = req.text(Field::BagNumber).map(str::to_uppercase),
            UnitEffect::CloseKeptDrive => {
                let certificate = req.text(Field::DestructionCertificate);
                out.rma.destruction_certificate = certificate.map(Into::into);
                out.moves.push(mv(
                    returned_id,
                    Destination::loose_at_site(site.id),
                    Some(Condition::Scrapped),
                ));
                let details = json!({"destruction_certificate": certificate, "recorded_by": facts.actor.email});
                out.records.push(record(returned_id, "destroyed_by_customer", details));
            }
            UnitEffect::RecordSanitization => {
                if let Some(method) = req.text(Field::SanitizationMethod) {
                    let details = json!({
                        "method": method.to_lowercase(),
                        "certificate_id": req.text(Field::SanitizationCertificate),
                        "operator": facts.actor.email,
                    });
                    out.records.push(record(returned_id, "sanitization", details));
                }
            }
            UnitEffect::ReserveReplacement => {
                let part_id = match (replacement_kind, &replacement_part) {
                    (Some(ReplacementKind::Fru), Some(p)) => p.id,
                    _ => facts.failed.part_id,
                };
                out.reserve = Some(Reserve {
                    part_id,
                    depots: facts.reserve_from.clone(),
                    required: named_depot.is_some(),
                });
            }
            UnitEffect::ShipReplacement => {
                let unit = unit(&replacement_serial).ok_or_else(|| invalid("replacement_serial is required"))?;
                let from_depot = facts.actor.depot.as_ref().ok_or_else(|| {
                    Refusal::Forbidden("only a depot technician assigned to a depot can ship from its stock".into())
                })?;
                out.rma.replacement_unit_id = Some(Some(unit.id));
                out.take_from_stock = Some((unit.id, from_depot.id));
                out.shelves.push((from_depot.id, unit.part_id));
                out.shipments.push(shipment(
                    OUTBOUND,
                    unit.id,
                    &from_depot.address,
                    &site.address,
                    Some(from_depot.id),
                )?);
            }
            UnitEffect::DeliverReplacement => {
                let unit = facts
                    .replacement
                    .as_ref()
                    .ok_or_else(|| invalid("no replacement has shipped"))?;
                out.moves.push(mv(unit.id, Destination::loose_at_site(site.id), None));
                out.deliveries.push((OUTBOUND, req.delivered_at.unwrap_or(now)));
            }
            UnitEffect::Swap => {
                let installed = installed.ok_or_else(|| invalid("the installed unit is unknown"))?;
                let pulled = pulled.ok_or_else(|| invalid("the pulled unit is unknown"))?;
                out.rma.replacement_unit_id = Some(Some(installed.id));
                out.rma.returned_unit_id = Some(pulled.id);
                // Free the position first: a slot holds one unit at a time.
                let mut freed = Destination::loose_at_site(site.id);
                freed.replaced_by = Some(installed.id);
                out.moves.push(mv(pulled.id, freed, Some(Condition::Failed)));
                let into = Destination {
                    location: Location::Site,
                    site_id: Some(site.id),
                    depot_id: None,
                    slot_id: pulled.slot_id,
                    parent_unit_id: pulled.parent_unit_id,
                    replaced_by: None,
                };
                out.moves.push(mv(installed.id, into, None));
                out.slot_swap = pulled.slot_id.map(|slot| (slot, pulled.id, installed.id));
            }
            UnitEffect::ShipReturn => {
                let to_depot = named_depot.as_ref().ok_or_else(|| invalid("depot is required"))?;
                out.rma.return_depot_id = Some(to_depot.id);
                out.moves.push(mv(returned_id, Destination::in_transit(), None));
                out.shipments.push(shipment(
                    RETURN,
                    returned_id,
                    &site.address,
                    &to_depot.address,
                    Some(to_depot.id),
                )?);
            }
            UnitEffect::ReceiveReturn => {
                out.moves.push(mv(
                    returned_id,
                    Destination::at_depot(depot.id),
                    Some(Condition::Failed),
                ));
                out.deliveries.push((RETURN, now));
            }
            UnitEffect::RecordFinding => {
                let details = json!({"finding": req.text(Field::Finding), "codes": facts.finding_codes});
                out.records.push(record(returned_id, "finding", details));
            }
            UnitEffect::SendToVendor => {
                let vendor = req.text(Field::Vendor).unwrap_or_default();
                let to_vendor = Destination {
                    location: Location::Vendor,
                    ..Destination::in_transit()
                };
                out.moves.push(mv(returned_id, to_vendor, None));
                if req.has(Field::Carrier) {
                    out.shipments.push(shipment(
                        TO_VENDOR,
                        returned_id,
                        &depot.address,
                        vendor,
                        Some(depot.id),
                    )?);
                }
                let details = json!({"vendor": vendor, "vendor_reference": req.text(Field::VendorReference)});
                out.records.push(record(returned_id, "vendor_escalation", details));
            }
            UnitEffect::BackFromVendor => {
                out.moves.push(mv(returned_id, Destination::at_depot(depot.id), None));
                out.deliveries.push((TO_VENDOR, now));
                if req.has(Field::Carrier) {
                    let vendor = facts.vendor.as_deref().unwrap_or_default();
                    let mut back = shipment(FROM_VENDOR, returned_id, vendor, &depot.address, Some(depot.id))?;
                    back.delivered_at = Some(now);
                    out.shipments.push(back);
                }
                let details = json!({"vendor_return_reference": req.text(Field::VendorReturnReference)});
                out.records.push(record(returned_id, "vendor_return", details));
            }
            UnitEffect::ConsumeParts => {
                for serial in &parts_consumed {
                    let part = &facts.named[serial];
                    out.consume.push((part.id, serial.clone()));
                    out.shelves.push((depot.id, part.part_id));
                }
                let removed = removed_parts(facts, req, returned_id, &parts_consumed, &mut out)?;
                let details = json!({"parts_consumed": parts_consumed, "parts_removed": removed});
                out.records.push(record(returned_id, "parts_consumed", details));
            }
            UnitEffect::RecordTests => {
                let details = json!({"test_results": req.test_results});
                out.records.push(record(returned_id, "test_run", details));
            }
            UnitEffect::Restock => {
                out.moves.push(mv(
                    returned_id,
                    Destination::at_depot(depot.id),
                    Some(Condition::Refurbished),
                ));
                out.shelves.push((depot.id, facts.returned.part_id));
            }
            UnitEffect::Scrap => {
                out.moves.push(mv(
                    returned_id,
                    Destination::at_depot(depot.id),
                    Some(Condition::Scrapped),
                ));
            }
        }
    }
    if matches!(to, Status::Approved | Status::Restored) {
        // What was checked stays with the decision.
        out.fields["checked"] = json!(facts.checked);
    }
    Ok(out)
}

/// The components taken out of the repaired unit: each becomes a failed unit on the depot's shelf,
/// replaced by the consumed part of the same part number; a serial not known yet is registered with
/// its part. Returns their serials.
fn removed_parts(
    facts: &PlanFacts,
    req: &TransitionRequest,
    repaired_id: Uuid,
    consumed: &[String],
    out: &mut Plan,
) -> Result<Vec<String>, Refusal> {
    let depot_id = facts.return_depot.id;
    let mut serials: Vec<String> = vec![];
    for removed in req.parts_removed.as_deref().unwrap_or_default() {
        let serial = Serial::parse(&removed.serial)
            .map_err(|e| invalid(format!("parts_removed: {e}")))?
            .into_string();
        if serials.contains(&serial) || consumed.contains(&serial) {
            return Err(invalid(format!(
                "parts_removed: {serial} is listed twice, or as consumed too"
            )));
        }
        let part_id = match facts.removed_units.get(&serial) {
            Some(u) if u.parent_unit_id == Some(repaired_id) => u.part_id,
            Some(_) => {
                return Err(invalid(format!(
                    "parts_removed: {serial} is not inside {}",
                    facts.returned.facts.serial
                )));
            }
            None => {
                let number = removed.part.as_deref().map(str::trim).ok_or_else(|| {
                    invalid(format!(
                        "parts_removed: {serial} is not a known unit; give its part number too"
                    ))
                })?;
                *facts
                    .removed_parts
                    .get(&number.to_uppercase())
                    .ok_or_else(|| invalid(format!("unknown part number `{number}`")))?
            }
        };
        let replaced_by = consumed
            .iter()
            .filter_map(|c| facts.named.get(c))
            .find(|c| c.part_id == part_id)
            .map(|c| c.id);
        match facts.removed_units.get(&serial) {
            Some(known) => {
                let mut to = Destination::at_depot(depot_id);
                to.replaced_by = replaced_by;
                out.moves.push(Move {
                    unit_id: known.id,
                    to,
                    condition: Some(Condition::Failed),
                });
            }
            None => out.new_units.push(NewUnit {
                serial: serial.clone(),
                part_id,
                depot_id,
                replaced_by,
            }),
        }
        serials.push(serial);
    }
    Ok(serials)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::lifecycle::{Applies, TRANSITIONS, Transition};
    use crate::domain::policy::TestResult;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn place(n: u128, code: &str) -> Place {
        Place {
            id: id(n),
            code: code.into(),
            address: format!("{code} address"),
        }
    }

    const NODE: &str = "CN-5000";

    fn unit(n: u128, serial: &str, condition: Condition, location: Location, at: &str) -> UnitRef {
        let (site, depot) = match location {
            Location::Site => (Some(at.to_string()), None),
            Location::Depot => (None, Some(at.to_string())),
            _ => (None, None),
        };
        UnitRef {
            id: id(n),
            part_id: id(100),
            slot_id: None,
            parent_unit_id: None,
            facts: UnitFacts {
                serial: serial.into(),
                part: PartFacts {
                    number: NODE.into(),
                    kind: "cnode".into(),
                    field_replaceable: false,
                    holds_media: false,
                },
                condition,
                location,
                site,
                depot,
                parent_serial: None,
                slot: None,
            },
        }
    }

    /// An RMA on C-node CN-1 in slot 7 at cw-ord1, returning to CAM, in `status`; spares: SP-CAM on
    /// CAM's shelf, SP-SITE loose at the site, RE-1 the replacement once one has shipped.
    fn world(status: Status, role: Role) -> PlanFacts {
        let mut failed = unit(1, "CN-1", Condition::Failed, Location::Site, "cw-ord1");
        failed.slot_id = Some(id(7));
        failed.facts.slot = Some("r1-u07".into());
        let spare_at_depot = unit(2, "SP-CAM", Condition::New, Location::Depot, "CAM");
        let spare_on_site = unit(3, "SP-SITE", Condition::Refurbished, Location::Site, "cw-ord1");
        let shipped = unit(4, "RE-1", Condition::New, Location::Site, "cw-ord1");
        let stock_part = unit(5, "PART-1", Condition::New, Location::Depot, "CAM");
        let after_swap = !matches!(
            status,
            Status::Reported | Status::Diagnosing | Status::Approved | Status::ReplacementShipped
        );
        let named = [&failed, &spare_at_depot, &spare_on_site, &shipped, &stock_part]
            .into_iter()
            .map(|u| (u.facts.serial.clone(), u.clone()))
            .collect();
        let cam = place(20, "CAM");
        PlanFacts {
            now: "2026-12-04T10:00:00Z".parse().unwrap(),
            actor: ActorFacts {
                role,
                email: "someone@example.com".into(),
                depot: (role == Role::DepotTech).then(|| cam.clone()),
                one_organization: role == Role::DcTech,
            },
            rma: RmaFacts {
                id: id(50),
                number: "RMA-2026-000001".into(),
                status,
                version: 3,
                keep_your_drive: false,
                replacement_kind: (!matches!(status, Status::Reported | Status::Diagnosing))
                    .then_some(ReplacementKind::WholeUnit),
                replacement_part: None,
                bag_number: None,
                labor_minutes: 10,
                entered: [(Status::Reported, "2026-12-01T10:00:00Z".parse().unwrap())]
                    .into_iter()
                    .collect(),
            },
            site: place(10, "cw-ord1"),
            return_depot: cam.clone(),
            named_depot: Some(cam.clone()),
            named_part: None,
            returned: failed.clone(),
            failed,
            replacement: (status != Status::Approved)
                .then_some(shipped)
                .filter(|_| after_swap || matches!(status, Status::ReplacementShipped | Status::ReplacementDelivered)),
            named,
            missing_checks: vec![],
            checked: vec![json!({"step": "bmc_log", "result": "fault"})],
            finding_codes: vec![],
            unknown_finding_codes: vec![],
            reserve_from: vec![cam, place(21, "SAC")],
            vendor: Some("Acme".into()),
            removed_units: HashMap::new(),
            removed_parts: HashMap::new(),
        }
    }

    fn test_run(passed: bool) -> Vec<TestResult> {
        vec![TestResult {
            name: "burn-in".into(),
            passed,
            measurements: None,
        }]
    }

    /// A request that satisfies every rule of `row` from `from`.
    fn valid_request(row: &Transition) -> TransitionRequest {
        let mut r = TransitionRequest {
            to: row.to.as_str().into(),
            version: 3,
            note: Some("a note".into()),
            ..Default::default()
        };
        let text = |s: &str| Some(s.to_string());
        for field in row.required {
            match field {
                Field::Resolution => r.resolution = text("reseated the cable"),
                Field::FaultCode => r.fault_code = text("PSU_FAIL"),
                Field::ReplacementKind => r.replacement_kind = text("whole_unit"),
                Field::ReplacementSerial => r.replacement_serial = text("SP-CAM"),
                Field::Carrier => r.carrier = text("UPS"),
                Field::TrackingNumber => r.tracking_number = text("1Z999AA10123456784"),
                Field::SpareSerial => r.spare_serial = text("SP-SITE"),
                Field::InstalledSerial => r.installed_serial = text("RE-1"),
                Field::PulledSerial => r.pulled_serial = text("CN-1"),
                Field::Depot => r.depot = text("CAM"),
                Field::ScannedSerial => r.scanned_serial = text("CN-1"),
                Field::Finding => r.finding = text("PSU dead"),
                Field::Vendor => r.vendor = text("Acme"),
                Field::VendorReference => r.vendor_reference = text("ACME-1"),
                Field::VendorReturnReference => r.vendor_return_reference = text("ACME-1-R"),
                Field::PartsConsumed => r.parts_consumed = Some(vec!["PART-1".into()]),
                Field::TestResults => r.test_results = Some(test_run(row.to == Status::ReturnedToStock)),
                Field::Reason => r.reason = text("duplicate"),
                Field::DestructionCertificate => r.destruction_certificate = text("DC-1"),
                other => panic!("no value for required field {other}"),
            }
        }
        if row.optional.contains(&Field::LaborMinutes) {
            r.labor_minutes = Some(15);
        }
        r
    }

    /// Whether the plan shows `effect`: every effect of the table must leave a trace.
    fn shows(effect: UnitEffect, plan: &Plan) -> bool {
        let record = |kind: &str| plan.records.iter().any(|r| r.kind == kind);
        let moved = |c: Condition| plan.moves.iter().any(|m| m.condition == Some(c));
        let shipped = |d: &str| plan.shipments.iter().any(|s| s.direction == d);
        match effect {
            UnitEffect::RecordResolution => plan.rma.resolution.is_some(),
            UnitEffect::RecordDecision => plan.rma.decision.is_some(),
            UnitEffect::ReserveReplacement => plan.reserve.is_some(),
            UnitEffect::ShipReplacement => plan.take_from_stock.is_some() && shipped(OUTBOUND),
            UnitEffect::DeliverReplacement => plan.deliveries.iter().any(|(d, _)| *d == OUTBOUND),
            UnitEffect::Swap => plan.moves.len() >= 2 && plan.rma.returned_unit_id.is_some(),
            UnitEffect::ShipReturn => shipped(RETURN) && plan.rma.return_depot_id.is_some(),
            UnitEffect::ReceiveReturn => plan.deliveries.iter().any(|(d, _)| *d == RETURN) && moved(Condition::Failed),
            UnitEffect::RecordFinding => record("finding"),
            UnitEffect::SendToVendor => record("vendor_escalation"),
            UnitEffect::BackFromVendor => record("vendor_return"),
            UnitEffect::ConsumeParts => record("parts_consumed") && !plan.consume.is_empty(),
            UnitEffect::RecordTests => record("test_run"),
            // Only a unit holding media is sanitized; the plain node of this world is not.
            UnitEffect::RecordSanitization => true,
            UnitEffect::RecordBag => true,
            UnitEffect::CloseKeptDrive => plan.rma.destruction_certificate.is_some() && moved(Condition::Scrapped),
            UnitEffect::Restock => moved(Condition::Refurbished),
            UnitEffect::Scrap => moved(Condition::Scrapped),
        }
    }

    fn pairs() -> impl Iterator<Item = (&'static Transition, Status)> {
        TRANSITIONS
            .iter()
            .flat_map(|row| row.from.iter().map(move |from| (row, *from)))
    }

    fn facts_for(row: &Transition, from: Status, role: Role) -> PlanFacts {
        let mut facts = world(from, role);
        facts.rma.keep_your_drive = row.applies == Applies::KeptByCustomer;
        facts
    }

    #[test]
    fn every_row_of_the_table_plans_its_status_effects_and_notice() {
        for (row, from) in pairs() {
            let role = row.roles[0];
            let facts = facts_for(row, from, role);
            let req = valid_request(row);
            let plan = plan(&facts, &req).unwrap_or_else(|e| panic!("{from} -> {}: {e}", row.to));
            assert_eq!((plan.from, plan.to, plan.version), (from, row.to, 3));
            assert_eq!(plan.closed, row.to.is_end());
            assert_eq!(plan.notice, row.notice, "{from} -> {}", row.to);
            assert_eq!(
                plan.entered.first(&[row.to]),
                Some(facts.now),
                "the clock facts move with the RMA"
            );
            assert_eq!(
                plan.entered.first(&[Status::Reported]),
                facts.rma.entered.first(&[Status::Reported])
            );
            assert_eq!(plan.note.as_deref(), Some("a note"));
            assert_eq!(plan.release_reservation, from == Status::Approved);
            for effect in row.effects {
                assert!(shows(*effect, &plan), "{from} -> {}: {effect} left no trace", row.to);
            }
            // An RMA's answer reads its shipments only once it entered a shipping row's status.
            assert!(
                plan.shipments.is_empty() || row.effects.iter().any(|e| e.ships()),
                "{from} -> {}: a shipment from an effect that does not ship",
                row.to
            );
            if row.optional.contains(&Field::LaborMinutes) {
                assert_eq!(plan.rma.labor_minutes, Some(25), "labor adds up");
            }
            // The event records the request's fields of this row, and nothing of any other.
            let fields = plan.fields.as_object().unwrap();
            assert!(
                fields
                    .keys()
                    .all(|k| k == "checked" || row.required.iter().chain(row.optional).any(|f| f.as_str() == k))
            );
        }
    }

    #[test]
    fn every_row_is_refused_to_every_other_role_and_on_a_stale_version() {
        for (row, from) in pairs() {
            let req = valid_request(row);
            for role in Role::ALL.iter().filter(|r| !row.roles.contains(r)) {
                let refused = plan(&facts_for(row, from, *role), &req).unwrap_err();
                assert!(
                    matches!(refused, Refusal::RoleMayNot { .. }),
                    "{from} -> {} as {role}",
                    row.to
                );
            }
            let stale = TransitionRequest {
                version: 2,
                ..valid_request(row)
            };
            let refused = plan(&facts_for(row, from, row.roles[0]), &stale).unwrap_err();
            assert!(
                matches!(refused, Refusal::Stale(_)),
                "{from} -> {}: {refused:?}",
                row.to
            );
        }
    }

    #[test]
    fn a_swap_frees_the_slot_before_filling_it_and_ships_the_pulled_unit_back() {
        let row = TRANSITIONS
            .iter()
            .find(|r| r.from == [Status::ReplacementDelivered] && r.to == Status::Swapped)
            .unwrap();
        let facts = world(Status::ReplacementDelivered, Role::FieldEngineer);
        let plan = plan(&facts, &valid_request(row)).unwrap();
        assert_eq!(plan.moves[0].unit_id, id(1), "the failed unit leaves first");
        assert_eq!(plan.moves[0].to.slot_id, None);
        assert_eq!(plan.moves[0].to.replaced_by, Some(id(4)));
        assert_eq!(plan.moves[1].unit_id, id(4));
        assert_eq!(plan.moves[1].to.slot_id, Some(id(7)), "the replacement takes the slot");
        assert_eq!(plan.slot_swap, Some((id(7), id(1), id(4))));
        assert_eq!(plan.rma.replacement_unit_id, Some(Some(id(4))));
    }

    #[test]
    fn what_the_facts_lack_is_refused_in_the_requests_words() {
        let approve = TRANSITIONS.iter().find(|r| r.to == Status::Approved).unwrap();
        let facts = world(Status::Diagnosing, Role::FieldEngineer);
        let mut req = valid_request(approve);
        req.replacement_part = Some("NOPE-1".into());
        assert_eq!(
            plan(&facts, &req).unwrap_err(),
            Refusal::Invalid("unknown part number `NOPE-1`".into())
        );
        let ship = TRANSITIONS.iter().find(|r| r.to == Status::ReplacementShipped).unwrap();
        let facts = world(Status::Approved, Role::DepotTech);
        let mut req = valid_request(ship);
        req.replacement_serial = Some("GHOST-9".into());
        assert_eq!(
            plan(&facts, &req).unwrap_err(),
            Refusal::Invalid("unknown serial GHOST-9".into())
        );
        req.replacement_serial = Some("SP-CAM".into());
        req.labor_minutes = Some(5);
        assert!(
            plan(&facts, &req).unwrap().rma.labor_minutes.is_none(),
            "not a field of this row"
        );
        let triage = TRANSITIONS
            .iter()
            .find(|r| r.to == Status::Repair && r.from == [Status::Triage])
            .unwrap();
        let mut facts = world(Status::Triage, Role::DepotTech);
        facts.unknown_finding_codes = vec!["NOT_A_CODE".into()];
        assert!(matches!(
            plan(&facts, &valid_request(triage)),
            Err(Refusal::Invalid(m)) if m.contains("NOT_A_CODE")
        ));
    }
}
