//! Issue 4 acceptance: path failure and repair (`onion.md` §10.3, §10.6,
//! §10.7) on an in-process devnet with one /24 per node.
//!
//! 1. The middle node of a ready path is stopped; the next request that
//!    tries that path gets `502 Next node unreachable: <hop 2>` from the
//!    guard, replaces hop 2 and succeeds on its retry within the call's
//!    deadline.
//! 2. A burst of concurrent requests right after the failure: every one
//!    ends in success or a typed error before its deadline (none hangs,
//!    none is lost).
//! 3. The broken path is rebuilt (no ready path keeps the dead node).
//! 4. With every guard stopped, the call fails in time with a typed error
//!    naming the guard.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use umbra_client::api::{Api, ApiError};
use umbra_client::net::{FailedAt, NetError, Network};
use umbra_devnet::{Devnet, DevnetOptions};
use umbra_proto::identity::AccountKeys;
use umbra_proto::path::PathConfig;
use umbra_proto::rpc::Namespace;
use umbra_proto::rpc::sign::Signer;
use umbra_transport::SystemClock;

const DEADLINE: Duration = Duration::from_secs(10);

fn index_of(devnet: &Devnet, key: &[u8; 32]) -> usize {
    (0..devnet.len())
        .find(|&i| devnet.node_addr(i).key.as_bytes() == key)
        .unwrap()
}

async fn hop2s(net: &Network) -> Vec<[u8; 32]> {
    net.paths()
        .await
        .iter()
        .map(|p| p[1].ed25519.to_bytes())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_middle_node_fails_over_and_is_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let mut devnet = Devnet::up(DevnetOptions {
        distinct_ips: true,
        ..DevnetOptions::in_process(10, dir.path())
    })
    .await
    .unwrap();
    let net = Arc::new(
        Network::new(
            devnet.network().clone(),
            PathConfig::default().with_min_usable_nodes(4),
            None,
            None,
            Arc::new(SystemClock),
        )
        .unwrap()
        .with_request_timeout(Duration::from_secs(8)),
    );
    net.record_requests(true);
    let api = Api::new(&net).with_timeout(DEADLINE);
    let keys = AccountKeys::from_seed(&[0x42; 32]);
    let a = keys.account_id();

    // Both paths ready.
    for _ in 0..50 {
        if net.paths().await.len() == 2 {
            break;
        }
        api.get_swarm(&a).await.unwrap();
    }
    let paths = net.paths().await;
    assert_eq!(paths.len(), 2, "two ready paths");
    let p = paths[0].clone();
    let (guard, h2) = (p[0].ed25519.to_bytes(), p[1].ed25519.to_bytes());

    // 1. Stop hop 2 of path P.
    devnet.stop_node(index_of(&devnet, &h2)).await;
    let mut tried_p = false;
    for n in 0..40 {
        let before = net.sent_requests().len();
        let t = Instant::now();
        let data = format!("after the failure {n}");
        let r = api
            .send_to_swarm(&a, None, Namespace(0), data.as_bytes(), 60_000)
            .await;
        let elapsed = t.elapsed();
        let r = r.unwrap_or_else(|e| panic!("request {n} failed: {e}"));
        assert!(elapsed < DEADLINE);
        assert!(
            !r.route.contains(&h2),
            "the reply did not pass the dead node"
        );
        let sent = net.sent_requests();
        let onions: Vec<_> = sent[before..]
            .iter()
            .filter(|s| s.method.is_none())
            .collect();
        if onions.len() > 1 && onions[0].to == guard {
            // The first try went into P, hit the dead hop 2 (its guard
            // answered `502 Next node unreachable: <hop 2>`); the client
            // replaced hop 2 in P and the retry succeeded.
            assert!(!hop2s(&net).await.contains(&h2), "P was repaired at once");
            eprintln!(
                "request {n}: P failed at hop 2, repaired, retried on the path of guard {}…, succeeded in {elapsed:?}",
                hex::encode(&r.route[0][..4])
            );
            tried_p = true;
            break;
        }
    }
    assert!(tried_p, "no request tried the broken path");

    // 2. A burst right away: each ends, in success or a typed error.
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let net = net.clone();
            let keys = keys.clone();
            tokio::spawn(async move {
                let api = Api::new(&net).with_timeout(DEADLINE);
                let a = keys.account_id();
                let call = async {
                    if i % 2 == 0 {
                        let d = format!("burst {i}");
                        api.send_to_swarm(&a, None, Namespace(0), d.as_bytes(), 60_000)
                            .await
                            .map(|_| ())
                    } else {
                        api.retrieve(&a, Some(&Signer::Account(&keys)), Namespace(0), None)
                            .await
                            .map(|_| ())
                    }
                };
                tokio::time::timeout(DEADLINE + Duration::from_secs(5), call).await
            })
        })
        .collect();
    let burst_start = Instant::now();
    let (mut ok, mut typed) = (0, Vec::new());
    for t in tasks {
        match t.await.expect("no task panicked") {
            Err(_) => panic!("a request outlived its deadline"),
            Ok(Ok(())) => ok += 1,
            Ok(Err(e)) => typed.push(e.to_string()),
        }
    }
    eprintln!(
        "burst: {ok} ok, {} typed errors {typed:?} in {:?}",
        typed.len(),
        burst_start.elapsed()
    );
    assert_eq!(ok + typed.len(), 24);
    assert!(ok >= 20, "{ok} of 24 succeeded: {typed:?}");

    // 3. No ready path keeps the dead node, and requests keep succeeding
    // (a dead destination is avoided too: the relay names it).
    assert!(
        net.paths()
            .await
            .iter()
            .all(|p| p.iter().all(|n| n.ed25519.to_bytes() != h2)),
        "no ready path keeps the dead node"
    );
    for _ in 0..10 {
        let page = api
            .retrieve(&a, Some(&Signer::Account(&keys)), Namespace(0), None)
            .await
            .unwrap();
        assert!(!page.route.contains(&h2));
    }

    // 4. Both guards stopped: a typed error naming the guard, in time.
    let guards: Vec<[u8; 32]> = net
        .paths()
        .await
        .iter()
        .map(|p| p[0].ed25519.to_bytes())
        .collect();
    assert!(!guards.is_empty());
    for k in &guards {
        devnet.stop_node(index_of(&devnet, k)).await;
    }
    let t = Instant::now();
    let err = api
        .send_to_swarm(&a, None, Namespace(0), b"nowhere to go", 60_000)
        .await
        .expect_err("every guard is down");
    assert!(t.elapsed() < DEADLINE + Duration::from_secs(1));
    eprintln!("typed error: {err}");
    match err {
        ApiError::Path {
            method: "store",
            source: NetError::Failed { last, .. },
        } => {
            assert_eq!(last.at, FailedAt::Guard, "{last}");
            assert_eq!(last.position(), Some(0));
            assert!(guards.contains(&last.route[0]));
        }
        other => panic!("unexpected error {other:?}"),
    }
    devnet.down().await;
}
