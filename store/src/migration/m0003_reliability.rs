//! Secret rotation, the circuit breaker and per-subscription rate limits.
use super::schema::{add_column, int, int_null, text_null, ts_null};
use sea_orm_migration::prelude::*;

/// Adds the subscription columns rotation, the breaker and rate limits need.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0003_reliability"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        for column in [
            text_null("previous_secret"),
            ts_null("previous_secret_expires_at"),
            int("failure_streak", 0),
            ts_null("failing_since"),
            int_null("rate_limit_per_second"),
        ] {
            manager.alter_table(add_column("subscriptions", column)).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            "previous_secret",
            "previous_secret_expires_at",
            "failure_streak",
            "failing_since",
            "rate_limit_per_second",
        ] {
            manager
                .alter_table(
                    Table::alter().table(Alias::new("subscriptions")).drop_column(Alias::new(column)).to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
