//! HTTPS requests to Umbra nodes, pinned to each node's Ed25519 key
//! (`shared/spec/storage-rpc.md` §1.2–1.3, `shared/spec/swarms.md` §8,
//! `shared/spec/onion.md` §3 and §6).
//!
//! A node is addressed by a [`NodeAddr`]: its socket address and the Ed25519
//! key the registry gives for it. [`NodeClient`] connects over TCP, runs a
//! TLS 1.3 handshake that only the holder of that key can complete
//! ([`crate::tls::PinnedNodeVerifier`]), and speaks HTTP/1.1.
//!
//! Connections are kept alive and reused: the pool is keyed by address *and*
//! key, so a connection opened for one key never serves a request pinned to
//! another. A request first takes an idle connection of its node (most
//! recently used first); if that connection turns out to be closed before the
//! request was written, the request moves on to the next one, and a new
//! connection is opened when none is left. After the response body has been
//! read, the connection goes back to the pool. Idle connections are dropped
//! after [`ClientConfig::idle_timeout`], which should stay below the server's
//! keep-alive timeout (30 s for Umbra nodes).
//!
//! With [`ClientConfig::http2`] (nodes relaying onion layers to their
//! neighbours) the client speaks HTTP/2 instead: one connection per node
//! carries every request in flight to it as a separate stream, so a busy
//! link needs one TLS session and its frames are batched into few writes
//! and TLS records, rather than one connection and one write per request in
//! flight. The connection is kept while it is used and dropped after
//! [`ClientConfig::idle_timeout`] without requests. HTTP/2 is driven with
//! the `h2` crate directly rather than through hyper's client: the caller
//! queues its stream on the connection and awaits the response itself,
//! without hyper's dispatch channel and the task it spawns per request
//! (measured: 6 to 8 points more of the crypto bound for a relay,
//! `relay_bench`).
//!
//! Every request has one overall timeout covering connect, handshake,
//! request and the whole response body. A connection whose request failed or
//! timed out is closed, never reused.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_rustls::TlsConnector;
use tracing::debug;
use umbra_crypto::Ed25519Public;

use crate::tls::{self, TlsError};

/// Shared boxed error used as the source of transport errors.
type BoxError = Arc<dyn std::error::Error + Send + Sync>;

/// Where a node is reached: its socket address and the Ed25519 identity key
/// its TLS certificate must carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NodeAddr {
    /// The node's HTTPS address.
    pub addr: SocketAddr,
    /// The node's Ed25519 identity key, pinned during the TLS handshake.
    pub key: Ed25519Public,
}

impl NodeAddr {
    /// A node at `addr` whose identity key is `key`.
    pub fn new(addr: SocketAddr, key: Ed25519Public) -> Self {
        Self { addr, key }
    }
}

/// A failed request to a node.
///
/// Errors are `Clone` so one failure can be reported to several waiters.
/// [`TransportError::is_retryable`] tells whether sending the same request
/// again (to this node or another) may succeed.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The request was malformed before anything was sent (a local bug).
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// The TCP connection could not be established.
    #[error("connecting to {addr} failed")]
    Connect {
        /// The node's address.
        addr: SocketAddr,
        /// The socket error.
        #[source]
        source: BoxError,
    },
    /// The node's certificate does not carry the pinned Ed25519 key: the peer
    /// is not the node we meant to reach (or the registry is out of date).
    #[error("{addr} presented a certificate for another key than the pinned one")]
    PinMismatch {
        /// The node's address.
        addr: SocketAddr,
    },
    /// The TLS handshake failed for another reason (bad handshake signature,
    /// protocol error, connection reset during the handshake, …).
    #[error("TLS handshake with {addr} failed")]
    Tls {
        /// The node's address.
        addr: SocketAddr,
        /// The TLS or socket error.
        #[source]
        source: BoxError,
    },
    /// The request did not complete within its timeout.
    #[error("request to {addr} timed out after {after:?}")]
    Timeout {
        /// The node's address.
        addr: SocketAddr,
        /// The timeout that expired.
        after: Duration,
    },
    /// The HTTP exchange failed after the connection was set up (connection
    /// closed mid-response, malformed response, …).
    #[error("HTTP exchange with {addr} failed")]
    Http {
        /// The node's address.
        addr: SocketAddr,
        /// The HTTP error.
        #[source]
        source: BoxError,
    },
    /// The response body exceeded [`ClientConfig::max_response_bytes`].
    #[error("response from {addr} exceeds {limit} bytes")]
    BodyTooLarge {
        /// The node's address.
        addr: SocketAddr,
        /// The limit in force.
        limit: usize,
    },
    /// The local TLS configuration could not be built (a local bug).
    #[error("building the TLS client configuration failed")]
    Config(#[source] Arc<TlsError>),
}

impl TransportError {
    /// Whether the same request may succeed if sent again: true for
    /// connection, handshake, timeout and HTTP failures (the network or the
    /// node may recover, or another node may answer); false for a pin
    /// mismatch, an oversized response and local errors.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Connect { .. } | Self::Tls { .. } | Self::Timeout { .. } | Self::Http { .. } => {
                true
            }
            Self::PinMismatch { .. }
            | Self::BodyTooLarge { .. }
            | Self::InvalidRequest(_)
            | Self::Config(_) => false,
        }
    }

    /// The address of the node involved, if the failure concerns one.
    pub fn addr(&self) -> Option<SocketAddr> {
        match self {
            Self::Connect { addr, .. }
            | Self::PinMismatch { addr }
            | Self::Tls { addr, .. }
            | Self::Timeout { addr, .. }
            | Self::Http { addr, .. }
            | Self::BodyTooLarge { addr, .. } => Some(*addr),
            Self::InvalidRequest(_) | Self::Config(_) => None,
        }
    }
}

/// An HTTP request to a node: method, path, headers, body and an optional
/// timeout overriding [`ClientConfig::request_timeout`].
#[derive(Clone, Debug)]
pub struct Request {
    method: Method,
    path: PathAndQuery,
    headers: HeaderMap,
    body: Bytes,
    timeout: Option<Duration>,
}

impl Request {
    /// A request with an empty body. `path` must start with `/` and may
    /// carry a query string.
    pub fn new(method: Method, path: &str) -> Result<Self, TransportError> {
        if !path.starts_with('/') {
            return Err(TransportError::InvalidRequest(
                "the path must start with '/'",
            ));
        }
        let path = PathAndQuery::try_from(path)
            .map_err(|_| TransportError::InvalidRequest("the path is not a valid URI path"))?;
        Ok(Self {
            method,
            path,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            timeout: None,
        })
    }

    /// A `POST` of `body` to `path`.
    pub fn post(path: &str, body: impl Into<Bytes>) -> Result<Self, TransportError> {
        Ok(Self::new(Method::POST, path)?.body(body))
    }

    /// A `GET` of `path`.
    pub fn get(path: &str) -> Result<Self, TransportError> {
        Self::new(Method::GET, path)
    }

    /// Adds a header (appending if the name is already present).
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Replaces the body.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets this request's overall timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The headers, for in-place changes.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    /// The request method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The path and query.
    pub fn path(&self) -> &str {
        self.path.as_str()
    }
}

/// A node's complete response.
#[derive(Clone, Debug)]
pub struct Response {
    /// The HTTP status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The whole response body.
    pub body: Bytes,
}

/// Sends requests to nodes. Implemented by [`NodeClient`]; node and client
/// logic take `impl Transport` so tests can substitute an in-memory network.
pub trait Transport: Send + Sync + 'static {
    /// Sends `request` to `node` and returns its complete response.
    fn send(
        &self,
        node: &NodeAddr,
        request: Request,
    ) -> impl Future<Output = Result<Response, TransportError>> + Send;
}

/// Settings of a [`NodeClient`].
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Default overall timeout of a request (connect, handshake, request and
    /// response body). Default: 10 s.
    pub request_timeout: Duration,
    /// Largest accepted response body. Default: 16 MiB.
    pub max_response_bytes: usize,
    /// Idle connections kept per node. Default: 4.
    pub max_idle_per_node: usize,
    /// How long an idle connection is kept. Default: 20 s.
    pub idle_timeout: Duration,
    /// The certificate presented when a node asks for one: set by nodes
    /// calling other nodes (which then learn who is calling once per
    /// connection, `crate::server::PeerNode`), never by clients. Default:
    /// none.
    pub identity: Option<tls::ClientIdentity>,
    /// Speak HTTP/2: one multiplexed connection per node instead of one
    /// HTTP/1.1 connection per request in flight (`max_idle_per_node` is
    /// then unused). Default: off (HTTP/1.1).
    pub http2: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            max_response_bytes: 16 * 1024 * 1024,
            max_idle_per_node: 4,
            idle_timeout: Duration::from_secs(20),
            identity: None,
            http2: false,
        }
    }
}

/// An HTTPS client for Umbra nodes with a pinned-key connection pool.
///
/// Cheap to clone: clones share the pool. Requests need a Tokio runtime
/// (connections are driven by spawned tasks).
#[derive(Clone, Debug)]
pub struct NodeClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: ClientConfig,
    pool: Mutex<Pool>,
    /// Connections opened so far (TLS handshakes completed).
    opened: std::sync::atomic::AtomicU64,
}

impl Default for NodeClient {
    fn default() -> Self {
        Self::new(ClientConfig::default())
    }
}

impl NodeClient {
    /// A client with `config`.
    pub fn new(config: ClientConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                pool: Mutex::new(Pool::default()),
                opened: std::sync::atomic::AtomicU64::new(0),
            }),
        }
    }

    /// The client's settings.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// `POST`s `body` to `path` on `node`.
    pub async fn post(
        &self,
        node: &NodeAddr,
        path: &str,
        body: impl Into<Bytes>,
    ) -> Result<Response, TransportError> {
        self.send(node, Request::post(path, body)?).await
    }

    /// `GET`s `path` from `node`.
    pub async fn get(&self, node: &NodeAddr, path: &str) -> Result<Response, TransportError> {
        self.send(node, Request::get(path)?).await
    }

    /// Sends `request` to `node` and reads the whole response.
    pub async fn send(
        &self,
        node: &NodeAddr,
        request: Request,
    ) -> Result<Response, TransportError> {
        let after = request.timeout.unwrap_or(self.inner.config.request_timeout);
        // Boxed: the exchange's state machine is large, and every caller's
        // future would otherwise hold it inline (debug-build test threads
        // ran out of stack).
        match tokio::time::timeout(after, Box::pin(self.exchange(node, request))).await {
            Ok(result) => result,
            Err(_) => Err(TransportError::Timeout {
                addr: node.addr,
                after,
            }),
        }
    }

    /// Number of pooled connections to `node` that a request could still
    /// use (open and not expired): idle HTTP/1.1 connections, or the shared
    /// HTTP/2 connection; for tests and metrics.
    pub fn idle_connections(&self, node: &NodeAddr) -> usize {
        let now = Instant::now();
        let idle_timeout = self.inner.config.idle_timeout;
        let key = PoolKey::from(node);
        let pool = self.inner.lock_pool();
        let h1 = pool.idle.get(&key).map_or(0, |conns| {
            conns
                .iter()
                .filter(|c| c.is_usable(now, idle_timeout))
                .count()
        });
        let h2 = pool.shared.get(&key).map_or(0, |(sender, used)| {
            usize::from(!sender.is_closed() && now.duration_since(*used) < idle_timeout)
        });
        h1 + h2
    }

    /// Connections this client has opened so far (to any node): each one
    /// cost a TCP and a TLS handshake. For tests and metrics.
    pub fn connections_opened(&self) -> u64 {
        self.inner.opened.load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn exchange(
        &self,
        node: &NodeAddr,
        request: Request,
    ) -> Result<Response, TransportError> {
        let addr = node.addr;
        let key = PoolKey::from(node);
        if self.inner.config.http2 {
            return self.exchange_h2(node, key, request).await;
        }
        let mut http_request = build_request(node, request, false)?;

        // Reuse an idle connection when one still works.
        while let Some(mut conn) = self.inner.take_idle(&key) {
            match conn.sender.try_send_request(http_request).await {
                Ok(response) => return self.finish(key, Some(conn), response).await,
                // Not written: the connection had closed; try the next.
                Err(error) => http_request = unsent(addr, error)?,
            }
        }

        let mut conn = connect(node, self.inner.config.identity.as_ref()).await?;
        self.inner.count_opened();
        let response = conn
            .sender
            .send_request(http_request)
            .await
            .map_err(http_error(addr))?;
        self.finish(key, Some(conn), response).await
    }

    /// [`Self::exchange`] over the node's shared HTTP/2 connection, opened
    /// when there is none or it has closed. Driven with the `h2` crate
    /// directly: the request's headers and body are queued on the
    /// connection by this task and the response is awaited here, with no
    /// dispatch channel or per-request task in between.
    async fn exchange_h2(
        &self,
        node: &NodeAddr,
        key: PoolKey,
        request: Request,
    ) -> Result<Response, TransportError> {
        let addr = node.addr;
        let Request {
            method,
            path,
            headers,
            body,
            timeout: _,
        } = request;
        let head = || request_head(node, &method, &path, &headers, true);
        let mut sent = None;
        if let Some(conn) = self.inner.shared(&key) {
            // Not sent (the connection has closed): open another.
            sent = conn.start(head()?, &body).await.ok();
            if sent.is_none() {
                self.inner.drop_shared(&key);
            }
        }
        let response = match sent {
            Some(response) => response,
            None => {
                let conn = connect_h2(node, self.inner.config.identity.as_ref()).await?;
                self.inner.count_opened();
                self.inner.put_shared(key, conn.clone());
                conn.start(head()?, &body).await.map_err(h2_error(addr))?
            }
        };
        let response = response.await.map_err(h2_error(addr))?;
        let (parts, recv) = response.into_parts();
        let body = read_h2_body(addr, recv, self.inner.config.max_response_bytes).await?;
        Ok(Response {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    async fn finish(
        &self,
        key: PoolKey,
        conn: Option<Conn>,
        response: http::Response<hyper::body::Incoming>,
    ) -> Result<Response, TransportError> {
        let (parts, body) = response.into_parts();
        let body = read_body(key.addr, body, self.inner.config.max_response_bytes).await?;
        // An HTTP/1.1 connection goes back to the pool once its response
        // is read; an HTTP/2 one stays in the pool meanwhile.
        if let Some(conn) = conn {
            self.inner.put_idle(key, conn);
        }
        Ok(Response {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}

impl Transport for NodeClient {
    fn send(
        &self,
        node: &NodeAddr,
        request: Request,
    ) -> impl Future<Output = Result<Response, TransportError>> + Send {
        NodeClient::send(self, node, request)
    }
}

/// A failed HTTP exchange with `addr`.
fn http_error(addr: SocketAddr) -> impl FnOnce(hyper::Error) -> TransportError {
    move |e| TransportError::Http {
        addr,
        source: Arc::new(e),
    }
}

/// After a failed `try_send_request`: the request back when it was never
/// sent (its pooled connection had closed, so another may carry it), or
/// the error when it was.
fn unsent(
    addr: SocketAddr,
    mut error: hyper::client::conn::TrySendError<http::Request<Full<Bytes>>>,
) -> Result<http::Request<Full<Bytes>>, TransportError> {
    match error.take_message() {
        Some(request) => Ok(request),
        None => Err(http_error(addr)(error.into_error())),
    }
}

/// The HTTP/1.1 request of `request` to `node`.
fn build_request(
    node: &NodeAddr,
    request: Request,
    http2: bool,
) -> Result<http::Request<Full<Bytes>>, TransportError> {
    let head = request_head(
        node,
        &request.method,
        &request.path,
        &request.headers,
        http2,
    )?;
    Ok(head.map(|()| Full::new(request.body)))
}

/// The head of a request to `node`. HTTP/2 requests carry scheme and
/// authority as pseudo-headers (an absolute URI) instead of `Host`.
fn request_head(
    node: &NodeAddr,
    method: &Method,
    path: &PathAndQuery,
    headers: &HeaderMap,
    http2: bool,
) -> Result<http::Request<()>, TransportError> {
    let builder = http::Request::builder().method(method.clone());
    let mut builder = if http2 {
        let uri = http::Uri::builder()
            .scheme(http::uri::Scheme::HTTPS)
            .authority(node.addr.to_string())
            .path_and_query(path.clone())
            .build()
            .map_err(|_| {
                TransportError::InvalidRequest("the request URI could not be assembled")
            })?;
        builder.uri(uri).version(http::Version::HTTP_2)
    } else {
        builder
            .uri(path.clone())
            .header(http::header::HOST, node.addr.to_string())
    };
    if let Some(map) = builder.headers_mut() {
        map.extend(headers.clone());
    }
    builder
        .body(())
        .map_err(|_| TransportError::InvalidRequest("the request could not be assembled"))
}

/// A failed HTTP/2 exchange with `addr`.
fn h2_error(addr: SocketAddr) -> impl FnOnce(h2::Error) -> TransportError {
    move |e| TransportError::Http {
        addr,
        source: Arc::new(e),
    }
}

/// Reads an HTTP/2 response body of at most `limit` bytes, giving the
/// flow-control capacity back as it goes.
async fn read_h2_body(
    addr: SocketAddr,
    mut body: h2::RecvStream,
    limit: usize,
) -> Result<Bytes, TransportError> {
    let too_large = || TransportError::BodyTooLarge { addr, limit };
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut len = 0usize;
    while let Some(data) = body.data().await {
        let data = data.map_err(h2_error(addr))?;
        let _ = body.flow_control().release_capacity(data.len());
        if data.len() > limit - len {
            return Err(too_large());
        }
        len += data.len();
        chunks.push(data);
    }
    Ok(join(chunks, len))
}

/// `chunks` as one buffer: a body that came in one frame without a copy.
fn join(mut chunks: Vec<Bytes>, len: usize) -> Bytes {
    if chunks.len() == 1 {
        return chunks.pop().unwrap_or_default();
    }
    let mut buf = BytesMut::with_capacity(len);
    for chunk in &chunks {
        buf.extend_from_slice(chunk);
    }
    buf.freeze()
}

async fn read_body(
    addr: SocketAddr,
    mut body: hyper::body::Incoming,
    limit: usize,
) -> Result<Bytes, TransportError> {
    use hyper::body::Body as _;
    let too_large = || TransportError::BodyTooLarge { addr, limit };
    if usize::try_from(body.size_hint().lower()).map_or(true, |n| n > limit) {
        return Err(too_large());
    }
    // Chunks are kept as they arrive and joined only if there are several:
    // a body that came in one frame is returned without a copy.
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut len = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(http_error(addr))?;
        if let Ok(data) = frame.into_data() {
            if data.len() > limit - len {
                return Err(too_large());
            }
            len += data.len();
            chunks.push(data);
        }
    }
    Ok(join(chunks, len))
}

/// Flow-control windows of an HTTP/2 connection: a stream may carry a
/// largest onion (10 MiB) without waiting for window updates every 64 KiB.
pub const H2_STREAM_WINDOW: u32 = 4 * 1024 * 1024;
/// See [`H2_STREAM_WINDOW`]: the whole connection's window.
pub const H2_CONNECTION_WINDOW: u32 = 16 * 1024 * 1024;

/// The TCP connection and pinned TLS handshake of [`connect`] and
/// [`connect_h2`], offering the ALPN protocol `alpn`.
async fn tls_connect(
    node: &NodeAddr,
    identity: Option<&tls::ClientIdentity>,
    alpn: &[u8],
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, TransportError> {
    let addr = node.addr;
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| TransportError::Connect {
            addr,
            source: Arc::new(e),
        })?;
    let _ = tcp.set_nodelay(true);

    let config = tls::client_config_alpn(node.key, identity, alpn)
        .map_err(|e| TransportError::Config(Arc::new(e)))?;
    TlsConnector::from(config)
        .connect(ServerName::IpAddress(addr.ip().into()), tcp)
        .await
        .map_err(|e| {
            if tls::is_pin_mismatch(&e) {
                TransportError::PinMismatch { addr }
            } else {
                TransportError::Tls {
                    addr,
                    source: Arc::new(e),
                }
            }
        })
}

/// A node's shared HTTP/2 connection: the `h2` handle requests are sent
/// with, and whether the task driving the connection has ended.
#[derive(Clone)]
struct H2Conn {
    sender: h2::client::SendRequest<Bytes>,
    closed: Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for H2Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H2Conn")
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl H2Conn {
    fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Queues the request (head and body) as a new stream; an error means
    /// nothing was sent. The response is awaited on the returned future.
    async fn start(
        &self,
        head: http::Request<()>,
        body: &Bytes,
    ) -> Result<h2::client::ResponseFuture, h2::Error> {
        let mut sender = self.sender.clone().ready().await?;
        let (response, mut stream) = sender.send_request(head, body.is_empty())?;
        if !body.is_empty() {
            // Buffered by the connection, which sends it as the peer's
            // windows allow.
            stream.send_data(body.clone(), true)?;
        }
        Ok(response)
    }
}

/// Opens a connection speaking HTTP/2 and spawns the task that drives it.
/// The connection closes when the last clone of the returned handle is
/// dropped and its streams have ended.
async fn connect_h2(
    node: &NodeAddr,
    identity: Option<&tls::ClientIdentity>,
) -> Result<H2Conn, TransportError> {
    let addr = node.addr;
    let stream = tls_connect(node, identity, tls::H2_ALPN).await?;
    let (sender, connection) = h2::client::Builder::new()
        .initial_window_size(H2_STREAM_WINDOW)
        .initial_connection_window_size(H2_CONNECTION_WINDOW)
        .handshake::<_, Bytes>(stream)
        .await
        .map_err(h2_error(addr))?;
    let closed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = closed.clone();
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            debug!(%addr, %error, "node connection (HTTP/2) ended with an error");
        }
        flag.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    debug!(%addr, "connected to node (HTTP/2)");
    Ok(H2Conn { sender, closed })
}

/// Opens a TCP connection, runs the pinned TLS handshake and the HTTP/1.1
/// handshake, and spawns the task that drives the connection.
async fn connect(
    node: &NodeAddr,
    identity: Option<&tls::ClientIdentity>,
) -> Result<Conn, TransportError> {
    let addr = node.addr;
    let stream = tls_connect(node, identity, tls::H1_ALPN).await?;

    let (sender, connection) = http1::Builder::new()
        .handshake(TokioIo::new(stream))
        .await
        .map_err(http_error(addr))?;
    let (close, closed) = oneshot::channel::<()>();
    tokio::spawn(async move {
        tokio::select! {
            result = connection => {
                if let Err(error) = result {
                    debug!(%addr, %error, "node connection ended with an error");
                }
            }
            // The `Conn` holding the sender was dropped: close the socket.
            _ = closed => {}
        }
    });
    debug!(%addr, "connected to node");
    Ok(Conn {
        sender,
        _close: close,
        idle_since: Instant::now(),
    })
}

/// Pool key: a connection serves only the address *and* key it was opened for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct PoolKey {
    addr: SocketAddr,
    key: [u8; 32],
}

impl From<&NodeAddr> for PoolKey {
    fn from(node: &NodeAddr) -> Self {
        Self {
            addr: node.addr,
            key: node.key.to_bytes(),
        }
    }
}

/// An open connection. Dropping it closes the socket.
#[derive(Debug)]
struct Conn {
    sender: http1::SendRequest<Full<Bytes>>,
    /// Dropped with the `Conn`; the connection task then ends.
    _close: oneshot::Sender<()>,
    idle_since: Instant,
}

impl Conn {
    /// Whether the connection can take a request now: open, idle and not
    /// expired.
    fn is_usable(&self, now: Instant, idle_timeout: Duration) -> bool {
        self.sender.is_ready() && now.duration_since(self.idle_since) < idle_timeout
    }
}

#[derive(Debug, Default)]
struct Pool {
    idle: HashMap<PoolKey, Vec<Conn>>,
    /// HTTP/2 connections, one per node, with when each was last used.
    shared: HashMap<PoolKey, (H2Conn, Instant)>,
    last_sweep: Option<Instant>,
}

impl Inner {
    fn lock_pool(&self) -> std::sync::MutexGuard<'_, Pool> {
        // The pool holds no invariant a panic could break half-way.
        self.pool
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn take_idle(&self, key: &PoolKey) -> Option<Conn> {
        let idle_timeout = self.config.idle_timeout;
        let mut pool = self.lock_pool();
        let now = Instant::now();
        let conns = pool.idle.get_mut(key)?;
        let mut found = None;
        while let Some(conn) = conns.pop() {
            if conn.is_usable(now, idle_timeout) {
                found = Some(conn);
                break;
            }
        }
        if conns.is_empty() {
            pool.idle.remove(key);
        }
        found
    }

    fn count_opened(&self) {
        self.opened
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// The node's HTTP/2 connection, if it is open.
    fn shared(&self, key: &PoolKey) -> Option<H2Conn> {
        let now = Instant::now();
        let mut pool = self.lock_pool();
        pool.sweep(now, self.config.idle_timeout);
        let (sender, used) = pool.shared.get_mut(key)?;
        if sender.is_closed() {
            pool.shared.remove(key);
            return None;
        }
        *used = now;
        Some(sender.clone())
    }

    fn put_shared(&self, key: PoolKey, sender: H2Conn) {
        self.lock_pool()
            .shared
            .insert(key, (sender, Instant::now()));
    }

    fn drop_shared(&self, key: &PoolKey) {
        self.lock_pool().shared.remove(key);
    }

    fn put_idle(&self, key: PoolKey, mut conn: Conn) {
        if conn.sender.is_closed()
            || self.config.max_idle_per_node == 0
            || self.config.idle_timeout.is_zero()
        {
            return;
        }
        let now = Instant::now();
        conn.idle_since = now;
        let mut pool = self.lock_pool();
        pool.sweep(now, self.config.idle_timeout);
        let conns = pool.idle.entry(key).or_default();
        if conns.len() >= self.config.max_idle_per_node {
            // Drop the least recently used.
            conns.remove(0);
        }
        conns.push(conn);
    }
}

impl Pool {
    /// Drops expired and closed connections of every node, at most once per
    /// `idle_timeout`, so nodes that are no longer called do not keep sockets.
    fn sweep(&mut self, now: Instant, idle_timeout: Duration) {
        if self
            .last_sweep
            .is_some_and(|last| now.duration_since(last) < idle_timeout)
        {
            return;
        }
        self.last_sweep = Some(now);
        self.idle.retain(|_, conns| {
            conns.retain(|c| c.is_usable(now, idle_timeout));
            !conns.is_empty()
        });
        self.shared.retain(|_, (sender, used)| {
            !sender.is_closed() && now.duration_since(*used) < idle_timeout
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_paths_are_checked() {
        assert!(Request::get("/storage_rpc/v1").is_ok());
        assert!(Request::get("/x?y=1").is_ok());
        assert!(matches!(
            Request::get("storage_rpc/v1"),
            Err(TransportError::InvalidRequest(_))
        ));
        assert!(matches!(
            Request::get("/a b"),
            Err(TransportError::InvalidRequest(_))
        ));
    }

    #[test]
    fn request_builder_keeps_headers_and_body() {
        let req = Request::post("/p", &b"abc"[..])
            .unwrap()
            .header(
                HeaderName::from_static("x-a"),
                HeaderValue::from_static("1"),
            )
            .header(
                HeaderName::from_static("x-a"),
                HeaderValue::from_static("2"),
            );
        let node = NodeAddr::new(
            SocketAddr::from(([127, 0, 0, 1], 22021)),
            Ed25519Public::from_bytes([1; 32]),
        );
        let built = build_request(&node, req, false).unwrap();
        assert_eq!(built.method(), Method::POST);
        assert_eq!(built.uri(), "/p");
        assert_eq!(built.headers()[http::header::HOST], "127.0.0.1:22021");
        let values: Vec<_> = built.headers().get_all("x-a").iter().collect();
        assert_eq!(values, ["1", "2"]);
        // HTTP/2: scheme and authority in the URI, no Host header.
        let h2 = build_request(&node, Request::post("/p", &b"abc"[..]).unwrap(), true).unwrap();
        assert_eq!(h2.uri(), "https://127.0.0.1:22021/p");
        assert_eq!(h2.version(), http::Version::HTTP_2);
        assert!(h2.headers().get(http::header::HOST).is_none());
    }

    #[test]
    fn retry_classification() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 1));
        let io = || Arc::new(std::io::Error::other("x")) as BoxError;
        assert!(TransportError::Connect { addr, source: io() }.is_retryable());
        assert!(TransportError::Tls { addr, source: io() }.is_retryable());
        assert!(
            TransportError::Timeout {
                addr,
                after: Duration::from_secs(1)
            }
            .is_retryable()
        );
        assert!(!TransportError::PinMismatch { addr }.is_retryable());
        assert!(!TransportError::BodyTooLarge { addr, limit: 1 }.is_retryable());
        assert!(!TransportError::InvalidRequest("x").is_retryable());
        assert_eq!(TransportError::PinMismatch { addr }.addr(), Some(addr));
    }
}
