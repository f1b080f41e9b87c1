//! Every statement written by hand for PostgreSQL, one function each.
//!
//! The store runs on both backends through sea-orm's query builder. Where
//! PostgreSQL can do in one round trip what the builder spells as several
//! (a write and the read of what it wrote, batches bound as one JSON
//! parameter, a claim joined to the rows it names), the statement is here,
//! and the repository method that needs it picks its backend with one
//! `match`: this function on PostgreSQL, the builder's statements on
//! SQLite. The two sides are meant to do the same thing; the store's tests
//! run each such method on both backends, so a drift shows as a failing
//! test, and this file is the one place to read when reviewing for one.
//!
//! (The retry claim's `FOR UPDATE SKIP LOCKED` and the ordered-key wake
//! are single statements for both backends, with the lock clause added on
//! PostgreSQL: `fair_claim.rs` and `ordering.rs`.)
use super::attempt_recorder::{attempt_row, RECORD_CHUNK};
use super::fan_out::{FreshDelivery, FAN_OUT_CHUNK};
use super::outbox::Claimed;
use super::recordset::{pg_type, values_of, RecordSet};
use super::RecordedAttempt;
use crate::cipher::Cipher;
use crate::domain::{now, DeliveryStatus, EventId, EventType, TenantId};
use crate::entity::{attempt, audit_entry, delivery, event, outbox, rule};
use crate::StoreError;
use sea_orm::sea_query::{PostgresQueryBuilder, Query, UpdateStatement};
use sea_orm::{ActiveEnum, ConnectionTrait, DatabaseBackend, FromQueryResult, Statement, Value};
use std::collections::HashSet;

/// A PostgreSQL statement with its parameters.
fn statement(sql: String, values: impl IntoIterator<Item = Value>) -> Statement {
    Statement::from_sql_and_values(DatabaseBackend::Postgres, sql, values)
}

/// Makes the transaction `txn` run as `hookhub_tenant` for `tenant`, under
/// the row-level security policies of migration m0006.
/// `set_config('role', .., true)` is `SET LOCAL ROLE`: both settings in one
/// round trip, which every ingest batch pays.
pub(crate) async fn enter_tenant_scope(txn: &impl ConnectionTrait, tenant: &TenantId) -> Result<(), StoreError> {
    let sql = "SELECT set_config('role', 'hookhub_tenant', true), set_config('app.tenant_id', $1, true)";
    txn.execute(statement(sql.to_owned(), [tenant.to_string().into()])).await?;
    Ok(())
}

/// Audit rows in one insert.
pub(super) async fn insert_audit(
    db: &impl ConnectionTrait,
    rows: &[audit_entry::ActiveModel],
) -> Result<(), StoreError> {
    let mut set = RecordSet::of_entity::<audit_entry::Entity>()?;
    for row in rows {
        set.push_model(row)?;
    }
    let sql = set.insert(1);
    db.execute(statement(sql, [set.into_param()])).await?;
    Ok(())
}

/// Events and, for each one inserted, its outbox row: one round trip for
/// both tables, on the ingest path's critical section. The outbox rows come
/// from what the insert returned, so an event skipped by its idempotency
/// key gets none. Returns the ids inserted.
pub(super) async fn insert_events_with_outbox(
    db: &impl ConnectionTrait,
    rows: impl Iterator<Item = event::ActiveModel>,
) -> Result<Vec<String>, StoreError> {
    let mut set = RecordSet::of_entity::<event::Entity>()?;
    for row in rows {
        set.push_model(&row)?;
    }
    let sql = format!(
        "WITH e AS ({} ON CONFLICT DO NOTHING RETURNING id, tenant_id, created_at) \
         INSERT INTO outbox (event_id, tenant_id, created_at) \
         SELECT id, tenant_id, created_at FROM e RETURNING event_id",
        set.insert(1),
    );
    let rows = db.query_all(statement(sql, [set.into_param()])).await?;
    rows.iter().map(|row| Ok(row.try_get::<String>("", "event_id")?)).collect()
}

/// What an ingest batch reads before it writes, as one `UNION ALL` of two
/// reads (every round trip there delays every event of the batch): the
/// schemas of the `checked` types that validate, by name, and the rules
/// the batch's `types` trigger, oldest first.
pub(super) async fn batch_context(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    checked: &HashSet<&str>,
    types: &HashSet<&EventType>,
) -> Result<(Vec<(String, Option<serde_json::Value>)>, Vec<rule::Model>), StoreError> {
    let mut values: Vec<Value> = vec![tenant.as_str().into()];
    let mut list = |names: Vec<&str>| {
        let start = values.len() + 1;
        values.extend(names.iter().map(|&n| n.into()));
        let placeholders: Vec<String> = (start..values.len() + 1).map(|i| format!("${i}")).collect();
        format!("ARRAY[{}]::text[]", placeholders.join(", "))
    };
    let checked = list(checked.iter().copied().collect());
    let triggers = list(types.iter().map(|t| t.as_str()).collect());
    let sql = format!(
        "SELECT 'schema' AS kind, name AS id, name AS on_type, NULL::text AS emit_type, schema, \
                NULL::timestamptz AS created_at \
         FROM event_types WHERE tenant_id = $1 AND validate AND name = ANY({checked}) \
         UNION ALL \
         SELECT 'rule', id, on_type, emit_type, NULL::json, created_at \
         FROM rules WHERE tenant_id = $1 AND on_type = ANY({triggers}) \
         ORDER BY kind, id"
    );
    let (mut schemas, mut rules) = (Vec::new(), Vec::new());
    for row in db.query_all(statement(sql, values)).await? {
        let id: String = row.try_get("", "id")?;
        if row.try_get::<String>("", "kind")? == "schema" {
            schemas.push((id, row.try_get("", "schema")?));
            continue;
        }
        rules.push(rule::Model {
            id,
            tenant_id: tenant.to_string(),
            on_type: row.try_get("", "on_type")?,
            emit_type: row.try_get("", "emit_type")?,
            created_at: row.try_get("", "created_at")?,
        });
    }
    Ok((schemas, rules))
}

/// The outbox claim with its events' types in one statement: the claim's
/// `RETURNING` joined to `events`, one round trip per relay pass
/// instead of two.
pub(super) async fn claim_outbox(
    db: &impl ConnectionTrait,
    mut claim: UpdateStatement,
) -> Result<Vec<Claimed>, StoreError> {
    claim.returning(Query::returning().columns([
        outbox::Column::Id,
        outbox::Column::EventId,
        outbox::Column::TenantId,
    ]));
    let (sql, values) = claim.build(PostgresQueryBuilder);
    let sql = format!(
        "WITH c AS ({sql}) SELECT c.id, c.event_id, c.tenant_id, e.event_type, e.ordering_key \
         FROM c LEFT JOIN events e ON e.id = c.event_id"
    );
    let rows = db.query_all(statement(sql, values)).await?;
    rows.iter()
        .map(|row| {
            Ok(Claimed {
                outbox_id: row.try_get("", "id")?,
                event_id: row.try_get("", "event_id")?,
                tenant_id: row.try_get("", "tenant_id")?,
                event_type: row.try_get("", "event_type")?,
                ordering_key: row.try_get("", "ordering_key")?,
            })
        })
        .collect()
}

/// The events to fan out, each with whether it has deliveries already:
/// one statement, each event and its first delivery looked up by key (see
/// `recordset` on why not a join).
pub(super) async fn fan_out_events(
    db: &impl ConnectionTrait,
    ids: &[EventId],
) -> Result<Vec<(event::Model, bool)>, StoreError> {
    let keys = serde_json::to_string(&ids.iter().map(EventId::as_str).collect::<Vec<_>>())
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    // Not `EXISTS`: the planner may turn that into one hashed scan of
    // every delivery, and a generic plan made while the table was
    // small keeps it (seen: the whole batch waiting on it).
    let sql = "SELECT e.*, \
               (SELECT 1 FROM deliveries d WHERE d.event_id = e.id LIMIT 1) IS NOT NULL AS fanned_out \
               FROM jsonb_array_elements_text($1::jsonb) AS k(id) \
               CROSS JOIN LATERAL (SELECT * FROM events WHERE events.id = k.id LIMIT 1) e";
    let mut read = Vec::with_capacity(ids.len());
    for row in db.query_all(statement(sql.to_owned(), [keys.into()])).await? {
        read.push((event::Model::from_query_result(&row, "")?, row.try_get::<bool>("", "fanned_out")?));
    }
    Ok(read)
}

/// Each chunk's deliveries and attempts in one statement: the deliveries'
/// `INSERT ... RETURNING` names those written, and only their attempts are
/// inserted.
pub(super) async fn write_fan_out(
    db: &impl ConnectionTrait,
    fresh: &[FreshDelivery],
    cipher: &Cipher,
) -> Result<HashSet<String>, StoreError> {
    let mut written = HashSet::with_capacity(fresh.len());
    for chunk in fresh.chunks(FAN_OUT_CHUNK) {
        let mut deliveries = RecordSet::of_entity::<delivery::Entity>()?;
        let mut attempts = RecordSet::of_entity::<attempt::Entity>()?;
        for f in chunk {
            deliveries.push_model(&f.row())?;
            if let FreshDelivery::Attempted(item) = f {
                attempts.push_model(&attempt_row(item, cipher))?;
            }
        }
        let sql = format!(
            "WITH d AS ({} ON CONFLICT (event_id, subscription_id) DO NOTHING RETURNING id), \
             a AS ({} WHERE r.delivery_id IN (SELECT id FROM d)) \
             SELECT id FROM d",
            deliveries.insert(1),
            attempts.insert(2),
        );
        let values = [deliveries.into_param(), attempts.into_param()];
        let stmt = statement(sql, values);
        for row in db.query_all(stmt).await? {
            written.insert(row.try_get::<String>("", "id")?);
        }
    }
    Ok(written)
}

/// Moves the batch's deliveries on and inserts their attempts, one
/// statement per chunk: an `UPDATE ... FROM (VALUES ...)` of the
/// deliveries still pending, whose `RETURNING` feeds the attempts'
/// `INSERT` in the same statement, so an attempt is recorded exactly when
/// its delivery moved. Returns the ids of the deliveries that moved.
pub(super) async fn record_attempts(
    db: &impl ConnectionTrait,
    batch: &[RecordedAttempt],
    cipher: &Cipher,
) -> Result<HashSet<String>, StoreError> {
    // `v`'s columns: what moves the delivery on (from `moved_delivery`),
    // then the attempt row (from `attempt_row`, the one description of an
    // attempt both stores write), prefixed `a_`; each typed as its table
    // column was created.
    const MOVED: [delivery::Column; 8] = [
        delivery::Column::Id,
        delivery::Column::Status,
        delivery::Column::AttemptCount,
        delivery::Column::RetryIndex,
        delivery::Column::NextAttemptAt,
        delivery::Column::LastStatusCode,
        delivery::Column::LastError,
        delivery::Column::KeyBlocked,
    ];
    // Every column of the attempt row.
    let attempt_cols: Vec<attempt::Column> = <attempt::Column as sea_orm::Iterable>::iter().collect();
    let casts: Vec<&str> =
        MOVED.iter().map(pg_type).chain(attempt_cols.iter().map(pg_type)).collect::<Result<_, _>>()?;
    let attempt_columns: Vec<&str> = attempt_cols.iter().map(sea_orm::IdenStatic::as_str).collect();
    let v_columns: Vec<String> = MOVED
        .iter()
        .map(|c| sea_orm::IdenStatic::as_str(c).to_owned())
        .chain(attempt_columns.iter().map(|name| format!("a_{name}")))
        .collect();
    let at = now();
    let mut moved = HashSet::with_capacity(batch.len());
    for chunk in batch.chunks(RECORD_CHUNK) {
        let mut values: Vec<Value> = vec![DeliveryStatus::Pending.to_value().into(), at.into()];
        let mut rows = Vec::with_capacity(chunk.len());
        for item in chunk {
            let first = values.len() + 1;
            let params: Vec<String> =
                casts.iter().enumerate().map(|(i, cast)| format!("${}::{cast}", first + i)).collect();
            rows.push(format!("({})", params.join(", ")));
            values.extend(values_of(&item.moved_delivery().to_row(), MOVED)?);
            values.extend(values_of(&attempt_row(item, cipher), attempt_cols.iter().copied())?);
        }
        let sql = format!(
            "WITH v({}) AS (VALUES {}), \
             u AS (UPDATE deliveries AS d SET status = v.status, attempt_count = v.attempt_count, \
             retry_index = v.retry_index, next_attempt_at = v.next_attempt_at, \
             last_status_code = v.last_status_code, last_error = v.last_error, \
             key_blocked = v.key_blocked, updated_at = $2 \
             FROM v WHERE d.id = v.id AND d.status = $1 RETURNING d.id) \
             INSERT INTO attempts ({}) SELECT {} FROM v JOIN u ON u.id = v.id RETURNING delivery_id",
            v_columns.join(", "),
            rows.join(", "),
            attempt_columns.join(", "),
            attempt_columns.iter().map(|name| format!("v.a_{name}")).collect::<Vec<_>>().join(", "),
        );
        let stmt = statement(sql, values);
        for row in db.query_all(stmt).await? {
            moved.insert(row.try_get::<String>("", "delivery_id")?);
        }
    }
    Ok(moved)
}
