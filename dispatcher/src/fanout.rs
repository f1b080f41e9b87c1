//! Fan-out: consumed events → one durable delivery per matching subscription.
//!
//! Messages are handled in batches: whatever arrived while the previous
//! batch was being written goes in one multi-row `INSERT`, each message
//! itself a relay batch of events. A message is acked only after the
//! deliveries of all its events are committed: from then on the store's due
//! times carry them, so an ack never loses anything.
use crate::outbox_relay::error_backoff;
use crate::queue::{Acker, Consumer, EventMessage, Incoming};
use hookhub_store::domain::{now, EventId, EventType, SubscriptionId, TenantId};
use hookhub_store::repo::{DeliveryWork, Subscription};
use hookhub_store::{Store, StoreError};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Batches written at once: one fills while others commit.
const WRITERS: usize = 4;

/// Events a batch collects before it is written (at least one message's).
pub const EVENTS_PER_WRITE: usize = 128;

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

/// A message's ids, parsed.
struct Target {
    tenant: TenantId,
    event: EventId,
    event_type: EventType,
}

impl TryFrom<&EventMessage> for Target {
    type Error = FanoutError;
    fn try_from(msg: &EventMessage) -> Result<Self, FanoutError> {
        let malformed = |what: &str| FanoutError::Malformed(format!("{what} in {msg:?}"));
        Ok(Self {
            tenant: msg.tenant_id.parse().map_err(|_| malformed("tenant id"))?,
            event: msg.event_id.parse().map_err(|_| malformed("event id"))?,
            event_type: msg.event_type.parse().map_err(|_| malformed("event type"))?,
        })
    }
}

/// Consumes events and creates their deliveries.
pub struct Fanout {
    store: Store,
    lease: Duration,
    work: mpsc::Sender<DeliveryWork>,
    batch: usize,
}

impl Fanout {
    /// Fan-out that hands new deliveries, loaded, to `work` (the delivery
    /// loop), leasing them for `lease` so the retry poller leaves them alone;
    /// messages are taken until a batch holds `batch` events.
    pub fn new(store: Store, lease: Duration, work: mpsc::Sender<DeliveryWork>, batch: usize) -> Self {
        Self { store, lease, work, batch: batch.max(1) }
    }

    /// Creates the deliveries of one event; returns those that are new,
    /// with the event and subscription the attempt needs.
    pub async fn fan_out(&self, msg: &EventMessage) -> Result<Vec<DeliveryWork>, FanoutError> {
        Ok(self.fan_out_all(&[Target::try_from(msg)?]).await?)
    }

    /// Creates the deliveries of several events with one `INSERT` (per
    /// chunk) and one read of the new deliveries' events; returns those that
    /// are new, so the delivery loop does not read them again.
    async fn fan_out_all(&self, targets: &[Target]) -> Result<Vec<DeliveryWork>, StoreError> {
        let mut matching: HashMap<(&TenantId, &EventType), Vec<Subscription>> = HashMap::new();
        for t in targets {
            if let std::collections::hash_map::Entry::Vacant(slot) = matching.entry((&t.tenant, &t.event_type)) {
                slot.insert(self.store.matching_subscriptions(&t.tenant, &t.event_type).await?);
            }
        }
        let pairs: Vec<(TenantId, EventId, SubscriptionId)> = targets
            .iter()
            .flat_map(|t| {
                let subs = matching.get(&(&t.tenant, &t.event_type)).map(Vec::as_slice).unwrap_or_default();
                subs.iter().map(|s| (t.tenant.clone(), t.event.clone(), s.id.clone()))
            })
            .collect();
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        let lease = chrono::Duration::from_std(self.lease).unwrap_or(chrono::Duration::seconds(60));
        let (created, events) = self.store.fan_out_pairs(&pairs, now() + lease).await?;
        let subs: HashMap<&SubscriptionId, &Subscription> = matching.values().flatten().map(|s| (&s.id, s)).collect();
        // An event purged meanwhile has nothing to send; its leased delivery
        // comes due and is abandoned by the retry path.
        Ok(created
            .into_iter()
            .filter_map(|delivery| {
                let event = events.get(delivery.event_id.as_str())?.clone();
                let subscription = (*subs.get(&delivery.subscription_id)?).clone();
                Some(DeliveryWork { delivery, event, subscription })
            })
            .collect())
    }

    /// Consumes until the queue closes or `shutdown` fires. A feeder task
    /// moves messages into a channel, so a batch takes whatever has arrived
    /// without waiting; up to [`WRITERS`] batches are written at once.
    pub async fn run(self, mut consumer: impl Consumer + 'static, shutdown: CancellationToken) {
        let this = Arc::new(self);
        let (tx, mut rx) = mpsc::channel(this.batch);
        let feeder = tokio::spawn(async move {
            while let Some(incoming) = consumer.next().await {
                if tx.send(incoming).await.is_err() {
                    break;
                }
            }
        });
        let permits = Arc::new(Semaphore::new(WRITERS));
        let tasks = TaskTracker::new();
        while let Some(first) = rx.recv().await {
            // Waiting for a writer lets the next batch fill up.
            let permit = permits.clone().acquire_owned().await.expect("semaphore is never closed");
            let mut events = first.events();
            let mut batch = vec![first];
            while events < this.batch {
                match rx.try_recv() {
                    Ok(incoming) => {
                        events += incoming.events();
                        batch.push(incoming);
                    }
                    Err(_) => break,
                }
            }
            let (this, shutdown) = (this.clone(), shutdown.clone());
            tasks.spawn(async move {
                this.handle(batch, &shutdown).await;
                drop(permit);
            });
        }
        let _ = feeder.await;
        tasks.close();
        tasks.wait().await;
        tracing::info!("fan-out stopped");
    }

    /// Fans a batch out and settles its messages.
    ///
    /// A store failure holds the messages and retries with backoff instead
    /// of nacking them, so a database outage never burns through a queue's
    /// redelivery limit; on shutdown the unacked messages go back to the broker.
    async fn handle(&self, batch: Vec<Incoming>, shutdown: &CancellationToken) {
        let mut targets = Vec::new();
        let mut ackers: Vec<Box<dyn Acker>> = Vec::with_capacity(batch.len());
        for incoming in batch {
            match incoming.message {
                Ok(events) => {
                    // An event that names nothing valid can never be fanned
                    // out; it is dropped, its neighbours go ahead.
                    for event in &events {
                        match Target::try_from(event) {
                            Ok(target) => targets.push(target),
                            Err(e) => tracing::error!(error = %e, "dropping event"),
                        }
                    }
                    ackers.push(incoming.acker);
                }
                Err(e) => {
                    tracing::error!(error = %FanoutError::Malformed(e), "dropping message");
                    incoming.acker.reject().await;
                }
            }
        }
        if targets.is_empty() {
            for acker in ackers {
                acker.ack().await;
            }
            return;
        }
        let mut failures = 0;
        let created = loop {
            match self.fan_out_all(&targets).await {
                Ok(created) => break created,
                Err(e) => {
                    failures += 1;
                    let wait = error_backoff(failures);
                    tracing::warn!(events = targets.len(), error = %e, ?wait, "fan-out failed; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        };
        for acker in ackers {
            acker.ack().await;
        }
        tracing::debug!(events = targets.len(), deliveries = created.len(), "fanned out");
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
