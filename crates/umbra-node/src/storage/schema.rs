//! Schema migrations and connection settings of the node database
//! (`shared/spec/swarms.md` §11, informative).
//!
//! Migrations are the SQL files in `crates/umbra-node/migrations/`, compiled
//! in with `include_str!` and applied in order, each inside its own
//! transaction that also sets `PRAGMA user_version` to the migration's number.
//! A file whose `user_version` is newer than the newest migration is refused.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::{SqlContext, StoreError, Synchronous};

/// The migrations, `(version, sql)`, in the order they are applied.
pub const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/0001_init.sql")),
    (
        2,
        include_str!("../../migrations/0002_tombstone_proofs.sql"),
    ),
    (
        3,
        include_str!("../../migrations/0003_tombstone_cutoff.sql"),
    ),
];

/// The schema version this build writes.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |(v, _)| *v)
}

/// How long a connection waits for a lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens (creating if needed) the write connection: WAL mode, the given
/// `synchronous`, `secure_delete=ON`, foreign keys; then applies pending
/// migrations.
pub fn open_writer(path: &Path, synchronous: Synchronous) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(|source| StoreError::Open {
        path: path.to_owned(),
        source,
    })?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .ctx("setting busy timeout")?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .ctx("enabling WAL")?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(mode, "database did not switch to WAL mode");
    }
    let sync = match synchronous {
        Synchronous::Normal => "NORMAL",
        Synchronous::Full => "FULL",
    };
    conn.execute_batch(&format!(
        "PRAGMA synchronous={sync}; PRAGMA secure_delete=ON; PRAGMA foreign_keys=ON;"
    ))
    .ctx("setting connection pragmas")?;
    migrate(&conn)?;
    Ok(conn)
}

/// Opens a read-only connection to an existing, migrated database.
pub fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| StoreError::Open {
        path: path.to_owned(),
        source,
    })?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .ctx("setting busy timeout")?;
    conn.execute_batch("PRAGMA query_only=ON;")
        .ctx("setting reader pragmas")?;
    Ok(conn)
}

/// The file's `PRAGMA user_version`.
pub fn user_version(conn: &Connection) -> Result<i64, StoreError> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .ctx("reading user_version")
}

/// Applies every migration newer than the file's `user_version`, in order.
pub fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let current = user_version(conn)?;
    let known = latest_version();
    if current > known {
        return Err(StoreError::SchemaTooNew {
            found: current,
            known,
        });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        conn.execute_batch("BEGIN IMMEDIATE")
            .ctx("starting migration")?;
        let applied = conn
            .execute_batch(sql)
            .and_then(|()| conn.execute_batch(&format!("PRAGMA user_version = {version}")))
            .and_then(|()| conn.execute_batch("COMMIT"));
        if let Err(source) = applied {
            // Best effort: the migration failed, leave the file as it was.
            let _ = conn.execute_batch("ROLLBACK");
            return Err(StoreError::Sqlite {
                op: "applying a migration",
                source,
            });
        }
        tracing::info!(version, "applied storage migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_in_order_and_apply() {
        let mut last = 0;
        for (v, _) in MIGRATIONS {
            assert_eq!(*v, last + 1, "migrations must be numbered 1, 2, 3, …");
            last = *v;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db.sqlite");
        let conn = open_writer(&path, Synchronous::Normal).expect("open");
        assert_eq!(user_version(&conn).expect("version"), latest_version());
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .expect("mode");
        assert_eq!(mode, "wal");
        let sd: i64 = conn
            .query_row("PRAGMA secure_delete", [], |r| r.get(0))
            .expect("secure_delete");
        assert_eq!(sd, 1);
        drop(conn);
        // Reopening applies nothing and keeps the version.
        let conn = open_writer(&path, Synchronous::Normal).expect("reopen");
        assert_eq!(user_version(&conn).expect("version"), latest_version());
    }

    /// A database written by the version-1 schema (before tombstone
    /// proofs) opens, migrates, keeps its data, and works.
    #[tokio::test]
    async fn version_1_database_migrates_and_works() {
        use crate::storage::{Namespaces, Store, StoreConfig, StoredMessage};
        use umbra_proto::identity::AccountId;
        const NOW: u64 = 1_700_000_000_000;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db.sqlite");
        let mut raw = [1u8; 33];
        raw[0] = 0x05;
        let account = AccountId::from_bytes(&raw).expect("account");
        let h = |i: u32| format!("{i:0>43}");
        {
            // Exactly what a version-1 build left behind.
            let conn = Connection::open(&path).expect("create");
            conn.execute_batch(MIGRATIONS[0].1).expect("schema 1");
            conn.execute_batch("PRAGMA user_version = 1").expect("v1");
            conn.execute(
                "INSERT INTO owners (id, account) VALUES (1, ?1)",
                [&raw[..]],
            )
            .expect("owner");
            conn.execute(
                "INSERT INTO messages (hash, owner_id, namespace, timestamp, expiry, data)
                 VALUES (?1, 1, 0, ?2, ?3, x'01')",
                rusqlite::params![h(1), NOW as i64, (NOW + 86_400_000) as i64],
            )
            .expect("message");
            conn.execute(
                "INSERT INTO tombstones (hash, owner_id, namespace, new_expiry, keep_until, seq)
                 VALUES (?1, 1, 0, NULL, ?2, 1)",
                rusqlite::params![h(2), (NOW + 86_400_000) as i64],
            )
            .expect("old tombstone");
        }
        let store = Store::open(&path, StoreConfig::default()).expect("open old database");
        let conn = Connection::open(&path).expect("inspect");
        assert_eq!(user_version(&conn).expect("version"), latest_version());
        drop(conn);
        // The old data is there; the old tombstone has no proof.
        assert_eq!(store.count().await.expect("count"), 1);
        let page = store.since(0, 10, usize::MAX, NOW).await.expect("since");
        assert_eq!(page.tombstones.len(), 1);
        assert_eq!(page.tombstones[0].proof, None);
        // New tombstones keep their proofs.
        store
            .insert(
                StoredMessage {
                    hash: h(3),
                    owner: account,
                    namespace: 0,
                    timestamp_ms: NOW,
                    expiry_ms: NOW + 86_400_000,
                    data: vec![3],
                },
                NOW,
            )
            .await
            .expect("insert");
        let proof: crate::storage::Proof = std::sync::Arc::from(&b"signed"[..]);
        store
            .delete_all(&account, Namespaces::All, NOW, Some(proof.clone()))
            .await
            .expect("delete_all");
        let page = store.since(0, 10, usize::MAX, NOW).await.expect("since");
        assert_eq!(page.tombstones.len(), 3);
        for t in &page.tombstones {
            let want = if t.hash == h(2) { None } else { Some(&proof) };
            assert_eq!(t.proof.as_ref(), want, "{}", t.hash);
        }
        store
            .sweep_expired(NOW + 2 * 86_400_000)
            .await
            .expect("sweep");
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db.sqlite");
        let conn = open_writer(&path, Synchronous::Normal).expect("open");
        conn.execute_batch("PRAGMA user_version = 999")
            .expect("set version");
        drop(conn);
        match open_writer(&path, Synchronous::Normal) {
            Err(StoreError::SchemaTooNew { found: 999, known }) => {
                assert_eq!(known, latest_version())
            }
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
    }

    #[test]
    fn reader_cannot_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db.sqlite");
        let _w = open_writer(&path, Synchronous::Normal).expect("open");
        let r = open_reader(&path).expect("reader");
        assert!(r.execute_batch("DELETE FROM messages").is_err());
    }
}
