//! `/v1/rules`: "when `on` arrives, also emit `emit`" — offboarding and the like.
use super::{path_id, IdPath};
use crate::auth::Authenticated;
use crate::error::FieldError;
use crate::pagination::ListBody;
use crate::{ApiError, AppState};
use actix_web::{web, HttpResponse};
use hookhub_store::domain::{EventType, RuleId};
use hookhub_store::repo::Rule;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A rule: when `on` arrives, `emit` follows in the same transaction.
#[derive(Serialize, ToSchema)]
pub struct RuleBody {
    #[schema(value_type = String)]
    id: RuleId,
    #[schema(example = "subscription.cancelled")]
    on: EventType,
    #[schema(example = "client.archived")]
    emit: EventType,
    created_at: chrono::DateTime<chrono::Utc>,
}

impl From<Rule> for RuleBody {
    fn from(r: Rule) -> Self {
        Self { id: r.id, on: r.on, emit: r.emit, created_at: r.created_at }
    }
}

/// A rule to create.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleCreate {
    /// The event type that triggers the rule.
    #[schema(value_type = EventType, required = true, example = "subscription.cancelled")]
    on: Option<String>,
    /// The event type emitted with the same data; not `on` itself.
    #[schema(value_type = EventType, required = true, example = "client.archived")]
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
#[utoipa::path(operation_id = "create_rule", post, path = "/v1/rules", tag = "integrations", request_body = RuleCreate,
    responses((status = 201, body = RuleBody),
        (status = 409, description = "The same rule exists", body = crate::error::ErrorBody)),
    security(("bearer" = ["write"])))]
pub async fn create(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    body: web::Json<RuleCreate>,
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
    Ok(HttpResponse::Created().json(RuleBody::from(rule)))
}

/// `GET /v1/rules`.
#[utoipa::path(operation_id = "list_rules", get, path = "/v1/rules", tag = "integrations",
    responses((status = 200, body = ListBody<RuleBody>)), security(("bearer" = ["read"])))]
pub async fn list(state: web::Data<AppState>, Authenticated(tenant): Authenticated) -> Result<HttpResponse, ApiError> {
    let rules = state.store.list_rules(&tenant.id).await?;
    Ok(HttpResponse::Ok().json(ListBody::all(rules.into_iter().map(RuleBody::from).collect())))
}

/// `DELETE /v1/rules/{id}` → 204.
#[utoipa::path(operation_id = "delete_rule", delete, path = "/v1/rules/{id}", tag = "integrations", params(IdPath),
    responses((status = 204, description = "Deleted")), security(("bearer" = ["write"])))]
pub async fn delete(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: RuleId = path_id(&id, "rule")?;
    state.store.delete_rule(&tenant.id, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}
