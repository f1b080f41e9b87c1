//! The first schema: tenants, subscriptions, events, outbox, deliveries, attempts.
//!
//! Tables are generated from the entities, which is only safe for this first
//! migration: later ones must spell out their changes, so that an entity edit
//! never rewrites history.
use crate::entity::{attempt, delivery, event, outbox, subscription, tenant};
use sea_orm::{EntityTrait, Schema};
use sea_orm_migration::prelude::*;

/// Creates every table and the indexes the hot queries need.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0001_initial"
    }
}

fn create<E: EntityTrait>(schema: &Schema, entity: E) -> TableCreateStatement {
    schema.create_table_from_entity(entity).if_not_exists().to_owned()
}

fn index(name: &str, table: impl IntoIden + 'static, cols: &[&'static str], unique: bool) -> IndexCreateStatement {
    let mut idx = Index::create();
    idx.name(name).table(table).if_not_exists();
    for col in cols {
        idx.col(Alias::new(*col));
    }
    if unique {
        idx.unique();
    }
    idx.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let schema = Schema::new(manager.get_database_backend());
        for table in [
            create(&schema, tenant::Entity),
            create(&schema, subscription::Entity),
            create(&schema, event::Entity),
            create(&schema, outbox::Entity),
            create(&schema, delivery::Entity),
            create(&schema, attempt::Entity),
        ] {
            manager.create_table(table).await?;
        }
        for idx in [
            index("ix_subscriptions_tenant", subscription::Entity, &["tenant_id", "id"], false),
            index("ux_events_idempotency", event::Entity, &["tenant_id", "idempotency_key"], true),
            index("ix_events_tenant", event::Entity, &["tenant_id", "id"], false),
            // The relay scans unpublished rows in id order.
            index("ix_outbox_unpublished", outbox::Entity, &["published_at", "id"], false),
            // One delivery per (event, subscription) makes fan-out idempotent
            // when the broker hands the same event over twice.
            index("ux_deliveries_event_sub", delivery::Entity, &["event_id", "subscription_id"], true),
            index("ix_deliveries_due", delivery::Entity, &["status", "next_attempt_at"], false),
            index("ix_deliveries_subscription", delivery::Entity, &["subscription_id"], false),
            index("ix_attempts_event", attempt::Entity, &["event_id", "id"], false),
            index("ix_attempts_subscription", attempt::Entity, &["subscription_id", "id"], false),
            index("ix_attempts_delivery", attempt::Entity, &["delivery_id"], false),
        ] {
            manager.create_index(idx).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["attempts", "deliveries", "outbox", "events", "subscriptions", "tenants"] {
            manager.drop_table(Table::drop().table(Alias::new(table)).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
