//! The audit log, tenant plans and the shared rate-limit counters.
use super::schema::{add_column, bigint, index, int, table, text, text_null, ts};
use sea_orm_migration::prelude::*;

/// Creates `audit_log` and `rate_counters`, and gives tenants a plan.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0005_audit_and_limits"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(table(
                "audit_log",
                vec![
                    text_null("tenant_id"),
                    text_null("credential"),
                    text("method"),
                    text("path"),
                    int("status", 0),
                    bigint("latency_ms"),
                    text_null("client_ip"),
                    ts("created_at"),
                ],
            ))
            .await?;
        manager.create_index(index("ix_audit_log_tenant", "audit_log", &["tenant_id", "id"], false)).await?;
        manager.create_index(index("ix_audit_log_created", "audit_log", &["created_at"], false)).await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("rate_counters"))
                    .if_not_exists()
                    .col(text("tenant_id"))
                    .col(bigint("window_secs"))
                    .col(bigint("window_start"))
                    .col(bigint("count"))
                    .primary_key(
                        Index::create()
                            .col(Alias::new("tenant_id"))
                            .col(Alias::new("window_secs"))
                            .col(Alias::new("window_start")),
                    )
                    .to_owned(),
            )
            .await?;
        let mut plan = text("plan");
        plan.default("unlimited");
        manager.alter_table(add_column("tenants", plan)).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in ["rate_counters", "audit_log"] {
            manager.drop_table(Table::drop().table(Alias::new(name)).if_exists().to_owned()).await?;
        }
        manager
            .alter_table(Table::alter().table(Alias::new("tenants")).drop_column(Alias::new("plan")).to_owned())
            .await?;
        Ok(())
    }
}
