//! Who is calling, and whether they may: API keys and OAuth access tokens,
//! each with a scope, and the tenant a platform's credential acts for
//! (`Hookhub-Tenant`). Access tokens are looked up on every request; API
//! keys through the store's short-lived credential cache, which a
//! revocation in this process clears, so a revoked key or app stops
//! working on the next request.
use crate::audit::ActingFor;
use crate::{ApiError, AppState};
use actix_web::dev::Payload;
use actix_web::http::Method;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use hookhub_store::domain::{now, ApiKey, Scope, TenantId};
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

fn extract(req: &HttpRequest, needed: Scope, acts: Acts) -> Pin<Box<dyn Future<Output = Result<Tenant, ApiError>>>> {
    let credential = presented(req);
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let req = req.clone();
    Box::pin(async move {
        let state = state.ok_or(ApiError::Internal)?;
        let principal = identify(&state, credential).await?;
        // The audit log reads who it was once the response is known, refused or not.
        req.extensions_mut().insert(principal.clone());
        if principal.scope < needed {
            return Err(ApiError::InsufficientScope { needed });
        }
        let tenant = match acts {
            Acts::AsNamed => acting_for(&state, &principal, &req).await?,
            Acts::AsItself => principal.tenant.clone(),
        };
        count_request(&state, &tenant, &req).await?;
        Ok(tenant)
    })
}

/// Whether a route honours the `Hookhub-Tenant` header.
#[derive(Clone, Copy)]
enum Acts {
    /// Tenant routes: for the tenant the header names, if it names one.
    AsNamed,
    /// Platform routes: for the platform itself, which names its tenants in the path.
    AsItself,
}

/// The header naming the tenant a platform's credential acts for.
pub const TENANT_HEADER: &str = "hookhub-tenant";

/// The tenant the request acts for: the credential's own, or the one the
/// `Hookhub-Tenant` header names (its `ten_…` id or the platform's
/// external id). A platform credential may name any tenant of its
/// platform; any other credential only its own tenant, and another is
/// not found, exactly as another tenant's resource is.
async fn acting_for(state: &AppState, principal: &Principal, req: &HttpRequest) -> Result<Tenant, ApiError> {
    let Some(named) = req.headers().get(TENANT_HEADER) else {
        return Ok(principal.tenant.clone());
    };
    let named = named.to_str().map_err(|_| ApiError::NotFound("tenant"))?.trim();
    let tenant = resolve(state, principal, named).await?;
    if tenant.id != principal.tenant.id {
        acted_for(req, vec![tenant.id.clone()]);
    }
    Ok(tenant)
}

/// The tenant `named` (a `ten_…` id or an external id) as the credential
/// of `principal` may reach it: its own, or for a platform credential any
/// tenant of its platform; anything else is not found.
async fn resolve(state: &AppState, principal: &Principal, named: &str) -> Result<Tenant, ApiError> {
    let own = &principal.tenant;
    if named == own.id.as_str() || own.external_id.as_deref() == Some(named) {
        return Ok(own.clone());
    }
    if principal.scope < Scope::Platform || !own.is_platform {
        return Err(ApiError::NotFound("tenant"));
    }
    Ok(state.store.managed_tenant(&own.id, named).await?.tenant)
}

/// The tenant `named`, as the caller of this (authenticated) request may
/// reach it; for routes that name tenants in their body (batch ingest).
pub(crate) async fn tenant_named(state: &AppState, req: &HttpRequest, named: &str) -> Result<Tenant, ApiError> {
    let principal = req.extensions().get::<Principal>().cloned().ok_or(ApiError::Unauthorized)?;
    resolve(state, &principal, named).await
}

/// Files this request in the audit log under `tenants` (one row each),
/// naming the caller's platform.
pub(crate) fn acted_for(req: &HttpRequest, tenants: Vec<TenantId>) {
    req.extensions_mut().insert(ActingFor(tenants));
}

/// The scope of the credential that made this request (`read` before it
/// was identified): routes that grant scopes grant no more than that.
pub(crate) fn caller_scope(req: &HttpRequest) -> Scope {
    req.extensions().get::<Principal>().map_or(Scope::Read, |p| p.scope)
}

/// The platform a request comes from: its credential must carry the
/// `platform` scope, and it acts for the platform itself (the tenants it
/// manages are named in the path, not in the header).
pub struct Platform(pub Tenant);

/// An extractor of the tenant acted for, needing a fixed scope.
macro_rules! scoped_extractor {
    ($name:ident, $scope:expr, $acts:expr) => {
        impl FromRequest for $name {
            type Error = ApiError;
            type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

            fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
                let fut = extract(req, $scope, $acts);
                Box::pin(async move { fut.await.map(Self) })
            }
        }
    };
}

scoped_extractor!(Platform, Scope::Platform, Acts::AsItself);
scoped_extractor!(Admin, Scope::Admin, Acts::AsNamed);
scoped_extractor!(Writer, Scope::Write, Acts::AsNamed);

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
        let fut = extract(req, needed, Acts::AsNamed);
        Box::pin(async move { fut.await.map(Self) })
    }
}
