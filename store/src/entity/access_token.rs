//! `access_tokens`: an issued OAuth access token (hashed).
use sea_orm::entity::prelude::*;

/// A row of `access_tokens`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "access_tokens")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub app_id: String,
    /// SHA-256 hex of the token.
    #[sea_orm(unique)]
    pub token_hash: String,
    pub scope: String,
    pub expires_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
}

/// No navigable relations: queries join explicitly.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
