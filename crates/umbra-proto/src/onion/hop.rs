//! Hop encryption (spec `onion.md` §1): `enc_type` parsing, the per-layer
//! key derived from an X25519 exchange, and the layer AEAD.
//!
//! | `enc_type` | key | ciphertext |
//! | --- | --- | --- |
//! | `xchacha20` | `BLAKE2b-256(shared ‖ E_client ‖ N_node)` | `nonce(24) ‖ XChaCha20-Poly1305(m) ‖ tag` |
//! | `aes-gcm` | `HMAC-SHA256(key = "LOKI", shared)` | `iv(12) ‖ AES-256-GCM(m) ‖ tag` |
//!
//! AES-CBC (`"aes-cbc"`, `"cbc"`) and every other name are refused.

use std::fmt;
use std::str::FromStr;

use umbra_crypto::{X25519Public, X25519Secret, aead, hash};
use zeroize::Zeroizing;

use super::OnionError;

/// Fixed overhead of an XChaCha20 layer: 24-byte nonce and 16-byte tag.
pub const XCHACHA20_OVERHEAD: usize = 40;
/// Fixed overhead of an AES-GCM layer: 12-byte IV and 16-byte tag.
pub const AES_GCM_OVERHEAD: usize = 28;

/// A layer cipher.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EncType {
    /// XChaCha20-Poly1305 with a BLAKE2b-derived key (Umbra's default).
    XChaCha20,
    /// AES-256-GCM with an HMAC-derived key (Session desktop's default).
    AesGcm,
}

impl EncType {
    /// Parses an `enc_type` name: `xchacha20`/`xchacha20-poly1305` and
    /// `aes-gcm`/`gcm`; everything else (AES-CBC included) is refused.
    pub fn parse(name: &str) -> Result<Self, OnionError> {
        match name {
            "xchacha20" | "xchacha20-poly1305" => Ok(EncType::XChaCha20),
            "aes-gcm" | "gcm" => Ok(EncType::AesGcm),
            other => Err(OnionError::UnsupportedEncType(truncate(other))),
        }
    }

    /// Reads `enc_type` from a routing JSON object: absent means `aes-gcm`;
    /// a non-string value is refused.
    pub fn from_json(obj: &serde_json::Map<String, serde_json::Value>) -> Result<Self, OnionError> {
        match obj.get("enc_type") {
            None => Ok(EncType::AesGcm),
            Some(serde_json::Value::String(s)) => EncType::parse(s),
            Some(_) => Err(OnionError::BadField {
                field: "enc_type",
                why: "not a string",
            }),
        }
    }

    /// The canonical name written on output: `"xchacha20"` or `"aes-gcm"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            EncType::XChaCha20 => "xchacha20",
            EncType::AesGcm => "aes-gcm",
        }
    }

    /// Nonce (IV) length: 24 or 12 bytes.
    pub const fn nonce_len(self) -> usize {
        match self {
            EncType::XChaCha20 => aead::XCHACHA_NONCE_LEN,
            EncType::AesGcm => aead::GCM_IV_LEN,
        }
    }

    /// Bytes a layer adds to its plaintext: 40 or 28.
    pub const fn overhead(self) -> usize {
        match self {
            EncType::XChaCha20 => XCHACHA20_OVERHEAD,
            EncType::AesGcm => AES_GCM_OVERHEAD,
        }
    }
}

impl FromStr for EncType {
    type Err = OnionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EncType::parse(s)
    }
}

impl fmt::Display for EncType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Keeps attacker-supplied names short in error messages.
fn truncate(s: &str) -> String {
    s.chars().take(32).collect()
}

/// A node's X25519 key for opening layers: the secret `n` and its public key
/// `N = n · 9`, computed once. `N` enters every XChaCha20 layer key
/// (`BLAKE2b-256(shared ‖ E ‖ N)`), so a relay that kept only `n` would
/// redo a base-point multiplication per layer.
#[derive(Clone)]
pub struct NodeLayerSecret {
    secret: X25519Secret,
    public: X25519Public,
}

impl fmt::Debug for NodeLayerSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeLayerSecret")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl NodeLayerSecret {
    /// Wraps the node's X25519 secret and derives its public key.
    pub fn new(secret: X25519Secret) -> Self {
        let public = secret.public();
        NodeLayerSecret { secret, public }
    }

    /// The secret `n`.
    pub fn secret(&self) -> &X25519Secret {
        &self.secret
    }

    /// The public key `N`.
    pub fn public(&self) -> X25519Public {
        self.public
    }
}

impl From<X25519Secret> for NodeLayerSecret {
    fn from(secret: X25519Secret) -> Self {
        NodeLayerSecret::new(secret)
    }
}

/// The symmetric key of one layer, shared by the client (ephemeral secret)
/// and one node (its X25519 secret). It encrypts the request layer and, for
/// the destination layer, the reply. Zeroized on drop.
#[derive(Clone)]
pub struct LayerKey {
    enc_type: EncType,
    key: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for LayerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LayerKey")
            .field("enc_type", &self.enc_type)
            .finish_non_exhaustive()
    }
}

impl LayerKey {
    /// The client side: `shared = X25519(e, N)` with the client's ephemeral
    /// secret `e` and the node's key `N`.
    pub fn client(
        enc_type: EncType,
        ephemeral_secret: &X25519Secret,
        node: &X25519Public,
    ) -> Result<Self, OnionError> {
        Ok(Self::client_with_public(enc_type, ephemeral_secret, node)?.0)
    }

    /// [`LayerKey::client`], also returning the ephemeral public key `E`
    /// (derived once: it is both hashed into the key and sent in the layer).
    pub(crate) fn client_with_public(
        enc_type: EncType,
        ephemeral_secret: &X25519Secret,
        node: &X25519Public,
    ) -> Result<(Self, X25519Public), OnionError> {
        let client_pk = ephemeral_secret.public();
        let shared = ephemeral_secret
            .diffie_hellman(node)
            .map_err(OnionError::KeyExchange)?;
        let key = Self::derive(enc_type, shared.as_bytes(), &client_pk, node);
        Ok((key, client_pk))
    }

    /// The node side: `shared = X25519(n, E)` with the node's secret `n` and
    /// the client's ephemeral key `E`. Derives `N` from `n` on every call; a
    /// node opening many layers uses [`LayerKey::node_with`].
    pub fn node(
        enc_type: EncType,
        node_secret: &X25519Secret,
        client: &X25519Public,
    ) -> Result<Self, OnionError> {
        Self::node_with(enc_type, &NodeLayerSecret::new(node_secret.clone()), client)
    }

    /// [`LayerKey::node`] with the node's public key already known: one
    /// X25519 and one hash per layer.
    pub fn node_with(
        enc_type: EncType,
        node: &NodeLayerSecret,
        client: &X25519Public,
    ) -> Result<Self, OnionError> {
        let shared = node
            .secret
            .diffie_hellman(client)
            .map_err(OnionError::KeyExchange)?;
        Ok(Self::derive(
            enc_type,
            shared.as_bytes(),
            client,
            &node.public,
        ))
    }

    fn derive(
        enc_type: EncType,
        shared: &[u8; 32],
        client: &X25519Public,
        node: &X25519Public,
    ) -> Self {
        let key = match enc_type {
            EncType::XChaCha20 => {
                hash::blake2b_fixed::<32>(&[shared, client.as_bytes(), node.as_bytes()])
            }
            EncType::AesGcm => hash::hmac_sha256(b"LOKI", shared),
        };
        LayerKey {
            enc_type,
            key: Zeroizing::new(key),
        }
    }

    /// The layer's cipher.
    pub fn enc_type(&self) -> EncType {
        self.enc_type
    }

    /// Encrypts with an explicit nonce of [`EncType::nonce_len`] bytes:
    /// returns `nonce ‖ ciphertext ‖ tag`.
    pub fn encrypt(&self, nonce: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, OnionError> {
        let bad = || OnionError::BadNonceLength {
            expected: self.enc_type.nonce_len(),
            got: nonce.len(),
        };
        let ct = match self.enc_type {
            EncType::XChaCha20 => {
                let n: &[u8; 24] = nonce.try_into().map_err(|_| bad())?;
                aead::xchacha20_encrypt(&self.key, n, plaintext, b"")
            }
            EncType::AesGcm => {
                let n: &[u8; 12] = nonce.try_into().map_err(|_| bad())?;
                aead::aes256gcm_encrypt(&self.key, n, plaintext, b"")
            }
        };
        let mut out = Vec::with_capacity(nonce.len() + ct.len());
        out.extend_from_slice(nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Encrypts with a nonce taken from 24 fresh random bytes (AES-GCM uses
    /// the first 12). The caller draws the bytes; they must never repeat.
    pub fn seal(&self, random: &[u8; 24], plaintext: &[u8]) -> Vec<u8> {
        let nonce_len = self.enc_type.nonce_len();
        let (nonce, _) = random.split_at(nonce_len);
        let ct = match self.enc_type {
            EncType::XChaCha20 => aead::xchacha20_encrypt(&self.key, random, plaintext, b""),
            EncType::AesGcm => {
                let mut iv = [0u8; 12];
                iv.copy_from_slice(nonce);
                aead::aes256gcm_encrypt(&self.key, &iv, plaintext, b"")
            }
        };
        let mut out = Vec::with_capacity(nonce_len + ct.len());
        out.extend_from_slice(nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Decrypts `nonce ‖ ciphertext ‖ tag`.
    pub fn decrypt(&self, data: &[u8]) -> Result<Vec<u8>, OnionError> {
        let min = self.enc_type.overhead();
        if data.len() < min {
            return Err(OnionError::CiphertextTooShort {
                min,
                got: data.len(),
            });
        }
        let (nonce, ct) = data.split_at(self.enc_type.nonce_len());
        let result = match self.enc_type {
            EncType::XChaCha20 => aead::xchacha20_decrypt(&self.key, nonce, ct, b""),
            EncType::AesGcm => aead::aes256gcm_decrypt(&self.key, nonce, ct, b""),
        };
        result.map_err(|_| OnionError::DecryptFailed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pair(enc: EncType, e: [u8; 32], n: [u8; 32]) -> (LayerKey, LayerKey) {
        let e = X25519Secret::from_bytes(e);
        let n = X25519Secret::from_bytes(n);
        let c = LayerKey::client(enc, &e, &n.public()).expect("client key");
        let s = LayerKey::node(enc, &n, &e.public()).expect("node key");
        let cached = LayerKey::node_with(enc, &NodeLayerSecret::new(n.clone()), &e.public())
            .expect("node key, cached public");
        assert_eq!(*cached.key, *s.key);
        (c, s)
    }

    #[test]
    fn enc_type_names() {
        assert_eq!(EncType::parse("xchacha20"), Ok(EncType::XChaCha20));
        assert_eq!(EncType::parse("xchacha20-poly1305"), Ok(EncType::XChaCha20));
        assert_eq!(EncType::parse("aes-gcm"), Ok(EncType::AesGcm));
        assert_eq!(EncType::parse("gcm"), Ok(EncType::AesGcm));
        for bad in ["aes-cbc", "cbc", "", "XCHACHA20", "aes-gcm "] {
            assert_eq!(
                EncType::parse(bad),
                Err(OnionError::UnsupportedEncType(bad.to_owned()))
            );
        }
        let empty = serde_json::Map::new();
        assert_eq!(EncType::from_json(&empty), Ok(EncType::AesGcm));
        let mut m = serde_json::Map::new();
        m.insert("enc_type".into(), serde_json::json!(1));
        assert!(matches!(
            EncType::from_json(&m),
            Err(OnionError::BadField {
                field: "enc_type",
                ..
            })
        ));
        m.insert("enc_type".into(), serde_json::json!("aes-cbc"));
        assert!(matches!(
            EncType::from_json(&m),
            Err(OnionError::UnsupportedEncType(_))
        ));
    }

    #[test]
    fn keys_agree_and_differ_by_cipher() {
        let (c, s) = pair(EncType::XChaCha20, [1; 32], [2; 32]);
        assert_eq!(*c.key, *s.key);
        let (c2, _) = pair(EncType::AesGcm, [1; 32], [2; 32]);
        assert_ne!(*c.key, *c2.key);
        assert!(!format!("{c:?}").contains("key:"));
    }

    #[test]
    fn small_order_key_refused() {
        let e = X25519Secret::from_bytes([1; 32]);
        assert!(matches!(
            LayerKey::client(EncType::XChaCha20, &e, &X25519Public::from_bytes([0; 32])),
            Err(OnionError::KeyExchange(_))
        ));
    }

    #[test]
    fn nonce_length_checked() {
        let (c, _) = pair(EncType::AesGcm, [1; 32], [2; 32]);
        assert_eq!(
            c.encrypt(&[0; 24], b"x"),
            Err(OnionError::BadNonceLength {
                expected: 12,
                got: 24
            })
        );
    }

    #[test]
    fn short_and_tampered_refused() {
        for enc in [EncType::XChaCha20, EncType::AesGcm] {
            let (c, s) = pair(enc, [3; 32], [4; 32]);
            let ct = c.seal(&[7; 24], b"hello");
            assert_eq!(ct.len(), 5 + enc.overhead());
            assert_eq!(s.decrypt(&ct).as_deref(), Ok(&b"hello"[..]));
            let short = ct.get(..enc.overhead() - 1).unwrap_or_default();
            assert_eq!(
                s.decrypt(short),
                Err(OnionError::CiphertextTooShort {
                    min: enc.overhead(),
                    got: enc.overhead() - 1
                })
            );
            for i in 0..ct.len() {
                let mut bad = ct.clone();
                bad[i] ^= 0x40;
                assert_eq!(s.decrypt(&bad), Err(OnionError::DecryptFailed), "byte {i}");
            }
            let (_, wrong) = pair(enc, [3; 32], [5; 32]);
            assert_eq!(wrong.decrypt(&ct), Err(OnionError::DecryptFailed));
        }
    }

    proptest! {
        #[test]
        fn round_trip(e in any::<[u8; 32]>(), n in any::<[u8; 32]>(), r in any::<[u8; 24]>(),
                      xchacha in any::<bool>(), msg in proptest::collection::vec(any::<u8>(), 0..200)) {
            let enc = if xchacha { EncType::XChaCha20 } else { EncType::AesGcm };
            let (c, s) = pair(enc, e, n);
            // Request direction and reply direction use the same key.
            prop_assert_eq!(s.decrypt(&c.seal(&r, &msg)), Ok(msg.clone()));
            prop_assert_eq!(c.decrypt(&s.seal(&r, &msg)), Ok(msg.clone()));
            let explicit = c.encrypt(&r[..enc.nonce_len()], &msg);
            prop_assert_eq!(explicit, Ok(c.seal(&r, &msg)));
        }
    }
}
