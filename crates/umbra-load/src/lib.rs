//! `umbra-load`: the load and fault generator of issue 10.
//!
//! It starts a devnet of node *processes* on loopback (`127.0.i.1`, one /24
//! each), simulates N accounts that send real Session-encrypted messages
//! (`seal_content`, namespace 0) to each other and sync their inboxes, every
//! request onion-routed through the typed storage API
//! ([`umbra_client::api::Api`]) over a pool of simulated devices (each an
//! [`umbra_client::net::Network`] with its own guards and paths), and —
//! with faults on — kills, restarts, pauses and fills nodes meanwhile
//! ([`faults`]). Every acknowledged store is tracked in the [`ledger`];
//! at the end it checks that each was delivered exactly once with the
//! plaintext that was sent, and asks every swarm member directly whether it
//! holds every unexpired message of its swarm ([`verify`]).
//!
//! Everything is bounded: the run stops after `duration`, each send gives up
//! after `send_give_up`, the final checks after `settle`, and no request
//! leaves 127.0.0.0/8.
//!
//! | module | owns |
//! | --- | --- |
//! | [`ledger`] | what was sent, acknowledged and delivered; the verdict |
//! | [`faults`] | the fault schedule and its counts |
//! | [`verify`] | the direct end-of-run swarm check, the disk filler |
//! | [`stats`] | percentiles, scheduling RNG |

pub mod faults;
pub mod ledger;
pub mod stats;
pub mod verify;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Semaphore;
use umbra_client::api::{Api, ApiError, MemberFailureReason};
use umbra_client::net::Network;
use umbra_devnet::{Devnet, DevnetOptions, Mode};
use umbra_proto::identity::{AccountId, AccountKeys};
use umbra_proto::message::protos::DataMessage;
use umbra_proto::message::{Content, open_envelope, seal_content};
use umbra_proto::path::PathConfig;
use umbra_proto::rpc::sign::Signer;
use umbra_proto::rpc::types::NodeFailure;
use umbra_proto::rpc::{MessageHash, Namespace};
use umbra_transport::SystemClock;

use crate::faults::{FaultCounts, FaultPlan, FaultState};
use crate::ledger::{Delivery, Ledger, Verdict};
use crate::stats::{Percentiles, Rng};
use crate::verify::SwarmCheck;

/// A load run failure (not a verdict: lost messages are reported, not errors).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The devnet could not start or be changed.
    #[error("devnet: {0}")]
    Devnet(#[from] umbra_devnet::DevnetError),
    /// A simulated device could not be set up.
    #[error("device {index}: {message}")]
    Device {
        /// Which device.
        index: usize,
        /// Why.
        message: String,
    },
    /// Bad options.
    #[error("{0}")]
    Invalid(String),
    /// File system.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Simulated accounts.
    pub accounts: usize,
    /// How long accounts send and sync.
    pub duration: Duration,
    /// Devnet nodes (processes).
    pub nodes: usize,
    /// Minimum swarm size of the devnet.
    pub swarm_size: usize,
    /// Simulated devices (onion path managers) the accounts share.
    pub devices: usize,
    /// Mean time between two sends of one account (Poisson).
    pub send_interval: Duration,
    /// Time between two syncs of one account.
    pub sync_interval: Duration,
    /// Onion calls in flight at most (all accounts together).
    pub max_inflight: usize,
    /// Deadline of one onion call.
    pub call_timeout: Duration,
    /// A send is retried (same bytes, so the same hash) until this long
    /// after its first try.
    pub send_give_up: Duration,
    /// After the load: how long the final syncs and the swarm check may take.
    pub settle: Duration,
    /// TTL of every message (long enough that none expires during the run).
    pub ttl: Duration,
    /// Faults to inject (`None`: a clean run).
    pub faults: Option<FaultPlan>,
    /// The executable whose `node --config FILE` runs a node.
    pub node_exe: PathBuf,
    /// Devnet directory (`None`: a temporary one, removed at the end).
    pub dir: Option<PathBuf>,
    /// Seed of the accounts and of the schedule.
    pub seed: u64,
    /// Print progress to stderr every this often (`None`: quiet).
    pub progress: Option<Duration>,
}

impl LoadConfig {
    /// The defaults of `umbra-load run`, for `accounts` accounts over
    /// `duration` on `nodes` nodes.
    pub fn new(accounts: usize, duration: Duration, nodes: usize, node_exe: PathBuf) -> Self {
        LoadConfig {
            accounts,
            duration,
            nodes,
            swarm_size: 3,
            devices: 32,
            send_interval: Duration::from_secs(20),
            sync_interval: Duration::from_secs(10),
            max_inflight: 256,
            call_timeout: Duration::from_secs(10),
            send_give_up: Duration::from_secs(60),
            settle: Duration::from_secs(90),
            ttl: Duration::from_secs(2 * 3600),
            faults: None,
            node_exe,
            dir: None,
            seed: 0x0075_6d62_7261,
            progress: None,
        }
    }
}

/// Counters of the load itself.
#[derive(Debug, Default)]
struct Counters {
    store_calls: AtomicU64,
    retries: AtomicU64,
    refused_507: AtomicU64,
    refused_other: AtomicU64,
    path_failures: AtomicU64,
    timeouts: AtomicU64,
    unconfirmed: AtomicU64,
    given_up: AtomicU64,
    member_query_failures: AtomicU64,
    member_timeouts: AtomicU64,
    sync_calls: AtomicU64,
    sync_failures: AtomicU64,
    undecryptable: AtomicU64,
    foreign: AtomicU64,
}

fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// The numbers of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Accounts, nodes, devices, duration (s).
    pub accounts: usize,
    /// Devnet nodes.
    pub nodes: usize,
    /// Simulated devices.
    pub devices: usize,
    /// Onion calls in flight at most.
    pub max_inflight: usize,
    /// Seconds of load.
    pub duration_s: f64,
    /// Acknowledged stores per second during the load.
    pub acked_per_s: f64,
    /// Sync (retrieve) calls per second during the load.
    pub syncs_per_s: f64,
    /// Send → acknowledgement (first try to the verified store result).
    pub send_ack: Percentiles,
    /// Send → the recipient's sync decrypted it.
    pub delivery: Percentiles,
    /// Store calls made (tries, including retries).
    pub store_calls: u64,
    /// Store tries repeated (same bytes) after a failed try.
    pub retries: u64,
    /// Tries answered `507` (the destination's database is full).
    pub refused_507: u64,
    /// Tries refused with another status.
    pub refused_other: u64,
    /// Tries that failed on the onion path.
    pub path_failures: u64,
    /// Tries that hit the call deadline.
    pub timeouts: u64,
    /// Tries answered 200 without a verified member result.
    pub unconfirmed: u64,
    /// Sends abandoned after `send_give_up` (unacknowledged; not counted as lost).
    pub given_up: u64,
    /// Acknowledged stores in which a member reported `query_failure` (a full node).
    pub member_query_failures: u64,
    /// Acknowledged stores in which a member timed out (paused or dead).
    pub member_timeouts: u64,
    /// Sync calls, and those that failed.
    pub sync_calls: u64,
    /// Failed sync calls.
    pub sync_failures: u64,
    /// Retrieved messages that did not decrypt.
    pub undecryptable: u64,
    /// Decrypted messages that were not from this run's ledger.
    pub foreign: u64,
    /// The exactly-once verdict.
    pub verdict: Verdict,
    /// The end-of-run swarm check.
    pub swarm_check: SwarmCheck,
    /// Faults injected.
    pub faults: Option<FaultCounts>,
    /// Seconds the final syncs needed to deliver everything (or gave up).
    pub settle_s: f64,
}

impl Report {
    /// Zero lost, zero duplicated, zero mismatched acknowledged messages,
    /// and every swarm member holds every message of its swarm.
    pub fn ok(&self) -> bool {
        self.verdict.lost == 0
            && self.verdict.duplicated == 0
            && self.verdict.mismatched == 0
            && self.verdict.wrong_storage_hash == 0
            && self.swarm_check.missing == 0
            && self.swarm_check.unreachable == 0
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = &self.verdict;
        writeln!(
            f,
            "load: {} accounts, {} nodes (processes), {} devices, at most {} calls in flight, {:.0} s",
            self.accounts, self.nodes, self.devices, self.max_inflight, self.duration_s
        )?;
        writeln!(
            f,
            "throughput: {:.1} acknowledged stores/s, {:.1} syncs/s",
            self.acked_per_s, self.syncs_per_s
        )?;
        writeln!(f, "send → ack:      {}", self.send_ack)?;
        writeln!(f, "send → delivery: {}", self.delivery)?;
        writeln!(
            f,
            "stores: {} tries, {} retries, {} refused 507, {} refused other, {} path failures, {} timeouts, {} unconfirmed, {} given up",
            self.store_calls,
            self.retries,
            self.refused_507,
            self.refused_other,
            self.path_failures,
            self.timeouts,
            self.unconfirmed,
            self.given_up
        )?;
        writeln!(
            f,
            "members: {} query_failure (full), {} timeout entries in acknowledged stores",
            self.member_query_failures, self.member_timeouts
        )?;
        writeln!(
            f,
            "syncs: {} calls, {} failed; {} undecryptable, {} foreign",
            self.sync_calls, self.sync_failures, self.undecryptable, self.foreign
        )?;
        if let Some(fc) = &self.faults {
            writeln!(f, "faults: {fc}")?;
        }
        writeln!(
            f,
            "verdict: {} sent, {} acknowledged, {} delivered exactly once, {} lost, {} duplicated, {} mismatched, {} wrong hash ({} unacknowledged but delivered); settled in {:.1} s",
            v.sent,
            v.acked,
            v.delivered_once,
            v.lost,
            v.duplicated,
            v.mismatched,
            v.wrong_storage_hash,
            v.unacked_delivered,
            self.settle_s
        )?;
        writeln!(f, "swarms: {}", self.swarm_check)?;
        write!(f, "result: {}", if self.ok() { "PASS" } else { "FAIL" })
    }
}

/// One simulated account.
struct Account {
    keys: AccountKeys,
    id: AccountId,
    device: usize,
    /// Storage hashes already seen by this account's syncs (the client's
    /// de-duplication by hash).
    seen: Mutex<HashSet<String>>,
}

/// Shared state of the run.
struct Ctx {
    cfg: LoadConfig,
    accounts: Vec<Account>,
    by_id: HashMap<AccountId, u32>,
    devices: Vec<Network>,
    ledger: Ledger,
    counters: Counters,
    inflight: Semaphore,
    ack_lat: Mutex<Vec<Duration>>,
    delivery_lat: Mutex<Vec<Duration>>,
    faults: Option<Arc<FaultState>>,
}

fn push(v: &Mutex<Vec<Duration>>, d: Duration) {
    v.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(d);
}

/// The keys of simulated account `i` (deterministic from `seed`).
pub fn account_keys(seed: u64, i: usize) -> AccountKeys {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&seed.to_le_bytes());
    s[8..16].copy_from_slice(&(i as u64).to_le_bytes());
    s[16..24].copy_from_slice(b"umbraldr");
    AccountKeys::from_seed(&s)
}

fn body_hash(body: &str) -> [u8; 32] {
    umbra_crypto::hash::blake2b_fixed::<32>(&[body.as_bytes()])
}

impl Ctx {
    fn api(&self, device: usize) -> Api<'_> {
        Api::new(&self.devices[device]).with_timeout(self.cfg.call_timeout)
    }

    /// Sends one message from `from` to `to`: seals it once, then stores the
    /// same bytes until a swarm acknowledges them or `send_give_up` passes.
    async fn send_one(&self, from: usize, to: usize) {
        let sender = &self.accounts[from];
        let recipient = &self.accounts[to];
        let nonce = hex::encode(umbra_crypto::random_bytes::<8>());
        let started = Instant::now();
        let body_of = |id: u64| format!("umbra-load {id} {nonce}");
        let id = self
            .ledger
            .sent_with(from as u32, to as u32, started, |id| {
                body_hash(&body_of(id))
            });
        let body = body_of(id);
        let content = Content {
            data_message: Some(DataMessage {
                body: Some(body),
                ..DataMessage::default()
            }),
            ..Content::default()
        };
        let t = self.devices[sender.device].network_now().await;
        let blob = match seal_content(
            &sender.keys,
            &recipient.id,
            &content,
            t,
            umbra_crypto::random_bytes::<32>(),
        ) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "cannot seal a message");
                inc(&self.counters.given_up);
                return;
            }
        };
        let api = self.api(sender.device);
        let ttl = self.cfg.ttl.as_millis() as u64;
        let mut attempt = 0u32;
        loop {
            let result = {
                let _permit = self.inflight.acquire().await;
                inc(&self.counters.store_calls);
                api.send_to_swarm(&recipient.id, None, Namespace::DEFAULT, &blob, ttl)
                    .await
            };
            match result {
                Ok(r) => {
                    self.ledger.acked(id, r.hash.as_str());
                    push(&self.ack_lat, started.elapsed());
                    for f in &r.failures {
                        match &f.reason {
                            MemberFailureReason::Failed(NodeFailure::QueryFailure) => {
                                inc(&self.counters.member_query_failures)
                            }
                            MemberFailureReason::Failed(NodeFailure::Timeout) => {
                                inc(&self.counters.member_timeouts)
                            }
                            _ => {}
                        }
                    }
                    if let Some(fs) = &self.faults {
                        fs.note_store(&recipient.id, &r.accepted_by);
                    }
                    return;
                }
                Err(e) => {
                    match &e {
                        ApiError::Refused { status: 507, .. } => {
                            inc(&self.counters.refused_507);
                            if let Some(fs) = &self.faults {
                                fs.note_refused();
                            }
                        }
                        ApiError::Refused { .. } => inc(&self.counters.refused_other),
                        ApiError::Path { .. } => inc(&self.counters.path_failures),
                        ApiError::Timeout { .. } => inc(&self.counters.timeouts),
                        ApiError::Unconfirmed { .. } => inc(&self.counters.unconfirmed),
                        _ => {}
                    }
                    tracing::debug!(error = %e, "store try failed");
                    if started.elapsed() >= self.cfg.send_give_up {
                        inc(&self.counters.given_up);
                        tracing::warn!(error = %e, "send given up");
                        return;
                    }
                    attempt += 1;
                    inc(&self.counters.retries);
                    let backoff = Duration::from_millis(200 * u64::from(attempt.min(10)));
                    tokio::time::sleep(backoff).await;
                }
            }
        }
    }

    /// One sync of account `idx`: retrieve its inbox (every page), decrypt
    /// what it has not seen, and record deliveries. Returns new messages.
    async fn sync(&self, idx: usize) -> Result<usize, ApiError> {
        let acct = &self.accounts[idx];
        let api = self.api(acct.device);
        let signer = Signer::Account(&acct.keys);
        let mut last: Option<MessageHash> = None;
        let mut new = 0;
        for _ in 0..64 {
            let page = {
                let _permit = self.inflight.acquire().await;
                inc(&self.counters.sync_calls);
                api.retrieve(&acct.id, Some(&signer), Namespace::DEFAULT, last.as_ref())
                    .await
            };
            let page = match page {
                Ok(p) => p,
                Err(e) => {
                    inc(&self.counters.sync_failures);
                    return Err(e);
                }
            };
            let now = Instant::now();
            for m in &page.messages {
                let fresh = acct
                    .seen
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(m.hash.as_str().to_string());
                if !fresh {
                    continue;
                }
                let Ok(opened) = open_envelope(&acct.keys, &m.data) else {
                    inc(&self.counters.undecryptable);
                    continue;
                };
                let body = opened
                    .content
                    .data_message
                    .as_ref()
                    .and_then(|d| d.body.clone())
                    .unwrap_or_default();
                let id = body
                    .strip_prefix("umbra-load ")
                    .and_then(|r| r.split(' ').next())
                    .and_then(|s| s.parse::<u64>().ok());
                let (Some(id), Some(&sender)) = (id, self.by_id.get(&opened.sender)) else {
                    inc(&self.counters.foreign);
                    continue;
                };
                match self.ledger.delivered(
                    id,
                    sender,
                    idx as u32,
                    body_hash(&body),
                    m.hash.as_str(),
                    now,
                ) {
                    Delivery::First(d) => {
                        new += 1;
                        push(&self.delivery_lat, d);
                    }
                    Delivery::Duplicate | Delivery::Mismatch => {}
                    Delivery::Unknown => inc(&self.counters.foreign),
                }
            }
            if !page.more {
                break;
            }
            match page.messages.last() {
                Some(m) => last = Some(m.hash.clone()),
                None => break,
            }
        }
        Ok(new)
    }
}

/// One account's life during the load: Poisson sends and periodic syncs,
/// each in its own task so that a slow one (a path through a paused node
/// waits for its timeout) delays neither.
async fn account_loop(ctx: Arc<Ctx>, idx: usize, stop_at: tokio::time::Instant) {
    let n = ctx.accounts.len();
    let mut rng = Rng::new(ctx.cfg.seed ^ (idx as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let start = tokio::time::Instant::now();
    let mut next_send = start + rng.exp(ctx.cfg.send_interval);
    let sync_ms = ctx.cfg.sync_interval.as_millis() as u64;
    let mut next_sync = start + Duration::from_millis(rng.below(sync_ms.max(1)));
    let mut sends = tokio::task::JoinSet::new();
    let mut syncing: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        let next = next_send.min(next_sync);
        if next >= stop_at {
            break;
        }
        tokio::time::sleep_until(next).await;
        if next_send <= next_sync {
            let mut to = rng.below(n as u64) as usize;
            if to == idx {
                to = (to + 1) % n;
            }
            let c = ctx.clone();
            sends.spawn(async move { c.send_one(idx, to).await });
            next_send = tokio::time::Instant::now() + rng.exp(ctx.cfg.send_interval);
        } else {
            // A sync still running (a slow path) skips this tick rather
            // than delaying the account's sends.
            if syncing.as_ref().is_none_or(|h| h.is_finished()) {
                let c = ctx.clone();
                syncing = Some(tokio::spawn(async move {
                    let _ = c.sync(idx).await;
                }));
            }
            let jitter = rng.below(sync_ms / 5 + 1);
            next_sync = tokio::time::Instant::now()
                + Duration::from_millis(sync_ms - sync_ms / 10 + jitter);
        }
        while sends.try_join_next().is_some() {}
    }
    if let Some(h) = syncing {
        let _ = h.await;
    }
    while sends.join_next().await.is_some() {}
}

/// Runs the load (and faults) and the end-of-run checks.
pub async fn run(cfg: LoadConfig) -> Result<Report, LoadError> {
    if cfg.accounts < 2 || cfg.nodes == 0 || cfg.devices == 0 {
        return Err(LoadError::Invalid(
            "need at least 2 accounts, 1 node and 1 device".into(),
        ));
    }
    let tmp;
    let dir = match &cfg.dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::Builder::new().prefix("umbra-load-").tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let devnet = Devnet::up(DevnetOptions {
        nodes: cfg.nodes,
        dir: dir.clone(),
        base_port: 0,
        swarm_size_hint: cfg.swarm_size,
        mode: Mode::Processes {
            exe: cfg.node_exe.clone(),
        },
        distinct_ips: true,
    })
    .await?;
    run_on(cfg, devnet).await
}

async fn run_on(cfg: LoadConfig, devnet: Devnet) -> Result<Report, LoadError> {
    let network = devnet.network().clone();
    let mut path_config = PathConfig::default().with_min_usable_nodes(4.min(cfg.nodes));
    // Killed nodes come back within seconds here; an hour-long bad mark (the
    // default) would leave devices without destinations.
    path_config.bad_mark_ms = 20_000;
    let mut devices = Vec::with_capacity(cfg.devices);
    for d in 0..cfg.devices {
        let net = Network::new(
            network.clone(),
            path_config,
            None,
            None,
            Arc::new(SystemClock),
        )
        .map_err(|e| LoadError::Device {
            index: d,
            message: e.to_string(),
        });
        match net {
            Ok(n) => {
                devices.push(n.with_request_timeout(cfg.call_timeout.min(Duration::from_secs(8))))
            }
            Err(e) => {
                devnet.down().await;
                return Err(e);
            }
        }
    }
    let accounts: Vec<Account> = (0..cfg.accounts)
        .map(|i| {
            let keys = account_keys(cfg.seed, i);
            Account {
                id: keys.account_id(),
                keys,
                device: i % cfg.devices,
                seen: Mutex::new(HashSet::new()),
            }
        })
        .collect();
    let by_id = accounts
        .iter()
        .enumerate()
        .map(|(i, a)| (a.id, i as u32))
        .collect();
    let fault_state = cfg
        .faults
        .as_ref()
        .map(|_| Arc::new(FaultState::new(&devnet)));
    let ctx = Arc::new(Ctx {
        inflight: Semaphore::new(cfg.max_inflight.max(1)),
        cfg: cfg.clone(),
        accounts,
        by_id,
        devices,
        ledger: Ledger::default(),
        counters: Counters::default(),
        ack_lat: Mutex::new(Vec::new()),
        delivery_lat: Mutex::new(Vec::new()),
        faults: fault_state.clone(),
    });

    // Every device builds its paths before the clock starts.
    let mut ready = tokio::task::JoinSet::new();
    for d in 0..cfg.devices {
        let c = ctx.clone();
        ready.spawn(async move {
            c.devices[d]
                .ensure_ready(Duration::from_secs(60))
                .await
                .map_err(|e| LoadError::Device {
                    index: d,
                    message: e.to_string(),
                })
        });
    }
    while let Some(r) = ready.join_next().await {
        if let Ok(Err(e)) = r {
            // No node process outlives a failed run.
            devnet.down().await;
            return Err(e);
        }
    }

    let load_start = tokio::time::Instant::now();
    let stop_at = load_start + cfg.duration;
    let mut idle_devnet = None;
    let fault_task = match (&cfg.faults, &fault_state) {
        (Some(plan), Some(fs)) => {
            let (plan, fs) = (plan.clone(), fs.clone());
            let (seed, duration) = (cfg.seed, cfg.duration);
            Some(tokio::spawn(async move {
                faults::run(devnet, fs, plan, seed, load_start, duration).await
            }))
        }
        _ => {
            idle_devnet = Some(devnet);
            None
        }
    };
    let progress = cfg.progress.map(|every| {
        let c = ctx.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let v = c.ledger.verdict();
                eprintln!(
                    "[{:>4.0} s] sent {} acked {} delivered {} retries {} 507s {}",
                    load_start.elapsed().as_secs_f64(),
                    v.sent,
                    v.acked,
                    v.delivered_once,
                    c.counters.retries.load(Ordering::Relaxed),
                    c.counters.refused_507.load(Ordering::Relaxed),
                );
            }
        })
    });
    let mut accts = tokio::task::JoinSet::new();
    for i in 0..cfg.accounts {
        accts.spawn(account_loop(ctx.clone(), i, stop_at));
    }
    while accts.join_next().await.is_some() {}
    let load_secs = load_start.elapsed().as_secs_f64();
    let syncs_during_load = ctx.counters.sync_calls.load(Ordering::Relaxed);
    let acked_during_load = ctx.ledger.verdict().acked;

    // Faults end before the load does; get the devnet back whole.
    let devnet = match (fault_task, idle_devnet) {
        (Some(t), _) => {
            let (devnet, fault_result) = t
                .await
                .map_err(|e| LoadError::Invalid(format!("fault task: {e}")))?;
            if let Err(e) = fault_result {
                devnet.down().await;
                return Err(e);
            }
            devnet
        }
        (None, Some(d)) => d,
        (None, None) => return Err(LoadError::Invalid("no devnet".into())),
    };

    // Final syncs until every acknowledged message arrived, or `settle`.
    let settle_start = Instant::now();
    let settle_deadline = settle_start + cfg.settle;
    loop {
        let pending = ctx.ledger.recipients_pending();
        if pending.is_empty() || Instant::now() >= settle_deadline {
            break;
        }
        let mut js = tokio::task::JoinSet::new();
        for r in pending {
            let c = ctx.clone();
            js.spawn(async move {
                let _ = c.sync(r as usize).await;
            });
        }
        while js.join_next().await.is_some() {}
        if !ctx.ledger.recipients_pending().is_empty() {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    // One more sync of everyone catches late duplicates.
    let mut js = tokio::task::JoinSet::new();
    for r in 0..cfg.accounts {
        let c = ctx.clone();
        js.spawn(async move {
            let _ = c.sync(r).await;
        });
    }
    while js.join_next().await.is_some() {}
    let settle_s = settle_start.elapsed().as_secs_f64();
    if let Some(p) = progress {
        p.abort();
    }

    let keys: Vec<AccountKeys> = ctx.accounts.iter().map(|a| a.keys.clone()).collect();
    let check_deadline = Instant::now() + cfg.settle.max(Duration::from_secs(30));
    let swarm_check =
        verify::check_swarms(&devnet, &keys, &ctx.ledger.acked_hashes(), check_deadline).await;
    devnet.down().await;

    let c = &ctx.counters;
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let lat = |m: &Mutex<Vec<Duration>>| {
        Percentiles::of(&m.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    };
    Ok(Report {
        accounts: cfg.accounts,
        nodes: cfg.nodes,
        devices: cfg.devices,
        max_inflight: cfg.max_inflight,
        duration_s: load_secs,
        acked_per_s: acked_during_load as f64 / load_secs.max(1e-9),
        syncs_per_s: syncs_during_load as f64 / load_secs.max(1e-9),
        send_ack: lat(&ctx.ack_lat),
        delivery: lat(&ctx.delivery_lat),
        store_calls: get(&c.store_calls),
        retries: get(&c.retries),
        refused_507: get(&c.refused_507),
        refused_other: get(&c.refused_other),
        path_failures: get(&c.path_failures),
        timeouts: get(&c.timeouts),
        unconfirmed: get(&c.unconfirmed),
        given_up: get(&c.given_up),
        member_query_failures: get(&c.member_query_failures),
        member_timeouts: get(&c.member_timeouts),
        sync_calls: get(&c.sync_calls),
        sync_failures: get(&c.sync_failures),
        undecryptable: get(&c.undecryptable),
        foreign: get(&c.foreign),
        verdict: ctx.ledger.verdict(),
        swarm_check,
        faults: fault_state.map(|f| f.counts()),
        settle_s,
    })
}
