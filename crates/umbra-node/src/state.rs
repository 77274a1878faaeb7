//! The state one running node shares between its HTTP handlers and its
//! background tasks: keys, clock, store, registry view, peer client,
//! metrics and rate limiter.

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use umbra_crypto::{Ed25519Keypair, Ed25519Public, X25519Secret};
use umbra_transport::{Clock, NodeClient};

use crate::config::NodeConfig;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use crate::registry::{RegistryState, Transition};
use crate::storage::Store;

/// The file (in the data directory) holding the last adopted registry.
pub const ADOPTED_REGISTRY: &str = "registry.adopted";

/// Everything a node's tasks share. Cheap to clone through [`Node`].
pub struct NodeInner {
    /// The node's identity key.
    pub keys: Ed25519Keypair,
    /// Its X25519 secret (onion layers).
    pub x25519: X25519Secret,
    /// Configuration.
    pub config: NodeConfig,
    /// The only clock the node reads.
    pub clock: Arc<dyn Clock>,
    /// Message storage.
    pub store: Store,
    /// The registry view.
    registry: RwLock<RegistryState>,
    /// Pinned HTTPS client for node-to-node requests.
    pub peers: NodeClient,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Per-IP client rate limits.
    pub limiter: RateLimiter,
    /// Wakes tasks waiting for a new epoch.
    pub epoch_tx: tokio::sync::watch::Sender<u64>,
    /// Epoch transitions for the hand-over task.
    pub transitions: tokio::sync::mpsc::UnboundedSender<Transition>,
    /// Peers that missed a change while a catch-up round was running: their
    /// mark must survive that round.
    pub catchup_dirty: std::sync::Mutex<std::collections::HashSet<[u8; 32]>>,
    /// Single flight and backoff of registry fetches from peers claiming a
    /// newer epoch (`crate::peer::RegistryCatchUp`).
    pub registry_catchup: crate::peer::RegistryCatchUp,
}

/// A handle on a node's shared state.
#[derive(Clone)]
pub struct Node(pub Arc<NodeInner>);

impl std::ops::Deref for Node {
    type Target = NodeInner;
    fn deref(&self) -> &NodeInner {
        &self.0
    }
}

impl NodeInner {
    /// Builds the shared state.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        keys: Ed25519Keypair,
        config: NodeConfig,
        clock: Arc<dyn Clock>,
        store: Store,
        registry: RegistryState,
        peers: NodeClient,
        epoch_tx: tokio::sync::watch::Sender<u64>,
        transitions: tokio::sync::mpsc::UnboundedSender<Transition>,
    ) -> Self {
        let limiter = RateLimiter::new(config.rate_limit_burst, config.rate_limit_per_sec);
        NodeInner {
            x25519: keys.x25519_secret(),
            keys,
            config,
            clock,
            store,
            registry: RwLock::new(registry),
            peers,
            metrics: Metrics::default(),
            limiter,
            epoch_tx,
            transitions,
            catchup_dirty: Default::default(),
            registry_catchup: Default::default(),
        }
    }

    /// The node's Ed25519 public key.
    pub fn public(&self) -> Ed25519Public {
        self.keys.public()
    }

    /// Now, in unix milliseconds.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Reads the registry view.
    pub fn registry(&self) -> RwLockReadGuard<'_, RegistryState> {
        self.registry.read().unwrap_or_else(|p| p.into_inner())
    }

    fn registry_mut(&self) -> RwLockWriteGuard<'_, RegistryState> {
        self.registry.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Offers a registry document from any source (file, peer, admin).
    /// Returns the new epoch when it was adopted.
    pub fn offer_registry(
        &self,
        bytes: &[u8],
    ) -> Result<Option<u64>, umbra_proto::swarm::RegistryError> {
        let now = self.now_ms();
        let transition = {
            let mut registry = self.registry_mut();
            let transition = registry.offer(bytes, now)?;
            if transition.is_some() {
                // Remember what was adopted, so that a restart knows its
                // previous epoch (and hands over correctly if the registry
                // moved on). Written under the lock: two documents adopted
                // at once are saved in the order they were adopted.
                let path = self.config.data_dir.join(ADOPTED_REGISTRY);
                if write_replacing(&path, bytes).is_err() {
                    tracing::warn!("cannot save the adopted registry");
                }
            }
            transition
        };
        Ok(transition.map(|t| {
            let epoch = t.new.epoch();
            tracing::info!(epoch, nodes = t.new.nodes().len(), "adopted registry epoch");
            self.metrics.epoch.set(epoch as i64);
            let _ = self.epoch_tx.send(epoch);
            let _ = self.transitions.send(t);
            epoch
        }))
    }
}

/// Writes `bytes` to `path` through a temporary file renamed over it, so a
/// crash leaves the old or the new content, never half of it.
pub(crate) fn write_replacing(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
