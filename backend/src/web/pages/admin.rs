//! `/admin`, `/admin/users` and `/admin/catalog`: users and their tokens; sites, clusters, parts, depots.
use super::{Chrome, PageError, SignedForm, Viewer, after, form_values, render};
use crate::domain::Role;
use crate::error::AppError;
use crate::services::admin::{self, AddressInput, Catalog, OutboxRow, UserChange, UserInput, UserRow};
use crate::state::AppState;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Serialize;
use std::collections::HashMap;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin", get(|| async { Redirect::to("/admin/users") }))
        .route("/admin/users", get(users).post(create_user))
        .route("/admin/users/{id}", post(change_user))
        .route("/admin/catalog", get(catalog).post(save_catalog))
        .route("/admin/outbox", get(outbox))
        .route("/admin/signals", get(signals))
        .route("/admin/signals/rules", post(save_rule))
        .route("/admin/outbox/{id}/retry", post(retry))
}

type Fields = HashMap<String, String>;

fn field<'a>(form: &'a Fields, key: &str) -> &'a str {
    form.get(key).map(String::as_str).unwrap_or_default()
}

#[derive(Serialize)]
struct UsersPage {
    chrome: Chrome,
    users: Vec<UserRow>,
    roles: Vec<&'static str>,
    error: Option<String>,
    form: Fields,
}

async fn users_page(
    state: &AppState,
    viewer: Viewer,
    error: Option<String>,
    form: Fields,
) -> Result<Html<String>, PageError> {
    let users = admin::users(&state.db, &viewer.actor).await?;
    let roles = Role::ALL.iter().map(|r| r.as_str()).collect();
    let form = form_values(form, &["email", "name", "role", "organization", "depot"]);
    render(
        "admin/users.html",
        &UsersPage {
            chrome: Chrome::new(viewer, "admin"),
            users,
            roles,
            error,
            form,
        },
    )
}

async fn users(State(state): State<AppState>, viewer: Viewer) -> Result<Html<String>, PageError> {
    users_page(&state, viewer, None, Fields::new()).await
}

fn user_input(form: &Fields) -> UserInput<'_> {
    UserInput {
        email: field(form, "email"),
        name: field(form, "name"),
        role: field(form, "role"),
        organization: field(form, "organization"),
        depot: field(form, "depot"),
    }
}

async fn create_user(State(state): State<AppState>, SignedForm { viewer, form }: SignedForm<Fields>) -> Response {
    let result = admin::create_user(&state.db, &viewer.actor, user_input(&form), field(&form, "password")).await;
    let created = format!("Created {}; they can sign in now.", field(&form, "email"));
    after(result, "/admin/users", &created, |e| {
        users_page(&state, viewer, Some(e), form.clone())
    })
    .await
}

async fn change_user(
    State(state): State<AppState>,
    Path(id): Path<String>,
    SignedForm { viewer, form }: SignedForm<Fields>,
) -> Response {
    let Ok(id) = uuid::Uuid::parse_str(&id) else {
        return PageError(AppError::not_found("no such user")).into_response();
    };
    let change = match field(&form, "action") {
        "update" => UserChange::Update(user_input(&form)),
        "disable" => UserChange::Disable,
        "enable" => UserChange::Enable,
        "reset_password" => UserChange::ResetPassword(field(&form, "password")),
        "unlock" => UserChange::Unlock,
        "revoke_tokens" => UserChange::RevokeTokens,
        other => return PageError(AppError::invalid(format!("unknown action `{other}`"))).into_response(),
    };
    let result = admin::change_user(&state.db, &viewer.actor, id, change).await;
    after(result, "/admin/users", "User updated.", |e| {
        users_page(&state, viewer, Some(e), Fields::new())
    })
    .await
}

#[derive(Serialize)]
struct CatalogPage {
    chrome: Chrome,
    catalog: Catalog,
    finding_codes: Vec<crate::services::repairs::FindingCode>,
    error: Option<String>,
}

async fn catalog_page(state: &AppState, viewer: Viewer, error: Option<String>) -> Result<Html<String>, PageError> {
    let catalog = admin::catalog(&state.db, &viewer.actor).await?;
    render(
        "admin/catalog.html",
        &CatalogPage {
            chrome: Chrome::new(viewer, "admin"),
            catalog,
            finding_codes: crate::services::repairs::catalog(&state.db).await?,
            error,
        },
    )
}

async fn catalog(State(state): State<AppState>, viewer: Viewer) -> Result<Html<String>, PageError> {
    catalog_page(&state, viewer, None).await
}

fn address(form: &Fields) -> AddressInput<'_> {
    AddressInput {
        street: field(form, "street"),
        city: field(form, "city"),
        region: field(form, "region"),
        postal_code: field(form, "postal_code"),
        country: field(form, "country"),
    }
}

async fn save_catalog(State(state): State<AppState>, SignedForm { viewer, form }: SignedForm<Fields>) -> Response {
    let (db, actor) = (&state.db, &viewer.actor);
    let f = |k: &str| field(&form, k);
    let result = match f("kind_of_record") {
        "depot" => admin::create_depot(db, actor, f("code"), f("name"), address(&form)).await,
        "site" => {
            admin::create_site(
                db,
                actor,
                f("code"),
                f("name"),
                f("organization"),
                f("default_depot"),
                f("contacts"),
                f("coverage"),
                address(&form),
            )
            .await
        }
        "cluster" => admin::create_cluster(db, actor, f("site"), f("name"), f("kind")).await,
        "organization" => {
            let allowed = &state.settings.webhook_allow;
            admin::set_organization_channels(db, actor, f("code"), f("webhook_url"), f("oncall"), allowed).await
        }
        "sla" => {
            let input = admin::SlaInput {
                first_response_minutes: [f("sev1"), f("sev2"), f("sev3"), f("sev4")],
                replacement_business_days: f("replacement_business_days"),
                return_days: f("return_days"),
                turnaround_business_days: f("turnaround_business_days"),
                time_zone: f("time_zone"),
                workdays: f("workdays"),
                opens: f("opens"),
                closes: f("closes"),
                holidays: f("holidays"),
            };
            admin::set_sla(db, actor, f("code"), input).await
        }
        "oncall" => {
            admin::set_oncall(
                db,
                actor,
                f("code"),
                f("oncall_kind"),
                f("members"),
                f("starts_on"),
                f("hours"),
            )
            .await
        }
        "part" => {
            let on = |k: &str| matches!(f(k), "on" | "true" | "yes");
            admin::save_part(
                db,
                actor,
                f("number"),
                f("kind"),
                f("description"),
                on("field_replaceable"),
                on("holds_media"),
            )
            .await
        }
        other => Err(AppError::invalid(format!("unknown record kind `{other}`"))),
    };
    after(result, "/admin/catalog", "Catalog saved.", |e| {
        catalog_page(&state, viewer, Some(e))
    })
    .await
}

#[derive(Serialize)]
struct OutboxPage {
    chrome: Chrome,
    rows: Vec<OutboxRow>,
    error: Option<String>,
    /// No SMTP server is set: nothing is sent, and the page says so.
    mail_off: bool,
}

async fn outbox_page(state: &AppState, viewer: Viewer, error: Option<String>) -> Result<Html<String>, PageError> {
    let rows = admin::outbox(&state.db, &viewer.actor).await?;
    render(
        "admin/outbox.html",
        &OutboxPage {
            chrome: Chrome::new(viewer, "admin"),
            rows,
            error,
            mail_off: state.settings.smtp_url.is_none(),
        },
    )
}

async fn outbox(State(state): State<AppState>, viewer: Viewer) -> Result<Html<String>, PageError> {
    outbox_page(&state, viewer, None).await
}

async fn retry(
    State(state): State<AppState>,
    Path(id): Path<String>,
    SignedForm { viewer, form: _ }: SignedForm<Fields>,
) -> Response {
    let Ok(id) = uuid::Uuid::parse_str(&id) else {
        return PageError(AppError::not_found("no such message")).into_response();
    };
    let result = admin::retry_notification(&state.db, &viewer.actor, id).await;
    after(
        result,
        "/admin/outbox",
        "The message is queued again; it goes out within a minute.",
        |e| outbox_page(&state, viewer, Some(e)),
    )
    .await
}

#[derive(Serialize)]
struct SignalsPage {
    chrome: Chrome,
    unmatched_scans: Vec<crate::services::tracking::Unmatched>,
    rules: Vec<crate::services::redfish::RuleRow>,
    actions: Vec<&'static str>,
    error: Option<String>,
}

async fn signals_page(state: &AppState, viewer: Viewer, error: Option<String>) -> Result<Html<String>, PageError> {
    let unmatched_scans = crate::services::tracking::unmatched(&state.db, &viewer.actor, 200).await?;
    render(
        "admin/signals.html",
        &SignalsPage {
            chrome: Chrome::new(viewer, "admin"),
            unmatched_scans,
            rules: crate::services::redfish::rules(&state.db).await?,
            actions: crate::domain::redfish::Action::ALL.iter().map(|a| a.as_str()).collect(),
            error,
        },
    )
}

/// What integrations sent that depot could not place (carrier scans of unknown tracking numbers),
/// and the rules that read BMC events.
async fn signals(State(state): State<AppState>, viewer: Viewer) -> Result<Html<String>, PageError> {
    signals_page(&state, viewer, None).await
}

/// Sets a BMC event rule, or removes it (`remove` ticked).
async fn save_rule(State(state): State<AppState>, SignedForm { viewer, form }: SignedForm<Fields>) -> Response {
    use crate::domain::redfish::{Action, Rule};
    let f = |k: &str| field(&form, k);
    let result = async {
        let position: i32 = f("position")
            .trim()
            .parse()
            .map_err(|_| AppError::invalid(format!("position `{}` is not a whole number", f("position"))))?;
        if f("remove") == "on" {
            return crate::services::redfish::delete_rule(&state.db, &viewer.actor, position).await;
        }
        let rule = Rule {
            message_id_contains: f("message_id_contains").into(),
            origin_contains: f("origin_contains").into(),
            fault_code: f("fault_code").into(),
            severity: f("severity").into(),
            action: Action::parse(f("action")).map_err(AppError::invalid)?,
            part: Some(f("part").to_string()).filter(|p| !p.trim().is_empty()),
            description: f("description").into(),
        };
        crate::services::redfish::save_rule(
            &state.db,
            &viewer.actor,
            crate::services::redfish::RuleRow { position, rule },
        )
        .await
    }
    .await;
    after(result, "/admin/signals#rules", "Rule saved.", |e| {
        signals_page(&state, viewer, Some(e))
    })
    .await
}
