//! Secure by default: a hub started with no configuration refuses http and
//! private endpoints and seals secrets and payloads at rest; development
//! conveniences come from one switch (`--dev`, `HOOKHUB_MODE=development`),
//! and the hub says at start which mode it is in.
use crate::common;

use common::{Backend, TestHub};
use hookhub::{Mode, Settings};
use reqwest::StatusCode;
use serde_json::json;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncBufReadExt;

#[test]
fn the_defaults_are_the_safe_ones_and_one_switch_relaxes_them() {
    let production = Settings::default();
    assert_eq!(production.mode, Mode::Production);
    assert!(!production.allows_http_endpoints(), "https only");
    assert!(!production.allows_private_endpoints(), "SSRF guard on");
    assert!(!production.delivery_config().unwrap().allow_private_endpoints);

    let development = Settings { mode: Mode::Development, ..Settings::default() };
    assert!(development.allows_http_endpoints() && development.allows_private_endpoints());
    // An explicit setting wins over the mode, either way.
    let guarded = Settings { allow_private_endpoints: Some(false), ..development };
    assert!(guarded.allows_http_endpoints() && !guarded.allows_private_endpoints());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_production_hub_on_postgres_refuses_to_store_unencrypted() {
    let mut settings = common::test_settings(Backend::Postgres).await;
    settings.encryption_keys.clear();
    settings.mode = Mode::Production;
    let Err(refused) = settings.store().await else { panic!("no keys, no start") };
    let refused = refused.to_string();
    assert!(refused.contains("HOOKHUB_ENCRYPTION_KEYS"), "{refused}");
    settings.allow_unencrypted = Some(true);
    settings.store().await.expect("allowed explicitly");
    settings.allow_unencrypted = None;
    settings.mode = Mode::Development;
    settings.store().await.expect("allowed in development");
    common::drop_test_resources(&settings).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_hub_without_keys_makes_its_own_and_seals_with_it() {
    let hub = TestHub::start_with(Backend::Sqlite, |s| s.encryption_keys.clear()).await;
    let dir = hookhub_store::sqlite_data_dir(&hub.settings.database_url).unwrap();
    let key_file = hookhub::local_key::path_in(&dir);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let sub = hub.subscribe("http://127.0.0.1:9/x", &["*"]).await;
    let event = hub.send_event("client.created", json!({"note": "PHI"})).await;
    let store = hub.hub().store();
    for sql in [
        format!(
            "SELECT count(*) FROM subscriptions WHERE id = '{}' AND secret LIKE 'enc:v1:local:%' AND url LIKE 'enc:v1:local:%'",
            sub["id"]
        ),
        format!("SELECT count(*) FROM events WHERE id = '{event}' AND data NOT LIKE '%PHI%'"),
    ] {
        assert_eq!(common::scalar(store, &sql.replace('"', "")).await, 1, "{sql}");
    }
    // A restart (or a CLI command) reads the same key.
    let (status, read) = hub.get(&format!("/v1/events/{event}")).await;
    assert_eq!((status, &read["data"]), (StatusCode::OK, &json!({"note": "PHI"})));
    let (_, listed) = hub.get("/v1/subscriptions").await;
    assert_eq!(listed["data"][0]["url"], "http://127.0.0.1:9/x");
    let listed = common::hookhub_command(&hub.settings, &["subscriptions", "list"])
        .env_remove("HOOKHUB_ENCRYPTION_KEYS")
        .output()
        .unwrap();
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_production_hub_refuses_plain_http_endpoints() {
    let hub = TestHub::start_with(Backend::Sqlite, |s| s.mode = Mode::Production).await;
    let (status, body) =
        hub.post("/v1/subscriptions", json!({"url": "http://example.com/hooks", "event_types": ["*"]})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["field"], "url");
    hub.stop().await;
}

/// Starts `hookhub serve` with `args` in an empty folder and returns the
/// line that describes its configuration.
async fn started_line(args: &[&str], env: &[(&str, &str)]) -> String {
    let dir = std::env::temp_dir().join(format!("hh_defaults_{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_hookhub"));
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("HOOKHUB_")) {
        cmd.env_remove(key);
    }
    let mut child = cmd
        .args(args)
        .current_dir(&dir)
        .env("HOOKHUB_LISTEN", "127.0.0.1:0")
        .env("HOOKHUB_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("mode=") {
                return line;
            }
        }
        panic!("the hub exited without describing itself");
    })
    .await
    .expect("the hub describes itself at start");
    child.kill().await.unwrap();
    assert!(dir.join("data").join(hookhub::local_key::FILE_NAME).exists(), "the embedded key was made");
    std::fs::remove_dir_all(&dir).unwrap();
    line
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_says_at_start_which_mode_it_is_in() {
    let line = started_line(&["serve"], &[]).await;
    assert!(line.contains("mode=production") && line.contains("https_only=true") && line.contains("ssrf_guard=true"));
    let line = started_line(&["serve", "--dev"], &[]).await;
    assert!(line.contains("mode=development") && line.contains("https_only=false"), "{line}");
    let line = started_line(&["serve"], &[("HOOKHUB_MODE", "development")]).await;
    assert!(line.contains("mode=development"), "{line}");
}
