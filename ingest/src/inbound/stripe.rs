//! Stripe: `Stripe-Signature` verification and event mapping.
//!
//! Stripe signs `"{t}.{raw body}"` with HMAC-SHA256 keyed by the endpoint
//! secret *as text* (unlike Standard Webhooks, the `whsec_` string is not
//! base64-decoded), and sends `t=...,v1=<hex>[,v1=<hex>...]`.
use super::SignatureError;
use hmac::{Hmac, Mac};
use hookhub_store::domain::EventType;
use serde_json::{json, Value};
use sha2::Sha256;

/// How far `t` may be from now.
pub const TOLERANCE_SECS: i64 = 300;

/// Verifies a `Stripe-Signature` header against the raw body.
pub fn verify(secret: &str, header: Option<&str>, body: &[u8], now: i64) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", sig)) => candidates.extend(hex::decode(sig).ok()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Missing)?;
    if candidates.is_empty() {
        return Err(SignatureError::Missing);
    }
    if (now - timestamp).abs() > TOLERANCE_SECS {
        return Err(SignatureError::Stale);
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let expected = mac.finalize().into_bytes();
    let matches =
        candidates.iter().any(|c| bool::from(subtle::ConstantTimeEq::ct_eq(c.as_slice(), expected.as_slice())));
    if matches {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// A Stripe event turned into a Hookhub domain event.
#[derive(Clone, Debug, PartialEq)]
pub struct Mapped {
    /// The domain type, like `subscription.cancelled`.
    pub event_type: EventType,
    /// The domain data.
    pub data: Value,
    /// Stripe's event id, the idempotency key: a Stripe retry is the same event.
    pub gateway_event_id: String,
}

/// Why a Stripe body could not be read.
#[derive(Debug, thiserror::Error)]
#[error("not a Stripe event: {0}")]
pub struct NotAStripeEvent(pub &'static str);

/// Maps the Stripe events Hookhub understands; `Ok(None)` for the others,
/// which are acknowledged and ignored so Stripe stops sending them.
pub fn map(event: &Value) -> Result<Option<Mapped>, NotAStripeEvent> {
    // NUL is no part of any Stripe id, and no text column could hold it.
    let id = event["id"].as_str().filter(|s| !s.is_empty() && !s.contains('\0')).ok_or(NotAStripeEvent("id"))?;
    let kind = event["type"].as_str().ok_or(NotAStripeEvent("type"))?;
    let object = &event["data"]["object"];
    if !object.is_object() {
        return Err(NotAStripeEvent("data.object"));
    }
    // Platforms put their own client id in Stripe metadata; fall back to
    // Stripe's customer id so the receiver can still correlate.
    let client_id = object["metadata"]["client_id"].as_str().or_else(|| object["customer"].as_str());
    let base = json!({
        "client_id": client_id,
        "customer": object["customer"],
        "gateway": "stripe",
        "gateway_event_id": id,
    });
    let (event_type, extra) = match kind {
        "customer.subscription.deleted" => (
            "subscription.cancelled",
            json!({
                "subscription_id": object["id"],
                "plan": object["plan"]["nickname"],
                "cancelled_at": object["canceled_at"].as_i64().and_then(unix_to_rfc3339),
            }),
        ),
        "invoice.payment_succeeded" | "invoice.paid" => (
            "payment.received",
            json!({"payment_id": object["id"], "amount": object["amount_paid"], "currency": object["currency"]}),
        ),
        "payment_intent.succeeded" => (
            "payment.received",
            json!({
                "payment_id": object["id"],
                "amount": object.get("amount_received").unwrap_or(&object["amount"]),
                "currency": object["currency"],
            }),
        ),
        "invoice.payment_failed" => (
            "payment.failed",
            json!({
                "payment_id": object["id"],
                "amount": object["amount_due"],
                "currency": object["currency"],
                "failure_reason": object["last_finalization_error"]["code"],
            }),
        ),
        _ => return Ok(None),
    };
    let mut data = base;
    merge(&mut data, extra);
    Ok(Some(Mapped {
        event_type: event_type.parse().expect("mapped types are valid"),
        data,
        gateway_event_id: id.to_owned(),
    }))
}

fn merge(into: &mut Value, from: Value) {
    if let (Some(into), Value::Object(from)) = (into.as_object_mut(), from) {
        into.extend(from);
    }
    // Absent Stripe fields become nulls; drop them rather than send noise.
    if let Some(map) = into.as_object_mut() {
        map.retain(|_, v| !v.is_null());
    }
}

fn unix_to_rfc3339(secs: i64) -> Option<String> {
    chrono::DateTime::from_timestamp(secs, 0).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(secret: &str, t: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(body);
        format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn accepts_valid_and_rejects_tampered_stale_or_missing() {
        let body = br#"{"id":"evt_1"}"#;
        let h = header("whsec_test", 1_000, body);
        assert_eq!(verify("whsec_test", Some(&h), body, 1_200), Ok(()));
        assert_eq!(verify("whsec_test", Some(&format!("{h},v1=00ff,v0=abc")), body, 1_000), Ok(()));
        let two = format!("t=1000,v1={},{}", "ab".repeat(32), h.split(',').nth(1).unwrap());
        assert_eq!(verify("whsec_test", Some(&two), body, 1_000), Ok(()), "any v1 may match");
        assert_eq!(verify("whsec_test", Some(&h), br#"{"id":"evt_2"}"#, 1_000), Err(SignatureError::Mismatch));
        assert_eq!(verify("whsec_other", Some(&h), body, 1_000), Err(SignatureError::Mismatch));
        assert_eq!(verify("whsec_test", Some(&h), body, 1_301), Err(SignatureError::Stale));
        assert_eq!(verify("whsec_test", Some(&h), body, 699), Err(SignatureError::Stale));
        for bad in ["", "t=1000", "v1=abcd", "t=x,v1=abcd", "garbage", "t=1000,v1=zz"] {
            assert_eq!(verify("whsec_test", Some(bad), body, 1_000), Err(SignatureError::Missing), "{bad}");
        }
        assert_eq!(verify("whsec_test", None, body, 1_000), Err(SignatureError::Missing));
    }

    #[test]
    fn maps_subscription_deletion_to_a_cancellation() {
        let event = json!({
            "id": "evt_1Q", "type": "customer.subscription.deleted",
            "data": {"object": {"id": "sub_9", "customer": "cus_7", "canceled_at": 1_795_000_000,
                                "metadata": {"client_id": "cl_8f3a2"}}}
        });
        let mapped = map(&event).unwrap().unwrap();
        assert_eq!(mapped.event_type.as_str(), "subscription.cancelled");
        assert_eq!(mapped.gateway_event_id, "evt_1Q");
        assert_eq!(mapped.data["client_id"], "cl_8f3a2");
        assert_eq!(mapped.data["subscription_id"], "sub_9");
        assert_eq!(mapped.data["customer"], "cus_7");
        assert!(mapped.data["cancelled_at"].as_str().unwrap().ends_with('Z'));
        assert!(mapped.data.get("plan").is_none(), "absent fields are dropped");
    }

    #[test]
    fn maps_payments_and_ignores_the_rest() {
        let paid = json!({"id": "evt_2", "type": "invoice.payment_succeeded",
            "data": {"object": {"id": "in_1", "customer": "cus_7", "amount_paid": 6500, "currency": "eur"}}});
        let mapped = map(&paid).unwrap().unwrap();
        assert_eq!(mapped.event_type.as_str(), "payment.received");
        assert_eq!(mapped.data["amount"], 6500);
        assert_eq!(mapped.data["client_id"], "cus_7");
        let failed = json!({"id": "evt_3", "type": "invoice.payment_failed",
            "data": {"object": {"id": "in_2", "amount_due": 6500, "currency": "eur"}}});
        assert_eq!(map(&failed).unwrap().unwrap().event_type.as_str(), "payment.failed");
        let other = json!({"id": "evt_4", "type": "customer.created", "data": {"object": {}}});
        assert_eq!(map(&other).unwrap(), None);
        assert!(map(&json!({"type": "x"})).is_err());
        assert!(map(&json!({"id": "evt_5", "type": "x", "data": {}})).is_err());
    }
}
