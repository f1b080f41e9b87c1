//! The outbox relay: accepted events → broker, deleted from the outbox only after
//! the broker confirmed them.
//!
//! A crash between the confirm and the delete republishes the batch when the
//! claim's lease runs out: a duplicate, which fan-out absorbs, never a loss.
use crate::queue::{EventMessage, Publisher, QueueError};
use crate::RelayConfig;
use hookhub_store::repo::OutboxItem;
use hookhub_store::{Store, StoreError};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Why a relay batch failed; the next claim tries again.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// Claiming or deleting rows failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The broker did not confirm.
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// Moves events from the outbox to the queue.
pub struct OutboxRelay {
    store: Store,
    publisher: Arc<dyn Publisher>,
    config: RelayConfig,
    wake: Arc<Notify>,
}

impl OutboxRelay {
    /// A relay over `store` publishing through `publisher`.
    pub fn new(store: Store, publisher: Arc<dyn Publisher>, config: RelayConfig) -> Self {
        Self { store, publisher, config, wake: Arc::new(Notify::new()) }
    }

    /// Notifying this wakes an idle relay at once (ingest does, after each event).
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Claims the next batch, tenants in turn (see
    /// `hookhub_store::Store::claim_outbox`), and sets aside the rows that
    /// cannot be published. Returns how many rows the claim took
    /// (published or quarantined), so a full batch of quarantined rows
    /// still makes the next claim start at once, and the rows to publish.
    async fn claim(&self) -> Result<(usize, Vec<OutboxItem>), RelayError> {
        let lease = chrono::Duration::from_std(self.config.lease).unwrap_or(chrono::Duration::seconds(30));
        let claim = self.store.claim_outbox(self.config.batch_size, lease).await?;
        for row in &claim.quarantined {
            // Ids only: the event's content never reaches the log.
            tracing::warn!(
                outbox_id = row.outbox_id,
                event_id = %row.event_id,
                tenant_id = %row.tenant_id,
                reason = row.reason.as_str(),
                "outbox row quarantined: it cannot be published (see `hookhub outbox quarantined`)"
            );
            hookhub_store::metrics::metrics().outbox_quarantined.with_label_values(&[row.reason.as_str()]).inc();
        }
        Ok((claim.items.len() + claim.quarantined.len(), claim.items))
    }

    /// Publishes claimed rows and deletes them once the broker confirmed.
    async fn publish(&self, items: Vec<OutboxItem>) -> Result<(), RelayError> {
        let ids: Vec<i64> = items.iter().map(|i| i.outbox_id).collect();
        let messages: Vec<EventMessage> = items
            .iter()
            .map(|i| EventMessage {
                event_id: i.event_id.to_string(),
                tenant_id: i.tenant_id.to_string(),
                event_type: i.event_type.to_string(),
                ordering_key: i.ordering_key.as_ref().map(|k| k.as_str().to_owned()),
            })
            .collect();
        if let Err(e) = self.publisher.publish(&messages).await {
            // Hand the rows back now rather than after the lease.
            if let Err(release) = self.store.release_outbox(&ids).await {
                tracing::warn!(error = %release, "could not release outbox rows; they return after their lease");
            }
            return Err(e.into());
        }
        self.store.delete_published_outbox(&ids).await?;
        hookhub_store::metrics::metrics().events_published.inc_by(ids.len() as u64);
        tracing::debug!(count = ids.len(), "published");
        Ok(())
    }

    /// Whether the broker already holds enough messages no consumer has
    /// taken: then the backlog is better left in the outbox, where the
    /// next claim takes tenants in turn, than in the queue, which hands
    /// them out first come.
    async fn broker_is_ahead(&self) -> bool {
        self.publisher.waiting().await.is_some_and(|ready| ready >= BROKER_AHEAD)
    }

    /// Relays until `shutdown`; batches in flight are finished first.
    ///
    /// Up to `batches_in_flight` batches are published at once, so a new
    /// claim (and a quiet tenant's event in it) never waits for the
    /// slowest batch before it: with the in-process queue a publish
    /// returns only when fan-out has written the batch.
    pub async fn run(self, shutdown: CancellationToken) {
        let this = Arc::new(self);
        let in_flight = Arc::new(Semaphore::new(this.config.batches_in_flight.max(1)));
        let failures = Arc::new(AtomicU32::new(0));
        let tasks = TaskTracker::new();
        loop {
            let failed = failures.load(Ordering::Acquire);
            let wait = if failed > 0 { error_backoff(failed) } else { Duration::ZERO };
            let place = tokio::select! {
                _ = shutdown.cancelled() => break,
                place = async {
                    tokio::time::sleep(wait).await;
                    in_flight.clone().acquire_owned().await
                } => place.expect("semaphore is never closed"),
            };
            if this.broker_is_ahead().await {
                drop(place);
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(BROKER_AHEAD_PAUSE) => continue,
                }
            }
            let claimed = match this.claim().await {
                Ok(claimed) => claimed,
                Err(e) => {
                    let failed = failures.fetch_add(1, Ordering::AcqRel) + 1;
                    tracing::warn!(error = %e, wait = ?error_backoff(failed), "relay claim failed");
                    continue;
                }
            };
            let (taken, items) = claimed;
            if items.is_empty() {
                // Nothing to publish, so no publish can fail: a store that
                // answers is back.
                failures.store(0, Ordering::Release);
            } else {
                let (this, failures) = (this.clone(), failures.clone());
                tasks.spawn(async move {
                    match this.publish(items).await {
                        Ok(()) => failures.store(0, Ordering::Release),
                        Err(e) => {
                            let failed = failures.fetch_add(1, Ordering::AcqRel) + 1;
                            tracing::warn!(error = %e, wait = ?error_backoff(failed), "relay publish failed");
                        }
                    }
                    drop(place);
                });
            }
            if (taken as u64) < this.config.batch_size {
                // Caught up: wait for ingest's nudge or the poll interval.
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = this.wake.notified() => {}
                    _ = tokio::time::sleep(this.config.poll_interval) => {}
                }
            }
        }
        tasks.close();
        tasks.wait().await;
        this.publisher.close().await;
        tracing::info!("outbox relay stopped");
    }
}

/// Messages ready in the broker (published, not yet taken by a consumer)
/// at which the relay stops claiming. One: a message no consumer had room
/// for is first come, first served, so the next claim, which may carry a
/// quiet tenant's event, waits in the outbox until the consumers take it.
const BROKER_AHEAD: u32 = 1;

/// How long the relay waits before asking the broker again.
const BROKER_AHEAD_PAUSE: Duration = Duration::from_millis(10);

/// Doubling waits after consecutive failures, 100 ms up to 10 s.
pub(crate) fn error_backoff(failures: u32) -> Duration {
    let ms = 100u64.saturating_mul(1 << failures.min(7));
    Duration::from_millis(ms.min(10_000))
}
