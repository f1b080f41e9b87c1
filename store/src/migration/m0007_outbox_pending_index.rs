//! A partial index holding only the outbox rows still to publish.
//!
//! The relay claims "unpublished, oldest first". With the composite index
//! of m0001 the planner walked the primary key instead and filtered out
//! every published row on each claim: measured at ~13,600 rows and 5–8 ms
//! per claim after 20 s of load, growing with the table until retention
//! purged it. A partial index on `id` is exactly that ordered set and
//! stays as small as the backlog. Both PostgreSQL and SQLite have partial
//! indexes with this syntax.
use sea_orm_migration::prelude::*;

/// Replaces `ix_outbox_unpublished` with `ix_outbox_pending`.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0007_outbox_pending_index"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("CREATE INDEX IF NOT EXISTS ix_outbox_pending ON outbox (id) WHERE published_at IS NULL")
            .await?;
        db.execute_unprepared("DROP INDEX IF EXISTS ix_outbox_unpublished").await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("CREATE INDEX IF NOT EXISTS ix_outbox_unpublished ON outbox (published_at, id)").await?;
        db.execute_unprepared("DROP INDEX IF EXISTS ix_outbox_pending").await?;
        Ok(())
    }
}
