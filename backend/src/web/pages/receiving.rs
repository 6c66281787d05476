//! `/receiving`: the depot bench. One input takes a scanner's keystrokes (serial or RMA number, then
//! Enter) and opens the receive form of the return it belongs to.
use super::{Chrome, PageError, SignedForm, Viewer, render, urlencode};
use crate::domain::Role;
use crate::services::receiving::{self, OpenSession, ScanRequest, SessionView};
use crate::services::rmas::{self, PageParams, Scan};
use crate::state::AppState;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/receiving", get(bench))
        .route("/receiving/sessions", post(open_session))
        .route("/receiving/sessions/{id}", get(session))
        .route("/receiving/sessions/{id}/scans", post(scan))
        .route("/receiving/sessions/{id}/close", post(close))
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
    sessions: Vec<SessionView>,
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
            Scan::Expected { rma, serial } => {
                let number = &rma.number;
                let query = serial
                    .map(|s| format!("?scanned={}", urlencode(&s)))
                    .unwrap_or_default();
                return Ok(Redirect::to(&format!("/rmas/{number}{query}#form-received")).into_response());
            }
            Scan::OnTheBench(rma) => {
                return Ok(Redirect::to(&format!("/rmas/{}#next", rma.number)).into_response());
            }
            Scan::Unexpected(message) => {
                unexpected = Some(message);
                status = StatusCode::NOT_FOUND;
            }
        }
    }
    let recent = PageParams {
        limit: Some(10),
        cursor: None,
    };
    let sessions = receiving::list(&state.db, &viewer.actor, recent).await?.items;
    let html = render(
        "receiving/index.html",
        &ReceivingPage {
            chrome: Chrome::new(viewer, "receiving"),
            scan,
            unexpected,
            sessions,
        },
    )?;
    Ok((status, html).into_response())
}

#[derive(Deserialize)]
struct OpenForm {
    #[serde(default)]
    reference: Option<String>,
}

async fn open_session(
    State(state): State<AppState>,
    SignedForm { viewer, form }: SignedForm<OpenForm>,
) -> Result<Response, PageError> {
    let input = OpenSession {
        reference: form.reference,
    };
    let session = receiving::open(&state.db, &viewer.actor, input).await?;
    Ok(Redirect::to(&format!("/receiving/sessions/{}", session.id)).into_response())
}

#[derive(Serialize)]
struct SessionPage {
    chrome: Chrome,
    session: SessionView,
    can_scan: bool,
}

async fn session(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Html<String>, PageError> {
    let session = receiving::get(&state.db, &viewer.actor, &id).await?;
    let can_scan = session.closed_at.is_none() && viewer.actor.depot_code.as_deref() == Some(session.depot.as_str());
    render(
        "receiving/session.html",
        &SessionPage {
            chrome: Chrome::new(viewer, "receiving"),
            session,
            can_scan,
        },
    )
}

#[derive(Deserialize)]
struct ScanForm {
    serial: String,
    #[serde(default)]
    bag_number: Option<String>,
}

async fn scan(
    State(state): State<AppState>,
    Path(id): Path<String>,
    SignedForm { viewer, form }: SignedForm<ScanForm>,
) -> Result<Response, PageError> {
    let input = ScanRequest {
        serial: form.serial,
        bag_number: form.bag_number,
    };
    receiving::scan(&state.db, &viewer.actor, &id, input).await?;
    Ok(Redirect::to(&format!("/receiving/sessions/{id}")).into_response())
}

async fn close(
    State(state): State<AppState>,
    Path(id): Path<String>,
    SignedForm { viewer, form: _ }: SignedForm<std::collections::HashMap<String, String>>,
) -> Result<Response, PageError> {
    receiving::close(&state.db, &viewer.actor, &id).await?;
    Ok(Redirect::to(&format!("/receiving/sessions/{id}")).into_response())
}
