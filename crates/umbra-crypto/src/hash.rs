//! Hash functions and MACs: BLAKE2b with every libsodium parameter
//! (output length 1–64 in the parameter block, key, salt, personal), SHA-256,
//! SHA-512 and HMAC-SHA256.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

use crate::CryptoError;

/// Parameters of a BLAKE2b hash beyond the input. Shorter `salt`/`personal`
/// values are zero-padded to 16 bytes, as libsodium does.
#[derive(Debug, Clone, Copy, Default)]
pub struct Blake2bParams<'a> {
    /// Key, 0–64 bytes.
    pub key: &'a [u8],
    /// Salt, 0–16 bytes.
    pub salt: &'a [u8],
    /// Personalisation, 0–16 bytes.
    pub personal: &'a [u8],
}

/// BLAKE2b of `data` with an `outlen`-byte digest (1–64) and the given parameters.
pub fn blake2b(
    data: &[u8],
    outlen: usize,
    params: Blake2bParams<'_>,
) -> Result<Vec<u8>, CryptoError> {
    blake2b_multi(&[data], outlen, params)
}

/// BLAKE2b over the concatenation of `parts`, without copying them together.
pub fn blake2b_multi(
    parts: &[&[u8]],
    outlen: usize,
    params: Blake2bParams<'_>,
) -> Result<Vec<u8>, CryptoError> {
    if !(1..=64).contains(&outlen) {
        return Err(CryptoError::Blake2bParam("output length must be 1 to 64"));
    }
    if params.key.len() > 64 {
        return Err(CryptoError::Blake2bParam("key longer than 64 bytes"));
    }
    if params.salt.len() > 16 {
        return Err(CryptoError::Blake2bParam("salt longer than 16 bytes"));
    }
    if params.personal.len() > 16 {
        return Err(CryptoError::Blake2bParam("personal longer than 16 bytes"));
    }
    let mut p = blake2b_simd::Params::new();
    p.hash_length(outlen)
        .key(params.key)
        .salt(params.salt)
        .personal(params.personal);
    let mut state = p.to_state();
    for part in parts {
        state.update(part);
    }
    Ok(state.finalize().as_bytes().to_vec())
}

/// Unkeyed BLAKE2b with a fixed output length `N` (1–64, checked at compile time by use).
pub fn blake2b_fixed<const N: usize>(parts: &[&[u8]]) -> [u8; N] {
    const { assert!(N >= 1 && N <= 64) };
    let mut p = blake2b_simd::Params::new();
    p.hash_length(N);
    let mut state = p.to_state();
    for part in parts {
        state.update(part);
    }
    let mut out = [0u8; N];
    out.copy_from_slice(state.finalize().as_bytes());
    out
}

/// SHA-256.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// SHA-512.
pub fn sha512(data: &[u8]) -> [u8; 64] {
    Sha512::digest(data).into()
}

/// HMAC-SHA256 of `data` under `key`.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Checks an HMAC-SHA256 tag in constant time.
pub fn hmac_sha256_verify(key: &[u8], data: &[u8], tag: &[u8]) -> Result<(), CryptoError> {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data);
    mac.verify_slice(tag)
        .map_err(|_| CryptoError::DecryptFailed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blake2b_256_is_not_truncated_512() {
        let a = blake2b(b"abc", 32, Blake2bParams::default()).unwrap();
        let b = blake2b(b"abc", 64, Blake2bParams::default()).unwrap();
        assert_ne!(a[..], b[..32]);
        // RFC 7693 Appendix A: BLAKE2b-512("abc") begins ba80a53f.
        assert_eq!(hex::encode(&b[..4]), "ba80a53f");
    }

    #[test]
    fn multi_equals_single() {
        let p = Blake2bParams {
            key: b"k",
            salt: b"",
            personal: b"UmbraGroupKeyGen",
        };
        assert_eq!(
            blake2b_multi(&[b"ab", b"c"], 24, p).unwrap(),
            blake2b(b"abc", 24, p).unwrap()
        );
        assert_eq!(
            blake2b_fixed::<24>(&[b"a", b"bc"]).to_vec(),
            blake2b(b"abc", 24, Blake2bParams::default()).unwrap()
        );
    }

    #[test]
    fn bad_params() {
        assert!(blake2b(b"", 0, Blake2bParams::default()).is_err());
        assert!(blake2b(b"", 65, Blake2bParams::default()).is_err());
    }
}
