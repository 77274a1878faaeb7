//! Umbra groups (`shared/spec/groups.md`): the pure protocol of private group
//! chats with rotating keys, stored in the group's own swarm.
//!
//! | module | owns | spec |
//! | --- | --- | --- |
//! | [`identity`] | group keypair and `03` ID, roles, member subaccount credentials | §1, §5 |
//! | [`keys`] | generation keys, key bundles (namespace 12), the key ring | §3 |
//! | [`state`] | the signed, encrypted state document (namespace 13) | §4 |
//! | [`message`] | group messages (namespace 11): layout, encryption, receiving rules | §6 |
//! | [`control`] | control messages, invite and removal-notice signatures | §7.2–7.3, §8 |
//! | [`ops`] | [`GroupState`]: a client's view of one group and the admin operations | §7 |
//! | [`housekeeping`] | admins keeping bundles/state alive and deleting superseded documents; the polling cadence | §3.4, §4.3, §9 |
//!
//! Nothing here performs I/O, reads a clock or draws randomness: times are
//! `now_ms` parameters and random bytes come from a caller-supplied
//! [`GroupRng`] (for example [`ExpandRng`] seeded with 32 bytes from the OS).
//! Operations return *what to store where* ([`Publication`]); the client
//! performs the stores, revocations and 1:1 sends.

use std::collections::BTreeMap;

use umbra_crypto::CryptoError;
use umbra_crypto::hash::{Blake2bParams, blake2b};
use zeroize::Zeroizing;

use crate::bencode::{BencodeError, Value};

pub mod control;
pub mod housekeeping;
pub mod identity;
pub mod keys;
pub mod message;
pub mod ops;
pub mod state;

pub use control::{
    ControlType, Notice, NoticeCheck, UmbraGroupControl, VerifiedInvite, VerifiedPromote,
};
pub use housekeeping::{
    DuePolls, Held, PollTimes, StoredItem, UpkeepConfig, UpkeepPlan, due_polls, plan_upkeep,
};
pub use identity::{GroupKeys, MemberAuth, MemberStatus, Role};
pub use keys::{BundleOutcome, GenerationKey, KeyBundle, KeyRing};
pub use message::{ReceivedGroupMessage, encrypt_group_message, open_group_message};
pub use ops::{GroupState, LeavePlan, OutgoingGroupMessage, Publication, StateOutcome};
pub use state::{Avatar, GroupInfo, Member, StateDocument};

/// Most members a group may have, admins included (§10).
pub const MAX_MEMBERS: usize = 100;
/// Longest group name in bytes (§10).
pub const MAX_NAME_LEN: usize = 100;
/// How long members keep a superseded generation key (§3.4, §10): 30 days.
pub const SUPERSEDED_KEY_KEEP_MS: u64 = 30 * 24 * 3600 * 1000;
/// Grace for messages under a superseded key (§6.3, §10): 24 hours.
pub const SUPERSEDED_GRACE_MS: u64 = 24 * 3600 * 1000;
/// Default TTL of group messages and removal notices (§2): 14 days.
pub const MESSAGE_TTL_MS: u64 = 14 * 24 * 3600 * 1000;
/// TTL of bundles and state documents (§2): 30 days.
pub const KEYS_TTL_MS: u64 = 30 * 24 * 3600 * 1000;
/// Admins extend the newest bundle/state below this remaining lifetime (§3.4).
pub const EXTEND_BELOW_MS: u64 = 15 * 24 * 3600 * 1000;

/// Why a group operation failed or a fetched group item was rejected.
///
/// Variants name the check that failed; none carries key material or
/// plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupError {
    /// A bencoded item is not canonical bencode.
    #[error("{what}: {source}")]
    Bencode {
        /// Which item.
        what: &'static str,
        /// The parser's complaint.
        source: BencodeError,
    },
    /// A field is missing, of the wrong type, length or range.
    #[error("malformed {what}")]
    Malformed {
        /// The field or item concerned.
        what: &'static str,
    },
    /// A signature does not verify under the key that must have made it.
    #[error("{what}: signature does not verify")]
    BadSignature {
        /// What was signed.
        what: &'static str,
    },
    /// An ID that must be a `03` group ID is not one.
    #[error("not a 03 group ID")]
    NotGroupId,
    /// An ID that must be a `05` account ID is not one.
    #[error("not a 05 account ID")]
    NotAccountId,
    /// An item belongs to another group.
    #[error("item belongs to another group")]
    WrongGroup,
    /// The roster would have more than 100 members (§10).
    #[error("a group has at most {MAX_MEMBERS} members, got {count}")]
    TooManyMembers {
        /// The member count requested.
        count: usize,
    },
    /// The roster is invalid: empty, unsorted, duplicated or without an admin.
    #[error("invalid roster: {0}")]
    BadRoster(&'static str),
    /// The group name is empty or longer than 100 bytes.
    #[error("a group name is 1 to {MAX_NAME_LEN} bytes, got {len}")]
    BadName {
        /// The name's length in bytes.
        len: usize,
    },
    /// The bundle does not have exactly 100 entries of 121 bytes.
    #[error("a key bundle has 100 entries of 121 bytes")]
    BadBundleEntries,
    /// No bundle entry opened for us: we are not a member of this generation.
    #[error("not a member of generation {generation}")]
    NotInGeneration {
        /// The bundle's generation.
        generation: u64,
    },
    /// We hold no key for this generation.
    #[error("no key held for generation {generation}")]
    UnknownGeneration {
        /// The generation.
        generation: u64,
    },
    /// No key we hold decrypts the item.
    #[error("{what}: no held key decrypts it")]
    DecryptFailed {
        /// What was being decrypted.
        what: &'static str,
    },
    /// A group message has no `0x80` padding marker.
    #[error("group message padding is malformed")]
    BadPadding,
    /// Content too large for one group message (§6.2).
    #[error("group message content is {len} bytes, at most {max}")]
    ContentTooLarge {
        /// The content length.
        len: usize,
        /// The maximum (76,663).
        max: usize,
    },
    /// The protobuf could not be parsed.
    #[error("{what}: invalid protobuf")]
    Protobuf {
        /// Which message.
        what: &'static str,
    },
    /// The sender is not in the roster of the message's generation (§6.3).
    #[error("sender is not in the roster of generation {generation}")]
    SenderNotInRoster {
        /// The generation.
        generation: u64,
    },
    /// We do not hold the roster of that generation yet (fetch namespace 13).
    #[error("roster of generation {generation} unknown")]
    RosterUnknown {
        /// The generation.
        generation: u64,
    },
    /// A message under a superseded generation arrived after the 24-hour grace.
    #[error("generation {generation} superseded more than 24 hours ago")]
    SupersededGeneration {
        /// The generation.
        generation: u64,
    },
    /// `Content.sigTimestamp` is absent (§6.2).
    #[error("Content.sigTimestamp is required in groups")]
    MissingSigTimestamp,
    /// The content is not allowed in groups (§6.4).
    #[error("content not allowed in groups: {0}")]
    ContentNotAllowed(&'static str),
    /// A control message is not acceptable (§8).
    #[error("control message rejected: {0}")]
    BadControl(&'static str),
    /// The operation needs the group seed.
    #[error("only an admin can do this")]
    NotAdmin,
    /// The account is already in the roster.
    #[error("{0} is already a member")]
    AlreadyMember(String),
    /// The account is not in the roster.
    #[error("{0} is not a member")]
    NotMember(String),
    /// The last admin must promote someone before leaving (§7.4).
    #[error("the last admin must promote another member before leaving")]
    LastAdmin,
    /// A seed does not yield the group's public key.
    #[error("group seed does not match the group ID")]
    SeedMismatch,
    /// No state document is known yet.
    #[error("no state document known for this group")]
    NoState,
    /// No usable generation key is known yet.
    #[error("no current generation key")]
    NoCurrentKey,
    /// A counter overflowed (generation or version).
    #[error("{0} overflow")]
    Overflow(&'static str),
    /// A primitive failed (a small-order key in a sealed box, for example).
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
}

/// A source of random bytes supplied by the caller (§3.2 salts, sealed-box
/// ephemerals, filler, entry order, nonces, subaccount seeds).
pub trait GroupRng {
    /// Fills `out` with random bytes.
    fn fill(&mut self, out: &mut [u8]);

    /// Returns `N` random bytes.
    fn array<const N: usize>(&mut self) -> [u8; N]
    where
        Self: Sized,
    {
        let mut out = [0u8; N];
        self.fill(&mut out);
        out
    }
}

impl<F: FnMut(&mut [u8])> GroupRng for F {
    fn fill(&mut self, out: &mut [u8]) {
        self(out)
    }
}

/// Expands one 32-byte seed into a stream of random bytes with keyed BLAKE2b
/// in counter mode. With a seed from the OS CSPRNG
/// (`umbra_crypto::random_bytes::<32>()`) it serves a whole operation; with a
/// fixed seed it makes tests deterministic.
pub struct ExpandRng {
    seed: Zeroizing<[u8; 32]>,
    counter: u64,
    buf: Zeroizing<[u8; 64]>,
    used: usize,
}

impl std::fmt::Debug for ExpandRng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExpandRng").finish_non_exhaustive()
    }
}

impl ExpandRng {
    /// A generator seeded with `seed`.
    pub fn new(seed: [u8; 32]) -> Self {
        Self {
            seed: Zeroizing::new(seed),
            counter: 0,
            buf: Zeroizing::new([0u8; 64]),
            used: 64,
        }
    }

    fn refill(&mut self) {
        let block = blake2b(
            &self.counter.to_le_bytes(),
            64,
            Blake2bParams {
                key: self.seed.as_slice(),
                ..Blake2bParams::default()
            },
        );
        // Output length 64 and a 32-byte key are always valid parameters.
        if let Ok(b) = block {
            self.buf.copy_from_slice(&b);
        }
        self.counter = self.counter.wrapping_add(1);
        self.used = 0;
    }
}

impl GroupRng for ExpandRng {
    fn fill(&mut self, out: &mut [u8]) {
        for byte in out.iter_mut() {
            if self.used == 64 {
                self.refill();
            }
            *byte = self.buf[self.used];
            self.used += 1;
        }
    }
}

/// `BLAKE2b-256(bytes)`, the tie-breaker of §3.5 and §4.3.
pub(crate) fn tie_digest(bytes: &[u8]) -> [u8; 32] {
    umbra_crypto::hash::blake2b_fixed::<32>(&[bytes])
}

/// Decodes canonical bencode and requires a dictionary.
pub(crate) fn decode_dict(
    bytes: &[u8],
    what: &'static str,
) -> Result<BTreeMap<Vec<u8>, Value>, GroupError> {
    match crate::bencode::decode(bytes).map_err(|source| GroupError::Bencode { what, source })? {
        Value::Dict(d) => Ok(d),
        _ => Err(GroupError::Malformed { what }),
    }
}

/// A non-negative integer field.
pub(crate) fn get_u64(
    d: &BTreeMap<Vec<u8>, Value>,
    key: &[u8],
    what: &'static str,
) -> Result<u64, GroupError> {
    d.get(key)
        .and_then(Value::as_int)
        .and_then(|i| u64::try_from(i).ok())
        .ok_or(GroupError::Malformed { what })
}

/// A byte-string field.
pub(crate) fn get_bytes<'a>(
    d: &'a BTreeMap<Vec<u8>, Value>,
    key: &[u8],
    what: &'static str,
) -> Result<&'a [u8], GroupError> {
    d.get(key)
        .and_then(Value::as_bytes)
        .ok_or(GroupError::Malformed { what })
}

/// A byte-string field of exactly `N` bytes.
pub(crate) fn get_array<const N: usize>(
    d: &BTreeMap<Vec<u8>, Value>,
    key: &[u8],
    what: &'static str,
) -> Result<[u8; N], GroupError> {
    get_bytes(d, key, what)?
        .try_into()
        .map_err(|_| GroupError::Malformed { what })
}

/// A `u64` as a bencode integer (values above `i64::MAX` are refused).
pub(crate) fn int(v: u64, what: &'static str) -> Result<Value, GroupError> {
    i64::try_from(v)
        .map(Value::Int)
        .map_err(|_| GroupError::Malformed { what })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expand_rng_is_deterministic_and_seed_dependent() {
        let mut a = ExpandRng::new([1; 32]);
        let mut b = ExpandRng::new([1; 32]);
        let mut c = ExpandRng::new([2; 32]);
        let (x, y, z): ([u8; 100], [u8; 100], [u8; 100]) = (a.array(), b.array(), c.array());
        assert_eq!(x, y);
        assert_ne!(x, z);
        // Consecutive draws differ (the counter advances).
        let w: [u8; 100] = a.array();
        assert_ne!(x, w);
    }

    #[test]
    fn closures_are_rngs() {
        let mut rng = |out: &mut [u8]| out.fill(7);
        assert_eq!(rng.array::<3>(), [7, 7, 7]);
    }
}
