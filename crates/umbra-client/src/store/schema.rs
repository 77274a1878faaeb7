//! Schema migrations and connection settings of the client's local store.
//!
//! Each migration runs once, in a transaction that also sets
//! `PRAGMA user_version` to its number; a file whose `user_version` is newer
//! than this build knows is refused. Column naming: `*_h` holds a keyed
//! lookup hash, `*_enc` a sealed value ([`super::crypt`]); everything else
//! (timestamps, flags, status codes) is in the clear.

use rusqlite::Connection;

use super::StoreError;

/// The migrations, `(version, sql)`, in order.
pub(crate) const MIGRATIONS: &[(i64, &str)] = &[(1, V1)];

const V1: &str = "
CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;

CREATE TABLE conversations (
    peer_h         BLOB PRIMARY KEY,
    peer_enc       BLOB NOT NULL,
    approved_by_us INTEGER NOT NULL DEFAULT 0,
    approved_us    INTEGER NOT NULL DEFAULT 0,
    blocked        INTEGER NOT NULL DEFAULT 0,
    dm_mode        INTEGER NOT NULL DEFAULT 0,
    dm_timer       INTEGER NOT NULL DEFAULT 0,
    active_at      INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE TABLE contacts (
    peer_h   BLOB PRIMARY KEY,
    peer_enc BLOB NOT NULL,
    name_enc BLOB NOT NULL
) WITHOUT ROWID;

CREATE TABLE messages (
    id           INTEGER PRIMARY KEY,
    peer_h       BLOB NOT NULL,
    dedup_h      BLOB NOT NULL UNIQUE,
    hash_h       BLOB UNIQUE,
    hash_enc     BLOB,
    direction    INTEGER NOT NULL,
    author_enc   BLOB NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    received_at  INTEGER NOT NULL,
    body_enc     BLOB,
    status       INTEGER NOT NULL,
    dm_mode      INTEGER NOT NULL,
    dm_timer     INTEGER NOT NULL,
    exp_start    INTEGER,
    expires_at   INTEGER,
    read_at      INTEGER,
    deleted      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX messages_by_peer ON messages (peer_h, timestamp_ms);
CREATE INDEX messages_by_expiry ON messages (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE seen (
    hash_h    BLOB PRIMARY KEY,
    expiry_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX seen_by_expiry ON seen (expiry_ms);

CREATE TABLE last_hashes (
    slot_h   BLOB PRIMARY KEY,
    hash_enc BLOB NOT NULL
) WITHOUT ROWID;

CREATE TABLE settings (
    key_h     BLOB PRIMARY KEY,
    value_enc BLOB NOT NULL
) WITHOUT ROWID;

CREATE TABLE blobs (
    name_h    BLOB PRIMARY KEY,
    value_enc BLOB NOT NULL
) WITHOUT ROWID;
";

/// The newest schema version this build knows.
pub(crate) fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |(v, _)| *v)
}

/// Sets the connection pragmas: WAL, `secure_delete` (freed pages are
/// zeroed), temporary data in memory only, foreign keys.
pub(crate) fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(StoreError::sql("setting the busy timeout"))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(StoreError::sql("enabling WAL"))?;
    if !mode.eq_ignore_ascii_case("wal") && !mode.eq_ignore_ascii_case("memory") {
        tracing::warn!(mode, "local store did not switch to WAL mode");
    }
    conn.execute_batch(
        "PRAGMA synchronous=NORMAL;
         PRAGMA secure_delete=ON;
         PRAGMA temp_store=MEMORY;
         PRAGMA foreign_keys=ON;
         PRAGMA journal_size_limit=1048576;",
    )
    .map_err(StoreError::sql("setting connection pragmas"))
}

/// The file's `PRAGMA user_version`.
pub(crate) fn user_version(conn: &Connection) -> Result<i64, StoreError> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(StoreError::sql("reading user_version"))
}

/// Applies every migration newer than the file's `user_version`.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current = user_version(conn)?;
    let known = latest_version();
    if current > known {
        return Err(StoreError::SchemaTooNew {
            found: current,
            known,
        });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        let tx = conn
            .transaction()
            .map_err(StoreError::sql("starting a migration"))?;
        tx.execute_batch(sql)
            .map_err(StoreError::sql("applying a migration"))?;
        tx.execute_batch(&format!("PRAGMA user_version = {version}"))
            .map_err(StoreError::sql("recording the schema version"))?;
        tx.commit()
            .map_err(StoreError::sql("committing a migration"))?;
        tracing::debug!(version, "applied local store migration");
    }
    Ok(())
}
