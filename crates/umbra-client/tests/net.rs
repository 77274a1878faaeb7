//! The client's onion network layer against an in-process devnet: guard
//! tests, path building, storage requests through 3 hops, 421 handling.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde_json::json;
use umbra_client::net::Network;
use umbra_devnet::{Devnet, DevnetOptions};
use umbra_proto::identity::AccountKeys;
use umbra_proto::path::PathConfig;
use umbra_transport::SystemClock;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_and_retrieve_through_onion_paths() {
    let dir = tempfile::tempdir().unwrap();
    let net = Devnet::up(DevnetOptions::in_process(8, dir.path()))
        .await
        .unwrap();
    let client = Network::new(
        net.network().clone(),
        PathConfig::default().with_min_usable_nodes(4),
        None,
        None,
        Arc::new(SystemClock),
    )
    .unwrap();
    client.ensure_ready(Duration::from_secs(30)).await.unwrap();
    assert!(
        client.registry().await.is_some(),
        "bootstrapped from the seed nodes"
    );

    let bob = AccountKeys::from_seed(&[9; 32]);
    let now = client.network_now().await;
    let data = base64::engine::general_purpose::STANDARD.encode(b"through the onion");
    let reply = client
        .storage_request(
            &bob.account_id(),
            "store",
            json!({"pubkey": bob.account_id().to_string(), "timestamp": now, "ttl": 60_000, "data": data}),
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.route.len(), 4, "guard, two hops and the destination");
    let distinct: std::collections::BTreeSet<_> = reply.route.iter().collect();
    assert_eq!(distinct.len(), 4, "four distinct nodes");
    let members: Vec<[u8; 32]> = net
        .registry()
        .members_for(&bob.account_id())
        .iter()
        .map(|r| r.ed25519.to_bytes())
        .collect();
    assert!(
        members.contains(&reply.route[3]),
        "the destination is a member of bob's swarm"
    );

    let ts = client.network_now().await;
    let sig = bob.ed25519().sign(format!("retrieve{ts}").as_bytes());
    let reply = client
        .storage_request(
            &bob.account_id(),
            "retrieve",
            json!({
                "pubkey": bob.account_id().to_string(),
                "pubkey_ed25519": hex::encode(bob.ed25519_public().as_bytes()),
                "timestamp": ts,
                "signature": base64::engine::general_purpose::STANDARD.encode(sig),
            }),
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["messages"][0]["data"], json!(data));

    // An inner error comes back as a reply, not a transport failure.
    let reply = client
        .storage_request(
            &bob.account_id(),
            "retrieve",
            json!({"pubkey": bob.account_id().to_string()}),
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 401);
    net.down().await;
}
