//! The platform's side: tenants a platform manages over the API, their
//! suspension, and the jobs that erase them.
//!
//! A platform is itself a tenant row (`is_platform`): its credentials carry
//! the `platform` scope, its own subscriptions receive the `tenant.*`
//! events, and the tenants it creates name it in `platform_id`, with the
//! platform's own id for each in `external_id` (unique per platform).
//! `audit_log.platform_id` records the platform behind a call it made for
//! one of its tenants. `tenant_erasures` holds the deletion jobs; it has
//! no policy for `hookhub_tenant`, so under row-level security no tenant
//! scope can read it.
use super::schema::{add_column, bigint, boolean, index, table, text, text_null, ts, ts_null};
use sea_orm::DatabaseBackend;
use sea_orm_migration::prelude::*;

/// Adds the platform columns to `tenants` and `audit_log`, and `tenant_erasures`.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0011_platform"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut status = text("status");
        status.default("active");
        // One column per statement: SQLite alters one thing at a time.
        for column in [
            text_null("external_id"),
            text_null("platform_id"),
            status,
            text_null("metadata"),
            boolean("is_platform", false),
        ] {
            manager.alter_table(add_column("tenants", column)).await?;
        }
        manager.alter_table(add_column("audit_log", text_null("platform_id"))).await?;
        manager
            .create_index(index("ux_tenants_platform_external", "tenants", &["platform_id", "external_id"], true))
            .await?;
        manager.create_index(index("ix_tenants_platform", "tenants", &["platform_id", "id"], false)).await?;
        manager
            .create_table(table(
                "tenant_erasures",
                vec![
                    text("tenant_id"),
                    text_null("platform_id"),
                    text("status"),
                    bigint("rows_erased"),
                    text_null("error"),
                    ts("created_at"),
                    ts_null("finished_at"),
                ],
            ))
            .await?;
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared("ALTER TABLE tenant_erasures ENABLE ROW LEVEL SECURITY")
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Alias::new("tenant_erasures")).if_exists().to_owned()).await?;
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX IF EXISTS ix_tenants_platform").await?;
        db.execute_unprepared("DROP INDEX IF EXISTS ux_tenants_platform_external").await?;
        manager
            .alter_table(
                Table::alter().table(Alias::new("audit_log")).drop_column(Alias::new("platform_id")).to_owned(),
            )
            .await?;
        for column in ["external_id", "platform_id", "status", "metadata", "is_platform"] {
            manager
                .alter_table(Table::alter().table(Alias::new("tenants")).drop_column(Alias::new(column)).to_owned())
                .await?;
        }
        Ok(())
    }
}
