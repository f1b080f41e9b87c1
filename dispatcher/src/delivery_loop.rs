//! The delivery loop: attempt deliveries as they come from fan-out or come
//! due for a retry, with a bounded number in flight.
use crate::metrics::metrics;
use crate::payload::webhook_body;
use crate::sender::{Sender, Verdict};
use crate::signer::sign_with_all;
use crate::subscription_gate::SubscriptionGate;
use crate::DeliveryConfig;
use hookhub_store::domain::{now, DeliveryId, SubscriptionStatus};
use hookhub_store::repo::{DeliveryWork, NewAttempt, NextStep};
use hookhub_store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

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
    permits: Arc<Semaphore>,
    gate: SubscriptionGate,
}

impl DeliveryLoop {
    /// A loop with `config.concurrency` attempts in flight at most.
    pub fn new(store: Store, config: DeliveryConfig) -> Arc<Self> {
        Arc::new(Self {
            sender: Sender::new(config.request_timeout, !config.allow_private_endpoints),
            permits: Arc::new(Semaphore::new(config.concurrency.max(1))),
            gate: SubscriptionGate::new(config.per_subscription_concurrency),
            store,
            config,
        })
    }

    /// Runs until `shutdown`, then waits (up to the request timeout) for the
    /// attempts in flight. An attempt cut off there is not lost: its
    /// delivery's lease runs out and another worker retries it.
    pub async fn run(self: Arc<Self>, mut work: mpsc::Receiver<DeliveryWork>, shutdown: CancellationToken) {
        let tasks = TaskTracker::new();
        let mut tick = tokio::time::interval(self.config.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let lease = chrono::Duration::from_std(self.config.lease()).unwrap_or(chrono::Duration::minutes(1));
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                Some(loaded) = work.recv() => self.spawn_attempt(&tasks, Job::Loaded(Box::new(loaded))).await,
                _ = tick.tick() => {
                    let free = self.permits.available_permits() as u64;
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
        tracing::info!("delivery loop stopped");
    }

    async fn spawn_attempt(self: &Arc<Self>, tasks: &TaskTracker, job: Job) {
        let permit = self.permits.clone().acquire_owned().await.expect("semaphore is never closed");
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
        let _admission = match self.gate.enter(sub.id.as_str(), sub.rate_limit_per_second) {
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
        let (attempt, next) = self.send(&work).await;
        let span = tracing::info_span!(
            "attempt",
            event_id = %work.event.id,
            subscription_id = %work.subscription.id,
            attempt = work.delivery.attempt_count + 1,
        );
        let _enter = span.enter();
        tracing::info!(status = ?attempt.status_code, latency_ms = attempt.latency_ms, next = ?next, "attempted");
        let status = attempt.status_code;
        let seconds = attempt.latency_ms as f64 / 1000.0;
        match self.store.record_attempt(&work, attempt, next, self.config.breaker).await {
            Ok(true) => observe(&work, next, status, seconds),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "could not record attempt; the delivery will be retried after its lease")
            }
        }
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
