//! `hookhub listen` sessions: a temporary subscription whose deliveries are
//! streamed to the CLI over server-sent events, since the hub cannot reach
//! a developer's laptop. Each message carries exactly the headers and body
//! a real delivery would, signed with the session's secret, so the local
//! receiver's verification code is exercised as in production.
use super::{path_id, IdPath};
use crate::auth::Authenticated;
use crate::body::OptionalJson;
use crate::{ApiError, AppState};
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use hookhub_store::domain::signer::{sign, SignatureHeaders};
use hookhub_store::domain::{now, webhook_body, EventId, EventTypeFilter, SubscriptionId, SubscriptionStatus};
use hookhub_store::repo::{Event, Subscription};
use hookhub_store::Store;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc;
use utoipa::ToSchema;

const POLL: Duration = Duration::from_millis(200);
const KEEPALIVE: Duration = Duration::from_secs(10);
/// Events may commit slightly out of id order; look back this far and skip
/// what was already sent.
const LOOKBACK: chrono::Duration = chrono::Duration::seconds(3);

/// What a session listens to.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartBody {
    /// Default `["*"]`.
    #[schema(value_type = Option<EventTypeFilter>)]
    event_types: Option<Vec<String>>,
}

/// A started listen session.
#[derive(Serialize, ToSchema)]
pub struct SessionBody {
    #[schema(value_type = String)]
    id: SubscriptionId,
    /// Signs the streamed deliveries, as a real endpoint's secret would.
    secret: String,
    #[schema(value_type = EventTypeFilter)]
    event_types: Vec<String>,
    /// Where to read the server-sent events.
    stream: String,
}

/// One server-sent event of a listen stream, as the wire carries it.
#[derive(ToSchema)]
#[allow(dead_code)] // documents the stream; `message` writes the same fields
struct StreamEvent {
    /// Always `webhook`.
    #[schema(example = "webhook")]
    event: String,
    /// JSON of `{id, type, headers, body}`: the delivery exactly as an endpoint would get it, signed.
    data: String,
}

/// `POST /v1/listen` `{event_types?}` → 201 `{id, secret, event_types, stream}`.
#[utoipa::path(operation_id = "start_listen_session", post, path = "/v1/listen", tag = "integrations", request_body(content = Option<StartBody>),
    responses((status = 201, body = SessionBody)), security(("bearer" = ["write"])))]
pub async fn start(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    OptionalJson(body): OptionalJson<StartBody>,
) -> Result<HttpResponse, ApiError> {
    let types = body.and_then(|b| b.event_types).unwrap_or_else(|| vec!["*".to_owned()]);
    let filter = EventTypeFilter::parse(&types).map_err(|e| ApiError::field("event_types", e))?;
    let sub = state.store.create_listen_subscription(&tenant.id, filter).await?;
    Ok(HttpResponse::Created().json(SessionBody {
        stream: format!("/v1/listen/{}/stream", sub.id),
        secret: sub.secret.expose(),
        event_types: sub.event_types.to_strings(),
        id: sub.id,
    }))
}

/// `GET /v1/listen/{id}/stream`: server-sent events, one `webhook` event per
/// delivery. The session ends, and its subscription is deleted, when the
/// client disconnects.
#[utoipa::path(operation_id = "stream_listen_session", get, path = "/v1/listen/{id}/stream", tag = "integrations", params(IdPath),
    responses((status = 200, description = "Server-sent events, one per delivery", content_type = "text/event-stream",
        body = StreamEvent)),
    security(("bearer" = ["read"])))]
pub async fn stream(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: SubscriptionId = path_id(&id, "listen session")?;
    let sub = state.store.subscription(&tenant.id, &id).await?;
    if sub.status != SubscriptionStatus::Listening {
        return Err(ApiError::NotFound("listen session"));
    }
    let (tx, rx) = mpsc::channel::<web::Bytes>(32);
    tokio::spawn(pump(state.store.clone(), sub, tx));
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (Ok::<_, actix_web::Error>(chunk), rx))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache"))
        .streaming(body))
}

fn message(sub: &Subscription, event: &Event) -> web::Bytes {
    let body = webhook_body(event);
    let signature = sign(&sub.secret, event.id.as_str(), now().timestamp(), &body);
    let data = json!({
        "id": event.id,
        "type": event.event_type,
        "headers": {
            "content-type": "application/json",
            SignatureHeaders::ID: signature.id,
            SignatureHeaders::TIMESTAMP: signature.timestamp.to_string(),
            SignatureHeaders::SIGNATURE: signature.signature,
        },
        "body": String::from_utf8_lossy(&body),
    });
    web::Bytes::from(format!("event: webhook\ndata: {data}\n\n"))
}

/// Feeds the session until the client goes away, then deletes it.
async fn pump(store: Store, sub: Subscription, tx: mpsc::Sender<web::Bytes>) {
    let mut since = sub.created_at;
    let mut sent: HashMap<EventId, DateTime<Utc>> = HashMap::new();
    let mut last_write = tokio::time::Instant::now();
    if tx.send(web::Bytes::from_static(b": connected\n\n")).await.is_ok() {
        loop {
            let events = match store.events_since(&sub.tenant_id, since - LOOKBACK, 500).await {
                Ok(events) => events,
                Err(e) => {
                    tracing::warn!(error = %e, "listen session could not read events");
                    Vec::new()
                }
            };
            let mut gone = false;
            for event in events {
                since = since.max(event.created_at);
                if sent.contains_key(&event.id) || !sub.event_types.matches(&event.event_type) {
                    continue;
                }
                if tx.send(message(&sub, &event)).await.is_err() {
                    gone = true;
                    break;
                }
                last_write = tokio::time::Instant::now();
                sent.insert(event.id, event.created_at);
            }
            sent.retain(|_, at| *at >= since - LOOKBACK);
            // A comment line now and then is how a vanished client is noticed.
            if !gone && last_write.elapsed() >= KEEPALIVE {
                gone = tx.send(web::Bytes::from_static(b": keepalive\n\n")).await.is_err();
                last_write = tokio::time::Instant::now();
            }
            if gone || tx.is_closed() {
                break;
            }
            tokio::time::sleep(POLL).await;
        }
    }
    if let Err(e) = store.delete_subscription(&sub.tenant_id, &sub.id).await {
        tracing::debug!(error = %e, "listen session already removed");
    }
}
