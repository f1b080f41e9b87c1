use super::stored;
use crate::domain::{now, EventId, EventType, TenantId};
use crate::entity::{event, outbox};
use crate::{Store, StoreError};
use chrono::Duration;
use sea_orm::sea_query::{LockBehavior, LockType, PostgresQueryBuilder, Query, UpdateStatement};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, EntityTrait, QueryFilter, QuerySelect, QueryTrait,
    Statement,
};
use std::collections::HashMap;

/// An outbox row claimed by a relay, with what the message names: the
/// event's ids and type, never its payload, which stays in the store.
#[derive(Clone, Debug)]
pub struct OutboxItem {
    /// The outbox row id, to mark published after the broker's confirm.
    pub outbox_id: i64,
    /// The event to publish.
    pub event_id: EventId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// Its type.
    pub event_type: EventType,
}

/// A claimed row as read back, with its event's type once named (`None`
/// when the event is missing).
struct Claimed {
    outbox_id: i64,
    event_id: String,
    tenant_id: String,
    event_type: Option<String>,
}

impl Claimed {
    fn into_item(self) -> Result<OutboxItem, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("outbox {}: {what}", self.outbox_id));
        let event_type = self.event_type.as_deref().ok_or_else(|| corrupt("no event"))?;
        Ok(OutboxItem {
            outbox_id: self.outbox_id,
            event_id: stored(&self.event_id)?,
            tenant_id: stored(&self.tenant_id)?,
            event_type: event_type.parse().map_err(|_| corrupt("event type"))?,
        })
    }
}

impl Store {
    /// Claims up to `limit` unpublished rows for `lease`, oldest first.
    ///
    /// The claim is a lease (`locked_until`) rather than a transaction held
    /// open across the publish: no connection waits on the broker, and a
    /// relay that dies mid-batch simply lets its lease run out. On
    /// PostgreSQL the inner `FOR UPDATE SKIP LOCKED` lets several relays
    /// claim side by side without blocking or taking the same rows, and the
    /// claim names its events' types in the same statement.
    pub async fn claim_outbox(&self, limit: u64, lease: Duration) -> Result<Vec<OutboxItem>, StoreError> {
        let at = now();
        let claimable = Query::select()
            .column(outbox::Column::Id)
            .from(outbox::Entity)
            .and_where(outbox::Column::PublishedAt.is_null())
            .cond_where(
                Condition::any().add(outbox::Column::LockedUntil.is_null()).add(outbox::Column::LockedUntil.lt(at)),
            )
            .order_by(outbox::Column::Id, sea_orm::Order::Asc)
            .limit(limit)
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .to_owned();
        let claim = outbox::Entity::update_many()
            .col_expr(outbox::Column::LockedUntil, Some(at + lease).into())
            .filter(outbox::Column::Id.in_subquery(claimable));
        let postgres = self.backend() == DatabaseBackend::Postgres;
        let claimed = if postgres {
            self.claim_and_name_on_pg(claim.into_query()).await?
        } else {
            let rows = claim.exec_with_returning(self.db()).await?;
            let unnamed = |o: outbox::Model| Claimed {
                outbox_id: o.id,
                event_id: o.event_id,
                tenant_id: o.tenant_id,
                event_type: None,
            };
            rows.into_iter().map(unnamed).collect()
        };
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = claimed.iter().map(|c| c.outbox_id).collect();
        let items = async {
            let claimed = if postgres { claimed } else { self.name_claimed(claimed).await? };
            let mut items = claimed.into_iter().map(Claimed::into_item).collect::<Result<Vec<_>, _>>()?;
            items.sort_by_key(|i| i.outbox_id);
            Ok(items)
        }
        .await;
        if items.is_err() {
            // Without this the claimed rows would wait out their lease
            // (30 s) before any relay tried them again.
            let _ = self.release_outbox(&ids).await;
        }
        items
    }

    /// The claim with its events' types in one statement: the claim's
    /// `RETURNING` joined to `events`, one round trip per relay round
    /// instead of two.
    async fn claim_and_name_on_pg(&self, mut claim: UpdateStatement) -> Result<Vec<Claimed>, StoreError> {
        claim.returning(Query::returning().columns([
            outbox::Column::Id,
            outbox::Column::EventId,
            outbox::Column::TenantId,
        ]));
        let (sql, values) = claim.build(PostgresQueryBuilder);
        let sql = format!(
            "WITH c AS ({sql}) SELECT c.id, c.event_id, c.tenant_id, e.event_type \
             FROM c LEFT JOIN events e ON e.id = c.event_id"
        );
        let rows = self.db().query_all(Statement::from_sql_and_values(DatabaseBackend::Postgres, sql, values)).await?;
        rows.iter()
            .map(|row| {
                Ok(Claimed {
                    outbox_id: row.try_get("", "id")?,
                    event_id: row.try_get("", "event_id")?,
                    tenant_id: row.try_get("", "tenant_id")?,
                    event_type: row.try_get("", "event_type")?,
                })
            })
            .collect()
    }

    /// Names the claimed rows' event types with one read (only the type:
    /// loading and opening the payloads would be wasted).
    async fn name_claimed(&self, mut claimed: Vec<Claimed>) -> Result<Vec<Claimed>, StoreError> {
        let mut types: HashMap<String, String> = event::Entity::find()
            .select_only()
            .columns([event::Column::Id, event::Column::EventType])
            .filter(event::Column::Id.is_in(claimed.iter().map(|c| c.event_id.clone())))
            .into_tuple::<(String, String)>()
            .all(self.db())
            .await?
            .into_iter()
            .collect();
        for row in &mut claimed {
            row.event_type = types.remove(&row.event_id);
        }
        Ok(claimed)
    }

    /// Deletes published rows; call only after the broker confirmed them.
    ///
    /// A published row has no further use, and a delete only marks the row
    /// dead, where setting `published_at` wrote a new version of it and its
    /// index entries, to be deleted by retention later. (`published_at`
    /// stays in the schema: the claim still skips rows an older relay
    /// marked that way.)
    pub async fn delete_published_outbox(&self, ids: &[i64]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        outbox::Entity::delete_many().filter(outbox::Column::Id.is_in(ids.iter().copied())).exec(self.db()).await?;
        Ok(())
    }

    /// Gives claimed rows back at once (the publish failed), instead of
    /// leaving them to their lease.
    pub async fn release_outbox(&self, ids: &[i64]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        outbox::Entity::update_many()
            .col_expr(outbox::Column::LockedUntil, Option::<chrono::DateTime<chrono::Utc>>::None.into())
            .filter(outbox::Column::Id.is_in(ids.iter().copied()))
            .filter(outbox::Column::PublishedAt.is_null())
            .exec(self.db())
            .await?;
        Ok(())
    }
}
