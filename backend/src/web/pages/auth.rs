//! `/sign-in` and `/sign-out`. The sign-in form carries a CSRF token bound to a short-lived cookie;
//! a successful sign-in always starts a new session.
use super::{PageError, SESSION_COOKIE, SignedForm, constant_time_eq, render};
use crate::app::AppState;
use crate::error::AppError;
use crate::services::sessions;
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

/// Only same-site paths are followed after sign-in.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/".into(),
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
        Err(err @ (AppError::Unprocessable { .. } | AppError::TooManyRequests(_))) => {
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
