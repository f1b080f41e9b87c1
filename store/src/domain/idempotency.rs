//! Idempotency keys in the only form the store keeps: a digest.
//!
//! A key is chosen by its sender and may carry PHI (a client's email, say),
//! so it is never written down. Each sender also has its own namespace: a
//! key an API client picks can never answer for a gateway's event id, nor
//! one gateway's for another's.
use super::{InboundSourceId, TenantId};
use sha2::{Digest, Sha256};
use std::fmt;

/// Who chose an idempotency key. Keys of different namespaces never match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyNamespace {
    /// A client of `POST /v1/events`.
    Api,
    /// An inbound source: its gateway's event or message ids.
    Inbound(InboundSourceId),
    /// The tenant's rules, keying each derived event by (rule, trigger).
    Rule,
}

impl KeyNamespace {
    /// The namespace as hashed. Never contains NUL, which separates it from the key.
    fn label(&self) -> String {
        match self {
            Self::Api => "api".to_owned(),
            Self::Inbound(source) => format!("inbound:{source}"),
            Self::Rule => "rule".to_owned(),
        }
    }
}

/// The storage form of an idempotency key: SHA-256 (hex) over the tenant,
/// the namespace and the key, separated by NUL bytes, which neither a tenant
/// id nor a namespace contains, so distinct triples never share an input.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The digest of `key` as sent by `namespace` to `tenant`. The tenant
    /// salts it, so equal keys of two tenants are not recognisable as equal.
    pub fn new(tenant: &TenantId, namespace: &KeyNamespace, key: &str) -> Self {
        let mut hash = Sha256::new();
        hash.update(tenant.as_str().as_bytes());
        hash.update([0]);
        hash.update(namespace.label().as_bytes());
        hash.update([0]);
        hash.update(key.as_bytes());
        Self(hex::encode(hash.finalize()))
    }

    /// Wraps a digest read from the database.
    pub fn from_stored(hex: String) -> Self {
        Self(hex)
    }

    /// The hex digest, as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdempotencyKey({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_and_tenants_keep_equal_keys_apart() {
        let (a, b): (TenantId, TenantId) = (TenantId::generate(), TenantId::generate());
        let source = InboundSourceId::generate();
        let api = IdempotencyKey::new(&a, &KeyNamespace::Api, "stripe:evt_1");
        assert_ne!(api, IdempotencyKey::new(&a, &KeyNamespace::Inbound(source), "evt_1"));
        assert_ne!(api, IdempotencyKey::new(&b, &KeyNamespace::Api, "stripe:evt_1"));
        assert_eq!(api, IdempotencyKey::new(&a, &KeyNamespace::Api, "stripe:evt_1"));
        assert_eq!(api.as_str().len(), 64);
        assert!(!api.as_str().contains("evt_1"));
    }
}
