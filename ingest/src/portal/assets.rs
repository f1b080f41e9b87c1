//! The portal's own stylesheet and script, built into the binary: nothing
//! comes from a CDN, so the portal works where the hub has no internet and
//! tells no third party who looks at it.
use crate::portal::session::viewer;
use crate::AppState;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

/// The stylesheet.
pub(crate) const CSS: &str = include_str!("assets/portal.css");
/// The script: copy buttons and confirmations; every page works without it.
pub(crate) const JS: &str = include_str!("assets/portal.js");

/// Assets change only with the binary: an hour of caching, revalidated after.
const CACHE: &str = "public, max-age=3600";

/// `GET /portal/assets/portal.css`.
pub(crate) async fn css() -> HttpResponse {
    HttpResponse::Ok().content_type("text/css; charset=utf-8").insert_header((header::CACHE_CONTROL, CACHE)).body(CSS)
}

/// `GET /portal/assets/portal.js`.
pub(crate) async fn js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, CACHE))
        .body(JS)
}

/// `GET /portal/theme.css`: the session's brand colour as a custom
/// property (empty without a session or a colour).
pub(crate) async fn theme(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let css = match viewer(&state, &req).await {
        Ok(v) => v.theme.stylesheet(),
        Err(_) => String::new(),
    };
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "private, no-store"))
        .body(css)
}
