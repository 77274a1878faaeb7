//! The node pool (`onion.md` §10.1): the registry's nodes minus those marked
//! bad, per-node failure counters (§10.6), and the /24 spreading rule with
//! its fallbacks.
//!
//! - A node reaching [`NODE_FAILURE_THRESHOLD`] failures is marked bad; a
//!   success resets its counter.
//! - A bad mark lasts [`PathConfig::bad_mark_ms`](super::PathConfig) (1 hour),
//!   or until the node's record changes in a new registry.
//! - Two nodes are in the same /24 when their IPv4 addresses share the first
//!   three bytes ([`same_subnet`]). Where no candidate satisfies the /24 rule
//!   (a test network on one subnet or one host), the picker applies it to whole
//!   addresses, and drops it if that cannot be satisfied either.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use umbra_crypto::Ed25519Public;

use super::NODE_FAILURE_THRESHOLD;
use crate::swarm::NodeRecord;

/// True when two IPv4 addresses share their first three bytes (§10.1).
pub fn same_subnet(a: Ipv4Addr, b: Ipv4Addr) -> bool {
    a.octets()[..3] == b.octets()[..3]
}

/// How strictly two nodes must be apart, from the rule to its fallbacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spread {
    /// Distinct /24s.
    Subnet,
    /// Distinct IPv4 addresses.
    Address,
    /// No address rule.
    Off,
}

impl Spread {
    /// The rule, then its two fallbacks, in the order they are tried.
    pub(crate) const LEVELS: [Spread; 3] = [Spread::Subnet, Spread::Address, Spread::Off];

    /// True when `a` and `b` are too close under this level.
    pub(crate) fn conflicts(self, a: &NodeRecord, b: &NodeRecord) -> bool {
        match self {
            Spread::Subnet => same_subnet(a.ipv4, b.ipv4),
            Spread::Address => a.ipv4 == b.ipv4,
            Spread::Off => false,
        }
    }
}

/// A uniform index in `0..n` from the caller's draw (`n > 0`). The result is
/// reduced modulo `n`, so a misbehaving closure cannot cause a panic.
pub(crate) fn uniform(draw: &mut dyn FnMut(u64) -> u64, n: usize) -> usize {
    let n64 = n as u64;
    if n64 == 0 {
        return 0;
    }
    // `% n64` < n, which fits in usize.
    usize::try_from(draw(n64) % n64).unwrap_or(0)
}

/// Picks uniformly among `candidates` one that is apart from every node of
/// `avoid`: in a distinct /24 if any candidate is, else at a distinct address
/// if any is, else any candidate. `None` only when `candidates` is empty.
pub(crate) fn pick<'a>(
    candidates: &[&'a NodeRecord],
    avoid: &[&NodeRecord],
    draw: &mut dyn FnMut(u64) -> u64,
) -> Option<&'a NodeRecord> {
    for level in Spread::LEVELS {
        let ok: Vec<&NodeRecord> = candidates
            .iter()
            .copied()
            .filter(|c| avoid.iter().all(|a| !level.conflicts(c, a)))
            .collect();
        if !ok.is_empty() {
            return ok.get(uniform(draw, ok.len())).copied();
        }
    }
    None
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct BadMark {
    until_ms: u64,
    /// The record the node had when marked; a different record in a new
    /// registry lifts the mark.
    record: Option<NodeRecord>,
}

/// The nodes a client may use (§10.1), with failure counters and bad marks.
#[derive(Debug, Clone, Default)]
pub struct NodePool {
    nodes: BTreeMap<Ed25519Public, NodeRecord>,
    bad: BTreeMap<Ed25519Public, BadMark>,
    failures: BTreeMap<Ed25519Public, u32>,
}

impl NodePool {
    /// Replaces the node set (a new registry, or a seed list). Bad marks on
    /// nodes whose record changed are lifted, and the failure counters of
    /// nodes that left are dropped.
    ///
    /// Returns the keys of the previous nodes that left or whose record
    /// changed (paths through them must be rebuilt).
    pub fn replace(&mut self, records: &[NodeRecord]) -> Vec<Ed25519Public> {
        let new: BTreeMap<Ed25519Public, NodeRecord> =
            records.iter().map(|r| (r.ed25519, r.clone())).collect();
        let changed = self
            .nodes
            .iter()
            .filter(|(k, r)| new.get(k) != Some(r))
            .map(|(k, _)| *k)
            .collect();
        self.bad.retain(|k, mark| match (&mark.record, new.get(k)) {
            (Some(old), Some(now)) => old == now,
            _ => true,
        });
        self.failures.retain(|k, _| new.contains_key(k));
        self.nodes = new;
        changed
    }

    /// The record of a node of the current set (bad or not).
    pub fn get(&self, key: &Ed25519Public) -> Option<&NodeRecord> {
        self.nodes.get(key)
    }

    /// Every node of the current set, in key order.
    pub fn all(&self) -> impl Iterator<Item = &NodeRecord> {
        self.nodes.values()
    }

    /// True while a bad mark on `key` is in force.
    pub fn is_bad(&self, key: &Ed25519Public, now_ms: u64) -> bool {
        self.bad.get(key).is_some_and(|m| now_ms < m.until_ms)
    }

    /// The usable nodes (in the set and not bad), in key order.
    pub fn usable(&self, now_ms: u64) -> Vec<&NodeRecord> {
        self.nodes
            .values()
            .filter(|r| !self.is_bad(&r.ed25519, now_ms))
            .collect()
    }

    /// How many nodes are usable.
    pub fn usable_count(&self, now_ms: u64) -> usize {
        self.nodes
            .keys()
            .filter(|k| !self.is_bad(k, now_ms))
            .count()
    }

    /// The failure counter of `key`.
    pub fn failures(&self, key: &Ed25519Public) -> u32 {
        self.failures.get(key).copied().unwrap_or(0)
    }

    /// Counts one failure against `key`; at [`NODE_FAILURE_THRESHOLD`] the node
    /// is marked bad for `bad_mark_ms` and its counter restarts. Returns true
    /// when this failure made it bad.
    pub fn record_failure(&mut self, key: &Ed25519Public, now_ms: u64, bad_mark_ms: u64) -> bool {
        if self.is_bad(key, now_ms) {
            return false;
        }
        let count = self.failures.entry(*key).or_insert(0);
        *count = count.saturating_add(1);
        if *count < NODE_FAILURE_THRESHOLD {
            return false;
        }
        self.failures.remove(key);
        self.bad.insert(
            *key,
            BadMark {
                until_ms: now_ms.saturating_add(bad_mark_ms),
                record: self.nodes.get(key).cloned(),
            },
        );
        true
    }

    /// Resets the failure counter of `key` (a success through it).
    pub fn record_success(&mut self, key: &Ed25519Public) {
        self.failures.remove(key);
    }

    /// Forgets bad marks that have run out. Returns the keys that are usable
    /// again.
    pub fn expire(&mut self, now_ms: u64) -> Vec<Ed25519Public> {
        let gone: Vec<Ed25519Public> = self
            .bad
            .iter()
            .filter(|(_, m)| now_ms >= m.until_ms)
            .map(|(k, _)| *k)
            .collect();
        for k in &gone {
            self.bad.remove(k);
        }
        gone
    }

    /// When the earliest bad mark runs out.
    pub fn next_expiry(&self) -> Option<u64> {
        self.bad.values().map(|m| m.until_ms).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use umbra_crypto::Ed25519Keypair;

    fn rec(i: u8, ip: [u8; 4]) -> NodeRecord {
        NodeRecord::sign(
            &Ed25519Keypair::from_seed(&[i; 32]),
            Ipv4Addr::from(ip),
            22021,
            [1, 0, 0],
        )
        .unwrap()
    }

    #[test]
    fn subnet_rule() {
        assert!(same_subnet(
            Ipv4Addr::new(10, 1, 2, 3),
            Ipv4Addr::new(10, 1, 2, 200)
        ));
        assert!(!same_subnet(
            Ipv4Addr::new(10, 1, 2, 3),
            Ipv4Addr::new(10, 1, 3, 3)
        ));
    }

    #[test]
    fn pick_prefers_subnet_then_address_then_any() {
        let a = rec(1, [10, 0, 0, 1]);
        let same_ip = rec(2, [10, 0, 0, 1]);
        let same_net = rec(3, [10, 0, 0, 2]);
        let other_net = rec(4, [10, 0, 1, 1]);
        let mut draw = |n: u64| n - 1;
        let all = [&same_ip, &same_net, &other_net];
        assert_eq!(pick(&all, &[&a], &mut draw), Some(&other_net));
        assert_eq!(pick(&all[..2], &[&a], &mut draw), Some(&same_net));
        assert_eq!(pick(&all[..1], &[&a], &mut draw), Some(&same_ip));
        assert_eq!(pick(&[], &[&a], &mut draw), None);
    }

    #[test]
    fn uniform_survives_bad_draws() {
        assert_eq!(uniform(&mut |_| u64::MAX, 3), (u64::MAX % 3) as usize);
        assert_eq!(uniform(&mut |_| 7, 0), 0);
    }

    #[test]
    fn failures_mark_bad_and_marks_expire() {
        let a = rec(1, [10, 0, 0, 1]);
        let mut pool = NodePool::default();
        pool.replace(std::slice::from_ref(&a));
        let k = a.ed25519;
        assert!(!pool.record_failure(&k, 0, 1000));
        assert!(!pool.record_failure(&k, 0, 1000));
        assert_eq!(pool.failures(&k), 2);
        assert!(pool.record_failure(&k, 10, 1000));
        assert!(pool.is_bad(&k, 10));
        assert_eq!(pool.usable_count(10), 0);
        assert!(pool.is_bad(&k, 1009));
        assert!(!pool.is_bad(&k, 1010));
        assert_eq!(pool.next_expiry(), Some(1010));
        assert_eq!(pool.expire(1010), vec![k]);
        assert_eq!(pool.usable_count(1010), 1);
        // A success resets the counter.
        pool.record_failure(&k, 2000, 1000);
        pool.record_failure(&k, 2000, 1000);
        pool.record_success(&k);
        assert!(!pool.record_failure(&k, 2000, 1000));
    }

    #[test]
    fn changed_record_lifts_the_mark() {
        let a = rec(1, [10, 0, 0, 1]);
        let b = rec(2, [10, 0, 1, 1]);
        let mut pool = NodePool::default();
        pool.replace(&[a.clone(), b.clone()]);
        for _ in 0..3 {
            pool.record_failure(&a.ed25519, 0, 1000);
            pool.record_failure(&b.ed25519, 0, 1000);
        }
        assert!(pool.is_bad(&a.ed25519, 1) && pool.is_bad(&b.ed25519, 1));
        let moved = rec(1, [10, 0, 9, 9]);
        let changed = pool.replace(&[moved.clone(), b.clone()]);
        assert_eq!(changed, vec![a.ed25519]);
        assert!(!pool.is_bad(&a.ed25519, 1));
        assert!(pool.is_bad(&b.ed25519, 1));
        assert_eq!(pool.get(&a.ed25519), Some(&moved));
    }
}
