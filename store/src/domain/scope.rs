//! What a credential may do: `read` < `write` < `admin` < `platform`.
use std::fmt;
use std::str::FromStr;

/// What a credential may do. Each scope includes the ones below it:
/// `admin` can do what `write` can, and `write` what `read` can.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// GET requests only.
    Read,
    /// Post events, manage subscriptions, hooks, rules and sources.
    Write,
    /// Manage API keys, OAuth apps and tenant settings; read the audit log.
    Admin,
    /// A platform's credential: manage the platform's tenants and act for
    /// any of them (`Hookhub-Tenant` header). Only a platform tenant's
    /// credentials can carry it.
    Platform,
}

impl Scope {
    /// The scope's name in OAuth `scope` strings.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Admin => "admin",
            Self::Platform => "platform",
        }
    }

    /// The highest scope named in a space-separated OAuth scope string.
    pub fn from_scope_string(s: &str) -> Result<Self, UnknownScope> {
        s.split_whitespace()
            .map(str::parse)
            .try_fold(None, |max: Option<Self>, scope| {
                let scope = scope?;
                Ok(Some(max.map_or(scope, |m| m.max(scope))))
            })?
            .ok_or(UnknownScope)
    }

    /// The OAuth scope string granting this scope (with the ones it includes).
    pub fn to_scope_string(self) -> String {
        [Self::Read, Self::Write, Self::Admin, Self::Platform]
            .iter()
            .filter(|s| **s <= self)
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A scope name that is not `read`, `write`, `admin` or `platform`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("scopes are read, write, admin and platform")]
pub struct UnknownScope;

impl FromStr for Scope {
    type Err = UnknownScope;
    fn from_str(s: &str) -> Result<Self, UnknownScope> {
        match s {
            "read" => Ok(Self::Read),
            "write" => Ok(Self::Write),
            "admin" => Ok(Self::Admin),
            "platform" => Ok(Self::Platform),
            _ => Err(UnknownScope),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_nest_and_parse_from_oauth_strings() {
        assert!(Scope::Platform > Scope::Admin && Scope::Admin > Scope::Write && Scope::Write > Scope::Read);
        assert_eq!(Scope::from_scope_string("read write"), Ok(Scope::Write));
        assert_eq!(Scope::from_scope_string(" admin "), Ok(Scope::Admin));
        assert_eq!(Scope::from_scope_string(""), Err(UnknownScope));
        assert_eq!(Scope::from_scope_string("read delete"), Err(UnknownScope));
        assert_eq!(Scope::Write.to_scope_string(), "read write");
        assert_eq!(Scope::from_scope_string("read platform"), Ok(Scope::Platform));
    }
}
