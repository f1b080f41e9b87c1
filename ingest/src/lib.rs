//! Hookhub's HTTP API (actix-web): subscriptions, event ingest, delivery status.
//!
//! Handlers are thin: they parse and validate into domain types, call the
//! store, and map results to JSON. Every error goes through [`ApiError`],
//! the single place where failures become HTTP status codes.

mod audit;
mod auth;
mod body;
mod error;
pub mod inbound;
mod input;
mod pagination;
mod routes;

pub use audit::AuditSink;
pub use error::ApiError;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use hookhub_store::Store;
use std::net::TcpListener;
use std::sync::Arc;
use tokio::sync::Notify;

/// Largest request body accepted (the 256 KiB).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// Wakes the in-process outbox relay after an event is written, so
    /// delivery does not wait for its next poll.
    pub outbox_wake: Option<Arc<Notify>>,
    /// Whether subscription URLs may be plain `http://` (development).
    pub allow_http_endpoints: bool,
    /// The broker readiness checks, when this process needs one.
    pub broker_url: Option<String>,
    /// Where API calls are recorded (off in tests that do not need it).
    pub audit: Option<AuditSink>,
}

impl AppState {
    /// Counts a newly accepted event and wakes an in-process relay for it.
    pub fn event_accepted(&self) {
        hookhub_dispatcher::metrics::metrics().events_accepted.inc();
        if let Some(wake) = &self.outbox_wake {
            wake.notify_one();
        }
    }
}

/// Registers every route; shared by the server and by tests.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(error::json_config())
        .app_data(error::query_config())
        .app_data(error::path_config())
        .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
        .configure(routes::configure);
}

/// Starts the API on an already-bound listener (tests bind port 0).
pub fn serve(listener: TcpListener, state: AppState, workers: usize) -> std::io::Result<Server> {
    run(listener, state, workers, configure)
}

/// Starts only `/healthz`, `/readyz` and `/metrics`, for the relay and
/// dispatcher roles, which have no API but must be probed and scraped.
pub fn serve_ops(listener: TcpListener, state: AppState) -> std::io::Result<Server> {
    run(listener, state, 1, routes::configure_ops)
}

fn run(
    listener: TcpListener,
    state: AppState,
    workers: usize,
    routes: fn(&mut web::ServiceConfig),
) -> std::io::Result<Server> {
    let state = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .wrap(actix_web::middleware::from_fn(audit::middleware))
            .wrap(actix_web::middleware::Logger::new("%r %s %Dms").log_target("hookhub::http"))
            .app_data(state.clone())
            .configure(routes)
            .default_service(web::to(routes::not_found))
    })
    .workers(workers.max(1))
    .shutdown_timeout(10)
    .disable_signals()
    .listen(listener)?
    .run();
    Ok(server)
}
