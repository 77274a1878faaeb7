//! Serving an axum [`Router`] over HTTPS (the node's public port) or plain
//! HTTP (the loopback admin/metrics port): `shared/spec/storage-rpc.md` §1.1
//! and §1.3, `shared/spec/swarms.md` §8.
//!
//! Each accepted TCP connection gets its own task:
//! 1. the TLS handshake, bounded by [`Server::handshake_timeout`] so that a
//!    client that never finishes it cannot hold the task;
//! 2. HTTP/1.1 with keep-alive, or HTTP/2 when the client speaks it
//!    (hyper-util's auto builder). An HTTP/1.1 connection that sends no
//!    complete request head within [`Server::header_read_timeout`], including
//!    while idle between requests, is closed.
//!
//! Handlers see the peer address through axum's
//! [`ConnectInfo<SocketAddr>`](axum::extract::ConnectInfo) extractor, and,
//! when the peer is a node that presented its certificate
//! ([`crate::tls::ClientIdentity`]), its verified Ed25519 key as a
//! [`PeerNode`] request extension.
//!
//! When the shutdown future resolves, the listener is closed, connections
//! still in their handshake are dropped, idle connections are closed and
//! in-flight requests run to completion; after [`Server::drain_timeout`] the
//! remaining connections are cut. The serve call returns once every
//! connection task has ended.
//!
//! At most [`Server::max_connections`] connections are served at once, and at
//! most [`Server::max_connections_per_ip`] from one IP address: one address
//! opening connections cannot take every slot (connections beyond the
//! per-address cap are closed at once).
//!
//! Request bodies are not limited here: the router decides (axum's
//! `DefaultBodyLimit`; the storage RPC allows 10 MiB, §1.1).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;
use tracing::{debug, warn};

/// The Ed25519 key of the node at the other end of a TLS connection: it
/// presented a certificate for this key and proved in the handshake that it
/// holds the key ([`crate::tls::NodeClientVerifier`]). Inserted into every
/// request of that connection; absent for clients (and plain HTTP). Whether
/// the key belongs to a registered node is the handler's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerNode(pub umbra_crypto::Ed25519Public);

/// A failure that stops [`Server`] from serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The listener's local address could not be read.
    #[error("reading the listener's local address failed")]
    LocalAddr(#[source] std::io::Error),
    /// [`Server::serve_plain`] was given a listener that is not bound to a
    /// loopback address; plain HTTP is only for the local admin port.
    #[error("plain HTTP must listen on a loopback address, not {0}")]
    NotLoopback(SocketAddr),
}

/// Serves `router` over TLS on `listener` with default [`Server`] settings
/// until `shutdown` resolves, then shuts down gracefully.
pub async fn serve(
    router: Router,
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    Server::new(router).serve_tls(listener, tls, shutdown).await
}

/// An HTTP(S) server for one axum [`Router`], with its limits.
#[derive(Clone, Debug)]
pub struct Server {
    router: Router,
    handshake_timeout: Duration,
    header_read_timeout: Duration,
    drain_timeout: Duration,
    max_connections: usize,
    max_connections_per_ip: usize,
    http2: bool,
}

impl Server {
    /// A server for `router` with default limits: 10 s handshake timeout,
    /// 30 s header-read (and HTTP/1.1 idle) timeout, 30 s drain timeout,
    /// 4096 concurrent connections, HTTP/2 enabled.
    pub fn new(router: Router) -> Self {
        Self {
            router,
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(30),
            max_connections: 4096,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            http2: true,
        }
    }

    /// Longest time a client may take to complete the TLS handshake.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Longest time an HTTP/1.1 connection may take to deliver a complete
    /// request head, counted from the end of the previous response (so it is
    /// also the keep-alive idle timeout).
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// How long shutdown waits for in-flight requests before cutting their
    /// connections.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// Maximum number of connections from one IP address served at once (at
    /// least 1; default [`DEFAULT_MAX_CONNECTIONS_PER_IP`]). A connection
    /// beyond it is closed as soon as it is accepted, so one address cannot
    /// take every slot of [`Server::max_connections`].
    pub fn max_connections_per_ip(mut self, max: usize) -> Self {
        self.max_connections_per_ip = max.max(1);
        self
    }

    /// Maximum number of connections served at once (at least 1); further
    /// connections wait in the kernel's accept queue.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// Whether HTTP/2 is offered besides HTTP/1.1 (default: yes).
    pub fn http2(mut self, enabled: bool) -> Self {
        self.http2 = enabled;
        self
    }

    /// Serves HTTPS on `listener` until `shutdown` resolves, then shuts down
    /// gracefully (see the module docs).
    pub async fn serve_tls(
        self,
        listener: TcpListener,
        tls: Arc<rustls::ServerConfig>,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServeError> {
        let local = listener.local_addr().map_err(ServeError::LocalAddr)?;
        debug!(%local, "serving HTTPS");
        self.run(listener, Some(TlsAcceptor::from(tls)), shutdown)
            .await;
        Ok(())
    }

    /// Serves plain HTTP on `listener`, which must be bound to a loopback
    /// address (the admin/metrics port), until `shutdown` resolves.
    pub async fn serve_plain(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServeError> {
        let local = listener.local_addr().map_err(ServeError::LocalAddr)?;
        if !local.ip().is_loopback() {
            return Err(ServeError::NotLoopback(local));
        }
        debug!(%local, "serving plain HTTP");
        self.run(listener, None, shutdown).await;
        Ok(())
    }

    async fn run(
        self,
        listener: TcpListener,
        tls: Option<TlsAcceptor>,
        shutdown: impl Future<Output = ()> + Send,
    ) {
        let settings = Arc::new(self);
        let (stop_tx, stop_rx) = watch::channel(false);
        let slots = Arc::new(Semaphore::new(settings.max_connections));
        let per_ip = PerIp::default();
        let mut tasks = JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);

        loop {
            while tasks.try_join_next().is_some() {}
            let permit = tokio::select! {
                biased;
                () = &mut shutdown => break,
                permit = slots.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    // The semaphore is never closed.
                    Err(_) => break,
                },
            };
            let (tcp, peer) = tokio::select! {
                biased;
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors, a connection reset before
                        // accept, …: back off briefly instead of spinning.
                        warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let Some(ip_slot) = per_ip.take(peer.ip(), settings.max_connections_per_ip) else {
                debug!(%peer, "too many connections from this address: closed");
                continue;
            };
            let settings = settings.clone();
            let tls = tls.clone();
            let stop = stop_rx.clone();
            tasks.spawn(async move {
                let _permit = permit;
                let _ip_slot = ip_slot;
                settings.connection(tcp, peer, tls, stop).await;
            });
        }

        drop(listener);
        stop_tx.send_replace(true);
        let drained = tokio::time::timeout(settings.drain_timeout, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            debug!(
                remaining = tasks.len(),
                "drain timeout: closing connections"
            );
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
    }

    async fn connection(
        &self,
        tcp: TcpStream,
        peer: SocketAddr,
        tls: Option<TlsAcceptor>,
        mut stop: watch::Receiver<bool>,
    ) {
        // Small request/response exchanges: send each write at once.
        let _ = tcp.set_nodelay(true);
        let Some(acceptor) = tls else {
            return self.http(tcp, peer, None, stop).await;
        };
        let handshake = tokio::time::timeout(self.handshake_timeout, acceptor.accept(tcp));
        let stream = tokio::select! {
            result = handshake => match result {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    debug!(%peer, %error, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    debug!(%peer, "TLS handshake timed out");
                    return;
                }
            },
            () = stopping(&mut stop) => return,
        };
        let node = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|cert| crate::tls::certificate_ed25519_key(cert).ok())
            .map(PeerNode);
        self.http(stream, peer, node, stop).await;
    }

    async fn http<I>(
        &self,
        io: I,
        peer: SocketAddr,
        node: Option<PeerNode>,
        mut stop: watch::Receiver<bool>,
    ) where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let router = self.router.clone();
        let service = hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            if let Some(node) = node {
                request.extensions_mut().insert(node);
            }
            router.clone().oneshot(request)
        });

        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout)
            .keep_alive(true);
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(Some(Duration::from_secs(30)))
            .keep_alive_timeout(Duration::from_secs(20))
            .max_concurrent_streams(128)
            .initial_stream_window_size(crate::client::H2_STREAM_WINDOW)
            .initial_connection_window_size(crate::client::H2_CONNECTION_WINDOW);
        if !self.http2 {
            builder = builder.http1_only();
        }

        let connection = builder.serve_connection(TokioIo::new(io), service);
        let mut connection = std::pin::pin!(connection);
        let result = tokio::select! {
            result = connection.as_mut() => result,
            () = stopping(&mut stop) => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        if let Err(error) = result {
            debug!(%peer, %error, "connection ended with an error");
        }
    }
}

/// Default of [`Server::max_connections_per_ip`]: an eighth of the default
/// [`Server::max_connections`]. Clients need a handful of connections, a
/// node one per neighbour; devnets and tests put many clients on one
/// loopback address, hence the margin.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 512;

/// Connections open per peer address.
#[derive(Clone, Default)]
struct PerIp(Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>);

/// One connection counted in [`PerIp`]; uncounted when dropped.
struct IpSlot {
    per_ip: PerIp,
    ip: std::net::IpAddr,
}

impl PerIp {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<std::net::IpAddr, usize>> {
        // The map holds no invariant a panic could break half-way.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a connection from `ip`, unless `max` are open already.
    fn take(&self, ip: std::net::IpAddr, max: usize) -> Option<IpSlot> {
        let mut map = self.lock();
        let open = map.entry(ip).or_insert(0);
        if *open >= max {
            return None;
        }
        *open += 1;
        Some(IpSlot {
            per_ip: self.clone(),
            ip,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut map = self.per_ip.lock();
        if let Some(open) = map.get_mut(&self.ip) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// Resolves once shutdown has been signalled (or the server is gone).
async fn stopping(stop: &mut watch::Receiver<bool>) {
    // An error means the sender was dropped, which also means "stop".
    let _ = stop.wait_for(|stopping| *stopping).await;
}
