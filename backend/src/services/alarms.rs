//! Alarm intake from monitoring and chat: one open RMA per serial, and retried calls answered the
//! same way through the `Idempotency-Key`.
use crate::domain::diagnosis::map_severity;
use crate::domain::{Location, Serial};
use crate::entities::{idempotency_key, organization, site, unit};
use crate::error::{AppError, AppResult};
use crate::services::rmas::{self, OpenRma};
use crate::services::views::{self, RmaView};
use crate::services::{Actor, history, tokens};
use chrono::Utc;
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, Set};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

/// `POST /api/v1/alarms`.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct Alarm {
    pub serial: String,
    /// `sev1`..`sev4`, or a monitoring level (`critical`, `major`, `minor`, `warning`) mapped per organization.
    pub severity: String,
    pub summary: String,
    /// Where the alarm came from: a monitoring system or a chat bot.
    pub source: String,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub external_refs: Option<Value>,
}

/// The answer to an alarm: 201 with a new RMA, 200 with the open one it joined.
pub struct Intake {
    pub status: u16,
    pub body: Value,
}

/// Takes an alarm in. With `key`, the first answer is stored with the request's hash in the same
/// transaction; the same key and body get that answer again, another body is refused.
pub async fn intake(
    db: &sea_orm::DatabaseConnection,
    actor: &Actor,
    body: &Value,
    key: Option<&str>,
) -> AppResult<Intake> {
    let alarm: Alarm = serde_json::from_value(body.clone()).map_err(|e| AppError::invalid(e.to_string()))?;
    if key.is_some_and(|key| key.trim().is_empty() || key.len() > 200) {
        return Err(AppError::invalid("Idempotency-Key must be 1 to 200 characters"));
    }
    let request_hash = tokens::hash(&serde_json::to_string(body).unwrap_or_default());
    let (actor, key) = (actor.clone(), key.map(str::to_string));
    // A storm of alarms shares commits (`db::write`).
    crate::db::write(db, move |txn| {
        Box::pin(async move {
            if let Some(key) = &key {
                let seen = idempotency_key::Entity::find()
                    .filter(idempotency_key::Column::UserId.eq(actor.user_id))
                    .filter(idempotency_key::Column::Key.eq(key))
                    .one(txn)
                    .await?;
                if let Some(seen) = seen {
                    if seen.request_hash != request_hash {
                        return Err(AppError::Unprocessable {
                            code: "idempotency_key_reused",
                            message: format!("Idempotency-Key `{key}` was used with a different body; use a new key"),
                        });
                    }
                    let body = serde_json::from_str(&seen.body).map_err(|e| AppError::Internal(e.into()))?;
                    return Ok(Intake {
                        status: seen.status as u16,
                        body,
                    });
                }
            }
            let (status, view) = take(txn, &actor, alarm).await?;
            let body = serde_json::to_value(&view).map_err(|e| AppError::Internal(e.into()))?;
            if let Some(key) = key {
                idempotency_key::ActiveModel {
                    id: Set(Uuid::now_v7()),
                    user_id: Set(actor.user_id),
                    key: Set(key),
                    request_hash: Set(request_hash),
                    status: Set(status as i32),
                    body: Set(body.to_string()),
                    created_at: Set(Utc::now()),
                }
                .insert(txn)
                .await?;
            }
            Ok(Intake { status, body })
        })
    })
    .await
}

async fn take(txn: &DatabaseTransaction, actor: &Actor, alarm: Alarm) -> AppResult<(u16, RmaView)> {
    let serial = Serial::parse(&alarm.serial).map_err(AppError::invalid)?;
    let summary = alarm.summary.trim();
    if summary.is_empty() || alarm.source.trim().is_empty() {
        return Err(AppError::invalid("summary and source are required"));
    }
    let unknown = || AppError::invalid(format!("unknown serial {}", serial.as_str()));
    let unit = unit::Entity::find()
        .filter(unit::Column::Serial.eq(serial.as_str()))
        .one(txn)
        .await?
        .ok_or_else(unknown)?;
    let site = match unit.site_id {
        Some(id) => site::Entity::find_by_id(id).one(txn).await?,
        None => None,
    };
    let site = site
        .filter(|s| actor.organization_scope().is_none_or(|org| org == s.organization_id))
        .ok_or_else(unknown)?;
    if unit.location != Location::Site.as_str() {
        return Err(AppError::invalid(format!(
            "{} is not in service at a site",
            serial.as_str()
        )));
    }
    let org = organization::Entity::find_by_id(site.organization_id).one(txn).await?;
    let severity =
        map_severity(&alarm.severity, org.as_ref().and_then(|o| o.severity_map.as_ref())).map_err(AppError::invalid)?;
    let fields = json!({"serial": serial.as_str(), "severity": alarm.severity, "summary": summary, "source": alarm.source.trim()});

    if let Some(existing) = crate::services::rmas::open_rma_of_unit(txn, unit.id).await? {
        let entry = history::Entry::change(existing.id, "alarm", Some(actor), fields, Utc::now());
        history::append(txn, entry.with_note(Some(summary.to_string()))).await?;
        return Ok((200, views::rma_views(txn, vec![existing]).await?.remove(0)));
    }
    let input = OpenRma {
        site: site.code.clone(),
        serial: serial.as_str().to_string(),
        severity: severity.as_str().to_string(),
        symptom: summary.to_string(),
        external_refs: alarm.external_refs,
    };
    let view = rmas::open_in(txn, actor, input).await?;
    metrics::counter!("depot_rmas_opened_total").increment(1);
    Ok((201, view))
}
