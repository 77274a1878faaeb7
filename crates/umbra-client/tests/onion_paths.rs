//! Issue 4 acceptance, end to end on an in-process devnet whose nodes each
//! sit in their own /24 (`onion.md` §5, §10): the typed API of
//! `umbra_client::api` stores for account A through one 3-hop path and
//! retrieves through a different one, and the client never sends a direct
//! request to any node of A's swarm.
//!
//! How "no direct request" is measured: every byte the client sends goes
//! through the one transport client inside [`Network`]; with
//! [`Network::record_requests`] on, each send is logged with its target
//! node, endpoint and (for direct requests) RPC method. Node-side request
//! counters cannot tell an onion-delivered `store` from a direct one, so
//! the client-side log is the sound place to count. The client's seed
//! nodes and persisted guards are chosen outside A's swarm, so the expected direct requests (bootstrap
//! `get_registry` to seeds, `info` guard tests) can never land on A's
//! swarm; any request that does is a leak.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use umbra_client::api::Api;
use umbra_client::net::Network;
use umbra_devnet::{Devnet, DevnetOptions};
use umbra_proto::identity::AccountKeys;
use umbra_proto::network::SeedNode;
use umbra_proto::path::{GuardState, PathConfig, SavedGuard};
use umbra_proto::rpc::Namespace;
use umbra_proto::rpc::encoding::Ed25519Hex;
use umbra_proto::rpc::sign::{ExpireMode, Signer};
use umbra_transport::{Clock, SystemClock};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_and_retrieve_via_different_paths_without_direct_contact() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::up(DevnetOptions {
        distinct_ips: true,
        ..DevnetOptions::in_process(12, dir.path())
    })
    .await
    .unwrap();
    let reg = devnet.registry();
    assert!(
        reg.swarm_ids().len() >= 3,
        "{} swarms",
        reg.swarm_ids().len()
    );

    // Account A, and seed nodes outside A's swarm: the devnet's own seeds
    // are its first three (random) nodes, which may sit in every swarm, so
    // the client gets seeds of its own. Bootstrapping then never contacts a
    // member of A's swarm directly.
    let keys = AccountKeys::from_seed(&[1; 32]);
    let swarm: BTreeSet<[u8; 32]> = reg
        .members_for(&keys.account_id())
        .iter()
        .map(|r| r.ed25519.to_bytes())
        .collect();
    let a = keys.account_id();
    assert!(swarm.len() >= 3);
    let outside: Vec<_> = reg
        .nodes()
        .iter()
        .filter(|r| !swarm.contains(&r.ed25519.to_bytes()))
        .cloned()
        .collect();
    let mut network = devnet.network().clone();
    network.seed_nodes = outside
        .iter()
        .take(3)
        .map(|r| SeedNode {
            ip: r.ipv4,
            port_https: r.https_port,
            pubkey_ed25519: Ed25519Hex(r.ed25519),
        })
        .collect();
    let seeds: BTreeSet<[u8; 32]> = network
        .seed_nodes
        .iter()
        .map(|s| s.pubkey_ed25519.0.to_bytes())
        .collect();

    // Persisted guards outside A's swarm (and not seeds).
    let now = SystemClock.now_ms();
    let guards: Vec<SavedGuard> = outside
        .iter()
        .filter(|r| !seeds.contains(&r.ed25519.to_bytes()))
        .take(2)
        .map(|r| SavedGuard {
            ed25519: r.ed25519,
            added_ms: now,
        })
        .collect();
    assert_eq!(guards.len(), 2);
    let guard_keys: BTreeSet<[u8; 32]> = guards.iter().map(|g| g.ed25519.to_bytes()).collect();
    let net = Network::new(
        network,
        PathConfig::default(),
        Some(&GuardState::new(guards).unwrap()),
        None,
        Arc::new(SystemClock),
    )
    .unwrap();
    net.record_requests(true);
    let api = Api::new(&net).with_timeout(Duration::from_secs(30));
    let signer = Signer::Account(&keys);

    // Store through one path.
    let data = b"through three hops".to_vec();
    let stored = api
        .send_to_swarm(&a, None, Namespace(0), &data, 120_000)
        .await
        .unwrap();
    assert_eq!(stored.route.len(), 4);
    assert!(swarm.contains(&stored.route[3]), "destination in A's swarm");
    assert!(
        stored.accepted_by.len() >= 2,
        "{} members confirmed: {:?}",
        stored.accepted_by.len(),
        stored.failures
    );
    for k in &stored.accepted_by {
        assert!(swarm.contains(&k.to_bytes()));
    }
    // A private namespace needs the account's signature; it is accepted.
    let private = api
        .send_to_swarm(&a, Some(&signer), Namespace(42), b"private", 120_000)
        .await
        .unwrap();
    assert!(!private.accepted_by.is_empty());
    // Without a signer the API refuses before sending.
    assert!(matches!(
        api.send_to_swarm(&a, None, Namespace(42), b"x", 120_000)
            .await,
        Err(umbra_client::api::ApiError::Invalid(_))
    ));

    // Retrieve through a different path (the client picks paths at random
    // among its two; ask until one differs).
    let mut page = None;
    for _ in 0..40 {
        let p = api
            .retrieve(&a, Some(&signer), Namespace(0), None)
            .await
            .unwrap();
        if p.route[..3] != stored.route[..3] {
            page = Some(p);
            break;
        }
    }
    let page = page.expect("a retrieve through the other path");
    assert_ne!(
        page.route[0], stored.route[0],
        "the other path has the other guard"
    );
    assert!(swarm.contains(&page.route[3]));
    let m = page
        .messages
        .iter()
        .find(|m| m.hash == stored.hash)
        .expect("the stored message comes back");
    assert_eq!(m.data, data);
    assert_eq!(page.rejected, 0);

    // The rest of the API, through the onion too.
    let ext = SystemClock.now_ms() + 600_000;
    let expired = api
        .expire(
            &a,
            &signer,
            std::slice::from_ref(&stored.hash),
            ext,
            ExpireMode::Extend,
        )
        .await
        .unwrap();
    assert!(!expired.confirmed_by.is_empty());
    assert!(expired.updated.contains_key(&stored.hash), "{expired:?}");
    let swarm_info = api.get_swarm(&a).await.unwrap();
    let listed: BTreeSet<[u8; 32]> = swarm_info
        .nodes
        .iter()
        .map(|n| n.pubkey_ed25519.0.to_bytes())
        .collect();
    assert_eq!(listed, swarm);
    let deleted = api
        .delete(&a, &signer, std::slice::from_ref(&stored.hash))
        .await
        .unwrap();
    assert!(deleted.deleted.contains(&stored.hash));
    assert!(!deleted.confirmed_by.is_empty());
    let after = api
        .retrieve(&a, Some(&signer), Namespace(0), None)
        .await
        .unwrap();
    assert!(after.messages.iter().all(|m| m.hash != stored.hash));
    // A bad signature is a typed refusal from the destination.
    let other = AccountKeys::from_seed(&[0xAB; 32]);
    match api
        .retrieve(&a, Some(&Signer::Account(&other)), Namespace(0), None)
        .await
    {
        Err(umbra_client::api::ApiError::Refused { method, status, .. }) => {
            assert_eq!((method, status), ("retrieve", 401));
        }
        other => panic!("expected a 401 refusal, got {other:?}"),
    }

    // What went over the wire.
    let sent = net.sent_requests();
    assert!(!sent.is_empty());
    let mut onions = 0;
    for r in &sent {
        assert!(
            !swarm.contains(&r.to),
            "a request reached A's swarm member {} directly: {r:?}",
            hex::encode(r.to)
        );
        match r.method {
            None => {
                assert_eq!(r.endpoint, "/onion_req/v2");
                assert!(guard_keys.contains(&r.to), "onions enter at a guard");
                onions += 1;
            }
            Some("info") => assert!(guard_keys.contains(&r.to), "info only tests guards"),
            Some("get_registry") => assert!(seeds.contains(&r.to), "bootstrap asks seeds"),
            Some(m) => panic!("unexpected direct request {m}"),
        }
    }
    assert!(onions >= 9, "{onions} onions sent");
    eprintln!(
        "{} swarms; A's swarm {} nodes; {} requests sent: {onions} onions to the 2 guards, {} direct (info/get_registry), none to A's swarm",
        reg.swarm_ids().len(),
        swarm.len(),
        sent.len(),
        sent.len() - onions
    );
    devnet.down().await;
}
