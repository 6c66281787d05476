//! `/stock`, `/units/{serial}` and `/slots/{id}`: spares per depot, a unit's history, a slot's occupants.
use super::{Chrome, PageError, Viewer, render};
use crate::app::AppState;
use crate::error::AppError;
use crate::services::units::{self, SlotHistory, StockLine, UnitHistory};
use axum::Router;
use axum::extract::{Path, State};
use axum::response::Html;
use axum::routing::get;
use serde::Serialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/stock", get(stock))
        .route("/units/{serial}", get(unit))
        .route("/slots/{id}", get(slot))
}

#[derive(Serialize)]
struct StockPage {
    chrome: Chrome,
    lines: Vec<StockLine>,
}

async fn stock(State(state): State<AppState>, viewer: Viewer) -> Result<Html<String>, PageError> {
    let lines = units::stock_summary(&state.db, &viewer.actor).await?;
    render(
        "units/stock.html",
        &StockPage {
            chrome: Chrome::new(viewer, "stock"),
            lines,
        },
    )
}

#[derive(Serialize)]
struct UnitPage {
    chrome: Chrome,
    history: UnitHistory,
}

async fn unit(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(serial): Path<String>,
) -> Result<Html<String>, PageError> {
    let history = units::history(&state.db, &viewer.actor, &serial).await?;
    render(
        "units/detail.html",
        &UnitPage {
            chrome: Chrome::new(viewer, "stock"),
            history,
        },
    )
}

#[derive(Serialize)]
struct SlotPage {
    chrome: Chrome,
    slot: SlotHistory,
}

async fn slot(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Html<String>, PageError> {
    let id = uuid::Uuid::parse_str(&id).map_err(|_| AppError::not_found("no such slot"))?;
    let slot = units::slot_history(&state.db, &viewer.actor, id).await?;
    render(
        "units/slot.html",
        &SlotPage {
            chrome: Chrome::new(viewer, "stock"),
            slot,
        },
    )
}
