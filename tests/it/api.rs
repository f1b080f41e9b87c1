//! The HTTP API's contract: subscriptions, pagination, tenant isolation,
//! and clear 4xx errors (never a 5xx) for bad input.
use crate::common;

use common::{Backend, TestHub};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn subscriptions_can_be_created_read_updated_and_deleted() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let created = hub.subscribe("https://crm.example.com/hooks", &["client.created", "client.updated"]).await;
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("sub_"));
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(created["status"], "active");
    assert!(created["rate_limit_per_second"].is_null());

    // Everything a create may set is kept: a paused, rate-limited endpoint.
    let paused = json!({"url": "https://crm.example.com/slow", "event_types": ["*"], "status": "disabled",
        "rate_limit_per_second": 5});
    let (status, paused) = hub.post("/v1/subscriptions", paused).await;
    assert_eq!(status, StatusCode::CREATED, "{paused}");
    assert_eq!((&paused["status"], &paused["rate_limit_per_second"]), (&json!("disabled"), &json!(5)));
    assert_eq!(paused["disabled_reason"], "disabled by owner");

    let (status, got) = hub.get(&format!("/v1/subscriptions/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["event_types"], json!(["client.created", "client.updated"]));
    assert!(got.get("secret").is_none(), "the secret is not part of the resource");
    let (_, secret) = hub.get(&format!("/v1/subscriptions/{id}/secret")).await;
    assert_eq!(secret["secret"], created["secret"]);

    let patch = json!({"event_types": ["*"], "description": "everything to the CRM"});
    let (status, updated) = hub.call(hub.request(Method::PATCH, &format!("/v1/subscriptions/{id}")).json(&patch)).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["event_types"], json!(["*"]));
    assert_eq!(updated["description"], "everything to the CRM");
    assert_eq!(updated["url"], "https://crm.example.com/hooks");

    let (status, _) = hub.call(hub.request(Method::DELETE, &format!("/v1/subscriptions/{id}"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = hub.get(&format!("/v1/subscriptions/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "not_found");
    hub.stop().await;
}

async fn collect_pages(hub: &TestHub, path: &str, limit: u32) -> (Vec<String>, usize) {
    let (mut ids, mut pages, mut cursor) = (Vec::new(), 0, None::<String>);
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}?limit={limit}&cursor={c}"),
            None => format!("{path}?limit={limit}"),
        };
        let (status, body) = hub.get(&url).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        pages += 1;
        ids.extend(body["data"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_owned()));
        match body["pagination"]["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return (ids, pages),
        }
    }
}

fn ids_of(page: &Value) -> Vec<String> {
    page["data"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_owned()).collect()
}

async fn pagination_walks_every_item_once(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let mut created = Vec::new();
    for i in 0..7 {
        let sub = hub.subscribe(&format!("https://example.com/{i}"), &["*"]).await;
        created.push(sub["id"].as_str().unwrap().to_owned());
    }
    let (ids, pages) = collect_pages(&hub, "/v1/subscriptions", 3).await;
    assert_eq!(pages, 3);
    created.reverse();
    assert_eq!(ids, created, "newest first, each once");

    // Inserts between pages do not shift what the cursor points at.
    let (_, first) = hub.get("/v1/subscriptions?limit=3").await;
    assert!(first["pagination"]["prev_cursor"].is_null(), "the first page has nothing before it");
    let late = hub.subscribe("https://example.com/late", &["*"]).await;
    let cursor = first["pagination"]["next_cursor"].as_str().unwrap();
    let (_, second) = hub.get(&format!("/v1/subscriptions?limit=3&cursor={cursor}")).await;
    assert_eq!(ids_of(&second), created[3..6]);

    // Paging back: the three items just newer than the second page, then
    // what was inserted meanwhile, then nothing more.
    let back = second["pagination"]["prev_cursor"].as_str().unwrap();
    let (_, back) = hub.get(&format!("/v1/subscriptions?limit=3&cursor={back}")).await;
    assert_eq!(ids_of(&back), created[0..3]);
    let forward = back["pagination"]["next_cursor"].as_str().unwrap();
    let (_, again) = hub.get(&format!("/v1/subscriptions?limit=3&cursor={forward}")).await;
    assert_eq!(ids_of(&again), created[3..6], "and forward again to the same page");
    let newest = back["pagination"]["prev_cursor"].as_str().expect("the late insert is newer still");
    let (_, newest) = hub.get(&format!("/v1/subscriptions?limit=3&cursor={newest}")).await;
    assert_eq!(ids_of(&newest), [late["id"].as_str().unwrap()]);
    assert!(newest["pagination"]["prev_cursor"].is_null());
    hub.stop().await;
}

#[tokio::test]
async fn pagination_on_sqlite() {
    pagination_walks_every_item_once(Backend::Sqlite).await;
}

#[tokio::test]
async fn pagination_on_postgres() {
    pagination_walks_every_item_once(Backend::Postgres).await;
}

#[tokio::test]
async fn another_tenants_ids_are_not_found_on_sqlite() {
    another_tenants_ids_are_not_found(Backend::Sqlite).await;
}

#[tokio::test]
async fn another_tenants_ids_are_not_found_on_postgres() {
    another_tenants_ids_are_not_found(Backend::Postgres).await;
}

async fn another_tenants_ids_are_not_found(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let mine = hub.subscribe("https://example.com/mine", &["*"]).await;
    let event = hub.send_event("client.created", json!({"id": 1})).await;
    let id_of = |v: Value| v["id"].as_str().unwrap().to_owned();
    let rule = id_of(hub.post("/v1/rules", json!({"on": "a.b", "emit": "c.d"})).await.1);
    let source = id_of(hub.post("/v1/inbound-sources", json!({"source": "generic"})).await.1);
    let key = id_of(hub.post("/v1/api-keys", json!({"name": "k"})).await.1);
    let app = id_of(hub.post("/v1/oauth-apps", json!({"name": "a"})).await.1);
    hub.post("/v1/event-types", json!({"name": "class.full"})).await;
    let other = hub.new_tenant().await;
    let as_other = |method: Method, path: &str| {
        reqwest::Client::new().request(method, format!("{}{path}", hub.base)).bearer_auth(&other)
    };
    let sub = mine["id"].as_str().unwrap();
    let cases = [
        (Method::GET, "/v1/subscriptions/{id}", sub),
        (Method::GET, "/v1/subscriptions/{id}/secret", sub),
        (Method::GET, "/v1/subscriptions/{id}/attempts", sub),
        (Method::GET, "/v1/subscriptions/{id}/blocked-keys", sub),
        (Method::POST, "/v1/subscriptions/{id}/blocked-keys/{key}/skip", sub),
        (Method::PATCH, "/v1/subscriptions/{id}", sub),
        (Method::DELETE, "/v1/subscriptions/{id}", sub),
        (Method::GET, "/v1/events/{id}", &event),
        (Method::GET, "/v1/events/{id}/attempts", &event),
        (Method::POST, "/v1/events/{id}/redeliver", &event),
        (Method::POST, "/v1/subscriptions/{id}/secret/rotate", sub),
        (Method::POST, "/v1/subscriptions/{id}/enable", sub),
        (Method::POST, "/v1/subscriptions/{id}/recover", sub),
        (Method::POST, "/v1/subscriptions/{id}/transform/test", sub),
        (Method::POST, "/v1/subscriptions/{id}/test", sub),
        (Method::DELETE, "/v1/hooks/{id}", sub),
        (Method::GET, "/v1/listen/{id}/stream", sub),
        (Method::DELETE, "/v1/rules/{id}", &rule),
        (Method::DELETE, "/v1/inbound-sources/{id}", &source),
        (Method::DELETE, "/v1/api-keys/{id}", &key),
        (Method::DELETE, "/v1/oauth-apps/{id}", &app),
        (Method::PATCH, "/v1/event-types/{name}", "class.full"),
    ];
    for (method, template, id) in &cases {
        let path = template.replace("{id}", id).replace("{name}", id).replace("{key}", "apt_1");
        let req = as_other(method.clone(), &path).query(&[("since", "2000-01-01T00:00:00Z")]);
        // A body valid for the operation, so that only the id can be wrong.
        let body = match *template {
            t if t.contains("{name}") => json!({"validate": false}),
            "/v1/subscriptions/{id}/test" => json!({"event_type": "client.created"}),
            _ => json!({}),
        };
        let (status, body) = hub.call(req.json(&body)).await;
        // Unsubscribing a REST hook is idempotent: 204 whether or not the
        // caller has such a hook, so it tells nothing (and deletes nothing: see the end).
        let expected = if *template == "/v1/hooks/{id}" { StatusCode::NO_CONTENT } else { StatusCode::NOT_FOUND };
        assert_eq!(status, expected, "{method} {path}: {body}");
    }
    // A platform's tenants and erasure jobs, probed with another platform's key.
    let store = hub.hub().store();
    let platform_key = |key: hookhub_store::domain::ApiKey| key.expose().to_owned();
    let mine_platform = platform_key(store.create_platform("mine").await.unwrap().1);
    let other_platform = platform_key(store.create_platform("other").await.unwrap().1);
    let as_platform = |key: &str, method: Method, path: &str| {
        reqwest::Client::new().request(method, format!("{}{path}", hub.base)).bearer_auth(key)
    };
    let mut tenant_ids = Vec::new();
    for name in ["kept", "erased"] {
        let create = as_platform(&mine_platform, Method::POST, "/v1/tenants").json(&json!({"name": name}));
        tenant_ids.push(id_of(hub.call(create).await.1));
    }
    let erasure =
        id_of(hub.call(as_platform(&mine_platform, Method::DELETE, &format!("/v1/tenants/{}", tenant_ids[1]))).await.1);
    let platform_cases = [
        (Method::GET, "/v1/tenants/{id}", tenant_ids[0].as_str()),
        (Method::PATCH, "/v1/tenants/{id}", &tenant_ids[0]),
        (Method::DELETE, "/v1/tenants/{id}", &tenant_ids[0]),
        (Method::POST, "/v1/tenants/{id}/suspend", &tenant_ids[0]),
        (Method::POST, "/v1/tenants/{id}/resume", &tenant_ids[0]),
        (Method::GET, "/v1/erasures/{id}", &erasure),
    ];
    for (method, template, id) in &platform_cases {
        let path = template.replace("{id}", id);
        let (status, body) = hub.call(as_platform(&other_platform, method.clone(), &path).json(&json!({}))).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
    }
    let (_, mine_tenant) =
        hub.call(as_platform(&mine_platform, Method::GET, &format!("/v1/tenants/{}", tenant_ids[0]))).await;
    assert_eq!(mine_tenant["status"], "active", "another platform changed nothing: {mine_tenant}");
    // Every operation that takes an id is in the list above: the document says which.
    let doc: Value = serde_json::from_str(include_str!("../../docs/openapi.json")).unwrap();
    for (template, item) in doc["paths"].as_object().unwrap() {
        let takes_id = template.contains("{id}") || template.contains("{name}");
        for method in item.as_object().unwrap().keys().filter(|_| takes_id) {
            let tested = cases
                .iter()
                .chain(&platform_cases)
                .any(|(m, t, _)| t == template && m.as_str().eq_ignore_ascii_case(method));
            assert!(tested, "{method} {template} takes an id but is not in the isolation suite");
        }
    }
    let (_, subs) = hub.call(as_other(Method::GET, "/v1/subscriptions")).await;
    assert_eq!(subs["data"], json!([]));
    let (_, events) = hub.call(as_other(Method::GET, "/v1/events")).await;
    assert_eq!(events["data"], json!([]));
    // Lists hold only the caller's own (the other tenant has its initial key only).
    for path in ["/v1/rules", "/v1/inbound-sources", "/v1/oauth-apps"] {
        let (_, list) = hub.call(as_other(Method::GET, path)).await;
        assert!(!list.to_string().contains(hub.key.as_str()) && !list.to_string().contains(&rule), "{path}: {list}");
        assert!(
            list["data"].as_array().unwrap().iter().all(|r| r["id"] != json!(source) && r["id"] != json!(app)),
            "{path}"
        );
    }
    // Its audit log holds its own calls only (by its own key).
    let (_, audit) = hub.call(as_other(Method::GET, "/v1/audit-log")).await;
    let (_, own_keys) = hub.call(as_other(Method::GET, "/v1/api-keys")).await;
    let own_key = own_keys["data"][0]["id"].clone();
    assert!(audit["data"].as_array().unwrap().iter().all(|r| r["credential"] == own_key), "{audit}");
    let (_, keys) = hub.call(as_other(Method::GET, "/v1/api-keys")).await;
    assert_eq!(keys["data"].as_array().unwrap().len(), 1, "{keys}");
    let (_, types) = hub.call(as_other(Method::GET, "/v1/event-types")).await;
    assert!(!types.to_string().contains("class.full"));
    let (_, samples) = hub.call(as_other(Method::GET, "/v1/hooks/samples?event=client.created")).await;
    assert_eq!(samples[0]["id"], "evt_sample_client_created", "the other tenant's events are not its samples");
    // And the owner still has everything.
    assert_eq!(hub.get(&format!("/v1/subscriptions/{sub}")).await.0, StatusCode::OK);
    hub.stop().await;
}

/// One bad request and what must come back.
struct Case {
    name: &'static str,
    request: reqwest::RequestBuilder,
    status: StatusCode,
    code: &'static str,
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx_and_never_a_5xx() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let raw = |path: &str| reqwest::Client::new().post(format!("{}{path}", hub.base));
    let events = |body: &str| {
        hub.request(Method::POST, "/v1/events").header("content-type", "application/json").body(body.to_owned())
    };
    let huge = json!({"type": "client.created", "data": {"blob": "x".repeat(300 * 1024)}}).to_string();
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let cases = vec![
        Case {
            name: "no key",
            request: raw("/v1/events").json(&json!({})),
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
        },
        Case {
            name: "wrong key",
            request: raw("/v1/events").bearer_auth("hh_live_nope").json(&json!({})),
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
        },
        Case {
            name: "not our key format",
            request: raw("/v1/events").header("x-api-key", "sk_test_123").json(&json!({})),
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
        },
        Case {
            name: "malformed JSON",
            request: events("{\"type\": "),
            status: StatusCode::BAD_REQUEST,
            code: "invalid_json",
        },
        Case {
            name: "not JSON at all",
            request: events("type=client.created"),
            status: StatusCode::BAD_REQUEST,
            code: "invalid_json",
        },
        Case {
            name: "deeply nested JSON",
            request: events(&deep),
            status: StatusCode::BAD_REQUEST,
            code: "invalid_json",
        },
        Case {
            name: "missing type",
            request: events(r#"{"data": {}}"#),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "validation_failed",
        },
        Case {
            name: "type without a dot",
            request: events(r#"{"type": "booked", "data": {}}"#),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "validation_failed",
        },
        Case {
            name: "unicode type",
            request: events(r#"{"type": "rendez-vous.réservé", "data": {}}"#),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "validation_failed",
        },
        Case {
            name: "type is a number",
            request: events(r#"{"type": 7, "data": {}}"#),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "validation_failed",
        },
        Case {
            name: "data not an object",
            request: events(r#"{"type": "client.created", "data": [1]}"#),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "validation_failed",
        },
        Case {
            name: "unknown field",
            request: events(r#"{"type": "client.created", "data": {}, "tenant": "x"}"#),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "validation_failed",
        },
        Case {
            name: "body is an array",
            request: events("[]"),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "validation_failed",
        },
        Case {
            name: "empty idempotency key",
            request: events(r#"{"type": "client.created", "data": {}, "idempotency_key": ""}"#),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "validation_failed",
        },
        Case {
            name: "huge body",
            request: events(&huge),
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "payload_too_large",
        },
        Case {
            name: "wrong content type",
            request: hub.request(Method::POST, "/v1/events").header("content-type", "text/plain").body("{}"),
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: "unsupported_media_type",
        },
        Case {
            name: "subscription without url",
            request: hub.request(Method::POST, "/v1/subscriptions").json(&json!({"event_types": ["*"]})),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "validation_failed",
        },
        Case {
            name: "subscription with ftp url",
            request: hub
                .request(Method::POST, "/v1/subscriptions")
                .json(&json!({"url": "ftp://x.example", "event_types": ["*"]})),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "validation_failed",
        },
        Case {
            name: "subscription with credentials in url",
            request: hub
                .request(Method::POST, "/v1/subscriptions")
                .json(&json!({"url": "https://u:p@x.example", "event_types": ["*"]})),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "validation_failed",
        },
        Case {
            name: "subscription with no types",
            request: hub
                .request(Method::POST, "/v1/subscriptions")
                .json(&json!({"url": "https://x.example", "event_types": []})),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "validation_failed",
        },
        Case {
            name: "status at creation",
            request: hub
                .request(Method::POST, "/v1/subscriptions")
                .json(&json!({"url": "https://x.example", "event_types": ["*"], "status": "paused"})),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "validation_failed",
        },
        Case {
            name: "limit zero",
            request: hub.request(Method::GET, "/v1/subscriptions?limit=0"),
            status: StatusCode::BAD_REQUEST,
            code: "invalid_limit",
        },
        Case {
            name: "absurd limit",
            request: hub.request(Method::GET, "/v1/events?limit=99999999999999999999999"),
            status: StatusCode::BAD_REQUEST,
            code: "invalid_limit",
        },
        Case {
            name: "negative limit",
            request: hub.request(Method::GET, "/v1/events?limit=-1"),
            status: StatusCode::BAD_REQUEST,
            code: "invalid_limit",
        },
        Case {
            name: "forged cursor",
            request: hub.request(Method::GET, "/v1/events?cursor=%27%3B%20DROP"),
            status: StatusCode::BAD_REQUEST,
            code: "invalid_cursor",
        },
        Case {
            name: "malformed id",
            request: hub.request(Method::GET, "/v1/events/not-an-id"),
            status: StatusCode::NOT_FOUND,
            code: "not_found",
        },
        Case {
            name: "unknown id",
            request: hub.request(Method::GET, "/v1/subscriptions/sub_00000000000000000000000000000000"),
            status: StatusCode::NOT_FOUND,
            code: "not_found",
        },
        Case {
            name: "unknown route",
            request: hub.request(Method::GET, "/v2/nothing"),
            status: StatusCode::NOT_FOUND,
            code: "not_found",
        },
        Case {
            name: "wrong method",
            request: hub.request(Method::PUT, "/v1/events"),
            status: StatusCode::METHOD_NOT_ALLOWED,
            code: "method_not_allowed",
        },
        // An optional body may be left out, but what is sent must be valid:
        // a broken `{subscription_id}` must not become "to every subscription".
        Case {
            name: "broken optional body",
            request: hub
                .request(Method::POST, "/v1/events/evt_0000/redeliver")
                .header("content-type", "application/json")
                .body("{\"subscription_id\": "),
            status: StatusCode::BAD_REQUEST,
            code: "invalid_json",
        },
        Case {
            name: "optional body of the wrong shape",
            request: hub.request(Method::POST, "/v1/events/evt_0000/redeliver").json(&json!({"subscription": "sub_1"})),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "validation_failed",
        },
        Case {
            name: "optional body that is not JSON",
            request: hub.request(Method::POST, "/v1/listen").header("content-type", "text/plain").body("*"),
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: "unsupported_media_type",
        },
    ];
    for case in cases {
        let resp = case.request.send().await.unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or_else(|e| panic!("{}: body is not JSON: {e}", case.name));
        assert_eq!(status, case.status, "{}: {body}", case.name);
        assert_eq!(body["code"], case.code, "{}: {body}", case.name);
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{}: {body}", case.name);
        if status == StatusCode::UNPROCESSABLE_ENTITY {
            assert!(body["errors"].as_array().is_some_and(|e| !e.is_empty()), "{}: field details: {body}", case.name);
        }
    }
    // A 405 says what the path does allow (RFC 9110).
    let resp = hub.request(Method::PUT, "/v1/events").send().await.unwrap();
    assert_eq!(resp.headers()["allow"], "POST, GET");
    // Validation reports every bad field at once, by name.
    let (_, body) = hub.post("/v1/events", json!({"type": "nope", "data": 3})).await;
    let fields: Vec<_> = body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["type", "data"]);
    // Nothing bad was stored.
    let (_, events) = hub.get("/v1/events").await;
    assert_eq!(events["data"], json!([]));
    hub.stop().await;
}

#[tokio::test]
async fn health_and_readiness() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let get = |p: &str| reqwest::get(format!("{}{p}", hub.base));
    assert_eq!(get("/healthz").await.unwrap().status(), StatusCode::OK);
    assert_eq!(get("/readyz").await.unwrap().status(), StatusCode::OK);
    hub.stop().await;
}

#[tokio::test]
async fn https_only_when_plain_http_is_not_allowed() {
    let hub = TestHub::start_with(Backend::Sqlite, |s| s.allow_http_endpoints = Some(false)).await;
    let (status, body) =
        hub.post("/v1/subscriptions", json!({"url": "http://x.example/h", "event_types": ["*"]})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["field"], "url");
    hub.subscribe("https://x.example/h", &["*"]).await;
    hub.stop().await;
}
