//! The crate's error type.

/// What went wrong in a cryptographic operation.
///
/// Variants name the check that failed, never secret material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// A key, nonce or tag had the wrong number of bytes.
    #[error("{what} must be {expected} bytes, got {got}")]
    BadLength {
        /// What was being parsed.
        what: &'static str,
        /// The required length.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// An Ed25519 public key is not a valid prime-order curve point.
    #[error("invalid Ed25519 public key: {0}")]
    InvalidEd25519Key(&'static str),
    /// An X25519 public key has no Ed25519 counterpart.
    #[error("invalid X25519 public key")]
    InvalidX25519Key,
    /// An Ed25519 signature did not verify.
    #[error("Ed25519 signature verification failed")]
    BadSignature,
    /// A Diffie-Hellman exchange produced the all-zero shared secret.
    #[error("X25519 produced an all-zero shared secret (small-order public key)")]
    WeakSharedSecret,
    /// Authenticated decryption failed: wrong key, wrong nonce or tampered data.
    #[error("decryption failed: wrong key or tampered ciphertext")]
    DecryptFailed,
    /// A ciphertext is shorter than its fixed overhead.
    #[error("ciphertext too short: {got} bytes, need at least {min}")]
    TooShort {
        /// The minimum length.
        min: usize,
        /// The length given.
        got: usize,
    },
    /// A BLAKE2b parameter is out of range.
    #[error("invalid BLAKE2b parameter: {0}")]
    Blake2bParam(&'static str),
}

/// Converts a slice into a fixed-size array, naming the field on error.
pub(crate) fn to_array<const N: usize>(
    what: &'static str,
    b: &[u8],
) -> Result<[u8; N], CryptoError> {
    b.try_into().map_err(|_| CryptoError::BadLength {
        what,
        expected: N,
        got: b.len(),
    })
}
