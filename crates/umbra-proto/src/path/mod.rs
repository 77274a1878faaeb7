//! Client path management (`onion.md` §10, status codes of §11; registry
//! refresh and bootstrap of `swarms.md` §3.3) as a sans-I/O state machine.
//!
//! [`PathManager`] decides; the async client performs the network I/O and
//! reports back. Nothing here reads a clock or draws randomness: every input
//! takes `now_ms` (the local clock, unix milliseconds) and every choice takes
//! `draw`, a closure where `draw(n)` returns a uniform value in `0..n`.
//!
//! # Driving it
//!
//! | kind | methods |
//! | --- | --- |
//! | inputs | [`PathManager::handle_registry`], [`PathManager::handle_node_list`], [`PathManager::handle_epoch_seen`], [`PathManager::handle_guard_test`], [`PathManager::handle_path_test`], [`PathManager::handle_clock_resync`], [`PathManager::handle_outcome`] |
//! | requests | [`PathManager::plan_storage_request`], [`PathManager::plan_server_request`], [`PathManager::resume`] |
//! | outputs | [`PathManager::poll_action`] (work to do), [`PathManager::poll_event`] (news), [`PathManager::poll_timeout`] (when to poll again) |
//! | getters | [`PathManager::guard_state`], [`PathManager::paths`], [`PathManager::network_now`], … |
//!
//! 1. Load the persisted [`GuardState`] into [`PathManager::new`], then feed
//!    the registry (or the seed list) you hold.
//! 2. Call [`PathManager::poll_action`] until it returns `None`, performing
//!    each [`Action`] and reporting its result; call it again when a result
//!    arrives or at [`PathManager::poll_timeout`].
//! 3. For each request, [`PathManager::plan_storage_request`] (or
//!    `plan_server_request`) gives a [`Plan`]; send it, classify the reply
//!    into an [`Outcome`], and follow the [`Decision`] of
//!    [`PathManager::handle_outcome`].
//! 4. Drain [`PathManager::poll_event`]: persist the guard state on
//!    [`Event::GuardsChanged`], drop nodes from cached swarms on
//!    [`Event::NodeMarkedBad`].
//!
//! | submodule | owns | spec |
//! | --- | --- | --- |
//! | [`pool`] | the node pool, bad marks, failure counters, the /24 rule and its fallbacks | §10.1 |
//! | [`clock`] | the network clock offset | §10.5 |
//! | [`guard`] | the persisted guard state | §10.2 |
//! | [`request`] | plans, outcomes (§10.6 rows, §11 codes), decisions | §10.4, §10.6 |
//! | [`manager`] | [`PathManager`]: guards, paths, planning, failure handling | §10.2–10.6, swarms §3.3 |

pub mod clock;
pub mod guard;
pub mod manager;
pub mod pool;
pub mod request;

pub use clock::NetworkClock;
pub use guard::{GuardState, GuardStateError, SavedGuard};
pub use manager::{Action, Event, GuardTest, PathConfig, PathId, PathManager};
pub use pool::{NodePool, same_subnet};
pub use request::{Decision, Destination, Outcome, Pending, Plan};

use umbra_crypto::Ed25519Public;

/// Number of guards (and of paths) the client keeps (§10.2).
pub const GUARD_COUNT: usize = 2;
/// Guard candidates tested before backing off (§10.2).
pub const GUARD_ATTEMPTS: u32 = 5;
/// Failures after which a node is marked bad (§10.6).
pub const NODE_FAILURE_THRESHOLD: u32 = 3;
/// Failures after which a path is rebuilt (§10.6).
pub const PATH_FAILURE_THRESHOLD: u32 = 3;
/// Tries per request, the first one included (§10.6).
pub const MAX_TRIES: u32 = 3;
/// Successful replies whose clock offsets make the median (§10.5).
pub const CLOCK_SAMPLES: usize = 5;
/// Ceiling of the retry backoff (§10.6).
pub const MAX_BACKOFF_MS: u64 = 5_000;

/// The wait before retry `n` (1 for the first retry): `min(5000 ms, 100 ms ×
/// 2ⁿ)` (§10.6). Also used between rounds of guard tests and failed path
/// tests.
pub fn backoff_ms(n: u32) -> u64 {
    1u64.checked_shl(n)
        .map_or(MAX_BACKOFF_MS, |p| p.saturating_mul(100))
        .min(MAX_BACKOFF_MS)
}

/// Why a request could not be planned, or why it failed for good.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// No path is ready (guards or paths still being tested, or the pool is
    /// too small). Poll [`PathManager::poll_action`] and try again.
    #[error("no onion path is ready")]
    NoPath,
    /// Every member of the target swarm is excluded (bad, or already failed
    /// for this request).
    #[error("no usable member of the target swarm")]
    NoDestination,
    /// The destination answered with a status that is returned to the caller
    /// without retry (§10.6 last row).
    #[error("the destination answered {status}")]
    Rejected {
        /// The inner (RPC) status.
        status: u16,
    },
    /// A third inner `421` (§10.6).
    #[error("the target swarm is still misdirected after refreshing the registry")]
    Misdirected,
    /// A second inner `406`/`425`, after the clock resync (§10.5).
    #[error("the destination still rejects our clock after a resync")]
    ClockRejected,
    /// A second plaintext `400` from a relay (§10.6).
    #[error("a relay rejected the request again after a registry refresh")]
    RelayRejected,
    /// The request was tried [`MAX_TRIES`] times.
    #[error("request failed after {tries} tries (last: {last})")]
    Exhausted {
        /// Tries made.
        tries: u32,
        /// The last failure.
        last: FailureKind,
    },
}

/// A failure class of §10.6 (what the last try of an exhausted request saw).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureKind {
    /// Connection, TLS or timeout failure talking to the guard.
    Guard,
    /// Plaintext `502` "Next node not found".
    NextNodeNotFound(Ed25519Public),
    /// Plaintext `504`/`503`/`500`/`429` (or another path-level error), or an
    /// undecryptable reply.
    Relay,
    /// Plaintext `400` from a relay.
    RelayRejected,
    /// Inner `421`.
    Misdirected,
    /// Inner `406`/`425`.
    Clock,
    /// Inner `500`/`503`.
    Destination(u16),
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FailureKind::Guard => f.write_str("guard unreachable"),
            FailureKind::NextNodeNotFound(k) => {
                let b = k.as_bytes();
                write!(
                    f,
                    "next node not found: {:02x}{:02x}{:02x}{:02x}…",
                    b[0], b[1], b[2], b[3]
                )
            }
            FailureKind::Relay => f.write_str("relay failure"),
            FailureKind::RelayRejected => f.write_str("relay rejected the request"),
            FailureKind::Misdirected => f.write_str("misdirected (421)"),
            FailureKind::Clock => f.write_str("clock rejected"),
            FailureKind::Destination(s) => write!(f, "destination failure ({s})"),
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn backoff_values() {
        assert_eq!(backoff_ms(1), 200);
        assert_eq!(backoff_ms(2), 400);
        assert_eq!(backoff_ms(5), 3_200);
        assert_eq!(backoff_ms(6), 5_000);
        assert_eq!(backoff_ms(63), 5_000);
        assert_eq!(backoff_ms(64), 5_000);
        assert_eq!(backoff_ms(u32::MAX), 5_000);
        assert_eq!(backoff_ms(0), 100);
    }
}
