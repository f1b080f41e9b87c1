//! Adjusts the generated document for the code generators connector
//! developers use (openapi-typescript, @hey-api/openapi-ts,
//! openapi-python-client): what utoipa writes is valid OpenAPI, but some of
//! it generates unusable or duplicated types.
use serde_json::{json, Value};

/// Applies every adjustment, in place.
pub(super) fn adjust(doc: &mut Value) {
    refer_to_list_items(doc);
    require_on_create(doc);
    allow_any_properties(doc);
}

/// A free-form object (`{"type": "object"}` and nothing else) reads as
/// "no properties at all" to openapi-typescript (`Record<string, never>`),
/// so `IngestBody.data` could hold nothing; say that any property is allowed.
fn allow_any_properties(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let is_object = match map.get("type") {
                Some(Value::String(t)) => t == "object",
                Some(Value::Array(ts)) => ts.iter().any(|t| t == "object"),
                _ => false,
            };
            if is_object && !map.contains_key("properties") && !map.contains_key("additionalProperties") {
                map.insert("additionalProperties".into(), Value::Bool(true));
            }
            map.values_mut().for_each(allow_any_properties);
        }
        Value::Array(items) => items.iter_mut().for_each(allow_any_properties),
        _ => {}
    }
}

/// utoipa inlines the item schema of a generic `ListBody<T>`, so each list
/// carried its own copy and generators made a second, differently named
/// type per item; point at the item's component instead.
fn refer_to_list_items(doc: &mut Value) {
    let Some(schemas) = doc["components"]["schemas"].as_object_mut() else {
        return;
    };
    let names: Vec<String> = schemas.keys().cloned().collect();
    for (name, schema) in schemas.iter_mut() {
        let Some(item) = name.strip_prefix("ListBody_") else {
            continue;
        };
        if names.iter().any(|n| n == item) {
            schema["properties"]["data"]["items"] = json!({"$ref": format!("#/components/schemas/{item}")});
        }
    }
}

/// Creating and updating a subscription share `SubscriptionFields`, in
/// which nothing is required (an update may change any field alone), so a
/// generated "create" accepted a subscription without `url`. The create
/// gets its own copy, `SubscriptionCreate`, with `url` and `event_types`
/// required, as the handler requires them.
fn require_on_create(doc: &mut Value) {
    let Some(mut create) = doc["components"]["schemas"].get("SubscriptionFields").cloned() else {
        return;
    };
    create["required"] = json!(["url", "event_types"]);
    create["description"] = json!("A new subscription: `url` and `event_types` are required.");
    for field in ["url", "event_types"] {
        // Optional fields are written as nullable; required ones are not.
        if let Some(Value::Array(types)) = create["properties"][field].get_mut("type") {
            types.retain(|t| t != "null");
        }
        if let Some(Value::Array(any)) = create["properties"][field].get_mut("oneOf") {
            any.retain(|s| s["type"] != "null");
            if any.len() == 1 {
                let only = any.remove(0);
                create["properties"][field] = only;
            }
        }
    }
    doc["components"]["schemas"]["SubscriptionCreate"] = create;
    let body = &mut doc["paths"]["/v1/subscriptions"]["post"]["requestBody"]["content"]["application/json"]["schema"];
    if body.is_object() {
        *body = json!({"$ref": "#/components/schemas/SubscriptionCreate"});
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_form_objects_allow_any_property_and_others_are_left_alone() {
        let mut doc = json!({"a": {"type": "object"}, "b": {"type": ["object", "null"]},
            "c": {"type": "object", "properties": {}}, "d": {"type": "object", "additionalProperties": false},
            "e": [{"type": "object"}]});
        allow_any_properties(&mut doc);
        assert_eq!(doc["a"]["additionalProperties"], true);
        assert_eq!(doc["b"]["additionalProperties"], true);
        assert!(doc["c"].get("additionalProperties").is_none());
        assert_eq!(doc["d"]["additionalProperties"], false);
        assert_eq!(doc["e"][0]["additionalProperties"], true);
    }
}
