//! `GET /api/v1/reports/sla`: SLA attainment per organization and month, as JSON or CSV.
use crate::app::AppState;
use crate::error::AppResult;
use crate::services::Actor;
use crate::services::sla::{self, Report};
use crate::web::extract::Query;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/reports/sla", get(sla_report))
        .route("/api/v1/reports/fleet", get(fleet))
        .route("/api/v1/reliability/afr", get(afr))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AfrQuery {
    /// `part` (default), `site`, `organization` or `lot`.
    pub by: Option<String>,
}

/// Annualised failure rates with their exact Poisson 95 % intervals, per group of the fleet
/// (SPEC §10); a customer's technician sees only its own organization's groups.
#[utoipa::path(get, path = "/api/v1/reliability/afr", params(AfrQuery), tag = "reports",
    responses((status = 200, body = crate::services::Page<crate::services::reliability::AfrRow>), (status = 401), (status = 403), (status = 422)))]
pub async fn afr(
    State(state): State<AppState>,
    actor: Actor,
    Query(q): Query<AfrQuery>,
) -> AppResult<Json<crate::services::Page<crate::services::reliability::AfrRow>>> {
    use crate::services::reliability;
    let by = reliability::By::parse(q.by.as_deref().unwrap_or_default())?;
    Ok(Json(crate::services::Page {
        items: reliability::afr(&state.db, &actor, by).await?,
        next_cursor: None,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ReportQuery {
    /// Organization code.
    pub organization: String,
    /// `YYYY-MM`.
    pub month: String,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

/// Attainment per contract clock, the breaches with their RMAs, and penalty exposure.
#[utoipa::path(get, path = "/api/v1/reports/sla", params(ReportQuery), tag = "reports",
    responses((status = 200, body = Report), (status = 404), (status = 422)))]
pub async fn sla_report(
    State(state): State<AppState>,
    actor: Actor,
    Query(q): Query<ReportQuery>,
) -> AppResult<Response> {
    let report = sla::report(&state.db, &actor, &q.organization, &q.month, chrono::Utc::now()).await?;
    Ok(match q.format.as_deref() {
        Some("csv") => {
            let name = format!(
                "attachment; filename=\"sla-{}-{}.csv\"",
                report.organization, report.month
            );
            (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                    (header::CONTENT_DISPOSITION, name),
                ],
                report.to_csv(),
            )
                .into_response()
        }
        _ => Json(report).into_response(),
    })
}

/// The figures behind the fleet charts: volume per week, failure Paretos, turnaround, no fault found, stock.
#[utoipa::path(get, path = "/api/v1/reports/fleet", tag = "reports", responses((status = 200, body = crate::services::charts::Figures)))]
pub async fn fleet(State(state): State<AppState>, actor: Actor) -> AppResult<Json<crate::services::charts::Figures>> {
    Ok(Json(
        crate::services::charts::figures(&state.db, &actor, chrono::Utc::now()).await?,
    ))
}
