//! The node-to-node endpoints (`swarms.md` §6–8): `POST /node/v1/swarm`
//! (a forwarded recursive request), `/node/v1/push` (hand-over and
//! catch-up), `/node/v1/since` (a rejoining member pulls what it missed) and
//! `/node/v1/ping`. Every endpoint except ping requires the §8.2 signed
//! headers of a node listed now or in an epoch superseded less than an hour
//! ago; node requests are exempt from client rate limits.
//!
//! Tombstones in a push or a `since` reply are applied only with the
//! account owner's signed request that covers them, verified here
//! ([`apply_tombstones`]): a swarm member cannot make its peers delete or
//! shorten messages on its own word.
//!
//! `/node/v1/onion` also accepts a caller authenticated once per connection
//! by its TLS client certificate ([`authenticate_connection`]): the
//! deliberate deviation from per-request signatures described in
//! `docs/ARCHITECTURE.md` ("Onion relay authentication").
//!
//! A request claiming a newer epoch makes this node fetch the registry from
//! its sender, one fetch per peer at a time and not again from a peer for a while
//! after a fetch that did not help ([`RegistryCatchUp`]); a pull from a peer
//! takes at most [`MAX_PULL_PAGES`] pages.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use umbra_proto::rpc::node_req::{
    HEADER_EPOCH, HEADER_NODE, HEADER_SIGNATURE, HEADER_TIMESTAMP, MAX_PUSH_BODY, NodeRequestAuth,
    PATH_PUSH, PATH_SINCE, PATH_SWARM, PushItem, PushReply, PushTombstone, decode_push_body,
    encode_push_with_tombstones,
};
use umbra_proto::rpc::tombstone_proof::{ProofError, ProofRequest, VerifiedProof};
use umbra_proto::rpc::types::GetRegistryResponse;
use umbra_proto::rpc::{MessageHash, Namespace, RpcError, StatusCode, Via};
use umbra_proto::swarm::NodeRecord;

use crate::fanout::addr_of;
use crate::http::TimedBytes;
use crate::http::{reply_response, text};
use crate::rpc;
use crate::state::Node;
use crate::storage::{ProvenTombstone, StoreError, StoredMessage, Tombstone};

/// Header of a `/node/v1/since` reply: the sequence number to ask from next.
pub const HEADER_NEXT_SEQ: &str = "X-Umbra-Next-Seq";
/// Header of a `/node/v1/since` reply present when more pages follow.
pub const HEADER_MORE: &str = "X-Umbra-More";

/// Checks the §8.2 headers and §8.3 rules; returns the sender's record.
pub(crate) async fn authenticate(
    node: &Node,
    headers: &HeaderMap,
    path: &str,
    body: &[u8],
) -> Result<NodeRecord, Response> {
    let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let auth = NodeRequestAuth::from_headers(
        h(HEADER_NODE),
        h(HEADER_EPOCH),
        h(HEADER_TIMESTAMP),
        h(HEADER_SIGNATURE),
    )
    .map_err(|e| text(e.status, e.message))?;
    let unregistered = || {
        text(
            StatusCode::Unauthorized,
            "sender is not a registered node".into(),
        )
    };
    let newer_epoch = auth.epoch > node.registry().epoch();
    // Unknown keys are refused before the (costlier) signature check.
    if !newer_epoch && node.registry().known_node(&auth.node).is_none() {
        return Err(unregistered());
    }
    // The signature before any registry fetch: only a holder of the key it
    // names may make this node fetch one (else anyone could make it send
    // requests to any registered node by naming that node's key and a newer
    // epoch).
    auth.verify("POST", path, body, node.now_ms())
        .map_err(|e: RpcError| text(e.status, e.message))?;
    if newer_epoch {
        catch_up_from(node, &auth.node, auth.epoch)
            .await
            .map_err(|why| text(StatusCode::ServiceUnavailable, why))?;
    }
    node.registry()
        .known_node(&auth.node)
        .ok_or_else(unregistered)
}

/// How long after a fetch from a peer that failed, or did not bring the
/// epoch its request claimed, this node makes no new fetch from that peer:
/// requests in that window get the last fetch's outcome.
pub const REGISTRY_FETCH_BACKOFF: Duration = Duration::from_secs(10);

/// The registry catch-up of §8.3 rule 1 made affordable: a listed node (or
/// every honest relay right after a new epoch) claiming a newer epoch on
/// each request must not make this node send a `get_registry` per request
/// (each reply is up to 16 MiB, parsed under the registry write lock).
///
/// - Single flight per peer: one fetch from a peer at a time; requests
///   naming that peer meanwhile wait for it and then use its outcome (the
///   registry has advanced, or the fetch's result is remembered for the
///   peer). A slow peer delays only the requests it sent.
/// - Backoff: after a fetch from a peer that failed or did not bring the
///   epoch its request claimed, no new fetch from that peer for
///   [`REGISTRY_FETCH_BACKOFF`]; requests in that window get the same
///   outcome (`503` for a failure, or go on as after a fruitless fetch),
///   unless the registry has meanwhile reached the claimed epoch.
#[derive(Default)]
pub struct RegistryCatchUp {
    /// Per peer key: held across the fetch in flight from that peer (an
    /// async lock: waiters queue). One entry per listed peer at most.
    fetching: std::sync::Mutex<HashMap<[u8; 32], std::sync::Arc<tokio::sync::Mutex<()>>>>,
    /// Per peer key: when its last unsatisfying fetch ended, and its
    /// outcome. Only entries younger than the backoff are kept.
    recent: std::sync::Mutex<HashMap<[u8; 32], LastFetch>>,
}

/// When a peer's last unsatisfying fetch ended, and its outcome.
type LastFetch = (tokio::time::Instant, Result<(), String>);

impl RegistryCatchUp {
    /// The outcome of the peer's last unsatisfying fetch, while it is
    /// younger than [`REGISTRY_FETCH_BACKOFF`].
    fn backed_off(&self, peer: &[u8; 32]) -> Option<Result<(), String>> {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent
            .get(peer)
            .filter(|(at, _)| at.elapsed() < REGISTRY_FETCH_BACKOFF)
            .map(|(_, outcome)| outcome.clone())
    }

    /// The lock of fetches from `peer`.
    fn lock_of(&self, peer: [u8; 32]) -> std::sync::Arc<tokio::sync::Mutex<()>> {
        let mut fetching = self.fetching.lock().unwrap_or_else(|p| p.into_inner());
        fetching.entry(peer).or_default().clone()
    }

    fn remember(&self, peer: [u8; 32], outcome: Result<(), String>) {
        let now = tokio::time::Instant::now();
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.retain(|_, (at, _)| now.duration_since(*at) < REGISTRY_FETCH_BACKOFF);
        recent.insert(peer, (now, outcome));
    }
}

/// The sender claims epoch `wanted`, newer than this node's: fetch the
/// registry from the sender (§8.3 rule 1), at most one fetch at a time and
/// not again from a peer within the backoff ([`RegistryCatchUp`]).
async fn catch_up_from(
    node: &Node,
    sender: &umbra_crypto::Ed25519Public,
    wanted: u64,
) -> Result<(), String> {
    let record = node
        .registry()
        .known_node(sender)
        .ok_or("sender unknown and registry behind")?;
    let key = *sender.as_bytes();
    let catch_up = &node.registry_catchup;
    let settled = |node: &Node| -> Option<Result<(), String>> {
        if node.registry().epoch() >= wanted {
            return Some(Ok(()));
        }
        catch_up.backed_off(&key)
    };
    if let Some(outcome) = settled(node) {
        return outcome;
    }
    let lock = catch_up.lock_of(key);
    let _in_flight = lock.lock().await;
    // The fetch this request waited for may have settled it.
    if let Some(outcome) = settled(node) {
        return outcome;
    }
    let outcome = fetch_registry_from(node, &record).await;
    if outcome.is_err() || node.registry().epoch() < wanted {
        catch_up.remember(key, outcome.clone());
    }
    outcome
}

/// Authenticates a node request by its connection: the caller proved in the
/// TLS handshake that it holds `peer`'s key (its client certificate,
/// `umbra_transport::PeerNode`), so no per-request signature is needed. The
/// §8.3 rules that remain apply: an `X-Umbra-Epoch` header newer than this
/// node's epoch makes it fetch that registry first (`503` if it cannot), and
/// the key must be listed now or in an epoch superseded less than an hour
/// ago (`401`). Returns the caller's record.
pub(crate) async fn authenticate_connection(
    node: &Node,
    peer: &umbra_crypto::Ed25519Public,
    headers: &HeaderMap,
) -> Result<NodeRecord, Response> {
    let epoch = headers
        .get(HEADER_EPOCH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(e) = epoch.filter(|&e| e > node.registry().epoch()) {
        catch_up_from(node, peer, e)
            .await
            .map_err(|why| text(StatusCode::ServiceUnavailable, why))?;
    }
    node.registry().known_node(peer).ok_or_else(|| {
        text(
            StatusCode::Unauthorized,
            "sender is not a registered node".into(),
        )
    })
}

/// Asks `peer` for its registry (`get_registry`) and offers it.
pub async fn fetch_registry_from(node: &Node, peer: &NodeRecord) -> Result<(), String> {
    node.metrics.registry_fetches.inc();
    let epoch = node.registry().epoch();
    let body =
        serde_json::json!({"method": "get_registry", "params": {"epoch": epoch}}).to_string();
    let resp = node
        .peers
        .post(&addr_of(peer), "/storage_rpc/v1", body.into_bytes())
        .await
        .map_err(|e| format!("get_registry failed: {e}"))?;
    if resp.status != 200 {
        return Err(format!("get_registry answered {}", resp.status));
    }
    let reply: GetRegistryResponse =
        serde_json::from_slice(&resp.body).map_err(|e| format!("bad get_registry reply: {e}"))?;
    if let Some(doc) = reply.registry {
        node.offer_registry(&doc.0)
            .map_err(|e| format!("peer's registry refused: {e}"))?;
    }
    Ok(())
}

/// `POST /node/v1/ping`.
pub async fn ping() -> &'static str {
    "pong"
}

/// `POST /node/v1/swarm`: apply a forwarded recursive request.
pub async fn swarm(
    State(node): State<Node>,
    headers: HeaderMap,
    TimedBytes(body): TimedBytes,
) -> Response {
    if let Err(r) = authenticate(&node, &headers, PATH_SWARM, &body).await {
        return r;
    }
    reply_response(rpc::handle_body(&node, &body, Via::Forwarded).await)
}

/// `POST /node/v1/push`: insert pushed messages (§7.3).
pub async fn push(
    State(node): State<Node>,
    headers: HeaderMap,
    TimedBytes(body): TimedBytes,
) -> Response {
    if body.len() > MAX_PUSH_BODY + 1024 {
        return text(StatusCode::PayloadTooLarge, "push body too large".into());
    }
    let sender = match authenticate(&node, &headers, PATH_PUSH, &body).await {
        Ok(record) => record,
        Err(r) => return r,
    };
    let pushed = match decode_push_body(&body) {
        Ok(p) => p,
        Err(e) => return text(StatusCode::BadRequest, format!("bad push body: {e}")),
    };
    if let Err(r) = apply_tombstones(&node, &sender.ed25519, pushed.tombstones).await {
        return r;
    }
    match apply_items(&node, pushed.items).await {
        Ok(stored) => axum::Json(PushReply { stored }).into_response(),
        Err(r) => r,
    }
}

/// Applies a peer's tombstones (deletions it saw and this node missed),
/// before any pushed message, so a deleted message never comes back.
///
/// A tombstone is applied only when, checked here by this node itself:
/// - it comes `from` a node that holds the account — a member of its swarm
///   now or in an epoch superseded within the hour (a hand-over) — so a
///   registered node elsewhere in the network cannot make the swarm delete
///   anything (`docs/SECURITY.md` §3.3);
/// - it carries the account owner's signed request that caused it, and that
///   request passes the same validation as the RPC handler's (all checks but
///   the time-freshness windows) and covers the tombstone
///   (`umbra_proto::rpc::tombstone_proof`): so a member of the swarm cannot
///   make its peers delete or shorten a message the owner did not ask to;
/// - this node's copy of the message, if it holds one, is within what the
///   request covers (its namespace, its timestamp).
///
/// The proof is required (nodes of this repository are the only
/// implementation). The others are ignored — counted in the
/// `ignored_tombstones` metric and logged at debug level — and never fail
/// the push: the valid tombstones and items of the same body still apply.
/// Only a database error is an error (`500`, so the sender tries again).
pub async fn apply_tombstones(
    node: &Node,
    from: &umbra_crypto::Ed25519Public,
    tombstones: Vec<PushTombstone>,
) -> Result<(), Response> {
    if tombstones.is_empty() {
        return Ok(());
    }
    let offered = tombstones.len();
    let held: Vec<PushTombstone> = {
        let reg = node.registry();
        tombstones
            .into_iter()
            .filter(|t| reg.owns(&t.account) && reg.held_account(from, &t.account))
            .collect()
    };
    let not_held = offered - held.len();
    let now = node.now_ms();
    // Tombstones of one request share one proof (one `Arc` once decoded):
    // it is verified once.
    let mut verdicts: HashMap<usize, Result<VerifiedProof, ProofError>> = HashMap::new();
    let mut proven = Vec::with_capacity(held.len());
    let mut unproven = 0usize;
    let mut first_refusal: Option<ProofError> = None;
    for t in held {
        let covered = match &t.proof {
            None => Err(ProofError::Missing),
            Some(p) => {
                // Keyed by address: every proof was allocated before this loop,
                // so distinct proofs have distinct addresses.
                let key = p.as_ptr() as usize;
                if let Entry::Vacant(slot) = verdicts.entry(key) {
                    slot.insert(verify_proof(node, p, now).await.map_err(db_error)?);
                }
                match verdicts.get(&key) {
                    Some(Ok(v)) => v.covers(&t),
                    Some(Err(e)) => Err(e.clone()),
                    None => Err(ProofError::Missing),
                }
            }
        };
        match covered {
            Ok(c) => proven.push(ProvenTombstone {
                tombstone: Tombstone {
                    hash: t.hash.as_str().to_string(),
                    owner: t.account,
                    namespace: t.namespace.0,
                    new_expiry_ms: t.new_expiry,
                    keep_until_ms: t.keep_until,
                    proof: t.proof,
                },
                max_message_timestamp: c.max_message_timestamp,
            }),
            Err(e) => {
                unproven += 1;
                first_refusal.get_or_insert(e);
            }
        }
    }
    let not_covered = if proven.is_empty() {
        0
    } else {
        node.store
            .apply_tombstones(proven, now)
            .await
            .map_err(db_error)?
            .not_covered
    };
    let ignored = not_held + unproven + not_covered;
    if ignored > 0 {
        node.metrics.ignored_tombstones.inc_by(ignored as u64);
        tracing::debug!(
            offered,
            not_held,
            unproven,
            not_covered,
            reason = first_refusal.map(|e| e.to_string()),
            "tombstones from a peer were ignored"
        );
    }
    Ok(())
}

/// Parses and verifies a tombstone's proof, with the account's revocation
/// list as this node knows it. The outer error is a database failure.
async fn verify_proof(
    node: &Node,
    bytes: &[u8],
    now: u64,
) -> Result<Result<VerifiedProof, ProofError>, StoreError> {
    let req = match ProofRequest::parse(bytes) {
        Ok(r) => r,
        Err(e) => return Ok(Err(e)),
    };
    let revoked = match (req.account(), req.subaccount()) {
        (Some(account), Some(token)) => node.store.is_revoked(&account, token.0).await?,
        _ => false,
    };
    Ok(req.verify(now, &move |_| revoked))
}

fn db_error(e: StoreError) -> Response {
    tracing::warn!(error = %e, "cannot apply tombstones");
    text(StatusCode::InternalServerError, "database error".into())
}

/// A stored tombstone as a push tombstone (with its proof, if it has one).
pub fn to_push_tombstone(t: Tombstone) -> Option<PushTombstone> {
    Some(PushTombstone {
        account: t.owner,
        hash: MessageHash::parse(&t.hash).ok()?,
        namespace: Namespace(t.namespace),
        new_expiry: t.new_expiry_ms,
        keep_until: t.keep_until_ms,
        proof: t.proof,
    })
}

/// Applies pushed or pulled items under the receiver rules of §7.3.
pub async fn apply_items(node: &Node, items: Vec<PushItem>) -> Result<u64, Response> {
    let now = node.now_ms();
    let msgs: Vec<StoredMessage> = {
        let reg = node.registry();
        items
            .into_iter()
            .filter(|i| i.acceptable(now) && reg.owns(&i.account))
            .map(|i| StoredMessage {
                hash: i.hash.as_str().to_string(),
                owner: i.account,
                namespace: i.namespace.0,
                timestamp_ms: i.timestamp,
                expiry_ms: i.expiry,
                data: i.data,
            })
            .collect()
    };
    if msgs.is_empty() {
        return Ok(0);
    }
    match node.store.apply_push(msgs, now).await {
        Ok(n) => {
            node.metrics.received_pushes.inc_by(n as u64);
            Ok(n as u64)
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot store pushed messages");
            Err(text(
                StatusCode::InternalServerError,
                "database error".into(),
            ))
        }
    }
}

/// The body of a `/node/v1/since` request.
#[derive(Debug, Serialize, Deserialize)]
pub struct SinceRequest {
    /// Return messages with an insertion sequence number ≥ this.
    pub since: u64,
}

/// Messages per `/node/v1/since` page.
const SINCE_PAGE: usize = 2_000;

/// About the most bytes of messages, tombstones and proofs one `since`
/// reply carries: well under what a node's client accepts in a reply
/// (16 MiB), whatever the messages' sizes.
pub const SINCE_PAGE_BYTES: usize = 8 * 1024 * 1024;

/// `POST /node/v1/since`: the messages inserted since a sequence number, of
/// the accounts the requester's swarm owns, as a push body.
pub async fn since(
    State(node): State<Node>,
    headers: HeaderMap,
    TimedBytes(body): TimedBytes,
) -> Response {
    let requester = match authenticate(&node, &headers, PATH_SINCE, &body).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let req: SinceRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return text(StatusCode::BadRequest, format!("bad since request: {e}")),
    };
    let now = node.now_ms();
    let batch = match node
        .store
        .since(req.since, SINCE_PAGE, SINCE_PAGE_BYTES, now)
        .await
    {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "since query failed");
            return text(StatusCode::InternalServerError, "database error".into());
        }
    };
    let more = batch.next_seq.is_some();
    let next = batch.next_seq.or(batch.end_seq).unwrap_or(req.since);
    let (items, tombstones): (Vec<PushItem>, Vec<PushTombstone>) = {
        let reg = node.registry();
        let Some(doc) = reg.current() else {
            return text(StatusCode::ServiceUnavailable, "no registry".into());
        };
        let theirs = doc.swarm_of_node(&requester.ed25519);
        let in_theirs =
            |a: &umbra_proto::identity::AccountId| theirs.is_some() && doc.swarm_of(a) == theirs;
        (
            batch
                .messages
                .into_iter()
                .filter(|m| in_theirs(&m.message.owner))
                .filter_map(|m| to_push_item(m.message))
                .collect(),
            batch
                .tombstones
                .into_iter()
                .filter(|t| in_theirs(&t.owner))
                .filter_map(to_push_tombstone)
                .collect(),
        )
    };
    let Ok(body) = encode_push_with_tombstones(&items, &tombstones) else {
        return text(
            StatusCode::InternalServerError,
            "cannot encode messages".into(),
        );
    };
    let mut resp = body.into_response();
    if let Ok(v) = axum::http::HeaderValue::try_from(next.to_string()) {
        resp.headers_mut().insert(HEADER_NEXT_SEQ, v);
    }
    if more {
        resp.headers_mut()
            .insert(HEADER_MORE, axum::http::HeaderValue::from_static("1"));
    }
    resp
}

/// A stored message as a push item.
pub fn to_push_item(m: StoredMessage) -> Option<PushItem> {
    Some(PushItem {
        account: m.owner,
        hash: MessageHash::parse(&m.hash).ok()?,
        timestamp: m.timestamp_ms,
        expiry: m.expiry_ms,
        data: m.data,
        namespace: Namespace(m.namespace),
    })
}

/// The most `/node/v1/since` pages one pull takes from one peer: 20 million
/// messages at 2,000 a page, far more than an honest catch-up needs, but a
/// bound on a peer that answers `X-Umbra-More` forever. What is left is
/// pulled at the next start (the cursor is where the pull stopped).
pub const MAX_PULL_PAGES: usize = 10_000;

/// Pulls from `peer` what it inserted since `from` (a rejoining member,
/// §6), page by page, at most [`MAX_PULL_PAGES`] pages; returns the
/// sequence number to continue from next time.
pub async fn pull_from(node: &Node, peer: &NodeRecord, from: u64) -> Result<u64, String> {
    pull_from_at_most(node, peer, from, MAX_PULL_PAGES).await
}

/// [`pull_from`] with its page cap as a parameter: stops after `max_pages`
/// pages even if the peer says more follow, and returns where it stopped.
pub async fn pull_from_at_most(
    node: &Node,
    peer: &NodeRecord,
    mut from: u64,
    max_pages: usize,
) -> Result<u64, String> {
    for _ in 0..max_pages {
        let body = serde_json::to_vec(&SinceRequest { since: from }).map_err(|e| e.to_string())?;
        let resp = crate::fanout::node_post(node, peer, PATH_SINCE, body, Duration::from_secs(30))
            .await
            .map_err(|e| e.to_string())?;
        if resp.status != 200 {
            return Err(format!("since answered {}", resp.status));
        }
        let pulled = decode_push_body(&resp.body).map_err(|e| e.to_string())?;
        apply_tombstones(node, &peer.ed25519, pulled.tombstones)
            .await
            .map_err(|_| "cannot apply pulled tombstones".to_string())?;
        apply_items(node, pulled.items)
            .await
            .map_err(|_| "cannot store pulled messages".to_string())?;
        let next = resp
            .headers
            .get(HEADER_NEXT_SEQ)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(from);
        let more = resp.headers.contains_key(HEADER_MORE);
        if !more || next <= from {
            return Ok(next.max(from));
        }
        from = next;
    }
    tracing::warn!(
        peer = %hex::encode(&peer.ed25519.as_bytes()[..4]),
        pages = max_pages,
        "pull from peer stopped at the page cap; the rest at the next start"
    );
    Ok(from)
}
