//! The single writer thread and its group commit (`shared/spec/swarms.md`
//! §11, informative; durability of `store` acknowledgements,
//! `shared/spec/storage-rpc.md` §9.1).
//!
//! The writer owns the only write connection. It waits for one job, then
//! drains every job already queued (up to `max_batch`) into ONE transaction:
//! `BEGIN IMMEDIATE`, one `SAVEPOINT` per job (a failing job is rolled back
//! to its savepoint and leaves nothing behind, the others go on), `COMMIT`.
//! Only after the commit returns does it answer the jobs, so an
//! acknowledgement always means "committed". If the commit fails, every job of
//! the batch is answered with [`StoreError::CommitFailed`].

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::StoreError;

/// Answers a job's caller once the transaction's fate is known: `None` =
/// committed, `Some(reason)` = the commit failed.
pub(crate) type Completion = Box<dyn FnOnce(Option<&str>) + Send>;

/// A write operation queued for the writer thread.
pub(crate) trait WriteJob: Send {
    /// Runs the operation inside the group transaction. Returns whether it
    /// succeeded (else its savepoint is rolled back) and its completion.
    fn run(self: Box<Self>, conn: &Connection, ctx: &WriterCtx) -> (bool, Completion);
    /// Answers the caller without running (the transaction could not start).
    fn abort(self: Box<Self>, reason: &str);
}

/// A boxed [`WriteJob`].
pub(crate) type Job = Box<dyn WriteJob>;

/// State shared between the writer thread and the [`super::Store`] handles.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Transactions committed by the writer.
    pub commits: AtomicU64,
    /// Set when an insert was refused for the size cap; cleared by a
    /// successful insert or a sweep that deleted rows.
    pub full: AtomicBool,
}

/// What a job can see of the writer besides the connection.
pub(crate) struct WriterCtx {
    /// The size cap in bytes.
    pub cap: u64,
    /// Set by a job that wants `wal_checkpoint(TRUNCATE)` after the commit.
    pub checkpoint: Cell<bool>,
    /// The shared counters.
    pub shared: Arc<Shared>,
}

/// Runs the writer loop until every sender is gone.
pub(crate) fn run(
    conn: Connection,
    mut rx: mpsc::Receiver<Job>,
    cap: u64,
    max_batch: usize,
    shared: Arc<Shared>,
) {
    let ctx = WriterCtx {
        cap,
        checkpoint: Cell::new(false),
        shared,
    };
    let max_batch = max_batch.max(1);
    let mut batch: Vec<Job> = Vec::with_capacity(max_batch);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        run_batch(&conn, &ctx, &mut batch);
    }
    tracing::debug!("storage writer stopping");
}

/// Runs one batch in one transaction and answers every job.
fn run_batch(conn: &Connection, ctx: &WriterCtx, batch: &mut Vec<Job>) {
    let n = batch.len();
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let reason = format!("cannot begin transaction: {e}");
        tracing::error!(%reason, jobs = n, "group commit failed");
        for job in batch.drain(..) {
            job.abort(&reason);
        }
        return;
    }
    let mut completions: Vec<Completion> = Vec::with_capacity(n);
    let mut broken: Option<String> = None;
    for job in batch.drain(..) {
        if let Some(reason) = &broken {
            // The transaction is unusable: do not run the rest.
            job.abort(reason);
            continue;
        }
        if let Err(e) = conn.execute_batch("SAVEPOINT op") {
            let reason = format!("cannot open savepoint: {e}");
            job.abort(&reason);
            broken = Some(reason);
            continue;
        }
        let (ok, done) = job.run(conn, ctx);
        completions.push(done);
        if !ok && let Err(e) = conn.execute_batch("ROLLBACK TO op") {
            broken = Some(format!("cannot roll back savepoint: {e}"));
            continue;
        }
        if let Err(e) = conn.execute_batch("RELEASE op") {
            broken = Some(format!("cannot release savepoint: {e}"));
        }
    }
    let outcome = match broken {
        Some(reason) => Err(reason),
        None => conn
            .execute_batch("COMMIT")
            .map_err(|e| format!("commit failed: {e}")),
    };
    match outcome {
        Ok(()) => {
            ctx.shared.commits.fetch_add(1, Ordering::Relaxed);
            if ctx.checkpoint.replace(false) {
                checkpoint_truncate(conn);
            }
            for done in completions {
                done(None);
            }
        }
        Err(reason) => {
            ctx.checkpoint.set(false);
            tracing::error!(%reason, jobs = n, "group commit failed");
            if !conn.is_autocommit() {
                // Best effort; the transaction is abandoned either way.
                let _ = conn.execute_batch("ROLLBACK");
            }
            for done in completions {
                done(Some(&reason));
            }
        }
    }
}

/// `PRAGMA wal_checkpoint(TRUNCATE)`: copies the WAL into the database and
/// truncates the WAL to zero bytes, so page images of deleted rows leave the
/// WAL file. Logged, not fatal, when readers keep it from completing.
pub(crate) fn checkpoint_truncate(conn: &Connection) {
    let res: Result<(i64, i64, i64), rusqlite::Error> =
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        });
    match res {
        Ok((0, _, _)) => {}
        Ok((busy, log, done)) => {
            tracing::warn!(busy, log, done, "WAL checkpoint did not complete")
        }
        Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
    }
}

/// A [`WriteJob`] running `f` and sending its result on `reply`.
struct FnJob<T, F> {
    f: F,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> WriteJob for FnJob<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection, &WriterCtx) -> Result<T, StoreError> + Send + 'static,
{
    fn run(self: Box<Self>, conn: &Connection, ctx: &WriterCtx) -> (bool, Completion) {
        let FnJob { f, reply } = *self;
        let res = f(conn, ctx);
        let ok = res.is_ok();
        let done: Completion = Box::new(move |commit_failure| {
            let out = match commit_failure {
                None => res,
                Some(reason) => Err(StoreError::CommitFailed(reason.to_owned())),
            };
            // The caller may have gone away; the operation is applied anyway.
            let _ = reply.send(out);
        });
        (ok, done)
    }

    fn abort(self: Box<Self>, reason: &str) {
        let _ = self
            .reply
            .send(Err(StoreError::CommitFailed(reason.to_owned())));
    }
}

/// Wraps `f` as a [`Job`] whose result is sent on `reply` after the commit.
pub(crate) fn job<T, F>(f: F, reply: oneshot::Sender<Result<T, StoreError>>) -> Job
where
    T: Send + 'static,
    F: FnOnce(&Connection, &WriterCtx) -> Result<T, StoreError> + Send + 'static,
{
    Box::new(FnJob { f, reply })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{Synchronous, schema};

    fn insert_row(id: i64) -> impl FnOnce(&Connection, &WriterCtx) -> Result<(), StoreError> {
        move |conn, _| {
            conn.execute(
                "INSERT INTO catchup_marks (peer, seq) VALUES (zeroblob(32), ?1)",
                [id],
            )
            .map(|_| ())
            .map_err(|source| StoreError::Sqlite {
                op: "test insert",
                source,
            })
        }
    }

    #[test]
    fn queued_jobs_share_one_transaction_and_failures_roll_back_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db.sqlite");
        let conn = schema::open_writer(&path, Synchronous::Normal).expect("open");
        let (tx, rx) = mpsc::channel::<Job>(16);
        let mut replies = Vec::new();
        // Queue three jobs before the writer starts: one batch. The second
        // violates the primary key (same peer) and must be rolled back alone.
        for id in [1, 2] {
            let (reply, r) = oneshot::channel();
            tx.try_send(job(insert_row(id), reply)).expect("queue");
            replies.push(r);
        }
        let (reply, r) = oneshot::channel();
        tx.try_send(job(
            |conn: &Connection, _: &WriterCtx| {
                conn.execute("INSERT INTO owners (account) VALUES (zeroblob(33))", [])
                    .map(|_| ())
                    .map_err(|source| StoreError::Sqlite {
                        op: "test insert",
                        source,
                    })
            },
            reply,
        ))
        .expect("queue");
        replies.push(r);
        drop(tx);
        let shared = Arc::new(Shared::default());
        run(conn, rx, u64::MAX, 64, Arc::clone(&shared));
        let results: Vec<_> = replies
            .into_iter()
            .map(|r| r.blocking_recv().expect("reply"))
            .collect();
        assert!(results[0].is_ok());
        assert!(matches!(results[1], Err(StoreError::Sqlite { .. })));
        assert!(results[2].is_ok());
        assert_eq!(shared.commits.load(Ordering::Relaxed), 1);
        let check = Connection::open(&path).expect("reopen");
        let marks: i64 = check
            .query_row("SELECT count(*) FROM catchup_marks", [], |r| r.get(0))
            .expect("count");
        let owners: i64 = check
            .query_row("SELECT count(*) FROM owners", [], |r| r.get(0))
            .expect("count");
        assert_eq!((marks, owners), (1, 1));
    }
}
