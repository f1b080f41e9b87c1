//! sea-orm entities: one module per table.

pub mod attempt;
pub mod delivery;
pub mod event;
pub mod outbox;
pub mod subscription;
pub mod tenant;
