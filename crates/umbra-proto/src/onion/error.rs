//! The error type of the onion layer (spec `onion.md` §11 for the HTTP
//! status each refusal maps to).

use std::net::IpAddr;

use umbra_crypto::CryptoError;

use crate::bencode::BencodeError;

/// Why an onion operation failed. Variants name the check that failed and
/// never carry secret material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OnionError {
    /// `enc_type` is not one of the accepted names (AES-CBC included, §1).
    #[error("unsupported enc_type {0:?}")]
    UnsupportedEncType(String),
    /// A layer ciphertext is shorter than its cipher's fixed overhead.
    #[error("ciphertext too short: {got} bytes, need at least {min}")]
    CiphertextTooShort {
        /// The cipher's overhead.
        min: usize,
        /// The length received.
        got: usize,
    },
    /// Authenticated decryption failed (wrong key or tampered data).
    #[error("invalid ciphertext: authentication failed")]
    DecryptFailed,
    /// The X25519 exchange failed (small-order public key).
    #[error("key exchange failed: {0}")]
    KeyExchange(CryptoError),
    /// A nonce or IV of the wrong length was supplied by the caller.
    #[error("nonce must be {expected} bytes for this enc_type, got {got}")]
    BadNonceLength {
        /// Required length.
        expected: usize,
        /// Supplied length.
        got: usize,
    },
    /// A container is shorter than its 4-byte length prefix.
    #[error("container of {0} bytes is shorter than its length prefix")]
    ContainerTooShort(usize),
    /// A container's length prefix exceeds the bytes that follow it.
    #[error("length prefix {declared} exceeds the {available} bytes that follow")]
    LengthPrefixTooLarge {
        /// The declared blob length.
        declared: u32,
        /// The bytes available after the prefix.
        available: usize,
    },
    /// A blob is too large for a `u32` length prefix.
    #[error("blob of {0} bytes does not fit a u32 length prefix")]
    BlobTooLarge(usize),
    /// The JSON part of a container does not parse.
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// The JSON part of a container is not an object.
    #[error("JSON is not an object")]
    JsonNotObject,
    /// A required JSON field is absent.
    #[error("JSON lacks {0:?}")]
    MissingField(&'static str),
    /// A JSON field has the wrong type or value.
    #[error("JSON field {field:?} is invalid: {why}")]
    BadField {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A proxy request names a bad target, protocol, port or host (§4.2).
    #[error("Invalid url: {0}")]
    InvalidUrl(&'static str),
    /// A proxy host resolves to a non-public address (§4.2, Umbra).
    #[error("proxy target address {0} is not public")]
    ForbiddenAddress(IpAddr),
    /// A proxy host resolved to no address at all.
    #[error("proxy host resolved to no address")]
    NoAddress,
    /// `hop_no` is above [`MAX_ONION_HOPS`](super::MAX_ONION_HOPS) (§6.1).
    #[error("onion request max path length exceeded (hop {0})")]
    HopLimitExceeded(u64),
    /// The hop-to-hop relay body is not canonical bencode.
    #[error("relay message: {0}")]
    RelayBencode(BencodeError),
    /// The hop-to-hop relay body lacks a field or has a bad one.
    #[error("relay message field {0:?} missing or invalid")]
    BadRelayField(&'static str),
    /// An onion was requested with no hops.
    #[error("an onion path needs at least one hop")]
    EmptyPath,
    /// The number of [`LayerRandom`](super::LayerRandom) values is not hops + 1.
    #[error("need {expected} layers of randomness, got {got}")]
    RandomnessCount {
        /// hops + 1.
        expected: usize,
        /// Supplied.
        got: usize,
    },
    /// A request or reply exceeds the largest size bucket (§9).
    #[error("{0} bytes exceed the largest size bucket")]
    TooLarge(usize),
    /// Padding did not land exactly on the bucket (an internal invariant).
    #[error("padding reached {got} bytes instead of the bucket's {want}")]
    PaddingMismatch {
        /// The bucket size.
        want: usize,
        /// The size obtained.
        got: usize,
    },
    /// A v4 lsrpc request or response is malformed (§8, §7.2).
    #[error("v4 lsrpc: {0}")]
    V4(&'static str),
    /// A decrypted reply is not the JSON of §7.1.
    #[error("reply: {0}")]
    BadReply(&'static str),
}

impl OnionError {
    /// The HTTP status a node answers with when this error stops a request
    /// (§11): `413` for oversize bodies, `400` for everything else a node can
    /// meet while processing a layer.
    pub fn http_status(&self) -> u16 {
        match self {
            OnionError::TooLarge(_) => 413,
            _ => 400,
        }
    }

    /// The short plaintext body a node sends with [`Self::http_status`]
    /// (§11); it never contains secrets.
    pub fn http_body(&self) -> String {
        match self {
            OnionError::DecryptFailed
            | OnionError::CiphertextTooShort { .. }
            | OnionError::KeyExchange(_) => "Invalid ciphertext".to_owned(),
            OnionError::InvalidUrl(_) | OnionError::ForbiddenAddress(_) | OnionError::NoAddress => {
                "Invalid url".to_owned()
            }
            OnionError::HopLimitExceeded(_) => "onion request max path length exceeded".to_owned(),
            other => other.to_string(),
        }
    }
}

impl From<BencodeError> for OnionError {
    fn from(e: BencodeError) -> Self {
        OnionError::RelayBencode(e)
    }
}
