//! Swarm space (`shared/spec/swarms.md` §1–2): an account's position on the
//! 2^64 ring, the swarm that owns a position, and each swarm's ownership
//! interval `(lo, hi]`.

use crate::identity::AccountId;

use super::{SwarmError, SwarmId};

/// The position of a 32-byte account key on the ring (§1): the XOR of its four
/// 8-byte big-endian chunks.
pub fn swarm_space(key: &[u8; 32]) -> u64 {
    key.chunks_exact(8).fold(0u64, |acc, chunk| {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        acc ^ u64::from_be_bytes(b)
    })
}

/// The position of an account on the ring (§1). The prefix byte (`05`, `03`, …)
/// does not take part.
pub fn account_position(account: &AccountId) -> u64 {
    swarm_space(account.key())
}

/// The position of a 33-byte account ID given as raw bytes, whatever its
/// prefix byte.
pub fn swarm_space_of_id_bytes(id: &[u8]) -> Result<u64, SwarmError> {
    match id {
        [_prefix, key @ ..] if key.len() == 32 => {
            let mut k = [0u8; 32];
            k.copy_from_slice(key);
            Ok(swarm_space(&k))
        }
        _ => Err(SwarmError::BadKeyLength(id.len())),
    }
}

/// The ring interval `(lo, hi]` that a swarm owns (§2). Going upward from `lo`
/// (excluded) to `hi` (included), wrapping from `2^64 − 1` to 0.
///
/// When `lo == hi` the swarm is the only one and owns the whole ring (with two
/// or more swarms the interval is never empty, so this cannot be confused
/// with an empty interval).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SwarmRange {
    lo: u64,
    hi: u64,
}

impl SwarmRange {
    /// The exclusive lower end.
    pub const fn lo(&self) -> u64 {
        self.lo
    }

    /// The inclusive upper end.
    pub const fn hi(&self) -> u64 {
        self.hi
    }

    /// True when this is the whole ring (a single swarm).
    pub const fn is_whole_ring(&self) -> bool {
        self.lo == self.hi
    }

    /// True when `position` lies in `(lo, hi]`.
    pub const fn contains(&self, position: u64) -> bool {
        if self.is_whole_ring() {
            return true;
        }
        let offset = position.wrapping_sub(self.lo);
        offset != 0 && offset <= self.hi.wrapping_sub(self.lo)
    }
}

/// A non-empty set of swarm IDs in ascending order: the ring of §2.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SwarmRing {
    ids: Vec<SwarmId>,
}

impl SwarmRing {
    /// Builds the ring from IDs in any order; duplicates are merged. Fails only
    /// when there is no ID at all.
    pub fn new(ids: impl IntoIterator<Item = SwarmId>) -> Result<Self, SwarmError> {
        let mut ids: Vec<SwarmId> = ids.into_iter().collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Err(SwarmError::NoSwarms);
        }
        Ok(Self { ids })
    }

    /// Builds the ring from IDs that must already be strictly ascending.
    pub fn from_sorted(ids: Vec<SwarmId>) -> Result<Self, SwarmError> {
        if ids.is_empty() {
            return Err(SwarmError::NoSwarms);
        }
        if let Some(i) = ids.windows(2).position(|w| w[0] >= w[1]) {
            return Err(SwarmError::NotAscending(i + 1));
        }
        Ok(Self { ids })
    }

    /// The IDs, ascending.
    pub fn ids(&self) -> &[SwarmId] {
        &self.ids
    }

    /// The number of swarms (at least 1).
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Always false: a ring has at least one swarm.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// True when `id` is one of the swarms.
    pub fn contains(&self, id: SwarmId) -> bool {
        self.ids.binary_search(&id).is_ok()
    }

    /// The swarm that owns ring position `position` (§2): the nearer of the two
    /// neighbouring swarms, ties to the lower (left) one.
    pub fn select(&self, position: u64) -> SwarmId {
        let ids = &self.ids;
        let n = ids.len();
        if n == 1 {
            return ids[0];
        }
        let first_ge = ids.partition_point(|id| id.get() < position);
        let r = if first_ge == n { 0 } else { first_ge };
        let l = if r == 0 { n - 1 } else { r - 1 };
        let (right, left) = (ids[r], ids[l]);
        let d_right = right.get().wrapping_sub(position);
        let d_left = position.wrapping_sub(left.get());
        if d_right < d_left { right } else { left }
    }

    /// The swarm that owns `account`.
    pub fn owner(&self, account: &AccountId) -> SwarmId {
        self.select(account_position(account))
    }

    /// The interval `(lo, hi]` that swarm `id` owns (§2), or an error when `id`
    /// is not in the ring.
    pub fn range(&self, id: SwarmId) -> Result<SwarmRange, SwarmError> {
        let i = self
            .ids
            .binary_search(&id)
            .map_err(|_| SwarmError::UnknownSwarm(id))?;
        let n = self.ids.len();
        let s = id.get();
        let prev = self.ids[(i + n - 1) % n].get();
        let next = self.ids[(i + 1) % n].get();
        let gl = s.wrapping_sub(prev);
        let gr = next.wrapping_sub(s);
        // ⌈gl/2⌉ without overflow: gl/2 + (gl odd).
        let lo = s.wrapping_sub(gl / 2 + (gl & 1));
        let hi = s.wrapping_add(gr / 2);
        Ok(SwarmRange { lo, hi })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ring(ids: &[u64]) -> SwarmRing {
        SwarmRing::new(ids.iter().map(|&v| SwarmId::new(v).unwrap())).unwrap()
    }

    fn sid(v: u64) -> SwarmId {
        SwarmId::new(v).unwrap()
    }

    #[test]
    fn position_xors_big_endian_chunks() {
        let id: AccountId = "050123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
            .parse()
            .unwrap();
        assert_eq!(account_position(&id), 0);
        let mut key = [0u8; 32];
        key[31] = 1;
        key[7] = 2;
        assert_eq!(swarm_space(&key), 3);
        key[0] = 0x80;
        assert_eq!(swarm_space(&key), 0x8000_0000_0000_0003);
    }

    #[test]
    fn position_of_raw_bytes_ignores_prefix() {
        let mut raw = [0u8; 33];
        raw[0] = 0x99;
        raw[32] = 7;
        assert_eq!(swarm_space_of_id_bytes(&raw), Ok(7));
        assert_eq!(
            swarm_space_of_id_bytes(&raw[..32]),
            Err(SwarmError::BadKeyLength(32))
        );
        assert_eq!(
            swarm_space_of_id_bytes(&[]),
            Err(SwarmError::BadKeyLength(0))
        );
    }

    #[test]
    fn ring_construction() {
        assert_eq!(SwarmRing::new([]), Err(SwarmError::NoSwarms));
        assert_eq!(ring(&[5, 1, 5]).ids(), &[sid(1), sid(5)]);
        assert_eq!(
            SwarmRing::from_sorted(vec![sid(1), sid(1)]),
            Err(SwarmError::NotAscending(1))
        );
        assert_eq!(SwarmRing::from_sorted(vec![]), Err(SwarmError::NoSwarms));
        assert!(SwarmRing::from_sorted(vec![sid(1), sid(2)]).is_ok());
    }

    #[test]
    fn select_single_and_ties() {
        assert_eq!(ring(&[77]).select(u64::MAX), sid(77));
        let r = ring(&[100, 200]);
        assert_eq!(r.select(150), sid(100)); // exact tie goes left
        assert_eq!(r.select(151), sid(200));
        assert_eq!(r.select(100), sid(100));
        assert_eq!(r.select(u64::MAX), sid(100)); // 101 up to 100 beats 2^64 − 201 down to 200
        let r = ring(&[0, 2]);
        assert_eq!(r.select(1), sid(0));
        // A tie across the wrap goes to the left neighbour, the largest ID.
        let r = ring(&[10, u64::MAX - 9]);
        assert_eq!(r.select(0), sid(u64::MAX - 9));
        assert_eq!(r.select(1), sid(10));
    }

    #[test]
    fn spec_example_range() {
        let r = ring(&[1, 100, 694, MAX_ID_TEST]);
        let range = r.range(sid(100)).unwrap();
        assert_eq!((range.lo(), range.hi()), (50, 397));
        assert!(range.contains(51) && range.contains(397));
        assert!(!range.contains(50) && !range.contains(398));
        assert_eq!(r.range(sid(2)), Err(SwarmError::UnknownSwarm(sid(2))));
    }
    const MAX_ID_TEST: u64 = u64::MAX - 1;

    #[test]
    fn single_swarm_owns_everything() {
        let range = ring(&[9]).range(sid(9)).unwrap();
        assert!(range.is_whole_ring());
        assert!(range.contains(0) && range.contains(9) && range.contains(u64::MAX));
    }

    fn circ(a: u64, b: u64) -> u64 {
        a.wrapping_sub(b).min(b.wrapping_sub(a))
    }

    proptest! {
        #[test]
        fn select_is_nearest_and_in_range(ids in proptest::collection::vec(0..u64::MAX, 1..12), pos: u64) {
            let r = ring(&ids);
            let owner = r.select(pos);
            let best = r.ids().iter().map(|s| circ(s.get(), pos)).min().unwrap();
            prop_assert_eq!(circ(owner.get(), pos), best);
            prop_assert!(r.range(owner).unwrap().contains(pos));
            // Exactly one swarm's range contains the position.
            let holders = r.ids().iter().filter(|s| r.range(**s).unwrap().contains(pos)).count();
            prop_assert_eq!(holders, 1);
        }

        #[test]
        fn select_near_ids(ids in proptest::collection::vec(0..u64::MAX, 2..6), k in 0usize..6, delta in -3i64..=3) {
            // Positions right next to swarm IDs and midpoints exercise the tie rule.
            let r = ring(&ids);
            let s = r.ids()[k % r.len()].get();
            let pos = s.wrapping_add_signed(delta);
            let owner = r.select(pos);
            prop_assert!(r.range(owner).unwrap().contains(pos));
            let holders = r.ids().iter().filter(|s| r.range(**s).unwrap().contains(pos)).count();
            prop_assert_eq!(holders, 1);
        }

        #[test]
        fn ranges_tile_the_ring(ids in proptest::collection::vec(0..u64::MAX, 2..12)) {
            let r = ring(&ids);
            prop_assume!(r.len() >= 2);
            let n = r.len();
            for i in 0..n {
                let this = r.range(r.ids()[i]).unwrap();
                let next = r.range(r.ids()[(i + 1) % n]).unwrap();
                prop_assert_eq!(this.hi(), next.lo());
                prop_assert!(!this.is_whole_ring());
            }
        }
    }
}
