//! `umbra-client`: everything a user's device does, as a library the CLI,
//! the terminal UI, the daemon and the tests share.
//!
//! | module | owns |
//! | --- | --- |
//! | [`api`] | typed onion-routed storage calls: store, retrieve, delete, expire, get_swarm |
//! | [`profile`] | the profile directory: lock, keys, the local store's key (optionally wrapped by a passphrase) |
//! | [`store`] | the local store: messages, conversations, contacts, settings, seen hashes — encrypted at rest |
//! | [`net`] | onion requests through guard paths (driving `umbra_proto::path`), swarm lookup, network time |
//! | [`attachments`] | attachment upload/download in chunks through onion paths (issue 9) |
//! | [`groups`] | group chats on the group's own swarm (issue 8) |
//! | [`preview`] | link previews: first URL, `proxy_fetch` through a node, title scanner, kept titles |
//! | [`receipts`] | read-receipt batching: one receipt message per conversation per 2 s |
//! | [`client`] | send, sync, requests and blocking, receipts, typing, disappearing messages, unsend |
#![warn(missing_docs)]

pub mod api;
pub mod attachments;
pub mod client;
pub mod groups;
pub mod net;
pub mod preview;
pub mod profile;
pub mod receipts;
pub mod store;
pub mod thumbnail;
