//! The error type of the attachment module (spec `attachments.md`).

/// Why an attachment, chunk, manifest, URL or file-server value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttachmentError {
    /// The attachment key has the wrong length.
    #[error("attachment key must be {expected} bytes, got {got}")]
    KeyLength {
        /// Required length.
        expected: usize,
        /// Length given.
        got: usize,
    },
    /// The digest is missing or not 32 bytes.
    #[error("attachment digest must be 32 bytes, got {0}")]
    DigestLength(usize),
    /// A legacy blob shorter than IV + MAC.
    #[error("encrypted attachment is shorter than 48 bytes ({0} bytes)")]
    TooShort(usize),
    /// A legacy ciphertext that is not a positive multiple of 16 bytes.
    #[error("attachment ciphertext length {0} is not a positive multiple of 16")]
    CiphertextLength(usize),
    /// The legacy HMAC-SHA256 does not match (wrong key or tampered blob).
    #[error("attachment MAC mismatch: wrong key or tampered blob")]
    BadMac,
    /// SHA-256 of the blob differs from the pointer's digest.
    #[error("attachment digest mismatch")]
    BadDigest,
    /// AES-CBC decryption did not end in valid PKCS#7 padding.
    #[error("attachment has invalid PKCS#7 padding")]
    BadPadding,
    /// The pointer's `size` is larger than what decrypted.
    #[error("declared size {declared} is larger than the decrypted {actual} bytes")]
    SizeTooLarge {
        /// The pointer's size.
        declared: u64,
        /// Decrypted length.
        actual: u64,
    },
    /// The pointer's `size` differs from the decrypted file's length.
    #[error("declared size {declared} differs from the decrypted {actual} bytes")]
    SizeMismatch {
        /// The pointer's size.
        declared: u64,
        /// Decrypted length.
        actual: u64,
    },
    /// A plaintext too large for the chosen format.
    #[error("{format} attachments hold at most {max} bytes, got {got}")]
    PlaintextTooLarge {
        /// The format.
        format: &'static str,
        /// Its limit.
        max: u64,
        /// The size given.
        got: u64,
    },
    /// A deterministic blob whose first byte is not `0x53`.
    #[error("unknown attachment format byte 0x{0:02x}")]
    UnknownFormat(u8),
    /// A deterministic blob that ends before its final piece.
    #[error("encrypted attachment is truncated (no final piece)")]
    Truncated,
    /// A secretstream piece failed authentication.
    #[error("encrypted attachment piece {0} failed authentication")]
    PieceAuth(usize),
    /// A piece carries a tag it may not carry at its position.
    #[error("encrypted attachment piece {piece} has unexpected tag {tag}")]
    UnexpectedTag {
        /// Piece index.
        piece: usize,
        /// Its tag.
        tag: u8,
    },
    /// Bytes follow the final piece.
    #[error("bytes follow the final piece of the encrypted attachment")]
    TrailingData,
    /// The decrypted stream lacks the `0x01` marker after its padding.
    #[error("decrypted attachment lacks the 0x01 padding marker")]
    MissingMarker,
    /// A stored chunk has the wrong length.
    #[error("chunk {chunk}: stored chunk must be {expected} bytes, got {got}")]
    ChunkLength {
        /// Chunk index.
        chunk: u32,
        /// Required length.
        expected: usize,
        /// Length received.
        got: usize,
    },
    /// A stored chunk's SHA-256 differs from the manifest's digest.
    #[error("chunk {0}: digest mismatch (corrupted or substituted chunk)")]
    ChunkDigest(u32),
    /// A chunk failed authenticated decryption.
    #[error("chunk {0}: decryption failed (wrong key or tampered chunk)")]
    ChunkDecrypt(u32),
    /// A chunk index outside the file.
    #[error("chunk {chunk} does not exist in a file of {n_chunks} chunks")]
    ChunkIndex {
        /// Chunk index.
        chunk: u64,
        /// Chunk count.
        n_chunks: u64,
    },
    /// A chunk plaintext of the wrong size for its position.
    #[error("chunk {chunk}: plaintext must be {expected} bytes, got {got}")]
    ChunkPlaintextLength {
        /// Chunk index.
        chunk: u32,
        /// Required length.
        expected: usize,
        /// Length given.
        got: usize,
    },
    /// The zero fill cut from the last chunk is not all zero.
    #[error("chunk {0}: the padding after the end of the file is not zero")]
    NonZeroTail(u32),
    /// A manifest that fails a §5.6 check.
    #[error("chunk manifest refused: {0}")]
    Manifest(String),
    /// A file URL that cannot be parsed.
    #[error("invalid file URL: {0}")]
    BadUrl(String),
    /// A bad `X-FS-TTL` value.
    #[error("invalid X-FS-TTL: {0}")]
    BadTtl(String),
    /// A crypto failure that is not attributable to the input.
    #[error("crypto error: {0}")]
    Crypto(#[from] umbra_crypto::CryptoError),
}
