//! `GET /api/v1/lifecycle`: the transition table as JSON, read from the one table in `domain`.
use crate::domain::lifecycle::{Status, TRANSITIONS};
use crate::state::AppState;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/lifecycle", get(table))
}

/// The lifecycle: every status, which are end states, and every transition with its roles and fields.
#[utoipa::path(get, path = "/api/v1/lifecycle", tag = "lifecycle", responses((status = 200, body = Object)))]
pub async fn table() -> Json<Value> {
    let statuses: Vec<Value> = Status::ALL
        .iter()
        .map(|s| json!({"name": s.as_str(), "end": s.is_end()}))
        .collect();
    Json(json!({
        "statuses": statuses,
        "initial": Status::Reported.as_str(),
        "transitions": TRANSITIONS,
    }))
}
