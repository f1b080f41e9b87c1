//! Platforms and the tenants they manage: creating a platform with its
//! first `platform` key, and creating, finding, listing, changing,
//! suspending and resuming its tenants, with the `tenant.*` events that
//! tell the platform's own subscriptions about each change.
//!
//! These queries cross tenants by design: they run on the hub's own
//! connection, not in a tenant scope, and every one of them is filtered by
//! the platform's id, so a platform sees only the tenants it manages.
use super::events::NewEvent;
use super::tenants::{tenant_row, Tenant};
use crate::domain::{now, ApiKey, DeliveryStatus, EventType, Plan, Scope, TenantId, TenantStatus};
use crate::entity::{delivery, tenant};
use crate::page::{paginate, Page, PageRequest};
use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use sea_orm::{ActiveEnum, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};

/// A tenant as its platform sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct ManagedTenant {
    /// The tenant.
    pub tenant: Tenant,
    /// The platform's JSON object about it.
    pub metadata: Option<Value>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// What a platform sends to create a tenant.
#[derive(Clone, Debug)]
pub struct NewTenant {
    /// A name for people.
    pub name: String,
    /// The platform's own id for it, unique per platform.
    pub external_id: Option<String>,
    /// Its rate-limit plan.
    pub plan: Plan,
    /// The platform's JSON object about it (no PHI: it is not sealed).
    pub metadata: Option<Value>,
}

/// What a platform may change about a tenant; `None` leaves it as it is.
#[derive(Clone, Debug, Default)]
pub struct TenantPatch {
    /// A new name.
    pub name: Option<String>,
    /// A new plan.
    pub plan: Option<Plan>,
    /// New metadata (replaces the old object).
    pub metadata: Option<Value>,
}

/// Which of its tenants a platform lists.
#[derive(Clone, Debug, Default)]
pub struct TenantFilter {
    /// Only on this plan.
    pub plan: Option<Plan>,
    /// Only in this status.
    pub status: Option<TenantStatus>,
}

impl TryFrom<tenant::Model> for ManagedTenant {
    type Error = StoreError;
    fn try_from(m: tenant::Model) -> Result<Self, StoreError> {
        let metadata = m
            .metadata
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|_| StoreError::Corrupt(format!("metadata of {}", m.id)))?;
        let created_at = m.created_at;
        Ok(Self { tenant: m.try_into()?, metadata, created_at })
    }
}

impl Store {
    /// Creates a platform (a tenant whose credentials may carry the
    /// `platform` scope) and its first key, with that scope; the key is
    /// returned once and only its hash is kept.
    pub async fn create_platform(&self, name: &str) -> Result<(Tenant, ApiKey), StoreError> {
        let row = tenant::ActiveModel { is_platform: Set(true), ..tenant_row(name, Plan::Unlimited) };
        let platform = self.insert_tenant(row).await?;
        let (_, key) = self.create_api_key(&platform.id, "platform", Scope::Platform).await?;
        Ok((platform, key))
    }

    /// Creates a tenant managed by `platform`, and tells the platform's
    /// subscriptions (`tenant.created`). No key is made: the platform acts
    /// for it, and issues it keys when it needs its own.
    pub async fn create_managed_tenant(
        &self,
        platform: &TenantId,
        new: NewTenant,
    ) -> Result<ManagedTenant, StoreError> {
        let row = tenant::ActiveModel {
            external_id: Set(new.external_id),
            platform_id: Set(Some(platform.to_string())),
            metadata: Set(new.metadata.as_ref().map(Value::to_string)),
            ..tenant_row(&new.name, new.plan)
        };
        let created: ManagedTenant = match tenant::Entity::insert(row).exec_with_returning(self.db()).await {
            Ok(m) => m.try_into()?,
            Err(e) if StoreError::is_unique_violation(&e) => return Err(StoreError::ExternalIdTaken),
            Err(e) => return Err(e.into()),
        };
        self.notify_platform(platform, "tenant.created", &created.tenant).await?;
        Ok(created)
    }

    /// One of `platform`'s tenants, by its `ten_…` id or the platform's
    /// external id; any other tenant is not found.
    pub async fn managed_tenant(&self, platform: &TenantId, reference: &str) -> Result<ManagedTenant, StoreError> {
        let by = match reference.parse::<TenantId>() {
            Ok(id) => tenant::Column::Id.eq(id.as_str()),
            Err(_) => tenant::Column::ExternalId.eq(reference),
        };
        tenant::Entity::find()
            .filter(tenant::Column::PlatformId.eq(platform.as_str()))
            .filter(by)
            .one(self.db())
            .await?
            .ok_or(StoreError::NotFound("tenant"))?
            .try_into()
    }

    /// `platform`'s tenants, newest first.
    pub async fn list_managed_tenants(
        &self,
        platform: &TenantId,
        filter: &TenantFilter,
        page: &PageRequest,
    ) -> Result<Page<ManagedTenant>, StoreError> {
        let mut select = tenant::Entity::find().filter(tenant::Column::PlatformId.eq(platform.as_str()));
        if let Some(plan) = filter.plan {
            select = select.filter(tenant::Column::Plan.eq(plan.to_string()));
        }
        if let Some(status) = filter.status {
            select = select.filter(tenant::Column::Status.eq(status));
        }
        let page = paginate(self.db(), select, tenant::Column::Id, |m| &m.id, page).await?;
        page.try_map(ManagedTenant::try_from)
    }

    /// Changes a tenant's name, plan or metadata.
    pub async fn update_managed_tenant(
        &self,
        platform: &TenantId,
        id: &TenantId,
        patch: TenantPatch,
    ) -> Result<ManagedTenant, StoreError> {
        let mut update = tenant::Entity::update_many()
            .filter(tenant::Column::Id.eq(id.as_str()))
            .filter(tenant::Column::PlatformId.eq(platform.as_str()));
        if let Some(name) = patch.name {
            update = update.col_expr(tenant::Column::Name, name.into());
        }
        if let Some(plan) = patch.plan {
            update = update.col_expr(tenant::Column::Plan, plan.to_string().into());
        }
        if let Some(metadata) = patch.metadata {
            update = update.col_expr(tenant::Column::Metadata, Some(metadata.to_string()).into());
        }
        // An empty patch still proves the tenant exists.
        let changed = update.col_expr(tenant::Column::Id, id.as_str().into()).exec(self.db()).await?;
        if changed.rows_affected == 0 {
            return Err(StoreError::NotFound("tenant"));
        }
        // Cached principals carry the plan.
        self.credentials().invalidate();
        self.managed_tenant(platform, id.as_str()).await
    }

    /// Suspends a tenant (`tenant.suspended`): its new events are refused
    /// and its deliveries held until it is resumed.
    pub async fn suspend_tenant(&self, platform: &TenantId, id: &TenantId) -> Result<ManagedTenant, StoreError> {
        let suspended = self.move_tenant(platform, id, TenantStatus::Active, TenantStatus::Suspended).await?;
        self.notify_platform(platform, "tenant.suspended", &suspended.tenant).await?;
        Ok(suspended)
    }

    /// Resumes a suspended tenant (`tenant.resumed`): its events are
    /// accepted again, and every delivery it has pending is made due now,
    /// so what waited goes out first.
    pub async fn resume_tenant(&self, platform: &TenantId, id: &TenantId) -> Result<ManagedTenant, StoreError> {
        let resumed = self.move_tenant(platform, id, TenantStatus::Suspended, TenantStatus::Active).await?;
        delivery::Entity::update_many()
            .col_expr(delivery::Column::NextAttemptAt, Some(now()).into())
            .filter(delivery::Column::TenantId.eq(id.as_str()))
            .filter(delivery::Column::Status.eq(DeliveryStatus::Pending))
            .exec(self.db())
            .await?;
        self.notify_platform(platform, "tenant.resumed", &resumed.tenant).await?;
        Ok(resumed)
    }

    /// Moves one of `platform`'s tenants from status `from` to `to`;
    /// already in `to` is fine (a repeated call), anything else a conflict.
    pub(crate) async fn move_tenant(
        &self,
        platform: &TenantId,
        id: &TenantId,
        from: TenantStatus,
        to: TenantStatus,
    ) -> Result<ManagedTenant, StoreError> {
        let current = self.managed_tenant(platform, id.as_str()).await?;
        if current.tenant.status == to {
            return Ok(current);
        }
        let moved = tenant::Entity::update_many()
            .col_expr(tenant::Column::Status, to.into())
            .filter(tenant::Column::Id.eq(id.as_str()))
            .filter(tenant::Column::Status.eq(from))
            .exec(self.db())
            .await?;
        if moved.rows_affected == 0 {
            return Err(StoreError::Conflict(format!("the tenant is {}", current.tenant.status.to_value())));
        }
        // Cached principals carry the status.
        self.credentials().invalidate();
        self.managed_tenant(platform, id.as_str()).await
    }

    /// Whether `tenant`'s events are refused and its deliveries held
    /// (suspended or being erased); an unknown tenant is not paused.
    pub(crate) async fn tenant_paused(
        &self,
        db: &impl sea_orm::ConnectionTrait,
        tenant: &str,
    ) -> Result<bool, StoreError> {
        use sea_orm::QuerySelect;
        let status: Option<TenantStatus> = tenant::Entity::find_by_id(tenant)
            .select_only()
            .column(tenant::Column::Status)
            .into_tuple()
            .one(db)
            .await?;
        Ok(status.is_some_and(TenantStatus::is_paused))
    }

    /// Tells `platform`'s own subscriptions about a change to one of its
    /// tenants: an event of `kind` in the platform's tenant, carrying ids,
    /// name, plan and status (never metadata, which may be large).
    pub(crate) async fn notify_platform(
        &self,
        platform: &TenantId,
        kind: &'static str,
        tenant: &Tenant,
    ) -> Result<(), StoreError> {
        let event_type: EventType = kind.parse().map_err(|_| StoreError::Corrupt(format!("event type {kind}")))?;
        let data = json!({
            "tenant_id": tenant.id,
            "external_id": tenant.external_id,
            "name": tenant.name,
            "plan": tenant.plan.to_string(),
            "status": tenant.status,
        });
        self.ingest_event(platform, NewEvent { event_type, data, idempotency_key: None, ordering_key: None }).await?;
        Ok(())
    }
}
