//! `subscriptions`: an endpoint URL, the event types it wants, and its secret.
use crate::domain::SubscriptionStatus;
use sea_orm::entity::prelude::*;

/// A subscription row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "subscriptions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub url: String,
    pub description: String,
    /// JSON array of event type names, or `["*"]`.
    pub event_types: Json,
    /// `whsec_...`; wrapped in `SigningSecret` as soon as it is read.
    pub secret: String,
    pub status: SubscriptionStatus,
    pub disabled_reason: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

/// No navigable relations: queries join explicitly.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
