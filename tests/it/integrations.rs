//! The integrations people plug in: Zapier/Make REST Hooks, the event type
//! catalogue, Stripe and generic inbound callbacks, offboarding rules, and
//! `hookhub listen`.
use crate::common;

use common::receiver::Receiver;
use common::{eventually, verify_with_reference, Backend, TestHub};
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::Sha256;
use std::time::Duration;

fn stripe_header(secret: &str, t: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn post_raw(hub: &TestHub, path: &str, body: &str, headers: &[(&str, String)]) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new().post(format!("{}{path}", hub.base)).body(body.to_owned());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    hub.call(req).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zapier_rest_hook_subscribe_receive_gone_unsubscribe() {
    let receiver = Receiver::start().await;
    let hub = TestHub::start(Backend::Postgres).await;

    let (status, hook) =
        hub.post("/v1/hooks", json!({"target_url": receiver.url("/zap"), "event": "appointment.booked"})).await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let hook_id = hook["id"].as_str().unwrap().to_owned();
    // Make says hookUrl.
    let (status, make) = hub.post("/v1/hooks", json!({"hookUrl": receiver.url("/make"), "event": "*"})).await;
    assert_eq!(status, StatusCode::CREATED, "{make}");

    let first = hub.send_event("appointment.booked", json!({"appointment_id": "apt_1", "client_id": "cl_1"})).await;
    let got = receiver.wait_for("/zap", 1).await;
    assert_eq!(got[0].header("webhook-id"), first);
    verify_with_reference(hook["secret"].as_str().unwrap(), &got);
    receiver.wait_for("/make", 1).await;

    // Make's hook is removed through the API: nothing more arrives there.
    let (status, _) =
        hub.call(hub.request(Method::DELETE, &format!("/v1/hooks/{}", make["id"].as_str().unwrap()))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Zapier answers 410 when the Zap is turned off: the hook is disabled at once.
    receiver.script("/zap", &[410]);
    let second = hub.send_event("appointment.booked", json!({"appointment_id": "apt_2", "client_id": "cl_1"})).await;
    hub.wait_delivery_status(&second, &hook_id, "failed").await;
    let (_, sub) = hub.get(&format!("/v1/subscriptions/{hook_id}")).await;
    assert_eq!(sub["status"], "disabled");

    hub.send_event("appointment.booked", json!({"appointment_id": "apt_3", "client_id": "cl_1"})).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received("/zap").len(), 2, "nothing after the 410");
    assert_eq!(receiver.received("/make").len(), 1, "nothing after the unsubscribe");

    let (status, body) = hub.post("/v1/hooks", json!({"event": "appointment.booked"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["field"], "target_url");

    // The retention job deletes hooks a 410 disabled (here at once); a
    // subscription its owner disabled stays.
    let (_, paused) = hub
        .post("/v1/subscriptions", json!({"url": receiver.url("/paused"), "event_types": ["*"], "status": "disabled"}))
        .await;
    let purged =
        hookhub_dispatcher::retention::purge_gone_subscriptions(hub.hub().store(), Duration::ZERO).await.unwrap();
    assert_eq!(purged, 1);
    assert_eq!(hub.get(&format!("/v1/subscriptions/{hook_id}")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(hub.get(&format!("/v1/subscriptions/{}", paused["id"].as_str().unwrap())).await.0, StatusCode::OK);
    // Turning the Zap off later unsubscribes a hook that is gone: still 204,
    // as is every repeat, and an id that never was.
    for id in [hook_id.as_str(), hook_id.as_str(), make["id"].as_str().unwrap(), "sub_nonsense"] {
        let (status, _) = hub.call(hub.request(Method::DELETE, &format!("/v1/hooks/{id}"))).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{id}");
    }
    hub.stop().await;
}

/// A sample is exactly what a live delivery carries, so a Zap mapped from
/// a sample finds the same fields live; for `*` and for a custom type
/// without an example too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_have_the_shape_of_live_deliveries() {
    let receiver = Receiver::start().await;
    let hub = TestHub::start(Backend::Sqlite).await;
    let (status, examples) = hub.get("/v1/hooks/samples?event=*").await;
    assert_eq!(status, StatusCode::OK, "{examples}");
    assert_eq!(examples.as_array().unwrap().len(), 3, "the first types' examples: {examples}");
    let schema = json!({"type": "object", "required": ["class_id"],
        "properties": {"class_id": {"type": "string"}, "position": {"type": "integer", "minimum": 1}}});
    let (status, created) = hub.post("/v1/event-types", json!({"name": "class.waitlisted", "schema": schema})).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (_, generated) = hub.get("/v1/hooks/samples?event=class.waitlisted").await;
    assert_eq!(generated[0]["data"], json!({"class_id": "string", "position": 1}), "generated from the schema");

    let (_, hook) = hub.post("/v1/hooks", json!({"target_url": receiver.url("/zap"), "event": "*"})).await;
    let id = hub.send_event("client.created", json!({"client_id": "cl_1", "first_name": "Laura"})).await;
    let got = receiver.wait_for("/zap", 1).await;
    let live = got[0].json();
    assert_eq!(live["id"], id.as_str(), "the body carries the event id");
    assert_eq!(got[0].header("webhook-id"), id);
    verify_with_reference(hook["secret"].as_str().unwrap(), &got);
    let (_, samples) = hub.get("/v1/hooks/samples?event=*").await;
    assert_eq!(samples[0], live, "the sample is the delivery, field for field");
    let (_, typed) = hub.get("/v1/hooks/samples?event=client.created").await;
    assert_eq!(typed[0], live);
    let fields = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    for example in examples.as_array().unwrap().iter().chain(generated.as_array().unwrap()) {
        assert_eq!(fields(example), fields(&live), "{example}");
    }
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_names_the_tenant_the_credential_and_the_plan() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let (status, me) = hub.get("/v1/me").await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert!(me["tenant_id"].as_str().unwrap().starts_with("ten_"), "{me}");
    assert!(me["tenant_name"].is_string());
    assert_eq!((me["credential_kind"].as_str(), me["scope"].as_str()), (Some("api_key"), Some("read write admin")));
    assert!(me["credential_id"].as_str().unwrap().starts_with("key_"), "{me}");

    // A read-only OAuth token, on a plan with limits.
    let tenant: hookhub_store::domain::TenantId = me["tenant_id"].as_str().unwrap().parse().unwrap();
    hub.hub().store().set_plan(&tenant, hookhub_store::domain::Plan::Pro).await.unwrap();
    let (_, app) = hub.post("/v1/oauth-apps", json!({"name": "Make", "scope": "read"})).await;
    let client_id = app["client_id"].as_str().unwrap();
    let token: Value = reqwest::Client::new()
        .post(format!("{}/v1/oauth/token", hub.base))
        .basic_auth(client_id, app["client_secret"].as_str())
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let req =
        reqwest::Client::new().get(format!("{}/v1/me", hub.base)).bearer_auth(token["access_token"].as_str().unwrap());
    let (status, me) = hub.call(req).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(
        (me["credential_kind"].as_str(), me["credential_id"].as_str()),
        (Some("oauth_access_token"), Some(client_id))
    );
    assert_eq!((me["scope"].as_str(), me["plan"].as_str()), (Some("read"), Some("pro")));
    assert_eq!(
        me["limits"],
        json!([{"window_seconds": 900, "requests": 200}, {"window_seconds": 86400, "requests": 15000}])
    );

    let (status, _) = hub.call(reqwest::Client::new().get(format!("{}/v1/me", hub.base))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    hub.stop().await;
}

/// Fills in Make's `{{a.b}}` template variables from `vars`: a string that
/// is one variable becomes its JSON value, others get the text spliced in.
fn make_template(template: &Value, vars: &Value) -> Value {
    let lookup = |path: &str| path.trim().split('.').fold(vars, |v, key| &v[key]).clone();
    match template {
        Value::String(s) => {
            if let Some(path) = s.strip_prefix("{{").and_then(|r| r.strip_suffix("}}")).filter(|p| !p.contains("{{")) {
                return lookup(path);
            }
            let mut out = String::new();
            let mut rest = s.as_str();
            while let Some((before, after)) = rest.split_once("{{") {
                let (path, tail) = after.split_once("}}").expect("a closed template variable");
                let value = lookup(path);
                out.push_str(before);
                out.push_str(value.as_str().map_or_else(|| value.to_string(), str::to_owned).as_str());
                rest = tail;
            }
            Value::String(out + rest)
        }
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), make_template(v, vars))).collect(),
        Value::Array(items) => items.iter().map(|v| make_template(v, vars)).collect(),
        other => other.clone(),
    }
}

/// Sends one request of the Make app (a `url`, `method`, `headers`, `body`,
/// `qs` block), as Make would with the base's URL and headers.
async fn make_request(hub: &TestHub, base: &Value, call: &Value) -> (StatusCode, Value) {
    let url = call["url"].as_str().unwrap();
    let url = if url.starts_with('/') { format!("{}{url}", base["baseUrl"].as_str().unwrap()) } else { url.to_owned() };
    let method: Method = call["method"].as_str().unwrap_or("GET").parse().unwrap();
    let mut req = reqwest::Client::new().request(method, url);
    for headers in [&base["headers"], &call["headers"]] {
        for (name, value) in headers.as_object().into_iter().flatten() {
            req = req.header(name.as_str(), value.as_str().unwrap());
        }
    }
    if let Some(qs) = call["qs"].as_object() {
        req = req.query(qs);
    }
    if call["body"].is_object() {
        req = req.json(&call["body"]);
    }
    hub.call(req).await
}

/// docs/integrations/make-app.json, replayed as Make runs it: the
/// connection test, `attach` when a scenario is turned on, a delivery to
/// the scenario's webhook, `detach` when it is turned off (twice: Make
/// retries, and the hook may be gone already).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_instant_trigger_attach_and_detach_as_recipe_says() {
    let make = Receiver::start().await;
    let hub = TestHub::start(Backend::Sqlite).await;
    let app: Value = serde_json::from_str(include_str!("../../docs/integrations/make-app.json")).unwrap();
    let connection = json!({"hubUrl": hub.base, "apiKey": hub.key});
    let mut vars = json!({"parameters": connection, "connection": connection});

    let (status, me) = make_request(&hub, &json!({}), &make_template(&app["connection"]["communication"], &vars)).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    let label =
        make_template(&app["connection"]["communication"]["response"]["metadata"]["value"], &json!({"body": me}));
    assert_eq!(label, me["tenant_name"]);

    let base = make_template(&app["base"], &vars);
    vars["parameters"] = json!({"event": "appointment.booked"});
    vars["webhook"] = json!({"url": make.url("/make")});
    let (status, attached) = make_request(&hub, &base, &make_template(&app["webhook"]["attach"], &vars)).await;
    assert_eq!(status, StatusCode::CREATED, "{attached}");
    let kept = make_template(&app["webhook"]["attach"]["response"]["data"], &json!({"body": attached}));
    assert!(kept["externalHookId"].as_str().unwrap().starts_with("sub_"), "{kept}");

    let id = hub.send_event("appointment.booked", json!({"appointment_id": "apt_1", "client_id": "cl_1"})).await;
    let got = make.wait_for("/make", 1).await;
    let output = make_template(&app["module"]["communication"]["output"], &json!({"body": got[0].json()}));
    assert_eq!(output["id"], id.as_str());
    verify_with_reference(kept["secret"].as_str().unwrap(), &got);
    let (status, samples) = make_request(&hub, &base, &make_template(&app["module"]["samples"], &vars)).await;
    assert_eq!((status, &samples[0]), (StatusCode::OK, &output));

    vars["webhook"]["externalHookId"] = kept["externalHookId"].clone();
    for _ in 0..2 {
        let (status, body) = make_request(&hub, &base, &make_template(&app["webhook"]["detach"], &vars)).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }
    let (_, subs) = hub.get("/v1/subscriptions").await;
    assert_eq!(subs["data"], json!([]));
    hub.stop().await;
}

/// Runs a Node script (a path from the repository root) with the packages
/// .ci/run installs into target/ci-node, and returns its standard output.
async fn node(script: &str, args: &[&str], env: &[(&str, &str)], stdin: &str) -> String {
    use tokio::io::AsyncWriteExt;
    let root = env!("CARGO_MANIFEST_DIR");
    let mut child = tokio::process::Command::new("node")
        .arg(format!("{root}/{script}"))
        .args(args)
        .env("NODE_PATH", format!("{root}/target/ci-node/node_modules"))
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("node is installed");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let out = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{script} {args:?} failed (.ci/run installs its packages into target/ci-node): {stderr}"
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs one operation of docs/integrations/zapier with zapier-platform-core's
/// app tester and returns its result.
async fn zapier(hub: &TestHub, args: &[&str], stdin: Option<&Value>) -> Value {
    let env = [("HOOKHUB_URL", hub.base.as_str()), ("HOOKHUB_API_KEY", hub.key.as_str())];
    let input = stdin.map(Value::to_string).unwrap_or_default();
    let stdout = node("docs/integrations/zapier/harness.js", args, &env, &input).await;
    // The result is the last line; the app tester may log before it.
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zapier_app_runs_in_zapiers_app_tester() {
    let receiver = Receiver::start().await;
    let hub = TestHub::start(Backend::Sqlite).await;
    let me = zapier(&hub, &["test"], None).await;
    assert!(me["tenant_name"].is_string(), "the connection test: {me}");

    let target = receiver.url("/zap");
    let hook = zapier(&hub, &["subscribe", "appointment.booked", &target], None).await;
    assert_eq!(hook["target_url"], target.as_str());
    let id = hub.send_event("appointment.booked", json!({"appointment_id": "apt_1", "client_id": "cl_1"})).await;
    let got = receiver.wait_for("/zap", 1).await;
    verify_with_reference(hook["secret"].as_str().unwrap(), &got);
    let performed = zapier(&hub, &["perform"], Some(&got[0].json())).await;
    assert_eq!(performed[0]["id"], id.as_str(), "Zapier deduplicates on `id`: {performed}");
    let listed = zapier(&hub, &["list", "appointment.booked"], None).await;
    assert_eq!(listed[0], performed[0], "performList gives what perform gives");

    let hook_id = hook["id"].as_str().unwrap();
    for _ in 0..2 {
        assert_eq!(zapier(&hub, &["unsubscribe", hook_id], None).await, json!({}));
    }
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_show_the_example_then_real_events_newest_first() {
    let hub = TestHub::start(Backend::Postgres).await;
    let (status, samples) = hub.get("/v1/hooks/samples?event=appointment.booked").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(samples.as_array().unwrap().len(), 1);
    assert_eq!(samples[0]["id"], "evt_sample_appointment_booked");
    assert_eq!(samples[0]["type"], "appointment.booked");
    assert!(samples[0]["data"]["appointment_id"].is_string());

    let older = hub.send_event("appointment.booked", json!({"appointment_id": "a1", "client_id": "c"})).await;
    let newer = hub.send_event("appointment.booked", json!({"appointment_id": "a2", "client_id": "c"})).await;
    hub.send_event("client.created", json!({"client_id": "c"})).await;
    let (_, samples) = hub.get("/v1/hooks/samples?event=appointment.booked").await;
    let ids: Vec<_> = samples.as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [newer.as_str(), older.as_str()]);
    assert_eq!(samples[0]["data"]["appointment_id"], "a2");

    assert_eq!(hub.get("/v1/hooks/samples?event=made.up").await.0, StatusCode::NOT_FOUND);
    assert_eq!(hub.get("/v1/hooks/samples?event=Nope").await.0, StatusCode::BAD_REQUEST);
    assert_eq!(hub.get("/v1/hooks/samples").await.0, StatusCode::BAD_REQUEST);
    hub.stop().await;
}

// The ingest transaction reads schemas and rules in its own way per store.
crate::on_both_backends!(
    event_type_catalogue_custom_types_and_schema_validation,
    cancelled_subscription_archives_the_client_exactly_once,
    idempotency_keys_are_stored_as_digests_in_one_namespace_per_sender,
    keys_stored_in_clear_before_the_upgrade_still_replay
);

async fn event_type_catalogue_custom_types_and_schema_validation(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let (status, catalogue) = hub.get("/v1/event-types").await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<_> = catalogue["data"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    for expected in [
        "client.created",
        "client.updated",
        "client.archived",
        "appointment.booked",
        "appointment.rescheduled",
        "appointment.cancelled",
        "payment.received",
        "payment.failed",
        "subscription.cancelled",
        "consent.signed",
        "program.assigned",
    ] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
    assert!(catalogue["data"].as_array().unwrap().iter().all(|t| t["schema"].is_object() && t["example"].is_object()));

    // A custom type with a schema, validated.
    let schema = json!({"type": "object", "required": ["class_id"], "properties": {"class_id": {"type": "string"}, "spots": {"type": "integer"}}});
    let (status, created) = hub
        .post(
            "/v1/event-types",
            json!({"name": "class.full", "description": "A class is fully booked", "schema": schema, "example": {"class_id": "yoga-7am"}, "validate": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["builtin"], false);
    let (status, body) = hub.post("/v1/events", json!({"type": "class.full", "data": {"spots": "many"}})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let fields: Vec<_> = body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert!(fields.contains(&"data/spots") && fields.contains(&"data"), "{fields:?}");
    hub.send_event("class.full", json!({"class_id": "yoga-7am", "spots": 0})).await;

    // Validation of a built-in type is the tenant's choice.
    hub.send_event("appointment.booked", json!({"anything": true})).await;
    let (status, _) = hub
        .call(hub.request(Method::PATCH, "/v1/event-types/appointment.booked").json(&json!({"validate": true})))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = hub.post("/v1/events", json!({"type": "appointment.booked", "data": {"anything": true}})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    hub.send_event(
        "appointment.booked",
        json!({"appointment_id": "a", "client_id": "c", "starts_at": "2026-12-01T09:00:00Z"}),
    )
    .await;

    let (status, _) = hub.post("/v1/event-types", json!({"name": "client.created"})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = hub.post("/v1/event-types", json!({"name": "class.full"})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, body) = hub.post("/v1/event-types", json!({"name": "class.empty", "schema": {"type": 12}})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["field"], "schema");
    let (status, _) = hub.post("/v1/event-types", json!({"name": "class.empty", "validate": true})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) =
        hub.call(hub.request(Method::PATCH, "/v1/event-types/no.such").json(&json!({"validate": true}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_callbacks_are_verified_before_anything_is_recorded() {
    let hub = TestHub::start(Backend::Postgres).await;
    let (status, source) =
        hub.post("/v1/inbound-sources", json!({"source": "stripe", "signing_secret": "whsec_stripe_test"})).await;
    assert_eq!(status, StatusCode::CREATED, "{source}");
    let path = source["url_path"].as_str().unwrap().to_owned();
    assert!(path.starts_with("/v1/inbound/stripe/"));
    let body = json!({"id": "evt_1Pay", "type": "invoice.payment_succeeded",
        "data": {"object": {"id": "in_1", "customer": "cus_7", "amount_paid": 6500, "currency": "eur"}}})
    .to_string();

    let tampered = body.replace("6500", "1");
    for (name, body, header, code) in [
        ("tampered body", tampered.as_str(), stripe_header("whsec_stripe_test", now(), &body), "invalid_signature"),
        ("wrong secret", body.as_str(), stripe_header("whsec_other", now(), &body), "invalid_signature"),
        ("stale", body.as_str(), stripe_header("whsec_stripe_test", now() - 301, &body), "timestamp_out_of_tolerance"),
        ("garbage header", body.as_str(), "v1=zz".to_owned(), "missing_signature"),
    ] {
        let (status, resp) = post_raw(&hub, &path, body, &[("stripe-signature", header)]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {resp}");
        assert_eq!(resp["code"], code, "{name}");
    }
    let (status, _) = post_raw(&hub, &path, &body, &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, events) = hub.get("/v1/events").await;
    assert_eq!(events["data"], json!([]), "a refused callback records nothing");

    let signed = [("stripe-signature", stripe_header("whsec_stripe_test", now(), &body))];
    let (status, first) = post_raw(&hub, &path, &body, &signed).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["type"], "payment.received");
    assert_eq!(first["replayed"], false);
    // Stripe retries: same event, no second one.
    let (_, again) = post_raw(&hub, &path, &body, &signed).await;
    assert_eq!(again["event_id"], first["event_id"]);
    assert_eq!(again["replayed"], true);
    let (_, event) = hub.get(&format!("/v1/events/{}", first["event_id"].as_str().unwrap())).await;
    assert_eq!(event["data"]["amount"], 6500);
    assert_eq!(event["data"]["client_id"], "cus_7");
    assert!(event.get("idempotency_key").is_none(), "keys are kept only as digests: {event}");

    let other = json!({"id": "evt_x", "type": "customer.created", "data": {"object": {}}}).to_string();
    let signed = [("stripe-signature", stripe_header("whsec_stripe_test", now(), &other))];
    let (status, ignored) = post_raw(&hub, &path, &other, &signed).await;
    assert_eq!((status, ignored["ignored"].clone()), (StatusCode::OK, json!(true)));
    let (_, events) = hub.get("/v1/events").await;
    assert_eq!(events["data"].as_array().unwrap().len(), 1);

    let (status, _) = post_raw(&hub, "/v1/inbound/stripe/not-a-token", &body, &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = hub.post("/v1/inbound-sources", json!({"source": "stripe"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = hub.post("/v1/inbound-sources", json!({"source": "paypal", "signing_secret": "x"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    hub.stop().await;
}

/// Stripe sends `invoice.paid` and `invoice.payment_succeeded` for one
/// invoice: one `payment.received`. Built from the `invoice` object of
/// Stripe's published fixtures (stripe/openapi `fixtures3.json` at commit
/// f6c2a48, an API version after 2025-03-31.basil), signed by Stripe's SDK.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_payment_events_count_one_payment() {
    const FIXTURES: &str =
        concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/stripe/stripe_fixture_objects.json");
    let fixtures: Value = serde_json::from_str(&std::fs::read_to_string(FIXTURES).expect(FIXTURES)).unwrap();
    let mut invoice = fixtures["invoice"].clone();
    invoice["status"] = json!("paid");
    invoice["amount_paid"] = invoice["amount_due"].clone();
    invoice["parent"]["subscription_details"]["metadata"] = json!({"client_id": "cl_8f3a2"});

    let hub = TestHub::start(Backend::Sqlite).await;
    let (_, source) = hub.post("/v1/inbound-sources", json!({"source": "stripe", "signing_secret": "whsec_s"})).await;
    let path = source["url_path"].as_str().unwrap().to_owned();
    // Signed by Stripe's official SDK (stripe-node's generateTestHeaderString).
    let post = |body: Value| {
        let (hub, path) = (&hub, &path);
        async move {
            let body = body.to_string();
            let signature = node("tests/fixtures/stripe_sign.js", &["whsec_s"], &[], &body).await;
            post_raw(hub, path, &body, &[("stripe-signature", signature)]).await
        }
    };
    let event = |id: &str, kind: &str| {
        json!({"id": id, "object": "event", "api_version": "2025-03-31.basil", "type": kind,
            "data": {"object": invoice.clone()}})
    };
    let (status, paid) = post(event("evt_1Paid", "invoice.paid")).await;
    assert_eq!((status, paid["replayed"].as_bool()), (StatusCode::OK, Some(false)), "{paid}");
    let (status, succeeded) = post(event("evt_1Succeeded", "invoice.payment_succeeded")).await;
    assert_eq!(status, StatusCode::OK, "{succeeded}");
    assert_eq!((&succeeded["event_id"], succeeded["replayed"].as_bool()), (&paid["event_id"], Some(true)));
    let (_, payment) = hub.get(&format!("/v1/events/{}", paid["event_id"].as_str().unwrap())).await;
    assert_eq!(payment["data"]["client_id"], "cl_8f3a2");
    assert_eq!(payment["data"]["amount"], 1000);

    // A thin (API v2) event is acknowledged, not refused, or Stripe retries it forever.
    let thin = json!({"id": "evt_test_65R9", "object": "v2.core.event", "type": "v1.billing.meter.error_report_triggered",
        "created": "2026-11-30T10:00:00.000Z", "related_object": {"id": "mtr_1", "type": "billing.meter"}});
    let (status, ignored) = post(thin).await;
    assert_eq!((status, ignored["ignored"].as_bool()), (StatusCode::OK, Some(true)), "{ignored}");
    let (_, events) = hub.get("/v1/events").await;
    assert_eq!(events["data"].as_array().unwrap().len(), 1, "one payment, one event");
    hub.stop().await;
}

/// Each sender has its own idempotency namespace, and no key is stored in
/// clear: an API event keyed `stripe:evt_X` neither blocks nor answers for
/// Stripe's callback for `evt_X`.
async fn idempotency_keys_are_stored_as_digests_in_one_namespace_per_sender(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let (_, source) =
        hub.post("/v1/inbound-sources", json!({"source": "stripe", "signing_secret": "whsec_stripe_test"})).await;
    let path = source["url_path"].as_str().unwrap();
    let post_api = || async {
        let body = json!({"type": "payment.received", "data": {"amount": 1}, "idempotency_key": "stripe:evt_1Ns"});
        let resp = hub.request(Method::POST, "/v1/events").json(&body).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
        let replayed = resp.headers()["idempotent-replayed"].to_str().unwrap() == "true";
        (resp.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned(), replayed)
    };
    let (api_id, replayed) = post_api().await;
    assert!(!replayed);

    let body = json!({"id": "evt_1Ns", "type": "invoice.payment_succeeded",
        "data": {"object": {"id": "in_1", "customer": "cus_7", "amount_paid": 6500, "currency": "eur"}}})
    .to_string();
    let signed = [("stripe-signature", stripe_header("whsec_stripe_test", now(), &body))];
    let (status, first) = post_raw(&hub, path, &body, &signed).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["replayed"], false, "the API's key does not answer for Stripe's event");
    assert_ne!(first["event_id"], json!(api_id));
    let (_, again) = post_raw(&hub, path, &body, &signed).await;
    assert_eq!((again["replayed"].clone(), again["event_id"].clone()), (json!(true), first["event_id"].clone()));
    assert_eq!(post_api().await, (api_id, true), "the API's own key still replays");

    // A NUL in Stripe's event id (or in what is mapped from the event) is a 4xx, never a 500.
    for object in [json!({"customer": "cus_7"}), json!({"customer": "cus_\u{0}"})] {
        let id = if object["customer"] == "cus_7" { "evt_\u{0}" } else { "evt_2" };
        let nul = json!({"id": id, "type": "invoice.payment_succeeded", "data": {"object": object}}).to_string();
        let signed = [("stripe-signature", stripe_header("whsec_stripe_test", now(), &nul))];
        let (status, resp) = post_raw(&hub, path, &nul, &signed).await;
        assert!(status.is_client_error(), "{status} {resp}");
    }

    let store = hub.hub().store();
    let clear = "SELECT count(*) FROM events WHERE idempotency_key LIKE '%evt_1Ns%'";
    assert_eq!(common::scalar(store, clear).await, 0, "no key is stored in clear");
    let digests = "SELECT count(*) FROM events WHERE length(idempotency_key) = 64";
    assert_eq!(common::scalar(store, digests).await, 2);
    hub.stop().await;
}

/// After the upgrade that hashes stored keys, every key stored in clear
/// before it still finds its event, in its sender's namespace.
async fn keys_stored_in_clear_before_the_upgrade_still_replay(backend: Backend) {
    use hookhub_store::domain::{IdempotencyKey, InboundKind, KeyNamespace};
    use sea_orm::ConnectionTrait;
    let (settings, store, tenant) = common::test_store(backend).await;
    let source = store.create_inbound_source(&tenant.id, InboundKind::Stripe, "whsec_x".into()).await.unwrap();
    let legacy = ["order-42: paid", "stripe:evt_9", "generic:msg_1", "rule:rul_1:evt_2"];
    let mut ids = Vec::new();
    for key in legacy {
        let id = store.ingest_event(&tenant.id, common::client_created(json!({}))).await.unwrap().event.id;
        let sql = format!("UPDATE events SET idempotency_key = '{key}' WHERE id = '{id}'");
        store.db().execute(sea_orm::Statement::from_string(store.backend(), sql)).await.unwrap();
        ids.push(id);
    }
    let forget = "DELETE FROM seaql_migrations WHERE version = 'm0009_hash_idempotency_keys'";
    store.db().execute(sea_orm::Statement::from_string(store.backend(), forget)).await.unwrap();
    store.migrate().await.unwrap();

    let clear = "SELECT count(*) FROM events WHERE idempotency_key LIKE '%:%'";
    assert_eq!(common::scalar(&store, clear).await, 0, "no key left in clear");
    let inbound = KeyNamespace::Inbound(source.id.clone());
    let expected = [
        (KeyNamespace::Api, "order-42: paid"),
        (inbound, "evt_9"),
        (KeyNamespace::Api, "generic:msg_1"),
        (KeyNamespace::Rule, "rul_1:evt_2"),
    ];
    for ((namespace, key), id) in expected.into_iter().zip(ids) {
        let mut again = common::client_created(json!({}));
        again.idempotency_key = Some(IdempotencyKey::new(&tenant.id, &namespace, key));
        let outcome = store.ingest_event(&tenant.id, again).await.unwrap();
        assert_eq!((outcome.replayed, outcome.event.id), (true, id), "{key}");
    }
    common::drop_test_resources(&settings).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generic_sources_verify_standard_webhooks_signatures() {
    let hub = TestHub::start(Backend::Postgres).await;
    let (_, source) = hub.post("/v1/inbound-sources", json!({"source": "generic"})).await;
    let secret = hookhub_store::domain::SigningSecret::parse(source["signing_secret"].as_str().unwrap()).unwrap();
    let path = source["url_path"].as_str().unwrap();
    let body = json!({"type": "consent.signed", "data": {"client_id": "cl_1", "form": "intake"}}).to_string();
    let sig = hookhub_store::domain::signer::sign(&secret, "msg_abc", now(), body.as_bytes());
    let headers = [
        ("webhook-id", sig.id.clone()),
        ("webhook-timestamp", sig.timestamp.to_string()),
        ("webhook-signature", sig.signature.clone()),
    ];
    let (status, resp) = post_raw(&hub, path, &body, &headers).await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    assert_eq!(resp["type"], "consent.signed");
    let (_, again) = post_raw(&hub, path, &body, &headers).await;
    assert_eq!(again["replayed"], true);

    let (status, resp) = post_raw(&hub, path, &body.replace("intake", "other"), &headers).await;
    assert_eq!((status, resp["code"].clone()), (StatusCode::BAD_REQUEST, json!("invalid_signature")));
    let (status, resp) = post_raw(&hub, path, &body, &headers[..2]).await;
    assert_eq!((status, resp["code"].clone()), (StatusCode::BAD_REQUEST, json!("missing_signature")));
    hub.stop().await;
}

async fn cancelled_subscription_archives_the_client_exactly_once(backend: Backend) {
    let crm = Receiver::start().await;
    let hub = TestHub::start(backend).await;
    let (status, rule) =
        hub.post("/v1/rules", json!({"on": "subscription.cancelled", "emit": "client.archived"})).await;
    assert_eq!(status, StatusCode::CREATED, "{rule}");
    let crm_sub = hub.subscribe(&crm.url("/crm"), &["client.archived"]).await;
    let (_, source) =
        hub.post("/v1/inbound-sources", json!({"source": "stripe", "signing_secret": "whsec_gateway"})).await;
    let path = source["url_path"].as_str().unwrap();

    let body = json!({"id": "evt_1Cancel", "type": "customer.subscription.deleted",
        "data": {"object": {"id": "sub_77", "customer": "cus_7", "canceled_at": 1_795_000_000,
                            "metadata": {"client_id": "cl_8f3a2"}}}})
    .to_string();
    // The gateway sends the callback twice (a retry after a slow answer).
    for _ in 0..2 {
        let signed = [("stripe-signature", stripe_header("whsec_gateway", now(), &body))];
        let (status, resp) = post_raw(&hub, path, &body, &signed).await;
        assert_eq!(status, StatusCode::OK, "{resp}");
    }

    let got = crm.wait_for("/crm", 1).await;
    let delivered = got[0].json();
    assert_eq!(delivered["type"], "client.archived");
    assert_eq!(delivered["data"]["client_id"], "cl_8f3a2");
    assert_eq!(delivered["data"]["source_event"]["type"], "subscription.cancelled");
    verify_with_reference(crm_sub["secret"].as_str().unwrap(), &got);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(crm.received("/crm").len(), 1, "exactly once despite the duplicate callback");
    let (_, events) = hub.get("/v1/events").await;
    let types: Vec<_> = events["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types.len(), 2, "{types:?}");
    assert!(types.contains(&"client.archived") && types.contains(&"subscription.cancelled"));

    let (_, rules) = hub.get("/v1/rules").await;
    assert_eq!(rules["data"][0]["emit"], "client.archived");
    let (status, _) = hub.post("/v1/rules", json!({"on": "subscription.cancelled", "emit": "client.archived"})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = hub.post("/v1/rules", json!({"on": "a.b", "emit": "a.b"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let rule_id = rule["id"].as_str().unwrap();
    let (status, _) = hub.call(hub.request(Method::DELETE, &format!("/v1/rules/{rule_id}"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_forwards_signed_deliveries_to_a_local_receiver() {
    use tokio::io::AsyncBufReadExt;
    let local = Receiver::start().await;
    let hub = TestHub::start(Backend::Postgres).await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_hookhub"))
        .args(["listen", "--hub", &hub.base, "--forward-to", &local.url("/webhooks"), "--events", "appointment.booked"])
        .env("HOOKHUB_API_KEY", &hub.key)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await.unwrap().unwrap().unwrap();
    assert!(ready.starts_with("Ready!"), "{ready}");
    let secret = ready.split_whitespace().find(|w| w.starts_with("whsec_")).unwrap().to_owned();
    let (_, subs) = hub.get("/v1/subscriptions").await;
    assert_eq!(subs["data"][0]["status"], "listening");

    let booked = hub.send_event("appointment.booked", json!({"appointment_id": "apt_1", "client_id": "c"})).await;
    hub.send_event("client.created", json!({"client_id": "c"})).await;
    let got = local.wait_for("/webhooks", 1).await;
    assert_eq!(got[0].header("webhook-id"), booked);
    assert_eq!(got[0].json()["type"], "appointment.booked");
    verify_with_reference(&secret, &got);
    let printed = tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await.unwrap().unwrap().unwrap();
    assert!(printed.contains(&booked) && printed.contains("[200]"), "{printed}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(local.received("/webhooks").len(), 1, "only the types asked for");

    // About 160 KB of multi-byte text crosses many network chunks and
    // reaches the receiver intact, its signature still valid.
    let notes = "é漢😀 Laura García ✓ ".repeat(6_000);
    let data = json!({"appointment_id": "apt_2", "client_id": "c", "notes": notes});
    let large = hub.send_event("appointment.booked", data).await;
    let got = local.wait_for("/webhooks", 2).await;
    assert_eq!(got[1].header("webhook-id"), large);
    assert_eq!(got[1].json()["data"]["notes"], notes.as_str());
    verify_with_reference(&secret, &got[1..]);

    // Ctrl-C ends the session and removes its subscription.
    let pid = child.id().unwrap().to_string();
    std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{status}");
    eventually(Duration::from_secs(10), || async {
        let (_, subs) = hub.get("/v1/subscriptions").await;
        subs["data"].as_array().unwrap().is_empty().then_some(())
    })
    .await;
    hub.stop().await;
}
