//! The store's errors; the API maps them to HTTP in one place.
use sea_orm::DbErr;

/// Everything a repository call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist, or belongs to another tenant: callers cannot tell which.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The tenant is suspended (or being erased): it accepts no events.
    #[error("the tenant is suspended")]
    TenantSuspended,
    /// The platform already has a tenant with this external id.
    #[error("the platform already has a tenant with this external_id")]
    ExternalIdTaken,
    /// A uniqueness rule was broken (for example a duplicate idempotency key).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A value read back from the database does not parse into its domain type.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// A sealed value did not open (wrong or missing key, or tampering).
    #[error("encrypted value: {0}")]
    Sealed(#[from] crate::cipher::OpenError),
    /// A queued write was dropped before it ran (the process is shutting down).
    #[error("the write was abandoned before it ran")]
    Abandoned,
    /// The database itself failed (connection lost, constraint, syntax).
    #[error("database error: {0}")]
    Db(#[from] DbErr),
}

impl StoreError {
    /// Whether the database refused a value as text it cannot hold (on
    /// PostgreSQL, a NUL character in `text` or `jsonb`): bad input that
    /// got past validation, not a failure of the store.
    pub fn is_unstorable_text(&self) -> bool {
        let (Self::Db(DbErr::Query(sea_orm::RuntimeErr::SqlxError(sea_orm::SqlxError::Database(e))))
        | Self::Db(DbErr::Exec(sea_orm::RuntimeErr::SqlxError(sea_orm::SqlxError::Database(e))))) = self
        else {
            return false;
        };
        // invalid byte sequence for encoding, untranslatable character, unsupported Unicode escape
        matches!(e.code().as_deref(), Some("22021" | "22P05"))
    }

    /// Whether the error is a unique-constraint violation, on either backend.
    pub fn is_unique_violation(err: &DbErr) -> bool {
        matches!(err.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_)))
    }
}
