//! 1:1 message encryption and sender recovery (`shared/spec/messages.md`
//! §2–3), wire-compatible with Session's `encrypt_for_recipient` /
//! `decrypt_incoming`.
//!
//! Sender: `sig = Ed25519_sign(a, M ‖ A ‖ Y)`, then
//! `crypto_box_seal(M ‖ A ‖ sig, Y)`; 144 bytes of overhead. The recipient key
//! `Y` is signed (binding the message to its recipient) but not sent.
//!
//! Receiver: unseal with its X25519 secret, split off `A` and `sig`, check
//! that `A` is a valid Ed25519 key, verify `sig` over `M ‖ A ‖ Y_ours`, and
//! derive the sender's account ID `05 ‖ ed25519_to_x25519(A)`. The sealed box
//! alone authenticates nothing; the signature is the only proof of who sent
//! the message.
//!
//! `M` here is the padded plaintext: padding is [`super::padding`]'s job.

use std::fmt;

use umbra_crypto::hash::{Blake2bParams, blake2b_multi, sha512};
use umbra_crypto::sealed::{SEAL_OVERHEAD, seal, unseal};
use umbra_crypto::{Ed25519Keypair, Ed25519Public, X25519Public, X25519Secret};
use zeroize::Zeroizing;

use super::MessageError;
use crate::identity::AccountId;

/// Length of the sender's Ed25519 key inside the sealed box.
const KEY_LEN: usize = 32;
/// Length of the sender's signature inside the sealed box.
const SIG_LEN: usize = 64;

/// Bytes the encryption adds to the padded plaintext: 48 (sealed box) +
/// 32 (sender key) + 64 (signature). Also the shortest valid ciphertext.
pub const ENCRYPTION_OVERHEAD: usize = SEAL_OVERHEAD + KEY_LEN + SIG_LEN;

/// BLAKE2b key of the deterministic ephemeral-key derivation (§2).
const DETERMINISTIC_KEY: &[u8] = b"SessionBoxEphemeralHashKey";

/// Encrypts the padded plaintext `plaintext` from `sender` to `recipient`
/// (§2, `encrypt_for_recipient`).
///
/// `ephemeral_secret` is the sealed box's ephemeral X25519 secret: 32 fresh
/// random bytes from the caller for every message (this crate draws no
/// randomness). Reusing it across messages to one recipient reuses a nonce.
///
/// Output: `E (32) ‖ MAC (16) ‖ XSalsa20(M ‖ A ‖ sig)`, `plaintext.len() + 144`
/// bytes.
///
/// # Errors
/// [`MessageError::NotStandardAccount`] when `recipient` is not a `05`
/// account; [`MessageError::InvalidRecipientKey`] when its key is a
/// small-order point (the X25519 exchange gives the all-zero secret).
pub fn encrypt(
    sender: &Ed25519Keypair,
    recipient: &AccountId,
    plaintext: &[u8],
    ephemeral_secret: [u8; 32],
) -> Result<Vec<u8>, MessageError> {
    let y = recipient_key(recipient)?;
    encrypt_to_key(sender, &y, plaintext, ephemeral_secret)
}

/// The deterministic variant of [`encrypt`] used by the
/// `session_encrypt_deterministic` test vectors (§2).
///
/// The ephemeral secret is `SHA-512(eseed)[0..32]` with
/// `eseed = BLAKE2b(out = 32, key = "SessionBoxEphemeralHashKey")(seed ‖ Y ‖ M)`,
/// where `seed` is the sender's 32-byte Ed25519 seed. The output is an
/// ordinary sealed box.
///
/// **Tests and vectors only.** Identical messages to the same recipient give
/// identical ciphertexts, which tells an observer that they are equal;
/// production senders use [`encrypt`] with a random ephemeral secret.
///
/// # Errors
/// As [`encrypt`].
pub fn encrypt_deterministic(
    sender: &Ed25519Keypair,
    recipient: &AccountId,
    plaintext: &[u8],
) -> Result<Vec<u8>, MessageError> {
    let y = recipient_key(recipient)?;
    let seed = sender.seed();
    let eseed = Zeroizing::new(
        blake2b_multi(
            &[&seed[..], y.as_bytes(), plaintext],
            32,
            Blake2bParams {
                key: DETERMINISTIC_KEY,
                ..Blake2bParams::default()
            },
        )
        .map_err(MessageError::Internal)?,
    );
    let wide = Zeroizing::new(sha512(&eseed));
    let mut e = Zeroizing::new([0u8; 32]);
    e.copy_from_slice(&wide[..32]);
    encrypt_to_key(sender, &y, plaintext, *e)
}

/// The X25519 key of a standard account.
fn recipient_key(recipient: &AccountId) -> Result<X25519Public, MessageError> {
    recipient.x25519().ok_or(MessageError::NotStandardAccount {
        prefix: recipient.prefix().byte(),
    })
}

fn encrypt_to_key(
    sender: &Ed25519Keypair,
    y: &X25519Public,
    plaintext: &[u8],
    ephemeral_secret: [u8; 32],
) -> Result<Vec<u8>, MessageError> {
    let a = sender.public();
    // Build `M ‖ A ‖ Y`, sign it, then reuse the buffer as `M ‖ A ‖ sig`.
    let mut inner = Zeroizing::new(Vec::with_capacity(plaintext.len() + KEY_LEN + SIG_LEN));
    inner.extend_from_slice(plaintext);
    inner.extend_from_slice(a.as_bytes());
    inner.extend_from_slice(y.as_bytes());
    let sig = sender.sign(&inner);
    inner.truncate(plaintext.len() + KEY_LEN);
    inner.extend_from_slice(&sig);
    seal(&inner, y, ephemeral_secret).map_err(MessageError::InvalidRecipientKey)
}

/// A decrypted 1:1 message and its authenticated sender (§3).
#[derive(Clone, PartialEq, Eq)]
pub struct Decrypted {
    /// The plaintext `M`, still padded (see [`super::padding::unpad`]).
    pub plaintext: Vec<u8>,
    /// The sender's Ed25519 public key `A`, whose signature verified.
    pub sender_ed25519: Ed25519Public,
    /// The sender's account ID, `05 ‖ ed25519_to_x25519(A)`.
    pub sender: AccountId,
}

impl fmt::Debug for Decrypted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decrypted")
            .field("plaintext_len", &self.plaintext.len())
            .field("sender", &self.sender)
            .finish_non_exhaustive()
    }
}

/// Decrypts a 1:1 ciphertext with the recipient's X25519 secret and
/// recovers the sender (§3 steps 1–5).
///
/// Never panics, whatever the input bytes.
///
/// # Errors
/// - [`MessageError::TooShort`]: fewer than [`ENCRYPTION_OVERHEAD`] bytes;
/// - [`MessageError::DecryptFailed`]: the sealed box does not open (wrong
///   recipient, tampered bytes, or a degenerate ephemeral key);
/// - [`MessageError::InvalidSenderKey`]: `A` is not a valid prime-order
///   Ed25519 point, so it has no account ID;
/// - [`MessageError::BadSignature`]: `sig` does not verify over
///   `M ‖ A ‖ Y_ours` (forged, or signed for another recipient).
pub fn decrypt(recipient: &X25519Secret, ciphertext: &[u8]) -> Result<Decrypted, MessageError> {
    if ciphertext.len() < ENCRYPTION_OVERHEAD {
        return Err(MessageError::TooShort {
            got: ciphertext.len(),
            min: ENCRYPTION_OVERHEAD,
        });
    }
    let our_y = recipient.public();
    let inner =
        Zeroizing::new(unseal(ciphertext, recipient).map_err(|_| MessageError::DecryptFailed)?);
    let too_short = || MessageError::TooShort {
        got: ciphertext.len(),
        min: ENCRYPTION_OVERHEAD,
    };
    let (m_and_a, sig) = inner
        .split_at_checked(inner.len().checked_sub(SIG_LEN).ok_or_else(too_short)?)
        .ok_or_else(too_short)?;
    let (m, a) = m_and_a
        .split_at_checked(m_and_a.len().checked_sub(KEY_LEN).ok_or_else(too_short)?)
        .ok_or_else(too_short)?;
    let sender_ed25519 = Ed25519Public::from_slice(a).map_err(MessageError::InvalidSenderKey)?;
    // Step 5 before step 4: a key with no X25519 form can name no sender, so
    // it is refused before spending a verification on it. Both drop the
    // message; only the reported reason depends on the order.
    let sender_x = sender_ed25519
        .to_x25519()
        .map_err(MessageError::InvalidSenderKey)?;
    let mut signed = Zeroizing::new(Vec::with_capacity(m.len() + 2 * KEY_LEN));
    signed.extend_from_slice(m);
    signed.extend_from_slice(a);
    signed.extend_from_slice(our_y.as_bytes());
    sender_ed25519
        .verify(&signed, sig)
        .map_err(|_| MessageError::BadSignature)?;
    Ok(Decrypted {
        plaintext: m.to_vec(),
        sender_ed25519,
        sender: AccountId::standard(&sender_x),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::AccountKeys;
    use proptest::prelude::*;

    fn keys(b: u8) -> AccountKeys {
        AccountKeys::from_seed(&[b; 32])
    }

    /// Seals `M ‖ A ‖ sig` by hand, to build ciphertexts an honest sender
    /// would never produce.
    fn seal_inner(m: &[u8], a: &[u8], sig: &[u8], to: &AccountKeys) -> Vec<u8> {
        let inner = [m, a, sig].concat();
        seal(&inner, &to.x25519_public(), [9; 32]).unwrap()
    }

    #[test]
    fn libsession_vector() {
        // session-foundation/libsession-util tests/test_session_encrypt.cpp
        let mut sender_seed = [0u8; 32];
        sender_seed[..16]
            .copy_from_slice(&hex::decode("0123456789abcdef0123456789abcdef").unwrap());
        let sender = AccountKeys::from_seed(&sender_seed);
        let recipient: AccountId =
            "05aa654f00fc39fc69fd0db829410ca38177d7732a8d2f0934ab3872ac56d5aa74"
                .parse()
                .unwrap();
        let ct = encrypt_deterministic(sender.ed25519(), &recipient, b"hello").unwrap();
        assert_eq!(
            hex::encode(&ct),
            "208f96785db92319bc7a14afecc01e17bde912d17bbb32834c03ea63b1862c2a1b730e0725ef75b2f1a276db584c59a0ed9b5497bcb9f4effa893b5cb8b04dbe7a6ab457ebf972f03b006dd4572980a725399616d40184b86aa3b7b218bdc6dd7c1adccda8ef4897f0f458492240b39079c27a6c791067ab26a03067a7602b50f0434639906f93e548f909d5286edde365ebddc146"
        );
        let mut recipient_seed = [0u8; 32];
        recipient_seed[..16]
            .copy_from_slice(&hex::decode("00112233445566778899aabbccddeeff").unwrap());
        let r = AccountKeys::from_seed(&recipient_seed);
        assert_eq!(r.account_id(), recipient);
        let d = decrypt(r.x25519_secret(), &ct).unwrap();
        assert_eq!(d.plaintext, b"hello");
        assert_eq!(d.sender, sender.account_id());
        assert_eq!(d.sender_ed25519, sender.ed25519_public());
    }

    #[test]
    fn overhead_is_144() {
        let (s, r) = (keys(1), keys(2));
        let ct = encrypt(s.ed25519(), &r.account_id(), b"", [3; 32]).unwrap();
        assert_eq!(ct.len(), 144);
        assert_eq!(ENCRYPTION_OVERHEAD, 144);
        assert_eq!(decrypt(r.x25519_secret(), &ct).unwrap().plaintext, b"");
    }

    #[test]
    fn wrong_recipient() {
        let (s, r, other) = (keys(1), keys(2), keys(3));
        let ct = encrypt(s.ed25519(), &r.account_id(), b"hi", [3; 32]).unwrap();
        assert_eq!(
            decrypt(other.x25519_secret(), &ct),
            Err(MessageError::DecryptFailed)
        );
    }

    #[test]
    fn tampering_any_byte_fails() {
        let (s, r) = (keys(1), keys(2));
        let ct = encrypt(s.ed25519(), &r.account_id(), b"some message", [3; 32]).unwrap();
        for i in 0..ct.len() {
            let mut bad = ct.clone();
            bad[i] ^= 0x01;
            assert_eq!(
                decrypt(r.x25519_secret(), &bad),
                Err(MessageError::DecryptFailed),
                "byte {i}"
            );
        }
    }

    #[test]
    fn truncated() {
        let (s, r) = (keys(1), keys(2));
        let ct = encrypt(s.ed25519(), &r.account_id(), b"", [3; 32]).unwrap();
        for n in 0..ct.len() {
            assert_eq!(
                decrypt(r.x25519_secret(), &ct[..n]),
                Err(MessageError::TooShort { got: n, min: 144 }),
                "length {n}"
            );
        }
        // Longer messages cut above the minimum fail authentication instead.
        let ct = encrypt(s.ed25519(), &r.account_id(), b"0123456789", [3; 32]).unwrap();
        assert_eq!(
            decrypt(r.x25519_secret(), &ct[..ct.len() - 1]),
            Err(MessageError::DecryptFailed)
        );
    }

    #[test]
    fn signature_for_another_recipient_is_refused() {
        // Surreptitious forwarding: Bob re-seals a message Alice signed for
        // him to Carol. The signature covers Bob's key, so Carol refuses it.
        let (alice, bob, carol) = (keys(1), keys(2), keys(3));
        let ct = encrypt(alice.ed25519(), &bob.account_id(), b"for bob", [3; 32]).unwrap();
        let inner = unseal(&ct, bob.x25519_secret()).unwrap();
        let forwarded = seal(&inner, &carol.x25519_public(), [4; 32]).unwrap();
        assert_eq!(
            decrypt(carol.x25519_secret(), &forwarded),
            Err(MessageError::BadSignature)
        );
    }

    #[test]
    fn bad_signature() {
        let (s, r) = (keys(1), keys(2));
        let a = s.ed25519_public();
        let ct = seal_inner(b"msg", a.as_bytes(), &[0u8; 64], &r);
        assert_eq!(
            decrypt(r.x25519_secret(), &ct),
            Err(MessageError::BadSignature)
        );
        // A real signature over a different message.
        let sig = s.ed25519().sign(b"other");
        let ct = seal_inner(b"msg", a.as_bytes(), &sig, &r);
        assert_eq!(
            decrypt(r.x25519_secret(), &ct),
            Err(MessageError::BadSignature)
        );
    }

    #[test]
    fn invalid_sender_key() {
        let r = keys(2);
        // Not a curve point (y = 2 has no x), the identity (small order), and
        // a non-canonical encoding (y = p).
        let mut non_canonical = [0xffu8; 32];
        non_canonical[0] = 0xed;
        non_canonical[31] = 0x7f;
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut not_point = [0u8; 32];
        not_point[0] = 2;
        for a in [not_point, identity, non_canonical] {
            let ct = seal_inner(b"msg", &a, &[0u8; 64], &r);
            assert!(
                matches!(
                    decrypt(r.x25519_secret(), &ct),
                    Err(MessageError::InvalidSenderKey(_))
                ),
                "{}",
                hex::encode(a)
            );
        }
    }

    #[test]
    fn recipient_must_be_standard() {
        let s = keys(1);
        let group = AccountId::group(&s.ed25519_public());
        assert_eq!(
            encrypt(s.ed25519(), &group, b"x", [3; 32]),
            Err(MessageError::NotStandardAccount { prefix: 0x03 })
        );
        assert_eq!(
            encrypt_deterministic(s.ed25519(), &group, b"x"),
            Err(MessageError::NotStandardAccount { prefix: 0x03 })
        );
    }

    #[test]
    fn small_order_recipient_key_is_refused() {
        let s = keys(1);
        let zero = AccountId::standard(&X25519Public::from_bytes([0; 32]));
        assert!(matches!(
            encrypt(s.ed25519(), &zero, b"x", [3; 32]),
            Err(MessageError::InvalidRecipientKey(_))
        ));
    }

    #[test]
    fn debug_hides_plaintext() {
        let (s, r) = (keys(1), keys(2));
        let ct = encrypt(s.ed25519(), &r.account_id(), b"secret words", [3; 32]).unwrap();
        let d = decrypt(r.x25519_secret(), &ct).unwrap();
        assert!(!format!("{d:?}").contains("secret"));
    }

    proptest! {
        #[test]
        fn round_trip(m in proptest::collection::vec(any::<u8>(), 0..600), s in any::<[u8; 32]>(), r in any::<[u8; 32]>(), e in any::<[u8; 32]>()) {
            let (s, r) = (AccountKeys::from_seed(&s), AccountKeys::from_seed(&r));
            let ct = encrypt(s.ed25519(), &r.account_id(), &m, e).unwrap();
            prop_assert_eq!(ct.len(), m.len() + ENCRYPTION_OVERHEAD);
            let d = decrypt(r.x25519_secret(), &ct).unwrap();
            prop_assert_eq!(d.plaintext, m.clone());
            prop_assert_eq!(d.sender, s.account_id());
            prop_assert_eq!(d.sender_ed25519, s.ed25519_public());

            let det = encrypt_deterministic(s.ed25519(), &r.account_id(), &m).unwrap();
            prop_assert_eq!(&det, &encrypt_deterministic(s.ed25519(), &r.account_id(), &m).unwrap());
            prop_assert_eq!(decrypt(r.x25519_secret(), &det).unwrap().plaintext, m);
        }

        #[test]
        fn decrypt_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400), r in any::<[u8; 32]>()) {
            let r = AccountKeys::from_seed(&r);
            prop_assert!(decrypt(r.x25519_secret(), &bytes).is_err());
        }
    }
}
