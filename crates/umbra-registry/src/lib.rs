//! `umbra-registry`: a registry authority (issue 11, `shared/spec/swarms.md`
//! §3). Each registry operator runs one instance. It holds its Ed25519
//! registry key and the network's pinned key set and threshold, admits nodes
//! (self-signed records submitted over an authenticated `POST`, or added by
//! the operator), checks their reachability, and agrees with the other
//! instances on threshold-signed epochs of the node list, which it publishes.
//!
//! | module | owns |
//! | --- | --- |
//! | [`config`] | the instance's TOML configuration and intervals |
//! | [`store`] | candidate records, operator admissions, current document and lock on disk |
//! | [`health`] | reachability checks and the per-node vote they give |
//! | [`agreement`] | the pure convergence rule: agreed set, document, locks |
//! | [`instance`] | the running instance: HTTPS endpoints, health task, agreement rounds |
//! | [`cli`] | the `umbra-registry` command line |

#![warn(missing_docs)]

pub mod agreement;
pub mod cli;
pub mod config;
pub mod health;
pub mod instance;
pub mod store;

pub use config::InstanceConfig;
pub use instance::{Instance, RegistryHandle, StartError, start, submit_record};
