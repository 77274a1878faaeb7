//! [`PathManager`]: the client's guards, paths, request planning and failure
//! handling (`onion.md` §10.2–10.6; registry refresh and bootstrap of
//! `swarms.md` §3.3).
//!
//! # State
//!
//! Two slots, one per guard. A slot holds its guard (or the search for one),
//! its ready path `[guard, hop2, hop3]`, and possibly a new path under test.
//!
//! - **Guards (§10.2).** An empty slot picks a candidate uniformly from the
//!   pool, avoiding the other guard's /24 and every node of the other path,
//!   and asks the driver to test it ([`Action::TestGuard`]). After
//!   [`GUARD_ATTEMPTS`] failed candidates it waits [`backoff_ms`]`(round)`.
//!   A guard is replaced when it leaves the registry, is marked bad, or is
//!   older than 60 days; age rotations happen one guard at a time, and only
//!   while the other slot holds a guard.
//! - **Paths (§10.3).** hop2 and hop3 are drawn uniformly from the pool,
//!   excluding both guards (and guard candidates), every node of the other
//!   slot's paths, and anything in the /24 of a node already on this path
//!   (with the §10.1 fallbacks). A new path is tested by an `info` through
//!   it ([`Action::TestPath`]); failed tests back off like guard rounds. A
//!   path is rebuilt after [`PATH_FAILURE_THRESHOLD`] failures, when one of
//!   its nodes is marked bad or leaves the registry, and when it is older
//!   than 60 minutes and idle (no request planned on it for
//!   [`PathConfig::path_idle_ms`]); an old path stays in use while its
//!   replacement is tested.
//! - **Hop replacement.** A `502` "Next node not found" naming hop 2 or hop 3
//!   replaces that hop in place (no separate test: the retry is the test).
//! - **Bootstrap (swarms §3.3).** With fewer than
//!   [`PathConfig::min_usable_nodes`] usable nodes, or when every path
//!   attempt (tests and requests) has failed for
//!   [`PathConfig::bootstrap_after_ms`], the manager asks for a bootstrap from
//!   the seed nodes, at most once per `bootstrap_after_ms`.
//! - **Registry refresh (swarms §3.3).** Every
//!   [`PathConfig::registry_refresh_ms`], and when a reply reports a higher
//!   epoch ([`PathManager::handle_epoch_seen`]); asked again after a minute
//!   if no registry arrives.
//!
//! A test whose result never arrives is counted as failed after
//! [`PathConfig::test_stale_ms`], so that a lost reply cannot wedge a slot.

use std::collections::{BTreeSet, VecDeque};
use std::fmt;

use umbra_crypto::Ed25519Public;

use super::clock::NetworkClock;
use super::guard::{GuardState, SavedGuard};
use super::pool::{NodePool, Spread, pick, uniform};
use super::request::{Decision, Destination, Outcome, Pending, Plan, RequestKind, RequestState};
use super::{
    GUARD_ATTEMPTS, GUARD_COUNT, MAX_TRIES, PATH_FAILURE_THRESHOLD, PathError, backoff_ms,
};
use crate::swarm::{NodeRecord, RegistryDocument};

/// How long the manager waits before asking again for a registry refresh that
/// did not arrive.
const REFRESH_RETRY_MS: u64 = 60_000;

/// The timings of §10 and swarms §3.3. [`Default`] gives the spec's values;
/// a test network may shorten them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PathConfig {
    /// How long a bad mark lasts (1 hour).
    pub bad_mark_ms: u64,
    /// Guard lifetime before rotation (60 days).
    pub guard_lifetime_ms: u64,
    /// Path age after which an idle path is rebuilt (60 minutes).
    pub path_lifetime_ms: u64,
    /// A path is idle when no request was planned on it for this long (35 s,
    /// the longest client request timeout of §10.7).
    pub path_idle_ms: u64,
    /// Registry refresh period (1 hour).
    pub registry_refresh_ms: u64,
    /// Fewer usable nodes than this asks for a bootstrap (8).
    pub min_usable_nodes: usize,
    /// Every path attempt failing for this long asks for a bootstrap (2 min).
    pub bootstrap_after_ms: u64,
    /// A guard or path test unanswered for this long counts as failed (30 s,
    /// three times the 10 s test timeout).
    pub test_stale_ms: u64,
}

impl Default for PathConfig {
    fn default() -> Self {
        PathConfig {
            bad_mark_ms: 60 * 60 * 1000,
            guard_lifetime_ms: 60 * 24 * 60 * 60 * 1000,
            path_lifetime_ms: 60 * 60 * 1000,
            path_idle_ms: 35_000,
            registry_refresh_ms: 60 * 60 * 1000,
            min_usable_nodes: 8,
            bootstrap_after_ms: 2 * 60 * 1000,
            test_stale_ms: 30_000,
        }
    }
}

impl PathConfig {
    /// The spec's values with `min_usable_nodes` replaced (small test
    /// networks).
    pub fn with_min_usable_nodes(mut self, n: usize) -> Self {
        self.min_usable_nodes = n;
        self
    }
}

/// Identifies one built path; results for a path that has since been
/// replaced are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PathId(u64);

impl fmt::Display for PathId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "path#{}", self.0)
    }
}

/// Work the driver performs for the manager ([`PathManager::poll_action`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
// Actions are handed out one at a time; boxing the records would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Action {
    /// Fetch the registry from the built-in seed nodes with a direct
    /// `get_registry`, then feed it to [`PathManager::handle_registry`].
    Bootstrap,
    /// Fetch the registry with `get_registry` through an onion request to any
    /// node (e.g. [`PathManager::plan_storage_request`] over a few pool
    /// nodes), then feed it to [`PathManager::handle_registry`].
    RefreshRegistry,
    /// Send a direct `info` to `node` (TLS pinned to its key, 10 s timeout) and
    /// report with [`PathManager::handle_guard_test`].
    TestGuard {
        /// The guard candidate.
        node: NodeRecord,
    },
    /// Send `info` to `destination` through `path` (10 s) and report with
    /// [`PathManager::handle_path_test`].
    TestPath {
        /// The path's ID.
        id: PathId,
        /// `[guard, hop2, hop3]`.
        path: [NodeRecord; 3],
        /// A node that is not on the path.
        destination: NodeRecord,
    },
}

/// News for the driver ([`PathManager::poll_event`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The guard set changed: persist [`PathManager::guard_state`].
    GuardsChanged,
    /// A node was marked bad: drop it from cached swarms.
    NodeMarkedBad(Ed25519Public),
}

/// The result of a guard test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardTest {
    /// `info` answered; `node_time_ms` is its `t`, which seeds the clock
    /// offset (the local receive time is `now_ms`).
    Reachable {
        /// The node's `t`.
        node_time_ms: u64,
    },
    /// Connection, TLS, timeout or HTTP failure.
    Unreachable,
}

#[derive(Debug, Clone)]
struct ActiveGuard {
    record: NodeRecord,
    added_ms: u64,
}

#[derive(Debug, Clone, Default)]
struct Search {
    /// The candidate under test and when its test started.
    testing: Option<(NodeRecord, u64)>,
    /// Failed candidates, not tried again until every candidate failed.
    tried: BTreeSet<Ed25519Public>,
    /// Failed candidates in this round.
    attempts: u32,
    /// Rounds given up so far (the backoff exponent).
    rounds: u32,
    backoff_until_ms: u64,
    /// The guard this search replaces, never picked again by it.
    retired: Option<Ed25519Public>,
}

#[derive(Debug, Clone)]
enum GuardSlot {
    /// Loaded from the guard state, not yet found in a registry.
    Saved(SavedGuard),
    Active(ActiveGuard),
    Searching(Search),
}

#[derive(Debug, Clone)]
struct ReadyPath {
    id: PathId,
    nodes: [NodeRecord; 3],
    built_ms: u64,
    last_used_ms: u64,
    failures: u32,
}

#[derive(Debug, Clone)]
struct TestingPath {
    id: PathId,
    nodes: [NodeRecord; 3],
    started_ms: u64,
}

#[derive(Debug, Clone)]
struct Slot {
    guard: GuardSlot,
    ready: Option<ReadyPath>,
    testing: Option<TestingPath>,
    /// Consecutive failed path tests (the backoff exponent).
    test_failures: u32,
    test_backoff_until_ms: u64,
}

impl Slot {
    fn new(guard: GuardSlot) -> Self {
        Slot {
            guard,
            ready: None,
            testing: None,
            test_failures: 0,
            test_backoff_until_ms: 0,
        }
    }

    fn guard_record(&self) -> Option<&NodeRecord> {
        match &self.guard {
            GuardSlot::Active(g) => Some(&g.record),
            _ => None,
        }
    }

    /// Keys this slot reserves: its guard (or candidate, or saved guard) and
    /// the nodes of its paths.
    fn reserved(&self) -> BTreeSet<Ed25519Public> {
        let mut out = BTreeSet::new();
        match &self.guard {
            GuardSlot::Saved(s) => {
                out.insert(s.ed25519);
            }
            GuardSlot::Active(g) => {
                out.insert(g.record.ed25519);
            }
            GuardSlot::Searching(s) => {
                if let Some((c, _)) = &s.testing {
                    out.insert(c.ed25519);
                }
            }
        }
        for nodes in self.path_nodes() {
            out.extend(nodes.iter().map(|n| n.ed25519));
        }
        out
    }

    /// The records the other slot's guard must keep its /24 apart from.
    fn guard_like(&self) -> Option<&NodeRecord> {
        match &self.guard {
            GuardSlot::Active(g) => Some(&g.record),
            GuardSlot::Searching(Search {
                testing: Some((c, _)),
                ..
            }) => Some(c),
            _ => None,
        }
    }

    fn path_nodes(&self) -> impl Iterator<Item = &[NodeRecord; 3]> {
        self.ready
            .iter()
            .map(|p| &p.nodes)
            .chain(self.testing.iter().map(|t| &t.nodes))
    }

    fn drop_paths(&mut self) {
        self.ready = None;
        self.testing = None;
        self.test_failures = 0;
        self.test_backoff_until_ms = 0;
    }
}

/// The client's path management state machine. See the [module
/// docs](super) for how a driver uses it.
#[derive(Debug, Clone)]
pub struct PathManager {
    config: PathConfig,
    pool: NodePool,
    slots: [Slot; GUARD_COUNT],
    clock: NetworkClock,
    events: VecDeque<Event>,
    next_path_id: u64,
    epoch: Option<u64>,
    /// When the current node set was loaded.
    loaded_ms: Option<u64>,
    /// The highest epoch a reply reported.
    seen_epoch: u64,
    refresh_asked_ms: Option<u64>,
    bootstrap_asked_ms: Option<u64>,
    /// Since when every path attempt has failed (`None` after a success).
    failing_since_ms: Option<u64>,
}

impl PathManager {
    /// A manager with no nodes yet, resuming the persisted `guards` (which
    /// become active once a registry lists them).
    pub fn new(config: PathConfig, guards: Option<&GuardState>) -> Self {
        let mut saved = guards
            .map(|g| g.guards().iter().copied())
            .into_iter()
            .flatten();
        let slots = std::array::from_fn(|_| {
            Slot::new(match saved.next() {
                Some(g) => GuardSlot::Saved(g),
                None => GuardSlot::Searching(Search::default()),
            })
        });
        PathManager {
            config,
            pool: NodePool::default(),
            slots,
            clock: NetworkClock::default(),
            events: VecDeque::new(),
            next_path_id: 0,
            epoch: None,
            loaded_ms: None,
            seen_epoch: 0,
            refresh_asked_ms: None,
            bootstrap_asked_ms: None,
            failing_since_ms: None,
        }
    }

    // ---- getters -------------------------------------------------------------

    /// The guards to persist (active guards and saved ones not yet resolved).
    pub fn guard_state(&self) -> GuardState {
        let guards = self
            .slots
            .iter()
            .filter_map(|s| match &s.guard {
                GuardSlot::Saved(g) => Some(*g),
                GuardSlot::Active(g) => Some(SavedGuard {
                    ed25519: g.record.ed25519,
                    added_ms: g.added_ms,
                }),
                GuardSlot::Searching(_) => None,
            })
            .collect();
        // Slots never hold the same key twice.
        GuardState::new(guards).unwrap_or_default()
    }

    /// The active guards, in slot order.
    pub fn guards(&self) -> Vec<&NodeRecord> {
        self.slots.iter().filter_map(Slot::guard_record).collect()
    }

    /// The ready paths, in slot order.
    pub fn paths(&self) -> Vec<(PathId, &[NodeRecord; 3])> {
        self.slots
            .iter()
            .filter_map(|s| s.ready.as_ref().map(|p| (p.id, &p.nodes)))
            .collect()
    }

    /// The node pool (records, bad marks, failure counters).
    pub fn pool(&self) -> &NodePool {
        &self.pool
    }

    /// The registry epoch in use (`None` before a registry, or after a seed
    /// list).
    pub fn epoch(&self) -> Option<u64> {
        self.epoch
    }

    /// The network clock.
    pub fn clock(&self) -> &NetworkClock {
        &self.clock
    }

    /// `local_now_ms` plus the network clock offset (§10.5): the time to put
    /// in requests and messages.
    pub fn network_now(&self, local_now_ms: u64) -> u64 {
        self.clock.network_now(local_now_ms)
    }

    /// True when swarms §3.3 asks for a bootstrap: too few usable nodes, or
    /// every path attempt failed for `bootstrap_after_ms`.
    pub fn needs_bootstrap(&self, now_ms: u64) -> bool {
        self.pool.usable_count(now_ms) < self.config.min_usable_nodes
            || self.failing_too_long(now_ms)
    }

    /// True when every path attempt has failed for `bootstrap_after_ms`.
    fn failing_too_long(&self, now_ms: u64) -> bool {
        self.failing_since_ms
            .is_some_and(|t| now_ms.saturating_sub(t) >= self.config.bootstrap_after_ms)
    }

    // ---- inputs --------------------------------------------------------------

    /// Feeds a verified registry. Documents older than the epoch in use are
    /// ignored (returns false). Guards and paths through nodes that left or
    /// changed are replaced; saved guards are resolved.
    pub fn handle_registry(&mut self, doc: &RegistryDocument, now_ms: u64) -> bool {
        if self.epoch.is_some_and(|e| doc.epoch() < e) {
            return false;
        }
        self.epoch = Some(doc.epoch());
        self.set_nodes(doc.nodes(), now_ms);
        true
    }

    /// Feeds a plain list of nodes (the seed nodes, before any registry).
    pub fn handle_node_list(&mut self, nodes: &[NodeRecord], now_ms: u64) {
        self.epoch = None;
        self.set_nodes(nodes, now_ms);
    }

    /// A reply (`info`, `get_swarm`, a `421` body) reported registry epoch
    /// `epoch`; a higher epoch than ours asks for a refresh.
    pub fn handle_epoch_seen(&mut self, epoch: u64) {
        if epoch > self.seen_epoch {
            self.seen_epoch = epoch;
        }
    }

    /// Reports the test of guard candidate `node`. Returns false when no such
    /// test is outstanding (a late or unknown result, ignored).
    pub fn handle_guard_test(
        &mut self,
        node: &Ed25519Public,
        result: GuardTest,
        now_ms: u64,
    ) -> bool {
        let Some(i) = self.slots.iter().position(|s| {
            matches!(&s.guard, GuardSlot::Searching(Search { testing: Some((c, _)), .. }) if c.ed25519 == *node)
        }) else {
            return false;
        };
        let record = self.pool.get(node).cloned();
        match (result, record) {
            (GuardTest::Reachable { node_time_ms }, Some(record))
                if !self.pool.is_bad(node, now_ms) =>
            {
                self.clock.add_sample(node_time_ms, now_ms);
                if let Some(slot) = self.slots.get_mut(i) {
                    slot.guard = GuardSlot::Active(ActiveGuard {
                        record,
                        added_ms: now_ms,
                    });
                    slot.drop_paths();
                }
                self.events.push_back(Event::GuardsChanged);
            }
            _ => self.guard_test_failed(i, now_ms),
        }
        true
    }

    /// Reports the test of path `id`, classified like a request reply (any
    /// decrypted reply means the path works). Returns false for a path that is
    /// no longer under test.
    pub fn handle_path_test(&mut self, id: PathId, outcome: &Outcome, now_ms: u64) -> bool {
        let Some(i) = self
            .slots
            .iter()
            .position(|s| s.testing.as_ref().is_some_and(|t| t.id == id))
        else {
            return false;
        };
        let Some(test) = self.slots.get_mut(i).and_then(|s| s.testing.take()) else {
            return false;
        };
        if outcome.path_worked() {
            self.failing_since_ms = None;
            for n in &test.nodes {
                self.pool.record_success(&n.ed25519);
            }
            if let Some(slot) = self.slots.get_mut(i) {
                slot.ready = Some(ReadyPath {
                    id: test.id,
                    nodes: test.nodes,
                    built_ms: now_ms,
                    last_used_ms: now_ms,
                    failures: 0,
                });
                slot.test_failures = 0;
                slot.test_backoff_until_ms = 0;
            }
            return true;
        }
        match outcome {
            Outcome::GuardUnreachable => self.node_failure(&test.nodes[0].ed25519, now_ms),
            Outcome::NextNodeNotFound(x) => self.node_failure(x, now_ms),
            _ => {}
        }
        self.path_test_failed(i, now_ms);
        true
    }

    /// Replaces the clock samples with the `(node_time_ms,
    /// local_receive_ms)` answers of a resync (§10.5).
    pub fn handle_clock_resync(&mut self, samples: &[(u64, u64)]) {
        self.clock.resync(samples);
    }

    // ---- outputs -------------------------------------------------------------

    /// The next piece of work, if any. Call until `None`, and again whenever a
    /// result arrives or [`PathManager::poll_timeout`] passes.
    pub fn poll_action(
        &mut self,
        now_ms: u64,
        draw: &mut impl FnMut(u64) -> u64,
    ) -> Option<Action> {
        self.expire(now_ms);
        if self.needs_bootstrap(now_ms)
            && self
                .bootstrap_asked_ms
                .is_none_or(|t| now_ms.saturating_sub(t) >= self.config.bootstrap_after_ms)
        {
            self.bootstrap_asked_ms = Some(now_ms);
            return Some(Action::Bootstrap);
        }
        if self.refresh_due(now_ms) {
            self.refresh_asked_ms = Some(now_ms);
            return Some(Action::RefreshRegistry);
        }
        for i in 0..GUARD_COUNT {
            if let Some(a) = self.next_guard_test(i, now_ms, draw) {
                return Some(a);
            }
        }
        for i in 0..GUARD_COUNT {
            if let Some(a) = self.next_path_test(i, now_ms, draw) {
                return Some(a);
            }
        }
        None
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The earliest local time after `now_ms` at which
    /// [`PathManager::poll_action`] may have new work (backoffs, expiries,
    /// rotations, refreshes), if any.
    pub fn poll_timeout(&self, now_ms: u64) -> Option<u64> {
        let c = &self.config;
        let mut times: Vec<u64> = Vec::new();
        times.extend(self.pool.next_expiry());
        if let Some(t) = self.loaded_ms {
            let due = if self.epoch.is_none_or(|e| self.seen_epoch > e) {
                t
            } else {
                t.saturating_add(c.registry_refresh_ms)
            };
            times.push(
                self.refresh_asked_ms
                    .map_or(due, |a| due.max(a.saturating_add(REFRESH_RETRY_MS))),
            );
        }
        if let Some(t) = self.failing_since_ms {
            times.push(t.saturating_add(c.bootstrap_after_ms));
        }
        if let Some(t) = self.bootstrap_asked_ms {
            times.push(t.saturating_add(c.bootstrap_after_ms));
        }
        for s in &self.slots {
            match &s.guard {
                GuardSlot::Active(g) => times.push(g.added_ms.saturating_add(c.guard_lifetime_ms)),
                GuardSlot::Searching(search) => {
                    times.push(search.backoff_until_ms);
                    if let Some((_, started)) = &search.testing {
                        times.push(started.saturating_add(c.test_stale_ms));
                    }
                }
                GuardSlot::Saved(_) => {}
            }
            times.push(s.test_backoff_until_ms);
            if let Some(t) = &s.testing {
                times.push(t.started_ms.saturating_add(c.test_stale_ms));
            }
            if let Some(p) = &s.ready {
                times.push(
                    p.built_ms
                        .saturating_add(c.path_lifetime_ms)
                        .max(p.last_used_ms.saturating_add(c.path_idle_ms)),
                );
            }
        }
        times.into_iter().filter(|&t| t > now_ms).min()
    }

    // ---- requests ------------------------------------------------------------

    /// Plans a storage RPC to a member of the target swarm (§10.4): the
    /// destination is a random member on neither path and in no /24 of the
    /// chosen path's nodes (fallbacks: distinct addresses, then any member on
    /// neither path, then any member not on the chosen path); the path is
    /// random among those compatible with it.
    pub fn plan_storage_request(
        &mut self,
        target_swarm_members: &[NodeRecord],
        now_ms: u64,
        draw: &mut impl FnMut(u64) -> u64,
    ) -> Result<Plan, PathError> {
        let request = RequestState::new(RequestKind::Storage {
            members: target_swarm_members.to_vec(),
        });
        self.plan(request, 0, None, now_ms, draw)
    }

    /// Plans a request to a server: any ready path, chosen at random.
    pub fn plan_server_request(
        &mut self,
        now_ms: u64,
        draw: &mut impl FnMut(u64) -> u64,
    ) -> Result<Plan, PathError> {
        self.plan(
            RequestState::new(RequestKind::Server),
            0,
            None,
            now_ms,
            draw,
        )
    }

    /// Applies the §10.6 table to what one try of `plan` observed: updates
    /// the failure counters (3 → node bad, 3 → path rebuilt, reset on
    /// success) and says what to do next. A request is tried at most
    /// [`MAX_TRIES`] times; retry *n* waits [`backoff_ms`]`(n)`.
    pub fn handle_outcome(
        &mut self,
        plan: Plan,
        outcome: Outcome,
        now_ms: u64,
        draw: &mut impl FnMut(u64) -> u64,
    ) -> Decision {
        let Plan {
            path,
            destination,
            attempt,
            slot,
            path_id,
            mut request,
        } = plan;
        let dest_key = match &destination {
            Destination::Node(n) => Some(n.ed25519),
            Destination::Server => None,
        };
        // Hop 3 reporting an unknown destination means the path itself works.
        let path_worked = outcome.path_worked()
            || matches!(&outcome, Outcome::NextNodeNotFound(x) if Some(*x) == dest_key);
        if path_worked {
            self.failing_since_ms = None;
        } else {
            self.failing_since_ms.get_or_insert(now_ms);
        }
        let is_storage = matches!(request.kind, RequestKind::Storage { .. });
        let next = attempt.saturating_add(1);
        let fail_exhausted = |o: &Outcome| {
            Decision::Fail(PathError::Exhausted {
                tries: next,
                last: o.failure_kind().unwrap_or(super::FailureKind::Relay),
            })
        };

        match &outcome {
            Outcome::Success { node_time_ms } => {
                for n in path.iter().chain(destination_iter(&destination)) {
                    self.pool.record_success(&n.ed25519);
                }
                if let Some(p) = self.ready_path_mut(slot, path_id) {
                    p.failures = 0;
                }
                if let (true, Some(t)) = (is_storage, node_time_ms) {
                    self.clock.add_sample(*t, now_ms);
                }
                Decision::Done
            }
            Outcome::GuardUnreachable => {
                self.node_failure(&path[0].ed25519, now_ms);
                self.path_failure(slot, path_id);
                if next >= MAX_TRIES {
                    return fail_exhausted(&outcome);
                }
                self.retry(request, next, Some(slot), now_ms, draw)
            }
            Outcome::NextNodeNotFound(x) => {
                self.node_failure(x, now_ms);
                let hop = path.iter().skip(1).position(|n| n.ed25519 == *x);
                let avoid = if let Some(h) = hop {
                    self.replace_hop(slot, path_id, h + 1, now_ms, draw);
                    None
                } else if dest_key == Some(*x) {
                    request.excluded.insert(*x);
                    None
                } else {
                    // Names no node of ours: the path misbehaves.
                    self.path_failure(slot, path_id);
                    Some(slot)
                };
                if next >= MAX_TRIES {
                    return fail_exhausted(&outcome);
                }
                self.retry(request, next, avoid, now_ms, draw)
            }
            Outcome::RelayFailure => {
                self.path_failure(slot, path_id);
                if next >= MAX_TRIES {
                    return fail_exhausted(&outcome);
                }
                self.retry(request, next, Some(slot), now_ms, draw)
            }
            Outcome::RelayRejected => {
                self.path_failure(slot, path_id);
                if request.relay_rejections >= 1 {
                    return Decision::Fail(PathError::RelayRejected);
                }
                if next >= MAX_TRIES {
                    return fail_exhausted(&outcome);
                }
                request.relay_rejections += 1;
                Decision::RefreshRegistry(Pending {
                    request,
                    attempt: next,
                    avoid_slot: Some(slot),
                })
            }
            Outcome::Misdirected { snodes } => {
                let RequestKind::Storage { members } = &mut request.kind else {
                    return Decision::Fail(PathError::Rejected { status: 421 });
                };
                request.misdirected += 1;
                if request.misdirected >= 3 {
                    return Decision::Fail(PathError::Misdirected);
                }
                if next >= MAX_TRIES {
                    return fail_exhausted(&outcome);
                }
                let listed: Vec<NodeRecord> = snodes
                    .iter()
                    .filter_map(|k| self.pool.get(k).cloned())
                    .collect();
                if request.misdirected == 1 && !listed.is_empty() {
                    *members = listed.clone();
                    request.excluded.clear();
                    match self.plan(request, next, None, now_ms, draw) {
                        Ok(plan) => Decision::Retry {
                            delay_ms: backoff_ms(next),
                            plan: Box::new(plan),
                            swarm: Some(listed),
                        },
                        Err(e) => Decision::Fail(e),
                    }
                } else {
                    // No usable swarm in the body counts as the first step.
                    request.misdirected = 2;
                    Decision::RefreshRegistry(Pending {
                        request,
                        attempt: next,
                        avoid_slot: None,
                    })
                }
            }
            Outcome::ClockRejected => {
                if request.clock_resyncs >= 1 {
                    return Decision::Fail(PathError::ClockRejected);
                }
                if next >= MAX_TRIES {
                    return fail_exhausted(&outcome);
                }
                request.clock_resyncs += 1;
                let nodes = self.resync_nodes(now_ms, draw);
                Decision::ResyncClock {
                    nodes,
                    pending: Pending {
                        request,
                        attempt: next,
                        avoid_slot: None,
                    },
                }
            }
            Outcome::DestinationFailure { status } => {
                let Some(dest) = dest_key else {
                    return Decision::Fail(PathError::Rejected { status: *status });
                };
                self.node_failure(&dest, now_ms);
                request.excluded.insert(dest);
                if next >= MAX_TRIES {
                    return fail_exhausted(&outcome);
                }
                self.retry(request, next, None, now_ms, draw)
            }
            Outcome::DestinationFull => {
                // A full member is not a failing one: no failure is counted;
                // another member takes the store. With none left (or only a
                // server destination) the caller sees the `507` itself.
                const FULL: PathError = PathError::Rejected { status: 507 };
                let (Some(dest), RequestKind::Storage { .. }) = (dest_key, &request.kind) else {
                    return Decision::Fail(FULL);
                };
                request.excluded.insert(dest);
                if next >= MAX_TRIES {
                    return Decision::Fail(FULL);
                }
                match self.retry(request, next, None, now_ms, draw) {
                    Decision::Fail(PathError::NoDestination) => Decision::Fail(FULL),
                    d => d,
                }
            }
            Outcome::Rejected { status } => Decision::Fail(PathError::Rejected { status: *status }),
        }
    }

    /// Plans the retry of a [`Pending`] request once the driver did what the
    /// decision asked. `members` replaces the target swarm (after a registry
    /// refresh); `None` keeps it.
    pub fn resume(
        &mut self,
        mut pending: Pending,
        members: Option<&[NodeRecord]>,
        now_ms: u64,
        draw: &mut impl FnMut(u64) -> u64,
    ) -> Decision {
        if let (Some(new), RequestKind::Storage { members }) = (members, &mut pending.request.kind)
        {
            *members = new.to_vec();
            pending.request.excluded.clear();
        }
        self.retry(
            pending.request,
            pending.attempt,
            pending.avoid_slot,
            now_ms,
            draw,
        )
    }

    // ---- internals: requests ---------------------------------------------------

    fn retry(
        &mut self,
        request: RequestState,
        attempt: u32,
        avoid_slot: Option<usize>,
        now_ms: u64,
        draw: &mut dyn FnMut(u64) -> u64,
    ) -> Decision {
        // A request asks for a bootstrap at most once.
        if !request.bootstrapped && self.failing_too_long(now_ms) {
            return self.bootstrap_decision(request, attempt, now_ms);
        }
        match self.plan(request.clone(), attempt, avoid_slot, now_ms, draw) {
            Ok(plan) => Decision::Retry {
                delay_ms: backoff_ms(attempt),
                plan: Box::new(plan),
                swarm: None,
            },
            Err(PathError::NoPath) if !request.bootstrapped && self.needs_bootstrap(now_ms) => {
                self.bootstrap_decision(request, attempt, now_ms)
            }
            Err(e) => Decision::Fail(e),
        }
    }

    fn bootstrap_decision(
        &mut self,
        mut request: RequestState,
        attempt: u32,
        now_ms: u64,
    ) -> Decision {
        self.bootstrap_asked_ms = Some(now_ms);
        request.bootstrapped = true;
        Decision::Bootstrap(Pending {
            request,
            attempt,
            avoid_slot: None,
        })
    }

    fn plan(
        &mut self,
        request: RequestState,
        attempt: u32,
        avoid_slot: Option<usize>,
        now_ms: u64,
        draw: &mut dyn FnMut(u64) -> u64,
    ) -> Result<Plan, PathError> {
        let ready: Vec<usize> = (0..GUARD_COUNT)
            .filter(|&i| self.slots.get(i).is_some_and(|s| s.ready.is_some()))
            .collect();
        if ready.is_empty() {
            return Err(PathError::NoPath);
        }
        let preferred: Vec<usize> = ready
            .iter()
            .copied()
            .filter(|&i| Some(i) != avoid_slot)
            .collect();
        let preferred = if preferred.is_empty() {
            ready.clone()
        } else {
            preferred
        };
        let (slot, destination) = match &request.kind {
            RequestKind::Server => {
                let i = preferred
                    .get(uniform(draw, preferred.len()))
                    .copied()
                    .ok_or(PathError::NoPath)?;
                (i, Destination::Server)
            }
            RequestKind::Storage { members } => {
                let candidates: Vec<&NodeRecord> = members
                    .iter()
                    .filter(|m| {
                        !request.excluded.contains(&m.ed25519)
                            && !self.pool.is_bad(&m.ed25519, now_ms)
                    })
                    .collect();
                if candidates.is_empty() {
                    return Err(PathError::NoDestination);
                }
                let found = self
                    .choose_destination(&candidates, &preferred, draw)
                    .or_else(|| self.choose_destination(&candidates, &ready, draw));
                let (i, d) = found.ok_or(PathError::NoDestination)?;
                (i, Destination::Node(d))
            }
        };
        let p = self
            .slots
            .get_mut(slot)
            .and_then(|s| s.ready.as_mut())
            .ok_or(PathError::NoPath)?;
        p.last_used_ms = now_ms;
        Ok(Plan {
            path: p.nodes.clone(),
            destination,
            attempt,
            slot,
            path_id: p.id,
            request,
        })
    }

    /// §10.4: a random destination among `candidates` compatible with one of
    /// the ready paths of `slots`, then a random compatible path.
    fn choose_destination(
        &self,
        candidates: &[&NodeRecord],
        slots: &[usize],
        draw: &mut dyn FnMut(u64) -> u64,
    ) -> Option<(usize, NodeRecord)> {
        let path_of = |i: usize| self.slots.get(i).and_then(|s| s.ready.as_ref());
        let on_any_path: BTreeSet<Ed25519Public> = self
            .slots
            .iter()
            .filter_map(|s| s.ready.as_ref())
            .flat_map(|p| p.nodes.iter().map(|n| n.ed25519))
            .collect();
        let off_paths: Vec<&NodeRecord> = candidates
            .iter()
            .copied()
            .filter(|c| !on_any_path.contains(&c.ed25519))
            .collect();
        for level in Spread::LEVELS {
            let options: Vec<(&NodeRecord, Vec<usize>)> = off_paths
                .iter()
                .map(|&c| {
                    let compatible = slots
                        .iter()
                        .copied()
                        .filter(|&i| {
                            path_of(i)
                                .is_some_and(|p| p.nodes.iter().all(|n| !level.conflicts(c, n)))
                        })
                        .collect();
                    (c, compatible)
                })
                .filter(|(_, s): &(_, Vec<usize>)| !s.is_empty())
                .collect();
            if let Some((dest, compatible)) = options.get(uniform(draw, options.len())) {
                let i = compatible.get(uniform(draw, compatible.len()))?;
                return Some((*i, (*dest).clone()));
            }
        }
        // Tiny networks: any member not on the chosen path.
        let i = *slots.get(uniform(draw, slots.len()))?;
        let path = path_of(i)?;
        let rest: Vec<&NodeRecord> = candidates
            .iter()
            .copied()
            .filter(|c| path.nodes.iter().all(|n| n.ed25519 != c.ed25519))
            .collect();
        let dest = rest.get(uniform(draw, rest.len()))?;
        Some((i, (*dest).clone()))
    }

    /// Two random usable nodes for a clock resync, off the paths when possible.
    fn resync_nodes(&self, now_ms: u64, draw: &mut dyn FnMut(u64) -> u64) -> Vec<NodeRecord> {
        let on_paths: BTreeSet<Ed25519Public> =
            self.slots.iter().flat_map(Slot::reserved).collect();
        let usable = self.pool.usable(now_ms);
        let mut cands: Vec<&NodeRecord> = usable
            .iter()
            .copied()
            .filter(|n| !on_paths.contains(&n.ed25519))
            .collect();
        if cands.len() < 2 {
            cands = usable;
        }
        let mut out = Vec::new();
        while out.len() < 2 && !cands.is_empty() {
            let i = uniform(draw, cands.len());
            out.push(cands.swap_remove(i).clone());
        }
        out
    }

    // ---- internals: failure counters -------------------------------------------

    fn ready_path_mut(&mut self, slot: usize, id: PathId) -> Option<&mut ReadyPath> {
        self.slots
            .get_mut(slot)
            .and_then(|s| s.ready.as_mut())
            .filter(|p| p.id == id)
    }

    /// One failure against path `id` of `slot`; at the threshold it is
    /// dropped and rebuilt.
    fn path_failure(&mut self, slot: usize, id: PathId) {
        let Some(p) = self.ready_path_mut(slot, id) else {
            return;
        };
        p.failures = p.failures.saturating_add(1);
        if p.failures >= PATH_FAILURE_THRESHOLD
            && let Some(s) = self.slots.get_mut(slot)
        {
            s.ready = None;
        }
    }

    /// One failure against node `key`; at the threshold it is marked bad.
    fn node_failure(&mut self, key: &Ed25519Public, now_ms: u64) {
        if self
            .pool
            .record_failure(key, now_ms, self.config.bad_mark_ms)
        {
            self.on_node_bad(key);
        }
    }

    /// A node was marked bad: drop it from guards and paths.
    fn on_node_bad(&mut self, key: &Ed25519Public) {
        self.events.push_back(Event::NodeMarkedBad(*key));
        let mut guards_changed = false;
        for slot in &mut self.slots {
            if slot.guard_record().is_some_and(|g| g.ed25519 == *key) {
                slot.guard = GuardSlot::Searching(Search {
                    retired: Some(*key),
                    ..Search::default()
                });
                slot.drop_paths();
                guards_changed = true;
                continue;
            }
            if slot
                .ready
                .as_ref()
                .is_some_and(|p| p.nodes.iter().any(|n| n.ed25519 == *key))
            {
                slot.ready = None;
            }
            if slot
                .testing
                .as_ref()
                .is_some_and(|p| p.nodes.iter().any(|n| n.ed25519 == *key))
            {
                slot.testing = None;
            }
        }
        if guards_changed {
            self.events.push_back(Event::GuardsChanged);
        }
    }

    /// Replaces hop `hop` (1 or 2) of path `id` after a `502`; drops the path
    /// if no replacement exists.
    fn replace_hop(
        &mut self,
        slot: usize,
        id: PathId,
        hop: usize,
        now_ms: u64,
        draw: &mut dyn FnMut(u64) -> u64,
    ) {
        let Some(p) = self.ready_path_mut(slot, id) else {
            return;
        };
        let nodes = p.nodes.clone();
        let mut excluded = self.reserved_except(slot);
        excluded.extend(nodes.iter().map(|n| n.ed25519));
        let usable = self.pool.usable(now_ms);
        let cands: Vec<&NodeRecord> = usable
            .into_iter()
            .filter(|n| !excluded.contains(&n.ed25519))
            .collect();
        let keep: Vec<&NodeRecord> = nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != hop)
            .map(|(_, n)| n)
            .collect();
        let new = pick(&cands, &keep, draw).cloned();
        let Some(s) = self.slots.get_mut(slot) else {
            return;
        };
        match (new, s.ready.as_mut()) {
            (Some(n), Some(p)) => {
                if let Some(h) = p.nodes.get_mut(hop) {
                    *h = n;
                }
            }
            _ => s.ready = None,
        }
    }

    // ---- internals: guards and paths -------------------------------------------

    /// Keys reserved by every slot but `slot`, plus every guard key.
    fn reserved_except(&self, slot: usize) -> BTreeSet<Ed25519Public> {
        let mut out = BTreeSet::new();
        for (i, s) in self.slots.iter().enumerate() {
            if i != slot {
                out.extend(s.reserved());
            } else if let GuardSlot::Active(g) = &s.guard {
                out.insert(g.record.ed25519);
            }
        }
        out
    }

    fn set_nodes(&mut self, records: &[NodeRecord], now_ms: u64) {
        let changed: BTreeSet<Ed25519Public> = self.pool.replace(records).into_iter().collect();
        self.loaded_ms = Some(now_ms);
        self.refresh_asked_ms = None;
        self.failing_since_ms = None;
        let mut guards_changed = false;
        for slot in &mut self.slots {
            let touches =
                |nodes: &[NodeRecord; 3]| nodes.iter().any(|n| changed.contains(&n.ed25519));
            match &slot.guard {
                GuardSlot::Saved(g) => {
                    slot.guard = match self.pool.get(&g.ed25519) {
                        Some(r) => GuardSlot::Active(ActiveGuard {
                            record: r.clone(),
                            added_ms: g.added_ms,
                        }),
                        None => GuardSlot::Searching(Search::default()),
                    };
                    slot.drop_paths();
                    guards_changed = true;
                }
                GuardSlot::Active(g) => {
                    let key = g.record.ed25519;
                    let added_ms = g.added_ms;
                    match self.pool.get(&key) {
                        None => {
                            slot.guard = GuardSlot::Searching(Search {
                                retired: Some(key),
                                ..Search::default()
                            });
                            slot.drop_paths();
                            guards_changed = true;
                        }
                        Some(r) if changed.contains(&key) => {
                            slot.guard = GuardSlot::Active(ActiveGuard {
                                record: r.clone(),
                                added_ms,
                            });
                        }
                        Some(_) => {}
                    }
                }
                GuardSlot::Searching(s) => {
                    if s.testing
                        .as_ref()
                        .is_some_and(|(c, _)| changed.contains(&c.ed25519))
                        && let GuardSlot::Searching(s) = &mut slot.guard
                    {
                        s.testing = None;
                    }
                }
            }
            if slot.ready.as_ref().is_some_and(|p| touches(&p.nodes)) {
                slot.ready = None;
            }
            if slot.testing.as_ref().is_some_and(|p| touches(&p.nodes)) {
                slot.testing = None;
            }
        }
        if guards_changed {
            self.events.push_back(Event::GuardsChanged);
        }
    }

    fn refresh_due(&self, now_ms: u64) -> bool {
        let Some(loaded) = self.loaded_ms else {
            return false;
        };
        let stale = now_ms.saturating_sub(loaded) >= self.config.registry_refresh_ms
            || self.epoch.is_none()
            || self.epoch.is_some_and(|e| self.seen_epoch > e);
        stale
            && self
                .refresh_asked_ms
                .is_none_or(|t| now_ms.saturating_sub(t) >= REFRESH_RETRY_MS)
    }

    /// Timers: bad marks, stale tests, guard and path rotation.
    fn expire(&mut self, now_ms: u64) {
        self.pool.expire(now_ms);
        let c = self.config;
        for i in 0..GUARD_COUNT {
            let stale_guard = self.slots.get(i).is_some_and(|s| {
                matches!(&s.guard, GuardSlot::Searching(Search { testing: Some((_, t)), .. })
                    if now_ms.saturating_sub(*t) >= c.test_stale_ms)
            });
            if stale_guard {
                self.guard_test_failed(i, now_ms);
            }
            let stale_path = self.slots.get(i).is_some_and(|s| {
                s.testing
                    .as_ref()
                    .is_some_and(|t| now_ms.saturating_sub(t.started_ms) >= c.test_stale_ms)
            });
            if stale_path {
                if let Some(s) = self.slots.get_mut(i) {
                    s.testing = None;
                }
                self.path_test_failed(i, now_ms);
            }
        }
        // Guard rotation by age: one at a time, only while every slot holds a
        // guard.
        let all_active = self
            .slots
            .iter()
            .all(|s| matches!(s.guard, GuardSlot::Active(_)));
        if all_active {
            let oldest = self
                .slots
                .iter()
                .enumerate()
                .filter_map(|(i, s)| match &s.guard {
                    GuardSlot::Active(g)
                        if now_ms.saturating_sub(g.added_ms) >= c.guard_lifetime_ms =>
                    {
                        Some((g.added_ms, i, g.record.ed25519))
                    }
                    _ => None,
                })
                .min();
            if let Some((_, i, key)) = oldest
                && let Some(s) = self.slots.get_mut(i)
            {
                s.guard = GuardSlot::Searching(Search {
                    retired: Some(key),
                    ..Search::default()
                });
                s.drop_paths();
                self.events.push_back(Event::GuardsChanged);
            }
        }
    }

    fn guard_test_failed(&mut self, i: usize, now_ms: u64) {
        let Some(GuardSlot::Searching(s)) = self.slots.get_mut(i).map(|s| &mut s.guard) else {
            return;
        };
        if let Some((c, _)) = s.testing.take() {
            s.tried.insert(c.ed25519);
        }
        s.attempts = s.attempts.saturating_add(1);
        if s.attempts >= GUARD_ATTEMPTS {
            s.rounds = s.rounds.saturating_add(1);
            s.backoff_until_ms = now_ms.saturating_add(backoff_ms(s.rounds));
            s.attempts = 0;
        }
    }

    fn path_test_failed(&mut self, i: usize, now_ms: u64) {
        self.failing_since_ms.get_or_insert(now_ms);
        if let Some(s) = self.slots.get_mut(i) {
            s.test_failures = s.test_failures.saturating_add(1);
            s.test_backoff_until_ms = now_ms.saturating_add(backoff_ms(s.test_failures));
        }
    }

    fn next_guard_test(
        &mut self,
        i: usize,
        now_ms: u64,
        draw: &mut dyn FnMut(u64) -> u64,
    ) -> Option<Action> {
        let slot = self.slots.get(i)?;
        let GuardSlot::Searching(search) = &slot.guard else {
            return None;
        };
        if search.testing.is_some() || now_ms < search.backoff_until_ms {
            return None;
        }
        let mut excluded = self.reserved_except(i);
        excluded.extend(search.retired);
        // Candidates that failed (for either slot) are tried again only once
        // every other candidate has failed too.
        let mut tried: BTreeSet<Ed25519Public> = BTreeSet::new();
        for s in &self.slots {
            if let GuardSlot::Searching(other) = &s.guard {
                tried.extend(other.tried.iter().copied());
            }
        }
        let usable = self.pool.usable(now_ms);
        let mut cands: Vec<&NodeRecord> = usable
            .iter()
            .copied()
            .filter(|n| !excluded.contains(&n.ed25519) && !tried.contains(&n.ed25519))
            .collect();
        if cands.is_empty() && !tried.is_empty() {
            // Every candidate failed once: start over.
            cands = usable
                .iter()
                .copied()
                .filter(|n| !excluded.contains(&n.ed25519))
                .collect();
            tried.clear();
        }
        let avoid: Vec<&NodeRecord> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .filter_map(|(_, s)| s.guard_like())
            .collect();
        let node = pick(&cands, &avoid, draw)?.clone();
        let start_over = tried.is_empty();
        for (j, slot) in self.slots.iter_mut().enumerate() {
            if let GuardSlot::Searching(s) = &mut slot.guard {
                if start_over {
                    s.tried.clear();
                }
                if j == i {
                    s.testing = Some((node.clone(), now_ms));
                }
            }
        }
        Some(Action::TestGuard { node })
    }

    fn next_path_test(
        &mut self,
        i: usize,
        now_ms: u64,
        draw: &mut dyn FnMut(u64) -> u64,
    ) -> Option<Action> {
        let c = self.config;
        let slot = self.slots.get(i)?;
        let guard = slot.guard_record()?.clone();
        if slot.testing.is_some() || now_ms < slot.test_backoff_until_ms {
            return None;
        }
        let needed = match &slot.ready {
            None => true,
            Some(p) => {
                now_ms.saturating_sub(p.built_ms) >= c.path_lifetime_ms
                    && now_ms.saturating_sub(p.last_used_ms) >= c.path_idle_ms
            }
        };
        if !needed {
            return None;
        }
        let excluded = self.reserved_except(i);
        let usable = self.pool.usable(now_ms);
        let mut cands: Vec<&NodeRecord> = usable
            .iter()
            .copied()
            .filter(|n| !excluded.contains(&n.ed25519))
            .collect();
        let hop2 = pick(&cands, &[&guard], draw)?.clone();
        cands.retain(|n| n.ed25519 != hop2.ed25519);
        let hop3 = pick(&cands, &[&guard, &hop2], draw)?.clone();
        let nodes = [guard, hop2, hop3];
        // The test's destination: off both slots' paths when possible.
        let on_path = |n: &NodeRecord| nodes.iter().any(|p| p.ed25519 == n.ed25519);
        let mut dests: Vec<&NodeRecord> = usable
            .iter()
            .copied()
            .filter(|n| !on_path(n) && !excluded.contains(&n.ed25519))
            .collect();
        if dests.is_empty() {
            dests = usable.iter().copied().filter(|n| !on_path(n)).collect();
        }
        let avoid: Vec<&NodeRecord> = nodes.iter().collect();
        let destination = pick(&dests, &avoid, draw)?.clone();
        let id = PathId(self.next_path_id);
        self.next_path_id = self.next_path_id.wrapping_add(1);
        if let Some(s) = self.slots.get_mut(i) {
            s.testing = Some(TestingPath {
                id,
                nodes: nodes.clone(),
                started_ms: now_ms,
            });
        }
        Some(Action::TestPath {
            id,
            path: nodes,
            destination,
        })
    }
}

fn destination_iter(d: &Destination) -> impl Iterator<Item = &NodeRecord> {
    match d {
        Destination::Node(n) => Some(n),
        Destination::Server => None,
    }
    .into_iter()
}
