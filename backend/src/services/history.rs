//! Appending to an RMA's history. Events are only ever inserted, through here.
use crate::domain::lifecycle::Status;
use crate::entities::event;
use crate::services::Actor;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, Set};
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

impl Entry<'_> {
    /// The event row of the entry, with a new id.
    pub fn into_row(self) -> event::ActiveModel {
        event::ActiveModel {
            id: Set(Uuid::now_v7()),
            rma_id: Set(self.rma_id),
            kind: Set(self.kind.into()),
            from_status: Set(self.from.map(|s| s.as_str().into())),
            to_status: Set(self.to.map(|s| s.as_str().into())),
            actor_id: Set(self.actor.map(|a| a.user_id)),
            actor_email: Set(self.actor.map_or_else(|| "depot".to_string(), |a| a.email.clone())),
            at: Set(self.at),
            note: Set(self.note),
            fields: Set(self.fields),
        }
    }
}

/// Appends `entry`; returns the new event's id.
pub async fn append(db: &impl ConnectionTrait, entry: Entry<'_>) -> Result<Uuid, DbErr> {
    let row = entry.into_row();
    let id = row.id.clone().unwrap();
    event::Entity::insert(row).exec_without_returning(db).await?;
    Ok(id)
}
