//! `/v1/subscriptions`: where a tenant's events go.
use super::path_id;
use crate::auth::Authenticated;
use crate::error::FieldError;
use crate::pagination::{ListBody, PageQuery};
use crate::{ApiError, AppState};
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use hookhub_store::domain::{EndpointUrl, EventTypeFilter, SubscriptionId, SubscriptionStatus};
use hookhub_store::repo::{NewSubscription, Subscription, SubscriptionPatch};
use serde::{Deserialize, Serialize};

const MAX_DESCRIPTION: usize = 1024;

/// A subscription as the API shows it (never with its secret).
#[derive(Serialize)]
pub struct SubscriptionBody {
    id: String,
    url: String,
    description: String,
    event_types: Vec<String>,
    status: SubscriptionStatus,
    disabled_reason: Option<String>,
    rate_limit_per_second: Option<u32>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Subscription> for SubscriptionBody {
    fn from(s: Subscription) -> Self {
        Self {
            id: s.id.to_string(),
            url: s.url,
            description: s.description,
            event_types: s.event_types.to_strings(),
            status: s.status,
            disabled_reason: s.disabled_reason,
            rate_limit_per_second: s.rate_limit_per_second,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// Fields of a create or update; all optional so that missing ones are
/// reported by name rather than by serde's message.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionFields {
    url: Option<String>,
    event_types: Option<Vec<String>>,
    description: Option<String>,
    status: Option<String>,
    #[serde(default, deserialize_with = "present")]
    rate_limit_per_second: Option<Option<u32>>,
}

/// Tells an explicit `null` (remove the limit) from an absent field.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<u32>>, D::Error> {
    Option::<u32>::deserialize(d).map(Some)
}

const MAX_RATE: u32 = 10_000;

struct Checked {
    url: Option<EndpointUrl>,
    event_types: Option<EventTypeFilter>,
    description: Option<String>,
    status: Option<SubscriptionStatus>,
    rate_limit_per_second: Option<Option<u32>>,
}

impl SubscriptionFields {
    /// Validates every present field, collecting all errors at once.
    fn check(self, allow_http: bool) -> Result<Checked, ApiError> {
        let mut errors = Vec::new();
        let url = self.url.and_then(|u| {
            EndpointUrl::parse(u.trim(), allow_http).map_err(|e| errors.push(FieldError::new("url", e))).ok()
        });
        let event_types = self.event_types.and_then(|t| {
            EventTypeFilter::parse(&t)
                .map_err(|e| errors.push(FieldError::new("event_types", format!("{e}; or [\"*\"] for every type"))))
                .ok()
        });
        if self.description.as_ref().is_some_and(|d| d.chars().count() > MAX_DESCRIPTION) {
            errors.push(FieldError::new("description", format!("at most {MAX_DESCRIPTION} characters")));
        }
        let status = match self.status.as_deref() {
            None => None,
            Some("active") => Some(SubscriptionStatus::Active),
            Some("disabled") => Some(SubscriptionStatus::Disabled),
            Some(_) => {
                errors.push(FieldError::new("status", "must be \"active\" or \"disabled\""));
                None
            }
        };
        if let Some(Some(rate)) = self.rate_limit_per_second {
            if !(1..=MAX_RATE).contains(&rate) {
                errors
                    .push(FieldError::new("rate_limit_per_second", format!("from 1 to {MAX_RATE}, or null for none")));
            }
        }
        if errors.is_empty() {
            Ok(Checked {
                url,
                event_types,
                description: self.description,
                status,
                rate_limit_per_second: self.rate_limit_per_second,
            })
        } else {
            Err(ApiError::Validation(errors))
        }
    }
}

/// `POST /v1/subscriptions` → 201 with the secret, shown here and at `/secret`.
pub async fn create(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    body: web::Json<SubscriptionFields>,
) -> Result<HttpResponse, ApiError> {
    let checked = body.into_inner().check(state.allow_http_endpoints)?;
    let mut missing = Vec::new();
    if checked.url.is_none() {
        missing.push(FieldError::new("url", "is required"));
    }
    if checked.event_types.is_none() {
        missing.push(FieldError::new("event_types", "is required: a list of event types, or [\"*\"]"));
    }
    if checked.status.is_some() {
        missing.push(FieldError::new("status", "is set with PATCH, not at creation"));
    }
    let (Some(url), Some(event_types), true) = (checked.url, checked.event_types, missing.is_empty()) else {
        return Err(ApiError::Validation(missing));
    };
    let new = NewSubscription {
        url,
        event_types,
        description: checked.description.unwrap_or_default(),
        rate_limit_per_second: checked.rate_limit_per_second.flatten(),
    };
    let sub = state.store.create_subscription(&tenant.id, new).await?;
    let secret = sub.secret.expose();
    let mut body = serde_json::to_value(SubscriptionBody::from(sub)).map_err(|_| ApiError::Internal)?;
    body["secret"] = secret.into();
    Ok(HttpResponse::Created().json(body))
}

/// `GET /v1/subscriptions`.
pub async fn list(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = state.store.list_subscriptions(&tenant.id, &query.to_request()?).await?;
    Ok(HttpResponse::Ok().json(ListBody::from_page(page, SubscriptionBody::from)))
}

/// `GET /v1/subscriptions/{id}`.
pub async fn get(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: SubscriptionId = path_id(&id, "subscription")?;
    let sub = state.store.subscription(&tenant.id, &id).await?;
    Ok(HttpResponse::Ok().json(SubscriptionBody::from(sub)))
}

/// `GET /v1/subscriptions/{id}/secret`: `{"secret": "whsec_..."}`.
pub async fn secret(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: SubscriptionId = path_id(&id, "subscription")?;
    let sub = state.store.subscription(&tenant.id, &id).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "secret": sub.secret.expose() })))
}

/// `PATCH /v1/subscriptions/{id}`: change url, event types, description or status.
pub async fn update(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    id: web::Path<String>,
    body: web::Json<SubscriptionFields>,
) -> Result<HttpResponse, ApiError> {
    let id: SubscriptionId = path_id(&id, "subscription")?;
    let checked = body.into_inner().check(state.allow_http_endpoints)?;
    let patch = SubscriptionPatch {
        url: checked.url,
        event_types: checked.event_types,
        description: checked.description,
        status: checked.status,
        rate_limit_per_second: checked.rate_limit_per_second,
    };
    let sub = state.store.update_subscription(&tenant.id, &id, patch).await?;
    Ok(HttpResponse::Ok().json(SubscriptionBody::from(sub)))
}

/// `DELETE /v1/subscriptions/{id}` → 204; pending deliveries stop.
pub async fn delete(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: SubscriptionId = path_id(&id, "subscription")?;
    state.store.delete_subscription(&tenant.id, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The body of a rotation.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RotateBody {
    grace_period_secs: Option<u32>,
}

/// Default overlap of old and new secret after a rotation.
const DEFAULT_GRACE_SECS: u32 = 24 * 3600;

/// `POST /v1/subscriptions/{id}/secret/rotate` `{grace_period_secs?}` → the new
/// `{secret}`; until the grace period ends deliveries carry both signatures.
pub async fn rotate_secret(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    id: web::Path<String>,
    body: Option<web::Json<RotateBody>>,
) -> Result<HttpResponse, ApiError> {
    let id: SubscriptionId = path_id(&id, "subscription")?;
    let grace = body.and_then(|b| b.into_inner().grace_period_secs).unwrap_or(DEFAULT_GRACE_SECS);
    if grace > 7 * 24 * 3600 {
        return Err(ApiError::field("grace_period_secs", "at most 7 days"));
    }
    let sub = state.store.rotate_secret(&tenant.id, &id, chrono::Duration::seconds(i64::from(grace))).await?;
    let until = sub.previous_secret.as_ref().map(|(_, until)| *until);
    Ok(HttpResponse::Ok().json(serde_json::json!({ "secret": sub.secret.expose(), "previous_valid_until": until })))
}

/// `POST /v1/subscriptions/{id}/enable`: back on after the breaker (or its owner) disabled it.
pub async fn enable(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: SubscriptionId = path_id(&id, "subscription")?;
    let patch = SubscriptionPatch { status: Some(SubscriptionStatus::Active), ..SubscriptionPatch::default() };
    let sub = state.store.update_subscription(&tenant.id, &id, patch).await?;
    Ok(HttpResponse::Ok().json(SubscriptionBody::from(sub)))
}

/// The query of a recovery.
#[derive(Deserialize)]
pub struct RecoverQuery {
    since: Option<String>,
}

/// `POST /v1/subscriptions/{id}/recover?since=RFC3339` → 202 `{requeued}`:
/// resend what failed while the endpoint was down.
pub async fn recover(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    id: web::Path<String>,
    query: web::Query<RecoverQuery>,
) -> Result<HttpResponse, ApiError> {
    let id: SubscriptionId = path_id(&id, "subscription")?;
    let since = query.since.as_deref().ok_or_else(|| ApiError::BadRequest {
        code: "invalid_query",
        message: "`since` (RFC 3339) is required".into(),
    })?;
    let since = DateTime::parse_from_rfc3339(since)
        .map_err(|e| ApiError::BadRequest { code: "invalid_query", message: format!("since: {e}") })?;
    let requeued = state.store.recover_subscription(&tenant.id, &id, since.to_utc()).await?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({ "requeued": requeued })))
}
