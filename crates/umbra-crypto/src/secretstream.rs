//! Attachment ciphers (spec `attachments.md` §2 and §3): libsodium's
//! `crypto_secretstream_xchacha20poly1305` ([`SecretStream`], the
//! deterministic attachment scheme) and AES-256-CBC with PKCS#7 padding
//! ([`aes256_cbc_encrypt`], [`aes256_cbc_decrypt`], the legacy Signal
//! attachment scheme).
//!
//! The secretstream is built from ChaCha20 (RFC 8439), HChaCha20 and
//! Poly1305 exactly as libsodium does it, including its MAC padding of
//! `len(c) mod 16` zero bytes (see `test-vectors/README.md`, "Stream").

use aes::Aes256;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut};
use chacha20::ChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use poly1305::Poly1305;
use poly1305::universal_hash::KeyInit;
use zeroize::{Zeroize, Zeroizing};

use crate::CryptoError;

/// Length of a secretstream header.
pub const HEADER_BYTES: usize = 24;
/// Bytes a secretstream message adds to its plaintext (tag byte + MAC).
pub const ABYTES: usize = 17;
/// Tag of an ordinary message.
pub const TAG_MESSAGE: u8 = 0x00;
/// Tag marking the end of a set of messages.
pub const TAG_PUSH: u8 = 0x01;
/// Tag that forces a rekey after the message.
pub const TAG_REKEY: u8 = 0x02;
/// Tag of the last message of a stream (`TAG_PUSH | TAG_REKEY`).
pub const TAG_FINAL: u8 = 0x03;
/// AES block and IV length.
pub const AES_BLOCK: usize = 16;

const MAC_BYTES: usize = 16;
const INONCE_BYTES: usize = 8;

/// One direction of a `crypto_secretstream_xchacha20poly1305` stream: the
/// subkey, the 32-bit counter and the 8-byte inner nonce. Push and pull use
/// the same state machine; the key is zeroized on drop.
pub struct SecretStream {
    key: Zeroizing<[u8; 32]>,
    /// `u32_le(counter) ‖ inonce`.
    nonce: [u8; 12],
}

impl std::fmt::Debug for SecretStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretStream").finish_non_exhaustive()
    }
}

impl SecretStream {
    /// `init_push` / `init_pull` with a given header:
    /// `k = HChaCha20(key, header[0..16])`, counter 1, inonce
    /// `header[16..24]`.
    pub fn init(key: &[u8; 32], header: &[u8; HEADER_BYTES]) -> Self {
        let (h16, inonce) = header.split_at(16);
        let mut k = chacha20::hchacha::<chacha20::cipher::consts::U10>(
            key.into(),
            chacha20::cipher::generic_array::GenericArray::from_slice(h16),
        );
        let mut subkey = Zeroizing::new([0u8; 32]);
        subkey.copy_from_slice(&k);
        k.as_mut_slice().zeroize();
        let mut nonce = [0u8; 12];
        nonce[..4].copy_from_slice(&1u32.to_le_bytes());
        nonce[4..].copy_from_slice(inonce);
        SecretStream { key: subkey, nonce }
    }

    fn cipher(&self) -> ChaCha20 {
        ChaCha20::new((&*self.key).into(), (&self.nonce).into())
    }

    /// Poly1305 key (block 0) and the tag block (block 1 XOR `tag`).
    fn mac_key_and_block(&self, first: u8) -> (Zeroizing<[u8; 32]>, [u8; 64]) {
        let mut c = self.cipher();
        let mut mac_key = Zeroizing::new([0u8; 32]);
        c.apply_keystream(&mut *mac_key);
        c.seek(64u64);
        let mut block = [0u8; 64];
        block[0] = first;
        c.apply_keystream(&mut block);
        (mac_key, block)
    }

    fn mac(mac_key: &[u8; 32], block: &[u8; 64], c: &[u8]) -> [u8; MAC_BYTES] {
        let pad = c.len() % 16;
        let mut data = Vec::with_capacity(64 + c.len() + pad + 16);
        data.extend_from_slice(block);
        data.extend_from_slice(c);
        data.resize(data.len() + pad, 0);
        data.extend_from_slice(&0u64.to_le_bytes());
        data.extend_from_slice(&(64 + c.len() as u64).to_le_bytes());
        Poly1305::new(mac_key.into()).compute_unpadded(&data).into()
    }

    fn advance(&mut self, mac: &[u8; MAC_BYTES], tag: u8) {
        for (n, m) in self.nonce[4..].iter_mut().zip(&mac[..INONCE_BYTES]) {
            *n ^= m;
        }
        let counter =
            u32::from_le_bytes([self.nonce[0], self.nonce[1], self.nonce[2], self.nonce[3]])
                .wrapping_add(1);
        self.nonce[..4].copy_from_slice(&counter.to_le_bytes());
        if tag & TAG_REKEY != 0 || counter == 0 {
            self.rekey();
        }
    }

    /// libsodium's `crypto_secretstream_xchacha20poly1305_rekey`.
    pub fn rekey(&mut self) {
        let mut buf = Zeroizing::new([0u8; 40]);
        buf[..32].copy_from_slice(&*self.key);
        buf[32..].copy_from_slice(&self.nonce[4..]);
        self.cipher().apply_keystream(&mut *buf);
        self.key.copy_from_slice(&buf[..32]);
        self.nonce[4..].copy_from_slice(&buf[32..]);
        self.nonce[..4].copy_from_slice(&1u32.to_le_bytes());
    }

    /// Encrypts one message with `tag`: returns `tag' ‖ c ‖ mac`
    /// (`msg.len() + 17` bytes).
    pub fn push(&mut self, msg: &[u8], tag: u8) -> Vec<u8> {
        let (mac_key, block) = self.mac_key_and_block(tag);
        let mut c = msg.to_vec();
        let mut cipher = self.cipher();
        cipher.seek(128u64);
        cipher.apply_keystream(&mut c);
        let mac = Self::mac(&mac_key, &block, &c);
        let mut out = Vec::with_capacity(msg.len() + ABYTES);
        out.push(block[0]);
        out.extend_from_slice(&c);
        out.extend_from_slice(&mac);
        self.advance(&mac, tag);
        out
    }

    /// Decrypts one message: returns the plaintext and its tag. The state
    /// advances only when the MAC verifies.
    pub fn pull(&mut self, chunk: &[u8]) -> Result<(Vec<u8>, u8), CryptoError> {
        if chunk.len() < ABYTES {
            return Err(CryptoError::TooShort {
                min: ABYTES,
                got: chunk.len(),
            });
        }
        let (first, rest) = chunk.split_at(1);
        let (c, mac) = rest.split_at(rest.len() - MAC_BYTES);
        let (mac_key, mut block) = self.mac_key_and_block(0);
        let tag = block[0];
        block[0] = first[0];
        let tag = tag ^ first[0];
        let expected = Self::mac(&mac_key, &block, c);
        if !crate::ct_eq(&expected, mac) {
            return Err(CryptoError::DecryptFailed);
        }
        let mut m = c.to_vec();
        let mut cipher = self.cipher();
        cipher.seek(128u64);
        cipher.apply_keystream(&mut m);
        self.advance(&expected, tag);
        Ok((m, tag))
    }
}

/// AES-256-CBC encryption with PKCS#7 padding (the output is a positive
/// multiple of 16 bytes; the IV is not included).
pub fn aes256_cbc_encrypt(key: &[u8; 32], iv: &[u8; AES_BLOCK], plaintext: &[u8]) -> Vec<u8> {
    cbc::Encryptor::<Aes256>::new(key.into(), iv.into()).encrypt_padded_vec_mut::<Pkcs7>(plaintext)
}

/// AES-256-CBC decryption that requires valid PKCS#7 padding. A
/// ciphertext that is empty or not a multiple of 16 bytes is a
/// [`CryptoError::BadLength`]; bad padding is [`CryptoError::DecryptFailed`]
/// (callers authenticate the ciphertext before decrypting it).
pub fn aes256_cbc_decrypt(
    key: &[u8; 32],
    iv: &[u8; AES_BLOCK],
    ct: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    if ct.is_empty() || !ct.len().is_multiple_of(AES_BLOCK) {
        return Err(CryptoError::BadLength {
            what: "AES-CBC ciphertext (a positive multiple of 16)",
            expected: ct.len().div_ceil(AES_BLOCK).max(1) * AES_BLOCK,
            got: ct.len(),
        });
    }
    cbc::Decryptor::<Aes256>::new(key.into(), iv.into())
        .decrypt_padded_vec_mut::<Pkcs7>(ct)
        .map_err(|_| CryptoError::DecryptFailed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn stream_round_trip(key: [u8; 32], header: [u8; 24], pieces: &[Vec<u8>]) {
        let mut push = SecretStream::init(&key, &header);
        let mut pull = SecretStream::init(&key, &header);
        for (i, p) in pieces.iter().enumerate() {
            let tag = if i + 1 == pieces.len() {
                TAG_FINAL
            } else {
                TAG_MESSAGE
            };
            let c = push.push(p, tag);
            assert_eq!(c.len(), p.len() + ABYTES);
            let (m, t) = pull.pull(&c).unwrap();
            assert_eq!(&m, p);
            assert_eq!(t, tag);
        }
    }

    #[test]
    fn tamper_wrong_key_and_short() {
        let mut push = SecretStream::init(&[1; 32], &[2; 24]);
        let c = push.push(b"hello", TAG_FINAL);
        for i in 0..c.len() {
            let mut bad = c.clone();
            bad[i] ^= 0x40;
            assert_eq!(
                SecretStream::init(&[1; 32], &[2; 24]).pull(&bad),
                Err(CryptoError::DecryptFailed)
            );
        }
        assert_eq!(
            SecretStream::init(&[9; 32], &[2; 24]).pull(&c),
            Err(CryptoError::DecryptFailed)
        );
        assert_eq!(
            SecretStream::init(&[1; 32], &[2; 24]).pull(&c[..16]),
            Err(CryptoError::TooShort { min: 17, got: 16 })
        );
        // Out of order: the second message does not open in first position.
        let mut push = SecretStream::init(&[1; 32], &[2; 24]);
        let _ = push.push(b"a", TAG_MESSAGE);
        let second = push.push(b"b", TAG_MESSAGE);
        assert!(
            SecretStream::init(&[1; 32], &[2; 24])
                .pull(&second)
                .is_err()
        );
    }

    #[test]
    fn rekey_tag_keeps_both_sides_in_step() {
        let mut push = SecretStream::init(&[3; 32], &[4; 24]);
        let mut pull = SecretStream::init(&[3; 32], &[4; 24]);
        for tag in [TAG_MESSAGE, TAG_REKEY, TAG_PUSH, TAG_FINAL] {
            let c = push.push(b"x", tag);
            assert_eq!(pull.pull(&c).unwrap(), (b"x".to_vec(), tag));
        }
    }

    #[test]
    fn cbc_rejects_bad_lengths_and_padding() {
        let k = [5u8; 32];
        let iv = [6u8; 16];
        let ct = aes256_cbc_encrypt(&k, &iv, b"");
        assert_eq!(ct.len(), 16);
        assert!(matches!(
            aes256_cbc_decrypt(&k, &iv, &ct[..15]),
            Err(CryptoError::BadLength { .. })
        ));
        assert!(matches!(
            aes256_cbc_decrypt(&k, &iv, &[]),
            Err(CryptoError::BadLength { .. })
        ));
        // Wrong key: padding almost surely invalid.
        let ct = aes256_cbc_encrypt(&k, &iv, b"sixteen byte msg");
        assert_eq!(
            aes256_cbc_decrypt(&[7; 32], &iv, &ct),
            Err(CryptoError::DecryptFailed)
        );
    }

    proptest! {
        #[test]
        fn stream_round_trips(key: [u8; 32], header: [u8; 24],
                              pieces in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 1..5)) {
            stream_round_trip(key, header, &pieces);
        }

        #[test]
        fn cbc_round_trips(key: [u8; 32], iv: [u8; 16], pt in proptest::collection::vec(any::<u8>(), 0..300)) {
            let ct = aes256_cbc_encrypt(&key, &iv, &pt);
            prop_assert_eq!(ct.len(), (pt.len() / 16 + 1) * 16);
            prop_assert_eq!(aes256_cbc_decrypt(&key, &iv, &ct).unwrap(), pt);
        }
    }
}
