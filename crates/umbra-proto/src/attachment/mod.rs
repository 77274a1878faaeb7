//! Attachments (spec `attachments.md`): the three encryption formats and
//! the file server's pure rules.
//!
//! | module | owns | spec |
//! | --- | --- | --- |
//! | [`legacy`] | AES-256-CBC + HMAC-SHA256 blobs, Session's padding | §2 |
//! | [`deterministic`] | secretstream blobs (receive only; encryption for vectors and tests) | §3 |
//! | [`chunked`] | Umbra's chunked large files and their manifest | §5 |
//! | [`server`] | file IDs, `X-FS-TTL`, file URLs | §4.3, §4.4, §4.6 |
//!
//! Everything is pure: keys and IVs are parameters, nothing reads a clock
//! or the OS RNG. Every error names the check that failed, and chunk errors
//! name the chunk.

pub mod chunked;
pub mod deterministic;
mod error;
pub mod legacy;
pub mod server;

pub use error::AttachmentError;
