//! Fault injection during the load (issue 10 item 3): `kill -9` and
//! restart of random nodes, a SIGSTOP pause then SIGCONT, and one node
//! restarted with a small database cap and filled until it answers `507`
//! (then restarted with its normal cap so catch-up can fill it in).
//!
//! Never more than [`MAX_DOWN_PER_SWARM`] members of one swarm are down
//! (killed, paused or restarting) at once: a node is only picked when its
//! swarm has fewer down. Faults stop before the load does; at the end every
//! node runs again.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;
use umbra_crypto::Ed25519Public;
use umbra_devnet::{Devnet, NodeOverrides, signal};
use umbra_proto::identity::AccountId;
use umbra_proto::swarm::{RegistryDocument, SwarmId};

use crate::LoadError;
use crate::stats::Rng;

/// At most this many members of one swarm are down at once.
pub const MAX_DOWN_PER_SWARM: usize = 2;

/// What to inject.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    /// `kill -9` events, spread over the fault window; each killed node is
    /// restarted after `down_for`.
    pub kills: usize,
    /// How long a killed node stays down.
    pub down_for: Duration,
    /// SIGSTOP pauses (each on a node picked at the time).
    pub pauses: usize,
    /// How long a paused node stays stopped before SIGCONT.
    pub pause_for: Duration,
    /// Fill one node's database cap.
    pub disk_fill: bool,
    /// How long the filled node keeps its small cap.
    pub disk_full_for: Duration,
    /// The small cap: the node's database file size at the time plus this.
    pub disk_cap_margin: u64,
}

impl FaultPlan {
    /// The plan of `umbra-load run --faults` for a load of `duration`: a
    /// kill every ~25 s of the window, one 30 s pause, one disk fill.
    pub fn standard(duration: Duration) -> FaultPlan {
        let (start, end) = window(duration);
        let kills = ((end - start).as_secs() / 25).max(1) as usize;
        FaultPlan {
            kills,
            down_for: Duration::from_secs(8),
            pauses: 1,
            pause_for: Duration::from_secs(30).min((end - start) / 3),
            disk_fill: true,
            disk_full_for: (end - start) / 2,
            disk_cap_margin: 64 * 1024,
        }
    }
}

/// The fault window of a load of `duration`: from 8 % in to the later of
/// 85 % and `duration − 10 s`… but never closer than 10 s to the end.
fn window(duration: Duration) -> (Duration, Duration) {
    let start = duration.mul_f64(0.08);
    let end = duration
        .mul_f64(0.85)
        .min(duration.saturating_sub(Duration::from_secs(10)))
        .max(start + Duration::from_secs(1));
    (start, end)
}

/// Counts reported at the end.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FaultCounts {
    /// `kill -9` sent.
    pub kills: u64,
    /// Killed nodes started again.
    pub restarts: u64,
    /// SIGSTOP sent (each followed by SIGCONT).
    pub pauses: u64,
    /// Disk fills (node restarted with a small cap, filled until `507`).
    pub disk_fills: u64,
    /// Direct filler stores it took to fill the node.
    pub filler_stores: u64,
    /// Whether the filled node answered a client `store` with `507`.
    pub filled_node_answered_507: bool,
    /// Load stores refused with `507` (by the full node as destination).
    pub refused_507: u64,
    /// Acknowledged load stores to the full node's swarm while it was full.
    pub acked_in_full_swarm: u64,
    /// …of which the full node itself confirmed (a message small enough to
    /// fit under the cap after all clears its "full" flag).
    pub full_node_confirmed: u64,
    /// Fault events skipped because no node could be taken down without
    /// exceeding the per-swarm limit.
    pub skipped: u64,
    /// The most members of one swarm down at once (≤ 2).
    pub max_down_in_a_swarm: u64,
    /// Errors while injecting (restarts that failed, …).
    pub errors: Vec<String>,
}

impl std::fmt::Display for FaultCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} kill -9, {} restarts, {} SIGSTOP/SIGCONT pauses, {} disk fills ({} filler stores, 507 seen: {}), {} stores refused 507, {} acknowledged in the full node's swarm while full ({} confirmed by the full node), {} skipped, at most {} down in a swarm, {} errors",
            self.kills,
            self.restarts,
            self.pauses,
            self.disk_fills,
            self.filler_stores,
            self.filled_node_answered_507,
            self.refused_507,
            self.acked_in_full_swarm,
            self.full_node_confirmed,
            self.skipped,
            self.max_down_in_a_swarm,
            self.errors.len()
        )?;
        for e in &self.errors {
            write!(f, "\n  fault error: {e}")?;
        }
        Ok(())
    }
}

/// State shared between the fault task and the senders.
#[derive(Debug)]
pub struct FaultState {
    registry: RegistryDocument,
    /// Swarm of each node index.
    swarm_of_node: Vec<Option<SwarmId>>,
    keys: Vec<Ed25519Public>,
    full: Mutex<Option<usize>>,
    full_now: AtomicBool,
    refused: AtomicU64,
    acked_in_full_swarm: AtomicU64,
    full_node_confirmed: AtomicU64,
    counts: Mutex<FaultCounts>,
}

impl FaultState {
    /// The state for `devnet`'s current registry.
    pub fn new(devnet: &Devnet) -> FaultState {
        let registry = devnet.registry().clone();
        let keys: Vec<Ed25519Public> = (0..devnet.len()).map(|i| devnet.node_addr(i).key).collect();
        let swarm_of_node = keys.iter().map(|k| registry.swarm_of_node(k)).collect();
        FaultState {
            registry,
            swarm_of_node,
            keys,
            full: Mutex::new(None),
            full_now: AtomicBool::new(false),
            refused: AtomicU64::new(0),
            acked_in_full_swarm: AtomicU64::new(0),
            full_node_confirmed: AtomicU64::new(0),
            counts: Mutex::new(FaultCounts::default()),
        }
    }

    fn counts_mut(&self) -> std::sync::MutexGuard<'_, FaultCounts> {
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn full_node(&self) -> Option<usize> {
        *self
            .full
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A load store to `account` was acknowledged by `accepted_by`.
    pub fn note_store(&self, account: &AccountId, accepted_by: &[Ed25519Public]) {
        if !self.full_now.load(Ordering::Relaxed) {
            return;
        }
        let Some(k) = self.full_node() else { return };
        if self.registry.swarm_of(account) == self.swarm_of_node[k] {
            self.acked_in_full_swarm.fetch_add(1, Ordering::Relaxed);
            if accepted_by.contains(&self.keys[k]) {
                self.full_node_confirmed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// A load store was refused with `507`.
    pub fn note_refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts so far.
    pub fn counts(&self) -> FaultCounts {
        let mut c = self.counts_mut().clone();
        c.refused_507 = self.refused.load(Ordering::Relaxed);
        c.acked_in_full_swarm = self.acked_in_full_swarm.load(Ordering::Relaxed);
        c.full_node_confirmed = self.full_node_confirmed.load(Ordering::Relaxed);
        c
    }

    fn error(&self, e: impl Into<String>) {
        let e = e.into();
        tracing::warn!(error = %e, "fault injection");
        self.counts_mut().errors.push(e);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Kill,
    Restart(usize),
    Pause,
    Resume(usize),
    DiskFill,
    DiskRestore(usize),
}

/// Nodes currently down, per swarm.
struct Down {
    nodes: BTreeSet<usize>,
}

impl Down {
    fn in_swarm(&self, fs: &FaultState, s: Option<SwarmId>) -> usize {
        self.nodes
            .iter()
            .filter(|&&j| fs.swarm_of_node[j] == s)
            .count()
    }

    /// A random node that can go down without breaking the per-swarm limit.
    fn pick(&self, fs: &FaultState, rng: &mut Rng, exclude: Option<usize>) -> Option<usize> {
        let candidates: Vec<usize> = (0..fs.keys.len())
            .filter(|i| !self.nodes.contains(i) && Some(*i) != exclude)
            .filter(|&i| self.in_swarm(fs, fs.swarm_of_node[i]) < MAX_DOWN_PER_SWARM)
            .collect();
        (!candidates.is_empty()).then(|| candidates[rng.below(candidates.len() as u64) as usize])
    }

    fn take(&mut self, fs: &FaultState, i: usize) {
        self.nodes.insert(i);
        let worst = self.in_swarm(fs, fs.swarm_of_node[i]) as u64;
        let mut c = fs.counts_mut();
        c.max_down_in_a_swarm = c.max_down_in_a_swarm.max(worst);
    }
}

/// Runs `plan` against `devnet` from `load_start` over a load of `duration`;
/// returns the devnet with every node running again.
pub async fn run(
    mut devnet: Devnet,
    fs: std::sync::Arc<FaultState>,
    plan: FaultPlan,
    seed: u64,
    load_start: Instant,
    duration: Duration,
) -> (Devnet, Result<(), LoadError>) {
    let mut rng = Rng::new(seed ^ 0xFA17);
    let (w0, w1) = window(duration);
    let span = w1 - w0;
    let mut events: BTreeMap<(Instant, u64), Event> = BTreeMap::new();
    let mut seq = 0u64;
    let mut at = |events: &mut BTreeMap<(Instant, u64), Event>, t: Instant, e: Event| {
        seq += 1;
        events.insert((t, seq), e);
    };
    if plan.disk_fill {
        at(&mut events, load_start + w0, Event::DiskFill);
    }
    for p in 0..plan.pauses {
        let t = w0 + span.mul_f64(0.15 + 0.5 * p as f64 / plan.pauses.max(1) as f64);
        at(&mut events, load_start + t, Event::Pause);
    }
    for k in 0..plan.kills {
        let t = w0 + span.mul_f64((k as f64 + 0.5) / plan.kills as f64);
        at(&mut events, load_start + t, Event::Kill);
    }
    let mut down = Down {
        nodes: BTreeSet::new(),
    };
    let mut paused: BTreeSet<usize> = BTreeSet::new();
    let mut full_node: Option<usize> = None;
    while let Some(((t, _), ev)) = events.pop_first() {
        tokio::time::sleep_until(t).await;
        match ev {
            Event::Kill => match down.pick(&fs, &mut rng, full_node) {
                Some(i) => {
                    down.take(&fs, i);
                    devnet.kill_node(i).await;
                    fs.counts_mut().kills += 1;
                    tracing::info!(node = i, "kill -9");
                    at(
                        &mut events,
                        Instant::now() + plan.down_for,
                        Event::Restart(i),
                    );
                }
                None => fs.counts_mut().skipped += 1,
            },
            Event::Restart(i) => {
                match devnet.restart_node(i, Duration::from_secs(30)).await {
                    Ok(()) => fs.counts_mut().restarts += 1,
                    Err(e) => fs.error(format!("restart of node {i}: {e}")),
                }
                down.nodes.remove(&i);
            }
            Event::Pause => match down.pick(&fs, &mut rng, full_node) {
                Some(i) => match devnet.pid(i) {
                    Some(pid) if signal(pid, "STOP") => {
                        down.take(&fs, i);
                        paused.insert(i);
                        fs.counts_mut().pauses += 1;
                        tracing::info!(node = i, "SIGSTOP");
                        at(
                            &mut events,
                            Instant::now() + plan.pause_for,
                            Event::Resume(i),
                        );
                    }
                    _ => fs.error(format!("SIGSTOP of node {i} failed")),
                },
                None => fs.counts_mut().skipped += 1,
            },
            Event::Resume(i) => {
                if let Some(pid) = devnet.pid(i)
                    && !signal(pid, "CONT")
                {
                    fs.error(format!("SIGCONT of node {i} failed"));
                }
                paused.remove(&i);
                down.nodes.remove(&i);
            }
            Event::DiskFill => match down.pick(&fs, &mut rng, None) {
                Some(i) => {
                    down.take(&fs, i);
                    match fill_disk(&mut devnet, &fs, i, plan.disk_cap_margin).await {
                        Ok(()) => {
                            full_node = Some(i);
                            at(
                                &mut events,
                                Instant::now() + plan.disk_full_for,
                                Event::DiskRestore(i),
                            );
                        }
                        Err(e) => fs.error(format!("disk fill of node {i}: {e}")),
                    }
                    down.nodes.remove(&i);
                }
                None => fs.counts_mut().skipped += 1,
            },
            Event::DiskRestore(i)
                if down.in_swarm(&fs, fs.swarm_of_node[i]) >= MAX_DOWN_PER_SWARM =>
            {
                // Restarting it now would take a third member down: wait.
                at(
                    &mut events,
                    Instant::now() + Duration::from_secs(1),
                    Event::DiskRestore(i),
                );
            }
            Event::DiskRestore(i) => {
                fs.full_now.store(false, Ordering::Relaxed);
                devnet.set_overrides(i, NodeOverrides::default());
                down.take(&fs, i);
                devnet.stop_node(i).await;
                if let Err(e) = devnet.restart_node(i, Duration::from_secs(30)).await {
                    fs.error(format!("restart of node {i} with its normal cap: {e}"));
                }
                down.nodes.remove(&i);
                full_node = None;
            }
        }
    }
    // Whatever is still down comes back (a failed restart gets one more try).
    for i in 0..devnet.len() {
        if devnet.is_stopped(i)
            && let Err(e) = devnet.restart_node(i, Duration::from_secs(30)).await
        {
            fs.error(format!("final restart of node {i}: {e}"));
        }
    }
    let result = if fs.counts().errors.is_empty() {
        Ok(())
    } else {
        Err(LoadError::Invalid(format!(
            "fault injection failed: {}",
            fs.counts().errors.join("; ")
        )))
    };
    (devnet, result)
}

/// Restarts node `i` with a database cap just above its current size and
/// stores filler messages through it directly until it answers `507`.
async fn fill_disk(
    devnet: &mut Devnet,
    fs: &FaultState,
    i: usize,
    margin: u64,
) -> Result<(), String> {
    let db = devnet.dir().join(format!("node{i}/messages.sqlite"));
    let size = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    devnet.set_overrides(
        i,
        NodeOverrides {
            db_size_cap_bytes: Some(size + margin),
            ..NodeOverrides::default()
        },
    );
    devnet.stop_node(i).await;
    devnet
        .restart_node(i, Duration::from_secs(30))
        .await
        .map_err(|e| e.to_string())?;
    *fs.full
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(i);
    let (stores, saw_507) = crate::verify::fill_node(devnet, &fs.registry, i, 2_000).await?;
    fs.full_now.store(true, Ordering::Relaxed);
    let mut c = fs.counts_mut();
    c.disk_fills += 1;
    c.filler_stores = stores;
    c.filled_node_answered_507 = saw_507;
    tracing::info!(node = i, stores, "disk filled");
    if saw_507 {
        Ok(())
    } else {
        Err(format!("no 507 after {stores} filler stores"))
    }
}
