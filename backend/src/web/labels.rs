//! `GET /api/v1/rmas/{number}/label.pdf`, `/label.zpl` and `/packing-slip.pdf`: for the RMA's own
//! organization and internal users; anyone else gets 404.
use crate::documents;
use crate::error::AppResult;
use crate::services::{Actor, labels};
use crate::state::AppState;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/rmas/{number}/label.pdf", get(label_pdf))
        .route("/api/v1/rmas/{number}/label.zpl", get(label_zpl))
        .route("/api/v1/rmas/{number}/packing-slip.pdf", get(packing_slip))
}

fn file(kind: &'static str, name: String, body: impl IntoResponse) -> Response {
    let disposition = format!("inline; filename=\"{name}\"");
    (
        [
            (header::CONTENT_TYPE, kind.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}

/// The 4x6 return label as PDF.
#[utoipa::path(get, path = "/api/v1/rmas/{number}/label.pdf", params(("number" = String, Path)), tag = "labels",
    responses((status = 200, content_type = "application/pdf"), (status = 404), (status = 409)))]
pub async fn label_pdf(State(state): State<AppState>, actor: Actor, Path(number): Path<String>) -> AppResult<Response> {
    let data = labels::return_label(&state.db, &actor, &number, &state.settings.base_url).await?;
    let pdf = documents::return_label_pdf(&data)?;
    Ok(file(
        "application/pdf",
        format!("{}-return-label.pdf", data.number),
        pdf,
    ))
}

/// The return label as ZPL for Zebra thermal printers.
#[utoipa::path(get, path = "/api/v1/rmas/{number}/label.zpl", params(("number" = String, Path)), tag = "labels",
    responses((status = 200, content_type = "text/plain"), (status = 404), (status = 409)))]
pub async fn label_zpl(State(state): State<AppState>, actor: Actor, Path(number): Path<String>) -> AppResult<Response> {
    let data = labels::return_label(&state.db, &actor, &number, &state.settings.base_url).await?;
    Ok(file(
        "text/plain; charset=utf-8",
        format!("{}-return-label.zpl", data.number),
        documents::return_label_zpl(&data),
    ))
}

/// The packing slip of the outbound replacement.
#[utoipa::path(get, path = "/api/v1/rmas/{number}/packing-slip.pdf", params(("number" = String, Path)), tag = "labels",
    responses((status = 200, content_type = "application/pdf"), (status = 404), (status = 409)))]
pub async fn packing_slip(
    State(state): State<AppState>,
    actor: Actor,
    Path(number): Path<String>,
) -> AppResult<Response> {
    let data = labels::packing_slip(&state.db, &actor, &number, &state.settings.base_url).await?;
    let pdf = documents::packing_slip_pdf(&data)?;
    Ok(file(
        "application/pdf",
        format!("{}-packing-slip.pdf", data.number),
        pdf,
    ))
}
