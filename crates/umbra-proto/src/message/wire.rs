//! Protobuf wrapping of 1:1 messages (`shared/spec/messages.md` §5.1, §6, §7):
//! `Content` serialization, the `Envelope` and `WebSocketMessage` layers
//! around the ciphertext, and the `sigTimestamp` binding check.
//!
//! Writers emit fields in field-number order (prost encodes by tag), with
//! exactly the fields §5.1 lists. Readers parse, never compare bytes, and
//! ignore unknown fields; they accept a stored blob that is either a
//! `WebSocketMessage` wrapping an `Envelope` or a bare `Envelope`.

use std::fmt;

use prost::Message;

use super::MessageError;
use super::padding::MAX_CONTENT_LEN;
use super::protos::{
    Content, Envelope, WebSocketMessage, WebSocketRequestMessage, envelope, web_socket_message,
};

/// The `Envelope.sourceDevice` senders write (§5.1); ignored on read.
pub const SOURCE_DEVICE: u32 = 1;

/// Serializes `content`, refusing anything over [`MAX_CONTENT_LEN`] bytes
/// (§4 size limit).
///
/// # Errors
/// [`MessageError::ContentTooLarge`].
pub fn encode_content(content: &Content) -> Result<Vec<u8>, MessageError> {
    let len = content.encoded_len();
    if len > MAX_CONTENT_LEN {
        return Err(MessageError::ContentTooLarge {
            len,
            max: MAX_CONTENT_LEN,
        });
    }
    Ok(content.encode_to_vec())
}

/// Parses an unpadded `Content` (§3 step 6). Unknown fields are skipped.
///
/// # Errors
/// [`MessageError::Protobuf`] when the bytes are not a valid `Content`.
pub fn decode_content(bytes: &[u8]) -> Result<Content, MessageError> {
    Content::decode(bytes).map_err(|source| MessageError::Protobuf {
        what: "Content",
        source,
    })
}

/// Builds the `Envelope` an Umbra sender writes (§5.1): `type = 6`,
/// `timestamp`, `sourceDevice = 1`, `content = ciphertext`; no `source`,
/// `serverTimestamp` or `proSig`.
pub fn envelope(ciphertext: &[u8], timestamp_ms: u64) -> Envelope {
    Envelope {
        r#type: Some(envelope::Type::SessionMessage as i32),
        source: None,
        timestamp: Some(timestamp_ms),
        source_device: Some(SOURCE_DEVICE),
        content: Some(ciphertext.to_vec()),
        pro_sig: None,
    }
}

/// Serializes the Umbra sender's `Envelope` (see [`envelope()`]).
pub fn encode_envelope(ciphertext: &[u8], timestamp_ms: u64) -> Vec<u8> {
    envelope(ciphertext, timestamp_ms).encode_to_vec()
}

/// Serializes an `Envelope` as Session Pro senders do, with `proSig`
/// (field 11) appended when `pro_sig` is not empty.
///
/// Umbra never writes `proSig`; this exists to reproduce the `envelope_wire`
/// vectors and to build test input for receivers, which must ignore it.
pub fn encode_envelope_with_pro_sig(
    ciphertext: &[u8],
    timestamp_ms: u64,
    pro_sig: &[u8],
) -> Vec<u8> {
    let mut env = envelope(ciphertext, timestamp_ms);
    if !pro_sig.is_empty() {
        env.pro_sig = Some(pro_sig.to_vec());
    }
    env.encode_to_vec()
}

/// Wraps a serialized `Envelope` in the `WebSocketMessage` that is stored on
/// the swarm (§5.1): `type = REQUEST`, `request { verb "", path "",
/// body = envelope, requestId 0 }`, with the empty strings and the zero
/// written explicitly. The result is what `store` carries, base64-encoded,
/// in its `data`.
pub fn wrap_websocket(envelope: &[u8]) -> Vec<u8> {
    WebSocketMessage {
        r#type: Some(web_socket_message::Type::Request as i32),
        request: Some(WebSocketRequestMessage {
            verb: Some(String::new()),
            path: Some(String::new()),
            body: Some(envelope.to_vec()),
            request_id: Some(0),
        }),
    }
    .encode_to_vec()
}

/// The fields a receiver uses from a parsed, validated `Envelope`.
#[derive(Clone, PartialEq, Eq)]
pub struct ReceivedEnvelope {
    /// `Envelope.timestamp`, ms. Unauthenticated: see [`bind_timestamp`].
    pub timestamp_ms: u64,
    /// `Envelope.content`: the ciphertext.
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for ReceivedEnvelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceivedEnvelope")
            .field("timestamp_ms", &self.timestamp_ms)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish()
    }
}

/// Parses and validates a serialized `Envelope` (§5.1, receivers).
///
/// Requires `type = SESSION_MESSAGE (6)`, a `timestamp` and a `content`;
/// ignores `source`, `sourceDevice`, `serverTimestamp`, `proSig` and unknown
/// fields.
///
/// # Errors
/// [`MessageError::Protobuf`] when the bytes do not parse;
/// [`MessageError::MissingField`] when `type`, `timestamp` or `content` is
/// absent; [`MessageError::WrongEnvelopeType`] for any other type.
pub fn decode_envelope(bytes: &[u8]) -> Result<ReceivedEnvelope, MessageError> {
    let env = Envelope::decode(bytes).map_err(|source| MessageError::Protobuf {
        what: "Envelope",
        source,
    })?;
    let ty = env
        .r#type
        .ok_or(MessageError::MissingField("Envelope.type"))?;
    if ty != envelope::Type::SessionMessage as i32 {
        return Err(MessageError::WrongEnvelopeType(ty));
    }
    let timestamp_ms = env
        .timestamp
        .ok_or(MessageError::MissingField("Envelope.timestamp"))?;
    let ciphertext = env
        .content
        .ok_or(MessageError::MissingField("Envelope.content"))?;
    Ok(ReceivedEnvelope {
        timestamp_ms,
        ciphertext,
    })
}

/// Extracts the `Envelope` from a blob retrieved from the swarm (§5.1,
/// receivers): a `WebSocketMessage` whose `request.body` is the Envelope,
/// or a bare Envelope. The bare form is used when parsing as
/// `WebSocketMessage` fails or yields no `request.body`.
///
/// The blob is the raw bytes (the caller base64-decodes `retrieve`'s `data`).
///
/// # Errors
/// As [`decode_envelope`].
pub fn unwrap_stored(stored: &[u8]) -> Result<ReceivedEnvelope, MessageError> {
    let body = WebSocketMessage::decode(stored)
        .ok()
        .and_then(|ws| ws.request)
        .and_then(|req| req.body);
    match body {
        Some(body) => decode_envelope(&body),
        None => decode_envelope(stored),
    }
}

/// The `sigTimestamp` binding of §7: returns the message's timestamp `T`
/// (ms) given the unauthenticated `Envelope.timestamp` and the decrypted
/// (signed) `Content`.
///
/// - `sigTimestamp` present and different from `Envelope.timestamp`: the
///   message must be dropped (error);
/// - `sigTimestamp` present: it is `T`;
/// - absent (older Session senders): `Envelope.timestamp` is `T`,
///   unauthenticated.
///
/// # Errors
/// [`MessageError::TimestampMismatch`].
pub fn bind_timestamp(envelope_timestamp_ms: u64, content: &Content) -> Result<u64, MessageError> {
    match content.sig_timestamp {
        Some(signed) if signed != envelope_timestamp_ms => Err(MessageError::TimestampMismatch {
            envelope: envelope_timestamp_ms,
            signed,
        }),
        Some(signed) => Ok(signed),
        None => Ok(envelope_timestamp_ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::protos::{
        DataMessage, ReceiptMessage, TypingMessage, data_message, receipt_message,
    };
    use proptest::prelude::*;

    #[test]
    fn envelope_wire_vector() {
        // test-vectors/message.json envelope_wire/wire-example, shortened
        // content: the layout is what matters.
        let env = encode_envelope(b"\xaa\xbb", 1_754_971_101_000);
        assert_eq!(
            hex::encode(&env),
            "080628c8aeb7e389333801420 2aabb".replace(' ', "")
        );
        let ws = wrap_websocket(&env);
        let mut want = vec![
            0x08,
            0x01,
            0x12,
            (env.len() + 8) as u8,
            0x0a,
            0x00,
            0x12,
            0x00,
            0x1a,
            env.len() as u8,
        ];
        want.extend_from_slice(&env);
        want.extend_from_slice(&[0x20, 0x00]);
        assert_eq!(ws, want);
        let with_sig = encode_envelope_with_pro_sig(b"\xaa\xbb", 1_754_971_101_000, &[7; 64]);
        assert_eq!(&with_sig[..env.len()], &env[..]);
        assert_eq!(&with_sig[env.len()..env.len() + 2], &[0x5a, 64]);
        assert_eq!(
            encode_envelope_with_pro_sig(b"\xaa\xbb", 1_754_971_101_000, b""),
            env
        );
    }

    #[test]
    fn unwrap_both_forms_and_ignore_extras() {
        let env = encode_envelope_with_pro_sig(b"ct", 42, &[1; 64]);
        let want = ReceivedEnvelope {
            timestamp_ms: 42,
            ciphertext: b"ct".to_vec(),
        };
        assert_eq!(unwrap_stored(&wrap_websocket(&env)).unwrap(), want);
        assert_eq!(unwrap_stored(&env).unwrap(), want);

        // A `source`, a serverTimestamp (10), and an unknown field 999.
        let mut e = envelope(b"ct", 42);
        e.source = Some(String::new());
        let mut bytes = e.encode_to_vec();
        bytes.extend_from_slice(&[0x50, 0x07]); // field 10 varint 7
        bytes.extend_from_slice(&[0xba, 0x3e, 0x01, 0x00]); // field 999 bytes len 1
        assert_eq!(unwrap_stored(&bytes).unwrap(), want);
        assert_eq!(unwrap_stored(&wrap_websocket(&bytes)).unwrap(), want);
    }

    #[test]
    fn envelope_refusals() {
        let mut e = envelope(b"ct", 42);
        e.r#type = Some(envelope::Type::ClosedGroupMessage as i32);
        assert_eq!(
            unwrap_stored(&e.encode_to_vec()),
            Err(MessageError::WrongEnvelopeType(7))
        );
        let mut e = envelope(b"ct", 42);
        e.r#type = None;
        assert_eq!(
            unwrap_stored(&e.encode_to_vec()),
            Err(MessageError::MissingField("Envelope.type"))
        );
        let mut e = envelope(b"ct", 42);
        e.timestamp = None;
        assert_eq!(
            unwrap_stored(&e.encode_to_vec()),
            Err(MessageError::MissingField("Envelope.timestamp"))
        );
        let mut e = envelope(b"ct", 42);
        e.content = None;
        assert_eq!(
            unwrap_stored(&e.encode_to_vec()),
            Err(MessageError::MissingField("Envelope.content"))
        );
        // Truncated field: not protobuf at all.
        assert!(matches!(
            unwrap_stored(&[0x42, 0x05, 0x00]),
            Err(MessageError::Protobuf {
                what: "Envelope",
                ..
            })
        ));
        // An empty blob parses as an empty Envelope, which lacks its type.
        assert_eq!(
            unwrap_stored(b""),
            Err(MessageError::MissingField("Envelope.type"))
        );
        // A WebSocketMessage whose body is garbage is refused, not reinterpreted.
        assert!(matches!(
            unwrap_stored(&wrap_websocket(&[0xff])),
            Err(MessageError::Protobuf { .. })
        ));
    }

    #[test]
    fn content_limits_and_parse_errors() {
        let big = Content {
            data_message: Some(DataMessage {
                body: Some("x".repeat(MAX_CONTENT_LEN)),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(matches!(
            encode_content(&big),
            Err(MessageError::ContentTooLarge {
                max: MAX_CONTENT_LEN,
                ..
            })
        ));
        let exact = Content {
            // 1 key byte + 3 length bytes + body, inside 1 + 3 bytes of Content framing.
            data_message: Some(DataMessage {
                body: Some("x".repeat(MAX_CONTENT_LEN - 8)),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(encode_content(&exact).unwrap().len(), MAX_CONTENT_LEN);
        assert!(matches!(
            decode_content(&[0x0a, 0x05]),
            Err(MessageError::Protobuf {
                what: "Content",
                ..
            })
        ));
        // Invalid UTF-8 in a string field.
        assert!(matches!(
            decode_content(&[0x0a, 0x03, 0x0a, 0x01, 0xff]),
            Err(MessageError::Protobuf { .. })
        ));
    }

    #[test]
    fn content_field_order_and_required_fields() {
        let c = Content {
            typing_message: Some(TypingMessage {
                timestamp: 0,
                action: 0,
            }),
            sig_timestamp: Some(5),
            receipt_message: Some(ReceiptMessage {
                r#type: receipt_message::Type::Read as i32,
                timestamp: vec![1, 2],
            }),
            ..Default::default()
        };
        let bytes = encode_content(&c).unwrap();
        // receiptMessage (5) { type 1, ts 1, ts 2 (unpacked, proto2) },
        // typingMessage (6) with both required zero fields written, sigTimestamp (15).
        assert_eq!(
            hex::encode(&bytes),
            "2a06080110011002320408001000780 5".replace(' ', "")
        );
        assert_eq!(decode_content(&bytes).unwrap(), c);
    }

    #[test]
    fn ignored_and_unknown_content_fields_are_skipped() {
        let c = Content {
            sig_timestamp: Some(5),
            ..Default::default()
        };
        let mut bytes = c.encode_to_vec();
        bytes.extend_from_slice(&[0x1a, 0x02, 0x08, 0x01]); // callMessage (3) { type 1 }
        bytes.extend_from_slice(&[0x82, 0x01, 0x00]); // proMessage (16), empty
        bytes.extend_from_slice(&[0xd0, 0x41, 0x01]); // extension field 1050, varint 1
        assert_eq!(decode_content(&bytes).unwrap(), c);
    }

    #[test]
    fn timestamp_binding() {
        let mut c = Content::default();
        assert_eq!(bind_timestamp(10, &c), Ok(10));
        c.sig_timestamp = Some(10);
        assert_eq!(bind_timestamp(10, &c), Ok(10));
        c.sig_timestamp = Some(11);
        assert_eq!(
            bind_timestamp(10, &c),
            Err(MessageError::TimestampMismatch {
                envelope: 10,
                signed: 11
            })
        );
    }

    fn arb_content() -> impl Strategy<Value = Content> {
        (
            proptest::option::of(".{0,40}"),
            proptest::option::of(any::<u64>()),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
            proptest::option::of((any::<u64>(), "[0-9a-f]{66}")),
            proptest::option::of(any::<u32>()),
            proptest::option::of(proptest::collection::vec(any::<u64>(), 0..5)),
        )
            .prop_map(|(body, sig_ts, key, quote, timer, receipts)| Content {
                data_message: Some(DataMessage {
                    body,
                    profile_key: key,
                    quote: quote.map(|(id, author)| data_message::Quote { id, author }),
                    ..Default::default()
                }),
                receipt_message: receipts.map(|timestamp| ReceiptMessage {
                    r#type: receipt_message::Type::Read as i32,
                    timestamp,
                }),
                expiration_timer: timer,
                sig_timestamp: sig_ts,
                ..Default::default()
            })
    }

    proptest! {
        #[test]
        fn content_round_trip(c in arb_content()) {
            let bytes = encode_content(&c).unwrap();
            prop_assert_eq!(decode_content(&bytes).unwrap(), c);
        }

        #[test]
        fn envelope_round_trip(ct in proptest::collection::vec(any::<u8>(), 0..300), ts in any::<u64>(), ws in any::<bool>()) {
            let env = encode_envelope(&ct, ts);
            let stored = if ws { wrap_websocket(&env) } else { env };
            let got = unwrap_stored(&stored).unwrap();
            prop_assert_eq!(got.timestamp_ms, ts);
            prop_assert_eq!(got.ciphertext, ct);
        }

        #[test]
        fn unwrap_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = unwrap_stored(&bytes);
            let _ = decode_content(&bytes);
        }
    }
}
