//! Ordered delivery per key: what fan-out tells the claim, and what the
//! API shows and does about a blocked key.
//!
//! The order itself is kept by the claim (`deliveries::KEY_HEAD`): an
//! ordered delivery is claimed only as the head of its (subscription,
//! key). This module holds the rest: taking a key's next head as soon as
//! the one before it is done (one statement for a batch of keys),
//! clearing an event's `fan_out_pending` once its deliveries are written,
//! listing the keys whose head is failing or dead-lettered, and skipping
//! such a head.
use super::{Delivery, DueDelivery};
use crate::domain::{now, DeliveryStatus, EventId, OrderingKey, SubscriptionId, TenantId};
use crate::entity::{delivery, event};
use crate::{Store, StoreError};
use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    Statement,
};

/// Most blocked keys one listing shows: a subscription with more has an
/// endpoint problem, not a few keys to look at one by one.
pub const BLOCKED_KEYS_SHOWN: u64 = 100;

/// The head of a key that is open: `deliveries` has no earlier open
/// delivery of the same (subscription, key). Same shape as the claim's.
const IS_HEAD: &str = "NOT EXISTS (SELECT 1 FROM deliveries p WHERE p.subscription_id = deliveries.subscription_id \
    AND p.ordering_key = deliveries.ordering_key AND p.event_id < deliveries.event_id \
    AND p.ordering_key IS NOT NULL AND (p.status = 'pending' OR p.key_blocked))";

/// Most keys one wake statement names (two parameters each): far under
/// either backend's parameter limit, and more than a recorded batch frees.
const WAKE_CHUNK: usize = 500;

/// Takes the waiting heads of the (subscription, key) pairs listed in
/// `{keys}` (a `VALUES` list): for each, the earliest open delivery of the
/// key, if it is pending with no due time and no earlier event of its key
/// is still being fanned out (the claim's test, `deliveries::KEY_HEAD`).
/// A head that is leased (being attempted) or retrying has a due time,
/// and a dead-lettered one is not pending: neither is touched. One
/// statement for a whole batch of keys, so waking costs a round trip per
/// batch, not per key.
///
/// Each head is found through `ix_deliveries_key_open` and updated by its
/// id. The "waiting" test is a `CASE` so that it cannot be an index
/// condition: PostgreSQL's statistics rarely know how many rows wait (the
/// count of pending rows without a due time swings from none to a whole
/// backlog), and planned on the due index the statement read every
/// waiting row once per head.
///
/// `{lock}` is PostgreSQL's row lock (SQLite has one writer): a head that
/// another wake is taking right now (fan-out's and the recorder's often
/// name the same keys) is left to it rather than waited for.
const WAKE_HEADS: &str = "WITH k(sub, okey) AS (VALUES {keys}) \
    UPDATE deliveries SET next_attempt_at = {at} WHERE id IN (SELECT d.id FROM deliveries d WHERE d.id IN \
    (SELECT (SELECT h.id FROM deliveries h WHERE h.subscription_id = k.sub AND h.ordering_key = k.okey \
    AND h.ordering_key IS NOT NULL AND (h.status = 'pending' OR h.key_blocked) ORDER BY h.event_id LIMIT 1) FROM k) \
    AND CASE WHEN d.status = 'pending' AND d.next_attempt_at IS NULL THEN 1 END = 1 \
    AND NOT EXISTS (SELECT 1 FROM events e WHERE e.tenant_id = d.tenant_id AND e.ordering_key = d.ordering_key \
    AND e.id < d.event_id AND e.fan_out_pending){lock}) RETURNING id, tenant_id";

/// Makes due every waiting delivery that is the head of its key: the
/// safety net for a wake that was lost (a crash between an outcome's
/// commit and its wake), run by the retry poller now and then.
const WAKE_ALL_HEADS: &str = "UPDATE deliveries SET next_attempt_at = $1 WHERE status = 'pending' \
    AND next_attempt_at IS NULL AND ordering_key IS NOT NULL AND NOT EXISTS (SELECT 1 FROM deliveries p \
    WHERE p.subscription_id = deliveries.subscription_id AND p.ordering_key = deliveries.ordering_key \
    AND p.event_id < deliveries.event_id AND p.ordering_key IS NOT NULL AND (p.status = 'pending' OR p.key_blocked))";

/// Why a key of an ordered subscription is not moving.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyBlock {
    /// Its head failed and is waiting for its next retry (or is held).
    Retrying,
    /// Its head was dead-lettered and the subscription blocks on that
    /// (`on_dead_letter: block`): it waits for someone.
    DeadLettered,
}

/// A key of an ordered subscription held up by its head.
#[derive(Clone, Debug)]
pub struct BlockedKey {
    /// The key.
    pub ordering_key: OrderingKey,
    /// Why it is held up.
    pub block: KeyBlock,
    /// The head delivery that holds it up.
    pub delivery: Delivery,
    /// Later deliveries of the key waiting behind it.
    pub waiting: u64,
}

impl Store {
    /// Makes the waiting head of each (subscription, key) due, so the
    /// retry poller claims it: after a head was skipped or abandoned. Either
    /// side of a race with an outcome or a fan-out sees the other's commit,
    /// since each wakes after its own commit.
    pub async fn wake_heads(&self, keys: &[(SubscriptionId, OrderingKey)]) -> Result<(), StoreError> {
        self.take_heads(keys, now()).await.map(drop)
    }

    /// Claims the waiting head of each (subscription, key) for `lease`, for
    /// the caller to attempt at once: after fan-out wrote ordered
    /// deliveries, and after an ordered delivery finished (succeeded,
    /// dead-lettered). Without the retry poller in between, a key's next
    /// delivery goes as soon as the previous one's outcome is written.
    /// Like a claim, it lets one process have a head: the others find it
    /// leased.
    pub async fn claim_heads(
        &self,
        keys: &[(SubscriptionId, OrderingKey)],
        lease: Duration,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        self.take_heads(keys, now() + lease).await
    }

    /// Gives the waiting heads of `keys` the due time `at`; returns them.
    async fn take_heads(
        &self,
        keys: &[(SubscriptionId, OrderingKey)],
        at: DateTime<Utc>,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        let mut seen = std::collections::HashSet::new();
        let keys: Vec<_> = keys.iter().filter(|k| seen.insert(*k)).collect();
        let mut taken = Vec::new();
        for chunk in keys.chunks(WAKE_CHUNK) {
            let pg = self.backend() == DatabaseBackend::Postgres;
            let param = |n: usize| if pg { format!("${n}") } else { "?".to_owned() };
            let list: Vec<String> =
                (0..chunk.len()).map(|i| format!("({}, {})", param(2 * i + 1), param(2 * i + 2))).collect();
            let sql = WAKE_HEADS
                .replace("{keys}", &list.join(", "))
                .replace("{at}", &param(2 * chunk.len() + 1))
                .replace("{lock}", if pg { " FOR UPDATE SKIP LOCKED" } else { "" });
            let mut values: Vec<sea_orm::Value> = Vec::with_capacity(2 * chunk.len() + 1);
            for (sub, key) in chunk {
                values.extend([sub.as_str().into(), key.as_str().into()]);
            }
            values.push(at.into());
            let rows = self.db().query_all(Statement::from_sql_and_values(self.backend(), sql, values)).await?;
            let rows = rows
                .iter()
                .map(|row| Ok((row.try_get("", "id")?, row.try_get("", "tenant_id")?)))
                .collect::<Result<Vec<(String, String)>, sea_orm::DbErr>>()?;
            taken.extend(self.due_deliveries(rows.into_iter()).await?);
        }
        Ok(taken)
    }

    /// Makes due every waiting head (see [`Self::wake_heads`]); returns how many.
    pub async fn wake_all_heads(&self) -> Result<u64, StoreError> {
        let sql = self.placeholders(WAKE_ALL_HEADS);
        let done = self.db().execute(Statement::from_sql_and_values(self.backend(), sql, [now().into()])).await?;
        Ok(done.rows_affected())
    }

    /// `$n` parameters as the backend spells them (`?` on SQLite, where
    /// each is used once and in order).
    fn placeholders(&self, sql: &str) -> String {
        match self.backend() {
            DatabaseBackend::Postgres => sql.to_owned(),
            _ => {
                let mut out = String::with_capacity(sql.len());
                let mut chars = sql.chars().peekable();
                while let Some(c) = chars.next() {
                    if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
                        while chars.peek().is_some_and(char::is_ascii_digit) {
                            chars.next();
                        }
                        out.push('?');
                    } else {
                        out.push(c);
                    }
                }
                out
            }
        }
    }

    /// Marks events fanned out: their deliveries are written, so later
    /// deliveries of their keys may go. Called by fan-out after the write,
    /// only with events that carry a key (the unordered path never pays).
    pub async fn mark_fanned_out(&self, ids: &[EventId]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        event::Entity::update_many()
            .col_expr(event::Column::FanOutPending, false.into())
            .filter(event::Column::Id.is_in(ids.iter().map(EventId::as_str)))
            .filter(event::Column::FanOutPending.eq(true))
            .exec(self.db())
            .await?;
        Ok(())
    }

    /// The keys of an ordered subscription whose head delivery is failing
    /// (retrying) or dead-lettered and blocking, by key, at most
    /// [`BLOCKED_KEYS_SHOWN`].
    pub async fn blocked_keys(&self, tenant: &TenantId, sub: &SubscriptionId) -> Result<Vec<BlockedKey>, StoreError> {
        self.subscription(tenant, sub).await?;
        let txn = self.tenant_scope(tenant).await?;
        let stuck = Condition::any().add(delivery::Column::KeyBlocked.eq(true)).add(
            Condition::all()
                .add(delivery::Column::Status.eq(DeliveryStatus::Pending))
                .add(delivery::Column::AttemptCount.gt(0)),
        );
        let heads = delivery::Entity::find()
            .filter(delivery::Column::TenantId.eq(tenant.as_str()))
            .filter(delivery::Column::SubscriptionId.eq(sub.as_str()))
            .filter(delivery::Column::OrderingKey.is_not_null())
            .filter(stuck)
            .filter(Expr::cust(IS_HEAD))
            .order_by_asc(delivery::Column::OrderingKey)
            .limit(BLOCKED_KEYS_SHOWN)
            .all(&txn)
            .await?;
        let mut blocked = Vec::with_capacity(heads.len());
        for head in heads {
            let waiting = delivery::Entity::find()
                .filter(delivery::Column::SubscriptionId.eq(sub.as_str()))
                .filter(delivery::Column::OrderingKey.eq(head.ordering_key.clone()))
                .filter(delivery::Column::Status.eq(DeliveryStatus::Pending))
                .filter(delivery::Column::EventId.gt(head.event_id.as_str()))
                .count(&txn)
                .await?;
            let block = if head.key_blocked { KeyBlock::DeadLettered } else { KeyBlock::Retrying };
            let delivery = Delivery::try_from(head)?;
            let ordering_key = delivery.ordering_key.clone().ok_or(StoreError::Corrupt("ordering key".into()))?;
            blocked.push(BlockedKey { ordering_key, block, delivery, waiting });
        }
        txn.commit().await?;
        Ok(blocked)
    }

    /// Skips the delivery that blocks `key`, so the key's next delivery
    /// goes: a dead-lettered one stays in the dead letter but stops
    /// blocking; a failing one is failed now, without further retries.
    /// Returns it as it is left. Refused (conflict) when the key's head is
    /// not blocked (it has not failed yet: skipping it would drop a webhook
    /// that was never tried); not found when nothing of the key is open.
    pub async fn skip_blocked_key(
        &self,
        tenant: &TenantId,
        sub: &SubscriptionId,
        key: &OrderingKey,
    ) -> Result<Delivery, StoreError> {
        self.subscription(tenant, sub).await?;
        let txn = self.tenant_scope(tenant).await?;
        let head = delivery::Entity::find()
            .filter(delivery::Column::TenantId.eq(tenant.as_str()))
            .filter(delivery::Column::SubscriptionId.eq(sub.as_str()))
            .filter(delivery::Column::OrderingKey.eq(key.as_str()))
            .filter(
                Condition::any()
                    .add(delivery::Column::Status.eq(DeliveryStatus::Pending))
                    .add(delivery::Column::KeyBlocked.eq(true)),
            )
            .order_by_asc(delivery::Column::EventId)
            .one(&txn)
            .await?
            .ok_or(StoreError::NotFound("blocked key"))?;
        if !head.key_blocked && head.attempt_count == 0 {
            return Err(StoreError::Conflict("the key is not blocked: its next delivery has not failed".into()));
        }
        let at: DateTime<Utc> = now();
        let mut update = delivery::Entity::update_many()
            .col_expr(delivery::Column::KeyBlocked, false.into())
            .col_expr(delivery::Column::UpdatedAt, at.into())
            .filter(delivery::Column::Id.eq(head.id.as_str()));
        if head.status == DeliveryStatus::Pending {
            update = update
                .col_expr(delivery::Column::Status, DeliveryStatus::Failed.into())
                .col_expr(delivery::Column::NextAttemptAt, Option::<DateTime<Utc>>::None.into())
                .col_expr(
                    delivery::Column::LastError,
                    Some("skipped while blocking its ordering key".to_owned()).into(),
                )
                .filter(delivery::Column::Status.eq(DeliveryStatus::Pending));
        }
        update.exec(&txn).await?;
        let left = delivery::Entity::find_by_id(head.id.as_str())
            .one(&txn)
            .await?
            .ok_or(StoreError::NotFound("blocked key"))?;
        txn.commit().await?;
        self.wake_heads(&[(sub.clone(), key.clone())]).await?;
        Delivery::try_from(left)
    }
}
