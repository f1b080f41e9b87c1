//! The headers every portal response carries: a strict CSP (nothing but
//! the hub's own styles, scripts and images, plus the session's logo; the
//! configured `frame-ancestors`), no caching of pages, no referrer.
use crate::portal::session::LogoOrigin;
use crate::AppState;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};

/// The CSP of a portal response.
pub(crate) fn content_security_policy(frame_ancestors: &str, logo: Option<&str>) -> String {
    let img = logo.map_or_else(|| "'self'".to_owned(), |origin| format!("'self' {origin}"));
    format!(
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src {img}; form-action 'self'; \
         frame-ancestors {frame_ancestors}; base-uri 'none'; connect-src 'none'"
    )
}

/// Middleware of the `/portal` scope.
pub(crate) async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
    let portal = req.app_data::<web::Data<AppState>>().map(|s| s.portal.clone()).unwrap_or_default();
    let mut res = next.call(req).await?;
    let logo = res.request().extensions().get::<LogoOrigin>().map(|l| l.0.clone());
    let csp = content_security_policy(&portal.frame_ancestors(), logo.as_deref());
    let headers = res.headers_mut();
    let set = |headers: &mut header::HeaderMap, name: header::HeaderName, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    set(headers, header::CONTENT_SECURITY_POLICY, &csp);
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    if !portal.embeddable() {
        // For browsers that predate frame-ancestors.
        set(headers, header::X_FRAME_OPTIONS, "DENY");
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        // Pages hold PHI: never stored by the browser or a proxy.
        set(headers, header::CACHE_CONTROL, "no-store");
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_policy_allows_only_the_hub_and_the_logo() {
        let csp = super::content_security_policy("'none'", Some("https://cdn.example"));
        assert!(csp.contains("default-src 'none'"));
        assert!(csp.contains("img-src 'self' https://cdn.example;"));
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(!csp.contains("unsafe"));
    }
}
