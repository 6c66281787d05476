//! `GET /api/v1/reports/sla`: SLA attainment per organization and month, as JSON or CSV.
use crate::error::AppResult;
use crate::services::sla::{self, Report};
use crate::services::{Actor, Page, quality, reliability, spares};
use crate::state::AppState;
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
        .route("/api/v1/reliability/weibull", get(weibull))
        .route("/api/v1/reliability/survival", get(survival))
        .route("/api/v1/reliability/fixes", get(fixes))
        .route("/api/v1/reliability/quality", get(quality))
        .route("/api/v1/reliability/spares", get(spares))
        .route(
            "/api/v1/reliability/spares/policy",
            axum::routing::put(set_spares_policy),
        )
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AfrQuery {
    /// `part` (default), `site`, `organization` or `lot`.
    pub by: Option<String>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct FormatQuery {
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

/// `rows` as a CSV download named `name`, or as a page of JSON.
fn json_or_csv<T: serde::Serialize>(
    format: Option<&str>,
    name: &str,
    columns: &[&str],
    rows: &[T],
) -> AppResult<Response> {
    match format {
        Some("csv") => csv_download(name, columns, rows),
        _ => Ok(page_of(rows)),
    }
}

/// `rows` as the one page of a list (SPEC §7's `{"items", "next_cursor"}`).
fn page_of<T: serde::Serialize>(rows: &[T]) -> Response {
    Json(serde_json::json!({"items": rows, "next_cursor": null})).into_response()
}

/// `rows` as a CSV download named `name`, with `columns` in order.
fn csv_download<T: serde::Serialize>(name: &str, columns: &[&str], rows: &[T]) -> AppResult<Response> {
    let values: Vec<serde_json::Value> = rows
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<_, _>>()
        .map_err(|e| crate::error::AppError::Internal(e.into()))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.csv\""),
            ),
        ],
        crate::services::csv_files::table(columns, &values),
    )
        .into_response())
}

/// Annualised failure rates with their exact Poisson 95 % intervals, per group of the fleet
/// (SPEC §10); a customer's technician sees only its own organization's groups.
#[utoipa::path(get, path = "/api/v1/reliability/afr", params(AfrQuery), tag = "reports",
    responses((status = 200, body = Page<reliability::AfrRow>, description = "JSON, or CSV with `format=csv`"), (status = 401), (status = 403), (status = 422)))]
pub async fn afr(State(state): State<AppState>, actor: Actor, Query(q): Query<AfrQuery>) -> AppResult<Response> {
    let by = reliability::By::parse(q.by.as_deref().unwrap_or_default())?;
    let columns = ["key", "failures", "unit_years", "afr_percent", "ci_low", "ci_high"];
    let figures = figures_for(&state, &actor).await?;
    let rows = figures.afr(by);
    json_or_csv(q.format.as_deref(), "afr", &columns, rows)
}

/// The Weibull fit (maximum likelihood with right-censoring) of every part with units in service.
#[utoipa::path(get, path = "/api/v1/reliability/weibull", params(FormatQuery), tag = "reports",
    responses((status = 200, body = Page<reliability::WeibullRow>), (status = 401), (status = 403)))]
pub async fn weibull(State(state): State<AppState>, actor: Actor, Query(q): Query<FormatQuery>) -> AppResult<Response> {
    let columns = [
        "part",
        "lives",
        "failures",
        "beta",
        "beta_ci_low",
        "beta_ci_high",
        "eta_days",
        "mean_life_days",
        "pattern",
    ];
    let rows = &figures_for(&state, &actor).await?.weibull;
    json_or_csv(q.format.as_deref(), "weibull", &columns, rows)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct SurvivalQuery {
    /// Part number.
    pub part: String,
    /// `json` (default) or `csv` (the Kaplan–Meier steps).
    pub format: Option<String>,
}

/// A part's Kaplan–Meier survival curve beside its Weibull fit.
#[utoipa::path(get, path = "/api/v1/reliability/survival", params(SurvivalQuery), tag = "reports",
    responses((status = 200, body = reliability::Survival), (status = 401), (status = 403), (status = 404)))]
pub async fn survival(
    State(state): State<AppState>,
    actor: Actor,
    Query(q): Query<SurvivalQuery>,
) -> AppResult<Response> {
    let figures = figures_for(&state, &actor).await?;
    let survival = figures.survival(&q.part)?;
    match q.format.as_deref() {
        Some("csv") => csv_download(
            &format!("survival-{}", survival.weibull.part),
            &["days", "at_risk", "failures", "survival"],
            &survival.kaplan_meier,
        ),
        _ => Ok(Json(survival).into_response()),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct FixesQuery {
    /// `action` (default) or `fault_code`.
    pub by: Option<String>,
    /// Only RMAs of this part number.
    pub part: Option<String>,
    /// `json` (default) or `csv` (one column per window).
    pub format: Option<String>,
}

/// Did the fix hold: per field action or fault code, how often the same serial or slot failed
/// again within 7, 30 and 90 days, and the median time to restore.
#[utoipa::path(get, path = "/api/v1/reliability/fixes", params(FixesQuery), tag = "reports",
    responses((status = 200, body = Page<reliability::FixRow>), (status = 401), (status = 403), (status = 404), (status = 422)))]
pub async fn fixes(State(state): State<AppState>, actor: Actor, Query(q): Query<FixesQuery>) -> AppResult<Response> {
    let by = reliability::FixBy::parse(q.by.as_deref().unwrap_or_default())?;
    let figures = figures_for(&state, &actor).await?;
    let rows = figures.fixes(by, q.part.as_deref())?;
    if q.format.as_deref() != Some("csv") {
        return Ok(page_of(rows));
    }
    // Flat for a spreadsheet: each window's counts side by side.
    let flat: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let mut row = serde_json::json!({"key": r.key, "fixes": r.fixes, "median_hours_to_restore": r.median_hours_to_restore});
            for h in &r.held {
                row[format!("eligible_{}d", h.days)] = h.eligible.into();
                row[format!("failed_again_{}d", h.days)] = h.failed_again.into();
            }
            row
        })
        .collect();
    let columns = [
        "key",
        "fixes",
        "eligible_7d",
        "failed_again_7d",
        "eligible_30d",
        "failed_again_30d",
        "eligible_90d",
        "failed_again_90d",
        "median_hours_to_restore",
    ];
    csv_download("fixes", &columns, &flat)
}

/// Replacements that failed early (dead on arrival, or within 30 days of their swap) per depot
/// and part, new vs refurbished, with the test run that passed each; no-fault-found rates per part
/// and site.
#[utoipa::path(get, path = "/api/v1/reliability/quality", params(FormatQuery), tag = "reports",
    responses((status = 200, body = quality::Quality, description = "JSON, or with `format=csv` the early failures"), (status = 401), (status = 403)))]
pub async fn quality(State(state): State<AppState>, actor: Actor, Query(q): Query<FormatQuery>) -> AppResult<Response> {
    let figures = figures_for(&state, &actor).await?;
    match q.format.as_deref() {
        Some("csv") => {
            let rows: Vec<serde_json::Value> = figures
                .quality
                .early_failures
                .iter()
                .map(|e| {
                    serde_json::json!({"rma": e.rma, "replacement_serial": e.replacement_serial, "part": e.part,
                        "depot": e.depot, "refurbished": e.refurbished, "how": e.how, "failure_rma": e.failure_rma,
                        "passed_by_rma": e.passed_by.as_ref().map(|p| &p.rma),
                        "passed_by_operator": e.passed_by.as_ref().map(|p| &p.operator)})
                })
                .collect();
            let columns = [
                "rma",
                "replacement_serial",
                "part",
                "depot",
                "refurbished",
                "how",
                "failure_rma",
                "passed_by_rma",
                "passed_by_operator",
            ];
            csv_download("early-failures", &columns, &rows)
        }
        _ => Ok(Json(&figures.quality).into_response()),
    }
}

/// The precomputed figures of the fleet `actor` may see.
pub async fn figures_for(state: &AppState, actor: &Actor) -> AppResult<std::sync::Arc<reliability::Snapshot>> {
    reliability::require_reader(actor)?;
    state.figures.get(&state.db, actor.organization_scope()).await
}

/// Each depot's recommended minimum per part, from the failure rate, the installed base it serves,
/// the vendor lead time and its own turnaround, at the policy's fill rate; beside today's thresholds.
#[utoipa::path(get, path = "/api/v1/reliability/spares", params(FormatQuery), tag = "reports",
    responses((status = 200, body = spares::SparesPlan, description = "JSON, or with `format=csv` the shelves"), (status = 401), (status = 403)))]
pub async fn spares(State(state): State<AppState>, actor: Actor, Query(q): Query<FormatQuery>) -> AppResult<Response> {
    let plan = spares::plan(&state.db, &state.figures, &actor).await?;
    match q.format.as_deref() {
        Some("csv") => {
            let columns = [
                "depot",
                "part",
                "installed_base",
                "afr_percent",
                "failures_per_year",
                "turnaround_days",
                "turnaround_source",
                "pipeline_days",
                "pipeline_mean",
                "recommended_minimum",
                "minimum",
                "available",
            ];
            csv_download("spares", &columns, &plan.lines)
        }
        _ => Ok(Json(plan).into_response()),
    }
}

/// Set the fill rate the recommendations aim for and the vendor lead time (admins).
#[utoipa::path(put, path = "/api/v1/reliability/spares/policy", request_body = spares::SparesPolicy, tag = "reports",
    responses((status = 200, body = spares::SparesPolicy), (status = 401), (status = 403), (status = 422)))]
pub async fn set_spares_policy(
    State(state): State<AppState>,
    actor: Actor,
    crate::web::extract::Json(policy): crate::web::extract::Json<spares::SparesPolicy>,
) -> AppResult<Json<spares::SparesPolicy>> {
    Ok(Json(spares::set_policy(&state.db, &actor, policy).await?))
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
