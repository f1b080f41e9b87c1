//! Quarantine for outbox rows the relay cannot publish.
//!
//! A row whose event is gone, or whose ids or type do not parse, can never
//! become a queue message. Left claimable it would be claimed first on
//! every relay pass (the claim takes the oldest rows), so the relay marks it
//! `quarantined_at` with a short, fixed `quarantine_reason` and the claim
//! passes over it. The pending index leaves quarantined rows out, so they
//! cost the claim nothing; a second partial index keeps listing them
//! (`hookhub outbox quarantined`) cheap however large the backlog.
use super::schema::{add_column, text_null, ts_null};
use sea_orm_migration::prelude::*;

/// Adds `outbox.quarantined_at` and `outbox.quarantine_reason`.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0010_outbox_quarantine"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        for column in [ts_null("quarantined_at"), text_null("quarantine_reason")] {
            manager.alter_table(add_column("outbox", column)).await?;
        }
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX IF EXISTS ix_outbox_pending").await?;
        db.execute_unprepared(
            "CREATE INDEX IF NOT EXISTS ix_outbox_pending ON outbox (id) \
             WHERE published_at IS NULL AND quarantined_at IS NULL",
        )
        .await?;
        db.execute_unprepared(
            "CREATE INDEX IF NOT EXISTS ix_outbox_quarantined ON outbox (id) WHERE quarantined_at IS NOT NULL",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX IF EXISTS ix_outbox_quarantined").await?;
        db.execute_unprepared("DROP INDEX IF EXISTS ix_outbox_pending").await?;
        db.execute_unprepared("CREATE INDEX IF NOT EXISTS ix_outbox_pending ON outbox (id) WHERE published_at IS NULL")
            .await?;
        for column in ["quarantined_at", "quarantine_reason"] {
            manager
                .alter_table(Table::alter().table(Alias::new("outbox")).drop_column(Alias::new(column)).to_owned())
                .await?;
        }
        Ok(())
    }
}
