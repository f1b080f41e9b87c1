//! The platform's side (issue #16): a platform key manages tenants and acts
//! for them with `Hookhub-Tenant`, batch ingest crosses tenants, tenant
//! keys stay inside their tenant, suspension holds deliveries and resume
//! sends them, and every platform call is audited. On both backends
//! (PostgreSQL under row-level security).
use crate::common;

use common::receiver::Receiver;
use common::{verify_with_reference, Backend, TestHub};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

crate::on_both_backends!(
    a_platform_key_onboards_tenants_and_batch_posts_across_them,
    tenant_keys_stay_out_of_platform_routes_and_other_tenants,
    suspend_refuses_ingest_and_holds_deliveries_until_resume,
    delete_erases_every_row_of_the_tenant_and_keeps_the_audit_log,
);

/// A platform and its `platform` key, made as `hookhub platform-key create` makes them.
async fn platform_key(hub: &TestHub) -> (String, String) {
    let (platform, key) = hub.hub().store().create_platform("Acme Studios Platform").await.unwrap();
    (platform.id.to_string(), key.expose().to_owned())
}

/// A request with `key`, acting for `tenant` when given.
async fn call(
    hub: &TestHub,
    key: &str,
    tenant: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new().request(method, format!("{}{path}", hub.base)).bearer_auth(key);
    if let Some(tenant) = tenant {
        req = req.header("Hookhub-Tenant", tenant);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    hub.call(req).await
}

async fn create_tenant(hub: &TestHub, key: &str, name: &str, external_id: &str) -> Value {
    let body = json!({"name": name, "external_id": external_id, "plan": "pro", "metadata": {"region": "eu"}});
    let (status, tenant) = call(hub, key, None, Method::POST, "/v1/tenants", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{tenant}");
    tenant
}

async fn a_platform_key_onboards_tenants_and_batch_posts_across_them(backend: Backend) {
    let receiver = Receiver::start().await;
    let hub = TestHub::start(backend).await;
    let (platform, key) = platform_key(&hub).await;
    let platform_hook = hub_subscribe(&hub, &key, None, &receiver.url("/platform"), &["tenant.created"]).await;

    let mut secrets = Vec::new();
    for n in 0..3 {
        let external = format!("studio_{n}");
        let tenant = create_tenant(&hub, &key, &format!("Studio {n}"), &external).await;
        assert_eq!(
            (tenant["external_id"].as_str(), tenant["status"].as_str()),
            (Some(external.as_str()), Some("active"))
        );
        // Subscribing through the external id: the platform never stores ten_ ids.
        let path = format!("/t{n}");
        let sub = hub_subscribe(&hub, &key, Some(&external), &receiver.url(&path), &["*"]).await;
        secrets.push((tenant["id"].as_str().unwrap().to_owned(), path, sub["secret"].as_str().unwrap().to_owned()));
    }
    let (status, dup) =
        call(&hub, &key, None, Method::POST, "/v1/tenants", Some(json!({"name": "x", "external_id": "studio_1"})))
            .await;
    assert_eq!((status, dup["code"].as_str()), (StatusCode::CONFLICT, Some("external_id_taken")));

    let (status, one) = call(&hub, &key, None, Method::GET, "/v1/tenants/studio_2", None).await;
    assert_eq!((status, one["id"].as_str()), (StatusCode::OK, Some(secrets[2].0.as_str())));
    let (status, listed) =
        call(&hub, &key, None, Method::GET, "/v1/tenants?plan=pro&status=active&limit=2", None).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed["data"].as_array().unwrap().len(), 2);
    let cursor = listed["pagination"]["next_cursor"].as_str().expect("a next page");
    let (_, rest) = call(&hub, &key, None, Method::GET, &format!("/v1/tenants?cursor={cursor}"), None).await;
    assert_eq!(rest["data"].as_array().unwrap().len(), 1);
    let (status, patched) = call(
        &hub,
        &key,
        None,
        Method::PATCH,
        "/v1/tenants/studio_0",
        Some(json!({"name": "Studio Zero", "plan": "studio"})),
    )
    .await;
    assert_eq!(
        (status, patched["name"].as_str(), patched["plan"].as_str()),
        (StatusCode::OK, Some("Studio Zero"), Some("studio"))
    );
    let (status, _) = call(&hub, &key, None, Method::GET, "/v1/tenants/studio_404", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // 300 events across the three tenants, named per event by external id.
    let events: Vec<Value> = (0..300)
        .map(|i| json!({"tenant": format!("studio_{}", i % 3), "type": "client.created", "data": {"n": i}}))
        .collect();
    let (status, answer) =
        call(&hub, &key, None, Method::POST, "/v1/events/batch", Some(json!({"events": events}))).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!((answer["accepted"].as_u64(), answer["refused"].as_u64()), (Some(300), Some(0)));
    for (i, result) in answer["results"].as_array().unwrap().iter().enumerate() {
        assert_eq!((result["index"].as_u64(), result["status"].as_u64()), (Some(i as u64), Some(202)));
        assert_eq!(result["tenant_id"].as_str(), Some(secrets[i % 3].0.as_str()));
    }
    for (tenant, path, secret) in &secrets {
        let got = receiver.wait_for(path, 100).await;
        assert_eq!(got.len(), 100, "{tenant} gets its own 100 events");
        assert!(got.iter().all(|r| r.json()["data"]["n"].as_u64().unwrap() % 3 == path[2..].parse::<u64>().unwrap()));
        verify_with_reference(secret, &got);
    }
    let created = receiver.wait_for("/platform", 3).await;
    verify_with_reference(platform_hook["secret"].as_str().unwrap(), &created);
    let announced: Vec<String> =
        created.iter().map(|r| r.json()["data"]["external_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(announced.len(), 3, "{announced:?}");

    // A batch over the limit, and one with a bad event among good ones.
    let too_many: Vec<Value> = (0..1001).map(|_| json!({"type": "client.created", "data": {}})).collect();
    let (status, body) =
        call(&hub, &key, Some("studio_0"), Method::POST, "/v1/events/batch", Some(json!({"events": too_many}))).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("batch_too_large")));
    assert!(body["message"].as_str().unwrap().contains("1000"), "{body}");
    let malformed = json!({"events": [{"type": "client.created", "data": {}}, {"type": "nope", "data": []}]});
    let (status, body) = call(&hub, &key, Some("studio_0"), Method::POST, "/v1/events/batch", Some(malformed)).await;
    let field = body["errors"][0]["field"].as_str();
    assert_eq!((status, field), (StatusCode::UNPROCESSABLE_ENTITY, Some("events[1].type")), "{body}");
    let mixed = json!({"events": [
        {"type": "client.created", "data": {}},
        {"tenant": "studio_unknown", "type": "client.created", "data": {}},
    ]});
    let (status, body) = call(&hub, &key, Some("studio_0"), Method::POST, "/v1/events/batch", Some(mixed)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let statuses: Vec<u64> =
        body["results"].as_array().unwrap().iter().map(|r| r["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, [202, 404]);

    // Every platform call is audited under the tenant it acted for, naming the platform.
    let tenant0 = &secrets[0].0;
    common::eventually(Duration::from_secs(10), || async {
        let (_, log) = call(&hub, &key, Some(tenant0), Method::GET, "/v1/audit-log", None).await;
        let rows = log["data"].as_array()?.clone();
        let by_platform = rows.iter().filter(|r| r["platform_id"] == platform.as_str()).count();
        (by_platform >= 3).then_some(())
    })
    .await;
    hub.stop().await;
}

async fn hub_subscribe(hub: &TestHub, key: &str, tenant: Option<&str>, url: &str, types: &[&str]) -> Value {
    let body = json!({"url": url, "event_types": types});
    let (status, sub) = call(hub, key, tenant, Method::POST, "/v1/subscriptions", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{sub}");
    sub
}

async fn tenant_keys_stay_out_of_platform_routes_and_other_tenants(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let (_, key) = platform_key(&hub).await;
    let a = create_tenant(&hub, &key, "A", "studio_a").await;
    let b = create_tenant(&hub, &key, "B", "studio_b").await;
    // The platform issues A a key of its own, and may not give it more than admin.
    let (status, issued) =
        call(&hub, &key, Some("studio_a"), Method::POST, "/v1/api-keys", Some(json!({"name": "a", "scope": "admin"})))
            .await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    let a_key = issued["key"].as_str().unwrap().to_owned();
    let (status, _) = call(
        &hub,
        &key,
        Some("studio_a"),
        Method::POST,
        "/v1/api-keys",
        Some(json!({"name": "p", "scope": "platform"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a tenant's key never gets the platform scope");

    for (method, path) in
        [(Method::GET, "/v1/tenants"), (Method::POST, "/v1/tenants"), (Method::GET, "/v1/tenants/studio_b")]
    {
        let (status, body) = call(&hub, &a_key, None, method, path, Some(json!({"name": "x"}))).await;
        assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("insufficient_scope")), "{path}");
    }
    for other in [b["id"].as_str().unwrap(), "studio_b"] {
        let (status, body) = call(&hub, &a_key, Some(other), Method::GET, "/v1/events", None).await;
        assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "{other}");
        let event = json!({"events": [{"tenant": other, "type": "client.created", "data": {}}]});
        let (_, body) = call(&hub, &a_key, None, Method::POST, "/v1/events/batch", Some(event)).await;
        assert_eq!(body["results"][0]["status"], 404, "{body}");
    }
    // Its own tenant, named either way, is fine.
    for own in [a["id"].as_str().unwrap(), "studio_a"] {
        assert_eq!(call(&hub, &a_key, Some(own), Method::GET, "/v1/events", None).await.0, StatusCode::OK);
    }
    // The hub's first tenant is no tenant of this platform.
    let (status, _) = call(&hub, &key, None, Method::GET, "/v1/tenants", None).await;
    assert_eq!(status, StatusCode::OK);
    let (_, list) = call(&hub, &hub.key, None, Method::GET, "/v1/events", None).await;
    assert!(list["data"].is_array());
    hub.stop().await;
}

async fn suspend_refuses_ingest_and_holds_deliveries_until_resume(backend: Backend) {
    let receiver = Receiver::start().await;
    // A long retry wait: the failed delivery's retry is made due by hand.
    let hub = TestHub::start_with(backend, |s| s.retry_schedule = "10s,10s".into()).await;
    let (_, key) = platform_key(&hub).await;
    let platform_hook = hub_subscribe(
        &hub,
        &key,
        None,
        &receiver.url("/platform"),
        &["tenant.created", "tenant.suspended", "tenant.resumed"],
    )
    .await;
    let s = create_tenant(&hub, &key, "S", "studio_s").await;
    let tenant: hookhub_store::domain::TenantId = s["id"].as_str().unwrap().parse().unwrap();
    hub_subscribe(&hub, &key, Some("studio_s"), &receiver.url("/s"), &["*"]).await;
    receiver.script("/s", &[500]);
    let event = json!({"type": "client.created", "data": {"n": 1}});
    let (status, first) = call(&hub, &key, Some("studio_s"), Method::POST, "/v1/events", Some(event.clone())).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let event_id = first["id"].as_str().unwrap().to_owned();
    receiver.wait_for("/s", 1).await;

    let (status, suspended) = call(&hub, &key, None, Method::POST, "/v1/tenants/studio_s/suspend", None).await;
    assert_eq!((status, suspended["status"].as_str()), (StatusCode::OK, Some("suspended")));
    let (status, body) = call(&hub, &key, Some("studio_s"), Method::POST, "/v1/events", Some(event.clone())).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("tenant_suspended")));
    let batch = json!({"events": [{"type": "client.created", "data": {}}]});
    let (_, body) = call(&hub, &key, Some("studio_s"), Method::POST, "/v1/events/batch", Some(batch)).await;
    assert_eq!(body["results"][0]["code"], "tenant_suspended", "{body}");
    // Fan-out writes a suspended tenant's new deliveries held.
    let matching = hub.hub().store().matching_subscriptions(&tenant, &"client.created".parse().unwrap()).await.unwrap();
    assert!(matching.suspended && matching.readable.is_empty() && matching.unreadable.len() == 1);

    // The retry comes due while suspended: it is held, not sent, not lost.
    {
        use sea_orm::ConnectionTrait;
        let db = hub.hub().store().db();
        db.execute_unprepared("UPDATE deliveries SET next_attempt_at = created_at WHERE status = 'pending'")
            .await
            .unwrap();
    }
    let held = common::eventually(Duration::from_secs(10), || async {
        let (_, e) = call(&hub, &key, Some("studio_s"), Method::GET, &format!("/v1/events/{event_id}"), None).await;
        let d = e["deliveries"][0].clone();
        d["last_error"].as_str().is_some_and(|m| m.contains("suspended")).then_some(d)
    })
    .await;
    assert_eq!(held["status"], "pending", "{held}");
    assert_eq!(receiver.received("/s").len(), 1, "nothing is sent while suspended");

    let (status, resumed) = call(&hub, &key, None, Method::POST, "/v1/tenants/studio_s/resume", None).await;
    assert_eq!((status, resumed["status"].as_str()), (StatusCode::OK, Some("active")));
    let got = receiver.wait_for("/s", 2).await;
    assert_eq!(got[1].header("webhook-id"), event_id, "what waited is sent on resume");
    let (status, _) = call(&hub, &key, Some("studio_s"), Method::POST, "/v1/events", Some(event)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let told = receiver.wait_for("/platform", 3).await;
    let mut kinds: Vec<String> = told.iter().map(|r| r.json()["type"].as_str().unwrap().to_owned()).collect();
    kinds.sort();
    assert_eq!(kinds, ["tenant.created", "tenant.resumed", "tenant.suspended"]);
    verify_with_reference(platform_hook["secret"].as_str().unwrap(), &told);
    hub.stop().await;
}

/// Rows of `tenant` in `table`, read directly.
async fn rows_of(hub: &TestHub, table: &str, column: &str, tenant: &str) -> i64 {
    common::scalar(hub.hub().store(), &format!("SELECT COUNT(*) FROM {table} WHERE {column} = '{tenant}'")).await
}

async fn delete_erases_every_row_of_the_tenant_and_keeps_the_audit_log(backend: Backend) {
    let receiver = Receiver::start().await;
    let hub = TestHub::start(backend).await;
    let (_, key) = platform_key(&hub).await;
    let platform_hook = hub_subscribe(&hub, &key, None, &receiver.url("/platform"), &["tenant.deleted"]).await;
    let mut ids = Vec::new();
    for name in ["gone", "kept"] {
        let t = create_tenant(&hub, &key, name, name).await;
        ids.push(t["id"].as_str().unwrap().to_owned());
        hub_subscribe(&hub, &key, Some(name), &receiver.url(&format!("/{name}")), &["*"]).await;
        for (path, body) in [
            ("/v1/api-keys", json!({"name": "own"})),
            ("/v1/oauth-apps", json!({"name": "app"})),
            ("/v1/rules", json!({"on": "client.created", "emit": "client.welcomed"})),
            ("/v1/inbound-sources", json!({"source": "generic"})),
        ] {
            let (status, answer) = call(&hub, &key, Some(name), Method::POST, path, Some(body)).await;
            assert!(status.is_success(), "{path}: {status} {answer}");
        }
        let events: Vec<Value> = (0..20).map(|i| json!({"type": "client.created", "data": {"n": i}})).collect();
        let (_, answer) =
            call(&hub, &key, Some(name), Method::POST, "/v1/events/batch", Some(json!({"events": events}))).await;
        assert_eq!(answer["accepted"], 20, "{answer}");
        receiver.wait_for(&format!("/{name}"), 40).await;
    }
    let (gone, kept) = (ids[0].clone(), ids[1].clone());
    // Each tenant's 20 events and the 20 its rule derives are delivered
    // and written (a first attempt is written after it was sent).
    for tenant in [&gone, &kept] {
        common::eventually(Duration::from_secs(20), || async {
            (rows_of(&hub, "attempts", "tenant_id", tenant).await == 40).then_some(())
        })
        .await;
    }
    let tables = hookhub_store::repo::ERASED_TABLES;
    let mut kept_before = Vec::new();
    for table in tables {
        kept_before.push(rows_of(&hub, table, "tenant_id", &kept).await);
    }
    for table in
        ["subscriptions", "events", "deliveries", "attempts", "rules", "inbound_sources", "api_keys", "oauth_apps"]
    {
        assert!(rows_of(&hub, table, "tenant_id", &gone).await > 0, "{table} has rows to erase");
    }

    let (status, job) = call(&hub, &key, None, Method::DELETE, "/v1/tenants/gone", None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let job_id = job["id"].as_str().unwrap().to_owned();
    let done = common::eventually(Duration::from_secs(30), || async {
        let (_, job) = call(&hub, &key, None, Method::GET, &format!("/v1/erasures/{job_id}"), None).await;
        (job["status"] == "done").then_some(job)
    })
    .await;
    assert!(done["rows_erased"].as_i64().unwrap() > 100, "{done}");
    for table in tables.iter().chain(&["rate_counters"]) {
        assert_eq!(rows_of(&hub, table, "tenant_id", &gone).await, 0, "{table} still holds the tenant's rows");
    }
    assert_eq!(rows_of(&hub, "tenants", "id", &gone).await, 0);
    for (table, before) in tables.iter().zip(kept_before) {
        assert_eq!(rows_of(&hub, table, "tenant_id", &kept).await, before, "{table} of the other tenant is untouched");
    }
    assert!(rows_of(&hub, "audit_log", "tenant_id", &gone).await > 0, "the audit log is kept");
    let (status, _) = call(&hub, &key, None, Method::GET, "/v1/tenants/gone", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(&hub, &key, Some("gone"), Method::GET, "/v1/events", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let told = receiver.wait_for("/platform", 1).await;
    assert_eq!(told[0].json()["data"]["tenant_id"], gone.as_str());
    verify_with_reference(platform_hook["secret"].as_str().unwrap(), &told);
    hub.stop().await;
}
