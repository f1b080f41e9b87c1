//! Fan-out's reads and writes: the events of a consumed batch, and their
//! new deliveries, each written once in the state its first attempt left.
//!
//! Fan-out makes a new delivery's first attempt before it writes the
//! delivery, so a webhook whose endpoint answers in time costs one row in
//! `deliveries` and one in `attempts`, not an insert, an update (which
//! rewrites the row and all four of its index entries) and an insert. The
//! queue message is acked only after this write, so a crash in between
//! sends those webhooks again (at least once, same `webhook-id`) and loses
//! nothing.
use super::attempt_recorder::{attempt_row, leaves_subscription_alone};
use super::events::{readable, Event};
use super::pg;
use super::{Delivery, RecordedAttempt};
use crate::cipher::Cipher;
use crate::domain::{DeliveryId, EventId};
use crate::entity::{attempt, delivery};
use crate::{Store, StoreError};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, QueryFilter, QuerySelect, QueryTrait, TransactionTrait,
};
use std::collections::{HashMap, HashSet};

/// Delivery rows per multi-row `INSERT` (12 parameters each on SQLite, well
/// below its limit); on PostgreSQL it bounds one JSON parameter.
pub(super) const FAN_OUT_CHUNK: usize = 500;

/// A new delivery as fan-out writes it.
#[derive(Clone, Debug)]
pub enum FreshDelivery {
    /// Its first attempt finished before the write: the delivery is written
    /// as the attempt left it, together with the attempt.
    Attempted(Box<RecordedAttempt>),
    /// Not attempted yet (its attempt is still running, was put off, or
    /// cannot start): written as it stands.
    Unattempted(Delivery),
}

impl FreshDelivery {
    /// The delivery's row as it is written.
    pub(super) fn row(&self) -> delivery::ActiveModel {
        match self {
            Self::Attempted(item) => item.moved_delivery().to_row(),
            Self::Unattempted(d) => d.to_row(),
        }
    }

    /// Its delivery's id.
    pub fn id(&self) -> &DeliveryId {
        match self {
            Self::Attempted(item) => &item.work.delivery.id,
            Self::Unattempted(d) => &d.id,
        }
    }
}

/// The events of a fan-out batch, read together.
#[derive(Debug, Default)]
pub struct FanOutEvents {
    /// The events by id; one that is gone, or whose payload does not open,
    /// is missing (its deliveries wait for the retry path, which abandons them).
    pub events: HashMap<String, Event>,
    /// Events that already have deliveries: a redelivered message, whose
    /// webhooks may have been sent. Only deliveries still missing are made.
    pub fanned_out: HashSet<String>,
}

impl Store {
    /// Reads the events to fan out, and which of them were fanned out before.
    ///
    /// On PostgreSQL one statement, each event and its first delivery looked
    /// up by key (see `recordset` on why not a join).
    pub async fn fan_out_events(&self, ids: &[EventId]) -> Result<FanOutEvents, StoreError> {
        let mut read = FanOutEvents::default();
        if self.backend() == DatabaseBackend::Postgres {
            for (model, fanned_out) in pg::fan_out_events(self.db(), ids).await? {
                if fanned_out {
                    read.fanned_out.insert(model.id.clone());
                }
                let id = model.id.clone();
                read.events.extend(readable(model, self.cipher()).map(|e| (id, e)));
            }
            return Ok(read);
        }
        read.events = self.events_for_delivery(ids).await?;
        for chunk in ids.chunks(FAN_OUT_CHUNK) {
            let fanned: Vec<String> = delivery::Entity::find()
                .select_only()
                .column(delivery::Column::EventId)
                .distinct()
                .filter(delivery::Column::EventId.is_in(chunk.iter().map(EventId::as_str)))
                .into_tuple()
                .all(self.reader())
                .await?;
            read.fanned_out.extend(fanned);
        }
        Ok(read)
    }

    /// Writes new deliveries, with the attempts of those already attempted;
    /// returns the ids of those written.
    ///
    /// The (event, subscription) pair is unique, so a delivery that exists
    /// already (a redelivered message) is skipped, attempt and all. A
    /// finished attempt's subscription is settled (failure streak, breaker)
    /// in the same transaction; when none needs it (every attempt succeeded
    /// on an endpoint that was not failing, the hot path) a PostgreSQL chunk
    /// is one statement without `BEGIN`/`COMMIT`.
    pub async fn write_fan_out(
        &self,
        fresh: &[FreshDelivery],
        breaker: super::BreakerPolicy,
    ) -> Result<HashSet<String>, StoreError> {
        let attempted: Vec<&RecordedAttempt> = fresh
            .iter()
            .filter_map(|f| match f {
                FreshDelivery::Attempted(item) => Some(&**item),
                FreshDelivery::Unattempted(_) => None,
            })
            .collect();
        let postgres = self.backend() == DatabaseBackend::Postgres;
        if postgres && attempted.iter().all(|item| leaves_subscription_alone(item)) {
            return pg::write_fan_out(self.db(), fresh, self.cipher()).await;
        }
        let txn = self.db().begin().await?;
        let cipher = self.cipher();
        let written = if postgres {
            pg::write_fan_out(&txn, fresh, cipher).await?
        } else {
            write_chunks(&txn, fresh, cipher).await?
        };
        let settled = attempted.into_iter().filter(|item| written.contains(item.work.delivery.id.as_str()));
        Self::settle_subscriptions(&txn, settled, breaker, self.cipher()).await?;
        txn.commit().await?;
        Ok(written)
    }
}

/// The same with separate statements (on SQLite a statement is a function
/// call, not a round trip).
async fn write_chunks(
    db: &impl ConnectionTrait,
    fresh: &[FreshDelivery],
    cipher: &Cipher,
) -> Result<HashSet<String>, StoreError> {
    let mut written = HashSet::with_capacity(fresh.len());
    for chunk in fresh.chunks(FAN_OUT_CHUNK) {
        let mut insert = delivery::Entity::insert_many(chunk.iter().map(FreshDelivery::row)).on_conflict(
            OnConflict::columns([delivery::Column::EventId, delivery::Column::SubscriptionId]).do_nothing().to_owned(),
        );
        insert.query().returning_col(delivery::Column::Id);
        for row in db.query_all(insert.build(db.get_database_backend())).await? {
            written.insert(row.try_get::<String>("", "id")?);
        }
        let attempts: Vec<attempt::ActiveModel> = chunk
            .iter()
            .filter_map(|f| match f {
                FreshDelivery::Attempted(item) if written.contains(f.id().as_str()) => Some(attempt_row(item, cipher)),
                _ => None,
            })
            .collect();
        if !attempts.is_empty() {
            attempt::Entity::insert_many(attempts).exec_without_returning(db).await?;
        }
    }
    Ok(written)
}
