//! `inbound_sources`: a payment gateway (or other sender) that posts callbacks to a tenant.
use sea_orm::entity::prelude::*;

/// An inbound source row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "inbound_sources")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    /// `stripe` or `generic`.
    pub kind: String,
    /// The unguessable path segment of the callback URL.
    #[sea_orm(unique)]
    pub token: String,
    /// The sender's signing secret (Stripe's `whsec_...`, or a Standard Webhooks secret).
    pub signing_secret: String,
    pub created_at: DateTimeUtc,
}

/// No navigable relations: queries join explicitly.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
