//! `/api/v1/rmas`: open, list, read and move RMAs, and their history.
use crate::error::AppResult;
use crate::services::rmas::{self, OpenRma, PageParams, RmaFilter, TransitionRequest};
use crate::services::views::{EventView, RmaView};
use crate::services::{Actor, Page};
use crate::state::AppState;
use crate::web::extract::{Json, Query};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/rmas", post(open).get(list))
        .route("/api/v1/rmas/{number}", get(show))
        .route("/api/v1/rmas/{number}/transitions", post(transition))
        .route("/api/v1/rmas/{number}/events", get(events))
        .route("/api/v1/rmas/{number}/watch", axum::routing::put(watch).delete(unwatch))
        .route("/api/v1/rmas/{number}/dead-on-arrival", post(dead_on_arrival))
}

/// What the DC technician saw of the replacement.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeadOnArrival {
    pub note: Option<String>,
}

/// Report that the replacement this RMA shipped arrived dead: an event on the RMA and an email to
/// the depot that shipped it; once per RMA (409 after).
#[utoipa::path(post, path = "/api/v1/rmas/{number}/dead-on-arrival", params(("number" = String, Path)),
    request_body = DeadOnArrival, tag = "rmas",
    responses((status = 200, body = RmaView), (status = 401), (status = 403), (status = 404), (status = 409), (status = 422)))]
pub async fn dead_on_arrival(
    State(state): State<AppState>,
    actor: Actor,
    Path(number): Path<String>,
    Json(input): Json<DeadOnArrival>,
) -> AppResult<axum::Json<RmaView>> {
    crate::services::quality::report_dead_on_arrival(&state.db, &state.settings.base_url, &actor, &number, input.note)
        .await?;
    Ok(axum::Json(rmas::get(&state.db, &actor, &number).await?))
}

/// Open an RMA in `reported`.
#[utoipa::path(post, path = "/api/v1/rmas", request_body = OpenRma, tag = "rmas",
    responses((status = 201, body = RmaView), (status = 401), (status = 403), (status = 422)))]
pub async fn open(
    State(state): State<AppState>,
    actor: Actor,
    Json(input): Json<OpenRma>,
) -> AppResult<(StatusCode, axum::Json<RmaView>)> {
    let view = rmas::open(&state.db, &actor, input).await?;
    Ok((StatusCode::CREATED, axum::Json(view)))
}

/// List RMAs, newest first, with filters and cursor pagination.
#[utoipa::path(get, path = "/api/v1/rmas", params(RmaFilter), tag = "rmas",
    responses((status = 200, body = Page<RmaView>), (status = 400), (status = 401), (status = 422)))]
pub async fn list(
    State(state): State<AppState>,
    actor: Actor,
    Query(filter): Query<RmaFilter>,
) -> AppResult<axum::Json<Page<RmaView>>> {
    Ok(axum::Json(rmas::list(&state.db, &actor, filter).await?))
}

/// One RMA, with its shipments and the transitions the caller may make.
#[utoipa::path(get, path = "/api/v1/rmas/{number}", params(("number" = String, Path)), tag = "rmas",
    responses((status = 200, body = RmaView), (status = 401), (status = 404)))]
pub async fn show(
    State(state): State<AppState>,
    actor: Actor,
    Path(number): Path<String>,
) -> AppResult<axum::Json<RmaView>> {
    Ok(axum::Json(rmas::get(&state.db, &actor, &number).await?))
}

/// Move an RMA along the lifecycle: `{"to": STATUS, "version": N, ...fields}`.
#[utoipa::path(post, path = "/api/v1/rmas/{number}/transitions", params(("number" = String, Path)),
    request_body = TransitionRequest, tag = "rmas",
    responses((status = 200, body = RmaView), (status = 400), (status = 401), (status = 403), (status = 404),
        (status = 409), (status = 422)))]
pub async fn transition(
    State(state): State<AppState>,
    actor: Actor,
    Path(number): Path<String>,
    Json(req): Json<TransitionRequest>,
) -> AppResult<axum::Json<RmaView>> {
    Ok(axum::Json(rmas::transition(&state.db, &actor, &number, req).await?))
}

/// An RMA's history, oldest first.
#[utoipa::path(get, path = "/api/v1/rmas/{number}/events", params(("number" = String, Path), PageParams), tag = "rmas",
    responses((status = 200, body = Page<EventView>), (status = 401), (status = 404)))]
pub async fn events(
    State(state): State<AppState>,
    actor: Actor,
    Path(number): Path<String>,
    Query(page): Query<PageParams>,
) -> AppResult<axum::Json<Page<EventView>>> {
    Ok(axum::Json(rmas::events(&state.db, &actor, &number, page).await?))
}

/// Watch an RMA: its emails go to you too.
#[utoipa::path(put, path = "/api/v1/rmas/{number}/watch", params(("number" = String, Path)), tag = "rmas",
    responses((status = 204), (status = 401), (status = 404)))]
pub async fn watch(State(state): State<AppState>, actor: Actor, Path(number): Path<String>) -> AppResult<StatusCode> {
    rmas::set_watching(&state.db, &actor, &number, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Stop watching an RMA.
#[utoipa::path(delete, path = "/api/v1/rmas/{number}/watch", params(("number" = String, Path)), tag = "rmas",
    responses((status = 204), (status = 401), (status = 404)))]
pub async fn unwatch(State(state): State<AppState>, actor: Actor, Path(number): Path<String>) -> AppResult<StatusCode> {
    rmas::set_watching(&state.db, &actor, &number, false).await?;
    Ok(StatusCode::NO_CONTENT)
}
