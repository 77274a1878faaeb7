//! Shared set-up of the network rows: a network configuration pinned to a
//! fresh registry key, node configurations without rate limits, a signed
//! registry document listing the nodes, deterministic accounts, and padded
//! onions built before any clock starts. Everything listens on 127.0.0.1.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use anyhow::{Context, Result};
use umbra_crypto::Ed25519Keypair;
use umbra_node::NodeConfig;
use umbra_node::storage::StoredMessage;
use umbra_proto::identity::{AccountId, AccountKeys};
use umbra_proto::network::{NetworkConfig, SwarmParamsJson};
use umbra_proto::onion::{
    BuiltOnion, EncType, LayerRandom, NodeRequestOptions, OnionDestination, PathNode,
    build_padded_onion,
};
use umbra_proto::rpc::Namespace;
use umbra_proto::rpc::encoding::Ed25519Hex;
use umbra_proto::rpc::hash::message_hash;
use umbra_proto::swarm::{NodeRecord, RegistryDocument, SwarmParams};

/// Wall-clock time in ms since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// One swarm holding every account: a single node is the whole network.
pub const SOLO: SwarmParams = SwarmParams {
    min_swarm_size: 1,
    excess_base: 1,
    ideal_swarm_margin: 0,
    new_swarm_size: 1,
};

/// Swarms of two (the onion row's four nodes).
pub const PAIRS: SwarmParams = SwarmParams {
    min_swarm_size: 2,
    excess_base: 2,
    ideal_swarm_margin: 1,
    new_swarm_size: 2,
};

/// A benchmark network: its registry key, swarm constants and configuration.
pub struct BenchNet {
    registry_key: Ed25519Keypair,
    params: SwarmParams,
    /// What nodes and clients are given (registry key pinned, threshold 1).
    pub network: NetworkConfig,
}

impl BenchNet {
    /// A network named `bench` with `params`, registry key from a fixed seed.
    pub fn new(params: SwarmParams) -> BenchNet {
        let registry_key = Ed25519Keypair::from_seed(&[0xEE; 32]);
        let network = NetworkConfig {
            name: "bench".into(),
            registry_keys: vec![Ed25519Hex(registry_key.public())],
            threshold: 1,
            swarm_params: Some(SwarmParamsJson::from(params)),
            registry_urls: vec![],
            seed_nodes: vec![],
            file_server: None,
        };
        BenchNet {
            registry_key,
            params,
            network,
        }
    }

    /// A registry document (epoch 1) listing `nodes` (key and address),
    /// signed by the registry key.
    pub fn registry(&self, nodes: &[(&Ed25519Keypair, SocketAddr)]) -> Result<RegistryDocument> {
        let mut records = Vec::new();
        for (kp, addr) in nodes {
            records.push(
                NodeRecord::sign(kp, Ipv4Addr::LOCALHOST, addr.port(), [0, 1, 0])
                    .context("signing a node record")?,
            );
        }
        Ok(RegistryDocument::builder(1, now_ms())
            .params(self.params)
            .nodes(records)
            .build()
            .context("building the registry document")?
            .signed(&self.registry_key))
    }
}

/// Node `i`'s key (fixed seed `[i + 1; 32]`), written to `dir/nodeI/node.key`
/// so the node started on that directory uses it.
pub fn node_key(dir: &Path, i: u8) -> Result<Ed25519Keypair> {
    let data_dir = dir.join(format!("node{i}"));
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    umbra_node::keyfile::load_or_create(&data_dir.join("node.key"), || [i.wrapping_add(1); 32])
        .context("writing a node key")
}

/// Configuration of node `i` in `dir/nodeI`: a free port on 127.0.0.1 and
/// no rate limits (the client is one address sending as fast as it can).
pub fn node_config(dir: &Path, i: u8) -> Result<NodeConfig> {
    Ok(NodeConfig {
        data_dir: dir.join(format!("node{i}")),
        listen: "127.0.0.1:0".parse()?,
        rate_limit_burst: u32::MAX,
        rate_limit_per_sec: u32::MAX,
        log_level: "error".into(),
        ..NodeConfig::default()
    })
}

/// The onion path entry of a listed node.
pub fn path_node(doc: &RegistryDocument, key: &Ed25519Keypair) -> Result<PathNode> {
    let rec = doc.node(&key.public()).context("node not listed")?;
    Ok(PathNode {
        ed25519: rec.ed25519.to_bytes(),
        x25519: rec.x25519().context("node's X25519 key")?,
    })
}

/// A padded XChaCha20 onion carrying `request` through `hops` to node
/// `dest`, with fresh randomness.
pub fn onion(request: &[u8], hops: &[PathNode], dest: PathNode) -> Result<BuiltOnion> {
    let random: Vec<LayerRandom> = (0..=hops.len())
        .map(|_| {
            LayerRandom::new(
                umbra_crypto::random_bytes::<32>(),
                umbra_crypto::random_bytes::<24>(),
            )
        })
        .collect();
    let dest = OnionDestination::Node {
        node: dest,
        options: NodeRequestOptions::default(),
    };
    Ok(build_padded_onion(
        EncType::XChaCha20,
        request,
        hops,
        &dest,
        &random,
    )?)
}

/// Benchmark account `i` (deterministic seed).
pub fn account(i: usize) -> AccountKeys {
    let mut seed = [0x5Au8; 32];
    seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
    AccountKeys::from_seed(&seed)
}

/// A namespace-0 message of `owner` with its correct hash (`storage-rpc.md`
/// §7), stored at `now` for `ttl_ms`.
pub fn stored_message(owner: AccountId, data: Vec<u8>, now: u64, ttl_ms: u64) -> StoredMessage {
    StoredMessage {
        hash: message_hash(&owner, Namespace(0), &data)
            .as_str()
            .to_string(),
        owner,
        namespace: 0,
        timestamp_ms: now,
        expiry_ms: now + ttl_ms,
        data,
    }
}

/// A 1 KiB-ish message body that differs per `(task, n)`.
pub fn message(task: usize, n: usize, len: usize) -> Vec<u8> {
    let mut data = format!("bench task {task} message {n} ").into_bytes();
    data.resize(len, b'.');
    data
}
