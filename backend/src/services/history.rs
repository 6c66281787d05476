//! Appending to an RMA's history. Events are only ever inserted, through here.
use crate::domain::lifecycle::Status;
use crate::entities::event;
use crate::services::Actor;
use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ConnectionTrait, DbErr, Set};
use serde_json::Value;
use uuid::Uuid;

/// One entry of an RMA's history.
pub struct Entry<'a> {
    pub rma_id: Uuid,
    /// `opened`, `transition`, `alarm`, `check`, `attachment`, `refs_updated`, `reminder`, `sla_alert`.
    pub kind: &'a str,
    pub from: Option<Status>,
    pub to: Option<Status>,
    /// Who did it; `None` for depot itself (scheduled work).
    pub actor: Option<&'a Actor>,
    pub note: Option<String>,
    pub fields: Value,
    pub at: DateTime<Utc>,
}

impl<'a> Entry<'a> {
    /// A change that is not a status transition.
    pub fn change(
        rma_id: Uuid,
        kind: &'a str,
        actor: Option<&'a Actor>,
        fields: Value,
        at: DateTime<Utc>,
    ) -> Entry<'a> {
        Entry {
            rma_id,
            kind,
            from: None,
            to: None,
            actor,
            note: None,
            fields,
            at,
        }
    }

    pub fn with_note(mut self, note: Option<String>) -> Entry<'a> {
        self.note = note;
        self
    }
}

/// Appends `entry`; returns the new event's id.
pub async fn append(db: &impl ConnectionTrait, entry: Entry<'_>) -> Result<Uuid, DbErr> {
    let id = Uuid::now_v7();
    event::ActiveModel {
        id: Set(id),
        rma_id: Set(entry.rma_id),
        kind: Set(entry.kind.into()),
        from_status: Set(entry.from.map(|s| s.as_str().into())),
        to_status: Set(entry.to.map(|s| s.as_str().into())),
        actor_id: Set(entry.actor.map(|a| a.user_id)),
        actor_email: Set(entry.actor.map_or_else(|| "depot".to_string(), |a| a.email.clone())),
        at: Set(entry.at),
        note: Set(entry.note),
        fields: Set(entry.fields),
    }
    .insert(db)
    .await?;
    Ok(id)
}
