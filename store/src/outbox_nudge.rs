//! How ingest tells the outbox relay of its own process that events are
//! waiting, and whose.
//!
//! The relay's main lane only needs a wake-up. Its express lane (see
//! `hookhub_dispatcher::express_lane`) also needs the tenants: while the
//! main lane is busy with a backlog, it claims the rows of tenants that
//! have none, by tenant id, which costs one small claim per nudge rather
//! than a scan for "who is light" on every wake-up.
use crate::domain::TenantId;
use std::collections::HashSet;
use std::sync::Mutex;
use tokio::sync::Notify;

/// Most tenants remembered between two takes. A relay that has not taken
/// them for this long is far behind anyway; the main lane's claim still
/// finds every row, the express lane just misses the extra ones.
const MOST_TENANTS: usize = 1024;

/// Nudges from ingest to the relay: a wake-up per lane, and the tenants
/// whose events were accepted since the express lane last looked.
#[derive(Debug, Default)]
pub struct OutboxNudge {
    main: Notify,
    express: Notify,
    tenants: Mutex<HashSet<TenantId>>,
}

impl OutboxNudge {
    /// An event of `tenant` is in the outbox.
    pub fn accepted(&self, tenant: &TenantId) {
        self.main.notify_one();
        let fresh = {
            let mut tenants = self.tenants.lock().expect("the lock is never held across a panic");
            !tenants.contains(tenant) && tenants.len() < MOST_TENANTS && tenants.insert(tenant.clone())
        };
        // A tenant already waiting to be looked at is on its way: its
        // thousandth event in a row wakes nobody.
        if fresh {
            self.express.notify_one();
        }
    }

    /// Waits for a nudge of the main lane (one stored if it came before).
    pub async fn main_nudged(&self) {
        self.main.notified().await
    }

    /// Waits for a new tenant to be nudged (one stored if it came before).
    pub async fn express_nudged(&self) {
        self.express.notified().await
    }

    /// The tenants nudged since they were last taken, except those
    /// `leave` picks: they stay remembered and wake nobody with their next
    /// events.
    pub fn take_tenants(&self, leave: impl Fn(&TenantId) -> bool) -> Vec<TenantId> {
        let mut tenants = self.tenants.lock().expect("the lock is never held across a panic");
        let taken: Vec<TenantId> = tenants.iter().filter(|t| !leave(t)).cloned().collect();
        for t in &taken {
            tenants.remove(t);
        }
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn remembers_each_tenant_once_and_wakes_both_lanes() {
        let nudge = OutboxNudge::default();
        let (a, b): (TenantId, TenantId) = (TenantId::generate(), TenantId::generate());
        nudge.accepted(&a);
        nudge.accepted(&a);
        nudge.accepted(&b);
        let soon = Duration::from_millis(100);
        tokio::time::timeout(soon, nudge.main_nudged()).await.expect("main lane woken");
        tokio::time::timeout(soon, nudge.express_nudged()).await.expect("express lane woken");
        let taken: HashSet<TenantId> = nudge.take_tenants(|t| *t == b).into_iter().collect();
        assert_eq!(taken, HashSet::from([a.clone()]));
        assert_eq!(nudge.take_tenants(|_| false), vec![b.clone()], "a tenant left stays remembered");
        assert!(nudge.take_tenants(|_| false).is_empty(), "taken means forgotten");
        nudge.accepted(&a);
        assert_eq!(nudge.take_tenants(|_| false), vec![a], "a tenant taken comes back with its next event");
    }
}
