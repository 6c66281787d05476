//! `/`: the dashboard. An anonymous visitor is sent to sign in.
use super::{Chrome, PageError, Viewer, render};
use crate::services::dashboard::{self, Dashboard};
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::response::Html;
use axum::routing::get;
use serde::Serialize;

pub fn routes() -> Router<AppState> {
    Router::new().route("/", get(show))
}

#[derive(Serialize)]
struct DashboardPage {
    chrome: Chrome,
    dashboard: Dashboard,
}

async fn show(State(state): State<AppState>, viewer: Viewer) -> Result<Html<String>, PageError> {
    let dashboard = dashboard::build(&state.db, &viewer.actor).await?;
    render(
        "dashboard/index.html",
        &DashboardPage {
            chrome: Chrome::new(viewer, "dashboard"),
            dashboard,
        },
    )
}
