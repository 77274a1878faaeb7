//! The `umbrad` command line, as a library function so that both the
//! `umbrad` binary and `umbra node` (used by the devnet to run nodes as
//! separate processes of the same executable) share it: flags and the TOML
//! config, logging, start, and a clean stop on SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::NodeConfig;

/// The Umbra service node: stores end-to-end encrypted messages for its
/// swarm until they expire, replicates them to its swarm peers, and answers
/// the storage RPC over HTTPS.
#[derive(clap::Parser, Debug, Clone)]
#[command(name = "umbrad", version)]
pub struct DaemonArgs {
    /// TOML configuration file (flags override it).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Data directory (key, database, registry).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// HTTPS listen address, e.g. 0.0.0.0:22021.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Admin (healthz, metrics) listen address; must be loopback.
    #[arg(long)]
    pub admin_listen: Option<SocketAddr>,
    /// Network configuration (network.json: pinned registry keys).
    #[arg(long)]
    pub network: Option<PathBuf>,
    /// Registry document file (default DATA_DIR/registry).
    #[arg(long)]
    pub registry: Option<PathBuf>,
    /// Node key file (default DATA_DIR/node.key; created on first start).
    #[arg(long)]
    pub key_file: Option<PathBuf>,
    /// Log filter, e.g. info or umbra_node=debug.
    #[arg(long)]
    pub log_level: Option<String>,
    /// Print the node's Ed25519 public key (creating the key if needed) and exit.
    #[arg(long)]
    pub print_key: bool,
}

/// Why the daemon stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// Configuration.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The key file.
    #[error(transparent)]
    Key(#[from] crate::keyfile::KeyFileError),
    /// Start-up.
    #[error(transparent)]
    Start(#[from] crate::node::StartError),
    /// Anything else, with what was being done.
    #[error("{0}")]
    Other(String),
}

impl DaemonArgs {
    /// The configuration: the file, overridden by flags.
    pub fn config(&self) -> Result<NodeConfig, DaemonError> {
        let mut cfg = match &self.config {
            Some(p) => NodeConfig::from_file(p)?,
            None => NodeConfig::default(),
        };
        if let Some(v) = &self.data_dir {
            cfg.data_dir = v.clone();
        }
        if let Some(v) = self.listen {
            cfg.listen = v;
        }
        if let Some(v) = self.admin_listen {
            cfg.admin_listen = Some(v);
        }
        if let Some(v) = &self.network {
            cfg.network_file = Some(v.clone());
        }
        if let Some(v) = &self.registry {
            cfg.registry_file = Some(v.clone());
        }
        if let Some(v) = &self.key_file {
            cfg.key_file = Some(v.clone());
        }
        if let Some(v) = &self.log_level {
            cfg.log_level = v.clone();
        }
        cfg.validate()?;
        Ok(cfg)
    }
}

/// Runs the daemon until SIGTERM or Ctrl-C (blocking; builds its runtime).
pub fn run(args: DaemonArgs) -> Result<(), DaemonError> {
    let cfg = args.config()?;
    if args.print_key {
        std::fs::create_dir_all(&cfg.data_dir)
            .map_err(|e| DaemonError::Other(format!("creating {}: {e}", cfg.data_dir.display())))?;
        let kp = crate::keyfile::load_or_create(&cfg.key_path(), umbra_crypto::random_bytes::<32>)?;
        println!("{}", hex::encode(kp.public().as_bytes()));
        return Ok(());
    }
    let filter = tracing_subscriber::EnvFilter::try_new(&cfg.log_level)
        .map_err(|e| DaemonError::Other(format!("bad log level {:?}: {e}", cfg.log_level)))?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let network_path = cfg.network_file.clone().ok_or_else(|| {
        DaemonError::Other("a network configuration is required (--network FILE)".into())
    })?;
    let network = crate::node::read_network(&network_path)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| DaemonError::Other(format!("cannot start the runtime: {e}")))?;
    rt.block_on(async move {
        let handle = crate::start(cfg, &network, Arc::new(umbra_transport::SystemClock)).await?;
        println!("umbrad listening on {}", handle.addr);
        if let Some(a) = handle.admin_addr {
            println!("admin on http://{a}");
        }
        shutdown_signal().await;
        tracing::info!("shutting down");
        handle.shutdown().await;
        Ok(())
    })
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
