//! `GET /api/v1/openapi.json`, generated from the handlers' annotations.
use crate::domain::policy::TestResult;
use crate::services::rmas::{OpenRma, RemovedPart, TransitionRequest};
use crate::services::tracking::{Scan, ScanView, Taken, Unmatched};
use crate::services::views::{EventView, NextTransition, ReservedSpare, RmaView, ShipmentView, UnitView};
use crate::state::AppState;
use crate::web::{carriers, depot, field, labels, lifecycle, ops, redfish, reports, rmas, slack, units};
use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "depot", description = "RMA and hardware-depot lifecycle API (SPEC §7)."),
    paths(
        rmas::open, rmas::list, rmas::show, rmas::transition, rmas::events, rmas::watch, rmas::unwatch,
        units::list, units::show, units::stock, units::thresholds, units::set_threshold, units::restock,
        depot::finding_codes, depot::open_session, depot::list_sessions, depot::show_session, depot::scan, depot::close_session,
        lifecycle::table, ops::healthz, ops::metrics,
        labels::label_pdf, labels::label_zpl, labels::packing_slip,
        reports::sla_report,
        reports::fleet, reports::afr, reports::weibull, reports::survival, reports::fixes, reports::quality, reports::spares, reports::set_spares_policy, rmas::dead_on_arrival,
        carriers::easypost, carriers::scan, carriers::unmatched, slack::commands, slack::interactions,
        redfish::events, redfish::rules, redfish::save_rule, redfish::delete_rule,
        field::alarm, field::update, field::checks, field::record_check, field::upload, field::list_attachments, field::download,
    ),
    components(schemas(RmaView, ShipmentView, NextTransition, UnitView, EventView, OpenRma, TransitionRequest, RemovedPart, TestResult, ReservedSpare, Scan, ScanView, Taken, Unmatched, slack::SlashCommand, slack::InteractionForm, crate::domain::redfish::Rule, crate::domain::redfish::Action, crate::domain::redfish::Recommendation, crate::services::redfish::RuleRow, crate::services::redfish::Intake, crate::services::reliability::AfrRow, crate::services::reliability::WeibullRow, crate::services::reliability::Survival, crate::services::reliability::SurvivalPoint, crate::services::reliability::FixRow, crate::domain::reliability::Held, crate::services::quality::Quality, crate::services::spares::SparesPlan, crate::services::spares::SparesLine, crate::services::spares::SparesPolicy, crate::services::quality::QualityRow, crate::services::quality::EarlyFailure, crate::services::quality::PassedBy, crate::services::quality::NoFaultFound, crate::web::rmas::DeadOnArrival, ErrorBody, ErrorDetail)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

/// The error body of SPEC §7.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ErrorDetail {
    code: String,
    message: String,
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/openapi.json", get(|| async { Json(ApiDoc::openapi()) }))
}
