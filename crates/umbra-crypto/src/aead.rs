//! Symmetric authenticated encryption: XChaCha20-Poly1305 (IETF, 24-byte
//! nonce) and AES-256-GCM (12-byte IV), both with 16-byte tags appended to
//! the ciphertext, and NaCl's XSalsa20-Poly1305 secretbox (tag first).

use aes_gcm::Aes256Gcm;
use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};

use crate::CryptoError;
use crate::error::to_array;

/// Length of the authentication tag of every AEAD here.
pub const TAG_LEN: usize = 16;
/// XChaCha20-Poly1305 nonce length.
pub const XCHACHA_NONCE_LEN: usize = 24;
/// AES-GCM IV length.
pub const GCM_IV_LEN: usize = 12;

/// XChaCha20-Poly1305 encryption: returns `ciphertext ‖ tag`.
pub fn xchacha20_encrypt(key: &[u8; 32], nonce: &[u8; 24], msg: &[u8], aad: &[u8]) -> Vec<u8> {
    XChaCha20Poly1305::new(key.into())
        .encrypt(nonce.into(), Payload { msg, aad })
        .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory buffers")
}

/// XChaCha20-Poly1305 decryption of `ciphertext ‖ tag`.
pub fn xchacha20_decrypt(
    key: &[u8; 32],
    nonce: &[u8],
    ct: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let nonce: [u8; 24] = to_array("XChaCha20 nonce", nonce)?;
    if ct.len() < TAG_LEN {
        return Err(CryptoError::TooShort {
            min: TAG_LEN,
            got: ct.len(),
        });
    }
    XChaCha20Poly1305::new(key.into())
        .decrypt((&nonce).into(), Payload { msg: ct, aad })
        .map_err(|_| CryptoError::DecryptFailed)
}

/// AES-256-GCM encryption: returns `ciphertext ‖ tag`.
pub fn aes256gcm_encrypt(key: &[u8; 32], iv: &[u8; 12], msg: &[u8], aad: &[u8]) -> Vec<u8> {
    Aes256Gcm::new(key.into())
        .encrypt(iv.into(), Payload { msg, aad })
        .expect("AES-GCM encryption cannot fail for in-memory buffers")
}

/// AES-256-GCM decryption of `ciphertext ‖ tag`.
pub fn aes256gcm_decrypt(
    key: &[u8; 32],
    iv: &[u8],
    ct: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let iv: [u8; 12] = to_array("AES-GCM IV", iv)?;
    if ct.len() < TAG_LEN {
        return Err(CryptoError::TooShort {
            min: TAG_LEN,
            got: ct.len(),
        });
    }
    Aes256Gcm::new(key.into())
        .decrypt((&iv).into(), Payload { msg: ct, aad })
        .map_err(|_| CryptoError::DecryptFailed)
}

/// NaCl `crypto_secretbox_easy` (XSalsa20-Poly1305): returns `tag ‖ ciphertext`.
pub fn secretbox_encrypt(key: &[u8; 32], nonce: &[u8; 24], msg: &[u8]) -> Vec<u8> {
    crypto_secretbox::XSalsa20Poly1305::new(key.into())
        .encrypt(nonce.into(), msg)
        .expect("XSalsa20-Poly1305 encryption cannot fail for in-memory buffers")
}

/// NaCl `crypto_secretbox_open_easy` of `tag ‖ ciphertext`.
pub fn secretbox_decrypt(
    key: &[u8; 32],
    nonce: &[u8; 24],
    ct: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    if ct.len() < TAG_LEN {
        return Err(CryptoError::TooShort {
            min: TAG_LEN,
            got: ct.len(),
        });
    }
    crypto_secretbox::XSalsa20Poly1305::new(key.into())
        .decrypt(nonce.into(), ct)
        .map_err(|_| CryptoError::DecryptFailed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_tamper() {
        let k = [9u8; 32];
        let ct = xchacha20_encrypt(&k, &[1; 24], b"msg", b"");
        assert_eq!(xchacha20_decrypt(&k, &[1; 24], &ct, b"").unwrap(), b"msg");
        let mut bad = ct.clone();
        bad[0] ^= 1;
        assert_eq!(
            xchacha20_decrypt(&k, &[1; 24], &bad, b""),
            Err(CryptoError::DecryptFailed)
        );
        assert!(xchacha20_decrypt(&k, &[1; 24], &ct[..10], b"").is_err());

        let ct = aes256gcm_encrypt(&k, &[2; 12], b"msg", b"");
        assert_eq!(aes256gcm_decrypt(&k, &[2; 12], &ct, b"").unwrap(), b"msg");
        assert!(aes256gcm_decrypt(&k, &[3; 12], &ct, b"").is_err());

        let ct = secretbox_encrypt(&k, &[4; 24], b"msg");
        assert_eq!(secretbox_decrypt(&k, &[4; 24], &ct).unwrap(), b"msg");
        assert!(secretbox_decrypt(&k, &[5; 24], &ct).is_err());
    }
}
