//! One-to-one messages (`shared/spec/messages.md` §1–7): Session-compatible
//! encryption, padding, and the protobuf wrapping stored on the swarm.
//!
//! Pipeline (§1), sender then receiver:
//!
//! ```text
//! Content ─encode─▶ pad ─▶ encrypt (sign M‖A‖Y, sealed box) ─▶ Envelope ─▶ WebSocketMessage ─▶ store
//! retrieve ─▶ unwrap_stored ─▶ decrypt + sender ─▶ unpad ─▶ Content ─▶ bind_timestamp
//! ```
//!
//! [`seal_content`] and [`open_envelope`] run the whole pipeline; the
//! submodules expose each step:
//!
//! | module | owns | spec |
//! | --- | --- | --- |
//! | [`mod@encrypt`] | `encrypt`, `encrypt_deterministic`, `decrypt` + sender recovery | §2–3 |
//! | [`padding`] | 160-byte padding, tolerant unpadding, the Content size limit | §4 |
//! | [`wire`] | Content, Envelope and WebSocketMessage encoding; `sigTimestamp` binding | §5.1, §6, §7 |
//! | [`protos`] | the generated protobuf types | §6 |
//!
//! Nothing here draws randomness: the sealed box's ephemeral secret is a
//! parameter, drawn by the caller.

use std::borrow::Cow;
use std::fmt;

use umbra_crypto::{CryptoError, Ed25519Public};
use zeroize::Zeroizing;

use crate::identity::{AccountId, AccountKeys};

pub mod encrypt;
pub mod padding;
pub mod protos;
pub mod wire;

pub use encrypt::{Decrypted, ENCRYPTION_OVERHEAD, decrypt, encrypt, encrypt_deterministic};
pub use padding::{MAX_CONTENT_LEN, pad, unpad};
pub use protos::Content;
pub use wire::{
    ReceivedEnvelope, bind_timestamp, decode_content, decode_envelope, encode_content,
    encode_envelope, unwrap_stored, wrap_websocket,
};

/// Why a 1:1 message could not be built, or was dropped on receipt.
///
/// Every variant names the check that failed; none carries key material or
/// plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// The ciphertext is shorter than the 144 bytes of encryption overhead.
    #[error("ciphertext too short: {got} bytes, need at least {min}")]
    TooShort {
        /// The length received.
        got: usize,
        /// The minimum length (144).
        min: usize,
    },
    /// The sealed box did not open: wrong recipient or tampered ciphertext.
    #[error("sealed box does not open: wrong recipient or tampered ciphertext")]
    DecryptFailed,
    /// The sender's signature over `M ‖ A ‖ Y` did not verify.
    #[error("sender signature does not verify for this recipient")]
    BadSignature,
    /// The sender's Ed25519 key is not a valid prime-order point, so it has
    /// no account ID.
    #[error("invalid sender Ed25519 key: {0}")]
    InvalidSenderKey(CryptoError),
    /// The recipient is not a standard (`05`) account.
    #[error("1:1 messages go to 05 accounts, not prefix {prefix:02x}")]
    NotStandardAccount {
        /// The recipient's prefix byte.
        prefix: u8,
    },
    /// The recipient's X25519 key cannot be encrypted to (small-order point).
    #[error("cannot encrypt to the recipient key: {0}")]
    InvalidRecipientKey(CryptoError),
    /// The serialized `Content` exceeds the §4 size limit.
    #[error("serialized Content is {len} bytes, the limit is {max}")]
    ContentTooLarge {
        /// The serialized length.
        len: usize,
        /// The limit ([`MAX_CONTENT_LEN`]).
        max: usize,
    },
    /// A protobuf message did not parse.
    #[error("cannot parse {what}: {source}")]
    Protobuf {
        /// Which message was being parsed.
        what: &'static str,
        /// The decoder's error.
        source: prost::DecodeError,
    },
    /// A field the receiver requires is absent.
    #[error("{0} is missing")]
    MissingField(&'static str),
    /// `Envelope.type` is not `SESSION_MESSAGE (6)`.
    #[error("Envelope type is {0}, expected SESSION_MESSAGE (6)")]
    WrongEnvelopeType(i32),
    /// `Content.sigTimestamp` and `Envelope.timestamp` differ (§7), or a
    /// sender passed a `Content` whose `sigTimestamp` is not the send time.
    #[error("Content.sigTimestamp {signed} differs from Envelope.timestamp {envelope}")]
    TimestampMismatch {
        /// `Envelope.timestamp` (ms).
        envelope: u64,
        /// `Content.sigTimestamp` (ms).
        signed: u64,
    },
    /// A primitive refused parameters this module chose (a bug, not bad input).
    #[error("internal cryptographic error: {0}")]
    Internal(CryptoError),
}

/// Encrypts and wraps a `Content` for storage in `recipient`'s swarm
/// (§1, §5.1–5.2): sets `sigTimestamp = timestamp_ms`, serializes (at most
/// [`MAX_CONTENT_LEN`] bytes), pads, encrypts from `sender` to `recipient`,
/// and wraps the ciphertext in an `Envelope` (`timestamp = timestamp_ms`) and
/// a `WebSocketMessage`.
///
/// Returns the bytes to store: the caller base64-encodes them into the
/// `store` request's `data` (namespace 0). For a sync copy (§9), call it
/// again with `recipient = sender.account_id()` and `syncTarget` set.
///
/// `timestamp_ms` is the sent time `T` from the network clock (§7);
/// `ephemeral_secret` is 32 fresh random bytes (never reused).
///
/// # Errors
/// - [`MessageError::TimestampMismatch`] if `content.sig_timestamp` is set to
///   something other than `timestamp_ms`;
/// - [`MessageError::ContentTooLarge`];
/// - [`MessageError::NotStandardAccount`] / [`MessageError::InvalidRecipientKey`]
///   for a recipient that cannot receive 1:1 messages.
pub fn seal_content(
    sender: &AccountKeys,
    recipient: &AccountId,
    content: &Content,
    timestamp_ms: u64,
    ephemeral_secret: [u8; 32],
) -> Result<Vec<u8>, MessageError> {
    let content = match content.sig_timestamp {
        Some(t) if t == timestamp_ms => Cow::Borrowed(content),
        Some(signed) => {
            return Err(MessageError::TimestampMismatch {
                envelope: timestamp_ms,
                signed,
            });
        }
        None => {
            let mut c = content.clone();
            c.sig_timestamp = Some(timestamp_ms);
            Cow::Owned(c)
        }
    };
    let plain = Zeroizing::new(encode_content(&content)?);
    let padded = Zeroizing::new(pad(&plain));
    let ciphertext = encrypt(sender.ed25519(), recipient, &padded, ephemeral_secret)?;
    Ok(wrap_websocket(&encode_envelope(&ciphertext, timestamp_ms)))
}

/// A received 1:1 message: its authenticated sender, its content and its
/// timestamp.
#[derive(Clone, PartialEq)]
pub struct Opened {
    /// The sender's account ID (from the signature key, never from
    /// `Envelope.source`). May be our own account: a sync copy (§9).
    pub sender: AccountId,
    /// The sender's Ed25519 key, whose signature verified.
    pub sender_ed25519: Ed25519Public,
    /// The decrypted, unpadded `Content`.
    pub content: Content,
    /// The message's sent time `T` in ms (§7): `sigTimestamp` when present,
    /// else `Envelope.timestamp`. It identifies the message for quotes,
    /// reactions, receipts and unsend.
    pub timestamp_ms: u64,
    /// True when `timestamp_ms` came from the signed `sigTimestamp`; false
    /// when only the unauthenticated `Envelope.timestamp` was available
    /// (older Session senders).
    pub timestamp_signed: bool,
}

impl fmt::Debug for Opened {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opened")
            .field("sender", &self.sender)
            .field("timestamp_ms", &self.timestamp_ms)
            .field("timestamp_signed", &self.timestamp_signed)
            .field("content", &self.content)
            .finish()
    }
}

/// Unwraps, decrypts and parses a blob retrieved from our swarm's namespace
/// 0 (§3, §5.1, §5.3, §7). `stored` is the raw (base64-decoded) `data`:
/// a `WebSocketMessage` or a bare `Envelope`.
///
/// Never panics, whatever the input bytes; every failure means "drop the
/// message".
///
/// # Errors
/// Any error of [`unwrap_stored`], [`decrypt`], [`decode_content`] and
/// [`bind_timestamp`].
pub fn open_envelope(recipient: &AccountKeys, stored: &[u8]) -> Result<Opened, MessageError> {
    let env = unwrap_stored(stored)?;
    let decrypted = decrypt(recipient.x25519_secret(), &env.ciphertext)?;
    let content = decode_content(unpad(&decrypted.plaintext))?;
    let timestamp_ms = bind_timestamp(env.timestamp_ms, &content)?;
    Ok(Opened {
        sender: decrypted.sender,
        sender_ed25519: decrypted.sender_ed25519,
        timestamp_signed: content.sig_timestamp.is_some(),
        content,
        timestamp_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::protos::{DataMessage, Message, data_message};
    use super::*;
    use proptest::prelude::*;

    fn keys(b: u8) -> AccountKeys {
        AccountKeys::from_seed(&[b; 32])
    }

    fn text(body: &str) -> Content {
        Content {
            data_message: Some(DataMessage {
                body: Some(body.into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn seal_then_open() {
        let (alice, bob) = (keys(1), keys(2));
        let stored = seal_content(
            &alice,
            &bob.account_id(),
            &text("hello"),
            1_700_000_000_000,
            [5; 32],
        )
        .unwrap();
        let opened = open_envelope(&bob, &stored).unwrap();
        assert_eq!(opened.sender, alice.account_id());
        assert_eq!(opened.sender_ed25519, alice.ed25519_public());
        assert_eq!(opened.timestamp_ms, 1_700_000_000_000);
        assert!(opened.timestamp_signed);
        assert_eq!(opened.content.sig_timestamp, Some(1_700_000_000_000));
        assert_eq!(
            opened.content.data_message.unwrap().body.as_deref(),
            Some("hello")
        );
        // The Debug output shows no message text.
        let opened = open_envelope(&bob, &stored).unwrap();
        assert!(!format!("{opened:?}").contains("hello"));
        // Only Bob can open it.
        assert_eq!(
            open_envelope(&alice, &stored),
            Err(MessageError::DecryptFailed)
        );
    }

    #[test]
    fn sender_timestamp_must_match() {
        let (alice, bob) = (keys(1), keys(2));
        let mut c = text("x");
        c.sig_timestamp = Some(5);
        assert_eq!(
            seal_content(&alice, &bob.account_id(), &c, 6, [5; 32]),
            Err(MessageError::TimestampMismatch {
                envelope: 6,
                signed: 5
            })
        );
        assert!(seal_content(&alice, &bob.account_id(), &c, 5, [5; 32]).is_ok());
    }

    /// Builds a stored blob by hand with a chosen Envelope timestamp.
    fn stored_with(
        content: &Content,
        env_ts: u64,
        from: &AccountKeys,
        to: &AccountKeys,
    ) -> Vec<u8> {
        let padded = pad(&content.encode_to_vec());
        let ct = encrypt(from.ed25519(), &to.account_id(), &padded, [6; 32]).unwrap();
        wrap_websocket(&encode_envelope(&ct, env_ts))
    }

    #[test]
    fn envelope_timestamp_tampering_is_caught() {
        let (alice, bob) = (keys(1), keys(2));
        let mut c = text("x");
        c.sig_timestamp = Some(100);
        let stored = stored_with(&c, 101, &alice, &bob);
        assert_eq!(
            open_envelope(&bob, &stored),
            Err(MessageError::TimestampMismatch {
                envelope: 101,
                signed: 100
            })
        );
    }

    #[test]
    fn legacy_sender_without_sig_timestamp() {
        let (alice, bob) = (keys(1), keys(2));
        let stored = stored_with(&text("old"), 77, &alice, &bob);
        let opened = open_envelope(&bob, &stored).unwrap();
        assert_eq!(opened.timestamp_ms, 77);
        assert!(!opened.timestamp_signed);
    }

    #[test]
    fn legacy_padding_and_bare_envelope_accepted() {
        let (alice, bob) = (keys(1), keys(2));
        let mut c = text("legacy");
        c.sig_timestamp = Some(9);
        let padded = padding::pad_legacy(&c.encode_to_vec());
        let ct = encrypt(alice.ed25519(), &bob.account_id(), &padded, [6; 32]).unwrap();
        let opened = open_envelope(&bob, &encode_envelope(&ct, 9)).unwrap();
        assert_eq!(opened.content, c);
    }

    #[test]
    fn undecodable_content_is_refused() {
        let (alice, bob) = (keys(1), keys(2));
        let padded = pad(&[0x0a, 0x09, 0x01]);
        let ct = encrypt(alice.ed25519(), &bob.account_id(), &padded, [6; 32]).unwrap();
        assert!(matches!(
            open_envelope(&bob, &encode_envelope(&ct, 1)),
            Err(MessageError::Protobuf {
                what: "Content",
                ..
            })
        ));
    }

    #[test]
    fn too_large_content_is_refused() {
        let (alice, bob) = (keys(1), keys(2));
        let big = text(&"y".repeat(MAX_CONTENT_LEN));
        assert!(matches!(
            seal_content(&alice, &bob.account_id(), &big, 1, [5; 32]),
            Err(MessageError::ContentTooLarge { .. })
        ));
    }

    #[test]
    fn largest_message_fits_the_storage_limit() {
        let (alice, bob) = (keys(1), keys(2));
        // Body length chosen so that Content (with sigTimestamp) is exactly the limit.
        let ts = 1_754_971_101_000;
        let mut body_len = MAX_CONTENT_LEN - 20;
        let mut c = text(&"z".repeat(body_len));
        c.sig_timestamp = Some(ts);
        while c.encoded_len() < MAX_CONTENT_LEN {
            body_len += 1;
            c = text(&"z".repeat(body_len));
            c.sig_timestamp = Some(ts);
        }
        assert_eq!(c.encoded_len(), MAX_CONTENT_LEN);
        let stored = seal_content(&alice, &bob.account_id(), &c, ts, [5; 32]).unwrap();
        assert!(stored.len() <= 76_800, "{}", stored.len());
    }

    #[test]
    fn group_recipient_is_refused() {
        let alice = keys(1);
        let group = AccountId::group(&alice.ed25519_public());
        assert_eq!(
            seal_content(&alice, &group, &text("x"), 1, [5; 32]),
            Err(MessageError::NotStandardAccount { prefix: 3 })
        );
    }

    #[test]
    fn sync_copy_to_self() {
        let alice = keys(1);
        let bob = keys(2);
        let mut c = text("hi bob");
        if let Some(dm) = c.data_message.as_mut() {
            dm.sync_target = Some(bob.account_id().to_string());
            dm.quote = Some(data_message::Quote {
                id: 3,
                author: bob.account_id().to_string(),
            });
        }
        let stored = seal_content(&alice, &alice.account_id(), &c, 50, [5; 32]).unwrap();
        let opened = open_envelope(&alice, &stored).unwrap();
        assert_eq!(opened.sender, alice.account_id());
        let dm = opened.content.data_message.unwrap();
        assert_eq!(dm.sync_target, Some(bob.account_id().to_string()));
        assert_eq!(dm.quote.map(|q| q.id), Some(3));
    }

    proptest! {
        #[test]
        fn seal_open_round_trip(body in ".{0,200}", ts in any::<u64>(), e in any::<[u8; 32]>(), s in any::<[u8; 32]>(), r in any::<[u8; 32]>()) {
            let (s, r) = (AccountKeys::from_seed(&s), AccountKeys::from_seed(&r));
            let stored = seal_content(&s, &r.account_id(), &text(&body), ts, e).unwrap();
            let o = open_envelope(&r, &stored).unwrap();
            prop_assert_eq!(o.sender, s.account_id());
            prop_assert_eq!(o.timestamp_ms, ts);
            prop_assert_eq!(o.content.data_message.and_then(|d| d.body), Some(body));
        }

        #[test]
        fn open_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..500)) {
            prop_assert!(open_envelope(&keys(2), &bytes).is_err());
        }

        #[test]
        fn open_never_panics_on_wrapped_garbage(ct in proptest::collection::vec(any::<u8>(), 0..400), ts in any::<u64>()) {
            let stored = wrap_websocket(&encode_envelope(&ct, ts));
            prop_assert!(open_envelope(&keys(2), &stored).is_err());
        }
    }
}
