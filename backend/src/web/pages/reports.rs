//! `/reports/sla`: the SLA report of an organization and month, with CSV and JSON downloads.
use super::{Chrome, PageError, Viewer, render};
use crate::app::AppState;
use crate::services::sla::{self, Report};
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
