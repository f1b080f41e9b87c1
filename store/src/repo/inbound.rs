//! Inbound sources: gateways whose callbacks become events, with their sealed
//! signing secrets.
use super::stored;
use crate::cipher::Cipher;
use crate::domain::{now, InboundKind, InboundSourceId, TenantId};
use crate::entity::inbound_source;
use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
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

impl InboundSource {
    /// Reads a row, opening its sealed signing secret.
    fn from_row(m: inbound_source::Model, cipher: &Cipher) -> Result<Self, StoreError> {
        let signing_secret = cipher.open_text(&m.signing_secret, &m.id)?;
        Ok(Self {
            id: stored(&m.id)?,
            tenant_id: stored(&m.tenant_id)?,
            kind: m.kind.parse().map_err(|_| StoreError::Corrupt(format!("inbound source {}", m.id)))?,
            token: m.token,
            signing_secret,
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
        let id = InboundSourceId::generate().to_string();
        let row = inbound_source::ActiveModel {
            signing_secret: Set(self.cipher().seal_text(&signing_secret, &id)),
            id: Set(id),
            tenant_id: Set(tenant.to_string()),
            kind: Set(kind.to_string()),
            token: Set(token()),
            created_at: Set(now()),
        };
        InboundSource::from_row(self.insert_as_tenant(tenant, row).await?, self.cipher())
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
            .map(|m| InboundSource::from_row(m, self.cipher()))
            .transpose()
    }

    /// The tenant's sources, oldest first.
    pub async fn list_inbound_sources(&self, tenant: &TenantId) -> Result<Vec<InboundSource>, StoreError> {
        let select = inbound_source::Entity::find()
            .filter(inbound_source::Column::TenantId.eq(tenant.as_str()))
            .order_by_asc(inbound_source::Column::Id);
        self.all_as_tenant(tenant, select)
            .await?
            .into_iter()
            .map(|m| InboundSource::from_row(m, self.cipher()))
            .collect()
    }

    /// Disconnects a source: its URL stops working at once.
    pub async fn delete_inbound_source(&self, tenant: &TenantId, id: &InboundSourceId) -> Result<(), StoreError> {
        let delete = inbound_source::Entity::delete_many()
            .filter(inbound_source::Column::TenantId.eq(tenant.as_str()))
            .filter(inbound_source::Column::Id.eq(id.as_str()));
        self.delete_one_as_tenant(tenant, delete, "inbound source").await
    }
}
