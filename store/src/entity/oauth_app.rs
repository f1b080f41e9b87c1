//! `oauth_apps`: an OAuth client (client credentials grant).
use sea_orm::entity::prelude::*;

/// A row of `oauth_apps`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "oauth_apps")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    #[sea_orm(unique)]
    pub client_id: String,
    /// SHA-256 hex of the client secret.
    pub client_secret_hash: String,
    /// The highest scope its tokens may carry.
    pub scope: String,
    pub created_at: DateTimeUtc,
}

/// No navigable relations: queries join explicitly.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
