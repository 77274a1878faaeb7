//! NaCl `crypto_box` and libsodium sealed boxes.
//!
//! `crypto_box`: key = HSalsa20(X25519(e, Y), 0¹⁶); XSalsa20-Poly1305 with a
//! 24-byte nonce; output `tag ‖ ciphertext`.
//!
//! Sealed box: ephemeral `(e, E)`; nonce = BLAKE2b-192(E ‖ Y); output
//! `E ‖ crypto_box(m, nonce, Y, e)` (48 bytes of overhead). The ephemeral
//! secret is a parameter so that the construction is deterministic under test.

use salsa20::cipher::consts::U10;
use zeroize::Zeroizing;

use crate::aead::{secretbox_decrypt, secretbox_encrypt};
use crate::hash::blake2b_fixed;
use crate::{CryptoError, X25519Public, X25519Secret};

/// Bytes a sealed box adds to its message.
pub const SEAL_OVERHEAD: usize = 32 + 16;

/// The crypto_box shared key: HSalsa20 of the X25519 shared secret.
fn box_key(
    my_secret: &X25519Secret,
    their_public: &X25519Public,
) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    let shared = my_secret.diffie_hellman(their_public)?;
    let key = salsa20::hsalsa::<U10>(shared.as_bytes().into(), &Default::default());
    Ok(Zeroizing::new(key.into()))
}

/// `crypto_box_easy`: encrypts `msg` from `my_secret` to `their_public`.
pub fn box_encrypt(
    msg: &[u8],
    nonce: &[u8; 24],
    their_public: &X25519Public,
    my_secret: &X25519Secret,
) -> Result<Vec<u8>, CryptoError> {
    let key = box_key(my_secret, their_public)?;
    Ok(secretbox_encrypt(&key, nonce, msg))
}

/// `crypto_box_open_easy`.
pub fn box_decrypt(
    ct: &[u8],
    nonce: &[u8; 24],
    their_public: &X25519Public,
    my_secret: &X25519Secret,
) -> Result<Vec<u8>, CryptoError> {
    let key = box_key(my_secret, their_public)?;
    secretbox_decrypt(&key, nonce, ct)
}

fn seal_nonce(ephemeral: &X25519Public, recipient: &X25519Public) -> [u8; 24] {
    blake2b_fixed::<24>(&[ephemeral.as_bytes(), recipient.as_bytes()])
}

/// `crypto_box_seal` with the given ephemeral secret (32 random bytes in
/// production; fixed bytes in test vectors).
pub fn seal(
    msg: &[u8],
    recipient: &X25519Public,
    ephemeral_secret: [u8; 32],
) -> Result<Vec<u8>, CryptoError> {
    let e = X25519Secret::from_bytes(ephemeral_secret);
    let big_e = e.public();
    let nonce = seal_nonce(&big_e, recipient);
    let boxed = box_encrypt(msg, &nonce, recipient, &e)?;
    let mut out = Vec::with_capacity(32 + boxed.len());
    out.extend_from_slice(big_e.as_bytes());
    out.extend_from_slice(&boxed);
    Ok(out)
}

/// `crypto_box_seal_open`.
pub fn unseal(ct: &[u8], recipient: &X25519Secret) -> Result<Vec<u8>, CryptoError> {
    if ct.len() < SEAL_OVERHEAD {
        return Err(CryptoError::TooShort {
            min: SEAL_OVERHEAD,
            got: ct.len(),
        });
    }
    let big_e = X25519Public::from_slice(&ct[..32])?;
    let nonce = seal_nonce(&big_e, &recipient.public());
    box_decrypt(&ct[32..], &nonce, &big_e, recipient)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn seal_round_trip(msg in proptest::collection::vec(any::<u8>(), 0..300), r in any::<[u8; 32]>(), e in any::<[u8; 32]>()) {
            let rk = X25519Secret::from_bytes(r);
            let ct = seal(&msg, &rk.public(), e).unwrap();
            prop_assert_eq!(ct.len(), msg.len() + SEAL_OVERHEAD);
            prop_assert_eq!(unseal(&ct, &rk).unwrap(), msg);
        }
    }

    #[test]
    fn wrong_key_and_truncation() {
        let rk = X25519Secret::from_bytes([5; 32]);
        let other = X25519Secret::from_bytes([6; 32]);
        let ct = seal(b"hi", &rk.public(), [7; 32]).unwrap();
        assert_eq!(unseal(&ct, &other), Err(CryptoError::DecryptFailed));
        assert!(matches!(
            unseal(&ct[..40], &rk),
            Err(CryptoError::TooShort { .. })
        ));
    }
}
