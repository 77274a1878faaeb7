//! `umbra-load`: the load and fault generator of issue 10 (see the library
//! docs). `umbra-load run …` drives a devnet whose nodes are this same
//! executable run as `umbra-load node --config FILE` (the `umbrad` code).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use umbra_load::LoadConfig;
use umbra_load::faults::FaultPlan;

#[derive(Parser)]
#[command(
    name = "umbra-load",
    about = "Load and fault generator for a local Umbra devnet"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a devnet (node processes on 127.0.i.1), run the load, check delivery.
    Run(RunArgs),
    /// Run one node (used by `run` for its devnet processes).
    Node(umbra_node::daemon::DaemonArgs),
}

#[derive(Args)]
struct RunArgs {
    /// Simulated accounts.
    #[arg(long, default_value_t = 1000)]
    accounts: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 300)]
    duration: u64,
    /// Devnet nodes.
    #[arg(long, default_value_t = 12)]
    nodes: usize,
    /// Inject faults: kill -9 and restarts, a SIGSTOP pause, a full disk.
    #[arg(long)]
    faults: bool,
    /// Simulated devices (onion path managers) the accounts share.
    #[arg(long, default_value_t = 32)]
    devices: usize,
    /// Mean seconds between two sends of one account.
    #[arg(long, default_value_t = 20.0)]
    send_interval: f64,
    /// Seconds between two syncs of one account.
    #[arg(long, default_value_t = 10.0)]
    sync_interval: f64,
    /// Onion calls in flight at most.
    #[arg(long, default_value_t = 256)]
    max_inflight: usize,
    /// Seconds to let the final syncs and the swarm check converge.
    #[arg(long, default_value_t = 90)]
    settle: u64,
    /// SIGSTOP length in seconds (with --faults).
    #[arg(long, default_value_t = 30)]
    pause: u64,
    /// Devnet directory (default: a temporary directory, removed afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Seed of accounts and schedule.
    #[arg(long, default_value_t = 0x0075_6d62_7261)]
    seed: u64,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Node(args) => umbra_node::daemon::run(args).map_err(anyhow::Error::from),
        Command::Run(a) => run(a),
    }
}

fn run(a: RunArgs) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("finding the umbra-load executable")?;
    let duration = Duration::from_secs(a.duration);
    let mut cfg = LoadConfig::new(a.accounts, duration, a.nodes, exe);
    cfg.devices = a.devices;
    cfg.send_interval = Duration::from_secs_f64(a.send_interval);
    cfg.sync_interval = Duration::from_secs_f64(a.sync_interval);
    cfg.max_inflight = a.max_inflight;
    cfg.settle = Duration::from_secs(a.settle);
    cfg.dir = a.dir;
    cfg.seed = a.seed;
    cfg.progress = Some(Duration::from_secs(10));
    if a.faults {
        let mut plan = FaultPlan::standard(duration);
        plan.pause_for = Duration::from_secs(a.pause);
        cfg.faults = Some(plan);
    }
    eprintln!(
        "umbra-load: {} accounts, {} nodes, {} s{}",
        a.accounts,
        a.nodes,
        a.duration,
        if a.faults { ", faults on" } else { "" }
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let report = rt.block_on(umbra_load::run(cfg))?;
    println!("{report}");
    if let Some(p) = a.json {
        std::fs::write(&p, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    if !report.ok() {
        anyhow::bail!("acknowledged messages were lost, duplicated or not held by every member");
    }
    Ok(())
}
