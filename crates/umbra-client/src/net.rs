//! The client's network layer: every storage request goes through a 3-hop
//! onion path (`onion.md`), chosen and repaired by the sans-I/O
//! [`PathManager`] of `umbra_proto::path`, which this module drives: it
//! performs the manager's actions (bootstrap from seed nodes, guard tests,
//! path tests, registry refreshes), sends requests along planned paths,
//! classifies replies into [`Outcome`]s and follows the [`Decision`]s
//! (retry with backoff, replace nodes, follow `421`s, resync the clock).
//!
//! The only direct (non-onion) requests are `info` to test a guard and
//! `get_registry` to a seed node at bootstrap (`storage-rpc.md` §1.2); the
//! clock resync of §10.5 asks `info` through onion requests. Tests can
//! switch on a log of every request sent ([`Network::record_requests`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Mutex;
use umbra_proto::identity::AccountId;
use umbra_proto::network::NetworkConfig;
use umbra_proto::onion::{
    EncType, LayerRandom, NodeRequestOptions, OnionDestination, PathNode, ReplyOutcome,
    ServerTarget, V4Response, build_padded_onion, open_node_reply, open_server_reply,
};
use umbra_proto::path::{
    Action, Decision, Event, GuardState, GuardTest, Outcome, PathConfig, PathError, PathManager,
    Plan,
};
use umbra_proto::rpc::types::GetRegistryResponse;
use umbra_proto::swarm::{NodeRecord, ReaderRole, RegistryConfig, RegistryDocument};
use umbra_transport::{Clock, NodeAddr, NodeClient, Request, TransportError};

/// A network failure, as the caller can act on it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// No registry could be obtained (seed nodes unreachable, bad documents).
    #[error("cannot get the node list: {0}")]
    Bootstrap(String),
    /// No onion path could be built in time.
    #[error("no onion path could be built ({0})")]
    NoPath(String),
    /// The request failed on every try (path-level failures).
    #[error("request failed: {0}")]
    Path(#[from] PathError),
    /// The account's swarm is unknown (empty registry).
    #[error("no swarm owns that account in the current registry")]
    NoSwarm,
    /// Building the onion failed (e.g. the request is too large).
    #[error("cannot build the onion request: {0}")]
    Onion(String),
    /// The request failed for good after one or more tries; `last` says
    /// where the last try failed.
    #[error("{error}; last try: {last}")]
    Failed {
        /// Why the path manager gave up.
        error: PathError,
        /// The last try's route and failure point.
        last: Box<TryFailure>,
    },
}

/// Where a try failed (`onion.md` §7.3, §10.6).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailedAt {
    /// The guard could not be reached (connection, TLS or timeout).
    Guard,
    /// A relay named this node as the one it could not reach or find
    /// (`502` "Next node not found/unreachable: <key>").
    Node([u8; 32]),
    /// A relay on the path answered a plaintext error without naming a node.
    Relay,
    /// The reply did not decrypt under the destination-layer key.
    Undecryptable,
    /// The destination answered with this inner status.
    Destination(u16),
    /// The onion could not be built.
    Build,
}

/// The last failed try of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TryFailure {
    /// `[guard, hop2, hop3, destination]` Ed25519 keys.
    pub route: Vec<[u8; 32]>,
    /// Where it failed.
    pub at: FailedAt,
    /// The plaintext status and text a relay answered, if any.
    pub relay_reply: Option<(u16, String)>,
}

impl TryFailure {
    /// The route position (0 = guard, 1 = hop 2, 2 = hop 3, 3 =
    /// destination) of the node that failed, when known.
    pub fn position(&self) -> Option<usize> {
        match &self.at {
            FailedAt::Guard => Some(0),
            FailedAt::Destination(_) => Some(3),
            FailedAt::Node(k) => self.route.iter().position(|r| r == k),
            _ => None,
        }
    }
}

impl std::fmt::Display for TryFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const NAMES: [&str; 4] = ["guard", "hop 2", "hop 3", "destination"];
        let short = |k: &[u8; 32]| hex::encode(&k[..4]);
        match &self.at {
            FailedAt::Guard => write!(f, "guard unreachable")?,
            FailedAt::Node(k) => match self.position().and_then(|i| NAMES.get(i)) {
                Some(name) => write!(f, "{name} ({}…) unreachable", short(k))?,
                None => write!(f, "node {}… unreachable", short(k))?,
            },
            FailedAt::Relay => write!(f, "a relay failed")?,
            FailedAt::Undecryptable => write!(f, "reply did not decrypt")?,
            FailedAt::Destination(s) => write!(f, "destination answered {s}")?,
            FailedAt::Build => write!(f, "onion not built")?,
        }
        if let Some((status, text)) = &self.relay_reply {
            write!(f, " [relay {status}: {text}]")?;
        }
        if let Some(g) = self.route.first() {
            write!(f, " via guard {}…", short(g))?;
        }
        Ok(())
    }
}

/// One request the network layer sent (recorded for tests, see
/// [`Network::record_requests`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentRequest {
    /// The node it went to (Ed25519).
    pub to: [u8; 32],
    /// The HTTP path (`/storage_rpc/v1` for direct requests,
    /// `/onion_req/v2` for onions).
    pub endpoint: &'static str,
    /// The RPC method of a direct request (`None` for an onion).
    pub method: Option<&'static str>,
    /// The HTTP body length in bytes.
    pub body_len: usize,
}

/// A storage RPC reply from the destination node (any status).
#[derive(Debug, Clone, PartialEq)]
pub struct RpcReply {
    /// The RPC status (200, 401, 421, …).
    pub status: u16,
    /// The result (JSON), or the error text as a JSON string.
    pub body: Value,
    /// The path used: `[guard, hop2, hop3]` Ed25519 keys, then the destination.
    pub route: Vec<[u8; 32]>,
}

impl RpcReply {
    /// The error text of a failed reply.
    pub fn error_text(&self) -> String {
        match &self.body {
            Value::String(s) => s.clone(),
            v => v.to_string(),
        }
    }
}

/// Timeouts of `onion.md` §10.7.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const GUARD_TEST_TIMEOUT: Duration = Duration::from_secs(10);

struct State {
    pm: PathManager,
    registry: Option<Arc<RegistryDocument>>,
    /// Swarm replacements learnt from `421`s, by account.
    swarm_cache: HashMap<AccountId, Vec<NodeRecord>>,
    guards_changed: bool,
}

/// The onion network as one client sees it.
pub struct Network {
    state: Mutex<State>,
    config: NetworkConfig,
    registry_config: RegistryConfig,
    client: NodeClient,
    clock: Arc<dyn Clock>,
    request_timeout: Duration,
    sent: std::sync::Mutex<Option<Vec<SentRequest>>>,
}

/// A uniform draw in `0..n` from the OS RNG (rejection sampling).
pub fn draw(n: u64) -> u64 {
    if n <= 1 {
        return 0;
    }
    let zone = u64::MAX - (u64::MAX % n);
    loop {
        let v = u64::from_le_bytes(umbra_crypto::random_bytes::<8>());
        if v < zone {
            return v % n;
        }
    }
}

fn path_node(r: &NodeRecord) -> Result<PathNode, NetError> {
    Ok(PathNode {
        ed25519: r.ed25519.to_bytes(),
        x25519: r.x25519().map_err(|e| NetError::Onion(e.to_string()))?,
    })
}

fn addr(r: &NodeRecord) -> NodeAddr {
    NodeAddr::new(
        std::net::SocketAddr::from((r.ipv4, r.https_port)),
        r.ed25519,
    )
}

/// The text of a relay's `502` when the next node is listed but unreachable.
const NEXT_NODE_UNREACHABLE: &str = "Next node unreachable: ";

/// Classifies a relay's plaintext error: the path manager's outcome and
/// where it failed. Our relays answer `502 Next node unreachable: X` when X
/// is listed but does not answer: like `Next node not found: X`, it names X
/// (replace that hop, or choose another destination) rather than blaming
/// the path.
fn classify_relay_error(status: u16, text: &str) -> (Outcome, FailedAt) {
    let named = named_node(text);
    let outcome = match (status, named) {
        (502, Some(k)) if text.trim_start().starts_with(NEXT_NODE_UNREACHABLE) => {
            Outcome::NextNodeNotFound(umbra_crypto::Ed25519Public::from_bytes(k))
        }
        _ => Outcome::from_relay_error(status, text),
    };
    let at = match named {
        Some(k) => FailedAt::Node(k),
        None => FailedAt::Relay,
    };
    (outcome, at)
}

/// The node a relay's plaintext error names (`Next node not found: <hex>`,
/// `Next node unreachable: <hex>`, `Snode not ready: <hex>`).
fn named_node(text: &str) -> Option<[u8; 32]> {
    let hex_key = text.trim().rsplit(": ").next()?;
    let mut k = [0u8; 32];
    (hex_key.len() == 64 && hex::decode_to_slice(hex_key, &mut k).is_ok()).then_some(k)
}

fn layer_random() -> LayerRandom {
    LayerRandom::new(
        umbra_crypto::random_bytes::<32>(),
        umbra_crypto::random_bytes::<24>(),
    )
}

impl Network {
    /// A network from its configuration, the persisted guards and the last
    /// registry document held (if any).
    pub fn new(
        config: NetworkConfig,
        path_config: PathConfig,
        guards: Option<&GuardState>,
        registry: Option<&[u8]>,
        clock: Arc<dyn Clock>,
    ) -> Result<Network, NetError> {
        let registry_config = config
            .registry_config()
            .map_err(|e| NetError::Bootstrap(e.to_string()))?;
        let mut pm = PathManager::new(path_config, guards);
        let mut doc = None;
        if let Some(bytes) = registry
            && let Ok(d) =
                RegistryDocument::verify(bytes, &registry_config, None, ReaderRole::Client)
        {
            pm.handle_registry(&d, clock.now_ms());
            doc = Some(Arc::new(d));
        }
        Ok(Network {
            state: Mutex::new(State {
                pm,
                registry: doc,
                swarm_cache: HashMap::new(),
                guards_changed: false,
            }),
            config,
            registry_config,
            client: NodeClient::default(),
            clock,
            request_timeout: REQUEST_TIMEOUT,
            sent: std::sync::Mutex::new(None),
        })
    }

    /// Sets the timeout of each onion try (default 10 s, `onion.md` §10.7).
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Starts (or stops and clears) recording every request sent, direct or
    /// onion, for tests and audits: see [`Network::sent_requests`].
    pub fn record_requests(&self, on: bool) {
        if let Ok(mut g) = self.sent.lock() {
            *g = on.then(Vec::new);
        }
    }

    /// The requests sent since recording started.
    pub fn sent_requests(&self) -> Vec<SentRequest> {
        self.sent
            .lock()
            .ok()
            .and_then(|g| g.clone())
            .unwrap_or_default()
    }

    /// Sends `req` to `node`, recording it when recording is on.
    async fn send_logged(
        &self,
        node: &NodeAddr,
        method: Option<&'static str>,
        body_len: usize,
        req: Request,
    ) -> Result<umbra_transport::Response, TransportError> {
        if let Ok(mut g) = self.sent.lock()
            && let Some(log) = g.as_mut()
        {
            log.push(SentRequest {
                to: node.key.to_bytes(),
                endpoint: if method.is_some() {
                    "/storage_rpc/v1"
                } else {
                    "/onion_req/v2"
                },
                method,
                body_len,
            });
        }
        self.client.send(node, req).await
    }

    /// The ready onion paths, `[guard, hop2, hop3]` each.
    pub async fn paths(&self) -> Vec<[NodeRecord; 3]> {
        let st = self.state.lock().await;
        st.pm.paths().into_iter().map(|(_, p)| p.clone()).collect()
    }

    fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    /// The network configuration this client was opened with.
    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    /// Network time (`onion.md` §10.5): local time plus the learnt offset.
    pub async fn network_now(&self) -> u64 {
        let now = self.now();
        self.state.lock().await.pm.network_now(now)
    }

    /// The guards to persist (`None` when unchanged since the last call).
    pub async fn take_guard_state(&self) -> Option<GuardState> {
        let mut st = self.state.lock().await;
        std::mem::take(&mut st.guards_changed).then(|| st.pm.guard_state())
    }

    /// The registry document held, encoded (to persist).
    pub async fn registry_bytes(&self) -> Option<Vec<u8>> {
        self.state
            .lock()
            .await
            .registry
            .as_ref()
            .map(|d| d.encode())
    }

    /// The registry document held.
    pub async fn registry(&self) -> Option<Arc<RegistryDocument>> {
        self.state.lock().await.registry.clone()
    }

    /// Offers a registry document obtained out of band (a registry
    /// publication URL, a file; issue 11), checked by `swarms.md` §3.2
    /// against the pinned keys, the threshold and the epoch held: below the
    /// threshold or with a broken chain it is refused (`Err`); not newer
    /// than the epoch held (a replay) it is ignored (`Ok(false)`).
    pub async fn offer_registry(&self, bytes: &[u8]) -> Result<bool, NetError> {
        let mut st = self.state.lock().await;
        self.offer(&mut st, bytes).map_err(NetError::Bootstrap)
    }

    fn offer(&self, st: &mut State, bytes: &[u8]) -> Result<bool, String> {
        let held = st.registry.as_deref();
        match RegistryDocument::verify(bytes, &self.registry_config, held, ReaderRole::Client) {
            Ok(doc) => {
                st.pm.handle_registry(&doc, self.now());
                st.registry = Some(Arc::new(doc));
                st.swarm_cache.clear();
                Ok(true)
            }
            Err(umbra_proto::swarm::RegistryError::StaleEpoch { .. }) => Ok(false),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Direct `get_registry` from the seed nodes (first start, §3.3).
    async fn bootstrap(&self) -> Result<(), NetError> {
        let mut last = String::from("no seed nodes configured");
        for seed in &self.config.seed_nodes {
            let a = NodeAddr::new(
                std::net::SocketAddr::from((seed.ip, seed.port_https)),
                seed.pubkey_ed25519.0,
            );
            let body = json!({"method": "get_registry", "params": {}}).to_string();
            let len = body.len();
            let req = match Request::post("/storage_rpc/v1", body.into_bytes()) {
                Ok(r) => r.timeout(REQUEST_TIMEOUT),
                Err(e) => return Err(NetError::Bootstrap(e.to_string())),
            };
            match self.send_logged(&a, Some("get_registry"), len, req).await {
                Ok(resp) if resp.status == 200 => {
                    match serde_json::from_slice::<GetRegistryResponse>(&resp.body) {
                        Ok(GetRegistryResponse {
                            registry: Some(doc),
                            ..
                        }) => {
                            let mut st = self.state.lock().await;
                            match self.offer(&mut st, &doc.0) {
                                Ok(_) => return Ok(()),
                                Err(e) => last = format!("seed's registry refused: {e}"),
                            }
                        }
                        Ok(_) => last = "seed has no registry".into(),
                        Err(e) => last = format!("bad get_registry reply: {e}"),
                    }
                }
                Ok(resp) => last = format!("seed answered {}", resp.status),
                Err(e) => last = e.to_string(),
            }
        }
        Err(NetError::Bootstrap(last))
    }

    /// Performs the path manager's pending work until it has none.
    async fn drive(&self) -> Result<(), NetError> {
        for _ in 0..64 {
            let action = {
                let mut st = self.state.lock().await;
                let now = self.now();
                let a = st.pm.poll_action(now, &mut draw);
                while let Some(ev) = st.pm.poll_event() {
                    match ev {
                        Event::GuardsChanged => st.guards_changed = true,
                        Event::NodeMarkedBad(k) => {
                            for members in st.swarm_cache.values_mut() {
                                members.retain(|r| r.ed25519 != k);
                            }
                        }
                        _ => {}
                    }
                }
                a
            };
            let Some(action) = action else { return Ok(()) };
            match action {
                Action::Bootstrap => self.bootstrap().await?,
                Action::RefreshRegistry => {
                    if let Err(e) = self.refresh_registry().await {
                        tracing::debug!(error = %e, "registry refresh failed");
                    }
                }
                Action::TestGuard { node } => {
                    let result = self.direct_info(&node).await;
                    let now = self.now();
                    let mut st = self.state.lock().await;
                    let t = match result {
                        Some(t) => GuardTest::Reachable { node_time_ms: t },
                        None => GuardTest::Unreachable,
                    };
                    st.pm.handle_guard_test(&node.ed25519, t, now);
                }
                Action::TestPath {
                    id,
                    path,
                    destination,
                } => {
                    let payload = json!({"method": "info", "params": {}}).to_string();
                    let (outcome, _, _) = self
                        .send_once(&path, &destination, payload.as_bytes())
                        .await;
                    let now = self.now();
                    self.state
                        .lock()
                        .await
                        .pm
                        .handle_path_test(id, &outcome, now);
                }
                _ => return Ok(()),
            }
        }
        Ok(())
    }

    async fn direct_info(&self, node: &NodeRecord) -> Option<u64> {
        let body = json!({"method": "info", "params": {}}).to_string();
        let len = body.len();
        let req = Request::post("/storage_rpc/v1", body.into_bytes())
            .ok()?
            .timeout(GUARD_TEST_TIMEOUT);
        let resp = self
            .send_logged(&addr(node), Some("info"), len, req)
            .await
            .ok()?;
        if resp.status != 200 {
            return None;
        }
        serde_json::from_slice::<Value>(&resp.body).ok()?["t"].as_u64()
    }

    /// Waits until at least one onion path is ready (bootstrapping and
    /// testing guards and paths as needed), for at most `timeout`.
    pub async fn ensure_ready(&self, timeout: Duration) -> Result<(), NetError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            self.drive().await?;
            let wait = {
                let st = self.state.lock().await;
                if !st.pm.paths().is_empty() {
                    return Ok(());
                }
                let now = self.now();
                st.pm
                    .poll_timeout(now)
                    .map_or(100, |t| t.saturating_sub(now).clamp(10, 200))
            };
            if tokio::time::Instant::now() > deadline {
                return Err(NetError::NoPath(format!(
                    "none ready after {} s",
                    timeout.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
    }

    /// The members of the swarm owning `account` (cached `421` answers first).
    pub async fn swarm_of(&self, account: &AccountId) -> Result<Vec<NodeRecord>, NetError> {
        let st = self.state.lock().await;
        if let Some(m) = st.swarm_cache.get(account).filter(|m| !m.is_empty()) {
            return Ok(m.clone());
        }
        let doc = st.registry.as_ref().ok_or(NetError::NoSwarm)?;
        let members: Vec<NodeRecord> = doc.members_for(account).into_iter().cloned().collect();
        if members.is_empty() {
            Err(NetError::NoSwarm)
        } else {
            Ok(members)
        }
    }

    /// Sends a built onion to the path's guard with `timeout`. On failure,
    /// the try's outcome and where it failed: an onion that could not be
    /// built (`413`, never sent) or a guard that could not be reached.
    async fn post_onion(
        &self,
        guard: &NodeRecord,
        built: Result<umbra_proto::onion::BuiltOnion, NetError>,
        timeout: Duration,
    ) -> Result<(umbra_proto::onion::LayerKey, umbra_transport::Response), (Outcome, FailedAt)>
    {
        let built = built.map_err(|e| {
            tracing::warn!(error = %e, "cannot build onion");
            (Outcome::Rejected { status: 413 }, FailedAt::Build)
        })?;
        let unreachable = (Outcome::GuardUnreachable, FailedAt::Guard);
        let len = built.body.len();
        let req = Request::post("/onion_req/v2", built.body)
            .map_err(|_| unreachable.clone())?
            .timeout(timeout);
        let resp = self
            .send_logged(&addr(guard), None, len, req)
            .await
            .map_err(|e| {
                tracing::debug!(error = %e, "guard unreachable");
                unreachable
            })?;
        Ok((built.reply_key, resp))
    }

    /// One try: build the onion for `path` → `destination`, send it to the
    /// guard, classify the reply (with where it failed, if it did).
    async fn send_once(
        &self,
        path: &[NodeRecord; 3],
        destination: &NodeRecord,
        payload: &[u8],
    ) -> (Outcome, Option<RpcReply>, Option<TryFailure>) {
        let mut route: Vec<[u8; 32]> = path.iter().map(|n| n.ed25519.to_bytes()).collect();
        route.push(destination.ed25519.to_bytes());
        let failed = |at: FailedAt, relay_reply: Option<(u16, String)>| {
            Some(TryFailure {
                route: route.clone(),
                at,
                relay_reply,
            })
        };
        let built = (|| {
            let hops = path.iter().map(path_node).collect::<Result<Vec<_>, _>>()?;
            let dest = OnionDestination::Node {
                node: path_node(destination)?,
                options: NodeRequestOptions::default(),
            };
            let random: Vec<LayerRandom> = (0..4).map(|_| layer_random()).collect();
            build_padded_onion(EncType::XChaCha20, payload, &hops, &dest, &random)
                .map_err(|e| NetError::Onion(e.to_string()))
        })();
        let (reply_key, resp) = match self.post_onion(&path[0], built, self.request_timeout).await {
            Ok(sent) => sent,
            Err((outcome, at)) => return (outcome, None, failed(at, None)),
        };
        match open_node_reply(&reply_key, resp.status.as_u16(), &resp.body) {
            ReplyOutcome::Reply(r) => {
                let t = r.body.get("t").and_then(Value::as_u64);
                let text = match &r.body {
                    Value::String(s) => s.clone(),
                    v => v.to_string(),
                };
                let outcome = Outcome::from_inner(r.status, &text, t);
                let failure = (r.status != 200)
                    .then(|| failed(FailedAt::Destination(r.status), None))
                    .flatten();
                (
                    outcome,
                    Some(RpcReply {
                        status: r.status,
                        body: r.body,
                        route: route.clone(),
                    }),
                    failure,
                )
            }
            ReplyOutcome::RelayError { status, text } => {
                let (outcome, at) = classify_relay_error(status, &text);
                (outcome, None, failed(at, Some((status, text))))
            }
            _ => (
                Outcome::RelayFailure,
                None,
                failed(FailedAt::Undecryptable, None),
            ),
        }
    }

    async fn refresh_registry(&self) -> Result<(), NetError> {
        let (members, epoch) = {
            let st = self.state.lock().await;
            let doc = st.registry.as_ref().ok_or(NetError::NoSwarm)?;
            (doc.nodes().to_vec(), doc.epoch())
        };
        let request = json!({"method": "get_registry", "params": {"epoch": epoch}});
        let reply = Box::pin(self.request_to(members, request, None)).await?;
        if reply.status == 200
            && let Ok(r) = serde_json::from_value::<GetRegistryResponse>(reply.body)
            && let Some(doc) = r.registry
        {
            let mut st = self.state.lock().await;
            self.offer(&mut st, &doc.0).map_err(NetError::Bootstrap)?;
        }
        Ok(())
    }

    /// A storage RPC for `account` (its swarm is the destination), through
    /// an onion path, with the retries of `onion.md` §10.6.
    pub async fn storage_request(
        &self,
        account: &AccountId,
        method: &str,
        params: Value,
    ) -> Result<RpcReply, NetError> {
        self.ensure_ready(Duration::from_secs(30)).await?;
        let members = self.swarm_of(account).await?;
        self.request_to(
            members,
            json!({"method": method, "params": params}),
            Some(*account),
        )
        .await
    }

    /// An RPC with one of `members` as the onion destination (hook for
    /// issue 5): `sync` polls one chosen swarm member so that its per-node
    /// `last_hash` applies (pass `account` so `421`s update the swarm
    /// cache), and link previews send `proxy_fetch` to a random node.
    /// The reply's `route` ends with the node that answered.
    pub async fn request_via(
        &self,
        members: Vec<NodeRecord>,
        method: &str,
        params: Value,
        account: Option<AccountId>,
    ) -> Result<RpcReply, NetError> {
        self.ensure_ready(Duration::from_secs(30)).await?;
        self.request_to(
            members,
            json!({"method": method, "params": params}),
            account,
        )
        .await
    }

    async fn request_to(
        &self,
        members: Vec<NodeRecord>,
        request: Value,
        account: Option<AccountId>,
    ) -> Result<RpcReply, NetError> {
        let payload = request.to_string();
        let mut plan: Plan = {
            let mut st = self.state.lock().await;
            let now = self.now();
            st.pm.plan_storage_request(&members, now, &mut draw)?
        };
        let mut last_reply: Option<RpcReply> = None;
        let mut last_failure: Option<TryFailure> = None;
        let fail = |error: PathError, last: &Option<TryFailure>| match last {
            Some(t) => NetError::Failed {
                error,
                last: Box::new(t.clone()),
            },
            None => NetError::Path(error),
        };
        loop {
            let Some(dest) = plan.destination_node().cloned() else {
                return Err(fail(PathError::NoDestination, &last_failure));
            };
            let (outcome, reply, failure) =
                self.send_once(&plan.path, &dest, payload.as_bytes()).await;
            if reply.is_some() {
                last_reply = reply;
            }
            if failure.is_some() {
                last_failure = failure;
            }
            let decision = {
                let mut st = self.state.lock().await;
                let now = self.now();
                st.pm.handle_outcome(plan, outcome, now, &mut draw)
            };
            let next = match decision {
                Decision::Done => return last_reply.ok_or(NetError::Path(PathError::NoPath)),
                Decision::Fail(PathError::Rejected { .. }) if last_reply.is_some() => {
                    return last_reply.ok_or(NetError::Path(PathError::NoPath));
                }
                Decision::Fail(e) => {
                    // A final inner error (e.g. still 421) is still a reply the caller can read.
                    return match last_reply {
                        Some(r) if r.status != 200 => Ok(r),
                        _ => Err(fail(e, &last_failure)),
                    };
                }
                Decision::Retry {
                    delay_ms,
                    plan,
                    swarm,
                } => {
                    if let (Some(s), Some(a)) = (swarm, account) {
                        self.state.lock().await.swarm_cache.insert(a, s);
                    }
                    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                    Ok(*plan)
                }
                Decision::RefreshRegistry(pending) => {
                    let _ = Box::pin(self.refresh_registry()).await;
                    let members = match account {
                        Some(a) => self.swarm_of(&a).await.ok(),
                        None => None,
                    };
                    let mut st = self.state.lock().await;
                    let now = self.now();
                    Err(st.pm.resume(pending, members.as_deref(), now, &mut draw))
                }
                Decision::ResyncClock { nodes, pending } => {
                    // §10.5: `info` through onion requests, never direct.
                    let mut samples = Vec::new();
                    for n in &nodes {
                        let info = json!({"method": "info", "params": {}});
                        if let Ok(r) = Box::pin(self.request_to(vec![n.clone()], info, None)).await
                            && r.status == 200
                            && let Some(t) = r.body.get("t").and_then(Value::as_u64)
                        {
                            samples.push((t, self.now()));
                        }
                    }
                    let mut st = self.state.lock().await;
                    st.pm.handle_clock_resync(&samples);
                    let now = self.now();
                    Err(st.pm.resume(pending, None, now, &mut draw))
                }
                Decision::Bootstrap(pending) => {
                    self.bootstrap().await?;
                    let mut st = self.state.lock().await;
                    let now = self.now();
                    Err(st.pm.resume(pending, None, now, &mut draw))
                }
            };
            plan = match next {
                Ok(p) => p,
                Err(Decision::Retry { delay_ms, plan, .. }) => {
                    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                    *plan
                }
                Err(Decision::Fail(e)) => return Err(fail(e, &last_failure)),
                Err(Decision::Done) => return last_reply.ok_or(NetError::Path(PathError::NoPath)),
                Err(_) => return Err(fail(PathError::NoPath, &last_failure)),
            };
        }
    }

    // ---- server requests (attachments.md §4.1; issue 9 hook) ----

    /// A v4 lsrpc request (`payload`, an encoded `V4Request`) to `server`
    /// through an onion path: hop 3 proxies it (`onion.md` §4.2, §8). Any
    /// decrypted server reply is returned whatever its code; path failures
    /// are retried on other paths as `onion.md` §10.6 says. `timeout` bounds
    /// each try (large uploads need more than the storage 10 s).
    pub async fn server_request(
        &self,
        server: &ServerTarget,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<V4Response, NetError> {
        self.ensure_ready(Duration::from_secs(30)).await?;
        let mut plan: Plan = {
            let mut st = self.state.lock().await;
            let now = self.now();
            st.pm.plan_server_request(now, &mut draw)?
        };
        let mut last_failure: Option<TryFailure> = None;
        let fail = |error: PathError, last: &Option<TryFailure>| match last {
            Some(t) => NetError::Failed {
                error,
                last: Box::new(t.clone()),
            },
            None => NetError::Path(error),
        };
        loop {
            let (outcome, reply, failure) = self
                .send_server_once(&plan.path, server, payload, timeout)
                .await;
            if failure.is_some() {
                last_failure = failure;
            }
            let decision = {
                let mut st = self.state.lock().await;
                let now = self.now();
                st.pm.handle_outcome(plan, outcome, now, &mut draw)
            };
            let next = match decision {
                Decision::Done => {
                    return reply.ok_or_else(|| fail(PathError::NoPath, &last_failure));
                }
                Decision::Fail(e) => return Err(fail(e, &last_failure)),
                Decision::Retry { delay_ms, plan, .. } => {
                    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                    Ok(*plan)
                }
                Decision::RefreshRegistry(pending) => {
                    let _ = Box::pin(self.refresh_registry()).await;
                    let mut st = self.state.lock().await;
                    let now = self.now();
                    Err(st.pm.resume(pending, None, now, &mut draw))
                }
                Decision::ResyncClock { pending, .. } => {
                    let mut st = self.state.lock().await;
                    let now = self.now();
                    Err(st.pm.resume(pending, None, now, &mut draw))
                }
                Decision::Bootstrap(pending) => {
                    self.bootstrap().await?;
                    let mut st = self.state.lock().await;
                    let now = self.now();
                    Err(st.pm.resume(pending, None, now, &mut draw))
                }
            };
            plan = match next {
                Ok(p) => p,
                Err(Decision::Retry { delay_ms, plan, .. }) => {
                    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                    *plan
                }
                Err(Decision::Fail(e)) => return Err(fail(e, &last_failure)),
                Err(_) => return Err(fail(PathError::NoPath, &last_failure)),
            };
        }
    }

    /// One try of a server request along `path`.
    async fn send_server_once(
        &self,
        path: &[NodeRecord; 3],
        server: &ServerTarget,
        payload: &[u8],
        timeout: Duration,
    ) -> (Outcome, Option<V4Response>, Option<TryFailure>) {
        let route: Vec<[u8; 32]> = path.iter().map(|n| n.ed25519.to_bytes()).collect();
        let failed = |at: FailedAt, relay_reply: Option<(u16, String)>| {
            Some(TryFailure {
                route: route.clone(),
                at,
                relay_reply,
            })
        };
        let built = (|| {
            let hops = path.iter().map(path_node).collect::<Result<Vec<_>, _>>()?;
            let dest = OnionDestination::Server(server.clone());
            let random: Vec<LayerRandom> = (0..4).map(|_| layer_random()).collect();
            build_padded_onion(EncType::XChaCha20, payload, &hops, &dest, &random)
                .map_err(|e| NetError::Onion(e.to_string()))
        })();
        let (reply_key, resp) = match self.post_onion(&path[0], built, timeout).await {
            Ok(sent) => sent,
            Err((outcome, at)) => return (outcome, None, failed(at, None)),
        };
        match open_server_reply(&reply_key, resp.status.as_u16(), &resp.body) {
            ReplyOutcome::Reply(r) => (Outcome::Success { node_time_ms: None }, Some(r), None),
            ReplyOutcome::RelayError { status, text } => {
                let (outcome, at) = classify_relay_error(status, &text);
                (outcome, None, failed(at, Some((status, text))))
            }
            _ => (
                Outcome::RelayFailure,
                None,
                failed(FailedAt::Undecryptable, None),
            ),
        }
    }
}
