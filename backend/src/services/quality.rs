//! The quality of what the depots ship: a replacement reported dead on arrival, or failing within
//! 30 days of its swap, counts against the depot that shipped it and the test run that passed
//! it; and how often triage finds no fault, per part and site.
use crate::db::begin_write;
use crate::domain::Role;
use crate::domain::lifecycle::Status;
use crate::entities::{depot, part, repair_record, rma, shipment, site, slot_history, unit, user};
use crate::error::{AppError, AppResult};
use crate::mail::{compose::compose, outbox};
use crate::services::reliability::{SortedIndex, counted_rmas};
use crate::services::{Actor, history, rmas, stock};
use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;
use uuid::Uuid;

/// A replacement failing this soon after its swap was not fit to ship.
pub const EARLY_FAILURE_DAYS: i64 = 30;

/// Records that the replacement `number` shipped arrived dead: an event on the RMA and an email to
/// the depot that shipped it. Once per RMA.
pub async fn report_dead_on_arrival(
    db: &DatabaseConnection,
    base_url: &str,
    actor: &Actor,
    number: &str,
    note: Option<String>,
) -> AppResult<()> {
    actor.require(
        &[Role::DcTech, Role::FieldEngineer, Role::Admin],
        "report a replacement dead on arrival",
    )?;
    let txn = begin_write(db).await?;
    let r = rmas::find_visible(&txn, actor, number).await?;
    let shipped = shipment::Entity::find()
        .filter(shipment::Column::RmaId.eq(r.id))
        .filter(shipment::Column::Direction.eq("outbound"))
        .one(&txn)
        .await?;
    let (Some(replacement), Some(shipped)) = (r.replacement_unit_id, shipped) else {
        return Err(AppError::Conflict(format!(
            "{} has not shipped a replacement: nothing can have arrived dead",
            r.number
        )));
    };
    if let Some(at) = r.dead_on_arrival_at {
        return Err(AppError::Conflict(format!(
            "{}'s replacement was already reported dead on arrival at {}",
            r.number,
            at.format("%Y-%m-%d %H:%M UTC")
        )));
    }
    let now = Utc::now();
    let updated = rma::Entity::update_many()
        .col_expr(rma::Column::DeadOnArrivalAt, Expr::value(now))
        .col_expr(rma::Column::UpdatedAt, Expr::value(now))
        .col_expr(rma::Column::Version, Expr::col(rma::Column::Version).add(1))
        .filter(rma::Column::Id.eq(r.id))
        .filter(rma::Column::DeadOnArrivalAt.is_null())
        .exec(&txn)
        .await?;
    if updated.rows_affected == 0 {
        return Err(AppError::Conflict(format!(
            "{}'s replacement was already reported dead on arrival",
            r.number
        )));
    }
    let serial = unit::Entity::find_by_id(replacement)
        .one(&txn)
        .await?
        .map(|u| u.serial)
        .unwrap_or_default();
    let depot = match shipped.depot_id {
        Some(id) => depot::Entity::find_by_id(id).one(&txn).await?,
        None => None,
    };
    let depot_code = depot.map(|d| d.code).unwrap_or_default();
    let site = site::Entity::find_by_id(r.site_id)
        .one(&txn)
        .await?
        .map(|s| s.code)
        .unwrap_or_default();
    let note = note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
    let fields = json!({"replacement_serial": serial, "depot": depot_code});
    let entry = history::Entry::change(r.id, "dead_on_arrival", Some(actor), fields, now).with_note(note.clone());
    let event_id = history::append(&txn, entry).await?;
    let ctx = json!({
        "number": r.number, "serial": serial, "depot": depot_code, "site": site,
        "reported_by": actor.email, "note": note, "tracking_number": shipped.tracking_number,
        "link": format!("{base_url}/rmas/{}", r.number),
    });
    let queued = outbox::Queued {
        rma_id: r.id,
        event_id,
        template: "dead_on_arrival",
        recipients: stock::depot_staff(&txn, std::slice::from_ref(&depot_code)).await?,
        composed: Some(compose("dead_on_arrival", &ctx)?),
        attach_label: false,
        dedupe_key: None,
        webhook_url: None,
    };
    outbox::queue(&txn, queued, now).await?;
    txn.commit().await?;
    metrics::counter!("depot_dead_on_arrival_total").increment(1);
    Ok(())
}

/// Early failures of the replacements one depot or part shipped, new and refurbished apart.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct QualityRow {
    pub key: String,
    pub shipped: u64,
    pub early_failures: u64,
    pub early_failure_percent: Option<f64>,
    pub shipped_new: u64,
    pub early_failures_new: u64,
    pub shipped_refurbished: u64,
    pub early_failures_refurbished: u64,
}

impl QualityRow {
    fn count(&mut self, refurbished: bool, failed: bool) {
        let failed = u64::from(failed);
        self.shipped += 1;
        self.early_failures += failed;
        if refurbished {
            self.shipped_refurbished += 1;
            self.early_failures_refurbished += failed;
        } else {
            self.shipped_new += 1;
            self.early_failures_new += failed;
        }
        self.early_failure_percent = Some(100.0 * self.early_failures as f64 / self.shipped as f64);
    }
}

/// The test run that passed a refurbished unit before it shipped.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PassedBy {
    /// The RMA the unit was refurbished under.
    pub rma: String,
    pub operator: String,
    pub at: DateTime<Utc>,
}

/// One replacement that failed early.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EarlyFailure {
    /// The RMA that shipped it.
    pub rma: String,
    pub replacement_serial: String,
    pub part: String,
    pub depot: String,
    pub refurbished: bool,
    /// `dead on arrival`, or `failed after N days`.
    pub how: String,
    /// The RMA opened on the replacement, when it failed after its swap.
    pub failure_rma: Option<String>,
    pub passed_by: Option<PassedBy>,
}

/// How often triage found no fault.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NoFaultFound {
    pub key: String,
    pub triaged: u64,
    pub no_fault_found: u64,
    pub percent: f64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Quality {
    pub by_depot: Vec<QualityRow>,
    pub by_part: Vec<QualityRow>,
    pub early_failures: Vec<EarlyFailure>,
    pub no_fault_found_by_part: Vec<NoFaultFound>,
    pub no_fault_found_by_site: Vec<NoFaultFound>,
}

/// `text` of the rows of `E` with `ids`, asked in slices of the IN-list limit (there may be thousands).
async fn text_by_id<E: EntityTrait>(
    db: &DatabaseConnection,
    ids: &[Uuid],
    id: E::Column,
    text: E::Column,
) -> Result<BTreeMap<Uuid, String>, sea_orm::DbErr> {
    let mut found = BTreeMap::new();
    for slice in ids.chunks(crate::db::IN_LIST_SLICE) {
        found.extend(
            E::find()
                .select_only()
                .columns([id, text])
                .filter(id.is_in(slice.iter().copied()))
                .into_tuple::<(Uuid, String)>()
                .all(db)
                .await?,
        );
    }
    Ok(found)
}

/// The quality figures of organization `scope`'s RMAs, or of all (a customer: the replacements
/// shipped to it).
pub async fn quality(db: &DatabaseConnection, scope: Option<Uuid>) -> AppResult<Quality> {
    use crate::entities::event;
    // Large reads are streamed, never `all()`: see `reliability::fix_tables`.
    use futures_util::TryStreamExt;
    // Each unit's RMAs, (opened, id): as the failed unit (reported) and as the unit sent back
    // (refurbished). The RMAs are read twice rather than held: at a million RMAs, their facts
    // held whole were this computation's largest table.
    let (mut reported, mut returned) = (vec![], vec![]);
    let mut rows = counted_rmas(scope)
        .columns([
            rma::Column::Id,
            rma::Column::UnitId,
            rma::Column::ReturnedUnitId,
            rma::Column::CreatedAt,
        ])
        .into_tuple::<(Uuid, Uuid, Uuid, DateTime<Utc>)>()
        .stream(db)
        .await?;
    while let Some((id, unit, sent_back, at)) = rows.try_next().await? {
        reported.push((unit, (at, id)));
        returned.push((sent_back, (at, id)));
    }
    drop(rows);
    let reported = SortedIndex::new(reported.into_iter());
    let returned = SortedIndex::new(returned.into_iter());
    let parts = crate::services::views::names_by_id::<part::Entity>(db, |p| p.number).await?;
    let depots = crate::services::views::names_by_id::<depot::Entity>(db, |d| d.code).await?;
    let sites = crate::services::views::names_by_id::<site::Entity>(db, |s| s.code).await?;
    // Stocked as refurbished (at scale, most spares: every unit back from a depot), read by
    // condition rather than by an IN list of every replacement (past SQLite's parameter limit),
    // and kept as a sorted vector (see `SortedIndex`).
    let mut stocked_refurbished: Vec<Uuid> = unit::Entity::find()
        .select_only()
        .column(unit::Column::Id)
        .filter(unit::Column::Condition.eq("refurbished"))
        .into_tuple::<Uuid>()
        .stream(db)
        .await?
        .try_collect()
        .await?;
    stocked_refurbished.sort_unstable();
    // (shipped at, depot) of each RMA's outbound shipments; the latest counts.
    let outbound: SortedIndex<(DateTime<Utc>, Option<Uuid>)> = shipment::Entity::find()
        .select_only()
        .columns([
            shipment::Column::RmaId,
            shipment::Column::DepotId,
            shipment::Column::ShippedAt,
        ])
        .filter(shipment::Column::Direction.eq("outbound"))
        .into_tuple::<(Uuid, Option<Uuid>, DateTime<Utc>)>()
        .stream(db)
        .await?
        .map_ok(|(rma, depot, at)| (rma, (at, depot)))
        .try_collect::<Vec<_>>()
        .await?
        .into_iter()
        .collect();
    let swaps: SortedIndex<DateTime<Utc>> = slot_history::Entity::find()
        .select_only()
        .columns([slot_history::Column::RmaId, slot_history::Column::InstalledAt])
        .filter(slot_history::Column::RmaId.is_not_null())
        .into_tuple::<(Uuid, DateTime<Utc>)>()
        .stream(db)
        .await?
        .try_collect::<Vec<_>>()
        .await?
        .into_iter()
        .collect();
    // (RMA, operator, when) of each test run.
    let tests: Vec<(Uuid, Uuid, DateTime<Utc>)> = repair_record::Entity::find()
        .select_only()
        .columns([
            repair_record::Column::RmaId,
            repair_record::Column::ActorId,
            repair_record::Column::CreatedAt,
        ])
        .filter(repair_record::Column::Kind.eq("test_run"))
        .into_tuple()
        .all(db)
        .await?;
    let operators = crate::services::views::names_by_id::<user::Entity>(db, |u| u.email).await?;

    let (mut by_depot, mut by_part) = (
        BTreeMap::<String, QualityRow>::new(),
        BTreeMap::<String, QualityRow>::new(),
    );
    // Each early failure's replacement, and its RMAs (shipped, failed, refurbished under) by id.
    let (mut early_failures, mut early_units, mut early_rmas) = (vec![], vec![], vec![]);
    // Then each replacement shipped, counted as it is read.
    let mut rows = counted_rmas(scope)
        .columns([
            rma::Column::Id,
            rma::Column::ReplacementUnitId,
            rma::Column::ReplacementPartId,
            rma::Column::PartId,
            rma::Column::DeadOnArrivalAt,
        ])
        .filter(rma::Column::ReplacementUnitId.is_not_null())
        .into_tuple::<(Uuid, Uuid, Option<Uuid>, Uuid, Option<DateTime<Utc>>)>()
        .stream(db)
        .await?;
    while let Some((id, unit_id, replacement_part, part_id, dead_on_arrival_at)) = rows.try_next().await? {
        let Some(&(shipped_at, shipped_from)) = outbound.of(id).last() else {
            continue;
        };
        let earlier_lives: Vec<Uuid> = returned
            .of(unit_id)
            .filter(|(opened, _)| *opened < shipped_at)
            .map(|(_, id)| *id)
            .collect();
        // A unit that came back through a depot before is refurbished; so is stock loaded as such.
        let refurbished = !earlier_lives.is_empty() || stocked_refurbished.binary_search(&unit_id).is_ok();
        // The first RMA opened on the replacement within the window after its swap (the index is
        // sorted by time).
        let failure_after_swap = swaps.of(id).last().and_then(|swapped_at| {
            reported
                .of(unit_id)
                .find(|(opened, _)| {
                    *opened >= *swapped_at && *opened <= *swapped_at + Duration::days(EARLY_FAILURE_DAYS)
                })
                .map(|(opened, failed)| (*failed, (*opened - *swapped_at).num_days()))
        });
        let how = match (dead_on_arrival_at.is_some(), failure_after_swap) {
            (true, _) => Some("dead on arrival".to_string()),
            (false, Some((_, days))) => Some(format!("failed after {days} days")),
            (false, None) => None,
        };
        // The replaced part: the FRU's for an FRU swap, else the unit's.
        let part = parts
            .get(&replacement_part.unwrap_or(part_id))
            .cloned()
            .unwrap_or_default();
        let depot = shipped_from.and_then(|d| depots.get(&d)).cloned().unwrap_or_default();
        by_depot
            .entry(depot.clone())
            .or_default()
            .count(refurbished, how.is_some());
        by_part
            .entry(part.clone())
            .or_default()
            .count(refurbished, how.is_some());
        let Some(how) = how else { continue };
        let passed_by = tests
            .iter()
            .filter(|(rma, _, at)| earlier_lives.contains(rma) && *at < shipped_at)
            .max_by_key(|(_, _, at)| *at);
        early_units.push(unit_id);
        let failure_rma = failure_after_swap.map(|(failed, _)| failed);
        early_rmas.push([Some(id), failure_rma, passed_by.map(|(rma, _, _)| *rma)]);
        early_failures.push(EarlyFailure {
            rma: String::new(),
            replacement_serial: String::new(),
            part,
            depot,
            refurbished,
            how,
            failure_rma: None,
            passed_by: passed_by.map(|(_, operator, at)| PassedBy {
                rma: String::new(),
                operator: operators.get(operator).cloned().unwrap_or_default(),
                at: *at,
            }),
        });
    }
    let wanted: Vec<Uuid> = early_rmas.iter().flatten().flatten().copied().collect();
    let numbers = text_by_id::<rma::Entity>(db, &wanted, rma::Column::Id, rma::Column::Number).await?;
    let number = |id: Option<Uuid>| id.and_then(|id| numbers.get(&id)).cloned();
    for (failure, [shipped, failed, refurbished]) in early_failures.iter_mut().zip(early_rmas) {
        failure.rma = number(shipped).unwrap_or_default();
        failure.failure_rma = number(failed);
        if let Some(passed_by) = &mut failure.passed_by {
            passed_by.rma = number(refurbished).unwrap_or_default();
        }
    }
    let serials = text_by_id::<unit::Entity>(db, &early_units, unit::Column::Id, unit::Column::Serial).await?;
    for (failure, unit_id) in early_failures.iter_mut().zip(&early_units) {
        failure.replacement_serial = serials.get(unit_id).cloned().unwrap_or_default();
    }
    let keyed = |rows: BTreeMap<String, QualityRow>| {
        rows.into_iter()
            .map(|(key, row)| QualityRow { key, ..row })
            .collect::<Vec<_>>()
    };

    // The RMAs' indexes go before the database counts the no-fault-found cases (seconds at
    // a million RMAs): one large thing in memory at a time.
    drop((rows, reported, returned, outbound, swaps, stocked_refurbished));

    // No fault found: triage straight to testing, over every RMA that reached triage; counted by
    // the database per part and site (millions of events stay there).
    let mut counts = sea_orm::sea_query::Query::select();
    counts
        .column((rma::Entity, rma::Column::PartId))
        .column((rma::Entity, rma::Column::SiteId))
        .expr(Expr::cust(
            "SUM(CASE WHEN events.to_status = 'triage' THEN 1 ELSE 0 END)",
        ))
        .expr(Expr::cust(
            "SUM(CASE WHEN events.from_status = 'triage' AND events.to_status = 'testing' THEN 1 ELSE 0 END)",
        ))
        .from(event::Entity)
        .inner_join(
            rma::Entity,
            Expr::col((rma::Entity, rma::Column::Id)).equals((event::Entity, event::Column::RmaId)),
        )
        .and_where(
            Expr::col((event::Entity, event::Column::ToStatus))
                .is_in([Status::Triage.as_str(), Status::Testing.as_str()]),
        )
        .and_where(Expr::col((rma::Entity, rma::Column::Status)).ne(Status::Cancelled.as_str()))
        .group_by_col((rma::Entity, rma::Column::PartId))
        .group_by_col((rma::Entity, rma::Column::SiteId));
    if let Some(org) = scope {
        counts.and_where(Expr::col((rma::Entity, rma::Column::OrganizationId)).eq(org));
    }
    let (mut nff_part, mut nff_site) = (
        BTreeMap::<String, (u64, u64)>::new(),
        BTreeMap::<String, (u64, u64)>::new(),
    );
    for row in db.query_all(&counts).await? {
        let (part, site): (Uuid, Uuid) = (row.try_get_by_index(0)?, row.try_get_by_index(1)?);
        let (triaged, nff): (i64, i64) = (row.try_get_by_index(2)?, row.try_get_by_index(3)?);
        for (map, key) in [(&mut nff_part, parts.get(&part)), (&mut nff_site, sites.get(&site))] {
            let entry = map.entry(key.cloned().unwrap_or_default()).or_default();
            entry.0 += triaged as u64;
            entry.1 += nff as u64;
        }
    }
    let nff_rows = |rows: BTreeMap<String, (u64, u64)>| {
        rows.into_iter()
            .filter(|(_, (triaged, _))| *triaged > 0)
            .map(|(key, (triaged, nff))| NoFaultFound {
                key,
                triaged,
                no_fault_found: nff,
                percent: 100.0 * nff as f64 / triaged as f64,
            })
            .collect()
    };
    Ok(Quality {
        by_depot: keyed(by_depot),
        by_part: keyed(by_part),
        early_failures,
        no_fault_found_by_part: nff_rows(nff_part),
        no_fault_found_by_site: nff_rows(nff_site),
    })
}
