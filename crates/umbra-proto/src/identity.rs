//! Account IDs and account keys (`shared/spec/identity.md` §1–2).
//!
//! An account is one Ed25519 keypair made from a 32-byte seed. Its X25519
//! key (Montgomery form of the Ed25519 public key) prefixed with `05` is the
//! account ID, written as 66 lowercase hex characters. Groups use `03` with
//! the group's Ed25519 key; `15`/`25` are community blinded IDs, recognised
//! but not used.

use std::fmt;
use std::str::FromStr;

use umbra_crypto::{Ed25519Keypair, Ed25519Public, X25519Public, X25519Secret};
use zeroize::Zeroizing;

/// The prefix byte of an account ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IdPrefix {
    /// `05`: a standard account; the key is its X25519 public key.
    Standard,
    /// `03`: a group; the key is the group's Ed25519 public key.
    Group,
    /// `15`: community blinded ID, legacy scheme (reference only).
    BlindedLegacy,
    /// `25`: community blinded ID, newer scheme (reference only).
    Blinded,
}

impl IdPrefix {
    /// The prefix byte.
    pub const fn byte(self) -> u8 {
        match self {
            IdPrefix::Standard => 0x05,
            IdPrefix::Group => 0x03,
            IdPrefix::BlindedLegacy => 0x15,
            IdPrefix::Blinded => 0x25,
        }
    }

    /// Parses a prefix byte.
    pub const fn from_byte(b: u8) -> Option<Self> {
        match b {
            0x05 => Some(IdPrefix::Standard),
            0x03 => Some(IdPrefix::Group),
            0x15 => Some(IdPrefix::BlindedLegacy),
            0x25 => Some(IdPrefix::Blinded),
            _ => None,
        }
    }
}

/// Why an account ID or seed was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// Not 66 hex characters (or 33 bytes).
    #[error("an account ID is 66 hex characters (33 bytes), got {0} characters")]
    BadLength(usize),
    /// Not hexadecimal.
    #[error("an account ID must be hexadecimal")]
    NotHex,
    /// The prefix byte is none of 05, 03, 15, 25.
    #[error("unknown account ID prefix {0:02x}")]
    UnknownPrefix(u8),
    /// A seed is neither 16 nor 32 bytes.
    #[error("a seed is 32 bytes (or 16 for Session phrases), got {0}")]
    BadSeedLength(usize),
}

/// An account ID: a prefix byte and 32 key bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId {
    prefix: IdPrefix,
    key: [u8; 32],
}

impl AccountId {
    /// Builds an ID from its parts.
    pub const fn new(prefix: IdPrefix, key: [u8; 32]) -> Self {
        Self { prefix, key }
    }

    /// The standard (`05`) ID of an X25519 public key.
    pub const fn standard(x25519: &X25519Public) -> Self {
        Self::new(IdPrefix::Standard, x25519.to_bytes())
    }

    /// The group (`03`) ID of a group's Ed25519 public key.
    pub const fn group(ed25519: &Ed25519Public) -> Self {
        Self::new(IdPrefix::Group, ed25519.to_bytes())
    }

    /// Parses the 33-byte binary form.
    pub fn from_bytes(b: &[u8]) -> Result<Self, IdError> {
        if b.len() != 33 {
            return Err(IdError::BadLength(b.len() * 2));
        }
        let prefix = IdPrefix::from_byte(b[0]).ok_or(IdError::UnknownPrefix(b[0]))?;
        let mut key = [0u8; 32];
        key.copy_from_slice(&b[1..]);
        Ok(Self { prefix, key })
    }

    /// The 33-byte binary form.
    pub fn to_bytes(&self) -> [u8; 33] {
        let mut out = [0u8; 33];
        out[0] = self.prefix.byte();
        out[1..].copy_from_slice(&self.key);
        out
    }

    /// The prefix.
    pub const fn prefix(&self) -> IdPrefix {
        self.prefix
    }

    /// The 32 key bytes after the prefix.
    pub const fn key(&self) -> &[u8; 32] {
        &self.key
    }

    /// The X25519 key of a standard account (`None` for other prefixes).
    pub fn x25519(&self) -> Option<X25519Public> {
        (self.prefix == IdPrefix::Standard).then(|| X25519Public::from_bytes(self.key))
    }

    /// A short form for logs and UIs (`05ab12…cdef`): never log full IDs.
    pub fn short(&self) -> String {
        let hex = self.to_string();
        format!("{}…{}", &hex[..6], &hex[62..])
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}{}", self.prefix.byte(), hex::encode(self.key))
    }
}

impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountId({})", self.short())
    }
}

impl FromStr for AccountId {
    type Err = IdError;

    /// Parses 66 hex characters, either case.
    fn from_str(s: &str) -> Result<Self, IdError> {
        if s.len() != 66 {
            return Err(IdError::BadLength(s.chars().count()));
        }
        let b = hex::decode(s).map_err(|_| IdError::NotHex)?;
        Self::from_bytes(&b)
    }
}

impl serde::Serialize for AccountId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for AccountId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The keys of one account, all derived from its 32-byte seed.
#[derive(Clone)]
pub struct AccountKeys {
    ed: Ed25519Keypair,
    x_secret: X25519Secret,
    x_public: X25519Public,
}

impl fmt::Debug for AccountKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountKeys")
            .field("account_id", &self.account_id())
            .finish_non_exhaustive()
    }
}

impl AccountKeys {
    /// Derives the keys of a 32-byte seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let ed = Ed25519Keypair::from_seed(seed);
        let x_secret = ed.x25519_secret();
        let x_public = ed.x25519_public();
        Self {
            ed,
            x_secret,
            x_public,
        }
    }

    /// Derives the keys of a 32-byte seed, or of a 16-byte Session seed
    /// (zero-padded to 32 bytes, identity §4).
    pub fn from_seed_slice(seed: &[u8]) -> Result<Self, IdError> {
        let mut full = Zeroizing::new([0u8; 32]);
        match seed.len() {
            32 | 16 => full[..seed.len()].copy_from_slice(seed),
            n => return Err(IdError::BadSeedLength(n)),
        }
        Ok(Self::from_seed(&full))
    }

    /// The 32-byte seed (the account secret).
    pub fn seed(&self) -> Zeroizing<[u8; 32]> {
        self.ed.seed()
    }

    /// The Ed25519 keypair (signs).
    pub fn ed25519(&self) -> &Ed25519Keypair {
        &self.ed
    }

    /// The Ed25519 public key.
    pub fn ed25519_public(&self) -> Ed25519Public {
        self.ed.public()
    }

    /// The X25519 secret (decrypts).
    pub fn x25519_secret(&self) -> &X25519Secret {
        &self.x_secret
    }

    /// The X25519 public key.
    pub fn x25519_public(&self) -> X25519Public {
        self.x_public
    }

    /// The account ID (`05` ‖ X25519 public key).
    pub fn account_id(&self) -> AccountId {
        AccountId::standard(&self.x_public)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn id_round_trips(key in any::<[u8; 32]>(), p in 0usize..4) {
            let prefix = [IdPrefix::Standard, IdPrefix::Group, IdPrefix::BlindedLegacy, IdPrefix::Blinded][p];
            let id = AccountId::new(prefix, key);
            let s = id.to_string();
            prop_assert_eq!(s.len(), 66);
            prop_assert_eq!(s.parse::<AccountId>().unwrap(), id);
            prop_assert_eq!(s.to_uppercase().parse::<AccountId>().unwrap(), id);
            prop_assert_eq!(AccountId::from_bytes(&id.to_bytes()).unwrap(), id);
        }

        #[test]
        fn parse_never_panics(s in ".{0,80}") {
            let _ = s.parse::<AccountId>();
        }
    }

    #[test]
    fn bad_ids() {
        assert_eq!("05ab".parse::<AccountId>(), Err(IdError::BadLength(4)));
        let bad_prefix = format!("07{}", "00".repeat(32));
        assert_eq!(
            bad_prefix.parse::<AccountId>(),
            Err(IdError::UnknownPrefix(7))
        );
        let not_hex = format!("05{}", "zz".repeat(32));
        assert_eq!(not_hex.parse::<AccountId>(), Err(IdError::NotHex));
    }

    #[test]
    fn session_seed_is_zero_padded() {
        let short = AccountKeys::from_seed_slice(&[1u8; 16]).unwrap();
        let mut full = [0u8; 32];
        full[..16].copy_from_slice(&[1u8; 16]);
        assert_eq!(
            short.account_id(),
            AccountKeys::from_seed(&full).account_id()
        );
        assert!(AccountKeys::from_seed_slice(&[0u8; 20]).is_err());
    }
}
