//! The proof a tombstone carries (`swarms.md` §6, "Deletions are caught up
//! too"): the account owner's signed client request that caused the
//! deletion or the shortened expiry, as the `{"method","params"}` JSON the
//! node validated — the same bytes its swarm fan-out forwards
//! ([`encode_proof`]).
//!
//! A receiver of a pushed or pulled tombstone applies it only after
//! checking, itself:
//! 1. [`ProofRequest::verify`]: the request passes the same per-method
//!    validation as the RPC handler ([`super::validate`]: signature,
//!    pubkey/account match, subaccount permissions and revocation, namespace
//!    rules), with [`Origin::CatchUp`], which skips only the time-freshness
//!    windows of `storage-rpc.md` §4 since catch-up happens minutes or hours
//!    later;
//! 2. [`VerifiedProof::covers`]: the request really covers the tombstone —
//!    `delete` lists the hash; `delete_all` / `delete_before` / `expire_all`
//!    name its namespace (or all); `expire` lists the hash and sets exactly
//!    the tombstone's new expiry; a public-outbox `store` replaced the other
//!    messages of its namespace. The returned [`Coverage`] is the check the
//!    receiver makes against its own copy of the message, if it holds one:
//!    the same namespace, and a message timestamp no later than the request
//!    allows.
//!
//! So a member of the account's swarm cannot make its peers delete or
//! shorten a message the owner did not ask to delete or shorten: the
//! fan-out path has the same property, since there every member validates
//! the unchanged signed request itself.
//!
//! Compatibility: nodes of this repository are the only implementation, so
//! the proof is required; a tombstone without a valid proof is ignored.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::hash::MessageHash;
use super::limits::{FORWARDED_SIGNATURE_TOLERANCE_MS, Origin, STORE_TOLERANCE_MS};
use super::namespace::{Namespace, NamespaceSel};
use super::node_req::PushTombstone;
use super::sign::{ExpireMode, SubaccountToken};
use super::status::RpcError;
use super::types::{Method, Request, Via};
use super::validate::{self, AuthEnv};
use crate::identity::AccountId;

/// Largest proof kept or accepted, in bytes. A `delete` or `expire` of the
/// most hashes a request may list, or a public-outbox `store` of the largest
/// message, is well below it; a larger request (extra unknown params) makes
/// a tombstone without proof, which its peers ignore.
pub const MAX_PROOF_BYTES: usize = 256 * 1024;

/// How much later than the signed time a message deleted by a
/// namespace-wide request (`delete_all`, a public-outbox `store`) may be
/// timestamped: the entry node accepted the request up to 70 s (forwarded)
/// after its signed time and holds messages timestamped up to 10 s ahead of
/// its clock.
pub const NAMESPACE_DELETE_SLACK_MS: u64 = FORWARDED_SIGNATURE_TOLERANCE_MS + STORE_TOLERANCE_MS;

/// The proof bytes of a request: `{"method": …, "params": …}` as the
/// fan-out forwards it; `None` when it would pass [`MAX_PROOF_BYTES`].
pub fn encode_proof(method: &str, params: &Value) -> Option<Vec<u8>> {
    serde_json::to_vec(&json!({"method": method, "params": params}))
        .ok()
        .filter(|b| b.len() <= MAX_PROOF_BYTES)
}

/// Why a tombstone's proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The tombstone carries no proof.
    #[error("the tombstone carries no proof")]
    Missing,
    /// The proof passes [`MAX_PROOF_BYTES`].
    #[error("the proof is {0} bytes, more than {MAX_PROOF_BYTES}")]
    TooLarge(usize),
    /// The proof is not a `{"method","params"}` request that parses.
    #[error("the proof is not a request: {0}")]
    Malformed(String),
    /// The request's method never makes a tombstone.
    #[error("a {0} request cannot delete or shorten messages")]
    NotADeletion(String),
    /// The request failed validation (signature, permissions, namespace).
    #[error("the proof's request is refused: {0}")]
    Refused(RpcError),
    /// The proof is signed for another account than the tombstone's.
    #[error("the proof is for another account")]
    OtherAccount,
    /// The request does not cover this tombstone.
    #[error("the proof does not cover the tombstone: {0}")]
    NotCovered(&'static str),
}

/// A parsed, not yet verified proof.
#[derive(Debug, Clone, PartialEq)]
pub struct ProofRequest {
    req: Request,
}

impl ProofRequest {
    /// Parses proof bytes as a request of a method that can cause a
    /// tombstone (`delete`, `delete_all`, `delete_before`, `expire`,
    /// `expire_all`, `store`).
    pub fn parse(bytes: &[u8]) -> Result<Self, ProofError> {
        if bytes.len() > MAX_PROOF_BYTES {
            return Err(ProofError::TooLarge(bytes.len()));
        }
        let v: Value =
            serde_json::from_slice(bytes).map_err(|e| ProofError::Malformed(e.to_string()))?;
        let method = v
            .get("method")
            .and_then(Value::as_str)
            .ok_or_else(|| ProofError::Malformed("method is missing".into()))?;
        let params = v
            .get("params")
            .filter(|p| p.is_object())
            .ok_or_else(|| ProofError::Malformed("params must be an object".into()))?;
        match Method::from_name(method) {
            Some(
                Method::Delete
                | Method::DeleteAll
                | Method::DeleteBefore
                | Method::Expire
                | Method::ExpireAll
                | Method::Store,
            ) => {}
            _ => {
                let shown: String = method.chars().take(32).collect();
                return Err(ProofError::NotADeletion(shown));
            }
        }
        let req = Request::from_parts(method, params, Via::Forwarded)
            .map_err(|e| ProofError::Malformed(e.message))?;
        Ok(ProofRequest { req })
    }

    /// The account the request is for.
    pub fn account(&self) -> Option<AccountId> {
        self.req.account().copied()
    }

    /// The subaccount token that signed it, if any (the caller looks up its
    /// revocation before [`ProofRequest::verify`]).
    pub fn subaccount(&self) -> Option<SubaccountToken> {
        let auth = match &self.req {
            Request::Store(p) => &p.auth,
            Request::Delete(p) => &p.auth,
            Request::DeleteAll(p) => &p.auth,
            Request::DeleteBefore(p) => &p.auth,
            Request::Expire(p) => &p.auth,
            Request::ExpireAll(p) => &p.auth,
            _ => return None,
        };
        auth.subaccount
    }

    /// Validates the request as the RPC handler does, with
    /// [`Origin::CatchUp`]; `is_revoked` is the receiver's revocation list
    /// of the account.
    pub fn verify(
        &self,
        now_ms: u64,
        is_revoked: &dyn Fn(&SubaccountToken) -> bool,
    ) -> Result<VerifiedProof, ProofError> {
        let env = AuthEnv {
            origin: Origin::CatchUp,
            is_revoked,
        };
        let refused = ProofError::Refused;
        let scope = match &self.req {
            Request::Delete(p) => {
                let v = validate::validate_delete(p, now_ms, &env).map_err(refused)?;
                Scope::Delete(v.messages.into_iter().collect())
            }
            Request::DeleteAll(p) => {
                let v = validate::validate_delete_all(p, now_ms, &env).map_err(refused)?;
                Scope::DeleteNamespace {
                    namespace: v.namespace,
                    max_timestamp: v.value.saturating_add(NAMESPACE_DELETE_SLACK_MS),
                }
            }
            Request::DeleteBefore(p) => {
                let v = validate::validate_delete_before(p, now_ms, &env).map_err(refused)?;
                Scope::DeleteNamespace {
                    namespace: v.namespace,
                    max_timestamp: v.value,
                }
            }
            Request::ExpireAll(p) => {
                let v = validate::validate_expire_all(p, now_ms, &env).map_err(refused)?;
                Scope::ExpireAll {
                    namespace: v.namespace,
                    expiry: v.value,
                }
            }
            Request::Expire(p) => {
                let v = validate::validate_expire(p, now_ms, &env).map_err(refused)?;
                if v.mode == ExpireMode::Extend {
                    return Err(ProofError::NotADeletion("extending expire".into()));
                }
                // The expiries as requested, before the entry node's clamp
                // to its now + 30 days. The clamp can shorten a message only
                // by the 10 s a store timestamp may run ahead; a tombstone
                // of such a clamped expiry is not covered, and the peer
                // keeps those seconds.
                let mut expiries: BTreeMap<MessageHash, Vec<u64>> = BTreeMap::new();
                for (i, h) in p.messages.iter().enumerate() {
                    let e = match &p.expiry {
                        super::types::Expiries::Single(e) => Some(*e),
                        super::types::Expiries::PerMessage(v) => v.get(i).copied(),
                    };
                    if let Some(e) = e {
                        expiries.entry(h.clone()).or_default().push(e);
                    }
                }
                Scope::Expire(expiries)
            }
            Request::Store(p) => {
                let v = validate::validate_store(p, now_ms, &env).map_err(refused)?;
                if !v.replaces_others {
                    return Err(ProofError::NotADeletion(
                        "store outside a public outbox".into(),
                    ));
                }
                Scope::ReplaceOutbox {
                    namespace: v.namespace,
                    kept: v.hash,
                    max_timestamp: p
                        .effective_sig_timestamp()
                        .saturating_add(NAMESPACE_DELETE_SLACK_MS),
                }
            }
            other => return Err(ProofError::NotADeletion(other.method().to_string())),
        };
        let account = self
            .account()
            .ok_or_else(|| ProofError::Malformed("the request has no account".into()))?;
        Ok(VerifiedProof { account, scope })
    }
}

/// What a verified request deleted or shortened.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scope {
    /// `delete`: these hashes.
    Delete(std::collections::BTreeSet<MessageHash>),
    /// `delete_all` / `delete_before`: the namespace(s), messages timestamped
    /// up to `max_timestamp`.
    DeleteNamespace {
        namespace: NamespaceSel,
        max_timestamp: u64,
    },
    /// `expire_all`: the namespace(s), shortened to `expiry`.
    ExpireAll {
        namespace: NamespaceSel,
        expiry: u64,
    },
    /// `expire`: each hash and its requested expiries.
    Expire(BTreeMap<MessageHash, Vec<u64>>),
    /// A public-outbox `store`: every other message of the namespace.
    ReplaceOutbox {
        namespace: Namespace,
        kept: MessageHash,
        max_timestamp: u64,
    },
}

/// The check a receiver makes against its own unexpired copy of the
/// message, when it holds one: the copy is in the tombstone's namespace and
/// (when set) timestamped no later than `max_message_timestamp`. A copy
/// that fails it means the request did not cover that message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coverage {
    /// The latest message timestamp the request covers, if it is bounded.
    pub max_message_timestamp: Option<u64>,
}

/// A proof whose request passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedProof {
    account: AccountId,
    scope: Scope,
}

fn in_sel(sel: NamespaceSel, ns: Namespace) -> bool {
    match sel {
        NamespaceSel::One(n) => n == ns,
        NamespaceSel::All => true,
    }
}

impl VerifiedProof {
    /// The account that signed.
    pub fn account(&self) -> &AccountId {
        &self.account
    }

    /// Whether the request covers `t`; if so, the check against the
    /// receiver's own copy of the message.
    pub fn covers(&self, t: &PushTombstone) -> Result<Coverage, ProofError> {
        if t.account != self.account {
            return Err(ProofError::OtherAccount);
        }
        let unbounded = Coverage {
            max_message_timestamp: None,
        };
        let deleted = |why| {
            if t.new_expiry.is_none() {
                Ok(())
            } else {
                Err(ProofError::NotCovered(why))
            }
        };
        match &self.scope {
            Scope::Delete(hashes) => {
                deleted("a delete does not shorten an expiry")?;
                if !hashes.contains(&t.hash) {
                    return Err(ProofError::NotCovered("the delete does not list the hash"));
                }
                Ok(unbounded)
            }
            Scope::DeleteNamespace {
                namespace,
                max_timestamp,
            } => {
                deleted("a deletion does not shorten an expiry")?;
                if !in_sel(*namespace, t.namespace) {
                    return Err(ProofError::NotCovered("another namespace"));
                }
                Ok(Coverage {
                    max_message_timestamp: Some(*max_timestamp),
                })
            }
            Scope::ExpireAll { namespace, expiry } => {
                if t.new_expiry != Some(*expiry) {
                    return Err(ProofError::NotCovered("another expiry"));
                }
                if !in_sel(*namespace, t.namespace) {
                    return Err(ProofError::NotCovered("another namespace"));
                }
                // expire_all signs no time: messages stored after the
                // request are at least not timestamped past its expiry
                // by more than the entry node's tolerances.
                Ok(Coverage {
                    max_message_timestamp: Some(expiry.saturating_add(NAMESPACE_DELETE_SLACK_MS)),
                })
            }
            Scope::Expire(expiries) => {
                let Some(new) = t.new_expiry else {
                    return Err(ProofError::NotCovered("an expire does not delete"));
                };
                let listed = expiries
                    .get(&t.hash)
                    .ok_or(ProofError::NotCovered("the expire does not list the hash"))?;
                if !listed.contains(&new) {
                    return Err(ProofError::NotCovered("another expiry"));
                }
                Ok(unbounded)
            }
            Scope::ReplaceOutbox {
                namespace,
                kept,
                max_timestamp,
            } => {
                deleted("a store does not shorten an expiry")?;
                if t.namespace != *namespace || t.hash == *kept {
                    return Err(ProofError::NotCovered(
                        "the store did not replace this message",
                    ));
                }
                Ok(Coverage {
                    max_message_timestamp: Some(*max_timestamp),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests;
