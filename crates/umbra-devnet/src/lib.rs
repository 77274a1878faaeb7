//! A whole Umbra network on one machine (`umbra devnet`, `umbra demo`, and
//! the client and network tests).
//!
//! [`Devnet::up`] generates node keys and a registry key, signs a registry
//! document in the format of `swarms.md` §3 listing every node, writes
//! `network.json`, `registry` and `nodes.json` into the devnet directory, and
//! runs the nodes — in this process ([`Mode::InProcess`]) or as separate
//! `umbra node` processes ([`Mode::Processes`]) — then waits until every node
//! answers `info` with the current epoch. [`Devnet::add_node`] and
//! [`Devnet::remove_node`] publish a new epoch; nodes pick it up from the
//! shared registry file.

pub mod fileserver;
pub mod registries;
pub mod shared;
pub mod sim;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use umbra_crypto::Ed25519Keypair;
use umbra_node::{NodeConfig, NodeHandle};
use umbra_proto::network::{NetworkConfig, SeedNode, SwarmParamsJson};
use umbra_proto::rpc::encoding::Ed25519Hex;
use umbra_proto::swarm::{NodeRecord, RegistryDocument, SwarmParams};
use umbra_transport::{NodeAddr, NodeClient, SystemClock};

/// How nodes run.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Inside this process (tests, the demo).
    InProcess,
    /// As child processes: `EXE node --config FILE` (the `umbra` binary).
    Processes {
        /// The executable providing the `node` subcommand.
        exe: PathBuf,
    },
}

/// What to start.
#[derive(Debug, Clone)]
pub struct DevnetOptions {
    /// Number of nodes.
    pub nodes: usize,
    /// Directory for keys, data, registry and logs.
    pub dir: PathBuf,
    /// First HTTPS port (node i listens on base + i); 0 picks free ports.
    pub base_port: u16,
    /// Minimum swarm size (the devnet's `MIN_SWARM_SIZE`, §4.1).
    pub swarm_size_hint: usize,
    /// In-process or processes.
    pub mode: Mode,
    /// Give node i its own loopback address in its own /24 (`127.0.{i+1}.1`,
    /// Linux routes all of 127/8 to lo) so the client's subnet rules apply.
    pub distinct_ips: bool,
}

impl DevnetOptions {
    /// `n` in-process nodes in `dir` on free ports, swarms of at least 3.
    pub fn in_process(n: usize, dir: impl Into<PathBuf>) -> Self {
        DevnetOptions {
            nodes: n,
            dir: dir.into(),
            base_port: 0,
            swarm_size_hint: 3,
            mode: Mode::InProcess,
            distinct_ips: false,
        }
    }
}

/// A devnet failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DevnetError {
    /// File system.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A node could not start.
    #[error("node {index} failed to start: {message}")]
    NodeStart {
        /// Its index.
        index: usize,
        /// Why.
        message: String,
    },
    /// A node did not become ready in time.
    #[error("node {index} did not answer within {secs} s (see its log in {log})")]
    NotReady {
        /// Its index.
        index: usize,
        /// The wait.
        secs: u64,
        /// Where its log is.
        log: String,
    },
    /// Registry building.
    #[error("registry: {0}")]
    Registry(String),
    /// The devnet directory holds no running devnet.
    #[error("no devnet state in {0} (start one with `umbra devnet up --dir {0}`)")]
    NoState(String),
    /// Bad options.
    #[error("{0}")]
    Invalid(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DevnetError {
    let what = what.into();
    move |source| DevnetError::Io { what, source }
}

/// One node of the devnet, as recorded in `devnet.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberState {
    /// Index (directory `nodeI`).
    pub index: usize,
    /// Ed25519 key, hex.
    pub pubkey_ed25519: String,
    /// HTTPS address.
    pub addr: SocketAddr,
    /// Admin address.
    pub admin: Option<SocketAddr>,
    /// Process ID when run as a process.
    pub pid: Option<u32>,
    /// Listed in the current epoch.
    pub listed: bool,
}

/// `devnet.json`: what `status`, `down`, `add-node` and `remove-node` read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DevnetState {
    /// Nodes, by index.
    pub nodes: Vec<MemberState>,
    /// Minimum swarm size.
    pub swarm_size_hint: usize,
    /// The `umbra` executable for processes, if any.
    pub exe: Option<PathBuf>,
}

enum Runner {
    InProcess(NodeHandle),
    Process(tokio::process::Child),
    /// A process started by another `umbra devnet` invocation.
    External(Option<u32>),
    Stopped,
}

/// A running devnet.
pub struct Devnet {
    dir: PathBuf,
    registry_key: Ed25519Keypair,
    network: NetworkConfig,
    keys: Vec<Ed25519Keypair>,
    addrs: Vec<SocketAddr>,
    admins: Vec<Option<SocketAddr>>,
    runners: Vec<Runner>,
    listed: Vec<bool>,
    doc: RegistryDocument,
    mode: Mode,
    swarm_size_hint: usize,
    client: NodeClient,
    /// Per-node configuration overrides (fault injection, see [`NodeOverrides`]).
    overrides: Vec<NodeOverrides>,
}

/// Per-node settings that differ from the devnet's defaults, applied when
/// the node is (re)started: see [`Devnet::set_overrides`] and
/// [`Devnet::restart_node`] (the load generator's disk-cap fault).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeOverrides {
    /// Database size cap in bytes (`db_size_cap_bytes`).
    pub db_size_cap_bytes: Option<u64>,
    /// Token-bucket capacity per client IP.
    pub rate_limit_burst: Option<u32>,
    /// Token-bucket refill per second per client IP.
    pub rate_limit_per_sec: Option<u32>,
}

/// The devnet's swarm constants for a minimum swarm size `k`.
pub fn devnet_params(k: usize) -> SwarmParams {
    let k = k.max(1);
    SwarmParams {
        min_swarm_size: k,
        excess_base: k,
        ideal_swarm_margin: 1,
        new_swarm_size: k,
    }
}

fn now_ms() -> u64 {
    use umbra_transport::Clock;
    SystemClock.now_ms()
}

fn free_port_on(ip: Ipv4Addr) -> Result<u16, DevnetError> {
    Ok(reserve_port_on(ip)?.1)
}

/// A free port on `ip`, kept bound (so neither another test nor an
/// outgoing connection can take it) until the returned listener is dropped
/// just before the node binds it.
fn reserve_port_on(ip: Ipv4Addr) -> Result<(std::net::TcpListener, u16), DevnetError> {
    let l = std::net::TcpListener::bind((ip, 0)).map_err(io("finding a free port"))?;
    let port = l.local_addr().map_err(io("finding a free port"))?.port();
    Ok((l, port))
}

fn free_port() -> Result<u16, DevnetError> {
    free_port_on(Ipv4Addr::LOCALHOST)
}

/// Creates node `i`'s directory and key (a fresh random seed, 0600).
fn node_key(root: &Path, i: usize) -> Result<Ed25519Keypair, DevnetError> {
    let dir = root.join(format!("node{i}"));
    std::fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
    umbra_node::keyfile::load_or_create(&dir.join("node.key"), umbra_crypto::random_bytes::<32>)
        .map_err(|e| DevnetError::NodeStart {
            index: i,
            message: e.to_string(),
        })
}

/// The loopback address of node `i` (its own /24 when `distinct`).
fn node_ip(i: usize, distinct: bool) -> Ipv4Addr {
    if distinct {
        Ipv4Addr::new(127, ((i + 1) / 256) as u8, ((i + 1) % 256) as u8, 1)
    } else {
        Ipv4Addr::LOCALHOST
    }
}

fn ipv4_of(a: &SocketAddr) -> Ipv4Addr {
    match a.ip() {
        std::net::IpAddr::V4(v4) => v4,
        std::net::IpAddr::V6(_) => Ipv4Addr::LOCALHOST,
    }
}

impl Devnet {
    /// Starts a devnet.
    pub async fn up(opts: DevnetOptions) -> Result<Devnet, DevnetError> {
        Self::up_inner(opts, None).await
    }

    /// [`Devnet::up`]; with `plan`, the network's registry keys, threshold
    /// and publication URLs are those of registry instances (issue 11 hook,
    /// see [`registries`]).
    pub(crate) async fn up_inner(
        opts: DevnetOptions,
        plan: Option<&registries::Plan>,
    ) -> Result<Devnet, DevnetError> {
        if opts.nodes == 0 {
            return Err(DevnetError::Invalid(
                "a devnet needs at least one node".into(),
            ));
        }
        std::fs::create_dir_all(&opts.dir)
            .map_err(io(format!("creating {}", opts.dir.display())))?;
        let registry_key = umbra_node::keyfile::load_or_create(
            &opts.dir.join("registry.key"),
            umbra_crypto::random_bytes::<32>,
        )
        .map_err(|e| DevnetError::Registry(e.to_string()))?;
        let params = devnet_params(opts.swarm_size_hint);
        let mut keys = Vec::new();
        let mut addrs = Vec::new();
        let mut admins = Vec::new();
        let mut reserved = Vec::new();
        for i in 0..opts.nodes {
            keys.push(node_key(&opts.dir, i)?);
            let ip = node_ip(i, opts.distinct_ips);
            let port = if opts.base_port == 0 {
                let (l, port) = reserve_port_on(ip)?;
                reserved.push(Some(l));
                port
            } else {
                reserved.push(None);
                opts.base_port
                    .checked_add(i as u16)
                    .ok_or_else(|| DevnetError::Invalid("port out of range".into()))?
            };
            addrs.push(SocketAddr::from((ip, port)));
            admins.push(match opts.mode {
                Mode::Processes { .. } => {
                    Some(SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?)))
                }
                Mode::InProcess => None,
            });
        }
        let network = NetworkConfig {
            name: "devnet".into(),
            registry_keys: vec![Ed25519Hex(registry_key.public())],
            threshold: 1,
            swarm_params: Some(SwarmParamsJson::from(params)),
            registry_urls: vec![],
            seed_nodes: keys
                .iter()
                .zip(&addrs)
                .take(3)
                .map(|(k, a)| SeedNode {
                    ip: ipv4_of(a),
                    port_https: a.port(),
                    pubkey_ed25519: Ed25519Hex(k.public()),
                })
                .collect(),
            file_server: None,
        };
        let network = registries::Plan::apply(plan, network);
        std::fs::write(opts.dir.join("network.json"), network.to_json())
            .map_err(io("writing network.json"))?;
        let listed = vec![true; opts.nodes];
        let doc = build_doc(&registry_key, None, &keys, &addrs, &listed, params)?;
        let doc = registries::Plan::sign_genesis(plan, doc);
        let mut net = Devnet {
            dir: opts.dir.clone(),
            registry_key,
            network,
            keys,
            addrs,
            admins,
            runners: Vec::new(),
            listed,
            doc,
            mode: opts.mode.clone(),
            swarm_size_hint: opts.swarm_size_hint,
            client: NodeClient::default(),
            overrides: vec![NodeOverrides::default(); opts.nodes],
        };
        net.write_registry()?;
        for (i, reservation) in reserved.iter_mut().enumerate() {
            drop(reservation.take());
            let r = net.spawn(i).await?;
            net.runners.push(r);
        }
        net.write_state()?;
        net.wait_ready(Duration::from_secs(60)).await?;
        Ok(net)
    }

    fn node_config(&self, i: usize) -> NodeConfig {
        let o = self.overrides.get(i).copied().unwrap_or_default();
        let d = NodeConfig::default();
        NodeConfig {
            db_size_cap_bytes: o.db_size_cap_bytes.unwrap_or(d.db_size_cap_bytes),
            rate_limit_burst: o.rate_limit_burst.unwrap_or(d.rate_limit_burst),
            rate_limit_per_sec: o.rate_limit_per_sec.unwrap_or(d.rate_limit_per_sec),
            data_dir: self.dir.join(format!("node{i}")),
            listen: self.addrs[i],
            admin_listen: self.admins[i],
            network_file: Some(self.dir.join("network.json")),
            registry_file: Some(self.dir.join("registry")),
            log_level: "warn".into(),
            registry_poll_ms: 250,
            publication_poll_ms: 500,
            catchup_interval_ms: 2_000,
            // Hop 3 may proxy to the devnet's file server on loopback (issue 9).
            onion_proxy_exempt: vec![std::net::IpAddr::V4(Ipv4Addr::LOCALHOST)],
            ..NodeConfig::default()
        }
    }

    async fn spawn(&self, i: usize) -> Result<Runner, DevnetError> {
        let cfg = self.node_config(i);
        match &self.mode {
            Mode::InProcess => {
                let h = umbra_node::start(cfg, &self.network, Arc::new(SystemClock))
                    .await
                    .map_err(|e| DevnetError::NodeStart {
                        index: i,
                        message: e.to_string(),
                    })?;
                Ok(Runner::InProcess(h))
            }
            Mode::Processes { exe } => {
                let dir = self.dir.join(format!("node{i}"));
                let toml = config_toml(&cfg);
                let cfg_path = dir.join("umbrad.toml");
                std::fs::write(&cfg_path, toml).map_err(io("writing node config"))?;
                let log = std::fs::File::create(dir.join("umbrad.log"))
                    .map_err(io("creating node log"))?;
                let log2 = log.try_clone().map_err(io("creating node log"))?;
                let child = tokio::process::Command::new(exe)
                    .arg("node")
                    .arg("--config")
                    .arg(&cfg_path)
                    .stdin(std::process::Stdio::null())
                    .stdout(log)
                    .stderr(log2)
                    .kill_on_drop(false)
                    .spawn()
                    .map_err(|e| DevnetError::NodeStart {
                        index: i,
                        message: format!("{}: {e}", exe.display()),
                    })?;
                Ok(Runner::Process(child))
            }
        }
    }

    /// Waits until every listed node answers `info` with the current epoch.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), DevnetError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let epoch = self.doc.epoch();
        for i in 0..self.keys.len() {
            if !self.listed[i] || matches!(self.runners.get(i), Some(Runner::Stopped) | None) {
                continue;
            }
            loop {
                if self
                    .info(i)
                    .await
                    .is_some_and(|v| v["epoch"].as_u64() == Some(epoch))
                {
                    break;
                }
                if tokio::time::Instant::now() > deadline {
                    return Err(DevnetError::NotReady {
                        index: i,
                        secs: timeout.as_secs(),
                        log: self
                            .dir
                            .join(format!("node{i}/umbrad.log"))
                            .display()
                            .to_string(),
                    });
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    /// `info` of node `i`, if it answers.
    pub async fn info(&self, i: usize) -> Option<Value> {
        let body = json!({"method": "info", "params": {}}).to_string();
        let resp = self
            .client
            .post(&self.node_addr(i), "/storage_rpc/v1", body.into_bytes())
            .await
            .ok()?;
        (resp.status == 200)
            .then(|| serde_json::from_slice(&resp.body).ok())
            .flatten()
    }

    /// The transport address of node `i`.
    pub fn node_addr(&self, i: usize) -> NodeAddr {
        NodeAddr::new(self.addrs[i], self.keys[i].public())
    }

    /// The number of nodes ever started (listed or not).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The devnet directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The network configuration (what clients need).
    pub fn network(&self) -> &NetworkConfig {
        &self.network
    }

    /// The registry document in force.
    pub fn registry(&self) -> &RegistryDocument {
        &self.doc
    }

    /// The in-process node handle of node `i`, if in-process and running.
    pub fn handle(&self, i: usize) -> Option<&NodeHandle> {
        match self.runners.get(i) {
            Some(Runner::InProcess(h)) => Some(h),
            _ => None,
        }
    }

    fn write_registry(&self) -> Result<(), DevnetError> {
        // Write then rename, so nodes never read half a document.
        let tmp = self.dir.join("registry.tmp");
        std::fs::write(&tmp, self.doc.encode()).map_err(io("writing registry"))?;
        std::fs::rename(&tmp, self.dir.join("registry")).map_err(io("publishing registry"))?;
        std::fs::write(
            self.dir.join("nodes.json"),
            serde_json::to_vec_pretty(&self.nodes_json()).unwrap_or_default(),
        )
        .map_err(io("writing nodes.json"))?;
        Ok(())
    }

    /// `nodes.json`: Session's node-list field names, one object per listed node.
    pub fn nodes_json(&self) -> Value {
        let assignment = self.doc.assignment();
        Value::Array(
            self.doc
                .nodes()
                .iter()
                .map(|r| {
                    json!({
                        "pubkey_ed25519": hex::encode(r.ed25519.as_bytes()),
                        "pubkey_x25519": r.x25519().map(|x| hex::encode(x.as_bytes())).unwrap_or_default(),
                        "public_ip": r.ipv4.to_string(),
                        "storage_port": r.https_port,
                        "swarm_id": assignment.get(&r.ed25519).map(|s| u64::from(*s)),
                    })
                })
                .collect(),
        )
    }

    fn write_state(&self) -> Result<(), DevnetError> {
        let state = DevnetState {
            nodes: (0..self.keys.len())
                .map(|i| MemberState {
                    index: i,
                    pubkey_ed25519: hex::encode(self.keys[i].public().as_bytes()),
                    addr: self.addrs[i],
                    admin: self.admins[i],
                    pid: match &self.runners.get(i) {
                        Some(Runner::Process(c)) => c.id(),
                        Some(Runner::External(pid)) => *pid,
                        _ => None,
                    },
                    listed: self.listed[i],
                })
                .collect(),
            swarm_size_hint: self.swarm_size_hint,
            exe: match &self.mode {
                Mode::Processes { exe } => Some(exe.clone()),
                Mode::InProcess => None,
            },
        };
        std::fs::write(
            self.dir.join("devnet.json"),
            serde_json::to_vec_pretty(&state).unwrap_or_default(),
        )
        .map_err(io("writing devnet.json"))
    }

    async fn publish(&mut self) -> Result<(), DevnetError> {
        if registries::enabled(&self.network) {
            return registries::publish(self).await;
        }
        let params = devnet_params(self.swarm_size_hint);
        self.doc = build_doc(
            &self.registry_key,
            Some(&self.doc),
            &self.keys,
            &self.addrs,
            &self.listed,
            params,
        )?;
        self.write_registry()?;
        for r in &self.runners {
            if let Runner::InProcess(h) = r {
                let _ = h.node.offer_registry(&self.doc.encode());
            }
        }
        self.write_state()
    }

    /// Starts one more node and publishes an epoch listing it; returns its index.
    pub async fn add_node(&mut self) -> Result<usize, DevnetError> {
        let i = self.keys.len();
        self.keys.push(node_key(&self.dir, i)?);
        let distinct = self.addrs.iter().any(|a| ipv4_of(a) != Ipv4Addr::LOCALHOST);
        let ip = node_ip(i, distinct);
        self.addrs.push(SocketAddr::from((ip, free_port_on(ip)?)));
        self.admins.push(match self.mode {
            Mode::Processes { .. } => Some(SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?))),
            Mode::InProcess => None,
        });
        self.listed.push(true);
        self.overrides.push(NodeOverrides::default());
        let r = self.spawn(i).await?;
        self.runners.push(r);
        self.publish().await?;
        self.wait_ready(Duration::from_secs(30)).await?;
        Ok(i)
    }

    /// Publishes an epoch without node `i` and stops it.
    pub async fn remove_node(&mut self, i: usize) -> Result<(), DevnetError> {
        if i >= self.keys.len() || !self.listed[i] {
            return Err(DevnetError::Invalid(format!("node {i} is not listed")));
        }
        self.listed[i] = false;
        self.publish().await?;
        // Give the others a moment to adopt the epoch (and the node to hand over).
        self.wait_ready(Duration::from_secs(30)).await?;
        self.stop_node(i).await;
        self.write_state()
    }

    /// Stops node `i` (it stays listed: a node failure).
    pub async fn stop_node(&mut self, i: usize) {
        if let Some(r) = self.runners.get_mut(i) {
            match std::mem::replace(r, Runner::Stopped) {
                Runner::InProcess(h) => h.shutdown().await,
                Runner::Process(mut c) => stop_child(&mut c).await,
                Runner::External(Some(pid)) => signal_term(pid),
                Runner::External(None) | Runner::Stopped => {}
            }
        }
    }

    // --- Fault-injection hooks (umbra-load, issue 10) ---

    /// The process ID of node `i` when it runs as a child process.
    pub fn pid(&self, i: usize) -> Option<u32> {
        match self.runners.get(i) {
            Some(Runner::Process(c)) => c.id(),
            Some(Runner::External(pid)) => *pid,
            _ => None,
        }
    }

    /// True when node `i` has been stopped or killed (and not restarted).
    pub fn is_stopped(&self, i: usize) -> bool {
        matches!(self.runners.get(i), Some(Runner::Stopped) | None)
    }

    /// Sets node `i`'s overrides; they apply from its next (re)start.
    pub fn set_overrides(&mut self, i: usize, o: NodeOverrides) {
        if let Some(slot) = self.overrides.get_mut(i) {
            *slot = o;
        }
    }

    /// Kills node `i` with SIGKILL (no clean shutdown; process mode only,
    /// an in-process node is shut down) and reaps it.
    pub async fn kill_node(&mut self, i: usize) {
        if let Some(r) = self.runners.get_mut(i) {
            match std::mem::replace(r, Runner::Stopped) {
                Runner::Process(mut c) => {
                    let _ = c.kill().await;
                }
                Runner::InProcess(h) => h.shutdown().await,
                Runner::External(Some(pid)) => {
                    signal(pid, "KILL");
                }
                Runner::External(None) | Runner::Stopped => {}
            }
        }
    }

    /// Starts a stopped or killed node `i` again (same key, address and
    /// data; current overrides) and waits until it answers with the current
    /// epoch.
    pub async fn restart_node(&mut self, i: usize, timeout: Duration) -> Result<(), DevnetError> {
        if !self.is_stopped(i) || i >= self.keys.len() {
            return Err(DevnetError::Invalid(format!("node {i} is not stopped")));
        }
        let r = self.spawn(i).await?;
        self.runners[i] = r;
        self.write_state()?;
        // Only this node: another may be paused on purpose.
        let deadline = tokio::time::Instant::now() + timeout;
        let epoch = self.doc.epoch();
        loop {
            let info = self.info(i).await;
            if info.is_some_and(|v| v["epoch"].as_u64() == Some(epoch)) {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                return Err(DevnetError::NotReady {
                    index: i,
                    secs: timeout.as_secs(),
                    log: self
                        .dir
                        .join(format!("node{i}/umbrad.log"))
                        .display()
                        .to_string(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Re-opens the devnet in `dir` that another `umbra devnet up` (process
    /// mode) is running, to publish epochs (`add-node`, `remove-node`).
    pub fn attach(dir: &Path) -> Result<Devnet, DevnetError> {
        let state = read_state(dir)?;
        let exe = state.exe.clone().ok_or_else(|| {
            DevnetError::Invalid(
                "that devnet runs in-process; it cannot be changed from outside".into(),
            )
        })?;
        let registry_key = umbra_node::keyfile::load(&dir.join("registry.key"))
            .map_err(|e| DevnetError::Registry(e.to_string()))?;
        let text = std::fs::read_to_string(dir.join("network.json"))
            .map_err(io("reading network.json"))?;
        let network =
            NetworkConfig::from_json(&text).map_err(|e| DevnetError::Registry(e.to_string()))?;
        let bytes = std::fs::read(dir.join("registry")).map_err(io("reading registry"))?;
        let cfg = network
            .registry_config()
            .map_err(|e| DevnetError::Registry(e.to_string()))?;
        let doc =
            RegistryDocument::verify(&bytes, &cfg, None, umbra_proto::swarm::ReaderRole::Client)
                .map_err(|e| DevnetError::Registry(e.to_string()))?;
        let mut keys = Vec::new();
        for m in &state.nodes {
            let kp = umbra_node::keyfile::load(&dir.join(format!("node{}/node.key", m.index)))
                .map_err(|e| DevnetError::Registry(e.to_string()))?;
            keys.push(kp);
        }
        Ok(Devnet {
            dir: dir.to_path_buf(),
            registry_key,
            network,
            keys,
            addrs: state.nodes.iter().map(|m| m.addr).collect(),
            admins: state.nodes.iter().map(|m| m.admin).collect(),
            runners: state
                .nodes
                .iter()
                .map(|m| Runner::External(m.pid))
                .collect(),
            listed: state.nodes.iter().map(|m| m.listed).collect(),
            doc,
            mode: Mode::Processes { exe },
            swarm_size_hint: state.swarm_size_hint,
            client: NodeClient::default(),
            overrides: vec![NodeOverrides::default(); state.nodes.len()],
        })
    }

    /// Leaves the nodes running (after `attach`).
    pub fn detach(self) {
        let _ = self.write_state();
    }

    /// Stops every node cleanly.
    pub async fn down(mut self) {
        for i in 0..self.runners.len() {
            self.stop_node(i).await;
        }
        let _ = std::fs::remove_file(self.dir.join("devnet.json"));
    }
}

async fn stop_child(c: &mut tokio::process::Child) {
    if let Some(pid) = c.id() {
        signal_term(pid);
        if tokio::time::timeout(Duration::from_secs(10), c.wait())
            .await
            .is_err()
        {
            let _ = c.kill().await;
        }
    }
}

/// Sends SIGTERM to a process (a clean node shutdown).
pub fn signal_term(pid: u32) {
    signal(pid, "TERM");
}

/// Sends signal `name` (`TERM`, `KILL`, `STOP`, `CONT`) to a process with
/// kill(1); true when kill(1) reported success.
pub fn signal(pid: u32, name: &str) -> bool {
    std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .is_ok_and(|s| s.success())
}

fn build_doc(
    registry_key: &Ed25519Keypair,
    prev: Option<&RegistryDocument>,
    keys: &[Ed25519Keypair],
    addrs: &[SocketAddr],
    listed: &[bool],
    params: SwarmParams,
) -> Result<RegistryDocument, DevnetError> {
    let mut records = Vec::new();
    for (i, kp) in keys.iter().enumerate() {
        if listed[i] {
            records.push(
                NodeRecord::sign(kp, ipv4_of(&addrs[i]), addrs[i].port(), [0, 1, 0])
                    .map_err(|e| DevnetError::Registry(e.to_string()))?,
            );
        }
    }
    let b = match prev {
        Some(p) => p.next_builder(now_ms().max(p.issued_at_ms() + 1)),
        None => RegistryDocument::builder(1, now_ms()),
    };
    Ok(b.params(params)
        .nodes(records)
        .build()
        .map_err(|e| DevnetError::Registry(e.to_string()))?
        .signed(registry_key))
}

fn config_toml(cfg: &NodeConfig) -> String {
    let q = |p: &Path| format!("{:?}", p.display().to_string());
    let mut s = format!(
        "data_dir = {}\nlisten = \"{}\"\nlog_level = \"{}\"\nregistry_poll_ms = {}\ncatchup_interval_ms = {}\n",
        q(&cfg.data_dir),
        cfg.listen,
        cfg.log_level,
        cfg.registry_poll_ms,
        cfg.catchup_interval_ms
    );
    s.push_str(&format!(
        "publication_poll_ms = {}\n",
        cfg.publication_poll_ms
    ));
    s.push_str(&format!(
        "db_size_cap_bytes = {}\nrate_limit_burst = {}\nrate_limit_per_sec = {}\n",
        cfg.db_size_cap_bytes, cfg.rate_limit_burst, cfg.rate_limit_per_sec
    ));
    if let Some(a) = cfg.admin_listen {
        s.push_str(&format!("admin_listen = \"{a}\"\n"));
    }
    if let Some(p) = &cfg.network_file {
        s.push_str(&format!("network_file = {}\n", q(p)));
    }
    if let Some(p) = &cfg.registry_file {
        s.push_str(&format!("registry_file = {}\n", q(p)));
    }
    if !cfg.onion_proxy_exempt.is_empty() {
        let ips: Vec<String> = cfg
            .onion_proxy_exempt
            .iter()
            .map(|ip| format!("\"{ip}\""))
            .collect();
        s.push_str(&format!("onion_proxy_exempt = [{}]\n", ips.join(", ")));
    }
    s
}

/// Reads `devnet.json` of a running devnet.
pub fn read_state(dir: &Path) -> Result<DevnetState, DevnetError> {
    let bytes = std::fs::read(dir.join("devnet.json"))
        .map_err(|_| DevnetError::NoState(dir.display().to_string()))?;
    serde_json::from_slice(&bytes).map_err(|_| DevnetError::NoState(dir.display().to_string()))
}

/// `umbra devnet status`: each node's `info`, from another terminal.
pub async fn status(dir: &Path) -> Result<Vec<(MemberState, Option<Value>)>, DevnetError> {
    let state = read_state(dir)?;
    let client = NodeClient::default();
    let mut out = Vec::new();
    for m in state.nodes {
        let key = hex::decode(&m.pubkey_ed25519)
            .ok()
            .and_then(|b| umbra_crypto::Ed25519Public::from_slice(&b).ok());
        let info = match key {
            Some(k) => {
                let body = json!({"method": "info", "params": {}}).to_string();
                match client
                    .post(
                        &NodeAddr::new(m.addr, k),
                        "/storage_rpc/v1",
                        body.into_bytes(),
                    )
                    .await
                {
                    Ok(r) if r.status == 200 => serde_json::from_slice(&r.body).ok(),
                    _ => None,
                }
            }
            None => None,
        };
        out.push((m, info));
    }
    Ok(out)
}

/// `umbra devnet down`: SIGTERM to every node process of the devnet in `dir`.
pub fn down_dir(dir: &Path) -> Result<usize, DevnetError> {
    let state = read_state(dir)?;
    let mut n = 0;
    for m in &state.nodes {
        if let Some(pid) = m.pid {
            signal_term(pid);
            n += 1;
        }
    }
    let _ = std::fs::remove_file(dir.join("devnet.json"));
    Ok(n)
}
