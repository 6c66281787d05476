//! Delivering the outbox after commit. Each instance claims due rows with a compare-and-set lease
//! (so two instances never send the same row), sends them, and records the outcome: sent, or
//! retried with exponential backoff and jitter, or dead after a bounded number of attempts.
use super::outbox::{DEAD, EMAIL, PENDING, RETRYING, SENT, WEBHOOK};
use crate::config::Settings;
use crate::documents;
use crate::entities::notification;
use crate::services::labels;
use chrono::{Duration as ChronoDuration, Utc};
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use rand::Rng;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use std::time::Duration;

const BATCH: u64 = 20;

pub struct Dispatcher {
    db: DatabaseConnection,
    smtp: Option<AsyncSmtpTransport<Tokio1Executor>>,
    from: Mailbox,
    http: reqwest::Client,
    webhook_allow: crate::outbound::Allowed,
    /// Slack's Web API and the bot token, for `slack:CHANNEL` destinations.
    slack_api: Option<(String, crate::config::Secret)>,
    base_url: String,
    max_attempts: i32,
    backoff: Duration,
    poll: Duration,
    /// How long a claim lasts: a row whose sender died is picked up again after this.
    lease: Duration,
}

impl Dispatcher {
    pub fn new(db: DatabaseConnection, settings: &Settings) -> anyhow::Result<Dispatcher> {
        let smtp = match &settings.smtp_url {
            Some(url) => Some(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
                    .map_err(|e| anyhow::anyhow!("SMTP_URL is not usable: {e}"))?
                    .timeout(Some(Duration::from_secs(20)))
                    .build(),
            ),
            None => None,
        };
        let from = settings
            .mail_from
            .parse()
            .map_err(|e| anyhow::anyhow!("DEPOT_MAIL_FROM `{}` is not a mailbox: {e}", settings.mail_from))?;
        Ok(Dispatcher {
            db,
            smtp,
            from,
            http: crate::outbound::client(&settings.webhook_allow)?,
            webhook_allow: settings.webhook_allow.clone(),
            slack_api: settings
                .slack_bot_token
                .clone()
                .map(|t| (settings.slack_api_url.clone(), t)),
            base_url: settings.base_url.clone(),
            max_attempts: settings.mail_max_attempts,
            backoff: settings.mail_backoff,
            poll: settings.mail_poll,
            lease: settings.mail_lease,
        })
    }

    /// Delivers until `shutdown` fires.
    pub async fn run(self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            tracing::trace!("outbox pass");
            let busy = match self.deliver_due().await {
                Ok(n) => n > 0,
                Err(err) => {
                    tracing::warn!(error = %err, "outbox delivery pass failed");
                    false
                }
            };
            if !busy {
                tokio::select! {
                    _ = tokio::time::sleep(self.poll) => {}
                    _ = shutdown.changed() => return,
                }
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }

    /// One pass: claims up to a batch of due rows and delivers them. Returns how many it handled.
    pub async fn deliver_due(&self) -> anyhow::Result<usize> {
        let now = Utc::now();
        let mut due = notification::Entity::find()
            .filter(notification::Column::State.is_in([PENDING, RETRYING]))
            .filter(notification::Column::NextAttemptAt.lte(now))
            .filter(
                Condition::any()
                    .add(notification::Column::LockedUntil.is_null())
                    .add(notification::Column::LockedUntil.lt(now)),
            );
        if self.smtp.is_none() {
            // Without a mail server, email stays queued; webhooks still go out (found by channel:
            // the emails waiting are never walked).
            due = due.filter(notification::Column::Channel.eq(WEBHOOK));
        }
        let rows = due
            .order_by_asc(notification::Column::NextAttemptAt)
            .limit(BATCH)
            .all(&self.db)
            .await?;
        let mut handled = 0;
        for row in rows {
            if !self.claim(&row).await? {
                continue;
            }
            handled += 1;
            let outcome = match self.composed(row).await {
                Ok(row) => {
                    let sent = match row.channel.as_str() {
                        EMAIL => self.send_email(&row).await,
                        WEBHOOK => self.post_webhook(&row).await,
                        other => Err(anyhow::anyhow!("unknown channel {other}")),
                    };
                    (row, sent)
                }
                Err((row, err)) => (row, Err(err)),
            };
            self.record(&outcome.0, outcome.1).await?;
        }
        Ok(handled)
    }

    /// Takes the row for this instance, unless another instance took it first.
    async fn claim(&self, row: &notification::Model) -> anyhow::Result<bool> {
        let now = Utc::now();
        let taken = notification::Entity::update_many()
            .col_expr(
                notification::Column::LockedUntil,
                Expr::value(Some(now + ChronoDuration::from_std(self.lease).unwrap_or_default())),
            )
            .filter(notification::Column::Id.eq(row.id))
            .filter(notification::Column::State.is_in([PENDING, RETRYING]))
            .filter(
                Condition::any()
                    .add(notification::Column::LockedUntil.is_null())
                    .add(notification::Column::LockedUntil.lt(now)),
            )
            .exec(&self.db)
            .await?;
        Ok(taken.rows_affected == 1)
    }

    /// The row with its subject and bodies: a transition's notice is composed here, from the RMA
    /// as it is when the message goes out, and kept with the row once recorded.
    async fn composed(
        &self,
        mut row: notification::Model,
    ) -> Result<notification::Model, (notification::Model, anyhow::Error)> {
        if row.subject.is_some() {
            return Ok(row);
        }
        match crate::services::rmas::compose_notice(&self.db, row.rma_id, row.event_id, &row.template, &self.base_url)
            .await
        {
            Ok(c) => {
                row.subject = Some(c.subject);
                row.body_text = Some(c.text);
                row.body_html = Some(c.html);
                Ok(row)
            }
            Err(err) => Err((row, err.context("composing the message"))),
        }
    }

    async fn record(&self, row: &notification::Model, outcome: anyhow::Result<()>) -> anyhow::Result<()> {
        let attempts = row.attempts + 1;
        let now = Utc::now();
        let mut update = notification::Entity::update_many()
            .col_expr(notification::Column::Subject, Expr::value(row.subject.clone()))
            .col_expr(notification::Column::BodyText, Expr::value(row.body_text.clone()))
            .col_expr(notification::Column::BodyHtml, Expr::value(row.body_html.clone()))
            .col_expr(notification::Column::Attempts, Expr::value(attempts))
            .col_expr(
                notification::Column::LockedUntil,
                Expr::value(Option::<chrono::DateTime<Utc>>::None),
            );
        match outcome {
            Ok(()) => {
                tracing::info!(id = %row.id, template = %row.template, channel = %row.channel, "notification delivered");
                update = update
                    .col_expr(notification::Column::State, Expr::value(SENT))
                    .col_expr(notification::Column::SentAt, Expr::value(Some(now)))
                    .col_expr(notification::Column::LastError, Expr::value(Option::<String>::None));
            }
            Err(err) => {
                let state = if attempts >= self.max_attempts { DEAD } else { RETRYING };
                tracing::warn!(id = %row.id, attempts, state, error = %err, "notification not delivered");
                let next = now + ChronoDuration::from_std(self.delay(attempts)).unwrap_or_default();
                update = update
                    .col_expr(notification::Column::State, Expr::value(state))
                    .col_expr(notification::Column::NextAttemptAt, Expr::value(next))
                    .col_expr(notification::Column::LastError, Expr::value(Some(format!("{err:#}"))));
            }
        }
        update
            .filter(notification::Column::Id.eq(row.id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Exponential backoff from the configured base, capped at an hour, with ±25 % jitter so that
    /// many rows failing together do not retry together.
    fn delay(&self, attempts: i32) -> Duration {
        let base = self.backoff.as_millis() as f64 * 2f64.powi((attempts - 1).clamp(0, 20));
        let capped = base.min(3_600_000.0);
        let jitter = rand::rng().random_range(0.75..1.25);
        Duration::from_millis((capped * jitter) as u64)
    }

    async fn send_email(&self, row: &notification::Model) -> anyhow::Result<()> {
        let smtp = self
            .smtp
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("no SMTP_URL configured"))?;
        let recipients: Vec<String> = serde_json::from_value(row.recipients.clone())?;
        if recipients.is_empty() {
            anyhow::bail!("no recipients");
        }
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(row.subject.clone().unwrap_or_default())
            .message_id(row.message_id.clone());
        for to in &recipients {
            builder = builder.to(to.parse().map_err(|e| anyhow::anyhow!("recipient {to}: {e}"))?);
        }
        let body = MultiPart::alternative_plain_html(
            row.body_text.clone().unwrap_or_default(),
            row.body_html.clone().unwrap_or_default(),
        );
        let message = if row.attach_label {
            let data = labels::return_label_by_id(&self.db, row.rma_id, &self.base_url).await?;
            let pdf = documents::return_label_pdf(&data)?;
            let attachment: SinglePart = Attachment::new(format!("{}-return-label.pdf", data.number))
                .body(pdf, ContentType::parse("application/pdf")?);
            builder.multipart(MultiPart::mixed().multipart(body).singlepart(attachment))?
        } else {
            builder.multipart(body)?
        };
        smtp.send(message).await?;
        Ok(())
    }

    /// A JSON POST that chat incoming-webhooks accept (`text`, and Slack's `blocks`), or a message
    /// in the RMA's Slack thread for a `slack:CHANNEL` destination.
    async fn post_webhook(&self, row: &notification::Model) -> anyhow::Result<()> {
        let urls: Vec<String> = serde_json::from_value(row.recipients.clone())?;
        let number = crate::entities::rma::Entity::find_by_id(row.rma_id)
            .one(&self.db)
            .await?
            .map(|r| r.number);
        let link = match &number {
            Some(n) => format!("{}/rmas/{n}", self.base_url),
            None => format!("{}/rmas", self.base_url),
        };
        let subject = row.subject.clone().unwrap_or_default();
        // Slack's Block Kit with the RMA's buttons; other chat tools read `text`.
        let mut message = crate::services::slack::chat_message(&subject, number.as_deref(), &link);
        message["template"] = serde_json::json!(row.template);
        for url in urls {
            if let Some(channel) = url.strip_prefix(crate::services::slack::CHANNEL_PREFIX) {
                let (api, token) = self
                    .slack_api
                    .as_ref()
                    .ok_or_else(|| anyhow::anyhow!("{url} needs SLACK_BOT_TOKEN"))?;
                let slack = crate::services::slack::Api {
                    http: &self.http,
                    url: api,
                    token: token.expose(),
                    allowed: &self.webhook_allow,
                };
                slack.post_in_thread(&self.db, channel, row.rma_id, &message).await?;
                continue;
            }
            // Checked again at sending: the rules or the setting may have changed since it was saved.
            let url = crate::outbound::check_url(&url, &self.webhook_allow).map_err(anyhow::Error::msg)?;
            let res = self.http.post(url).json(&message).send().await?;
            if !res.status().is_success() {
                anyhow::bail!("webhook answered {}", res.status());
            }
        }
        Ok(())
    }
}
