//! Event type catalogue, rules and inbound gateway sources.
use sea_orm_migration::prelude::*;

/// Creates `event_types`, `rules` and `inbound_sources`.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0002_integrations"
    }
}

fn text(name: &'static str) -> ColumnDef {
    ColumnDef::new(Alias::new(name)).string().not_null().to_owned()
}

fn created_at() -> ColumnDef {
    ColumnDef::new(Alias::new("created_at")).timestamp_with_time_zone().not_null().to_owned()
}

fn table(name: &'static str, columns: Vec<ColumnDef>) -> TableCreateStatement {
    let mut t = Table::create();
    t.table(Alias::new(name)).if_not_exists().col(text("id").primary_key());
    for mut c in columns {
        t.col(&mut c);
    }
    t.to_owned()
}

fn unique(name: &str, table: &'static str, cols: &[&'static str]) -> IndexCreateStatement {
    let mut idx = Index::create();
    idx.name(name).table(Alias::new(table)).unique().if_not_exists();
    for c in cols {
        idx.col(Alias::new(*c));
    }
    idx.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let json = |name: &'static str| ColumnDef::new(Alias::new(name)).json().null().to_owned();
        manager
            .create_table(table(
                "event_types",
                vec![
                    text("tenant_id"),
                    text("name"),
                    text("description"),
                    json("schema"),
                    json("example"),
                    ColumnDef::new(Alias::new("validate")).boolean().not_null().default(false).to_owned(),
                    created_at(),
                ],
            ))
            .await?;
        manager.create_index(unique("ux_event_types_name", "event_types", &["tenant_id", "name"])).await?;
        manager
            .create_table(table("rules", vec![text("tenant_id"), text("on_type"), text("emit_type"), created_at()]))
            .await?;
        manager.create_index(unique("ux_rules", "rules", &["tenant_id", "on_type", "emit_type"])).await?;
        manager
            .create_table(table(
                "inbound_sources",
                vec![text("tenant_id"), text("kind"), text("token"), text("signing_secret"), created_at()],
            ))
            .await?;
        manager.create_index(unique("ux_inbound_sources_token", "inbound_sources", &["token"])).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in ["inbound_sources", "rules", "event_types"] {
            manager.drop_table(Table::drop().table(Alias::new(name)).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
