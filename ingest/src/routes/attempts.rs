//! Attempts logs: `/v1/events/{id}/attempts` and `/v1/subscriptions/{id}/attempts`.
use super::{path_id, IdPath};
use crate::auth::Authenticated;
use crate::pagination::{ListBody, PageQuery};
use crate::{ApiError, AppState};
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use hookhub_store::domain::{AttemptOutcome, EventId, SubscriptionId};
use hookhub_store::repo::{Attempt, AttemptsOf};
use serde::Serialize;

/// One attempt as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AttemptBody {
    id: String,
    event_id: String,
    subscription_id: String,
    delivery_id: String,
    attempt_number: i32,
    attempted_at: DateTime<Utc>,
    status_code: Option<i32>,
    latency_ms: i64,
    outcome: AttemptOutcome,
    error: Option<String>,
    response_body: Option<String>,
}

impl From<Attempt> for AttemptBody {
    fn from(a: Attempt) -> Self {
        Self {
            id: a.id.to_string(),
            event_id: a.event_id.to_string(),
            subscription_id: a.subscription_id.to_string(),
            delivery_id: a.delivery_id.to_string(),
            attempt_number: a.attempt_number,
            attempted_at: a.attempted_at,
            status_code: a.status_code,
            latency_ms: a.latency_ms,
            outcome: a.outcome,
            error: a.error,
            response_body: a.response_body,
        }
    }
}

async fn list(
    state: &AppState,
    tenant: &hookhub_store::repo::Tenant,
    of: AttemptsOf<'_>,
    query: &PageQuery,
) -> Result<HttpResponse, ApiError> {
    let page = state.store.list_attempts(&tenant.id, of, &query.to_request()?).await?;
    Ok(HttpResponse::Ok().json(ListBody::from_page(page, AttemptBody::from)))
}

/// `GET /v1/events/{id}/attempts`: every delivery attempt of an event, newest first.
#[utoipa::path(operation_id = "list_event_attempts", get, path = "/v1/events/{id}/attempts", tag = "events", params(IdPath, PageQuery),
    responses((status = 200, body = ListBody<AttemptBody>)), security(("bearer" = ["read"])))]
pub async fn of_event(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    id: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let id: EventId = path_id(&id, "event")?;
    list(&state, &tenant, AttemptsOf::Event(&id), &query).await
}

/// `GET /v1/subscriptions/{id}/attempts`: every attempt to one endpoint, newest first.
#[utoipa::path(operation_id = "list_subscription_attempts", get, path = "/v1/subscriptions/{id}/attempts", tag = "subscriptions", params(IdPath, PageQuery),
    responses((status = 200, body = ListBody<AttemptBody>)), security(("bearer" = ["read"])))]
pub async fn of_subscription(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    id: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let id: SubscriptionId = path_id(&id, "subscription")?;
    list(&state, &tenant, AttemptsOf::Subscription(&id), &query).await
}
