//! Deliveries: claiming due ones for the retry path, loading their work,
//! putting one back or failing it unattempted, and the API's reads.
//! Recording attempts is `attempt_recorder.rs`; what they do to their
//! subscription, `breaker.rs`.
use super::events::Event;
use super::fair_claim::{claim_of_each, fair_claim, ClaimSize};
use super::stored;
use super::subscriptions::Subscription;
use crate::domain::{
    now, DeliveryId, DeliveryStatus, EventId, OrderingKey, OrderingPolicy, SubscriptionId, SubscriptionStatus, TenantId,
};
use crate::entity::{delivery, event, subscription};
use crate::{Store, StoreError};
use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Condition, Expr, SelectStatement};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, QueryFilter, TransactionTrait,
};

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
    /// Failed attempts in the current retry cycle (indexes the retry schedule).
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

/// Most due rows a claim of due deliveries numbers in turn (the oldest):
/// a few milliseconds of sorting, against seconds for a storm's whole due
/// backlog. The poller's claims are a few to a few hundred rows, and a
/// tenant whose due rows lie behind the window is claimed by name when its
/// alarm rings ([`Store::claim_due_of`]).
const DUE_CLAIM_WINDOW: u64 = 4_096;

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
        // Only the oldest due rows are numbered, so that the claim's cost
        // stays bounded in a storm.
        let size = ClaimSize { limit, per_tenant: None, window: Some(DUE_CLAIM_WINDOW) };
        let due = fair_claim(
            delivery::Entity,
            delivery::Column::Id,
            delivery::Column::TenantId,
            delivery::Column::NextAttemptAt,
            Self::due_now(now()),
            size,
        );
        self.lease_due(due, lease).await
    }

    /// Claims like [`Store::claim_due_deliveries`], but only deliveries of
    /// `tenants`, at most `per_tenant` of each, each one's oldest first:
    /// the retry poller's claim for tenants whose retries came due. It
    /// reads a few index entries per tenant (`ix_deliveries_tenant_due`),
    /// however many other tenants, or these tenants, have due.
    pub async fn claim_due_of(
        &self,
        tenants: &[TenantId],
        per_tenant: u64,
        lease: Duration,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        if tenants.is_empty() {
            return Ok(Vec::new());
        }
        // The status again as a literal, so that the partial index's
        // condition is seen to hold: SQLite plans before the parameters are
        // bound.
        let claimable = Self::due_now(now()).add(Expr::cust("deliveries.status = 'pending'"));
        let names: Vec<&str> = tenants.iter().map(TenantId::as_str).collect();
        let columns = (delivery::Column::Id, delivery::Column::TenantId, delivery::Column::NextAttemptAt);
        let due = claim_of_each(delivery::Entity, columns, claimable, &names, per_tenant);
        self.lease_due(due, lease).await
    }

    /// Pending deliveries due by `at` that may be attempted now.
    fn due_now(at: DateTime<Utc>) -> Condition {
        Condition::all()
            .add(delivery::Column::Status.eq(DeliveryStatus::Pending))
            .add(delivery::Column::NextAttemptAt.lte(at))
            .add(Expr::cust(KEY_HEAD))
    }

    /// Leases the `due` rows (pushes their due time out by `lease`).
    ///
    /// On PostgreSQL, planned for its own parameters and with bitmap scans
    /// off. Due rows are few most of the time, and the statistics say so
    /// until the next analyze, which a storm that makes 200,000 rows due
    /// within seconds does not wait for (nor trigger, in a table of
    /// millions). Believing them, or reusing a generic plan made without
    /// the due time, the planner read every due row and sorted them (90 ms
    /// idle, seconds under the storm) where an index scan in due order
    /// stops after the rows it needs (5 ms).
    async fn lease_due(&self, due: SelectStatement, lease: Duration) -> Result<Vec<DueDelivery>, StoreError> {
        let update = delivery::Entity::update_many()
            .col_expr(delivery::Column::NextAttemptAt, Some(now() + lease).into())
            .filter(delivery::Column::Id.in_subquery(due));
        let claimed = if self.backend() == DatabaseBackend::Postgres {
            let txn = self.db().begin().await?;
            txn.execute_unprepared("SET LOCAL enable_bitmapscan = off; SET LOCAL plan_cache_mode = force_custom_plan")
                .await?;
            let claimed = update.exec_with_returning(&txn).await?;
            txn.commit().await?;
            claimed
        } else {
            update.exec_with_returning(self.db()).await?
        };
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
    /// was delivered to. Each delivery starts a fresh retry cycle, due now.
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
