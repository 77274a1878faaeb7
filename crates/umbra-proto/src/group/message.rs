//! Group messages (`groups.md` §6, namespace 11): the plaintext layout
//! `A ‖ sig ‖ content ‖ 0x80 ‖ 0x00…` padded so the stored size is a
//! multiple of 256, XChaCha20-Poly1305 under the generation key with
//! `aad = group_id`, the sender signature binding the group and generation,
//! and the content rules of §6.4. The roster and grace rules of §6.3 step 3
//! need the group's state and live in [`super::GroupState::receive`].

use std::fmt;

use umbra_crypto::Ed25519Public;
use umbra_crypto::aead::{xchacha20_decrypt, xchacha20_encrypt};
use zeroize::Zeroizing;

use super::GroupError;
use super::keys::GenerationKey;
use crate::identity::{AccountId, AccountKeys};
use crate::message::protos::{Content, Message};

/// Signature domain of group messages (§6.1).
pub const MSG_DOMAIN: &[u8] = b"UmbraGroupMsg";
/// Largest `content` (§6.2).
pub const MAX_GROUP_CONTENT_LEN: usize = 76_663;
/// Largest stored `data` (§10).
pub const MAX_GROUP_DATA_LEN: usize = 76_800;
/// Fixed overhead of the stored data: nonce, `A`, `sig`, `0x80`, tag.
const OVERHEAD: usize = 24 + 97 + 16;

fn signed_message(group_id: &AccountId, generation: u64, content: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(MSG_DOMAIN.len() + 41 + content.len());
    m.extend_from_slice(MSG_DOMAIN);
    m.extend_from_slice(&group_id.to_bytes());
    m.extend_from_slice(&generation.to_le_bytes());
    m.extend_from_slice(content);
    m
}

/// The padding length `k` of §6.1 for a content of `len` bytes.
pub fn padding_len(len: usize) -> usize {
    (256 - (OVERHEAD + len) % 256) % 256
}

/// Encrypts already-serialised `content` for the group (§6.1–6.2): signs
/// with the sender's account key, pads, and encrypts under `K_G` with
/// `nonce` (24 random bytes). Returns the `data` to store in namespace 11.
pub fn encrypt_group_message(
    sender: &AccountKeys,
    group_id: &AccountId,
    generation: u64,
    key: &GenerationKey,
    content: &[u8],
    nonce: [u8; 24],
) -> Result<Vec<u8>, GroupError> {
    if content.len() > MAX_GROUP_CONTENT_LEN {
        return Err(GroupError::ContentTooLarge {
            len: content.len(),
            max: MAX_GROUP_CONTENT_LEN,
        });
    }
    let sig = sender
        .ed25519()
        .sign(&signed_message(group_id, generation, content));
    let k = padding_len(content.len());
    let mut plain = Zeroizing::new(Vec::with_capacity(97 + content.len() + k));
    plain.extend_from_slice(sender.ed25519_public().as_bytes());
    plain.extend_from_slice(&sig);
    plain.extend_from_slice(content);
    plain.push(0x80);
    let padded = plain.len() + k;
    plain.resize(padded, 0);
    let mut data = nonce.to_vec();
    data.extend_from_slice(&xchacha20_encrypt(
        key.as_bytes(),
        &nonce,
        &plain,
        &group_id.to_bytes(),
    ));
    Ok(data)
}

/// Checks the content rules a sender and a receiver apply (§6.2, §6.4):
/// `sigTimestamp` present; a `dataMessage` or an `unsendRequest`; no
/// receipts, typing indicators, message-request responses or data
/// extraction notifications.
pub fn check_group_content(content: &Content) -> Result<(), GroupError> {
    if content.sig_timestamp.is_none() {
        return Err(GroupError::MissingSigTimestamp);
    }
    if content.receipt_message.is_some() {
        return Err(GroupError::ContentNotAllowed("read receipts"));
    }
    if content.typing_message.is_some() {
        return Err(GroupError::ContentNotAllowed("typing indicators"));
    }
    if content.message_request_response.is_some() {
        return Err(GroupError::ContentNotAllowed("message request responses"));
    }
    if content.data_extraction_notification.is_some() {
        return Err(GroupError::ContentNotAllowed(
            "data extraction notifications",
        ));
    }
    if content.data_message.is_none() && content.unsend_request.is_none() {
        return Err(GroupError::ContentNotAllowed(
            "neither a dataMessage nor an unsendRequest",
        ));
    }
    Ok(())
}

/// Checks and serialises `content`, then encrypts it like
/// [`encrypt_group_message`].
pub fn encrypt_group_content(
    sender: &AccountKeys,
    group_id: &AccountId,
    generation: u64,
    key: &GenerationKey,
    content: &Content,
    nonce: [u8; 24],
) -> Result<Vec<u8>, GroupError> {
    check_group_content(content)?;
    let bytes = Zeroizing::new(content.encode_to_vec());
    encrypt_group_message(sender, group_id, generation, key, &bytes, nonce)
}

/// A group message that decrypted, verified and passed the content rules
/// (§6.3 steps 1–2 and the `sigTimestamp` check). The roster and grace
/// checks are still to be made.
#[derive(Clone)]
pub struct ReceivedGroupMessage {
    /// The generation whose key decrypted it.
    pub generation: u64,
    /// The sender's `05` account ID.
    pub sender: AccountId,
    /// The sender's Ed25519 key `A`.
    pub sender_ed25519: Ed25519Public,
    /// The decoded content.
    pub content: Content,
}

impl fmt::Debug for ReceivedGroupMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceivedGroupMessage")
            .field("generation", &self.generation)
            .field("sender", &self.sender.short())
            .field("sig_timestamp", &self.content.sig_timestamp)
            .finish_non_exhaustive()
    }
}

impl ReceivedGroupMessage {
    /// The deduplication key of §6.3 step 4: (sender, `sigTimestamp`).
    pub fn dedup_key(&self) -> (AccountId, u64) {
        (self.sender, self.content.sig_timestamp.unwrap_or(0))
    }
}

/// Decrypts `data` with the keys given, in the order given (newest first,
/// §6.3 step 1), strips the padding, verifies the sender's signature over
/// the generation of the key that worked, and decodes the content.
pub fn open_group_message<'k>(
    data: &[u8],
    group_id: &AccountId,
    keys: impl IntoIterator<Item = (u64, &'k GenerationKey)>,
) -> Result<ReceivedGroupMessage, GroupError> {
    if data.len() < OVERHEAD || data.len() > MAX_GROUP_DATA_LEN {
        return Err(GroupError::Malformed {
            what: "group message length",
        });
    }
    let (nonce, ct) = data.split_at(24);
    let aad = group_id.to_bytes();
    let (generation, plain) = keys
        .into_iter()
        .find_map(|(g, k)| {
            xchacha20_decrypt(k.as_bytes(), nonce, ct, &aad)
                .ok()
                .map(|p| (g, Zeroizing::new(p)))
        })
        .ok_or(GroupError::DecryptFailed {
            what: "group message",
        })?;
    let end = plain
        .iter()
        .rposition(|b| *b != 0)
        .filter(|i| plain[*i] == 0x80 && *i >= 96)
        .ok_or(GroupError::BadPadding)?;
    let a = Ed25519Public::from_slice(&plain[..32])?;
    let sig = &plain[32..96];
    let content = &plain[96..end];
    a.verify(&signed_message(group_id, generation, content), sig)
        .map_err(|_| GroupError::BadSignature {
            what: "group message",
        })?;
    let sender = AccountId::standard(&a.to_x25519()?);
    let content = Content::decode(content).map_err(|_| GroupError::Protobuf { what: "Content" })?;
    check_group_content(&content)?;
    Ok(ReceivedGroupMessage {
        generation,
        sender,
        sender_ed25519: a,
        content,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::protos::{DataMessage, ReceiptMessage};
    use proptest::prelude::*;

    fn text(body: &str, t: u64) -> Content {
        Content {
            data_message: Some(DataMessage {
                body: Some(body.into()),
                ..Default::default()
            }),
            sig_timestamp: Some(t),
            ..Default::default()
        }
    }

    fn gid() -> AccountId {
        crate::group::GroupKeys::from_seed(&[7; 32]).id()
    }

    #[test]
    fn round_trip_and_sizes() {
        let alice = AccountKeys::from_seed(&[1; 32]);
        let key = GenerationKey::from_bytes([9; 32]);
        let data = encrypt_group_content(&alice, &gid(), 3, &key, &text("hi", 5), [4; 24]).unwrap();
        assert_eq!(data.len() % 256, 0);
        let other = GenerationKey::from_bytes([8; 32]);
        let got = open_group_message(&data, &gid(), [(4, &other), (3, &key)]).unwrap();
        assert_eq!(got.generation, 3);
        assert_eq!(got.sender, alice.account_id());
        assert_eq!(got.content, text("hi", 5));
        assert_eq!(got.dedup_key(), (alice.account_id(), 5));
    }

    #[test]
    fn largest_content_stores_as_76800() {
        assert_eq!(padding_len(MAX_GROUP_CONTENT_LEN), 0);
        let alice = AccountKeys::from_seed(&[1; 32]);
        let key = GenerationKey::from_bytes([9; 32]);
        let big = vec![1u8; MAX_GROUP_CONTENT_LEN];
        let data = encrypt_group_message(&alice, &gid(), 1, &key, &big, [0; 24]).unwrap();
        assert_eq!(data.len(), MAX_GROUP_DATA_LEN);
        let too_big = vec![1u8; MAX_GROUP_CONTENT_LEN + 1];
        assert!(matches!(
            encrypt_group_message(&alice, &gid(), 1, &key, &too_big, [0; 24]),
            Err(GroupError::ContentTooLarge { .. })
        ));
    }

    #[test]
    fn rejections() {
        let alice = AccountKeys::from_seed(&[1; 32]);
        let key = GenerationKey::from_bytes([9; 32]);
        let data = encrypt_group_content(&alice, &gid(), 3, &key, &text("hi", 5), [4; 24]).unwrap();
        // Wrong key.
        let other = GenerationKey::from_bytes([8; 32]);
        assert_eq!(
            open_group_message(&data, &gid(), [(3, &other)]).unwrap_err(),
            GroupError::DecryptFailed {
                what: "group message"
            }
        );
        // Right key bytes claimed for another generation: the signature binds G.
        assert_eq!(
            open_group_message(&data, &gid(), [(4, &key)]).unwrap_err(),
            GroupError::BadSignature {
                what: "group message"
            }
        );
        // Another group (aad).
        let g2 = crate::group::GroupKeys::from_seed(&[8; 32]).id();
        assert!(matches!(
            open_group_message(&data, &g2, [(3, &key)]),
            Err(GroupError::DecryptFailed { .. })
        ));
        // Tampered and truncated ciphertext.
        let mut t = data.clone();
        t[100] ^= 1;
        assert!(matches!(
            open_group_message(&t, &gid(), [(3, &key)]),
            Err(GroupError::DecryptFailed { .. })
        ));
        assert!(matches!(
            open_group_message(&data[..100], &gid(), [(3, &key)]),
            Err(GroupError::Malformed { .. })
        ));
        // Missing sigTimestamp and forbidden content, on both sides.
        let mut c = text("x", 1);
        c.sig_timestamp = None;
        assert_eq!(
            encrypt_group_content(&alice, &gid(), 3, &key, &c, [0; 24]).unwrap_err(),
            GroupError::MissingSigTimestamp
        );
        let raw =
            encrypt_group_message(&alice, &gid(), 3, &key, &c.encode_to_vec(), [0; 24]).unwrap();
        assert_eq!(
            open_group_message(&raw, &gid(), [(3, &key)]).unwrap_err(),
            GroupError::MissingSigTimestamp
        );
        let receipt = Content {
            receipt_message: Some(ReceiptMessage {
                r#type: 1,
                timestamp: vec![1],
            }),
            sig_timestamp: Some(1),
            ..Default::default()
        };
        let raw = encrypt_group_message(&alice, &gid(), 3, &key, &receipt.encode_to_vec(), [0; 24])
            .unwrap();
        assert!(matches!(
            open_group_message(&raw, &gid(), [(3, &key)]),
            Err(GroupError::ContentNotAllowed(_))
        ));
    }

    #[test]
    fn bad_padding_is_refused() {
        // A plaintext without the 0x80 marker, encrypted by hand.
        let key = GenerationKey::from_bytes([9; 32]);
        let plain = vec![0u8; 256 - OVERHEAD + 97];
        let mut data = vec![0u8; 24];
        data.extend_from_slice(&xchacha20_encrypt(
            key.as_bytes(),
            &[0; 24],
            &plain,
            &gid().to_bytes(),
        ));
        assert_eq!(
            open_group_message(&data, &gid(), [(1, &key)]).unwrap_err(),
            GroupError::BadPadding
        );
    }

    proptest! {
        #[test]
        fn any_content_round_trips(body in ".{0,300}", t in 1u64.., g in 1u64..1000, nonce in any::<[u8; 24]>()) {
            let alice = AccountKeys::from_seed(&[1; 32]);
            let key = GenerationKey::from_bytes([9; 32]);
            let c = text(&body, t);
            let data = encrypt_group_content(&alice, &gid(), g, &key, &c, nonce).unwrap();
            prop_assert_eq!(data.len() % 256, 0);
            let got = open_group_message(&data, &gid(), [(g, &key)]).unwrap();
            prop_assert_eq!(got.content, c);
        }
    }
}
