//! The tenant portal under `/portal`: server-rendered pages where the
//! people who own endpoints see what was sent, what failed and why, and
//! fix it, inside the platform's own app (an iframe) or on their own.
//!
//! One module per job: [`session`] (magic link → cookie, who is looking),
//! [`csrf`] (what a change must carry), [`headers`] (CSP and friends),
//! [`theme`] (the platform's brand), [`layout`] (the page shell),
//! [`assets`] (the built-in CSS and JS), [`error`] (HTML error pages) and
//! [`pages`], one module per page. The pages call the same store methods
//! and the same checks as the API (`routes::subscriptions`), never their own.
mod assets;
mod config;
mod csrf;
mod error;
mod headers;
mod layout;
mod pages;
pub(crate) mod session;
pub(crate) mod theme;

pub use config::{PortalConfig, PortalConfigError};
pub(crate) use session::{redacted_login, LOGIN_PREFIX};

use actix_web::{web, HttpResponse};

/// The `/portal` scope, with its headers middleware.
pub(crate) fn scope() -> actix_web::Scope<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    use pages::{deliveries, endpoint, endpoints, event, event_types};
    web::scope("/portal")
        .wrap(actix_web::middleware::from_fn(headers::middleware))
        .route("", web::get().to(|| async { layout::see_other("/portal/endpoints") }))
        .route("/", web::get().to(|| async { layout::see_other("/portal/endpoints") }))
        .route("/login/{token}", web::get().to(session::login))
        .route("/assets/portal.css", web::get().to(assets::css))
        .route("/assets/portal.js", web::get().to(assets::js))
        .route("/theme.css", web::get().to(assets::theme))
        .route("/endpoints", web::get().to(endpoints::list))
        .route("/endpoints", web::post().to(endpoints::create))
        .route("/endpoints/new", web::get().to(endpoints::new))
        .route("/endpoints/{id}", web::get().to(endpoint::show))
        .route("/endpoints/{id}", web::post().to(endpoints::update))
        .route("/endpoints/{id}/edit", web::get().to(endpoints::edit))
        .route("/endpoints/{id}/secret", web::post().to(endpoint::reveal))
        .route("/endpoints/{id}/rotate", web::post().to(endpoint::rotate))
        .route("/endpoints/{id}/disable", web::post().to(endpoint::disable))
        .route("/endpoints/{id}/enable", web::post().to(endpoint::enable))
        .route("/endpoints/{id}/delete", web::post().to(endpoint::delete))
        .route("/endpoints/{id}/test", web::post().to(endpoint::test))
        .route("/endpoints/{id}/recover", web::post().to(endpoint::recover))
        .route("/endpoints/{id}/blocked-keys/skip", web::post().to(endpoint::skip_key))
        .route("/deliveries", web::get().to(deliveries::list))
        .route("/events/{id}", web::get().to(event::show))
        .route("/events/{id}/redeliver", web::post().to(event::redeliver))
        .route("/event-types", web::get().to(event_types::list))
        .default_service(web::to(not_found))
}

/// Any other path under `/portal`.
async fn not_found() -> Result<HttpResponse, error::PortalError> {
    Err(error::PortalError::Api(crate::ApiError::NotFound("page")))
}
