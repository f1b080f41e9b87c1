//! Credentials: API keys with scopes, OAuth apps and their access tokens.
//!
//! Keys, client secrets and tokens are random, shown once and stored as
//! SHA-256 hashes. Every request looks its credential up again, so a
//! revocation takes effect on the very next request.
use super::stored;
use super::tenants::Tenant;
use crate::domain::{now, ApiKey, ApiKeyId, OAuthAppId, Scope, TenantId};
use crate::entity::{access_token, api_key, oauth_app, tenant};
use crate::{Store, StoreError};
use chrono::{DateTime, Duration, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use sha2::{Digest, Sha256};

/// Prefix of OAuth client ids.
pub const CLIENT_ID_PREFIX: &str = "hh_client_";
/// Prefix of OAuth client secrets.
pub const CLIENT_SECRET_PREFIX: &str = "hh_secret_";
/// Prefix of access tokens, which tells them from API keys.
pub const ACCESS_TOKEN_PREFIX: &str = "hh_at_";
/// How long an access token lives.
pub const ACCESS_TOKEN_TTL: Duration = Duration::hours(1);

/// Who is calling: the tenant, what it may do, and with which credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The tenant acted for.
    pub tenant: Tenant,
    /// What the credential allows.
    pub scope: Scope,
    /// The API key id or OAuth client id (never the secret), for the audit log.
    pub credential: String,
}

/// An API key's metadata (the key itself is shown only at creation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyInfo {
    /// Its id.
    pub id: ApiKeyId,
    /// A name for people.
    pub name: String,
    /// What it allows.
    pub scope: Scope,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// An OAuth app's metadata (the secret is shown only at creation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthApp {
    /// Its id.
    pub id: OAuthAppId,
    /// The tenant it belongs to.
    pub tenant_id: TenantId,
    /// A name for people.
    pub name: String,
    /// The public client id.
    pub client_id: String,
    /// The highest scope its tokens may carry.
    pub scope: Scope,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// What presenting an access token found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenLookup {
    /// Valid: who it acts for.
    Valid(Principal),
    /// Unknown, revoked (its app was deleted) or expired.
    Invalid,
}

fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn random(prefix: &str, len: usize) -> String {
    use rand::distributions::{Alphanumeric, DistString};
    format!("{prefix}{}", Alphanumeric.sample_string(&mut rand::rngs::OsRng, len))
}

fn scope_of(raw: &str, id: &str) -> Result<Scope, StoreError> {
    raw.parse().map_err(|_| StoreError::Corrupt(format!("scope of {id}")))
}

impl TryFrom<api_key::Model> for ApiKeyInfo {
    type Error = StoreError;
    fn try_from(m: api_key::Model) -> Result<Self, StoreError> {
        Ok(Self { scope: scope_of(&m.scope, &m.id)?, id: stored(&m.id)?, name: m.name, created_at: m.created_at })
    }
}

impl TryFrom<oauth_app::Model> for OAuthApp {
    type Error = StoreError;
    fn try_from(m: oauth_app::Model) -> Result<Self, StoreError> {
        Ok(Self {
            scope: scope_of(&m.scope, &m.id)?,
            id: stored(&m.id)?,
            tenant_id: stored(&m.tenant_id)?,
            name: m.name,
            client_id: m.client_id,
            created_at: m.created_at,
        })
    }
}

impl Store {
    async fn tenant_row(&self, id: &str) -> Result<Tenant, StoreError> {
        tenant::Entity::find_by_id(id).one(self.db()).await?.ok_or(StoreError::NotFound("tenant"))?.try_into()
    }

    /// Refuses the `platform` scope to a credential of a tenant that is not
    /// a platform, whatever the route checked.
    async fn may_hold(&self, tenant: &TenantId, scope: Scope) -> Result<(), StoreError> {
        if scope == Scope::Platform && !self.tenant_row(tenant.as_str()).await?.is_platform {
            return Err(StoreError::Conflict("only a platform's credentials can have the platform scope".into()));
        }
        Ok(())
    }

    /// Creates an API key; the key is returned once and only its hash is kept.
    pub async fn create_api_key(
        &self,
        tenant: &TenantId,
        name: &str,
        scope: Scope,
    ) -> Result<(ApiKeyInfo, ApiKey), StoreError> {
        self.may_hold(tenant, scope).await?;
        let key = ApiKey::generate();
        let row = api_key::ActiveModel {
            id: Set(ApiKeyId::generate().to_string()),
            tenant_id: Set(tenant.to_string()),
            name: Set(name.to_owned()),
            key_hash: Set(key.hash().as_str().to_owned()),
            scope: Set(scope.to_string()),
            created_at: Set(now()),
        };
        Ok((self.insert_as_tenant(tenant, row).await?.try_into()?, key))
    }

    /// The tenant's API keys, oldest first.
    pub async fn list_api_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKeyInfo>, StoreError> {
        let select = api_key::Entity::find()
            .filter(api_key::Column::TenantId.eq(tenant.as_str()))
            .order_by_asc(api_key::Column::Id);
        let rows = self.all_as_tenant(tenant, select).await?;
        super::parse_all(rows)
    }

    /// Revokes an API key: the next request with it is refused.
    pub async fn delete_api_key(&self, tenant: &TenantId, id: &ApiKeyId) -> Result<(), StoreError> {
        let delete = api_key::Entity::delete_many()
            .filter(api_key::Column::TenantId.eq(tenant.as_str()))
            .filter(api_key::Column::Id.eq(id.as_str()));
        self.delete_one_as_tenant(tenant, delete, "API key").await?;
        self.credentials().invalidate();
        Ok(())
    }

    /// Who a presented API key acts for, if it is valid.
    ///
    /// Served from the credential cache when the key was verified within
    /// its ttl (see [`Store::with_credential_ttl`]); otherwise one query
    /// with its tenant joined. Unknown keys are never cached.
    pub async fn principal_by_api_key(&self, key: &ApiKey) -> Result<Option<Principal>, StoreError> {
        let hash = key.hash();
        let ticket = match self.credentials().get(hash.as_str()) {
            Ok(principal) => return Ok(Some(principal)),
            Err(ticket) => ticket,
        };
        let principal = self.read_principal_by_api_key(hash.as_str()).await?;
        if let Some(principal) = &principal {
            self.credentials().put(ticket, hash.as_str(), principal);
        }
        Ok(principal)
    }

    async fn read_principal_by_api_key(&self, hash: &str) -> Result<Option<Principal>, StoreError> {
        use sea_orm::{JoinType, QuerySelect};
        let of_tenant =
            api_key::Entity::belongs_to(tenant::Entity).from(api_key::Column::TenantId).to(tenant::Column::Id).into();
        let Some((row, tenant)) = api_key::Entity::find()
            .join(JoinType::InnerJoin, of_tenant)
            .select_also(tenant::Entity)
            .filter(api_key::Column::KeyHash.eq(hash))
            .one(self.db())
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(Principal {
            tenant: tenant.ok_or(StoreError::NotFound("tenant"))?.try_into()?,
            scope: scope_of(&row.scope, &row.id)?,
            credential: row.id,
        }))
    }

    /// Registers an OAuth app; returns it and its client secret (shown once).
    pub async fn create_oauth_app(
        &self,
        tenant: &TenantId,
        name: &str,
        scope: Scope,
    ) -> Result<(OAuthApp, String), StoreError> {
        self.may_hold(tenant, scope).await?;
        let secret = random(CLIENT_SECRET_PREFIX, 40);
        let row = oauth_app::ActiveModel {
            id: Set(OAuthAppId::generate().to_string()),
            tenant_id: Set(tenant.to_string()),
            name: Set(name.to_owned()),
            client_id: Set(random(CLIENT_ID_PREFIX, 24)),
            client_secret_hash: Set(sha256_hex(&secret)),
            scope: Set(scope.to_string()),
            created_at: Set(now()),
        };
        Ok((self.insert_as_tenant(tenant, row).await?.try_into()?, secret))
    }

    /// The tenant's OAuth apps, oldest first.
    pub async fn list_oauth_apps(&self, tenant: &TenantId) -> Result<Vec<OAuthApp>, StoreError> {
        let select = oauth_app::Entity::find()
            .filter(oauth_app::Column::TenantId.eq(tenant.as_str()))
            .order_by_asc(oauth_app::Column::Id);
        let rows = self.all_as_tenant(tenant, select).await?;
        super::parse_all(rows)
    }

    /// Deletes an OAuth app and revokes every token it issued.
    pub async fn delete_oauth_app(&self, tenant: &TenantId, id: &OAuthAppId) -> Result<(), StoreError> {
        let txn = self.tenant_scope(tenant).await?;
        let deleted = oauth_app::Entity::delete_many()
            .filter(oauth_app::Column::TenantId.eq(tenant.as_str()))
            .filter(oauth_app::Column::Id.eq(id.as_str()))
            .exec(&txn)
            .await?;
        if deleted.rows_affected == 0 {
            return Err(StoreError::NotFound("OAuth app"));
        }
        access_token::Entity::delete_many().filter(access_token::Column::AppId.eq(id.as_str())).exec(&txn).await?;
        txn.commit().await?;
        Ok(())
    }

    /// The app whose client credentials these are, if they are right.
    pub async fn authenticate_client(&self, client_id: &str, secret: &str) -> Result<Option<OAuthApp>, StoreError> {
        let Some(row) =
            oauth_app::Entity::find().filter(oauth_app::Column::ClientId.eq(client_id)).one(self.db()).await?
        else {
            return Ok(None);
        };
        let matches: bool =
            subtle::ConstantTimeEq::ct_eq(sha256_hex(secret).as_bytes(), row.client_secret_hash.as_bytes()).into();
        if matches {
            Ok(Some(row.try_into()?))
        } else {
            Ok(None)
        }
    }

    /// Issues an access token for `app` with `scope` (at most the app's).
    pub async fn issue_access_token(
        &self,
        app: &OAuthApp,
        scope: Scope,
    ) -> Result<(String, DateTime<Utc>), StoreError> {
        let token = random(ACCESS_TOKEN_PREFIX, 40);
        let at = now();
        let expires_at = at + ACCESS_TOKEN_TTL;
        let row = access_token::ActiveModel {
            id: Set(uuid::Uuid::now_v7().simple().to_string()),
            tenant_id: Set(app.tenant_id.to_string()),
            app_id: Set(app.id.to_string()),
            token_hash: Set(sha256_hex(&token)),
            scope: Set(scope.min(app.scope).to_string()),
            expires_at: Set(expires_at),
            created_at: Set(at),
        };
        self.insert_as_tenant(&app.tenant_id, row).await?;
        Ok((token, expires_at))
    }

    /// Who a presented access token acts for.
    pub async fn principal_by_access_token(&self, token: &str) -> Result<TokenLookup, StoreError> {
        let Some(row) = access_token::Entity::find()
            .filter(access_token::Column::TokenHash.eq(sha256_hex(token)))
            .one(self.db())
            .await?
        else {
            return Ok(TokenLookup::Invalid);
        };
        if row.expires_at <= now() {
            return Ok(TokenLookup::Invalid);
        }
        let Some(app) = oauth_app::Entity::find_by_id(row.app_id.as_str()).one(self.db()).await? else {
            return Ok(TokenLookup::Invalid);
        };
        Ok(TokenLookup::Valid(Principal {
            tenant: self.tenant_row(&row.tenant_id).await?,
            scope: scope_of(&row.scope, &row.id)?,
            credential: app.client_id,
        }))
    }
}
