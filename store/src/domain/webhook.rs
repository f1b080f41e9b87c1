//! The webhook body, identical on every attempt of a delivery.
use crate::repo::Event;
use serde_json::Value;

/// The webhook body, `{"id", "type", "timestamp", "data"}`: what a live
/// delivery carries and, field for field, what `GET /v1/hooks/samples`
/// shows (so a Zap mapped from a sample finds the same fields live).
///
/// `id` is the event id, the same as the `webhook-id` header: receivers
/// deduplicate on it, and it stays the same on every retry and redelivery.
#[derive(serde::Serialize)]
pub struct WebhookBody<'a> {
    /// The event id (`evt_...`).
    pub id: &'a str,
    /// The event type, like `appointment.booked`.
    pub r#type: &'a str,
    /// When the hub accepted the event (RFC 3339, milliseconds, UTC).
    pub timestamp: String,
    /// The event's data, as sent.
    pub data: &'a Value,
}

impl<'a> WebhookBody<'a> {
    /// The body of an event.
    pub fn of(event: &'a Event) -> Self {
        Self::new(event.id.as_str(), event.event_type.as_str(), event.created_at, &event.data)
    }

    /// A body from its parts (a sample built from an example has no stored event).
    pub fn new(id: &'a str, r#type: &'a str, at: chrono::DateTime<chrono::Utc>, data: &'a Value) -> Self {
        Self { id, r#type, timestamp: at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true), data }
    }
}

/// The webhook body of an event, serialised; identical on every retry.
pub fn webhook_body(event: &Event) -> Vec<u8> {
    webhook_json(event).into_bytes()
}

/// [`webhook_body`] as text, as a transform takes it.
pub fn webhook_json(event: &Event) -> String {
    serde_json::to_string(&WebhookBody::of(event)).expect("a JSON value serialises")
}
