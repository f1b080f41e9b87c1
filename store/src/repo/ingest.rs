//! Ingest: events and their outbox rows, group-committed per tenant under
//! row-level security.
use super::event_types::validation_schema;
use super::events::{insert_events, Event, IngestOutcome, NewEvent};
use super::ingest_queue::{Committer, IngestReply, Job, SchemaCheck};
use super::pg;
use super::rules::Rule;
use crate::domain::{now, EventId, EventType, IdempotencyKey, KeyNamespace, TenantId};
use crate::entity::{event, event_type};
use crate::{Store, StoreError};
use sea_orm::sea_query::IntoCondition;
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, QueryFilter};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use tokio::sync::oneshot;

/// How often an event is sent back for a schema before giving up: more
/// than once means the type's schema changed between two batches.
pub(super) const MAX_SCHEMA_TRIES: usize = 3;

/// An event waiting in a batch: the id it gets, the event, and what its
/// data was checked against.
pub(super) type Pending = (EventId, NewEvent, SchemaCheck);

/// What a batch's transaction reads before it writes.
struct BatchContext {
    /// The schemas the batch's checked types require, by type name.
    required: HashMap<String, Value>,
    /// The tenant's rules the batch's types trigger, oldest first.
    rules: Vec<Rule>,
}

/// Where one event of a batch stands before the commit.
enum Slot {
    /// Its type requires this schema, which it was not checked against.
    NeedsSchema(Value),
    /// Its idempotency key belongs to an event committed earlier (by an
    /// earlier try of this very event when the ids match).
    Earlier(String),
    /// A new event: index into the batch's fresh events.
    Fresh(usize),
    /// Its key repeats that of a fresh event of the same batch.
    SameAs(usize),
}

impl Store {
    /// Writes the event and its outbox row, and the events its tenant's
    /// rules derive from it, in one transaction; the type's validation
    /// setting does not apply (events from inbound sources).
    ///
    /// Either all rows exist or none does: an accepted event is always on
    /// its way to the broker, and nothing reaches the broker that was not
    /// accepted. Concurrent calls for one tenant share the transaction
    /// (group commit); the answer comes after the commit.
    pub async fn ingest_event(&self, tenant: &TenantId, new: NewEvent) -> Result<IngestOutcome, StoreError> {
        match self.submit(tenant, new, SchemaCheck::Exempt).await? {
            IngestReply::Done(outcome) => Ok(outcome),
            IngestReply::NeedsSchema(_) => {
                Err(StoreError::Conflict("an exempt event was sent back for a schema".into()))
            }
        }
    }

    /// Like [`Self::ingest_event`], but when the tenant turned validation on
    /// for the event's type, its data must pass `check` against the type's
    /// JSON Schema; `check`'s error comes back as the inner `Err`.
    ///
    /// The setting is read in the transaction that writes the event, once
    /// per batch rather than once per request, so it is never stale: an
    /// event whose type requires a schema it was not checked against comes
    /// back, is checked, and is queued again.
    pub async fn ingest_checked_event<E>(
        &self,
        tenant: &TenantId,
        new: NewEvent,
        check: impl Fn(&Value, &Value) -> Result<(), E>,
    ) -> Result<Result<IngestOutcome, E>, StoreError> {
        let mut checked = SchemaCheck::Unchecked;
        for _ in 0..MAX_SCHEMA_TRIES {
            match self.submit(tenant, new.clone(), checked).await? {
                IngestReply::Done(outcome) => return Ok(Ok(outcome)),
                IngestReply::NeedsSchema(schema) => {
                    if let Err(e) = check(&schema, &new.data) {
                        return Ok(Err(e));
                    }
                    checked = SchemaCheck::Against(schema);
                }
            }
        }
        Err(StoreError::Conflict("the event type's schema kept changing; try again".into()))
    }

    /// Test hook: the next `n` ingest transactions report a failure after
    /// they committed, as a connection lost during `COMMIT` would.
    #[doc(hidden)]
    pub fn fail_ingest_commits_ambiguously(&self, n: usize) {
        self.ingest_queue().fail_commits_ambiguously(n);
    }

    /// Queues an event for its tenant's next transaction and waits for the answer.
    async fn submit(&self, tenant: &TenantId, new: NewEvent, check: SchemaCheck) -> Result<IngestReply, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = Job { id: EventId::generate(), new, check, reply };
        if let Some(committer) = self.ingest_queue().push(tenant, job) {
            // A task of its own, not this request's: if this client goes
            // away, the batch of everyone else still commits.
            self.ingest_queue().spawn(self.clone().commit_queued(committer));
        }
        answer.await.map_err(|_| StoreError::Abandoned)?
    }

    /// Commits the tenant's queued events batch by batch until none is left.
    async fn commit_queued(self, mut committer: Committer) {
        while let Some(batch) = committer.next_batch() {
            let (items, replies): (Vec<Pending>, Vec<_>) =
                batch.into_iter().map(|j| ((j.id, j.new, j.check), j.reply)).unzip();
            let outcomes = self.ingest_batch(committer.tenant(), &items).await;
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                // A caller that went away no longer needs its answer.
                let _ = reply.send(outcome);
            }
        }
    }

    /// One transaction for the batch; if it fails, each event alone, so one
    /// event's failure cannot fail its neighbours. A failed `COMMIT` may
    /// still have committed: the retry writes the same ids, so it finds
    /// such events instead of writing them twice (and so does the retry of
    /// a batch of one, whose caller would otherwise get an error for an
    /// event that exists).
    async fn ingest_batch(&self, tenant: &TenantId, items: &[Pending]) -> Vec<Result<IngestReply, StoreError>> {
        match self.try_ingest_batch(tenant, items).await {
            Ok(outcomes) => outcomes,
            Err(e) => {
                tracing::warn!(error = %e, events = items.len(), "ingest batch failed; writing its events one by one");
                let mut outcomes = Vec::with_capacity(items.len());
                for item in items {
                    let one = self.try_ingest_batch(tenant, std::slice::from_ref(item)).await;
                    outcomes.push(one.and_then(|mut v| v.pop().ok_or(StoreError::Abandoned)?));
                }
                outcomes
            }
        }
    }

    /// Writes a batch in one transaction run as the tenant (row-level
    /// security on PostgreSQL); per event, its outcome.
    pub(super) async fn try_ingest_batch(
        &self,
        tenant: &TenantId,
        items: &[Pending],
    ) -> Result<Vec<Result<IngestReply, StoreError>>, StoreError> {
        let txn = self.tenant_scope(tenant).await?;
        // Read in the transaction that writes, so an event is never
        // accepted after its tenant's suspension committed.
        if self.tenant_paused(&txn, tenant.as_str()).await? {
            return Ok(items.iter().map(|_| Err(StoreError::TenantSuspended)).collect());
        }
        let BatchContext { required, rules } = Self::batch_context(&txn, tenant, items).await?;
        let keys: Vec<&str> = items.iter().filter_map(|(_, n, _)| key_of(&n.idempotency_key)).collect();
        let mut earlier = self.events_by_keys(&txn, tenant, &keys).await?;
        let created_at = now();
        let mut fresh: Vec<Event> = Vec::with_capacity(items.len());
        let mut fresh_by_key: HashMap<&str, usize> = HashMap::new();
        let slots: Vec<Slot> = items
            .iter()
            .map(|(id, new, check)| {
                if let Some(schema) = required.get(new.event_type.as_str()) {
                    let passed = match check {
                        SchemaCheck::Exempt => true,
                        SchemaCheck::Unchecked => false,
                        SchemaCheck::Against(checked) => checked == schema,
                    };
                    if !passed {
                        return Slot::NeedsSchema(schema.clone());
                    }
                }
                let key = key_of(&new.idempotency_key);
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
                    id: id.clone(),
                    tenant_id: tenant.clone(),
                    event_type: new.event_type.clone(),
                    data: new.data.clone(),
                    idempotency_key: new.idempotency_key.clone(),
                    created_at,
                    ordering_key: new.ordering_key.clone(),
                });
                Slot::Fresh(fresh.len() - 1)
            })
            .collect();
        let inserted = insert_events(&txn, &fresh, self.cipher()).await?;
        let skipped: Vec<&str> =
            fresh.iter().filter(|e| !inserted.contains(e.id.as_str())).map(|e| e.id.as_str()).collect();
        // An earlier try of this batch committed but reported failure: its
        // events are there under the ids their callers get now.
        let written = if skipped.is_empty() {
            HashMap::new()
        } else {
            let rows = self.events_where(&txn, event::Column::Id.is_in(skipped.iter().copied())).await?;
            rows.into_iter().map(|e| (e.id.to_string(), e)).collect()
        };
        // Another transaction committed one of these keys after our lookup:
        // those callers get its event, as a replay.
        let lost: Vec<&str> = fresh
            .iter()
            .filter(|e| !inserted.contains(e.id.as_str()) && !written.contains_key(e.id.as_str()))
            .filter_map(|e| key_of(&e.idempotency_key))
            .collect();
        if !lost.is_empty() {
            earlier.extend(self.events_by_keys(&txn, tenant, &lost).await?);
        }
        let triggers: Vec<&Event> = fresh.iter().filter(|e| inserted.contains(e.id.as_str())).collect();
        let derived = Self::derived_events(tenant, &rules, &triggers);
        insert_events(&txn, &derived, self.cipher()).await?;
        txn.commit().await?;
        if self.ingest_queue().take_ambiguous_commit() {
            return Err(StoreError::Conflict("the commit's outcome is unknown (injected)".into()));
        }
        // The caller's event was found by its key: a replay, unless an
        // earlier try of this same event wrote it.
        let replay = |key: Option<&str>, id: &EventId| {
            key.and_then(|k| earlier.get(k))
                .map(|event| IngestReply::Done(IngestOutcome { event: event.clone(), replayed: event.id != *id }))
                .ok_or_else(|| StoreError::Conflict("idempotency key".into()))
        };
        let done = |event: &Event, replayed| Ok(IngestReply::Done(IngestOutcome { event: event.clone(), replayed }));
        let stored = |i: usize| {
            let event = &fresh[i];
            if inserted.contains(event.id.as_str()) {
                Some(event)
            } else {
                written.get(event.id.as_str())
            }
        };
        Ok(slots
            .into_iter()
            .zip(items)
            .map(|(slot, (id, _, _))| match slot {
                Slot::NeedsSchema(schema) => Ok(IngestReply::NeedsSchema(schema)),
                Slot::Earlier(key) => replay(Some(&key), id),
                Slot::Fresh(i) => {
                    stored(i).map_or_else(|| replay(key_of(&fresh[i].idempotency_key), id), |e| done(e, false))
                }
                Slot::SameAs(i) => {
                    stored(i).map_or_else(|| replay(key_of(&fresh[i].idempotency_key), id), |e| done(e, true))
                }
            })
            .collect())
    }

    /// What the batch's transaction reads before it writes: the schemas
    /// its types require (for the tenant's validating types; exempt events
    /// do not ask) and the rules its types trigger. On PostgreSQL one
    /// statement, since every round trip here delays every event of the batch.
    async fn batch_context(
        db: &impl ConnectionTrait,
        tenant: &TenantId,
        items: &[Pending],
    ) -> Result<BatchContext, StoreError> {
        let checked: HashSet<&str> = items
            .iter()
            .filter(|(_, _, check)| *check != SchemaCheck::Exempt)
            .map(|(_, new, _)| new.event_type.as_str())
            .collect();
        let types: HashSet<&EventType> = items.iter().map(|(_, new, _)| &new.event_type).collect();
        if db.get_database_backend() == DatabaseBackend::Postgres {
            return Self::batch_context_on_pg(db, tenant, &checked, &types).await;
        }
        let required = if checked.is_empty() {
            HashMap::new()
        } else {
            event_type::Entity::find()
                .filter(event_type::Column::TenantId.eq(tenant.as_str()))
                .filter(event_type::Column::Validate.eq(true))
                .filter(event_type::Column::Name.is_in(checked.iter().copied()))
                .all(db)
                .await?
                .into_iter()
                .filter_map(|row| Some((row.name.clone(), validation_schema(&row.name, row.schema)?)))
                .collect()
        };
        let rules = Self::rules_triggered_by(db, tenant, types).await?;
        Ok(BatchContext { required, rules })
    }

    /// [`Self::batch_context`] from PostgreSQL's one read.
    async fn batch_context_on_pg(
        db: &impl ConnectionTrait,
        tenant: &TenantId,
        checked: &HashSet<&str>,
        types: &HashSet<&EventType>,
    ) -> Result<BatchContext, StoreError> {
        let (schemas, rules) = pg::batch_context(db, tenant, checked, types).await?;
        let required =
            schemas.into_iter().filter_map(|(name, schema)| Some((name.clone(), validation_schema(&name, schema)?)));
        let rules = rules.into_iter().map(Rule::try_from).collect::<Result<_, _>>()?;
        Ok(BatchContext { required: required.collect(), rules })
    }

    /// The tenant's events with these idempotency keys (digests), by key.
    async fn events_by_keys(
        &self,
        db: &impl ConnectionTrait,
        tenant: &TenantId,
        keys: &[&str],
    ) -> Result<HashMap<String, Event>, StoreError> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let condition =
            event::Column::TenantId.eq(tenant.as_str()).and(event::Column::IdempotencyKey.is_in(keys.iter().copied()));
        let events = self.events_where(db, condition).await?;
        Ok(events.into_iter().filter_map(|e| Some((key_of(&e.idempotency_key)?.to_owned(), e))).collect())
    }

    /// The events matching `condition`, payloads opened.
    async fn events_where(
        &self,
        db: &impl ConnectionTrait,
        condition: impl IntoCondition,
    ) -> Result<Vec<Event>, StoreError> {
        let rows = event::Entity::find().filter(condition).all(db).await?;
        rows.into_iter().map(|m| Event::from_row(m, self.cipher())).collect()
    }

    /// The events `rules` derive from `triggers`, keyed by (rule, trigger)
    /// so they exist exactly when their trigger does. Derived events fire
    /// no rules themselves, so rules cannot loop.
    fn derived_events(tenant: &TenantId, rules: &[Rule], triggers: &[&Event]) -> Vec<Event> {
        triggers
            .iter()
            .flat_map(|trigger| {
                rules.iter().filter(|rule| rule.on == trigger.event_type).map(|rule| Event {
                    id: EventId::generate(),
                    tenant_id: tenant.clone(),
                    event_type: rule.emit.clone(),
                    data: super::events::with_source(trigger),
                    idempotency_key: Some(IdempotencyKey::new(
                        tenant,
                        &KeyNamespace::Rule,
                        &format!("{}:{}", rule.id, trigger.id),
                    )),
                    created_at: trigger.created_at,
                    // A derived event is about what its trigger is about.
                    ordering_key: trigger.ordering_key.clone(),
                })
            })
            .collect()
    }
}

/// An optional idempotency key's stored form.
fn key_of(key: &Option<IdempotencyKey>) -> Option<&str> {
    key.as_ref().map(IdempotencyKey::as_str)
}
