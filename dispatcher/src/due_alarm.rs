//! The retry poller's alarm clock: when this process writes a delivery
//! that is due again at a known time (a failed attempt's retry), the poller
//! wakes at that time rather than at its next poll, up to a poll interval
//! later. Due times written by other processes are still found by polling.
//!
//! Each due time carries its tenant, and a tenant whose alarm rang is kept
//! as rung until the poller says its due deliveries are claimed. That is
//! what lets the poller serve a tenant whose retries come due while the
//! loop is full (see `DeliveryLoop::poll_due`): it claims that tenant's due
//! rows by name instead of waiting for a free place that a storm's waiters
//! would always take first.
use chrono::{DateTime, Utc};
use hookhub_store::domain::{now, TenantId};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Most due times kept. Past it a new one is dropped: polling still finds
/// its delivery, only up to a poll interval late, and the alarms stay
/// bounded however many deliveries fail at once.
const MAX_ALARMS: usize = 65_536;

/// Most due times kept of one tenant: its earliest. A tenant with
/// thousands of failing deliveries must not fill the alarms and have
/// another tenant's retry dropped; its own later ones are found when its
/// earlier ones ring (the claim takes every due row of the tenant) or by
/// polling.
const MAX_PER_TENANT: usize = 1_024;

/// Due times of deliveries this process wrote, earliest first.
#[derive(Default)]
pub struct DueAlarm {
    alarms: Mutex<Alarms>,
    earlier: Notify,
}

#[derive(Default)]
struct Alarms {
    /// Every due time with its tenant, earliest first; one time of one
    /// tenant rings once however many of its deliveries share it.
    by_time: BTreeSet<(DateTime<Utc>, TenantId)>,
    /// The same due times by tenant, to keep each tenant's earliest.
    by_tenant: HashMap<TenantId, BTreeSet<DateTime<Utc>>>,
    /// Tenants whose alarm rang, until the poller takes them.
    rung: HashSet<TenantId>,
    /// Look now, whatever is due (set by [`DueAlarm::ring_now`]).
    now: bool,
}

impl Alarms {
    /// Keeps `at` for `tenant`; false if it was dropped or already kept.
    fn keep(&mut self, at: DateTime<Utc>, tenant: &TenantId) -> bool {
        let times = self.by_tenant.entry(tenant.clone()).or_default();
        if times.len() >= MAX_PER_TENANT {
            // Full: `at` takes the place of the tenant's latest, if earlier.
            match times.last() {
                Some(&latest) if at < latest => {
                    times.pop_last();
                    self.by_time.remove(&(latest, tenant.clone()));
                }
                _ => return false,
            }
        } else if self.by_time.len() >= MAX_ALARMS {
            if times.is_empty() {
                self.by_tenant.remove(tenant);
            }
            return false;
        }
        times.insert(at) && self.by_time.insert((at, tenant.clone()))
    }

    /// Moves the alarms due by `at` to `rung`; says whether any were.
    fn ring(&mut self, at: DateTime<Utc>) -> bool {
        let mut rang = std::mem::take(&mut self.now);
        while let Some((first, _)) = self.by_time.first() {
            if *first > at {
                break;
            }
            let (first, tenant) = self.by_time.pop_first().expect("just seen");
            if let Some(times) = self.by_tenant.get_mut(&tenant) {
                times.remove(&first);
                if times.is_empty() {
                    self.by_tenant.remove(&tenant);
                }
            }
            self.rung.insert(tenant);
            rang = true;
        }
        rang
    }
}

impl DueAlarm {
    fn lock(&self) -> std::sync::MutexGuard<'_, Alarms> {
        self.alarms.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Rings at `at` for `tenant` (once its delivery due then is written).
    pub fn set(&self, at: DateTime<Utc>, tenant: &TenantId) {
        let mut alarms = self.lock();
        let earliest = alarms.by_time.first().is_none_or(|(first, _)| at < *first);
        if alarms.keep(at, tenant) && earliest {
            drop(alarms);
            // The poller may be asleep until a later time: have it look again.
            self.earlier.notify_one();
        }
    }

    /// Has the poller look now, for no tenant in particular (an ordered
    /// key's next delivery was made due).
    pub fn ring_now(&self) {
        self.lock().now = true;
        self.earlier.notify_one();
    }

    /// When the poller should next look: `poll_at`, or earlier if an alarm
    /// rings first; now if one has rung (its tenant is rung from now on).
    pub fn next_look(&self, poll_at: Instant) -> Instant {
        let mut alarms = self.lock();
        let at = now();
        let wall_now = Instant::now();
        if alarms.ring(at) {
            return wall_now;
        }
        match alarms.by_time.first() {
            Some((first, _)) => poll_at.min(wall_now + (*first - at).to_std().unwrap_or_default()),
            None => poll_at,
        }
    }

    /// Takes the rung tenants: those whose retries came due since they were
    /// last taken, or that were [`Self::ring_again`].
    pub fn take_rung(&self) -> HashSet<TenantId> {
        std::mem::take(&mut self.lock().rung)
    }

    /// Keeps `tenants` rung: they may have due deliveries not claimed yet.
    pub fn ring_again(&self, tenants: impl IntoIterator<Item = TenantId>) {
        self.lock().rung.extend(tenants);
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
        let (alarm, a) = (DueAlarm::default(), TenantId::generate());
        let poll_at = Instant::now() + Duration::from_secs(60);
        assert_eq!(alarm.next_look(poll_at), poll_at, "no alarm: the poll decides");

        alarm.set(now() + chrono::Duration::seconds(10), &a);
        let look = alarm.next_look(poll_at);
        assert!(look < Instant::now() + Duration::from_secs(11) && look > Instant::now() + Duration::from_secs(9));

        alarm.set(now() - chrono::Duration::milliseconds(1), &a);
        assert!(alarm.next_look(poll_at) <= Instant::now(), "a rung alarm: look now");
        let look = alarm.next_look(poll_at);
        assert!(look > Instant::now() + Duration::from_secs(9), "it was cleared; the 10 s one is next");
    }

    #[tokio::test]
    async fn only_an_earlier_alarm_wakes_the_poller() {
        let (alarm, a) = (DueAlarm::default(), TenantId::generate());
        alarm.set(now() + chrono::Duration::seconds(10), &a);
        tokio::time::timeout(Duration::from_millis(10), alarm.set_earlier()).await.expect("the first one is earliest");
        alarm.set(now() + chrono::Duration::seconds(20), &a);
        let later = tokio::time::timeout(Duration::from_millis(10), alarm.set_earlier()).await;
        assert!(later.is_err(), "a later alarm changes nothing the poller waits for");
    }

    #[tokio::test]
    async fn a_rung_tenant_stays_rung_until_taken_and_can_be_rung_again() {
        let (alarm, a, b) = (DueAlarm::default(), TenantId::generate(), TenantId::generate());
        alarm.set(now() - chrono::Duration::milliseconds(5), &a);
        alarm.set(now() + chrono::Duration::seconds(10), &b);
        let far = Instant::now() + Duration::from_secs(60);
        assert!(alarm.take_rung().is_empty(), "nothing rings until the poller looks");
        alarm.next_look(far);
        assert_eq!(alarm.take_rung(), HashSet::from([a.clone()]), "b is not due yet");
        assert!(alarm.take_rung().is_empty(), "taken");
        alarm.ring_again([a.clone()]);
        assert_eq!(alarm.take_rung(), HashSet::from([a]));

        alarm.ring_now();
        assert!(alarm.next_look(far) <= Instant::now(), "rung now, for no tenant");
        assert!(alarm.take_rung().is_empty());
        assert!(alarm.next_look(far) > Instant::now() + Duration::from_secs(9), "b's alarm is next");
    }

    #[test]
    fn it_keeps_a_bounded_number_and_each_tenants_earliest() {
        let (alarm, busy, quiet) = (DueAlarm::default(), TenantId::generate(), TenantId::generate());
        let base = now() + chrono::Duration::hours(1);
        for s in 0..(MAX_PER_TENANT as i64 + 10) {
            alarm.set(base + chrono::Duration::seconds(s), &busy);
        }
        alarm.set(base - chrono::Duration::seconds(1), &busy);
        alarm.set(base + chrono::Duration::hours(1), &quiet);
        let alarms = alarm.lock();
        assert_eq!(alarms.by_time.len(), MAX_PER_TENANT + 1, "the busy tenant's share, and the quiet one's");
        let kept = &alarms.by_tenant[&busy];
        assert_eq!(kept.first(), Some(&(base - chrono::Duration::seconds(1))), "an earlier one takes a place");
        assert_eq!(kept.last(), Some(&(base + chrono::Duration::seconds(MAX_PER_TENANT as i64 - 2))));
        drop(alarms);

        let alarm = DueAlarm::default();
        for _ in 0..(MAX_ALARMS / MAX_PER_TENANT + 2) {
            let tenant = TenantId::generate();
            for s in 0..MAX_PER_TENANT as i64 {
                alarm.set(base + chrono::Duration::seconds(s), &tenant);
            }
        }
        assert_eq!(alarm.lock().by_time.len(), MAX_ALARMS);
    }
}
