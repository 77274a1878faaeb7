//! A running registry instance: its HTTPS endpoints, the health-check task
//! and the agreement rounds that issue threshold-signed epochs.
//!
//! Endpoints (HTTPS, the certificate is the instance's registry key, so
//! peers and nodes pin it from the publication URL):
//!
//! | endpoint | what |
//! | --- | --- |
//! | `GET /registry/v1/current` | the newest threshold-signed document (publication URL) |
//! | `GET /registry/v1/state` | this instance's epoch, votes and lock (for peers) |
//! | `POST /registry/v1/node` | a node submits its self-signed record, authenticated with the node-request headers of `swarms.md` §8.2 |
//!
//! One round ([`Instance::round`], every `tick_ms`): fetch every peer's
//! state; adopt any newer threshold-signed document; merge peers'
//! signatures into this instance's lock and publish it once it reaches the
//! threshold; release a hopeless lock; compute the agreed set from the
//! votes; and, when it differs from the current document and the epoch
//! interval has passed, sign the next document (a peer's acceptable
//! candidate, or the one built here). The rules are in [`crate::agreement`].

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header::CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use umbra_crypto::{Ed25519Keypair, Ed25519Public};
use umbra_node::registry::PublicationUrl;
use umbra_proto::network::NetworkConfig;
use umbra_proto::rpc::node_req::NodeRequestAuth;
use umbra_proto::swarm::{NodeRecord, ReaderRole, RegistryConfig, RegistryDocument, RegistryError};
use umbra_transport::{Clock, NodeAddr, NodeClient, Request, Server, tls};

use crate::agreement;
use crate::config::InstanceConfig;
use crate::health::{HealthTable, check_node};
use crate::store::CandidateStore;

/// The publication path.
pub const PATH_CURRENT: &str = "/registry/v1/current";
/// The peer state path.
pub const PATH_STATE: &str = "/registry/v1/state";
/// The record submission path.
pub use umbra_node::registry::PATH_SUBMIT;
/// The node-side submission (it lives in umbra-node, which nodes run and
/// which this crate depends on).
pub use umbra_node::registry::{SubmitError, submit_record};
/// Tolerated clock difference between instances for a candidate's `issued_at`.
pub const ISSUE_SKEW_MS: u64 = 60_000;

/// Why an instance could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The network configuration is unusable.
    #[error("network configuration: {0}")]
    Network(#[from] RegistryError),
    /// This instance's key is not one of the network's pinned registry keys.
    #[error("the registry key {0} is not pinned by the network configuration")]
    NotPinned(String),
    /// The threshold is not a majority of the pinned registry keys, so two
    /// different documents of one epoch could both be signed.
    #[error(
        "threshold {threshold} of {keys} registry keys is not a majority: two documents of one epoch could both be signed"
    )]
    NotMajority {
        /// The network's threshold.
        threshold: usize,
        /// How many registry keys the network pins.
        keys: usize,
    },
    /// The key file.
    #[error(transparent)]
    Key(#[from] umbra_node::keyfile::KeyFileError),
    /// The data directory.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// TLS setup.
    #[error("TLS setup failed: {0}")]
    Tls(#[from] umbra_transport::TlsError),
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// What `GET /registry/v1/state` returns: the instance's view for peers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerState {
    /// The epoch of the newest threshold-signed document held (0: none).
    pub epoch: u64,
    /// The records this instance votes for (base64 bencoded records), or
    /// `None` before its first complete round of health checks.
    pub votes: Option<Vec<String>>,
    /// The document of the next epoch this instance signed (base64, with
    /// every signature collected so far).
    pub lock: Option<String>,
}

/// A peer's state after decoding and checking.
#[derive(Debug, Clone)]
struct PeerView {
    url: PublicationUrl,
    epoch: u64,
    votes: Option<Vec<NodeRecord>>,
    lock: Option<RegistryDocument>,
}

struct Held {
    current: Option<(Arc<RegistryDocument>, Arc<Vec<u8>>)>,
    lock: Option<RegistryDocument>,
    health: HealthTable,
    health_ready: bool,
    votes: Vec<NodeRecord>,
}

/// The shared state of one instance.
pub struct Inner {
    key: Ed25519Keypair,
    config: InstanceConfig,
    registry_config: RegistryConfig,
    clock: Arc<dyn Clock>,
    store: CandidateStore,
    client: NodeClient,
    peers: Vec<PublicationUrl>,
    held: Mutex<Held>,
    epoch_tx: tokio::sync::watch::Sender<u64>,
}

/// A handle on an instance's shared state.
#[derive(Clone)]
pub struct Instance(Arc<Inner>);

impl Instance {
    fn held(&self) -> MutexGuard<'_, Held> {
        self.0.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// This instance's registry key.
    pub fn public(&self) -> Ed25519Public {
        self.0.key.public()
    }

    /// The newest threshold-signed document held.
    pub fn current(&self) -> Option<Arc<RegistryDocument>> {
        self.held().current.as_ref().map(|(d, _)| d.clone())
    }

    /// Its epoch (0 when none).
    pub fn epoch(&self) -> u64 {
        self.held().current.as_ref().map_or(0, |(d, _)| d.epoch())
    }

    /// The document this instance signed for the next epoch, if any.
    pub fn lock(&self) -> Option<RegistryDocument> {
        self.held().lock.clone()
    }

    /// The records this instance currently votes for.
    pub fn votes(&self) -> Vec<NodeRecord> {
        self.held().votes.clone()
    }

    /// Subscribes to epoch changes.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.0.epoch_tx.subscribe()
    }

    /// The data directory's candidate store (operator actions in-process).
    pub fn store(&self) -> &CandidateStore {
        &self.0.store
    }

    /// Offers a document (from a peer or the data directory). Returns the
    /// new epoch when it was adopted.
    pub fn offer(&self, bytes: &[u8]) -> Result<Option<u64>, RegistryError> {
        let mut h = self.held();
        let held = h.current.as_ref().map(|(d, _)| d.as_ref());
        let doc = match RegistryDocument::verify(
            bytes,
            &self.0.registry_config,
            held,
            ReaderRole::Node,
        ) {
            Ok(d) => d,
            Err(RegistryError::StaleEpoch { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let epoch = doc.epoch();
        if let Err(e) = self.0.store.write_doc("current", bytes) {
            tracing::warn!(error = %e, "cannot save the current registry");
        }
        if h.lock.as_ref().is_some_and(|l| l.epoch() <= epoch) {
            h.lock = None;
            self.0.store.remove_doc("lock");
        }
        h.current = Some((Arc::new(doc), Arc::new(bytes.to_vec())));
        drop(h);
        tracing::info!(epoch, "registry epoch in force");
        let _ = self.0.epoch_tx.send(epoch);
        Ok(Some(epoch))
    }

    fn state(&self) -> PeerState {
        let h = self.held();
        PeerState {
            epoch: h.current.as_ref().map_or(0, |(d, _)| d.epoch()),
            votes: h
                .health_ready
                .then(|| h.votes.iter().map(|r| B64.encode(r.encode())).collect()),
            lock: h.lock.as_ref().map(|l| B64.encode(l.encode())),
        }
    }

    /// The records this instance votes for now: admitted (or auto-admitted)
    /// candidates that its health checks keep.
    fn compute_votes(&self, now: u64) -> Vec<NodeRecord> {
        let records = self.0.store.records();
        let admission = self.0.store.admission(self.0.config.auto_admit);
        let h = self.held();
        records
            .into_values()
            .filter(|r| admission.contains(&r.ed25519))
            .filter(|r| h.health.votes_for(&r.ed25519, now))
            .collect()
    }

    /// One pass of reachability checks over every admitted candidate.
    pub async fn health_pass(&self) {
        let records = self.0.store.records();
        let admission = self.0.store.admission(self.0.config.auto_admit);
        let candidates: Vec<NodeRecord> = records
            .into_values()
            .filter(|r| admission.contains(&r.ed25519))
            .collect();
        let timeout = Duration::from_millis(self.0.config.request_timeout_ms);
        let results = futures::future::join_all(
            candidates
                .iter()
                .map(|r| async move { (r.ed25519, check_node(&self.0.client, r, timeout).await) }),
        )
        .await;
        let now = self.0.clock.now_ms();
        let mut h = self.held();
        for (k, ok) in results {
            h.health.record(k, ok, now);
        }
        h.health
            .retain(|k| candidates.iter().any(|r| r.ed25519 == *k));
        h.health_ready = true;
    }

    async fn fetch_state(&self, url: &PublicationUrl) -> Option<PeerView> {
        let addr = NodeAddr::new(url.addr, url.key);
        let timeout = Duration::from_millis(self.0.config.request_timeout_ms);
        let req = Request::get(PATH_STATE).ok()?.timeout(timeout);
        let resp = self.0.client.send(&addr, req).await.ok()?;
        if resp.status != 200 {
            return None;
        }
        let st: PeerState = serde_json::from_slice(&resp.body).ok()?;
        let votes = st.votes.map(|v| {
            v.iter()
                .filter_map(|b| B64.decode(b).ok())
                .filter_map(|b| NodeRecord::parse(&b).ok())
                .filter(|r| r.verify().is_ok())
                .collect()
        });
        let lock = st
            .lock
            .and_then(|b| B64.decode(b).ok())
            .and_then(|b| RegistryDocument::parse(&b).ok());
        Some(PeerView {
            url: url.clone(),
            epoch: st.epoch,
            votes,
            lock,
        })
    }

    async fn fetch_current(&self, url: &PublicationUrl) -> Option<Vec<u8>> {
        let addr = NodeAddr::new(url.addr, url.key);
        let timeout = Duration::from_millis(self.0.config.request_timeout_ms);
        let req = Request::get(PATH_CURRENT).ok()?.timeout(timeout);
        let resp = self.0.client.send(&addr, req).await.ok()?;
        (resp.status == 200).then(|| resp.body.to_vec())
    }

    /// One agreement round (see the module documentation).
    pub async fn round(&self) {
        let cfg = &self.0.registry_config;
        let views: Vec<PeerView> =
            futures::future::join_all(self.0.peers.iter().map(|u| self.fetch_state(u)))
                .await
                .into_iter()
                .flatten()
                .collect();
        // Catch up with peers that hold a newer epoch.
        for v in &views {
            if v.epoch > self.epoch()
                && let Some(bytes) = self.fetch_current(&v.url).await
                && let Err(e) = self.offer(&bytes)
            {
                tracing::warn!(error = %e, peer = %v.url.addr, "peer's registry refused");
            }
        }
        // A peer's lock that already carries the threshold is a complete document.
        for v in &views {
            if let Some(l) = &v.lock
                && l.check_signatures(cfg).is_ok()
            {
                let _ = self.offer(&l.encode());
            }
        }
        // Merge signatures into this instance's lock.
        let complete = {
            let mut h = self.held();
            match h.lock.as_mut() {
                Some(lock) => {
                    let mut n = agreement::valid_signatures(lock, cfg);
                    for v in &views {
                        if let Some(l) = &v.lock {
                            n = agreement::merge_signatures(lock, l, cfg);
                        }
                    }
                    let bytes = lock.encode();
                    let _ = self.0.store.write_doc("lock", &bytes);
                    (n >= cfg.threshold()).then_some(bytes)
                }
                None => None,
            }
        };
        if let Some(bytes) = complete {
            match self.offer(&bytes) {
                Ok(Some(e)) => tracing::info!(epoch = e, "epoch signed by the threshold"),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "own completed lock refused"),
            }
        }
        // A lock that can never complete is released.
        {
            let mut h = self.held();
            if let Some(lock) = &h.lock {
                let peer_locks = views
                    .iter()
                    .filter_map(|v| v.lock.as_ref().map(|l| (l.epoch(), *l.doc_hash())));
                if agreement::lock_hopeless(lock, peer_locks, cfg) {
                    tracing::info!(
                        epoch = lock.epoch(),
                        "releasing a lock that cannot complete"
                    );
                    h.lock = None;
                    self.0.store.remove_doc("lock");
                }
            }
        }
        // Votes and the agreed set.
        let now = self.0.clock.now_ms();
        let my_votes = self.compute_votes(now);
        let ready = {
            let mut h = self.held();
            h.votes = my_votes.clone();
            h.health_ready
        };
        if !ready {
            return;
        }
        let mut ballots: Vec<&[NodeRecord]> = vec![&my_votes];
        for v in &views {
            if let Some(votes) = &v.votes {
                ballots.push(votes);
            }
        }
        if ballots.len() < cfg.threshold() {
            return;
        }
        let agreed = agreement::agreed_set(ballots, cfg.threshold());
        let current = self.current();
        if self.held().lock.is_some() || !agreement::needs_new_epoch(current.as_deref(), &agreed) {
            return;
        }
        let interval = self.0.config.epoch_interval_ms;
        let Some(at) =
            agreement::issued_at(current.as_ref().map(|c| c.issued_at_ms()), now, interval)
        else {
            return;
        };
        let peer_candidates: Vec<&RegistryDocument> = views
            .iter()
            .filter_map(|v| v.lock.as_ref())
            .filter(|l| {
                agreement::acceptable_candidate(
                    l,
                    current.as_deref(),
                    &agreed,
                    cfg,
                    now,
                    interval,
                    ISSUE_SKEW_MS,
                )
            })
            .collect();
        let doc = match agreement::choose_candidate(peer_candidates, cfg) {
            Some(d) => d.clone(),
            None => match agreement::build_next(current.as_deref(), &agreed, at, cfg) {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot build the next registry document");
                    return;
                }
            },
        };
        let doc = doc.signed(&self.0.key);
        tracing::info!(
            epoch = doc.epoch(),
            nodes = doc.nodes().len(),
            "signed the next registry document"
        );
        let bytes = doc.encode();
        let _ = self.0.store.write_doc("lock", &bytes);
        let done = agreement::valid_signatures(&doc, cfg) >= cfg.threshold();
        self.held().lock = Some(doc);
        if done {
            let _ = self.offer(&bytes);
        }
    }
}

fn plain(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [(CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

async fn get_current(State(inst): State<Instance>) -> Response {
    let bytes = inst.held().current.as_ref().map(|(_, b)| b.clone());
    match bytes {
        Some(b) => (
            StatusCode::OK,
            [(CONTENT_TYPE, "application/octet-stream")],
            b.as_ref().clone(),
        )
            .into_response(),
        None => plain(StatusCode::NOT_FOUND, "no registry document yet"),
    }
}

async fn get_state(State(inst): State<Instance>) -> Response {
    axum::Json(inst.state()).into_response()
}

async fn post_node(State(inst): State<Instance>, headers: HeaderMap, body: Bytes) -> Response {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    use umbra_proto::rpc::node_req::{
        HEADER_EPOCH, HEADER_NODE, HEADER_SIGNATURE, HEADER_TIMESTAMP,
    };
    let auth = match NodeRequestAuth::from_headers(
        h(HEADER_NODE),
        h(HEADER_EPOCH),
        h(HEADER_TIMESTAMP),
        h(HEADER_SIGNATURE),
    ) {
        Ok(a) => a,
        Err(e) => return plain(StatusCode::UNAUTHORIZED, e.to_string()),
    };
    if let Err(e) = auth.verify("POST", PATH_SUBMIT, &body, inst.0.clock.now_ms()) {
        return plain(StatusCode::UNAUTHORIZED, e.to_string());
    }
    let record = match NodeRecord::parse(&body) {
        Ok(r) => r,
        Err(e) => return plain(StatusCode::BAD_REQUEST, format!("bad node record: {e}")),
    };
    if record.ed25519 != auth.node {
        return plain(
            StatusCode::UNAUTHORIZED,
            "the record is not the submitting node's",
        );
    }
    match inst.0.store.put_record(&record) {
        Ok(()) => {
            let admitted = inst
                .0
                .store
                .is_admitted(&record.ed25519, inst.0.config.auto_admit);
            tracing::info!(
                node = %hex::encode(&record.ed25519.as_bytes()[..4]),
                admitted,
                "node record submitted"
            );
            plain(
                StatusCode::OK,
                if admitted {
                    "accepted"
                } else {
                    "accepted; awaiting operator admission"
                },
            )
        }
        Err(crate::store::StoreError::Record(e)) => {
            plain(StatusCode::BAD_REQUEST, format!("node record refused: {e}"))
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot store a submitted record");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "cannot store the record")
        }
    }
}

fn router(inst: Instance) -> Router {
    Router::new()
        .route(PATH_CURRENT, get(get_current))
        .route(PATH_STATE, get(get_state))
        .route(
            PATH_SUBMIT,
            post(post_node).layer(DefaultBodyLimit::max(4096)),
        )
        .with_state(inst)
}

/// A running instance.
pub struct RegistryHandle {
    /// The shared state.
    pub instance: Instance,
    /// The bound HTTPS address.
    pub addr: SocketAddr,
    shutdown: tokio::sync::watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RegistryHandle {
    /// This instance's publication URL.
    pub fn url(&self) -> String {
        PublicationUrl::format(self.addr, &self.instance.public(), PATH_CURRENT)
    }

    /// Stops the server and the tasks.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in &self.tasks {
            t.abort();
        }
        let _ = self.server.await;
    }

    /// Waits until the server stops.
    pub async fn wait(&mut self) {
        let _ = (&mut self.server).await;
    }
}

/// Binds `config.listen` first, so that the caller can learn the address
/// (and write the network's publication URLs) before starting.
pub async fn bind(config: &InstanceConfig) -> Result<tokio::net::TcpListener, StartError> {
    tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })
}

/// Starts an instance on `listener` with registry key `key` (or the key file
/// of `config`) in `network`, whose `registry_urls` name every instance.
pub async fn start(
    config: InstanceConfig,
    network: &NetworkConfig,
    key: Option<Ed25519Keypair>,
    listener: tokio::net::TcpListener,
    clock: Arc<dyn Clock>,
) -> Result<RegistryHandle, StartError> {
    config.validate()?;
    let store = CandidateStore::open(&config.data_dir)?;
    let key = match key {
        Some(k) => k,
        None => {
            umbra_node::keyfile::load_or_create(&config.key_path(), umbra_crypto::random_bytes)?
        }
    };
    let registry_config = network.registry_config()?;
    if !registry_config.pinned_keys().contains(&key.public()) {
        return Err(StartError::NotPinned(hex::encode(key.public().as_bytes())));
    }
    if registry_config.threshold() * 2 <= registry_config.pinned_keys().len() {
        // Safety of the agreement (agreement.rs) rests on a majority: with
        // fewer signatures two documents of one epoch could both complete.
        return Err(StartError::NotMajority {
            threshold: registry_config.threshold(),
            keys: registry_config.pinned_keys().len(),
        });
    }
    let peers: Vec<PublicationUrl> = network
        .registry_urls
        .iter()
        .filter_map(|u| PublicationUrl::parse(u))
        .filter(|u| u.key != key.public())
        .collect();
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.listen,
        source,
    })?;
    let (epoch_tx, _) = tokio::sync::watch::channel(0);
    let inst = Instance(Arc::new(Inner {
        key,
        registry_config,
        clock,
        store,
        client: NodeClient::new(umbra_transport::ClientConfig {
            request_timeout: Duration::from_millis(config.request_timeout_ms),
            ..Default::default()
        }),
        peers,
        held: Mutex::new(Held {
            current: None,
            lock: None,
            health: HealthTable::new(config.failure_limit_ms),
            health_ready: false,
            votes: Vec::new(),
        }),
        epoch_tx,
        config,
    }));
    if let Some(b) = inst.0.store.read_doc("current")
        && let Err(e) = inst.offer(&b)
    {
        tracing::warn!(error = %e, "stored registry refused");
    }
    if let Some(b) = inst.0.store.read_doc("lock")
        && let Ok(l) = RegistryDocument::parse(&b)
        && l.epoch() > inst.epoch()
    {
        inst.held().lock = Some(l);
    }
    let tls = tls::server_config(&inst.0.key)?;
    let (shutdown_tx, mut shutdown_rx) = tokio::sync::watch::channel(false);
    let server = {
        let router = router(inst.clone());
        tokio::spawn(async move {
            let stop = async move {
                while !*shutdown_rx.borrow() {
                    if shutdown_rx.changed().await.is_err() {
                        break;
                    }
                }
            };
            if let Err(e) = Server::new(router).serve_tls(listener, tls, stop).await {
                tracing::error!(error = %e, "registry HTTPS server stopped");
            }
        })
    };
    let health = {
        let inst = inst.clone();
        let every = Duration::from_millis(inst.0.config.health_interval_ms);
        tokio::spawn(async move {
            loop {
                inst.health_pass().await;
                tokio::time::sleep(every).await;
            }
        })
    };
    let rounds = {
        let inst = inst.clone();
        let every = Duration::from_millis(inst.0.config.tick_ms);
        tokio::spawn(async move {
            loop {
                inst.round().await;
                tokio::time::sleep(every).await;
            }
        })
    };
    tracing::info!(%addr, key = %hex::encode(&inst.public().as_bytes()[..4]), "registry instance started");
    Ok(RegistryHandle {
        instance: inst,
        addr,
        shutdown: shutdown_tx,
        server,
        tasks: vec![health, rounds],
    })
}
