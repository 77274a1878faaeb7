//! JSON encodings of storage RPC values (`storage-rpc.md` §3): strict serde
//! helpers for millisecond timestamps, base64 signatures and data, hex
//! Ed25519/X25519 keys.
//!
//! Every decoder here refuses what §3 does not allow: integers given as
//! strings, timestamps in seconds, non-canonical base64, wrong lengths.
//! Encoders always write the canonical form (lowercase hex, padded base64).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use umbra_crypto::{Ed25519Public, X25519Public};

use super::limits::{MAX_DATA_BASE64_LEN, MAX_DATA_BYTES, MIN_TIMESTAMP_MS};

/// The text of the `400` for a timestamp below [`MIN_TIMESTAMP_MS`].
pub const NOT_MILLISECONDS: &str = "timestamp must be in milliseconds";

/// Encodes bytes as standard padded base64.
pub fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes standard padded base64, refusing non-canonical padding or
/// trailing bits.
pub fn unb64(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    STANDARD.decode(text)
}

/// Deserialises `Option<T>` so that an explicit JSON `null` is a type error
/// (use with `#[serde(default)]`: an absent key is `None`).
pub(crate) fn non_null<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// A timestamp in milliseconds: a JSON integer ≥ [`MIN_TIMESTAMP_MS`].
pub(crate) fn timestamp<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = u64::deserialize(d)?;
    if v < MIN_TIMESTAMP_MS {
        return Err(serde::de::Error::custom(NOT_MILLISECONDS));
    }
    Ok(v)
}

/// [`timestamp`] for an optional key (absent = `None`, `null` refused).
pub(crate) fn opt_timestamp<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    timestamp(d).map(Some)
}

/// An Ed25519 signature: 64 bytes, standard base64 with (88 characters) or
/// without (86) padding. Serialises padded.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; 64]);

impl Signature {
    /// Parses 88 padded or 86 unpadded base64 characters.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        let bytes = match text.len() {
            88 => STANDARD.decode(text),
            86 => STANDARD_NO_PAD.decode(text),
            _ => return Err("a signature is 88 base64 characters (or 86 unpadded)"),
        }
        .map_err(|_| "signature is not valid base64")?;
        let arr: [u8; 64] = bytes.try_into().map_err(|_| "a signature is 64 bytes")?;
        Ok(Signature(arr))
    }

    /// The padded base64 form.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", self.to_base64())
    }
}

impl From<[u8; 64]> for Signature {
    fn from(b: [u8; 64]) -> Self {
        Signature(b)
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_base64())
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Signature::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Base64 bytes of any size (standard alphabet, padded), e.g. a registry
/// document or a `proxy_fetch` body.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Base64Bytes(pub Vec<u8>);

impl fmt::Debug for Base64Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Base64Bytes({} bytes)", self.0.len())
    }
}

impl Serialize for Base64Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&b64(&self.0))
    }
}

impl<'de> Deserialize<'de> for Base64Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        unb64(&s)
            .map(Base64Bytes)
            .map_err(|_| serde::de::Error::custom("not valid padded base64"))
    }
}

/// The `data` of a stored message: padded base64 of at most
/// [`MAX_DATA_BYTES`] decoded bytes (larger → `400`).
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct MessageData(pub Vec<u8>);

impl fmt::Debug for MessageData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageData({} bytes)", self.0.len())
    }
}

impl MessageData {
    /// Decodes the base64 text, refusing oversize input before decoding.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.len() > MAX_DATA_BASE64_LEN {
            return Err(format!("data is over {MAX_DATA_BYTES} bytes"));
        }
        let bytes = unb64(text).map_err(|_| "data is not valid padded base64".to_string())?;
        if bytes.len() > MAX_DATA_BYTES {
            return Err(format!("data is over {MAX_DATA_BYTES} bytes"));
        }
        Ok(MessageData(bytes))
    }
}

impl Serialize for MessageData {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&b64(&self.0))
    }
}

impl<'de> Deserialize<'de> for MessageData {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        MessageData::parse(&s).map_err(serde::de::Error::custom)
    }
}

fn parse_key32(text: &str, what: &str) -> Result<[u8; 32], String> {
    if text.len() != 64 {
        return Err(format!("{what} is 64 hex characters, got {}", text.len()));
    }
    let bytes = hex::decode(text).map_err(|_| format!("{what} is not hex"))?;
    bytes.try_into().map_err(|_| format!("{what} is 32 bytes"))
}

/// An Ed25519 public key as 64 hex characters (input either case, output
/// lowercase): `pubkey_ed25519`, node keys in `get_swarm` and `swarm` maps.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ed25519Hex(pub Ed25519Public);

impl fmt::Display for Ed25519Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0.as_bytes()))
    }
}

impl fmt::Debug for Ed25519Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ed25519Hex({self})")
    }
}

impl std::str::FromStr for Ed25519Hex {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_key32(s, "an Ed25519 key").map(|b| Ed25519Hex(Ed25519Public::from_bytes(b)))
    }
}

impl Serialize for Ed25519Hex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ed25519Hex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An X25519 public key as 64 hex characters (`get_swarm`'s `pubkey_x25519`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct X25519Hex(pub X25519Public);

impl fmt::Display for X25519Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0.as_bytes()))
    }
}

impl fmt::Debug for X25519Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "X25519Hex({self})")
    }
}

impl std::str::FromStr for X25519Hex {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_key32(s, "an X25519 key").map(|b| X25519Hex(X25519Public::from_bytes(b)))
    }
}

impl Serialize for X25519Hex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for X25519Hex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn signature_lengths() {
        let sig = Signature([7u8; 64]);
        let padded = sig.to_base64();
        assert_eq!(padded.len(), 88);
        assert!(padded.ends_with("=="));
        assert_eq!(Signature::parse(&padded).unwrap(), sig);
        assert_eq!(Signature::parse(&padded[..86]).unwrap(), sig);
        assert!(Signature::parse(&padded[..87]).is_err());
        assert!(Signature::parse(&"A".repeat(88)).is_err());
        // 86 characters whose last one has non-zero trailing bits.
        let mut bad = padded[..86].to_string();
        bad.pop();
        bad.push('/');
        assert!(Signature::parse(&bad).is_err());
    }

    #[test]
    fn message_data_limit() {
        let ok = b64(&vec![1u8; MAX_DATA_BYTES]);
        assert_eq!(ok.len(), MAX_DATA_BASE64_LEN);
        assert_eq!(MessageData::parse(&ok).unwrap().0.len(), MAX_DATA_BYTES);
        let over = b64(&vec![1u8; MAX_DATA_BYTES + 1]);
        assert!(MessageData::parse(&over).unwrap_err().contains("76800"));
        assert!(
            MessageData::parse("AAA").is_err(),
            "unpadded data is refused"
        );
        assert!(MessageData::parse("AA==").is_ok());
        assert!(
            MessageData::parse("AB==").is_err(),
            "non-zero trailing bits"
        );
    }

    #[test]
    fn key_hex_accepts_either_case_writes_lowercase() {
        let upper = "AB".repeat(32);
        let k: Ed25519Hex = upper.parse().unwrap();
        assert_eq!(k.to_string(), "ab".repeat(32));
        assert!("ab".repeat(31).parse::<Ed25519Hex>().is_err());
        assert!("zz".repeat(32).parse::<X25519Hex>().is_err());
    }

    #[test]
    fn timestamps_are_strict() {
        #[derive(Deserialize, Debug)]
        struct T {
            #[serde(deserialize_with = "timestamp")]
            t: u64,
        }
        assert_eq!(
            serde_json::from_str::<T>(r#"{"t":1700000000000}"#)
                .unwrap()
                .t,
            1_700_000_000_000
        );
        assert_eq!(
            serde_json::from_str::<T>(r#"{"t":1000000000}"#).unwrap().t,
            1_000_000_000
        );
        let e = serde_json::from_str::<T>(r#"{"t":999999999}"#).unwrap_err();
        assert!(e.to_string().contains(NOT_MILLISECONDS));
        assert!(serde_json::from_str::<T>(r#"{"t":"1700000000000"}"#).is_err());
        assert!(serde_json::from_str::<T>(r#"{"t":1.7e12}"#).is_err());
        assert!(serde_json::from_str::<T>(r#"{"t":-1}"#).is_err());
    }

    proptest! {
        #[test]
        fn signature_round_trips(b in proptest::collection::vec(any::<u8>(), 64)) {
            let arr: [u8; 64] = b.try_into().unwrap();
            let json = serde_json::to_string(&Signature(arr)).unwrap();
            prop_assert_eq!(serde_json::from_str::<Signature>(&json).unwrap(), Signature(arr));
        }

        #[test]
        fn data_round_trips(b in proptest::collection::vec(any::<u8>(), 0..512)) {
            let json = serde_json::to_string(&MessageData(b.clone())).unwrap();
            prop_assert_eq!(serde_json::from_str::<MessageData>(&json).unwrap().0, b);
        }

        #[test]
        fn parsers_never_panic(s in ".{0,100}") {
            let _ = Signature::parse(&s);
            let _ = MessageData::parse(&s);
            let _ = s.parse::<Ed25519Hex>();
        }
    }
}
