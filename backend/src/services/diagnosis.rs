//! The diagnosis checklist of an RMA: steps recorded with their result, operator and time.
use crate::db::begin_write;
use crate::domain::Role;
use crate::domain::diagnosis::{RESULTS, checklist};
use crate::domain::lifecycle::Status;
use crate::entities::{diagnosis_check, organization, part, rma};
use crate::error::{AppError, AppResult};
use crate::services::rmas::find_visible;
use crate::services::{Actor, history};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

/// `POST /api/v1/rmas/{number}/checks`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RecordCheck {
    /// A step key of the RMA's checklist, e.g. `bmc_sensors`.
    pub step: String,
    /// `pass`, `fail` or `n/a`.
    pub result: String,
    #[serde(default)]
    pub note: Option<String>,
}

/// A checklist step with its latest recorded result, if any.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CheckView {
    pub step: String,
    pub label: String,
    pub mandatory: bool,
    pub result: Option<String>,
    pub note: Option<String>,
    pub operator: Option<String>,
    pub at: Option<DateTime<Utc>>,
}

async fn kind_of(db: &impl ConnectionTrait, rma: &rma::Model) -> AppResult<String> {
    Ok(part::Entity::find_by_id(rma.part_id)
        .one(db)
        .await?
        .map(|p| p.kind)
        .unwrap_or_default())
}

async fn mandatory(db: &impl ConnectionTrait, rma: &rma::Model) -> AppResult<Vec<String>> {
    let org = organization::Entity::find_by_id(rma.organization_id).one(db).await?;
    Ok(org
        .and_then(|o| o.mandatory_checks)
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default())
}

/// The RMA's checklist with the latest result of each step.
pub async fn checks_of(db: &impl ConnectionTrait, rma: &rma::Model) -> AppResult<Vec<CheckView>> {
    let recorded = diagnosis_check::Entity::find()
        .filter(diagnosis_check::Column::RmaId.eq(rma.id))
        .order_by_asc(diagnosis_check::Column::Id)
        .all(db)
        .await?;
    let required = mandatory(db, rma).await?;
    Ok(checklist(&kind_of(db, rma).await?)
        .into_iter()
        .map(|s| {
            let last = recorded.iter().rfind(|c| c.step == s.key);
            CheckView {
                step: s.key.into(),
                label: s.label.into(),
                mandatory: required.iter().any(|m| m == s.key),
                result: last.map(|c| c.result.clone()),
                note: last.and_then(|c| c.note.clone()),
                operator: last.map(|c| c.actor_email.clone()),
                at: last.map(|c| c.at),
            }
        })
        .collect())
}

/// The organization's mandatory steps not yet recorded, named for the person approving.
pub async fn missing_mandatory(db: &impl ConnectionTrait, rma: &rma::Model) -> AppResult<Vec<String>> {
    Ok(checks_of(db, rma)
        .await?
        .into_iter()
        .filter(|c| c.mandatory && c.result.is_none())
        .map(|c| format!("{} ({})", c.step, c.label))
        .collect())
}

/// Records one step while the RMA is being diagnosed.
pub async fn record(
    db: &DatabaseConnection,
    actor: &Actor,
    number: &str,
    input: RecordCheck,
) -> AppResult<Vec<CheckView>> {
    actor.require(&[Role::FieldEngineer], "record diagnosis steps")?;
    let txn = begin_write(db).await?;
    let rma = find_visible(&txn, actor, number).await?;
    if !matches!(rma.status.parse::<Status>(), Ok(Status::Reported | Status::Diagnosing)) {
        return Err(AppError::Conflict(format!(
            "{} is {}: the checklist is closed",
            rma.number, rma.status
        )));
    }
    let steps = checklist(&kind_of(&txn, &rma).await?);
    let step = steps.iter().find(|s| s.key == input.step.trim()).ok_or_else(|| {
        let keys: Vec<&str> = steps.iter().map(|s| s.key).collect();
        AppError::invalid(format!(
            "unknown step `{}`; this checklist has: {}",
            input.step.trim(),
            keys.join(", ")
        ))
    })?;
    let result = input.result.trim().to_lowercase();
    if !RESULTS.contains(&result.as_str()) {
        return Err(AppError::invalid(format!("result `{result}`: use pass, fail or n/a")));
    }
    let now = Utc::now();
    let note = input.note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
    diagnosis_check::ActiveModel {
        id: Set(Uuid::now_v7()),
        rma_id: Set(rma.id),
        step: Set(step.key.into()),
        result: Set(result.clone()),
        note: Set(note.clone()),
        actor_id: Set(actor.user_id),
        actor_email: Set(actor.email.clone()),
        at: Set(now),
    }
    .insert(&txn)
    .await?;
    let fields = json!({"step": step.key, "result": result});
    history::append(
        &txn,
        history::Entry::change(rma.id, "check", Some(actor), fields, now).with_note(note),
    )
    .await?;
    let checks = checks_of(&txn, &rma).await?;
    txn.commit().await?;
    Ok(checks)
}
