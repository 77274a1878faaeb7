//! Typed storage calls, every one onion-routed through [`Network`]
//! (`onion.md` §5, §10; `storage-rpc.md` §9): `store`, `retrieve`,
//! `delete`, `expire` and `get_swarm`.
//!
//! Requests are built from the typed params of `umbra_proto::rpc::types`
//! and signed with [`Signer`] over the exact strings of `storage-rpc.md`
//! §2.4. Results of recursive methods are checked member by member (§8.3):
//! an entry counts only when its key is a member of the account's swarm in
//! our registry and its node signature verifies. Errors name what failed
//! and where ([`ApiError`]); every call has a deadline (default 10 s,
//! `onion.md` §10.7).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::time::Instant;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use umbra_crypto::Ed25519Public;
use umbra_proto::identity::AccountId;
use umbra_proto::rpc::encoding::MessageData;
use umbra_proto::rpc::limits::MAX_DATA_BYTES;
use umbra_proto::rpc::node_sig::{
    NodeSignatureError, verify_delete_result, verify_expire_result, verify_store_result,
};
use umbra_proto::rpc::sign::{self, AuthParams, ExpireMode, Signer};
use umbra_proto::rpc::types::{
    BatchParams, BatchResponse, DeleteParams, DeleteResult, ExpireParams, ExpireResult, Expiries,
    GetSwarmParams, GetSwarmResponse, NodeFailure, NodeResult, RetrieveParams, RetrieveResponse,
    StoreParams, StoreResult as NodeStoreResult, SubRequest, SwarmResponse,
};
use umbra_proto::rpc::{MessageHash, Namespace, message_hash};
use umbra_proto::swarm::NodeRecord;

use crate::net::{NetError, Network, RpcReply};

/// The default deadline of one call (`onion.md` §10.7).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The destination answered with a non-200 RPC status.
    #[error("{method} refused by the destination: {status} {text}")]
    Refused {
        /// The RPC method.
        method: &'static str,
        /// The inner status (400, 401, 403, 404, 406, 421, …).
        status: u16,
        /// The destination's error text.
        text: String,
    },
    /// The onion network failed: no path, or every try failed;
    /// [`NetError::Failed`] names the hop and the kind of the last failure.
    #[error("{method}: {source}")]
    Path {
        /// The RPC method.
        method: &'static str,
        /// What the network layer saw.
        #[source]
        source: NetError,
    },
    /// The call did not finish within its deadline.
    #[error("{method} timed out after {after:?}")]
    Timeout {
        /// The RPC method.
        method: &'static str,
        /// The deadline.
        after: Duration,
    },
    /// The destination answered 200 with a body that does not parse.
    #[error("{method}: malformed reply: {reason}")]
    BadReply {
        /// The RPC method.
        method: &'static str,
        /// What did not parse.
        reason: String,
    },
    /// No swarm member confirmed the operation with a valid signature.
    #[error("{method}: no swarm member confirmed ({} failures)", failures.len())]
    Unconfirmed {
        /// The RPC method.
        method: &'static str,
        /// Each member that failed, and why.
        failures: Vec<MemberFailure>,
    },
    /// The call cannot be made as asked (data too large, missing signer…).
    #[error("invalid request: {0}")]
    Invalid(String),
}

/// Why one swarm member's entry of a recursive result was not counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberFailure {
    /// The member (Ed25519).
    pub node: Ed25519Public,
    /// What was wrong.
    pub reason: MemberFailureReason,
}

/// What was wrong with a member's entry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MemberFailureReason {
    /// The entry node reported that member's failure (§8.2).
    Failed(NodeFailure),
    /// The member's signature over its result does not verify (§8.3).
    BadSignature,
    /// The key is not a member of the account's swarm in our registry.
    NotAMember,
    /// The result does not match the request (e.g. another hash).
    Mismatch(String),
}

/// A `store` that at least one member confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreResult {
    /// The message hash (computed locally; every counted member agrees).
    pub hash: MessageHash,
    /// Members whose signed result verified, in key order.
    pub accepted_by: Vec<Ed25519Public>,
    /// The latest expiry a counted member reports.
    pub expiry: u64,
    /// Members not counted.
    pub failures: Vec<MemberFailure>,
    /// The route used: guard, hop 2, hop 3, destination.
    pub route: Vec<[u8; 32]>,
}

/// One retrieved message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retrieved {
    /// Its hash (checked against the data).
    pub hash: MessageHash,
    /// The stored message timestamp (ms).
    pub timestamp: u64,
    /// The current expiry (ms).
    pub expiration: u64,
    /// The message bytes.
    pub data: Vec<u8>,
}

/// One page of `retrieve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrievePage {
    /// The messages whose hash matches their data, in insertion order.
    pub messages: Vec<Retrieved>,
    /// Whether more messages follow the last one (ask again with its hash).
    pub more: bool,
    /// Messages dropped because their hash did not match their data.
    pub rejected: usize,
    /// The route used: guard, hop 2, hop 3, destination.
    pub route: Vec<[u8; 32]>,
}

/// A `retrieve` reply as a page: messages whose hash does not match their
/// data are dropped and counted.
fn verified_page(
    account: &AccountId,
    namespace: Namespace,
    response: RetrieveResponse,
    route: Vec<[u8; 32]>,
) -> RetrievePage {
    let mut page = RetrievePage {
        messages: Vec::with_capacity(response.messages.len()),
        more: response.more,
        rejected: 0,
        route,
    };
    for m in response.messages {
        if message_hash(account, namespace, &m.data.0) != m.hash {
            page.rejected += 1;
            continue;
        }
        // A node may claim any time; no real one is beyond 2^63 − 1 ms,
        // the most the client's store can hold.
        page.messages.push(Retrieved {
            hash: m.hash,
            timestamp: m.timestamp.min(crate::store::MAX_STORED_MS),
            expiration: m.expiration.min(crate::store::MAX_STORED_MS),
            data: m.data.0,
        });
    }
    page
}

/// A `delete` confirmed by at least one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteOutcome {
    /// Hashes some counted member deleted.
    pub deleted: BTreeSet<MessageHash>,
    /// Members whose signed result verified.
    pub confirmed_by: Vec<Ed25519Public>,
    /// Members not counted.
    pub failures: Vec<MemberFailure>,
}

/// An `expire` confirmed by at least one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpireOutcome {
    /// Updated hashes with the expiry a counted member applied (the latest
    /// one when members differ).
    pub updated: BTreeMap<MessageHash, u64>,
    /// Hashes left unchanged by `shorten`/`extend`, with their expiry.
    pub unchanged: BTreeMap<MessageHash, u64>,
    /// Members whose signed result verified.
    pub confirmed_by: Vec<Ed25519Public>,
    /// Members not counted.
    pub failures: Vec<MemberFailure>,
}

/// The swarm of an account, as a member reported it (`get_swarm`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmInfo {
    /// The swarm ID (`None` when no swarm exists).
    pub swarm_id: Option<u64>,
    /// The registry epoch of the answering node.
    pub epoch: u64,
    /// The members' keys and addresses.
    pub nodes: Vec<umbra_proto::rpc::types::SnodeInfo>,
}

/// The typed, onion-routed storage API over a [`Network`].
#[derive(Clone, Copy)]
pub struct Api<'n> {
    net: &'n Network,
    timeout: Duration,
}

impl std::fmt::Debug for Api<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Counted and failed members of a recursive result.
struct Tally<T> {
    ok: Vec<(Ed25519Public, T)>,
    failures: Vec<MemberFailure>,
}

/// Checks every entry of a recursive result (§8.2–8.3): only members of
/// `members` whose result passes `verify` are counted.
fn tally<T>(
    response: SwarmResponse<T>,
    members: &[NodeRecord],
    verify: impl Fn(&Ed25519Public, &T) -> Result<(), MemberFailureReason>,
) -> Tally<T> {
    let mut out = Tally {
        ok: Vec::new(),
        failures: Vec::new(),
    };
    for (key, entry) in response.swarm {
        let node = key.0;
        let fail = |reason| MemberFailure { node, reason };
        if !members.iter().any(|m| m.ed25519 == node) {
            out.failures.push(fail(MemberFailureReason::NotAMember));
            continue;
        }
        match entry {
            NodeResult::Failed(f) => out.failures.push(fail(MemberFailureReason::Failed(f))),
            NodeResult::Ok(r) => match verify(&node, &r) {
                Ok(()) => out.ok.push((node, r)),
                Err(reason) => out.failures.push(fail(reason)),
            },
        }
    }
    out
}

fn bad_sig(_: NodeSignatureError) -> MemberFailureReason {
    MemberFailureReason::BadSignature
}

impl<'n> Api<'n> {
    /// The API over `net`, with the default deadline.
    pub fn new(net: &'n Network) -> Self {
        Api {
            net,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Sets the deadline of each call.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The deadline of each call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends `params` for `account` through the onion and returns the
    /// destination's 200 reply, or the typed failure.
    async fn call<P: Serialize>(
        &self,
        deadline: Instant,
        account: &AccountId,
        method: &'static str,
        params: &P,
    ) -> Result<RpcReply, ApiError> {
        let params = serde_json::to_value(params)
            .map_err(|e| ApiError::Invalid(format!("{method} params: {e}")))?;
        let fut = self.net.storage_request(account, method, params);
        let reply = match tokio::time::timeout_at(deadline, fut).await {
            Err(_) => {
                return Err(ApiError::Timeout {
                    method,
                    after: self.timeout,
                });
            }
            Ok(Err(source)) => return Err(ApiError::Path { method, source }),
            Ok(Ok(r)) => r,
        };
        if reply.status != 200 {
            return Err(ApiError::Refused {
                method,
                status: reply.status,
                text: reply.error_text(),
            });
        }
        Ok(reply)
    }

    fn parse<T: DeserializeOwned>(method: &'static str, body: Value) -> Result<T, ApiError> {
        serde_json::from_value(body).map_err(|e| ApiError::BadReply {
            method,
            reason: e.to_string(),
        })
    }

    /// Signs `signed` when `namespace` needs auth for this method; a
    /// missing signer is an error then.
    fn auth(
        method: &str,
        signer: Option<&Signer<'_>>,
        needed: bool,
        signed: impl FnOnce() -> Vec<u8>,
    ) -> Result<AuthParams, ApiError> {
        match (needed, signer) {
            (false, _) => Ok(AuthParams::default()),
            (true, Some(s)) => Ok(s.auth(&signed())),
            (true, None) => Err(ApiError::Invalid(format!(
                "{method} in this namespace needs a signer"
            ))),
        }
    }

    /// Stores `data` for `to` in `namespace` with a TTL (`storage-rpc.md`
    /// §9.1). Public inboxes (`n mod 10 == 0`) need no signer; other
    /// namespaces need the account's (or a subaccount's) signer.
    pub async fn send_to_swarm(
        &self,
        to: &AccountId,
        signer: Option<&Signer<'_>>,
        namespace: Namespace,
        data: &[u8],
        ttl_ms: u64,
    ) -> Result<StoreResult, ApiError> {
        const M: &str = "store";
        let deadline = self.deadline();
        if data.len() > MAX_DATA_BYTES {
            return Err(ApiError::Invalid(format!(
                "message of {} bytes exceeds {MAX_DATA_BYTES}",
                data.len()
            )));
        }
        let members = self.members(deadline, to, M).await?;
        let timestamp = self.net.network_now().await;
        let auth = Self::auth(M, signer, !namespace.is_public_inbox(), || {
            sign::store_string(namespace, timestamp)
        })?;
        let params = StoreParams {
            pubkey: *to,
            timestamp,
            ttl: Some(ttl_ms),
            expiry: None,
            data: MessageData(data.to_vec()),
            namespace,
            sig_timestamp: None,
            auth,
        };
        let reply = self.call(deadline, to, M, &params).await?;
        let response: SwarmResponse<NodeStoreResult> = Self::parse(M, reply.body)?;
        let hash = message_hash(to, namespace, data);
        let t = tally(response, &members, |node, r| {
            if r.hash != hash {
                return Err(MemberFailureReason::Mismatch(format!(
                    "hash {} instead of {hash}",
                    r.hash
                )));
            }
            verify_store_result(node, r).map_err(bad_sig)
        });
        if t.ok.is_empty() {
            return Err(ApiError::Unconfirmed {
                method: M,
                failures: t.failures,
            });
        }
        Ok(StoreResult {
            hash,
            expiry: t.ok.iter().map(|(_, r)| r.expiry).max().unwrap_or(0),
            accepted_by: t.ok.into_iter().map(|(k, _)| k).collect(),
            failures: t.failures,
            route: reply.route,
        })
    }

    /// Retrieves the messages of `account` in `namespace` stored after
    /// `last_hash` (`storage-rpc.md` §9.2). `signer` may be `None` only for
    /// public outboxes.
    pub async fn retrieve(
        &self,
        account: &AccountId,
        signer: Option<&Signer<'_>>,
        namespace: Namespace,
        last_hash: Option<&MessageHash>,
    ) -> Result<RetrievePage, ApiError> {
        const M: &str = "retrieve";
        let deadline = self.deadline();
        self.members(deadline, account, M).await?;
        let now = self.net.network_now().await;
        let params = Self::retrieve_params(account, signer, namespace, last_hash, now)?;
        let reply = self.call(deadline, account, M, &params).await?;
        let response: RetrieveResponse = Self::parse(M, reply.body)?;
        Ok(verified_page(account, namespace, response, reply.route))
    }

    /// The first page of several namespaces of `account` in one onion
    /// `batch` of `retrieve`s (`storage-rpc.md` §9.13), each subrequest
    /// signed on its own: per namespace, in order, its page (verified as
    /// [`Self::retrieve`]'s) or that subrequest's refusal. `Err` when the
    /// batch itself failed.
    pub async fn retrieve_batch(
        &self,
        account: &AccountId,
        signer: Option<&Signer<'_>>,
        wanted: &[(Namespace, Option<&MessageHash>)],
    ) -> Result<Vec<Result<RetrievePage, ApiError>>, ApiError> {
        const M: &str = "batch";
        let deadline = self.deadline();
        self.members(deadline, account, M).await?;
        let now = self.net.network_now().await;
        let mut requests = Vec::with_capacity(wanted.len());
        for (namespace, last_hash) in wanted {
            let params = Self::retrieve_params(account, signer, *namespace, *last_hash, now)?;
            let Ok(Value::Object(params)) = serde_json::to_value(&params) else {
                return Err(ApiError::Invalid("retrieve params".into()));
            };
            requests.push(SubRequest {
                method: "retrieve".into(),
                params,
            });
        }
        let reply = self
            .call(deadline, account, M, &BatchParams { requests })
            .await?;
        let batch: BatchResponse = Self::parse(M, reply.body)?;
        if batch.results.len() != wanted.len() {
            return Err(ApiError::BadReply {
                method: M,
                reason: format!(
                    "{} results for {} requests",
                    batch.results.len(),
                    wanted.len()
                ),
            });
        }
        Ok(wanted
            .iter()
            .zip(batch.results)
            .map(|((namespace, _), r)| {
                if r.code != 200 {
                    return Err(ApiError::Refused {
                        method: "retrieve",
                        status: r.code,
                        text: match r.body {
                            Value::String(s) => s,
                            other => other.to_string(),
                        },
                    });
                }
                let response: RetrieveResponse = Self::parse("retrieve", r.body)?;
                Ok(verified_page(
                    account,
                    *namespace,
                    response,
                    reply.route.clone(),
                ))
            })
            .collect())
    }

    /// A `retrieve`'s params at `now`, signed when the namespace needs it.
    fn retrieve_params(
        account: &AccountId,
        signer: Option<&Signer<'_>>,
        namespace: Namespace,
        last_hash: Option<&MessageHash>,
        now: u64,
    ) -> Result<RetrieveParams, ApiError> {
        let needed = !namespace.is_public_outbox() || signer.is_some();
        let auth = Self::auth("retrieve", signer, needed, || {
            sign::retrieve_string(namespace, now)
        })?;
        Ok(RetrieveParams {
            pubkey: *account,
            namespace,
            last_hash: last_hash.cloned(),
            max_count: None,
            max_size: None,
            timestamp: needed.then_some(now),
            auth,
        })
    }

    /// Deletes `hashes` of `account` (`storage-rpc.md` §9.3).
    pub async fn delete(
        &self,
        account: &AccountId,
        signer: &Signer<'_>,
        hashes: &[MessageHash],
    ) -> Result<DeleteOutcome, ApiError> {
        const M: &str = "delete";
        let deadline = self.deadline();
        let params = DeleteParams {
            pubkey: *account,
            messages: hashes.to_vec(),
            required: false,
            auth: signer.auth(&sign::delete_string(hashes)),
        };
        let members = self.members(deadline, account, M).await?;
        let reply = self.call(deadline, account, M, &params).await?;
        let response: SwarmResponse<DeleteResult> = Self::parse(M, reply.body)?;
        let t = tally(response, &members, |node, r| {
            verify_delete_result(node, &params, r).map_err(bad_sig)
        });
        if t.ok.is_empty() {
            return Err(ApiError::Unconfirmed {
                method: M,
                failures: t.failures,
            });
        }
        let mut out = DeleteOutcome {
            deleted: BTreeSet::new(),
            confirmed_by: Vec::new(),
            failures: t.failures,
        };
        for (k, r) in t.ok {
            out.deleted.extend(r.deleted);
            out.confirmed_by.push(k);
        }
        Ok(out)
    }

    /// Sets the expiry of `hashes` of `account` to `expiry` (ms), only
    /// shortening or extending as `mode` says (`storage-rpc.md` §9.6).
    pub async fn expire(
        &self,
        account: &AccountId,
        signer: &Signer<'_>,
        hashes: &[MessageHash],
        expiry: u64,
        mode: ExpireMode,
    ) -> Result<ExpireOutcome, ApiError> {
        const M: &str = "expire";
        let deadline = self.deadline();
        let params = ExpireParams {
            pubkey: *account,
            messages: hashes.to_vec(),
            expiry: Expiries::Single(expiry),
            shorten: mode == ExpireMode::Shorten,
            extend: mode == ExpireMode::Extend,
            auth: signer.auth(&sign::expire_string(mode, &[expiry], hashes)),
        };
        let members = self.members(deadline, account, M).await?;
        let reply = self.call(deadline, account, M, &params).await?;
        let response: SwarmResponse<ExpireResult> = Self::parse(M, reply.body)?;
        let t = tally(response, &members, |node, r| {
            verify_expire_result(node, &params, r).map_err(bad_sig)
        });
        if t.ok.is_empty() {
            return Err(ApiError::Unconfirmed {
                method: M,
                failures: t.failures,
            });
        }
        let mut out = ExpireOutcome {
            updated: BTreeMap::new(),
            unchanged: BTreeMap::new(),
            confirmed_by: Vec::new(),
            failures: t.failures,
        };
        for (k, r) in t.ok {
            let per_hash: Vec<u64> = match &r.expiry {
                Expiries::Single(e) => vec![*e; r.updated.len()],
                Expiries::PerMessage(v) => v.clone(),
            };
            for (h, e) in r.updated.into_iter().zip(per_hash) {
                let slot = out.updated.entry(h).or_insert(e);
                *slot = (*slot).max(e);
            }
            for (h, e) in r.unchanged.into_iter().flatten() {
                out.unchanged.insert(h, e);
            }
            out.confirmed_by.push(k);
        }
        Ok(out)
    }

    /// Asks a member of `account`'s swarm for the swarm (`storage-rpc.md`
    /// §9.10), through the onion.
    pub async fn get_swarm(&self, account: &AccountId) -> Result<SwarmInfo, ApiError> {
        const M: &str = "get_swarm";
        let deadline = self.deadline();
        let params = GetSwarmParams { pubkey: *account };
        let reply = self.call(deadline, account, M, &params).await?;
        let r: GetSwarmResponse = Self::parse(M, reply.body)?;
        Ok(SwarmInfo {
            swarm_id: (r.swarm != umbra_proto::rpc::types::SwarmIdHex::NONE).then_some(r.swarm.0),
            epoch: r.epoch,
            nodes: r.snodes,
        })
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.timeout
    }

    /// The account's swarm members (waiting for a ready path first).
    async fn members(
        &self,
        deadline: Instant,
        account: &AccountId,
        method: &'static str,
    ) -> Result<Vec<NodeRecord>, ApiError> {
        let wait = self.net.ensure_ready(self.timeout);
        match tokio::time::timeout_at(deadline, wait).await {
            Err(_) => {
                return Err(ApiError::Timeout {
                    method,
                    after: self.timeout,
                });
            }
            Ok(Err(source)) => return Err(ApiError::Path { method, source }),
            Ok(Ok(())) => {}
        }
        self.net
            .swarm_of(account)
            .await
            .map_err(|source| ApiError::Path { method, source })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use std::net::Ipv4Addr;
    use umbra_crypto::Ed25519Keypair;
    use umbra_proto::identity::AccountKeys;
    use umbra_proto::rpc::encoding::Ed25519Hex;
    use umbra_proto::rpc::node_sig::{sign_delete_result, sign_store_result};

    fn node(n: u8) -> (Ed25519Keypair, NodeRecord) {
        let kp = Ed25519Keypair::from_seed(&[n; 32]);
        let rec = NodeRecord::sign(&kp, Ipv4Addr::new(10, n, 0, 1), 443, [0, 1, 0]).unwrap();
        (kp, rec)
    }

    fn store_response(
        entries: Vec<(Ed25519Public, NodeResult<NodeStoreResult>)>,
    ) -> SwarmResponse<NodeStoreResult> {
        SwarmResponse {
            swarm: entries
                .into_iter()
                .map(|(k, r)| (Ed25519Hex(k), r))
                .collect(),
            t: 1_700_000_000_000,
        }
    }

    #[test]
    fn tally_counts_only_verified_members() {
        let (k1, r1) = node(1);
        let (k2, r2) = node(2);
        let (k3, _) = node(3);
        let (k4, r4) = node(4);
        let acct = AccountKeys::from_seed(&[7; 32]).account_id();
        let hash = message_hash(&acct, Namespace(0), b"hi");
        let other = message_hash(&acct, Namespace(0), b"other");
        let mut forged = sign_store_result(&k2, hash.clone(), 5, false);
        forged.signature.0[0] ^= 1;
        let resp = store_response(vec![
            (
                k1.public(),
                NodeResult::Ok(sign_store_result(&k1, hash.clone(), 5, false)),
            ),
            (k2.public(), NodeResult::Ok(forged)),
            // Correctly signed, but not a member of the swarm we know.
            (
                k3.public(),
                NodeResult::Ok(sign_store_result(&k3, hash.clone(), 5, false)),
            ),
            (
                k4.public(),
                NodeResult::Ok(sign_store_result(&k4, other.clone(), 5, false)),
            ),
        ]);
        let members = vec![r1, r2, r4];
        let t = tally(resp, &members, |node, r: &NodeStoreResult| {
            if r.hash != hash {
                return Err(MemberFailureReason::Mismatch("hash".into()));
            }
            verify_store_result(node, r).map_err(bad_sig)
        });
        assert_eq!(t.ok.len(), 1);
        assert_eq!(t.ok[0].0, k1.public());
        let reason = |k: &Ed25519Keypair| {
            t.failures
                .iter()
                .find(|f| f.node == k.public())
                .map(|f| f.reason.clone())
        };
        assert_eq!(reason(&k2), Some(MemberFailureReason::BadSignature));
        assert_eq!(reason(&k3), Some(MemberFailureReason::NotAMember));
        assert!(matches!(
            reason(&k4),
            Some(MemberFailureReason::Mismatch(_))
        ));
    }

    #[test]
    fn tally_reports_failed_entries() {
        let (k1, r1) = node(1);
        let resp = store_response(vec![(
            k1.public(),
            NodeResult::Failed(NodeFailure::Timeout),
        )]);
        let t = tally(resp, &[r1], |_, _: &NodeStoreResult| Ok(()));
        assert!(t.ok.is_empty());
        assert_eq!(
            t.failures[0].reason,
            MemberFailureReason::Failed(NodeFailure::Timeout)
        );
    }

    #[test]
    fn delete_signature_binds_the_request() {
        let (k1, r1) = node(1);
        let keys = AccountKeys::from_seed(&[7; 32]);
        let h = message_hash(&keys.account_id(), Namespace(0), b"x");
        let req = DeleteParams {
            pubkey: keys.account_id(),
            messages: vec![h.clone()],
            required: false,
            auth: Signer::Account(&keys).auth(&sign::delete_string(std::slice::from_ref(&h))),
        };
        let good = sign_delete_result(&k1, &req, vec![h.clone()]);
        let resp = SwarmResponse {
            swarm: [(Ed25519Hex(k1.public()), NodeResult::Ok(good.clone()))].into(),
            t: 0,
        };
        let t = tally(resp, std::slice::from_ref(&r1), |n, r| {
            verify_delete_result(n, &req, r).map_err(bad_sig)
        });
        assert_eq!(t.ok.len(), 1);
        // The same result claimed for another request does not verify.
        let mut other = req.clone();
        other.messages = vec![message_hash(&keys.account_id(), Namespace(0), b"y")];
        let resp = SwarmResponse {
            swarm: [(Ed25519Hex(k1.public()), NodeResult::Ok(good))].into(),
            t: 0,
        };
        let t = tally(resp, &[r1], |n, r| {
            verify_delete_result(n, &other, r).map_err(bad_sig)
        });
        assert!(t.ok.is_empty());
        assert_eq!(t.failures[0].reason, MemberFailureReason::BadSignature);
    }

    #[test]
    fn auth_needs_a_signer_only_where_required() {
        assert_eq!(
            Api::auth("store", None, false, Vec::new).unwrap(),
            AuthParams::default()
        );
        assert!(matches!(
            Api::auth("store", None, true, Vec::new),
            Err(ApiError::Invalid(_))
        ));
        let keys = AccountKeys::from_seed(&[7; 32]);
        let a = Api::auth("retrieve", Some(&Signer::Account(&keys)), true, || {
            sign::retrieve_string(Namespace(0), 1_700_000_000_000)
        })
        .unwrap();
        let sig = a.signature.unwrap();
        keys.ed25519_public()
            .verify(b"retrieve1700000000000", &sig.0)
            .unwrap();
    }
}
