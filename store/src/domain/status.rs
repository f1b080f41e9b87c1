//! The states of tenants, subscriptions and deliveries, and the outcomes of
//! attempts.
use sea_orm::entity::prelude::*;
use serde::Serialize;

/// Whether a subscription receives deliveries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, utoipa::ToSchema)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    /// Receives matching events.
    #[sea_orm(string_value = "active")]
    Active,
    /// Receives nothing: disabled by its owner or by a `410 Gone`.
    #[sea_orm(string_value = "disabled")]
    Disabled,
    /// A `hookhub listen` session: events are streamed to the CLI, never POSTed.
    #[sea_orm(string_value = "listening")]
    Listening,
}

/// Where the delivery of one event to one subscription stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, utoipa::ToSchema)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt at `next_attempt_at`.
    #[sea_orm(string_value = "pending")]
    Pending,
    /// The endpoint answered 2xx.
    #[sea_orm(string_value = "succeeded")]
    Succeeded,
    /// Out of attempts, or the endpoint is gone: the dead letter.
    #[sea_orm(string_value = "failed")]
    Failed,
    /// The subscription's filter rejected the event, or its transform
    /// cancelled it: not sent, by the subscriber's choice.
    #[sea_orm(string_value = "filtered")]
    Filtered,
}

/// What one attempt led to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, utoipa::ToSchema)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// 2xx: the delivery is done.
    #[sea_orm(string_value = "succeeded")]
    Succeeded,
    /// Failed, and another attempt is scheduled.
    #[sea_orm(string_value = "retrying")]
    Retrying,
    /// Failed for good (last attempt, or 410 Gone).
    #[sea_orm(string_value = "failed")]
    Failed,
    /// Not sent: the subscription's filter or transform dropped the event.
    /// Neither a failure nor retried, and the circuit breaker ignores it.
    #[sea_orm(string_value = "filtered")]
    Filtered,
}

/// Whether a tenant's events are accepted and delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, utoipa::ToSchema)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    /// Events accepted and delivered.
    #[sea_orm(string_value = "active")]
    Active,
    /// Offboarded for now: new events are refused (409 `tenant_suspended`)
    /// and deliveries are held, not dropped, until it is resumed.
    #[sea_orm(string_value = "suspended")]
    Suspended,
    /// Being erased: refused like a suspended tenant until its row goes.
    #[sea_orm(string_value = "deleting")]
    Deleting,
}

impl TenantStatus {
    /// Whether the tenant's events are refused and its deliveries held.
    pub fn is_paused(self) -> bool {
        self != Self::Active
    }
}
