//! How the portal fails: as an HTML page, never JSON, and never with data.
//!
//! API failures keep their meaning and status from [`ApiError`] (the one
//! place errors become HTTP statuses); the portal only adds what is its
//! own (a session that ended, a refused link, a form without its token, a
//! read-only session asking for a change) and renders all of them alike.
use crate::portal::layout;
use crate::ApiError;
use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use hookhub_store::StoreError;

/// Every way a portal request can fail.
#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    /// What the API itself would refuse, or fail at.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// No session cookie, or one whose session ended.
    #[error("Your portal session has ended")]
    SessionEnded,
    /// A magic link that is unknown, expired or already used.
    #[error("This link has expired or was already used")]
    LinkRefused,
    /// A change without this session's CSRF token.
    #[error("This form is no longer valid")]
    BadCsrf,
    /// A change asked of a read-only session.
    #[error("This session can only look")]
    ReadOnly,
}

impl From<StoreError> for PortalError {
    fn from(e: StoreError) -> Self {
        Self::Api(ApiError::from(e))
    }
}

impl PortalError {
    /// What the person can do about it.
    fn hint(&self) -> String {
        match self {
            Self::SessionEnded | Self::LinkRefused => {
                "Open the webhooks portal again from the application you came from; it gives you a new link.".into()
            }
            Self::BadCsrf => "Go back, reload the page and try again.".into(),
            Self::ReadOnly => "Ask for a portal session that may make changes.".into(),
            Self::Api(ApiError::Validation(errors)) => {
                errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; ")
            }
            Self::Api(e) if e.status_code().is_server_error() => "Try again in a moment.".into(),
            Self::Api(_) => "Go back and check what you entered.".into(),
        }
    }
}

impl ResponseError for PortalError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Api(e) => e.status_code(),
            Self::SessionEnded | Self::LinkRefused => StatusCode::UNAUTHORIZED,
            Self::BadCsrf | Self::ReadOnly => StatusCode::FORBIDDEN,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let title = match self {
            Self::Api(ApiError::Validation(_)) => "Some fields need a fix".to_owned(),
            other => other.to_string(),
        };
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, Self::SessionEnded) {
            response.insert_header((header::SET_COOKIE, crate::portal::session::cleared_cookie()));
        }
        let back = !matches!(self, Self::SessionEnded | Self::LinkRefused);
        layout::bare(&mut response, &title, &self.hint(), back)
    }
}
