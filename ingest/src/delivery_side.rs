//! What the API borrows from the delivery side at run time: the sandbox
//! that compiles and tries out filters and transforms, and the broker's
//! readiness probe.
//!
//! The API does not depend on the dispatcher crate: both depend on the
//! store only, and the binary plugs the dispatcher's sandbox and broker
//! client in through these two traits (see `AppState`). The types here are
//! the API's view of a run, in the words its answers use.
use async_trait::async_trait;
use hookhub_store::domain::TenantId;
use std::collections::BTreeMap;

/// Runs a subscription's filter and transform, in the sandbox deliveries
/// use, so that what the API accepts and shows is what deliveries will do.
#[async_trait]
pub trait ProgramSandbox: Send + Sync {
    /// Checks a filter and a transform `tenant` sent: they compile, and the
    /// transform defines `handler`.
    async fn check(
        &self,
        tenant: &TenantId,
        filter: Option<String>,
        transform: Option<String>,
    ) -> Result<(), ProgramError>;

    /// Runs `filter` and `transform` on a webhook `body` of `event_type`
    /// bound for `url`, as a delivery would.
    async fn try_out(&self, tenant: &TenantId, run: ProgramRun) -> Result<Rendering, ProgramError>;
}

/// One try of a subscription's programs on an event.
pub struct ProgramRun {
    /// The filter's source, if any.
    pub filter: Option<String>,
    /// The transform's source, if any.
    pub transform: Option<String>,
    /// The webhook body the programs see, as it would be signed and sent.
    pub body: String,
    /// The event's type.
    pub event_type: String,
    /// The endpoint the webhook would go to.
    pub url: String,
}

/// What a run decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rendering {
    /// Not sent: the filter was falsy (`"filter"`) or the transform
    /// cancelled it (`"transform"`).
    Filtered {
        /// The field name of the program that dropped it.
        by: &'static str,
    },
    /// Sent as this request.
    Send {
        /// The HTTP method.
        method: &'static str,
        /// The headers the transform adds.
        headers: BTreeMap<String, String>,
        /// The body, exactly the bytes that would be signed and sent.
        body: String,
    },
}

/// Why a run, or a check, produced nothing to send.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{logged}")]
pub struct ProgramError {
    /// A stable, machine-readable code (`syntax_error`, `threw`, ...).
    pub code: &'static str,
    /// The field name of the program it is about, when it is about one.
    pub part: Option<&'static str>,
    /// The full message, with the engine's own: only for the user who
    /// sent the program (it may quote the event they sent).
    pub detail: String,
    /// What the attempts log would store: the kind and a line, never a
    /// payload value.
    pub logged: String,
}

/// Answers whether the message broker takes connections (readiness).
#[async_trait]
pub trait BrokerProbe: Send + Sync {
    /// Whether the broker accepted a connection, within the probe's timeout.
    async fn reachable(&self) -> bool;
}
