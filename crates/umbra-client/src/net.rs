//! The client's network layer: every storage request goes through a 3-hop
//! onion path (`onion.md`), chosen and repaired by the sans-I/O
//! [`PathManager`] of `umbra_proto::path`, which this module drives: it
//! performs the manager's actions (bootstrap from seed nodes, guard tests,
//! path tests, registry refreshes), sends requests along planned paths,
//! classifies replies into [`Outcome`]s and follows the [`Decision`]s
//! (retry with backoff, replace nodes, follow `421`s, resync the clock).
//!
//! The only direct (non-onion) requests are `info` to test a guard and
//! `get_registry` to a seed node at bootstrap (`storage-rpc.md` §1.2).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Mutex;
use umbra_proto::identity::AccountId;
use umbra_proto::network::NetworkConfig;
use umbra_proto::onion::{
    EncType, LayerRandom, NodeRequestOptions, OnionDestination, PathNode, ReplyOutcome,
    build_padded_onion, open_node_reply,
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
        })
    }

    fn now(&self) -> u64 {
        self.clock.now_ms()
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
            let req = match Request::post("/storage_rpc/v1", body.into_bytes()) {
                Ok(r) => r.timeout(REQUEST_TIMEOUT),
                Err(e) => return Err(NetError::Bootstrap(e.to_string())),
            };
            match self.client.send(&a, req).await {
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
                    let (outcome, _) = self
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
        let req = Request::post("/storage_rpc/v1", body.into_bytes())
            .ok()?
            .timeout(GUARD_TEST_TIMEOUT);
        let resp = self.client.send(&addr(node), req).await.ok()?;
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

    /// One try: build the onion for `path` → `destination`, send it to the
    /// guard, classify the reply.
    async fn send_once(
        &self,
        path: &[NodeRecord; 3],
        destination: &NodeRecord,
        payload: &[u8],
    ) -> (Outcome, Option<RpcReply>) {
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
        let built = match built {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "cannot build onion");
                return (Outcome::Rejected { status: 413 }, None);
            }
        };
        let req = match Request::post("/onion_req/v2", built.body) {
            Ok(r) => r.timeout(REQUEST_TIMEOUT),
            Err(_) => return (Outcome::GuardUnreachable, None),
        };
        let resp = match self.client.send(&addr(&path[0]), req).await {
            Ok(r) => r,
            Err(e) => {
                let _: &TransportError = &e;
                tracing::debug!(error = %e, "guard unreachable");
                return (Outcome::GuardUnreachable, None);
            }
        };
        match open_node_reply(&built.reply_key, resp.status.as_u16(), &resp.body) {
            ReplyOutcome::Reply(r) => {
                let t = r.body.get("t").and_then(Value::as_u64);
                let text = match &r.body {
                    Value::String(s) => s.clone(),
                    v => v.to_string(),
                };
                let outcome = Outcome::from_inner(r.status, &text, t);
                let mut route: Vec<[u8; 32]> = path.iter().map(|n| n.ed25519.to_bytes()).collect();
                route.push(destination.ed25519.to_bytes());
                (
                    outcome,
                    Some(RpcReply {
                        status: r.status,
                        body: r.body,
                        route,
                    }),
                )
            }
            ReplyOutcome::RelayError { status, text } => {
                (Outcome::from_relay_error(status, &text), None)
            }
            _ => (Outcome::RelayFailure, None),
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
        loop {
            let Some(dest) = plan.destination_node().cloned() else {
                return Err(NetError::Path(PathError::NoDestination));
            };
            let (outcome, reply) = self.send_once(&plan.path, &dest, payload.as_bytes()).await;
            if reply.is_some() {
                last_reply = reply;
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
                        _ => Err(e.into()),
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
                    let mut samples = Vec::new();
                    for n in &nodes {
                        if let Some(t) = self.direct_info(n).await {
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
                Err(Decision::Fail(e)) => return Err(e.into()),
                Err(Decision::Done) => return last_reply.ok_or(NetError::Path(PathError::NoPath)),
                Err(_) => return Err(NetError::Path(PathError::NoPath)),
            };
        }
    }
}
