//! One relaying node's onion throughput per core, against the raw per-layer
//! crypto bound measured in the same run (`shared/spec/onion.md` §1, §6).
//!
//! Three real nodes (TLS, signed registry) on loopback: guard G and
//! destination D run on the main runtime; the relay R runs alone on a
//! single-threaded runtime in its own OS thread, so everything R does to
//! relay a layer (TLS in and out, authenticating G's signed node request,
//! bencode, X25519 + key derivation + XChaCha20-Poly1305 peel, routing JSON,
//! signing its own node request to D, passing the reply back) is work of
//! that one thread. The client keeps many padded onions G → R → D in flight;
//! R's layers/s per core is its relayed layers divided by its thread's CPU
//! time (`/proc/thread-self/schedstat`), which does not depend on what else
//! the machine runs.
//!
//! The bound is one X25519 + BLAKE2b-256 key derivation + XChaCha20-Poly1305
//! decryption per layer, on the very layers R received (same sizes), timed by
//! thread CPU time as well. Before the measurement, `in_flight` onions are
//! sent at once a few times, so that every link holds as many pooled
//! connections as the run needs (steady state: no TLS handshake per layer).
//! For reference the bench also times the public-key work a relay used to do
//! per layer and no longer does (re-deriving its own X25519 public key,
//! signing its node request to D, verifying G's: see docs/ARCHITECTURE.md,
//! "Onion relay authentication"). The load average is printed before and
//! after: other processes do not change R's CPU time much, but they do
//! change caches and frequency. The round trip 3-hop vs direct is measured
//! by `onion_bench` (same directory).
//!
//! `cargo run --release -p umbra-node --example relay_bench -- [onions] [in_flight] [rounds]`
//! (defaults: 8000 onions, 64 in flight, 8 rounds). Linux only (schedstat).

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Instant;

use umbra_crypto::Ed25519Keypair;
use umbra_crypto::hash::{Blake2bParams, blake2b_multi};
use umbra_node::NodeConfig;
use umbra_proto::network::{NetworkConfig, SwarmParamsJson};
use umbra_proto::onion::{
    BuiltOnion, EncType, LayerRandom, NodeRequestOptions, OnionDestination, PathNode, Peeled,
    build_padded_onion, peel_entry,
};
use umbra_proto::rpc::encoding::Ed25519Hex;
use umbra_proto::rpc::node_req::{NodeRequestAuth, PATH_ONION};
use umbra_proto::swarm::{NodeRecord, RegistryDocument, SwarmParams};
use umbra_transport::{ClientConfig, NodeAddr, NodeClient, SystemClock};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const PARAMS: SwarmParams = SwarmParams {
    min_swarm_size: 2,
    excess_base: 2,
    ideal_swarm_margin: 1,
    new_swarm_size: 2,
};

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// CPU time (ns) of the thread whose `/proc` task path is `task`.
fn cpu_ns(task: &str) -> Result<u64, BoxError> {
    let s = std::fs::read_to_string(format!("{task}/schedstat"))?;
    Ok(s.split_whitespace()
        .next()
        .ok_or("empty schedstat")?
        .parse()?)
}

/// `/proc/<pid>/task/<tid>` of the calling thread.
fn this_task() -> Result<String, BoxError> {
    let link = std::fs::read_link("/proc/thread-self")?;
    Ok(format!("/proc/{}", link.display()))
}

/// The 1-, 5- and 15-minute load averages.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn node_config(dir: &std::path::Path, i: u8) -> Result<NodeConfig, BoxError> {
    let data_dir = dir.join(format!("node{i}"));
    std::fs::create_dir_all(&data_dir)?;
    Ok(NodeConfig {
        data_dir,
        listen: "127.0.0.1:0".parse()?,
        rate_limit_burst: 1_000_000,
        rate_limit_per_sec: 1_000_000,
        ..NodeConfig::default()
    })
}

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let onions: usize = args.first().map_or(Ok(8000), |a| a.parse())?;
    let in_flight: usize = args.get(1).map_or(Ok(64), |a| a.parse())?;
    let rounds: usize = args.get(2).map_or(Ok(8), |a| a.parse())?.max(1);
    let dir = tempfile::tempdir()?;
    let registry_key = Ed25519Keypair::from_seed(&[0xEE; 32]);
    let network = NetworkConfig {
        name: "bench".into(),
        registry_keys: vec![Ed25519Hex(registry_key.public())],
        threshold: 1,
        swarm_params: Some(SwarmParamsJson::from(PARAMS)),
        registry_urls: vec![],
        seed_nodes: vec![],
        file_server: None,
    };
    let keys: Vec<Ed25519Keypair> = (1..=3u8)
        .map(|i| Ed25519Keypair::from_seed(&[i; 32]))
        .collect();
    for (i, kp) in keys.iter().enumerate() {
        let d = dir.path().join(format!("node{i}"));
        std::fs::create_dir_all(&d)?;
        let seed = kp.seed();
        umbra_node::keyfile::load_or_create(&d.join("node.key"), || *seed)?;
    }

    // R: node 1, alone on its own thread and runtime.
    let (tx, rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let r_config = node_config(dir.path(), 1)?;
    let r_network = network.clone();
    let r_thread = std::thread::Builder::new().name("relay-r".into()).spawn(
        move || -> Result<(), BoxError> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let h = umbra_node::start(r_config, &r_network, Arc::new(SystemClock)).await?;
                let _ = tx.send((h.node.clone(), h.addr, this_task()?));
                let _ = stop_rx.await;
                h.shutdown().await;
                Ok::<(), BoxError>(())
            })
        },
    )?;
    let (r_node, r_addr, r_task) = rx.recv()?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = rt.block_on(async {
        let g = umbra_node::start(
            node_config(dir.path(), 0)?,
            &network,
            Arc::new(SystemClock),
        )
        .await?;
        let d = umbra_node::start(
            node_config(dir.path(), 2)?,
            &network,
            Arc::new(SystemClock),
        )
        .await?;
        let addrs = [g.addr, r_addr, d.addr];
        let mut records = Vec::new();
        for (kp, a) in keys.iter().zip(addrs) {
            records.push(NodeRecord::sign(kp, Ipv4Addr::LOCALHOST, a.port(), [0, 1, 0])?);
        }
        let doc = RegistryDocument::builder(1, now_ms())
            .params(PARAMS)
            .nodes(records)
            .build()?
            .signed(&registry_key);
        let bytes = doc.encode();
        g.node.offer_registry(&bytes)?;
        r_node.offer_registry(&bytes)?;
        d.node.offer_registry(&bytes)?;
        let path_node = |i: usize| -> Result<PathNode, BoxError> {
            let rec = doc.node(&keys[i].public()).ok_or("node not listed")?;
            Ok(PathNode {
                ed25519: rec.ed25519.to_bytes(),
                x25519: rec.x25519()?,
            })
        };
        let hops = [path_node(0)?, path_node(1)?];
        let dest = OnionDestination::Node {
            node: path_node(2)?,
            options: NodeRequestOptions::default(),
        };
        let info = br#"{"method":"info","params":{}}"#;
        let build = || -> Result<BuiltOnion, BoxError> {
            let random: Vec<LayerRandom> = (0..3)
                .map(|_| {
                    LayerRandom::new(
                        umbra_crypto::random_bytes::<32>(),
                        umbra_crypto::random_bytes::<24>(),
                    )
                })
                .collect();
            Ok(build_padded_onion(
                EncType::XChaCha20,
                info,
                &hops,
                &dest,
                &random,
            )?)
        };
        // One pooled connection per onion in flight, as many clients would.
        let client = NodeClient::new(ClientConfig {
            max_idle_per_node: in_flight,
            ..ClientConfig::default()
        });
        let guard = NodeAddr::new(g.addr, keys[0].public());
        for _ in 0..50 {
            let r = client.post(&guard, "/onion_req/v2", build()?.body).await?;
            if r.status != 200 {
                return Err(format!("warm-up onion answered {}", r.status).into());
            }
        }
        // Open the connections `in_flight` concurrent onions need on every link.
        for _ in 0..3 {
            let mut round = Vec::with_capacity(in_flight);
            for _ in 0..in_flight {
                let (client, body) = (client.clone(), build()?.body);
                round.push(tokio::spawn(async move {
                    client.post(&guard, "/onion_req/v2", body).await
                }));
            }
            for r in round {
                let r = r.await??;
                if r.status != 200 {
                    return Err(format!("warm-up onion answered {}", r.status).into());
                }
            }
        }
        println!("load average before  {}", loadavg());

        // Relay throughput of R against the crypto bound, in rounds: each
        // round relays a batch through R, then runs the bound on the very
        // layers R received, so both are measured within the same second or
        // two. (This VM's speed drifts by up to 1.5x between minutes: an
        // X25519 takes 56 us in one run and 85 us in the next.)
        let per_round = onions.div_ceil(rounds).max(1);
        let r_secret = keys[1].x25519_secret();
        let r_x = keys[1].public().to_x25519()?;
        let g_secret = keys[0].x25519_secret();
        let me = this_task()?;
        let mut ratios = Vec::with_capacity(rounds);
        let (mut ok, mut relayed, mut r_cpu, mut crypto_cpu, mut bound_layers) = (0u64, 0u64, 0f64, 0f64, 0usize);
        let mut opened = 0usize;
        let mut layer_len = 0usize;
        let t = Instant::now();
        for _ in 0..rounds {
            let batch: Vec<BuiltOnion> =
                (0..per_round).map(|_| build()).collect::<Result<_, _>>()?;
            // The layers R receives, for the crypto bound below.
            let mut r_layers = Vec::with_capacity(batch.len());
            for o in &batch {
                if let Peeled::Forward { message, .. } = peel_entry(&o.body, &g_secret)? {
                    r_layers.push((message.ephemeral_key, message.data));
                }
            }
            let queue = Arc::new(std::sync::Mutex::new(batch));
            let hops_before = r_node.metrics.onion_hops.get();
            let cpu_before = cpu_ns(&r_task)?;
            let workers: Vec<_> = (0..in_flight)
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
            // The crypto bound on the same layers, on this thread, while R
            // relays them: both are timed under the same machine speed. The
            // layers are opened over and over until the round ends.
            let c0 = cpu_ns(&me)?;
            let mut bound_opened = 0usize;
            for (e, data) in r_layers.iter().cycle() {
                if bound_opened >= r_layers.len() && workers.iter().all(|w| w.is_finished()) {
                    break;
                }
                let shared = r_secret.diffie_hellman(e)?;
                let key: [u8; 32] = blake2b_multi(
                    &[shared.as_bytes(), e.as_bytes(), r_x.as_bytes()],
                    32,
                    Blake2bParams::default(),
                )?
                .try_into()
                .map_err(|_| "key length")?;
                let (nonce, ct) = data.split_at(24);
                opened += umbra_crypto::aead::xchacha20_decrypt(&key, nonce, ct, b"")?.len();
                bound_opened += 1;
            }
            let round_crypto = (cpu_ns(&me)? - c0) as f64 / 1e9;
            for w in workers {
                ok += w.await?;
            }
            let round_cpu = (cpu_ns(&r_task)? - cpu_before) as f64 / 1e9;
            let round_relayed = r_node.metrics.onion_hops.get() - hops_before;
            layer_len = r_layers.first().map_or(layer_len, |(_, d)| d.len());
            ratios.push(
                (round_relayed as f64 / round_cpu) / (bound_opened as f64 / round_crypto),
            );
            relayed += round_relayed;
            r_cpu += round_cpu;
            crypto_cpu += round_crypto;
            bound_layers += bound_opened;
        }
        let wall = t.elapsed().as_secs_f64();
        let relay_rate = relayed as f64 / r_cpu;
        let crypto_rate = bound_layers as f64 / crypto_cpu;
        ratios.sort_by(f64::total_cmp);
        let median = ratios.get(ratios.len() / 2).copied().unwrap_or(0.0);

        println!(
            "onions                {ok}/{} ok in {rounds} rounds, {wall:.2} s wall, {in_flight} in flight",
            per_round * rounds
        );
        println!(
            "relay R               {relayed} layers of {layer_len} B in {r_cpu:.3} s of R's CPU: {relay_rate:.0} layers/s per core ({:.1} µs/layer)",
            1e6 / relay_rate
        );
        println!(
            "crypto bound          {bound_layers} layers ({opened} B opened) in {crypto_cpu:.3} s CPU: {crypto_rate:.0} layers/s per core ({:.1} µs/layer: X25519 + BLAKE2b-256 + XChaCha20-Poly1305)",
            1e6 / crypto_rate
        );
        println!(
            "relay / bound         {:.1} % (median of {rounds} rounds; min {:.1} %, max {:.1} %; totals {:.1} %)",
            100.0 * median,
            100.0 * ratios.first().copied().unwrap_or(0.0),
            100.0 * ratios.last().copied().unwrap_or(0.0),
            100.0 * relay_rate / crypto_rate
        );

        // Public-key work R no longer does per layer, for reference (same thread).
        let n = 2000f64;
        let per = |f: &mut dyn FnMut()| -> Result<f64, BoxError> {
            let c = cpu_ns(&me)?;
            for _ in 0..n as usize {
                f();
            }
            Ok((cpu_ns(&me)? - c) as f64 / n / 1e3)
        };
        let body = vec![7u8; layer_len];
        let now = now_ms();
        let auth = NodeRequestAuth::sign(&keys[0], "POST", PATH_ONION, 1, now, &body);
        let us_public = per(&mut || {
            std::hint::black_box(r_secret.public());
        })?;
        let us_sign = per(&mut || {
            std::hint::black_box(NodeRequestAuth::sign(
                &keys[1], "POST", PATH_ONION, 1, now, &body,
            ));
        })?;
        let us_verify = per(&mut || {
            let _ = std::hint::black_box(auth.verify("POST", PATH_ONION, &body, now));
        })?;
        let us_bound = 1e6 / crypto_rate;
        println!(
            "relay beyond bound    {:.1} µs/layer (TLS records, HTTP, syscalls, routing, registry look-up)",
            1e6 / relay_rate - us_bound
        );
        println!(
            "no longer per layer   node X25519 public re-derived {us_public:.1} µs, node request sign {us_sign:.1} µs, verify {us_verify:.1} µs"
        );
        println!("load average after   {}", loadavg());
        g.shutdown().await;
        d.shutdown().await;
        Ok::<(), BoxError>(())
    });
    let _ = stop_tx.send(());
    r_thread.join().map_err(|_| "relay thread panicked")??;
    result
}
