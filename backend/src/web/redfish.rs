//! BMC events in (DMTF Redfish `Event` payloads, an integration token sent by the BMC from its
//! subscription's `HttpHeaders`), and the rules that read them.
use crate::domain::Role;
use crate::domain::redfish::Rule;
use crate::error::AppResult;
use crate::services::redfish::{self, Intake, RuleRow};
use crate::services::{Actor, Page};
use crate::state::AppState;
use crate::web::extract::{Integration, Json as JsonBody};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/integrations/redfish", post(events))
        .route("/api/v1/integrations/redfish/rules", get(rules))
        .route(
            "/api/v1/integrations/redfish/rules/{position}",
            put(save_rule).delete(delete_rule),
        )
}

/// A Redfish `Event` from a node's BMC (`Context` = the node's serial). 201 when it opened an RMA,
/// 200 when it joined one or needed none; a replayed event is recorded once.
#[utoipa::path(post, path = "/api/v1/integrations/redfish", tag = "integrations",
    request_body(content = Object, description = "A DMTF Redfish Event: Context, Events[] with MessageId, MessageSeverity, Message, MessageArgs, OriginOfCondition, EventTimestamp"),
    responses((status = 200, body = Intake), (status = 201, body = Intake), (status = 400), (status = 401), (status = 403), (status = 422)))]
pub async fn events(
    State(state): State<AppState>,
    Integration(actor): Integration,
    JsonBody(body): JsonBody<serde_json::Value>,
) -> AppResult<Response> {
    let intake = redfish::intake(&state.db, &state.settings, &state.http, &actor, body).await?;
    let status = StatusCode::from_u16(intake.status).unwrap_or(StatusCode::OK);
    Ok((status, Json(intake)).into_response())
}

/// The rules that read BMC events as faults, in the order they are tried (internal users).
#[utoipa::path(get, path = "/api/v1/integrations/redfish/rules", tag = "integrations",
    responses((status = 200, body = Page<RuleRow>), (status = 401), (status = 403)))]
pub async fn rules(State(state): State<AppState>, actor: Actor) -> AppResult<Json<Page<RuleRow>>> {
    actor.require(
        &[Role::Admin, Role::FieldEngineer, Role::DepotTech],
        "read the BMC event rules",
    )?;
    Ok(Json(Page {
        items: redfish::rules(&state.db).await?,
        next_cursor: None,
    }))
}

/// Sets the rule at `position` (admins).
#[utoipa::path(put, path = "/api/v1/integrations/redfish/rules/{position}", tag = "integrations",
    params(("position" = i32, Path)), request_body = Rule,
    responses((status = 204), (status = 401), (status = 403), (status = 422)))]
pub async fn save_rule(
    State(state): State<AppState>,
    actor: Actor,
    Path(position): Path<i32>,
    JsonBody(rule): JsonBody<Rule>,
) -> AppResult<StatusCode> {
    redfish::save_rule(&state.db, &actor, RuleRow { position, rule }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes the rule at `position` (admins).
#[utoipa::path(delete, path = "/api/v1/integrations/redfish/rules/{position}", tag = "integrations",
    params(("position" = i32, Path)), responses((status = 204), (status = 401), (status = 403)))]
pub async fn delete_rule(
    State(state): State<AppState>,
    actor: Actor,
    Path(position): Path<i32>,
) -> AppResult<StatusCode> {
    redfish::delete_rule(&state.db, &actor, position).await?;
    Ok(StatusCode::NO_CONTENT)
}
