//! Portal sessions: a magic link handed to the platform, exchanged once for
//! a browser session scoped to one tenant.
//!
//! Only digests of the link's token and of the session cookie are stored.
//! The exchange is one conditional `UPDATE`, so two browsers racing with
//! the same link cannot both get a session.
use super::stored;
use crate::domain::{now, PortalSecret, PortalSecretKind, PortalSessionId, TenantId};
use crate::entity::portal_session;
use crate::{Store, StoreError};
use chrono::{DateTime, Duration, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use serde_json::Value;

/// What a portal session may do and show, as its creator asked.
#[derive(Clone, Debug, PartialEq)]
pub struct NewPortalSession {
    /// How long the link may wait to be opened.
    pub link_ttl: Duration,
    /// How long the session lasts once the link is opened.
    pub session_ttl: Duration,
    /// Look, never change.
    pub read_only: bool,
    /// Only these event types are offered, when set.
    pub event_types: Option<Vec<String>>,
    /// The platform's brand (already validated by the caller).
    pub theme: Option<Value>,
    /// The credential asking (an id, for the record).
    pub created_by: Option<String>,
}

/// A new session's magic link.
#[derive(Debug)]
pub struct PortalLink {
    /// The session's public id (what the audit log names).
    pub id: PortalSessionId,
    /// The one-time token the link carries.
    pub token: PortalSecret,
    /// The link opens nothing after this.
    pub expires_at: DateTime<Utc>,
}

/// An open portal session.
#[derive(Clone, Debug, PartialEq)]
pub struct PortalSession {
    /// Its public id.
    pub id: PortalSessionId,
    /// The only tenant it can see.
    pub tenant_id: TenantId,
    /// Look, never change.
    pub read_only: bool,
    /// When it ends.
    pub expires_at: DateTime<Utc>,
    /// Only these event types are offered, when set.
    pub event_types: Option<Vec<String>>,
    /// The platform's brand.
    pub theme: Option<Value>,
}

impl PortalSession {
    fn from_row(m: portal_session::Model) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("portal session {}: {what}", m.id));
        let json = |raw: &Option<String>, what: &str| -> Result<Option<Value>, StoreError> {
            raw.as_deref().map(serde_json::from_str).transpose().map_err(|_| corrupt(what))
        };
        let event_types = json(&m.event_types, "event_types")?
            .map(serde_json::from_value::<Vec<String>>)
            .transpose()
            .map_err(|_| corrupt("event_types"))?;
        Ok(Self {
            id: stored(&m.id)?,
            tenant_id: stored(&m.tenant_id)?,
            read_only: m.read_only,
            expires_at: m.session_expires_at.ok_or_else(|| corrupt("session_expires_at"))?,
            theme: json(&m.theme, "theme")?,
            event_types,
        })
    }
}

impl Store {
    /// Records a new session for `tenant` and returns its magic link's
    /// token; nothing opens until the link is exchanged.
    pub async fn create_portal_session(
        &self,
        tenant: &TenantId,
        new: NewPortalSession,
    ) -> Result<PortalLink, StoreError> {
        let at = now();
        let id = PortalSessionId::generate();
        let token = PortalSecret::generate(PortalSecretKind::Link);
        let expires_at = at + new.link_ttl;
        let row = portal_session::ActiveModel {
            id: Set(id.to_string()),
            tenant_id: Set(tenant.to_string()),
            link_hash: Set(token.digest()),
            link_expires_at: Set(expires_at),
            link_used_at: Set(None),
            session_hash: Set(None),
            session_expires_at: Set(None),
            session_ttl_secs: Set(new.session_ttl.num_seconds()),
            read_only: Set(new.read_only),
            event_types: Set(new.event_types.map(|t| Value::from(t).to_string())),
            theme: Set(new.theme.map(|t| t.to_string())),
            created_by: Set(new.created_by),
            created_at: Set(at),
        };
        self.insert_as_tenant(tenant, row).await?;
        Ok(PortalLink { id, token, expires_at })
    }

    /// Exchanges a magic link's token for a session and its cookie; `None`
    /// when the link is unknown, expired or already used.
    pub async fn open_portal_link(
        &self,
        link: &PortalSecret,
    ) -> Result<Option<(PortalSession, PortalSecret)>, StoreError> {
        let at = now();
        let digest = link.digest();
        let Some(row) = portal_session::Entity::find()
            .filter(portal_session::Column::LinkHash.eq(digest.as_str()))
            .one(self.db())
            .await?
        else {
            return Ok(None);
        };
        let cookie = PortalSecret::generate(PortalSecretKind::Session);
        let session_expires_at = at + Duration::seconds(row.session_ttl_secs);
        // The condition is the guard: only one exchange of a link can match it.
        let claimed = portal_session::Entity::update_many()
            .col_expr(portal_session::Column::LinkUsedAt, Some(at).into())
            .col_expr(portal_session::Column::SessionHash, Some(cookie.digest()).into())
            .col_expr(portal_session::Column::SessionExpiresAt, Some(session_expires_at).into())
            .filter(portal_session::Column::Id.eq(row.id.as_str()))
            .filter(portal_session::Column::LinkUsedAt.is_null())
            .filter(portal_session::Column::LinkExpiresAt.gt(at))
            .exec(self.db())
            .await?
            .rows_affected;
        if claimed != 1 {
            return Ok(None);
        }
        let row = portal_session::Model { link_used_at: Some(at), session_expires_at: Some(session_expires_at), ..row };
        Ok(Some((PortalSession::from_row(row)?, cookie)))
    }

    /// The open session a cookie stands for; `None` when it is unknown or
    /// has ended.
    pub async fn portal_session(&self, cookie: &PortalSecret) -> Result<Option<PortalSession>, StoreError> {
        let row = portal_session::Entity::find()
            .filter(portal_session::Column::SessionHash.eq(cookie.digest()))
            .filter(portal_session::Column::SessionExpiresAt.gt(now()))
            .one(self.db())
            .await?;
        row.map(PortalSession::from_row).transpose()
    }
}
