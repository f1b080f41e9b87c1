//! Route table and the handlers' shared helpers.

mod access;
mod attempts;
mod event_types;
mod events;
mod health;
mod hooks;
mod inbound;
mod listen;
mod rules;
mod subscriptions;

use crate::ApiError;
use actix_web::web;
use std::str::FromStr;

/// Mounts the probes and the metrics.
pub fn configure_ops(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(health::metrics));
}

/// Mounts every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    configure_ops(cfg);
    cfg.service(
        web::scope("/v1")
            .service(
                web::resource("/subscriptions")
                    .post(subscriptions::create)
                    .get(subscriptions::list)
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                web::resource("/subscriptions/{id}")
                    .get(subscriptions::get)
                    .patch(subscriptions::update)
                    .delete(subscriptions::delete)
                    .default_service(web::to(method_not_allowed)),
            )
            .route("/subscriptions/{id}/secret", web::get().to(subscriptions::secret))
            .route("/subscriptions/{id}/secret/rotate", web::post().to(subscriptions::rotate_secret))
            .route("/subscriptions/{id}/enable", web::post().to(subscriptions::enable))
            .route("/subscriptions/{id}/recover", web::post().to(subscriptions::recover))
            .route("/subscriptions/{id}/attempts", web::get().to(attempts::of_subscription))
            .service(
                web::resource("/events")
                    .post(events::ingest)
                    .get(events::list)
                    .default_service(web::to(method_not_allowed)),
            )
            .route("/events/{id}", web::get().to(events::get))
            .route("/events/{id}/attempts", web::get().to(attempts::of_event))
            .route("/events/{id}/redeliver", web::post().to(events::redeliver))
            .route("/hooks", web::post().to(hooks::subscribe))
            .route("/hooks/samples", web::get().to(hooks::samples))
            .route("/hooks/{id}", web::delete().to(hooks::unsubscribe))
            .service(
                web::resource("/event-types")
                    .get(event_types::list)
                    .post(event_types::create)
                    .default_service(web::to(method_not_allowed)),
            )
            .route("/event-types/{name}", web::patch().to(event_types::update))
            .service(
                web::resource("/rules")
                    .get(rules::list)
                    .post(rules::create)
                    .default_service(web::to(method_not_allowed)),
            )
            .route("/rules/{id}", web::delete().to(rules::delete))
            .service(
                web::resource("/inbound-sources")
                    .get(inbound::list)
                    .post(inbound::create)
                    .default_service(web::to(method_not_allowed)),
            )
            .route("/inbound-sources/{id}", web::delete().to(inbound::delete))
            .route("/inbound/{source}/{token}", web::post().to(inbound::receive))
            .route("/listen", web::post().to(listen::start))
            .route("/oauth/token", web::post().to(access::token))
            .service(
                web::resource("/api-keys")
                    .get(access::list_keys)
                    .post(access::create_key)
                    .default_service(web::to(method_not_allowed)),
            )
            .route("/api-keys/{id}", web::delete().to(access::delete_key))
            .service(
                web::resource("/oauth-apps")
                    .get(access::list_apps)
                    .post(access::create_app)
                    .default_service(web::to(method_not_allowed)),
            )
            .route("/oauth-apps/{id}", web::delete().to(access::delete_app))
            .route("/audit-log", web::get().to(access::audit_log))
            .route("/listen/{id}/stream", web::get().to(listen::stream)),
    );
}

/// Any path we do not serve.
pub async fn not_found() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::NotFound("route"))
}

async fn method_not_allowed() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}

/// Parses a path id; a malformed id is simply not found.
fn path_id<T: FromStr>(raw: &str, what: &'static str) -> Result<T, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound(what))
}
