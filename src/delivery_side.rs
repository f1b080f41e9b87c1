//! The dispatcher's sandbox and broker client, plugged into the API.
//!
//! The API crate does not depend on the dispatcher (both depend on the
//! store only); it names what it needs from the delivery side as two traits
//! (`hookhub_ingest::delivery_side`), and this is their one implementation,
//! here where both crates meet.
use async_trait::async_trait;
use hookhub_dispatcher::transform::{Program, Rendered, Sandbox, TransformError};
use hookhub_ingest::delivery_side::{BrokerProbe, ProgramError, ProgramRun, ProgramSandbox, Rendering};
use hookhub_store::domain::TenantId;

/// The process's shared sandbox ([`Sandbox::shared`]): the API's checks and
/// tries run where deliveries run their programs, on the same limits.
#[derive(Clone, Copy, Debug, Default)]
pub struct SharedSandbox;

#[async_trait]
impl ProgramSandbox for SharedSandbox {
    async fn check(
        &self,
        tenant: &TenantId,
        filter: Option<String>,
        transform: Option<String>,
    ) -> Result<(), ProgramError> {
        Sandbox::shared().check(tenant, filter, transform).await.map(drop).map_err(program_error)
    }

    async fn try_out(&self, tenant: &TenantId, run: ProgramRun) -> Result<Rendering, ProgramError> {
        let program = Program::saved(run.filter.as_deref(), run.transform.as_deref());
        let rendered = Sandbox::shared().run(tenant, &program, run.body, run.event_type, run.url).await;
        match rendered.map_err(program_error)? {
            Rendered::Filtered(part) => Ok(Rendering::Filtered { by: part.field() }),
            Rendered::Send(request) => Ok(Rendering::Send {
                method: request.method.as_str(),
                headers: request
                    .headers
                    .iter()
                    .map(|(n, v)| (n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                    .collect(),
                body: String::from_utf8_lossy(&request.body).into_owned(),
            }),
        }
    }
}

/// The API's view of a sandbox failure: its `Display` is what the attempts
/// log stores, its detail is for the user who sent the program.
fn program_error(e: TransformError) -> ProgramError {
    ProgramError { code: e.code(), part: e.part().map(|p| p.field()), detail: e.detail(), logged: e.to_string() }
}

/// RabbitMQ at `url`, probed by opening a connection.
#[derive(Clone, Debug)]
pub struct AmqpProbe {
    url: String,
}

impl AmqpProbe {
    /// A probe of the broker at `url` (`amqp://...`).
    pub fn new(url: impl Into<String>) -> Self {
        Self { url: url.into() }
    }
}

#[async_trait]
impl BrokerProbe for AmqpProbe {
    async fn reachable(&self) -> bool {
        hookhub_dispatcher::queue::amqp::ping(&self.url).await.is_ok()
    }
}
