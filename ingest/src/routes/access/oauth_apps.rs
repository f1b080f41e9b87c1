//! `/v1/oauth-apps`: a tenant's OAuth clients (admin scope).
use super::{CredentialBody, OAuthAppBody};
use crate::auth::{caller_scope, Admin};
use crate::pagination::ListBody;
use crate::routes::{path_id, IdPath};
use crate::{ApiError, AppState};
use actix_web::{web, HttpRequest, HttpResponse};
use hookhub_store::domain::OAuthAppId;

/// `POST /v1/oauth-apps` `{name, scope?}` → 201 with `client_id` and `client_secret` (shown once).
#[utoipa::path(operation_id = "create_oauth_app", post, path = "/v1/oauth-apps", tag = "access", request_body = CredentialBody,
    responses((status = 201, body = OAuthAppBody)), security(("bearer" = ["admin"])))]
pub async fn create_app(
    state: web::Data<AppState>,
    Admin(tenant): Admin,
    req: HttpRequest,
    body: web::Json<CredentialBody>,
) -> Result<HttpResponse, ApiError> {
    let (name, scope) = body.into_inner().check_for(&tenant, caller_scope(&req))?;
    let (app, secret) = state.store.create_oauth_app(&tenant.id, &name, scope).await?;
    let out = OAuthAppBody { client_secret: Some(secret), ..app.into() };
    Ok(HttpResponse::Created().json(out))
}

/// `GET /v1/oauth-apps`.
#[utoipa::path(operation_id = "list_oauth_apps", get, path = "/v1/oauth-apps", tag = "access",
    responses((status = 200, body = ListBody<OAuthAppBody>)), security(("bearer" = ["admin"])))]
pub async fn list_apps(state: web::Data<AppState>, Admin(tenant): Admin) -> Result<HttpResponse, ApiError> {
    let apps = state.store.list_oauth_apps(&tenant.id).await?;
    Ok(HttpResponse::Ok().json(ListBody::all(apps.into_iter().map(OAuthAppBody::from).collect())))
}

/// `DELETE /v1/oauth-apps/{id}` → 204; its tokens stop working at once.
#[utoipa::path(operation_id = "delete_oauth_app", delete, path = "/v1/oauth-apps/{id}", tag = "access", params(IdPath),
    responses((status = 204, description = "Deleted; its tokens are revoked")), security(("bearer" = ["admin"])))]
pub async fn delete_app(
    state: web::Data<AppState>,
    Admin(tenant): Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: OAuthAppId = path_id(&id, "OAuth app")?;
    state.store.delete_oauth_app(&tenant.id, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}
