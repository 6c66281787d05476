//! The dashboard: the lifecycle as queues, and what waits on the viewer, oldest first.
use crate::domain::lifecycle::Status;
use crate::domain::{Role, Severity};
use crate::entities::{organization, rma};
use crate::error::AppResult;
use crate::services::Actor;
use crate::services::views::{self, RmaView};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect};
use serde::Serialize;

/// One status with how many RMAs wait in it and since when.
#[derive(Debug, Serialize)]
pub struct Queue {
    pub status: String,
    pub count: i64,
    pub oldest: Option<DateTime<Utc>>,
}

#[derive(Debug, FromQueryResult)]
struct QueueRow {
    status: String,
    count: i64,
    oldest: Option<DateTime<Utc>>,
}

/// What the dashboard shows.
#[derive(Debug, Serialize)]
pub struct Dashboard {
    pub queues: Vec<Queue>,
    pub by_impact: Vec<Ranked>,
    pub waiting: Vec<RmaView>,
    pub waiting_label: &'static str,
    /// What the page is current with: see [`stamp`].
    pub stamp: String,
}

/// The statuses in which an RMA waits on a role, and how the dashboard names that wait.
fn waits_on(role: Role) -> (&'static [Status], &'static str) {
    use Status::*;
    match role {
        Role::FieldEngineer => (
            &[Reported, Diagnosing, Approved, Swapped],
            "Waiting on field engineering",
        ),
        Role::DepotTech => (
            &[
                Approved,
                ReturnShipped,
                Received,
                Triage,
                Repair,
                Testing,
                VendorEscalated,
            ],
            "Headed to or inside your depot",
        ),
        Role::DcTech => (
            &[ReplacementShipped, ReplacementDelivered, Swapped],
            "Waiting on your site: delivery, swap or return",
        ),
        Role::Admin => (&[Reported, Diagnosing, Approved], "Not yet shipped"),
        Role::Integration => (&[], "Nothing waits on an integration"),
    }
}

pub async fn build(db: &DatabaseConnection, actor: &Actor) -> AppResult<Dashboard> {
    // Three independent reads, each on a connection of its own: the page waits for the slowest,
    // not for their sum.
    let (queues, waiting, by_impact, stamp) = tokio::try_join!(
        queues(db, actor),
        waiting(db, actor),
        by_impact(db, actor),
        stamp(db, actor)
    )?;
    Ok(Dashboard {
        queues,
        by_impact,
        waiting,
        waiting_label: waits_on(actor.role).1,
        stamp,
    })
}

#[derive(Debug, FromQueryResult)]
struct OpenFigures {
    open: i64,
    latest: Option<DateTime<Utc>>,
}

/// A short fingerprint of the open RMAs the viewer sees (how many, and the latest status change):
/// it changes when a case opens, moves or closes, so a page can tell that it is out of date by
/// polling it, without a reload and without learning anything of other customers' cases.
pub async fn stamp(db: &DatabaseConnection, actor: &Actor) -> AppResult<String> {
    let mut open = rma::Entity::find()
        .select_only()
        .column_as(Expr::from(Func::count(Expr::col(sea_orm::sea_query::Asterisk))), "open")
        .column_as(Expr::from(Func::max(Expr::col(rma::Column::StatusChangedAt))), "latest")
        .filter(rma::Column::ClosedAt.is_null());
    if let Some(org) = actor.organization_scope() {
        open = open.filter(rma::Column::OrganizationId.eq(org));
    }
    let figures = open.into_model::<OpenFigures>().one(db).await?;
    Ok(match figures {
        Some(OpenFigures { open, latest }) => {
            format!("{open}/{}", latest.map(|t| t.timestamp_micros()).unwrap_or_default())
        }
        None => "0/0".into(),
    })
}

/// Every open status with how many RMAs wait in it and since when.
async fn queues(db: &DatabaseConnection, actor: &Actor) -> AppResult<Vec<Queue>> {
    let mut counts = rma::Entity::find()
        .select_only()
        .column(rma::Column::Status)
        .column_as(
            Expr::from(Func::count(Expr::col(sea_orm::sea_query::Asterisk))),
            "count",
        )
        .column_as(Expr::from(Func::min(Expr::col(rma::Column::StatusChangedAt))), "oldest")
        .filter(rma::Column::ClosedAt.is_null())
        .group_by(rma::Column::Status);
    if let Some(org) = actor.organization_scope() {
        counts = counts.filter(rma::Column::OrganizationId.eq(org));
    }
    let rows = counts.into_model::<QueueRow>().all(db).await?;
    Ok(Status::ALL
        .iter()
        .filter(|s| !s.is_end())
        .map(|s| {
            let row = rows.iter().find(|r| r.status == s.as_str());
            Queue {
                status: s.as_str().into(),
                count: row.map_or(0, |r| r.count),
                oldest: row.and_then(|r| r.oldest),
            }
        })
        .collect())
}

/// The head of what waits on the viewer: breached first, then at risk, then oldest in its state.
async fn waiting(db: &DatabaseConnection, actor: &Actor) -> AppResult<Vec<RmaView>> {
    let (statuses, _) = waits_on(actor.role);
    let mut waiting = rma::Entity::find()
        // Always true for these statuses; it lets the database use the index of open RMAs.
        .filter(rma::Column::ClosedAt.is_null())
        .filter(rma::Column::Status.is_in(statuses.iter().map(|s| s.as_str())))
        .order_by_asc(rma::Column::StatusChangedAt)
        .limit(WAITING_SHOWN);
    if let Some(org) = actor.organization_scope() {
        waiting = waiting.filter(rma::Column::OrganizationId.eq(org));
    }
    if let (Role::DepotTech, Some(depot)) = (actor.role, actor.depot_id) {
        waiting = waiting.filter(rma::Column::ReturnDepotId.eq(depot));
    }
    let mut waiting = views::rma_views(db, waiting.all(db).await?).await?;
    waiting.sort_by_key(|r| (crate::services::sla::urgency(&r.clocks), r.status_changed_at));
    Ok(waiting)
}

/// The [`CANDIDATES`] oldest open RMAs the viewer sees, with their organizations and their clocks
/// (computed from the rows alone): what the impact ranking and the urgent list weigh.
struct Candidates {
    rows: Vec<rma::Model>,
    orgs: std::collections::HashMap<uuid::Uuid, organization::Model>,
    clocks: std::collections::HashMap<uuid::Uuid, Vec<crate::domain::sla::Clock>>,
}

async fn open_candidates(db: &DatabaseConnection, scope: Option<uuid::Uuid>) -> AppResult<Candidates> {
    let mut open = rma::Entity::find();
    if let Some(org) = scope {
        open = open.filter(rma::Column::OrganizationId.eq(org));
    }
    let rows = open
        .filter(rma::Column::ClosedAt.is_null())
        .order_by_asc(rma::Column::Id)
        .limit(CANDIDATES)
        .all(db)
        .await?;
    let orgs = views::load_map::<organization::Entity>(db, rows.iter().map(|r| r.organization_id)).await?;
    let clocks = crate::services::sla::clocks_with(&orgs, &rows, Utc::now());
    Ok(Candidates { rows, orgs, clocks })
}

/// The most urgent of the open RMAs with a breached or at-risk clock, and how many there are.
pub struct Urgent {
    pub shown: Vec<RmaView>,
    pub total: usize,
}

/// Among the candidates (see [`Candidates`]) that `narrowing` admits, those with a breached or
/// at-risk clock, most urgent first; only the `shown` first become full views. The candidates are
/// read as the viewer's oldest open RMAs and narrowed in memory: asked of the database, a site or
/// severity with few open RMAs among many closed ones made it walk the closed ones (seconds at a
/// million RMAs).
pub async fn urgent(
    db: &DatabaseConnection,
    narrowing: &crate::services::rmas::Narrowing,
    shown: usize,
) -> AppResult<Urgent> {
    use crate::services::sla::urgency;
    if narrowing.closed_only() {
        return Ok(Urgent {
            shown: vec![],
            total: 0,
        });
    }
    let Candidates { rows, orgs, mut clocks } = open_candidates(db, narrowing.scope()).await?;
    let mut at_risk: Vec<(u8, rma::Model)> = rows
        .into_iter()
        .filter(|r| narrowing.admits(r))
        .filter_map(|r| {
            let level = clocks.get(&r.id).map(|c| urgency(c))?;
            (level < 2).then_some((level, r))
        })
        .collect();
    at_risk.sort_by_key(|(level, r)| (*level, r.status_changed_at));
    let total = at_risk.len();
    let most: Vec<rma::Model> = at_risk.into_iter().take(shown).map(|(_, r)| r).collect();
    let their_clocks = most.iter().filter_map(|r| clocks.remove_entry(&r.id)).collect();
    let shown = views::rma_views_with(db, most, &orgs, their_clocks).await?;
    Ok(Urgent { shown, total })
}

/// An open RMA ranked by what its failure costs the customer, with the reason in words.
#[derive(Debug, Serialize)]
pub struct Ranked {
    pub rma: RmaView,
    /// Other units of the same cluster that are failed or out for repair.
    pub others_down: usize,
    pub why: String,
}

/// How many open RMAs, oldest first, the impact ranking weighs.
const CANDIDATES: u64 = 100;

/// The head of the viewer's queue; the whole queue is a click away in the list.
const WAITING_SHOWN: u64 = 30;

/// Open RMAs by impact: a sev1 nobody has answered yet always first, then breached and at-risk
/// clocks, lost redundancy in the cluster, severity and age.
pub async fn by_impact(db: &DatabaseConnection, actor: &Actor) -> AppResult<Vec<Ranked>> {
    let Candidates { rows, orgs, mut clocks } = open_candidates(db, actor.organization_scope()).await?;
    let mut per_cluster: std::collections::HashMap<uuid::Uuid, usize> = std::collections::HashMap::new();
    for r in &rows {
        if let Some(c) = r.cluster_id {
            *per_cluster.entry(c).or_default() += 1;
        }
    }
    // Rank on the rows and their clocks; only the twenty shown become full views.
    let mut candidates: Vec<(usize, rma::Model)> = rows
        .into_iter()
        .map(|r| (r.cluster_id.map_or(0, |c| per_cluster[&c] - 1), r))
        .collect();
    let urgency =
        |r: &rma::Model| crate::services::sla::urgency(clocks.get(&r.id).map(Vec::as_slice).unwrap_or_default());
    let answered = |r: &rma::Model| !(r.severity == Severity::Sev1.as_str() && r.status == Status::Reported.as_str());
    candidates.sort_by(|(da, a), (db, b)| {
        answered(a)
            .cmp(&answered(b))
            .then(urgency(a).cmp(&urgency(b)))
            .then(db.cmp(da))
            .then(a.severity.cmp(&b.severity))
            .then(a.created_at.cmp(&b.created_at))
    });
    candidates.truncate(20);
    let others: Vec<usize> = candidates.iter().map(|(n, _)| *n).collect();
    let shown: Vec<rma::Model> = candidates.into_iter().map(|(_, r)| r).collect();
    let shown_clocks = shown.iter().filter_map(|r| clocks.remove_entry(&r.id)).collect();
    let views = views::rma_views_with(db, shown, &orgs, shown_clocks).await?;
    let ranked: Vec<Ranked> = views
        .into_iter()
        .zip(others)
        .map(|(rma, others_down)| {
            let cluster = rma.cluster.clone().unwrap_or_else(|| "its cluster".into());
            let mut why = match others_down {
                0 => format!("{}; the only failure in {cluster}", rma.severity),
                n => format!(
                    "{}; {n} other unit{} of {cluster} failed or out for repair: redundancy is reduced",
                    rma.severity,
                    if n == 1 { "" } else { "s" }
                ),
            };
            for c in rma.clocks.iter().filter(|c| c.needs_attention()) {
                why += &format!("; {} {}", c.name.replace('_', " "), c.state.as_str().replace('_', " "));
            }
            Ranked { rma, others_down, why }
        })
        .collect();
    Ok(ranked)
}
