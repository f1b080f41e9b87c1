//! Per-subscription filters and transforms: JavaScript run in a sandbox.
//!
//! A subscription may carry a **filter**, a JavaScript expression over the
//! event (`event.data.location_id === "loc_1"`), and a **transform**, a
//! script defining Svix's `function handler(webhook)`, which returns the
//! webhook with a new `payload`, `method` or `headers`, or with `cancel`
//! set to drop it. A falsy filter or a cancelled webhook is *filtered*: not
//! sent, recorded as such, neither a failure nor retried. See
//! docs/design.md, "Filters and transformations", for why JavaScript and
//! QuickJS.
//!
//! - [`limits`]: the hard limits of a run, and the CPU clock behind them;
//! - [`sandbox`]: one run in a fresh QuickJS runtime, on the calling thread;
//! - [`output`]: what a transform returned, checked and turned into a request;
//! - [`pool`]: runs off the async runtime, a bounded number at once.
//!
//! Event payloads are PHI. Nothing here logs a payload or a transform's
//! output, and an error's `Display` (what the attempts log stores) names
//! the kind of failure and a line, never a value; the engine's full
//! message, which a program can fill with payload values, is only handed
//! to the caller of the test endpoint, who supplied the event.
pub mod limits;
pub mod output;
pub mod pool;
pub mod sandbox;

pub use limits::Limits;
pub use output::{Method, Request};
pub use pool::Sandbox;

use std::sync::Arc;

/// Which of a subscription's two programs something is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The filter expression.
    Filter,
    /// The transform script.
    Transform,
}

impl Part {
    /// Its field name in the API.
    pub fn field(self) -> &'static str {
        match self {
            Self::Filter => "filter",
            Self::Transform => "transform",
        }
    }
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.field())
    }
}

/// A subscription's filter and transform, each checked to compile (and the
/// transform to define `handler`) before it was saved.
///
/// Only [`Sandbox::check`] makes one from sources a user sent;
/// [`Program::saved`] takes what the store holds, which went through it
/// when it was saved. Every run compiles the sources again in a fresh
/// runtime, so a saved program that no longer compiles fails its attempts
/// with a clear error rather than anything worse.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Program {
    filter: Option<Arc<str>>,
    transform: Option<Arc<str>>,
}

impl Program {
    /// The program a subscription saved.
    pub fn saved(filter: Option<&str>, transform: Option<&str>) -> Self {
        Self { filter: filter.map(Arc::from), transform: transform.map(Arc::from) }
    }

    /// Whether there is nothing to run: the event goes out as it is.
    pub fn is_empty(&self) -> bool {
        self.filter.is_none() && self.transform.is_none()
    }

    /// The filter's source.
    pub fn filter(&self) -> Option<&str> {
        self.filter.as_deref()
    }

    /// The transform's source.
    pub fn transform(&self) -> Option<&str> {
        self.transform.as_deref()
    }
}

/// What a run decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rendered {
    /// The filter rejected the event, or the transform cancelled it.
    Filtered(Part),
    /// Send this.
    Send(Request),
}

/// Why a run produced nothing to send. `Display` is what the attempts log
/// stores: the kind of failure and a line, never a payload value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransformError {
    /// The source does not compile (a syntax error), or is too long.
    #[error("{part} does not compile: {message}")]
    Compile {
        /// Filter or transform.
        part: Part,
        /// The engine's syntax error, which quotes only the source.
        message: String,
    },
    /// The transform defines no `function handler(webhook)`.
    #[error("transform must define `function handler(webhook)`")]
    NoHandler,
    /// The run used more CPU (or wall-clock) time than allowed.
    #[error("{part} exceeded its time limit ({limit_ms} ms of CPU)")]
    Time {
        /// Where it was stopped.
        part: Part,
        /// The limit.
        limit_ms: u128,
    },
    /// The run allocated more memory than allowed.
    #[error("{part} exceeded its memory limit ({limit_mib} MiB)")]
    Memory {
        /// Where it ran out.
        part: Part,
        /// The limit.
        limit_mib: usize,
    },
    /// The run recursed deeper than the stack allows.
    #[error("{part} exceeded its stack limit (recursion too deep)")]
    Stack {
        /// Where it overflowed.
        part: Part,
    },
    /// The program threw.
    #[error("{part} threw {kind}{}", line.map(|l| format!(" at line {l}")).unwrap_or_default())]
    Threw {
        /// Where.
        part: Part,
        /// The error's constructor when it is a standard one (`TypeError`),
        /// otherwise "a value": a program's own names could carry data.
        kind: &'static str,
        /// The line it was thrown at, when known.
        line: Option<u32>,
        /// The engine's message: for the test endpoint only, never stored.
        detail: String,
    },
    /// The output is over the size limit.
    #[error("transform output is larger than the limit of {limit} bytes")]
    OutputTooLarge {
        /// The limit.
        limit: usize,
    },
    /// The transform returned something that is not a webhook to send.
    #[error("transform returned an invalid webhook: {0}")]
    InvalidOutput(&'static str),
    /// The sandbox itself failed (could not start a runtime, or panicked).
    #[error("the transform sandbox failed")]
    Sandbox,
}

impl TransformError {
    /// The full message, for the user who is trying a program out: with
    /// the engine's message for a thrown error, which may quote the event.
    pub fn detail(&self) -> String {
        match self {
            Self::Threw { detail, .. } if !detail.is_empty() => format!("{self}: {detail}"),
            _ => self.to_string(),
        }
    }

    /// A stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Compile { .. } => "syntax_error",
            Self::NoHandler => "no_handler",
            Self::Time { .. } => "time_limit",
            Self::Memory { .. } => "memory_limit",
            Self::Stack { .. } => "stack_limit",
            Self::Threw { .. } => "threw",
            Self::OutputTooLarge { .. } => "output_too_large",
            Self::InvalidOutput(_) => "invalid_output",
            Self::Sandbox => "sandbox_failed",
        }
    }

    /// Which program it is about, when it is about one.
    pub fn part(&self) -> Option<Part> {
        match self {
            Self::Compile { part, .. }
            | Self::Time { part, .. }
            | Self::Memory { part, .. }
            | Self::Stack { part }
            | Self::Threw { part, .. } => Some(*part),
            Self::NoHandler | Self::OutputTooLarge { .. } | Self::InvalidOutput(_) => Some(Part::Transform),
            Self::Sandbox => None,
        }
    }
}
