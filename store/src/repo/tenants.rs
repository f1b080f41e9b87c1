use super::stored;
use crate::domain::{now, ApiKey, TenantId};
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
}

impl TryFrom<tenant::Model> for Tenant {
    type Error = StoreError;
    fn try_from(m: tenant::Model) -> Result<Self, StoreError> {
        Ok(Self { id: stored(&m.id)?, name: m.name })
    }
}

impl Store {
    /// Creates a tenant and its API key; the key is returned once and only its hash is kept.
    pub async fn create_tenant(&self, name: &str) -> Result<(Tenant, ApiKey), StoreError> {
        let id = TenantId::generate();
        let key = ApiKey::generate();
        tenant::Entity::insert(tenant::ActiveModel {
            id: Set(id.to_string()),
            name: Set(name.to_owned()),
            api_key_hash: Set(key.hash().as_str().to_owned()),
            created_at: Set(now()),
        })
        .exec_without_returning(self.db())
        .await?;
        Ok((Tenant { id, name: name.to_owned() }, key))
    }

    /// The tenant a presented API key belongs to, if any.
    pub async fn tenant_by_api_key(&self, key: &ApiKey) -> Result<Option<Tenant>, StoreError> {
        tenant::Entity::find()
            .filter(tenant::Column::ApiKeyHash.eq(key.hash().as_str()))
            .one(self.db())
            .await?
            .map(Tenant::try_from)
            .transpose()
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
