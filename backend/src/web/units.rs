//! `/api/v1/units` and `/api/v1/stock`.
use crate::error::AppResult;
use crate::services::stock::{self, Restock, SetThreshold, ThresholdLine};
use crate::services::units::{self, UnitFilter};
use crate::services::views::UnitView;
use crate::services::{Actor, Page};
use crate::state::AppState;
use crate::web::extract::{self, Query};
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/units", get(list))
        .route("/api/v1/units/{serial}", get(show))
        .route("/api/v1/stock", get(stock))
        .route("/api/v1/stock/thresholds", get(thresholds).put(set_threshold))
        .route("/api/v1/stock/restock", get(restock))
}

/// Low-stock thresholds per depot and part, with the available count against each.
#[utoipa::path(get, path = "/api/v1/stock/thresholds", tag = "units",
    responses((status = 200, body = Page<ThresholdLine>), (status = 401), (status = 403)))]
pub async fn thresholds(State(state): State<AppState>, actor: Actor) -> AppResult<Json<Page<ThresholdLine>>> {
    Ok(Json(Page {
        items: stock::thresholds(&state.db, &actor).await?,
        next_cursor: None,
    }))
}

/// Sets the threshold of a depot and part (`minimum` 0 removes it): admins, and depot technicians
/// for their own depot. When a transition takes available stock below it, the depot's technicians
/// and the admins get an email.
#[utoipa::path(put, path = "/api/v1/stock/thresholds", request_body = SetThreshold, tag = "units",
    responses((status = 200, body = ThresholdLine), (status = 204), (status = 401), (status = 403), (status = 422)))]
pub async fn set_threshold(
    State(state): State<AppState>,
    actor: Actor,
    extract::Json(input): extract::Json<SetThreshold>,
) -> AppResult<axum::response::Response> {
    use axum::response::IntoResponse;
    Ok(match stock::set_threshold(&state.db, &actor, input).await? {
        Some(line) => Json(line).into_response(),
        None => axum::http::StatusCode::NO_CONTENT.into_response(),
    })
}

/// The short shelves and what to move from the other depot to refill them.
#[utoipa::path(get, path = "/api/v1/stock/restock", tag = "units",
    responses((status = 200, body = Restock), (status = 401), (status = 403)))]
pub async fn restock(State(state): State<AppState>, actor: Actor) -> AppResult<Json<Restock>> {
    Ok(Json(stock::restock(&state.db, &actor).await?))
}

/// Units anywhere, by serial; a customer's technician sees only their own sites' units.
#[utoipa::path(get, path = "/api/v1/units", params(UnitFilter), tag = "units",
    responses((status = 200, body = Page<UnitView>), (status = 401)))]
pub async fn list(
    State(state): State<AppState>,
    actor: Actor,
    Query(filter): Query<UnitFilter>,
) -> AppResult<Json<Page<UnitView>>> {
    Ok(Json(units::list(&state.db, &actor, filter).await?))
}

/// One unit by serial.
#[utoipa::path(get, path = "/api/v1/units/{serial}", params(("serial" = String, Path)), tag = "units",
    responses((status = 200, body = UnitView), (status = 401), (status = 404)))]
pub async fn show(
    State(state): State<AppState>,
    actor: Actor,
    Path(serial): Path<String>,
) -> AppResult<Json<UnitView>> {
    Ok(Json(units::get(&state.db, &actor, &serial).await?))
}

/// Serviceable spares at the depots.
#[utoipa::path(get, path = "/api/v1/stock", params(UnitFilter), tag = "units",
    responses((status = 200, body = Page<UnitView>), (status = 401), (status = 403)))]
pub async fn stock(
    State(state): State<AppState>,
    actor: Actor,
    Query(filter): Query<UnitFilter>,
) -> AppResult<Json<Page<UnitView>>> {
    Ok(Json(units::stock(&state.db, &actor, filter).await?))
}
