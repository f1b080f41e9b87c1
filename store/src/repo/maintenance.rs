//! Operators' queries: backlog, dead letters, replays, and retention.
use super::deliveries::Delivery;
use super::parse_all;
use crate::domain::{now, DeliveryId, DeliveryStatus, EventId, SubscriptionStatus, TenantId};
use crate::entity::{attempt, delivery, event, outbox, subscription};
use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Query;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};
use sea_orm_migration::MigratorTrait;

/// Where the outbox stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutboxStatus {
    /// Rows waiting for the broker.
    pub backlog: u64,
    /// Rows set aside because they cannot be published (not in `backlog`).
    pub quarantined: u64,
    /// When the oldest of them was written.
    pub oldest: Option<DateTime<Utc>>,
}

/// What one purge removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Purged {
    /// Events removed.
    pub events: u64,
    /// Deliveries removed.
    pub deliveries: u64,
    /// Attempts removed.
    pub attempts: u64,
}

/// Up to `batch` ids of the rows of `E` that match `condition`, lowest
/// (oldest) first: what one purge batch deletes.
pub(super) async fn oldest_ids<E: EntityTrait>(
    db: &impl ConnectionTrait,
    condition: Condition,
    id: E::Column,
    batch: u64,
) -> Result<Vec<String>, StoreError> {
    Ok(E::find().select_only().column(id).filter(condition).order_by_asc(id).limit(batch).into_tuple().all(db).await?)
}

fn tenant_filter<C: ColumnTrait>(col: C, tenant: Option<&TenantId>) -> Condition {
    match tenant {
        Some(t) => Condition::all().add(col.eq(t.as_str())),
        None => Condition::all(),
    }
}

impl Store {
    /// How many migrations are not applied yet (readiness wants zero).
    pub async fn pending_migrations(&self) -> Result<usize, StoreError> {
        Ok(crate::migration::Migrator::get_pending_migrations(self.db()).await?.len())
    }

    /// The outbox's backlog and its oldest row.
    pub async fn outbox_status(&self) -> Result<OutboxStatus, StoreError> {
        let unpublished = outbox::Entity::find()
            .filter(outbox::Column::PublishedAt.is_null())
            .filter(outbox::Column::QuarantinedAt.is_null());
        let backlog = unpublished.clone().count(self.db()).await?;
        let oldest = unpublished.order_by_asc(outbox::Column::Id).one(self.db()).await?.map(|o| o.created_at);
        let quarantined =
            outbox::Entity::find().filter(outbox::Column::QuarantinedAt.is_not_null()).count(self.db()).await?;
        Ok(OutboxStatus { backlog, quarantined, oldest })
    }

    /// Pending deliveries that failed at least once and wait for their next attempt.
    pub async fn retry_queue_depth(&self) -> Result<u64, StoreError> {
        Ok(delivery::Entity::find()
            .filter(delivery::Column::Status.eq(DeliveryStatus::Pending))
            .filter(delivery::Column::AttemptCount.gt(0))
            .count(self.db())
            .await?)
    }

    /// Failed deliveries (dead letters), newest first.
    pub async fn dead_letters(&self, tenant: Option<&TenantId>, limit: u64) -> Result<Vec<Delivery>, StoreError> {
        let rows = delivery::Entity::find()
            .filter(delivery::Column::Status.eq(DeliveryStatus::Failed))
            .filter(tenant_filter(delivery::Column::TenantId, tenant))
            .order_by_desc(delivery::Column::UpdatedAt)
            .limit(limit)
            .all(self.db())
            .await?;
        parse_all(rows)
    }

    /// Puts failed deliveries back in the queue with a fresh retry cycle:
    /// one by id, or every dead letter (of a tenant). Returns how many.
    pub async fn requeue_dead_letters(
        &self,
        only: Option<&DeliveryId>,
        tenant: Option<&TenantId>,
    ) -> Result<u64, StoreError> {
        let at = now();
        let mut update = delivery::Entity::update_many()
            .col_expr(delivery::Column::Status, DeliveryStatus::Pending.into())
            .col_expr(delivery::Column::RetryIndex, 0.into())
            .col_expr(delivery::Column::NextAttemptAt, Some(at).into())
            .col_expr(delivery::Column::UpdatedAt, at.into())
            .col_expr(delivery::Column::KeyBlocked, false.into())
            .filter(delivery::Column::Status.eq(DeliveryStatus::Failed))
            .filter(tenant_filter(delivery::Column::TenantId, tenant));
        if let Some(id) = only {
            update = update.filter(delivery::Column::Id.eq(id.as_str()));
        }
        Ok(update.exec(self.db()).await?.rows_affected)
    }

    /// Requeues a subscription's failed deliveries created since `since`
    /// (what failed while its endpoint was down), each with a fresh retry cycle.
    pub async fn recover_subscription(
        &self,
        tenant: &TenantId,
        sub: &crate::domain::SubscriptionId,
        since: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.subscription(tenant, sub).await?;
        let at = now();
        let requeue = delivery::Entity::update_many()
            .col_expr(delivery::Column::Status, DeliveryStatus::Pending.into())
            .col_expr(delivery::Column::RetryIndex, 0.into())
            .col_expr(delivery::Column::NextAttemptAt, Some(at).into())
            .col_expr(delivery::Column::UpdatedAt, at.into())
            .col_expr(delivery::Column::KeyBlocked, false.into())
            .filter(delivery::Column::TenantId.eq(tenant.as_str()))
            .filter(delivery::Column::SubscriptionId.eq(sub.as_str()))
            .filter(delivery::Column::Status.eq(DeliveryStatus::Failed))
            .filter(delivery::Column::CreatedAt.gte(since));
        let txn = self.tenant_scope(tenant).await?;
        let requeued = requeue.exec(&txn).await?.rows_affected;
        txn.commit().await?;
        Ok(requeued)
    }

    /// Events accepted since `since` (of a tenant), oldest first, for replays.
    pub async fn events_created_since(
        &self,
        since: DateTime<Utc>,
        tenant: Option<&TenantId>,
    ) -> Result<Vec<(TenantId, EventId)>, StoreError> {
        let rows = event::Entity::find()
            .filter(event::Column::CreatedAt.gte(since))
            .filter(tenant_filter(event::Column::TenantId, tenant))
            .order_by_asc(event::Column::Id)
            .all(self.db())
            .await?;
        rows.into_iter().map(|e| Ok((super::stored(&e.tenant_id)?, super::stored(&e.id)?))).collect()
    }

    /// Deletes up to `batch` subscriptions that a `410 Gone` disabled
    /// before `cutoff`, with their deliveries and attempts. Zapier and Make
    /// never unsubscribe a hook whose endpoint is gone, so without this
    /// they would pile up; one disabled by its owner stays. Returns how many.
    pub async fn purge_gone_subscriptions(&self, cutoff: DateTime<Utc>, batch: u64) -> Result<u64, StoreError> {
        let gone = Condition::all()
            .add(subscription::Column::Status.eq(SubscriptionStatus::Disabled))
            .add(subscription::Column::DisabledReason.eq(super::subscriptions::GONE_REASON))
            .add(subscription::Column::UpdatedAt.lt(cutoff));
        let ids = oldest_ids::<subscription::Entity>(self.db(), gone, subscription::Column::Id, batch).await?;
        if ids.is_empty() {
            return Ok(0);
        }
        let txn = self.db().begin().await?;
        attempt::Entity::delete_many().filter(attempt::Column::SubscriptionId.is_in(ids.clone())).exec(&txn).await?;
        delivery::Entity::delete_many().filter(delivery::Column::SubscriptionId.is_in(ids.clone())).exec(&txn).await?;
        let purged = subscription::Entity::delete_many().filter(subscription::Column::Id.is_in(ids)).exec(&txn).await?;
        txn.commit().await?;
        Ok(purged.rows_affected)
    }

    /// Deletes up to `batch` finished events older than `cutoff`, with their
    /// outbox rows, deliveries and attempts, in one short transaction.
    ///
    /// An event is finished when it was published and none of its
    /// deliveries is still pending. Callers loop until a batch comes back
    /// empty; small batches keep the hot tables' locks short.
    pub async fn purge_batch(&self, cutoff: DateTime<Utc>, batch: u64) -> Result<Purged, StoreError> {
        let still_pending = Query::select()
            .column(delivery::Column::EventId)
            .from(delivery::Entity)
            .and_where(delivery::Column::Status.eq(DeliveryStatus::Pending))
            .to_owned();
        let unpublished = Query::select()
            .column(outbox::Column::EventId)
            .from(outbox::Entity)
            .and_where(outbox::Column::PublishedAt.is_null())
            .to_owned();
        let finished = Condition::all()
            .add(event::Column::CreatedAt.lt(cutoff))
            .add(event::Column::Id.not_in_subquery(still_pending))
            .add(event::Column::Id.not_in_subquery(unpublished));
        let ids = oldest_ids::<event::Entity>(self.db(), finished, event::Column::Id, batch).await?;
        if ids.is_empty() {
            return Ok(Purged::default());
        }
        let txn = self.db().begin().await?;
        let attempts =
            attempt::Entity::delete_many().filter(attempt::Column::EventId.is_in(ids.clone())).exec(&txn).await?;
        let deliveries =
            delivery::Entity::delete_many().filter(delivery::Column::EventId.is_in(ids.clone())).exec(&txn).await?;
        outbox::Entity::delete_many().filter(outbox::Column::EventId.is_in(ids.clone())).exec(&txn).await?;
        let events = event::Entity::delete_many().filter(event::Column::Id.is_in(ids)).exec(&txn).await?;
        txn.commit().await?;
        Ok(Purged {
            events: events.rows_affected,
            deliveries: deliveries.rows_affected,
            attempts: attempts.rows_affected,
        })
    }
}
