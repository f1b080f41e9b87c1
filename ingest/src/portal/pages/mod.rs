//! The portal's pages, one module each, and what several of them share.
pub(crate) mod deliveries;
pub(crate) mod endpoint;
pub(crate) mod endpoints;
pub(crate) mod event;
pub(crate) mod event_types;

use crate::portal::error::PortalError;
use crate::ApiError;
use hookhub_store::domain::{EventId, SubscriptionId, SubscriptionStatus};
use hookhub_store::repo::{Subscription, GONE_REASON};
use maud::{html, Markup};

/// What a just-made change said, named by the redirect that follows it
/// (`?notice=saved`); pages choose the words, the query only picks them.
#[derive(serde::Deserialize)]
pub(crate) struct NoticeQuery {
    /// Which notice.
    pub notice: Option<String>,
    /// A count the notice mentions (text: a malformed query must still
    /// get the portal's page, not the API's JSON error).
    pub n: Option<String>,
}

/// A subscription id from a path; a malformed one is not found.
pub(crate) fn subscription_id(raw: &str) -> Result<SubscriptionId, PortalError> {
    raw.parse().map_err(|_| PortalError::Api(ApiError::NotFound("endpoint")))
}

/// An event id from a path; a malformed one is not found.
pub(crate) fn event_id(raw: &str) -> Result<EventId, PortalError> {
    raw.parse().map_err(|_| PortalError::Api(ApiError::NotFound("event")))
}

/// The portal's path of an endpoint.
pub(crate) fn endpoint_path(id: &SubscriptionId) -> String {
    format!("/portal/endpoints/{id}")
}

/// Why an endpoint is on or off, as its owner thinks of it: active,
/// disabled because it answered 410, by the circuit breaker, or by hand.
pub(crate) fn status_badge(sub: &Subscription) -> Markup {
    match (sub.status, sub.disabled_reason.as_deref()) {
        (SubscriptionStatus::Active, _) => crate::portal::layout::badge("ok", "Active"),
        (SubscriptionStatus::Listening, _) => crate::portal::layout::badge("muted", "CLI listen"),
        (SubscriptionStatus::Disabled, Some(r)) if r == GONE_REASON => {
            html! { span.badge.bad title=(r) { "Disabled: endpoint gone (410)" } }
        }
        (SubscriptionStatus::Disabled, None | Some("disabled by owner")) => {
            crate::portal::layout::badge("muted", "Disabled by hand")
        }
        (SubscriptionStatus::Disabled, Some(r)) => {
            html! { span.badge.warn title=(r) { "Disabled: circuit breaker" } }
        }
    }
}
