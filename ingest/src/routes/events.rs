//! `/v1/events`: ingest, inspect and redeliver events.
use super::{path_id, IdPath};
use crate::auth::Authenticated;
use crate::body::{OptionalJson, StrictJson};
use crate::error::FieldError;
use crate::input::{nul_free, nul_free_json};
use crate::pagination::{ListBody, PageQuery};
use crate::{ApiError, AppState};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use hookhub_store::domain::{
    DeliveryStatus, EventId, EventType, IdempotencyKey, KeyNamespace, OrderingKey, SubscriptionId, TenantId,
};
use hookhub_store::repo::{Delivery, Event, NewEvent};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

const MAX_IDEMPOTENCY_KEY: usize = 255;

/// The body of `POST /v1/events`. Fields are loosely typed here so that
/// every problem is reported by field name, not by serde's first message.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct IngestBody {
    /// The event type, `resource.action`.
    #[schema(value_type = EventType, required = true)]
    r#type: Option<serde_json::Value>,
    /// The event's facts (a JSON object; keep PHI out, send references).
    #[schema(value_type = Object, required = true)]
    data: Option<serde_json::Value>,
    /// A repeat with the same key answers with the original event (also as the `Idempotency-Key` header).
    #[schema(value_type = Option<String>, min_length = 1, max_length = 255)]
    idempotency_key: Option<serde_json::Value>,
    /// What the event is about, such as `apt_42`: subscriptions with
    /// `ordering: "per_key"` get the events of one key in ingest order.
    /// Letters, digits and `_ - . :`, up to 128 bytes; an id, never personal data.
    #[schema(value_type = Option<String>, min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]+$", example = "apt_42")]
    ordering_key: Option<serde_json::Value>,
}

impl IngestBody {
    /// Validates every field, reporting all problems at once. The key may
    /// also come as an `Idempotency-Key` header, as in Stripe's API; it is
    /// kept only as its digest in the tenant's API namespace.
    pub(crate) fn check(self, header_key: Option<&str>, tenant: &TenantId) -> Result<NewEvent, ApiError> {
        let mut errors = Vec::new();
        let event_type = match self.r#type {
            Some(serde_json::Value::String(t)) => {
                t.parse::<EventType>().map_err(|e| errors.push(FieldError::new("type", e))).ok()
            }
            Some(_) => {
                errors.push(FieldError::new("type", "must be a string"));
                None
            }
            None => {
                errors.push(FieldError::new("type", "is required, like \"appointment.booked\""));
                None
            }
        };
        let data = match self.data {
            Some(v @ serde_json::Value::Object(_)) => {
                nul_free_json("data", &v).map_err(|e| errors.push(e)).ok().map(|()| v)
            }
            Some(_) => {
                errors.push(FieldError::new("data", "must be a JSON object"));
                None
            }
            None => {
                errors.push(FieldError::new("data", "is required (a JSON object)"));
                None
            }
        };
        let key = match (self.idempotency_key, header_key) {
            (Some(serde_json::Value::String(k)), _) => Some(k),
            (Some(serde_json::Value::Null) | None, Some(h)) => Some(h.to_owned()),
            (Some(serde_json::Value::Null) | None, None) => None,
            (Some(_), _) => {
                errors.push(FieldError::new("idempotency_key", "must be a string"));
                None
            }
        };
        if key.as_ref().is_some_and(|k| k.is_empty() || k.len() > MAX_IDEMPOTENCY_KEY) {
            errors.push(FieldError::new("idempotency_key", format!("must be 1 to {MAX_IDEMPOTENCY_KEY} bytes")));
        }
        if let Some(Err(e)) = key.as_deref().map(|k| nul_free("idempotency_key", k)) {
            errors.push(e);
        }
        let ordering_key = match self.ordering_key {
            Some(serde_json::Value::String(k)) => {
                k.parse::<OrderingKey>().map_err(|e| errors.push(FieldError::new("ordering_key", e))).ok()
            }
            Some(serde_json::Value::Null) | None => None,
            Some(_) => {
                errors.push(FieldError::new("ordering_key", "must be a string, like \"apt_42\""));
                None
            }
        };
        match (event_type, data) {
            (Some(event_type), Some(data)) if errors.is_empty() => {
                let idempotency_key = key.map(|k| IdempotencyKey::new(tenant, &KeyNamespace::Api, &k));
                Ok(NewEvent { event_type, data, idempotency_key, ordering_key })
            }
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

/// An event as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct EventBody {
    #[schema(example = "evt_01JD6F0Q6A8Y3W5Z7X9B1C2D3E")]
    id: String,
    #[schema(example = "appointment.booked")]
    r#type: String,
    #[schema(value_type = Object)]
    data: serde_json::Value,
    created_at: DateTime<Utc>,
    /// What its deliveries to ordered subscriptions keep order by, if it has a key.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "apt_42")]
    ordering_key: Option<OrderingKey>,
    /// Where the event stands with each subscription (only on `GET /v1/events/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    deliveries: Option<Vec<DeliveryBody>>,
}

impl From<Event> for EventBody {
    fn from(e: Event) -> Self {
        Self {
            id: e.id.to_string(),
            r#type: e.event_type.to_string(),
            data: e.data,
            created_at: e.created_at,
            ordering_key: e.ordering_key,
            deliveries: None,
        }
    }
}

/// Where one event stands with one subscription.
#[derive(Serialize, ToSchema)]
pub struct DeliveryBody {
    subscription_id: String,
    status: DeliveryStatus,
    attempts: i32,
    next_attempt_at: Option<DateTime<Utc>>,
    last_status_code: Option<i32>,
    last_error: Option<String>,
    updated_at: DateTime<Utc>,
}

impl From<Delivery> for DeliveryBody {
    fn from(d: Delivery) -> Self {
        Self {
            subscription_id: d.subscription_id.to_string(),
            status: d.status,
            attempts: d.attempt_count,
            next_attempt_at: d.next_attempt_at,
            last_status_code: d.last_status_code,
            last_error: d.last_error,
            updated_at: d.updated_at,
        }
    }
}

/// What `POST /v1/events` answers.
#[derive(Serialize, ToSchema)]
pub struct AcceptedBody {
    #[schema(value_type = String)]
    id: EventId,
    r#type: EventType,
    created_at: DateTime<Utc>,
}

/// `POST /v1/events` → 202 `{id, type, created_at}`; a repeated idempotency
/// key answers with the original event and `Idempotent-Replayed: true`.
#[utoipa::path(operation_id = "create_event", post, path = "/v1/events", tag = "events", request_body = IngestBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Same as `idempotency_key` in the body")),
    responses((status = 202, description = "Accepted: written with its outbox row in one transaction", body = AcceptedBody,
        headers(("Idempotent-Replayed" = bool, description = "`true` when the key was seen before"))), crate::backlog_guard::Refused),
    security(("bearer" = ["write"])))]
pub async fn ingest(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    req: HttpRequest,
    StrictJson(body): StrictJson<IngestBody>,
) -> Result<HttpResponse, ApiError> {
    let header_key = req.headers().get("idempotency-key").and_then(|v| v.to_str().ok());
    let new = body.check(header_key, &tenant.id)?;
    state.admit_event(&tenant.id)?;
    // The type's validation setting is read in the ingest transaction itself.
    let outcome = state.store.ingest_checked_event(&tenant.id, new, super::event_types::check_data).await??;
    if !outcome.replayed {
        state.event_accepted(&tenant.id);
    }
    let event = outcome.event;
    Ok(HttpResponse::Accepted()
        .insert_header(("Idempotent-Replayed", outcome.replayed.to_string()))
        .json(AcceptedBody { id: event.id, r#type: event.event_type, created_at: event.created_at }))
}

/// `GET /v1/events`: the tenant's events, newest first.
#[utoipa::path(operation_id = "list_events", get, path = "/v1/events", tag = "events", params(PageQuery),
    responses((status = 200, body = ListBody<EventBody>)), security(("bearer" = ["read"])))]
pub async fn list(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = state.store.list_events(&tenant.id, &query.to_request()?).await?;
    Ok(HttpResponse::Ok().json(ListBody::from_page(page, EventBody::from)))
}

/// `GET /v1/events/{id}`: the event and its delivery status per subscription.
#[utoipa::path(operation_id = "get_event", get, path = "/v1/events/{id}", tag = "events", params(IdPath),
    responses((status = 200, body = EventBody)), security(("bearer" = ["read"])))]
pub async fn get(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: EventId = path_id(&id, "event")?;
    let event = state.store.event(&tenant.id, &id).await?;
    let deliveries = state.store.event_deliveries(&tenant.id, &id).await?;
    let mut body = EventBody::from(event);
    body.deliveries = Some(deliveries.into_iter().map(DeliveryBody::from).collect());
    Ok(HttpResponse::Ok().json(body))
}

/// The optional body of a redeliver.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeliverBody {
    /// Only to this subscription (default: every subscription the event matched).
    subscription_id: Option<String>,
}

/// The deliveries a redeliver queued.
#[derive(Serialize, ToSchema)]
pub struct RedeliveredBody {
    #[schema(value_type = Vec<String>)]
    deliveries: Vec<hookhub_store::domain::DeliveryId>,
}

/// `POST /v1/events/{id}/redeliver` → 202 `{deliveries: [...]}`; optionally
/// to one subscription only.
#[utoipa::path(operation_id = "redeliver_event", post, path = "/v1/events/{id}/redeliver", tag = "events",
    params(IdPath), request_body(content = Option<RedeliverBody>),
    responses((status = 202, body = RedeliveredBody),
        (status = 409, description = "The subscription named is disabled", body = crate::error::ErrorBody)),
    security(("bearer" = ["write"])))]
pub async fn redeliver(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    id: web::Path<String>,
    OptionalJson(body): OptionalJson<RedeliverBody>,
) -> Result<HttpResponse, ApiError> {
    let id: EventId = path_id(&id, "event")?;
    let only: Option<SubscriptionId> = match body.and_then(|b| b.subscription_id) {
        Some(raw) => Some(path_id(&raw, "subscription")?),
        None => None,
    };
    let ids = state.store.redeliver(&tenant.id, &id, only.as_ref()).await?;
    Ok(HttpResponse::Accepted().json(RedeliveredBody { deliveries: ids }))
}
