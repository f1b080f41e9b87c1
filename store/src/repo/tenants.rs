//! Tenants: creating them with their first API key, their plans, and listing
//! them.
use super::stored;
use crate::domain::{now, ApiKey, Plan, Scope, TenantId, TenantStatus};
use crate::entity::tenant;
use crate::{Store, StoreError};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

/// A tenant: one platform account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    /// Its id.
    pub id: TenantId,
    /// Human name, for operators.
    pub name: String,
    /// Its rate-limit plan.
    pub plan: Plan,
    /// The platform's own id for it, when a platform manages it.
    pub external_id: Option<String>,
    /// The platform tenant that manages it, if one does.
    pub platform_id: Option<TenantId>,
    /// Whether its events are accepted and delivered.
    pub status: TenantStatus,
    /// Whether it is a platform (its credentials may carry the `platform` scope).
    pub is_platform: bool,
}

impl TryFrom<tenant::Model> for Tenant {
    type Error = StoreError;
    fn try_from(m: tenant::Model) -> Result<Self, StoreError> {
        let plan = m.plan.parse().map_err(|_| StoreError::Corrupt(format!("plan of {}", m.id)))?;
        Ok(Self {
            id: stored(&m.id)?,
            name: m.name,
            plan,
            external_id: m.external_id,
            platform_id: m.platform_id.as_deref().map(stored).transpose()?,
            status: m.status,
            is_platform: m.is_platform,
        })
    }
}

/// A new tenant's row: active, managed by no platform.
pub(crate) fn tenant_row(name: &str, plan: Plan) -> tenant::ActiveModel {
    tenant::ActiveModel {
        id: Set(TenantId::generate().to_string()),
        name: Set(name.to_owned()),
        // The tenants row keeps a hash only because the column predates
        // api_keys; keys live there now. A random one keeps it unique.
        api_key_hash: Set(ApiKey::generate().hash().as_str().to_owned()),
        created_at: Set(now()),
        plan: Set(plan.to_string()),
        external_id: Set(None),
        platform_id: Set(None),
        status: Set(TenantStatus::Active),
        metadata: Set(None),
        is_platform: Set(false),
    }
}

impl Store {
    /// Creates a tenant and its first API key (admin scope); the key is
    /// returned once and only its hash is kept.
    pub async fn create_tenant(&self, name: &str) -> Result<(Tenant, ApiKey), StoreError> {
        self.create_tenant_on(name, Plan::Unlimited).await
    }

    /// Creates a tenant on a rate-limit plan, with its first API key.
    pub async fn create_tenant_on(&self, name: &str, plan: Plan) -> Result<(Tenant, ApiKey), StoreError> {
        let tenant = self.insert_tenant(tenant_row(name, plan)).await?;
        let (_, key) = self.create_api_key(&tenant.id, "initial", Scope::Admin).await?;
        Ok((tenant, key))
    }

    /// Inserts a tenant row as given.
    pub(crate) async fn insert_tenant(&self, row: tenant::ActiveModel) -> Result<Tenant, StoreError> {
        row.insert(self.db()).await?.try_into()
    }

    /// Moves a tenant to another plan.
    pub async fn set_plan(&self, tenant: &TenantId, plan: Plan) -> Result<(), StoreError> {
        let updated = tenant::Entity::update_many()
            .col_expr(tenant::Column::Plan, plan.to_string().into())
            .filter(tenant::Column::Id.eq(tenant.as_str()))
            .exec(self.db())
            .await?;
        if updated.rows_affected == 0 {
            return Err(StoreError::NotFound("tenant"));
        }
        // Cached principals carry the plan.
        self.credentials().invalidate();
        Ok(())
    }

    /// One tenant (for requests that name no credential, like gateway callbacks).
    pub async fn tenant(&self, id: &TenantId) -> Result<Tenant, StoreError> {
        tenant::Entity::find_by_id(id.as_str()).one(self.db()).await?.ok_or(StoreError::NotFound("tenant"))?.try_into()
    }

    /// Every tenant, oldest first (operators' CLI).
    pub async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        tenant::Entity::find()
            .order_by_asc(tenant::Column::Id)
            .all(self.db())
            .await?
            .into_iter()
            .map(Tenant::try_from)
            .collect()
    }
}
