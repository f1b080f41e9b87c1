//! Rate limits by plan, counted in the database so that every ingest
//! process shares one count.
use crate::domain::{Plan, TenantId};
use crate::entity::rate_counter;
use crate::{Store, StoreError};
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait, QueryTrait};
use std::collections::HashMap;

/// What a request did to its tenant's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateStatus {
    /// The limit of the tightest window.
    pub limit: i64,
    /// Requests left in it (0 when over).
    pub remaining: i64,
    /// Unix seconds when that window resets.
    pub reset: i64,
    /// Whether this request is over a limit (and must be refused).
    pub exceeded: bool,
}

impl Store {
    /// Counts one request of the tenant in each of its plan's fixed
    /// windows. `None` for unlimited plans, which cost no query at all.
    pub async fn hit_rate_limit(
        &self,
        tenant: &TenantId,
        plan: Plan,
        now: i64,
    ) -> Result<Option<RateStatus>, StoreError> {
        let windows = plan.windows();
        if windows.is_empty() {
            return Ok(None);
        }
        let start_of = |secs: i64| now - now.rem_euclid(secs);
        // One atomic multi-row upsert for every window (one round trip):
        // concurrent requests on any process see consecutive counts.
        let mut upsert = rate_counter::Entity::insert_many(windows.iter().map(|w| rate_counter::ActiveModel {
            tenant_id: Set(tenant.to_string()),
            window_secs: Set(w.secs),
            window_start: Set(start_of(w.secs)),
            count: Set(1),
        }))
        .on_conflict(
            OnConflict::columns([
                rate_counter::Column::TenantId,
                rate_counter::Column::WindowSecs,
                rate_counter::Column::WindowStart,
            ])
            .value(rate_counter::Column::Count, Expr::col((rate_counter::Entity, rate_counter::Column::Count)).add(1))
            .to_owned(),
        );
        upsert
            .query()
            .returning(Query::returning().columns([rate_counter::Column::WindowSecs, rate_counter::Column::Count]));
        let mut counts = HashMap::with_capacity(windows.len());
        for row in self.db().query_all(upsert.build(self.backend())).await? {
            counts.insert(row.try_get::<i64>("", "window_secs")?, row.try_get::<i64>("", "count")?);
        }
        let mut tightest: Option<RateStatus> = None;
        for window in windows {
            let count = *counts
                .get(&window.secs)
                .ok_or_else(|| StoreError::Corrupt(format!("rate counter of {tenant} for {}s", window.secs)))?;
            let status = RateStatus {
                limit: window.limit,
                remaining: (window.limit - count).max(0),
                reset: start_of(window.secs) + window.secs,
                exceeded: count > window.limit,
            };
            // Report the window that bites: an exceeded one, else the one with the fewest left.
            tightest = Some(match tightest {
                Some(t) if t.exceeded || (!status.exceeded && t.remaining <= status.remaining) => t,
                _ => status,
            });
        }
        Ok(tightest)
    }

    /// Drops counters of windows that ended before `before` (unix seconds).
    pub async fn purge_rate_counters(&self, before: i64) -> Result<u64, StoreError> {
        use sea_orm::{ColumnTrait, QueryFilter};
        Ok(rate_counter::Entity::delete_many()
            .filter(rate_counter::Column::WindowStart.lt(before - 86_400))
            .exec(self.db())
            .await?
            .rows_affected)
    }
}
