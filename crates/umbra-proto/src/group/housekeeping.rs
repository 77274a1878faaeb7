//! Admin housekeeping of namespaces 12 and 13 (`groups.md` §3.4, §4.3) and
//! the members' polling cadence (§9): pure decisions, no I/O, no clock —
//! `now_ms` is a parameter and the client carries out the result.
//!
//! * [`plan_upkeep`]: given the items an admin fetched from namespaces 12
//!   and 13 (bytes, hash, stored-at time and expiry) and what it holds
//!   ([`Held`]), which hashes to extend (`expire` with `extend`), which
//!   superseded state documents to delete, and which held items to store
//!   again because the swarm no longer has them (§3.4 "re-store or extend").
//!   Only the newest bundle (§3.5: highest `G`, then the smaller digest) and
//!   the current state document (§4.3: highest `v`, then the smaller digest)
//!   are kept alive, when their remaining lifetime is below 15 days; older
//!   bundles are left to expire; a state document that is neither current
//!   nor of the highest version in its generation is deleted one hour after
//!   the first document that beats it was stored (the highest version of
//!   each generation is left to expire, so `roster(G)` stays available).
//!   Items whose signature does not verify under the group key are ignored.
//! * [`due_polls`]: given the last poll times and what happened since,
//!   which namespaces a sync reads: 11 always, 12 and 13 every 60 s (and at
//!   once after a notice, a decryption or roster miss, or 10 s after we
//!   published), −11 every 10 minutes for members (and at once after the
//!   swarm refused our subaccount).

use std::collections::BTreeMap;

use super::keys::KeyBundle;
use super::state::StateDocument;
use super::{EXTEND_BELOW_MS, KEYS_TTL_MS};
use crate::identity::AccountId;
use crate::rpc::MessageHash;

/// Superseded state documents are deleted this long after a newer one was
/// stored (§4.3): one hour.
pub const DELETE_SUPERSEDED_AFTER_MS: u64 = 3600 * 1000;
/// Namespaces 12 and 13 are read at least this often (§9): 60 s.
pub const KEYS_POLL_MS: u64 = 60 * 1000;
/// Namespace −11 is read at least this often by members (§9): 10 minutes.
pub const REMOVALS_POLL_MS: u64 = 10 * 60 * 1000;
/// An admin re-reads namespaces 12 and 13 this long after publishing (§3.5).
pub const REREAD_AFTER_PUBLISH_MS: u64 = 10 * 1000;

/// One item fetched from namespace 12 or 13.
#[derive(Debug, Clone, Copy)]
pub struct StoredItem<'a> {
    /// Its message hash.
    pub hash: &'a MessageHash,
    /// The stored bytes.
    pub data: &'a [u8],
    /// The store timestamp (when it was published, unix ms).
    pub stored_at_ms: u64,
    /// Its current expiry (unix ms).
    pub expiry_ms: u64,
}

/// The thresholds of [`plan_upkeep`] (the spec's values by default; a
/// client may change them for tests or diagnostics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpkeepConfig {
    /// Extend the newest bundle and the current document when less than
    /// this lifetime remains (§3.4: 15 days).
    pub extend_below_ms: u64,
    /// The new lifetime given by an extension (§2: 30 days).
    pub ttl_ms: u64,
    /// Delete a superseded document this long after a newer one (§4.3: 1 h).
    pub delete_superseded_after_ms: u64,
}

impl Default for UpkeepConfig {
    fn default() -> Self {
        UpkeepConfig {
            extend_below_ms: EXTEND_BELOW_MS,
            ttl_ms: KEYS_TTL_MS,
            delete_superseded_after_ms: DELETE_SUPERSEDED_AFTER_MS,
        }
    }
}

/// What the admin holds locally: the newest bundle it has seen and its
/// current state document (bytes as stored), to re-store them when the
/// swarm no longer has them (§3.4 "re-store or extend").
#[derive(Debug, Clone, Copy, Default)]
pub struct Held<'a> {
    /// The newest bundle this device has seen in namespace 12.
    pub bundle: Option<&'a [u8]>,
    /// The current state document.
    pub document: Option<&'a [u8]>,
}

/// What an admin does to namespaces 12 and 13 now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpkeepPlan {
    /// Hashes to extend (`expire` with `extend`) to [`UpkeepPlan::extend_to_ms`]:
    /// the newest bundle and the current document, when due.
    pub extend: Vec<MessageHash>,
    /// The expiry to extend to (`now + ttl`).
    pub extend_to_ms: u64,
    /// Superseded state documents to delete.
    pub delete: Vec<MessageHash>,
    /// The held bundle, to store again (30 days): newer than anything
    /// namespace 12 returned (it expired or was deleted).
    pub restore_bundle: Option<Vec<u8>>,
    /// The held current document, to store again: namespace 13 returned
    /// neither it nor a document that beats it.
    pub restore_document: Option<Vec<u8>>,
    /// The newest bundle seen (fetched or held): what to hold from now on.
    pub newest_bundle: Option<Vec<u8>>,
}

impl UpkeepPlan {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.extend.is_empty()
            && self.delete.is_empty()
            && self.restore_bundle.is_none()
            && self.restore_document.is_none()
    }
}

fn due_for_extension(item: &StoredItem<'_>, now_ms: u64, cfg: &UpkeepConfig) -> bool {
    item.expiry_ms.saturating_sub(now_ms) < cfg.extend_below_ms
}

/// The §3.5 order of bundles: higher generation, then the smaller digest.
fn bundle_rank(b: &KeyBundle) -> (u64, std::cmp::Reverse<[u8; 32]>) {
    (b.generation(), std::cmp::Reverse(b.digest()))
}

/// Decides the housekeeping of §3.4 and §4.3 for the group `group_id` from
/// the items fetched from namespace 12 (`bundles`) and 13 (`docs`) and what
/// the admin holds (`held`; items that do not verify are ignored).
pub fn plan_upkeep(
    group_id: &AccountId,
    bundles: &[StoredItem<'_>],
    docs: &[StoredItem<'_>],
    held: Held<'_>,
    now_ms: u64,
    cfg: &UpkeepConfig,
) -> UpkeepPlan {
    let mut plan = UpkeepPlan {
        extend_to_ms: now_ms.saturating_add(cfg.ttl_ms),
        ..UpkeepPlan::default()
    };

    // The newest bundle (§3.5), fetched or held.
    let newest = bundles
        .iter()
        .filter_map(|it| {
            KeyBundle::parse(it.data, group_id)
                .ok()
                .map(|b| (bundle_rank(&b), it))
        })
        .max_by(|a, b| a.0.cmp(&b.0));
    let held_bundle = held.bundle.and_then(|b| KeyBundle::parse(b, group_id).ok());
    match (newest, held_bundle) {
        // The held one is newer than anything fetched: store it again.
        (n, Some(h)) if n.is_none_or(|(rank, _)| bundle_rank(&h) > rank) => {
            plan.restore_bundle = Some(h.to_bytes().to_vec());
            plan.newest_bundle = Some(h.to_bytes().to_vec());
        }
        (Some((_, it)), _) => {
            if due_for_extension(it, now_ms, cfg) {
                plan.extend.push(it.hash.clone());
            }
            plan.newest_bundle = Some(it.data.to_vec());
        }
        (None, _) => {}
    }

    // State documents (§4.3).
    let verified: Vec<(StateDocument, &StoredItem<'_>)> = docs
        .iter()
        .filter_map(|it| {
            StateDocument::parse(it.data, group_id)
                .ok()
                .map(|d| (d, it))
        })
        .collect();
    let current =
        verified.iter().fold(
            None::<&(StateDocument, &StoredItem<'_>)>,
            |best, d| match best {
                Some(b) if !d.0.beats(&b.0) => Some(b),
                _ => Some(d),
            },
        );
    if let Some(h) = held
        .document
        .and_then(|d| StateDocument::parse(d, group_id).ok())
        && current.is_none_or(|(c, _)| h.beats(c))
    {
        plan.restore_document = Some(h.to_bytes().to_vec());
    }
    let Some(current) = current else {
        return plan;
    };
    if due_for_extension(current.1, now_ms, cfg) {
        plan.extend.push(current.1.hash.clone());
    }
    let mut top_of_generation: BTreeMap<u64, u64> = BTreeMap::new();
    for (d, _) in &verified {
        let v = top_of_generation.entry(d.generation()).or_insert(0);
        *v = (*v).max(d.version());
    }
    for (d, it) in &verified {
        if d.to_bytes() == current.0.to_bytes()
            || top_of_generation.get(&d.generation()) == Some(&d.version())
        {
            continue;
        }
        // When the first document that beats this one was stored.
        let superseded_at = verified
            .iter()
            .filter(|(e, _)| e.beats(d))
            .map(|(_, e)| e.stored_at_ms)
            .min();
        if let Some(t) = superseded_at
            && now_ms >= t.saturating_add(cfg.delete_superseded_after_ms)
        {
            plan.delete.push(it.hash.clone());
        }
    }
    plan.extend.sort();
    plan.extend.dedup();
    plan.delete.sort();
    plan.delete.dedup();
    plan
}

/// When a group was last read, and what happened since (a client persists
/// this with the group).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollTimes {
    /// When namespaces 12 and 13 were last read (unix ms).
    pub keys_state_ms: Option<u64>,
    /// When namespace −11 was last read (unix ms).
    pub removals_ms: Option<u64>,
    /// When this device last published a bundle or state document.
    pub published_ms: Option<u64>,
    /// A notice, or a decryption or roster miss, asked for 12 and 13 and
    /// they have not been read since.
    pub keys_prompted: bool,
}

/// Which namespaces one sync reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DuePolls {
    /// Namespace 11 (always).
    pub messages: bool,
    /// Namespaces 12 and 13.
    pub keys_state: bool,
    /// Namespace −11.
    pub removals: bool,
}

/// `interval` has passed since `last` (or there was no last time, or the
/// clock went back).
fn elapsed(last: Option<u64>, now_ms: u64, interval: u64) -> bool {
    match last {
        None => true,
        Some(t) => now_ms < t || now_ms - t >= interval,
    }
}

/// The namespaces due at `now_ms` (§9). `is_admin`: admins hold the group
/// key and read no removal notices; `refused`: the swarm refused our
/// subaccount since −11 was last read (a likely removal: read it at once).
pub fn due_polls(times: &PollTimes, now_ms: u64, is_admin: bool, refused: bool) -> DuePolls {
    let after_publish = times.published_ms.is_some_and(|p| {
        let at = p.saturating_add(REREAD_AFTER_PUBLISH_MS);
        now_ms >= at && times.keys_state_ms.is_none_or(|k| k < at)
    });
    DuePolls {
        messages: true,
        keys_state: times.keys_prompted
            || after_publish
            || elapsed(times.keys_state_ms, now_ms, KEYS_POLL_MS),
        removals: !is_admin && (refused || elapsed(times.removals_ms, now_ms, REMOVALS_POLL_MS)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::{ExpandRng, GroupKeys, GroupState, KeyRing, Publication};
    use crate::identity::AccountKeys;
    use crate::rpc::{Namespace, message_hash};

    const T0: u64 = 1_700_000_000_000;
    const DAY: u64 = 24 * 3600 * 1000;
    const HOUR: u64 = 3600 * 1000;

    fn user(s: u8) -> AccountId {
        AccountKeys::from_seed(&[s; 32]).account_id()
    }

    /// An owned fetched item.
    struct Item {
        hash: MessageHash,
        data: Vec<u8>,
        stored_at: u64,
        expiry: u64,
    }

    impl Item {
        fn new(g: &AccountId, ns: i16, data: &[u8], stored_at: u64) -> Item {
            Item {
                hash: message_hash(g, Namespace(ns), data),
                data: data.to_vec(),
                stored_at,
                expiry: stored_at + KEYS_TTL_MS,
            }
        }
        fn view(&self) -> StoredItem<'_> {
            StoredItem {
                hash: &self.hash,
                data: &self.data,
                stored_at_ms: self.stored_at,
                expiry_ms: self.expiry,
            }
        }
    }

    fn views(items: &[Item]) -> Vec<StoredItem<'_>> {
        items.iter().map(Item::view).collect()
    }

    /// A group: its state, and the bundles and documents published so far.
    struct Fixture {
        st: GroupState,
        rng: ExpandRng,
        bundles: Vec<Item>,
        docs: Vec<Item>,
        /// The newest bundle the admin published.
        held_bundle: Vec<u8>,
    }

    impl Fixture {
        /// A second admin holding the same keys and documents (concurrent
        /// changes, §3.5).
        fn twin(&self) -> GroupState {
            GroupState::restore(
                self.id(),
                Some(GroupKeys::from_seed(&[5; 32])),
                None,
                KeyRing::from_bytes(&self.st.keys().to_bytes().unwrap()).unwrap(),
                &self
                    .st
                    .documents()
                    .map(|d| d.to_bytes().to_vec())
                    .collect::<Vec<_>>(),
            )
            .unwrap()
        }

        fn new() -> Fixture {
            let mut rng = ExpandRng::new([9; 32]);
            let (st, p) =
                GroupState::create(&[5; 32], &user(1), "G", &[user(2)], false, T0, &mut rng)
                    .unwrap();
            let mut f = Fixture {
                st,
                rng,
                bundles: Vec::new(),
                docs: Vec::new(),
                held_bundle: Vec::new(),
            };
            f.record(&p, T0);
            f
        }
        fn id(&self) -> AccountId {
            self.st.group_id()
        }
        fn record(&mut self, p: &Publication, at: u64) {
            let id = self.id();
            if let Some(b) = &p.bundle {
                self.bundles.push(Item::new(&id, 12, b.to_bytes(), at));
                self.held_bundle = b.to_bytes().to_vec();
            }
            self.docs.push(Item::new(&id, 13, p.state.to_bytes(), at));
        }
        fn rename(&mut self, name: &str, at: u64) {
            let p = self.st.rename(name, at, &mut self.rng).unwrap();
            self.record(&p, at);
        }
        fn add(&mut self, who: u8, at: u64) {
            let p = self
                .st
                .add_members(&[user(who)], at, &mut self.rng)
                .unwrap();
            self.record(&p, at);
        }
        /// What the admin holds: its newest bundle and current document.
        fn held(&self) -> Held<'_> {
            Held {
                bundle: Some(&self.held_bundle),
                document: self.st.current_document().map(StateDocument::to_bytes),
            }
        }
        fn plan(&self, now: u64) -> UpkeepPlan {
            plan_upkeep(
                &self.id(),
                &views(&self.bundles),
                &views(&self.docs),
                self.held(),
                now,
                &UpkeepConfig::default(),
            )
        }
    }

    #[test]
    fn extends_the_newest_bundle_and_current_document_below_15_days() {
        let f = Fixture::new();
        // Stored at T0 with 30 days: 15 days left exactly at T0 + 15 days.
        let at_15 = T0 + 15 * DAY;
        assert!(f.plan(at_15).is_empty(), "15 days left: not yet");
        assert!(f.plan(T0).is_empty());
        let p = f.plan(at_15 + 1);
        assert_eq!(
            p.extend,
            {
                let mut v = vec![f.bundles[0].hash.clone(), f.docs[0].hash.clone()];
                v.sort();
                v
            },
            "14.99… days left: both extended"
        );
        assert_eq!(p.extend_to_ms, at_15 + 1 + KEYS_TTL_MS);
        assert!(p.delete.is_empty());
        // After the extension (expiry moved on), nothing is due.
        let mut g = Fixture::new();
        for it in g.bundles.iter_mut().chain(g.docs.iter_mut()) {
            it.expiry = p.extend_to_ms;
        }
        assert!(g.plan(at_15 + 1).is_empty());
        // An already past expiry (a node still returning it) is extended too.
        assert_eq!(f.plan(T0 + 31 * DAY).extend.len(), 2);
    }

    #[test]
    fn older_bundles_are_left_to_expire() {
        let mut f = Fixture::new();
        f.add(3, T0 + DAY);
        assert_eq!(f.bundles.len(), 2);
        let p = f.plan(T0 + 20 * DAY);
        // Generation 1's bundle has 10 days left but is not extended; the
        // newest (stored a day later, 11 days left) and the current doc are.
        assert!(!p.extend.contains(&f.bundles[0].hash));
        assert!(p.extend.contains(&f.bundles[1].hash));
        assert!(p.extend.contains(&f.docs[1].hash));
        assert_eq!(p.extend.len(), 2);
    }

    #[test]
    fn a_replayed_bundle_with_a_fresh_expiry_is_not_taken_for_the_newest() {
        let mut f = Fixture::new();
        f.add(3, T0 + DAY);
        // Generation 1 re-stored later with a long expiry; generation 2 is due.
        f.bundles[0].stored_at = T0 + 19 * DAY;
        f.bundles[0].expiry = T0 + 49 * DAY;
        let p = f.plan(T0 + 20 * DAY);
        assert!(p.extend.contains(&f.bundles[1].hash));
        assert!(!p.extend.contains(&f.bundles[0].hash));
    }

    #[test]
    fn same_generation_tie_keeps_the_smaller_digest_alive() {
        // Two admins issued generation 2 concurrently (§3.5).
        let mut f = Fixture::new();
        let mut twin = f.twin();
        f.add(3, T0 + DAY);
        let p = twin
            .add_members(&[user(4)], T0 + DAY, &mut ExpandRng::new([8; 32]))
            .unwrap();
        let id = f.id();
        f.bundles.push(Item::new(
            &id,
            12,
            p.bundle.as_ref().unwrap().to_bytes(),
            T0 + DAY,
        ));
        let (a, b) = (&f.bundles[1], &f.bundles[2]);
        let digest = |it: &Item| KeyBundle::parse(&it.data, &id).unwrap().digest();
        let winner = if digest(a) < digest(b) { a } else { b };
        let loser = if digest(a) < digest(b) { b } else { a };
        let plan = f.plan(T0 + 20 * DAY);
        assert!(plan.extend.contains(&winner.hash));
        assert!(!plan.extend.contains(&loser.hash));
    }

    #[test]
    fn superseded_documents_are_deleted_after_an_hour_except_each_generations_last() {
        let mut f = Fixture::new(); // v1 (G1) at T0
        f.rename("b", T0 + HOUR); // v2 (G1)
        f.rename("c", T0 + 2 * HOUR); // v3 (G1): highest of generation 1
        f.add(3, T0 + 3 * HOUR); // v4 (G2): current
        assert_eq!(f.docs.len(), 4);
        // v1 was superseded by v2 at T0 + 1 h: deletable from T0 + 2 h.
        let p = f.plan(T0 + 2 * HOUR - 1);
        assert!(p.delete.is_empty());
        let p = f.plan(T0 + 2 * HOUR);
        assert_eq!(p.delete, vec![f.docs[0].hash.clone()]);
        // v2 superseded by v3 at T0 + 2 h: deletable from T0 + 3 h.
        let p = f.plan(T0 + 3 * HOUR - 1);
        assert_eq!(p.delete, vec![f.docs[0].hash.clone()]);
        let mut both = vec![f.docs[0].hash.clone(), f.docs[1].hash.clone()];
        both.sort();
        assert_eq!(f.plan(T0 + 3 * HOUR).delete, both);
        // v3 is generation 1's roster: left to expire even long after v4;
        // v4 is current.
        let p = f.plan(T0 + 10 * DAY);
        assert_eq!(p.delete, both);
        assert!(
            !p.extend.contains(&f.docs[2].hash),
            "roster doc not kept alive"
        );
    }

    #[test]
    fn the_hour_counts_from_the_first_newer_document() {
        let mut f = Fixture::new(); // v1 at T0
        f.rename("b", T0 + HOUR); // v2 at T0 + 1 h
        f.rename("c", T0 + 90 * 60 * 1000); // v3 at T0 + 1.5 h
        // Stored out of order: v3's timestamp says earlier than v2's.
        f.docs[2].stored_at = T0 + 30 * 60 * 1000;
        // v1 is beaten by v2 and v3; the earliest of them counts (T0 + 30 min).
        let p = f.plan(T0 + 90 * 60 * 1000 - 1);
        assert!(p.delete.is_empty());
        let p = f.plan(T0 + 90 * 60 * 1000);
        assert!(p.delete.contains(&f.docs[0].hash));
        // v2 is beaten only by v3 (T0 + 30 min).
        assert!(p.delete.contains(&f.docs[1].hash));
    }

    #[test]
    fn same_version_tie_in_one_generation_keeps_both() {
        // Two admins published v2 concurrently in generation 1: both are the
        // highest version of generation 1, so neither is deleted; the smaller
        // digest is current and kept alive.
        let mut f = Fixture::new();
        let mut twin = f.twin();
        f.rename("mine", T0 + HOUR);
        let p = twin
            .rename("theirs", T0 + HOUR, &mut ExpandRng::new([7; 32]))
            .unwrap();
        let id = f.id();
        f.docs
            .push(Item::new(&id, 13, p.state.to_bytes(), T0 + HOUR));
        let plan = f.plan(T0 + 20 * DAY);
        assert_eq!(plan.delete, vec![f.docs[0].hash.clone()]);
        let d = |i: usize| StateDocument::parse(&f.docs[i].data, &id).unwrap();
        let cur = if d(1).beats(&d(2)) { 1 } else { 2 };
        assert!(plan.extend.contains(&f.docs[cur].hash));
        assert!(!plan.extend.contains(&f.docs[3 - cur].hash));
    }

    #[test]
    fn forged_and_foreign_items_are_ignored() {
        let f = Fixture::new();
        let other = Fixture {
            st: GroupState::create(
                &[6; 32],
                &user(1),
                "other",
                &[],
                false,
                T0,
                &mut ExpandRng::new([1; 32]),
            )
            .unwrap()
            .0,
            rng: ExpandRng::new([2; 32]),
            bundles: Vec::new(),
            docs: Vec::new(),
            held_bundle: Vec::new(),
        };
        let id = f.id();
        let mut junk = Item::new(&id, 13, b"not bencode", T0);
        junk.expiry = T0 + DAY;
        let foreign = Item::new(&id, 13, other.st.current_document().unwrap().to_bytes(), T0);
        let mut docs = views(&f.docs);
        docs.push(junk.view());
        docs.push(foreign.view());
        let plan = plan_upkeep(
            &id,
            &views(&f.bundles),
            &docs,
            Held::default(),
            T0 + 20 * DAY,
            &UpkeepConfig::default(),
        );
        let mut want = vec![f.bundles[0].hash.clone(), f.docs[0].hash.clone()];
        want.sort();
        assert_eq!(plan.extend, want);
        assert!(plan.delete.is_empty());
        // Nothing verified at all: nothing to do.
        assert!(
            plan_upkeep(
                &id,
                &[junk.view()],
                &[junk.view(), foreign.view()],
                Held {
                    bundle: Some(b"junk"),
                    document: Some(&foreign.data),
                },
                T0 + 20 * DAY,
                &UpkeepConfig::default()
            )
            .is_empty()
        );
    }

    #[test]
    fn config_changes_the_thresholds() {
        let mut f = Fixture::new();
        f.rename("b", T0 + 1000);
        let cfg = UpkeepConfig {
            extend_below_ms: KEYS_TTL_MS + 1,
            ttl_ms: KEYS_TTL_MS,
            delete_superseded_after_ms: 0,
        };
        let p = plan_upkeep(
            &f.id(),
            &views(&f.bundles),
            &views(&f.docs),
            f.held(),
            T0 + 1000,
            &cfg,
        );
        let mut want = vec![f.bundles[0].hash.clone(), f.docs[1].hash.clone()];
        want.sort();
        assert_eq!(p.extend, want);
        // v2 is current and generation 1's highest; v1 goes at once.
        assert_eq!(p.delete, vec![f.docs[0].hash.clone()]);
    }

    #[test]
    fn held_items_missing_from_the_swarm_are_stored_again() {
        let mut f = Fixture::new();
        f.add(3, T0 + DAY); // bundle 2, v2
        let plan = f.plan(T0 + 2 * DAY);
        assert!(plan.is_empty());
        assert_eq!(plan.newest_bundle.as_deref(), Some(&f.bundles[1].data[..]));
        // Bundle 2 and v2 expired (an admin offline for 30 days): gone from
        // the swarm; the held copies are stored again, nothing is extended.
        let bundles = views(&f.bundles[..1]);
        let docs = views(&f.docs[..1]);
        let cfg = UpkeepConfig::default();
        let plan = plan_upkeep(&f.id(), &bundles, &docs, f.held(), T0 + 2 * DAY, &cfg);
        assert_eq!(plan.restore_bundle.as_deref(), Some(&f.bundles[1].data[..]));
        assert_eq!(plan.restore_document.as_deref(), Some(&f.docs[1].data[..]));
        assert_eq!(plan.newest_bundle, plan.restore_bundle);
        assert!(plan.extend.is_empty(), "older items are not kept alive");
        // Nothing left at all: both stored again.
        let plan = plan_upkeep(&f.id(), &[], &[], f.held(), T0 + 31 * DAY, &cfg);
        assert!(plan.restore_bundle.is_some() && plan.restore_document.is_some());
        // Another admin published newer ones: nothing to restore, and the
        // newest fetched bundle is what to hold from now on.
        let mut other = Fixture::new();
        other.add(3, T0 + DAY);
        other.add(4, T0 + 2 * DAY); // bundle 3, v3
        let plan = plan_upkeep(
            &f.id(),
            &views(&other.bundles),
            &views(&other.docs),
            f.held(),
            T0 + 3 * DAY,
            &cfg,
        );
        assert!(plan.restore_bundle.is_none() && plan.restore_document.is_none());
        assert_eq!(
            plan.newest_bundle.as_deref(),
            Some(&other.bundles[2].data[..])
        );
        // No held copies: nothing to restore.
        let plan = plan_upkeep(&f.id(), &[], &[], Held::default(), T0, &cfg);
        assert!(plan.is_empty() && plan.newest_bundle.is_none());
    }

    #[test]
    fn polling_cadence_edges() {
        let none = PollTimes::default();
        // First sync: everything.
        let d = due_polls(&none, T0, false, false);
        assert_eq!(
            d,
            DuePolls {
                messages: true,
                keys_state: true,
                removals: true
            }
        );
        // Admins never read −11.
        assert!(!due_polls(&none, T0, true, false).removals);
        let t = PollTimes {
            keys_state_ms: Some(T0),
            removals_ms: Some(T0),
            ..PollTimes::default()
        };
        let d = due_polls(&t, T0 + KEYS_POLL_MS - 1, false, false);
        assert!(d.messages && !d.keys_state && !d.removals);
        assert!(due_polls(&t, T0 + KEYS_POLL_MS, false, false).keys_state);
        assert!(!due_polls(&t, T0 + REMOVALS_POLL_MS - 1, false, false).removals);
        assert!(due_polls(&t, T0 + REMOVALS_POLL_MS, false, false).removals);
        // A clock that went back: read again.
        let d = due_polls(&t, T0 - 1, false, false);
        assert!(d.keys_state && d.removals);
        // A notice or a miss: 12 and 13 at once.
        let prompted = PollTimes {
            keys_prompted: true,
            ..t
        };
        let d = due_polls(&prompted, T0 + 1, false, false);
        assert!(d.keys_state && !d.removals);
        // A refusal: −11 at once.
        assert!(due_polls(&t, T0 + 1, false, true).removals);
        assert!(!due_polls(&t, T0 + 1, true, true).removals);
    }

    #[test]
    fn an_admin_rereads_ten_seconds_after_publishing() {
        let t = PollTimes {
            keys_state_ms: Some(T0),
            published_ms: Some(T0 + 1000),
            ..PollTimes::default()
        };
        let at = T0 + 1000 + REREAD_AFTER_PUBLISH_MS;
        assert!(!due_polls(&t, at - 1, true, false).keys_state);
        assert!(due_polls(&t, at, true, false).keys_state);
        // Once read after that point, the regular cadence resumes.
        let read = PollTimes {
            keys_state_ms: Some(at),
            ..t
        };
        assert!(!due_polls(&read, at + 1, true, false).keys_state);
        assert!(due_polls(&read, at + KEYS_POLL_MS, true, false).keys_state);
    }
}
