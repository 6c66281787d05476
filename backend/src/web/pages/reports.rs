//! `/reports/sla`: the SLA report of an organization and month, with CSV and JSON downloads.
use super::{Chrome, PageError, Viewer, render};
use crate::services::sla::{self, Report};
use crate::state::AppState;
use axum::Router;
use axum::extract::{Query, State};
use axum::response::Html;
use axum::routing::get;
use chrono::Datelike;
use serde::{Deserialize, Serialize};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/reports/sla", get(show))
        .route("/reports/charts", get(charts))
        .route("/reports/reliability", get(reliability))
}

#[derive(Deserialize)]
struct ReliabilityParams {
    by: Option<String>,
    part: Option<String>,
}

/// A table with its first column's title.
#[derive(Serialize)]
struct Titled<T> {
    title: &'static str,
    rows: Vec<T>,
}

#[derive(Serialize)]
struct ReliabilityPage {
    chrome: Chrome,
    scoped: bool,
    /// When the figures were computed, and how often they are.
    as_of: chrono::DateTime<chrono::Utc>,
    refresh_minutes: u64,
    groupings: [&'static str; 4],
    by: String,
    part: Option<String>,
    afr: Vec<crate::services::reliability::AfrRow>,
    afr_chart: Option<String>,
    weibull: Vec<crate::services::reliability::WeibullRow>,
    survival_chart: Option<String>,
    fix_tables: Vec<Titled<crate::services::reliability::FixRow>>,
    quality_tables: Vec<Titled<crate::services::quality::QualityRow>>,
    quality: QualityRest,
}

/// The quality figures besides the two tables.
#[derive(Serialize)]
struct QualityRest {
    early_failures: Vec<crate::services::quality::EarlyFailure>,
    no_fault_found_by_part: Vec<crate::services::quality::NoFaultFound>,
    no_fault_found_by_site: Vec<crate::services::quality::NoFaultFound>,
}

/// `/reports/reliability`: failure rates, life distributions, whether fixes held, and the quality
/// of what the depots ship, for the fleet the viewer may see.
async fn reliability(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<ReliabilityParams>,
) -> Result<Html<String>, PageError> {
    use crate::services::charts::{rate_chart, survival_chart};
    use crate::services::reliability::{By, FixBy};
    let by_text = q.by.filter(|b| !b.is_empty()).unwrap_or_else(|| "part".into());
    let by = By::parse(&by_text)?;
    let figures = crate::web::reports::figures_for(&state, &viewer.actor).await?;
    let afr = figures.afr(by).to_vec();
    let weibull = figures.weibull.clone();
    // The part whose curve is drawn: the one asked for, else the one with the most failures.
    let part = q.part.filter(|p| !p.is_empty()).or_else(|| {
        weibull
            .iter()
            .filter(|w| w.failures > 0)
            .max_by_key(|w| w.failures)
            .map(|w| w.part.clone())
    });
    let survival_chart = match &part {
        Some(number) => Some(survival_chart(
            &format!("Survival of {number}"),
            figures.survival(number)?,
        )?),
        None => None,
    };
    let afr_chart = if afr.is_empty() {
        None
    } else {
        Some(rate_chart(&format!("Annualised failure rate per {by_text}"), &afr)?)
    };
    let fix_tables = vec![
        Titled {
            title: "Fix",
            rows: figures.fixes(FixBy::Action, None)?.to_vec(),
        },
        Titled {
            title: "Fault code",
            rows: figures.fixes(FixBy::FaultCode, None)?.to_vec(),
        },
    ];
    let quality = figures.quality.clone();
    let as_of = figures.computed_at;
    let refresh_minutes = state.figures.interval().as_secs() / 60;
    render(
        "reports/reliability.html",
        &ReliabilityPage {
            scoped: viewer.actor.organization_scope().is_some(),
            as_of,
            refresh_minutes,
            chrome: Chrome::new(viewer, "reports"),
            groupings: ["part", "site", "organization", "lot"],
            by: by_text,
            part,
            afr,
            afr_chart,
            weibull,
            survival_chart,
            fix_tables,
            quality_tables: vec![
                Titled {
                    title: "Depot",
                    rows: quality.by_depot,
                },
                Titled {
                    title: "Part",
                    rows: quality.by_part,
                },
            ],
            quality: QualityRest {
                early_failures: quality.early_failures,
                no_fault_found_by_part: quality.no_fault_found_by_part,
                no_fault_found_by_site: quality.no_fault_found_by_site,
            },
        },
    )
}

#[derive(Deserialize)]
struct ReportParams {
    organization: Option<String>,
    month: Option<String>,
}

#[derive(Serialize)]
struct ReportPage {
    chrome: Chrome,
    report: Report,
    organizations: Vec<&'static str>,
}

async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<ReportParams>,
) -> Result<Html<String>, PageError> {
    let now = chrono::Utc::now();
    let month = q
        .month
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| format!("{}-{:02}", now.year(), now.month()));
    let default_org = match viewer.actor.organization_scope() {
        Some(org) => <crate::entities::organization::Entity as sea_orm::EntityTrait>::find_by_id(org)
            .one(&state.db)
            .await?
            .map(|o| o.code)
            .unwrap_or_default(),
        None => "coreweave".into(),
    };
    let organization = q.organization.filter(|o| !o.is_empty()).unwrap_or(default_org);
    let report = sla::report(&state.db, &viewer.actor, &organization, &month, now).await?;
    let organizations = if viewer.actor.organization_scope().is_some() {
        vec![]
    } else {
        vec!["coreweave", "xai"]
    };
    render(
        "reports/sla.html",
        &ReportPage {
            chrome: Chrome::new(viewer, "reports"),
            report,
            organizations,
        },
    )
}

/// One chart: its title and the SVG plotters drew.
#[derive(Serialize)]
struct Chart {
    title: &'static str,
    svg: String,
}

#[derive(Serialize)]
struct ChartsPage {
    chrome: Chrome,
    charts: Vec<Chart>,
}

async fn charts(State(state): State<AppState>, viewer: Viewer) -> Result<Html<String>, PageError> {
    use crate::services::charts::{bar_chart, figures};
    let f = figures(&state.db, &viewer.actor, chrono::Utc::now()).await?;
    let mut charts = vec![];
    for (title, unit, bars) in [
        ("RMAs opened per week", "RMAs", &f.volume_per_week),
        ("Failures by part", "RMAs", &f.by_part),
        ("Failures by fault code", "RMAs", &f.by_fault_code),
        ("Failures by site", "RMAs", &f.by_site),
        ("Failures by cluster", "RMAs", &f.by_cluster),
        (
            "Depot turnaround (days, received to closed)",
            "RMAs",
            &f.turnaround_days,
        ),
        ("No fault found by site (%)", "percent", &f.no_fault_found_percent),
        ("Spares in stock by depot", "units", &f.stock_by_depot),
    ] {
        if !bars.is_empty() {
            charts.push(Chart {
                title,
                svg: bar_chart(title, unit, bars)?,
            });
        }
    }
    for depot in &f.stock_over_time {
        let svg = bar_chart(&format!("Spares at {} by week", depot.depot), "units", &depot.weeks)?;
        charts.push(Chart {
            title: "Spares per depot, week by week",
            svg,
        });
    }
    render(
        "reports/charts.html",
        &ChartsPage {
            chrome: Chrome::new(viewer, "reports"),
            charts,
        },
    )
}
