//! Failure rates with exposure: the annualised failure rate (AFR, as Backblaze publishes it) and
//! its exact (Garwood) Poisson confidence interval. Pure arithmetic on counts and unit-years.
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

#[cfg(test)]
mod tests {
    use super::afr;

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
}
