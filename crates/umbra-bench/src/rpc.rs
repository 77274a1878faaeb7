//! The `rpc` row: `store` and `retrieve` requests/s and p50/p99 of ONE real
//! node (real SQLite, real HTTPS with pinned TLS and keep-alive) alone in a
//! one-node registry (`storage-rpc.md` §1, §9.1, §9.2), with `C` client
//! tasks each keeping one request in flight through a pooled [`NodeClient`].
//! Client and node share the machine's cores.
//!
//! Each figure stands next to the two bounds measured in the same run:
//! - `noop HTTPS`: the same client against an endpoint of the same server
//!   stack (TLS, hyper, axum) that answers `{}` to the same 1.4 KiB POST —
//!   what any handler costs at the least;
//! - `store layer`: `Store::store` alone (SQLite with group commit, no HTTP)
//!   with the same concurrency — what the database allows.
//!
//! Messages are 1 KiB, spread over 100 accounts' public inboxes; retrieves
//! are signed once up front (`max_count` 1, so one 1 KiB message comes back).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use umbra_crypto::Ed25519Keypair;
use umbra_node::storage::{Store, StoreConfig, StoreOptions};
use umbra_proto::identity::{AccountId, AccountKeys};
use umbra_transport::{ClientConfig, NodeAddr, NodeClient, Server, tls};

use crate::measure::Latencies;
use crate::setup::{
    BenchNet, SOLO, account, message, node_config, node_key, now_ms, stored_message,
};
use crate::table::{Row, num};

const ACCOUNTS: usize = 100;
const MSG: usize = 1024;
const TTL_MS: u64 = 3_600_000;

/// How hard and how long.
#[derive(Debug, Clone, Copy)]
pub struct RpcOpts {
    /// Requests kept in flight.
    pub concurrency: usize,
    /// Duration of each phase.
    pub phase: Duration,
}

impl RpcOpts {
    /// 32 in flight; 5 s per phase (1 s when quick).
    pub fn new(quick: bool) -> Self {
        RpcOpts {
            concurrency: 32,
            phase: Duration::from_secs(if quick { 1 } else { 5 }),
        }
    }
}

/// Outcome of one phase.
#[derive(Debug, Clone)]
pub struct Phase {
    /// Wall time of the phase.
    pub elapsed: Duration,
    /// Latencies of the successful requests.
    pub lat: Latencies,
    /// Failed requests.
    pub errors: u64,
    /// Why the first failed request failed.
    pub first_error: Option<String>,
}

impl Phase {
    /// Successful requests per second.
    pub fn rate(&self) -> f64 {
        self.lat.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The four phases.
#[derive(Debug, Clone)]
pub struct RpcFigures {
    /// No-op HTTPS endpoint (bound).
    pub noop: Phase,
    /// The storage layer alone (bound).
    pub layer: Phase,
    /// `store` over HTTPS.
    pub store: Phase,
    /// `retrieve` over HTTPS.
    pub retrieve: Phase,
    /// Requests in flight.
    pub concurrency: usize,
}

/// Runs `tasks` concurrent loops of `op(task, n)` for `dur`; `op` returns
/// why a request failed.
pub async fn closed_loop<F, Fut>(tasks: usize, dur: Duration, op: F) -> Phase
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    let op = Arc::new(op);
    let start = Instant::now();
    let deadline = start + dur;
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut lat = Latencies::new();
                let mut errors = 0u64;
                let mut first = None;
                let mut n = 0usize;
                while Instant::now() < deadline {
                    let t0 = Instant::now();
                    match op(t, n).await {
                        Ok(()) => lat.push(t0.elapsed()),
                        Err(e) => {
                            errors += 1;
                            first.get_or_insert(e);
                        }
                    }
                    n += 1;
                }
                (lat, errors, first)
            })
        })
        .collect();
    let mut phase = Phase {
        elapsed: Duration::ZERO,
        lat: Latencies::new(),
        errors: 0,
        first_error: None,
    };
    for h in handles {
        match h.await {
            Ok((lat, errors, first)) => {
                phase.lat.extend(lat);
                phase.errors += errors;
                if phase.first_error.is_none() {
                    phase.first_error = first;
                }
            }
            Err(e) => {
                phase.errors += 1;
                phase.first_error.get_or_insert(format!("task failed: {e}"));
            }
        }
    }
    phase.elapsed = start.elapsed();
    phase
}

/// `Ok` for a `200` answer whose body is longer than `min_len`.
fn check(
    r: Result<umbra_transport::Response, umbra_transport::TransportError>,
    min_len: usize,
) -> Result<(), String> {
    match r {
        Ok(r) if r.status == 200 && r.body.len() > min_len => Ok(()),
        Ok(r) => Err(format!(
            "HTTP {}: {} bytes: {}",
            r.status,
            r.body.len(),
            String::from_utf8_lossy(&r.body[..r.body.len().min(120)])
        )),
        Err(e) => Err(e.to_string()),
    }
}

fn store_body(owner: &AccountId, data: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&json!({"method": "store", "params": {
        "pubkey": owner.to_string(), "timestamp": now_ms(), "ttl": TTL_MS,
        "data": STANDARD.encode(data),
    }}))
    .unwrap_or_default()
}

/// Runs the four phases.
pub async fn measure(opts: RpcOpts) -> Result<RpcFigures> {
    let conc = opts.concurrency.max(1);
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let client = NodeClient::new(ClientConfig {
        max_idle_per_node: conc,
        ..ClientConfig::default()
    });
    let accounts: Arc<Vec<AccountKeys>> = Arc::new((0..ACCOUNTS).map(account).collect());
    let ids: Arc<Vec<AccountId>> = Arc::new(accounts.iter().map(AccountKeys::account_id).collect());

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
    let body = store_body(&ids[0], &message(0, 0, MSG));
    let c = client.clone();
    let noop = closed_loop(conc, opts.phase, move |_, _| {
        let (c, body) = (c.clone(), body.clone());
        async move { check(c.post(&noop_addr, "/noop", body).await, 0) }
    })
    .await;
    let _ = stop_tx.send(());
    let _ = noop_server.await;

    // 2. The storage layer alone.
    let store = Store::open(dir.path().join("layer.sqlite"), StoreConfig::default())?;
    let (s, i2) = (store.clone(), ids.clone());
    let layer = closed_loop(conc, opts.phase, move |t, n| {
        let (s, ids) = (s.clone(), i2.clone());
        async move {
            let now = now_ms();
            let m = stored_message(ids[(t + n) % ACCOUNTS], message(t, n, MSG), now, TTL_MS);
            s.store(m, StoreOptions::default(), now)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    })
    .await;
    drop(store);

    // 3. One real node, alone in its registry.
    let net = BenchNet::new(SOLO);
    let key = node_key(dir.path(), 0)?;
    let handle = umbra_node::start(
        node_config(dir.path(), 0)?,
        &net.network,
        Arc::new(umbra_transport::SystemClock),
    )
    .await?;
    let doc = net.registry(&[(&key, handle.addr)])?;
    handle.node.offer_registry(&doc.encode())?;
    let node_addr = NodeAddr::new(handle.addr, handle.public());

    let (c, i3) = (client.clone(), ids.clone());
    let stores = closed_loop(conc, opts.phase, move |t, n| {
        let (c, ids) = (c.clone(), i3.clone());
        async move {
            let body = store_body(&ids[(t + n) % ACCOUNTS], &message(t, n, MSG));
            check(c.post(&node_addr, "/storage_rpc/v1", body).await, 0)
        }
    })
    .await;

    // 4. Retrieves, signed up front (valid for 60 s; a phase is shorter).
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
    let retrieve = closed_loop(
        conc,
        opts.phase.min(Duration::from_secs(50)),
        move |t, n| {
            let (c, bodies) = (c.clone(), bodies.clone());
            async move {
                let body = bodies[(t + n) % ACCOUNTS].clone();
                check(c.post(&node_addr, "/storage_rpc/v1", body).await, MSG)
            }
        },
    )
    .await;
    handle.shutdown().await;
    Ok(RpcFigures {
        noop,
        layer,
        store: stores,
        retrieve,
        concurrency: conc,
    })
}

fn phase_row(what: &str, p: &mut Phase, bound: String) -> Row {
    let errors = if p.errors > 0 {
        format!(
            ", {} errors (first: {})",
            p.errors,
            p.first_error.as_deref().unwrap_or("?")
        )
    } else {
        String::new()
    };
    Row::new(
        "rpc",
        what,
        format!(
            "{} req/s, p50 {} ms, p99 {} ms{errors}",
            num(p.rate(), 0),
            num(p.lat.pct_ms(0.5), 2),
            num(p.lat.pct_ms(0.99), 2)
        ),
        bound,
    )
}

/// The table rows of `f`.
pub fn rows(f: &mut RpcFigures) -> Vec<Row> {
    let c = f.concurrency;
    let (noop, layer) = (f.noop.rate(), f.layer.rate());
    let s_noop = f.store.rate() / noop.max(1e-9);
    let s_layer = f.store.rate() / layer.max(1e-9);
    let r_noop = f.retrieve.rate() / noop.max(1e-9);
    vec![
        phase_row(
            &format!("bound: no-op HTTPS POST 1.4 KiB, {c} in flight"),
            &mut f.noop,
            "TLS + HTTP/1.1 + axum, no handler".into(),
        ),
        phase_row(
            &format!("bound: storage layer store 1 KiB, {c} tasks"),
            &mut f.layer,
            "SQLite WAL, group commit, no HTTP".into(),
        ),
        phase_row(
            &format!("store 1 KiB over HTTPS, {c} in flight"),
            &mut f.store,
            format!(
                "{:.2} of no-op HTTPS, {:.2} of storage layer",
                s_noop, s_layer
            ),
        ),
        phase_row(
            &format!("retrieve (signed, 1 msg) over HTTPS, {c} in flight"),
            &mut f.retrieve,
            format!("{r_noop:.2} of no-op HTTPS"),
        ),
    ]
}
