//! The retry poller's alarm clock: when this process writes a delivery
//! that is due again at a known time (a failed attempt's retry), the poller
//! wakes at that time rather than at its next poll, up to a poll interval
//! later. Due times written by other processes are still found by polling.
use chrono::{DateTime, Utc};
use hookhub_store::domain::now;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Most due times kept. Past it a new one is dropped: polling still finds
/// its delivery, only up to a poll interval late, and the heap stays
/// bounded however many deliveries fail at once.
const MAX_ALARMS: usize = 65_536;

/// Due times of deliveries this process wrote, earliest first.
#[derive(Default)]
pub struct DueAlarm {
    times: Mutex<BinaryHeap<Reverse<DateTime<Utc>>>>,
    earlier: Notify,
}

impl DueAlarm {
    /// Rings at `at` (once the delivery due then is written).
    pub fn set(&self, at: DateTime<Utc>) {
        let mut times = self.times.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if times.len() >= MAX_ALARMS {
            return;
        }
        let earliest = times.peek().is_none_or(|Reverse(first)| at < *first);
        times.push(Reverse(at));
        drop(times);
        if earliest {
            // The poller may be asleep until a later time: have it look again.
            self.earlier.notify_one();
        }
    }

    /// When the poller should next look: `poll_at`, or earlier if an alarm
    /// rings first; now if one has rung (it is cleared).
    pub fn next_look(&self, poll_at: Instant) -> Instant {
        let mut times = self.times.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (at, mut rung) = (now(), false);
        while times.peek().is_some_and(|Reverse(first)| *first <= at) {
            times.pop();
            rung = true;
        }
        let wall_now = Instant::now();
        if rung {
            return wall_now;
        }
        match times.peek() {
            Some(Reverse(first)) => poll_at.min(wall_now + (*first - at).to_std().unwrap_or_default()),
            None => poll_at,
        }
    }

    /// Resolves when an alarm earlier than all others was set since the
    /// last call: the time from [`Self::next_look`] may be too late now.
    pub async fn set_earlier(&self) {
        self.earlier.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn the_earliest_alarm_decides_and_a_rung_one_is_cleared() {
        let alarm = DueAlarm::default();
        let poll_at = Instant::now() + Duration::from_secs(60);
        assert_eq!(alarm.next_look(poll_at), poll_at, "no alarm: the poll decides");

        alarm.set(now() + chrono::Duration::seconds(10));
        let look = alarm.next_look(poll_at);
        assert!(look < Instant::now() + Duration::from_secs(11) && look > Instant::now() + Duration::from_secs(9));

        alarm.set(now() - chrono::Duration::milliseconds(1));
        assert!(alarm.next_look(poll_at) <= Instant::now(), "a rung alarm: look now");
        let look = alarm.next_look(poll_at);
        assert!(look > Instant::now() + Duration::from_secs(9), "it was cleared; the 10 s one is next");
    }

    #[tokio::test]
    async fn only_an_earlier_alarm_wakes_the_poller() {
        let alarm = DueAlarm::default();
        alarm.set(now() + chrono::Duration::seconds(10));
        tokio::time::timeout(Duration::from_millis(10), alarm.set_earlier()).await.expect("the first one is earliest");
        alarm.set(now() + chrono::Duration::seconds(20));
        let later = tokio::time::timeout(Duration::from_millis(10), alarm.set_earlier()).await;
        assert!(later.is_err(), "a later alarm changes nothing the poller waits for");
    }

    #[test]
    fn it_keeps_a_bounded_number() {
        let alarm = DueAlarm::default();
        for s in 0..(MAX_ALARMS as i64 + 10) {
            alarm.set(now() + chrono::Duration::seconds(1 + s));
        }
        assert_eq!(alarm.times.lock().unwrap().len(), MAX_ALARMS);
    }
}
