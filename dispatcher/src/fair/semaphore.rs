//! A semaphore whose waiters are served by tenant in turn, not first come.
use super::FairQueue;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Permits shared by every tenant. While some are free, anyone takes one at
/// once; when none are, each freed permit goes to the next tenant in turn
/// (see [`FairQueue`]), so a tenant with ten thousand deliveries waiting
/// delays another tenant's next delivery by at most one of its own.
pub struct FairSemaphore<K> {
    state: Mutex<State<K>>,
}

struct State<K> {
    available: usize,
    waiting: FairQueue<K, oneshot::Sender<()>>,
}

/// A permit; dropping it hands it to the next waiter in turn.
#[must_use = "the permit is released when dropped"]
pub struct FairPermit<K: Eq + Hash + Clone> {
    semaphore: Arc<FairSemaphore<K>>,
}

impl<K: Eq + Hash + Clone> Drop for FairPermit<K> {
    fn drop(&mut self) {
        self.semaphore.release();
    }
}

impl<K: Eq + Hash + Clone> std::fmt::Debug for FairPermit<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FairPermit")
    }
}

impl<K: Eq + Hash + Clone> std::fmt::Debug for FairSemaphore<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FairSemaphore").field("available", &self.available_permits()).finish_non_exhaustive()
    }
}

impl<K: Eq + Hash + Clone> FairSemaphore<K> {
    /// A semaphore with `permits` permits.
    pub fn new(permits: usize) -> Arc<Self> {
        Arc::new(Self { state: Mutex::new(State { available: permits, waiting: FairQueue::default() }) })
    }

    /// Permits free now.
    pub fn available_permits(&self) -> usize {
        self.lock().available
    }

    /// Whether `key` has a waiter in the queue, and so a turn coming.
    pub fn is_waiting(&self, key: &K) -> bool {
        self.lock().waiting.len_of(key) > 0
    }

    /// Takes a permit for `key`, waiting for its turn when none is free.
    ///
    /// Cancel-safe: a waiter dropped before its turn leaves the queue
    /// without a trace, and one dropped just after its permit was handed
    /// to it passes the permit on.
    pub async fn acquire(self: &Arc<Self>, key: &K) -> FairPermit<K> {
        let granted = {
            let mut state = self.lock();
            // Nobody waiting: take a free permit without a turn.
            if state.available > 0 && state.waiting.is_empty() {
                state.available -= 1;
                None
            } else {
                let (tx, rx) = oneshot::channel();
                state.waiting.push(key, tx);
                Some(rx)
            }
        };
        if let Some(rx) = granted {
            let mut waiter = Waiter { rx, semaphore: self, granted: false };
            // The sender lives in the queue until it is handed a permit.
            (&mut waiter.rx).await.expect("a waiter's sender is only dropped after sending");
            waiter.granted = true;
        }
        FairPermit { semaphore: self.clone() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<K>> {
        self.state.lock().expect("the lock is never held across a panic")
    }

    /// Hands a permit to the next waiter in turn, or frees it.
    fn release(&self) {
        let mut state = self.lock();
        while let Some((_, waiter)) = state.waiting.pop() {
            // A waiter that went away has closed its receiver: try the next.
            if waiter.send(()).is_ok() {
                return;
            }
        }
        state.available += 1;
    }
}

/// A waiting `acquire`; if it is dropped after its permit was sent but
/// before it took it, the permit goes on to the next waiter.
struct Waiter<'a, K: Eq + Hash + Clone> {
    rx: oneshot::Receiver<()>,
    semaphore: &'a Arc<FairSemaphore<K>>,
    granted: bool,
}

impl<K: Eq + Hash + Clone> Drop for Waiter<'_, K> {
    fn drop(&mut self) {
        if self.granted {
            return;
        }
        self.rx.close();
        if self.rx.try_recv().is_ok() {
            self.semaphore.release();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::sync::mpsc;

    #[tokio::test]
    async fn free_permits_are_taken_at_once_and_come_back() {
        let s = FairSemaphore::new(2);
        let a = s.acquire(&"a").await;
        let _b = s.acquire(&"a").await;
        assert_eq!(s.available_permits(), 0);
        drop(a);
        assert_eq!(s.available_permits(), 1);
    }

    #[tokio::test]
    async fn a_quiet_tenant_gets_the_next_permit_ahead_of_a_burst() {
        let s = FairSemaphore::new(1);
        let held = s.acquire(&"burst").await;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut tasks = Vec::new();
        for n in 0..50 {
            let (s, tx) = (s.clone(), tx.clone());
            tasks.push(tokio::spawn(async move {
                let _p = s.acquire(&"burst").await;
                tx.send(("burst", n)).unwrap();
            }));
            tokio::task::yield_now().await;
        }
        let (s2, tx2) = (s.clone(), tx.clone());
        tasks.push(tokio::spawn(async move {
            let _p = s2.acquire(&"quiet").await;
            tx2.send(("quiet", 0)).unwrap();
        }));
        tokio::task::yield_now().await;
        drop(held);
        for t in tasks {
            t.await.unwrap();
        }
        drop(tx);
        let mut order = Vec::new();
        while let Some(x) = rx.recv().await {
            order.push(x);
        }
        let quiet = order.iter().position(|(k, _)| *k == "quiet").unwrap();
        assert!(quiet <= 1, "the quiet tenant waited behind {quiet} of the burst's: {order:?}");
        assert_eq!(order.len(), 51);
    }

    #[tokio::test]
    async fn a_cancelled_waiter_loses_no_permit() {
        let s = FairSemaphore::new(1);
        let held = s.acquire(&"a").await;
        let gave_up = tokio::time::timeout(Duration::from_millis(10), s.acquire(&"b")).await;
        assert!(gave_up.is_err());
        drop(held);
        assert_eq!(s.available_permits(), 1);
        let _again = s.acquire(&"c").await;
        assert_eq!(s.available_permits(), 0);
    }

    #[tokio::test]
    async fn a_waiter_dropped_after_its_turn_came_passes_the_permit_on() {
        let s = FairSemaphore::new(1);
        let held = s.acquire(&"a").await;
        let mut first = Box::pin(s.acquire(&"b"));
        // Polled once: it is queued.
        assert!(futures::poll!(&mut first).is_pending());
        let second = tokio::spawn({
            let s = s.clone();
            async move { drop(s.acquire(&"c").await) }
        });
        tokio::task::yield_now().await;
        // The permit is sent to `first`, which is dropped without taking it.
        drop(held);
        drop(first);
        second.await.unwrap();
        assert_eq!(s.available_permits(), 1);
    }
}
