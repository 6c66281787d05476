//! Spares on the depots' shelves: reservations made at approval, and low-stock thresholds.
//!
//! A spare is *available* when it is serviceable (new or refurbished), loose on a depot's shelf and
//! not reserved. Every claim on one is a conditional update of its row, so two requests can never
//! take the same unit, on SQLite or PostgreSQL.
use crate::domain::{Condition, Location};
use crate::entities::{depot, rma, unit};
use crate::error::{AppError, AppResult};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

/// How many candidates a reservation tries before it concludes the shelf is empty: others may be
/// claiming the same units at the same moment.
const CANDIDATES: u64 = 8;

/// Units on the depots' shelves: serviceable (new or refurbished), at a depot, not inside another
/// unit. Reserved ones included: they are still on the shelf.
pub fn on_shelves() -> sea_orm::Select<unit::Entity> {
    unit::Entity::find()
        .filter(unit::Column::Location.eq(Location::Depot.as_str()))
        .filter(unit::Column::Condition.is_in([Condition::New.as_str(), Condition::Refurbished.as_str()]))
        .filter(unit::Column::ParentUnitId.is_null())
}

fn available(part_id: Uuid, depot_id: Uuid) -> sea_orm::Select<unit::Entity> {
    on_shelves()
        .filter(unit::Column::PartId.eq(part_id))
        .filter(unit::Column::DepotId.eq(depot_id))
        .filter(unit::Column::ReservedRmaId.is_null())
}

/// Reserves one available unit of `part_id` for `rma_id` at the first of `depots` that has one
/// (refurbished units first, so repaired stock goes back out). `None` when none has any.
pub async fn reserve(
    db: &impl ConnectionTrait,
    rma_id: Uuid,
    part_id: Uuid,
    depots: &[depot::Model],
) -> AppResult<Option<(unit::Model, depot::Model)>> {
    for depot in depots {
        let candidates = available(part_id, depot.id)
            .order_by_desc(unit::Column::Condition)
            .order_by_asc(unit::Column::Serial)
            .limit(CANDIDATES)
            .all(db)
            .await?;
        for candidate in candidates {
            let claimed = unit::Entity::update_many()
                .col_expr(unit::Column::ReservedRmaId, Expr::value(Some(rma_id)))
                .filter(unit::Column::Id.eq(candidate.id))
                .filter(unit::Column::ReservedRmaId.is_null())
                .filter(unit::Column::DepotId.eq(depot.id))
                .filter(unit::Column::ParentUnitId.is_null())
                .exec(db)
                .await?;
            if claimed.rows_affected == 1 {
                let reserved = unit::Model {
                    reserved_rma_id: Some(rma_id),
                    ..candidate
                };
                return Ok(Some((reserved, depot.clone())));
            }
        }
    }
    Ok(None)
}

/// Locks the row of the unit a shipment will take, before anything else of the shelf is touched:
/// two shipments of one unit then queue up on it instead of deadlocking on each other's
/// reservations (PostgreSQL; SQLite runs one writer at a time and ignores the lock).
/// Returns the row as it stands under the lock.
pub async fn lock_unit(db: &impl ConnectionTrait, unit_id: Uuid) -> Result<Option<unit::Model>, DbErr> {
    unit::Entity::find_by_id(unit_id).lock_exclusive().one(db).await
}

/// Gives back whatever is reserved for `rma_id`.
pub async fn release(db: &impl ConnectionTrait, rma_id: Uuid) -> AppResult<()> {
    unit::Entity::update_many()
        .col_expr(unit::Column::ReservedRmaId, Expr::value(Option::<Uuid>::None))
        .filter(unit::Column::ReservedRmaId.eq(rma_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Takes `unit` (as [`lock_unit`] read it) off `depot_id`'s shelf to ship it for `rma_id`, whose
/// own reservation the caller has released. A unit reserved for another RMA may be taken too, as a
/// technician grabs any unit of the part: that RMA's reservation moves to another available unit,
/// and if there is none the shipment is refused, so no reservation is ever lost.
pub async fn take_for_shipment(
    db: &impl ConnectionTrait,
    unit: &unit::Model,
    rma_id: Uuid,
    depot_id: Uuid,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let holder = unit.reserved_rma_id.filter(|&holder| holder != rma_id);
    if let Some(holder) = holder {
        unit::Entity::update_many()
            .col_expr(unit::Column::ReservedRmaId, Expr::value(Option::<Uuid>::None))
            .filter(unit::Column::Id.eq(unit.id))
            .filter(unit::Column::ReservedRmaId.eq(holder))
            .exec(db)
            .await?;
    }
    let taken = unit::Entity::update_many()
        .col_expr(unit::Column::Location, Expr::value(Location::InTransit.as_str()))
        .col_expr(unit::Column::DepotId, Expr::value(Option::<Uuid>::None))
        .col_expr(unit::Column::UpdatedAt, Expr::value(now))
        .filter(unit::Column::Id.eq(unit.id))
        .filter(unit::Column::Location.eq(Location::Depot.as_str()))
        .filter(unit::Column::DepotId.eq(depot_id))
        .filter(unit::Column::ParentUnitId.is_null())
        .filter(unit::Column::ReservedRmaId.is_null())
        .exec(db)
        .await?;
    if taken.rows_affected != 1 {
        return Err(AppError::Conflict(format!(
            "{} was just taken from stock by another shipment; scan another unit",
            unit.serial
        )));
    }
    if let Some(holder) = holder {
        let depots = depots_in_order(db, None, depot_id).await?;
        if reserve(db, holder, unit.part_id, &depots).await?.is_none() {
            let number = rma::Entity::find_by_id(holder).one(db).await?.map(|r| r.number);
            return Err(AppError::Conflict(format!(
                "{} is the last spare of its part and is reserved for {}; ship that RMA with it",
                unit.serial,
                number.unwrap_or_default()
            )));
        }
    }
    Ok(())
}

/// The unit reserved for `rma_id`, with its depot's code.
pub async fn reservation_of(db: &impl ConnectionTrait, rma_id: Uuid) -> Result<Option<(unit::Model, String)>, DbErr> {
    let Some(unit) = unit::Entity::find()
        .filter(unit::Column::ReservedRmaId.eq(rma_id))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let code = match unit.depot_id {
        Some(id) => depot::Entity::find_by_id(id).one(db).await?.map(|d| d.code),
        None => None,
    };
    Ok(Some((unit, code.unwrap_or_default())))
}

/// The depots to reserve from, in order: the one asked for only; else the site's own depot
/// (`home_id`), then the others.
pub async fn depots_in_order(
    db: &impl ConnectionTrait,
    requested: Option<&depot::Model>,
    home_id: Uuid,
) -> Result<Vec<depot::Model>, DbErr> {
    if let Some(depot) = requested {
        return Ok(vec![depot.clone()]);
    }
    let all = depot::Entity::find().order_by_asc(depot::Column::Code).all(db).await?;
    let (home, others): (Vec<_>, Vec<_>) = all.into_iter().partition(|d| d.id == home_id);
    Ok(home.into_iter().chain(others).collect())
}
