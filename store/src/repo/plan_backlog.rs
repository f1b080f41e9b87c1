//! The backlog of each tenant class, for `/metrics`. A class is a plan:
//! five of them, so one series each keeps the label set bounded however
//! many tenants the hub carries, where a series per tenant would not.
use crate::domain::{now, DeliveryStatus, Plan};
use crate::entity::{delivery, outbox, tenant};
use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, JoinType, QueryFilter, QuerySelect};
use std::collections::HashMap;

/// What waits for the tenants of one plan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlanBacklog {
    /// Accepted events the relay has not published yet.
    pub outbox: u64,
    /// Pending deliveries whose attempt is due now or overdue.
    pub due: u64,
    /// When the longest-waiting of those came due.
    pub oldest_due: Option<DateTime<Utc>>,
}

impl Store {
    /// Each plan's backlog; a plan with nothing waiting is absent.
    ///
    /// Two grouped queries over the pending outbox rows and the due
    /// deliveries, on the hub's own connection (like the relay's claim, not
    /// under a tenant scope, which would count one tenant only). Meant for
    /// the metrics endpoint, which reads the store's gauges at most every
    /// few seconds.
    pub async fn backlog_by_plan(&self) -> Result<HashMap<Plan, PlanBacklog>, StoreError> {
        let mut by_plan: HashMap<Plan, PlanBacklog> = HashMap::new();
        let outbox_tenant =
            outbox::Entity::belongs_to(tenant::Entity).from(outbox::Column::TenantId).to(tenant::Column::Id).into();
        let pending: Vec<(String, i64)> = outbox::Entity::find()
            .select_only()
            .column(tenant::Column::Plan)
            .column_as(Expr::col((outbox::Entity, outbox::Column::Id)).count(), "pending")
            .join(JoinType::InnerJoin, outbox_tenant)
            .filter(outbox::Column::PublishedAt.is_null())
            .filter(outbox::Column::QuarantinedAt.is_null())
            .group_by(tenant::Column::Plan)
            .into_tuple()
            .all(self.db())
            .await?;
        for (plan, count) in pending {
            if let Ok(plan) = plan.parse() {
                by_plan.entry(plan).or_default().outbox = u64::try_from(count).unwrap_or(0);
            }
        }
        let delivery_tenant =
            delivery::Entity::belongs_to(tenant::Entity).from(delivery::Column::TenantId).to(tenant::Column::Id).into();
        let due: Vec<(String, i64, Option<DateTime<Utc>>)> = delivery::Entity::find()
            .select_only()
            .column(tenant::Column::Plan)
            .column_as(Expr::col((delivery::Entity, delivery::Column::Id)).count(), "due")
            .column_as(Expr::col((delivery::Entity, delivery::Column::NextAttemptAt)).min(), "oldest")
            .join(JoinType::InnerJoin, delivery_tenant)
            .filter(delivery::Column::Status.eq(DeliveryStatus::Pending))
            .filter(delivery::Column::NextAttemptAt.lte(now()))
            .group_by(tenant::Column::Plan)
            .into_tuple()
            .all(self.db())
            .await?;
        for (plan, count, oldest) in due {
            if let Ok(plan) = plan.parse() {
                let entry = by_plan.entry(plan).or_default();
                entry.due = u64::try_from(count).unwrap_or(0);
                entry.oldest_due = oldest;
            }
        }
        Ok(by_plan)
    }
}
