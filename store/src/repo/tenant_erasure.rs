//! Erasing a tenant: a job that deletes every row of the tenant, table by
//! table, a few hundred rows per short transaction, then the tenant row.
//! The audit log is kept: it holds no payloads, and HIPAA asks for six
//! years of it.
//!
//! The tenant is marked `deleting` first, so its ingest is refused and its
//! deliveries are held while the job runs; its credentials and
//! subscriptions go first, so nothing new is accepted or fanned out. A job
//! cut short by a restart is picked up again by [`Store::resume_erasures`].
use crate::domain::{now, ErasureId, TenantId, TenantStatus};
use crate::entity::{tenant, tenant_erasure};
use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, Query};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use std::time::Duration;

/// The tables erased, in order: credentials and subscriptions first, so
/// the tenant can neither call nor be delivered to while the rest goes.
/// Every one is keyed by `tenant_id` and has an `id`.
pub const ERASED_TABLES: [&str; 12] = [
    "portal_sessions",
    "api_keys",
    "access_tokens",
    "oauth_apps",
    "subscriptions",
    "inbound_sources",
    "rules",
    "event_types",
    "outbox",
    "deliveries",
    "attempts",
    "events",
];

/// Rows deleted per statement (and per transaction).
const BATCH: u64 = 500;

/// The pause between two batches, so other writers get the database.
const PAUSE: Duration = Duration::from_millis(5);

/// Where an erasure job stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Erasure {
    /// Its id.
    pub id: ErasureId,
    /// The tenant erased.
    pub tenant_id: TenantId,
    /// `running`, `done` or `failed`.
    pub status: String,
    /// Rows deleted so far.
    pub rows_erased: i64,
    /// When it was asked for.
    pub created_at: DateTime<Utc>,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
}

impl TryFrom<tenant_erasure::Model> for Erasure {
    type Error = StoreError;
    fn try_from(m: tenant_erasure::Model) -> Result<Self, StoreError> {
        Ok(Self {
            id: super::stored(&m.id)?,
            tenant_id: super::stored(&m.tenant_id)?,
            status: m.status,
            rows_erased: m.rows_erased,
            created_at: m.created_at,
            finished_at: m.finished_at,
        })
    }
}

impl Store {
    /// Marks one of `platform`'s tenants `deleting`, revokes its
    /// credentials, and records the job that erases the rest; run it with
    /// [`Store::run_erasure`]. The platform's subscriptions get `tenant.deleted`.
    pub async fn start_erasure(&self, platform: &TenantId, id: &TenantId) -> Result<Erasure, StoreError> {
        let found = self.managed_tenant(platform, id.as_str()).await?;
        if found.tenant.status != TenantStatus::Deleting {
            tenant::Entity::update_many()
                .col_expr(tenant::Column::Status, TenantStatus::Deleting.into())
                .filter(tenant::Column::Id.eq(id.as_str()))
                .exec(self.db())
                .await?;
            self.credentials().invalidate();
        }
        let job = tenant_erasure::ActiveModel {
            id: Set(ErasureId::generate().to_string()),
            tenant_id: Set(id.to_string()),
            platform_id: Set(Some(platform.to_string())),
            status: Set("running".into()),
            rows_erased: Set(0),
            error: Set(None),
            created_at: Set(now()),
            finished_at: Set(None),
        };
        let job = tenant_erasure::Entity::insert(job).exec_with_returning(self.db()).await?;
        let deleted = super::tenants::Tenant { status: TenantStatus::Deleting, ..found.tenant };
        self.notify_platform(platform, "tenant.deleted", &deleted).await?;
        job.try_into()
    }

    /// One of `platform`'s erasure jobs.
    pub async fn erasure(&self, platform: &TenantId, id: &ErasureId) -> Result<Erasure, StoreError> {
        tenant_erasure::Entity::find_by_id(id.as_str())
            .filter(tenant_erasure::Column::PlatformId.eq(platform.as_str()))
            .one(self.db())
            .await?
            .ok_or(StoreError::NotFound("erasure"))?
            .try_into()
    }

    /// Runs an erasure job to its end: batch after batch, table after
    /// table, until a whole pass deletes nothing (a fan-out that was
    /// already under way may write a row behind it), then the tenant row.
    /// Records how far it got, and why it stopped if it failed.
    pub async fn run_erasure(&self, job: &ErasureId) -> Result<(), StoreError> {
        let Some(row) = tenant_erasure::Entity::find_by_id(job.as_str()).one(self.db()).await? else {
            return Err(StoreError::NotFound("erasure"));
        };
        let tenant: TenantId = super::stored(&row.tenant_id)?;
        let outcome = self.erase(job, &tenant).await;
        let (status, error) = match &outcome {
            Ok(()) => ("done", None),
            Err(e) => ("failed", Some(e.to_string())),
        };
        tenant_erasure::Entity::update_many()
            .col_expr(tenant_erasure::Column::Status, status.into())
            .col_expr(tenant_erasure::Column::Error, error.into())
            .col_expr(tenant_erasure::Column::FinishedAt, Some(now()).into())
            .filter(tenant_erasure::Column::Id.eq(job.as_str()))
            .exec(self.db())
            .await?;
        outcome
    }

    async fn erase(&self, job: &ErasureId, tenant: &TenantId) -> Result<(), StoreError> {
        loop {
            let mut pass = 0;
            for table in ERASED_TABLES {
                loop {
                    let deleted = self.erase_batch(tenant, table).await?;
                    if deleted == 0 {
                        break;
                    }
                    pass += deleted;
                    self.count_erased(job, deleted).await?;
                    tokio::time::sleep(PAUSE).await;
                }
            }
            // Rate counters have no id; a tenant has a handful.
            let counters = Query::delete()
                .from_table(Alias::new("rate_counters"))
                .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant.as_str()))
                .to_owned();
            let backend = self.backend();
            pass += self.db().execute(backend.build(&counters)).await?.rows_affected();
            if pass == 0 {
                break;
            }
        }
        let gone = tenant::Entity::delete_by_id(tenant.as_str()).exec(self.db()).await?.rows_affected;
        self.count_erased(job, gone).await?;
        self.credentials().invalidate();
        Ok(())
    }

    /// Deletes up to [`BATCH`] of the tenant's rows of `table`, in the
    /// tenant's scope (row-level security on PostgreSQL); how many went.
    async fn erase_batch(&self, tenant: &TenantId, table: &'static str) -> Result<u64, StoreError> {
        let (t, id, owner) = (Alias::new(table), Alias::new("id"), Alias::new("tenant_id"));
        let some = Query::select()
            .column(id.clone())
            .from(t.clone())
            .and_where(Expr::col(owner).eq(tenant.as_str()))
            .limit(BATCH)
            .to_owned();
        let delete = Query::delete().from_table(t).and_where(Expr::col(id).in_subquery(some)).to_owned();
        let txn = self.tenant_scope(tenant).await?;
        let deleted = txn.execute(self.backend().build(&delete)).await?.rows_affected();
        txn.commit().await?;
        Ok(deleted)
    }

    async fn count_erased(&self, job: &ErasureId, rows: u64) -> Result<(), StoreError> {
        tenant_erasure::Entity::update_many()
            .col_expr(
                tenant_erasure::Column::RowsErased,
                Expr::col(tenant_erasure::Column::RowsErased).add(rows as i64),
            )
            .filter(tenant_erasure::Column::Id.eq(job.as_str()))
            .exec(self.db())
            .await?;
        Ok(())
    }

    /// Runs again, one after another, the erasure jobs still `running`:
    /// cut short by a restart. Started with the relay; a job another
    /// process is still running meanwhile is deleted twice over, which
    /// deletes nothing twice.
    pub async fn resume_erasures(&self) {
        let rows = match tenant_erasure::Entity::find()
            .filter(tenant_erasure::Column::Status.eq("running"))
            .all(self.db())
            .await
        {
            Ok(rows) => rows,
            Err(e) => return tracing::error!(error = %e, "could not list unfinished erasures"),
        };
        for row in rows {
            let Ok(id) = row.id.parse::<ErasureId>() else { continue };
            if let Err(e) = self.run_erasure(&id).await {
                tracing::error!(erasure_id = %id, error = %e, "tenant erasure failed");
            }
        }
    }
}
