//! The swarm scale simulator behind `umbra-sim` (issue 6 item 5).
//!
//! It runs the protocol's real node → swarm assignment
//! ([`assign_swarms`], `shared/spec/swarms.md` §4) and the real account →
//! swarm mapping ([`SwarmRing`], §1–2) for thousands of nodes and up to
//! millions of accounts over many registry epochs with node churn, and
//! measures what the hand-over rule of §7.1 costs: when an epoch changes, every
//! account's messages go to the new owners that were not old owners
//! (`W \ O`).
//!
//! Everything is derived from one seed, so a run is reproducible bit for bit:
//! node keys, account IDs, which nodes leave, and each epoch's assignment seed
//! (a stand-in epoch hash fed to [`seed_from_epoch_hash`]). No clock, no OS
//! randomness.
//!
//! Account ownership is computed with a merge walk instead of one
//! [`SwarmRing::select`] per account: account positions are sorted once, each
//! epoch's swarm intervals come from [`SwarmRing::range`] (the protocol's own
//! interval code), and the sorted interval ends partition the sorted positions.
//! The tests check the walk against `select` account by account.
//!
//! The module also writes the per-epoch CSV and a PNG chart. The chart is drawn
//! with `plotters`' bitmap backend and a small built-in 5×7 pixel font, so it
//! needs no system font library and no font file.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
use umbra_proto::swarm::{
    SwarmError, SwarmId, SwarmParams, SwarmRing, assign_swarms, seed_from_epoch_hash,
    swarm_space_of_id_bytes,
};

/// A node's identity in the simulation: its 32 Ed25519 public-key bytes.
/// Only the bytes (their order) enter the assignment, so they need not be a
/// valid curve point.
pub type NodeKey = [u8; 32];

/// What to simulate.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Nodes in the first epoch.
    pub nodes: usize,
    /// Accounts (33-byte IDs, `05` prefix).
    pub accounts: usize,
    /// Registry epochs, the first one included (epoch 1 places every node).
    pub epochs: u64,
    /// Share of the current nodes that join in each epoch after the first.
    pub join_rate: f64,
    /// Share of the current nodes that leave in each epoch after the first.
    pub leave_rate: f64,
    /// The seed every random choice derives from.
    pub seed: u64,
    /// The assignment constants (§4.1).
    pub params: SwarmParams,
    /// Worker threads for the per-account work (1 or more).
    pub threads: usize,
}

impl Default for SimConfig {
    /// The configuration: 20,000 nodes, 1,000,000 accounts, 100
    /// epochs, 1 % joining and 1 % leaving per epoch, seed 42, public
    /// constants, 2 threads.
    fn default() -> Self {
        SimConfig {
            nodes: 20_000,
            accounts: 1_000_000,
            epochs: 100,
            join_rate: 0.01,
            leave_rate: 0.01,
            seed: 42,
            params: SwarmParams::PUBLIC,
            threads: 2,
        }
    }
}

/// Why a simulation could not run or its output could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The configuration is unusable.
    #[error("invalid simulation settings: {0}")]
    Invalid(String),
    /// The swarm code refused its input (bad constants, no swarm).
    #[error("swarm computation: {0}")]
    Swarm(#[from] SwarmError),
    /// Writing an output file failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being written.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Drawing the chart failed.
    #[error("drawing the chart: {0}")]
    Plot(String),
}

/// The figures of one epoch.
///
/// Movement fields compare the epoch with the one before; they are 0 in epoch
/// 1, where every replica is an initial placement rather than a hand-over.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochStats {
    /// The epoch number (1-based).
    pub epoch: u64,
    /// Nodes listed in this epoch.
    pub nodes: usize,
    /// Nodes that joined in this epoch.
    pub joined: usize,
    /// Nodes that left in this epoch.
    pub left: usize,
    /// Number of swarms.
    pub swarms: usize,
    /// Swarm IDs present now but not in the previous epoch.
    pub swarms_created: usize,
    /// Swarm IDs present in the previous epoch but not now.
    pub swarms_dissolved: usize,
    /// Nodes listed in both epochs whose swarm changed.
    pub nodes_moved: usize,
    /// Smallest swarm.
    pub size_min: usize,
    /// Median swarm size (nearest rank).
    pub size_p50: usize,
    /// Largest swarm.
    pub size_max: usize,
    /// Mean swarm size.
    pub size_mean: f64,
    /// Swarm size → number of swarms of that size, ascending.
    pub size_histogram: Vec<(usize, usize)>,
    /// Fewest accounts owned by one swarm.
    pub accounts_min: usize,
    /// Most accounts owned by one swarm.
    pub accounts_max: usize,
    /// Accounts per swarm, mean.
    pub accounts_mean: f64,
    /// Accounts whose owning swarm ID changed.
    pub accounts_remapped: usize,
    /// Accounts with at least one new owner (`W \ O` not empty).
    pub accounts_new_owners: usize,
    /// Replica copies to create: `Σ |W \ O|` over accounts (§7.1).
    pub replica_copies: u64,
    /// All replicas after the epoch: `Σ |W|` over accounts.
    pub replicas_total: u64,
    /// Push deliveries including duplicates: every old owner pushes to every
    /// new owner, `Σ |O| · |W \ O|`.
    pub push_deliveries: u64,
    /// Total accounts (for shares).
    pub accounts: usize,
}

impl EpochStats {
    /// `accounts_remapped` as a share of all accounts.
    pub fn remapped_share(&self) -> f64 {
        ratio(self.accounts_remapped as f64, self.accounts as f64)
    }

    /// `accounts_new_owners` as a share of all accounts.
    pub fn new_owner_share(&self) -> f64 {
        ratio(self.accounts_new_owners as f64, self.accounts as f64)
    }

    /// `replica_copies` as a share of all replicas: the share of stored data
    /// that moves in this epoch.
    pub fn copy_share(&self) -> f64 {
        ratio(self.replica_copies as f64, self.replicas_total as f64)
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// A finished run.
#[derive(Debug, Clone, PartialEq)]
pub struct SimReport {
    /// The settings it ran with.
    pub config: SimConfig,
    /// One entry per epoch, in order.
    pub epochs: Vec<EpochStats>,
}

/// A small deterministic generator (SplitMix64) for the simulation's own
/// choices: which nodes leave. Not cryptographic; it need not be.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n ≥ 1`), by rejection.
    fn below(&mut self, n: usize) -> usize {
        let n = n.max(1) as u64;
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let x = self.next_u64();
            if x < zone {
                return (x % n) as usize;
            }
        }
    }
}

fn derive(label: &[u8], seed: u64, index: u64) -> [u8; 32] {
    umbra_crypto::hash::blake2b_fixed::<32>(&[
        b"umbra-sim/",
        label,
        &seed.to_le_bytes(),
        &index.to_le_bytes(),
    ])
}

/// Node `index`'s key in a run with `seed`.
pub fn node_key(seed: u64, index: u64) -> NodeKey {
    derive(b"node", seed, index)
}

/// Account `index`'s 33-byte ID (`05` ‖ 32 bytes) in a run with `seed`.
pub fn account_id(seed: u64, index: u64) -> [u8; 33] {
    let mut id = [0u8; 33];
    id[0] = 0x05;
    id[1..].copy_from_slice(&derive(b"account", seed, index));
    id
}

/// The stand-in epoch hash of `epoch`; its first 8 bytes seed that epoch's
/// assignment through [`seed_from_epoch_hash`], as a real registry's would.
pub fn epoch_hash(seed: u64, epoch: u64) -> [u8; 32] {
    derive(b"epoch", seed, epoch)
}

/// The ownership cut points of `ring`: each swarm's interval upper end
/// ([`SwarmRing::range`]'s `hi`), sorted, with the index of the swarm (in
/// `ring.ids()`) that owns the interval ending there.
pub fn ring_cuts(ring: &SwarmRing) -> Result<Vec<(u64, u32)>, SimError> {
    let mut cuts = Vec::with_capacity(ring.len());
    for (i, id) in ring.ids().iter().enumerate() {
        let idx = u32::try_from(i).map_err(|_| SimError::Invalid("too many swarms".into()))?;
        cuts.push((ring.range(*id)?.hi(), idx));
    }
    cuts.sort_unstable();
    Ok(cuts)
}

/// The owning swarm (index into the ring's IDs) of each position of the
/// ascending slice `sorted_positions`, given the ring's [`ring_cuts`].
///
/// A swarm owns `(lo, hi]`, and the intervals tile the ring, so a position
/// belongs to the interval ending at the first cut at or above it; positions
/// above the last cut wrap to the first.
pub fn owners_of_sorted(cuts: &[(u64, u32)], sorted_positions: &[u64], out: &mut [u32]) {
    let Some(&(_, wrap_owner)) = cuts.first() else {
        return;
    };
    let Some(&first) = sorted_positions.first() else {
        return;
    };
    let mut j = cuts.partition_point(|c| c.0 < first);
    for (p, o) in sorted_positions.iter().zip(out.iter_mut()) {
        while j < cuts.len() && cuts[j].0 < *p {
            j += 1;
        }
        *o = cuts.get(j).map_or(wrap_owner, |c| c.1);
    }
}

/// One epoch's swarm layout.
#[derive(Debug, Clone)]
struct Layout {
    ring: SwarmRing,
    /// Members per swarm, by index in `ring.ids()`.
    sizes: Vec<u32>,
    /// Owner (index in `ring.ids()`) of each account, by sorted position.
    owners: Vec<u32>,
}

/// A simulation that advances one epoch at a time.
#[derive(Debug)]
pub struct Simulation {
    cfg: SimConfig,
    rng: SplitMix64,
    next_node: u64,
    live: Vec<NodeKey>,
    assignment: BTreeMap<NodeKey, SwarmId>,
    positions: Vec<u64>,
    layout: Option<Layout>,
    epoch: u64,
}

impl Simulation {
    /// Checks the settings and generates the accounts. No epoch has run yet.
    pub fn new(cfg: SimConfig) -> Result<Self, SimError> {
        cfg.params.validate()?;
        if cfg.nodes == 0 {
            return Err(SimError::Invalid("at least one node is needed".into()));
        }
        if cfg.accounts == 0 {
            return Err(SimError::Invalid("at least one account is needed".into()));
        }
        if u32::try_from(cfg.accounts).is_err() {
            return Err(SimError::Invalid("at most 2^32 − 1 accounts".into()));
        }
        for (name, r) in [("join", cfg.join_rate), ("leave", cfg.leave_rate)] {
            if !(0.0..1.0).contains(&r) {
                return Err(SimError::Invalid(format!(
                    "the {name} rate must be in [0, 1), got {r}"
                )));
            }
        }
        if cfg.threads == 0 {
            return Err(SimError::Invalid("at least one thread is needed".into()));
        }
        let positions = account_positions(cfg.seed, cfg.accounts, cfg.threads)?;
        let live: Vec<NodeKey> = (0..cfg.nodes as u64)
            .map(|i| node_key(cfg.seed, i))
            .collect();
        Ok(Simulation {
            rng: SplitMix64(u64::from_le_bytes(first8(&derive(b"churn", cfg.seed, 0)))),
            next_node: cfg.nodes as u64,
            live,
            assignment: BTreeMap::new(),
            positions,
            layout: None,
            epoch: 0,
            cfg,
        })
    }

    /// The settings.
    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// The last epoch run (0 before the first).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Account positions, ascending (account order is irrelevant to every
    /// figure, so accounts are identified by their rank).
    pub fn positions(&self) -> &[u64] {
        &self.positions
    }

    /// The node → swarm map of the last epoch.
    pub fn assignment(&self) -> &BTreeMap<NodeKey, SwarmId> {
        &self.assignment
    }

    /// The swarm ring of the last epoch.
    pub fn ring(&self) -> Option<&SwarmRing> {
        self.layout.as_ref().map(|l| &l.ring)
    }

    /// The owner of each account of [`positions`](Self::positions) in the last
    /// epoch, as an index into the ring's IDs.
    pub fn owners(&self) -> &[u32] {
        self.layout.as_ref().map_or(&[], |l| &l.owners)
    }

    /// Runs the next epoch: churn (after the first), assignment, ownership,
    /// and the figures.
    pub fn step(&mut self) -> Result<EpochStats, SimError> {
        let epoch = self.epoch + 1;
        let (joined, left) = if epoch == 1 {
            (self.live.len(), 0)
        } else {
            self.churn()
        };
        let seed = seed_from_epoch_hash(&epoch_hash(self.cfg.seed, epoch));
        let assignment = assign_swarms(
            self.live.iter().copied(),
            &self.assignment,
            seed,
            &self.cfg.params,
        )?;
        let ring = SwarmRing::new(assignment.values().copied())?;
        let ids = ring.ids();
        let index_of = |id: &SwarmId| -> Result<u32, SimError> {
            ids.binary_search(id)
                .ok()
                .and_then(|i| u32::try_from(i).ok())
                .ok_or_else(|| SimError::Invalid(format!("swarm {id} missing from the ring")))
        };
        let mut sizes = vec![0u32; ids.len()];
        for id in assignment.values() {
            sizes[index_of(id)? as usize] += 1;
        }
        let cuts = ring_cuts(&ring)?;
        let mut owners = vec![0u32; self.positions.len()];
        for_chunks(
            self.cfg.threads,
            &self.positions,
            &mut owners,
            |pos, out| owners_of_sorted(&cuts, pos, out),
        );

        let mut st = EpochStats {
            epoch,
            nodes: self.live.len(),
            joined,
            left,
            swarms: ids.len(),
            swarms_created: 0,
            swarms_dissolved: 0,
            nodes_moved: 0,
            size_min: 0,
            size_p50: 0,
            size_max: 0,
            size_mean: 0.0,
            size_histogram: Vec::new(),
            accounts_min: 0,
            accounts_max: 0,
            accounts_mean: 0.0,
            accounts_remapped: 0,
            accounts_new_owners: 0,
            replica_copies: 0,
            replicas_total: 0,
            push_deliveries: 0,
            accounts: self.positions.len(),
        };
        size_figures(&sizes, &mut st);
        account_figures(&owners, &sizes, &mut st);

        if let Some(old) = &self.layout {
            let old_ids = old.ring.ids();
            st.swarms_created = ids.iter().filter(|id| !old.ring.contains(**id)).count();
            st.swarms_dissolved = old_ids.iter().filter(|id| !ring.contains(**id)).count();
            // |W ∩ O| per (old swarm, new swarm): nodes listed in both epochs.
            let mut stayed: HashMap<(u32, u32), u32> = HashMap::new();
            for (key, new_id) in &assignment {
                if let Some(old_id) = self.assignment.get(key) {
                    if old_id != new_id {
                        st.nodes_moved += 1;
                    }
                    let o = old_ids
                        .binary_search(old_id)
                        .ok()
                        .and_then(|i| u32::try_from(i).ok())
                        .ok_or_else(|| {
                            SimError::Invalid(format!("swarm {old_id} missing from the old ring"))
                        })?;
                    *stayed.entry((o, index_of(new_id)?)).or_default() += 1;
                }
            }
            let ctx = MoveContext {
                old_ids,
                new_ids: ids,
                old_sizes: &old.sizes,
                new_sizes: &sizes,
                stayed: &stayed,
            };
            let totals = movement(self.cfg.threads, &ctx, &old.owners, &owners);
            st.accounts_remapped = totals.remapped;
            st.accounts_new_owners = totals.new_owners;
            st.replica_copies = totals.copies;
            st.push_deliveries = totals.deliveries;
            st.replicas_total = totals.replicas;
        } else {
            st.replicas_total = owners.iter().map(|&o| u64::from(sizes[o as usize])).sum();
        }

        self.assignment = assignment;
        self.layout = Some(Layout {
            ring,
            sizes,
            owners,
        });
        self.epoch = epoch;
        Ok(st)
    }

    /// Removes `leave_rate` of the nodes and adds `join_rate` new ones;
    /// returns (joined, left).
    fn churn(&mut self) -> (usize, usize) {
        let n = self.live.len();
        let leave = ((n as f64) * self.cfg.leave_rate).round() as usize;
        let join = ((n as f64) * self.cfg.join_rate).round() as usize;
        // Never empty the network: keep at least one node.
        let leave = leave.min(n.saturating_sub(1));
        for _ in 0..leave {
            let i = self.rng.below(self.live.len());
            self.live.swap_remove(i);
        }
        for _ in 0..join {
            self.live.push(node_key(self.cfg.seed, self.next_node));
            self.next_node += 1;
        }
        (join, leave)
    }
}

fn first8(b: &[u8; 32]) -> [u8; 8] {
    let mut o = [0u8; 8];
    o.copy_from_slice(&b[..8]);
    o
}

/// The sorted positions of the run's accounts.
fn account_positions(seed: u64, n: usize, threads: usize) -> Result<Vec<u64>, SimError> {
    let mut positions = vec![0u64; n];
    let chunk = n.div_ceil(threads.max(1)).max(1);
    let results: Vec<Result<(), SimError>> = std::thread::scope(|s| {
        let handles: Vec<_> = positions
            .chunks_mut(chunk)
            .enumerate()
            .map(|(c, out)| {
                s.spawn(move || {
                    let base = (c * chunk) as u64;
                    for (k, p) in out.iter_mut().enumerate() {
                        *p = swarm_space_of_id_bytes(&account_id(seed, base + k as u64))?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(SimError::Invalid("a worker thread panicked".into())))
            })
            .collect()
    });
    for r in results {
        r?;
    }
    positions.sort_unstable();
    Ok(positions)
}

/// Runs `f` over matching chunks of `input` and `out` on `threads` threads.
fn for_chunks<F>(threads: usize, input: &[u64], out: &mut [u32], f: F)
where
    F: Fn(&[u64], &mut [u32]) + Sync,
{
    let chunk = input.len().div_ceil(threads.max(1)).max(1);
    if threads <= 1 {
        f(input, out);
        return;
    }
    std::thread::scope(|s| {
        for (i, o) in input.chunks(chunk).zip(out.chunks_mut(chunk)) {
            let f = &f;
            s.spawn(move || f(i, o));
        }
    });
}

fn size_figures(sizes: &[u32], st: &mut EpochStats) {
    let mut sorted: Vec<usize> = sizes.iter().map(|&s| s as usize).collect();
    sorted.sort_unstable();
    let n = sorted.len();
    if n == 0 {
        return;
    }
    st.size_min = sorted[0];
    st.size_max = sorted[n - 1];
    // Nearest rank: the ⌈n/2⌉-th smallest.
    st.size_p50 = sorted[n.div_ceil(2) - 1];
    st.size_mean = sorted.iter().sum::<usize>() as f64 / n as f64;
    let mut hist: BTreeMap<usize, usize> = BTreeMap::new();
    for s in sorted {
        *hist.entry(s).or_default() += 1;
    }
    st.size_histogram = hist.into_iter().collect();
}

fn account_figures(owners: &[u32], sizes: &[u32], st: &mut EpochStats) {
    let mut per = vec![0usize; sizes.len()];
    for &o in owners {
        if let Some(c) = per.get_mut(o as usize) {
            *c += 1;
        }
    }
    st.accounts_min = per.iter().copied().min().unwrap_or(0);
    st.accounts_max = per.iter().copied().max().unwrap_or(0);
    st.accounts_mean = ratio(owners.len() as f64, per.len() as f64);
}

struct MoveContext<'a> {
    old_ids: &'a [SwarmId],
    new_ids: &'a [SwarmId],
    old_sizes: &'a [u32],
    new_sizes: &'a [u32],
    stayed: &'a HashMap<(u32, u32), u32>,
}

#[derive(Default)]
struct MoveTotals {
    remapped: usize,
    new_owners: usize,
    copies: u64,
    deliveries: u64,
    replicas: u64,
}

/// The §7.1 hand-over cost of moving from `old` owners to `new` owners.
fn movement(threads: usize, ctx: &MoveContext<'_>, old: &[u32], new: &[u32]) -> MoveTotals {
    let work = |old: &[u32], new: &[u32]| -> MoveTotals {
        let mut t = MoveTotals::default();
        // Accounts are sorted by position, so (old, new) pairs come in runs.
        let mut last = None;
        let (mut remapped, mut w, mut wo, mut o_size) = (false, 0u64, 0u64, 0u64);
        for (&o, &n) in old.iter().zip(new) {
            if last != Some((o, n)) {
                last = Some((o, n));
                let old_id = ctx.old_ids.get(o as usize);
                let new_id = ctx.new_ids.get(n as usize);
                remapped = old_id != new_id;
                w = u64::from(ctx.new_sizes.get(n as usize).copied().unwrap_or(0));
                o_size = u64::from(ctx.old_sizes.get(o as usize).copied().unwrap_or(0));
                let both = u64::from(ctx.stayed.get(&(o, n)).copied().unwrap_or(0));
                wo = w.saturating_sub(both);
            }
            t.remapped += usize::from(remapped);
            t.new_owners += usize::from(wo > 0);
            t.copies += wo;
            t.deliveries += o_size * wo;
            t.replicas += w;
        }
        t
    };
    let chunk = old.len().div_ceil(threads.max(1)).max(1);
    if threads <= 1 {
        return work(old, new);
    }
    let parts: Vec<MoveTotals> = std::thread::scope(|s| {
        let handles: Vec<_> = old
            .chunks(chunk)
            .zip(new.chunks(chunk))
            .map(|(o, n)| {
                let work = &work;
                s.spawn(move || work(o, n))
            })
            .collect();
        handles
            .into_iter()
            .zip(old.chunks(chunk).zip(new.chunks(chunk)))
            // A worker cannot panic (no indexing), but recompute rather than
            // lose figures if one somehow did.
            .map(|(h, (o, n))| h.join().unwrap_or_else(|_| work(o, n)))
            .collect()
    });
    parts.into_iter().fold(MoveTotals::default(), |mut a, b| {
        a.remapped += b.remapped;
        a.new_owners += b.new_owners;
        a.copies += b.copies;
        a.deliveries += b.deliveries;
        a.replicas += b.replicas;
        a
    })
}

/// Runs every epoch of `cfg`, calling `progress` after each.
pub fn run(cfg: &SimConfig, mut progress: impl FnMut(&EpochStats)) -> Result<SimReport, SimError> {
    let mut sim = Simulation::new(cfg.clone())?;
    let mut epochs = Vec::new();
    for _ in 0..cfg.epochs {
        let st = sim.step()?;
        progress(&st);
        epochs.push(st);
    }
    Ok(SimReport {
        config: cfg.clone(),
        epochs,
    })
}

/// The CSV header (one row per epoch follows).
pub const CSV_HEADER: &str = "epoch,nodes,joined,left,swarms,swarms_created,swarms_dissolved,\
nodes_moved,size_min,size_p50,size_max,size_mean,accounts_per_swarm_min,\
accounts_per_swarm_max,accounts_per_swarm_mean,accounts_remapped,accounts_remapped_share,\
accounts_new_owners,accounts_new_owners_share,replica_copies,replicas_total,\
replica_copies_share,push_deliveries,size_histogram";

/// The CSV text of a report: [`CSV_HEADER`], then one row per epoch. Shares
/// are fractions (0–1); `size_histogram` is `size:count` pairs separated by
/// spaces.
pub fn to_csv(report: &SimReport) -> String {
    let mut s = String::with_capacity(256 * (report.epochs.len() + 1));
    s.push_str(CSV_HEADER);
    s.push('\n');
    for e in &report.epochs {
        let hist: Vec<String> = e
            .size_histogram
            .iter()
            .map(|(size, n)| format!("{size}:{n}"))
            .collect();
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{},{:.4},{},{},{:.2},{},{:.6},{},{:.6},{},{},{:.6},{},{}",
            e.epoch,
            e.nodes,
            e.joined,
            e.left,
            e.swarms,
            e.swarms_created,
            e.swarms_dissolved,
            e.nodes_moved,
            e.size_min,
            e.size_p50,
            e.size_max,
            e.size_mean,
            e.accounts_min,
            e.accounts_max,
            e.accounts_mean,
            e.accounts_remapped,
            e.remapped_share(),
            e.accounts_new_owners,
            e.new_owner_share(),
            e.replica_copies,
            e.replicas_total,
            e.copy_share(),
            e.push_deliveries,
            hist.join(" ")
        );
    }
    s
}

/// Aggregate figures of a run, for the summary table.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Swarms in the last epoch.
    pub swarms_last: usize,
    /// Fewest / most swarms over the run.
    pub swarms_range: (usize, usize),
    /// Smallest swarm over the run.
    pub size_min: usize,
    /// Median swarm size in the last epoch.
    pub size_p50_last: usize,
    /// Largest swarm over the run.
    pub size_max: usize,
    /// Most accounts in one swarm over the run.
    pub accounts_max: usize,
    /// Mean accounts per swarm in the last epoch.
    pub accounts_mean_last: f64,
    /// Mean and largest share of accounts re-mapped per epoch (epochs ≥ 2).
    pub remapped_share: (f64, f64),
    /// Mean and largest share of replicas copied per epoch (epochs ≥ 2).
    pub copy_share: (f64, f64),
    /// Mean and largest share of accounts gaining an owner per epoch (≥ 2).
    pub new_owner_share: (f64, f64),
}

/// Summarises a report.
pub fn summarize(report: &SimReport) -> Summary {
    let e = &report.epochs;
    let moving: Vec<&EpochStats> = e.iter().filter(|s| s.epoch > 1).collect();
    let mean_max = |f: fn(&EpochStats) -> f64| -> (f64, f64) {
        if moving.is_empty() {
            return (0.0, 0.0);
        }
        let v: Vec<f64> = moving.iter().map(|s| f(s)).collect();
        (
            v.iter().sum::<f64>() / v.len() as f64,
            v.iter().copied().fold(0.0, f64::max),
        )
    };
    Summary {
        swarms_last: e.last().map_or(0, |s| s.swarms),
        swarms_range: (
            e.iter().map(|s| s.swarms).min().unwrap_or(0),
            e.iter().map(|s| s.swarms).max().unwrap_or(0),
        ),
        size_min: e.iter().map(|s| s.size_min).min().unwrap_or(0),
        size_p50_last: e.last().map_or(0, |s| s.size_p50),
        size_max: e.iter().map(|s| s.size_max).max().unwrap_or(0),
        accounts_max: e.iter().map(|s| s.accounts_max).max().unwrap_or(0),
        accounts_mean_last: e.last().map_or(0.0, |s| s.accounts_mean),
        remapped_share: mean_max(EpochStats::remapped_share),
        copy_share: mean_max(EpochStats::copy_share),
        new_owner_share: mean_max(EpochStats::new_owner_share),
    }
}

/// The summary table printed by `umbra-sim`.
pub fn summary_table(report: &SimReport) -> String {
    let c = &report.config;
    let s = summarize(report);
    let pct = |x: f64| format!("{:.3} %", x * 100.0);
    let hist = report
        .epochs
        .last()
        .map(|e| {
            e.size_histogram
                .iter()
                .map(|(size, n)| format!("{size}:{n}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    let rows = [
        (
            "configuration".to_string(),
            format!(
                "{} nodes, {} accounts, {} epochs, join {} / leave {} per epoch, seed {}",
                c.nodes, c.accounts, c.epochs, c.join_rate, c.leave_rate, c.seed
            ),
        ),
        (
            "constants".to_string(),
            format!(
                "MIN_SWARM_SIZE {}, EXCESS_BASE {}, IDEAL_SWARM_MARGIN {}, NEW_SWARM_SIZE {}",
                c.params.min_swarm_size,
                c.params.excess_base,
                c.params.ideal_swarm_margin,
                c.params.new_swarm_size
            ),
        ),
        (
            "swarms (last; min-max)".to_string(),
            format!(
                "{} ({}-{})",
                s.swarms_last, s.swarms_range.0, s.swarms_range.1
            ),
        ),
        (
            "swarm size min / p50 / max".to_string(),
            format!(
                "{} / {} (last epoch) / {}",
                s.size_min, s.size_p50_last, s.size_max
            ),
        ),
        ("size histogram (last epoch)".to_string(), hist),
        (
            "accounts per swarm max / mean".to_string(),
            format!(
                "{} / {:.1} (last epoch)",
                s.accounts_max, s.accounts_mean_last
            ),
        ),
        (
            "accounts re-mapped / epoch".to_string(),
            format!(
                "mean {}, max {}",
                pct(s.remapped_share.0),
                pct(s.remapped_share.1)
            ),
        ),
        (
            "accounts gaining owners / epoch".to_string(),
            format!(
                "mean {}, max {}",
                pct(s.new_owner_share.0),
                pct(s.new_owner_share.1)
            ),
        ),
        (
            "replica copies to push / epoch".to_string(),
            format!(
                "mean {}, max {} of all replicas",
                pct(s.copy_share.0),
                pct(s.copy_share.1)
            ),
        ),
    ];
    let w = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in rows {
        let _ = writeln!(out, "{k:<w$}  {v}");
    }
    out
}

/// Writes `sim.csv` and `sim.png` into `dir` (created if missing).
pub fn write_outputs(report: &SimReport, dir: &Path) -> Result<(), SimError> {
    std::fs::create_dir_all(dir).map_err(|source| SimError::Io {
        what: format!("creating {}", dir.display()),
        source,
    })?;
    let csv = dir.join("sim.csv");
    std::fs::write(&csv, to_csv(report)).map_err(|source| SimError::Io {
        what: format!("writing {}", csv.display()),
        source,
    })?;
    draw_chart(report, &dir.join("sim.png"))
}

// ---------------------------------------------------------------------------
// The chart.

const WIDTH: u32 = 1200;
const HEIGHT: u32 = 900;
const FONT_SCALE: i32 = 2;
const INK: RGBColor = RGBColor(40, 40, 40);
const GRID: RGBColor = RGBColor(225, 225, 225);
const BLUE: RGBColor = RGBColor(31, 119, 180);
const RED: RGBColor = RGBColor(214, 39, 40);
const GREEN: RGBColor = RGBColor(44, 160, 44);
const ORANGE: RGBColor = RGBColor(255, 127, 14);

/// 5×7 glyphs, one byte per row, bit 4 the leftmost pixel.
#[rustfmt::skip]
fn glyph(c: char) -> [u8; 7] {
    match c.to_ascii_uppercase() {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        'A' => [0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        '.' => [0, 0, 0, 0, 0, 0x0C, 0x0C],
        ',' => [0, 0, 0, 0, 0x0C, 0x04, 0x08],
        '%' => [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03],
        '/' => [0, 0x01, 0x02, 0x04, 0x08, 0x10, 0],
        '-' => [0, 0, 0, 0x1F, 0, 0, 0],
        ':' => [0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0],
        '(' => [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
        ')' => [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
        '=' => [0, 0, 0x1F, 0, 0x1F, 0, 0],
        '+' => [0, 0x04, 0x04, 0x1F, 0x04, 0x04, 0],
        '_' => [0, 0, 0, 0, 0, 0, 0x1F],
        '\\' => [0, 0x10, 0x08, 0x04, 0x02, 0x01, 0],
        _ => [0; 7],
    }
}

/// Width in pixels of `text` at [`FONT_SCALE`].
fn text_width(text: &str) -> i32 {
    text.chars().count() as i32 * 6 * FONT_SCALE
}

/// A chart line: legend label, colour, and the figure it plots.
type Series<T> = (&'static str, RGBColor, fn(&EpochStats) -> T);

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

fn perr<E: std::fmt::Debug>(e: E) -> SimError {
    SimError::Plot(format!("{e:?}"))
}

/// Draws `text` with its top-left corner at (x, y).
fn text(area: &Area<'_>, x: i32, y: i32, s: &str, color: RGBColor) -> Result<(), SimError> {
    for (i, c) in s.chars().enumerate() {
        let gx = x + i as i32 * 6 * FONT_SCALE;
        for (row, bits) in glyph(c).iter().enumerate() {
            for col in 0..5 {
                if bits & (0x10 >> col) != 0 {
                    let px = gx + col * FONT_SCALE;
                    let py = y + row as i32 * FONT_SCALE;
                    area.draw(&Rectangle::new(
                        [(px, py), (px + FONT_SCALE - 1, py + FONT_SCALE - 1)],
                        color.filled(),
                    ))
                    .map_err(perr)?;
                }
            }
        }
    }
    Ok(())
}

/// A 1-2-5 tick step giving about `target` ticks over `span`.
fn tick_step(span: f64, target: f64) -> f64 {
    if span <= 0.0 || !span.is_finite() {
        return 1.0;
    }
    let raw = span / target;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

fn fmt_tick(v: f64, step: f64) -> String {
    if step >= 1.0 {
        format!("{v:.0}")
    } else {
        let digits = (-step.log10().floor()) as usize;
        format!("{v:.digits$}")
    }
}

/// A plot panel: pixel box and data ranges.
struct Panel {
    x0: i32,
    y0: i32,
    x1: i32,
    y1: i32,
    xr: (f64, f64),
    yr: (f64, f64),
}

impl Panel {
    fn map(&self, x: f64, y: f64) -> (i32, i32) {
        let fx = ratio(x - self.xr.0, self.xr.1 - self.xr.0);
        let fy = ratio(y - self.yr.0, self.yr.1 - self.yr.0);
        (
            self.x0 + (fx * f64::from(self.x1 - self.x0)).round() as i32,
            self.y1 - (fy * f64::from(self.y1 - self.y0)).round() as i32,
        )
    }

    /// Frame, grid, tick labels and title.
    fn axes(&self, area: &Area<'_>, title: &str, x_caption: &str) -> Result<(), SimError> {
        let ystep = tick_step(self.yr.1 - self.yr.0, 5.0);
        let mut v = (self.yr.0 / ystep).ceil() * ystep;
        while v <= self.yr.1 + ystep * 1e-9 {
            let (_, py) = self.map(self.xr.0, v);
            area.draw(&PathElement::new(vec![(self.x0, py), (self.x1, py)], GRID))
                .map_err(perr)?;
            let label = fmt_tick(v, ystep);
            text(area, self.x0 - 6 - text_width(&label), py - 7, &label, INK)?;
            v += ystep;
        }
        // Both x axes (epochs, member counts) are integers.
        let xstep = tick_step(self.xr.1 - self.xr.0, 8.0).max(1.0);
        let mut v = (self.xr.0 / xstep).ceil() * xstep;
        while v <= self.xr.1 + xstep * 1e-9 {
            let (px, _) = self.map(v, self.yr.0);
            area.draw(&PathElement::new(vec![(px, self.y0), (px, self.y1)], GRID))
                .map_err(perr)?;
            let label = fmt_tick(v, xstep);
            text(area, px - text_width(&label) / 2, self.y1 + 6, &label, INK)?;
            v += xstep;
        }
        area.draw(&Rectangle::new(
            [(self.x0, self.y0), (self.x1, self.y1)],
            INK.stroke_width(1),
        ))
        .map_err(perr)?;
        text(
            area,
            self.x1 - text_width(x_caption),
            self.y1 + 24,
            x_caption,
            INK,
        )?;
        text(area, self.x0, self.y0 - 22, title, INK)
    }

    fn line(&self, area: &Area<'_>, pts: &[(f64, f64)], color: RGBColor) -> Result<(), SimError> {
        let px: Vec<(i32, i32)> = pts.iter().map(|&(x, y)| self.map(x, y)).collect();
        area.draw(&PathElement::new(px, color.stroke_width(2)))
            .map_err(perr)
    }

    /// One row of coloured keys above the panel, right-aligned, on the
    /// title's line (never over the data).
    fn legend(&self, area: &Area<'_>, items: &[(&str, RGBColor)]) -> Result<(), SimError> {
        let y = self.y0 - 22;
        let mut x = self.x1;
        for (label, color) in items.iter().rev() {
            x -= text_width(label) + 18;
            area.draw(&Rectangle::new(
                [(x, y + 1), (x + 11, y + 12)],
                color.filled(),
            ))
            .map_err(perr)?;
            text(area, x + 17, y, label, INK)?;
            x -= 24;
        }
        Ok(())
    }
}

fn padded(lo: f64, hi: f64) -> (f64, f64) {
    if hi > lo {
        (lo, hi + (hi - lo) * 0.08)
    } else {
        (lo - 1.0, hi + 1.0)
    }
}

/// `x` with at most 3 decimals and no trailing zeros.
fn short_number(x: f64) -> String {
    let s = format!("{x:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// Draws the three-panel chart of a report into `path` (PNG).
pub fn draw_chart(report: &SimReport, path: &Path) -> Result<(), SimError> {
    let root = BitMapBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(perr)?;
    let c = &report.config;
    let title = format!(
        "UMBRA-SIM: {} NODES, {} ACCOUNTS, {} EPOCHS, CHURN +{}% -{}% PER EPOCH, SEED {}",
        c.nodes,
        c.accounts,
        c.epochs,
        short_number(c.join_rate * 100.0),
        short_number(c.leave_rate * 100.0),
        c.seed
    );
    text(&root, 20, 12, &title, INK)?;

    let e = &report.epochs;
    let last_epoch = e.last().map_or(1.0, |s| s.epoch as f64).max(2.0);

    // Top: data moved per epoch.
    let moving: Vec<&EpochStats> = e.iter().filter(|s| s.epoch > 1).collect();
    let series: [Series<f64>; 3] = [
        ("COPIES / REPLICAS", BLUE, EpochStats::copy_share),
        ("ACCOUNTS RE-MAPPED", RED, EpochStats::remapped_share),
        ("ACCOUNTS W/ NEW OWNER", GREEN, EpochStats::new_owner_share),
    ];
    let ymax = moving
        .iter()
        .flat_map(|s| series.iter().map(move |(_, _, f)| f(s) * 100.0))
        .fold(0.0, f64::max);
    let top = Panel {
        x0: 90,
        y0: 70,
        x1: WIDTH as i32 - 30,
        y1: 420,
        xr: (1.0, last_epoch),
        yr: padded(0.0, ymax.max(0.01)),
    };
    top.axes(&root, "DATA MOVED, %", "EPOCH")?;
    for (_, color, f) in &series {
        let pts: Vec<(f64, f64)> = moving
            .iter()
            .map(|s| (s.epoch as f64, f(s) * 100.0))
            .collect();
        if pts.len() >= 2 {
            top.line(&root, &pts, *color)?;
        } else if let Some(&(x, y)) = pts.first() {
            let (px, py) = top.map(x, y);
            root.draw(&Circle::new((px, py), 3, color.filled()))
                .map_err(perr)?;
        }
    }
    let legend: Vec<(&str, RGBColor)> = series.iter().map(|(l, c, _)| (*l, *c)).collect();
    top.legend(&root, &legend)?;

    // Bottom left: swarm size min / p50 / max per epoch.
    let smax = e.iter().map(|s| s.size_max).max().unwrap_or(1) as f64;
    let left = Panel {
        x0: 90,
        y0: 500,
        x1: 570,
        y1: HEIGHT as i32 - 50,
        xr: (1.0, last_epoch),
        yr: padded(0.0, smax),
    };
    left.axes(&root, "SWARM SIZE", "EPOCH")?;
    let size_series: [Series<usize>; 3] = [
        ("MAX", RED, |s| s.size_max),
        ("P50", BLUE, |s| s.size_p50),
        ("MIN", GREEN, |s| s.size_min),
    ];
    for (_, color, f) in &size_series {
        let pts: Vec<(f64, f64)> = e.iter().map(|s| (s.epoch as f64, f(s) as f64)).collect();
        left.line(&root, &pts, *color)?;
    }
    let legend: Vec<(&str, RGBColor)> = size_series.iter().map(|(l, c, _)| (*l, *c)).collect();
    left.legend(&root, &legend)?;

    // Bottom right: size histogram of the last epoch.
    let hist = e
        .last()
        .map(|s| s.size_histogram.clone())
        .unwrap_or_default();
    let hx0 = hist.first().map_or(0, |h| h.0) as f64 - 0.5;
    let hx1 = hist.last().map_or(1, |h| h.0) as f64 + 0.5;
    let hmax = hist.iter().map(|h| h.1).max().unwrap_or(1) as f64;
    let right = Panel {
        x0: 680,
        y0: 500,
        x1: WIDTH as i32 - 30,
        y1: HEIGHT as i32 - 50,
        xr: (hx0, hx1),
        yr: padded(0.0, hmax),
    };
    right.axes(
        &root,
        &format!("SWARMS BY SIZE, EPOCH {}", e.last().map_or(0, |s| s.epoch)),
        "MEMBERS",
    )?;
    for &(size, n) in &hist {
        let (xa, ya) = right.map(size as f64 - 0.4, n as f64);
        let (xb, yb) = right.map(size as f64 + 0.4, 0.0);
        root.draw(&Rectangle::new([(xa, ya), (xb, yb)], ORANGE.filled()))
            .map_err(perr)?;
        let label = n.to_string();
        text(
            &root,
            (xa + xb - text_width(&label)) / 2,
            ya - 18,
            &label,
            INK,
        )?;
    }
    root.present().map_err(perr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_below_is_in_range() {
        let mut r = SplitMix64(7);
        for n in 1..50 {
            assert!(r.below(n) < n);
        }
    }

    #[test]
    fn tick_steps_are_nice() {
        assert_eq!(tick_step(10.0, 5.0), 2.0);
        assert_eq!(tick_step(0.3, 5.0), 0.1);
        assert_eq!(tick_step(0.0, 5.0), 1.0);
        assert_eq!(fmt_tick(0.25, 0.05), "0.25");
        assert_eq!(short_number(7.000000000000001), "7");
        assert_eq!(short_number(0.5), "0.5");
        assert_eq!(short_number(10.0), "10");
    }

    #[test]
    fn invalid_settings_are_refused() {
        let base = SimConfig {
            nodes: 10,
            accounts: 10,
            epochs: 1,
            ..SimConfig::default()
        };
        for bad in [
            SimConfig {
                nodes: 0,
                ..base.clone()
            },
            SimConfig {
                accounts: 0,
                ..base.clone()
            },
            SimConfig {
                join_rate: 1.5,
                ..base.clone()
            },
            SimConfig {
                leave_rate: -0.1,
                ..base.clone()
            },
            SimConfig {
                threads: 0,
                ..base.clone()
            },
        ] {
            assert!(matches!(Simulation::new(bad), Err(SimError::Invalid(_))));
        }
        let bad_params = SimConfig {
            params: SwarmParams {
                min_swarm_size: 0,
                ..SwarmParams::PUBLIC
            },
            ..base
        };
        assert!(matches!(
            Simulation::new(bad_params),
            Err(SimError::Swarm(SwarmError::BadParams(_)))
        ));
    }
}
