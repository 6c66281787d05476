//! Extractors that turn every bad input into an [`AppError`] with the contract's error shape.
use crate::app::AppState;
use crate::error::AppError;
use crate::services::{Actor, sessions, tokens};
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// Why text with NUL characters is refused: PostgreSQL cannot store it, so it would fail deep
/// inside a query instead of at the door.
const NUL_REFUSED: &str = "text must not contain NUL characters (\\u0000 or %00)";

/// Whether any string in `value` (keys included) holds a NUL character.
fn holds_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(holds_nul),
        serde_json::Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        _ => false,
    }
}

/// Refuses a URL whose path or query carries an encoded NUL (400), before any handler runs.
pub async fn refuse_nul_in_url(req: Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::response::IntoResponse;
    let raw = req.uri().path_and_query().map_or("", |p| p.as_str());
    if raw.to_ascii_lowercase().contains("%00") {
        return AppError::Malformed(NUL_REFUSED.into()).into_response();
    }
    next.run(req).await
}

/// Refuses form text (names and values) with a NUL character (422).
pub fn refuse_nul_in_form<'a>(texts: impl IntoIterator<Item = &'a str>) -> Result<(), AppError> {
    match texts.into_iter().any(|t| t.contains('\0')) {
        true => Err(AppError::invalid(NUL_REFUSED)),
        false => Ok(()),
    }
}

/// The request body limit for JSON bodies.
pub const JSON_LIMIT: usize = 256 * 1024;

/// A JSON body. Bad syntax is 400, wrong or missing fields 422, too large 413. The content type is
/// not insisted on: integrations send JSON with all sorts of headers.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                AppError::PayloadTooLarge(JSON_LIMIT)
            } else {
                AppError::Malformed(rejection.body_text())
            }
        })?;
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| AppError::Malformed(format!("the body is not valid JSON: {e}")))?;
        if holds_nul(&value) {
            return Err(AppError::invalid(NUL_REFUSED));
        }
        serde_path_to_error::deserialize(value).map(Json).map_err(|err| {
            let path = err.path().to_string();
            if path == "." {
                AppError::invalid(err.into_inner().to_string())
            } else {
                AppError::invalid(format!("{path}: {}", err.into_inner()))
            }
        })
    }
}

/// Query parameters; a value of the wrong type is 400.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, AppError> {
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str(query)
            .map(Query)
            .map_err(|e| AppError::Malformed(format!("bad query string: {e}")))
    }
}

/// The signed-in user, from `Authorization: Bearer <token>`; for reads (GET, HEAD) a signed-in
/// browser's session cookie also counts, so pages can link to downloads. Writes need the token:
/// a cookie alone would let another site forge them.
impl FromRequestParts<AppState> for Actor {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if header.is_none() && parts.method.is_safe() {
            let jar = axum_extra::extract::CookieJar::from_headers(&parts.headers);
            if let Some(cookie) = jar.get(crate::web::pages::SESSION_COOKIE) {
                return sessions::resolve(&state.db, cookie.value())
                    .await
                    .map(|(actor, _, _)| actor);
            }
        }
        let token = header
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AppError::Unauthorized)?;
        tokens::authenticate(&state.db, token).await
    }
}
