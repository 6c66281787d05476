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
    Router::new().route("/reports/sla", get(show))
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
