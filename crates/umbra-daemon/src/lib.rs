//! `umbra-daemon`: the headless Umbra client for bots and scripts
//! (issue 7 item 3; the API is documented in `docs/API.md`).
//!
//! [`serve`] runs a [`Client`](umbra_client::client::Client) that syncs in
//! the background (every 2 s by default) and answers JSON-RPC 2.0 requests,
//! one per line, on a Unix socket inside the profile directory
//! ([`socket_path`], mode 0600, removed on exit). `subscribe` turns a
//! connection into a stream of `event` notifications: new messages, read
//! receipts, message requests and typing changes.
//!
//! | module | owns |
//! | --- | --- |
//! | [`rpc`] | JSON-RPC framing: parsing, error codes, params, responses |
//! | [`methods`] | the API methods, on the client and its store |
//! | [`events`] | turning store changes into events |
//! | [`server`] | the socket, connections, subscriptions, the sync loop |
//! | [`client`] | a small client: [`Connection`], [`call`], [`running`] |
#![warn(missing_docs)]

pub mod client;
pub mod events;
pub mod groups;
pub mod methods;
pub mod rpc;
pub mod server;

pub use client::{CallError, Connection, call, running};
pub use server::{
    DEFAULT_SYNC_INTERVAL, DaemonError, ServeOptions, serve, serve_with_options, socket_path,
};
