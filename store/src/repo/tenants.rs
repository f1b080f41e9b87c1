//! Tenants: creating them with their first API key, their plans, and listing
//! them.
use super::stored;
use crate::domain::{now, ApiKey, Plan, Scope, TenantId};
use crate::entity::tenant;
use crate::{Store, StoreError};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

/// A tenant: one platform account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    /// Its id.
    pub id: TenantId,
    /// Human name, for operators.
    pub name: String,
    /// Its rate-limit plan.
    pub plan: Plan,
}

impl TryFrom<tenant::Model> for Tenant {
    type Error = StoreError;
    fn try_from(m: tenant::Model) -> Result<Self, StoreError> {
        let plan = m.plan.parse().map_err(|_| StoreError::Corrupt(format!("plan of {}", m.id)))?;
        Ok(Self { id: stored(&m.id)?, name: m.name, plan })
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
        let id = TenantId::generate();
        // The tenants row keeps a hash only because the column predates
        // api_keys; keys live there now. A random one keeps it unique.
        tenant::Entity::insert(tenant::ActiveModel {
            id: Set(id.to_string()),
            name: Set(name.to_owned()),
            api_key_hash: Set(ApiKey::generate().hash().as_str().to_owned()),
            created_at: Set(now()),
            plan: Set(plan.to_string()),
        })
        .exec_without_returning(self.db())
        .await?;
        let (_, key) = self.create_api_key(&id, "initial", Scope::Admin).await?;
        Ok((Tenant { id, name: name.to_owned(), plan }, key))
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
