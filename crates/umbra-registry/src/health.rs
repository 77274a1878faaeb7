//! Reachability of candidate nodes as one registry instance sees them
//! (`swarms.md` §3.3): the pure table of check results and the vote that
//! follows from it, plus the check itself (a `POST /node/v1/ping` and an
//! `info` call over TLS pinned to the node's key).
//!
//! A node gets this instance's vote once a check has succeeded and keeps it
//! until it has failed every check for longer than the failure limit (spec
//! default 2 hours). One successful check restores the vote (re-admission).

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use umbra_crypto::Ed25519Public;
use umbra_proto::rpc::node_req::{PATH_PING, PING_REPLY};
use umbra_proto::swarm::NodeRecord;
use umbra_transport::{NodeAddr, NodeClient, Request};

/// The check results of one node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeHealth {
    /// A check has succeeded at least once.
    pub ever_ok: bool,
    /// When the current run of failed checks began (`None` when the last
    /// check succeeded).
    pub failing_since_ms: Option<u64>,
}

/// Check results of every candidate node.
#[derive(Debug, Clone, Default)]
pub struct HealthTable {
    nodes: BTreeMap<Ed25519Public, NodeHealth>,
    failure_limit_ms: u64,
}

impl HealthTable {
    /// An empty table; a node failing for longer than `failure_limit_ms`
    /// loses this instance's vote.
    pub fn new(failure_limit_ms: u64) -> Self {
        HealthTable {
            nodes: BTreeMap::new(),
            failure_limit_ms,
        }
    }

    /// Records one check result.
    pub fn record(&mut self, node: Ed25519Public, ok: bool, now_ms: u64) {
        let h = self.nodes.entry(node).or_default();
        if ok {
            h.ever_ok = true;
            h.failing_since_ms = None;
        } else if h.failing_since_ms.is_none() {
            h.failing_since_ms = Some(now_ms);
        }
    }

    /// True when this instance votes for `node`: it passed a check, and has
    /// not been failing for longer than the limit.
    pub fn votes_for(&self, node: &Ed25519Public, now_ms: u64) -> bool {
        self.nodes.get(node).is_some_and(|h| {
            h.ever_ok
                && h.failing_since_ms
                    .is_none_or(|s| now_ms.saturating_sub(s) <= self.failure_limit_ms)
        })
    }

    /// The results of `node`, if it was ever checked.
    pub fn get(&self, node: &Ed25519Public) -> Option<NodeHealth> {
        self.nodes.get(node).copied()
    }

    /// Drops nodes that are no longer candidates.
    pub fn retain(&mut self, keep: impl Fn(&Ed25519Public) -> bool) {
        self.nodes.retain(|k, _| keep(k));
    }
}

/// One reachability check of `record`: `POST /node/v1/ping` must answer
/// `200 pong` and `info` must answer `200` with JSON, both over TLS pinned to
/// the node's key, each within `timeout`.
pub async fn check_node(client: &NodeClient, record: &NodeRecord, timeout: Duration) -> bool {
    let addr = NodeAddr::new(
        std::net::SocketAddr::from((record.ipv4, record.https_port)),
        record.ed25519,
    );
    let Ok(ping) = Request::post(PATH_PING, Bytes::new()) else {
        return false;
    };
    match client.send(&addr, ping.timeout(timeout)).await {
        Ok(r) if r.status == 200 && r.body.as_ref() == PING_REPLY => {}
        _ => return false,
    }
    let body = Bytes::from_static(br#"{"method":"info","params":{}}"#);
    let Ok(info) = Request::post("/storage_rpc/v1", body) else {
        return false;
    };
    match client.send(&addr, info.timeout(timeout)).await {
        Ok(r) if r.status == 200 => {
            serde_json::from_slice::<serde_json::Value>(&r.body).is_ok_and(|v| v.is_object())
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vote_needs_one_success_and_ends_after_the_failure_limit() {
        let k = umbra_crypto::Ed25519Keypair::from_seed(&[1; 32]).public();
        let mut t = HealthTable::new(1_000);
        assert!(!t.votes_for(&k, 0), "never checked");
        t.record(k, false, 0);
        assert!(!t.votes_for(&k, 10), "never succeeded");
        t.record(k, true, 100);
        assert!(t.votes_for(&k, 100));
        t.record(k, false, 200);
        t.record(k, false, 900);
        assert!(t.votes_for(&k, 1_200), "failing for exactly the limit");
        assert!(!t.votes_for(&k, 1_201), "failing for longer than the limit");
        t.record(k, true, 5_000);
        assert!(t.votes_for(&k, 5_000), "re-admitted after one success");
        t.retain(|_| false);
        assert!(t.get(&k).is_none());
    }
}
