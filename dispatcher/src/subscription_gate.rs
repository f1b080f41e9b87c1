//! Per-subscription fairness: a cap on attempts in flight to one endpoint,
//! its own rate limit, and the pause it asked for with `Retry-After`.
//!
//! Without it, one slow endpoint (30-second timeouts, thousands pending)
//! fills every delivery slot and healthy endpoints wait behind it. An
//! attempt waits a moment for a place with its endpoint; a fast endpoint
//! frees one within milliseconds, so its deliveries flow at full speed. A
//! slow one does not, and its delivery is put back in the store for a
//! while, giving its place in the queue to someone else.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

struct State {
    slots: Arc<Semaphore>,
    next_start: Option<Instant>,
}

/// Admission control per subscription, shared by every attempt of a dispatcher.
#[derive(Clone)]
pub struct SubscriptionGate {
    per_subscription: usize,
    patience: Duration,
    states: Arc<Mutex<HashMap<String, State>>>,
}

/// Held while an attempt runs; frees its place when dropped.
pub struct Admission {
    _slot: OwnedSemaphorePermit,
}

/// How long a delivery turned away waits in the store: the endpoint is slow.
pub const BUSY_WAIT: Duration = Duration::from_secs(1);

impl SubscriptionGate {
    /// A gate allowing `per_subscription` attempts in flight per endpoint;
    /// an attempt waits up to `patience` for a place.
    pub fn new(per_subscription: usize, patience: Duration) -> Self {
        Self { per_subscription: per_subscription.max(1), patience, states: Arc::default() }
    }

    /// Admits an attempt, or says how long the delivery should wait instead.
    pub async fn enter(&self, subscription: &str, rate_per_second: Option<u32>) -> Result<Admission, Duration> {
        let slots = {
            let now = Instant::now();
            let mut states = self.states.lock().expect("gate lock is never poisoned");
            let state = states
                .entry(subscription.to_owned())
                .or_insert_with(|| State { slots: Arc::new(Semaphore::new(self.per_subscription)), next_start: None });
            if let Some(next) = state.next_start.filter(|next| *next > now) {
                return Err(next - now);
            }
            state.next_start = rate_per_second.filter(|r| *r > 0).map(|r| now + Duration::from_secs(1) / r);
            state.slots.clone()
        };
        match tokio::time::timeout(self.patience, slots.acquire_owned()).await {
            Ok(Ok(slot)) => Ok(Admission { _slot: slot }),
            _ => Err(BUSY_WAIT),
        }
    }

    /// Holds every attempt to the subscription back until `until` (its `Retry-After`).
    pub fn pause(&self, subscription: &str, until: Instant) {
        let mut states = self.states.lock().expect("gate lock is never poisoned");
        if let Some(state) = states.get_mut(subscription) {
            state.next_start = Some(state.next_start.map_or(until, |n| n.max(until)));
        }
    }

    /// Forgets endpoints with nothing in flight and no pause, so the map
    /// does not grow with every subscription ever seen.
    pub fn forget_idle(&self) {
        let now = Instant::now();
        let mut states = self.states.lock().expect("gate lock is never poisoned");
        states.retain(|_, s| {
            s.slots.available_permits() < self.per_subscription || s.next_start.is_some_and(|n| n > now)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn caps_in_flight_per_subscription_only() {
        let gate = SubscriptionGate::new(2, Duration::from_millis(20));
        let a1 = gate.enter("a", None).await.unwrap();
        let _a2 = gate.enter("a", None).await.unwrap();
        assert_eq!(gate.enter("a", None).await.err(), Some(BUSY_WAIT), "third to the same endpoint waits");
        let _b = gate.enter("b", None).await.expect("other endpoints are unaffected");
        drop(a1);
        assert!(gate.enter("a", None).await.is_ok(), "a finished attempt frees its place");
    }

    #[tokio::test]
    async fn a_place_freed_within_the_patience_is_taken() {
        let gate = SubscriptionGate::new(1, Duration::from_secs(5));
        let first = gate.enter("a", None).await.unwrap();
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            drop(first);
        });
        assert!(gate.enter("a", None).await.is_ok());
        release.await.unwrap();
    }

    #[tokio::test]
    async fn rate_limit_and_retry_after_space_attempts_out() {
        let gate = SubscriptionGate::new(10, Duration::from_millis(20));
        drop(gate.enter("a", Some(2)).await.unwrap());
        let wait = gate.enter("a", Some(2)).await.err().expect("2/s: the next one waits");
        assert!(wait <= Duration::from_millis(500) && wait > Duration::from_millis(400));
        drop(gate.enter("b", None).await.unwrap());
        gate.pause("b", Instant::now() + Duration::from_secs(30));
        assert!(gate.enter("b", None).await.err().unwrap() > Duration::from_secs(29));
        gate.forget_idle();
        assert!(gate.enter("b", None).await.is_err(), "a paused endpoint is remembered");
    }
}
