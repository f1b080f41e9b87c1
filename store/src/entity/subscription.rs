//! `subscriptions`: an endpoint URL, the event types it wants, and its secret.
use crate::domain::{OnDeadLetter, OrderingMode, SubscriptionStatus};
use sea_orm::entity::prelude::*;

/// A subscription row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "subscriptions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub url: String,
    pub description: String,
    /// JSON array of event type names, or `["*"]`.
    pub event_types: Json,
    /// `whsec_...`; wrapped in `SigningSecret` as soon as it is read.
    pub secret: String,
    pub status: SubscriptionStatus,
    pub disabled_reason: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The secret before the last rotation, still signed with until it expires.
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<DateTimeUtc>,
    /// Consecutive failed attempts; the circuit breaker watches it.
    pub failure_streak: i32,
    /// When the current run of failures began.
    pub failing_since: Option<DateTimeUtc>,
    /// Deliveries per second the receiver accepts, if it set a limit.
    pub rate_limit_per_second: Option<i32>,
    /// Whether deliveries keep their events' order per ordering key.
    pub ordering: OrderingMode,
    /// What an ordered subscription does with a key whose delivery is dead-lettered.
    pub on_dead_letter: OnDeadLetter,
    /// JavaScript expression over `event`; events it rejects are filtered.
    pub filter: Option<String>,
    /// JavaScript defining `handler(webhook)`, which shapes what is sent.
    pub transform: Option<String>,
}

/// No navigable relations: queries join explicitly.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
