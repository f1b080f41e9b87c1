//! The outbox: claiming rows for the relay, and setting aside the ones it
//! cannot publish.
use super::fair_claim::{fair_claim, ClaimSize};
use super::pg;
use crate::domain::{now, EventId, EventType, OrderingKey, TenantId};
use crate::entity::{event, outbox};
use crate::{Store, StoreError};
use chrono::{DateTime, Duration, Utc};
use sea_orm::{ColumnTrait, Condition, DatabaseBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait};
use std::collections::HashMap;

/// An outbox row claimed by a relay, with what the message names: the
/// event's ids and type, never its payload, which stays in the store.
#[derive(Clone, Debug)]
pub struct OutboxItem {
    /// The outbox row id, to mark published after the broker's confirm.
    pub outbox_id: i64,
    /// The event to publish.
    pub event_id: EventId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// Its type.
    pub event_type: EventType,
    /// Its ordering key: fan-out marks a keyed event once fanned out.
    pub ordering_key: Option<OrderingKey>,
}

/// Why a claimed row cannot become a queue message. The words are fixed
/// and few: they label a metric and fill `outbox.quarantine_reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuarantineReason {
    /// No event has the row's event id.
    EventMissing,
    /// The row's event or tenant id does not parse.
    BadId,
    /// The event's type does not parse.
    BadEventType,
}

impl QuarantineReason {
    /// The word stored and used as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EventMissing => "event_missing",
            Self::BadId => "bad_id",
            Self::BadEventType => "bad_event_type",
        }
    }
}

/// A claimed row set aside instead of published: its ids as stored (they
/// may not parse), never anything of the event's content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuarantinedRow {
    /// The outbox row id.
    pub outbox_id: i64,
    /// The event id it names.
    pub event_id: String,
    /// The tenant id it names.
    pub tenant_id: String,
    /// Why it cannot be published.
    pub reason: QuarantineReason,
}

/// What one claim returns: the rows to publish, and those it set aside.
#[derive(Debug, Default)]
pub struct OutboxClaim {
    /// Rows to publish, oldest first, leased to this relay.
    pub items: Vec<OutboxItem>,
    /// Rows quarantined by this claim; no relay claims them again until an
    /// operator requeues them.
    pub quarantined: Vec<QuarantinedRow>,
}

/// A quarantined row as an operator lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuarantinedOutbox {
    /// The outbox row id.
    pub outbox_id: i64,
    /// The event id it names.
    pub event_id: String,
    /// The tenant id it names.
    pub tenant_id: String,
    /// When it was accepted.
    pub created_at: DateTime<Utc>,
    /// When it was set aside.
    pub quarantined_at: DateTime<Utc>,
    /// Why (a [`QuarantineReason`] word).
    pub reason: String,
}

/// Which quarantined rows an operator command acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuarantineSelection {
    /// The row with this outbox id.
    One(i64),
    /// Every quarantined row.
    All,
}

/// A claimed row as read back, with its event's type once named (`None`
/// when the event is missing).
pub(super) struct Claimed {
    pub(super) outbox_id: i64,
    pub(super) event_id: String,
    pub(super) tenant_id: String,
    pub(super) event_type: Option<String>,
    pub(super) ordering_key: Option<String>,
}

impl Claimed {
    /// The message it becomes, or why it cannot become one.
    fn into_item(self) -> Result<OutboxItem, QuarantinedRow> {
        let parsed = (self.event_id.parse::<EventId>(), self.tenant_id.parse::<TenantId>());
        let reason = match (&self.event_type, parsed) {
            (_, (Err(_), _) | (_, Err(_))) => QuarantineReason::BadId,
            (None, _) => QuarantineReason::EventMissing,
            (Some(event_type), (Ok(event_id), Ok(tenant_id))) => match event_type.parse() {
                Ok(event_type) => {
                    // The key was checked at ingest; one that no longer parses orders nothing.
                    let ordering_key = self.ordering_key.and_then(|k| k.parse().ok());
                    return Ok(OutboxItem { outbox_id: self.outbox_id, event_id, tenant_id, event_type, ordering_key });
                }
                Err(_) => QuarantineReason::BadEventType,
            },
        };
        Err(QuarantinedRow { outbox_id: self.outbox_id, event_id: self.event_id, tenant_id: self.tenant_id, reason })
    }
}

/// Which pending rows a claim may take.
#[derive(Clone, Copy)]
enum OutboxLane<'a> {
    /// Any tenant's.
    Main,
    /// Only these tenants', at most `per_tenant` each.
    Express { tenants: &'a [TenantId], per_tenant: u64 },
}

impl Store {
    /// Claims up to `limit` unpublished rows for `lease`, tenants in turn
    /// and each tenant's oldest first (see [`fair_claim`]), and quarantines
    /// those among them that cannot be published.
    ///
    /// The claim is a lease (`locked_until`) rather than a transaction held
    /// open across the publish: no connection waits on the broker, and a
    /// relay that dies mid-batch simply lets its lease run out. On
    /// PostgreSQL the inner `FOR UPDATE SKIP LOCKED` lets several relays
    /// claim side by side without blocking or taking the same rows, and the
    /// claim names its events' types in the same statement.
    ///
    /// A row whose event is gone or unreadable would otherwise come first
    /// in every claim and fail it for every tenant; it is marked
    /// quarantined instead and the rest of the batch goes ahead.
    pub async fn claim_outbox(&self, limit: u64, lease: Duration) -> Result<OutboxClaim, StoreError> {
        self.claim_outbox_in(OutboxLane::Main, limit, lease).await
    }

    /// Claims like [`Store::claim_outbox`], but only rows of `tenants`
    /// and at most `per_tenant` of each: the relay's express lane, which
    /// moves the events of tenants without a backlog while the main lane
    /// waits for the broker. The filter runs on the rows the claim reads
    /// anyway (the pending ones), so it costs no index on ingest's path.
    pub async fn claim_outbox_of(
        &self,
        tenants: &[TenantId],
        per_tenant: u64,
        limit: u64,
        lease: Duration,
    ) -> Result<OutboxClaim, StoreError> {
        if tenants.is_empty() {
            return Ok(OutboxClaim::default());
        }
        self.claim_outbox_in(OutboxLane::Express { tenants, per_tenant }, limit, lease).await
    }

    async fn claim_outbox_in(
        &self,
        lane: OutboxLane<'_>,
        limit: u64,
        lease: Duration,
    ) -> Result<OutboxClaim, StoreError> {
        let at = now();
        let mut claimable = Condition::all()
            .add(outbox::Column::PublishedAt.is_null())
            .add(outbox::Column::QuarantinedAt.is_null())
            .add(Condition::any().add(outbox::Column::LockedUntil.is_null()).add(outbox::Column::LockedUntil.lt(at)));
        let mut per_tenant_cap = None;
        if let OutboxLane::Express { tenants, per_tenant } = lane {
            claimable = claimable.add(outbox::Column::TenantId.is_in(tenants.iter().map(TenantId::as_str)));
            per_tenant_cap = Some(per_tenant);
        }
        let claimable = fair_claim(
            outbox::Entity,
            outbox::Column::Id,
            outbox::Column::TenantId,
            outbox::Column::Id,
            claimable,
            ClaimSize { limit, per_tenant: per_tenant_cap, window: None },
        );
        let claim = outbox::Entity::update_many()
            .col_expr(outbox::Column::LockedUntil, Some(at + lease).into())
            .filter(outbox::Column::Id.in_subquery(claimable));
        let postgres = self.backend() == DatabaseBackend::Postgres;
        let claimed = if postgres {
            pg::claim_outbox(self.db(), claim.into_query()).await?
        } else {
            let rows = claim.exec_with_returning(self.db()).await?;
            let unnamed = |o: outbox::Model| Claimed {
                outbox_id: o.id,
                event_id: o.event_id,
                tenant_id: o.tenant_id,
                event_type: None,
                ordering_key: None,
            };
            rows.into_iter().map(unnamed).collect()
        };
        if claimed.is_empty() {
            return Ok(OutboxClaim::default());
        }
        let ids: Vec<i64> = claimed.iter().map(|c| c.outbox_id).collect();
        let sorted = async {
            let claimed = if postgres { claimed } else { self.name_claimed(claimed).await? };
            let mut sorted = OutboxClaim::default();
            for row in claimed {
                match row.into_item() {
                    Ok(item) => sorted.items.push(item),
                    Err(poison) => sorted.quarantined.push(poison),
                }
            }
            self.quarantine_outbox(&sorted.quarantined).await?;
            sorted.items.sort_by_key(|i| i.outbox_id);
            Ok(sorted)
        }
        .await;
        if sorted.is_err() {
            // Without this the claimed rows would wait out their lease
            // (30 s) before any relay tried them again.
            let _ = self.release_outbox(&ids).await;
        }
        sorted
    }

    /// Marks rows quarantined, one statement per reason (there are three).
    async fn quarantine_outbox(&self, rows: &[QuarantinedRow]) -> Result<(), StoreError> {
        let mut by_reason: HashMap<QuarantineReason, Vec<i64>> = HashMap::new();
        for row in rows {
            by_reason.entry(row.reason).or_default().push(row.outbox_id);
        }
        let at = now();
        for (reason, ids) in by_reason {
            outbox::Entity::update_many()
                .col_expr(outbox::Column::QuarantinedAt, Some(at).into())
                .col_expr(outbox::Column::QuarantineReason, Some(reason.as_str().to_owned()).into())
                .col_expr(outbox::Column::LockedUntil, Option::<DateTime<Utc>>::None.into())
                .filter(outbox::Column::Id.is_in(ids))
                .exec(self.db())
                .await?;
        }
        Ok(())
    }

    /// Quarantined rows, oldest first, at most `limit`.
    pub async fn quarantined_outbox(&self, limit: u64) -> Result<Vec<QuarantinedOutbox>, StoreError> {
        let rows = outbox::Entity::find()
            .filter(outbox::Column::QuarantinedAt.is_not_null())
            .order_by_asc(outbox::Column::Id)
            .limit(limit)
            .all(self.db())
            .await?;
        Ok(rows
            .into_iter()
            .map(|o| QuarantinedOutbox {
                outbox_id: o.id,
                event_id: o.event_id,
                tenant_id: o.tenant_id,
                created_at: o.created_at,
                quarantined_at: o.quarantined_at.unwrap_or(o.created_at),
                reason: o.quarantine_reason.unwrap_or_default(),
            })
            .collect())
    }

    /// Makes quarantined rows claimable again (the event was restored, or
    /// the relay that quarantined it was wrong); returns how many. A row
    /// that still cannot be published is quarantined again by the next claim.
    pub async fn requeue_quarantined_outbox(&self, which: QuarantineSelection) -> Result<u64, StoreError> {
        let none = Option::<DateTime<Utc>>::None;
        let done = outbox::Entity::update_many()
            .col_expr(outbox::Column::QuarantinedAt, none.into())
            .col_expr(outbox::Column::QuarantineReason, Option::<String>::None.into())
            .col_expr(outbox::Column::LockedUntil, none.into())
            .filter(quarantined(which))
            .exec(self.db())
            .await?;
        Ok(done.rows_affected)
    }

    /// Deletes quarantined rows (their events will never be published);
    /// returns how many.
    pub async fn drop_quarantined_outbox(&self, which: QuarantineSelection) -> Result<u64, StoreError> {
        let done = outbox::Entity::delete_many().filter(quarantined(which)).exec(self.db()).await?;
        Ok(done.rows_affected)
    }

    /// Names the claimed rows' event types and keys with one read (not the
    /// payloads: loading and opening them would be wasted).
    async fn name_claimed(&self, mut claimed: Vec<Claimed>) -> Result<Vec<Claimed>, StoreError> {
        let mut named: HashMap<String, (String, Option<String>)> = event::Entity::find()
            .select_only()
            .columns([event::Column::Id, event::Column::EventType, event::Column::OrderingKey])
            .filter(event::Column::Id.is_in(claimed.iter().map(|c| c.event_id.clone())))
            .into_tuple::<(String, String, Option<String>)>()
            .all(self.db())
            .await?
            .into_iter()
            .map(|(id, event_type, key)| (id, (event_type, key)))
            .collect();
        for row in &mut claimed {
            if let Some((event_type, key)) = named.remove(&row.event_id) {
                row.event_type = Some(event_type);
                row.ordering_key = key;
            }
        }
        Ok(claimed)
    }

    /// Deletes published rows; call only after the broker confirmed them.
    ///
    /// A published row has no further use, and a delete only marks the row
    /// dead, where setting `published_at` wrote a new version of it and its
    /// index entries, to be deleted by retention later. (`published_at`
    /// stays in the schema: the claim still skips rows an older relay
    /// marked that way.)
    pub async fn delete_published_outbox(&self, ids: &[i64]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        outbox::Entity::delete_many().filter(outbox::Column::Id.is_in(ids.iter().copied())).exec(self.db()).await?;
        Ok(())
    }

    /// Gives claimed rows back at once (the publish failed), instead of
    /// leaving them to their lease.
    pub async fn release_outbox(&self, ids: &[i64]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        outbox::Entity::update_many()
            .col_expr(outbox::Column::LockedUntil, Option::<chrono::DateTime<chrono::Utc>>::None.into())
            .filter(outbox::Column::Id.is_in(ids.iter().copied()))
            .filter(outbox::Column::PublishedAt.is_null())
            .filter(outbox::Column::QuarantinedAt.is_null())
            .exec(self.db())
            .await?;
        Ok(())
    }
}

/// The quarantined rows `which` selects.
fn quarantined(which: QuarantineSelection) -> Condition {
    let cond = Condition::all().add(outbox::Column::QuarantinedAt.is_not_null());
    match which {
        QuarantineSelection::One(id) => cond.add(outbox::Column::Id.eq(id)),
        QuarantineSelection::All => cond,
    }
}
