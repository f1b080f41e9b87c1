//! Stripe: `Stripe-Signature` verification and event mapping.
//!
//! Stripe signs `"{t}.{raw body}"` with HMAC-SHA256 keyed by the endpoint
//! secret *as text* (unlike Standard Webhooks, the `whsec_` string is not
//! base64-decoded), and sends `t=...,v1=<hex>[,v1=<hex>...]`.
use super::SignatureError;
use hmac::{Hmac, Mac};
use hookhub_store::domain::{EventType, OrderingKey};
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
    /// The idempotency key: what makes two Stripe events one domain event.
    /// A Stripe retry has the same event id; for a payment, Stripe sends
    /// several events (`invoice.paid`, `invoice.payment_succeeded`,
    /// `payment_intent.succeeded`) and the key is the payment's own id.
    pub dedupe_key: String,
    /// What its deliveries keep order by: the client it is about (the
    /// studio's `client_id` when the checkout set it, else the Stripe
    /// customer), so a client's payments and cancellations reach an
    /// ordered subscription in the order Stripe sent them. None when the
    /// object names no client, or names one that is not a valid key.
    pub ordering_key: Option<OrderingKey>,
}

/// Why a Stripe body could not be read.
#[derive(Debug, thiserror::Error)]
#[error("not a Stripe event: {0}")]
pub struct NotAStripeEvent(pub &'static str);

/// Maps the Stripe events Hookhub understands; `Ok(None)` for the others,
/// which are acknowledged and ignored so Stripe stops sending them. That
/// includes "thin" events (API v2, `object: "v2.core.event"`), which carry
/// no object to map.
///
/// The shapes read are those of API versions from 2025-03-31.basil on
/// (invoices name their subscription under `parent.subscription_details`),
/// with the older places as fallbacks.
pub fn map(event: &Value) -> Result<Option<Mapped>, NotAStripeEvent> {
    // NUL is no part of any Stripe id, and no text column could hold it.
    let id = event["id"].as_str().filter(|s| !s.is_empty() && !s.contains('\0')).ok_or(NotAStripeEvent("id"))?;
    let kind = event["type"].as_str().ok_or(NotAStripeEvent("type"))?;
    if event["object"] == "v2.core.event" {
        return Ok(None);
    }
    let object = &event["data"]["object"];
    if !object.is_object() {
        return Err(NotAStripeEvent("data.object"));
    }
    let base = json!({
        "client_id": client_id(object),
        "customer": object["customer"],
        "gateway": "stripe",
        "gateway_event_id": id,
    });
    let by_event = || id.to_owned();
    let (event_type, extra, dedupe_key) = match kind {
        "customer.subscription.deleted" => {
            let price = &object["items"]["data"][0]["price"];
            let plan = [&price["nickname"], &price["lookup_key"], &object["plan"]["nickname"], &price["id"]]
                .into_iter()
                .find(|v| v.as_str().is_some_and(|s| !s.is_empty()))
                .cloned();
            let extra = json!({
                "subscription_id": object["id"],
                "plan": plan,
                "price_id": price["id"],
                "cancelled_at": object["canceled_at"].as_i64().and_then(unix_to_rfc3339),
            });
            ("subscription.cancelled", extra, by_event())
        }
        "invoice.payment_succeeded" | "invoice.paid" => {
            let invoice = object["id"].as_str().ok_or(NotAStripeEvent("data.object.id"))?;
            let extra = json!({
                "payment_id": invoice,
                "invoice_id": invoice,
                "payment_intent_id": object["payment_intent"],
                "amount": object["amount_paid"],
                "currency": object["currency"],
            });
            ("payment.received", extra, payment_key(invoice))
        }
        "payment_intent.succeeded" => {
            let intent = object["id"].as_str().ok_or(NotAStripeEvent("data.object.id"))?;
            // Before 2025-03-31.basil a payment intent names its invoice:
            // then it is the same payment as the invoice's events.
            let payment = object["invoice"].as_str().unwrap_or(intent);
            let extra = json!({
                "payment_id": payment,
                "invoice_id": object["invoice"],
                "payment_intent_id": intent,
                "amount": object.get("amount_received").unwrap_or(&object["amount"]),
                "currency": object["currency"],
            });
            ("payment.received", extra, payment_key(payment))
        }
        "invoice.payment_failed" => {
            // An invoice does not say why its payment failed (its
            // `last_finalization_error` is about finalising it, not a
            // decline); the payment intent's event does, below.
            let extra = json!({
                "payment_id": object["id"],
                "invoice_id": object["id"],
                "amount": object["amount_due"],
                "currency": object["currency"],
            });
            ("payment.failed", extra, failed_attempt_key(&object["charge"]).unwrap_or_else(by_event))
        }
        "payment_intent.payment_failed" => {
            let error = &object["last_payment_error"];
            let reason = [&error["decline_code"], &error["code"]].into_iter().find(|v| v.is_string());
            let extra = json!({
                "payment_id": object["invoice"].as_str().or(object["id"].as_str()),
                "invoice_id": object["invoice"],
                "payment_intent_id": object["id"],
                "amount": object["amount"],
                "currency": object["currency"],
                "failure_reason": reason,
                "failure_message": error["message"],
            });
            let charge = if error["charge"].is_string() { &error["charge"] } else { &object["latest_charge"] };
            ("payment.failed", extra, failed_attempt_key(charge).unwrap_or_else(by_event))
        }
        _ => return Ok(None),
    };
    let mut data = base;
    merge(&mut data, extra);
    let ordering_key = client_id(object).and_then(|c| c.parse().ok());
    Ok(Some(Mapped { event_type: event_type.parse().expect("mapped types are valid"), data, dedupe_key, ordering_key }))
}

/// The key of a payment: every Stripe event about it maps to one
/// `payment.received`.
fn payment_key(payment: &str) -> String {
    format!("payment:{payment}")
}

/// The key of a failed payment attempt, by its charge (before
/// 2025-03-31.basil both the invoice's and the payment intent's event name
/// it): one failure is one `payment.failed`.
fn failed_attempt_key(charge: &Value) -> Option<String> {
    charge.as_str().map(|c| format!("payment_failed:{c}"))
}

/// The platform's own client id from Stripe metadata (the object's, or
/// for an invoice its subscription's), else Stripe's customer id, so the
/// receiver can still correlate.
fn client_id(object: &Value) -> Option<&str> {
    [
        &object["metadata"]["client_id"],
        // API versions from 2025-03-31.basil.
        &object["parent"]["subscription_details"]["metadata"]["client_id"],
        // Older API versions.
        &object["subscription_details"]["metadata"]["client_id"],
        &object["customer"],
    ]
    .into_iter()
    .find_map(|v| v.as_str().filter(|s| !s.is_empty()))
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
        assert_eq!(mapped.dedupe_key, "evt_1Q");
        assert_eq!(mapped.data["client_id"], "cl_8f3a2");
        assert_eq!(mapped.data["subscription_id"], "sub_9");
        assert_eq!(mapped.data["customer"], "cus_7");
        assert_eq!(mapped.ordering_key.as_ref().map(OrderingKey::as_str), Some("cl_8f3a2"));
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
        assert_eq!(mapped.ordering_key.as_ref().map(OrderingKey::as_str), Some("cus_7"));
        let failed = json!({"id": "evt_3", "type": "invoice.payment_failed",
            "data": {"object": {"id": "in_2", "amount_due": 6500, "currency": "eur"}}});
        assert_eq!(map(&failed).unwrap().unwrap().event_type.as_str(), "payment.failed");
        let other = json!({"id": "evt_4", "type": "customer.created", "data": {"object": {}}});
        assert_eq!(map(&other).unwrap(), None);
        assert!(map(&json!({"type": "x"})).is_err());
        assert!(map(&json!({"id": "evt_5", "type": "x", "data": {}})).is_err());
    }

    /// Stripe's own published example objects: `fixtures3.json` of the
    /// public stripe/openapi repository at commit f6c2a48, the shapes of
    /// the API version that commit describes (a 2025 version after
    /// 2025-03-31.basil: invoices have `parent`, no `payment_intent`).
    fn fixture(name: &str) -> Value {
        const FIXTURES: &str =
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/stripe/stripe_fixture_objects.json");
        let all = std::fs::read_to_string(FIXTURES).unwrap_or_else(|e| panic!("{FIXTURES}: {e}"));
        serde_json::from_str::<Value>(&all).unwrap()[name].clone()
    }

    fn event(id: &str, kind: &str, object: &Value) -> Value {
        json!({"id": id, "object": "event", "type": kind, "data": {"object": object}})
    }

    #[test]
    fn one_invoice_payment_is_one_payment_received_with_the_subscriptions_client_id() {
        let mut invoice = fixture("invoice");
        invoice["status"] = json!("paid");
        invoice["amount_paid"] = invoice["amount_due"].clone();
        invoice["parent"]["subscription_details"]["metadata"] = json!({"client_id": "cl_8f3a2"});
        let paid = map(&event("evt_a", "invoice.paid", &invoice)).unwrap().unwrap();
        let succeeded = map(&event("evt_b", "invoice.payment_succeeded", &invoice)).unwrap().unwrap();
        assert_eq!(paid.dedupe_key, succeeded.dedupe_key, "two Stripe events, one payment");
        assert_eq!(paid.dedupe_key, "payment:in_1Pgc6tB7WZ01zgkWu9fdqL6I");
        assert_eq!(paid.data["client_id"], "cl_8f3a2", "from parent.subscription_details.metadata");
        assert_eq!((paid.data["amount"].as_i64(), paid.data["currency"].as_str()), (Some(1000), Some("usd")));
        assert!(paid.data.get("failure_reason").is_none());

        // Without metadata, Stripe's customer id.
        let plain = map(&event("evt_c", "invoice.paid", &fixture("invoice"))).unwrap().unwrap();
        assert_eq!(plain.data["client_id"], "cus_QXg1o8vcGmoR32");
        // An invoice's failed payment carries no decline: its
        // `last_finalization_error` is not one.
        let failed = map(&event("evt_d", "invoice.payment_failed", &fixture("invoice"))).unwrap().unwrap();
        assert!(failed.data.get("failure_reason").is_none(), "{}", failed.data);
    }

    #[test]
    fn a_payment_intent_is_the_same_payment_as_its_invoice_when_it_names_it() {
        // Before 2025-03-31.basil a payment intent names its invoice.
        let linked = json!({"id": "pi_1", "object": "payment_intent", "amount": 1000, "amount_received": 1000,
            "currency": "usd", "customer": "cus_QXg1o8vcGmoR32", "invoice": "in_1Pgc6tB7WZ01zgkWu9fdqL6I"});
        let mapped = map(&event("evt_e", "payment_intent.succeeded", &linked)).unwrap().unwrap();
        assert_eq!(mapped.dedupe_key, "payment:in_1Pgc6tB7WZ01zgkWu9fdqL6I");
        assert_eq!(mapped.data["payment_id"], "in_1Pgc6tB7WZ01zgkWu9fdqL6I");
        let standalone = json!({"id": "pi_2", "amount": 500, "amount_received": 500, "currency": "usd"});
        let mapped = map(&event("evt_f", "payment_intent.succeeded", &standalone)).unwrap().unwrap();
        assert_eq!(mapped.dedupe_key, "payment:pi_2");
        assert_eq!(mapped.data["amount"], 500);
    }

    #[test]
    fn a_failed_payment_intent_gives_the_decline() {
        let intent = json!({"id": "pi_3", "object": "payment_intent", "amount": 6500, "currency": "eur",
            "latest_charge": "ch_9", "last_payment_error": {"type": "card_error", "code": "card_declined",
            "decline_code": "insufficient_funds", "charge": "ch_9", "message": "Your card has insufficient funds."}});
        let mapped = map(&event("evt_g", "payment_intent.payment_failed", &intent)).unwrap().unwrap();
        assert_eq!(mapped.event_type.as_str(), "payment.failed");
        assert_eq!(mapped.data["failure_reason"], "insufficient_funds");
        assert_eq!(mapped.dedupe_key, "payment_failed:ch_9");
        let mut no_decline = intent.clone();
        no_decline["last_payment_error"] = json!({"type": "api_error", "code": "processing_error"});
        let mapped = map(&event("evt_h", "payment_intent.payment_failed", &no_decline)).unwrap().unwrap();
        assert_eq!(mapped.data["failure_reason"], "processing_error");
    }

    #[test]
    fn a_cancelled_subscription_names_its_plan_by_its_items_price() {
        let mut subscription = fixture("subscription");
        let cancelled = map(&event("evt_i", "customer.subscription.deleted", &subscription)).unwrap().unwrap();
        // The fixture's price has neither nickname nor lookup key.
        assert_eq!(cancelled.data["plan"], "price_1PgafmB7WZ01zgkW6dKueIc5");
        assert_eq!(cancelled.data["subscription_id"], "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw");
        subscription["items"]["data"][0]["price"]["nickname"] = json!("Unlimited monthly");
        subscription["metadata"] = json!({"client_id": "cl_8f3a2"});
        let cancelled = map(&event("evt_j", "customer.subscription.deleted", &subscription)).unwrap().unwrap();
        assert_eq!(cancelled.data["plan"], "Unlimited monthly");
        assert_eq!(cancelled.data["client_id"], "cl_8f3a2");
    }

    #[test]
    fn thin_events_are_acknowledged_and_ignored() {
        // An API v2 "thin" event, as Stripe's event destinations document it.
        let thin = json!({"id": "evt_test_65R9Ijk8cz", "object": "v2.core.event",
            "type": "v1.billing.meter.error_report_triggered", "created": "2024-09-17T06:20:52.246Z",
            "related_object": {"id": "mtr_test_61R9", "type": "billing.meter", "url": "/v1/billing/meters/mtr_test_61R9"},
            "livemode": false, "context": null, "reason": null});
        assert_eq!(map(&thin).unwrap(), None);
    }
}
