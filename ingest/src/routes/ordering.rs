//! `/v1/subscriptions/{id}/blocked-keys`: the keys an ordered subscription
//! is held up on, and skipping the delivery that holds one.
//!
//! A key is held up when its head delivery (the earliest still open) has
//! failed and waits for a retry, or was dead-lettered while the
//! subscription blocks on dead letters (`on_dead_letter: "block"`). Two
//! ways out: redeliver the head (`POST /v1/events/{event_id}/redeliver`
//! with its `subscription_id`: it goes first, then the rest of the key),
//! or skip it here (the rest of the key goes without it).
use super::{path_id, IdPath};
use crate::auth::Authenticated;
use crate::{ApiError, AppState};
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use hookhub_store::domain::{DeliveryStatus, OrderingKey, SubscriptionId};
use hookhub_store::repo::{BlockedKey, Delivery, KeyBlock, BLOCKED_KEYS_SHOWN};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

/// Why a key is held up.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BlockReason {
    /// Its head delivery failed and waits for its next retry: the key
    /// moves on by itself when that succeeds or is dead-lettered.
    Retrying,
    /// Its head delivery was dead-lettered and the subscription blocks on
    /// that: redeliver it or skip it.
    DeadLettered,
}

/// The delivery holding a key up.
#[derive(Serialize, ToSchema)]
pub struct HeadBody {
    /// The delivery's id.
    #[schema(example = "dlv_01JD6F0Q6A8Y3W5Z7X9B1C2D3E")]
    delivery_id: String,
    /// Its event: redeliver it with `POST /v1/events/{event_id}/redeliver`.
    #[schema(example = "evt_01JD6F0Q6A8Y3W5Z7X9B1C2D3E")]
    event_id: String,
    status: DeliveryStatus,
    attempts: i32,
    next_attempt_at: Option<DateTime<Utc>>,
    last_status_code: Option<i32>,
    last_error: Option<String>,
}

impl From<Delivery> for HeadBody {
    fn from(d: Delivery) -> Self {
        Self {
            delivery_id: d.id.to_string(),
            event_id: d.event_id.to_string(),
            status: d.status,
            attempts: d.attempt_count,
            next_attempt_at: d.next_attempt_at,
            last_status_code: d.last_status_code,
            last_error: d.last_error,
        }
    }
}

/// A key the subscription is held up on.
#[derive(Serialize, ToSchema)]
pub struct BlockedKeyBody {
    #[schema(value_type = String, example = "apt_42")]
    ordering_key: OrderingKey,
    reason: BlockReason,
    /// The delivery that holds the key up.
    head: HeadBody,
    /// Later deliveries of the key waiting behind it.
    waiting: u64,
}

impl From<BlockedKey> for BlockedKeyBody {
    fn from(b: BlockedKey) -> Self {
        let reason = match b.block {
            KeyBlock::Retrying => BlockReason::Retrying,
            KeyBlock::DeadLettered => BlockReason::DeadLettered,
        };
        Self { ordering_key: b.ordering_key, reason, head: b.delivery.into(), waiting: b.waiting }
    }
}

/// The keys a subscription is held up on.
#[derive(Serialize, ToSchema)]
pub struct BlockedKeysBody {
    /// By key; at most `limit`.
    data: Vec<BlockedKeyBody>,
    /// The most one answer lists.
    limit: u64,
}

/// The `{id}` and `{key}` segments of a blocked key's path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // never built: only its derived parameter list is used
pub(crate) struct KeyPath {
    /// The subscription's id (`sub_...`).
    id: String,
    /// The ordering key, like `apt_42`.
    key: String,
}

/// `GET /v1/subscriptions/{id}/blocked-keys`: the keys whose head delivery
/// is failing or dead-lettered, by key (empty for an unordered subscription).
#[utoipa::path(operation_id = "list_blocked_keys", get, path = "/v1/subscriptions/{id}/blocked-keys", tag = "subscriptions",
    params(IdPath), responses((status = 200, body = BlockedKeysBody)), security(("bearer" = ["read"])))]
pub async fn list(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: SubscriptionId = path_id(&id, "subscription")?;
    let blocked = state.store.blocked_keys(&tenant.id, &id).await?;
    let data = blocked.into_iter().map(BlockedKeyBody::from).collect();
    Ok(HttpResponse::Ok().json(BlockedKeysBody { data, limit: BLOCKED_KEYS_SHOWN }))
}

/// `POST /v1/subscriptions/{id}/blocked-keys/{key}/skip`: lets the key's
/// next delivery go without the one holding it up. A dead-lettered head
/// stays in the dead letter (it can still be redelivered, out of order); a
/// retrying one is failed now. Answers with the skipped delivery.
#[utoipa::path(operation_id = "skip_blocked_key", post, path = "/v1/subscriptions/{id}/blocked-keys/{key}/skip",
    tag = "subscriptions", params(KeyPath), responses((status = 200, body = HeadBody),
        (status = 409, description = "The key's next delivery has not failed: nothing blocks it", body = crate::error::ErrorBody)),
    security(("bearer" = ["write"])))]
pub async fn skip(
    state: web::Data<AppState>,
    Authenticated(tenant): Authenticated,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, key) = path.into_inner();
    let id: SubscriptionId = path_id(&id, "subscription")?;
    let key: OrderingKey = path_id(&key, "blocked key")?;
    let skipped = state.store.skip_blocked_key(&tenant.id, &id, &key).await?;
    Ok(HttpResponse::Ok().json(HeadBody::from(skipped)))
}
