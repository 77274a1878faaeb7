//! Swarms: the account → swarm mapping, the node → swarm assignment and the
//! signed node registry (`shared/spec/swarms.md` §1–4).
//!
//! | submodule | owns | spec |
//! | --- | --- | --- |
//! | [`space`] | account positions, the swarm that owns a position, ownership intervals | §1–2 |
//! | [`assign`] | assignment constants, MT19937-64 and its portable draw, `new_swarm_id`, the oxend assignment algorithm | §4 |
//! | [`registry`] | the signed registry document: node records, encoding, validity rules, signatures, epoch chaining | §3 |
//!
//! This module defines the shared [`SwarmId`] type and [`SwarmError`].
//! Everything here is pure: no clock, no randomness, no I/O.

use std::fmt;
use std::str::FromStr;

pub mod assign;
pub mod registry;
pub mod space;

pub use assign::{SwarmParams, SwarmRng, assign_swarms, new_swarm_id, seed_from_epoch_hash};
pub use registry::{
    NodeRecord, ReaderRole, RegistryBuilder, RegistryConfig, RegistryDocument, RegistryError,
    RegistrySignature,
};
pub use space::{SwarmRange, SwarmRing, account_position, swarm_space, swarm_space_of_id_bytes};

/// The reserved swarm-space value `2^64 − 1` (`UNASSIGNED`, §1 and §4.1). It
/// is never a swarm ID, but it is a valid account position.
pub const UNASSIGNED: u64 = u64::MAX;

/// The largest value a swarm ID can take, `2^64 − 2` (`MAX_ID`, §4.1).
pub const MAX_ID: u64 = u64::MAX - 1;

/// A swarm ID: any u64 except [`UNASSIGNED`].
///
/// Shown (and parsed, and serialised) as 16 lowercase hex digits, the form of
/// the storage RPC's `swarm` field; [`SwarmId::get`] gives the number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SwarmId(u64);

impl SwarmId {
    /// Swarm 0, the first swarm of every network (§4.4 bootstrap).
    pub const ZERO: SwarmId = SwarmId(0);
    /// The largest swarm ID, [`MAX_ID`].
    pub const MAX: SwarmId = SwarmId(MAX_ID);

    /// Wraps a value, refusing [`UNASSIGNED`].
    pub const fn new(value: u64) -> Result<Self, SwarmError> {
        if value == UNASSIGNED {
            Err(SwarmError::Unassigned)
        } else {
            Ok(SwarmId(value))
        }
    }

    /// The numeric value.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The 8-byte big-endian form used in the registry's `a` list (§3.1).
    pub const fn to_be_bytes(self) -> [u8; 8] {
        self.0.to_be_bytes()
    }

    /// Parses the 8-byte big-endian form, refusing [`UNASSIGNED`].
    pub fn from_be_slice(bytes: &[u8]) -> Result<Self, SwarmError> {
        let arr: [u8; 8] = bytes
            .try_into()
            .map_err(|_| SwarmError::BadLength(bytes.len()))?;
        Self::new(u64::from_be_bytes(arr))
    }

    /// The storage RPC's `swarm` string for an optional swarm: 16 lowercase hex
    /// digits, `ffffffffffffffff` (UNASSIGNED) when there is none.
    pub fn rpc_hex(swarm: Option<SwarmId>) -> String {
        format!("{:016x}", swarm.map_or(UNASSIGNED, SwarmId::get))
    }
}

impl TryFrom<u64> for SwarmId {
    type Error = SwarmError;
    fn try_from(value: u64) -> Result<Self, SwarmError> {
        Self::new(value)
    }
}

impl From<SwarmId> for u64 {
    fn from(id: SwarmId) -> u64 {
        id.0
    }
}

impl fmt::Display for SwarmId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for SwarmId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SwarmId({:016x})", self.0)
    }
}

impl FromStr for SwarmId {
    type Err = SwarmError;
    /// Parses exactly 16 hex digits (either case).
    fn from_str(s: &str) -> Result<Self, SwarmError> {
        if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SwarmError::BadHex);
        }
        let v = u64::from_str_radix(s, 16).map_err(|_| SwarmError::BadHex)?;
        Self::new(v)
    }
}

impl serde::Serialize for SwarmId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for SwarmId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Why a swarm computation refused its input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SwarmError {
    /// `0xffffffffffffffff` was given where a swarm ID is needed.
    #[error("0xffffffffffffffff (UNASSIGNED) is never a swarm ID")]
    Unassigned,
    /// A swarm ID in binary form was not 8 bytes.
    #[error("a swarm ID is 8 bytes, got {0}")]
    BadLength(usize),
    /// A swarm ID string was not 16 hex digits.
    #[error("a swarm ID is written as 16 hex digits")]
    BadHex,
    /// An empty list of swarms was given where at least one is needed.
    #[error("there are no swarms")]
    NoSwarms,
    /// A list of swarm IDs that must be strictly ascending is not.
    #[error("swarm IDs must be strictly ascending (index {0})")]
    NotAscending(usize),
    /// The swarm asked about is not in the list.
    #[error("swarm {0} is not in the list")]
    UnknownSwarm(SwarmId),
    /// An account key was not 32 bytes (33 with its prefix).
    #[error("an account key is 33 bytes with its prefix, got {0}")]
    BadKeyLength(usize),
    /// The assignment constants break the rules of §4.1.
    #[error("invalid swarm constants: {0}")]
    BadParams(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unassigned_is_refused() {
        assert_eq!(SwarmId::new(u64::MAX), Err(SwarmError::Unassigned));
        assert_eq!(SwarmId::try_from(u64::MAX - 1), Ok(SwarmId::MAX));
        assert_eq!(
            SwarmId::from_be_slice(&[0xff; 8]),
            Err(SwarmError::Unassigned)
        );
        assert_eq!(
            SwarmId::from_be_slice(&[0xff; 7]),
            Err(SwarmError::BadLength(7))
        );
    }

    #[test]
    fn hex_forms() {
        let id = SwarmId::new(0x0123_4567_89ab_cdef).unwrap();
        assert_eq!(id.to_string(), "0123456789abcdef");
        assert_eq!("0123456789ABCDEF".parse::<SwarmId>(), Ok(id));
        assert_eq!(
            "123456789abcdef".parse::<SwarmId>(),
            Err(SwarmError::BadHex)
        );
        assert_eq!(
            "+123456789abcdef".parse::<SwarmId>(),
            Err(SwarmError::BadHex)
        );
        assert_eq!(
            "ffffffffffffffff".parse::<SwarmId>(),
            Err(SwarmError::Unassigned)
        );
        assert_eq!(SwarmId::rpc_hex(None), "ffffffffffffffff");
        assert_eq!(SwarmId::rpc_hex(Some(SwarmId::ZERO)), "0000000000000000");
        assert_eq!(SwarmId::from_be_slice(&id.to_be_bytes()), Ok(id));
    }

    #[test]
    fn serde_round_trip() {
        let id = SwarmId::new(42).unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"000000000000002a\"");
        assert_eq!(serde_json::from_str::<SwarmId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<SwarmId>("\"ffffffffffffffff\"").is_err());
        assert!(serde_json::from_str::<SwarmId>("42").is_err());
    }
}
