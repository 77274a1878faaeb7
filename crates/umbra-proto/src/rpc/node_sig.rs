//! Node response signatures (`storage-rpc.md` §8.3): the string each swarm
//! member signs for its per-node result of a recursive method, signing it
//! (node side) and verifying a received result (client side).
//!
//! `PUBKEY_HEX` is the account ID in lowercase hex; lists are concatenated
//! without separators. Lists the spec calls sorted are sorted here (ASCII
//! order of the hash text), so node and client build identical strings.

use umbra_crypto::{Ed25519Keypair, Ed25519Public};

use super::encoding::Signature;
use super::hash::MessageHash;
use super::sign::SubaccountToken;
use super::types::{
    DeleteAllParams, DeleteAllResult, DeleteBeforeParams, DeleteParams, DeleteResult,
    ExpireAllParams, ExpireAllResult, ExpireParams, ExpireResult, HashesByNamespace,
    RevocationResult, RevokeSubaccountParams, StoreResult, UnrevokeSubaccountParams,
};
use crate::identity::AccountId;

/// A node signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NodeSignatureError {
    /// The signature is not valid for the rebuilt string under the node key.
    #[error("node signature over the {0} result does not verify")]
    BadSignature(&'static str),
}

fn sorted<'a>(hashes: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut v: Vec<&str> = hashes.into_iter().collect();
    v.sort_unstable();
    v
}

fn push_all<'a>(out: &mut Vec<u8>, items: impl IntoIterator<Item = &'a str>) {
    for h in items {
        out.extend_from_slice(h.as_bytes());
    }
}

/// `store`: the 43-character hash.
pub fn store_node_string(hash: &str) -> Vec<u8> {
    hash.as_bytes().to_vec()
}

/// `delete`: `PUBKEY_HEX ‖ requested (request order) ‖ deleted (sorted)`.
pub fn delete_node_string<'a>(
    account: &AccountId,
    requested: impl IntoIterator<Item = &'a str>,
    deleted: impl IntoIterator<Item = &'a str>,
) -> Vec<u8> {
    let mut out = account.to_string().into_bytes();
    push_all(&mut out, requested);
    push_all(&mut out, sorted(deleted));
    out
}

/// `delete_all` (`value` = timestamp), `delete_before` (`value` = before)
/// and `expire_all` (`value` = expiry): `PUBKEY_HEX ‖ value ‖ hashes`
/// (one ASCII sort across every namespace).
pub fn namespace_op_node_string<'a>(
    account: &AccountId,
    value: u64,
    hashes: impl IntoIterator<Item = &'a str>,
) -> Vec<u8> {
    let mut out = format!("{account}{value}").into_bytes();
    push_all(&mut out, sorted(hashes));
    out
}

/// `expire`: `PUBKEY_HEX ‖ EXP ‖ requested (request order) ‖ updated
/// (sorted) ‖ for each unchanged hash in sorted order: hash ‖ its expiry`.
/// `exp` is the applied single expiry, or the applied expiries of the
/// updated hashes in sorted-hash order.
pub fn expire_node_string<'a>(
    account: &AccountId,
    exp: &[u64],
    requested: impl IntoIterator<Item = &'a str>,
    updated: impl IntoIterator<Item = &'a str>,
    unchanged: impl IntoIterator<Item = (&'a str, u64)>,
) -> Vec<u8> {
    let mut out = account.to_string().into_bytes();
    for e in exp {
        out.extend_from_slice(e.to_string().as_bytes());
    }
    push_all(&mut out, requested);
    push_all(&mut out, sorted(updated));
    let mut unchanged: Vec<(&str, u64)> = unchanged.into_iter().collect();
    unchanged.sort_unstable();
    for (h, e) in unchanged {
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(e.to_string().as_bytes());
    }
    out
}

/// `revoke_subaccount` / `unrevoke_subaccount`: `PUBKEY_HEX ‖ timestamp ‖
/// tokens (raw, request order)`.
pub fn revocation_node_string(
    account: &AccountId,
    timestamp: u64,
    tokens: &[SubaccountToken],
) -> Vec<u8> {
    let mut out = format!("{account}{timestamp}").into_bytes();
    for t in tokens {
        out.extend_from_slice(&t.0);
    }
    out
}

/// Signs a node string.
pub fn sign_node(node: &Ed25519Keypair, signed: &[u8]) -> Signature {
    Signature(node.sign(signed))
}

/// Verifies a node signature over `signed`.
pub fn verify_node(
    node: &Ed25519Public,
    signed: &[u8],
    sig: &Signature,
    what: &'static str,
) -> Result<(), NodeSignatureError> {
    node.verify(signed, &sig.0)
        .map_err(|_| NodeSignatureError::BadSignature(what))
}

fn strs(h: &[MessageHash]) -> impl Iterator<Item = &str> {
    h.iter().map(MessageHash::as_str)
}

fn sorted_hashes(mut v: Vec<MessageHash>) -> Vec<MessageHash> {
    v.sort();
    v
}

fn sort_by_ns(h: HashesByNamespace) -> HashesByNamespace {
    match h {
        HashesByNamespace::List(l) => HashesByNamespace::List(sorted_hashes(l)),
        HashesByNamespace::ByNamespace(m) => HashesByNamespace::ByNamespace(
            m.into_iter().map(|(k, v)| (k, sorted_hashes(v))).collect(),
        ),
    }
}

/// Node side: the signed `store` result.
pub fn sign_store_result(
    node: &Ed25519Keypair,
    hash: MessageHash,
    expiry: u64,
    already: bool,
) -> StoreResult {
    let signature = sign_node(node, &store_node_string(hash.as_str()));
    StoreResult {
        hash,
        signature,
        expiry,
        already,
    }
}

/// Client side: checks a `store` result's signature.
pub fn verify_store_result(
    node: &Ed25519Public,
    r: &StoreResult,
) -> Result<(), NodeSignatureError> {
    verify_node(
        node,
        &store_node_string(r.hash.as_str()),
        &r.signature,
        "store",
    )
}

/// Node side: the signed `delete` result (sorts `deleted`).
pub fn sign_delete_result(
    node: &Ed25519Keypair,
    req: &DeleteParams,
    deleted: Vec<MessageHash>,
) -> DeleteResult {
    let deleted = sorted_hashes(deleted);
    let signature = sign_node(
        node,
        &delete_node_string(&req.pubkey, strs(&req.messages), strs(&deleted)),
    );
    DeleteResult { deleted, signature }
}

/// Client side: checks a `delete` result against its request.
pub fn verify_delete_result(
    node: &Ed25519Public,
    req: &DeleteParams,
    r: &DeleteResult,
) -> Result<(), NodeSignatureError> {
    verify_node(
        node,
        &delete_node_string(&req.pubkey, strs(&req.messages), strs(&r.deleted)),
        &r.signature,
        "delete",
    )
}

fn sign_ns_op(
    node: &Ed25519Keypair,
    account: &AccountId,
    value: u64,
    hashes: &HashesByNamespace,
) -> Signature {
    let all = hashes.sorted_all();
    sign_node(
        node,
        &namespace_op_node_string(account, value, all.into_iter().map(MessageHash::as_str)),
    )
}

fn verify_ns_op(
    node: &Ed25519Public,
    account: &AccountId,
    value: u64,
    hashes: &HashesByNamespace,
    sig: &Signature,
    what: &'static str,
) -> Result<(), NodeSignatureError> {
    let all = hashes.sorted_all();
    verify_node(
        node,
        &namespace_op_node_string(account, value, all.into_iter().map(MessageHash::as_str)),
        sig,
        what,
    )
}

/// Node side: the signed `delete_all` result.
pub fn sign_delete_all_result(
    node: &Ed25519Keypair,
    req: &DeleteAllParams,
    deleted: HashesByNamespace,
) -> DeleteAllResult {
    let deleted = sort_by_ns(deleted);
    let signature = sign_ns_op(node, &req.pubkey, req.timestamp, &deleted);
    DeleteAllResult { deleted, signature }
}

/// Client side: checks a `delete_all` result.
pub fn verify_delete_all_result(
    node: &Ed25519Public,
    req: &DeleteAllParams,
    r: &DeleteAllResult,
) -> Result<(), NodeSignatureError> {
    verify_ns_op(
        node,
        &req.pubkey,
        req.timestamp,
        &r.deleted,
        &r.signature,
        "delete_all",
    )
}

/// Node side: the signed `delete_before` result.
pub fn sign_delete_before_result(
    node: &Ed25519Keypair,
    req: &DeleteBeforeParams,
    deleted: HashesByNamespace,
) -> DeleteAllResult {
    let deleted = sort_by_ns(deleted);
    let signature = sign_ns_op(node, &req.pubkey, req.before, &deleted);
    DeleteAllResult { deleted, signature }
}

/// Client side: checks a `delete_before` result.
pub fn verify_delete_before_result(
    node: &Ed25519Public,
    req: &DeleteBeforeParams,
    r: &DeleteAllResult,
) -> Result<(), NodeSignatureError> {
    verify_ns_op(
        node,
        &req.pubkey,
        req.before,
        &r.deleted,
        &r.signature,
        "delete_before",
    )
}

/// Node side: the signed `expire_all` result.
pub fn sign_expire_all_result(
    node: &Ed25519Keypair,
    req: &ExpireAllParams,
    updated: HashesByNamespace,
) -> ExpireAllResult {
    let updated = sort_by_ns(updated);
    let signature = sign_ns_op(node, &req.pubkey, req.expiry, &updated);
    ExpireAllResult { updated, signature }
}

/// Client side: checks an `expire_all` result.
pub fn verify_expire_all_result(
    node: &Ed25519Public,
    req: &ExpireAllParams,
    r: &ExpireAllResult,
) -> Result<(), NodeSignatureError> {
    verify_ns_op(
        node,
        &req.pubkey,
        req.expiry,
        &r.updated,
        &r.signature,
        "expire_all",
    )
}

fn expire_string_of(req: &ExpireParams, r: &ExpireResult) -> Vec<u8> {
    let unchanged = r.unchanged.iter().flatten().map(|(h, e)| (h.as_str(), *e));
    expire_node_string(
        &req.pubkey,
        r.expiry.values(),
        strs(&req.messages),
        strs(&r.updated),
        unchanged,
    )
}

/// Node side: signs an `expire` result whose `updated`, `unchanged` and
/// `expiry` fields the node has filled in (`updated` is sorted here, with
/// per-message expiries kept aligned).
pub fn sign_expire_result(
    node: &Ed25519Keypair,
    req: &ExpireParams,
    mut r: ExpireResult,
) -> ExpireResult {
    if let super::types::Expiries::PerMessage(v) = &r.expiry {
        if v.len() == r.updated.len() {
            let mut pairs: Vec<(MessageHash, u64)> =
                r.updated.drain(..).zip(v.iter().copied()).collect();
            pairs.sort();
            let (h, e): (Vec<_>, Vec<_>) = pairs.into_iter().unzip();
            r.updated = h;
            r.expiry = super::types::Expiries::PerMessage(e);
        }
    } else {
        r.updated.sort();
    }
    r.signature = sign_node(node, &expire_string_of(req, &r));
    r
}

/// Client side: checks an `expire` result against its request.
pub fn verify_expire_result(
    node: &Ed25519Public,
    req: &ExpireParams,
    r: &ExpireResult,
) -> Result<(), NodeSignatureError> {
    verify_node(node, &expire_string_of(req, r), &r.signature, "expire")
}

/// Node side: the signed `revoke_subaccount` result.
pub fn sign_revoke_result(
    node: &Ed25519Keypair,
    req: &RevokeSubaccountParams,
    count: u64,
) -> RevocationResult {
    let signature = sign_node(
        node,
        &revocation_node_string(&req.pubkey, req.timestamp, req.revoke.as_slice()),
    );
    RevocationResult { count, signature }
}

/// Client side: checks a `revoke_subaccount` result.
pub fn verify_revoke_result(
    node: &Ed25519Public,
    req: &RevokeSubaccountParams,
    r: &RevocationResult,
) -> Result<(), NodeSignatureError> {
    verify_node(
        node,
        &revocation_node_string(&req.pubkey, req.timestamp, req.revoke.as_slice()),
        &r.signature,
        "revoke_subaccount",
    )
}

/// Node side: the signed `unrevoke_subaccount` result.
pub fn sign_unrevoke_result(
    node: &Ed25519Keypair,
    req: &UnrevokeSubaccountParams,
    count: u64,
) -> RevocationResult {
    let signature = sign_node(
        node,
        &revocation_node_string(&req.pubkey, req.timestamp, req.unrevoke.as_slice()),
    );
    RevocationResult { count, signature }
}

/// Client side: checks an `unrevoke_subaccount` result.
pub fn verify_unrevoke_result(
    node: &Ed25519Public,
    req: &UnrevokeSubaccountParams,
    r: &RevocationResult,
) -> Result<(), NodeSignatureError> {
    verify_node(
        node,
        &revocation_node_string(&req.pubkey, req.timestamp, req.unrevoke.as_slice()),
        &r.signature,
        "unrevoke_subaccount",
    )
}

#[cfg(test)]
mod tests;
