//! Ingest: events and their outbox rows, group-committed per tenant under
//! row-level security.
use super::events::{insert_events, Event, IngestOutcome, NewEvent};
use super::ingest_queue::{Committer, Job};
use super::rules::Rule;
use crate::domain::{now, EventId, EventType, TenantId};
use crate::entity::event;
use crate::{Store, StoreError};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use std::collections::{HashMap, HashSet};
use tokio::sync::oneshot;

/// Where one event of a batch stands before the commit.
enum Slot {
    /// Its idempotency key belongs to an event committed earlier.
    Earlier(String),
    /// A new event: index into the batch's fresh events.
    Fresh(usize),
    /// Its key repeats that of a fresh event of the same batch.
    SameAs(usize),
}

impl Store {
    /// Writes the event and its outbox row, and the events its tenant's
    /// rules derive from it, in one transaction.
    ///
    /// Either all rows exist or none does: an accepted event is always on
    /// its way to the broker, and nothing reaches the broker that was not
    /// accepted. Concurrent calls for one tenant share the transaction
    /// (group commit); the answer comes after the commit.
    pub async fn ingest_event(&self, tenant: &TenantId, new: NewEvent) -> Result<IngestOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        if let Some(committer) = self.ingest_queue().push(tenant, Job { new, reply }) {
            // A task of its own, not this request's: if this client goes
            // away, the batch of everyone else still commits.
            tokio::spawn(self.clone().commit_queued(committer));
        }
        answer.await.map_err(|_| StoreError::Abandoned)?
    }

    /// Commits the tenant's queued events batch by batch until none is left.
    async fn commit_queued(self, mut committer: Committer) {
        while let Some(batch) = committer.next_batch() {
            let (news, replies): (Vec<NewEvent>, Vec<_>) = batch.into_iter().map(|j| (j.new, j.reply)).unzip();
            let outcomes = self.ingest_batch(committer.tenant(), &news).await;
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                // A caller that went away no longer needs its answer.
                let _ = reply.send(outcome);
            }
        }
    }

    /// One transaction for the batch; if it fails, each event alone, so one
    /// event's failure cannot fail its neighbours.
    async fn ingest_batch(&self, tenant: &TenantId, news: &[NewEvent]) -> Vec<Result<IngestOutcome, StoreError>> {
        match self.try_ingest_batch(tenant, news).await {
            Ok(outcomes) => outcomes,
            Err(e) if news.len() == 1 => vec![Err(e)],
            Err(e) => {
                tracing::warn!(error = %e, events = news.len(), "ingest batch failed; writing its events one by one");
                let mut outcomes = Vec::with_capacity(news.len());
                for new in news {
                    let one = self.try_ingest_batch(tenant, std::slice::from_ref(new)).await;
                    outcomes.push(one.and_then(|mut v| v.pop().ok_or(StoreError::Abandoned)?));
                }
                outcomes
            }
        }
    }

    /// Writes a batch in one transaction run as the tenant (row-level
    /// security on PostgreSQL); per event, its outcome.
    async fn try_ingest_batch(
        &self,
        tenant: &TenantId,
        news: &[NewEvent],
    ) -> Result<Vec<Result<IngestOutcome, StoreError>>, StoreError> {
        let txn = self.tenant_scope(tenant).await?;
        let keys: Vec<&str> = news.iter().filter_map(|n| n.idempotency_key.as_deref()).collect();
        let mut earlier = self.events_by_keys(&txn, tenant, &keys).await?;
        let created_at = now();
        let mut fresh: Vec<Event> = Vec::with_capacity(news.len());
        let mut fresh_by_key: HashMap<&str, usize> = HashMap::new();
        let slots: Vec<Slot> = news
            .iter()
            .map(|new| {
                let key = new.idempotency_key.as_deref();
                if let Some(k) = key.filter(|k| earlier.contains_key(*k)) {
                    return Slot::Earlier(k.to_owned());
                }
                if let Some(&i) = key.and_then(|k| fresh_by_key.get(k)) {
                    return Slot::SameAs(i);
                }
                if let Some(k) = key {
                    fresh_by_key.insert(k, fresh.len());
                }
                fresh.push(Event {
                    id: EventId::generate(),
                    tenant_id: tenant.clone(),
                    event_type: new.event_type.clone(),
                    data: new.data.clone(),
                    idempotency_key: new.idempotency_key.clone(),
                    created_at,
                });
                Slot::Fresh(fresh.len() - 1)
            })
            .collect();
        let inserted = insert_events(&txn, &fresh, self.cipher()).await?;
        // Another transaction committed one of these keys after our lookup:
        // those callers get its event, as a replay.
        let lost: Vec<&str> = fresh
            .iter()
            .filter(|e| !inserted.contains(e.id.as_str()))
            .filter_map(|e| e.idempotency_key.as_deref())
            .collect();
        if !lost.is_empty() {
            earlier.extend(self.events_by_keys(&txn, tenant, &lost).await?);
        }
        let triggers: Vec<&Event> = fresh.iter().filter(|e| inserted.contains(e.id.as_str())).collect();
        let derived = Self::derived_events(&txn, tenant, &triggers).await?;
        insert_events(&txn, &derived, self.cipher()).await?;
        txn.commit().await?;
        let replay = |key: Option<&str>| {
            key.and_then(|k| earlier.get(k))
                .map(|event| IngestOutcome { event: event.clone(), replayed: true })
                .ok_or_else(|| StoreError::Conflict("idempotency key".into()))
        };
        Ok(slots
            .into_iter()
            .map(|slot| match slot {
                Slot::Earlier(key) => replay(Some(&key)),
                Slot::Fresh(i) if inserted.contains(fresh[i].id.as_str()) => {
                    Ok(IngestOutcome { event: fresh[i].clone(), replayed: false })
                }
                Slot::Fresh(i) => replay(fresh[i].idempotency_key.as_deref()),
                Slot::SameAs(i) if inserted.contains(fresh[i].id.as_str()) => {
                    Ok(IngestOutcome { event: fresh[i].clone(), replayed: true })
                }
                Slot::SameAs(i) => replay(fresh[i].idempotency_key.as_deref()),
            })
            .collect())
    }

    /// The tenant's events with these idempotency keys, by key.
    async fn events_by_keys(
        &self,
        db: &impl ConnectionTrait,
        tenant: &TenantId,
        keys: &[&str],
    ) -> Result<HashMap<String, Event>, StoreError> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let rows = event::Entity::find()
            .filter(event::Column::TenantId.eq(tenant.as_str()))
            .filter(event::Column::IdempotencyKey.is_in(keys.iter().copied()))
            .all(db)
            .await?;
        rows.into_iter()
            .map(|m| {
                let event = Event::from_row(m, self.cipher())?;
                Ok((event.idempotency_key.clone().unwrap_or_default(), event))
            })
            .collect()
    }

    /// The events the tenant's rules derive from `triggers`, keyed by (rule,
    /// trigger) so they exist exactly when their trigger does. Derived
    /// events fire no rules themselves, so rules cannot loop.
    async fn derived_events(
        db: &impl ConnectionTrait,
        tenant: &TenantId,
        triggers: &[&Event],
    ) -> Result<Vec<Event>, StoreError> {
        if triggers.is_empty() {
            return Ok(Vec::new());
        }
        let types: HashSet<&EventType> = triggers.iter().map(|e| &e.event_type).collect();
        let rules: Vec<Rule> = Self::rules_triggered_by(db, tenant, types).await?;
        Ok(triggers
            .iter()
            .flat_map(|trigger| {
                rules.iter().filter(|rule| rule.on == trigger.event_type).map(|rule| Event {
                    id: EventId::generate(),
                    tenant_id: tenant.clone(),
                    event_type: rule.emit.clone(),
                    data: super::events::with_source(trigger),
                    idempotency_key: Some(format!("rule:{}:{}", rule.id, trigger.id)),
                    created_at: trigger.created_at,
                })
            })
            .collect())
    }
}
