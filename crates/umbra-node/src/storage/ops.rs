//! The SQL behind every storage operation, as synchronous functions on one
//! connection (`shared/spec/storage-rpc.md` §5–9, `shared/spec/swarms.md`
//! §6–11).
//!
//! Write functions expect to run inside a transaction (the writer thread wraps
//! each one in a savepoint inside the group transaction, so a failing one
//! leaves nothing behind). [`super::Store`] is the normal entry point; these
//! functions are public for tools and tests that hold a connection directly.
//!
//! Rows whose expiry has passed (`expiry <= now`) are treated as absent by
//! every operation, even before [`sweep_expired`] removes them.
//!
//! Integers: SQLite stores signed 64-bit values; times above `i64::MAX` ms are
//! saturated to `i64::MAX` (about 292 million years).

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, Row, params};
use umbra_proto::identity::AccountId;

use super::{
    ExpireMode, MAX_REVOKED_PER_ACCOUNT, Namespaces, NsHashes, PeerKey, RetrieveLimits, Retrieved,
    SequencedMessage, SinceBatch, SqlContext, StoreError, StoreOptions, StoreOutcome,
    StoredMessage, SubaccountToken, Tombstone, retrieve_cost, validate_hash,
};

/// Converts a time or count to SQLite's signed integer, saturating.
fn to_sql(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Converts a stored signed integer back, refusing negatives.
fn from_sql(v: i64, what: &'static str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::BadStoredValue(what))
}

/// Namespace bounds for a [`Namespaces`] selector, for `BETWEEN ?lo AND ?hi`.
fn ns_range(ns: Namespaces) -> (i64, i64) {
    match ns {
        Namespaces::One(n) => (i64::from(n), i64::from(n)),
        Namespaces::All => (i64::from(i16::MIN), i64::from(i16::MAX)),
    }
}

fn ns_from_sql(v: i64) -> Result<i16, StoreError> {
    i16::try_from(v).map_err(|_| StoreError::BadStoredValue("namespace"))
}

/// The owner row id of `owner`, if the account has a row.
pub fn owner_id(conn: &Connection, owner: &AccountId) -> Result<Option<i64>, StoreError> {
    conn.prepare_cached("SELECT id FROM owners WHERE account = ?1")
        .and_then(|mut s| {
            s.query_row([&owner.to_bytes()[..]], |r| r.get(0))
                .optional()
        })
        .ctx("looking up an owner")
}

/// The owner row id of `owner`, creating the row if needed.
pub fn ensure_owner(conn: &Connection, owner: &AccountId) -> Result<i64, StoreError> {
    if let Some(id) = owner_id(conn, owner)? {
        return Ok(id);
    }
    conn.prepare_cached("INSERT INTO owners (account) VALUES (?1)")
        .and_then(|mut s| s.execute([&owner.to_bytes()[..]]))
        .ctx("adding an owner")?;
    Ok(conn.last_insert_rowid())
}

/// Bytes of database pages in use: `(page_count − freelist_count) ×
/// page_size`. Inside a write transaction this includes its uncommitted pages.
/// This is what the size cap measures.
pub fn used_bytes(conn: &Connection) -> Result<u64, StoreError> {
    let page_count: i64 = conn
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .ctx("reading page_count")?;
    let free: i64 = conn
        .query_row("PRAGMA freelist_count", [], |r| r.get(0))
        .ctx("reading freelist_count")?;
    let page_size: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .ctx("reading page_size")?;
    let pages = from_sql(page_count.saturating_sub(free).max(0), "page count")?;
    Ok(pages.saturating_mul(from_sql(page_size, "page size")?))
}

/// The highest message sequence number ever assigned (0 if none).
pub fn max_seq(conn: &Connection) -> Result<u64, StoreError> {
    let v: Option<i64> = conn
        .prepare_cached("SELECT seq FROM sqlite_sequence WHERE name = 'messages'")
        .and_then(|mut s| s.query_row([], |r| r.get(0)).optional())
        .ctx("reading the sequence number")?;
    from_sql(v.unwrap_or(0), "sequence number")
}

/// Reserves a fresh sequence number for a tombstone: the messages'
/// AUTOINCREMENT counter moves past it, so a message stored later sorts
/// after the tombstone and no two tombstones share a number (a `since` page
/// can end between any two of them).
fn reserve_seq(conn: &Connection) -> Result<i64, StoreError> {
    let bumped = conn
        .prepare_cached("UPDATE sqlite_sequence SET seq = seq + 1 WHERE name = 'messages'")
        .and_then(|mut s| s.execute([]))
        .ctx("reserving a sequence number")?;
    if bumped == 0 {
        conn.prepare_cached("INSERT INTO sqlite_sequence (name, seq) VALUES ('messages', 1)")
            .and_then(|mut s| s.execute([]))
            .ctx("reserving a sequence number")?;
    }
    Ok(to_sql(max_seq(conn)?))
}

/// Builds a message from `hash, account, namespace, timestamp, expiry, data`
/// columns starting at `first`.
fn message_from_row(r: &Row<'_>, first: usize) -> Result<StoredMessage, StoreError> {
    let hash: String = r.get(first).ctx("reading a message")?;
    let account: Vec<u8> = r.get(first + 1).ctx("reading a message")?;
    let ns: i64 = r.get(first + 2).ctx("reading a message")?;
    let ts: i64 = r.get(first + 3).ctx("reading a message")?;
    let exp: i64 = r.get(first + 4).ctx("reading a message")?;
    let data: Vec<u8> = r.get(first + 5).ctx("reading a message")?;
    Ok(StoredMessage {
        hash,
        owner: AccountId::from_bytes(&account)
            .map_err(|e| StoreError::BadStoredAccount(e.to_string()))?,
        namespace: ns_from_sql(ns)?,
        timestamp_ms: from_sql(ts, "timestamp")?,
        expiry_ms: from_sql(exp, "expiry")?,
        data,
    })
}

const MSG_COLS: &str = "m.hash, o.account, m.namespace, m.timestamp, m.expiry, m.data";

/// A request's [`super::Proof`] for the tombstones one operation records:
/// written to `tombstone_proofs` on first use (so an operation that deletes
/// nothing leaves no row), shared by every tombstone of the operation.
pub struct ProofRef<'a> {
    bytes: Option<&'a [u8]>,
    id: Option<i64>,
}

impl<'a> ProofRef<'a> {
    /// The proof of an operation (`None`: its tombstones carry none).
    pub fn new(bytes: Option<&'a [u8]>) -> Self {
        ProofRef { bytes, id: None }
    }

    /// The proof's row id, inserting the row if needed.
    fn id(&mut self, conn: &Connection) -> Result<Option<i64>, StoreError> {
        let Some(bytes) = self.bytes else {
            return Ok(None);
        };
        if let Some(id) = self.id {
            return Ok(Some(id));
        }
        let digest = umbra_crypto::hash::blake2b_fixed::<32>(&[bytes]);
        conn.prepare_cached(
            "INSERT INTO tombstone_proofs (digest, request) VALUES (?1, ?2)
             ON CONFLICT (digest) DO NOTHING",
        )
        .and_then(|mut s| s.execute(params![&digest[..], bytes]))
        .ctx("keeping a tombstone proof")?;
        let id: i64 = conn
            .prepare_cached("SELECT id FROM tombstone_proofs WHERE digest = ?1")
            .and_then(|mut s| s.query_row([&digest[..]], |r| r.get(0)))
            .ctx("keeping a tombstone proof")?;
        self.id = Some(id);
        Ok(Some(id))
    }
}

/// A tombstone to record.
struct NewTombstone<'h> {
    hash: &'h str,
    owner_id: i64,
    namespace: i64,
    /// `None` = deleted.
    new_expiry: Option<i64>,
    keep_until: i64,
    /// Messages timestamped later are not covered (`None`: no bound).
    max_timestamp: Option<i64>,
}

/// Records (or strengthens) a tombstone: "deleted" wins over a shortened
/// expiry, the earlier shortened expiry wins, the later `keep_until` wins.
/// The proof and the timestamp bound follow the state that wins (a tie
/// keeps the ones stored, unless there was no proof).
fn record_tombstone(
    conn: &Connection,
    t: &NewTombstone<'_>,
    proof: &mut ProofRef<'_>,
) -> Result<(), StoreError> {
    let seq = reserve_seq(conn)?;
    let proof_id = proof.id(conn)?;
    // Whether the new record wins over the stored one.
    const NEW_WINS: &str = "(tombstones.proof_id IS NULL AND excluded.proof_id IS NOT NULL)
         OR (excluded.proof_id IS NOT NULL AND tombstones.new_expiry IS NOT NULL
             AND (excluded.new_expiry IS NULL OR excluded.new_expiry < tombstones.new_expiry))";
    let sql = format!(
        "INSERT INTO tombstones
           (hash, owner_id, namespace, new_expiry, keep_until, seq, proof_id, max_timestamp)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (hash) DO UPDATE SET
           proof_id = CASE WHEN {NEW_WINS} THEN excluded.proof_id ELSE tombstones.proof_id END,
           max_timestamp = CASE WHEN {NEW_WINS} THEN excluded.max_timestamp
                                ELSE tombstones.max_timestamp END,
           new_expiry = CASE WHEN excluded.new_expiry IS NULL OR tombstones.new_expiry IS NULL
                             THEN NULL ELSE min(excluded.new_expiry, tombstones.new_expiry) END,
           keep_until = max(excluded.keep_until, tombstones.keep_until),
           seq = CASE WHEN {NEW_WINS}
                        OR (tombstones.new_expiry IS NOT NULL
                            AND (excluded.new_expiry IS NULL
                                 OR excluded.new_expiry < tombstones.new_expiry))
                        OR excluded.keep_until > tombstones.keep_until
                      THEN excluded.seq ELSE tombstones.seq END"
    );
    conn.prepare_cached(&sql)
        .and_then(|mut s| {
            s.execute(params![
                t.hash,
                t.owner_id,
                t.namespace,
                t.new_expiry,
                t.keep_until,
                seq,
                proof_id,
                t.max_timestamp
            ])
        })
        .ctx("recording a tombstone")?;
    Ok(())
}

/// Inserts a new message row and checks the size cap.
fn insert_row(
    conn: &Connection,
    owner_id: i64,
    msg: &StoredMessage,
    cap: u64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO messages (hash, owner_id, namespace, timestamp, expiry, data)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut s| {
        s.execute(params![
            msg.hash,
            owner_id,
            i64::from(msg.namespace),
            to_sql(msg.timestamp_ms),
            to_sql(msg.expiry_ms),
            msg.data
        ])
    })
    .ctx("inserting a message")?;
    if used_bytes(conn)? > cap {
        return Err(StoreError::Full { cap });
    }
    Ok(())
}

/// Deletes the row with `hash` (used to replace an expired, unswept row).
fn delete_row(conn: &Connection, hash: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM messages WHERE hash = ?1")
        .and_then(|mut s| s.execute([hash]))
        .ctx("deleting a message")?;
    Ok(())
}

/// `(expiry, owner_id)` of the row with `hash`, expired or not.
fn row_by_hash(conn: &Connection, hash: &str) -> Result<Option<(i64, i64)>, StoreError> {
    conn.prepare_cached("SELECT expiry, owner_id FROM messages WHERE hash = ?1")
        .and_then(|mut s| {
            s.query_row([hash], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .ctx("looking up a hash")
}

/// A client `store` (`storage-rpc.md` §9.1 effect): for a public outbox,
/// delete the account's other messages in the namespace; if the hash exists,
/// raise its expiry to the later of the two; else insert. A client store
/// clears a tombstone for the same hash (the client stored it again).
///
/// Fails with [`StoreError::Full`] when the insert would pass `cap`; the
/// caller must roll back (the writer's savepoint does).
pub fn store(
    conn: &Connection,
    msg: &StoredMessage,
    opts: &StoreOptions,
    cap: u64,
    now_ms: u64,
) -> Result<StoreOutcome, StoreError> {
    validate_hash(&msg.hash)?;
    let now = to_sql(now_ms);
    let oid = ensure_owner(conn, &msg.owner)?;
    if opts.replace_namespace {
        let mut stmt = conn
            .prepare_cached(
                "DELETE FROM messages WHERE owner_id = ?1 AND namespace = ?2 AND hash != ?3
                 RETURNING hash, expiry",
            )
            .ctx("replacing a public outbox")?;
        let gone: Vec<(String, i64)> = stmt
            .query_map(params![oid, i64::from(msg.namespace), msg.hash], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .and_then(|rows| rows.collect())
            .ctx("replacing a public outbox")?;
        let mut proof = ProofRef::new(opts.proof.as_deref());
        for (hash, expiry) in gone.into_iter().filter(|(_, e)| *e > now) {
            let t = NewTombstone {
                hash: &hash,
                owner_id: oid,
                namespace: i64::from(msg.namespace),
                new_expiry: None,
                keep_until: expiry,
                max_timestamp: None,
            };
            record_tombstone(conn, &t, &mut proof)?;
        }
    }
    let new_expiry = to_sql(msg.expiry_ms);
    match row_by_hash(conn, &msg.hash)? {
        Some((old, _)) if old > now => {
            if new_expiry > old {
                conn.prepare_cached("UPDATE messages SET expiry = ?1 WHERE hash = ?2")
                    .and_then(|mut s| s.execute(params![new_expiry, msg.hash]))
                    .ctx("raising an expiry")?;
            }
            Ok(StoreOutcome {
                new: false,
                expiry_ms: from_sql(old.max(new_expiry), "expiry")?,
                seq: None,
            })
        }
        expired_or_absent => {
            if expired_or_absent.is_some() {
                delete_row(conn, &msg.hash)?;
            }
            conn.prepare_cached("DELETE FROM tombstones WHERE hash = ?1")
                .and_then(|mut s| s.execute([&msg.hash]))
                .ctx("clearing a tombstone")?;
            insert_row(conn, oid, msg, cap)?;
            Ok(StoreOutcome {
                new: true,
                expiry_ms: msg.expiry_ms,
                seq: from_sql(conn.last_insert_rowid(), "sequence number").ok(),
            })
        }
    }
}

/// Hand-over / catch-up insert (`swarms.md` §7.3): for each item, skip it if
/// expired at `now_ms` or deleted by a tombstone; cap its expiry by a
/// shortening tombstone (a tombstone with a timestamp bound covers only
/// items timestamped up to it); insert it if the hash is absent; never change an
/// existing row. Returns how many were inserted. The caller has checked the
/// hashes and ownership.
pub fn apply_push(
    conn: &Connection,
    items: &[StoredMessage],
    cap: u64,
    now_ms: u64,
) -> Result<usize, StoreError> {
    let now = to_sql(now_ms);
    let mut stored = 0;
    for item in items {
        validate_hash(&item.hash)?;
        let tomb: Option<(Option<i64>, Option<i64>)> = conn
            .prepare_cached("SELECT new_expiry, max_timestamp FROM tombstones WHERE hash = ?1")
            .and_then(|mut s| {
                s.query_row([&item.hash], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .ctx("checking tombstones")?;
        // A tombstone bounded by a request's time does not cover a later
        // message.
        let tomb = tomb
            .filter(|(_, max)| max.is_none_or(|m| to_sql(item.timestamp_ms) <= m))
            .map(|(e, _)| e);
        let expiry = match tomb {
            Some(None) => continue,
            Some(Some(e)) => e.min(to_sql(item.expiry_ms)),
            None => to_sql(item.expiry_ms),
        };
        if expiry <= now {
            continue;
        }
        match row_by_hash(conn, &item.hash)? {
            Some((old, _)) if old > now => continue,
            Some(_) => delete_row(conn, &item.hash)?,
            None => {}
        }
        let oid = ensure_owner(conn, &item.owner)?;
        let mut row = item.clone();
        row.expiry_ms = from_sql(expiry, "expiry")?;
        insert_row(conn, oid, &row, cap)?;
        stored += 1;
    }
    Ok(stored)
}

/// The longest a tombstone from a peer is kept: the longest TTL, plus a
/// minute for clocks and tolerances. An honest `keep_until` (the message's
/// original expiry) is never later; a larger one from a peer is capped.
pub const MAX_TOMBSTONE_KEEP_MS: u64 = umbra_proto::rpc::limits::MAX_TTL_MS + 60_000;

/// Applies tombstones received from a peer (`swarms.md` §6) whose proofs the
/// caller verified. When this node holds an unexpired copy of the message
/// for the same account, the copy must lie within what the proof covers —
/// the tombstone's namespace, and a timestamp no later than
/// `max_message_timestamp` when set — or the tombstone is skipped and
/// counted in [`super::TombstoneOutcome::not_covered`]. A covered copy is
/// deleted or its expiry shortened (never extended). The tombstone is kept
/// with its proof (so this node can pass it on) and, when this node held no
/// copy to check, its timestamp bound (so it never blocks a later pushed
/// message the proof does not cover), its
/// `keep_until` capped at `now + MAX_TOMBSTONE_KEEP_MS`. Tombstones already past `keep_until_ms`
/// are ignored.
pub fn apply_tombstones(
    conn: &Connection,
    tombstones: &[super::ProvenTombstone],
    now_ms: u64,
) -> Result<super::TombstoneOutcome, StoreError> {
    let now = to_sql(now_ms);
    let keep_cap = to_sql(now_ms.saturating_add(MAX_TOMBSTONE_KEEP_MS));
    let mut out = super::TombstoneOutcome::default();
    // Tombstones of one request share one proof (one `Arc`): one row.
    let mut proofs: std::collections::HashMap<*const u8, ProofRef<'_>> =
        std::collections::HashMap::new();
    for pt in tombstones {
        let t = &pt.tombstone;
        validate_hash(&t.hash)?;
        if to_sql(t.keep_until_ms) <= now {
            continue;
        }
        let oid = ensure_owner(conn, &t.owner)?;
        let row: Option<(i64, i64, i64, i64)> = conn
            .prepare_cached(
                "SELECT expiry, owner_id, namespace, timestamp FROM messages WHERE hash = ?1",
            )
            .and_then(|mut s| {
                s.query_row([&t.hash], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .optional()
            })
            .ctx("looking up a hash")?;
        // The timestamp bound kept with the tombstone: none once this
        // node's own copy was checked against it (a pushed copy of the same
        // hash, whatever timestamp its pusher claims, stays deleted).
        let mut max_timestamp = pt.max_message_timestamp.map(to_sql);
        if let Some((old, row_owner, ns, ts)) = row
            && row_owner == oid
            && old > now
        {
            let covered = ns == i64::from(t.namespace)
                && pt.max_message_timestamp.is_none_or(|max| ts <= to_sql(max));
            if !covered {
                out.not_covered += 1;
                continue;
            }
            max_timestamp = None;
            match t.new_expiry_ms.map(to_sql) {
                Some(e) if e > now && e < old => {
                    conn.prepare_cached("UPDATE messages SET expiry = ?1 WHERE hash = ?2")
                        .and_then(|mut s| s.execute(params![e, t.hash]))
                        .ctx("applying a tombstone")?;
                    out.changed += 1;
                }
                Some(e) if e >= old => {}
                _ => {
                    delete_row(conn, &t.hash)?;
                    out.changed += 1;
                }
            }
        }
        let proof = match &t.proof {
            Some(p) => proofs
                .entry(p.as_ptr())
                .or_insert_with(|| ProofRef::new(Some(p))),
            None => proofs
                .entry(std::ptr::null())
                .or_insert_with(|| ProofRef::new(None)),
        };
        let record = NewTombstone {
            hash: &t.hash,
            owner_id: oid,
            namespace: i64::from(t.namespace),
            new_expiry: t.new_expiry_ms.map(to_sql),
            keep_until: to_sql(t.keep_until_ms).min(keep_cap),
            max_timestamp,
        };
        record_tombstone(conn, &record, proof)?;
    }
    Ok(out)
}

/// `retrieve` (`storage-rpc.md` §9.2): unexpired rows of (owner, namespace)
/// in insertion order, after the row of `after_hash` (from the start if it is
/// absent from that namespace), within `limits`; the first message is always
/// returned even if it alone passes the size budget.
pub fn retrieve(
    conn: &Connection,
    owner: &AccountId,
    namespace: i16,
    after_hash: Option<&str>,
    limits: RetrieveLimits,
    now_ms: u64,
) -> Result<Retrieved, StoreError> {
    let Some(oid) = owner_id(conn, owner)? else {
        return Ok(Retrieved::default());
    };
    let ns = i64::from(namespace);
    let after_id: i64 = match after_hash.filter(|h| !h.is_empty()) {
        Some(h) => conn
            .prepare_cached(
                "SELECT id FROM messages WHERE hash = ?1 AND owner_id = ?2 AND namespace = ?3",
            )
            .and_then(|mut s| s.query_row(params![h, oid, ns], |r| r.get(0)).optional())
            .ctx("looking up last_hash")?
            .unwrap_or(0),
        None => 0,
    };
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {MSG_COLS} FROM messages m JOIN owners o ON o.id = m.owner_id
             WHERE m.owner_id = ?1 AND m.namespace = ?2 AND m.id > ?3 AND m.expiry > ?4
             ORDER BY m.id"
        ))
        .ctx("retrieving messages")?;
    let mut rows = stmt
        .query(params![oid, ns, after_id, to_sql(now_ms)])
        .ctx("retrieving messages")?;
    let mut out = Retrieved::default();
    let mut total: u64 = 0;
    while let Some(row) = rows.next().ctx("retrieving messages")? {
        let count_full = limits
            .max_count
            .is_some_and(|c| u64::try_from(out.messages.len()).unwrap_or(u64::MAX) >= c);
        let size: u64 = {
            let hash_len = row
                .get_ref(0)
                .ctx("retrieving messages")?
                .as_bytes()
                .map_or(0, <[u8]>::len);
            let data_len = row
                .get_ref(5)
                .ctx("retrieving messages")?
                .as_bytes()
                .map_or(0, <[u8]>::len);
            retrieve_cost(hash_len, data_len)
        };
        let size_full = !out.messages.is_empty()
            && limits
                .max_size
                .is_some_and(|m| total.saturating_add(size) > m);
        if count_full || size_full {
            out.more = true;
            break;
        }
        total = total.saturating_add(size);
        out.messages.push(message_from_row(row, 0)?);
    }
    Ok(out)
}

/// Deletes rows returned by `stmt`-style `DELETE … RETURNING hash, namespace,
/// expiry, owner_id`, keeps tombstones for the unexpired ones, and groups
/// their hashes by namespace (sorted).
fn collect_deleted(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    now: i64,
    mut tombstone: Option<&mut ProofRef<'_>>,
) -> Result<NsHashes, StoreError> {
    let gone: Vec<(String, i64, i64, i64)> = conn
        .prepare_cached(sql)
        .and_then(|mut s| {
            s.query_map(params, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .and_then(|rows| rows.collect())
        })
        .ctx("deleting messages")?;
    let mut out = NsHashes::new();
    for (hash, ns, expiry, oid) in gone.into_iter().filter(|g| g.2 > now) {
        if let Some(proof) = tombstone.as_deref_mut() {
            let t = NewTombstone {
                hash: &hash,
                owner_id: oid,
                namespace: ns,
                new_expiry: None,
                keep_until: expiry,
                max_timestamp: None,
            };
            record_tombstone(conn, &t, proof)?;
        }
        out.entry(ns_from_sql(ns)?).or_default().push(hash);
    }
    for list in out.values_mut() {
        list.sort();
    }
    Ok(out)
}

/// `delete` (`storage-rpc.md` §9.3): deletes those of `hashes` that belong to
/// `owner` and have not expired; returns them ASCII-sorted.
pub fn delete_hashes(
    conn: &Connection,
    owner: &AccountId,
    hashes: &[String],
    now_ms: u64,
    proof: Option<&[u8]>,
) -> Result<Vec<String>, StoreError> {
    let Some(oid) = owner_id(conn, owner)? else {
        return Ok(Vec::new());
    };
    let now = to_sql(now_ms);
    let mut proof = ProofRef::new(proof);
    let mut deleted = Vec::new();
    for h in hashes {
        let by_ns = collect_deleted(
            conn,
            "DELETE FROM messages WHERE hash = ?1 AND owner_id = ?2
             RETURNING hash, namespace, expiry, owner_id",
            params![h, oid],
            now,
            Some(&mut proof),
        )?;
        deleted.extend(by_ns.into_values().flatten());
    }
    deleted.sort();
    deleted.dedup();
    Ok(deleted)
}

/// Deletes `hashes` of `owner` without keeping tombstones: the local copy is
/// dropped after a hand-over (`swarms.md` §10), not deleted by a client.
/// Returns how many rows were removed.
pub fn forget(
    conn: &Connection,
    owner: &AccountId,
    hashes: &[String],
) -> Result<usize, StoreError> {
    let Some(oid) = owner_id(conn, owner)? else {
        return Ok(0);
    };
    let mut n = 0;
    for h in hashes {
        n += conn
            .prepare_cached("DELETE FROM messages WHERE hash = ?1 AND owner_id = ?2")
            .and_then(|mut s| s.execute(params![h, oid]))
            .ctx("forgetting a message")?;
    }
    Ok(n)
}

/// `delete_all` (`storage-rpc.md` §9.4): deletes every message of `owner` in
/// the namespace(s); returns the unexpired ones deleted, by namespace.
pub fn delete_all(
    conn: &Connection,
    owner: &AccountId,
    ns: Namespaces,
    now_ms: u64,
    proof: Option<&[u8]>,
) -> Result<NsHashes, StoreError> {
    let Some(oid) = owner_id(conn, owner)? else {
        return Ok(NsHashes::new());
    };
    let (lo, hi) = ns_range(ns);
    collect_deleted(
        conn,
        "DELETE FROM messages WHERE owner_id = ?1 AND namespace BETWEEN ?2 AND ?3
         RETURNING hash, namespace, expiry, owner_id",
        params![oid, lo, hi],
        to_sql(now_ms),
        Some(&mut ProofRef::new(proof)),
    )
}

/// `delete_before` (`storage-rpc.md` §9.5): deletes messages of `owner` in
/// the namespace(s) with `timestamp ≤ before_ms`.
pub fn delete_before(
    conn: &Connection,
    owner: &AccountId,
    ns: Namespaces,
    before_ms: u64,
    now_ms: u64,
    proof: Option<&[u8]>,
) -> Result<NsHashes, StoreError> {
    let Some(oid) = owner_id(conn, owner)? else {
        return Ok(NsHashes::new());
    };
    let (lo, hi) = ns_range(ns);
    collect_deleted(
        conn,
        "DELETE FROM messages WHERE owner_id = ?1 AND namespace BETWEEN ?2 AND ?3
           AND timestamp <= ?4
         RETURNING hash, namespace, expiry, owner_id",
        params![oid, lo, hi, to_sql(before_ms)],
        to_sql(now_ms),
        Some(&mut ProofRef::new(proof)),
    )
}

/// `expire` (`storage-rpc.md` §9.6): for each `(hash, new_expiry)` whose
/// unexpired message belongs to `owner`, update it as `mode` allows. The
/// caller has already clamped each expiry to `now + 30 days`. A shortened
/// expiry keeps a tombstone. Unknown hashes appear in neither map.
pub fn expire(
    conn: &Connection,
    owner: &AccountId,
    updates: &[(String, u64)],
    mode: ExpireMode,
    now_ms: u64,
    proof: Option<&[u8]>,
) -> Result<super::ExpireOutcome, StoreError> {
    let mut out = super::ExpireOutcome::default();
    let mut proof = ProofRef::new(proof);
    let Some(oid) = owner_id(conn, owner)? else {
        return Ok(out);
    };
    let now = to_sql(now_ms);
    for (hash, new) in updates {
        let new_sql = to_sql(*new);
        let row: Option<(i64, i64)> = conn
            .prepare_cached(
                "SELECT expiry, namespace FROM messages
                 WHERE hash = ?1 AND owner_id = ?2 AND expiry > ?3",
            )
            .and_then(|mut s| {
                s.query_row(params![hash, oid, now], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .ctx("reading an expiry")?;
        let Some((old, ns)) = row else { continue };
        let apply = match mode {
            ExpireMode::Extend => new_sql > old,
            ExpireMode::Shorten => new_sql < old,
            ExpireMode::Any => true,
        };
        if !apply {
            out.unchanged.insert(hash.clone(), from_sql(old, "expiry")?);
            continue;
        }
        conn.prepare_cached("UPDATE messages SET expiry = ?1 WHERE hash = ?2")
            .and_then(|mut s| s.execute(params![new_sql, hash]))
            .ctx("updating an expiry")?;
        if new_sql < old {
            let t = NewTombstone {
                hash,
                owner_id: oid,
                namespace: ns,
                new_expiry: Some(new_sql),
                keep_until: old,
                max_timestamp: None,
            };
            record_tombstone(conn, &t, &mut proof)?;
        }
        out.updated.insert(hash.clone(), *new);
    }
    Ok(out)
}

/// `expire_all` (`storage-rpc.md` §9.7): shortens to `expiry_ms` every
/// unexpired message of `owner` in the namespace(s) whose expiry is later;
/// returns the updated hashes by namespace (sorted).
pub fn expire_all(
    conn: &Connection,
    owner: &AccountId,
    ns: Namespaces,
    expiry_ms: u64,
    now_ms: u64,
    proof: Option<&[u8]>,
) -> Result<NsHashes, StoreError> {
    let Some(oid) = owner_id(conn, owner)? else {
        return Ok(NsHashes::new());
    };
    let (lo, hi) = ns_range(ns);
    let new = to_sql(expiry_ms);
    let changed: Vec<(String, i64, i64)> = conn
        .prepare_cached(
            "SELECT hash, namespace, expiry FROM messages
             WHERE owner_id = ?1 AND namespace BETWEEN ?2 AND ?3 AND expiry > ?4 AND expiry > ?5",
        )
        .and_then(|mut s| {
            s.query_map(params![oid, lo, hi, new, to_sql(now_ms)], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .and_then(|rows| rows.collect())
        })
        .ctx("selecting messages to shorten")?;
    let mut out = NsHashes::new();
    let mut proof = ProofRef::new(proof);
    for (hash, ns, old) in changed {
        conn.prepare_cached("UPDATE messages SET expiry = ?1 WHERE hash = ?2")
            .and_then(|mut s| s.execute(params![new, hash]))
            .ctx("shortening an expiry")?;
        let t = NewTombstone {
            hash: &hash,
            owner_id: oid,
            namespace: ns,
            new_expiry: Some(new),
            keep_until: old,
            max_timestamp: None,
        };
        record_tombstone(conn, &t, &mut proof)?;
        out.entry(ns_from_sql(ns)?).or_default().push(hash);
    }
    for list in out.values_mut() {
        list.sort();
    }
    Ok(out)
}

/// `get_expiries` (`storage-rpc.md` §9.8): the current expiry of each of
/// `hashes` that exists, is unexpired and belongs to `owner`.
pub fn get_expiries(
    conn: &Connection,
    owner: &AccountId,
    hashes: &[String],
    now_ms: u64,
) -> Result<BTreeMap<String, u64>, StoreError> {
    let mut out = BTreeMap::new();
    let Some(oid) = owner_id(conn, owner)? else {
        return Ok(out);
    };
    let mut stmt = conn
        .prepare_cached(
            "SELECT expiry FROM messages WHERE hash = ?1 AND owner_id = ?2 AND expiry > ?3",
        )
        .ctx("reading expiries")?;
    for h in hashes {
        let e: Option<i64> = stmt
            .query_row(params![h, oid, to_sql(now_ms)], |r| r.get(0))
            .optional()
            .ctx("reading expiries")?;
        if let Some(e) = e {
            out.insert(h.clone(), from_sql(e, "expiry")?);
        }
    }
    Ok(out)
}

/// `revoke_subaccount` (`storage-rpc.md` §2.3, §9.9): adds the tokens to the
/// account's revocation list, then drops the oldest beyond 256. Returns how
/// many tokens changed state.
pub fn revoke_subaccounts(
    conn: &Connection,
    owner: &AccountId,
    tokens: &[SubaccountToken],
    now_ms: u64,
) -> Result<usize, StoreError> {
    let oid = ensure_owner(conn, owner)?;
    let mut changed = 0;
    for t in tokens {
        changed += conn
            .prepare_cached(
                "INSERT OR IGNORE INTO revoked_subaccounts (owner_id, token, revoked_at)
                 VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut s| s.execute(params![oid, &t[..], to_sql(now_ms)]))
            .ctx("revoking a subaccount")?;
    }
    let limit = i64::try_from(MAX_REVOKED_PER_ACCOUNT).unwrap_or(i64::MAX);
    conn.prepare_cached(
        "DELETE FROM revoked_subaccounts WHERE rowid IN (
           SELECT rowid FROM revoked_subaccounts WHERE owner_id = ?1
           ORDER BY revoked_at DESC, rowid DESC LIMIT -1 OFFSET ?2)",
    )
    .and_then(|mut s| s.execute(params![oid, limit]))
    .ctx("trimming the revocation list")?;
    Ok(changed)
}

/// `unrevoke_subaccount` (`storage-rpc.md` §9.9): removes the tokens from the
/// revocation list; returns how many were on it.
pub fn unrevoke_subaccounts(
    conn: &Connection,
    owner: &AccountId,
    tokens: &[SubaccountToken],
) -> Result<usize, StoreError> {
    let Some(oid) = owner_id(conn, owner)? else {
        return Ok(0);
    };
    let mut changed = 0;
    for t in tokens {
        changed += conn
            .prepare_cached("DELETE FROM revoked_subaccounts WHERE owner_id = ?1 AND token = ?2")
            .and_then(|mut s| s.execute(params![oid, &t[..]]))
            .ctx("unrevoking a subaccount")?;
    }
    Ok(changed)
}

/// Whether `token` is on `owner`'s revocation list.
pub fn is_revoked(
    conn: &Connection,
    owner: &AccountId,
    token: &SubaccountToken,
) -> Result<bool, StoreError> {
    let Some(oid) = owner_id(conn, owner)? else {
        return Ok(false);
    };
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM revoked_subaccounts WHERE owner_id = ?1 AND token = ?2)",
    )
    .and_then(|mut s| s.query_row(params![oid, &token[..]], |r| r.get(0)))
    .ctx("checking a revocation")
}

/// Expiry sweep (`swarms.md` §9): deletes every message with
/// `expiry ≤ now_ms`, every tombstone kept past its `keep_until` and every
/// proof no tombstone refers to any more. Returns
/// how many messages were deleted.
pub fn sweep_expired(conn: &Connection, now_ms: u64) -> Result<usize, StoreError> {
    let now = to_sql(now_ms);
    let n = conn
        .prepare_cached("DELETE FROM messages WHERE expiry <= ?1")
        .and_then(|mut s| s.execute([now]))
        .ctx("sweeping expired messages")?;
    conn.prepare_cached("DELETE FROM tombstones WHERE keep_until <= ?1")
        .and_then(|mut s| s.execute([now]))
        .ctx("sweeping tombstones")?;
    conn.prepare_cached(
        "DELETE FROM tombstone_proofs WHERE NOT EXISTS
           (SELECT 1 FROM tombstones t WHERE t.proof_id = tombstone_proofs.id)",
    )
    .and_then(|mut s| s.execute([]))
    .ctx("sweeping tombstone proofs")?;
    Ok(n)
}

/// Accounts that have at least one unexpired message (hand-over, `swarms.md`
/// §7.1).
pub fn owners(conn: &Connection, now_ms: u64) -> Result<Vec<AccountId>, StoreError> {
    let raw: Vec<Vec<u8>> = conn
        .prepare_cached(
            "SELECT o.account FROM owners o WHERE EXISTS
               (SELECT 1 FROM messages m WHERE m.owner_id = o.id AND m.expiry > ?1)
             ORDER BY o.account",
        )
        .and_then(|mut s| {
            s.query_map([to_sql(now_ms)], |r| r.get(0))
                .and_then(|rows| rows.collect())
        })
        .ctx("listing owners")?;
    raw.iter()
        .map(|b| AccountId::from_bytes(b).map_err(|e| StoreError::BadStoredAccount(e.to_string())))
        .collect()
}

/// Every unexpired message of `owner`, all namespaces, in insertion order
/// (hand-over push, `swarms.md` §7).
pub fn messages_for_push(
    conn: &Connection,
    owner: &AccountId,
    now_ms: u64,
) -> Result<Vec<StoredMessage>, StoreError> {
    let Some(oid) = owner_id(conn, owner)? else {
        return Ok(Vec::new());
    };
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {MSG_COLS} FROM messages m JOIN owners o ON o.id = m.owner_id
             WHERE m.owner_id = ?1 AND m.expiry > ?2 ORDER BY m.id"
        ))
        .ctx("listing messages for push")?;
    let mut rows = stmt
        .query(params![oid, to_sql(now_ms)])
        .ctx("listing messages for push")?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().ctx("listing messages for push")? {
        out.push(message_from_row(r, 0)?);
    }
    Ok(out)
}

/// `(hash, expiry)` of every unexpired message of `owner`, sorted by hash, so
/// a peer can diff its copy against ours.
pub fn hash_expiries(
    conn: &Connection,
    owner: &AccountId,
    now_ms: u64,
) -> Result<Vec<(String, u64)>, StoreError> {
    let Some(oid) = owner_id(conn, owner)? else {
        return Ok(Vec::new());
    };
    let raw: Vec<(String, i64)> = conn
        .prepare_cached(
            "SELECT hash, expiry FROM messages WHERE owner_id = ?1 AND expiry > ?2 ORDER BY hash",
        )
        .and_then(|mut s| {
            s.query_map(params![oid, to_sql(now_ms)], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|rows| rows.collect())
        })
        .ctx("listing hashes")?;
    raw.into_iter()
        .map(|(h, e)| Ok((h, from_sql(e, "expiry")?)))
        .collect()
}

/// Bytes a pushed item or tombstone costs in a page beyond its data (hash,
/// account, numbers, bencode framing), for [`since`]'s byte budget.
const PAGE_ENTRY_OVERHEAD: usize = 256;

/// A tombstone row of a page: sequence number, hash, account, namespace,
/// new expiry, keep-until, proof id.
type SequencedTombstoneRow = (i64, String, Vec<u8>, i64, Option<i64>, i64, Option<i64>);

fn tombstone_row(r: &Row<'_>) -> Result<SequencedTombstoneRow, StoreError> {
    let row = || -> Result<SequencedTombstoneRow, rusqlite::Error> {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
        ))
    };
    row().ctx("reading tombstones since")
}

/// Catch-up page (`swarms.md` §6): unexpired messages with sequence number
/// `≥ from_seq` and the live tombstones of the range the page covers
/// (`[from_seq, next_seq)`), walked in sequence order. A page ends before
/// the sequence number at which it holds `max_messages` messages or has
/// passed `max_bytes` of messages, tombstones and proofs, so a page of large
/// messages fits in one reply; it is never empty. A tombstone gets a
/// sequence number of its own when recorded or changed ([`reserve_seq`]),
/// so a page can end between any two such entries and exceeds `max_bytes`
/// by at most one entry. (Tombstones written by earlier versions may share
/// a number with a message until they expire; pages keep such a group
/// whole.)
pub fn since(
    conn: &Connection,
    from_seq: u64,
    max_messages: usize,
    max_bytes: usize,
    now_ms: u64,
) -> Result<SinceBatch, StoreError> {
    let now = to_sql(now_ms);
    let from = to_sql(from_seq);
    let mut msg_stmt = conn
        .prepare_cached(&format!(
            "SELECT m.id, {MSG_COLS} FROM messages m JOIN owners o ON o.id = m.owner_id
             WHERE m.id >= ?1 AND m.expiry > ?2 ORDER BY m.id"
        ))
        .ctx("reading messages since")?;
    let mut msgs = msg_stmt
        .query(params![from, now])
        .ctx("reading messages since")?;
    let mut tomb_stmt = conn
        .prepare_cached(
            "SELECT t.seq, t.hash, o.account, t.namespace, t.new_expiry, t.keep_until, t.proof_id
             FROM tombstones t JOIN owners o ON o.id = t.owner_id
             WHERE t.seq >= ?1 AND t.keep_until > ?2 ORDER BY t.seq, t.hash",
        )
        .ctx("reading tombstones since")?;
    let mut tombs = tomb_stmt
        .query(params![from, now])
        .ctx("reading tombstones since")?;
    let next_msg = |rows: &mut rusqlite::Rows<'_>| -> Result<Option<SequencedMessage>, StoreError> {
        match rows.next().ctx("reading messages since")? {
            None => Ok(None),
            Some(r) => {
                let seq: i64 = r.get(0).ctx("reading messages since")?;
                Ok(Some(SequencedMessage {
                    seq: from_sql(seq, "sequence number")?,
                    message: message_from_row(r, 1)?,
                }))
            }
        }
    };
    let next_tomb = |rows: &mut rusqlite::Rows<'_>| -> Result<Option<(u64, SequencedTombstoneRow)>, StoreError> {
        match rows.next().ctx("reading tombstones since")? {
            None => Ok(None),
            Some(r) => {
                let t = tombstone_row(r)?;
                Ok(Some((from_sql(t.0, "sequence number")?, t)))
            }
        }
    };
    let mut msg = next_msg(&mut msgs)?;
    let mut tomb = next_tomb(&mut tombs)?;
    let mut out = SinceBatch::default();
    // Each proof is read once and shared by its tombstones.
    let mut proofs: BTreeMap<i64, super::Proof> = BTreeMap::new();
    let (mut bytes, mut last_seq) = (0usize, None::<u64>);
    loop {
        // The next entry in sequence order; a message before the tombstones
        // that share its sequence number.
        let take_msg = match (&msg, &tomb) {
            (None, None) => break,
            (Some(m), Some((t, _))) => m.seq <= *t,
            (Some(_), None) => true,
            (None, Some(_)) => false,
        };
        let seq = match (&msg, &tomb, take_msg) {
            (Some(m), _, true) => m.seq,
            (_, Some((t, _)), false) => *t,
            _ => break,
        };
        let full = bytes >= max_bytes || (take_msg && out.messages.len() >= max_messages);
        if full && last_seq.is_some_and(|l| l != seq) {
            out.next_seq = Some(seq);
            break;
        }
        last_seq = Some(seq);
        if take_msg {
            if let Some(m) = msg.take() {
                bytes += m.message.data.len() + PAGE_ENTRY_OVERHEAD;
                out.messages.push(m);
            }
            msg = next_msg(&mut msgs)?;
            continue;
        }
        let Some((_, (_, hash, account, ns, new_expiry, keep_until, proof_id))) = tomb.take()
        else {
            break;
        };
        tomb = next_tomb(&mut tombs)?;
        bytes += hash.len() + PAGE_ENTRY_OVERHEAD;
        let proof = match proof_id {
            None => None,
            Some(id) => Some(match proofs.get(&id) {
                Some(p) => p.clone(),
                None => {
                    let request: Vec<u8> = conn
                        .prepare_cached("SELECT request FROM tombstone_proofs WHERE id = ?1")
                        .and_then(|mut s| s.query_row([id], |r| r.get(0)))
                        .ctx("reading a tombstone proof")?;
                    bytes += request.len();
                    let p: super::Proof = request.into();
                    proofs.insert(id, p.clone());
                    p
                }
            }),
        };
        out.tombstones.push(Tombstone {
            proof,
            hash,
            owner: AccountId::from_bytes(&account)
                .map_err(|e| StoreError::BadStoredAccount(e.to_string()))?,
            namespace: ns_from_sql(ns)?,
            new_expiry_ms: new_expiry.map(|e| from_sql(e, "expiry")).transpose()?,
            keep_until_ms: from_sql(keep_until, "keep_until")?,
        });
    }
    out.end_seq = last_seq.map(|s| s + 1);
    Ok(out)
}

/// Sets `peer`'s catch-up mark to `seq` unless one is set (`swarms.md` §6).
/// Returns true when the mark was set by this call.
pub fn set_catchup_mark(conn: &Connection, peer: &PeerKey, seq: u64) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached("INSERT OR IGNORE INTO catchup_marks (peer, seq) VALUES (?1, ?2)")
        .and_then(|mut s| s.execute(params![&peer[..], to_sql(seq)]))
        .ctx("setting a catch-up mark")?;
    Ok(n > 0)
}

/// Moves `peer`'s catch-up mark up to `seq` (never down, never creating
/// one): what catch-up has pushed below `seq` is acknowledged. Returns
/// whether it moved.
pub fn advance_catchup_mark(
    conn: &Connection,
    peer: &PeerKey,
    seq: u64,
) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached("UPDATE catchup_marks SET seq = ?2 WHERE peer = ?1 AND seq < ?2")
        .and_then(|mut s| s.execute(params![&peer[..], to_sql(seq)]))
        .ctx("advancing a catch-up mark")?;
    Ok(n > 0)
}

/// Clears `peer`'s catch-up mark; returns whether one was set.
pub fn clear_catchup_mark(conn: &Connection, peer: &PeerKey) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached("DELETE FROM catchup_marks WHERE peer = ?1")
        .and_then(|mut s| s.execute([&peer[..]]))
        .ctx("clearing a catch-up mark")?;
    Ok(n > 0)
}

/// Every catch-up mark, `(peer, seq)`, sorted by peer.
pub fn catchup_marks(conn: &Connection) -> Result<Vec<(PeerKey, u64)>, StoreError> {
    let raw: Vec<(Vec<u8>, i64)> = conn
        .prepare_cached("SELECT peer, seq FROM catchup_marks ORDER BY peer")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|rows| rows.collect())
        })
        .ctx("listing catch-up marks")?;
    raw.into_iter()
        .map(|(p, s)| {
            let peer: PeerKey = p
                .as_slice()
                .try_into()
                .map_err(|_| StoreError::BadStoredValue("peer key"))?;
            Ok((peer, from_sql(s, "sequence number")?))
        })
        .collect()
}

/// Number of stored message rows (expired-but-unswept included).
pub fn count(conn: &Connection) -> Result<u64, StoreError> {
    let n: i64 = conn
        .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
        .ctx("counting messages")?;
    from_sql(n, "count")
}
