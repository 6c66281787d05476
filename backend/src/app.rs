//! The application: the router with its middleware, and a server that binds and
//! reports its port before it runs (port 0 in tests).
use crate::config::Settings;
use crate::error::AppError;
use crate::state::AppState;
use crate::web;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Request, header};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use migrations::{Migrator, MigratorTrait};
use sea_orm::DatabaseConnection;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

/// The process-wide Prometheus recorder; installed once, shared by every app in the process.
fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .install_recorder()
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder().handle())
        })
        .clone()
}

/// Brings the schema up to date. On PostgreSQL, instances starting together take turns: the first
/// migrates under an advisory lock held by its transaction, the others wait and find nothing to do.
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    use sea_orm::{ConnectionTrait, DbBackend, TransactionTrait};
    if db.get_database_backend() == DbBackend::Postgres {
        let txn = db.begin().await?;
        txn.execute_unprepared("SELECT pg_advisory_xact_lock(7420001)").await?;
        Migrator::up(&txn, None).await?;
        txn.commit().await?;
    } else {
        Migrator::up(db, None).await?;
    }
    Ok(())
}

/// The routes of every resource, with request ids, tracing, metrics and the body limit.
pub fn router(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .merge(web::rmas::routes())
        .merge(web::units::routes())
        .merge(web::carriers::routes())
        .merge(web::slack::routes())
        .merge(web::redfish::routes())
        .merge(web::depot::routes())
        .merge(web::labels::routes())
        .merge(web::field::routes())
        .merge(web::reports::routes())
        .merge(web::lifecycle::routes())
        .merge(web::openapi::routes())
        .merge(web::ops::routes())
        .merge(web::pages::routes())
        .fallback(not_found)
        .layer(axum::middleware::from_fn(web::extract::refuse_nul_in_url))
        .layer(axum::middleware::from_fn(web::extract::errors_in_our_shape))
        .layer(axum::middleware::from_fn(web::ops::track))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
            ),
        ))
        // Answers hold customers' data: no browser or proxy keeps them (static files say otherwise).
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(DefaultBodyLimit::max(web::extract::JSON_LIMIT))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("request", method = %req.method(), uri = %req.uri(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

/// Unknown paths: the JSON error under `/api`, the error page elsewhere.
async fn not_found(uri: axum::http::Uri) -> axum::response::Response {
    use axum::response::IntoResponse;
    let err = AppError::not_found(format!("nothing at {}", uri.path()));
    if uri.path().starts_with("/api/") {
        err.into_response()
    } else {
        web::pages::PageError(err).into_response()
    }
}

/// A bound, migrated server that has not started serving yet.
pub struct App {
    listener: TcpListener,
    router: Router,
    pub state: AppState,
}

impl App {
    /// Connects, migrates and binds `settings.bind`.
    pub async fn build(settings: Settings) -> anyhow::Result<App> {
        let db = crate::db::connect(&settings).await?;
        migrate(&db).await?;
        let listener = TcpListener::bind(settings.bind).await?;
        let state = AppState {
            db,
            http: crate::outbound::client(&settings.webhook_allow)?,
            figures: Arc::new(crate::services::reliability::Figures::new(settings.reliability_refresh)),
            settings: Arc::new(settings),
            metrics: metrics_handle(),
        };
        Ok(App {
            listener,
            router: router(state.clone()),
            state,
        })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or_default()
    }

    /// Serves, delivers the outbox and runs the scheduler until `shutdown` completes; then finishes
    /// in-flight requests and stops the background work.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let settings = &self.state.settings;
        let dispatcher = crate::mail::dispatch::Dispatcher::new(self.state.db.clone(), settings)?;
        let mail = tokio::spawn(dispatcher.run(stopped.clone()));
        let jobs = tokio::spawn(crate::jobs::run(
            self.state.db.clone(),
            settings.base_url.clone(),
            settings.jobs_interval,
            stopped,
        ));
        let figures = tokio::spawn(warm_figures(self.state.clone(), stop.subscribe()));
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await?;
        let _ = stop.send(true);
        let _ = tokio::join!(mail, jobs, figures);
        // Closing the pool lets SQLite fold its write-ahead log into the database file, so the
        // file alone is complete (a copy, a read-only mount, a restart elsewhere).
        self.state.db.clone().close().await?;
        Ok(())
    }
}

/// Keeps the whole fleet's reliability figures computed, so that no page waits for them: at start,
/// then every refresh interval (nothing when they are computed per request).
async fn warm_figures(state: AppState, mut stopped: tokio::sync::watch::Receiver<bool>) {
    let every = state.figures.interval();
    if every.is_zero() {
        return;
    }
    loop {
        if let Err(e) = state.figures.refresh(&state.db, None).await {
            tracing::warn!(error = %e, "computing reliability figures");
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stopped.changed() => return,
        }
    }
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
