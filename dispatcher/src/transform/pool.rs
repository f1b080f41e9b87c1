//! Runs filters and transforms off the async runtime's workers, a bounded
//! number at once.
//!
//! A run is CPU work of up to its time limit; on a runtime worker it would
//! stall every delivery sharing that worker. Runs go to the blocking pool
//! instead, behind a semaphore as wide as the machine has cores, so that a
//! burst of hostile transforms queues (each for at most its time limit)
//! rather than spawning hundreds of threads. The semaphore serves tenants
//! in turn: one tenant's thousand runs that each take their whole time
//! limit make another tenant's run wait for one run per core, not for all
//! of them.
use super::limits::Limits;
use super::sandbox::{self, Envelope};
use super::{Program, Rendered, TransformError};
use crate::fair::FairSemaphore;
use hookhub_store::domain::TenantId;
use std::sync::{Arc, OnceLock};

/// The sandbox: where programs run, and with what limits.
#[derive(Clone, Debug)]
pub struct Sandbox {
    limits: Limits,
    permits: Arc<FairSemaphore<TenantId>>,
}

impl Sandbox {
    /// A sandbox running up to `concurrency` programs at once.
    pub fn new(limits: Limits, concurrency: usize) -> Self {
        Self { limits, permits: FairSemaphore::new(concurrency.max(1)) }
    }

    /// The process's sandbox, with the default limits and one run per core:
    /// the API's checks and the dispatcher's runs share the machine's CPUs.
    pub fn shared() -> &'static Self {
        static SHARED: OnceLock<Sandbox> = OnceLock::new();
        SHARED.get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(2, usize::from);
            Self::new(Limits::default(), cores)
        })
    }

    /// Its limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Checks a filter and a transform `tenant` sent: they compile, and the
    /// transform defines `handler`.
    pub async fn check(
        &self,
        tenant: &TenantId,
        filter: Option<String>,
        transform: Option<String>,
    ) -> Result<Program, TransformError> {
        let program = Program::saved(filter.as_deref(), transform.as_deref());
        let limits = self.limits;
        let checked = program.clone();
        self.blocking(tenant, move || sandbox::check(&checked, limits)).await?;
        Ok(program)
    }

    /// Runs a program of `tenant`'s on an event: filtered, or the request to send.
    pub async fn run(
        &self,
        tenant: &TenantId,
        program: &Program,
        body: String,
        event_type: String,
        url: String,
    ) -> Result<Rendered, TransformError> {
        let (program, limits) = (program.clone(), self.limits);
        self.blocking(tenant, move || {
            sandbox::run(&program, Envelope { body: &body, event_type: &event_type, url: &url }, limits)
        })
        .await
    }

    async fn blocking<T: Send + 'static>(
        &self,
        tenant: &TenantId,
        job: impl FnOnce() -> Result<T, TransformError> + Send + 'static,
    ) -> Result<T, TransformError> {
        let _permit = self.permits.acquire(tenant).await;
        // A panic in the engine's bindings is a failed run, not a dead worker.
        tokio::task::spawn_blocking(job).await.unwrap_or(Err(TransformError::Sandbox))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tenants_queue_of_slow_runs_does_not_hold_up_another_tenants_run() {
        let sandbox = Arc::new(Sandbox::new(Limits::default(), 1));
        let (busy, quiet): (TenantId, TenantId) = (TenantId::generate(), TenantId::generate());
        // Each runs into its CPU time limit.
        let looping = Program::saved(None, Some("function handler(w) { for (;;) {} }"));
        let body = || r#"{"id":"msg_1","type":"t.x","timestamp":"2026-01-01T00:00:00Z","data":{}}"#.to_owned();
        let mut runs = Vec::new();
        for _ in 0..8 {
            let (sandbox, busy, looping, body) = (sandbox.clone(), busy.clone(), looping.clone(), body());
            runs.push(tokio::spawn(async move {
                let _ = sandbox.run(&busy, &looping, body, "t.x".into(), "https://a.example".into()).await;
                std::time::Instant::now()
            }));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        let plain = Program::saved(Some("true"), None);
        let rendered = sandbox.run(&quiet, &plain, body(), "t.x".into(), "https://b.example".into()).await;
        let quiet_done = std::time::Instant::now();
        assert!(rendered.is_ok(), "{rendered:?}");
        let mut busy_done = Vec::new();
        for run in runs {
            busy_done.push(run.await.unwrap());
        }
        let after = busy_done.iter().filter(|t| **t > quiet_done).count();
        assert!(after >= 5, "the quiet tenant's run waited behind {} of the busy tenant's 8", 8 - after);
    }
}
