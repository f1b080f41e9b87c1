//! Zapier / Make REST Hooks: subscribe, unsubscribe, and sample data.
//!
//! A REST hook is an ordinary subscription underneath, so signing, retries,
//! attempts and `410 Gone` handling all apply.
use super::{path_id, IdPath};
use crate::auth::Authenticated;
use crate::{ApiError, AppState};
use actix_web::{web, HttpResponse};
use hookhub_dispatcher::payload::webhook_body;
use hookhub_store::domain::{now, EndpointUrl, EventType, EventTypeFilter, SubscriptionId, SubscriptionStatus};
use hookhub_store::repo::NewSubscription;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};

/// How many recent events `samples` returns.
const SAMPLES: u64 = 3;

/// A subscribe call. Zapier sends `target_url`; other tools say `hookUrl` or `url`.
#[derive(Deserialize, ToSchema)]
pub struct HookBody {
    /// Where to POST the events.
    #[schema(example = "https://hooks.zapier.com/hooks/standard/123/abc")]
    target_url: Option<String>,
    /// Same as `target_url`.
    #[serde(rename = "hookUrl")]
    hook_url: Option<String>,
    /// Same as `target_url`.
    url: Option<String>,
    /// One event type, or `*` for every type.
    #[schema(value_type = String, required = true, example = "appointment.booked",
        pattern = r"^(\*|[a-z0-9_]+(\.[a-z0-9_]+)+)$")]
    event: Option<String>,
}

/// A REST hook: what Zapier stores to unsubscribe later.
#[derive(Serialize, ToSchema)]
pub struct HookCreated {
    #[schema(value_type = String)]
    id: SubscriptionId,
    target_url: String,
    event: String,
    /// The Standard Webhooks signing secret of the deliveries.
    secret: String,
}

/// `POST /v1/hooks` `{target_url, event}` → 201 `{id, target_url, event, secret}`.
#[utoipa::path(operation_id = "subscribe_rest_hook", post, path = "/v1/hooks", tag = "integrations", request_body = HookBody,
    responses((status = 201, body = HookCreated)), security(("bearer" = ["write"])))]
pub async fn subscribe(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    body: web::Json<HookBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let raw_url = body
        .target_url
        .or(body.hook_url)
        .or(body.url)
        .ok_or_else(|| ApiError::field("target_url", "is required (also accepted as hookUrl or url)"))?;
    let url =
        EndpointUrl::parse(raw_url.trim(), state.allow_http_endpoints).map_err(|e| ApiError::field("target_url", e))?;
    state.check_endpoint(&url, "target_url").await?;
    let event = body.event.ok_or_else(|| ApiError::field("event", "is required, like \"appointment.booked\""))?;
    let event_types = EventTypeFilter::parse(std::slice::from_ref(&event))
        .map_err(|e| ApiError::field("event", format!("{e}; or \"*\"")))?;
    let new = NewSubscription {
        url,
        event_types,
        description: "REST hook".into(),
        rate_limit_per_second: None,
        status: SubscriptionStatus::Active,
    };
    let sub = state.store.create_subscription(&tenant.id, new).await?;
    let secret = sub.secret.expose();
    Ok(HttpResponse::Created().json(HookCreated { id: sub.id, target_url: sub.url, event, secret }))
}

/// `DELETE /v1/hooks/{id}` → 204.
#[utoipa::path(operation_id = "unsubscribe_rest_hook", delete, path = "/v1/hooks/{id}", tag = "integrations", params(IdPath),
    responses((status = 204, description = "Unsubscribed")), security(("bearer" = ["write"])))]
pub async fn unsubscribe(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: SubscriptionId = path_id(&id, "hook")?;
    state.store.delete_subscription(&tenant.id, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The query of `samples`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SamplesQuery {
    /// The event type to sample.
    #[param(value_type = EventType, required = true, example = "appointment.booked")]
    event: Option<String>,
}

/// `GET /v1/hooks/samples?event=...`: a JSON array, newest first, of the
/// tenant's recent events of that type in the shape a delivery has (plus
/// `id`, which Zapier deduplicates on); the type's example if there are none.
#[utoipa::path(operation_id = "list_rest_hook_samples", get, path = "/v1/hooks/samples", tag = "integrations", params(SamplesQuery),
    responses((status = 200, description = "Recent events as deliveries carry them", body = Vec<Object>),
        (status = 404, description = "The type is neither in the catalogue nor among the tenant's events",
            body = crate::error::ErrorBody)),
    security(("bearer" = ["read"])))]
pub async fn samples(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    query: web::Query<SamplesQuery>,
) -> Result<HttpResponse, ApiError> {
    let raw = query.event.as_deref().ok_or_else(|| ApiError::BadRequest {
        code: "invalid_query",
        message: "the `event` query parameter is required".into(),
    })?;
    let event_type: EventType =
        raw.parse().map_err(|e| ApiError::BadRequest { code: "invalid_query", message: format!("event: {e}") })?;
    let recent = state.store.recent_events(&tenant.id, &event_type, SAMPLES).await?;
    let mut out: Vec<Value> = Vec::with_capacity(recent.len());
    for event in &recent {
        let mut body: Value = serde_json::from_slice(&webhook_body(event)).map_err(|_| ApiError::Internal)?;
        body["id"] = json!(event.id);
        out.push(body);
    }
    if out.is_empty() {
        let info = state.store.event_type(&tenant.id, event_type.as_str()).await?;
        let info = info.ok_or(ApiError::NotFound("event type"))?;
        if let Some(example) = info.example {
            out.push(json!({
                "id": "evt_sample",
                "type": event_type,
                "timestamp": now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "data": example,
            }));
        }
    }
    Ok(HttpResponse::Ok().json(out))
}
