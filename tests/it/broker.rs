//! Broker faults on RabbitMQ: a clean stop logs no error, and a queue
//! deleted under a running hub is declared again without a restart.
use crate::common;

use common::receiver::Receiver;
use common::{drop_test_resources, eventually, hookhub_command, test_settings, Backend, TestHub};
use hookhub::{Hub, Role};
use hookhub_dispatcher::queue::amqp::AmqpPublisher;
use hookhub_dispatcher::queue::{EventMessage, Lane, Publisher, QueueError};
use serde_json::json;
use std::process::Stdio;
use std::time::Duration;

/// Deletes the hub's queue behind its back, as an operator (or a lost
/// node) would.
async fn delete_queue(settings: &hookhub::Settings) {
    use lapin::options::QueueDeleteOptions;
    let amqp = settings.amqp_config().expect("a RabbitMQ test");
    let conn = lapin::Connection::connect(&amqp.url, lapin::ConnectionProperties::default()).await.unwrap();
    let channel = conn.create_channel().await.unwrap();
    channel.queue_delete(&amqp.queue, QueueDeleteOptions::default()).await.unwrap();
    conn.close(200, "queue deleted").await.unwrap();
}

/// How many messages wait in the queue (declaring it passively).
async fn queued(settings: &hookhub::Settings) -> u32 {
    use lapin::options::QueueDeclareOptions;
    let amqp = settings.amqp_config().expect("a RabbitMQ test");
    let conn = lapin::Connection::connect(&amqp.url, lapin::ConnectionProperties::default()).await.unwrap();
    let channel = conn.create_channel().await.unwrap();
    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
    let queue = channel.queue_declare(&amqp.queue, passive, Default::default()).await.unwrap();
    conn.close(200, "counted").await.unwrap();
    queue.message_count()
}

fn message(n: u32) -> EventMessage {
    EventMessage {
        event_id: format!("evt_{n}"),
        tenant_id: "ten_1".into(),
        event_type: "client.created".into(),
        ordering_key: None,
    }
}

/// The publisher alone: once the queue is gone a publish is returned as
/// unroutable, and the next one declares the queue again and lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_whose_queue_was_deleted_declares_it_again() {
    let settings = test_settings(Backend::Postgres).await;
    let publisher = AmqpPublisher::new(settings.amqp_config().unwrap());
    publisher.publish(&[message(1)], Lane::Main).await.unwrap();
    assert_eq!(queued(&settings).await, 1);

    delete_queue(&settings).await;
    assert!(matches!(publisher.publish(&[message(2)], Lane::Main).await, Err(QueueError::Unroutable)));
    publisher.publish(&[message(3)], Lane::Main).await.expect("the queue is declared again");
    assert_eq!(queued(&settings).await, 1, "the message after the deletion is in the new queue");
    publisher.close().await;
    drop_test_resources(&settings).await;
}

/// A whole hub: the queue deleted while relay and dispatcher are connected;
/// events sent afterwards are delivered without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_whose_queue_was_deleted_delivers_without_a_restart() {
    let receiver = Receiver::start().await;
    let hub = TestHub::start(Backend::Postgres).await;
    hub.subscribe(&receiver.url("/crm"), &["*"]).await;
    hub.send_event("client.created", json!({"n": 0})).await;
    receiver.wait_for("/crm", 1).await;

    delete_queue(&hub.settings).await;
    for n in 1..=5 {
        hub.send_event("client.created", json!({"n": n})).await;
    }
    let got = receiver.wait_for_ids("/crm", 6, Duration::from_secs(30)).await;
    assert_eq!(got.len(), 6);
    hub.stop().await;
}

/// The relay on its own (dispatchers elsewhere, or down for a deploy): with
/// no consumer to declare the queue again, the relay must, or every
/// publish is returned until someone restarts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_whose_queue_was_deleted_publishes_again_by_itself() {
    let settings = test_settings(Backend::Postgres).await;
    let store = settings.store().await.unwrap();
    store.migrate().await.unwrap();
    let (tenant, _) = store.create_tenant("t").await.unwrap();
    let relay = Hub::start(&settings, Role::Relay).await.unwrap();
    let ingest = |n: u32| {
        let store = store.clone();
        let tenant = tenant.id.clone();
        async move { store.ingest_event(&tenant, common::client_created(json!({"n": n}))).await.unwrap() }
    };
    ingest(0).await;
    let backlog_empty = || async { (store.outbox_status().await.unwrap().backlog == 0).then_some(()) };
    eventually(Duration::from_secs(10), backlog_empty).await;

    delete_queue(&settings).await;
    ingest(1).await;
    eventually(Duration::from_secs(20), backlog_empty).await;
    assert_eq!(queued(&settings).await, 1, "the event is in the queue declared again");

    // No consumer takes it: what comes next stays in the outbox, where
    // claims take tenants in turn, rather than queueing first come, first
    // served in the broker.
    ingest(2).await;
    ingest(3).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(store.outbox_status().await.unwrap().backlog, 2);
    assert_eq!(queued(&settings).await, 1);
    relay.shutdown().await;
    drop_test_resources(&settings).await;
}

/// `hookhub serve` on RabbitMQ, stopped with SIGTERM after delivering: exit
/// 0, and nothing in its log an operator's alert on errors would fire on.
/// Several rounds: the broker client's errors came in most runs, not all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_hub_without_an_error_in_its_log() {
    let receiver = Receiver::start().await;
    for round in 0..3 {
        let settings = test_settings(Backend::Postgres).await;
        let store = settings.store().await.unwrap();
        store.migrate().await.unwrap();
        let (_, key) = store.create_tenant("t").await.unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let base = format!("http://127.0.0.1:{port}");
        let child = hookhub_command(&settings, &["serve"])
            .env("HOOKHUB_LISTEN", format!("127.0.0.1:{port}"))
            .env("HOOKHUB_ALLOW_HTTP_ENDPOINTS", "true")
            .env("HOOKHUB_ALLOW_PRIVATE_ENDPOINTS", "true")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let client = reqwest::Client::new();
        eventually(Duration::from_secs(30), || async {
            let ready = client.get(format!("{base}/readyz")).send().await.ok()?;
            ready.status().is_success().then_some(())
        })
        .await;
        let path = format!("/r{round}");
        let body = json!({"url": receiver.url(&path), "event_types": ["*"]});
        let resp =
            client.post(format!("{base}/v1/subscriptions")).bearer_auth(key.expose()).json(&body).send().await.unwrap();
        assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
        for n in 0..5 {
            let event = json!({"type": "client.created", "data": {"n": n}});
            common::post_json(&client, &format!("{base}/v1/events"), key.expose(), event).await;
        }
        receiver.wait_for(&path, 5).await;

        let term = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        assert!(term.success());
        let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await.unwrap().unwrap();
        let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "round {round}: exit {:?}\n{log}", out.status);
        assert!(!log.contains("ERROR"), "round {round}: an error logged on a clean stop:\n{log}");
        assert!(!log.contains("promise has vanished"), "round {round}:\n{log}");
        drop_test_resources(&settings).await;
    }
}
