//! Kill -9 the dispatcher mid-stream on PostgreSQL + RabbitMQ, restart it,
//! and check that every event still reaches the receiver.
use crate::common;

use common::receiver::Receiver;
use common::{drop_test_resources, eventually, post_events, spawn_part, test_settings, Backend};
use hookhub::{Hub, Role, Settings};
use serde_json::json;
use std::process::{Child, Command};
use std::time::Duration;

const EVENTS: usize = 300;

/// Starts `hookhub dispatcher` as its own process, configured like `settings`.
fn spawn_dispatcher(settings: &Settings) -> Child {
    spawn_part(
        settings,
        "dispatcher",
        &[
            ("HOOKHUB_DELIVERY_CONCURRENCY", "4"),
            ("HOOKHUB_DELIVERY_TIMEOUT_MS", "2000"),
            ("HOOKHUB_DELIVERY_POLL_INTERVAL_MS", "100"),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatcher_killed_mid_stream_loses_nothing() {
    let receiver = Receiver::start().await;
    // Slow enough that the kill lands with deliveries in flight.
    receiver.set_delay(Duration::from_millis(15));
    let settings = test_settings(Backend::Postgres).await;

    // Ingest and relay run here; the dispatcher is a separate process.
    let migrate = hookhub_store::Store::connect(&settings.database_url).await.unwrap();
    migrate.migrate().await.unwrap();
    let ingest = Hub::start(&settings, Role::Ingest).await.unwrap();
    let relay = Hub::start(&settings, Role::Relay).await.unwrap();
    let base = format!("http://127.0.0.1:{}", ingest.port().unwrap());
    let (_, key) = ingest.store().create_tenant("crash test").await.unwrap();
    let client = reqwest::Client::new();
    let resp = client
        .post(format!("{base}/v1/subscriptions"))
        .bearer_auth(key.expose())
        .json(&serde_json::json!({"url": receiver.url("/crm"), "event_types": ["*"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);

    let mut dispatcher = spawn_dispatcher(&settings);
    let sent = post_events(&[base], key.expose(), EVENTS, |n| ("appointment.booked", json!({"n": n}))).await;
    assert_eq!(sent.len(), EVENTS);

    eventually(Duration::from_secs(30), || async { (receiver.received("/crm").len() >= 40).then_some(()) }).await;
    dispatcher.kill().unwrap(); // SIGKILL: no graceful anything.
    dispatcher.wait().unwrap();
    let at_kill = receiver.received("/crm").len();
    assert!(at_kill < EVENTS, "the kill must land mid-stream (got {at_kill} of {EVENTS} already)");

    let mut dispatcher = spawn_dispatcher(&settings);
    let received = receiver.wait_for_ids("/crm", EVENTS, Duration::from_secs(60)).await;
    assert_eq!(received, sent, "every event delivered, none invented");
    let total = receiver.received("/crm").len();
    println!(
        "sent {EVENTS}, delivered {}, lost 0, duplicates {} (at-least-once), {at_kill} delivered before the kill",
        received.len(),
        total - received.len()
    );

    dispatcher.kill().unwrap();
    dispatcher.wait().unwrap();
    relay.shutdown().await;
    ingest.shutdown().await;
    drop_test_resources(&settings).await;
}

/// Starts `hookhub relay` as its own process.
fn spawn_relay(settings: &Settings) -> Child {
    spawn_part(settings, "relay", &[("HOOKHUB_RELAY_POLL_INTERVAL_MS", "50"), ("RUST_LOG", "error")])
}

fn kill9(child: &mut Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_the_dispatcher_kill_the_relay_and_drop_every_broker_connection_lose_nothing() {
    const EVENTS: usize = 10_000;
    let receiver = Receiver::start().await;
    let settings = test_settings(Backend::Postgres).await;
    hookhub_store::Store::connect(&settings.database_url).await.unwrap().migrate().await.unwrap();
    let ingest = Hub::start(&settings, Role::Ingest).await.unwrap();
    let base = format!("http://127.0.0.1:{}", ingest.port().unwrap());
    let (_, key) = ingest.store().create_tenant("faults").await.unwrap();
    let key = key.expose().to_owned();
    let client = reqwest::Client::new();
    let resp = client
        .post(format!("{base}/v1/subscriptions"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"url": receiver.url("/crm"), "event_types": ["*"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let mut relay = spawn_relay(&settings);
    let mut dispatcher = spawn_dispatcher(&settings);

    // Events keep coming while the faults happen.
    let sender = tokio::spawn({
        let (base, key) = (base.clone(), key.clone());
        async move { post_events(&[base], &key, EVENTS, |n| ("payment.received", json!({"n": n}))).await }
    });
    let reach = |n: usize| receiver.wait_for_ids("/crm", n, Duration::from_secs(120));

    reach(1_000).await;
    kill9(&mut dispatcher);
    dispatcher = spawn_dispatcher(&settings);
    reach(2_500).await;
    kill9(&mut relay);
    relay = spawn_relay(&settings);
    reach(4_000).await;
    let closed = Command::new("rabbitmqctl").args(["close_all_connections", "fault injection"]).output();
    let broker_fault = closed.is_ok_and(|o| o.status.success());
    assert!(broker_fault, "rabbitmqctl close_all_connections must run (CI runs as root)");

    let sent = sender.await.unwrap();
    assert_eq!(sent.len(), EVENTS);
    let received = receiver.wait_for_ids("/crm", EVENTS, Duration::from_secs(300)).await;
    assert_eq!(received, sent, "every event delivered, none invented");
    let total = receiver.received("/crm").len();
    println!(
        "faults: sent {EVENTS}, delivered {}, lost 0, duplicates {} ({:.2} %), faults injected: dispatcher kill -9, \
         relay kill -9, all broker connections closed",
        received.len(),
        total - received.len(),
        100.0 * (total - received.len()) as f64 / EVENTS as f64,
    );
    kill9(&mut dispatcher);
    kill9(&mut relay);
    ingest.shutdown().await;
    drop_test_resources(&settings).await;
}
