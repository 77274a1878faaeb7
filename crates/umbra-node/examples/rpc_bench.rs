//! Storage-RPC throughput and latency of ONE node over HTTPS with
//! keep-alive (`shared/spec/storage-rpc.md` §1, §9.1, §9.2): a node runs in
//! this process as the only member of a one-node registry; `C` client tasks
//! keep one request each in flight through a pooled, pinned [`NodeClient`].
//!
//! Phases, each for the same duration and concurrency, in one run:
//! 1. `noop`: the same client against a no-op HTTPS endpoint of the same
//!    server stack (TLS, hyper, axum) answering `{}` to a 1.4 KiB POST: the
//!    bound for any handler;
//! 2. `store layer`: `Store::store` alone (SQLite with group commit), no
//!    HTTP: the bound of the database;
//! 3. `store`: `store` RPCs of 1 KiB messages (public inbox, 100 accounts);
//! 4. `handler`: the same `store` bodies given to `rpc::handle_body` in
//!    process (parse, validate, store, sign, encode; no TLS/HTTP);
//! 5. `retrieve`: signed `retrieve` RPCs (`max_count` 1, so one 1 KiB
//!    message comes back), pre-signed so the client does not sign per call.
//!
//! Reports requests/s, p50/p99/max latency and the ratios store/noop and
//! store/store-layer, then a single-thread CPU breakdown of one `store`
//! (µs per step).
//!
//! `cargo run --release -p umbra-node --example rpc_bench -- [concurrency] [seconds]`
//! (defaults 64 and 5). Client and node share the machine's cores.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use umbra_crypto::Ed25519Keypair;
use umbra_node::NodeConfig;
use umbra_node::storage::{Store, StoreConfig, StoreOptions, StoredMessage};
use umbra_proto::identity::{AccountId, AccountKeys};
use umbra_proto::network::{NetworkConfig, SwarmParamsJson};
use umbra_proto::rpc::encoding::Ed25519Hex;
use umbra_proto::rpc::limits::Origin;
use umbra_proto::rpc::validate::{self, AuthEnv};
use umbra_proto::rpc::{Request, Via, node_sig};
use umbra_proto::swarm::{NodeRecord, RegistryDocument, SwarmParams};
use umbra_transport::{ClientConfig, NodeAddr, NodeClient, Server, SystemClock, tls};

const SOLO: SwarmParams = SwarmParams {
    min_swarm_size: 1,
    excess_base: 1,
    ideal_swarm_margin: 0,
    new_swarm_size: 1,
};
const ACCOUNTS: usize = 100;
const MSG: usize = 1024;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Latencies and outcome counts of one phase.
struct Phase {
    name: &'static str,
    elapsed: Duration,
    lat_us: Vec<u32>,
    errors: u64,
}

impl Phase {
    fn rate(&self) -> f64 {
        self.lat_us.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn pct(&self, p: f64) -> f64 {
        if self.lat_us.is_empty() {
            return 0.0;
        }
        let i = ((self.lat_us.len() as f64 - 1.0) * p).round() as usize;
        f64::from(self.lat_us[i]) / 1000.0
    }

    fn print(&mut self) {
        self.lat_us.sort_unstable();
        println!(
            "{:<12} {:>9} ok {:>5} err {:>10.0} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms   max {:>7.2} ms",
            self.name,
            self.lat_us.len(),
            self.errors,
            self.rate(),
            self.pct(0.50),
            self.pct(0.99),
            self.pct(1.0),
        );
    }
}

/// Runs `tasks` concurrent loops of `op(task, n)` for `secs`; `op` returns
/// whether the request succeeded.
async fn run<F, Fut>(name: &'static str, tasks: usize, secs: u64, op: F) -> Phase
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let op = Arc::new(op);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut errors = 0u64;
                let mut n = 0usize;
                while Instant::now() < deadline {
                    let t0 = Instant::now();
                    if op(t, n).await {
                        lat.push(t0.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                    } else {
                        errors += 1;
                    }
                    n += 1;
                }
                (lat, errors)
            })
        })
        .collect();
    let mut phase = Phase {
        name,
        elapsed: Duration::ZERO,
        lat_us: Vec::new(),
        errors: 0,
    };
    for h in handles {
        if let Ok((lat, errors)) = h.await {
            phase.lat_us.extend(lat);
            phase.errors += errors;
        } else {
            phase.errors += 1;
        }
    }
    phase.elapsed = start.elapsed();
    phase
}

fn message(t: usize, n: usize) -> Vec<u8> {
    let mut data = format!("bench task {t} message {n} ").into_bytes();
    data.resize(MSG, b'.');
    data
}

fn account(i: usize) -> AccountKeys {
    let mut seed = [0x5Au8; 32];
    seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
    AccountKeys::from_seed(&seed)
}

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let conc: usize = args.first().map_or(Ok(64), |a| a.parse())?;
    let secs: u64 = args.get(1).map_or(Ok(5), |a| a.parse())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(bench(conc, secs))
}

async fn bench(conc: usize, secs: u64) -> Result<(), BoxError> {
    let dir = tempfile::tempdir()?;
    println!(
        "rpc_bench: concurrency {conc}, {secs} s per phase, {MSG}-byte messages, {} worker threads",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let client = NodeClient::new(ClientConfig {
        max_idle_per_node: conc,
        ..ClientConfig::default()
    });
    let accounts: Arc<Vec<AccountKeys>> = Arc::new((0..ACCOUNTS).map(account).collect());
    let ids: Arc<Vec<AccountId>> = Arc::new(accounts.iter().map(|a| a.account_id()).collect());

    // 1. The no-op HTTPS bound.
    let noop_key = Ed25519Keypair::from_seed(&[0x0B; 32]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let noop_addr = NodeAddr::new(listener.local_addr()?, noop_key.public());
    let router = axum::Router::new().route("/noop", axum::routing::post(|| async { "{}" }));
    let tls_cfg = tls::server_config(&noop_key)?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let noop_server = tokio::spawn(async move {
        let _ = Server::new(router)
            .serve_tls(listener, tls_cfg, async {
                let _ = stop_rx.await;
            })
            .await;
    });
    let body = serde_json::to_vec(&json!({"method": "store", "params": {
        "pubkey": ids[0].to_string(), "timestamp": now_ms(), "ttl": 3_600_000,
        "data": STANDARD.encode(message(0, 0)),
    }}))?;
    let c = client.clone();
    let mut noop = run("noop", conc, secs, move |_, _| {
        let (c, body) = (c.clone(), body.clone());
        async move {
            c.post(&noop_addr, "/noop", body)
                .await
                .is_ok_and(|r| r.status == 200)
        }
    })
    .await;
    let _ = stop_tx.send(());
    let _ = noop_server.await;

    // 2. The store layer alone.
    let store = Store::open(dir.path().join("layer.sqlite"), StoreConfig::default())?;
    let (s, i2) = (store.clone(), ids.clone());
    let mut layer = run("store layer", conc, secs, move |t, n| {
        let (s, ids) = (s.clone(), i2.clone());
        async move {
            let data = message(t, n);
            let owner = ids[(t + n) % ACCOUNTS];
            let hash =
                umbra_proto::rpc::hash::message_hash(&owner, umbra_proto::rpc::Namespace(0), &data);
            let now = now_ms();
            let m = StoredMessage {
                hash: hash.as_str().to_string(),
                owner,
                namespace: 0,
                timestamp_ms: now,
                expiry_ms: now + 3_600_000,
                data,
            };
            s.store(m, StoreOptions::default(), now).await.is_ok()
        }
    })
    .await;
    drop(store);

    // 3. and 4. One node, alone in its registry.
    let registry_key = Ed25519Keypair::from_seed(&[0xEE; 32]);
    let network = NetworkConfig {
        name: "bench".into(),
        registry_keys: vec![Ed25519Hex(registry_key.public())],
        threshold: 1,
        swarm_params: Some(SwarmParamsJson::from(SOLO)),
        registry_urls: vec![],
        seed_nodes: vec![],
        file_server: None,
    };
    let config = NodeConfig {
        data_dir: dir.path().join("node"),
        listen: "127.0.0.1:0".parse()?,
        rate_limit_burst: u32::MAX,
        rate_limit_per_sec: u32::MAX,
        ..NodeConfig::default()
    };
    let handle = umbra_node::start(config, &network, Arc::new(SystemClock)).await?;
    let record = NodeRecord::sign(
        &handle.node.keys,
        Ipv4Addr::LOCALHOST,
        handle.addr.port(),
        [0, 1, 0],
    )?;
    let doc = RegistryDocument::builder(1, now_ms())
        .params(SOLO)
        .nodes([record])
        .build()?
        .signed(&registry_key);
    handle.node.offer_registry(&doc.encode())?;
    let node_addr = NodeAddr::new(handle.addr, handle.public());

    let (c, i3) = (client.clone(), ids.clone());
    let mut stores = run("store", conc, secs, move |t, n| {
        let (c, ids) = (c.clone(), i3.clone());
        async move {
            let body = json!({"method": "store", "params": {
                "pubkey": ids[(t + n) % ACCOUNTS].to_string(),
                "timestamp": now_ms(), "ttl": 3_600_000,
                "data": STANDARD.encode(message(t, n)),
            }});
            let Ok(body) = serde_json::to_vec(&body) else {
                return false;
            };
            c.post(&node_addr, "/storage_rpc/v1", body)
                .await
                .is_ok_and(|r| r.status == 200)
        }
    })
    .await;

    let (n, i4) = (handle.node.clone(), ids.clone());
    let mut handler = run("handler", conc, secs, move |t, k| {
        let (n, ids) = (n.clone(), i4.clone());
        async move {
            let body = json!({"method": "store", "params": {
                "pubkey": ids[(t + k) % ACCOUNTS].to_string(),
                "timestamp": now_ms(), "ttl": 3_600_000,
                "data": STANDARD.encode(message(t + 1_000, k)),
            }});
            let Ok(body) = serde_json::to_vec(&body) else {
                return false;
            };
            let reply = umbra_node::rpc::handle_body(&n, &body, Via::Direct).await;
            // The HTTP layer would serialise the reply.
            let encoded = serde_json::to_vec(&reply.clone().into_value()).unwrap_or_default();
            reply.status().is_success() && !encoded.is_empty()
        }
    })
    .await;
    let breakdown = breakdown(&handle.node, &ids).await;

    // Pre-signed retrieves (valid for 60 s; each phase is shorter).
    let ts = now_ms();
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
        accounts
            .iter()
            .map(|a| {
                let sig = a.ed25519().sign(format!("retrieve{ts}").as_bytes());
                serde_json::to_vec(&json!({"method": "retrieve", "params": {
                    "pubkey": a.account_id().to_string(),
                    "pubkey_ed25519": hex::encode(a.ed25519_public().as_bytes()),
                    "timestamp": ts, "signature": STANDARD.encode(sig), "max_count": 1,
                }}))
                .unwrap_or_default()
            })
            .collect(),
    );
    let c = client.clone();
    let mut retrieves = run("retrieve", conc, secs.min(50), move |t, n| {
        let (c, bodies) = (c.clone(), bodies.clone());
        async move {
            let body = bodies[(t + n) % ACCOUNTS].clone();
            match c.post(&node_addr, "/storage_rpc/v1", body).await {
                Ok(r) if r.status == 200 => r.body.len() > MSG,
                _ => false,
            }
        }
    })
    .await;
    handle.shutdown().await;

    println!();
    for p in [
        &mut noop,
        &mut layer,
        &mut stores,
        &mut handler,
        &mut retrieves,
    ] {
        p.print();
    }
    println!();
    println!(
        "store / noop HTTPS bound: {:.2}   store / store layer: {:.2}   retrieve / noop: {:.2}",
        stores.rate() / noop.rate(),
        stores.rate() / layer.rate(),
        retrieves.rate() / noop.rate()
    );
    println!();
    println!("one store, single thread, µs per step:");
    for (step, us) in breakdown {
        println!("  {step:<44} {us:>8.1}");
    }
    Ok(())
}

/// Mean single-thread cost of the steps of one `store` RPC, in µs.
async fn breakdown(node: &umbra_node::Node, ids: &[AccountId]) -> Vec<(&'static str, f64)> {
    const N: usize = 2_000;
    let bodies: Vec<Vec<u8>> = (0..N)
        .map(|k| {
            serde_json::to_vec(&json!({"method": "store", "params": {
                "pubkey": ids[k % ACCOUNTS].to_string(),
                "timestamp": now_ms(), "ttl": 3_600_000,
                "data": STANDARD.encode(message(9_999, k)),
            }}))
            .unwrap_or_default()
        })
        .collect();
    let mean = |t: Instant| t.elapsed().as_secs_f64() * 1e6 / N as f64;
    let mut out = Vec::new();

    let t = Instant::now();
    let parsed: Vec<_> = bodies
        .iter()
        .filter_map(|b| Request::parse_body(b, Via::Direct).ok())
        .collect();
    out.push(("JSON parse + typed params (Request)", mean(t)));

    let is_revoked = |_: &umbra_proto::rpc::sign::SubaccountToken| false;
    let env = AuthEnv {
        origin: Origin::Client,
        is_revoked: &is_revoked,
    };
    let now = now_ms();
    let t = Instant::now();
    let mut hashes = Vec::with_capacity(N);
    for r in &parsed {
        if let Request::Store(p) = r
            && let Ok(v) = validate::validate_store(p, now, &env)
        {
            hashes.push(v.hash);
        }
    }
    out.push(("validate_store (base64 decode, BLAKE2b hash)", mean(t)));

    let t = Instant::now();
    let results: Vec<_> = hashes
        .iter()
        .map(|h| node_sig::sign_store_result(&node.keys, h.clone(), now + 1, false))
        .collect();
    out.push(("Ed25519 signature of the result", mean(t)));

    let t = Instant::now();
    for r in &results {
        let v = json!({"swarm": {"k": r}, "t": now});
        let _ = serde_json::to_vec(&v);
    }
    out.push(("response JSON encode", mean(t)));

    let t = Instant::now();
    for _ in 0..N {
        let _ = node.store.max_seq().await;
    }
    out.push(("store.max_seq() read (catch-up floor)", mean(t)));

    let t = Instant::now();
    for b in &bodies {
        let _ = umbra_node::rpc::handle_body(node, b, Via::Direct).await;
    }
    out.push(("whole handler, sequential (one commit each)", mean(t)));
    out
}
