//! Interop with a Session-compatible implementation written here from
//! `messages.md` alone (§2–6): its own protobuf encoding, padding, signature
//! and sealed box, using only cryptographic primitives — not
//! `umbra_proto::message`. Its message to Bob shows up in Bob's client from
//! the right account ID; Alice's `send_text` opens with it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use umbra_client::client::Client;
use umbra_client::net::Network;
use umbra_client::profile::Profile;
use umbra_crypto::{Ed25519Keypair, Ed25519Public, X25519Public, X25519Secret};
use umbra_devnet::{Devnet, DevnetOptions};
use umbra_proto::identity::AccountId;
use umbra_proto::mnemonic::AccountSeed;
use umbra_proto::path::PathConfig;
use umbra_transport::SystemClock;

/// The independent implementation.
mod indie {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    pub fn field_varint(num: u64, v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        varint(num << 3, &mut out);
        varint(v, &mut out);
        out
    }

    pub fn field_bytes(num: u64, b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        varint((num << 3) | 2, &mut out);
        varint(b.len() as u64, &mut out);
        out.extend_from_slice(b);
        out
    }

    /// Fields of one protobuf message: (number, varint value or bytes).
    pub fn fields(mut b: &[u8]) -> Vec<(u64, Result<u64, Vec<u8>>)> {
        fn read_varint(b: &mut &[u8]) -> u64 {
            let mut v = 0u64;
            let mut shift = 0;
            loop {
                let byte = b[0];
                *b = &b[1..];
                v |= u64::from(byte & 0x7f) << shift;
                if byte & 0x80 == 0 {
                    return v;
                }
                shift += 7;
            }
        }
        let mut out = Vec::new();
        while !b.is_empty() {
            let key = read_varint(&mut b);
            match key & 7 {
                0 => out.push((key >> 3, Ok(read_varint(&mut b)))),
                2 => {
                    let n = read_varint(&mut b) as usize;
                    out.push((key >> 3, Err(b[..n].to_vec())));
                    b = &b[n..];
                }
                1 => b = &b[8..],
                5 => b = &b[4..],
                w => panic!("wire type {w}"),
            }
        }
        out
    }

    pub fn get_bytes(b: &[u8], num: u64) -> Option<Vec<u8>> {
        fields(b)
            .into_iter()
            .find_map(|(n, v)| (n == num).then(|| v.err()).flatten())
    }

    pub fn get_varint(b: &[u8], num: u64) -> Option<u64> {
        fields(b)
            .into_iter()
            .find_map(|(n, v)| (n == num).then(|| v.ok()).flatten())
    }

    /// §4: content ‖ 0x80 ‖ zeros, to 160·(⌊(len+1)/160⌋+1).
    fn pad(content: &[u8]) -> Vec<u8> {
        let total = 160 * ((content.len() + 1) / 160 + 1);
        let mut out = content.to_vec();
        out.push(0x80);
        out.resize(total, 0);
        out
    }

    fn unpad(m: &[u8]) -> &[u8] {
        let end = m.iter().rposition(|&b| b != 0).unwrap();
        assert_eq!(m[end], 0x80);
        &m[..end]
    }

    /// §2 and §5.1: a text message from `sender` to `recipient` at time `t`,
    /// as the bytes stored in the swarm.
    pub fn encrypt(
        sender: &Ed25519Keypair,
        recipient: &X25519Public,
        text: &str,
        t: u64,
    ) -> Vec<u8> {
        let data_message = field_bytes(1, text.as_bytes());
        let mut content = field_bytes(1, &data_message);
        content.extend(field_varint(15, t)); // sigTimestamp
        let m = pad(&content);
        let a = sender.public();
        let mut signed = m.clone();
        signed.extend_from_slice(a.as_bytes());
        signed.extend_from_slice(recipient.as_bytes());
        let sig = sender.sign(&signed);
        let mut inner = m;
        inner.extend_from_slice(a.as_bytes());
        inner.extend_from_slice(&sig);
        let ct = umbra_crypto::sealed::seal(&inner, recipient, umbra_crypto::random_bytes::<32>())
            .unwrap();
        let mut envelope = field_varint(1, 6);
        envelope.extend(field_varint(5, t));
        envelope.extend(field_varint(7, 1));
        envelope.extend(field_bytes(8, &ct));
        let mut request = field_bytes(1, b"");
        request.extend(field_bytes(2, b""));
        request.extend(field_bytes(3, &envelope));
        request.extend(field_varint(4, 0));
        let mut wsm = field_varint(1, 1);
        wsm.extend(field_bytes(2, &request));
        wsm
    }

    /// §3: open a stored blob; returns (sender Ed25519 key, sender account ID bytes, text, T).
    pub fn decrypt(
        recipient: &X25519Secret,
        stored: &[u8],
    ) -> (Ed25519Public, [u8; 33], String, u64) {
        let request = get_bytes(stored, 2).expect("WebSocketMessage.request");
        let envelope = get_bytes(&request, 3).expect("request.body");
        assert_eq!(get_varint(&envelope, 1), Some(6), "Envelope.type");
        let t = get_varint(&envelope, 5).expect("Envelope.timestamp");
        let ct = get_bytes(&envelope, 8).expect("Envelope.content");
        let inner = umbra_crypto::sealed::unseal(&ct, recipient).expect("sealed box opens");
        let (m, rest) = inner.split_at(inner.len() - 96);
        let a = Ed25519Public::from_slice(&rest[..32]).unwrap();
        let mut signed = m.to_vec();
        signed.extend_from_slice(a.as_bytes());
        signed.extend_from_slice(recipient.public().as_bytes());
        a.verify(&signed, &rest[32..]).expect("signature verifies");
        let x = a.to_x25519().unwrap();
        let mut id = [5u8; 33];
        id[1..].copy_from_slice(x.as_bytes());
        let content = unpad(m);
        let data_message = get_bytes(content, 1).expect("Content.dataMessage");
        let body = get_bytes(&data_message, 1).expect("DataMessage.body");
        assert_eq!(
            get_varint(content, 15),
            Some(t),
            "sigTimestamp equals Envelope.timestamp"
        );
        (a, id, String::from_utf8(body).unwrap(), t)
    }
}

fn client(dir: &std::path::Path, name: &str, net: &Devnet) -> Client {
    let seed = AccountSeed::new_umbra(&umbra_crypto::random_bytes::<32>());
    let profile = Profile::create(&dir.join(name), &seed, None).unwrap();
    Client::open(
        profile,
        net.network().clone(),
        PathConfig::default().with_min_usable_nodes(4),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn independent_session_implementation_interoperates() {
    let dir = tempfile::tempdir().unwrap();
    let net = Devnet::up(DevnetOptions::in_process(8, dir.path().join("net")))
        .await
        .unwrap();
    let bob = client(dir.path(), "bob", &net);
    let alice = client(dir.path(), "alice", &net);

    // 1. The independent sender encrypts to Bob and stores in Bob's swarm.
    let carol = Ed25519Keypair::from_seed(&[0xC4; 32]);
    let carol_id = AccountId::standard(&carol.x25519_public());
    let bob_x = bob.account_id().x25519().unwrap();
    let transport = Network::new(
        net.network().clone(),
        PathConfig::default().with_min_usable_nodes(4),
        None,
        None,
        Arc::new(SystemClock),
    )
    .unwrap();
    let t = transport.network_now().await;
    let blob = indie::encrypt(&carol, &bob_x, "hello from an independent client", t);
    let reply = transport
        .storage_request(
            &bob.account_id(),
            "store",
            json!({"pubkey": bob.account_id().to_string(), "timestamp": t, "ttl": 600_000, "data": STANDARD.encode(&blob)}),
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        bob.sync().await.unwrap();
        let msgs = bob.profile().store().messages(&carol_id, None).unwrap();
        if let Some(m) = msgs.first() {
            assert_eq!(
                m.author, carol_id,
                "shown as coming from the independent sender's account ID"
            );
            assert_eq!(m.text, "hello from an independent client");
            assert_eq!(m.timestamp_ms, t);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Bob never showed the message"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // 2. Alice's `send_text` to Carol opens with the independent implementation.
    let sent = alice
        .send_text(&carol_id, "hello Carol, from umbra")
        .await
        .unwrap();
    let ts = transport.network_now().await;
    let sig = carol.sign(format!("retrieve{ts}").as_bytes());
    let reply = transport
        .storage_request(
            &carol_id,
            "retrieve",
            json!({
                "pubkey": carol_id.to_string(),
                "pubkey_ed25519": hex::encode(carol.public().as_bytes()),
                "timestamp": ts,
                "signature": STANDARD.encode(sig),
            }),
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    let messages = reply.body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1);
    let stored = STANDARD
        .decode(messages[0]["data"].as_str().unwrap())
        .unwrap();
    let (sender_ed, sender_id, text, t) = indie::decrypt(&carol.x25519_secret(), &stored);
    assert_eq!(text, "hello Carol, from umbra");
    assert_eq!(t, sent.timestamp_ms);
    assert_eq!(
        AccountId::from_bytes(&sender_id).unwrap(),
        alice.account_id()
    );
    assert_eq!(sender_ed, alice.profile().keys().ed25519_public());
    drop((alice, bob));
    net.down().await;
}
