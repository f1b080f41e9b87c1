//! Delivery you can trust: secret rotation, the circuit breaker with its
//! operational event, and the SSRF guard.
use crate::common;

use common::receiver::Receiver;
use common::{eventually, verify_with_reference, Backend, TestHub};
use hookhub_store::domain::{IdempotencyKey, KeyNamespace};
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

crate::on_both_backends!(
    an_unreadable_event_does_not_hold_up_its_batch,
    a_first_attempt_is_written_with_its_delivery_and_a_redelivery_sends_nothing_again,
    a_redelivered_message_is_written_before_it_is_attempted,
    an_attempt_is_recorded_exactly_when_its_delivery_moves_on,
    a_batch_settles_each_subscription_by_its_attempts_in_order,
    a_claim_quarantines_what_it_cannot_name_and_returns_the_rest,
    a_poison_outbox_row_does_not_stop_the_relay_for_other_tenants,
    an_event_gone_before_fan_out_does_not_hold_up_other_tenants,
    a_batch_larger_than_the_delivery_loop_is_written_within_the_wait,
    an_event_reads_back_exactly_as_ingested,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_signs_with_both_secrets_during_the_grace_period() {
    let receiver = Receiver::start().await;
    let hub = TestHub::start(Backend::Sqlite).await;
    let sub = hub.subscribe(&receiver.url("/crm"), &["*"]).await;
    let (old, id) = (sub["secret"].as_str().unwrap().to_owned(), sub["id"].as_str().unwrap().to_owned());

    let (status, rotated) = hub.post(&format!("/v1/subscriptions/{id}/secret/rotate"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(rotated["previous_valid_until"].is_string());
    hub.send_event("client.created", json!({"client_id": "c1"})).await;
    let got = receiver.wait_for("/crm", 1).await;
    assert_eq!(got[0].header("webhook-signature").split(' ').count(), 2, "v1,<new> v1,<old>");
    // A receiver that still has the old secret and one that has the new both verify.
    verify_with_reference(&old, &got);
    verify_with_reference(&new, &got);

    // No grace: only the newest secret signs.
    let (_, rotated) =
        hub.post(&format!("/v1/subscriptions/{id}/secret/rotate"), json!({"grace_period_secs": 0})).await;
    hub.send_event("client.created", json!({"client_id": "c2"})).await;
    let got = receiver.wait_for("/crm", 2).await;
    assert_eq!(got[1].header("webhook-signature").split(' ').count(), 1);
    verify_with_reference(rotated["secret"].as_str().unwrap(), &got[1..]);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_disables_a_failing_subscription_announces_it_and_recover_resends() {
    let receiver = Receiver::start().await;
    receiver.script("/down", &[500; 3]);
    let hub = TestHub::start_with(Backend::Postgres, |s| {
        s.breaker_max_failures = 3;
        s.retry_schedule = "50ms,50ms,50ms,50ms,50ms".into();
    })
    .await;
    let down = hub.subscribe(&receiver.url("/down"), &["appointment.booked"]).await;
    let down_id = down["id"].as_str().unwrap();
    hub.subscribe(&receiver.url("/ops"), &["subscription.disabled"]).await;
    let started = chrono::Utc::now() - chrono::Duration::seconds(5);
    let event = hub.send_event("appointment.booked", json!({"appointment_id": "a", "client_id": "c"})).await;

    let notice = receiver.wait_for("/ops", 1).await;
    let notice = notice[0].json();
    assert_eq!(notice["type"], "subscription.disabled");
    assert_eq!(notice["data"]["subscription_id"], down_id);
    assert!(notice["data"]["reason"].as_str().unwrap().contains("circuit breaker"));
    let (_, sub) = hub.get(&format!("/v1/subscriptions/{down_id}")).await;
    assert_eq!(sub["status"], "disabled");
    assert_eq!(receiver.received("/down").len(), 3);
    hub.wait_delivery_status(&event, down_id, "failed").await;

    // The endpoint is back: enable, then resend what failed meanwhile.
    let (status, enabled) = hub.post(&format!("/v1/subscriptions/{down_id}/enable"), json!({})).await;
    assert_eq!((status, enabled["status"].as_str()), (StatusCode::OK, Some("active")));
    let since = started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (status, body) = hub.post(&format!("/v1/subscriptions/{down_id}/recover?since={since}"), json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["requeued"], 1);
    hub.wait_delivery_status(&event, down_id, "succeeded").await;
    let (status, _) = hub.post(&format!("/v1/subscriptions/{down_id}/recover"), json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ssrf_guard_refuses_internal_targets_and_says_why() {
    let receiver = Receiver::start().await;
    let hub = TestHub::start_with(Backend::Sqlite, |s| {
        s.allow_private_endpoints = Some(false);
        s.retry_schedule = String::new();
    })
    .await;
    // Written behind the API's back, which refuses these URLs: as if the
    // name had resolved to a public address when the subscription was
    // made (DNS rebinding). Delivery must still refuse them.
    let store = hub.hub().store();
    let presented = hookhub_store::domain::ApiKey::presented(&hub.key);
    let tenant = store.principal_by_api_key(&presented).await.unwrap().unwrap().tenant;
    let mut subs = Vec::new();
    for url in [receiver.url("/literal"), receiver.url("/by-name").replace("127.0.0.1", "localhost")] {
        let new = hookhub_store::repo::NewSubscription {
            url: hookhub_store::domain::EndpointUrl::parse(&url, true).unwrap(),
            event_types: hookhub_store::domain::EventTypeFilter::All,
            description: String::new(),
            rate_limit_per_second: None,
            status: hookhub_store::domain::SubscriptionStatus::Active,
            programs: Default::default(),
            ordering: Default::default(),
        };
        subs.push(json!({"id": store.create_subscription(&tenant.id, new).await.unwrap().id.to_string()}));
    }
    let (literal, by_name) = (&subs[0], &subs[1]);
    let event = hub.send_event("client.created", json!({"client_id": "c1"})).await;

    for (sub, expected) in [(literal, "loopback"), (by_name, "non-public")] {
        let delivery = hub.wait_delivery_status(&event, sub["id"].as_str().unwrap(), "failed").await;
        let error = delivery["last_error"].as_str().unwrap();
        assert!(error.contains("refused") && error.contains(expected), "{error}");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(receiver.all().is_empty(), "nothing reached the internal address");
    eventually(Duration::from_secs(5), || async {
        let (_, attempts) = hub.get(&format!("/v1/events/{event}/attempts")).await;
        (attempts["data"].as_array()?.len() == 2).then_some(())
    })
    .await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured_over_a_shorter_schedule_step() {
    let receiver = Receiver::start().await;
    receiver.script("/busy", &[429]);
    let hub = TestHub::start(Backend::Sqlite).await; // schedule 100ms, 200ms, 300ms
    hub.subscribe(&receiver.url("/busy"), &["*"]).await;
    hub.send_event("client.created", json!({"client_id": "c1"})).await;
    let got = receiver.wait_for("/busy", 2).await;
    let waited = got[1].at - got[0].at;
    assert!(waited >= Duration::from_millis(950), "Retry-After: 1 waited only {waited:?}");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_endpoint_does_not_hold_up_a_healthy_one() {
    const EVENTS: usize = 12;
    let receiver = Receiver::start().await;
    receiver.set_path_delay("/slow", Duration::from_millis(1_000));
    let hub = TestHub::start_with(Backend::Sqlite, |s| {
        s.delivery_concurrency = 4;
        s.delivery_concurrency_per_subscription = 2;
        s.delivery_timeout_ms = 5_000;
    })
    .await;
    hub.subscribe(&receiver.url("/slow"), &["*"]).await;
    hub.subscribe(&receiver.url("/fast"), &["*"]).await;
    let started = std::time::Instant::now();
    for n in 0..EVENTS {
        hub.send_event("appointment.booked", json!({"appointment_id": n, "client_id": "c"})).await;
    }
    receiver.wait_for("/fast", EVENTS).await;
    let fast_done = started.elapsed();
    // Without a per-endpoint cap, the slow endpoint's 1-second answers
    // would hold all four slots: about EVENTS / 4 seconds for /fast.
    assert!(fast_done < Duration::from_millis(2_000), "healthy deliveries took {fast_done:?}");
    assert!(receiver.received("/slow").len() < EVENTS, "the slow endpoint is still being served");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_secrets_and_keys_never_reach_the_logs() {
    use std::process::{Command, Stdio};
    const MARKER: &str = "PHI-MARKER-7f3a9c";
    let receiver = Receiver::start().await;
    receiver.script("/crm", &[500]);
    let dir = std::env::temp_dir().join(format!("hookhub_logs_{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}/hub.db?mode=rwc", dir.display());
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let hub = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookhub"));
        cmd.args(args)
            .env("HOOKHUB_DATABASE_URL", &db)
            .env("HOOKHUB_LISTEN", format!("127.0.0.1:{port}"))
            .env("HOOKHUB_RETRY_SCHEDULE", "100ms")
            .env("HOOKHUB_MODE", "development")
            .env("HOOKHUB_LOG_FORMAT", "json")
            .env("RUST_LOG", "trace");
        cmd
    };
    let created = hub(&["tenant", "create", "logs"]).output().unwrap();
    let key =
        String::from_utf8_lossy(&created.stdout).lines().find_map(|l| l.strip_prefix("api key: ")).unwrap().to_owned();
    let log_path = dir.join("hub.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut serve =
        hub(&["serve"]).stdout(Stdio::from(log.try_clone().unwrap())).stderr(Stdio::from(log)).spawn().unwrap();

    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    eventually(Duration::from_secs(20), || async { client.get(format!("{base}/readyz")).send().await.ok() }).await;
    let subscribe = json!({"url": receiver.url("/crm"), "event_types": ["*"]});
    let sub = common::post_json(&client, &format!("{base}/v1/subscriptions"), &key, subscribe).await;
    let event = json!({"type": "consent.signed", "data": {"client_id": "c1", "form": MARKER}});
    client.post(format!("{base}/v1/events")).bearer_auth(&key).json(&event).send().await.unwrap();
    receiver.wait_for("/crm", 2).await; // a failed attempt and its retry, both logged
    let bad = json!({"type": "consent.signed", "data": MARKER});
    client.post(format!("{base}/v1/events")).bearer_auth(&key).json(&bad).send().await.unwrap();
    std::process::Command::new("kill").args(["-TERM", &serve.id().to_string()]).status().unwrap();
    serve.wait().unwrap();

    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(logs.contains("attempted"), "the run was logged:\n{logs}");
    let secret = sub["secret"].as_str().unwrap().trim_start_matches("whsec_");
    for (what, needle) in
        [("payload", MARKER), ("signing secret", secret), ("API key", key.trim_start_matches("hh_live_"))]
    {
        assert!(!logs.contains(needle), "the {what} leaked into the logs");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_and_payloads_are_sealed_at_rest_with_their_key_id() {
    use sea_orm::{ConnectionTrait, Statement};
    const MARKER: &str = "PHI-AT-REST-51c2";
    let hub = TestHub::start(Backend::Postgres).await;
    let sub = hub.subscribe("https://crm.example.com/hooks", &["*"]).await;
    let event = hub.send_event("consent.signed", json!({"client_id": "c1", "form": MARKER})).await;

    let db = hub.hub().store().db();
    let backend = db.get_database_backend();
    let raw = |sql: &str| Statement::from_string(backend, sql.to_owned());
    let stored_secret: String =
        db.query_one(raw("SELECT secret FROM subscriptions")).await.unwrap().unwrap().try_get("", "secret").unwrap();
    let plain_secret = sub["secret"].as_str().unwrap();
    assert!(stored_secret.starts_with("enc:v1:test1:"), "{stored_secret}");
    assert!(!stored_secret.contains(plain_secret.trim_start_matches("whsec_")));
    let stored_data: serde_json::Value =
        db.query_one(raw("SELECT data FROM events")).await.unwrap().unwrap().try_get("", "data").unwrap();
    assert_eq!(stored_data["kid"], "test1");
    assert!(!stored_data.to_string().contains(MARKER));

    // Through the API everything reads as it was written.
    let (_, got) = hub.get(&format!("/v1/events/{event}")).await;
    assert_eq!(got["data"]["form"], MARKER);
    let (_, secret) = hub.get(&format!("/v1/subscriptions/{}/secret", sub["id"].as_str().unwrap())).await;
    assert_eq!(secret["secret"], plain_secret);
    hub.stop().await;
}

/// A fan-out over `store` attempting through a delivery loop that may
/// reach loopback, with the loop's poller and recorder running.
fn fanout_for_test(
    store: &hookhub_store::Store,
    shutdown: &tokio_util::sync::CancellationToken,
) -> hookhub_dispatcher::fan_out::FanOut {
    use hookhub_dispatcher::{DeliveryConfig, DeliveryLoop};
    let config = DeliveryConfig { allow_private_endpoints: true, ..DeliveryConfig::default() };
    let deliveries = DeliveryLoop::new(store.clone(), config);
    tokio::spawn(deliveries.clone().run(shutdown.clone()));
    hookhub_dispatcher::fan_out::FanOut::new(store.clone(), deliveries, 64)
}

/// The messages of freshly ingested `client.created` events.
async fn ingested_messages(
    store: &hookhub_store::Store,
    tenant: &hookhub_store::repo::Tenant,
    n: usize,
) -> Vec<hookhub_dispatcher::queue::EventMessage> {
    let mut messages = Vec::new();
    for n in 0..n {
        let event = store.ingest_event(&tenant.id, common::client_created(json!({"n": n}))).await.unwrap().event;
        let (event_id, tenant_id) = (event.id.to_string(), tenant.id.to_string());
        messages.push(hookhub_dispatcher::queue::EventMessage {
            event_id,
            tenant_id,
            event_type: "client.created".into(),
            ordering_key: None,
        });
    }
    messages
}

/// A fan-out batch with more first attempts than the delivery loop has
/// places: the attempts that got a place within `first_attempt_wait` go out
/// before the write, the rest after it, and the write is not held until the
/// last of them started. (Held, every webhook sent meanwhile was sent again
/// when the dispatcher was killed before the write.)
async fn a_batch_larger_than_the_delivery_loop_is_written_within_the_wait(backend: Backend) {
    use hookhub_dispatcher::queue::{in_process, Lane, Publisher};
    use hookhub_dispatcher::{DeliveryConfig, DeliveryLoop};

    let receiver = Receiver::start().await;
    receiver.set_path_delay("/slow", Duration::from_millis(50));
    let (settings, store, tenant) = common::test_store(backend).await;
    common::subscribe_in_store(&store, &tenant, &receiver.url("/slow")).await;
    let messages = ingested_messages(&store, &tenant, 24).await;

    // One attempt at a time, four places: sending all 24 takes over a second.
    let config = DeliveryConfig {
        allow_private_endpoints: true,
        concurrency: 1,
        first_attempt_wait: Duration::from_millis(100),
        ..DeliveryConfig::default()
    };
    let shutdown = tokio_util::sync::CancellationToken::new();
    let deliveries = DeliveryLoop::new(store.clone(), config);
    tokio::spawn(deliveries.clone().run(shutdown.clone()));
    let fanout = hookhub_dispatcher::fan_out::FanOut::new(store.clone(), deliveries, 64);
    let (publisher, consumer) = in_process::channel(16);
    let running = tokio::spawn(fanout.run(consumer, shutdown.clone()));
    let published = tokio::spawn(async move { publisher.publish(&messages, Lane::Main).await });

    // Half of them sent: well past the wait, long before the last one.
    eventually(Duration::from_secs(10), || async { (receiver.received("/slow").len() >= 12).then_some(()) }).await;
    assert_eq!(
        common::scalar(&store, "SELECT count(*) FROM deliveries").await,
        24,
        "the batch was written once the wait ran out, not after its last attempt started"
    );
    published.await.unwrap().unwrap();
    let sent = receiver.wait_for_ids("/slow", 24, Duration::from_secs(20)).await;
    assert_eq!(sent.len(), 24);
    let settled = "SELECT count(*) FROM deliveries WHERE status = 'succeeded' AND attempt_count = 1";
    eventually(Duration::from_secs(10), || async { (common::scalar(&store, settled).await == 24).then_some(()) }).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received("/slow").len(), 24, "each sent once");
    shutdown.cancel();
    running.await.unwrap();
    common::drop_test_resources(&settings).await;
}

/// Fan-out writes a batch of messages at once; an event in it that cannot
/// be read (its stored payload no longer opens) must not hold up the rest.
async fn an_unreadable_event_does_not_hold_up_its_batch(backend: Backend) {
    use hookhub_dispatcher::queue::{in_process, Lane, Publisher};
    use sea_orm::{ConnectionTrait, Statement};

    let receiver = Receiver::start().await;
    let (settings, store, tenant) = common::test_store(backend).await;
    common::subscribe_in_store(&store, &tenant, &receiver.url("/x")).await;
    let messages = ingested_messages(&store, &tenant, 2).await;
    // The first event's payload is sealed with a key this hub does not have.
    let unreadable = r#"{"$enc":"v1","kid":"gone","nonce":"AAAAAAAAAAAAAAAA","ct":"AAAA"}"#;
    let sql = format!("UPDATE events SET data = '{unreadable}' WHERE id = '{}'", messages[0].event_id);
    store.db().execute(Statement::from_string(store.backend(), sql)).await.unwrap();

    let (publisher, consumer) = in_process::channel(16);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(fanout_for_test(&store, &shutdown).run(consumer, shutdown.clone()));
    let published = tokio::time::timeout(Duration::from_secs(10), publisher.publish(&messages, Lane::Main)).await;
    assert!(matches!(published, Ok(Ok(()))), "both messages were acked: their deliveries are stored");
    let got = receiver.wait_for("/x", 1).await;
    assert_eq!(got[0].header("webhook-id"), messages[1].event_id, "the readable event goes on to delivery");
    assert_eq!(common::scalar(&store, "SELECT count(*) FROM deliveries").await, 2, "both deliveries are durable");
    let waiting = "SELECT count(*) FROM deliveries WHERE status = 'pending' AND attempt_count = 0";
    assert_eq!(common::scalar(&store, waiting).await, 1, "the unreadable one waits for the retry path");
    assert_eq!(receiver.all().len(), 1);
    shutdown.cancel();
    drop(publisher);
    running.await.unwrap();
    common::drop_test_resources(&settings).await;
}

/// A new delivery is attempted before it is written and written once, with
/// its attempt; one whose endpoint answers after fan-out stopped waiting is
/// written pending and its attempt recorded when it comes; and a message
/// consumed again (a redelivery) sends nothing twice.
async fn a_first_attempt_is_written_with_its_delivery_and_a_redelivery_sends_nothing_again(backend: Backend) {
    use hookhub_dispatcher::queue::{in_process, Lane, Publisher};

    let receiver = Receiver::start().await;
    // Well past fan-out's wait for first attempts (100 ms).
    receiver.set_path_delay("/slow", Duration::from_millis(2_000));
    let (settings, store, tenant) = common::test_store(backend).await;
    common::subscribe_in_store(&store, &tenant, &receiver.url("/fast")).await;
    common::subscribe_in_store(&store, &tenant, &receiver.url("/slow")).await;
    let messages = ingested_messages(&store, &tenant, 3).await;

    let (publisher, consumer) = in_process::channel(16);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(fanout_for_test(&store, &shutdown).run(consumer, shutdown.clone()));
    publisher.publish(&messages, Lane::Main).await.unwrap();
    assert_eq!(receiver.received("/fast").len(), 3, "sent before the ack");
    let settled = "SELECT count(*) FROM deliveries WHERE status = 'succeeded' AND attempt_count = 1";
    assert_eq!(common::scalar(&store, settled).await, 3, "written once, already settled");
    let in_flight = "SELECT count(*) FROM deliveries WHERE status = 'pending' AND attempt_count = 0";
    assert_eq!(common::scalar(&store, in_flight).await, 3, "acked without waiting for the slow endpoint");

    eventually(Duration::from_secs(10), || async { (common::scalar(&store, settled).await == 6).then_some(()) }).await;
    assert_eq!(common::scalar(&store, "SELECT count(*) FROM attempts WHERE attempt_number = 1").await, 6);

    // The same messages again, as after a crash before the ack.
    publisher.publish(&messages, Lane::Main).await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(receiver.all().len(), 6, "nothing sent twice");
    assert_eq!(common::scalar(&store, "SELECT count(*) FROM deliveries").await, 6);
    assert_eq!(common::scalar(&store, "SELECT count(*) FROM attempts").await, 6);
    shutdown.cancel();
    drop(publisher);
    running.await.unwrap();
    common::drop_test_resources(&settings).await;
}

/// A consumer that hands out given messages once, then closes.
struct Replay(Vec<hookhub_dispatcher::queue::Incoming>);

#[async_trait::async_trait]
impl hookhub_dispatcher::queue::Consumer for Replay {
    async fn next(&mut self) -> Option<hookhub_dispatcher::queue::Incoming> {
        (!self.0.is_empty()).then(|| self.0.remove(0))
    }
}

/// Tells when its message was acked.
struct AckedAt(tokio::sync::oneshot::Sender<std::time::Instant>);

#[async_trait::async_trait]
impl hookhub_dispatcher::queue::Acker for AckedAt {
    async fn ack(self: Box<Self>) {
        let _ = self.0.send(std::time::Instant::now());
    }
    async fn reject(self: Box<Self>) {}
}

/// A message the broker redelivers may still be with a consumer whose
/// connection closed, its webhooks sent and its write not yet committed:
/// its deliveries are written before anything is attempted.
async fn a_redelivered_message_is_written_before_it_is_attempted(backend: Backend) {
    let receiver = Receiver::start().await;
    let (settings, store, tenant) = common::test_store(backend).await;
    common::subscribe_in_store(&store, &tenant, &receiver.url("/x")).await;
    let messages = ingested_messages(&store, &tenant, 1).await;
    let (acked, acked_at) = tokio::sync::oneshot::channel();
    let incoming = hookhub_dispatcher::queue::Incoming {
        message: Ok(messages.clone()),
        redelivered: true,
        acker: Box::new(AckedAt(acked)),
    };
    let shutdown = tokio_util::sync::CancellationToken::new();
    fanout_for_test(&store, &shutdown).run(Replay(vec![incoming]), shutdown.clone()).await;
    let acked_at = acked_at.await.expect("acked");
    let got = receiver.wait_for("/x", 1).await;
    assert!(got[0].at > acked_at, "attempted only after the write that the ack follows");
    let settled = "SELECT count(*) FROM deliveries WHERE status = 'succeeded' AND attempt_count = 1";
    eventually(Duration::from_secs(10), || async { (common::scalar(&store, settled).await == 1).then_some(()) }).await;
    assert_eq!(common::scalar(&store, "SELECT count(*) FROM attempts").await, 1);
    shutdown.cancel();
    common::drop_test_resources(&settings).await;
}

/// An attempt of `work` that got an answer: 200 if it succeeded, else 500.
fn answered(
    work: &hookhub_store::repo::DeliveryWork,
    next: hookhub_store::repo::NextStep,
) -> hookhub_store::repo::RecordedAttempt {
    use hookhub_store::repo::{NewAttempt, NextStep, RecordedAttempt};
    let attempt = NewAttempt {
        attempted_at: hookhub_store::domain::now(),
        status_code: Some(if next == NextStep::Succeeded { 200 } else { 500 }),
        latency_ms: 3,
        error: None,
        response_body: Some("ok".into()),
    };
    RecordedAttempt { work: work.clone(), attempt, next }
}

/// Recording writes the attempt exactly when its delivery moves on, on both
/// stores (PostgreSQL does both in one statement, without a transaction on
/// the hot path): a second result for a delivery that is no longer pending
/// records nothing, and a mixed batch takes the transactional path.
async fn an_attempt_is_recorded_exactly_when_its_delivery_moves_on(backend: Backend) {
    use hookhub_store::domain::now;
    use hookhub_store::repo::{BreakerPolicy, NextStep};

    let (settings, store, tenant) = common::test_store(backend).await;
    for path in ["a", "b"] {
        common::subscribe_in_store(&store, &tenant, &format!("http://127.0.0.1:9/{path}")).await;
    }
    let fresh = common::fanned_out(&store, &tenant, now() + chrono::Duration::seconds(60)).await;
    assert_eq!(fresh.len(), 2);
    let work = common::loaded(&store, &fresh).await;
    let result = |i: usize, next: NextStep| answered(&work[i], next);
    let breaker = BreakerPolicy::default();

    // The hot path: every attempt succeeded.
    assert_eq!(store.record_attempts(&[result(0, NextStep::Succeeded)], breaker).await.unwrap(), [true]);
    assert_eq!(common::scalar(&store, "SELECT count(*) FROM attempts").await, 1);
    assert_eq!(common::scalar(&store, "SELECT count(*) FROM deliveries WHERE status = 'succeeded'").await, 1);
    // The same delivery again: it is no longer pending, nothing is written.
    assert_eq!(store.record_attempts(&[result(0, NextStep::Succeeded)], breaker).await.unwrap(), [false]);
    assert_eq!(common::scalar(&store, "SELECT count(*) FROM attempts").await, 1);

    // A failure settles its subscription, in a transaction with the rest.
    let retry_at = now() + chrono::Duration::seconds(30);
    let mixed = [result(0, NextStep::Succeeded), result(1, NextStep::RetryAt(retry_at))];
    assert_eq!(store.record_attempts(&mixed, breaker).await.unwrap(), [false, true]);
    assert_eq!(common::scalar(&store, "SELECT count(*) FROM attempts").await, 2);
    assert_eq!(
        common::scalar(&store, "SELECT count(*) FROM attempts WHERE outcome = 'retrying' AND status_code = 500").await,
        1
    );
    assert_eq!(common::scalar(&store, "SELECT count(*) FROM subscriptions WHERE failure_streak = 1").await, 1);
    assert_eq!(
        common::scalar(&store, "SELECT count(*) FROM deliveries WHERE status = 'pending' AND retry_index = 1").await,
        1
    );
    common::drop_test_resources(&settings).await;
}

/// A write of many attempts settles each subscription once, as its
/// attempts would one by one: a success clears the streak, so only the
/// failures after it count, and a breaker that trips inside the batch
/// disables and announces once.
async fn a_batch_settles_each_subscription_by_its_attempts_in_order(backend: Backend) {
    use hookhub_store::domain::now;
    use hookhub_store::repo::{BreakerPolicy, NextStep};

    let (settings, store, tenant) = common::test_store(backend).await;
    common::subscribe_in_store(&store, &tenant, "http://127.0.0.1:9/a").await;
    let mut fresh = Vec::new();
    for _ in 0..7 {
        fresh.extend(common::fanned_out(&store, &tenant, now() + chrono::Duration::seconds(60)).await);
    }
    let work = common::loaded(&store, &fresh).await;
    let result = |i: usize, next: NextStep| answered(&work[i], next);
    let retry = NextStep::RetryAt(now() + chrono::Duration::seconds(30));
    let breaker = BreakerPolicy { max_failures: 3, ..BreakerPolicy::default() };
    let streak = "SELECT sum(failure_streak) FROM subscriptions";

    let batch = [result(0, retry), result(1, retry), result(2, NextStep::Succeeded), result(3, retry)];
    assert_eq!(store.record_attempts(&batch, breaker).await.unwrap(), [true; 4]);
    assert_eq!(common::scalar(&store, streak).await, 1, "the failures before the success no longer count");

    let batch = [result(4, retry), result(5, retry), result(6, retry)];
    assert_eq!(store.record_attempts(&batch, breaker).await.unwrap(), [true; 3]);
    assert_eq!(common::scalar(&store, streak).await, 4);
    let disabled = "SELECT count(*) FROM subscriptions WHERE status = 'disabled'";
    assert_eq!(common::scalar(&store, disabled).await, 1, "the breaker tripped");
    let announced = "SELECT count(*) FROM events WHERE event_type = 'subscription.disabled'";
    assert_eq!(common::scalar(&store, announced).await, 1, "announced once");
    common::drop_test_resources(&settings).await;
}

/// An outbox row pointing at an event that does not exist, as a test
/// plants a poison row; returns its outbox id.
async fn plant_orphan_outbox_row(store: &hookhub_store::Store, tenant: &hookhub_store::domain::TenantId) -> i64 {
    use hookhub_store::entity::outbox;
    use sea_orm::{ActiveModelTrait, ActiveValue::NotSet, Set};
    let row = outbox::ActiveModel {
        id: NotSet,
        event_id: Set(hookhub_store::domain::EventId::generate().to_string()),
        tenant_id: Set(tenant.to_string()),
        created_at: Set(hookhub_store::domain::now()),
        locked_until: Set(None),
        published_at: Set(None),
        quarantined_at: Set(None),
        quarantine_reason: Set(None),
    };
    row.insert(store.db()).await.unwrap().id
}

/// The relay's claim names each event's type (one statement on
/// PostgreSQL). A row it cannot name (its event is gone, its type or ids do
/// not parse) is quarantined: the rest of the claim, other tenants' events,
/// goes ahead, the row is never claimed again on its own, and an operator
/// can list it, requeue it or drop it.
async fn a_claim_quarantines_what_it_cannot_name_and_returns_the_rest(backend: Backend) {
    use hookhub_store::repo::{QuarantineReason, QuarantineSelection};
    use sea_orm::{ConnectionTrait, Statement};
    let (settings, store, tenant) = common::test_store(backend).await;
    let (other, _) = store.create_tenant("other").await.unwrap();
    let new = |n: u32| common::client_created(json!({"n": n}));
    let lease = chrono::Duration::seconds(30);
    let exec = |sql: String| {
        let store = store.clone();
        async move { store.db().execute(Statement::from_string(store.backend(), sql)).await.unwrap() }
    };

    // The poison rows are the oldest, so every claim takes them first.
    let orphan = plant_orphan_outbox_row(&store, &tenant.id).await;
    let bad_type = store.ingest_event(&tenant.id, new(1)).await.unwrap().event;
    exec(format!("UPDATE events SET event_type = 'Not A Type' WHERE id = '{}'", bad_type.id)).await;
    let deleted = store.ingest_event(&tenant.id, new(2)).await.unwrap().event;
    exec(format!("DELETE FROM events WHERE id = '{}'", deleted.id)).await;
    let bad_id = plant_orphan_outbox_row(&store, &tenant.id).await;
    exec(format!("UPDATE outbox SET event_id = 'not-an-id' WHERE id = {bad_id}")).await;
    let good: Vec<_> = [&other.id, &tenant.id, &other.id]
        .into_iter()
        .enumerate()
        .map(|(n, t)| (t.clone(), new(10 + n as u32)))
        .collect();
    let mut good_ids = Vec::new();
    for (t, e) in good {
        good_ids.push(store.ingest_event(&t, e).await.unwrap().event.id);
    }

    let claim = store.claim_outbox(10, lease).await.unwrap();
    let claimed: Vec<_> = claim.items.iter().map(|i| i.event_id.clone()).collect();
    assert_eq!(claimed, good_ids, "everyone else's events are claimed, in order");
    assert_eq!(claim.items[0].event_type.as_str(), "client.created");
    let reason_of = |outbox_id: i64, event_id: &str| {
        let found = claim.quarantined.iter().find(|q| q.outbox_id == outbox_id || q.event_id == event_id);
        found.map(|q| q.reason)
    };
    assert_eq!(claim.quarantined.len(), 4);
    assert_eq!(reason_of(orphan, "-"), Some(QuarantineReason::EventMissing));
    assert_eq!(reason_of(bad_id, "-"), Some(QuarantineReason::BadId));
    assert_eq!(reason_of(-1, bad_type.id.as_str()), Some(QuarantineReason::BadEventType));
    assert_eq!(reason_of(-1, deleted.id.as_str()), Some(QuarantineReason::EventMissing));

    // Quarantined rows are not claimed again, and not counted as backlog.
    let again = store.claim_outbox(10, lease).await.unwrap();
    assert!(again.items.is_empty() && again.quarantined.is_empty(), "claimed rows are leased, poison is set aside");
    let status = store.outbox_status().await.unwrap();
    assert_eq!((status.backlog, status.quarantined), (3, 4));
    let listed = store.quarantined_outbox(100).await.unwrap();
    assert_eq!(listed.len(), 4);
    assert!(listed.iter().any(|q| q.event_id == bad_type.id.as_str() && q.reason == "bad_event_type"));

    // Requeued, a row that still cannot be published is set aside again.
    let bad_type_row = listed.iter().find(|q| q.event_id == bad_type.id.as_str()).unwrap().outbox_id;
    assert_eq!(store.requeue_quarantined_outbox(QuarantineSelection::One(bad_type_row)).await.unwrap(), 1);
    assert_eq!(store.outbox_status().await.unwrap().quarantined, 3);
    let claim = store.claim_outbox(10, lease).await.unwrap();
    assert!(claim.items.is_empty());
    assert_eq!(claim.quarantined.iter().map(|q| q.outbox_id).collect::<Vec<_>>(), [bad_type_row]);
    // Restored, it is published like any other.
    exec(format!("UPDATE events SET event_type = 'client.created' WHERE id = '{}'", bad_type.id)).await;
    store.requeue_quarantined_outbox(QuarantineSelection::One(bad_type_row)).await.unwrap();
    let claim = store.claim_outbox(10, lease).await.unwrap();
    assert_eq!(claim.items.iter().map(|i| i.outbox_id).collect::<Vec<_>>(), [bad_type_row]);

    assert_eq!(store.drop_quarantined_outbox(QuarantineSelection::All).await.unwrap(), 3);
    assert_eq!(store.outbox_status().await.unwrap().quarantined, 0);
    assert_eq!(common::scalar(&store, "SELECT count(*) FROM outbox").await, 4, "only quarantined rows are dropped");
    common::drop_test_resources(&settings).await;
}

/// A whole hub: an outbox row whose event is gone sits first in the outbox,
/// and the events of two tenants accepted after it are all delivered. The
/// row is quarantined, counted in the metrics and listed by the CLI.
async fn a_poison_outbox_row_does_not_stop_the_relay_for_other_tenants(backend: Backend) {
    let receiver = Receiver::start().await;
    let hub = TestHub::start_with(backend, |s| s.metrics_listen = Some("127.0.0.1:0".into())).await;
    let tenant = hub.hub().store().list_tenants().await.unwrap()[0].id.clone();
    let poison = plant_orphan_outbox_row(hub.hub().store(), &tenant).await;
    hub.subscribe(&receiver.url("/a"), &["*"]).await;
    let other_key = hub.new_tenant().await;
    let client = reqwest::Client::new();
    let (status, _) = {
        let resp = client
            .post(format!("{}/v1/subscriptions", hub.base))
            .bearer_auth(&other_key)
            .json(&json!({"url": receiver.url("/b"), "event_types": ["*"]}))
            .send()
            .await
            .unwrap();
        (resp.status(), ())
    };
    assert_eq!(status, StatusCode::CREATED);
    for n in 0..5 {
        hub.send_event("client.created", json!({"n": n})).await;
        common::post_json(
            &client,
            &format!("{}/v1/events", hub.base),
            &other_key,
            json!({"type": "client.created", "data": {"n": n}}),
        )
        .await;
    }
    assert_eq!(receiver.wait_for("/a", 5).await.len(), 5, "the poison row's own tenant gets its other events");
    assert_eq!(receiver.wait_for("/b", 5).await.len(), 5, "another tenant gets all of its events");

    // The store's gauges are process-wide and read at most once per
    // `STORE_GAUGES_EVERY` (15 s), whoever scrapes: in the one test binary
    // another module's hub may have just read its own store. Wait for a
    // scrape that read this one.
    let ops = format!("http://127.0.0.1:{}", hub.hub().metrics_port().expect("a metrics listener"));
    let metrics = eventually(Duration::from_secs(40), || async {
        let text = client.get(format!("{ops}/metrics")).send().await.ok()?.text().await.ok()?;
        text.contains("hookhub_outbox_quarantined_rows 1").then_some(text)
    })
    .await;
    assert!(metrics.contains(r#"hookhub_outbox_quarantined_total{reason="event_missing"}"#), "{metrics}");
    let out = common::hookhub_command(&hub.settings, &["outbox", "quarantined"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed = String::from_utf8(out.stdout).unwrap();
    assert!(listed.starts_with(&format!("{poison}\t{tenant}\t")) && listed.contains("\tevent_missing\t"), "{listed}");
    let out =
        common::hookhub_command(&hub.settings, &["outbox", "drop", "--id", &poison.to_string()]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "dropped 1 outbox row(s)");
    assert_eq!(hub.hub().store().outbox_status().await.unwrap().quarantined, 0);
    hub.stop().await;
}

/// Fan-out's side of the same: a queue message naming an event that is gone
/// by the time it is consumed (deleted after the relay published it), in
/// one batch with another tenant's events, is acked with the batch, and the
/// others are delivered.
async fn an_event_gone_before_fan_out_does_not_hold_up_other_tenants(backend: Backend) {
    use hookhub_dispatcher::queue::{in_process, Lane, Publisher};
    use sea_orm::{ConnectionTrait, Statement};

    let receiver = Receiver::start().await;
    let (settings, store, tenant) = common::test_store(backend).await;
    let (other, _) = store.create_tenant("other").await.unwrap();
    common::subscribe_in_store(&store, &tenant, &receiver.url("/a")).await;
    common::subscribe_in_store(&store, &other, &receiver.url("/b")).await;
    let mut messages = ingested_messages(&store, &tenant, 1).await;
    messages.extend(ingested_messages(&store, &other, 2).await);
    let sql = format!("DELETE FROM events WHERE id = '{}'", messages[0].event_id);
    store.db().execute(Statement::from_string(store.backend(), sql)).await.unwrap();

    let (publisher, consumer) = in_process::channel(16);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(fanout_for_test(&store, &shutdown).run(consumer, shutdown.clone()));
    let published = tokio::time::timeout(Duration::from_secs(10), publisher.publish(&messages, Lane::Main)).await;
    assert!(matches!(published, Ok(Ok(()))), "the batch is acked");
    assert_eq!(receiver.wait_for("/b", 2).await.len(), 2, "the other tenant's events are delivered");
    assert!(receiver.received("/a").is_empty());
    shutdown.cancel();
    drop(publisher);
    running.await.unwrap();
    common::drop_test_resources(&settings).await;
}

/// On PostgreSQL a batch of events travels as one JSON text (see
/// `store::repo::recordset`): escapes, non-ASCII text, large numbers and the
/// idempotency key must come back unchanged, sealed or not.
async fn an_event_reads_back_exactly_as_ingested(backend: Backend) {
    for encrypted in [false, true] {
        let mut settings = common::test_settings(backend).await;
        if !encrypted {
            settings.encryption_keys = String::new();
        }
        let store = settings.store().await.unwrap();
        store.migrate().await.unwrap();
        let (tenant, _) = store.create_tenant("t").await.unwrap();
        let key = IdempotencyKey::new(&tenant.id, &KeyNamespace::Api, "key 'with' \"quotes\" ✓");
        let data = json!({
            "name": "Zoë \"Z\" O'Brien \\ 東京 🏋️", "note": "line\nbreak\ttab\u{0001}",
            "big": 9_007_199_254_740_993_u64, "ratio": 0.1, "nested": {"list": [1, null, true, {}], "empty": ""}
        });
        let new = hookhub_store::repo::NewEvent {
            event_type: "client.created".parse().unwrap(),
            data: data.clone(),
            idempotency_key: Some(key.clone()),
            ordering_key: None,
        };
        let accepted = store.ingest_event(&tenant.id, new).await.unwrap().event;
        let stored = store.event(&tenant.id, &accepted.id).await.unwrap();
        assert_eq!(stored.data, data, "encrypted: {encrypted}");
        assert_eq!(stored.idempotency_key, Some(key));
        assert_eq!(stored.created_at, accepted.created_at, "microseconds survive");
        common::drop_test_resources(&settings).await;
    }
}

/// A group commit whose `COMMIT` succeeded but reported a failure (as a
/// connection lost at that moment does) is retried event by event with the
/// ids chosen before the first try: every event exists exactly once, under
/// the id its caller was given, with one outbox row.
async fn an_ambiguous_commit_is_retried_without_duplicates(backend: Backend) {
    let (settings, store, tenant) = common::test_store(backend).await;
    for round in 0..2 {
        // Round 0: one event alone; round 1: a batch (concurrent callers).
        let callers = if round == 0 { 1 } else { 12 };
        store.fail_ingest_commits_ambiguously(1);
        let tasks: Vec<_> = (0..callers)
            .map(|i| {
                let (store, tenant) = (store.clone(), tenant.id.clone());
                let mut new = common::client_created(json!({"round": round, "i": i}));
                if i == 0 {
                    let key = format!("key-{round}");
                    new.idempotency_key = Some(IdempotencyKey::new(&tenant, &KeyNamespace::Api, &key));
                }
                tokio::spawn(async move { store.ingest_event(&tenant, new).await })
            })
            .collect();
        for task in tasks {
            let outcome = task.await.unwrap().expect("the caller gets its event, not an error");
            assert!(!outcome.replayed, "the caller's own event is no replay");
            let id = outcome.event.id;
            let rows = format!("SELECT count(*) FROM events WHERE id = '{id}'");
            assert_eq!(common::scalar(&store, &rows).await, 1, "{id} exists under the id its caller got");
        }
        let all = common::scalar(&store, "SELECT count(*) FROM events").await;
        assert_eq!(all, if round == 0 { 1 } else { 13 }, "no event written twice");
        assert_eq!(
            common::scalar(&store, "SELECT count(*) FROM outbox").await,
            common::scalar(&store, "SELECT count(*) FROM events").await,
            "one outbox row per event"
        );
    }
    common::drop_test_resources(&settings).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ambiguous_commit_is_retried_without_duplicates_on_sqlite() {
    an_ambiguous_commit_is_retried_without_duplicates(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ambiguous_commit_is_retried_without_duplicates_on_postgres() {
    an_ambiguous_commit_is_retried_without_duplicates(Backend::Postgres).await;
}
