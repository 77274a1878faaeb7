//! The hostile-input catalogue of `docs/SECURITY.md` (issue 10 item 4):
//! every entry sends its input to real nodes on 127.0.0.1 over real HTTPS,
//! asserts the documented response, and then checks that the node still
//! serves an honest client (a `store` and a signed `retrieve` that returns
//! it). Test names are the catalogue's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use umbra_crypto::Ed25519Keypair;
use umbra_node::NodeConfig;
use umbra_proto::identity::AccountKeys;
use umbra_proto::onion::{
    EncType, LayerRandom, NodeRequestOptions, OnionDestination, PathNode, RelayMessage,
    ReplyOutcome, build_padded_onion, frame, open_node_reply, unframe,
};
use umbra_proto::rpc::hash::message_hash;
use umbra_proto::rpc::node_req::{
    NodeRequestAuth, PATH_ONION, PATH_PUSH, PATH_SWARM, PushItem, PushTombstone,
    encode_push_with_tombstones,
};
use umbra_proto::rpc::{Namespace, NamespaceSel};
use umbra_transport::{NodeAddr, Request};

/// The catalogue sends many requests from 127.0.0.1: lift the per-IP rate
/// limit (rate limiting has its own tests in `methods.rs` and `onion.rs`).
fn generous(cfg: &mut NodeConfig) {
    cfg.rate_limit_burst = 1_000_000;
    cfg.rate_limit_per_sec = 1_000_000;
}

async fn net(n: usize) -> TestNet {
    TestNet::start_with(n, generous).await
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// POSTs raw bytes to `path` of node `i`; returns status and body text.
async fn post_raw(net: &TestNet, i: usize, path: &str, body: Vec<u8>) -> (u16, String) {
    let resp = net
        .client
        .post(&net.node_addr(i), path, body)
        .await
        .unwrap();
    (resp.status.as_u16(), text(&resp.body))
}

/// POSTs a raw storage RPC body to node `i`.
async fn rpc_raw(net: &TestNet, i: usize, body: impl Into<Vec<u8>>) -> (u16, String) {
    post_raw(net, i, "/storage_rpc/v1", body.into()).await
}

/// The node keeps serving others: a fresh honest account stores a message on
/// node `i` (which must own it) and reads it back with a signed retrieve,
/// each within `bound`.
async fn still_serves(net: &TestNet, i: usize, bound: Duration) {
    let keys = (100..=255u8)
        .map(account)
        .find(|k| net.owners(&k.account_id()).contains(&i))
        .expect("an account owned by the node");
    let data = format!("still serving {}", now_ms()).into_bytes();
    let started = Instant::now();
    let (status, body) = net
        .rpc(i, &store_req(&keys.account_id(), &data, now_ms(), 60_000))
        .await;
    assert_eq!(status, 200, "honest store after abuse: {body}");
    let (status, body) = net.rpc(i, &retrieve_req(&keys, now_ms())).await;
    assert_eq!(status, 200, "honest retrieve after abuse: {body}");
    assert!(
        retrieved_data(&body).contains(&data),
        "the honest message is retrievable"
    );
    let took = started.elapsed();
    assert!(
        took < bound,
        "honest store+retrieve took {took:?} (bound {bound:?})"
    );
}

const SERVE_BOUND: Duration = Duration::from_secs(5);

/// A store request for `keys`' own account with `params` overriding fields.
fn store_with(keys: &AccountKeys, overrides: Value) -> Value {
    let mut req = store_req(&keys.account_id(), b"payload", now_ms(), 60_000);
    for (k, v) in overrides.as_object().unwrap() {
        req["params"][k] = v.clone();
    }
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_is_400() {
    let net = net(2).await;
    let cases: [(&[u8], &str); 9] = [
        (b"", "invalid JSON"),
        (b"{", "invalid JSON"),
        (b"not json at all", "invalid JSON"),
        (b"{\"method\":\"store\",\"params\":{}", "invalid JSON"),
        (b"\xff\xfe{\"method\":\"info\"}", "invalid JSON"),
        (b"[]", "the request must be a JSON object"),
        (b"{\"params\":{}}", "method is missing"),
        (
            b"{\"method\":\"info\",\"params\":[]}",
            "params must be an object",
        ),
        (
            b"{\"method\":\"no_such_method\",\"params\":{}}",
            "no_such_method",
        ),
    ];
    for (body, why) in cases {
        let (status, reply) = rpc_raw(&net, 0, body).await;
        assert_eq!(status, 400, "{}: {reply}", text(body));
        assert!(
            reply.contains(why),
            "{}: {reply:?} lacks {why:?}",
            text(body)
        );
    }
    still_serves(&net, 0, SERVE_BOUND).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_types_are_400() {
    let net = net(2).await;
    let bob = account(2);
    let cases = [
        json!({"ttl": "60000"}),
        json!({"ttl": 60000.5}),
        json!({"ttl": null}),
        json!({"timestamp": "1700000000000"}),
        json!({"timestamp": true}),
        json!({"pubkey": 5}),
        json!({"pubkey": ["05"]}),
        json!({"data": 12345}),
        json!({"namespace": "0"}),
        json!({"namespace": {}}),
    ];
    for o in cases {
        let (status, reply) = net.rpc(0, &store_with(&bob, o.clone())).await;
        assert_eq!(status, 400, "{o}: {reply}");
    }
    // retrieve with a signature that is a number, and `messages` not a list.
    let mut r = retrieve_req(&bob, now_ms());
    r["params"]["signature"] = json!(42);
    assert_eq!(net.rpc(0, &r).await.0, 400);
    let del = json!({"method": "delete", "params": {
        "pubkey": bob.account_id().to_string(), "messages": "abc", "signature": "x"}});
    assert_eq!(net.rpc(0, &del).await.0, 400);
    still_serves(&net, 0, SERVE_BOUND).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_numbers_are_refused_without_overflow() {
    let net = net(2).await;
    let bob = account(2);
    let now = now_ms();
    // Integers beyond u64 / i16, floats in exponent form: wrong type, 400.
    for raw in [
        "18446744073709551616",
        "1e30",
        "99999999999999999999999999999999999999",
    ] {
        let body = format!(
            r#"{{"method":"store","params":{{"pubkey":"{}","timestamp":{now},"ttl":{raw},"data":"eA=="}}}}"#,
            bob.account_id()
        );
        let (status, reply) = rpc_raw(&net, 0, body).await;
        assert_eq!(status, 400, "ttl {raw}: {reply}");
    }
    // The largest u64 TTL, and the largest timestamp with a normal TTL:
    // `timestamp + ttl` does not fit in 64 bits → 400 (was a saturated
    // expiry reported as a 0 ms TTL, 403).
    for o in [json!({"ttl": u64::MAX}), json!({"timestamp": u64::MAX})] {
        let (status, reply) = net.rpc(0, &store_with(&bob, o.clone())).await;
        assert_eq!(status, 400, "{o}: {reply}");
        assert!(reply.to_string().contains("does not fit"), "{reply}");
    }
    // Explicit expiries: u64::MAX from now is a TTL out of range (403); a
    // timestamp far in the future with a 1-day TTL is a clock error (406).
    let store_expiry = |ts: u64, expiry: u64| {
        json!({"method": "store", "params": {"pubkey": bob.account_id().to_string(),
            "timestamp": ts, "expiry": expiry, "data": "eA=="}})
    };
    let (status, reply) = net.rpc(0, &store_expiry(now, u64::MAX)).await;
    assert_eq!(status, 403, "{reply}");
    let far = u64::MAX - 86_400_000;
    let (status, reply) = net.rpc(0, &store_expiry(far, far + 86_400_000)).await;
    assert_eq!(status, 406, "{reply}");
    // Namespace outside int16 → 400.
    for ns in [32768i64, -32769, i64::MAX] {
        let (status, reply) = net
            .rpc(0, &store_with(&bob, json!({"namespace": ns})))
            .await;
        assert_eq!(status, 400, "namespace {ns}: {reply}");
    }
    // retrieve limits beyond i64 are a wrong type (400); within it they are
    // clamped to the node's maxima (200).
    let mut r = retrieve_req(&bob, now_ms());
    r["params"]["max_size"] = json!(u64::MAX);
    let (status, reply) = net.rpc(0, &r).await;
    assert_eq!(status, 400, "{reply}");
    let mut r = retrieve_req(&bob, now_ms());
    r["params"]["max_size"] = json!(i64::MAX);
    r["params"]["max_count"] = json!(i64::MAX);
    let (status, reply) = net.rpc(0, &r).await;
    assert_eq!(status, 200, "{reply}");
    still_serves(&net, 0, SERVE_BOUND).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negative_ttls_and_timestamps_are_400() {
    let net = net(2).await;
    let bob = account(2);
    for o in [
        json!({"ttl": -1}),
        json!({"ttl": -60000}),
        json!({"ttl": i64::MIN}),
        json!({"timestamp": -1}),
        json!({"expiry": -5}),
    ] {
        let (status, reply) = net.rpc(0, &store_with(&bob, o.clone())).await;
        assert_eq!(status, 400, "{o}: {reply}");
    }
    // A zero or too-short TTL is in range for the parser but not the rules.
    let (status, reply) = net.rpc(0, &store_with(&bob, json!({"ttl": 0}))).await;
    assert_eq!(status, 403, "{reply}");
    // A negative expiry in `expire` (signed) is a wrong type too.
    let ts = now_ms();
    let signed = format!("expire-1{}", "x");
    let req = json!({"method": "expire", "params": {
        "pubkey": bob.account_id().to_string(),
        "pubkey_ed25519": hex::encode(bob.ed25519_public().as_bytes()),
        "messages": ["x"], "expiry": -1, "timestamp": ts,
        "signature": sig(&bob, signed.as_bytes())}});
    assert_eq!(net.rpc(0, &req).await.0, 400);
    still_serves(&net, 0, SERVE_BOUND).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_json_nesting_is_400() {
    let net = net(2).await;
    // 10,000 nested arrays inside params (fewer values than the count
    // checked before parsing): serde_json's recursion limit (128) refuses
    // it while parsing, before any allocation proportional to depth.
    let depth = 10_000;
    let mut body = br#"{"method":"info","params":{"x":"#.to_vec();
    body.extend(std::iter::repeat_n(b'[', depth));
    body.extend(std::iter::repeat_n(b']', depth));
    body.extend_from_slice(b"}}");
    let (status, reply) = rpc_raw(&net, 0, body).await;
    assert_eq!(status, 400, "{reply}");
    assert!(reply.contains("recursion limit"), "{reply}");
    // Nested objects, unbalanced.
    let body = "{\"a\":".repeat(50_000);
    assert_eq!(rpc_raw(&net, 0, body).await.0, 400);
    // A batch inside a batch inside a sequence: refused, not recursed.
    let inner =
        json!({"method": "batch", "params": {"requests": [{"method": "info", "params": {}}]}});
    let nested = json!({"method": "sequence", "params": {"requests": [
        {"method": "batch", "params": {"requests": [inner]}}]}});
    let (status, reply) = net.rpc(0, &nested).await;
    assert_eq!(status, 400, "{reply}");
    still_serves(&net, 0, SERVE_BOUND).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_base64_and_hex_are_400() {
    let net = net(2).await;
    let bob = account(2);
    for data in ["!!!!", "eA", "eA=", "e A==", "eA==eA==", "ZZZ\u{e9}"] {
        let (status, reply) = net.rpc(0, &store_with(&bob, json!({"data": data}))).await;
        assert_eq!(status, 400, "data {data:?}: {reply}");
    }
    for pk in [
        "05zz",
        "05",
        &format!("06{}", "ab".repeat(32)),
        &"05".repeat(40),
    ] {
        let (status, reply) = net.rpc(0, &store_with(&bob, json!({"pubkey": pk}))).await;
        assert_eq!(status, 400, "pubkey {pk:?}: {reply}");
    }
    // A signature that is not base64 → 400 or 401, never 200.
    let mut r = retrieve_req(&bob, now_ms());
    r["params"]["signature"] = json!("%%%%");
    let (status, reply) = net.rpc(0, &r).await;
    assert_eq!(status, 400, "{reply}");
    assert!(reply.to_string().contains("signature"), "{reply}");
    let mut r = retrieve_req(&bob, now_ms());
    r["params"]["pubkey_ed25519"] = json!("not hex");
    let (status, reply) = net.rpc(0, &r).await;
    assert_eq!(status, 400, "{reply}");
    assert!(reply.to_string().contains("Ed25519 key"), "{reply}");
    still_serves(&net, 0, SERVE_BOUND).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_bodies_are_refused() {
    let net = net(2).await;
    let bob = account(2);
    // data over 76,800 bytes → 400.
    let (status, reply) = net
        .rpc(
            0,
            &store_req(&bob.account_id(), &vec![1u8; 76_801], now_ms(), 60_000),
        )
        .await;
    assert_eq!(status, 400, "{reply}");
    // Lists over their caps: 21 subrequests, 1,001 hashes → 400.
    let info = json!({"method": "info", "params": {}});
    let batch = json!({"method": "batch", "params": {"requests": vec![info; 21]}});
    let (status, reply) = net.rpc(0, &batch).await;
    assert_eq!(status, 400, "{reply}");
    let hashes: Vec<String> = (0..1_001).map(|i| format!("{i:0>43}")).collect();
    let del = json!({"method": "delete", "params": {
        "pubkey": bob.account_id().to_string(), "messages": hashes,
        "pubkey_ed25519": hex::encode(bob.ed25519_public().as_bytes()),
        "signature": sig(&bob, b"delete")}});
    let (status, reply) = net.rpc(0, &del).await;
    assert_eq!(status, 400, "{reply}");
    // A body of small JSON values (a tree would take 40 times its size) →
    // 400 before it is parsed, even inside the size cap.
    let mut params = store_req(&bob.account_id(), b"junk", now_ms(), 60_000);
    params["params"]["junk"] = json!(vec![0u8; 200_000]);
    let (status, reply) = net.rpc(0, &params).await;
    assert_eq!(status, 400, "{reply}");
    assert!(reply.to_string().contains("JSON values"), "{reply}");
    // A recursive request padded with an unknown field is not forwarded to
    // the swarm: 413, and nothing is stored.
    let mut padded = store_req(&bob.account_id(), b"padded", now_ms(), 60_000);
    padded["params"]["junk"] = json!("x".repeat(300 * 1024));
    let (status, reply) = net.rpc(0, &padded).await;
    assert_eq!(status, 413, "{reply}");
    let (status, body) = net.rpc(1, &retrieve_req(&bob, now_ms())).await;
    assert_eq!(status, 200);
    assert!(retrieved_data(&body).is_empty(), "{body}");
    // The largest real store still goes through.
    let (status, reply) = net
        .rpc(
            0,
            &store_req(&bob.account_id(), &vec![2u8; 76_800], now_ms(), 60_000),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    // A storage RPC body over 10 MiB → 413 (before parsing).
    let big = vec![b' '; 10 * 1024 * 1024 + 1];
    let (status, _) = rpc_raw(&net, 0, big).await;
    assert_eq!(status, 413);
    // An onion entry body over the largest bucket → 413.
    let big = vec![0u8; umbra_node::onion::MAX_ONION_BODY + 1];
    let (status, _) = post_raw(&net, 0, "/onion_req/v2", big).await;
    assert_eq!(status, 413);
    // A push body over its cap (unsigned: the size check comes first) → 413.
    let big = vec![0u8; umbra_proto::rpc::node_req::MAX_PUSH_BODY + 2048];
    let (status, _) = post_raw(&net, 0, PATH_PUSH, big).await;
    assert_eq!(status, 413);
    still_serves(&net, 0, SERVE_BOUND).await;
}

/// Completes a TLS handshake with node `i` and returns the stream.
async fn tls_to(addr: &NodeAddr) -> tokio_rustls::client::TlsStream<TcpStream> {
    let cfg = umbra_transport::tls::client_config(addr.key).unwrap();
    let tcp = TcpStream::connect(addr.addr).await.unwrap();
    tokio_rustls::TlsConnector::from(cfg)
        .connect(
            rustls::pki_types::ServerName::IpAddress(addr.addr.ip().into()),
            tcp,
        )
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_do_not_starve_clients() {
    // Bodies must arrive within 4 s on these nodes (60 s by default).
    fn short_body_deadline(cfg: &mut NodeConfig) {
        generous(cfg);
        cfg.body_read_timeout_ms = 4_000;
    }
    let net = TestNet::start_with(2, short_body_deadline).await;
    let addr = net.node_addr(0);
    const EACH: usize = 64;

    // 1. TCP connections that never start TLS.
    let mut silent = Vec::new();
    for _ in 0..EACH {
        silent.push(TcpStream::connect(addr.addr).await.unwrap());
    }
    // 2. TCP connections that send half a TLS ClientHello and stall.
    let mut half_hello = Vec::new();
    for _ in 0..EACH {
        let mut s = TcpStream::connect(addr.addr).await.unwrap();
        s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
            .await
            .unwrap();
        half_hello.push(s);
    }
    // 3. TLS connections that send half a request head and stall.
    let mut half_head = Vec::new();
    for _ in 0..EACH / 2 {
        let mut s = tls_to(&addr).await;
        s.write_all(b"POST /storage_rpc/v1 HTTP/1.1\r\nhost: x\r\ncontent-le")
            .await
            .unwrap();
        s.flush().await.unwrap();
        half_head.push(s);
    }
    // 4. TLS connections that announce a 100 kB body and send 10 bytes.
    let mut slow_body = Vec::new();
    for _ in 0..EACH / 2 {
        let mut s = tls_to(&addr).await;
        s.write_all(
            b"POST /storage_rpc/v1 HTTP/1.1\r\nhost: x\r\ncontent-length: 100000\r\n\r\n{\"method\":",
        )
        .await
        .unwrap();
        s.flush().await.unwrap();
        slow_body.push(s);
    }
    // 5. One that trickles its body a byte every 250 ms (never idle, never done).
    let mut trickle = tls_to(&addr).await;
    trickle
        .write_all(b"POST /storage_rpc/v1 HTTP/1.1\r\nhost: x\r\ncontent-length: 100000\r\n\r\n")
        .await
        .unwrap();
    let trickler = tokio::spawn(async move {
        let started = Instant::now();
        while trickle.write_all(b" ").await.is_ok() && trickle.flush().await.is_ok() {
            if started.elapsed() > Duration::from_secs(30) {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Some(started.elapsed())
    });

    // An honest client is served promptly while all of them are open.
    still_serves(&net, 0, Duration::from_secs(3)).await;

    // The half-open handshakes are cut by the 10 s handshake timeout.
    let started = Instant::now();
    let mut buf = [0u8; 64];
    for s in silent.iter_mut().chain(half_hello.iter_mut()) {
        let left = Duration::from_secs(20).saturating_sub(started.elapsed());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {}
            Ok(Ok(n)) => {
                // A TLS alert may precede the close; the next read is EOF.
                assert!(n > 0);
                let again = tokio::time::timeout(left, s.read(&mut buf)).await;
                assert!(matches!(again, Ok(Ok(0)) | Ok(Err(_))), "{again:?}");
            }
            Err(_) => panic!("a stalled handshake was kept open over 20 s"),
        }
    }
    let cut_after = started.elapsed();
    assert!(cut_after < Duration::from_secs(20), "{cut_after:?}");
    // Stalled bodies are answered 408 and closed once the body deadline
    // passes (they were opened well over 4 s ago by now).
    for mut s in slow_body {
        let mut got = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), async {
            let mut chunk = [0u8; 512];
            loop {
                match s.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&chunk[..n]),
                }
            }
        })
        .await;
        assert!(read.is_ok(), "a stalled body was kept open");
        assert!(
            got.starts_with(b"HTTP/1.1 408"),
            "stalled body answered {:?}",
            text(&got)
        );
    }
    // The trickling client was cut too: its writes fail within the deadline
    // plus a margin, although it never paused for long.
    let cut = trickler
        .await
        .unwrap()
        .expect("a trickling body was kept open 30 s");
    assert!(cut < Duration::from_secs(15), "{cut:?}");
    // ... and the node is still serving.
    still_serves(&net, 0, Duration::from_secs(3)).await;
    drop(half_head);
}

/// A hop as a client sees it.
fn path_node(net: &TestNet, i: usize) -> PathNode {
    let rec = net.doc().node(&net.keys[i].public()).expect("listed node");
    PathNode {
        ed25519: rec.ed25519.to_bytes(),
        x25519: rec.x25519().expect("x25519"),
    }
}

fn randoms(n: usize) -> Vec<LayerRandom> {
    (0..n)
        .map(|k| {
            let mut a = [0x31u8; 32];
            a[0] = k as u8;
            let mut b = [0x32u8; 24];
            b[0] = k as u8;
            LayerRandom::new(a, b)
        })
        .collect()
}

/// A padded onion through `hops` (node indices) delivering `request` to `dest`.
fn onion(
    net: &TestNet,
    hops: &[usize],
    dest: usize,
    request: &Value,
) -> umbra_proto::onion::BuiltOnion {
    let path: Vec<PathNode> = hops.iter().map(|&i| path_node(net, i)).collect();
    build_padded_onion(
        EncType::XChaCha20,
        &serde_json::to_vec(request).unwrap(),
        &path,
        &OnionDestination::Node {
            node: path_node(net, dest),
            options: NodeRequestOptions::default(),
        },
        &randoms(hops.len() + 1),
    )
    .unwrap()
}

fn with_entry_json(body: &[u8], f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Vec<u8> {
    let c = unframe(body).unwrap();
    let mut j = c.json.clone();
    f(&mut j);
    frame(c.blob, &serde_json::to_vec(&j).unwrap()).unwrap()
}

const HOP_LIMIT: &str = "onion request max path length exceeded";

/// A node-signed `POST` of `body` to `path` of node `to`, signed by `from`
/// at `ts`.
async fn signed_post(
    net: &TestNet,
    from: &Ed25519Keypair,
    to: usize,
    path: &str,
    ts: u64,
    body: Vec<u8>,
) -> (u16, String) {
    let auth = NodeRequestAuth::sign(from, "POST", path, net.doc().epoch(), ts, &body);
    send_with_auth(net, to, path, &auth, body).await
}

async fn send_with_auth(
    net: &TestNet,
    to: usize,
    path: &str,
    auth: &NodeRequestAuth,
    body: Vec<u8>,
) -> (u16, String) {
    let mut req = Request::post(path, Bytes::from(body)).unwrap();
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
async fn hop_no_loops_are_cut_at_15() {
    let net = net(4).await;
    let info = json!({"method": "info", "params": {}});
    let built = onion(&net, &[0, 1, 2], 3, &info);
    // An entry claiming it is already past the limit, or absurdly far.
    for hop in [json!(16), json!(u64::MAX), json!(1e300)] {
        let body = with_entry_json(&built.body, |j| {
            j.insert("hop_no".into(), hop.clone());
        });
        let (status, reply) = post_raw(&net, 0, "/onion_req/v2", body).await;
        assert_eq!(status, 400, "hop_no {hop}: {reply}");
        if hop.is_u64() {
            assert_eq!(reply, HOP_LIMIT);
        } else {
            assert!(reply.contains("not an integer"), "{reply}");
        }
    }
    // A relay message with hop_no 16, correctly signed by a listed node.
    let c = unframe(&built.body).unwrap();
    let e = hex::decode(c.json["ephemeral_key"].as_str().unwrap()).unwrap();
    let msg = RelayMessage {
        data: c.blob.to_vec(),
        enc_type: EncType::XChaCha20,
        ephemeral_key: umbra_crypto::X25519Public::from_slice(&e).unwrap(),
        hop_no: 16,
    };
    let (status, reply) =
        signed_post(&net, &net.keys[1], 0, PATH_ONION, now_ms(), msg.encode()).await;
    assert_eq!((status, reply.as_str()), (400, HOP_LIMIT));
    for i in 0..4 {
        still_serves_any(&net, i).await;
    }
}

/// [`still_serves`] on node `i` if it owns some test account (all do with
/// these swarm sizes), through a direct request.
async fn still_serves_any(net: &TestNet, i: usize) {
    still_serves(net, i, SERVE_BOUND).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onion_layers_pointing_back_to_the_same_node() {
    let net = net(2).await;
    let info = json!({"method": "info", "params": {}});
    let hops = |net: &TestNet| net.node(0).node.metrics.onion_hops.get();

    // Three layers that all name node 0, then node 0 as destination: each
    // self-hop is one counted relay; the request arrives (a node cannot tell
    // a loop from a path, and a path of one node gains the sender nothing).
    let before = hops(&net);
    let built = onion(&net, &[0, 0, 0], 0, &info);
    let (status, body) = {
        let resp = net
            .client
            .post(&net.node_addr(0), "/onion_req/v2", built.body.clone())
            .await
            .unwrap();
        (resp.status.as_u16(), resp.body.to_vec())
    };
    assert_eq!(status, 200, "{}", text(&body));
    match open_node_reply(&built.reply_key, status, &body) {
        ReplyOutcome::Reply(r) => assert_eq!(r.status, 200),
        other => panic!("{other:?}"),
    }
    assert_eq!(hops(&net) - before, 3);

    // Fifteen self-layers starting at hop_no 1: the sixteenth arrival is
    // refused, so one request costs the node at most 15 relays.
    let before = hops(&net);
    let built = onion(&net, &[0; 15], 0, &info);
    let body = with_entry_json(&built.body, |j| {
        j.insert("hop_no".into(), json!(1));
    });
    let (status, reply) = post_raw(&net, 0, "/onion_req/v2", body).await;
    assert_eq!((status, reply.as_str()), (400, HOP_LIMIT));
    assert_eq!(hops(&net) - before, 15);
    still_serves(&net, 0, SERVE_BOUND).await;
}

/// A signed request of `method` with `signed` text at `ts` for `keys`.
fn signed_req(keys: &AccountKeys, method: &str, ts: u64, extra: Value) -> Value {
    let signed = match method {
        "retrieve" => format!("retrieve{ts}"),
        "delete_all" => format!("delete_all{ts}"),
        _ => unreachable!(),
    };
    let mut params = json!({
        "pubkey": keys.account_id().to_string(),
        "pubkey_ed25519": hex::encode(keys.ed25519_public().as_bytes()),
        "timestamp": ts,
        "signature": sig(keys, signed.as_bytes()),
    });
    for (k, v) in extra.as_object().unwrap() {
        params[k] = v.clone();
    }
    json!({"method": method, "params": params})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_signed_requests() {
    let net = net(2).await;
    let bob = account(2);
    let now = now_ms();
    let (status, _) = net
        .rpc(0, &store_req(&bob.account_id(), b"for bob", now, 60_000))
        .await;
    assert_eq!(status, 200);

    // Within the ±60 s tolerance a captured retrieve can be replayed: the
    // protocol (like Session's) keeps no nonce; it returns what the owner
    // could read anyway, to whoever already saw the owner's request.
    let captured = retrieve_req(&bob, now);
    for _ in 0..2 {
        let (status, body) = net.rpc(0, &captured).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(retrieved_data(&body), vec![b"for bob".to_vec()]);
    }
    // Outside it: 406, in both directions.
    for ts in [now - 61_000, now + 61_000] {
        let (status, body) = net.rpc(0, &retrieve_req(&bob, ts)).await;
        assert_eq!(status, 406, "{body}");
    }
    // A replayed delete_all deletes nothing more the second time (idempotent),
    // and one signed 2 minutes ago is refused.
    let stale = signed_req(&bob, "delete_all", now - 120_000, json!({}));
    assert_eq!(net.rpc(0, &stale).await.0, 406);
    let (status, body) = net.rpc(0, &retrieve_req(&bob, now_ms())).await;
    assert_eq!(status, 200);
    assert_eq!(
        retrieved_data(&body).len(),
        1,
        "the stale delete_all did nothing"
    );

    // Node-to-node: a push signed 61 s ago by a listed node → 401.
    let item = PushItem {
        account: bob.account_id(),
        hash: message_hash(&bob.account_id(), Namespace(0), b"pushed"),
        timestamp: now,
        expiry: now + 60_000,
        data: b"pushed".to_vec(),
        namespace: Namespace(0),
    };
    let body = encode_push_with_tombstones(&[item], &[]).unwrap();
    let (status, reply) = signed_post(
        &net,
        &net.keys[1],
        0,
        PATH_PUSH,
        now_ms() - 61_000,
        body.clone(),
    )
    .await;
    assert_eq!(status, 401, "{reply}");
    // The same push signed now and replayed: stored once.
    let ts = now_ms();
    let auth = NodeRequestAuth::sign(
        &net.keys[1],
        "POST",
        PATH_PUSH,
        net.doc().epoch(),
        ts,
        &body,
    );
    let (s1, r1) = send_with_auth(&net, 0, PATH_PUSH, &auth, body.clone()).await;
    let (s2, r2) = send_with_auth(&net, 0, PATH_PUSH, &auth, body.clone()).await;
    assert_eq!((s1, s2), (200, 200), "{r1} {r2}");
    let (_, body) = net.rpc(0, &retrieve_req(&bob, now_ms())).await;
    let got = retrieved_data(&body);
    assert_eq!(got.iter().filter(|d| d.as_slice() == b"pushed").count(), 1);
    still_serves(&net, 0, SERVE_BOUND).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_retrieve_and_delete_of_another_account() {
    let net = net(2).await;
    let bob = account(2);
    let mallory = account(3);
    let now = now_ms();
    let (status, body) = net
        .rpc(
            0,
            &store_req(&bob.account_id(), b"bob's secret", now, 60_000),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let hash = message_hash(&bob.account_id(), Namespace(0), b"bob's secret");
    let bob_id = bob.account_id().to_string();
    let mallory_ed = hex::encode(mallory.ed25519_public().as_bytes());

    let ts = now_ms();
    let attempts = [
        // No signature at all.
        json!({"method": "retrieve", "params": {"pubkey": bob_id, "timestamp": ts}}),
        // Mallory's signature, Bob's pubkey.
        json!({"method": "retrieve", "params": {"pubkey": bob_id, "timestamp": ts,
            "signature": sig(&mallory, format!("retrieve{ts}").as_bytes())}}),
        // Mallory's signature and Mallory's Ed25519 key claimed for Bob's account.
        json!({"method": "retrieve", "params": {"pubkey": bob_id, "timestamp": ts,
            "pubkey_ed25519": mallory_ed,
            "signature": sig(&mallory, format!("retrieve{ts}").as_bytes())}}),
        // Bob's signature over another method's text.
        json!({"method": "retrieve", "params": {"pubkey": bob_id, "timestamp": ts,
            "signature": sig(&bob, format!("delete_all{ts}").as_bytes())}}),
        // Delete of Bob's message signed by Mallory.
        json!({"method": "delete", "params": {"pubkey": bob_id, "messages": [hash.as_str()],
            "pubkey_ed25519": mallory_ed,
            "signature": sig(&mallory, format!("delete{}", hash.as_str()).as_bytes())}}),
        // Unsigned delete and delete_all.
        json!({"method": "delete", "params": {"pubkey": bob_id, "messages": [hash.as_str()]}}),
        json!({"method": "delete_all", "params": {"pubkey": bob_id, "timestamp": ts}}),
        // delete_all with Mallory's signature.
        json!({"method": "delete_all", "params": {"pubkey": bob_id, "timestamp": ts,
            "signature": sig(&mallory, format!("delete_all{ts}").as_bytes())}}),
        // Expire Bob's message to now, signed by Mallory.
        json!({"method": "expire", "params": {"pubkey": bob_id, "messages": [hash.as_str()],
            "expiry": ts + 1, "signature": sig(&mallory,
                format!("expire{}{}", ts + 1, hash.as_str()).as_bytes())}}),
    ];
    for a in attempts {
        let (status, body) = net.rpc(0, &a).await;
        assert_eq!(status, 401, "{a}: {body}");
    }
    // Through a batch too: each subrequest is authenticated on its own.
    let batch = json!({"method": "batch", "params": {"requests": [
        {"method": "retrieve", "params": {"pubkey": bob_id, "timestamp": ts}},
        {"method": "delete_all", "params": {"pubkey": bob_id, "timestamp": ts}}]}});
    let (status, body) = net.rpc(0, &batch).await;
    assert_eq!(status, 200, "{body}");
    for r in body["results"].as_array().unwrap() {
        assert_eq!(r["code"], json!(401), "{body}");
    }
    // Bob's message is intact, on both members.
    for i in 0..2 {
        let (status, body) = net.rpc(i, &retrieve_req(&bob, now_ms())).await;
        assert_eq!(status, 200);
        assert_eq!(
            retrieved_data(&body),
            vec![b"bob's secret".to_vec()],
            "node {i}"
        );
    }
    still_serves(&net, 0, SERVE_BOUND).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_node_to_node_pushes_are_refused() {
    let net = net(2).await;
    let bob = account(2);
    let now = now_ms();
    let item = |data: &[u8]| PushItem {
        account: bob.account_id(),
        hash: message_hash(&bob.account_id(), Namespace(0), data),
        timestamp: now,
        expiry: now + 60_000,
        data: data.to_vec(),
        namespace: Namespace(0),
    };
    let body = encode_push_with_tombstones(&[item(b"forged")], &[]).unwrap();

    // No headers → 401.
    let (status, reply) = post_raw(&net, 0, PATH_PUSH, body.clone()).await;
    assert_eq!(status, 401, "{reply}");
    // Signed by a key that is not in the registry → 401.
    let stranger = Ed25519Keypair::from_seed(&[0x79; 32]);
    let (status, reply) = signed_post(&net, &stranger, 0, PATH_PUSH, now_ms(), body.clone()).await;
    assert_eq!(status, 401, "{reply}");
    // A listed node's headers over a different body (spliced) → 401.
    let auth = NodeRequestAuth::sign(
        &net.keys[1],
        "POST",
        PATH_PUSH,
        net.doc().epoch(),
        now_ms(),
        b"other",
    );
    let (status, reply) = send_with_auth(&net, 0, PATH_PUSH, &auth, body.clone()).await;
    assert_eq!(status, 401, "{reply}");
    // Headers signed for another path (/node/v1/swarm) replayed on push → 401.
    let auth = NodeRequestAuth::sign(
        &net.keys[1],
        "POST",
        PATH_SWARM,
        net.doc().epoch(),
        now_ms(),
        &body,
    );
    let (status, reply) = send_with_auth(&net, 0, PATH_PUSH, &auth, body.clone()).await;
    assert_eq!(status, 401, "{reply}");
    // Malformed header values → 401.
    let mut req = Request::post(PATH_PUSH, Bytes::from(body.clone())).unwrap();
    for (name, value) in auth.headers() {
        let value = if name.ends_with("Signature") {
            "!!".to_string()
        } else {
            value
        };
        req = req.header(
            http::HeaderName::try_from(name).unwrap(),
            http::HeaderValue::try_from(value).unwrap(),
        );
    }
    let resp = net.client.send(&net.node_addr(0), req).await.unwrap();
    assert_eq!(resp.status.as_u16(), 401);

    // A listed node pushing an item whose hash does not match its data:
    // accepted as a request, but nothing is stored.
    let mut lying = item(b"real data");
    lying.data = b"swapped data".to_vec();
    let body = encode_push_with_tombstones(&[lying], &[]).unwrap();
    let (status, reply) = signed_post(&net, &net.keys[1], 0, PATH_PUSH, now_ms(), body).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        serde_json::from_str::<Value>(&reply).unwrap()["stored"],
        json!(0)
    );
    // Garbage push body, correctly signed → 400.
    let (status, reply) = signed_post(
        &net,
        &net.keys[1],
        0,
        PATH_PUSH,
        now_ms(),
        b"\x01garbage".to_vec(),
    )
    .await;
    assert_eq!(status, 400, "{reply}");
    // A forged forwarded request (/node/v1/swarm) without node headers → 401.
    let (status, reply) = post_raw(
        &net,
        0,
        PATH_SWARM,
        serde_json::to_vec(&json!({"method": "delete_all", "params": {
            "pubkey": bob.account_id().to_string(), "timestamp": now}}))
        .unwrap(),
    )
    .await;
    assert_eq!(status, 401, "{reply}");

    // Nothing forged reached Bob's mailbox.
    let (status, body) = net.rpc(0, &retrieve_req(&bob, now_ms())).await;
    assert_eq!(status, 200);
    assert!(retrieved_data(&body).is_empty(), "{body}");
    still_serves(&net, 0, SERVE_BOUND).await;
}

/// A node request naming a newer epoch makes the receiver fetch that
/// registry from the sender (swarms.md §8.3), but only once the signature
/// proves the sender holds the key it names: otherwise anyone could make
/// any node send requests to any registered node. Node 1 is down, so a
/// fetch would show as `503`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_newer_epoch_makes_no_registry_fetch() {
    let mut net = net(2).await;
    net.stop(1).await;
    let newer = net.doc().epoch() + 1;
    let body = encode_push_with_tombstones(&[], &[]).unwrap();

    // Node 1's name, a stranger's signature.
    let stranger = Ed25519Keypair::from_seed(&[0x7a; 32]);
    let mut forged = NodeRequestAuth::sign(&stranger, "POST", PATH_PUSH, newer, now_ms(), &body);
    forged.node = net.keys[1].public();
    let (status, reply) = send_with_auth(&net, 0, PATH_PUSH, &forged, body.clone()).await;
    assert_eq!(status, 401, "{reply}");
    assert!(reply.contains("signature"), "{reply}");

    // Node 1's own signature: node 0 tries to catch up, and cannot.
    let honest = NodeRequestAuth::sign(&net.keys[1], "POST", PATH_PUSH, newer, now_ms(), &body);
    let (status, reply) = send_with_auth(&net, 0, PATH_PUSH, &honest, body).await;
    assert_eq!(status, 503, "{reply}");
    assert!(reply.contains("get_registry"), "{reply}");
    still_serves(&net, 0, SERVE_BOUND).await;
}

/// The members of `keys`' swarm and one node outside it.
fn swarm_split(net: &TestNet, keys: &AccountKeys) -> (Vec<usize>, usize) {
    let doc = net.doc();
    let member_keys: Vec<_> = doc
        .members_for(&keys.account_id())
        .iter()
        .map(|r| r.ed25519)
        .collect();
    let members: Vec<usize> = (0..net.keys.len())
        .filter(|&i| member_keys.contains(&net.keys[i].public()))
        .collect();
    let outsider = (0..net.keys.len())
        .find(|i| !members.contains(i))
        .expect("six nodes form more than one swarm");
    assert!(members.len() >= 2, "{members:?}");
    (members, outsider)
}

/// A tombstone of `keys`' message `data` (namespace 0) carrying `proof`.
fn tombstone_for(
    keys: &AccountKeys,
    data: &[u8],
    new_expiry: Option<u64>,
    proof: Option<&Value>,
) -> PushTombstone {
    PushTombstone {
        account: keys.account_id(),
        hash: message_hash(&keys.account_id(), Namespace(0), data),
        namespace: Namespace(0),
        new_expiry,
        keep_until: now_ms() + 600_000,
        proof: proof.map(|p| Arc::from(serde_json::to_vec(p).unwrap())),
    }
}

/// `(data, expiration)` of `keys`' messages on node `i`.
async fn held_with_expiry(net: &TestNet, i: usize, keys: &AccountKeys) -> Vec<(Vec<u8>, u64)> {
    let (status, reply) = net.rpc(i, &retrieve_req(keys, now_ms())).await;
    assert_eq!(status, 200, "{reply}");
    let data = retrieved_data(&reply);
    let expiries = reply["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["expiration"].as_u64().unwrap());
    data.into_iter().zip(expiries).collect()
}

fn ignored_tombstones(net: &TestNet, i: usize) -> u64 {
    net.node(i).node.metrics.ignored_tombstones.get()
}

/// SECURITY.md §3.3: a registered node outside an account's swarm cannot
/// make the swarm delete the account's messages by pushing tombstones, even
/// with the owner's real signed request; a member of the swarm can only
/// with it (that is how deletions replicate).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tombstones_are_taken_only_from_the_accounts_swarm() {
    let net = net(6).await;
    let bob = account(0x42);
    let (members, outsider) = swarm_split(&net, &bob);
    let (m0, m1) = (members[0], members[1]);

    let now = now_ms();
    let data = b"not yours to delete";
    let (status, body) = net
        .rpc(m0, &store_req(&bob.account_id(), data, now, 600_000))
        .await;
    assert_eq!(status, 200, "{body}");
    let hash = message_hash(&bob.account_id(), Namespace(0), data);
    let real_delete = owner::delete(&bob, std::slice::from_ref(&hash));
    let body =
        encode_push_with_tombstones(&[], &[tombstone_for(&bob, data, None, Some(&real_delete))])
            .unwrap();

    // The outsider's push is a valid node request (200), but its tombstone
    // is ignored although its proof is genuine: the message stays.
    let (status, reply) = signed_post(
        &net,
        &net.keys[outsider],
        m0,
        PATH_PUSH,
        now_ms(),
        body.clone(),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(held_by(&net, m0, &bob).await, vec![data.to_vec()]);
    assert_eq!(ignored_tombstones(&net, m0), 1);

    // The same tombstone from a member of Bob's swarm deletes it.
    let (status, reply) = signed_post(&net, &net.keys[m1], m0, PATH_PUSH, now_ms(), body).await;
    assert_eq!(status, 200, "{reply}");
    assert!(held_by(&net, m0, &bob).await.is_empty());
    assert_eq!(ignored_tombstones(&net, m0), 1);
}

/// SECURITY.md §3.3: a member of the account's swarm (malicious or
/// compromised) cannot make its peers delete or shorten the account's
/// messages: a tombstone is applied only with the owner's signed request
/// that covers it, checked by the receiver itself. Forged tombstones are
/// ignored without failing the push; a valid one in the same push applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swarm_member_cannot_forge_tombstones() {
    let net = net(6).await;
    let bob = account(0x43);
    let carol = account_elsewhere(&net, &bob.account_id());
    let (members, _) = swarm_split(&net, &bob);
    let (victim, liar) = (members[0], members[1]);

    let now = now_ms();
    let (kept, other) = (b"must survive".as_slice(), b"another message".as_slice());
    for d in [kept, other] {
        let (status, body) = net
            .rpc(victim, &store_req(&bob.account_id(), d, now, 600_000))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let before = held_with_expiry(&net, victim, &bob).await;
    assert_eq!(before.len(), 2);
    let hash = message_hash(&bob.account_id(), Namespace(0), kept);
    let other_hash = message_hash(&bob.account_id(), Namespace(0), other);
    let hashes = std::slice::from_ref(&hash);

    let forged = [
        // No proof at all.
        tombstone_for(&bob, kept, None, None),
        // Bob's genuine delete, of another hash.
        tombstone_for(
            &bob,
            kept,
            None,
            Some(&owner::delete(&bob, std::slice::from_ref(&other_hash))),
        ),
        // A delete of this hash signed by Carol's key for Bob's account.
        tombstone_for(
            &bob,
            kept,
            None,
            Some(&owner::delete_as(&carol, &bob.account_id(), hashes)),
        ),
        // Carol's genuine delete of the same hash in her own account.
        tombstone_for(&bob, kept, None, Some(&owner::delete(&carol, hashes))),
        // Bob's genuine shortening expire, to another expiry than the tombstone's.
        tombstone_for(
            &bob,
            kept,
            Some(now + 1_000),
            Some(&owner::expire(&bob, hashes, now + 300_000, true)),
        ),
        // Bob's genuine expire turned into a deletion.
        tombstone_for(
            &bob,
            kept,
            None,
            Some(&owner::expire(&bob, hashes, now + 300_000, true)),
        ),
        // Bob's genuine delete_all, made ten minutes before the message.
        tombstone_for(
            &bob,
            kept,
            None,
            Some(&owner::delete_all(&bob, NamespaceSel::All, now - 600_000)),
        ),
        // A proof that is not a signed request.
        tombstone_for(
            &bob,
            kept,
            None,
            Some(&json!({"method": "delete", "params": {}})),
        ),
    ];
    let body = encode_push_with_tombstones(&[], &forged).unwrap();
    let (status, reply) =
        signed_post(&net, &net.keys[liar], victim, PATH_PUSH, now_ms(), body).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        held_with_expiry(&net, victim, &bob).await,
        before,
        "a forged tombstone deleted or shortened a message"
    );
    assert_eq!(ignored_tombstones(&net, victim), forged.len() as u64);

    // One forged and one genuine tombstone in the same push: the genuine one
    // (Bob's shortening expire of the other message) applies, the forged
    // one is ignored, the push succeeds.
    let shortened = now + 120_000;
    let genuine = tombstone_for(
        &bob,
        other,
        Some(shortened),
        Some(&owner::expire(&bob, &[other_hash], shortened, true)),
    );
    let body = encode_push_with_tombstones(&[], &[forged[1].clone(), genuine]).unwrap();
    let (status, reply) =
        signed_post(&net, &net.keys[liar], victim, PATH_PUSH, now_ms(), body).await;
    assert_eq!(status, 200, "{reply}");
    let after: BTreeMap<Vec<u8>, u64> = held_with_expiry(&net, victim, &bob)
        .await
        .into_iter()
        .collect();
    let was: BTreeMap<Vec<u8>, u64> = before.into_iter().collect();
    assert_eq!(after[kept], was[kept]);
    assert_eq!(after[other], shortened);
    assert_eq!(ignored_tombstones(&net, victim), forged.len() as u64 + 1);
    still_serves(&net, victim, SERVE_BOUND).await;
}

/// The data of `keys`' messages that node `i` returns.
async fn held_by(net: &TestNet, i: usize, keys: &AccountKeys) -> Vec<Vec<u8>> {
    let (status, reply) = net.rpc(i, &retrieve_req(keys, now_ms())).await;
    assert_eq!(status, 200, "{reply}");
    retrieved_data(&reply)
}

/// `get_registry` fetches node `i` made.
fn registry_fetches(net: &TestNet, i: usize) -> u64 {
    net.node(i).node.metrics.registry_fetches.get()
}

/// `count` pushes signed by node `from` claiming epoch `epoch`, sent to
/// node `to` all at once; their statuses.
async fn concurrent_pushes(
    net: &TestNet,
    from: usize,
    to: usize,
    epoch: u64,
    count: usize,
) -> Vec<u16> {
    let body = encode_push_with_tombstones(&[], &[]).unwrap();
    let sends = (0..count).map(|_| {
        let auth =
            NodeRequestAuth::sign(&net.keys[from], "POST", PATH_PUSH, epoch, now_ms(), &body);
        let body = body.clone();
        async move { send_with_auth(net, to, PATH_PUSH, &auth, body).await.0 }
    });
    futures::future::join_all(sends).await
}

/// Registry catch-up (§8.3 rule 1) is single-flight per peer with a backoff: a
/// listed node claiming a newer epoch it does not have, on many requests
/// at once, makes the receiver fetch its registry once, not once per
/// request; a fetch that fails is not retried for each request either.
/// The statuses are unchanged: a fruitless fetch lets the requests through
/// (the sender is listed), a failed one answers `503`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_requests_claiming_a_newer_epoch_make_one_registry_fetch() {
    let mut net = net(3).await;
    let newer = net.doc().epoch() + 1;
    assert_eq!(registry_fetches(&net, 0), 0);

    // Node 1 is up, on the same epoch: its answer brings nothing newer.
    let statuses = concurrent_pushes(&net, 1, 0, newer, 20).await;
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    assert_eq!(registry_fetches(&net, 0), 1, "one fetch for 20 requests");
    // Within the backoff, more requests make no new fetch.
    let statuses = concurrent_pushes(&net, 1, 0, newer, 20).await;
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    assert_eq!(registry_fetches(&net, 0), 1, "no fetch within the backoff");

    // Node 2 is down: the one fetch fails and every request gets 503.
    net.stop(2).await;
    let statuses = concurrent_pushes(&net, 2, 0, newer, 20).await;
    assert!(statuses.iter().all(|&s| s == 503), "{statuses:?}");
    assert_eq!(registry_fetches(&net, 0), 2, "one fetch for 20 requests");
    assert_eq!(concurrent_pushes(&net, 2, 0, newer, 1).await, vec![503]);
    assert_eq!(registry_fetches(&net, 0), 2, "no fetch within the backoff");
    still_serves(&net, 0, SERVE_BOUND).await;
}

/// `count` `/node/v1/onion` relays from node `from`, authenticated by its
/// TLS client certificate (no signature) and claiming epoch `epoch`, sent
/// to node `to` all at once; their statuses.
async fn concurrent_relays(
    net: &TestNet,
    from: usize,
    to: usize,
    epoch: u64,
    count: usize,
) -> Vec<u16> {
    let relay = umbra_transport::NodeClient::new(umbra_transport::ClientConfig {
        identity: Some(umbra_transport::tls::ClientIdentity::new(&net.keys[from]).unwrap()),
        ..Default::default()
    });
    let sends = (0..count).map(|_| {
        let req = Request::post(PATH_ONION, Bytes::from_static(b"not a relayed layer"))
            .unwrap()
            .header(
                http::HeaderName::from_static("x-umbra-epoch"),
                http::HeaderValue::try_from(epoch.to_string()).unwrap(),
            );
        let relay = relay.clone();
        async move {
            let resp = relay.send(&net.node_addr(to), req).await.unwrap();
            resp.status.as_u16()
        }
    });
    futures::future::join_all(sends).await
}

/// The same for onion relays authenticated by their connection (every
/// relayed layer carries the relay's epoch): 20 layers at once from a
/// relay claiming an epoch it does not have make one registry fetch; from
/// a relay that is down, one failed fetch and `503` for each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relayed_layers_claiming_a_newer_epoch_make_one_registry_fetch() {
    let mut net = net(3).await;
    let newer = net.doc().epoch() + 1;

    let statuses = concurrent_relays(&net, 1, 0, newer, 20).await;
    // Authenticated (neither 401 nor 503); the layer itself is refused.
    assert!(statuses.iter().all(|&s| s == 400), "{statuses:?}");
    assert_eq!(registry_fetches(&net, 0), 1, "one fetch for 20 layers");

    net.stop(2).await;
    let statuses = concurrent_relays(&net, 2, 0, newer, 20).await;
    assert!(statuses.iter().all(|&s| s == 503), "{statuses:?}");
    assert_eq!(registry_fetches(&net, 0), 2, "one fetch for 20 layers");
    still_serves(&net, 0, SERVE_BOUND).await;
}
