//! The `crypto` row: per-core costs of the primitives everything else is
//! built from, measured on this machine in this run by the calling thread's
//! CPU time (`umbra-crypto`, the only crate that uses primitive crypto
//! crates). These are the bounds the other rows are compared with.
//!
//! Sizes: Ed25519 signs and verifies 64 bytes (a signed request's payload is
//! short); the sealed box carries 320 bytes (a padded one-line message plus
//! its signature, `messages.md` §5); the AEADs and BLAKE2b-256 process 1 KiB
//! buffers, so their "per KiB" includes the per-call cost a 1 KiB message
//! pays.

use std::time::Duration;

use umbra_crypto::hash::blake2b_fixed;
use umbra_crypto::{Ed25519Keypair, X25519Secret, aead, sealed};

use crate::measure::CpuTimer;
use crate::table::{Row, num};

/// How long each primitive runs.
#[derive(Debug, Clone, Copy)]
pub struct CryptoOpts {
    /// CPU time spent on each primitive (at least one call is made).
    pub budget: Duration,
}

impl CryptoOpts {
    /// The full run (0.5 s of CPU per primitive) or the quick one (60 ms).
    pub fn new(quick: bool) -> Self {
        CryptoOpts {
            budget: Duration::from_millis(if quick { 60 } else { 500 }),
        }
    }
}

/// Mean CPU cost of each primitive.
#[derive(Debug, Clone, Copy)]
pub struct CryptoFigures {
    /// One X25519 Diffie–Hellman.
    pub x25519: Duration,
    /// Ed25519 signature of 64 bytes.
    pub ed25519_sign: Duration,
    /// Ed25519 verification of 64 bytes.
    pub ed25519_verify: Duration,
    /// Sealed box of 320 bytes.
    pub seal: Duration,
    /// Opening that sealed box.
    pub unseal: Duration,
    /// XChaCha20-Poly1305 encryption of 1 KiB.
    pub xchacha_kib: Duration,
    /// AES-256-GCM encryption of 1 KiB.
    pub aes_gcm_kib: Duration,
    /// BLAKE2b-256 of 1 KiB.
    pub blake2b_kib: Duration,
}

/// Runs `f` in growing batches until `budget` of this thread's CPU time is
/// spent; the mean CPU time of one call.
pub fn cost(budget: Duration, mut f: impl FnMut(usize)) -> Duration {
    let t = CpuTimer::start();
    let mut calls = 0usize;
    let mut batch = 1usize;
    loop {
        for _ in 0..batch {
            f(calls);
            calls += 1;
        }
        let spent = t.elapsed();
        if spent >= budget {
            return spent / u32::try_from(calls).unwrap_or(u32::MAX);
        }
        batch = (batch * 2).min(1 << 16);
    }
}

/// Measures every primitive.
pub fn measure(opts: CryptoOpts) -> anyhow::Result<CryptoFigures> {
    let b = opts.budget;
    let alice = Ed25519Keypair::from_seed(&[1; 32]);
    let bob = Ed25519Keypair::from_seed(&[2; 32]);
    let bob_x = bob.x25519_public();
    let bob_xs = bob.x25519_secret();
    let e = X25519Secret::from_bytes([3; 32]);
    // Any failure of a primitive fails the run (checked once, outside the loop).
    e.diffie_hellman(&bob_x)?;
    let x25519 = cost(b, |_| {
        let _ = std::hint::black_box(e.diffie_hellman(std::hint::black_box(&bob_x)));
    });

    let msg64 = [7u8; 64];
    let ed25519_sign = cost(b, |_| {
        std::hint::black_box(alice.sign(std::hint::black_box(&msg64)));
    });
    let sig = alice.sign(&msg64);
    let alice_pub = alice.public();
    alice_pub.verify(&msg64, &sig)?;
    let ed25519_verify = cost(b, |_| {
        let _ = std::hint::black_box(alice_pub.verify(&msg64, &sig));
    });

    let msg320 = [9u8; 320];
    let boxed = sealed::seal(&msg320, &bob_x, [4; 32])?;
    sealed::unseal(&boxed, &bob_xs)?;
    let seal = cost(b, |i| {
        let mut eph = [4u8; 32];
        eph[..8].copy_from_slice(&(i as u64).to_le_bytes());
        let _ = std::hint::black_box(sealed::seal(&msg320, &bob_x, eph));
    });
    let unseal = cost(b, |_| {
        let _ = std::hint::black_box(sealed::unseal(&boxed, &bob_xs));
    });

    let kib = [0x42u8; 1024];
    let key = [5u8; 32];
    let xchacha_kib = cost(b, |i| {
        let mut nonce = [0u8; 24];
        nonce[..8].copy_from_slice(&(i as u64).to_le_bytes());
        std::hint::black_box(aead::xchacha20_encrypt(&key, &nonce, &kib, b""));
    });
    let aes_gcm_kib = cost(b, |i| {
        let mut iv = [0u8; 12];
        iv[..8].copy_from_slice(&(i as u64).to_le_bytes());
        std::hint::black_box(aead::aes256gcm_encrypt(&key, &iv, &kib, b""));
    });
    let blake2b_kib = cost(b, |_| {
        std::hint::black_box(blake2b_fixed::<32>(&[std::hint::black_box(&kib)]));
    });
    Ok(CryptoFigures {
        x25519,
        ed25519_sign,
        ed25519_verify,
        seal,
        unseal,
        xchacha_kib,
        aes_gcm_kib,
        blake2b_kib,
    })
}

/// Microseconds of `d`.
pub fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Operations per second of one core at `d` per operation.
pub fn per_sec(d: Duration) -> f64 {
    if d.is_zero() {
        0.0
    } else {
        1.0 / d.as_secs_f64()
    }
}

/// The table rows of `f`.
pub fn rows(f: &CryptoFigures) -> Vec<Row> {
    let op = |what: &str, d: Duration| {
        Row::new(
            "crypto",
            what,
            format!("{} µs/op", num(us(d), 2)),
            format!("{} op/s per core", num(per_sec(d), 0)),
        )
    };
    let kib = |what: &str, d: Duration| {
        Row::new(
            "crypto",
            what,
            format!("{} µs/KiB", num(us(d), 3)),
            format!("{} MiB/s per core", num(per_sec(d) / 1024.0, 0)),
        )
    };
    vec![
        op("X25519 Diffie-Hellman", f.x25519),
        op("Ed25519 sign (64 B)", f.ed25519_sign),
        op("Ed25519 verify (64 B)", f.ed25519_verify),
        op("sealed box seal (320 B)", f.seal),
        op("sealed box open (320 B)", f.unseal),
        kib("XChaCha20-Poly1305 encrypt, 1 KiB", f.xchacha_kib),
        kib("AES-256-GCM encrypt, 1 KiB", f.aes_gcm_kib),
        kib("BLAKE2b-256, 1 KiB", f.blake2b_kib),
    ]
}
