//! Test harness: a hub on SQLite or on PostgreSQL + RabbitMQ (a fresh
//! database and fresh queue names per test, so tests run in parallel), and a
//! local receiver that records what it is sent.

pub mod logged_hub;
pub mod receiver;

use hookhub::{Hub, Role, Settings};
use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{json, Value};
use std::future::Future;
use std::time::{Duration, Instant};

/// Which store and queue a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file and the in-process queue (the embedded default).
    Sqlite,
    /// PostgreSQL and RabbitMQ, as in production.
    Postgres,
}

/// Server URL for admin work on PostgreSQL (creating test databases).
pub fn pg_server_url() -> String {
    std::env::var("HOOKHUB_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// The RabbitMQ tests use.
pub fn amqp_url() -> String {
    std::env::var("HOOKHUB_TEST_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// The keyring every test hub seals with, so every test runs with
/// encryption at rest on.
pub const TEST_ENCRYPTION_KEYS: &str = "test1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// The `hookhub` binary, configured to share `settings`' database, broker
/// and keys, ready to run one of its commands.
pub fn hookhub_command(settings: &Settings, args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hookhub"));
    cmd.args(args)
        .env("HOOKHUB_DATABASE_URL", &settings.database_url)
        .env("HOOKHUB_ENCRYPTION_KEYS", &settings.encryption_keys)
        .env("HOOKHUB_RETRY_SCHEDULE", &settings.retry_schedule)
        .env("HOOKHUB_MODE", settings.mode.to_string())
        .env("RUST_LOG", "warn");
    if let Some(amqp) = settings.amqp_config() {
        cmd.env("HOOKHUB_AMQP_URL", &amqp.url)
            .env("HOOKHUB_AMQP_EXCHANGE", &amqp.exchange)
            .env("HOOKHUB_AMQP_QUEUE", &amqp.queue);
    }
    cmd
}

/// Starts `hookhub <part>` (`serve`, `relay`, `dispatcher`) as its own
/// process, configured like `settings` with `env` on top: its stdout is
/// dropped and its stderr shown with the test's output.
pub fn spawn_part(settings: &Settings, part: &str, env: &[(&str, &str)]) -> std::process::Child {
    hookhub_command(settings, &[part])
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("the hookhub binary starts")
}

/// Child processes that are killed when dropped, so a failing test leaves
/// no hub running to hold database connections for the tests after it.
pub struct Processes(pub Vec<std::process::Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Settings for a test: development mode (receivers are on loopback, over
/// http), fast polls, a compressed retry schedule, port 0, and a fresh
/// database (and queue names) of the backend.
pub async fn test_settings(backend: Backend) -> Settings {
    let mut s = Settings {
        mode: hookhub::Mode::Development,
        listen: "127.0.0.1:0".into(),
        http_workers: 1,
        delivery_timeout_ms: 2_000,
        retry_schedule: "100ms,200ms,300ms".into(),
        delivery_poll_interval_ms: 50,
        relay_poll_interval_ms: 50,
        encryption_keys: TEST_ENCRYPTION_KEYS.into(),
        ..Settings::default()
    };
    match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join(unique("hookhub_test"));
            std::fs::create_dir_all(&dir).unwrap();
            s.database_url = format!("sqlite://{}/hub.db?mode=rwc", dir.display());
        }
        Backend::Postgres => {
            let name = unique("hh_test");
            let admin = Database::connect(format!("{}/postgres", pg_server_url()))
                .await
                .expect("PostgreSQL on 127.0.0.1:5432 (start it: see .ci/run)");
            admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
            admin.close().await.ok();
            s.database_url = format!("{}/{name}", pg_server_url());
            s.amqp_url = Some(amqp_url());
            let queue = unique("hookhub.test");
            s.amqp_exchange = queue.clone();
            s.amqp_queue = queue;
        }
    }
    s
}

/// A migrated store of its own with one tenant, for tests below the API;
/// `drop_test_resources(&settings)` removes it.
pub async fn test_store(backend: Backend) -> (Settings, hookhub_store::Store, hookhub_store::repo::Tenant) {
    let settings = test_settings(backend).await;
    let store = settings.store().await.unwrap();
    store.migrate().await.unwrap();
    let (tenant, _) = store.create_tenant("t").await.unwrap();
    (settings, store, tenant)
}

/// Subscribes `tenant` to every event type at `url`, straight in the store.
pub async fn subscribe_in_store(store: &hookhub_store::Store, tenant: &hookhub_store::repo::Tenant, url: &str) {
    use hookhub_store::domain::{EndpointUrl, EventTypeFilter, SubscriptionStatus};
    let new = hookhub_store::repo::NewSubscription {
        url: EndpointUrl::parse(url, true).unwrap(),
        event_types: EventTypeFilter::All,
        description: String::new(),
        rate_limit_per_second: None,
        status: SubscriptionStatus::Active,
        programs: Default::default(),
        ordering: Default::default(),
    };
    store.create_subscription(&tenant.id, new).await.unwrap();
}

/// Ingests a `client.created` event for `tenant` and writes a delivery of
/// it to each matching subscription, unattempted and due at `due`, as
/// fan-out would; returns them as written.
pub async fn fanned_out(
    store: &hookhub_store::Store,
    tenant: &hookhub_store::repo::Tenant,
    due: chrono::DateTime<chrono::Utc>,
) -> Vec<hookhub_store::repo::FreshDelivery> {
    use hookhub_store::repo::{BreakerPolicy, Delivery, FreshDelivery};
    let event = store.ingest_event(&tenant.id, client_created(json!({}))).await.unwrap().event;
    let subs = store.matching_subscriptions(&tenant.id, &event.event_type).await.unwrap();
    let fresh: Vec<FreshDelivery> = subs
        .readable
        .iter()
        .map(|s| FreshDelivery::Unattempted(Delivery::new(&tenant.id, &event.id, &s.id, due)))
        .collect();
    assert_eq!(store.write_fan_out(&fresh, BreakerPolicy::default()).await.unwrap().len(), fresh.len());
    fresh
}

/// The work of each delivery, loaded as the retry path loads it.
pub async fn loaded(
    store: &hookhub_store::Store,
    fresh: &[hookhub_store::repo::FreshDelivery],
) -> Vec<hookhub_store::repo::DeliveryWork> {
    let mut work = Vec::new();
    for f in fresh {
        let hookhub_store::repo::Loaded::Ready(ready) = store.delivery_work(f.id()).await.unwrap() else {
            panic!("{} is pending and reads", f.id())
        };
        work.push(*ready);
    }
    work
}

/// A `client.created` event with this `data`, to ingest straight in the store.
pub fn client_created(data: Value) -> hookhub_store::repo::NewEvent {
    hookhub_store::repo::NewEvent {
        event_type: "client.created".parse().unwrap(),
        data,
        idempotency_key: None,
        ordering_key: None,
    }
}

/// The one number `sql` selects.
pub async fn scalar(store: &hookhub_store::Store, sql: &str) -> i64 {
    let sql = sea_orm::Statement::from_string(store.backend(), sql);
    let row = store.db().query_one(sql).await.unwrap().unwrap();
    row.try_get_by_index(0).unwrap()
}

/// POSTs `body` as JSON with a bearer `key` and reads the JSON answer.
pub async fn post_json(client: &reqwest::Client, url: &str, key: &str, body: Value) -> Value {
    client.post(url).bearer_auth(key).json(&body).send().await.unwrap().json().await.unwrap()
}

/// Drops what `test_settings` created on the servers.
pub async fn drop_test_resources(settings: &Settings) {
    if let Some(name) = settings.database_url.strip_prefix(&format!("{}/", pg_server_url())) {
        if let Ok(admin) = Database::connect(format!("{}/postgres", pg_server_url())).await {
            let _ = admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
        }
    }
    if let Some(amqp) = settings.amqp_config() {
        use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
        if let Ok(conn) = lapin::Connection::connect(&amqp.url, lapin::ConnectionProperties::default()).await {
            if let Ok(ch) = conn.create_channel().await {
                for queue in [amqp.queue.clone(), amqp.express_queue()] {
                    let _ = ch.queue_delete(&queue, QueueDeleteOptions::default()).await;
                }
                let _ = ch.exchange_delete(&amqp.exchange, ExchangeDeleteOptions::default()).await;
            }
            let _ = conn.close(0, "test done").await;
        }
    }
}

/// A running hub with one tenant, and an HTTP client for its API.
pub struct TestHub {
    hub: Option<Hub>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The tenant's API key.
    pub key: String,
    /// The settings it runs with.
    pub settings: Settings,
    client: reqwest::Client,
}

impl TestHub {
    /// Starts a whole hub (`serve`) on the backend.
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    /// Starts a whole hub after `tweak` adjusted its settings.
    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = test_settings(backend).await;
        tweak(&mut settings);
        let hub = Hub::start(&settings, Role::All).await.expect("hub starts");
        let base = format!("http://127.0.0.1:{}", hub.port().unwrap());
        let (_, key) = hub.store().create_tenant("test tenant").await.unwrap();
        Self { hub: Some(hub), base, key: key.expose().to_owned(), settings, client: reqwest::Client::new() }
    }

    /// Creates another tenant and returns its API key.
    pub async fn new_tenant(&self) -> String {
        let (_, key) = self.hub.as_ref().unwrap().store().create_tenant("other").await.unwrap();
        key.expose().to_owned()
    }

    /// A request to the API with this tenant's key.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base)).bearer_auth(&self.key)
    }

    /// Sends a request and returns status and JSON body (`null` if none).
    pub async fn call(&self, req: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let resp = req.send().await.expect("request reaches the hub");
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("JSON body") };
        (status, body)
    }

    /// GET with this tenant's key.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(self.request(Method::GET, path)).await
    }

    /// POST JSON with this tenant's key.
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(self.request(Method::POST, path).json(&body)).await
    }

    /// Creates a subscription; returns its body (with `id` and `secret`).
    pub async fn subscribe(&self, url: &str, types: &[&str]) -> Value {
        let (status, body) = self.post("/v1/subscriptions", json!({"url": url, "event_types": types})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// Posts an event; returns its id.
    pub async fn send_event(&self, event_type: &str, data: Value) -> String {
        let (status, body) = self.post("/v1/events", json!({"type": event_type, "data": data})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    /// Waits until the event's delivery to `sub` has `status`.
    pub async fn wait_delivery_status(&self, event: &str, sub: &str, status: &str) -> Value {
        eventually(Duration::from_secs(20), || async {
            let (_, body) = self.get(&format!("/v1/events/{event}")).await;
            body["deliveries"]
                .as_array()?
                .iter()
                .find(|d| d["subscription_id"] == sub && d["status"] == status)
                .cloned()
        })
        .await
    }

    /// The hub itself.
    pub fn hub(&self) -> &Hub {
        self.hub.as_ref().unwrap()
    }

    /// Shuts the hub down and drops its database and queue.
    pub async fn stop(mut self) {
        if let Some(hub) = self.hub.take() {
            hub.shutdown().await;
        }
        drop_test_resources(&self.settings).await;
    }
}

/// Posts `count` events, 100 at a time, the n-th to `bases[n % bases.len()]`
/// with the type and data `event(n)` gives; returns the accepted ids.
pub async fn post_events(
    bases: &[String],
    key: &str,
    count: usize,
    event: impl Fn(usize) -> (&'static str, Value),
) -> std::collections::HashSet<String> {
    let client = reqwest::Client::new();
    let mut sent = std::collections::HashSet::new();
    for chunk in (0..count).collect::<Vec<_>>().chunks(100) {
        let posts = chunk.iter().map(|&n| {
            let (kind, data) = event(n);
            client
                .post(format!("{}/v1/events", bases[n % bases.len()]))
                .bearer_auth(key)
                .json(&json!({"type": kind, "data": data}))
                .send()
        });
        for resp in futures::future::join_all(posts).await {
            let body: Value = resp.expect("the hub answers").json().await.expect("a JSON answer");
            let Some(id) = body["id"].as_str() else { panic!("an accepted event, not {body}") };
            sent.insert(id.to_owned());
        }
    }
    sent
}

/// Serves `routes` on a free loopback port with one worker (receivers, a
/// platform's page); returns the base URL and the handle that stops it.
pub fn serve_locally(
    routes: impl Fn(&mut actix_web::web::ServiceConfig) + Clone + Send + 'static,
) -> (String, actix_web::dev::ServerHandle) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = actix_web::HttpServer::new(move || actix_web::App::new().configure(routes.clone()))
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
    let handle = server.handle();
    tokio::spawn(server);
    (format!("http://127.0.0.1:{port}"), handle)
}

/// Polls `check` until it returns `Some`, or panics after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "condition not met within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Verifies deliveries with the Standard Webhooks reference implementation
/// (Python `standardwebhooks`) and Svix's verifier (`svix`), both
/// independent of Hookhub's signer.
pub fn verify_with_reference(secret: &str, received: &[receiver::Received]) {
    let messages: Vec<Value> = received
        .iter()
        .map(|r| json!({"secret": secret, "headers": r.headers, "body": String::from_utf8_lossy(&r.body)}))
        .collect();
    run_python("verify_standard_webhooks.py", &[], &Value::from(messages).to_string());
}

/// Runs a script of `tests/fixtures/` with `python3`, feeding it `stdin`,
/// and returns its standard output; fails the test if the script fails.
pub fn run_python(script: &str, args: &[&str], stdin: &str) -> String {
    use std::io::Write;
    let script = format!("{}/tests/fixtures/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut child = std::process::Command::new("python3")
        .arg(&script)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 is installed");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{script} failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// Runs one scenario on each backend, as two tests that run in parallel.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Backend::Sqlite).await }) *
        }
        mod postgres_rabbitmq {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Backend::Postgres).await }) *
        }
    };
}
