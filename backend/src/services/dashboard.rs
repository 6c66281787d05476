//! The dashboard: the lifecycle as queues, and what waits on the viewer, oldest first.
use crate::domain::Role;
use crate::domain::lifecycle::Status;
use crate::entities::rma;
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
    pub waiting: Vec<RmaView>,
    pub waiting_label: &'static str,
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
    }
}

pub async fn build(db: &DatabaseConnection, actor: &Actor) -> AppResult<Dashboard> {
    let mut counts = rma::Entity::find()
        .select_only()
        .column(rma::Column::Status)
        .column_as(Expr::from(Func::count(Expr::col(rma::Column::Id))), "count")
        .column_as(Expr::from(Func::min(Expr::col(rma::Column::StatusChangedAt))), "oldest")
        .filter(rma::Column::ClosedAt.is_null())
        .group_by(rma::Column::Status);
    if let Some(org) = actor.organization_scope() {
        counts = counts.filter(rma::Column::OrganizationId.eq(org));
    }
    let rows = counts.into_model::<QueueRow>().all(db).await?;
    let queues = Status::ALL
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
        .collect();

    let (statuses, waiting_label) = waits_on(actor.role);
    let mut waiting = rma::Entity::find()
        .filter(rma::Column::Status.is_in(statuses.iter().map(|s| s.as_str())))
        .order_by_asc(rma::Column::StatusChangedAt)
        .limit(50);
    if let Some(org) = actor.organization_scope() {
        waiting = waiting.filter(rma::Column::OrganizationId.eq(org));
    }
    if let (Role::DepotTech, Some(depot)) = (actor.role, actor.depot_id) {
        waiting = waiting.filter(rma::Column::ReturnDepotId.eq(depot));
    }
    let waiting = views::rma_views(db, waiting.all(db).await?).await?;
    Ok(Dashboard {
        queues,
        waiting,
        waiting_label,
    })
}
