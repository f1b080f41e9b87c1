//! `event_types`: a tenant's custom event types, and its settings for built-in ones.
use sea_orm::entity::prelude::*;

/// A tenant's event type definition or override.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "event_types")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub description: String,
    /// JSON Schema of `data`; `null` for an override of a built-in type.
    pub schema: Option<Json>,
    /// An example `data` object.
    pub example: Option<Json>,
    /// Whether ingest rejects events whose data does not match the schema.
    pub validate: bool,
    pub created_at: DateTimeUtc,
}

/// No navigable relations: queries join explicitly.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
