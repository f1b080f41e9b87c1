//! Event types (`appointment.booked`) and the filters subscriptions match them
//! with.
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
    /// What [`FromStr`] accepts, for API documents (the length is checked apart).
    pub const PATTERN: &'static str = r"^[a-z0-9_]+(\.[a-z0-9_]+)+$";

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

/// Described once for the OpenAPI document, as the string the parser accepts.
impl utoipa::PartialSchema for EventType {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .description(Some("`resource.action`: dot-separated segments of a-z, 0-9 and _"))
            .pattern(Some(Self::PATTERN))
            .max_length(Some(Self::MAX_LEN))
            .examples([serde_json::json!("appointment.booked")])
            .into()
    }
}

impl utoipa::ToSchema for EventType {}

/// The API form: `["*"]`, or a non-empty list of event types.
impl utoipa::PartialSchema for EventTypeFilter {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let item = utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .pattern(Some(format!("^(\\*|{})$", EventType::PATTERN.trim_start_matches('^').trim_end_matches('$'))))
            .max_length(Some(EventType::MAX_LEN));
        utoipa::openapi::schema::ArrayBuilder::new()
            .items(item)
            .min_items(Some(1))
            .description(Some("Event types, or `[\"*\"]` for every type"))
            .examples([serde_json::json!(["appointment.booked", "client.created"])])
            .into()
    }
}

impl utoipa::ToSchema for EventTypeFilter {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_pattern_agrees_with_the_parser() {
        let pattern = regex::Regex::new(EventType::PATTERN).unwrap();
        let filter_item = regex::Regex::new(r"^(\*|[a-z0-9_]+(\.[a-z0-9_]+)+)$").unwrap();
        let documented = serde_json::to_value(<EventTypeFilter as utoipa::PartialSchema>::schema()).unwrap();
        assert_eq!(documented["items"]["pattern"], filter_item.as_str());
        let samples = ["appointment.booked", "a.b.c", "payment_v2.received", "", "booked", "A.b", "a..b", ".a", "a."];
        for sample in samples.into_iter().chain(["a.b-c", "é.b", "a b.c", "*", "a.b\n"]) {
            assert_eq!(pattern.is_match(sample), sample.parse::<EventType>().is_ok(), "{sample:?}");
        }
    }

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
