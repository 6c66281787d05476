//! What a transition's plan is decided on ([`read`]): reference data and settings, and the units
//! the request names. The RMA and its own units are the ones read first ([`Placed`]); the update's
//! compare-and-set on the RMA's version catches any change since.
use super::view::Placed;
use crate::domain::lifecycle::{
    ActorFacts, Field, KnownUnit, PartRef, Place, PlanFacts, RmaFacts, Transition, TransitionRequest, UnitEffect,
    UnitRef,
};
use crate::domain::policy::{PartFacts, UnitFacts};
use crate::domain::sla::Entered;
use crate::domain::{Guard, Serial};
use crate::entities::{depot, part, rma, site, slot, unit};
use crate::error::{AppError, AppResult};
use crate::mail::outbox;
use crate::services::views::{self, names_of};
use crate::services::{Actor, diagnosis, repairs, stock};
use chrono::Utc;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use std::collections::HashMap;
use uuid::Uuid;

/// A value the database holds in its text form; one that does not parse is a bug, not bad input.
fn stored<T: std::str::FromStr<Err = String>>(value: &str) -> AppResult<T> {
    value
        .parse()
        .map_err(|e| AppError::Internal(anyhow::anyhow!("stored value: {e}")))
}

/// Who hears of the transition: the notice's recipients and the organization's webhook.
#[derive(Default)]
pub struct Audience {
    pub recipients: Vec<String>,
    pub webhook: Option<String>,
}

/// The catalog, depots, the site, the checklist and who is told.
struct Reference {
    site: Place,
    return_depot: Place,
    named_depot: Option<Place>,
    named_part: Option<PartRef>,
    replacement_part: Option<PartRef>,
    actor_depot: Option<Place>,
    missing_checks: Vec<String>,
    checked: Vec<Value>,
    finding_codes: Vec<String>,
    unknown_finding_codes: Vec<String>,
    reserve_from: Vec<Place>,
    vendor: Option<String>,
    removed_parts: HashMap<String, Uuid>,
    audience: Audience,
}

/// The serials a request names, normalised (a malformed one is left to the plan to refuse).
fn named_serials(row: &Transition, req: &TransitionRequest) -> Vec<String> {
    let uses = |f: Field| row.required.contains(&f) || row.optional.contains(&f);
    let single = [
        Field::ReplacementSerial,
        Field::SpareSerial,
        Field::InstalledSerial,
        Field::PulledSerial,
        Field::ScannedSerial,
    ]
    .into_iter()
    .filter(|f| uses(*f))
    .filter_map(|f| req.text(f));
    let consumed = req
        .parts_consumed
        .iter()
        .flatten()
        .map(String::as_str)
        .filter(|_| uses(Field::PartsConsumed));
    let mut serials: Vec<String> = single
        .chain(consumed)
        .filter_map(|raw| Serial::parse(raw).ok().map(Serial::into_string))
        .collect();
    serials.sort();
    serials.dedup();
    serials
}

fn part_ref(p: &part::Model) -> PartRef {
    PartRef {
        id: p.id,
        facts: PartFacts {
            number: p.number.clone(),
            kind: p.kind.clone(),
            field_replaceable: p.field_replaceable,
            holds_media: p.holds_media,
        },
    }
}

fn site_place(s: &site::Model) -> Place {
    Place {
        id: s.id,
        code: s.code.clone(),
        address: crate::services::labels::site_lines(s).join("\n"),
    }
}

async fn parts_by_number(db: &impl ConnectionTrait, numbers: Vec<String>) -> AppResult<Vec<part::Model>> {
    if numbers.is_empty() {
        return Ok(vec![]);
    }
    Ok(part::Entity::find()
        .filter(part::Column::Number.is_in(numbers))
        .all(db)
        .await?)
}

/// Reads everything the plan of `row` for `req` is decided on, and who hears of the transition.
pub async fn read(
    db: &impl ConnectionTrait,
    actor: &Actor,
    placed: &Placed,
    row: &'static Transition,
    req: &TransitionRequest,
) -> AppResult<(PlanFacts, Audience)> {
    // Side by side: on PostgreSQL each read is a round trip of its own connection.
    let (mut reference, units) =
        tokio::try_join!(reference(db, actor, placed, row, req), read_units(db, placed, row, req))?;
    let audience = std::mem::take(&mut reference.audience);
    Ok((with_units(actor, &placed.rma, reference, units)?, audience))
}

/// The catalog's, depots' and checklist's part of the facts.
async fn reference(
    db: &impl ConnectionTrait,
    actor: &Actor,
    Placed {
        rma,
        site,
        organization,
        watchers,
        ..
    }: &Placed,
    row: &'static Transition,
    req: &TransitionRequest,
) -> AppResult<Reference> {
    let uses = |f: Field| row.required.contains(&f) || row.optional.contains(&f);
    let has_effect = |e: UnitEffect| row.effects.contains(&e);
    let depot_ids = [Some(rma.return_depot_id), actor.depot_id].into_iter().flatten();
    let depots = stock::depot_places(db, depot_ids).await?;
    let depot_place = |id: Uuid| depots.get(&id).cloned();
    let return_depot = depot_place(rma.return_depot_id).ok_or_else(|| anyhow::anyhow!("return depot missing"))?;
    let named_depot = match (uses(Field::Depot), req.text(Field::Depot)) {
        (true, Some(code)) => depot::Entity::find()
            .filter(depot::Column::Code.eq(code.to_uppercase()))
            .one(db)
            .await?
            .as_ref()
            .map(stock::depot_place),
        _ => None,
    };
    // Part numbers: the one approval names, and those of removed components not known yet.
    let approval_number = req
        .text(Field::ReplacementPart)
        .filter(|_| has_effect(UnitEffect::RecordDecision))
        .map(|n| n.to_uppercase());
    let removed_numbers: Vec<String> = match has_effect(UnitEffect::ConsumeParts) {
        true => req
            .parts_removed
            .iter()
            .flatten()
            .filter_map(|r| r.part.as_deref())
            .map(|n| n.trim().to_uppercase())
            .collect(),
        false => vec![],
    };
    let numbers: Vec<String> = approval_number.iter().cloned().chain(removed_numbers).collect();
    let parts = parts_by_number(db, numbers).await?;
    let named_part = approval_number.and_then(|n| parts.iter().find(|p| p.number == n).map(part_ref));
    let removed_parts = parts.iter().map(|p| (p.number.clone(), p.id)).collect();
    let replacement_part = match rma.replacement_part_id {
        Some(id) => part::Entity::find_by_id(id).one(db).await?.as_ref().map(part_ref),
        None => None,
    };
    let (finding_codes, unknown_finding_codes) = match (uses(Field::FindingCodes), &req.finding_codes) {
        (true, Some(codes)) => repairs::resolve_codes(db, codes).await?,
        _ => (vec![], vec![]),
    };
    let missing_checks = match row.guards.contains(&Guard::MandatoryChecks) {
        true => diagnosis::missing_mandatory(db, rma).await?,
        false => vec![],
    };
    let checked = match row.to {
        crate::domain::Status::Approved | crate::domain::Status::Restored => diagnosis::checks_of(db, rma)
            .await?
            .into_iter()
            .filter(|c| c.result.is_some())
            .map(|c| json!({"step": c.step, "result": c.result}))
            .collect(),
        _ => vec![],
    };
    let reserve_from = match has_effect(UnitEffect::ReserveReplacement) {
        true => stock::depots_in_order(db, named_depot.as_ref(), site.default_depot_id).await?,
        false => vec![],
    };
    let vendor = match has_effect(UnitEffect::BackFromVendor) && req.has(Field::Carrier) {
        true => repairs::vendor_visit(db, rma.id).await?.map(|v| v.vendor),
        false => None,
    };
    let audience = match row.notice {
        Some(_) => Audience {
            recipients: outbox::recipients_among(site, watchers.clone()),
            webhook: organization.webhook_url.clone(),
        },
        None => Audience::default(),
    };
    Ok(Reference {
        site: site_place(site),
        return_depot,
        named_depot,
        named_part,
        replacement_part,
        actor_depot: actor.depot_id.and_then(depot_place),
        missing_checks,
        checked,
        finding_codes,
        unknown_finding_codes,
        reserve_from,
        vendor,
        removed_parts,
        audience,
    })
}

/// The refusal of a transition whose RMA changed between its reading and its writing.
pub fn changed_meanwhile(number: &str) -> AppError {
    AppError::VersionConflict(format!("{number} was changed by someone else; reload it and try again"))
}

/// The RMA's own units and those the request names, with their parts and the names of their places.
struct Units {
    units: Vec<unit::Model>,
    parts: HashMap<Uuid, part::Model>,
    sites: HashMap<Uuid, String>,
    depots: HashMap<Uuid, String>,
    slots: HashMap<Uuid, String>,
    parents: HashMap<Uuid, String>,
    /// The serials the request names, and those of the parts it removes.
    names: Vec<String>,
    removed: Vec<String>,
}

async fn read_units(
    db: &impl ConnectionTrait,
    placed: &Placed,
    row: &'static Transition,
    req: &TransitionRequest,
) -> AppResult<Units> {
    let names = named_serials(row, req);
    let removed: Vec<String> = match row.effects.contains(&UnitEffect::ConsumeParts) {
        true => req
            .parts_removed
            .iter()
            .flatten()
            .filter_map(|r| Serial::parse(&r.serial).ok().map(Serial::into_string))
            .collect(),
        false => vec![],
    };
    // The RMA's own units came with it; those the request names (but its own), each with its
    // part, in one read.
    let mut rows = placed.units.clone();
    let elsewhere: Vec<String> = names
        .iter()
        .chain(&removed)
        .filter(|serial| rows.iter().all(|(u, _)| &u.serial != *serial))
        .cloned()
        .collect();
    if !elsewhere.is_empty() {
        let named = unit::Entity::find()
            .filter(unit::Column::Serial.is_in(elsewhere))
            .find_also_related(part::Entity)
            .all(db)
            .await?;
        rows.extend(named.into_iter().filter_map(|(u, p)| Some(u).zip(p)));
    }
    let mut parts = HashMap::new();
    let mut units = Vec::with_capacity(rows.len());
    for (u, p) in rows {
        parts.insert(p.id, p);
        units.push(u);
    }
    // The answer names the RMA's units by serial: found here without asking again.
    views::note_names::<unit::Entity>(&units, |u| u.serial.clone());
    let (sites, depots, slots, parents) = tokio::try_join!(
        names_of::<site::Entity>(db, units.iter().filter_map(|u| u.site_id), |s| s.code.clone()),
        names_of::<depot::Entity>(db, units.iter().filter_map(|u| u.depot_id), |d| d.code.clone()),
        names_of::<slot::Entity>(db, units.iter().filter_map(|u| u.slot_id), |s| s.name.clone()),
        names_of::<unit::Entity>(db, units.iter().filter_map(|u| u.parent_unit_id), |u| u.serial.clone()),
    )?;
    Ok(Units {
        units,
        parts,
        sites,
        depots,
        slots,
        parents,
        names,
        removed,
    })
}

/// Completes the facts with the RMA's units and those the request names. The plan carries the
/// RMA's version as read: the update's compare-and-set on it makes any change since a 409.
fn with_units(actor: &Actor, rma: &rma::Model, r: Reference, read: Units) -> AppResult<PlanFacts> {
    let own_ids = [Some(rma.unit_id), Some(rma.returned_unit_id), rma.replacement_unit_id];
    let own: HashMap<Uuid, &unit::Model> = read
        .units
        .iter()
        .filter(|u| own_ids.contains(&Some(u.id)))
        .map(|u| (u.id, u))
        .collect();
    let by_serial: Vec<&unit::Model> = read
        .units
        .iter()
        .filter(|u| read.names.contains(&u.serial) || read.removed.contains(&u.serial))
        .collect();
    let unit_ref = |u: &unit::Model| -> AppResult<UnitRef> {
        let part = read
            .parts
            .get(&u.part_id)
            .ok_or_else(|| anyhow::anyhow!("unit without part"))?;
        Ok(UnitRef {
            id: u.id,
            part_id: u.part_id,
            slot_id: u.slot_id,
            parent_unit_id: u.parent_unit_id,
            facts: UnitFacts {
                serial: u.serial.clone(),
                part: part_ref(part).facts,
                condition: stored(&u.condition)?,
                location: stored(&u.location)?,
                site: u.site_id.and_then(|id| read.sites.get(&id)).cloned(),
                depot: u.depot_id.and_then(|id| read.depots.get(&id)).cloned(),
                parent_serial: u.parent_unit_id.and_then(|id| read.parents.get(&id)).cloned(),
                slot: u.slot_id.and_then(|id| read.slots.get(&id)).cloned(),
            },
        })
    };
    let own_ref = |id: Uuid| -> AppResult<UnitRef> {
        own.get(&id)
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("RMA unit {id} missing")))
            .and_then(|u| unit_ref(u))
    };
    let mut named = HashMap::new();
    for u in by_serial.iter().filter(|u| read.names.contains(&u.serial)) {
        named.insert(u.serial.clone(), unit_ref(u)?);
    }
    let removed_units = by_serial
        .iter()
        .filter(|u| read.removed.contains(&u.serial))
        .map(|u| {
            let known = KnownUnit {
                id: u.id,
                part_id: u.part_id,
                parent_unit_id: u.parent_unit_id,
            };
            (u.serial.clone(), known)
        })
        .collect();
    Ok(PlanFacts {
        now: Utc::now(),
        actor: ActorFacts {
            role: actor.role,
            email: actor.email.clone(),
            depot: r.actor_depot,
            one_organization: actor.organization_scope().is_some(),
        },
        rma: RmaFacts {
            id: rma.id,
            number: rma.number.clone(),
            status: stored(&rma.status)?,
            version: rma.version,
            keep_your_drive: rma.keep_your_drive,
            replacement_kind: rma.replacement_kind.as_deref().map(stored).transpose()?,
            replacement_part: r.replacement_part,
            bag_number: rma.bag_number.clone(),
            labor_minutes: rma.labor_minutes,
            entered: Entered::from_json(&rma.status_entered),
        },
        site: r.site,
        return_depot: r.return_depot,
        named_depot: r.named_depot,
        named_part: r.named_part,
        failed: own_ref(rma.unit_id)?,
        returned: own_ref(rma.returned_unit_id)?,
        replacement: rma.replacement_unit_id.map(own_ref).transpose()?,
        named,
        missing_checks: r.missing_checks,
        checked: r.checked,
        finding_codes: r.finding_codes,
        unknown_finding_codes: r.unknown_finding_codes,
        reserve_from: r.reserve_from,
        vendor: r.vendor,
        removed_units,
        removed_parts: r.removed_parts,
    })
}
