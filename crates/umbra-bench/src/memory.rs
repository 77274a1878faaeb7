//! The `memory` row: resident memory of a real node process holding
//! 1,000,000 stored messages, and its database size relative to the payload.
//!
//! How the database is built: not through 1M HTTPS requests, but through the
//! node's own storage layer — [`Store::apply_push`] (the hand-over / catch-up
//! insert of `swarms.md` §7.3: same schema, same indexes, same size
//! accounting as a client `store`) in batches of 5,000 messages, four batches
//! in flight, each batch one SQLite transaction. The messages are 10,000
//! accounts × 100 messages in namespace 0, with correct hashes
//! (`storage-rpc.md` §7) and incompressible bodies of the size of a real
//! one-line text message envelope (`seal_content` of 100 characters).
//!
//! Then this executable starts itself as `umbra-bench node …` (the `umbrad`
//! command line, [`umbra_node::daemon`]) on that data directory, in its own
//! process, alone in a one-node registry; RSS is read from
//! `/proc/PID/status` when it first answers `info`, and again after a
//! series of signed `retrieve`s of whole inboxes (which also checks that
//! every account's 100 messages are there). The same is done with an empty
//! node for the baseline.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use umbra_node::storage::{Store, StoreConfig, StoredMessage};
use umbra_proto::identity::{AccountId, AccountKeys};
use umbra_proto::message::Content;
use umbra_proto::message::protos::DataMessage;
use umbra_transport::{NodeAddr, NodeClient};

use crate::measure::{Latencies, rss_kib};
use crate::setup::{BenchNet, SOLO, account, node_key, now_ms, stored_message};
use crate::table::{Row, num, p50_p99};

const PER_ACCOUNT: usize = 100;
const BATCH: usize = 5_000;
const IN_FLIGHT: usize = 4;
const TTL_MS: u64 = 14 * 24 * 3_600_000;

/// How many messages.
#[derive(Debug, Clone, Copy)]
pub struct MemoryOpts {
    /// Messages stored (a multiple of 100 is used: 100 per account).
    pub messages: usize,
    /// Signed whole-inbox retrieves after start.
    pub retrieves: usize,
}

impl MemoryOpts {
    /// 1,000,000 messages and 300 retrieves (quick: 100,000 and 50).
    pub fn new(quick: bool) -> Self {
        MemoryOpts {
            messages: if quick { 100_000 } else { 1_000_000 },
            retrieves: if quick { 50 } else { 300 },
        }
    }
}

/// RSS of one node process.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rss {
    /// When it first answered `info`, KiB.
    pub ready_kib: u64,
    /// After the retrieves, KiB.
    pub after_kib: u64,
    /// Peak (VmHWM), KiB.
    pub peak_kib: u64,
    /// Start until the first `info` answer.
    pub start: Duration,
}

/// The row's figures.
#[derive(Debug, Clone)]
pub struct MemoryFigures {
    /// Messages stored.
    pub messages: u64,
    /// Bytes of one message body.
    pub payload_len: usize,
    /// Time to build the database.
    pub build: Duration,
    /// Database file size (main file after a WAL checkpoint).
    pub db_bytes: u64,
    /// The node holding the messages.
    pub full: Rss,
    /// An empty node.
    pub empty: Rss,
    /// Retrieve latencies of whole 100-message inboxes on the full node.
    pub retrieve: Latencies,
}

/// Size of the envelope of a one-line (100-character) text message.
pub fn envelope_len() -> Result<usize> {
    let alice = account(1);
    let bob = account(2);
    let content = Content {
        data_message: Some(DataMessage {
            body: Some("x".repeat(100)),
            ..Default::default()
        }),
        ..Default::default()
    };
    Ok(
        umbra_proto::message::seal_content(&alice, &bob.account_id(), &content, now_ms(), [7; 32])?
            .len(),
    )
}

/// Incompressible bytes for message `n` (xorshift64*).
fn body(n: u64, len: usize) -> Vec<u8> {
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Fills `db` with `accounts × 100` messages through the storage layer;
/// returns the count stored.
pub async fn build_db(db: &Path, ids: &[AccountId], payload_len: usize) -> Result<u64> {
    let store = Store::open(db, StoreConfig::default())?;
    let now = now_ms();
    let total = ids.len() * PER_ACCOUNT;
    let mut set = tokio::task::JoinSet::new();
    let mut stored = 0u64;
    let mut next = 0usize;
    while next < total || !set.is_empty() {
        while next < total && set.len() < IN_FLIGHT {
            let end = (next + BATCH).min(total);
            let batch: Vec<StoredMessage> = (next..end)
                .map(|n| {
                    // Round-robin over accounts, as real traffic interleaves them.
                    let owner = ids[n % ids.len()];
                    stored_message(owner, body(n as u64, payload_len), now, TTL_MS)
                })
                .collect();
            let s = store.clone();
            set.spawn(async move { s.apply_push(batch, now).await });
            next = end;
        }
        if let Some(r) = set.join_next().await {
            stored += r.context("an insert task failed")?? as u64;
        }
    }
    store.checkpoint().await?;
    drop(store);
    Ok(stored)
}

/// A node process started from this executable (`umbra-bench node …`).
struct NodeProcess {
    child: tokio::process::Child,
    pid: u32,
    addr: NodeAddr,
}

impl NodeProcess {
    /// Writes `network.json` and the registry next to `data_dir` and starts
    /// the node on `port`; waits until it answers `info`.
    async fn start(net: &BenchNet, data_dir: &Path, i: u8) -> Result<(NodeProcess, Duration)> {
        let root = data_dir.parent().context("data directory has no parent")?;
        let key = node_key(root, i)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let doc = net.registry(&[(&key, addr)])?;
        std::fs::write(data_dir.join("registry"), doc.encode())?;
        let network = root.join("network.json");
        std::fs::write(&network, net.network.to_json())?;
        let log = std::fs::File::create(data_dir.join("node.log"))?;
        let exe = bench_exe()?;
        let t = Instant::now();
        let child = tokio::process::Command::new(&exe)
            .arg("node")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--network")
            .arg(&network)
            .arg("--log-level")
            .arg("warn")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
        let pid = child.id().context("the node process has no pid")?;
        let proc = NodeProcess {
            child,
            pid,
            addr: NodeAddr::new(addr, key.public()),
        };
        let client = NodeClient::default();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(r) = client
                .post(
                    &proc.addr,
                    "/storage_rpc/v1",
                    &br#"{"method":"info","params":{}}"#[..],
                )
                .await
                && r.status == 200
            {
                return Ok((proc, t.elapsed()));
            }
            if Instant::now() > deadline {
                bail!(
                    "the node on {} did not answer within 120 s (log: {})",
                    addr,
                    data_dir.join("node.log").display()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM, then SIGKILL if it has not exited within 10 s.
    async fn stop(mut self) {
        umbra_devnet::signal(self.pid, "TERM");
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// The executable to run `node` with: this one, or `umbra-bench` next to
/// the test binary when run from `cargo test`.
fn bench_exe() -> Result<PathBuf> {
    if let Ok(p) = std::env::var("UMBRA_BENCH_EXE") {
        return Ok(PathBuf::from(p));
    }
    Ok(std::env::current_exe()?)
}

fn signed_retrieve(keys: &AccountKeys, t: u64) -> Vec<u8> {
    let sig = keys.ed25519().sign(format!("retrieve{t}").as_bytes());
    serde_json::to_vec(&json!({"method": "retrieve", "params": {
        "pubkey": keys.account_id().to_string(),
        "pubkey_ed25519": hex::encode(keys.ed25519_public().as_bytes()),
        "timestamp": t,
        "signature": STANDARD.encode(sig),
    }}))
    .unwrap_or_default()
}

/// Retrieves whole inboxes of `accounts` (round robin); checks each holds
/// `expect` messages.
async fn retrieves(
    addr: &NodeAddr,
    accounts: &[AccountKeys],
    n: usize,
    expect: usize,
) -> Result<Latencies> {
    let client = NodeClient::default();
    let mut lat = Latencies::new();
    for k in 0..n {
        // Spread over the whole key space: a stride coprime with the count.
        let a = &accounts[(k * 7_919) % accounts.len()];
        let body = signed_retrieve(a, now_ms());
        let t = Instant::now();
        let r = client.post(addr, "/storage_rpc/v1", body).await?;
        lat.push(t.elapsed());
        if r.status != 200 {
            bail!("retrieve answered {}", r.status);
        }
        let v: Value = serde_json::from_slice(&r.body)?;
        let got = v["messages"].as_array().map_or(0, Vec::len);
        if got != expect {
            bail!("an inbox held {got} messages, expected {expect}");
        }
    }
    Ok(lat)
}

async fn rss_of(proc: &NodeProcess) -> Result<(u64, u64)> {
    rss_kib(proc.pid).context("reading the node's /proc/PID/status")
}

/// Runs the row.
pub async fn measure(opts: MemoryOpts) -> Result<MemoryFigures> {
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let net = BenchNet::new(SOLO);
    let n_accounts = (opts.messages / PER_ACCOUNT).max(1);
    let accounts: Arc<Vec<AccountKeys>> = Arc::new((0..n_accounts).map(account).collect());
    let ids: Vec<AccountId> = accounts.iter().map(AccountKeys::account_id).collect();
    let payload_len = envelope_len()?;

    let full_dir = dir.path().join("node0");
    node_key(dir.path(), 0)?;
    let t = Instant::now();
    let messages = build_db(&full_dir.join("messages.sqlite"), &ids, payload_len).await?;
    let build = t.elapsed();
    let db_bytes = std::fs::metadata(full_dir.join("messages.sqlite"))?.len();

    let (proc, start) = NodeProcess::start(&net, &full_dir, 0).await?;
    let result = async {
        let (ready_kib, _) = rss_of(&proc).await?;
        let lat = retrieves(&proc.addr, &accounts, opts.retrieves, PER_ACCOUNT).await?;
        let (after_kib, peak_kib) = rss_of(&proc).await?;
        Ok::<_, anyhow::Error>((
            Rss {
                ready_kib,
                after_kib,
                peak_kib,
                start,
            },
            lat,
        ))
    }
    .await;
    proc.stop().await;
    let (full, retrieve) = result?;

    let empty_dir = dir.path().join("node1");
    node_key(dir.path(), 1)?;
    let (proc, start) = NodeProcess::start(&net, &empty_dir, 1).await?;
    let result = async {
        let (ready_kib, _) = rss_of(&proc).await?;
        retrieves(&proc.addr, &accounts, opts.retrieves, 0).await?;
        let (after_kib, peak_kib) = rss_of(&proc).await?;
        Ok::<_, anyhow::Error>(Rss {
            ready_kib,
            after_kib,
            peak_kib,
            start,
        })
    }
    .await;
    proc.stop().await;
    Ok(MemoryFigures {
        messages,
        payload_len,
        build,
        db_bytes,
        full,
        empty: result?,
        retrieve,
    })
}

fn mib(kib: u64) -> String {
    format!("{} MiB", num(kib as f64 / 1024.0, 1))
}

/// The table rows of `f`.
pub fn rows(f: &mut MemoryFigures) -> Vec<Row> {
    let payload = f.messages * f.payload_len as u64;
    let m = num(f.messages as f64, 0);
    vec![
        Row::new(
            "memory",
            format!("node RSS holding {m} messages (ready / after retrieves / peak)"),
            format!(
                "{} / {} / {}",
                mib(f.full.ready_kib),
                mib(f.full.after_kib),
                mib(f.full.peak_kib)
            ),
            format!(
                "empty node {} / {} / {}",
                mib(f.empty.ready_kib),
                mib(f.empty.after_kib),
                mib(f.empty.peak_kib)
            ),
        ),
        Row::new(
            "memory",
            format!("database size, {m} × {} B envelopes", f.payload_len),
            format!("{} MiB", num(f.db_bytes as f64 / 1_048_576.0, 1)),
            format!(
                "{:.2}× payload ({} B overhead per message)",
                f.db_bytes as f64 / payload.max(1) as f64,
                num(
                    (f.db_bytes as f64 - payload as f64) / f.messages.max(1) as f64,
                    0
                )
            ),
        ),
        Row::new(
            "memory",
            "building it through the storage layer (apply_push, 5,000 per transaction)",
            format!(
                "{} messages/s",
                num(f.messages as f64 / f.build.as_secs_f64().max(1e-9), 0)
            ),
            format!("{} s", num(f.build.as_secs_f64(), 1)),
        ),
        Row::new(
            "memory",
            "node start until first info answer (full / empty)",
            format!(
                "{} ms / {} ms",
                num(f.full.start.as_secs_f64() * 1e3, 0),
                num(f.empty.start.as_secs_f64() * 1e3, 0)
            ),
            "separate process (umbra-bench node)".to_string(),
        ),
        Row::new(
            "memory",
            "retrieve of a whole 100-message inbox on that node",
            p50_p99(&mut f.retrieve, 2),
            format!("n = {}, sequential", f.retrieve.len()),
        ),
    ]
}
