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
use std::collections::{BTreeMap, HashMap};
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
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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

/// One stay of a unit in a slot, as a life: how long, whether it ended in a failure, and what the
/// groupings need (as indexes into the fleet's small tables: a million stays stay small).
struct Stay {
    part: u16,
    site: u16,
    lot: u32,
    /// Installed to removal (or now): exposure.
    exposed_days: f64,
    /// Installed to the failure's report, or to removal (or now): the life.
    days: f64,
    failed: bool,
    still_installed: bool,
}

/// Where a failure is counted: (part, site, lot) indexes.
type Cell = (u16, u16, u32);

/// The fleet as far as a scope may see it: every stay at its organization's sites as a life, and
/// the failure count of every part, site and lot. Read in a few streamed whole-table passes (an IN
/// list of every installed unit would outgrow SQLite's parameter limit long before a million
/// units, and holding the rows themselves would take gigabytes).
pub struct Fleet {
    stays: Vec<Stay>,
    failures: BTreeMap<Cell, u64>,
    /// Index tables: parts, sites (with their organization), lots ("" for none).
    parts: Vec<part::Model>,
    sites: Vec<(Uuid, String, Uuid)>,
    lots: Vec<String>,
    organizations: BTreeMap<Uuid, String>,
}

impl Fleet {
    /// The fleet of organization `scope`, or all of it.
    pub async fn load(db: &DatabaseConnection, scope: Option<Uuid>) -> AppResult<Fleet> {
        use futures_util::TryStreamExt;
        let visible = |org: Uuid| scope.is_none_or(|mine| mine == org);
        let now = Utc::now();
        let parts = part::Entity::find().all(db).await?;
        let part_index: HashMap<Uuid, u16> = parts.iter().enumerate().map(|(i, p)| (p.id, i as u16)).collect();
        let sites: Vec<(Uuid, String, Uuid)> = site::Entity::find()
            .all(db)
            .await?
            .into_iter()
            .map(|s| (s.id, s.code, s.organization_id))
            .collect();
        let site_index: HashMap<Uuid, u16> = sites.iter().enumerate().map(|(i, s)| (s.0, i as u16)).collect();
        let cluster_site: HashMap<Uuid, u16> = cluster::Entity::find()
            .select_only()
            .columns([cluster::Column::Id, cluster::Column::SiteId])
            .into_tuple::<(Uuid, Uuid)>()
            .all(db)
            .await?
            .into_iter()
            .filter_map(|(c, s)| site_index.get(&s).map(|i| (c, *i)))
            .collect();
        // Per-entry maps of a million keys are sorted vectors here (`SortedIndex`): a hash map's
        // buckets and growth held this computation's memory well past the goal of 200 MB.
        let slot_site: SortedIndex<u16> = slot::Entity::find()
            .select_only()
            .columns([slot::Column::Id, slot::Column::ClusterId])
            .into_tuple::<(Uuid, Uuid)>()
            .stream(db)
            .await?
            .try_filter_map(|(slot, cluster)| {
                std::future::ready(Ok(cluster_site.get(&cluster).map(|site| (slot, *site))))
            })
            .try_collect::<Vec<_>>()
            .await?
            .into_iter()
            .collect();
        let mut lots: Vec<String> = vec![String::new()];
        let mut lot_index: HashMap<String, u32> = HashMap::new();
        // Every unit's part and lot.
        let mut units: Vec<(Uuid, (u16, u32))> = vec![];
        let mut rows = unit::Entity::find()
            .select_only()
            .columns([unit::Column::Id, unit::Column::PartId, unit::Column::Lot])
            .into_tuple::<(Uuid, Uuid, Option<String>)>()
            .stream(db)
            .await?;
        while let Some((id, part, lot)) = rows.try_next().await? {
            let lot = match lot {
                None => 0,
                Some(l) => *lot_index.entry(l.clone()).or_insert_with(|| {
                    lots.push(l);
                    (lots.len() - 1) as u32
                }),
            };
            if let Some(part) = part_index.get(&part) {
                units.push((id, (*part, lot)));
            }
        }
        drop(rows);
        let units: SortedIndex<(u16, u32)> = units.into_iter().collect();
        // Failures: an RMA approved for a replacement and not cancelled, counted where it
        // happened; each failed unit's report times, to end its lives.
        let failing = counted_rmas(scope)
            .columns([
                rma::Column::ReturnedUnitId,
                rma::Column::ReplacementKind,
                rma::Column::ReplacementPartId,
                rma::Column::PartId,
                rma::Column::SiteId,
                rma::Column::CreatedAt,
            ])
            .filter(rma::Column::ReplacementKind.is_not_null());
        type Row = (Uuid, Option<String>, Option<Uuid>, Uuid, Uuid, DateTime<Utc>);
        let mut failures: BTreeMap<Cell, u64> = BTreeMap::new();
        let mut failed_at: Vec<(Uuid, DateTime<Utc>)> = vec![];
        let mut rows = failing.into_tuple::<Row>().stream(db).await?;
        while let Some((returned, kind, replacement_part, part, site, at)) = rows.try_next().await? {
            // An FRU swap is a failure of the FRU, a whole-unit replacement one of the node.
            let failed_part = match kind.as_deref() {
                Some("fru") => replacement_part.unwrap_or(part),
                _ => part,
            };
            let lot = units.of(returned).next().map_or(0, |u| u.1);
            if let (Some(p), Some(s)) = (part_index.get(&failed_part), site_index.get(&site)) {
                *failures.entry((*p, *s, lot)).or_default() += 1;
            }
            failed_at.push((returned, at));
        }
        drop(rows);
        let failed_at: SortedIndex<DateTime<Utc>> = failed_at.into_iter().collect();
        // Lives: a stay ends in a failure when an RMA for its unit was opened during it;
        // otherwise it is censored at its removal or now.
        let mut stays = vec![];
        let mut rows = slot_history::Entity::find()
            .select_only()
            .columns([
                slot_history::Column::SlotId,
                slot_history::Column::UnitId,
                slot_history::Column::InstalledAt,
                slot_history::Column::RemovedAt,
            ])
            .into_tuple::<(Uuid, Uuid, DateTime<Utc>, Option<DateTime<Utc>>)>()
            .stream(db)
            .await?;
        while let Some((slot, unit, installed_at, removed_at)) = rows.try_next().await? {
            let (Some(&site), Some(&(part, lot))) = (slot_site.of(slot).next(), units.of(unit).next()) else {
                continue;
            };
            if !visible(sites[site as usize].2) {
                continue;
            }
            let ended_at = removed_at.unwrap_or(now).min(now);
            // The earliest report within the stay (the index is sorted by time).
            let failure = failed_at.of(unit).find(|at| **at >= installed_at && **at <= ended_at);
            let days = |end: DateTime<Utc>| (end - installed_at).num_milliseconds().max(0) as f64 / 86_400_000.0;
            stays.push(Stay {
                part,
                site,
                lot,
                exposed_days: days(ended_at),
                days: days(failure.copied().unwrap_or(ended_at)),
                failed: failure.is_some(),
                still_installed: removed_at.is_none(),
            });
        }
        drop(rows);
        Ok(Fleet {
            stays,
            failures,
            parts,
            sites,
            lots,
            organizations: organization::Entity::find()
                .all(db)
                .await?
                .into_iter()
                .map(|o| (o.id, o.code))
                .collect(),
        })
    }

    fn key(&self, by: By, part: u16, site: u16, lot: u32) -> Option<String> {
        match by {
            By::Part => self.parts.get(part as usize).map(|p| p.number.clone()),
            By::Site => self.sites.get(site as usize).map(|s| s.1.clone()),
            By::Organization => self
                .sites
                .get(site as usize)
                .and_then(|s| self.organizations.get(&s.2).cloned()),
            By::Lot => Some(match self.lots.get(lot as usize) {
                Some(l) if !l.is_empty() => l.clone(),
                _ => "(no lot)".into(),
            }),
        }
    }

    /// Every life of the units of part `index`.
    fn lives(&self, index: u16) -> Vec<Life> {
        self.stays
            .iter()
            .filter(|s| s.part == index)
            .map(|s| Life {
                days: s.days,
                failed: s.failed,
            })
            .collect()
    }

    /// Failures and unit-years in service per group.
    pub fn failures_and_years(&self, by: By) -> BTreeMap<String, (u64, f64)> {
        let mut groups: BTreeMap<String, (u64, f64)> = BTreeMap::new();
        let mut years: HashMap<Cell, f64> = HashMap::new();
        for s in &self.stays {
            *years.entry((s.part, s.site, s.lot)).or_default() += s.exposed_days / DAYS_PER_YEAR;
        }
        for ((part, site, lot), y) in years {
            if let Some(k) = self.key(by, part, site, lot) {
                groups.entry(k).or_default().1 += y;
            }
        }
        for (&(part, site, lot), n) in &self.failures {
            if let Some(k) = self.key(by, part, site, lot) {
                groups.entry(k).or_default().0 += n;
            }
        }
        groups
    }

    /// What the spares' demand needs of the fleet, small enough to keep once the stays are dropped.
    pub fn installed_base(&self) -> InstalledBase {
        let mut installed: BTreeMap<(Uuid, Uuid), u64> = BTreeMap::new();
        for s in self.stays.iter().filter(|s| s.still_installed) {
            let key = (self.sites[s.site as usize].0, self.parts[s.part as usize].id);
            *installed.entry(key).or_default() += 1;
        }
        InstalledBase {
            installed,
            rates: self.failures_and_years(By::Part),
            part_numbers: self.parts.iter().map(|p| (p.id, p.number.clone())).collect(),
        }
    }

    /// Parts with units in service, by number, with their index.
    fn installed_parts(&self) -> Vec<(u16, &part::Model)> {
        let ids: std::collections::BTreeSet<u16> = self.stays.iter().map(|s| s.part).collect();
        let mut parts: Vec<(u16, &part::Model)> = ids.into_iter().map(|i| (i, &self.parts[i as usize])).collect();
        parts.sort_by(|a, b| a.1.number.cmp(&b.1.number));
        parts
    }
}

/// Units in service per (site, part id), with each part's failures and unit-years (by number).
pub struct InstalledBase {
    pub installed: BTreeMap<(Uuid, Uuid), u64>,
    pub rates: BTreeMap<String, (u64, f64)>,
    pub part_numbers: HashMap<Uuid, String>,
}

/// The RMAs the figures count: those of organization `scope` (or all) not cancelled, no column
/// chosen yet.
pub fn counted_rmas(scope: Option<Uuid>) -> sea_orm::Select<rma::Entity> {
    let rmas = rma::Entity::find()
        .select_only()
        .filter(rma::Column::Status.ne(Status::Cancelled.as_str()));
    match scope {
        Some(org) => rmas.filter(rma::Column::OrganizationId.eq(org)),
        None => rmas,
    }
}

/// Who reads failure rates: everyone but integrations (a customer, its own fleet).
pub fn require_reader(actor: &Actor) -> AppResult<()> {
    actor.require(
        &[Role::Admin, Role::FieldEngineer, Role::DepotTech, Role::DcTech],
        "read failure rates",
    )
}

/// A part's life distribution: the Weibull fit when there are enough failures to make one.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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
    /// `infant mortality` (β's interval below 1), `wear-out` (above 1), `random`, or `uncertain`
    /// when there is no interval.
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
            beta_ci_low: fit.and_then(|f| f.beta_low),
            beta_ci_high: fit.and_then(|f| f.beta_high),
            eta_days: fit.map(|f| f.eta_days),
            mean_life_days: fit.map(|f| f.mean_days()).filter(|d| d.is_finite()),
            pattern: fit.map(|f| f.pattern()),
        }
    }
}

/// One step of the Kaplan–Meier curve.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SurvivalPoint {
    pub days: f64,
    pub at_risk: u64,
    pub failures: u64,
    pub survival: f64,
}

/// A part's survival: the Kaplan–Meier estimate and the Weibull fit.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Survival {
    pub weibull: WeibullRow,
    pub kaplan_meier: Vec<SurvivalPoint>,
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
            .map(|(i, p)| WeibullRow::new(&p.number, &self.lives(i)))
            .collect()
    }

    pub fn survival(&self, number: &str) -> AppResult<Survival> {
        let (index, part) = self
            .parts
            .iter()
            .enumerate()
            .find(|(_, p)| p.number.eq_ignore_ascii_case(number.trim()))
            .ok_or_else(|| AppError::not_found(format!("part {number}")))?;
        let lives = self.lives(index as u16);
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
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
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FixRow {
    /// The field action (`reseat`, `power cycle`, `firmware`, `cabling`, `optics`, `other`,
    /// `replace node`, `replace FRU`) or the fault code.
    pub key: String,
    pub fixes: u64,
    /// Over 7, 30 and 90 days: how many fixes old enough failed again at the same serial or slot.
    pub held: Vec<reliability::Held>,
    pub median_hours_to_restore: Option<f64>,
}

/// Did the fix hold, per field action and per fault code, over all parts (`None`) and per part.
pub type FixTables = BTreeMap<(FixBy, Option<String>), Vec<FixRow>>;

/// Every fix made at a site of organization `scope` (or anywhere), restored in the field or by a
/// swap, with the next failure of the same serial or slot, grouped every way the pages ask.
pub async fn fix_tables(db: &DatabaseConnection, scope: Option<Uuid>) -> AppResult<FixTables> {
    use crate::entities::event;
    use futures_util::TryStreamExt;
    // Streamed, never `all()`, and the RMAs read twice rather than kept: at a million RMAs, rows
    // held (by the driver, or as facts waiting for the next failures) were most of this
    // computation's memory. First each serial's and slot's reports, oldest first, to find the
    // next one after a fix.
    let mut reports: Vec<(Uuid, DateTime<Utc>)> = vec![];
    let mut rows = counted_rmas(scope)
        .columns([rma::Column::UnitId, rma::Column::SlotId, rma::Column::CreatedAt])
        .into_tuple::<(Uuid, Option<Uuid>, DateTime<Utc>)>()
        .stream(db)
        .await?;
    while let Some((unit, slot, at)) = rows.try_next().await? {
        reports.push((unit, at));
        reports.extend(slot.map(|slot| (slot, at)));
    }
    drop(rows);
    let reported = SortedIndex::new(reports.into_iter());
    let next_after = |id: Option<Uuid>, at: DateTime<Utc>| reported.of(id?).find(|t| **t > at).copied();
    let restored_at: SortedIndex<DateTime<Utc>> = event::Entity::find()
        .select_only()
        .columns([event::Column::RmaId, event::Column::At])
        .filter(event::Column::ToStatus.eq(Status::Restored.as_str()))
        .into_tuple::<(Uuid, DateTime<Utc>)>()
        .stream(db)
        .await?
        .try_collect::<Vec<_>>()
        .await?
        .into_iter()
        .collect();
    // The unit swapped in by each RMA: (when, unit, slot); the latest counts.
    let swaps: SortedIndex<(DateTime<Utc>, Uuid, Uuid)> = slot_history::Entity::find()
        .select_only()
        .columns([
            slot_history::Column::RmaId,
            slot_history::Column::UnitId,
            slot_history::Column::SlotId,
            slot_history::Column::InstalledAt,
        ])
        .filter(slot_history::Column::RmaId.is_not_null())
        .into_tuple::<(Uuid, Uuid, Uuid, DateTime<Utc>)>()
        .stream(db)
        .await?
        .map_ok(|(rma, unit, slot, at)| (rma, (at, unit, slot)))
        .try_collect::<Vec<_>>()
        .await?
        .into_iter()
        .collect();
    let parts = crate::services::views::names_by_id::<part::Entity>(db, |p| p.number).await?;
    let now = Utc::now();
    let mut tallies: BTreeMap<(FixBy, Option<String>), BTreeMap<String, reliability::HoldTally>> = BTreeMap::new();
    // Then each fix, counted as it is read.
    type Row = (
        Uuid,
        Uuid,
        Option<Uuid>,
        Uuid,
        Option<String>,
        Option<String>,
        Option<String>,
        DateTime<Utc>,
    );
    let mut rows = counted_rmas(scope)
        .columns([
            rma::Column::Id,
            rma::Column::UnitId,
            rma::Column::SlotId,
            rma::Column::PartId,
            rma::Column::Resolution,
            rma::Column::FaultCode,
            rma::Column::ReplacementKind,
            rma::Column::CreatedAt,
        ])
        .into_tuple::<Row>()
        .stream(db)
        .await?;
    while let Some((id, unit_id, slot_id, part_id, resolution, fault_code, kind, created_at)) = rows.try_next().await? {
        let (action, unit, slot, fixed_at) = if let Some(at) = restored_at.of(id).last() {
            let action = reliability::field_action(resolution.as_deref().unwrap_or_default());
            (action, unit_id, slot_id, *at)
        } else if let Some(&(at, unit, slot)) = swaps.of(id).last() {
            let action = match kind.as_deref() == Some("fru") {
                true => "replace FRU",
                false => "replace node",
            };
            (action, unit, Some(slot), at)
        } else {
            continue;
        };
        let fix = reliability::Fix {
            opened_at: created_at,
            fixed_at,
            next_failure_at: [next_after(Some(unit), fixed_at), next_after(slot, fixed_at)]
                .into_iter()
                .flatten()
                .min(),
        };
        let code = fault_code.unwrap_or_else(|| "(no fault code)".into());
        let part = parts.get(&part_id).cloned();
        for (by, key) in [(FixBy::Action, action.to_string()), (FixBy::FaultCode, code)] {
            for table in [None, part.clone()] {
                let rows = tallies.entry((by, table)).or_default();
                rows.entry(key.clone()).or_default().add(&fix, now);
            }
        }
    }
    drop(rows);
    Ok(tallies
        .into_iter()
        .map(|(table, rows)| {
            let rows = rows
                .into_iter()
                .map(|(key, tally)| FixRow {
                    key,
                    fixes: tally.fixes(),
                    held: tally.held(),
                    median_hours_to_restore: tally.median_hours_to_restore(),
                })
                .collect();
            (table, rows)
        })
        .collect())
}

/// Every reliability figure of one fleet (an organization's, or all), computed together from one
/// read of the fleet: the pages and the API read these instead of millions of rows per request.
pub struct Snapshot {
    pub computed_at: DateTime<Utc>,
    afr: BTreeMap<&'static str, Vec<AfrRow>>,
    pub weibull: Vec<WeibullRow>,
    survival: BTreeMap<String, Survival>,
    fixes: FixTables,
    pub quality: crate::services::quality::Quality,
    /// Shelves' demand, for the whole fleet only (spares are the depots' business).
    pub demand: Vec<crate::services::spares::Demand>,
}

impl By {
    fn name(self) -> &'static str {
        match self {
            By::Part => "part",
            By::Site => "site",
            By::Organization => "organization",
            By::Lot => "lot",
        }
    }
}

impl Snapshot {
    pub async fn compute(db: &DatabaseConnection, scope: Option<Uuid>) -> AppResult<Snapshot> {
        let computed_at = Utc::now();
        let fleet = Fleet::load(db, scope).await?;
        let afr = [By::Part, By::Site, By::Organization, By::Lot]
            .into_iter()
            .map(|by| (by.name(), fleet.afr(by)))
            .collect();
        let survival = fleet
            .parts
            .iter()
            .map(|p| fleet.survival(&p.number).map(|s| (p.number.clone(), s)))
            .collect::<AppResult<_>>()?;
        // The spares' demand is the whole fleet's only (spares are the depots' business).
        let base = scope.is_none().then(|| fleet.installed_base());
        let weibull = fleet.weibull();
        // The stays go before the RMAs are read: one large table in memory at a time.
        drop(fleet);
        let demand = match base {
            Some(base) => crate::services::spares::demand(db, &base).await?,
            None => vec![],
        };
        Ok(Snapshot {
            computed_at,
            afr,
            weibull,
            survival,
            fixes: fix_tables(db, scope).await?,
            quality: crate::services::quality::quality(db, scope).await?,
            demand,
        })
    }

    pub fn afr(&self, by: By) -> &[AfrRow] {
        self.afr.get(by.name()).map_or(&[], Vec::as_slice)
    }

    /// How many "did the fix hold" tables it holds (per grouping, overall and per part).
    pub fn fixes_tables(&self) -> usize {
        self.fixes.len()
    }

    /// The survival of part `number` (any case); 404 for a part depot does not know.
    pub fn survival(&self, number: &str) -> AppResult<&Survival> {
        let number = number.trim().to_uppercase();
        self.survival
            .get(&number)
            .ok_or_else(|| AppError::not_found(format!("part {number}")))
    }

    /// Did the fix hold, per action or fault code, over all parts or one (404 for an unknown part).
    pub fn fixes(&self, by: FixBy, part: Option<&str>) -> AppResult<&[FixRow]> {
        let part = part.map(|p| p.trim().to_uppercase()).filter(|p| !p.is_empty());
        if let Some(p) = &part {
            self.survival(p)?;
        }
        Ok(self.fixes.get(&(by, part)).map_or(&[], Vec::as_slice))
    }
}

/// The precomputed figures, per fleet, recomputed in the background once older than `refresh`
/// (the stale ones are served meanwhile); with a `refresh` of zero, computed on every request.
pub struct Figures {
    refresh: std::time::Duration,
    entries: std::sync::Mutex<std::collections::HashMap<Option<Uuid>, Entry>>,
    /// One computation at a time: each reads every stay, and two at once would double the memory.
    computing: tokio::sync::Mutex<()>,
}

struct Entry {
    snapshot: std::sync::Arc<Snapshot>,
    computed: std::time::Instant,
    refreshing: bool,
}

impl Figures {
    pub fn new(refresh: std::time::Duration) -> Figures {
        Figures {
            refresh,
            entries: Default::default(),
            computing: Default::default(),
        }
    }

    /// The figures of fleet `scope` (an organization, or all).
    pub async fn get(
        self: &std::sync::Arc<Self>,
        db: &DatabaseConnection,
        scope: Option<Uuid>,
    ) -> AppResult<std::sync::Arc<Snapshot>> {
        if self.refresh.is_zero() {
            return Ok(std::sync::Arc::new(Snapshot::compute(db, scope).await?));
        }
        let stale = {
            let mut entries = self.entries.lock().expect("figures lock");
            match entries.get_mut(&scope) {
                Some(e) if e.computed.elapsed() < self.refresh || e.refreshing => return Ok(e.snapshot.clone()),
                Some(e) => {
                    e.refreshing = true;
                    Some(e.snapshot.clone())
                }
                None => None,
            }
        };
        match stale {
            Some(snapshot) => {
                let (figures, db) = (self.clone(), db.clone());
                tokio::spawn(async move {
                    if let Err(e) = figures.refresh(&db, scope).await {
                        tracing::warn!(error = %e, "recomputing reliability figures");
                        if let Some(e) = figures.entries.lock().expect("figures lock").get_mut(&scope) {
                            e.refreshing = false;
                        }
                    }
                });
                Ok(snapshot)
            }
            None => {
                let _turn = self.computing.lock().await;
                // Another request may have computed them while this one waited.
                if let Some(e) = self.entries.lock().expect("figures lock").get(&scope) {
                    return Ok(e.snapshot.clone());
                }
                self.compute_and_keep(db, scope).await
            }
        }
    }

    /// Computes the figures of fleet `scope` now and keeps them.
    pub async fn refresh(&self, db: &DatabaseConnection, scope: Option<Uuid>) -> AppResult<std::sync::Arc<Snapshot>> {
        let _turn = self.computing.lock().await;
        self.compute_and_keep(db, scope).await
    }

    async fn compute_and_keep(
        &self,
        db: &DatabaseConnection,
        scope: Option<Uuid>,
    ) -> AppResult<std::sync::Arc<Snapshot>> {
        let started = std::time::Instant::now();
        let snapshot = std::sync::Arc::new(Snapshot::compute(db, scope).await?);
        metrics::histogram!("depot_reliability_compute_seconds").record(started.elapsed().as_secs_f64());
        let entry = Entry {
            snapshot: snapshot.clone(),
            computed: std::time::Instant::now(),
            refreshing: false,
        };
        self.entries.lock().expect("figures lock").insert(scope, entry);
        Ok(snapshot)
    }

    /// How often the figures are recomputed; zero when every request computes them.
    pub fn interval(&self) -> std::time::Duration {
        self.refresh
    }
}

/// Values by key in one sorted vector: a million keys without a map's per-entry allocations.
pub struct SortedIndex<T> {
    entries: Vec<(Uuid, T)>,
}

impl<T: Ord> SortedIndex<T> {
    pub fn new(entries: impl Iterator<Item = (Uuid, T)>) -> SortedIndex<T> {
        let mut entries: Vec<(Uuid, T)> = entries.collect();
        entries.sort_unstable();
        SortedIndex { entries }
    }

    /// The values of `key`, in order.
    pub fn of(&self, key: Uuid) -> impl Iterator<Item = &T> {
        let start = self.entries.partition_point(|e| e.0 < key);
        self.entries[start..]
            .iter()
            .take_while(move |e| e.0 == key)
            .map(|e| &e.1)
    }
}

impl<T: Ord> FromIterator<(Uuid, T)> for SortedIndex<T> {
    fn from_iter<I: IntoIterator<Item = (Uuid, T)>>(entries: I) -> Self {
        SortedIndex::new(entries.into_iter())
    }
}
