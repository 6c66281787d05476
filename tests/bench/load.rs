//! The load: two clients, each loop bounded in count and in time, every latency kept.
use crate::sql::Conn;
use chrono::Utc;
use sea_orm::DatabaseConnection;
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

/// The same-stack reference: the raw reference's statements (`raw::statements`), one transaction
/// each, `BEGIN IMMEDIATE` on SQLite as the server does, through depot's own pool and driver
/// without HTTP or the ORM.
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
    let begin = if conn.is_sqlite() { "BEGIN IMMEDIATE" } else { "BEGIN" };
    conn.exec(begin, vec![]).await?;
    let rma_id: Uuid = conn.rma_id(number).await?;
    let [update, event, outbox] = crate::raw::statements(rma_id, number, Utc::now());
    anyhow::ensure!(conn.exec(update.0, update.1).await? == 1, "version conflict");
    conn.exec(event.0, event.1).await?;
    conn.exec(outbox.0, outbox.1).await?;
    conn.exec("COMMIT", vec![]).await?;
    Ok(())
}
