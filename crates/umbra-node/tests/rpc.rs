//! Storage RPC against real nodes: requests written from
//! `storage-rpc.md` by hand, responses checked for their documented shapes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_then_retrieve_from_another_member() {
    let net = TestNet::start(6).await;
    let bob = account(1);
    let owners = net.owners(&bob.account_id());
    assert!(owners.len() >= 2, "swarm of {owners:?}");
    let now = now_ms();
    let (status, body) = net
        .rpc(
            owners[0],
            &store_req(&bob.account_id(), b"hello bob", now, 60_000),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // §8.2: one entry per member, each signed.
    let swarm = body["swarm"].as_object().unwrap();
    assert_eq!(swarm.len(), owners.len());
    for (_, r) in swarm {
        assert_eq!(r["hash"].as_str().unwrap().len(), 43, "{r}");
        assert!(r["signature"].is_string());
        assert_eq!(r["expiry"], json!(now + 60_000));
    }
    assert!(body["t"].is_u64());

    let (status, body) = net.rpc(owners[1], &retrieve_req(&bob, now_ms())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(retrieved_data(&body), vec![b"hello bob".to_vec()]);
    // Exact documented shape: messages[{hash, timestamp, expiration, data}], more, t.
    let keys: BTreeSet<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, BTreeSet::from(["messages", "more", "t"]));
    let m = &body["messages"][0];
    let keys: BTreeSet<&str> = m.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        BTreeSet::from(["hash", "timestamp", "expiration", "data"])
    );
    assert_eq!(m["timestamp"], json!(now));
    assert_eq!(m["expiration"], json!(now + 60_000));
    assert_eq!(body["more"], json!(false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_time_ttl_and_size_errors() {
    let net = TestNet::start(4).await;
    let bob = account(2);
    let n = net.owners(&bob.account_id())[0];
    let now = now_ms();

    // Unsigned retrieve of namespace 0 → 401.
    let unsigned =
        json!({"method": "retrieve", "params": {"pubkey": bob.account_id().to_string()}});
    assert_eq!(net.rpc(n, &unsigned).await.0, 401);

    // Wrong signature (signed by another key) → 401.
    let mut wrong = retrieve_req(&bob, now);
    wrong["params"]["signature"] = json!(sig(&account(3), format!("retrieve{now}").as_bytes()));
    assert_eq!(net.rpc(n, &wrong).await.0, 401);

    // A timestamp 2 minutes old → 406.
    let (status, text) = net.rpc(n, &retrieve_req(&bob, now - 120_000)).await;
    assert_eq!(status, 406, "{text}");

    // TTL of 15 days in namespace 0 → 403.
    let (status, _) = net
        .rpc(n, &store_req(&bob.account_id(), b"x", now, 15 * 86_400_000))
        .await;
    assert_eq!(status, 403);

    // 80,000 bytes of data → 400 (over 76,800).
    let (status, _) = net
        .rpc(
            n,
            &store_req(&bob.account_id(), &vec![7u8; 80_000], now, 60_000),
        )
        .await;
    assert_eq!(status, 400);

    // Nothing was stored by the refused requests.
    let (status, body) = net.rpc(n, &retrieve_req(&bob, now_ms())).await;
    assert_eq!(status, 200);
    assert!(retrieved_data(&body).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_swarm_gets_421_with_the_right_members() {
    let net = TestNet::start(6).await;
    let bob = account(4);
    let outsider = *net
        .non_owners(&bob.account_id())
        .first()
        .expect("a node of another swarm");
    let (status, body) = net
        .rpc(
            outsider,
            &store_req(&bob.account_id(), b"x", now_ms(), 60_000),
        )
        .await;
    assert_eq!(status, 421, "{body}");
    let listed: BTreeSet<String> = body["snodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["pubkey_ed25519"].as_str().unwrap().to_string())
        .collect();
    let owners: BTreeSet<String> = net
        .owners(&bob.account_id())
        .iter()
        .map(|&i| hex::encode(net.keys[i].public().as_bytes()))
        .collect();
    assert_eq!(listed, owners);
    assert_eq!(body["swarm"].as_str().unwrap().len(), 16);
    assert_eq!(body["epoch"], json!(1));
    for s in body["snodes"].as_array().unwrap() {
        assert_eq!(s["ip"], json!("127.0.0.1"));
        assert!(s["port_https"].is_u64());
        assert_eq!(s["pubkey_x25519"].as_str().unwrap().len(), 64);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_messages_vanish_from_retrieve_and_the_file() {
    let net = TestNet::start(2).await;
    let bob = account(5);
    let n = net.owners(&bob.account_id())[0];
    let marker = b"EXPIRING-SENTINEL-0123456789-EXPIRING-SENTINEL".repeat(20);
    let now = now_ms();
    // The minimum TTL is 10 s: store with a timestamp 9.5 s in the past so
    // the message expires half a second from now.
    let (status, body) = net
        .rpc(
            n,
            &store_req(&bob.account_id(), &marker, now - 9_500, 10_000),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = net.rpc(n, &retrieve_req(&bob, now_ms())).await;
    assert_eq!(retrieved_data(&body).len(), 1);
    assert!(
        eventually(Duration::from_secs(5), || async {
            let (_, body) = net.rpc(n, &retrieve_req(&bob, now_ms())).await;
            retrieved_data(&body).is_empty()
        })
        .await,
        "expired message still returned"
    );
    // The sweep (every 200 ms here) deletes the row and scrubs its bytes.
    let dir = net.data_dir(n);
    assert!(
        eventually(Duration::from_secs(10), || async {
            let n_files = std::fs::read_dir(&dir).unwrap().flatten().filter(|f| {
                let name = f.file_name();
                let name = name.to_string_lossy();
                name.starts_with("messages.sqlite")
                    && std::fs::read(f.path())
                        .unwrap_or_default()
                        .windows(marker.len())
                        .any(|w| w == &marker[..])
            });
            n_files.count() == 0
        })
        .await,
        "expired message bytes remain in the database files"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_get_swarm_and_unknown_method() {
    let net = TestNet::start(3).await;
    let (status, body) = net.rpc(0, &json!({"method": "info", "params": {}})).await;
    assert_eq!(status, 200);
    assert_eq!(body["epoch"], json!(1));
    assert_eq!(body["version"].as_array().unwrap().len(), 3);
    assert!(body["timestamp"].is_u64() && body["t"].is_u64());
    let bob = account(6);
    let (status, body) = net
        .rpc(
            0,
            &json!({"method": "get_swarm", "params": {"pubkey": bob.account_id().to_string()}}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["snodes"].as_array().unwrap().len(),
        net.owners(&bob.account_id()).len()
    );
    assert_eq!(
        net.rpc(0, &json!({"method": "oxend_request", "params": {}}))
            .await
            .0,
        400
    );
    assert_eq!(net.rpc(0, &json!({"params": {}})).await.0, 400);
}
