//! A partial index of the pending deliveries by tenant and due time.
//!
//! The retry poller claims the due deliveries of one tenant (one whose
//! retries came due while the delivery loop was full, see the dispatcher's
//! `due_alarm`). Through `ix_deliveries_due` that claim would read every
//! tenant's due rows, a storm's hundred thousand included, to keep a few;
//! through `ix_deliveries_tenant` every delivery the tenant ever had. This
//! index holds only the pending rows, so it is as small as what is in
//! flight or waiting, and a delivery that succeeds at its first attempt
//! (written `succeeded`) never enters it. Both PostgreSQL and SQLite have
//! partial indexes with this syntax.
use sea_orm_migration::prelude::*;

/// Adds `ix_deliveries_tenant_due`.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0015_tenant_due_index"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX IF NOT EXISTS ix_deliveries_tenant_due ON deliveries (tenant_id, next_attempt_at) \
                 WHERE status = 'pending'",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared("DROP INDEX IF EXISTS ix_deliveries_tenant_due").await?;
        Ok(())
    }
}
