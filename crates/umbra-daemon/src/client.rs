//! A small client of the daemon API (`docs/API.md`): connect to the
//! socket, call methods, subscribe and read events. Used by the echo bot
//! example, the tests, and the `umbra` CLI to forward one-shot commands to
//! a running daemon ([`call`], [`running`]).
//!
//! A [`Connection`] sends one request at a time; events that arrive while
//! it waits for a response are kept for [`Connection::next_event`].

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use crate::server::socket_path;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// Connecting to, writing to or reading from the socket failed.
    #[error("daemon socket {}: {source}", path.display())]
    Io {
        /// The socket.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The daemon closed the connection.
    #[error("the daemon closed the connection")]
    Closed,
    /// The daemon sent something that is not a JSON-RPC response.
    #[error("unexpected reply from the daemon: {0}")]
    Protocol(String),
    /// The daemon answered with an error.
    #[error("{message} (error {code})")]
    Rpc {
        /// The JSON-RPC error code.
        code: i64,
        /// The message.
        message: String,
        /// Details, if any.
        data: Option<Value>,
    },
}

/// One connection to the daemon.
pub struct Connection {
    path: PathBuf,
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    next_id: u64,
    events: VecDeque<Value>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Connects to the daemon socket at `socket`.
    pub async fn connect(socket: &Path) -> Result<Connection, CallError> {
        let stream = UnixStream::connect(socket)
            .await
            .map_err(|source| CallError::Io {
                path: socket.to_owned(),
                source,
            })?;
        let (r, w) = stream.into_split();
        Ok(Connection {
            path: socket.to_owned(),
            reader: BufReader::new(r),
            writer: w,
            next_id: 1,
            events: VecDeque::new(),
        })
    }

    fn io(&self) -> impl FnOnce(std::io::Error) -> CallError + use<> {
        let path = self.path.clone();
        move |source| CallError::Io { path, source }
    }

    /// Sends one raw line (a newline is added) — for tests of the framing.
    pub async fn send_line(&mut self, line: &str) -> Result<(), CallError> {
        let mut bytes = line.as_bytes().to_vec();
        bytes.push(b'\n');
        let io = self.io();
        self.writer.write_all(&bytes).await.map_err(io)
    }

    /// Reads the next line as JSON; `None` at end of stream.
    pub async fn read_value(&mut self) -> Result<Option<Value>, CallError> {
        let mut line = String::new();
        let io = self.io();
        if self.reader.read_line(&mut line).await.map_err(io)? == 0 {
            return Ok(None);
        }
        serde_json::from_str(&line)
            .map(Some)
            .map_err(|e| CallError::Protocol(format!("{e}: {}", line.trim_end())))
    }

    /// Calls `method` with by-name `params` and returns its result.
    pub async fn call(&mut self, method: &str, params: Value) -> Result<Value, CallError> {
        let id = self.next_id;
        self.next_id += 1;
        let req = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send_line(&req.to_string()).await?;
        loop {
            let mut v = self.read_value().await?.ok_or(CallError::Closed)?;
            if v.get("method").and_then(Value::as_str) == Some("event") {
                self.events.push_back(v["params"].take());
                continue;
            }
            if v.get("id") != Some(&json!(id)) {
                return Err(CallError::Protocol(format!(
                    "response to another request: {v}"
                )));
            }
            if let Some(e) = v.get("error") {
                return Err(CallError::Rpc {
                    code: e["code"].as_i64().unwrap_or(0),
                    message: e["message"].as_str().unwrap_or("unknown error").to_string(),
                    data: e.get("data").cloned(),
                });
            }
            return match v.get_mut("result") {
                Some(r) => Ok(r.take()),
                None => Err(CallError::Protocol(format!("no result: {v}"))),
            };
        }
    }

    /// Subscribes this connection to events.
    pub async fn subscribe(&mut self) -> Result<(), CallError> {
        self.call("subscribe", json!({})).await.map(drop)
    }

    /// The next event's `params` (`{"type": …}`); `None` when the daemon
    /// closed the connection.
    pub async fn next_event(&mut self) -> Result<Option<Value>, CallError> {
        if let Some(e) = self.events.pop_front() {
            return Ok(Some(e));
        }
        loop {
            let Some(mut v) = self.read_value().await? else {
                return Ok(None);
            };
            if v.get("method").and_then(Value::as_str) == Some("event") {
                return Ok(Some(v["params"].take()));
            }
            // A stray response (e.g. to a notification-less batch): ignore.
        }
    }
}

/// Connects, calls one method and disconnects.
pub async fn call(socket: &Path, method: &str, params: Value) -> Result<Value, CallError> {
    Connection::connect(socket)
        .await?
        .call(method, params)
        .await
}

/// The socket of the daemon running on `profile_dir`, if one answers there.
/// One-shot commands use it to forward to the daemon instead of opening
/// the (locked) profile.
pub async fn running(profile_dir: &Path) -> Option<PathBuf> {
    let path = socket_path(profile_dir);
    UnixStream::connect(&path).await.ok().map(|_| path)
}
