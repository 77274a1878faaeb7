//! Storage message hashes (`storage-rpc.md` §7):
//! `base64_unpadded(BLAKE2b-256(prefix_byte ‖ key32 ‖ NS ‖ data))`, always
//! 43 characters of the standard alphabet.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use umbra_crypto::hash::blake2b_fixed;

use super::namespace::Namespace;
use crate::identity::AccountId;

/// Length of a message hash in characters.
pub const MESSAGE_HASH_LEN: usize = 43;

/// A message hash: 43 characters of unpadded standard base64 encoding 32
/// bytes. Ordering is the ASCII order of the text, which is the order of
/// the sorted hash lists in responses and node signatures (§8.3).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageHash(String);

/// Why a message hash was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HashError {
    /// Not 43 characters.
    #[error("a message hash is 43 characters, got {0}")]
    BadLength(usize),
    /// Not canonical unpadded standard base64.
    #[error("a message hash must be unpadded standard base64")]
    NotBase64,
}

impl MessageHash {
    /// Parses and checks a hash string.
    pub fn parse(text: &str) -> Result<Self, HashError> {
        if text.len() != MESSAGE_HASH_LEN {
            return Err(HashError::BadLength(text.chars().count()));
        }
        let bytes = STANDARD_NO_PAD
            .decode(text)
            .map_err(|_| HashError::NotBase64)?;
        if bytes.len() != 32 {
            return Err(HashError::NotBase64);
        }
        Ok(MessageHash(text.to_string()))
    }

    /// The hash of 32 digest bytes.
    pub fn from_digest(digest: &[u8; 32]) -> Self {
        MessageHash(STANDARD_NO_PAD.encode(digest))
    }

    /// The 43-character text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 32 digest bytes.
    pub fn digest(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        // The invariant (checked on construction) makes this decode succeed.
        if let Ok(b) = STANDARD_NO_PAD.decode(&self.0)
            && b.len() == 32
        {
            out.copy_from_slice(&b);
        }
        out
    }
}

/// Computes the hash of `data` stored for `account` in `namespace` (§7).
pub fn message_hash(account: &AccountId, namespace: Namespace, data: &[u8]) -> MessageHash {
    let prefix = [account.prefix().byte()];
    let ns = namespace.signed_text();
    let digest = blake2b_fixed::<32>(&[&prefix, account.key(), ns.as_bytes(), data]);
    MessageHash::from_digest(&digest)
}

impl AsRef<str> for MessageHash {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MessageHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for MessageHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageHash({})", self.0)
    }
}

impl std::str::FromStr for MessageHash {
    type Err = HashError;
    fn from_str(s: &str) -> Result<Self, HashError> {
        MessageHash::parse(s)
    }
}

impl Serialize for MessageHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for MessageHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        MessageHash::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::IdPrefix;
    use proptest::prelude::*;

    #[test]
    fn hash_follows_the_rule() {
        // rpc.json message_hash/storage-server-fixture is checked by the vector
        // runner; this is an independent small case computed from the rule.
        let acc = AccountId::new(IdPrefix::Standard, [0x11; 32]);
        let h0 = message_hash(&acc, Namespace(0), b"hello");
        let h1 = message_hash(&acc, Namespace(1), b"hello");
        let hm = message_hash(&acc, Namespace(-1), b"hello");
        assert_ne!(h0, h1);
        assert_ne!(h1, hm);
        let mut manual = vec![0x05];
        manual.extend_from_slice(&[0x11; 32]);
        manual.extend_from_slice(b"-1hello");
        let d = blake2b_fixed::<32>(&[&manual]);
        assert_eq!(hm, MessageHash::from_digest(&d));
        assert_eq!(hm.digest(), d);
    }

    #[test]
    fn parse_refuses_bad_text() {
        assert_eq!(MessageHash::parse("hash4321"), Err(HashError::BadLength(8)));
        let good = MessageHash::from_digest(&[0xff; 32]);
        assert_eq!(good.as_str().len(), 43);
        assert_eq!(MessageHash::parse(good.as_str()).unwrap(), good);
        let padded = format!("{}=", good.as_str());
        assert!(MessageHash::parse(&padded).is_err());
        let mut url = good.as_str().replace('/', "_");
        assert_eq!(MessageHash::parse(&url), Err(HashError::NotBase64));
        // Non-zero trailing bits in the last character.
        url = format!("{}B", &MessageHash::from_digest(&[0; 32]).as_str()[..42]);
        assert_eq!(MessageHash::parse(&url), Err(HashError::NotBase64));
    }

    proptest! {
        #[test]
        fn hash_text_round_trips(d in any::<[u8; 32]>()) {
            let h = MessageHash::from_digest(&d);
            prop_assert_eq!(h.as_str().len(), 43);
            prop_assert_eq!(h.digest(), d);
            let json = serde_json::to_string(&h).unwrap();
            prop_assert_eq!(serde_json::from_str::<MessageHash>(&json).unwrap(), h);
        }

        #[test]
        fn parse_never_panics(s in ".{0,60}") {
            let _ = MessageHash::parse(&s);
        }
    }
}
