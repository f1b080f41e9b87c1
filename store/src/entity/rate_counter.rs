//! `rate_counters`: requests per tenant per fixed window, shared by every ingest process.
use sea_orm::entity::prelude::*;

/// A counter row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "rate_counters")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    /// The window's length (900 or 86,400).
    #[sea_orm(primary_key, auto_increment = false)]
    pub window_secs: i64,
    /// Unix seconds at which the window began.
    #[sea_orm(primary_key, auto_increment = false)]
    pub window_start: i64,
    pub count: i64,
}

/// No navigable relations: queries join explicitly.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
