//! The client's local store, encrypted at rest: conversations, contacts,
//! messages, seen swarm hashes, settings, opaque blobs (guard state) and
//! the account seed (identity.md §4.3; what a conversation holds:
//! `messages.md` §7–16).
//!
//! It is one SQLite file in WAL mode with versioned migrations
//! ([`schema`]). Every sensitive value — message text, peer and author
//! account IDs, swarm hashes, contact names, setting values, blobs, the
//! seed — is sealed with XChaCha20-Poly1305 under a key derived from the
//! profile's [`LocalKey`]; lookups by account ID, hash or name go through
//! keyed HMAC-SHA256 columns ([`crypt`]). Timestamps, flags and status
//! codes are kept in the clear so that ordering and expiry work in SQL.
//! `secure_delete` is on, so deleted and expired rows are zeroed in the file.
//!
//! The store applies no messaging policy (that is [`crate::client`]'s job):
//! approval flags, blocking and disappearing settings change only through
//! their `set_*` methods. All methods are synchronous and take `&self`; the
//! connection sits behind a mutex so a [`LocalStore`] is `Send + Sync`.

mod conversations;
pub mod crypt;
mod messages;
pub(crate) mod schema;
mod types;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, params};
use umbra_proto::identity::AccountId;
use umbra_proto::mnemonic::{AccountSeed, SeedForm};
use umbra_proto::rpc::Namespace;
use zeroize::Zeroizing;

pub use crypt::{FieldError, LocalKey};
pub use types::{
    Contact, Conversation, Direction, Disappearing, DisappearingMode, Message, MessageId,
    MessageStatus, NewMessage,
};

use crypt::FieldCrypto;

/// Setting key of the read-receipts switch (§12, default off).
pub const SETTING_READ_RECEIPTS: &str = "privacy.read_receipts";
/// Setting key of the typing-indicators switch (§13, default off).
pub const SETTING_TYPING_INDICATORS: &str = "privacy.typing_indicators";
/// Setting key of the link-previews switch (§16, default off).
pub const SETTING_LINK_PREVIEWS: &str = "privacy.link_previews";

/// The plaintext sealed under `meta.key_check`, to tell a wrong key from a
/// corrupt file.
const KEY_CHECK: &[u8] = b"umbra local store key check v1";

/// What went wrong in the local store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// An SQLite call failed.
    #[error("local store: {context}: {source}")]
    Sqlite {
        /// What was being done.
        context: &'static str,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// A file operation failed.
    #[error("local store: {context} {}: {source}", path.display())]
    Io {
        /// What was being done.
        context: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The store was sealed under another key (a replaced `profile.key`).
    #[error(
        "the local store was encrypted with another key (profile.key does not match the database)"
    )]
    WrongKey,
    /// A stored value is unreadable.
    #[error("the local store is corrupt: {what}")]
    Corrupt {
        /// Which value.
        what: &'static str,
    },
    /// The file was written by a newer build.
    #[error(
        "the local store has schema version {found}, newer than this build knows ({known}); upgrade umbra"
    )]
    SchemaTooNew {
        /// The file's version.
        found: i64,
        /// The newest version this build has.
        known: i64,
    },
    /// A number does not fit SQLite's signed 64-bit integers.
    #[error("{0} is too large to store (above 2^63 − 1)")]
    OutOfRange(&'static str),
    /// A swarm hash given for a message already belongs to another one.
    #[error("that swarm hash already belongs to another message")]
    HashInUse,
}

impl StoreError {
    /// Maps an SQLite error, naming what was being done.
    pub(crate) fn sql(context: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
        move |source| StoreError::Sqlite { context, source }
    }

    fn corrupt(what: &'static str) -> impl FnOnce(FieldError) -> StoreError {
        move |_| StoreError::Corrupt { what }
    }
}

/// A `Result` with a [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The largest time (ms) or expiry the store can hold: SQLite's integers
/// are signed 64-bit.
pub const MAX_STORED_MS: u64 = i64::MAX as u64;

/// Converts an unsigned value to SQLite's `i64`.
pub(crate) fn to_i64(v: u64, what: &'static str) -> Result<i64> {
    i64::try_from(v).map_err(|_| StoreError::OutOfRange(what))
}

/// Converts a stored `i64` back; a negative value means a corrupt row.
pub(crate) fn to_u64(v: i64, what: &'static str) -> Result<u64> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt { what })
}

/// The local store of one profile.
pub struct LocalStore {
    conn: Mutex<Connection>,
    crypt: FieldCrypto,
    path: Option<PathBuf>,
}

impl std::fmt::Debug for LocalStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl LocalStore {
    /// Opens the store at `path` under `key`, creating the file (mode 0600)
    /// and applying migrations as needed.
    ///
    /// Fails with [`StoreError::WrongKey`] when the file was created under
    /// another key.
    pub fn open(path: &Path, key: &LocalKey) -> Result<LocalStore> {
        create_private_file(path)?;
        let conn = Connection::open(path).map_err(StoreError::sql("opening the database"))?;
        Self::init(conn, key, Some(path.to_owned()))
    }

    /// An in-memory store (tests and throw-away clients).
    pub fn open_in_memory(key: &LocalKey) -> Result<LocalStore> {
        let conn = Connection::open_in_memory().map_err(StoreError::sql("opening the database"))?;
        Self::init(conn, key, None)
    }

    fn init(mut conn: Connection, key: &LocalKey, path: Option<PathBuf>) -> Result<LocalStore> {
        schema::configure(&conn)?;
        schema::migrate(&mut conn)?;
        let store = LocalStore {
            conn: Mutex::new(conn),
            crypt: FieldCrypto::new(key),
            path,
        };
        store.check_key()?;
        Ok(store)
    }

    /// Verifies (or, in a new file, records) the key-check value.
    fn check_key(&self) -> Result<()> {
        match self.meta("key_check")? {
            Some(sealed) => {
                let plain = self
                    .crypt
                    .open("meta.key_check", &sealed)
                    .map_err(|_| StoreError::WrongKey)?;
                if plain.as_slice() == KEY_CHECK {
                    Ok(())
                } else {
                    Err(StoreError::WrongKey)
                }
            }
            None => {
                let sealed = self.crypt.seal("meta.key_check", KEY_CHECK);
                self.set_meta("key_check", &sealed)
            }
        }
    }

    /// The database file, or `None` in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The connection. A panic while it was held leaves no half-done
    /// transaction (SQLite rolls it back), so a poisoned lock is reused.
    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn crypt(&self) -> &FieldCrypto {
        &self.crypt
    }

    /// Copies the WAL into the database file and truncates the WAL.
    pub fn checkpoint(&self) -> Result<()> {
        let conn = self.conn();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(StoreError::sql("checkpointing the WAL"))
    }

    /// Checkpoints and closes the database (dropping the store also closes
    /// it; this reports errors).
    pub fn close(self) -> Result<()> {
        self.checkpoint()?;
        let conn = self
            .conn
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        conn.close().map_err(|(_, e)| StoreError::Sqlite {
            context: "closing the database",
            source: e,
        })
    }

    // ----- meta and the account seed -----

    fn meta(&self, name: &str) -> Result<Option<Vec<u8>>> {
        self.conn()
            .query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(StoreError::sql("reading meta"))
    }

    fn set_meta(&self, name: &str, value: &[u8]) -> Result<()> {
        self.conn()
            .execute(
                "INSERT INTO meta (name, value) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                params![name, value],
            )
            .map(drop)
            .map_err(StoreError::sql("writing meta"))
    }

    /// Stores the account seed (sealed) and the form it came from
    /// (identity.md §4.3), replacing any earlier one.
    pub fn set_account_seed(&self, seed: &AccountSeed) -> Result<()> {
        let mut plain = Zeroizing::new(Vec::with_capacity(33));
        plain.push(match seed.form() {
            SeedForm::Session => 13u8,
            SeedForm::Umbra => 25u8,
        });
        plain.extend_from_slice(seed.encoded_seed());
        let sealed = self.crypt.seal("meta.seed", &plain);
        self.set_meta("seed", &sealed)
    }

    /// The stored account seed, if any.
    pub fn account_seed(&self) -> Result<Option<AccountSeed>> {
        let Some(sealed) = self.meta("seed")? else {
            return Ok(None);
        };
        let plain = self
            .crypt
            .open("meta.seed", &sealed)
            .map_err(StoreError::corrupt("account seed"))?;
        let (form, bytes) = plain.split_first().ok_or(StoreError::Corrupt {
            what: "account seed",
        })?;
        let seed = AccountSeed::from_bytes(bytes).map_err(|_| StoreError::Corrupt {
            what: "account seed",
        })?;
        let expected = match form {
            13 => SeedForm::Session,
            25 => SeedForm::Umbra,
            _ => {
                return Err(StoreError::Corrupt {
                    what: "account seed form",
                });
            }
        };
        if seed.form() != expected {
            return Err(StoreError::Corrupt {
                what: "account seed form",
            });
        }
        Ok(Some(seed))
    }

    // ----- settings -----

    /// A setting's value, if set.
    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        let key_h = self.crypt.index("setting", key.as_bytes());
        let sealed: Option<Vec<u8>> = self
            .conn()
            .query_row(
                "SELECT value_enc FROM settings WHERE key_h = ?1",
                [&key_h[..]],
                |r| r.get(0),
            )
            .optional()
            .map_err(StoreError::sql("reading a setting"))?;
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        let plain = self
            .crypt
            .open("settings.value", &sealed)
            .map_err(StoreError::corrupt("setting value"))?;
        String::from_utf8(plain.to_vec())
            .map(Some)
            .map_err(|_| StoreError::Corrupt {
                what: "setting value",
            })
    }

    /// Sets a setting.
    pub fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        let key_h = self.crypt.index("setting", key.as_bytes());
        let sealed = self.crypt.seal("settings.value", value.as_bytes());
        self.conn()
            .execute(
                "INSERT INTO settings (key_h, value_enc) VALUES (?1, ?2)
                 ON CONFLICT (key_h) DO UPDATE SET value_enc = excluded.value_enc",
                params![&key_h[..], sealed],
            )
            .map(drop)
            .map_err(StoreError::sql("writing a setting"))
    }

    /// Removes a setting; returns whether it was set.
    pub fn remove_setting(&self, key: &str) -> Result<bool> {
        let key_h = self.crypt.index("setting", key.as_bytes());
        self.conn()
            .execute("DELETE FROM settings WHERE key_h = ?1", [&key_h[..]])
            .map(|n| n > 0)
            .map_err(StoreError::sql("removing a setting"))
    }

    /// A boolean setting: `"true"` is on; unset or anything else is off.
    pub fn bool_setting(&self, key: &str) -> Result<bool> {
        Ok(self.setting(key)?.is_some_and(|v| v == "true"))
    }

    /// Sets a boolean setting (`"true"` / `"false"`).
    pub fn set_bool_setting(&self, key: &str, on: bool) -> Result<()> {
        self.set_setting(key, if on { "true" } else { "false" })
    }

    /// Whether read receipts are sent and honoured (§12). Default **off**.
    pub fn read_receipts(&self) -> Result<bool> {
        self.bool_setting(SETTING_READ_RECEIPTS)
    }

    /// Turns read receipts on or off.
    pub fn set_read_receipts(&self, on: bool) -> Result<()> {
        self.set_bool_setting(SETTING_READ_RECEIPTS, on)
    }

    /// Whether typing indicators are sent and shown (§13). Default **off**.
    pub fn typing_indicators(&self) -> Result<bool> {
        self.bool_setting(SETTING_TYPING_INDICATORS)
    }

    /// Turns typing indicators on or off.
    pub fn set_typing_indicators(&self, on: bool) -> Result<()> {
        self.set_bool_setting(SETTING_TYPING_INDICATORS, on)
    }

    /// Whether link previews are fetched (§16). Default **off**.
    pub fn link_previews(&self) -> Result<bool> {
        self.bool_setting(SETTING_LINK_PREVIEWS)
    }

    /// Turns link previews on or off.
    pub fn set_link_previews(&self, on: bool) -> Result<()> {
        self.set_bool_setting(SETTING_LINK_PREVIEWS, on)
    }

    // ----- opaque blobs -----

    /// Stores an opaque blob (e.g. the path manager's guard state) under
    /// `name`, replacing any earlier one.
    pub fn put_blob(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let name_h = self.crypt.index("blob", name.as_bytes());
        let sealed = self.crypt.seal("blobs.value", bytes);
        self.conn()
            .execute(
                "INSERT INTO blobs (name_h, value_enc) VALUES (?1, ?2)
                 ON CONFLICT (name_h) DO UPDATE SET value_enc = excluded.value_enc",
                params![&name_h[..], sealed],
            )
            .map(drop)
            .map_err(StoreError::sql("writing a blob"))
    }

    /// The blob stored under `name`, if any.
    pub fn blob(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let name_h = self.crypt.index("blob", name.as_bytes());
        let sealed: Option<Vec<u8>> = self
            .conn()
            .query_row(
                "SELECT value_enc FROM blobs WHERE name_h = ?1",
                [&name_h[..]],
                |r| r.get(0),
            )
            .optional()
            .map_err(StoreError::sql("reading a blob"))?;
        sealed
            .map(|s| {
                self.crypt
                    .open("blobs.value", &s)
                    .map(|p| p.to_vec())
                    .map_err(StoreError::corrupt("blob"))
            })
            .transpose()
    }

    /// Removes a blob; returns whether it existed.
    pub fn remove_blob(&self, name: &str) -> Result<bool> {
        let name_h = self.crypt.index("blob", name.as_bytes());
        self.conn()
            .execute("DELETE FROM blobs WHERE name_h = ?1", [&name_h[..]])
            .map(|n| n > 0)
            .map_err(StoreError::sql("removing a blob"))
    }

    // ----- sync state -----

    /// Whether the swarm message `hash` was already processed.
    pub fn is_seen(&self, hash: &str) -> Result<bool> {
        let h = self.crypt.index("seen", hash.as_bytes());
        self.conn()
            .query_row("SELECT 1 FROM seen WHERE hash_h = ?1", [&h[..]], |_| Ok(()))
            .optional()
            .map(|o| o.is_some())
            .map_err(StoreError::sql("reading seen hashes"))
    }

    /// Records the swarm message `hash` as processed until `expiry_ms` (its
    /// swarm expiry; after it the swarm no longer returns it, and
    /// [`LocalStore::prune_seen`] forgets it). A later call keeps the later
    /// expiry.
    pub fn mark_seen(&self, hash: &str, expiry_ms: u64) -> Result<()> {
        let h = self.crypt.index("seen", hash.as_bytes());
        let e = to_i64(expiry_ms, "seen expiry")?;
        self.conn()
            .execute(
                "INSERT INTO seen (hash_h, expiry_ms) VALUES (?1, ?2)
                 ON CONFLICT (hash_h) DO UPDATE SET expiry_ms = max(expiry_ms, excluded.expiry_ms)",
                params![&h[..], e],
            )
            .map(drop)
            .map_err(StoreError::sql("recording a seen hash"))
    }

    /// Forgets seen hashes whose expiry is at or before `now_ms`; returns
    /// how many.
    pub fn prune_seen(&self, now_ms: u64) -> Result<usize> {
        let now = to_i64(now_ms, "time")?;
        self.conn()
            .execute("DELETE FROM seen WHERE expiry_ms <= ?1", [now])
            .map_err(StoreError::sql("pruning seen hashes"))
    }

    fn last_hash_slot(&self, namespace: Namespace, node_key_hex: &str) -> [u8; 32] {
        let mut data = namespace.get().to_be_bytes().to_vec();
        data.extend_from_slice(node_key_hex.to_ascii_lowercase().as_bytes());
        self.crypt.index("last hash", &data)
    }

    /// The newest hash retrieved from node `node_key_hex` in `namespace`
    /// (the `last_hash` of the next `retrieve`).
    pub fn last_hash(&self, namespace: Namespace, node_key_hex: &str) -> Result<Option<String>> {
        let slot = self.last_hash_slot(namespace, node_key_hex);
        let sealed: Option<Vec<u8>> = self
            .conn()
            .query_row(
                "SELECT hash_enc FROM last_hashes WHERE slot_h = ?1",
                [&slot[..]],
                |r| r.get(0),
            )
            .optional()
            .map_err(StoreError::sql("reading a last hash"))?;
        sealed
            .map(|s| {
                let p = self
                    .crypt
                    .open("last_hashes.hash", &s)
                    .map_err(StoreError::corrupt("last hash"))?;
                String::from_utf8(p.to_vec()).map_err(|_| StoreError::Corrupt { what: "last hash" })
            })
            .transpose()
    }

    /// Records the newest hash retrieved from `node_key_hex` in `namespace`.
    pub fn set_last_hash(
        &self,
        namespace: Namespace,
        node_key_hex: &str,
        hash: &str,
    ) -> Result<()> {
        let slot = self.last_hash_slot(namespace, node_key_hex);
        let sealed = self.crypt.seal("last_hashes.hash", hash.as_bytes());
        self.conn()
            .execute(
                "INSERT INTO last_hashes (slot_h, hash_enc) VALUES (?1, ?2)
                 ON CONFLICT (slot_h) DO UPDATE SET hash_enc = excluded.hash_enc",
                params![&slot[..], sealed],
            )
            .map(drop)
            .map_err(StoreError::sql("writing a last hash"))
    }

    /// Forgets the last hash of `node_key_hex` in `namespace` (e.g. after
    /// the node answered that it does not know it).
    pub fn clear_last_hash(&self, namespace: Namespace, node_key_hex: &str) -> Result<bool> {
        let slot = self.last_hash_slot(namespace, node_key_hex);
        self.conn()
            .execute("DELETE FROM last_hashes WHERE slot_h = ?1", [&slot[..]])
            .map(|n| n > 0)
            .map_err(StoreError::sql("removing a last hash"))
    }

    // ----- shared helpers for the submodules -----

    pub(crate) fn peer_h(&self, id: &AccountId) -> [u8; 32] {
        self.crypt.index("peer", &id.to_bytes())
    }

    pub(crate) fn seal_id(&self, column: &str, id: &AccountId) -> Vec<u8> {
        self.crypt.seal(column, &id.to_bytes())
    }

    pub(crate) fn open_id(&self, column: &'static str, sealed: &[u8]) -> Result<AccountId> {
        let plain = self
            .crypt
            .open(column, sealed)
            .map_err(|_| StoreError::Corrupt { what: column })?;
        AccountId::from_bytes(&plain).map_err(|_| StoreError::Corrupt { what: column })
    }

    pub(crate) fn open_string(&self, column: &'static str, sealed: &[u8]) -> Result<String> {
        let plain = self
            .crypt
            .open(column, sealed)
            .map_err(|_| StoreError::Corrupt { what: column })?;
        String::from_utf8(plain.to_vec()).map_err(|_| StoreError::Corrupt { what: column })
    }

    /// Best-effort WAL truncation after deleting data, so the deleted
    /// (sealed) values do not linger in the WAL file.
    pub(crate) fn truncate_wal(conn: &Connection) {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
            tracing::debug!(error = %e, "WAL checkpoint after delete failed");
        }
    }
}

/// Creates `path` as an empty file readable only by its owner, unless it
/// exists. SQLite then opens it, and gives its WAL and shared-memory files
/// the same permissions.
fn create_private_file(path: &Path) -> Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(StoreError::Io {
            context: "creating",
            path: path.to_owned(),
            source,
        }),
    }
}
