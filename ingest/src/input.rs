//! Input the store cannot keep exactly, refused up front with the field
//! named, the same on every backend:
//!
//! - the NUL character (U+0000), which PostgreSQL `text` and `jsonb` cannot
//!   hold (SQLite could, but behaviour must not depend on the backend);
//! - JSON integers outside the 64-bit range, which the JSON parser would
//!   otherwise turn silently into floating-point numbers.
use crate::error::FieldError;
use serde_json::Value;

/// What a string field containing NUL is told.
const NUL_MESSAGE: &str = "must not contain the NUL character (U+0000)";

/// A field error when `value` contains NUL.
pub(crate) fn nul_free(field: &str, value: &str) -> Result<(), FieldError> {
    if value.contains('\0') {
        Err(FieldError::new(field, NUL_MESSAGE))
    } else {
        Ok(())
    }
}

/// A field error naming the first string or object key inside `value`
/// (at any depth) that contains NUL; `field` is the path of `value` itself.
pub(crate) fn nul_free_json(field: &str, value: &Value) -> Result<(), FieldError> {
    match value {
        Value::String(s) => nul_free(field, s),
        Value::Array(items) => {
            items.iter().enumerate().try_for_each(|(i, v)| nul_free_json(&format!("{field}[{i}]"), v))
        }
        Value::Object(map) => map.iter().try_for_each(|(k, v)| {
            let path = format!("{field}.{k}");
            if k.contains('\0') {
                return Err(FieldError::new(&path.replace('\0', "\\u0000"), format!("key {NUL_MESSAGE}")));
            }
            nul_free_json(&path, v)
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
    }
}

/// A field error naming the first integer literal of the JSON text `raw`
/// that fits neither `i64` nor `u64`, by its path from the root (`data.amount`,
/// `items[2]`). `raw` must already have parsed as JSON.
pub(crate) fn integers_fit(raw: &[u8]) -> Result<(), FieldError> {
    let mut scan = Scanner { raw, at: 0, path: Vec::new() };
    match scan.find_oversized() {
        Some(path) => Err(FieldError::new(
            &path,
            "is an integer beyond the 64-bit range; send it as a string to keep every digit",
        )),
        None => Ok(()),
    }
}

/// One level of the path to the current value.
enum Step {
    /// In an object, under this key (none before the first key).
    Key(Option<String>),
    /// In an array, at this index.
    Index(usize),
}

/// A single pass over well-formed JSON text that tracks where it is.
struct Scanner<'a> {
    raw: &'a [u8],
    at: usize,
    path: Vec<Step>,
}

impl Scanner<'_> {
    /// The path of the first oversized integer literal, if any.
    fn find_oversized(&mut self) -> Option<String> {
        while let Some(&b) = self.raw.get(self.at) {
            match b {
                b'"' => {
                    let text = self.skip_string();
                    // A string followed by `:` is a key; only keys are decoded.
                    if let Some(Step::Key(key)) = self.path.last_mut() {
                        if self.raw[self.at..].iter().find(|c| !c.is_ascii_whitespace()) == Some(&b':') {
                            *key = Some(serde_json::from_slice(&self.raw[text]).unwrap_or_default());
                        }
                    }
                    continue;
                }
                b'{' => self.path.push(Step::Key(None)),
                b'[' => self.path.push(Step::Index(0)),
                b'}' | b']' => drop(self.path.pop()),
                b',' => {
                    if let Some(Step::Index(i)) = self.path.last_mut() {
                        *i += 1;
                    }
                }
                b'-' | b'0'..=b'9' => {
                    let start = self.at;
                    while self
                        .raw
                        .get(self.at)
                        .is_some_and(|c| matches!(c, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'))
                    {
                        self.at += 1;
                    }
                    let literal = std::str::from_utf8(&self.raw[start..self.at]).unwrap_or_default();
                    let integer = !literal.contains(['.', 'e', 'E']);
                    if integer && literal.parse::<i64>().is_err() && literal.parse::<u64>().is_err() {
                        return Some(self.path_text());
                    }
                    continue;
                }
                _ => {}
            }
            self.at += 1;
        }
        None
    }

    /// Skips the string starting at the current `"`, leaving `at` after it;
    /// returns where its JSON text is, quotes included.
    fn skip_string(&mut self) -> std::ops::Range<usize> {
        let start = self.at;
        self.at += 1;
        while let Some(&b) = self.raw.get(self.at) {
            self.at += 1;
            match b {
                b'\\' => self.at += 1,
                b'"' => break,
                _ => {}
            }
        }
        start..self.at.min(self.raw.len())
    }

    /// The current path, like `data.items[2].amount`.
    fn path_text(&self) -> String {
        let mut out = String::new();
        for step in &self.path {
            match step {
                Step::Key(Some(key)) if out.is_empty() => out.push_str(key),
                Step::Key(Some(key)) => {
                    out.push('.');
                    out.push_str(key);
                }
                Step::Key(None) => {}
                Step::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        if out.is_empty() {
            "body".to_owned()
        } else {
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn oversized(text: &str) -> Option<String> {
        serde_json::from_str::<Value>(text).expect("test input is JSON");
        integers_fit(text.as_bytes()).err().map(|e| e.field)
    }

    #[test]
    fn integers_beyond_64_bits_are_found_by_path() {
        assert_eq!(oversized(r#"{"data": {"a": 18446744073709551616}}"#).as_deref(), Some("data.a"));
        assert_eq!(oversized(r#"{"data": {"a": [1, {"b": -9223372036854775809}]}}"#).as_deref(), Some("data.a[1].b"));
        assert_eq!(oversized(r#"{"k\"ey,[": "x]", "n": 1e300, "m": [99999999999999999999]}"#).as_deref(), Some("m[0]"));
        assert_eq!(oversized("123456789012345678901234567890").as_deref(), Some("body"));
    }

    #[test]
    fn numbers_that_fit_or_are_floats_pass() {
        let text = r#"{"a": 18446744073709551615, "b": -9223372036854775808, "c": 1.5e300, "d": "99999999999999999999", "e": 2.0}"#;
        assert_eq!(oversized(text), None);
    }

    #[test]
    fn nul_is_found_in_strings_and_keys_at_any_depth() {
        assert_eq!(nul_free_json("data", &json!({"a": [{"b": "x\u{0}"}]})).unwrap_err().field, "data.a[0].b");
        assert_eq!(nul_free_json("data", &json!({"a": {"k\u{0}": 1}})).unwrap_err().field, "data.a.k\\u0000");
        assert!(nul_free_json("data", &json!({"a": ["\u{1}", 1, null]})).is_ok());
        assert!(nul_free("name", "a\u{0}b").is_err());
    }
}
