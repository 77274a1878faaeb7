//! A network of registry instances and `umbrad` nodes in this process, on
//! 127.0.0.1 with real TLS and SQLite: the instances are started from
//! pre-bound listeners so that `network.json`'s publication URLs name them
//! all; each node submits its self-signed record to every instance and
//! picks epochs up by polling the publication URLs.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use umbra_crypto::Ed25519Keypair;
use umbra_node::registry::PublicationUrl;
use umbra_node::{NodeConfig, NodeHandle};
use umbra_proto::identity::{AccountId, AccountKeys};
use umbra_proto::network::{NetworkConfig, SwarmParamsJson};
use umbra_proto::rpc::encoding::Ed25519Hex;
use umbra_proto::swarm::{NodeRecord, RegistryDocument, SwarmParams};
use umbra_registry::instance::PATH_CURRENT;
use umbra_registry::{InstanceConfig, RegistryHandle};
use umbra_transport::{NodeAddr, NodeClient, SystemClock};

/// Swarms of about three, so that 12 nodes form several.
pub const PARAMS: SwarmParams = SwarmParams {
    min_swarm_size: 3,
    excess_base: 3,
    ideal_swarm_margin: 1,
    new_swarm_size: 3,
};

/// The time scale of the test network (tick, health interval), ms.
pub const SCALE_MS: u64 = 250;

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

pub fn registry_key(i: usize) -> Ed25519Keypair {
    Ed25519Keypair::from_seed(&[0xA0 + i as u8; 32])
}

pub struct Net {
    pub dir: tempfile::TempDir,
    pub network: NetworkConfig,
    pub registries: Vec<Option<RegistryHandle>>,
    pub nodes: Vec<Option<NodeHandle>>,
    pub node_keys: Vec<umbra_crypto::Ed25519Public>,
    pub client: NodeClient,
}

/// An instance configuration on the test time scale.
pub fn instance_config(dir: &std::path::Path, i: usize) -> InstanceConfig {
    InstanceConfig::fast(
        dir.join(format!("registry{i}")),
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        SCALE_MS,
    )
}

impl Net {
    /// `n_reg` instances with threshold `threshold`, then `n_nodes` nodes
    /// that submit their records.
    pub async fn start(n_reg: usize, threshold: usize, n_nodes: usize) -> Net {
        let dir = tempfile::tempdir().unwrap();
        let mut listeners = Vec::new();
        let mut urls = Vec::new();
        for i in 0..n_reg {
            let l = umbra_registry::instance::bind(&instance_config(dir.path(), i))
                .await
                .unwrap();
            urls.push(PublicationUrl::format(
                l.local_addr().unwrap(),
                &registry_key(i).public(),
                PATH_CURRENT,
            ));
            listeners.push(l);
        }
        let network = NetworkConfig {
            name: "registry-test".into(),
            registry_keys: (0..n_reg)
                .map(|i| Ed25519Hex(registry_key(i).public()))
                .collect(),
            threshold,
            swarm_params: Some(SwarmParamsJson::from(PARAMS)),
            registry_urls: urls,
            seed_nodes: vec![],
            file_server: None,
        };
        let mut registries = Vec::new();
        for (i, l) in listeners.into_iter().enumerate() {
            let h = umbra_registry::start(
                instance_config(dir.path(), i),
                &network,
                Some(registry_key(i)),
                l,
                Arc::new(SystemClock),
            )
            .await
            .unwrap();
            registries.push(Some(h));
        }
        let mut net = Net {
            dir,
            network,
            registries,
            nodes: Vec::new(),
            node_keys: Vec::new(),
            client: NodeClient::default(),
        };
        for _ in 0..n_nodes {
            net.add_node().await;
        }
        net
    }

    /// Starts a node and submits its record to every running instance.
    pub async fn add_node(&mut self) -> usize {
        let i = self.nodes.len();
        let cfg = NodeConfig {
            data_dir: self.dir.path().join(format!("node{i}")),
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            sweep_interval_ms: 500,
            catchup_interval_ms: 500,
            registry_poll_ms: 60_000,
            publication_poll_ms: SCALE_MS,
            ..NodeConfig::default()
        };
        let h = umbra_node::start(cfg, &self.network, Arc::new(SystemClock))
            .await
            .unwrap();
        let record =
            NodeRecord::sign(&h.node.keys, Ipv4Addr::LOCALHOST, h.addr.port(), [0, 1, 0]).unwrap();
        for url in &self.network.registry_urls {
            let u = PublicationUrl::parse(url).unwrap();
            let answer =
                umbra_registry::submit_record(&self.client, &u, &h.node.keys, &record, now_ms())
                    .await
                    .unwrap();
            assert_eq!(answer, "accepted");
        }
        self.node_keys.push(h.public());
        self.nodes.push(Some(h));
        i
    }

    pub fn registry(&self, i: usize) -> &RegistryHandle {
        self.registries[i].as_ref().unwrap()
    }

    pub fn node(&self, i: usize) -> &NodeHandle {
        self.nodes[i].as_ref().unwrap()
    }

    /// Stops node `i` (it stays a candidate: a node failure).
    pub async fn kill_node(&mut self, i: usize) {
        if let Some(h) = self.nodes[i].take() {
            h.shutdown().await;
        }
    }

    /// Stops registry instance `i`.
    pub async fn kill_registry(&mut self, i: usize) {
        if let Some(h) = self.registries[i].take() {
            h.shutdown().await;
        }
    }

    /// Waits until every running instance and node holds a document for
    /// which `want` holds; returns it (as instance `first running` has it).
    pub async fn wait_epoch(
        &self,
        timeout: Duration,
        want: impl Fn(&RegistryDocument) -> bool,
    ) -> RegistryDocument {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let docs: Vec<Option<Arc<RegistryDocument>>> = self
                .registries
                .iter()
                .flatten()
                .map(|r| r.instance.current())
                .chain(
                    self.nodes
                        .iter()
                        .flatten()
                        .map(|n| n.node.registry().current().cloned()),
                )
                .collect();
            if docs.iter().all(|d| d.as_deref().is_some_and(&want)) {
                let first = docs[0].as_deref().unwrap();
                if docs
                    .iter()
                    .all(|d| d.as_deref().map(|d| d.doc_hash()) == Some(first.doc_hash()))
                {
                    return first.clone();
                }
            }
            if tokio::time::Instant::now() > deadline {
                let epochs: Vec<u64> = docs
                    .iter()
                    .map(|d| d.as_deref().map_or(0, |d| d.epoch()))
                    .collect();
                panic!("no common epoch in {timeout:?}; instances then nodes hold {epochs:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn node_addr(&self, i: usize) -> NodeAddr {
        let h = self.node(i);
        NodeAddr::new(h.addr, h.public())
    }

    /// POSTs a JSON request to `/storage_rpc/v1` of node `i`.
    pub async fn rpc(&self, i: usize, body: &Value) -> (u16, Value) {
        let resp = self
            .client
            .post(
                &self.node_addr(i),
                "/storage_rpc/v1",
                serde_json::to_vec(body).unwrap(),
            )
            .await
            .unwrap();
        let v = serde_json::from_slice(&resp.body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&resp.body).into_owned()));
        (resp.status.as_u16(), v)
    }

    /// Index of the node with key `k`.
    pub fn index_of(&self, k: &umbra_crypto::Ed25519Public) -> usize {
        self.node_keys.iter().position(|x| x == k).unwrap()
    }

    /// Stores `data` for `to` through a running member of its swarm under
    /// `doc`; asserts the store was acknowledged (`200`).
    pub async fn store(&self, doc: &RegistryDocument, to: &AccountId, data: &[u8]) {
        let entry = doc
            .members_for(to)
            .into_iter()
            .map(|r| self.index_of(&r.ed25519))
            .find(|&i| self.nodes[i].is_some())
            .expect("a running owner");
        let req = json!({"method": "store", "params": {
            "pubkey": to.to_string(), "timestamp": now_ms(), "ttl": 3_600_000u64,
            "data": base64::engine::general_purpose::STANDARD.encode(data)
        }});
        let (status, body) = self.rpc(entry, &req).await;
        assert_eq!(status, 200, "store to node {entry}: {body}");
    }

    /// The data of every unexpired message node `i` holds for `account`.
    pub async fn held(&self, i: usize, account: &AccountId) -> Vec<Vec<u8>> {
        self.node(i)
            .node
            .store
            .messages_for_push(account, now_ms())
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.data)
            .collect()
    }
}

/// A test account from a one-byte seed.
pub fn account(n: u8) -> AccountKeys {
    AccountKeys::from_seed(&[n; 32])
}

/// Polls `f` until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if f().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
