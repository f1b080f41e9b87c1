//! Who is looking: the magic link's exchange for a session cookie, and the
//! [`Viewer`] extractor every page starts from.
//!
//! The link carries its token in the path, so the exchange answers with a
//! redirect: the token leaves the address bar (and the history, and any
//! `Referer`) at once. The access log and the audit log redact it
//! ([`redacted_login`]).
use crate::audit::AuditedAs;
use crate::portal::error::PortalError;
use crate::portal::theme::Theme;
use crate::AppState;
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest, HttpResponse};
use hookhub_store::domain::{PortalSecret, PortalSecretKind};
use hookhub_store::repo::PortalSession;
use std::future::Future;
use std::pin::Pin;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "hookhub_portal";

/// Where a magic link points; the token follows.
pub(crate) const LOGIN_PREFIX: &str = "/portal/login/";

/// An open session and what its pages need from it.
pub(crate) struct Viewer {
    /// The session: its tenant, whether it is read-only, when it ends.
    pub session: PortalSession,
    /// The token every form of this session carries.
    pub csrf: String,
    /// The platform's brand.
    pub theme: Theme,
}

impl Viewer {
    /// Whether an event type is offered to this session.
    pub fn offers(&self, event_type: &str) -> bool {
        self.session.event_types.as_ref().is_none_or(|only| only.iter().any(|t| t == event_type))
    }
}

/// The logo origin the page's CSP must allow (a request extension).
#[derive(Clone)]
pub(crate) struct LogoOrigin(pub String);

/// The path with a magic link's token redacted, for logs; `None` when the
/// path is not a magic link.
pub(crate) fn redacted_login(path: &str) -> Option<String> {
    path.starts_with(LOGIN_PREFIX).then(|| format!("{LOGIN_PREFIX}[redacted]"))
}

/// The audit log's name for a session: its public id, never a secret.
fn credential(session: &PortalSession) -> String {
    format!("portal:{}", session.id)
}

/// Files the request in the audit log under the session's tenant and
/// lets the CSP allow its logo.
fn mark(req: &HttpRequest, state: &AppState, session: &PortalSession, theme: &Theme) {
    let mut ext = req.extensions_mut();
    ext.insert(AuditedAs { tenant: session.tenant_id.clone(), credential: credential(session) });
    if let Some(origin) = theme.logo_url.as_deref().and_then(|l| state.portal.logo_origin(l)) {
        ext.insert(LogoOrigin(origin));
    }
}

/// Whether the portal is reached over https (the cookie is then `Secure`).
fn is_https(state: &AppState, req: &HttpRequest) -> bool {
    match state.portal.public_url() {
        Some(url) => url.starts_with("https://"),
        None => req.connection_info().scheme() == "https",
    }
}

/// The session cookie. Over https it is `Secure`, and when the portal may
/// be framed by another site `SameSite=None; Partitioned`, which is what
/// lets a browser send it inside the platform's iframe (CSRF tokens, not
/// SameSite, guard the changes); otherwise `SameSite=Lax`, which keeps the
/// cookie off every cross-site request but the link's own navigation.
fn session_cookie(value: &str, max_age: i64, https: bool, embeddable: bool) -> String {
    let site = match (https, embeddable) {
        (true, true) => "SameSite=None; Secure; Partitioned",
        (true, false) => "SameSite=Lax; Secure",
        (false, _) => "SameSite=Lax",
    };
    format!("{COOKIE}={value}; Path=/portal; HttpOnly; {site}; Max-Age={max_age}")
}

/// A cookie that removes the session cookie.
pub(crate) fn cleared_cookie() -> String {
    format!("{COOKIE}=; Path=/portal; HttpOnly; SameSite=Lax; Max-Age=0")
}

/// `GET /portal/login/{token}`: exchanges a magic link for a session and
/// redirects to the endpoints, leaving no token in the address bar.
pub(crate) async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let link = PortalSecret::presented(PortalSecretKind::Link, &token).ok_or(PortalError::LinkRefused)?;
    let (session, cookie) = state.store.open_portal_link(&link).await?.ok_or(PortalError::LinkRefused)?;
    let theme = Theme::stored(session.theme.as_ref(), &state.portal);
    mark(&req, &state, &session, &theme);
    // Rounded up: the session just began, and "3600" reads as the hour it lasts.
    let max_age = ((session.expires_at - hookhub_store::domain::now()).num_milliseconds() + 999).max(0) / 1000;
    let cookie = session_cookie(cookie.expose(), max_age, is_https(&state, &req), state.portal.embeddable());
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/portal/endpoints"))
        .insert_header((header::SET_COOKIE, cookie))
        .finish())
}

/// The session cookie's value, from the `Cookie` headers.
fn cookie_value(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

/// Resolves the request's session, or fails with the "session ended" page.
pub(crate) async fn viewer(state: &AppState, req: &HttpRequest) -> Result<Viewer, PortalError> {
    let cookie = cookie_value(req)
        .and_then(|value| PortalSecret::presented(PortalSecretKind::Session, value))
        .ok_or(PortalError::SessionEnded)?;
    let session = state.store.portal_session(&cookie).await?.ok_or(PortalError::SessionEnded)?;
    let theme = Theme::stored(session.theme.as_ref(), &state.portal);
    mark(req, state, &session, &theme);
    Ok(Viewer { csrf: cookie.derive("csrf"), session, theme })
}

impl FromRequest for Viewer {
    type Error = PortalError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, PortalError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state =
                req.app_data::<web::Data<AppState>>().cloned().ok_or(PortalError::Api(crate::ApiError::Internal))?;
            viewer(&state, &req).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_http_only_and_same_site() {
        let plain = session_cookie("v", 60, false, false);
        assert!(plain.contains("HttpOnly") && plain.contains("SameSite=Lax") && !plain.contains("Secure"));
        let framed = session_cookie("v", 60, true, true);
        assert!(framed.contains("Secure") && framed.contains("SameSite=None") && framed.contains("Partitioned"));
        assert_eq!(redacted_login("/portal/login/hhpl_abc").as_deref(), Some("/portal/login/[redacted]"));
        assert_eq!(redacted_login("/portal/endpoints"), None);
    }
}
