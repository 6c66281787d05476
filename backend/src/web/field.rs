//! Field intake and diagnosis: `POST /api/v1/alarms`, the checklist, evidence attachments, and
//! editing an RMA's external references.
use crate::error::{AppError, AppResult};
use crate::services::alarms::{self, Alarm};
use crate::services::attachments::{self, AttachmentView, MAX_BYTES};
use crate::services::diagnosis::{self, CheckView, RecordCheck};
use crate::services::rmas::{self, RmaChanges};
use crate::services::views::RmaView;
use crate::services::{Actor, Page};
use crate::state::AppState;
use crate::web::extract::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/alarms", post(alarm))
        .route("/api/v1/rmas/{number}", axum::routing::patch(update))
        .route("/api/v1/rmas/{number}/checks", get(checks).post(record_check))
        .route(
            "/api/v1/rmas/{number}/attachments",
            get(list_attachments)
                .post(upload)
                .layer(DefaultBodyLimit::max(MAX_BYTES + 64 * 1024)),
        )
        .route("/api/v1/rmas/{number}/attachments/{id}", get(download))
}

/// Take an alarm in: a new RMA (201) or the open RMA of that serial (200). With `Idempotency-Key`,
/// a retried call gets the first answer; the same key with another body is refused (422).
#[utoipa::path(post, path = "/api/v1/alarms", request_body = Alarm, tag = "alarms",
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = RmaView), (status = 200, body = RmaView), (status = 401), (status = 422)))]
pub async fn alarm(
    State(state): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> AppResult<Response> {
    let key = match headers.get("idempotency-key") {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| AppError::invalid("Idempotency-Key must be text"))?
                .to_string(),
        ),
        None => None,
    };
    let answer = alarms::intake(&state.db, &actor, &body, key.as_deref()).await?;
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    Ok((status, axum::Json(answer.body)).into_response())
}

/// Replace an RMA's external references.
#[utoipa::path(patch, path = "/api/v1/rmas/{number}", params(("number" = String, Path)), request_body = RmaChanges,
    tag = "rmas", responses((status = 200, body = RmaView), (status = 404), (status = 409), (status = 422)))]
pub async fn update(
    State(state): State<AppState>,
    actor: Actor,
    Path(number): Path<String>,
    Json(changes): Json<RmaChanges>,
) -> AppResult<axum::Json<RmaView>> {
    Ok(axum::Json(rmas::update(&state.db, &actor, &number, changes).await?))
}

/// The RMA's diagnosis checklist with the latest result of each step.
#[utoipa::path(get, path = "/api/v1/rmas/{number}/checks", params(("number" = String, Path)), tag = "diagnosis",
    responses((status = 200, body = Page<CheckView>), (status = 404)))]
pub async fn checks(
    State(state): State<AppState>,
    actor: Actor,
    Path(number): Path<String>,
) -> AppResult<axum::Json<Page<CheckView>>> {
    let rma = rmas::find_visible(&state.db, &actor, &number).await?;
    Ok(axum::Json(Page {
        items: diagnosis::checks_of(&state.db, &rma).await?,
        next_cursor: None,
    }))
}

/// Record a checklist step: `{"step": "bmc_sensors", "result": "pass" | "fail" | "n/a", "note": ...}`.
#[utoipa::path(post, path = "/api/v1/rmas/{number}/checks", params(("number" = String, Path)), request_body = RecordCheck,
    tag = "diagnosis", responses((status = 200, body = Page<CheckView>), (status = 403), (status = 404), (status = 409), (status = 422)))]
pub async fn record_check(
    State(state): State<AppState>,
    actor: Actor,
    Path(number): Path<String>,
    Json(input): Json<RecordCheck>,
) -> AppResult<axum::Json<Page<CheckView>>> {
    Ok(axum::Json(Page {
        items: diagnosis::record(&state.db, &actor, &number, input).await?,
        next_cursor: None,
    }))
}

/// Upload evidence (multipart, field `file`): at most 10 MiB, of an allowed type.
#[utoipa::path(post, path = "/api/v1/rmas/{number}/attachments", params(("number" = String, Path)), tag = "attachments",
    responses((status = 201, body = AttachmentView), (status = 404), (status = 413), (status = 415), (status = 422)))]
pub async fn upload(
    State(state): State<AppState>,
    actor: Actor,
    Path(number): Path<String>,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> AppResult<(StatusCode, axum::Json<AttachmentView>)> {
    let mut multipart =
        multipart.map_err(|e| AppError::Malformed(format!("send the file as multipart/form-data: {e}")))?;
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        if field.name() != Some("file") {
            continue;
        }
        let name = field.file_name().unwrap_or("attachment").to_string();
        let bytes = field.bytes().await.map_err(multipart_error)?;
        let view = attachments::upload(&state.db, &actor, &number, &name, bytes.to_vec()).await?;
        return Ok((StatusCode::CREATED, axum::Json(view)));
    }
    Err(AppError::invalid("the multipart body has no `file` field"))
}

fn multipart_error(err: axum::extract::multipart::MultipartError) -> AppError {
    if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::PayloadTooLarge(MAX_BYTES)
    } else {
        AppError::Malformed(err.body_text())
    }
}

/// The RMA's attachments.
#[utoipa::path(get, path = "/api/v1/rmas/{number}/attachments", params(("number" = String, Path)), tag = "attachments",
    responses((status = 200, body = Page<AttachmentView>), (status = 404)))]
pub async fn list_attachments(
    State(state): State<AppState>,
    actor: Actor,
    Path(number): Path<String>,
) -> AppResult<axum::Json<Page<AttachmentView>>> {
    Ok(axum::Json(Page {
        items: attachments::list(&state.db, &actor, &number).await?,
        next_cursor: None,
    }))
}

/// Download one attachment; it is always served as a download, never rendered.
#[utoipa::path(get, path = "/api/v1/rmas/{number}/attachments/{id}", params(("number" = String, Path), ("id" = String, Path)),
    tag = "attachments", responses((status = 200), (status = 404)))]
pub async fn download(
    State(state): State<AppState>,
    actor: Actor,
    Path((number, id)): Path<(String, String)>,
) -> AppResult<Response> {
    let file = attachments::download(&state.db, &actor, &number, &id).await?;
    let disposition = format!("attachment; filename=\"{}\"", file.file_name);
    Ok((
        [
            (header::CONTENT_TYPE, file.content_type),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        file.data,
    )
        .into_response())
}
