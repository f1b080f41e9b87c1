//! Encryption at rest (AES-256-GCM) for signing secrets and event payloads.
//!
//! Each sealed value names the key it was sealed with, so keys rotate
//! without a migration: add the new key, make it active, and old rows
//! still open with the old one. The row id is authenticated with the value
//! (as associated data), so a ciphertext copied into another row does not
//! open. Values written before encryption was turned on stay readable.
//!
//! What marks a value as sealed is never the tenant's to choose. A stored
//! text that begins with [`TEXT_PREFIX`] or a stored JSON object with a
//! [`JSON_MARKER`] key is ciphertext; tenant data that would look like
//! either is escaped on the way in (behind [`TEXT_ESCAPE`], or wrapped as
//! `{"$plain": value}`) and unescaped on the way out, so any value a tenant
//! sends reads back exactly as sent, sealed or not.
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fmt;

/// Begins every sealed text value.
const TEXT_PREFIX: &str = "enc:v1:";
/// Begins a plaintext value that would otherwise look sealed (or escaped).
const TEXT_ESCAPE: &str = "plain:v1:";
/// The key of a sealed JSON value.
const JSON_MARKER: &str = "$enc";
/// The one key of a wrapped plaintext JSON value that would otherwise look
/// sealed (or wrapped).
const JSON_ESCAPE: &str = "$plain";

/// A keyring that cannot be built from its configuration.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CipherError {
    /// Not `kid:base64key[,kid:base64key...]` with 32-byte keys.
    #[error("encryption keys must be `id:base64` pairs of 32-byte keys, comma-separated")]
    Malformed,
    /// The active key id is not among the keys.
    #[error("the active encryption key id is not one of the configured keys")]
    UnknownActive,
}

/// Why a sealed value did not open.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpenError {
    /// Sealed with a key this keyring does not have.
    #[error("sealed with unknown key {0:?}")]
    UnknownKey(String),
    /// Tampered, moved to another row, or malformed.
    #[error("sealed value does not authenticate")]
    Corrupt,
}

/// The keys values are sealed and opened with.
#[derive(Clone)]
pub struct Cipher {
    keys: HashMap<String, Aes256Gcm>,
    active: Option<String>,
}

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cipher").field("active", &self.active).field("keys", &self.keys.len()).finish()
    }
}

impl Cipher {
    /// No keys: values are stored as they are (development only).
    pub fn plaintext() -> Self {
        Self { keys: HashMap::new(), active: None }
    }

    /// Parses `kid:base64,kid2:base64`; `active` picks the sealing key
    /// (default: the first). An empty spec means [`Cipher::plaintext`].
    pub fn from_config(spec: &str, active: Option<&str>) -> Result<Self, CipherError> {
        let mut keys = HashMap::new();
        let mut first = None;
        for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (kid, b64) = pair.split_once(':').ok_or(CipherError::Malformed)?;
            let key = STANDARD.decode(b64.trim()).map_err(|_| CipherError::Malformed)?;
            if kid.is_empty() || kid.contains(':') || key.len() != 32 {
                return Err(CipherError::Malformed);
            }
            first.get_or_insert_with(|| kid.to_owned());
            keys.insert(kid.to_owned(), Aes256Gcm::new_from_slice(&key).map_err(|_| CipherError::Malformed)?);
        }
        let active = match active.filter(|a| !a.is_empty()) {
            Some(a) if keys.contains_key(a) => Some(a.to_owned()),
            Some(_) => return Err(CipherError::UnknownActive),
            None => first,
        };
        Ok(Self { keys, active })
    }

    /// Whether values are being encrypted.
    pub fn is_active(&self) -> bool {
        self.active.is_some()
    }

    fn seal(&self, plain: &[u8], row: &str) -> Option<(String, [u8; 12], Vec<u8>)> {
        let kid = self.active.as_ref()?;
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self.keys[kid]
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad: row.as_bytes() })
            .expect("AES-GCM encrypts any input under 64 GiB");
        Some((kid.clone(), nonce, sealed))
    }

    fn open(&self, kid: &str, nonce: &[u8], sealed: &[u8], row: &str) -> Result<Vec<u8>, OpenError> {
        let key = self.keys.get(kid).ok_or_else(|| OpenError::UnknownKey(kid.to_owned()))?;
        if nonce.len() != 12 {
            return Err(OpenError::Corrupt);
        }
        key.decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad: row.as_bytes() })
            .map_err(|_| OpenError::Corrupt)
    }

    /// Seals a text column of row `row`.
    pub fn seal_text(&self, plain: &str, row: &str) -> String {
        match self.seal(plain.as_bytes(), row) {
            Some((kid, nonce, sealed)) => {
                format!("{TEXT_PREFIX}{kid}:{}:{}", STANDARD.encode(nonce), STANDARD.encode(sealed))
            }
            None if plain.starts_with(TEXT_PREFIX) || plain.starts_with(TEXT_ESCAPE) => format!("{TEXT_ESCAPE}{plain}"),
            None => plain.to_owned(),
        }
    }

    /// Opens a text column; unsealed values (stored while encryption was
    /// off) pass through.
    pub fn open_text(&self, stored: &str, row: &str) -> Result<String, OpenError> {
        if let Some(plain) = stored.strip_prefix(TEXT_ESCAPE) {
            return Ok(plain.to_owned());
        }
        let Some(rest) = stored.strip_prefix(TEXT_PREFIX) else { return Ok(stored.to_owned()) };
        let mut parts = rest.splitn(3, ':');
        let (Some(kid), Some(nonce), Some(sealed)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(OpenError::Corrupt);
        };
        let nonce = STANDARD.decode(nonce).map_err(|_| OpenError::Corrupt)?;
        let sealed = STANDARD.decode(sealed).map_err(|_| OpenError::Corrupt)?;
        String::from_utf8(self.open(kid, &nonce, &sealed, row)?).map_err(|_| OpenError::Corrupt)
    }

    /// Seals a JSON column of row `row` into `{"$enc": "v1", "kid", "nonce", "ct"}`.
    pub fn seal_json(&self, plain: &Value, row: &str) -> Value {
        let bytes = serde_json::to_vec(plain).expect("a JSON value serialises");
        match self.seal(&bytes, row) {
            Some((kid, nonce, sealed)) => json!({
                JSON_MARKER: "v1",
                "kid": kid,
                "nonce": STANDARD.encode(nonce),
                "ct": STANDARD.encode(sealed),
            }),
            None if looks_marked(plain) => json!({ JSON_ESCAPE: plain }),
            None => plain.clone(),
        }
    }

    /// Opens a JSON column; unsealed values (stored while encryption was
    /// off) pass through.
    pub fn open_json(&self, stored: Value, row: &str) -> Result<Value, OpenError> {
        if let Value::Object(map) = &stored {
            if map.len() == 1 && map.contains_key(JSON_ESCAPE) {
                let Value::Object(mut map) = stored else { unreachable!("matched an object") };
                return Ok(map.remove(JSON_ESCAPE).expect("checked above"));
            }
        }
        if !is_sealed_shape(&stored) {
            // Includes a tenant's `{"$enc": ...}` stored before escaping
            // existed: only the exact shape `seal_json` writes is ciphertext.
            return Ok(stored);
        }
        let field = |name: &str| stored[name].as_str().ok_or(OpenError::Corrupt);
        let nonce = STANDARD.decode(field("nonce")?).map_err(|_| OpenError::Corrupt)?;
        let sealed = STANDARD.decode(field("ct")?).map_err(|_| OpenError::Corrupt)?;
        let plain = self.open(field("kid")?, &nonce, &sealed, row)?;
        serde_json::from_slice(&plain).map_err(|_| OpenError::Corrupt)
    }
}

/// Whether a plaintext JSON value would be taken for a sealed or wrapped one.
fn looks_marked(value: &Value) -> bool {
    value.as_object().is_some_and(|m| m.contains_key(JSON_MARKER) || m.contains_key(JSON_ESCAPE))
}

/// Exactly what [`Cipher::seal_json`] writes: four string fields, `$enc` being `v1`.
fn is_sealed_shape(value: &Value) -> bool {
    let Some(map) = value.as_object() else { return false };
    map.len() == 4
        && map.get(JSON_MARKER).and_then(Value::as_str) == Some("v1")
        && ["kid", "nonce", "ct"].iter().all(|k| map.get(*k).is_some_and(Value::is_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> String {
        STANDARD.encode([byte; 32])
    }

    #[test]
    fn seals_and_opens_text_and_json_bound_to_their_row() {
        let c = Cipher::from_config(&format!("k1:{}", key(1)), None).unwrap();
        let sealed = c.seal_text("whsec_abc", "sub_1");
        assert!(sealed.starts_with("enc:v1:k1:") && !sealed.contains("abc"));
        assert_eq!(c.open_text(&sealed, "sub_1").unwrap(), "whsec_abc");
        assert_eq!(c.open_text(&sealed, "sub_2"), Err(OpenError::Corrupt), "moved to another row");
        let data = json!({"client_id": "c1", "note": "PHI"});
        let sealed = c.seal_json(&data, "evt_1");
        assert!(!sealed.to_string().contains("PHI"));
        assert_eq!(c.open_json(sealed, "evt_1").unwrap(), data);
    }

    #[test]
    fn rotation_keeps_old_rows_readable_and_plaintext_passes_through() {
        let old = Cipher::from_config(&format!("k1:{}", key(1)), None).unwrap();
        let sealed = old.seal_text("s", "r");
        let rotated = Cipher::from_config(&format!("k1:{},k2:{}", key(1), key(2)), Some("k2")).unwrap();
        assert_eq!(rotated.open_text(&sealed, "r").unwrap(), "s");
        assert!(rotated.seal_text("s", "r").starts_with("enc:v1:k2:"));
        let without_old = Cipher::from_config(&format!("k2:{}", key(2)), None).unwrap();
        assert_eq!(without_old.open_text(&sealed, "r"), Err(OpenError::UnknownKey("k1".into())));
        assert_eq!(rotated.open_text("whsec_legacy", "r").unwrap(), "whsec_legacy");
        assert_eq!(Cipher::plaintext().seal_text("x", "r"), "x");
    }

    #[test]
    fn bad_configuration_is_refused() {
        assert_eq!(Cipher::from_config("k1:short", None).unwrap_err(), CipherError::Malformed);
        assert_eq!(Cipher::from_config("nokid", None).unwrap_err(), CipherError::Malformed);
        assert_eq!(Cipher::from_config(&format!("k1:{}", key(1)), Some("k9")).unwrap_err(), CipherError::UnknownActive);
        assert!(!Cipher::from_config("", None).unwrap().is_active());
    }

    #[test]
    fn tenant_values_that_look_sealed_read_back_as_sent() {
        let sealing = Cipher::from_config(&format!("k1:{}", key(1)), None).unwrap();
        for cipher in [Cipher::plaintext(), sealing] {
            for text in ["enc:v1:k1:AAAA:BBBB", "enc:v1:", "plain:v1:x", "plain:v1:enc:v1:", "whsec_x", ""] {
                let stored = cipher.seal_text(text, "r");
                assert_eq!(cipher.open_text(&stored, "r").unwrap(), text, "{text:?} via {stored:?}");
            }
            let values = [
                json!({"$enc": "v1", "kid": "k1", "nonce": "AAAA", "ct": "BBBB"}),
                json!({"$enc": "anything"}),
                json!({"$plain": 1}),
                json!({"$plain": {"$enc": "v1"}}),
                json!({"$plain": 1, "other": 2}),
                json!({"nested": {"$enc": "v1", "kid": "k1", "nonce": "AAAA", "ct": "BBBB"}}),
                json!(["$enc"]),
                json!("enc:v1:k1:a:b"),
                json!(null),
            ];
            for value in values {
                let stored = cipher.seal_json(&value, "r");
                assert_eq!(cipher.open_json(stored.clone(), "r").unwrap(), value, "{value} via {stored}");
            }
        }
    }

    #[test]
    fn rows_stored_before_escaping_still_read() {
        let c = Cipher::plaintext();
        // A tenant's marker-like object from before escaping existed is not
        // the sealed shape, so it passes through instead of failing to open.
        let legacy = json!({"$enc": "forged", "a": 1});
        assert_eq!(c.open_json(legacy.clone(), "r").unwrap(), legacy);
    }
}
