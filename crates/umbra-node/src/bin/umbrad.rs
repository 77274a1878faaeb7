//! `umbrad`: the Umbra service node. Parses flags and the TOML config,
//! sets up logging, starts the node library and stops it on SIGTERM/Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use umbra_node::NodeConfig;

/// The Umbra service node: stores end-to-end encrypted messages for its
/// swarm until they expire, replicates them to its swarm peers, and answers
/// the storage RPC over HTTPS.
#[derive(Parser, Debug)]
#[command(name = "umbrad", version)]
struct Args {
    /// TOML configuration file (flags override it).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Data directory (key, database, registry).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// HTTPS listen address, e.g. 0.0.0.0:22021.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Admin (healthz, metrics) listen address; must be loopback.
    #[arg(long)]
    admin_listen: Option<SocketAddr>,
    /// Network configuration (network.json: pinned registry keys).
    #[arg(long)]
    network: Option<PathBuf>,
    /// Registry document file (default DATA_DIR/registry).
    #[arg(long)]
    registry: Option<PathBuf>,
    /// Node key file (default DATA_DIR/node.key; created on first start).
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// Log filter, e.g. info or umbra_node=debug.
    #[arg(long)]
    log_level: Option<String>,
    /// Print the node's Ed25519 public key (creating the key if needed) and exit.
    #[arg(long)]
    print_key: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut cfg = match &args.config {
        Some(p) => NodeConfig::from_file(p)?,
        None => NodeConfig::default(),
    };
    if let Some(v) = args.data_dir {
        cfg.data_dir = v;
    }
    if let Some(v) = args.listen {
        cfg.listen = v;
    }
    if let Some(v) = args.admin_listen {
        cfg.admin_listen = Some(v);
    }
    if let Some(v) = args.network {
        cfg.network_file = Some(v);
    }
    if let Some(v) = args.registry {
        cfg.registry_file = Some(v);
    }
    if let Some(v) = args.key_file {
        cfg.key_file = Some(v);
    }
    if let Some(v) = args.log_level {
        cfg.log_level = v;
    }
    cfg.validate()?;
    if args.print_key {
        std::fs::create_dir_all(&cfg.data_dir).context("creating the data directory")?;
        let kp =
            umbra_node::keyfile::load_or_create(&cfg.key_path(), umbra_crypto::random_bytes::<32>)?;
        println!("{}", hex::encode(kp.public().as_bytes()));
        return Ok(());
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cfg.log_level).context("bad log level")?,
        )
        .with_writer(std::io::stderr)
        .init();
    let network_path = cfg
        .network_file
        .clone()
        .context("a network configuration is required (--network FILE)")?;
    let network = umbra_node::node::read_network(&network_path)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let handle =
            umbra_node::start(cfg, &network, Arc::new(umbra_transport::SystemClock)).await?;
        println!("umbrad listening on {}", handle.addr);
        if let Some(a) = handle.admin_addr {
            println!("admin on http://{a}");
        }
        shutdown_signal().await;
        tracing::info!("shutting down");
        handle.shutdown().await;
        anyhow::Ok(())
    })
}

async fn shutdown_signal() {
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
