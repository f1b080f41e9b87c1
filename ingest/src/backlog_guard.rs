//! The backlog guard: admission control per tenant at ingest.
//!
//! A tenant whose accepted-but-unpublished events (its pending outbox rows)
//! reach `HOOKHUB_TENANT_BACKLOG_LIMIT` is refused with `429
//! tenant_backlog_full` and a `Retry-After` until the relay has worked its
//! backlog below the bound; every other tenant is admitted as before. This
//! is the push-back from delivery to ingest: without it one tenant's import
//! is accepted faster than it can be delivered and the queue it builds
//! delays everyone's events behind it.
//!
//! Counting on each request would cost a query per event at thousands of
//! events per second, so a background task reads which tenants are over the
//! bound with one grouped query every [`REFRESH_EVERY`], and each request
//! only looks its tenant up in that set. The backlog can therefore
//! overshoot the bound by what the tenant posts in one refresh interval.
use crate::ApiError;
use hookhub_store::domain::TenantId;
use hookhub_store::metrics::metrics;
use hookhub_store::Store;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The bound by default: 10,000 events. At fan-out 4 that is 40,000
/// webhooks, about 7 s of one hub's delivery at the ~6,000 webhooks/s it
/// sustains: long enough that no tenant posting at a steady pace ever
/// meets it (a healthy relay keeps each tenant's backlog at a few hundred
/// rows at most), short enough that the newest event of a tenant that is
/// importing waits seconds, not minutes, and the table the relay claims
/// from stays small.
pub const DEFAULT_TENANT_BACKLOG_LIMIT: u64 = 10_000;

/// How often the set of tenants over the bound is read again.
pub const REFRESH_EVERY: Duration = Duration::from_millis(250);

/// The longest `Retry-After` given: past it a client should look again
/// anyway, as the relay may have caught up faster than it did so far.
const MAX_RETRY_AFTER_SECS: u64 = 30;

/// The 429 in the OpenAPI document of a route that admits events: add
/// `crate::backlog_guard::Refused` to its `responses(...)`. Only described,
/// never built: the answer itself is [`ApiError::BacklogFull`]'s.
#[derive(utoipa::IntoResponses)]
#[response(
    status = 429,
    description = "Refused: over the tenant's plan (`rate_limited`), or the tenant has `HOOKHUB_TENANT_BACKLOG_LIMIT` \
                   events not yet published (`tenant_backlog_full`, other tenants unaffected); send the same event again \
                   after `Retry-After`",
    headers(("Retry-After" = i64, description = "Seconds to wait before sending again"))
)]
#[allow(dead_code)]
pub(crate) struct Refused(crate::error::ErrorBody<'static>);

/// One tenant over the bound, as last read.
#[derive(Clone, Copy, Debug)]
struct Over {
    /// Its pending outbox rows.
    pending: u64,
    /// Seconds its backlog needs to fall below the bound, at the pace it
    /// fell since the read before.
    retry_after: u64,
    /// Since when it has been over, as first read.
    since: Instant,
}

/// The tenants over the bound, refreshed in the background; cheap to ask.
pub struct BacklogGuard {
    limit: u64,
    over: RwLock<HashMap<TenantId, Over>>,
}

impl BacklogGuard {
    /// A guard refusing tenants with `limit` or more pending events; until
    /// [`BacklogGuard::run`] has read the store it refuses no one.
    pub fn new(limit: u64) -> Arc<Self> {
        Arc::new(Self { limit, over: RwLock::new(HashMap::new()) })
    }

    /// Admits an event of `tenant`, or refuses it with
    /// [`ApiError::BacklogFull`] when the tenant's backlog is over the bound.
    /// Every ingest path that accepts a tenant's events calls this (through
    /// [`crate::AppState::admit_event`]) before writing anything.
    pub fn check(&self, tenant: &TenantId) -> Result<(), ApiError> {
        let over = self.over.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(tenant).copied();
        match over {
            None => Ok(()),
            Some(over) => {
                metrics().backlog_refusals.inc();
                Err(ApiError::BacklogFull { retry_after: over.retry_after as i64, limit: self.limit })
            }
        }
    }

    /// Reads the tenants over the bound every [`REFRESH_EVERY`] until
    /// `shutdown`. A failed read keeps the last set (and is logged): the
    /// store being briefly unreachable says nothing about anyone's backlog.
    pub async fn run(self: Arc<Self>, store: Store, shutdown: CancellationToken) {
        let mut last_read = Instant::now();
        let mut ticks = tokio::time::interval(REFRESH_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            match store.tenants_with_backlog(self.limit).await {
                Ok(now_over) => {
                    let elapsed = last_read.elapsed();
                    last_read = Instant::now();
                    self.replace(now_over, elapsed);
                }
                Err(e) => tracing::warn!(error = %e, "reading tenant backlogs failed; keeping the last set"),
            }
        }
    }

    /// Takes a fresh read of the tenants over the bound, `elapsed` after the last.
    fn replace(&self, now_over: Vec<(TenantId, u64)>, elapsed: Duration) {
        let mut over = self.over.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let fresh: HashMap<TenantId, Over> = now_over
            .into_iter()
            .map(|(tenant, pending)| {
                let before = over.get(&tenant);
                let since = before.map_or(now, |o| o.since);
                let pace = Pace { before: before.map(|o| o.pending), elapsed, over_for: now - since };
                (tenant, Over { pending, retry_after: pace.retry_after(self.limit, pending), since })
            })
            .collect();
        *over = fresh;
        metrics().tenants_over_backlog_limit.set(over.len() as i64);
    }
}

/// How a tenant's backlog moved between two reads.
struct Pace {
    /// Its pending rows at the read before, if it was over then.
    before: Option<u64>,
    /// Time between the two reads.
    elapsed: Duration,
    /// How long it has been over the bound.
    over_for: Duration,
}

impl Pace {
    /// Seconds until `pending` falls below `limit` at the pace it fell
    /// since the read before, within 1 and [`MAX_RETRY_AFTER_SECS`]. When it
    /// did not fall (it just crossed, events admitted before the refusal
    /// began landed meanwhile, or the relays are behind or down), one second
    /// more for each second it has been over: short waits while the drain
    /// is merely unseen, longer ones while nothing drains.
    fn retry_after(&self, limit: u64, pending: u64) -> u64 {
        let drained = self.before.map_or(0, |before| before.saturating_sub(pending));
        if drained == 0 {
            return (self.over_for.as_secs() + 1).min(MAX_RETRY_AFTER_SECS);
        }
        let per_sec = drained as f64 / self.elapsed.as_secs_f64().max(0.001);
        let excess = (pending + 1).saturating_sub(limit) as f64;
        ((excess / per_sec).ceil() as u64).clamp(1, MAX_RETRY_AFTER_SECS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_follows_the_pace_of_the_drain_within_bounds() {
        let pace = |before, over_for| Pace { before, elapsed: Duration::from_secs(1), over_for };
        let just = Duration::ZERO;
        assert_eq!(pace(None, just).retry_after(100, 150), 1, "a tenant just over: soon");
        assert_eq!(pace(Some(150), Duration::from_secs(4)).retry_after(100, 150), 5, "not falling for 4 s");
        let stuck = Duration::from_secs(600);
        assert_eq!(pace(Some(150), stuck).retry_after(100, 150), MAX_RETRY_AFTER_SECS, "nothing drains: the cap");
        assert_eq!(pace(Some(160), just).retry_after(100, 150), 6, "51 over at 10/s");
        assert_eq!(pace(Some(1_000), just).retry_after(100, 101), 1, "at least a second");
        assert_eq!(pace(Some(10_001), just).retry_after(100, 10_000), MAX_RETRY_AFTER_SECS, "at most the cap");
    }

    #[test]
    fn only_tenants_over_the_bound_are_refused() {
        let guard = BacklogGuard::new(10);
        let (noisy, quiet): (TenantId, TenantId) = (TenantId::generate(), TenantId::generate());
        guard.replace(vec![(noisy.clone(), 12)], REFRESH_EVERY);
        assert!(matches!(guard.check(&noisy), Err(ApiError::BacklogFull { retry_after: 1, limit: 10 })));
        assert!(guard.check(&quiet).is_ok());
        guard.replace(vec![], REFRESH_EVERY);
        assert!(guard.check(&noisy).is_ok(), "admitted again once under the bound");
    }
}
