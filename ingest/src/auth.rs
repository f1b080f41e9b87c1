//! Tenant authentication by API key.
use crate::{ApiError, AppState};
use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use hookhub_store::domain::ApiKey;
use hookhub_store::repo::Tenant;
use std::future::Future;
use std::pin::Pin;

/// The tenant a request acts for, from `Authorization: Bearer` or `X-API-Key`.
pub struct Authenticated(pub Tenant);

fn presented_key(req: &HttpRequest) -> Option<String> {
    let headers = req.headers();
    if let Some(value) = headers.get(actix_web::http::header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        let (scheme, key) = value.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| key.trim().to_owned());
    }
    headers.get("x-api-key")?.to_str().ok().map(|k| k.trim().to_owned())
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let key = presented_key(req);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let key = key.filter(|k| k.starts_with(ApiKey::PREFIX)).ok_or(ApiError::Unauthorized)?;
            let state = state.ok_or(ApiError::Internal)?;
            let tenant =
                state.store.tenant_by_api_key(&ApiKey::presented(&key)).await?.ok_or(ApiError::Unauthorized)?;
            Ok(Self(tenant))
        })
    }
}
