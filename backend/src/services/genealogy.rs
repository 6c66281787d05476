//! Warnings read from a unit's and a slot's history: a serial that fails again soon after an
//! earlier RMA, and a slot that keeps eating units (a chassis or backplane problem, SPEC §2).
use crate::domain::lifecycle::Status;
use crate::entities::rma;
use chrono::{DateTime, Duration, Utc};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};
use serde::Serialize;
use uuid::Uuid;

/// A serial with another RMA within this many days is a repeat failure.
pub const REPEAT_DAYS: i64 = 90;
/// A slot that failed two different units within this many days is suspect.
pub const SLOT_DAYS: i64 = 180;

pub const REPEAT_FAILURE: &str = "repeat_failure";
pub const SLOT_EATS_UNITS: &str = "slot_eats_units";

/// One warning, with the RMAs it rests on.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Flag {
    /// `repeat_failure` or `slot_eats_units`.
    pub code: &'static str,
    pub message: String,
    pub rmas: Vec<String>,
}

/// The end states of RMAs that took no unit out of service: cancelled, or restored in the field.
const NO_UNIT_LOST: [Status; 2] = [Status::Cancelled, Status::Restored];

/// RMAs that took a unit out of service, as a query condition.
fn ate_a_unit() -> Condition {
    Condition::all().add(rma::Column::Status.is_not_in(NO_UNIT_LOST.map(|s| s.as_str())))
}

/// Whether an RMA already read took a unit out of service.
fn took_a_unit(r: &rma::Model) -> bool {
    !NO_UNIT_LOST.iter().any(|s| r.status == s.as_str())
}

/// RMAs the viewer may see: a customer's own only (a refurbished unit may have served another).
fn visible(scope: Option<Uuid>) -> Condition {
    match scope {
        Some(org) => Condition::all().add(rma::Column::OrganizationId.eq(org)),
        None => Condition::all(),
    }
}

/// The flags of one RMA, looking back from when it was opened, naming only RMAs of `scope` if given.
pub async fn rma_flags(db: &impl ConnectionTrait, r: &rma::Model, scope: Option<Uuid>) -> Result<Vec<Flag>, DbErr> {
    // One query for both looks back (this RMA's page and every transition's answer ask it): the
    // unit's RMAs and the slot's, over the longer window; each flag then takes its own.
    let mut related = Condition::any()
        .add(rma::Column::UnitId.eq(r.unit_id))
        .add(rma::Column::ReturnedUnitId.eq(r.unit_id));
    if let Some(slot_id) = r.slot_id {
        related = related.add(rma::Column::SlotId.eq(slot_id));
    }
    let window = REPEAT_DAYS.max(SLOT_DAYS);
    let earlier = rma::Entity::find()
        .filter(visible(scope))
        .filter(rma::Column::Id.ne(r.id))
        .filter(related)
        .filter(rma::Column::Status.ne(Status::Cancelled.as_str()))
        .filter(rma::Column::CreatedAt.between(r.created_at - Duration::days(window), r.created_at))
        .order_by_asc(rma::Column::CreatedAt)
        .all(db)
        .await?;
    let within = |x: &rma::Model, days: i64| x.created_at >= r.created_at - Duration::days(days);
    let mut flags = vec![];
    let repeats: Vec<&rma::Model> = earlier
        .iter()
        .filter(|x| (x.unit_id == r.unit_id || x.returned_unit_id == r.unit_id) && within(x, REPEAT_DAYS))
        .collect();
    if let Some(last) = repeats.last() {
        flags.push(Flag {
            code: REPEAT_FAILURE,
            message: format!(
                "this unit came back within {REPEAT_DAYS} days: {} was opened on it {} days earlier",
                last.number,
                (r.created_at - last.created_at).num_days()
            ),
            rmas: repeats.iter().map(|x| x.number.clone()).collect(),
        });
    }
    let ate_units: Vec<String> = earlier
        .iter()
        .filter(|x| {
            r.slot_id.is_some()
                && x.slot_id == r.slot_id
                && x.unit_id != r.unit_id
                && took_a_unit(x)
                && within(x, SLOT_DAYS)
        })
        .map(|x| x.number.clone())
        .collect();
    if !ate_units.is_empty() {
        let mut rmas = ate_units;
        rmas.push(r.number.clone());
        flags.push(slot_flag(rmas));
    }
    Ok(flags)
}

fn slot_flag(rmas: Vec<String>) -> Flag {
    Flag {
        code: SLOT_EATS_UNITS,
        message: format!(
            "this slot has failed {} different units within {SLOT_DAYS} days: suspect the chassis or \
             backplane, not only the unit",
            rmas.len()
        ),
        rmas,
    }
}

/// A slot's flag as of `now`: two or more different units failed in it over the last
/// [`SLOT_DAYS`] days.
///
/// A slot belongs to one customer's site, so its RMAs are all that customer's.
pub async fn slot_flags(db: &impl ConnectionTrait, slot_id: Uuid, now: DateTime<Utc>) -> Result<Vec<Flag>, DbErr> {
    let recent = rma::Entity::find()
        .filter(rma::Column::SlotId.eq(slot_id))
        .filter(ate_a_unit())
        .filter(rma::Column::CreatedAt.gte(now - Duration::days(SLOT_DAYS)))
        .order_by_asc(rma::Column::CreatedAt)
        .all(db)
        .await?;
    let mut units: Vec<Uuid> = recent.iter().map(|r| r.unit_id).collect();
    units.sort();
    units.dedup();
    Ok(match units.len() >= 2 {
        true => vec![slot_flag(recent.into_iter().map(|r| r.number).collect())],
        false => vec![],
    })
}

/// A unit's flag: two of its RMAs opened within [`REPEAT_DAYS`] days of each other.
pub async fn unit_flags(db: &impl ConnectionTrait, unit_id: Uuid, scope: Option<Uuid>) -> Result<Vec<Flag>, DbErr> {
    let rmas = rma::Entity::find()
        .filter(visible(scope))
        .filter(
            Condition::any()
                .add(rma::Column::UnitId.eq(unit_id))
                .add(rma::Column::ReturnedUnitId.eq(unit_id)),
        )
        .filter(rma::Column::Status.ne(Status::Cancelled.as_str()))
        .order_by_asc(rma::Column::CreatedAt)
        .all(db)
        .await?;
    let repeats: Vec<&[rma::Model]> = rmas
        .windows(2)
        .filter(|w| w[1].created_at - w[0].created_at <= Duration::days(REPEAT_DAYS))
        .collect();
    Ok(match repeats.last() {
        Some(pair) => vec![Flag {
            code: REPEAT_FAILURE,
            message: format!(
                "failed again within {REPEAT_DAYS} days: {} was opened {} days after {}",
                pair[1].number,
                (pair[1].created_at - pair[0].created_at).num_days(),
                pair[0].number
            ),
            rmas: pair.iter().map(|r| r.number.clone()).collect(),
        }],
        None => vec![],
    })
}
