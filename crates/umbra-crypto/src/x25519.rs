//! X25519 keys and Diffie-Hellman (RFC 7748). An all-zero shared secret is an
//! error, as in libsodium's `crypto_scalarmult`.

use zeroize::{Zeroize, Zeroizing};

use crate::CryptoError;
use crate::error::to_array;

/// An X25519 secret key. Zeroized on drop.
#[derive(Clone)]
pub struct X25519Secret(x25519_dalek::StaticSecret);

impl std::fmt::Debug for X25519Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("X25519Secret").finish_non_exhaustive()
    }
}

impl X25519Secret {
    /// Wraps 32 secret bytes (clamping happens inside the scalar multiplication).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(x25519_dalek::StaticSecret::from(bytes))
    }

    /// Wraps a slice, which must be 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        let b = Zeroizing::new(to_array::<32>("X25519 secret key", bytes)?);
        Ok(Self::from_bytes(*b))
    }

    /// The secret bytes as given.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The public key `k · 9`.
    pub fn public(&self) -> X25519Public {
        X25519Public(x25519_dalek::PublicKey::from(&self.0).to_bytes())
    }

    /// X25519 with a peer's public key. Fails on the all-zero result, which
    /// only a small-order public key can produce.
    pub fn diffie_hellman(&self, peer: &X25519Public) -> Result<SharedSecret, CryptoError> {
        let shared = self
            .0
            .diffie_hellman(&x25519_dalek::PublicKey::from(peer.0));
        if !shared.was_contributory() {
            return Err(CryptoError::WeakSharedSecret);
        }
        Ok(SharedSecret(shared.to_bytes()))
    }
}

/// An X25519 shared secret. Zeroized on drop.
pub struct SharedSecret([u8; 32]);

impl SharedSecret {
    /// The 32 secret bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl Drop for SharedSecret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// An X25519 public key (32 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct X25519Public([u8; 32]);

impl std::fmt::Debug for X25519Public {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "X25519Public({:02x}{:02x}{:02x}{:02x}…)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

impl X25519Public {
    /// Wraps 32 bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Wraps a slice, which must be 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        Ok(Self(to_array("X25519 public key", bytes)?))
    }

    /// The key bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key bytes, by value.
    pub const fn to_bytes(self) -> [u8; 32] {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dh_agrees() {
        let a = X25519Secret::from_bytes([1; 32]);
        let b = X25519Secret::from_bytes([2; 32]);
        let ab = a.diffie_hellman(&b.public()).unwrap();
        let ba = b.diffie_hellman(&a.public()).unwrap();
        assert_eq!(ab.as_bytes(), ba.as_bytes());
    }

    #[test]
    fn zero_point_refused() {
        let a = X25519Secret::from_bytes([1; 32]);
        assert!(matches!(
            a.diffie_hellman(&X25519Public::from_bytes([0; 32])),
            Err(CryptoError::WeakSharedSecret)
        ));
    }
}
