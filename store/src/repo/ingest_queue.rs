//! Group commit for ingest: concurrent `ingest_event` calls of one tenant
//! queue up and share one transaction, so many events pay for one commit
//! (one WAL flush) and a handful of multi-row statements.
//!
//! There is no standing writer task: the call that finds its tenant with a
//! free committer slot spawns one, which drains the tenant's queue batch by
//! batch and ends when it is empty.
use super::events::{IngestOutcome, NewEvent};
use crate::domain::{EventId, TenantId};
use crate::StoreError;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;

/// Most events written in one transaction.
pub(crate) const MAX_BATCH: usize = 256;

/// Transactions of one tenant in flight at once: with two, one batch
/// fills while the other commits.
const COMMITTERS_PER_TENANT: usize = 2;

/// What the caller checked an event's data against before queueing it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum SchemaCheck {
    /// Nothing, and its type's validation setting does not apply (inbound sources).
    Exempt,
    /// Nothing yet: if its type requires a schema, the event comes back.
    Unchecked,
    /// This schema; if its type now requires another, the event comes back.
    Against(Value),
}

/// What became of a queued event.
pub(crate) enum IngestReply {
    /// Written, or answered as a replay.
    Done(IngestOutcome),
    /// Not written: its type requires this schema, which it was not checked against.
    NeedsSchema(Value),
}

/// One queued event and where its answer goes.
pub(crate) struct Job {
    /// The id the event gets, chosen before the first try: a retry after a
    /// commit whose outcome is unknown writes (or finds) the same event.
    pub id: EventId,
    /// The event to write.
    pub new: NewEvent,
    /// What its data was checked against.
    pub check: SchemaCheck,
    /// The waiting caller.
    pub reply: oneshot::Sender<Result<IngestReply, StoreError>>,
}

#[derive(Default)]
struct TenantQueue {
    jobs: Vec<Job>,
    committers: usize,
}

/// Events waiting for their tenant's next transaction, per tenant.
#[derive(Clone)]
pub(crate) struct IngestQueue {
    queues: Arc<Mutex<HashMap<TenantId, TenantQueue>>>,
    /// The runtime the store was opened on, which lives as long as the
    /// process: committers run there, not on the runtime of the request that
    /// started them (an HTTP worker's, which stops earlier at shutdown while
    /// the committer may still carry other workers' events).
    runtime: Option<tokio::runtime::Handle>,
    /// Commits still to be reported as failed after they succeed (a test
    /// hook standing for a connection lost during `COMMIT`).
    ambiguous_commits: Arc<AtomicUsize>,
}

impl Default for IngestQueue {
    fn default() -> Self {
        Self {
            queues: Arc::default(),
            runtime: tokio::runtime::Handle::try_current().ok(),
            ambiguous_commits: Arc::default(),
        }
    }
}

impl std::fmt::Debug for IngestQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IngestQueue")
    }
}

impl IngestQueue {
    fn lock(&self) -> MutexGuard<'_, HashMap<TenantId, TenantQueue>> {
        // The map stays consistent across a panic (every change is one
        // statement), so a poisoned lock is still usable.
        self.queues.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs a committer on the store's runtime (or, outside one, the caller's).
    pub(crate) fn spawn(&self, committer: impl std::future::Future<Output = ()> + Send + 'static) {
        match &self.runtime {
            Some(runtime) => drop(runtime.spawn(committer)),
            None => drop(tokio::spawn(committer)),
        }
    }

    /// Makes the next `n` group commits report a failure after committing.
    pub(crate) fn fail_commits_ambiguously(&self, n: usize) {
        self.ambiguous_commits.store(n, Ordering::SeqCst);
    }

    /// Whether the commit that just succeeded must be reported as failed.
    pub(crate) fn take_ambiguous_commit(&self) -> bool {
        self.ambiguous_commits.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
    }

    /// Queues `job`; returns a committer when the caller must start one.
    pub(crate) fn push(&self, tenant: &TenantId, job: Job) -> Option<Committer> {
        let mut map = self.lock();
        let queue = map.entry(tenant.clone()).or_default();
        queue.jobs.push(job);
        if queue.committers >= COMMITTERS_PER_TENANT {
            return None;
        }
        queue.committers += 1;
        Some(Committer { queue: self.clone(), tenant: tenant.clone(), active: true })
    }
}

/// The right (and duty) to drain one tenant's queue; counted in its
/// queue's committers until it finds the queue empty or is dropped.
pub(crate) struct Committer {
    queue: IngestQueue,
    tenant: TenantId,
    active: bool,
}

impl Committer {
    /// The tenant whose queue this drains.
    pub(crate) fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// Takes up to [`MAX_BATCH`] queued jobs, oldest first; `None` once the
    /// queue is empty, which also ends this committer.
    pub(crate) fn next_batch(&mut self) -> Option<Vec<Job>> {
        if !self.active {
            return None;
        }
        let shared = self.queue.clone();
        let mut map = shared.lock();
        let queue = map.get_mut(&self.tenant)?;
        if queue.jobs.is_empty() {
            self.retire(&mut map);
            return None;
        }
        let take = queue.jobs.len().min(MAX_BATCH);
        Some(queue.jobs.drain(..take).collect())
    }

    fn retire(&mut self, map: &mut HashMap<TenantId, TenantQueue>) {
        self.active = false;
        if let Some(queue) = map.get_mut(&self.tenant) {
            queue.committers = queue.committers.saturating_sub(1);
            if queue.committers == 0 && queue.jobs.is_empty() {
                map.remove(&self.tenant);
            }
        }
    }
}

impl Drop for Committer {
    /// A committer that stopped early (its task panicked or was cancelled)
    /// frees its slot, so the next call starts another one.
    fn drop(&mut self) {
        if self.active {
            let queue = self.queue.clone();
            self.retire(&mut queue.lock());
        }
    }
}
