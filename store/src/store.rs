//! The store: the database connection, its keyring and caches, and
//! migrations. The per-tenant scope is in `tenant_scope.rs`.
use crate::cipher::Cipher;
use crate::credential_cache::CredentialCache;
use crate::migration::Migrator;
use crate::repo::IngestQueue;
use crate::StoreError;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection};
use sea_orm_migration::MigratorTrait;
use std::sync::Arc;
use std::time::Duration;

/// A handle on the database: cheap to clone, shared by every component.
#[derive(Clone, Debug)]
pub struct Store {
    db: DatabaseConnection,
    /// Where fan-out reads what it plans with: on a SQLite file, a
    /// connection of its own (see [`Store::connect_with_pool`]); otherwise
    /// the same pool as `db`.
    reader: DatabaseConnection,
    cipher: Arc<Cipher>,
    ingest_queue: IngestQueue,
    credentials: Arc<CredentialCache>,
}

/// How long a verified API key is trusted without reading it again, unless
/// [`Store::with_credential_ttl`] says otherwise.
pub const DEFAULT_CREDENTIAL_TTL: Duration = Duration::from_secs(1);

/// Connections to PostgreSQL one process keeps at most, by default.
pub const DEFAULT_POOL_SIZE: u32 = 20;

impl Store {
    /// Connects to `postgres://...` or `sqlite://...`.
    ///
    /// SQLite gets a single connection in WAL mode: it has one writer anyway,
    /// and one connection rules out `SQLITE_BUSY` between our own tasks.
    /// Beside it, a read-only connection for fan-out's reads (WAL lets a
    /// reader see every committed write without waiting for the writer):
    /// on the one connection, a quiet tenant's event waited behind every
    /// write of a burst before fan-out could read it.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with_pool(url, DEFAULT_POOL_SIZE).await
    }

    /// [`Store::connect`] with at most `max_connections` to PostgreSQL
    /// (SQLite always has one): every process of a deployment has its own
    /// pool, and together they must stay under the server's `max_connections`.
    pub async fn connect_with_pool(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let is_sqlite = url.starts_with("sqlite:");
        if is_sqlite {
            ensure_sqlite_dir(url);
        }
        let mut opts = ConnectOptions::new(url.to_owned());
        opts.sqlx_logging(false).connect_timeout(Duration::from_secs(10)).acquire_timeout(Duration::from_secs(30));
        if is_sqlite {
            opts.max_connections(1).min_connections(1);
        } else {
            opts.max_connections(max_connections.max(1)).min_connections(1);
        }
        let db = Database::connect(opts.clone()).await?;
        if is_sqlite {
            db.execute_unprepared("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")
                .await?;
        }
        // An in-memory database is private to its connection: no reader.
        let reader = if is_sqlite && sqlite_data_dir(url).is_some() {
            let reader = Database::connect(opts).await?;
            reader.execute_unprepared("PRAGMA query_only=ON;").await?;
            reader
        } else {
            db.clone()
        };
        Ok(Self {
            db,
            reader,
            cipher: Arc::new(Cipher::plaintext()),
            ingest_queue: IngestQueue::default(),
            credentials: Arc::new(CredentialCache::new(DEFAULT_CREDENTIAL_TTL)),
        })
    }

    /// Seals secrets and payloads with `cipher` from now on.
    pub fn with_cipher(mut self, cipher: Cipher) -> Self {
        self.cipher = Arc::new(cipher);
        self
    }

    /// Trusts a verified API key for `ttl` before reading it again; zero
    /// reads it on every request. Changes made through this store apply at
    /// once whatever the ttl; `ttl` bounds how long another process's take.
    pub fn with_credential_ttl(mut self, ttl: Duration) -> Self {
        self.credentials = Arc::new(CredentialCache::new(ttl));
        self
    }

    /// Recently verified API keys.
    pub(crate) fn credentials(&self) -> &CredentialCache {
        &self.credentials
    }

    /// The keys secrets and payloads are sealed with.
    pub fn cipher(&self) -> &Cipher {
        &self.cipher
    }

    /// Events waiting for their tenant's next ingest transaction.
    pub(crate) fn ingest_queue(&self) -> &IngestQueue {
        &self.ingest_queue
    }

    /// Applies every pending migration.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        Migrator::up(&self.db, None).await?;
        Ok(())
    }

    /// Whether the database answers (for readiness checks).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.db.ping().await?;
        Ok(())
    }

    /// The underlying connection, for repositories and tests.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The connection fan-out reads through (see the field).
    pub(crate) fn reader(&self) -> &DatabaseConnection {
        &self.reader
    }

    /// Which backend this is.
    pub fn backend(&self) -> DatabaseBackend {
        self.db.get_database_backend()
    }
}

/// The folder a SQLite database URL keeps its file in (`.` for a bare file
/// name); `None` for PostgreSQL and in-memory databases.
pub fn sqlite_data_dir(url: &str) -> Option<std::path::PathBuf> {
    let path = url.strip_prefix("sqlite:")?.trim_start_matches("//").split('?').next().unwrap_or_default();
    if path.is_empty() || path.starts_with(":memory:") || url.contains("mode=memory") {
        return None;
    }
    let dir = std::path::Path::new(path).parent().map(std::path::Path::to_path_buf).unwrap_or_default();
    Some(if dir.as_os_str().is_empty() { ".".into() } else { dir })
}

/// Creates the folder a SQLite file lives in, so `./data/hookhub.db` works on
/// a fresh checkout.
fn ensure_sqlite_dir(url: &str) {
    if let Some(dir) = sqlite_data_dir(url) {
        let _ = std::fs::create_dir_all(dir);
    }
}
