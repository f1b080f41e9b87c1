//! Ordered delivery per key.
//!
//! - `events.ordering_key`: the key an event was ingested with, if any;
//!   `events.fan_out_pending`: true from ingest until fan-out has written
//!   the event's deliveries, set only on events with a key. An ordered
//!   delivery waits while an earlier event of its key is still being
//!   fanned out, so a later event that overtook it in the queue (a
//!   redelivered message, another dispatcher) cannot go first.
//! - `subscriptions.ordering` (`unordered` | `per_key`) and
//!   `subscriptions.on_dead_letter` (`skip` | `block`).
//! - `deliveries.ordering_key`: copied from the event, only for ordered
//!   subscriptions (NULL keeps a delivery on the unordered path);
//!   `deliveries.key_blocked`: a dead-lettered delivery that still holds
//!   its key (`on_dead_letter: block`) until it is skipped or redelivered.
//!
//! Two partial indexes, both as small as what waits: the claim's "is an
//! earlier delivery of this key still open" and "is an earlier event of
//! this key still being fanned out" are index probes. Their predicates use
//! literals, not parameters, so that PostgreSQL can match them to the
//! claim's statement (see `deliveries::KEY_HEAD`). Both backends have
//! partial indexes with this syntax.
use super::schema::{add_column, boolean, text, text_null};
use sea_orm_migration::prelude::*;

/// Adds the ordering columns and their indexes.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0013_ordering"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut ordering = text("ordering");
        ordering.default("unordered");
        let mut on_dead_letter = text("on_dead_letter");
        on_dead_letter.default("skip");
        // One column per statement: SQLite alters one thing at a time.
        for (table, column) in [
            ("events", text_null("ordering_key")),
            ("events", boolean("fan_out_pending", false)),
            ("subscriptions", ordering),
            ("subscriptions", on_dead_letter),
            ("deliveries", text_null("ordering_key")),
            ("deliveries", boolean("key_blocked", false)),
        ] {
            manager.alter_table(add_column(table, column)).await?;
        }
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE INDEX IF NOT EXISTS ix_deliveries_key_open ON deliveries (subscription_id, ordering_key, event_id) \
             WHERE ordering_key IS NOT NULL AND (status = 'pending' OR key_blocked)",
        )
        .await?;
        db.execute_unprepared(
            "CREATE INDEX IF NOT EXISTS ix_events_key_fan_out ON events (tenant_id, ordering_key, id) \
             WHERE fan_out_pending",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX IF EXISTS ix_events_key_fan_out").await?;
        db.execute_unprepared("DROP INDEX IF EXISTS ix_deliveries_key_open").await?;
        for (table, column) in [
            ("deliveries", "key_blocked"),
            ("deliveries", "ordering_key"),
            ("subscriptions", "on_dead_letter"),
            ("subscriptions", "ordering"),
            ("events", "fan_out_pending"),
            ("events", "ordering_key"),
        ] {
            manager
                .alter_table(Table::alter().table(Alias::new(table)).drop_column(Alias::new(column)).to_owned())
                .await?;
        }
        Ok(())
    }
}
