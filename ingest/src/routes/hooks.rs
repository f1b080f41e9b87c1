//! Zapier / Make REST Hooks: subscribe, unsubscribe, and sample data.
//!
//! A REST hook is an ordinary subscription underneath, so signing, retries,
//! attempts and `410 Gone` handling all apply.
use super::path_id;
use crate::auth::Authenticated;
use crate::{ApiError, AppState};
use actix_web::{web, HttpResponse};
use hookhub_dispatcher::payload::webhook_body;
use hookhub_store::domain::{now, EndpointUrl, EventType, EventTypeFilter, SubscriptionId};
use hookhub_store::repo::NewSubscription;
use serde::Deserialize;
use serde_json::{json, Value};

/// How many recent events `samples` returns.
const SAMPLES: u64 = 3;

/// A subscribe call. Zapier sends `target_url`; other tools say `hookUrl` or `url`.
#[derive(Deserialize)]
pub struct HookBody {
    target_url: Option<String>,
    #[serde(rename = "hookUrl")]
    hook_url: Option<String>,
    url: Option<String>,
    event: Option<String>,
}

/// `POST /v1/hooks` `{target_url, event}` → 201 `{id, target_url, event, secret}`.
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
    let event = body.event.ok_or_else(|| ApiError::field("event", "is required, like \"appointment.booked\""))?;
    let event_types = EventTypeFilter::parse(std::slice::from_ref(&event))
        .map_err(|e| ApiError::field("event", format!("{e}; or \"*\"")))?;
    let new = NewSubscription { url, event_types, description: "REST hook".into(), rate_limit_per_second: None };
    let sub = state.store.create_subscription(&tenant.id, new).await?;
    Ok(HttpResponse::Created().json(json!({
        "id": sub.id,
        "target_url": sub.url,
        "event": event,
        "secret": sub.secret.expose(),
    })))
}

/// `DELETE /v1/hooks/{id}` → 204.
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
#[derive(Deserialize)]
pub struct SamplesQuery {
    event: Option<String>,
}

/// `GET /v1/hooks/samples?event=...`: a JSON array, newest first, of the
/// tenant's recent events of that type in the shape a delivery has (plus
/// `id`, which Zapier deduplicates on); the type's example if there are none.
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
