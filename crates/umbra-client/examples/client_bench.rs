//! The client's send and sync paths, without the network:
//! send = encrypt (pad, sign, sealed box, Envelope) + build the 4-layer
//! onion for the `store` request; sync = decrypt N stored messages.
//! Each is reported next to the raw crypto it cannot avoid, measured in the
//! same run (Ed25519 sign + sealed box; unseal + verify).
//!
//! `cargo run --release -p umbra-client --example client_bench [N]`

use std::time::Instant;

use base64::Engine;
use umbra_crypto::sealed;
use umbra_proto::identity::AccountKeys;
use umbra_proto::message::protos::DataMessage;
use umbra_proto::message::{Content, open_envelope, seal_content};
use umbra_proto::onion::{
    EncType, LayerRandom, NodeRequestOptions, OnionDestination, PathNode, build_padded_onion,
};

fn per_op(n: usize, f: impl FnMut(usize)) -> f64 {
    let mut f = f;
    let t = Instant::now();
    for i in 0..n {
        f(i);
    }
    t.elapsed().as_secs_f64() * 1e6 / n as f64
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let alice = AccountKeys::from_seed(&[1; 32]);
    let bob = AccountKeys::from_seed(&[2; 32]);
    let text = "x".repeat(100);
    let content = Content {
        data_message: Some(DataMessage {
            body: Some(text.clone()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let hops: Vec<PathNode> = (3..7u8)
        .map(|i| {
            let k = AccountKeys::from_seed(&[i; 32]);
            PathNode {
                ed25519: k.ed25519_public().to_bytes(),
                x25519: k.x25519_public(),
            }
        })
        .collect();
    let dest = OnionDestination::Node {
        node: hops[3],
        options: NodeRequestOptions::default(),
    };

    // Raw bound of the send path: one signature and one sealed box of the padded size.
    let padded = vec![0u8; 320];
    let raw_send = per_op(n, |i| {
        let sig = alice.ed25519().sign(&padded);
        let _ = sealed::seal(
            &[&padded[..], &sig].concat(),
            &bob.x25519_public(),
            [i as u8; 32],
        );
    });
    let encrypt = per_op(n, |i| {
        let _ = seal_content(
            &alice,
            &bob.account_id(),
            &content,
            1_700_000_000_000 + i as u64,
            [7; 32],
        );
    });
    let blob = seal_content(
        &alice,
        &bob.account_id(),
        &content,
        1_700_000_000_000,
        [7; 32],
    )
    .expect("seal");
    let request = serde_json::json!({"method": "store", "params": {
        "pubkey": bob.account_id().to_string(), "timestamp": 1_700_000_000_000u64, "ttl": 1_209_600_000u64,
        "data": base64::engine::general_purpose::STANDARD.encode(&blob)}})
    .to_string();
    let onion = per_op(n, |_| {
        let random: Vec<LayerRandom> = (0..4)
            .map(|j| LayerRandom::new([j as u8 + 1; 32], [j as u8; 24]))
            .collect();
        let _ = build_padded_onion(
            EncType::XChaCha20,
            request.as_bytes(),
            &hops[..3],
            &dest,
            &random,
        );
    });
    // Raw bound of one onion layer: X25519 + key hash + AEAD over the layer.
    let layer = vec![0u8; 2048];
    let raw_layer = per_op(n, |i| {
        let e = umbra_crypto::X25519Secret::from_bytes([i as u8 | 1; 32]);
        let shared = e.diffie_hellman(&hops[0].x25519).expect("dh");
        let key = umbra_crypto::hash::blake2b_fixed::<32>(&[
            shared.as_bytes(),
            e.public().as_bytes(),
            hops[0].x25519.as_bytes(),
        ]);
        let _ = umbra_crypto::aead::xchacha20_encrypt(&key, &[0; 24], &layer, b"");
    });

    let blobs: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            seal_content(
                &alice,
                &bob.account_id(),
                &content,
                1_700_000_000_000 + i as u64,
                [i as u8; 32],
            )
            .expect("seal")
        })
        .collect();
    let sig = alice.ed25519().sign(&padded);
    let raw_cts: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            sealed::seal(
                &[&padded[..], &sig].concat(),
                &bob.x25519_public(),
                [i as u8; 32],
            )
            .expect("seal")
        })
        .collect();
    let raw_recv = per_op(n, |i| {
        let inner = sealed::unseal(&raw_cts[i], bob.x25519_secret()).expect("unseal");
        alice
            .ed25519_public()
            .verify(&inner[..320], &inner[320..])
            .expect("verify");
    });
    let decrypt = per_op(n, |i| {
        let _ = open_envelope(&bob, &blobs[i]).expect("opens");
    });

    println!(
        "client send/sync paths, {n} messages of {} bytes of text",
        text.len()
    );
    println!("  {:<44} {:>9}", "step", "µs/msg");
    println!(
        "  {:<44} {:>9.1}",
        "raw: Ed25519 sign + sealed box (320 B)", raw_send
    );
    println!(
        "  {:<44} {:>9.1}   ({:.2}× raw)",
        "encrypt: seal_content",
        encrypt,
        encrypt / raw_send
    );
    println!(
        "  {:<44} {:>9.1}",
        "raw: one onion layer (X25519+BLAKE2b+AEAD 2 KiB)", raw_layer
    );
    println!(
        "  {:<44} {:>9.1}   ({:.2}× 4 raw layers)",
        "onion build: 4 layers, padded",
        onion,
        onion / (4.0 * raw_layer)
    );
    println!("  {:<44} {:>9.1}", "send path total", encrypt + onion);
    println!("  {:<44} {:>9.1}", "raw: unseal + Ed25519 verify", raw_recv);
    println!(
        "  {:<44} {:>9.1}   ({:.2}× raw)",
        "sync: open_envelope (decrypt+verify+parse)",
        decrypt,
        decrypt / raw_recv
    );
    println!(
        "  sync throughput: {:.0} messages/s on one core",
        1e6 / decrypt
    );
}
