//! Failure rates from depot's own records. Exposure is the time each unit actually spent installed
//! (its slot history, up to now), so units in service without a failure count; a failure is an
//! RMA approved for a replacement (the failed part: the FRU for an FRU swap, else the node).
use crate::domain::Role;
use crate::domain::lifecycle::Status;
use crate::domain::reliability::{self, DAYS_PER_YEAR};
use crate::entities::{cluster, organization, part, rma, site, slot, slot_history, unit};
use crate::error::{AppError, AppResult};
use crate::services::Actor;
use chrono::Utc;
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

/// Where a unit sat, as the grouping needs it.
struct Place {
    site: Uuid,
    organization: Uuid,
}

/// The annualised failure rate per group. A customer's technician sees only its own fleet.
pub async fn afr(db: &DatabaseConnection, actor: &Actor, by: By) -> AppResult<Vec<AfrRow>> {
    actor.require(
        &[Role::Admin, Role::FieldEngineer, Role::DepotTech, Role::DcTech],
        "read failure rates",
    )?;
    let scope = actor.organization_scope();
    let now = Utc::now();
    let sites: BTreeMap<Uuid, site::Model> = site::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|s| (s.id, s))
        .collect();
    let clusters = cluster::Entity::find().all(db).await?;
    let cluster_site: BTreeMap<Uuid, &site::Model> = clusters
        .iter()
        .filter_map(|c| sites.get(&c.site_id).map(|s| (c.id, s)))
        .collect();
    let slots = slot::Entity::find().all(db).await?;
    let slot_place: BTreeMap<Uuid, Place> = slots
        .iter()
        .filter_map(|s| {
            cluster_site.get(&s.cluster_id).map(|site| {
                (
                    s.id,
                    Place {
                        site: site.id,
                        organization: site.organization_id,
                    },
                )
            })
        })
        .collect();
    let stays = slot_history::Entity::find().all(db).await?;
    // Every unit's part and lot in one pass: an IN list of every installed unit would outgrow
    // SQLite's parameter limit long before a million units.
    let units: BTreeMap<Uuid, (Uuid, Option<String>)> = unit::Entity::find()
        .select_only()
        .columns([unit::Column::Id, unit::Column::PartId, unit::Column::Lot])
        .into_tuple::<(Uuid, Uuid, Option<String>)>()
        .all(db)
        .await?
        .into_iter()
        .map(|(id, part, lot)| (id, (part, lot)))
        .collect();
    let failures = rma::Entity::find()
        .filter(rma::Column::ReplacementKind.is_not_null())
        .filter(rma::Column::Status.ne(Status::Cancelled.as_str()))
        .all(db)
        .await?;
    let parts: BTreeMap<Uuid, part::Model> = part::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    let orgs: BTreeMap<Uuid, String> = organization::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|o| (o.id, o.code))
        .collect();
    let site_code = |id: Uuid| sites.get(&id).map(|s| s.code.clone());
    let key = |part_id: Uuid, place: &Place, lot: Option<&String>| -> Option<String> {
        match by {
            By::Part => parts.get(&part_id).map(|p| p.number.clone()),
            By::Site => site_code(place.site),
            By::Organization => orgs.get(&place.organization).cloned(),
            By::Lot => Some(lot.cloned().unwrap_or_else(|| "(no lot)".into())),
        }
    };
    let visible = |org: Uuid| scope.is_none_or(|mine| mine == org);

    let mut groups: BTreeMap<String, (u64, f64)> = BTreeMap::new();
    for stay in &stays {
        let (Some(place), Some((part_id, lot))) = (slot_place.get(&stay.slot_id), units.get(&stay.unit_id)) else {
            continue;
        };
        if !visible(place.organization) {
            continue;
        }
        let end = stay.removed_at.unwrap_or(now).min(now);
        let days = (end - stay.installed_at).num_milliseconds().max(0) as f64 / 86_400_000.0;
        if let Some(k) = key(*part_id, place, lot.as_ref()) {
            groups.entry(k).or_default().1 += days / DAYS_PER_YEAR;
        }
    }
    for r in &failures {
        if !visible(r.organization_id) {
            continue;
        }
        let failed_part = match r.replacement_kind.as_deref() {
            Some("fru") => r.replacement_part_id.unwrap_or(r.part_id),
            _ => r.part_id,
        };
        let place = Place {
            site: r.site_id,
            organization: r.organization_id,
        };
        let lot = units.get(&r.returned_unit_id).and_then(|(_, lot)| lot.as_ref());
        if let Some(k) = key(failed_part, &place, lot) {
            groups.entry(k).or_default().0 += 1;
        }
    }
    Ok(groups
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
        .collect())
}
