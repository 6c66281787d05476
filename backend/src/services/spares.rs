//! Spares from the numbers: each depot's recommended minimum per part, the base stock of a
//! Poisson resupply pipeline at the fill rate an admin sets.
use crate::domain::Role;
use crate::domain::lifecycle::Status;
use crate::domain::reliability::{self, DAYS_PER_YEAR, median};
use crate::entities::{depot, event, rma, site, spares_policy, stock_threshold};
use crate::error::{AppError, AppResult};
use crate::services::Actor;
use crate::services::reliability::{Figures, InstalledBase, SortedIndex};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect, Set,
};
use serde::Serialize;
use std::collections::BTreeMap;
use uuid::Uuid;

/// Depot turnaround assumed where a depot has not yet returned anything to stock.
pub const DEFAULT_TURNAROUND_DAYS: f64 = 7.0;

/// The spares policy an admin sets: the share of failures that should find a spare on the shelf,
/// and how long a new unit takes from the vendor.
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SparesPolicy {
    pub fill_rate_percent: f64,
    pub lead_time_days: f64,
}

/// What a shelf's demand is made of, from the fleet's history (precomputed with the other
/// reliability figures).
#[derive(Debug, Clone)]
pub struct Demand {
    depot_id: Uuid,
    part_id: Uuid,
    depot: String,
    part: String,
    installed_base: u64,
    afr_percent: f64,
    turnaround_days: f64,
    turnaround_source: &'static str,
}

/// One shelf's recommended minimum and how it was reached.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SparesLine {
    pub depot: String,
    pub part: String,
    /// Units of the part installed at the sites this depot serves (their default depot).
    pub installed_base: u64,
    /// The part's fleet-wide failure rate, percent per unit-year.
    pub afr_percent: f64,
    /// `afr × installed base`: failures a year this depot replaces.
    pub failures_per_year: f64,
    /// Median days from receiving a failed unit to returning it to stock.
    pub turnaround_days: f64,
    /// `measured` (this depot and part), `depot` (this depot, any part) or `default`.
    pub turnaround_source: &'static str,
    /// Lead time + turnaround.
    pub pipeline_days: f64,
    /// Units expected away at any moment: failures a day × pipeline days.
    pub pipeline_mean: f64,
    pub recommended_minimum: u32,
    /// Today's threshold, if any.
    pub minimum: Option<i32>,
    /// New and refurbished units on the shelf, not reserved.
    pub available: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SparesPlan {
    pub policy: SparesPolicy,
    pub lines: Vec<SparesLine>,
    /// When the failure rates, installed base and turnarounds were computed.
    pub figures_as_of: DateTime<Utc>,
}

pub async fn policy(db: &impl ConnectionTrait) -> AppResult<SparesPolicy> {
    let row = spares_policy::Entity::find_by_id(1)
        .one(db)
        .await?
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("the spares policy row is missing")))?;
    Ok(SparesPolicy {
        fill_rate_percent: row.fill_rate_percent,
        lead_time_days: row.lead_time_days,
    })
}

/// Sets the fill rate (50–99.9 %) and vendor lead time (0–365 days); admins only.
pub async fn set_policy(db: &DatabaseConnection, actor: &Actor, policy: SparesPolicy) -> AppResult<SparesPolicy> {
    actor.require(&[Role::Admin], "set the spares policy")?;
    let mut problems = vec![];
    if !(50.0..=99.9).contains(&policy.fill_rate_percent) {
        problems.push("fill_rate_percent must be between 50 and 99.9");
    }
    if !(0.0..=365.0).contains(&policy.lead_time_days) {
        problems.push("lead_time_days must be between 0 and 365");
    }
    if !problems.is_empty() {
        return Err(AppError::invalid(problems.join("; ")));
    }
    spares_policy::ActiveModel {
        id: sea_orm::ActiveValue::Unchanged(1),
        fill_rate_percent: Set(policy.fill_rate_percent),
        lead_time_days: Set(policy.lead_time_days),
        updated_at: Set(Utc::now()),
    }
    .update(db)
    .await?;
    Ok(policy)
}

/// Every shelf that serves installed units: its installed base, the part's failure rate and the
/// depot's turnaround (received → returned to stock: this depot and part, else this depot, else
/// [`DEFAULT_TURNAROUND_DAYS`]).
pub async fn demand(db: &DatabaseConnection, fleet: &InstalledBase) -> AppResult<Vec<Demand>> {
    // Large reads are streamed, never `all()`: see `reliability::fix_tables`.
    use futures_util::TryStreamExt;
    let depots = crate::services::views::names_by_id::<depot::Entity>(db, |d| d.code).await?;
    let serving: BTreeMap<Uuid, Uuid> = site::Entity::find()
        .select_only()
        .columns([site::Column::Id, site::Column::DefaultDepotId])
        .into_tuple::<(Uuid, Uuid)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let mut installed: BTreeMap<(Uuid, Uuid), u64> = BTreeMap::new();
    for ((site, part), n) in &fleet.installed {
        if let Some(depot) = serving.get(site) {
            *installed.entry((*depot, *part)).or_default() += n;
        }
    }
    // Sorted vectors rather than hash maps: one entry per RMA returned to stock, ~700 000 at a
    // million RMAs (see `reliability::SortedIndex`).
    let shelf_of: SortedIndex<(Uuid, Uuid)> = rma::Entity::find()
        .select_only()
        .columns([rma::Column::Id, rma::Column::ReturnDepotId, rma::Column::PartId])
        .filter(rma::Column::Status.eq(Status::ReturnedToStock.as_str()))
        .into_tuple::<(Uuid, Uuid, Uuid)>()
        .stream(db)
        .await?
        .map_ok(|(id, depot, part)| (id, (depot, part)))
        .try_collect::<Vec<_>>()
        .await?
        .into_iter()
        .collect();
    // Each receipt and return to stock of those RMAs, streamed: millions of events stay in the database.
    let mut received: Vec<(Uuid, DateTime<Utc>)> = vec![];
    let mut returned: Vec<(Uuid, DateTime<Utc>)> = vec![];
    let mut rows = event::Entity::find()
        .select_only()
        .columns([event::Column::RmaId, event::Column::ToStatus, event::Column::At])
        .filter(event::Column::ToStatus.is_in([Status::Received.as_str(), Status::ReturnedToStock.as_str()]))
        .into_tuple::<(Uuid, Option<String>, DateTime<Utc>)>()
        .stream(db)
        .await?;
    while let Some((id, to, at)) = rows.try_next().await? {
        if shelf_of.of(id).next().is_none() {
            continue;
        }
        match to.as_deref() {
            Some("received") => received.push((id, at)),
            _ => returned.push((id, at)),
        }
    }
    drop(rows);
    // The first receipt of each (the index is sorted by time).
    let received: SortedIndex<DateTime<Utc>> = received.into_iter().collect();
    let mut turnarounds: BTreeMap<(Uuid, Uuid), Vec<f64>> = BTreeMap::new();
    for (id, at) in &returned {
        if let (Some(start), Some(shelf)) = (received.of(*id).next(), shelf_of.of(*id).next()) {
            turnarounds
                .entry(*shelf)
                .or_default()
                .push((*at - *start).num_seconds() as f64 / 86_400.0);
        }
    }
    let mut out = vec![];
    for ((depot_id, part_id), base) in installed {
        let (Some(depot), Some(part)) = (depots.get(&depot_id), fleet.part_numbers.get(&part_id)) else {
            continue;
        };
        let afr_percent = fleet
            .rates
            .get(part)
            .filter(|(_, years)| *years > 0.0)
            .map_or(0.0, |(failures, years)| 100.0 * *failures as f64 / years);
        let here = turnarounds.get(&(depot_id, part_id)).cloned().unwrap_or_default();
        let at_depot: Vec<f64> = turnarounds
            .iter()
            .filter(|((d, _), _)| *d == depot_id)
            .flat_map(|(_, v)| v.iter().copied())
            .collect();
        let (turnaround_days, turnaround_source) = match (median(here), median(at_depot)) {
            (Some(days), _) => (days, "measured"),
            (None, Some(days)) => (days, "depot"),
            (None, None) => (DEFAULT_TURNAROUND_DAYS, "default"),
        };
        out.push(Demand {
            depot_id,
            part_id,
            depot: depot.clone(),
            part: part.to_string(),
            installed_base: base,
            afr_percent,
            turnaround_days,
            turnaround_source,
        });
    }
    Ok(out)
}

/// The recommended minimum of every shelf that serves installed units or has a threshold: the
/// base stock (`domain::reliability::base_stock`) of failure rate × installed base × (lead time +
/// depot turnaround), at the policy's fill rate; beside today's threshold and shelf, read live.
pub async fn plan(db: &DatabaseConnection, figures: &std::sync::Arc<Figures>, actor: &Actor) -> AppResult<SparesPlan> {
    actor.require(&[Role::DepotTech, Role::FieldEngineer, Role::Admin], "see depot stock")?;
    let figures = figures.get(db, None).await?;
    let policy = policy(db).await?;
    let counts = crate::services::stock::available_counts(db, None).await?;
    let mut minimums: BTreeMap<(Uuid, Uuid), i32> = stock_threshold::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|t| ((t.depot_id, t.part_id), t.minimum))
        .collect();
    let mut lines: Vec<SparesLine> = figures
        .demand
        .iter()
        .map(|d| {
            let failures_per_year = d.afr_percent / 100.0 * d.installed_base as f64;
            let pipeline_days = policy.lead_time_days + d.turnaround_days;
            let pipeline_mean = failures_per_year / DAYS_PER_YEAR * pipeline_days;
            SparesLine {
                depot: d.depot.clone(),
                part: d.part.clone(),
                installed_base: d.installed_base,
                afr_percent: d.afr_percent,
                failures_per_year,
                turnaround_days: d.turnaround_days,
                turnaround_source: d.turnaround_source,
                pipeline_days,
                pipeline_mean,
                recommended_minimum: reliability::base_stock(pipeline_mean, policy.fill_rate_percent / 100.0),
                minimum: minimums.remove(&(d.depot_id, d.part_id)),
                available: counts.get(&(d.depot_id, d.part_id)).copied().unwrap_or(0),
            }
        })
        .collect();
    // Thresholds on shelves that serve nothing installed: nothing to recommend but zero.
    if !minimums.is_empty() {
        let depots = crate::services::views::names_by_id::<depot::Entity>(db, |d| d.code).await?;
        let parts = crate::services::views::names_by_id::<crate::entities::part::Entity>(db, |p| p.number).await?;
        for ((depot_id, part_id), minimum) in minimums {
            lines.push(SparesLine {
                depot: depots.get(&depot_id).cloned().unwrap_or_default(),
                part: parts.get(&part_id).cloned().unwrap_or_default(),
                installed_base: 0,
                afr_percent: 0.0,
                failures_per_year: 0.0,
                turnaround_days: 0.0,
                turnaround_source: "default",
                pipeline_days: policy.lead_time_days,
                pipeline_mean: 0.0,
                recommended_minimum: 0,
                minimum: Some(minimum),
                available: counts.get(&(depot_id, part_id)).copied().unwrap_or(0),
            });
        }
    }
    lines.sort_by(|a, b| (&a.depot, &a.part).cmp(&(&b.depot, &b.part)));
    Ok(SparesPlan {
        policy,
        lines,
        figures_as_of: figures.computed_at,
    })
}
