//! `/v1/tenants`: the tenants a platform manages (`platform` scope).
//!
//! Every `{id}` here is a tenant's `ten_…` id or the platform's own
//! external id for it; another platform's tenant is not found. To act for
//! a tenant on any other route, a platform credential sends
//! `Hookhub-Tenant: <id or external id>` (see `crate::auth`).
use crate::auth::{acted_for, Platform};
use crate::body::StrictJson;
use crate::error::FieldError;
use crate::input::{nul_free, nul_free_json};
use crate::pagination::{ListBody, PageQuery};
use crate::{ApiError, AppState};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use hookhub_store::domain::{Plan, TenantId, TenantStatus};
use hookhub_store::repo::{ManagedTenant, NewTenant, Tenant, TenantFilter, TenantPatch};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

const MAX_NAME: usize = 200;
const MAX_EXTERNAL_ID: usize = 255;
/// Metadata is for the platform's bookkeeping, not documents.
const MAX_METADATA_BYTES: usize = 16 * 1024;

/// A tenant as its platform sees it.
#[derive(Serialize, ToSchema)]
pub struct TenantBody {
    #[schema(value_type = String, example = "ten_01JD6F0Q6A8Y3W5Z7X9B1C2D3E")]
    id: TenantId,
    name: String,
    /// The platform's own id for it.
    #[schema(example = "studio_123")]
    external_id: Option<String>,
    #[schema(example = "pro")]
    plan: String,
    status: TenantStatus,
    #[schema(value_type = Option<Object>)]
    metadata: Option<serde_json::Value>,
    created_at: DateTime<Utc>,
}

impl From<ManagedTenant> for TenantBody {
    fn from(m: ManagedTenant) -> Self {
        let t = m.tenant;
        Self {
            id: t.id,
            name: t.name,
            external_id: t.external_id,
            plan: t.plan.to_string(),
            status: t.status,
            metadata: m.metadata,
            created_at: m.created_at,
        }
    }
}

/// The fields of a create or a change; all optional here so that every
/// problem is reported by field name. A create needs `name`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantFields {
    /// 1 to 200 characters, for people.
    #[schema(example = "Studio North")]
    name: Option<String>,
    /// The platform's own id for it (create only): 1 to 255 characters,
    /// unique per platform, not starting with `ten_`.
    #[schema(example = "studio_123")]
    external_id: Option<String>,
    /// `essential`, `starter`, `pro`, `studio` or `unlimited` (the default).
    #[schema(pattern = "^(essential|starter|pro|studio|unlimited)$")]
    plan: Option<String>,
    /// A JSON object for the platform's bookkeeping, up to 16 KiB (not for PHI: it is not sealed).
    #[schema(value_type = Option<Object>)]
    metadata: Option<serde_json::Value>,
}

/// Checked fields.
struct Checked {
    name: Option<String>,
    external_id: Option<String>,
    plan: Option<Plan>,
    metadata: Option<serde_json::Value>,
}

impl TenantFields {
    fn check(self) -> Result<Checked, ApiError> {
        let mut errors = Vec::new();
        let name = self.name.map(|n| n.trim().to_owned());
        if name.as_ref().is_some_and(|n| n.is_empty() || n.chars().count() > MAX_NAME) {
            errors.push(FieldError::new("name", format!("must be 1 to {MAX_NAME} characters")));
        }
        if let Some(Err(e)) = name.as_deref().map(|n| nul_free("name", n)) {
            errors.push(e);
        }
        if let Some(id) = &self.external_id {
            let usable = !id.is_empty()
                && id.len() <= MAX_EXTERNAL_ID
                && !id.starts_with(TenantId::PREFIX)
                && id.bytes().all(|b| b.is_ascii_graphic());
            if !usable {
                errors.push(FieldError::new(
                    "external_id",
                    format!("must be 1 to {MAX_EXTERNAL_ID} printable ASCII characters, not starting with `ten_`"),
                ));
            }
        }
        let plan = match self.plan.as_deref().map(str::parse::<Plan>) {
            None => None,
            Some(Ok(plan)) => Some(plan),
            Some(Err(_)) => {
                errors.push(FieldError::new("plan", "must be essential, starter, pro, studio or unlimited"));
                None
            }
        };
        match &self.metadata {
            Some(m @ serde_json::Value::Object(_)) => {
                if m.to_string().len() > MAX_METADATA_BYTES {
                    errors.push(FieldError::new("metadata", format!("must be at most {MAX_METADATA_BYTES} bytes")));
                }
                if let Err(e) = nul_free_json("metadata", m) {
                    errors.push(e);
                }
            }
            Some(_) => errors.push(FieldError::new("metadata", "must be a JSON object")),
            None => {}
        }
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        Ok(Checked { name, external_id: self.external_id, plan, metadata: self.metadata })
    }
}

/// Resolves `{id}` to one of the platform's tenants and files the call
/// under that tenant in the audit log.
pub(super) async fn managed(
    state: &AppState,
    platform: &Tenant,
    req: &HttpRequest,
    reference: &str,
) -> Result<ManagedTenant, ApiError> {
    let found = state.store.managed_tenant(&platform.id, reference).await?;
    acted_for(req, vec![found.tenant.id.clone()]);
    Ok(found)
}

/// The `{id}` of a tenant route.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // never built: only its derived parameter list is used
pub(crate) struct TenantPath {
    /// The tenant's `ten_…` id, or the platform's external id for it.
    id: String,
}

/// `POST /v1/tenants` `{name, external_id?, plan?, metadata?}` → 201; the
/// platform's subscriptions get `tenant.created`.
#[utoipa::path(operation_id = "create_tenant", post, path = "/v1/tenants", tag = "platform", request_body = TenantFields,
    responses((status = 201, body = TenantBody),
        (status = 409, description = "`external_id_taken`: the platform has a tenant with this external_id", body = crate::error::ErrorBody)),
    security(("bearer" = ["platform"])))]
pub async fn create(
    state: web::Data<AppState>,
    Platform(platform): Platform,
    req: HttpRequest,
    StrictJson(body): StrictJson<TenantFields>,
) -> Result<HttpResponse, ApiError> {
    let checked = body.check()?;
    let name = checked.name.ok_or_else(|| ApiError::field("name", "is required (1 to 200 characters)"))?;
    let new = NewTenant {
        name,
        external_id: checked.external_id,
        plan: checked.plan.unwrap_or(Plan::Unlimited),
        metadata: checked.metadata,
    };
    let created = state.store.create_managed_tenant(&platform.id, new).await?;
    state.event_accepted(&platform.id);
    acted_for(&req, vec![created.tenant.id.clone()]);
    Ok(HttpResponse::Created().json(TenantBody::from(created)))
}

/// The filters and page of `GET /v1/tenants`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TenantQuery {
    /// Only tenants on this plan.
    #[param(pattern = "^(essential|starter|pro|studio|unlimited)$")]
    plan: Option<String>,
    /// Only tenants in this status: `active`, `suspended` or `deleting`.
    #[param(pattern = "^(active|suspended|deleting)$")]
    status: Option<String>,
    #[serde(flatten)]
    #[param(ignore)]
    page: PageQuery,
}

/// `GET /v1/tenants?plan=&status=`: the platform's tenants, newest first.
#[utoipa::path(operation_id = "list_tenants", get, path = "/v1/tenants", tag = "platform", params(TenantQuery, PageQuery),
    responses((status = 200, body = ListBody<TenantBody>)), security(("bearer" = ["platform"])))]
pub async fn list(
    state: web::Data<AppState>,
    Platform(platform): Platform,
    query: web::Query<TenantQuery>,
) -> Result<HttpResponse, ApiError> {
    let invalid = |message: &str| ApiError::BadRequest { code: "invalid_query", message: message.to_owned() };
    let plan = query.plan.as_deref().map(str::parse::<Plan>).transpose().map_err(|_| invalid("unknown plan"))?;
    let status = match query.status.as_deref() {
        None => None,
        Some("active") => Some(TenantStatus::Active),
        Some("suspended") => Some(TenantStatus::Suspended),
        Some("deleting") => Some(TenantStatus::Deleting),
        Some(_) => return Err(invalid("status must be active, suspended or deleting")),
    };
    let filter = TenantFilter { plan, status };
    let page = state.store.list_managed_tenants(&platform.id, &filter, &query.page.to_request()?).await?;
    Ok(HttpResponse::Ok().json(ListBody::from_page(page, TenantBody::from)))
}

/// `GET /v1/tenants/{id}`: one of the platform's tenants.
#[utoipa::path(operation_id = "get_tenant", get, path = "/v1/tenants/{id}", tag = "platform", params(TenantPath),
    responses((status = 200, body = TenantBody)), security(("bearer" = ["platform"])))]
pub async fn get(
    state: web::Data<AppState>,
    Platform(platform): Platform,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let found = managed(&state, &platform, &req, &id).await?;
    Ok(HttpResponse::Ok().json(TenantBody::from(found)))
}

/// `PATCH /v1/tenants/{id}` `{name?, plan?, metadata?}`.
#[utoipa::path(operation_id = "update_tenant", patch, path = "/v1/tenants/{id}", tag = "platform", params(TenantPath),
    request_body = TenantFields, responses((status = 200, body = TenantBody)), security(("bearer" = ["platform"])))]
pub async fn update(
    state: web::Data<AppState>,
    Platform(platform): Platform,
    req: HttpRequest,
    id: web::Path<String>,
    StrictJson(body): StrictJson<TenantFields>,
) -> Result<HttpResponse, ApiError> {
    let found = managed(&state, &platform, &req, &id).await?;
    let checked = body.check()?;
    if checked.external_id.is_some() {
        return Err(ApiError::field("external_id", "cannot change: it is how the platform names the tenant"));
    }
    let patch = TenantPatch { name: checked.name, plan: checked.plan, metadata: checked.metadata };
    let updated = state.store.update_managed_tenant(&platform.id, &found.tenant.id, patch).await?;
    Ok(HttpResponse::Ok().json(TenantBody::from(updated)))
}

/// `POST /v1/tenants/{id}/suspend`: new events are refused (409
/// `tenant_suspended`) and deliveries held, nothing dropped; the
/// platform's subscriptions get `tenant.suspended`.
#[utoipa::path(operation_id = "suspend_tenant", post, path = "/v1/tenants/{id}/suspend", tag = "platform", params(TenantPath),
    responses((status = 200, body = TenantBody),
        (status = 409, description = "The tenant is being deleted", body = crate::error::ErrorBody)),
    security(("bearer" = ["platform"])))]
pub async fn suspend(
    state: web::Data<AppState>,
    Platform(platform): Platform,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    change_status(&state, &platform, &req, &id, Change::Suspend).await
}

/// `POST /v1/tenants/{id}/resume`: events are accepted again and the held
/// deliveries go out; the platform's subscriptions get `tenant.resumed`.
#[utoipa::path(operation_id = "resume_tenant", post, path = "/v1/tenants/{id}/resume", tag = "platform", params(TenantPath),
    responses((status = 200, body = TenantBody),
        (status = 409, description = "The tenant is being deleted", body = crate::error::ErrorBody)),
    security(("bearer" = ["platform"])))]
pub async fn resume(
    state: web::Data<AppState>,
    Platform(platform): Platform,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    change_status(&state, &platform, &req, &id, Change::Resume).await
}

/// Which way a status change goes.
enum Change {
    Suspend,
    Resume,
}

/// Suspends or resumes one of the platform's tenants; the change's
/// `tenant.*` event is on its way to the platform's subscriptions.
async fn change_status(
    state: &AppState,
    platform: &Tenant,
    req: &HttpRequest,
    reference: &str,
    change: Change,
) -> Result<HttpResponse, ApiError> {
    let id = managed(state, platform, req, reference).await?.tenant.id;
    let changed = match change {
        Change::Suspend => state.store.suspend_tenant(&platform.id, &id).await?,
        Change::Resume => state.store.resume_tenant(&platform.id, &id).await?,
    };
    state.event_accepted(&platform.id);
    Ok(HttpResponse::Ok().json(TenantBody::from(changed)))
}
