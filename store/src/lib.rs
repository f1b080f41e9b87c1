//! Hookhub's persistence layer: domain types, sea-orm entities, migrations,
//! and the repositories that keep the transactional outbox honest.
//!
//! PostgreSQL is the production backend; SQLite is the embedded default.
//! Everything here works on both. The statements written by hand for
//! PostgreSQL (batches bound as one JSON parameter, a write and the read of
//! what it wrote in one round trip) are all in `repo/pg.rs`, each beside a
//! query-builder version in the repository method that picks one by
//! backend; claims add `FOR UPDATE SKIP LOCKED` on PostgreSQL. On PostgreSQL the API's queries also run
//! under row-level security, in a per-tenant scope (`tenant_scope.rs`).
//!
//! Being the crate both the API (`hookhub-ingest`) and the delivery side
//! (`hookhub-dispatcher`) depend on, it also holds what the two must
//! share and neither owns: the Standard Webhooks signer and the webhook
//! body (`domain::signer`, `domain::WebhookBody`), the SSRF guard's address
//! rules (`domain::target_guard`), and the process's Prometheus registry
//! ([`metrics`]), into which both sides count.

pub mod cipher;
mod credential_cache;
pub mod domain;
pub mod entity;
mod error;
pub mod metrics;
pub mod migration;
pub mod outbox_nudge;
mod page;
pub mod repo;
mod store;
mod tenant_scope;

pub use error::StoreError;
pub use page::{Cursor, Page, PageRequest};
pub use store::{sqlite_data_dir, Store, DEFAULT_CREDENTIAL_TTL, DEFAULT_POOL_SIZE};
