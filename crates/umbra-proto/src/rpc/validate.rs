//! Per-method request validation (`storage-rpc.md` §2, §4, §5, §6, §9): the
//! single source of truth the node calls after parsing (`400`, in
//! [`super::types`]) and after its swarm-ownership check (`421`).
//!
//! Each `validate_*` function applies, in the order of §9.1, the TTL range
//! (`403`), the time tolerances (`406`) and authentication (`401`), and
//! returns a `Validated*` value holding everything the node needs to apply
//! the request. All of them are pure: time is the `now_ms` argument and the
//! revocation list is a predicate in [`AuthEnv`].
//!
//! The same functions check a tombstone's proof (`super::tombstone_proof`)
//! with [`Origin::CatchUp`], which skips only the time-freshness windows.

use super::hash::{MessageHash, message_hash};
use super::limits::{
    Origin, RetrieveLimits, check_delete_before, check_expire_all_expiry, check_expire_expiry,
    check_signature_time, check_store_times, check_ttl, clamp_expire,
};
use super::namespace::{Namespace, NamespaceSel};
use super::sign::{
    AuthParams, AuthRule, Authorized, ExpireMode, Perms, SubaccountToken, nothing_revoked,
    verify_auth,
};
use super::status::RpcError;
use super::types::{
    DeleteAllParams, DeleteBeforeParams, DeleteParams, ExpireAllParams, ExpireParams, Expiries,
    GetExpiriesParams, RetrieveParams, RevokeSubaccountParams, StoreParams,
    UnrevokeSubaccountParams,
};
use crate::identity::AccountId;

/// The node-side context of a validation.
#[derive(Clone, Copy)]
pub struct AuthEnv<'a> {
    /// Client request or forwarded copy (tolerances of §4).
    pub origin: Origin,
    /// The account's subaccount revocation list (§2.3).
    pub is_revoked: &'a dyn Fn(&SubaccountToken) -> bool,
}

impl std::fmt::Debug for AuthEnv<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthEnv")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl AuthEnv<'static> {
    /// A client request for an account with no revoked tokens.
    pub const CLIENT: AuthEnv<'static> = AuthEnv {
        origin: Origin::Client,
        is_revoked: &nothing_revoked,
    };
    /// A forwarded request for an account with no revoked tokens.
    pub const FORWARDED: AuthEnv<'static> = AuthEnv {
        origin: Origin::Forwarded,
        is_revoked: &nothing_revoked,
    };
}

impl<'a> AuthEnv<'a> {
    fn rule(&self, perms: Perms) -> AuthRule<'a> {
        AuthRule {
            perms,
            allow_subaccount: true,
            check_revocation: true,
            is_revoked: self.is_revoked,
        }
    }
}

fn require_signature(auth: &AuthParams) -> Result<(), RpcError> {
    if auth.signature.is_none() {
        return Err(RpcError::unauthorized("signature is missing"));
    }
    Ok(())
}

/// A `store` that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedStore {
    /// The account.
    pub account: AccountId,
    /// The namespace.
    pub namespace: Namespace,
    /// Message timestamp.
    pub timestamp: u64,
    /// Requested expiry (`timestamp + ttl` or `expiry`).
    pub expiry: u64,
    /// The message bytes.
    pub data: Vec<u8>,
    /// The message hash (§7).
    pub hash: MessageHash,
    /// Public outbox: the account's other messages in this namespace are
    /// deleted first (§9.1 effect 1).
    pub replaces_others: bool,
    /// Who stored it.
    pub auth: Authorized,
}

/// Validates a parsed `store` (§9.1 steps 3–5): TTL (`403`), time
/// (`406`), auth (`401`; `406` for a bad `sig_timestamp`).
pub fn validate_store(
    p: &StoreParams,
    now_ms: u64,
    env: &AuthEnv<'_>,
) -> Result<ValidatedStore, RpcError> {
    let expiry = p.requested_expiry();
    let ttl = expiry
        .checked_sub(p.timestamp)
        .ok_or_else(|| RpcError::forbidden("expiry is before timestamp"))?;
    check_ttl(p.namespace, ttl)?;
    if env.origin.checks_freshness() {
        check_store_times(p.timestamp, expiry, now_ms)?;
    }
    let auth = if p.namespace.is_public_inbox() {
        Authorized::Public
    } else {
        require_signature(&p.auth)?;
        check_signature_time(
            "sig_timestamp",
            p.effective_sig_timestamp(),
            now_ms,
            env.origin,
        )?;
        let perms = if p.namespace.is_public_outbox() {
            Perms::WRITE | Perms::DELETE
        } else {
            Perms::WRITE
        };
        verify_auth(&p.pubkey, &p.auth, &p.signed_string(), env.rule(perms))?
    };
    Ok(ValidatedStore {
        account: p.pubkey,
        namespace: p.namespace,
        timestamp: p.timestamp,
        expiry,
        hash: message_hash(&p.pubkey, p.namespace, &p.data.0),
        data: p.data.0.clone(),
        replaces_others: p.namespace.is_public_outbox(),
        auth,
    })
}

/// A `retrieve` that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedRetrieve {
    /// The account.
    pub account: AccountId,
    /// The namespace.
    pub namespace: Namespace,
    /// Start after this hash (`None` = from the start).
    pub last_hash: Option<MessageHash>,
    /// Count and size limits.
    pub limits: RetrieveLimits,
    /// Who asked.
    pub auth: Authorized,
}

/// Validates a parsed `retrieve` (§9.2): no auth for public outboxes;
/// otherwise `timestamp` ±60 s (`406`) and a read signature (`401`), with
/// revocation skipped in unrevocable namespaces.
pub fn validate_retrieve(
    p: &RetrieveParams,
    now_ms: u64,
    env: &AuthEnv<'_>,
) -> Result<ValidatedRetrieve, RpcError> {
    let auth = if p.namespace.is_public_outbox() {
        Authorized::Public
    } else {
        require_signature(&p.auth)?;
        let ts = p
            .timestamp
            .ok_or_else(|| RpcError::bad_request("timestamp is required for a signed retrieve"))?;
        check_signature_time("timestamp", ts, now_ms, env.origin)?;
        let rule = AuthRule {
            check_revocation: !p.namespace.is_unrevocable(),
            ..env.rule(Perms::READ)
        };
        verify_auth(
            &p.pubkey,
            &p.auth,
            &super::sign::retrieve_string(p.namespace, ts),
            rule,
        )?
    };
    Ok(ValidatedRetrieve {
        account: p.pubkey,
        namespace: p.namespace,
        last_hash: p.last_hash.clone(),
        limits: RetrieveLimits::new(p.max_count, p.max_size),
        auth,
    })
}

/// A `delete` that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedDelete {
    /// The account.
    pub account: AccountId,
    /// Hashes to delete, in request order.
    pub messages: Vec<MessageHash>,
    /// `404` when nothing was deleted anywhere.
    pub required: bool,
    /// Who asked.
    pub auth: Authorized,
}

/// Validates a parsed `delete` (§9.3): a delete signature (`401`).
pub fn validate_delete(
    p: &DeleteParams,
    _now_ms: u64,
    env: &AuthEnv<'_>,
) -> Result<ValidatedDelete, RpcError> {
    let auth = verify_auth(
        &p.pubkey,
        &p.auth,
        &p.signed_string(),
        env.rule(Perms::DELETE),
    )?;
    Ok(ValidatedDelete {
        account: p.pubkey,
        messages: p.messages.clone(),
        required: p.required,
        auth,
    })
}

/// A `delete_all`, `delete_before` or `expire_all` that passed every check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidatedNamespaceOp {
    /// The account.
    pub account: AccountId,
    /// One namespace or all.
    pub namespace: NamespaceSel,
    /// `delete_all`: the signed timestamp; `delete_before`: `before`;
    /// `expire_all`: the new expiry.
    pub value: u64,
    /// Who asked.
    pub auth: Authorized,
}

/// Validates a parsed `delete_all` (§9.4): `timestamp` ±60 s (`406`),
/// delete signature (`401`).
pub fn validate_delete_all(
    p: &DeleteAllParams,
    now_ms: u64,
    env: &AuthEnv<'_>,
) -> Result<ValidatedNamespaceOp, RpcError> {
    require_signature(&p.auth)?;
    check_signature_time("timestamp", p.timestamp, now_ms, env.origin)?;
    let auth = verify_auth(
        &p.pubkey,
        &p.auth,
        &p.signed_string(),
        env.rule(Perms::DELETE),
    )?;
    Ok(ValidatedNamespaceOp {
        account: p.pubkey,
        namespace: p.namespace,
        value: p.timestamp,
        auth,
    })
}

/// Validates a parsed `delete_before` (§9.5): `before ≤ now + 60 s`
/// (`406`), delete signature (`401`).
pub fn validate_delete_before(
    p: &DeleteBeforeParams,
    now_ms: u64,
    env: &AuthEnv<'_>,
) -> Result<ValidatedNamespaceOp, RpcError> {
    require_signature(&p.auth)?;
    check_delete_before(p.before, now_ms)?;
    let auth = verify_auth(
        &p.pubkey,
        &p.auth,
        &p.signed_string(),
        env.rule(Perms::DELETE),
    )?;
    Ok(ValidatedNamespaceOp {
        account: p.pubkey,
        namespace: p.namespace,
        value: p.before,
        auth,
    })
}

/// Validates a parsed `expire_all` (§9.7): `expiry ≥ now − 60 s` (70 s
/// forwarded) (`406`), delete signature (`401`).
pub fn validate_expire_all(
    p: &ExpireAllParams,
    now_ms: u64,
    env: &AuthEnv<'_>,
) -> Result<ValidatedNamespaceOp, RpcError> {
    require_signature(&p.auth)?;
    check_expire_all_expiry(p.expiry, now_ms, env.origin)?;
    let auth = verify_auth(
        &p.pubkey,
        &p.auth,
        &p.signed_string(),
        env.rule(Perms::DELETE),
    )?;
    Ok(ValidatedNamespaceOp {
        account: p.pubkey,
        namespace: p.namespace,
        value: p.expiry,
        auth,
    })
}

/// An `expire` that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedExpire {
    /// The account.
    pub account: AccountId,
    /// Hashes, in request order.
    pub messages: Vec<MessageHash>,
    /// The effective mode (a subaccount without delete is `Extend`).
    pub mode: ExpireMode,
    /// The applied (clamped) expiries, aligned with `messages` when
    /// per-message.
    pub expiries: Expiries,
    /// Who asked.
    pub auth: Authorized,
}

impl ValidatedExpire {
    /// The applied expiry of the `i`-th requested hash.
    pub fn expiry_for(&self, i: usize) -> Option<u64> {
        match &self.expiries {
            Expiries::Single(e) => (i < self.messages.len()).then_some(*e),
            Expiries::PerMessage(v) => v.get(i).copied(),
        }
    }
}

/// Validates a parsed `expire` (§9.6): every expiry ≥ now − 60 s (`406`);
/// write signature, plus delete for `shorten` (`401`). Expiries are
/// clamped to now + 30 days.
pub fn validate_expire(
    p: &ExpireParams,
    now_ms: u64,
    env: &AuthEnv<'_>,
) -> Result<ValidatedExpire, RpcError> {
    require_signature(&p.auth)?;
    if env.origin.checks_freshness() {
        for &e in p.expiry.values() {
            check_expire_expiry(e, now_ms)?;
        }
    }
    let requested = p.requested_mode();
    let perms = if requested == ExpireMode::Shorten {
        Perms::WRITE | Perms::DELETE
    } else {
        Perms::WRITE
    };
    let auth = verify_auth(&p.pubkey, &p.auth, &p.signed_string(), env.rule(perms))?;
    let mode = if requested == ExpireMode::Any && !auth.perms().contains(Perms::DELETE) {
        ExpireMode::Extend
    } else {
        requested
    };
    let expiries = match &p.expiry {
        Expiries::Single(e) => Expiries::Single(clamp_expire(*e, now_ms)),
        Expiries::PerMessage(v) => {
            Expiries::PerMessage(v.iter().map(|&e| clamp_expire(e, now_ms)).collect())
        }
    };
    Ok(ValidatedExpire {
        account: p.pubkey,
        messages: p.messages.clone(),
        mode,
        expiries,
        auth,
    })
}

/// A `get_expiries` that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedGetExpiries {
    /// The account.
    pub account: AccountId,
    /// Hashes asked about.
    pub messages: Vec<MessageHash>,
    /// Who asked.
    pub auth: Authorized,
}

/// Validates a parsed `get_expiries` (§9.8): `timestamp` ±60 s (`406`),
/// read signature (`401`).
pub fn validate_get_expiries(
    p: &GetExpiriesParams,
    now_ms: u64,
    env: &AuthEnv<'_>,
) -> Result<ValidatedGetExpiries, RpcError> {
    require_signature(&p.auth)?;
    check_signature_time("timestamp", p.timestamp, now_ms, env.origin)?;
    let auth = verify_auth(
        &p.pubkey,
        &p.auth,
        &p.signed_string(),
        env.rule(Perms::READ),
    )?;
    Ok(ValidatedGetExpiries {
        account: p.pubkey,
        messages: p.messages.clone(),
        auth,
    })
}

/// A `revoke_subaccount` / `unrevoke_subaccount` that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedRevocation {
    /// The `03` account.
    pub account: AccountId,
    /// The signed timestamp.
    pub timestamp: u64,
    /// Tokens, in request order.
    pub tokens: Vec<SubaccountToken>,
}

fn validate_revocation(
    account: &AccountId,
    auth: &AuthParams,
    timestamp: u64,
    tokens: &[SubaccountToken],
    signed: &[u8],
    now_ms: u64,
    env: &AuthEnv<'_>,
) -> Result<ValidatedRevocation, RpcError> {
    require_signature(auth)?;
    check_signature_time("timestamp", timestamp, now_ms, env.origin)?;
    let rule = AuthRule {
        allow_subaccount: false,
        ..env.rule(Perms::NONE)
    };
    verify_auth(account, auth, signed, rule)?;
    Ok(ValidatedRevocation {
        account: *account,
        timestamp,
        tokens: tokens.to_vec(),
    })
}

/// Validates a parsed `revoke_subaccount` (§9.9): `timestamp` ±60 s
/// (`406`), the account key's signature (`401`; subaccounts refused).
pub fn validate_revoke_subaccount(
    p: &RevokeSubaccountParams,
    now_ms: u64,
    env: &AuthEnv<'_>,
) -> Result<ValidatedRevocation, RpcError> {
    validate_revocation(
        &p.pubkey,
        &p.auth,
        p.timestamp,
        p.revoke.as_slice(),
        &p.signed_string(),
        now_ms,
        env,
    )
}

/// Validates a parsed `unrevoke_subaccount` (§9.9), as
/// [`validate_revoke_subaccount`].
pub fn validate_unrevoke_subaccount(
    p: &UnrevokeSubaccountParams,
    now_ms: u64,
    env: &AuthEnv<'_>,
) -> Result<ValidatedRevocation, RpcError> {
    validate_revocation(
        &p.pubkey,
        &p.auth,
        p.timestamp,
        p.unrevoke.as_slice(),
        &p.signed_string(),
        now_ms,
        env,
    )
}

#[cfg(test)]
mod tests;
