//! Onion relay throughput and latency on loopback (`shared/spec/onion.md`
//! §3–7): four real nodes in this process (TLS, SQLite, signed registry);
//! the client sends `info`, `store` and signed `retrieve` requests
//!
//! - directly to node D (`POST /storage_rpc/v1`), and
//! - as padded 3-hop onions guard → hop 2 → hop 3 → D (`POST /onion_req/v2`),
//!
//! one at a time, a direct request and an onion alternating, and prints the
//! round-trip p50/p99 of each and their ratio, checked against issue 4's
//! target (3-hop p50 within 4x of direct) for `store` and `retrieve`, the
//! requests a client sends through its paths. Then the onion layers relayed
//! per second with many onions in flight (summed from the nodes'
//! `onion_hops` counters). Onions and direct bodies are built before the
//! clock starts, so client-side building (and signing) is not measured.
//!
//! The load average is printed before and after (other processes on the
//! machine lengthen round trips).
//!
//! `cargo run --release -p umbra-node --example onion_bench -- [sequential] [concurrent] [in_flight]`
//! (defaults: 500 sequential requests of each kind, 4000 concurrent onions,
//! 64 in flight).

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use umbra_crypto::Ed25519Keypair;
use umbra_node::NodeConfig;
use umbra_proto::identity::AccountKeys;
use umbra_proto::network::{NetworkConfig, SwarmParamsJson};
use umbra_proto::onion::{
    BuiltOnion, EncType, IncomingLayer, LayerRandom, NodeLayerSecret, NodeRequestOptions,
    OnionDestination, PathNode, Peeled, ReplyOutcome, build_padded_onion, open_node_reply,
    peel_with,
};
use umbra_proto::rpc::encoding::Ed25519Hex;
use umbra_proto::swarm::{NodeRecord, RegistryDocument, SwarmParams};
use umbra_transport::{ClientConfig, NodeAddr, NodeClient, SystemClock};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request kind: its name, and the bodies sent directly and as onions.
type Kind = (&'static str, Vec<Vec<u8>>, Vec<Vec<u8>>);

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

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

/// Prints p50 and p99 of `samples`; returns the p50 in seconds.
fn report(name: &str, mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    println!(
        "{name:<22} n={:<5} p50={:>8.3} ms  p99={:>8.3} ms",
        samples.len(),
        percentile(&samples, 0.50).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
    );
    percentile(&samples, 0.50).as_secs_f64()
}

/// A `store` of 1 KiB to `account`'s public inbox; `(run, i)` makes the
/// message unique.
fn store_body(account: &AccountKeys, run: u32, i: u32) -> Vec<u8> {
    let mut data = format!("bench store {run} {i} ").into_bytes();
    data.resize(1024, b'.');
    serde_json::to_vec(&serde_json::json!({"method": "store", "params": {
        "pubkey": account.account_id().to_string(),
        "timestamp": now_ms(), "ttl": 3_600_000,
        "data": STANDARD.encode(data),
    }}))
    .unwrap_or_default()
}

/// The 1-, 5- and 15-minute load averages.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let sequential: usize = args.first().map_or(Ok(500), |a| a.parse())?;
    let concurrent: usize = args.get(1).map_or(Ok(4000), |a| a.parse())?;
    let in_flight: usize = args.get(2).map_or(Ok(64), |a| a.parse())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run(sequential, concurrent, in_flight))
}

async fn run(sequential: usize, concurrent: usize, in_flight: usize) -> Result<(), BoxError> {
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
    let mut nodes = Vec::new();
    let mut keys = Vec::new();
    for i in 0..4u8 {
        let data_dir = dir.path().join(format!("node{i}"));
        std::fs::create_dir_all(&data_dir)?;
        let kp = umbra_node::keyfile::load_or_create(&data_dir.join("node.key"), || [i + 1; 32])?;
        let config = NodeConfig {
            data_dir,
            listen: "127.0.0.1:0".parse()?,
            rate_limit_burst: 1_000_000,
            rate_limit_per_sec: 1_000_000,
            ..NodeConfig::default()
        };
        nodes.push(umbra_node::start(config, &network, Arc::new(SystemClock)).await?);
        keys.push(kp);
    }
    let mut records = Vec::new();
    for (h, kp) in nodes.iter().zip(&keys) {
        records.push(NodeRecord::sign(
            kp,
            Ipv4Addr::LOCALHOST,
            h.addr.port(),
            [0, 1, 0],
        )?);
    }
    let doc = RegistryDocument::builder(1, now_ms())
        .params(PARAMS)
        .nodes(records)
        .build()?
        .signed(&registry_key);
    let bytes = doc.encode();
    for h in &nodes {
        h.node.offer_registry(&bytes)?;
    }
    let addr = |i: usize| NodeAddr::new(nodes[i].addr, keys[i].public());
    let path_node = |i: usize| -> Result<PathNode, BoxError> {
        let rec = doc.node(&keys[i].public()).ok_or("node not listed")?;
        Ok(PathNode {
            ed25519: rec.ed25519.to_bytes(),
            x25519: rec.x25519()?,
        })
    };
    let hops = [path_node(0)?, path_node(1)?, path_node(2)?];
    let dest = OnionDestination::Node {
        node: path_node(3)?,
        options: NodeRequestOptions::default(),
    };
    let info = br#"{"method":"info","params":{}}"#;
    let build_for = |payload: &[u8]| -> Result<BuiltOnion, BoxError> {
        let random: Vec<LayerRandom> = (0..4)
            .map(|_| {
                LayerRandom::new(
                    umbra_crypto::random_bytes::<32>(),
                    umbra_crypto::random_bytes::<24>(),
                )
            })
            .collect();
        Ok(build_padded_onion(
            EncType::XChaCha20,
            payload,
            &hops,
            &dest,
            &random,
        )?)
    };
    let build = || build_for(info);
    // One pooled connection per onion in flight, as many clients would.
    let client = NodeClient::new(ClientConfig {
        max_idle_per_node: in_flight,
        ..ClientConfig::default()
    });
    let (guard, d) = (addr(0), addr(3));

    // Warm up every pooled connection.
    for _ in 0..20 {
        client.post(&d, "/storage_rpc/v1", &info[..]).await?;
        let o = build()?;
        client.post(&guard, "/onion_req/v2", o.body).await?;
    }

    // A client's real requests: a 1 KiB `store` to an account whose swarm
    // holds D (the first of the bench accounts that D accepts), and a signed
    // `retrieve` of at most 5 messages.
    let mut account = None;
    for i in 0..64u8 {
        let keys = AccountKeys::from_seed(&[i; 32]);
        let r = client
            .post(&d, "/storage_rpc/v1", store_body(&keys, 0, u32::MAX))
            .await?;
        if r.status == 200 {
            account = Some(keys);
            break;
        }
    }
    let account = account.ok_or("no bench account lives in D's swarm")?;
    let ts = now_ms();
    let sig = account.ed25519().sign(format!("retrieve{ts}").as_bytes());
    let retrieve = serde_json::to_vec(&serde_json::json!({"method": "retrieve", "params": {
        "pubkey": account.account_id().to_string(),
        "pubkey_ed25519": hex::encode(account.ed25519_public().as_bytes()),
        "timestamp": ts, "signature": STANDARD.encode(sig), "max_count": 5,
    }}))?;

    println!("load average before    {}", loadavg());
    let n = sequential as u32;
    let kinds: [Kind; 3] = [
        (
            "info",
            vec![info.to_vec(); sequential],
            vec![info.to_vec(); sequential],
        ),
        (
            "store",
            (0..n).map(|i| store_body(&account, 1, i)).collect(),
            (0..n).map(|i| store_body(&account, 2, i)).collect(),
        ),
        (
            "retrieve",
            vec![retrieve.clone(); sequential],
            vec![retrieve.clone(); sequential],
        ),
    ];
    // Direct requests and onions alternate, one of each at a time, so that
    // both see the same machine speed (this VM's drifts by up to 1.5x from
    // minute to minute).
    let mut ratios = Vec::new();
    let mut verdicts = Vec::new();
    let mut building = Vec::new();
    for (kind, direct_bodies, onion_bodies) in kinds {
        let mut onions: Vec<BuiltOnion> = Vec::with_capacity(sequential);
        for b in &onion_bodies {
            let t = Instant::now();
            onions.push(build_for(b)?);
            building.push(t.elapsed());
        }
        let mut direct = Vec::with_capacity(sequential);
        let mut onion = Vec::with_capacity(sequential);
        for (i, (body, o)) in direct_bodies.into_iter().zip(onions).enumerate() {
            // Bodies as shared buffers: a clone inside the clock copies nothing.
            let (body, onion_body) = (Bytes::from(body), Bytes::from(o.body));
            // Which goes first alternates too (ABBA), so that neither side
            // always follows the other.
            for onion_turn in [i % 2 == 1, i % 2 == 0] {
                if onion_turn {
                    let t = Instant::now();
                    let r = client
                        .post(&guard, "/onion_req/v2", onion_body.clone())
                        .await?;
                    onion.push(t.elapsed());
                    match open_node_reply(&o.reply_key, r.status.as_u16(), &r.body) {
                        ReplyOutcome::Reply(rep) if rep.status == 200 => {}
                        other => return Err(format!("onion {kind} reply: {other:?}").into()),
                    }
                } else {
                    let t = Instant::now();
                    let r = client.post(&d, "/storage_rpc/v1", body.clone()).await?;
                    direct.push(t.elapsed());
                    if r.status != 200 {
                        return Err(format!("direct {kind} answered {}", r.status).into());
                    }
                }
            }
        }
        let (d50, o50) = (
            report(&format!("direct {kind}"), direct),
            report(&format!("3-hop onion {kind}"), onion),
        );
        let ratio = o50 / d50;
        ratios.push(format!("{kind} {ratio:.1}x"));
        if kind != "info" {
            let verdict = if ratio <= 4.0 { "met" } else { "NOT met" };
            verdicts.push(format!("{kind} {verdict}"));
        }
    }
    println!("p50 3-hop / direct     {}", ratios.join(", "));
    // Issue 4's latency target, for the requests a client sends through its
    // paths (`info` is answered in microseconds, less than one layer's peel:
    // no 3-hop route can stay within 4x of it; see docs/PERFORMANCE.md).
    println!("target <= 4x direct    {}", verdicts.join(", "));
    // For scale: the client's own work per onion, not in the round trips
    // above (four ephemeral X25519 key pairs and agreements, padding, AEAD).
    let built_p50 = report("client builds onion", building);
    // Its bound: the four key agreements (ephemeral public key + X25519).
    let node_x25519: Vec<_> = keys.iter().map(|k| k.x25519_secret().public()).collect();
    let mut agreeing = Vec::with_capacity(sequential);
    for _ in 0..sequential {
        let t = Instant::now();
        for n in &node_x25519 {
            let e = umbra_crypto::X25519Secret::from_bytes(umbra_crypto::random_bytes::<32>());
            std::hint::black_box(e.public());
            std::hint::black_box(e.diffie_hellman(n)?);
        }
        agreeing.push(t.elapsed());
    }
    let agree_p50 = report("4 key agreements", agreeing);
    println!("build / agreements     {:.2}x", built_p50 / agree_p50);

    // The crypto on the onion's critical path alone: the four peels (one
    // X25519 + key derivation + AEAD each, node public keys cached), done
    // back to back on this thread on fresh onions of the same size.
    let secrets: Vec<NodeLayerSecret> = keys
        .iter()
        .map(|k| NodeLayerSecret::new(k.x25519_secret()))
        .collect();
    let mut floor = Vec::with_capacity(sequential);
    for o in (0..sequential)
        .map(|_| build())
        .collect::<Result<Vec<_>, _>>()?
    {
        let t = Instant::now();
        let mut layer = IncomingLayer::from_entry(&o.body)?;
        for secret in &secrets {
            match peel_with(&layer, secret)? {
                Peeled::Forward { message, .. } => {
                    layer = IncomingLayer::from_relay(&message.encode())?;
                }
                Peeled::Deliver { .. } => break,
                Peeled::Proxy { .. } => return Err("unexpected proxy layer".into()),
            }
        }
        floor.push(t.elapsed());
    }
    report("4 peels, crypto only", floor);

    // Throughput: `concurrent` onions, `in_flight` at a time.
    let hops_before: u64 = nodes.iter().map(|h| h.node.metrics.onion_hops.get()).sum();
    let onions: Vec<BuiltOnion> = (0..concurrent).map(|_| build()).collect::<Result<_, _>>()?;
    let queue = Arc::new(std::sync::Mutex::new(onions));
    let t = Instant::now();
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
    let mut ok = 0;
    for w in workers {
        ok += w.await?;
    }
    let elapsed = t.elapsed().as_secs_f64();
    let hops_after: u64 = nodes.iter().map(|h| h.node.metrics.onion_hops.get()).sum();
    let relayed = hops_after - hops_before;
    println!(
        "concurrent onions     {ok}/{concurrent} ok in {elapsed:.2} s ({:.0} onions/s, {in_flight} in flight)",
        ok as f64 / elapsed
    );
    println!(
        "layers relayed        {relayed} ({:.0} relayed layers/s; {:.0} peeled layers/s incl. the destination)",
        relayed as f64 / elapsed,
        (relayed + ok) as f64 / elapsed
    );
    println!("load average after     {}", loadavg());
    for h in nodes {
        h.shutdown().await;
    }
    Ok(())
}
