//! Service-level clocks of RMAs (computed from their events and their organization's policy and
//! calendar) and the monthly attainment report.
use crate::domain::Severity;
use crate::domain::sla::{self, Calendar, Clock, ClockState, Entered, Policy};
use crate::entities::{organization, rma};
use crate::error::{AppError, AppResult};
use crate::services::Actor;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use serde::Serialize;
use std::collections::HashMap;
use uuid::Uuid;

/// An organization's policy and calendar, with SPEC §4's defaults for what it leaves out.
pub fn terms(org: Option<&organization::Model>) -> (Policy, Calendar) {
    let policy = org
        .and_then(|o| o.sla_policy.clone())
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    let calendar = org
        .and_then(|o| o.calendar.clone())
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    (policy, calendar)
}

/// The clocks of each RMA as of `now`, with one query (their organizations) whatever their number.
pub async fn clocks_of(
    db: &impl ConnectionTrait,
    rmas: &[rma::Model],
    now: DateTime<Utc>,
) -> Result<HashMap<Uuid, Vec<Clock>>, DbErr> {
    if rmas.is_empty() {
        return Ok(HashMap::new());
    }
    let orgs =
        crate::services::views::load_map::<organization::Entity>(db, rmas.iter().map(|r| r.organization_id)).await?;
    Ok(clocks_with(&orgs, rmas, now))
}

/// `clocks_of` with the RMAs' organizations already at hand. Reads nothing more: each RMA carries
/// the first time it entered each status.
pub fn clocks_with(
    orgs: &HashMap<Uuid, organization::Model>,
    rmas: &[rma::Model],
    now: DateTime<Utc>,
) -> HashMap<Uuid, Vec<Clock>> {
    let mut terms_of: HashMap<Uuid, (Policy, Calendar)> = HashMap::new();
    rmas.iter()
        .map(|r| {
            let terms = terms_of
                .entry(r.organization_id)
                .or_insert_with(|| terms(orgs.get(&r.organization_id)));
            (
                r.id,
                clocks_from(terms, &r.severity, r.created_at, &r.status_entered, now),
            )
        })
        .collect()
}

/// One RMA's clocks from what they are computed from (its severity, when it was opened and the
/// first time it entered each status), under its organization's `terms`.
pub fn clocks_from(
    (policy, calendar): &(Policy, Calendar),
    severity: &str,
    created_at: DateTime<Utc>,
    status_entered: &serde_json::Value,
    now: DateTime<Utc>,
) -> Vec<Clock> {
    let severity = severity.parse().unwrap_or(Severity::Sev4);
    sla::clocks(
        severity,
        created_at,
        &Entered::from_json(status_entered),
        policy,
        calendar,
        now,
    )
}

/// How urgent an RMA's clocks make it: breached before at risk before the rest.
pub fn urgency(clocks: &[Clock]) -> u8 {
    if clocks
        .iter()
        .any(|c| c.state == ClockState::Breached && c.stopped_at.is_none())
    {
        0
    } else if clocks.iter().any(|c| c.state == ClockState::AtRisk) {
        1
    } else {
        2
    }
}

/// One contract clock's attainment in a month.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Attainment {
    pub clock: String,
    pub met: u32,
    pub breached: u32,
    /// `met / (met + breached)` in percent; null when nothing was due.
    pub attainment_percent: Option<f64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Breach {
    pub number: String,
    pub severity: String,
    pub clock: String,
    pub deadline: DateTime<Utc>,
    pub stopped_at: Option<DateTime<Utc>>,
}

/// The SLA report of an organization for a month.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Report {
    pub organization: String,
    pub month: String,
    pub clocks: Vec<Attainment>,
    pub breaches: Vec<Breach>,
    /// Breaches per contract clock: what penalties are counted on.
    pub penalty_exposure: HashMap<String, u32>,
    /// What the integrations' signals saved on the clocks this month.
    pub signals: SignalSavings,
}

/// Replacements whose delivery a carrier's scan confirmed in the month, and the clock time that
/// saved: the replacement clock stopped at the scan, where it would otherwise have run until a
/// person next acted on the RMA (usually the swap; until now if nobody has yet).
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct SignalSavings {
    pub carrier_confirmed_deliveries: u32,
    pub clock_seconds_saved: i64,
    pub rmas: Vec<String>,
}

/// The deliveries among `rmas` that an integration confirmed with the scan time in `from..to`.
async fn signal_savings(
    db: &impl ConnectionTrait,
    rmas: &[rma::Model],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
) -> AppResult<SignalSavings> {
    use crate::entities::{event, user};
    use sea_orm::QueryOrder;
    let machines: std::collections::HashSet<uuid::Uuid> = user::Entity::find()
        .filter(user::Column::Role.eq(crate::domain::Role::Integration.as_str()))
        .all(db)
        .await?
        .into_iter()
        .map(|u| u.id)
        .collect();
    let mut savings = SignalSavings::default();
    if machines.is_empty() {
        return Ok(savings);
    }
    let ids: Vec<uuid::Uuid> = rmas.iter().map(|r| r.id).collect();
    for slice in ids.chunks(crate::db::IN_LIST_SLICE) {
        let events = event::Entity::find()
            .filter(event::Column::RmaId.is_in(slice.to_vec()))
            .order_by_asc(event::Column::Id)
            .all(db)
            .await?;
        let by_machine = |e: &event::Model| e.actor_id.is_some_and(|id| machines.contains(&id));
        for (i, delivered) in events.iter().enumerate().filter(|(_, e)| {
            e.to_status.as_deref() == Some(crate::domain::lifecycle::Status::ReplacementDelivered.as_str())
                && by_machine(e)
        }) {
            let Some(scanned) = delivered.fields["delivered_at"]
                .as_str()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc))
                .or(Some(delivered.at))
                .filter(|t| *t >= from && *t < to)
            else {
                continue;
            };
            let person_next = events[i + 1..]
                .iter()
                .find(|e| e.rma_id == delivered.rma_id && e.actor_id.is_some() && !by_machine(e))
                .map_or(now, |e| e.at);
            savings.carrier_confirmed_deliveries += 1;
            savings.clock_seconds_saved += (person_next - scanned).num_seconds().max(0);
            if let Some(r) = rmas.iter().find(|r| r.id == delivered.rma_id) {
                savings.rmas.push(r.number.clone());
            }
        }
    }
    Ok(savings)
}

/// The contract clocks, by name.
pub const CLOCKS: [&str; 4] = [
    "first_response",
    "replacement_delivered",
    "return_shipped",
    "depot_turnaround",
];

/// Attainment per clock over the clocks whose deadline falls in `month` (`YYYY-MM`), as of `now`.
pub async fn report(
    db: &impl ConnectionTrait,
    actor: &Actor,
    organization: &str,
    month: &str,
    now: DateTime<Utc>,
) -> AppResult<Report> {
    let org = organization::Entity::find()
        .filter(organization::Column::Code.eq(organization.trim()))
        .one(db)
        .await?
        .filter(|o| actor.organization_scope().is_none_or(|mine| mine == o.id))
        .ok_or_else(|| AppError::not_found(format!("no organization `{}`", organization.trim())))?;
    let first = NaiveDate::parse_from_str(&format!("{}-01", month.trim()), "%Y-%m-%d")
        .map_err(|_| AppError::invalid(format!("month `{}` is not like 2026-11", month.trim())))?;
    let next = if first.month() == 12 {
        NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
    }
    .ok_or_else(|| AppError::invalid("month out of range"))?;
    let (from, to) = (
        first.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc(),
        next.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc(),
    );
    // Deadlines in the month belong to RMAs opened up to a few weeks before it.
    let rmas = rma::Entity::find()
        .filter(rma::Column::OrganizationId.eq(org.id))
        .filter(rma::Column::CreatedAt.lt(to))
        .filter(rma::Column::CreatedAt.gte(from - chrono::Duration::days(45)))
        .all(db)
        .await?;
    let clocks = clocks_of(db, &rmas, now).await?;
    let mut tally: HashMap<&str, (u32, u32)> = CLOCKS.iter().map(|c| (*c, (0, 0))).collect();
    let mut breaches = vec![];
    for r in &rmas {
        for c in clocks
            .get(&r.id)
            .into_iter()
            .flatten()
            .filter(|c| c.deadline >= from && c.deadline < to)
        {
            let entry = tally.entry(c.name).or_default();
            match c.state {
                ClockState::Met => entry.0 += 1,
                ClockState::Breached => {
                    entry.1 += 1;
                    breaches.push(Breach {
                        number: r.number.clone(),
                        severity: r.severity.clone(),
                        clock: c.name.into(),
                        deadline: c.deadline,
                        stopped_at: c.stopped_at,
                    });
                }
                _ => {}
            }
        }
    }
    breaches.sort_by_key(|b| b.deadline);
    let clocks = CLOCKS
        .iter()
        .map(|name| {
            let (met, breached) = tally[name];
            let total = met + breached;
            let attainment_percent = (total > 0).then(|| (met as f64 * 1000.0 / total as f64).round() / 10.0);
            Attainment {
                clock: (*name).into(),
                met,
                breached,
                attainment_percent,
            }
        })
        .collect();
    let penalty_exposure = CLOCKS.iter().map(|c| (c.to_string(), tally[c].1)).collect();
    let signals = signal_savings(db, &rmas, from, to, now).await?;
    Ok(Report {
        signals,
        organization: org.code,
        month: first.format("%Y-%m").to_string(),
        clocks,
        breaches,
        penalty_exposure,
    })
}

impl Report {
    /// The report as CSV: one row per clock, then one per breach. Cells that could be read as
    /// formulas are prefixed with a quote.
    pub fn to_csv(&self) -> String {
        let cell = |s: &str| {
            format!(
                "\"{}\"",
                crate::services::csv_files::formula_safe(s).replace('"', "\"\"")
            )
        };
        let mut out = String::from("organization,month,clock,met,breached,attainment_percent\n");
        for a in &self.clocks {
            let pct = a.attainment_percent.map(|p| p.to_string()).unwrap_or_default();
            out += &format!(
                "{},{},{},{},{},{}\n",
                cell(&self.organization),
                cell(&self.month),
                cell(&a.clock),
                a.met,
                a.breached,
                pct
            );
        }
        out += &format!(
            "\ncarrier_confirmed_deliveries,clock_seconds_saved\n{},{}\n",
            self.signals.carrier_confirmed_deliveries, self.signals.clock_seconds_saved
        );
        out += "\nrma,severity,clock,deadline,stopped_at\n";
        for b in &self.breaches {
            let stopped = b.stopped_at.map(|s| s.to_rfc3339()).unwrap_or_default();
            out += &format!(
                "{},{},{},{},{}\n",
                cell(&b.number),
                cell(&b.severity),
                cell(&b.clock),
                b.deadline.to_rfc3339(),
                stopped
            );
        }
        out
    }
}
