//! The first schema: tenants, subscriptions, events, outbox, deliveries, attempts.
use super::schema::{bigint, index, int, int_null, json, table, text, text_null, ts, ts_null};
use sea_orm_migration::prelude::*;

/// Creates every table and the indexes the hot queries need.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0001_initial"
    }
}

fn outbox() -> TableCreateStatement {
    Table::create()
        .table(Alias::new("outbox"))
        .if_not_exists()
        .col(ColumnDef::new(Alias::new("id")).big_integer().not_null().auto_increment().primary_key())
        .col(text("event_id"))
        .col(text("tenant_id"))
        .col(ts("created_at"))
        .col(ts_null("locked_until"))
        .col(ts_null("published_at"))
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            table("tenants", vec![text("name"), text("api_key_hash").unique_key().to_owned(), ts("created_at")]),
            table(
                "subscriptions",
                vec![
                    text("tenant_id"),
                    text("url"),
                    text("description"),
                    json("event_types"),
                    text("secret"),
                    text("status"),
                    text_null("disabled_reason"),
                    ts("created_at"),
                    ts("updated_at"),
                ],
            ),
            table(
                "events",
                vec![
                    text("tenant_id"),
                    text("event_type"),
                    json("data"),
                    text_null("idempotency_key"),
                    ts("created_at"),
                ],
            ),
            outbox(),
            table(
                "deliveries",
                vec![
                    text("tenant_id"),
                    text("event_id"),
                    text("subscription_id"),
                    text("status"),
                    int("attempt_count", 0),
                    int("retry_index", 0),
                    ts_null("next_attempt_at"),
                    int_null("last_status_code"),
                    text_null("last_error"),
                    ts("created_at"),
                    ts("updated_at"),
                ],
            ),
            table(
                "attempts",
                vec![
                    text("tenant_id"),
                    text("delivery_id"),
                    text("event_id"),
                    text("subscription_id"),
                    int("attempt_number", 0),
                    ts("attempted_at"),
                    int_null("status_code"),
                    bigint("latency_ms"),
                    text("outcome"),
                    text_null("error"),
                    text_null("response_body"),
                ],
            ),
        ] {
            manager.create_table(t).await?;
        }
        for idx in [
            index("ix_subscriptions_tenant", "subscriptions", &["tenant_id", "id"], false),
            index("ux_events_idempotency", "events", &["tenant_id", "idempotency_key"], true),
            index("ix_events_tenant", "events", &["tenant_id", "id"], false),
            // The relay scans unpublished rows in id order.
            index("ix_outbox_unpublished", "outbox", &["published_at", "id"], false),
            // One delivery per (event, subscription) makes fan-out idempotent
            // when the broker hands the same event over twice.
            index("ux_deliveries_event_sub", "deliveries", &["event_id", "subscription_id"], true),
            index("ix_deliveries_due", "deliveries", &["status", "next_attempt_at"], false),
            index("ix_deliveries_subscription", "deliveries", &["subscription_id"], false),
            index("ix_attempts_event", "attempts", &["event_id", "id"], false),
            index("ix_attempts_subscription", "attempts", &["subscription_id", "id"], false),
            index("ix_attempts_delivery", "attempts", &["delivery_id"], false),
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
