//! Fan-out: consumed events → one delivery per matching subscription.
//!
//! Messages are handled in batches: whatever arrived while the previous
//! batch was being written goes in one batch, each message itself a relay
//! batch of events.
//!
//! A new event's deliveries are attempted first and written after, each as
//! its first attempt left it (see `hookhub_store::repo::FreshDelivery`):
//! fan-out waits up to `first_attempt_wait` for those attempts, and writes
//! the ones still running as leased pending deliveries, whose outcome the
//! delivery loop records when it comes. Only attempts that find a place in
//! the delivery loop within that wait start before the write; the rest are
//! written first and attempted after, so what a crash can send twice is
//! what was sent in that window, not a whole batch queued behind a full loop. A message is acked only after its
//! deliveries are committed: from then on the store carries them, so an ack
//! never loses anything, and a crash before it sends the finished attempts
//! again (at least once, same `webhook-id`).
use crate::delivery_loop::{observe, DeliveryLoop, Outcome};
use crate::metrics::metrics;
use crate::outbox_relay::error_backoff;
use crate::queue::{Acker, Consumer, EventMessage, Incoming};
use hookhub_store::domain::{now, DeliveryId, EventId, EventType, SubscriptionId, TenantId};
use hookhub_store::repo::{Delivery, DeliveryWork, FanOutEvents, FreshDelivery, Matching};
use hookhub_store::{Store, StoreError};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Batches read or written at once: one fills while others are in the store.
const WRITERS: usize = 4;

/// Events a batch collects before it is handled (at least one message's).
pub const EVENTS_PER_WRITE: usize = 128;

/// Why a message could not be fanned out.
#[derive(Debug, thiserror::Error)]
pub enum FanoutError {
    /// The message names no valid event; it is dropped.
    #[error("malformed message: {0}")]
    Malformed(String),
}

/// A message's ids, parsed.
struct Target {
    tenant: TenantId,
    event: EventId,
    event_type: EventType,
    /// Its message came again (see [`Incoming::redelivered`]).
    redelivered: bool,
}

impl TryFrom<&EventMessage> for Target {
    type Error = FanoutError;
    fn try_from(msg: &EventMessage) -> Result<Self, FanoutError> {
        let malformed = |what: &str| FanoutError::Malformed(format!("{what} in {msg:?}"));
        Ok(Self {
            tenant: msg.tenant_id.parse().map_err(|_| malformed("tenant id"))?,
            event: msg.event_id.parse().map_err(|_| malformed("event id"))?,
            event_type: msg.event_type.parse().map_err(|_| malformed("event type"))?,
            redelivered: false,
        })
    }
}

/// A batch's new delivery, and when it is attempted.
enum Planned {
    /// A new event's: attempted before it is written.
    First(DeliveryWork),
    /// An event fanned out before, or of a redelivered message: written
    /// first, attempted only if it was missing (its webhook may have gone
    /// out before).
    AfterWrite(DeliveryWork),
    /// Its event or its subscription cannot be read: written leased, and
    /// held by the retry path until it reads again.
    Unreadable(Delivery),
}

/// A batch's deliveries on their way to the store.
#[derive(Default)]
struct Round {
    /// Every new delivery, in the state it is written in.
    fresh: Vec<FreshDelivery>,
    /// First attempts still running at the write, by delivery.
    running: Vec<(DeliveryId, JoinHandle<Outcome>)>,
    /// Deliveries attempted only once written, and only if they were new.
    after_write: Vec<DeliveryWork>,
}

/// Consumes events and creates their deliveries.
pub struct Fanout {
    store: Store,
    deliveries: Arc<DeliveryLoop>,
    batch: usize,
    writers: Arc<Semaphore>,
}

impl Fanout {
    /// Fan-out that attempts through `deliveries`; messages are taken until
    /// a batch holds `batch` events.
    pub fn new(store: Store, deliveries: Arc<DeliveryLoop>, batch: usize) -> Self {
        Self { store, deliveries, batch: batch.max(1), writers: Arc::new(Semaphore::new(WRITERS)) }
    }

    /// The batch's new deliveries: matching subscriptions, and the events
    /// read in one go. A subscription that cannot be read gets its
    /// deliveries written held (see [`Planned::Unreadable`]), so it fails
    /// neither the batch nor its neighbours, and loses nothing.
    async fn plan(&self, targets: &[Target]) -> Result<Vec<Planned>, StoreError> {
        let mut matching: HashMap<(&TenantId, &EventType), Matching> = HashMap::new();
        for t in targets {
            if let std::collections::hash_map::Entry::Vacant(slot) = matching.entry((&t.tenant, &t.event_type)) {
                let found = self.store.matching_subscriptions(&t.tenant, &t.event_type).await?;
                // A suspended tenant's held deliveries are expected, not an error.
                for u in found.unreadable.iter().filter(|_| !found.suspended) {
                    tracing::error!(
                        subscription_id = %u.id, tenant_id = %u.tenant_id, reason = %u.reason,
                        "subscription cannot be read; its deliveries are held (hookhub subscriptions unreadable)"
                    );
                }
                slot.insert(found);
            }
        }
        let none = Matching::default();
        let subscribed: Vec<&Matching> =
            targets.iter().map(|t| matching.get(&(&t.tenant, &t.event_type)).unwrap_or(&none)).collect();
        let ids: Vec<EventId> = targets
            .iter()
            .zip(&subscribed)
            .filter(|(_, subs)| !subs.readable.is_empty())
            .map(|(t, _)| t.event.clone())
            .collect();
        let read = if ids.is_empty() { FanOutEvents::default() } else { self.store.fan_out_events(&ids).await? };
        let due = now() + self.deliveries.config().lease_span();
        let mut planned = Vec::new();
        for (t, subs) in targets.iter().zip(subscribed) {
            for held in subs.unreadable.iter().filter_map(|u| u.id.parse::<SubscriptionId>().ok()) {
                metrics().deliveries_held.inc();
                planned.push(Planned::Unreadable(Delivery::new(&t.tenant, &t.event, &held, due)));
            }
            let event = read.events.get(t.event.as_str());
            // A redelivered message may still be in the hands of a consumer
            // whose connection closed: its attempts sent, its write not yet
            // committed. Writing before attempting sends nothing twice when
            // that write lands first, as it usually does.
            let again = t.redelivered || read.fanned_out.contains(t.event.as_str());
            for sub in &subs.readable {
                let delivery = Delivery::new(&t.tenant, &t.event, &sub.id, due);
                planned.push(match event {
                    None => Planned::Unreadable(delivery),
                    Some(event) => {
                        let work = DeliveryWork { delivery, event: event.clone(), subscription: sub.clone() };
                        if again {
                            Planned::AfterWrite(work)
                        } else {
                            Planned::First(work)
                        }
                    }
                });
            }
        }
        Ok(planned)
    }

    /// Consumes until the queue closes or `shutdown` fires. A feeder task
    /// moves messages into a channel, so a batch takes whatever has arrived
    /// without waiting; up to [`WRITERS`] batches are in the store at once.
    pub async fn run(self, mut consumer: impl Consumer + 'static, shutdown: CancellationToken) {
        let this = Arc::new(self);
        let (tx, mut rx) = mpsc::channel(this.batch);
        let feeder = tokio::spawn(async move {
            while let Some(incoming) = consumer.next().await {
                if tx.send(incoming).await.is_err() {
                    break;
                }
            }
            consumer
        });
        let tasks = TaskTracker::new();
        while let Some(first) = rx.recv().await {
            // Waiting for a writer lets the next batch fill up.
            let permit = this.writers.clone().acquire_owned().await.expect("semaphore is never closed");
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
            tasks.spawn(async move { this.handle(batch, permit, &shutdown).await });
        }
        let consumer = feeder.await;
        tasks.close();
        tasks.wait().await;
        // Only now: the batches above ack on the consumer's channel.
        if let Ok(mut consumer) = consumer {
            consumer.close().await;
        }
        tracing::info!("fan-out stopped");
    }

    /// Runs a store call until it succeeds, with backoff; `None` on shutdown.
    ///
    /// A store failure holds the batch's messages and retries instead of
    /// nacking them, so a database outage never burns through a queue's
    /// redelivery limit; on shutdown the unacked messages go back to the broker.
    async fn until_stored<T, F: Future<Output = Result<T, StoreError>>>(
        &self,
        events: usize,
        shutdown: &CancellationToken,
        call: impl Fn() -> F,
    ) -> Option<T> {
        let mut failures = 0;
        loop {
            match call().await {
                Ok(done) => return Some(done),
                Err(e) => {
                    failures += 1;
                    let wait = error_backoff(failures);
                    tracing::warn!(events, error = %e, ?wait, "fan-out failed; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return None,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    /// Fans a batch out and settles its messages. `reading` is the writer
    /// place the batch was formed under: held while the batch is read, not
    /// while its first attempts run.
    async fn handle(&self, batch: Vec<Incoming>, reading: OwnedSemaphorePermit, shutdown: &CancellationToken) {
        let (targets, ackers) = unpack(batch).await;
        let events = targets.len();
        let planned = if targets.is_empty() {
            Vec::new()
        } else {
            match self.until_stored(events, shutdown, || self.plan(&targets)).await {
                Some(planned) => planned,
                None => return,
            }
        };
        let round = self.attempt_first(planned, reading).await;
        let written = if round.fresh.is_empty() {
            HashSet::new()
        } else {
            let _writing = self.writers.acquire().await.expect("semaphore is never closed");
            let breaker = self.deliveries.config().breaker;
            match self.until_stored(events, shutdown, || self.store.write_fan_out(&round.fresh, breaker)).await {
                Some(written) => written,
                None => return,
            }
        };
        for acker in ackers {
            acker.ack().await;
        }
        tracing::debug!(events, deliveries = written.len(), "fanned out");
        self.hand_over(round, &written).await;
    }

    /// Starts the batch's first attempts and collects them until
    /// `first_attempt_wait` runs out.
    async fn attempt_first(&self, planned: Vec<Planned>, reading: OwnedSemaphorePermit) -> Round {
        let deadline = tokio::time::Instant::now() + self.deliveries.config().first_attempt_wait;
        let mut round = Round::default();
        let mut started = Vec::new();
        for p in planned {
            match p {
                Planned::First(work) => {
                    let delivery = work.delivery.clone();
                    match self.deliveries.take_on_by(work, deadline).await {
                        Ok(attempt) => started.push((delivery, attempt)),
                        // No place in time: sent once written, like a redelivery.
                        Err(work) => {
                            round.fresh.push(FreshDelivery::Unattempted(delivery));
                            round.after_write.push(work);
                        }
                    }
                }
                Planned::AfterWrite(work) => {
                    round.fresh.push(FreshDelivery::Unattempted(work.delivery.clone()));
                    round.after_write.push(work);
                }
                Planned::Unreadable(delivery) => round.fresh.push(FreshDelivery::Unattempted(delivery)),
            }
        }
        drop(reading);
        for (delivery, mut attempt) in started {
            match tokio::time::timeout_at(deadline, &mut attempt).await {
                Ok(Ok(outcome)) => round.fresh.push(outcome.into_fresh()),
                // Panicked: written leased, it comes due again.
                Ok(Err(_)) => round.fresh.push(FreshDelivery::Unattempted(delivery)),
                Err(_) => {
                    round.running.push((delivery.id.clone(), attempt));
                    round.fresh.push(FreshDelivery::Unattempted(delivery));
                }
            }
        }
        round
    }

    /// After the write: counts the attempts written with their deliveries,
    /// and gives the delivery loop the rest of what was `written`. What a
    /// duplicate message wrote first is left to its own fan-out.
    async fn hand_over(&self, round: Round, written: &HashSet<String>) {
        for f in &round.fresh {
            if let FreshDelivery::Attempted(recorded) = f {
                if written.contains(f.id().as_str()) {
                    observe(recorded);
                }
            }
        }
        for (id, attempt) in round.running {
            if written.contains(id.as_str()) {
                self.deliveries.follow(attempt);
            }
        }
        for work in round.after_write {
            if written.contains(work.delivery.id.as_str()) {
                self.deliveries.dispatch(work).await;
            }
        }
    }
}

/// A batch's messages as events to fan out, and how to settle them; a
/// message that does not parse is rejected, an event that names nothing
/// valid is dropped, and their neighbours go ahead.
async fn unpack(batch: Vec<Incoming>) -> (Vec<Target>, Vec<Box<dyn Acker>>) {
    let mut targets = Vec::new();
    let mut ackers: Vec<Box<dyn Acker>> = Vec::with_capacity(batch.len());
    for incoming in batch {
        match incoming.message {
            Ok(events) => {
                for event in &events {
                    match Target::try_from(event) {
                        Ok(target) => targets.push(Target { redelivered: incoming.redelivered, ..target }),
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
    (targets, ackers)
}
