//! Request and response types of every storage RPC method
//! (`storage-rpc.md` §1.1, §3, §8.2, §9), with the exact JSON field names
//! and encodings.
//!
//! Parsing is strict as §3 and §11 require: integers must be JSON integers
//! (never strings), timestamps must be in milliseconds, there are no
//! parameter aliases, a JSON `null` is a wrong type, and a parameter of the
//! wrong type is `400`. Unknown parameters are ignored. Nothing here panics
//! on any input.
//!
//! Use [`Request::parse_body`] for a whole request body, then the
//! validators of [`super::validate`] once swarm ownership is known.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::encoding::{
    Base64Bytes, Ed25519Hex, MessageData, Signature, X25519Hex, non_null, opt_timestamp, timestamp,
};
use super::hash::MessageHash;
use super::limits::{
    MIN_TIMESTAMP_MS, PROXY_MAX_URL_LEN, check_body_size, check_hash_count, check_subrequest_count,
    check_token_count,
};
use super::namespace::{Namespace, NamespaceSel};
use super::sign::{self, AuthParams, ExpireMode, SubaccountToken};
use super::status::{RpcError, StatusCode};
use crate::identity::{AccountId, IdPrefix};

/// The methods of §9.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `store` (§9.1).
    Store,
    /// `retrieve` (§9.2).
    Retrieve,
    /// `delete` (§9.3).
    Delete,
    /// `delete_all` (§9.4).
    DeleteAll,
    /// `delete_before` (§9.5).
    DeleteBefore,
    /// `expire` (§9.6).
    Expire,
    /// `expire_all` (§9.7).
    ExpireAll,
    /// `get_expiries` (§9.8).
    GetExpiries,
    /// `revoke_subaccount` (§9.9).
    RevokeSubaccount,
    /// `unrevoke_subaccount` (§9.9).
    UnrevokeSubaccount,
    /// `get_swarm` (§9.10).
    GetSwarm,
    /// `info` (§9.11).
    Info,
    /// `get_registry` (§9.12).
    GetRegistry,
    /// `batch` (§9.13).
    Batch,
    /// `sequence` (§9.13).
    Sequence,
    /// `proxy_fetch` (§9.14).
    ProxyFetch,
}

impl Method {
    /// Every method.
    pub const ALL: [Method; 16] = [
        Method::Store,
        Method::Retrieve,
        Method::Delete,
        Method::DeleteAll,
        Method::DeleteBefore,
        Method::Expire,
        Method::ExpireAll,
        Method::GetExpiries,
        Method::RevokeSubaccount,
        Method::UnrevokeSubaccount,
        Method::GetSwarm,
        Method::Info,
        Method::GetRegistry,
        Method::Batch,
        Method::Sequence,
        Method::ProxyFetch,
    ];

    /// The wire name.
    pub const fn name(self) -> &'static str {
        match self {
            Method::Store => "store",
            Method::Retrieve => "retrieve",
            Method::Delete => "delete",
            Method::DeleteAll => "delete_all",
            Method::DeleteBefore => "delete_before",
            Method::Expire => "expire",
            Method::ExpireAll => "expire_all",
            Method::GetExpiries => "get_expiries",
            Method::RevokeSubaccount => "revoke_subaccount",
            Method::UnrevokeSubaccount => "unrevoke_subaccount",
            Method::GetSwarm => "get_swarm",
            Method::Info => "info",
            Method::GetRegistry => "get_registry",
            Method::Batch => "batch",
            Method::Sequence => "sequence",
            Method::ProxyFetch => "proxy_fetch",
        }
    }

    /// The method of a wire name (exact, case-sensitive; no aliases).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Swarm-recursive methods (§8.1): forwarded to every swarm member.
    pub const fn is_recursive(self) -> bool {
        matches!(
            self,
            Method::Store
                | Method::Delete
                | Method::DeleteAll
                | Method::DeleteBefore
                | Method::Expire
                | Method::ExpireAll
                | Method::RevokeSubaccount
                | Method::UnrevokeSubaccount
        )
    }

    /// Whether the method may be a `batch`/`sequence` subrequest (§9.13).
    pub const fn allowed_in_batch(self) -> bool {
        !matches!(self, Method::Batch | Method::Sequence | Method::ProxyFetch)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_default_ns(n: &Namespace) -> bool {
    n.0 == 0
}

fn is_default_sel(n: &NamespaceSel) -> bool {
    *n == NamespaceSel::default()
}

/// `pubkey` must be a `05` or `03` account (§2.1, `400`).
pub fn check_account(account: &AccountId) -> Result<(), RpcError> {
    match account.prefix() {
        IdPrefix::Standard | IdPrefix::Group => Ok(()),
        _ => Err(RpcError::bad_request("pubkey must be a 05 or 03 account")),
    }
}

fn from_params<T: DeserializeOwned>(params: &Value) -> Result<T, RpcError> {
    T::deserialize(params).map_err(|e| RpcError::bad_request(format!("invalid params: {e}")))
}

/// Every method's params type: strict parsing plus the cross-field rules
/// (all `400`).
pub trait Params: Sized + Serialize + DeserializeOwned {
    /// The method these params belong to.
    const METHOD: Method;

    /// The rules serde cannot express (exactly-one-of, counts, prefixes).
    fn check(&self) -> Result<(), RpcError>;

    /// Parses a `params` object.
    fn parse(params: &Value) -> Result<Self, RpcError> {
        if !params.is_object() {
            return Err(RpcError::bad_request("params must be a JSON object"));
        }
        let p: Self = from_params(params)?;
        p.check()?;
        Ok(p)
    }
}

/// `store` params (§9.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreParams {
    /// The account.
    pub pubkey: AccountId,
    /// Message timestamp (ms).
    #[serde(deserialize_with = "timestamp")]
    pub timestamp: u64,
    /// TTL in ms (exactly one of `ttl` and `expiry`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "non_null"
    )]
    pub ttl: Option<u64>,
    /// Absolute expiry in ms (exactly one of `ttl` and `expiry`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_timestamp"
    )]
    pub expiry: Option<u64>,
    /// The message bytes (base64 on the wire).
    pub data: MessageData,
    /// Namespace (default 0).
    #[serde(default, skip_serializing_if = "is_default_ns")]
    pub namespace: Namespace,
    /// Signature timestamp (defaults to `timestamp`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_timestamp"
    )]
    pub sig_timestamp: Option<u64>,
    /// Identity and signature fields.
    #[serde(flatten)]
    pub auth: AuthParams,
}

impl StoreParams {
    /// The expiry this request asks for: `expiry`, or `timestamp + ttl`.
    pub fn requested_expiry(&self) -> u64 {
        match (self.expiry, self.ttl) {
            (Some(e), _) => e,
            (None, Some(ttl)) => self.timestamp.saturating_add(ttl),
            (None, None) => self.timestamp,
        }
    }

    /// The signature timestamp: `sig_timestamp`, or `timestamp`.
    pub fn effective_sig_timestamp(&self) -> u64 {
        self.sig_timestamp.unwrap_or(self.timestamp)
    }

    /// The signed string (§2.4).
    pub fn signed_string(&self) -> Vec<u8> {
        sign::store_string(self.namespace, self.effective_sig_timestamp())
    }
}

impl Params for StoreParams {
    const METHOD: Method = Method::Store;
    fn check(&self) -> Result<(), RpcError> {
        check_account(&self.pubkey)?;
        if self.ttl.is_some() == self.expiry.is_some() {
            return Err(RpcError::bad_request(
                "exactly one of ttl and expiry is required",
            ));
        }
        if let Some(ttl) = self.ttl
            && self.timestamp.checked_add(ttl).is_none()
        {
            return Err(RpcError::bad_request(
                "timestamp + ttl does not fit in 64 bits",
            ));
        }
        Ok(())
    }
}

fn last_hash<'de, D: Deserializer<'de>>(d: D) -> Result<Option<MessageHash>, D::Error> {
    let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
    if s.is_empty() {
        Ok(None)
    } else {
        MessageHash::parse(&s)
            .map(Some)
            .map_err(serde::de::Error::custom)
    }
}

/// `retrieve` params (§9.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetrieveParams {
    /// The account.
    pub pubkey: AccountId,
    /// Namespace (default 0).
    #[serde(default, skip_serializing_if = "is_default_ns")]
    pub namespace: Namespace,
    /// Return messages stored after this one (empty string or absent =
    /// from the start).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "last_hash"
    )]
    pub last_hash: Option<MessageHash>,
    /// At most this many messages (0 = unset).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "non_null"
    )]
    pub max_count: Option<u64>,
    /// Byte budget (0 = unset; `−k` = `RETRIEVE_MAX_SIZE / k`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "non_null"
    )]
    pub max_size: Option<i64>,
    /// Signature timestamp (required with auth).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_timestamp"
    )]
    pub timestamp: Option<u64>,
    /// Identity and signature fields.
    #[serde(flatten)]
    pub auth: AuthParams,
}

impl RetrieveParams {
    /// The signed string (§2.4), if `timestamp` is present.
    pub fn signed_string(&self) -> Option<Vec<u8>> {
        self.timestamp
            .map(|t| sign::retrieve_string(self.namespace, t))
    }
}

impl Params for RetrieveParams {
    const METHOD: Method = Method::Retrieve;
    fn check(&self) -> Result<(), RpcError> {
        check_account(&self.pubkey)
    }
}

/// `delete` params (§9.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteParams {
    /// The account.
    pub pubkey: AccountId,
    /// 1 … 1,000 hashes.
    pub messages: Vec<MessageHash>,
    /// With `true`, nothing deleted anywhere is `404`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub required: bool,
    /// Identity and signature fields.
    #[serde(flatten)]
    pub auth: AuthParams,
}

impl DeleteParams {
    /// The signed string (§2.4).
    pub fn signed_string(&self) -> Vec<u8> {
        sign::delete_string(&self.messages)
    }
}

impl Params for DeleteParams {
    const METHOD: Method = Method::Delete;
    fn check(&self) -> Result<(), RpcError> {
        check_account(&self.pubkey)?;
        check_hash_count(self.messages.len())
    }
}

/// `delete_all` params (§9.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteAllParams {
    /// The account.
    pub pubkey: AccountId,
    /// Namespace or `"all"` (default 0).
    #[serde(default, skip_serializing_if = "is_default_sel")]
    pub namespace: NamespaceSel,
    /// Signature timestamp (±60 s).
    #[serde(deserialize_with = "timestamp")]
    pub timestamp: u64,
    /// Identity and signature fields.
    #[serde(flatten)]
    pub auth: AuthParams,
}

impl DeleteAllParams {
    /// The signed string (§2.4).
    pub fn signed_string(&self) -> Vec<u8> {
        sign::delete_all_string(self.namespace, self.timestamp)
    }
}

impl Params for DeleteAllParams {
    const METHOD: Method = Method::DeleteAll;
    fn check(&self) -> Result<(), RpcError> {
        check_account(&self.pubkey)
    }
}

/// `delete_before` params (§9.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteBeforeParams {
    /// The account.
    pub pubkey: AccountId,
    /// Namespace or `"all"` (default 0).
    #[serde(default, skip_serializing_if = "is_default_sel")]
    pub namespace: NamespaceSel,
    /// Delete messages with `timestamp ≤ before` (≤ now + 60 s).
    #[serde(deserialize_with = "timestamp")]
    pub before: u64,
    /// Identity and signature fields.
    #[serde(flatten)]
    pub auth: AuthParams,
}

impl DeleteBeforeParams {
    /// The signed string (§2.4).
    pub fn signed_string(&self) -> Vec<u8> {
        sign::delete_before_string(self.namespace, self.before)
    }
}

impl Params for DeleteBeforeParams {
    const METHOD: Method = Method::DeleteBefore;
    fn check(&self) -> Result<(), RpcError> {
        check_account(&self.pubkey)
    }
}

/// An expiry that is one integer or one integer per hash (`expire`'s
/// `expiry` param and result).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expiries {
    /// One expiry for every hash.
    Single(u64),
    /// One expiry per hash, aligned with the hash list.
    PerMessage(Vec<u64>),
}

impl Expiries {
    /// The values in order (one for [`Expiries::Single`]).
    pub fn values(&self) -> &[u64] {
        match self {
            Expiries::Single(e) => std::slice::from_ref(e),
            Expiries::PerMessage(v) => v,
        }
    }
}

impl Serialize for Expiries {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Expiries::Single(e) => s.serialize_u64(*e),
            Expiries::PerMessage(v) => v.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Expiries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Expiries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an expiry in ms or an array of them")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Expiries, E> {
                if v < MIN_TIMESTAMP_MS {
                    return Err(E::custom(super::encoding::NOT_MILLISECONDS));
                }
                Ok(Expiries::Single(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Expiries, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element::<u64>()? {
                    if v < MIN_TIMESTAMP_MS {
                        return Err(serde::de::Error::custom(super::encoding::NOT_MILLISECONDS));
                    }
                    out.push(v);
                }
                Ok(Expiries::PerMessage(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// `expire` params (§9.6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpireParams {
    /// The account.
    pub pubkey: AccountId,
    /// 1 … 1,000 hashes.
    pub messages: Vec<MessageHash>,
    /// One expiry, or one per hash.
    pub expiry: Expiries,
    /// Only shorten.
    #[serde(default, skip_serializing_if = "is_false")]
    pub shorten: bool,
    /// Only extend.
    #[serde(default, skip_serializing_if = "is_false")]
    pub extend: bool,
    /// Identity and signature fields.
    #[serde(flatten)]
    pub auth: AuthParams,
}

impl ExpireParams {
    /// The mode as requested by the flags (what the signed string holds).
    pub fn requested_mode(&self) -> ExpireMode {
        match (self.shorten, self.extend) {
            (true, _) => ExpireMode::Shorten,
            (false, true) => ExpireMode::Extend,
            (false, false) => ExpireMode::Any,
        }
    }

    /// The signed string (§2.4).
    pub fn signed_string(&self) -> Vec<u8> {
        sign::expire_string(self.requested_mode(), self.expiry.values(), &self.messages)
    }
}

impl Params for ExpireParams {
    const METHOD: Method = Method::Expire;
    fn check(&self) -> Result<(), RpcError> {
        check_account(&self.pubkey)?;
        check_hash_count(self.messages.len())?;
        if self.shorten && self.extend {
            return Err(RpcError::bad_request(
                "shorten and extend cannot both be given",
            ));
        }
        if let Expiries::PerMessage(v) = &self.expiry
            && v.len() != self.messages.len()
        {
            return Err(RpcError::bad_request(
                "expiry must hold exactly one entry per hash",
            ));
        }
        Ok(())
    }
}

/// `expire_all` params (§9.7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpireAllParams {
    /// The account.
    pub pubkey: AccountId,
    /// Namespace or `"all"` (default 0).
    #[serde(default, skip_serializing_if = "is_default_sel")]
    pub namespace: NamespaceSel,
    /// The new (shorter) expiry.
    #[serde(deserialize_with = "timestamp")]
    pub expiry: u64,
    /// Identity and signature fields.
    #[serde(flatten)]
    pub auth: AuthParams,
}

impl ExpireAllParams {
    /// The signed string (§2.4).
    pub fn signed_string(&self) -> Vec<u8> {
        sign::expire_all_string(self.namespace, self.expiry)
    }
}

impl Params for ExpireAllParams {
    const METHOD: Method = Method::ExpireAll;
    fn check(&self) -> Result<(), RpcError> {
        check_account(&self.pubkey)
    }
}

/// `get_expiries` params (§9.8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetExpiriesParams {
    /// The account.
    pub pubkey: AccountId,
    /// 1 … 1,000 hashes.
    pub messages: Vec<MessageHash>,
    /// Signature timestamp (±60 s).
    #[serde(deserialize_with = "timestamp")]
    pub timestamp: u64,
    /// Identity and signature fields.
    #[serde(flatten)]
    pub auth: AuthParams,
}

impl GetExpiriesParams {
    /// The signed string (§2.4).
    pub fn signed_string(&self) -> Vec<u8> {
        sign::get_expiries_string(self.timestamp, &self.messages)
    }
}

impl Params for GetExpiriesParams {
    const METHOD: Method = Method::GetExpiries;
    fn check(&self) -> Result<(), RpcError> {
        check_account(&self.pubkey)?;
        check_hash_count(self.messages.len())
    }
}

/// One token or a list of tokens (`revoke` / `unrevoke`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Tokens {
    /// A single token.
    One(SubaccountToken),
    /// A list of tokens.
    Many(Vec<SubaccountToken>),
}

impl Tokens {
    /// The tokens in request order.
    pub fn as_slice(&self) -> &[SubaccountToken] {
        match self {
            Tokens::One(t) => std::slice::from_ref(t),
            Tokens::Many(v) => v,
        }
    }
}

fn check_revocation_params(
    pubkey: &AccountId,
    tokens: &Tokens,
    auth: &AuthParams,
) -> Result<(), RpcError> {
    if pubkey.prefix() != IdPrefix::Group {
        return Err(RpcError::bad_request("pubkey must be a 03 account"));
    }
    check_token_count(tokens.as_slice().len())?;
    auth.check_shape(pubkey)
}

/// `revoke_subaccount` params (§9.9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeSubaccountParams {
    /// The `03` account.
    pub pubkey: AccountId,
    /// Tokens to revoke (1 … 50).
    pub revoke: Tokens,
    /// Signature timestamp (±60 s).
    #[serde(deserialize_with = "timestamp")]
    pub timestamp: u64,
    /// Signature fields (account key only).
    #[serde(flatten)]
    pub auth: AuthParams,
}

impl RevokeSubaccountParams {
    /// The signed string (§2.4).
    pub fn signed_string(&self) -> Vec<u8> {
        sign::revoke_subaccount_string(self.timestamp, self.revoke.as_slice())
    }
}

impl Params for RevokeSubaccountParams {
    const METHOD: Method = Method::RevokeSubaccount;
    fn check(&self) -> Result<(), RpcError> {
        check_revocation_params(&self.pubkey, &self.revoke, &self.auth)
    }
}

/// `unrevoke_subaccount` params (§9.9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnrevokeSubaccountParams {
    /// The `03` account.
    pub pubkey: AccountId,
    /// Tokens to unrevoke (1 … 50).
    pub unrevoke: Tokens,
    /// Signature timestamp (±60 s).
    #[serde(deserialize_with = "timestamp")]
    pub timestamp: u64,
    /// Signature fields (account key only).
    #[serde(flatten)]
    pub auth: AuthParams,
}

impl UnrevokeSubaccountParams {
    /// The signed string (§2.4).
    pub fn signed_string(&self) -> Vec<u8> {
        sign::unrevoke_subaccount_string(self.timestamp, self.unrevoke.as_slice())
    }
}

impl Params for UnrevokeSubaccountParams {
    const METHOD: Method = Method::UnrevokeSubaccount;
    fn check(&self) -> Result<(), RpcError> {
        check_revocation_params(&self.pubkey, &self.unrevoke, &self.auth)
    }
}

/// `get_swarm` params (§9.10).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetSwarmParams {
    /// The account.
    pub pubkey: AccountId,
}

impl Params for GetSwarmParams {
    const METHOD: Method = Method::GetSwarm;
    fn check(&self) -> Result<(), RpcError> {
        check_account(&self.pubkey)
    }
}

/// `info` params (§9.11): none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InfoParams {}

impl Params for InfoParams {
    const METHOD: Method = Method::Info;
    fn check(&self) -> Result<(), RpcError> {
        Ok(())
    }
}

/// `get_registry` params (§9.12).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetRegistryParams {
    /// The caller's current epoch.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "non_null"
    )]
    pub epoch: Option<u64>,
}

impl Params for GetRegistryParams {
    const METHOD: Method = Method::GetRegistry;
    fn check(&self) -> Result<(), RpcError> {
        Ok(())
    }
}

/// One subrequest of `batch`/`sequence`, kept as raw JSON so the node can
/// forward it unchanged (swarms §6) and answer each with its own status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubRequest {
    /// The method name.
    pub method: String,
    /// The params object (absent = `{}`).
    #[serde(default)]
    pub params: Map<String, Value>,
}

impl SubRequest {
    /// Builds a subrequest from a parsed request.
    pub fn from_request(req: &Request) -> Self {
        let params = match req.params_json() {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        SubRequest {
            method: req.method().name().to_string(),
            params,
        }
    }

    /// Parses this subrequest (any failure is that subrequest's own status).
    pub fn parse(&self) -> Result<Request, RpcError> {
        Request::from_parts(
            &self.method,
            &Value::Object(self.params.clone()),
            Via::Batch,
        )
    }

    /// The JSON `{"method", "params"}` of this subrequest.
    pub fn to_json(&self) -> Value {
        serde_json::json!({"method": self.method, "params": self.params})
    }
}

/// `batch` / `sequence` params (§9.13).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchParams {
    /// 1 … 20 subrequests.
    pub requests: Vec<SubRequest>,
}

impl Params for BatchParams {
    const METHOD: Method = Method::Batch;
    fn check(&self) -> Result<(), RpcError> {
        check_subrequest_count(self.requests.len())?;
        for r in &self.requests {
            if let Some(m) = Method::from_name(&r.method)
                && !m.allowed_in_batch()
            {
                return Err(RpcError::bad_request(format!("{m} cannot be a subrequest")));
            }
        }
        Ok(())
    }
}

/// `proxy_fetch`'s `accept` (§9.14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyAccept {
    /// `"html"`.
    Html,
    /// `"image"`.
    Image,
}

impl ProxyAccept {
    /// Whether a response `Content-Type` (its media type, parameters
    /// ignored, case-insensitive) is allowed (§9.14 rule 5).
    pub fn allows(self, content_type: &str) -> bool {
        let media = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match self {
            ProxyAccept::Html => media == "text/html",
            ProxyAccept::Image => matches!(
                media.as_str(),
                "image/gif"
                    | "image/x-icon"
                    | "image/vnd.microsoft.icon"
                    | "image/jpeg"
                    | "image/png"
                    | "image/webp"
            ),
        }
    }
}

/// `proxy_fetch` params (§9.14).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyFetchParams {
    /// Absolute URL, at most 2,048 characters.
    pub url: String,
    /// What is expected.
    pub accept: ProxyAccept,
}

/// The parts of a `proxy_fetch` URL that passed §9.14 rule 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyTarget {
    /// The DNS host name (lowercase).
    pub host: String,
    /// The port (443).
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

/// Checks a `proxy_fetch` URL (§9.14 rule 1, `400`): `https`, port absent
/// or 443, a DNS host name (no IP literals, no user info).
pub fn check_proxy_url(url: &str) -> Result<ProxyTarget, RpcError> {
    let bad = |why: &str| RpcError::bad_request(format!("proxy_fetch url: {why}"));
    if url.chars().count() > PROXY_MAX_URL_LEN {
        return Err(bad("longer than 2048 characters"));
    }
    if url.bytes().any(|b| b <= b' ' || b >= 0x7f) {
        return Err(bad("contains spaces, control or non-ASCII characters"));
    }
    let rest = url
        .get(..8)
        .filter(|s| s.eq_ignore_ascii_case("https://"))
        .and_then(|_| url.get(8..))
        .ok_or_else(|| bad("the scheme must be https"))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.contains('@') {
        return Err(bad("user info is not allowed"));
    }
    if authority.starts_with('[') {
        return Err(bad("IP literals are not allowed"));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => {
            let port: u16 = p.parse().map_err(|_| bad("bad port"))?;
            (h, port)
        }
        None => (authority, 443),
    };
    if port != 443 {
        return Err(bad("the port must be 443"));
    }
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    if host.is_empty() || host.len() > 253 {
        return Err(bad("bad host name"));
    }
    let labels_ok = host.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    if !labels_ok {
        return Err(bad("bad host name"));
    }
    // A host whose last label is numeric is an IPv4 literal in some form
    // (WHATWG URL parsing), never a DNS name.
    if host
        .rsplit('.')
        .next()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()) || l.starts_with("0x"))
    {
        return Err(bad("IP literals are not allowed"));
    }
    let path = match tail.split_once('#') {
        Some((p, _)) => p,
        None => tail,
    };
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    Ok(ProxyTarget { host, port, path })
}

/// §9.14 rule 2: whether a resolved address must be refused (`400`):
/// loopback, private (RFC 1918, fc00::/7), link-local, CGNAT
/// (100.64.0.0/10), multicast, unspecified, or reserved/special-purpose.
/// IPv4-mapped IPv6 addresses are judged as their IPv4 address.
pub fn is_forbidden_proxy_address(addr: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match addr {
        IpAddr::V4(a) => {
            let o = a.octets();
            a.is_loopback()
                || a.is_private()
                || a.is_link_local()
                || a.is_multicast()
                || a.is_unspecified()
                || a.is_broadcast()
                || a.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || o[0] >= 240
        }
        IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                return is_forbidden_proxy_address(IpAddr::V4(v4));
            }
            let seg = a.segments();
            a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00
                || (seg[0] & 0xffc0) == 0xfe80
                || (seg[0] & 0xffc0) == 0xfec0
                || (seg[0] == 0x2001 && seg[1] == 0x0db8)
                || (seg[0] == 0x0064 && seg[1] == 0xff9b)
                || seg[0] == 0x0100
                || (seg[0] == 0
                    && seg[1] == 0
                    && seg[2] == 0
                    && seg[3] == 0
                    && seg[4] == 0
                    && seg[5] == 0)
        }
    }
}

impl Params for ProxyFetchParams {
    const METHOD: Method = Method::ProxyFetch;
    fn check(&self) -> Result<(), RpcError> {
        check_proxy_url(&self.url).map(|_| ())
    }
}

/// How a request reached the node, which decides what is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A direct HTTPS request from a client (`proxy_fetch` refused).
    Direct,
    /// The final destination of an onion request.
    Onion,
    /// A `batch`/`sequence` subrequest (no nesting, no `proxy_fetch`).
    Batch,
    /// A copy forwarded by a swarm peer (`/node/v1/swarm`).
    Forwarded,
}

/// A parsed request: one variant per method of §9.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub enum Request {
    Store(StoreParams),
    Retrieve(RetrieveParams),
    Delete(DeleteParams),
    DeleteAll(DeleteAllParams),
    DeleteBefore(DeleteBeforeParams),
    Expire(ExpireParams),
    ExpireAll(ExpireAllParams),
    GetExpiries(GetExpiriesParams),
    RevokeSubaccount(RevokeSubaccountParams),
    UnrevokeSubaccount(UnrevokeSubaccountParams),
    GetSwarm(GetSwarmParams),
    Info(InfoParams),
    GetRegistry(GetRegistryParams),
    Batch(BatchParams),
    Sequence(BatchParams),
    ProxyFetch(ProxyFetchParams),
}

impl Request {
    /// Parses a request body `{"method": …, "params": {…}}` (§1.1): `413`
    /// over 10 MiB, `400` for bad JSON, a missing or unknown method, a
    /// non-object `params` or bad params. Other top-level keys are ignored.
    /// An absent `params` is read as `{}`.
    pub fn parse_body(body: &[u8], via: Via) -> Result<Request, RpcError> {
        check_body_size(body.len())?;
        super::limits::check_json_values(body)?;
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| RpcError::bad_request(format!("invalid JSON: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| RpcError::bad_request("the request must be a JSON object"))?;
        let method = obj
            .get("method")
            .and_then(Value::as_str)
            .ok_or_else(|| RpcError::bad_request("method is missing"))?;
        let empty = Value::Object(Map::new());
        let params = obj.get("params").unwrap_or(&empty);
        Self::from_parts(method, params, via)
    }

    /// Parses a method name and its params.
    pub fn from_parts(method: &str, params: &Value, via: Via) -> Result<Request, RpcError> {
        let m = Method::from_name(method).ok_or_else(|| {
            RpcError::bad_request(format!("unknown method {:?}", truncate(method)))
        })?;
        match (m, via) {
            (Method::ProxyFetch, Via::Onion) => {}
            (Method::ProxyFetch, _) => {
                return Err(RpcError::bad_request(
                    "proxy_fetch is accepted only as an onion request destination",
                ));
            }
            (Method::Batch | Method::Sequence, Via::Batch) => {
                return Err(RpcError::bad_request(format!("{m} cannot be a subrequest")));
            }
            _ => {}
        }
        Ok(match m {
            Method::Store => Request::Store(StoreParams::parse(params)?),
            Method::Retrieve => Request::Retrieve(RetrieveParams::parse(params)?),
            Method::Delete => Request::Delete(DeleteParams::parse(params)?),
            Method::DeleteAll => Request::DeleteAll(DeleteAllParams::parse(params)?),
            Method::DeleteBefore => Request::DeleteBefore(DeleteBeforeParams::parse(params)?),
            Method::Expire => Request::Expire(ExpireParams::parse(params)?),
            Method::ExpireAll => Request::ExpireAll(ExpireAllParams::parse(params)?),
            Method::GetExpiries => Request::GetExpiries(GetExpiriesParams::parse(params)?),
            Method::RevokeSubaccount => {
                Request::RevokeSubaccount(RevokeSubaccountParams::parse(params)?)
            }
            Method::UnrevokeSubaccount => {
                Request::UnrevokeSubaccount(UnrevokeSubaccountParams::parse(params)?)
            }
            Method::GetSwarm => Request::GetSwarm(GetSwarmParams::parse(params)?),
            Method::Info => Request::Info(InfoParams::parse(params)?),
            Method::GetRegistry => Request::GetRegistry(GetRegistryParams::parse(params)?),
            Method::Batch => Request::Batch(BatchParams::parse(params)?),
            Method::Sequence => Request::Sequence(BatchParams::parse(params)?),
            Method::ProxyFetch => Request::ProxyFetch(ProxyFetchParams::parse(params)?),
        })
    }

    /// The method.
    pub fn method(&self) -> Method {
        match self {
            Request::Store(_) => Method::Store,
            Request::Retrieve(_) => Method::Retrieve,
            Request::Delete(_) => Method::Delete,
            Request::DeleteAll(_) => Method::DeleteAll,
            Request::DeleteBefore(_) => Method::DeleteBefore,
            Request::Expire(_) => Method::Expire,
            Request::ExpireAll(_) => Method::ExpireAll,
            Request::GetExpiries(_) => Method::GetExpiries,
            Request::RevokeSubaccount(_) => Method::RevokeSubaccount,
            Request::UnrevokeSubaccount(_) => Method::UnrevokeSubaccount,
            Request::GetSwarm(_) => Method::GetSwarm,
            Request::Info(_) => Method::Info,
            Request::GetRegistry(_) => Method::GetRegistry,
            Request::Batch(_) => Method::Batch,
            Request::Sequence(_) => Method::Sequence,
            Request::ProxyFetch(_) => Method::ProxyFetch,
        }
    }

    /// The account the request is about, if any (for the swarm check).
    pub fn account(&self) -> Option<&AccountId> {
        match self {
            Request::Store(p) => Some(&p.pubkey),
            Request::Retrieve(p) => Some(&p.pubkey),
            Request::Delete(p) => Some(&p.pubkey),
            Request::DeleteAll(p) => Some(&p.pubkey),
            Request::DeleteBefore(p) => Some(&p.pubkey),
            Request::Expire(p) => Some(&p.pubkey),
            Request::ExpireAll(p) => Some(&p.pubkey),
            Request::GetExpiries(p) => Some(&p.pubkey),
            Request::RevokeSubaccount(p) => Some(&p.pubkey),
            Request::UnrevokeSubaccount(p) => Some(&p.pubkey),
            Request::GetSwarm(p) => Some(&p.pubkey),
            Request::Info(_)
            | Request::GetRegistry(_)
            | Request::Batch(_)
            | Request::Sequence(_)
            | Request::ProxyFetch(_) => None,
        }
    }

    /// The params as a JSON object.
    pub fn params_json(&self) -> Value {
        let r = match self {
            Request::Store(p) => serde_json::to_value(p),
            Request::Retrieve(p) => serde_json::to_value(p),
            Request::Delete(p) => serde_json::to_value(p),
            Request::DeleteAll(p) => serde_json::to_value(p),
            Request::DeleteBefore(p) => serde_json::to_value(p),
            Request::Expire(p) => serde_json::to_value(p),
            Request::ExpireAll(p) => serde_json::to_value(p),
            Request::GetExpiries(p) => serde_json::to_value(p),
            Request::RevokeSubaccount(p) => serde_json::to_value(p),
            Request::UnrevokeSubaccount(p) => serde_json::to_value(p),
            Request::GetSwarm(p) => serde_json::to_value(p),
            Request::Info(p) => serde_json::to_value(p),
            Request::GetRegistry(p) => serde_json::to_value(p),
            Request::Batch(p) | Request::Sequence(p) => serde_json::to_value(p),
            Request::ProxyFetch(p) => serde_json::to_value(p),
        };
        // Serialising these plain structs into a Value cannot fail (all map
        // keys are strings); fall back to an empty object regardless.
        r.unwrap_or_else(|_| Value::Object(Map::new()))
    }

    /// The whole request `{"method": …, "params": {…}}`.
    pub fn to_json(&self) -> Value {
        serde_json::json!({"method": self.method().name(), "params": self.params_json()})
    }

    /// The request body bytes.
    pub fn to_body(&self) -> Vec<u8> {
        self.to_json().to_string().into_bytes()
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

// ----------------------------------------------------------------------
// Responses
// ----------------------------------------------------------------------

/// Per-node `store` result (§9.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreResult {
    /// The message hash.
    pub hash: MessageHash,
    /// The node's signature over `hash`.
    pub signature: Signature,
    /// The stored expiry after the operation.
    pub expiry: u64,
    /// `true` when the hash already existed.
    #[serde(default, skip_serializing_if = "is_false")]
    pub already: bool,
}

/// One message of a `retrieve` result (§9.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetrievedMessage {
    /// The hash.
    pub hash: MessageHash,
    /// The stored message timestamp.
    pub timestamp: u64,
    /// The current expiry (wire name `expiration`).
    pub expiration: u64,
    /// The message bytes (base64).
    pub data: Base64Bytes,
}

/// `retrieve` result (§9.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetrieveResponse {
    /// The messages, in insertion order.
    pub messages: Vec<RetrievedMessage>,
    /// Whether messages remain after the last one returned.
    pub more: bool,
    /// The node's clock.
    pub t: u64,
}

/// Per-node `delete` result (§9.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteResult {
    /// Deleted hashes, sorted.
    pub deleted: Vec<MessageHash>,
    /// The node's signature (§8.3).
    pub signature: Signature,
}

/// Hashes of one namespace, or of every namespace keyed by the decimal
/// namespace (the `"all"` forms of §9.4, §9.5, §9.7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum HashesByNamespace {
    /// One namespace: a sorted list.
    List(Vec<MessageHash>),
    /// `"all"`: `{"<ns>": [sorted hashes], …}`.
    ByNamespace(BTreeMap<Namespace, Vec<MessageHash>>),
}

impl<'de> Deserialize<'de> for HashesByNamespace {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        // Not `untagged`: buffered content cannot turn "11" keys into i16.
        match Value::deserialize(d)? {
            v @ Value::Array(_) => Vec::<MessageHash>::deserialize(v)
                .map(HashesByNamespace::List)
                .map_err(D::Error::custom),
            Value::Object(m) => {
                let mut out = BTreeMap::new();
                for (k, v) in m {
                    let ns: i16 = k
                        .parse()
                        .map_err(|_| D::Error::custom("namespace keys must be decimal integers"))?;
                    if ns.to_string() != k {
                        return Err(D::Error::custom("namespace keys must be canonical decimal"));
                    }
                    let hashes = Vec::<MessageHash>::deserialize(v).map_err(D::Error::custom)?;
                    out.insert(Namespace(ns), hashes);
                }
                Ok(HashesByNamespace::ByNamespace(out))
            }
            _ => Err(D::Error::custom(
                "expected a list of hashes or an object of lists",
            )),
        }
    }
}

impl HashesByNamespace {
    /// Every hash, in one ASCII sort (what node signatures cover).
    pub fn sorted_all(&self) -> Vec<&MessageHash> {
        let mut v: Vec<&MessageHash> = match self {
            HashesByNamespace::List(l) => l.iter().collect(),
            HashesByNamespace::ByNamespace(m) => m.values().flatten().collect(),
        };
        v.sort();
        v
    }
}

/// Per-node `delete_all` / `delete_before` result (§9.4, §9.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteAllResult {
    /// Deleted hashes.
    pub deleted: HashesByNamespace,
    /// The node's signature (§8.3).
    pub signature: Signature,
}

/// Per-node `expire` result (§9.6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpireResult {
    /// Updated hashes, sorted.
    pub updated: Vec<MessageHash>,
    /// Existing hashes left unchanged, with their current expiry (only with
    /// `shorten` or `extend`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "non_null"
    )]
    pub unchanged: Option<BTreeMap<MessageHash, u64>>,
    /// The applied single expiry, or per-message expiries aligned with
    /// `updated`.
    pub expiry: Expiries,
    /// The node's signature (§8.3).
    pub signature: Signature,
}

/// Per-node `expire_all` result (§9.7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpireAllResult {
    /// Updated hashes.
    pub updated: HashesByNamespace,
    /// The node's signature (§8.3).
    pub signature: Signature,
}

/// `get_expiries` result (§9.8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetExpiriesResponse {
    /// Expiry of each existing hash.
    pub expiries: BTreeMap<MessageHash, u64>,
    /// The node's clock.
    pub t: u64,
}

/// Per-node `revoke_subaccount` / `unrevoke_subaccount` result (§9.9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationResult {
    /// Tokens whose state changed.
    pub count: u64,
    /// The node's signature (§8.3).
    pub signature: Signature,
}

/// Why a swarm member's entry failed (§8.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeFailure {
    /// `"timeout": true`.
    Timeout,
    /// `"code": <int>, "reason": "<text>"`.
    Code {
        /// The member's HTTP status.
        code: u16,
        /// Its text.
        reason: String,
    },
    /// `"bad_peer_response": true`.
    BadPeerResponse,
    /// `"query_failure": true`.
    QueryFailure,
}

/// One member's entry in a recursive response: its result or a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeResult<T> {
    /// The member's per-node result.
    Ok(T),
    /// `{"failed": true, …}`.
    Failed(NodeFailure),
}

impl<T: Serialize> Serialize for NodeResult<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            NodeResult::Ok(t) => t.serialize(s),
            NodeResult::Failed(f) => {
                let mut m = s.serialize_map(None)?;
                m.serialize_entry("failed", &true)?;
                match f {
                    NodeFailure::Timeout => m.serialize_entry("timeout", &true)?,
                    NodeFailure::Code { code, reason } => {
                        m.serialize_entry("code", code)?;
                        m.serialize_entry("reason", reason)?;
                    }
                    NodeFailure::BadPeerResponse => {
                        m.serialize_entry("bad_peer_response", &true)?
                    }
                    NodeFailure::QueryFailure => m.serialize_entry("query_failure", &true)?,
                }
                m.end()
            }
        }
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for NodeResult<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let v = Value::deserialize(d)?;
        if v.get("failed") != Some(&Value::Bool(true)) {
            return T::deserialize(v)
                .map(NodeResult::Ok)
                .map_err(D::Error::custom);
        }
        let flag = |k: &str| v.get(k) == Some(&Value::Bool(true));
        let code = v
            .get("code")
            .map(|c| c.as_u64().and_then(|c| u16::try_from(c).ok()));
        let failure = match (
            flag("timeout"),
            code,
            flag("bad_peer_response"),
            flag("query_failure"),
        ) {
            (true, None, false, false) => NodeFailure::Timeout,
            (false, Some(Some(code)), false, false) => {
                let reason = v
                    .get("reason")
                    .and_then(Value::as_str)
                    .ok_or_else(|| D::Error::custom("a failed entry with code needs a reason"))?;
                NodeFailure::Code {
                    code,
                    reason: reason.to_string(),
                }
            }
            (false, None, true, false) => NodeFailure::BadPeerResponse,
            (false, None, false, true) => NodeFailure::QueryFailure,
            _ => {
                return Err(D::Error::custom(
                    "a failed entry must carry exactly one failure reason",
                ));
            }
        };
        Ok(NodeResult::Failed(failure))
    }
}

/// The response of a recursive method (§8.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(serialize = "T: Serialize", deserialize = "T: DeserializeOwned"))]
pub struct SwarmResponse<T> {
    /// Each member's entry, keyed by its Ed25519 key (hex).
    pub swarm: BTreeMap<Ed25519Hex, NodeResult<T>>,
    /// The entry node's clock.
    pub t: u64,
}

impl<T> SwarmResponse<T> {
    /// The HTTP status: `500` when every member failed, else `200`.
    pub fn status(&self) -> StatusCode {
        if !self.swarm.is_empty()
            && self
                .swarm
                .values()
                .all(|r| matches!(r, NodeResult::Failed(_)))
        {
            StatusCode::InternalServerError
        } else {
            StatusCode::Ok
        }
    }
}

/// A swarm ID as 16 lowercase hex digits, zero-padded (§9.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SwarmIdHex(pub u64);

impl SwarmIdHex {
    /// `"ffffffffffffffff"`: no swarm exists.
    pub const NONE: SwarmIdHex = SwarmIdHex(u64::MAX);
}

impl Serialize for SwarmIdHex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:016x}", self.0))
    }
}

impl<'de> Deserialize<'de> for SwarmIdHex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(serde::de::Error::custom("a swarm ID is 16 hex digits"));
        }
        u64::from_str_radix(&s, 16)
            .map(SwarmIdHex)
            .map_err(serde::de::Error::custom)
    }
}

/// One node of a `get_swarm` result (§9.10).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnodeInfo {
    /// Ed25519 key.
    pub pubkey_ed25519: Ed25519Hex,
    /// X25519 key (Montgomery form of the Ed25519 key).
    pub pubkey_x25519: X25519Hex,
    /// IPv4 address.
    pub ip: Ipv4Addr,
    /// HTTPS port.
    pub port_https: u16,
}

/// `get_swarm` result, also the body of a `421` (§9.10, §10).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetSwarmResponse {
    /// The swarm's nodes (empty when no swarm exists).
    pub snodes: Vec<SnodeInfo>,
    /// The swarm ID.
    pub swarm: SwarmIdHex,
    /// The registry epoch.
    pub epoch: u64,
    /// The node's clock.
    pub t: u64,
}

/// `info` result (§9.11).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InfoResponse {
    /// `[major, minor, patch]`.
    pub version: [u16; 3],
    /// The node's clock.
    pub timestamp: u64,
    /// The registry epoch in use (0 if none).
    pub epoch: u64,
    /// The node's clock.
    pub t: u64,
}

/// `get_registry` result (§9.12).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetRegistryResponse {
    /// The node's epoch.
    pub epoch: u64,
    /// The signed registry document (absent when unchanged).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "non_null"
    )]
    pub registry: Option<Base64Bytes>,
    /// `true` when the caller already has this epoch.
    #[serde(default, skip_serializing_if = "is_false")]
    pub unchanged: bool,
    /// The node's clock.
    pub t: u64,
}

/// One `batch`/`sequence` result (§9.13).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubResult {
    /// The subrequest's HTTP status.
    pub code: u16,
    /// Its JSON result, or its error text as a JSON string.
    pub body: Value,
}

impl SubResult {
    /// The result of a refused subrequest.
    pub fn error(e: &RpcError) -> Self {
        SubResult {
            code: e.code(),
            body: Value::String(e.message.clone()),
        }
    }
}

/// `batch`/`sequence` result (§9.13).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchResponse {
    /// One result per executed subrequest.
    pub results: Vec<SubResult>,
    /// The node's clock.
    pub t: u64,
}

/// `proxy_fetch` result (§9.14).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyFetchResponse {
    /// Always 200.
    pub status: u16,
    /// The final URL after redirects.
    pub url: String,
    /// The response `Content-Type`.
    pub content_type: String,
    /// The body (base64).
    pub data: Base64Bytes,
    /// Whether an HTML body was cut off.
    pub truncated: bool,
    /// The node's clock.
    pub t: u64,
}

#[cfg(test)]
mod tests;
