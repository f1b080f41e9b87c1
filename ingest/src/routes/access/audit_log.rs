//! `/v1/audit-log`: the tenant's record of API calls (admin scope).
use crate::auth::Admin;
use crate::pagination::ListBody;
use crate::{ApiError, AppState};
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The filters and page of `GET /v1/audit-log`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Calls at or after this RFC 3339 time.
    #[param(format = DateTime)]
    from: Option<String>,
    /// Calls before this RFC 3339 time.
    #[param(format = DateTime)]
    to: Option<String>,
    /// Only calls answered with this HTTP status.
    #[param(value_type = Option<u16>, example = 403)]
    status: Option<String>,
    #[serde(flatten)]
    #[param(ignore)]
    page: crate::pagination::PageQuery,
}

/// One recorded API call (never its body).
#[derive(Serialize, ToSchema)]
pub struct AuditBody {
    /// The API key id or OAuth client id, never a secret.
    credential: Option<String>,
    method: String,
    path: String,
    status: u16,
    latency_ms: i64,
    client_ip: Option<String>,
    at: DateTime<Utc>,
    /// The platform whose credential made the call for this tenant (`ten_…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    platform_id: Option<hookhub_store::domain::TenantId>,
}

/// `GET /v1/audit-log?from=&to=&status=`: the tenant's API calls, newest first.
#[utoipa::path(operation_id = "list_audit_log", get, path = "/v1/audit-log", tag = "access", params(AuditQuery, crate::pagination::PageQuery),
    responses((status = 200, body = ListBody<AuditBody>)), security(("bearer" = ["admin"])))]
pub async fn audit_log(
    state: web::Data<AppState>,
    Admin(tenant): Admin,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let time = |field: &'static str, raw: &Option<String>| {
        raw.as_deref()
            .map(|t| {
                chrono::DateTime::parse_from_rfc3339(t)
                    .map(|t| t.to_utc())
                    .map_err(|e| ApiError::BadRequest { code: "invalid_query", message: format!("{field}: {e}") })
            })
            .transpose()
    };
    let filter = hookhub_store::repo::AuditFilter {
        from: time("from", &query.from)?,
        to: time("to", &query.to)?,
        status: match query.status.as_deref() {
            Some(raw) => Some(raw.parse().map_err(|_| ApiError::BadRequest {
                code: "invalid_query",
                message: "status must be an HTTP status code".into(),
            })?),
            None => None,
        },
    };
    let page = state.store.list_audit(&tenant.id, &filter, &query.page.to_request()?).await?;
    Ok(HttpResponse::Ok().json(ListBody::from_page(page, |e| AuditBody {
        credential: e.credential,
        method: e.method,
        path: e.path,
        status: e.status,
        latency_ms: e.latency_ms,
        client_ip: e.client_ip,
        at: e.at,
        platform_id: e.platform_id,
    })))
}
