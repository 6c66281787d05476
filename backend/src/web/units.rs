//! `/api/v1/units` and `/api/v1/stock`.
use crate::app::AppState;
use crate::error::AppResult;
use crate::services::units::{self, UnitFilter};
use crate::services::views::UnitView;
use crate::services::{Actor, Page};
use crate::web::extract::Query;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/units", get(list))
        .route("/api/v1/units/{serial}", get(show))
        .route("/api/v1/stock", get(stock))
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
