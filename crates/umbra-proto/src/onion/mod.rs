//! Onion requests (spec `onion.md` §1–9): layer encryption, the layer
//! container, routing JSON, client-side building, node-side peeling, the
//! hop-to-hop relay message, replies, v4 lsrpc and size buckets.
//!
//! Everything is pure: ephemeral secrets and nonces are parameters
//! ([`LayerRandom`], `&[u8; 24]`), and nothing here performs I/O. Name
//! resolution of proxy hosts is the node's job; it then applies
//! [`check_resolved_addresses`] to what it resolved.
//!
//! | module | owns | spec |
//! | --- | --- | --- |
//! | [`hop`] | `enc_type`, per-layer keys, layer AEAD | §1 |
//! | [`container`] | `u32_le(N) ‖ blob ‖ json` framing | §2 |
//! | [`routing`] | what a decrypted layer asks a node to do | §4 |
//! | [`target`] | proxy URL rules and the public-address policy | §4.2 |
//! | [`peel`](mod@peel) | node side: entry request, decrypt, route | §3, §4, §6 |
//! | [`relay`] | hop-to-hop bencoded relay message, hop counting | §6 |
//! | [`build`] | client side: building (and padding) an onion | §5, §9.2 |
//! | [`reply`] | destination replies and client-side opening | §7, §9.3–9.4 |
//! | [`v4`] | v4 lsrpc request/response lists | §8, §7.2 |
//! | [`pad`] | size buckets | §9 |
//! | [`error`] | [`OnionError`] and its HTTP mapping | §11 |

pub mod build;
pub mod container;
pub mod error;
pub mod hop;
pub mod pad;
pub mod peel;
pub mod relay;
pub mod reply;
pub mod routing;
pub mod target;
pub mod v4;

pub use build::{
    BuiltOnion, LayerRandom, NodeRequestOptions, OnionDestination, PathNode, ServerTarget,
    build_onion, build_padded_onion,
};
pub use container::{Container, frame, unframe};
pub use error::OnionError;
pub use hop::{EncType, LayerKey, NodeLayerSecret};
pub use pad::{BUCKETS, MAX_BODY_SIZE, bucket_for};
pub use peel::{IncomingLayer, Peeled, peel, peel_entry, peel_plaintext, peel_relay, peel_with};
pub use relay::{MAX_ONION_HOPS, RelayMessage};
pub use reply::{
    NodeReply, ReplyBody, ReplyOutcome, open_node_reply, open_server_reply, open_server_request,
    seal_node_reply, seal_server_reply,
};
pub use routing::{DeliverOptions, Layer, ProxyRoute, RelayRoute, Route, parse_layer};
pub use target::{
    Protocol, ProxyHost, ProxyRequest, address_allowed, check_resolved_addresses, target_allowed,
};
pub use v4::{V4Request, V4Response, decode_v4_list, encode_v4_list};

#[cfg(test)]
mod tests;
