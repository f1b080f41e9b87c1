//! The webhook body, identical on every attempt of a delivery.
use hookhub_store::repo::Event;

/// The webhook body: `{"type", "timestamp", "data"}`, identical on every retry.
pub fn webhook_body(event: &Event) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Body<'a> {
        r#type: &'a str,
        timestamp: String,
        data: &'a serde_json::Value,
    }
    let body = Body {
        r#type: event.event_type.as_str(),
        timestamp: event.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        data: &event.data,
    };
    serde_json::to_vec(&body).expect("a JSON value serialises")
}
