//! Inbound callbacks from payment gateways: verify, then map to domain events.

pub mod stripe;

use crate::ApiError;

/// Why an inbound callback was refused; nothing is recorded for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The signature header is absent or unparsable.
    #[error("the signature header is missing or malformed")]
    Missing,
    /// The signed timestamp is more than 5 minutes from now.
    #[error("the signed timestamp is outside the 5-minute tolerance")]
    Stale,
    /// No signature matches the body.
    #[error("the signature does not match the body")]
    Mismatch,
}

impl From<SignatureError> for ApiError {
    fn from(e: SignatureError) -> Self {
        let code = match e {
            SignatureError::Missing => "missing_signature",
            SignatureError::Stale => "timestamp_out_of_tolerance",
            SignatureError::Mismatch => "invalid_signature",
        };
        ApiError::BadRequest { code, message: e.to_string() }
    }
}

impl From<hookhub_store::domain::signer::VerifyError> for SignatureError {
    fn from(e: hookhub_store::domain::signer::VerifyError) -> Self {
        use hookhub_store::domain::signer::VerifyError;
        match e {
            VerifyError::MissingHeader(_) => Self::Missing,
            VerifyError::Stale => Self::Stale,
            VerifyError::Mismatch => Self::Mismatch,
        }
    }
}
