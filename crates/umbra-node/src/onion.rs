//! Onion requests, node side (`shared/spec/onion.md` §3–7, §9, §11): the
//! client entry `POST /onion_req/v2` and the node-to-node relay
//! `POST /node/v1/onion`.
//!
//! Each endpoint peels one layer with the node's X25519 secret
//! ([`umbra_proto::onion::peel`]) and then, as the layer's routing JSON says:
//!
//! - **forwards** the inner layer to the next node, named by its Ed25519 key
//!   and looked up in the registry, as a signed node request over the pooled
//!   pinned HTTPS client, and returns that hop's status and body unchanged
//!   (§4.3, §6);
//! - **delivers**: runs the storage RPC (`Via::Onion`) and answers `200` with
//!   the reply sealed and padded under the destination-layer key (§4.1, §7.1,
//!   §9.3);
//! - **proxies** the whole decrypted container to a server's v4 lsrpc
//!   endpoint, refusing non-public addresses unless exempted (§4.2).
//!
//! Errors raised here are plaintext with the statuses of §11. A relay logs
//! at debug level at most, and only the previous hop's address and the next
//! hop's key.
//!
//! Per-node settings that the TOML configuration does not (yet) carry live in
//! [`OnionConfig`], set with [`set_config`]. Tests can watch what each node
//! saw with [`set_observer`].

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use umbra_crypto::Ed25519Public;
use umbra_proto::onion::{
    IncomingLayer, MAX_BODY_SIZE, NodeLayerSecret, OnionError, Peeled, Protocol, ProxyHost,
    ProxyRequest, RelayMessage, ReplyBody, check_resolved_addresses, peel_plaintext,
    seal_node_reply,
};
use umbra_proto::rpc::Via;
use umbra_proto::rpc::node_req::{NodeRequestAuth, PATH_ONION};
use umbra_proto::swarm::NodeRecord;
use umbra_transport::{
    ClientConfig, ClientIdentity, NodeClient, PeerNode, Request, TransportError,
};

use crate::fanout::addr_of;
use crate::http::TimedBytes;
use crate::peer::{authenticate, authenticate_connection};
use crate::rpc::{self, Reply};
use crate::state::{Node, NodeInner};

/// `X-Umbra-Epoch` (swarms.md §8.2) in the lower case `HeaderName` needs.
const EPOCH_HEADER: &str = "x-umbra-epoch";

/// The client entry path (§3).
pub const PATH_ENTRY: &str = "/onion_req/v2";

/// How long a relay waits for the next hop (§6.2).
pub const RELAY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a proxying node waits for the server (§4.2).
pub const PROXY_TIMEOUT: Duration = Duration::from_secs(25);

/// The largest body either endpoint accepts: the largest size bucket plus
/// room for the relay message's bencode framing.
pub const MAX_ONION_BODY: usize = MAX_BODY_SIZE + 4096;

/// The largest server reply a proxying node passes back.
const MAX_PROXY_REPLY: usize = MAX_BODY_SIZE + 4096;

/// Layers at least this large are decrypted off the async worker threads.
const BLOCKING_PEEL_BYTES: usize = 256 * 1024;

/// Onion settings of one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnionConfig {
    /// Addresses a proxy target may resolve to although they are not public
    /// (§4.2: test networks only, e.g. a devnet's file server). Default:
    /// none.
    pub proxy_exempt: Vec<IpAddr>,
    /// How long to wait for the next hop. Default: [`RELAY_TIMEOUT`].
    pub relay_timeout: Duration,
    /// How long to wait for a proxied server. Default: [`PROXY_TIMEOUT`].
    pub proxy_timeout: Duration,
}

impl Default for OnionConfig {
    fn default() -> Self {
        OnionConfig {
            proxy_exempt: Vec::new(),
            relay_timeout: RELAY_TIMEOUT,
            proxy_timeout: PROXY_TIMEOUT,
        }
    }
}

/// Which endpoint a layer arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /onion_req/v2` from a client.
    Entry,
    /// `POST /node/v1/onion` from an authenticated node.
    Relay,
}

/// What a node did with a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Relayed it to the next node.
    Forward,
    /// Was its destination.
    Deliver,
    /// Proxied it to a server.
    Proxy,
    /// Could not peel it (refused with `400`).
    Refused,
}

/// What one node saw of one onion request (for tests: [`set_observer`]).
#[derive(Clone, Debug)]
pub struct Observation {
    /// The observing node.
    pub node: Ed25519Public,
    /// The address the request came from (the previous hop or the client).
    pub from_addr: SocketAddr,
    /// The authenticated sending node, on the relay endpoint.
    pub from_node: Option<Ed25519Public>,
    /// The endpoint.
    pub endpoint: Endpoint,
    /// What the node did.
    pub role: Role,
    /// The next node's key, when forwarding.
    pub next_hop: Option<Ed25519Public>,
    /// The layer plaintext the node decrypted (empty when it could not).
    pub payload_seen: Vec<u8>,
}

/// Per-node state kept outside [`NodeInner`]: a node is identified by its
/// shared allocation, so entries die with the node.
struct Slot {
    node: Weak<NodeInner>,
    config: Arc<OnionConfig>,
    observer: Option<tokio::sync::mpsc::UnboundedSender<Observation>>,
    local: Local,
}

/// What the relay path needs of one node, built once per node: its X25519
/// key with the public half already derived, and the pooled client it relays
/// with.
#[derive(Clone)]
struct Local {
    key: Arc<NodeLayerSecret>,
    relay: NodeClient,
    /// Whether `relay` presents the node's client certificate, so that the
    /// next node authenticates the connection rather than each request.
    connection_auth: bool,
}

impl Local {
    fn new(node: &Node) -> Self {
        let identity = match ClientIdentity::new(&node.keys) {
            Ok(id) => Some(id),
            Err(e) => {
                tracing::warn!(error = %e, "no TLS client identity: onion relays will be signed per request");
                None
            }
        };
        Local {
            key: Arc::new(NodeLayerSecret::new(node.x25519.clone())),
            connection_auth: identity.is_some(),
            relay: NodeClient::new(ClientConfig {
                identity,
                ..relay_client_config()
            }),
        }
    }
}

/// Idle connections a relay would keep per next node over HTTP/1.1 (one per
/// request in flight). Relays speak HTTP/2 to their neighbours, which needs
/// a single connection per link; kept for a relay client set to HTTP/1.1.
pub const RELAY_IDLE_PER_NODE: usize = 64;

/// The relay client: HTTP/2, so that one connection per neighbour carries
/// every layer in flight on that link (no TLS handshake per layer, few
/// writes and TLS records per layer under load).
fn relay_client_config() -> ClientConfig {
    ClientConfig {
        max_idle_per_node: RELAY_IDLE_PER_NODE,
        http2: true,
        ..ClientConfig::default()
    }
}

static SLOTS: RwLock<Vec<Slot>> = RwLock::new(Vec::new());

fn with_slot(node: &Node, f: impl FnOnce(&mut Slot)) {
    let mut slots = SLOTS.write().unwrap_or_else(|p| p.into_inner());
    slots.retain(|s| s.node.strong_count() > 0);
    let ptr = Arc::as_ptr(&node.0);
    let i = match slots.iter().position(|s| s.node.as_ptr() == ptr) {
        Some(i) => i,
        None => {
            slots.push(Slot {
                node: Arc::downgrade(&node.0),
                config: default_config(),
                observer: None,
                local: Local::new(node),
            });
            slots.len() - 1
        }
    };
    if let Some(slot) = slots.get_mut(i) {
        f(slot);
    }
}

type ObserverTx = tokio::sync::mpsc::UnboundedSender<Observation>;

fn lookup(node: &Node) -> (Arc<OnionConfig>, Option<ObserverTx>, Local) {
    {
        let slots = SLOTS.read().unwrap_or_else(|p| p.into_inner());
        let ptr = Arc::as_ptr(&node.0);
        if let Some(s) = slots
            .iter()
            .find(|s| s.node.as_ptr() == ptr && s.node.strong_count() > 0)
        {
            return (s.config.clone(), s.observer.clone(), s.local.clone());
        }
    }
    // First layer of this node: create its slot.
    let mut out = None;
    with_slot(node, |s| {
        out = Some((s.config.clone(), s.observer.clone(), s.local.clone()));
    });
    out.unwrap_or_else(|| (default_config(), None, Local::new(node)))
}

fn default_config() -> Arc<OnionConfig> {
    static DEFAULT: std::sync::OnceLock<Arc<OnionConfig>> = std::sync::OnceLock::new();
    DEFAULT
        .get_or_init(|| Arc::new(OnionConfig::default()))
        .clone()
}

/// Sets the onion settings of `node` (until it is dropped).
pub fn set_config(node: &Node, config: OnionConfig) {
    with_slot(node, |s| s.config = Arc::new(config));
}

/// The onion settings of `node`.
pub fn config(node: &Node) -> Arc<OnionConfig> {
    lookup(node).0
}

/// Sends an [`Observation`] to `tx` for every layer `node` processes.
/// Meant for tests: observations carry decrypted plaintext.
pub fn set_observer(node: &Node, tx: tokio::sync::mpsc::UnboundedSender<Observation>) {
    with_slot(node, |s| s.observer = Some(tx));
}

/// Idle pooled connections from `node`'s relay client to `next` (for tests
/// and metrics: relays keep connections to their neighbours alive).
pub fn relay_idle_connections(node: &Node, next: &umbra_transport::NodeAddr) -> usize {
    lookup(node).2.relay.idle_connections(next)
}

/// Connections `node`'s relay client has opened so far, to any next node
/// (for tests: in steady state no relay opens a connection per layer).
pub fn relay_connections_opened(node: &Node) -> u64 {
    lookup(node).2.relay.connections_opened()
}

/// Stops sending observations for `node`.
pub fn clear_observer(node: &Node) {
    with_slot(node, |s| s.observer = None);
}

/// A plaintext response with a raw status code.
fn plain(status: u16, body: impl Into<String>) -> Response {
    let code = axum::http::StatusCode::from_u16(status)
        .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    (
        code,
        [(CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

/// A response with a raw status, body and optional content type, passed on
/// unchanged from a next hop or a server.
fn passthrough(status: u16, content_type: Option<HeaderValue>, body: Bytes) -> Response {
    let code =
        axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::BAD_GATEWAY);
    let mut resp = (code, body).into_response();
    if let Some(ct) = content_type {
        resp.headers_mut().insert(CONTENT_TYPE, ct);
    }
    resp
}

fn refuse(e: &OnionError) -> Response {
    plain(e.http_status(), e.http_body())
}

fn not_ready(node: &Node) -> Option<Response> {
    if node.registry().current().is_some() {
        return None;
    }
    Some(plain(
        503,
        format!("Snode not ready: {}", hex::encode(node.public().as_bytes())),
    ))
}

/// `POST /onion_req/v2`: a client's onion (§3), rate-limited per IP like
/// `/storage_rpc/v1`.
pub async fn entry(
    State(node): State<Node>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    TimedBytes(body): TimedBytes,
) -> Response {
    if !node.limiter.check(from.ip()) {
        node.metrics.request("rate_limited", 429);
        return plain(429, "rate limit reached");
    }
    if let Some(r) = not_ready(&node) {
        return r;
    }
    match IncomingLayer::from_entry(&body) {
        Ok(layer) => process(&node, layer, from, None, Endpoint::Entry).await,
        Err(e) => refuse(&e),
    }
}

/// `POST /node/v1/onion`: a layer relayed by the previous node (§6); only
/// registered nodes may call it. A node is recognised by the client
/// certificate of its connection (verified once, in the TLS handshake) or,
/// without one, by the signed headers of swarms.md §8.2 on each request.
pub async fn relay(
    State(node): State<Node>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    peer: Option<Extension<PeerNode>>,
    headers: HeaderMap,
    TimedBytes(body): TimedBytes,
) -> Response {
    let sender = match peer {
        Some(Extension(PeerNode(key))) => authenticate_connection(&node, &key, &headers).await,
        None => authenticate(&node, &headers, PATH_ONION, &body).await,
    };
    let sender = match sender {
        Ok(record) => record,
        Err(r) => return r,
    };
    if let Some(r) = not_ready(&node) {
        return r;
    }
    match IncomingLayer::from_relay(&body) {
        Ok(layer) => process(&node, layer, from, Some(sender.ed25519), Endpoint::Relay).await,
        Err(e) => refuse(&e),
    }
}

/// Peels `layer` with the node's key; with `want_plaintext`, also returns
/// the decrypted layer (for an observer). Large layers are decrypted on the
/// blocking pool; a small one costs about one X25519, less than handing it
/// to another thread and back.
async fn peel_layer(
    key: Arc<NodeLayerSecret>,
    layer: IncomingLayer,
    want_plaintext: bool,
) -> (Result<Peeled, OnionError>, Vec<u8>) {
    let work = move |key: &NodeLayerSecret, layer: &IncomingLayer| match layer.decrypt_with(key) {
        Err(e) => (Err(e), Vec::new()),
        Ok((plaintext, reply_key)) => {
            let seen = if want_plaintext {
                plaintext.clone()
            } else {
                Vec::new()
            };
            (peel_plaintext(layer, plaintext, reply_key), seen)
        }
    };
    if layer.ciphertext.len() < BLOCKING_PEEL_BYTES {
        return work(&key, &layer);
    }
    match tokio::task::spawn_blocking(move || work(&key, &layer)).await {
        Ok(out) => out,
        Err(_) => (Err(OnionError::DecryptFailed), Vec::new()),
    }
}

async fn process(
    node: &Node,
    layer: IncomingLayer,
    from: SocketAddr,
    from_node: Option<Ed25519Public>,
    endpoint: Endpoint,
) -> Response {
    let (config, observer, local) = lookup(node);
    let (peeled, payload_seen) = peel_layer(local.key.clone(), layer, observer.is_some()).await;
    if let Some(tx) = observer {
        let (role, next_hop) = match &peeled {
            Ok(Peeled::Forward {
                next_hop_ed25519, ..
            }) => (
                Role::Forward,
                Some(Ed25519Public::from_bytes(*next_hop_ed25519)),
            ),
            Ok(Peeled::Deliver { .. }) => (Role::Deliver, None),
            Ok(Peeled::Proxy { .. }) => (Role::Proxy, None),
            Err(_) => (Role::Refused, None),
        };
        let _ = tx.send(Observation {
            node: node.public(),
            from_addr: from,
            from_node,
            endpoint,
            role,
            next_hop,
            payload_seen,
        });
    }
    match peeled {
        Err(e) => refuse(&e),
        Ok(Peeled::Forward {
            next_hop_ed25519,
            message,
        }) => forward(node, &local, &config, from, next_hop_ed25519, message).await,
        Ok(Peeled::Deliver {
            request,
            options,
            reply_key,
        }) => {
            let (status, body) = match rpc::handle_body(node, &request, Via::Onion).await {
                Reply::Json(s, v) => (s.code(), ReplyBody::Json(v)),
                Reply::Text(s, t) => (s.code(), ReplyBody::Text(t)),
            };
            let random = umbra_crypto::random_bytes::<24>();
            match seal_node_reply(&reply_key, status, &body, options, &random) {
                Ok(sealed) => {
                    let ct = if options.base64 {
                        "text/plain; charset=utf-8"
                    } else {
                        "application/octet-stream"
                    };
                    ([(CONTENT_TYPE, ct)], sealed).into_response()
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot seal an onion reply");
                    plain(500, "cannot seal the reply")
                }
            }
        }
        Ok(Peeled::Proxy { request, body }) => proxy(&config, &request, body).await,
    }
}

/// Relays `message` to the node whose Ed25519 key is `next` (§6.2).
async fn forward(
    node: &Node,
    local: &Local,
    config: &OnionConfig,
    from: SocketAddr,
    next: [u8; 32],
    message: RelayMessage,
) -> Response {
    let key = Ed25519Public::from_bytes(next);
    let record = node.registry().known_node(&key);
    let Some(record) = record else {
        return plain(502, format!("Next node not found: {}", hex::encode(next)));
    };
    tracing::debug!(prev = %from, next = %hex::encode(next), "relaying an onion layer");
    node.metrics.onion_hops.inc();
    match relay_post(node, local, &record, message.encode(), config.relay_timeout).await {
        Ok(resp) => passthrough(
            resp.status.as_u16(),
            resp.headers.get(CONTENT_TYPE).cloned(),
            resp.body,
        ),
        Err(TransportError::Timeout { .. }) => plain(504, "Request time out"),
        Err(e) => {
            let next_hex = hex::encode(next);
            tracing::debug!(next = %next_hex, error = %e, "next hop unreachable");
            plain(502, format!("Next node unreachable: {next_hex}"))
        }
    }
}

/// POSTs a relay message to the next node's `/node/v1/onion` over the
/// node's pooled relay client. The connection carries the node's client
/// certificate, so the request only names this node's epoch
/// (`X-Umbra-Epoch`, swarms.md §8.3 rule 1); without a certificate it is a
/// signed node request (swarms.md §8.2).
async fn relay_post(
    node: &Node,
    local: &Local,
    peer: &NodeRecord,
    body: Vec<u8>,
    timeout: Duration,
) -> Result<umbra_transport::Response, TransportError> {
    let epoch = node.registry().epoch();
    if local.connection_auth {
        let req = Request::post(PATH_ONION, Bytes::from(body))?
            .timeout(timeout)
            .header(
                axum::http::HeaderName::from_static(EPOCH_HEADER),
                HeaderValue::from(epoch),
            );
        return local.relay.send(&addr_of(peer), req).await;
    }
    let auth = NodeRequestAuth::sign(&node.keys, "POST", PATH_ONION, epoch, node.now_ms(), &body);
    let mut req = Request::post(PATH_ONION, Bytes::from(body))?.timeout(timeout);
    for (name, value) in auth.headers() {
        if let (Ok(n), Ok(v)) = (
            axum::http::HeaderName::try_from(name),
            HeaderValue::try_from(value),
        ) {
            req = req.header(n, v);
        }
    }
    local.relay.send(&addr_of(peer), req).await
}

/// Why a proxied request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The host resolves to a refused address (or to none): `400`.
    #[error(transparent)]
    Refused(#[from] OnionError),
    /// Name resolution failed: `502`.
    #[error("cannot resolve the server's host")]
    Resolve(#[source] std::io::Error),
    /// No resolved address accepted a connection: `502`.
    #[error("cannot connect to the server")]
    Connect(#[source] std::io::Error),
    /// The TLS handshake (certificate validation included) failed: `502`.
    #[error("TLS with the server failed")]
    Tls(#[source] std::io::Error),
    /// The HTTP exchange failed: `502`.
    #[error("HTTP exchange with the server failed")]
    Http(#[source] hyper::Error),
    /// The server's reply exceeds the largest bucket: `502`.
    #[error("the server's reply is too large")]
    TooLarge,
    /// The request could not be assembled (a local bug): `500`.
    #[error("cannot build the proxied request")]
    Request,
}

/// A server's answer to a proxied request.
#[derive(Debug)]
pub struct ProxyResponse {
    /// Its HTTP status.
    pub status: u16,
    /// Its `Content-Type`, if any.
    pub content_type: Option<HeaderValue>,
    /// Its body.
    pub body: Bytes,
}

/// Proxies a decrypted container to a server (§4.2) and returns the server's
/// status and body unchanged, or a plaintext error.
async fn proxy(config: &OnionConfig, request: &ProxyRequest, body: Vec<u8>) -> Response {
    let send = proxy_post(request, body, &config.proxy_exempt);
    match tokio::time::timeout(config.proxy_timeout, send).await {
        Err(_) => plain(504, "Server timed out"),
        Ok(Ok(r)) => passthrough(r.status, r.content_type, r.body),
        Ok(Err(ProxyError::Refused(e))) => refuse(&e),
        Ok(Err(ProxyError::Request)) => plain(500, "cannot build the proxied request"),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "proxied server unreachable");
            plain(502, "Server unreachable")
        }
    }
}

/// POSTs `body` to `request.url()`, connecting only to resolved addresses
/// that pass [`check_resolved_addresses`] with `exempt` (no timeout: the
/// caller applies one).
pub async fn proxy_post(
    request: &ProxyRequest,
    body: Vec<u8>,
    exempt: &[IpAddr],
) -> Result<ProxyResponse, ProxyError> {
    let port = request.port;
    let resolved: Vec<IpAddr> = match &request.host {
        ProxyHost::Ipv4(ip) => vec![IpAddr::V4(*ip)],
        ProxyHost::Name(name) => tokio::net::lookup_host((name.as_str(), port))
            .await
            .map_err(ProxyError::Resolve)?
            .map(|a| a.ip())
            .collect(),
    };
    let allowed = check_resolved_addresses(&resolved, exempt)?;
    let mut last = None;
    let mut tcp = None;
    for ip in allowed {
        match tokio::net::TcpStream::connect((ip, port)).await {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let tcp = tcp.ok_or_else(|| {
        ProxyError::Connect(last.unwrap_or_else(|| std::io::Error::other("no address")))
    })?;
    let _ = tcp.set_nodelay(true);
    let host = if port == request.protocol.default_port() {
        request.host.to_string()
    } else {
        format!("{}:{port}", request.host)
    };
    let req = http::Request::builder()
        .method(http::Method::POST)
        .uri(request.target.as_str())
        .header(http::header::HOST, host)
        .header(http::header::CONTENT_TYPE, "application/octet-stream")
        .body(Full::new(Bytes::from(body)))
        .map_err(|_| ProxyError::Request)?;
    match request.protocol {
        Protocol::Http => exchange(TokioIo::new(tcp), req).await,
        Protocol::Https => {
            let name = match &request.host {
                ProxyHost::Ipv4(ip) => ServerName::IpAddress(IpAddr::V4(*ip).into()),
                ProxyHost::Name(n) => ServerName::try_from(n.clone()).map_err(|_| {
                    ProxyError::Refused(OnionError::InvalidUrl("host is not a server name"))
                })?,
            };
            let tls = tokio_rustls::TlsConnector::from(web_tls()?)
                .connect(name, tcp)
                .await
                .map_err(ProxyError::Tls)?;
            exchange(TokioIo::new(tls), req).await
        }
    }
}

/// The client TLS configuration for servers: web trust roots (Mozilla's
/// list), default protocol versions, ALPN `http/1.1`.
fn web_tls() -> Result<Arc<rustls::ClientConfig>, ProxyError> {
    static CONFIG: std::sync::OnceLock<Option<Arc<rustls::ClientConfig>>> =
        std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            let mut c =
                rustls::ClientConfig::builder_with_provider(umbra_transport::tls::provider())
                    .with_safe_default_protocol_versions()
                    .ok()?
                    .with_root_certificates(roots)
                    .with_no_client_auth();
            c.alpn_protocols = vec![b"http/1.1".to_vec()];
            Some(Arc::new(c))
        })
        .clone()
        .ok_or(ProxyError::Request)
}

/// One HTTP/1.1 request on a fresh connection; reads the whole response.
async fn exchange<T>(io: T, req: http::Request<Full<Bytes>>) -> Result<ProxyResponse, ProxyError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(ProxyError::Http)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let resp = sender.send_request(req).await.map_err(ProxyError::Http)?;
    let (parts, mut body) = resp.into_parts();
    let mut buf = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(ProxyError::Http)?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > MAX_PROXY_REPLY {
                return Err(ProxyError::TooLarge);
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(ProxyResponse {
        status: parts.status.as_u16(),
        content_type: parts.headers.get(CONTENT_TYPE).cloned(),
        body: Bytes::from(buf),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = OnionConfig::default();
        assert!(c.proxy_exempt.is_empty());
        assert_eq!(c.relay_timeout, Duration::from_secs(30));
        assert_eq!(c.proxy_timeout, Duration::from_secs(25));
    }

    #[test]
    fn error_bodies() {
        let r = refuse(&OnionError::DecryptFailed);
        assert_eq!(r.status(), 400);
        let r = refuse(&OnionError::HopLimitExceeded(16));
        assert_eq!(r.status(), 400);
        let r = plain(1000, "x");
        assert_eq!(r.status(), 500);
    }

    #[tokio::test]
    async fn proxy_refuses_private_addresses() {
        let req = ProxyRequest::new("127.0.0.1", "/oxen/v4/lsrpc", "http", 9).expect("request");
        let e = proxy_post(&req, b"x".to_vec(), &[]).await;
        assert!(
            matches!(
                e,
                Err(ProxyError::Refused(OnionError::ForbiddenAddress(ip))) if ip.is_loopback()
            ),
            "{e:?}"
        );
        let req = ProxyRequest::new("10.1.2.3", "/oxen/v4/lsrpc", "https", 443).expect("request");
        assert!(matches!(
            proxy_post(&req, Vec::new(), &[]).await,
            Err(ProxyError::Refused(OnionError::ForbiddenAddress(_)))
        ));
    }

    #[tokio::test]
    async fn exempt_address_is_dialled() {
        // A closed port on an exempted loopback address: the refusal is now
        // a connection failure (502), not an address refusal (400).
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        drop(l);
        let req = ProxyRequest::new("127.0.0.1", "/oxen/v4/lsrpc", "http", port).expect("request");
        let lo: IpAddr = "127.0.0.1".parse().expect("ip");
        assert!(matches!(
            proxy_post(&req, Vec::new(), &[lo]).await,
            Err(ProxyError::Connect(_))
        ));
    }

    #[test]
    fn web_tls_builds() {
        assert!(web_tls().is_ok());
    }
}
