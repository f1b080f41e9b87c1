//! Inbound gateway callbacks: `/v1/inbound-sources` to connect a gateway,
//! and `POST /v1/inbound/{source}/{token}` where the gateway posts.
//!
//! A callback is verified before anything is read or stored; a bad or stale
//! signature gets 400 and leaves no trace. A verified one becomes a domain
//! event through the same outbox as everything else, keyed by the gateway's
//! own event id so that a gateway retry never makes a second event.
use super::events::IngestBody;
use super::{path_id, IdPath};
use crate::auth::Authenticated;
use crate::inbound::{stripe, SignatureError};
use crate::pagination::ListBody;
use crate::{ApiError, AppState};
use actix_web::{web, HttpRequest, HttpResponse};
use hookhub_store::domain::signer;
use hookhub_store::domain::{now, IdempotencyKey, InboundKind, InboundSourceId, KeyNamespace, SigningSecret};
use hookhub_store::repo::{InboundSource, NewEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// Where a source's callbacks arrive; the last segment is its token.
const CALLBACK_PREFIX: &str = "/v1/inbound/";

fn callback_path(s: &InboundSource) -> String {
    format!("{CALLBACK_PREFIX}{}/{}", s.kind, s.token)
}

/// A request path as the access log and the audit log keep it: a
/// callback's token is a credential (anyone holding it can post events as
/// the gateway), so everything after the source becomes `[redacted]`.
pub(crate) fn redacted_path(path: &str) -> std::borrow::Cow<'_, str> {
    match path.strip_prefix(CALLBACK_PREFIX).and_then(|rest| rest.split_once('/')) {
        Some((source, _token)) => format!("{CALLBACK_PREFIX}{source}/[redacted]").into(),
        None => path.into(),
    }
}

/// A connected gateway.
#[derive(Serialize, ToSchema)]
pub struct SourceBody {
    #[schema(value_type = String)]
    id: InboundSourceId,
    /// `stripe` or `generic`.
    #[schema(example = "stripe")]
    source: &'static str,
    /// Where the gateway posts its callbacks (keep it secret: the token is part of it).
    url_path: String,
    created_at: chrono::DateTime<chrono::Utc>,
    /// For a `generic` source, at creation only: the Standard Webhooks secret its sender signs with.
    #[serde(skip_serializing_if = "Option::is_none")]
    signing_secret: Option<String>,
}

impl From<&InboundSource> for SourceBody {
    fn from(s: &InboundSource) -> Self {
        Self {
            id: s.id.clone(),
            source: s.kind.as_str(),
            url_path: callback_path(s),
            created_at: s.created_at,
            signing_secret: None,
        }
    }
}

/// A gateway to connect.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceCreate {
    /// `stripe` or `generic` (Standard Webhooks signatures).
    #[schema(example = "stripe")]
    source: String,
    /// Stripe: the endpoint's signing secret (required). Generic: a `whsec_` secret, generated if absent.
    signing_secret: Option<String>,
}

/// What a callback led to.
#[derive(Serialize, ToSchema)]
pub struct ReceivedBody {
    received: bool,
    /// `true` for a gateway event Hookhub does not map (acknowledged so the gateway stops retrying).
    #[serde(skip_serializing_if = "Option::is_none")]
    ignored: Option<bool>,
    /// The domain event it became.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    event_id: Option<hookhub_store::domain::EventId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    r#type: Option<hookhub_store::domain::EventType>,
    /// `true` when the gateway sent this callback before.
    #[serde(skip_serializing_if = "Option::is_none")]
    replayed: Option<bool>,
}

impl Default for ReceivedBody {
    fn default() -> Self {
        Self { received: true, ignored: None, event_id: None, r#type: None, replayed: None }
    }
}

/// `POST /v1/inbound-sources` `{source: "stripe", signing_secret}` or
/// `{source: "generic"}` → 201 with the callback `url_path` (and, for a
/// generic source, the Standard Webhooks secret its sender must sign with).
#[utoipa::path(operation_id = "create_inbound_source", post, path = "/v1/inbound-sources", tag = "integrations", request_body = SourceCreate,
    responses((status = 201, body = SourceBody)), security(("bearer" = ["write"])))]
pub async fn create(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    body: web::Json<SourceCreate>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let kind: InboundKind =
        body.source.parse().map_err(|_| ApiError::field("source", "must be \"stripe\" or \"generic\""))?;
    let secret = match (kind, body.signing_secret) {
        (InboundKind::Stripe, Some(s)) if !s.is_empty() && s.len() <= 256 && !s.contains('\0') => s,
        (InboundKind::Stripe, _) => {
            return Err(ApiError::field("signing_secret", "is required: the endpoint's signing secret from Stripe"))
        }
        (InboundKind::Generic, Some(s)) => {
            SigningSecret::parse(&s).map_err(|e| ApiError::field("signing_secret", e))?;
            s
        }
        (InboundKind::Generic, None) => SigningSecret::generate().expose(),
    };
    let source = state.store.create_inbound_source(&tenant.id, kind, secret).await?;
    let mut out = SourceBody::from(&source);
    if kind == InboundKind::Generic {
        out.signing_secret = Some(source.signing_secret);
    }
    Ok(HttpResponse::Created().json(out))
}

/// `GET /v1/inbound-sources`.
#[utoipa::path(operation_id = "list_inbound_sources", get, path = "/v1/inbound-sources", tag = "integrations",
    responses((status = 200, body = ListBody<SourceBody>)), security(("bearer" = ["read"])))]
pub async fn list(state: web::Data<AppState>, Authenticated(tenant): Authenticated) -> Result<HttpResponse, ApiError> {
    let sources = state.store.list_inbound_sources(&tenant.id).await?;
    Ok(HttpResponse::Ok().json(ListBody::all(sources.iter().map(SourceBody::from).collect())))
}

/// `DELETE /v1/inbound-sources/{id}` → 204; its URL stops working at once.
#[utoipa::path(operation_id = "delete_inbound_source", delete, path = "/v1/inbound-sources/{id}", tag = "integrations", params(IdPath),
    responses((status = 204, description = "Deleted")), security(("bearer" = ["write"])))]
pub async fn delete(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: InboundSourceId = path_id(&id, "inbound source")?;
    state.store.delete_inbound_source(&tenant.id, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// `POST /v1/inbound/{source}/{token}`: a gateway's callback, authenticated
/// by its signature (`Stripe-Signature`, or the Standard Webhooks headers).
#[utoipa::path(operation_id = "receive_inbound_callback", post, path = "/v1/inbound/{source}/{token}", tag = "integrations",
    params(("source" = String, Path, description = "`stripe` or `generic`"),
        ("token" = String, Path, description = "The source's secret path token")),
    request_body(content = Object, description = "The gateway's event, exactly as signed"),
    responses((status = 200, body = ReceivedBody),
        (status = 400, description = "Bad or stale signature; nothing recorded", body = crate::error::ErrorBody),
        (status = 413, description = "The body is over the size limit", body = crate::error::ErrorBody),
        (status = 422, description = "A NUL character or an integer beyond 64 bits; nothing recorded", body = crate::error::ErrorBody),
        (status = 429, description = "Over the owning tenant's plan; the gateway retries later", body = crate::error::ErrorBody,
            headers(("Retry-After" = i64, description = "Seconds until the window resets")))))]
pub async fn receive(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (kind, token) = path.into_inner();
    let kind: InboundKind = kind.parse().map_err(|_| ApiError::NotFound("inbound source"))?;
    // Tokens are alphanumeric: anything else (NUL included) names nothing.
    if !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ApiError::NotFound("inbound source"));
    }
    let source =
        state.store.inbound_source_by_token(kind, &token).await?.ok_or(ApiError::NotFound("inbound source"))?;
    // Callbacks count against the owning tenant's plan; over it, a 429
    // makes the gateway retry later.
    let tenant = state.store.tenant(&source.tenant_id).await?;
    crate::auth::count_request(&state, &tenant, &req).await?;
    let raw = crate::body::read_limited(payload).await?;
    let at = now().timestamp();
    // The gateway's ids are keys in this source's own namespace.
    let key = |id: &str| Some(IdempotencyKey::new(&source.tenant_id, &KeyNamespace::Inbound(source.id.clone()), id));
    let new = match kind {
        InboundKind::Stripe => {
            stripe::verify(&source.signing_secret, header(&req, "stripe-signature"), &raw, at)?;
            let event: Value = crate::body::parse_json(&raw)?;
            let mapped = stripe::map(&event)
                .map_err(|e| ApiError::BadRequest { code: "invalid_event", message: e.to_string() })?;
            let Some(mapped) = mapped else {
                // Acknowledge what we do not map, or Stripe keeps retrying it.
                return Ok(HttpResponse::Ok().json(ReceivedBody { ignored: Some(true), ..ReceivedBody::default() }));
            };
            crate::input::nul_free_json("data", &mapped.data).map_err(|e| ApiError::Validation(vec![e]))?;
            NewEvent {
                event_type: mapped.event_type,
                data: mapped.data,
                idempotency_key: key(&mapped.dedupe_key),
                ordering_key: mapped.ordering_key,
            }
        }
        InboundKind::Generic => {
            let secret = SigningSecret::parse(&source.signing_secret).map_err(|_| ApiError::Internal)?;
            let msg_id = header(&req, signer::SignatureHeaders::ID);
            signer::verify(
                &secret,
                msg_id,
                header(&req, signer::SignatureHeaders::TIMESTAMP),
                header(&req, signer::SignatureHeaders::SIGNATURE),
                &raw,
                at,
            )
            .map_err(SignatureError::from)?;
            let body: IngestBody = crate::body::parse_json(&raw)?;
            let mut new = body.check(None, &source.tenant_id)?;
            new.idempotency_key = key(msg_id.unwrap_or_default());
            new
        }
    };
    // No backlog guard here (`AppState::admit_event`): a callback is one
    // payment fact, rare next to an import, and gateways retry a refusal
    // slowly (Stripe over hours), which would delay an offboarding far
    // longer than the backlog delays it. The plan's rate limit still applies.
    let outcome = state.store.ingest_event(&source.tenant_id, new).await?;
    if !outcome.replayed {
        state.event_accepted(&source.tenant_id);
    }
    Ok(HttpResponse::Ok().json(ReceivedBody {
        event_id: Some(outcome.event.id),
        r#type: Some(outcome.event.event_type),
        replayed: Some(outcome.replayed),
        ..ReceivedBody::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::redacted_path;

    #[test]
    fn callback_tokens_are_redacted_and_other_paths_kept() {
        assert_eq!(redacted_path("/v1/inbound/stripe/tok_secret"), "/v1/inbound/stripe/[redacted]");
        assert_eq!(redacted_path("/v1/inbound/generic/tok/more"), "/v1/inbound/generic/[redacted]");
        assert_eq!(redacted_path("/v1/inbound/stripe"), "/v1/inbound/stripe");
        assert_eq!(redacted_path("/v1/inbound-sources/src_1"), "/v1/inbound-sources/src_1");
        assert_eq!(redacted_path("/v1/events"), "/v1/events");
    }
}
