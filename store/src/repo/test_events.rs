//! Test events: an event of a chosen type sent to one subscription only,
//! so an endpoint's owner can check their receiver without waking every
//! other subscriber of that type.
use super::deliveries::Delivery;
use super::events::Event;
use crate::domain::{now, EventId, EventType, SubscriptionId, SubscriptionStatus, TenantId};
use crate::entity::{delivery, event};
use crate::{Store, StoreError};
use sea_orm::{ActiveValue::Set, EntityTrait};

impl Store {
    /// Writes an event of `event_type` with `data` and one delivery of it to
    /// `subscription`, due now; the retry path sends it like any other.
    ///
    /// It has no outbox row, so fan-out never sees it: it reaches no other
    /// subscription, and the tenant's rules do not derive events from it.
    /// A disabled subscription is refused, as a redelivery to it is.
    pub async fn send_test_event(
        &self,
        tenant: &TenantId,
        subscription: &SubscriptionId,
        event_type: EventType,
        data: serde_json::Value,
    ) -> Result<Event, StoreError> {
        let sub = self.subscription(tenant, subscription).await?;
        if sub.status != SubscriptionStatus::Active {
            return Err(StoreError::Conflict("subscription is disabled".into()));
        }
        let at = now();
        let event = Event {
            id: EventId::generate(),
            tenant_id: tenant.clone(),
            event_type,
            data,
            idempotency_key: None,
            // A test goes to one endpoint outside any key's order.
            ordering_key: None,
            created_at: at,
        };
        let row = event::ActiveModel {
            id: Set(event.id.to_string()),
            tenant_id: Set(tenant.to_string()),
            event_type: Set(event.event_type.to_string()),
            data: Set(self.cipher().seal_json(&event.data, event.id.as_str())),
            idempotency_key: Set(None),
            ordering_key: Set(None),
            fan_out_pending: Set(false),
            created_at: Set(at),
        };
        let txn = self.tenant_scope(tenant).await?;
        event::Entity::insert(row).exec_without_returning(&txn).await?;
        let delivery = Delivery::new(tenant, &event.id, subscription, at);
        delivery::Entity::insert(delivery.to_row()).exec_without_returning(&txn).await?;
        txn.commit().await?;
        Ok(event)
    }
}
