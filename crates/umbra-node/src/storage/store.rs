//! [`Store`]: the async handle on the node database (`shared/spec/storage-rpc.md`
//! §5–9, `shared/spec/swarms.md` §6–11).
//!
//! Writes are queued to the writer thread ([`super::writer`], group commit);
//! reads are queued to a pool of reader threads, each owning one read-only
//! connection (WAL lets them read while the writer writes). Callers only
//! await reply channels, so no method blocks the async runtime, and the store
//! works under any executor.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};
use umbra_proto::identity::AccountId;

use super::writer::{self, Job, Shared, WriterCtx};
use super::{
    ExpireMode, ExpireOutcome, Namespaces, NsHashes, PeerKey, Proof, ProvenTombstone,
    RetrieveLimits, Retrieved, SinceBatch, StoreConfig, StoreError, StoreOptions, StoreOutcome,
    StoredMessage, SubaccountToken, TombstoneOutcome, ops, schema,
};

/// A read job: runs on a reader thread with its connection.
type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

/// The node's message store. Cheap to clone; the threads stop when the last
/// clone is dropped (after finishing queued work).
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .field("size_cap_bytes", &self.inner.cap)
            .finish_non_exhaustive()
    }
}

struct Inner {
    path: PathBuf,
    cap: u64,
    write_tx: Option<mpsc::Sender<Job>>,
    read_tx: Option<mpsc::Sender<ReadJob>>,
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channels lets each thread finish its queue and exit.
        self.write_tx.take();
        self.read_tx.take();
        let threads = match self.threads.get_mut() {
            Ok(t) => std::mem::take(t),
            Err(poisoned) => std::mem::take(poisoned.into_inner()),
        };
        for t in threads {
            if t.join().is_err() {
                tracing::error!("a storage thread panicked");
            }
        }
    }
}

impl Store {
    /// Opens (creating and migrating if needed) the database at `path` and
    /// starts the writer and reader threads. This call does blocking file
    /// I/O; call it at start-up (or from `spawn_blocking`).
    pub fn open(path: impl AsRef<Path>, config: StoreConfig) -> Result<Store, StoreError> {
        let path = path.as_ref().to_owned();
        let wconn = schema::open_writer(&path, config.synchronous)?;
        let readers = (0..config.readers.max(1))
            .map(|_| schema::open_reader(&path))
            .collect::<Result<Vec<_>, _>>()?;
        let shared = Arc::new(Shared::default());
        let (write_tx, write_rx) = mpsc::channel::<Job>(config.queue_depth.max(1));
        let (read_tx, read_rx) = mpsc::channel::<ReadJob>(config.queue_depth.max(1));
        let mut threads = Vec::new();
        let wshared = Arc::clone(&shared);
        let (cap, max_batch) = (config.size_cap_bytes, config.max_batch);
        threads.push(
            std::thread::Builder::new()
                .name("umbra-store-writer".into())
                .spawn(move || writer::run(wconn, write_rx, cap, max_batch, wshared))
                .map_err(StoreError::Thread)?,
        );
        let read_rx = Arc::new(Mutex::new(read_rx));
        for (i, conn) in readers.into_iter().enumerate() {
            let rx = Arc::clone(&read_rx);
            threads.push(
                std::thread::Builder::new()
                    .name(format!("umbra-store-reader-{i}"))
                    .spawn(move || reader_loop(conn, &rx))
                    .map_err(StoreError::Thread)?,
            );
        }
        Ok(Store {
            inner: Arc::new(Inner {
                path,
                cap,
                write_tx: Some(write_tx),
                read_tx: Some(read_tx),
                shared,
                threads: Mutex::new(threads),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The size cap in bytes.
    pub fn size_cap_bytes(&self) -> u64 {
        self.inner.cap
    }

    /// Transactions committed by the writer so far (group commits; metrics).
    pub fn commit_count(&self) -> u64 {
        self.inner.shared.commits.load(Ordering::Relaxed)
    }

    /// True after an insert was refused for the size cap, until an insert
    /// succeeds or a sweep frees rows: the node then answers a client's
    /// `store` with `507` (`storage-rpc.md` §9.1).
    pub fn appears_full(&self) -> bool {
        self.inner.shared.full.load(Ordering::Relaxed)
    }

    /// Queues a write and awaits its committed result.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &WriterCtx) -> Result<T, StoreError> + Send + 'static,
    {
        let tx = self.inner.write_tx.as_ref().ok_or(StoreError::Closed)?;
        let (reply, rx) = oneshot::channel();
        tx.send(writer::job(f, reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Queues a read and awaits its result.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let tx = self.inner.read_tx.as_ref().ok_or(StoreError::Closed)?;
        let (reply, rx) = oneshot::channel();
        let job: ReadJob = Box::new(move |conn| {
            // The caller may have gone away.
            let _ = reply.send(f(conn));
        });
        tx.send(job).await.map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Stores a message idempotently (client `store` without public-outbox
    /// replacement): returns true when it was new. A replay only raises the
    /// expiry to the later of the two.
    pub async fn insert(&self, msg: StoredMessage, now_ms: u64) -> Result<bool, StoreError> {
        Ok(self.store(msg, StoreOptions::default(), now_ms).await?.new)
    }

    /// Client `store` (`storage-rpc.md` §9.1): see [`ops::store`]. Fails with
    /// [`StoreError::Full`] when the insert would pass the size cap; nothing
    /// of this operation is then written.
    pub async fn store(
        &self,
        msg: StoredMessage,
        opts: StoreOptions,
        now_ms: u64,
    ) -> Result<StoreOutcome, StoreError> {
        self.write(move |conn, ctx| {
            let res = ops::store(conn, &msg, &opts, ctx.cap, now_ms);
            note_fullness(ctx, &res);
            res
        })
        .await
    }

    /// Hand-over / catch-up insert (`swarms.md` §7.3): see [`ops::apply_push`].
    /// All or nothing: on [`StoreError::Full`] none of `items` is stored.
    pub async fn apply_push(
        &self,
        items: Vec<StoredMessage>,
        now_ms: u64,
    ) -> Result<usize, StoreError> {
        self.write(move |conn, ctx| {
            let res = ops::apply_push(conn, &items, ctx.cap, now_ms);
            note_fullness(ctx, &res);
            res
        })
        .await
    }

    /// Applies tombstones from a peer whose proofs the caller verified
    /// (`swarms.md` §6): see [`ops::apply_tombstones`].
    pub async fn apply_tombstones(
        &self,
        tombstones: Vec<ProvenTombstone>,
        now_ms: u64,
    ) -> Result<TombstoneOutcome, StoreError> {
        self.write(move |conn, _| ops::apply_tombstones(conn, &tombstones, now_ms))
            .await
    }

    /// `retrieve` (`storage-rpc.md` §9.2): never returns expired rows.
    pub async fn retrieve(
        &self,
        owner: &AccountId,
        namespace: i16,
        after_hash: Option<&str>,
        limits: RetrieveLimits,
        now_ms: u64,
    ) -> Result<Retrieved, StoreError> {
        let owner = *owner;
        let after = after_hash.map(str::to_owned);
        self.read(move |conn| {
            ops::retrieve(conn, &owner, namespace, after.as_deref(), limits, now_ms)
        })
        .await
    }

    /// `delete` (`storage-rpc.md` §9.3): returns the deleted hashes, sorted.
    /// `proof` (the signed request) is kept with the tombstones.
    pub async fn delete_hashes(
        &self,
        owner: &AccountId,
        hashes: Vec<String>,
        now_ms: u64,
        proof: Option<Proof>,
    ) -> Result<Vec<String>, StoreError> {
        let owner = *owner;
        self.write(move |conn, _| {
            ops::delete_hashes(conn, &owner, &hashes, now_ms, proof.as_deref())
        })
        .await
    }

    /// Drops a local copy after a hand-over, without tombstones (`swarms.md`
    /// §10). Returns how many rows were removed.
    pub async fn forget(
        &self,
        owner: &AccountId,
        hashes: Vec<String>,
    ) -> Result<usize, StoreError> {
        let owner = *owner;
        self.write(move |conn, _| ops::forget(conn, &owner, &hashes))
            .await
    }

    /// `delete_all` (`storage-rpc.md` §9.4); `proof` is kept with the
    /// tombstones.
    pub async fn delete_all(
        &self,
        owner: &AccountId,
        ns: Namespaces,
        now_ms: u64,
        proof: Option<Proof>,
    ) -> Result<NsHashes, StoreError> {
        let owner = *owner;
        self.write(move |conn, _| ops::delete_all(conn, &owner, ns, now_ms, proof.as_deref()))
            .await
    }

    /// `delete_before` (`storage-rpc.md` §9.5): messages with
    /// `timestamp ≤ before_ms`; `proof` is kept with the tombstones.
    pub async fn delete_before(
        &self,
        owner: &AccountId,
        ns: Namespaces,
        before_ms: u64,
        now_ms: u64,
        proof: Option<Proof>,
    ) -> Result<NsHashes, StoreError> {
        let owner = *owner;
        self.write(move |conn, _| {
            ops::delete_before(conn, &owner, ns, before_ms, now_ms, proof.as_deref())
        })
        .await
    }

    /// `expire` (`storage-rpc.md` §9.6) with one expiry for every hash.
    pub async fn expire(
        &self,
        owner: &AccountId,
        hashes: Vec<String>,
        new_expiry_ms: u64,
        mode: ExpireMode,
        now_ms: u64,
        proof: Option<Proof>,
    ) -> Result<ExpireOutcome, StoreError> {
        let updates = hashes.into_iter().map(|h| (h, new_expiry_ms)).collect();
        self.expire_each(owner, updates, mode, now_ms, proof).await
    }

    /// `expire` (`storage-rpc.md` §9.6) with one expiry per hash; `proof`
    /// is kept with the tombstones of shortened expiries.
    pub async fn expire_each(
        &self,
        owner: &AccountId,
        updates: Vec<(String, u64)>,
        mode: ExpireMode,
        now_ms: u64,
        proof: Option<Proof>,
    ) -> Result<ExpireOutcome, StoreError> {
        let owner = *owner;
        self.write(move |conn, _| {
            ops::expire(conn, &owner, &updates, mode, now_ms, proof.as_deref())
        })
        .await
    }

    /// `expire_all` (`storage-rpc.md` §9.7): only shortens; `proof` is kept
    /// with the tombstones.
    pub async fn expire_all(
        &self,
        owner: &AccountId,
        ns: Namespaces,
        expiry_ms: u64,
        now_ms: u64,
        proof: Option<Proof>,
    ) -> Result<NsHashes, StoreError> {
        let owner = *owner;
        self.write(move |conn, _| {
            ops::expire_all(conn, &owner, ns, expiry_ms, now_ms, proof.as_deref())
        })
        .await
    }

    /// `get_expiries` (`storage-rpc.md` §9.8): only existing hashes are listed.
    pub async fn get_expiries(
        &self,
        owner: &AccountId,
        hashes: Vec<String>,
        now_ms: u64,
    ) -> Result<BTreeMap<String, u64>, StoreError> {
        let owner = *owner;
        self.read(move |conn| ops::get_expiries(conn, &owner, &hashes, now_ms))
            .await
    }

    /// `revoke_subaccount` (`storage-rpc.md` §9.9): returns how many tokens
    /// changed state; keeps at most 256 per account, oldest dropped.
    pub async fn revoke_subaccounts(
        &self,
        owner: &AccountId,
        tokens: Vec<SubaccountToken>,
        now_ms: u64,
    ) -> Result<usize, StoreError> {
        let owner = *owner;
        self.write(move |conn, _| ops::revoke_subaccounts(conn, &owner, &tokens, now_ms))
            .await
    }

    /// `unrevoke_subaccount` (`storage-rpc.md` §9.9): returns how many tokens
    /// changed state.
    pub async fn unrevoke_subaccounts(
        &self,
        owner: &AccountId,
        tokens: Vec<SubaccountToken>,
    ) -> Result<usize, StoreError> {
        let owner = *owner;
        self.write(move |conn, _| ops::unrevoke_subaccounts(conn, &owner, &tokens))
            .await
    }

    /// Whether `token` is revoked for `owner` (`storage-rpc.md` §2.3 check 3).
    pub async fn is_revoked(
        &self,
        owner: &AccountId,
        token: SubaccountToken,
    ) -> Result<bool, StoreError> {
        let owner = *owner;
        self.read(move |conn| ops::is_revoked(conn, &owner, &token))
            .await
    }

    /// Expiry sweep (`swarms.md` §9): deletes expired messages and old
    /// tombstones, then truncates the WAL so deleted bytes leave the files.
    /// Returns how many messages were deleted.
    pub async fn sweep_expired(&self, now_ms: u64) -> Result<usize, StoreError> {
        self.write(move |conn, ctx| {
            let n = ops::sweep_expired(conn, now_ms)?;
            if n > 0 {
                ctx.checkpoint.set(true);
                ctx.shared.full.store(false, Ordering::Relaxed);
            }
            Ok(n)
        })
        .await
    }

    /// Forces `wal_checkpoint(TRUNCATE)` after the next commit.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        self.write(|_, ctx| {
            ctx.checkpoint.set(true);
            Ok(())
        })
        .await
    }

    /// Accounts with at least one unexpired message (hand-over iteration).
    pub async fn owners(&self, now_ms: u64) -> Result<Vec<AccountId>, StoreError> {
        self.read(move |conn| ops::owners(conn, now_ms)).await
    }

    /// Every unexpired message of `owner`, in insertion order (hand-over).
    pub async fn messages_for_push(
        &self,
        owner: &AccountId,
        now_ms: u64,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let owner = *owner;
        self.read(move |conn| ops::messages_for_push(conn, &owner, now_ms))
            .await
    }

    /// `(hash, expiry)` of every unexpired message of `owner`, sorted by hash,
    /// for a peer to diff against.
    pub async fn hash_expiries(
        &self,
        owner: &AccountId,
        now_ms: u64,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let owner = *owner;
        self.read(move |conn| ops::hash_expiries(conn, &owner, now_ms))
            .await
    }

    /// Catch-up page (`swarms.md` §6): messages with sequence number
    /// `≥ from_seq` and the tombstones of that range, at most
    /// `max_messages` and about `max_bytes` (see [`ops::since`]).
    pub async fn since(
        &self,
        from_seq: u64,
        max_messages: usize,
        max_bytes: usize,
        now_ms: u64,
    ) -> Result<SinceBatch, StoreError> {
        self.read(move |conn| ops::since(conn, from_seq, max_messages, max_bytes, now_ms))
            .await
    }

    /// The highest insertion sequence number assigned so far.
    pub async fn max_seq(&self) -> Result<u64, StoreError> {
        self.read(ops::max_seq).await
    }

    /// Sets `peer`'s catch-up mark unless one is set; true if set now.
    pub async fn set_catchup_mark(&self, peer: PeerKey, seq: u64) -> Result<bool, StoreError> {
        self.write(move |conn, _| ops::set_catchup_mark(conn, &peer, seq))
            .await
    }

    /// Moves `peer`'s catch-up mark up to `seq` (never down, never creating
    /// one); true if it moved.
    pub async fn advance_catchup_mark(&self, peer: PeerKey, seq: u64) -> Result<bool, StoreError> {
        self.write(move |conn, _| ops::advance_catchup_mark(conn, &peer, seq))
            .await
    }

    /// Clears `peer`'s catch-up mark; true if one was set.
    pub async fn clear_catchup_mark(&self, peer: PeerKey) -> Result<bool, StoreError> {
        self.write(move |conn, _| ops::clear_catchup_mark(conn, &peer))
            .await
    }

    /// Every catch-up mark.
    pub async fn catchup_marks(&self) -> Result<Vec<(PeerKey, u64)>, StoreError> {
        self.read(ops::catchup_marks).await
    }

    /// Number of stored message rows (expired-but-unswept included).
    pub async fn count(&self) -> Result<u64, StoreError> {
        self.read(ops::count).await
    }

    /// Bytes of database pages in use (what the size cap measures).
    pub async fn db_size_bytes(&self) -> Result<u64, StoreError> {
        self.read(ops::used_bytes).await
    }
}

/// Keeps [`Shared::full`] in step with the last insert's outcome.
fn note_fullness<T>(ctx: &WriterCtx, res: &Result<T, StoreError>) {
    match res {
        Ok(_) => ctx.shared.full.store(false, Ordering::Relaxed),
        Err(StoreError::Full { cap }) => {
            tracing::warn!(cap, "store refused: database size cap reached");
            ctx.shared.full.store(true, Ordering::Relaxed);
        }
        Err(_) => {}
    }
}

/// A reader thread: takes jobs from the shared queue until it closes.
fn reader_loop(conn: Connection, rx: &Mutex<mpsc::Receiver<ReadJob>>) {
    loop {
        let job = match rx.lock() {
            Ok(mut guard) => guard.blocking_recv(),
            Err(_) => None,
        };
        match job {
            Some(job) => job(&conn),
            None => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{StoreConfig, Synchronous, Tombstone};

    const NOW: u64 = 1_700_000_000_000;
    const DAY: u64 = 86_400_000;

    fn acct(b: u8) -> AccountId {
        let mut raw = [b; 33];
        raw[0] = 0x05;
        AccountId::from_bytes(&raw).expect("account id")
    }

    fn h(i: u32) -> String {
        format!("{i:0>43}")
    }

    fn msg(owner: &AccountId, ns: i16, i: u32, expiry: u64) -> StoredMessage {
        StoredMessage {
            hash: h(i),
            owner: *owner,
            namespace: ns,
            timestamp_ms: NOW + u64::from(i),
            expiry_ms: expiry,
            data: format!("message {i}").into_bytes(),
        }
    }

    fn open(dir: &tempfile::TempDir) -> Store {
        Store::open(dir.path().join("node.sqlite"), StoreConfig::default()).expect("open store")
    }

    fn hashes(r: &Retrieved) -> Vec<String> {
        r.messages.iter().map(|m| m.hash.clone()).collect()
    }

    const ALL: RetrieveLimits = RetrieveLimits {
        max_count: None,
        max_size: None,
    };

    #[tokio::test]
    async fn insert_is_idempotent_and_only_raises_expiry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = open(&dir);
        let a = acct(1);
        assert!(
            s.insert(msg(&a, 0, 1, NOW + DAY), NOW)
                .await
                .expect("insert")
        );
        assert!(
            !s.insert(msg(&a, 0, 1, NOW + DAY), NOW)
                .await
                .expect("replay")
        );
        assert_eq!(s.count().await.expect("count"), 1);
        // A replay with a later expiry raises it; an earlier one does not.
        let out = s
            .store(msg(&a, 0, 1, NOW + 2 * DAY), StoreOptions::default(), NOW)
            .await
            .expect("replay later");
        assert_eq!(
            out,
            StoreOutcome {
                new: false,
                expiry_ms: NOW + 2 * DAY,
                seq: None,
            }
        );
        let out = s
            .store(msg(&a, 0, 1, NOW + DAY), StoreOptions::default(), NOW)
            .await
            .expect("replay earlier");
        assert_eq!(out.expiry_ms, NOW + 2 * DAY);
        let exp = s
            .get_expiries(&a, vec![h(1), h(2)], NOW)
            .await
            .expect("expiries");
        assert_eq!(exp.len(), 1);
        assert_eq!(exp.get(&h(1)), Some(&(NOW + 2 * DAY)));
        // A bad hash is refused before anything is written.
        let mut bad = msg(&a, 0, 3, NOW + DAY);
        bad.hash = "short".into();
        assert!(matches!(s.insert(bad, NOW).await, Err(StoreError::BadHash)));
        assert_eq!(s.count().await.expect("count"), 1);
    }

    #[tokio::test]
    async fn retrieve_order_cursor_limits_and_expiry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = open(&dir);
        let (a, b) = (acct(1), acct(2));
        // Insert in an order unrelated to hash order.
        for i in [5u32, 3, 9, 1, 7] {
            s.insert(msg(&a, 0, i, NOW + DAY), NOW)
                .await
                .expect("insert");
        }
        s.insert(msg(&a, 0, 8, NOW + 1000), NOW)
            .await
            .expect("short-lived");
        s.insert(msg(&a, 2, 20, NOW + DAY), NOW)
            .await
            .expect("other ns");
        s.insert(msg(&b, 0, 30, NOW + DAY), NOW)
            .await
            .expect("other owner");

        let r = s.retrieve(&a, 0, None, ALL, NOW).await.expect("retrieve");
        assert_eq!(hashes(&r), [h(5), h(3), h(9), h(1), h(7), h(8)]);
        assert!(!r.more);
        assert_eq!(r.messages[0].data, b"message 5");
        assert_eq!(r.messages[0].timestamp_ms, NOW + 5);
        // Expired rows are hidden before any sweep.
        let r = s
            .retrieve(&a, 0, None, ALL, NOW + 1000)
            .await
            .expect("retrieve");
        assert_eq!(hashes(&r), [h(5), h(3), h(9), h(1), h(7)]);
        assert_eq!(s.count().await.expect("count"), 8, "not swept yet");
        // Cursor.
        let r = s
            .retrieve(&a, 0, Some(&h(9)), ALL, NOW)
            .await
            .expect("after");
        assert_eq!(hashes(&r), [h(1), h(7), h(8)]);
        // Unknown cursor, or a cursor from another namespace: from the start.
        let r = s
            .retrieve(&a, 0, Some(&h(99)), ALL, NOW)
            .await
            .expect("unknown");
        assert_eq!(r.messages.len(), 6);
        let r = s
            .retrieve(&a, 0, Some(&h(20)), ALL, NOW)
            .await
            .expect("other ns");
        assert_eq!(r.messages.len(), 6);
        assert_eq!(
            hashes(&s.retrieve(&a, 0, Some(""), ALL, NOW).await.expect("empty")).len(),
            6
        );
        // max_count.
        let lim = RetrieveLimits {
            max_count: Some(2),
            max_size: None,
        };
        let r = s.retrieve(&a, 0, None, lim, NOW).await.expect("count");
        assert_eq!(hashes(&r), [h(5), h(3)]);
        assert!(r.more);
        let r = s
            .retrieve(&a, 0, Some(&h(7)), lim, NOW)
            .await
            .expect("last page");
        assert_eq!(hashes(&r), [h(8)]);
        assert!(!r.more);
        // max_size: each message here counts 100 + 43 + ⌊4·9/3⌋ = 155.
        let lim = RetrieveLimits {
            max_count: None,
            max_size: Some(310),
        };
        let r = s.retrieve(&a, 0, None, lim, NOW).await.expect("size");
        assert_eq!(r.messages.len(), 2);
        assert!(r.more);
        // The first message is returned even when it alone is over budget.
        let lim = RetrieveLimits {
            max_count: None,
            max_size: Some(1),
        };
        let r = s.retrieve(&a, 0, None, lim, NOW).await.expect("tiny");
        assert_eq!(hashes(&r), [h(5)]);
        assert!(r.more);
        // Namespaces and owners are separate lists.
        assert_eq!(
            hashes(&s.retrieve(&a, 2, None, ALL, NOW).await.expect("ns2")),
            [h(20)]
        );
        assert_eq!(
            hashes(&s.retrieve(&b, 0, None, ALL, NOW).await.expect("b")),
            [h(30)]
        );
        assert!(
            s.retrieve(&acct(3), 0, None, ALL, NOW)
                .await
                .expect("none")
                .messages
                .is_empty()
        );
    }

    #[tokio::test]
    async fn delete_methods() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = open(&dir);
        let (a, b) = (acct(1), acct(2));
        for i in 1..=4 {
            s.insert(msg(&a, 0, i, NOW + DAY), NOW)
                .await
                .expect("insert");
        }
        for i in 5..=6 {
            s.insert(msg(&a, 3, i, NOW + DAY), NOW)
                .await
                .expect("insert");
        }
        s.insert(msg(&b, 0, 7, NOW + DAY), NOW)
            .await
            .expect("insert");
        // delete: only the owner's hashes; sorted; unknown ignored.
        let d = s
            .delete_hashes(&a, vec![h(3), h(1), h(7), h(99)], NOW, None)
            .await
            .expect("delete");
        assert_eq!(d, [h(1), h(3)]);
        assert_eq!(s.count().await.expect("count"), 5);
        // delete_before: timestamp ≤ before (timestamps are NOW + i).
        let d = s
            .delete_before(&a, Namespaces::All, NOW + 5, NOW, None)
            .await
            .expect("before");
        assert_eq!(d, BTreeMap::from([(0, vec![h(2), h(4)]), (3, vec![h(5)])]));
        // delete_all of one namespace, then of all.
        s.insert(msg(&a, 0, 8, NOW + DAY), NOW)
            .await
            .expect("insert");
        let d = s
            .delete_all(&a, Namespaces::One(3), NOW, None)
            .await
            .expect("all ns3");
        assert_eq!(d, BTreeMap::from([(3, vec![h(6)])]));
        let d = s
            .delete_all(&a, Namespaces::All, NOW, None)
            .await
            .expect("all");
        assert_eq!(d, BTreeMap::from([(0, vec![h(8)])]));
        // Other owners are untouched.
        assert_eq!(s.count().await.expect("count"), 1);
        assert!(
            s.delete_all(&acct(9), Namespaces::All, NOW, None)
                .await
                .expect("none")
                .is_empty()
        );
    }

    #[tokio::test]
    async fn expire_modes_and_expire_all() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = open(&dir);
        let a = acct(1);
        for i in 1..=3 {
            s.insert(msg(&a, 0, i, NOW + u64::from(i) * DAY), NOW)
                .await
                .expect("insert");
        }
        s.insert(msg(&acct(2), 0, 9, NOW + DAY), NOW)
            .await
            .expect("other");
        let all = vec![h(1), h(2), h(3), h(9), h(99)];
        // extend to 2 days: only h1 (1 day) changes.
        let out = s
            .expire(
                &a,
                all.clone(),
                NOW + 2 * DAY,
                ExpireMode::Extend,
                NOW,
                None,
            )
            .await
            .expect("extend");
        assert_eq!(out.updated, BTreeMap::from([(h(1), NOW + 2 * DAY)]));
        assert_eq!(
            out.unchanged,
            BTreeMap::from([(h(2), NOW + 2 * DAY), (h(3), NOW + 3 * DAY)])
        );
        // shorten to 2.5 days: only h3.
        let t = NOW + 5 * DAY / 2;
        let out = s
            .expire(&a, all.clone(), t, ExpireMode::Shorten, NOW, None)
            .await
            .expect("shorten");
        assert_eq!(out.updated.keys().collect::<Vec<_>>(), [&h(3)]);
        assert_eq!(out.unchanged.len(), 2);
        // neither: always.
        let out = s
            .expire(&a, vec![h(1), h(2)], NOW + DAY, ExpireMode::Any, NOW, None)
            .await
            .expect("either");
        assert_eq!(out.updated.len(), 2);
        assert!(out.unchanged.is_empty());
        // per-hash expiries.
        let out = s
            .expire_each(
                &a,
                vec![(h(1), NOW + 3 * DAY), (h(2), NOW + DAY / 2)],
                ExpireMode::Any,
                NOW,
                None,
            )
            .await
            .expect("each");
        assert_eq!(
            out.updated,
            BTreeMap::from([(h(1), NOW + 3 * DAY), (h(2), NOW + DAY / 2)])
        );
        // The other owner's message was never touched.
        let e = s
            .get_expiries(&acct(2), vec![h(9)], NOW)
            .await
            .expect("get");
        assert_eq!(e.get(&h(9)), Some(&(NOW + DAY)));
        // expire_all only shortens: h1 (3 d) and h3 (2.5 d) to 1 d; h2 (0.5 d) stays.
        let up = s
            .expire_all(&a, Namespaces::All, NOW + DAY, NOW, None)
            .await
            .expect("expire_all");
        assert_eq!(up, BTreeMap::from([(0, vec![h(1), h(3)])]));
        let e = s
            .get_expiries(&a, vec![h(1), h(2), h(3)], NOW)
            .await
            .expect("get");
        assert_eq!(
            e,
            BTreeMap::from([(h(1), NOW + DAY), (h(2), NOW + DAY / 2), (h(3), NOW + DAY)])
        );
        // Expired rows are not resurrected by expire and are not listed.
        let later = NOW + DAY;
        let out = s
            .expire(&a, vec![h(2)], NOW + 9 * DAY, ExpireMode::Any, later, None)
            .await
            .expect("expired");
        assert!(out.updated.is_empty() && out.unchanged.is_empty());
        assert!(
            s.get_expiries(&a, vec![h(2)], later)
                .await
                .expect("get")
                .is_empty()
        );
    }

    #[tokio::test]
    async fn revocations_are_capped_oldest_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = open(&dir);
        let g = acct(3);
        let tok = |i: u16| {
            let mut t = [0u8; 36];
            t[0] = 0x03;
            t[4..6].copy_from_slice(&i.to_be_bytes());
            t
        };
        assert!(!s.is_revoked(&g, tok(0)).await.expect("check"));
        assert_eq!(
            s.revoke_subaccounts(&g, vec![tok(0), tok(1)], NOW)
                .await
                .expect("revoke"),
            2
        );
        assert_eq!(
            s.revoke_subaccounts(&g, vec![tok(1)], NOW + 1)
                .await
                .expect("again"),
            0
        );
        assert!(s.is_revoked(&g, tok(1)).await.expect("check"));
        assert!(!s.is_revoked(&acct(4), tok(1)).await.expect("other account"));
        assert_eq!(
            s.unrevoke_subaccounts(&g, vec![tok(1), tok(2)])
                .await
                .expect("unrevoke"),
            1
        );
        assert!(!s.is_revoked(&g, tok(1)).await.expect("check"));
        // 300 more revocations (the same timestamp for a batch): the oldest go.
        for chunk in 0..6u16 {
            let toks: Vec<_> = (0..50).map(|i| tok(1000 + chunk * 50 + i)).collect();
            s.revoke_subaccounts(&g, toks, NOW + 10 + u64::from(chunk))
                .await
                .expect("revoke");
        }
        assert!(!s.is_revoked(&g, tok(0)).await.expect("oldest dropped"));
        assert!(!s.is_revoked(&g, tok(1043)).await.expect("dropped"));
        assert!(s.is_revoked(&g, tok(1044)).await.expect("kept"));
        assert!(s.is_revoked(&g, tok(1299)).await.expect("newest kept"));
    }

    #[tokio::test]
    async fn public_outbox_replaces_namespace() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = open(&dir);
        let a = acct(1);
        let outbox = StoreOptions {
            replace_namespace: true,
            proof: None,
        };
        s.insert(msg(&a, -1, 1, NOW + DAY), NOW)
            .await
            .expect("insert");
        s.insert(msg(&a, 0, 2, NOW + DAY), NOW)
            .await
            .expect("insert");
        let out = s
            .store(msg(&a, -1, 3, NOW + DAY), outbox, NOW)
            .await
            .expect("outbox");
        assert!(out.new);
        assert_eq!(
            hashes(&s.retrieve(&a, -1, None, ALL, NOW).await.expect("r")),
            [h(3)]
        );
        assert_eq!(
            hashes(&s.retrieve(&a, 0, None, ALL, NOW).await.expect("r")),
            [h(2)]
        );
    }

    #[tokio::test]
    async fn push_catch_up_and_tombstones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = open(&dir);
        let a = acct(1);
        s.insert(msg(&a, 0, 1, NOW + DAY), NOW)
            .await
            .expect("insert");
        let seq_after_first = s.max_seq().await.expect("seq");
        // A push never changes an existing row, skips expired items.
        let items = vec![
            msg(&a, 0, 1, NOW + 5 * DAY),
            msg(&a, 0, 2, NOW + DAY),
            msg(&a, 0, 3, NOW - 1),
        ];
        assert_eq!(s.apply_push(items.clone(), NOW).await.expect("push"), 1);
        assert_eq!(s.apply_push(items, NOW).await.expect("replay"), 0);
        let e = s.get_expiries(&a, vec![h(1)], NOW).await.expect("get");
        assert_eq!(e.get(&h(1)), Some(&(NOW + DAY)));
        // A client delete keeps a tombstone, with the request as its proof:
        // a later push cannot bring it back.
        let delete_proof: Proof = Arc::from(&b"signed delete"[..]);
        s.delete_hashes(&a, vec![h(2)], NOW, Some(delete_proof.clone()))
            .await
            .expect("delete");
        assert_eq!(
            s.apply_push(vec![msg(&a, 0, 2, NOW + DAY)], NOW)
                .await
                .expect("push"),
            0
        );
        // A shortened expiry caps the pushed copy.
        let expire_proof: Proof = Arc::from(&b"signed expire"[..]);
        s.expire(
            &a,
            vec![h(1)],
            NOW + 1000,
            ExpireMode::Shorten,
            NOW,
            Some(expire_proof.clone()),
        )
        .await
        .expect("shorten");
        s.forget(&a, vec![h(1)]).await.expect("forget");
        assert_eq!(
            s.apply_push(vec![msg(&a, 0, 1, NOW + DAY)], NOW)
                .await
                .expect("push"),
            1
        );
        assert_eq!(
            s.get_expiries(&a, vec![h(1)], NOW)
                .await
                .expect("get")
                .get(&h(1)),
            Some(&(NOW + 1000))
        );
        // Catch-up page from the first sequence number holds the messages and
        // the tombstones made since.
        let page = s
            .since(seq_after_first, 100, usize::MAX, NOW)
            .await
            .expect("since");
        assert_eq!(page.next_seq, None);
        assert_eq!(page.messages.len(), 1);
        let tomb: BTreeMap<_, _> = page
            .tombstones
            .iter()
            .map(|t| (t.hash.clone(), (t.new_expiry_ms, t.proof.clone())))
            .collect();
        assert_eq!(
            tomb,
            BTreeMap::from([
                (h(1), (Some(NOW + 1000), Some(expire_proof.clone()))),
                (h(2), (None, Some(delete_proof.clone())))
            ])
        );
        // A peer applying those tombstones (their proofs checked by the
        // caller) deletes / shortens its copies and keeps them, proofs
        // included, to pass on.
        let dir2 = tempfile::tempdir().expect("tempdir");
        let peer = open(&dir2);
        for i in [1, 2, 4, 5] {
            peer.insert(msg(&a, 0, i, NOW + DAY), NOW)
                .await
                .expect("insert");
        }
        let proven = |t: &Tombstone, max: Option<u64>| ProvenTombstone {
            tombstone: t.clone(),
            max_message_timestamp: max,
        };
        let applied: Vec<ProvenTombstone> =
            page.tombstones.iter().map(|t| proven(t, None)).collect();
        assert_eq!(
            peer.apply_tombstones(applied, NOW).await.expect("apply"),
            TombstoneOutcome {
                changed: 2,
                not_covered: 0
            }
        );
        let e = peer
            .get_expiries(&a, vec![h(1), h(2)], NOW)
            .await
            .expect("get");
        assert_eq!(e, BTreeMap::from([(h(1), NOW + 1000)]));
        let kept = peer
            .since(0, 100, usize::MAX, NOW)
            .await
            .expect("since")
            .tombstones;
        assert_eq!(kept.len(), 2);
        assert!(kept.iter().all(|t| t.proof.is_some()));
        // A copy outside what the proof covers stays, and no tombstone is
        // kept for it: a later timestamp (messages are timestamped NOW + i),
        // another namespace.
        let cover_only = |i: u32, ns: i16, max: u64| ProvenTombstone {
            tombstone: Tombstone {
                hash: h(i),
                owner: a,
                namespace: ns,
                new_expiry_ms: None,
                keep_until_ms: NOW + DAY,
                proof: Some(delete_proof.clone()),
            },
            max_message_timestamp: Some(max),
        };
        let out = peer
            .apply_tombstones(
                vec![cover_only(4, 0, NOW + 3), cover_only(5, 7, NOW + 9)],
                NOW,
            )
            .await
            .expect("apply");
        assert_eq!(
            out,
            TombstoneOutcome {
                changed: 0,
                not_covered: 2
            }
        );
        let e = peer
            .get_expiries(&a, vec![h(4), h(5)], NOW)
            .await
            .expect("get");
        assert_eq!(e.len(), 2, "both copies stay");
        assert_eq!(
            peer.since(0, 100, usize::MAX, NOW)
                .await
                .expect("since")
                .tombstones
                .len(),
            2
        );
        // Covered (timestamp NOW + 4 ≤ NOW + 4): deleted. A keep_until far in
        // the future is capped.
        let mut far = cover_only(4, 0, NOW + 4);
        far.tombstone.keep_until_ms = u64::MAX;
        assert_eq!(
            peer.apply_tombstones(vec![far], NOW)
                .await
                .expect("apply")
                .changed,
            1
        );
        let capped = peer
            .since(0, 100, usize::MAX, NOW)
            .await
            .expect("since")
            .tombstones;
        let t4 = capped.iter().find(|t| t.hash == h(4)).expect("kept");
        assert_eq!(t4.keep_until_ms, NOW + ops::MAX_TOMBSTONE_KEEP_MS);
        // Paging.
        for i in 10..15 {
            s.insert(msg(&a, 0, i, NOW + DAY), NOW)
                .await
                .expect("insert");
        }
        let p1 = s.since(0, 3, usize::MAX, NOW).await.expect("page 1");
        assert_eq!(p1.messages.len(), 3);
        let next = p1.next_seq.expect("more pages");
        let p2 = s.since(next, 100, usize::MAX, NOW).await.expect("page 2");
        assert_eq!(p1.messages.len() + p2.messages.len(), 6);
        assert!(p2.messages.iter().all(|m| m.seq >= next));
        // Hand-over iteration and diffs.
        assert_eq!(s.owners(NOW).await.expect("owners"), [a]);
        let push = s.messages_for_push(&a, NOW).await.expect("push list");
        assert_eq!(push.len(), 6);
        let diff = s.hash_expiries(&a, NOW).await.expect("diff");
        assert_eq!(diff.len(), 6);
        assert!(diff.windows(2).all(|w| w[0].0 < w[1].0));
    }

    /// Catch-up pages stop at the byte budget too (large messages would
    /// otherwise make a 2000-message page larger than any reply a node
    /// accepts), always make progress, and cover every message and
    /// tombstone exactly once over the pages; a tombstone page cut moves the
    /// messages after it to the next page.
    #[tokio::test]
    async fn since_pages_are_bounded_in_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = open(&dir);
        let a = acct(1);
        let big = |i: u32| StoredMessage {
            data: vec![i as u8; 10_000],
            ..msg(&a, 0, i, NOW + DAY)
        };
        for i in 0..20 {
            s.insert(big(i), NOW).await.expect("insert");
        }
        // Deletions of 5 messages (one proof each), each after a store, then
        // 5 more messages.
        for i in 0..5 {
            s.insert(big(100 + i), NOW).await.expect("insert");
            let proof: Proof = Arc::from(vec![b'p'; 20_000 + i as usize].as_slice());
            s.delete_hashes(&a, vec![h(i)], NOW, Some(proof))
                .await
                .expect("delete");
        }
        for i in 20..25 {
            s.insert(big(i), NOW).await.expect("insert");
        }
        const BUDGET: usize = 35_000;
        let (mut from, mut pages) = (0u64, 0);
        let (mut seen_msgs, mut seen_tombs) = (Vec::new(), Vec::new());
        loop {
            let page = s.since(from, 2000, BUDGET, NOW).await.expect("since");
            pages += 1;
            assert!(
                !page.messages.is_empty() || !page.tombstones.is_empty(),
                "a page makes progress"
            );
            let bytes: usize = page
                .messages
                .iter()
                .map(|m| m.message.data.len())
                .sum::<usize>()
                + page
                    .tombstones
                    .iter()
                    .map(|t| t.proof.as_ref().map_or(0, |p| p.len()))
                    .sum::<usize>();
            // Beyond the budget at most the entry that crossed it (a
            // message, or a tombstone and its proof).
            assert!(bytes <= BUDGET + 20_004, "page {pages}: {bytes} bytes");
            seen_msgs.extend(page.messages.iter().map(|m| m.message.hash.clone()));
            seen_tombs.extend(page.tombstones.iter().map(|t| t.hash.clone()));
            match page.next_seq {
                Some(n) => {
                    assert!(n > from);
                    from = n;
                }
                None => break,
            }
        }
        assert!(pages >= 5, "{pages} pages");
        let mut want: Vec<String> = (5..25).chain(100..105).map(h).collect();
        want.sort();
        seen_msgs.sort();
        assert_eq!(seen_msgs, want, "every live message once");
        seen_tombs.sort();
        assert_eq!(
            seen_tombs,
            (0..5).map(h).collect::<Vec<_>>(),
            "every tombstone once"
        );
        // Without a budget: one page.
        let all = s.since(0, 2000, usize::MAX, NOW).await.expect("since");
        assert_eq!(
            (all.messages.len(), all.tombstones.len(), all.next_seq),
            (25, 5, None)
        );
    }

    /// Deletions with no store between them, each with its own proof, do
    /// not form one group a page must carry whole: each tombstone has its
    /// own sequence number, pages stay within the budget plus one entry,
    /// and a message stored afterwards sorts after them all.
    #[tokio::test]
    async fn consecutive_deletions_split_across_since_pages() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = open(&dir);
        let a = acct(1);
        for i in 0..40 {
            s.insert(msg(&a, 0, i, NOW + DAY), NOW)
                .await
                .expect("insert");
        }
        let before = s.max_seq().await.expect("seq");
        for i in 0..40 {
            let proof: Proof = Arc::from(vec![b'p'; 10_000 + i as usize].as_slice());
            s.delete_hashes(&a, vec![h(i)], NOW, Some(proof))
                .await
                .expect("delete");
        }
        assert_eq!(s.max_seq().await.expect("seq"), before + 40);
        s.insert(msg(&a, 0, 99, NOW + DAY), NOW)
            .await
            .expect("insert");
        // A page ending in a tombstone says where to continue: past it.
        s.insert(msg(&a, 0, 98, NOW + DAY), NOW)
            .await
            .expect("insert");
        s.delete_hashes(&a, vec![h(98)], NOW, None)
            .await
            .expect("delete");
        const BUDGET: usize = 35_000;
        let (mut from, mut pages, mut tombs) = (0u64, 0, Vec::new());
        let mut later = None;
        loop {
            let page = s.since(from, 2000, BUDGET, NOW).await.expect("since");
            if page.next_seq.is_none() {
                assert_eq!(page.end_seq, Some(before + 44), "past the last tombstone");
            }
            pages += 1;
            let proofs: usize = page
                .tombstones
                .iter()
                .map(|t| t.proof.as_ref().map_or(0, |p| p.len()))
                .sum();
            assert!(proofs <= BUDGET + 10_040, "page {pages}: {proofs} bytes");
            tombs.extend(page.tombstones.iter().map(|t| t.hash.clone()));
            if let Some(m) = page.messages.iter().find(|m| m.message.hash == h(99)) {
                later = Some(m.seq);
            }
            match page.next_seq {
                Some(n) => from = n,
                None => break,
            }
        }
        assert!(
            pages >= 10,
            "40 proofs of 10 kB in pages of 35 kB: {pages} pages"
        );
        tombs.sort();
        let mut want: Vec<String> = (0..40).chain([98]).map(h).collect();
        want.sort();
        assert_eq!(tombs, want, "every tombstone once");
        // The 40 deletions took `before + 1 ..= before + 40`.
        assert_eq!(
            later,
            Some(before + 41),
            "the later message sorts after every tombstone"
        );
    }

    /// A tombstone recorded again unchanged (a repeated request, or one
    /// pushed back by a peer) keeps its sequence number, so it is not sent
    /// again to peers that already have it; a change moves it forward.
    #[tokio::test]
    async fn an_unchanged_tombstone_keeps_its_sequence_number() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = open(&dir);
        let a = acct(1);
        for i in 0..3 {
            s.insert(msg(&a, 0, i, NOW + DAY), NOW)
                .await
                .expect("insert");
        }
        let proof: Proof = Arc::from(b"signed delete".as_slice());
        let end = |s: &Store| {
            let s = s.clone();
            async move {
                s.since(0, 2000, usize::MAX, NOW)
                    .await
                    .expect("since")
                    .end_seq
            }
        };
        s.delete_hashes(&a, vec![h(1)], NOW, Some(proof))
            .await
            .expect("delete");
        let first = end(&s).await;
        // The same tombstone pushed back by a peer.
        let page = s.since(0, 2000, usize::MAX, NOW).await.expect("since");
        let again: Vec<ProvenTombstone> = page
            .tombstones
            .into_iter()
            .map(|tombstone| ProvenTombstone {
                tombstone,
                max_message_timestamp: None,
            })
            .collect();
        assert_eq!(again.len(), 1);
        s.apply_tombstones(again, NOW).await.expect("apply");
        assert_eq!(end(&s).await, first, "unchanged: same number");
        // A shortened expiry of another message is a change: a new number.
        s.expire(&a, vec![h(2)], NOW + 1000, ExpireMode::Shorten, NOW, None)
            .await
            .expect("expire");
        assert!(end(&s).await > first);
    }

    /// A namespace-wide proof covers messages timestamped up to its bound:
    /// a tombstone for a message this node never held keeps the bound, so
    /// it blocks an older pushed copy but not a later message; once this
    /// node's own copy was checked and deleted, no pushed copy comes back.
    #[tokio::test]
    async fn bounded_tombstones_block_only_what_their_proof_covers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = open(&dir);
        let a = acct(1);
        let proof: Proof = Arc::from(&b"signed delete_all"[..]);
        let bounded = |i: u32, max: u64| ProvenTombstone {
            tombstone: Tombstone {
                hash: h(i),
                owner: a,
                namespace: 0,
                new_expiry_ms: None,
                keep_until_ms: NOW + DAY,
                proof: Some(proof.clone()),
            },
            max_message_timestamp: Some(max),
        };
        s.insert(msg(&a, 0, 3, NOW + DAY), NOW)
            .await
            .expect("insert");
        // h1, h2 not held; h3 held (timestamp NOW + 3), covered.
        let out = s
            .apply_tombstones(
                vec![
                    bounded(1, NOW + 1),
                    bounded(2, NOW + 1),
                    bounded(3, NOW + 3),
                ],
                NOW,
            )
            .await
            .expect("apply");
        assert_eq!(out.changed, 1);
        let at = |i: u32, ts: u64| StoredMessage {
            timestamp_ms: ts,
            ..msg(&a, 0, i, NOW + DAY)
        };
        // h1 at its true, covered time: blocked. h2 timestamped after the
        // bound: not covered, stored. h3 was checked and deleted here: a
        // pushed copy claiming a later time stays deleted.
        let stored = s
            .apply_push(vec![at(1, NOW + 1), at(2, NOW + 2), at(3, NOW + 9)], NOW)
            .await
            .expect("push");
        assert_eq!(stored, 1);
        let e = s
            .get_expiries(&a, vec![h(1), h(2), h(3)], NOW)
            .await
            .expect("get");
        assert_eq!(e.keys().collect::<Vec<_>>(), [&h(2)]);
    }

    fn proof_rows(s: &Store) -> i64 {
        rusqlite::Connection::open(s.path())
            .expect("open")
            .query_row("SELECT count(*) FROM tombstone_proofs", [], |r| r.get(0))
            .expect("count proofs")
    }

    #[tokio::test]
    async fn one_proof_row_per_request_swept_with_its_tombstones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = open(&dir);
        let a = acct(1);
        for i in 1..=5 {
            s.insert(msg(&a, 2, i, NOW + DAY), NOW)
                .await
                .expect("insert");
        }
        // Deleting nothing keeps no proof.
        let none = s
            .delete_all(&a, Namespaces::One(9), NOW, Some(Arc::from(&b"p0"[..])))
            .await
            .expect("delete_all");
        assert!(none.is_empty());
        assert_eq!(proof_rows(&s), 0);
        // Five tombstones, one proof row, shared in the catch-up page.
        let p: Proof = Arc::from(&b"signed delete_all"[..]);
        s.delete_all(&a, Namespaces::All, NOW, Some(p.clone()))
            .await
            .expect("delete_all");
        assert_eq!(proof_rows(&s), 1);
        let page = s.since(0, 100, usize::MAX, NOW).await.expect("since");
        assert_eq!(page.tombstones.len(), 5);
        let first = page.tombstones[0].proof.clone().expect("proof");
        assert_eq!(first, p);
        assert!(
            page.tombstones
                .iter()
                .all(|t| t.proof.as_ref().is_some_and(|q| Arc::ptr_eq(q, &first)))
        );
        // The same request again (a replay) reuses the row.
        s.insert(msg(&a, 2, 6, NOW + DAY), NOW)
            .await
            .expect("insert");
        s.delete_all(&a, Namespaces::All, NOW, Some(p.clone()))
            .await
            .expect("again");
        assert_eq!(proof_rows(&s), 1);
        // A client store of a deleted hash clears its tombstone; the proof
        // stays while other tombstones use it, and goes with the last one.
        s.insert(msg(&a, 2, 1, NOW + DAY), NOW)
            .await
            .expect("store again");
        s.sweep_expired(NOW).await.expect("sweep");
        assert_eq!(proof_rows(&s), 1);
        s.sweep_expired(NOW + 2 * DAY).await.expect("sweep later");
        assert_eq!(proof_rows(&s), 0);
        assert!(
            s.since(0, 100, usize::MAX, NOW + 2 * DAY)
                .await
                .expect("since")
                .tombstones
                .is_empty()
        );
    }

    #[tokio::test]
    async fn catchup_marks_survive_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let peer = [7u8; 32];
        {
            let s = open(&dir);
            assert!(s.set_catchup_mark(peer, 42).await.expect("set"));
            assert!(!s.set_catchup_mark(peer, 50).await.expect("already set"));
        }
        let s = open(&dir);
        assert_eq!(s.catchup_marks().await.expect("marks"), [(peer, 42)]);
        // Catch-up moves it up as pages are acknowledged, never down.
        assert!(s.advance_catchup_mark(peer, 60).await.expect("advance"));
        assert!(!s.advance_catchup_mark(peer, 55).await.expect("not down"));
        assert_eq!(s.catchup_marks().await.expect("marks"), [(peer, 60)]);
        assert!(s.clear_catchup_mark(peer).await.expect("clear"));
        assert!(s.catchup_marks().await.expect("marks").is_empty());
        // Advancing never creates a mark.
        assert!(!s.advance_catchup_mark(peer, 70).await.expect("no mark"));
        assert!(s.catchup_marks().await.expect("marks").is_empty());
    }

    fn file_bytes(dir: &tempfile::TempDir) -> Vec<u8> {
        let mut all = Vec::new();
        for name in ["node.sqlite", "node.sqlite-wal"] {
            if let Ok(b) = std::fs::read(dir.path().join(name)) {
                all.extend(b);
            }
        }
        all
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    #[tokio::test]
    async fn sweep_removes_expired_bytes_from_the_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = open(&dir);
        let a = acct(1);
        let sentinel = b"UMBRA-SENTINEL-7d1c";
        let mut m = msg(&a, 0, 1, NOW + 1000);
        // Large enough to use overflow pages too.
        m.data = sentinel.iter().copied().cycle().take(20_000).collect();
        s.insert(m, NOW).await.expect("insert");
        s.insert(msg(&a, 0, 2, NOW + DAY), NOW)
            .await
            .expect("keeper");
        s.checkpoint().await.expect("checkpoint");
        assert!(contains(&file_bytes(&dir), sentinel), "sentinel written");
        // Hidden as soon as it expires, removed by the sweep.
        assert_eq!(
            s.retrieve(&a, 0, None, ALL, NOW + 1000)
                .await
                .expect("r")
                .messages
                .len(),
            1
        );
        assert_eq!(s.sweep_expired(NOW + 1000).await.expect("sweep"), 1);
        assert_eq!(s.count().await.expect("count"), 1);
        assert!(
            !contains(&file_bytes(&dir), sentinel),
            "sentinel still in the files"
        );
        assert_eq!(s.sweep_expired(NOW + 1000).await.expect("sweep again"), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_inserts_are_group_committed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = open(&dir);
        let before = s.commit_count();
        let tasks: Vec<_> = (0..1000u32)
            .map(|i| {
                let s = s.clone();
                tokio::spawn(async move {
                    let mut m = msg(&acct((i % 7) as u8 + 1), 0, i, NOW + DAY);
                    m.data = vec![(i % 251) as u8; 1024];
                    s.insert(m, NOW).await
                })
            })
            .collect();
        for t in tasks {
            assert!(t.await.expect("join").expect("insert"));
        }
        let commits = s.commit_count() - before;
        assert_eq!(s.count().await.expect("count"), 1000);
        assert!(commits < 250, "1000 inserts took {commits} commits");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn size_cap_refuses_cleanly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = StoreConfig {
            size_cap_bytes: 400 * 1024,
            ..StoreConfig::default()
        };
        let s = Store::open(dir.path().join("node.sqlite"), cfg).expect("open");
        let a = acct(1);
        let big = |i: u32| {
            let mut m = msg(&a, 0, i, NOW + DAY);
            m.data = vec![0xAB; 50_000];
            m
        };
        let mut stored = 0u32;
        let mut i = 0;
        loop {
            i += 1;
            match s.insert(big(i), NOW).await {
                Ok(true) => stored += 1,
                Err(StoreError::Full { cap }) => {
                    assert_eq!(cap, 400 * 1024);
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
            assert!(i < 100, "cap never reached");
        }
        assert!(stored >= 3, "stored only {stored}");
        assert!(s.appears_full());
        assert_eq!(s.count().await.expect("count"), u64::from(stored));
        assert!(s.db_size_bytes().await.expect("size") <= 400 * 1024);
        // In one batch, an over-cap push fails whole while the other operations
        // succeed.
        let g = acct(2);
        let (push, revoke, small) = tokio::join!(
            s.apply_push(vec![msg(&a, 0, 500, NOW + DAY), big(501)], NOW),
            s.revoke_subaccounts(&g, vec![[3u8; 36]], NOW),
            s.delete_hashes(&a, vec![h(1)], NOW, None),
        );
        assert!(matches!(push, Err(StoreError::Full { .. })), "{push:?}");
        assert_eq!(revoke.expect("revoke"), 1);
        assert_eq!(small.expect("delete"), [h(1)]);
        let e = s
            .get_expiries(&a, vec![h(500), h(501)], NOW)
            .await
            .expect("get");
        assert!(e.is_empty(), "nothing of the refused push was written");
        assert_eq!(s.count().await.expect("count"), u64::from(stored) - 1);
        // Freed space is reused.
        assert!(s.insert(big(600), NOW).await.expect("insert after delete"));
        assert!(!s.appears_full());
        let ok: String = rusqlite::Connection::open(s.path())
            .expect("open")
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .expect("integrity");
        assert_eq!(ok, "ok");
    }

    #[tokio::test]
    async fn full_synchronous_mode_works() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = StoreConfig {
            synchronous: Synchronous::Full,
            ..StoreConfig::default()
        };
        let s = Store::open(dir.path().join("node.sqlite"), cfg).expect("open");
        assert!(
            s.insert(msg(&acct(1), 0, 1, NOW + DAY), NOW)
                .await
                .expect("insert")
        );
        drop(s);
        let s = open(&dir);
        assert_eq!(s.count().await.expect("count"), 1);
    }
}
