//! `/stock`, `/units/{serial}` and `/slots/{id}`: spares per depot, a unit's history, a slot's occupants.
use super::{Chrome, PageError, SignedForm, Viewer, after, render};
use crate::domain::Role;
use crate::error::AppError;
use crate::services::stock::{self, Restock, SetThreshold, ThresholdLine};
use crate::services::units::{self, SlotHistory, StockLine, UnitHistory};
use crate::services::views::UnitView;
use crate::state::AppState;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{Html, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/stock", get(stock))
        .route("/stock/{depot}/{part}", get(shelf))
        .route("/stock/thresholds", post(set_threshold))
        .route("/stock/spares-policy", post(set_spares_policy))
        .route("/units/{serial}", get(unit))
        .route("/units/{serial}/bmc", post(subscribe_bmc))
        .route("/slots/{id}", get(slot))
}

#[derive(Serialize)]
struct StockPage {
    chrome: Chrome,
    lines: Vec<StockLine>,
    thresholds: Vec<ThresholdLine>,
    restock: Restock,
    spares: crate::services::spares::SparesPlan,
    /// Depots whose thresholds the viewer may set.
    settable_depots: Vec<String>,
    parts: Vec<String>,
    error: Option<String>,
}

async fn stock_page(state: &AppState, viewer: Viewer, error: Option<String>) -> Result<Html<String>, PageError> {
    let lines = units::stock_summary(&state.db, &viewer.actor).await?;
    let thresholds = stock::thresholds(&state.db, &viewer.actor).await?;
    let restock = stock::restock(&state.db, &viewer.actor).await?;
    let spares = crate::services::spares::plan(&state.db, &state.figures, &viewer.actor).await?;
    let mut depots: Vec<String> = lines.iter().map(|l| l.depot.clone()).collect();
    depots.dedup();
    let settable_depots = match viewer.role {
        Role::Admin => depots,
        Role::DepotTech => viewer.actor.depot_code.iter().cloned().collect(),
        _ => vec![],
    };
    let mut parts: Vec<String> = lines.iter().map(|l| l.part.clone()).collect();
    parts.sort();
    parts.dedup();
    render(
        "units/stock.html",
        &StockPage {
            chrome: Chrome::new(viewer, "stock"),
            lines,
            thresholds,
            restock,
            spares,
            settable_depots,
            parts,
            error,
        },
    )
}

async fn stock(State(state): State<AppState>, viewer: Viewer) -> Result<Html<String>, PageError> {
    stock_page(&state, viewer, None).await
}

#[derive(Serialize)]
struct ShelfPage {
    chrome: Chrome,
    depot: String,
    part: String,
    units: Vec<UnitView>,
    more: bool,
}

/// The most units one shelf page lists (the API pages the rest).
const SHELF_PAGE: u64 = 500;

/// One part on one depot's shelf, unit by unit: what a technician picks from.
async fn shelf(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((depot, part)): Path<(String, String)>,
) -> Result<Html<String>, PageError> {
    let filter = units::UnitFilter {
        depot: Some(depot.clone()),
        part: Some(part.clone()),
        limit: Some(SHELF_PAGE),
        ..Default::default()
    };
    let page = units::stock(&state.db, &viewer.actor, filter).await?;
    // The stock filter reads an unknown code as "nothing there"; a page names what it cannot find.
    use crate::entities::{depot as depots, part as parts};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let (depot, part) = (depot.trim().to_uppercase(), part.trim().to_uppercase());
    let depot_known = depots::Entity::find()
        .filter(depots::Column::Code.eq(depot.as_str()))
        .one(&state.db)
        .await?
        .is_some();
    let part_known = parts::Entity::find()
        .filter(parts::Column::Number.eq(part.as_str()))
        .one(&state.db)
        .await?
        .is_some();
    if !depot_known || !part_known {
        let what = if depot_known {
            format!("part {part}")
        } else {
            format!("depot {depot}")
        };
        return Err(AppError::not_found(what).into());
    }
    render(
        "units/shelf.html",
        &ShelfPage {
            chrome: Chrome::new(viewer, "stock"),
            depot,
            part,
            more: page.next_cursor.is_some(),
            units: page.items,
        },
    )
}

#[derive(Deserialize)]
struct ThresholdForm {
    depot: String,
    part: String,
    minimum: String,
}

async fn set_threshold(
    State(state): State<AppState>,
    SignedForm { viewer, form }: SignedForm<ThresholdForm>,
) -> Response {
    let result = match form.minimum.trim().parse::<i32>() {
        Ok(minimum) => {
            let input = SetThreshold {
                depot: form.depot,
                part: form.part,
                minimum,
            };
            stock::set_threshold(&state.db, &viewer.actor, input).await.map(|_| ())
        }
        Err(_) => Err(AppError::invalid(format!(
            "minimum `{}` is not a whole number",
            form.minimum.trim()
        ))),
    };
    after(result, "/stock#thresholds", "Threshold saved.", |e| {
        stock_page(&state, viewer, Some(e))
    })
    .await
}

#[derive(Deserialize)]
struct SparesPolicyForm {
    fill_rate_percent: String,
    lead_time_days: String,
}

async fn set_spares_policy(
    State(state): State<AppState>,
    SignedForm { viewer, form }: SignedForm<SparesPolicyForm>,
) -> Response {
    use crate::services::spares::{SparesPolicy, set_policy as set_spares_policy};
    let number = |name: &str, text: &str| {
        text.trim()
            .parse::<f64>()
            .map_err(|_| format!("{name} `{}` is not a number", text.trim()))
    };
    let result = match (
        number("fill rate", &form.fill_rate_percent),
        number("lead time", &form.lead_time_days),
    ) {
        (Ok(fill_rate_percent), Ok(lead_time_days)) => {
            let policy = SparesPolicy {
                fill_rate_percent,
                lead_time_days,
            };
            set_spares_policy(&state.db, &viewer.actor, policy).await.map(|_| ())
        }
        (a, b) => Err(AppError::invalid(
            [a.err(), b.err()].into_iter().flatten().collect::<Vec<_>>().join("; "),
        )),
    };
    after(result, "/stock#spares", "Spares policy saved.", |e| {
        stock_page(&state, viewer, Some(e))
    })
    .await
}

/// A node's BMC subscription, as admins see it.
#[derive(Serialize)]
struct BmcView {
    url: String,
    subscription_uri: Option<String>,
    since: chrono::DateTime<chrono::Utc>,
}

#[derive(Serialize)]
struct UnitPage {
    chrome: Chrome,
    history: UnitHistory,
    /// Admins only: the BMC subscription, and the form to make one.
    bmc: Option<BmcView>,
    error: Option<String>,
}

async fn unit_page(
    state: &AppState,
    viewer: Viewer,
    serial: &str,
    error: Option<String>,
) -> Result<Html<String>, PageError> {
    let history = units::history(&state.db, &viewer.actor, serial).await?;
    let bmc = match viewer.role {
        Role::Admin => crate::services::redfish::subscription_of(&state.db, history.unit_id)
            .await?
            .map(|(url, subscription_uri, since)| BmcView {
                url,
                subscription_uri,
                since,
            }),
        _ => None,
    };
    render(
        "units/detail.html",
        &UnitPage {
            chrome: Chrome::new(viewer, "stock"),
            history,
            bmc,
            error,
        },
    )
}

async fn unit(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(serial): Path<String>,
) -> Result<Html<String>, PageError> {
    unit_page(&state, viewer, &serial, None).await
}

#[derive(Deserialize)]
struct BmcForm {
    url: String,
    user: String,
    password: String,
}

/// Subscribes depot to the node's BMC events (admins).
async fn subscribe_bmc(
    State(state): State<AppState>,
    Path(serial): Path<String>,
    SignedForm { viewer, form }: SignedForm<BmcForm>,
) -> Response {
    let result = crate::services::redfish::subscribe(
        &state.db,
        &state.settings,
        &state.http,
        &viewer.actor,
        &serial,
        &crate::services::redfish::BmcLogin {
            url: &form.url,
            user: form.user.trim(),
            password: &form.password,
        },
    )
    .await
    .map(|_| ());
    let back = format!("/units/{}#bmc", serial.trim());
    after(result, &back, "Subscribed to the BMC's events.", |e| {
        unit_page(&state, viewer, &serial, Some(e))
    })
    .await
}

#[derive(Serialize)]
struct SlotPage {
    chrome: Chrome,
    slot: SlotHistory,
}

async fn slot(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Html<String>, PageError> {
    let id = uuid::Uuid::parse_str(&id).map_err(|_| AppError::not_found("no such slot"))?;
    let slot = units::slot_history(&state.db, &viewer.actor, id).await?;
    render(
        "units/slot.html",
        &SlotPage {
            chrome: Chrome::new(viewer, "stock"),
            slot,
        },
    )
}
