//! The endpoint throttle: per subscription, a cap on attempts in flight to
//! its endpoint, its own rate limit, and the pause it asked for with
//! `Retry-After`.
//!
//! Without it, one slow endpoint (30-second timeouts, thousands pending)
//! fills every delivery slot and healthy endpoints wait behind it. An
//! attempt waits a moment for a place with its endpoint; a fast endpoint
//! frees one within milliseconds, so its deliveries flow at full speed. A
//! slow one does not, and its delivery is put back in the store for a
//! while, giving its place in the queue to someone else. Once an endpoint
//! has made an attempt wait in vain, the next ones do not wait until it
//! frees a place: waiting deliveries hold the dispatcher's queue, and at
//! load a slow endpoint's share of them would starve the healthy ones.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

struct State {
    slots: Arc<Semaphore>,
    next_start: Option<Instant>,
    /// An attempt waited the whole patience for a place, and none has been
    /// free since.
    saturated: bool,
}

/// How long until the endpoint may take another attempt (its rate limit or
/// its `Retry-After`), if it may not now.
fn not_before(state: &State, now: Instant) -> Result<(), Duration> {
    match state.next_start.filter(|next| *next > now) {
        Some(next) => Err(next - now),
        None => Ok(()),
    }
}

/// EndpointSlot control per subscription, shared by every attempt of a dispatcher.
#[derive(Clone)]
pub struct EndpointThrottle {
    per_subscription: usize,
    patience: Duration,
    states: Arc<Mutex<HashMap<String, State>>>,
}

/// Held while an attempt runs; frees its place when dropped.
pub struct EndpointSlot {
    _slot: OwnedSemaphorePermit,
}

/// How long a delivery turned away waits in the store: the endpoint is slow.
pub const BUSY_WAIT: Duration = Duration::from_secs(1);

impl EndpointThrottle {
    /// A gate allowing `per_subscription` attempts in flight per endpoint;
    /// an attempt waits up to `patience` for a place.
    pub fn new(per_subscription: usize, patience: Duration) -> Self {
        Self { per_subscription: per_subscription.max(1), patience, states: Arc::default() }
    }

    /// Admits an attempt, or says how long the delivery should wait instead.
    pub async fn enter(&self, subscription: &str, rate_per_second: Option<u32>) -> Result<EndpointSlot, Duration> {
        let (slots, saturated) = {
            let mut states = self.states.lock().expect("gate lock is never poisoned");
            let state = self.state(&mut states, subscription, None);
            not_before(state, Instant::now())?;
            (state.slots.clone(), state.saturated)
        };
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) if saturated => return Err(BUSY_WAIT),
            Err(_) => match tokio::time::timeout(self.patience, slots.clone().acquire_owned()).await {
                Ok(Ok(slot)) => slot,
                _ => {
                    let mut states = self.states.lock().expect("gate lock is never poisoned");
                    self.state(&mut states, subscription, Some(slots)).saturated = true;
                    return Err(BUSY_WAIT);
                }
            },
        };
        // The rate slot is taken only now that the attempt really starts: an
        // attempt turned away for want of a place must not use up the
        // endpoint's rate, or a rate-limited endpoint runs below its limit.
        let now = Instant::now();
        let mut states = self.states.lock().expect("gate lock is never poisoned");
        let state = self.state(&mut states, subscription, Some(slots));
        state.saturated = false;
        not_before(state, now)?;
        state.next_start = rate_per_second.filter(|r| *r > 0).map(|r| now + Duration::from_secs(1) / r);
        Ok(EndpointSlot { _slot: slot })
    }

    /// The endpoint's state; `slots`, when given, is the semaphore a slot was
    /// just taken from, kept if `forget_idle` dropped the entry meanwhile.
    fn state<'a>(
        &self,
        states: &'a mut HashMap<String, State>,
        subscription: &str,
        slots: Option<Arc<Semaphore>>,
    ) -> &'a mut State {
        states.entry(subscription.to_owned()).or_insert_with(|| State {
            slots: slots.unwrap_or_else(|| Arc::new(Semaphore::new(self.per_subscription))),
            next_start: None,
            saturated: false,
        })
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
        let gate = EndpointThrottle::new(2, Duration::from_millis(20));
        let a1 = gate.enter("a", None).await.unwrap();
        let _a2 = gate.enter("a", None).await.unwrap();
        assert_eq!(gate.enter("a", None).await.err(), Some(BUSY_WAIT), "third to the same endpoint waits");
        let _b = gate.enter("b", None).await.expect("other endpoints are unaffected");
        drop(a1);
        assert!(gate.enter("a", None).await.is_ok(), "a finished attempt frees its place");
    }

    #[tokio::test]
    async fn once_an_attempt_waited_in_vain_the_next_do_not_wait_until_a_place_frees() {
        let patience = Duration::from_millis(100);
        let gate = EndpointThrottle::new(1, patience);
        let first = gate.enter("a", None).await.unwrap();
        let started = Instant::now();
        assert_eq!(gate.enter("a", None).await.err(), Some(BUSY_WAIT));
        assert!(started.elapsed() >= patience, "the first one turned away waited");
        let started = Instant::now();
        assert_eq!(gate.enter("a", None).await.err(), Some(BUSY_WAIT));
        assert!(started.elapsed() < patience, "the next one did not");
        drop(first);
        let again = gate.enter("a", None).await.expect("a freed place is taken");
        let started = Instant::now();
        assert_eq!(gate.enter("a", None).await.err(), Some(BUSY_WAIT));
        assert!(started.elapsed() >= patience, "an endpoint that freed a place is waited for again");
        drop(again);
    }

    #[tokio::test]
    async fn a_place_freed_within_the_patience_is_taken() {
        let gate = EndpointThrottle::new(1, Duration::from_secs(5));
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
        let gate = EndpointThrottle::new(10, Duration::from_millis(20));
        drop(gate.enter("a", Some(2)).await.unwrap());
        let wait = gate.enter("a", Some(2)).await.err().expect("2/s: the next one waits");
        assert!(wait <= Duration::from_millis(500) && wait > Duration::from_millis(400));
        drop(gate.enter("b", None).await.unwrap());
        gate.pause("b", Instant::now() + Duration::from_secs(30));
        assert!(gate.enter("b", None).await.err().unwrap() > Duration::from_secs(29));
        gate.forget_idle();
        assert!(gate.enter("b", None).await.is_err(), "a paused endpoint is remembered");
    }

    #[tokio::test]
    async fn an_attempt_turned_away_for_a_place_leaves_the_rate_untouched() {
        let gate = EndpointThrottle::new(1, Duration::from_millis(20));
        let first = gate.enter("a", Some(10)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(120)).await;
        // Its rate allows another now, but its one place is taken.
        assert_eq!(gate.enter("a", Some(10)).await.err(), Some(BUSY_WAIT));
        drop(first);
        assert!(gate.enter("a", Some(10)).await.is_ok(), "the turned-away attempt reserved no rate slot");
    }
}
