//! The `hookhub` binary's library: configuration, telemetry, and the wiring
//! that starts ingest, the outbox relay and the dispatcher, together
//! (`serve`) or one role per process (scale-out), and plugs the
//! dispatcher's sandbox and broker probe into the API (`delivery_side`).

pub mod admin;
pub mod delivery_side;
pub mod listen;
pub mod local_key;
pub mod settings;
pub mod startup;
pub mod telemetry;

pub use settings::{Mode, Settings};
pub use startup::{Hub, Role};
