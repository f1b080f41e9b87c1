//! Deliveries: claiming due ones for the retry path, loading their work,
//! recording attempts and moving deliveries on, the circuit breaker, and the
//! API's reads.
use super::attempts::NewAttempt;
use super::events::Event;
use super::fair_claim::fair_claim;
use super::recordset::{pg_type, values_of};
use super::stored;
use super::subscriptions::Subscription;
use crate::cipher::Cipher;
use crate::domain::{
    now, AttemptId, AttemptOutcome, DeliveryId, DeliveryStatus, EventId, OrderingKey, OrderingPolicy, SubscriptionId,
    SubscriptionStatus, TenantId,
};
use crate::entity::{attempt, delivery, event, subscription};
use crate::{Store, StoreError};
use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Condition, Expr, Func};
use sea_orm::{
    ActiveEnum, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, QueryFilter, Statement,
    TransactionTrait, Value,
};
use std::collections::HashSet;

/// The delivery of one event to one subscription.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    /// Its id.
    pub id: DeliveryId,
    /// The owning tenant.
    pub tenant_id: TenantId,
    /// The event delivered.
    pub event_id: EventId,
    /// Where it goes.
    pub subscription_id: SubscriptionId,
    /// Pending, succeeded or failed.
    pub status: DeliveryStatus,
    /// Attempts made over its whole life (numbers the next attempt).
    pub attempt_count: i32,
    /// Failed attempts in the current round (indexes the retry schedule).
    pub retry_index: i32,
    /// When the next attempt is due, while pending.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Status code of the last attempt, if it got a response.
    pub last_status_code: Option<i32>,
    /// Error of the last failed attempt.
    pub last_error: Option<String>,
    /// When the delivery was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Its event's ordering key when its subscription keeps order: it is
    /// attempted only once every earlier delivery of the key is done.
    pub ordering_key: Option<OrderingKey>,
    /// Dead-lettered and still holding its key (`on_dead_letter: block`).
    pub key_blocked: bool,
}

impl TryFrom<delivery::Model> for Delivery {
    type Error = StoreError;
    fn try_from(m: delivery::Model) -> Result<Self, StoreError> {
        Ok(Self {
            id: stored(&m.id)?,
            tenant_id: stored(&m.tenant_id)?,
            event_id: stored(&m.event_id)?,
            subscription_id: stored(&m.subscription_id)?,
            status: m.status,
            attempt_count: m.attempt_count,
            retry_index: m.retry_index,
            next_attempt_at: m.next_attempt_at,
            last_status_code: m.last_status_code,
            last_error: m.last_error,
            created_at: m.created_at,
            updated_at: m.updated_at,
            ordering_key: m.ordering_key.as_deref().map(stored).transpose()?,
            key_blocked: m.key_blocked,
        })
    }
}

/// Everything one attempt needs, loaded together.
#[derive(Clone, Debug)]
pub struct DeliveryWork {
    /// The delivery being attempted.
    pub delivery: Delivery,
    /// The event it carries.
    pub event: Event,
    /// Where it goes, with the signing secret.
    pub subscription: Subscription,
}

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

impl Delivery {
    /// A fresh pending delivery, due at `due`.
    pub fn new(tenant: &TenantId, event: &EventId, sub: &SubscriptionId, due: DateTime<Utc>) -> Self {
        let at = now();
        Self {
            id: DeliveryId::generate(),
            tenant_id: tenant.clone(),
            event_id: event.clone(),
            subscription_id: sub.clone(),
            status: DeliveryStatus::Pending,
            attempt_count: 0,
            retry_index: 0,
            next_attempt_at: Some(due),
            last_status_code: None,
            last_error: None,
            created_at: at,
            updated_at: at,
            ordering_key: None,
            key_blocked: false,
        }
    }

    /// The same delivery, keeping order by `key` (the event's key, when
    /// the subscription is ordered). An ordered delivery is written
    /// waiting (pending, no due time): [`Store::claim_heads`] takes it
    /// once it is the head of its key, by the same test the retry claim
    /// makes (`KEY_HEAD`). Waiting rows are not due, so a deep
    /// backlog on one key costs the claim nothing.
    pub fn keeping_order(self, key: Option<&OrderingKey>) -> Self {
        match key {
            Some(key) => Self { ordering_key: Some(key.clone()), next_attempt_at: None, ..self },
            None => self,
        }
    }

    pub(super) fn to_row(&self) -> delivery::ActiveModel {
        delivery::ActiveModel {
            id: Set(self.id.to_string()),
            tenant_id: Set(self.tenant_id.to_string()),
            event_id: Set(self.event_id.to_string()),
            subscription_id: Set(self.subscription_id.to_string()),
            status: Set(self.status),
            attempt_count: Set(self.attempt_count),
            retry_index: Set(self.retry_index),
            next_attempt_at: Set(self.next_attempt_at),
            last_status_code: Set(self.last_status_code),
            last_error: Set(self.last_error.clone()),
            created_at: Set(self.created_at),
            updated_at: Set(self.updated_at),
            ordering_key: Set(self.ordering_key.as_ref().map(|k| k.as_str().to_owned())),
            key_blocked: Set(self.key_blocked),
        }
    }
}

/// How long a held delivery waits before the retry path reads it again:
/// long enough not to spin on a key that is missing, short enough that
/// deliveries resume within minutes of it coming back.
pub const HOLD: Duration = Duration::minutes(5);

/// What [`Store::delivery_work`] found.
#[derive(Debug)]
pub enum Loaded {
    /// Ready to attempt.
    Ready(Box<DeliveryWork>),
    /// Deleted, finished by another worker, or abandoned (its event or
    /// subscription is gone): nothing to do.
    Gone,
    /// Its event or subscription does not read; held for [`HOLD`], for
    /// the reason given.
    Held(String),
}

/// Attempts per multi-row statement when recording (7 parameters each in
/// the `UPDATE`, 12 in the `INSERT`).
const RECORD_CHUNK: usize = 200;

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

/// The claim's test for ordered deliveries: an unordered one (no key)
/// passes at once, so the unordered path pays nothing but this `IS NULL`;
/// an ordered one only when it is the head of its key, that is when no
/// earlier delivery of its (subscription, key) is still open (pending, or
/// dead-lettered and blocking) and no earlier event of its key is still
/// being fanned out (its delivery may not be written yet). Only the head
/// is ever claimed, and it stays pending (leased) while it is attempted,
/// so one key has one attempt in flight whichever dispatcher holds it,
/// and the next becomes claimable only when the head's outcome commits.
///
/// Literals, not parameters, so PostgreSQL matches the partial indexes of
/// m0013 (`ix_deliveries_key_open`, `ix_events_key_fan_out`) in generic
/// plans too; `deliveries` is the claim's own row (the innermost `FROM
/// deliveries` of `fair_claim`'s statements).
const KEY_HEAD: &str = "(deliveries.ordering_key IS NULL OR (\
    NOT EXISTS (SELECT 1 FROM deliveries p WHERE p.subscription_id = deliveries.subscription_id \
    AND p.ordering_key = deliveries.ordering_key AND p.event_id < deliveries.event_id \
    AND p.ordering_key IS NOT NULL AND (p.status = 'pending' OR p.key_blocked)) \
    AND NOT EXISTS (SELECT 1 FROM events e WHERE e.tenant_id = deliveries.tenant_id \
    AND e.ordering_key = deliveries.ordering_key AND e.id < deliveries.event_id AND e.fan_out_pending)))";

/// A due delivery the retry poller claimed, with its tenant, so that it
/// waits for its tenant's turn if the loop is full.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueDelivery {
    /// The delivery.
    pub id: DeliveryId,
    /// Its tenant.
    pub tenant_id: TenantId,
}

impl Store {
    /// Claims up to `limit` pending deliveries that are due, taking tenants
    /// in turn (see [`fair_claim`]), and pushes their due time out by
    /// `lease` so no other worker takes them meanwhile.
    pub async fn claim_due_deliveries(&self, limit: u64, lease: Duration) -> Result<Vec<DueDelivery>, StoreError> {
        let at = now();
        let claimable = Condition::all()
            .add(delivery::Column::Status.eq(DeliveryStatus::Pending))
            .add(delivery::Column::NextAttemptAt.lte(at))
            .add(Expr::cust(KEY_HEAD));
        let due = fair_claim(
            delivery::Entity,
            delivery::Column::Id,
            delivery::Column::TenantId,
            delivery::Column::NextAttemptAt,
            claimable,
            limit,
        );
        let claimed = delivery::Entity::update_many()
            .col_expr(delivery::Column::NextAttemptAt, Some(at + lease).into())
            .filter(delivery::Column::Id.in_subquery(due))
            .exec_with_returning(self.db())
            .await?;
        self.due_deliveries(claimed.into_iter().map(|d| (d.id, d.tenant_id))).await
    }

    /// The claimed rows (id, tenant) as due deliveries. A corrupt row must
    /// not fail the claim it shares with every tenant's due deliveries:
    /// it is failed instead, so it is not claimed again.
    pub(super) async fn due_deliveries(
        &self,
        claimed: impl ExactSizeIterator<Item = (String, String)>,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        let mut due = Vec::with_capacity(claimed.len());
        for (id, tenant) in claimed {
            match (id.parse(), tenant.parse()) {
                (Ok(id), Ok(tenant_id)) => due.push(DueDelivery { id, tenant_id }),
                _ => {
                    tracing::error!(delivery_id = ?id, "delivery row has a corrupt id; failing it");
                    self.fail_pending(&id, "corrupt row: its id does not parse").await?;
                }
            }
        }
        Ok(due)
    }

    /// Loads a delivery with its event and subscription, if it is still
    /// pending and both read.
    ///
    /// One whose event or subscription exists but cannot be read (a key
    /// left the keyring, a corrupt row), or whose tenant is suspended, is
    /// held: pushed [`HOLD`] into the future with the reason in
    /// `last_error`, so it neither spins nor is lost, and goes out once the
    /// row reads again (or the tenant is resumed).
    pub async fn delivery_work(&self, id: &DeliveryId) -> Result<Loaded, StoreError> {
        let Some(d) = delivery::Entity::find_by_id(id.as_str()).one(self.db()).await? else {
            return Ok(Loaded::Gone);
        };
        if d.status != DeliveryStatus::Pending {
            return Ok(Loaded::Gone);
        }
        let event = event::Entity::find_by_id(d.event_id.as_str()).one(self.db()).await?;
        let sub = subscription::Entity::find_by_id(d.subscription_id.as_str()).one(self.db()).await?;
        let (Some(event), Some(sub)) = (event, sub) else {
            // Purged or restored from an older backup: nothing to send, and
            // leaving it pending would re-claim it forever.
            self.abandon_delivery(id, "its event or subscription no longer exists").await?;
            return Ok(Loaded::Gone);
        };
        let read = if self.tenant_paused(self.db(), &d.tenant_id).await? {
            Err(StoreError::TenantSuspended)
        } else {
            Subscription::from_row(sub, self.cipher())
                .and_then(|subscription| Ok((Event::from_row(event, self.cipher())?, subscription)))
        };
        match read {
            Ok((event, subscription)) => {
                Ok(Loaded::Ready(Box::new(DeliveryWork { delivery: d.try_into()?, event, subscription })))
            }
            Err(e) => {
                let reason = format!("held: {e}");
                delivery::Entity::update_many()
                    .col_expr(delivery::Column::NextAttemptAt, Some(now() + HOLD).into())
                    .col_expr(delivery::Column::LastError, Some(reason.clone()).into())
                    .filter(delivery::Column::Id.eq(id.as_str()))
                    .filter(delivery::Column::Status.eq(DeliveryStatus::Pending))
                    .exec(self.db())
                    .await?;
                Ok(Loaded::Held(reason))
            }
        }
    }

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
    /// by one statement per chunk (see [`Self::record_on_pg`]). A statement
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
            return Ok(recorded(&Self::record_on_pg(self.db(), batch, self.cipher()).await?));
        }
        let txn = self.db().begin().await?;
        let moved = if postgres {
            Self::record_on_pg(&txn, batch, self.cipher()).await?
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
        for item in batch.iter().filter(|item| moved.contains(item.work.delivery.id.as_str())) {
            Self::settle_subscription(&txn, item, breaker, self.cipher()).await?;
        }
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

    /// Moves the batch's deliveries on and inserts their attempts, one
    /// statement per chunk: an `UPDATE ... FROM (VALUES ...)` of the
    /// deliveries still pending, whose `RETURNING` feeds the attempts'
    /// `INSERT` in the same statement, so an attempt is recorded exactly when
    /// its delivery moved. Returns the ids of the deliveries that moved.
    async fn record_on_pg(
        db: &impl ConnectionTrait,
        batch: &[RecordedAttempt],
        cipher: &Cipher,
    ) -> Result<HashSet<String>, StoreError> {
        // `v`'s columns: what moves the delivery on (from `moved_delivery`),
        // then the attempt row (from `attempt_row`, the one description of an
        // attempt both stores write), prefixed `a_`; each typed as its table
        // column was created.
        const MOVED: [delivery::Column; 8] = [
            delivery::Column::Id,
            delivery::Column::Status,
            delivery::Column::AttemptCount,
            delivery::Column::RetryIndex,
            delivery::Column::NextAttemptAt,
            delivery::Column::LastStatusCode,
            delivery::Column::LastError,
            delivery::Column::KeyBlocked,
        ];
        // Every column of the attempt row.
        let attempt_cols: Vec<attempt::Column> = <attempt::Column as sea_orm::Iterable>::iter().collect();
        let casts: Vec<&str> =
            MOVED.iter().map(pg_type).chain(attempt_cols.iter().map(pg_type)).collect::<Result<_, _>>()?;
        let attempt_columns: Vec<&str> = attempt_cols.iter().map(sea_orm::IdenStatic::as_str).collect();
        let v_columns: Vec<String> = MOVED
            .iter()
            .map(|c| sea_orm::IdenStatic::as_str(c).to_owned())
            .chain(attempt_columns.iter().map(|name| format!("a_{name}")))
            .collect();
        let at = now();
        let mut moved = HashSet::with_capacity(batch.len());
        for chunk in batch.chunks(RECORD_CHUNK) {
            let mut values: Vec<Value> = vec![DeliveryStatus::Pending.to_value().into(), at.into()];
            let mut rows = Vec::with_capacity(chunk.len());
            for item in chunk {
                let first = values.len() + 1;
                let params: Vec<String> =
                    casts.iter().enumerate().map(|(i, cast)| format!("${}::{cast}", first + i)).collect();
                rows.push(format!("({})", params.join(", ")));
                values.extend(values_of(&item.moved_delivery().to_row(), MOVED)?);
                values.extend(values_of(&attempt_row(item, cipher), attempt_cols.iter().copied())?);
            }
            let sql = format!(
                "WITH v({}) AS (VALUES {}), \
                 u AS (UPDATE deliveries AS d SET status = v.status, attempt_count = v.attempt_count, \
                 retry_index = v.retry_index, next_attempt_at = v.next_attempt_at, \
                 last_status_code = v.last_status_code, last_error = v.last_error, \
                 key_blocked = v.key_blocked, updated_at = $2 \
                 FROM v WHERE d.id = v.id AND d.status = $1 RETURNING d.id) \
                 INSERT INTO attempts ({}) SELECT {} FROM v JOIN u ON u.id = v.id RETURNING delivery_id",
                v_columns.join(", "),
                rows.join(", "),
                attempt_columns.join(", "),
                attempt_columns.iter().map(|name| format!("v.a_{name}")).collect::<Vec<_>>().join(", "),
            );
            let stmt = Statement::from_sql_and_values(DatabaseBackend::Postgres, sql, values);
            for row in db.query_all(stmt).await? {
                moved.insert(row.try_get::<String>("", "delivery_id")?);
            }
        }
        Ok(moved)
    }

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

    /// Moves a pending delivery's next attempt to `until` without counting
    /// an attempt (its endpoint is at its concurrency or rate limit).
    pub async fn defer_delivery(&self, id: &DeliveryId, until: DateTime<Utc>) -> Result<(), StoreError> {
        delivery::Entity::update_many()
            .col_expr(delivery::Column::NextAttemptAt, Some(until).into())
            .filter(delivery::Column::Id.eq(id.as_str()))
            .filter(delivery::Column::Status.eq(DeliveryStatus::Pending))
            .exec(self.db())
            .await?;
        Ok(())
    }

    /// Fails a pending delivery without an attempt (its subscription was
    /// disabled before its turn came).
    pub async fn abandon_delivery(&self, id: &DeliveryId, reason: &str) -> Result<(), StoreError> {
        self.fail_pending(id.as_str(), reason).await
    }

    /// Fails a pending delivery by its id as stored.
    async fn fail_pending(&self, id: &str, reason: &str) -> Result<(), StoreError> {
        delivery::Entity::update_many()
            .col_expr(delivery::Column::Status, DeliveryStatus::Failed.into())
            .col_expr(delivery::Column::NextAttemptAt, Option::<DateTime<Utc>>::None.into())
            .col_expr(delivery::Column::LastError, Some(reason.to_owned()).into())
            .col_expr(delivery::Column::UpdatedAt, now().into())
            .filter(delivery::Column::Id.eq(id))
            .filter(delivery::Column::Status.eq(DeliveryStatus::Pending))
            .exec(self.db())
            .await?;
        Ok(())
    }

    /// The deliveries of one event of the tenant, one per subscription.
    pub async fn event_deliveries(&self, tenant: &TenantId, event: &EventId) -> Result<Vec<Delivery>, StoreError> {
        // By `event_id` alone in SQL, the tenant checked on the rows (and by
        // row-level security on PostgreSQL): with `tenant_id = ?` in the
        // query, SQLite (which has no statistics) reads it through the
        // `(tenant_id, id)` index, i.e. every delivery of the tenant, where
        // `event_id`'s index reads a handful.
        let select = delivery::Entity::find().filter(delivery::Column::EventId.eq(event.as_str()));
        let mut rows = self.all_as_tenant(tenant, select).await?;
        rows.retain(|row| row.tenant_id == tenant.as_str());
        rows.sort_by(|a, b| a.id.cmp(&b.id));
        super::parse_all(rows)
    }

    /// Sends an event again: to one subscription, or to every subscription it
    /// was delivered to. Each delivery starts a fresh retry round, due now.
    ///
    /// A subscription named explicitly that never got the event (it was
    /// created later) gets a new delivery. Disabled subscriptions are refused.
    pub async fn redeliver(
        &self,
        tenant: &TenantId,
        event_id: &EventId,
        only: Option<&SubscriptionId>,
    ) -> Result<Vec<DeliveryId>, StoreError> {
        let event = self.event(tenant, event_id).await?;
        let targets: Vec<SubscriptionId> = match only {
            Some(sub) => {
                let sub = self.subscription(tenant, sub).await?;
                if sub.status != SubscriptionStatus::Active {
                    return Err(StoreError::Conflict("subscription is disabled".into()));
                }
                vec![sub.id]
            }
            None => self.event_deliveries(tenant, event_id).await?.into_iter().map(|d| d.subscription_id).collect(),
        };
        // Read first, then write in a transaction that only writes: on
        // SQLite a transaction that reads and then writes fails with
        // SQLITE_BUSY_SNAPSHOT whenever another process (a running hub,
        // when this is the CLI) wrote in between, and busy_timeout cannot
        // wait that out. A subscription disabled in between gets a pending
        // delivery that the retry path abandons.
        let read = self.tenant_scope(tenant).await?;
        let mut plan = Vec::with_capacity(targets.len());
        for target in &targets {
            let active = subscription::Entity::find_by_id(target.as_str())
                .filter(subscription::Column::Status.eq(SubscriptionStatus::Active))
                .one(&read)
                .await?;
            if let Some(sub) = active {
                let existing = delivery::Entity::find()
                    .filter(delivery::Column::EventId.eq(event_id.as_str()))
                    .filter(delivery::Column::SubscriptionId.eq(target.as_str()))
                    .one(&read)
                    .await?;
                let ordering = OrderingPolicy { mode: sub.ordering, on_dead_letter: sub.on_dead_letter };
                plan.push((target, ordering.key_for(event.ordering_key.as_ref()), existing.map(|d| d.id)));
            }
        }
        read.commit().await?;
        let at = now();
        let txn = self.tenant_scope(tenant).await?;
        let mut ids = Vec::with_capacity(plan.len());
        for (sub, key, existing) in plan {
            let id = match existing {
                Some(id) => {
                    delivery::Entity::update_many()
                        .col_expr(delivery::Column::Status, DeliveryStatus::Pending.into())
                        .col_expr(delivery::Column::RetryIndex, 0.into())
                        .col_expr(delivery::Column::NextAttemptAt, Some(at).into())
                        .col_expr(delivery::Column::UpdatedAt, at.into())
                        // Pending again, it holds its key (and goes before
                        // the later ones, being earlier) without the block.
                        .col_expr(delivery::Column::KeyBlocked, false.into())
                        .filter(delivery::Column::Id.eq(id.as_str()))
                        .exec(&txn)
                        .await?;
                    id
                }
                None => {
                    // Asked for by name: due now; the claim still waits for its turn.
                    let delivery = Delivery {
                        next_attempt_at: Some(at),
                        ..Delivery::new(tenant, event_id, sub, at).keeping_order(key)
                    };
                    delivery::Entity::insert(delivery.to_row()).exec_without_returning(&txn).await?;
                    delivery.id.to_string()
                }
            };
            ids.push(stored(&id)?);
        }
        txn.commit().await?;
        Ok(ids)
    }
}
