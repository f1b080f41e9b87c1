//! Backing services of the postgres mode: a fresh database per run and
//! fresh RabbitMQ names, both removed afterwards, plus the settings and
//! versions the report names.
use anyhow::Context;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use serde::Serialize;

/// A database created for one run on a PostgreSQL server.
pub struct PgDatabase {
    server: String,
    name: String,
    sslmode: SslMode,
}

/// libpq's `sslmode` values the hub's connections can use.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it.
    Prefer,
    /// TLS or no connection.
    Require,
}

impl SslMode {
    fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
        }
    }
}

/// PostgreSQL settings that bound write throughput, as the server reports them.
#[derive(Clone, Debug, Serialize)]
pub struct PgSettings {
    /// `SHOW server_version`.
    pub server_version: String,
    /// `SHOW shared_buffers`.
    pub shared_buffers: String,
    /// `SHOW synchronous_commit`: whether each commit waits for its WAL flush.
    pub synchronous_commit: String,
    /// `SHOW max_connections`.
    pub max_connections: String,
    /// The `sslmode` the hub connects with, and whether such a connection
    /// did use TLS (`pg_stat_ssl`).
    pub hub_connection: String,
}

async fn show(conn: &DatabaseConnection, setting: &str) -> anyhow::Result<String> {
    let row = conn
        .query_one(Statement::from_string(conn.get_database_backend(), format!("SHOW {setting}")))
        .await?
        .with_context(|| format!("SHOW {setting} returned nothing"))?;
    Ok(row.try_get::<String>("", setting)?)
}

async fn connection_uses_tls(conn: &DatabaseConnection) -> anyhow::Result<bool> {
    let sql = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    let row = conn
        .query_one(Statement::from_string(conn.get_database_backend(), sql))
        .await?
        .context("pg_stat_ssl has no row for this connection")?;
    Ok(row.try_get::<bool>("", "ssl")?)
}

impl PgDatabase {
    /// Creates `hh_bench_<uuid>` through the server's `postgres` admin database.
    /// `server` is like `postgres://postgres@127.0.0.1:5432`.
    pub async fn create(server: &str, sslmode: SslMode) -> anyhow::Result<Self> {
        let name = format!("hh_bench_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(format!("{server}/postgres")).await.context("connecting to PostgreSQL")?;
        admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await?;
        admin.close().await?;
        Ok(Self { server: server.to_owned(), name, sslmode })
    }

    /// The URL the hub connects to.
    pub fn url(&self) -> String {
        format!("{}/{}?sslmode={}", self.server, self.name, self.sslmode.as_str())
    }

    /// The server settings in force.
    pub async fn settings(&self) -> anyhow::Result<PgSettings> {
        let conn = Database::connect(self.url()).await?;
        let settings = PgSettings {
            server_version: show(&conn, "server_version").await?,
            shared_buffers: show(&conn, "shared_buffers").await?,
            synchronous_commit: show(&conn, "synchronous_commit").await?,
            max_connections: show(&conn, "max_connections").await?,
            hub_connection: format!(
                "sslmode={}, tls {}",
                self.sslmode.as_str(),
                if connection_uses_tls(&conn).await? { "on" } else { "off" }
            ),
        };
        conn.close().await?;
        Ok(settings)
    }

    /// Drops the database, disconnecting anyone still on it.
    pub async fn drop_database(self) -> anyhow::Result<()> {
        let admin = Database::connect(format!("{}/postgres", self.server)).await?;
        admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).await?;
        admin.close().await?;
        Ok(())
    }
}

/// An exchange and a queue named for one run.
pub struct AmqpNames {
    /// Broker URL.
    pub url: String,
    /// `hh_bench_<uuid>`, used for both the exchange and the queue.
    pub name: String,
}

impl AmqpNames {
    /// Fresh names on the broker at `url` (the hub declares them).
    pub fn new(url: &str) -> Self {
        Self { url: url.to_owned(), name: format!("hh_bench_{}", uuid::Uuid::new_v4().simple()) }
    }

    /// Deletes the queues and exchange the hub declared.
    pub async fn delete(&self) -> anyhow::Result<()> {
        use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
        let conn = lapin::Connection::connect(&self.url, lapin::ConnectionProperties::default()).await?;
        let channel = conn.create_channel().await?;
        channel.queue_delete(&self.name, QueueDeleteOptions::default()).await?;
        channel.exchange_delete(&self.name, ExchangeDeleteOptions::default()).await?;
        // The hub's express lane is `<queue>.express`; an older hub has none.
        let _ = channel.queue_delete(&format!("{}.express", self.name), QueueDeleteOptions::default()).await;
        conn.close(0, "benchmark done").await?;
        Ok(())
    }
}

/// The broker's version, asked from the running node with `rabbitmq-diagnostics`
/// (lapin does not expose the server properties of the AMQP handshake).
pub async fn rabbitmq_version() -> anyhow::Result<String> {
    let out = tokio::process::Command::new("rabbitmq-diagnostics")
        .args(["-q", "server_version"])
        .output()
        .await
        .context("running rabbitmq-diagnostics")?;
    anyhow::ensure!(out.status.success(), "rabbitmq-diagnostics: {}", String::from_utf8_lossy(&out.stderr).trim());
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}
