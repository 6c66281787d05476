//! `/receiving`: the depot bench. One input takes a scanner's keystrokes (serial or RMA number, then
//! Enter) and opens the receive form of the return it belongs to.
use super::{Chrome, PageError, Viewer, render, urlencode};
use crate::app::AppState;
use crate::domain::Role;
use crate::services::rmas::{self, Scan};
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};

pub fn routes() -> Router<AppState> {
    Router::new().route("/receiving", get(bench))
}

#[derive(Deserialize)]
struct ScanQuery {
    scan: Option<String>,
}

#[derive(Serialize)]
struct ReceivingPage {
    chrome: Chrome,
    scan: String,
    unexpected: Option<String>,
}

async fn bench(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<ScanQuery>,
) -> Result<Response, PageError> {
    viewer.actor.require(&[Role::DepotTech], "receive returns")?;
    let scan = q.scan.unwrap_or_default();
    let mut unexpected = None;
    let mut status = StatusCode::OK;
    if !scan.trim().is_empty() {
        match rmas::receiving_scan(&state.db, &viewer.actor, &scan).await? {
            Scan::Expected { number, serial } => {
                let query = serial
                    .map(|s| format!("?scanned={}", urlencode(&s)))
                    .unwrap_or_default();
                return Ok(Redirect::to(&format!("/rmas/{number}{query}#form-received")).into_response());
            }
            Scan::Unexpected(message) => {
                unexpected = Some(message);
                status = StatusCode::NOT_FOUND;
            }
        }
    }
    let html = render(
        "receiving/index.html",
        &ReceivingPage {
            chrome: Chrome::new(viewer, "receiving"),
            scan,
            unexpected,
        },
    )?;
    Ok((status, html).into_response())
}
