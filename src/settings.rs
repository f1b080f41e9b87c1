//! Configuration: defaults, then an optional TOML file, then `HOOKHUB_*` env vars.
use anyhow::{bail, Context};
use hookhub_dispatcher::queue::amqp::AmqpConfig;
use hookhub_dispatcher::retention::RetentionConfig;
use hookhub_dispatcher::{DeliveryConfig, RelayConfig, RetrySchedule};
use hookhub_store::cipher::Cipher;
use hookhub_store::repo::BreakerPolicy;
use hookhub_store::Store;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

/// Which defaults apply: the safe ones, or a developer's conveniences.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The default: https endpoints only, the SSRF guard on, and a
    /// PostgreSQL hub refuses to start without encryption keys.
    #[default]
    Production,
    /// `hookhub --dev` or `HOOKHUB_MODE=development`: endpoints may be
    /// `http://` and on loopback or private networks (a receiver on your
    /// laptop), and PostgreSQL may store values unencrypted.
    Development,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Production => "production",
            Self::Development => "development",
        })
    }
}

/// Every setting, flat so that each has one obvious env var
/// (`database_url` ↔ `HOOKHUB_DATABASE_URL`).
///
/// Not `Debug`: the URLs may carry passwords.
#[derive(Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// `production` (the default, safe) or `development`, the one switch
    /// for the conveniences below.
    pub mode: Mode,
    /// `sqlite://...` (embedded default) or `postgres://...`.
    pub database_url: String,
    /// Connections to PostgreSQL this process keeps at most (SQLite has one).
    pub database_max_connections: u32,
    /// RabbitMQ; unset means the in-process queue (single-process `serve` only).
    pub amqp_url: Option<String>,
    /// Exchange events are published to.
    pub amqp_exchange: String,
    /// Queue dispatchers consume.
    pub amqp_queue: String,
    /// Address the API listens on.
    pub listen: String,
    /// Where every role serves /healthz, /readyz and /metrics (off when unset);
    /// the API's port serves the probes but never the metrics.
    pub metrics_listen: Option<String>,
    /// HTTP worker threads.
    pub http_workers: usize,
    /// Milliseconds a verified API key is trusted before it is read again:
    /// how long a key revoked by another process may still work (0: read on every request).
    pub credential_cache_ms: u64,
    /// Whether subscription URLs may be `http://`; unset follows the mode
    /// (only in development).
    pub allow_http_endpoints: Option<bool>,
    /// Whether endpoints may resolve to loopback or private addresses;
    /// unset follows the mode (only in development: production keeps the
    /// SSRF guard on).
    pub allow_private_endpoints: Option<bool>,
    /// Whether a hub on PostgreSQL may start without `encryption_keys` and
    /// store secrets and payloads unencrypted; unset follows the mode.
    pub allow_unencrypted: Option<bool>,
    /// Proxies (addresses or networks, comma-separated) whose
    /// `X-Forwarded-For` names the client in the audit log; empty: the
    /// peer address is the client.
    pub trusted_proxies: String,
    /// Per-attempt HTTP timeout, in milliseconds.
    pub delivery_timeout_ms: u64,
    /// Caps of the waits between attempts, like `5s,5m,30m,2h,5h,10h,10h`.
    pub retry_schedule: String,
    /// Attempts in flight at once per dispatcher.
    pub delivery_concurrency: usize,
    /// Attempts in flight at once to one subscription, per dispatcher.
    pub delivery_concurrency_per_subscription: usize,
    /// How often the dispatcher looks for due retries, in milliseconds.
    pub delivery_poll_interval_ms: u64,
    /// How long fan-out waits for a new delivery's first attempt before it
    /// writes the delivery without it, in milliseconds.
    pub first_attempt_wait_ms: u64,
    /// Consecutive failed attempts that disable a subscription (0: never by count).
    pub breaker_max_failures: u32,
    /// Hours a subscription may fail without one success before it is disabled.
    pub breaker_failing_hours: u32,
    /// Unacknowledged messages a dispatcher holds at once.
    pub amqp_prefetch: u16,
    /// Outbox rows per relay pass.
    pub relay_batch_size: u64,
    /// How often an idle relay polls the outbox, in milliseconds.
    pub relay_poll_interval_ms: u64,
    /// Events of one tenant accepted but not yet published at which ingest
    /// refuses that tenant's new events with `429 tenant_backlog_full` (0: never).
    pub tenant_backlog_limit: u64,
    /// Days to keep finished events, their deliveries and attempts; 0 keeps everything.
    pub retention_days: u32,
    /// How often the relay role purges, in seconds.
    pub purge_interval_secs: u64,
    /// Days to keep the audit log (six years by default, as HIPAA asks); 0 keeps it forever.
    pub audit_retention_days: u32,
    /// Days to keep a subscription (a Zapier or Make hook, typically) after
    /// its endpoint answered `410 Gone`; 0 keeps it forever.
    pub gone_subscription_retention_days: u32,
    /// Keys that seal secrets and payloads at rest: `id:base64-32-bytes`,
    /// comma-separated. Empty: a SQLite hub generates its own key beside its
    /// database; a PostgreSQL hub refuses to start unless unencrypted
    /// storage is allowed.
    pub encryption_keys: String,
    /// Which of the keys seals new values (default: the first).
    pub encryption_key_id: Option<String>,
    /// `pretty` for people, `json` for log pipelines.
    pub log_format: String,
    /// Origins that may show the portal in an iframe (CSP `frame-ancestors`),
    /// space- or comma-separated, like `https://app.example.com`; empty:
    /// the portal refuses to be framed.
    pub portal_frame_ancestors: String,
    /// The hub's public base URL (`https://hooks.example.com`) that portal
    /// links start with; unset: the scheme and host the request came to.
    pub portal_url: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        let delivery = DeliveryConfig::default();
        let relay = RelayConfig::default();
        Self {
            mode: Mode::Production,
            database_url: "sqlite://./data/hookhub.db?mode=rwc".into(),
            database_max_connections: hookhub_store::DEFAULT_POOL_SIZE,
            amqp_url: None,
            amqp_exchange: "hookhub.events".into(),
            amqp_queue: "hookhub.events".into(),
            listen: "127.0.0.1:8080".into(),
            metrics_listen: None,
            http_workers: 2,
            credential_cache_ms: hookhub_store::DEFAULT_CREDENTIAL_TTL.as_millis() as u64,
            allow_http_endpoints: None,
            allow_private_endpoints: None,
            allow_unencrypted: None,
            trusted_proxies: String::new(),
            delivery_timeout_ms: delivery.request_timeout.as_millis() as u64,
            retry_schedule: hookhub_dispatcher::retry_schedule::DEFAULT_RETRY_SCHEDULE.into(),
            delivery_concurrency: delivery.concurrency,
            delivery_concurrency_per_subscription: delivery.per_subscription_concurrency,
            delivery_poll_interval_ms: delivery.poll_interval.as_millis() as u64,
            first_attempt_wait_ms: delivery.first_attempt_wait.as_millis() as u64,
            breaker_max_failures: delivery.breaker.max_failures,
            breaker_failing_hours: delivery.breaker.max_failing.num_hours() as u32,
            amqp_prefetch: delivery.prefetch,
            relay_batch_size: relay.batch_size,
            relay_poll_interval_ms: relay.poll_interval.as_millis() as u64,
            tenant_backlog_limit: hookhub_ingest::backlog_guard::DEFAULT_TENANT_BACKLOG_LIMIT,
            retention_days: 30,
            purge_interval_secs: 3600,
            audit_retention_days: 6 * 365,
            gone_subscription_retention_days: 30,
            encryption_keys: String::new(),
            encryption_key_id: None,
            log_format: "pretty".into(),
            portal_frame_ancestors: String::new(),
            portal_url: None,
        }
    }
}

/// Variables with our prefix that belong to something else.
fn is_foreign(name: &str) -> bool {
    const CLI: [&str; 3] = ["CONFIG", "API_KEY", "HUB_URL"];
    CLI.contains(&name) || name.starts_with("TEST_") || name.contains("_SERVICE_") || name.contains("_PORT")
}

impl Settings {
    /// Loads defaults, then `file` (if given), then the environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut builder = config::Config::builder();
        if let Some(file) = file {
            builder = builder.add_source(config::File::from(file).required(true));
        }
        // Only HOOKHUB_<setting> variables are settings. Others that share
        // the prefix (HOOKHUB_CONFIG, the CLI's HOOKHUB_API_KEY, the test
        // suite's HOOKHUB_TEST_*, Kubernetes' HOOKHUB_*_SERVICE_HOST for a
        // Service named hookhub-*) are left alone; a misspelt one is
        // reported, since it would otherwise be silently ignored.
        let known: Vec<String> = match serde_json::to_value(Self::default()) {
            Ok(serde_json::Value::Object(fields)) => fields.keys().map(|k| k.to_uppercase()).collect(),
            _ => Vec::new(),
        };
        let mut env = std::collections::HashMap::new();
        for (key, value) in std::env::vars() {
            let Some(name) = key.strip_prefix("HOOKHUB_") else { continue };
            if known.iter().any(|k| k == name) {
                env.insert(key, value);
            } else if !is_foreign(name) {
                eprintln!("warning: {key} is not a Hookhub setting and is ignored");
            }
        }
        let settings: Self = builder
            .add_source(config::Environment::with_prefix("HOOKHUB").try_parsing(true).source(Some(env)))
            .build()
            .context("reading configuration")?
            .try_deserialize()
            .context("invalid configuration")?;
        settings.delivery_config()?;
        settings.configured_cipher()?;
        settings.portal_config()?;
        Ok(settings)
    }

    /// Whether subscription URLs may be `http://`.
    pub fn allows_http_endpoints(&self) -> bool {
        self.allow_http_endpoints.unwrap_or(self.mode == Mode::Development)
    }

    /// Whether deliveries may go to loopback and private addresses (the SSRF guard off).
    pub fn allows_private_endpoints(&self) -> bool {
        self.allow_private_endpoints.unwrap_or(self.mode == Mode::Development)
    }

    /// Whether a PostgreSQL hub may store values unencrypted.
    fn allows_unencrypted(&self) -> bool {
        self.allow_unencrypted.unwrap_or(self.mode == Mode::Development)
    }

    /// The dispatcher's settings, checked.
    pub fn delivery_config(&self) -> anyhow::Result<DeliveryConfig> {
        let retry_schedule: RetrySchedule = self.retry_schedule.parse().context("HOOKHUB_RETRY_SCHEDULE")?;
        Ok(DeliveryConfig {
            request_timeout: Duration::from_millis(self.delivery_timeout_ms.max(1)),
            retry_schedule,
            concurrency: self.delivery_concurrency.max(1),
            per_subscription_concurrency: self.delivery_concurrency_per_subscription.max(1),
            poll_interval: Duration::from_millis(self.delivery_poll_interval_ms.max(10)),
            first_attempt_wait: Duration::from_millis(self.first_attempt_wait_ms),
            prefetch: self.amqp_prefetch.max(1),
            allow_private_endpoints: self.allows_private_endpoints(),
            breaker: BreakerPolicy {
                max_failures: self.breaker_max_failures,
                max_failing: chrono::Duration::hours(i64::from(self.breaker_failing_hours.max(1))),
            },
        })
    }

    /// The relay's settings.
    pub fn relay_config(&self) -> RelayConfig {
        RelayConfig {
            batch_size: self.relay_batch_size.max(1),
            poll_interval: Duration::from_millis(self.relay_poll_interval_ms.max(10)),
            ..RelayConfig::default()
        }
    }

    /// The keyring `encryption_keys` describes (empty when unset).
    fn configured_cipher(&self) -> anyhow::Result<Cipher> {
        Cipher::from_config(&self.encryption_keys, self.encryption_key_id.as_deref()).context("HOOKHUB_ENCRYPTION_KEYS")
    }

    /// The keyring for encryption at rest: the configured keys; without
    /// them, a SQLite hub's own key (made on first use, see
    /// [`crate::local_key`]); without either, no encryption where that is
    /// allowed, and an error where it is not.
    pub fn cipher(&self) -> anyhow::Result<Cipher> {
        let configured = self.configured_cipher()?;
        if configured.is_active() {
            return Ok(configured);
        }
        if let Some(dir) = hookhub_store::sqlite_data_dir(&self.database_url) {
            let (spec, created) = crate::local_key::load_or_create(&dir)?;
            let path = crate::local_key::path_in(&dir);
            if created {
                tracing::warn!(
                    path = %path.display(),
                    "generated an encryption key for secrets and payloads at rest; back it up with the database: \
                     without it they cannot be read"
                );
            }
            return Cipher::from_config(&spec, None).with_context(|| format!("the key in {}", path.display()));
        }
        if self.allows_unencrypted() {
            return Ok(configured);
        }
        bail!(
            "HOOKHUB_ENCRYPTION_KEYS is not set: a production hub does not store secrets and payloads unencrypted. \
             Set it (id:base64-of-32-bytes, e.g. k1:$(head -c 32 /dev/urandom | base64)), or allow unencrypted \
             storage explicitly with HOOKHUB_ALLOW_UNENCRYPTED=true or HOOKHUB_MODE=development"
        )
    }

    /// Connects to the database with the keyring of [`Self::cipher`].
    pub async fn store(&self) -> anyhow::Result<Store> {
        let cipher = self.cipher()?;
        if !cipher.is_active() {
            tracing::warn!("HOOKHUB_ENCRYPTION_KEYS is not set: secrets and payloads are stored unencrypted");
        }
        Ok(Store::connect_with_pool(&self.database_url, self.database_max_connections)
            .await
            .context("connecting to the database")?
            .with_cipher(cipher)
            .with_credential_ttl(Duration::from_millis(self.credential_cache_ms)))
    }

    /// How long to keep finished events.
    pub fn retention_config(&self) -> RetentionConfig {
        RetentionConfig {
            keep: Duration::from_secs(u64::from(self.retention_days) * 86_400),
            interval: Duration::from_secs(self.purge_interval_secs.max(1)),
            keep_audit: Duration::from_secs(u64::from(self.audit_retention_days) * 86_400),
            keep_gone_subscriptions: Duration::from_secs(u64::from(self.gone_subscription_retention_days) * 86_400),
        }
    }

    /// RabbitMQ settings, when a broker is configured.
    pub fn amqp_config(&self) -> Option<AmqpConfig> {
        self.amqp_url.as_ref().filter(|u| !u.is_empty()).map(|url| AmqpConfig {
            url: url.clone(),
            exchange: self.amqp_exchange.clone(),
            queue: self.amqp_queue.clone(),
        })
    }

    /// The portal's settings, checked.
    pub fn portal_config(&self) -> anyhow::Result<hookhub_ingest::portal::PortalConfig> {
        hookhub_ingest::portal::PortalConfig::new(
            &self.portal_frame_ancestors,
            self.portal_url.as_deref().filter(|u| !u.is_empty()),
            self.allows_http_endpoints(),
        )
        .context("HOOKHUB_PORTAL_FRAME_ANCESTORS / HOOKHUB_PORTAL_URL")
    }

    /// A one-line summary that names backends but no credentials.
    pub fn describe(&self) -> String {
        let store = self.database_url.split(':').next().unwrap_or("?");
        let queue = if self.amqp_config().is_some() { "rabbitmq" } else { "in-process" };
        format!(
            "mode={} store={store} queue={queue} listen={} https_only={} ssrf_guard={}",
            self.mode,
            self.listen,
            !self.allows_http_endpoints(),
            !self.allows_private_endpoints(),
        )
    }
}
