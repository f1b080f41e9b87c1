//! Running it in production: metrics, readiness, retention, the admin CLI,
//! and scale-out (two of each part on one PostgreSQL and one queue).
use crate::common;

use common::receiver::Receiver;
use common::{drop_test_resources, hookhub_command, post_events, test_settings, Backend, TestHub};
use hookhub::{Hub, Role, Settings};
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_happened_and_readyz_checks_the_store() {
    let receiver = Receiver::start().await;
    receiver.script("/flaky", &[503]);
    let hub = TestHub::start_with(Backend::Sqlite, |s| s.metrics_listen = Some("127.0.0.1:0".into())).await;
    hub.subscribe(&receiver.url("/flaky"), &["*"]).await;
    let event = hub.send_event("client.created", json!({"client_id": "c1"})).await;
    receiver.wait_for("/flaky", 2).await;
    let subs = hub.get("/v1/subscriptions").await.1;
    hub.wait_delivery_status(&event, subs["data"][0]["id"].as_str().unwrap(), "succeeded").await;

    let ops = format!("http://127.0.0.1:{}", hub.hub().metrics_port().unwrap());
    let text = reqwest::get(format!("{ops}/metrics")).await.unwrap().text().await.unwrap();
    assert!(metric(&text, "hookhub_events_accepted_total") >= 1.0, "{text}");
    assert!(metric(&text, "hookhub_events_published_total") >= 1.0);
    assert!(metric(&text, "hookhub_attempts_total{outcome=\"retrying\",status_class=\"5xx\"}") >= 1.0, "{text}");
    assert!(metric(&text, "hookhub_attempts_total{outcome=\"succeeded\",status_class=\"2xx\"}") >= 1.0);
    assert!(metric(&text, "hookhub_delivery_latency_seconds_count") >= 1.0);
    assert!(metric(&text, "hookhub_attempt_duration_seconds_count") >= 2.0);
    for gauge in ["hookhub_outbox_backlog", "hookhub_outbox_oldest_age_seconds", "hookhub_retry_queue_depth"] {
        assert!(text.contains(&format!("\n{gauge} ")), "{gauge} in {text}");
    }
    // Per tenant class: one series per plan, none per tenant.
    for gauge in
        ["hookhub_outbox_backlog_by_plan", "hookhub_due_deliveries_by_plan", "hookhub_oldest_due_age_seconds_by_plan"]
    {
        let series = text.lines().filter(|l| l.starts_with(&format!("{gauge}{{"))).count();
        assert_eq!(series, 5, "{gauge}: a series per plan in {text}");
        assert!(text.contains(&format!("{gauge}{{plan=\"studio\"}} ")), "{gauge} in {text}");
    }
    assert!(text.contains("process_resident_memory_bytes"));
    let ready = reqwest::get(format!("{}/readyz", hub.base)).await.unwrap();
    assert_eq!(ready.status(), 200);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_purges_finished_events_only() {
    let receiver = Receiver::start().await;
    receiver.script("/down", &[500; 50]);
    let hub = TestHub::start_with(Backend::Sqlite, |s| s.retry_schedule = "1h".into()).await;
    hub.subscribe(&receiver.url("/ok"), &["client.created"]).await;
    hub.subscribe(&receiver.url("/down"), &["client.updated"]).await;
    let done = hub.send_event("client.created", json!({"client_id": "c1"})).await;
    let waiting = hub.send_event("client.updated", json!({"client_id": "c1", "changes": {}})).await;
    receiver.wait_for("/ok", 1).await;
    receiver.wait_for("/down", 1).await;
    let subs = hub.get("/v1/subscriptions").await.1;
    let ok_sub = subs["data"].as_array().unwrap().iter().find(|s| s["url"].as_str().unwrap().ends_with("/ok")).unwrap();
    hub.wait_delivery_status(&done, ok_sub["id"].as_str().unwrap(), "succeeded").await;

    let purged = hookhub_dispatcher::retention::purge(hub.hub().store(), Duration::ZERO).await.unwrap();
    assert_eq!((purged.events, purged.deliveries, purged.attempts), (1, 1, 1));
    assert_eq!(hub.get(&format!("/v1/events/{done}")).await.0, 404, "finished and old: purged");
    assert_eq!(hub.get(&format!("/v1/events/{waiting}")).await.0, 200, "a retry is pending: kept");
    hub.stop().await;
}

fn hookhub(settings: &Settings, args: &[&str]) -> String {
    let out = hookhub_command(settings, args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_cli_lists_and_requeues_dead_letters() {
    let receiver = Receiver::start().await;
    receiver.script("/crm", &[500, 500]);
    let hub = TestHub::start_with(Backend::Sqlite, |s| s.retry_schedule = "50ms".into()).await;
    let sub = hub.subscribe(&receiver.url("/crm"), &["*"]).await;
    let sub_id = sub["id"].as_str().unwrap();
    let event = hub.send_event("payment.failed", json!({"amount": 1, "currency": "eur"})).await;
    hub.wait_delivery_status(&event, sub_id, "failed").await;

    let listed = hookhub(&hub.settings, &["dead-letters", "list"]);
    assert!(listed.contains(&event) && listed.contains(sub_id) && listed.contains("500"), "{listed}");
    assert!(hookhub(&hub.settings, &["outbox", "status"]).contains("backlog: 0"));
    assert!(hookhub(&hub.settings, &["subscriptions", "list"]).contains(sub_id));
    let dlv = listed.split_whitespace().next().unwrap();
    assert!(hookhub(&hub.settings, &["dead-letters", "requeue", "--id", dlv]).contains("requeued 1"));
    hub.wait_delivery_status(&event, sub_id, "succeeded").await;
    assert_eq!(receiver.received("/crm").len(), 3);

    assert!(hookhub(&hub.settings, &["events", "replay", "--since", "2000-01-01T00:00:00Z"]).contains("1 event"));
    receiver.wait_for("/crm", 4).await;
    hub.stop().await;
}

/// A relay or dispatcher as its own process, with its metrics on `port`.
fn spawn_role(settings: &Settings, role: &str, port: u16) -> Child {
    hookhub_command(settings, &[role])
        .env("HOOKHUB_METRICS_LISTEN", format!("127.0.0.1:{port}"))
        .env("HOOKHUB_RELAY_POLL_INTERVAL_MS", "50")
        // Six processes share the server's 100 connections with the tests
        // running beside this one.
        .env("HOOKHUB_DATABASE_MAX_CONNECTIONS", "8")
        .env("HOOKHUB_DELIVERY_POLL_INTERVAL_MS", "100")
        .env("HOOKHUB_RETRY_SCHEDULE", "100ms,200ms,400ms,800ms")
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_of_each_part_deliver_everything_once_published() {
    const EVENTS: usize = 10_000;
    const FLAKY_EVERY: usize = 20;
    let receiver = Receiver::start().await;
    // The flaky endpoint fails its first 100 requests: retries are claimed
    // by whichever dispatcher finds them due.
    receiver.script("/flaky", &[503; 100]);
    let mut settings = test_settings(Backend::Postgres).await;
    settings.database_max_connections = 8;
    hookhub_store::Store::connect(&settings.database_url).await.unwrap().migrate().await.unwrap();

    let ingests =
        [Hub::start(&settings, Role::Ingest).await.unwrap(), Hub::start(&settings, Role::Ingest).await.unwrap()];
    let bases: Vec<String> = ingests.iter().map(|h| format!("http://127.0.0.1:{}", h.port().unwrap())).collect();
    let (_, key) = ingests[0].store().create_tenant("scale").await.unwrap();
    let client = reqwest::Client::new();
    for (path, types) in [("/crm", json!(["*"])), ("/flaky", json!(["payment.failed"]))] {
        let resp = client
            .post(format!("{}/v1/subscriptions", bases[0]))
            .bearer_auth(key.expose())
            .json(&json!({"url": receiver.url(path), "event_types": types}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
    }
    let ports: Vec<u16> = (0..4).map(|_| free_port()).collect();
    let mut children = common::Processes(vec![
        spawn_role(&settings, "relay", ports[0]),
        spawn_role(&settings, "relay", ports[1]),
        spawn_role(&settings, "dispatcher", ports[2]),
        spawn_role(&settings, "dispatcher", ports[3]),
    ]);

    let sent = post_events(&bases, key.expose(), EVENTS, |n| {
        let kind = if n % FLAKY_EVERY == 0 { "payment.failed" } else { "appointment.booked" };
        (kind, json!({"n": n, "amount": 1, "currency": "eur"}))
    })
    .await;
    assert_eq!(sent.len(), EVENTS);

    let delivered = receiver.wait_for_ids("/crm", EVENTS, Duration::from_secs(240)).await;
    receiver.wait_for_ids("/flaky", EVENTS / FLAKY_EVERY, Duration::from_secs(60)).await;
    assert_eq!(delivered, sent, "every event delivered, none invented");

    // Two relays claimed side by side and each event was published once.
    let mut published = 0.0;
    for port in &ports[..2] {
        let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await.unwrap().text().await.unwrap();
        published += metric(&text, "hookhub_events_published_total");
        let ready = reqwest::get(format!("http://127.0.0.1:{port}/readyz")).await.unwrap();
        let status = ready.status();
        assert_eq!(status, 200, "a relay is ready: store and broker reachable: {}", ready.text().await.unwrap());
    }
    assert_eq!(published, EVENTS as f64, "no event published twice");
    let crm_total = receiver.received("/crm").len();
    println!(
        "scale-out: {EVENTS} events, {} deliveries, duplicates {} (at-least-once), flaky retries {}",
        crm_total + receiver.received("/flaky").len(),
        crm_total - EVENTS,
        receiver.received("/flaky").len() - EVENTS / FLAKY_EVERY,
    );

    for child in &mut children.0 {
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    }
    for child in &mut children.0 {
        let status = child.wait().unwrap();
        assert!(status.success(), "SIGTERM shuts down cleanly: {status}");
    }
    for hub in ingests {
        hub.shutdown().await;
    }
    drop_test_resources(&settings).await;
}
