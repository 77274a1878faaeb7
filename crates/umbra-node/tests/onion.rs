//! Onion requests through real nodes (`onion.md` §3–7, §9, §11): the client
//! side is built with `umbra_proto::onion` from the registry's keys and sent
//! to the guard's `/onion_req/v2` like an Umbra client would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use umbra_crypto::{Ed25519Keypair, X25519Secret};
use umbra_node::onion::{self, Endpoint, Observation, OnionConfig, Role};
use umbra_proto::onion::{
    BUCKETS, BuiltOnion, EncType, LayerKey, LayerRandom, NodeRequestOptions, OnionDestination,
    PathNode, Protocol, ReplyOutcome, ServerTarget, V4Request, V4Response, build_onion,
    build_padded_onion, frame, open_node_reply, open_server_reply, open_server_request,
    seal_server_reply, unframe,
};
use umbra_proto::rpc::node_req::{NodeRequestAuth, PATH_ONION};
use umbra_transport::{ClientConfig, ClientIdentity, NodeAddr, NodeClient, Request};

const ENTRY: &str = "/onion_req/v2";

/// A hop as a client sees it: the registry's Ed25519 key and its Montgomery
/// form.
fn path_node(net: &TestNet, i: usize) -> PathNode {
    let rec = net.doc().node(&net.keys[i].public()).expect("listed node");
    PathNode {
        ed25519: rec.ed25519.to_bytes(),
        x25519: rec.x25519().expect("x25519"),
    }
}

fn randoms(n: usize) -> Vec<LayerRandom> {
    (0..n)
        .map(|_| {
            LayerRandom::new(
                umbra_crypto::random_bytes::<32>(),
                umbra_crypto::random_bytes::<24>(),
            )
        })
        .collect()
}

fn to_node(net: &TestNet, dest: usize, options: NodeRequestOptions) -> OnionDestination {
    OnionDestination::Node {
        node: path_node(net, dest),
        options,
    }
}

/// A padded onion through `hops` (node indices) to node `dest`.
fn onion_to(
    net: &TestNet,
    hops: &[usize],
    dest: usize,
    request: &Value,
    enc: EncType,
    options: NodeRequestOptions,
) -> BuiltOnion {
    let path: Vec<PathNode> = hops.iter().map(|&i| path_node(net, i)).collect();
    build_padded_onion(
        enc,
        &serde_json::to_vec(request).unwrap(),
        &path,
        &to_node(net, dest, options),
        &randoms(hops.len() + 1),
    )
    .unwrap()
}

/// A one-layer entry body for node `i` carrying `plaintext` (a container
/// written by hand).
fn one_layer(net: &TestNet, i: usize, plaintext: &[u8]) -> Vec<u8> {
    let e = X25519Secret::from_bytes(umbra_crypto::random_bytes::<32>());
    let key = LayerKey::client(EncType::XChaCha20, &e, &path_node(net, i).x25519).unwrap();
    let ct = key
        .encrypt(&umbra_crypto::random_bytes::<24>(), plaintext)
        .unwrap();
    let entry =
        json!({"ephemeral_key": hex::encode(e.public().as_bytes()), "enc_type": "xchacha20"});
    frame(&ct, &serde_json::to_vec(&entry).unwrap()).unwrap()
}

/// POSTs an onion body to node `guard`'s entry.
async fn send(net: &TestNet, guard: usize, body: Vec<u8>) -> (u16, Vec<u8>) {
    let resp = net
        .client
        .post(&net.node_addr(guard), ENTRY, body)
        .await
        .unwrap();
    (resp.status.as_u16(), resp.body.to_vec())
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Opens a destination reply; panics on anything else.
fn open(built: &BuiltOnion, status: u16, body: &[u8]) -> (u16, Value) {
    match open_node_reply(&built.reply_key, status, body) {
        ReplyOutcome::Reply(r) => (r.status, r.body),
        other => panic!("not a destination reply: {status} {other:?} {}", text(body)),
    }
}

/// `k` listed nodes other than those in `not`.
fn others(net: &TestNet, not: &[usize], k: usize) -> Vec<usize> {
    let v: Vec<usize> = (0..net.keys.len()).filter(|i| !not.contains(i)).collect();
    assert!(v.len() >= k, "need {k} more nodes");
    v[..k].to_vec()
}

fn onion_hops(net: &TestNet, i: usize) -> u64 {
    net.node(i).node.metrics.onion_hops.get()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_then_retrieve_through_three_hops() {
    let net = TestNet::start(6).await;
    let bob = account(11);
    let owners = net.owners(&bob.account_id());
    assert!(owners.len() >= 2, "{owners:?}");
    let now = now_ms();

    // store → owners[0] through three other nodes.
    let path = others(&net, &[owners[0]], 3);
    let store = store_req(&bob.account_id(), b"hello through the onion", now, 60_000);
    let built = onion_to(
        &net,
        &path,
        owners[0],
        &store,
        EncType::XChaCha20,
        NodeRequestOptions::default(),
    );
    // §9.2: the request lands exactly on a bucket.
    assert_eq!(built.body.len(), 2048);
    let hops_before = onion_hops(&net, path[0]);
    let (status, body) = send(&net, path[0], built.body.clone()).await;
    assert_eq!(status, 200, "{}", text(&body));
    // §9.3: the raw (base64: false) reply is exactly a bucket.
    assert!(
        BUCKETS.contains(&body.len()),
        "reply of {} bytes",
        body.len()
    );
    let (inner, reply) = open(&built, status, &body);
    assert_eq!(inner, 200, "{reply}");
    assert_eq!(
        reply["swarm"].as_object().unwrap().len(),
        owners.len(),
        "{reply}"
    );
    // The guard and hop 2 relayed one hop each; hop 3 relayed to the destination.
    assert_eq!(onion_hops(&net, path[0]), hops_before + 1);
    assert!(onion_hops(&net, path[1]) >= 1 && onion_hops(&net, path[2]) >= 1);

    // retrieve from another member, through another path, with AES-GCM.
    let path = others(&net, &[owners[1]], 3);
    let built = onion_to(
        &net,
        &path,
        owners[1],
        &retrieve_req(&bob, now_ms()),
        EncType::AesGcm,
        NodeRequestOptions::default(),
    );
    assert_eq!(built.body.len(), 2048);
    let (status, body) = send(&net, path[0], built.body.clone()).await;
    assert_eq!(status, 200, "{}", text(&body));
    let (inner, reply) = open(&built, status, &body);
    assert_eq!(inner, 200, "{reply}");
    assert_eq!(
        retrieved_data(&reply),
        vec![b"hello through the onion".to_vec()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_options_and_buckets() {
    let net = TestNet::start(4).await;
    let info = json!({"method": "info", "params": {}});
    for (json_opt, b64) in [(true, false), (true, true), (false, false), (false, true)] {
        let options = NodeRequestOptions {
            json: Some(json_opt),
            base64: Some(b64),
        };
        let built = onion_to(&net, &[0, 1, 2], 3, &info, EncType::XChaCha20, options);
        let (status, body) = send(&net, 0, built.body.clone()).await;
        assert_eq!(status, 200, "{}", text(&body));
        assert_eq!(body.len(), 2048, "json {json_opt} base64 {b64}");
        if b64 {
            // Exactly B base64 characters, no '=' padding.
            assert!(
                body.iter()
                    .all(|c| c.is_ascii_alphanumeric() || b"+/".contains(c))
            );
        } else {
            assert!(
                body.iter().any(|c| !c.is_ascii()),
                "raw ciphertext expected"
            );
        }
        let (inner, reply) = open(&built, status, &body);
        assert_eq!(inner, 200);
        let reply = if json_opt {
            reply
        } else {
            // json: false → the result as JSON text inside a string.
            serde_json::from_str(reply.as_str().expect("a string body")).unwrap()
        };
        assert_eq!(reply["epoch"], json!(1), "{reply}");
    }

    // A larger request lands on the next bucket, and the destination's error
    // (400 for a bad store) comes back as an inner status inside a 200.
    let now = now_ms();
    let big = store_req(&account(12).account_id(), &vec![1u8; 5000], now, 1);
    let built = onion_to(
        &net,
        &[0, 1, 2],
        3,
        &big,
        EncType::XChaCha20,
        NodeRequestOptions::default(),
    );
    assert_eq!(built.body.len(), 8192);
    let (status, body) = send(&net, 0, built.body.clone()).await;
    assert_eq!(status, 200, "{}", text(&body));
    let (inner, reply) = open(&built, status, &body);
    assert!(
        inner == 400 || inner == 421 || inner == 403,
        "{inner} {reply}"
    );
    assert!(reply.is_string(), "error texts are strings: {reply}");
}

/// Rewrites the entry JSON of a built onion.
fn with_entry_json(body: &[u8], f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Vec<u8> {
    let c = unframe(body).unwrap();
    let mut j = c.json.clone();
    f(&mut j);
    frame(c.blob, &serde_json::to_vec(&j).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_on_the_path() {
    let net = TestNet::start(4).await;
    let info = json!({"method": "info", "params": {}});
    let built = onion_to(
        &net,
        &[0, 1, 2],
        3,
        &info,
        EncType::XChaCha20,
        NodeRequestOptions::default(),
    );

    // §1: aes-cbc (and anything unknown) → 400.
    for name in ["aes-cbc", "cbc", "rot13"] {
        let body = with_entry_json(&built.body, |j| {
            j.insert("enc_type".into(), json!(name));
        });
        let (status, body) = send(&net, 0, body).await;
        assert_eq!(status, 400, "{name}: {}", text(&body));
        assert!(text(&body).contains(name), "{}", text(&body));
    }

    // A tampered guard layer → 400 "Invalid ciphertext".
    let mut tampered = built.body.clone();
    tampered[100] ^= 1;
    let (status, body) = send(&net, 0, tampered).await;
    assert_eq!((status, text(&body).as_str()), (400, "Invalid ciphertext"));

    // A layer for hop 2 encrypted to the wrong key: hop 2's plaintext 400
    // travels back through the guard unchanged.
    let mut wrong = vec![path_node(&net, 0), path_node(&net, 1), path_node(&net, 2)];
    wrong[1].x25519 = path_node(&net, 2).x25519;
    let bad = build_padded_onion(
        EncType::XChaCha20,
        &serde_json::to_vec(&info).unwrap(),
        &wrong,
        &to_node(&net, 3, NodeRequestOptions::default()),
        &randoms(4),
    )
    .unwrap();
    let (status, body) = send(&net, 0, bad.body).await;
    assert_eq!((status, text(&body).as_str()), (400, "Invalid ciphertext"));
    assert!(matches!(
        open_node_reply(&bad.reply_key, status, &body),
        ReplyOutcome::RelayError { status: 400, .. }
    ));

    // Garbage and truncated containers → 400.
    assert_eq!(send(&net, 0, b"xx".to_vec()).await.0, 400);
    assert_eq!(send(&net, 0, built.body[..1000].to_vec()).await.0, 400);

    // A next hop missing from the registry → 502 "Next node not found: <hex>".
    let stranger = Ed25519Keypair::from_seed(&[0x77; 32]);
    let mut path = vec![path_node(&net, 0), path_node(&net, 1), path_node(&net, 2)];
    path[1] = PathNode {
        ed25519: stranger.public().to_bytes(),
        x25519: stranger.x25519_public(),
    };
    let lost = build_padded_onion(
        EncType::XChaCha20,
        &serde_json::to_vec(&info).unwrap(),
        &path,
        &to_node(&net, 3, NodeRequestOptions::default()),
        &randoms(4),
    )
    .unwrap();
    let (status, body) = send(&net, 0, lost.body).await;
    assert_eq!(status, 502);
    assert_eq!(
        text(&body),
        format!(
            "Next node not found: {}",
            hex::encode(stranger.public().as_bytes())
        )
    );
    // ... and when the destination is the unknown one, hop 3 says so.
    let lost = build_padded_onion(
        EncType::XChaCha20,
        &serde_json::to_vec(&info).unwrap(),
        &[path_node(&net, 0), path_node(&net, 1), path_node(&net, 2)],
        &OnionDestination::Node {
            node: path[1],
            options: NodeRequestOptions::default(),
        },
        &randoms(4),
    )
    .unwrap();
    let (status, body) = send(&net, 0, lost.body).await;
    assert_eq!(status, 502, "{}", text(&body));
    assert!(text(&body).starts_with("Next node not found: "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_limit() {
    let net = TestNet::start(4).await;
    let info = json!({"method": "info", "params": {}});
    let built = onion_to(
        &net,
        &[0, 1, 2],
        3,
        &info,
        EncType::XChaCha20,
        NodeRequestOptions::default(),
    );
    let limit = "onion request max path length exceeded";

    // hop_no 16 at the entry: refused before decrypting.
    let body = with_entry_json(&built.body, |j| {
        j.insert("hop_no".into(), json!(16));
    });
    let (status, body) = send(&net, 0, body).await;
    assert_eq!((status, text(&body).as_str()), (400, limit));

    // hop_no 13 at the entry: the guard sends 14, hop 2 sends 15, hop 3
    // sends 16 and the destination refuses; the 400 comes back unchanged.
    let body = with_entry_json(&built.body, |j| {
        j.insert("hop_no".into(), json!(13));
    });
    let (status, body) = send(&net, 0, body).await;
    assert_eq!((status, text(&body).as_str()), (400, limit));

    // One less and it arrives (negative counts as 0).
    for start in [12, -5] {
        let body = with_entry_json(&built.body, |j| {
            j.insert("hop_no".into(), json!(start));
        });
        let (status, body) = send(&net, 0, body).await;
        assert_eq!(status, 200, "{start}: {}", text(&body));
        assert_eq!(open(&built, status, &body).0, 200);
    }
}

/// A signed `/node/v1/onion` request from node `from` to node `to`.
async fn signed_relay(
    net: &TestNet,
    from: &Ed25519Keypair,
    to: usize,
    body: Vec<u8>,
) -> (u16, String) {
    let auth = NodeRequestAuth::sign(from, "POST", PATH_ONION, 1, now_ms(), &body);
    let mut req = Request::post(PATH_ONION, Bytes::from(body)).unwrap();
    for (name, value) in auth.headers() {
        req = req.header(
            http::HeaderName::try_from(name).unwrap(),
            http::HeaderValue::try_from(value).unwrap(),
        );
    }
    let resp = net.client.send(&net.node_addr(to), req).await.unwrap();
    (resp.status.as_u16(), text(&resp.body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_endpoint_is_for_nodes_only() {
    let net = TestNet::start(4).await;
    let info = json!({"method": "info", "params": {}});
    // A relay message for node 1 (hop 2 of a path starting at node 0).
    let built = onion_to(
        &net,
        &[1, 2],
        3,
        &info,
        EncType::XChaCha20,
        NodeRequestOptions::default(),
    );
    let c = unframe(&built.body).unwrap();
    let e = hex::decode(c.json["ephemeral_key"].as_str().unwrap()).unwrap();
    let msg = umbra_proto::onion::RelayMessage {
        data: c.blob.to_vec(),
        enc_type: EncType::XChaCha20,
        ephemeral_key: umbra_crypto::X25519Public::from_slice(&e).unwrap(),
        hop_no: 2,
    };

    // No node signature → 401: a client cannot skip the guard.
    let resp = net
        .client
        .post(&net.node_addr(1), PATH_ONION, msg.encode())
        .await
        .unwrap();
    assert_eq!(resp.status.as_u16(), 401, "{}", text(&resp.body));

    // Signed by a key that is not in the registry → 401.
    let stranger = Ed25519Keypair::from_seed(&[0x78; 32]);
    let (status, body) = signed_relay(&net, &stranger, 1, msg.encode()).await;
    assert_eq!(status, 401, "{body}");

    // Signed by node 0 → relayed on, and answered by the destination.
    let (status, _) = signed_relay(&net, &net.keys[0], 1, msg.encode()).await;
    assert_eq!(status, 200);

    // Connection authentication (docs/ARCHITECTURE.md): a TLS client
    // certificate of a key that is not in the registry → 401 …
    let as_stranger = NodeClient::new(ClientConfig {
        identity: Some(ClientIdentity::new(&stranger).unwrap()),
        ..ClientConfig::default()
    });
    let resp = as_stranger
        .post(&net.node_addr(1), PATH_ONION, msg.encode())
        .await
        .unwrap();
    assert_eq!(resp.status.as_u16(), 401, "{}", text(&resp.body));
    // … and node 0's certificate, with no signed headers, is enough.
    let as_node0 = NodeClient::new(ClientConfig {
        identity: Some(ClientIdentity::new(&net.keys[0]).unwrap()),
        ..ClientConfig::default()
    });
    let resp = as_node0
        .post(&net.node_addr(1), PATH_ONION, msg.encode())
        .await
        .unwrap();
    assert_eq!(resp.status.as_u16(), 200, "{}", text(&resp.body));

    // hop_no 16 → 400 without decrypting.
    let mut over = msg.clone();
    over.hop_no = 16;
    let (status, body) = signed_relay(&net, &net.keys[0], 1, over.encode()).await;
    assert_eq!(
        (status, body.as_str()),
        (400, "onion request max path length exceeded")
    );

    // aes-cbc in a relay message → 400.
    let raw = msg.encode();
    let pos = raw.windows(11).position(|w| w == b"9:xchacha20").unwrap();
    let mut cbc_raw = raw[..pos].to_vec();
    cbc_raw.extend_from_slice(b"7:aes-cbc");
    cbc_raw.extend_from_slice(&raw[pos + 11..]);
    let (status, body) = signed_relay(&net, &net.keys[0], 1, cbc_raw).await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_without_registry_is_not_ready() {
    let mut net = TestNet::start(3).await;
    let lonely = net.add_node().await; // started, never published
    let (status, body) = send(&net, lonely, b"anything".to_vec()).await;
    assert_eq!(status, 503);
    assert_eq!(
        text(&body),
        format!(
            "Snode not ready: {}",
            hex::encode(net.keys[lonely].public().as_bytes())
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_next_hop_times_out_with_504() {
    let mut net = TestNet::start(4).await;
    // Node 1's registry address now points at a listener that accepts and
    // never answers.
    let hang = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hang_addr = hang.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = hang.accept().await {
            held.push(s);
        }
    });
    net.addrs[1] = hang_addr;
    net.publish(&[0, 1, 2, 3]).await;
    onion::set_config(
        &net.node(0).node,
        OnionConfig {
            relay_timeout: Duration::from_millis(300),
            ..OnionConfig::default()
        },
    );
    let built = onion_to(
        &net,
        &[0, 1, 2],
        3,
        &json!({"method": "info", "params": {}}),
        EncType::XChaCha20,
        NodeRequestOptions::default(),
    );
    let t = std::time::Instant::now();
    let (status, body) = send(&net, 0, built.body).await;
    assert_eq!((status, text(&body).as_str()), (504, "Request time out"));
    assert!(t.elapsed() < Duration::from_secs(5));

    // A next hop that refuses connections → 502.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    net.addrs[1] = closed.local_addr().unwrap();
    drop(closed);
    net.publish(&[0, 1, 2, 3]).await;
    let built = onion_to(
        &net,
        &[0, 1, 2],
        3,
        &json!({"method": "info", "params": {}}),
        EncType::XChaCha20,
        NodeRequestOptions::default(),
    );
    let (status, body) = send(&net, 0, built.body).await;
    assert_eq!(status, 502, "{}", text(&body));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_reuse_pooled_connections() {
    let net = TestNet::start(4).await;
    let info = json!({"method": "info", "params": {}});
    let onion = || {
        onion_to(
            &net,
            &[0, 1, 2],
            3,
            &info,
            EncType::XChaCha20,
            NodeRequestOptions::default(),
        )
    };
    for _ in 0..10 {
        let built = onion();
        let (status, body) = send(&net, 0, built.body.clone()).await;
        assert_eq!(open(&built, status, &body).0, 200);
    }
    // Then 24 onions at once: HTTP/2 carries them all on the same
    // connection of each link.
    let batch: Vec<_> = (0..24).map(|_| onion()).collect();
    let replies =
        futures::future::join_all(batch.iter().map(|built| send(&net, 0, built.body.clone())))
            .await;
    for (built, (status, body)) in batch.iter().zip(replies) {
        assert_eq!(open(built, status, &body).0, 200);
    }
    // 34 relays from the guard to hop 2 and from hop 2 to hop 3 opened one
    // connection per link, and it is still pooled: a connection per request
    // (or per request in flight) would have opened many more.
    let (guard, hop2) = (&net.node(0).node, &net.node(1).node);
    assert_eq!(onion::relay_connections_opened(guard), 1);
    assert_eq!(onion::relay_connections_opened(hop2), 1);
    assert_eq!(onion::relay_idle_connections(guard, &net.node_addr(1)), 1);
    assert_eq!(onion::relay_idle_connections(hop2, &net.node_addr(2)), 1);
    assert_eq!(onion_hops(&net, 0), 34);
}

/// POSTs `body` to `path` on `node` over a pinned TLS connection made from
/// the local address `src` (so a node sees the client as `src`). Returns the
/// status, the body and the connection's local address.
async fn post_from(
    src: IpAddr,
    node: &NodeAddr,
    path: &str,
    body: Vec<u8>,
) -> (u16, Vec<u8>, SocketAddr) {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::new(src, 0)).unwrap();
    let tcp = sock.connect(node.addr).await.unwrap();
    let local = tcp.local_addr().unwrap();
    let config = umbra_transport::tls::client_config(node.key).unwrap();
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(
            rustls::pki_types::ServerName::IpAddress(node.addr.ip().into()),
            tcp,
        )
        .await
        .unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = http::Request::post(path)
        .header(http::header::HOST, node.addr.to_string())
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, body.to_vec(), local)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_node_sees_only_its_neighbours() {
    let net = TestNet::start(4).await;
    let (guard, hop2, hop3, dest) = (0, 1, 2, 3);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Observation>();
    for i in 0..4 {
        onion::set_observer(&net.node(i).node, tx.clone());
    }
    // The client connects from 127.0.0.2; every node listens on (and
    // connects from) 127.0.0.1.
    let client_ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let marker = b"PAYLOAD-MARKER-only-the-destination-may-read-this";
    let bob = account(13);
    let store = store_req(&bob.account_id(), marker, now_ms(), 60_000);
    let built = onion_to(
        &net,
        &[guard, hop2, hop3],
        dest,
        &store,
        EncType::XChaCha20,
        NodeRequestOptions::default(),
    );
    let (status, body, client_addr) =
        post_from(client_ip, &net.node_addr(guard), ENTRY, built.body.clone()).await;
    assert_eq!(status, 200, "{}", text(&body));
    let (inner, _) = open(&built, status, &body);
    // Node 3 may or may not own bob's swarm; either way it ran the RPC.
    assert!(inner == 200 || inner == 421, "{inner}");

    let mut seen = Vec::new();
    while seen.len() < 4 {
        let o = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("four observations")
            .unwrap();
        seen.push(o);
    }
    let by = |i: usize| -> &Observation {
        seen.iter()
            .find(|o| o.node == net.keys[i].public())
            .unwrap_or_else(|| panic!("node {i} saw nothing"))
    };
    let key_hex = |i: usize| hex::encode(net.keys[i].public().as_bytes());
    let b64_marker = b64(marker);
    let payload_in = |o: &Observation| {
        contains(&o.payload_seen, marker) || contains(&o.payload_seen, b64_marker.as_bytes())
    };

    // Guard: saw the client's address; knows hop 2; not the destination, not
    // hop 3, not the payload.
    let g = by(guard);
    assert_eq!(g.endpoint, Endpoint::Entry);
    assert_eq!(g.role, Role::Forward);
    assert_eq!(g.from_addr, client_addr);
    assert_eq!(g.from_node, None);
    assert_eq!(g.next_hop, Some(net.keys[hop2].public()));
    assert!(!g.payload_seen.is_empty());
    assert!(!payload_in(g));
    assert!(!contains(&g.payload_seen, key_hex(dest).as_bytes()));
    assert!(!contains(&g.payload_seen, key_hex(hop3).as_bytes()));

    // Middle hops: neighbours only; neither the client's address nor the
    // payload.
    for (me, prev, next) in [(hop2, guard, hop3), (hop3, hop2, dest)] {
        let o = by(me);
        assert_eq!(o.endpoint, Endpoint::Relay, "node {me}");
        assert_eq!(o.role, Role::Forward);
        assert_eq!(o.from_node, Some(net.keys[prev].public()));
        assert_eq!(o.next_hop, Some(net.keys[next].public()));
        assert_ne!(o.from_addr.ip(), client_ip);
        assert_eq!(o.from_addr.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert!(!payload_in(o), "node {me} saw the payload");
        for other in [guard, hop2, hop3, dest] {
            if other != next {
                assert!(
                    !contains(&o.payload_seen, key_hex(other).as_bytes()),
                    "node {me} saw node {other}'s key"
                );
            }
        }
    }

    // Destination: the payload, and only the last hop as sender.
    let d = by(dest);
    assert_eq!(d.endpoint, Endpoint::Relay);
    assert_eq!(d.role, Role::Deliver);
    assert!(payload_in(d));
    assert_eq!(d.from_node, Some(net.keys[hop3].public()));
    assert_ne!(d.from_addr.ip(), client_ip);
    assert_ne!(d.from_addr, client_addr);
    for other in [guard, hop2] {
        assert!(!contains(&d.payload_seen, key_hex(other).as_bytes()));
    }
    for i in 0..4 {
        onion::clear_observer(&net.node(i).node);
    }
}

/// A v4 lsrpc server on 127.0.0.1 (plain HTTP) that answers every request
/// with `{"code":200}` and the echoed body, padded.
async fn v4_server(secret: X25519Secret) -> SocketAddr {
    use axum::routing::post;
    let secret = std::sync::Arc::new(secret);
    let app = axum::Router::new().route(
        "/oxen/v4/lsrpc",
        post(move |body: Bytes| {
            let secret = secret.clone();
            async move {
                let (req, key) = open_server_request(&body, &secret).unwrap();
                let resp = V4Response {
                    code: 200,
                    headers: Default::default(),
                    body: format!(
                        "{} {}",
                        req.endpoint,
                        text(req.body.as_deref().unwrap_or_default())
                    )
                    .into_bytes(),
                };
                seal_server_reply(&key, &resp, true, &umbra_crypto::random_bytes::<24>()).unwrap()
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_to_a_v4_server() {
    let net = TestNet::start(3).await;
    let server_secret = X25519Secret::from_bytes([0x55; 32]);
    let server_pub = server_secret.public();
    let addr = v4_server(server_secret).await;
    let target = |port: u16, target: &str| {
        OnionDestination::Server(ServerTarget {
            host: "127.0.0.1".into(),
            target: target.into(),
            protocol: Protocol::Http,
            port,
            x25519: server_pub,
        })
    };
    let v4 = V4Request {
        method: "POST".into(),
        endpoint: "/file".into(),
        headers: Default::default(),
        body: Some(b"some bytes".to_vec()),
    }
    .encode()
    .unwrap();
    let path = [path_node(&net, 0), path_node(&net, 1), path_node(&net, 2)];
    let build = |dest: &OnionDestination| {
        build_padded_onion(EncType::XChaCha20, &v4, &path, dest, &randoms(4)).unwrap()
    };

    // Loopback is refused without an exemption: 400 "Invalid url".
    let built = build(&target(addr.port(), "/oxen/v4/lsrpc"));
    let (status, body) = send(&net, 0, built.body).await;
    assert_eq!((status, text(&body).as_str()), (400, "Invalid url"));

    // Exempted on hop 3: the server answers through the path.
    onion::set_config(
        &net.node(2).node,
        OnionConfig {
            proxy_exempt: vec![addr.ip()],
            ..OnionConfig::default()
        },
    );
    let built = build(&target(addr.port(), "/oxen/v4/lsrpc"));
    assert!(BUCKETS.contains(&built.body.len()));
    let (status, body) = send(&net, 0, built.body.clone()).await;
    assert_eq!(status, 200, "{}", text(&body));
    assert!(BUCKETS.contains(&body.len()), "padded server reply");
    match open_server_reply(&built.reply_key, status, &body) {
        ReplyOutcome::Reply(r) => {
            assert_eq!(r.code, 200);
            assert_eq!(r.body, b"/file some bytes");
        }
        other => panic!("{other:?}"),
    }

    // A bad target or protocol in hop 3's route → 400 "Invalid url" (the
    // client library refuses to build these, so hand-write a one-layer onion).
    for route in [
        json!({"host": "127.0.0.1", "target": "/oxen/v4/lsrpc?x=1", "protocol": "http", "port": addr.port()}),
        json!({"host": "127.0.0.1", "target": "/admin/lsrpc", "protocol": "http", "port": addr.port()}),
        json!({"host": "127.0.0.1", "target": "/oxen/v4/lsrpc", "protocol": "ftp", "port": addr.port()}),
        json!({"host": "localhost", "target": "/oxen/v4/lsrpc", "protocol": "http", "port": addr.port()}),
    ] {
        let layer = frame(b"blob", &serde_json::to_vec(&route).unwrap()).unwrap();
        let (status, body) = send(&net, 2, one_layer(&net, 2, &layer)).await;
        assert_eq!(
            (status, text(&body).as_str()),
            (400, "Invalid url"),
            "{route}"
        );
    }

    // Nothing listening → 502; the server over https with an untrusted
    // certificate (a node's own port) → 502.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let (status, _) = send(&net, 0, build(&target(closed_port, "/oxen/v4/lsrpc")).body).await;
    assert_eq!(status, 502);
    let https = OnionDestination::Server(ServerTarget {
        host: "127.0.0.1".into(),
        target: "/oxen/v4/lsrpc".into(),
        protocol: Protocol::Https,
        port: net.addrs[0].port(),
        x25519: server_pub,
    });
    let (status, body) = send(&net, 0, build(&https).body).await;
    assert_eq!(status, 502, "{}", text(&body));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpadded_and_short_onions_still_work() {
    // Session clients do not pad; one-hop and two-hop onions are valid too.
    let net = TestNet::start(3).await;
    let info = serde_json::to_vec(&json!({"method": "info", "params": {}})).unwrap();
    for hops in [vec![0], vec![0, 1]] {
        let path: Vec<PathNode> = hops.iter().map(|&i| path_node(&net, i)).collect();
        let built = build_onion(
            EncType::AesGcm,
            &info,
            &path,
            &to_node(&net, 2, NodeRequestOptions::bare()),
            &randoms(hops.len() + 1),
            None,
        )
        .unwrap();
        let (status, body) = send(&net, 0, built.body.clone()).await;
        assert_eq!(status, 200, "{}", text(&body));
        // Defaults: json false, base64 true.
        let (inner, reply) = open(&built, status, &body);
        assert_eq!(inner, 200);
        assert!(reply.is_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entry_is_rate_limited_per_ip() {
    let dir = tempfile::tempdir().unwrap();
    let net = TestNet::start(1).await;
    let config = umbra_node::NodeConfig {
        data_dir: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        rate_limit_burst: 2,
        rate_limit_per_sec: 1,
        ..umbra_node::NodeConfig::default()
    };
    let h = umbra_node::start(
        config,
        &net.network,
        std::sync::Arc::new(umbra_transport::SystemClock),
    )
    .await
    .unwrap();
    let addr = NodeAddr::new(h.addr, h.public());
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let r = net.client.post(&addr, ENTRY, b"x".to_vec()).await.unwrap();
        statuses.push(r.status.as_u16());
    }
    // Two within the burst (refused for lack of a registry), then 429.
    assert_eq!(statuses, vec![503, 503, 429]);
    // Another source address has its own bucket.
    let (status, _, _) = post_from(
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)),
        &addr,
        ENTRY,
        b"x".to_vec(),
    )
    .await;
    assert_eq!(status, 503);
    h.shutdown().await;
}
