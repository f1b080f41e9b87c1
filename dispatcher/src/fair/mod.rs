//! Fair shares between tenants wherever the dispatcher queues work.
//!
//! One hub carries thousands of tenants; a tenant's import must not make
//! another tenant's appointment reminder wait behind it. Every place where
//! work waits in the dispatcher serves tenants in turn instead of first
//! come: fan-out's intake ([`crate::fan_out`] forms each batch from the
//! events of every tenant with events waiting, one tenant at a time) and
//! the delivery loop's places and in-flight slots ([`FairSemaphore`]), and
//! the attempts waiting to be written ([`FairChannel`]), since a retry is
//! not due until its failed attempt is written.
//! The store's claims (outbox rows, due retries) take tenants in turn as
//! well. docs/design.md ("Fair shares between tenants") has the trade-offs.

mod channel;
mod queue;
mod semaphore;

pub use channel::FairChannel;
pub use queue::FairQueue;
pub use semaphore::{FairPermit, FairSemaphore};
