//! Client storage RPC (`storage-rpc.md` §9): one entry point,
//! [`handle`], used for direct requests (`POST /storage_rpc/v1`), onion
//! destinations, `batch`/`sequence` subrequests and copies forwarded by a
//! swarm peer (`POST /node/v1/swarm`).
//!
//! Flow: parse (`400`) → readiness (`503`) → swarm ownership (`421`) →
//! `umbra_proto::rpc::validate` (`403`/`406`/`401`) → apply on the store →
//! sign the per-node result → (recursive methods, entry node only) fan out to
//! the other swarm members and aggregate their results (§8).
//!
//! A request that deletes or shortens messages (`delete`, `delete_all`,
//! `delete_before`, `expire`, `expire_all`, a public-outbox `store`) keeps
//! itself — the `{"method","params"}` the fan-out forwards — as the proof of
//! the tombstones it makes, so members that missed it check the owner's
//! signature themselves when they catch up (`swarms.md` §6,
//! `umbra_proto::rpc::tombstone_proof`).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use umbra_proto::identity::AccountId;
use umbra_proto::rpc::encoding::{Base64Bytes, Ed25519Hex, X25519Hex};
use umbra_proto::rpc::limits::Origin;
use umbra_proto::rpc::node_sig;
use umbra_proto::rpc::sign::SubaccountToken;
use umbra_proto::rpc::tombstone_proof;
use umbra_proto::rpc::types::{
    BatchResponse, ExpireResult, Expiries, GetExpiriesResponse, GetRegistryResponse,
    GetSwarmResponse, HashesByNamespace, InfoResponse, RetrieveResponse, RetrievedMessage,
    SnodeInfo, SubResult, SwarmIdHex,
};
use umbra_proto::rpc::validate::{self, AuthEnv};
use umbra_proto::rpc::{
    MessageHash, Method, Namespace, NamespaceSel, Request, RpcError, StatusCode, Via,
};
use umbra_proto::swarm::{RegistryDocument, SwarmId};

use crate::fanout;
use crate::state::Node;
use crate::storage::{self, Namespaces, StoreError, StoreOptions, StoredMessage};

/// The node software version reported by `info` and in registry records.
pub const VERSION: [u16; 3] = [0, 1, 0];

/// A reply: JSON (success, `421`, recursive results) or short text (errors).
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A JSON body with a status.
    Json(StatusCode, Value),
    /// A `text/plain` body with a status.
    Text(StatusCode, String),
}

impl Reply {
    /// The status.
    pub fn status(&self) -> StatusCode {
        match self {
            Reply::Json(s, _) | Reply::Text(s, _) => *s,
        }
    }

    /// The body as JSON (text bodies become JSON strings), for batch results.
    pub fn into_value(self) -> Value {
        match self {
            Reply::Json(_, v) => v,
            Reply::Text(_, t) => Value::String(t),
        }
    }

    fn ok(v: impl serde::Serialize) -> Reply {
        match serde_json::to_value(v) {
            Ok(v) => Reply::Json(StatusCode::Ok, v),
            Err(e) => Reply::Text(
                StatusCode::InternalServerError,
                format!("cannot encode result: {e}"),
            ),
        }
    }
}

impl From<RpcError> for Reply {
    fn from(e: RpcError) -> Reply {
        Reply::Text(e.status, e.message)
    }
}

/// A per-node result or the failure that replaces it in the `swarm` map.
type NodeOutcome = Result<Value, Value>;

fn failure_code(code: StatusCode, reason: impl Into<String>) -> Value {
    json!({"failed": true, "code": code.code(), "reason": reason.into()})
}

fn query_failure() -> Value {
    json!({"failed": true, "query_failure": true})
}

fn store_failure(e: &StoreError) -> Value {
    tracing::warn!(error = %e, "storage operation failed");
    query_failure()
}

/// Handles one request given as method name and params (the raw JSON, kept
/// so that recursive methods forward it unchanged).
pub async fn handle(node: &Node, method: &str, params: &Value, via: Via) -> Reply {
    if let Err(e) = check_forwardable(method, params, via) {
        node.metrics.request(metric_name(method), e.status.code());
        return e.into();
    }
    let reply = match Request::from_parts(method, params, via) {
        Ok(req) => dispatch(node, req, method, params, via).await,
        // A `proxy_fetch` outside §9.14 rule 1 may still target a test
        // network's exempt address; the fetch module decides.
        Err(e) if method == Method::ProxyFetch.name() && via == Via::Onion => {
            crate::fetch::handle_exempt(node, params, e).await
        }
        Err(e) => e.into(),
    };
    node.metrics
        .request(metric_name(method), reply.status().code());
    reply
}

/// Handles a whole request body (`{"method", "params"}`).
pub async fn handle_body(node: &Node, body: &[u8], via: Via) -> Reply {
    if let Err(e) = umbra_proto::rpc::limits::check_body_size(body.len())
        .and_then(|()| umbra_proto::rpc::limits::check_json_values(body))
    {
        return e.into();
    }
    let v: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return RpcError::bad_request(format!("invalid JSON: {e}")).into(),
    };
    let Some(obj) = v.as_object() else {
        return RpcError::bad_request("the request must be a JSON object").into();
    };
    let Some(method) = obj.get("method").and_then(Value::as_str) else {
        return RpcError::bad_request("method is missing").into();
    };
    let empty = Value::Object(Map::new());
    let params = obj.get("params").unwrap_or(&empty);
    if !params.is_object() {
        return RpcError::bad_request("params must be an object").into();
    }
    handle(node, method, params, via).await
}

/// A recursive request from a client is forwarded to every member of the
/// swarm: its `params` may take at most
/// [`MAX_RECURSIVE_PARAMS_BYTES`](umbra_proto::rpc::limits::MAX_RECURSIVE_PARAMS_BYTES)
/// (`413`), or one request padded with unknown fields would make the node
/// send megabytes to each member.
fn check_forwardable(method: &str, params: &Value, via: Via) -> Result<(), RpcError> {
    use umbra_proto::rpc::limits::MAX_RECURSIVE_PARAMS_BYTES;
    if via == Via::Forwarded || !Method::from_name(method).is_some_and(Method::is_recursive) {
        return Ok(());
    }
    let len = serde_json::to_vec(params).map_or(usize::MAX, |b| b.len());
    if len > MAX_RECURSIVE_PARAMS_BYTES {
        return Err(RpcError::new(
            StatusCode::PayloadTooLarge,
            format!(
                "{method} params take {len} bytes; at most {MAX_RECURSIVE_PARAMS_BYTES} are forwarded to the swarm"
            ),
        ));
    }
    Ok(())
}

/// Method names for metrics: known names only, so labels stay bounded.
fn metric_name(method: &str) -> &str {
    if Method::from_name(method).is_some() {
        method
    } else {
        "unknown"
    }
}

async fn dispatch(node: &Node, req: Request, method: &str, params: &Value, via: Via) -> Reply {
    let now = node.now_ms();
    match &req {
        Request::Info(_) => return info(node, now),
        Request::GetRegistry(p) => return get_registry(node, p.epoch, now),
        _ => {}
    }
    let doc = {
        let reg = node.registry();
        if !reg.is_ready() {
            return Reply::Text(
                StatusCode::ServiceUnavailable,
                format!("Snode not ready: {}", hex::encode(node.public().as_bytes())),
            );
        }
        match reg.current() {
            Some(d) => d.clone(),
            None => return Reply::Text(StatusCode::ServiceUnavailable, "no registry".into()),
        }
    };
    match req {
        Request::GetSwarm(p) => Reply::ok(get_swarm(&doc, &p.pubkey, now)),
        Request::Batch(b) | Request::Sequence(b) => {
            let sequence = method == "sequence";
            let mut results = Vec::with_capacity(b.requests.len());
            for sub in &b.requests {
                let sub_params = Value::Object(sub.params.clone());
                let r = Box::pin(handle(node, &sub.method, &sub_params, Via::Batch)).await;
                let code = r.status();
                results.push(SubResult {
                    code: code.code(),
                    body: r.into_value(),
                });
                if sequence && !code.is_success() {
                    break;
                }
            }
            Reply::ok(BatchResponse {
                results,
                t: node.now_ms(),
            })
        }
        // Onion destinations only: `Request::from_parts` refuses other vias (§9.14).
        Request::ProxyFetch(p) => crate::fetch::handle(node, &p).await,
        req => account_method(node, &doc, req, method, params, via, now).await,
    }
}

fn info(node: &Node, now: u64) -> Reply {
    let epoch = node.registry().epoch();
    Reply::ok(InfoResponse {
        version: VERSION,
        timestamp: now,
        epoch,
        t: now,
    })
}

fn get_registry(node: &Node, caller_epoch: Option<u64>, now: u64) -> Reply {
    let reg = node.registry();
    let Some(bytes) = reg.current_bytes() else {
        return Reply::Text(StatusCode::ServiceUnavailable, "no registry yet".into());
    };
    let epoch = reg.epoch();
    if caller_epoch == Some(epoch) {
        return Reply::ok(GetRegistryResponse {
            epoch,
            registry: None,
            unchanged: true,
            t: now,
        });
    }
    Reply::ok(GetRegistryResponse {
        epoch,
        registry: Some(Base64Bytes(bytes.as_ref().clone())),
        unchanged: false,
        t: now,
    })
}

/// The `get_swarm` result for `account` (also the body of a `421`).
pub fn get_swarm(doc: &RegistryDocument, account: &AccountId, now: u64) -> GetSwarmResponse {
    let swarm = doc.swarm_of(account);
    let snodes = swarm
        .map(|s| doc.members(s))
        .unwrap_or_default()
        .into_iter()
        .filter_map(|r| {
            Some(SnodeInfo {
                pubkey_ed25519: Ed25519Hex(r.ed25519),
                pubkey_x25519: X25519Hex(r.x25519().ok()?),
                ip: r.ipv4,
                port_https: r.https_port,
            })
        })
        .collect();
    GetSwarmResponse {
        snodes,
        swarm: swarm.map_or(SwarmIdHex::NONE, |s| SwarmIdHex(u64::from(s))),
        epoch: doc.epoch(),
        t: now,
    }
}

fn misdirected(doc: &RegistryDocument, account: &AccountId, now: u64) -> Reply {
    match serde_json::to_value(get_swarm(doc, account, now)) {
        Ok(v) => Reply::Json(StatusCode::MisdirectedRequest, v),
        Err(e) => Reply::Text(StatusCode::InternalServerError, e.to_string()),
    }
}

/// The token of a subaccount-signed request, if any (to prefetch its
/// revocation state before the synchronous validation).
fn subaccount_of(req: &Request) -> Option<SubaccountToken> {
    let auth = match req {
        Request::Store(p) => &p.auth,
        Request::Retrieve(p) => &p.auth,
        Request::Delete(p) => &p.auth,
        Request::DeleteAll(p) => &p.auth,
        Request::DeleteBefore(p) => &p.auth,
        Request::Expire(p) => &p.auth,
        Request::ExpireAll(p) => &p.auth,
        Request::GetExpiries(p) => &p.auth,
        _ => return None,
    };
    auth.subaccount
}

fn namespaces(sel: NamespaceSel) -> Namespaces {
    match sel {
        NamespaceSel::One(ns) => Namespaces::One(ns.0),
        NamespaceSel::All => Namespaces::All,
    }
}

fn hashes_by_ns(sel: NamespaceSel, found: storage::NsHashes) -> Result<HashesByNamespace, Value> {
    let parse = |v: Vec<String>| -> Result<Vec<MessageHash>, Value> {
        v.iter()
            .map(|h| MessageHash::parse(h).map_err(|_| query_failure()))
            .collect()
    };
    Ok(match sel {
        NamespaceSel::One(_) => {
            HashesByNamespace::List(parse(found.into_values().flatten().collect())?)
        }
        NamespaceSel::All => {
            let mut map = BTreeMap::new();
            for (ns, hs) in found {
                map.insert(Namespace(ns), parse(hs)?);
            }
            HashesByNamespace::ByNamespace(map)
        }
    })
}

fn to_value(v: impl serde::Serialize) -> NodeOutcome {
    serde_json::to_value(v).map_err(|_| query_failure())
}

/// Runs a synchronous validation with the auth environment (kept out of
/// the async state, since it borrows a non-`Sync` predicate).
fn with_env<T>(origin: Origin, revoked: bool, f: impl FnOnce(&AuthEnv<'_>) -> T) -> T {
    let is_revoked = move |_: &SubaccountToken| revoked;
    f(&AuthEnv {
        origin,
        is_revoked: &is_revoked,
    })
}

#[allow(clippy::too_many_arguments)]
async fn account_method(
    node: &Node,
    doc: &Arc<RegistryDocument>,
    req: Request,
    method: &str,
    params: &Value,
    via: Via,
    now: u64,
) -> Reply {
    let Some(account) = req.account().copied() else {
        return RpcError::bad_request("method has no account").into();
    };
    if !node.registry().owns(&account) {
        return misdirected(doc, &account, now);
    }
    let origin = if via == Via::Forwarded {
        Origin::Forwarded
    } else {
        Origin::Client
    };
    let revoked = match subaccount_of(&req) {
        Some(token) => match node.store.is_revoked(&account, token.0).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "revocation lookup failed");
                return Reply::Text(StatusCode::InternalServerError, "database error".into());
            }
        },
        None => false,
    };
    let signer = &node.keys;

    // Validate, then build the local operation as a future producing this
    // node's per-node result.
    let local: NodeOutcome = match req {
        Request::Retrieve(p) => {
            let v = match with_env(origin, revoked, |env| {
                validate::validate_retrieve(&p, now, env)
            }) {
                Ok(v) => v,
                Err(e) => return e.into(),
            };
            let limits = v.limits;
            return match node
                .store
                .retrieve(
                    &account,
                    v.namespace.0,
                    v.last_hash.as_ref().map(|h| h.as_str()),
                    limits,
                    now,
                )
                .await
            {
                Ok(r) => {
                    let mut messages = Vec::with_capacity(r.messages.len());
                    for m in r.messages {
                        let Ok(hash) = MessageHash::parse(&m.hash) else {
                            continue;
                        };
                        messages.push(RetrievedMessage {
                            hash,
                            timestamp: m.timestamp_ms,
                            expiration: m.expiry_ms,
                            data: Base64Bytes(m.data),
                        });
                    }
                    Reply::ok(RetrieveResponse {
                        messages,
                        more: r.more,
                        t: node.now_ms(),
                    })
                }
                Err(e) => {
                    tracing::warn!(error = %e, "retrieve failed");
                    Reply::Text(StatusCode::InternalServerError, "database error".into())
                }
            };
        }
        Request::GetExpiries(p) => {
            let v = match with_env(origin, revoked, |env| {
                validate::validate_get_expiries(&p, now, env)
            }) {
                Ok(v) => v,
                Err(e) => return e.into(),
            };
            let hashes = v.messages.iter().map(|h| h.as_str().to_string()).collect();
            return match node.store.get_expiries(&account, hashes, now).await {
                Ok(found) => {
                    let expiries = found
                        .into_iter()
                        .filter_map(|(h, e)| Some((MessageHash::parse(&h).ok()?, e)))
                        .collect();
                    Reply::ok(GetExpiriesResponse {
                        expiries,
                        t: node.now_ms(),
                    })
                }
                Err(e) => {
                    tracing::warn!(error = %e, "get_expiries failed");
                    Reply::Text(StatusCode::InternalServerError, "database error".into())
                }
            };
        }
        Request::Store(p) => {
            let v = match with_env(origin, revoked, |env| {
                validate::validate_store(&p, now, env)
            }) {
                Ok(v) => v,
                Err(e) => return e.into(),
            };
            if via != Via::Forwarded && node.store.appears_full() {
                return Reply::Text(StatusCode::InsufficientStorage, "database is full".into());
            }
            let msg = StoredMessage {
                hash: v.hash.as_str().to_string(),
                owner: account,
                namespace: v.namespace.0,
                timestamp_ms: v.timestamp,
                expiry_ms: v.expiry,
                data: v.data,
            };
            let opts = StoreOptions {
                replace_namespace: v.replaces_others,
                proof: if v.replaces_others {
                    proof_of(method, params)
                } else {
                    None
                },
            };
            if via == Via::Forwarded {
                node.store
                    .store(msg, opts, now)
                    .await
                    .map_err(|e| store_failure(&e))
                    .and_then(|o| {
                        to_value(node_sig::sign_store_result(
                            signer,
                            v.hash.clone(),
                            o.expiry_ms,
                            !o.new,
                        ))
                    })
            } else {
                // A store that replaces a namespace records its tombstones
                // before the message: a mark must start below them.
                let floor = if opts.replace_namespace {
                    node.store.max_seq().await.ok()
                } else {
                    None
                };
                let (local, others) = tokio::join!(
                    node.store.store(msg, opts, now),
                    fanout::to_swarm(node, method, params)
                );
                if let Ok(o) = &local
                    && let Some(seq) = o.seq
                {
                    fanout::mark_missed(node, &others, floor.unwrap_or(seq)).await;
                }
                let local = local.map_err(|e| store_failure(&e)).and_then(|o| {
                    to_value(node_sig::sign_store_result(
                        signer,
                        v.hash.clone(),
                        o.expiry_ms,
                        !o.new,
                    ))
                });
                return aggregate(node, local, others, false);
            }
        }
        Request::Delete(p) => {
            let v = match with_env(origin, revoked, |env| {
                validate::validate_delete(&p, now, env)
            }) {
                Ok(v) => v,
                Err(e) => return e.into(),
            };
            let required = v.required;
            let hashes = v.messages.iter().map(|h| h.as_str().to_string()).collect();
            let local = async {
                let deleted = node
                    .store
                    .delete_hashes(&account, hashes, now, proof_of(method, params))
                    .await
                    .map_err(|e| store_failure(&e))?;
                let deleted: Vec<MessageHash> = deleted
                    .iter()
                    .filter_map(|h| MessageHash::parse(h).ok())
                    .collect();
                to_value(node_sig::sign_delete_result(signer, &p, deleted))
            };
            return recurse(node, local, method, params, via, required).await;
        }
        req @ (Request::DeleteAll(_) | Request::DeleteBefore(_) | Request::ExpireAll(_)) => {
            let v = match with_env(origin, revoked, |env| match &req {
                Request::DeleteAll(p) => validate::validate_delete_all(p, now, env),
                Request::DeleteBefore(p) => validate::validate_delete_before(p, now, env),
                Request::ExpireAll(p) => validate::validate_expire_all(p, now, env),
                _ => Err(RpcError::bad_request("not a namespace operation")),
            }) {
                Ok(v) => v,
                Err(e) => return e.into(),
            };
            let local = async {
                let sel = namespaces(v.namespace);
                let proof = proof_of(method, params);
                let found = match &req {
                    Request::DeleteAll(_) => node.store.delete_all(&account, sel, now, proof).await,
                    Request::DeleteBefore(_) => {
                        node.store
                            .delete_before(&account, sel, v.value, now, proof)
                            .await
                    }
                    _ => {
                        node.store
                            .expire_all(&account, sel, v.value, now, proof)
                            .await
                    }
                }
                .map_err(|e| store_failure(&e))?;
                let hashes = hashes_by_ns(v.namespace, found)?;
                match &req {
                    Request::DeleteAll(p) => {
                        to_value(node_sig::sign_delete_all_result(signer, p, hashes))
                    }
                    Request::DeleteBefore(p) => {
                        to_value(node_sig::sign_delete_before_result(signer, p, hashes))
                    }
                    Request::ExpireAll(p) => {
                        to_value(node_sig::sign_expire_all_result(signer, p, hashes))
                    }
                    _ => Err(query_failure()),
                }
            };
            return recurse(node, local, method, params, via, false).await;
        }
        Request::Expire(p) => {
            let v = match with_env(origin, revoked, |env| {
                validate::validate_expire(&p, now, env)
            }) {
                Ok(v) => v,
                Err(e) => return e.into(),
            };
            let flags_given = p.shorten || p.extend;
            let local = async {
                let updates: Vec<(String, u64)> = v
                    .messages
                    .iter()
                    .enumerate()
                    .filter_map(|(i, h)| Some((h.as_str().to_string(), v.expiry_for(i)?)))
                    .collect();
                let out = node
                    .store
                    .expire_each(&account, updates, v.mode, now, proof_of(method, params))
                    .await
                    .map_err(|e| store_failure(&e))?;
                let parse = |h: &String| MessageHash::parse(h).map_err(|_| query_failure());
                let updated: Vec<MessageHash> =
                    out.updated.keys().map(parse).collect::<Result<_, _>>()?;
                let expiry = match &v.expiries {
                    Expiries::Single(e) => Expiries::Single(*e),
                    Expiries::PerMessage(_) => {
                        Expiries::PerMessage(out.updated.values().copied().collect())
                    }
                };
                let unchanged = if flags_given {
                    Some(
                        out.unchanged
                            .iter()
                            .map(|(h, e)| Ok((parse(h)?, *e)))
                            .collect::<Result<_, Value>>()?,
                    )
                } else {
                    None
                };
                let placeholder = umbra_proto::rpc::Signature([0; 64]);
                to_value(node_sig::sign_expire_result(
                    signer,
                    &p,
                    ExpireResult {
                        updated,
                        unchanged,
                        expiry,
                        signature: placeholder,
                    },
                ))
            };
            return recurse(node, local, method, params, via, false).await;
        }
        Request::RevokeSubaccount(p) => {
            let v = match with_env(origin, revoked, |env| {
                validate::validate_revoke_subaccount(&p, now, env)
            }) {
                Ok(v) => v,
                Err(e) => return e.into(),
            };
            let local = async {
                let tokens = v.tokens.iter().map(|t| t.0).collect();
                let n = node
                    .store
                    .revoke_subaccounts(&account, tokens, now)
                    .await
                    .map_err(|e| store_failure(&e))?;
                to_value(node_sig::sign_revoke_result(signer, &p, n as u64))
            };
            return recurse(node, local, method, params, via, false).await;
        }
        Request::UnrevokeSubaccount(p) => {
            let v = match with_env(origin, revoked, |env| {
                validate::validate_unrevoke_subaccount(&p, now, env)
            }) {
                Ok(v) => v,
                Err(e) => return e.into(),
            };
            let local = async {
                let tokens = v.tokens.iter().map(|t| t.0).collect();
                let n = node
                    .store
                    .unrevoke_subaccounts(&account, tokens)
                    .await
                    .map_err(|e| store_failure(&e))?;
                to_value(node_sig::sign_unrevoke_result(signer, &p, n as u64))
            };
            return recurse(node, local, method, params, via, false).await;
        }
        other => {
            return RpcError::bad_request(format!("{} is not an account method", other.method()))
                .into();
        }
    };
    // Only a forwarded store reaches here.
    forwarded_reply(local)
}

/// The proof kept with the tombstones a validated request makes: the
/// request as the fan-out forwards it (`umbra_proto::rpc::tombstone_proof`),
/// so that a swarm peer catching up applies the deletion only after checking
/// the owner's signature itself. Used for direct, onion, batch and forwarded
/// requests alike. `None` (tombstones without proof, which peers ignore)
/// only for a request larger than `MAX_PROOF_BYTES`.
fn proof_of(method: &str, params: &Value) -> Option<storage::Proof> {
    let proof = tombstone_proof::encode_proof(method, params).map(storage::Proof::from);
    if proof.is_none() {
        tracing::debug!(method, "request too large to keep as a tombstone proof");
    }
    proof
}

/// A forwarded copy returns this node's per-node result only.
fn forwarded_reply(local: NodeOutcome) -> Reply {
    match local {
        Ok(v) => Reply::Json(StatusCode::Ok, v),
        Err(_) => Reply::Text(StatusCode::InternalServerError, "database error".into()),
    }
}

/// Runs a recursive method: locally, and (entry node) on every other member.
async fn recurse(
    node: &Node,
    local: impl Future<Output = NodeOutcome>,
    method: &str,
    params: &Value,
    via: Via,
    required: bool,
) -> Reply {
    if via == Via::Forwarded {
        return forwarded_reply(local.await);
    }
    // Tombstones take sequence numbers above the current one: a mark at it
    // makes the catch-up carry this change to members that missed it
    // (swarms §6).
    let floor = node.store.max_seq().await.unwrap_or(0);
    let (local, others) = tokio::join!(local, fanout::to_swarm(node, method, params));
    fanout::mark_missed(node, &others, floor).await;
    aggregate(node, local, others, required)
}

/// Builds the §8.2 response from this node's and the peers' results.
fn aggregate(
    node: &Node,
    local: NodeOutcome,
    others: Vec<(String, NodeOutcome)>,
    required: bool,
) -> Reply {
    let mut swarm = Map::new();
    let mut any_ok = false;
    let mut any_deleted = false;
    let me = hex::encode(node.public().as_bytes());
    for (key, outcome) in std::iter::once((me, local)).chain(others) {
        let v = match outcome {
            Ok(v) => {
                any_ok = true;
                any_deleted |= v
                    .get("deleted")
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty());
                v
            }
            Err(f) => f,
        };
        swarm.insert(key, v);
    }
    let status = if !any_ok {
        StatusCode::InternalServerError
    } else if required && !any_deleted {
        StatusCode::NotFound
    } else {
        StatusCode::Ok
    };
    Reply::Json(status, json!({"swarm": swarm, "t": node.now_ms()}))
}

/// Maps a peer's HTTP reply to a `swarm` map entry.
pub(crate) fn peer_outcome(status: u16, body: &[u8]) -> NodeOutcome {
    if status == 200 {
        match serde_json::from_slice::<Value>(body) {
            Ok(v) if v.is_object() => Ok(v),
            _ => Err(json!({"failed": true, "bad_peer_response": true})),
        }
    } else {
        let reason = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        let code = StatusCode::from_code(status).unwrap_or(StatusCode::InternalServerError);
        Err(failure_code(code, reason))
    }
}

/// The swarm ID as the `swarm` field of `get_swarm` writes it.
pub fn swarm_hex(s: Option<SwarmId>) -> String {
    format!("{:016x}", s.map_or(u64::MAX, u64::from))
}
