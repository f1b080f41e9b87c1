//! The outbox relay: accepted events → broker, deleted from the outbox only after
//! the broker confirmed them.
//!
//! A crash between the confirm and the delete republishes the batch when the
//! claim's lease runs out: a duplicate, which fan-out absorbs, never a loss.
//!
//! Two lanes. The main lane claims every tenant's rows in turn, and is
//! held back while the broker is ahead of the consumers (or, in process,
//! while every place waits for fan-out), so a backlog stays in the outbox.
//! While it works through a backlog, the express lane
//! ([`crate::express_lane`]) moves the events of tenants without one past
//! it.
use crate::express_lane::HeavyTenants;
use crate::queue::{EventMessage, Lane, Publisher, QueueError};
use crate::RelayConfig;
use hookhub_store::outbox_nudge::OutboxNudge;
use hookhub_store::repo::{OutboxClaim, OutboxItem};
use hookhub_store::{Store, StoreError};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
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
    pub(crate) store: Store,
    publisher: Arc<dyn Publisher>,
    config: RelayConfig,
    pub(crate) nudge: Arc<OutboxNudge>,
    /// The main lane is not waiting for a nudge: it claims, or waits for
    /// the broker or for a place. The express lane's cue: a main lane that
    /// waits for a nudge claims a new event at once, so the express lane
    /// leaves it alone then, but one that is claiming would take the event
    /// only with its next claim, after the one under way (tens of
    /// milliseconds under a burst, as the claim numbers the backlog).
    busy: AtomicBool,
    /// Wakes the express lane when the main lane becomes busy.
    pub(crate) became_busy: Notify,
    /// Tenants the express lane leaves to the main lane.
    pub(crate) heavy: HeavyTenants,
}

impl OutboxRelay {
    /// A relay over `store` publishing through `publisher`.
    pub fn new(store: Store, publisher: Arc<dyn Publisher>, config: RelayConfig) -> Self {
        Self {
            store,
            publisher,
            config,
            nudge: Arc::new(OutboxNudge::default()),
            busy: AtomicBool::new(true),
            became_busy: Notify::new(),
            heavy: HeavyTenants::default(),
        }
    }

    /// What ingest nudges after each event: it wakes an idle relay at
    /// once, and names the tenant for the express lane.
    pub fn nudge(&self) -> Arc<OutboxNudge> {
        self.nudge.clone()
    }

    /// Whether the main lane is busy: not waiting for a nudge (see the field).
    pub(crate) fn busy(&self) -> bool {
        self.busy.load(Ordering::Acquire)
    }

    fn set_busy(&self, busy: bool) {
        if !self.busy.swap(busy, Ordering::AcqRel) && busy {
            self.became_busy.notify_one();
        }
    }

    pub(crate) fn lease(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.config.lease).unwrap_or(chrono::Duration::seconds(30))
    }

    /// Claims the next batch, tenants in turn (see
    /// `hookhub_store::Store::claim_outbox`), and sets aside the rows that
    /// cannot be published. Returns how many rows the claim took
    /// (published or quarantined), so a full batch of quarantined rows
    /// still makes the next claim start at once, and the rows to publish.
    async fn claim(&self) -> Result<(usize, Vec<OutboxItem>), RelayError> {
        let claim = self.store.claim_outbox(self.config.batch_size, self.lease()).await?;
        self.heavy.note_main_claim(&claim.items);
        Ok(self.set_aside(claim))
    }

    /// Counts and logs a claim's quarantined rows; returns how many rows
    /// it took and those to publish.
    pub(crate) fn set_aside(&self, claim: OutboxClaim) -> (usize, Vec<OutboxItem>) {
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
        (claim.items.len() + claim.quarantined.len(), claim.items)
    }

    /// Publishes claimed rows to `lane` and deletes them once the broker
    /// confirmed.
    pub(crate) async fn publish(&self, items: Vec<OutboxItem>, lane: Lane) -> Result<(), RelayError> {
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
        if let Err(e) = self.publisher.publish(&messages, lane).await {
            // Hand the rows back now rather than after the lease.
            if let Err(release) = self.store.release_outbox(&ids).await {
                tracing::warn!(error = %release, "could not release outbox rows; they return after their lease");
            }
            return Err(e.into());
        }
        self.store.delete_published_outbox(&ids).await?;
        hookhub_store::metrics::metrics().events_published.inc_by(ids.len() as u64);
        tracing::debug!(count = ids.len(), ?lane, "published");
        Ok(())
    }

    /// Whether the broker already holds enough messages no consumer has
    /// taken: then the backlog is better left in the outbox, where the
    /// next claim takes tenants in turn, than in the queue, which hands
    /// them out first come.
    async fn broker_is_ahead(&self) -> bool {
        self.publisher.waiting().await.is_some_and(|ready| ready >= BROKER_AHEAD)
    }

    /// Relays until `shutdown`, both lanes; batches in flight are
    /// finished first.
    ///
    /// Up to `batches_in_flight` batches are published at once, so a new
    /// claim (and a quiet tenant's event in it) never waits for the
    /// slowest batch before it: with the in-process queue a publish
    /// returns only when fan-out has written the batch.
    pub async fn run(self, shutdown: CancellationToken) {
        let this = Arc::new(self);
        let tasks = TaskTracker::new();
        tasks.spawn(crate::express_lane::run(this.clone(), tasks.clone(), shutdown.clone()));
        let in_flight = Arc::new(Semaphore::new(this.config.batches_in_flight.max(1)));
        let failures = Arc::new(AtomicU32::new(0));
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
                    match this.publish(items, Lane::Main).await {
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
                this.set_busy(false);
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = this.nudge.main_nudged() => {}
                    _ = tokio::time::sleep(this.config.poll_interval) => {}
                }
            }
            this.set_busy(true);
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
