//! Schema migrations, run by `hookhub migrate` and at the start of `serve`.

mod m0001_initial;
mod m0002_integrations;
mod m0003_reliability;
mod m0004_access;
mod m0005_audit_and_limits;
mod m0006_row_level_security;
mod m0007_outbox_pending_index;
mod m0008_drop_attempts_delivery_index;
mod m0009_hash_idempotency_keys;
mod m0010_outbox_quarantine;
mod m0011_platform;
mod m0012_portal;
mod m0013_ordering;
mod m0014_transforms;
mod m0015_tenant_due_index;
mod schema;

use sea_orm_migration::prelude::*;

/// Every migration, in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_initial::Migration),
            Box::new(m0002_integrations::Migration),
            Box::new(m0003_reliability::Migration),
            Box::new(m0004_access::Migration),
            Box::new(m0005_audit_and_limits::Migration),
            Box::new(m0006_row_level_security::Migration),
            Box::new(m0007_outbox_pending_index::Migration),
            Box::new(m0008_drop_attempts_delivery_index::Migration),
            Box::new(m0009_hash_idempotency_keys::Migration),
            Box::new(m0010_outbox_quarantine::Migration),
            Box::new(m0011_platform::Migration),
            Box::new(m0012_portal::Migration),
            Box::new(m0013_ordering::Migration),
            Box::new(m0014_transforms::Migration),
            Box::new(m0015_tenant_due_index::Migration),
        ]
    }
}
