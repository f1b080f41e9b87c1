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
use std::collections::BTreeMap;

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

/// What one write's attempts do to one subscription, in the order they
/// were made: a success clears the streak, so only the failures after the
/// last success count.
#[derive(Default)]
struct StreakChange<'a> {
    /// The subscription, as the last of its attempts saw it.
    subscription: Option<&'a Subscription>,
    /// A success came, so the streak starts again from the failures after it.
    cleared: bool,
    /// Failures since the last success (or since the batch began).
    failures: u32,
    /// An attempt was told the endpoint is gone.
    gone: bool,
}

impl<'a> StreakChange<'a> {
    fn add(&mut self, item: &'a RecordedAttempt) {
        self.subscription = Some(&item.work.subscription);
        match item.next {
            // A success clears a streak the subscription had when it was
            // read, or one this batch's earlier failures started.
            NextStep::Succeeded => {
                self.cleared |= self.failures > 0 || item.work.subscription.failure_streak > 0;
                self.failures = 0;
            }
            NextStep::RetryAt(_) | NextStep::Failed => self.failures += 1,
            NextStep::Gone => self.gone = true,
            NextStep::Filtered => {}
        }
    }
}

impl Store {
    /// What recorded attempts do to their subscriptions: clear or extend
    /// each one's failure streak, and disable it when it is gone or the
    /// breaker trips.
    ///
    /// One statement per subscription, not per attempt, and subscriptions
    /// in id order: a storm's write of 128 failed attempts to 4 endpoints
    /// holds those 4 rows' locks for 4 statements until it commits, not for
    /// 128, and two writes that share rows take them in the same order, so
    /// they queue rather than deadlock.
    pub(super) async fn settle_subscriptions<'a>(
        txn: &impl ConnectionTrait,
        items: impl IntoIterator<Item = &'a RecordedAttempt>,
        breaker: BreakerPolicy,
        cipher: &Cipher,
    ) -> Result<(), StoreError> {
        let mut changes: BTreeMap<&SubscriptionId, StreakChange<'a>> = BTreeMap::new();
        for item in items {
            let sub = &item.work.delivery.subscription_id;
            // A success on an endpoint that was not failing changes nothing
            // (the hot path: no entry), unless it follows failures of this
            // same write, which gave its subscription an entry.
            if leaves_subscription_alone(item) && !changes.contains_key(sub) {
                continue;
            }
            changes.entry(sub).or_default().add(item);
        }
        for (sub, change) in changes {
            let disabled = if change.gone {
                Some(super::subscriptions::GONE_REASON.to_owned())
            } else if change.failures > 0 {
                Self::extend_failure_streak(txn, sub, change.cleared, change.failures, breaker).await?
            } else {
                if change.cleared {
                    Self::clear_failure_streak(txn, sub).await?;
                }
                None
            };
            if let (Some(reason), Some(subscription)) = (disabled, change.subscription) {
                Self::disable_subscription_in(txn, sub, &reason).await?;
                Self::announce_disabled(txn, subscription, &reason, cipher).await?;
            }
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

    /// Counts `failures` more, after clearing the streak first if a
    /// success came before them; returns why the breaker trips, if it does.
    async fn extend_failure_streak(
        txn: &impl ConnectionTrait,
        sub: &SubscriptionId,
        cleared: bool,
        failures: u32,
        breaker: BreakerPolicy,
    ) -> Result<Option<String>, StoreError> {
        let at = now();
        let (streak, since) = if cleared {
            (Expr::value(failures as i32), Expr::value(at))
        } else {
            (
                Expr::col(subscription::Column::FailureStreak).add(failures as i32),
                Func::coalesce([Expr::col(subscription::Column::FailingSince).into(), Expr::value(at)]).into(),
            )
        };
        let rows = subscription::Entity::update_many()
            .col_expr(subscription::Column::FailureStreak, streak)
            .col_expr(subscription::Column::FailingSince, since)
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
