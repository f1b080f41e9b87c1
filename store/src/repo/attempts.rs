//! Attempts: what each delivery attempt observed, as the API lists them.
use super::stored;
use crate::cipher::Cipher;
use crate::domain::{AttemptId, AttemptOutcome, DeliveryId, EventId, SubscriptionId, TenantId};
use crate::entity::attempt;
use crate::page::{paginate, Page, PageRequest};
use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

/// What the dispatcher observed in one attempt.
#[derive(Clone, Debug)]
pub struct NewAttempt {
    /// When the request started.
    pub attempted_at: DateTime<Utc>,
    /// The response status, if a response came.
    pub status_code: Option<u16>,
    /// Time to the response (or to the error).
    pub latency_ms: i64,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// The first 4 KiB of the response body.
    pub response_body: Option<String>,
}

/// A recorded attempt.
#[derive(Clone, Debug, PartialEq)]
pub struct Attempt {
    /// Its id.
    pub id: AttemptId,
    /// The delivery it belongs to.
    pub delivery_id: DeliveryId,
    /// The event sent.
    pub event_id: EventId,
    /// Where it was sent.
    pub subscription_id: SubscriptionId,
    /// 1 for the first attempt of the delivery.
    pub attempt_number: i32,
    /// When it started.
    pub attempted_at: DateTime<Utc>,
    /// The response status, if any.
    pub status_code: Option<i32>,
    /// Time to the response or error.
    pub latency_ms: i64,
    /// What it led to.
    pub outcome: AttemptOutcome,
    /// Why it failed.
    pub error: Option<String>,
    /// The start of the response body.
    pub response_body: Option<String>,
}

impl Attempt {
    /// Reads a row, opening its sealed response body. A body that does not
    /// open (its key left the keyring) is left out rather than failing the
    /// listing it is part of.
    fn from_row(m: attempt::Model, cipher: &Cipher) -> Result<Self, StoreError> {
        let response_body = m.response_body.as_deref().and_then(|body| {
            cipher
                .open_text(body, &m.id)
                .map_err(|e| tracing::warn!(attempt_id = %m.id, error = %e, "response body cannot be read"))
                .ok()
        });
        Ok(Self {
            id: stored(&m.id)?,
            delivery_id: stored(&m.delivery_id)?,
            event_id: stored(&m.event_id)?,
            subscription_id: stored(&m.subscription_id)?,
            attempt_number: m.attempt_number,
            attempted_at: m.attempted_at,
            status_code: m.status_code,
            latency_ms: m.latency_ms,
            outcome: m.outcome,
            error: m.error,
            response_body,
        })
    }
}

/// Which attempts to list.
#[derive(Clone, Copy, Debug)]
pub enum AttemptsOf<'a> {
    /// Every attempt of one event.
    Event(&'a EventId),
    /// Every attempt to one subscription.
    Subscription(&'a SubscriptionId),
}

impl Store {
    /// The tenant's attempts for an event or a subscription, newest first.
    ///
    /// The event or subscription must exist for the tenant (404 otherwise),
    /// so an empty list means "no attempts yet", not "not yours".
    pub async fn list_attempts(
        &self,
        tenant: &TenantId,
        of: AttemptsOf<'_>,
        page: &PageRequest,
    ) -> Result<Page<Attempt>, StoreError> {
        let select = attempt::Entity::find().filter(attempt::Column::TenantId.eq(tenant.as_str()));
        let select = match of {
            AttemptsOf::Event(id) => {
                self.event(tenant, id).await?;
                select.filter(attempt::Column::EventId.eq(id.as_str()))
            }
            AttemptsOf::Subscription(id) => {
                self.subscription(tenant, id).await?;
                select.filter(attempt::Column::SubscriptionId.eq(id.as_str()))
            }
        };
        let txn = self.tenant_scope(tenant).await?;
        let page = paginate(&txn, select, attempt::Column::Id, |m| &m.id, page).await?;
        txn.commit().await?;
        page.try_map(|m| Attempt::from_row(m, self.cipher()))
    }
}
