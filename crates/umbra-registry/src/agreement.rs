//! Epoch agreement between registry instances, as pure functions (no I/O,
//! no clock: time is a parameter). The rule, also in `docs/ARCHITECTURE.md`:
//!
//! - **Votes.** Every instance votes for the node records it has admitted and
//!   currently sees healthy ([`crate::health`]).
//! - **Agreed set.** A record is listed when at least `threshold` instances
//!   (the instance itself and the peers that answered) vote for exactly that
//!   record ([`agreed_set`]). Two instances that disagree about one node
//!   therefore compute the same set as soon as they hold the same votes.
//! - **Document.** The next document is a pure function of the agreed set,
//!   the previous document and an `issued_at` derived from the previous one
//!   and the epoch interval ([`issued_at`]), so instances build the same
//!   bytes: sorted records, the §4 assignment seeded by the epoch hash, `p`
//!   chained to the previous `doc_hash`.
//! - **Locks.** An instance signs at most one document per epoch (its
//!   *lock*) and keeps offering it until a threshold-signed document of that
//!   epoch is known, or until `n − threshold + 1` peers are locked on other
//!   documents of the same epoch, so that its own can never complete
//!   ([`lock_hopeless`]). An instance without a lock prefers a peer's
//!   acceptable candidate ([`choose_candidate`]) to building its own. With a
//!   majority threshold, two documents of one epoch cannot both complete.

use std::collections::BTreeMap;

use umbra_crypto::Ed25519Public;
use umbra_proto::swarm::{NodeRecord, RegistryConfig, RegistryDocument, RegistryError};

/// The records listed by the agreement rule: every record that at least
/// `threshold` of `ballots` contain. When one node key has several records
/// that reach the threshold (a re-submitted address seen by some instances
/// only), the one with more votes wins, ties going to the greater encoding.
/// The result is sorted by node key.
pub fn agreed_set<'a>(
    ballots: impl IntoIterator<Item = &'a [NodeRecord]>,
    threshold: usize,
) -> Vec<NodeRecord> {
    let mut counts: BTreeMap<Vec<u8>, (usize, &'a NodeRecord)> = BTreeMap::new();
    for ballot in ballots {
        // One vote per instance for each distinct record.
        let mut seen = std::collections::BTreeSet::new();
        for r in ballot {
            let enc = r.encode();
            if seen.insert(enc.clone()) {
                counts.entry(enc).or_insert((0, r)).0 += 1;
            }
        }
    }
    let mut best: BTreeMap<Ed25519Public, (usize, Vec<u8>, &NodeRecord)> = BTreeMap::new();
    for (enc, (n, r)) in counts {
        if n < threshold {
            continue;
        }
        match best.get(&r.ed25519) {
            Some((bn, benc, _)) if (*bn, benc.as_slice()) >= (n, enc.as_slice()) => {}
            _ => {
                best.insert(r.ed25519, (n, enc, r));
            }
        }
    }
    best.into_values().map(|(_, _, r)| r.clone()).collect()
}

/// The `issued_at` of the next document, or `None` while the epoch interval
/// since the previous one has not passed. It is the previous `issued_at`
/// plus a whole number of intervals (at least one), the largest not after
/// `now_ms`, so instances that build within the same interval agree on it.
/// The first epoch uses `now_ms` rounded down to the interval.
pub fn issued_at(previous_issued_ms: Option<u64>, now_ms: u64, interval_ms: u64) -> Option<u64> {
    let interval = interval_ms.max(1);
    match previous_issued_ms {
        None => Some(now_ms - now_ms % interval),
        Some(prev) => {
            let elapsed = now_ms.checked_sub(prev)?;
            let k = elapsed / interval;
            (k >= 1).then(|| prev.saturating_add(k.saturating_mul(interval)))
        }
    }
}

/// True when `agreed` differs from the node records of `current` (a node
/// joined or left, or a record changed); with no document yet, when there is
/// anything to list.
pub fn needs_new_epoch(current: Option<&RegistryDocument>, agreed: &[NodeRecord]) -> bool {
    match current {
        Some(doc) => doc.nodes() != agreed,
        None => !agreed.is_empty(),
    }
}

/// Builds the unsigned next document: epoch `current + 1` (or 1), chained to
/// `current`, listing `agreed`.
pub fn build_next(
    current: Option<&RegistryDocument>,
    agreed: &[NodeRecord],
    issued_at_ms: u64,
    config: &RegistryConfig,
) -> Result<RegistryDocument, RegistryError> {
    let b = match current {
        Some(c) => c.next_builder(issued_at_ms),
        None => RegistryDocument::builder(1, issued_at_ms),
    };
    b.params(*config.params())
        .nodes(agreed.iter().cloned())
        .build()
}

/// True when a peer's candidate may be signed by an instance holding
/// `current` whose own agreed set is `agreed`: it is the next epoch, chained
/// to `current`, lists exactly `agreed`, carries the §4 assignment, keeps
/// the epoch interval and is not issued in the future (beyond `skew_ms`).
pub fn acceptable_candidate(
    candidate: &RegistryDocument,
    current: Option<&RegistryDocument>,
    agreed: &[NodeRecord],
    config: &RegistryConfig,
    now_ms: u64,
    interval_ms: u64,
    skew_ms: u64,
) -> bool {
    let chained = match current {
        Some(c) => {
            c.epoch().checked_add(1) == Some(candidate.epoch())
                && candidate.prev_hash() == c.doc_hash()
                && candidate.issued_at_ms() >= c.issued_at_ms().saturating_add(interval_ms)
        }
        None => candidate.epoch() == 1,
    };
    chained
        && candidate.nodes() == agreed
        && candidate.issued_at_ms() <= now_ms.saturating_add(skew_ms)
        && candidate
            .compute_assignment(current, config.params())
            .is_ok_and(|a| a == candidate.assignment())
}

/// The number of distinct pinned keys with a valid signature on `doc`.
pub fn valid_signatures(doc: &RegistryDocument, config: &RegistryConfig) -> usize {
    let msg = doc.signing_message();
    let mut keys = std::collections::BTreeSet::new();
    for s in doc.signatures() {
        if config.pinned_keys().contains(&s.key) && s.key.verify(&msg, &s.signature).is_ok() {
            keys.insert(s.key);
        }
    }
    keys.len()
}

/// Among acceptable candidates, the one to sign: most valid signatures
/// first, then the smallest `doc_hash` (every instance picks the same).
pub fn choose_candidate<'a>(
    candidates: impl IntoIterator<Item = &'a RegistryDocument>,
    config: &RegistryConfig,
) -> Option<&'a RegistryDocument> {
    candidates.into_iter().min_by(|a, b| {
        valid_signatures(b, config)
            .cmp(&valid_signatures(a, config))
            .then_with(|| a.doc_hash().cmp(b.doc_hash()))
    })
}

/// True when a lock on `mine` can never reach the threshold: at least
/// `n − threshold + 1` peers are locked on other documents of the same
/// epoch. `peer_locks` are the `(epoch, doc_hash)` of the peers' locks.
pub fn lock_hopeless(
    mine: &RegistryDocument,
    peer_locks: impl IntoIterator<Item = (u64, [u8; 32])>,
    config: &RegistryConfig,
) -> bool {
    let n = config.pinned_keys().len();
    let other = peer_locks
        .into_iter()
        .filter(|(e, h)| *e == mine.epoch() && h != mine.doc_hash())
        .count();
    other > n.saturating_sub(config.threshold())
}

/// Copies into `mine` every valid pinned signature of `other` when both are
/// the same document. Returns how many signatures `mine` has afterwards.
pub fn merge_signatures(
    mine: &mut RegistryDocument,
    other: &RegistryDocument,
    config: &RegistryConfig,
) -> usize {
    if mine.doc_hash() == other.doc_hash() {
        for s in other.signatures() {
            if config.pinned_keys().contains(&s.key) {
                let _ = mine.add_signature(s.clone());
            }
        }
    }
    valid_signatures(mine, config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use umbra_crypto::Ed25519Keypair;
    use umbra_proto::swarm::SwarmParams;

    fn params() -> SwarmParams {
        SwarmParams {
            min_swarm_size: 2,
            excess_base: 2,
            ideal_swarm_margin: 1,
            new_swarm_size: 2,
        }
    }

    fn rec(i: u8, port: u16) -> NodeRecord {
        NodeRecord::sign(
            &Ed25519Keypair::from_seed(&[i; 32]),
            Ipv4Addr::LOCALHOST,
            port,
            [0, 1, 0],
        )
        .unwrap()
    }

    fn regs() -> Vec<Ed25519Keypair> {
        (0..3)
            .map(|i| Ed25519Keypair::from_seed(&[200 + i; 32]))
            .collect()
    }

    fn config() -> RegistryConfig {
        RegistryConfig::new(regs().iter().map(|k| k.public()), 2, params()).unwrap()
    }

    #[test]
    fn a_node_is_listed_when_a_threshold_of_instances_vote_for_it() {
        let (a, b, c) = (rec(1, 1001), rec(2, 1002), rec(3, 1003));
        let v1 = [a.clone(), b.clone(), c.clone()];
        let v2 = [a.clone(), b.clone()];
        let v3 = [a.clone(), c.clone()];
        let mut set = agreed_set([&v1[..], &v2[..], &v3[..]], 2);
        set.sort_by_key(|r| r.ed25519);
        let mut want = [a.clone(), b.clone(), c.clone()];
        want.sort_by_key(|r| r.ed25519);
        assert_eq!(set, want);
        // Only one vote for c: not listed.
        let got = agreed_set([&v1[..], &v2[..]], 2);
        assert!(got.iter().all(|r| r.ed25519 != c.ed25519));
        assert_eq!(got.len(), 2);
        // Order of ballots does not matter.
        assert_eq!(
            agreed_set([&v2[..], &v1[..]], 2),
            agreed_set([&v1[..], &v2[..]], 2)
        );
        // A duplicated record in one ballot counts once.
        let dup = [c.clone(), c.clone()];
        assert!(agreed_set([&dup[..]], 2).is_empty());
    }

    #[test]
    fn a_moved_node_takes_the_record_with_more_votes() {
        let old = rec(1, 1001);
        let new = rec(1, 2001);
        let v1 = [new.clone()];
        let v2 = [new.clone()];
        let v3 = [old.clone()];
        assert_eq!(agreed_set([&v1[..], &v2[..], &v3[..]], 1), vec![new]);
    }

    #[test]
    fn issued_at_is_shared_within_an_interval() {
        assert_eq!(issued_at(None, 12_345, 1_000), Some(12_000));
        assert_eq!(issued_at(Some(10_000), 10_999, 1_000), None);
        assert_eq!(issued_at(Some(10_000), 11_000, 1_000), Some(11_000));
        assert_eq!(issued_at(Some(10_000), 11_999, 1_000), Some(11_000));
        assert_eq!(issued_at(Some(10_000), 13_500, 1_000), Some(13_000));
        assert_eq!(issued_at(Some(10_000), 9_000, 1_000), None);
    }

    #[test]
    fn same_inputs_same_bytes_and_candidate_checks() {
        let cfg = config();
        let nodes: Vec<NodeRecord> = (1..=6).map(|i| rec(i, 1000 + u16::from(i))).collect();
        let agreed = agreed_set([&nodes[..]], 1);
        let d1 = build_next(None, &agreed, 1_000, &cfg).unwrap();
        let d1b = build_next(None, &agreed, 1_000, &cfg).unwrap();
        assert_eq!(d1.encode(), d1b.encode());
        let r = regs();
        let d1 = d1.signed(&r[0]).signed(&r[1]);
        assert!(d1.check_signatures(&cfg).is_ok());
        let fewer = agreed_set([&nodes[1..]], 1);
        let d2 = build_next(Some(&d1), &fewer, 3_000, &cfg).unwrap();
        assert!(acceptable_candidate(
            &d2,
            Some(&d1),
            &fewer,
            &cfg,
            3_000,
            2_000,
            0
        ));
        // Not the set this instance agrees on.
        assert!(!acceptable_candidate(
            &d2,
            Some(&d1),
            &agreed,
            &cfg,
            3_000,
            2_000,
            0
        ));
        // Too early after the previous epoch.
        assert!(!acceptable_candidate(
            &d2,
            Some(&d1),
            &fewer,
            &cfg,
            3_000,
            5_000,
            0
        ));
        // Issued in the future.
        assert!(!acceptable_candidate(
            &d2,
            Some(&d1),
            &fewer,
            &cfg,
            2_000,
            2_000,
            0
        ));
        assert!(needs_new_epoch(Some(&d1), &fewer));
        assert!(!needs_new_epoch(Some(&d1), &agreed));
        assert!(!needs_new_epoch(None, &[]));
    }

    #[test]
    fn locks_and_signature_merging() {
        let cfg = config();
        let r = regs();
        let nodes: Vec<NodeRecord> = (1..=4).map(|i| rec(i, 1000 + u16::from(i))).collect();
        let a = build_next(None, &nodes, 1_000, &cfg).unwrap();
        let b = build_next(None, &nodes, 2_000, &cfg).unwrap();
        let mut mine = a.clone().signed(&r[0]);
        let theirs = a.clone().signed(&r[1]).signed(&r[2]);
        assert_eq!(merge_signatures(&mut mine, &theirs, &cfg), 3);
        let mut other = b.clone().signed(&r[0]);
        assert_eq!(merge_signatures(&mut other, &theirs, &cfg), 1);
        // n = 3, t = 2: two peers locked elsewhere make a lock hopeless.
        let bh = *b.doc_hash();
        assert!(!lock_hopeless(&a, [(1, bh)], &cfg));
        assert!(lock_hopeless(&a, [(1, bh), (1, bh)], &cfg));
        assert!(!lock_hopeless(&a, [(1, bh), (2, bh)], &cfg));
        assert!(!lock_hopeless(&a, [(1, *a.doc_hash()), (1, bh)], &cfg));
        // The candidate with more signatures wins, then the smaller hash.
        let one = b.clone().signed(&r[1]);
        let two = a.clone().signed(&r[1]).signed(&r[2]);
        assert_eq!(
            choose_candidate([&one, &two], &cfg).unwrap().doc_hash(),
            two.doc_hash()
        );
        let x = a.clone().signed(&r[1]);
        let y = b.clone().signed(&r[1]);
        let smaller = if a.doc_hash() < b.doc_hash() { &x } else { &y };
        assert_eq!(
            choose_candidate([&x, &y], &cfg).unwrap().doc_hash(),
            smaller.doc_hash()
        );
    }
}
