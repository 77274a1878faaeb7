//! Umbra's cryptographic primitives.
//!
//! This crate is the single place where primitive crypto crates are used
//! (`ed25519-dalek`, `curve25519-dalek`, `x25519-dalek`, XSalsa20-Poly1305,
//! XChaCha20-Poly1305, AES-256-GCM, BLAKE2b, SHA-2, HMAC). Everything above it
//! works with the typed keys and functions exported here. Secrets are
//! zeroized on drop and never printed by `Debug`.
//!
//! The crate does no I/O and reads no clock. The one exception to "no
//! randomness" is [`random_bytes`], the OS CSPRNG entry point, which pure
//! protocol crates never call: they take random bytes as parameters.
#![warn(missing_docs)]

pub mod aead;
pub mod ed25519;
mod error;
pub mod hash;
pub mod kdf;
pub mod pkcs8;
pub mod sealed;
pub mod secretstream;
pub mod x25519;

pub use ed25519::{Ed25519Keypair, Ed25519Public, Ed25519Signature};
pub use error::CryptoError;
pub use x25519::{SharedSecret, X25519Public, X25519Secret};

/// Fills a fixed-size array from the operating system CSPRNG.
///
/// Only I/O layers (client, node, CLI) call this; protocol code takes the
/// bytes as an argument so it stays deterministic under test.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    // getrandom only fails when the OS has no entropy source at all, which
    // makes every secret this program could create unsafe; stopping is right.
    getrandom::fill(&mut out).expect("the OS random number generator is unavailable");
    out
}

/// Compares two byte strings in constant time (for MACs and tokens).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}
