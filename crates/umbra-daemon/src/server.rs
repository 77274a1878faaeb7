//! The daemon itself (`docs/API.md`): the Unix socket (mode 0600, removed
//! on exit), the accept loop, one task per connection reading
//! newline-delimited JSON-RPC requests and writing one response line each,
//! `subscribe` streams, the background sync loop that feeds them, and the
//! timer sending batched read receipts.
//!
//! Requests on one connection are answered in order; connections are
//! independent. Background syncs never overlap (a `sync` request waits for
//! a running one).

use std::future::Future;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinSet;
use umbra_client::client::{Client, ClientError, SyncReport};

use crate::events::Watcher;
use crate::methods;
use crate::rpc::{self, Entry, MAX_LINE, Parsed, RpcError};

/// The default interval between background syncs.
pub const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_secs(2);

/// How often the daemon sends the read receipts whose batching window has
/// passed (`messages.md` §12), between syncs and reads.
pub const RECEIPT_FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// The shortest interval honoured (a zero interval would spin).
pub const MIN_SYNC_INTERVAL: Duration = Duration::from_millis(100);

/// Events buffered per subscriber before it is told it lagged.
const EVENT_BUFFER: usize = 1024;
/// Lines queued for one connection's writer.
const WRITE_QUEUE: usize = 256;

/// Why the daemon could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// Another daemon already answers on the socket.
    #[error("a daemon is already listening on {}", path.display())]
    AlreadyRunning {
        /// The socket.
        path: PathBuf,
    },
    /// Something that is not a socket sits where the socket goes.
    #[error("{} exists and is not a socket; refusing to replace it", path.display())]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// A file or socket operation failed.
    #[error("{context} {}: {source}", path.display())]
    Io {
        /// What was being done.
        context: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Daemon settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServeOptions {
    /// Time between the end of one background sync and the start of the
    /// next (at least [`MIN_SYNC_INTERVAL`]).
    pub sync_interval: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            sync_interval: DEFAULT_SYNC_INTERVAL,
        }
    }
}

impl ServeOptions {
    /// Sets the sync interval.
    pub fn with_sync_interval(mut self, interval: Duration) -> Self {
        self.sync_interval = interval;
        self
    }
}

#[derive(Debug, Default)]
struct Status {
    last_sync_ms: Option<u64>,
    last_error: Option<String>,
    syncs: u64,
}

/// State shared by the connections and the sync loop.
pub struct Shared {
    /// The client.
    pub client: Arc<Client>,
    /// What was already reported to subscribers.
    pub watcher: Watcher,
    events: broadcast::Sender<Value>,
    sync_lock: tokio::sync::Mutex<()>,
    status: Mutex<Status>,
    options: ServeOptions,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Shared {
    fn publish(&self, report: Option<&SyncReport>) {
        match self.watcher.scan(self.client.profile().store(), report) {
            Ok(events) => {
                for e in events {
                    // No subscriber is not an error.
                    let _ = self.events.send(e);
                }
            }
            Err(e) => tracing::warn!("daemon: reading the store for events: {e}"),
        }
    }

    /// Reports local changes (a message sent through the API) to subscribers.
    pub fn publish_local_changes(&self) {
        self.publish(None);
    }

    /// Syncs now (waiting for a running sync first) and publishes the events.
    pub async fn sync_now(&self) -> Result<SyncReport, ClientError> {
        let _guard = self.sync_lock.lock().await;
        let r = self.client.sync().await;
        let mut st = self.status.lock().unwrap_or_else(|p| p.into_inner());
        match &r {
            Ok(report) => {
                st.last_sync_ms = Some(unix_ms());
                st.last_error = None;
                st.syncs += 1;
                drop(st);
                self.publish(Some(report));
            }
            Err(e) => st.last_error = Some(e.to_string()),
        }
        r
    }

    /// The `daemon.status` result.
    pub fn status_json(&self) -> Value {
        let st = self.status.lock().unwrap_or_else(|p| p.into_inner());
        json!({
            "account_id": self.client.account_id().to_string(),
            "sync_interval_ms": u64::try_from(self.options.sync_interval.as_millis()).unwrap_or(u64::MAX),
            "last_sync": st.last_sync_ms,
            "last_error": st.last_error,
            "syncs": st.syncs,
            "subscribers": self.events.receiver_count(),
        })
    }
}

/// The daemon's socket in a profile directory: `PROFILE/daemon.sock`.
pub fn socket_path(profile_dir: &Path) -> PathBuf {
    profile_dir.join("daemon.sock")
}

/// Removes the socket on drop, if it is still the one we bound.
struct SocketFile {
    path: PathBuf,
    id: (u64, u64),
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if let Ok(m) = std::fs::symlink_metadata(&self.path)
            && (m.dev(), m.ino()) == self.id
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn io_err(context: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> DaemonError {
    let path = path.to_owned();
    move |source| DaemonError::Io {
        context,
        path,
        source,
    }
}

/// Binds `socket` with mode 0600: binds a temporary name next to it, sets
/// the mode, then renames it into place, so the socket is never reachable
/// with wider permissions. A stale socket (nobody answering) is replaced.
async fn bind(socket: &Path) -> Result<(UnixListener, SocketFile), DaemonError> {
    match std::fs::symlink_metadata(socket) {
        Ok(m) if m.file_type().is_socket() => {
            if UnixStream::connect(socket).await.is_ok() {
                return Err(DaemonError::AlreadyRunning {
                    path: socket.to_owned(),
                });
            }
            std::fs::remove_file(socket).map_err(io_err("removing the stale socket", socket))?;
        }
        Ok(_) => {
            return Err(DaemonError::NotASocket {
                path: socket.to_owned(),
            });
        }
        Err(_) => {}
    }
    let mut tmp = socket.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let listener = UnixListener::bind(&tmp).map_err(io_err("binding the socket", &tmp))?;
    let placed = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
        .map_err(io_err("setting the mode of", &tmp))
        .and_then(|()| std::fs::rename(&tmp, socket).map_err(io_err("placing the socket", socket)));
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let m = std::fs::symlink_metadata(socket).map_err(io_err("reading", socket))?;
    Ok((
        listener,
        SocketFile {
            path: socket.to_owned(),
            id: (m.dev(), m.ino()),
        },
    ))
}

/// Serves the API of `client` on `socket` until `shutdown` completes, with
/// the default options (sync every 2 s). The socket is removed on return.
///
/// The caller opened the client's profile, which holds its lock: a second
/// daemon (or CLI) on the same profile fails there, with
/// `ProfileError::InUse`.
pub async fn serve(
    client: Arc<Client>,
    socket: &Path,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DaemonError> {
    serve_with_options(client, socket, ServeOptions::default(), shutdown).await
}

/// As [`serve`], with options.
pub async fn serve_with_options(
    client: Arc<Client>,
    socket: &Path,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DaemonError> {
    let (listener, socket_file) = bind(socket).await?;
    let (events, _) = broadcast::channel(EVENT_BUFFER);
    let shared = Arc::new(Shared {
        client,
        watcher: Watcher::new(),
        events,
        sync_lock: tokio::sync::Mutex::new(()),
        status: Mutex::new(Status::default()),
        options,
    });
    // Record the current state so history is not replayed as events.
    shared.publish(None);
    tracing::info!(
        "daemon: serving {} on {}",
        shared.client.account_id().short(),
        socket.display()
    );
    let mut tasks = JoinSet::new();
    let syncer = shared.clone();
    tasks.spawn(async move {
        loop {
            if let Err(e) = syncer.sync_now().await {
                tracing::warn!("daemon: background sync failed: {e}");
            }
            tokio::time::sleep(syncer.options.sync_interval.max(MIN_SYNC_INTERVAL)).await;
        }
    });
    // Batched read receipts (§12) go out when their window has passed,
    // not only on the next sync or read.
    let flusher = shared.clone();
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(RECEIPT_FLUSH_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = flusher.client.flush_receipts().await {
                tracing::warn!("daemon: sending read receipts failed: {e}");
            }
        }
    });
    tokio::pin!(shutdown);
    let result = loop {
        tokio::select! {
            () = &mut shutdown => break Ok(()),
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let s = shared.clone();
                    tasks.spawn(connection(s, stream));
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!("daemon: accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            // Reap finished connection tasks.
            Some(_) = tasks.join_next(), if tasks.len() > 1 => {}
        }
    };
    tasks.shutdown().await;
    drop(listener);
    drop(socket_file);
    let _ = shared.client.persist().await;
    tracing::info!("daemon: stopped");
    result
}

/// Reads one line of at most [`MAX_LINE`] bytes. `Ok(None)` at end of
/// stream; `Ok(Some(Err(())))` when the line was too long (it is skipped).
async fn read_line<R: AsyncBufReadExt + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<Result<(), ()>>> {
    buf.clear();
    let mut too_long = false;
    loop {
        let chunk = r.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(if buf.is_empty() && !too_long {
                None
            } else if too_long {
                Some(Err(()))
            } else {
                Some(Ok(()))
            });
        }
        let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i, true),
            None => (chunk.len(), false),
        };
        if !too_long {
            if buf.len() + take > MAX_LINE {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(&chunk[..take]);
            }
        }
        r.consume(if done { take + 1 } else { take });
        if done {
            return Ok(Some(if too_long { Err(()) } else { Ok(()) }));
        }
    }
}

async fn writer(mut w: OwnedWriteHalf, mut rx: mpsc::Receiver<String>) {
    while let Some(mut line) = rx.recv().await {
        line.push('\n');
        if w.write_all(line.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = w.shutdown().await;
}

/// Forwards events to one subscriber until the connection goes away.
async fn forward_events(mut rx: broadcast::Receiver<Value>, out: mpsc::Sender<String>) {
    loop {
        let params = match rx.recv().await {
            Ok(e) => e,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                json!({"type": "lagged", "missed": n})
            }
            Err(broadcast::error::RecvError::Closed) => break,
        };
        let line = rpc::notification("event", params).to_string();
        if out.send(line).await.is_err() {
            break;
        }
    }
}

/// Answers one entry; `None` for notifications.
async fn answer(shared: &Arc<Shared>, entry: Entry, subscribe: &mut bool) -> Option<Value> {
    let (id, result) = match entry {
        Entry::Invalid { id, error } => return Some(rpc::error_response(id, &error)),
        Entry::Call(req) => {
            let result = if req.method == "subscribe" {
                req.params.only(&[]).map(|()| {
                    *subscribe = true;
                    json!({"subscribed": true})
                })
            } else {
                methods::call(shared, &req.method, &req.params).await
            };
            (req.id?, result)
        }
    };
    Some(match result {
        Ok(v) => rpc::response(id, v),
        Err(e) => rpc::error_response(id, &e),
    })
}

async fn connection(shared: Arc<Shared>, stream: UnixStream) {
    let (r, w) = stream.into_split();
    let mut r = BufReader::new(r);
    let (tx, rx) = mpsc::channel::<String>(WRITE_QUEUE);
    let mut subtasks = JoinSet::new();
    subtasks.spawn(writer(w, rx));
    let mut buf = Vec::new();
    let mut subscribed = false;
    loop {
        let line = match read_line(&mut r, &mut buf).await {
            Ok(Some(l)) => l,
            Ok(None) | Err(_) => break,
        };
        let reply = match line {
            Err(()) => Some(rpc::error_response(
                Value::Null,
                &RpcError::new(
                    rpc::INVALID_REQUEST,
                    format!("invalid request: line longer than {MAX_LINE} bytes"),
                ),
            )),
            Ok(()) if buf.iter().all(u8::is_ascii_whitespace) => None,
            Ok(()) => {
                let mut subscribe = false;
                let reply = match rpc::parse(&buf) {
                    Err(e) => Some(rpc::error_response(Value::Null, &e)),
                    Ok(Parsed::Single(entry)) => answer(&shared, entry, &mut subscribe).await,
                    Ok(Parsed::Batch(entries)) => {
                        let mut out = Vec::new();
                        for entry in entries {
                            out.extend(answer(&shared, entry, &mut subscribe).await);
                        }
                        (!out.is_empty()).then_some(Value::Array(out))
                    }
                };
                if subscribe && !subscribed {
                    subscribed = true;
                    // Subscribe before answering, so no event after the
                    // answer is missed.
                    subtasks.spawn(forward_events(shared.events.subscribe(), tx.clone()));
                }
                reply
            }
        };
        if let Some(v) = reply
            && tx.send(v.to_string()).await.is_err()
        {
            break;
        }
    }
    drop(tx);
    subtasks.shutdown().await;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    async fn lines(input: &[u8]) -> Vec<Result<Vec<u8>, ()>> {
        let mut r = BufReader::with_capacity(7, input);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        while let Some(l) = read_line(&mut r, &mut buf).await.unwrap() {
            out.push(l.map(|()| buf.clone()));
        }
        out
    }

    #[tokio::test]
    async fn lines_are_split_and_limited() {
        assert_eq!(
            lines(b"ab\n\ncdefghijkl\nlast").await,
            vec![
                Ok(b"ab".to_vec()),
                Ok(vec![]),
                Ok(b"cdefghijkl".to_vec()),
                Ok(b"last".to_vec())
            ]
        );
        let mut long = vec![b'x'; MAX_LINE + 1];
        long.extend_from_slice(b"\nok\n");
        assert_eq!(lines(&long).await, vec![Err(()), Ok(b"ok".to_vec())]);
        let exact = vec![b'y'; MAX_LINE];
        assert_eq!(lines(&exact).await, vec![Ok(exact.clone())]);
    }

    #[tokio::test]
    async fn bind_refuses_a_live_socket_and_a_regular_file_and_replaces_a_stale_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.sock");
        let (l, f) = bind(&path).await.unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(matches!(
            bind(&path).await,
            Err(DaemonError::AlreadyRunning { .. })
        ));
        // Stale: the listener is gone but the file stays.
        drop(l);
        std::mem::forget(f);
        let (_l, f) = bind(&path).await.unwrap();
        drop(f);
        assert!(!path.exists(), "removed on drop");
        std::fs::write(&path, b"not a socket").unwrap();
        assert!(matches!(
            bind(&path).await,
            Err(DaemonError::NotASocket { .. })
        ));
    }
}
