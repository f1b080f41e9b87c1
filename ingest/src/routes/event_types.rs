//! `/v1/event-types`: the catalogue (built-in and custom) with schemas and examples.
use crate::auth::Authenticated;
use crate::body::StrictJson;
use crate::error::FieldError;
use crate::input::{nul_free, nul_free_json};
use crate::pagination::ListBody;
use crate::{ApiError, AppState};
use actix_web::{web, HttpResponse};
use hookhub_store::domain::EventType;
use hookhub_store::repo::{EventTypeInfo, NewEventType};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// What a JSON Schema is, as a value: an object, `true` or `false` (or absent).
fn json_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{SchemaType, Type};
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Boolean, Type::Null]))
        .description(Some("A JSON Schema for the event's `data`: an object, `true` or `false`"))
        .build()
}

/// An event type of the catalogue.
#[derive(Serialize, ToSchema)]
pub struct EventTypeBody {
    #[schema(example = "appointment.booked")]
    name: String,
    description: String,
    #[schema(schema_with = json_schema)]
    schema: Option<Value>,
    /// An example `data`.
    #[schema(value_type = Option<Object>)]
    example: Option<Value>,
    /// Part of Hookhub's catalogue (`false`: the tenant's own).
    builtin: bool,
    /// Whether ingest rejects `data` that does not match `schema`.
    validate: bool,
}

impl From<EventTypeInfo> for EventTypeBody {
    fn from(t: EventTypeInfo) -> Self {
        Self {
            name: t.name,
            description: t.description,
            schema: t.schema,
            example: t.example,
            builtin: t.builtin,
            validate: t.validate,
        }
    }
}

/// `GET /v1/event-types`: built-in types first, then the tenant's own.
#[utoipa::path(operation_id = "list_event_types", get, path = "/v1/event-types", tag = "integrations",
    responses((status = 200, body = ListBody<EventTypeBody>)), security(("bearer" = ["read"])))]
pub async fn list(state: web::Data<AppState>, Authenticated(tenant): Authenticated) -> Result<HttpResponse, ApiError> {
    let types = state.store.list_event_types(&tenant.id).await?;
    Ok(HttpResponse::Ok().json(ListBody::all(types.into_iter().map(EventTypeBody::from).collect())))
}

/// A custom type to register.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventTypeCreate {
    /// `resource.action`, like `program.completed`.
    #[schema(value_type = EventType, required = true, example = "program.completed")]
    name: Option<String>,
    description: Option<String>,
    #[schema(schema_with = json_schema)]
    schema: Option<Value>,
    /// An example `data`; must match `schema`.
    #[schema(value_type = Option<Object>)]
    example: Option<Value>,
    /// Reject events whose `data` does not match `schema`.
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
#[utoipa::path(operation_id = "create_event_type", post, path = "/v1/event-types", tag = "integrations", request_body = EventTypeCreate,
    responses((status = 201, body = EventTypeBody),
        (status = 409, description = "The name is taken (a built-in or an existing type)", body = crate::error::ErrorBody)),
    security(("bearer" = ["write"])))]
pub async fn create(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    StrictJson(body): StrictJson<EventTypeCreate>,
) -> Result<HttpResponse, ApiError> {
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
    let text = body.description.as_deref().map(|d| nul_free("description", d));
    let schema = body.schema.as_ref().map(|s| nul_free_json("schema", s));
    let example = body.example.as_ref().map(|e| nul_free_json("example", e));
    errors.extend([text, schema, example].into_iter().flatten().filter_map(Result::err));
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
    Ok(HttpResponse::Created().json(EventTypeBody::from(created)))
}

/// The one setting a type has.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventTypePatch {
    validate: bool,
}

/// `PATCH /v1/event-types/{name}` `{validate}`: turn schema validation on or off.
#[utoipa::path(operation_id = "update_event_type", patch, path = "/v1/event-types/{name}", tag = "integrations",
    params(("name" = String, Path, description = "The event type", example = "appointment.booked")),
    request_body = EventTypePatch, responses((status = 200, body = EventTypeBody)), security(("bearer" = ["write"])))]
pub async fn update(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    name: web::Path<String>,
    body: web::Json<EventTypePatch>,
) -> Result<HttpResponse, ApiError> {
    // A name that is no event type (NUL included) names nothing.
    name.parse::<EventType>().map_err(|_| ApiError::NotFound("event type"))?;
    let info = state.store.event_type(&tenant.id, &name).await?.ok_or(ApiError::NotFound("event type"))?;
    if body.validate && info.schema.is_none() {
        return Err(ApiError::field("validate", "this type has no schema to validate against"));
    }
    let updated = state.store.set_event_type_validation(&tenant.id, &name, body.validate).await?;
    Ok(HttpResponse::Ok().json(EventTypeBody::from(updated)))
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
