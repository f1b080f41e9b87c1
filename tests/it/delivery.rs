//! Event in → signed delivery out, on both backends: SQLite with the
//! in-process queue, and PostgreSQL with RabbitMQ.
use crate::common;

use common::receiver::Receiver;
use common::{verify_with_reference, Backend, TestHub};
use reqwest::StatusCode;
use serde_json::json;

crate::on_both_backends!(
    delivers_a_signed_webhook,
    fans_out_by_event_type,
    retries_after_server_errors_then_succeeds,
    gone_disables_the_subscription,
    exhausted_retries_leave_a_failed_delivery,
    idempotency_key_returns_the_original_event,
    concurrent_posts_share_batches_and_keys_stay_unique,
    redeliver_sends_again_with_the_same_id,
);

async fn delivers_a_signed_webhook(backend: Backend) {
    let receiver = Receiver::start().await;
    let hub = TestHub::start(backend).await;
    let sub = hub.subscribe(&receiver.url("/hook"), &["appointment.booked"]).await;
    let before = chrono::Utc::now().timestamp();
    let event_id = hub.send_event("appointment.booked", json!({"appointment_id": "apt_1", "client_id": "cl_9"})).await;

    let got = receiver.wait_for("/hook", 1).await;
    let req = &got[0];
    assert_eq!(req.header("webhook-id"), event_id);
    let ts: i64 = req.header("webhook-timestamp").parse().unwrap();
    assert!((before - 1..=before + 30).contains(&ts));
    assert!(req.header("webhook-signature").starts_with("v1,"));
    assert_eq!(req.header("content-type"), "application/json");
    assert!(req.header("user-agent").starts_with("Hookhub/"));
    let body = req.json();
    assert_eq!(body["id"], event_id, "the body carries the event id, as samples do");
    assert_eq!(body["type"], "appointment.booked");
    assert_eq!(body["data"], json!({"appointment_id": "apt_1", "client_id": "cl_9"}));
    assert!(chrono::DateTime::parse_from_rfc3339(body["timestamp"].as_str().unwrap()).is_ok());
    verify_with_reference(sub["secret"].as_str().unwrap(), &got);

    let sub_id = sub["id"].as_str().unwrap();
    let delivery = hub.wait_delivery_status(&event_id, sub_id, "succeeded").await;
    assert_eq!(delivery["attempts"], 1);
    assert_eq!(delivery["last_status_code"], 200);
    let (status, attempts) = hub.get(&format!("/v1/events/{event_id}/attempts")).await;
    assert_eq!(status, StatusCode::OK);
    let attempt = &attempts["data"][0];
    assert_eq!(attempt["status_code"], 200);
    assert_eq!(attempt["outcome"], "succeeded");
    assert_eq!(attempt["attempt_number"], 1);
    assert_eq!(attempt["response_body"], "answered 200");
    assert!(attempt["latency_ms"].as_i64().unwrap() >= 0);
    hub.stop().await;
}

async fn fans_out_by_event_type(backend: Backend) {
    let receiver = Receiver::start().await;
    let hub = TestHub::start(backend).await;
    hub.subscribe(&receiver.url("/booked"), &["appointment.booked"]).await;
    hub.subscribe(&receiver.url("/all"), &["*"]).await;
    hub.subscribe(&receiver.url("/clients"), &["client.created", "client.updated"]).await;

    let booked = hub.send_event("appointment.booked", json!({"n": 1})).await;
    let created = hub.send_event("client.created", json!({"n": 2})).await;

    let all = receiver.wait_for("/all", 2).await;
    let mut ids: Vec<_> = all.iter().map(|r| r.header("webhook-id").to_owned()).collect();
    ids.sort();
    let mut expected = vec![booked.clone(), created.clone()];
    expected.sort();
    assert_eq!(ids, expected);
    assert_eq!(receiver.wait_for("/booked", 1).await[0].header("webhook-id"), booked);
    assert_eq!(receiver.wait_for("/clients", 1).await[0].header("webhook-id"), created);
    // Give a wrongly routed delivery the time to show up before checking none did.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(receiver.received("/booked").len(), 1);
    assert_eq!(receiver.received("/clients").len(), 1);
    hub.stop().await;
}

async fn retries_after_server_errors_then_succeeds(backend: Backend) {
    let receiver = Receiver::start().await;
    receiver.script("/flaky", &[500, 503, 429]);
    let hub = TestHub::start(backend).await;
    let sub = hub.subscribe(&receiver.url("/flaky"), &["payment.received"]).await;
    let event_id = hub.send_event("payment.received", json!({"amount": 4500, "currency": "usd"})).await;

    let sub_id = sub["id"].as_str().unwrap();
    let delivery = hub.wait_delivery_status(&event_id, sub_id, "succeeded").await;
    assert_eq!(delivery["attempts"], 4);
    let got = receiver.received("/flaky");
    assert_eq!(got.len(), 4);
    assert!(got.iter().all(|r| r.header("webhook-id") == event_id), "webhook-id is stable across retries");
    assert!(got.windows(2).all(|w| w[0].body == w[1].body), "the body is identical on every retry");
    verify_with_reference(sub["secret"].as_str().unwrap(), &got);

    let (_, attempts) = hub.get(&format!("/v1/subscriptions/{sub_id}/attempts")).await;
    let attempts = attempts["data"].as_array().unwrap();
    let summary: Vec<_> = attempts
        .iter()
        .rev()
        .map(|a| {
            (a["attempt_number"].as_i64().unwrap(), a["status_code"].as_i64().unwrap(), a["outcome"].as_str().unwrap())
        })
        .collect();
    assert_eq!(summary, [(1, 500, "retrying"), (2, 503, "retrying"), (3, 429, "retrying"), (4, 200, "succeeded")]);
    assert_eq!(attempts[3]["response_body"], "answered 500");
    assert!(attempts[3]["error"].as_str().unwrap().contains("500"));
    hub.stop().await;
}

async fn gone_disables_the_subscription(backend: Backend) {
    let receiver = Receiver::start().await;
    receiver.script("/gone", &[410]);
    let hub = TestHub::start(backend).await;
    let sub = hub.subscribe(&receiver.url("/gone"), &["*"]).await;
    let sub_id = sub["id"].as_str().unwrap();
    let first = hub.send_event("client.archived", json!({"client_id": "cl_1"})).await;

    let delivery = hub.wait_delivery_status(&first, sub_id, "failed").await;
    assert_eq!(delivery["attempts"], 1);
    assert_eq!(delivery["last_status_code"], 410);
    let (_, sub_now) = hub.get(&format!("/v1/subscriptions/{sub_id}")).await;
    assert_eq!(sub_now["status"], "disabled");
    assert!(sub_now["disabled_reason"].as_str().unwrap().contains("410"));

    // A disabled subscription gets nothing more.
    let second = hub.send_event("client.archived", json!({"client_id": "cl_2"})).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let (_, event) = hub.get(&format!("/v1/events/{second}")).await;
    assert_eq!(event["deliveries"], json!([]));
    assert_eq!(receiver.received("/gone").len(), 1);

    // Its owner can turn it back on.
    let (status, body) = hub
        .call(
            hub.request(reqwest::Method::PATCH, &format!("/v1/subscriptions/{sub_id}"))
                .json(&json!({"status": "active"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "active");
    assert_eq!(body["disabled_reason"], serde_json::Value::Null);
    hub.stop().await;
}

async fn exhausted_retries_leave_a_failed_delivery(backend: Backend) {
    // Nothing listens on this port: every attempt is a connection error.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/nobody-home", closed.local_addr().unwrap());
    drop(closed);
    let hub = TestHub::start(backend).await;
    let sub = hub.subscribe(&url, &["consent.signed"]).await;
    let sub_id = sub["id"].as_str().unwrap();
    let event_id = hub.send_event("consent.signed", json!({"form": "intake"})).await;

    // Schedule "100ms,200ms,300ms": four attempts, then the dead letter.
    let delivery = hub.wait_delivery_status(&event_id, sub_id, "failed").await;
    assert_eq!(delivery["attempts"], 4);
    assert_eq!(delivery["next_attempt_at"], serde_json::Value::Null);
    assert!(delivery["last_error"].as_str().unwrap().contains("connection"));
    let (_, attempts) = hub.get(&format!("/v1/events/{event_id}/attempts")).await;
    let attempts = attempts["data"].as_array().unwrap();
    assert_eq!(attempts.len(), 4);
    assert_eq!(attempts[0]["outcome"], "failed");
    assert!(attempts.iter().all(|a| a["status_code"].is_null()));
    // The subscription stays active: failing is not the same as gone.
    let (_, sub_now) = hub.get(&format!("/v1/subscriptions/{sub_id}")).await;
    assert_eq!(sub_now["status"], "active");
    hub.stop().await;
}

/// Concurrent POSTs are group-committed: repeated keys within one batch,
/// and across batches, still give one event per key and one delivery each.
async fn concurrent_posts_share_batches_and_keys_stay_unique(backend: Backend) {
    let receiver = Receiver::start().await;
    let hub = TestHub::start(backend).await;
    hub.subscribe(&receiver.url("/many"), &["*"]).await;
    let posts = (0..60).map(|i| {
        let body = json!({"type": "payment.received", "data": {"n": i}, "idempotency_key": format!("k{}", i % 6)});
        let req = hub.request(reqwest::Method::POST, "/v1/events").json(&body);
        async move {
            let res = req.send().await.unwrap();
            assert_eq!(res.status(), StatusCode::ACCEPTED);
            let replayed = res.headers()["idempotent-replayed"] == "true";
            let body: serde_json::Value = res.json().await.unwrap();
            (i % 6, body["id"].as_str().unwrap().to_owned(), replayed)
        }
    });
    let answers = futures::future::join_all(posts).await;
    for key in 0..6 {
        let of_key: Vec<_> = answers.iter().filter(|(k, _, _)| *k == key).collect();
        assert!(of_key.iter().all(|(_, id, _)| *id == of_key[0].1), "one event per key");
        assert_eq!(of_key.iter().filter(|(_, _, replayed)| !replayed).count(), 1, "one original per key");
    }
    receiver.wait_for("/many", 6).await;
    // A seventh would be a key that made a second event; give it time to show.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(receiver.wait_for("/many", 6).await.len(), 6);
    hub.stop().await;
}

async fn idempotency_key_returns_the_original_event(backend: Backend) {
    let receiver = Receiver::start().await;
    let hub = TestHub::start(backend).await;
    hub.subscribe(&receiver.url("/once"), &["*"]).await;
    let body = json!({"type": "payment.received", "data": {"amount": 1}, "idempotency_key": "pay_123"});
    let first = hub.request(reqwest::Method::POST, "/v1/events").json(&body).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    assert_eq!(first.headers()["idempotent-replayed"], "false");
    let first: serde_json::Value = first.json().await.unwrap();
    let again = hub.request(reqwest::Method::POST, "/v1/events").json(&body).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: serde_json::Value = again.json().await.unwrap();
    assert_eq!(first["id"], again["id"]);

    // The same key from the `Idempotency-Key` header is the same event too.
    let (_, via_header) = hub
        .call(
            hub.request(reqwest::Method::POST, "/v1/events")
                .header("Idempotency-Key", "pay_123")
                .json(&json!({"type": "payment.received", "data": {"amount": 1}})),
        )
        .await;
    assert_eq!(via_header["id"], first["id"]);

    // Another tenant's key space is its own.
    let other = hub.new_tenant().await;
    let (_, theirs) =
        hub.call(reqwest::Client::new().post(format!("{}/v1/events", hub.base)).bearer_auth(other).json(&body)).await;
    assert_ne!(theirs["id"], first["id"]);

    receiver.wait_for("/once", 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(receiver.received("/once").len(), 1, "one event, one delivery");
    let (_, events) = hub.get("/v1/events").await;
    assert_eq!(events["data"].as_array().unwrap().len(), 1);
    hub.stop().await;
}

async fn redeliver_sends_again_with_the_same_id(backend: Backend) {
    let receiver = Receiver::start().await;
    let hub = TestHub::start(backend).await;
    let a = hub.subscribe(&receiver.url("/a"), &["*"]).await;
    let b = hub.subscribe(&receiver.url("/b"), &["*"]).await;
    let event_id = hub.send_event("program.assigned", json!({"program": "strength-12w"})).await;
    receiver.wait_for("/a", 1).await;
    receiver.wait_for("/b", 1).await;

    // Only to /b.
    let (status, body) =
        hub.post(&format!("/v1/events/{event_id}/redeliver"), json!({"subscription_id": b["id"]})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let again = receiver.wait_for("/b", 2).await;
    assert_eq!(again[1].header("webhook-id"), event_id);
    verify_with_reference(b["secret"].as_str().unwrap(), &again);

    // To every subscription.
    let (status, _) = hub.call(hub.request(reqwest::Method::POST, &format!("/v1/events/{event_id}/redeliver"))).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    receiver.wait_for("/a", 2).await;
    receiver.wait_for("/b", 3).await;
    let a_id = a["id"].as_str().unwrap();
    let delivery = hub.wait_delivery_status(&event_id, a_id, "succeeded").await;
    assert_eq!(delivery["attempts"], 2);

    let (status, _) = hub.post("/v1/events/evt_00000000000000000000000000000000/redeliver", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    hub.stop().await;
}
