//! The tenant backlog bound (`HOOKHUB_TENANT_BACKLOG_LIMIT`): a tenant whose
//! accepted events are not being published is refused with `429
//! tenant_backlog_full` and `Retry-After` once over the bound, while another
//! tenant's events are still accepted; once the relay works its backlog off,
//! the refused event is accepted when sent again.
//!
//! Nothing is mocked: the hub first runs as an ingest process alone, so no
//! relay publishes and every accepted event stays in the outbox; then a
//! whole hub (relay and dispatcher) starts on the same database and drains it.
use crate::common;

use common::{eventually, Backend};
use hookhub::{Hub, Role};
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

crate::on_both_backends!(a_tenant_over_its_backlog_bound_is_refused_and_no_one_else_is);

/// The bound the test runs with: small, so a few posts cross it.
const LIMIT: u64 = 5;

/// Posts one event for the tenant of `key` with `idempotency_key`.
async fn post(client: &reqwest::Client, base: &str, key: &str, idempotency_key: &str) -> reqwest::Response {
    let body = json!({"type": "client.created", "data": {"client_id": "cl_1"}, "idempotency_key": idempotency_key});
    client.post(format!("{base}/v1/events")).bearer_auth(key).json(&body).send().await.expect("the hub answers")
}

async fn a_tenant_over_its_backlog_bound_is_refused_and_no_one_else_is(backend: Backend) {
    let mut settings = common::test_settings(backend).await;
    settings.tenant_backlog_limit = LIMIT;
    settings.metrics_listen = Some("127.0.0.1:0".into());
    let store = settings.store().await.unwrap();
    store.migrate().await.unwrap();
    let (noisy, noisy_key) = store.create_tenant("noisy").await.unwrap();
    let (_, quiet_key) = store.create_tenant("quiet").await.unwrap();
    let ingest = Hub::start(&settings, Role::Ingest).await.unwrap();
    let base = format!("http://127.0.0.1:{}", ingest.port().unwrap());
    let client = reqwest::Client::new();

    // The guard reads the backlog every 250 ms, so the noisy tenant gets a
    // few events past the bound before it is refused.
    let mut accepted = 0;
    let refused = eventually(Duration::from_secs(20), || {
        let (client, base, key) = (&client, &base, noisy_key.expose());
        accepted += 1;
        let n = accepted;
        async move {
            let resp = post(client, base, key, &format!("import-{n}")).await;
            match resp.status() {
                StatusCode::ACCEPTED => None,
                StatusCode::TOO_MANY_REQUESTS => Some((n, resp)),
                other => panic!("202 or 429, not {other}"),
            }
        }
    })
    .await;
    let (refused_n, refused) = refused;
    assert!(refused_n as u64 > LIMIT, "refused only past the bound (at event {refused_n})");
    let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after >= 1, "Retry-After is at least a second");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "tenant_backlog_full", "{body}");
    assert!(body["hint"].as_str().is_some_and(|h| h.contains("Retry-After")), "{body}");
    let stored = format!("SELECT count(*) FROM events WHERE tenant_id = '{}'", noisy.id);
    assert_eq!(common::scalar(&store, &stored).await, refused_n - 1, "a refused event is not stored");

    for n in 0..3 {
        let resp = post(&client, &base, quiet_key.expose(), &format!("booking-{n}")).await;
        assert_eq!(resp.status(), StatusCode::ACCEPTED, "another tenant is unaffected");
    }
    // The batch endpoint answers the same, event by event.
    let batch = json!({"events": [{"type": "client.created", "data": {}, "idempotency_key": "batch-1"}]});
    let resp = client.post(format!("{base}/v1/events/batch")).bearer_auth(noisy_key.expose()).json(&batch).send();
    let answer: serde_json::Value = resp.await.unwrap().json().await.unwrap();
    assert_eq!(answer["results"][0]["status"], 429, "{answer}");
    assert_eq!(answer["results"][0]["code"], "tenant_backlog_full", "{answer}");
    let metrics_url = format!("http://127.0.0.1:{}/metrics", ingest.metrics_port().unwrap());
    let metrics = client.get(&metrics_url).send().await.unwrap().text().await.unwrap();
    let refusals = metrics.lines().find_map(|l| l.strip_prefix("hookhub_backlog_refusals_total "));
    assert!(refusals.and_then(|n| n.parse::<u64>().ok()).is_some_and(|n| n >= 1), "counted on /metrics");
    assert!(metrics.contains("hookhub_tenants_over_backlog_limit "), "the gauge is on /metrics");

    // A relay starts and publishes the backlog: the refused event, sent
    // again with its key, is accepted once the guard sees the drain.
    let whole = Hub::start(&settings, Role::All).await.unwrap();
    let again = format!("import-{refused_n}");
    eventually(Duration::from_secs(30), || async {
        let resp = post(&client, &base, noisy_key.expose(), &again).await;
        (resp.status() == StatusCode::ACCEPTED).then_some(())
    })
    .await;
    assert_eq!(common::scalar(&store, &stored).await, refused_n, "sent again, it is stored once");

    whole.shutdown().await;
    ingest.shutdown().await;
    common::drop_test_resources(&settings).await;
}
