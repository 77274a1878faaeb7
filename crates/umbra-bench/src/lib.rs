//! `umbra-bench`: the measurements behind `docs/PERFORMANCE.md` (issue 10).
//! Each module owns one section of the table and measures its figure next
//! to the bound it is compared with, in the same run:
//!
//! - [`crypto`]: per-core costs of the primitives (the bounds);
//! - [`rpc`]: `store`/`retrieve` over HTTPS against one real node, next to a
//!   no-op HTTPS endpoint and the storage layer alone;
//! - [`onion`]: a relay's layers per core against the per-layer crypto, and
//!   the 3-hop round trip against a direct request;
//! - [`e2e`]: Alice's send until Bob's sync sees it on a 12-node devnet;
//! - [`memory`]: RSS of a node process holding 1,000,000 messages, and the
//!   database size relative to the payload.
//!
//! [`setup`] holds the network set-up they share, [`measure`] the timers
//! and percentiles, [`table`] the output.

pub mod crypto;
pub mod e2e;
pub mod measure;
pub mod memory;
pub mod onion;
pub mod rpc;
pub mod setup;
pub mod table;
