//! Fan-out: one consumed event → one durable delivery per matching subscription.
//!
//! The message is acked only after the deliveries are committed: from then
//! on the store's due times carry them, so an ack never loses anything.
use crate::outbox_relay::error_backoff;
use crate::queue::{Consumer, EventMessage, Incoming};
use hookhub_store::domain::{now, EventId, EventType, TenantId};
use hookhub_store::repo::DeliveryWork;
use hookhub_store::{Store, StoreError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Why a message could not be fanned out.
#[derive(Debug, thiserror::Error)]
pub enum FanoutError {
    /// The message names no valid event; it is dropped.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// The store failed; the message is retried.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Consumes events and creates their deliveries.
pub struct Fanout {
    store: Store,
    lease: Duration,
    work: mpsc::Sender<DeliveryWork>,
    concurrency: usize,
}

impl Fanout {
    /// Fan-out that hands new deliveries, loaded, to `work` (the delivery
    /// loop), leasing them for `lease` so the retry poller leaves them alone;
    /// up to `concurrency` messages are handled at once.
    pub fn new(store: Store, lease: Duration, work: mpsc::Sender<DeliveryWork>, concurrency: usize) -> Self {
        Self { store, lease, work, concurrency: concurrency.max(1) }
    }

    /// Creates the deliveries of one event; returns those that are new,
    /// with the event and subscription the attempt needs, so the delivery
    /// loop does not read them again.
    pub async fn fan_out(&self, msg: &EventMessage) -> Result<Vec<DeliveryWork>, FanoutError> {
        let malformed = |what: &str| FanoutError::Malformed(format!("{what} in {msg:?}"));
        let tenant: TenantId = msg.tenant_id.parse().map_err(|_| malformed("tenant id"))?;
        let event: EventId = msg.event_id.parse().map_err(|_| malformed("event id"))?;
        let event_type: EventType = msg.event_type.parse().map_err(|_| malformed("event type"))?;
        let subs = self.store.matching_subscriptions(&tenant, &event_type).await?;
        if subs.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<_> = subs.iter().map(|s| s.id.clone()).collect();
        let lease = chrono::Duration::from_std(self.lease).unwrap_or(chrono::Duration::seconds(60));
        let created = self.store.fan_out(&tenant, &event, &ids, now() + lease).await?;
        if created.is_empty() {
            return Ok(Vec::new());
        }
        let event = self.store.event_for_delivery(&event).await?;
        Ok(created
            .into_iter()
            .filter_map(|delivery| {
                let subscription = subs.iter().find(|s| s.id == delivery.subscription_id)?.clone();
                Some(DeliveryWork { delivery, event: event.clone(), subscription })
            })
            .collect())
    }

    /// Consumes until the queue closes or `shutdown` fires, handling up to
    /// `concurrency` messages at once: each is a short transaction, and one
    /// at a time would leave the database idle between round trips.
    pub async fn run(self, mut consumer: impl Consumer, shutdown: CancellationToken) {
        let this = Arc::new(self);
        let permits = Arc::new(Semaphore::new(this.concurrency));
        let tasks = TaskTracker::new();
        while let Some(incoming) = consumer.next().await {
            let permit = permits.clone().acquire_owned().await.expect("semaphore is never closed");
            let (this, shutdown) = (this.clone(), shutdown.clone());
            tasks.spawn(async move {
                this.handle(incoming, &shutdown).await;
                drop(permit);
            });
        }
        tasks.close();
        tasks.wait().await;
        tracing::info!("fan-out stopped");
    }

    /// Fans one message out and settles it.
    ///
    /// A store failure holds the message and retries with backoff instead of
    /// nacking it, so a database outage never burns through a queue's
    /// redelivery limit; on shutdown the unacked message goes back to the broker.
    async fn handle(&self, incoming: Incoming, shutdown: &CancellationToken) {
        let msg = match incoming.message {
            Ok(msg) => msg,
            Err(e) => {
                tracing::error!(error = %e, "dropping unparsable message");
                incoming.acker.reject().await;
                return;
            }
        };
        let mut failures = 0;
        let created = loop {
            match self.fan_out(&msg).await {
                Ok(created) => break created,
                Err(FanoutError::Malformed(e)) => {
                    tracing::error!(error = %e, "dropping message");
                    incoming.acker.reject().await;
                    return;
                }
                Err(e) => {
                    failures += 1;
                    let wait = error_backoff(failures);
                    tracing::warn!(event_id = %msg.event_id, error = %e, ?wait, "fan-out failed; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        };
        incoming.acker.ack().await;
        tracing::debug!(event_id = %msg.event_id, deliveries = created.len(), "fanned out");
        for work in created {
            // Backpressure: a saturated delivery loop slows consumption.
            // If it has stopped, the leased rows come due by themselves.
            tokio::select! {
                _ = shutdown.cancelled() => return,
                sent = self.work.send(work) => if sent.is_err() { return },
            }
        }
    }
}
