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
use crate::delivery_loop::{DeliveryLoop, Outcome};
use crate::fair::FairQueue;
use crate::outbox_relay::error_backoff;
use crate::queue::{Acker, Consumer, EventMessage, Incoming};
use hookhub_store::domain::{now, DeliveryId, EventId, EventType, OrderingKey, SubscriptionId, TenantId};
use hookhub_store::metrics::metrics;
use hookhub_store::repo::{Delivery, DeliveryWork, FanOutEvents, FreshDelivery, Matching};
use hookhub_store::{Store, StoreError};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Batches of each [`Share`] read or written at once: one fills while
/// others are in the store.
const WRITERS: usize = 4;

/// Events of one tenant in fan-out (waiting in the intake, or in a batch
/// not yet written) at most for it to count as light (see [`Share`]).
const LIGHT_QUEUE: usize = 16;

/// Which tenants' events a batch takes. Light tenants' events go in
/// batches of their own, with writers of their own: in a batch with a
/// burst's, a quiet tenant's event would wait for the whole batch to be
/// read (128 events, tens of milliseconds under load) and, before that,
/// for a writer, each held while its batch's first attempts wait for
/// places in the loop (up to the first-attempt wait, 100 ms, under a burst).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Share {
    /// Tenants with at most [`LIGHT_QUEUE`] events in fan-out.
    Light,
    /// Tenants with more: a backlog.
    Backlog,
}

impl Share {
    const BOTH: [Share; 2] = [Share::Light, Share::Backlog];

    /// Whether a tenant with `events` in fan-out is of this share.
    fn takes(self, events: usize) -> bool {
        match self {
            Share::Light => events <= LIGHT_QUEUE,
            Share::Backlog => events > LIGHT_QUEUE,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Events a batch collects before it is handled (at least one message's).
pub const EVENTS_PER_WRITE: usize = 128;

/// Why a message could not be fanned out.
#[derive(Debug, thiserror::Error)]
pub enum FanOutError {
    /// The message names no valid event; it is dropped.
    #[error("malformed message: {0}")]
    Malformed(String),
}

/// A message's ids, parsed.
struct Target {
    tenant: TenantId,
    event: EventId,
    event_type: EventType,
    /// Its ordering key, if it has one.
    ordering_key: Option<OrderingKey>,
    /// Its message came again (see [`Incoming::redelivered`]).
    redelivered: bool,
}

impl TryFrom<&EventMessage> for Target {
    type Error = FanOutError;
    fn try_from(msg: &EventMessage) -> Result<Self, FanOutError> {
        let malformed = |what: &str| FanOutError::Malformed(format!("{what} in {msg:?}"));
        Ok(Self {
            tenant: msg.tenant_id.parse().map_err(|_| malformed("tenant id"))?,
            event: msg.event_id.parse().map_err(|_| malformed("event id"))?,
            event_type: msg.event_type.parse().map_err(|_| malformed("event type"))?,
            // Checked at ingest; one that no longer parses orders nothing,
            // rather than costing the event.
            ordering_key: msg.ordering_key.as_deref().and_then(|k| k.parse().ok()),
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
    /// To an ordered subscription: written waiting, never attempted here.
    /// Only the claim starts it, once it is the head of its key (see
    /// `hookhub_store::Store::claim_due_deliveries`): a first attempt made
    /// here could overtake an earlier delivery of the key that another
    /// batch or another dispatcher holds.
    Ordered(Delivery),
}

/// A batch's deliveries on their way to the store.
#[derive(Default)]
struct BatchDeliveries {
    /// Every new delivery, in the state it is written in.
    fresh: Vec<FreshDelivery>,
    /// First attempts still running at the write, by delivery.
    running: Vec<(DeliveryId, JoinHandle<Outcome>)>,
    /// Deliveries attempted only once written, and only if they were new.
    after_write: Vec<DeliveryWork>,
    /// The (subscription, key) of its ordered deliveries: written
    /// waiting, their heads are made due once written.
    ordered: Vec<(SubscriptionId, OrderingKey)>,
}

/// Consumes events and creates their deliveries.
pub struct FanOut {
    store: Store,
    deliveries: Arc<DeliveryLoop>,
    batch: usize,
    /// Per [`Share`].
    writers: [Arc<Semaphore>; 2],
}

impl FanOut {
    /// Fan-out that attempts through `deliveries`; messages are taken until
    /// a batch holds `batch` events.
    pub fn new(store: Store, deliveries: Arc<DeliveryLoop>, batch: usize) -> Self {
        Self { store, deliveries, batch: batch.max(1), writers: Share::BOTH.map(|_| Arc::new(Semaphore::new(WRITERS))) }
    }

    /// The batch's new deliveries: matching subscriptions, and the events
    /// read in one go. A subscription that cannot be read gets its
    /// deliveries written held (see [`Planned::Unreadable`]), so it fails
    /// neither the batch nor its neighbours, and loses nothing.
    ///
    /// A backlog's batch reads only the events some subscription wants;
    /// a light batch (a few events) reads them all beside the
    /// subscriptions, a round trip less to wait for.
    async fn plan(&self, targets: &[Target], share: Share) -> Result<Vec<Planned>, StoreError> {
        let pairs: HashSet<(&TenantId, &EventType)> = targets.iter().map(|t| (&t.tenant, &t.event_type)).collect();
        // Read side by side: one round trip's wait, not one per tenant.
        let found = futures::future::try_join_all(pairs.iter().map(|(tenant, event_type)| async move {
            Ok::<_, StoreError>(((*tenant, *event_type), self.store.matching_subscriptions(tenant, event_type).await?))
        }));
        let (found, read_early) = if share == Share::Light {
            let all: Vec<EventId> = targets.iter().map(|t| t.event.clone()).collect();
            let (found, read) = tokio::try_join!(found, self.store.fan_out_events(&all))?;
            (found, Some(read))
        } else {
            (found.await?, None)
        };
        let matching: HashMap<(&TenantId, &EventType), Matching> = found.into_iter().collect();
        for found in matching.values() {
            // A suspended tenant's held deliveries are expected, not an error.
            for u in found.unreadable.iter().filter(|_| !found.suspended) {
                tracing::error!(
                    subscription_id = %u.id, tenant_id = %u.tenant_id, reason = %u.reason,
                    "subscription cannot be read; its deliveries are held (hookhub subscriptions unreadable)"
                );
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
        let read = match read_early {
            Some(read) => read,
            None if ids.is_empty() => FanOutEvents::default(),
            None => self.store.fan_out_events(&ids).await?,
        };
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
                let key = sub.ordering.key_for(t.ordering_key.as_ref());
                planned.push(match event {
                    // Keyed even so: held, it keeps the later ones of its key waiting.
                    None => Planned::Unreadable(Delivery { ordering_key: key.cloned(), ..delivery }),
                    Some(_) if key.is_some() => Planned::Ordered(delivery.keeping_order(key)),
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
    /// moves messages into the [`Intake`], tenant by tenant, so a batch
    /// takes whatever has arrived without waiting, each tenant in turn; up
    /// to [`WRITERS`] batches of each [`Share`] are in the store at once.
    pub async fn run(self, mut consumer: impl Consumer + 'static, shutdown: CancellationToken) {
        let this = Arc::new(self);
        let intake = Arc::new(Intake::default());
        let feeder = tokio::spawn({
            let intake = intake.clone();
            async move {
                while let Some(incoming) = consumer.next().await {
                    intake.take_in(incoming).await;
                }
                intake.close();
                consumer
            }
        });
        let tasks = TaskTracker::new();
        let batches = Share::BOTH.map(|share| {
            let (this, intake, tasks, shutdown) = (this.clone(), intake.clone(), tasks.clone(), shutdown.clone());
            async move {
                loop {
                    // Waiting for a writer lets the next batch fill up.
                    let writers = this.writers[share.index()].clone();
                    let permit = writers.acquire_owned().await.expect("semaphore is never closed");
                    let Some(batch) = intake.next_batch(share, this.batch).await else { break };
                    let tenants: Vec<TenantId> = batch.iter().map(|q| q.target.tenant.clone()).collect();
                    let (this, shutdown) = (this.clone(), shutdown.clone());
                    let intake = intake.clone();
                    tasks.spawn(async move {
                        this.handle(batch, share, permit, &shutdown).await;
                        intake.finished(&tenants);
                    });
                }
            }
        });
        let [light, backlog] = batches;
        tokio::join!(light, backlog);
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
    async fn handle(
        &self,
        batch: Vec<Queued>,
        share: Share,
        reading: OwnedSemaphorePermit,
        shutdown: &CancellationToken,
    ) {
        let (targets, messages): (Vec<Target>, Vec<Arc<Message>>) =
            batch.into_iter().map(|q| (q.target, q.message)).unzip();
        let events = targets.len();
        let Some(planned) = self.until_stored(events, shutdown, || self.plan(&targets, share)).await else { return };
        let new = self.attempt_first(planned, reading).await;
        let written = if new.fresh.is_empty() {
            HashSet::new()
        } else {
            let _writing = self.writers[share.index()].acquire().await.expect("semaphore is never closed");
            let breaker = self.deliveries.config().breaker;
            match self.until_stored(events, shutdown, || self.store.write_fan_out(&new.fresh, breaker)).await {
                Some(written) => written,
                None => return,
            }
        };
        // After the write: from now on the keyed events' deliveries are in
        // the store, and later events of their keys may go. A crash in
        // between leaves the mark, and the message comes again to clear it.
        let keyed: Vec<EventId> =
            targets.iter().filter(|t| t.ordering_key.is_some()).map(|t| t.event.clone()).collect();
        if !keyed.is_empty()
            && self.until_stored(events, shutdown, || self.store.mark_fanned_out(&keyed)).await.is_none()
        {
            return;
        }
        if !new.ordered.is_empty()
            && self.until_stored(events, shutdown, || self.deliveries.attempt_heads(&new.ordered)).await.is_none()
        {
            return;
        }
        for message in messages {
            message.event_done().await;
        }
        tracing::debug!(events, deliveries = written.len(), "fanned out");
        self.hand_over(new, &written).await;
    }

    /// Starts the batch's first attempts and collects them until
    /// `first_attempt_wait` runs out. All of them wait for a place in the
    /// loop at once, each in its tenant's turn, so one tenant's hundreds in
    /// this batch do not keep another's from its place.
    async fn attempt_first(&self, planned: Vec<Planned>, reading: OwnedSemaphorePermit) -> BatchDeliveries {
        let deadline = tokio::time::Instant::now() + self.deliveries.config().first_attempt_wait;
        let mut new = BatchDeliveries::default();
        let mut first = Vec::new();
        for p in planned {
            match p {
                Planned::First(work) => first.push(work),
                Planned::AfterWrite(work) => {
                    new.fresh.push(FreshDelivery::Unattempted(work.delivery.clone()));
                    new.after_write.push(work);
                }
                Planned::Unreadable(delivery) => new.fresh.push(FreshDelivery::Unattempted(delivery)),
                Planned::Ordered(delivery) => {
                    if let Some(key) = &delivery.ordering_key {
                        new.ordered.push((delivery.subscription_id.clone(), key.clone()));
                    }
                    new.fresh.push(FreshDelivery::Unattempted(delivery));
                }
            }
        }
        let taking = first.into_iter().map(|work| {
            let delivery = work.delivery.clone();
            async move { (delivery, self.deliveries.take_on_by(work, deadline).await) }
        });
        let mut started = Vec::new();
        for (delivery, taken) in futures::future::join_all(taking).await {
            match taken {
                Ok(attempt) => started.push((delivery, attempt)),
                // No place in time: sent once written, like a redelivery.
                Err(work) => {
                    new.fresh.push(FreshDelivery::Unattempted(delivery));
                    new.after_write.push(work);
                }
            }
        }
        drop(reading);
        for (delivery, mut attempt) in started {
            match tokio::time::timeout_at(deadline, &mut attempt).await {
                Ok(Ok(outcome)) => new.fresh.push(outcome.into_fresh()),
                // Panicked: written leased, it comes due again.
                Ok(Err(_)) => new.fresh.push(FreshDelivery::Unattempted(delivery)),
                Err(_) => {
                    new.running.push((delivery.id.clone(), attempt));
                    new.fresh.push(FreshDelivery::Unattempted(delivery));
                }
            }
        }
        new
    }

    /// After the write: counts the attempts written with their deliveries,
    /// and gives the delivery loop the rest of what was `written`. What a
    /// duplicate message wrote first is left to its own fan-out.
    async fn hand_over(&self, new: BatchDeliveries, written: &HashSet<String>) {
        for f in &new.fresh {
            if let FreshDelivery::Attempted(recorded) = f {
                if written.contains(f.id().as_str()) {
                    self.deliveries.written(recorded);
                }
            }
        }
        for (id, attempt) in new.running {
            if written.contains(id.as_str()) {
                self.deliveries.follow(attempt);
            }
        }
        for work in new.after_write {
            if written.contains(work.delivery.id.as_str()) {
                self.deliveries.dispatch(work).await;
            }
        }
    }
}

/// A queue message whose events wait in the [`Intake`]: acked once the
/// last of them is written, whichever batches they went out in.
struct Message {
    /// Its events not yet written.
    unwritten: AtomicUsize,
    acker: Mutex<Option<Box<dyn Acker>>>,
}

impl Message {
    /// One of its events is written; the last one acks the message.
    async fn event_done(&self) {
        if self.unwritten.fetch_sub(1, Ordering::AcqRel) == 1 {
            let acker = self.acker.lock().expect("the lock is never held across a panic").take();
            if let Some(acker) = acker {
                acker.ack().await;
            }
        }
    }
}

/// An event waiting for a batch, with the message it came in.
struct Queued {
    target: Target,
    message: Arc<Message>,
}

/// Fan-out's intake: consumed events wait here by tenant, and each batch
/// takes them tenant by tenant in turn (see [`FairQueue`]). A message of
/// an import's 128 events and a message of another tenant's one event
/// then go out in the same next batch, where the queue would have sent
/// the import first; messages are split across batches, and acked when
/// their last event is written.
///
/// It holds what the broker lets the consumer hold unacked (the prefetch),
/// or what the in-process relay has in flight, and no more.
#[derive(Default)]
struct Intake {
    waiting: Mutex<Waiting>,
    /// Per [`Share`]: events of that share may be waiting.
    arrived: [Notify; 2],
    closed: AtomicBool,
}

/// The intake's events, and how many of each tenant's are in batches.
#[derive(Default)]
struct Waiting {
    queue: FairQueue<TenantId, Queued>,
    in_batches: HashMap<TenantId, usize>,
}

impl Waiting {
    /// Events of `tenant` in fan-out: waiting, or in a batch not yet written.
    fn load(&self, tenant: &TenantId) -> usize {
        self.queue.len_of(tenant) + self.in_batches.get(tenant).copied().unwrap_or(0)
    }
}

impl Intake {
    /// Queues a message's events; a message that does not parse is
    /// rejected, an event that names nothing valid is dropped, and their
    /// neighbours go ahead.
    async fn take_in(&self, incoming: Incoming) {
        let events = match incoming.message {
            Ok(events) => events,
            Err(e) => {
                tracing::error!(error = %FanOutError::Malformed(e), "dropping message");
                incoming.acker.reject().await;
                return;
            }
        };
        let mut targets = Vec::with_capacity(events.len());
        for event in &events {
            match Target::try_from(event) {
                Ok(target) => targets.push(Target { redelivered: incoming.redelivered, ..target }),
                Err(e) => tracing::error!(error = %e, "dropping event"),
            }
        }
        if targets.is_empty() {
            incoming.acker.ack().await;
            return;
        }
        let message =
            Arc::new(Message { unwritten: AtomicUsize::new(targets.len()), acker: Mutex::new(Some(incoming.acker)) });
        let mut arrived = [false; 2];
        {
            let mut waiting = self.lock();
            for target in targets {
                let tenant = target.tenant.clone();
                waiting.queue.push(&tenant, Queued { target, message: message.clone() });
                for share in Share::BOTH.into_iter().filter(|s| s.takes(waiting.load(&tenant))) {
                    arrived[share.index()] = true;
                }
            }
        }
        for share in Share::BOTH.into_iter().filter(|s| arrived[s.index()]) {
            self.arrived[share.index()].notify_one();
        }
    }

    /// No more messages will come.
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        for arrived in &self.arrived {
            arrived.notify_one();
        }
    }

    /// Up to `most` waiting events of `share`'s tenants, tenants in turn;
    /// waits for one if none is waiting. Once closed, events of any
    /// tenant, so that what is left goes out whatever its share; `None`
    /// once closed and empty.
    async fn next_batch(&self, share: Share, most: usize) -> Option<Vec<Queued>> {
        loop {
            // Registered before looking, so an arrival in between is not missed.
            let arrived = self.arrived[share.index()].notified();
            let closed = self.closed.load(Ordering::Acquire);
            {
                let mut guard = self.lock();
                let Waiting { queue, in_batches } = &mut *guard;
                let mut batch = Vec::new();
                while batch.len() < most {
                    let taken = if closed {
                        queue.pop()
                    } else {
                        queue.pop_where(|tenant, queued| {
                            share.takes(queued + in_batches.get(tenant).copied().unwrap_or(0))
                        })
                    };
                    let Some((tenant, queued)) = taken else { break };
                    *in_batches.entry(tenant).or_default() += 1;
                    batch.push(queued);
                }
                if !batch.is_empty() {
                    return Some(batch);
                }
                if closed && queue.is_empty() {
                    return None;
                }
            }
            arrived.await;
        }
    }

    /// A batch holding events of `tenants` (one entry per event) is
    /// written: a tenant with few events left in fan-out is light again.
    fn finished(&self, tenants: &[TenantId]) {
        let mut waiting = self.lock();
        for tenant in tenants {
            // Looked up by reference: no tenant id cloned per event written.
            let Some(left) = waiting.in_batches.get_mut(tenant) else { continue };
            *left -= 1;
            if *left == 0 {
                waiting.in_batches.remove(tenant);
            }
        }
        if !waiting.queue.is_empty() {
            for arrived in &self.arrived {
                arrived.notify_one();
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.waiting.lock().expect("the lock is never held across a panic")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use std::time::Duration;

    struct Unacked;

    #[async_trait]
    impl Acker for Unacked {
        async fn ack(self: Box<Self>) {}
        async fn reject(self: Box<Self>) {}
    }

    fn message(tenant: &TenantId, events: usize) -> Incoming {
        let event = |_| EventMessage {
            event_id: EventId::generate().to_string(),
            tenant_id: tenant.to_string(),
            event_type: "client.created".into(),
            ordering_key: None,
        };
        Incoming { message: Ok((0..events).map(event).collect()), redelivered: false, acker: Box::new(Unacked) }
    }

    fn tenants(batch: &[Queued]) -> Vec<TenantId> {
        batch.iter().map(|q| q.target.tenant.clone()).collect()
    }

    /// A quiet tenant's event behind an import's message goes in a light
    /// batch of its own; the import counts as a backlog while its events
    /// are in batches not yet written, and is light again once they are.
    #[tokio::test]
    async fn a_light_tenants_events_are_batched_apart_from_a_backlog() {
        let intake = Intake::default();
        let (import, quiet) = (TenantId::generate(), TenantId::generate());
        intake.take_in(message(&import, 128)).await;
        intake.take_in(message(&quiet, 1)).await;

        let light = intake.next_batch(Share::Light, 128).await.unwrap();
        assert_eq!(tenants(&light), [quiet]);
        let backlog = intake.next_batch(Share::Backlog, 128).await.unwrap();
        assert_eq!(backlog.len(), 128);

        // Three more of the import's, while its 128 are being written: not light.
        intake.take_in(message(&import, 3)).await;
        let soon = Duration::from_millis(50);
        assert!(tokio::time::timeout(soon, intake.next_batch(Share::Light, 128)).await.is_err());
        intake.finished(&tenants(&backlog));
        let light = tokio::time::timeout(soon, intake.next_batch(Share::Light, 128)).await.unwrap().unwrap();
        assert_eq!(light.len(), 3, "written, the import is down to three events: light");
    }
}
