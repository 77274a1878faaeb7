//! Node-to-node requests (`swarms.md` §6, §8): signing and sending them
//! over pinned HTTPS, the swarm fan-out of recursive methods, and the
//! catch-up marks set for members that missed a store.

use std::time::Duration;

use bytes::Bytes;
use futures::future::join_all;
use http::{HeaderName, HeaderValue};
use serde_json::{Value, json};
use umbra_proto::rpc::limits::FANOUT_TIMEOUT_MS;
use umbra_proto::rpc::node_req::{NodeRequestAuth, PATH_SWARM};
use umbra_proto::swarm::NodeRecord;
use umbra_transport::{NodeAddr, Request, Response, TransportError};

use crate::rpc::peer_outcome;
use crate::state::Node;

/// The transport address of a registry node record.
pub fn addr_of(r: &NodeRecord) -> NodeAddr {
    NodeAddr::new(
        std::net::SocketAddr::from((r.ipv4, r.https_port)),
        r.ed25519,
    )
}

/// Sends a signed node request (§8.2) to `peer`.
pub async fn node_post(
    node: &Node,
    peer: &NodeRecord,
    path: &str,
    body: Vec<u8>,
    timeout: Duration,
) -> Result<Response, TransportError> {
    let epoch = node.registry().epoch();
    let auth = NodeRequestAuth::sign(&node.keys, "POST", path, epoch, node.now_ms(), &body);
    let mut req = Request::post(path, Bytes::from(body))?.timeout(timeout);
    for (name, value) in auth.headers() {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            req = req.header(n, v);
        }
    }
    node.peers.send(&addr_of(peer), req).await
}

/// Forwards a recursive request unchanged to every other member of this
/// node's swarm (5 s each, in parallel) and returns each member's entry.
pub async fn to_swarm(
    node: &Node,
    method: &str,
    params: &Value,
) -> Vec<(String, Result<Value, Value>)> {
    let peers = node.registry().peers();
    if peers.is_empty() {
        return Vec::new();
    }
    let body = match serde_json::to_vec(&json!({"method": method, "params": params})) {
        Ok(b) => b,
        Err(_) => return Vec::new(),
    };
    let timeout = Duration::from_millis(FANOUT_TIMEOUT_MS);
    join_all(peers.iter().map(|peer| {
        let body = body.clone();
        async move {
            let key = hex::encode(peer.ed25519.as_bytes());
            let outcome = match node_post(node, peer, PATH_SWARM, body, timeout).await {
                Ok(resp) => peer_outcome(resp.status.as_u16(), &resp.body),
                Err(TransportError::Timeout { .. }) => {
                    Err(json!({"failed": true, "timeout": true}))
                }
                Err(e) => {
                    tracing::debug!(peer = %&key[..8], error = %e, "swarm forward failed");
                    Err(json!({"failed": true, "query_failure": true}))
                }
            };
            (key, outcome)
        }
    }))
    .await
}

/// Sets a catch-up mark (`swarms.md` §6) for each peer whose copy of a
/// recursive request failed for a reason other than a 4xx answer.
pub async fn mark_missed(node: &Node, results: &[(String, Result<Value, Value>)], mark: u64) {
    for (key, outcome) in results {
        let Err(failure) = outcome else { continue };
        let client_error = failure
            .get("code")
            .and_then(Value::as_u64)
            .is_some_and(|c| (400..500).contains(&c));
        if client_error {
            continue;
        }
        let Ok(bytes) = hex::decode(key) else {
            continue;
        };
        let Ok(peer) = <[u8; 32]>::try_from(bytes.as_slice()) else {
            continue;
        };
        node.catchup_dirty
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(peer);
        match node.store.set_catchup_mark(peer, mark).await {
            Ok(true) => {
                tracing::info!(peer = %&key[..8], "peer missed a change; catch-up scheduled")
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "cannot record catch-up mark"),
        }
    }
}
