//! `umbra devnet …`: a local Umbra network of `umbra node` processes
//! (`up` in the foreground until Ctrl-C; `status`, `down`, `add-node`,
//! `remove-node` from another terminal), and `umbra node`, which runs one
//! service node (the same code as `umbrad`).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use umbra_devnet::{Devnet, DevnetOptions, Mode};

/// `umbra devnet` subcommands.
#[derive(Debug, Subcommand)]
pub enum DevnetCommand {
    /// Start N nodes with a signed registry and stay in the foreground until Ctrl-C.
    Up(UpArgs),
    /// Show every node of a running devnet and the epoch it holds.
    Status(DirArg),
    /// Stop every node of a running devnet.
    Down(DirArg),
    /// Start one more node and publish a registry epoch listing it.
    AddNode(DirArg),
    /// Publish a registry epoch without node INDEX, then stop it.
    RemoveNode {
        #[command(flatten)]
        dir: DirArg,
        /// The node's index (see `umbra devnet status`).
        index: usize,
    },
    /// Stop node INDEX without removing it (a node failure). With registry
    /// instances (`up --registries`), wait until they drop it from an epoch
    /// and show how the swarms changed.
    StopNode {
        #[command(flatten)]
        dir: DirArg,
        /// The node's index (see `umbra devnet status`).
        index: usize,
    },
}

/// Options of `umbra devnet up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 12)]
    nodes: usize,
    /// Directory for keys, data, registry, logs, `network.json` and `nodes.json`.
    #[arg(long)]
    dir: PathBuf,
    /// First HTTPS port (node i listens on base + i); 0 picks free ports.
    #[arg(long, default_value_t = 0)]
    base_port: u16,
    /// Minimum swarm size of the devnet.
    #[arg(long, default_value_t = 3)]
    swarm_size_hint: usize,
    /// Put each node on its own loopback address in its own /24 (127.0.N.1).
    #[arg(long)]
    distinct_ips: bool,
    /// Run this many registry instances (in this process) that health-check
    /// the nodes and threshold-sign every epoch after the first, instead of
    /// the built-in signer; 0 keeps the built-in signer.
    #[arg(long, default_value_t = 0)]
    registries: usize,
    /// Signatures an epoch needs (with --registries).
    #[arg(long, default_value_t = 2)]
    threshold: usize,
    /// Registry round and health-check period in ms (failure limit 3×,
    /// epoch interval 5×).
    #[arg(long, default_value_t = 1_000)]
    registry_scale_ms: u64,
}

/// The devnet directory.
#[derive(Debug, Args)]
pub struct DirArg {
    /// The devnet directory given to `umbra devnet up`.
    #[arg(long)]
    dir: PathBuf,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Runs a devnet command.
pub fn run(cmd: DevnetCommand) -> anyhow::Result<()> {
    let rt = runtime()?;
    rt.block_on(async move {
        match cmd {
            DevnetCommand::Up(a) => up(a).await,
            DevnetCommand::Status(d) => status(&d.dir).await,
            DevnetCommand::Down(d) => {
                let n = umbra_devnet::down_dir(&d.dir)?;
                println!("stopped {n} node(s)");
                Ok(())
            }
            DevnetCommand::AddNode(d) => {
                let mut net = Devnet::attach(&d.dir)?;
                let i = net.add_node().await?;
                println!("node {i} added; registry epoch {}", net.registry().epoch());
                net.detach();
                Ok(())
            }
            DevnetCommand::RemoveNode { dir, index } => {
                let mut net = Devnet::attach(&dir.dir)?;
                net.remove_node(index).await?;
                println!(
                    "node {index} removed; registry epoch {}",
                    net.registry().epoch()
                );
                net.detach();
                Ok(())
            }
            DevnetCommand::StopNode { dir, index } => stop_node(&dir.dir, index).await,
        }
    })
}

async fn stop_node(dir: &std::path::Path, index: usize) -> anyhow::Result<()> {
    let mut net = Devnet::attach(dir)?;
    if !umbra_devnet::registries::enabled(net.network()) {
        net.stop_node(index).await;
        net.detach();
        println!(
            "node {index} stopped; the built-in signer does not health-check, so it stays \
             listed (use remove-node, or up --registries)"
        );
        return Ok(());
    }
    let started = std::time::Instant::now();
    println!("node {index} stopped; waiting for the registry instances to drop it …");
    let (before, after) = umbra_devnet::registries::stop_node_and_wait(
        &mut net,
        index,
        std::time::Duration::from_secs(600),
    )
    .await?;
    println!(
        "epoch {} → {} after {:.1} s: {} nodes, {} swarms, signed by {} instance(s)",
        before.epoch(),
        after.epoch(),
        started.elapsed().as_secs_f64(),
        after.nodes().len(),
        after.swarm_ids().len(),
        after.signatures().len()
    );
    let name = |k: &umbra_crypto::Ed25519Public| {
        (0..net.len())
            .find(|&i| net.node_addr(i).key == *k)
            .map_or("?".to_string(), |i| i.to_string())
    };
    let old = before.assignment();
    for (k, s) in after.assignment() {
        match old.get(&k) {
            Some(o) if *o == s => {}
            Some(o) => println!("node {} moved from swarm {o} to swarm {s}", name(&k)),
            None => println!("node {} joined swarm {s}", name(&k)),
        }
    }
    println!("the stopped node's accounts are handed over to their new owners (swarms.md §7)");
    net.detach();
    Ok(())
}

async fn up(a: UpArgs) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("locating the umbra executable")?;
    let opts = DevnetOptions {
        nodes: a.nodes,
        dir: a.dir.clone(),
        base_port: a.base_port,
        swarm_size_hint: a.swarm_size_hint,
        distinct_ips: a.distinct_ips,
        mode: Mode::Processes { exe },
    };
    eprintln!("starting {} nodes in {} …", a.nodes, a.dir.display());
    let (mut net, registries) = if a.registries > 0 {
        let r = umbra_devnet::registries::RegistriesOptions {
            count: a.registries,
            threshold: a.threshold,
            scale_ms: a.registry_scale_ms,
        };
        let (net, regs) = umbra_devnet::registries::up_with_registries(opts, r).await?;
        println!(
            "{} registry instances, threshold {}: {}",
            a.registries,
            a.threshold,
            net.network().registry_urls.join(" ")
        );
        (net, Some(regs))
    } else {
        (Devnet::up(opts).await?, None)
    };
    print_table(&net);
    // The file server (issue 9): listed as `file_server` in network.json,
    // where clients created from it find it.
    let fs = net.start_file_server().await?;
    println!(
        "file server: {}   (file_server in network.json)",
        fs.handle.addr
    );
    println!(
        "ready: registry epoch {} in {}",
        net.registry().epoch(),
        a.dir.join("registry").display()
    );
    println!(
        "network: {}   nodes: {}",
        a.dir.join("network.json").display(),
        a.dir.join("nodes.json").display()
    );
    println!("press Ctrl-C to stop");
    umbra_node::daemon::shutdown_signal().await;
    eprintln!("stopping …");
    fs.handle.stop().await;
    if let Some(r) = registries {
        r.shutdown().await;
    }
    net.down().await;
    Ok(())
}

fn print_table(net: &Devnet) {
    let doc = net.registry();
    println!("{:<6} {:<22} {:<18} swarm", "node", "address", "ed25519");
    for (swarm, members) in doc.swarms() {
        for r in members {
            println!(
                "{:<6} {:<22} {:<18} {}",
                (0..net.len())
                    .find(|&i| net.node_addr(i).key == r.ed25519)
                    .map_or("?".into(), |i| i.to_string()),
                format!("{}:{}", r.ipv4, r.https_port),
                format!("{}…", &hex::encode(r.ed25519.as_bytes())[..12]),
                swarm
            );
        }
    }
}

async fn status(dir: &std::path::Path) -> anyhow::Result<()> {
    let rows = umbra_devnet::status(dir).await?;
    println!(
        "{:<6} {:<22} {:<8} {:<8} epoch",
        "node", "address", "listed", "state"
    );
    for (m, info) in rows {
        let (state, epoch) = match info {
            Some(v) => ("up", v["epoch"].to_string()),
            None => ("down", "-".into()),
        };
        println!(
            "{:<6} {:<22} {:<8} {:<8} {}",
            m.index, m.addr, m.listed, state, epoch
        );
    }
    Ok(())
}
