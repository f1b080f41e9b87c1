//! The delivery loop: attempt deliveries as they come from fan-out or come
//! due for a retry, with a bounded number in flight.
//!
//! Fan-out starts a new delivery's first attempt here before the delivery
//! is written ([`DeliveryLoop::take_on_by`]) and writes what became of it
//! ([`Outcome::into_fresh`]); everything else is attempted as a stored
//! delivery and recorded against it ([`DeliveryLoop::settle`]).
use crate::due_alarm::DueAlarm;
use crate::endpoint_throttle::EndpointThrottle;
use crate::fair::{FairChannel, FairPermit, FairSemaphore};
use crate::sender::{Sender, Verdict};
use crate::transform::{Program, Rendered, Request, Sandbox};
use crate::DeliveryConfig;
use chrono::{DateTime, Utc};
use hookhub_store::domain::signer::sign_with_all;
use hookhub_store::domain::{
    now, webhook_body, webhook_json, DeliveryId, DeliveryStatus, OrderingKey, SubscriptionId, SubscriptionStatus,
    TenantId,
};
use hookhub_store::metrics::metrics;
use hookhub_store::repo::{
    Delivery, DeliveryWork, DueDelivery, FreshDelivery, Loaded, NewAttempt, NextStep, RecordedAttempt,
};
use hookhub_store::{Store, StoreError};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Most attempts written in one transaction.
const RECORD_BATCH: usize = 128;

/// Attempts finished and not written yet, by tenant.
type Results = FairChannel<TenantId, RecordedAttempt>;

/// Writes finished attempts in batches, one commit each: whatever piled up
/// while the previous batch was committing goes in the next, taken one
/// tenant at a time, so a tenant whose thousands of failures wait to be
/// written does not hold back another's (whose retry is not due until its
/// failure is written). Under load that is many webhooks per disk flush;
/// when idle, a batch of one.
async fn record_results(this: Arc<DeliveryLoop>, attempts_done: CancellationToken) {
    let (store, alarm) = (&this.store, &this.alarm);
    loop {
        let batch = tokio::select! {
            biased;
            batch = this.results.take(RECORD_BATCH) => batch,
            _ = attempts_done.cancelled() => this.results.try_take(RECORD_BATCH),
        };
        if batch.is_empty() {
            break;
        }
        match store.record_attempts(&batch, this.config.breaker).await {
            Ok(recorded) => {
                let mut freed = Vec::new();
                for (r, ok) in batch.iter().zip(recorded) {
                    if ok {
                        written(alarm, r);
                        freed.extend(freed_key(r));
                    }
                }
                // The next delivery of each key is waiting: attempt it now,
                // not a poll later (a key goes one delivery at a time). Once
                // the loop has stopped taking attempts, make it due for
                // whichever process polls next. A wake lost here is made up
                // by the poller's sweep.
                if !freed.is_empty() {
                    let woken = if attempts_done.is_cancelled() {
                        store.wake_heads(&freed).await
                    } else {
                        this.attempt_heads(&freed).await
                    };
                    if let Err(e) = woken {
                        tracing::warn!(error = %e, "could not wake the next deliveries of ordered keys; the sweep will");
                    }
                }
            }
            Err(e) => tracing::warn!(
                error = %e,
                attempts = batch.len(),
                "could not record attempts; their deliveries will be retried after their lease"
            ),
        }
    }
}

/// After an attempt was written: sets the alarm for its retry, and counts it.
fn written(alarm: &DueAlarm, recorded: &RecordedAttempt) {
    if let NextStep::RetryAt(at) = recorded.next {
        alarm.set(at, &recorded.work.delivery.tenant_id);
    }
    observe(recorded);
}

/// The (subscription, key) whose next delivery a recorded attempt lets go:
/// an ordered delivery that is done, one way or the other.
fn freed_key(recorded: &RecordedAttempt) -> Option<(SubscriptionId, OrderingKey)> {
    let d = &recorded.work.delivery;
    let key = d.ordering_key.as_ref().filter(|_| !matches!(recorded.next, NextStep::RetryAt(_)))?;
    Some((d.subscription_id.clone(), key.clone()))
}

/// How often the retry poller makes due the heads of ordered keys whose
/// wake was lost (a crash between an outcome's commit and its wake).
const WAKE_SWEEP: Duration = Duration::from_secs(30);

/// Counts a recorded attempt in the metrics.
fn observe(recorded: &RecordedAttempt) {
    let (work, next) = (&recorded.work, recorded.next);
    let (status, seconds) = (recorded.attempt.status_code, recorded.attempt.latency_ms as f64 / 1000.0);
    let m = metrics();
    let outcome = match next {
        NextStep::Succeeded => "succeeded",
        NextStep::RetryAt(_) => "retrying",
        NextStep::Failed | NextStep::Gone => "failed",
        NextStep::Filtered => "filtered",
    };
    m.attempt(outcome, status, seconds);
    // A filtered event says nothing of the endpoint: the streak stands.
    if next != NextStep::Filtered {
        m.streak(work.subscription.id.as_str(), next != NextStep::Succeeded);
    }
    if next == NextStep::Succeeded {
        let waited = (now() - work.event.created_at).to_std().unwrap_or_default();
        m.delivery_latency.observe(waited.as_secs_f64());
    }
}

/// How long an attempt waits for a place with its endpoint before the
/// delivery is put back: far above a healthy endpoint's answer time, far
/// below a struggling one's.
const GATE_PATIENCE: Duration = Duration::from_millis(200);

/// The shortest time between two claims of the retry poller. In a storm
/// of retries the alarm rings by the thousand a second, and every claim
/// reads all the due rows; a retry is at most this much later for it.
const MIN_POLL_GAP: Duration = Duration::from_millis(25);

/// How soon the retry poller looks again after a claim that filled the
/// loop: retries are waiting, and places free up by the millisecond.
const BUSY_POLL: Duration = Duration::from_millis(50);

/// Most due deliveries of one tenant claimed by name while the loop is
/// full (see `claim_for_the_rung`): enough to keep the tenant in the turn,
/// few enough that the leases they hold while waiting stay short.
const RUNG_CLAIM: u64 = 4;

/// Most tenants claimed by name in one poll.
const RUNG_TENANTS: usize = 64;

/// Why a delivery is failed without an attempt.
const SUBSCRIPTION_DISABLED: &str = "subscription is disabled";

/// What became of a delivery taken on.
#[derive(Debug)]
pub enum Outcome {
    /// It was attempted.
    Attempted(RecordedAttempt),
    /// Its endpoint had no place for it: it is due again then, no attempt counted.
    Deferred(DeliveryWork, DateTime<Utc>),
    /// Its subscription is no longer active: it fails unattempted.
    Abandoned(DeliveryWork),
}

impl Outcome {
    /// The delivery as fan-out writes it when it was not stored before.
    pub fn into_fresh(self) -> FreshDelivery {
        match self {
            Self::Attempted(recorded) => FreshDelivery::Attempted(Box::new(recorded)),
            Self::Deferred(work, until) => {
                FreshDelivery::Unattempted(Delivery { next_attempt_at: Some(until), ..work.delivery })
            }
            Self::Abandoned(work) => FreshDelivery::Unattempted(Delivery {
                status: DeliveryStatus::Failed,
                next_attempt_at: None,
                last_error: Some(SUBSCRIPTION_DISABLED.to_owned()),
                ..work.delivery
            }),
        }
    }
}

/// Attempts deliveries.
pub struct DeliveryLoop {
    store: Store,
    sender: Sender,
    config: DeliveryConfig,
    /// Attempts in flight (HTTP requests open) at once, shared out by
    /// tenant in turn.
    permits: Arc<FairSemaphore<TenantId>>,
    /// Deliveries taken on at once, including those waiting for their
    /// endpoint's gate; bounds memory and the retry poller's claims. When
    /// the loop is full, the next place goes to the next tenant in turn,
    /// so a tenant's backlog never queues another tenant's delivery
    /// behind all of it.
    queue: Arc<FairSemaphore<TenantId>>,
    gate: EndpointThrottle,
    /// Wakes the retry poller when a retry written here comes due, and at
    /// once when an ordered key's next delivery became due.
    alarm: Arc<DueAlarm>,
    /// Where subscriptions' filters and transforms run.
    sandbox: &'static Sandbox,
    /// Every task it starts, waited for at shutdown.
    tasks: TaskTracker,
    /// Finished attempts on their way to the store, written in batches.
    results: Arc<Results>,
}

impl DeliveryLoop {
    /// A loop with `config.concurrency` attempts in flight at most.
    pub fn new(store: Store, config: DeliveryConfig) -> Arc<Self> {
        Arc::new(Self {
            results: Arc::new(FairChannel::new(config.concurrency.max(1) * 4)),
            sender: Sender::new(config.request_timeout, !config.allow_private_endpoints),
            permits: FairSemaphore::new(config.concurrency.max(1)),
            queue: FairSemaphore::new(config.concurrency.max(1) * 4),
            gate: EndpointThrottle::new(config.per_subscription_concurrency, GATE_PATIENCE),
            alarm: Arc::default(),
            sandbox: Sandbox::shared(),
            tasks: TaskTracker::new(),
            store,
            config,
        })
    }

    /// Makes the retry poller look for due deliveries now.
    pub fn wake_poller(&self) {
        self.alarm.ring_now();
    }

    /// How it attempts deliveries.
    pub fn config(&self) -> &DeliveryConfig {
        &self.config
    }

    /// Runs the retry poller and the attempt recorder until `shutdown`, then
    /// waits (up to the request timeout) for the attempts in flight. An
    /// attempt cut off there is not lost: its delivery's lease runs out and
    /// another worker retries it.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let attempts_done = CancellationToken::new();
        let recorder = tokio::spawn(record_results(self.clone(), attempts_done.clone()));
        let lease = self.config.lease_span();
        let mut poll_at = tokio::time::Instant::now();
        let mut polled_at = poll_at - MIN_POLL_GAP;
        // Due at once: a restart sweeps what a crash left waiting.
        let mut next_sweep = tokio::time::Instant::now();
        loop {
            if tokio::time::Instant::now() >= next_sweep {
                next_sweep = tokio::time::Instant::now() + WAKE_SWEEP;
                if let Err(e) = self.store.wake_all_heads().await {
                    tracing::warn!(error = %e, "could not sweep the heads of ordered keys");
                }
            }
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                // An earlier alarm was set: work out the time to wake again.
                _ = self.alarm.set_earlier() => {}
                _ = tokio::time::sleep_until(self.alarm.next_look(poll_at).max(polled_at + MIN_POLL_GAP)) => {
                    self.gate.forget_idle();
                    polled_at = tokio::time::Instant::now();
                    poll_at = polled_at + self.poll_due(lease).await;
                }
            }
        }
        self.tasks.close();
        if tokio::time::timeout(self.config.request_timeout + Duration::from_secs(5), self.tasks.wait()).await.is_err()
        {
            tracing::warn!("attempts still in flight at shutdown; their leases will bring them back");
        }
        attempts_done.cancel();
        if recorder.await.is_err() {
            tracing::error!("the attempt recorder panicked; unrecorded attempts come back after their lease");
        }
        tracing::info!("delivery loop stopped");
    }

    /// Claims the retries that are due, as many as the loop has places for,
    /// and starts them; says how long to wait before looking again. A claim
    /// that filled every free place means more are due: look again as soon
    /// as places free up rather than a whole poll interval later, so a
    /// backlog of retries does not make others late by the interval.
    ///
    /// First, free place or not, it claims for the tenants whose retries
    /// came due ([`Self::claim_for_the_rung`]): the claim into free places
    /// chooses among the oldest due rows only, and with no place free there
    /// is no such claim at all.
    async fn poll_due(self: &Arc<Self>, lease: chrono::Duration) -> Duration {
        self.claim_for_the_rung(lease).await;
        let free = self.queue.available_permits() as u64;
        if free == 0 {
            return BUSY_POLL;
        }
        match self.store.claim_due_deliveries(free, lease).await {
            Ok(due) => {
                let full = due.len() as u64 >= free;
                if !full {
                    // Every due delivery was claimed, the rung tenants' too.
                    self.alarm.take_rung();
                }
                self.start_by_tenant(due);
                if full {
                    BUSY_POLL
                } else {
                    self.config.poll_interval
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not claim due deliveries");
                self.config.poll_interval
            }
        }
    }

    /// While the loop is full, every freed place goes to the next tenant
    /// waiting in turn, and a tenant whose retries are due but only in the
    /// store waits for nothing: it is not in the turn, and with a storm's
    /// deliveries always waiting there is never a free place to claim them
    /// into. When places are free, the claim into them numbers only the
    /// oldest due rows, which in a storm are all the storm's. So the
    /// tenants whose alarm rang and that have nothing waiting have a few of
    /// their due deliveries claimed by name, which then wait for a place in
    /// their turn. A tenant already waiting is in the turn and is left to
    /// it; one whose claim came back full may have more due and stays rung.
    async fn claim_for_the_rung(self: &Arc<Self>, lease: chrono::Duration) {
        let (waiting, mut idle): (Vec<_>, Vec<_>) =
            self.alarm.take_rung().into_iter().partition(|tenant| self.queue.is_waiting(tenant));
        self.alarm.ring_again(waiting);
        // The claim is a branch per tenant: the rest wait for the next poll.
        if idle.len() > RUNG_TENANTS {
            self.alarm.ring_again(idle.split_off(RUNG_TENANTS));
        }
        let due = match self.store.claim_due_of(&idle, RUNG_CLAIM, lease).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "could not claim the due deliveries of tenants not in the turn");
                self.alarm.ring_again(idle);
                return;
            }
        };
        let mut claimed: HashMap<&TenantId, u64> = HashMap::new();
        for d in &due {
            *claimed.entry(&d.tenant_id).or_default() += 1;
        }
        self.alarm.ring_again(claimed.into_iter().filter(|(_, n)| *n >= RUNG_CLAIM).map(|(t, _)| t.clone()));
        self.start_by_tenant(due);
    }

    /// Starts claimed deliveries, each tenant's in a task of its own that
    /// waits for the tenant's turn at a place: the caller never waits, and
    /// a tenant with hundreds in the claim does not queue another's one
    /// behind them (each asks the loop for its turn at once).
    fn start_by_tenant(self: &Arc<Self>, due: Vec<DueDelivery>) {
        let mut by_tenant: HashMap<TenantId, Vec<DueDelivery>> = HashMap::new();
        for d in due {
            by_tenant.entry(d.tenant_id.clone()).or_default().push(d);
        }
        for due in by_tenant.into_values() {
            let this = self.clone();
            self.tasks.spawn(async move { this.start_claimed(due).await });
        }
    }

    /// Starts claimed deliveries, each in its tenant's turn for a place.
    async fn start_claimed(self: &Arc<Self>, due: Vec<DueDelivery>) {
        for DueDelivery { id, tenant_id } in due {
            self.start(&tenant_id, move |this| async move {
                if let Some(work) = this.load(&id).await {
                    this.settle(this.try_attempt(work).await).await;
                }
            })
            .await;
        }
    }

    /// Claims the waiting heads of ordered `keys` and attempts them: after
    /// fan-out wrote a key's deliveries, and after a key's delivery
    /// finished. The caller (the attempt recorder, which frees places)
    /// never waits for a place ([`Self::start_by_tenant`]).
    pub async fn attempt_heads(self: &Arc<Self>, keys: &[(SubscriptionId, OrderingKey)]) -> Result<(), StoreError> {
        self.start_by_tenant(self.store.claim_heads(keys, self.config.lease_span()).await?);
        Ok(())
    }

    /// Takes a delivery of `tenant` on, waiting while the loop is full
    /// (backpressure for fan-out) for the tenant's turn, and starts `job`.
    async fn start<F, T>(self: &Arc<Self>, tenant: &TenantId, job: impl FnOnce(Arc<Self>) -> F) -> JoinHandle<T>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let place = self.queue.acquire(tenant).await;
        self.run_in(place, job)
    }

    /// Starts `job` in the loop `place` it was given, freed when it ends.
    fn run_in<F, T>(self: &Arc<Self>, place: FairPermit<TenantId>, job: impl FnOnce(Arc<Self>) -> F) -> JoinHandle<T>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let job = job(self.clone());
        self.tasks.spawn(async move {
            let done = job.await;
            drop(place);
            done
        })
    }

    /// Starts the first attempt of a delivery that is not stored yet, if the
    /// loop has a place for it by `deadline`; the handle yields what became
    /// of it, for the caller to write. Gives the work back otherwise: an
    /// attempt sent before its delivery is written is sent again if the
    /// process dies in between, so fan-out keeps that window short rather
    /// than queueing first attempts behind a full loop.
    pub async fn take_on_by(
        self: &Arc<Self>,
        work: DeliveryWork,
        deadline: tokio::time::Instant,
    ) -> Result<JoinHandle<Outcome>, DeliveryWork> {
        match tokio::time::timeout_at(deadline, self.queue.acquire(&work.delivery.tenant_id)).await {
            Ok(place) => Ok(self.run_in(place, move |this| async move { this.try_attempt(work).await })),
            Err(_) => Err(work),
        }
    }

    /// Records, once it is known, the outcome of an attempt started by
    /// [`Self::take_on_by`] whose delivery has been stored since.
    pub fn follow(self: &Arc<Self>, attempt: JoinHandle<Outcome>) {
        let this = self.clone();
        self.tasks.spawn(async move {
            if let Ok(outcome) = attempt.await {
                this.settle(outcome).await;
            }
        });
    }

    /// Attempts a stored delivery and records the outcome.
    pub async fn dispatch(self: &Arc<Self>, work: DeliveryWork) {
        let tenant = work.delivery.tenant_id.clone();
        self.start(&tenant, move |this| async move { this.settle(this.try_attempt(work).await).await }).await;
    }

    async fn load(&self, id: &DeliveryId) -> Option<DeliveryWork> {
        match self.store.delivery_work(id).await {
            Ok(Loaded::Ready(work)) => Some(*work),
            Ok(Loaded::Gone) => None,
            Ok(Loaded::Held(reason)) => {
                metrics().deliveries_held.inc();
                tracing::warn!(delivery_id = %id, %reason, "delivery held until its event and subscription read");
                None
            }
            Err(e) => {
                tracing::warn!(delivery_id = %id, error = %e, "could not load delivery; it comes back after its lease");
                None
            }
        }
    }

    /// Counts an attempt fan-out wrote with its delivery, and sets the
    /// alarm for its retry.
    pub(crate) fn written(&self, recorded: &RecordedAttempt) {
        written(&self.alarm, recorded);
    }

    /// Writes an outcome to its stored delivery; attempts go to the recorder.
    pub async fn settle(&self, outcome: Outcome) {
        let (id, written) = match outcome {
            Outcome::Attempted(recorded) => {
                let tenant = recorded.work.delivery.tenant_id.clone();
                self.results.send(&tenant, recorded).await;
                return;
            }
            Outcome::Deferred(work, until) => {
                (work.delivery.id.clone(), self.store.defer_delivery(&work.delivery.id, until).await)
            }
            Outcome::Abandoned(work) => {
                let d = &work.delivery;
                let mut abandoned = self.store.abandon_delivery(&d.id, SUBSCRIPTION_DISABLED).await;
                // Failed, it no longer holds its key: the next one is abandoned in turn.
                if let (Ok(()), Some(key)) = (&abandoned, &d.ordering_key) {
                    abandoned = self.store.wake_heads(&[(d.subscription_id.clone(), key.clone())]).await;
                    self.wake_poller();
                }
                (d.id.clone(), abandoned)
            }
        };
        if let Err(e) = written {
            tracing::warn!(delivery_id = %id, error = %e, "could not put the delivery back; it comes back after its lease");
        }
    }

    /// Makes one attempt of a delivery, unless its subscription is off or
    /// its endpoint has no place for it.
    pub async fn try_attempt(&self, work: DeliveryWork) -> Outcome {
        if work.subscription.status != SubscriptionStatus::Active {
            return Outcome::Abandoned(work);
        }
        // The filter and transform run first: a filtered event takes no
        // place with its endpoint, and a failing program no in-flight slot.
        let request = match self.render(&work).await {
            Ok(request) => request,
            Err((attempt, next)) => {
                tracing::info!(
                    event_id = %work.event.id, subscription_id = %work.subscription.id, error = ?attempt.error,
                    next = ?next, "not sent: filtered, or its transform failed"
                );
                return Outcome::Attempted(RecordedAttempt { work, attempt, next });
            }
        };
        let sub = &work.subscription;
        // Wait for the endpoint's place before taking an in-flight slot, so
        // a slow endpoint's backlog never holds slots healthy ones need.
        let _admission = match self.gate.enter(sub.id.as_str(), sub.rate_limit_per_second).await {
            Ok(admission) => admission,
            Err(wait) => {
                // Not now: give the slot to another endpoint and come back.
                let until = now() + chrono::Duration::from_std(wait).unwrap_or_default();
                return Outcome::Deferred(work, until);
            }
        };
        let _in_flight = self.permits.acquire(&work.delivery.tenant_id).await;
        let (attempt, next) = self.send(&work, request).await;
        let span = tracing::info_span!(
            "attempt",
            event_id = %work.event.id,
            subscription_id = %work.subscription.id,
            attempt = work.delivery.attempt_count + 1,
        );
        span.in_scope(|| {
            tracing::info!(status = ?attempt.status_code, latency_ms = attempt.latency_ms, next = ?next, "attempted")
        });
        Outcome::Attempted(RecordedAttempt { work, attempt, next })
    }

    /// The request a delivery sends: the webhook body as it is, or what the
    /// subscription's filter and transform make of it. `Err` is the attempt
    /// to record instead: filtered, or failed with the program's error (a
    /// failed attempt like any other, retried on the schedule, so fixing the
    /// transform lets the pending deliveries through).
    async fn render(&self, work: &DeliveryWork) -> Result<Request, (NewAttempt, NextStep)> {
        let sub = &work.subscription;
        let program = Program::saved(sub.programs.filter.as_deref(), sub.programs.transform.as_deref());
        if program.is_empty() {
            return Ok(Request::plain(webhook_body(&work.event)));
        }
        let (attempted_at, started) = (now(), std::time::Instant::now());
        let body = webhook_json(&work.event);
        let rendered = self
            .sandbox
            .run(&work.delivery.tenant_id, &program, body, work.event.event_type.to_string(), sub.url.clone())
            .await;
        let (error, next) = match rendered {
            Ok(Rendered::Send(request)) => return Ok(request),
            Ok(Rendered::Filtered(_)) => (None, NextStep::Filtered),
            // Its Display names the failure and a line, never a payload value.
            Err(e) => (Some(e.to_string()), self.after_failure(work, None)),
        };
        let latency_ms = started.elapsed().as_millis() as i64;
        Err((NewAttempt { attempted_at, status_code: None, latency_ms, error, response_body: None }, next))
    }

    /// What follows a failed attempt: the next slot of the retry schedule
    /// (or the endpoint's `Retry-After`, if later), or the dead letter.
    fn after_failure(&self, work: &DeliveryWork, retry_after: Option<Duration>) -> NextStep {
        let failures = work.delivery.retry_index as usize + 1;
        match self.config.retry_schedule.delay_after(failures, &mut rand::thread_rng()) {
            // The endpoint's Retry-After wins over an earlier slot of the schedule.
            Some(wait) => {
                let wait = wait.max(retry_after.unwrap_or_default());
                NextStep::RetryAt(now() + chrono::Duration::from_std(wait).unwrap_or_default())
            }
            None => NextStep::Failed,
        }
    }

    /// Signs exactly the bytes of `request`'s body and sends it.
    async fn send(&self, work: &DeliveryWork, request: Request) -> (NewAttempt, NextStep) {
        let attempted_at = now();
        let secrets = work.subscription.signing_secrets(attempted_at);
        let signature = sign_with_all(&secrets, work.event.id.as_str(), attempted_at.timestamp(), &request.body);
        let outcome = self.sender.send_request(&work.subscription.url, &signature, request).await;
        let next = match outcome.verdict() {
            Verdict::Delivered => NextStep::Succeeded,
            Verdict::Gone => NextStep::Gone,
            Verdict::Retry => {
                if let Some(pause) = outcome.retry_after {
                    self.gate.pause(work.subscription.id.as_str(), std::time::Instant::now() + pause);
                }
                self.after_failure(work, outcome.retry_after)
            }
        };
        let attempt = NewAttempt {
            attempted_at,
            status_code: outcome.status_code,
            latency_ms: outcome.latency.as_millis() as i64,
            error: outcome.error,
            response_body: outcome.response_body,
        };
        (attempt, next)
    }
}
