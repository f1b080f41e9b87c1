//! Input the store cannot keep exactly (NUL characters, integers beyond 64
//! bits, oversized bodies) gets a 4xx in the JSON error format naming the
//! field, the same on both backends; never a 500, never a silent change.
use crate::common;

use common::{Backend, TestHub};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A hub whose event payloads are stored as plain JSON (no encryption at
/// rest), so that on PostgreSQL every string really reaches `jsonb`.
async fn plain_hub(backend: Backend) -> TestHub {
    TestHub::start_with(backend, |s| s.encryption_keys = String::new()).await
}

/// Posts `body` as raw JSON text.
async fn post_text(hub: &TestHub, path: &str, body: &str) -> (StatusCode, Value) {
    let req = hub.request(Method::POST, path).header("content-type", "application/json").body(body.to_owned());
    hub.call(req).await
}

/// Asserts a 422 `validation_failed` whose first error names `field`.
fn assert_refused(name: &str, (status, body): (StatusCode, Value), field: &str) {
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {body}");
    assert_eq!(body["code"], "validation_failed", "{name}: {body}");
    assert_eq!(body["errors"][0]["field"], field, "{name}: {body}");
}

async fn nul_is_refused_in_every_free_text_field(backend: Backend) {
    let hub = plain_hub(backend).await;
    let event =
        |data: Value, key: Option<&str>| json!({"type": "client.created", "data": data, "idempotency_key": key});
    let cases = [
        ("data string", "/v1/events", event(json!({"note": "a\u{0}b"}), None), "data.note"),
        ("data key", "/v1/events", event(json!({"k\u{0}": 1}), None), "data.k\\u0000"),
        ("nested data", "/v1/events", event(json!({"a": [1, {"b": ["\u{0}"]}]}), None), "data.a[1].b[0]"),
        ("idempotency key", "/v1/events", event(json!({}), Some("k\u{0}")), "idempotency_key"),
        (
            "subscription description",
            "/v1/subscriptions",
            json!({"url": "https://crm.example.com/h", "event_types": ["*"], "description": "x\u{0}"}),
            "description",
        ),
        ("API key name", "/v1/api-keys", json!({"name": "zap\u{0}"}), "name"),
        ("OAuth app name", "/v1/oauth-apps", json!({"name": "\u{0}app"}), "name"),
        (
            "event type description",
            "/v1/event-types",
            json!({"name": "class.booked", "description": "\u{0}"}),
            "description",
        ),
        (
            "event type schema",
            "/v1/event-types",
            json!({"name": "class.booked", "schema": {"type": "object", "title": "\u{0}"}}),
            "schema.title",
        ),
        (
            "event type example",
            "/v1/event-types",
            json!({"name": "class.booked", "example": {"a": "\u{0}"}}),
            "example.a",
        ),
    ];
    for (name, path, body, field) in cases {
        assert_refused(name, hub.post(path, body).await, field);
    }
    let (status, body) =
        hub.post("/v1/inbound-sources", json!({"source": "stripe", "signing_secret": "whsec_\u{0}"})).await;
    assert_eq!((status, body["code"].clone()), (StatusCode::UNPROCESSABLE_ENTITY, json!("validation_failed")));
    let (_, events) = hub.get("/v1/events").await;
    assert_eq!(events["data"], json!([]), "nothing refused was stored");

    // NUL in path segments and queries: not found or bad request, never a 500.
    let patch = hub.request(Method::PATCH, "/v1/event-types/class.bo%00ked").json(&json!({"validate": false}));
    assert_eq!(hub.call(patch).await.0, StatusCode::NOT_FOUND);
    let callback = hub.request(Method::POST, "/v1/inbound/stripe/tok%00en").body("{}");
    assert_eq!(hub.call(callback).await.0, StatusCode::NOT_FOUND);
    let (status, body) = hub.get("/v1/audit-log?from=%00").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Other control characters are kept, exactly.
    let data = json!({"note": "\u{1}\u{7}\u{1f}\u{7f}", "\u{2}key": "\t"});
    let (status, accepted) = hub.post("/v1/events", event(data.clone(), Some("k\u{1}"))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let (_, read) = hub.get(&format!("/v1/events/{}", accepted["id"].as_str().unwrap())).await;
    assert_eq!(read["data"], data);
    hub.stop().await;
}

async fn integers_beyond_64_bits_are_refused_not_rounded(backend: Backend) {
    let hub = plain_hub(backend).await;
    let event = |data: &str| format!(r#"{{"type": "client.created", "data": {data}}}"#);
    for (data, field) in [
        (r#"{"n": 18446744073709551616}"#, "data.n"),
        (r#"{"n": -9223372036854775809}"#, "data.n"),
        (r#"{"a": {"b": [0, 123456789012345678901234567890]}}"#, "data.a.b[1]"),
    ] {
        assert_refused(data, post_text(&hub, "/v1/events", &event(data)).await, field);
    }
    let schema = r#"{"name": "class.booked", "schema": {"type": "object", "properties": {"n": {"maximum": 99999999999999999999}}}}"#;
    assert_refused("schema", post_text(&hub, "/v1/event-types", schema).await, "schema.properties.n.maximum");

    let edges =
        r#"{"max": 18446744073709551615, "min": -9223372036854775808, "float": 1e300, "text": "99999999999999999999"}"#;
    let (status, accepted) = post_text(&hub, "/v1/events", &event(edges)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let (_, read) = hub.get(&format!("/v1/events/{}", accepted["id"].as_str().unwrap())).await;
    assert_eq!(read["data"], serde_json::from_str::<Value>(edges).unwrap());
    assert_eq!(read["data"]["max"].as_u64(), Some(u64::MAX));
    hub.stop().await;
}

crate::on_both_backends!(nul_is_refused_in_every_free_text_field, integers_beyond_64_bits_are_refused_not_rounded);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_errors_of_every_route_use_the_json_error_format() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let huge = format!("grant_type=client_credentials&pad={}", "x".repeat(300 * 1024));
    let form = "application/x-www-form-urlencoded";
    let token = reqwest::Client::new().post(format!("{}/v1/oauth/token", hub.base)).header("content-type", form);
    let events = hub.request(Method::POST, "/v1/events").header("content-type", "application/json");
    let subscriptions = hub.request(Method::POST, "/v1/subscriptions").header("content-type", "application/json");
    for (name, req) in [("token", token), ("events", events), ("subscriptions", subscriptions)] {
        let resp = req.body(huge.clone()).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE, "{name}");
        assert_eq!(resp.headers()["content-type"], "application/json", "{name}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["code"], "payload_too_large", "{name}");
    }
    hub.stop().await;
}

/// What validation misses, PostgreSQL refuses: that refusal is recognised
/// as bad input (a 422 at the API), not as a failure of the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_refusing_nul_is_recognised_as_bad_input() {
    let mut settings = common::test_settings(Backend::Postgres).await;
    settings.encryption_keys = String::new();
    let store = settings.store().await.unwrap();
    store.migrate().await.unwrap();
    let (tenant, _) = store.create_tenant("t").await.unwrap();
    let err = store.ingest_event(&tenant.id, common::client_created(json!({"a": "\u{0}"}))).await.unwrap_err();
    assert!(err.is_unstorable_text(), "{err}");
    common::drop_test_resources(&settings).await;
}
