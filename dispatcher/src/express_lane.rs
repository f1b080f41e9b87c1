//! The relay's express lane: events of tenants without a backlog, moved
//! while the main lane is busy.
//!
//! The main lane keeps a backlog in the outbox, where its claims take
//! tenants in turn: it stops claiming while the broker holds a message no
//! consumer has taken (or, in process, while each of its places waits for
//! fan-out to write a batch). Under a burst it is always busy: a claim
//! numbers the whole backlog (milliseconds each under load), or it waits
//! for the broker. A quiet tenant's event would wait for the claim under
//! way and then its own, or for the consumers to finish a message of the
//! backlog, and once published it would queue behind the message ahead.
//!
//! So while the main lane is busy, this lane claims the rows of the
//! tenants ingest nudged (by id, see [`OutboxNudge`]) that are not heavy,
//! at most [`PER_TENANT`] of each, and publishes them to the express lane:
//! straight to this process's fan-out when it has one, else RabbitMQ's
//! express queue, which has prefetch slots of its own (see
//! [`crate::queue::lanes`]). Fan-out then takes them in a batch of light
//! tenants (see `crate::fan_out`).
//!
//! A tenant is heavy, and left to the main lane for [`HEAVY_FOR`], when a
//! main claim took [`HEAVY_ROWS`] of its rows or an express claim came back
//! with its full [`PER_TENANT`]. A tenant that starts an import is thus
//! heavy after one express claim at most, and the express lane never
//! carries more than a few rows of a backlog.
//!
//! A relay of its own (`hookhub relay`) is nudged by no ingest, so only
//! its main lane works there.
//!
//! [`OutboxNudge`]: hookhub_store::outbox_nudge::OutboxNudge
use crate::outbox_relay::OutboxRelay;
use crate::queue::Lane;
use hookhub_store::domain::TenantId;
use hookhub_store::repo::OutboxItem;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Rows of one tenant in one main claim that make it heavy: a sixteenth
/// of the default claim, far above what a tenant posting a few events a
/// second has waiting between two claims.
pub const HEAVY_ROWS: usize = 16;

/// Most rows of one tenant an express claim takes.
pub const PER_TENANT: u64 = 16;

/// How long a heavy tenant is left to the main lane, unless marked again.
pub const HEAVY_FOR: Duration = Duration::from_secs(2);

/// Most rows in one express claim: one queue message.
const EXPRESS_BATCH: u64 = crate::queue::MAX_EVENTS_PER_MESSAGE as u64;

/// Express batches published at once.
const EXPRESS_BATCHES: usize = 4;

/// How long the lane waits after a failed claim; the rows stay for the main lane.
const FAILED_CLAIM_PAUSE: Duration = Duration::from_millis(100);

/// The tenants the express lane leaves to the main lane, and until when.
#[derive(Debug, Default)]
pub struct HeavyTenants {
    until: Mutex<HashMap<TenantId, Instant>>,
}

impl HeavyTenants {
    /// Marks the tenants of which a main claim took [`HEAVY_ROWS`] rows or more.
    pub fn note_main_claim(&self, items: &[OutboxItem]) {
        self.mark_over(items, HEAVY_ROWS);
    }

    /// Marks the tenants whose express claim came back full.
    pub fn note_express_claim(&self, items: &[OutboxItem]) {
        self.mark_over(items, PER_TENANT as usize);
    }

    fn mark_over(&self, items: &[OutboxItem], rows: usize) {
        if items.len() < rows {
            return;
        }
        let mut per_tenant: HashMap<&TenantId, usize> = HashMap::new();
        for item in items {
            *per_tenant.entry(&item.tenant_id).or_default() += 1;
        }
        let until = Instant::now() + HEAVY_FOR;
        let mut heavy = self.lock();
        for (tenant, _) in per_tenant.into_iter().filter(|(_, n)| *n >= rows) {
            heavy.insert(tenant.clone(), until);
        }
    }

    /// Whether `tenant` is heavy now.
    pub fn is_heavy(&self, tenant: &TenantId) -> bool {
        self.lock().get(tenant).is_some_and(|until| *until > Instant::now())
    }

    /// Forgets the tenants no longer heavy.
    fn forget_expired(&self) {
        let now = Instant::now();
        self.lock().retain(|_, until| *until > now);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, Instant>> {
        self.until.lock().expect("the lock is never held across a panic")
    }
}

/// Runs the express lane of `relay` until `shutdown`; its publishes are
/// tracked by `tasks`, so the relay waits for them when it stops.
pub async fn run(relay: Arc<OutboxRelay>, tasks: TaskTracker, shutdown: CancellationToken) {
    let places = Arc::new(Semaphore::new(EXPRESS_BATCHES));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = relay.nudge.express_nudged() => {}
            _ = relay.became_busy.notified() => {}
        }
        // A main lane that is caught up takes these tenants' rows itself;
        // they stay remembered for when it is busy.
        if !relay.busy() {
            continue;
        }
        relay.heavy.forget_expired();
        // Heavy tenants stay remembered too, so their next events do not
        // wake this lane again, and they are looked at once they are not.
        let light = relay.nudge.take_tenants(|tenant| relay.heavy.is_heavy(tenant));
        if light.is_empty() {
            continue;
        }
        let place = tokio::select! {
            _ = shutdown.cancelled() => break,
            place = places.clone().acquire_owned() => place.expect("semaphore is never closed"),
        };
        let claim = match relay.store.claim_outbox_of(&light, PER_TENANT, EXPRESS_BATCH, relay.lease()).await {
            Ok(claim) => claim,
            Err(e) => {
                tracing::warn!(error = %e, "express claim failed; the main lane takes those rows");
                tokio::time::sleep(FAILED_CLAIM_PAUSE).await;
                continue;
            }
        };
        relay.heavy.note_express_claim(&claim.items);
        let (_, items) = relay.set_aside(claim);
        if items.is_empty() {
            continue;
        }
        let relay = relay.clone();
        tasks.spawn(async move {
            if let Err(e) = relay.publish(items, Lane::Express).await {
                tracing::warn!(error = %e, "express publish failed; the rows go back to the outbox");
            }
            drop(place);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookhub_store::domain::EventId;

    fn rows(tenant: &TenantId, n: usize) -> Vec<OutboxItem> {
        (0..n)
            .map(|i| OutboxItem {
                outbox_id: i as i64,
                event_id: EventId::generate(),
                tenant_id: tenant.clone(),
                event_type: "client.created".parse().unwrap(),
                ordering_key: None,
            })
            .collect()
    }

    #[test]
    fn a_tenant_is_heavy_when_it_fills_a_claim_and_light_otherwise() {
        let heavy = HeavyTenants::default();
        let (import, quiet) = (TenantId::generate(), TenantId::generate());
        let mut claim = rows(&import, HEAVY_ROWS);
        claim.extend(rows(&quiet, 3));
        heavy.note_main_claim(&claim);
        assert!(heavy.is_heavy(&import));
        assert!(!heavy.is_heavy(&quiet));

        let starting = TenantId::generate();
        heavy.note_express_claim(&rows(&starting, PER_TENANT as usize - 1));
        assert!(!heavy.is_heavy(&starting), "a claim that was not full says nothing");
        heavy.note_express_claim(&rows(&starting, PER_TENANT as usize));
        assert!(heavy.is_heavy(&starting), "a full express claim means more is waiting");
    }
}
