//! Canonical bencoding (spec `README.md`, "Text encodings"; used by the
//! hop-to-hop relay body of onion §6, v4 lsrpc of onion §8 and node
//! requests of swarms §8).
//!
//! The encoder always writes the canonical form: integers without leading
//! zeros or `-0`, byte strings as `<len>:<bytes>`, and dictionary keys in
//! ascending raw-byte order (guaranteed by [`BTreeMap`]). The decoder accepts
//! **only** that canonical form, so that bytes covered by a signature or a
//! hash have exactly one meaning:
//!
//! - integers: no leading zeros, no `-0`, no empty `ie`, must fit in `i64`;
//! - byte-string lengths: no leading zeros, checked against the remaining
//!   input without overflow;
//! - dictionaries: keys are byte strings, strictly ascending (hence unique);
//! - nesting depth at most [`MAX_DEPTH`];
//! - the whole input is consumed (no trailing bytes).

use std::collections::BTreeMap;

/// Maximum nesting depth of lists and dictionaries accepted by [`decode`].
pub const MAX_DEPTH: usize = 64;

/// A bencoded value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Value {
    /// An integer `i<digits>e`.
    Int(i64),
    /// A byte string `<len>:<bytes>`.
    Bytes(Vec<u8>),
    /// A list `l…e`.
    List(Vec<Value>),
    /// A dictionary `d…e` whose keys are byte strings in ascending order.
    Dict(BTreeMap<Vec<u8>, Value>),
}

/// Why a byte string is not canonical bencode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BencodeError {
    /// The input ended before the value was complete.
    #[error("bencode: unexpected end of input at offset {0}")]
    UnexpectedEnd(usize),
    /// A byte that cannot start or continue a value at this position.
    #[error("bencode: unexpected byte 0x{byte:02x} at offset {offset}")]
    UnexpectedByte {
        /// Offset of the byte in the input.
        offset: usize,
        /// The byte found.
        byte: u8,
    },
    /// An integer is empty, has a leading zero, is `-0` or has a bad digit.
    #[error("bencode: non-canonical or malformed integer at offset {0}")]
    BadInteger(usize),
    /// An integer does not fit in a signed 64-bit value.
    #[error("bencode: integer out of range at offset {0}")]
    IntegerOverflow(usize),
    /// A byte-string length is malformed, has a leading zero, or exceeds the
    /// remaining input.
    #[error("bencode: bad byte-string length at offset {0}")]
    BadLength(usize),
    /// A dictionary key is not a byte string.
    #[error("bencode: dictionary key is not a byte string at offset {0}")]
    KeyNotBytes(usize),
    /// Dictionary keys are not strictly ascending (unsorted or duplicated).
    #[error("bencode: dictionary keys not strictly sorted at offset {0}")]
    UnsortedKeys(usize),
    /// Lists and dictionaries are nested deeper than [`MAX_DEPTH`].
    #[error("bencode: nesting deeper than {MAX_DEPTH}")]
    TooDeep,
    /// More values than the format allows, at this offset.
    #[error("bencode: more values than expected at offset {0}")]
    TooManyValues(usize),
    /// Bytes remain after the first complete value.
    #[error("bencode: {0} trailing bytes after the value")]
    TrailingBytes(usize),
}

impl Value {
    /// The bytes of a [`Value::Bytes`], or `None`.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The value of a [`Value::Int`], or `None`.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The items of a [`Value::List`], or `None`.
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    /// The map of a [`Value::Dict`], or `None`.
    pub fn as_dict(&self) -> Option<&BTreeMap<Vec<u8>, Value>> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// The entry `key` of a [`Value::Dict`]; `None` if absent or not a dict.
    pub fn get(&self, key: &[u8]) -> Option<&Value> {
        self.as_dict().and_then(|d| d.get(key))
    }

    /// Shorthand for a byte-string value.
    pub fn bytes(b: impl Into<Vec<u8>>) -> Value {
        Value::Bytes(b.into())
    }

    /// Builds a dictionary from `(key, value)` pairs (later duplicates win).
    pub fn dict<K: Into<Vec<u8>>>(entries: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Dict(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }
}

/// Encodes `value` canonically.
pub fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(value, &mut out);
    out
}

/// Appends the canonical encoding of `value` to `out`.
pub fn encode_into(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Int(i) => {
            out.push(b'i');
            out.extend_from_slice(i.to_string().as_bytes());
            out.push(b'e');
        }
        Value::Bytes(b) => encode_bytes(b, out),
        Value::List(items) => {
            out.push(b'l');
            for item in items {
                encode_into(item, out);
            }
            out.push(b'e');
        }
        Value::Dict(map) => {
            out.push(b'd');
            for (k, v) in map {
                encode_bytes(k, out);
                encode_into(v, out);
            }
            out.push(b'e');
        }
    }
}

fn encode_bytes(b: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(b);
}

/// Decodes exactly one canonical value occupying all of `input`.
pub fn decode(input: &[u8]) -> Result<Value, BencodeError> {
    decode_at_most(input, usize::MAX)
}

/// [`decode`], refusing input holding more than `max_values` values (lists,
/// dictionaries, strings and integers; dictionary keys not counted) before
/// building them: a tree of small values costs about 40 times their bytes,
/// so formats with a known shape say how many they expect.
pub fn decode_at_most(input: &[u8], max_values: usize) -> Result<Value, BencodeError> {
    let mut p = Parser {
        input,
        pos: 0,
        budget: max_values,
    };
    let v = p.value(0)?;
    if p.pos != input.len() {
        return Err(BencodeError::TrailingBytes(input.len() - p.pos));
    }
    Ok(v)
}

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
    /// Values still allowed.
    budget: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Result<u8, BencodeError> {
        self.input
            .get(self.pos)
            .copied()
            .ok_or(BencodeError::UnexpectedEnd(self.pos))
    }

    fn value(&mut self, depth: usize) -> Result<Value, BencodeError> {
        let start = self.pos;
        self.budget = self
            .budget
            .checked_sub(1)
            .ok_or(BencodeError::TooManyValues(start))?;
        match self.peek()? {
            b'i' => {
                self.pos += 1;
                self.int(start).map(Value::Int)
            }
            b'0'..=b'9' => self.byte_string().map(Value::Bytes),
            b'l' => {
                if depth >= MAX_DEPTH {
                    return Err(BencodeError::TooDeep);
                }
                self.pos += 1;
                let mut items = Vec::new();
                while self.peek()? != b'e' {
                    items.push(self.value(depth + 1)?);
                }
                self.pos += 1;
                Ok(Value::List(items))
            }
            b'd' => {
                if depth >= MAX_DEPTH {
                    return Err(BencodeError::TooDeep);
                }
                self.pos += 1;
                let mut map: BTreeMap<Vec<u8>, Value> = BTreeMap::new();
                while self.peek()? != b'e' {
                    let key_at = self.pos;
                    if !self.peek()?.is_ascii_digit() {
                        return Err(BencodeError::KeyNotBytes(key_at));
                    }
                    let key = self.byte_string()?;
                    if let Some((prev, _)) = map.last_key_value()
                        && key <= *prev
                    {
                        return Err(BencodeError::UnsortedKeys(key_at));
                    }
                    let v = self.value(depth + 1)?;
                    map.insert(key, v);
                }
                self.pos += 1;
                Ok(Value::Dict(map))
            }
            byte => Err(BencodeError::UnexpectedByte {
                offset: start,
                byte,
            }),
        }
    }

    /// Parses `<digits>e` after the `i`; `start` is the offset of the `i`.
    fn int(&mut self, start: usize) -> Result<i64, BencodeError> {
        let rest = self.input.get(self.pos..).unwrap_or_default();
        let end = rest
            .iter()
            .position(|&b| b == b'e')
            .ok_or(BencodeError::UnexpectedEnd(self.input.len()))?;
        let text = rest.get(..end).unwrap_or_default();
        let (neg, digits) = match text.split_first() {
            Some((b'-', d)) => (true, d),
            _ => (false, text),
        };
        let canonical = !digits.is_empty()
            && digits.iter().all(u8::is_ascii_digit)
            && ((digits == b"0" && !neg) || digits.first() != Some(&b'0'));
        if !canonical {
            return Err(BencodeError::BadInteger(start));
        }
        // Accumulate negatively so that i64::MIN is representable.
        let mut acc: i64 = 0;
        for &d in digits {
            acc = acc
                .checked_mul(10)
                .and_then(|a| a.checked_sub(i64::from(d - b'0')))
                .ok_or(BencodeError::IntegerOverflow(start))?;
        }
        let v = if neg {
            acc
        } else {
            acc.checked_neg()
                .ok_or(BencodeError::IntegerOverflow(start))?
        };
        self.pos += end + 1;
        Ok(v)
    }

    fn byte_string(&mut self) -> Result<Vec<u8>, BencodeError> {
        let start = self.pos;
        let rest = self.input.get(self.pos..).unwrap_or_default();
        let colon = rest
            .iter()
            .position(|&b| b == b':')
            .ok_or(BencodeError::UnexpectedEnd(self.input.len()))?;
        let digits = rest.get(..colon).unwrap_or_default();
        if digits.is_empty()
            || !digits.iter().all(u8::is_ascii_digit)
            || (digits.len() > 1 && digits.first() == Some(&b'0'))
        {
            return Err(BencodeError::BadLength(start));
        }
        let mut len: usize = 0;
        for &d in digits {
            len = len
                .checked_mul(10)
                .and_then(|l| l.checked_add(usize::from(d - b'0')))
                .ok_or(BencodeError::BadLength(start))?;
        }
        let body_start = self.pos + colon + 1;
        let remaining = self.input.len() - body_start;
        if len > remaining {
            return Err(BencodeError::BadLength(start));
        }
        let body = self
            .input
            .get(body_start..body_start + len)
            .ok_or(BencodeError::BadLength(start))?;
        self.pos = body_start + len;
        Ok(body.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_budget_refuses_before_building() {
        let list = b"l1:a1:be";
        assert!(decode_at_most(list, 3).is_ok());
        assert_eq!(decode_at_most(list, 2), Err(BencodeError::TooManyValues(4)));
        // A megabyte of empty lists is refused at the budget's end.
        let mut junk = b"l".to_vec();
        junk.extend(b"le".repeat(500_000));
        junk.push(b'e');
        assert_eq!(
            decode_at_most(&junk, 3),
            Err(BencodeError::TooManyValues(5))
        );
        assert!(decode(&junk).is_ok(), "no budget: as before");
    }
    use proptest::prelude::*;

    fn d(input: &[u8]) -> Result<Value, BencodeError> {
        decode(input)
    }

    #[test]
    fn known_encodings() {
        assert_eq!(encode(&Value::Int(0)), b"i0e");
        assert_eq!(encode(&Value::Int(-42)), b"i-42e");
        assert_eq!(encode(&Value::bytes(b"spam".to_vec())), b"4:spam");
        assert_eq!(encode(&Value::bytes(Vec::new())), b"0:");
        let v = Value::dict([
            (b"b".to_vec(), Value::Int(1)),
            (
                b"a".to_vec(),
                Value::List(vec![Value::bytes(b"x".to_vec())]),
            ),
        ]);
        assert_eq!(encode(&v), b"d1:al1:xe1:bi1ee");
        assert_eq!(d(b"d1:al1:xe1:bi1ee"), Ok(v));
        assert_eq!(d(b"i9223372036854775807e"), Ok(Value::Int(i64::MAX)));
        assert_eq!(d(b"i-9223372036854775808e"), Ok(Value::Int(i64::MIN)));
    }

    #[test]
    fn accessors() {
        let v = d(b"d3:keyi7e4:listl0:ee").expect("valid");
        assert_eq!(v.get(b"key").and_then(Value::as_int), Some(7));
        assert_eq!(
            v.get(b"list").and_then(Value::as_list).map(<[Value]>::len),
            Some(1)
        );
        assert!(v.get(b"missing").is_none());
        assert!(v.as_bytes().is_none());
        assert!(Value::Int(1).get(b"key").is_none());
    }

    #[test]
    fn rejects_non_canonical_integers() {
        for bad in [
            &b"i-0e"[..],
            b"i01e",
            b"i-01e",
            b"ie",
            b"i-e",
            b"i+1e",
            b"i1.0e",
            b"i 1e",
        ] {
            assert_eq!(d(bad), Err(BencodeError::BadInteger(0)), "{bad:?}");
        }
        assert_eq!(
            d(b"i9223372036854775808e"),
            Err(BencodeError::IntegerOverflow(0))
        );
        assert_eq!(
            d(b"i-9223372036854775809e"),
            Err(BencodeError::IntegerOverflow(0))
        );
        assert_eq!(d(b"i12"), Err(BencodeError::UnexpectedEnd(3)));
    }

    #[test]
    fn rejects_bad_lengths() {
        assert_eq!(d(b"01:a"), Err(BencodeError::BadLength(0)));
        assert_eq!(d(b"5:abc"), Err(BencodeError::BadLength(0)));
        assert_eq!(
            d(b"99999999999999999999999999:a"),
            Err(BencodeError::BadLength(0))
        );
        assert_eq!(d(b"3abc"), Err(BencodeError::UnexpectedEnd(4)));
        assert_eq!(
            d(b"-1:a"),
            Err(BencodeError::UnexpectedByte {
                offset: 0,
                byte: b'-'
            })
        );
    }

    #[test]
    fn rejects_bad_dicts() {
        assert_eq!(d(b"d1:bi1e1:ai2ee"), Err(BencodeError::UnsortedKeys(7)));
        assert_eq!(d(b"d1:ai1e1:ai2ee"), Err(BencodeError::UnsortedKeys(7)));
        assert_eq!(d(b"di1ei2ee"), Err(BencodeError::KeyNotBytes(1)));
        assert_eq!(d(b"d1:a"), Err(BencodeError::UnexpectedEnd(4)));
        // Prefix ordering: "a" < "ab".
        assert!(d(b"d1:ai1e2:abi2ee").is_ok());
        assert_eq!(d(b"d2:abi1e1:ai2ee"), Err(BencodeError::UnsortedKeys(8)));
    }

    #[test]
    fn rejects_trailing_and_empty() {
        assert_eq!(d(b"i1ei2e"), Err(BencodeError::TrailingBytes(3)));
        assert_eq!(d(b""), Err(BencodeError::UnexpectedEnd(0)));
        assert_eq!(d(b"le"), Ok(Value::List(Vec::new())));
        assert_eq!(d(b"l"), Err(BencodeError::UnexpectedEnd(1)));
        assert_eq!(
            d(b"x"),
            Err(BencodeError::UnexpectedByte {
                offset: 0,
                byte: b'x'
            })
        );
    }

    #[test]
    fn depth_limit() {
        let ok = [vec![b'l'; MAX_DEPTH], vec![b'e'; MAX_DEPTH]].concat();
        assert!(d(&ok).is_ok());
        let deep = [vec![b'l'; MAX_DEPTH + 1], vec![b'e'; MAX_DEPTH + 1]].concat();
        assert_eq!(d(&deep), Err(BencodeError::TooDeep));
        let very_deep = vec![b'l'; 100_000];
        assert_eq!(d(&very_deep), Err(BencodeError::TooDeep));
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            any::<i64>().prop_map(Value::Int),
            proptest::collection::vec(any::<u8>(), 0..20).prop_map(Value::Bytes),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::List),
                proptest::collection::btree_map(
                    proptest::collection::vec(any::<u8>(), 0..6),
                    inner,
                    0..6
                )
                .prop_map(Value::Dict),
            ]
        })
    }

    proptest! {
        #[test]
        fn round_trip(v in arb_value()) {
            let enc = encode(&v);
            prop_assert_eq!(decode(&enc), Ok(v));
        }

        #[test]
        fn decode_never_panics_and_is_canonical(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            // Whatever decodes must re-encode to the identical bytes.
            if let Ok(v) = decode(&bytes) {
                prop_assert_eq!(encode(&v), bytes);
            }
        }

        #[test]
        fn decode_never_panics_on_bencode_like(bytes in proptest::collection::vec(
            prop_oneof![Just(b'i'), Just(b'l'), Just(b'd'), Just(b'e'), Just(b':'), Just(b'-'), Just(b'0'), Just(b'1'), Just(b'9')], 0..64)) {
            if let Ok(v) = decode(&bytes) {
                prop_assert_eq!(encode(&v), bytes);
            }
        }
    }
}
