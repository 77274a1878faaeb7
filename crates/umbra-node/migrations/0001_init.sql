-- Umbra node storage, schema version 1.
-- Spec: shared/spec/swarms.md section 11 (local storage, informative),
-- section 6 (catch-up marks and tombstones), storage-rpc.md section 2.3
-- (revoked subaccount tokens).
--
-- Applied by crates/umbra-node/src/storage/schema.rs inside one transaction,
-- which then sets PRAGMA user_version = 1. Never edit a released migration:
-- add 0002_*.sql instead.

-- One row per account that has (or had) data here. `account` is the 33-byte
-- account ID (prefix byte + 32 key bytes).
CREATE TABLE owners (
    id      INTEGER PRIMARY KEY,
    account BLOB NOT NULL UNIQUE CHECK (length(account) = 33)
);

-- Stored messages. `id` is the insertion sequence number (AUTOINCREMENT so a
-- number is never reused, which catch-up marks rely on); it gives `retrieve`
-- its order.
CREATE TABLE messages (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    hash      TEXT    NOT NULL CHECK (length(hash) = 43),
    owner_id  INTEGER NOT NULL REFERENCES owners (id),
    namespace INTEGER NOT NULL CHECK (namespace BETWEEN -32768 AND 32767),
    timestamp INTEGER NOT NULL,
    expiry    INTEGER NOT NULL,
    data      BLOB    NOT NULL
);
-- Hashes are unique node-wide (storage-rpc.md section 7).
CREATE UNIQUE INDEX messages_hash ON messages (hash);
CREATE INDEX messages_owner_ns_id ON messages (owner_id, namespace, id);
CREATE INDEX messages_expiry ON messages (expiry);

-- Revoked subaccount tokens, at most 256 per owner (oldest dropped first;
-- ties in revoked_at are broken by rowid, i.e. insertion order).
CREATE TABLE revoked_subaccounts (
    owner_id   INTEGER NOT NULL REFERENCES owners (id),
    token      BLOB    NOT NULL CHECK (length(token) = 36),
    revoked_at INTEGER NOT NULL,
    UNIQUE (owner_id, token)
);
CREATE INDEX revoked_owner_time ON revoked_subaccounts (owner_id, revoked_at);

-- Tombstones of client deletions and shortened expiries (swarms.md section 6),
-- kept until the message's original expiry (`keep_until`). `new_expiry` is
-- NULL for "deleted". `seq` is the highest message sequence number at the time
-- the tombstone was made, so catch-up by sequence number includes it.
CREATE TABLE tombstones (
    hash       TEXT    PRIMARY KEY CHECK (length(hash) = 43),
    owner_id   INTEGER NOT NULL REFERENCES owners (id),
    namespace  INTEGER NOT NULL,
    new_expiry INTEGER,
    keep_until INTEGER NOT NULL,
    seq        INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX tombstones_keep_until ON tombstones (keep_until);
CREATE INDEX tombstones_seq ON tombstones (seq);

-- Per swarm peer (32-byte Ed25519 key): the catch-up mark, a message sequence
-- number (swarms.md section 6).
CREATE TABLE catchup_marks (
    peer BLOB    PRIMARY KEY CHECK (length(peer) = 32),
    seq  INTEGER NOT NULL
) WITHOUT ROWID;
