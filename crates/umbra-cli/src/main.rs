//! The `umbra` command line.
//!
//! This file only parses arguments and dispatches: each command group lives
//! in its own module (`keys` for account keys and recovery phrases,
//! identity §1 and §3–4). Later groups (`demo`, `devnet`, `send`, …) add a
//! variant to [`Command`] and a module with a `run` function.
//!
//! Errors are printed to stderr as `umbra: error: …` with exit status 1;
//! normal output goes to stdout.

mod demo;
mod devnet;
mod files;
mod group;
mod keys;
mod messaging;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Umbra: an anonymous messenger network (Session-compatible).
#[derive(Debug, Parser)]
#[command(name = "umbra", version, about, propagate_version = true, after_help = EXIT_HELP)]
struct Cli {
    #[command(flatten)]
    common: messaging::Common,
    #[command(subcommand)]
    command: Command,
}

/// The command groups.
#[derive(Debug, Subcommand)]
enum Command {
    /// Create, restore and inspect account keys and recovery phrases.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Run a local Umbra network (nodes, registry) for development and tests.
    #[command(subcommand)]
    Devnet(devnet::DevnetCommand),
    /// See the whole network work on this machine, step by step (12 local nodes, Alice and Bob).
    Demo(demo::DemoArgs),
    /// Create, restore or show the account of a profile.
    #[command(subcommand)]
    Account(messaging::AccountCommand),
    #[command(flatten)]
    Msg(messaging::MsgCommand),
    #[command(flatten)]
    Files(files::FilesCommand),
    /// Group chats: create, add, remove, leave, promote, rename, info.
    #[command(subcommand)]
    Group(group::GroupCommand),
    /// Run the client headless with a JSON-RPC API on PROFILE/daemon.sock (see docs/API.md).
    Daemon {
        /// Seconds between syncs.
        #[arg(long, default_value_t = 2.0)]
        sync_interval: f64,
    },
    /// The terminal chat UI: conversations, requests, settings, account (press ? for keys).
    Chat,
    /// Run one service node (the same program as `umbrad`).
    Node(umbra_node::daemon::DaemonArgs),
}

/// Exit codes, documented in `umbra --help`.
mod exit {
    pub const ERROR: u8 = 1;
    pub const INPUT: u8 = 2;
    pub const NETWORK: u8 = 3;
    pub const CLOCK: u8 = 4;
    pub const SWARM_FULL: u8 = 5;
}

const EXIT_HELP: &str = "Exit codes: 0 success; 1 other error; 2 bad input (malformed or unknown \
account ID, contact name, phrase or option); 3 the network is unreachable (no node list, no onion \
path, every try failed); 4 clock skew the nodes keep rejecting; 5 the recipient's swarm is full.";

/// The exit code for an error, from its typed causes.
fn exit_code(e: &anyhow::Error) -> u8 {
    use umbra_client::client::ClientError;
    use umbra_client::net::NetError;
    use umbra_proto::path::PathError;
    let net = |n: &NetError| match n {
        NetError::Path(PathError::ClockRejected)
        | NetError::Failed {
            error: PathError::ClockRejected,
            ..
        } => exit::CLOCK,
        _ => exit::NETWORK,
    };
    for cause in e.chain() {
        if cause.downcast_ref::<messaging::InputError>().is_some()
            || cause
                .downcast_ref::<umbra_proto::identity::IdError>()
                .is_some()
            || cause
                .downcast_ref::<umbra_proto::mnemonic::MnemonicError>()
                .is_some()
        {
            return exit::INPUT;
        }
        if let Some(n) = cause.downcast_ref::<NetError>() {
            return net(n);
        }
        if let Some(c) = cause.downcast_ref::<ClientError>() {
            return match c {
                ClientError::Net(n) => net(n),
                ClientError::Refused {
                    status: 406 | 425, ..
                } => exit::CLOCK,
                ClientError::Refused { status: 507, .. } => exit::SWARM_FULL,
                ClientError::Invalid(_) => exit::INPUT,
                _ => exit::ERROR,
            };
        }
    }
    exit::ERROR
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Keys(cmd) => keys::run(cmd),
        Command::Devnet(cmd) => devnet::run(cmd),
        Command::Demo(args) => demo::run(args),
        Command::Account(cmd) => messaging::account(&cli.common, cmd),
        Command::Msg(cmd) => messaging::run(&cli.common, cmd),
        Command::Files(cmd) => files::run(&cli.common, cmd),
        Command::Group(cmd) => group::run(&cli.common, cmd),
        Command::Daemon { sync_interval } => messaging::daemon(&cli.common, sync_interval),
        Command::Chat => messaging::open_client(&cli.common)
            .and_then(|client| umbra_tui::run(client).map_err(anyhow::Error::from)),
        Command::Node(args) => umbra_node::daemon::run(args).map_err(anyhow::Error::from),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("umbra: error: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}
