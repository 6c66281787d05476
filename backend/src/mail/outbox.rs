//! Queueing notifications: one row per message and channel, inserted in the caller's transaction.
use super::compose::Composed;
use crate::entities::{notification, organization, site};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QueryResult, QuerySelect, Set, TryInsert,
    TryInsertResult,
};
use serde_json::json;
use uuid::Uuid;

/// Outbox row states.
pub const PENDING: &str = "pending";
pub const RETRYING: &str = "retrying";
pub const SENDING: &str = "sending";
pub const SENT: &str = "sent";
pub const DEAD: &str = "dead";

/// Notification channels: an email to the recipients, a post to the organization's chat webhook.
pub const EMAIL: &str = "email";
pub const WEBHOOK: &str = "webhook";

/// A message to queue.
pub struct Queued<'a> {
    pub rma_id: Uuid,
    pub event_id: Uuid,
    pub template: &'a str,
    pub recipients: Vec<String>,
    /// `None` for a transition's notice: the dispatcher composes it when it sends.
    pub composed: Option<Composed>,
    pub attach_label: bool,
    /// For scheduled messages: the same key is never queued twice, across restarts too.
    pub dedupe_key: Option<String>,
    /// The organization's chat webhook, which gets the message too (`webhook_of`).
    pub webhook_url: Option<String>,
}

/// The column of [`watchers_emails`].
pub const WATCHERS: &str = "watchers";

/// The emails of the outer `rmas` row's watchers who may still be told (enabled users), one per
/// line (emails hold no newline), to read with the RMA as [`WATCHERS`].
pub fn watchers_emails(backend: DbBackend) -> Expr {
    let joined = crate::db::lines_of(backend, r#""users"."email""#);
    Expr::cust(format!(
        r#"(SELECT {joined} FROM "rma_watchers" JOIN "users" ON "users"."id" = "rma_watchers"."user_id" WHERE "rma_watchers"."rma_id" = "rmas"."id" AND "users"."disabled" = FALSE)"#
    ))
}

/// The watchers' emails of a row read with [`watchers_emails`].
pub fn watchers_in(row: &QueryResult) -> Result<Vec<String>, DbErr> {
    let watchers: Option<String> = row.try_get("", WATCHERS)?;
    Ok(watchers.iter().flat_map(|w| w.lines()).map(str::to_string).collect())
}

/// The site's DC-tech contacts and the RMA's watchers ([`watchers_in`]), without duplicates.
pub fn recipients_among(site: &site::Model, watchers: Vec<String>) -> Vec<String> {
    let mut to: Vec<String> = serde_json::from_value(site.contact_emails.clone()).unwrap_or_default();
    to.extend(watchers);
    to.sort();
    to.dedup();
    to
}

/// The organization's chat webhook, if it has one.
pub async fn webhook_of(db: &impl ConnectionTrait, organization_id: Uuid) -> Result<Option<String>, DbErr> {
    let url: Option<Option<String>> = organization::Entity::find_by_id(organization_id)
        .select_only()
        .column(organization::Column::WebhookUrl)
        .into_tuple()
        .one(db)
        .await?;
    Ok(url.flatten())
}

/// Inserts the email row, and a webhook row when the organization has a webhook. Returns whether
/// anything was queued (a repeated `dedupe_key` queues nothing).
pub async fn queue(db: &impl ConnectionTrait, q: Queued<'_>, now: DateTime<Utc>) -> Result<bool, DbErr> {
    let inserted = insert(q, now).exec_without_returning(db).await?;
    Ok(matches!(inserted, TryInsertResult::Inserted(n) if n > 0))
}

/// The insert [`queue`] makes.
fn insert(q: Queued<'_>, now: DateTime<Utc>) -> TryInsert<notification::ActiveModel> {
    notification::Entity::insert_many(rows(q, now)).on_conflict_do_nothing_on([notification::Column::DedupeKey])
}

/// The rows of `q`, for a caller that inserts them with other writes (and no `dedupe_key`).
pub fn rows(q: Queued<'_>, now: DateTime<Utc>) -> Vec<notification::ActiveModel> {
    let mut channels = vec![(EMAIL, json!(q.recipients), q.dedupe_key.clone())];
    if let Some(url) = &q.webhook_url {
        channels.push((
            WEBHOOK,
            json!([url]),
            q.dedupe_key.as_ref().map(|k| format!("{k}:webhook")),
        ));
    }
    let rows = channels.into_iter().map(|(channel, recipients, dedupe_key)| {
        let id = Uuid::now_v7();
        notification::ActiveModel {
            id: Set(id),
            event_id: Set(q.event_id),
            rma_id: Set(q.rma_id),
            template: Set(q.template.into()),
            channel: Set(channel.into()),
            recipients: Set(recipients),
            state: Set(PENDING.into()),
            attempts: Set(0),
            next_attempt_at: Set(now),
            last_error: Set(None),
            created_at: Set(now),
            sent_at: Set(None),
            subject: Set(q.composed.as_ref().map(|c| c.subject.clone())),
            body_text: Set(q.composed.as_ref().map(|c| c.text.clone())),
            body_html: Set(q.composed.as_ref().map(|c| c.html.clone())),
            message_id: Set(Some(format!("<{id}@depot>"))),
            dedupe_key: Set(dedupe_key),
            locked_until: Set(None),
            attach_label: Set(q.attach_label && channel == EMAIL),
        }
    });
    rows.collect()
}

/// Puts a dead or retrying notification back in the queue, to be tried now.
pub async fn retry(db: &impl ConnectionTrait, id: uuid::Uuid) -> Result<bool, sea_orm::DbErr> {
    let res = notification::Entity::update_many()
        .col_expr(notification::Column::State, Expr::value(PENDING))
        .col_expr(notification::Column::Attempts, Expr::value(0))
        .col_expr(notification::Column::NextAttemptAt, Expr::value(Utc::now()))
        .col_expr(
            notification::Column::LockedUntil,
            Expr::value(Option::<chrono::DateTime<Utc>>::None),
        )
        .filter(notification::Column::Id.eq(id))
        .filter(notification::Column::State.is_in([DEAD, RETRYING]))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}
