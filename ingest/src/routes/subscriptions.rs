//! `/v1/subscriptions`: where a tenant's events go.
use super::{path_id, IdPath};
use crate::auth::{Authenticated, Writer};
use crate::body::OptionalJson;
use crate::body::StrictJson;
use crate::error::FieldError;
use crate::pagination::{ListBody, PageQuery};
use crate::{ApiError, AppState};
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use hookhub_store::domain::{
    EndpointUrl, EventType, EventTypeFilter, OnDeadLetter, OrderingMode, OrderingPolicy, SubscriptionId,
    SubscriptionStatus, TenantId,
};
use hookhub_store::repo::{Event, NewSubscription, Programs, Subscription, SubscriptionPatch};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

const MAX_DESCRIPTION: usize = 1024;

/// A subscription as the API shows it (never with its secret).
#[derive(Serialize, ToSchema)]
pub struct SubscriptionBody {
    #[schema(example = "sub_01JD6F0Q6A8Y3W5Z7X9B1C2D3E")]
    id: String,
    #[schema(example = "https://crm.example.com/hooks/hookhub")]
    url: String,
    description: String,
    #[schema(value_type = EventTypeFilter)]
    event_types: Vec<String>,
    status: SubscriptionStatus,
    disabled_reason: Option<String>,
    rate_limit_per_second: Option<u32>,
    /// JavaScript expression over `event`: events it is falsy for are not sent (`filtered`).
    #[schema(example = "event.data.location_id === \"loc_1\"")]
    filter: Option<String>,
    /// JavaScript defining Svix's `function handler(webhook)`, which may change the payload, method and headers.
    #[schema(
        example = "function handler(webhook) { webhook.payload = { email: webhook.payload.data.email }; return webhook; }"
    )]
    transform: Option<String>,
    /// `per_key`: deliveries of events with the same `ordering_key` go one at a time, in ingest order.
    ordering: OrderingMode,
    /// What an ordered subscription does with a key whose delivery is dead-lettered.
    on_dead_letter: OnDeadLetter,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Subscription> for SubscriptionBody {
    fn from(s: Subscription) -> Self {
        Self {
            id: s.id.to_string(),
            url: s.url,
            description: s.description,
            event_types: s.event_types.to_strings(),
            status: s.status,
            disabled_reason: s.disabled_reason,
            rate_limit_per_second: s.rate_limit_per_second,
            filter: s.programs.filter,
            transform: s.programs.transform,
            ordering: s.ordering.mode,
            on_dead_letter: s.ordering.on_dead_letter,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// Fields of a create or update; all optional so that missing ones are
/// reported by name rather than by serde's message. A create needs `url`
/// and `event_types`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionFields {
    /// The HTTPS endpoint deliveries are POSTed to.
    #[schema(example = "https://crm.example.com/hooks/hookhub")]
    pub(crate) url: Option<String>,
    #[schema(value_type = Option<EventTypeFilter>)]
    pub(crate) event_types: Option<Vec<String>>,
    /// Up to 1,024 characters.
    pub(crate) description: Option<String>,
    /// `active` (the default) or `disabled`.
    #[schema(pattern = "^(active|disabled)$")]
    pub(crate) status: Option<String>,
    /// At most this many deliveries per second to this endpoint, 1 to 10,000; `null` removes the limit.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 10000)]
    pub(crate) rate_limit_per_second: Option<Option<u32>>,
    /// A JavaScript expression over `event` (the webhook body, `{id, type, timestamp, data}`), such as
    /// `event.data.amount > 100`; events it is falsy for are not sent and show as `filtered`. `null` or `""` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub(crate) filter: Option<Option<String>>,
    /// JavaScript defining `function handler(webhook)` as Svix does: set `webhook.payload`, `webhook.method`
    /// (POST, PUT or PATCH) or `webhook.headers`, or `webhook.cancel = true` to filter; return `webhook`.
    /// Checked to compile on save (422 `invalid_program`). `null` or `""` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub(crate) transform: Option<Option<String>>,
    /// `unordered` (the default) or `per_key`: deliveries of events with the
    /// same `ordering_key` are attempted one at a time, in ingest order, and
    /// a failing one holds back the later ones of its key (only its key).
    /// Applies to deliveries created after the change.
    #[schema(pattern = "^(unordered|per_key)$")]
    pub(crate) ordering: Option<String>,
    /// With `per_key`, what a dead-lettered delivery (out of attempts) does to
    /// its key: `skip` (the default) lets the next one go; `block` holds the
    /// key until it is redelivered or skipped (`/blocked-keys/{key}/skip`).
    #[schema(pattern = "^(skip|block)$")]
    pub(crate) on_dead_letter: Option<String>,
}

/// Tells an explicit `null` (remove the setting) from an absent field.
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A program as the request sets it: blank removes it, like `null`.
fn program(source: Option<Option<String>>) -> Option<Option<String>> {
    source.map(|s| s.filter(|s| !s.trim().is_empty()))
}

/// Compiles, in the sandbox, the filter and transform a request sets: a
/// syntax error (or a transform without `handler`) is a 422 naming the field.
async fn check_programs(
    state: &AppState,
    tenant: &TenantId,
    filter: &Option<Option<String>>,
    transform: &Option<Option<String>>,
) -> Result<(), ApiError> {
    let (filter, transform) = (filter.clone().flatten(), transform.clone().flatten());
    if filter.is_none() && transform.is_none() {
        return Ok(());
    }
    state.sandbox.check(tenant, filter, transform).await?;
    Ok(())
}

const MAX_RATE: u32 = 10_000;

struct Checked {
    url: Option<EndpointUrl>,
    event_types: Option<EventTypeFilter>,
    description: Option<String>,
    status: Option<SubscriptionStatus>,
    rate_limit_per_second: Option<Option<u32>>,
    filter: Option<Option<String>>,
    transform: Option<Option<String>>,
    ordering: Option<OrderingMode>,
    on_dead_letter: Option<OnDeadLetter>,
}

/// A present field parsed by `parse`, or the error that names it.
fn choice<T>(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: Option<String>,
    parse: impl Fn(&str) -> Option<T>,
    expected: &str,
) -> Option<T> {
    let parsed = parse(value.as_deref()?);
    if parsed.is_none() {
        errors.push(FieldError::new(field, format!("must be {expected}")));
    }
    parsed
}

impl SubscriptionFields {
    /// Validates every present field, collecting all errors at once.
    fn check(self, allow_http: bool) -> Result<Checked, ApiError> {
        let mut errors = Vec::new();
        let url = self.url.and_then(|u| {
            EndpointUrl::parse(u.trim(), allow_http).map_err(|e| errors.push(FieldError::new("url", e))).ok()
        });
        let event_types = self.event_types.and_then(|t| {
            EventTypeFilter::parse(&t)
                .map_err(|e| errors.push(FieldError::new("event_types", format!("{e}; or [\"*\"] for every type"))))
                .ok()
        });
        if self.description.as_ref().is_some_and(|d| d.chars().count() > MAX_DESCRIPTION) {
            errors.push(FieldError::new("description", format!("at most {MAX_DESCRIPTION} characters")));
        }
        if let Some(Err(e)) = self.description.as_deref().map(|d| crate::input::nul_free("description", d)) {
            errors.push(e);
        }
        let status = choice(
            &mut errors,
            "status",
            self.status,
            |s| match s {
                "active" => Some(SubscriptionStatus::Active),
                "disabled" => Some(SubscriptionStatus::Disabled),
                _ => None,
            },
            "\"active\" or \"disabled\"",
        );
        let ordering = choice(
            &mut errors,
            "ordering",
            self.ordering,
            |s| match s {
                "unordered" => Some(OrderingMode::Unordered),
                "per_key" => Some(OrderingMode::PerKey),
                _ => None,
            },
            "\"unordered\" or \"per_key\"",
        );
        let on_dead_letter = choice(
            &mut errors,
            "on_dead_letter",
            self.on_dead_letter,
            |s| match s {
                "skip" => Some(OnDeadLetter::Skip),
                "block" => Some(OnDeadLetter::Block),
                _ => None,
            },
            "\"skip\" or \"block\"",
        );
        if let Some(Some(rate)) = self.rate_limit_per_second {
            if !(1..=MAX_RATE).contains(&rate) {
                errors
                    .push(FieldError::new("rate_limit_per_second", format!("from 1 to {MAX_RATE}, or null for none")));
            }
        }
        for (field, source) in [("filter", &self.filter), ("transform", &self.transform)] {
            if let Some(Some(Err(e))) = source.as_ref().map(|s| s.as_deref().map(|s| crate::input::nul_free(field, s)))
            {
                errors.push(e);
            }
        }
        if errors.is_empty() {
            Ok(Checked {
                url,
                event_types,
                description: self.description,
                status,
                rate_limit_per_second: self.rate_limit_per_second,
                filter: program(self.filter),
                transform: program(self.transform),
                ordering,
                on_dead_letter,
            })
        } else {
            Err(ApiError::Validation(errors))
        }
    }
}

/// A new subscription, with the secret its deliveries are signed with.
#[derive(Serialize, ToSchema)]
pub struct CreatedBody {
    #[serde(flatten)]
    subscription: SubscriptionBody,
    /// The Standard Webhooks signing secret (`whsec_...`).
    secret: String,
}

/// The signing secret of a subscription.
#[derive(Serialize, ToSchema)]
pub struct SecretBody {
    /// The Standard Webhooks signing secret (`whsec_...`).
    secret: String,
    /// After a rotation: until when deliveries also carry the old secret's signature.
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_valid_until: Option<DateTime<Utc>>,
}

/// How many deliveries a recovery queued again.
#[derive(Serialize, ToSchema)]
pub struct RequeuedBody {
    requeued: u64,
}

/// `POST /v1/subscriptions` → 201 with the secret, shown here and at `/secret`.
#[utoipa::path(operation_id = "create_subscription", post, path = "/v1/subscriptions", tag = "subscriptions", request_body = SubscriptionFields,
    responses((status = 201, body = CreatedBody),
        (status = 422, description = "Invalid fields (`validation_failed`), or a filter or transform that does not compile (`invalid_program`)",
            body = crate::error::ErrorBody)),
    security(("bearer" = ["write"])))]
pub async fn create(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    body: web::Json<SubscriptionFields>,
) -> Result<HttpResponse, ApiError> {
    let sub = create_checked(&state, &tenant.id, body.into_inner()).await?;
    let secret = sub.secret.expose();
    Ok(HttpResponse::Created().json(CreatedBody { subscription: sub.into(), secret }))
}

/// Checks `fields` and creates the subscription: the API's create and the
/// portal's "add endpoint" both come here.
pub(crate) async fn create_checked(
    state: &AppState,
    tenant: &TenantId,
    fields: SubscriptionFields,
) -> Result<Subscription, ApiError> {
    let checked = fields.check(state.allow_http_endpoints)?;
    let mut missing = Vec::new();
    if checked.url.is_none() {
        missing.push(FieldError::new("url", "is required"));
    }
    if checked.event_types.is_none() {
        missing.push(FieldError::new("event_types", "is required: a list of event types, or [\"*\"]"));
    }
    let (Some(url), Some(event_types), true) = (checked.url, checked.event_types, missing.is_empty()) else {
        return Err(ApiError::Validation(missing));
    };
    state.check_endpoint(&url, "url").await?;
    check_programs(state, tenant, &checked.filter, &checked.transform).await?;
    let new = NewSubscription {
        url,
        event_types,
        description: checked.description.unwrap_or_default(),
        rate_limit_per_second: checked.rate_limit_per_second.flatten(),
        status: checked.status.unwrap_or(SubscriptionStatus::Active),
        programs: Programs { filter: checked.filter.flatten(), transform: checked.transform.flatten() },
        ordering: OrderingPolicy {
            mode: checked.ordering.unwrap_or_default(),
            on_dead_letter: checked.on_dead_letter.unwrap_or_default(),
        },
    };
    Ok(state.store.create_subscription(tenant, new).await?)
}

/// `GET /v1/subscriptions`.
#[utoipa::path(operation_id = "list_subscriptions", get, path = "/v1/subscriptions", tag = "subscriptions", params(PageQuery),
    responses((status = 200, body = ListBody<SubscriptionBody>)), security(("bearer" = ["read"])))]
pub async fn list(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = state.store.list_subscriptions(&tenant.id, &query.to_request()?).await?;
    Ok(HttpResponse::Ok().json(ListBody::from_page(page, SubscriptionBody::from)))
}

/// `GET /v1/subscriptions/{id}`.
#[utoipa::path(operation_id = "get_subscription", get, path = "/v1/subscriptions/{id}", tag = "subscriptions", params(IdPath),
    responses((status = 200, body = SubscriptionBody)), security(("bearer" = ["read"])))]
pub async fn get(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: SubscriptionId = path_id(&id, "subscription")?;
    let sub = state.store.subscription(&tenant.id, &id).await?;
    Ok(HttpResponse::Ok().json(SubscriptionBody::from(sub)))
}

/// `GET /v1/subscriptions/{id}/secret`: `{"secret": "whsec_..."}`; needs
/// `write`, since the secret signs deliveries.
#[utoipa::path(operation_id = "get_subscription_secret", get, path = "/v1/subscriptions/{id}/secret", tag = "subscriptions", params(IdPath),
    responses((status = 200, body = SecretBody)), security(("bearer" = ["write"])))]
pub async fn secret(
    state: web::Data<AppState>,
    Writer(tenant): Writer,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: SubscriptionId = path_id(&id, "subscription")?;
    let sub = state.store.subscription(&tenant.id, &id).await?;
    Ok(HttpResponse::Ok().json(SecretBody { secret: sub.secret.expose(), previous_valid_until: None }))
}

/// `PATCH /v1/subscriptions/{id}`: change url, event types, description, status, rate limit or ordering.
#[utoipa::path(operation_id = "update_subscription", patch, path = "/v1/subscriptions/{id}", tag = "subscriptions", params(IdPath),
    request_body = SubscriptionFields, responses((status = 200, body = SubscriptionBody),
        (status = 409, description = "A listen session's status cannot change", body = crate::error::ErrorBody)),
    security(("bearer" = ["write"])))]
pub async fn update(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    id: web::Path<String>,
    body: web::Json<SubscriptionFields>,
) -> Result<HttpResponse, ApiError> {
    let id: SubscriptionId = path_id(&id, "subscription")?;
    let sub = update_checked(&state, &tenant.id, &id, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(SubscriptionBody::from(sub)))
}

/// Checks `fields` and applies the present ones: the API's update and the
/// portal's edit both come here.
pub(crate) async fn update_checked(
    state: &AppState,
    tenant: &TenantId,
    id: &SubscriptionId,
    fields: SubscriptionFields,
) -> Result<Subscription, ApiError> {
    let checked = fields.check(state.allow_http_endpoints)?;
    if let Some(url) = &checked.url {
        state.check_endpoint(url, "url").await?;
    }
    check_programs(state, tenant, &checked.filter, &checked.transform).await?;
    let patch = SubscriptionPatch {
        url: checked.url,
        event_types: checked.event_types,
        description: checked.description,
        status: checked.status,
        rate_limit_per_second: checked.rate_limit_per_second,
        filter: checked.filter,
        transform: checked.transform,
        ordering: checked.ordering,
        on_dead_letter: checked.on_dead_letter,
    };
    Ok(state.store.update_subscription(tenant, id, patch).await?)
}

/// `DELETE /v1/subscriptions/{id}` → 204; pending deliveries stop.
#[utoipa::path(operation_id = "delete_subscription", delete, path = "/v1/subscriptions/{id}", tag = "subscriptions", params(IdPath),
    responses((status = 204, description = "Deleted")), security(("bearer" = ["write"])))]
pub async fn delete(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: SubscriptionId = path_id(&id, "subscription")?;
    state.store.delete_subscription(&tenant.id, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The body of a rotation.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateBody {
    /// How long deliveries also carry the old secret's signature, up to 7 days (default 24 h).
    #[schema(maximum = 604800)]
    grace_period_secs: Option<u32>,
}

/// Default overlap of old and new secret after a rotation.
const DEFAULT_GRACE_SECS: u32 = 24 * 3600;

/// `POST /v1/subscriptions/{id}/secret/rotate` `{grace_period_secs?}` → the new
/// `{secret}`; until the grace period ends deliveries carry both signatures.
#[utoipa::path(operation_id = "rotate_subscription_secret", post, path = "/v1/subscriptions/{id}/secret/rotate", tag = "subscriptions", params(IdPath),
    request_body(content = Option<RotateBody>), responses((status = 200, body = SecretBody)),
    security(("bearer" = ["write"])))]
pub async fn rotate_secret(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    id: web::Path<String>,
    OptionalJson(body): OptionalJson<RotateBody>,
) -> Result<HttpResponse, ApiError> {
    let id: SubscriptionId = path_id(&id, "subscription")?;
    let grace = grace_period(body.and_then(|b| b.grace_period_secs))?;
    let sub = state.store.rotate_secret(&tenant.id, &id, grace).await?;
    let until = sub.previous_secret.as_ref().map(|(_, until)| *until);
    Ok(HttpResponse::Ok().json(SecretBody { secret: sub.secret.expose(), previous_valid_until: until }))
}

/// The grace period of a rotation: `secs`, or the default; at most 7 days.
pub(crate) fn grace_period(secs: Option<u32>) -> Result<chrono::Duration, ApiError> {
    let grace = secs.unwrap_or(DEFAULT_GRACE_SECS);
    if grace > 7 * 24 * 3600 {
        return Err(ApiError::field("grace_period_secs", "at most 7 days"));
    }
    Ok(chrono::Duration::seconds(i64::from(grace)))
}

/// `POST /v1/subscriptions/{id}/enable`: back on after the breaker (or its owner) disabled it.
#[utoipa::path(operation_id = "enable_subscription", post, path = "/v1/subscriptions/{id}/enable", tag = "subscriptions", params(IdPath),
    responses((status = 200, body = SubscriptionBody),
        (status = 409, description = "A listen session's status cannot change", body = crate::error::ErrorBody)),
    security(("bearer" = ["write"])))]
pub async fn enable(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: SubscriptionId = path_id(&id, "subscription")?;
    let patch = SubscriptionPatch { status: Some(SubscriptionStatus::Active), ..SubscriptionPatch::default() };
    let sub = state.store.update_subscription(&tenant.id, &id, patch).await?;
    Ok(HttpResponse::Ok().json(SubscriptionBody::from(sub)))
}

/// The query of a recovery.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecoverQuery {
    /// Requeue what failed or was dead-lettered since this RFC 3339 time.
    #[param(required = true, format = DateTime)]
    since: Option<String>,
}

/// `POST /v1/subscriptions/{id}/recover?since=RFC3339` → 202 `{requeued}`:
/// resend what failed while the endpoint was down.
#[utoipa::path(operation_id = "recover_subscription", post, path = "/v1/subscriptions/{id}/recover", tag = "subscriptions",
    params(IdPath, RecoverQuery), responses((status = 202, body = RequeuedBody)),
    security(("bearer" = ["write"])))]
pub async fn recover(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    id: web::Path<String>,
    query: web::Query<RecoverQuery>,
) -> Result<HttpResponse, ApiError> {
    let id: SubscriptionId = path_id(&id, "subscription")?;
    let requeued = state.store.recover_subscription(&tenant.id, &id, since(query.since.as_deref())?).await?;
    Ok(HttpResponse::Accepted().json(RequeuedBody { requeued }))
}

/// The `since` of a recovery: an RFC 3339 time, required.
pub(crate) fn since(raw: Option<&str>) -> Result<DateTime<Utc>, ApiError> {
    let raw = raw.ok_or_else(|| ApiError::BadRequest {
        code: "invalid_query",
        message: "`since` (RFC 3339) is required".into(),
    })?;
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.to_utc())
        .map_err(|e| ApiError::BadRequest { code: "invalid_query", message: format!("since: {e}") })
}

/// The body of a test event.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestBody {
    /// A type of the catalogue; the event carries its example as `data`.
    #[schema(example = "client.created")]
    event_type: String,
}

/// What a test event became.
#[derive(Serialize, ToSchema)]
pub struct TestSentBody {
    /// The test event (see `GET /v1/events/{id}` for its delivery).
    #[schema(example = "evt_01JD6F0Q6A8Y3W5Z7X9B1C2D3E")]
    event_id: String,
    r#type: String,
    #[schema(value_type = Object)]
    data: serde_json::Value,
}

/// `POST /v1/subscriptions/{id}/test` `{event_type}` → 202: an event of a
/// catalogue type, carrying the type's example, sent to this subscription
/// only (no other subscription, no rule sees it).
#[utoipa::path(operation_id = "send_test_event", post, path = "/v1/subscriptions/{id}/test", tag = "subscriptions", params(IdPath),
    request_body = TestBody, responses((status = 202, body = TestSentBody),
        (status = 409, description = "The subscription is disabled", body = crate::error::ErrorBody)),
    security(("bearer" = ["write"])))]
pub async fn test(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    id: web::Path<String>,
    StrictJson(body): StrictJson<TestBody>,
) -> Result<HttpResponse, ApiError> {
    let id: SubscriptionId = path_id(&id, "subscription")?;
    let event = send_test(&state, &tenant.id, &id, &body.event_type).await?;
    Ok(HttpResponse::Accepted().json(TestSentBody {
        event_id: event.id.to_string(),
        r#type: event.event_type.to_string(),
        data: event.data,
    }))
}

/// Sends a test event of the catalogue type `event_type`, with its example
/// (or `{}` when it has none), to subscription `id`: the API's test and
/// the portal's "send test event" both come here.
pub(crate) async fn send_test(
    state: &AppState,
    tenant: &TenantId,
    id: &SubscriptionId,
    event_type: &str,
) -> Result<Event, ApiError> {
    let kind: EventType = event_type.parse().map_err(|e| ApiError::field("event_type", e))?;
    let info = state
        .store
        .event_type(tenant, kind.as_str())
        .await?
        .ok_or_else(|| ApiError::field("event_type", "is not in the event type catalogue"))?;
    let data = info.example.filter(serde_json::Value::is_object).unwrap_or_else(|| serde_json::json!({}));
    let event = state.store.send_test_event(tenant, id, kind, data).await?;
    Ok(event)
}
