//! PostgreSQL row-level security: the database itself keeps tenants apart.
//!
//! Tenant-facing reads run as the role `hookhub_tenant` (`SET LOCAL ROLE`)
//! with `app.tenant_id` set for the transaction; the policies below show
//! that role only the rows of that tenant, so a query that forgets its
//! tenant filter still returns nothing of anyone else's. The hub's own
//! connection (the tables' owner) is not subject to the policies: the
//! relay and the dispatcher work across tenants by design. SQLite has no
//! row security; there the application-level filters stand alone.
use sea_orm::DatabaseBackend;
use sea_orm_migration::prelude::*;

/// Creates the role, the grants and one policy per tenant table.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0006_row_level_security"
    }
}

/// Tables keyed by `tenant_id` (`tenants` is keyed by its `id`).
pub const TENANT_TABLES: [&str; 13] = [
    "subscriptions",
    "events",
    "outbox",
    "deliveries",
    "attempts",
    "event_types",
    "rules",
    "inbound_sources",
    "api_keys",
    "oauth_apps",
    "access_tokens",
    "audit_log",
    "rate_counters",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DatabaseBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        // Roles belong to the whole server; several databases may migrate at
        // once, so a role created meanwhile by another one is fine.
        db.execute_unprepared(
            "DO $$ BEGIN \
               IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'hookhub_tenant') THEN \
                 BEGIN CREATE ROLE hookhub_tenant NOLOGIN NOBYPASSRLS; \
                 EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END; \
               END IF; \
               IF NOT pg_has_role(current_user, 'hookhub_tenant', 'MEMBER') THEN \
                 EXECUTE format('GRANT hookhub_tenant TO %I', current_user); \
               END IF; \
             END $$",
        )
        .await?;
        db.execute_unprepared(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO hookhub_tenant; \
             GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO hookhub_tenant; \
             ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO hookhub_tenant; \
             ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO hookhub_tenant;",
        )
        .await?;
        let tenant = "current_setting('app.tenant_id', true)";
        db.execute_unprepared(&format!(
            "ALTER TABLE tenants ENABLE ROW LEVEL SECURITY; \
             CREATE POLICY tenant_isolation ON tenants TO hookhub_tenant USING (id = {tenant});"
        ))
        .await?;
        for table in TENANT_TABLES {
            db.execute_unprepared(&format!(
                "ALTER TABLE {table} ENABLE ROW LEVEL SECURITY; \
                 CREATE POLICY tenant_isolation ON {table} TO hookhub_tenant \
                 USING (tenant_id = {tenant}) WITH CHECK (tenant_id = {tenant});"
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DatabaseBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        for table in TENANT_TABLES.iter().chain(&["tenants"]) {
            db.execute_unprepared(&format!(
                "DROP POLICY IF EXISTS tenant_isolation ON {table}; ALTER TABLE {table} DISABLE ROW LEVEL SECURITY;"
            ))
            .await?;
        }
        Ok(())
    }
}
