//! Field encryption and keyed lookup hashes of the local store.
//!
//! Every sensitive column is sealed with XChaCha20-Poly1305 under a key
//! derived from the profile's 32-byte local key, with a fresh random nonce
//! per value and the column's name as associated data (so a value cannot
//! be moved to another column unnoticed). A sealed value is
//! `nonce (24) ‖ ciphertext ‖ tag (16)`.
//!
//! Columns that must be looked up (account IDs, swarm hashes, setting
//! names) hold `HMAC-SHA256(index_key, len(domain) ‖ domain ‖ data)`
//! instead, so no account ID is ever stored in the clear
//! (`messages.md` §9–11 say what is looked up; identity.md §4.3 asks for the
//! seed to be encrypted at rest).
//!
//! Both keys are derived from the local key with HMAC-SHA256 and distinct
//! labels; the local key itself is never used directly.

use std::fmt;

use umbra_crypto::aead::{TAG_LEN, XCHACHA_NONCE_LEN, xchacha20_decrypt, xchacha20_encrypt};
use umbra_crypto::hash::hmac_sha256;
use zeroize::Zeroizing;

/// Associated-data prefix of every sealed field (schema generation 1).
const AAD_PREFIX: &[u8] = b"umbra local store v1 column ";

/// The profile's 32-byte local key: the root of the store's encryption.
///
/// Zeroized on drop; `Debug` never shows it.
#[derive(Clone)]
pub struct LocalKey(Zeroizing<[u8; 32]>);

impl LocalKey {
    /// Wraps 32 key bytes (drawn from the OS CSPRNG when a profile is
    /// created).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        LocalKey(Zeroizing::new(bytes))
    }

    /// A new random key from the OS CSPRNG.
    pub fn generate() -> Self {
        LocalKey(Zeroizing::new(umbra_crypto::random_bytes::<32>()))
    }

    /// The key bytes (to wrap them into `profile.key`).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for LocalKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LocalKey(..)")
    }
}

/// A sealed field could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FieldError {
    /// Shorter than a nonce and a tag.
    #[error("sealed value is {0} bytes, shorter than nonce and tag")]
    TooShort(usize),
    /// Authentication failed: another key, another column, or tampering.
    #[error("sealed value does not authenticate (wrong key, wrong column or tampered)")]
    Tampered,
}

/// The two working keys derived from a [`LocalKey`].
#[derive(Clone)]
pub(crate) struct FieldCrypto {
    enc: Zeroizing<[u8; 32]>,
    index: Zeroizing<[u8; 32]>,
}

impl FieldCrypto {
    /// Derives the field-encryption and index keys from the local key.
    pub(crate) fn new(key: &LocalKey) -> Self {
        FieldCrypto {
            enc: Zeroizing::new(hmac_sha256(
                key.as_bytes(),
                b"umbra local store: field encryption key",
            )),
            index: Zeroizing::new(hmac_sha256(
                key.as_bytes(),
                b"umbra local store: lookup index key",
            )),
        }
    }

    fn aad(column: &str) -> Vec<u8> {
        let mut aad = AAD_PREFIX.to_vec();
        aad.extend_from_slice(column.as_bytes());
        aad
    }

    /// Seals `plain` for `column` with a fresh random nonce.
    pub(crate) fn seal(&self, column: &str, plain: &[u8]) -> Vec<u8> {
        self.seal_with_nonce(
            column,
            plain,
            &umbra_crypto::random_bytes::<XCHACHA_NONCE_LEN>(),
        )
    }

    /// Seals with a given nonce (tests; callers use [`FieldCrypto::seal`]).
    pub(crate) fn seal_with_nonce(
        &self,
        column: &str,
        plain: &[u8],
        nonce: &[u8; XCHACHA_NONCE_LEN],
    ) -> Vec<u8> {
        let ct = xchacha20_encrypt(&self.enc, nonce, plain, &Self::aad(column));
        let mut out = Vec::with_capacity(XCHACHA_NONCE_LEN + ct.len());
        out.extend_from_slice(nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Opens a value sealed for `column`.
    pub(crate) fn open(
        &self,
        column: &str,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, FieldError> {
        if sealed.len() < XCHACHA_NONCE_LEN + TAG_LEN {
            return Err(FieldError::TooShort(sealed.len()));
        }
        let (nonce, ct) = sealed.split_at(XCHACHA_NONCE_LEN);
        xchacha20_decrypt(&self.enc, nonce, ct, &Self::aad(column))
            .map(Zeroizing::new)
            .map_err(|_| FieldError::Tampered)
    }

    /// The keyed lookup hash of `data` in `domain` (e.g. `"peer"`).
    pub(crate) fn index(&self, domain: &str, data: &[u8]) -> [u8; 32] {
        let d = domain.as_bytes();
        let mut input = Zeroizing::new(Vec::with_capacity(1 + d.len() + data.len()));
        // Domains are short constants; the length prefix keeps them apart.
        input.push(u8::try_from(d.len()).unwrap_or(u8::MAX));
        input.extend_from_slice(d);
        input.extend_from_slice(data);
        hmac_sha256(self.index.as_ref(), &input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fc(b: u8) -> FieldCrypto {
        FieldCrypto::new(&LocalKey::from_bytes([b; 32]))
    }

    #[test]
    fn seal_open_and_refusals() {
        let c = fc(1);
        let s = c.seal("messages.body", b"hello");
        assert_eq!(s.len(), XCHACHA_NONCE_LEN + 5 + TAG_LEN);
        assert_eq!(&c.open("messages.body", &s).unwrap()[..], b"hello");
        // Fresh nonce each time.
        assert_ne!(s, c.seal("messages.body", b"hello"));
        // Another column, another key, tampering, truncation.
        assert_eq!(c.open("contacts.name", &s), Err(FieldError::Tampered));
        assert_eq!(fc(2).open("messages.body", &s), Err(FieldError::Tampered));
        let mut t = s.clone();
        t[XCHACHA_NONCE_LEN] ^= 1;
        assert_eq!(c.open("messages.body", &t), Err(FieldError::Tampered));
        let mut t = s.clone();
        t[0] ^= 1;
        assert_eq!(c.open("messages.body", &t), Err(FieldError::Tampered));
        assert_eq!(
            c.open("messages.body", &s[..39]),
            Err(FieldError::TooShort(39))
        );
        assert_eq!(
            c.open("messages.body", &s[..s.len() - 1]),
            Err(FieldError::Tampered)
        );
    }

    #[test]
    fn index_is_keyed_and_domain_separated() {
        let c = fc(1);
        assert_eq!(c.index("peer", b"x"), c.index("peer", b"x"));
        assert_ne!(c.index("peer", b"x"), fc(2).index("peer", b"x"));
        assert_ne!(c.index("peer", b"x"), c.index("hash", b"x"));
        assert_ne!(c.index("pee", b"rx"), c.index("peer", b"x"));
        assert_ne!(c.index("peer", b"x"), c.index("peer", b"y"));
    }

    #[test]
    fn debug_hides_the_key() {
        assert_eq!(
            format!("{:?}", LocalKey::from_bytes([7; 32])),
            "LocalKey(..)"
        );
    }

    proptest! {
        #[test]
        fn field_round_trip(
            key in any::<[u8; 32]>(),
            nonce in any::<[u8; 24]>(),
            plain in proptest::collection::vec(any::<u8>(), 0..300),
            column in "[a-z_.]{1,20}",
            flip in any::<prop::sample::Index>(),
        ) {
            let c = FieldCrypto::new(&LocalKey::from_bytes(key));
            let s = c.seal_with_nonce(&column, &plain, &nonce);
            prop_assert_eq!(&c.open(&column, &s).unwrap()[..], &plain[..]);
            let r = c.seal(&column, &plain);
            prop_assert_eq!(&c.open(&column, &r).unwrap()[..], &plain[..]);
            let mut t = s.clone();
            let i = flip.index(t.len());
            t[i] ^= 0x80;
            prop_assert_eq!(c.open(&column, &t), Err(FieldError::Tampered));
            let other = format!("{column}x");
            prop_assert_eq!(c.open(&other, &s), Err(FieldError::Tampered));
        }
    }
}
