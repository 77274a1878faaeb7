//! An independent implementation of the onion request format, written only
//! from `shared/spec/onion.md` (§1 hop encryption, §2 container, §3 entry,
//! §4 routing JSON, §5 building, §7.1 replies) with `umbra_crypto`
//! primitives, sends requests through three of our nodes to a fourth and
//! decrypts the replies, with both `xchacha20` and `aes-gcm`; `aes-cbc` is
//! refused with `400`. Nothing here calls `umbra_proto::onion`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use umbra_crypto::hash::{Blake2bParams, blake2b_multi, hmac_sha256};
use umbra_crypto::{X25519Public, X25519Secret, aead};
use umbra_devnet::{Devnet, DevnetOptions};
use umbra_transport::{NodeAddr, NodeClient};

/// §1: the two hop ciphers.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Cipher {
    XChaCha20,
    AesGcm,
}

impl Cipher {
    fn name(self) -> &'static str {
        match self {
            Cipher::XChaCha20 => "xchacha20",
            Cipher::AesGcm => "aes-gcm",
        }
    }
}

/// One hop's key, from the client side: `shared = X25519(e, N)`.
struct HopKey {
    cipher: Cipher,
    key: [u8; 32],
}

impl HopKey {
    /// Draws `(e, E)` and derives the key to `n` (node X25519 key).
    fn new(cipher: Cipher, n: &X25519Public) -> (HopKey, [u8; 32]) {
        let e = X25519Secret::from_bytes(umbra_crypto::random_bytes::<32>());
        let big_e = *e.public().as_bytes();
        let shared = e.diffie_hellman(n).unwrap();
        let key: [u8; 32] = match cipher {
            // BLAKE2b-256(shared ‖ E ‖ N), unkeyed, client key first.
            Cipher::XChaCha20 => blake2b_multi(
                &[shared.as_bytes(), &big_e, n.as_bytes()],
                32,
                Blake2bParams::default(),
            )
            .unwrap()
            .try_into()
            .unwrap(),
            // HMAC-SHA256(key = "LOKI", message = shared).
            Cipher::AesGcm => hmac_sha256(b"LOKI", shared.as_bytes()),
        };
        (HopKey { cipher, key }, big_e)
    }

    fn encrypt(&self, plaintext: &[u8]) -> Vec<u8> {
        match self.cipher {
            Cipher::XChaCha20 => {
                let nonce = umbra_crypto::random_bytes::<24>();
                let mut out = nonce.to_vec();
                out.extend(aead::xchacha20_encrypt(&self.key, &nonce, plaintext, b""));
                out
            }
            Cipher::AesGcm => {
                let iv = umbra_crypto::random_bytes::<12>();
                let mut out = iv.to_vec();
                out.extend(aead::aes256gcm_encrypt(&self.key, &iv, plaintext, b""));
                out
            }
        }
    }

    fn decrypt(&self, data: &[u8]) -> Option<Vec<u8>> {
        match self.cipher {
            Cipher::XChaCha20 if data.len() >= 24 => {
                aead::xchacha20_decrypt(&self.key, &data[..24], &data[24..], b"").ok()
            }
            Cipher::AesGcm if data.len() >= 12 => {
                aead::aes256gcm_decrypt(&self.key, &data[..12], &data[12..], b"").ok()
            }
            _ => None,
        }
    }
}

/// §2: `u32_le(N) ‖ blob[N] ‖ json`.
fn container(blob: &[u8], json: &Value) -> Vec<u8> {
    let mut out = (blob.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(blob);
    out.extend_from_slice(json.to_string().as_bytes());
    out
}

/// A node as the client knows it: Ed25519 hex for routing, X25519 for
/// encryption, address for the guard connection.
struct Hop {
    ed_hex: String,
    x25519: X25519Public,
    addr: NodeAddr,
}

/// §5: builds the onion for `path` (guard first) to `dest` carrying `rpc`.
/// `relay_enc` is the `enc_type` written into every routing JSON (what the
/// next node must use), `entry_enc` the one in the guard's entry JSON
/// (`None` leaves it out). Returns the guard body and the destination key.
fn build(
    cipher: Cipher,
    entry_enc: Option<&str>,
    relay_enc: &str,
    path: &[&Hop; 3],
    dest: &Hop,
    rpc: &Value,
) -> (Vec<u8>, HopKey) {
    // Destination layer.
    let c0 = container(
        rpc.to_string().as_bytes(),
        &json!({"headers": "", "json": true, "base64": false}),
    );
    let (k0, e0) = HopKey::new(cipher, &dest.x25519);
    let mut blob = k0.encrypt(&c0);
    let mut route = json!({
        "destination": dest.ed_hex,
        "ephemeral_key": hex::encode(e0),
        "enc_type": relay_enc,
    });
    // Relay layers, innermost first: hop 3, hop 2, guard.
    let mut last_e = [0u8; 32];
    for (i, hop) in path.iter().enumerate().rev() {
        let (k, e) = HopKey::new(cipher, &hop.x25519);
        blob = k.encrypt(&container(&blob, &route));
        last_e = e;
        if i > 0 {
            route = json!({
                "destination": hop.ed_hex,
                "ephemeral_key": hex::encode(e),
                "enc_type": relay_enc,
            });
        }
    }
    let mut entry = json!({"ephemeral_key": hex::encode(last_e)});
    if let Some(enc) = entry_enc {
        entry["enc_type"] = json!(enc);
    }
    (container(&blob, &entry), k0)
}

fn hops(net: &Devnet) -> Vec<Hop> {
    net.registry()
        .nodes()
        .iter()
        .map(|r| {
            let i = (0..net.len())
                .find(|&i| net.node_addr(i).key == r.ed25519)
                .unwrap();
            Hop {
                ed_hex: hex::encode(r.ed25519.as_bytes()),
                x25519: r.ed25519.to_x25519().unwrap(),
                addr: net.node_addr(i),
            }
        })
        .collect()
}

async fn post(client: &NodeClient, guard: &Hop, body: Vec<u8>) -> (u16, Vec<u8>) {
    let r = client
        .post(&guard.addr, "/onion_req/v2", body)
        .await
        .unwrap();
    (r.status.as_u16(), r.body.to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn independent_client_talks_to_our_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let net = Devnet::up(DevnetOptions {
        distinct_ips: true,
        ..DevnetOptions::in_process(4, dir.path())
    })
    .await
    .unwrap();
    let h = hops(&net);
    let path = [&h[0], &h[1], &h[2]];
    let dest = &h[3];
    let client = NodeClient::default();
    let info = json!({"method": "info", "params": {}});

    for cipher in [Cipher::XChaCha20, Cipher::AesGcm] {
        let (body, key) = build(
            cipher,
            Some(cipher.name()),
            cipher.name(),
            &path,
            dest,
            &info,
        );
        let (status, reply) = post(&client, path[0], body).await;
        assert_eq!(
            status,
            200,
            "{cipher:?}: {}",
            String::from_utf8_lossy(&reply)
        );
        // §9.3: a raw (base64: false) reply is exactly a bucket.
        assert_eq!(reply.len(), 2048, "{cipher:?}: padded to B1");
        let plain = key.decrypt(&reply).expect("reply decrypts under D's key");
        let v: Value = serde_json::from_slice(&plain).unwrap();
        assert_eq!(v["status"], 200, "{cipher:?}: {v}");
        assert!(v["body"]["t"].as_u64().unwrap() > 1_600_000_000_000);
        assert!(
            v["body"]["version"].is_array(),
            "json: true embeds the object"
        );
        // The reply does not open under any other key.
        let (other, _) = HopKey::new(cipher, &dest.x25519);
        assert!(other.decrypt(&reply).is_none());
    }

    // An absent enc_type at the entry means aes-gcm (§1).
    let (body, key) = build(Cipher::AesGcm, None, "gcm", &path, dest, &info);
    let (status, reply) = post(&client, path[0], body).await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&key.decrypt(&reply).unwrap()).unwrap();
    assert_eq!(v["status"], 200);

    // A storage RPC error comes back inside a 200 (§7.1).
    let bad =
        json!({"method": "retrieve", "params": {"pubkey": "05".to_string() + &"ab".repeat(32)}});
    let (body, key) = build(
        Cipher::XChaCha20,
        Some("xchacha20"),
        "xchacha20",
        &path,
        dest,
        &bad,
    );
    let (status, reply) = post(&client, path[0], body).await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&key.decrypt(&reply).unwrap()).unwrap();
    assert_ne!(v["status"], 200, "{v}");
    assert!(v["body"].is_string(), "error text is a string: {v}");

    // aes-cbc at the entry: 400 before anything is decrypted.
    for name in ["aes-cbc", "cbc", "rot13"] {
        let (body, _) = build(Cipher::AesGcm, Some(name), "aes-gcm", &path, dest, &info);
        let (status, text) = post(&client, path[0], body).await;
        assert_eq!(status, 400, "{name}: {}", String::from_utf8_lossy(&text));
    }
    // aes-cbc for a later hop: that hop refuses with 400, and the relays
    // pass its plaintext status back unchanged (§6.2, §7.3).
    let (body, key) = build(
        Cipher::XChaCha20,
        Some("xchacha20"),
        "aes-cbc",
        &path,
        dest,
        &info,
    );
    let (status, text) = post(&client, path[0], body).await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&text));
    assert!(key.decrypt(&text).is_none(), "relay errors are plaintext");

    // A tampered guard layer: 400 "Invalid ciphertext" (§3).
    let (mut body, _) = build(
        Cipher::XChaCha20,
        Some("xchacha20"),
        "xchacha20",
        &path,
        dest,
        &info,
    );
    body[40] ^= 1;
    let (status, text) = post(&client, path[0], body).await;
    assert_eq!(status, 400);
    assert!(
        String::from_utf8_lossy(&text).contains("Invalid ciphertext"),
        "{}",
        String::from_utf8_lossy(&text)
    );
    net.down().await;
}
