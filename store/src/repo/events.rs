use super::stored;
use crate::cipher::Cipher;
use crate::domain::{now, EventId, EventType, TenantId};
use crate::entity::{event, outbox};
use crate::page::{paginate, Page, PageRequest};
use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select, TransactionTrait,
};

/// An accepted event.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Its id, also the `webhook-id` of every delivery of it.
    pub id: EventId,
    /// The tenant it belongs to.
    pub tenant_id: TenantId,
    /// What happened.
    pub event_type: EventType,
    /// The `data` object, as ingested.
    pub data: serde_json::Value,
    /// The caller's idempotency key, if any.
    pub idempotency_key: Option<String>,
    /// When it was accepted; the `timestamp` of the webhook body.
    pub created_at: DateTime<Utc>,
}

impl Event {
    /// Reads a row, opening its sealed payload.
    pub(crate) fn from_row(m: event::Model, cipher: &Cipher) -> Result<Self, StoreError> {
        let data = cipher.open_json(m.data, &m.id)?;
        Ok(Self {
            id: stored(&m.id)?,
            tenant_id: stored(&m.tenant_id)?,
            event_type: m.event_type.parse().map_err(|_| StoreError::Corrupt(format!("event {}: type", m.id)))?,
            data,
            idempotency_key: m.idempotency_key,
            created_at: m.created_at,
        })
    }
}

/// A validated event to ingest.
#[derive(Clone, Debug)]
pub struct NewEvent {
    /// What happened.
    pub event_type: EventType,
    /// A JSON object.
    pub data: serde_json::Value,
    /// Makes a retried POST return the first event instead of a second one.
    pub idempotency_key: Option<String>,
}

/// The result of an ingest: the event, and whether it already existed.
#[derive(Clone, Debug)]
pub struct IngestOutcome {
    /// The event (the original one on a replay).
    pub event: Event,
    /// True when the idempotency key matched an earlier event.
    pub replayed: bool,
}

/// The trigger's data, plus `source_event: {id, type}` so a receiver can
/// tell why a derived event exists.
fn with_source(trigger: &Event) -> serde_json::Value {
    let mut data = trigger.data.clone();
    if let Some(map) = data.as_object_mut() {
        map.entry("source_event").or_insert_with(|| serde_json::json!({"id": trigger.id, "type": trigger.event_type}));
    }
    data
}

pub(crate) async fn insert_with_outbox(
    txn: &impl ConnectionTrait,
    event: &Event,
    cipher: &Cipher,
) -> Result<(), StoreError> {
    event::Entity::insert(event::ActiveModel {
        id: Set(event.id.to_string()),
        tenant_id: Set(event.tenant_id.to_string()),
        event_type: Set(event.event_type.to_string()),
        data: Set(cipher.seal_json(&event.data, event.id.as_str())),
        idempotency_key: Set(event.idempotency_key.clone()),
        created_at: Set(event.created_at),
    })
    .exec_without_returning(txn)
    .await?;
    outbox::Entity::insert(outbox::ActiveModel {
        id: NotSet,
        event_id: Set(event.id.to_string()),
        tenant_id: Set(event.tenant_id.to_string()),
        created_at: Set(event.created_at),
        locked_until: Set(None),
        published_at: Set(None),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

impl Store {
    /// Writes the event and its outbox row in one transaction.
    ///
    /// Either both rows exist or neither does: an accepted event is always
    /// on its way to the broker, and nothing reaches the broker that was not
    /// accepted.
    pub async fn ingest_event(&self, tenant: &TenantId, new: NewEvent) -> Result<IngestOutcome, StoreError> {
        if let Some(key) = &new.idempotency_key {
            if let Some(event) = self.event_by_idempotency_key(tenant, key).await? {
                return Ok(IngestOutcome { event, replayed: true });
            }
        }
        let event = Event {
            id: EventId::generate(),
            tenant_id: tenant.clone(),
            event_type: new.event_type,
            data: new.data,
            idempotency_key: new.idempotency_key,
            created_at: now(),
        };
        let txn = self.db().begin().await?;
        match insert_with_outbox(&txn, &event, self.cipher()).await {
            Ok(()) => {}
            // Two requests with one key raced past the lookup above: the
            // loser answers with the winner's event.
            Err(StoreError::Db(e)) if StoreError::is_unique_violation(&e) => {
                txn.rollback().await?;
                let key = event.idempotency_key.as_deref().unwrap_or_default();
                let event = self
                    .event_by_idempotency_key(tenant, key)
                    .await?
                    .ok_or_else(|| StoreError::Conflict("idempotency key".into()))?;
                return Ok(IngestOutcome { event, replayed: true });
            }
            Err(e) => return Err(e),
        }
        // Rules fire in the same transaction, keyed by (rule, event): the
        // derived events exist exactly when their trigger does. Derived
        // events fire no rules themselves, so rules cannot loop.
        for rule in Self::rules_triggered_by(&txn, tenant, &event.event_type).await? {
            let derived = Event {
                id: EventId::generate(),
                tenant_id: tenant.clone(),
                event_type: rule.emit.clone(),
                data: with_source(&event),
                idempotency_key: Some(format!("rule:{}:{}", rule.id, event.id)),
                created_at: event.created_at,
            };
            insert_with_outbox(&txn, &derived, self.cipher()).await?;
        }
        txn.commit().await?;
        Ok(IngestOutcome { event, replayed: false })
    }

    async fn event_by_idempotency_key(&self, tenant: &TenantId, key: &str) -> Result<Option<Event>, StoreError> {
        event::Entity::find()
            .filter(event::Column::TenantId.eq(tenant.as_str()))
            .filter(event::Column::IdempotencyKey.eq(key))
            .one(self.db())
            .await?
            .map(|m| Event::from_row(m, self.cipher()))
            .transpose()
    }

    /// One event of the tenant (read under row-level security).
    pub async fn event(&self, tenant: &TenantId, id: &EventId) -> Result<Event, StoreError> {
        let select = event::Entity::find_by_id(id.as_str()).filter(event::Column::TenantId.eq(tenant.as_str()));
        self.one_as_tenant(tenant, select)
            .await?
            .ok_or(StoreError::NotFound("event"))
            .and_then(|m| Event::from_row(m, self.cipher()))
    }

    /// An event by id alone, for the dispatcher, which works across tenants.
    pub async fn event_for_delivery(&self, id: &EventId) -> Result<Event, StoreError> {
        event::Entity::find_by_id(id.as_str())
            .one(self.db())
            .await?
            .ok_or(StoreError::NotFound("event"))
            .and_then(|m| Event::from_row(m, self.cipher()))
    }

    /// The tenant's events, newest first (read under row-level security).
    pub async fn list_events(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<Event>, StoreError> {
        let txn = self.tenant_scope(tenant).await?;
        let select = event::Entity::find().filter(event::Column::TenantId.eq(tenant.as_str()));
        let page = paginate(&txn, select, event::Column::Id, |m| &m.id, page).await?;
        txn.commit().await?;
        page.try_map(|m| Event::from_row(m, self.cipher()))
    }

    /// The tenant's newest events of one type (samples for Zapier), newest first.
    pub async fn recent_events(
        &self,
        tenant: &TenantId,
        event_type: &EventType,
        limit: u64,
    ) -> Result<Vec<Event>, StoreError> {
        let select = event::Entity::find()
            .filter(event::Column::TenantId.eq(tenant.as_str()))
            .filter(event::Column::EventType.eq(event_type.as_str()))
            .order_by_desc(event::Column::Id)
            .limit(limit);
        self.tenant_events(tenant, select).await
    }

    /// The tenant's events accepted at or after `since`, oldest first (for listen sessions).
    pub async fn events_since(
        &self,
        tenant: &TenantId,
        since: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<Event>, StoreError> {
        let select = event::Entity::find()
            .filter(event::Column::TenantId.eq(tenant.as_str()))
            .filter(event::Column::CreatedAt.gte(since))
            .order_by_asc(event::Column::Id)
            .limit(limit);
        self.tenant_events(tenant, select).await
    }

    /// Runs a select of the tenant's events under row-level security and opens their payloads.
    async fn tenant_events(&self, tenant: &TenantId, select: Select<event::Entity>) -> Result<Vec<Event>, StoreError> {
        self.all_as_tenant(tenant, select).await?.into_iter().map(|m| Event::from_row(m, self.cipher())).collect()
    }
}
