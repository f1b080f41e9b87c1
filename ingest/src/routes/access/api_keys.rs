//! `/v1/api-keys`: a tenant's API keys (admin scope).
use super::{ApiKeyBody, CredentialBody};
use crate::auth::{caller_scope, Admin};
use crate::pagination::ListBody;
use crate::routes::{path_id, IdPath};
use crate::{ApiError, AppState};
use actix_web::{web, HttpRequest, HttpResponse};
use hookhub_store::domain::ApiKeyId;

/// `POST /v1/api-keys` `{name, scope?}` → 201 with the `key`, shown once.
#[utoipa::path(operation_id = "create_api_key", post, path = "/v1/api-keys", tag = "access", request_body = CredentialBody,
    responses((status = 201, body = ApiKeyBody)), security(("bearer" = ["admin"])))]
pub async fn create_key(
    state: web::Data<AppState>,
    Admin(tenant): Admin,
    req: HttpRequest,
    body: web::Json<CredentialBody>,
) -> Result<HttpResponse, ApiError> {
    let (name, scope) = body.into_inner().check_for(&tenant, caller_scope(&req))?;
    let (info, key) = state.store.create_api_key(&tenant.id, &name, scope).await?;
    let out = ApiKeyBody { key: Some(key.expose().to_owned()), ..info.into() };
    Ok(HttpResponse::Created().json(out))
}

/// `GET /v1/api-keys`: names and scopes, never the keys.
#[utoipa::path(operation_id = "list_api_keys", get, path = "/v1/api-keys", tag = "access",
    responses((status = 200, body = ListBody<ApiKeyBody>)), security(("bearer" = ["admin"])))]
pub async fn list_keys(state: web::Data<AppState>, Admin(tenant): Admin) -> Result<HttpResponse, ApiError> {
    let keys = state.store.list_api_keys(&tenant.id).await?;
    Ok(HttpResponse::Ok().json(ListBody::all(keys.into_iter().map(ApiKeyBody::from).collect())))
}

/// `DELETE /v1/api-keys/{id}` → 204; the key stops working on the next request.
#[utoipa::path(operation_id = "delete_api_key", delete, path = "/v1/api-keys/{id}", tag = "access", params(IdPath),
    responses((status = 204, description = "Revoked")), security(("bearer" = ["admin"])))]
pub async fn delete_key(
    state: web::Data<AppState>,
    Admin(tenant): Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: ApiKeyId = path_id(&id, "API key")?;
    state.store.delete_api_key(&tenant.id, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}
