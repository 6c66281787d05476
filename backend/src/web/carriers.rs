//! Carrier tracking in: EasyPost's signed webhook events, and a normalised scan endpoint for
//! carriers and aggregators without an adapter (an `integration` user's token).
use crate::domain::signatures;
use crate::error::{AppError, AppResult};
use crate::services::tracking::{self, Scan, Taken, Unmatched};
use crate::services::{Actor, Page};
use crate::state::AppState;
use crate::web::extract::{Integration, Json as JsonBody};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/integrations/carriers/easypost", post(easypost))
        .route("/api/v1/integrations/carriers/unmatched", get(unmatched))
        .route("/api/v1/shipments/{tracking_number}/events", post(scan))
}

/// An EasyPost `Event` (only what depot reads of it).
#[derive(Deserialize)]
struct EasyPostEvent {
    id: String,
    description: String,
    result: Option<serde_json::Value>,
}

/// An EasyPost `Tracker`.
#[derive(Deserialize)]
struct Tracker {
    tracking_code: String,
    carrier: Option<String>,
    status: Option<String>,
    updated_at: Option<DateTime<Utc>>,
    #[serde(default)]
    tracking_details: Vec<TrackingDetail>,
}

#[derive(Deserialize)]
struct TrackingDetail {
    status: String,
    datetime: DateTime<Utc>,
    message: Option<String>,
    tracking_location: Option<TrackingLocation>,
}

#[derive(Deserialize)]
struct TrackingLocation {
    city: Option<String>,
    state: Option<String>,
    country: Option<String>,
}

impl TrackingLocation {
    fn words(&self) -> Option<String> {
        let parts: Vec<&str> = [&self.city, &self.state, &self.country]
            .into_iter()
            .filter_map(|p| p.as_deref().map(str::trim).filter(|p| !p.is_empty()))
            .collect();
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

/// A status EasyPost adds after this was written is kept as `unknown`, not refused: a refusal would
/// make EasyPost retry the event forever.
fn known_status(status: String) -> String {
    match tracking::STATUSES.contains(&status.as_str()) {
        true => status,
        false => "unknown".into(),
    }
}

impl Tracker {
    /// Every scan of the tracker's history, and its current status when no scan carries it (an
    /// update may say `delivered` before the detail arrives).
    fn scans(self) -> Vec<Scan> {
        let mut scans: Vec<Scan> = self
            .tracking_details
            .into_iter()
            .map(|d| Scan {
                status: known_status(d.status),
                at: d.datetime,
                location: d.tracking_location.and_then(|l| l.words()),
                message: d.message,
            })
            .collect();
        if let (Some(status), Some(at)) = (self.status.map(known_status), self.updated_at)
            && !scans.iter().any(|s| s.status == status)
        {
            scans.push(Scan {
                status,
                at,
                location: None,
                message: None,
            });
        }
        scans
    }
}

/// EasyPost webhook events (`tracker.created`, `tracker.updated`), signed with
/// `EASYPOST_WEBHOOK_SECRET` (`X-Hmac-Signature: hmac-sha256-hex=…`); 401 when the signature is
/// missing or wrong. A replayed event id answers 200 and changes nothing; an unknown tracking
/// number answers 200 and is kept for an admin.
#[utoipa::path(post, path = "/api/v1/integrations/carriers/easypost", tag = "integrations",
    request_body(content = Object, description = "An EasyPost Event whose result is a Tracker"),
    responses((status = 200, body = Object), (status = 400), (status = 401), (status = 413)))]
pub async fn easypost(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> AppResult<Response> {
    let secret = state.settings.easypost_webhook_secret.as_ref().ok_or_else(|| {
        tracing::warn!("an EasyPost webhook arrived but EASYPOST_WEBHOOK_SECRET is not set");
        AppError::BadSignature("depot has no EasyPost webhook secret configured".into())
    })?;
    let signature = headers.get("x-hmac-signature").and_then(|v| v.to_str().ok());
    if !signatures::easypost_valid(secret.expose(), &body, signature) {
        return Err(AppError::BadSignature(
            "X-Hmac-Signature is missing or does not match the webhook secret".into(),
        ));
    }
    let event: EasyPostEvent =
        serde_json::from_slice(&body).map_err(|e| AppError::Malformed(format!("not an EasyPost Event: {e}")))?;
    if !event.description.starts_with("tracker.") {
        return Ok(Json(serde_json::json!({"ignored": event.description})).into_response());
    }
    if tracking::already_taken(&state.db, "easypost", &event.id).await? {
        return Ok(Json(serde_json::json!({"duplicate": event.id})).into_response());
    }
    let tracker: Tracker = serde_json::from_value(event.result.unwrap_or_default())
        .map_err(|e| AppError::Malformed(format!("the event's result is not a Tracker: {e}")))?;
    let actor = tracking::integration_actor(&state.db, "easypost").await?;
    let carrier = tracker.carrier.clone();
    let tracking_code = tracker.tracking_code.clone();
    let taken = tracking::report(
        &state.db,
        &actor,
        &state.settings.base_url,
        "easypost",
        carrier.as_deref(),
        &tracking_code,
        tracker.scans(),
    )
    .await?;
    tracking::mark_taken(&state.db, "easypost", &event.id).await?;
    Ok(Json(taken).into_response())
}

/// One scan from a carrier or aggregator without an adapter, with an `integration` user's token.
/// 200 when a shipment has the tracking number; 202 when none has (kept for an admin).
#[utoipa::path(post, path = "/api/v1/shipments/{tracking_number}/events", tag = "integrations",
    params(("tracking_number" = String, Path)), request_body = Scan,
    responses((status = 200, body = Taken), (status = 202, body = Taken), (status = 401), (status = 403), (status = 422)))]
pub async fn scan(
    State(state): State<AppState>,
    Integration(actor): Integration,
    Path(tracking_number): Path<String>,
    JsonBody(scan): JsonBody<Scan>,
) -> AppResult<Response> {
    let taken = tracking::report(
        &state.db,
        &actor,
        &state.settings.base_url,
        "api",
        None,
        &tracking_number,
        vec![scan],
    )
    .await?;
    let status = if taken.matched {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(taken)).into_response())
}

/// Scans for tracking numbers no shipment has, newest first (admins).
#[utoipa::path(get, path = "/api/v1/integrations/carriers/unmatched", tag = "integrations",
    responses((status = 200, body = Page<Unmatched>), (status = 401), (status = 403)))]
pub async fn unmatched(State(state): State<AppState>, actor: Actor) -> AppResult<Json<Page<Unmatched>>> {
    Ok(Json(Page {
        items: tracking::unmatched(&state.db, &actor, 500).await?,
        next_cursor: None,
    }))
}
