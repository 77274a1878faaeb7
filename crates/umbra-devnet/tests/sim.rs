//! Tests of the swarm scale simulator (`umbra_devnet::sim`, the `umbra-sim`
//! binary): determinism, ownership against the protocol's `SwarmRing::select`,
//! the §4 minimum swarm size, the §7.1 hand-over accounting against a brute
//! force count, and the CSV and PNG outputs. Small sizes, so they run in
//! seconds unoptimised.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use umbra_devnet::sim::{
    self, CSV_HEADER, NodeKey, SimConfig, SimError, Simulation, owners_of_sorted, ring_cuts,
};
use umbra_proto::swarm::{SwarmId, SwarmParams, SwarmRing};

fn small(seed: u64) -> SimConfig {
    SimConfig {
        nodes: 120,
        accounts: 3_000,
        epochs: 12,
        join_rate: 0.05,
        leave_rate: 0.05,
        seed,
        params: SwarmParams::PUBLIC,
        threads: 2,
    }
}

#[test]
fn same_seed_same_csv_other_seed_other_csv() {
    let a = sim::to_csv(&sim::run(&small(7), |_| {}).unwrap());
    let b = sim::to_csv(&sim::run(&small(7), |_| {}).unwrap());
    assert_eq!(a, b);
    let c = sim::to_csv(&sim::run(&small(8), |_| {}).unwrap());
    assert_ne!(a, c);
    // The thread count changes nothing.
    let one = SimConfig {
        threads: 1,
        ..small(7)
    };
    let three = SimConfig {
        threads: 3,
        ..small(7)
    };
    assert_eq!(a, sim::to_csv(&sim::run(&one, |_| {}).unwrap()));
    assert_eq!(a, sim::to_csv(&sim::run(&three, |_| {}).unwrap()));
}

#[test]
fn every_account_has_exactly_one_owner_each_epoch() {
    let cfg = SimConfig {
        accounts: 2_000,
        ..small(3)
    };
    let mut s = Simulation::new(cfg.clone()).unwrap();
    for _ in 0..cfg.epochs {
        let st = s.step().unwrap();
        let ring = s.ring().unwrap().clone();
        let ids = ring.ids();
        let positions = s.positions();
        let owners = s.owners();
        assert_eq!(owners.len(), positions.len());
        assert!(positions.windows(2).all(|w| w[0] <= w[1]));
        let mut per_swarm = vec![0usize; ids.len()];
        for (p, &o) in positions.iter().zip(owners) {
            // The walk agrees with the protocol's owner function...
            assert_eq!(ids[o as usize], ring.select(*p), "position {p:#x}");
            // ...and exactly one swarm's interval holds the account.
            let holders = ids
                .iter()
                .filter(|id| ring.range(**id).unwrap().contains(*p))
                .count();
            assert_eq!(holders, 1, "position {p:#x}");
            per_swarm[o as usize] += 1;
        }
        assert_eq!(per_swarm.iter().sum::<usize>(), cfg.accounts);
        assert_eq!(st.accounts_max, per_swarm.iter().copied().max().unwrap());
        assert_eq!(st.accounts_min, per_swarm.iter().copied().min().unwrap());
    }
}

#[test]
fn swarms_respect_the_minimum_size() {
    for params in [
        SwarmParams::PUBLIC,
        SwarmParams {
            min_swarm_size: 3,
            excess_base: 3,
            ideal_swarm_margin: 1,
            new_swarm_size: 4,
        },
    ] {
        let cfg = SimConfig {
            params,
            join_rate: 0.1,
            leave_rate: 0.1,
            ..small(11)
        };
        let mut s = Simulation::new(cfg.clone()).unwrap();
        for _ in 0..cfg.epochs {
            let st = s.step().unwrap();
            assert!(st.size_min >= params.min_swarm_size, "{st:?}");
            let mut sizes: BTreeMap<SwarmId, usize> = BTreeMap::new();
            for id in s.assignment().values() {
                *sizes.entry(*id).or_default() += 1;
            }
            assert!(sizes.values().all(|&n| n >= params.min_swarm_size));
            assert_eq!(sizes.len(), st.swarms);
            assert_eq!(sizes.values().sum::<usize>(), st.nodes);
            assert_eq!(
                st.size_histogram.iter().map(|h| h.1).sum::<usize>(),
                st.swarms
            );
        }
    }
}

#[test]
fn without_churn_nothing_moves_after_the_first_epoch() {
    let cfg = SimConfig {
        join_rate: 0.0,
        leave_rate: 0.0,
        ..small(5)
    };
    let r = sim::run(&cfg, |_| {}).unwrap();
    assert_eq!(r.epochs.len(), cfg.epochs as usize);
    let first = &r.epochs[0];
    assert_eq!(first.joined, cfg.nodes);
    for e in &r.epochs[1..] {
        assert_eq!((e.joined, e.left, e.nodes_moved), (0, 0, 0), "{e:?}");
        assert_eq!((e.swarms_created, e.swarms_dissolved), (0, 0));
        assert_eq!(e.accounts_remapped, 0);
        assert_eq!(e.accounts_new_owners, 0);
        assert_eq!((e.replica_copies, e.push_deliveries), (0, 0));
        assert_eq!(e.copy_share(), 0.0);
        assert_eq!(e.replicas_total, first.replicas_total);
    }
}

#[test]
fn churn_moves_data() {
    let r = sim::run(&small(9), |_| {}).unwrap();
    let moved: u64 = r.epochs.iter().map(|e| e.replica_copies).sum();
    assert!(moved > 0);
    for e in &r.epochs[1..] {
        assert_eq!(e.joined, 6, "5 % of 120");
        assert_eq!(e.left, 6);
        assert_eq!(e.nodes, 120);
        // Every account of a swarm with a new member gains an owner, and a
        // new owner is at least one copy.
        assert!(e.replica_copies >= e.accounts_new_owners as u64);
        assert!(e.replica_copies <= e.replicas_total);
    }
}

/// Members of each swarm of an assignment.
fn members(a: &BTreeMap<NodeKey, SwarmId>) -> BTreeMap<SwarmId, BTreeSet<NodeKey>> {
    let mut m: BTreeMap<SwarmId, BTreeSet<NodeKey>> = BTreeMap::new();
    for (k, id) in a {
        m.entry(*id).or_default().insert(*k);
    }
    m
}

#[test]
fn hand_over_figures_match_a_brute_force_count() {
    let cfg = SimConfig {
        nodes: 60,
        accounts: 1_500,
        epochs: 8,
        join_rate: 0.3,
        leave_rate: 0.1,
        ..small(21)
    };
    let mut s = Simulation::new(cfg.clone()).unwrap();
    s.step().unwrap();
    let mut any_remapped = false;
    for _ in 1..cfg.epochs {
        let old_ring: SwarmRing = s.ring().unwrap().clone();
        let old = members(s.assignment());
        let st = s.step().unwrap();
        let new_ring = s.ring().unwrap();
        let new = members(s.assignment());
        let (mut remapped, mut gaining, mut copies, mut deliveries, mut total) =
            (0usize, 0usize, 0u64, 0u64, 0u64);
        for p in s.positions() {
            let o_id = old_ring.select(*p);
            let n_id = new_ring.select(*p);
            let o = &old[&o_id];
            let w = &new[&n_id];
            let wo = w.difference(o).count() as u64;
            remapped += usize::from(o_id != n_id);
            gaining += usize::from(wo > 0);
            copies += wo;
            deliveries += o.len() as u64 * wo;
            total += w.len() as u64;
        }
        assert_eq!(st.accounts_remapped, remapped, "epoch {}", st.epoch);
        assert_eq!(st.accounts_new_owners, gaining, "epoch {}", st.epoch);
        assert_eq!(st.replica_copies, copies, "epoch {}", st.epoch);
        assert_eq!(st.push_deliveries, deliveries, "epoch {}", st.epoch);
        assert_eq!(st.replicas_total, total, "epoch {}", st.epoch);
        any_remapped |= remapped > 0;
    }
    // The growing network creates swarms, so the ring itself changes too.
    assert!(any_remapped);
}

#[test]
fn csv_and_png_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small(1);
    let r = sim::run(&cfg, |_| {}).unwrap();
    sim::write_outputs(&r, dir.path()).unwrap();
    let csv = std::fs::read_to_string(dir.path().join("sim.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 1 + cfg.epochs as usize);
    assert_eq!(lines[0], CSV_HEADER);
    assert!(lines[0].starts_with("epoch,nodes,joined,left,swarms,"));
    let columns = lines[0].split(',').count();
    for (i, row) in lines[1..].iter().enumerate() {
        let fields: Vec<&str> = row.split(',').collect();
        assert_eq!(fields.len(), columns, "row {i}");
        assert_eq!(fields[0], (i + 1).to_string());
    }
    let png = std::fs::read(dir.path().join("sim.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert!(png.len() > 1_000);
    let table = sim::summary_table(&r);
    assert!(table.contains("replica copies to push"));
}

#[test]
fn unwritable_output_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let r = sim::run(
        &SimConfig {
            epochs: 2,
            ..small(1)
        },
        |_| {},
    )
    .unwrap();
    assert!(matches!(
        sim::write_outputs(&r, &file),
        Err(SimError::Io { .. })
    ));
}

#[test]
fn a_single_swarm_owns_everything() {
    let cfg = SimConfig {
        nodes: 6,
        accounts: 500,
        epochs: 3,
        join_rate: 0.0,
        leave_rate: 0.0,
        ..small(2)
    };
    let r = sim::run(&cfg, |_| {}).unwrap();
    for e in &r.epochs {
        assert_eq!(e.swarms, 1);
        assert_eq!(e.accounts_max, 500);
        assert_eq!(e.replicas_total, 500 * 6);
    }
}

fn ring_of(ids: &[u64]) -> SwarmRing {
    SwarmRing::new(ids.iter().map(|&v| SwarmId::new(v).unwrap())).unwrap()
}

#[test]
fn walk_handles_cut_points_and_the_wrap() {
    // Swarms {100, 200}: 200 owns (150, 2^63 + 150] (the tie at 150 goes
    // left, to 100), and 100 owns the rest, across the wrap.
    let ring = ring_of(&[100, 200]);
    let cuts = ring_cuts(&ring).unwrap();
    let mid = (1u64 << 63) + 150;
    let positions = [0u64, 100, 150, 151, 200, 201, mid, mid + 1, u64::MAX];
    let expected = [100u64, 100, 100, 200, 200, 200, 200, 100, 100];
    let mut out = [0u32; 9];
    owners_of_sorted(&cuts, &positions, &mut out);
    for ((p, o), want) in positions.iter().zip(out).zip(expected) {
        assert_eq!(ring.ids()[o as usize].get(), want, "position {p}");
        assert_eq!(ring.ids()[o as usize], ring.select(*p), "position {p}");
    }
}

proptest! {
    #[test]
    fn walk_matches_select(
        ids in proptest::collection::vec(0..u64::MAX, 1..20),
        mut positions in proptest::collection::vec(any::<u64>(), 0..200),
        split in 0usize..200,
    ) {
        let ring = ring_of(&ids);
        let cuts = ring_cuts(&ring).unwrap();
        positions.sort_unstable();
        let mut out = vec![0u32; positions.len()];
        // Walking in two pieces (as the threads do) gives the same owners.
        let split = split.min(positions.len());
        let (a, b) = positions.split_at(split);
        let (oa, ob) = out.split_at_mut(split);
        owners_of_sorted(&cuts, a, oa);
        owners_of_sorted(&cuts, b, ob);
        for (p, o) in positions.iter().zip(&out) {
            prop_assert_eq!(ring.ids()[*o as usize], ring.select(*p));
        }
    }
}
