//! Umbra's pure protocol layer.
//!
//! Everything here is a format, a cryptographic construction or a state
//! machine; nothing performs I/O, reads a clock or draws randomness. Time
//! (`now_ms`) and random bytes are parameters, so every function is
//! deterministic and testable against the vectors in `test-vectors/`.
//!
//! | module | owns | spec |
//! | --- | --- | --- |
//! | [`attachment`] | attachment encryption (legacy, deterministic, chunked), file IDs and URLs | attachments |
//! | [`identity`] | account IDs and account keys | identity §1–2 |
//! | [`mnemonic`] | recovery phrases | identity §3–4 |
//! | [`network`] | the network configuration (`network.json`) | swarms §3 |
//! | [`message`] | 1:1 encryption, padding, Envelope/Content protobuf | messages §2–6 |
//! | [`swarm`] | account → swarm mapping, node → swarm assignment | swarms §1–4 |
//! | [`rpc`] | storage RPC types, signed strings, message hashes | storage-rpc |
//! | [`onion`] | onion layers: build, peel, replies, size buckets | onion |
//! | [`bencode`] | canonical bencoding | README conventions |
//! | [`group`] | Umbra groups: keys per generation, signed state, messages, control | groups |
//! | [`path`] | client path management: node pool, guards, paths, failures, network time | onion §10 |
#![warn(missing_docs)]

pub mod attachment;
pub mod bencode;
pub mod group;
pub mod identity;
pub mod message;
pub mod mnemonic;
pub mod network;
pub mod onion;
pub mod path;
pub mod rpc;
pub mod swarm;
