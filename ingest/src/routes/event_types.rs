//! `/v1/event-types`: the catalogue (built-in and custom) with schemas and examples.
use crate::auth::Authenticated;
use crate::error::FieldError;
use crate::pagination::ListBody;
use crate::{ApiError, AppState};
use actix_web::{web, HttpResponse};
use hookhub_store::domain::EventType;
use hookhub_store::repo::{EventTypeInfo, NewEventType};
use serde::Deserialize;
use serde_json::{json, Value};

fn to_json(t: EventTypeInfo) -> Value {
    json!({
        "name": t.name,
        "description": t.description,
        "schema": t.schema,
        "example": t.example,
        "builtin": t.builtin,
        "validate": t.validate,
    })
}

/// `GET /v1/event-types`: built-in types first, then the tenant's own.
pub async fn list(state: web::Data<AppState>, Authenticated(tenant): Authenticated) -> Result<HttpResponse, ApiError> {
    let types = state.store.list_event_types(&tenant.id).await?;
    let data: Vec<Value> = types.into_iter().map(to_json).collect();
    Ok(HttpResponse::Ok().json(ListBody::all(data)))
}

/// A custom type to register.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    name: Option<String>,
    description: Option<String>,
    schema: Option<Value>,
    example: Option<Value>,
    #[serde(default)]
    validate: bool,
}

/// Checks that `schema` is a JSON Schema, and `example` (if any) matches it.
fn check_schema(schema: &Value, example: Option<&Value>, errors: &mut Vec<FieldError>) {
    match jsonschema::validator_for(schema) {
        Ok(validator) => {
            if let Some(example) = example {
                if let Some(e) = validator.iter_errors(example).next() {
                    errors.push(FieldError::new("example", format!("does not match the schema: {e}")));
                }
            }
        }
        Err(e) => errors.push(FieldError::new("schema", format!("is not a valid JSON Schema: {e}"))),
    }
}

/// `POST /v1/event-types` `{name, description?, schema?, example?, validate?}` → 201.
pub async fn create(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    body: web::Json<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut errors = Vec::new();
    let name = match body.name.as_deref().map(str::parse::<EventType>) {
        Some(Ok(name)) => Some(name),
        Some(Err(e)) => {
            errors.push(FieldError::new("name", e));
            None
        }
        None => {
            errors.push(FieldError::new("name", "is required"));
            None
        }
    };
    if let Some(schema) = &body.schema {
        check_schema(schema, body.example.as_ref(), &mut errors);
    } else if body.validate {
        errors.push(FieldError::new("validate", "needs a schema to validate against"));
    }
    if body.example.as_ref().is_some_and(|e| !e.is_object()) {
        errors.push(FieldError::new("example", "must be a JSON object, like an event's data"));
    }
    let (Some(name), true) = (name, errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    let new = NewEventType {
        name,
        description: body.description.unwrap_or_default(),
        schema: body.schema,
        example: body.example,
        validate: body.validate,
    };
    let created = state.store.create_event_type(&tenant.id, new).await?;
    Ok(HttpResponse::Created().json(to_json(created)))
}

/// The one setting a type has.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchBody {
    validate: bool,
}

/// `PATCH /v1/event-types/{name}` `{validate}`: turn schema validation on or off.
pub async fn update(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    name: web::Path<String>,
    body: web::Json<PatchBody>,
) -> Result<HttpResponse, ApiError> {
    let info = state.store.event_type(&tenant.id, &name).await?.ok_or(ApiError::NotFound("event type"))?;
    if body.validate && info.schema.is_none() {
        return Err(ApiError::field("validate", "this type has no schema to validate against"));
    }
    let updated = state.store.set_event_type_validation(&tenant.id, &name, body.validate).await?;
    Ok(HttpResponse::Ok().json(to_json(updated)))
}

/// Rejects `data` that does not match `schema` (a type's schema, when the
/// tenant turned validation on for it), naming up to 20 problems.
pub fn check_data(schema: &Value, data: &Value) -> Result<(), ApiError> {
    let validator = jsonschema::validator_for(schema).map_err(|_| ApiError::Internal)?;
    let errors: Vec<FieldError> = validator
        .iter_errors(data)
        .take(20)
        .map(|e| FieldError::new(&format!("data{}", e.instance_path()), e.to_string()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}
