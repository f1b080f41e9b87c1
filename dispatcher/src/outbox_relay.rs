//! The outbox relay: accepted events → broker, deleted from the outbox only after
//! the broker confirmed them.
//!
//! A crash between the confirm and the delete republishes the batch when the
//! claim's lease runs out: a duplicate, which fan-out absorbs, never a loss.
use crate::queue::{EventMessage, Publisher, QueueError};
use crate::RelayConfig;
use hookhub_store::{Store, StoreError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Why a relay round failed; the next round tries again.
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

    /// One round: claim a batch, publish it, delete it. Returns how many
    /// rows the claim took (published or quarantined), so a full batch of
    /// quarantined rows still makes the next round start at once.
    pub async fn relay_once(&self) -> Result<usize, RelayError> {
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
            crate::metrics::metrics().outbox_quarantined.with_label_values(&[row.reason.as_str()]).inc();
        }
        let items = claim.items;
        let set_aside = claim.quarantined.len();
        if items.is_empty() {
            return Ok(set_aside);
        }
        let ids: Vec<i64> = items.iter().map(|i| i.outbox_id).collect();
        let messages: Vec<EventMessage> = items
            .iter()
            .map(|i| EventMessage {
                event_id: i.event_id.to_string(),
                tenant_id: i.tenant_id.to_string(),
                event_type: i.event_type.to_string(),
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
        crate::metrics::metrics().events_published.inc_by(ids.len() as u64);
        tracing::debug!(count = ids.len(), "published");
        Ok(ids.len() + set_aside)
    }

    /// Relays until `shutdown`; the round in progress is finished first.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut failures = 0u32;
        loop {
            let wait = match self.relay_once().await {
                Ok(n) if n as u64 >= self.config.batch_size => {
                    failures = 0;
                    Duration::ZERO
                }
                Ok(_) => {
                    failures = 0;
                    self.config.poll_interval
                }
                Err(e) => {
                    failures += 1;
                    let wait = error_backoff(failures);
                    tracing::warn!(error = %e, ?wait, "relay round failed");
                    wait
                }
            };
            if shutdown.is_cancelled() {
                break;
            }
            if !wait.is_zero() {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
        self.publisher.close().await;
        tracing::info!("outbox relay stopped");
    }
}

/// Doubling waits after consecutive failures, 100 ms up to 10 s.
pub(crate) fn error_backoff(failures: u32) -> Duration {
    let ms = 100u64.saturating_mul(1 << failures.min(7));
    Duration::from_millis(ms.min(10_000))
}
