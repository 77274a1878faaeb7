//! The legacy (Signal/Session) attachment scheme, spec `attachments.md` §2:
//! Session's padding rule, `iv ‖ AES-256-CBC(PKCS7) ‖ HMAC-SHA256` blobs,
//! their SHA-256 digest, and the receiver's checks in the §2.4 order (MAC
//! before anything is decrypted).

use umbra_crypto::hash::{hmac_sha256, hmac_sha256_verify, sha256};
use umbra_crypto::secretstream::{aes256_cbc_decrypt, aes256_cbc_encrypt};
use umbra_crypto::{CryptoError, ct_eq};
use zeroize::Zeroizing;

use super::AttachmentError;

/// Key length: `aes_key (32) ‖ mac_key (32)`.
pub const KEY_LEN: usize = 64;
/// IV length.
pub const IV_LEN: usize = 16;
/// HMAC-SHA256 length.
pub const MAC_LEN: usize = 32;
/// Digest length (SHA-256 of the blob).
pub const DIGEST_LEN: usize = 32;
/// Smallest well-formed blob (IV + MAC; a real one also has ≥ 16 bytes of ct).
pub const MIN_BLOB: usize = IV_LEN + MAC_LEN;
/// Largest padded plaintext Umbra encrypts with this scheme (§2.1), which
/// makes the largest blob exactly [`MAX_BLOB`].
pub const MAX_PADDED: usize = 9_999_936;
/// Largest legacy blob: the file server's body limit.
pub const MAX_BLOB: usize = 10_000_000;
/// Session's minimum padded size.
pub const MIN_PADDED: u64 = 541;

/// Session's `legacy_padded_size(n)` (§2.1), in IEEE-754 doubles as the
/// JavaScript original: `max(541, ⌊1.05^⌈ln n / ln 1.05⌉⌋)`, capped to
/// 10,000,000 when `n ≤ 10,000,000`.
pub fn session_padded_size(n: u64) -> u64 {
    const CAP: u64 = 10_000_000;
    if n == 0 {
        return MIN_PADDED;
    }
    let e = ((n as f64).ln() / 1.05f64.ln()).ceil();
    // `as` saturates; the value is finite and positive here.
    let p = 1.05f64.powf(e).floor() as u64;
    let p = p.max(MIN_PADDED);
    if p > CAP && n <= CAP { CAP } else { p }
}

/// The padded size an Umbra sender uses (§2.1): Session's rule, never below
/// `n`, capped at [`MAX_PADDED`]. Files above [`MAX_PADDED`] are refused
/// (they use the chunked scheme).
pub fn padded_size(n: usize) -> Result<usize, AttachmentError> {
    if n > MAX_PADDED {
        return Err(AttachmentError::PlaintextTooLarge {
            format: "legacy",
            max: MAX_PADDED as u64,
            got: n as u64,
        });
    }
    let p = usize::try_from(session_padded_size(n as u64)).unwrap_or(usize::MAX);
    Ok(p.max(n).min(MAX_PADDED))
}

/// A legacy blob and its digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegacyBlob {
    /// `iv ‖ ct ‖ mac`, what is uploaded.
    pub blob: Vec<u8>,
    /// SHA-256 of `blob`, the pointer's `digest`.
    pub digest: [u8; DIGEST_LEN],
}

fn split_key(key: &[u8; KEY_LEN]) -> (Zeroizing<[u8; 32]>, &[u8]) {
    let aes = Zeroizing::new(std::array::from_fn(|i| key[i]));
    (aes, &key[32..])
}

/// Encrypts `plaintext` exactly as given (no padding): §2.2 steps 2–5.
/// [`encrypt`] pads first; this is the primitive the vectors exercise.
pub fn encrypt_unpadded(key: &[u8; KEY_LEN], iv: &[u8; IV_LEN], plaintext: &[u8]) -> LegacyBlob {
    let (aes_key, mac_key) = split_key(key);
    let ct = aes256_cbc_encrypt(&aes_key, iv, plaintext);
    let mut blob = Vec::with_capacity(IV_LEN + ct.len() + MAC_LEN);
    blob.extend_from_slice(iv);
    blob.extend_from_slice(&ct);
    let mac = hmac_sha256(mac_key, &blob);
    blob.extend_from_slice(&mac);
    let digest = sha256(&blob);
    LegacyBlob { blob, digest }
}

/// Pads `plaintext` to [`padded_size`] with zeros and encrypts it (§2.1,
/// §2.2). `key` and `iv` must be fresh random bytes. Refuses files above
/// [`MAX_PADDED`].
pub fn encrypt(
    key: &[u8; KEY_LEN],
    iv: &[u8; IV_LEN],
    plaintext: &[u8],
) -> Result<LegacyBlob, AttachmentError> {
    let padded_len = padded_size(plaintext.len())?;
    let mut padded = Zeroizing::new(Vec::with_capacity(padded_len));
    padded.extend_from_slice(plaintext);
    padded.resize(padded_len, 0);
    Ok(encrypt_unpadded(key, iv, &padded))
}

/// Checks and decrypts a blob (§2.4) and returns the whole decrypted
/// plaintext, padding included. Checks, in order: key 64 bytes, digest 32
/// bytes, blob ≥ 48 bytes, MAC (constant time), digest, ciphertext a
/// positive multiple of 16, PKCS#7 padding.
pub fn decrypt_padded(key: &[u8], digest: &[u8], blob: &[u8]) -> Result<Vec<u8>, AttachmentError> {
    let key: &[u8; KEY_LEN] = key.try_into().map_err(|_| AttachmentError::KeyLength {
        expected: KEY_LEN,
        got: key.len(),
    })?;
    if digest.len() != DIGEST_LEN {
        return Err(AttachmentError::DigestLength(digest.len()));
    }
    if blob.len() < MIN_BLOB {
        return Err(AttachmentError::TooShort(blob.len()));
    }
    let (body, mac) = blob.split_at(blob.len() - MAC_LEN);
    let (iv, ct) = body.split_at(IV_LEN);
    let (aes_key, mac_key) = split_key(key);
    hmac_sha256_verify(mac_key, body, mac).map_err(|_| AttachmentError::BadMac)?;
    if !ct_eq(&sha256(blob), digest) {
        return Err(AttachmentError::BadDigest);
    }
    if ct.is_empty() || !ct.len().is_multiple_of(16) {
        return Err(AttachmentError::CiphertextLength(ct.len()));
    }
    let iv: &[u8; IV_LEN] = iv
        .try_into()
        .map_err(|_| AttachmentError::TooShort(blob.len()))?;
    aes256_cbc_decrypt(&aes_key, iv, ct).map_err(|e| match e {
        CryptoError::BadLength { .. } => AttachmentError::CiphertextLength(ct.len()),
        _ => AttachmentError::BadPadding,
    })
}

/// [`decrypt_padded`], then truncation to the pointer's `size` (§2.4),
/// which must not exceed the decrypted length. `None` keeps everything.
pub fn decrypt(
    key: &[u8],
    digest: &[u8],
    blob: &[u8],
    size: Option<u64>,
) -> Result<Vec<u8>, AttachmentError> {
    let mut plain = decrypt_padded(key, digest, blob)?;
    if let Some(size) = size {
        let actual = plain.len() as u64;
        if size > actual {
            return Err(AttachmentError::SizeTooLarge {
                declared: size,
                actual,
            });
        }
        plain.truncate(usize::try_from(size).unwrap_or(plain.len()));
    }
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY: [u8; 64] = [7u8; 64];
    const IV: [u8; 16] = [9u8; 16];

    #[test]
    fn padding_rule() {
        assert_eq!(session_padded_size(0), 541);
        assert_eq!(session_padded_size(1000), 1020);
        assert_eq!(session_padded_size(9_999_999), 10_000_000);
        assert_eq!(padded_size(9_999_936).unwrap(), MAX_PADDED);
        assert_eq!(padded_size(9_600_000).unwrap(), 9_828_080);
        assert_eq!(padded_size(9_990_000).unwrap(), MAX_PADDED);
        assert!(matches!(
            padded_size(9_999_937),
            Err(AttachmentError::PlaintextTooLarge { .. })
        ));
        // The largest blob is exactly the server's limit.
        assert_eq!(
            encrypt_unpadded(&KEY, &IV, &vec![0u8; MAX_PADDED])
                .blob
                .len(),
            MAX_BLOB
        );
    }

    #[test]
    fn negative_checks_in_order() {
        let b = encrypt(&KEY, &IV, b"hello").unwrap();
        assert_eq!(
            decrypt(&KEY[..63], &b.digest, &b.blob, None),
            Err(AttachmentError::KeyLength {
                expected: 64,
                got: 63
            })
        );
        assert_eq!(
            decrypt(&KEY, &b.digest[..31], &b.blob, None),
            Err(AttachmentError::DigestLength(31))
        );
        assert_eq!(
            decrypt(&KEY, &b.digest, &b.blob[..47], None),
            Err(AttachmentError::TooShort(47))
        );
        // Truncation and tampering both break the MAC first.
        assert_eq!(
            decrypt(&KEY, &b.digest, &b.blob[..b.blob.len() - 1], None),
            Err(AttachmentError::BadMac)
        );
        let mut bad = b.blob.clone();
        bad[20] ^= 1;
        assert_eq!(
            decrypt(&KEY, &b.digest, &bad, None),
            Err(AttachmentError::BadMac)
        );
        let mut wrong = KEY;
        wrong[40] ^= 1;
        assert_eq!(
            decrypt(&wrong, &b.digest, &b.blob, None),
            Err(AttachmentError::BadMac)
        );
        assert_eq!(
            decrypt(&KEY, &[0u8; 32], &b.blob, None),
            Err(AttachmentError::BadDigest)
        );
        // Right MAC, wrong AES key: padding check (almost surely) fails.
        let mut wrong_aes = KEY;
        wrong_aes[0] ^= 1;
        assert_eq!(
            decrypt(&wrong_aes, &b.digest, &b.blob, None),
            Err(AttachmentError::BadPadding)
        );
        // A MAC-valid blob with a ciphertext that is not a block multiple.
        let mut odd = IV.to_vec();
        odd.extend_from_slice(&[1, 2, 3]);
        let mac = hmac_sha256(&KEY[32..], &odd);
        odd.extend_from_slice(&mac);
        let d = sha256(&odd);
        assert_eq!(
            decrypt(&KEY, &d, &odd, None),
            Err(AttachmentError::CiphertextLength(3))
        );
        assert_eq!(
            decrypt(&KEY, &b.digest, &b.blob, Some(100_000)),
            Err(AttachmentError::SizeTooLarge {
                declared: 100_000,
                actual: 541
            })
        );
    }

    proptest! {
        #[test]
        fn round_trip(pt in proptest::collection::vec(any::<u8>(), 0..3000), key: [u8; 32], iv: [u8; 16]) {
            let mut k = [0u8; 64];
            k[..32].copy_from_slice(&key);
            k[32..].copy_from_slice(&key.map(|b| b ^ 0x5c));
            let b = encrypt(&k, &iv, &pt).unwrap();
            let padded = padded_size(pt.len()).unwrap();
            prop_assert_eq!(b.blob.len(), IV_LEN + (padded / 16 + 1) * 16 + MAC_LEN);
            prop_assert_eq!(decrypt(&k, &b.digest, &b.blob, Some(pt.len() as u64)).unwrap(), pt);
        }

        #[test]
        fn padded_size_is_monotonic_and_covers(n in 0usize..MAX_PADDED) {
            let p = padded_size(n).unwrap();
            prop_assert!(p >= n && p <= MAX_PADDED);
            prop_assert!(padded_size(n + 1).unwrap() >= p);
        }
    }
}
