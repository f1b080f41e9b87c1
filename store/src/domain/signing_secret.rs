//! A subscription's `whsec_…` signing secret, which never prints itself.
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::fmt;

/// A signing secret that does not have the `whsec_<base64>` form.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    /// Missing `whsec_` prefix, bad base64, or a key outside 24..=64 bytes.
    #[error("signing secret must be \"whsec_\" followed by base64 of 24 to 64 bytes")]
    Malformed,
}

/// The HMAC key of a subscription, in Standard Webhooks form (`whsec_<base64>`).
///
/// It never prints itself: `Debug` and `Display` show a redaction, so a
/// secret cannot reach a log line by accident. The raw form is only reachable
/// through [`SigningSecret::expose`], which is greppable.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret {
    key: Vec<u8>,
}

impl SigningSecret {
    const PREFIX: &'static str = "whsec_";
    const GENERATED_LEN: usize = 32;

    /// A new random secret (32 bytes from the OS CSPRNG).
    pub fn generate() -> Self {
        use rand::RngCore;
        let mut key = vec![0u8; Self::GENERATED_LEN];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Self { key }
    }

    /// Parses `whsec_<base64>`; the base64 part is the key itself.
    pub fn parse(raw: &str) -> Result<Self, SecretError> {
        let b64 = raw.strip_prefix(Self::PREFIX).ok_or(SecretError::Malformed)?;
        let key = STANDARD.decode(b64).map_err(|_| SecretError::Malformed)?;
        if !(24..=64).contains(&key.len()) {
            return Err(SecretError::Malformed);
        }
        Ok(Self { key })
    }

    /// The bytes HMAC-SHA256 is keyed with.
    pub fn key_bytes(&self) -> &[u8] {
        &self.key
    }

    /// The `whsec_...` text, for storage and for showing the owner once.
    pub fn expose(&self) -> String {
        format!("{}{}", Self::PREFIX, STANDARD.encode(&self.key))
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(whsec_***)")
    }
}

impl fmt::Display for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("whsec_***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_never_prints() {
        let s = SigningSecret::generate();
        let raw = s.expose();
        assert!(raw.starts_with("whsec_"));
        assert_eq!(SigningSecret::parse(&raw).unwrap(), s);
        let b64 = raw.trim_start_matches("whsec_");
        assert!(!format!("{s:?} {s}").contains(b64));
    }

    #[test]
    fn rejects_malformed() {
        for bad in ["", "whsec_", "abc", "whsec_!!!", "whsec_c2hvcnQ="] {
            assert_eq!(SigningSecret::parse(bad), Err(SecretError::Malformed), "{bad}");
        }
    }
}
