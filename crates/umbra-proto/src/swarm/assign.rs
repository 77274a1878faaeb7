//! Node → swarm assignment (`shared/spec/swarms.md` §4): the constants of
//! §4.1, the MT19937-64 generator and its portable uniform draw (§4.2),
//! `new_swarm_id` (§4.3) and Session's oxend assignment algorithm (§4.4),
//! seeded from the registry's epoch hash instead of a block hash.
//!
//! Everything is deterministic: the same node set, previous assignment, seed
//! and constants always give the same map, on every platform.

use std::collections::BTreeMap;

use rand_mt::Mt64;

use super::{MAX_ID, SwarmError, SwarmId};

/// `FILL_SWARM_LOWER_PERCENTILE` (§4.1): new nodes go to swarms at or below
/// this size percentile.
pub const FILL_SWARM_LOWER_PERCENTILE: usize = 25;
/// `DECOMMISSIONED_REDISTRIBUTION_LOWER_PERCENTILE` (§4.1): nodes of a
/// dissolved swarm go to the smallest swarms.
pub const DECOMMISSIONED_REDISTRIBUTION_LOWER_PERCENTILE: usize = 0;
/// `STEALING_SWARM_UPPER_PERCENTILE` (§4.1): starving swarms take nodes from
/// swarms above this size percentile.
pub const STEALING_SWARM_UPPER_PERCENTILE: usize = 75;

/// The tunable assignment constants of §4.1. [`SwarmParams::PUBLIC`] (also the
/// `Default`) holds the public network's values; a test network may use
/// smaller ones, as long as every node and issuer of that network agrees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct SwarmParams {
    /// `MIN_SWARM_SIZE`: a swarm with fewer members is starving.
    pub min_swarm_size: usize,
    /// `EXCESS_BASE`: members above this count are excess.
    pub excess_base: usize,
    /// `IDEAL_SWARM_MARGIN`: excess left per swarm before a new swarm is made.
    pub ideal_swarm_margin: usize,
    /// `NEW_SWARM_SIZE`: members of a newly created swarm.
    pub new_swarm_size: usize,
}

impl SwarmParams {
    /// The public network's constants: 5, 5, 2, 7.
    pub const PUBLIC: SwarmParams = SwarmParams {
        min_swarm_size: 5,
        excess_base: 5,
        ideal_swarm_margin: 2,
        new_swarm_size: 7,
    };

    /// Checks the rules of §4.1: `EXCESS_BASE` and `NEW_SWARM_SIZE` are at
    /// least `MIN_SWARM_SIZE`, which is at least 1 (so that the algorithm
    /// always terminates).
    pub fn validate(&self) -> Result<(), SwarmError> {
        if self.min_swarm_size == 0 {
            return Err(SwarmError::BadParams("MIN_SWARM_SIZE must be at least 1"));
        }
        if self.excess_base < self.min_swarm_size {
            return Err(SwarmError::BadParams(
                "EXCESS_BASE must be at least MIN_SWARM_SIZE",
            ));
        }
        if self.new_swarm_size < self.min_swarm_size {
            return Err(SwarmError::BadParams(
                "NEW_SWARM_SIZE must be at least MIN_SWARM_SIZE",
            ));
        }
        Ok(())
    }
}

impl Default for SwarmParams {
    fn default() -> Self {
        Self::PUBLIC
    }
}

/// The seed of an epoch's assignment (§4.2): the first 8 bytes of the epoch
/// hash, little-endian.
pub fn seed_from_epoch_hash(epoch_hash: &[u8; 32]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&epoch_hash[..8]);
    u64::from_le_bytes(b)
}

/// The assignment's random number generator (§4.2): MT19937-64 (C++
/// `std::mt19937_64`) with the portable uniform draw.
#[derive(Clone)]
pub struct SwarmRng(Box<Mt64>);

impl std::fmt::Debug for SwarmRng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SwarmRng")
    }
}

impl SwarmRng {
    /// Seeds the generator (`std::mt19937_64(seed)`).
    pub fn new(seed: u64) -> Self {
        Self(Box::new(Mt64::new(seed)))
    }

    /// The next raw 64-bit output.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// The portable uniform draw in `0..n` (§4.2): reject outputs at or above
    /// `secure_max = (2^64 − 1) − ((2^64 − 1) mod n)`, then divide by
    /// `secure_max / n`. `n = 0` is treated as 1 (the algorithm never draws
    /// from an empty range).
    pub fn draw(&mut self, n: u64) -> u64 {
        let n = n.max(1);
        let secure_max = u64::MAX - (u64::MAX % n);
        loop {
            let x = self.next_u64();
            if x < secure_max {
                return x / (secure_max / n);
            }
        }
    }

    /// [`draw`](Self::draw) for an index into a slice of length `len`.
    fn draw_index(&mut self, len: usize) -> usize {
        // usize is at most 64 bits on every supported target, and the result
        // is below `len`, so both conversions are lossless.
        self.draw(len as u64) as usize
    }
}

/// The ID of the next new swarm (§4.3): the middle of the largest gap between
/// existing IDs (first such gap on ties; the wrap-around gap only if strictly
/// larger). `ids` must be strictly ascending; an empty list gives 0.
pub fn new_swarm_id(ids: &[SwarmId]) -> Result<SwarmId, SwarmError> {
    if let Some(i) = ids.windows(2).position(|w| w[0] >= w[1]) {
        return Err(SwarmError::NotAscending(i + 1));
    }
    Ok(new_swarm_id_sorted(ids))
}

/// [`new_swarm_id`] without the ordering check.
fn new_swarm_id_sorted(ids: &[SwarmId]) -> SwarmId {
    let (Some(first), Some(last)) = (ids.first(), ids.last()) else {
        return SwarmId::ZERO;
    };
    let mut gap = 0u64;
    let mut start = first.get();
    for w in ids.windows(2) {
        let d = w[1].get().wrapping_sub(w[0].get());
        if d > gap {
            gap = d;
            start = w[0].get();
        }
    }
    // MAX_ID − last + first + 1 ≤ 2^64 − 1 because first ≤ last: no overflow.
    let wrap = (MAX_ID - last.get()) + first.get() + 1;
    if wrap > gap {
        gap = wrap;
        start = last.get();
    }
    let diff = gap / 2;
    let to_max = MAX_ID - start;
    // Both results are at most MAX_ID, so never UNASSIGNED.
    SwarmId(if diff > to_max {
        diff - to_max - 1
    } else {
        start + diff
    })
}

/// Computes the node → swarm assignment of an epoch (§4.4).
///
/// - `nodes`: the node keys of the epoch (any order; duplicates are merged);
/// - `previous`: each node's swarm in the previous epoch (empty for epoch 1);
///   entries for nodes not in `nodes` are ignored;
/// - `seed`: the MT19937-64 seed, [`seed_from_epoch_hash`] of the epoch;
/// - `params`: the network's constants.
///
/// Returns every node's swarm. Fails only when `params` is invalid.
pub fn assign_swarms<K: Ord + Clone>(
    nodes: impl IntoIterator<Item = K>,
    previous: &BTreeMap<K, SwarmId>,
    seed: u64,
    params: &SwarmParams,
) -> Result<BTreeMap<K, SwarmId>, SwarmError> {
    params.validate()?;
    let mut keys: Vec<K> = nodes.into_iter().collect();
    keys.sort();
    keys.dedup();
    if keys.is_empty() {
        return Ok(BTreeMap::new());
    }
    let mut state = State {
        swarms: BTreeMap::new(),
        rng: SwarmRng::new(seed),
        p: *params,
    };
    let mut unassigned = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        match previous.get(k) {
            Some(id) => state.swarms.entry(*id).or_default().push(i),
            None => unassigned.push(i),
        }
    }
    state.run(&unassigned);
    let mut out = BTreeMap::new();
    for (id, members) in &state.swarms {
        for &i in members {
            if let Some(k) = keys.get(i) {
                out.insert(k.clone(), *id);
            }
        }
    }
    Ok(out)
}

/// A pool entry: (node index, its swarm).
type PoolEntry = (usize, SwarmId);

/// The working state of §4.4. Nodes are indices into the sorted key list.
struct State {
    swarms: BTreeMap<SwarmId, Vec<usize>>,
    rng: SwarmRng,
    p: SwarmParams,
}

impl State {
    fn run(&mut self, unassigned: &[usize]) {
        // 1. Bootstrap.
        if self.swarms.is_empty() {
            self.swarms.insert(SwarmId::ZERO, Vec::new());
        }
        // 2. Assign new nodes.
        self.assign(unassigned, FILL_SWARM_LOWER_PERCENTILE);
        // 3. Robin Hood.
        self.robin_hood();
        // 4. Create.
        self.create_new_swarms();
        // 5. Dissolve.
        self.dissolve();
    }

    /// (ID, size) sorted by size, then ID.
    fn sorted_sizes(&self) -> Vec<(SwarmId, usize)> {
        let mut s: Vec<(SwarmId, usize)> =
            self.swarms.iter().map(|(id, m)| (*id, m.len())).collect();
        s.sort_by_key(|&(id, size)| (size, id));
        s
    }

    fn excess(&self) -> usize {
        self.swarms
            .values()
            .map(|m| m.len().saturating_sub(self.p.excess_base))
            .sum()
    }

    fn threshold(&self) -> usize {
        self.p
            .new_swarm_size
            .saturating_add(self.p.ideal_swarm_margin.saturating_mul(self.swarms.len()))
    }

    fn has_starving(&self) -> bool {
        self.swarms
            .values()
            .any(|m| m.len() < self.p.min_swarm_size)
    }

    /// `pool(t)` and `pool_excess(t)`; `None` is an infinite threshold.
    fn pool(&self, t: Option<usize>) -> (Vec<PoolEntry>, usize) {
        let mut pool = Vec::new();
        let mut excess = 0usize;
        let Some(t) = t.filter(|&t| t >= self.p.min_swarm_size) else {
            return (pool, excess);
        };
        for (id, members) in &self.swarms {
            if members.len() > t {
                excess += members.len() - self.p.min_swarm_size;
                pool.extend(members.iter().map(|&n| (n, *id)));
            }
        }
        (pool, excess)
    }

    /// Draws one pool entry and removes it from its swarm.
    fn take_random(&mut self, pool: &[PoolEntry]) -> Option<usize> {
        let &(node, id) = pool.get(self.rng.draw_index(pool.len()))?;
        if let Some(members) = self.swarms.get_mut(&id) {
            members.retain(|&m| m != node);
        }
        Some(node)
    }

    fn create_new_swarms(&mut self) {
        if self.has_starving() {
            return;
        }
        while self.excess() >= self.threshold() {
            let mut new = Vec::with_capacity(self.p.new_swarm_size);
            for _ in 0..self.p.new_swarm_size {
                let (pool, _) = self.pool(Some(self.p.excess_base));
                let Some(node) = self.take_random(&pool) else {
                    return;
                };
                new.push(node);
            }
            let ids: Vec<SwarmId> = self.swarms.keys().copied().collect();
            let id = new_swarm_id_sorted(&ids);
            // new_swarm_id returns an existing ID only if every gap is ≤ 1,
            // which needs ~2^64 swarms; merge rather than lose nodes anyway.
            self.swarms.entry(id).or_default().extend(new);
        }
    }

    fn assign(&mut self, nodes: &[usize], percentile: usize) {
        for &n in nodes {
            let s = self.sorted_sizes();
            let Some(last) = s.len().checked_sub(1) else {
                return;
            };
            let pi = percentile * last / 100;
            let v = s.get(pi).map_or(0, |e| e.1);
            let u = pi + s.iter().skip(pi + 1).take_while(|e| e.1 == v).count();
            let idx = self.rng.draw_index(u + 1);
            if let Some(members) = s.get(idx).and_then(|e| self.swarms.get_mut(&e.0)) {
                members.push(n);
            }
            self.create_new_swarms();
        }
    }

    fn robin_hood(&mut self) {
        let min = self.p.min_swarm_size;
        let s = self.sorted_sizes();
        let Some(last) = s.len().checked_sub(1) else {
            return;
        };
        let pi = STEALING_SWARM_UPPER_PERCENTILE * last / 100;
        let pi_size = s.get(pi).map_or(0, |e| e.1);
        // A recorded size of 0 makes the threshold infinite (oxend's size − 1
        // wraps to SIZE_MAX).
        let t = pi_size.checked_sub(1).map(|v| v.max(min));
        for &(id, size) in &s {
            if size >= min {
                return;
            }
            loop {
                let current = self.swarms.get(&id).map_or(0, Vec::len);
                let (pool, pool_excess) = self.pool(t);
                if pool_excess < min.saturating_sub(current) {
                    return;
                }
                let Some(node) = self.take_random(&pool) else {
                    return;
                };
                let Some(members) = self.swarms.get_mut(&id) else {
                    return;
                };
                members.push(node);
                if members.len() >= min {
                    break;
                }
            }
        }
    }

    fn dissolve(&mut self) {
        while self.swarms.len() > 1 {
            let min = self.p.min_swarm_size;
            let Some(id) = self
                .swarms
                .iter()
                .find(|(_, m)| m.len() < min)
                .map(|(id, _)| *id)
            else {
                return;
            };
            let nodes = self.swarms.remove(&id).unwrap_or_default();
            self.assign(&nodes, DECOMMISSIONED_REDISTRIBUTION_LOWER_PERCENTILE);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sid(v: u64) -> SwarmId {
        SwarmId::new(v).unwrap()
    }

    fn ids(v: &[u64]) -> Vec<SwarmId> {
        v.iter().map(|&x| sid(x)).collect()
    }

    #[test]
    fn mt19937_64_check_value() {
        let mut rng = SwarmRng::new(5489);
        let mut x = 0;
        for _ in 0..10_000 {
            x = rng.next_u64();
        }
        assert_eq!(x, 9_981_545_732_273_789_042);
    }

    #[test]
    fn draw_is_the_portable_rule() {
        // Recompute the rule by hand against a second generator with the same seed.
        let mut a = SwarmRng::new(7);
        let mut b = Mt64::new(7);
        for n in [1u64, 2, 3, 7, 1000, u64::MAX / 3 + 5, u64::MAX] {
            let got = a.draw(n);
            let secure_max = u64::MAX - u64::MAX % n;
            let mut x = b.next_u64();
            while x >= secure_max {
                x = b.next_u64();
            }
            assert_eq!(got, x / (secure_max / n));
            assert!(got < n);
        }
        // draw(1) is always 0 but still consumes output.
        let mut c = SwarmRng::new(1);
        let mut d = SwarmRng::new(1);
        assert_eq!(c.draw(1), 0);
        d.next_u64();
        assert_eq!(c.next_u64(), d.next_u64());
    }

    #[test]
    fn new_swarm_id_cases() {
        assert_eq!(new_swarm_id(&[]), Ok(SwarmId::ZERO));
        assert_eq!(new_swarm_id(&ids(&[0])), Ok(sid(MAX_ID / 2)));
        // Largest inner gap, first one on ties (the wrap gap is only 1 here).
        let q = 1u64 << 62;
        assert_eq!(
            new_swarm_id(&ids(&[0, q, 2 * q, 3 * q, MAX_ID])),
            Ok(sid(q / 2))
        );
        // Wrap gap wins when strictly larger and its middle crosses MAX_ID.
        // ids {10, 20}: wrap gap 2^64 − 11 from 20; diff 2^63 − 6 fits below MAX_ID.
        assert_eq!(new_swarm_id(&ids(&[10, 20])), Ok(sid(20 + (1 << 63) - 6)));
        assert_eq!(
            new_swarm_id(&ids(&[5, 5])),
            Err(SwarmError::NotAscending(1))
        );
        assert_eq!(
            new_swarm_id(&ids(&[6, 5])),
            Err(SwarmError::NotAscending(1))
        );
    }

    #[test]
    fn new_swarm_id_wrap_by_hand() {
        // ids {MAX_ID − 10, MAX_ID − 4}: inner gap 6; the wrap gap MAX_ID − 5
        // from MAX_ID − 4 wins; diff = 2^63 − 4 > to_max = 4, so the result
        // wraps past MAX_ID: 2^63 − 4 − 4 − 1.
        assert_eq!(
            new_swarm_id(&ids(&[MAX_ID - 10, MAX_ID - 4])),
            Ok(sid((1 << 63) - 9))
        );
        // ids {0, MAX_ID}: inner gap MAX_ID wins over the wrap gap 1.
        assert_eq!(new_swarm_id(&ids(&[0, MAX_ID])), Ok(sid(MAX_ID / 2)));
    }

    #[test]
    fn params_rules() {
        assert_eq!(SwarmParams::default(), SwarmParams::PUBLIC);
        assert!(SwarmParams::PUBLIC.validate().is_ok());
        let bad = SwarmParams {
            min_swarm_size: 0,
            excess_base: 0,
            ideal_swarm_margin: 0,
            new_swarm_size: 0,
        };
        assert!(matches!(bad.validate(), Err(SwarmError::BadParams(_))));
        let bad = SwarmParams {
            excess_base: 4,
            ..SwarmParams::PUBLIC
        };
        assert!(matches!(
            assign_swarms([1u32], &BTreeMap::new(), 0, &bad),
            Err(SwarmError::BadParams(_))
        ));
        let bad = SwarmParams {
            new_swarm_size: 4,
            ..SwarmParams::PUBLIC
        };
        assert!(matches!(bad.validate(), Err(SwarmError::BadParams(_))));
    }

    #[test]
    fn seed_is_little_endian() {
        let mut h = [0u8; 32];
        h[0] = 1;
        h[7] = 0x80;
        h[8] = 0xff;
        assert_eq!(seed_from_epoch_hash(&h), 0x8000_0000_0000_0001);
    }

    fn run(n: u32, seed: u64) -> BTreeMap<u32, SwarmId> {
        assign_swarms(0..n, &BTreeMap::new(), seed, &SwarmParams::PUBLIC).unwrap()
    }

    fn sizes(a: &BTreeMap<u32, SwarmId>) -> BTreeMap<SwarmId, usize> {
        let mut s = BTreeMap::new();
        for id in a.values() {
            *s.entry(*id).or_insert(0) += 1;
        }
        s
    }

    #[test]
    fn small_networks() {
        assert!(run(0, 1).is_empty());
        // Fewer than MIN_SWARM_SIZE nodes: one swarm, swarm 0.
        let a = run(3, 1);
        assert_eq!(a.len(), 3);
        assert!(a.values().all(|&s| s == SwarmId::ZERO));
        // Up to 13 nodes stay in one swarm (excess 8 < threshold 9 at 13 nodes).
        assert_eq!(sizes(&run(13, 9)).len(), 1);
        // 14 nodes: excess 9 ≥ 9, a second swarm of 7 at MAX_ID / 2.
        let s = sizes(&run(14, 9));
        assert_eq!(s.len(), 2);
        assert_eq!(s.get(&sid(MAX_ID / 2)), Some(&7));
        assert_eq!(s.get(&SwarmId::ZERO), Some(&7));
    }

    /// Runs epoch 1 with 14 nodes (swarms 0 and MAX_ID / 2, 7 each), then
    /// removes `k` members of swarm MAX_ID / 2.
    fn shrink_second_swarm(k: usize) -> (Vec<u32>, BTreeMap<u32, SwarmId>) {
        let a = run(14, 3);
        let victims: Vec<u32> = a
            .iter()
            .filter(|(_, s)| **s != SwarmId::ZERO)
            .map(|(k, _)| *k)
            .take(k)
            .collect();
        let nodes: Vec<u32> = (0..14).filter(|k| !victims.contains(k)).collect();
        let b = assign_swarms(nodes, &a, 77, &SwarmParams::PUBLIC).unwrap();
        for v in &victims {
            assert!(!b.contains_key(v));
        }
        (victims, b)
    }

    #[test]
    fn starving_swarm_steals_when_it_can() {
        // 7 − 3 = 4 members: deficit 1, swarm 0 has pool excess 2 above t = 5.
        let (_, b) = shrink_second_swarm(3);
        let s = sizes(&b);
        assert_eq!(s.get(&sid(MAX_ID / 2)), Some(&5));
        assert_eq!(s.get(&SwarmId::ZERO), Some(&6));
        // 7 − 4 = 3 members: deficit 2, stealing exactly the excess of 2.
        let (_, b) = shrink_second_swarm(4);
        let s = sizes(&b);
        assert_eq!(s.get(&sid(MAX_ID / 2)), Some(&5));
        assert_eq!(s.get(&SwarmId::ZERO), Some(&5));
    }

    #[test]
    fn starving_swarm_dissolves_when_it_cannot_steal() {
        // 7 − 5 = 2 members: deficit 3 > excess 2, so it dissolves into swarm 0.
        let (_, b) = shrink_second_swarm(5);
        assert_eq!(b.len(), 9);
        assert!(b.values().all(|&s| s == SwarmId::ZERO));
    }

    #[test]
    fn test_network_constants() {
        let p = SwarmParams {
            min_swarm_size: 1,
            excess_base: 1,
            ideal_swarm_margin: 0,
            new_swarm_size: 1,
        };
        let a = assign_swarms(0u32..5, &BTreeMap::new(), 5, &p).unwrap();
        // Every node gets a swarm of its own.
        assert_eq!(sizes(&a).len(), 5);
    }

    /// oxend's expectation (its unit test `service_nodes_swarm.cpp`): with
    /// nodes only joining, the swarm count is `1 + max(0, N − 7) / 7` and,
    /// from 7 nodes on, the excess over 5 is `2 × swarms + N mod 7`.
    fn register_in_steps(steps: &[u32]) {
        let mut prev = BTreeMap::new();
        let mut n = 0u32;
        for (i, &step) in steps.iter().enumerate() {
            n += step;
            prev = assign_swarms(0..n, &prev, i as u64, &SwarmParams::PUBLIC).unwrap();
            let s = sizes(&prev);
            let expected = 1 + (n as usize).saturating_sub(7) / 7;
            assert_eq!(s.len(), expected, "swarm count at {n} nodes");
            if n >= 7 {
                let excess: usize = s.values().map(|v| v.saturating_sub(5)).sum();
                assert_eq!(excess, expected * 2 + n as usize % 7, "excess at {n} nodes");
            }
        }
    }

    #[test]
    fn register_nodes_one_by_one() {
        register_in_steps(&[1; 280]);
    }

    #[test]
    fn register_nodes_in_bulk() {
        register_in_steps(&[1, 3, 19, 4, 8, 13, 1, 22, 1, 7, 2, 1, 11, 18, 6, 10]);
    }

    fn check_balanced(
        a: &BTreeMap<u32, SwarmId>,
        n: usize,
        p: &SwarmParams,
    ) -> Result<(), TestCaseError> {
        prop_assert_eq!(a.len(), n);
        let s = sizes(a);
        if n >= p.min_swarm_size {
            prop_assert!(
                s.values().all(|&v| v >= p.min_swarm_size),
                "starving swarm in {:?}",
                s
            );
        } else if n > 0 {
            prop_assert_eq!(s.len(), 1);
        }
        let excess: usize = s.values().map(|v| v.saturating_sub(p.excess_base)).sum();
        prop_assert!(
            excess < p.new_swarm_size + p.ideal_swarm_margin * s.len(),
            "excess {} in {:?}",
            excess,
            s
        );
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn assignment_is_deterministic_and_balanced(n in 0u32..120, seed: u64) {
            let a = run(n, seed);
            prop_assert_eq!(&a, &run(n, seed));
            // Input order does not matter.
            let b = assign_swarms((0..n).rev(), &BTreeMap::new(), seed, &SwarmParams::PUBLIC).unwrap();
            prop_assert_eq!(&a, &b);
            check_balanced(&a, n as usize, &SwarmParams::PUBLIC)?;
        }

        #[test]
        fn stable_assignment_is_a_fixed_point(n in 0u32..80, seed: u64, seed2: u64) {
            let a = run(n, seed);
            let again = assign_swarms(0..n, &a, seed2, &SwarmParams::PUBLIC).unwrap();
            prop_assert_eq!(a, again);
        }

        #[test]
        fn churn_stays_balanced(
            n in 0u32..60,
            joins in 0u32..30,
            leave_mask: u64,
            seed: u64,
            seed2: u64,
        ) {
            let a = run(n, seed);
            let nodes: Vec<u32> = (0..n).filter(|k| (leave_mask >> (k % 64)) & 1 == 0).chain(1000..1000 + joins).collect();
            let b = assign_swarms(nodes.clone(), &a, seed2, &SwarmParams::PUBLIC).unwrap();
            check_balanced(&b, nodes.len(), &SwarmParams::PUBLIC)?;
            prop_assert!(b.keys().copied().eq(nodes.iter().copied().collect::<std::collections::BTreeSet<_>>()));
        }

        #[test]
        fn small_constants_stay_balanced(n in 0u32..40, seed: u64, min in 1usize..4, extra in 0usize..3, margin in 0usize..3) {
            let p = SwarmParams { min_swarm_size: min, excess_base: min + extra, ideal_swarm_margin: margin, new_swarm_size: min + 1 };
            let a = assign_swarms(0..n, &BTreeMap::new(), seed, &p).unwrap();
            check_balanced(&a, n as usize, &p)?;
        }

        #[test]
        fn new_swarm_id_is_in_the_largest_gap(mut v in proptest::collection::vec(0..=MAX_ID, 1..20)) {
            v.sort_unstable();
            v.dedup();
            let got = new_swarm_id(&ids(&v)).unwrap();
            prop_assert!(got.get() <= MAX_ID);
            if v.len() > 1 {
                prop_assert!(!v.contains(&got.get()) || v.windows(2).all(|w| w[1] - w[0] <= 1));
            }
        }
    }
}
