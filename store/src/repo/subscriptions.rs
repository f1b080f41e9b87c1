//! Subscriptions: endpoints, the event types they want, their sealed secrets
//! and URLs, and matching an event to them.
use super::stored;
use crate::cipher::Cipher;
use crate::domain::{
    now, DeliveryStatus, EndpointUrl, EventType, EventTypeFilter, OrderingPolicy, SigningSecret, SubscriptionId,
    SubscriptionStatus, TenantId,
};
use crate::entity::{attempt, delivery, subscription};
use crate::page::{paginate, Page, PageRequest};
use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};

/// The `disabled_reason` of a subscription whose endpoint answered `410
/// Gone`; the retention job purges these after a while.
pub const GONE_REASON: &str = "endpoint answered 410 Gone";

/// A subscription as the rest of the hub sees it: every field parsed.
#[derive(Clone, Debug)]
pub struct Subscription {
    /// Its id.
    pub id: SubscriptionId,
    /// The tenant that owns it.
    pub tenant_id: TenantId,
    /// Where deliveries are POSTed.
    pub url: String,
    /// Free text for the owner.
    pub description: String,
    /// Which event types it receives.
    pub event_types: EventTypeFilter,
    /// The HMAC key deliveries are signed with.
    pub secret: SigningSecret,
    /// Active or disabled.
    pub status: SubscriptionStatus,
    /// Why it was disabled, when it was.
    pub disabled_reason: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// The secret before the last rotation, and until when it still signs.
    pub previous_secret: Option<(SigningSecret, DateTime<Utc>)>,
    /// Consecutive failed attempts.
    pub failure_streak: i32,
    /// When the current run of failures began.
    pub failing_since: Option<DateTime<Utc>>,
    /// Deliveries per second the receiver accepts, if limited.
    pub rate_limit_per_second: Option<u32>,
    /// Whether its deliveries keep order per key.
    pub ordering: OrderingPolicy,
    /// Its filter and transform (JavaScript sources), if it has them.
    pub programs: Programs,
}

/// A subscription's filter and transform, as JavaScript sources. Their
/// meaning and sandbox are the dispatcher's (`transform` module); the API
/// checks that they compile before they are saved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Programs {
    /// An expression over `event`; a falsy result filters the event out.
    pub filter: Option<String>,
    /// A script defining `function handler(webhook)`.
    pub transform: Option<String>,
}

impl Subscription {
    /// The secrets a delivery is signed with at `at`: the current one, and
    /// during a rotation's grace period the previous one too, so receivers
    /// can switch secrets without dropping a delivery.
    pub fn signing_secrets(&self, at: DateTime<Utc>) -> Vec<&SigningSecret> {
        let mut secrets = vec![&self.secret];
        if let Some((previous, until)) = &self.previous_secret {
            if at < *until {
                secrets.push(previous);
            }
        }
        secrets
    }
}

/// The event types a row asks for.
fn event_types_of(m: &subscription::Model) -> Result<EventTypeFilter, StoreError> {
    let corrupt = || StoreError::Corrupt(format!("subscription {}: event_types", m.id));
    let types: Vec<String> = serde_json::from_value(m.event_types.clone()).map_err(|_| corrupt())?;
    EventTypeFilter::parse(&types).map_err(|_| corrupt())
}

impl Subscription {
    /// Reads a row, opening its sealed secrets and URL.
    pub(crate) fn from_row(m: subscription::Model, cipher: &Cipher) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("subscription {}: {what}", m.id));
        Ok(Self {
            id: stored(&m.id)?,
            tenant_id: stored(&m.tenant_id)?,
            event_types: event_types_of(&m)?,
            secret: SigningSecret::parse(&cipher.open_text(&m.secret, &m.id)?).map_err(|_| corrupt("secret"))?,
            url: cipher.open_text(&m.url, &m.id)?,
            description: m.description,
            status: m.status,
            disabled_reason: m.disabled_reason,
            created_at: m.created_at,
            updated_at: m.updated_at,
            previous_secret: match (&m.previous_secret, m.previous_secret_expires_at) {
                (Some(raw), Some(until)) => {
                    let raw = cipher.open_text(raw, &m.id)?;
                    Some((SigningSecret::parse(&raw).map_err(|_| corrupt("previous_secret"))?, until))
                }
                _ => None,
            },
            failure_streak: m.failure_streak,
            failing_since: m.failing_since,
            rate_limit_per_second: m.rate_limit_per_second.and_then(|r| u32::try_from(r).ok()),
            programs: Programs { filter: m.filter, transform: m.transform },
            ordering: OrderingPolicy { mode: m.ordering, on_dead_letter: m.on_dead_letter },
        })
    }
}

/// A subscription whose row cannot be read: its secret was sealed with a
/// key that left the keyring, or the row is corrupt. Fan-out holds its
/// deliveries instead of failing the batch it shares with other tenants.
#[derive(Clone, Debug)]
pub struct UnreadableSubscription {
    /// Its id, as stored (it may be what is corrupt).
    pub id: String,
    /// Its tenant's id, as stored.
    pub tenant_id: String,
    /// Why it does not read (names keys and columns, never values).
    pub reason: String,
    /// Its pending deliveries (counted only for operators' listings).
    pub held_deliveries: u64,
}

impl UnreadableSubscription {
    fn of(row: &subscription::Model, error: &StoreError) -> Self {
        Self { id: row.id.clone(), tenant_id: row.tenant_id.clone(), ..Self::of_error(error) }
    }

    fn of_error(error: &StoreError) -> Self {
        Self { id: String::new(), tenant_id: String::new(), reason: error.to_string(), held_deliveries: 0 }
    }
}

/// The subscriptions an event goes to.
#[derive(Clone, Debug, Default)]
pub struct Matching {
    /// Ready to be sent to.
    pub readable: Vec<Subscription>,
    /// Wanting the event but unreadable, or of a suspended tenant: their
    /// deliveries are held.
    pub unreadable: Vec<UnreadableSubscription>,
    /// The tenant is suspended: every subscription is in `unreadable`.
    pub suspended: bool,
}

/// What a tenant sends to create a subscription.
#[derive(Clone, Debug)]
pub struct NewSubscription {
    /// Endpoint URL.
    pub url: EndpointUrl,
    /// Event types wanted.
    pub event_types: EventTypeFilter,
    /// Free text.
    pub description: String,
    /// Deliveries per second the endpoint accepts, if limited.
    pub rate_limit_per_second: Option<u32>,
    /// `Active`, or `Disabled` to set it up paused.
    pub status: SubscriptionStatus,
    /// Its filter and transform, checked by the caller.
    pub programs: Programs,
    /// Unordered (the default) or ordered per key.
    pub ordering: OrderingPolicy,
}

/// A partial update; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct SubscriptionPatch {
    /// New endpoint URL.
    pub url: Option<EndpointUrl>,
    /// New event types.
    pub event_types: Option<EventTypeFilter>,
    /// New description.
    pub description: Option<String>,
    /// Enable or disable.
    pub status: Option<SubscriptionStatus>,
    /// New rate limit; `Some(None)` removes it.
    pub rate_limit_per_second: Option<Option<u32>>,
    /// New ordering mode.
    pub ordering: Option<crate::domain::OrderingMode>,
    /// New dead-letter behaviour of an ordered subscription.
    pub on_dead_letter: Option<crate::domain::OnDeadLetter>,
    /// New filter; `Some(None)` removes it.
    pub filter: Option<Option<String>>,
    /// New transform; `Some(None)` removes it.
    pub transform: Option<Option<String>>,
}

/// A subscription row to insert, before its id and secret.
struct NewRow {
    url: String,
    event_types: EventTypeFilter,
    description: String,
    status: SubscriptionStatus,
    rate_limit_per_second: Option<u32>,
    programs: Programs,
    ordering: OrderingPolicy,
}

fn types_json(filter: &EventTypeFilter) -> serde_json::Value {
    serde_json::Value::from(filter.to_strings())
}

impl Store {
    /// Creates a subscription with a fresh signing secret.
    pub async fn create_subscription(
        &self,
        tenant: &TenantId,
        new: NewSubscription,
    ) -> Result<Subscription, StoreError> {
        let status = match new.status {
            SubscriptionStatus::Disabled => SubscriptionStatus::Disabled,
            // A listen session is made only by `create_listen_subscription`.
            SubscriptionStatus::Active | SubscriptionStatus::Listening => SubscriptionStatus::Active,
        };
        let url = new.url.to_string();
        let row = NewRow {
            url,
            event_types: new.event_types,
            description: new.description,
            status,
            rate_limit_per_second: new.rate_limit_per_second,
            programs: new.programs,
            ordering: new.ordering,
        };
        self.insert_subscription(tenant, row).await
    }

    /// Creates the subscription of a `hookhub listen` session: it has a
    /// secret and event types like any other, but events are streamed to
    /// the CLI instead of POSTed, so it has no URL.
    pub async fn create_listen_subscription(
        &self,
        tenant: &TenantId,
        event_types: EventTypeFilter,
    ) -> Result<Subscription, StoreError> {
        let row = NewRow {
            url: "hookhub-listen:".into(),
            event_types,
            description: "hookhub listen session".to_owned(),
            status: SubscriptionStatus::Listening,
            rate_limit_per_second: None,
            programs: Programs::default(),
            ordering: OrderingPolicy::default(),
        };
        self.insert_subscription(tenant, row).await
    }

    async fn insert_subscription(&self, tenant: &TenantId, row: NewRow) -> Result<Subscription, StoreError> {
        let NewRow { url, event_types, description, status, rate_limit_per_second, programs, ordering } = row;
        let at = now();
        let id = SubscriptionId::generate().to_string();
        let model = subscription::ActiveModel {
            secret: Set(self.cipher().seal_text(&SigningSecret::generate().expose(), &id)),
            // Endpoint URLs carry their owners' tokens (a Zapier hook URL
            // is its own credential): sealed like the secret.
            url: Set(self.cipher().seal_text(&url, &id)),
            id: Set(id),
            tenant_id: Set(tenant.to_string()),
            description: Set(description),
            event_types: Set(types_json(&event_types)),
            status: Set(status),
            disabled_reason: Set((status == SubscriptionStatus::Disabled).then(|| "disabled by owner".to_owned())),
            created_at: Set(at),
            updated_at: Set(at),
            previous_secret: Set(None),
            previous_secret_expires_at: Set(None),
            failure_streak: Set(0),
            failing_since: Set(None),
            rate_limit_per_second: Set(rate_limit_per_second.and_then(|r| i32::try_from(r).ok())),
            filter: Set(programs.filter),
            transform: Set(programs.transform),
            ordering: Set(ordering.mode),
            on_dead_letter: Set(ordering.on_dead_letter),
        };
        Subscription::from_row(self.insert_as_tenant(tenant, model).await?, self.cipher())
    }

    async fn subscription_model(
        &self,
        db: &impl ConnectionTrait,
        tenant: &TenantId,
        id: &SubscriptionId,
    ) -> Result<subscription::Model, StoreError> {
        subscription::Entity::find_by_id(id.as_str())
            .filter(subscription::Column::TenantId.eq(tenant.as_str()))
            .one(db)
            .await?
            .ok_or(StoreError::NotFound("subscription"))
    }

    /// One subscription of the tenant (read under row-level security).
    pub async fn subscription(&self, tenant: &TenantId, id: &SubscriptionId) -> Result<Subscription, StoreError> {
        let txn = self.tenant_scope(tenant).await?;
        let row = self.subscription_model(&txn, tenant, id).await;
        txn.commit().await?;
        Subscription::from_row(row?, self.cipher())
    }

    /// The tenant's subscriptions, newest first.
    pub async fn list_subscriptions(
        &self,
        tenant: &TenantId,
        page: &PageRequest,
    ) -> Result<Page<Subscription>, StoreError> {
        let txn = self.tenant_scope(tenant).await?;
        let select = subscription::Entity::find().filter(subscription::Column::TenantId.eq(tenant.as_str()));
        let page = paginate(&txn, select, subscription::Column::Id, |m| &m.id, page).await?;
        txn.commit().await?;
        page.try_map(|m| Subscription::from_row(m, self.cipher()))
    }

    /// Applies a partial update.
    pub async fn update_subscription(
        &self,
        tenant: &TenantId,
        id: &SubscriptionId,
        patch: SubscriptionPatch,
    ) -> Result<Subscription, StoreError> {
        let txn = self.tenant_scope(tenant).await?;
        let current = self.subscription_model(&txn, tenant, id).await?;
        if patch.status.is_some() && current.status == SubscriptionStatus::Listening {
            return Err(StoreError::Conflict("a listen session's status cannot change; end the session".into()));
        }
        let mut model = current.into_active_model();
        if let Some(url) = patch.url {
            model.url = Set(self.cipher().seal_text(&url.to_string(), id.as_str()));
        }
        if let Some(types) = patch.event_types {
            model.event_types = Set(types_json(&types));
        }
        if let Some(description) = patch.description {
            model.description = Set(description);
        }
        if let Some(rate) = patch.rate_limit_per_second {
            model.rate_limit_per_second = Set(rate.and_then(|r| i32::try_from(r).ok()));
        }
        if let Some(filter) = patch.filter {
            model.filter = Set(filter);
        }
        if let Some(transform) = patch.transform {
            model.transform = Set(transform);
        }
        if let Some(mode) = patch.ordering {
            model.ordering = Set(mode);
        }
        if let Some(on_dead_letter) = patch.on_dead_letter {
            model.on_dead_letter = Set(on_dead_letter);
        }
        if let Some(status) = patch.status {
            model.status = Set(status);
            model.disabled_reason = Set(match status {
                SubscriptionStatus::Active | SubscriptionStatus::Listening => None,
                SubscriptionStatus::Disabled => Some("disabled by owner".to_owned()),
            });
            if status == SubscriptionStatus::Active {
                // A fresh start: the breaker counts from zero again.
                model.failure_streak = Set(0);
                model.failing_since = Set(None);
            }
        }
        model.updated_at = Set(now());
        let row = model.update(&txn).await?;
        txn.commit().await?;
        Subscription::from_row(row, self.cipher())
    }

    /// Issues a new signing secret; the old one keeps signing (as a second
    /// signature) for `grace`.
    pub async fn rotate_secret(
        &self,
        tenant: &TenantId,
        id: &SubscriptionId,
        grace: chrono::Duration,
    ) -> Result<Subscription, StoreError> {
        let txn = self.tenant_scope(tenant).await?;
        let current = self.subscription_model(&txn, tenant, id).await?;
        let at = now();
        let mut model = current.clone().into_active_model();
        model.secret = Set(self.cipher().seal_text(&SigningSecret::generate().expose(), id.as_str()));
        model.previous_secret = Set(Some(current.secret));
        model.previous_secret_expires_at = Set(Some(at + grace));
        model.updated_at = Set(at);
        let row = model.update(&txn).await?;
        txn.commit().await?;
        Subscription::from_row(row, self.cipher())
    }

    /// Deletes a subscription with its deliveries and attempts; pending
    /// deliveries to it stop at once.
    pub async fn delete_subscription(&self, tenant: &TenantId, id: &SubscriptionId) -> Result<(), StoreError> {
        let txn = self.tenant_scope(tenant).await?;
        self.subscription_model(&txn, tenant, id).await?;
        attempt::Entity::delete_many().filter(attempt::Column::SubscriptionId.eq(id.as_str())).exec(&txn).await?;
        delivery::Entity::delete_many().filter(delivery::Column::SubscriptionId.eq(id.as_str())).exec(&txn).await?;
        subscription::Entity::delete_by_id(id.as_str()).exec(&txn).await?;
        txn.commit().await?;
        Ok(())
    }

    /// The tenant's active subscriptions that want this event type.
    ///
    /// One that cannot be read is not an error of the whole call, which
    /// would stop fan-out for every tenant sharing the batch: it comes back
    /// in [`Matching::unreadable`] when its event types still read and
    /// match, so that its deliveries are held rather than lost. One whose
    /// event types or ids do not read cannot be matched at all; it is
    /// logged with its id, and `hookhub subscriptions unreadable` lists it.
    pub async fn matching_subscriptions(
        &self,
        tenant: &TenantId,
        event_type: &EventType,
    ) -> Result<Matching, StoreError> {
        // Type lists are JSON, which the two backends query differently;
        // a tenant has few subscriptions, so filtering here is cheap.
        // Side by side, on two connections: under load each round trip
        // waits its turn for the database's CPU, and fan-out's latency is
        // what the tenant's webhook waits.
        let rows = subscription::Entity::find()
            .filter(subscription::Column::TenantId.eq(tenant.as_str()))
            .filter(subscription::Column::Status.eq(SubscriptionStatus::Active))
            .all(self.reader());
        let rows = async { rows.await.map_err(StoreError::from) };
        let (rows, suspended) = tokio::try_join!(rows, self.tenant_paused(self.reader(), tenant.as_str()))?;
        let mut out = Matching { suspended, ..Matching::default() };
        for row in rows {
            // Types first: a subscription that does not want the event is
            // skipped before its secret and URL are opened.
            match event_types_of(&row) {
                Ok(types) if !types.matches(event_type) => continue,
                Ok(_) if row.id.parse::<SubscriptionId>().is_ok() => {}
                Ok(_) | Err(_) => {
                    tracing::error!(subscription_id = %row.id, "subscription cannot be read or matched");
                    continue;
                }
            }
            let (id, tenant_id) = (row.id.clone(), row.tenant_id.clone());
            // A suspended tenant's deliveries are written held, as an
            // unreadable subscription's are, and wait for its resumption.
            let read = if out.suspended {
                Err(StoreError::TenantSuspended)
            } else {
                Subscription::from_row(row, self.cipher())
            };
            match read {
                Ok(sub) => out.readable.push(sub),
                Err(e) => out.unreadable.push(UnreadableSubscription {
                    id,
                    tenant_id,
                    ..UnreadableSubscription::of_error(&e)
                }),
            }
        }
        Ok(out)
    }

    /// Every subscription whose row does not read, for operators.
    pub async fn unreadable_subscriptions(&self) -> Result<Vec<UnreadableSubscription>, StoreError> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut select = subscription::Entity::find().order_by_asc(subscription::Column::Id).limit(500);
            if let Some(after) = &after {
                select = select.filter(subscription::Column::Id.gt(after.as_str()));
            }
            let rows = select.all(self.db()).await?;
            let Some(last) = rows.last() else { break };
            after = Some(last.id.clone());
            for row in rows {
                if let Err(e) = Subscription::from_row(row.clone(), self.cipher()) {
                    let held_deliveries = delivery::Entity::find()
                        .filter(delivery::Column::SubscriptionId.eq(row.id.as_str()))
                        .filter(delivery::Column::Status.eq(DeliveryStatus::Pending))
                        .count(self.db())
                        .await?;
                    out.push(UnreadableSubscription { held_deliveries, ..UnreadableSubscription::of(&row, &e) });
                }
            }
        }
        Ok(out)
    }

    /// Disables a subscription (its endpoint answered `410 Gone`) and fails
    /// its other pending deliveries, inside the caller's transaction.
    pub(crate) async fn disable_subscription_in(
        db: &impl ConnectionTrait,
        id: &SubscriptionId,
        reason: &str,
    ) -> Result<(), StoreError> {
        let at = now();
        subscription::Entity::update_many()
            .col_expr(subscription::Column::Status, SubscriptionStatus::Disabled.into())
            .col_expr(subscription::Column::DisabledReason, Some(reason.to_owned()).into())
            .col_expr(subscription::Column::UpdatedAt, at.into())
            .filter(subscription::Column::Id.eq(id.as_str()))
            .exec(db)
            .await?;
        delivery::Entity::update_many()
            .col_expr(delivery::Column::Status, DeliveryStatus::Failed.into())
            .col_expr(delivery::Column::NextAttemptAt, Option::<DateTime<Utc>>::None.into())
            .col_expr(delivery::Column::LastError, Some(reason.to_owned()).into())
            .col_expr(delivery::Column::UpdatedAt, at.into())
            .filter(delivery::Column::SubscriptionId.eq(id.as_str()))
            .filter(delivery::Column::Status.eq(DeliveryStatus::Pending))
            .exec(db)
            .await?;
        Ok(())
    }
}
