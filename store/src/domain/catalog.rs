//! The built-in event types: what the platforms we serve emit, each with a
//! JSON Schema of its `data` and an example (shown to Zapier and Make users
//! while they build a Zap, before any real event exists).
use serde_json::{json, Value};

/// A built-in event type.
#[derive(Clone, Debug)]
pub struct BuiltinType {
    /// Its name, like `appointment.booked`.
    pub name: &'static str,
    /// What it means.
    pub description: &'static str,
    /// JSON Schema (2020-12) of `data`.
    pub schema: Value,
    /// An example `data`.
    pub example: Value,
}

fn object(required: &[&str], properties: Value) -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": required,
        "properties": properties,
        "additionalProperties": true,
    })
}

fn builtin(
    name: &'static str,
    description: &'static str,
    required: &[&str],
    props: Value,
    example: Value,
) -> BuiltinType {
    BuiltinType { name, description, schema: object(required, props), example }
}

/// Every built-in type, in catalogue order. Built once: ingest looks a
/// type up for every batch, and building the schemas each time showed up
/// at ~2.5 % of the hub's CPU under load.
pub fn builtins() -> &'static [BuiltinType] {
    static CATALOGUE: std::sync::LazyLock<Vec<BuiltinType>> = std::sync::LazyLock::new(catalogue);
    &CATALOGUE
}

fn catalogue() -> Vec<BuiltinType> {
    let id = json!({"type": "string", "minLength": 1});
    let time = json!({"type": "string", "format": "date-time"});
    let money = json!({"type": "integer", "description": "minor units (cents)"});
    let currency = json!({"type": "string", "pattern": "^[a-z]{3}$"});
    vec![
        builtin(
            "client.created",
            "A client was added.",
            &["client_id"],
            json!({"client_id": id, "first_name": {"type": "string"}, "last_name": {"type": "string"}, "email": {"type": "string"}, "phone": {"type": "string"}}),
            json!({"client_id": "cl_8f3a2", "first_name": "Laura", "last_name": "Garcia", "email": "laura@example.com", "phone": "+34600111222"}),
        ),
        builtin(
            "client.updated",
            "A client's details changed; `changes` holds the new values.",
            &["client_id", "changes"],
            json!({"client_id": id, "changes": {"type": "object"}}),
            json!({"client_id": "cl_8f3a2", "changes": {"email": "laura.garcia@example.com"}}),
        ),
        builtin(
            "client.archived",
            "A client stopped training or was offboarded; keep the record, stop the outreach.",
            &["client_id"],
            json!({"client_id": id, "reason": {"type": "string"}}),
            json!({"client_id": "cl_8f3a2", "reason": "subscription cancelled"}),
        ),
        builtin(
            "appointment.booked",
            "An appointment was booked.",
            &["appointment_id", "client_id", "starts_at"],
            json!({"appointment_id": id, "client_id": id, "service": {"type": "string"}, "staff_id": {"type": "string"}, "starts_at": time, "ends_at": time}),
            json!({"appointment_id": "apt_5521", "client_id": "cl_8f3a2", "service": "Personal training 60 min", "staff_id": "st_12", "starts_at": "2026-12-01T09:00:00Z", "ends_at": "2026-12-01T10:00:00Z"}),
        ),
        builtin(
            "appointment.rescheduled",
            "An appointment moved to another time.",
            &["appointment_id", "client_id", "starts_at"],
            json!({"appointment_id": id, "client_id": id, "previous_starts_at": time, "starts_at": time, "ends_at": time}),
            json!({"appointment_id": "apt_5521", "client_id": "cl_8f3a2", "previous_starts_at": "2026-12-01T09:00:00Z", "starts_at": "2026-12-02T09:00:00Z", "ends_at": "2026-12-02T10:00:00Z"}),
        ),
        builtin(
            "appointment.cancelled",
            "An appointment was cancelled.",
            &["appointment_id", "client_id"],
            json!({"appointment_id": id, "client_id": id, "cancelled_by": {"enum": ["client", "staff", "system"]}, "reason": {"type": "string"}}),
            json!({"appointment_id": "apt_5521", "client_id": "cl_8f3a2", "cancelled_by": "client", "reason": "sick"}),
        ),
        builtin(
            "payment.received",
            "A payment succeeded.",
            &["amount", "currency"],
            json!({"payment_id": id, "client_id": id, "amount": money, "currency": currency}),
            json!({"payment_id": "pay_301", "client_id": "cl_8f3a2", "amount": 6500, "currency": "eur"}),
        ),
        builtin(
            "payment.failed",
            "A payment attempt failed.",
            &["amount", "currency"],
            json!({"payment_id": id, "client_id": id, "amount": money, "currency": currency, "failure_reason": {"type": "string"}}),
            json!({"payment_id": "pay_302", "client_id": "cl_8f3a2", "amount": 6500, "currency": "eur", "failure_reason": "card_declined"}),
        ),
        builtin(
            "subscription.cancelled",
            "A client's membership or subscription ended.",
            &["subscription_id"],
            json!({"subscription_id": id, "client_id": id, "plan": {"type": "string"}, "cancelled_at": time}),
            json!({"subscription_id": "sub_monthly_77", "client_id": "cl_8f3a2", "plan": "Unlimited monthly", "cancelled_at": "2026-11-30T23:59:59Z"}),
        ),
        builtin(
            "consent.signed",
            "A client signed a consent or intake form.",
            &["client_id", "form"],
            json!({"consent_id": id, "client_id": id, "form": {"type": "string"}, "signed_at": time}),
            json!({"consent_id": "cns_90", "client_id": "cl_8f3a2", "form": "Microneedling consent v3", "signed_at": "2026-11-26T08:15:00Z"}),
        ),
        builtin(
            "program.assigned",
            "A training or treatment program was assigned to a client.",
            &["program_id", "client_id"],
            json!({"program_id": id, "client_id": id, "program_name": {"type": "string"}, "starts_on": {"type": "string", "format": "date"}}),
            json!({"program_id": "prg_14", "client_id": "cl_8f3a2", "program_name": "Strength foundations, 12 weeks", "starts_on": "2026-12-01"}),
        ),
    ]
}

/// The built-in type of this name, if there is one.
pub fn builtin_type(name: &str) -> Option<&'static BuiltinType> {
    builtins().iter().find(|t| t.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_names_are_valid_event_types_and_unique() {
        let all = builtins();
        let mut names: Vec<_> = all.iter().map(|t| t.name).collect();
        assert_eq!(names.len(), 11);
        names.dedup();
        assert_eq!(names.len(), 11);
        for t in all {
            assert!(t.name.parse::<crate::domain::EventType>().is_ok(), "{}", t.name);
            assert!(t.example.is_object() && t.schema["type"] == "object");
        }
    }
}
