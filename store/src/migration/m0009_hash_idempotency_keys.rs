//! Rewrites the idempotency keys stored in clear into their digests (see
//! `domain::IdempotencyKey`), so a key sent again after the upgrade still
//! finds its event.
//!
//! Stored keys do not say who sent them, only how they were written: an
//! inbound callback's as `stripe:<id>` or `generic:<id>`, a rule's as
//! `rule:<rule>:<trigger>`, anything else by an API client. A gateway key
//! goes to the namespace of the tenant's oldest source of that kind (which
//! is the only one in every tenant seen so far); one whose tenant has no
//! such source any more, like any other key, to the API's namespace.
//! PostgreSQL does it in one statement with `sha256()`; SQLite has no
//! hash function, so there the rows are read and rewritten here.
use crate::domain::{IdempotencyKey, InboundSourceId, KeyNamespace, TenantId};
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement, TransactionTrait};
use sea_orm_migration::prelude::*;
use std::collections::HashMap;

/// Hashes every stored idempotency key.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0009_hash_idempotency_keys"
    }
}

/// The prefixes the rules and inbound callbacks wrote their keys with.
const RULE_PREFIX: &str = "rule:";

/// The same mapping as [`legacy_namespace`], in SQL: the tenant, NUL, the
/// namespace, NUL, the key, hashed.
const REWRITE_ON_PG: &str = r"
UPDATE events AS e SET idempotency_key = encode(sha256(
    convert_to(e.tenant_id, 'UTF8') || '\x00'::bytea || convert_to(n.ns, 'UTF8') || '\x00'::bytea
    || convert_to(n.key, 'UTF8')), 'hex')
FROM (
    SELECT ev.id,
        CASE WHEN src.id IS NOT NULL THEN 'inbound:' || src.id
             WHEN ev.idempotency_key LIKE 'rule:%' THEN 'rule'
             ELSE 'api' END AS ns,
        CASE WHEN src.id IS NOT NULL THEN substr(ev.idempotency_key, length(src.kind) + 2)
             WHEN ev.idempotency_key LIKE 'rule:%' THEN substr(ev.idempotency_key, 6)
             ELSE ev.idempotency_key END AS key
    FROM events ev
    LEFT JOIN LATERAL (
        SELECT s.id, s.kind FROM inbound_sources s
        WHERE s.tenant_id = ev.tenant_id AND ev.idempotency_key LIKE s.kind || ':%'
        ORDER BY s.created_at, s.id LIMIT 1
    ) src ON true
    WHERE ev.idempotency_key IS NOT NULL
) n
WHERE e.id = n.id";

/// The namespace and key a key stored in clear belongs to; `sources` maps
/// (tenant, kind) to the tenant's oldest source of that kind.
fn legacy_namespace<'k>(
    tenant: &str,
    stored: &'k str,
    sources: &HashMap<(String, String), InboundSourceId>,
) -> (KeyNamespace, &'k str) {
    if let Some((kind, id)) = stored.split_once(':') {
        if let Some(source) = sources.get(&(tenant.to_owned(), kind.to_owned())) {
            return (KeyNamespace::Inbound(source.clone()), id);
        }
    }
    match stored.strip_prefix(RULE_PREFIX) {
        Some(key) => (KeyNamespace::Rule, key),
        None => (KeyNamespace::Api, stored),
    }
}

/// SQLite: every keyed event read, hashed here, and written back in one transaction.
async fn rewrite_here(db: &impl TransactionTrait) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    let backend = DatabaseBackend::Sqlite;
    let corrupt = |what: &str| DbErr::Custom(format!("m0009: unreadable {what}"));
    let mut sources = HashMap::new();
    let rows = txn
        .query_all(Statement::from_string(
            backend,
            "SELECT id, tenant_id, kind FROM inbound_sources ORDER BY created_at DESC, id DESC",
        ))
        .await?;
    // Newest first, so the oldest of each kind is inserted last and stays.
    for row in rows {
        let id: String = row.try_get("", "id")?;
        let id: InboundSourceId = id.parse().map_err(|_| corrupt("inbound source id"))?;
        sources.insert((row.try_get("", "tenant_id")?, row.try_get("", "kind")?), id);
    }
    let rows = txn
        .query_all(Statement::from_string(
            backend,
            "SELECT id, tenant_id, idempotency_key FROM events WHERE idempotency_key IS NOT NULL",
        ))
        .await?;
    for row in rows {
        let (id, tenant, stored): (String, String, String) =
            (row.try_get("", "id")?, row.try_get("", "tenant_id")?, row.try_get("", "idempotency_key")?);
        let (namespace, key) = legacy_namespace(&tenant, &stored, &sources);
        let tenant: TenantId = tenant.parse().map_err(|_| corrupt("tenant id"))?;
        let digest = IdempotencyKey::new(&tenant, &namespace, key);
        txn.execute(Statement::from_sql_and_values(
            backend,
            "UPDATE events SET idempotency_key = ? WHERE id = ?",
            [digest.as_str().into(), id.into()],
        ))
        .await?;
    }
    txn.commit().await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            db.execute_unprepared(REWRITE_ON_PG).await?;
            return Ok(());
        }
        rewrite_here(db).await
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        // A digest cannot be turned back into its key.
        Err(DbErr::Migration("m0009: idempotency keys were hashed; there is no way back".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_keys_find_their_namespace() {
        let tenant = TenantId::generate();
        let source = InboundSourceId::generate();
        let sources = HashMap::from([((tenant.to_string(), "stripe".to_owned()), source.clone())]);
        let of = |key| legacy_namespace(tenant.as_str(), key, &sources);
        assert_eq!(of("stripe:evt_1"), (KeyNamespace::Inbound(source), "evt_1"));
        assert_eq!(of("generic:msg_1"), (KeyNamespace::Api, "generic:msg_1"), "no generic source");
        assert_eq!(of("rule:rul_1:evt_2"), (KeyNamespace::Rule, "rul_1:evt_2"));
        assert_eq!(of("order 42: paid"), (KeyNamespace::Api, "order 42: paid"));
    }
}
