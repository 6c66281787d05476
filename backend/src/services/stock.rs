//! Spares on the depots' shelves: reservations made at approval, and low-stock thresholds.
//!
//! A spare is *available* when it is serviceable (new or refurbished), loose on a depot's shelf and
//! not reserved. Every claim on one is a conditional update of its row, so two requests can never
//! take the same unit, on SQLite or PostgreSQL.
use crate::domain::lifecycle::Place;
use crate::domain::{Condition, Location, Role};
use crate::entities::{depot, part, rma, stock_threshold, unit, user};
use crate::error::{AppError, AppResult};
use crate::services::Actor;
use crate::services::views::{Remembered, names_by_id};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
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
    depots: &[Place],
) -> AppResult<Option<(unit::Model, Place)>> {
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
/// Returns the shelf it went back to, whose threshold the caller checks.
pub async fn release(db: &impl ConnectionTrait, rma_id: Uuid) -> AppResult<Option<Shelf>> {
    let Some(spare) = unit::Entity::find()
        .filter(unit::Column::ReservedRmaId.eq(rma_id))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    unit::Entity::update_many()
        .col_expr(unit::Column::ReservedRmaId, Expr::value(Option::<Uuid>::None))
        .filter(unit::Column::Id.eq(spare.id))
        .filter(unit::Column::ReservedRmaId.eq(rma_id))
        .exec(db)
        .await?;
    Ok(spare.depot_id.map(|depot| (depot, spare.part_id)))
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
    requested: Option<&Place>,
    home_id: Uuid,
) -> Result<Vec<Place>, DbErr> {
    if let Some(depot) = requested {
        return Ok(vec![depot.clone()]);
    }
    let all = depot::Entity::find().order_by_asc(depot::Column::Code).all(db).await?;
    let (home, others): (Vec<_>, Vec<_>) = all.into_iter().partition(|d| d.id == home_id);
    Ok(home.iter().chain(&others).map(depot_place).collect())
}

/// A depot as a plan names it: id, code and postal address.
pub fn depot_place(d: &depot::Model) -> Place {
    Place {
        id: d.id,
        code: d.code.clone(),
        address: crate::services::labels::depot_lines(d).join("\n"),
    }
}

static DEPOT_PLACES: Remembered<Place> = Remembered::new();

/// The places of the depots with the given ids: every transition needs its return depot's, and
/// depots are never edited (see [`Remembered`]).
pub fn depot_places<'a>(
    db: &'a impl ConnectionTrait,
    ids: impl IntoIterator<Item = Uuid>,
) -> impl Future<Output = Result<HashMap<Uuid, Place>, DbErr>> + Send + 'a {
    DEPOT_PLACES.of::<depot::Entity>(db, ids, depot_place)
}

/// A (depot, part) pair of the shelves.
pub type Shelf = (Uuid, Uuid);

/// Available units per shelf, for the shelves given (all when `None`), in one grouped query.
pub async fn available_counts(
    db: &impl ConnectionTrait,
    shelves: Option<&[Shelf]>,
) -> Result<HashMap<Shelf, i64>, DbErr> {
    let mut query = on_shelves().filter(unit::Column::ReservedRmaId.is_null());
    if let Some(shelves) = shelves {
        query = query
            .filter(unit::Column::DepotId.is_in(shelves.iter().map(|s| s.0)))
            .filter(unit::Column::PartId.is_in(shelves.iter().map(|s| s.1)));
    }
    // Read by name: transitions count shelves on the SQLite writer (see `db::write`).
    #[derive(sea_orm::FromQueryResult)]
    struct ShelfCount {
        depot_id: Option<Uuid>,
        part_id: Uuid,
        count: i64,
    }
    let rows = query
        .select_only()
        .column(unit::Column::DepotId)
        .column(unit::Column::PartId)
        .column_as(Expr::from(Func::count(Expr::col(unit::Column::Id))), "count")
        .group_by(unit::Column::DepotId)
        .group_by(unit::Column::PartId)
        .into_model::<ShelfCount>()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| r.depot_id.map(|d| ((d, r.part_id), r.count)))
        .collect())
}

/// A low-stock threshold and where the shelf stands against it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ThresholdLine {
    /// Depot code.
    pub depot: String,
    /// Part number.
    pub part: String,
    pub minimum: i32,
    /// New and refurbished units on the shelf, not reserved.
    pub available: i64,
    pub short: bool,
    /// Since when it has been short (the alert went out then).
    pub short_since: Option<DateTime<Utc>>,
}

/// A move that tops up a short shelf from the other depot's surplus.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Move {
    pub part: String,
    /// Depot code to take the units from.
    pub from: String,
    /// Depot code that is short.
    pub to: String,
    pub quantity: i64,
}

/// `GET /api/v1/stock/restock`: the short shelves and the moves that refill them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Restock {
    pub short: Vec<ThresholdLine>,
    pub moves: Vec<Move>,
}

/// `PUT /api/v1/stock/thresholds`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SetThreshold {
    /// Depot code.
    pub depot: String,
    /// Part number.
    pub part: String,
    /// The fewest available units the depot should hold; 0 removes the threshold.
    pub minimum: i32,
}

/// The largest minimum a threshold takes.
const MAX_MINIMUM: i32 = 10_000;

/// Every threshold with its shelf's standing, by depot and part.
pub async fn thresholds(db: &impl ConnectionTrait, actor: &Actor) -> AppResult<Vec<ThresholdLine>> {
    actor.require(&[Role::DepotTech, Role::FieldEngineer, Role::Admin], "see depot stock")?;
    Ok(standing(db).await?.lines)
}

/// Every threshold against the available counts, with the counts and the names they were read with.
struct Standing {
    lines: Vec<ThresholdLine>,
    counts: HashMap<Shelf, i64>,
    depots: HashMap<Uuid, String>,
    parts: HashMap<Uuid, String>,
}

async fn standing(db: &impl ConnectionTrait) -> AppResult<Standing> {
    let rows = stock_threshold::Entity::find().all(db).await?;
    let counts = available_counts(db, None).await?;
    let depots = names_by_id::<depot::Entity>(db, |d| d.code).await?;
    let parts = names_by_id::<part::Entity>(db, |p| p.number).await?;
    let mut lines: Vec<ThresholdLine> = rows
        .into_iter()
        .map(|t| {
            let available = counts.get(&(t.depot_id, t.part_id)).copied().unwrap_or(0);
            ThresholdLine {
                depot: depots.get(&t.depot_id).cloned().unwrap_or_default(),
                part: parts.get(&t.part_id).cloned().unwrap_or_default(),
                minimum: t.minimum,
                available,
                short: available < i64::from(t.minimum),
                short_since: t.short_since,
            }
        })
        .collect();
    lines.sort_by(|a, b| (&a.depot, &a.part).cmp(&(&b.depot, &b.part)));
    Ok(Standing {
        lines,
        counts,
        depots,
        parts,
    })
}

/// Sets (or with 0 removes) the threshold of a depot and part: an admin anywhere, a depot
/// technician at their own depot.
pub async fn set_threshold(
    db: &sea_orm::DatabaseConnection,
    actor: &Actor,
    input: SetThreshold,
) -> AppResult<Option<ThresholdLine>> {
    actor.require(&[Role::DepotTech, Role::Admin], "set stock thresholds")?;
    if !(0..=MAX_MINIMUM).contains(&input.minimum) {
        return Err(AppError::invalid(format!(
            "minimum must be between 0 and {MAX_MINIMUM}"
        )));
    }
    let txn = crate::db::begin_write(db).await?;
    let code = input.depot.trim().to_uppercase();
    let depot = depot::Entity::find()
        .filter(depot::Column::Code.eq(&code))
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::invalid(format!("unknown depot `{}`", input.depot.trim())))?;
    if actor.role == Role::DepotTech && actor.depot_id != Some(depot.id) {
        return Err(AppError::Forbidden(format!(
            "you set thresholds for your own depot, not {}",
            depot.code
        )));
    }
    let number = input.part.trim().to_uppercase();
    let part = part::Entity::find()
        .filter(part::Column::Number.eq(&number))
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::invalid(format!("unknown part `{}`", input.part.trim())))?;
    let existing = stock_threshold::Entity::find()
        .filter(stock_threshold::Column::DepotId.eq(depot.id))
        .filter(stock_threshold::Column::PartId.eq(part.id))
        .one(&txn)
        .await?;
    if input.minimum == 0 {
        if let Some(t) = existing {
            stock_threshold::Entity::delete_by_id(t.id).exec(&txn).await?;
        }
        txn.commit().await?;
        return Ok(None);
    }
    let now = Utc::now();
    let available = available_counts(&txn, Some(&[(depot.id, part.id)]))
        .await?
        .get(&(depot.id, part.id))
        .copied()
        .unwrap_or(0);
    let short = available < i64::from(input.minimum);
    // Setting a minimum is not stock crossing it: no alert, but the shelf shows short from now.
    let short_since = match (&existing, short) {
        (_, false) => None,
        (Some(t), true) => t.short_since.or(Some(now)),
        (None, true) => Some(now),
    };
    match existing {
        Some(t) => {
            stock_threshold::ActiveModel {
                id: sea_orm::ActiveValue::Unchanged(t.id),
                minimum: Set(input.minimum),
                short_since: Set(short_since),
                updated_at: Set(now),
                ..Default::default()
            }
            .update(&txn)
            .await?;
        }
        None => {
            stock_threshold::ActiveModel {
                id: Set(Uuid::now_v7()),
                depot_id: Set(depot.id),
                part_id: Set(part.id),
                minimum: Set(input.minimum),
                short_since: Set(short_since),
                updated_at: Set(now),
            }
            .insert(&txn)
            .await?;
        }
    }
    txn.commit().await?;
    Ok(Some(ThresholdLine {
        depot: depot.code,
        part: part.number,
        minimum: input.minimum,
        available,
        short,
        short_since,
    }))
}

/// The short shelves and, for each, the moves from other depots' surplus (what they hold above
/// their own minimum) that refill it, largest surplus first.
pub async fn restock(db: &impl ConnectionTrait, actor: &Actor) -> AppResult<Restock> {
    actor.require(&[Role::DepotTech, Role::FieldEngineer, Role::Admin], "see depot stock")?;
    let Standing {
        lines,
        counts,
        depots,
        parts,
    } = standing(db).await?;
    let minimum = |depot: &str, part: &str| {
        lines
            .iter()
            .find(|l| l.depot == depot && l.part == part)
            .map_or(0, |l| i64::from(l.minimum))
    };
    // What each depot could give of each part, kept up to date as moves are planned.
    let mut surplus: HashMap<(String, String), i64> = counts
        .iter()
        .filter_map(|((d, p), n)| {
            let (depot, part) = (depots.get(d)?.clone(), parts.get(p)?.clone());
            let spare = n - minimum(&depot, &part);
            (spare > 0).then_some(((depot, part), spare))
        })
        .collect();
    let short: Vec<ThresholdLine> = lines.into_iter().filter(|l| l.short).collect();
    let mut moves = vec![];
    for line in &short {
        let mut missing = i64::from(line.minimum) - line.available;
        let mut donors: Vec<(String, i64)> = surplus
            .iter()
            .filter(|((d, p), _)| p == &line.part && d != &line.depot)
            .map(|((d, _), n)| (d.clone(), *n))
            .collect();
        donors.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        for (donor, spare) in donors {
            if missing == 0 {
                break;
            }
            let quantity = spare.min(missing);
            missing -= quantity;
            *surplus.entry((donor.clone(), line.part.clone())).or_default() -= quantity;
            moves.push(Move {
                part: line.part.clone(),
                from: donor,
                to: line.depot.clone(),
                quantity,
            });
        }
    }
    Ok(Restock { short, moves })
}

/// After a transition changed what is available on `shelves`: marks thresholds that went short
/// (returned, for the alert the caller queues) and clears those that recovered.
pub async fn crossings(
    db: &impl ConnectionTrait,
    shelves: &[Shelf],
    now: DateTime<Utc>,
) -> AppResult<Vec<ThresholdLine>> {
    if shelves.is_empty() {
        return Ok(vec![]);
    }
    let rows: Vec<stock_threshold::Model> = stock_threshold::Entity::find()
        .filter(stock_threshold::Column::DepotId.is_in(shelves.iter().map(|s| s.0)))
        .filter(stock_threshold::Column::PartId.is_in(shelves.iter().map(|s| s.1)))
        .all(db)
        .await?
        .into_iter()
        .filter(|t| shelves.contains(&(t.depot_id, t.part_id)))
        .collect();
    if rows.is_empty() {
        return Ok(vec![]);
    }
    let counts = available_counts(db, Some(shelves)).await?;
    let mut crossed = vec![];
    for t in rows {
        let available = counts.get(&(t.depot_id, t.part_id)).copied().unwrap_or(0);
        let short = available < i64::from(t.minimum);
        if short == t.short_since.is_some() {
            continue;
        }
        let short_since = short.then_some(now);
        stock_threshold::Entity::update_many()
            .col_expr(stock_threshold::Column::ShortSince, Expr::value(short_since))
            .filter(stock_threshold::Column::Id.eq(t.id))
            .exec(db)
            .await?;
        if short {
            let depot = depot::Entity::find_by_id(t.depot_id).one(db).await?;
            let part = part::Entity::find_by_id(t.part_id).one(db).await?;
            crossed.push(ThresholdLine {
                depot: depot.map(|d| d.code).unwrap_or_default(),
                part: part.map(|p| p.number).unwrap_or_default(),
                minimum: t.minimum,
                available,
                short,
                short_since,
            });
        }
    }
    Ok(crossed)
}

/// Who hears about a depot (low stock, a replacement dead on arrival): its technicians and the admins.
pub async fn depot_staff(db: &impl ConnectionTrait, depot_codes: &[String]) -> Result<Vec<String>, DbErr> {
    let depot_ids: Vec<Uuid> = depot::Entity::find()
        .filter(depot::Column::Code.is_in(depot_codes.iter().cloned()))
        .all(db)
        .await?
        .into_iter()
        .map(|d| d.id)
        .collect();
    let mut to: Vec<String> = user::Entity::find()
        .filter(user::Column::Disabled.eq(false))
        .filter(
            sea_orm::Condition::any()
                .add(user::Column::Role.eq(Role::Admin.as_str()))
                .add(
                    sea_orm::Condition::all()
                        .add(user::Column::Role.eq(Role::DepotTech.as_str()))
                        .add(user::Column::DepotId.is_in(depot_ids)),
                ),
        )
        .all(db)
        .await?
        .into_iter()
        .map(|u| u.email)
        .collect();
    to.sort();
    Ok(to)
}
