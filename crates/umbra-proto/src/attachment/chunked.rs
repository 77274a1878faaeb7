//! Umbra's chunked large files, spec `attachments.md` §5: parameters
//! (§5.1), per-chunk XChaCha20-Poly1305 with position-bound nonce and AAD
//! (§5.2), the `UmbraChunkManifest` protobuf and its receiver checks (§5.3,
//! §5.6). Every chunk error names the chunk.

use std::fmt;
use std::ops::Range;

use prost::Message;
use umbra_crypto::aead::{xchacha20_decrypt, xchacha20_encrypt};
use umbra_crypto::ct_eq;
use umbra_crypto::hash::sha256;
use zeroize::Zeroizing;

use super::AttachmentError;
use super::legacy::MAX_PADDED;

/// Plaintext bytes per chunk: 2 MiB − 64 KiB.
pub const CHUNK_SIZE: usize = 2_031_616;
/// A stored chunk: plaintext plus the 16-byte tag.
pub const STORED_CHUNK_SIZE: usize = CHUNK_SIZE + 16;
/// Files strictly larger than this are chunked; others use the legacy scheme.
pub const THRESHOLD: u64 = MAX_PADDED as u64;
/// Largest file.
pub const MAX_FILE_SIZE: u64 = 1_000_000_000;
/// The manifest version.
pub const MANIFEST_VERSION: u32 = 1;
/// Chunk key length.
pub const KEY_LEN: usize = 32;
/// Chunks uploaded or downloaded at the same time (§5.5, §5.6).
pub const PARALLEL_CHUNKS: usize = 3;
/// Tries per chunk (§5.5).
pub const CHUNK_TRIES: usize = 3;

const AAD_PREFIX: &[u8] = b"UmbraChunk";

/// Whether a file of `n` bytes uses this scheme (`n > 9,999,936`).
pub fn is_chunked(n: u64) -> bool {
    n > THRESHOLD
}

/// `⌈n / CHUNK_SIZE⌉`.
pub fn n_chunks(n: u64) -> u64 {
    n.div_ceil(CHUNK_SIZE as u64)
}

/// The byte range of chunk `i` inside an `n`-byte file (the last range is
/// shorter than [`CHUNK_SIZE`] when `n` is not a multiple).
pub fn chunk_range(n: u64, i: u64) -> Result<Range<u64>, AttachmentError> {
    let count = n_chunks(n);
    if i >= count {
        return Err(AttachmentError::ChunkIndex {
            chunk: i,
            n_chunks: count,
        });
    }
    let start = i * CHUNK_SIZE as u64;
    Ok(start..(start + CHUNK_SIZE as u64).min(n))
}

/// `u64_le(i) ‖ 0x00 × 16`.
pub fn chunk_nonce(i: u32) -> [u8; 24] {
    let mut n = [0u8; 24];
    n[..8].copy_from_slice(&u64::from(i).to_le_bytes());
    n
}

/// `"UmbraChunk" ‖ u64_le(n) ‖ u32_le(i) ‖ u32_le(n_chunks)`.
pub fn chunk_aad(n: u64, i: u32, count: u32) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_PREFIX.len() + 16);
    aad.extend_from_slice(AAD_PREFIX);
    aad.extend_from_slice(&n.to_le_bytes());
    aad.extend_from_slice(&i.to_le_bytes());
    aad.extend_from_slice(&count.to_le_bytes());
    aad
}

fn check_file_size(n: u64) -> Result<u32, AttachmentError> {
    if n == 0 || n > MAX_FILE_SIZE {
        return Err(AttachmentError::PlaintextTooLarge {
            format: "chunked",
            max: MAX_FILE_SIZE,
            got: n,
        });
    }
    // ≤ 493 chunks.
    u32::try_from(n_chunks(n)).map_err(|_| AttachmentError::PlaintextTooLarge {
        format: "chunked",
        max: MAX_FILE_SIZE,
        got: n,
    })
}

fn index_u32(i: u64, count: u32) -> Result<u32, AttachmentError> {
    u32::try_from(i)
        .ok()
        .filter(|&i| i < count)
        .ok_or(AttachmentError::ChunkIndex {
            chunk: i,
            n_chunks: u64::from(count),
        })
}

/// A stored chunk and its digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncryptedChunk {
    /// `ciphertext ‖ tag`, [`STORED_CHUNK_SIZE`] bytes.
    pub stored: Vec<u8>,
    /// SHA-256 of `stored`.
    pub digest: [u8; 32],
}

/// Encrypts chunk `i` of an `n`-byte file (§5.2). `plaintext` must be the
/// chunk's exact bytes ([`chunk_range`]); the last chunk is zero-filled to
/// [`CHUNK_SIZE`] here. `n` is not limited to files above the threshold, so
/// tests can use small files; the manifest enforces the threshold.
pub fn encrypt_chunk(
    key: &[u8; KEY_LEN],
    n: u64,
    i: u64,
    plaintext: &[u8],
) -> Result<EncryptedChunk, AttachmentError> {
    let count = check_file_size(n)?;
    let i32 = index_u32(i, count)?;
    let range = chunk_range(n, i)?;
    let expected = usize::try_from(range.end - range.start).unwrap_or(usize::MAX);
    if plaintext.len() != expected {
        return Err(AttachmentError::ChunkPlaintextLength {
            chunk: i32,
            expected,
            got: plaintext.len(),
        });
    }
    let stored = if plaintext.len() == CHUNK_SIZE {
        xchacha20_encrypt(key, &chunk_nonce(i32), plaintext, &chunk_aad(n, i32, count))
    } else {
        let mut padded = Zeroizing::new(vec![0u8; CHUNK_SIZE]);
        padded[..plaintext.len()].copy_from_slice(plaintext);
        xchacha20_encrypt(key, &chunk_nonce(i32), &padded, &chunk_aad(n, i32, count))
    };
    let digest = sha256(&stored);
    Ok(EncryptedChunk { stored, digest })
}

/// Checks and decrypts chunk `i` of an `n`-byte file (§5.6 step 3–4):
/// exact stored length, SHA-256 equal to `digest`, authenticated
/// decryption; for the last chunk the zero fill is checked and cut.
pub fn decrypt_chunk(
    key: &[u8],
    n: u64,
    i: u64,
    stored: &[u8],
    digest: &[u8],
) -> Result<Vec<u8>, AttachmentError> {
    let key: &[u8; KEY_LEN] = key.try_into().map_err(|_| AttachmentError::KeyLength {
        expected: KEY_LEN,
        got: key.len(),
    })?;
    let count = check_file_size(n)?;
    let i32 = index_u32(i, count)?;
    if stored.len() != STORED_CHUNK_SIZE {
        return Err(AttachmentError::ChunkLength {
            chunk: i32,
            expected: STORED_CHUNK_SIZE,
            got: stored.len(),
        });
    }
    if !ct_eq(&sha256(stored), digest) {
        return Err(AttachmentError::ChunkDigest(i32));
    }
    let mut plain = xchacha20_decrypt(key, &chunk_nonce(i32), stored, &chunk_aad(n, i32, count))
        .map_err(|_| AttachmentError::ChunkDecrypt(i32))?;
    let range = chunk_range(n, i)?;
    let keep = usize::try_from(range.end - range.start).unwrap_or(CHUNK_SIZE);
    if plain
        .get(keep..)
        .is_some_and(|tail| tail.iter().any(|&b| b != 0))
    {
        return Err(AttachmentError::NonZeroTail(i32));
    }
    plain.truncate(keep);
    Ok(plain)
}

/// One entry of the manifest: where a chunk is and its digest.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct ManifestChunk {
    /// The chunk's file URL (§4.6).
    #[prost(string, required, tag = "1")]
    pub url: String,
    /// SHA-256 of the stored chunk.
    #[prost(bytes = "vec", required, tag = "2")]
    pub digest: Vec<u8>,
}

/// `UmbraChunkManifest` (proto2, §5.3). Serialized, then encrypted with the
/// legacy scheme. `Debug` leaves the key out.
#[derive(Clone, PartialEq, Eq, Message)]
#[prost(skip_debug)]
pub struct ChunkManifest {
    /// Always 1.
    #[prost(uint32, required, tag = "1")]
    pub version: u32,
    /// Total plaintext bytes `n`.
    #[prost(uint64, required, tag = "2")]
    pub size: u64,
    /// Always [`CHUNK_SIZE`].
    #[prost(uint32, required, tag = "3")]
    pub chunk_size: u32,
    /// The chunk key `K`.
    #[prost(bytes = "vec", required, tag = "4")]
    pub key: Vec<u8>,
    /// The chunks in order.
    #[prost(message, repeated, tag = "5")]
    pub chunks: Vec<ManifestChunk>,
}

impl fmt::Debug for ChunkManifest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChunkManifest")
            .field("version", &self.version)
            .field("size", &self.size)
            .field("chunk_size", &self.chunk_size)
            .field("chunks", &self.chunks)
            .finish_non_exhaustive()
    }
}

impl Drop for ChunkManifest {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.key);
    }
}

impl ChunkManifest {
    /// A manifest for an `n`-byte file, checked with [`ChunkManifest::validate`].
    pub fn new(
        n: u64,
        key: &[u8; KEY_LEN],
        chunks: Vec<ManifestChunk>,
    ) -> Result<Self, AttachmentError> {
        let m = ChunkManifest {
            version: MANIFEST_VERSION,
            size: n,
            chunk_size: CHUNK_SIZE as u32,
            key: key.to_vec(),
            chunks,
        };
        m.validate(n)?;
        Ok(m)
    }

    /// The protobuf bytes.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.encode_to_vec())
    }

    /// Parses decrypted manifest bytes and applies [`ChunkManifest::validate`]
    /// against the pointer's `size`.
    pub fn decode_checked(bytes: &[u8], pointer_size: u64) -> Result<Self, AttachmentError> {
        let m = <ChunkManifest as Message>::decode(bytes)
            .map_err(|e| AttachmentError::Manifest(format!("not a manifest protobuf: {e}")))?;
        m.validate(pointer_size)?;
        Ok(m)
    }

    /// Like [`ChunkManifest::decode_checked`] for the output of legacy
    /// decryption, which still carries the zero fill of §2.1 (the pointer's
    /// `size` is the whole file's, so the manifest's own length is not
    /// known). A protobuf field never starts with a zero byte (field number
    /// 0 is invalid), so parsing stops at the first zero where a field key
    /// is expected; every byte after it must be zero.
    pub fn decode_padded(bytes: &[u8], pointer_size: u64) -> Result<Self, AttachmentError> {
        let end = protobuf_prefix_len(bytes)?;
        if bytes.get(end..).is_some_and(|t| t.iter().any(|&b| b != 0)) {
            return Err(AttachmentError::Manifest(
                "non-zero bytes after the manifest".into(),
            ));
        }
        Self::decode_checked(bytes.get(..end).unwrap_or(bytes), pointer_size)
    }

    /// The §5.6 step-2 checks: version 1, chunk size 2,031,616,
    /// `9,999,936 < size ≤ 1,000,000,000` and equal to the pointer's size,
    /// `⌈size / chunkSize⌉` chunks, a 32-byte key, 32-byte digests.
    pub fn validate(&self, pointer_size: u64) -> Result<(), AttachmentError> {
        let bad = |s: String| Err(AttachmentError::Manifest(s));
        if self.version != MANIFEST_VERSION {
            return bad(format!("version {} is not 1", self.version));
        }
        if self.chunk_size as usize != CHUNK_SIZE {
            return bad(format!(
                "chunk size {} is not {CHUNK_SIZE}",
                self.chunk_size
            ));
        }
        if !(THRESHOLD < self.size && self.size <= MAX_FILE_SIZE) {
            return bad(format!(
                "size {} outside {THRESHOLD}..={MAX_FILE_SIZE}",
                self.size
            ));
        }
        if self.size != pointer_size {
            return bad(format!(
                "size {} differs from the pointer's {pointer_size}",
                self.size
            ));
        }
        if self.chunks.len() as u64 != n_chunks(self.size) {
            return bad(format!(
                "{} chunks listed, {} needed",
                self.chunks.len(),
                n_chunks(self.size)
            ));
        }
        if self.key.len() != KEY_LEN {
            return bad(format!("key is {} bytes, not 32", self.key.len()));
        }
        if let Some(i) = self.chunks.iter().position(|c| c.digest.len() != 32) {
            return bad(format!("chunk {i}: digest is not 32 bytes"));
        }
        Ok(())
    }

    /// The chunk key as an array.
    pub fn key_array(&self) -> Result<Zeroizing<[u8; KEY_LEN]>, AttachmentError> {
        let k: [u8; KEY_LEN] =
            self.key
                .as_slice()
                .try_into()
                .map_err(|_| AttachmentError::KeyLength {
                    expected: KEY_LEN,
                    got: self.key.len(),
                })?;
        Ok(Zeroizing::new(k))
    }
}

fn read_varint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Length of the top-level protobuf fields at the start of `bytes`, up to
/// the end or the first zero byte where a field key is expected.
fn protobuf_prefix_len(bytes: &[u8]) -> Result<usize, AttachmentError> {
    let bad = || AttachmentError::Manifest("truncated protobuf field".into());
    let mut pos = 0usize;
    while pos < bytes.len() && bytes[pos] != 0 {
        let key = read_varint(bytes, &mut pos).ok_or_else(bad)?;
        let skip = match key & 7 {
            0 => {
                read_varint(bytes, &mut pos).ok_or_else(bad)?;
                0
            }
            1 => 8,
            2 => {
                usize::try_from(read_varint(bytes, &mut pos).ok_or_else(bad)?).map_err(|_| bad())?
            }
            5 => 4,
            _ => return Err(AttachmentError::Manifest("unsupported wire type".into())),
        };
        pos = pos
            .checked_add(skip)
            .filter(|&p| p <= bytes.len())
            .ok_or_else(bad)?;
    }
    Ok(pos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const K: [u8; 32] = [0xa7; 32];

    fn file(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn parameters() {
        assert_eq!(n_chunks(MAX_FILE_SIZE), 493);
        assert!(!is_chunked(9_999_936));
        assert!(is_chunked(9_999_937));
        assert_eq!(chunk_range(5_000_000, 2).unwrap(), 4_063_232..5_000_000);
        assert!(matches!(
            chunk_range(5_000_000, 3),
            Err(AttachmentError::ChunkIndex {
                chunk: 3,
                n_chunks: 3
            })
        ));
    }

    #[test]
    fn chunk_round_trip_and_errors_name_the_chunk() {
        let n = 2 * CHUNK_SIZE + 1000;
        let data = file(n);
        let mut chunks = Vec::new();
        for i in 0..3u64 {
            let r = chunk_range(n as u64, i).unwrap();
            let c =
                encrypt_chunk(&K, n as u64, i, &data[r.start as usize..r.end as usize]).unwrap();
            assert_eq!(c.stored.len(), STORED_CHUNK_SIZE);
            chunks.push(c);
        }
        let mut out = Vec::new();
        for (i, c) in chunks.iter().enumerate() {
            out.extend(decrypt_chunk(&K, n as u64, i as u64, &c.stored, &c.digest).unwrap());
        }
        assert_eq!(out, data);

        let c1 = &chunks[1];
        let mut bad = c1.stored.clone();
        bad[77] ^= 1;
        assert_eq!(
            decrypt_chunk(&K, n as u64, 1, &bad, &c1.digest),
            Err(AttachmentError::ChunkDigest(1))
        );
        // Tampered with a matching digest: the AEAD catches it.
        assert_eq!(
            decrypt_chunk(&K, n as u64, 1, &bad, &sha256(&bad)),
            Err(AttachmentError::ChunkDecrypt(1))
        );
        assert_eq!(
            decrypt_chunk(&K, n as u64, 1, &c1.stored[..1000], &c1.digest),
            Err(AttachmentError::ChunkLength {
                chunk: 1,
                expected: STORED_CHUNK_SIZE,
                got: 1000
            })
        );
        assert_eq!(
            decrypt_chunk(&[4u8; 32], n as u64, 1, &c1.stored, &c1.digest),
            Err(AttachmentError::ChunkDecrypt(1))
        );
        // Swapped position: chunk 0 presented as chunk 1 (with its own digest).
        assert_eq!(
            decrypt_chunk(&K, n as u64, 1, &chunks[0].stored, &chunks[0].digest),
            Err(AttachmentError::ChunkDecrypt(1))
        );
        // Same chunk under a different announced file size: AAD mismatch.
        assert_eq!(
            decrypt_chunk(&K, n as u64 + 1, 1, &c1.stored, &c1.digest),
            Err(AttachmentError::ChunkDecrypt(1))
        );
        assert!(matches!(
            encrypt_chunk(&K, n as u64, 2, &data[..10]),
            Err(AttachmentError::ChunkPlaintextLength { chunk: 2, .. })
        ));
    }

    #[test]
    fn nonzero_tail_is_refused() {
        // A chunk encrypted as if the file ended later, then read as the
        // last chunk of a shorter file: the sender controls K, so only the
        // zero check stops non-zero fill. Build one with the right AAD.
        let n = 1000u64;
        let mut padded = vec![0u8; CHUNK_SIZE];
        padded[1500] = 1;
        let stored = xchacha20_encrypt(&K, &chunk_nonce(0), &padded, &chunk_aad(n, 0, 1));
        assert_eq!(
            decrypt_chunk(&K, n, 0, &stored, &sha256(&stored)),
            Err(AttachmentError::NonZeroTail(0))
        );
    }

    #[test]
    fn manifest_checks() {
        let n = 10_000_000u64;
        let chunks: Vec<ManifestChunk> = (0..n_chunks(n))
            .map(|i| ManifestChunk {
                url: format!("http://127.0.0.1:1/file/{i}"),
                digest: vec![i as u8; 32],
            })
            .collect();
        let m = ChunkManifest::new(n, &K, chunks.clone()).unwrap();
        let bytes = m.encode();
        let back = ChunkManifest::decode_checked(&bytes, n).unwrap();
        assert_eq!(back, m);
        assert!(!format!("{back:?}").contains("167, 167"));
        assert!(matches!(
            ChunkManifest::decode_checked(&bytes, n + 1),
            Err(AttachmentError::Manifest(_))
        ));
        assert!(matches!(
            ChunkManifest::new(9_999_936, &K, chunks.clone()),
            Err(AttachmentError::Manifest(_))
        ));
        assert!(matches!(
            ChunkManifest::new(n, &K, chunks[..4].to_vec()),
            Err(AttachmentError::Manifest(_))
        ));
        let mut short = chunks.clone();
        short[2].digest.pop();
        assert!(matches!(
            ChunkManifest::new(n, &K, short),
            Err(AttachmentError::Manifest(e)) if e.contains("chunk 2")
        ));
        let mut m2 = m.clone();
        m2.version = 2;
        assert!(ChunkManifest::decode_checked(&m2.encode(), n).is_err());
        assert!(ChunkManifest::decode_checked(b"\xff\xff", n).is_err());
    }

    #[test]
    fn padded_manifest_with_trailing_zero_digest() {
        let n = 10_000_000u64;
        let chunks: Vec<ManifestChunk> = (0..n_chunks(n))
            .map(|i| ManifestChunk {
                url: format!("http://h/file/{i}"),
                digest: vec![0u8; 32],
            })
            .collect();
        let m = ChunkManifest::new(n, &K, chunks).unwrap();
        let mut padded = m.encode().to_vec();
        let len = padded.len();
        padded.resize(len + 500, 0);
        assert_eq!(ChunkManifest::decode_padded(&padded, n).unwrap(), m);
        padded[len + 10] = 1;
        assert!(matches!(
            ChunkManifest::decode_padded(&padded, n),
            Err(AttachmentError::Manifest(_))
        ));
        assert!(ChunkManifest::decode_padded(&padded[..len - 1], n).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(8))]
        #[test]
        fn small_file_round_trip(n in 1usize..5000, key: [u8; 32]) {
            let data = file(n);
            let c = encrypt_chunk(&key, n as u64, 0, &data).unwrap();
            prop_assert_eq!(decrypt_chunk(&key, n as u64, 0, &c.stored, &c.digest).unwrap(), data);
        }

        #[test]
        fn manifest_round_trip(extra in 1u64..50_000_000, key: [u8; 32], url in "[a-z0-9:/._-]{1,60}") {
            let n = THRESHOLD + extra;
            let chunks = (0..n_chunks(n)).map(|i| ManifestChunk { url: url.clone(), digest: vec![i as u8; 32] }).collect();
            let m = ChunkManifest::new(n, &key, chunks).unwrap();
            prop_assert_eq!(ChunkManifest::decode_checked(&m.encode(), n).unwrap(), m);
        }
    }
}
