//! The deterministic attachment scheme of newer Session clients, spec
//! `attachments.md` §3 (receive only in Umbra; [`encrypt`] exists for the
//! test vectors and tests). Blob layout: `0x53 ‖ header (24) ‖ secretstream
//! pieces of ≤ 32,768 plaintext bytes`, the stream being
//! `(P − 1) × 0x00 ‖ 0x01 ‖ file`. The padding length `P(n)` follows
//! `test-vectors/README.md` ("Padding length").

use umbra_crypto::hash::{Blake2bParams, blake2b};
use umbra_crypto::secretstream::{ABYTES, HEADER_BYTES, SecretStream, TAG_FINAL, TAG_MESSAGE};
use zeroize::Zeroizing;

use super::AttachmentError;

/// The format byte (`'S'`).
pub const FORMAT_BYTE: u8 = 0x53;
/// Plaintext bytes per secretstream piece.
pub const PIECE: usize = 32_768;
/// Bytes a piece adds.
pub const OVERHEAD: usize = ABYTES;
/// Largest plaintext Session encrypts with this scheme.
pub const MAX_PLAINTEXT: usize = 10_218_286;
/// Key length.
pub const KEY_LEN: usize = 32;

/// Which BLAKE2b personalisation derives the nonce and key (§3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Domain {
    /// `"SessionAttachmnt"`.
    Attachment,
    /// `"Session_Prof_Pic"`.
    ProfilePic,
}

impl Domain {
    fn personal(self) -> &'static [u8; 16] {
        match self {
            Domain::Attachment => b"SessionAttachmnt",
            Domain::ProfilePic => b"Session_Prof_Pic",
        }
    }
}

/// The padding length `P(n)` (always ≥ 1): the zero bytes plus the `0x01`
/// marker put before an `n`-byte file.
pub fn padding_len(n: usize) -> usize {
    let z = PIECE;
    let t = OVERHEAD;
    let ch = n.div_ceil(z);
    let base = n + 1 + HEADER_BYTES + 1 + ch * t;
    let m = base.max(131_072);
    // Largest power of two ≤ m.
    let pow = 1usize << m.ilog2();
    let f = pow / 32;
    let padded = base.div_ceil(f) * f;
    let pad = padded - base + 1;
    let mut imp = if pad >= z + t { pad / (z + t) * t } else { 0 };
    if pad % (z + t) > ch * z - n {
        imp += t;
    }
    pad - imp
}

/// The blob size of an `n`-byte file:
/// `1 + 24 + n + P(n) + ⌈(n + P(n)) / 32768⌉ · 17`.
pub fn encrypted_size(n: usize) -> usize {
    let s = n + padding_len(n);
    1 + HEADER_BYTES + s + s.div_ceil(PIECE) * OVERHEAD
}

/// Encrypts deterministically (§3.3): `nonce_key = BLAKE2b-56(plaintext;
/// key = seed, personal = domain)`, header = its first 24 bytes, key the
/// last 32. Returns the key and the blob. Refuses plaintexts above
/// [`MAX_PLAINTEXT`] unless `allow_large`.
pub fn encrypt(
    seed: &[u8; 32],
    domain: Domain,
    plaintext: &[u8],
    allow_large: bool,
) -> Result<(Zeroizing<[u8; KEY_LEN]>, Vec<u8>), AttachmentError> {
    if plaintext.len() > MAX_PLAINTEXT && !allow_large {
        return Err(AttachmentError::PlaintextTooLarge {
            format: "deterministic",
            max: MAX_PLAINTEXT as u64,
            got: plaintext.len() as u64,
        });
    }
    let nk = Zeroizing::new(blake2b(
        plaintext,
        HEADER_BYTES + KEY_LEN,
        Blake2bParams {
            key: seed,
            personal: domain.personal(),
            ..Blake2bParams::default()
        },
    )?);
    let header: [u8; HEADER_BYTES] = std::array::from_fn(|i| nk[i]);
    let key: Zeroizing<[u8; KEY_LEN]> =
        Zeroizing::new(std::array::from_fn(|i| nk[HEADER_BYTES + i]));

    let p = padding_len(plaintext.len());
    let mut stream = Vec::with_capacity(p + plaintext.len());
    stream.resize(p - 1, 0);
    stream.push(0x01);
    stream.extend_from_slice(plaintext);

    let mut out = Vec::with_capacity(encrypted_size(plaintext.len()));
    out.push(FORMAT_BYTE);
    out.extend_from_slice(&header);
    let mut ss = SecretStream::init(&key, &header);
    let pieces = stream.len().div_ceil(PIECE);
    for (i, piece) in stream.chunks(PIECE).enumerate() {
        let tag = if i + 1 == pieces {
            TAG_FINAL
        } else {
            TAG_MESSAGE
        };
        out.extend_from_slice(&ss.push(piece, tag));
    }
    Ok((key, out))
}

/// Decrypts a deterministic blob (§3.2) and checks the pointer's `size`
/// when set. Refuses: a first byte other than `0x53`; a blob that ends
/// before a final piece; a last piece under 18 bytes; any failed piece;
/// a non-final piece tagged other than `TAG_MESSAGE`; bytes after the final
/// piece; a missing `0x01` marker.
pub fn decrypt(
    key: &[u8],
    encrypted: &[u8],
    size: Option<u64>,
) -> Result<Vec<u8>, AttachmentError> {
    let key: &[u8; KEY_LEN] = key.try_into().map_err(|_| AttachmentError::KeyLength {
        expected: KEY_LEN,
        got: key.len(),
    })?;
    let (&first, rest) = encrypted.split_first().ok_or(AttachmentError::Truncated)?;
    if first != FORMAT_BYTE {
        return Err(AttachmentError::UnknownFormat(first));
    }
    let (header, mut rest) = rest
        .split_first_chunk::<HEADER_BYTES>()
        .ok_or(AttachmentError::Truncated)?;
    let mut ss = SecretStream::init(key, header);
    let mut stream = Vec::with_capacity(rest.len());
    let mut piece_index = 0usize;
    loop {
        if rest.is_empty() {
            return Err(AttachmentError::Truncated);
        }
        let (piece, tail) = rest.split_at(rest.len().min(PIECE + OVERHEAD));
        if piece.len() < OVERHEAD + 1 {
            return Err(AttachmentError::Truncated);
        }
        let (m, tag) = ss
            .pull(piece)
            .map_err(|_| AttachmentError::PieceAuth(piece_index))?;
        stream.extend_from_slice(&m);
        rest = tail;
        if tag == TAG_FINAL {
            if !rest.is_empty() {
                return Err(AttachmentError::TrailingData);
            }
            break;
        }
        if tag != TAG_MESSAGE {
            return Err(AttachmentError::UnexpectedTag {
                piece: piece_index,
                tag,
            });
        }
        piece_index += 1;
    }
    let marker = stream
        .iter()
        .position(|&b| b != 0)
        .ok_or(AttachmentError::MissingMarker)?;
    if stream.get(marker) != Some(&0x01) {
        return Err(AttachmentError::MissingMarker);
    }
    let file = stream.split_off(marker + 1);
    if let Some(size) = size
        && size != file.len() as u64
    {
        return Err(AttachmentError::SizeMismatch {
            declared: size,
            actual: file.len() as u64,
        });
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sizes_match_session() {
        assert_eq!(encrypted_size(0), 4096);
        assert_eq!(encrypted_size(4053), 4096);
        assert_eq!(encrypted_size(4054), 8192);
        assert_eq!(encrypted_size(MAX_PLAINTEXT), 10_223_616);
    }

    #[test]
    fn refusals() {
        let (key, blob) = encrypt(&[1; 32], Domain::Attachment, &[5u8; 70_000], false).unwrap();
        assert_eq!(blob.len(), encrypted_size(70_000));
        let mut bad = blob.clone();
        bad[0] = 0x54;
        assert_eq!(
            decrypt(&*key, &bad, None),
            Err(AttachmentError::UnknownFormat(0x54))
        );
        let mut bad = blob.clone();
        bad[25 + PIECE + OVERHEAD + 3] ^= 1;
        assert_eq!(
            decrypt(&*key, &bad, None),
            Err(AttachmentError::PieceAuth(1))
        );
        // Cut after the first full piece: the stream ends before its final piece.
        assert_eq!(
            decrypt(&*key, &blob[..25 + PIECE + OVERHEAD], None),
            Err(AttachmentError::Truncated)
        );
        let mut trailing = blob.clone();
        trailing.push(0);
        assert!(decrypt(&*key, &trailing, None).is_err());
        assert_eq!(
            decrypt(&[0u8; 32], &blob, None),
            Err(AttachmentError::PieceAuth(0))
        );
        assert_eq!(
            decrypt(&*key, &blob, Some(1)),
            Err(AttachmentError::SizeMismatch {
                declared: 1,
                actual: 70_000
            })
        );
        assert!(matches!(
            encrypt(
                &[1; 32],
                Domain::Attachment,
                &vec![0; MAX_PLAINTEXT + 1],
                false
            ),
            Err(AttachmentError::PlaintextTooLarge { .. })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn round_trip(pt in proptest::collection::vec(any::<u8>(), 0..70_000), seed: [u8; 32]) {
            let (key, blob) = encrypt(&seed, Domain::ProfilePic, &pt, false).unwrap();
            prop_assert_eq!(blob.len(), encrypted_size(pt.len()));
            prop_assert_eq!(decrypt(&*key, &blob, Some(pt.len() as u64)).unwrap(), pt);
        }
    }
}
