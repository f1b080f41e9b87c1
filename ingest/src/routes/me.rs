//! `GET /v1/me`: who the presented credential acts for. Zapier's and
//! Make's connection tests need one cheap authenticated call, and a
//! connection label ("Hookhub (Acme Fitness)") needs the tenant's name.
use crate::auth::Authenticated;
use crate::ApiError;
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use hookhub_store::repo::{Principal, CLIENT_ID_PREFIX};
use serde::Serialize;
use utoipa::ToSchema;

/// The caller: its tenant, its credential and its plan's limits.
#[derive(Serialize, ToSchema)]
pub struct MeBody {
    #[schema(example = "ten_01jdx4k7m2v9c3q8r5t6y7z8a9")]
    tenant_id: String,
    #[schema(example = "Acme Fitness")]
    tenant_name: String,
    /// `api_key` or `oauth_access_token`.
    #[schema(example = "api_key")]
    credential_kind: &'static str,
    /// The API key's id or the OAuth client id (never a secret).
    credential_id: String,
    /// What the credential may do: `read`, `read write` or `read write admin`.
    #[schema(example = "read write")]
    scope: String,
    /// The tenant's rate-limit plan.
    #[schema(example = "pro")]
    plan: &'static str,
    /// The plan's request limits, shortest window first; empty when unlimited.
    limits: Vec<LimitBody>,
}

/// One rate-limit window of a plan.
#[derive(Serialize, ToSchema)]
pub struct LimitBody {
    /// The window's length.
    #[schema(example = 900)]
    window_seconds: i64,
    /// Requests allowed in it.
    #[schema(example = 200)]
    requests: i64,
}

/// `GET /v1/me` → 200 `{tenant_id, tenant_name, credential_kind, credential_id, scope, plan, limits}`.
#[utoipa::path(operation_id = "get_me", get, path = "/v1/me", tag = "access",
    responses((status = 200, body = MeBody)), security(("bearer" = ["read"])))]
pub async fn get(Authenticated(tenant): Authenticated, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    // Authentication left the principal on the request for the audit log.
    let principal = req.extensions().get::<Principal>().cloned().ok_or(ApiError::Internal)?;
    let credential_kind =
        if principal.credential.starts_with(CLIENT_ID_PREFIX) { "oauth_access_token" } else { "api_key" };
    let limits =
        tenant.plan.windows().into_iter().map(|w| LimitBody { window_seconds: w.secs, requests: w.limit }).collect();
    Ok(HttpResponse::Ok().json(MeBody {
        tenant_id: tenant.id.to_string(),
        tenant_name: tenant.name,
        credential_kind,
        credential_id: principal.credential,
        scope: principal.scope.to_scope_string(),
        plan: tenant.plan.as_str(),
        limits,
    }))
}
