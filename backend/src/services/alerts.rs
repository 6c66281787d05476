//! Alerts depot raises by itself (SLA clocks, return reminders, shipments in trouble): an event on
//! the RMA and a message, queued together under a de-duplication key so that restarts and several
//! instances never send one twice.
use crate::entities::{organization, rma};
use crate::mail::{compose::compose, outbox};
use crate::services::history;
use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use serde_json::json;

/// An organization's on-call list (Admin → Sites: its alert addresses).
pub fn oncall_list(org: &organization::Model) -> Vec<String> {
    org.oncall_emails
        .clone()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}

/// Records a system event and queues its message under `dedupe_key`; nothing if the key was used.
#[allow(clippy::too_many_arguments)]
pub async fn alert(
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
    let fields = json!({"dedupe_key": dedupe_key});
    let entry = history::Entry::change(rma.id, kind, None, fields, now).with_note(Some(format!("{template} queued")));
    let event_id = history::append(&txn, entry).await?;
    let composed = compose(template, &ctx)?;
    let queued = outbox::Queued {
        rma_id: rma.id,
        event_id,
        template,
        recipients,
        composed: Some(composed),
        attach_label: false,
        dedupe_key: Some(dedupe_key),
        webhook_url: outbox::webhook_of(&txn, rma.organization_id).await?,
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
