use sea_orm::DbErr;

/// Everything a repository call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist, or belongs to another tenant: callers cannot tell which.
    #[error("{0} not found")]
    NotFound(&'static str),
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
    /// Whether the error is a unique-constraint violation, on either backend.
    pub fn is_unique_violation(err: &DbErr) -> bool {
        matches!(err.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_)))
    }
}
