//! Operations endpoints: `/healthz` and `/metrics`, and the request metrics middleware.
use crate::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use sea_orm::ConnectionTrait;
use serde_json::json;
use std::time::Instant;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
}

/// Liveness and database reachability.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200), (status = 503)))]
pub async fn healthz(State(state): State<AppState>) -> Response {
    match state.db.execute_unprepared("SELECT 1").await {
        Ok(_) => Json(json!({"status": "ok", "database": state.db.get_database_backend().as_str()})).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "health check failed");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "unavailable"}))).into_response()
        }
    }
}

/// Prometheus text exposition. The series name customers, so with `DEPOT_METRICS_TOKEN` set only
/// `Authorization: Bearer <that token>` may read them (Prometheus: `authorization: {credentials: …}`).
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, content_type = "text/plain"), (status = 401)))]
pub async fn metrics(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    if let Some(expected) = &state.settings.metrics_token {
        let sent = crate::web::extract::bearer_token(&headers).unwrap_or_default();
        if !crate::web::pages::constant_time_eq(sent.as_bytes(), expected.expose().as_bytes()) {
            return crate::error::AppError::Unauthorized.into_response();
        }
    }
    (
        [(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

/// Counts requests by route and status and records their latency.
pub async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let start = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("depot_http_requests_total", &labels).increment(1);
    metrics::histogram!("depot_http_request_duration_seconds", &labels[..2]).record(start.elapsed().as_secs_f64());
    response
}
