//! `tenant_erasures`: the jobs that delete a tenant's data in batches.
use sea_orm::entity::prelude::*;

/// An erasure job.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tenant_erasures")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The tenant being erased (its row goes last).
    pub tenant_id: String,
    /// The platform that asked for it.
    pub platform_id: Option<String>,
    /// `running`, `done` or `failed`.
    pub status: String,
    /// Rows deleted so far, all tables together.
    pub rows_erased: i64,
    /// Why it stopped, when it failed (no values, only what failed).
    pub error: Option<String>,
    pub created_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
}

/// No navigable relations: queries join explicitly.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
