//! A queue of queues, one per key, served in turn.
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// Items queued per key (a tenant), taken one key at a time in turn: a key
/// with a thousand items waiting and a key with one get the next two
/// places between them, whatever order they were pushed in.
///
/// Within a key, items keep the order they were pushed in. A key leaves the
/// turn when its queue is empty and joins at the back when it has items
/// again, so a key that was idle never waits behind more than one item of
/// each other key.
#[derive(Debug)]
pub struct FairQueue<K, T> {
    queues: HashMap<K, VecDeque<T>>,
    /// Keys with items, in the order they are served.
    turn: VecDeque<K>,
    len: usize,
}

impl<K, T> Default for FairQueue<K, T> {
    fn default() -> Self {
        Self { queues: HashMap::new(), turn: VecDeque::new(), len: 0 }
    }
}

impl<K: Eq + Hash + Clone, T> FairQueue<K, T> {
    /// Queues `item` behind the other items of `key`.
    pub fn push(&mut self, key: &K, item: T) {
        match self.queues.get_mut(key) {
            Some(queue) => queue.push_back(item),
            None => {
                self.queues.insert(key.clone(), VecDeque::from([item]));
                self.turn.push_back(key.clone());
            }
        }
        self.len += 1;
    }

    /// The oldest item of the key whose turn it is.
    pub fn pop(&mut self) -> Option<(K, T)> {
        // The first key in turn is taken: no search.
        self.pop_where(|_, _| true)
    }

    /// The oldest item of the first key in turn whose number of queued
    /// items `takes`: keys with short queues served apart from those with
    /// long ones, say. Linear in the keys queued.
    pub fn pop_where(&mut self, takes: impl Fn(&K, usize) -> bool) -> Option<(K, T)> {
        let at = self.turn.iter().position(|key| self.queues.get(key).is_some_and(|q| takes(key, q.len())))?;
        let key = self.turn.remove(at).expect("the position was just found");
        let queue = self.queues.get_mut(&key).expect("every key in turn has a queue");
        let item = queue.pop_front().expect("a key in turn has items");
        if queue.is_empty() {
            self.queues.remove(&key);
        } else {
            self.turn.push_back(key.clone());
        }
        self.len -= 1;
        Some((key, item))
    }

    /// Items queued under `key`.
    pub fn len_of(&self, key: &K) -> usize {
        self.queues.get(key).map_or(0, VecDeque::len)
    }

    /// Items queued over all keys.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Keys with items queued.
    pub fn keys(&self) -> usize {
        self.turn.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pop_where_skips_the_queues_it_does_not_take_and_keeps_each_keys_order() {
        let mut q = FairQueue::default();
        for n in 0..100 {
            q.push(&"import", n);
        }
        q.push(&"quiet", 1);
        q.push(&"quiet", 2);
        assert_eq!(q.len_of(&"import"), 100);
        assert_eq!(q.pop_where(|_, n| n <= 16), Some(("quiet", 1)));
        assert_eq!(q.pop_where(|_, n| n <= 16), Some(("quiet", 2)));
        assert_eq!(q.pop_where(|_, n| n <= 16), None, "only the import is left, and it is long");
        assert_eq!(q.len(), 100);
        assert_eq!(q.pop_where(|_, n| n > 16), Some(("import", 0)));
        assert_eq!(q.pop(), Some(("import", 1)));
    }

    fn drain(q: &mut FairQueue<&'static str, u32>) -> Vec<(&'static str, u32)> {
        std::iter::from_fn(|| q.pop()).collect()
    }

    #[test]
    fn a_key_with_one_item_is_served_second_behind_a_thousand() {
        let mut q = FairQueue::default();
        for n in 0..1000 {
            q.push(&"burst", n);
        }
        q.push(&"quiet", 0);
        assert_eq!(q.len(), 1001);
        assert_eq!(q.pop(), Some(("burst", 0)));
        assert_eq!(q.pop(), Some(("quiet", 0)));
        assert_eq!(q.pop(), Some(("burst", 1)));
        assert_eq!(q.keys(), 1);
    }

    #[test]
    fn keys_alternate_and_each_keeps_its_order() {
        let mut q = FairQueue::default();
        for n in 0..3 {
            q.push(&"a", n);
        }
        q.push(&"b", 10);
        q.push(&"b", 11);
        assert_eq!(drain(&mut q), vec![("a", 0), ("b", 10), ("a", 1), ("b", 11), ("a", 2)]);
        assert!(q.is_empty());
        assert_eq!(q.keys(), 0);
    }

    #[test]
    fn a_key_that_was_emptied_joins_at_the_back() {
        let mut q = FairQueue::default();
        q.push(&"a", 0);
        q.push(&"b", 0);
        q.push(&"b", 1);
        assert_eq!(q.pop(), Some(("a", 0)));
        q.push(&"a", 1);
        assert_eq!(drain(&mut q), vec![("b", 0), ("a", 1), ("b", 1)]);
    }
}
