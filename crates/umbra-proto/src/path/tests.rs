//! Scenario tests of the path manager (`onion.md` §10): synthetic registries
//! from deterministic seeds, a seeded draw, and a driver loop that answers
//! the manager's tests.

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::sync::{Mutex, OnceLock};

use proptest::prelude::*;
use umbra_crypto::{Ed25519Keypair, Ed25519Public};

use super::*;
use crate::swarm::{NodeRecord, RegistryDocument};

const HOUR: u64 = 60 * 60 * 1000;
const DAY: u64 = 24 * HOUR;
const T0: u64 = 1_700_000_000_000;

/// A deterministic uniform draw (SplitMix64).
fn rng(seed: u64) -> impl FnMut(u64) -> u64 {
    let mut state = seed;
    move |n| {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        z % n.max(1)
    }
}

/// Node `i` at `ip:port` (signing is slow in debug builds, so records and
/// registries are cached across tests).
fn node(i: u16, ip: Ipv4Addr, port: u16) -> NodeRecord {
    type Key = (u16, Ipv4Addr, u16);
    static CACHE: OnceLock<Mutex<HashMap<Key, NodeRecord>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(r) = cache.lock().unwrap().get(&(i, ip, port)) {
        return r.clone();
    }
    let mut seed = [0x5a; 32];
    seed[..2].copy_from_slice(&i.to_be_bytes());
    let r = NodeRecord::sign(&Ed25519Keypair::from_seed(&seed), ip, port, [1, 0, 0]).unwrap();
    cache.lock().unwrap().insert((i, ip, port), r.clone());
    r
}

/// `n` nodes, each in its own /24.
fn spread_nodes(n: u16) -> Vec<NodeRecord> {
    (0..n)
        .map(|i| {
            let [a, b] = i.to_be_bytes();
            node(i, Ipv4Addr::new(10, a, b, 1), 22021)
        })
        .collect()
}

/// `n` nodes on 127.0.0.1, one port each.
fn localhost_nodes(n: u16) -> Vec<NodeRecord> {
    (0..n)
        .map(|i| node(i, Ipv4Addr::LOCALHOST, 20000 + i))
        .collect()
}

/// An epoch-1 registry of `nodes`.
fn registry(nodes: &[NodeRecord]) -> RegistryDocument {
    static CACHE: OnceLock<Mutex<HashMap<Vec<NodeRecord>, RegistryDocument>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(d) = cache.lock().unwrap().get(nodes) {
        return d.clone();
    }
    let d = RegistryDocument::builder(1, T0)
        .nodes(nodes.iter().cloned())
        .build()
        .unwrap();
    cache.lock().unwrap().insert(nodes.to_vec(), d.clone());
    d
}

/// Answers every action: tests succeed unless `fails` names a node of the
/// test. Returns the actions seen.
fn settle(
    pm: &mut PathManager,
    now: u64,
    draw: &mut impl FnMut(u64) -> u64,
    fails: &BTreeSet<Ed25519Public>,
) -> Vec<Action> {
    let mut seen = Vec::new();
    for _ in 0..100 {
        let Some(action) = pm.poll_action(now, draw) else {
            return seen;
        };
        match &action {
            Action::TestGuard { node } => {
                let r = if fails.contains(&node.ed25519) {
                    GuardTest::Unreachable
                } else {
                    GuardTest::Reachable { node_time_ms: now }
                };
                assert!(pm.handle_guard_test(&node.ed25519, r, now));
            }
            Action::TestPath {
                id,
                path,
                destination,
            } => {
                check_path(path);
                assert!(path.iter().all(|n| n.ed25519 != destination.ed25519));
                let bad = path
                    .iter()
                    .chain(std::iter::once(destination))
                    .any(|n| fails.contains(&n.ed25519));
                let o = if bad {
                    Outcome::RelayFailure
                } else {
                    Outcome::Success { node_time_ms: None }
                };
                assert!(pm.handle_path_test(*id, &o, now));
            }
            Action::Bootstrap | Action::RefreshRegistry => {}
        }
        seen.push(action);
    }
    panic!("the manager never settles");
}

fn check_path(path: &[NodeRecord; 3]) {
    let keys: BTreeSet<_> = path.iter().map(|n| n.ed25519).collect();
    assert_eq!(keys.len(), 3, "a path repeats a node");
}

/// A manager with two ready paths over `nodes`.
fn ready(nodes: &[NodeRecord], seed: u64) -> (PathManager, impl FnMut(u64) -> u64 + use<>) {
    let mut pm = PathManager::new(PathConfig::default(), None);
    let mut draw = rng(seed);
    assert!(pm.handle_registry(&registry(nodes), T0));
    settle(&mut pm, T0, &mut draw, &BTreeSet::new());
    assert_eq!(pm.paths().len(), 2);
    while pm.poll_event().is_some() {}
    (pm, draw)
}

fn all_path_keys(pm: &PathManager) -> Vec<Ed25519Public> {
    pm.paths()
        .iter()
        .flat_map(|(_, p)| p.iter().map(|n| n.ed25519))
        .collect()
}

fn assert_paths_disjoint(pm: &PathManager) {
    let keys = all_path_keys(pm);
    let set: BTreeSet<_> = keys.iter().collect();
    assert_eq!(set.len(), keys.len(), "paths share a node");
    for (_, p) in pm.paths() {
        check_path(p);
    }
}

fn subnets(nodes: &[NodeRecord]) -> BTreeSet<[u8; 3]> {
    nodes
        .iter()
        .map(|n| {
            let o = n.ipv4.octets();
            [o[0], o[1], o[2]]
        })
        .collect()
}

/// Members of a target swarm: `k` nodes on no path.
fn off_path_members(pm: &PathManager, nodes: &[NodeRecord], k: usize) -> Vec<NodeRecord> {
    let on: BTreeSet<_> = all_path_keys(pm).into_iter().collect();
    nodes
        .iter()
        .filter(|n| !on.contains(&n.ed25519))
        .take(k)
        .cloned()
        .collect()
}

fn retry_plan(d: Decision) -> (u64, Plan, Option<Vec<NodeRecord>>) {
    match d {
        Decision::Retry {
            delay_ms,
            plan,
            swarm,
        } => (delay_ms, *plan, swarm),
        other => panic!("expected a retry, got {other:?}"),
    }
}

fn dest(plan: &Plan) -> &NodeRecord {
    plan.destination_node().expect("a storage plan")
}

fn assert_valid_storage_plan(pm: &PathManager, plan: &Plan) {
    check_path(&plan.path);
    let d = dest(plan);
    assert!(plan.path.iter().all(|n| n.ed25519 != d.ed25519));
    assert!(
        pm.paths()
            .iter()
            .any(|(id, p)| *id == plan.path_id() && **p == plan.path)
    );
}

// ---- §10.1–10.4: pools, guards, paths, destinations --------------------------

#[test]
fn paths_are_disjoint_and_spread() {
    let nodes = spread_nodes(40);
    let (mut pm, mut draw) = ready(&nodes, 1);
    assert_paths_disjoint(&pm);
    let six: Vec<NodeRecord> = pm
        .paths()
        .iter()
        .flat_map(|(_, p)| p.iter().cloned())
        .collect();
    assert_eq!(subnets(&six).len(), 6);
    let guards = pm.guards();
    assert_eq!(guards.len(), 2);
    assert!(!same_subnet(guards[0].ipv4, guards[1].ipv4));
    for (i, (_, p)) in pm.paths().iter().enumerate() {
        assert_eq!(p[0], *guards[i]);
    }
    let members = nodes[..10].to_vec();
    for _ in 0..50 {
        let plan = pm.plan_storage_request(&members, T0, &mut draw).unwrap();
        assert_valid_storage_plan(&pm, &plan);
        let d = dest(&plan);
        assert!(members.contains(d));
        assert!(!all_path_keys(&pm).contains(&d.ed25519));
        assert!(plan.path.iter().all(|n| !same_subnet(n.ipv4, d.ipv4)));
        assert_eq!(plan.attempt, 0);
    }
    let s = pm.plan_server_request(T0, &mut draw).unwrap();
    assert_eq!(s.destination, Destination::Server);
}

#[test]
fn localhost_network_uses_the_fallbacks() {
    let nodes = localhost_nodes(8);
    let (mut pm, mut draw) = ready(&nodes, 2);
    assert_paths_disjoint(&pm);
    for _ in 0..30 {
        let plan = pm.plan_storage_request(&nodes, T0, &mut draw).unwrap();
        assert_valid_storage_plan(&pm, &plan);
        // Two nodes are on no path: the destination is one of them.
        assert!(!all_path_keys(&pm).contains(&dest(&plan).ed25519));
    }
    // A swarm made only of path nodes: the destination is off the chosen path.
    let on_paths: Vec<NodeRecord> = pm
        .paths()
        .iter()
        .flat_map(|(_, p)| p.iter().cloned())
        .collect();
    for _ in 0..30 {
        let plan = pm.plan_storage_request(&on_paths, T0, &mut draw).unwrap();
        assert_valid_storage_plan(&pm, &plan);
    }
}

#[test]
fn tiny_network_builds_one_path_and_asks_for_bootstrap() {
    let nodes = localhost_nodes(5);
    let mut pm = PathManager::new(PathConfig::default(), None);
    let mut draw = rng(3);
    assert_eq!(pm.poll_action(T0, &mut draw), Some(Action::Bootstrap));
    pm.handle_registry(&registry(&nodes), T0);
    let seen = settle(&mut pm, T0, &mut draw, &BTreeSet::new());
    // Still fewer than 8 usable nodes, but bootstrap is asked at most every
    // 2 minutes.
    assert!(!seen.contains(&Action::Bootstrap));
    // Two guards, but only 5 nodes: one 3-hop path plus a 4th destination.
    assert_eq!(pm.guards().len(), 2);
    assert_eq!(pm.paths().len(), 1);
    for _ in 0..20 {
        let plan = pm.plan_storage_request(&nodes, T0, &mut draw).unwrap();
        assert_valid_storage_plan(&pm, &plan);
    }
    // Asked again only after 2 minutes.
    assert_eq!(pm.poll_action(T0 + 1000, &mut draw), None);
    assert_eq!(
        pm.poll_action(T0 + 120_000, &mut draw),
        Some(Action::Bootstrap)
    );
    // A devnet lowers the threshold.
    let mut small = PathManager::new(PathConfig::default().with_min_usable_nodes(4), None);
    small.handle_node_list(&nodes, T0);
    let seen = settle(&mut small, T0, &mut draw, &BTreeSet::new());
    assert!(!seen.contains(&Action::Bootstrap));
    // A seed list is no registry: ask for one.
    assert_eq!(seen.first(), Some(&Action::RefreshRegistry));
}

#[test]
fn no_path_before_any_registry() {
    let mut pm = PathManager::new(PathConfig::default(), None);
    let mut draw = rng(4);
    assert_eq!(
        pm.plan_server_request(T0, &mut draw),
        Err(PathError::NoPath)
    );
    let nodes = spread_nodes(20);
    let (mut pm, mut draw) = ready(&nodes, 4);
    assert_eq!(
        pm.plan_storage_request(&[], T0, &mut draw),
        Err(PathError::NoDestination)
    );
}

// ---- §10.2 guards ----------------------------------------------------------

#[test]
fn guard_search_gives_up_after_five_and_backs_off() {
    let nodes = spread_nodes(30);
    let mut pm = PathManager::new(PathConfig::default(), None);
    let mut draw = rng(5);
    pm.handle_registry(&registry(&nodes), T0);
    let mut tested = BTreeSet::new();
    let mut fails_in_slot_one = 0;
    // Every guard test fails.
    loop {
        match pm.poll_action(T0, &mut draw) {
            Some(Action::TestGuard { node }) => {
                assert!(
                    tested.insert(node.ed25519),
                    "a failed candidate was retried"
                );
                pm.handle_guard_test(&node.ed25519, GuardTest::Unreachable, T0);
                fails_in_slot_one += 1;
            }
            Some(Action::Bootstrap) | Some(Action::RefreshRegistry) => {}
            Some(other) => panic!("unexpected {other:?}"),
            None => break,
        }
    }
    // 5 per slot, then both slots wait 200 ms.
    assert_eq!(fails_in_slot_one, 10);
    assert_eq!(pm.poll_timeout(T0), Some(T0 + 200));
    assert!(matches!(
        pm.poll_action(T0 + 200, &mut draw),
        Some(Action::TestGuard { .. })
    ));
    // A late or unknown result is ignored.
    assert!(!pm.handle_guard_test(&nodes[0].ed25519, GuardTest::Unreachable, T0));
}

#[test]
fn guards_rotate_after_60_days_one_at_a_time() {
    let nodes = spread_nodes(30);
    let (mut pm, mut draw) = ready(&nodes, 6);
    let old: Vec<Ed25519Public> = pm.guards().iter().map(|g| g.ed25519).collect();
    let later = T0 + 60 * DAY;
    // Paths age and the registry is refreshed meanwhile; guards stay.
    pm.handle_registry(&registry(&nodes), later - 2);
    let seen = settle(&mut pm, later - 1, &mut draw, &BTreeSet::new());
    assert!(!seen.iter().any(|a| matches!(a, Action::TestGuard { .. })));
    assert_eq!(pm.paths().len(), 2);
    let first = pm.poll_action(later, &mut draw);
    let Some(Action::TestGuard { node }) = first else {
        panic!("expected a guard test, got {first:?}");
    };
    assert!(!old.contains(&node.ed25519));
    // The other guard stays until the first is replaced.
    assert_eq!(pm.guards().len(), 1);
    assert_eq!(pm.paths().len(), 1);
    assert_eq!(pm.poll_event(), Some(Event::GuardsChanged));
    let remaining = pm.guards()[0].ed25519;
    assert!(old.contains(&remaining));
    assert!(!matches!(
        pm.poll_action(later, &mut draw),
        Some(Action::TestGuard { .. })
    ));
    pm.handle_guard_test(
        &node.ed25519,
        GuardTest::Reachable {
            node_time_ms: later,
        },
        later,
    );
    // Now the second one rotates.
    let seen = settle(&mut pm, later, &mut draw, &BTreeSet::new());
    assert!(seen.iter().any(|a| matches!(a, Action::TestGuard { .. })));
    let new: Vec<Ed25519Public> = pm.guards().iter().map(|g| g.ed25519).collect();
    assert_eq!(new.len(), 2);
    assert!(new.iter().all(|g| !old.contains(g)));
    assert_eq!(pm.paths().len(), 2);
    assert_paths_disjoint(&pm);
}

#[test]
fn guard_state_survives_a_restart() {
    let nodes = spread_nodes(30);
    let (pm, _) = ready(&nodes, 7);
    let state = pm.guard_state();
    assert_eq!(state.guards().len(), 2);
    let json = serde_json::to_string(&state).unwrap();
    let back: GuardState = serde_json::from_str(&json).unwrap();
    assert_eq!(back, state);

    let mut pm2 = PathManager::new(PathConfig::default(), Some(&back));
    assert_eq!(pm2.guard_state(), state);
    let mut draw = rng(8);
    pm2.handle_registry(&registry(&nodes), T0 + 1000);
    let seen = settle(&mut pm2, T0 + 1000, &mut draw, &BTreeSet::new());
    assert!(!seen.iter().any(|a| matches!(a, Action::TestGuard { .. })));
    assert_eq!(pm2.guards(), pm.guards());
    assert_eq!(pm2.guard_state(), state);

    // A saved guard that left the registry is replaced.
    let gone = state.guards()[0].ed25519;
    let fewer: Vec<NodeRecord> = nodes
        .iter()
        .filter(|n| n.ed25519 != gone)
        .cloned()
        .collect();
    let mut pm3 = PathManager::new(PathConfig::default(), Some(&back));
    pm3.handle_registry(&registry(&fewer), T0);
    let seen = settle(&mut pm3, T0, &mut draw, &BTreeSet::new());
    assert_eq!(
        seen.iter()
            .filter(|a| matches!(a, Action::TestGuard { .. }))
            .count(),
        1
    );
    assert!(!pm3.guards().iter().any(|g| g.ed25519 == gone));
}

#[test]
fn guard_leaving_the_registry_is_replaced() {
    let nodes = spread_nodes(30);
    let (mut pm, mut draw) = ready(&nodes, 9);
    let gone = pm.guards()[1].ed25519;
    let first_path = pm.paths()[0].0;
    let doc1 = registry(&nodes);
    let doc2 = doc1
        .next_builder(T0 + 1)
        .nodes(nodes.iter().filter(|n| n.ed25519 != gone).cloned())
        .build()
        .unwrap();
    assert!(pm.handle_registry(&doc2, T0 + 1));
    assert_eq!(pm.poll_event(), Some(Event::GuardsChanged));
    assert_eq!(pm.paths().len(), 1);
    assert_eq!(pm.paths()[0].0, first_path);
    settle(&mut pm, T0 + 1, &mut draw, &BTreeSet::new());
    assert_eq!(pm.guards().len(), 2);
    assert!(pm.guards().iter().all(|g| g.ed25519 != gone));
    assert_paths_disjoint(&pm);
    // An older document is ignored.
    assert!(!pm.handle_registry(&doc1, T0 + 2));
}

// ---- §10.3 paths -------------------------------------------------------------

#[test]
fn idle_paths_are_rebuilt_after_60_minutes() {
    let nodes = spread_nodes(30);
    let (mut pm, mut draw) = ready(&nodes, 10);
    let before: Vec<(PathId, [NodeRecord; 3])> =
        pm.paths().iter().map(|(i, p)| (*i, (*p).clone())).collect();
    let later = T0 + HOUR;
    pm.handle_registry(&registry(&nodes), later - 1);
    // Path 0 was used recently: only path 1 is rebuilt.
    let plan = pm.plan_server_request(later - 1000, &mut |_| 0).unwrap();
    assert_eq!(plan.path_id(), before[0].0);
    let a = pm.poll_action(later, &mut draw);
    let Some(Action::TestPath { id, path, .. }) = a else {
        panic!("expected a path test, got {a:?}");
    };
    assert_eq!(path[0], before[1].1[0], "same guard");
    // The old path serves until the new one passes its test.
    assert_eq!(pm.paths().len(), 2);
    assert!(pm.handle_path_test(id, &Outcome::Success { node_time_ms: None }, later));
    assert_eq!(pm.paths()[1].0, id);
    assert_eq!(pm.paths()[0].0, before[0].0);
    assert_paths_disjoint(&pm);
    assert_eq!(pm.poll_action(later, &mut draw), None);
}

#[test]
fn failed_path_tests_back_off() {
    let nodes = spread_nodes(30);
    let mut pm = PathManager::new(PathConfig::default(), None);
    let mut draw = rng(11);
    pm.handle_registry(&registry(&nodes), T0);
    let mut t = T0;
    let mut failures = 0;
    while failures < 2 {
        match pm.poll_action(t, &mut draw) {
            Some(Action::TestGuard { node }) => {
                pm.handle_guard_test(&node.ed25519, GuardTest::Reachable { node_time_ms: t }, t);
            }
            Some(Action::TestPath { id, .. }) => {
                pm.handle_path_test(id, &Outcome::RelayFailure, t);
                failures += 1;
            }
            Some(_) => {}
            None => t = pm.poll_timeout(t).unwrap(),
        }
    }
    assert!(pm.paths().is_empty());
    // After 2 minutes of failing attempts only, the manager asks for a
    // bootstrap.
    let mut asked = false;
    let end = T0 + 130_000;
    while t < end {
        match pm.poll_action(t, &mut draw) {
            Some(Action::TestPath { id, .. }) => {
                pm.handle_path_test(id, &Outcome::RelayFailure, t);
            }
            Some(Action::TestGuard { node }) => {
                pm.handle_guard_test(&node.ed25519, GuardTest::Reachable { node_time_ms: t }, t);
            }
            Some(Action::Bootstrap) => {
                asked = true;
                assert!(t >= T0 + 120_000);
                break;
            }
            Some(_) => {}
            None => t = pm.poll_timeout(t).unwrap_or(end),
        }
    }
    assert!(asked);
    // Relay failures blame no node.
    assert_eq!(pm.pool().usable_count(t), 30);
    // A guard that cannot be reached during path tests is marked bad after 3.
    let guard = pm.guards()[0].ed25519;
    let mut blamed = 0;
    while blamed < 3 {
        match pm.poll_action(t, &mut draw) {
            Some(Action::TestPath { id, path, .. }) if path[0].ed25519 == guard => {
                pm.handle_path_test(id, &Outcome::GuardUnreachable, t);
                blamed += 1;
            }
            Some(Action::TestPath { id, .. }) => {
                pm.handle_path_test(id, &Outcome::RelayFailure, t);
            }
            Some(_) => {}
            None => t = pm.poll_timeout(t).unwrap(),
        }
    }
    assert!(pm.pool().is_bad(&guard, t));
    assert!(pm.guards().iter().all(|g| g.ed25519 != guard));
}

#[test]
fn stale_tests_count_as_failed() {
    let nodes = spread_nodes(30);
    let mut pm = PathManager::new(PathConfig::default(), None);
    let mut draw = rng(12);
    pm.handle_registry(&registry(&nodes), T0);
    let Some(Action::TestGuard { node }) = pm.poll_action(T0, &mut draw) else {
        panic!("expected a guard test");
    };
    // The result never arrives.
    let _ = pm.poll_action(T0, &mut draw);
    assert_eq!(pm.poll_timeout(T0), Some(T0 + 30_000));
    let next = pm.poll_action(T0 + 30_000, &mut draw);
    assert!(matches!(next, Some(Action::TestGuard { node: ref n }) if n.ed25519 != node.ed25519));
    assert!(!pm.handle_guard_test(&node.ed25519, GuardTest::Reachable { node_time_ms: 0 }, T0));
}

// ---- §10.6 table ----------------------------------------------------------

/// A ready manager and a storage plan to `members` (5 off-path nodes).
fn storage_setup(
    seed: u64,
) -> (
    PathManager,
    impl FnMut(u64) -> u64 + use<>,
    Vec<NodeRecord>,
    Plan,
) {
    let nodes = spread_nodes(40);
    let (mut pm, mut draw) = ready(&nodes, seed);
    let members = off_path_members(&pm, &nodes, 5);
    let plan = pm.plan_storage_request(&members, T0, &mut draw).unwrap();
    (pm, draw, members, plan)
}

#[test]
fn row_guard_unreachable() {
    let (mut pm, mut draw, _, plan) = storage_setup(20);
    let guard = plan.path[0].ed25519;
    let d = pm.handle_outcome(plan.clone(), Outcome::GuardUnreachable, T0, &mut draw);
    let (delay, next, swarm) = retry_plan(d);
    assert_eq!(delay, 200);
    assert_eq!(next.attempt, 1);
    assert!(swarm.is_none());
    assert_ne!(next.path_id(), plan.path_id(), "retry on the other path");
    assert_ne!(next.path[0].ed25519, guard);
    assert_eq!(pm.pool().failures(&guard), 1);
    assert_valid_storage_plan(&pm, &next);
}

#[test]
fn row_next_node_not_found_hop() {
    for hop in [1usize, 2] {
        let (mut pm, mut draw, _, plan) = storage_setup(21 + hop as u64);
        let x = plan.path[hop].ed25519;
        let d = pm.handle_outcome(plan.clone(), Outcome::NextNodeNotFound(x), T0, &mut draw);
        let (delay, next, _) = retry_plan(d);
        assert_eq!(delay, 200);
        assert_eq!(pm.pool().failures(&x), 1);
        // X is replaced in its path; the other nodes stay.
        let (_, p) = *pm
            .paths()
            .iter()
            .find(|(id, _)| *id == plan.path_id())
            .unwrap();
        assert!(p.iter().all(|n| n.ed25519 != x));
        for i in (0..3).filter(|&i| i != hop) {
            assert_eq!(p[i], plan.path[i]);
        }
        assert!(
            p.iter()
                .all(|n| !same_subnet(n.ipv4, p[hop].ipv4) || n == &p[hop])
        );
        assert_paths_disjoint(&pm);
        assert_valid_storage_plan(&pm, &next);
    }
}

#[test]
fn row_next_node_not_found_destination() {
    let (mut pm, mut draw, members, plan) = storage_setup(24);
    let x = dest(&plan).ed25519;
    let d = pm.handle_outcome(plan.clone(), Outcome::NextNodeNotFound(x), T0, &mut draw);
    let (delay, next, _) = retry_plan(d);
    assert_eq!(delay, 200);
    assert_ne!(dest(&next).ed25519, x);
    assert!(members.contains(dest(&next)));
    assert_eq!(pm.pool().failures(&x), 1);
    // The paths are untouched.
    assert!(pm.paths().iter().any(|(_, p)| **p == plan.path));
}

#[test]
fn row_relay_failures_retry_on_the_other_path() {
    let (mut pm, mut draw, _, plan) = storage_setup(25);
    let d = pm.handle_outcome(plan.clone(), Outcome::RelayFailure, T0, &mut draw);
    let (delay, next, _) = retry_plan(d);
    assert_eq!(delay, 200);
    assert_ne!(next.path_id(), plan.path_id());
    // Backoff 200 then 400, then the request fails after 3 tries.
    let d = pm.handle_outcome(next, Outcome::RelayFailure, T0, &mut draw);
    let (delay, third, _) = retry_plan(d);
    assert_eq!(delay, 400);
    assert_eq!(third.attempt, 2);
    let d = pm.handle_outcome(third, Outcome::RelayFailure, T0, &mut draw);
    assert_eq!(
        d,
        Decision::Fail(PathError::Exhausted {
            tries: 3,
            last: FailureKind::Relay
        })
    );
    // The same classification for each plaintext status and an undecryptable 200.
    for s in [504, 503, 500, 429] {
        assert_eq!(Outcome::from_relay_error(s, ""), Outcome::RelayFailure);
    }
}

#[test]
fn row_relay_400_refreshes_and_retries_once() {
    let (mut pm, mut draw, members, plan) = storage_setup(26);
    let outcome = Outcome::from_relay_error(400, "Invalid ciphertext");
    let d = pm.handle_outcome(plan.clone(), outcome.clone(), T0, &mut draw);
    let Decision::RefreshRegistry(pending) = d else {
        panic!("expected a refresh, got {d:?}");
    };
    assert_eq!(pending.attempt(), 1);
    let (delay, next, _) = retry_plan(pm.resume(pending, Some(&members), T0, &mut draw));
    assert_eq!(delay, 200);
    assert_ne!(next.path_id(), plan.path_id(), "on another path");
    let d = pm.handle_outcome(next, outcome, T0, &mut draw);
    assert_eq!(d, Decision::Fail(PathError::RelayRejected));
}

#[test]
fn row_421_escalates() {
    let nodes = spread_nodes(40);
    let (mut pm, mut draw) = ready(&nodes, 27);
    let members = off_path_members(&pm, &nodes, 3);
    let on: BTreeSet<_> = all_path_keys(&pm).into_iter().collect();
    let others: Vec<NodeRecord> = nodes
        .iter()
        .filter(|n| !on.contains(&n.ed25519) && !members.contains(n))
        .take(3)
        .cloned()
        .collect();
    let plan = pm.plan_storage_request(&members, T0, &mut draw).unwrap();
    let mut snodes: Vec<Ed25519Public> = others.iter().map(|n| n.ed25519).collect();
    snodes.push(Ed25519Public::from_bytes([9; 32])); // not in the registry
    // 1st: use the body's swarm.
    let d = pm.handle_outcome(plan, Outcome::Misdirected { snodes }, T0, &mut draw);
    let (delay, next, swarm) = retry_plan(d);
    assert_eq!(delay, 200);
    assert_eq!(swarm.as_deref(), Some(&others[..]));
    assert!(others.contains(dest(&next)));
    // 2nd: refresh the registry, recompute the swarm.
    let d = pm.handle_outcome(next, Outcome::Misdirected { snodes: vec![] }, T0, &mut draw);
    let Decision::RefreshRegistry(pending) = d else {
        panic!("expected a refresh, got {d:?}");
    };
    let (delay, third, _) = retry_plan(pm.resume(pending, Some(&members), T0, &mut draw));
    assert_eq!(delay, 400);
    assert!(members.contains(dest(&third)));
    // 3rd: fail.
    let d = pm.handle_outcome(
        third,
        Outcome::Misdirected { snodes: vec![] },
        T0,
        &mut draw,
    );
    assert_eq!(d, Decision::Fail(PathError::Misdirected));
    // Nothing counted against any node.
    assert!(nodes.iter().all(|n| pm.pool().failures(&n.ed25519) == 0));
}

#[test]
fn row_421_without_usable_snodes_refreshes_at_once() {
    let (mut pm, mut draw, _, plan) = storage_setup(28);
    let d = pm.handle_outcome(
        plan,
        Outcome::Misdirected {
            snodes: vec![Ed25519Public::from_bytes([9; 32])],
        },
        T0,
        &mut draw,
    );
    assert!(matches!(d, Decision::RefreshRegistry(_)));
}

#[test]
fn row_clock_errors_resync_once() {
    let (mut pm, mut draw, _, plan) = storage_setup(29);
    let first_path = plan.path.clone();
    let d = pm.handle_outcome(plan, Outcome::from_inner(406, "", None), T0, &mut draw);
    let Decision::ResyncClock { nodes, pending } = d else {
        panic!("expected a resync, got {d:?}");
    };
    assert_eq!(nodes.len(), 2);
    assert_ne!(nodes[0], nodes[1]);
    let on = all_path_keys(&pm);
    assert!(nodes.iter().all(|n| !on.contains(&n.ed25519)));
    pm.handle_clock_resync(&[(T0 + 60_000, T0), (T0 + 60_200, T0)]);
    assert_eq!(pm.network_now(T0), T0 + 60_100);
    let (delay, next, _) = retry_plan(pm.resume(pending, None, T0, &mut draw));
    assert_eq!(delay, 200);
    let d = pm.handle_outcome(next, Outcome::from_inner(425, "", None), T0, &mut draw);
    assert_eq!(d, Decision::Fail(PathError::ClockRejected));
    assert!(
        first_path
            .iter()
            .all(|n| pm.pool().failures(&n.ed25519) == 0)
    );
}

#[test]
fn row_destination_failure_moves_to_another_member() {
    for status in [500, 503] {
        let (mut pm, mut draw, members, plan) = storage_setup(30 + u64::from(status));
        let x = dest(&plan).ed25519;
        let d = pm.handle_outcome(plan, Outcome::from_inner(status, "", None), T0, &mut draw);
        let (delay, next, _) = retry_plan(d);
        assert_eq!(delay, 200);
        assert_ne!(dest(&next).ed25519, x);
        assert!(members.contains(dest(&next)));
        assert_eq!(pm.pool().failures(&x), 1);
    }
}

#[test]
fn row_full_member_moves_to_another_member_without_a_failure() {
    let (mut pm, mut draw, members, plan) = storage_setup(37);
    let path = plan.path.clone();
    let x = dest(&plan).ed25519;
    let d = pm.handle_outcome(plan, Outcome::from_inner(507, "", None), T0, &mut draw);
    let (_, next, _) = retry_plan(d);
    assert_ne!(dest(&next).ed25519, x);
    assert!(members.contains(dest(&next)));
    assert_eq!(pm.pool().failures(&x), 0);
    assert!(path.iter().all(|n| pm.pool().failures(&n.ed25519) == 0));
    // Every member full: the caller gets the 507, not a routing error.
    let mut d = pm.handle_outcome(next, Outcome::from_inner(507, "", None), T0, &mut draw);
    while let Decision::Retry { plan, .. } = d {
        d = pm.handle_outcome(*plan, Outcome::from_inner(507, "", None), T0, &mut draw);
    }
    assert_eq!(d, Decision::Fail(PathError::Rejected { status: 507 }));
    assert!(members.iter().all(|m| pm.pool().failures(&m.ed25519) == 0));
}

#[test]
fn row_other_inner_statuses_fail_without_retry() {
    for status in [400, 401, 403, 404, 413] {
        let (mut pm, mut draw, _, plan) = storage_setup(40 + u64::from(status));
        let path = plan.path.clone();
        let d = pm.handle_outcome(plan, Outcome::from_inner(status, "x", None), T0, &mut draw);
        assert_eq!(d, Decision::Fail(PathError::Rejected { status }));
        assert!(path.iter().all(|n| pm.pool().failures(&n.ed25519) == 0));
    }
}

#[test]
fn success_feeds_the_clock_and_resets_counters() {
    let (mut pm, mut draw, members, plan) = storage_setup(50);
    let guard = plan.path[0].ed25519;
    let d = pm.handle_outcome(plan, Outcome::GuardUnreachable, T0, &mut draw);
    let (_, next, _) = retry_plan(d);
    assert_eq!(pm.pool().failures(&guard), 1);
    // Success through the other path resets its nodes only; a later success
    // through the first guard resets it.
    assert_eq!(
        pm.handle_outcome(
            next,
            Outcome::from_inner(200, "{}", Some(T0 + 500)),
            T0,
            &mut draw
        ),
        Decision::Done
    );
    let mut plan = pm.plan_storage_request(&members, T0, &mut draw).unwrap();
    while plan.path[0].ed25519 != guard {
        plan = pm.plan_storage_request(&members, T0, &mut draw).unwrap();
    }
    let d = pm.handle_outcome(
        plan,
        Outcome::Success {
            node_time_ms: Some(T0 + 700),
        },
        T0,
        &mut draw,
    );
    assert_eq!(d, Decision::Done);
    assert_eq!(pm.pool().failures(&guard), 0);
    // Samples: the guard tests (offset 0, twice), +500, +700 → median 250.
    assert_eq!(pm.clock().sample_count(), 4);
    assert_eq!(pm.network_now(T0), T0 + 250);
}

// ---- thresholds ------------------------------------------------------------

#[test]
fn three_failures_mark_a_node_bad_for_an_hour() {
    let (mut pm, mut draw, members, _) = storage_setup(60);
    let victim = members[0].clone();
    for i in 0..3 {
        let mut plan = pm.plan_storage_request(&members, T0, &mut draw).unwrap();
        while dest(&plan).ed25519 != victim.ed25519 {
            plan = pm.plan_storage_request(&members, T0, &mut draw).unwrap();
        }
        let _ = pm.handle_outcome(plan, Outcome::from_inner(500, "", None), T0, &mut draw);
        assert_eq!(pm.pool().is_bad(&victim.ed25519, T0), i == 2);
    }
    assert_eq!(pm.poll_event(), Some(Event::NodeMarkedBad(victim.ed25519)));
    for _ in 0..20 {
        let plan = pm.plan_storage_request(&members, T0, &mut draw).unwrap();
        assert_ne!(dest(&plan).ed25519, victim.ed25519);
    }
    assert_eq!(pm.poll_timeout(T0), Some(T0 + HOUR));
    assert!(pm.pool().is_bad(&victim.ed25519, T0 + HOUR - 1));
    let _ = pm.poll_action(T0 + HOUR, &mut draw);
    assert!(!pm.pool().is_bad(&victim.ed25519, T0 + HOUR));
    assert_eq!(pm.pool().failures(&victim.ed25519), 0);
}

#[test]
fn bad_mark_is_lifted_when_the_record_changes() {
    let nodes = spread_nodes(30);
    let (mut pm, mut draw) = ready(&nodes, 61);
    let members = off_path_members(&pm, &nodes, 2);
    let victim = members[0].ed25519;
    for _ in 0..3 {
        let mut plan = pm.plan_storage_request(&members, T0, &mut draw).unwrap();
        while dest(&plan).ed25519 != victim {
            plan = pm.plan_storage_request(&members, T0, &mut draw).unwrap();
        }
        let _ = pm.handle_outcome(plan, Outcome::from_inner(503, "", None), T0, &mut draw);
    }
    assert!(pm.pool().is_bad(&victim, T0));
    let idx = nodes.iter().position(|n| n.ed25519 == victim).unwrap();
    let mut moved = nodes.clone();
    moved[idx] = node(idx as u16, Ipv4Addr::new(192, 0, 2, 1), 22021);
    let doc2 = registry(&nodes)
        .next_builder(T0 + 1)
        .nodes(moved)
        .build()
        .unwrap();
    pm.handle_registry(&doc2, T0 + 1);
    assert!(!pm.pool().is_bad(&victim, T0 + 1));
    // An unchanged record keeps its mark.
    let doc3 = doc2
        .next_builder(T0 + 2)
        .nodes(doc2.nodes().to_vec())
        .build()
        .unwrap();
    for _ in 0..3 {
        let mut plan = pm
            .plan_storage_request(&members, T0 + 2, &mut draw)
            .unwrap();
        while dest(&plan).ed25519 != victim {
            plan = pm
                .plan_storage_request(&members, T0 + 2, &mut draw)
                .unwrap();
        }
        let _ = pm.handle_outcome(plan, Outcome::from_inner(503, "", None), T0 + 2, &mut draw);
    }
    pm.handle_registry(&doc3, T0 + 3);
    assert!(pm.pool().is_bad(&victim, T0 + 3));
}

#[test]
fn three_path_failures_rebuild_the_path() {
    let (mut pm, mut draw, members, _) = storage_setup(62);
    let (target, target_nodes) = {
        let (id, p) = pm.paths()[0];
        (id, p.clone())
    };
    for _ in 0..3 {
        let mut plan = pm.plan_storage_request(&members, T0, &mut draw).unwrap();
        while plan.path_id() != target {
            plan = pm.plan_storage_request(&members, T0, &mut draw).unwrap();
        }
        let _ = pm.handle_outcome(plan, Outcome::RelayFailure, T0, &mut draw);
    }
    assert!(pm.paths().iter().all(|(id, _)| *id != target));
    assert_eq!(pm.paths().len(), 1);
    // Relay failures count against the path, not its nodes.
    assert!(
        target_nodes
            .iter()
            .all(|n| pm.pool().failures(&n.ed25519) == 0)
    );
    let a = pm.poll_action(T0, &mut draw);
    let Some(Action::TestPath { path, .. }) = a else {
        panic!("expected a rebuild, got {a:?}");
    };
    assert_eq!(path[0], target_nodes[0], "same guard");
}

#[test]
fn guard_marked_bad_is_replaced() {
    let (mut pm, mut draw, members, plan) = storage_setup(63);
    let guard = plan.path[0].ed25519;
    let mut plan = plan;
    for _ in 0..3 {
        while plan.path[0].ed25519 != guard {
            plan = pm.plan_storage_request(&members, T0, &mut draw).unwrap();
        }
        let _ = pm.handle_outcome(plan, Outcome::GuardUnreachable, T0, &mut draw);
        plan = pm.plan_storage_request(&members, T0, &mut draw).unwrap();
    }
    assert_eq!(pm.poll_event(), Some(Event::NodeMarkedBad(guard)));
    assert_eq!(pm.poll_event(), Some(Event::GuardsChanged));
    assert_eq!(pm.guards().len(), 1);
    settle(&mut pm, T0, &mut draw, &BTreeSet::new());
    assert_eq!(pm.guards().len(), 2);
    assert!(pm.guards().iter().all(|g| g.ed25519 != guard));
    assert_paths_disjoint(&pm);
}

// ---- swarms §3.3 ---------------------------------------------------------

#[test]
fn failing_for_two_minutes_decides_bootstrap() {
    let (mut pm, mut draw, members, plan) = storage_setup(70);
    let d = pm.handle_outcome(plan, Outcome::RelayFailure, T0, &mut draw);
    let (_, next, _) = retry_plan(d);
    let d = pm.handle_outcome(next, Outcome::RelayFailure, T0 + 120_000, &mut draw);
    let Decision::Bootstrap(pending) = d else {
        panic!("expected a bootstrap, got {d:?}");
    };
    // A fresh registry restarts the timer; the request resumes.
    let nodes = spread_nodes(40);
    pm.handle_registry(&registry(&nodes), T0 + 121_000);
    let (delay, again, _) = retry_plan(pm.resume(pending, Some(&members), T0 + 121_000, &mut draw));
    assert_eq!(delay, 400);
    assert_eq!(again.attempt, 2);
}

#[test]
fn registry_refresh_schedule() {
    let nodes = spread_nodes(20);
    let (mut pm, mut draw) = ready(&nodes, 71);
    assert_eq!(pm.poll_action(T0 + HOUR - 1, &mut draw), None);
    assert_eq!(
        pm.poll_action(T0 + HOUR, &mut draw),
        Some(Action::RefreshRegistry)
    );
    // Not asked again for a minute (the aged, idle paths are rebuilt
    // meanwhile).
    let seen = settle(&mut pm, T0 + HOUR + 1, &mut draw, &BTreeSet::new());
    assert!(!seen.contains(&Action::RefreshRegistry));
    let t = T0 + HOUR + 60_000;
    assert_eq!(pm.poll_action(t, &mut draw), Some(Action::RefreshRegistry));
    pm.handle_registry(&registry(&nodes), t + 1);
    assert_eq!(pm.poll_action(t + 2, &mut draw), None);
    // Next: the rebuilt paths age out (the refresh is due at t + 1 + 1 h).
    assert_eq!(pm.poll_timeout(t + 2), Some(T0 + 2 * HOUR + 1));
    // A reply reports a newer epoch.
    pm.handle_epoch_seen(1);
    assert_eq!(pm.poll_action(t + 3, &mut draw), None);
    pm.handle_epoch_seen(2);
    assert_eq!(
        pm.poll_action(t + 4, &mut draw),
        Some(Action::RefreshRegistry)
    );
    assert_eq!(pm.poll_timeout(t + 4), Some(t + 4 + 60_000));
}

// ---- properties --------------------------------------------------------------

/// Nodes over `subnets` /24s, `per` nodes in each.
fn clustered_nodes(subnets: u8, per: u8) -> Vec<NodeRecord> {
    let mut out = Vec::new();
    for s in 0..subnets {
        for h in 0..per {
            let i = u16::from(s) * 256 + u16::from(h);
            out.push(node(i, Ipv4Addr::new(10, 0, s, h + 1), 22021));
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn paths_and_destinations_keep_the_rules(seed: u64, n in 8u16..40) {
        let nodes = spread_nodes(n);
        let (mut pm, mut draw) = ready(&nodes, seed);
        assert_paths_disjoint(&pm);
        let six: Vec<NodeRecord> = pm.paths().iter().flat_map(|(_, p)| p.iter().cloned()).collect();
        prop_assert_eq!(subnets(&six).len(), 6);
        let members: Vec<NodeRecord> = nodes.iter().take(5).cloned().collect();
        for _ in 0..10 {
            match pm.plan_storage_request(&members, T0, &mut draw) {
                Ok(plan) => {
                    assert_valid_storage_plan(&pm, &plan);
                    let d = dest(&plan);
                    let on = all_path_keys(&pm);
                    if members.iter().any(|m| !on.contains(&m.ed25519)) {
                        prop_assert!(!on.contains(&d.ed25519));
                        prop_assert!(plan.path.iter().all(|p| !same_subnet(p.ipv4, d.ipv4)));
                    }
                }
                Err(e) => prop_assert!(false, "planning failed: {e}"),
            }
        }
    }

    #[test]
    fn three_subnets_still_give_distinct_subnets_per_path(seed: u64, per in 4u8..8) {
        let nodes = clustered_nodes(3, per);
        let (mut pm, mut draw) = ready(&nodes, seed);
        assert_paths_disjoint(&pm);
        for (_, p) in pm.paths() {
            prop_assert_eq!(subnets(p).len(), 3);
        }
        for _ in 0..10 {
            let plan = pm.plan_storage_request(&nodes, T0, &mut draw).unwrap();
            assert_valid_storage_plan(&pm, &plan);
            let d = dest(&plan);
            prop_assert!(!all_path_keys(&pm).contains(&d.ed25519));
            prop_assert!(plan.path.iter().all(|p| p.ipv4 != d.ipv4));
        }
    }

    /// Random outcomes never break the path invariants, never plan a
    /// destination onto its own path, and never try a request more than 3
    /// times.
    #[test]
    fn random_outcomes_keep_invariants(seed: u64, steps in proptest::collection::vec((0u8..10, 0u8..4, 0u64..200_000), 1..60)) {
        let nodes = spread_nodes(24);
        let (mut pm, mut draw) = ready(&nodes, seed);
        let members: Vec<NodeRecord> = nodes.iter().skip(3).step_by(3).cloned().collect();
        let mut now = T0;
        let mut current: Option<Plan> = None;
        for (kind, pick_node, dt) in steps {
            now += dt;
            settle(&mut pm, now, &mut draw, &BTreeSet::new());
            assert_paths_disjoint(&pm);
            let plan = match current.take() {
                Some(p) => p,
                None => match pm.plan_storage_request(&members, now, &mut draw) {
                    Ok(p) => p,
                    Err(_) => continue,
                },
            };
            prop_assert!(plan.attempt < MAX_TRIES);
            check_path(&plan.path);
            let d = dest(&plan).clone();
            prop_assert!(plan.path.iter().all(|n| n.ed25519 != d.ed25519));
            let x = match pick_node { 0 => plan.path[1].ed25519, 1 => plan.path[2].ed25519, 2 => d.ed25519, _ => nodes[0].ed25519 };
            let outcome = match kind {
                0 => Outcome::GuardUnreachable,
                1 => Outcome::NextNodeNotFound(x),
                2 => Outcome::RelayFailure,
                3 => Outcome::RelayRejected,
                4 => Outcome::Misdirected { snodes: vec![x] },
                5 => Outcome::ClockRejected,
                6 => Outcome::DestinationFailure { status: 503 },
                7 => Outcome::Rejected { status: 401 },
                _ => Outcome::Success { node_time_ms: Some(now) },
            };
            let mut decision = pm.handle_outcome(plan, outcome, now, &mut draw);
            loop {
                decision = match decision {
                    Decision::Retry { plan, .. } => { current = Some(*plan); break; }
                    Decision::RefreshRegistry(p) | Decision::Bootstrap(p) => pm.resume(p, Some(&members), now, &mut draw),
                    Decision::ResyncClock { pending, .. } => pm.resume(pending, None, now, &mut draw),
                    Decision::Done | Decision::Fail(_) => break,
                };
            }
        }
    }
}
