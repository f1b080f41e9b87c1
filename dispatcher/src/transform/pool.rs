//! Runs filters and transforms off the async runtime's workers, a bounded
//! number at once.
//!
//! A run is CPU work of up to its time limit; on a runtime worker it would
//! stall every delivery sharing that worker. Runs go to the blocking pool
//! instead, behind a semaphore as wide as the machine has cores, so that a
//! burst of hostile transforms queues (each for at most its time limit)
//! rather than spawning hundreds of threads.
use super::limits::Limits;
use super::sandbox::{self, Envelope};
use super::{Program, Rendered, TransformError};
use std::sync::{Arc, OnceLock};
use tokio::sync::Semaphore;

/// The sandbox: where programs run, and with what limits.
#[derive(Clone, Debug)]
pub struct Sandbox {
    limits: Limits,
    permits: Arc<Semaphore>,
}

impl Sandbox {
    /// A sandbox running up to `concurrency` programs at once.
    pub fn new(limits: Limits, concurrency: usize) -> Self {
        Self { limits, permits: Arc::new(Semaphore::new(concurrency.max(1))) }
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

    /// Checks a filter and a transform a user sent: they compile, and the
    /// transform defines `handler`.
    pub async fn check(&self, filter: Option<String>, transform: Option<String>) -> Result<Program, TransformError> {
        let program = Program::saved(filter.as_deref(), transform.as_deref());
        let limits = self.limits;
        let checked = program.clone();
        self.blocking(move || sandbox::check(&checked, limits)).await?;
        Ok(program)
    }

    /// Runs a program on an event: filtered, or the request to send.
    pub async fn run(
        &self,
        program: &Program,
        body: String,
        event_type: String,
        url: String,
    ) -> Result<Rendered, TransformError> {
        let (program, limits) = (program.clone(), self.limits);
        self.blocking(move || {
            sandbox::run(&program, Envelope { body: &body, event_type: &event_type, url: &url }, limits)
        })
        .await
    }

    async fn blocking<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> Result<T, TransformError> + Send + 'static,
    ) -> Result<T, TransformError> {
        let _permit = self.permits.acquire().await.map_err(|_| TransformError::Sandbox)?;
        // A panic in the engine's bindings is a failed run, not a dead worker.
        tokio::task::spawn_blocking(job).await.unwrap_or(Err(TransformError::Sandbox))
    }
}
