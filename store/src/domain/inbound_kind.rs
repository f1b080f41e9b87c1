//! Which kind of gateway an inbound source is.
use std::fmt;
use std::str::FromStr;

/// Who posts callbacks to an inbound source, which decides how they are verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InboundKind {
    /// Stripe: `Stripe-Signature: t=...,v1=...`, HMAC-SHA256 keyed with the endpoint secret as text.
    Stripe,
    /// Anything that signs with Standard Webhooks headers and posts `{type, data}`.
    Generic,
}

impl InboundKind {
    /// The name used in URLs and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stripe => "stripe",
            Self::Generic => "generic",
        }
    }
}

impl FromStr for InboundKind {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "stripe" => Ok(Self::Stripe),
            "generic" => Ok(Self::Generic),
            _ => Err(()),
        }
    }
}

impl fmt::Display for InboundKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
