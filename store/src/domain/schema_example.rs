//! An example value generated from a JSON Schema, for event types that
//! were registered with a schema but no example: Zapier and Make show a
//! sample while a user maps fields, and an empty one leaves nothing to map.
use serde_json::{json, Map, Value};

/// How deep nested objects and arrays are followed; a schema may recurse.
const MAX_DEPTH: usize = 6;

/// A value the schema describes, built from its `examples`, `default`,
/// `const` or `enum` where given, otherwise from its `type` (and, for
/// strings, `format`). Best effort: `$ref`, patterns and bounds other than
/// `minimum` are not followed, so the result may not validate.
pub fn example_from_schema(schema: &Value) -> Value {
    example_at(schema, 0)
}

fn example_at(schema: &Value, depth: usize) -> Value {
    let Some(schema) = schema.as_object() else {
        return Value::Null;
    };
    let given = schema
        .get("examples")
        .and_then(|e| e.as_array()?.first())
        .or_else(|| schema.get("example"))
        .or_else(|| schema.get("default"))
        .or_else(|| schema.get("const"))
        .or_else(|| schema.get("enum").and_then(|e| e.as_array()?.first()));
    if let Some(value) = given {
        return value.clone();
    }
    if let Some(first) = ["oneOf", "anyOf", "allOf"].iter().find_map(|k| schema.get(*k)?.as_array()?.first()) {
        return example_at(first, depth);
    }
    let kind = match schema.get("type") {
        Some(Value::Array(kinds)) => kinds.iter().filter_map(Value::as_str).find(|k| *k != "null"),
        Some(Value::String(kind)) => Some(kind.as_str()),
        _ if schema.contains_key("properties") => Some("object"),
        _ => None,
    };
    match kind {
        Some("object") if depth < MAX_DEPTH => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let object: Map<String, Value> = properties
                .into_iter()
                .flatten()
                .map(|(name, property)| (name.clone(), example_at(property, depth + 1)))
                .collect();
            Value::Object(object)
        }
        Some("object") => json!({}),
        Some("array") if depth < MAX_DEPTH => {
            schema.get("items").map_or_else(|| json!([]), |items| json!([example_at(items, depth + 1)]))
        }
        Some("array") => json!([]),
        Some("string") => string_example(schema.get("format").and_then(Value::as_str)),
        Some("integer") => schema.get("minimum").filter(|m| m.is_i64() || m.is_u64()).cloned().unwrap_or(json!(0)),
        Some("number") => schema.get("minimum").cloned().unwrap_or(json!(0.0)),
        Some("boolean") => json!(true),
        _ => Value::Null,
    }
}

fn string_example(format: Option<&str>) -> Value {
    json!(match format {
        Some("date-time") => "2026-01-01T09:00:00Z",
        Some("date") => "2026-01-01",
        Some("time") => "09:00:00Z",
        Some("email") => "someone@example.com",
        Some("uri" | "url") => "https://example.com/",
        Some("uuid") => "00000000-0000-4000-8000-000000000000",
        _ => "string",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_objects_from_types_formats_and_given_values() {
        let schema = json!({
            "type": "object",
            "required": ["member_id"],
            "properties": {
                "member_id": {"type": "string"},
                "joined_at": {"type": "string", "format": "date-time"},
                "visits": {"type": "integer", "minimum": 1},
                "tier": {"enum": ["gold", "silver"]},
                "note": {"type": ["null", "string"], "examples": ["likes mornings"]},
                "tags": {"type": "array", "items": {"type": "string"}},
                "address": {"properties": {"city": {"type": "string", "default": "Madrid"}}},
                "paid": {"type": "boolean"},
                "choice": {"oneOf": [{"type": "number"}, {"type": "string"}]},
            }
        });
        assert_eq!(
            example_from_schema(&schema),
            json!({
                "member_id": "string", "joined_at": "2026-01-01T09:00:00Z", "visits": 1, "tier": "gold",
                "note": "likes mornings", "tags": ["string"], "address": {"city": "Madrid"}, "paid": true,
                "choice": 0.0,
            })
        );
    }

    #[test]
    fn stops_on_deep_or_unknown_schemas() {
        let mut deep = json!({"type": "object"});
        for _ in 0..20 {
            deep = json!({"type": "object", "properties": {"next": deep}});
        }
        let example = example_from_schema(&deep);
        assert!(example.to_string().len() < 200, "{example}");
        assert_eq!(example_from_schema(&json!(true)), Value::Null);
        assert_eq!(example_from_schema(&json!({"$ref": "#/$defs/x"})), Value::Null);
    }
}
