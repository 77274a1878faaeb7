//! `umbra-sim`: the swarm scale simulator (issue 6 item 5).
//!
//! Runs the real node → swarm assignment and account → swarm mapping
//! (`shared/spec/swarms.md` §1–4) over many registry epochs with churn, and
//! measures the hand-over cost of §7.1. Writes `DIR/sim.csv` (one row per
//! epoch) and `DIR/sim.png`, and prints a summary table. The logic lives in
//! [`umbra_devnet::sim`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use umbra_devnet::sim::{self, SimConfig};
use umbra_proto::swarm::SwarmParams;

/// Simulates swarm assignment and data movement at scale, deterministically.
#[derive(Debug, Parser)]
#[command(name = "umbra-sim", version)]
struct Args {
    /// Nodes in the first epoch.
    #[arg(long, default_value_t = 20_000)]
    nodes: usize,
    /// Accounts (pseudo-random 33-byte IDs).
    #[arg(long, default_value_t = 1_000_000)]
    accounts: usize,
    /// Registry epochs, the first (initial placement) included.
    #[arg(long, default_value_t = 100)]
    epochs: u64,
    /// Share of nodes joining and leaving per epoch (sets both rates).
    #[arg(long, default_value_t = 0.01)]
    churn: f64,
    /// Share of nodes joining per epoch (overrides --churn).
    #[arg(long)]
    join: Option<f64>,
    /// Share of nodes leaving per epoch (overrides --churn).
    #[arg(long)]
    leave: Option<f64>,
    /// The seed every random choice derives from.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Output directory for sim.csv and sim.png.
    #[arg(long, default_value = "umbra-sim-out")]
    out: PathBuf,
    /// MIN_SWARM_SIZE; the other constants follow the public network's
    /// (EXCESS_BASE = MIN, IDEAL_SWARM_MARGIN 2, NEW_SWARM_SIZE = MIN + 2).
    /// Default: the public constants 5, 5, 2, 7.
    #[arg(long)]
    min_swarm_size: Option<usize>,
    /// Worker threads for the per-account work.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// No per-epoch progress on stderr.
    #[arg(long)]
    quiet: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let params = match args.min_swarm_size {
        None => SwarmParams::PUBLIC,
        Some(k) => SwarmParams {
            min_swarm_size: k,
            excess_base: k,
            ideal_swarm_margin: SwarmParams::PUBLIC.ideal_swarm_margin,
            new_swarm_size: k + 2,
        },
    };
    let cfg = SimConfig {
        nodes: args.nodes,
        accounts: args.accounts,
        epochs: args.epochs,
        join_rate: args.join.unwrap_or(args.churn),
        leave_rate: args.leave.unwrap_or(args.churn),
        seed: args.seed,
        params,
        threads: args.threads,
    };
    let start = Instant::now();
    let quiet = args.quiet;
    let report = match sim::run(&cfg, |e| {
        if !quiet && (e.epoch == 1 || e.epoch % 10 == 0) {
            eprintln!(
                "epoch {:>4}: {} nodes, {} swarms, sizes {}..{}, copies {:.3} % ({:.1} s)",
                e.epoch,
                e.nodes,
                e.swarms,
                e.size_min,
                e.size_max,
                e.copy_share() * 100.0,
                start.elapsed().as_secs_f64()
            );
        }
    }) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("umbra-sim: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = sim::write_outputs(&report, &args.out) {
        eprintln!("umbra-sim: {e}");
        return ExitCode::FAILURE;
    }
    print!("{}", sim::summary_table(&report));
    println!(
        "{:<31}  {} and {} ({:.1} s)",
        "written",
        args.out.join("sim.csv").display(),
        args.out.join("sim.png").display(),
        start.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}
