//! Event type catalogue, rules and inbound gateway sources.
use super::schema::{boolean, index, json_null, table, text, ts};
use sea_orm_migration::prelude::*;

/// Creates `event_types`, `rules` and `inbound_sources`.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0002_integrations"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(table(
                "event_types",
                vec![
                    text("tenant_id"),
                    text("name"),
                    text("description"),
                    json_null("schema"),
                    json_null("example"),
                    boolean("validate", false),
                    ts("created_at"),
                ],
            ))
            .await?;
        manager.create_index(index("ux_event_types_name", "event_types", &["tenant_id", "name"], true)).await?;
        manager
            .create_table(table("rules", vec![text("tenant_id"), text("on_type"), text("emit_type"), ts("created_at")]))
            .await?;
        manager.create_index(index("ux_rules", "rules", &["tenant_id", "on_type", "emit_type"], true)).await?;
        manager
            .create_table(table(
                "inbound_sources",
                vec![text("tenant_id"), text("kind"), text("token"), text("signing_secret"), ts("created_at")],
            ))
            .await?;
        manager.create_index(index("ux_inbound_sources_token", "inbound_sources", &["token"], true)).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in ["inbound_sources", "rules", "event_types"] {
            manager.drop_table(Table::drop().table(Alias::new(name)).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
