//! `POST /v1/subscriptions/{id}/transform/test`: run a subscription's
//! filter and transform (or ones not saved yet) against an event, so users
//! try a program before they save it.
//!
//! The answer carries the engine's full message for an error, which may
//! quote the event: the caller sent that event (or it is the type's
//! example), and nothing of it is stored or logged.
use super::hooks::example_data;
use super::{path_id, IdPath};
use crate::auth::Authenticated;
use crate::body::OptionalJson;
use crate::delivery_side::{ProgramError, ProgramRun, Rendering};
use crate::error::FieldError;
use crate::{ApiError, AppState};
use actix_web::{web, HttpResponse};
use hookhub_store::domain::{now, EventType, EventTypeFilter, SubscriptionId, WebhookBody};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// The id of the event a test runs on when none is given.
const TEST_EVENT_ID: &str = "evt_transform_test";

/// An event to try a program on.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestEvent {
    /// Its type.
    #[schema(example = "sale.completed")]
    r#type: String,
    /// Its data.
    #[schema(value_type = Object)]
    data: Value,
}

/// What to run: an event (or a type, whose example is used), and the
/// programs to run instead of the saved ones.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransformTest {
    /// The event to run on.
    event: Option<TestEvent>,
    /// Without `event`: the type whose example (or schema-generated sample) to run on. Without either, the
    /// subscription's event type, when it has exactly one.
    #[schema(example = "sale.completed")]
    event_type: Option<String>,
    /// A filter to try instead of the saved one; `null` tries none.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    filter: Option<Option<String>>,
    /// A transform to try instead of the saved one; `null` tries none.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    transform: Option<Option<String>>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// What a run came to.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TestOutcome {
    /// It would be sent as shown.
    Send,
    /// It would not be sent: `filtered` in the attempts log.
    Filtered,
    /// The program failed: a failed attempt, retried on the schedule.
    Failed,
}

/// Why a run failed.
#[derive(Serialize, ToSchema)]
pub struct TestError {
    /// `syntax_error`, `no_handler`, `time_limit`, `memory_limit`, `stack_limit`, `threw`,
    /// `output_too_large`, `invalid_output` or `sandbox_failed`.
    #[schema(example = "threw")]
    code: &'static str,
    /// `filter` or `transform`.
    part: Option<&'static str>,
    /// The full message, with the engine's own.
    message: String,
    /// What the attempts log would store: the kind and line, never a payload value.
    logged: String,
}

/// The result of a test run.
#[derive(Serialize, ToSchema)]
pub struct TestResult {
    outcome: TestOutcome,
    /// When filtered: `filter` (it was falsy) or `transform` (it set `cancel`).
    #[serde(skip_serializing_if = "Option::is_none")]
    filtered_by: Option<&'static str>,
    /// When sent: the method.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "POST")]
    method: Option<&'static str>,
    /// When sent: the headers the transform adds (the signature headers come on top).
    #[serde(skip_serializing_if = "Option::is_none")]
    headers: Option<BTreeMap<String, String>>,
    /// When sent: the body, exactly the bytes that would be signed and sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    /// When failed: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<TestError>,
}

impl From<Result<Rendering, ProgramError>> for TestResult {
    fn from(run: Result<Rendering, ProgramError>) -> Self {
        let empty = Self {
            outcome: TestOutcome::Send,
            filtered_by: None,
            method: None,
            headers: None,
            body: None,
            error: None,
        };
        match run {
            Ok(Rendering::Send { method, headers, body }) => {
                Self { method: Some(method), headers: Some(headers), body: Some(body), ..empty }
            }
            Ok(Rendering::Filtered { by }) => Self { outcome: TestOutcome::Filtered, filtered_by: Some(by), ..empty },
            Err(e) => Self {
                outcome: TestOutcome::Failed,
                error: Some(TestError { code: e.code, part: e.part, message: e.detail, logged: e.logged }),
                ..empty
            },
        }
    }
}

/// `POST /v1/subscriptions/{id}/transform/test` → 200 with what the
/// subscription's filter and transform make of an event: the request it
/// would send, `filtered`, or the error. A program that fails is a 200
/// too: the test ran, and its result is the failure.
#[utoipa::path(operation_id = "test_subscription_transform", post, path = "/v1/subscriptions/{id}/transform/test", tag = "subscriptions",
    params(IdPath), request_body(content = Option<TransformTest>),
    responses((status = 200, body = TestResult),
        (status = 422, description = "No event to run on", body = crate::error::ErrorBody)),
    security(("bearer" = ["write"])))]
pub async fn test(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    id: web::Path<String>,
    OptionalJson(body): OptionalJson<TransformTest>,
) -> Result<HttpResponse, ApiError> {
    let id: SubscriptionId = path_id(&id, "subscription")?;
    let sub = state.store.subscription(&tenant.id, &id).await?;
    let test = body.unwrap_or_default();
    let (event_type, data) = match test.event {
        Some(event) => (parse_type(&event.r#type, "event.type")?, event.data),
        None => {
            let event_type = match (&test.event_type, &sub.event_types) {
                (Some(name), _) => parse_type(name, "event_type")?,
                (None, EventTypeFilter::Only(types)) if types.len() == 1 => types[0].clone(),
                (None, _) => {
                    return Err(ApiError::Validation(vec![FieldError::new(
                        "event",
                        "is required (or `event_type`, to use its example) for a subscription to several types",
                    )]))
                }
            };
            let info = state.store.event_type(&tenant.id, event_type.as_str()).await?;
            let data = info.as_ref().map(example_data).unwrap_or_else(|| serde_json::json!({}));
            (event_type, data)
        }
    };
    let body = serde_json::to_string(&WebhookBody::new(TEST_EVENT_ID, event_type.as_str(), now(), &data))
        .map_err(|_| ApiError::Internal)?;
    let run = ProgramRun {
        filter: test.filter.unwrap_or(sub.programs.filter),
        transform: test.transform.unwrap_or(sub.programs.transform),
        body,
        event_type: event_type.to_string(),
        url: sub.url,
    };
    let run = state.sandbox.try_out(&tenant.id, run).await;
    Ok(HttpResponse::Ok().json(TestResult::from(run)))
}

fn parse_type(name: &str, field: &str) -> Result<EventType, ApiError> {
    name.parse().map_err(|e| ApiError::field(field, e))
}
