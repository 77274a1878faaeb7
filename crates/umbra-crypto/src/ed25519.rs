//! Ed25519 keys and signatures (RFC 8032), and the Ed25519 → X25519 maps of
//! `shared/spec/identity.md` §1.1.
//!
//! A keypair is built from its 32-byte seed, which is the account secret. The
//! X25519 secret of an account is `clamp(SHA-512(seed)[0..32])`; the X25519
//! public key is the Montgomery form of the Ed25519 public key. Conversion of
//! a peer's public key fails for non-canonical encodings, small-order points
//! and points outside the prime-order subgroup, as libsodium does.

use curve25519_dalek::edwards::CompressedEdwardsY;
use curve25519_dalek::montgomery::MontgomeryPoint;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha512};
use zeroize::Zeroizing;

use crate::CryptoError;
use crate::error::to_array;
use crate::x25519::{X25519Public, X25519Secret};

/// An Ed25519 signature (64 bytes).
pub type Ed25519Signature = [u8; 64];

/// An Ed25519 keypair made from a 32-byte seed. The seed is zeroized on drop.
#[derive(Clone)]
pub struct Ed25519Keypair {
    signing: SigningKey,
}

impl std::fmt::Debug for Ed25519Keypair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ed25519Keypair").finish_non_exhaustive()
    }
}

impl Ed25519Keypair {
    /// Builds the keypair of a 32-byte seed (libsodium `crypto_sign_seed_keypair`).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self {
            signing: SigningKey::from_bytes(seed),
        }
    }

    /// Builds the keypair from a seed slice, which must be 32 bytes.
    pub fn from_seed_slice(seed: &[u8]) -> Result<Self, CryptoError> {
        let seed = Zeroizing::new(to_array::<32>("Ed25519 seed", seed)?);
        Ok(Self::from_seed(&seed))
    }

    /// The 32-byte seed. Handle with care: it is the account secret.
    pub fn seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.signing.to_bytes())
    }

    /// The public key.
    pub fn public(&self) -> Ed25519Public {
        Ed25519Public(self.signing.verifying_key().to_bytes())
    }

    /// Signs `msg` deterministically.
    pub fn sign(&self, msg: &[u8]) -> Ed25519Signature {
        self.signing.sign(msg).to_bytes()
    }

    /// The X25519 secret of this account: `clamp(SHA-512(seed)[0..32])`.
    pub fn x25519_secret(&self) -> X25519Secret {
        let h = Zeroizing::new(Sha512::digest(self.signing.as_bytes()));
        let mut x = Zeroizing::new([0u8; 32]);
        x.copy_from_slice(&h[..32]);
        x[0] &= 248;
        x[31] &= 127;
        x[31] |= 64;
        X25519Secret::from_bytes(*x)
    }

    /// The X25519 public key of this account (Montgomery form of the Ed25519 key).
    pub fn x25519_public(&self) -> X25519Public {
        X25519Public::from_bytes(self.signing.verifying_key().to_montgomery().to_bytes())
    }
}

/// An Ed25519 public key (32 bytes, not yet validated as a curve point).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ed25519Public([u8; 32]);

impl std::fmt::Debug for Ed25519Public {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Ed25519Public({:02x}{:02x}{:02x}{:02x}…)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

impl Ed25519Public {
    /// Wraps 32 bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Wraps a slice, which must be 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        Ok(Self(to_array("Ed25519 public key", bytes)?))
    }

    /// The key bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key bytes, by value.
    pub const fn to_bytes(self) -> [u8; 32] {
        self.0
    }

    /// Verifies `sig` over `msg` with strict RFC 8032 rules (canonical `S`,
    /// no small-order keys), as libsodium's `crypto_sign_verify_detached`.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), CryptoError> {
        let sig: [u8; 64] = to_array("Ed25519 signature", sig)?;
        let vk = VerifyingKey::from_bytes(&self.0).map_err(|_| CryptoError::BadSignature)?;
        vk.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(&sig))
            .map_err(|_| CryptoError::BadSignature)
    }

    /// Checks that the key is a canonical encoding of a prime-order point
    /// that is not of small order (the vectors README's "valid point").
    pub fn validate(&self) -> Result<curve25519_dalek::EdwardsPoint, CryptoError> {
        let point = CompressedEdwardsY(self.0)
            .decompress()
            .ok_or(CryptoError::InvalidEd25519Key("not a curve point"))?;
        if point.compress().to_bytes() != self.0 {
            return Err(CryptoError::InvalidEd25519Key("non-canonical encoding"));
        }
        if point.is_small_order() {
            return Err(CryptoError::InvalidEd25519Key("small-order point"));
        }
        if !point.is_torsion_free() {
            return Err(CryptoError::InvalidEd25519Key(
                "not in the prime-order subgroup",
            ));
        }
        Ok(point)
    }

    /// Converts to the X25519 public key (`u = (1 + y)/(1 − y)`), refusing
    /// keys that are not valid points.
    pub fn to_x25519(&self) -> Result<X25519Public, CryptoError> {
        let point = self.validate()?;
        Ok(X25519Public::from_bytes(point.to_montgomery().to_bytes()))
    }
}

/// Maps an X25519 public key to the Ed25519 key with sign bit 0
/// (`y = (u − 1)/(u + 1)`). The top bit of `u` is ignored. Fails when `u`
/// does not correspond to a point on the curve.
pub fn x25519_to_ed25519(x: &X25519Public) -> Result<Ed25519Public, CryptoError> {
    let mut u = *x.as_bytes();
    u[31] &= 0x7f;
    let point = MontgomeryPoint(u)
        .to_edwards(0)
        .ok_or(CryptoError::InvalidX25519Key)?;
    Ok(Ed25519Public(point.compress().to_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x25519_secret_matches_public() {
        let kp = Ed25519Keypair::from_seed(&[7u8; 32]);
        assert_eq!(kp.x25519_secret().public(), kp.x25519_public());
    }

    #[test]
    fn sign_verify_and_tamper() {
        let kp = Ed25519Keypair::from_seed(&[1u8; 32]);
        let sig = kp.sign(b"hello");
        kp.public().verify(b"hello", &sig).unwrap();
        assert_eq!(
            kp.public().verify(b"hellp", &sig),
            Err(CryptoError::BadSignature)
        );
        assert!(kp.public().verify(b"hello", &sig[..63]).is_err());
    }

    #[test]
    fn round_trip_through_x25519() {
        let kp = Ed25519Keypair::from_seed(&[3u8; 32]);
        let x = kp.public().to_x25519().unwrap();
        let back = x25519_to_ed25519(&x).unwrap();
        // Equal up to the sign bit.
        assert_eq!(back.as_bytes()[..31], kp.public().as_bytes()[..31]);
        assert_eq!(
            back.as_bytes()[31] & 0x7f,
            kp.public().as_bytes()[31] & 0x7f
        );
    }

    #[test]
    fn small_order_key_refused() {
        let mut identity = [0u8; 32];
        identity[0] = 1; // the neutral element, y = 1
        assert!(Ed25519Public::from_bytes(identity).to_x25519().is_err());
    }
}
