//! Hookhub's persistence layer: domain types, sea-orm entities, migrations,
//! and the repositories that keep the transactional outbox honest.
//!
//! PostgreSQL is the production backend; SQLite is the embedded default.
//! Everything here works on both, and the few statements that differ
//! (row claiming with `FOR UPDATE SKIP LOCKED`) are chosen per backend.

pub mod cipher;
mod credential_cache;
pub mod domain;
pub mod entity;
mod error;
pub mod migration;
mod page;
pub mod repo;
mod store;

pub use error::StoreError;
pub use page::{Cursor, Page, PageRequest};
pub use store::{sqlite_data_dir, Store, DEFAULT_CREDENTIAL_TTL, DEFAULT_POOL_SIZE};
