//! API keys verified recently, so a request does not read its key again.
//!
//! Ingest looked its caller's key up on every request: at load that was one
//! statement per event, more than every other statement of the pipeline
//! together. An entry is trusted for a short `ttl` after it was read.
//! Revoking a key or changing a tenant's plan through a store forgets every
//! entry of that store at once, so in the process that made the change the
//! next request sees it; other processes see it within `ttl`.
use crate::repo::Principal;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Past this many keys the cache starts over rather than grow.
const MAX_ENTRIES: usize = 10_000;

/// Principals by key hash, each with when it was read.
#[derive(Debug)]
pub(crate) struct CredentialCache {
    ttl: Duration,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<String, (Instant, Principal)>,
    /// Bumped by every invalidation: a lookup that started before one must
    /// not put what it read (possibly the revoked key) back.
    generation: u64,
}

/// Where a lookup started, to hand back to [`CredentialCache::put`].
pub(crate) struct Ticket(u64);

impl CredentialCache {
    /// A cache trusting entries for `ttl`; zero turns it off.
    pub(crate) fn new(ttl: Duration) -> Self {
        Self { ttl, inner: Mutex::new(Inner::default()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The map holds no invariant a panic elsewhere could break.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The principal of `hash` if it was read less than `ttl` ago, or a
    /// ticket to store what the database says.
    pub(crate) fn get(&self, hash: &str) -> Result<Principal, Ticket> {
        let inner = self.lock();
        match inner.entries.get(hash) {
            Some((read, principal)) if read.elapsed() < self.ttl => Ok(principal.clone()),
            _ => Err(Ticket(inner.generation)),
        }
    }

    /// Remembers a principal read from the database, unless the cache was
    /// invalidated since the lookup began.
    pub(crate) fn put(&self, ticket: Ticket, hash: &str, principal: &Principal) {
        if self.ttl.is_zero() {
            return;
        }
        let mut inner = self.lock();
        if inner.generation != ticket.0 {
            return;
        }
        if inner.entries.len() >= MAX_ENTRIES {
            inner.entries.clear();
        }
        inner.entries.insert(hash.to_owned(), (Instant::now(), principal.clone()));
    }

    /// Forgets everything (a key was revoked or a tenant changed).
    pub(crate) fn invalidate(&self) {
        let mut inner = self.lock();
        inner.entries.clear();
        inner.generation += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Plan, Scope, TenantId, TenantStatus};
    use crate::repo::Tenant;

    fn principal() -> Principal {
        let tenant = Tenant {
            id: TenantId::generate(),
            name: "t".into(),
            plan: Plan::Unlimited,
            external_id: None,
            platform_id: None,
            status: TenantStatus::Active,
            is_platform: false,
        };
        Principal { tenant, scope: Scope::Write, credential: "key_1".into() }
    }

    #[test]
    fn serves_what_it_read_until_the_ttl_runs_out() {
        let cache = CredentialCache::new(Duration::from_millis(50));
        let ticket = cache.get("h").unwrap_err();
        cache.put(ticket, "h", &principal());
        assert!(cache.get("h").is_ok());
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.get("h").is_err());
    }

    #[test]
    fn a_lookup_that_raced_a_revocation_is_not_cached() {
        let cache = CredentialCache::new(Duration::from_secs(60));
        let ticket = cache.get("h").unwrap_err();
        cache.invalidate();
        cache.put(ticket, "h", &principal());
        assert!(cache.get("h").is_err());
    }

    #[test]
    fn zero_ttl_caches_nothing() {
        let cache = CredentialCache::new(Duration::ZERO);
        let ticket = cache.get("h").unwrap_err();
        cache.put(ticket, "h", &principal());
        assert!(cache.get("h").is_err());
    }
}
