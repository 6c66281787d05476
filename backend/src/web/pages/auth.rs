//! `/sign-in` and `/sign-out`. The sign-in form carries a CSRF token bound to a short-lived cookie;
//! a successful sign-in always starts a new session.
use super::{PageError, SESSION_COOKIE, SignedForm, constant_time_eq, render};
use crate::error::AppError;
use crate::services::sessions;
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use serde::{Deserialize, Serialize};

const PRE_CSRF_COOKIE: &str = "depot_signin_csrf";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/sign-in", get(show).post(submit))
        .route("/sign-out", post(sign_out))
}

#[derive(Deserialize)]
struct NextParam {
    next: Option<String>,
}

#[derive(Serialize)]
struct SignInPage {
    csrf: String,
    next: String,
    email: String,
    error: Option<String>,
}

fn cookie(state: &AppState, name: &'static str, value: String) -> Cookie<'static> {
    Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.settings.base_url.starts_with("https://"))
        .build()
}

/// Where to go after sign-in: a path on this site, or `/`.
///
/// The path is resolved as a browser resolves a `Location` (the URL standard: tabs and newlines
/// dropped, `\` read as `/`, `//host` a new origin), and only a result on this origin is kept, in its
/// normalised form. Text a browser would rewrite (control characters, backslashes) is refused
/// outright rather than guessed at.
fn safe_next(next: Option<&str>) -> String {
    static HERE: std::sync::LazyLock<url::Url> =
        std::sync::LazyLock::new(|| url::Url::parse("https://depot.invalid/").expect("a valid URL"));
    let same_site = next
        .filter(|n| n.starts_with('/') && !n.chars().any(|c| c.is_control() || c == '\\'))
        .and_then(|n| HERE.join(n).ok())
        .filter(|url| url.origin() == HERE.origin());
    match same_site {
        Some(url) => url[url::Position::BeforePath..].to_string(),
        None => "/".into(),
    }
}

fn page(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    next: String,
    email: String,
    error: Option<String>,
) -> Response {
    let csrf = sessions::random_token();
    let jar = jar.add(cookie(state, PRE_CSRF_COOKIE, csrf.clone()));
    match render(
        "auth/sign_in.html",
        &SignInPage {
            csrf,
            next,
            email,
            error,
        },
    ) {
        Ok(html) => (status, jar, html).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn show(State(state): State<AppState>, jar: CookieJar, Query(q): Query<NextParam>) -> Response {
    page(
        &state,
        jar,
        StatusCode::OK,
        safe_next(q.next.as_deref()),
        String::new(),
        None,
    )
}

#[derive(Deserialize)]
struct SignInForm {
    email: String,
    password: String,
    csrf: String,
    next: Option<String>,
}

async fn submit(State(state): State<AppState>, jar: CookieJar, Form(form): Form<SignInForm>) -> Response {
    let next = safe_next(form.next.as_deref());
    let expected = jar
        .get(PRE_CSRF_COOKIE)
        .map(|c| c.value().to_string())
        .unwrap_or_default();
    if expected.is_empty() || !constant_time_eq(expected.as_bytes(), form.csrf.as_bytes()) {
        let msg = "The sign-in form expired; please try again.".to_string();
        return page(&state, jar, StatusCode::FORBIDDEN, next, form.email, Some(msg));
    }
    // The sign-in form is not a SignedForm (it has no session yet), so it checks for NUL here.
    if let Err(err) = crate::web::extract::refuse_nul_in_form([form.email.as_str(), &form.password]) {
        let email = form.email.replace('\0', "");
        return page(&state, jar, err.status(), next, email, Some(err.to_string()));
    }
    match sessions::sign_in(&state.db, &form.email, &form.password).await {
        Ok(signed_in) => {
            // Drop any session this browser had: the new one has a new id.
            if let Some(old) = jar.get(SESSION_COOKIE) {
                let _ = sessions::sign_out(&state.db, old.value()).await;
            }
            let jar = jar
                .remove(Cookie::from(PRE_CSRF_COOKIE))
                .add(cookie(&state, SESSION_COOKIE, signed_in.token));
            (jar, Redirect::to(&next)).into_response()
        }
        Err(err @ (AppError::Unprocessable { .. } | AppError::TooManyRequests(_) | AppError::Forbidden(_))) => {
            let status = err.status();
            page(&state, jar, status, next, form.email, Some(err.to_string()))
        }
        Err(err) => PageError(err).into_response(),
    }
}

#[derive(Deserialize)]
struct Empty {}

/// Signing out is a form too, so another site cannot sign a user out.
async fn sign_out(State(state): State<AppState>, jar: CookieJar, _form: SignedForm<Empty>) -> Response {
    if let Some(token) = jar.get(SESSION_COOKIE)
        && let Err(e) = sessions::sign_out(&state.db, token.value()).await
    {
        return PageError(e).into_response();
    }
    (
        jar.remove(Cookie::build(SESSION_COOKIE).path("/")),
        Redirect::to("/sign-in"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_paths_of_this_site_are_followed() {
        for same in ["/", "/rmas/RMA-2026-000001", "/rmas?status=approved#top", "/a/../b"] {
            assert!(safe_next(Some(same)).starts_with('/'), "{same}");
        }
        assert_eq!(safe_next(Some("/rmas?q=a b")), "/rmas?q=a%20b");
        assert_eq!(safe_next(Some("/a/../b")), "/b");
        for elsewhere in [
            "//evil.example/",
            "/\t/evil.example/",
            "/\n/evil.example",
            "/\\evil.example",
            "\\/evil.example",
            "https://evil.example/",
            "javascript:alert(1)",
            "evil.example",
            "/\u{0b}",
            "/\u{7f}",
            "/\u{01}",
            "/\r\nSet-Cookie: x=1",
            "",
        ] {
            assert_eq!(safe_next(Some(elsewhere)), "/", "{elsewhere:?}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
