//! Tuning knobs of the relay and the delivery loop.
use crate::RetrySchedule;
use hookhub_store::repo::BreakerPolicy;
use std::time::Duration;

/// How the outbox relay works.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// Rows claimed and published per relay pass.
    pub batch_size: u64,
    /// How often an idle relay looks for new rows (ingest also wakes it).
    pub poll_interval: Duration,
    /// How long a claim holds; a relay that dies releases its rows after this.
    pub lease: Duration,
    /// Batches published at once (each waits for its confirm, or in
    /// process for fan-out's ack). In process, this is how far the relay
    /// runs ahead of fan-out: enough that a new claim never waits for a
    /// place, since fan-out's intake shares what it holds between tenants.
    pub batches_in_flight: usize,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            batch_size: 256,
            poll_interval: Duration::from_millis(500),
            lease: Duration::from_secs(30),
            batches_in_flight: 32,
        }
    }
}

/// How deliveries are attempted.
#[derive(Clone, Debug)]
pub struct DeliveryConfig {
    /// Per-attempt HTTP timeout.
    pub request_timeout: Duration,
    /// When to retry.
    pub retry_schedule: RetrySchedule,
    /// Attempts in flight at once, over all subscriptions.
    pub concurrency: usize,
    /// Attempts in flight at once to one subscription, so a slow endpoint
    /// cannot take every slot.
    pub per_subscription_concurrency: usize,
    /// How often the loop looks for due retries.
    pub poll_interval: Duration,
    /// How long fan-out waits for a new delivery's first attempt before it
    /// writes the delivery (and acks its message) without it.
    pub first_attempt_wait: Duration,
    /// Messages the consumer holds unacknowledged at once.
    pub prefetch: u16,
    /// When a failing subscription is switched off.
    pub breaker: BreakerPolicy,
    /// Whether endpoints may be on loopback or private networks (development).
    pub allow_private_endpoints: bool,
}

impl DeliveryConfig {
    /// How long a claimed delivery stays invisible to other workers: twice
    /// the request timeout, ample room to record the result, and short
    /// enough that a crashed worker's deliveries come back soon.
    pub fn lease(&self) -> Duration {
        self.request_timeout * 2 + Duration::from_secs(1)
    }

    /// [`Self::lease`] as the store counts time.
    pub fn lease_span(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.lease()).unwrap_or(chrono::Duration::minutes(1))
    }
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(15),
            retry_schedule: RetrySchedule::default(),
            concurrency: 64,
            per_subscription_concurrency: 8,
            poll_interval: Duration::from_secs(1),
            first_attempt_wait: Duration::from_millis(100),
            prefetch: 64,
            breaker: BreakerPolicy::default(),
            allow_private_endpoints: false,
        }
    }
}
