//! Access control: API keys with scopes, OAuth apps and their access tokens.
use super::schema::{index, table, text, ts};
use sea_orm_migration::prelude::*;

/// Creates `api_keys`, `oauth_apps`, `access_tokens`; every tenant's first
/// key (kept on `tenants` until now) becomes an admin key.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0004_access"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(table(
                "api_keys",
                vec![text("tenant_id"), text("name"), text("key_hash"), text("scope"), ts("created_at")],
            ))
            .await?;
        manager.create_index(index("ux_api_keys_hash", "api_keys", &["key_hash"], true)).await?;
        manager
            .create_table(table(
                "oauth_apps",
                vec![
                    text("tenant_id"),
                    text("name"),
                    text("client_id"),
                    text("client_secret_hash"),
                    text("scope"),
                    ts("created_at"),
                ],
            ))
            .await?;
        manager.create_index(index("ux_oauth_apps_client", "oauth_apps", &["client_id"], true)).await?;
        manager
            .create_table(table(
                "access_tokens",
                vec![
                    text("tenant_id"),
                    text("app_id"),
                    text("token_hash"),
                    text("scope"),
                    ts("expires_at"),
                    ts("created_at"),
                ],
            ))
            .await?;
        manager.create_index(index("ux_access_tokens_hash", "access_tokens", &["token_hash"], true)).await?;
        manager.create_index(index("ix_access_tokens_app", "access_tokens", &["app_id"], false)).await?;
        // Ids of moved keys reuse the tenant's UUID: unique, and well formed.
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO api_keys (id, tenant_id, name, key_hash, scope, created_at) \
                 SELECT 'key_' || substr(id, 5), id, 'initial', api_key_hash, 'admin', created_at FROM tenants",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in ["access_tokens", "oauth_apps", "api_keys"] {
            manager.drop_table(Table::drop().table(Alias::new(name)).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
