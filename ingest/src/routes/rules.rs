//! `/v1/rules`: "when `on` arrives, also emit `emit`" — offboarding and the like.
use super::path_id;
use crate::auth::Authenticated;
use crate::error::FieldError;
use crate::pagination::ListBody;
use crate::{ApiError, AppState};
use actix_web::{web, HttpResponse};
use hookhub_store::domain::{EventType, RuleId};
use hookhub_store::repo::Rule;
use serde::Deserialize;
use serde_json::{json, Value};

fn to_json(r: Rule) -> Value {
    json!({"id": r.id, "on": r.on, "emit": r.emit, "created_at": r.created_at})
}

/// A rule to create.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    on: Option<String>,
    emit: Option<String>,
}

fn event_type(field: &str, raw: Option<&str>, errors: &mut Vec<FieldError>) -> Option<EventType> {
    match raw.map(str::parse::<EventType>) {
        Some(Ok(t)) => Some(t),
        Some(Err(e)) => {
            errors.push(FieldError::new(field, e));
            None
        }
        None => {
            errors.push(FieldError::new(field, "is required"));
            None
        }
    }
}

/// `POST /v1/rules` `{on, emit}` → 201.
pub async fn create(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    body: web::Json<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = Vec::new();
    let on = event_type("on", body.on.as_deref(), &mut errors);
    let emit = event_type("emit", body.emit.as_deref(), &mut errors);
    if on.is_some() && on == emit {
        errors.push(FieldError::new("emit", "must differ from `on`"));
    }
    let (Some(on), Some(emit), true) = (on, emit, errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    let rule = state.store.create_rule(&tenant.id, on, emit).await?;
    Ok(HttpResponse::Created().json(to_json(rule)))
}

/// `GET /v1/rules`.
pub async fn list(state: web::Data<AppState>, Authenticated(tenant): Authenticated) -> Result<HttpResponse, ApiError> {
    let data: Vec<Value> = state.store.list_rules(&tenant.id).await?.into_iter().map(to_json).collect();
    Ok(HttpResponse::Ok().json(ListBody::all(data)))
}

/// `DELETE /v1/rules/{id}` → 204.
pub async fn delete(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: RuleId = path_id(&id, "rule")?;
    state.store.delete_rule(&tenant.id, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}
