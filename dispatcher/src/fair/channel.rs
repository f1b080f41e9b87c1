//! A bounded channel whose receiver takes items one key at a time in turn.
use super::FairQueue;
use std::hash::Hash;
use std::sync::Mutex;
use tokio::sync::{Notify, Semaphore};

/// Many senders, one receiver, at most `capacity` items queued: a sender
/// waits while it is full (backpressure). The receiver takes batches
/// formed one key in turn ([`FairQueue`]), so one key's thousand items do
/// not make another key's one wait for all of them.
pub struct FairChannel<K, T> {
    queue: Mutex<FairQueue<K, T>>,
    /// Free places; a sender takes one, the receiver gives it back.
    room: Semaphore,
    /// Rung when an item is queued.
    ready: Notify,
}

impl<K: Eq + Hash + Clone, T> FairChannel<K, T> {
    /// A channel holding at most `capacity` items.
    pub fn new(capacity: usize) -> Self {
        Self { queue: Mutex::new(FairQueue::default()), room: Semaphore::new(capacity.max(1)), ready: Notify::new() }
    }

    /// Queues `item` behind `key`'s others, waiting for room.
    pub async fn send(&self, key: &K, item: T) {
        self.room.acquire().await.expect("the semaphore is never closed").forget();
        self.lock().push(key, item);
        self.ready.notify_one();
    }

    /// Up to `max` items, taken in turn; none if nothing is queued.
    pub fn try_take(&self, max: usize) -> Vec<T> {
        let taken: Vec<T> = {
            let mut queue = self.lock();
            std::iter::from_fn(|| queue.pop().map(|(_, item)| item)).take(max).collect()
        };
        self.room.add_permits(taken.len());
        taken
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

    fn lock(&self) -> std::sync::MutexGuard<'_, FairQueue<K, T>> {
        self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
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
