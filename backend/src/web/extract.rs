//! Extractors that turn every bad input into an [`AppError`] with the contract's error shape.
use crate::domain::Role;
use crate::error::AppError;
use crate::services::{Actor, sessions, tokens};
use crate::state::AppState;
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

/// Gives every error answer depot's own shape, whoever made it: axum answers a method a route does
/// not take (405) with an empty body and a path it cannot decode (invalid UTF-8) with plain text.
/// Under `/api` that becomes the JSON error of SPEC §7; elsewhere the error page.
pub async fn errors_in_our_shape(req: Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
    use axum::response::IntoResponse;
    let api = req.uri().path().starts_with("/api/");
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let res = next.run(req).await;
    let status = res.status();
    let content_type = res
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let ours = content_type.starts_with("application/json") || (!api && content_type.starts_with("text/html"));
    if !(status.is_client_error() || status.is_server_error()) || ours {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, 16 * 1024).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_string();
    let message = match (text.is_empty(), status) {
        (false, _) => text,
        (true, StatusCode::METHOD_NOT_ALLOWED) => format!("{path} does not take {method}"),
        (true, _) => status.canonical_reason().unwrap_or("error").to_lowercase(),
    };
    let err = AppError::from_status(status, message);
    let mut ours = match api {
        true => err.into_response(),
        false => crate::web::pages::PageError(err).into_response(),
    };
    // Keep what the router said besides the body (e.g. `Allow` on a 405).
    parts.headers.remove(CONTENT_TYPE);
    parts.headers.remove(CONTENT_LENGTH);
    for (name, value) in parts.headers {
        if let Some(name) = name {
            ours.headers_mut().entry(name).or_insert(value);
        }
    }
    ours
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
        let has_header = parts.headers.contains_key(axum::http::header::AUTHORIZATION);
        if !has_header && parts.method.is_safe() {
            let jar = axum_extra::extract::CookieJar::from_headers(&parts.headers);
            if let Some(cookie) = jar.get(crate::web::pages::SESSION_COOKIE) {
                return sessions::resolve(&state.db, cookie.value())
                    .await
                    .map(|(actor, _, _)| actor);
            }
        }
        let token = bearer_token(&parts.headers).ok_or(AppError::Unauthorized)?;
        let actor = tokens::authenticate(&state.db, token).await?;
        if actor.role == Role::Integration {
            return Err(AppError::Forbidden(
                "an integration token reports signals (shipment scans, BMC events) and may do nothing else".into(),
            ));
        }
        Ok(actor)
    }
}

/// The integration user behind `Authorization: Bearer <token>`: the only caller of the signal
/// endpoints that take a token (a carrier aggregator, a BMC).
pub struct Integration(pub Actor);

impl FromRequestParts<AppState> for Integration {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let token = bearer_token(&parts.headers).ok_or(AppError::Unauthorized)?;
        let actor = tokens::authenticate(&state.db, token).await?;
        match actor.role {
            Role::Integration => Ok(Integration(actor)),
            _ => Err(AppError::Forbidden(
                "only an integration user's token may report signals".into(),
            )),
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header, if there is one.
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}
