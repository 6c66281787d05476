//! Service levels (SPEC §4): per-severity budgets, business-hour calendars, and the clocks of an
//! RMA computed from the times it entered each status. Pure: the caller supplies `now`.
use super::lifecycle::Status;
use super::types::Severity;
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// When an organization's business days run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Calendar {
    /// IANA time zone, e.g. `America/Chicago`.
    pub time_zone: String,
    /// Working days, `mon`..`sun`.
    pub workdays: Vec<String>,
    /// Opening and closing time, `HH:MM`.
    pub opens: String,
    pub closes: String,
    pub holidays: Vec<NaiveDate>,
}

impl Default for Calendar {
    fn default() -> Self {
        Calendar {
            time_zone: "America/Los_Angeles".into(),
            workdays: ["mon", "tue", "wed", "thu", "fri"].map(String::from).to_vec(),
            opens: "08:00".into(),
            closes: "18:00".into(),
            holidays: vec![],
        }
    }
}

fn weekday_name(d: Weekday) -> &'static str {
    ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][d.num_days_from_monday() as usize]
}

impl Calendar {
    fn tz(&self) -> Tz {
        self.time_zone.parse().unwrap_or(chrono_tz::America::Los_Angeles)
    }

    fn time(s: &str, default: NaiveTime) -> NaiveTime {
        NaiveTime::parse_from_str(s, "%H:%M").unwrap_or(default)
    }

    pub fn is_business_day(&self, day: NaiveDate) -> bool {
        self.workdays.iter().any(|w| w == weekday_name(day.weekday())) && !self.holidays.contains(&day)
    }

    /// Checks the calendar makes sense; the message says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        self.time_zone
            .parse::<Tz>()
            .map_err(|_| format!("unknown time zone `{}`", self.time_zone))?;
        let (o, c) = (
            NaiveTime::parse_from_str(&self.opens, "%H:%M"),
            NaiveTime::parse_from_str(&self.closes, "%H:%M"),
        );
        match (o, c) {
            (Ok(o), Ok(c)) if o < c => {}
            _ => {
                return Err(format!(
                    "business hours `{}`-`{}` must be HH:MM with opening before closing",
                    self.opens, self.closes
                ));
            }
        }
        if self.workdays.is_empty()
            || self
                .workdays
                .iter()
                .any(|w| !["mon", "tue", "wed", "thu", "fri", "sat", "sun"].contains(&w.as_str()))
        {
            return Err("workdays are some of mon, tue, wed, thu, fri, sat, sun".into());
        }
        Ok(())
    }

    /// `from` plus `days` business days: the same local time on the `days`-th following business
    /// day. A start outside business hours counts from the next opening; a deadline past closing
    /// time is the closing time.
    pub fn add_business_days(&self, from: DateTime<Utc>, days: u32) -> DateTime<Utc> {
        let tz = self.tz();
        let (opens, closes) = (
            Self::time(&self.opens, NaiveTime::MIN),
            Self::time(&self.closes, NaiveTime::MIN),
        );
        let local = from.with_timezone(&tz);
        let (mut day, mut time) = (local.date_naive(), local.time());
        if !self.is_business_day(day) || time >= closes {
            day = day.succ_opt().unwrap_or(day);
            while !self.is_business_day(day) {
                day = day.succ_opt().unwrap_or(day);
            }
            time = opens;
        } else if time < opens {
            time = opens;
        }
        for _ in 0..days {
            day = day.succ_opt().unwrap_or(day);
            while !self.is_business_day(day) {
                day = day.succ_opt().unwrap_or(day);
            }
        }
        let at = day.and_time(time.min(closes));
        tz.from_local_datetime(&at)
            .earliest()
            .unwrap_or_else(|| tz.from_utc_datetime(&at))
            .with_timezone(&Utc)
    }
}

/// An organization's budgets; the defaults are SPEC §4's.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Policy {
    /// Minutes from `reported` to `diagnosing`, for sev1..sev4.
    pub first_response_minutes: [i64; 4],
    pub replacement_business_days: u32,
    pub return_days: i64,
    pub turnaround_business_days: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            first_response_minutes: [30, 120, 480, 1440],
            replacement_business_days: 1,
            return_days: 5,
            turnaround_business_days: 10,
        }
    }
}

impl Policy {
    pub fn first_response(&self, severity: Severity) -> Duration {
        let i = Severity::ALL.iter().position(|s| *s == severity).unwrap_or(3);
        Duration::minutes(self.first_response_minutes[i])
    }
}

/// A clock's state (SPEC §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClockState {
    Running,
    Met,
    AtRisk,
    Breached,
}

impl ClockState {
    pub fn as_str(self) -> &'static str {
        match self {
            ClockState::Running => "running",
            ClockState::Met => "met",
            ClockState::AtRisk => "at_risk",
            ClockState::Breached => "breached",
        }
    }
}

/// One service-level clock of an RMA.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Clock {
    /// `first_response`, `replacement_delivered`, `return_shipped` or `depot_turnaround`.
    pub name: &'static str,
    pub state: ClockState,
    pub started_at: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
    pub stopped_at: Option<DateTime<Utc>>,
    /// Seconds until the deadline (negative once past it); while running only.
    pub seconds_left: Option<i64>,
}

impl Clock {
    /// Still running and at risk or past its deadline: what the sweep alerts on and the dashboard names.
    pub fn needs_attention(&self) -> bool {
        self.stopped_at.is_none() && matches!(self.state, ClockState::AtRisk | ClockState::Breached)
    }
}

/// The share of a budget after which a running clock is at risk.
pub const AT_RISK_SHARE: f64 = 0.8;

fn clock(
    name: &'static str,
    started_at: DateTime<Utc>,
    deadline: DateTime<Utc>,
    stopped_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Clock {
    let state = match stopped_at {
        Some(stop) if stop <= deadline => ClockState::Met,
        Some(_) => ClockState::Breached,
        None if now > deadline => ClockState::Breached,
        None => {
            let budget = (deadline - started_at).num_milliseconds() as f64;
            let used = (now - started_at).num_milliseconds() as f64;
            if budget > 0.0 && used >= budget * AT_RISK_SHARE {
                ClockState::AtRisk
            } else {
                ClockState::Running
            }
        }
    };
    let seconds_left = stopped_at.is_none().then(|| (deadline - now).num_seconds());
    Clock {
        name,
        state,
        started_at,
        deadline,
        stopped_at,
        seconds_left,
    }
}

/// The first time an RMA entered each status it has been in: all its clocks need. Kept on the RMA
/// as it moves, so that its clocks cost the same however long its history.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Entered(std::collections::BTreeMap<Status, DateTime<Utc>>);

impl Entered {
    /// Records `status` as entered at `at` unless it was entered earlier.
    pub fn enter(&mut self, status: Status, at: DateTime<Utc>) {
        let first = self.0.entry(status).or_insert(at);
        *first = (*first).min(at);
    }

    /// The earliest time any of `statuses` was entered.
    pub fn first(&self, statuses: &[Status]) -> Option<DateTime<Utc>> {
        statuses.iter().filter_map(|s| self.0.get(s)).min().copied()
    }

    /// Read from the stored column; a value that does not parse is no history (every reader of
    /// clocks survives a hand-edited row).
    pub fn from_json(value: &serde_json::Value) -> Entered {
        Entered::parse(value).unwrap_or_default()
    }

    /// Read from the stored column; `None` if it does not parse.
    pub fn parse(value: &serde_json::Value) -> Option<Entered> {
        serde_json::from_value(value.clone()).ok()
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

impl FromIterator<(Status, DateTime<Utc>)> for Entered {
    fn from_iter<I: IntoIterator<Item = (Status, DateTime<Utc>)>>(changes: I) -> Entered {
        let mut entered = Entered::default();
        for (status, at) in changes {
            entered.enter(status, at);
        }
        entered
    }
}

/// The clocks of an RMA from the first times it entered each status and its creation time, as of
/// `now`. A clock appears once it has started.
pub fn clocks(
    severity: Severity,
    created_at: DateTime<Utc>,
    entered: &Entered,
    policy: &Policy,
    calendar: &Calendar,
    now: DateTime<Utc>,
) -> Vec<Clock> {
    use Status::*;
    let first = |statuses: &[Status]| entered.first(statuses);
    let mut out = vec![];
    let responded = first(&[Diagnosing, Restored, Approved, Cancelled]);
    out.push(clock(
        "first_response",
        created_at,
        created_at + policy.first_response(severity),
        responded,
        now,
    ));
    if let Some(approved) = first(&[Approved]) {
        let deadline = calendar.add_business_days(approved, policy.replacement_business_days);
        // A swap from an on-site spare needs no delivery.
        let delivered = first(&[ReplacementDelivered])
            .or(first(&[Swapped]))
            .or(first(&[Cancelled]));
        out.push(clock("replacement_delivered", approved, deadline, delivered, now));
    }
    if let Some(swapped) = first(&[Swapped]) {
        out.push(clock(
            "return_shipped",
            swapped,
            swapped + Duration::days(policy.return_days),
            // Keep-your-drive: the destruction certificate ends it instead of a shipment.
            first(&[ReturnShipped]).or(first(&[Scrapped])),
            now,
        ));
    }
    if let Some(received) = first(&[Received]) {
        let deadline = calendar.add_business_days(received, policy.turnaround_business_days);
        out.push(clock(
            "depot_turnaround",
            received,
            deadline,
            first(&[ReturnedToStock, Scrapped]),
            now,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn business_days_skip_weekends_holidays_and_respect_the_time_zone() {
        let cal = Calendar {
            time_zone: "America/Chicago".into(),
            holidays: vec!["2026-11-26".parse().unwrap()],
            ..Default::default()
        };
        // Wednesday 25 Nov 2026, 10:00 in Chicago (16:00 UTC): + 1 business day skips Thanksgiving.
        assert_eq!(
            cal.add_business_days(utc("2026-11-25T16:00:00Z"), 1),
            utc("2026-11-27T16:00:00Z")
        );
        // Friday 17:00 local + 1 → Monday 17:00 local.
        assert_eq!(
            cal.add_business_days(utc("2026-11-27T23:00:00Z"), 1),
            utc("2026-11-30T23:00:00Z")
        );
        // Saturday counts from Monday's opening: + 1 → Tuesday 08:00 local (14:00 UTC).
        assert_eq!(
            cal.add_business_days(utc("2026-11-28T18:00:00Z"), 1),
            utc("2026-12-01T14:00:00Z")
        );
        // After closing counts from the next opening.
        assert_eq!(
            cal.add_business_days(utc("2026-12-01T01:00:00Z"), 0),
            utc("2026-12-01T14:00:00Z")
        );
        assert!(
            Calendar {
                time_zone: "Mars/Olympus".into(),
                ..Default::default()
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn at_risk_at_eighty_percent_and_breached_after_the_deadline_to_the_second() {
        let created = utc("2026-11-25T10:00:00Z");
        let (policy, cal) = (Policy::default(), Calendar::default());
        let at = |secs: i64| {
            clocks(
                Severity::Sev1,
                created,
                &Entered::default(),
                &policy,
                &cal,
                created + Duration::seconds(secs),
            )[0]
            .state
        };
        assert_eq!(at(24 * 60 - 1), ClockState::Running);
        assert_eq!(at(24 * 60), ClockState::AtRisk, "80 % of 30 minutes");
        assert_eq!(
            at(30 * 60),
            ClockState::AtRisk,
            "the deadline itself is not yet a breach"
        );
        assert_eq!(at(30 * 60 + 1), ClockState::Breached);
        let met = clocks(
            Severity::Sev1,
            created,
            &[(Status::Diagnosing, created + Duration::minutes(29))]
                .into_iter()
                .collect(),
            &policy,
            &cal,
            created + Duration::days(1),
        );
        assert_eq!(met[0].state, ClockState::Met);
        assert_eq!(met[0].name, "first_response");
    }
}
