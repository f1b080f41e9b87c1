//! Credentials: `/v1/api-keys`, `/v1/oauth-apps` (admin scope), the OAuth
//! 2.0 token endpoint (client credentials, RFC 6749 §4.4) and the audit log
//! of what they did, one file each; the bodies keys and apps share live here.
mod api_keys;
mod audit_log;
mod oauth_apps;
mod token;

pub use api_keys::*;
pub use audit_log::*;
pub use oauth_apps::*;
pub use token::*;

use crate::error::FieldError;
use crate::ApiError;
use chrono::{DateTime, Utc};
use hookhub_store::domain::{ApiKeyId, OAuthAppId, Scope};
use hookhub_store::repo::{ApiKeyInfo, OAuthApp, Tenant};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A new key or app: a name, and the scope it gets (`write` by default).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialBody {
    /// 1 to 200 characters, for people.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 200, example = "Zapier connector")]
    name: Option<String>,
    /// `read`, `write`, `admin` or (for a platform's own credentials) `platform` (default `write`);
    /// a space-separated list counts as its highest.
    #[schema(example = "write", pattern = "^ *(read|write|admin|platform)( +(read|write|admin|platform))* *$")]
    scope: Option<String>,
}

impl CredentialBody {
    /// Validates the body for a credential of `tenant`, made by a caller
    /// whose credential has `granter`'s scope: no credential grants more
    /// than it has, and only a platform's can carry `platform`.
    fn check_for(self, tenant: &Tenant, granter: Scope) -> Result<(String, Scope), ApiError> {
        let (name, scope) = self.check()?;
        if scope == Scope::Platform && !tenant.is_platform {
            return Err(ApiError::field("scope", "only a platform's credentials can have the platform scope"));
        }
        if scope > granter {
            return Err(ApiError::InsufficientScope { needed: scope });
        }
        Ok((name, scope))
    }

    fn check(self) -> Result<(String, Scope), ApiError> {
        let mut errors = Vec::new();
        let name = self.name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty() && n.len() <= 200);
        if name.is_none() {
            errors.push(FieldError::new("name", "is required (1 to 200 characters)"));
        }
        if let Some(Err(e)) = name.as_deref().map(|n| crate::input::nul_free("name", n)) {
            errors.push(e);
        }
        let scope = match self.scope.as_deref().map(Scope::from_scope_string) {
            None => Some(Scope::Write),
            Some(Ok(scope)) => Some(scope),
            Some(Err(e)) => {
                errors.push(FieldError::new("scope", e));
                None
            }
        };
        match (name, scope) {
            (Some(name), Some(scope)) if errors.is_empty() => Ok((name, scope)),
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

/// An API key (its secret only in the answer that created it).
#[derive(Serialize, ToSchema)]
pub struct ApiKeyBody {
    #[schema(value_type = String)]
    id: ApiKeyId,
    name: String,
    #[schema(example = "write")]
    scope: &'static str,
    created_at: DateTime<Utc>,
    /// `hh_live_...`, shown once: only its hash is kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
}

impl From<ApiKeyInfo> for ApiKeyBody {
    fn from(k: ApiKeyInfo) -> Self {
        Self { id: k.id, name: k.name, scope: k.scope.as_str(), created_at: k.created_at, key: None }
    }
}

/// An OAuth app (its secret only in the answer that created it).
#[derive(Serialize, ToSchema)]
pub struct OAuthAppBody {
    #[schema(value_type = String)]
    id: OAuthAppId,
    name: String,
    client_id: String,
    /// The highest scope its tokens may carry.
    #[schema(example = "write")]
    scope: &'static str,
    created_at: DateTime<Utc>,
    /// Shown once: only its hash is kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
}

impl From<OAuthApp> for OAuthAppBody {
    fn from(a: OAuthApp) -> Self {
        Self {
            id: a.id,
            name: a.name,
            client_id: a.client_id,
            scope: a.scope.as_str(),
            created_at: a.created_at,
            client_secret: None,
        }
    }
}
