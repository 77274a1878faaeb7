//! Umbra's networking: the only crate in the workspace that opens sockets or
//! reads the system clock.
//!
//! - [`tls`]: a node's self-signed Ed25519 certificate, the pinned-key
//!   verifier (`shared/spec/storage-rpc.md` §1.3) and the optional node
//!   client certificate.
//! - [`server`]: serving an axum router over HTTPS on the node port, or plain
//!   HTTP on the loopback admin port, with handshake timeouts and graceful
//!   shutdown.
//! - [`client`]: [`NodeClient`], HTTPS requests to nodes pinned to their
//!   Ed25519 keys over pooled keep-alive connections
//!   (`shared/spec/swarms.md` §8), behind the [`Transport`] trait.
//! - [`clock`]: the [`Clock`] trait, the system clock and a test clock.
//!
//! Everything uses Tokio, hyper 1 and rustls (ring provider, TLS 1.3 only).
//! Protocol logic lives in `umbra-proto`; this crate moves bytes.
#![warn(missing_docs)]

pub mod client;
pub mod clock;
pub mod server;
pub mod tls;

pub use client::{
    ClientConfig, NodeAddr, NodeClient, Request, Response, Transport, TransportError,
};
pub use clock::{Clock, SystemClock, TestClock};
pub use server::{PeerNode, ServeError, Server, serve};
pub use tls::{ClientIdentity, TlsError};
