//! The attempt recorder's side of the store: an attempt's result, what it
//! does to its delivery, and writing a batch of them (the attempt rows and
//! the deliveries they move on) in one transaction, so that a batch of
//! finished attempts costs one commit.
use super::attempts::NewAttempt;
use super::deliveries::{Delivery, DeliveryWork};
use super::pg;
use super::BreakerPolicy;
use crate::cipher::Cipher;
use crate::domain::{now, AttemptId, AttemptOutcome, DeliveryStatus};
use crate::entity::{attempt, delivery};
use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, QueryFilter, TransactionTrait,
};
use std::collections::HashSet;

/// An attempt's result, ready to record.
#[derive(Clone, Debug)]
pub struct RecordedAttempt {
    /// What was attempted.
    pub work: DeliveryWork,
    /// What happened.
    pub attempt: NewAttempt,
    /// What it does to the delivery.
    pub next: NextStep,
}

/// What an attempt's result does to its delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextStep {
    /// 2xx: done.
    Succeeded,
    /// Failed; try again at this time.
    RetryAt(DateTime<Utc>),
    /// Failed and out of attempts: the dead letter.
    Failed,
    /// `410 Gone`: fail it and disable the subscription.
    Gone,
    /// The subscription's filter or transform dropped the event: done,
    /// nothing sent, and the subscription's failure streak is untouched.
    Filtered,
}

impl NextStep {
    fn outcome(self) -> AttemptOutcome {
        match self {
            Self::Succeeded => AttemptOutcome::Succeeded,
            Self::RetryAt(_) => AttemptOutcome::Retrying,
            Self::Failed | Self::Gone => AttemptOutcome::Failed,
            Self::Filtered => AttemptOutcome::Filtered,
        }
    }
}

/// Attempts per multi-row statement when recording (7 parameters each in
/// the `UPDATE`, 12 in the `INSERT`).
pub(super) const RECORD_CHUNK: usize = 200;

impl RecordedAttempt {
    /// Its delivery as the attempt leaves it.
    pub(crate) fn moved_delivery(&self) -> Delivery {
        let d = &self.work.delivery;
        let (status, next_attempt_at, retry_index) = match self.next {
            NextStep::Succeeded => (DeliveryStatus::Succeeded, None, d.retry_index),
            NextStep::RetryAt(at) => (DeliveryStatus::Pending, Some(at), d.retry_index + 1),
            NextStep::Failed | NextStep::Gone => (DeliveryStatus::Failed, None, d.retry_index + 1),
            NextStep::Filtered => (DeliveryStatus::Filtered, None, d.retry_index),
        };
        Delivery {
            status,
            attempt_count: d.attempt_count + 1,
            retry_index,
            next_attempt_at,
            last_status_code: self.attempt.status_code.map(i32::from),
            last_error: self.attempt.error.clone(),
            updated_at: now(),
            key_blocked: status == DeliveryStatus::Failed
                && d.ordering_key.is_some()
                && self.work.subscription.ordering.blocks_on_dead_letter(),
            ..d.clone()
        }
    }
}

/// The hot path: a success on an endpoint that was not failing changes
/// nothing about its subscription. Nor does a filtered event, which says
/// nothing about the endpoint's health either way.
pub(super) fn leaves_subscription_alone(item: &RecordedAttempt) -> bool {
    match item.next {
        NextStep::Succeeded => item.work.subscription.failure_streak == 0,
        NextStep::Filtered => true,
        NextStep::RetryAt(_) | NextStep::Failed | NextStep::Gone => false,
    }
}

/// The attempt row of a recorded attempt, its response body sealed:
/// receivers often echo the payload back, so the body is PHI like the
/// payload. A NUL (which PostgreSQL's text cannot hold, and which would fail
/// the whole batch the row is written with) becomes U+FFFD: the body is
/// kept for people to read, not byte for byte.
pub(super) fn attempt_row(item: &RecordedAttempt, cipher: &Cipher) -> attempt::ActiveModel {
    let (d, a) = (&item.work.delivery, &item.attempt);
    let id = AttemptId::generate().to_string();
    let response_body = a.response_body.as_deref().map(|body| {
        if body.contains('\0') {
            cipher.seal_text(&body.replace('\0', "\u{FFFD}"), &id)
        } else {
            cipher.seal_text(body, &id)
        }
    });
    attempt::ActiveModel {
        id: Set(id),
        tenant_id: Set(d.tenant_id.to_string()),
        delivery_id: Set(d.id.to_string()),
        event_id: Set(d.event_id.to_string()),
        subscription_id: Set(d.subscription_id.to_string()),
        attempt_number: Set(d.attempt_count + 1),
        attempted_at: Set(a.attempted_at),
        status_code: Set(a.status_code.map(i32::from)),
        latency_ms: Set(a.latency_ms),
        outcome: Set(item.next.outcome()),
        error: Set(a.error.clone()),
        response_body: Set(response_body),
    }
}

impl Store {
    /// Records an attempt and moves its delivery on, in one transaction.
    ///
    /// Returns false (and records nothing) when the delivery stopped being
    /// pending meanwhile, for example because its subscription was deleted.
    pub async fn record_attempt(
        &self,
        work: &DeliveryWork,
        attempt: NewAttempt,
        next: NextStep,
        breaker: BreakerPolicy,
    ) -> Result<bool, StoreError> {
        let batch = [RecordedAttempt { work: work.clone(), attempt, next }];
        Ok(self.record_attempts(&batch, breaker).await?[0])
    }

    /// Records a batch of attempts: one commit (one disk flush) for many
    /// webhooks, which is what bounds delivery throughput.
    ///
    /// On PostgreSQL the deliveries move on and their attempts are inserted
    /// by one statement per chunk (see `pg::record_attempts`). A statement
    /// is atomic by itself, so when no subscription needs settling (every
    /// attempt succeeded on an endpoint that was not failing, the hot path)
    /// it runs without `BEGIN`/`COMMIT`: one round trip per batch.
    /// Returns, per attempt, whether it was recorded (see [`Self::record_attempt`]).
    ///
    /// A batch mixes every tenant's attempts, so when it fails it is
    /// recorded attempt by attempt: one the database refuses is left
    /// unrecorded (`false`; its delivery comes back after its lease) instead
    /// of failing the others. Fails only when no attempt could be recorded.
    pub async fn record_attempts(
        &self,
        batch: &[RecordedAttempt],
        breaker: BreakerPolicy,
    ) -> Result<Vec<bool>, StoreError> {
        let batch_error = match self.record_batch(batch, breaker).await {
            Ok(recorded) => return Ok(recorded),
            Err(e) if batch.len() < 2 => return Err(e),
            Err(e) => e,
        };
        let mut recorded = Vec::with_capacity(batch.len());
        let mut refused = 0;
        for item in batch {
            match self.record_batch(std::slice::from_ref(item), breaker).await {
                Ok(one) => recorded.extend(one),
                Err(e) => {
                    let delivery_id = &item.work.delivery.id;
                    tracing::error!(%delivery_id, error = %e, "an attempt could not be recorded; the rest of its batch is");
                    refused += 1;
                    recorded.push(false);
                }
            }
        }
        if refused == batch.len() {
            Err(batch_error)
        } else {
            Ok(recorded)
        }
    }

    /// [`Self::record_attempts`] in one go.
    async fn record_batch(&self, batch: &[RecordedAttempt], breaker: BreakerPolicy) -> Result<Vec<bool>, StoreError> {
        let recorded = |moved: &HashSet<String>| -> Vec<bool> {
            batch.iter().map(|item| moved.contains(item.work.delivery.id.as_str())).collect()
        };
        let postgres = self.backend() == DatabaseBackend::Postgres;
        if postgres && batch.iter().all(leaves_subscription_alone) {
            return Ok(recorded(&pg::record_attempts(self.db(), batch, self.cipher()).await?));
        }
        let txn = self.db().begin().await?;
        let moved = if postgres {
            pg::record_attempts(&txn, batch, self.cipher()).await?
        } else {
            // SQLite runs in-process: a statement is a function call, not a round trip.
            let mut moved = HashSet::new();
            for item in batch {
                if Self::move_delivery_on(&txn, item).await? {
                    moved.insert(item.work.delivery.id.to_string());
                }
            }
            let attempts: Vec<attempt::ActiveModel> = batch
                .iter()
                .filter(|item| moved.contains(item.work.delivery.id.as_str()))
                .map(|item| attempt_row(item, self.cipher()))
                .collect();
            for chunk in attempts.chunks(RECORD_CHUNK) {
                attempt::Entity::insert_many(chunk.to_vec()).exec_without_returning(&txn).await?;
            }
            moved
        };
        let settled = batch.iter().filter(|item| moved.contains(item.work.delivery.id.as_str()));
        Self::settle_subscriptions(&txn, settled, breaker, self.cipher()).await?;
        txn.commit().await?;
        Ok(recorded(&moved))
    }

    /// Moves one delivery on, if it is still pending; whether it was.
    async fn move_delivery_on(txn: &impl ConnectionTrait, item: &RecordedAttempt) -> Result<bool, StoreError> {
        let d = item.moved_delivery();
        let updated = delivery::Entity::update_many()
            .col_expr(delivery::Column::Status, d.status.into())
            .col_expr(delivery::Column::AttemptCount, d.attempt_count.into())
            .col_expr(delivery::Column::RetryIndex, d.retry_index.into())
            .col_expr(delivery::Column::NextAttemptAt, d.next_attempt_at.into())
            .col_expr(delivery::Column::LastStatusCode, d.last_status_code.into())
            .col_expr(delivery::Column::LastError, d.last_error.into())
            .col_expr(delivery::Column::UpdatedAt, d.updated_at.into())
            .col_expr(delivery::Column::KeyBlocked, d.key_blocked.into())
            .filter(delivery::Column::Id.eq(d.id.as_str()))
            .filter(delivery::Column::Status.eq(DeliveryStatus::Pending))
            .exec(txn)
            .await?;
        Ok(updated.rows_affected > 0)
    }
}
