//! What every request handler can reach: the database, the settings, metrics, the outbound HTTP
//! client and the precomputed figures. Its own module, so that `web/` and `app` need not import
//! each other.
use crate::config::Settings;
use metrics_exporter_prometheus::PrometheusHandle;
use sea_orm::DatabaseConnection;
use std::sync::Arc;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub settings: Arc<Settings>,
    pub metrics: PrometheusHandle,
    /// For calls to other systems (Slack's response URLs): public hosts only, no redirects.
    pub http: reqwest::Client,
    /// The reliability figures, precomputed (`DEPOT_RELIABILITY_REFRESH_S`).
    pub figures: Arc<crate::services::reliability::Figures>,
}
