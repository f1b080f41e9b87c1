//! Per-subscription filters and transforms: two nullable text columns on
//! `subscriptions`, the JavaScript sources (see the dispatcher's
//! `transform` module). Deliveries and attempts get no new column: their
//! status and outcome gain the value `filtered`, which their text columns
//! already hold.
use super::schema::{add_column, text_null};
use sea_orm_migration::prelude::*;

/// Adds `filter` and `transform` to `subscriptions`.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0014_transforms"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        for column in [text_null("filter"), text_null("transform")] {
            manager.alter_table(add_column("subscriptions", column)).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in ["filter", "transform"] {
            manager
                .alter_table(
                    Table::alter().table(Alias::new("subscriptions")).drop_column(Alias::new(column)).to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
