//! Ordered delivery per key: the key an event carries, and what a
//! subscription asks for.
//!
//! An ordering key names the thing a sequence of events is about (an
//! appointment, a client): a subscription that opts in with
//! [`OrderingMode::PerKey`] gets the events of one key strictly in ingest
//! order, and the events of different keys in parallel.
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The longest ordering key accepted, in bytes.
pub const MAX_ORDERING_KEY: usize = 128;

/// Why a string is not an ordering key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OrderingKeyError {
    /// Empty, or longer than [`MAX_ORDERING_KEY`].
    #[error("must be 1 to {MAX_ORDERING_KEY} bytes")]
    Length,
    /// A character outside `A-Z a-z 0-9 _ - . :`.
    #[error("may contain only letters, digits and _ - . : (an id such as \"apt_42\")")]
    Charset,
}

/// An event's ordering key, such as `apt_42`: 1 to 128 bytes of ASCII
/// letters, digits and `_ - . :`. Keys are ids, compared byte for byte;
/// the charset keeps them readable in URLs (`/blocked-keys/{key}`) and
/// rules out anything that looks like free text (and so like PHI).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct OrderingKey(String);

impl OrderingKey {
    /// The key as stored and shown.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for OrderingKey {
    type Err = OrderingKeyError;
    fn from_str(s: &str) -> Result<Self, OrderingKeyError> {
        if s.is_empty() || s.len() > MAX_ORDERING_KEY {
            return Err(OrderingKeyError::Length);
        }
        if !s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':')) {
            return Err(OrderingKeyError::Charset);
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for OrderingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether a subscription's deliveries keep their events' order.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize, utoipa::ToSchema,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum OrderingMode {
    /// Every delivery goes as soon as it can (the fastest; the default).
    #[default]
    #[sea_orm(string_value = "unordered")]
    Unordered,
    /// Deliveries of events with the same `ordering_key` are attempted one
    /// at a time, in ingest order; different keys go in parallel. Events
    /// without a key are delivered unordered.
    #[sea_orm(string_value = "per_key")]
    PerKey,
}

/// What an ordered subscription does with a key whose delivery ran out of
/// attempts (was dead-lettered).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize, utoipa::ToSchema,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum OnDeadLetter {
    /// The dead delivery stays in the dead letter and the key's next
    /// delivery goes: order is kept among what is delivered, with a gap.
    #[default]
    #[sea_orm(string_value = "skip")]
    Skip,
    /// The key stays blocked until someone redelivers the dead delivery
    /// (it goes first) or skips it (`POST .../blocked-keys/{key}/skip`).
    #[sea_orm(string_value = "block")]
    Block,
}

/// A subscription's ordering: whether it keeps order per key, and what a
/// dead-lettered delivery does to its key (meaningful only when ordered).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OrderingPolicy {
    /// Unordered or per key.
    pub mode: OrderingMode,
    /// Skip or block on a dead letter.
    pub on_dead_letter: OnDeadLetter,
}

impl OrderingPolicy {
    /// The key a delivery of an event with `key` keeps order by: the key
    /// itself when the subscription is ordered, none otherwise.
    pub fn key_for<'k>(&self, key: Option<&'k OrderingKey>) -> Option<&'k OrderingKey> {
        key.filter(|_| self.mode == OrderingMode::PerKey)
    }

    /// Whether a dead-lettered delivery keeps its key blocked.
    pub fn blocks_on_dead_letter(&self) -> bool {
        self.mode == OrderingMode::PerKey && self.on_dead_letter == OnDeadLetter::Block
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_short_ids() {
        assert!("apt_42".parse::<OrderingKey>().is_ok());
        assert!("cus:Na-1.x".parse::<OrderingKey>().is_ok());
        assert_eq!("".parse::<OrderingKey>(), Err(OrderingKeyError::Length));
        assert_eq!("a".repeat(129).parse::<OrderingKey>(), Err(OrderingKeyError::Length));
        assert!("a".repeat(128).parse::<OrderingKey>().is_ok());
        assert_eq!("jane doe".parse::<OrderingKey>(), Err(OrderingKeyError::Charset));
        assert_eq!("a/b".parse::<OrderingKey>(), Err(OrderingKeyError::Charset));
        assert_eq!("é".parse::<OrderingKey>(), Err(OrderingKeyError::Charset));
    }
}
