//! `outbox`: events accepted but not yet confirmed by the broker.
use sea_orm::entity::prelude::*;

/// An outbox row, written in the same transaction as its event.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub event_id: String,
    pub tenant_id: String,
    pub created_at: DateTimeUtc,
    /// A relay holds the row until then; after it, another relay may take it.
    pub locked_until: Option<DateTimeUtc>,
    /// Set only after the broker confirmed the publish.
    pub published_at: Option<DateTimeUtc>,
    /// Set when the relay found the row cannot be published (its event is
    /// gone or unreadable); the claim skips it until an operator requeues it.
    pub quarantined_at: Option<DateTimeUtc>,
    /// Why, one of a few fixed words (see `QuarantineReason`).
    pub quarantine_reason: Option<String>,
}

/// No navigable relations: queries join explicitly.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
