//! The portal's two bearer secrets, a magic link's token and a session's
//! cookie, which never print themselves and are stored only as digests.
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use std::fmt;

/// Which of the portal's secrets a value is; each has its own prefix, so a
/// session cookie pasted as a link (or the reverse) opens nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortalSecretKind {
    /// The one-time token of a magic link.
    Link,
    /// The value of a session cookie.
    Session,
}

impl PortalSecretKind {
    fn prefix(self) -> &'static str {
        match self {
            Self::Link => "hhpl_",
            Self::Session => "hhps_",
        }
    }
}

/// A portal bearer secret: 32 random bytes behind its kind's prefix.
///
/// `Debug` and `Display` redact it, so it cannot reach a log line by
/// accident; the raw form is only reachable through [`PortalSecret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct PortalSecret {
    raw: String,
}

impl PortalSecret {
    /// A fresh secret from the OS CSPRNG.
    pub fn generate(kind: PortalSecretKind) -> Self {
        use rand::RngCore;
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self { raw: format!("{}{}", kind.prefix(), URL_SAFE_NO_PAD.encode(bytes)) }
    }

    /// A secret as presented by a browser; `None` when it cannot be one of
    /// `kind` (wrong prefix or length), which spares a lookup.
    pub fn presented(kind: PortalSecretKind, raw: &str) -> Option<Self> {
        let body = raw.strip_prefix(kind.prefix())?;
        let well_formed = body.len() == 43 && body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        well_formed.then(|| Self { raw: raw.to_owned() })
    }

    /// The SHA-256 digest (hex) stored in place of the secret: the secret
    /// has 256 random bits, so a plain hash is as good as a slow one.
    pub fn digest(&self) -> String {
        hex::encode(Sha256::digest(self.raw.as_bytes()))
    }

    /// A value derived from this secret for `purpose` (the CSRF token of a
    /// session): known to whoever holds the secret, useless without it.
    pub fn derive(&self, purpose: &str) -> String {
        let mut hash = Sha256::new();
        hash.update(purpose.as_bytes());
        hash.update([0]);
        hash.update(self.raw.as_bytes());
        URL_SAFE_NO_PAD.encode(hash.finalize())
    }

    /// The secret itself, to hand to its owner (the link, the cookie).
    pub fn expose(&self) -> &str {
        &self.raw
    }
}

impl fmt::Debug for PortalSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PortalSecret(***)")
    }
}

impl fmt::Display for PortalSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_by_kind_and_never_prints() {
        let link = PortalSecret::generate(PortalSecretKind::Link);
        let raw = link.expose().to_owned();
        assert_eq!(PortalSecret::presented(PortalSecretKind::Link, &raw), Some(link.clone()));
        assert_eq!(PortalSecret::presented(PortalSecretKind::Session, &raw), None);
        assert!(!format!("{link:?} {link}").contains(&raw[5..]));
        assert_ne!(link.digest(), link.derive("csrf"));
    }
}
