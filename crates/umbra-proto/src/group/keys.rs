//! Generation keys and key bundles (`groups.md` §3): `K_G` derivation,
//! building, parsing and opening the namespace-12 bundle (100 sealed entries
//! of 121 bytes, signed by the group key), and the [`KeyRing`] that keeps
//! keys per §3.4 and picks the current generation per §3.5.

use std::collections::BTreeMap;
use std::fmt;

use umbra_crypto::X25519Secret;
use umbra_crypto::hash::{Blake2bParams, blake2b};
use umbra_crypto::sealed::{SEAL_OVERHEAD, seal, unseal};
use zeroize::Zeroizing;

use super::identity::{GroupKeys, group_public};
use super::{
    GroupError, GroupRng, SUPERSEDED_KEY_KEEP_MS, decode_dict, get_array, get_u64, int, tie_digest,
};
use crate::bencode::{Value, encode};
use crate::identity::{AccountId, IdPrefix};

/// BLAKE2b personalisation of `K_G` (§3.1).
pub const KEYGEN_PERSONAL: &[u8; 16] = b"UmbraGroupKeyGen";
/// Signature domain of bundles (§3.2).
pub const BUNDLE_DOMAIN: &[u8] = b"UmbraGroupKeys";
/// Entries per bundle (§3.2).
pub const BUNDLE_ENTRIES: usize = 100;
/// Plaintext of one entry: `group_id (33) ‖ u64_le(G) ‖ K_G (32)`.
pub const WRAPPED_LEN: usize = 33 + 8 + 32;
/// One sealed entry: 73 + 48 = 121 bytes.
pub const ENTRY_LEN: usize = WRAPPED_LEN + SEAL_OVERHEAD;

/// A 32-byte generation key `K_G` (zeroized on drop, never printed).
#[derive(Clone, PartialEq, Eq)]
pub struct GenerationKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for GenerationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GenerationKey(<redacted>)")
    }
}

impl GenerationKey {
    /// Wraps 32 key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// `K_G = BLAKE2b(out 32, key = group_seed, personal = "UmbraGroupKeyGen")(u64_le(G) ‖ salt)` (§3.1).
pub fn generation_key(group_seed: &[u8; 32], generation: u64, salt: &[u8; 16]) -> GenerationKey {
    let mut input = [0u8; 24];
    input[..8].copy_from_slice(&generation.to_le_bytes());
    input[8..].copy_from_slice(salt);
    let mut out = Zeroizing::new([0u8; 32]);
    // 32-byte output, 32-byte key and a 16-byte personal are valid parameters.
    if let Ok(h) = blake2b(
        &input,
        32,
        Blake2bParams {
            key: group_seed,
            salt: b"",
            personal: KEYGEN_PERSONAL,
        },
    ) {
        let h = Zeroizing::new(h);
        out.copy_from_slice(&h);
    }
    GenerationKey(out)
}

/// A verified key bundle (namespace 12, §3.2). Holds the exact bytes
/// fetched, so the tie-break digest covers what was stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyBundle {
    generation: u64,
    salt: [u8; 16],
    created_at: u64,
    entries: Vec<[u8; ENTRY_LEN]>,
    raw: Vec<u8>,
}

fn wrapped_plaintext(
    group_id: &AccountId,
    generation: u64,
    key: &GenerationKey,
) -> Zeroizing<Vec<u8>> {
    let mut p = Zeroizing::new(Vec::with_capacity(WRAPPED_LEN));
    p.extend_from_slice(&group_id.to_bytes());
    p.extend_from_slice(&generation.to_le_bytes());
    p.extend_from_slice(key.as_bytes());
    p
}

/// A uniform index below `n` (n ≤ 100; the bias of 64-bit modulo is < 2⁻⁵⁷).
fn index_below<R: GroupRng>(rng: &mut R, n: usize) -> usize {
    let r = u64::from_le_bytes(rng.array::<8>());
    // n fits in u64 and the result is below n, which fits in usize.
    usize::try_from(r % n as u64).unwrap_or(0)
}

impl KeyBundle {
    /// Builds and signs the bundle of generation `generation` (≥ 1) for
    /// `members` (`05` IDs, at most 100). Draws the salt, one ephemeral
    /// secret per member, the filler entries and the entry order from `rng`.
    /// Returns the bundle and `K_G`.
    pub fn build<R: GroupRng>(
        group: &GroupKeys,
        generation: u64,
        created_at: u64,
        members: &[AccountId],
        rng: &mut R,
    ) -> Result<(KeyBundle, GenerationKey), GroupError> {
        if generation == 0 {
            return Err(GroupError::Malformed { what: "generation" });
        }
        if members.len() > BUNDLE_ENTRIES {
            return Err(GroupError::TooManyMembers {
                count: members.len(),
            });
        }
        let salt: [u8; 16] = rng.array();
        let key = generation_key(&group.seed(), generation, &salt);
        let group_id = group.id();
        let payload = wrapped_plaintext(&group_id, generation, &key);
        let mut entries = Vec::with_capacity(BUNDLE_ENTRIES);
        for m in members {
            let x = m.x25519().ok_or(GroupError::NotAccountId)?;
            let eph = Zeroizing::new(rng.array::<32>());
            let sealed = seal(&payload, &x, *eph)?;
            let entry: [u8; ENTRY_LEN] = sealed.try_into().map_err(|_| GroupError::Malformed {
                what: "bundle entry",
            })?;
            entries.push(entry);
        }
        while entries.len() < BUNDLE_ENTRIES {
            entries.push(rng.array::<ENTRY_LEN>());
        }
        // Fisher–Yates: members' entries end up at random positions.
        for i in (1..entries.len()).rev() {
            let j = index_below(rng, i + 1);
            entries.swap(i, j);
        }
        let mut dict = BTreeMap::new();
        dict.insert(b"G".to_vec(), int(generation, "generation")?);
        dict.insert(b"n".to_vec(), Value::bytes(salt.to_vec()));
        dict.insert(b"t".to_vec(), int(created_at, "bundle time")?);
        dict.insert(
            b"w".to_vec(),
            Value::List(entries.iter().map(|e| Value::bytes(e.to_vec())).collect()),
        );
        let unsigned = encode(&Value::Dict(dict.clone()));
        let mut msg = Vec::with_capacity(BUNDLE_DOMAIN.len() + unsigned.len());
        msg.extend_from_slice(BUNDLE_DOMAIN);
        msg.extend_from_slice(&unsigned);
        let sig = group.keypair().sign(&msg);
        dict.insert(b"~".to_vec(), Value::bytes(sig.to_vec()));
        let raw = encode(&Value::Dict(dict));
        Ok((
            KeyBundle {
                generation,
                salt,
                created_at,
                entries,
                raw,
            },
            key,
        ))
    }

    /// Parses a fetched bundle and checks it (§3.3 step 1): canonical
    /// bencode, exactly 100 entries of 121 bytes, and `"~"` by the group key
    /// of `group_id`. Anything else is rejected (anyone with write access can
    /// store in namespace 12).
    pub fn parse(bytes: &[u8], group_id: &AccountId) -> Result<KeyBundle, GroupError> {
        let gpk = group_public(group_id)?;
        let mut dict = decode_dict(bytes, "key bundle")?;
        let sig: [u8; 64] = get_array(&dict, b"~", "bundle signature")?;
        dict.remove(b"~".as_slice());
        let unsigned = encode(&Value::Dict(dict.clone()));
        let mut msg = Vec::with_capacity(BUNDLE_DOMAIN.len() + unsigned.len());
        msg.extend_from_slice(BUNDLE_DOMAIN);
        msg.extend_from_slice(&unsigned);
        gpk.verify(&msg, &sig)
            .map_err(|_| GroupError::BadSignature { what: "key bundle" })?;
        let generation = get_u64(&dict, b"G", "bundle generation")?;
        if generation == 0 {
            return Err(GroupError::Malformed {
                what: "bundle generation",
            });
        }
        let salt: [u8; 16] = get_array(&dict, b"n", "bundle salt")?;
        let created_at = get_u64(&dict, b"t", "bundle time")?;
        let list =
            dict.get(b"w".as_slice())
                .and_then(Value::as_list)
                .ok_or(GroupError::Malformed {
                    what: "bundle entries",
                })?;
        if list.len() != BUNDLE_ENTRIES {
            return Err(GroupError::BadBundleEntries);
        }
        let entries = list
            .iter()
            .map(|v| {
                v.as_bytes()
                    .and_then(|b| <[u8; ENTRY_LEN]>::try_from(b).ok())
                    .ok_or(GroupError::BadBundleEntries)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(KeyBundle {
            generation,
            salt,
            created_at,
            entries,
            raw: bytes.to_vec(),
        })
    }

    /// Opens our entry with our X25519 secret (§3.3 step 2): the entry that
    /// opens and names this group and generation yields `K_G`.
    pub fn open(
        &self,
        group_id: &AccountId,
        me: &X25519Secret,
    ) -> Result<GenerationKey, GroupError> {
        let gid = group_id.to_bytes();
        for entry in &self.entries {
            let Ok(plain) = unseal(entry, me) else {
                continue;
            };
            let plain = Zeroizing::new(plain);
            if plain.len() != WRAPPED_LEN || plain[..33] != gid {
                continue;
            }
            if plain[33..41] != self.generation.to_le_bytes() {
                continue;
            }
            let mut k = [0u8; 32];
            k.copy_from_slice(&plain[41..]);
            return Ok(GenerationKey::from_bytes(k));
        }
        Err(GroupError::NotInGeneration {
            generation: self.generation,
        })
    }

    /// An admin's way to `K_G` (§3.3 step 3): derive it from `group_seed`.
    /// The count and signature were checked by [`KeyBundle::parse`].
    pub fn derive(&self, group: &GroupKeys) -> GenerationKey {
        generation_key(&group.seed(), self.generation, &self.salt)
    }

    /// `G`.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The salt `n`.
    pub fn salt(&self) -> [u8; 16] {
        self.salt
    }

    /// `created_at` (unix ms).
    pub fn created_at(&self) -> u64 {
        self.created_at
    }

    /// The bencoded bytes to store in namespace 12.
    pub fn to_bytes(&self) -> &[u8] {
        &self.raw
    }

    /// `BLAKE2b-256` of the stored bytes, the tie-breaker of §3.5.
    pub fn digest(&self) -> [u8; 32] {
        tie_digest(&self.raw)
    }
}

/// What [`KeyRing::insert`] did with a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BundleOutcome {
    /// The key is now the current one for sending (a higher generation, or
    /// a same-generation bundle that wins the tie).
    NewCurrent,
    /// Kept for reading only: an older generation we did not hold, or the
    /// loser of a same-generation tie.
    KeptForReading,
    /// Already held (a re-stored or replayed bundle): nothing changed.
    AlreadyKnown,
}

struct Slot {
    /// Keys of this generation, ordered by bundle digest (smallest first).
    keys: BTreeMap<[u8; 32], GenerationKey>,
    /// When this client learned of the generation (unix ms).
    learned_at: u64,
}

/// The generation keys a client holds for one group (§3.4, §3.5).
#[derive(Default)]
pub struct KeyRing {
    slots: BTreeMap<u64, Slot>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("generations", &self.slots.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl KeyRing {
    /// An empty ring.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the key of a verified bundle (`digest` = [`KeyBundle::digest`]),
    /// learned at `now_ms`. A re-stored older bundle never replaces the
    /// current generation (§3.5).
    pub fn insert(
        &mut self,
        generation: u64,
        digest: [u8; 32],
        key: GenerationKey,
        now_ms: u64,
    ) -> BundleOutcome {
        let was_current = self.current_id();
        let slot = self.slots.entry(generation).or_insert_with(|| Slot {
            keys: BTreeMap::new(),
            learned_at: now_ms,
        });
        if slot.keys.contains_key(&digest) {
            return BundleOutcome::AlreadyKnown;
        }
        slot.keys.insert(digest, key);
        if self.current_id() != was_current {
            BundleOutcome::NewCurrent
        } else {
            BundleOutcome::KeptForReading
        }
    }

    fn current_id(&self) -> Option<(u64, [u8; 32])> {
        let (g, slot) = self.slots.iter().next_back()?;
        slot.keys.keys().next().map(|d| (*g, *d))
    }

    /// The current generation and its key for sending: the highest `G`,
    /// and on a tie the bundle with the smaller digest (§3.5).
    pub fn current(&self) -> Option<(u64, &GenerationKey)> {
        let (g, slot) = self.slots.iter().next_back()?;
        slot.keys.values().next().map(|k| (*g, k))
    }

    /// The current generation number.
    pub fn current_generation(&self) -> Option<u64> {
        self.slots.keys().next_back().copied()
    }

    /// The keys held for `generation` (several after a tie).
    pub fn keys_of(&self, generation: u64) -> impl Iterator<Item = &GenerationKey> {
        self.slots
            .get(&generation)
            .into_iter()
            .flat_map(|s| s.keys.values())
    }

    /// Whether any key of `generation` is held.
    pub fn has(&self, generation: u64) -> bool {
        self.slots.contains_key(&generation)
    }

    /// Every key, newest generation first (the order of §6.3 step 1).
    pub fn newest_first(&self) -> impl Iterator<Item = (u64, &GenerationKey)> {
        self.slots
            .iter()
            .rev()
            .flat_map(|(g, s)| s.keys.values().map(move |k| (*g, k)))
    }

    /// When `generation` was superseded: the time this client learned of the
    /// next higher generation it holds (`None` while it is current).
    pub fn superseded_at(&self, generation: u64) -> Option<u64> {
        self.slots
            .range(generation.saturating_add(1)..)
            .map(|(_, s)| s.learned_at)
            .min()
    }

    /// Drops keys superseded more than 30 days before `now_ms` (§3.4).
    /// Returns how many generations were dropped.
    pub fn prune(&mut self, now_ms: u64) -> usize {
        let drop: Vec<u64> = self
            .slots
            .keys()
            .copied()
            .filter(|g| {
                self.superseded_at(*g)
                    .is_some_and(|t| now_ms.saturating_sub(t) > SUPERSEDED_KEY_KEEP_MS)
            })
            .collect();
        for g in &drop {
            self.slots.remove(g);
        }
        drop.len()
    }

    /// Serialises the ring for local (encrypted) storage:
    /// `{"k": [{"G", "d", "k", "l"}, …]}`.
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>, GroupError> {
        let mut list = Vec::new();
        for (g, slot) in &self.slots {
            for (d, k) in &slot.keys {
                list.push(Value::dict([
                    (b"G".to_vec(), int(*g, "generation")?),
                    (b"d".to_vec(), Value::bytes(d.to_vec())),
                    (b"k".to_vec(), Value::bytes(k.as_bytes().to_vec())),
                    (b"l".to_vec(), int(slot.learned_at, "learned_at")?),
                ]));
            }
        }
        let v = Value::dict([(b"k".to_vec(), Value::List(list))]);
        let out = Zeroizing::new(encode(&v));
        // The Value tree held key copies; overwrite them before dropping.
        zeroize_value(v);
        Ok(out)
    }

    /// Reads [`KeyRing::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, GroupError> {
        let dict = decode_dict(bytes, "key ring")?;
        let list = dict
            .get(b"k".as_slice())
            .and_then(Value::as_list)
            .ok_or(GroupError::Malformed { what: "key ring" })?;
        let mut ring = KeyRing::new();
        for item in list {
            let d = item.as_dict().ok_or(GroupError::Malformed {
                what: "key ring entry",
            })?;
            let g = get_u64(d, b"G", "key ring generation")?;
            let digest: [u8; 32] = get_array(d, b"d", "key ring digest")?;
            let key = GenerationKey::from_bytes(get_array(d, b"k", "key ring key")?);
            let learned = get_u64(d, b"l", "key ring time")?;
            ring.insert(g, digest, key, learned);
        }
        Ok(ring)
    }
}

fn zeroize_value(v: Value) {
    use zeroize::Zeroize;
    match v {
        Value::Bytes(mut b) => b.zeroize(),
        Value::List(l) => l.into_iter().for_each(zeroize_value),
        Value::Dict(d) => d.into_values().for_each(zeroize_value),
        Value::Int(_) => {}
    }
}

/// Whether `id` can receive a bundle entry (a `05` account).
pub(crate) fn check_member_id(id: &AccountId) -> Result<(), GroupError> {
    if id.prefix() == IdPrefix::Standard {
        Ok(())
    } else {
        Err(GroupError::NotAccountId)
    }
}

/// Reads the raw bytes of a field (used by tests).
#[cfg(test)]
fn raw_field(bytes: &[u8], key: &[u8]) -> Vec<u8> {
    let d = decode_dict(bytes, "test").unwrap();
    super::get_bytes(&d, key, "test").unwrap().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::ExpandRng;
    use crate::identity::AccountKeys;

    fn users(n: u8) -> Vec<AccountKeys> {
        (0..n)
            .map(|i| AccountKeys::from_seed(&[i.wrapping_add(100); 32]))
            .collect()
    }

    #[test]
    fn key_derivation_depends_on_every_input() {
        let k = generation_key(&[1; 32], 1, &[2; 16]);
        assert_ne!(k, generation_key(&[1; 32], 2, &[2; 16]));
        assert_ne!(k, generation_key(&[3; 32], 1, &[2; 16]));
        assert_ne!(k, generation_key(&[1; 32], 1, &[4; 16]));
        // Independent computation with the raw BLAKE2b parameters.
        let mut input = 1u64.to_le_bytes().to_vec();
        input.extend_from_slice(&[2; 16]);
        let h = blake2b(
            &input,
            32,
            Blake2bParams {
                key: &[1; 32],
                salt: b"",
                personal: b"UmbraGroupKeyGen",
            },
        )
        .unwrap();
        assert_eq!(k.as_bytes().as_slice(), h.as_slice());
    }

    #[test]
    fn bundle_for_100_members_round_trip() {
        let g = GroupKeys::from_seed(&[7; 32]);
        let people = users(100);
        let ids: Vec<_> = people.iter().map(AccountKeys::account_id).collect();
        let mut rng = ExpandRng::new([5; 32]);
        let (b, key) = KeyBundle::build(&g, 3, 1_000, &ids, &mut rng).unwrap();
        let parsed = KeyBundle::parse(b.to_bytes(), &g.id()).unwrap();
        assert_eq!(parsed, b);
        assert_eq!(parsed.generation(), 3);
        assert_eq!(parsed.created_at(), 1_000);
        assert_eq!(parsed.derive(&g), key);
        for p in &people {
            assert_eq!(parsed.open(&g.id(), p.x25519_secret()).unwrap(), key);
        }
        let outsider = AccountKeys::from_seed(&[1; 32]);
        assert_eq!(
            parsed.open(&g.id(), outsider.x25519_secret()).unwrap_err(),
            GroupError::NotInGeneration { generation: 3 }
        );
        assert!(matches!(
            KeyBundle::build(&g, 3, 0, &[ids.clone(), vec![ids[0]]].concat(), &mut rng),
            Err(GroupError::TooManyMembers { count: 101 })
        ));
    }

    #[test]
    fn bundle_size_is_independent_of_member_count() {
        let g = GroupKeys::from_seed(&[7; 32]);
        let people = users(3);
        let ids: Vec<_> = people.iter().map(AccountKeys::account_id).collect();
        let mut rng = ExpandRng::new([5; 32]);
        let (one, _) = KeyBundle::build(&g, 1, 5, &ids[..1], &mut rng).unwrap();
        let (three, _) = KeyBundle::build(&g, 1, 5, &ids, &mut rng).unwrap();
        assert_eq!(one.to_bytes().len(), three.to_bytes().len());
        assert_eq!(raw_field(one.to_bytes(), b"n").len(), 16);
    }

    #[test]
    fn bundle_rejections() {
        let g = GroupKeys::from_seed(&[7; 32]);
        let ids = vec![users(1)[0].account_id()];
        let mut rng = ExpandRng::new([5; 32]);
        let (b, _) = KeyBundle::build(&g, 2, 5, &ids, &mut rng).unwrap();
        // Wrong signer: the same content signed by another group key.
        let forger = GroupKeys::from_seed(&[8; 32]);
        let (forged, _) = KeyBundle::build(&forger, 2, 5, &ids, &mut rng).unwrap();
        assert_eq!(
            KeyBundle::parse(forged.to_bytes(), &g.id()).unwrap_err(),
            GroupError::BadSignature { what: "key bundle" }
        );
        // Tampering anywhere breaks the signature or the encoding.
        let mut t = b.to_bytes().to_vec();
        let mid = t.len() / 2;
        t[mid] ^= 1;
        assert!(KeyBundle::parse(&t, &g.id()).is_err());
        // Truncation.
        assert!(matches!(
            KeyBundle::parse(&b.to_bytes()[..100], &g.id()),
            Err(GroupError::Bencode { .. })
        ));
        // Not a group ID.
        assert_eq!(
            KeyBundle::parse(b.to_bytes(), &ids[0]).unwrap_err(),
            GroupError::NotGroupId
        );
        // A 99-entry bundle, correctly signed, is still refused.
        let mut d = decode_dict(b.to_bytes(), "t").unwrap();
        d.remove(b"~".as_slice());
        if let Some(Value::List(l)) = d.get_mut(b"w".as_slice()) {
            l.pop();
        }
        let mut msg = BUNDLE_DOMAIN.to_vec();
        msg.extend_from_slice(&encode(&Value::Dict(d.clone())));
        d.insert(b"~".to_vec(), Value::bytes(g.keypair().sign(&msg).to_vec()));
        assert_eq!(
            KeyBundle::parse(&encode(&Value::Dict(d)), &g.id()).unwrap_err(),
            GroupError::BadBundleEntries
        );
        // Generation 0 is refused when building.
        assert!(KeyBundle::build(&g, 0, 5, &ids, &mut rng).is_err());
    }

    #[test]
    fn ring_current_ties_and_replays() {
        let mut ring = KeyRing::new();
        let k = |b| GenerationKey::from_bytes([b; 32]);
        assert_eq!(ring.insert(1, [5; 32], k(1), 10), BundleOutcome::NewCurrent);
        assert_eq!(ring.insert(2, [9; 32], k(2), 20), BundleOutcome::NewCurrent);
        // A replayed generation-1 bundle: ignored, current unchanged.
        assert_eq!(
            ring.insert(1, [5; 32], k(1), 30),
            BundleOutcome::AlreadyKnown
        );
        // A different, older generation we did not hold: reading only.
        assert_eq!(
            ring.insert(1, [6; 32], k(7), 30),
            BundleOutcome::KeptForReading
        );
        assert_eq!(ring.current().map(|(g, _)| g), Some(2));
        // Same-generation tie: the smaller digest is current, both kept.
        assert_eq!(ring.insert(2, [3; 32], k(3), 40), BundleOutcome::NewCurrent);
        assert_eq!(ring.current().map(|(_, key)| key.clone()), Some(k(3)));
        assert_eq!(
            ring.insert(2, [4; 32], k(4), 40),
            BundleOutcome::KeptForReading
        );
        assert_eq!(ring.keys_of(2).count(), 3);
        let order: Vec<u64> = ring.newest_first().map(|(g, _)| g).collect();
        assert_eq!(order, vec![2, 2, 2, 1, 1]);
        assert_eq!(ring.superseded_at(1), Some(20));
        assert_eq!(ring.superseded_at(2), None);
        // Persistence round trip.
        let bytes = ring.to_bytes().unwrap();
        let back = KeyRing::from_bytes(&bytes).unwrap();
        assert_eq!(back.current().map(|(_, key)| key.clone()), Some(k(3)));
        assert_eq!(back.superseded_at(1), Some(20));
        // Pruning: generation 1 goes 30 days after generation 2 was learned.
        assert_eq!(ring.prune(20 + SUPERSEDED_KEY_KEEP_MS), 0);
        assert_eq!(ring.prune(21 + SUPERSEDED_KEY_KEEP_MS), 1);
        assert!(!ring.has(1));
        assert!(ring.has(2));
    }
}
