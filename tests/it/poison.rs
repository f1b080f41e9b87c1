//! Poison input: one row, payload or subscription that cannot be read must
//! not stop anyone else. Each test puts the poison item in a batch it shares
//! with healthy items, of its own tenant and of another, and asserts that
//! every healthy item is delivered and that the poison one is held, reported
//! and recovers, or reads back exactly as it was sent.
use crate::common;

use common::receiver::Receiver;
use common::{eventually, post_json, verify_with_reference, Backend, TestHub};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{json, Value};
use std::time::Duration;

crate::on_both_backends!(
    an_unreadable_subscription_holds_its_deliveries_and_no_one_else_waits,
    tenant_data_that_looks_sealed_reads_back_as_sent,
    echoed_responses_are_sealed_and_a_nul_fails_no_batch,
    an_audit_row_the_database_refuses_costs_only_itself,
    an_attempt_the_database_refuses_costs_only_itself,
    a_corrupt_delivery_row_fails_itself_not_the_claim,
);

/// Runs `sql` on the hub's database.
async fn execute(hub: &TestHub, sql: &str) {
    let store = hub.hub().store();
    store.db().execute(Statement::from_string(store.backend(), sql.to_owned())).await.unwrap();
}

/// The one text `sql` selects.
async fn text(hub: &TestHub, sql: &str) -> String {
    let store = hub.hub().store();
    let row = store.db().query_one(Statement::from_string(store.backend(), sql.to_owned())).await.unwrap().unwrap();
    row.try_get_by_index(0).unwrap()
}

/// Posts `n` events for the tenant of `key`; returns their ids.
async fn post_n(hub: &TestHub, key: &str, n: usize, tag: &str) -> Vec<String> {
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for i in 0..n {
        let body = json!({"type": "client.created", "data": {"client_id": format!("{tag}{i}")}});
        let got = post_json(&client, &format!("{}/v1/events", hub.base), key, body).await;
        ids.push(got["id"].as_str().expect("accepted").to_owned());
    }
    ids
}

/// A subscription whose secret no longer opens (its key left the keyring)
/// gets its deliveries held and listed, while its tenant's other
/// subscriptions and another tenant's are delivered; once the secret opens
/// again, the held deliveries go out.
async fn an_unreadable_subscription_holds_its_deliveries_and_no_one_else_waits(backend: Backend) {
    let receiver = Receiver::start().await;
    let hub = TestHub::start(backend).await;
    let other = hub.new_tenant().await;
    hub.subscribe(&receiver.url("/a-good"), &["*"]).await;
    let bad = hub.subscribe(&receiver.url("/a-bad"), &["*"]).await;
    let (bad_id, bad_secret) = (bad["id"].as_str().unwrap(), bad["secret"].as_str().unwrap());
    let client = reqwest::Client::new();
    let body = json!({"url": receiver.url("/b"), "event_types": ["*"]});
    post_json(&client, &format!("{}/v1/subscriptions", hub.base), &other, body).await;

    let sealed = text(&hub, &format!("SELECT secret FROM subscriptions WHERE id = '{bad_id}'")).await;
    let gone = "enc:v1:retired:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAAAA";
    execute(&hub, &format!("UPDATE subscriptions SET secret = '{gone}' WHERE id = '{bad_id}'")).await;

    let mut ours = Vec::new();
    for round in 0..3 {
        ours.extend(post_n(&hub, &hub.key, 1, &format!("a{round}")).await);
        post_n(&hub, &other, 1, &format!("b{round}")).await;
    }
    assert_eq!(receiver.wait_for("/a-good", 3).await.len(), 3, "the tenant's other subscription goes on");
    assert_eq!(receiver.wait_for("/b", 3).await.len(), 3, "another tenant goes on");
    let held = format!("SELECT count(*) FROM deliveries WHERE subscription_id = '{bad_id}' AND status = 'pending'");
    let store = hub.hub().store().clone();
    eventually(Duration::from_secs(10), || async { (common::scalar(&store, &held).await == 3).then_some(()) }).await;
    assert!(receiver.received("/a-bad").is_empty());

    // The retry path holds them, saying why, instead of spinning on them.
    execute(&hub, &format!("UPDATE deliveries SET next_attempt_at = created_at WHERE subscription_id = '{bad_id}'"))
        .await;
    let reason = format!(
        "SELECT count(*) FROM deliveries WHERE subscription_id = '{bad_id}' AND last_error LIKE 'held:%retired%'"
    );
    eventually(Duration::from_secs(10), || async { (common::scalar(&store, &reason).await == 3).then_some(()) }).await;

    let listed = common::hookhub_command(&hub.settings, &["subscriptions", "unreadable"]).output().unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains(bad_id) && listed.contains("held=3"), "{listed}");
    assert!(!listed.contains(bad_secret));

    // The key comes back: the held deliveries go out, signed as before.
    execute(&hub, &format!("UPDATE subscriptions SET secret = '{sealed}' WHERE id = '{bad_id}'")).await;
    execute(&hub, &format!("UPDATE deliveries SET next_attempt_at = created_at WHERE subscription_id = '{bad_id}'"))
        .await;
    let got = receiver.wait_for("/a-bad", 3).await;
    let sent: std::collections::HashSet<_> = got.iter().map(|r| r.header("webhook-id").to_owned()).collect();
    assert_eq!(sent, ours.into_iter().collect());
    verify_with_reference(bad_secret, &got);
    hub.stop().await;
}

/// Event data and gateway secrets that look like the cipher's own markers
/// are the tenant's data like any other: accepted, delivered and read back
/// exactly as sent.
async fn tenant_data_that_looks_sealed_reads_back_as_sent(backend: Backend) {
    look_alikes_read_back(TestHub::start(backend).await).await;
}

/// The same without encryption keys (a development hub on PostgreSQL),
/// where nothing is sealed and only escaping tells data from ciphertext.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_data_that_looks_sealed_reads_back_as_sent_unencrypted() {
    look_alikes_read_back(TestHub::start_with(Backend::Postgres, |s| s.encryption_keys.clear()).await).await;
}

async fn look_alikes_read_back(hub: TestHub) {
    let receiver = Receiver::start().await;
    hub.subscribe(&receiver.url("/x"), &["*"]).await;
    let look_alikes: Vec<Value> = vec![
        json!({"$enc": "v1", "kid": "test1", "nonce": "AAAAAAAAAAAAAAAA", "ct": "AAAA"}),
        json!({"$enc": "anything at all"}),
        json!({"$plain": {"client_id": "c1"}}),
        json!({"note": "enc:v1:test1:AAAA:BBBB"}),
    ];
    let mut ids = Vec::new();
    for data in &look_alikes {
        ids.push(hub.send_event("client.created", data.clone()).await);
    }
    for (id, data) in ids.iter().zip(&look_alikes) {
        let (status, event) = hub.get(&format!("/v1/events/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{event}");
        assert_eq!(&event["data"], data);
    }
    let (status, listed) = hub.get("/v1/events").await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let got = receiver.wait_for("/x", look_alikes.len()).await;
    for received in got {
        let body = received.json();
        let sent = ids.iter().position(|id| id == received.header("webhook-id")).unwrap();
        assert_eq!(body["data"], look_alikes[sent]);
    }

    for secret in ["enc:v1:test1:AAAA:BBBB", "plain:v1:whsec_x"] {
        let (status, source) =
            hub.post("/v1/inbound-sources", json!({"source": "stripe", "signing_secret": secret})).await;
        assert_eq!(status, StatusCode::CREATED, "{source}");
    }
    let (status, sources) = hub.get("/v1/inbound-sources").await;
    assert_eq!(status, StatusCode::OK, "{sources}");
    hub.stop().await;
}

/// A receiver that echoes the payload back puts PHI in its response: the
/// body is sealed at rest like the payload, reads back through the API, and
/// a NUL byte in it fails neither its attempt's record nor the others
/// recorded with it.
async fn echoed_responses_are_sealed_and_a_nul_fails_no_batch(backend: Backend) {
    const MARKER: &str = "PHI-ECHO-7f3a";
    let receiver = Receiver::start().await;
    receiver.echo("/echo");
    receiver.script("/echo", &[500]);
    let hub = TestHub::start(backend).await;
    let echo = hub.subscribe(&receiver.url("/echo"), &["*"]).await;
    hub.subscribe(&receiver.url("/plain"), &["*"]).await;
    let event = hub.send_event("consent.signed", json!({"form": MARKER})).await;
    let echo_id = echo["id"].as_str().unwrap();
    // The first answer (500) is retried, so both the first attempt's write
    // and the retry path's record carry an echoed body.
    hub.wait_delivery_status(&event, echo_id, "succeeded").await;
    assert_eq!(receiver.wait_for("/plain", 1).await.len(), 1);

    let store = hub.hub().store();
    let sealed = "SELECT count(*) FROM attempts WHERE response_body LIKE 'enc:v1:test1:%'";
    assert_eq!(common::scalar(store, sealed).await, 3, "every response body is sealed");
    let leaked = format!("SELECT count(*) FROM attempts WHERE response_body LIKE '%{MARKER}%'");
    assert_eq!(common::scalar(store, &leaked).await, 0);
    let (status, attempts) = hub.get(&format!("/v1/events/{event}/attempts")).await;
    assert_eq!(status, StatusCode::OK, "{attempts}");
    let echoed: Vec<&str> = attempts["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["subscription_id"] == echo_id)
        .map(|a| a["response_body"].as_str().unwrap())
        .collect();
    assert_eq!(echoed.len(), 2);
    assert!(echoed.iter().all(|b| b.contains(MARKER) && b.ends_with('\u{FFFD}')), "{echoed:?}");
    hub.stop().await;
}

/// The audit writer batches every tenant's calls into one statement: a row
/// the database refuses (here a NUL, which PostgreSQL text cannot hold) must
/// not take the record of the other calls with it.
async fn an_audit_row_the_database_refuses_costs_only_itself(backend: Backend) {
    use hookhub_store::repo::{AuditEntry, AuditFilter};
    let (settings, store, tenant) = common::test_store(backend).await;
    let entry = |path: &str| AuditEntry {
        tenant_id: Some(tenant.id.clone()),
        credential: None,
        method: "POST".into(),
        path: path.into(),
        status: 202,
        latency_ms: 1,
        client_ip: None,
        at: hookhub_store::domain::now(),
        platform_id: None,
    };
    let batch = vec![entry("/v1/events"), entry("/v1/\0poison"), entry("/v1/subscriptions")];
    store.record_audit(batch).await.expect("the healthy rows are written");
    let page = hookhub_store::PageRequest::first();
    let rows = store.list_audit(&tenant.id, &AuditFilter::default(), &page).await.unwrap().items;
    let paths: std::collections::HashSet<_> = rows.iter().map(|r| r.path.as_str()).collect();
    assert!(paths.contains("/v1/events") && paths.contains("/v1/subscriptions"), "{paths:?}");
    common::drop_test_resources(&settings).await;
}

/// The attempt recorder writes every tenant's finished attempts in one
/// batch: one the database refuses (a NUL in its error text, which
/// PostgreSQL cannot hold) is left for its lease, and the others are
/// recorded.
async fn an_attempt_the_database_refuses_costs_only_itself(backend: Backend) {
    use hookhub_store::domain::now;
    use hookhub_store::repo::{BreakerPolicy, NewAttempt, NextStep, RecordedAttempt};

    let (settings, store, first) = common::test_store(backend).await;
    let (second, _) = store.create_tenant("second").await.unwrap();
    for (tenant, path) in [(&first, "a"), (&second, "b"), (&first, "c")] {
        common::subscribe_in_store(&store, tenant, &format!("http://127.0.0.1:9/{path}")).await;
    }
    let mut work = Vec::new();
    for tenant in [&first, &second] {
        let fresh = common::fanned_out(&store, tenant, now() + chrono::Duration::seconds(60)).await;
        work.extend(common::loaded(&store, &fresh).await);
    }
    let failed = |w: &hookhub_store::repo::DeliveryWork, error: &str| RecordedAttempt {
        work: w.clone(),
        attempt: NewAttempt {
            attempted_at: now(),
            status_code: None,
            latency_ms: 3,
            error: Some(error.into()),
            response_body: None,
        },
        next: NextStep::RetryAt(now() + chrono::Duration::seconds(30)),
    };
    let batch = [failed(&work[0], "timed out"), failed(&work[2], "bad\0error"), failed(&work[1], "refused")];
    let recorded = store.record_attempts(&batch, BreakerPolicy::default()).await.unwrap();
    assert!(recorded[0] && recorded[2], "{recorded:?}");
    if backend == Backend::Postgres {
        assert!(!recorded[1], "PostgreSQL refuses a NUL: that attempt waits for its lease");
    }
    let healthy = "SELECT count(*) FROM attempts WHERE error IN ('timed out', 'refused')";
    assert_eq!(common::scalar(&store, healthy).await, 2);
    common::drop_test_resources(&settings).await;
}

/// The retry path claims every tenant's due deliveries in one statement: a
/// row whose id does not parse is failed, with the reason, and the healthy
/// ones are claimed.
async fn a_corrupt_delivery_row_fails_itself_not_the_claim(backend: Backend) {
    use hookhub_store::domain::now;
    let (settings, store, tenant) = common::test_store(backend).await;
    for path in ["a", "b", "c"] {
        common::subscribe_in_store(&store, &tenant, &format!("http://127.0.0.1:9/{path}")).await;
    }
    let fresh = common::fanned_out(&store, &tenant, now()).await;
    let run = |sql: String| {
        let store = store.clone();
        async move { store.db().execute(Statement::from_string(store.backend(), sql)).await.unwrap() }
    };
    run(format!("UPDATE deliveries SET id = 'dlv_not-an-id' WHERE id = '{}'", fresh[1].id())).await;

    let claimed = store.claim_due_deliveries(10, chrono::Duration::seconds(30)).await.expect("the claim goes through");
    let expected: std::collections::HashSet<_> = [fresh[0].id(), fresh[2].id()].into_iter().cloned().collect();
    assert_eq!(claimed.into_iter().map(|d| d.id).collect::<std::collections::HashSet<_>>(), expected);
    let failed = "SELECT count(*) FROM deliveries WHERE id = 'dlv_not-an-id' AND status = 'failed'";
    assert_eq!(common::scalar(&store, failed).await, 1);
    common::drop_test_resources(&settings).await;
}
