//! The real `umbrad` binary as a child process (`storage-rpc.md` §9.1: a
//! store is acknowledged only once committed; graceful shutdown of
//! `umbrad`): every store answered `200` before a SIGKILL is retrievable
//! after a restart, and SIGTERM lets in-flight requests finish before the
//! process exits with status 0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use serde_json::json;
use umbra_crypto::Ed25519Keypair;
use umbra_proto::network::{NetworkConfig, SwarmParamsJson};
use umbra_proto::rpc::encoding::Ed25519Hex;
use umbra_proto::swarm::{NodeRecord, RegistryDocument, SwarmParams};
use umbra_transport::{NodeAddr, NodeClient};

/// One node per swarm.
const SOLO: SwarmParams = SwarmParams {
    min_swarm_size: 1,
    excess_base: 1,
    ideal_swarm_margin: 0,
    new_swarm_size: 1,
};

/// A port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The files an `umbrad` process needs, in a temporary directory.
struct Setup {
    dir: tempfile::TempDir,
    key: Ed25519Keypair,
    port: u16,
}

impl Setup {
    /// Writes the node key, `network.json` and a signed epoch-1 registry
    /// listing this node (and `others`: `(key, port)` of listed peers).
    fn new(params: SwarmParams, others: &[(&Ed25519Keypair, u16)]) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let key =
            umbra_node::keyfile::load_or_create(&data.join("node.key"), || [0x51; 32]).unwrap();
        let registry_key = Ed25519Keypair::from_seed(&[0xEE; 32]);
        let network = NetworkConfig {
            name: "process-test".into(),
            registry_keys: vec![Ed25519Hex(registry_key.public())],
            threshold: 1,
            swarm_params: Some(SwarmParamsJson::from(params)),
            registry_urls: vec![],
            seed_nodes: vec![],
            file_server: None,
        };
        std::fs::write(dir.path().join("network.json"), network.to_json()).unwrap();
        let port = free_port();
        let mut records =
            vec![NodeRecord::sign(&key, Ipv4Addr::LOCALHOST, port, [0, 1, 0]).unwrap()];
        for (k, p) in others {
            records.push(NodeRecord::sign(k, Ipv4Addr::LOCALHOST, *p, [0, 1, 0]).unwrap());
        }
        let doc = RegistryDocument::builder(1, now_ms())
            .params(params)
            .nodes(records)
            .build()
            .unwrap()
            .signed(&registry_key);
        std::fs::write(dir.path().join("registry"), doc.encode()).unwrap();
        Setup { dir, key, port }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn addr(&self) -> NodeAddr {
        NodeAddr::new(
            SocketAddr::from((Ipv4Addr::LOCALHOST, self.port)),
            self.key.public(),
        )
    }

    fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_umbrad"));
        c.arg("--data-dir")
            .arg(self.data_dir())
            .arg("--network")
            .arg(self.dir.path().join("network.json"))
            .arg("--registry")
            .arg(self.dir.path().join("registry"))
            .arg("--log-level")
            .arg("warn");
        c
    }

    /// `umbrad --print-key` reports the key the registry lists.
    fn check_print_key(&self) {
        let out = self.command().arg("--print-key").output().unwrap();
        assert!(out.status.success());
        assert_eq!(
            String::from_utf8(out.stdout).unwrap().trim(),
            hex::encode(self.key.public().as_bytes())
        );
    }

    /// Starts `umbrad` and waits for its "listening" line (retrying while
    /// the port is still held by a killed predecessor).
    fn spawn(&self) -> Child {
        for _ in 0..50 {
            let mut child = self
                .command()
                .arg("--listen")
                .arg(format!("127.0.0.1:{}", self.port))
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut line = String::new();
            let mut out = BufReader::new(child.stdout.take().unwrap());
            out.read_line(&mut line).unwrap();
            if line.starts_with("umbrad listening on") {
                // Keep draining stdout so the child never blocks on it.
                std::thread::spawn(move || {
                    let mut sink = String::new();
                    while out.read_line(&mut sink).is_ok_and(|n| n > 0) {
                        sink.clear();
                    }
                });
                return child;
            }
            let _ = child.wait();
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("umbrad did not start");
    }
}

/// `kill -TERM pid` (the test has no libc dependency).
fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

async fn rpc(client: &NodeClient, addr: &NodeAddr, body: &serde_json::Value) -> Option<u16> {
    let resp = client
        .post(addr, "/storage_rpc/v1", serde_json::to_vec(body).unwrap())
        .await
        .ok()?;
    Some(resp.status.as_u16())
}

/// Every message of namespace 0 of `keys` that the node returns.
async fn retrieve_all(
    client: &NodeClient,
    addr: &NodeAddr,
    keys: &umbra_proto::identity::AccountKeys,
) -> BTreeSet<Vec<u8>> {
    let mut out = BTreeSet::new();
    let mut last: Option<String> = None;
    loop {
        let mut req = retrieve_req(keys, now_ms());
        if let Some(h) = &last {
            req["params"]["last_hash"] = json!(h);
        }
        let (status, body) = rpc_to(client, addr, &req).await;
        assert_eq!(status, 200, "{body}");
        out.extend(retrieved_data(&body));
        let msgs = body["messages"].as_array().unwrap();
        if body["more"] != json!(true) || msgs.is_empty() {
            return out;
        }
        last = Some(msgs.last().unwrap()["hash"].as_str().unwrap().to_string());
    }
}

const ACKS_BEFORE_KILL: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_stores_survive_sigkill() {
    let setup = Setup::new(SOLO, &[]);
    setup.check_print_key();
    let mut child = setup.spawn();
    let addr = setup.addr();
    let client = NodeClient::default();
    let accounts: Vec<_> = (70..74u8).map(account).collect();

    // 32 writers store distinct 1 KiB messages until told to stop; each
    // records what was acknowledged with 200.
    let acked = Arc::new(std::sync::Mutex::new(Vec::<(usize, Vec<u8>)>::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..32usize)
        .map(|w| {
            let (client, addr, acked, count) = (client.clone(), addr, acked.clone(), count.clone());
            let ids: Vec<_> = accounts.iter().map(|a| a.account_id()).collect();
            tokio::spawn(async move {
                let mut n = 0usize;
                loop {
                    let a = (w + n) % ids.len();
                    let mut data = format!("writer {w} message {n} ").into_bytes();
                    data.resize(1024, b'.');
                    match rpc(
                        &client,
                        &addr,
                        &store_req(&ids[a], &data, now_ms(), 600_000),
                    )
                    .await
                    {
                        Some(200) => {
                            acked.lock().unwrap().push((a, data));
                            count.fetch_add(1, Ordering::Relaxed);
                        }
                        Some(other) => panic!("store answered {other}"),
                        // The process is gone: in doubt, not acknowledged.
                        None => return,
                    }
                    n += 1;
                }
            })
        })
        .collect();

    assert!(
        eventually(Duration::from_secs(30), || async {
            count.load(Ordering::Relaxed) >= ACKS_BEFORE_KILL
        })
        .await,
        "only {} stores acknowledged",
        count.load(Ordering::Relaxed)
    );
    child.kill().unwrap(); // SIGKILL, mid-stream
    child.wait().unwrap();
    for w in writers {
        w.await.unwrap();
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(acked.len() >= ACKS_BEFORE_KILL);

    let mut child = setup.spawn();
    let client = NodeClient::default();
    for (a, keys) in accounts.iter().enumerate() {
        let held = retrieve_all(&client, &addr, keys).await;
        let want: Vec<_> = acked.iter().filter(|(x, _)| *x == a).collect();
        let missing = want.iter().filter(|(_, d)| !held.contains(d)).count();
        assert_eq!(
            missing,
            0,
            "{missing} of {} acknowledged stores of account {a} lost",
            want.len()
        );
    }
    sigterm(&child);
    assert!(child.wait().unwrap().success());
}

/// A TCP listener that accepts connections and never answers: a listed
/// swarm peer that hangs, so a fan-out to it waits its full 5 s timeout.
async fn hanging_peer() -> (u16, Arc<AtomicUsize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let a = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            a.fetch_add(1, Ordering::Relaxed);
            held.push(s);
        }
    });
    (port, accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_requests_finish_then_exits_0() {
    let peer_key = Ed25519Keypair::from_seed(&[0x77; 32]);
    let (peer_port, accepted) = hanging_peer().await;
    // Two nodes in one swarm: this one and the hanging peer.
    let setup = Setup::new(PARAMS, &[(&peer_key, peer_port)]);
    let mut child = setup.spawn();
    let addr = setup.addr();
    let client = NodeClient::default();
    let bob = account(75);
    // Once ready, the node pulls what it missed from its swarm peer
    // (`pull_on_start`): the peer's first connection, which hangs. Only a
    // connection after that one can be the store's fan-out (counting from
    // zero let SIGTERM race the store's arrival).
    assert!(
        eventually(Duration::from_secs(10), || async {
            accepted.load(Ordering::Relaxed) > 0
        })
        .await,
        "the node never pulled from its peer"
    );
    let before = accepted.load(Ordering::Relaxed);

    let (c, a) = (client.clone(), addr);
    let id = bob.account_id();
    let started = std::time::Instant::now();
    let in_flight = tokio::spawn(async move {
        rpc_to(&c, &a, &store_req(&id, b"in flight", now_ms(), 600_000)).await
    });
    // The store is in flight once the node is fanning it out to the peer.
    assert!(
        eventually(Duration::from_secs(5), || async {
            accepted.load(Ordering::Relaxed) > before
        })
        .await
    );
    sigterm(&child);
    // The listener closes: new connections are refused.
    let port = setup.port;
    assert!(
        eventually(Duration::from_secs(3), || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err()
        })
        .await,
        "still accepting after SIGTERM"
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "exited before the in-flight request finished"
    );
    let (status, body) = in_flight.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "did not wait for the peer"
    );
    let me = hex::encode(setup.key.public().as_bytes());
    let peer = hex::encode(peer_key.public().as_bytes());
    assert_eq!(
        body["swarm"][&me]["hash"].as_str().unwrap().len(),
        43,
        "{body}"
    );
    assert_eq!(
        body["swarm"][&peer],
        json!({"failed": true, "timeout": true})
    );

    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "umbrad exited with {status}");
    // What the in-flight store wrote is durable.
    let mut child = setup.spawn();
    assert_eq!(
        retrieve_all(&client, &addr, &bob).await,
        BTreeSet::from([b"in flight".to_vec()])
    );
    sigterm(&child);
    assert!(child.wait().unwrap().success());
}
