//! End-to-end tests of the onion layer: build → peel at every hop →
//! deliver → reply, padding to buckets, and refusals.

use proptest::prelude::*;
use umbra_crypto::{Ed25519Keypair, X25519Public, X25519Secret};

use super::*;

struct Node {
    secret: X25519Secret,
    info: PathNode,
}

fn node(seed: u8) -> Node {
    let kp = Ed25519Keypair::from_seed(&[seed; 32]);
    Node {
        secret: kp.x25519_secret(),
        info: PathNode {
            ed25519: kp.public().to_bytes(),
            x25519: kp.x25519_public(),
        },
    }
}

fn randoms(n: usize, salt: u8) -> Vec<LayerRandom> {
    (0..n)
        .map(|i| {
            let i = u8::try_from(i).unwrap_or(0);
            LayerRandom::new([salt ^ (i + 1); 32], [i.wrapping_mul(17) ^ salt; 24])
        })
        .collect()
}

fn node_dest(d: &Node, options: NodeRequestOptions) -> OnionDestination {
    OnionDestination::Node {
        node: d.info,
        options,
    }
}

/// Walks an onion through `path` to `dest`, checking each hop's view, and
/// returns what the destination got.
fn walk(built: &BuiltOnion, path: &[Node], dest: &Node) -> Result<Peeled, OnionError> {
    let mut peeled = peel_entry(&built.body, &path[0].secret)?;
    for (i, next) in path.iter().skip(1).chain(std::iter::once(dest)).enumerate() {
        let Peeled::Forward {
            next_hop_ed25519,
            message,
        } = peeled
        else {
            panic!("hop {i} did not forward");
        };
        assert_eq!(next_hop_ed25519, next.info.ed25519);
        assert_eq!(message.hop_no, i as u64 + 1);
        peeled = peel_relay(&message.encode(), &next.secret)?;
    }
    Ok(peeled)
}

#[test]
fn three_hops_to_node_and_reply() {
    let path = [node(1), node(2), node(3)];
    let dest = node(4);
    let hops: Vec<PathNode> = path.iter().map(|n| n.info).collect();
    let payload = br#"{"method":"info","params":{}}"#;
    let built = build_padded_onion(
        EncType::XChaCha20,
        payload,
        &hops,
        &node_dest(&dest, NodeRequestOptions::default()),
        &randoms(4, 9),
    )
    .expect("build");
    assert_eq!(built.body.len(), 2048);
    let Peeled::Deliver {
        request,
        options,
        reply_key,
    } = walk(&built, &path, &dest).expect("walk")
    else {
        panic!("destination did not deliver");
    };
    assert_eq!(request, payload);
    assert_eq!(
        options,
        DeliverOptions {
            json: true,
            base64: false
        }
    );
    let result = serde_json::json!({"version": [1, 2, 3], "t": 1234});
    let reply = seal_node_reply(
        &reply_key,
        200,
        &ReplyBody::Json(result.clone()),
        options,
        &[5; 24],
    )
    .expect("reply");
    assert_eq!(reply.len(), 2048);
    assert_eq!(
        open_node_reply(&built.reply_key, 200, &reply),
        ReplyOutcome::Reply(NodeReply {
            status: 200,
            body: result
        })
    );
    // A hop key does not open the reply.
    assert_eq!(
        open_node_reply(&built.hop_keys[2], 200, &reply),
        ReplyOutcome::Undecryptable
    );
}

#[test]
fn server_destination_via_proxy() {
    let path = [node(1), node(2), node(3)];
    let server = X25519Secret::from_bytes([42; 32]);
    let hops: Vec<PathNode> = path.iter().map(|n| n.info).collect();
    let req = V4Request {
        method: "POST".into(),
        endpoint: "/file".into(),
        headers: [(
            "Content-Type".to_owned(),
            "application/octet-stream".to_owned(),
        )]
        .into(),
        body: Some(vec![7; 3000]),
    };
    let dest = OnionDestination::Server(ServerTarget {
        host: "files.example.org".into(),
        target: "/oxen/v4/lsrpc".into(),
        protocol: Protocol::Https,
        port: 443,
        x25519: server.public(),
    });
    let built = build_padded_onion(
        EncType::XChaCha20,
        &req.encode().expect("v4"),
        &hops,
        &dest,
        &randoms(4, 3),
    )
    .expect("build");
    assert_eq!(built.body.len(), 8192);
    let mut peeled = peel_entry(&built.body, &path[0].secret).expect("guard");
    for hop in &path[1..] {
        let Peeled::Forward { message, .. } = peeled else {
            panic!("no forward");
        };
        peeled = peel_relay(&message.encode(), &hop.secret).expect("relay");
    }
    let Peeled::Proxy { request, body } = peeled else {
        panic!("hop 3 did not proxy");
    };
    assert_eq!(request.url(), "https://files.example.org/oxen/v4/lsrpc");
    assert_eq!(request.host.literal(), None);
    // Hop 3 forwards the whole container; its size is fixed by the bucket.
    assert_eq!(&body, built.layer_plaintexts.get(2).expect("P_2"));
    let (got, key) = open_server_request(&body, &server).expect("server opens");
    assert_eq!(got, req);

    let resp = V4Response {
        code: 200,
        headers: [("content-type".to_owned(), "application/json".to_owned())].into(),
        body: b"{\"id\":\"abc\"}".to_vec(),
    };
    let sealed = seal_server_reply(&key, &resp, true, &[1; 24]).expect("seal");
    assert_eq!(sealed.len(), 2048);
    assert_eq!(
        open_server_reply(&built.reply_key, 200, &sealed),
        ReplyOutcome::Reply(resp)
    );
}

#[test]
fn server_reply_padding_skips_unreachable_size() {
    let key = LayerKey::client(
        EncType::XChaCha20,
        &X25519Secret::from_bytes([1; 32]),
        &X25519Secret::from_bytes([2; 32]).public(),
    )
    .expect("key");
    // For every body length, the padded reply is a bucket size: the
    // smallest one that fits, or the next when a digit skips it.
    for len in (0..2100).step_by(7).chain(8000..8200) {
        let resp = V4Response {
            code: 200,
            headers: Default::default(),
            body: vec![1; len],
        };
        let unpadded = resp.encode(Some(0)).expect("encode").len() + 40;
        let sealed = seal_server_reply(&key, &resp, true, &[0; 24]).expect("seal");
        let b = bucket_for(unpadded).expect("bucket");
        assert!(
            sealed.len() == b || Some(sealed.len()) == bucket_for(b + 1),
            "len {len}: {}",
            sealed.len()
        );
        assert_eq!(
            open_server_reply(&key, 200, &sealed),
            ReplyOutcome::Reply(resp)
        );
    }
}

#[test]
fn node_reply_options_and_compat() {
    let d = node(4);
    let client = X25519Secret::from_bytes([8; 32]);
    let ck = LayerKey::client(EncType::AesGcm, &client, &d.info.x25519).expect("key");
    let nk = LayerKey::node(EncType::AesGcm, &d.secret, &client.public()).expect("key");
    let result = serde_json::json!({"hash": "abc"});
    for (json, base64) in [(false, false), (false, true), (true, false), (true, true)] {
        let opts = DeliverOptions { json, base64 };
        let sealed = seal_node_reply(&nk, 200, &ReplyBody::Json(result.clone()), opts, &[3; 24])
            .expect("seal");
        assert_eq!(sealed.len(), 2048);
        if base64 {
            assert!(!sealed.contains(&b'='));
        }
        let want = if json {
            result.clone()
        } else {
            serde_json::Value::String(result.to_string())
        };
        assert_eq!(
            open_node_reply(&ck, 200, &sealed),
            ReplyOutcome::Reply(NodeReply {
                status: 200,
                body: want
            })
        );
    }
    // Errors are strings; a 421 arrives inside a 200.
    let sealed = seal_node_reply(
        &nk,
        421,
        &ReplyBody::Text("wrong swarm".into()),
        DeliverOptions::default(),
        &[3; 24],
    )
    .expect("seal");
    assert_eq!(
        open_node_reply(&ck, 200, &sealed),
        ReplyOutcome::Reply(NodeReply {
            status: 421,
            body: "wrong swarm".into()
        })
    );
    // status_code and the {"result": base64} wrapper from other implementations.
    let ct = nk.seal(&[4; 24], br#"{"status_code":200,"body":"ok"}"#);
    let wrapped = serde_json::to_vec(&serde_json::json!({
        "result": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &ct)
    }))
    .expect("json");
    assert_eq!(
        open_node_reply(&ck, 200, &wrapped),
        ReplyOutcome::Reply(NodeReply {
            status: 200,
            body: "ok".into()
        })
    );
    // Decrypts, but is not a reply object.
    let ct = nk.seal(&[4; 24], b"[1]");
    assert_eq!(
        open_node_reply(&ck, 200, &ct),
        ReplyOutcome::Malformed(OnionError::BadReply("not a JSON object"))
    );
}

#[test]
fn too_large_reply_becomes_413() {
    let client = X25519Secret::from_bytes([8; 32]);
    let d = node(4);
    let ck = LayerKey::client(EncType::XChaCha20, &client, &d.info.x25519).expect("key");
    let nk = LayerKey::node(EncType::XChaCha20, &d.secret, &client.public()).expect("key");
    let huge = ReplyBody::Text("x".repeat(MAX_BODY_SIZE));
    let sealed =
        seal_node_reply(&nk, 200, &huge, DeliverOptions::default(), &[0; 24]).expect("seal");
    assert_eq!(sealed.len(), 2048);
    assert_eq!(
        open_node_reply(&ck, 200, &sealed),
        ReplyOutcome::Reply(NodeReply {
            status: 413,
            body: "response too large".into()
        })
    );
}

#[test]
fn relay_errors_are_plaintext() {
    let key = LayerKey::client(
        EncType::XChaCha20,
        &X25519Secret::from_bytes([1; 32]),
        &X25519Secret::from_bytes([2; 32]).public(),
    )
    .expect("key");
    assert_eq!(
        open_node_reply(&key, 502, b"Next node not found: abcd"),
        ReplyOutcome::RelayError {
            status: 502,
            text: "Next node not found: abcd".into()
        }
    );
    assert_eq!(
        open_node_reply(&key, 200, b"garbage"),
        ReplyOutcome::Undecryptable
    );
    assert!(matches!(
        open_server_reply(&key, 504, &[0xff; 1000]),
        ReplyOutcome::RelayError { status: 504, ref text } if text.chars().count() == 256
    ));
}

fn built_to_node(enc: EncType) -> (Vec<Node>, Node, BuiltOnion) {
    let path = vec![node(1), node(2), node(3)];
    let dest = node(4);
    let hops: Vec<PathNode> = path.iter().map(|n| n.info).collect();
    let built = build_onion(
        enc,
        b"{}",
        &hops,
        &node_dest(&dest, NodeRequestOptions::bare()),
        &randoms(4, 1),
        None,
    )
    .expect("build");
    (path, dest, built)
}

#[test]
fn wrong_node_key_refused() {
    let (path, _, built) = built_to_node(EncType::XChaCha20);
    let e =
        peel_entry(&built.body, &path[1].secret).expect_err("hop 2 cannot open the guard layer");
    assert_eq!(e, OnionError::DecryptFailed);
    assert_eq!(e.http_status(), 400);
    assert_eq!(e.http_body(), "Invalid ciphertext");
}

#[test]
fn tampered_and_truncated_refused() {
    for enc in [EncType::XChaCha20, EncType::AesGcm] {
        let (path, _, built) = built_to_node(enc);
        // Flip a byte inside the guard ciphertext (after the 4-byte prefix).
        let mut bad = built.body.clone();
        bad[4 + enc.nonce_len() + 3] ^= 1;
        assert_eq!(
            peel_entry(&bad, &path[0].secret).map(|_| ()),
            Err(OnionError::DecryptFailed)
        );
        // Truncated body: the length prefix exceeds the data.
        let cut = &built.body[..100];
        assert!(matches!(
            peel_entry(cut, &path[0].secret),
            Err(OnionError::LengthPrefixTooLarge { .. })
        ));
        // Tampered relay message data.
        let Ok(Peeled::Forward { mut message, .. }) = peel_entry(&built.body, &path[0].secret)
        else {
            panic!("guard must forward");
        };
        message.data[10] ^= 0x80;
        assert_eq!(
            peel_relay(&message.encode(), &path[1].secret).map(|_| ()),
            Err(OnionError::DecryptFailed)
        );
    }
}

#[test]
fn aes_cbc_refused() {
    let (path, _, built) = built_to_node(EncType::XChaCha20);
    let c = unframe(&built.body).expect("container");
    let key = c
        .json
        .get("ephemeral_key")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    for name in ["aes-cbc", "cbc", "chacha"] {
        let json = format!(r#"{{"enc_type":"{name}","ephemeral_key":"{key}"}}"#);
        let body = frame(c.blob, json.as_bytes()).expect("frame");
        let e = peel_entry(&body, &path[0].secret).expect_err(name);
        assert_eq!(e, OnionError::UnsupportedEncType(name.into()));
        assert_eq!(e.http_status(), 400);
    }
    // The same body with its real enc_type is accepted.
    let json = format!(r#"{{"enc_type":"xchacha20-poly1305","ephemeral_key":"{key}"}}"#);
    let body = frame(c.blob, json.as_bytes()).expect("frame");
    assert!(peel_entry(&body, &path[0].secret).is_ok());
}

#[test]
fn hop_limit() {
    let (path, _, built) = built_to_node(EncType::XChaCha20);
    let Ok(Peeled::Forward { mut message, .. }) = peel_entry(&built.body, &path[0].secret) else {
        panic!("guard must forward");
    };
    message.hop_no = 16;
    let e = peel_relay(&message.encode(), &path[1].secret).expect_err("over the limit");
    assert_eq!(e, OnionError::HopLimitExceeded(16));
    assert_eq!(e.http_body(), "onion request max path length exceeded");
    message.hop_no = 15;
    assert!(peel_relay(&message.encode(), &path[1].secret).is_ok());

    // An entry hop_no is honoured and capped.
    let c = unframe(&built.body).expect("container");
    let key = c
        .json
        .get("ephemeral_key")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    let entry = |hop: &str| {
        frame(
            c.blob,
            format!(r#"{{"enc_type":"xchacha20","ephemeral_key":"{key}","hop_no":{hop}}}"#)
                .as_bytes(),
        )
        .expect("frame")
    };
    let Ok(Peeled::Forward { message, .. }) = peel_entry(&entry("5"), &path[0].secret) else {
        panic!("forward");
    };
    assert_eq!(message.hop_no, 6);
    let Ok(Peeled::Forward { message, .. }) = peel_entry(&entry("-3"), &path[0].secret) else {
        panic!("forward");
    };
    assert_eq!(message.hop_no, 1);
    assert_eq!(
        peel_entry(&entry("16"), &path[0].secret).map(|_| ()),
        Err(OnionError::HopLimitExceeded(16))
    );
    assert!(matches!(
        peel_entry(&entry("\"1\""), &path[0].secret),
        Err(OnionError::BadField {
            field: "hop_no",
            ..
        })
    ));
    // Building more hops than a path may have is refused.
    let many: Vec<PathNode> = (0..16).map(|i| node(i + 10).info).collect();
    assert_eq!(
        build_onion(
            EncType::XChaCha20,
            b"{}",
            &many,
            &node_dest(&node(4), NodeRequestOptions::bare()),
            &randoms(17, 0),
            None
        )
        .map(|_| ()),
        Err(OnionError::HopLimitExceeded(16))
    );
}

/// A one-hop onion whose single layer carries `route_json`.
fn one_layer(route_json: &str, guard: &Node) -> Vec<u8> {
    let e = X25519Secret::from_bytes([6; 32]);
    let key = LayerKey::client(EncType::XChaCha20, &e, &guard.info.x25519).expect("key");
    let p = frame(b"inner", route_json.as_bytes()).expect("frame");
    let ct = key.encrypt(&[1; 24], &p).expect("encrypt");
    let j = format!(
        r#"{{"enc_type":"xchacha20","ephemeral_key":"{}"}}"#,
        hex::encode(e.public().as_bytes())
    );
    frame(&ct, j.as_bytes()).expect("frame")
}

#[test]
fn proxy_targets_checked() {
    let g = node(1);
    let ok = one_layer(
        r#"{"host":"10.0.0.1","target":"/oxen/v4/lsrpc","port":8080,"protocol":"http"}"#,
        &g,
    );
    let Ok(Peeled::Proxy { request, .. }) = peel_entry(&ok, &g.secret) else {
        panic!("proxy");
    };
    // Syntax is fine, but the node must refuse the private address.
    let ip = request.host.literal().expect("literal");
    assert_eq!(
        check_resolved_addresses(&[ip], &[]),
        Err(OnionError::ForbiddenAddress(ip))
    );
    assert_eq!(check_resolved_addresses(&[ip], &[ip]), Ok(vec![ip]));
    for bad in [
        r#"{"host":"example.org","target":"/oxen/v4/lsrpc?x=1"}"#,
        r#"{"host":"example.org","target":"/other/lsrpc"}"#,
        r#"{"host":"example.org","target":"/oxen/v4/lsrpc","protocol":"ftp"}"#,
        r#"{"host":"localhost","target":"/oxen/v4/lsrpc"}"#,
        r#"{"host":"127.1","target":"/oxen/v4/lsrpc"}"#,
        r#"{"host":"","target":"/oxen/v4/lsrpc"}"#,
    ] {
        let e = peel_entry(&one_layer(bad, &g), &g.secret).expect_err(bad);
        assert!(matches!(e, OnionError::InvalidUrl(_)), "{bad}: {e}");
        assert_eq!(e.http_body(), "Invalid url");
    }
}

#[test]
fn build_argument_errors() {
    let d = node(4);
    let dest = node_dest(&d, NodeRequestOptions::bare());
    assert_eq!(
        build_onion(EncType::XChaCha20, b"", &[], &dest, &randoms(1, 0), None).map(|_| ()),
        Err(OnionError::EmptyPath)
    );
    assert_eq!(
        build_onion(
            EncType::XChaCha20,
            b"",
            &[d.info],
            &dest,
            &randoms(1, 0),
            None
        )
        .map(|_| ()),
        Err(OnionError::RandomnessCount {
            expected: 2,
            got: 1
        })
    );
    assert_eq!(
        LayerRandom::with_nonce([0; 32], &[0; 24], EncType::AesGcm).map(|_| ()),
        Err(OnionError::BadNonceLength {
            expected: 12,
            got: 24
        })
    );
    let too_big = vec![b'x'; MAX_BODY_SIZE];
    assert!(matches!(
        build_padded_onion(
            EncType::XChaCha20,
            &too_big,
            &[d.info],
            &dest,
            &randoms(2, 0)
        ),
        Err(OnionError::TooLarge(_))
    ));
    let bad_server = OnionDestination::Server(ServerTarget {
        host: "example.org".into(),
        target: "/oxen/v4/other".into(),
        protocol: Protocol::Https,
        port: 443,
        x25519: X25519Public::from_bytes([9; 32]),
    });
    assert!(matches!(
        build_onion(
            EncType::XChaCha20,
            b"",
            &[d.info],
            &bad_server,
            &randoms(2, 0),
            None
        ),
        Err(OnionError::InvalidUrl(_))
    ));
}

fn path_strategy() -> impl Strategy<Value = (u8, usize, bool, Vec<u8>)> {
    (
        any::<u8>(),
        1usize..=4,
        any::<bool>(),
        proptest::collection::vec(any::<u8>(), 0..3000),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn build_peel_deliver_reply((salt, k, xchacha, payload) in path_strategy(),
                                reply in proptest::collection::vec(any::<u8>(), 0..3000)) {
        let enc = if xchacha { EncType::XChaCha20 } else { EncType::AesGcm };
        let path: Vec<Node> = (0..k).map(|i| node(salt.wrapping_add(u8::try_from(i).unwrap_or(0)))).collect();
        let dest = node(salt.wrapping_add(100));
        let hops: Vec<PathNode> = path.iter().map(|n| n.info).collect();
        let built = build_padded_onion(enc, &payload, &hops,
            &node_dest(&dest, NodeRequestOptions::default()), &randoms(k + 1, salt))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(Some(built.body.len()), bucket_for(built.body.len()));
        prop_assert_eq!(built.layer_plaintexts.len(), k + 1);
        let peeled = walk(&built, &path, &dest).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let Peeled::Deliver { request, options, reply_key } = peeled else {
            return Err(TestCaseError::fail("no delivery"));
        };
        prop_assert_eq!(&request, &payload);
        let text = String::from_utf8_lossy(&reply).to_string();
        let sealed = seal_node_reply(&reply_key, 200, &ReplyBody::Text(text.clone()), options, &[salt; 24])
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(Some(sealed.len()), bucket_for(sealed.len()));
        prop_assert_eq!(open_node_reply(&built.reply_key, 200, &sealed),
            ReplyOutcome::Reply(NodeReply { status: 200, body: text.into() }));
    }

    /// The padded build measures its unpadded size without encrypting; the
    /// result must be byte for byte the plain build with the pad that fills
    /// the bucket, to a node and to a server, with either cipher.
    #[test]
    fn padded_build_is_the_plain_build_with_its_pad((salt, k, xchacha, payload) in path_strategy(),
                                                   to_server in any::<bool>()) {
        let enc = if xchacha { EncType::XChaCha20 } else { EncType::AesGcm };
        let hops: Vec<PathNode> = (0..k).map(|i| node(salt.wrapping_add(u8::try_from(i).unwrap_or(0))).info).collect();
        let dest = if to_server {
            OnionDestination::Server(ServerTarget {
                host: "files.example.org".into(),
                target: "/oxen/v4/lsrpc".into(),
                protocol: Protocol::Https,
                port: 443,
                x25519: node(salt.wrapping_add(100)).info.x25519,
            })
        } else {
            node_dest(&node(salt.wrapping_add(100)), NodeRequestOptions::default())
        };
        let random = randoms(k + 1, salt);
        let fail = |e: OnionError| TestCaseError::fail(e.to_string());
        let padded = build_padded_onion(enc, &payload, &hops, &dest, &random).map_err(fail)?;
        let s0 = build_onion(enc, &payload, &hops, &dest, &random, Some(0)).map_err(fail)?.body.len();
        let bucket = bucket_for(s0).ok_or_else(|| TestCaseError::fail("no bucket"))?;
        let plain = build_onion(enc, &payload, &hops, &dest, &random, Some(bucket - s0)).map_err(fail)?;
        prop_assert_eq!(padded.body.len(), bucket);
        prop_assert_eq!(&padded.body, &plain.body);
        prop_assert_eq!(&padded.layer_plaintexts, &plain.layer_plaintexts);
    }

    #[test]
    fn peel_never_panics(body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let n = node(1);
        let _ = peel_entry(&body, &n.secret);
        let _ = peel_relay(&body, &n.secret);
        let _ = parse_layer(&body);
        let _ = open_server_request(&body, &n.secret);
    }

    #[test]
    fn peel_never_panics_on_framed(json in "\\{[ -~]{0,60}\\}", blob in proptest::collection::vec(any::<u8>(), 0..80)) {
        let n = node(1);
        let body = frame(&blob, json.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let _ = peel_entry(&body, &n.secret);
        let _ = parse_layer(&body);
    }

    #[test]
    fn open_reply_never_panics(status in any::<u16>(), body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let key = LayerKey::client(EncType::XChaCha20, &X25519Secret::from_bytes([1; 32]),
            &X25519Secret::from_bytes([2; 32]).public()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let _ = open_node_reply(&key, status, &body);
        let _ = open_server_reply(&key, status, &body);
    }
}
