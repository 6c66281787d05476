//! `/`: the dashboard. An anonymous visitor is sent to sign in.
use super::{Chrome, PageError, Viewer, render};
use crate::services::dashboard::{self, Dashboard};
use crate::state::AppState;
use axum::Router;
use axum::extract::{Query, State};
use axum::response::Html;
use axum::routing::get;
use serde::{Deserialize, Serialize};

pub fn routes() -> Router<AppState> {
    Router::new().route("/", get(show)).route("/live", get(live))
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

#[derive(Deserialize)]
struct LiveQuery {
    /// An RMA number: its version is the stamp. Without it, the viewer's open RMAs'.
    rma: Option<String>,
}

/// What a page polls to stay current: a stamp that changes when what it shows does.
async fn live(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<LiveQuery>,
) -> Result<axum::Json<serde_json::Value>, PageError> {
    let stamp = match q.rma {
        Some(number) => crate::services::rmas::find_visible(&state.db, &viewer.actor, &number)
            .await?
            .version
            .to_string(),
        None => dashboard::stamp(&state.db, &viewer.actor).await?,
    };
    Ok(axum::Json(serde_json::json!({ "stamp": stamp })))
}
