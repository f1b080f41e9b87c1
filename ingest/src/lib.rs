//! Hookhub's HTTP API (actix-web): subscriptions, event ingest, delivery status.
//!
//! Handlers are thin: they parse and validate into domain types, call the
//! store, and map results to JSON. Every error goes through [`ApiError`],
//! the single place where failures become HTTP status codes.
//!
//! It depends on the store only, never on the dispatcher: what it needs of
//! the delivery side at run time (the program sandbox, the broker probe)
//! the binary plugs in through [`delivery_side`].

mod audit;
mod auth;
pub mod backlog_guard;
mod body;
mod client_ip;
pub mod delivery_side;
mod error;
pub mod inbound;
mod input;
mod pagination;
pub mod portal;
mod routes;

pub use audit::AuditSink;
pub use backlog_guard::BacklogGuard;
pub use client_ip::TrustedProxies;
pub use delivery_side::{BrokerProbe, ProgramSandbox};
pub use error::ApiError;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use hookhub_store::domain::{EndpointUrl, EndpointUrlError};
use hookhub_store::outbox_nudge::OutboxNudge;
use hookhub_store::Store;
use std::net::TcpListener;
use std::sync::Arc;

/// Largest request body accepted (the 256 KiB).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// Nudges the in-process outbox relay after an event is written, so
    /// delivery does not wait for its next poll.
    pub outbox_nudge: Option<Arc<OutboxNudge>>,
    /// Whether subscription URLs may be plain `http://` (development).
    pub allow_http_endpoints: bool,
    /// Whether subscription URLs may point at internal addresses
    /// (development); when not, the SSRF guard checks each URL as it is saved.
    pub allow_private_endpoints: bool,
    /// Proxies whose `X-Forwarded-For` names the client in the audit log.
    pub trusted_proxies: TrustedProxies,
    /// The broker readiness checks, when this process needs one.
    pub broker: Option<Arc<dyn BrokerProbe>>,
    /// Where subscriptions' filters and transforms are checked and tried
    /// out: the dispatcher's sandbox, plugged in by the binary.
    pub sandbox: Arc<dyn ProgramSandbox>,
    /// Where API calls are recorded (off in tests that do not need it).
    pub audit: Option<AuditSink>,
    /// Refuses events of a tenant whose backlog is over the bound (off when unset).
    pub backlog_guard: Option<Arc<BacklogGuard>>,
    /// The portal's settings (who may frame it, its public URL).
    pub portal: portal::PortalConfig,
}

impl AppState {
    /// Refuses, as a 422 on `field`, a subscription URL the SSRF guard would
    /// refuse: an internal literal address, or a name that does not resolve
    /// or resolves to any internal address. Deliveries check again, since
    /// DNS answers change.
    pub(crate) async fn check_endpoint(&self, url: &EndpointUrl, field: &str) -> Result<(), ApiError> {
        if self.allow_private_endpoints {
            return Ok(());
        }
        let parsed = url::Url::parse(url.as_str()).map_err(|_| ApiError::field(field, EndpointUrlError::Invalid))?;
        hookhub_store::domain::target_guard::check_endpoint(&parsed).await.map_err(|why| ApiError::field(field, why))
    }

    /// Admits an event of `tenant`, or refuses it with `429
    /// tenant_backlog_full` when the tenant's backlog is over the bound.
    /// Every path that accepts a tenant's events through the API calls this
    /// first (single events, batches); gateway callbacks do not, see
    /// `routes::inbound::receive`.
    pub fn admit_event(&self, tenant: &hookhub_store::domain::TenantId) -> Result<(), ApiError> {
        self.backlog_guard.as_ref().map_or(Ok(()), |guard| guard.check(tenant))
    }

    /// Counts a newly accepted event of `tenant` and nudges an in-process
    /// relay for it.
    pub fn event_accepted(&self, tenant: &hookhub_store::domain::TenantId) {
        hookhub_store::metrics::metrics().events_accepted.inc();
        if let Some(nudge) = &self.outbox_nudge {
            nudge.accepted(tenant);
        }
    }
}

/// Registers every route; shared by the server and by tests.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(error::json_config())
        .app_data(error::query_config())
        .app_data(error::path_config())
        .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
        .configure(routes::configure)
        .service(portal::scope());
}

/// Starts the API and the probes on an already-bound listener (tests bind
/// port 0); the metrics are served by [`serve_ops`] only.
pub fn serve(listener: TcpListener, state: AppState, workers: usize) -> std::io::Result<Server> {
    run(listener, state, workers, configure)
}

/// Starts the metrics listener: `/healthz`, `/readyz` and `/metrics`, for
/// every role (relay and dispatcher have no API but must be probed and
/// scraped; the API's port never serves the metrics).
pub fn serve_ops(listener: TcpListener, state: AppState) -> std::io::Result<Server> {
    run(listener, state, 1, routes::configure_ops)
}

/// The access log: one INFO line per request, `METHOD PATH HTTP/x STATUS
/// TIMEms`, with callback tokens redacted from the path.
fn access_log() -> actix_web::middleware::Logger {
    actix_web::middleware::Logger::new("%{request}xi %s %Dms")
        .custom_request_replace("request", |req| {
            let query = req.query_string();
            let query = if query.is_empty() { String::new() } else { format!("?{query}") };
            format!("{} {}{query} {:?}", req.method(), routes::redacted_path(req.path()), req.version())
        })
        .log_target("hookhub::http")
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
            .wrap(access_log())
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
