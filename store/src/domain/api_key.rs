//! API keys: the `hh_live_…` secret, shown once, and the hash that is stored
//! instead.
use sha2::{Digest, Sha256};
use std::fmt;

/// A tenant API key in clear (`hh_live_...`): shown once, never stored.
pub struct ApiKey(String);

/// The SHA-256 (hex) of an API key: the only form the store keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyHash(String);

impl ApiKey {
    /// Prefix that makes a leaked key recognisable to secret scanners.
    pub const PREFIX: &'static str = "hh_live_";
    const RANDOM_LEN: usize = 40;

    /// A new key with 40 random base62 characters (~238 bits).
    pub fn generate() -> Self {
        use rand::distributions::{Alphanumeric, DistString};
        let random = Alphanumeric.sample_string(&mut rand::rngs::OsRng, Self::RANDOM_LEN);
        Self(format!("{}{random}", Self::PREFIX))
    }

    /// Wraps a key presented by a caller; its shape is checked by lookup, not here.
    pub fn presented(raw: &str) -> Self {
        Self(raw.to_owned())
    }

    /// The storage form. A plain hash is enough: keys carry ~238 random bits,
    /// so there is nothing for a slow password hash to protect.
    pub fn hash(&self) -> ApiKeyHash {
        ApiKeyHash(hex::encode(Sha256::digest(self.0.as_bytes())))
    }

    /// The key in clear, to print once at creation.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(hh_live_***)")
    }
}

impl ApiKeyHash {
    /// The hex digest.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_prefixed_and_hash_stably() {
        let k = ApiKey::generate();
        assert!(k.expose().starts_with("hh_live_"));
        assert_eq!(k.hash(), ApiKey::presented(k.expose()).hash());
        assert_ne!(k.hash(), ApiKey::generate().hash());
        assert!(!format!("{k:?}").contains(&k.expose()[8..]));
    }
}
