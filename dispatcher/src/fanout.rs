//! Fan-out: one consumed event → one durable delivery per matching subscription.
//!
//! The message is acked only after the deliveries are committed: from then
//! on the store's due times carry them, so an ack never loses anything.
use crate::outbox_relay::error_backoff;
use crate::queue::{Consumer, EventMessage};
use hookhub_store::domain::{now, DeliveryId, EventId, EventType, TenantId};
use hookhub_store::{Store, StoreError};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

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
    work: mpsc::Sender<DeliveryId>,
}

impl Fanout {
    /// Fan-out that hands new deliveries to `work` (the delivery loop),
    /// leasing them for `lease` so the retry poller leaves them alone.
    pub fn new(store: Store, lease: Duration, work: mpsc::Sender<DeliveryId>) -> Self {
        Self { store, lease, work }
    }

    /// Creates the deliveries of one event; returns those that are new.
    pub async fn fan_out(&self, msg: &EventMessage) -> Result<Vec<DeliveryId>, FanoutError> {
        let malformed = |what: &str| FanoutError::Malformed(format!("{what} in {msg:?}"));
        let tenant: TenantId = msg.tenant_id.parse().map_err(|_| malformed("tenant id"))?;
        let event: EventId = msg.event_id.parse().map_err(|_| malformed("event id"))?;
        let event_type: EventType = msg.event_type.parse().map_err(|_| malformed("event type"))?;
        let subs: Vec<_> =
            self.store.matching_subscriptions(&tenant, &event_type).await?.into_iter().map(|s| s.id).collect();
        if subs.is_empty() {
            return Ok(Vec::new());
        }
        let lease = chrono::Duration::from_std(self.lease).unwrap_or(chrono::Duration::seconds(60));
        Ok(self.store.fan_out(&tenant, &event, &subs, now() + lease).await?)
    }

    /// Consumes until the queue closes or `shutdown` fires.
    ///
    /// A store failure holds the message and retries with backoff instead of
    /// nacking it, so a database outage never burns through a queue's
    /// redelivery limit; on shutdown the unacked message goes back to the broker.
    pub async fn run(self, mut consumer: impl Consumer, shutdown: CancellationToken) {
        while let Some(incoming) = consumer.next().await {
            let msg = match incoming.message {
                Ok(msg) => msg,
                Err(e) => {
                    tracing::error!(error = %e, "dropping unparsable message");
                    incoming.acker.reject().await;
                    continue;
                }
            };
            let mut failures = 0;
            let created = loop {
                match self.fan_out(&msg).await {
                    Ok(created) => break Some(created),
                    Err(FanoutError::Malformed(e)) => {
                        tracing::error!(error = %e, "dropping message");
                        break None;
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
            let Some(created) = created else {
                incoming.acker.reject().await;
                continue;
            };
            incoming.acker.ack().await;
            tracing::debug!(event_id = %msg.event_id, deliveries = created.len(), "fanned out");
            for id in created {
                // Backpressure: a saturated delivery loop slows consumption.
                // If it has stopped, the leased rows come due by themselves.
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    sent = self.work.send(id) => if sent.is_err() { return },
                }
            }
        }
        tracing::info!("fan-out stopped");
    }
}
