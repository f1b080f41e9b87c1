//! A `hookhub serve` process of its own whose log is kept, for tests of
//! what the hub writes to its log (secrets and payloads must not be there).
use super::{hookhub_command, test_settings, Backend};
use reqwest::StatusCode;
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

/// A `hookhub serve` process whose log goes to a file.
pub struct LoggedHub {
    child: Child,
    /// Its database, opened beside it.
    pub store: hookhub_store::Store,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Its tenant's API key.
    pub key: String,
    log: PathBuf,
}

impl LoggedHub {
    /// Starts `hookhub serve` with `RUST_LOG=rust_log` on a fresh SQLite database.
    pub async fn start(rust_log: &str) -> Self {
        let settings = test_settings(Backend::Sqlite).await;
        let store = settings.store().await.unwrap();
        store.migrate().await.unwrap();
        let (_, key) = store.create_tenant("logged").await.unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = std::env::temp_dir().join(format!("hookhub_log_{}.txt", uuid::Uuid::new_v4().simple()));
        let file = std::fs::File::create(&log).unwrap();
        let child = hookhub_command(&settings, &["serve"])
            .env("RUST_LOG", rust_log)
            .env("NO_COLOR", "1")
            .env("HOOKHUB_LISTEN", format!("127.0.0.1:{port}"))
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        super::eventually(Duration::from_secs(30), || async {
            reqwest::get(format!("{base}/healthz")).await.ok().filter(|r| r.status().is_success())
        })
        .await;
        Self { child, store, base, key: key.expose().to_owned(), log }
    }

    /// POSTs raw JSON text with the tenant's key.
    pub async fn post(&self, path: &str, body: &str) -> (StatusCode, Value) {
        let resp = reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Stops the process (SIGTERM, then waits) and returns its whole log.
    pub fn stop(mut self) -> String {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
        let text = std::fs::read_to_string(&self.log).unwrap();
        let _ = std::fs::remove_file(&self.log);
        text
    }
}
