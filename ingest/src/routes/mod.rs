//! Route table and the handlers' shared helpers.

mod access;
mod attempts;
mod batch;
mod erasures;
mod event_types;
mod events;
mod health;
mod hooks;
mod inbound;
mod listen;
mod me;
mod ordering;
mod portal_sessions;
mod rules;
pub(crate) mod subscriptions;
mod tenants;
mod transforms;

use crate::ApiError;
use actix_web::http::Method;
use actix_web::{web, HttpResponse, Route};
use std::str::FromStr;

pub(crate) mod openapi;

/// The path as logs may show it: a gateway callback's token and a portal
/// magic link's token are redacted.
pub(crate) fn redacted_path(path: &str) -> std::borrow::Cow<'_, str> {
    match crate::portal::redacted_login(path) {
        Some(redacted) => redacted.into(),
        None => inbound::redacted_path(path),
    }
}

/// One operation: registered on the server and listed in the OpenAPI
/// document from the same table, so the two cannot drift apart unnoticed.
pub(crate) struct Operation {
    /// The HTTP method.
    pub method: Method,
    /// The path, in the `{param}` template form both actix and OpenAPI use.
    pub path: &'static str,
    /// The handler (a fresh `Route` per worker: actix builds the app once per thread).
    route: fn() -> Route,
}

macro_rules! op {
    ($method:ident $path:literal => $handler:path) => {
        Operation { method: Method::$method, path: $path, route: || web::route().to($handler) }
    };
}

/// The probes, served on the API's port and on the metrics listener.
pub(crate) fn probe_operations() -> Vec<Operation> {
    vec![op!(GET "/healthz" => health::healthz), op!(GET "/readyz" => health::readyz)]
}

/// The metrics: on the metrics listener only, which is reached from inside
/// the cluster, never on the API's public port (and not in the API's
/// OpenAPI document).
fn metrics_operations() -> Vec<Operation> {
    vec![op!(GET "/metrics" => health::metrics)]
}

/// The tenant API under `/v1`. Order matters where paths overlap: a literal
/// segment (`/v1/hooks/samples`) before a parameter (`/v1/hooks/{id}`).
pub(crate) fn api_operations() -> Vec<Operation> {
    vec![
        op!(GET "/v1/openapi.json" => openapi::serve),
        op!(POST "/v1/subscriptions" => subscriptions::create),
        op!(GET "/v1/subscriptions" => subscriptions::list),
        op!(GET "/v1/subscriptions/{id}" => subscriptions::get),
        op!(PATCH "/v1/subscriptions/{id}" => subscriptions::update),
        op!(DELETE "/v1/subscriptions/{id}" => subscriptions::delete),
        op!(GET "/v1/subscriptions/{id}/secret" => subscriptions::secret),
        op!(POST "/v1/subscriptions/{id}/secret/rotate" => subscriptions::rotate_secret),
        op!(POST "/v1/subscriptions/{id}/enable" => subscriptions::enable),
        op!(POST "/v1/subscriptions/{id}/recover" => subscriptions::recover),
        op!(POST "/v1/subscriptions/{id}/test" => subscriptions::test),
        op!(POST "/v1/subscriptions/{id}/transform/test" => transforms::test),
        op!(GET "/v1/subscriptions/{id}/attempts" => attempts::of_subscription),
        op!(GET "/v1/subscriptions/{id}/blocked-keys" => ordering::list),
        op!(POST "/v1/subscriptions/{id}/blocked-keys/{key}/skip" => ordering::skip),
        op!(POST "/v1/events" => events::ingest),
        op!(POST "/v1/events/batch" => batch::ingest),
        op!(GET "/v1/events" => events::list),
        op!(GET "/v1/events/{id}" => events::get),
        op!(GET "/v1/events/{id}/attempts" => attempts::of_event),
        op!(POST "/v1/events/{id}/redeliver" => events::redeliver),
        op!(POST "/v1/hooks" => hooks::subscribe),
        op!(GET "/v1/hooks/samples" => hooks::samples),
        op!(DELETE "/v1/hooks/{id}" => hooks::unsubscribe),
        op!(GET "/v1/event-types" => event_types::list),
        op!(POST "/v1/event-types" => event_types::create),
        op!(PATCH "/v1/event-types/{name}" => event_types::update),
        op!(GET "/v1/rules" => rules::list),
        op!(POST "/v1/rules" => rules::create),
        op!(DELETE "/v1/rules/{id}" => rules::delete),
        op!(GET "/v1/inbound-sources" => inbound::list),
        op!(POST "/v1/inbound-sources" => inbound::create),
        op!(DELETE "/v1/inbound-sources/{id}" => inbound::delete),
        op!(POST "/v1/inbound/{source}/{token}" => inbound::receive),
        op!(POST "/v1/listen" => listen::start),
        op!(GET "/v1/listen/{id}/stream" => listen::stream),
        op!(POST "/v1/oauth/token" => access::token),
        op!(GET "/v1/api-keys" => access::list_keys),
        op!(POST "/v1/api-keys" => access::create_key),
        op!(DELETE "/v1/api-keys/{id}" => access::delete_key),
        op!(GET "/v1/oauth-apps" => access::list_apps),
        op!(POST "/v1/oauth-apps" => access::create_app),
        op!(DELETE "/v1/oauth-apps/{id}" => access::delete_app),
        op!(GET "/v1/audit-log" => access::audit_log),
        op!(GET "/v1/me" => me::get),
        op!(POST "/v1/portal-sessions" => portal_sessions::create),
        op!(POST "/v1/tenants" => tenants::create),
        op!(GET "/v1/tenants" => tenants::list),
        op!(GET "/v1/tenants/{id}" => tenants::get),
        op!(PATCH "/v1/tenants/{id}" => tenants::update),
        op!(POST "/v1/tenants/{id}/suspend" => tenants::suspend),
        op!(POST "/v1/tenants/{id}/resume" => tenants::resume),
        op!(DELETE "/v1/tenants/{id}" => erasures::delete),
        op!(GET "/v1/erasures/{id}" => erasures::get),
    ]
}

/// Mounts the probes and the metrics (the metrics listener).
pub fn configure_ops(cfg: &mut web::ServiceConfig) {
    mount(cfg, probe_operations());
    mount(cfg, metrics_operations());
}

/// Mounts the API and the probes (the API's port).
pub fn configure(cfg: &mut web::ServiceConfig) {
    mount(cfg, probe_operations());
    mount(cfg, api_operations());
}

/// One resource per path, holding each of its methods; any other method
/// on a known path is a 405 in our error format, with the `Allow` header.
fn mount(cfg: &mut web::ServiceConfig, operations: Vec<Operation>) {
    let mut paths: Vec<&'static str> = Vec::new();
    for op in &operations {
        if !paths.contains(&op.path) {
            paths.push(op.path);
        }
    }
    for path in paths {
        let on_path = || operations.iter().filter(move |op| op.path == path);
        let allow = on_path().map(|op| op.method.as_str()).collect::<Vec<_>>().join(", ");
        let resource =
            on_path().fold(web::resource(path), |resource, op| resource.route((op.route)().method(op.method.clone())));
        cfg.service(resource.default_service(web::to(move || {
            let allow = allow.clone();
            async move { Err::<HttpResponse, _>(ApiError::MethodNotAllowed { allow }) }
        })));
    }
}

/// Any path we do not serve.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("route"))
}

/// The `{id}` segment of a path, for the OpenAPI document.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // never built: only its derived parameter list is used
pub(crate) struct IdPath {
    /// The resource's id, like `sub_...` or `evt_...`; another tenant's id is not found.
    id: String,
}

/// Parses a path id; a malformed id is simply not found.
fn path_id<T: FromStr>(raw: &str, what: &'static str) -> Result<T, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound(what))
}
