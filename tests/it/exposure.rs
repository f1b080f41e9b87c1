//! What the hub lets out and to whom: the SSRF guard when a subscription is
//! saved, the client address in the audit log, tokens in URLs, payload
//! values in logs, scopes of signing secrets, and where metrics are served.
use crate::common;

use common::logged_hub::LoggedHub;
use common::{Backend, TestHub};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_or_unresolvable_urls_are_refused_when_a_subscription_is_saved() {
    let hub = TestHub::start_with(Backend::Sqlite, |s| s.allow_private_endpoints = Some(false)).await;
    let refused = [
        "http://10.0.0.1/h",
        "http://[::ffff:127.0.0.1]/h",
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data",
        "http://[2002:c0a8:101::1]/h",
        "http://[fec0::1]/h",
        "http://192.0.2.10/h",
        "http://localhost:9/h",
        "https://no-such-host.invalid/h",
    ];
    for url in refused {
        let (status, body) = hub.post("/v1/subscriptions", json!({"url": url, "event_types": ["*"]})).await;
        let answer = (status, body["code"].as_str(), body["errors"][0]["field"].as_str());
        assert_eq!(answer, (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed"), Some("url")), "{url}: {body}");
    }
    // A public literal needs no DNS.
    let sub = hub.subscribe("http://93.184.216.34/h", &["*"]).await;
    let patch = hub
        .request(Method::PATCH, &format!("/v1/subscriptions/{}", sub["id"].as_str().unwrap()))
        .json(&json!({"url": "http://169.254.169.254/latest"}));
    let (status, body) = hub.call(patch).await;
    assert_eq!(
        (status, body["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("url")),
        "{body}"
    );
    let (status, body) = hub.post("/v1/hooks", json!({"target_url": "http://127.0.0.1:1/h", "event": "*"})).await;
    assert_eq!((status, body["errors"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("target_url")));
    hub.stop().await;
}

/// The audit rows of `path`, once at least one is written.
async fn audit_rows(hub: &TestHub, path: &str) -> Vec<Value> {
    common::eventually(Duration::from_secs(10), || async {
        let (_, log) = hub.get("/v1/audit-log").await;
        let rows: Vec<Value> = log["data"].as_array()?.iter().filter(|r| r["path"] == path).cloned().collect();
        (!rows.is_empty()).then_some(rows)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_believes_forwarding_headers_only_from_trusted_proxies() {
    for (trusted, expected) in [("", "127.0.0.1"), ("10.0.0.0/8, 127.0.0.1", "198.51.100.7")] {
        let hub = TestHub::start_with(Backend::Sqlite, |s| s.trusted_proxies = trusted.into()).await;
        let forged = hub
            .request(Method::GET, "/v1/event-types")
            .header("x-forwarded-for", "203.0.113.66, 198.51.100.7")
            .header("forwarded", "for=192.0.2.1")
            .header("x-real-ip", "192.0.2.2");
        assert_eq!(hub.call(forged).await.0, StatusCode::OK);
        let rows = audit_rows(&hub, "/v1/event-types").await;
        assert_eq!(rows[0]["client_ip"], expected, "trusted proxies: {trusted:?}");
        hub.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_key_cannot_read_a_signing_secret() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let sub = hub.subscribe("https://crm.example.com/h", &["*"]).await;
    let path = format!("/v1/subscriptions/{}/secret", sub["id"].as_str().unwrap());
    for (scope, expected) in [("read", StatusCode::FORBIDDEN), ("write", StatusCode::OK)] {
        let (_, key) = hub.post("/v1/api-keys", json!({"name": scope, "scope": scope})).await;
        let request =
            reqwest::Client::new().get(format!("{}{path}", hub.base)).bearer_auth(key["key"].as_str().unwrap());
        let (status, body) = hub.call(request).await;
        assert_eq!(status, expected, "{scope}: {body}");
        if status == StatusCode::FORBIDDEN {
            assert_eq!(body["code"], "insufficient_scope");
            assert!(!body.to_string().contains("whsec_"));
        }
    }
    hub.stop().await;
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(name) && !l.starts_with('#'))?.rsplit(' ').next()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_on_the_metrics_listener_only_without_subscription_labels() {
    let receiver = common::receiver::Receiver::start().await;
    receiver.script("/down", &[500; 10]);
    let hub = TestHub::start_with(Backend::Sqlite, |s| {
        s.metrics_listen = Some("127.0.0.1:0".into());
        s.retry_schedule = "1h".into();
    })
    .await;
    let sub = hub.subscribe(&receiver.url("/down"), &["*"]).await;
    let event = hub.send_event("client.created", json!({"client_id": "c1"})).await;
    hub.wait_delivery_status(&event, sub["id"].as_str().unwrap(), "pending").await;
    receiver.wait_for("/down", 1).await;

    let on_api = reqwest::get(format!("{}/metrics", hub.base)).await.unwrap();
    assert_eq!(on_api.status(), StatusCode::NOT_FOUND, "the API's port serves no metrics");
    assert_eq!(reqwest::get(format!("{}/healthz", hub.base)).await.unwrap().status(), StatusCode::OK);
    let ops = format!("http://127.0.0.1:{}", hub.hub().metrics_port().expect("serve starts the metrics listener"));
    let text = reqwest::get(format!("{ops}/metrics")).await.unwrap().text().await.unwrap();
    assert!(metric(&text, "hookhub_failing_subscriptions").unwrap() >= 1.0, "{text}");
    assert!(metric(&text, "hookhub_longest_failure_streak").unwrap() >= 1.0, "{text}");
    assert!(!text.contains("subscription_id") && !text.contains(sub["id"].as_str().unwrap()), "{text}");
    // Tenant metrics count tenants; none is labelled by one.
    assert!(!text.contains("tenant_id") && !text.contains("ten_"), "{text}");
    assert_eq!(reqwest::get(format!("{ops}/readyz")).await.unwrap().status(), StatusCode::OK);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_tokens_stay_out_of_the_access_log_and_the_audit_log() {
    let hub = LoggedHub::start("info").await;
    let (status, source) = hub.post("/v1/inbound-sources", r#"{"source": "generic"}"#).await;
    assert_eq!(status, StatusCode::CREATED, "{source}");
    let url_path = source["url_path"].as_str().unwrap().to_owned();
    let token = url_path.rsplit('/').next().unwrap().to_owned();
    let (status, _) = hub.post(&url_path, r#"{"type": "client.created", "data": {}}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "unsigned: refused, but logged and audited");
    // A callback acts for no tenant: its row is only in the table.
    let audit = common::eventually(Duration::from_secs(10), || async {
        use sea_orm::ConnectionTrait;
        let sql = sea_orm::Statement::from_string(hub.store.backend(), "SELECT path FROM audit_log");
        let rows = hub.store.db().query_all(sql).await.ok()?;
        let paths: Vec<String> = rows.iter().filter_map(|r| r.try_get_by_index::<String>(0).ok()).collect();
        paths.iter().any(|p| p.starts_with("/v1/inbound/")).then_some(paths)
    })
    .await;
    let log = hub.stop();
    assert!(log.contains("/v1/inbound/generic/[redacted]"), "the access log shows the call: {log}");
    assert!(!log.contains(&token), "the access log carries the token: {log}");
    assert!(audit.iter().any(|p| p == "/v1/inbound/generic/[redacted]"), "{audit:?}");
    assert!(!audit.iter().any(|p| p.contains(&token)), "the audit log carries the token: {audit:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_log_level_carries_request_values() {
    const MARKER: &str = "PHI-MARKER-123";
    let hub = LoggedHub::start("trace").await;
    let bodies = [
        format!(r#"{{"url": "https://crm.example.com/h", "event_types": "{MARKER}"}}"#),
        format!(r#"{{"url": "https://crm.example.com/h", "event_types": ["*"], "rate_limit_per_second": "{MARKER}"}}"#),
    ];
    for body in &bodies {
        let (status, answer) = hub.post("/v1/subscriptions", body).await;
        assert!(status.is_client_error(), "{status} {answer}");
    }
    let events = [
        format!(r#"{{"type": "client.created", "data": {{"note": "{MARKER}"}}, "idempotency_key": 7}}"#),
        format!(r#"{{"type": "{MARKER}", "data": {{}}}}"#),
        format!(r#"{{"type": "client.created", "data": {{"note": "{MARKER}"}}"#),
        format!(r#"{{"type": "client.created", "data": {{"note": "{MARKER}"}}}}"#),
    ];
    for body in &events {
        hub.post("/v1/events", body).await;
    }
    let log = hub.stop();
    assert!(log.contains("DEBUG"), "the hub logged at debug: {log}");
    let leaks: Vec<&str> = log.lines().filter(|l| l.contains(MARKER)).collect();
    assert!(leaks.is_empty(), "request values in the log:\n{}", leaks.join("\n"));
}
