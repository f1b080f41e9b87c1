//! Standard Webhooks signatures: `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`.
use super::SigningSecret;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The three Standard Webhooks headers of one attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureHeaders {
    /// `webhook-id`: the event id, the same on every retry so receivers can dedupe.
    pub id: String,
    /// `webhook-timestamp`: unix seconds of this attempt.
    pub timestamp: i64,
    /// `webhook-signature`: `v1,<base64>`.
    pub signature: String,
}

impl SignatureHeaders {
    /// Header name of the message id.
    pub const ID: &'static str = "webhook-id";
    /// Header name of the timestamp.
    pub const TIMESTAMP: &'static str = "webhook-timestamp";
    /// Header name of the signature list.
    pub const SIGNATURE: &'static str = "webhook-signature";
}

/// Why a Standard Webhooks signature was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A required header is absent or unreadable.
    #[error("missing or malformed {0} header")]
    MissingHeader(&'static str),
    /// The timestamp is too far from now (a replay, or a bad clock).
    #[error("timestamp is outside the tolerance window")]
    Stale,
    /// No `v1` signature in the header matches.
    #[error("no signature matches")]
    Mismatch,
}

/// How far a signed timestamp may be from now, as the spec recommends.
pub const TOLERANCE_SECS: i64 = 300;

/// Verifies a Standard Webhooks message: the timestamp within
/// [`TOLERANCE_SECS`] of `now`, and any of the space-separated `v1,`
/// signatures matching (several appear during a secret rotation).
pub fn verify(
    secret: &SigningSecret,
    msg_id: Option<&str>,
    timestamp: Option<&str>,
    signatures: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), VerifyError> {
    let msg_id = msg_id.filter(|s| !s.is_empty()).ok_or(VerifyError::MissingHeader(SignatureHeaders::ID))?;
    let timestamp: i64 =
        timestamp.and_then(|t| t.parse().ok()).ok_or(VerifyError::MissingHeader(SignatureHeaders::TIMESTAMP))?;
    let signatures = signatures.ok_or(VerifyError::MissingHeader(SignatureHeaders::SIGNATURE))?;
    if (now - timestamp).abs() > TOLERANCE_SECS {
        return Err(VerifyError::Stale);
    }
    let expected = sign(secret, msg_id, timestamp, body).signature;
    let expected = expected.strip_prefix("v1,").unwrap_or_default().as_bytes();
    let matches = signatures
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .any(|candidate| subtle::ConstantTimeEq::ct_eq(candidate.as_bytes(), expected).into());
    if matches {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

/// Signs with every secret given, space-separated in one header, as
/// Standard Webhooks allows while a secret is being rotated.
pub fn sign_with_all(secrets: &[&SigningSecret], msg_id: &str, timestamp: i64, body: &[u8]) -> SignatureHeaders {
    let signatures: Vec<String> = secrets.iter().map(|s| sign(s, msg_id, timestamp, body).signature).collect();
    SignatureHeaders { id: msg_id.to_owned(), timestamp, signature: signatures.join(" ") }
}

/// Signs `body` for message `msg_id` sent at `timestamp`.
pub fn sign(secret: &SigningSecret, msg_id: &str, timestamp: i64, body: &[u8]) -> SignatureHeaders {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.key_bytes()).expect("HMAC takes keys of any length");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    SignatureHeaders {
        id: msg_id.to_owned(),
        timestamp,
        signature: format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vector published with the Standard Webhooks reference libraries.
    #[test]
    fn reproduces_the_standard_webhooks_test_vector() {
        let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let headers = sign(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#);
        assert_eq!(headers.signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert_eq!(headers.id, "msg_p5jXN8AQM9LWM0D4loKWxJek");
        assert_eq!(headers.timestamp, 1614265330);
    }

    #[test]
    fn verify_accepts_its_own_signatures_and_nothing_else() {
        let secret = SigningSecret::generate();
        let h = sign(&secret, "evt_1", 1_000, b"{}");
        let ok = |sigs: &str, body: &[u8], now| verify(&secret, Some("evt_1"), Some("1000"), Some(sigs), body, now);
        assert_eq!(ok(&h.signature, b"{}", 1_000), Ok(()));
        assert_eq!(ok(&format!("v1,AAAA {}", h.signature), b"{}", 1_100), Ok(()), "any of several");
        assert_eq!(ok(&h.signature, b"{ }", 1_000), Err(VerifyError::Mismatch));
        assert_eq!(ok(&h.signature, b"{}", 1_301), Err(VerifyError::Stale));
        assert_eq!(ok("v2,xyz", b"{}", 1_000), Err(VerifyError::Mismatch));
        assert_eq!(
            verify(&secret, None, Some("1000"), Some(&h.signature), b"{}", 1_000),
            Err(VerifyError::MissingHeader("webhook-id"))
        );
        assert_eq!(
            verify(&secret, Some("evt_1"), Some("soon"), Some(&h.signature), b"{}", 1_000),
            Err(VerifyError::MissingHeader("webhook-timestamp"))
        );
    }

    #[test]
    fn rotation_signs_with_both_secrets_and_either_verifies() {
        let (new, old) = (SigningSecret::generate(), SigningSecret::generate());
        let h = sign_with_all(&[&new, &old], "evt_1", 1_000, b"{}");
        assert_eq!(h.signature.split(' ').count(), 2);
        for secret in [&new, &old] {
            assert_eq!(verify(secret, Some("evt_1"), Some("1000"), Some(&h.signature), b"{}", 1_000), Ok(()));
        }
    }

    #[test]
    fn any_change_changes_the_signature() {
        let secret = SigningSecret::generate();
        let base = sign(&secret, "evt_1", 1, b"{}").signature;
        assert_ne!(base, sign(&secret, "evt_2", 1, b"{}").signature);
        assert_ne!(base, sign(&secret, "evt_1", 2, b"{}").signature);
        assert_ne!(base, sign(&secret, "evt_1", 1, b"{ }").signature);
        assert_ne!(base, sign(&SigningSecret::generate(), "evt_1", 1, b"{}").signature);
    }
}
