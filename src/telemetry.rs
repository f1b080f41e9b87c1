//! Logging: `tracing` to stdout, human-readable or JSON.
//!
//! No level may carry request values (payloads are PHI). Our own events
//! never record them, and targets of dependencies known to echo them are
//! dropped whatever `RUST_LOG` asks for.
use tracing::Metadata;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

/// Log targets that are never written. actix-web's logger prints every
/// error response at DEBUG with the error's `Debug`, and a JSON error
/// quotes the offending value of the body. Hookhub's access log has its
/// own target (`hookhub::http`) and is not affected.
const ECHOING_TARGETS: [&str; 1] = ["actix_web::middleware::logger"];

/// Whether an event or span comes from a target that echoes request values.
fn echoes_request_values(meta: &Metadata<'_>) -> bool {
    ECHOING_TARGETS.iter().any(|target| meta.target().starts_with(target))
}

/// Installs the global subscriber; `RUST_LOG` overrides the default levels.
pub fn init(format: &str) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn,lapin=warn,actix_server=warn"));
    let registry = tracing_subscriber::registry().with(filter).with(filter_fn(|meta| !echoes_request_values(meta)));
    let output = tracing_subscriber::fmt::layer().with_target(false);
    let result = if format == "json" {
        registry.with(output.json().flatten_event(true)).try_init()
    } else {
        registry.with(output).try_init()
    };
    // A second init (tests) keeps the first subscriber.
    drop(result);
}
