//! `tenants`: one platform account, authenticated by a hashed API key, and
//! the platforms that manage such accounts.
use sea_orm::entity::prelude::*;

/// A tenant row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tenants")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub name: String,
    /// SHA-256 hex of the API key; the key itself is never stored.
    #[sea_orm(unique)]
    pub api_key_hash: String,
    pub created_at: DateTimeUtc,
    /// The rate-limit plan: essential, starter, pro, studio or unlimited.
    pub plan: String,
    /// The platform's own id for it (`studio_123`), unique per platform.
    pub external_id: Option<String>,
    /// The platform tenant that manages it, if one does.
    pub platform_id: Option<String>,
    /// Whether its events are accepted and delivered.
    pub status: crate::domain::TenantStatus,
    /// The platform's JSON object about it, as text.
    pub metadata: Option<String>,
    /// Whether it is a platform: its credentials may carry the `platform` scope.
    pub is_platform: bool,
}

/// No navigable relations: queries join explicitly.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
