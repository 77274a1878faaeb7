//! The layer container (spec `onion.md` §2): `u32_le(N) ‖ blob[N] ‖ json`,
//! used for every layer's plaintext and for the body a client sends to the
//! guard.

use serde_json::{Map, Value};

use super::OnionError;

/// A parsed container: the blob and the JSON object that follows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Container<'a> {
    /// The `N` bytes after the length prefix.
    pub blob: &'a [u8],
    /// The JSON object in the rest of the buffer.
    pub json: Map<String, Value>,
}

/// Writes `u32_le(len blob) ‖ blob ‖ json`.
pub fn frame(blob: &[u8], json: &[u8]) -> Result<Vec<u8>, OnionError> {
    let n = u32::try_from(blob.len()).map_err(|_| OnionError::BlobTooLarge(blob.len()))?;
    let mut out = Vec::with_capacity(4 + blob.len() + json.len());
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(blob);
    out.extend_from_slice(json);
    Ok(out)
}

/// Parses a container: reads the little-endian length, requires
/// `N ≤ len − 4`, and parses the remainder as one JSON object (surrounding
/// whitespace allowed).
pub fn unframe(buf: &[u8]) -> Result<Container<'_>, OnionError> {
    let (prefix, rest) = buf
        .split_first_chunk::<4>()
        .ok_or(OnionError::ContainerTooShort(buf.len()))?;
    let declared = u32::from_le_bytes(*prefix);
    let too_large = OnionError::LengthPrefixTooLarge {
        declared,
        available: rest.len(),
    };
    let n = usize::try_from(declared).map_err(|_| too_large.clone())?;
    if n > rest.len() {
        return Err(too_large);
    }
    let (blob, json) = rest.split_at(n);
    if !crate::rpc::limits::json_values_within(json, crate::rpc::limits::MAX_JSON_VALUES) {
        return Err(OnionError::InvalidJson("too many JSON values".into()));
    }
    let value: Value =
        serde_json::from_slice(json).map_err(|e| OnionError::InvalidJson(e.to_string()))?;
    match value {
        Value::Object(json) => Ok(Container { blob, json }),
        _ => Err(OnionError::JsonNotObject),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_refuses() {
        let buf = frame(b"abc", b" {\"a\":1} \n").expect("frame");
        assert_eq!(&buf[..4], &[3, 0, 0, 0]);
        let c = unframe(&buf).expect("valid");
        assert_eq!(c.blob, b"abc");
        assert_eq!(c.json.get("a"), Some(&serde_json::json!(1)));

        assert_eq!(
            unframe(b"\x03\x00\x00"),
            Err(OnionError::ContainerTooShort(3))
        );
        assert_eq!(
            unframe(b"\x06\x00\x00\x00abc{}"),
            Err(OnionError::LengthPrefixTooLarge {
                declared: 6,
                available: 5
            })
        );
        assert_eq!(
            unframe(b"\xff\xff\xff\xffabc{}"),
            Err(OnionError::LengthPrefixTooLarge {
                declared: u32::MAX,
                available: 5
            })
        );
        assert_eq!(
            unframe(b"\x00\x00\x00\x00[1]"),
            Err(OnionError::JsonNotObject)
        );
        assert!(matches!(
            unframe(b"\x00\x00\x00\x00{}{}"),
            Err(OnionError::InvalidJson(_))
        ));
        assert!(matches!(
            unframe(b"\x00\x00\x00\x00"),
            Err(OnionError::InvalidJson(_))
        ));
        assert!(matches!(
            unframe(b"\x00\x00\x00\x00{\"a\":\"\xff\"}"),
            Err(OnionError::InvalidJson(_))
        ));
    }

    proptest! {
        #[test]
        fn round_trip(blob in proptest::collection::vec(any::<u8>(), 0..100),
                      key in "[a-z_]{1,10}", val in ".{0,20}") {
            let json = serde_json::to_vec(&serde_json::json!({ key.clone(): val.clone() }))
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let buf = frame(&blob, &json).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let c = unframe(&buf).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(c.blob, &blob[..]);
            prop_assert_eq!(c.json.get(&key), Some(&serde_json::Value::String(val)));
        }

        #[test]
        fn never_panics(buf in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = unframe(&buf);
        }
    }
}
