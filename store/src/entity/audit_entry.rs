//! `audit_log`: one row per API call; never request bodies (they may carry PHI).
use sea_orm::entity::prelude::*;

/// An audit row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Unknown when the call was not authenticated.
    pub tenant_id: Option<String>,
    /// The API key id or OAuth client id, never the secret.
    pub credential: Option<String>,
    pub method: String,
    /// The path without its query string.
    pub path: String,
    pub status: i32,
    pub latency_ms: i64,
    pub client_ip: Option<String>,
    pub created_at: DateTimeUtc,
    /// The platform tenant whose credential made the call for `tenant_id`.
    pub platform_id: Option<String>,
}

/// No navigable relations: queries join explicitly.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
