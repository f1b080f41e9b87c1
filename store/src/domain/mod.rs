//! Domain types that make invalid states unrepresentable, and the rules
//! the API and the dispatcher must apply alike: how a webhook is signed
//! ([`signer`]), what its body is, which addresses an endpoint may reach
//! ([`target_guard`]).

mod api_key;
pub mod catalog;
mod endpoint_url;
mod event_type;
mod idempotency;
mod ids;
mod inbound_kind;
mod ip_network;
mod ordering;
mod plan;
mod portal_secret;
mod schema_example;
mod scope;
pub mod signer;
mod signing_secret;
mod status;
pub mod target_guard;
mod webhook;

pub use api_key::{ApiKey, ApiKeyHash};
pub use endpoint_url::{EndpointUrl, EndpointUrlError};
pub use event_type::{EventType, EventTypeError, EventTypeFilter};
pub use idempotency::{IdempotencyKey, KeyNamespace};
pub use ids::{
    ApiKeyId, AttemptId, DeliveryId, ErasureId, EventId, EventTypeId, IdError, InboundSourceId, OAuthAppId,
    PortalSessionId, RuleId, SubscriptionId, TenantId,
};
pub use inbound_kind::InboundKind;
pub use ip_network::{InvalidNetwork, IpNetwork};
pub use ordering::{OnDeadLetter, OrderingKey, OrderingKeyError, OrderingMode, OrderingPolicy, MAX_ORDERING_KEY};
pub use plan::{Plan, UnknownPlan, Window};
pub use portal_secret::{PortalSecret, PortalSecretKind};
pub use schema_example::example_from_schema;
pub use scope::{Scope, UnknownScope};
pub use signing_secret::{SecretError, SigningSecret};
pub use status::{AttemptOutcome, DeliveryStatus, SubscriptionStatus, TenantStatus};
pub use webhook::{webhook_body, webhook_json, WebhookBody};

/// Now, truncated to microseconds so that a timestamp survives a round trip
/// through PostgreSQL (which stores microseconds) unchanged.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    chrono::Utc::now().trunc_subsecs(6)
}
