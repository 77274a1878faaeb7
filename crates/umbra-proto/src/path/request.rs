//! Requests on the onion paths (`onion.md` §10.4, §10.6, §11): the [`Plan`]
//! the driver sends, the [`Outcome`] it observed, and the [`Decision`]
//! [`PathManager::handle_outcome`](super::PathManager::handle_outcome) takes.
//!
//! The outcomes are the rows of the §10.6 table:
//!
//! | reply | [`Outcome`] | counts against | decision |
//! | --- | --- | --- | --- |
//! | connection, TLS or timeout failure talking to the guard | [`Outcome::GuardUnreachable`] | guard and path | retry on the other path |
//! | plaintext `502` "Next node not found: X" | [`Outcome::NextNodeNotFound`] | node X | replace X (hop 2/3) or pick another destination; retry |
//! | plaintext `504`/`503`/`500`/`429`, or a `200` that does not decrypt | [`Outcome::RelayFailure`] | path | retry on another path |
//! | plaintext `400` | [`Outcome::RelayRejected`] | path | refresh the registry, retry once on another path |
//! | inner `421` | [`Outcome::Misdirected`] | nothing | use the body's swarm; then refresh; then fail |
//! | inner `406`/`425` | [`Outcome::ClockRejected`] | nothing | resync the clock, retry once |
//! | inner `500`/`503` | [`Outcome::DestinationFailure`] | the destination | retry on another member |
//! | inner `507` | [`Outcome::DestinationFull`] | nothing (the member is healthy, its database full) | retry on another member; `507` when none is left |
//! | any other inner status | [`Outcome::Rejected`] | nothing | fail, no retry |
//! | inner `200` | [`Outcome::Success`] | resets counters | done |
//!
//! [`Outcome::from_relay_error`] and [`Outcome::from_inner`] classify raw
//! replies, so that drivers map them exactly as the table says.

use std::collections::BTreeSet;

use umbra_crypto::Ed25519Public;

use super::manager::PathId;
use super::{FailureKind, PathError};
use crate::swarm::NodeRecord;

/// Where a request ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A storage node: the 4th node, after the 3 hops of the path.
    Node(NodeRecord),
    /// A server reached through hop 3's proxy (§4.2).
    Server,
}

/// One try of a request: send it through `path` to `destination`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// `[guard, hop2, hop3]`.
    pub path: [NodeRecord; 3],
    /// The destination node, or the server behind hop 3.
    pub destination: Destination,
    /// 0 for the first try, then 1 and 2 for the retries.
    pub attempt: u32,
    pub(crate) slot: usize,
    pub(crate) path_id: PathId,
    pub(crate) request: RequestState,
}

impl Plan {
    /// The destination node (`None` for a server request).
    pub fn destination_node(&self) -> Option<&NodeRecord> {
        match &self.destination {
            Destination::Node(n) => Some(n),
            Destination::Server => None,
        }
    }

    /// The path this plan uses.
    pub fn path_id(&self) -> PathId {
        self.path_id
    }
}

/// What a request needs remembered across its tries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestState {
    pub(crate) kind: RequestKind,
    /// Destinations that failed for this request.
    pub(crate) excluded: BTreeSet<Ed25519Public>,
    /// Inner `421`s seen.
    pub(crate) misdirected: u32,
    /// Clock resyncs done.
    pub(crate) clock_resyncs: u32,
    /// Plaintext `400`s seen.
    pub(crate) relay_rejections: u32,
    /// Whether this request already asked for a bootstrap.
    pub(crate) bootstrapped: bool,
}

impl RequestState {
    pub(crate) fn new(kind: RequestKind) -> Self {
        RequestState {
            kind,
            excluded: BTreeSet::new(),
            misdirected: 0,
            clock_resyncs: 0,
            relay_rejections: 0,
            bootstrapped: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RequestKind {
    /// A storage RPC to a member of this swarm.
    Storage { members: Vec<NodeRecord> },
    /// A request to a server.
    Server,
}

/// A request waiting for the driver to do something before it is retried
/// (refresh the registry, resync the clock, bootstrap). Hand it back to
/// [`PathManager::resume`](super::PathManager::resume).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub(crate) request: RequestState,
    /// The index of the try that `resume` plans.
    pub(crate) attempt: u32,
    /// The path slot to avoid ("retry on another path").
    pub(crate) avoid_slot: Option<usize>,
}

impl Pending {
    /// The index of the try that [`PathManager::resume`](super::PathManager::resume) will plan.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}

/// What the driver observed for one try (§10.6 rows; §7.3 and §11 for how
/// replies are told apart).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Connection, TLS or timeout failure talking to the guard.
    GuardUnreachable,
    /// Plaintext `502` "Next node not found: X" from a relay.
    NextNodeNotFound(Ed25519Public),
    /// Plaintext `504`, `503`, `500` or `429` (or any other plaintext error
    /// but `400` and the `502` above) from a relay, or a `200` whose body does
    /// not decrypt under the destination-layer key.
    RelayFailure,
    /// Plaintext `400` from a relay.
    RelayRejected,
    /// Inner `421`: the keys of the `snodes` listed in the body.
    Misdirected {
        /// The swarm members the destination named.
        snodes: Vec<Ed25519Public>,
    },
    /// Inner `406` or `425`.
    ClockRejected,
    /// Inner `500` or `503`.
    DestinationFailure {
        /// The inner status.
        status: u16,
    },
    /// Inner `507`: the destination's database is full; the client stores
    /// through another member of the swarm (storage-rpc §9.1, status table).
    DestinationFull,
    /// Any other inner non-`200` status (`400`, `401`, `403`, `404`, `413`, …).
    Rejected {
        /// The inner status.
        status: u16,
    },
    /// Inner `200` (or any decrypted server reply).
    Success {
        /// The node's `t` (unix ms), when the reply carries one.
        node_time_ms: Option<u64>,
    },
}

/// The body prefix of a relay's `502` for an unknown next hop (§11).
const NEXT_NODE_NOT_FOUND: &str = "Next node not found: ";

impl Outcome {
    /// Classifies a plaintext error a relay answered with (HTTP `status`,
    /// text `body`): the §10.6 rows for plaintext replies.
    pub fn from_relay_error(status: u16, body: &str) -> Outcome {
        match status {
            400 => Outcome::RelayRejected,
            502 => body
                .trim()
                .strip_prefix(NEXT_NODE_NOT_FOUND)
                .and_then(|hex_key| {
                    let mut b = [0u8; 32];
                    (hex_key.len() == 64)
                        .then(|| hex::decode_to_slice(hex_key, &mut b).ok())
                        .flatten()
                        .map(|()| Outcome::NextNodeNotFound(Ed25519Public::from_bytes(b)))
                })
                .unwrap_or(Outcome::RelayFailure),
            _ => Outcome::RelayFailure,
        }
    }

    /// Classifies a decrypted destination reply: its inner `status`, its
    /// `body` as JSON text (read for `421`: the `snodes` list, also accepted
    /// as a JSON string holding the JSON text), and its `t`.
    pub fn from_inner(status: u16, body: &str, node_time_ms: Option<u64>) -> Outcome {
        match status {
            200 => Outcome::Success { node_time_ms },
            421 => Outcome::Misdirected {
                snodes: parse_snodes(body),
            },
            406 | 425 => Outcome::ClockRejected,
            500 | 503 => Outcome::DestinationFailure { status },
            507 => Outcome::DestinationFull,
            _ => Outcome::Rejected { status },
        }
    }

    /// The failure class, `None` for a success.
    pub(crate) fn failure_kind(&self) -> Option<FailureKind> {
        Some(match self {
            Outcome::GuardUnreachable => FailureKind::Guard,
            Outcome::NextNodeNotFound(k) => FailureKind::NextNodeNotFound(*k),
            Outcome::RelayFailure => FailureKind::Relay,
            Outcome::RelayRejected => FailureKind::RelayRejected,
            Outcome::Misdirected { .. } => FailureKind::Misdirected,
            Outcome::ClockRejected => FailureKind::Clock,
            Outcome::DestinationFailure { status } | Outcome::Rejected { status } => {
                FailureKind::Destination(*status)
            }
            Outcome::DestinationFull => FailureKind::Destination(507),
            Outcome::Success { .. } => return None,
        })
    }

    /// True when the reply came back decrypted from the destination: the
    /// path itself worked.
    pub(crate) fn path_worked(&self) -> bool {
        matches!(
            self,
            Outcome::Misdirected { .. }
                | Outcome::ClockRejected
                | Outcome::DestinationFailure { .. }
                | Outcome::DestinationFull
                | Outcome::Rejected { .. }
                | Outcome::Success { .. }
        )
    }
}

/// The `pubkey_ed25519` of each entry of a `421` body's `snodes`; entries
/// that do not parse are skipped.
fn parse_snodes(body: &str) -> Vec<Ed25519Public> {
    let mut value: serde_json::Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(_) => return Vec::new(),
    };
    if let serde_json::Value::String(inner) = &value {
        value = match serde_json::from_str(inner) {
            Ok(v) => v,
            Err(_) => return Vec::new(),
        };
    }
    let Some(list) = value.get("snodes").and_then(|s| s.as_array()) else {
        return Vec::new();
    };
    let mut out: Vec<Ed25519Public> = Vec::new();
    for entry in list {
        let Some(hex_key) = entry.get("pubkey_ed25519").and_then(|k| k.as_str()) else {
            continue;
        };
        let mut b = [0u8; 32];
        if hex_key.len() == 64 && hex::decode_to_slice(hex_key, &mut b).is_ok() {
            let key = Ed25519Public::from_bytes(b);
            if !out.contains(&key) {
                out.push(key);
            }
        }
    }
    out
}

/// What the driver does next with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Decision {
    /// The request succeeded.
    Done,
    /// Wait `delay_ms`, then send `plan`.
    Retry {
        /// The backoff of §10.6 (200 ms, then 400 ms).
        delay_ms: u64,
        /// The next try.
        plan: Box<Plan>,
        /// After an inner `421`: the swarm that replaces the cached swarm of
        /// the request's account.
        swarm: Option<Vec<NodeRecord>>,
    },
    /// Refresh the registry (feed it to
    /// [`PathManager::handle_registry`](super::PathManager::handle_registry)),
    /// recompute the target swarm, then
    /// [`resume`](super::PathManager::resume) with its members.
    RefreshRegistry(Pending),
    /// Ask `info` of these nodes through onion requests, feed their `t` to
    /// [`PathManager::handle_clock_resync`](super::PathManager::handle_clock_resync),
    /// then [`resume`](super::PathManager::resume).
    ResyncClock {
        /// Two random nodes (fewer on a tiny network).
        nodes: Vec<NodeRecord>,
        /// The request to resume.
        pending: Pending,
    },
    /// Every path attempt has failed for too long, or the pool is too small:
    /// fetch the registry from the seed nodes (`swarms.md` §3.3), feed it,
    /// then [`resume`](super::PathManager::resume).
    Bootstrap(Pending),
    /// Give up: return this error to the caller.
    Fail(PathError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_errors() {
        let key = "ab".repeat(32);
        assert_eq!(
            Outcome::from_relay_error(502, &format!("Next node not found: {key}")),
            Outcome::NextNodeNotFound(Ed25519Public::from_bytes([0xab; 32]))
        );
        assert_eq!(
            Outcome::from_relay_error(502, &format!("Next node not found: {key}\n")),
            Outcome::NextNodeNotFound(Ed25519Public::from_bytes([0xab; 32]))
        );
        // A truncated or foreign 502 is a path failure.
        assert_eq!(
            Outcome::from_relay_error(502, &format!("Next node not found: {}", &key[..62])),
            Outcome::RelayFailure
        );
        assert_eq!(
            Outcome::from_relay_error(502, "Bad Gateway"),
            Outcome::RelayFailure
        );
        for s in [504, 503, 500, 429, 404, 413] {
            assert_eq!(Outcome::from_relay_error(s, "x"), Outcome::RelayFailure);
        }
        assert_eq!(
            Outcome::from_relay_error(400, "Invalid ciphertext"),
            Outcome::RelayRejected
        );
    }

    #[test]
    fn inner_statuses() {
        assert_eq!(
            Outcome::from_inner(200, "{}", Some(5)),
            Outcome::Success {
                node_time_ms: Some(5)
            }
        );
        assert_eq!(Outcome::from_inner(406, "", None), Outcome::ClockRejected);
        assert_eq!(Outcome::from_inner(425, "", None), Outcome::ClockRejected);
        assert_eq!(
            Outcome::from_inner(500, "", None),
            Outcome::DestinationFailure { status: 500 }
        );
        assert_eq!(
            Outcome::from_inner(503, "", None),
            Outcome::DestinationFailure { status: 503 }
        );
        assert_eq!(Outcome::from_inner(507, "", None), Outcome::DestinationFull);
        for s in [400, 401, 403, 404, 413, 299] {
            assert_eq!(
                Outcome::from_inner(s, "", None),
                Outcome::Rejected { status: s }
            );
        }
    }

    #[test]
    fn misdirected_body() {
        let a = "01".repeat(32);
        let b = "02".repeat(32);
        let body = format!(
            r#"{{"snodes":[{{"pubkey_ed25519":"{a}","ip":"1.2.3.4","port_https":1}},{{"pubkey_ed25519":"zz"}},{{"pubkey_ed25519":"{b}"}},{{"pubkey_ed25519":"{a}"}},{{}}],"swarm":"0000000000000001","epoch":3,"t":5}}"#
        );
        let want = vec![
            Ed25519Public::from_bytes([1; 32]),
            Ed25519Public::from_bytes([2; 32]),
        ];
        assert_eq!(
            Outcome::from_inner(421, &body, None),
            Outcome::Misdirected {
                snodes: want.clone()
            }
        );
        // json: false sends the body as a JSON string holding JSON text.
        let quoted = serde_json::to_string(&body).unwrap();
        assert_eq!(
            Outcome::from_inner(421, &quoted, None),
            Outcome::Misdirected { snodes: want }
        );
        assert_eq!(
            Outcome::from_inner(421, "not json", None),
            Outcome::Misdirected { snodes: vec![] }
        );
        assert_eq!(
            Outcome::from_inner(421, r#"{"snodes": 5}"#, None),
            Outcome::Misdirected { snodes: vec![] }
        );
    }
}
