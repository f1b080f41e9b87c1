//! `events`: every accepted event, immutable once written.
use sea_orm::entity::prelude::*;

/// An event row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub event_type: String,
    /// The `data` object exactly as ingested.
    pub data: Json,
    /// Unique per tenant when present.
    pub idempotency_key: Option<String>,
    pub created_at: DateTimeUtc,
    /// The key its deliveries to ordered subscriptions keep order by.
    pub ordering_key: Option<String>,
    /// Set at ingest on an event with a key, cleared once fan-out wrote
    /// its deliveries: later deliveries of the key wait until then.
    pub fan_out_pending: bool,
}

/// No navigable relations: queries join explicitly.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
