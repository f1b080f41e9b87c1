//! The delivery loop: attempt deliveries as they come from fan-out or come
//! due for a retry, with a bounded number in flight.
use crate::metrics::metrics;
use crate::payload::webhook_body;
use crate::sender::{Sender, Verdict};
use crate::signer::sign_with_all;
use crate::subscription_gate::SubscriptionGate;
use crate::DeliveryConfig;
use hookhub_store::domain::{now, DeliveryId, SubscriptionStatus};
use hookhub_store::repo::{BreakerPolicy, DeliveryWork, NewAttempt, NextStep, RecordedAttempt};
use hookhub_store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Most attempts written in one transaction.
const RECORD_BATCH: usize = 128;

/// Writes finished attempts in batches, one commit each: whatever piled up
/// while the previous batch was committing goes in the next. Under load
/// that is many webhooks per disk flush; when idle, a batch of one.
async fn record_results(
    store: Store,
    breaker: BreakerPolicy,
    mut results: mpsc::Receiver<RecordedAttempt>,
    attempts_done: CancellationToken,
) {
    loop {
        let first = tokio::select! {
            biased;
            r = results.recv() => r,
            _ = attempts_done.cancelled() => results.try_recv().ok(),
        };
        let Some(first) = first else { break };
        let mut batch = vec![first];
        while batch.len() < RECORD_BATCH {
            match results.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        match store.record_attempts(&batch, breaker).await {
            Ok(recorded) => {
                for (r, ok) in batch.iter().zip(recorded) {
                    if ok {
                        observe(&r.work, r.next, r.attempt.status_code, r.attempt.latency_ms as f64 / 1000.0);
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

/// Counts a recorded attempt in the metrics.
fn observe(work: &DeliveryWork, next: NextStep, status: Option<u16>, seconds: f64) {
    let m = metrics();
    let outcome = match next {
        NextStep::Succeeded => "succeeded",
        NextStep::RetryAt(_) => "retrying",
        NextStep::Failed | NextStep::Gone => "failed",
    };
    m.attempt(outcome, status, seconds);
    m.streak(work.subscription.id.as_str(), next != NextStep::Succeeded);
    if next == NextStep::Succeeded {
        let waited = (now() - work.event.created_at).to_std().unwrap_or_default();
        m.delivery_latency.observe(waited.as_secs_f64());
    }
}

/// How long an attempt waits for a place with its endpoint before the
/// delivery is put back: far above a healthy endpoint's answer time, far
/// below a struggling one's.
const GATE_PATIENCE: Duration = Duration::from_millis(200);

/// A delivery to attempt: handed over loaded by fan-out, or claimed by id
/// from the store when its retry came due.
enum Job {
    Loaded(Box<DeliveryWork>),
    Claimed(DeliveryId),
}

/// Attempts deliveries.
pub struct DeliveryLoop {
    store: Store,
    sender: Sender,
    config: DeliveryConfig,
    /// Attempts in flight (HTTP requests open) at once.
    permits: Arc<Semaphore>,
    /// Deliveries taken on at once, including those waiting for their
    /// endpoint's gate; bounds memory and the retry poller's claims.
    queue: Arc<Semaphore>,
    gate: SubscriptionGate,
    /// Finished attempts on their way to the store, written in batches.
    results: mpsc::Sender<RecordedAttempt>,
    results_rx: std::sync::Mutex<Option<mpsc::Receiver<RecordedAttempt>>>,
}

impl DeliveryLoop {
    /// A loop with `config.concurrency` attempts in flight at most.
    pub fn new(store: Store, config: DeliveryConfig) -> Arc<Self> {
        let (results, results_rx) = mpsc::channel(config.concurrency.max(1) * 4);
        Arc::new(Self {
            results,
            results_rx: std::sync::Mutex::new(Some(results_rx)),
            sender: Sender::new(config.request_timeout, !config.allow_private_endpoints),
            permits: Arc::new(Semaphore::new(config.concurrency.max(1))),
            queue: Arc::new(Semaphore::new(config.concurrency.max(1) * 4)),
            gate: SubscriptionGate::new(config.per_subscription_concurrency, GATE_PATIENCE),
            store,
            config,
        })
    }

    /// Runs until `shutdown`, then waits (up to the request timeout) for the
    /// attempts in flight. An attempt cut off there is not lost: its
    /// delivery's lease runs out and another worker retries it.
    pub async fn run(self: Arc<Self>, mut work: mpsc::Receiver<DeliveryWork>, shutdown: CancellationToken) {
        let tasks = TaskTracker::new();
        let attempts_done = CancellationToken::new();
        let results = self.results_rx.lock().expect("lock is never poisoned").take().expect("run is called once");
        let recorder =
            tokio::spawn(record_results(self.store.clone(), self.config.breaker, results, attempts_done.clone()));
        let mut tick = tokio::time::interval(self.config.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let lease = chrono::Duration::from_std(self.config.lease()).unwrap_or(chrono::Duration::minutes(1));
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                Some(loaded) = work.recv() => self.spawn_attempt(&tasks, Job::Loaded(Box::new(loaded))).await,
                _ = tick.tick() => {
                    self.gate.forget_idle();
                    let free = self.queue.available_permits() as u64;
                    if free == 0 {
                        continue;
                    }
                    match self.store.claim_due_deliveries(free, lease).await {
                        Ok(ids) => for id in ids { self.spawn_attempt(&tasks, Job::Claimed(id)).await },
                        Err(e) => tracing::warn!(error = %e, "could not claim due deliveries"),
                    }
                }
            }
        }
        tasks.close();
        if tokio::time::timeout(self.config.request_timeout + Duration::from_secs(5), tasks.wait()).await.is_err() {
            tracing::warn!("attempts still in flight at shutdown; their leases will bring them back");
        }
        attempts_done.cancel();
        if recorder.await.is_err() {
            tracing::error!("the attempt recorder panicked; unrecorded attempts come back after their lease");
        }
        tracing::info!("delivery loop stopped");
    }

    async fn spawn_attempt(self: &Arc<Self>, tasks: &TaskTracker, job: Job) {
        let permit = self.queue.clone().acquire_owned().await.expect("semaphore is never closed");
        let this = self.clone();
        tasks.spawn(async move {
            let work = match job {
                Job::Loaded(work) => Some(*work),
                Job::Claimed(id) => this.load(&id).await,
            };
            if let Some(work) = work {
                this.attempt(work).await;
            }
            drop(permit);
        });
    }

    async fn load(&self, id: &DeliveryId) -> Option<DeliveryWork> {
        match self.store.delivery_work(id).await {
            Ok(work) => work,
            Err(e) => {
                tracing::warn!(delivery_id = %id, error = %e, "could not load delivery; it comes back after its lease");
                None
            }
        }
    }

    /// Makes one attempt of a delivery and records it.
    pub async fn attempt(&self, work: DeliveryWork) {
        let id = &work.delivery.id;
        if work.subscription.status != SubscriptionStatus::Active {
            if let Err(e) = self.store.abandon_delivery(id, "subscription is disabled").await {
                tracing::warn!(delivery_id = %id, error = %e, "could not abandon delivery");
            }
            return;
        }
        let sub = &work.subscription;
        // Wait for the endpoint's place before taking an in-flight slot, so
        // a slow endpoint's backlog never holds slots healthy ones need.
        let _admission = match self.gate.enter(sub.id.as_str(), sub.rate_limit_per_second).await {
            Ok(admission) => admission,
            Err(wait) => {
                // Not now: give the slot to another endpoint and come back.
                let until = now() + chrono::Duration::from_std(wait).unwrap_or_default();
                if let Err(e) = self.store.defer_delivery(id, until).await {
                    tracing::warn!(delivery_id = %id, error = %e, "could not defer; it comes back after its lease");
                }
                return;
            }
        };
        let _in_flight = self.permits.acquire().await.expect("semaphore is never closed");
        let (attempt, next) = self.send(&work).await;
        let span = tracing::info_span!(
            "attempt",
            event_id = %work.event.id,
            subscription_id = %work.subscription.id,
            attempt = work.delivery.attempt_count + 1,
        );
        let _enter = span.enter();
        tracing::info!(status = ?attempt.status_code, latency_ms = attempt.latency_ms, next = ?next, "attempted");
        drop(_enter);
        // The recorder is never closed while attempts run.
        let _ = self.results.send(RecordedAttempt { work, attempt, next }).await;
    }

    async fn send(&self, work: &DeliveryWork) -> (NewAttempt, NextStep) {
        let body = webhook_body(&work.event);
        let attempted_at = now();
        let secrets = work.subscription.signing_secrets(attempted_at);
        let signature = sign_with_all(&secrets, work.event.id.as_str(), attempted_at.timestamp(), &body);
        let outcome = self.sender.send(&work.subscription.url, &signature, body).await;
        let next = match outcome.verdict() {
            Verdict::Delivered => NextStep::Succeeded,
            Verdict::Gone => NextStep::Gone,
            Verdict::Retry => {
                if let Some(pause) = outcome.retry_after {
                    self.gate.pause(work.subscription.id.as_str(), std::time::Instant::now() + pause);
                }
                let failures = work.delivery.retry_index as usize + 1;
                match self.config.retry_schedule.delay_after(failures, &mut rand::thread_rng()) {
                    // The endpoint's Retry-After wins over an earlier slot of the schedule.
                    Some(wait) => {
                        let wait = wait.max(outcome.retry_after.unwrap_or_default());
                        NextStep::RetryAt(now() + chrono::Duration::from_std(wait).unwrap_or_default())
                    }
                    None => NextStep::Failed,
                }
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
