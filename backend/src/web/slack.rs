//! The Slack app's request URLs: slash commands and interactivity. Every request is verified with
//! `SLACK_SIGNING_SECRET` (401 when the signature is wrong or the timestamp over five minutes off);
//! everything else is answered 200 with a message, as Slack requires. Also the page where a Slack
//! user's one-time link is confirmed.
use crate::domain::signatures;
use crate::error::{AppError, AppResult};
use crate::services::slack::{self, SlackUser};
use crate::state::AppState;
use crate::web::pages::{Chrome, PageError, SignedForm, Viewer, render};
use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/integrations/slack/commands", post(commands))
        .route("/api/v1/integrations/slack/interactions", post(interactions))
        .route("/slack/link/{secret}", get(link_page).post(confirm_link))
}

/// The form fields of a request Slack signed: refused (401) unless the signature and the timestamp
/// hold, before anything in it is read.
pub struct SlackForm(HashMap<String, String>);

impl FromRequest<AppState> for SlackForm {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, AppError> {
        let headers = req.headers().clone();
        let body = Bytes::from_request(req, state).await.map_err(|r| match r.status() {
            StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge(crate::web::extract::JSON_LIMIT),
            _ => AppError::Malformed(r.body_text()),
        })?;
        let secret = state.settings.slack_signing_secret.as_ref().ok_or_else(|| {
            tracing::warn!("a Slack request arrived but SLACK_SIGNING_SECRET is not set");
            AppError::BadSignature("depot has no Slack signing secret configured".into())
        })?;
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        signatures::slack_valid(
            secret.expose(),
            &body,
            header("x-slack-request-timestamp"),
            header("x-slack-signature"),
            chrono::Utc::now().timestamp(),
        )
        .map_err(|refusal| AppError::BadSignature(refusal.to_string()))?;
        // Signed by Slack but unreadable: answered with a message (Slack wants a 200), read as empty.
        Ok(SlackForm(serde_urlencoded::from_bytes(&body).unwrap_or_default()))
    }
}

/// Slack's slash-command form (the fields depot reads; Slack sends more).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct SlashCommand {
    team_id: String,
    user_id: String,
    command: String,
    /// What followed `/depot`.
    text: String,
}

/// Slack's interactivity form: the JSON payload of a `block_actions` event.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct InteractionForm {
    payload: String,
}

/// `/depot …`: Slack's slash-command form post (`team_id`, `user_id`, `text`, …).
#[utoipa::path(post, path = "/api/v1/integrations/slack/commands", tag = "integrations",
    request_body(content = SlashCommand, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = Object), (status = 400), (status = 401)))]
pub async fn commands(
    State(state): State<AppState>,
    SlackForm(fields): SlackForm,
) -> AppResult<Json<serde_json::Value>> {
    let field = |k: &str| fields.get(k).map(String::as_str).unwrap_or_default();
    let who = SlackUser {
        team_id: field("team_id"),
        user_id: field("user_id"),
    };
    Ok(Json(
        slack::command(&state.db, &who, field("text"), &state.settings.base_url).await?,
    ))
}

/// Buttons and inputs on depot's messages: Slack's form post with a JSON `payload`.
#[utoipa::path(post, path = "/api/v1/integrations/slack/interactions", tag = "integrations",
    request_body(content = InteractionForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = Object), (status = 400), (status = 401)))]
pub async fn interactions(
    State(state): State<AppState>,
    SlackForm(fields): SlackForm,
) -> AppResult<Json<serde_json::Value>> {
    // Signed by Slack but unusable: Slack wants a 200, so the refusal is a message; nothing changes.
    let Some(payload) = fields
        .get("payload")
        .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
    else {
        return Ok(Json(slack::message(
            "depot could not read this interaction's payload",
            vec![],
        )));
    };
    let team = payload["user"]["team_id"]
        .as_str()
        .or(payload["team"]["id"].as_str())
        .unwrap_or_default();
    let user = payload["user"]["id"].as_str().unwrap_or_default();
    let who = SlackUser {
        team_id: team,
        user_id: user,
    };
    let answer = slack::interaction(&state.db, &who, &payload, &state.settings.base_url).await?;
    // Slack shows an interaction's answer only when posted to its response_url.
    if let Some(url) = payload["response_url"]
        .as_str()
        .filter(|_| answer.get("text").is_some())
    {
        let reply = {
            let mut reply = answer.clone();
            reply["replace_original"] = serde_json::json!(false);
            reply
        };
        match crate::outbound::check_url(url, &state.settings.webhook_allow) {
            Ok(url) => {
                let http = state.http.clone();
                tokio::spawn(async move {
                    if let Err(e) = http.post(url).json(&reply).send().await {
                        tracing::warn!(error = %e, "posting to Slack's response_url failed");
                    }
                });
            }
            Err(e) => tracing::warn!(error = %e, "Slack's response_url refused"),
        }
    }
    Ok(Json(answer))
}

#[derive(Serialize)]
struct LinkPage {
    chrome: Chrome,
    secret: String,
    slack_user: String,
    error: Option<String>,
}

/// The page a `/depot link` link opens: who the Slack user will act as, and a button to confirm.
async fn link_page(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(secret): Path<String>,
) -> Result<Html<String>, PageError> {
    let link = slack::pending_link(&state.db, &secret).await?;
    render(
        "slack/link.html",
        &LinkPage {
            chrome: Chrome::new(viewer, "dashboard"),
            secret,
            slack_user: link.slack_user_id,
            error: None,
        },
    )
}

#[derive(Deserialize)]
struct Confirm {}

async fn confirm_link(
    State(state): State<AppState>,
    Path(secret): Path<String>,
    SignedForm { viewer, .. }: SignedForm<Confirm>,
) -> Response {
    match slack::confirm_link(&state.db, &viewer.actor, &secret).await {
        Ok(()) => Redirect::to("/?linked=slack").into_response(),
        Err(e) => PageError(e).into_response(),
    }
}
