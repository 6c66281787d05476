//! The load: two clients, each loop bounded in count and in time, every latency kept.
use crate::sql::{Conn, V};
use chrono::Utc;
use sea_orm::DatabaseConnection;
use serde_json::json;
use std::future::Future;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// What one scenario measured.
#[derive(Clone, Debug, Default)]
pub struct Measured {
    pub done: usize,
    pub failed: usize,
    pub first_failure: Option<String>,
    pub elapsed: Duration,
    pub latencies: Vec<Duration>,
}

impl Measured {
    /// Adds what another client, or a later round of the same scenario, measured.
    pub fn absorb(&mut self, round: Measured) {
        self.done += round.done;
        self.failed += round.failed;
        self.elapsed += round.elapsed;
        self.latencies.extend(round.latencies);
        if self.first_failure.is_none() {
            self.first_failure = round.first_failure;
        }
    }

    pub fn per_second(&self) -> f64 {
        self.done as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The `q`-quantile latency in milliseconds (nearest rank).
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1].as_secs_f64() * 1000.0
    }
}

/// The bounds every loop obeys.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    pub requests: usize,
    pub time: Duration,
}

/// Runs `op(client, i)` from `clients` concurrent loops until `bounds.requests` operations in all
/// or `bounds.time` have passed, whichever comes first.
pub async fn drive<F, Fut>(clients: usize, bounds: Bounds, op: F) -> Measured
where
    F: Fn(usize, usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let start = Instant::now();
    let per_client = bounds.requests.div_ceil(clients);
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut m = Measured::default();
                for i in 0..per_client {
                    if start.elapsed() >= bounds.time {
                        break;
                    }
                    let t = Instant::now();
                    match op(c, i * clients + c).await {
                        Ok(()) => {
                            m.latencies.push(t.elapsed());
                            m.done += 1;
                        }
                        Err(e) => {
                            m.failed += 1;
                            m.first_failure.get_or_insert(e);
                        }
                    }
                }
                m
            })
        })
        .collect();
    let mut all = Measured::default();
    for task in tasks {
        all.absorb(task.await.expect("load task panicked"));
    }
    // The clients ran side by side: the scenario took as long as the slowest.
    all.elapsed = start.elapsed();
    all
}

/// The reference: what an HTTP transition writes (the RMA with a version check, its event, one
/// outbox row; one transaction each, `BEGIN IMMEDIATE` on SQLite as the server does) straight on
/// the database through the same pool and durability settings, without HTTP or the ORM.
pub async fn direct_transitions(db: &DatabaseConnection, numbers: Vec<String>, bounds: Bounds) -> Measured {
    let numbers = std::sync::Arc::new(numbers);
    let db = db.clone();
    drive(2, bounds, move |_, i| {
        let numbers = numbers.clone();
        let db = db.clone();
        async move {
            let number = numbers.get(i).ok_or("the write pool is used up")?.clone();
            one_direct_transition(&db, &number)
                .await
                .map_err(|e| format!("{number}: {e:#}"))
        }
    })
    .await
}

async fn one_direct_transition(db: &DatabaseConnection, number: &str) -> anyhow::Result<()> {
    let mut conn = Conn::acquire(db).await?;
    let now = Utc::now();
    let begin = if conn.is_sqlite() { "BEGIN IMMEDIATE" } else { "BEGIN" };
    conn.exec(begin, vec![]).await?;
    let rma_id: Uuid = conn.rma_id(number).await?;
    let updated = conn
        .exec(
            "UPDATE rmas SET status = ?, version = version + 1, updated_at = ?, status_changed_at = ?, closed_at = ? \
             WHERE id = ? AND version = ?",
            vec![
                V::Text("cancelled".into()),
                V::Time(now),
                V::Time(now),
                V::OptTime(Some(now)),
                V::Uuid(rma_id),
                V::Int(1),
            ],
        )
        .await?;
    anyhow::ensure!(updated == 1, "version conflict");
    let event_id = Uuid::now_v7();
    conn.insert(
        "events",
        &crate::dataset::EVENT_COLUMNS,
        vec![vec![
            V::Uuid(event_id),
            V::Uuid(rma_id),
            V::Text("transition".into()),
            V::OptText(Some("reported".into())),
            V::OptText(Some("cancelled".into())),
            V::OptUuid(None),
            V::Text("bench@depot".into()),
            V::Time(now),
            V::OptText(Some("bench".into())),
            V::Json(json!({"reason": "bench"})),
        ]],
    )
    .await?;
    conn.insert(
        "notifications",
        &[
            "id",
            "event_id",
            "rma_id",
            "template",
            "channel",
            "recipients",
            "state",
            "attempts",
            "next_attempt_at",
            "created_at",
            "subject",
            "body_text",
            "body_html",
            "message_id",
            "attach_label",
        ],
        vec![vec![
            V::Uuid(Uuid::now_v7()),
            V::Uuid(event_id),
            V::Uuid(rma_id),
            V::Text("rma_closed".into()),
            V::Text("email".into()),
            V::Json(json!(["dc@example.com"])),
            V::Text("pending".into()),
            V::Int(0),
            V::Time(now),
            V::Time(now),
            V::OptText(Some(format!("{number} closed"))),
            V::OptText(Some(format!("{number} was cancelled: bench"))),
            V::OptText(Some(format!("<p>{number} was cancelled: bench</p>"))),
            V::OptText(Some(format!("<{}@depot>", Uuid::now_v7()))),
            V::Bool(false),
        ]],
    )
    .await?;
    conn.exec("COMMIT", vec![]).await?;
    Ok(())
}
