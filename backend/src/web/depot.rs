//! The depot's own API: pallet receiving sessions and the findings catalog.
use crate::error::AppResult;
use crate::services::receiving::{self, OpenSession, ScanRequest, ScanView, SessionView};
use crate::services::repairs::{self, FindingCode};
use crate::services::rmas::PageParams;
use crate::services::{Actor, Page};
use crate::state::AppState;
use crate::web::extract::{Json, Query};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/finding-codes", get(finding_codes))
        .route("/api/v1/receiving/sessions", post(open_session).get(list_sessions))
        .route("/api/v1/receiving/sessions/{id}", get(show_session))
        .route("/api/v1/receiving/sessions/{id}/scans", post(scan))
        .route("/api/v1/receiving/sessions/{id}/close", post(close_session))
}

/// The catalog of fault codes a depot finding may carry (`finding_codes` of a transition).
#[utoipa::path(get, path = "/api/v1/finding-codes", tag = "depot",
    responses((status = 200, body = Page<FindingCode>), (status = 401)))]
pub async fn finding_codes(State(state): State<AppState>, _actor: Actor) -> AppResult<axum::Json<Page<FindingCode>>> {
    Ok(axum::Json(Page {
        items: repairs::catalog(&state.db).await?,
        next_cursor: None,
    }))
}

/// Opens a pallet receiving session at the technician's depot.
#[utoipa::path(post, path = "/api/v1/receiving/sessions", request_body = OpenSession, tag = "depot",
    responses((status = 201, body = SessionView), (status = 401), (status = 403), (status = 422)))]
pub async fn open_session(
    State(state): State<AppState>,
    actor: Actor,
    Json(input): Json<OpenSession>,
) -> AppResult<(StatusCode, axum::Json<SessionView>)> {
    let session = receiving::open(&state.db, &actor, input).await?;
    Ok((StatusCode::CREATED, axum::Json(session)))
}

/// Receiving sessions, newest first.
#[utoipa::path(get, path = "/api/v1/receiving/sessions", params(PageParams), tag = "depot",
    responses((status = 200, body = Page<SessionView>), (status = 401), (status = 403)))]
pub async fn list_sessions(
    State(state): State<AppState>,
    actor: Actor,
    Query(params): Query<PageParams>,
) -> AppResult<axum::Json<Page<SessionView>>> {
    Ok(axum::Json(receiving::list(&state.db, &actor, params).await?))
}

/// One session: its scans, and the returns still expected at its depot.
#[utoipa::path(get, path = "/api/v1/receiving/sessions/{id}", params(("id" = String, Path)), tag = "depot",
    responses((status = 200, body = SessionView), (status = 401), (status = 403), (status = 404)))]
pub async fn show_session(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> AppResult<axum::Json<SessionView>> {
    Ok(axum::Json(receiving::get(&state.db, &actor, &id).await?))
}

/// Scans one serial: received against its RMA, or recorded as unexpected or refused.
#[utoipa::path(post, path = "/api/v1/receiving/sessions/{id}/scans", params(("id" = String, Path)),
    request_body = ScanRequest, tag = "depot",
    responses((status = 201, body = ScanView), (status = 401), (status = 403), (status = 404), (status = 409), (status = 422)))]
pub async fn scan(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    Json(input): Json<ScanRequest>,
) -> AppResult<(StatusCode, axum::Json<ScanView>)> {
    let scan = receiving::scan(&state.db, &actor, &id, input).await?;
    Ok((StatusCode::CREATED, axum::Json(scan)))
}

/// Closes a session.
#[utoipa::path(post, path = "/api/v1/receiving/sessions/{id}/close", params(("id" = String, Path)), tag = "depot",
    responses((status = 200, body = SessionView), (status = 401), (status = 403), (status = 404)))]
pub async fn close_session(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> AppResult<axum::Json<SessionView>> {
    Ok(axum::Json(receiving::close(&state.db, &actor, &id).await?))
}
