//! The hop-to-hop relay message (spec `onion.md` §6): the canonical
//! bencoded body of `POST /node/v1/onion`, and hop counting (§6.1).
//!
//! ```text
//! d 4:data <ciphertext> 8:enc_type <"xchacha20"|"aes-gcm">
//!   13:ephemeral_key <32 bytes> 6:hop_no i<n>e e
//! ```

use umbra_crypto::X25519Public;

use super::{EncType, OnionError};
use crate::bencode::{self, Value};

/// The largest `hop_no` a node accepts (`MAX_ONION_HOPS`).
pub const MAX_ONION_HOPS: u64 = 15;

/// One encrypted layer travelling from a node to the next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayMessage {
    /// The next node's layer ciphertext.
    pub data: Vec<u8>,
    /// Its cipher.
    pub enc_type: EncType,
    /// The client's ephemeral X25519 key for that layer.
    pub ephemeral_key: X25519Public,
    /// The hop count the receiver sees (the sender's count plus one).
    pub hop_no: u64,
}

impl RelayMessage {
    /// Encodes the canonical bencoded dictionary (written directly: the
    /// keys are fixed and already in bencode order).
    pub fn encode(&self) -> Vec<u8> {
        let enc = self.enc_type.as_str().as_bytes();
        let hop = i64::try_from(self.hop_no).unwrap_or(i64::MAX);
        let mut out = Vec::with_capacity(self.data.len() + 96);
        out.extend_from_slice(b"d4:data");
        out.extend_from_slice(self.data.len().to_string().as_bytes());
        out.push(b':');
        out.extend_from_slice(&self.data);
        out.extend_from_slice(b"8:enc_type");
        out.extend_from_slice(enc.len().to_string().as_bytes());
        out.push(b':');
        out.extend_from_slice(enc);
        out.extend_from_slice(b"13:ephemeral_key32:");
        out.extend_from_slice(self.ephemeral_key.as_bytes());
        out.extend_from_slice(b"6:hop_noi");
        out.extend_from_slice(hop.to_string().as_bytes());
        out.extend_from_slice(b"ee");
        out
    }

    /// Decodes a relay body. `hop_no < 1` is read as 1; `hop_no` above
    /// [`MAX_ONION_HOPS`] is refused (before any decryption). Unknown keys
    /// are ignored; `enc_type` follows the §1 name rules.
    pub fn decode(body: &[u8]) -> Result<Self, OnionError> {
        let v = bencode::decode(body)?;
        if v.as_dict().is_none() {
            return Err(OnionError::BadRelayField("<dictionary>"));
        }
        let hop = v
            .get(b"hop_no")
            .and_then(Value::as_int)
            .ok_or(OnionError::BadRelayField("hop_no"))?;
        let hop_no = u64::try_from(hop.max(1)).unwrap_or(1);
        if hop_no > MAX_ONION_HOPS {
            return Err(OnionError::HopLimitExceeded(hop_no));
        }
        let data = v
            .get(b"data")
            .and_then(Value::as_bytes)
            .ok_or(OnionError::BadRelayField("data"))?
            .to_vec();
        let enc_name = v
            .get(b"enc_type")
            .and_then(Value::as_bytes)
            .and_then(|b| std::str::from_utf8(b).ok())
            .ok_or(OnionError::BadRelayField("enc_type"))?;
        let enc_type = EncType::parse(enc_name)?;
        let key = v
            .get(b"ephemeral_key")
            .and_then(Value::as_bytes)
            .and_then(|b| X25519Public::from_slice(b).ok())
            .ok_or(OnionError::BadRelayField("ephemeral_key"))?;
        Ok(RelayMessage {
            data,
            enc_type,
            ephemeral_key: key,
            hop_no,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bencode::BencodeError;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn msg(hop_no: u64) -> RelayMessage {
        RelayMessage {
            data: b"ct".to_vec(),
            enc_type: EncType::XChaCha20,
            ephemeral_key: X25519Public::from_bytes([7; 32]),
            hop_no,
        }
    }

    #[test]
    fn layout() {
        let enc = msg(2).encode();
        let mut want = b"d4:data2:ct8:enc_type9:xchacha2013:ephemeral_key32:".to_vec();
        want.extend_from_slice(&[7; 32]);
        want.extend_from_slice(b"6:hop_noi2ee");
        assert_eq!(enc, want);
    }

    #[test]
    fn hop_counting() {
        assert_eq!(
            RelayMessage::decode(&msg(15).encode()).map(|m| m.hop_no),
            Ok(15)
        );
        assert_eq!(
            RelayMessage::decode(&msg(16).encode()),
            Err(OnionError::HopLimitExceeded(16))
        );
        // hop_no < 1 is treated as 1.
        let mut zero = msg(0).encode();
        assert_eq!(RelayMessage::decode(&zero).map(|m| m.hop_no), Ok(1));
        let len = zero.len();
        zero.splice(len - 3..len - 2, b"-5".iter().copied());
        assert_eq!(RelayMessage::decode(&zero).map(|m| m.hop_no), Ok(1));
    }

    #[test]
    fn refusals() {
        let ok = msg(3).encode();
        assert_eq!(
            RelayMessage::decode(&ok[..ok.len() - 1]),
            Err(OnionError::RelayBencode(BencodeError::UnexpectedEnd(
                ok.len() - 1
            )))
        );
        assert_eq!(
            RelayMessage::decode(b"le"),
            Err(OnionError::BadRelayField("<dictionary>"))
        );
        assert_eq!(
            RelayMessage::decode(b"d6:hop_noi1ee"),
            Err(OnionError::BadRelayField("data"))
        );
        let cbc = String::from_utf8_lossy(&ok).replace("9:xchacha20", "7:aes-cbc");
        assert_eq!(
            RelayMessage::decode(cbc.as_bytes()),
            Err(OnionError::UnsupportedEncType("aes-cbc".into()))
        );
        let mut short_key = b"d4:data2:ct8:enc_type7:aes-gcm13:ephemeral_key31:".to_vec();
        short_key.extend_from_slice(&[7; 31]);
        short_key.extend_from_slice(b"6:hop_noi2ee");
        assert_eq!(
            RelayMessage::decode(&short_key),
            Err(OnionError::BadRelayField("ephemeral_key"))
        );
    }

    proptest! {
        #[test]
        fn round_trip(data in proptest::collection::vec(any::<u8>(), 0..100), key in any::<[u8; 32]>(),
                      hop in 1u64..=15, x in any::<bool>()) {
            let m = RelayMessage {
                data,
                enc_type: if x { EncType::XChaCha20 } else { EncType::AesGcm },
                ephemeral_key: X25519Public::from_bytes(key),
                hop_no: hop,
            };
            prop_assert_eq!(RelayMessage::decode(&m.encode()), Ok(m));
        }

        #[test]
        fn encode_matches_generic_bencode(data in proptest::collection::vec(any::<u8>(), 0..300),
                                          hop in 0u64..=20, x in any::<bool>()) {
            let m = RelayMessage {
                data: data.clone(),
                enc_type: if x { EncType::XChaCha20 } else { EncType::AesGcm },
                ephemeral_key: X25519Public::from_bytes([9; 32]),
                hop_no: hop,
            };
            let mut d = BTreeMap::new();
            d.insert(b"data".to_vec(), Value::Bytes(data));
            d.insert(b"enc_type".to_vec(), Value::bytes(m.enc_type.as_str().as_bytes()));
            d.insert(b"ephemeral_key".to_vec(), Value::bytes(vec![9u8; 32]));
            d.insert(b"hop_no".to_vec(), Value::Int(hop as i64));
            prop_assert_eq!(m.encode(), bencode::encode(&Value::Dict(d)));
        }

        #[test]
        fn never_panics(body in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = RelayMessage::decode(&body);
        }
    }
}
