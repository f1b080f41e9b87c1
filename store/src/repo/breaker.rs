//! The circuit breaker: what a recorded attempt does to its subscription
//! (clears or extends its failure streak) and when a subscription that
//! keeps failing is switched off, announced as `subscription.disabled`.
use super::attempt_recorder::leaves_subscription_alone;
use super::events::Event;
use super::subscriptions::Subscription;
use super::{NextStep, RecordedAttempt};
use crate::cipher::Cipher;
use crate::domain::{now, EventId, SubscriptionId};
use crate::entity::subscription;
use crate::{Store, StoreError};
use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

/// When a subscription that keeps failing is switched off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// Consecutive failed attempts that disable it; 0 turns this test off.
    pub max_failures: u32,
    /// How long it may fail without a single success before it is disabled.
    pub max_failing: Duration,
}

impl Default for BreakerPolicy {
    /// Five days of failures, as Svix does; or 1,000 failed attempts in a row.
    fn default() -> Self {
        Self { max_failures: 1_000, max_failing: Duration::days(5) }
    }
}

impl Store {
    /// What a recorded attempt does to its subscription: clears or extends
    /// its failure streak, and disables it when it is gone or the breaker trips.
    pub(super) async fn settle_subscription(
        txn: &impl ConnectionTrait,
        item: &RecordedAttempt,
        breaker: BreakerPolicy,
        cipher: &Cipher,
    ) -> Result<(), StoreError> {
        if leaves_subscription_alone(item) {
            return Ok(());
        }
        let (work, sub) = (&item.work, &item.work.delivery.subscription_id);
        let disabled = match item.next {
            NextStep::Gone => Some(super::subscriptions::GONE_REASON.to_owned()),
            NextStep::Succeeded => {
                Self::clear_failure_streak(txn, sub).await?;
                None
            }
            NextStep::Filtered => None,
            NextStep::RetryAt(_) | NextStep::Failed => Self::extend_failure_streak(txn, sub, breaker).await?,
        };
        if let Some(reason) = disabled {
            Self::disable_subscription_in(txn, sub, &reason).await?;
            Self::announce_disabled(txn, &work.subscription, &reason, cipher).await?;
        }
        Ok(())
    }

    async fn clear_failure_streak(txn: &impl ConnectionTrait, sub: &SubscriptionId) -> Result<(), StoreError> {
        subscription::Entity::update_many()
            .col_expr(subscription::Column::FailureStreak, 0.into())
            .col_expr(subscription::Column::FailingSince, Option::<DateTime<Utc>>::None.into())
            .filter(subscription::Column::Id.eq(sub.as_str()))
            // Most attempts succeed on an endpoint that is not failing: skip the write.
            .filter(subscription::Column::FailureStreak.gt(0))
            .exec(txn)
            .await?;
        Ok(())
    }

    /// Counts one more failure; returns why the breaker trips, if it does.
    async fn extend_failure_streak(
        txn: &impl ConnectionTrait,
        sub: &SubscriptionId,
        breaker: BreakerPolicy,
    ) -> Result<Option<String>, StoreError> {
        let at = now();
        let rows = subscription::Entity::update_many()
            .col_expr(subscription::Column::FailureStreak, Expr::col(subscription::Column::FailureStreak).add(1))
            .col_expr(
                subscription::Column::FailingSince,
                Func::coalesce([Expr::col(subscription::Column::FailingSince).into(), Expr::value(at)]).into(),
            )
            .filter(subscription::Column::Id.eq(sub.as_str()))
            .exec_with_returning(txn)
            .await?;
        let Some(row) = rows.first() else { return Ok(None) };
        let streak = u32::try_from(row.failure_streak).unwrap_or(0);
        if breaker.max_failures > 0 && streak >= breaker.max_failures {
            return Ok(Some(format!("circuit breaker: {streak} failed attempts in a row")));
        }
        match row.failing_since {
            Some(since) if at - since >= breaker.max_failing => {
                Ok(Some(format!("circuit breaker: failing since {}", since.to_rfc3339())))
            }
            _ => Ok(None),
        }
    }

    /// Emits the operational event `subscription.disabled` to the tenant's
    /// own subscriptions, so its operators learn of it the way they learn of
    /// everything else.
    async fn announce_disabled(
        txn: &impl ConnectionTrait,
        sub: &Subscription,
        reason: &str,
        cipher: &Cipher,
    ) -> Result<(), StoreError> {
        let event = Event {
            id: EventId::generate(),
            tenant_id: sub.tenant_id.clone(),
            event_type: "subscription.disabled".parse().expect("a valid type"),
            data: serde_json::json!({
                "subscription_id": sub.id,
                "url": sub.url,
                "reason": reason,
            }),
            idempotency_key: None,
            created_at: now(),
            ordering_key: None,
        };
        super::events::insert_events(txn, std::slice::from_ref(&event), cipher).await.map(drop)
    }
}
