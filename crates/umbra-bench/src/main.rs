//! `umbra-bench`: prints Umbra's benchmark table (issue 10,
//! `docs/PERFORMANCE.md`). `umbra-bench all` runs every row; `crypto`,
//! `rpc`, `onion`, `e2e` and `memory` run one; `--quick` shortens each.
//! Run it in release: `cargo run --release -p umbra-bench -- all`.

use std::time::{Duration, Instant};

use anyhow::Result;
use clap::{Parser, Subcommand};
use umbra_bench::crypto::CryptoOpts;
use umbra_bench::e2e::E2eOpts;
use umbra_bench::measure::{load_average, machine};
use umbra_bench::memory::MemoryOpts;
use umbra_bench::onion::OnionOpts;
use umbra_bench::rpc::RpcOpts;
use umbra_bench::table::{Row, render};
use umbra_bench::{crypto, e2e, memory, onion, rpc};

/// Umbra's benchmark table: crypto bounds, node RPC, onion relay, 3-hop
/// round trips, end-to-end delivery and node memory, each with its bound.
#[derive(Parser, Debug)]
#[command(name = "umbra-bench", version)]
struct Cli {
    /// A short run (seconds instead of minutes; figures are noisier).
    #[arg(long, global = true)]
    quick: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Every row, one table.
    All,
    /// Per-core costs of the crypto primitives.
    Crypto {
        /// CPU time per primitive, ms (default 500; 60 with --quick).
        #[arg(long)]
        budget_ms: Option<u64>,
    },
    /// store/retrieve over HTTPS against one node.
    Rpc {
        /// Requests in flight (default 32).
        #[arg(long)]
        concurrency: Option<usize>,
        /// Seconds per phase (default 5; 1 with --quick).
        #[arg(long)]
        seconds: Option<u64>,
    },
    /// Relay layers per core and the 3-hop round trip.
    Onion,
    /// Send → sync delivery latency on a 12-node devnet.
    E2e {
        /// Messages measured (default 100; 20 with --quick).
        #[arg(long)]
        messages: Option<usize>,
    },
    /// RSS and database size of a node holding many messages.
    Memory {
        /// Messages stored (default 1,000,000; 100,000 with --quick).
        #[arg(long)]
        messages: Option<usize>,
    },
    /// Runs a node (the `umbrad` command line); the memory row starts itself
    /// with it so the node has a process of its own.
    #[command(hide = true)]
    Node(umbra_node::daemon::DaemonArgs),
}

fn load() -> String {
    load_average().map_or_else(
        || "unknown".into(),
        |l| format!("{:.2} {:.2} {:.2}", l[0], l[1], l[2]),
    )
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Cmd::Node(args) = cli.cmd {
        umbra_node::daemon::run(args)?;
        return Ok(());
    }
    let (model, cpus) = machine();
    let load_before = load();
    println!(
        "umbra-bench {} — {model}, {cpus} CPUs, load average {load_before} (1/5/15 min) at start{}",
        env!("CARGO_PKG_VERSION"),
        if cli.quick { ", --quick" } else { "" }
    );
    if cfg!(debug_assertions) {
        println!("warning: debug build; run with --release for meaningful figures");
    }
    let t = Instant::now();
    let q = cli.quick;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut rows: Vec<Row> = Vec::new();
    let section = |name: &str| eprintln!("[{:>6.1} s] {name} …", t.elapsed().as_secs_f64());
    match cli.cmd {
        Cmd::Crypto { budget_ms } => {
            let mut o = CryptoOpts::new(q);
            if let Some(ms) = budget_ms {
                o.budget = Duration::from_millis(ms);
            }
            rows.extend(crypto::rows(&crypto::measure(o)?));
        }
        Cmd::Rpc {
            concurrency,
            seconds,
        } => {
            let mut o = RpcOpts::new(q);
            o.concurrency = concurrency.unwrap_or(o.concurrency);
            o.phase = seconds.map_or(o.phase, Duration::from_secs);
            rows.extend(rpc::rows(&mut rt.block_on(rpc::measure(o))?));
        }
        Cmd::Onion => rows.extend(onion::rows(
            &mut rt.block_on(onion::measure(OnionOpts::new(q)))?,
        )),
        Cmd::E2e { messages } => {
            let mut o = E2eOpts::new(q);
            o.messages = messages.unwrap_or(o.messages);
            rows.extend(e2e::rows(&mut rt.block_on(e2e::measure(o))?, None));
        }
        Cmd::Memory { messages } => {
            let mut o = MemoryOpts::new(q);
            o.messages = messages.unwrap_or(o.messages);
            rows.extend(memory::rows(&mut rt.block_on(memory::measure(o))?));
        }
        Cmd::All => {
            section("crypto");
            rows.extend(crypto::rows(&crypto::measure(CryptoOpts::new(q))?));
            section("rpc");
            rows.extend(rpc::rows(&mut rt.block_on(rpc::measure(RpcOpts::new(q)))?));
            section("onion");
            let mut o = rt.block_on(onion::measure(OnionOpts::new(q)))?;
            let rtt = o.onion.pct_ms(0.5);
            rows.extend(onion::rows(&mut o));
            section("e2e");
            rows.extend(e2e::rows(
                &mut rt.block_on(e2e::measure(E2eOpts::new(q)))?,
                Some(rtt),
            ));
            section("memory");
            rows.extend(memory::rows(
                &mut rt.block_on(memory::measure(MemoryOpts::new(q)))?,
            ));
        }
        Cmd::Node(_) => {}
    }
    println!();
    print!("{}", render(&rows));
    println!();
    println!(
        "total {:.1} s; load average {} at end",
        t.elapsed().as_secs_f64(),
        load()
    );
    Ok(())
}
