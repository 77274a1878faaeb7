//! Typed access to a vector's `input` object under the schema's encoding
//! rules: lowercase hex bytes, u64 as decimal strings, small integers as
//! JSON numbers. A value that breaks a rule is [`Malformed`].

use serde_json::{Map, Value};

/// A schema violation in a vector.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {why}")]
pub struct Malformed {
    /// The offending key.
    pub key: String,
    /// What is wrong with it.
    pub why: String,
}

impl Malformed {
    /// Builds the error.
    pub fn new(key: &str, why: impl Into<String>) -> Self {
        Malformed {
            key: key.to_string(),
            why: why.into(),
        }
    }
}

/// A vector's `input` object.
pub struct Input<'a>(&'a Map<String, Value>);

impl<'a> Input<'a> {
    /// Wraps the object.
    pub fn new(map: &'a Map<String, Value>) -> Self {
        Input(map)
    }

    /// The raw value of `key`.
    pub fn value(&self, key: &str) -> Result<&'a Value, Malformed> {
        self.0
            .get(key)
            .ok_or_else(|| Malformed::new(key, "missing"))
    }

    /// True when `key` is JSON `null`.
    pub fn is_null(&self, key: &str) -> Result<bool, Malformed> {
        Ok(self.value(key)?.is_null())
    }

    /// A text value.
    pub fn str(&self, key: &str) -> Result<&'a str, Malformed> {
        self.value(key)?
            .as_str()
            .ok_or_else(|| Malformed::new(key, "not a string"))
    }

    /// A byte string (lowercase hex, any length).
    pub fn bytes(&self, key: &str) -> Result<Vec<u8>, Malformed> {
        hex_bytes(key, self.str(key)?)
    }

    /// A u64 written as a decimal string without sign or leading zeros.
    pub fn u64(&self, key: &str) -> Result<u64, Malformed> {
        dec_u64(key, self.str(key)?)
    }

    /// A small integer (JSON number).
    pub fn int(&self, key: &str) -> Result<i64, Malformed> {
        self.value(key)?
            .as_i64()
            .ok_or_else(|| Malformed::new(key, "not an integer"))
    }

    /// A boolean.
    pub fn bool(&self, key: &str) -> Result<bool, Malformed> {
        self.value(key)?
            .as_bool()
            .ok_or_else(|| Malformed::new(key, "not a boolean"))
    }

    /// An array.
    pub fn array(&self, key: &str) -> Result<&'a Vec<Value>, Malformed> {
        self.value(key)?
            .as_array()
            .ok_or_else(|| Malformed::new(key, "not an array"))
    }

    /// An object.
    pub fn object(&self, key: &str) -> Result<Input<'a>, Malformed> {
        self.value(key)?
            .as_object()
            .map(Input)
            .ok_or_else(|| Malformed::new(key, "not an object"))
    }

    /// The underlying map.
    pub fn map(&self) -> &'a Map<String, Value> {
        self.0
    }
}

/// Decodes lowercase hex; uppercase or odd length is malformed.
pub fn hex_bytes(key: &str, s: &str) -> Result<Vec<u8>, Malformed> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(Malformed::new(key, "hex must be lowercase"));
    }
    hex::decode(s).map_err(|e| Malformed::new(key, format!("bad hex: {e}")))
}

/// Parses a canonical decimal u64 string.
pub fn dec_u64(key: &str, s: &str) -> Result<u64, Malformed> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if !canonical {
        return Err(Malformed::new(
            key,
            format!("{s:?} is not a canonical decimal u64"),
        ));
    }
    s.parse()
        .map_err(|_| Malformed::new(key, "out of u64 range"))
}

/// Lowercase hex, for outputs.
pub fn hx(b: impl AsRef<[u8]>) -> Value {
    Value::String(hex::encode(b))
}

/// A u64 as a decimal string, for outputs.
pub fn dec(n: u64) -> Value {
    Value::String(n.to_string())
}
