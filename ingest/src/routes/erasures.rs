//! Deleting a platform's tenant: `DELETE /v1/tenants/{id}` starts a job
//! that erases the tenant's data in batches, and `GET /v1/erasures/{id}`
//! tells how far it got (`platform` scope).
use super::path_id;
use super::tenants::{managed, TenantPath};
use crate::auth::Platform;
use crate::{ApiError, AppState};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use hookhub_store::domain::{ErasureId, TenantId};
use hookhub_store::repo::Erasure;
use hookhub_store::Store;
use serde::Serialize;
use utoipa::ToSchema;

/// An erasure job.
#[derive(Serialize, ToSchema)]
pub struct ErasureBody {
    #[schema(value_type = String, example = "era_01JD6F0Q6A8Y3W5Z7X9B1C2D3E")]
    id: ErasureId,
    #[schema(value_type = String)]
    tenant_id: TenantId,
    /// `running`, `done` or `failed`.
    #[schema(example = "running")]
    status: String,
    /// Rows deleted so far, all tables together.
    rows_erased: i64,
    created_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

impl From<Erasure> for ErasureBody {
    fn from(e: Erasure) -> Self {
        Self {
            id: e.id,
            tenant_id: e.tenant_id,
            status: e.status,
            rows_erased: e.rows_erased,
            created_at: e.created_at,
            finished_at: e.finished_at,
        }
    }
}

/// `DELETE /v1/tenants/{id}` → 202 with the erasure job: the tenant stops
/// at once (`deleting`: its keys revoked, its ingest refused), and its
/// events, payloads, deliveries, attempts, subscriptions, secrets, keys,
/// rules, event types and inbound sources are deleted in batches; the
/// audit log is kept. The platform's subscriptions get `tenant.deleted`.
#[utoipa::path(operation_id = "delete_tenant", delete, path = "/v1/tenants/{id}", tag = "platform", params(TenantPath),
    responses((status = 202, description = "Erasure started", body = ErasureBody)), security(("bearer" = ["platform"])))]
pub async fn delete(
    state: web::Data<AppState>,
    Platform(platform): Platform,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = managed(&state, &platform, &req, &id).await?.tenant;
    let job = state.store.start_erasure(&platform.id, &tenant.id).await?;
    state.event_accepted(&platform.id);
    spawn_erasure(state.store.clone(), job.id.clone());
    Ok(HttpResponse::Accepted().json(ErasureBody::from(job)))
}

/// Runs the job off the request; a restart cut short is picked up by
/// the relay (`Store::resume_erasures`).
fn spawn_erasure(store: Store, job: ErasureId) {
    tokio::spawn(async move {
        if let Err(e) = store.run_erasure(&job).await {
            tracing::error!(erasure_id = %job, error = %e, "tenant erasure failed");
        }
    });
}

/// `GET /v1/erasures/{id}`: where one of the platform's erasure jobs stands.
#[utoipa::path(operation_id = "get_erasure", get, path = "/v1/erasures/{id}", tag = "platform", params(super::IdPath),
    responses((status = 200, body = ErasureBody)), security(("bearer" = ["platform"])))]
pub async fn get(
    state: web::Data<AppState>,
    Platform(platform): Platform,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: ErasureId = path_id(&id, "erasure")?;
    let job = state.store.erasure(&platform.id, &id).await?;
    Ok(HttpResponse::Ok().json(ErasureBody::from(job)))
}
