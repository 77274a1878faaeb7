//! `umbra-node`: the library behind the Umbra service node `umbrad`
//! (`shared/spec/storage-rpc.md`, `shared/spec/swarms.md`).
//!
//! | module | owns |
//! | --- | --- |
//! | [`config`] | the TOML configuration |
//! | [`keyfile`] | the node key on disk (0600) |
//! | [`storage`] | SQLite message storage with group commit |
//! | [`registry`] | the node's view of the signed registry and its swarm |
//! | [`rpc`] | client storage RPC: validation, application, fan-out results |
//! | [`fanout`] | signed node-to-node requests, swarm fan-out, catch-up marks |
//! | [`peer`] | the node-to-node endpoints (swarm, push, since, ping) |
//! | [`replication`] | background tasks: sweep, hand-over, catch-up, pull, registry file |
//! | [`http`] | routers of the HTTPS and admin ports |
//! | [`metrics`], [`ratelimit`] | Prometheus metrics, per-IP token buckets |
//! | [`node`] | starting and stopping a node in-process |
//! | [`onion`] | onion requests: client entry, hop relay, destination, proxy |
//! | [`fetch`] | `proxy_fetch`: link-preview fetches with address, redirect and size rules |
//! | [`daemon`] | the `umbrad` command line (also `umbra node`) |
//!
//! The `umbrad` binary (`src/bin/umbrad.rs`) only calls [`daemon::run`].

#![warn(missing_docs)]

pub mod config;
pub mod daemon;
pub mod fanout;
pub mod fetch;
pub mod http;
pub mod keyfile;
pub mod metrics;
pub mod node;
pub mod onion;
pub mod peer;
pub mod ratelimit;
pub mod registry;
pub mod replication;
pub mod rpc;
pub mod state;
pub mod storage;

pub use config::NodeConfig;
pub use node::{NodeHandle, StartError, start};
pub use state::Node;
