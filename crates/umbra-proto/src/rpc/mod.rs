//! The storage RPC protocol layer (`storage-rpc.md`, all sections; node-to-
//! node requests of `swarms.md` §6–8), shared by the node (server) and the
//! client. Pure: no I/O, no clock, no randomness.
//!
//! | module | owns | spec |
//! | --- | --- | --- |
//! | [`status`] | status codes, [`RpcError`] | §10 |
//! | [`namespace`] | namespaces and their classes | §5 |
//! | [`encoding`] | strict JSON encodings (timestamps, base64, hex keys) | §3 |
//! | [`hash`] | message hashes | §7 |
//! | [`limits`] | time tolerances, limits, `retrieve` budget | §4, §6, §9.2 |
//! | [`sign`] | signed strings, auth fields, subaccount tokens, verification | §2 |
//! | [`types`] | request/response types of every method, request parsing | §1.1, §3, §8.2, §9 |
//! | [`validate`] | per-method validation (`403`/`406`/`401`) | §4, §9 |
//! | [`node_sig`] | node response signatures | §8.3 |
//! | [`node_req`] | node-to-node request auth and hand-over push bodies | swarms §6–8 |
//! | [`tombstone_proof`] | the owner's signed request a tombstone carries, and its checks | swarms §6 |
//!
//! Node flow: [`types::Request::parse_body`] (`413`/`400`) → swarm
//! ownership (`421`, node's own check) → `validate::validate_*` → apply →
//! `node_sig::sign_*_result`. Client flow: build params, sign with
//! [`sign::Signer`], send [`types::Request::to_body`], check each member's
//! result with `node_sig::verify_*_result`.

pub mod encoding;
pub mod hash;
pub mod limits;
pub mod namespace;
pub mod node_req;
pub mod node_sig;
pub mod sign;
pub mod status;
pub mod tombstone_proof;
pub mod types;
pub mod validate;

pub use encoding::Signature;
pub use hash::{MessageHash, message_hash};
pub use namespace::{Namespace, NamespaceClass, NamespaceSel};
pub use status::{RpcError, StatusCode};
pub use types::{Method, Request, Via};
