//! `proxy_fetch` (`storage-rpc.md` §9.14): the node fetches a URL for a
//! client's link preview (`messages.md` §16), so the linked site sees the
//! node's address and never the client's.
//!
//! This module owns the whole fetch: URL rules (rule 1), name resolution and
//! the address filter (rule 2, with the test-network exemptions), the `GET`
//! itself over reqwest + rustls with each redirect hop re-checked (rule 3),
//! the status, type and size rules (4, 5), the 10 s deadline (6) and the
//! limit of 8 fetches at once per node (7). Every failure is a
//! [`FetchError`] whose [`FetchError::status`] is the spec's status.
//!
//! Each hop is resolved here, its addresses are checked, and the request is
//! pinned to exactly those addresses (`resolve_to_addrs`); the client's own
//! resolver refuses every name, so no second lookup can happen (DNS
//! rebinding). Redirects are followed here, not by reqwest, so that every
//! hop goes through the same checks.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use reqwest::Url;
use rustls::pki_types::CertificateDer;
use umbra_proto::onion::address_allowed;
use umbra_proto::rpc::StatusCode;
use umbra_proto::rpc::encoding::Base64Bytes;
use umbra_proto::rpc::types::{ProxyAccept, ProxyFetchParams, ProxyFetchResponse};

use crate::rpc::Reply;
use crate::state::{Node, NodeInner};

/// The `User-Agent` every fetch sends (rule 3).
pub const USER_AGENT: &str = "WhatsApp";
/// The most redirects followed (rule 3).
pub const MAX_REDIRECTS: usize = 5;
/// HTML bodies are cut off after this many bytes (rule 5).
pub const MAX_HTML_BYTES: usize = 524_288;
/// Larger image bodies are refused with `413` (rule 5).
pub const MAX_IMAGE_BYTES: usize = 1_048_576;
/// The deadline of a whole fetch, redirects included (rule 6).
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Fetches one node runs at once (rule 7).
pub const MAX_CONCURRENT_FETCHES: usize = 8;
/// The longest URL accepted (§9.14 params).
pub const MAX_URL_CHARS: usize = 2048;

/// What a node allows `proxy_fetch` to reach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchPolicy {
    /// Test networks only: addresses exempt from the address filter; for a
    /// host whose addresses are all exempt, `http` and any port are allowed
    /// too, and so is an IP literal naming such an address (rule 2).
    pub exempt: Vec<IpAddr>,
    /// Test networks only: extra trusted certificate authorities (DER).
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// The deadline of a whole fetch. Default [`FETCH_TIMEOUT`].
    pub timeout: Duration,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        FetchPolicy {
            exempt: Vec::new(),
            extra_roots: Vec::new(),
            timeout: FETCH_TIMEOUT,
        }
    }
}

/// Why a fetch failed, with the status the client gets.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The URL breaks rule 1 (or a redirect's target does): `400`.
    #[error("proxy_fetch url refused: {0}")]
    BadUrl(String),
    /// The host resolves to a refused address (rule 2): `400`.
    #[error("proxy_fetch target refused: {host} resolves to a non-public address")]
    ForbiddenAddress {
        /// The host name or literal.
        host: String,
    },
    /// The name did not resolve: `502`.
    #[error("cannot resolve {host}")]
    Resolve {
        /// The host name.
        host: String,
    },
    /// Connecting, TLS or the HTTP exchange failed: `502`.
    #[error("upstream connection failed: {0}")]
    Connect(String),
    /// More than [`MAX_REDIRECTS`] redirects, or a redirect without a
    /// usable `Location`: `502`.
    #[error("upstream redirect refused: {0}")]
    Redirect(String),
    /// The final response was not `200` (rule 4): `502`.
    #[error("upstream status {0}")]
    UpstreamStatus(u16),
    /// The Content-Type is not allowed for `accept` (rule 5): `415`.
    #[error("content type {0:?} not allowed")]
    ContentType(String),
    /// An image body over [`MAX_IMAGE_BYTES`] (rule 5): `413`.
    #[error("image larger than {MAX_IMAGE_BYTES} bytes")]
    TooLarge,
    /// The deadline passed (rule 6): `504`.
    #[error("fetch timed out after {} s", .0.as_secs())]
    Timeout(Duration),
    /// [`MAX_CONCURRENT_FETCHES`] fetches are already running (rule 7): `429`.
    #[error("too many fetches in progress")]
    Busy,
    /// The HTTP client could not be built (a local fault): `500`.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

impl FetchError {
    /// The storage RPC status of this failure (`storage-rpc.md` §9.14, §10).
    pub fn status(&self) -> StatusCode {
        match self {
            FetchError::BadUrl(_) | FetchError::ForbiddenAddress { .. } => StatusCode::BadRequest,
            FetchError::Resolve { .. }
            | FetchError::Connect(_)
            | FetchError::Redirect(_)
            | FetchError::UpstreamStatus(_) => StatusCode::BadGateway,
            FetchError::ContentType(_) => StatusCode::UnsupportedMediaType,
            FetchError::TooLarge => StatusCode::PayloadTooLarge,
            FetchError::Timeout(_) => StatusCode::GatewayTimeout,
            FetchError::Busy => StatusCode::TooManyRequests,
            FetchError::Client(_) => StatusCode::InternalServerError,
        }
    }
}

/// A successful fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The final URL after redirects.
    pub url: String,
    /// The response's Content-Type.
    pub content_type: String,
    /// The body (HTML cut at [`MAX_HTML_BYTES`]).
    pub body: Vec<u8>,
    /// Whether an HTML body was cut off.
    pub truncated: bool,
}

/// Per-node state kept outside [`NodeInner`] (as in [`crate::onion`]).
struct Slot {
    node: Weak<NodeInner>,
    policy: Option<Arc<FetchPolicy>>,
    running: Arc<tokio::sync::Semaphore>,
}

static SLOTS: RwLock<Vec<Slot>> = RwLock::new(Vec::new());

fn slot(node: &Node) -> (Option<Arc<FetchPolicy>>, Arc<tokio::sync::Semaphore>) {
    let ptr = Arc::as_ptr(&node.0);
    {
        let slots = SLOTS.read().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = slots
            .iter()
            .find(|s| s.node.as_ptr() == ptr && s.node.strong_count() > 0)
        {
            return (s.policy.clone(), s.running.clone());
        }
    }
    let mut slots = SLOTS.write().unwrap_or_else(|p| p.into_inner());
    slots.retain(|s| s.node.strong_count() > 0);
    if let Some(s) = slots.iter().find(|s| s.node.as_ptr() == ptr) {
        return (s.policy.clone(), s.running.clone());
    }
    let running = Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_FETCHES));
    slots.push(Slot {
        node: Arc::downgrade(&node.0),
        policy: None,
        running: running.clone(),
    });
    (None, running)
}

/// Sets the fetch policy of `node` (until it is dropped). Without one, a
/// node uses the default policy with its onion proxy exemptions
/// (`onion_proxy_exempt` in the configuration).
pub fn set_policy(node: &Node, policy: FetchPolicy) {
    let _ = slot(node);
    let mut slots = SLOTS.write().unwrap_or_else(|p| p.into_inner());
    let ptr = Arc::as_ptr(&node.0);
    if let Some(s) = slots.iter_mut().find(|s| s.node.as_ptr() == ptr) {
        s.policy = Some(Arc::new(policy));
    }
}

/// The fetch policy of `node`.
pub fn policy(node: &Node) -> Arc<FetchPolicy> {
    slot(node).0.unwrap_or_else(|| {
        Arc::new(FetchPolicy {
            exempt: crate::onion::config(node).proxy_exempt.clone(),
            ..FetchPolicy::default()
        })
    })
}

/// Handles a `proxy_fetch` that arrived as an onion destination: runs the
/// fetch under the node's policy and concurrency limit and builds the
/// §9.14 result or the error reply.
pub async fn handle(node: &Node, params: &ProxyFetchParams) -> Reply {
    let (_, running) = slot(node);
    let Ok(_permit) = running.try_acquire() else {
        return error_reply(&FetchError::Busy);
    };
    let policy = policy(node);
    match fetch(&params.url, params.accept, &policy).await {
        Ok(f) => match serde_json::to_value(ProxyFetchResponse {
            status: 200,
            url: f.url,
            content_type: f.content_type,
            data: Base64Bytes(f.body),
            truncated: f.truncated,
            t: node.now_ms(),
        }) {
            Ok(v) => Reply::Json(StatusCode::Ok, v),
            Err(e) => error_reply(&FetchError::Client(format!("cannot encode result: {e}"))),
        },
        Err(e) => {
            tracing::debug!(status = e.status().code(), "proxy_fetch failed");
            error_reply(&e)
        }
    }
}

/// Handles a `proxy_fetch` whose URL failed the protocol's strict rule 1
/// check (`refused`): on a node with exempt addresses (test networks only)
/// the URL may name one of them with `http`, another port or an IP
/// literal, which [`fetch`] checks itself; elsewhere the refusal stands.
pub async fn handle_exempt(
    node: &Node,
    params: &serde_json::Value,
    refused: umbra_proto::rpc::RpcError,
) -> Reply {
    if policy(node).exempt.is_empty() {
        return refused.into();
    }
    match serde_json::from_value::<ProxyFetchParams>(params.clone()) {
        Ok(p) => handle(node, &p).await,
        Err(_) => refused.into(),
    }
}

fn error_reply(e: &FetchError) -> Reply {
    Reply::Text(e.status(), e.to_string())
}

/// Fetches `url` under `policy` (rules 1–6; the caller applies rule 7).
pub async fn fetch(
    url: &str,
    accept: ProxyAccept,
    policy: &FetchPolicy,
) -> Result<Fetched, FetchError> {
    match tokio::time::timeout(policy.timeout, fetch_inner(url, accept, policy)).await {
        Ok(r) => r,
        Err(_) => Err(FetchError::Timeout(policy.timeout)),
    }
}

async fn fetch_inner(
    url: &str,
    accept: ProxyAccept,
    policy: &FetchPolicy,
) -> Result<Fetched, FetchError> {
    if url.chars().count() > MAX_URL_CHARS {
        return Err(FetchError::BadUrl(format!(
            "longer than {MAX_URL_CHARS} characters"
        )));
    }
    let mut current = Url::parse(url).map_err(|e| FetchError::BadUrl(e.to_string()))?;
    let tls = tls_config(policy)?;
    for hop in 0..=MAX_REDIRECTS {
        let target = check_hop(&current, policy).await?;
        let response = get(&current, &target, tls.clone()).await?;
        let status = response.status();
        if status.is_redirection() {
            if hop == MAX_REDIRECTS {
                return Err(FetchError::Redirect(format!(
                    "more than {MAX_REDIRECTS} redirects"
                )));
            }
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| FetchError::Redirect(format!("{status} without a Location")))?;
            current = current
                .join(location)
                .map_err(|e| FetchError::Redirect(format!("bad Location: {e}")))?;
            continue;
        }
        if status != reqwest::StatusCode::OK {
            return Err(FetchError::UpstreamStatus(status.as_u16()));
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        if !accept.allows(&content_type) {
            return Err(FetchError::ContentType(content_type));
        }
        let (body, truncated) = read_body(response, accept).await?;
        return Ok(Fetched {
            url: current.to_string(),
            content_type,
            body,
            truncated,
        });
    }
    Err(FetchError::Redirect(format!(
        "more than {MAX_REDIRECTS} redirects"
    )))
}

/// Where one hop may connect: the host to pin and the checked addresses
/// (empty for an IP literal, which needs no lookup).
struct Target {
    host: String,
    addrs: Vec<SocketAddr>,
}

/// Rules 1 and 2 for one hop: scheme, port, host kind, and the resolved
/// addresses.
async fn check_hop(url: &Url, policy: &FetchPolicy) -> Result<Target, FetchError> {
    let bad = |why: &str| FetchError::BadUrl(why.to_string());
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("user info is not allowed"));
    }
    let scheme = url.scheme();
    if scheme != "https" && scheme != "http" {
        return Err(bad("the scheme must be https"));
    }
    let port = url.port_or_known_default().ok_or_else(|| bad("no port"))?;
    let host_str = url.host_str().ok_or_else(|| bad("no host"))?;
    let literal_ip = match host_str.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6),
        None => host_str.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4),
    };
    let literal = literal_ip.is_some() || host_str.starts_with('[');
    let (host, ips) = match literal_ip {
        Some(ip) => (host_str.to_string(), vec![ip]),
        None if literal => return Err(bad("bad IP literal")),
        None => {
            let name = host_str.to_ascii_lowercase();
            let resolved: Vec<IpAddr> = tokio::net::lookup_host((name.as_str(), port))
                .await
                .map_err(|_| FetchError::Resolve { host: name.clone() })?
                .map(|a| a.ip())
                .collect();
            if resolved.is_empty() {
                return Err(FetchError::Resolve { host: name });
            }
            (name, resolved)
        }
    };
    let all_exempt = ips.iter().all(|ip| policy.exempt.contains(ip));
    if !all_exempt {
        // Rule 1 as written: https, port 443, a DNS name.
        if scheme != "https" {
            return Err(bad("the scheme must be https"));
        }
        if port != 443 {
            return Err(bad("the port must be 443"));
        }
        if literal {
            return Err(bad("IP literals are not allowed"));
        }
        // Rule 2: every address must be public.
        if ips.iter().any(|ip| !address_allowed(*ip)) {
            return Err(FetchError::ForbiddenAddress { host });
        }
    }
    let addrs = if literal {
        Vec::new()
    } else {
        ips.into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect()
    };
    Ok(Target { host, addrs })
}

/// A resolver that refuses every name: all hops are pinned with
/// `resolve_to_addrs`, so reqwest never needs to resolve anything itself.
struct NoLookup;

impl reqwest::dns::Resolve for NoLookup {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            Err::<reqwest::dns::Addrs, _>(
                format!("{host} was not checked; refusing to resolve it").into(),
            )
        })
    }
}

/// One `GET` to `url`, connecting only to `target`'s checked addresses.
async fn get(
    url: &Url,
    target: &Target,
    tls: rustls::ClientConfig,
) -> Result<reqwest::Response, FetchError> {
    let mut builder = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .referer(false)
        .no_proxy()
        .http1_only()
        .user_agent(USER_AGENT)
        .pool_max_idle_per_host(0)
        .dns_resolver(Arc::new(NoLookup));
    if !target.addrs.is_empty() {
        builder = builder.resolve_to_addrs(&target.host, &target.addrs);
    }
    let client = builder
        .build()
        .map_err(|e| FetchError::Client(e.to_string()))?;
    client
        .get(url.clone())
        .send()
        .await
        .map_err(|e| FetchError::Connect(error_chain(&e)))
}

/// An error and its sources on one line (reqwest's own text is terse).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// Reads the body under rule 5's limits.
async fn read_body(
    mut response: reqwest::Response,
    accept: ProxyAccept,
) -> Result<(Vec<u8>, bool), FetchError> {
    let cap = match accept {
        ProxyAccept::Html => MAX_HTML_BYTES,
        ProxyAccept::Image => MAX_IMAGE_BYTES,
    };
    if accept == ProxyAccept::Image
        && response
            .content_length()
            .is_some_and(|n| n > MAX_IMAGE_BYTES as u64)
    {
        return Err(FetchError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| FetchError::Connect(error_chain(&e)))?
    {
        let room = cap - body.len();
        if chunk.len() > room {
            if accept == ProxyAccept::Image {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, false))
}

/// Web trust roots (Mozilla's list) plus the policy's extra roots, ALPN
/// `http/1.1`.
fn tls_config(policy: &FetchPolicy) -> Result<rustls::ClientConfig, FetchError> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for cert in &policy.extra_roots {
        roots
            .add(cert.clone())
            .map_err(|e| FetchError::Client(format!("extra root: {e}")))?;
    }
    let mut c = rustls::ClientConfig::builder_with_provider(umbra_transport::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| FetchError::Client(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(c)
}
