use std::fmt;
use std::str::FromStr;

/// An event type name that is not of the form `noun.verb` (lowercase segments).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventTypeError {
    /// Empty, too long, or not dot-separated lowercase segments.
    #[error("event type must be dot-separated segments of a-z, 0-9 and _, like \"appointment.booked\" (at most 128 characters)")]
    Malformed,
}

/// A validated event type such as `appointment.booked`.
///
/// Matches `^[a-z0-9_]+(\.[a-z0-9_]+)+$`: at least two segments, so a bare
/// word can never collide with the `*` wildcard or a future namespace.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct EventType(String);

impl EventType {
    const MAX_LEN: usize = 128;

    /// The type name as sent by the platform.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for EventType {
    type Err = EventTypeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let segment_ok =
            |seg: &str| !seg.is_empty() && seg.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'));
        let mut segments = 0;
        for seg in s.split('.') {
            if !segment_ok(seg) {
                return Err(EventTypeError::Malformed);
            }
            segments += 1;
        }
        if segments < 2 || s.len() > Self::MAX_LEN {
            return Err(EventTypeError::Malformed);
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which event types a subscription wants: everything, or an explicit list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventTypeFilter {
    /// `["*"]`: every event of the tenant.
    All,
    /// Only these types (never empty).
    Only(Vec<EventType>),
}

impl EventTypeFilter {
    /// Parses the API form: `["*"]` or a non-empty list of event types.
    pub fn parse(raw: &[String]) -> Result<Self, EventTypeError> {
        if raw.is_empty() {
            return Err(EventTypeError::Malformed);
        }
        if raw.iter().any(|t| t == "*") {
            return Ok(Self::All);
        }
        let mut types = raw.iter().map(|t| t.parse()).collect::<Result<Vec<EventType>, _>>()?;
        types.sort_by(|a, b| a.0.cmp(&b.0));
        types.dedup();
        Ok(Self::Only(types))
    }

    /// Whether an event of this type goes to the subscription.
    pub fn matches(&self, event_type: &EventType) -> bool {
        match self {
            Self::All => true,
            Self::Only(types) => types.contains(event_type),
        }
    }

    /// The API and storage form: `["*"]` or the list of names.
    pub fn to_strings(&self) -> Vec<String> {
        match self {
            Self::All => vec!["*".to_owned()],
            Self::Only(types) => types.iter().map(|t| t.0.clone()).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_dotted_lowercase_names() {
        for ok in ["appointment.booked", "client.created", "a.b.c", "payment_v2.received"] {
            assert!(ok.parse::<EventType>().is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_everything_else() {
        for bad in ["", "booked", "Appointment.booked", "a..b", ".a", "a.", "a.b-c", "é.b", "a b.c", "*"] {
            assert!(bad.parse::<EventType>().is_err(), "{bad:?}");
        }
        assert!("a.".repeat(100).trim_end_matches('.').parse::<EventType>().is_err());
    }

    #[test]
    fn filter_matches_listed_types_or_everything() {
        let booked: EventType = "appointment.booked".parse().unwrap();
        let created: EventType = "client.created".parse().unwrap();
        let only = EventTypeFilter::parse(&["appointment.booked".into()]).unwrap();
        assert!(only.matches(&booked));
        assert!(!only.matches(&created));
        let all = EventTypeFilter::parse(&["*".into()]).unwrap();
        assert!(all.matches(&created));
        assert!(EventTypeFilter::parse(&[]).is_err());
    }
}
