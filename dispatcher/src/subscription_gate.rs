//! Per-subscription fairness: a cap on attempts in flight to one endpoint,
//! its own rate limit, and the pause it asked for with `Retry-After`.
//!
//! Without it, one slow endpoint (30-second timeouts, thousands pending)
//! fills every delivery slot and healthy endpoints wait behind it. A
//! delivery turned away here is not attempted: it is put back for a moment,
//! and its slot goes to someone else.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
struct State {
    in_flight: usize,
    next_start: Option<Instant>,
}

/// Admission control per subscription, shared by every attempt of a dispatcher.
#[derive(Clone)]
pub struct SubscriptionGate {
    per_subscription: usize,
    states: Arc<Mutex<HashMap<String, State>>>,
}

/// Held while an attempt runs; releases its place when dropped.
pub struct Admission {
    gate: SubscriptionGate,
    key: String,
}

/// How long to wait when the cap is reached: a slot frees up soon.
const BUSY_WAIT: Duration = Duration::from_secs(1);

impl SubscriptionGate {
    /// A gate allowing `per_subscription` attempts in flight per endpoint.
    pub fn new(per_subscription: usize) -> Self {
        Self { per_subscription: per_subscription.max(1), states: Arc::default() }
    }

    /// Admits an attempt now, or says how long to wait.
    pub fn enter(&self, subscription: &str, rate_per_second: Option<u32>) -> Result<Admission, Duration> {
        let now = Instant::now();
        let mut states = self.states.lock().expect("gate lock is never poisoned");
        let state = states.entry(subscription.to_owned()).or_default();
        if let Some(next) = state.next_start.filter(|next| *next > now) {
            return Err(next - now);
        }
        if state.in_flight >= self.per_subscription {
            return Err(BUSY_WAIT);
        }
        state.in_flight += 1;
        state.next_start = rate_per_second.filter(|r| *r > 0).map(|r| now + Duration::from_secs(1) / r);
        Ok(Admission { gate: self.clone(), key: subscription.to_owned() })
    }

    /// Holds every attempt to the subscription back until `until` (its `Retry-After`).
    pub fn pause(&self, subscription: &str, until: Instant) {
        let mut states = self.states.lock().expect("gate lock is never poisoned");
        let state = states.entry(subscription.to_owned()).or_default();
        state.next_start = Some(state.next_start.map_or(until, |n| n.max(until)));
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut states = self.gate.states.lock().expect("gate lock is never poisoned");
        if let Some(state) = states.get_mut(&self.key) {
            state.in_flight = state.in_flight.saturating_sub(1);
            // Forget idle endpoints so the map does not grow without bound.
            if state.in_flight == 0 && state.next_start.is_none_or(|n| n <= Instant::now()) {
                states.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_in_flight_per_subscription_only() {
        let gate = SubscriptionGate::new(2);
        let a1 = gate.enter("a", None).unwrap();
        let _a2 = gate.enter("a", None).unwrap();
        assert!(gate.enter("a", None).is_err(), "third to the same endpoint waits");
        let _b = gate.enter("b", None).expect("other endpoints are unaffected");
        drop(a1);
        assert!(gate.enter("a", None).is_ok(), "a finished attempt frees its place");
    }

    #[test]
    fn rate_limit_and_retry_after_space_attempts_out() {
        let gate = SubscriptionGate::new(10);
        drop(gate.enter("a", Some(2)).unwrap());
        let wait = gate.enter("a", Some(2)).err().expect("2/s: the next one waits");
        assert!(wait <= Duration::from_millis(500) && wait > Duration::from_millis(400));
        gate.pause("b", Instant::now() + Duration::from_secs(30));
        assert!(gate.enter("b", None).err().unwrap() > Duration::from_secs(29));
    }
}
