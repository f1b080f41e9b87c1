//! sea-orm entities: one module per table.

pub mod access_token;
pub mod api_key;
pub mod attempt;
pub mod audit_entry;
pub mod delivery;
pub mod event;
pub mod event_type;
pub mod inbound_source;
pub mod oauth_app;
pub mod outbox;
pub mod portal_session;
pub mod rate_counter;
pub mod rule;
pub mod subscription;
pub mod tenant;
pub mod tenant_erasure;
