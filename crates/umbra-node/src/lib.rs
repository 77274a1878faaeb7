//! `umbra-node`: the library behind the Umbra service node `umbrad`.
//!
//! This crate owns the node-side logic of `shared/spec/storage-rpc.md` and
//! `shared/spec/swarms.md`. Today it holds the local message store
//! ([`storage`]); the RPC handlers, swarm fan-out and the `umbrad` binary are
//! added next to it.

#![warn(missing_docs)]

pub mod storage;
