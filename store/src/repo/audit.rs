//! The audit log: who called what, when, and how it went; never bodies.
use super::pg;
use crate::domain::TenantId;
use crate::entity::audit_entry;
use crate::page::{paginate, Page, PageRequest};
use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, Condition, DatabaseBackend, EntityTrait, QueryFilter};

/// One API call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// The tenant, when the call was authenticated.
    pub tenant_id: Option<TenantId>,
    /// API key id or OAuth client id, never a secret.
    pub credential: Option<String>,
    /// HTTP method.
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// Response status.
    pub status: u16,
    /// Time to the response.
    pub latency_ms: i64,
    /// The caller's address.
    pub client_ip: Option<String>,
    /// When the call was made.
    pub at: DateTime<Utc>,
    /// The platform whose credential made the call for `tenant_id`.
    pub platform_id: Option<TenantId>,
}

/// Which audit rows to list.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// At or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Before this time.
    pub to: Option<DateTime<Utc>>,
    /// With this response status.
    pub status: Option<u16>,
}

impl Store {
    /// Writes a batch of audit rows in one statement.
    ///
    /// The batch mixes every tenant's calls, so when its statement fails the
    /// rows are written one by one: a row the database refuses costs only
    /// itself, not the record of everyone else's calls. Fails only when no
    /// row could be written.
    pub async fn record_audit(&self, entries: Vec<AuditEntry>) -> Result<(), StoreError> {
        let rows: Vec<audit_entry::ActiveModel> = entries
            .into_iter()
            .map(|e| audit_entry::ActiveModel {
                id: Set(format!("aud_{}", uuid::Uuid::now_v7().simple())),
                tenant_id: Set(e.tenant_id.map(String::from)),
                credential: Set(e.credential),
                method: Set(e.method),
                path: Set(e.path),
                status: Set(i32::from(e.status)),
                latency_ms: Set(e.latency_ms),
                client_ip: Set(e.client_ip),
                created_at: Set(e.at),
                platform_id: Set(e.platform_id.map(String::from)),
            })
            .collect();
        let Err(batch_error) = self.insert_audit(&rows).await else { return Ok(()) };
        if rows.len() < 2 {
            return Err(batch_error);
        }
        let mut last_error = None;
        let mut written = 0;
        for row in rows {
            match self.insert_audit(std::slice::from_ref(&row)).await {
                Ok(()) => written += 1,
                Err(e) => {
                    tracing::error!(error = %e, "an audit row was refused; the rest of its batch is written");
                    last_error = Some(e);
                }
            }
        }
        match last_error {
            Some(e) if written == 0 => Err(e),
            _ => Ok(()),
        }
    }

    async fn insert_audit(&self, rows: &[audit_entry::ActiveModel]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        match self.backend() {
            DatabaseBackend::Postgres => pg::insert_audit(self.db(), rows).await,
            _ => {
                audit_entry::Entity::insert_many(rows.iter().cloned()).exec_without_returning(self.db()).await?;
                Ok(())
            }
        }
    }

    /// The tenant's audit rows, newest first.
    pub async fn list_audit(
        &self,
        tenant: &TenantId,
        filter: &AuditFilter,
        page: &PageRequest,
    ) -> Result<Page<AuditEntry>, StoreError> {
        let mut select = audit_entry::Entity::find().filter(audit_entry::Column::TenantId.eq(tenant.as_str()));
        if let Some(from) = filter.from {
            select = select.filter(audit_entry::Column::CreatedAt.gte(from));
        }
        if let Some(to) = filter.to {
            select = select.filter(audit_entry::Column::CreatedAt.lt(to));
        }
        if let Some(status) = filter.status {
            select = select.filter(audit_entry::Column::Status.eq(i32::from(status)));
        }
        let txn = self.tenant_scope(tenant).await?;
        let page = paginate(&txn, select, audit_entry::Column::Id, |m| &m.id, page).await?;
        txn.commit().await?;
        page.try_map(|m| {
            Ok(AuditEntry {
                tenant_id: m.tenant_id.as_deref().map(super::stored).transpose()?,
                credential: m.credential,
                method: m.method,
                path: m.path,
                status: u16::try_from(m.status).unwrap_or_default(),
                latency_ms: m.latency_ms,
                client_ip: m.client_ip,
                at: m.created_at,
                platform_id: m.platform_id.as_deref().map(super::stored).transpose()?,
            })
        })
    }

    /// Deletes up to `batch` audit rows older than `cutoff`; returns how many.
    pub async fn purge_audit_batch(&self, cutoff: DateTime<Utc>, batch: u64) -> Result<u64, StoreError> {
        let old = Condition::all().add(audit_entry::Column::CreatedAt.lt(cutoff));
        let ids = super::maintenance::oldest_ids::<audit_entry::Entity>(self.db(), old, audit_entry::Column::Id, batch)
            .await?;
        if ids.is_empty() {
            return Ok(0);
        }
        Ok(audit_entry::Entity::delete_many()
            .filter(audit_entry::Column::Id.is_in(ids))
            .exec(self.db())
            .await?
            .rows_affected)
    }
}
