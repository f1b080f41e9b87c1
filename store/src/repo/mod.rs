//! Repositories: every query the hub runs, as methods on [`crate::Store`].
//!
//! Every tenant-facing read takes the caller's [`TenantId`](crate::domain::TenantId)
//! and filters by it, so another tenant's id is simply "not found".

mod access;
mod attempt_recorder;
mod attempts;
mod audit;
mod backlog;
mod breaker;
mod deliveries;
mod delivery_log;
mod event_types;
mod events;
mod fair_claim;
mod fan_out;
mod inbound;
mod ingest;
mod ingest_batch;
mod ingest_queue;
mod maintenance;
mod ordering;
mod outbox;
pub(crate) mod pg;
mod plan_backlog;
mod plan_rate_limits;
mod platform;
mod portal;
mod recordset;
mod rules;
mod subscriptions;
mod tenant_erasure;
mod tenants;
mod test_events;

pub use access::{
    ApiKeyInfo, OAuthApp, Principal, TokenLookup, ACCESS_TOKEN_PREFIX, ACCESS_TOKEN_TTL, CLIENT_ID_PREFIX,
    CLIENT_SECRET_PREFIX,
};
pub use attempt_recorder::{NextStep, RecordedAttempt};
pub use attempts::{Attempt, AttemptsOf, NewAttempt};
pub use audit::{AuditEntry, AuditFilter};
pub use breaker::BreakerPolicy;
pub use deliveries::{Delivery, DeliveryWork, DueDelivery, Loaded, HOLD};
pub use delivery_log::{DeliveryFilter, EndpointHealth, LoggedDelivery, HEALTH_WINDOW};
pub use event_types::{EventTypeInfo, NewEventType};
pub use events::{Event, IngestOutcome, NewEvent};
pub use fan_out::{FanOutEvents, FreshDelivery};
pub use inbound::InboundSource;
pub use ingest_batch::BatchOutcome;
pub(crate) use ingest_queue::IngestQueue;
pub use maintenance::{OutboxStatus, Purged};
pub use ordering::{BlockedKey, KeyBlock, BLOCKED_KEYS_SHOWN};
pub use outbox::{OutboxClaim, OutboxItem, QuarantineReason, QuarantineSelection, QuarantinedOutbox, QuarantinedRow};
pub use plan_backlog::PlanBacklog;
pub use plan_rate_limits::{RateStatus, RateSubject, TOKEN_REQUESTS_PER_ADDRESS, TOKEN_REQUESTS_PER_CLIENT};
pub use platform::{ManagedTenant, NewTenant, TenantFilter, TenantPatch};
pub use portal::{NewPortalSession, PortalLink, PortalSession};
pub use rules::Rule;
pub use subscriptions::{
    Matching, NewSubscription, Programs, Subscription, SubscriptionPatch, UnreadableSubscription, GONE_REASON,
};
pub use tenant_erasure::{Erasure, ERASED_TABLES};
pub use tenants::Tenant;

use crate::StoreError;

/// Converts fetched rows into their domain form, failing on the first corrupt one.
pub(crate) fn parse_all<M, T: TryFrom<M, Error = StoreError>>(rows: Vec<M>) -> Result<Vec<T>, StoreError> {
    rows.into_iter().map(T::try_from).collect()
}

/// Parses a stored id, treating a malformed one as a corrupt row.
pub(crate) fn stored<T: std::str::FromStr>(raw: &str) -> Result<T, StoreError> {
    raw.parse().map_err(|_| StoreError::Corrupt(format!("bad id {raw:?}")))
}
