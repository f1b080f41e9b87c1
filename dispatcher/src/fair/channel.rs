//! A bounded channel whose receiver takes items one key at a time in turn.
use super::{FairPermit, FairQueue, FairSemaphore};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Many senders, one receiver, at most `capacity` items queued: a sender
/// waits while it is full (backpressure), and the room that frees up goes
/// to the waiting senders one key in turn ([`FairSemaphore`]). The receiver
/// takes batches formed one key in turn ([`FairQueue`]). Both ways, one
/// key's thousand items do not make another key's one wait for all of them.
pub struct FairChannel<K: Eq + Hash + Clone, T> {
    /// Each item with the place it holds until it is taken.
    queue: Mutex<FairQueue<K, (T, FairPermit<K>)>>,
    room: Arc<FairSemaphore<K>>,
    /// Rung when an item is queued.
    ready: Notify,
}

impl<K: Eq + Hash + Clone, T> FairChannel<K, T> {
    /// A channel holding at most `capacity` items.
    pub fn new(capacity: usize) -> Self {
        Self {
            queue: Mutex::new(FairQueue::default()),
            room: FairSemaphore::new(capacity.max(1)),
            ready: Notify::new(),
        }
    }

    /// Queues `item` behind `key`'s others, waiting for room in `key`'s turn.
    pub async fn send(&self, key: &K, item: T) {
        let place = self.room.acquire(key).await;
        self.lock().push(key, (item, place));
        self.ready.notify_one();
    }

    /// Up to `max` items, taken in turn; none if nothing is queued. Their
    /// places are freed as they leave.
    pub fn try_take(&self, max: usize) -> Vec<T> {
        let mut queue = self.lock();
        std::iter::from_fn(|| queue.pop().map(|(_, (item, _place))| item)).take(max).collect()
    }

    /// Up to `max` items, taken in turn, once at least one is queued.
    /// Meant for one receiver.
    pub async fn take(&self, max: usize) -> Vec<T> {
        loop {
            let taken = self.try_take(max);
            if !taken.is_empty() {
                return taken;
            }
            // A send between the try and here left its notification stored.
            self.ready.notified().await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FairQueue<K, (T, FairPermit<K>)>> {
        self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_batch_takes_keys_in_turn() {
        let channel = FairChannel::new(100);
        for n in 0..50 {
            channel.send(&"burst", n).await;
        }
        channel.send(&"quiet", 1000).await;
        let batch = channel.take(4).await;
        assert_eq!(batch, vec![0, 1000, 1, 2], "the quiet item is in the first batch");
    }

    #[tokio::test]
    async fn a_full_channel_makes_senders_wait_until_taken() {
        let channel = Arc::new(FairChannel::new(2));
        channel.send(&"a", 1).await;
        channel.send(&"a", 2).await;
        let third = tokio::spawn({
            let channel = channel.clone();
            async move { channel.send(&"b", 3).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!third.is_finished(), "no room: the sender waits");
        assert_eq!(channel.try_take(1), vec![1]);
        third.await.unwrap();
        assert_eq!(channel.take(10).await, vec![2, 3]);
    }

    #[tokio::test]
    async fn room_that_frees_up_goes_to_the_waiting_keys_in_turn() {
        let channel = Arc::new(FairChannel::new(1));
        channel.send(&"burst", 0).await;
        let mut waiting = Vec::new();
        for (key, n) in [("burst", 1), ("burst", 2), ("burst", 3), ("quiet", 100)] {
            let channel = channel.clone();
            waiting.push(tokio::spawn(async move { channel.send(&key, n).await }));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(channel.try_take(1), vec![0]);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let next = channel.try_take(1);
        assert!(next == vec![1] || next == vec![100], "{next:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
        let after = channel.try_take(1);
        assert!(
            next.contains(&100) || after.contains(&100),
            "the quiet key waited behind the burst: {next:?} {after:?}"
        );
        while waiting.iter().any(|w| !w.is_finished()) {
            channel.try_take(10);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn take_waits_for_the_first_item() {
        let channel = Arc::new(FairChannel::new(4));
        let taker = tokio::spawn({
            let channel = channel.clone();
            async move { channel.take(4).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        channel.send(&"a", 7).await;
        assert_eq!(taker.await.unwrap(), vec![7]);
    }
}
