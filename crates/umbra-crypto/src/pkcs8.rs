//! PKCS#8 encoding of an Ed25519 private key (RFC 8410 §7), for TLS libraries
//! that load keys as DER (`shared/spec/storage-rpc.md` §1.3: a node's TLS
//! certificate carries its Ed25519 identity key).
//!
//! The encoding is the fixed 16-byte `OneAsymmetricKey` v1 header followed by
//! the 32-byte seed:
//!
//! ```text
//! 30 2e                      SEQUENCE (46 bytes)
//!    02 01 00                INTEGER 0 (v1)
//!    30 05 06 03 2b 65 70    AlgorithmIdentifier { id-Ed25519 (1.3.101.112) }
//!    04 22 04 20 <seed>      OCTET STRING { OCTET STRING (32 bytes) }
//! ```

use zeroize::Zeroizing;

use crate::Ed25519Keypair;

/// The DER bytes that precede the seed in an RFC 8410 PKCS#8 v1 Ed25519 key.
const ED25519_PKCS8_V1_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// Encodes the keypair's seed as an RFC 8410 PKCS#8 v1 private key (48 bytes
/// of DER). The result holds the secret seed and is zeroized on drop.
pub fn ed25519_pkcs8_der(keypair: &Ed25519Keypair) -> Zeroizing<Vec<u8>> {
    let seed = keypair.seed();
    let mut der = Zeroizing::new(Vec::with_capacity(ED25519_PKCS8_V1_PREFIX.len() + 32));
    der.extend_from_slice(&ED25519_PKCS8_V1_PREFIX);
    der.extend_from_slice(seed.as_slice());
    der
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_prefix_then_seed() {
        let seed = [0x42u8; 32];
        let der = ed25519_pkcs8_der(&Ed25519Keypair::from_seed(&seed));
        assert_eq!(der.len(), 48);
        assert_eq!(der[..16], ED25519_PKCS8_V1_PREFIX);
        assert_eq!(der[16..], seed);
        // The outer SEQUENCE length covers exactly the rest of the encoding.
        assert_eq!(usize::from(der[1]), der.len() - 2);
    }

    #[test]
    fn rfc8410_example_encoding() {
        // RFC 8410 §10.3 example private key.
        let seed = hex::decode("d4ee72dbf913584ad5b6d8f1f769f8ad3afe7c28cbf1d4fbe097a88f44755842")
            .unwrap();
        let kp = Ed25519Keypair::from_seed_slice(&seed).unwrap();
        let expected = hex::decode(
            "302e020100300506032b657004220420\
             d4ee72dbf913584ad5b6d8f1f769f8ad3afe7c28cbf1d4fbe097a88f44755842",
        )
        .unwrap();
        assert_eq!(*ed25519_pkcs8_der(&kp), expected);
    }
}
