use super::stored;
use crate::domain::{now, InboundKind, InboundSourceId, TenantId};
use crate::entity::inbound_source;
use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use std::fmt;

/// A sender of callbacks (a payment gateway) connected to a tenant.
#[derive(Clone)]
pub struct InboundSource {
    /// Its id.
    pub id: InboundSourceId,
    /// The tenant its events belong to.
    pub tenant_id: TenantId,
    /// How callbacks are verified and mapped.
    pub kind: InboundKind,
    /// The unguessable path segment of its callback URL.
    pub token: String,
    /// The sender's signing secret.
    pub signing_secret: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl fmt::Debug for InboundSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboundSource").field("id", &self.id).field("kind", &self.kind).finish_non_exhaustive()
    }
}

impl TryFrom<inbound_source::Model> for InboundSource {
    type Error = StoreError;
    fn try_from(m: inbound_source::Model) -> Result<Self, StoreError> {
        Ok(Self {
            id: stored(&m.id)?,
            tenant_id: stored(&m.tenant_id)?,
            kind: m.kind.parse().map_err(|_| StoreError::Corrupt(format!("inbound source {}", m.id)))?,
            token: m.token,
            signing_secret: m.signing_secret,
            created_at: m.created_at,
        })
    }
}

fn token() -> String {
    use rand::distributions::{Alphanumeric, DistString};
    Alphanumeric.sample_string(&mut rand::rngs::OsRng, 32)
}

impl Store {
    /// Connects a sender; its callback URL carries a fresh random token.
    pub async fn create_inbound_source(
        &self,
        tenant: &TenantId,
        kind: InboundKind,
        signing_secret: String,
    ) -> Result<InboundSource, StoreError> {
        inbound_source::ActiveModel {
            id: Set(InboundSourceId::generate().to_string()),
            tenant_id: Set(tenant.to_string()),
            kind: Set(kind.to_string()),
            token: Set(token()),
            signing_secret: Set(signing_secret),
            created_at: Set(now()),
        }
        .insert(self.db())
        .await?
        .try_into()
    }

    /// The source a callback URL names, if any.
    pub async fn inbound_source_by_token(
        &self,
        kind: InboundKind,
        token: &str,
    ) -> Result<Option<InboundSource>, StoreError> {
        inbound_source::Entity::find()
            .filter(inbound_source::Column::Token.eq(token))
            .filter(inbound_source::Column::Kind.eq(kind.as_str()))
            .one(self.db())
            .await?
            .map(InboundSource::try_from)
            .transpose()
    }

    /// The tenant's sources, oldest first.
    pub async fn list_inbound_sources(&self, tenant: &TenantId) -> Result<Vec<InboundSource>, StoreError> {
        inbound_source::Entity::find()
            .filter(inbound_source::Column::TenantId.eq(tenant.as_str()))
            .order_by_asc(inbound_source::Column::Id)
            .all(self.db())
            .await?
            .into_iter()
            .map(InboundSource::try_from)
            .collect()
    }

    /// Disconnects a source: its URL stops working at once.
    pub async fn delete_inbound_source(&self, tenant: &TenantId, id: &InboundSourceId) -> Result<(), StoreError> {
        let deleted = inbound_source::Entity::delete_many()
            .filter(inbound_source::Column::TenantId.eq(tenant.as_str()))
            .filter(inbound_source::Column::Id.eq(id.as_str()))
            .exec(self.db())
            .await?;
        if deleted.rows_affected == 0 {
            return Err(StoreError::NotFound("inbound source"));
        }
        Ok(())
    }
}
