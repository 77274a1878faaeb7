//! The `onion` row (`onion.md` §3–7): relay throughput per core against the
//! per-layer crypto bound, and the 3-hop round trip against a direct request.
//!
//! Four real nodes in this process (TLS, SQLite, signed registry) on
//! loopback: guard G, relay R, hop H, destination D. R runs alone on a
//! single-threaded runtime in its own OS thread, so everything R does to
//! relay a layer (TLS in and out, bencode, X25519 + key derivation +
//! XChaCha20-Poly1305 peel, routing JSON, the request to H over a pooled
//! connection, passing the reply back) is work of that one
//! thread. R's layers/s per core = layers R relayed ÷ R's thread CPU time,
//! which does not depend on what else the machine runs.
//!
//! The bound is the crypto every relayed layer needs, on the very layers R
//! received, timed by this thread's CPU while R relays (side by side, so
//! that both see the same machine speed): one X25519, one BLAKE2b-256 key
//! derivation and one XChaCha20-Poly1305 decryption. (Node-to-node
//! connections are authenticated once per TLS connection by client
//! certificate, so a relayed layer carries no per-request signature; see
//! `docs/ARCHITECTURE.md`.)
//!
//! Round trips: `info` sent directly to D (`/storage_rpc/v1`) and as a padded
//! 3-hop onion G → R → H → D (`/onion_req/v2`), one at a time. Onions are
//! built before the clock starts, so client-side building is not counted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use umbra_crypto::X25519Public;
use umbra_crypto::hash::{Blake2bParams, blake2b_multi};
use umbra_node::Node;
use umbra_proto::onion::{BuiltOnion, Peeled, ReplyOutcome, open_node_reply, peel_entry};
use umbra_transport::{NodeAddr, NodeClient, SystemClock};

use crate::crypto::{per_sec, us};
use crate::measure::{CpuTimer, Latencies, task_cpu_ns, this_task};
use crate::setup::{BenchNet, PAIRS, node_config, node_key, onion, path_node};
use crate::table::{Row, num};

const INFO: &[u8] = br#"{"method":"info","params":{}}"#;

/// How many requests.
#[derive(Debug, Clone, Copy)]
pub struct OnionOpts {
    /// Sequential round trips of each kind.
    pub sequential: usize,
    /// Onions sent for the throughput figure.
    pub onions: usize,
    /// Onions in flight at once.
    pub in_flight: usize,
}

impl OnionOpts {
    /// 500 round trips and 4,000 onions, 64 in flight (quick: 100 and 600).
    pub fn new(quick: bool) -> Self {
        OnionOpts {
            sequential: if quick { 100 } else { 500 },
            onions: if quick { 600 } else { 4000 },
            in_flight: 64,
        }
    }
}

/// The row's figures.
#[derive(Debug, Clone)]
pub struct OnionFigures {
    /// Direct `info` round trips.
    pub direct: Latencies,
    /// 3-hop onion `info` round trips.
    pub onion: Latencies,
    /// Layers R relayed in the throughput phase.
    pub relayed: u64,
    /// R's thread CPU time in that phase.
    pub relay_cpu: Duration,
    /// Onions answered 200.
    pub ok: u64,
    /// Onions sent.
    pub sent: usize,
    /// Onions in flight at once.
    pub in_flight: usize,
    /// Wall time of the throughput phase.
    pub wall: Duration,
    /// Size of the layers R received.
    pub layer_len: usize,
    /// Per layer: X25519 + BLAKE2b-256 + XChaCha20-Poly1305 decrypt.
    pub layer_crypto: Duration,
}

impl OnionFigures {
    /// Layers relayed per second of R's CPU.
    pub fn relay_rate(&self) -> f64 {
        self.relayed as f64 / self.relay_cpu.as_secs_f64().max(1e-9)
    }
}

struct Relay {
    node: Node,
    addr: std::net::SocketAddr,
    task: Option<String>,
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<Result<()>>,
}

/// Starts node `i` of `dir` alone on a current-thread runtime in its own thread.
fn spawn_relay(dir: &std::path::Path, i: u8, net: &BenchNet) -> Result<Relay> {
    let (tx, rx) = std::sync::mpsc::channel();
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let config = node_config(dir, i)?;
    let network = net.network.clone();
    let thread = std::thread::Builder::new()
        .name("bench-relay".into())
        .spawn(move || -> Result<()> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let h = umbra_node::start(config, &network, Arc::new(SystemClock)).await?;
                let _ = tx.send((h.node.clone(), h.addr, this_task()));
                let _ = stop_rx.await;
                h.shutdown().await;
                Ok(())
            })
        })?;
    let (node, addr, task) = rx
        .recv()
        .map_err(|_| anyhow!("the relay node did not start"))?;
    Ok(Relay {
        node,
        addr,
        task,
        stop,
        thread,
    })
}

/// Sends `onions` to `guard`, `in_flight` at a time; how many answered 200.
pub async fn send_all(
    client: &NodeClient,
    guard: NodeAddr,
    onions: Vec<BuiltOnion>,
    in_flight: usize,
) -> u64 {
    let queue = Arc::new(std::sync::Mutex::new(onions));
    let workers: Vec<_> = (0..in_flight.max(1))
        .map(|_| {
            let queue = queue.clone();
            let client = client.clone();
            tokio::spawn(async move {
                let mut ok = 0u64;
                loop {
                    let next = queue.lock().map(|mut q| q.pop()).ok().flatten();
                    let Some(o) = next else { break };
                    if let Ok(r) = client.post(&guard, "/onion_req/v2", o.body).await
                        && r.status == 200
                    {
                        ok += 1;
                    }
                }
                ok
            })
        })
        .collect();
    let mut ok = 0;
    for w in workers {
        ok += w.await.unwrap_or(0);
    }
    ok
}

/// Runs the row.
pub async fn measure(opts: OnionOpts) -> Result<OnionFigures> {
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let net = BenchNet::new(PAIRS);
    let keys = (0..4u8)
        .map(|i| node_key(dir.path(), i))
        .collect::<Result<Vec<_>>>()?;
    let relay = spawn_relay(dir.path(), 1, &net)?;
    let result = async {
        let mut others = Vec::new();
        for i in [0u8, 2, 3] {
            others.push(
                umbra_node::start(
                    node_config(dir.path(), i)?,
                    &net.network,
                    Arc::new(SystemClock),
                )
                .await?,
            );
        }
        let addrs = [others[0].addr, relay.addr, others[1].addr, others[2].addr];
        let listed: Vec<_> = keys.iter().zip(addrs).collect();
        let doc = net.registry(&listed)?;
        let bytes = doc.encode();
        relay.node.offer_registry(&bytes)?;
        for h in &others {
            h.node.offer_registry(&bytes)?;
        }
        let figures = run(&opts, &doc, &keys, &addrs, &relay).await;
        for h in others {
            h.shutdown().await;
        }
        figures
    }
    .await;
    let _ = relay.stop.send(());
    relay
        .thread
        .join()
        .map_err(|_| anyhow!("the relay thread panicked"))??;
    result
}

async fn run(
    opts: &OnionOpts,
    doc: &umbra_proto::swarm::RegistryDocument,
    keys: &[umbra_crypto::Ed25519Keypair],
    addrs: &[std::net::SocketAddr; 4],
    relay: &Relay,
) -> Result<OnionFigures> {
    let hops = [
        path_node(doc, &keys[0])?,
        path_node(doc, &keys[1])?,
        path_node(doc, &keys[2])?,
    ];
    let dest = path_node(doc, &keys[3])?;
    let build = || onion(INFO, &hops, dest);
    let client = NodeClient::default();
    let guard = NodeAddr::new(addrs[0], keys[0].public());
    let d = NodeAddr::new(addrs[3], keys[3].public());

    // Warm up every pooled connection on the way.
    for _ in 0..20 {
        client.post(&d, "/storage_rpc/v1", INFO).await?;
        let r = client.post(&guard, "/onion_req/v2", build()?.body).await?;
        if r.status != 200 {
            bail!("warm-up onion answered {}", r.status);
        }
    }

    let mut direct = Latencies::new();
    for _ in 0..opts.sequential {
        let t = Instant::now();
        let r = client.post(&d, "/storage_rpc/v1", INFO).await?;
        direct.push(t.elapsed());
        if r.status != 200 {
            bail!("direct info answered {}", r.status);
        }
    }
    let onions: Vec<BuiltOnion> = (0..opts.sequential)
        .map(|_| build())
        .collect::<Result<_>>()?;
    let mut rtt = Latencies::new();
    for o in onions {
        let t = Instant::now();
        let r = client.post(&guard, "/onion_req/v2", o.body.clone()).await?;
        rtt.push(t.elapsed());
        match open_node_reply(&o.reply_key, r.status.as_u16(), &r.body) {
            ReplyOutcome::Reply(rep) if rep.status == 200 => {}
            other => bail!("onion reply: {other:?}"),
        }
    }

    // Throughput: R's relayed layers per second of its CPU.
    let batch: Vec<BuiltOnion> = (0..opts.onions).map(|_| build()).collect::<Result<_>>()?;
    let g_secret = keys[0].x25519_secret();
    let mut r_layers: Vec<(X25519Public, Vec<u8>)> = Vec::new();
    for o in batch.iter().take(2000) {
        if let Peeled::Forward { message, .. } = peel_entry(&o.body, &g_secret)? {
            r_layers.push((message.ephemeral_key, message.data));
        }
    }
    let task = relay
        .task
        .as_deref()
        .context("no /proc: R's CPU time is unknown")?;
    let hops_before = relay.node.metrics.onion_hops.get();
    let cpu_before = task_cpu_ns(task).context("reading R's CPU time")?;
    let t = Instant::now();
    let sent = batch.len();
    let sender = {
        let client = client.clone();
        let in_flight = opts.in_flight;
        tokio::spawn(async move { send_all(&client, guard, batch, in_flight).await })
    };

    // The bound, on the layers R received, on this thread while R relays
    // them (this VM's speed drifts from minute to minute: side by side, R
    // and the bound see the same machine), at least once over the layers.
    let r_secret = keys[1].x25519_secret();
    let r_x = keys[1].public().to_x25519()?;
    let timer = CpuTimer::start();
    let mut opened = 0usize;
    for (e, data) in r_layers.iter().cycle() {
        if opened >= r_layers.len() && sender.is_finished() {
            break;
        }
        opened += 1;
        let shared = r_secret.diffie_hellman(e)?;
        let key: [u8; 32] = blake2b_multi(
            &[shared.as_bytes(), e.as_bytes(), r_x.as_bytes()],
            32,
            Blake2bParams::default(),
        )?
        .try_into()
        .map_err(|_| anyhow!("key length"))?;
        let (nonce, ct) = data.split_at(24.min(data.len()));
        umbra_crypto::aead::xchacha20_decrypt(&key, nonce, ct, b"")?;
    }
    let layer_crypto = timer.elapsed() / u32::try_from(opened.max(1)).unwrap_or(u32::MAX);
    let ok = sender.await.unwrap_or(0);
    let wall = t.elapsed();
    let relay_cpu =
        Duration::from_nanos(task_cpu_ns(task).context("reading R's CPU time")? - cpu_before);
    let relayed = relay.node.metrics.onion_hops.get() - hops_before;
    let layer_len = r_layers.first().map_or(0, |(_, d)| d.len());

    Ok(OnionFigures {
        direct,
        onion: rtt,
        relayed,
        relay_cpu,
        ok,
        sent,
        in_flight: opts.in_flight,
        wall,
        layer_len,
        layer_crypto,
    })
}

/// The table rows of `f`.
pub fn rows(f: &mut OnionFigures) -> Vec<Row> {
    let rate = f.relay_rate();
    let bound = per_sec(f.layer_crypto);
    let (d50, d99) = (f.direct.pct_ms(0.5), f.direct.pct_ms(0.99));
    let (o50, o99) = (f.onion.pct_ms(0.5), f.onion.pct_ms(0.99));
    vec![
        Row::new(
            "onion",
            format!(
                "bound: layer crypto, {} B layer (X25519 + BLAKE2b + XChaCha20 open)",
                f.layer_len
            ),
            format!("{} layers/s per core", num(bound, 0)),
            format!("{} µs/layer", num(us(f.layer_crypto), 1)),
        ),
        Row::new(
            "onion",
            format!(
                "relay R: layers relayed per core ({} onions in flight)",
                f.in_flight
            ),
            format!("{} layers/s per core", num(rate, 0)),
            format!(
                "{:.1} % of the layer-crypto bound ({} µs/layer)",
                100.0 * rate / bound.max(1e-9),
                num(1e6 / rate.max(1e-9), 1)
            ),
        ),
        Row::new(
            "onion",
            "3-hop onions through G→R→H→D, 4 nodes on 2 cores",
            format!(
                "{} onions/s ({}/{} ok)",
                num(f.ok as f64 / f.wall.as_secs_f64().max(1e-9), 0),
                f.ok,
                f.sent
            ),
            "whole network on this machine".to_string(),
        ),
        Row::new(
            "onion",
            "direct info round trip (sequential)",
            format!("p50 {} ms, p99 {} ms", num(d50, 3), num(d99, 3)),
            format!("n = {}", f.direct.len()),
        ),
        Row::new(
            "onion",
            "3-hop onion info round trip (sequential)",
            format!("p50 {} ms, p99 {} ms", num(o50, 3), num(o99, 3)),
            format!(
                "{:.1}× direct at p50, {:.1}× at p99",
                o50 / d50.max(1e-9),
                o99 / d99.max(1e-9)
            ),
        ),
    ]
}
