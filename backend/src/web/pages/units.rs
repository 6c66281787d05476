//! `/stock`, `/units/{serial}` and `/slots/{id}`: spares per depot, a unit's history, a slot's occupants.
use super::{Chrome, PageError, SignedForm, Viewer, after, render};
use crate::app::AppState;
use crate::domain::Role;
use crate::error::AppError;
use crate::services::stock::{self, Restock, SetThreshold, ThresholdLine};
use crate::services::units::{self, SlotHistory, StockLine, UnitHistory};
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{Html, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/stock", get(stock))
        .route("/stock/thresholds", post(set_threshold))
        .route("/units/{serial}", get(unit))
        .route("/slots/{id}", get(slot))
}

#[derive(Serialize)]
struct StockPage {
    chrome: Chrome,
    lines: Vec<StockLine>,
    thresholds: Vec<ThresholdLine>,
    restock: Restock,
    /// Depots whose thresholds the viewer may set.
    settable_depots: Vec<String>,
    parts: Vec<String>,
    error: Option<String>,
}

async fn stock_page(state: &AppState, viewer: Viewer, error: Option<String>) -> Result<Html<String>, PageError> {
    let lines = units::stock_summary(&state.db, &viewer.actor).await?;
    let thresholds = stock::thresholds(&state.db, &viewer.actor).await?;
    let restock = stock::restock(&state.db, &viewer.actor).await?;
    let mut depots: Vec<String> = lines.iter().map(|l| l.depot.clone()).collect();
    depots.dedup();
    let settable_depots = match viewer.role {
        Role::Admin => depots,
        Role::DepotTech => viewer.actor.depot_code.iter().cloned().collect(),
        _ => vec![],
    };
    let mut parts: Vec<String> = lines.iter().map(|l| l.part.clone()).collect();
    parts.sort();
    parts.dedup();
    render(
        "units/stock.html",
        &StockPage {
            chrome: Chrome::new(viewer, "stock"),
            lines,
            thresholds,
            restock,
            settable_depots,
            parts,
            error,
        },
    )
}

async fn stock(State(state): State<AppState>, viewer: Viewer) -> Result<Html<String>, PageError> {
    stock_page(&state, viewer, None).await
}

#[derive(Deserialize)]
struct ThresholdForm {
    depot: String,
    part: String,
    minimum: String,
}

async fn set_threshold(
    State(state): State<AppState>,
    SignedForm { viewer, form }: SignedForm<ThresholdForm>,
) -> Response {
    let result = match form.minimum.trim().parse::<i32>() {
        Ok(minimum) => {
            let input = SetThreshold {
                depot: form.depot,
                part: form.part,
                minimum,
            };
            stock::set_threshold(&state.db, &viewer.actor, input).await.map(|_| ())
        }
        Err(_) => Err(AppError::invalid(format!(
            "minimum `{}` is not a whole number",
            form.minimum.trim()
        ))),
    };
    after(result, "/stock#thresholds", |e| stock_page(&state, viewer, Some(e))).await
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
