//! The pending outbox rows by tenant, for the backlog guard's grouped count.
//!
//! Ingest refuses a tenant whose unpublished backlog is over
//! `HOOKHUB_TENANT_BACKLOG_LIMIT`, and learns which tenants are over with
//! one `GROUP BY tenant_id` over the pending rows every 250 ms. The pending
//! index of m0010 is on `id` only, so the count would visit the table row
//! for each pending event to read its tenant; this index holds the tenant
//! of each pending row and stays as small as the backlog. With `id` second
//! it also lists one tenant's pending rows oldest first.
use sea_orm_migration::prelude::*;

/// Adds `ix_outbox_pending_tenant`.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0012_outbox_pending_by_tenant"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX IF NOT EXISTS ix_outbox_pending_tenant ON outbox (tenant_id, id) \
                 WHERE published_at IS NULL AND quarantined_at IS NULL",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared("DROP INDEX IF EXISTS ix_outbox_pending_tenant").await?;
        Ok(())
    }
}
