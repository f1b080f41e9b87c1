//! Who is calling, and whether they may: API keys and OAuth access tokens,
//! each with a scope. Access tokens are looked up on every request; API
//! keys through the store's short-lived credential cache, which a
//! revocation in this process clears, so a revoked key or app stops
//! working on the next request.
use crate::{ApiError, AppState};
use actix_web::dev::Payload;
use actix_web::http::Method;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use hookhub_store::domain::{now, ApiKey, Scope};
use hookhub_store::repo::{Principal, RateStatus, Tenant, TokenLookup, ACCESS_TOKEN_PREFIX};
use std::future::Future;
use std::pin::Pin;

/// The tenant a request acts for. Reads need the `read` scope, anything
/// else `write`.
pub struct Authenticated(pub Tenant);

/// The tenant a request acts for, with the `admin` scope (keys, apps, audit log).
pub struct Admin(pub Tenant);

/// The tenant a request acts for, with the `write` scope even for a read:
/// what it reads (a signing secret) lets its holder forge deliveries, which
/// a `read` credential must not be able to do.
pub struct Writer(pub Tenant);

/// What the credential presented was.
enum Credential {
    ApiKey(String),
    AccessToken(String),
}

fn presented(req: &HttpRequest) -> Option<Credential> {
    let headers = req.headers();
    let raw = match headers.get(actix_web::http::header::AUTHORIZATION) {
        Some(value) => {
            let (scheme, key) = value.to_str().ok()?.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| key.trim().to_owned())?
        }
        None => headers.get("x-api-key")?.to_str().ok()?.trim().to_owned(),
    };
    if raw.starts_with(ACCESS_TOKEN_PREFIX) {
        Some(Credential::AccessToken(raw))
    } else if raw.starts_with(ApiKey::PREFIX) {
        Some(Credential::ApiKey(raw))
    } else {
        None
    }
}

/// Resolves the caller.
async fn identify(state: &AppState, credential: Option<Credential>) -> Result<Principal, ApiError> {
    Ok(match credential.ok_or(ApiError::Unauthorized)? {
        Credential::ApiKey(key) => {
            state.store.principal_by_api_key(&ApiKey::presented(&key)).await?.ok_or(ApiError::Unauthorized)?
        }
        Credential::AccessToken(token) => match state.store.principal_by_access_token(&token).await? {
            TokenLookup::Valid(principal) => principal,
            TokenLookup::Invalid => return Err(ApiError::InvalidToken),
        },
    })
}

fn extract(req: &HttpRequest, needed: Scope) -> Pin<Box<dyn Future<Output = Result<Tenant, ApiError>>>> {
    let credential = presented(req);
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let req = req.clone();
    Box::pin(async move {
        let state = state.ok_or(ApiError::Internal)?;
        let principal = identify(&state, credential).await?;
        let (tenant, scope) = (principal.tenant.clone(), principal.scope);
        // The audit log reads who it was once the response is known, refused or not.
        req.extensions_mut().insert(principal);
        if scope < needed {
            return Err(ApiError::InsufficientScope { needed });
        }
        count_request(&state, &tenant, &req).await?;
        Ok(tenant)
    })
}

/// Counts a request of `tenant` against its plan, on every route the
/// tenant can drive (its gateways' callbacks and its OAuth clients' token
/// requests too); `rate_limited` once over.
pub(crate) async fn count_request(state: &AppState, tenant: &Tenant, req: &HttpRequest) -> Result<(), ApiError> {
    let rate = state.store.hit_rate_limit(&tenant.id, tenant.plan, now().timestamp()).await?;
    if let Some(rate) = rate {
        req.extensions_mut().insert(rate);
    }
    refuse_when_over(rate)
}

/// `rate_limited`, with the seconds until the window resets, when a count went over.
pub(crate) fn refuse_when_over(rate: Option<RateStatus>) -> Result<(), ApiError> {
    match rate {
        Some(rate) if rate.exceeded => {
            Err(ApiError::RateLimited { retry_after: (rate.reset - now().timestamp()).max(1) })
        }
        _ => Ok(()),
    }
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let needed = if matches!(*req.method(), Method::GET | Method::HEAD) { Scope::Read } else { Scope::Write };
        let fut = extract(req, needed);
        Box::pin(async move { fut.await.map(Self) })
    }
}

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let fut = extract(req, Scope::Admin);
        Box::pin(async move { fut.await.map(Self) })
    }
}

impl FromRequest for Writer {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let fut = extract(req, Scope::Write);
        Box::pin(async move { fut.await.map(Self) })
    }
}
