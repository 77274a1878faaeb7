//! The node's local message store (`shared/spec/storage-rpc.md` §5–9 for what
//! each method does to stored data; `shared/spec/swarms.md` §6–11 for
//! catch-up, hand-over, expiry and the local-storage notes).
//!
//! One SQLite database in WAL mode holds messages, revoked subaccount tokens,
//! deletion tombstones (each with the owner's signed request that caused it,
//! its [`Proof`]) and per-peer catch-up marks. The schema lives in
//! versioned migrations under `crates/umbra-node/migrations/` ([`schema`]).
//!
//! [`Store`] is the async handle the RPC handlers use:
//! - every write goes to a single writer thread that drains all pending
//!   operations into **one** transaction (group commit) and answers each
//!   caller only after that transaction committed;
//! - reads go to a small pool of read-only connections on their own threads;
//! - no call blocks the async runtime: callers await a reply channel.
//!
//! The clock is never read here: every method that depends on time takes
//! `now_ms`.
//!
//! Deleted message bytes do not stay in the file: connections run with
//! `PRAGMA secure_delete=ON`, and [`Store::sweep_expired`] truncates the WAL
//! after deleting (`wal_checkpoint(TRUNCATE)`), so old page images in the WAL
//! are dropped as well.

pub mod ops;
pub mod schema;
mod store;
mod writer;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

pub use store::Store;
use umbra_proto::identity::AccountId;

/// Default database size cap: 3.5 GiB (`swarms.md` §11).
pub const DEFAULT_SIZE_CAP_BYTES: u64 = 3_758_096_384;

/// `RETRIEVE_MAX_SIZE` of `storage-rpc.md` §6 and §9.2.
pub const RETRIEVE_MAX_SIZE: u64 = 7_800_000;

/// Revoked subaccount tokens kept per account (`storage-rpc.md` §2.3).
pub const MAX_REVOKED_PER_ACCOUNT: usize = 256;

/// Length of a message hash string (`storage-rpc.md` §7).
pub const HASH_LEN: usize = 43;

/// A 36-byte subaccount token (`storage-rpc.md` §2.3), raw bytes.
pub type SubaccountToken = [u8; 36];

/// A swarm peer, by its 32-byte Ed25519 key.
pub type PeerKey = [u8; 32];

/// Hashes grouped by namespace, each list ASCII-sorted.
pub type NsHashes = BTreeMap<i16, Vec<String>>;

/// A message as stored on the node.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// The 43-character unpadded standard base64 message hash.
    pub hash: String,
    /// The account the message is stored for.
    pub owner: AccountId,
    /// The namespace (mailbox) within the account.
    pub namespace: i16,
    /// The message timestamp given by the sender, in ms.
    pub timestamp_ms: u64,
    /// When the message expires, in ms.
    pub expiry_ms: u64,
    /// The raw (decoded) message bytes.
    pub data: Vec<u8>,
}

impl std::fmt::Debug for StoredMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredMessage")
            .field("hash", &self.hash)
            .field("owner", &self.owner.short())
            .field("namespace", &self.namespace)
            .field("timestamp_ms", &self.timestamp_ms)
            .field("expiry_ms", &self.expiry_ms)
            .field("data_len", &self.data.len())
            .finish()
    }
}

/// A message with its local insertion sequence number (`swarms.md` §6, §11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequencedMessage {
    /// The local insertion sequence number.
    pub seq: u64,
    /// The message.
    pub message: StoredMessage,
}

/// Which namespaces a `delete_all`, `delete_before` or `expire_all` covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Namespaces {
    /// One namespace.
    One(i16),
    /// Every namespace of the account (`"all"`).
    All,
}

/// The mode of an `expire` request (`storage-rpc.md` §9.6): the protocol's own type.
pub use umbra_proto::rpc::sign::ExpireMode;

/// The result of [`Store::expire`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpireOutcome {
    /// Updated hashes and their new expiry.
    pub updated: BTreeMap<String, u64>,
    /// Hashes that exist but were not changed, with their current expiry.
    pub unchanged: BTreeMap<String, u64>,
}

/// Options of [`Store::store`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreOptions {
    /// Public outbox (`storage-rpc.md` §5): delete the account's other
    /// messages in the namespace before storing.
    pub replace_namespace: bool,
    /// The signed request kept as the proof of the tombstones a replacement
    /// makes ([`Proof`]).
    pub proof: Option<Proof>,
}

/// The result of [`Store::store`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOutcome {
    /// True when the message was inserted; false when the hash already existed
    /// (`"already": true`).
    pub new: bool,
    /// The stored expiry after the operation.
    pub expiry_ms: u64,
    /// The insertion sequence number of a new message (catch-up marks).
    pub seq: Option<u64>,
}

/// Limits of a `retrieve` (`storage-rpc.md` §9.2), resolved by the
/// protocol's own rules, and the size a message counts for in its budget.
pub use umbra_proto::rpc::limits::{RetrieveLimits, retrieve_cost};

/// The result of [`Store::retrieve`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retrieved {
    /// Unexpired messages in insertion order.
    pub messages: Vec<StoredMessage>,
    /// True when more messages remain after the last one returned.
    pub more: bool,
}

/// The account owner's signed client request that caused a deletion or a
/// shortened expiry: the `{"method","params"}` JSON the node validated
/// (`umbra_proto::rpc::tombstone_proof`). Kept once per request (table
/// `tombstone_proofs`, keyed by its BLAKE2b-256) and referenced by each
/// tombstone it caused, so peers catching up can check the deletion
/// themselves.
pub type Proof = Arc<[u8]>;

/// A deletion or expiry-shortening record (`swarms.md` §6), kept until the
/// message's original expiry so a deleted message never comes back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tombstone {
    /// The message hash.
    pub hash: String,
    /// The account.
    pub owner: AccountId,
    /// The namespace.
    pub namespace: i16,
    /// `None` = deleted; `Some(e)` = expiry shortened to `e`.
    pub new_expiry_ms: Option<u64>,
    /// Kept until this time (the message's original expiry).
    pub keep_until_ms: u64,
    /// The request that caused it; `None` for a tombstone made before
    /// proofs were kept (schema version 1), which peers ignore.
    pub proof: Option<Proof>,
}

/// A tombstone from a peer whose proof the caller verified, with the check
/// that remains against this node's own copy of the message
/// (`umbra_proto::rpc::tombstone_proof::Coverage`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenTombstone {
    /// The tombstone, with its proof.
    pub tombstone: Tombstone,
    /// When set, a local copy timestamped later is not covered by the proof.
    pub max_message_timestamp: Option<u64>,
}

/// The result of [`Store::apply_tombstones`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TombstoneOutcome {
    /// Local messages deleted or shortened.
    pub changed: usize,
    /// Tombstones not applied because this node's copy of the message is
    /// outside what the proof covers (another namespace, a later timestamp).
    pub not_covered: usize,
}

/// One page of catch-up data ([`Store::since`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinceBatch {
    /// Unexpired messages with sequence number ≥ the start, in order.
    pub messages: Vec<SequencedMessage>,
    /// Tombstones whose sequence number lies in the range this page covers.
    pub tombstones: Vec<Tombstone>,
    /// Where the next page starts, if more messages remain.
    pub next_seq: Option<u64>,
    /// One past the highest sequence number of an entry in this page (a
    /// message or a tombstone); `None` for an empty page. Where a caller
    /// continues next time once there are no more pages.
    pub end_seq: Option<u64>,
}

/// SQLite `synchronous` setting for the write connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    /// `NORMAL` (default): with WAL, a commit survives a crash of the process
    /// (the commit is in the OS page cache), but the last commits may be lost
    /// on a power failure or kernel crash.
    Normal,
    /// `FULL`: every group commit is fsynced before callers are answered.
    Full,
}

/// Configuration of [`Store::open`].
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Size cap in bytes of pages in use; a store over it fails with
    /// [`StoreError::Full`].
    pub size_cap_bytes: u64,
    /// Number of read-only connections (and reader threads); at least 1.
    pub readers: usize,
    /// Most write operations folded into one transaction.
    pub max_batch: usize,
    /// Pending operations queued before callers wait for room.
    pub queue_depth: usize,
    /// Durability of commits.
    pub synchronous: Synchronous,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            size_cap_bytes: DEFAULT_SIZE_CAP_BYTES,
            readers: 4,
            max_batch: 2048,
            queue_depth: 8192,
            synchronous: Synchronous::Normal,
        }
    }
}

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Storing would pass the size cap; nothing was written (RPC: `507`, or
    /// `query_failure` in a swarm fan-out).
    #[error("database full: storing would pass the size cap of {cap} bytes")]
    Full {
        /// The configured cap.
        cap: u64,
    },
    /// A message hash that is not 43 characters of standard base64.
    #[error("message hash must be 43 characters of unpadded standard base64")]
    BadHash,
    /// A stored account ID could not be parsed (database corruption).
    #[error("stored account ID is invalid: {0}")]
    BadStoredAccount(String),
    /// A stored value is out of range (database corruption).
    #[error("stored {0} is out of range")]
    BadStoredValue(&'static str),
    /// SQLite reported an error.
    #[error("sqlite error while {op}: {source}")]
    Sqlite {
        /// What the store was doing.
        op: &'static str,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// The group transaction holding this operation failed to commit; the
    /// operation was not applied.
    #[error("transaction commit failed: {0}")]
    CommitFailed(String),
    /// The database was written by a newer build.
    #[error("database schema version {found} is newer than this build supports ({known})")]
    SchemaTooNew {
        /// `PRAGMA user_version` of the file.
        found: i64,
        /// Newest migration this build has.
        known: i64,
    },
    /// The database file could not be opened.
    #[error("cannot open database {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// A store thread could not be started.
    #[error("cannot start store thread: {0}")]
    Thread(#[source] std::io::Error),
    /// The store's threads have stopped (the store was closed or a thread
    /// died).
    #[error("the store has shut down")]
    Closed,
}

/// Adds the operation name to a rusqlite error.
pub(crate) trait SqlContext<T> {
    /// Maps the error to [`StoreError::Sqlite`] with `op`.
    fn ctx(self, op: &'static str) -> Result<T, StoreError>;
}

impl<T> SqlContext<T> for Result<T, rusqlite::Error> {
    fn ctx(self, op: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Sqlite { op, source })
    }
}

/// Checks that `hash` is 43 characters of the standard base64 alphabet.
pub fn validate_hash(hash: &str) -> Result<(), StoreError> {
    let ok = hash.len() == HASH_LEN
        && hash
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
    if ok { Ok(()) } else { Err(StoreError::BadHash) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_validation() {
        assert!(validate_hash(&"A".repeat(43)).is_ok());
        assert!(validate_hash("abc+/0123456789abcdefghijklmnopqrstuvwxyzAB").is_ok());
        assert!(matches!(
            validate_hash(&"A".repeat(44)),
            Err(StoreError::BadHash)
        ));
        assert!(matches!(
            validate_hash(&format!("{}=", "A".repeat(42))),
            Err(StoreError::BadHash)
        ));
        assert!(matches!(
            validate_hash(&format!("{}-", "A".repeat(42))),
            Err(StoreError::BadHash)
        ));
    }
}
