//! Changes: every portal `POST` is a [`Change`], which holds only when the
//! session may change things and the form carries the session's CSRF token.
//!
//! The token is derived from the session cookie (see
//! `PortalSecret::derive`), so another site can neither read nor guess it;
//! it is compared in constant time. Read-only sessions are refused here,
//! on the server, whatever the page showed.
use crate::portal::error::PortalError;
use crate::portal::session::{viewer, Viewer};
use crate::AppState;
use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use std::future::Future;
use std::pin::Pin;
use subtle::ConstantTimeEq;

/// The name of the form field holding the token.
pub(crate) const FIELD: &str = "csrf";

/// A submitted form's fields, in order (a field may repeat, as checkboxes do).
#[derive(Debug, Default)]
pub(crate) struct Fields(Vec<(String, String)>);

impl Fields {
    /// Parses an `application/x-www-form-urlencoded` body.
    pub fn parse(body: &[u8]) -> Self {
        Self(url::form_urlencoded::parse(body).into_owned().collect())
    }

    /// The first value of `name`, trimmed; `None` when absent or blank.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim()).filter(|v| !v.is_empty())
    }

    /// The value of `name` read as a `T`, or a field error saying `expected`.
    pub fn parsed<T: std::str::FromStr>(&self, name: &str, expected: &str) -> Result<T, crate::ApiError> {
        self.get(name).and_then(|v| v.parse().ok()).ok_or_else(|| crate::ApiError::field(name, expected))
    }

    /// Every value of `name`.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).collect()
    }
}

/// A permitted change: the session, and the form it sent.
pub(crate) struct Change {
    /// Who asks.
    pub viewer: Viewer,
    /// What they sent.
    pub form: Fields,
}

/// Whether `presented` is the session's token.
fn token_matches(expected: &str, presented: Option<&str>) -> bool {
    presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(expected.as_bytes())))
}

impl FromRequest for Change {
    type Error = PortalError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, PortalError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let body = web::Bytes::from_request(&req, payload);
        Box::pin(async move {
            let state =
                req.app_data::<web::Data<AppState>>().cloned().ok_or(PortalError::Api(crate::ApiError::Internal))?;
            let viewer = viewer(&state, &req).await?;
            if viewer.session.read_only {
                return Err(PortalError::ReadOnly);
            }
            let body = body.await.map_err(|_| PortalError::BadCsrf)?;
            let form = Fields::parse(&body);
            if !token_matches(&viewer.csrf, form.get(FIELD)) {
                return Err(PortalError::BadCsrf);
            }
            Ok(Self { viewer, form })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_repeat_and_tokens_must_match() {
        let f = Fields::parse(b"csrf=abc&event_types=a.b&event_types=c.d&blank=+");
        assert_eq!(f.all("event_types"), ["a.b", "c.d"]);
        assert_eq!(f.get("blank"), None);
        assert!(token_matches("abc", f.get(FIELD)));
        assert!(!token_matches("abd", f.get(FIELD)));
        assert!(!token_matches("abc", None));
    }
}
