//! Ingest of many events of one tenant in one transaction (batch ingest,
//! for backfills and imports), with the same checks as single ingest:
//! schema validation, idempotency keys, rules, a suspended tenant refused.
use super::events::{IngestOutcome, NewEvent};
use super::ingest::{Pending, MAX_SCHEMA_TRIES};
use super::ingest_queue::{IngestReply, SchemaCheck};
use crate::domain::{EventId, TenantId};
use crate::{Store, StoreError};
use serde_json::Value;

/// What became of one event of a batch: accepted (or replayed by its
/// idempotency key), refused by its type's schema (`E`), or refused by the
/// store (its tenant is suspended, its key is another event's).
pub type BatchOutcome<E> = Result<Result<IngestOutcome, E>, StoreError>;

impl Store {
    /// Writes `events` of `tenant`, with their outbox rows and the events
    /// rules derive from them, in one transaction run as the tenant; per
    /// event, in order, its outcome.
    ///
    /// An event whose type validates data is checked with `check` against
    /// the schema the transaction read, and the events that pass are
    /// written in one more transaction (the first cannot know the schemas
    /// before it reads them). `Err` when a transaction failed: then none of
    /// the events it held was written.
    pub async fn ingest_together<E>(
        &self,
        tenant: &TenantId,
        events: Vec<NewEvent>,
        check: impl Fn(&Value, &Value) -> Result<(), E>,
    ) -> Result<Vec<BatchOutcome<E>>, StoreError> {
        let mut outcomes: Vec<Option<BatchOutcome<E>>> = events.iter().map(|_| None).collect();
        let mut to_write: Vec<(usize, Pending)> = events
            .into_iter()
            .enumerate()
            .map(|(i, new)| (i, (EventId::generate(), new, SchemaCheck::Unchecked)))
            .collect();
        for _ in 0..MAX_SCHEMA_TRIES {
            if to_write.is_empty() {
                break;
            }
            let (indexes, items): (Vec<usize>, Vec<Pending>) = to_write.into_iter().unzip();
            let replies = self.try_ingest_batch(tenant, &items).await?;
            to_write = Vec::new();
            for ((i, (id, new, _)), reply) in indexes.into_iter().zip(items).zip(replies) {
                match reply {
                    Ok(IngestReply::Done(outcome)) => outcomes[i] = Some(Ok(Ok(outcome))),
                    Ok(IngestReply::NeedsSchema(schema)) => match check(&schema, &new.data) {
                        Ok(()) => to_write.push((i, (id, new, SchemaCheck::Against(schema)))),
                        Err(e) => outcomes[i] = Some(Ok(Err(e))),
                    },
                    Err(e) => outcomes[i] = Some(Err(e)),
                }
            }
        }
        let changing = || Err(StoreError::Conflict("the event type's schema kept changing; try again".into()));
        Ok(outcomes.into_iter().map(|o| o.unwrap_or_else(changing)).collect())
    }
}
