//! The `umbra-registry` command line: `run` an instance from a TOML file,
//! and the operator steps on its data directory (`add-node`, `admit`,
//! `remove-node`, `status`), which a running instance picks up at its next
//! round.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use umbra_proto::swarm::{NodeRecord, RegistryDocument};

use crate::config::InstanceConfig;
use crate::store::{CandidateStore, parse_key};

/// A registry authority of an Umbra network.
#[derive(Debug, Parser)]
#[command(name = "umbra-registry", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs an instance.
    Run {
        /// The TOML configuration.
        #[arg(long)]
        config: PathBuf,
    },
    /// Creates (or reads) the registry key of a data directory and prints
    /// its public half, for the network's pinned key set.
    Key {
        /// The instance's data directory.
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Adds and admits a node from its self-signed record file (bencoded).
    AddNode {
        /// The instance's data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// The record file.
        #[arg(long)]
        record: PathBuf,
    },
    /// Admits a node whose record was submitted.
    Admit {
        /// The instance's data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// The node's Ed25519 key (64 hex).
        key: String,
    },
    /// Removes a node: it leaves this instance's votes at once.
    RemoveNode {
        /// The instance's data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// The node's Ed25519 key (64 hex).
        key: String,
    },
    /// Shows the candidates, admissions and the current epoch.
    Status {
        /// The instance's data directory.
        #[arg(long)]
        data_dir: PathBuf,
    },
}

/// Runs the command line; errors are printed and give exit code 1.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("umbra-registry: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run { config } => {
            let cfg = InstanceConfig::from_file(&config)?;
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_new(&cfg.log_level)
                        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
                )
                .init();
            let net_path = cfg
                .network_file
                .clone()
                .context("network_file is required")?;
            let network = umbra_node::node::read_network(&net_path)?;
            let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
            rt.block_on(async move {
                let listener = crate::instance::bind(&cfg).await?;
                let mut h = crate::instance::start(
                    cfg,
                    &network,
                    None,
                    listener,
                    Arc::new(umbra_transport::SystemClock),
                )
                .await?;
                println!("{}", h.url());
                tokio::select! {
                    _ = umbra_node::daemon::shutdown_signal() => h.shutdown().await,
                    _ = h.wait() => {}
                }
                anyhow::Ok(())
            })
        }
        Command::Key { data_dir } => {
            std::fs::create_dir_all(&data_dir)
                .with_context(|| format!("creating {}", data_dir.display()))?;
            let key = umbra_node::keyfile::load_or_create(
                &data_dir.join("registry.key"),
                umbra_crypto::random_bytes::<32>,
            )?;
            println!("{}", hex::encode(key.public().as_bytes()));
            Ok(())
        }
        Command::AddNode { data_dir, record } => {
            let bytes =
                std::fs::read(&record).with_context(|| format!("reading {}", record.display()))?;
            let r = NodeRecord::parse(&bytes)?;
            CandidateStore::open(&data_dir)?.add_node(&r)?;
            println!("added {}", hex::encode(r.ed25519.as_bytes()));
            Ok(())
        }
        Command::Admit { data_dir, key } => {
            CandidateStore::open(&data_dir)?.admit(parse_key(&key)?)?;
            Ok(())
        }
        Command::RemoveNode { data_dir, key } => {
            CandidateStore::open(&data_dir)?.remove(&parse_key(&key)?)?;
            Ok(())
        }
        Command::Status { data_dir } => {
            let s = CandidateStore::open(&data_dir)?;
            let admitted = s.admitted();
            let current = s
                .read_doc("current")
                .and_then(|b| RegistryDocument::parse(&b).ok());
            println!(
                "epoch {}",
                current.as_ref().map_or(0, RegistryDocument::epoch)
            );
            for (k, r) in s.records() {
                let listed = current.as_ref().is_some_and(|d| d.node(&k).is_some());
                println!(
                    "{} {}:{} admitted={} listed={}",
                    hex::encode(k.as_bytes()),
                    r.ipv4,
                    r.https_port,
                    admitted.contains(&k),
                    listed
                );
            }
            Ok(())
        }
    }
}
