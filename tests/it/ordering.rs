//! Ordered delivery per key: a subscription with `ordering: "per_key"`
//! gets the events of one key in ingest order, through random failures,
//! retries and a kill -9 of the hub, on both backends (on PostgreSQL with a
//! second dispatcher process beside the hub); a dead letter blocks its key
//! (and only its key) until it is skipped.
use crate::common;

use common::receiver::Receiver;
use common::{drop_test_resources, eventually, spawn_part, test_settings, Backend, TestHub};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::process::Child;
use std::time::Duration;

on_both_backends!(
    per_key_order_holds_through_random_failures_and_a_kill_9,
    a_dead_letter_blocks_its_key_until_skipped,
    ordering_input_is_checked_by_field,
    the_claim_takes_only_the_head_of_each_key,
);

const KEYS: usize = 50;
const ROUNDS: usize = 8;

/// A loopback port nothing listens on (the hub restarts on the same one).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `hookhub serve` (ingest, relay and dispatcher in one process, as the
/// embedded mode runs), as its own process so that it can be killed -9.
fn spawn_hub(settings: &hookhub::Settings, port: u16) -> Child {
    let listen = format!("127.0.0.1:{port}");
    spawn_part(
        settings,
        "serve",
        &[
            ("HOOKHUB_LISTEN", &listen),
            ("HOOKHUB_DELIVERY_POLL_INTERVAL_MS", "100"),
            ("HOOKHUB_RELAY_POLL_INTERVAL_MS", "50"),
            ("RUST_LOG", "error"),
        ],
    )
}

async fn wait_ready(client: &reqwest::Client, base: &str) {
    eventually(Duration::from_secs(60), || async {
        client.get(format!("{base}/healthz")).send().await.ok().filter(|r| r.status().is_success()).map(drop)
    })
    .await;
}

fn kill9(child: &mut Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Per key, the events whose first successful arrival came in that order.
fn first_successes(received: &[common::receiver::Received]) -> HashMap<String, Vec<String>> {
    let mut seen = HashSet::new();
    let mut by_key: HashMap<String, Vec<String>> = HashMap::new();
    for r in received.iter().filter(|r| (200..300).contains(&r.status)) {
        let id = r.header("webhook-id").to_owned();
        if seen.insert(id.clone()) {
            let key = r.json()["data"]["key"].as_str().unwrap().to_owned();
            by_key.entry(key).or_default().push(id);
        }
    }
    by_key
}

async fn per_key_order_holds_through_random_failures_and_a_kill_9(backend: Backend) {
    let receiver = Receiver::start().await;
    receiver.fail_randomly("/crm", 0.2);
    receiver.set_delay(Duration::from_millis(3));
    let mut settings = test_settings(backend).await;
    // Nine attempts: a 20 % failure rate dead-letters one in two million.
    settings.retry_schedule = "20ms,50ms,50ms,100ms,100ms,100ms,100ms,100ms".into();
    let key = {
        let store = settings.store().await.unwrap();
        store.migrate().await.unwrap();
        let (_, key) = store.create_tenant("ordering").await.unwrap();
        key.expose().to_owned()
    };
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut hub = common::Processes(vec![spawn_hub(&settings, port)]);
    wait_ready(&client, &base).await;
    if backend == Backend::Postgres {
        // Scale-out: a second dispatcher on the same database and queue,
        // competing for messages and claims (it outlives the kill below).
        let second =
            spawn_part(&settings, "dispatcher", &[("HOOKHUB_DELIVERY_POLL_INTERVAL_MS", "100"), ("RUST_LOG", "error")]);
        hub.0.push(second);
    }

    let body = json!({"url": receiver.url("/crm"), "event_types": ["*"], "ordering": "per_key"});
    let resp = client.post(format!("{base}/v1/subscriptions")).bearer_auth(&key).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let sub: Value = resp.json().await.unwrap();
    assert_eq!((sub["ordering"].as_str(), sub["on_dead_letter"].as_str()), (Some("per_key"), Some("skip")));

    // Round by round, one event per key in each batch, the keys in a
    // different order each time: keys interleave, and each key's events
    // are accepted one after the other, which is what ingest order means.
    let mut expected: HashMap<String, Vec<String>> = HashMap::new();
    for round in 0..ROUNDS {
        let mut keys: Vec<usize> = (0..KEYS).collect();
        keys.rotate_left((round * 7) % KEYS);
        if round % 2 == 1 {
            keys.reverse();
        }
        let events: Vec<Value> = keys
            .iter()
            .map(|k| {
                let key = format!("apt_{k}");
                json!({"type": "appointment.updated", "data": {"key": key, "round": round}, "ordering_key": key})
            })
            .collect();
        let resp = client
            .post(format!("{base}/v1/events/batch"))
            .bearer_auth(&key)
            .json(&json!({ "events": events }))
            .send()
            .await
            .unwrap();
        let answer: Value = resp.json().await.unwrap();
        assert_eq!(answer["accepted"], KEYS, "{answer}");
        for (k, result) in keys.iter().zip(answer["results"].as_array().unwrap()) {
            expected.entry(format!("apt_{k}")).or_default().push(result["id"].as_str().unwrap().to_owned());
        }
    }
    let total = KEYS * ROUNDS;

    let delivered = |r: &Receiver| first_successes(&r.received("/crm")).values().map(Vec::len).sum::<usize>();
    eventually(Duration::from_secs(60), || async { (delivered(&receiver) >= total / 5).then_some(()) }).await;
    kill9(&mut hub.0[0]);
    let at_kill = delivered(&receiver);
    assert!(at_kill < total, "the kill must land mid-run ({at_kill} of {total} delivered already)");
    hub.0[0] = spawn_hub(&settings, port);
    wait_ready(&client, &base).await;

    eventually(Duration::from_secs(180), || async { (delivered(&receiver) >= total).then_some(()) }).await;
    let received = receiver.received("/crm");
    let got = first_successes(&received);
    for (k, ids) in &expected {
        assert_eq!(got.get(k), Some(ids), "key {k}: first successful arrivals out of ingest order");
    }
    let failed = received.iter().filter(|r| r.status >= 500).count();
    assert!(failed > 0, "the endpoint failed some attempts");
    println!(
        "{backend:?}: {total} events over {KEYS} keys, {} requests ({failed} answered 500), {at_kill} delivered \
         before the kill -9; every key's first successes in ingest order",
        received.len()
    );
    drop(hub);
    drop_test_resources(&settings).await;
}

async fn a_dead_letter_blocks_its_key_until_skipped(backend: Backend) {
    let receiver = Receiver::start().await;
    let hub = TestHub::start(backend).await;
    let (status, sub) = hub
        .post(
            "/v1/subscriptions",
            json!({"url": receiver.url("/crm"), "event_types": ["*"], "ordering": "per_key", "on_dead_letter": "block"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sub}");
    let sub = sub["id"].as_str().unwrap().to_owned();
    let post = |key: &'static str, n: u32| {
        let hub = &hub;
        async move {
            let body = json!({"type": "appointment.updated", "data": {"n": n}, "ordering_key": key});
            let (status, body) = hub.post("/v1/events", body).await;
            assert_eq!(status, StatusCode::ACCEPTED, "{body}");
            body["id"].as_str().unwrap().to_owned()
        }
    };

    // Four attempts (the test schedule), all refused: dead-lettered.
    receiver.script("/crm", &[500, 500, 500, 500]);
    let first = post("apt_1", 1).await;
    hub.wait_delivery_status(&first, &sub, "failed").await;
    assert_eq!(receiver.received("/crm").len(), 4);

    // The key stays blocked; another key goes.
    let second = post("apt_1", 2).await;
    let other = post("apt_2", 3).await;
    hub.wait_delivery_status(&other, &sub, "succeeded").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    hub.wait_delivery_status(&second, &sub, "pending").await;
    assert!(!receiver.ids("/crm").contains(&second), "a blocked key sends nothing after its dead letter");

    let (status, blocked) = hub.get(&format!("/v1/subscriptions/{sub}/blocked-keys")).await;
    assert_eq!(status, StatusCode::OK, "{blocked}");
    let keys = blocked["data"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{blocked}");
    assert_eq!(keys[0]["ordering_key"], "apt_1");
    assert_eq!(keys[0]["reason"], "dead_lettered");
    assert_eq!(keys[0]["head"]["event_id"], first.as_str());
    assert_eq!(keys[0]["waiting"], 1);

    // Skipping a key that is not blocked is refused; skipping this one lets the next go.
    let (status, body) = hub.post(&format!("/v1/subscriptions/{sub}/blocked-keys/apt_2/skip"), json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = hub.post(&format!("/v1/subscriptions/{sub}/blocked-keys/apt_1/skip"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["event_id"], first.as_str());
    hub.wait_delivery_status(&second, &sub, "succeeded").await;
    let (_, blocked) = hub.get(&format!("/v1/subscriptions/{sub}/blocked-keys")).await;
    assert_eq!(blocked["data"], json!([]));

    // Redelivering the dead letter sends it (it is done with its key now).
    let (status, body) = hub.post(&format!("/v1/events/{first}/redeliver"), json!({"subscription_id": sub})).await;
    assert!(status.is_success(), "{status} {body}");
    hub.wait_delivery_status(&first, &sub, "succeeded").await;
    hub.stop().await;
}

async fn ordering_input_is_checked_by_field(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let (status, body) =
        hub.post("/v1/events", json!({"type": "appointment.updated", "data": {}, "ordering_key": "jane doe"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["field"], "ordering_key", "{body}");
    let (status, body) =
        hub.post("/v1/events", json!({"type": "appointment.updated", "data": {}, "ordering_key": 42})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = hub
        .post(
            "/v1/subscriptions",
            json!({"url": "http://127.0.0.1:9/x", "event_types": ["*"], "ordering": "fifo", "on_dead_letter": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let fields: Vec<&str> = body["errors"].as_array().unwrap().iter().filter_map(|e| e["field"].as_str()).collect();
    assert_eq!(fields, ["ordering", "on_dead_letter"], "{body}");
    // A key is shown with its event.
    let (status, body) =
        hub.post("/v1/events", json!({"type": "appointment.updated", "data": {}, "ordering_key": "apt_42"})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (_, event) = hub.get(&format!("/v1/events/{}", body["id"].as_str().unwrap())).await;
    assert_eq!(event["ordering_key"], "apt_42");
    hub.stop().await;
}

/// Below the API: an ordered delivery is claimed only as the head of its
/// key, and not while an earlier event of its key is still being fanned
/// out (here: two events that overtook the first one in the queue).
async fn the_claim_takes_only_the_head_of_each_key(backend: Backend) {
    use hookhub_store::domain::{
        now, EndpointUrl, EventTypeFilter, OnDeadLetter, OrderingMode, OrderingPolicy, SubscriptionStatus,
    };
    use hookhub_store::repo::{
        BreakerPolicy, Delivery, Event, FreshDelivery, Loaded, NewAttempt, NewSubscription, NextStep,
    };
    let (settings, store, tenant) = common::test_store(backend).await;
    let new = NewSubscription {
        url: EndpointUrl::parse("http://127.0.0.1:9/ordered", true).unwrap(),
        event_types: EventTypeFilter::All,
        description: String::new(),
        rate_limit_per_second: None,
        status: SubscriptionStatus::Active,
        ordering: OrderingPolicy { mode: OrderingMode::PerKey, on_dead_letter: OnDeadLetter::Skip },
        programs: Default::default(),
    };
    let sub = store.create_subscription(&tenant.id, new).await.unwrap();
    let mut events: Vec<Event> = Vec::new();
    for key in ["apt_1", "apt_1", "apt_2"] {
        let new = hookhub_store::repo::NewEvent {
            ordering_key: Some(key.parse().unwrap()),
            ..common::client_created(json!({}))
        };
        events.push(store.ingest_event(&tenant.id, new).await.unwrap().event);
    }
    let fresh: Vec<Delivery> = events
        .iter()
        .map(|e| Delivery::new(&tenant.id, &e.id, &sub.id, now()).keeping_order(e.ordering_key.as_ref()))
        .collect();
    let write = |which: &[usize]| {
        let rows: Vec<FreshDelivery> = which.iter().map(|&i| FreshDelivery::Unattempted(fresh[i].clone())).collect();
        let ids: Vec<_> = which.iter().map(|&i| events[i].id.clone()).collect();
        let keys: Vec<_> = which.iter().map(|&i| (sub.id.clone(), fresh[i].ordering_key.clone().unwrap())).collect();
        let store = &store;
        async move {
            store.write_fan_out(&rows, BreakerPolicy::default()).await.unwrap();
            store.mark_fanned_out(&ids).await.unwrap();
            store.wake_heads(&keys).await.unwrap();
        }
    };
    let lease = chrono::Duration::seconds(60);
    let claim = || async {
        let due = store.claim_due_deliveries(10, lease).await.unwrap();
        let mut claimed: Vec<usize> =
            due.iter().map(|d| fresh.iter().position(|f| f.id == d.id).expect("a delivery of this test")).collect();
        claimed.sort_unstable();
        claimed
    };

    write(&[1, 2]).await;
    assert_eq!(claim().await, [2], "apt_1's second waits for its first, which is not fanned out yet");
    write(&[0]).await;
    assert_eq!(claim().await, [0], "the head of apt_1; its second waits behind it");
    assert_eq!(claim().await, Vec::<usize>::new(), "a leased head is not claimed again, nor what is behind it");

    let Loaded::Ready(work) = store.delivery_work(&fresh[0].id).await.unwrap() else { panic!("the head reads") };
    let attempt =
        NewAttempt { attempted_at: now(), status_code: Some(200), latency_ms: 1, error: None, response_body: None };
    assert!(store.record_attempt(&work, attempt, NextStep::Succeeded, BreakerPolicy::default()).await.unwrap());
    let (apt_1, apt_2) = ((sub.id.clone(), "apt_1".parse().unwrap()), (sub.id.clone(), "apt_2".parse().unwrap()));
    let heads = store.claim_heads(&[apt_1.clone(), apt_2, apt_1], lease).await.unwrap();
    let heads: Vec<_> = heads.iter().map(|d| (&d.id, &d.tenant_id)).collect();
    assert_eq!(
        heads,
        [(&fresh[1].id, &tenant.id)],
        "the head succeeded: the next of its key is taken, once; apt_2's is leased"
    );
    assert_eq!(claim().await, Vec::<usize>::new(), "a head taken by a wake is leased like a claimed one");
    assert_eq!(store.wake_all_heads().await.unwrap(), 0, "no head left waiting");
    drop_test_resources(&settings).await;
}
