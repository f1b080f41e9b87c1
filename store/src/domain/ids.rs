//! Prefixed, time-ordered ids (`evt_…`, `sub_…`) for every kind of row.
use std::fmt;
use std::str::FromStr;

/// A string that is not a well-formed id of the expected kind.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a valid {kind} id")]
pub struct IdError {
    /// Which kind of id was expected ("event", "subscription", ...).
    pub kind: &'static str,
}

/// Defines a prefixed, time-ordered id type (`evt_0190...`).
///
/// Ids are UUIDv7 in simple hex behind a type prefix: sortable by creation
/// time, which is what cursor pagination orders by, and self-describing in
/// logs and support tickets.
macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The prefix every id of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            /// A fresh id, ordered after every id generated before it.
            pub fn generate() -> Self {
                Self(format!("{}{}", $prefix, uuid::Uuid::now_v7().simple()))
            }

            /// The id as stored and shown.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                let hex = s.strip_prefix($prefix).ok_or(IdError { kind: $kind })?;
                if hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(IdError { kind: $kind })
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

prefixed_id!(
    /// Identifies a tenant (one platform account using Hookhub).
    TenantId, "ten_", "tenant"
);
prefixed_id!(
    /// Identifies a job erasing a tenant's data.
    ErasureId, "era_", "erasure"
);
prefixed_id!(
    /// Identifies an accepted event; also the Standard Webhooks `webhook-id`.
    EventId, "evt_", "event"
);
prefixed_id!(
    /// Identifies a subscription (an endpoint and the event types it wants).
    SubscriptionId, "sub_", "subscription"
);
prefixed_id!(
    /// Identifies the delivery of one event to one subscription.
    DeliveryId, "dlv_", "delivery"
);
prefixed_id!(
    /// Identifies an API key (not the key itself).
    ApiKeyId, "key_", "API key"
);
prefixed_id!(
    /// Identifies an OAuth app of a tenant.
    OAuthAppId, "app_", "OAuth app"
);
prefixed_id!(
    /// Identifies a tenant's event type definition.
    EventTypeId, "ety_", "event type"
);
prefixed_id!(
    /// Identifies a rule.
    RuleId, "rul_", "rule"
);
prefixed_id!(
    /// Identifies an inbound source (a payment gateway posting callbacks).
    InboundSourceId, "src_", "inbound source"
);
prefixed_id!(
    /// Identifies a portal session (not its link or cookie, which are secrets).
    PortalSessionId, "pse_", "portal session"
);
prefixed_id!(
    /// Identifies one HTTP attempt of a delivery.
    AttemptId, "att_", "attempt"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back_and_sort_by_time() {
        let a = EventId::generate();
        let b = EventId::generate();
        assert!(a < b);
        assert_eq!(a.as_str().parse::<EventId>().unwrap(), a);
    }

    #[test]
    fn wrong_prefix_or_shape_is_rejected() {
        let sub = SubscriptionId::generate();
        assert!(sub.as_str().parse::<EventId>().is_err());
        assert!("evt_xyz".parse::<EventId>().is_err());
        assert!("evt_".parse::<EventId>().is_err());
    }
}
