//! Standard Webhooks signatures: `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`.
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use hookhub_store::domain::SigningSecret;
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
    fn any_change_changes_the_signature() {
        let secret = SigningSecret::generate();
        let base = sign(&secret, "evt_1", 1, b"{}").signature;
        assert_ne!(base, sign(&secret, "evt_2", 1, b"{}").signature);
        assert_ne!(base, sign(&secret, "evt_1", 2, b"{}").signature);
        assert_ne!(base, sign(&secret, "evt_1", 1, b"{ }").signature);
        assert_ne!(base, sign(&SigningSecret::generate(), "evt_1", 1, b"{}").signature);
    }
}
