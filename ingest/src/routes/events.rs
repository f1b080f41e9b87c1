//! `/v1/events`: ingest, inspect and redeliver events.
use super::path_id;
use crate::auth::Authenticated;
use crate::error::FieldError;
use crate::pagination::{ListBody, PageQuery};
use crate::{ApiError, AppState};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use hookhub_store::domain::{DeliveryStatus, EventId, EventType, SubscriptionId};
use hookhub_store::repo::{Delivery, Event, NewEvent};
use serde::{Deserialize, Serialize};

const MAX_IDEMPOTENCY_KEY: usize = 255;

/// The body of `POST /v1/events`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IngestBody {
    r#type: Option<serde_json::Value>,
    data: Option<serde_json::Value>,
    idempotency_key: Option<serde_json::Value>,
}

impl IngestBody {
    /// Validates every field, reporting all problems at once. The key may
    /// also come as an `Idempotency-Key` header, as in Stripe's API.
    pub(crate) fn check(self, header_key: Option<&str>) -> Result<NewEvent, ApiError> {
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
            Some(v @ serde_json::Value::Object(_)) => Some(v),
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
        match (event_type, data) {
            (Some(event_type), Some(data)) if errors.is_empty() => {
                Ok(NewEvent { event_type, data, idempotency_key: key })
            }
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

/// An event as the API shows it.
#[derive(Serialize)]
pub struct EventBody {
    id: String,
    r#type: String,
    data: serde_json::Value,
    idempotency_key: Option<String>,
    created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deliveries: Option<Vec<DeliveryBody>>,
}

impl From<Event> for EventBody {
    fn from(e: Event) -> Self {
        Self {
            id: e.id.to_string(),
            r#type: e.event_type.to_string(),
            data: e.data,
            idempotency_key: e.idempotency_key,
            created_at: e.created_at,
            deliveries: None,
        }
    }
}

/// Where one event stands with one subscription.
#[derive(Serialize)]
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

/// `POST /v1/events` → 202 `{id, type, created_at}`; a repeated idempotency
/// key answers with the original event and `Idempotent-Replayed: true`.
pub async fn ingest(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    req: HttpRequest,
    body: web::Json<IngestBody>,
) -> Result<HttpResponse, ApiError> {
    let header_key = req.headers().get("idempotency-key").and_then(|v| v.to_str().ok());
    let new = body.into_inner().check(header_key)?;
    // The type's validation setting is read in the ingest transaction itself.
    let outcome = state.store.ingest_checked_event(&tenant.id, new, super::event_types::check_data).await??;
    if !outcome.replayed {
        state.event_accepted();
    }
    let event = outcome.event;
    Ok(HttpResponse::Accepted().insert_header(("Idempotent-Replayed", outcome.replayed.to_string())).json(
        serde_json::json!({
            "id": event.id,
            "type": event.event_type,
            "created_at": event.created_at,
        }),
    ))
}

/// `GET /v1/events`.
pub async fn list(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = state.store.list_events(&tenant.id, &query.to_request()?).await?;
    Ok(HttpResponse::Ok().json(ListBody::from_page(page, EventBody::from)))
}

/// `GET /v1/events/{id}`: the event and its delivery status per subscription.
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
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RedeliverBody {
    subscription_id: Option<String>,
}

/// `POST /v1/events/{id}/redeliver` → 202 `{deliveries: [...]}`; optionally
/// to one subscription only.
pub async fn redeliver(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    id: web::Path<String>,
    body: Option<web::Json<RedeliverBody>>,
) -> Result<HttpResponse, ApiError> {
    let id: EventId = path_id(&id, "event")?;
    let only: Option<SubscriptionId> = match body.and_then(|b| b.into_inner().subscription_id) {
        Some(raw) => Some(path_id(&raw, "subscription")?),
        None => None,
    };
    let ids = state.store.redeliver(&tenant.id, &id, only.as_ref()).await?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({ "deliveries": ids })))
}
