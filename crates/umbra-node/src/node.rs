//! Starting and stopping a node in-process: [`start`] opens the key, the
//! database and the registry, binds the HTTPS and admin listeners, and
//! spawns the background tasks; [`NodeHandle::shutdown`] stops it cleanly
//! (in-flight requests finish). The `umbrad` binary, the devnet and the
//! integration tests all run nodes through this.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use umbra_proto::network::NetworkConfig;
use umbra_transport::{Clock, NodeClient, Server, tls};

use crate::config::NodeConfig;
use crate::http::{admin_router, public_router};
use crate::registry::RegistryState;
use crate::replication;
use crate::state::{Node, NodeInner};
use crate::storage::{Store, StoreConfig};

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The key file.
    #[error(transparent)]
    Key(#[from] crate::keyfile::KeyFileError),
    /// The network configuration file.
    #[error("network configuration {path}: {message}")]
    Network {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The database.
    #[error("cannot open the message database: {0}")]
    Store(#[from] crate::storage::StoreError),
    /// TLS setup.
    #[error("TLS setup failed: {0}")]
    Tls(#[from] umbra_transport::TlsError),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The data directory.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A running node.
pub struct NodeHandle {
    /// The shared state (for tests and the devnet).
    pub node: Node,
    /// The bound HTTPS address.
    pub addr: SocketAddr,
    /// The bound admin address, if configured.
    pub admin_addr: Option<SocketAddr>,
    shutdown: tokio::sync::watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
    admin: Option<tokio::task::JoinHandle<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl NodeHandle {
    /// The node's Ed25519 key.
    pub fn public(&self) -> umbra_crypto::Ed25519Public {
        self.node.public()
    }

    /// Stops accepting, lets in-flight requests finish, stops the tasks.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.server.await;
        if let Some(a) = self.admin {
            let _ = a.await;
        }
        for t in self.tasks {
            t.abort();
        }
    }

    /// Waits until the server stops (after a shutdown signal).
    pub async fn wait(&mut self) {
        let _ = (&mut self.server).await;
    }
}

/// Reads a `network.json`.
pub fn read_network(path: &std::path::Path) -> Result<NetworkConfig, StartError> {
    let text = std::fs::read_to_string(path).map_err(|e| StartError::Network {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    NetworkConfig::from_json(&text).map_err(|e| StartError::Network {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Starts a node. `network` gives the pinned registry keys; the registry
/// file (if present) is loaded before the listeners open.
pub async fn start(
    config: NodeConfig,
    network: &NetworkConfig,
    clock: Arc<dyn Clock>,
) -> Result<NodeHandle, StartError> {
    config.validate()?;
    std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    let keys =
        crate::keyfile::load_or_create(&config.key_path(), umbra_crypto::random_bytes::<32>)?;
    let registry_config = network.registry_config().map_err(|e| StartError::Network {
        path: PathBuf::from("network"),
        message: e.to_string(),
    })?;
    let store = Store::open(
        config.db_path(),
        StoreConfig {
            size_cap_bytes: config.db_size_cap_bytes,
            ..StoreConfig::default()
        },
    )?;
    let registry = RegistryState::new(registry_config, keys.public());
    let (epoch_tx, _) = tokio::sync::watch::channel(0u64);
    let (transitions_tx, transitions_rx) = tokio::sync::mpsc::unbounded_channel();
    let node = Node(Arc::new(NodeInner::new(
        keys,
        config.clone(),
        clock,
        store,
        registry,
        // Relays and fan-out keep many requests in flight to the same peer.
        NodeClient::new(umbra_transport::ClientConfig {
            max_idle_per_node: 32,
            ..Default::default()
        }),
        epoch_tx,
        transitions_tx,
    )));
    crate::onion::set_config(
        &node,
        crate::onion::OnionConfig {
            proxy_exempt: config.onion_proxy_exempt.clone(),
            ..Default::default()
        },
    );
    // The epoch this node held when it stopped, then the registry file
    // (which may be newer: that transition hands over as usual).
    if let Ok(bytes) = std::fs::read(config.data_dir.join(crate::state::ADOPTED_REGISTRY)) {
        let _ = node.offer_registry(&bytes);
    }
    if let Ok(bytes) = std::fs::read(config.registry_path()) {
        match node.offer_registry(&bytes) {
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "registry file refused at start"),
        }
    }

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
    let tls = tls::server_config(&node.keys)?;
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        while !*rx.borrow() {
            if rx.changed().await.is_err() {
                break;
            }
        }
    };
    let server = {
        let router = public_router(node.clone());
        let rx = shutdown_rx.clone();
        tokio::spawn(async move {
            if let Err(e) = Server::new(router).serve_tls(listener, tls, wait(rx)).await {
                tracing::error!(error = %e, "HTTPS server stopped");
            }
        })
    };
    let (admin, admin_addr) = match config.admin_listen {
        Some(a) => {
            let l = tokio::net::TcpListener::bind(a)
                .await
                .map_err(|source| StartError::Bind { addr: a, source })?;
            let bound = l
                .local_addr()
                .map_err(|source| StartError::Bind { addr: a, source })?;
            let router = admin_router(node.clone());
            let rx = shutdown_rx.clone();
            let h = tokio::spawn(async move {
                if let Err(e) = Server::new(router).serve_plain(l, wait(rx)).await {
                    tracing::error!(error = %e, "admin server stopped");
                }
            });
            (Some(h), Some(bound))
        }
        None => (None, None),
    };
    let ms = Duration::from_millis;
    let tasks = vec![
        tokio::spawn(replication::sweeper(
            node.clone(),
            ms(config.sweep_interval_ms),
        )),
        tokio::spawn(replication::hand_overs(
            node.clone(),
            transitions_rx,
            ms(config.catchup_interval_ms),
            Duration::from_secs(3600),
        )),
        tokio::spawn(replication::catch_up(
            node.clone(),
            ms(config.catchup_interval_ms),
        )),
        tokio::spawn(replication::pull_on_start(node.clone())),
        tokio::spawn(replication::watch_registry_file(
            node.clone(),
            config.registry_path(),
            ms(config.registry_poll_ms),
        )),
        tokio::spawn(crate::registry::poll_publications(
            node.clone(),
            network.registry_urls.clone(),
            ms(config.publication_poll_ms),
        )),
        tokio::spawn(crate::registry::submit_own_record(
            node.clone(),
            network.registry_urls.clone(),
            config.announced_ip(),
            addr.port(),
            ms(config.registry_submit_ms),
        )),
    ];
    tracing::info!(%addr, key = %hex::encode(&node.public().as_bytes()[..4]), "umbrad started");
    Ok(NodeHandle {
        node,
        addr,
        admin_addr,
        shutdown: shutdown_tx,
        server,
        admin,
        tasks,
    })
}
