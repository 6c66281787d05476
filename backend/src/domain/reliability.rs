//! Failure rates with exposure: the annualised failure rate (AFR, as Backblaze publishes it) and
//! its exact (Garwood) Poisson confidence interval. Pure arithmetic on counts and unit-years.
use chrono::{DateTime, Utc};
use statrs::distribution::{ChiSquared, ContinuousCDF};

/// Days in a year of exposure.
pub const DAYS_PER_YEAR: f64 = 365.25;

/// A failure rate and its interval, in percent per unit-year.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub afr_percent: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

/// `AFR = 100 × failures / unit_years`, with the exact Poisson interval at `confidence` (0.95):
/// `χ²(α/2; 2k)/2` and `χ²(1−α/2; 2k+2)/2` failures (lower bound 0 when k = 0), each divided by
/// the unit-years. `None` without exposure.
pub fn afr(failures: u64, unit_years: f64, confidence: f64) -> Option<Rate> {
    if unit_years <= 0.0 || !unit_years.is_finite() {
        return None;
    }
    let alpha = 1.0 - confidence;
    let k = failures as f64;
    let quantile = |df: f64, p: f64| ChiSquared::new(df).map(|d| d.inverse_cdf(p) / 2.0).ok();
    let low = if failures == 0 {
        Some(0.0)
    } else {
        quantile(2.0 * k, alpha / 2.0)
    }?;
    let high = quantile(2.0 * k + 2.0, 1.0 - alpha / 2.0)?;
    let percent = |count: f64| 100.0 * count / unit_years;
    Some(Rate {
        afr_percent: percent(k),
        ci_low: percent(low),
        ci_high: percent(high),
    })
}

/// One life of a unit in a slot: how long it ran, and whether it ended in a failure (otherwise
/// it is right-censored: still running, or removed without failing).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Life {
    pub days: f64,
    pub failed: bool,
}

/// A two-parameter Weibull fit, `S(t) = exp(−(t/η)^β)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weibull {
    /// Shape β: below 1 infant mortality, about 1 random failures, above 1 wear-out.
    pub beta: f64,
    /// Scale η in days: the age by which 63.2 % have failed.
    pub eta_days: f64,
    /// The 95 % interval of β from the observed information (on the log scale, so it stays
    /// positive); `None` when the information cannot give one.
    pub beta_low: Option<f64>,
    pub beta_high: Option<f64>,
}

impl Weibull {
    /// The mean life, `η Γ(1 + 1/β)`.
    pub fn mean_days(&self) -> f64 {
        self.eta_days * statrs::function::gamma::gamma(1.0 + 1.0 / self.beta)
    }

    /// What the shape says, only as far as its interval does.
    pub fn pattern(&self) -> &'static str {
        match (self.beta_low, self.beta_high) {
            (_, Some(high)) if high < 1.0 => "infant mortality",
            (Some(low), _) if low > 1.0 => "wear-out",
            (Some(_), Some(_)) => "random",
            _ => "uncertain",
        }
    }
}

/// The share of units still running at age `days` under a Weibull of shape `beta` and scale `eta`
/// days: `S(t) = exp(−(t/η)^β)`.
pub fn weibull_survival(days: f64, beta: f64, eta: f64) -> f64 {
    (-(days / eta).powf(beta)).exp()
}

/// Lives shorter than a second are counted as a second: a logarithm of zero has no fit.
const SHORTEST_DAYS: f64 = 1.0 / 86_400.0;

/// The maximum-likelihood Weibull fit with right-censoring. The likelihood's η is solved in closed
/// form for each β (`η^β = Σ tᵢ^β / r` over all lives, r failures), leaving one equation in β,
/// `Σ tᵢ^β ln tᵢ / Σ tᵢ^β − 1/β − Σ_failed ln tᵢ / r = 0`, which rises with β and is bisected.
/// `None` with fewer than two failures or when every life has the same length (no finite β).
pub fn weibull(lives: &[Life]) -> Option<Weibull> {
    let failures = lives.iter().filter(|l| l.failed).count();
    if failures < 2 {
        return None;
    }
    // Ages are scaled by the longest so that tᵢ^β stays within range for any β.
    let longest = lives.iter().map(|l| l.days.max(SHORTEST_DAYS)).fold(0.0, f64::max);
    let t: Vec<(f64, bool)> = lives
        .iter()
        .map(|l| (l.days.max(SHORTEST_DAYS) / longest, l.failed))
        .collect();
    let r = failures as f64;
    let mean_failed_log = t.iter().filter(|x| x.1).map(|x| x.0.ln()).sum::<f64>() / r;
    let slope = |beta: f64| {
        let (sum, sum_log) = t.iter().fold((0.0, 0.0), |(s, sl), &(ti, _)| {
            let p = ti.powf(beta);
            (s + p, sl + p * ti.ln())
        });
        sum_log / sum - 1.0 / beta - mean_failed_log
    };
    let (mut low, mut high) = (1e-3f64, 1e3f64);
    if slope(low) > 0.0 || slope(high) < 0.0 {
        return None;
    }
    for _ in 0..200 {
        let mid = (low * high).sqrt();
        if slope(mid) < 0.0 {
            low = mid
        } else {
            high = mid
        }
        if high / low < 1.0 + 1e-12 {
            break;
        }
    }
    let beta = (low * high).sqrt();
    let eta = (t.iter().map(|x| x.0.powf(beta)).sum::<f64>() / r).powf(1.0 / beta);
    // Observed information at the optimum (second derivatives of the log-likelihood in β and η).
    let (mut z, mut zl, mut zll) = (0.0, 0.0, 0.0);
    for &(ti, _) in &t {
        let l = (ti / eta).ln();
        let zi = (ti / eta).powf(beta);
        z += zi;
        zl += zi * l;
        zll += zi * l * l;
    }
    let d_bb = r / (beta * beta) + zll;
    let d_ee = beta / (eta * eta) * ((beta + 1.0) * z - r);
    let d_be = (r - z - beta * zl) / eta;
    let det = d_bb * d_ee - d_be * d_be;
    let eta_days = eta * longest;
    // At the search's bounds the data have no finite shape (every failure at the same age).
    if !(beta.is_finite() && eta_days.is_finite()) || beta >= 999.0 || beta <= 1.001e-3 {
        return None;
    }
    // No interval where the information is not positive definite (too little spread to tell).
    let spread = (det > 0.0)
        .then(|| (1.959_963_984_540_054 * (d_ee / det).sqrt() / beta).exp())
        .filter(|s| s.is_finite());
    Some(Weibull {
        beta,
        eta_days,
        beta_low: spread.map(|s| beta / s),
        beta_high: spread.map(|s| beta * s),
    })
}

/// One step of a Kaplan–Meier curve: at `days`, `failures` of the `at_risk` lives still running
/// failed, and the estimated survival fell to `survival`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SurvivalStep {
    pub days: f64,
    pub at_risk: u64,
    pub failures: u64,
    pub survival: f64,
}

/// The Kaplan–Meier estimate `S(t) = Π (1 − dᵢ/nᵢ)` over the failure ages up to t. A life
/// censored at the same age as a failure is still at risk then (the usual convention).
pub fn kaplan_meier(lives: &[Life]) -> Vec<SurvivalStep> {
    let mut sorted: Vec<Life> = lives.to_vec();
    sorted.sort_by(|a, b| a.days.total_cmp(&b.days));
    let mut steps = vec![];
    let mut survival = 1.0;
    let mut i = 0;
    while i < sorted.len() {
        let days = sorted[i].days;
        let at_risk = (sorted.len() - i) as u64;
        let same = sorted[i..].iter().take_while(|l| l.days == days);
        let (count, failures) = same.fold((0, 0u64), |(c, f), l| (c + 1, f + u64::from(l.failed)));
        if failures > 0 {
            survival *= 1.0 - failures as f64 / at_risk as f64;
            steps.push(SurvivalStep {
                days,
                at_risk,
                failures,
                survival,
            });
        }
        i += count;
    }
    steps
}

/// The field action a `restored` RMA's resolution describes, by the checklist's words; free text
/// that names none is `other`.
pub fn field_action(resolution: &str) -> &'static str {
    let text = resolution.to_lowercase();
    let names = |words: &[&str]| words.iter().any(|w| text.contains(w));
    if names(&["firmware", "bios", "bmc update", "flash"]) {
        "firmware"
    } else if names(&["reseat", "re-seat"]) {
        "reseat"
    } else if names(&[
        "power cycle",
        "power-cycle",
        "power cycled",
        "powercycle",
        "reboot",
        "ac cycle",
    ]) {
        "power cycle"
    } else if names(&["optic", "transceiver", "qsfp", "sfp"]) {
        "optics"
    } else if names(&["cable", "cabling"]) {
        "cabling"
    } else {
        "other"
    }
}

/// One fix at a site: when it was made, how long the node was down before, and when the same
/// serial or slot next failed, if it did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fix {
    pub opened_at: DateTime<Utc>,
    pub fixed_at: DateTime<Utc>,
    pub next_failure_at: Option<DateTime<Utc>>,
}

/// How often fixes held over one window.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Held {
    pub days: i64,
    /// Fixes made at least `days` ago: the only ones whose window has closed.
    pub eligible: u64,
    /// Of those, how many failed again (same serial or slot) within `days`.
    pub failed_again: u64,
    pub percent_failed_again: Option<f64>,
}

/// The windows "did the fix hold?" reads.
pub const HOLD_WINDOWS: [i64; 3] = [7, 30, 90];

/// Running counts for "did the fix hold", fed one fix at a time (a million fixes need not be
/// kept to be counted).
#[derive(Debug, Clone, Default)]
pub struct HoldTally {
    fixes: u64,
    eligible: [u64; HOLD_WINDOWS.len()],
    failed_again: [u64; HOLD_WINDOWS.len()],
    hours_to_restore: Vec<f32>,
}

impl HoldTally {
    /// Counts `fix` in each window that has closed by `now` (a fix made yesterday has not yet had
    /// the chance to fail within 30 days).
    pub fn add(&mut self, fix: &Fix, now: DateTime<Utc>) {
        self.fixes += 1;
        for (i, days) in HOLD_WINDOWS.iter().enumerate() {
            let window = chrono::Duration::days(*days);
            if fix.fixed_at + window <= now {
                self.eligible[i] += 1;
                if fix.next_failure_at.is_some_and(|at| at <= fix.fixed_at + window) {
                    self.failed_again[i] += 1;
                }
            }
        }
        self.hours_to_restore
            .push(((fix.fixed_at - fix.opened_at).num_seconds() as f64 / 3600.0) as f32);
    }

    pub fn fixes(&self) -> u64 {
        self.fixes
    }

    /// Repeat rates over [`HOLD_WINDOWS`], over the fixes whose window has closed.
    pub fn held(&self) -> Vec<Held> {
        HOLD_WINDOWS
            .iter()
            .enumerate()
            .map(|(i, &days)| Held {
                days,
                eligible: self.eligible[i],
                failed_again: self.failed_again[i],
                percent_failed_again: (self.eligible[i] > 0)
                    .then(|| 100.0 * self.failed_again[i] as f64 / self.eligible[i] as f64),
            })
            .collect()
    }

    /// The median time from report to fix, in hours.
    pub fn median_hours_to_restore(&self) -> Option<f64> {
        median(self.hours_to_restore.iter().map(|h| f64::from(*h)).collect())
    }
}

/// The median of `values` (the mean of the middle two for an even count), if any.
pub fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

/// The fewest spares a shelf should hold so that a share `fill_rate` of failures finds one there
/// at once, when on average `pipeline_mean` units are away being replaced (failure rate × resupply
/// time). By Palm's theorem the number away is Poisson with that mean whatever the resupply time's
/// distribution; with s on the shelf a failure is served at once when fewer than s are away, so
/// the fill rate is `P(X ≤ s − 1)` and s is one more than the Poisson quantile. No demand, no stock.
pub fn base_stock(pipeline_mean: f64, fill_rate: f64) -> u32 {
    use statrs::distribution::{DiscreteCDF, Poisson};
    let Ok(away) = Poisson::new(pipeline_mean) else {
        return 0;
    };
    (0..100_000u64)
        .find(|&k| away.cdf(k) >= fill_rate)
        .map_or(100_000, |k| k as u32 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known values of the exact Poisson interval (e.g. Ulm 1990's table): for 0 events (0,
    /// 3.689), for 1 (0.0253, 5.572), for 10 (4.795, 18.39).
    #[test]
    fn matches_the_published_exact_poisson_limits() {
        let close = |a: f64, b: f64| (a - b).abs() < 5e-3 * b.max(1.0);
        let r = afr(0, 100.0, 0.95).unwrap();
        assert!(r.ci_low == 0.0 && close(r.ci_high, 3.689), "{r:?}");
        let r = afr(1, 100.0, 0.95).unwrap();
        assert!(
            close(r.ci_low, 0.0253) && close(r.ci_high, 5.572) && r.afr_percent == 1.0,
            "{r:?}"
        );
        let r = afr(10, 100.0, 0.95).unwrap();
        assert!(close(r.ci_low, 4.795) && close(r.ci_high, 18.39), "{r:?}");
        assert_eq!(afr(3, 0.0, 0.95), None);
    }

    /// Uncensored lives drawn from a known Weibull by its quantiles recover it; the classic
    /// textbook case of a censored fit (`weibull` against a hand-checked profile equation) is left
    /// to the API tests, which compare against lifelines.
    #[test]
    fn recovers_a_known_weibull_from_its_quantiles() {
        let (beta, eta) = (2.0, 400.0);
        let n = 2000;
        let lives: Vec<Life> = (0..n)
            .map(|i| {
                let p = (i as f64 + 0.5) / n as f64;
                Life {
                    days: eta * (-(1.0 - p).ln()).powf(1.0 / beta),
                    failed: true,
                }
            })
            .collect();
        let fit = weibull(&lives).unwrap();
        assert!(
            (fit.beta - beta).abs() < 0.05 && (fit.eta_days - eta).abs() < 5.0,
            "{fit:?}"
        );
        assert_eq!(fit.pattern(), "wear-out");
        assert!(weibull(&lives[..1]).is_none());
        let same = [Life {
            days: 5.0,
            failed: true,
        }; 3];
        assert!(weibull(&same).is_none());
    }

    #[test]
    fn kaplan_meier_steps_at_failures_only() {
        let life = |days, failed| Life { days, failed };
        // 5 lives: failure at 1, censored at 2, two failures at 3, censored at 4.
        let steps = kaplan_meier(&[
            life(3.0, true),
            life(1.0, true),
            life(2.0, false),
            life(3.0, true),
            life(4.0, false),
        ]);
        assert_eq!(steps.len(), 2);
        assert_eq!((steps[0].at_risk, steps[0].failures), (5, 1));
        assert!((steps[0].survival - 0.8).abs() < 1e-12);
        assert_eq!((steps[1].at_risk, steps[1].failures), (3, 2));
        assert!((steps[1].survival - 0.8 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn a_fix_counts_only_once_its_window_has_closed() {
        let now = Utc::now();
        let ago = |d: i64| now - chrono::Duration::days(d);
        let fixes = [
            // Failed again 5 days after: within 7, 30 and 90.
            Fix {
                opened_at: ago(101),
                fixed_at: ago(100),
                next_failure_at: Some(ago(95)),
            },
            // Failed again 40 days after: only within 90.
            Fix {
                opened_at: ago(100),
                fixed_at: ago(99),
                next_failure_at: Some(ago(59)),
            },
            // Held; 10 days old: eligible for 7 only.
            Fix {
                opened_at: ago(11),
                fixed_at: ago(10),
                next_failure_at: None,
            },
        ];
        let mut tally = HoldTally::default();
        fixes.iter().for_each(|f| tally.add(f, now));
        let h = tally.held();
        assert_eq!((h[0].eligible, h[0].failed_again), (3, 1));
        assert_eq!((h[1].eligible, h[1].failed_again), (2, 1));
        assert_eq!((h[2].eligible, h[2].failed_again), (2, 2));
        assert_eq!(h[2].percent_failed_again, Some(100.0));
        assert_eq!(tally.median_hours_to_restore(), Some(24.0));
        assert_eq!(HoldTally::default().held()[0].percent_failed_again, None);
    }

    #[test]
    fn field_actions_are_read_from_the_resolution() {
        assert_eq!(field_action("Reseated the node, all green"), "reseat");
        assert_eq!(field_action("AC power-cycle cleared it"), "power cycle");
        assert_eq!(field_action("Updated BIOS and BMC firmware"), "firmware");
        assert_eq!(field_action("replaced QSFP optic"), "optics");
        assert_eq!(field_action("Re-ran the cable to the leaf"), "cabling");
        assert_eq!(field_action("customer error"), "other");
    }

    /// Poisson quantiles from tables: mean 2 → P(X ≤ 4) = 0.947, P(X ≤ 5) = 0.983.
    #[test]
    fn base_stock_is_one_more_than_the_poisson_quantile() {
        assert_eq!(base_stock(2.0, 0.95), 6);
        assert_eq!(base_stock(2.0, 0.94), 5);
        assert_eq!(base_stock(0.0, 0.95), 0);
        assert_eq!(base_stock(0.01, 0.95), 1);
    }
}
