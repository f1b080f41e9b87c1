//! `deliveries`: one event to one subscription, and when to try it next.
use crate::domain::DeliveryStatus;
use sea_orm::entity::prelude::*;

/// A delivery row. `next_attempt_at` is both the retry schedule and the
/// lease: a worker that claims the row pushes it into the future, so a
/// crashed worker's delivery comes due again by itself.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub event_id: String,
    pub subscription_id: String,
    pub status: DeliveryStatus,
    /// Attempts made so far, over the delivery's whole life.
    pub attempt_count: i32,
    /// Failed attempts in the current retry cycle (reset by a manual redeliver).
    pub retry_index: i32,
    pub next_attempt_at: Option<DateTimeUtc>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The event's ordering key, set only when the subscription is ordered:
    /// then the delivery waits for every earlier one of its key.
    pub ordering_key: Option<String>,
    /// Dead-lettered, and still holding its key (`on_dead_letter: block`).
    pub key_blocked: bool,
}

/// No navigable relations: queries join explicitly.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
