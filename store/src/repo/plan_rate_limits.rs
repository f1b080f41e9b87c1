//! Rate limits by plan, counted in the database so that every ingest
//! process shares one count.
use crate::domain::{Plan, TenantId, Window};
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

/// Token requests one OAuth client id may make per minute, failed or not:
/// enough for any real client, far too few to guess a secret.
pub const TOKEN_REQUESTS_PER_CLIENT: Window = Window { secs: 60, limit: 10 };

/// Token requests one client address may make per minute, whatever client
/// ids it names.
pub const TOKEN_REQUESTS_PER_ADDRESS: Window = Window { secs: 60, limit: 30 };

/// Whose requests a set of counters counts.
#[derive(Clone, Copy, Debug)]
pub enum RateSubject<'a> {
    /// A tenant, against its plan, on every route it can drive.
    Tenant(&'a TenantId),
    /// Token requests naming this client id, whether it exists or not.
    TokenClient(&'a str),
    /// Token requests from this client address.
    TokenAddress(&'a str),
}

impl RateSubject<'_> {
    /// The counter key. Caller-chosen text is hashed, so a key stays short
    /// and storable whatever was sent.
    fn key(self) -> String {
        let digest = |s: &str| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(s.as_bytes()));
        match self {
            Self::Tenant(tenant) => tenant.to_string(),
            Self::TokenClient(client_id) => format!("token-client:{}", digest(client_id)),
            Self::TokenAddress(address) => format!("token-address:{}", digest(address)),
        }
    }
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
        self.hit_limits(RateSubject::Tenant(tenant), &plan.windows(), now).await
    }

    /// Counts one request of `subject` in each of `windows`; `None` when
    /// there are none.
    pub async fn hit_limits(
        &self,
        subject: RateSubject<'_>,
        windows: &[Window],
        now: i64,
    ) -> Result<Option<RateStatus>, StoreError> {
        if windows.is_empty() {
            return Ok(None);
        }
        let key = subject.key();
        let start_of = |secs: i64| now - now.rem_euclid(secs);
        // One atomic multi-row upsert for every window (one round trip):
        // concurrent requests on any process see consecutive counts.
        let mut upsert = rate_counter::Entity::insert_many(windows.iter().map(|w| rate_counter::ActiveModel {
            tenant_id: Set(key.clone()),
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
                .ok_or_else(|| StoreError::Corrupt(format!("rate counter of {key} for {}s", window.secs)))?;
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
