//! The scheduler: return reminders and SLA breach alerts. Each alert is queued with a
//! de-duplication key, so restarts and several instances never send one twice.
use crate::domain::Severity;
use crate::domain::lifecycle::Status;
use crate::entities::{event, organization, rma, site};
use crate::mail::{compose::compose, outbox};
use crate::services::views;
use chrono::{DateTime, Duration, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};
use serde_json::json;
use uuid::Uuid;

/// Days after the swap before the first return reminder; then one a day.
pub const RETURN_GRACE_DAYS: i64 = 5;

/// Default first-response budget per severity (SPEC §4).
pub fn first_response_budget(severity: Severity) -> Duration {
    match severity {
        Severity::Sev1 => Duration::minutes(30),
        Severity::Sev2 => Duration::hours(2),
        Severity::Sev3 => Duration::hours(8),
        Severity::Sev4 => Duration::hours(24),
    }
}

/// Runs every job every `interval` until `shutdown` fires.
pub async fn run(
    db: DatabaseConnection,
    base_url: String,
    interval: std::time::Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        if let Err(err) = run_once(&db, &base_url, Utc::now()).await {
            tracing::warn!(error = %err, "scheduled jobs failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Every job, as of `now`. Returns how many messages were queued.
pub async fn run_once(db: &DatabaseConnection, base_url: &str, now: DateTime<Utc>) -> anyhow::Result<usize> {
    Ok(return_reminders(db, base_url, now).await? + first_response_breaches(db, base_url, now).await?)
}

/// Records a system event and queues its message under `dedupe_key`; nothing if the key was used.
#[allow(clippy::too_many_arguments)]
async fn alert(
    db: &DatabaseConnection,
    rma: &rma::Model,
    template: &str,
    kind: &str,
    recipients: Vec<String>,
    ctx: serde_json::Value,
    dedupe_key: String,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let txn = crate::db::begin_write(db).await?;
    let event_id = Uuid::now_v7();
    event::ActiveModel {
        id: Set(event_id),
        rma_id: Set(rma.id),
        kind: Set(kind.into()),
        from_status: Set(None),
        to_status: Set(None),
        actor_id: Set(None),
        actor_email: Set("depot".into()),
        at: Set(now),
        note: Set(Some(format!("{template} queued"))),
        fields: Set(json!({"dedupe_key": dedupe_key})),
    }
    .insert(&txn)
    .await?;
    let composed = compose(template, &ctx)?;
    let queued = outbox::Queued {
        rma_id: rma.id,
        event_id,
        template,
        recipients,
        composed,
        attach_label: false,
        dedupe_key: Some(dedupe_key),
        organization_id: Some(rma.organization_id),
    };
    if outbox::queue(&txn, queued, now).await? {
        txn.commit().await?;
        Ok(true)
    } else {
        // Already sent under this key: keep the history free of a second event.
        txn.rollback().await?;
        Ok(false)
    }
}

/// A reminder a day once the failed unit is [`RETURN_GRACE_DAYS`] overdue after the swap.
pub async fn return_reminders(db: &DatabaseConnection, base_url: &str, now: DateTime<Utc>) -> anyhow::Result<usize> {
    let overdue = rma::Entity::find()
        .filter(rma::Column::Status.eq(Status::Swapped.as_str()))
        .filter(rma::Column::StatusChangedAt.lte(now - Duration::days(RETURN_GRACE_DAYS)))
        .all(db)
        .await?;
    let mut queued = 0;
    for r in overdue {
        let days = (now - r.status_changed_at).num_days();
        let site = site::Entity::find_by_id(r.site_id)
            .one(db)
            .await?
            .ok_or_else(|| anyhow::anyhow!("site"))?;
        let view = views::rma_views(db, vec![r.clone()]).await?.remove(0);
        let ctx = json!({"rma": view, "days": days, "link": format!("{base_url}/rmas/{}", r.number)});
        let recipients = outbox::recipients(db, r.id, &site).await?;
        let key = format!("return_reminder:{}:day{days}", r.id);
        queued += alert(db, &r, "return_reminder", "reminder", recipients, ctx, key, now).await? as usize;
    }
    Ok(queued)
}

/// One alert to the organization's on-call list when a first response is overdue.
pub async fn first_response_breaches(
    db: &DatabaseConnection,
    base_url: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    let waiting = rma::Entity::find()
        .filter(rma::Column::Status.eq(Status::Reported.as_str()))
        .all(db)
        .await?;
    let mut queued = 0;
    for r in waiting {
        let Ok(severity) = r.severity.parse::<Severity>() else {
            continue;
        };
        let deadline = r.created_at + first_response_budget(severity);
        if deadline > now {
            continue;
        }
        let org = organization::Entity::find_by_id(r.organization_id).one(db).await?;
        let mut oncall: Vec<String> = org
            .and_then(|o| o.oncall_emails)
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        if severity == Severity::Sev1 {
            // A sev1 pages whoever is on call this week, too.
            oncall.extend(crate::services::oncall::on_call(db, r.organization_id, now).await?);
        }
        let view = views::rma_views(db, vec![r.clone()]).await?.remove(0);
        let ctx = json!({"rma": view, "clock": "first_response", "deadline": deadline.to_rfc3339(),
            "link": format!("{base_url}/rmas/{}", r.number)});
        let key = format!("sla_breach:first_response:{}", r.id);
        queued += alert(db, &r, "sla_breach", "sla_alert", oncall, ctx, key, now).await? as usize;
    }
    Ok(queued)
}
