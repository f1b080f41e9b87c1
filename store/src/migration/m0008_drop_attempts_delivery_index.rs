//! Drops `ix_attempts_delivery`, an index no query reads.
//!
//! Attempts are listed by event and by subscription (their own indexes) and
//! purged by event; nothing looks them up by delivery. Every recorded
//! attempt still paid for the entry: one of four index insertions per
//! attempt row on the hottest write of the dispatcher.
use sea_orm_migration::prelude::*;

/// Drops `ix_attempts_delivery`.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0008_drop_attempts_delivery_index"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared("DROP INDEX IF EXISTS ix_attempts_delivery").await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("CREATE INDEX IF NOT EXISTS ix_attempts_delivery ON attempts (delivery_id)").await?;
        Ok(())
    }
}
