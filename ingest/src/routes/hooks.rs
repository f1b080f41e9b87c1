//! Zapier / Make REST Hooks: subscribe, unsubscribe, and sample data.
//!
//! A REST hook is an ordinary subscription underneath, so signing, retries,
//! attempts and `410 Gone` handling all apply.
use super::IdPath;
use crate::auth::Authenticated;
use crate::{ApiError, AppState};
use actix_web::{web, HttpResponse};
use hookhub_store::domain::{
    example_from_schema, now, EndpointUrl, EventType, EventTypeFilter, OrderingPolicy, SubscriptionId,
    SubscriptionStatus, WebhookBody,
};
use hookhub_store::repo::{EventTypeInfo, NewSubscription};
use hookhub_store::StoreError;
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

/// The body of every delivery, and of each sample.
#[derive(ToSchema)]
#[schema(as = WebhookBody)]
#[allow(dead_code)] // documents `hookhub_store::domain::WebhookBody`, which writes these fields
pub(crate) struct WebhookBodyDoc {
    /// The event id, equal to the `webhook-id` header; the same on every retry (deduplicate on it).
    #[schema(example = "evt_01jdx4k7m2v9c3q8r5t6y7z8a9")]
    id: String,
    /// The event type.
    #[schema(example = "appointment.booked")]
    r#type: String,
    /// When the hub accepted the event (RFC 3339, UTC, milliseconds).
    timestamp: chrono::DateTime<chrono::Utc>,
    /// The event's data; its schema per type is in `GET /v1/event-types`.
    #[schema(value_type = Object)]
    data: serde_json::Value,
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
        programs: Default::default(),
        ordering: OrderingPolicy::default(),
    };
    let sub = state.store.create_subscription(&tenant.id, new).await?;
    let secret = sub.secret.expose();
    Ok(HttpResponse::Created().json(HookCreated { id: sub.id, target_url: sub.url, event, secret }))
}

/// `DELETE /v1/hooks/{id}` → 204, also when there is no such hook (any
/// more): Zapier and Make unsubscribe when a user turns a Zap or scenario
/// off, and the hook may be gone already (deleted by hand, or purged after
/// its endpoint answered `410 Gone`); an error there would be the user's.
#[utoipa::path(operation_id = "unsubscribe_rest_hook", delete, path = "/v1/hooks/{id}", tag = "integrations", params(IdPath),
    responses((status = 204, description = "Unsubscribed, or there was no such hook")), security(("bearer" = ["write"])))]
pub async fn unsubscribe(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    // A malformed id names no hook either.
    if let Ok(id) = id.parse::<SubscriptionId>() {
        match state.store.delete_subscription(&tenant.id, &id).await {
            Ok(()) | Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(HttpResponse::NoContent().finish())
}

/// The `data` of a type's sample event: its example, or one generated
/// from its schema, or `{}`.
pub(crate) fn example_data(info: &EventTypeInfo) -> Value {
    info.example.clone().unwrap_or_else(|| {
        let generated = info.schema.as_ref().map(example_from_schema).unwrap_or_default();
        if generated.is_object() {
            generated
        } else {
            json!({})
        }
    })
}

/// The query of `samples`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SamplesQuery {
    /// The event type to sample, or `*` for every type (as a hook subscribed with `event: "*"` gets).
    #[param(value_type = String, required = true, example = "appointment.booked",
        pattern = r"^(\*|[a-z0-9_]+(\.[a-z0-9_]+)+)$")]
    event: Option<String>,
}

/// `GET /v1/hooks/samples?event=...`: a JSON array, newest first, of the
/// tenant's recent events of that type (`*`: of any type), each exactly as
/// a delivery's body carries it. With none yet, the type's example (or one
/// generated from its schema) in that same shape, so a user can map fields
/// before the first real event.
#[utoipa::path(operation_id = "list_rest_hook_samples", get, path = "/v1/hooks/samples", tag = "integrations", params(SamplesQuery),
    responses((status = 200, description = "Recent events as deliveries carry them", body = Vec<WebhookBodyDoc>),
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
    let event_type: Option<EventType> = match raw {
        "*" => None,
        raw => Some(
            raw.parse().map_err(|e| ApiError::BadRequest { code: "invalid_query", message: format!("event: {e}") })?,
        ),
    };
    let recent = state.store.recent_events(&tenant.id, event_type.as_ref(), SAMPLES).await?;
    let mut out: Vec<Value> = recent.iter().map(|e| json!(WebhookBody::of(e))).collect();
    if out.is_empty() {
        let types = match &event_type {
            Some(t) => {
                vec![state.store.event_type(&tenant.id, t.as_str()).await?.ok_or(ApiError::NotFound("event type"))?]
            }
            None => state.store.list_event_types(&tenant.id).await?.into_iter().take(SAMPLES as usize).collect(),
        };
        let at = now();
        for info in &types {
            let data = example_data(info);
            let id = format!("evt_sample_{}", info.name.replace('.', "_"));
            out.push(json!(WebhookBody::new(&id, &info.name, at, &data)));
        }
    }
    Ok(HttpResponse::Ok().json(out))
}
