//! The portal's sessions, and the indexes its pages read by.
//!
//! `portal_sessions` holds one row per `POST /v1/portal-sessions`: the
//! one-time magic link and, once it is opened, the browser session it
//! became. Both secrets are stored only as SHA-256 digests, so a copy of
//! the database opens no portal. Rows are keyed by `tenant_id` and get the
//! tenant-isolation policy of m0006 (the lookup by digest runs on the hub's
//! own connection, before the tenant is known).
//!
//! `ix_deliveries_tenant` lets the portal's deliveries page read a tenant's
//! newest deliveries by index instead of sorting all of them.
use super::schema::{boolean, index, table, text, text_null, ts, ts_null};
use sea_orm::sea_query::ColumnDef;
use sea_orm::DatabaseBackend;
use sea_orm_migration::prelude::*;

/// Creates `portal_sessions` and the deliveries index.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0012_portal"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let ttl = ColumnDef::new(Alias::new("session_ttl_secs")).big_integer().not_null().to_owned();
        manager
            .create_table(table(
                "portal_sessions",
                vec![
                    text("tenant_id"),
                    text("link_hash"),
                    ts("link_expires_at"),
                    ts_null("link_used_at"),
                    text_null("session_hash"),
                    ts_null("session_expires_at"),
                    ttl,
                    boolean("read_only", false),
                    text_null("event_types"),
                    text_null("theme"),
                    text_null("created_by"),
                    ts("created_at"),
                ],
            ))
            .await?;
        manager.create_index(index("ux_portal_sessions_link", "portal_sessions", &["link_hash"], true)).await?;
        manager.create_index(index("ux_portal_sessions_session", "portal_sessions", &["session_hash"], true)).await?;
        manager
            .create_index(index("ix_portal_sessions_tenant", "portal_sessions", &["tenant_id", "id"], false))
            .await?;
        manager.create_index(index("ix_deliveries_tenant", "deliveries", &["tenant_id", "id"], false)).await?;
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            let tenant = "current_setting('app.tenant_id', true)";
            manager
                .get_connection()
                .execute_unprepared(&format!(
                    "ALTER TABLE portal_sessions ENABLE ROW LEVEL SECURITY; \
                     CREATE POLICY tenant_isolation ON portal_sessions TO hookhub_tenant \
                     USING (tenant_id = {tenant}) WITH CHECK (tenant_id = {tenant});"
                ))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX IF EXISTS ix_deliveries_tenant").await?;
        manager.drop_table(Table::drop().table(Alias::new("portal_sessions")).if_exists().to_owned()).await?;
        Ok(())
    }
}
