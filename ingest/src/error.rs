//! The one place where failures become HTTP responses.
//!
//! Every error body is `{"message", "code", "hint"?, "errors"?}`; `code` is
//! stable and machine-readable, `message` is for people.
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse, ResponseError};
use hookhub_store::StoreError;
use serde::Serialize;

/// One invalid field of a request body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The field, as named in the request.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: &str, message: impl ToString) -> Self {
        Self { field: field.to_owned(), message: message.to_string() }
    }
}

/// Every way an API request can fail.
#[derive(Clone, Debug, thiserror::Error)]
pub enum ApiError {
    /// No API key, or one that matches no tenant.
    #[error("a valid API key is required")]
    Unauthorized,
    /// An OAuth access token that is unknown, expired or revoked.
    #[error("the access token is invalid, expired or revoked")]
    InvalidToken,
    /// The credential is valid but its scope does not allow this.
    #[error("this needs the `{needed}` scope")]
    InsufficientScope {
        /// The scope the request needs.
        needed: hookhub_store::domain::Scope,
    },
    /// The tenant's plan allows no more requests in the current window.
    #[error("rate limit exceeded; retry in {retry_after} s")]
    RateLimited {
        /// Seconds until the window resets.
        retry_after: i64,
    },
    /// The tenant's events not yet published reached the backlog bound;
    /// other tenants are unaffected.
    #[error("this tenant has {limit} or more events waiting to be published; retry in {retry_after} s")]
    BacklogFull {
        /// Seconds the backlog is expected to need to fall below the bound.
        retry_after: i64,
        /// The bound (`HOOKHUB_TENANT_BACKLOG_LIMIT`).
        limit: u64,
    },
    /// The resource does not exist, or belongs to another tenant.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The path exists but not with this method.
    #[error("method not allowed on this path; it allows {allow}")]
    MethodNotAllowed {
        /// The methods it does allow, for the `Allow` header (RFC 9110 §15.5.6).
        allow: String,
    },
    /// The body is not JSON.
    #[error("request body is not valid JSON: {0}")]
    InvalidJson(String),
    /// A query parameter or cursor is wrong.
    #[error("{message}")]
    BadRequest {
        /// Machine-readable code.
        code: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The body is over the size limit.
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The body is not `application/json`.
    #[error("content type must be application/json")]
    UnsupportedMediaType,
    /// The JSON is well formed but some fields are wrong.
    #[error("request is invalid")]
    Validation(Vec<FieldError>),
    /// A subscription's filter or transform does not compile, or does not
    /// define `handler`; `errors` names the field.
    #[error("the filter or transform is invalid")]
    InvalidProgram(Vec<FieldError>),
    /// The request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// The tenant is suspended (or being erased): it accepts no events.
    #[error("the tenant is suspended; it accepts no events until it is resumed")]
    TenantSuspended,
    /// The platform already has a tenant with this `external_id`.
    #[error("the platform already has a tenant with this external_id")]
    ExternalIdTaken,
    /// A batch holds more items than one request may.
    #[error("a batch holds at most {limit} events")]
    BatchTooLarge {
        /// The most items a batch may hold.
        limit: usize,
    },
    /// The database is unreachable.
    #[error("the service is temporarily unavailable")]
    Unavailable,
    /// A bug or corrupt data; logged, never detailed to the caller.
    #[error("internal error")]
    Internal,
}

impl ApiError {
    /// A 422 for a single field.
    pub fn field(field: &str, message: impl ToString) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    /// The stable, machine-readable code of the error body.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope { .. } => "insufficient_scope",
            Self::RateLimited { .. } => "rate_limited",
            Self::BacklogFull { .. } => "tenant_backlog_full",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::InvalidJson(_) => "invalid_json",
            Self::BadRequest { code, .. } => code,
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::Validation(_) => "validation_failed",
            Self::InvalidProgram(_) => "invalid_program",
            Self::Conflict(_) => "conflict",
            Self::TenantSuspended => "tenant_suspended",
            Self::ExternalIdTaken => "external_id_taken",
            Self::BatchTooLarge { .. } => "batch_too_large",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal_error",
        }
    }

    fn hint(&self) -> Option<&'static str> {
        match self {
            Self::Unauthorized => Some(
                "send `Authorization: Bearer hh_live_...` (an API key) or `Bearer hh_at_...` (an OAuth access token)",
            ),
            Self::InvalidToken => Some("get a new token from POST /v1/oauth/token"),
            Self::TenantSuspended => Some("the platform resumes it with POST /v1/tenants/{id}/resume"),
            Self::BatchTooLarge { .. } => Some("split the batch into several requests"),
            Self::InvalidProgram(_) => {
                Some("try it against an event first: POST /v1/subscriptions/{id}/transform/test")
            }
            Self::UnsupportedMediaType => Some("set `Content-Type: application/json`"),
            Self::BacklogFull { .. } => Some(
                "resend the same event (same idempotency key) after Retry-After; \
                 spread large imports out, or post them at a steady pace",
            ),
            Self::PayloadTooLarge { .. } => {
                Some("events carry references and small facts; fetch large documents from the platform's API")
            }
            _ => None,
        }
    }
}

/// The body of every error: `code` is stable and machine-readable.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody<'a> {
    /// What went wrong, for people.
    message: String,
    /// What went wrong, for programs: `validation_failed`, `not_found`, `rate_limited`, ...
    #[schema(example = "validation_failed")]
    code: &'a str,
    /// How to fix it, when there is a common fix.
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<&'a str>,
    /// Every invalid field, for `validation_failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<FieldError>>)]
    errors: Option<&'a [FieldError]>,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Unauthorized | Self::InvalidToken => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope { .. } => StatusCode::FORBIDDEN,
            Self::RateLimited { .. } | Self::BacklogFull { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::InvalidJson(_) | Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation(_) | Self::InvalidProgram(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Conflict(_) | Self::TenantSuspended | Self::ExternalIdTaken => StatusCode::CONFLICT,
            Self::BatchTooLarge { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        match self {
            Self::Unauthorized => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            Self::InvalidToken => {
                response.insert_header((header::WWW_AUTHENTICATE, r#"Bearer error="invalid_token""#));
            }
            Self::MethodNotAllowed { allow } => {
                response.insert_header((header::ALLOW, allow.as_str()));
            }
            Self::RateLimited { retry_after } | Self::BacklogFull { retry_after, .. } => {
                response.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            Self::InsufficientScope { needed } => {
                let value = format!(r#"Bearer error="insufficient_scope", scope="{needed}""#);
                response.insert_header((header::WWW_AUTHENTICATE, value));
            }
            _ => {}
        }
        response.json(ErrorBody {
            message: self.to_string(),
            code: self.code(),
            hint: self.hint(),
            errors: match self {
                Self::Validation(errors) | Self::InvalidProgram(errors) => Some(errors),
                _ => None,
            },
        })
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::NotFound(what),
            StoreError::Conflict(what) => Self::Conflict(what),
            StoreError::TenantSuspended => Self::TenantSuspended,
            StoreError::ExternalIdTaken => Self::ExternalIdTaken,
            // The routes refuse NUL by field; this catches any they miss.
            e if e.is_unstorable_text() => Self::Validation(vec![FieldError::new(
                "body",
                "contains a NUL character (U+0000), which cannot be stored",
            )]),
            StoreError::Db(db) if is_unreachable(&db) => {
                tracing::error!(error = %db, "database unreachable");
                Self::Unavailable
            }
            other => {
                tracing::error!(error = %other, "store failure");
                Self::Internal
            }
        }
    }
}

fn is_unreachable(e: &sea_orm::DbErr) -> bool {
    matches!(e, sea_orm::DbErr::ConnectionAcquire(_) | sea_orm::DbErr::Conn(_))
}

impl From<crate::delivery_side::ProgramError> for ApiError {
    /// Only from checking a program a user sent, with no event: the
    /// engine's message quotes the source, never a payload.
    fn from(e: crate::delivery_side::ProgramError) -> Self {
        Self::InvalidProgram(vec![FieldError::new(e.part.unwrap_or("transform"), e.detail)])
    }
}

impl From<JsonPayloadError> for ApiError {
    fn from(e: JsonPayloadError) -> Self {
        match e {
            JsonPayloadError::Overflow { limit } => Self::PayloadTooLarge { limit },
            JsonPayloadError::OverflowKnownLength { limit, .. } => Self::PayloadTooLarge { limit },
            JsonPayloadError::ContentType => Self::UnsupportedMediaType,
            // Well-formed JSON of the wrong shape is a validation problem;
            // anything else means the body is not JSON at all.
            JsonPayloadError::Deserialize(e) if e.classify() == serde_json::error::Category::Data => {
                Self::Validation(vec![FieldError::new("body", e)])
            }
            JsonPayloadError::Deserialize(e) => Self::InvalidJson(e.to_string()),
            other => Self::InvalidJson(other.to_string()),
        }
    }
}

/// JSON bodies: size limit and errors in our format.
pub(crate) fn json_config() -> web::JsonConfig {
    web::JsonConfig::default().limit(crate::MAX_BODY_BYTES).error_handler(|err, _req| ApiError::from(err).into())
}

/// Query strings: errors in our format.
pub(crate) fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err: QueryPayloadError, _req| {
        ApiError::BadRequest { code: "invalid_query", message: err.to_string() }.into()
    })
}

/// Path segments: errors in our format.
pub(crate) fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err: PathError, _req| {
        ApiError::BadRequest { code: "invalid_path", message: err.to_string() }.into()
    })
}
