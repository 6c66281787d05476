//! The scheduler: return reminders and SLA breach alerts. Each alert is queued with a
//! de-duplication key, so restarts and several instances never send one twice.
use crate::domain::Severity;
use crate::domain::lifecycle::Status;
use crate::domain::sla::Clock;
use crate::entities::{organization, rma, site};
use crate::mail::outbox;
use crate::services::{alerts, views};
use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, FromQueryResult, QueryFilter, QuerySelect,
    QueryTrait,
};
use serde_json::json;
use std::collections::{BTreeMap, HashMap, HashSet};
use uuid::Uuid;

/// Days after the swap before the first return reminder; then one a day.
pub const RETURN_GRACE_DAYS: i64 = 5;

/// Runs every job every `interval` until `shutdown` fires.
pub async fn run(
    db: DatabaseConnection,
    base_url: String,
    interval: std::time::Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut scheduler = Scheduler::default();
    loop {
        if let Err(err) = scheduler.run_once(&db, &base_url, Utc::now()).await {
            tracing::warn!(error = %err, "scheduled jobs failed");
        }
        if let Err(err) = housekeeping(&db, Utc::now()).await {
            tracing::warn!(error = %err, "housekeeping failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Every job as of `now`, by a scheduler that remembers nothing (as a new instance's first sweep).
/// Returns how many messages were queued.
pub async fn run_once(db: &DatabaseConnection, base_url: &str, now: DateTime<Utc>) -> anyhow::Result<usize> {
    Scheduler::default().run_once(db, base_url, now).await
}

/// The scheduler's memory between sweeps: the SLA alerts' de-duplication keys it knows are used.
/// A clock stays at risk or breached for hours, and each sweep looked every such key up again (a
/// tenth of a second a minute with ten thousand such clocks). The outbox never frees a key, so a
/// remembered one is never wrong; another instance's are found in the database the first time.
#[derive(Default)]
pub struct Scheduler {
    alerted: HashSet<String>,
}

impl Scheduler {
    /// Every job, as of `now`. Returns how many messages were queued.
    pub async fn run_once(
        &mut self,
        db: &DatabaseConnection,
        base_url: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<usize> {
        Ok(return_reminders(db, base_url, now).await?
            + sla_alerts(db, base_url, now, &mut self.alerted).await?
            + quiet_shipments(db, base_url, now).await?)
    }
}

/// A shipment the carrier has scanned but not for this long is probably stuck.
pub const QUIET_HOURS: i64 = 24;

/// One alert per shipment and last scan when a tracked box has had no scan for [`QUIET_HOURS`].
pub async fn quiet_shipments(db: &DatabaseConnection, base_url: &str, now: DateTime<Utc>) -> anyhow::Result<usize> {
    let quiet = crate::services::tracking::gone_quiet(db, now, Duration::hours(QUIET_HOURS)).await?;
    let mut queued = 0;
    for (shipment, last) in quiet {
        let key = format!("shipment:{}:quiet:{}", shipment.id, last.at.timestamp_micros());
        let Some(r) = rma::Entity::find_by_id(shipment.rma_id).one(db).await? else {
            continue;
        };
        let what = format!(
            "no scan for {} hours (last: {} {})",
            (now - last.at).num_hours(),
            last.status.replace('_', " "),
            last.at.format("%Y-%m-%d %H:%M UTC")
        );
        queued +=
            crate::services::tracking::trouble_alert(db, base_url, &r, &shipment, &what, key, now).await? as usize;
    }
    Ok(queued)
}

/// One alert per clock, state and RMA, ever.
fn sla_key(clock: impl std::fmt::Display, state: impl std::fmt::Display, rma_id: uuid::Uuid) -> String {
    format!("sla:{clock}:{state}:{rma_id}")
}

/// The de-duplication keys among `keys` that already queued a message.
async fn used_keys(db: &DatabaseConnection, keys: Vec<String>) -> anyhow::Result<std::collections::HashSet<String>> {
    use crate::entities::notification;
    let mut used = std::collections::HashSet::new();
    for slice in keys.chunks(crate::db::IN_LIST_SLICE) {
        let found: Vec<Option<String>> = notification::Entity::find()
            .select_only()
            .column(notification::Column::DedupeKey)
            .filter(notification::Column::DedupeKey.is_in(slice.iter().cloned()))
            .into_tuple()
            .all(db)
            .await?;
        used.extend(found.into_iter().flatten());
    }
    Ok(used)
}

/// A reminder a day once the failed unit is [`RETURN_GRACE_DAYS`] overdue after the swap.
pub async fn return_reminders(db: &DatabaseConnection, base_url: &str, now: DateTime<Utc>) -> anyhow::Result<usize> {
    // The overdue RMAs with their watchers in one read; their sites and views in one batch each.
    let mut query = rma::Entity::find()
        .filter(rma::Column::Status.eq(Status::Swapped.as_str()))
        .filter(rma::Column::StatusChangedAt.lte(now - Duration::days(RETURN_GRACE_DAYS)))
        .into_query();
    query.expr_as(outbox::watchers_emails(db.get_database_backend()), outbox::WATCHERS);
    let mut due = vec![];
    for row in db.query_all(&query).await? {
        let r = rma::Model::from_query_result(&row, "")?;
        let key = format!("return_reminder:{}:day{}", r.id, (now - r.status_changed_at).num_days());
        due.push((key, r, outbox::watchers_in(&row)?));
    }
    let used = used_keys(db, due.iter().map(|(k, _, _)| k.clone()).collect()).await?;
    due.retain(|(k, _, _)| !used.contains(k));
    let sites = views::load_map::<site::Entity>(db, due.iter().map(|(_, r, _)| r.site_id)).await?;
    let rmas_views = views::rma_views(db, due.iter().map(|(_, r, _)| r.clone()).collect()).await?;
    let mut queued = 0;
    for ((key, r, watchers), view) in due.into_iter().zip(rmas_views) {
        let days = (now - r.status_changed_at).num_days();
        let site = sites
            .get(&r.site_id)
            .ok_or_else(|| anyhow::anyhow!("site of {}", r.number))?;
        let ctx = json!({"rma": view, "days": days, "link": format!("{base_url}/rmas/{}", r.number)});
        let recipients = outbox::recipients_among(site, watchers);
        queued += alerts::alert(db, &r, "return_reminder", "reminder", recipients, ctx, key, now).await? as usize;
    }
    Ok(queued)
}

/// One alert to the organization's on-call list when a clock goes at risk, and one when it
/// breaches; a sev1 also pages whoever is on call. Sets the Prometheus gauges on the way. `alerted`
/// holds the keys known used, and is kept to those of the clocks alerting now.
pub async fn sla_alerts(
    db: &DatabaseConnection,
    base_url: &str,
    now: DateTime<Utc>,
    alerted: &mut HashSet<String>,
) -> anyhow::Result<usize> {
    use futures_util::TryStreamExt;
    let orgs: HashMap<Uuid, organization::Model> = organization::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|o| (o.id, o))
        .collect();
    let terms: HashMap<Uuid, _> = orgs
        .values()
        .map(|o| (o.id, crate::services::sla::terms(Some(o))))
        .collect();
    let default_terms = crate::services::sla::terms(None);
    let mut gauges: BTreeMap<(String, &'static str, &'static str), f64> = Default::default();
    for org in orgs.values() {
        for clock in crate::services::sla::CLOCKS {
            for state in ["at_risk", "breached"] {
                gauges.insert((org.code.clone(), clock, state), 0.0);
            }
        }
    }
    // Only what the clocks are computed from, streamed (at a million RMAs some ten thousand are
    // open); only those with a clock at risk or breached are read whole, a batch at a time.
    let mut open = rma::Entity::find()
        .select_only()
        .columns([
            rma::Column::Id,
            rma::Column::OrganizationId,
            rma::Column::Severity,
            rma::Column::CreatedAt,
            rma::Column::StatusEntered,
        ])
        .filter(rma::Column::ClosedAt.is_null())
        .into_tuple::<(Uuid, Uuid, String, DateTime<Utc>, serde_json::Value)>()
        .stream(db)
        .await?;
    let mut alerting: Vec<(Uuid, Clock, String)> = vec![];
    while let Some((id, organization_id, severity, created_at, entered)) = open.try_next().await? {
        let terms = terms.get(&organization_id).unwrap_or(&default_terms);
        for c in crate::services::sla::clocks_from(terms, &severity, created_at, &entered, now) {
            if !c.needs_attention() {
                continue;
            }
            if let Some(org) = orgs.get(&organization_id) {
                *gauges.entry((org.code.clone(), c.name, c.state.as_str())).or_default() += 1.0;
            }
            let key = sla_key(c.name, c.state.as_str(), id);
            alerting.push((id, c, key));
        }
    }
    drop(open);
    {
        // Remembered only while still alerting: a clock that stopped is not asked about again.
        let alerting_keys: HashSet<&String> = alerting.iter().map(|(_, _, key)| key).collect();
        alerted.retain(|key| alerting_keys.contains(key));
    }
    let unknown = alerting
        .iter()
        .map(|(_, _, key)| key)
        .filter(|key| !alerted.contains(*key))
        .cloned()
        .collect();
    alerted.extend(used_keys(db, unknown).await?);
    // Alerted on an earlier sweep: nothing to read, build, compose or roll back.
    alerting.retain(|(_, _, key)| !alerted.contains(key));
    let mut queued = 0;
    // Who is on call is one answer per organization for the whole sweep (`now` does not move).
    let mut on_call: HashMap<Uuid, Option<String>> = HashMap::new();
    for batch in alerting.chunks(ALERT_BATCH) {
        let rmas = views::load_map::<rma::Entity>(db, batch.iter().map(|(id, _, _)| *id)).await?;
        let views: HashMap<Uuid, views::RmaView> =
            views::rma_views_among(db, rmas.values().cloned().collect(), orgs.clone())
                .await?
                .into_iter()
                .map(|v| (v.id, v))
                .collect();
        for (id, c, key) in batch {
            let (Some(r), Some(view)) = (rmas.get(id), views.get(id)) else {
                continue;
            };
            let state = c.state.as_str();
            let mut to = orgs
                .get(&r.organization_id)
                .map(alerts::oncall_list)
                .unwrap_or_default();
            if r.severity == Severity::Sev1.as_str() {
                if let std::collections::hash_map::Entry::Vacant(e) = on_call.entry(r.organization_id) {
                    e.insert(crate::services::oncall::on_call(db, r.organization_id, now).await?);
                }
                to.extend(on_call[&r.organization_id].clone());
            }
            let ctx = json!({"rma": view, "clock": c.name, "state": state, "deadline": c.deadline.to_rfc3339(),
                "link": format!("{base_url}/rmas/{}", r.number)});
            queued += alerts::alert(db, r, "sla_breach", "sla_alert", to, ctx, key.clone(), now).await? as usize;
            alerted.insert(key.clone());
        }
    }
    for ((org, clock, state), n) in gauges {
        metrics::gauge!("depot_sla_clocks", "organization" => org, "clock" => clock, "state" => state).set(n);
    }
    Ok(queued)
}

/// How many alerts' RMAs are read and shown at a time.
const ALERT_BATCH: usize = 200;

/// Forgets what has no use any more: expired sessions, sign-in throttle windows that have ended,
/// idempotency keys older than thirty days (a retry comes within minutes, not months).
pub async fn housekeeping(db: &DatabaseConnection, now: DateTime<Utc>) -> anyhow::Result<u64> {
    use crate::entities::{idempotency_key, session, sign_in_throttle};
    let window = Duration::minutes(crate::services::sessions::THROTTLE_MINUTES);
    let mut gone = session::Entity::delete_many()
        .filter(session::Column::ExpiresAt.lt(now))
        .exec(db)
        .await?
        .rows_affected;
    gone += sign_in_throttle::Entity::delete_many()
        .filter(sign_in_throttle::Column::WindowStartedAt.lt(now - window))
        .exec(db)
        .await?
        .rows_affected;
    gone += idempotency_key::Entity::delete_many()
        .filter(idempotency_key::Column::CreatedAt.lt(now - Duration::days(30)))
        .exec(db)
        .await?
        .rows_affected;
    Ok(gone)
}
