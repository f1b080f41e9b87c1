//! The tenant portal (`/portal`), end to end: in a real Chromium (magic
//! link, endpoints, test events, attempts, redelivery, rotation, read-only
//! sessions, refused links, escaping, embedding) and over plain HTTP (CSRF,
//! cookie flags, headers, the audit log and the log, weight and speed with
//! 100,000 deliveries).
mod browser;
use crate::common;

use browser::Browser;
use common::receiver::Receiver;
use common::{eventually, verify_with_reference, Backend, TestHub};
use fantoccini::Locator;
use hookhub_store::domain::{PortalSecret, PortalSecretKind};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Asks the API for a magic link to the hub's tenant's portal.
async fn portal_link(hub: &TestHub, body: Value) -> String {
    let (status, link) = hub.post("/v1/portal-sessions", body).await;
    assert_eq!(status, StatusCode::CREATED, "{link}");
    assert!(link["expires_at"].is_string(), "{link}");
    link["url"].as_str().unwrap().to_owned()
}

/// A client that shows redirects instead of following them.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// Opens a magic link over HTTP: the session cookie's value and the whole `Set-Cookie`.
async fn exchange(link: &str) -> (String, String) {
    let resp = no_redirects().get(link).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()["location"], "/portal/endpoints");
    let set_cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    let value = set_cookie.split(';').next().unwrap().strip_prefix("hookhub_portal=").unwrap().to_owned();
    (value, set_cookie)
}

/// The CSRF token a session's forms carry, derived as the hub derives it.
fn csrf_of(cookie: &str) -> String {
    PortalSecret::presented(PortalSecretKind::Session, cookie).expect("a session cookie").derive("csrf")
}

/// A portal request with the session cookie.
fn portal(hub: &TestHub, method: Method, path: &str, cookie: &str) -> reqwest::RequestBuilder {
    no_redirects().request(method, format!("{}{path}", hub.base)).header("cookie", format!("hookhub_portal={cookie}"))
}

/// Waits until the page, reloaded, shows `text`.
async fn reload_until(browser: &Browser, text: &str) {
    eventually(Duration::from_secs(20), || async {
        browser.client.refresh().await.unwrap();
        browser.text().await.contains(text).then_some(())
    })
    .await;
}

/// The URL of the current page without its query.
async fn page_path(browser: &Browser) -> String {
    browser.url().await.split('?').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_adds_an_endpoint_sends_a_signed_test_event_and_rotates_its_secret() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let receiver = Receiver::start().await;
    let link = portal_link(&hub, json!({})).await;
    let browser = Browser::start(1280).await;

    browser.goto(&link).await;
    assert!(browser.url().await.ends_with("/portal/endpoints"), "the token left the address bar");
    // The keyboard's first stop skips the navigation.
    browser.client.find(Locator::Css("body")).await.unwrap().send_keys("\u{e004}").await.unwrap();
    assert_eq!(browser.eval("return document.activeElement.textContent").await, "Skip to content");
    assert!(browser.text().await.contains("No endpoints yet"));
    browser.click("Add your first endpoint").await;
    browser.fill("url", &receiver.url("/portal-hook")).await;
    browser.fill("description", "Front desk CRM").await;
    browser.click("Add endpoint").await;
    assert!(browser.text().await.contains("Endpoint added"), "{}", browser.text().await);
    let endpoint = page_path(&browser).await;

    browser.click("Send test event").await;
    let got = receiver.wait_for("/portal-hook", 1).await;
    assert_eq!(got[0].json()["type"], "client.created");
    assert_eq!(got[0].json()["data"]["first_name"], "Laura", "the catalogue's example");
    reload_until(&browser, "Attempt 1").await;

    browser.goto(&endpoint).await;
    assert!(!browser.text().await.contains("whsec_") || browser.text().await.contains("whsec_••"), "hidden");
    browser.click("Reveal").await;
    let secret = browser.client.find(Locator::Id("secret-value")).await.unwrap().text().await.unwrap();
    assert!(secret.starts_with("whsec_"));
    verify_with_reference(&secret, &got);

    browser.eval("window.confirm = () => true; return null").await;
    browser.click("Rotate secret").await;
    assert!(browser.text().await.contains("New secret made"), "{}", browser.text().await);
    let rotated = browser.client.find(Locator::Id("secret-value")).await.unwrap().text().await.unwrap();
    assert_ne!(rotated, secret);
    browser.click("Send test event").await;
    let got = receiver.wait_for("/portal-hook", 2).await;
    verify_with_reference(&rotated, &got[1..]);
    verify_with_reference(&secret, &got[1..]);

    browser.goto(&endpoint).await;
    browser.click("Disable").await;
    assert!(browser.text().await.contains("Endpoint disabled"));
    assert_eq!(hub.get("/v1/subscriptions").await.1["data"][0]["status"], "disabled");
    browser.click("Enable").await;
    assert!(browser.text().await.contains("Endpoint enabled"));
    browser.click("Edit").await;
    browser.fill("description", "Front desk CRM, bookings only").await;
    browser.client.find(Locator::Css("input[value='*']")).await.unwrap().click().await.unwrap();
    browser.client.find(Locator::Css("input[value='appointment.booked']")).await.unwrap().click().await.unwrap();
    browser.click("Save changes").await;
    let saved = eventually(Duration::from_secs(10), || async {
        let (_, saved) = hub.get("/v1/subscriptions").await;
        (saved["data"][0]["event_types"] == json!(["appointment.booked"])).then_some(saved)
    })
    .await;
    assert_eq!(saved["data"][0]["description"], "Front desk CRM, bookings only");
    assert_eq!(saved["data"][0]["status"], "active");
    browser.click_only("Delete").await;
    let asked = browser.client.get_alert_text().await.unwrap();
    assert!(asked.starts_with("Delete this endpoint?"), "{asked}");
    browser.client.accept_alert().await.unwrap();
    eventually(Duration::from_secs(10), || async { browser.text().await.contains("No endpoints yet").then_some(()) })
        .await;
    assert_eq!(hub.get("/v1/subscriptions").await.1["data"], json!([]));
    browser.close().await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_endpoint_shows_its_attempts_with_the_response_and_can_be_redelivered() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let receiver = Receiver::start().await;
    receiver.script("/failing", &[500; 10]);
    let sub = hub.subscribe(&receiver.url("/failing"), &["*"]).await;
    let sub_id = sub["id"].as_str().unwrap();
    let event = hub.send_event("appointment.booked", json!({"appointment_id": "ap_1"})).await;
    hub.wait_delivery_status(&event, sub_id, "failed").await;
    receiver.script("/failing", &[]);

    let browser = Browser::start(1280).await;
    browser.goto(&portal_link(&hub, json!({})).await).await;
    browser.goto(&format!("{}/portal/deliveries?status=failed", hub.base)).await;
    browser.client.find(Locator::LinkText("appointment.booked")).await.unwrap().click().await.unwrap();
    assert!(browser.url().await.ends_with(&format!("/portal/events/{event}")));
    browser.client.find(Locator::Css("details summary")).await.unwrap().click().await.unwrap();
    let text = browser.text().await;
    assert!(text.contains("answered 500"), "the response excerpt: {text}");
    assert!(text.contains("Failed") && text.contains("\"appointment_id\": \"ap_1\""), "{text}");

    // Recover what failed since yesterday (the endpoint answers again now).
    let before = receiver.received("/failing").len();
    browser.goto(&format!("{}/portal/endpoints/{sub_id}", hub.base)).await;
    browser.eval("document.getElementById('since').value = '2020-01-01T00:00'; return null").await;
    browser.click("Recover").await;
    assert!(browser.text().await.contains("1 failed deliveries queued again"), "{}", browser.text().await);
    receiver.wait_for("/failing", before + 1).await;
    hub.wait_delivery_status(&event, sub_id, "succeeded").await;

    // And send it once more, by hand, from one of its attempts.
    browser.goto(&format!("{}/portal/events/{event}", hub.base)).await;
    browser.click("Redeliver").await;
    assert!(browser.text().await.contains("Queued to be sent again"));
    receiver.wait_for("/failing", before + 2).await;
    reload_until(&browser, "Succeeded").await;
    browser.close().await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordered_endpoint_shows_the_key_it_is_held_up_on_and_the_key_can_be_skipped() {
    let hub = TestHub::start_with(Backend::Sqlite, |s| s.retry_schedule = "10ms".into()).await;
    let receiver = Receiver::start().await;
    receiver.script("/ordered", &[500, 500]);
    let body = json!({"url": receiver.url("/ordered"), "event_types": ["*"], "ordering": "per_key", "on_dead_letter": "block"});
    let (status, sub) = hub.post("/v1/subscriptions", body).await;
    assert_eq!(status, StatusCode::CREATED, "{sub}");
    let sub_id = sub["id"].as_str().unwrap();
    let mut events = Vec::new();
    for n in 0..2 {
        let event = json!({"type": "appointment.booked", "data": {"n": n}, "ordering_key": "apt_7"});
        let (status, accepted) = hub.post("/v1/events", event).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
        events.push(accepted["id"].as_str().unwrap().to_owned());
    }
    hub.wait_delivery_status(&events[0], sub_id, "failed").await;

    let browser = Browser::start(1280).await;
    browser.goto(&portal_link(&hub, json!({})).await).await;
    browser.goto(&format!("{}/portal/endpoints/{sub_id}", hub.base)).await;
    let text = browser.text().await;
    assert!(text.contains("Held-up ordering keys") && text.contains("apt_7"), "{text}");
    assert!(text.contains("Out of attempts") && text.contains(&events[0]), "the delivery holding it: {text}");
    assert!(receiver.received("/ordered").len() == 2, "the second event waits behind the first");
    browser.click("Skip").await;
    assert!(browser.text().await.contains("Skipped: the key's next deliveries go now"), "{}", browser.text().await);
    let arrived = receiver.wait_for("/ordered", 3).await;
    assert_eq!(arrived[2].header("webhook-id"), events[1], "the key's next event went once skipped");
    reload_until(&browser, "No key is held up").await;
    browser.close().await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_session_offers_no_change_and_the_server_refuses_one() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let sub = hub.subscribe("https://crm.example.com/hooks", &["*"]).await;
    let sub_id = sub["id"].as_str().unwrap();
    let browser = Browser::start(1280).await;
    browser.goto(&portal_link(&hub, json!({"read_only": true})).await).await;
    let text = browser.text().await;
    assert!(text.contains("Read-only") && text.contains("crm.example.com"), "{text}");
    assert!(!browser.has("Add endpoint").await);
    browser.goto(&format!("{}/portal/endpoints/{sub_id}", hub.base)).await;
    for button in ["Edit", "Disable", "Delete", "Reveal", "Rotate secret", "Send test event", "Recover"] {
        assert!(!browser.has(button).await, "{button} is offered to a read-only session");
    }
    assert!(browser.text().await.contains("Read-only sessions cannot see the secret"));
    assert!(!browser.text().await.contains(sub["secret"].as_str().unwrap()));
    browser.goto(&format!("{}/portal/endpoints/new", hub.base)).await;
    assert!(browser.text().await.contains("This session can only look"));

    // A change posted by hand, with the session's own valid CSRF token.
    let cookie = browser.client.get_named_cookie("hookhub_portal").await.unwrap();
    let csrf = csrf_of(cookie.value());
    browser.goto(&format!("{}/portal/endpoints/{sub_id}", hub.base)).await;
    let script = format!(
        "const f = document.createElement('form'); f.method = 'post'; f.action = '/portal/endpoints/{sub_id}/disable';
         const i = document.createElement('input'); i.name = 'csrf'; i.value = '{csrf}'; f.appendChild(i);
         document.body.appendChild(f); f.submit(); return null"
    );
    browser.eval(&script).await;
    eventually(Duration::from_secs(10), || async {
        browser.text().await.contains("This session can only look").then_some(())
    })
    .await;
    let (_, after) = hub.get(&format!("/v1/subscriptions/{sub_id}")).await;
    assert_eq!(after["status"], "active", "nothing changed");
    browser.close().await;
    hub.stop().await;
}

/// Moves every portal link's, or session's, end into the past.
async fn expire(hub: &TestHub, column: hookhub_store::entity::portal_session::Column) {
    use sea_orm::{EntityTrait, QueryFilter};
    let past = chrono::Utc::now() - chrono::Duration::minutes(1);
    hookhub_store::entity::portal_session::Entity::update_many()
        .col_expr(column, sea_orm::sea_query::Expr::value(past))
        .filter(sea_orm::sea_query::Expr::val(1).eq(1))
        .exec(hub.hub().store().db())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn used_and_expired_links_are_refused_and_an_ended_session_shows_nothing() {
    use hookhub_store::entity::portal_session::Column;
    let hub = TestHub::start(Backend::Sqlite).await;
    hub.subscribe("https://crm.example.com/private-hook", &["*"]).await;
    let browser = Browser::start(1280).await;
    let link = portal_link(&hub, json!({})).await;
    browser.goto(&link).await;
    assert!(browser.text().await.contains("private-hook"));
    browser.goto(&link).await;
    let text = browser.text().await;
    assert!(text.contains("This link has expired or was already used") && !text.contains("private-hook"), "{text}");

    let unopened = portal_link(&hub, json!({})).await;
    expire(&hub, Column::LinkExpiresAt).await;
    let refused = no_redirects().get(&unopened).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    browser.goto(&unopened).await;
    assert!(browser.text().await.contains("This link has expired or was already used"));

    expire(&hub, Column::SessionExpiresAt).await;
    browser.goto(&format!("{}/portal/endpoints", hub.base)).await;
    let text = browser.text().await;
    assert!(text.contains("Your portal session has ended") && !text.contains("private-hook"), "{text}");
    browser.close().await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markup_in_payloads_and_descriptions_is_shown_as_text_and_never_runs() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let attack = "<script>window.__x=1;document.title='pwned'</script><img src=x onerror=\"window.__x=2\">";
    let (status, _) = hub
        .post(
            "/v1/subscriptions",
            json!({"url": "https://crm.example.com/h", "event_types": ["*"], "description": attack}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let event = hub.send_event("client.created", json!({"client_id": "c1", "note": attack})).await;
    let browser = Browser::start(1280).await;
    browser.goto(&portal_link(&hub, json!({})).await).await;
    for page in ["/portal/endpoints".to_owned(), format!("/portal/events/{event}")] {
        browser.goto(&format!("{}{page}", hub.base)).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(browser.text().await.contains("<script>window.__x=1"), "{page} shows the markup as text");
        let ran = browser.eval("return [document.title, typeof window.__x]").await;
        assert_ne!(ran[0], "pwned", "{page}");
        assert_eq!(ran[1], "undefined", "{page}: nothing ran");
    }
    browser.close().await;
    hub.stop().await;
}

/// A platform's page on its own port, framing whatever `?src=` names.
async fn parent_page() -> (String, actix_web::dev::ServerHandle) {
    use actix_web::{web, HttpResponse};
    async fn frame(q: web::Query<std::collections::HashMap<String, String>>) -> HttpResponse {
        let src = q.get("src").cloned().unwrap_or_default();
        HttpResponse::Ok().content_type("text/html").body(format!(
            "<!doctype html><title>Platform</title><h1>Platform app</h1>\
             <iframe id=\"portal\" src=\"{src}\" width=\"1100\" height=\"700\"></iframe>"
        ))
    }
    common::serve_locally(|cfg| {
        cfg.route("/", web::get().to(frame));
    })
}

/// Whether the iframe of the current page shows the portal.
async fn framed_portal_shows(browser: &Browser) -> bool {
    tokio::time::sleep(Duration::from_millis(1500)).await;
    browser.client.clone().enter_frame(Some(0)).await.unwrap();
    let shown = browser
        .eval(
            "return document.querySelector('main#main h1') ? document.querySelector('main#main h1').textContent : null",
        )
        .await;
    browser.client.clone().enter_parent_frame().await.unwrap();
    shown == "Endpoints"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portal_works_in_an_iframe_of_an_allowed_origin_and_is_refused_by_others() {
    let (allowed, allowed_server) = parent_page().await;
    let (other, other_server) = parent_page().await;
    let ancestors = allowed.clone();
    let hub = TestHub::start_with(Backend::Sqlite, move |s| s.portal_frame_ancestors = ancestors).await;
    let browser = Browser::start(1280).await;

    browser.goto(&format!("{allowed}/?src={}", portal_link(&hub, json!({})).await)).await;
    assert!(framed_portal_shows(&browser).await, "framed by {allowed}");
    browser.goto(&format!("{other}/?src={}", portal_link(&hub, json!({})).await)).await;
    assert!(!framed_portal_shows(&browser).await, "framed by {other}");

    let page = no_redirects().get(format!("{}/portal/endpoints", hub.base)).send().await.unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains(&format!("frame-ancestors {allowed};")), "{csp}");
    assert!(page.headers().get("x-frame-options").is_none());
    browser.close().await;
    allowed_server.stop(false).await;
    other_server.stop(false).await;
    hub.stop().await;
}

async fn changes_need_the_session_csrf_token_and_read_only_sessions_are_refused(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let create = |cookie: &str, csrf: Option<&str>| {
        let mut form = vec![("url", "https://crm.example.com/portal".to_owned()), ("event_types", "*".to_owned())];
        if let Some(csrf) = csrf {
            form.push(("csrf", csrf.to_owned()));
        }
        portal(&hub, Method::POST, "/portal/endpoints", cookie).form(&form)
    };
    let (cookie, _) = exchange(&portal_link(&hub, json!({})).await).await;
    let refused = create(&cookie, None).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(refused.text().await.unwrap().contains("This form is no longer valid"));
    let (other, _) = exchange(&portal_link(&hub, json!({})).await).await;
    assert_eq!(create(&cookie, Some(&csrf_of(&other))).send().await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(hub.get("/v1/subscriptions").await.1["data"], json!([]), "nothing was created");

    let (read_only, _) = exchange(&portal_link(&hub, json!({"read_only": true})).await).await;
    let refused = create(&read_only, Some(&csrf_of(&read_only))).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(hub.get("/v1/subscriptions").await.1["data"], json!([]), "nothing was created");

    let created = create(&cookie, Some(&csrf_of(&cookie))).send().await.unwrap();
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    assert!(created.headers()["location"].to_str().unwrap().starts_with("/portal/endpoints/sub_"));
    assert_eq!(hub.get("/v1/subscriptions").await.1["data"][0]["url"], "https://crm.example.com/portal");
    let no_session = no_redirects().get(format!("{}/portal/endpoints", hub.base)).send().await.unwrap();
    assert_eq!(no_session.status(), StatusCode::UNAUTHORIZED);
    assert!(!no_session.text().await.unwrap().contains("crm.example.com"));
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookies_headers_and_the_audit_log_keep_the_session_safe() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let link =
        portal_link(&hub, json!({"theme": {"primary_color": "#0f766e", "logo_url": "https://cdn.example/l.svg"}}))
            .await;
    let token = link.rsplit('/').next().unwrap().to_owned();
    let (cookie, set_cookie) = exchange(&link).await;
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/portal", "Max-Age=3600"] {
        assert!(set_cookie.contains(flag), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "plain http here; Secure over https");

    let page = portal(&hub, Method::GET, "/portal/endpoints", &cookie).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let header = |name: &str| page.headers().get(name).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let csp = header("content-security-policy");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "img-src 'self' https://cdn.example;",
        "form-action 'self'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert_eq!(header("cache-control"), "no-store");
    assert_eq!(header("x-frame-options"), "DENY");
    assert_eq!(header("referrer-policy"), "no-referrer");
    assert_eq!(header("x-content-type-options"), "nosniff");
    let html = page.text().await.unwrap();
    assert!(!html.contains("http://") || !html.contains("<script src=\"http"), "every asset is the hub's own");
    let theme = portal(&hub, Method::GET, "/portal/theme.css", &cookie).send().await.unwrap().text().await.unwrap();
    assert_eq!(theme, ":root{--primary:#0f766e;}\n");
    let css = reqwest::get(format!("{}/portal/assets/portal.css", hub.base)).await.unwrap();
    assert!(css.headers()["content-type"].to_str().unwrap().starts_with("text/css"));

    let csrf = csrf_of(&cookie);
    let form = [("url", "https://crm.example.com/a"), ("event_types", "*"), ("csrf", csrf.as_str())];
    let created = portal(&hub, Method::POST, "/portal/endpoints", &cookie).form(&form).send().await.unwrap();
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    let rows = eventually(Duration::from_secs(10), || async {
        let (_, log) = hub.get("/v1/audit-log").await;
        let rows = log["data"].as_array()?.clone();
        rows.iter().any(|r| r["path"] == "/portal/endpoints" && r["method"] == "POST").then_some(rows)
    })
    .await;
    let login = rows.iter().find(|r| r["path"] == "/portal/login/[redacted]").expect("the exchange is audited");
    let change = rows.iter().find(|r| r["path"] == "/portal/endpoints").unwrap();
    assert!(login["credential"].as_str().unwrap().starts_with("portal:pse_"), "{login}");
    assert_eq!(change["credential"], login["credential"], "the change is tied to the session");
    assert_eq!(change["status"], 303);
    let everything = Value::from(rows).to_string();
    assert!(!everything.contains(&token) && !everything.contains(&cookie) && !everything.contains(&csrf));
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_cookie_or_payload_reaches_the_log() {
    let hub = common::logged_hub::LoggedHub::start("info").await;
    let (status, link) = hub.post("/v1/portal-sessions", "{}").await;
    assert_eq!(status, StatusCode::CREATED, "{link}");
    let link = link["url"].as_str().unwrap().to_owned();
    let token = link.rsplit('/').next().unwrap().to_owned();
    let (status, event) = hub
        .post(
            "/v1/events",
            r#"{"type": "client.created", "data": {"client_id": "c1", "diagnosis": "PHI-MARKER-7731"}}"#,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (cookie, _) = exchange(&link).await;
    let page = no_redirects()
        .get(format!("{}/portal/events/{}", hub.base, event["id"].as_str().unwrap()))
        .header("cookie", format!("hookhub_portal={cookie}"))
        .send()
        .await
        .unwrap();
    assert!(page.text().await.unwrap().contains("PHI-MARKER-7731"), "the session sees the payload");
    let log = hub.stop();
    assert!(log.contains("/portal/login/[redacted]"), "the exchange is in the access log, redacted: {log}");
    for secret in [token.as_str(), cookie.as_str(), "PHI-MARKER-7731"] {
        assert!(!log.contains(secret), "{secret} is in the log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_sessions_are_checked_and_a_platform_opens_them_for_its_tenants() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let bad = json!({"expires_in": 5, "event_types": ["nope"], "theme": {"primary_color": "red;}", "logo_url": "javascript:x"}});
    let (status, body) = hub.post("/v1/portal-sessions", bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["expires_in", "event_types", "theme.primary_color", "theme.logo_url"]);
    let (_, write) = hub.post("/v1/api-keys", json!({"name": "w", "scope": "write"})).await;
    let refused = reqwest::Client::new()
        .post(format!("{}/v1/portal-sessions", hub.base))
        .bearer_auth(write["key"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN, "an admin's (or a platform's) call only");

    let (_, platform_key) = hub.hub().store().create_platform("platform").await.unwrap();
    let platform = reqwest::Client::new();
    let call = |method: Method, path: &str| {
        platform.request(method, format!("{}{path}", hub.base)).bearer_auth(platform_key.expose())
    };
    let answer = |req: reqwest::RequestBuilder| async move { req.send().await.unwrap().json::<Value>().await.unwrap() };
    let tenant =
        answer(call(Method::POST, "/v1/tenants").json(&json!({"name": "Studio North", "external_id": "studio_1"})))
            .await;
    let sub = call(Method::POST, "/v1/subscriptions")
        .header("hookhub-tenant", "studio_1")
        .json(&json!({"url": "https://studio-north.example/hooks", "event_types": ["*"]}));
    assert_eq!(sub.send().await.unwrap().status(), StatusCode::CREATED);
    let link = answer(
        call(Method::POST, "/v1/portal-sessions")
            .header("hookhub-tenant", "studio_1")
            .json(&json!({"event_types": ["appointment.booked"]})),
    )
    .await;
    let (cookie, _) = exchange(link["url"].as_str().unwrap()).await;
    let page = portal(&hub, Method::GET, "/portal/endpoints", &cookie).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("studio-north.example"), "the platform's tenant's endpoints");
    let catalogue =
        portal(&hub, Method::GET, "/portal/event-types", &cookie).send().await.unwrap().text().await.unwrap();
    assert!(
        catalogue.contains("appointment.booked") && !catalogue.contains("client.created"),
        "only the types offered"
    );
    assert!(tenant["id"].as_str().unwrap().starts_with("ten_"));
    hub.stop().await;
}

/// Copies the tenant's one real event, delivery and attempt `n` times in
/// SQL, with fresh time-ordered ids; a tenant with a long history in
/// seconds. Every tenth copy failed.
async fn seed_history(store: &hookhub_store::Store, event: &str, n: u32) {
    use sea_orm::{ConnectionTrait, DatabaseBackend};
    let (series, hex) = match store.backend() {
        DatabaseBackend::Postgres => ("SELECT generate_series(1, {n})", "lpad(to_hex(i), 20, '0')"),
        _ => ("SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}", "printf('%020x', i)"),
    };
    let series = series.replace("{n}", &n.to_string());
    let id = |prefix: &str, of: &str| format!("'{prefix}' || substr({of}.id, 5, 12) || {hex}");
    let statements = [
        format!(
            "WITH RECURSIVE n(i) AS ({series}) INSERT INTO events (id, tenant_id, event_type, data, idempotency_key, created_at) \
             SELECT {}, e.tenant_id, e.event_type, e.data, NULL, e.created_at FROM n, events e WHERE e.id = '{event}'",
            id("evt_", "e")
        ),
        format!(
            "WITH RECURSIVE n(i) AS ({series}) INSERT INTO deliveries (id, tenant_id, event_id, subscription_id, status, \
             attempt_count, retry_index, next_attempt_at, last_status_code, last_error, created_at, updated_at) \
             SELECT {}, d.tenant_id, {}, d.subscription_id, CASE WHEN i % 10 = 0 THEN 'failed' ELSE 'succeeded' END, \
             1, 0, NULL, CASE WHEN i % 10 = 0 THEN 500 ELSE 200 END, NULL, d.created_at, d.updated_at \
             FROM n, deliveries d, events e WHERE d.event_id = '{event}' AND e.id = '{event}'",
            id("dlv_", "d"),
            id("evt_", "e")
        ),
        format!(
            "WITH RECURSIVE n(i) AS ({series}) INSERT INTO attempts (id, tenant_id, delivery_id, event_id, subscription_id, \
             attempt_number, attempted_at, status_code, latency_ms, outcome, error, response_body) \
             SELECT {}, a.tenant_id, {}, {}, a.subscription_id, 1, a.attempted_at, a.status_code, a.latency_ms, \
             a.outcome, NULL, NULL FROM n, attempts a, deliveries d, events e \
             WHERE a.event_id = '{event}' AND d.event_id = '{event}' AND e.id = '{event}'",
            id("att_", "a"),
            id("dlv_", "d"),
            id("evt_", "e")
        ),
    ];
    for sql in statements {
        store.db().execute_unprepared(&sql).await.unwrap();
    }
    if store.backend() == DatabaseBackend::Postgres {
        store.db().execute_unprepared("ANALYZE").await.unwrap();
    }
}

/// Not a timed assertion (machines differ): prints each page's time and
/// weight with 100,000 deliveries, asserts the weight, and asserts the
/// deliveries page reads by index rather than by sorting the table.
async fn pages_stay_small_and_fast_with_100_000_deliveries(backend: Backend) {
    use sea_orm::ConnectionTrait;
    let hub = TestHub::start(backend).await;
    let receiver = Receiver::start().await;
    let sub = hub.subscribe(&receiver.url("/busy"), &["*"]).await;
    let sub_id = sub["id"].as_str().unwrap().to_owned();
    let event = hub.send_event("client.created", json!({"client_id": "c1"})).await;
    hub.wait_delivery_status(&event, &sub_id, "succeeded").await;
    let started = Instant::now();
    seed_history(hub.hub().store(), &event, 100_000).await;
    println!("{backend:?}: seeded 100,000 events, deliveries and attempts in {:?}", started.elapsed());
    let deliveries = common::scalar(hub.hub().store(), "SELECT COUNT(*) FROM deliveries").await;
    assert!(deliveries > 100_000);

    let (cookie, _) = exchange(&portal_link(&hub, json!({})).await).await;
    let pages = [
        "/portal/endpoints".to_owned(),
        format!("/portal/endpoints/{sub_id}"),
        "/portal/deliveries".to_owned(),
        "/portal/deliveries?status=failed".to_owned(),
        format!("/portal/deliveries?endpoint={sub_id}&status=failed"),
        "/portal/deliveries?type=client.created".to_owned(),
        "/portal/deliveries?from=2000-01-01T00:00&to=2100-01-01T00:00".to_owned(),
        format!("/portal/events/{event}"),
        "/portal/event-types".to_owned(),
    ];
    for path in pages {
        let mut times = Vec::new();
        let mut size = 0;
        for _ in 0..6 {
            let start = Instant::now();
            let resp = portal(&hub, Method::GET, &path, &cookie).send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK, "{path}");
            size = resp.bytes().await.unwrap().len();
            times.push(start.elapsed());
        }
        times.sort();
        println!("{backend:?} {path}: median {:?}, {} bytes", times[times.len() / 2], size);
        assert!(size < 100_000, "{path} weighs {size} bytes");
    }
    if hub.hub().store().backend() == sea_orm::DatabaseBackend::Sqlite {
        let sql = "EXPLAIN QUERY PLAN SELECT id FROM deliveries WHERE tenant_id = 'ten_x' ORDER BY id DESC LIMIT 51";
        let rows = hub
            .hub()
            .store()
            .db()
            .query_all(sea_orm::Statement::from_string(sea_orm::DatabaseBackend::Sqlite, sql))
            .await
            .unwrap();
        let plan: Vec<String> = rows.iter().map(|r| r.try_get::<String>("", "detail").unwrap()).collect();
        assert!(
            plan.iter().any(|p| p.contains("ix_deliveries_tenant")) && !plan.iter().any(|p| p.contains("TEMP B-TREE")),
            "{plan:?}"
        );
    }
    hub.stop().await;
}

on_both_backends!(
    changes_need_the_session_csrf_token_and_read_only_sessions_are_refused,
    pages_stay_small_and_fast_with_100_000_deliveries,
);

/// With `HOOKHUB_PORTAL_SCREENSHOTS=docs/portal`, saves PNGs of the main
/// pages there (the ones the docs show); without it, does nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screenshots_of_the_main_pages() {
    let Ok(dir) = std::env::var("HOOKHUB_PORTAL_SCREENSHOTS") else { return };
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    std::fs::create_dir_all(&dir).unwrap();
    let hub = TestHub::start(Backend::Sqlite).await;
    let receiver = Receiver::start().await;
    receiver.script("/crm/failing", &[503; 20]);
    let front =
        hub.subscribe(&receiver.url("/front-desk/webhooks"), &["appointment.booked", "appointment.cancelled"]).await;
    let patch = json!({"description": "Front desk: bookings and cancellations"});
    hub.call(hub.request(Method::PATCH, &format!("/v1/subscriptions/{}", front["id"].as_str().unwrap())).json(&patch))
        .await;
    let crm = hub.subscribe(&receiver.url("/crm/failing"), &["client.created"]).await;
    let zap = hub.subscribe("https://hooks.zapier.example/hooks/catch/1234/abcd", &["*"]).await;
    hub.post(&format!("/v1/subscriptions/{}/enable", zap["id"].as_str().unwrap()), json!({})).await;
    let off = json!({"status": "disabled"});
    hub.call(hub.request(Method::PATCH, &format!("/v1/subscriptions/{}", zap["id"].as_str().unwrap())).json(&off))
        .await;
    for n in 0..6 {
        hub.send_event(
            "appointment.booked",
            json!({"appointment_id": format!("ap_{n}"), "client_id": "cl_8f3a2",
            "starts_at": "2026-12-01T10:00:00Z", "service": "Deep tissue massage"}),
        )
        .await;
    }
    let failing = hub
        .send_event("client.created", json!({"client_id": "cl_77", "first_name": "Ana", "email": "ana@example.com"}))
        .await;
    hub.wait_delivery_status(&failing, crm["id"].as_str().unwrap(), "failed").await;
    let link = portal_link(&hub, json!({"theme": {"primary_color": "#0f766e"}})).await;

    let browser = Browser::start(1280).await;
    browser.goto(&link).await;
    browser.screenshot(&dir.join("endpoints.png")).await;
    browser.goto(&format!("{}/portal/endpoints/{}", hub.base, front["id"].as_str().unwrap())).await;
    browser.screenshot(&dir.join("endpoint.png")).await;
    browser.goto(&format!("{}/portal/deliveries", hub.base)).await;
    browser.screenshot(&dir.join("deliveries.png")).await;
    browser.goto(&format!("{}/portal/events/{failing}", hub.base)).await;
    browser.client.find(Locator::Css("details summary")).await.unwrap().click().await.unwrap();
    browser.screenshot(&dir.join("event.png")).await;
    browser.goto(&format!("{}/portal/event-types", hub.base)).await;
    browser.screenshot(&dir.join("event-types.png")).await;
    browser.close().await;

    let dark = Browser::start(1280).await;
    dark.goto(&portal_link(&hub, json!({"theme": {"primary_color": "#8b5cf6", "dark": true}})).await).await;
    dark.goto(&format!("{}/portal/events/{failing}", hub.base)).await;
    dark.screenshot(&dir.join("event-dark.png")).await;
    dark.close().await;

    let narrow = Browser::start(360).await;
    narrow.goto(&portal_link(&hub, json!({"theme": {"primary_color": "#0f766e"}})).await).await;
    narrow.screenshot(&dir.join("endpoints-360.png")).await;
    narrow.close().await;
    hub.stop().await;
}
