//! Server-rendered pages for people: templates, the signed-in viewer, CSRF-checked forms, error pages.
pub mod admin;
pub mod auth;
pub mod dashboard;
pub mod lifecycle;
pub mod receiving;
pub mod reports;
pub mod rmas;
pub mod units;

use crate::domain::Role;
use crate::error::AppError;
use crate::services::{Actor, sessions};
use crate::state::AppState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum_extra::extract::CookieJar;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::LazyLock;

pub const SESSION_COOKIE: &str = "depot_session";

pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(auth::routes())
        .merge(dashboard::routes())
        .merge(rmas::routes())
        .merge(receiving::routes())
        .merge(reports::routes())
        .merge(units::routes())
        .merge(lifecycle::routes())
        .merge(admin::routes())
        .route("/static/{file}", get(static_file))
        .method_not_allowed_fallback(to_the_form_page)
        .layer(axum::middleware::from_fn(forget_shown_flash))
}

/// An address that only takes a form answers a visit (after a sign-in, a reload, a link copied
/// from the address bar) with the page the form is on, never 405.
async fn to_the_form_page(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    match method {
        axum::http::Method::GET | axum::http::Method::HEAD => {
            let parent = uri.path().rsplit_once('/').map_or("", |(p, _)| p);
            axum::response::Redirect::to(if parent.is_empty() { "/" } else { parent }).into_response()
        }
        other => PageError(AppError::MethodNotAllowed(format!(
            "{} does not take {other}",
            uri.path()
        )))
        .into_response(),
    }
}

macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        [$(($name, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/frontend/templates/", $name)))),*]
    };
}

/// Every template, compiled into the binary so that `depot` runs from anywhere.
static TEMPLATES: LazyLock<tera::Tera> = LazyLock::new(|| {
    let mut tera = tera::Tera::default();
    tera.add_raw_templates(templates![
        "base.html",
        "macros.html",
        "auth/sign_in.html",
        "dashboard/index.html",
        "rmas/list.html",
        "rmas/detail.html",
        "rmas/new.html",
        "receiving/index.html",
        "receiving/session.html",
        "units/stock.html",
        "units/shelf.html",
        "units/detail.html",
        "units/slot.html",
        "lifecycle/index.html",
        "reports/sla.html",
        "reports/charts.html",
        "reports/reliability.html",
        "admin/users.html",
        "admin/catalog.html",
        "admin/outbox.html",
        "admin/signals.html",
        "slack/link.html",
        "errors/error.html",
    ])
    .expect("templates parse");
    tera.autoescape_on(vec![".html"]);
    tera
});

/// Renders `name` with `ctx`; a template bug is a 500 with the details in the log.
pub fn render(name: &str, ctx: &impl Serialize) -> Result<Html<String>, PageError> {
    let ctx = tera::Context::from_serialize(ctx).map_err(|e| AppError::Internal(e.into()))?;
    TEMPLATES
        .render(name, &ctx)
        .map(Html)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("{e:?}")).into())
}

/// An error on a page: the sign-in page for 401, otherwise an error page in the app's style.
#[derive(Debug)]
pub struct PageError(pub AppError);

impl<E: Into<AppError>> From<E> for PageError {
    fn from(err: E) -> Self {
        PageError(err.into())
    }
}

#[derive(Serialize)]
struct ErrorPage {
    status: u16,
    title: &'static str,
    message: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        if status == StatusCode::UNAUTHORIZED {
            return Redirect::to("/sign-in").into_response();
        }
        let title = match status.as_u16() {
            403 => "Not allowed",
            404 => "Not found",
            405 => "Not a page to send to",
            400 | 413 | 422 => "That did not work",
            409 => "Something changed",
            429 => "Too many attempts",
            503 => "Unavailable",
            _ => "Something went wrong",
        };
        let message = match &self.0 {
            AppError::Internal(err) => {
                tracing::error!(error = ?err, "internal error on a page");
                "Something went wrong on our side; it has been logged.".to_string()
            }
            other => other.to_string(),
        };
        let page = ErrorPage {
            status: status.as_u16(),
            title,
            message,
        };
        let html = TEMPLATES
            .render(
                "errors/error.html",
                &tera::Context::from_serialize(&page).unwrap_or_default(),
            )
            .unwrap_or_else(|_| format!("<h1>{}</h1>", status.as_u16()));
        (status, Html(html)).into_response()
    }
}

/// The signed-in person looking at a page.
#[derive(Clone, Debug, Serialize)]
pub struct Viewer {
    #[serde(skip)]
    pub actor: Actor,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub depot: Option<String>,
    pub csrf: String,
    /// What the previous request changed, said once on the page it led to.
    pub flash: Option<String>,
}

impl Viewer {
    pub fn is(&self, roles: &[Role]) -> bool {
        roles.contains(&self.role)
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let jar = CookieJar::from_headers(&parts.headers);
        let to_sign_in = || {
            let next = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
            Redirect::to(&format!("/sign-in?next={}", urlencode(next))).into_response()
        };
        let Some(token) = jar.get(SESSION_COOKIE).map(|c| c.value().to_string()) else {
            return Err(to_sign_in());
        };
        match sessions::resolve(&state.db, &token).await {
            Ok((actor, csrf, name)) => Ok(Viewer {
                email: actor.email.clone(),
                role: actor.role,
                depot: actor.depot_code.clone(),
                actor,
                name,
                csrf,
                flash: jar.get(FLASH_COOKIE).and_then(|c| read_flash(c.value())),
            }),
            Err(AppError::Unauthorized) => Err(to_sign_in()),
            Err(other) => Err(PageError(other).into_response()),
        }
    }
}

pub fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)])
        .map(|x| x[1..].to_string())
        .unwrap_or_default()
}

/// A form posted by a signed-in viewer, its CSRF token checked before anything else is read.
pub struct SignedForm<T> {
    pub viewer: Viewer,
    pub form: T,
}

/// Form bodies are small; a larger one is refused before it is read.
pub const FORM_LIMIT: usize = 64 * 1024;

impl<T: DeserializeOwned> FromRequest<AppState> for SignedForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let viewer = Viewer::from_request_parts(&mut parts, state).await?;
        let bytes = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|r| {
                let err = if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    AppError::PayloadTooLarge(FORM_LIMIT)
                } else {
                    AppError::Malformed(r.body_text())
                };
                PageError(err).into_response()
            })?;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| PageError(AppError::Malformed(format!("bad form: {e}"))).into_response())?;
        crate::web::extract::refuse_nul_in_form(pairs.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]))
            .map_err(|e| PageError(e).into_response())?;
        let sent = pairs
            .iter()
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.as_str())
            .unwrap_or_default();
        if !constant_time_eq(sent.as_bytes(), viewer.csrf.as_bytes()) {
            let err = AppError::Forbidden(
                "this form has expired or did not come from depot; reload the page and try again".into(),
            );
            return Err(PageError(err).into_response());
        }
        let form = serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| PageError(AppError::invalid(format!("bad form: {e}"))).into_response())?;
        Ok(SignedForm { viewer, form })
    }
}

/// The cookie that carries a confirmation across a post/redirect/get.
const FLASH_COOKIE: &str = "depot_flash";

/// Redirects after a change, saying on the next page what was done.
pub fn done(to: &str, message: &str) -> Response {
    let value = serde_urlencoded::to_string([("m", message)]).unwrap_or_default();
    let cookie = format!("{FLASH_COOKIE}={value}; Path=/; Max-Age=60; HttpOnly; SameSite=Lax");
    ([(header::SET_COOKIE, cookie)], Redirect::to(to)).into_response()
}

fn read_flash(value: &str) -> Option<String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(value)
        .ok()?
        .into_iter()
        .find_map(|(k, v)| (k == "m").then_some(v))
}

/// A page that showed the confirmation forgets it, so that a reload does not say it again. Only a
/// page does: a stylesheet or another tab's poll of `/live` must not swallow it first.
async fn forget_shown_flash(request: Request, next: axum::middleware::Next) -> Response {
    let had = CookieJar::from_headers(request.headers()).get(FLASH_COOKIE).is_some();
    let mut response = next.run(request).await;
    let page = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if had && page && response.status() == StatusCode::OK {
        let clear = format!("{FLASH_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax");
        if let Ok(value) = header::HeaderValue::from_str(&clear) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// Re-renders a page with the refusal inline, or redirects on success saying what was `done`.
pub async fn after<F, Fut>(result: Result<(), AppError>, back: &str, done_message: &str, rerender: F) -> Response
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<Html<String>, PageError>>,
{
    match result {
        Ok(()) => done(back, done_message),
        Err(err @ (AppError::Unprocessable { .. } | AppError::Conflict(_))) => {
            let status: StatusCode = err.status();
            match rerender(err.to_string()).await {
                Ok(html) => (status, html).into_response(),
                Err(e) => e.into_response(),
            }
        }
        Err(err) => PageError(err).into_response(),
    }
}

/// The values a form or filter was sent with, every key the template reads present (empty if unsent).
pub fn form_values(
    mut sent: std::collections::HashMap<String, String>,
    keys: &[&str],
) -> std::collections::HashMap<String, String> {
    for key in keys {
        sent.entry((*key).to_string()).or_default();
    }
    sent
}

/// Compares secrets in time that does not depend on where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    subtle::ConstantTimeEq::ct_eq(a, b).into()
}

/// The base context every page extends: who is looking, and the navigation for their role.
#[derive(Serialize)]
pub struct Chrome {
    pub viewer: Viewer,
    pub nav: Vec<NavItem>,
    pub active: &'static str,
}

#[derive(Serialize)]
pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub key: &'static str,
}

impl Chrome {
    pub fn new(viewer: Viewer, active: &'static str) -> Chrome {
        use Role::*;
        let all: [(&str, &str, &str, &[Role]); 9] = [
            (
                "/",
                "Dashboard",
                "dashboard",
                &[FieldEngineer, DepotTech, DcTech, Admin],
            ),
            ("/rmas", "RMAs", "rmas", &[FieldEngineer, DepotTech, DcTech, Admin]),
            ("/rmas/new", "New case", "new", &[FieldEngineer, DcTech, Admin]),
            ("/receiving", "Receiving", "receiving", &[DepotTech]),
            ("/stock", "Stock", "stock", &[FieldEngineer, DepotTech, Admin]),
            ("/reports/sla", "SLA", "reports", &[FieldEngineer, DcTech, Admin]),
            (
                "/lifecycle",
                "Lifecycle",
                "lifecycle",
                &[FieldEngineer, DepotTech, DcTech, Admin],
            ),
            ("/admin", "Admin", "admin", &[Admin]),
            ("/api/v1/openapi.json", "API", "api", &[FieldEngineer, DepotTech, Admin]),
        ];
        let nav = all
            .into_iter()
            .filter(|(_, _, _, roles)| roles.contains(&viewer.role))
            .map(|(href, label, key, _)| NavItem { href, label, key })
            .collect();
        Chrome { viewer, nav, active }
    }
}

const CSS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/frontend/static/depot.css"));
const JS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/frontend/static/depot.js"));

/// Static assets, compiled in, cached by browsers for a day.
async fn static_file(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "depot.css" => (CSS, "text/css; charset=utf-8"),
        "depot.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return PageError(AppError::not_found("no such file")).into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        body,
    )
        .into_response()
}
