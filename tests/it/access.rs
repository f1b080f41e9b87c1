//! Access control: scoped API keys, OAuth 2.0 client credentials, and
//! revocation that takes effect on the next request.
use crate::common;

use common::{Backend, TestHub};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

async fn with(hub: &TestHub, credential: &str, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new().request(method, format!("{}{path}", hub.base)).bearer_auth(credential);
    if let Some(body) = body {
        req = req.json(&body);
    }
    hub.call(req).await
}

async fn token_request(hub: &TestHub, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> reqwest::Response {
    let mut req = reqwest::Client::new().post(format!("{}/v1/oauth/token", hub.base)).form(form);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn scoped_api_keys_and_revocation_on_the_next_request() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let event = json!({"type": "client.created", "data": {"client_id": "c1"}});
    let (status, read) = hub.post("/v1/api-keys", json!({"name": "dashboard", "scope": "read"})).await;
    assert_eq!(status, StatusCode::CREATED, "{read}");
    let read_key = read["key"].as_str().unwrap().to_owned();
    assert!(read_key.starts_with("hh_live_"));
    let (_, write) = hub.post("/v1/api-keys", json!({"name": "zapier"})).await;
    assert_eq!(write["scope"], "write", "write is the default");
    let write_key = write["key"].as_str().unwrap().to_owned();

    assert_eq!(with(&hub, &read_key, Method::GET, "/v1/events", None).await.0, StatusCode::OK);
    let (status, body) = with(&hub, &read_key, Method::POST, "/v1/events", Some(event.clone())).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("insufficient_scope")));
    assert_eq!(with(&hub, &write_key, Method::POST, "/v1/events", Some(event.clone())).await.0, StatusCode::ACCEPTED);
    let (status, _) = with(&hub, &write_key, Method::GET, "/v1/api-keys", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "keys are managed with admin scope only");

    let (_, keys) = hub.get("/v1/api-keys").await;
    assert_eq!(keys["data"].as_array().unwrap().len(), 3);
    assert!(!keys.to_string().contains(&write_key[8..]), "keys are never shown again");

    let (status, _) =
        hub.call(hub.request(Method::DELETE, &format!("/v1/api-keys/{}", write["id"].as_str().unwrap()))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(with(&hub, &write_key, Method::POST, "/v1/events", Some(event)).await.0, StatusCode::UNAUTHORIZED);

    let other = hub.new_tenant().await;
    let (status, _) =
        with(&hub, &other, Method::DELETE, &format!("/v1/api-keys/{}", read["id"].as_str().unwrap()), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another tenant's key is not found, not forbidden");
    let (status, body) = hub.post("/v1/api-keys", json!({"name": "x", "scope": "root"})).await;
    assert_eq!((status, body["errors"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("scope")));
    hub.stop().await;
}

#[tokio::test]
async fn oauth_client_credentials_issue_expire_tamper_and_revoke() {
    let hub = TestHub::start(Backend::Postgres).await;
    let (status, app) = hub.post("/v1/oauth-apps", json!({"name": "CRM sync", "scope": "write"})).await;
    assert_eq!(status, StatusCode::CREATED, "{app}");
    let (id, secret) =
        (app["client_id"].as_str().unwrap().to_owned(), app["client_secret"].as_str().unwrap().to_owned());

    // Form-encoded credentials, and HTTP Basic.
    let resp = token_request(
        &hub,
        &[("grant_type", "client_credentials"), ("client_id", &id), ("client_secret", &secret)],
        None,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let issued: Value = resp.json().await.unwrap();
    assert_eq!((issued["token_type"].as_str(), issued["expires_in"].as_i64()), (Some("Bearer"), Some(3600)));
    assert_eq!(issued["scope"], "read write");
    let token = issued["access_token"].as_str().unwrap().to_owned();
    let resp =
        token_request(&hub, &[("grant_type", "client_credentials"), ("scope", "read")], Some((&id, &secret))).await;
    let read_only: Value = resp.json().await.unwrap();
    assert_eq!(read_only["scope"], "read");

    let event = json!({"type": "client.created", "data": {"client_id": "c1"}});
    assert_eq!(with(&hub, &token, Method::POST, "/v1/events", Some(event.clone())).await.0, StatusCode::ACCEPTED);
    let read_token = read_only["access_token"].as_str().unwrap();
    assert_eq!(with(&hub, read_token, Method::POST, "/v1/events", Some(event.clone())).await.0, StatusCode::FORBIDDEN);
    let (status, body) = with(&hub, &token, Method::GET, "/v1/oauth-apps", None).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("insufficient_scope")));

    // Tampered: 401 with the RFC 6750 challenge.
    // Its last character changed (to another one: a token may end in `x`).
    let last = if token.ends_with('x') { "y" } else { "x" };
    let tampered = format!("{}{last}", &token[..token.len() - 1]);
    let resp =
        reqwest::Client::new().get(format!("{}/v1/events", hub.base)).bearer_auth(&tampered).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["www-authenticate"], r#"Bearer error="invalid_token""#);

    // Expired: an hour later, as far as the database knows.
    {
        use sea_orm::ConnectionTrait;
        let db = hub.hub().store().db();
        db.execute_unprepared("UPDATE access_tokens SET expires_at = created_at - interval '1 second'").await.unwrap();
    }
    let (status, body) = with(&hub, &token, Method::GET, "/v1/events", None).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_token")));

    // Revoked: deleting the app kills its fresh tokens on the next request.
    let resp = token_request(&hub, &[("grant_type", "client_credentials")], Some((&id, &secret))).await;
    let fresh: Value = resp.json().await.unwrap();
    let fresh = fresh["access_token"].as_str().unwrap();
    assert_eq!(with(&hub, fresh, Method::GET, "/v1/events", None).await.0, StatusCode::OK);
    let (status, _) =
        hub.call(hub.request(Method::DELETE, &format!("/v1/oauth-apps/{}", app["id"].as_str().unwrap()))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(with(&hub, fresh, Method::GET, "/v1/events", None).await.0, StatusCode::UNAUTHORIZED);
    hub.stop().await;
}

#[tokio::test]
async fn the_token_endpoint_answers_errors_as_rfc_6749_says() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let (_, app) = hub.post("/v1/oauth-apps", json!({"name": "reporting", "scope": "read"})).await;
    let (id, secret) = (app["client_id"].as_str().unwrap(), app["client_secret"].as_str().unwrap());
    let grant = ("grant_type", "client_credentials");
    for (name, form, basic, status, error) in [
        ("wrong secret", vec![grant], Some((id, "hh_secret_nope")), 401, "invalid_client"),
        (
            "unknown client",
            vec![grant, ("client_id", "hh_client_x"), ("client_secret", "s")],
            None,
            401,
            "invalid_client",
        ),
        ("no client authentication", vec![grant], None, 401, "invalid_client"),
        ("password grant", vec![("grant_type", "password")], Some((id, secret)), 400, "unsupported_grant_type"),
        ("no grant type", vec![], Some((id, secret)), 400, "invalid_request"),
        ("an empty grant type is no grant type", vec![("grant_type", "")], Some((id, secret)), 400, "invalid_request"),
        ("a repeated parameter", vec![grant, grant], Some((id, secret)), 400, "invalid_request"),
        ("more scope than the app has", vec![grant, ("scope", "write")], Some((id, secret)), 400, "invalid_scope"),
        ("unknown scope", vec![grant, ("scope", "root")], Some((id, secret)), 400, "invalid_scope"),
        (
            "a body client_id that is not the Basic one",
            vec![grant, ("client_id", "hh_client_other")],
            Some((id, secret)),
            400,
            "invalid_request",
        ),
        ("Basic and a body secret", vec![grant, ("client_secret", secret)], Some((id, secret)), 400, "invalid_request"),
    ] {
        let resp = token_request(&hub, &form, basic).await;
        assert_eq!(resp.status().as_u16(), status, "{name}");
        let basic_challenge = resp.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], error, "{name}: {body}");
        assert!(body["error_description"].is_string(), "{name}");
        if name == "wrong secret" {
            assert!(basic_challenge.unwrap().starts_with("Basic"), "Basic authentication failed: a Basic challenge");
        }
    }
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/oauth/token", hub.base))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "JSON is not the token endpoint's format");
    // Parameters it does not know are ignored, even repeated (RFC 6749 §3.1).
    let form = vec![grant, ("client_id", id), ("client_secret", secret), ("x", "1"), ("x", "2"), ("scope", "")];
    let resp = token_request(&hub, &form, None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    hub.stop().await;
}

/// Authlib and requests-oauthlib, as their documentation configures them,
/// including Basic authentication with the client id repeated in the body
/// (RFC 6749 §3.2.1), which the endpoint once refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_oauth_client_libraries_get_tokens() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let (_, app) = hub.post("/v1/oauth-apps", json!({"name": "Zapier", "scope": "write"})).await;
    let (id, secret) =
        (app["client_id"].as_str().unwrap().to_owned(), app["client_secret"].as_str().unwrap().to_owned());
    let url = format!("{}/v1/oauth/token", hub.base);
    let out = tokio::task::spawn_blocking(move || common::run_python("oauth_clients.py", &[&url, &id, &secret], ""))
        .await
        .unwrap();
    assert_eq!(out.lines().count(), 4, "{out}");
    for line in out.lines() {
        let token: Value = serde_json::from_str(line).unwrap();
        assert_eq!(token["token_type"], "Bearer", "{line}");
    }
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_is_audited_without_its_body() {
    const MARKER: &str = "PHI-IN-BODY-93e1";
    let hub = TestHub::start(Backend::Sqlite).await;
    hub.send_event("consent.signed", json!({"client_id": "c1", "form": MARKER})).await;
    assert_eq!(hub.get("/v1/subscriptions/sub_00000000000000000000000000000000").await.0, StatusCode::NOT_FOUND);
    let (_, read) = hub.post("/v1/api-keys", json!({"name": "viewer", "scope": "read"})).await;
    let read_key = read["key"].as_str().unwrap();
    assert_eq!(with(&hub, read_key, Method::POST, "/v1/rules", Some(json!({}))).await.0, StatusCode::FORBIDDEN);

    let log = common::eventually(std::time::Duration::from_secs(10), || async {
        let (_, log) = hub.get("/v1/audit-log").await;
        (log["data"].as_array()?.len() >= 4).then_some(log)
    })
    .await;
    let rows = log["data"].as_array().unwrap();
    let event_row = rows.iter().find(|r| r["path"] == "/v1/events" && r["method"] == "POST").unwrap();
    assert_eq!(event_row["status"], 202);
    assert!(event_row["credential"].as_str().unwrap().starts_with("key_"), "the key's id, never the key");
    assert!(event_row["latency_ms"].is_number() && event_row["at"].is_string());
    assert!(rows.iter().any(|r| r["status"] == 403 && r["credential"] == read["id"]));
    assert!(!log.to_string().contains(MARKER), "bodies are never recorded");
    assert!(!log.to_string().contains(&hub.key[8..]), "keys are never recorded");

    let (_, not_found) = hub.get("/v1/audit-log?status=404").await;
    let statuses: Vec<_> =
        not_found["data"].as_array().unwrap().iter().map(|r| r["status"].as_i64().unwrap()).collect();
    assert_eq!(statuses, [404]);
    let (_, none) = hub.get("/v1/audit-log?to=2000-01-01T00:00:00Z").await;
    assert_eq!(none["data"], json!([]));
    assert_eq!(hub.get("/v1/audit-log?from=yesterday").await.0, StatusCode::BAD_REQUEST);
    assert_eq!(with(&hub, read_key, Method::GET, "/v1/audit-log", None).await.0, StatusCode::FORBIDDEN);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_limits_hold_across_two_ingest_processes_in_both_windows() {
    use hookhub::{Hub, Role};
    use hookhub_store::domain::Plan;
    let settings = common::test_settings(Backend::Postgres).await;
    let store = hookhub_store::Store::connect(&settings.database_url).await.unwrap();
    store.migrate().await.unwrap();
    let a = Hub::start(&settings, Role::Ingest).await.unwrap();
    let b = Hub::start(&settings, Role::Ingest).await.unwrap();
    let bases = [a.port().unwrap(), b.port().unwrap()].map(|p| format!("http://127.0.0.1:{p}"));
    let (tenant, key) = store.create_tenant_on("small studio", Plan::Essential).await.unwrap();
    let client = reqwest::Client::new();
    let get = |i: usize| client.get(format!("{}/v1/events", bases[i % 2])).bearer_auth(key.expose()).send();

    // 50 per 15 minutes, counted once for both processes.
    for i in 0..50 {
        let resp = get(i).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "request {i}");
        assert_eq!(resp.headers()["x-ratelimit-limit"], "50");
        assert_eq!(resp.headers()["x-ratelimit-remaining"], (49 - i).to_string().as_str());
        assert!(resp.headers().contains_key("x-ratelimit-reset"));
    }
    let over = get(50).await.unwrap();
    assert_eq!(over.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: i64 = over.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry_after));
    assert_eq!(over.headers()["x-ratelimit-remaining"], "0");
    let body: Value = over.json().await.unwrap();
    assert_eq!(body["code"], "rate_limited");

    // The daily window bites on its own: a tenant that used its day.
    let (other, other_key) = store.create_tenant_on("busy studio", Plan::Starter).await.unwrap();
    let now = chrono::Utc::now().timestamp();
    {
        use sea_orm::ConnectionTrait;
        let day_start = now - now.rem_euclid(86_400);
        let sql = format!(
            "INSERT INTO rate_counters (tenant_id, window_secs, window_start, count) VALUES ('{}', 86400, {day_start}, 5000)",
            other.id
        );
        store.db().execute_unprepared(&sql).await.unwrap();
    }
    let resp = client.get(format!("{}/v1/events", bases[0])).bearer_auth(other_key.expose()).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS, "the day is used up though the 15 minutes are not");
    assert_eq!(resp.headers()["x-ratelimit-limit"], "5000");
    let _ = tenant;
    a.shutdown().await;
    b.shutdown().await;
    common::drop_test_resources(&settings).await;
}

/// Each ingest process trusts a verified key for `credential_cache_ms`: the
/// process that revokes it refuses it on the next request, the others once
/// that time has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_through_one_ingest_process_stops_on_the_others_within_the_cache_ttl() {
    use hookhub::{Hub, Role};
    let mut settings = common::test_settings(Backend::Postgres).await;
    settings.credential_cache_ms = 300;
    let store = hookhub_store::Store::connect(&settings.database_url).await.unwrap();
    store.migrate().await.unwrap();
    let a = Hub::start(&settings, Role::Ingest).await.unwrap();
    let b = Hub::start(&settings, Role::Ingest).await.unwrap();
    let bases = [a.port().unwrap(), b.port().unwrap()].map(|p| format!("http://127.0.0.1:{p}"));
    let (_, admin) = store.create_tenant("studio").await.unwrap();
    let client = reqwest::Client::new();
    let keys_url = format!("{}/v1/api-keys", bases[0]);
    let created =
        common::post_json(&client, &keys_url, admin.expose(), json!({"name": "zapier", "scope": "read"})).await;
    let key = created["key"].as_str().unwrap().to_owned();
    let status_on = |i: usize| {
        let req = client.get(format!("{}/v1/events", bases[i])).bearer_auth(&key).send();
        async move { req.await.unwrap().status() }
    };
    // Both processes have verified (and cached) the key.
    assert_eq!(status_on(0).await, StatusCode::OK);
    assert_eq!(status_on(1).await, StatusCode::OK);

    let revoke = client
        .delete(format!("{}/v1/api-keys/{}", bases[0], created["id"].as_str().unwrap()))
        .bearer_auth(admin.expose())
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), StatusCode::NO_CONTENT);
    assert_eq!(status_on(0).await, StatusCode::UNAUTHORIZED, "the revoking process forgets the key at once");
    common::eventually(Duration::from_secs(5), || async {
        (status_on(1).await == StatusCode::UNAUTHORIZED).then_some(())
    })
    .await;
    a.shutdown().await;
    b.shutdown().await;
    common::drop_test_resources(&settings).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_keeps_tenants_apart_even_when_a_query_forgets_its_filter() {
    use sea_orm::{ConnectionTrait, Statement};
    let hub = TestHub::start(Backend::Postgres).await;
    hub.subscribe("https://a.example/hooks", &["*"]).await;
    hub.send_event("client.created", json!({"client_id": "a1"})).await;
    let other_key = hub.new_tenant().await;
    for n in 0..3 {
        let req = reqwest::Client::new()
            .post(format!("{}/v1/events", hub.base))
            .bearer_auth(&other_key)
            .json(&json!({"type": "client.created", "data": {"client_id": n}}));
        assert_eq!(hub.call(req).await.0, StatusCode::ACCEPTED);
    }
    let store = hub.hub().store();
    let tenants = store.list_tenants().await.unwrap();
    let first = &tenants[0].id;
    let count = |sql: &'static str| {
        let sql = Statement::from_string(store.backend(), sql);
        async move {
            let txn = store.tenant_scope(first).await.unwrap();
            let row = txn.query_one(sql).await.unwrap().unwrap();
            let n: i64 = row.try_get_by_index(0).unwrap();
            txn.commit().await.unwrap();
            n
        }
    };
    // No WHERE clause at all: the policies still show only the first tenant's rows.
    assert_eq!(count("SELECT count(*) FROM events").await, 1);
    assert_eq!(count("SELECT count(*) FROM subscriptions").await, 1);
    assert_eq!(count("SELECT count(*) FROM tenants").await, 1);
    assert_eq!(count("SELECT count(*) FROM api_keys").await, 1);
    // Writing a row for another tenant is refused too.
    let txn = store.tenant_scope(first).await.unwrap();
    let other_id = &tenants[1].id;
    let forged = format!(
        "INSERT INTO rules (id, tenant_id, on_type, emit_type, created_at) VALUES ('rul_x', '{other_id}', 'a.b', 'c.d', now())"
    );
    assert!(txn.execute_unprepared(&forged).await.is_err(), "WITH CHECK refuses another tenant's row");
    drop(txn);
    // The hub's own connection (relay, dispatcher) still sees everything.
    let all = store.db().query_one(Statement::from_string(store.backend(), "SELECT count(*) FROM events")).await;
    let all: i64 = all.unwrap().unwrap().try_get_by_index(0).unwrap();
    assert_eq!(all, 4);
    hub.stop().await;
}

/// The tables the API writes on a tenant's behalf.
const API_WRITTEN: [&str; 9] = [
    "events",
    "outbox",
    "subscriptions",
    "event_types",
    "rules",
    "inbound_sources",
    "api_keys",
    "oauth_apps",
    "access_tokens",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_writes_run_as_the_role_the_policies_bind() {
    use sea_orm::{ConnectionTrait, Statement};
    let hub = TestHub::start(Backend::Postgres).await;
    let db = hub.hub().store().db();
    // A trigger records which role made each write: the proof that the API
    // does not write through the owner's connection, which bypasses the policies.
    db.execute_unprepared(
        "CREATE TABLE write_log (tbl text, op text, role text); \
         GRANT INSERT ON write_log TO hookhub_tenant; \
         CREATE FUNCTION log_write() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
           INSERT INTO write_log VALUES (TG_TABLE_NAME, TG_OP, current_user); RETURN NULL; END $$;",
    )
    .await
    .unwrap();
    for table in API_WRITTEN {
        // The relay claims and marks outbox rows as the owner, by design:
        // only the API's inserts there are the tenant's writes.
        let ops = if table == "outbox" { "INSERT" } else { "INSERT OR UPDATE OR DELETE" };
        let trigger =
            format!("CREATE TRIGGER log_write AFTER {ops} ON {table} FOR EACH ROW EXECUTE FUNCTION log_write()");
        db.execute_unprepared(&trigger).await.unwrap();
    }

    let key = hub.key.clone();
    let ok = |(status, body): (StatusCode, Value)| {
        assert!(status.is_success(), "{status}: {body}");
        body
    };
    // Not subscribed to the event posted below: its delivery would be the
    // dispatcher's, which settles a failing subscription (its failure
    // streak) as the owner, by design, and could do so before the delete.
    let sub = ok(with(
        &hub,
        &key,
        Method::POST,
        "/v1/subscriptions",
        Some(json!({"url": "https://a.example/h", "event_types": ["appointment.booked"]})),
    )
    .await);
    let sub = format!("/v1/subscriptions/{}", sub["id"].as_str().unwrap());
    ok(with(&hub, &key, Method::POST, "/v1/events", Some(json!({"type": "client.created", "data": {}}))).await);
    ok(with(&hub, &key, Method::PATCH, &sub, Some(json!({"description": "x"}))).await);
    ok(with(&hub, &key, Method::POST, &format!("{sub}/secret/rotate"), None).await);
    ok(with(&hub, &key, Method::DELETE, &sub, None).await);
    let custom = json!({"name": "program.completed", "schema": {"type": "object"}});
    ok(with(&hub, &key, Method::POST, "/v1/event-types", Some(custom)).await);
    ok(with(&hub, &key, Method::PATCH, "/v1/event-types/client.created", Some(json!({"validate": false}))).await);
    let rule = ok(with(&hub, &key, Method::POST, "/v1/rules", Some(json!({"on": "a.b", "emit": "c.d"}))).await);
    ok(with(&hub, &key, Method::DELETE, &format!("/v1/rules/{}", rule["id"].as_str().unwrap()), None).await);
    let source = ok(with(&hub, &key, Method::POST, "/v1/inbound-sources", Some(json!({"source": "generic"}))).await);
    ok(with(&hub, &key, Method::DELETE, &format!("/v1/inbound-sources/{}", source["id"].as_str().unwrap()), None)
        .await);
    let api_key = ok(with(&hub, &key, Method::POST, "/v1/api-keys", Some(json!({"name": "k"}))).await);
    ok(with(&hub, &key, Method::DELETE, &format!("/v1/api-keys/{}", api_key["id"].as_str().unwrap()), None).await);
    let app = ok(with(&hub, &key, Method::POST, "/v1/oauth-apps", Some(json!({"name": "app"}))).await);
    let (id, secret) = (app["client_id"].as_str().unwrap(), app["client_secret"].as_str().unwrap());
    let form = [("grant_type", "client_credentials"), ("client_id", id), ("client_secret", secret)];
    assert_eq!(token_request(&hub, &form, None).await.status(), StatusCode::OK);
    ok(with(&hub, &key, Method::DELETE, &format!("/v1/oauth-apps/{}", app["id"].as_str().unwrap()), None).await);

    let rows = db
        .query_all(Statement::from_string(db.get_database_backend(), "SELECT tbl, op, role FROM write_log"))
        .await
        .unwrap();
    let writes: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| (r.try_get_by_index(0).unwrap(), r.try_get_by_index(1).unwrap(), r.try_get_by_index(2).unwrap()))
        .collect();
    let by_owner: Vec<_> = writes.iter().filter(|(_, _, role)| role != "hookhub_tenant").collect();
    assert!(by_owner.is_empty(), "writes that bypassed row-level security: {by_owner:?}");
    for table in API_WRITTEN {
        assert!(writes.iter().any(|(t, _, _)| t == table), "no API write to {table} was exercised: {writes:?}");
    }
    hub.stop().await;
}

/// The id of the tenant `hub` was started with.
async fn only_tenant(hub: &TestHub) -> hookhub_store::domain::TenantId {
    hub.hub().store().list_tenants().await.unwrap().remove(0).id
}

/// Gateway callbacks and token requests count against the owning tenant's
/// plan like its API calls: once over, every route answers 429.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_and_token_requests_count_against_the_tenants_plan() {
    let hub = TestHub::start(Backend::Postgres).await;
    let (_, source) = hub.post("/v1/inbound-sources", json!({"source": "generic"})).await;
    let (_, app) = hub.post("/v1/oauth-apps", json!({"name": "zap"})).await;
    hub.hub().store().set_plan(&only_tenant(&hub).await, hookhub_store::domain::Plan::Essential).await.unwrap();
    let secret = hookhub_store::domain::SigningSecret::parse(source["signing_secret"].as_str().unwrap()).unwrap();
    let url = format!("{}{}", hub.base, source["url_path"].as_str().unwrap());
    let body = json!({"type": "consent.signed", "data": {"client_id": "cl_1"}}).to_string();
    let mut accepted = 0;
    let refused = loop {
        let sig = hookhub_store::domain::signer::sign(
            &secret,
            &format!("msg_{accepted}"),
            chrono::Utc::now().timestamp(),
            body.as_bytes(),
        );
        let resp = reqwest::Client::new()
            .post(&url)
            .header("webhook-id", sig.id)
            .header("webhook-timestamp", sig.timestamp.to_string())
            .header("webhook-signature", sig.signature)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        if resp.status() != StatusCode::OK {
            break resp;
        }
        accepted += 1;
        assert!(accepted <= 50, "the essential plan allows 50 requests per 15 minutes");
    };
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers()["retry-after"].to_str().unwrap().parse::<i64>().unwrap() > 0);
    assert_eq!(refused.json::<Value>().await.unwrap()["code"], "rate_limited");
    assert_eq!(hub.get("/v1/events").await.0, StatusCode::TOO_MANY_REQUESTS, "the API shares the count");
    let (id, secret) = (app["client_id"].as_str().unwrap(), app["client_secret"].as_str().unwrap());
    let resp = token_request(&hub, &[("grant_type", "client_credentials")], Some((id, secret))).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS, "no token over the plan");
    assert_eq!(resp.json::<Value>().await.unwrap()["code"], "rate_limited");
    hub.stop().await;
}

/// The token endpoint limits attempts per client id, failed ones included,
/// so a client secret cannot be guessed at speed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_requests_are_limited_per_client_id_failed_ones_included() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let (_, app) = hub.post("/v1/oauth-apps", json!({"name": "zap"})).await;
    let (id, secret) = (app["client_id"].as_str().unwrap(), app["client_secret"].as_str().unwrap());
    let grant = [("grant_type", "client_credentials")];
    let limit = hookhub_store::repo::TOKEN_REQUESTS_PER_CLIENT.limit;
    for _ in 0..limit {
        let resp = token_request(&hub, &grant, Some((id, "a guess"))).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    let resp = token_request(&hub, &grant, Some((id, secret))).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS, "even the right secret waits for the window");
    assert!(resp.headers().contains_key("retry-after"));
    assert_eq!(resp.json::<Value>().await.unwrap()["code"], "rate_limited");
    // Another client is counted apart.
    let (_, other) = hub.post("/v1/oauth-apps", json!({"name": "make"})).await;
    let other = (other["client_id"].as_str().unwrap(), other["client_secret"].as_str().unwrap());
    assert_eq!(token_request(&hub, &grant, Some(other)).await.status(), StatusCode::OK);
    hub.stop().await;
}
