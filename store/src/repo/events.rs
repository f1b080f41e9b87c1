//! Events: writing accepted events with their outbox rows, and reading them
//! back with their payloads opened.
use super::pg;
use super::stored;
use crate::cipher::Cipher;
use crate::domain::{EventId, EventType, IdempotencyKey, OrderingKey, TenantId};
use crate::entity::{event, outbox};
use crate::page::{paginate, Page, PageRequest};
use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
    Select,
};
use std::collections::{HashMap, HashSet};

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
    /// The digest of its sender's idempotency key, if it had one.
    pub idempotency_key: Option<IdempotencyKey>,
    /// When it was accepted; the `timestamp` of the webhook body.
    pub created_at: DateTime<Utc>,
    /// What its deliveries to ordered subscriptions keep order by.
    pub ordering_key: Option<OrderingKey>,
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
            idempotency_key: m.idempotency_key.map(IdempotencyKey::from_stored),
            created_at: m.created_at,
            ordering_key: m
                .ordering_key
                .map(|k| k.parse().map_err(|_| StoreError::Corrupt(format!("event {}: ordering_key", m.id))))
                .transpose()?,
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
    pub idempotency_key: Option<IdempotencyKey>,
    /// What its deliveries to ordered subscriptions keep order by.
    pub ordering_key: Option<OrderingKey>,
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
pub(super) fn with_source(trigger: &Event) -> serde_json::Value {
    let mut data = trigger.data.clone();
    if let Some(map) = data.as_object_mut() {
        map.entry("source_event").or_insert_with(|| serde_json::json!({"id": trigger.id, "type": trigger.event_type}));
    }
    data
}

/// Rows per multi-row `INSERT`, well below either backend's parameter limit.
const INSERT_CHUNK: usize = 500;

/// Inserts events and, for each one that did not exist, its outbox row;
/// returns the ids inserted. An event whose idempotency key is taken is
/// skipped (`ON CONFLICT DO NOTHING`), not an error, so one repeated key
/// cannot abort the transaction it shares with other events.
pub(crate) async fn insert_events(
    txn: &impl ConnectionTrait,
    events: &[Event],
    cipher: &Cipher,
) -> Result<HashSet<String>, StoreError> {
    let backend = txn.get_database_backend();
    let mut inserted = HashSet::with_capacity(events.len());
    for chunk in events.chunks(INSERT_CHUNK) {
        let rows = chunk.iter().map(|event| event::ActiveModel {
            id: Set(event.id.to_string()),
            tenant_id: Set(event.tenant_id.to_string()),
            event_type: Set(event.event_type.to_string()),
            data: Set(cipher.seal_json(&event.data, event.id.as_str())),
            idempotency_key: Set(event.idempotency_key.as_ref().map(|k| k.as_str().to_owned())),
            created_at: Set(event.created_at),
            ordering_key: Set(event.ordering_key.as_ref().map(|k| k.as_str().to_owned())),
            fan_out_pending: Set(event.ordering_key.is_some()),
        });
        if backend == DatabaseBackend::Postgres {
            inserted.extend(pg::insert_events_with_outbox(txn, rows).await?);
            continue;
        }
        let mut insert = event::Entity::insert_many(rows).on_conflict(OnConflict::new().do_nothing().to_owned());
        insert.query().returning_col(event::Column::Id);
        for row in txn.query_all(insert.build(backend)).await? {
            inserted.insert(row.try_get::<String>("", "id")?);
        }
        let outbox_rows: Vec<_> = chunk
            .iter()
            .filter(|e| inserted.contains(e.id.as_str()))
            .map(|event| outbox::ActiveModel {
                id: NotSet,
                event_id: Set(event.id.to_string()),
                tenant_id: Set(event.tenant_id.to_string()),
                created_at: Set(event.created_at),
                locked_until: Set(None),
                published_at: Set(None),
                quarantined_at: Set(None),
                quarantine_reason: Set(None),
            })
            .collect();
        if !outbox_rows.is_empty() {
            outbox::Entity::insert_many(outbox_rows).exec_without_returning(txn).await?;
        }
    }
    Ok(inserted)
}

/// The event of a row, or `None` (logged) when its payload does not open:
/// the dispatcher goes on with the others, and the retry path, which loads
/// it again, keeps reporting it.
pub(crate) fn readable(row: event::Model, cipher: &Cipher) -> Option<Event> {
    let id = row.id.clone();
    Event::from_row(row, cipher)
        .map_err(|e| tracing::error!(event_id = %id, error = %e, "event cannot be read; its deliveries wait"))
        .ok()
}

impl Store {
    /// One event of the tenant (read under row-level security).
    pub async fn event(&self, tenant: &TenantId, id: &EventId) -> Result<Event, StoreError> {
        let select = event::Entity::find_by_id(id.as_str()).filter(event::Column::TenantId.eq(tenant.as_str()));
        self.one_as_tenant(tenant, select)
            .await?
            .ok_or(StoreError::NotFound("event"))
            .and_then(|m| Event::from_row(m, self.cipher()))
    }

    /// Events by id, for the dispatcher, which works across tenants; keyed by
    /// id, missing ones left out. So is one whose payload does not open (a
    /// key taken out of the keyring): it must not fail the fan-out of the
    /// events read with it. Its deliveries are stored all the same, and the
    /// retry path, which loads it again, keeps reporting it.
    pub async fn events_for_delivery(&self, ids: &[EventId]) -> Result<HashMap<String, Event>, StoreError> {
        let mut events = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(INSERT_CHUNK) {
            let rows = event::Entity::find()
                .filter(event::Column::Id.is_in(chunk.iter().map(EventId::as_str)))
                .all(self.reader())
                .await?;
            for m in rows {
                let id = m.id.clone();
                events.extend(readable(m, self.cipher()).map(|event| (id, event)));
            }
        }
        Ok(events)
    }

    /// The tenant's events, newest first (read under row-level security).
    pub async fn list_events(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<Event>, StoreError> {
        let txn = self.tenant_scope(tenant).await?;
        let select = event::Entity::find().filter(event::Column::TenantId.eq(tenant.as_str()));
        let page = paginate(&txn, select, event::Column::Id, |m| &m.id, page).await?;
        txn.commit().await?;
        page.try_map(|m| Event::from_row(m, self.cipher()))
    }

    /// The tenant's newest events of one type, or of any type for `None`
    /// (samples for Zapier), newest first.
    pub async fn recent_events(
        &self,
        tenant: &TenantId,
        event_type: Option<&EventType>,
        limit: u64,
    ) -> Result<Vec<Event>, StoreError> {
        let mut select = event::Entity::find().filter(event::Column::TenantId.eq(tenant.as_str()));
        if let Some(event_type) = event_type {
            select = select.filter(event::Column::EventType.eq(event_type.as_str()));
        }
        let select = select.order_by_desc(event::Column::Id).limit(limit);
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
