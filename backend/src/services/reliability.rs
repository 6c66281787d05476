//! Failure rates from depot's own records. Exposure is the time each unit actually spent installed
//! (its slot history, up to now), so units in service without a failure count; a failure is an
//! RMA approved for a replacement (the failed part: the FRU for an FRU swap, else the node).
use crate::domain::Role;
use crate::domain::lifecycle::Status;
use crate::domain::reliability::{self, DAYS_PER_YEAR, Life};
use crate::entities::{cluster, organization, part, rma, site, slot, slot_history, unit};
use crate::error::{AppError, AppResult};
use crate::services::Actor;
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};
use serde::Serialize;
use std::collections::BTreeMap;
use uuid::Uuid;

/// How the fleet is grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    Part,
    Site,
    Organization,
    Lot,
}

impl By {
    pub fn parse(s: &str) -> AppResult<By> {
        match s.trim() {
            "part" | "" => Ok(By::Part),
            "site" => Ok(By::Site),
            "organization" => Ok(By::Organization),
            "lot" => Ok(By::Lot),
            other => Err(AppError::invalid(format!(
                "by `{other}`: expected part, site, organization or lot"
            ))),
        }
    }
}

/// One group's failure rate (SPEC §10).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AfrRow {
    pub key: String,
    pub failures: u64,
    pub unit_years: f64,
    /// `100 × failures / unit_years`.
    pub afr_percent: f64,
    /// The exact (Garwood) Poisson 95 % interval, in percent per year.
    pub ci_low: f64,
    pub ci_high: f64,
}

/// One stay of a unit in a slot, with what the groupings need.
struct Stay {
    unit: Uuid,
    part: Uuid,
    lot: Option<String>,
    site: Uuid,
    organization: Uuid,
    installed_at: DateTime<Utc>,
    /// Removal, or now for a unit still installed.
    ended_at: DateTime<Utc>,
    still_installed: bool,
}

/// A failure: an RMA approved for a replacement (not cancelled).
struct Failure {
    returned_unit: Uuid,
    /// The FRU for an FRU swap, else the node.
    part: Uuid,
    lot: Option<String>,
    site: Uuid,
    organization: Uuid,
    /// When the fault was reported: the RMA's opening.
    at: DateTime<Utc>,
}

/// The fleet as far as `actor` may see it: every stay at its organization's sites and every
/// failure of its RMAs, read in a handful of whole-table passes (an IN list of every installed
/// unit would outgrow SQLite's parameter limit long before a million units).
pub struct Fleet {
    stays: Vec<Stay>,
    failures: Vec<Failure>,
    parts: BTreeMap<Uuid, part::Model>,
    sites: BTreeMap<Uuid, String>,
    organizations: BTreeMap<Uuid, String>,
}

impl Fleet {
    pub async fn load(db: &DatabaseConnection, actor: &Actor) -> AppResult<Fleet> {
        actor.require(
            &[Role::Admin, Role::FieldEngineer, Role::DepotTech, Role::DcTech],
            "read failure rates",
        )?;
        let scope = actor.organization_scope();
        let visible = |org: Uuid| scope.is_none_or(|mine| mine == org);
        let now = Utc::now();
        let site_rows = site::Entity::find().all(db).await?;
        let site_org: BTreeMap<Uuid, Uuid> = site_rows.iter().map(|s| (s.id, s.organization_id)).collect();
        let cluster_site: BTreeMap<Uuid, Uuid> = cluster::Entity::find()
            .select_only()
            .columns([cluster::Column::Id, cluster::Column::SiteId])
            .into_tuple::<(Uuid, Uuid)>()
            .all(db)
            .await?
            .into_iter()
            .collect();
        let slot_site: BTreeMap<Uuid, Uuid> = slot::Entity::find()
            .select_only()
            .columns([slot::Column::Id, slot::Column::ClusterId])
            .into_tuple::<(Uuid, Uuid)>()
            .all(db)
            .await?
            .into_iter()
            .filter_map(|(slot, cluster)| cluster_site.get(&cluster).map(|site| (slot, *site)))
            .collect();
        let units: BTreeMap<Uuid, (Uuid, Option<String>)> = unit::Entity::find()
            .select_only()
            .columns([unit::Column::Id, unit::Column::PartId, unit::Column::Lot])
            .into_tuple::<(Uuid, Uuid, Option<String>)>()
            .all(db)
            .await?
            .into_iter()
            .map(|(id, part, lot)| (id, (part, lot)))
            .collect();
        let stays = slot_history::Entity::find()
            .all(db)
            .await?
            .into_iter()
            .filter_map(|stay| {
                let site = *slot_site.get(&stay.slot_id)?;
                let organization = *site_org.get(&site)?;
                let (part, lot) = units.get(&stay.unit_id)?;
                visible(organization).then(|| Stay {
                    unit: stay.unit_id,
                    part: *part,
                    lot: lot.clone(),
                    site,
                    organization,
                    installed_at: stay.installed_at,
                    ended_at: stay.removed_at.unwrap_or(now).min(now),
                    still_installed: stay.removed_at.is_none(),
                })
            })
            .collect();
        let mut failing = rma::Entity::find()
            .filter(rma::Column::ReplacementKind.is_not_null())
            .filter(rma::Column::Status.ne(Status::Cancelled.as_str()));
        if let Some(org) = scope {
            failing = failing.filter(rma::Column::OrganizationId.eq(org));
        }
        let failures = failing
            .all(db)
            .await?
            .into_iter()
            .map(|r| Failure {
                returned_unit: r.returned_unit_id,
                part: match r.replacement_kind.as_deref() {
                    Some("fru") => r.replacement_part_id.unwrap_or(r.part_id),
                    _ => r.part_id,
                },
                lot: units.get(&r.returned_unit_id).and_then(|(_, lot)| lot.clone()),
                site: r.site_id,
                organization: r.organization_id,
                at: r.created_at,
            })
            .collect();
        Ok(Fleet {
            stays,
            failures,
            parts: part::Entity::find()
                .all(db)
                .await?
                .into_iter()
                .map(|p| (p.id, p))
                .collect(),
            sites: site_rows.into_iter().map(|s| (s.id, s.code)).collect(),
            organizations: organization::Entity::find()
                .all(db)
                .await?
                .into_iter()
                .map(|o| (o.id, o.code))
                .collect(),
        })
    }

    fn key(&self, by: By, part: Uuid, site: Uuid, organization: Uuid, lot: Option<&String>) -> Option<String> {
        match by {
            By::Part => self.parts.get(&part).map(|p| p.number.clone()),
            By::Site => self.sites.get(&site).cloned(),
            By::Organization => self.organizations.get(&organization).cloned(),
            By::Lot => Some(lot.cloned().unwrap_or_else(|| "(no lot)".into())),
        }
    }

    /// Every life of the units of `part`: a stay ends in a failure when an RMA for that unit was
    /// opened during it; otherwise it is censored at its removal or now.
    fn lives(&self, part: Uuid) -> Vec<Life> {
        let mut failed_at: BTreeMap<Uuid, Vec<DateTime<Utc>>> = BTreeMap::new();
        for f in &self.failures {
            failed_at.entry(f.returned_unit).or_default().push(f.at);
        }
        let days = |from: DateTime<Utc>, to: DateTime<Utc>| (to - from).num_milliseconds().max(0) as f64 / 86_400_000.0;
        self.stays
            .iter()
            .filter(|s| s.part == part)
            .map(|s| {
                let failure = failed_at
                    .get(&s.unit)
                    .into_iter()
                    .flatten()
                    .filter(|at| **at >= s.installed_at && **at <= s.ended_at)
                    .min();
                Life {
                    days: days(s.installed_at, failure.copied().unwrap_or(s.ended_at)),
                    failed: failure.is_some(),
                }
            })
            .collect()
    }

    /// Failures and unit-years in service per group.
    fn failures_and_years(&self, by: By) -> BTreeMap<String, (u64, f64)> {
        let mut groups: BTreeMap<String, (u64, f64)> = BTreeMap::new();
        for s in &self.stays {
            let days = (s.ended_at - s.installed_at).num_milliseconds().max(0) as f64 / 86_400_000.0;
            if let Some(k) = self.key(by, s.part, s.site, s.organization, s.lot.as_ref()) {
                groups.entry(k).or_default().1 += days / DAYS_PER_YEAR;
            }
        }
        for f in &self.failures {
            if let Some(k) = self.key(by, f.part, f.site, f.organization, f.lot.as_ref()) {
                groups.entry(k).or_default().0 += 1;
            }
        }
        groups
    }

    /// Parts with units in service, by number.
    fn installed_parts(&self) -> Vec<&part::Model> {
        let ids: std::collections::BTreeSet<Uuid> = self.stays.iter().map(|s| s.part).collect();
        let mut parts: Vec<&part::Model> = ids.iter().filter_map(|id| self.parts.get(id)).collect();
        parts.sort_by(|a, b| a.number.cmp(&b.number));
        parts
    }
}

/// The annualised failure rate per group. A customer's technician sees only its own fleet.
pub async fn afr(db: &DatabaseConnection, actor: &Actor, by: By) -> AppResult<Vec<AfrRow>> {
    Ok(Fleet::load(db, actor).await?.afr(by))
}

/// A part's life distribution: the Weibull fit when there are enough failures to make one.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WeibullRow {
    pub part: String,
    /// Lives observed (stays in slots), failed or still running.
    pub lives: u64,
    pub failures: u64,
    pub beta: Option<f64>,
    pub beta_ci_low: Option<f64>,
    pub beta_ci_high: Option<f64>,
    pub eta_days: Option<f64>,
    /// `η Γ(1 + 1/β)`.
    pub mean_life_days: Option<f64>,
    /// `infant mortality` (β's interval below 1), `wear-out` (above 1) or `random`.
    pub pattern: Option<&'static str>,
}

impl WeibullRow {
    fn new(part: &str, lives: &[Life]) -> WeibullRow {
        let fit = reliability::weibull(lives);
        WeibullRow {
            part: part.to_string(),
            lives: lives.len() as u64,
            failures: lives.iter().filter(|l| l.failed).count() as u64,
            beta: fit.map(|f| f.beta),
            beta_ci_low: fit.map(|f| f.beta_low),
            beta_ci_high: fit.map(|f| f.beta_high),
            eta_days: fit.map(|f| f.eta_days),
            mean_life_days: fit.map(|f| f.mean_days()),
            pattern: fit.map(|f| f.pattern()),
        }
    }
}

/// One step of the Kaplan–Meier curve.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SurvivalPoint {
    pub days: f64,
    pub at_risk: u64,
    pub failures: u64,
    pub survival: f64,
}

/// A part's survival: the Kaplan–Meier estimate and the Weibull fit.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Survival {
    pub weibull: WeibullRow,
    pub kaplan_meier: Vec<SurvivalPoint>,
}

/// The Weibull fit of every part with units in service.
pub async fn weibull(db: &DatabaseConnection, actor: &Actor) -> AppResult<Vec<WeibullRow>> {
    Ok(Fleet::load(db, actor).await?.weibull())
}

/// The survival of the units of part `number`.
pub async fn survival(db: &DatabaseConnection, actor: &Actor, number: &str) -> AppResult<Survival> {
    Fleet::load(db, actor).await?.survival(number)
}

impl Fleet {
    /// The annualised failure rate per group, with its exact Poisson 95 % interval.
    pub fn afr(&self, by: By) -> Vec<AfrRow> {
        self.failures_and_years(by)
            .into_iter()
            .filter_map(|(key, (failures, unit_years))| {
                reliability::afr(failures, unit_years, 0.95).map(|rate| AfrRow {
                    key,
                    failures,
                    unit_years,
                    afr_percent: rate.afr_percent,
                    ci_low: rate.ci_low,
                    ci_high: rate.ci_high,
                })
            })
            .collect()
    }

    pub fn weibull(&self) -> Vec<WeibullRow> {
        self.installed_parts()
            .into_iter()
            .map(|p| WeibullRow::new(&p.number, &self.lives(p.id)))
            .collect()
    }

    pub fn survival(&self, number: &str) -> AppResult<Survival> {
        let part = self
            .parts
            .values()
            .find(|p| p.number.eq_ignore_ascii_case(number.trim()))
            .ok_or_else(|| AppError::not_found(format!("part {number}")))?;
        let lives = self.lives(part.id);
        Ok(Survival {
            weibull: WeibullRow::new(&part.number, &lives),
            kaplan_meier: reliability::kaplan_meier(&lives)
                .into_iter()
                .map(|s| SurvivalPoint {
                    days: s.days,
                    at_risk: s.at_risk,
                    failures: s.failures,
                    survival: s.survival,
                })
                .collect(),
        })
    }
}

/// How fixes are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FixBy {
    Action,
    FaultCode,
}

impl FixBy {
    pub fn parse(s: &str) -> AppResult<FixBy> {
        match s.trim() {
            "action" | "" => Ok(FixBy::Action),
            "fault_code" => Ok(FixBy::FaultCode),
            other => Err(AppError::invalid(format!(
                "by `{other}`: expected action or fault_code"
            ))),
        }
    }
}

/// Did the fix hold: one field action's (or fault code's) record.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FixRow {
    /// The field action (`reseat`, `power cycle`, `firmware`, `cabling`, `optics`, `other`,
    /// `replace node`, `replace FRU`) or the fault code.
    pub key: String,
    pub fixes: u64,
    /// Over 7, 30 and 90 days: how many fixes old enough failed again at the same serial or slot.
    pub held: Vec<reliability::Held>,
    pub median_hours_to_restore: Option<f64>,
}

/// Every fix made at a site, restored in the field or by a swap, with the next failure of the same
/// serial or slot. `part` narrows to RMAs of that part number.
pub async fn fixes(db: &DatabaseConnection, actor: &Actor, by: FixBy, part: Option<&str>) -> AppResult<Vec<FixRow>> {
    use crate::entities::event;
    actor.require(
        &[Role::Admin, Role::FieldEngineer, Role::DepotTech, Role::DcTech],
        "read failure rates",
    )?;
    let mut q = rma::Entity::find().filter(rma::Column::Status.ne(Status::Cancelled.as_str()));
    if let Some(org) = actor.organization_scope() {
        q = q.filter(rma::Column::OrganizationId.eq(org));
    }
    let rmas = q.all(db).await?;
    let part_id = match part.map(str::trim).filter(|p| !p.is_empty()) {
        Some(number) => Some(
            part::Entity::find()
                .filter(part::Column::Number.eq(number))
                .one(db)
                .await?
                .ok_or_else(|| AppError::not_found(format!("part {number}")))?
                .id,
        ),
        None => None,
    };
    let restored_at: BTreeMap<Uuid, DateTime<Utc>> = event::Entity::find()
        .select_only()
        .columns([event::Column::RmaId, event::Column::At])
        .filter(event::Column::ToStatus.eq(Status::Restored.as_str()))
        .into_tuple::<(Uuid, DateTime<Utc>)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let swaps: BTreeMap<Uuid, slot_history::Model> = slot_history::Entity::find()
        .filter(slot_history::Column::RmaId.is_not_null())
        .all(db)
        .await?
        .into_iter()
        .filter_map(|h| h.rma_id.map(|r| (r, h)))
        .collect();
    // Each serial's and slot's reports, oldest first, to find the next one after a fix.
    let mut reported: BTreeMap<Uuid, Vec<DateTime<Utc>>> = BTreeMap::new();
    for r in &rmas {
        reported.entry(r.unit_id).or_default().push(r.created_at);
        if let Some(slot) = r.slot_id {
            reported.entry(slot).or_default().push(r.created_at);
        }
    }
    reported.values_mut().for_each(|v| v.sort());
    let next_after = |id: Option<Uuid>, at: DateTime<Utc>| {
        id.and_then(|id| reported.get(&id))
            .and_then(|times| times.iter().find(|t| **t > at).copied())
    };
    let mut groups: BTreeMap<String, Vec<reliability::Fix>> = BTreeMap::new();
    for r in rmas.iter().filter(|r| part_id.is_none_or(|p| p == r.part_id)) {
        let (action, unit, slot, fixed_at) = if let Some(at) = restored_at.get(&r.id) {
            let action = reliability::field_action(r.resolution.as_deref().unwrap_or_default());
            (action, r.unit_id, r.slot_id, *at)
        } else if let Some(swap) = swaps.get(&r.id) {
            let action = match r.replacement_kind.as_deref() {
                Some("fru") => "replace FRU",
                _ => "replace node",
            };
            (action, swap.unit_id, Some(swap.slot_id), swap.installed_at)
        } else {
            continue;
        };
        let next = [next_after(Some(unit), fixed_at), next_after(slot, fixed_at)]
            .into_iter()
            .flatten()
            .min();
        let key = match by {
            FixBy::Action => action.to_string(),
            FixBy::FaultCode => r.fault_code.clone().unwrap_or_else(|| "(no fault code)".into()),
        };
        groups.entry(key).or_default().push(reliability::Fix {
            opened_at: r.created_at,
            fixed_at,
            next_failure_at: next,
        });
    }
    let now = Utc::now();
    Ok(groups
        .into_iter()
        .map(|(key, fixes)| FixRow {
            key,
            fixes: fixes.len() as u64,
            held: reliability::held(&fixes, now),
            median_hours_to_restore: reliability::median_hours_to_restore(&fixes),
        })
        .collect())
}

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
}

pub async fn spares_policy(db: &impl sea_orm::ConnectionTrait) -> AppResult<SparesPolicy> {
    let row = crate::entities::spares_policy::Entity::find_by_id(1)
        .one(db)
        .await?
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("the spares policy row is missing")))?;
    Ok(SparesPolicy {
        fill_rate_percent: row.fill_rate_percent,
        lead_time_days: row.lead_time_days,
    })
}

/// Sets the fill rate (50–99.9 %) and vendor lead time (0–365 days); admins only.
pub async fn set_spares_policy(
    db: &DatabaseConnection,
    actor: &Actor,
    policy: SparesPolicy,
) -> AppResult<SparesPolicy> {
    use crate::entities::spares_policy;
    use sea_orm::{ActiveModelTrait, Set};
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

/// The median of `days`, if any.
fn median(mut days: Vec<f64>) -> Option<f64> {
    days.sort_by(f64::total_cmp);
    let n = days.len();
    (n > 0).then(|| {
        if n % 2 == 1 {
            days[n / 2]
        } else {
            (days[n / 2 - 1] + days[n / 2]) / 2.0
        }
    })
}

/// The recommended minimum of every shelf that serves installed units or has a threshold: the
/// base stock (`domain::reliability::base_stock`) of failure rate × installed base × (lead time
/// + depot turnaround), at the policy's fill rate.
pub async fn spares(db: &DatabaseConnection, actor: &Actor) -> AppResult<SparesPlan> {
    use crate::entities::{depot, event};
    actor.require(&[Role::DepotTech, Role::FieldEngineer, Role::Admin], "see depot stock")?;
    let policy = spares_policy(db).await?;
    let fleet = Fleet::load(db, actor).await?;
    let rates = fleet.failures_and_years(By::Part);
    let depots: BTreeMap<Uuid, String> = depot::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|d| (d.id, d.code))
        .collect();
    let serving: BTreeMap<Uuid, Uuid> = site::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|s| (s.id, s.default_depot_id))
        .collect();
    let mut installed: BTreeMap<(Uuid, Uuid), u64> = BTreeMap::new();
    for s in fleet.stays.iter().filter(|s| s.still_installed) {
        if let Some(depot) = serving.get(&s.site) {
            *installed.entry((*depot, s.part)).or_default() += 1;
        }
    }
    // Turnaround: received → returned to stock, per depot and part.
    let repaired: Vec<(Uuid, Option<String>, DateTime<Utc>)> = event::Entity::find()
        .select_only()
        .columns([event::Column::RmaId, event::Column::ToStatus, event::Column::At])
        .filter(event::Column::ToStatus.is_in([Status::Received.as_str(), Status::ReturnedToStock.as_str()]))
        .into_tuple()
        .all(db)
        .await?;
    let returned_ids: Vec<Uuid> = repaired
        .iter()
        .filter(|r| r.1.as_deref() == Some(Status::ReturnedToStock.as_str()))
        .map(|r| r.0)
        .collect();
    let shelf_of: BTreeMap<Uuid, (Uuid, Uuid)> = rma::Entity::find()
        .select_only()
        .columns([rma::Column::Id, rma::Column::ReturnDepotId, rma::Column::PartId])
        .filter(rma::Column::Id.is_in(returned_ids))
        .into_tuple::<(Uuid, Uuid, Uuid)>()
        .all(db)
        .await?
        .into_iter()
        .map(|(id, depot, part)| (id, (depot, part)))
        .collect();
    let mut received: BTreeMap<Uuid, DateTime<Utc>> = BTreeMap::new();
    let mut turnarounds: BTreeMap<(Uuid, Uuid), Vec<f64>> = BTreeMap::new();
    for (id, to, at) in &repaired {
        if to.as_deref() == Some(Status::Received.as_str()) {
            received.entry(*id).or_insert(*at);
        }
    }
    for (id, to, at) in &repaired {
        if let (Some("returned_to_stock"), Some(start), Some(shelf)) =
            (to.as_deref(), received.get(id), shelf_of.get(id))
        {
            turnarounds
                .entry(*shelf)
                .or_default()
                .push((*at - *start).num_seconds() as f64 / 86_400.0);
        }
    }
    let counts = crate::services::stock::available_counts(db, None).await?;
    let minimums: BTreeMap<(Uuid, Uuid), i32> = crate::entities::stock_threshold::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|t| ((t.depot_id, t.part_id), t.minimum))
        .collect();
    let shelves: std::collections::BTreeSet<(Uuid, Uuid)> = installed.keys().chain(minimums.keys()).copied().collect();
    let mut lines = vec![];
    for (depot_id, part_id) in shelves {
        let (Some(depot), Some(part)) = (depots.get(&depot_id), fleet.parts.get(&part_id)) else {
            continue;
        };
        let base = installed.get(&(depot_id, part_id)).copied().unwrap_or(0);
        let afr_percent = rates
            .get(&part.number)
            .filter(|(_, years)| *years > 0.0)
            .map_or(0.0, |(failures, years)| 100.0 * *failures as f64 / years);
        let (turnaround_days, turnaround_source) =
            match median(turnarounds.get(&(depot_id, part_id)).cloned().unwrap_or_default()) {
                Some(days) => (days, "measured"),
                None => {
                    let at_depot: Vec<f64> = turnarounds
                        .iter()
                        .filter(|((d, _), _)| *d == depot_id)
                        .flat_map(|(_, v)| v.iter().copied())
                        .collect();
                    median(at_depot).map_or((DEFAULT_TURNAROUND_DAYS, "default"), |days| (days, "depot"))
                }
            };
        let failures_per_year = afr_percent / 100.0 * base as f64;
        let pipeline_days = policy.lead_time_days + turnaround_days;
        let pipeline_mean = failures_per_year / DAYS_PER_YEAR * pipeline_days;
        lines.push(SparesLine {
            depot: depot.clone(),
            part: part.number.clone(),
            installed_base: base,
            afr_percent,
            failures_per_year,
            turnaround_days,
            turnaround_source,
            pipeline_days,
            pipeline_mean,
            recommended_minimum: reliability::base_stock(pipeline_mean, policy.fill_rate_percent / 100.0),
            minimum: minimums.get(&(depot_id, part_id)).copied(),
            available: counts.get(&(depot_id, part_id)).copied().unwrap_or(0),
        });
    }
    Ok(SparesPlan { policy, lines })
}
