//! Per-subscription filters and transforms, end to end: what is filtered
//! shows as such, what is transformed is signed over the bytes sent, bad
//! programs are refused on save, the test endpoint, and a hostile program
//! that holds up nobody else.
use crate::common;

use common::receiver::Receiver;
use common::{eventually, verify_with_reference, Backend, TestHub};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

crate::on_both_backends!(filters_and_transforms_shape_what_is_sent);

const FILTER: &str = r#"event.data.location_id === "loc_1" && event.data.amount > 100"#;

const TRANSFORM: &str = r#"
function handler(webhook) {
  const d = webhook.payload.data;
  webhook.payload = { email: d.email, tags: ["big-sale", webhook.eventType], amount: d.amount };
  webhook.method = "PUT";
  webhook.headers = { "x-crm-list": "vip" };
  if (d.email.endsWith("@test.invalid")) webhook.cancel = true;
  return webhook;
}
"#;

async fn subscribe_with(hub: &TestHub, url: &str, filter: Option<&str>, transform: Option<&str>) -> Value {
    let body = json!({"url": url, "event_types": ["sale.completed"], "filter": filter, "transform": transform});
    let (status, sub) = hub.post("/v1/subscriptions", body).await;
    assert_eq!(status, StatusCode::CREATED, "{sub}");
    sub
}

async fn attempts_of(hub: &TestHub, event: &str) -> Vec<Value> {
    let (status, body) = hub.get(&format!("/v1/events/{event}/attempts")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].as_array().unwrap().clone()
}

async fn filters_and_transforms_shape_what_is_sent(backend: Backend) {
    let receiver = Receiver::start().await;
    let hub = TestHub::start(backend).await;
    let sub = subscribe_with(&hub, &receiver.url("/crm"), Some(FILTER), Some(TRANSFORM)).await;
    assert_eq!(sub["filter"], FILTER);
    assert_eq!(sub["transform"], TRANSFORM);
    let sub_id = sub["id"].as_str().unwrap();

    let small =
        hub.send_event("sale.completed", json!({"location_id": "loc_1", "amount": 20, "email": "a@x.com"})).await;
    let elsewhere =
        hub.send_event("sale.completed", json!({"location_id": "loc_2", "amount": 500, "email": "b@x.com"})).await;
    let cancelled = hub
        .send_event("sale.completed", json!({"location_id": "loc_1", "amount": 500, "email": "c@test.invalid"}))
        .await;
    let big =
        hub.send_event("sale.completed", json!({"location_id": "loc_1", "amount": 150, "email": "ann@x.com"})).await;

    let got = receiver.wait_for("/crm", 1).await;
    let req = &got[0];
    assert_eq!(req.method, "PUT");
    assert_eq!(req.header("x-crm-list"), "vip");
    assert_eq!(req.header("webhook-id"), big, "the event id still identifies the message");
    assert_eq!(req.header("content-type"), "application/json");
    assert_eq!(req.body, br#"{"email":"ann@x.com","tags":["big-sale","sale.completed"],"amount":150}"#);
    // The signature covers exactly the transformed bytes, by the reference verifiers.
    verify_with_reference(sub["secret"].as_str().unwrap(), &got);
    hub.wait_delivery_status(&big, sub_id, "succeeded").await;

    for event in [&small, &elsewhere, &cancelled] {
        let delivery = hub.wait_delivery_status(event, sub_id, "filtered").await;
        assert_eq!(delivery["last_error"], Value::Null, "filtered is not a failure: {delivery}");
        let attempts = attempts_of(&hub, event).await;
        assert_eq!(attempts.len(), 1, "{attempts:?}");
        assert_eq!(attempts[0]["outcome"], "filtered");
        assert_eq!(attempts[0]["status_code"], Value::Null);
        assert_eq!(attempts[0]["error"], Value::Null);
    }
    // Give a filtered event the time to be retried or sent before checking it was not.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received("/crm").len(), 1);
    for event in [&small, &elsewhere, &cancelled] {
        assert_eq!(attempts_of(&hub, event).await.len(), 1, "a filtered event is not retried");
    }
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn programs_that_do_not_compile_are_refused_on_save() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let url = "http://127.0.0.1:9/hook";
    let refused = |field: &'static str, body: Value| {
        let hub = &hub;
        async move {
            let (status, err) = hub.post("/v1/subscriptions", body).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
            assert_eq!(err["code"], "invalid_program", "{err}");
            assert_eq!(err["errors"][0]["field"], field, "{err}");
            err
        }
    };
    let err = refused(
        "transform",
        json!({"url": url, "event_types": ["*"], "transform": "function handler(w) {\n return w;\n}}"}),
    )
    .await;
    assert!(err["errors"][0]["message"].as_str().unwrap().contains("line 3"), "{err}");
    refused("filter", json!({"url": url, "event_types": ["*"], "filter": "event.data.amount >"})).await;
    let err = refused("transform", json!({"url": url, "event_types": ["*"], "transform": "const x = 1;"})).await;
    assert!(err["errors"][0]["message"].as_str().unwrap().contains("handler"), "{err}");
    refused("transform", json!({"url": url, "event_types": ["*"], "transform": "while (true) {}"})).await;

    let (status, sub) = hub.post("/v1/subscriptions", json!({"url": url, "event_types": ["*"]})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(sub["filter"], Value::Null);
    let path = format!("/v1/subscriptions/{}", sub["id"].as_str().unwrap());
    let (status, err) = hub.call(hub.request(Method::PATCH, &path).json(&json!({"filter": "(("}))).await;
    assert_eq!((status, err["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_program")), "{err}");
    let (status, body) =
        hub.call(hub.request(Method::PATCH, &path).json(&json!({"filter": "event.data.x == 1"}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["filter"], "event.data.x == 1");
    let (status, body) = hub.call(hub.request(Method::PATCH, &path).json(&json!({"description": "kept"}))).await;
    assert_eq!((status, &body["filter"]), (StatusCode::OK, &json!("event.data.x == 1")), "absent leaves it");
    let (status, body) = hub.call(hub.request(Method::PATCH, &path).json(&json!({"filter": null}))).await;
    assert_eq!((status, &body["filter"]), (StatusCode::OK, &Value::Null), "null removes it");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_endpoint_shows_the_request_filtered_or_the_error() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let sub = subscribe_with(&hub, "http://127.0.0.1:9/hook", Some(FILTER), Some(TRANSFORM)).await;
    let path = format!("/v1/subscriptions/{}/transform/test", sub["id"].as_str().unwrap());
    let event = |amount: i64| json!({"type": "sale.completed", "data": {"location_id": "loc_1", "amount": amount, "email": "ann@x.com"}});

    let (status, result) = hub.post(&path, json!({"event": event(150)})).await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["outcome"], "send");
    assert_eq!(result["method"], "PUT");
    assert_eq!(result["headers"], json!({"x-crm-list": "vip"}));
    assert_eq!(result["body"], r#"{"email":"ann@x.com","tags":["big-sale","sale.completed"],"amount":150}"#);

    let (_, result) = hub.post(&path, json!({"event": event(5)})).await;
    assert_eq!((result["outcome"].as_str(), result["filtered_by"].as_str()), (Some("filtered"), Some("filter")));

    // An unsaved program, tried before saving: its error with the engine's message.
    let throws = "function handler(w) {\n  throw new Error('no list for ' + w.payload.data.email);\n}";
    let (_, result) = hub.post(&path, json!({"event": event(150), "transform": throws})).await;
    assert_eq!(result["outcome"], "failed", "{result}");
    assert_eq!(result["error"]["code"], "threw");
    assert_eq!(result["error"]["part"], "transform");
    assert!(result["error"]["message"].as_str().unwrap().contains("no list for ann@x.com"), "{result}");
    assert_eq!(result["error"]["logged"], "transform threw Error at line 2", "what is stored names no value");
    let (_, result) =
        hub.post(&path, json!({"event": event(150), "transform": "function handler(w) { for (;;) {} }"})).await;
    assert_eq!(result["error"]["code"], "time_limit", "{result}");

    // The type's example, with no programs at all: the webhook body as it is.
    let (_, result) = hub.post(&path, json!({"event_type": "sale.completed", "filter": null, "transform": null})).await;
    assert_eq!(result["outcome"], "send", "{result}");
    let sent: Value = serde_json::from_str(result["body"].as_str().unwrap()).unwrap();
    assert_eq!(sent["type"], "sale.completed");
    // The subscription has one type: no body at all runs on its example.
    let (status, result) = hub.call(hub.request(Method::POST, &path)).await;
    assert_eq!(status, StatusCode::OK, "{result}");
    hub.stop().await;
}

/// A transform that loops forever on one tenant's subscription fails its
/// own attempts at its time limit, while another tenant's plain
/// subscription keeps delivering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_transform_holds_up_no_other_tenant() {
    let receiver = Receiver::start().await;
    let hub = TestHub::start(Backend::Sqlite).await;
    let hostile = "function handler(w) { const a = []; for (;;) { a.push(JSON.stringify(w)); } }";
    let looping =
        subscribe_with(&hub, &receiver.url("/hostile"), None, Some("function handler(w) { for (;;) {} }")).await;
    let hungry = subscribe_with(&hub, &receiver.url("/hostile"), None, Some(hostile)).await;

    let other_key = hub.new_tenant().await;
    let client = reqwest::Client::new();
    let (status, _) = hub
        .call(
            client
                .post(format!("{}/v1/subscriptions", hub.base))
                .bearer_auth(&other_key)
                .json(&json!({"url": receiver.url("/plain"), "event_types": ["*"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    let mut hostile_events = Vec::new();
    for n in 0..20 {
        hostile_events.push(hub.send_event("sale.completed", json!({"n": n, "email": "x@y.z"})).await);
    }
    let started = Instant::now();
    for n in 0..10 {
        let (status, _) = hub
            .call(
                client
                    .post(format!("{}/v1/events", hub.base))
                    .bearer_auth(&other_key)
                    .json(&json!({"type": "client.created", "data": {"n": n}})),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    receiver.wait_for("/plain", 10).await;
    assert!(started.elapsed() < Duration::from_secs(10), "the plain tenant waited {:?}", started.elapsed());
    assert!(receiver.received("/hostile").is_empty(), "a failing transform sends nothing");

    let (loop_id, hungry_id) = (looping["id"].as_str().unwrap(), hungry["id"].as_str().unwrap());
    for event in &hostile_events[..3] {
        hub.wait_delivery_status(event, loop_id, "failed").await;
        hub.wait_delivery_status(event, hungry_id, "failed").await;
        let attempts = attempts_of(&hub, event).await;
        let errors: Vec<&str> = attempts.iter().filter_map(|a| a["error"].as_str()).collect();
        assert!(errors.contains(&"transform exceeded its time limit (10 ms of CPU)"), "{errors:?}");
        assert!(
            errors.iter().any(|e| e.starts_with("transform exceeded its memory limit")
                || e.starts_with("transform exceeded its time limit")),
            "{errors:?}"
        );
        assert!(attempts.iter().all(|a| a["outcome"] != "succeeded"));
        assert!(!errors.iter().any(|e| e.contains("x@y.z")), "no payload in stored errors");
    }
    // The hub still answers and delivers.
    eventually(Duration::from_secs(5), || async {
        (hub.get("/v1/subscriptions").await.0 == StatusCode::OK).then_some(())
    })
    .await;
    hub.stop().await;
}
