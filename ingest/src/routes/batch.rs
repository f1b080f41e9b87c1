//! `POST /v1/events/batch`: up to 1,000 events in one request, for
//! backfills and imports. A batch with a malformed event (one `POST
//! /v1/events` would refuse as invalid) is refused whole, with a 422 that
//! names each bad field by its index. Otherwise every event gets its own
//! answer (its index, and its id or why it was refused: unknown tenant,
//! suspended tenant, a tenant over its backlog bound, data failing its
//! type's schema, too large); the events of each tenant are written in one
//! transaction. A platform credential may name a tenant per event, so one
//! batch can cross tenants.
use crate::auth::{acted_for, tenant_named};
use crate::body::{declares_json, parse_json, read_limited_to};
use crate::error::FieldError;
use crate::routes::events::IngestBody;
use crate::{ApiError, AppState};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use chrono::{DateTime, Utc};
use hookhub_store::domain::{EventId, EventType, TenantId};
use hookhub_store::repo::{NewEvent, Tenant};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use utoipa::ToSchema;

/// The most events one batch may hold.
pub const MAX_BATCH_EVENTS: usize = 1_000;

/// The largest batch body: room for 1,000 events of 4 KiB each (one event
/// still may not exceed [`crate::MAX_BODY_BYTES`]).
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// The body of `POST /v1/events/batch`. Each event is read on its own, so
/// that a malformed one is refused with its index, not the whole batch.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    /// 1 to 1,000 events.
    #[schema(value_type = Vec<BatchItem>, min_items = 1, max_items = 1000)]
    events: Vec<Value>,
}

/// One event of a batch: an event as `POST /v1/events` takes it, and the
/// tenant it belongs to.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)] // never built: it documents what `BatchBody::events` holds
pub struct BatchItem {
    /// The tenant (`ten_...` id or external id); only a platform credential
    /// may name another tenant than the one the request acts for (the default).
    #[schema(example = "studio_123")]
    tenant: Option<String>,
    #[schema(inline)]
    #[serde(flatten)]
    event: IngestBody,
}

/// Field errors of the event at `index`, named from the body's root.
fn at_index(index: usize, errors: Vec<FieldError>) -> impl Iterator<Item = FieldError> {
    errors.into_iter().map(move |e| {
        let field = if e.field == "body" { format!("events[{index}]") } else { format!("events[{index}].{}", e.field) };
        FieldError { field, ..e }
    })
}

/// Splits one event of a batch into the tenant it names and the event,
/// checked as far as it can be without its tenant.
fn read_item(item: Value) -> Result<(Option<String>, IngestBody), ApiError> {
    if item.to_string().len() > crate::MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge { limit: crate::MAX_BODY_BYTES });
    }
    let Value::Object(mut fields) = item else {
        return Err(ApiError::field("body", "each event must be a JSON object"));
    };
    let tenant = match fields.remove("tenant") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) => Some(t),
        Some(_) => return Err(ApiError::field("tenant", "must be a string")),
    };
    let event = serde_json::from_value(Value::Object(fields)).map_err(|e| ApiError::field("body", e))?;
    Ok((tenant, event))
}

/// What became of one event of a batch.
#[derive(Serialize, ToSchema)]
pub struct BatchResult {
    /// Its position in `events`, from 0.
    index: usize,
    /// The HTTP status it would have had alone: 202, or an error's.
    status: u16,
    /// The event's id, when accepted.
    #[schema(value_type = Option<String>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<EventId>,
    /// Its tenant, when accepted.
    #[schema(value_type = Option<String>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant_id: Option<TenantId>,
    #[schema(value_type = Option<String>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    r#type: Option<EventType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_at: Option<DateTime<Utc>>,
    /// Whether its idempotency key was seen before (the original event's id is given).
    #[serde(skip_serializing_if = "Option::is_none")]
    replayed: Option<bool>,
    /// The error's machine-readable code, when refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'static str>,
    /// The error, for people, when refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    /// Every invalid field, for `validation_failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<Vec<FieldError>>,
}

impl BatchResult {
    fn refused(index: usize, error: ApiError) -> Self {
        Self {
            index,
            status: error.status_code().as_u16(),
            id: None,
            tenant_id: None,
            r#type: None,
            created_at: None,
            replayed: None,
            code: Some(error.code()),
            message: Some(error.to_string()),
            errors: match error {
                ApiError::Validation(errors) => Some(errors),
                _ => None,
            },
        }
    }
}

/// What `POST /v1/events/batch` answers: one result per event, in order.
#[derive(Serialize, ToSchema)]
pub struct BatchAnswer {
    /// How many events were accepted (new or replayed).
    accepted: usize,
    /// How many were refused.
    refused: usize,
    /// Per event, in the order sent.
    results: Vec<BatchResult>,
}

/// `POST /v1/events/batch` `{events: [{type, data, idempotency_key?, tenant?}, ...]}`
/// → 200 with a result per event: `202` and its id, or its error and index.
#[utoipa::path(operation_id = "create_event_batch", post, path = "/v1/events/batch", tag = "events",
    request_body = BatchBody,
    responses((status = 200, description = "Every event's own answer; the events of each tenant were written in one transaction", body = BatchAnswer),
        (status = 413, description = "`payload_too_large`: the body is over 4 MiB", body = crate::error::ErrorBody),
        (status = 422, description = "`batch_too_large` (over 1,000 events), or an event is malformed (`validation_failed`, fields named `events[i].field`)", body = crate::error::ErrorBody)),
    security(("bearer" = ["write"])))]
pub async fn ingest(
    state: web::Data<AppState>,
    crate::auth::Authenticated(acting): crate::auth::Authenticated,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    if !declares_json(&req) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let raw = read_limited_to(payload, MAX_BATCH_BYTES).await?;
    let body: BatchBody = parse_json(&raw)?;
    if body.events.len() > MAX_BATCH_EVENTS {
        return Err(ApiError::BatchTooLarge { limit: MAX_BATCH_EVENTS });
    }
    if body.events.is_empty() {
        return Err(ApiError::field("events", "must hold 1 to 1,000 events"));
    }
    let mut results: Vec<Option<BatchResult>> = body.events.iter().map(|_| None).collect();
    let mut tenants: HashMap<String, Result<Tenant, ApiError>> = HashMap::new();
    let mut groups: HashMap<TenantId, Vec<(usize, NewEvent)>> = HashMap::new();
    // Events the document's schema refuses fail the whole batch (422, each
    // field named with its index); the rest are judged event by event.
    let mut invalid: Vec<FieldError> = Vec::new();
    for (index, item) in body.events.into_iter().enumerate() {
        let (named, event) = match read_item(item) {
            Ok(read) => read,
            Err(ApiError::Validation(errors)) => {
                invalid.extend(at_index(index, errors));
                continue;
            }
            Err(e) => {
                results[index] = Some(BatchResult::refused(index, e));
                continue;
            }
        };
        let tenant = match named {
            None => Ok(acting.clone()),
            Some(named) => {
                if !tenants.contains_key(&named) {
                    let found = tenant_named(&state, &req, &named).await;
                    tenants.insert(named.clone(), found);
                }
                tenants[&named].clone()
            }
        };
        // An unknown tenant's event is still checked, so a malformed one is reported as such.
        let owner = tenant.as_ref().map_or(&acting.id, |t| &t.id);
        match (event.check(None, owner), tenant) {
            (Err(ApiError::Validation(errors)), _) => invalid.extend(at_index(index, errors)),
            (Err(e), _) | (Ok(_), Err(e)) => results[index] = Some(BatchResult::refused(index, e)),
            (Ok(new), Ok(tenant)) => groups.entry(tenant.id).or_default().push((index, new)),
        }
    }
    if !invalid.is_empty() {
        return Err(ApiError::Validation(invalid));
    }
    if groups.keys().any(|t| *t != acting.id) {
        acted_for(&req, groups.keys().cloned().collect());
    }
    for (tenant, items) in groups {
        let (indexes, events): (Vec<usize>, Vec<NewEvent>) = items.into_iter().unzip();
        // A tenant over its backlog bound is refused here as on single
        // posts, event by event, so the batch's other tenants go ahead.
        if let Err(full) = state.admit_event(&tenant) {
            for index in indexes {
                results[index] = Some(BatchResult::refused(index, full.clone()));
            }
            continue;
        }
        let outcomes = state.store.ingest_together(&tenant, events, super::event_types::check_data).await;
        let outcomes: Vec<Result<_, ApiError>> = match outcomes {
            Ok(each) => each.into_iter().map(|o| o.map_err(ApiError::from).and_then(|r| r)).collect(),
            Err(e) => {
                let e = ApiError::from(e);
                indexes.iter().map(|_| Err(e.clone())).collect()
            }
        };
        for (index, outcome) in indexes.into_iter().zip(outcomes) {
            results[index] = Some(match outcome {
                Ok(outcome) => {
                    if !outcome.replayed {
                        state.event_accepted(&tenant);
                    }
                    let event = outcome.event;
                    BatchResult {
                        index,
                        status: 202,
                        id: Some(event.id),
                        tenant_id: Some(event.tenant_id),
                        r#type: Some(event.event_type),
                        created_at: Some(event.created_at),
                        replayed: Some(outcome.replayed),
                        code: None,
                        message: None,
                        errors: None,
                    }
                }
                Err(e) => BatchResult::refused(index, e),
            });
        }
    }
    let results: Vec<BatchResult> = results
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.unwrap_or_else(|| BatchResult::refused(i, ApiError::Internal)))
        .collect();
    let accepted = results.iter().filter(|r| r.status == 202).count();
    Ok(HttpResponse::Ok().json(BatchAnswer { accepted, refused: results.len() - accepted, results }))
}
