//! Umbra's attachment file server (spec `attachments.md` §4, `onion.md`
//! §8 and §9.4).
//!
//! The only HTTP endpoint is `POST /oxen/v4/lsrpc`: hop 3 of an onion path
//! forwards the v4 container there; the server opens it with its X25519
//! key (the Montgomery form of its Ed25519 identity), dispatches the inner
//! request ([`FileServer::dispatch`]) and returns the reply sealed under the
//! same key and padded to a size bucket. Inner endpoints: `POST /file`,
//! `GET /file/{id}`, `GET /file/{id}/info`, `POST /file/{id}/extend`, with
//! `X-FS-TTL`. Blobs are opaque ciphertext stored by [`store::FileStore`].
#![warn(missing_docs)]

pub mod store;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;
use tracing::{debug, info, warn};
use umbra_crypto::{Ed25519Keypair, Ed25519Public, X25519Secret};
use umbra_proto::attachment::server::{
    DEFAULT_TTL_SECS, LSRPC_TARGET, MAX_FILE_BODY, MAX_REQUEST_BODY, TTL_HEADER, is_file_id,
    parse_ttl,
};
use umbra_proto::onion::{V4Request, V4Response, open_server_request, seal_server_reply};

pub use store::{FileMeta, FileStore, StoreError};

/// File server settings.
#[derive(Clone, Debug)]
pub struct FileServerConfig {
    /// Where blobs and their metadata live.
    pub data_dir: PathBuf,
    /// HTTP listen address.
    pub listen: SocketAddr,
    /// Total bytes stored at most.
    pub max_total_bytes: u64,
    /// Largest file body (at most 10,000,000).
    pub max_file_bytes: usize,
    /// Lifetime without `X-FS-TTL`.
    pub default_ttl_secs: u64,
    /// How often expired files are deleted.
    pub sweep_interval: Duration,
    /// Sync every upload to disk before acknowledging it (default on).
    pub durable_writes: bool,
}

impl FileServerConfig {
    /// Defaults: 10 GB total, 10,000,000-byte files, 14 days, sweep every
    /// minute.
    pub fn new(data_dir: impl Into<PathBuf>, listen: SocketAddr) -> Self {
        FileServerConfig {
            data_dir: data_dir.into(),
            listen,
            max_total_bytes: 10_000_000_000,
            max_file_bytes: MAX_FILE_BODY,
            default_ttl_secs: DEFAULT_TTL_SECS,
            sweep_interval: Duration::from_secs(60),
            durable_writes: true,
        }
    }
}

/// The server state: identity, store and limits.
pub struct FileServer {
    x25519: X25519Secret,
    ed25519: Ed25519Public,
    store: FileStore,
    max_file_bytes: usize,
    default_ttl_secs: u64,
}

impl std::fmt::Debug for FileServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileServer")
            .field("ed25519", &hex::encode(self.ed25519.as_bytes()))
            .finish_non_exhaustive()
    }
}

/// Unix seconds now.
pub fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn json_reply(code: u16, value: serde_json::Value) -> V4Response {
    let mut headers = BTreeMap::new();
    headers.insert("content-type".into(), "application/json".into());
    V4Response {
        code,
        headers,
        body: value.to_string().into_bytes(),
    }
}

fn error_reply(code: u16) -> V4Response {
    json_reply(code, json!({ "status_code": code }))
}

impl FileServer {
    /// A server with identity `keys` over `store`.
    pub fn new(keys: &Ed25519Keypair, store: FileStore, config: &FileServerConfig) -> Self {
        FileServer {
            x25519: keys.x25519_secret(),
            ed25519: keys.public(),
            store,
            max_file_bytes: config.max_file_bytes.min(MAX_FILE_BODY),
            default_ttl_secs: config.default_ttl_secs,
        }
    }

    /// The Ed25519 identity clients put in `p=` and use (as X25519) for
    /// the onion's last layer.
    pub fn public_key(&self) -> Ed25519Public {
        self.ed25519
    }

    /// The store.
    pub fn store(&self) -> &FileStore {
        &self.store
    }

    fn ttl(&self, req: &V4Request) -> Result<u64, V4Response> {
        match req
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(TTL_HEADER))
        {
            Some((_, v)) => parse_ttl(v).map_err(|_| error_reply(400)),
            None => Ok(self.default_ttl_secs),
        }
    }

    fn store_error(e: StoreError) -> V4Response {
        match e {
            StoreError::NotFound => error_reply(404),
            StoreError::Full { .. } => error_reply(507),
            StoreError::Io { what, source } => {
                warn!(what, %source, "file store failure");
                error_reply(507)
            }
        }
    }

    /// Serves one decrypted v4 request (§4.2) at time `now` (unix seconds).
    pub fn dispatch(&self, req: &V4Request, now: f64) -> V4Response {
        let path = req
            .endpoint
            .split_once('?')
            .map_or(req.endpoint.as_str(), |(p, _)| p);
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let method = req.method.to_ascii_uppercase();
        let result = match (method.as_str(), parts.as_slice()) {
            ("POST", ["file"]) => self.upload(req, now),
            ("GET", ["file", id]) => self.download(id, now),
            ("GET", ["file", id, "info"]) => self.info(id, now),
            ("POST", ["file", id, "extend"]) => self.extend(req, id, now),
            _ => Err(error_reply(404)),
        };
        result.unwrap_or_else(|e| e)
    }

    fn upload(&self, req: &V4Request, now: f64) -> Result<V4Response, V4Response> {
        let body = req.body.as_deref().unwrap_or_default();
        if body.is_empty() || body.len() > self.max_file_bytes {
            return Err(error_reply(413));
        }
        let ttl = self.ttl(req)?;
        let (id, expires) = self.store.put(body, now, ttl).map_err(Self::store_error)?;
        debug!(size = body.len(), "stored a file");
        Ok(json_reply(200, json!({ "id": id, "expires": expires })))
    }

    fn checked_id(id: &str) -> Result<&str, V4Response> {
        if is_file_id(id) {
            Ok(id)
        } else {
            Err(error_reply(404))
        }
    }

    fn download(&self, id: &str, now: f64) -> Result<V4Response, V4Response> {
        let data = self
            .store
            .get(Self::checked_id(id)?, now)
            .map_err(Self::store_error)?;
        let mut headers = BTreeMap::new();
        headers.insert("content-type".into(), "application/octet-stream".into());
        Ok(V4Response {
            code: 200,
            headers,
            body: data,
        })
    }

    fn info(&self, id: &str, now: f64) -> Result<V4Response, V4Response> {
        let m = self
            .store
            .info(Self::checked_id(id)?, now)
            .map_err(Self::store_error)?;
        Ok(json_reply(
            200,
            json!({ "size": m.size, "uploaded": m.uploaded, "expires": m.expires }),
        ))
    }

    fn extend(&self, req: &V4Request, id: &str, now: f64) -> Result<V4Response, V4Response> {
        let id = Self::checked_id(id)?;
        let ttl = self.ttl(req)?;
        let expires = self.store.extend(id, now, ttl).map_err(Self::store_error)?;
        Ok(json_reply(200, json!({ "expires": expires })))
    }

    /// Handles the body hop 3 POSTed to `/oxen/v4/lsrpc`: opens it, serves
    /// it and seals the reply (padded to a bucket, §9.4). A container that
    /// does not open is answered `400` in plaintext.
    pub fn handle_lsrpc(&self, body: &[u8], now: f64) -> Result<Vec<u8>, (u16, String)> {
        let (req, key) = open_server_request(body, &self.x25519)
            .map_err(|e| (400, format!("invalid onion request: {e}")))?;
        let resp = self.dispatch(&req, now);
        let nonce = umbra_crypto::random_bytes::<24>();
        seal_server_reply(&key, &resp, true, &nonce)
            .or_else(|_| seal_server_reply(&key, &resp, false, &nonce))
            .map_err(|e| (500, format!("sealing the reply failed: {e}")))
    }
}

/// Requests opened and served at once (each decodes its body, up to
/// 10 MiB, on the blocking pool); the others wait with their bodies read.
/// A body still arriving holds no slot, so clients sending slowly cannot
/// take every slot; a body costs the server the bytes its sender sent.
pub const MAX_CONCURRENT_REQUESTS: usize = 16;

/// How long a request body may take to arrive (a client trickling one
/// cannot hold its connection for ever).
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// What the HTTP handler shares.
#[derive(Clone)]
struct Http {
    server: Arc<FileServer>,
    slots: Arc<tokio::sync::Semaphore>,
}

async fn lsrpc(State(http): State<Http>, body: axum::body::Body) -> Response {
    let read = tokio::time::timeout(
        BODY_READ_TIMEOUT,
        axum::body::to_bytes(body, MAX_REQUEST_BODY),
    );
    let body = match read.await {
        Ok(Ok(body)) => body,
        Ok(Err(e)) => {
            return if e.into_inner().is::<http_body_util::LengthLimitError>() {
                (StatusCode::PAYLOAD_TOO_LARGE, "request body is over 10 MiB").into_response()
            } else {
                (StatusCode::BAD_REQUEST, "the request body was cut off").into_response()
            };
        }
        Err(_) => {
            return (
                StatusCode::REQUEST_TIMEOUT,
                "the request body took too long",
            )
                .into_response();
        }
    };
    let Ok(slot) = http.slots.clone().acquire_owned().await else {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    };
    let server = http.server.clone();
    // The slot goes with the work: a client hanging up does not free it
    // while the blocking task still runs.
    let result = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        server.handle_lsrpc(&body, now_secs())
    })
    .await;
    match result {
        Ok(Ok(sealed)) => (
            StatusCode::OK,
            [("content-type", "application/octet-stream")],
            sealed,
        )
            .into_response(),
        Ok(Err((code, text))) => (
            StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST),
            text,
        )
            .into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response(),
    }
}

/// The HTTP router: `POST /oxen/v4/lsrpc` only, bodies up to 10 MiB
/// (larger ones are refused with `413` before being read in full), at most
/// [`MAX_CONCURRENT_REQUESTS`] at once.
pub fn router(server: Arc<FileServer>) -> Router {
    Router::new()
        .route(LSRPC_TARGET, post(lsrpc))
        .with_state(Http {
            server,
            slots: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_REQUESTS)),
        })
}

/// A running file server.
#[derive(Debug)]
pub struct FileServerHandle {
    /// The bound address.
    pub addr: SocketAddr,
    /// The server state.
    pub server: Arc<FileServer>,
    shutdown: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl FileServerHandle {
    /// Stops serving and sweeping.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// A file server failure at start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The store could not be opened.
    #[error("opening the store: {0}")]
    Store(#[from] StoreError),
    /// The listener could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Opens the store, binds `config.listen` and serves until stopped.
pub async fn start(
    config: &FileServerConfig,
    keys: &Ed25519Keypair,
) -> Result<FileServerHandle, StartError> {
    let mut store = FileStore::open(&config.data_dir, config.max_total_bytes)?;
    store.set_durable(config.durable_writes);
    let server = Arc::new(FileServer::new(keys, store, config));
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.listen,
        source,
    })?;
    let (tx, rx) = tokio::sync::watch::channel(false);
    let mut rx_serve = rx.clone();
    let app = router(server.clone());
    let serve = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx_serve.changed().await;
            })
            .await;
    });
    let sweeper = server.clone();
    let interval = config.sweep_interval;
    let mut rx_sweep = rx;
    let sweep = tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let s = sweeper.clone();
                    let n = tokio::task::spawn_blocking(move || s.store().sweep(now_secs())).await.unwrap_or(0);
                    if n > 0 {
                        info!(n, "deleted expired files");
                    }
                }
                _ = rx_sweep.changed() => break,
            }
        }
    });
    info!(%addr, key = %hex::encode(keys.public().as_bytes()), "file server listening");
    Ok(FileServerHandle {
        addr,
        server,
        shutdown: tx,
        tasks: vec![serve, sweep],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use umbra_proto::attachment::server::file_id;

    fn server(cap: u64) -> (tempfile::TempDir, FileServer) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = FileServerConfig::new(dir.path(), "127.0.0.1:0".parse().unwrap());
        let store = FileStore::open(dir.path(), cap).unwrap();
        (
            dir,
            FileServer::new(&Ed25519Keypair::from_seed(&[1; 32]), store, &cfg),
        )
    }

    fn req(method: &str, endpoint: &str, ttl: Option<&str>, body: Option<&[u8]>) -> V4Request {
        let mut headers = BTreeMap::new();
        if let Some(t) = ttl {
            headers.insert("X-FS-TTL".to_string(), t.to_string());
        }
        V4Request {
            method: method.into(),
            endpoint: endpoint.into(),
            headers,
            body: body.map(<[u8]>::to_vec),
        }
    }

    fn body_json(r: &V4Response) -> serde_json::Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    #[test]
    fn endpoints() {
        let (_d, s) = server(1_000_000);
        let r = s.dispatch(&req("POST", "/file", None, Some(b"blob")), 1000.0);
        assert_eq!(r.code, 200);
        let j = body_json(&r);
        let id = j["id"].as_str().unwrap().to_string();
        assert_eq!(id, file_id(b"blob"));
        assert_eq!(
            j["expires"].as_f64().unwrap(),
            1000.0 + DEFAULT_TTL_SECS as f64
        );

        let r = s.dispatch(&req("GET", &format!("/file/{id}"), None, None), 1001.0);
        assert_eq!((r.code, r.body.as_slice()), (200, b"blob".as_slice()));
        let r = s.dispatch(&req("GET", &format!("/file/{id}/info"), None, None), 1001.0);
        assert_eq!(body_json(&r)["size"], 4);
        let r = s.dispatch(
            &req("POST", &format!("/file/{id}/extend"), Some("120"), None),
            1002.0,
        );
        assert_eq!(body_json(&r)["expires"].as_f64().unwrap(), 1122.0);
        // Expired → 404.
        let r = s.dispatch(&req("GET", &format!("/file/{id}"), None, None), 1123.0);
        assert_eq!(
            (r.code, body_json(&r)["status_code"].as_u64()),
            (404, Some(404))
        );

        for (r, code) in [
            (req("POST", "/file", None, None), 413),
            (req("POST", "/file", None, Some(&[])), 413),
            (
                req("POST", "/file", None, Some(&vec![0u8; MAX_FILE_BODY + 1])),
                413,
            ),
            (req("POST", "/file", Some("59"), Some(b"x")), 400),
            (req("POST", "/file", Some("x"), Some(b"x")), 400),
            (req("GET", "/file/short", None, None), 404),
            (req("GET", "/nothing", None, None), 404),
            (req("DELETE", &format!("/file/{id}"), None, None), 404),
        ] {
            assert_eq!(
                s.dispatch(&r, 1000.0).code,
                code,
                "{} {}",
                r.method,
                r.endpoint
            );
        }
    }

    #[test]
    fn full_store_is_507() {
        let (_d, s) = server(10);
        let r = s.dispatch(&req("POST", "/file", None, Some(&[7u8; 11])), 0.0);
        assert_eq!(r.code, 507);
    }

    /// Parallel uploads of the same bytes (the attack: many identical
    /// uploads at once to inflate the bytes in use): all answered 200 with
    /// one ID, the file is counted once and downloads afterwards.
    #[test]
    fn parallel_identical_uploads_are_counted_once() {
        const UPLOADS: usize = 16;
        let (_d, s) = server(10_000_000);
        let blob = vec![0x5a; 100_000];
        let barrier = std::sync::Barrier::new(UPLOADS);
        let replies: Vec<V4Response> = std::thread::scope(|sc| {
            let handles: Vec<_> = (0..UPLOADS)
                .map(|_| {
                    sc.spawn(|| {
                        barrier.wait();
                        s.dispatch(&req("POST", "/file", None, Some(&blob)), 1000.0)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let id = file_id(&blob);
        for r in &replies {
            assert_eq!(r.code, 200, "{}", String::from_utf8_lossy(&r.body));
            assert_eq!(body_json(r)["id"], id.as_str());
        }
        assert_eq!(s.store().used(), blob.len() as u64);
        let r = s.dispatch(&req("GET", &format!("/file/{id}"), None, None), 1001.0);
        assert_eq!((r.code, r.body == blob), (200, true));
        assert_eq!(s.store().sweep(1000.0 + DEFAULT_TTL_SECS as f64), 1);
        assert_eq!(s.store().used(), 0);
    }

    /// Bodies still arriving hold no slot: with more trickling clients
    /// than slots, a complete request is served at once; the trickled ones
    /// are cut after [`BODY_READ_TIMEOUT`] (`408`). Virtual time: the
    /// timeouts are exact.
    #[tokio::test(start_paused = true)]
    async fn trickled_bodies_hold_no_slot_and_time_out() {
        use tower::ServiceExt;
        let (_d, s) = server(10_000_000);
        let app = router(Arc::new(s));
        let post =
            |body: axum::body::Body| axum::http::Request::post(LSRPC_TARGET).body(body).unwrap();
        let t0 = tokio::time::Instant::now();
        let stuck: Vec<_> = (0..2 * MAX_CONCURRENT_REQUESTS)
            .map(|_| {
                let body = axum::body::Body::from_stream(futures::stream::pending::<
                    Result<bytes::Bytes, std::io::Error>,
                >());
                tokio::spawn(app.clone().oneshot(post(body)))
            })
            .collect();
        tokio::task::yield_now().await;
        let r = app
            .clone()
            .oneshot(post(axum::body::Body::from("not onion")))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "served");
        assert_eq!(t0.elapsed(), Duration::ZERO, "at once");
        for h in stuck {
            let r = h.await.unwrap().unwrap();
            assert_eq!(r.status(), StatusCode::REQUEST_TIMEOUT);
        }
        assert_eq!(t0.elapsed(), BODY_READ_TIMEOUT);
        // Over the size cap: 413.
        let big = axum::body::Body::from(vec![0u8; MAX_REQUEST_BODY + 1]);
        let r = app.oneshot(post(big)).await.unwrap();
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
}
