//! Request authentication (`storage-rpc.md` §2): the exact signed string of
//! every method (§2.4), which key verifies a request (§2.2), subaccount
//! tokens (§2.3), building the auth fields on the client side and verifying
//! them on the node side.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use umbra_crypto::{Ed25519Keypair, Ed25519Public};

use super::encoding::{Ed25519Hex, Signature, b64, non_null, unb64};
use super::namespace::{Namespace, NamespaceSel};
use super::status::RpcError;
use crate::identity::{AccountId, AccountKeys, IdPrefix};

/// `expire`'s `MODE` (§2.4, §9.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ExpireMode {
    /// Neither flag: always update.
    #[default]
    Any,
    /// `shorten`: update only when the new expiry is earlier.
    Shorten,
    /// `extend`: update only when the new expiry is later.
    Extend,
}

impl ExpireMode {
    /// The text in the signed string: `""`, `"shorten"` or `"extend"`.
    pub const fn signed_text(self) -> &'static str {
        match self {
            ExpireMode::Any => "",
            ExpireMode::Shorten => "shorten",
            ExpireMode::Extend => "extend",
        }
    }

    /// Parses the signed-string text.
    pub fn from_text(s: &str) -> Option<Self> {
        match s {
            "" => Some(ExpireMode::Any),
            "shorten" => Some(ExpireMode::Shorten),
            "extend" => Some(ExpireMode::Extend),
            _ => None,
        }
    }
}

fn concat_hashes<H: AsRef<str>>(out: &mut Vec<u8>, hashes: &[H]) {
    for h in hashes {
        out.extend_from_slice(h.as_ref().as_bytes());
    }
}

/// `"store" ‖ NS ‖ sig_timestamp`.
pub fn store_string(ns: Namespace, sig_timestamp: u64) -> Vec<u8> {
    format!("store{}{sig_timestamp}", ns.signed_text()).into_bytes()
}

/// `"retrieve" ‖ NS ‖ timestamp`.
pub fn retrieve_string(ns: Namespace, timestamp: u64) -> Vec<u8> {
    format!("retrieve{}{timestamp}", ns.signed_text()).into_bytes()
}

/// `"delete" ‖ hash₀ ‖ hash₁ ‖ …` (request order).
pub fn delete_string<H: AsRef<str>>(hashes: &[H]) -> Vec<u8> {
    let mut out = b"delete".to_vec();
    concat_hashes(&mut out, hashes);
    out
}

/// `"delete_all" ‖ NS ‖ timestamp`.
pub fn delete_all_string(ns: NamespaceSel, timestamp: u64) -> Vec<u8> {
    format!("delete_all{}{timestamp}", ns.signed_text()).into_bytes()
}

/// `"delete_before" ‖ NS ‖ before`.
pub fn delete_before_string(ns: NamespaceSel, before: u64) -> Vec<u8> {
    format!("delete_before{}{before}", ns.signed_text()).into_bytes()
}

/// `"expire" ‖ MODE ‖ EXP ‖ hash₀ ‖ …`, EXP being the single expiry or all
/// expiries concatenated in request order.
pub fn expire_string<H: AsRef<str>>(mode: ExpireMode, expiries: &[u64], hashes: &[H]) -> Vec<u8> {
    let mut out = format!("expire{}", mode.signed_text()).into_bytes();
    for e in expiries {
        out.extend_from_slice(e.to_string().as_bytes());
    }
    concat_hashes(&mut out, hashes);
    out
}

/// `"expire_all" ‖ NS ‖ expiry`.
pub fn expire_all_string(ns: NamespaceSel, expiry: u64) -> Vec<u8> {
    format!("expire_all{}{expiry}", ns.signed_text()).into_bytes()
}

/// `"get_expiries" ‖ timestamp ‖ hash₀ ‖ …`.
pub fn get_expiries_string<H: AsRef<str>>(timestamp: u64, hashes: &[H]) -> Vec<u8> {
    let mut out = format!("get_expiries{timestamp}").into_bytes();
    concat_hashes(&mut out, hashes);
    out
}

/// `"revoke_subaccount" ‖ timestamp ‖ token₀ ‖ …` (raw 36-byte tokens).
pub fn revoke_subaccount_string(timestamp: u64, tokens: &[SubaccountToken]) -> Vec<u8> {
    let mut out = format!("revoke_subaccount{timestamp}").into_bytes();
    for t in tokens {
        out.extend_from_slice(&t.0);
    }
    out
}

/// `"unrevoke_subaccount" ‖ timestamp ‖ token₀ ‖ …` (raw 36-byte tokens).
pub fn unrevoke_subaccount_string(timestamp: u64, tokens: &[SubaccountToken]) -> Vec<u8> {
    let mut out = format!("unrevoke_subaccount{timestamp}").into_bytes();
    for t in tokens {
        out.extend_from_slice(&t.0);
    }
    out
}

/// Session's `monitor` push-subscription string, `"MONITOR" ‖ hex(pubkey) ‖
/// dec(timestamp_s) ‖ ("1"|"0") ‖ namespaces joined by ","`. Umbra nodes
/// do not provide `monitor` (§9.15); this exists for the `rpc.json` vectors.
pub fn monitor_string(
    account: &AccountId,
    timestamp_s: u64,
    want_data: bool,
    namespaces: &[Namespace],
) -> Vec<u8> {
    let ns: Vec<String> = namespaces.iter().map(|n| n.0.to_string()).collect();
    format!(
        "MONITOR{account}{timestamp_s}{}{}",
        if want_data { "1" } else { "0" },
        ns.join(",")
    )
    .into_bytes()
}

/// Subaccount permission flags (§2.3, token byte 1).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Perms(pub u8);

impl Perms {
    /// No permission.
    pub const NONE: Perms = Perms(0);
    /// `0x01`: read.
    pub const READ: Perms = Perms(0x01);
    /// `0x02`: write.
    pub const WRITE: Perms = Perms(0x02);
    /// `0x04`: delete.
    pub const DELETE: Perms = Perms(0x04);
    /// `0x08`: any-prefix (not honoured by Umbra).
    pub const ANY_PREFIX: Perms = Perms(0x08);

    /// True when every flag of `other` is set here.
    pub const fn contains(self, other: Perms) -> bool {
        self.0 & other.0 == other.0
    }

    /// The union.
    pub const fn union(self, other: Perms) -> Perms {
        Perms(self.0 | other.0)
    }
}

impl std::ops::BitOr for Perms {
    type Output = Perms;
    fn bitor(self, rhs: Perms) -> Perms {
        self.union(rhs)
    }
}

impl fmt::Debug for Perms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (Perms::READ, "read"),
            (Perms::WRITE, "write"),
            (Perms::DELETE, "delete"),
            (Perms::ANY_PREFIX, "any-prefix"),
        ];
        let set: Vec<&str> = names
            .iter()
            .filter(|(p, _)| self.contains(*p))
            .map(|(_, n)| *n)
            .collect();
        write!(f, "Perms({})", set.join("|"))
    }
}

/// A 36-byte subaccount token: `prefix ‖ flags ‖ 0x0000 ‖ Ed25519 key` (§2.3).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubaccountToken(pub [u8; 36]);

impl SubaccountToken {
    /// Length in bytes.
    pub const LEN: usize = 36;

    /// A token for a `03` group, with the given flags and subaccount key.
    pub fn new(flags: Perms, key: &Ed25519Public) -> Self {
        let mut t = [0u8; 36];
        t[0] = IdPrefix::Group.byte();
        t[1] = flags.0;
        t[4..].copy_from_slice(key.as_bytes());
        SubaccountToken(t)
    }

    /// Parses base64 (48 characters) or hex (72 characters).
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        let bytes = match text.len() {
            48 => unb64(text).map_err(|_| "subaccount token is not valid base64")?,
            72 => hex::decode(text).map_err(|_| "subaccount token is not valid hex")?,
            _ => return Err("a subaccount token is 48 base64 or 72 hex characters"),
        };
        bytes
            .try_into()
            .map(SubaccountToken)
            .map_err(|_| "a subaccount token is 36 bytes")
    }

    /// The prefix byte it is valid for.
    pub const fn prefix(&self) -> u8 {
        self.0[0]
    }

    /// The flags.
    pub const fn flags(&self) -> Perms {
        Perms(self.0[1])
    }

    /// The subaccount Ed25519 key.
    pub fn key(&self) -> Ed25519Public {
        let mut k = [0u8; 32];
        k.copy_from_slice(&self.0[4..]);
        Ed25519Public::from_bytes(k)
    }

    /// The base64 form (48 characters).
    pub fn to_base64(&self) -> String {
        b64(&self.0)
    }

    /// Signs the token with the group's key (`subaccount_sig`).
    pub fn sign(&self, group: &Ed25519Keypair) -> Signature {
        Signature(group.sign(&self.0))
    }
}

impl fmt::Debug for SubaccountToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SubaccountToken({:02x}, {:?}, {})",
            self.prefix(),
            self.flags(),
            hex::encode(&self.0[4..8])
        )
    }
}

impl Serialize for SubaccountToken {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_base64())
    }
}

impl<'de> Deserialize<'de> for SubaccountToken {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        SubaccountToken::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The identity and signature fields of a request (§2): flattened into each
/// method's params.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthParams {
    /// `signature`: the request signature (base64).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "non_null"
    )]
    pub signature: Option<Signature>,
    /// `pubkey_ed25519`: required for `05` accounts, refused for `03`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "non_null"
    )]
    pub pubkey_ed25519: Option<Ed25519Hex>,
    /// `subaccount`: a group member's token.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "non_null"
    )]
    pub subaccount: Option<SubaccountToken>,
    /// `subaccount_sig`: the group key's signature over the token.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "non_null"
    )]
    pub subaccount_sig: Option<Signature>,
}

impl AuthParams {
    /// The parse-level rules (`400`): `subaccount` and `subaccount_sig` come
    /// together, and `pubkey_ed25519` is not given for a `03` account.
    pub fn check_shape(&self, account: &AccountId) -> Result<(), RpcError> {
        if self.subaccount.is_some() != self.subaccount_sig.is_some() {
            return Err(RpcError::bad_request(
                "subaccount and subaccount_sig must be given together",
            ));
        }
        if account.prefix() == IdPrefix::Group && self.pubkey_ed25519.is_some() {
            return Err(RpcError::bad_request(
                "pubkey_ed25519 is not allowed for a 03 account",
            ));
        }
        Ok(())
    }
}

/// Who signs a request, on the client side.
#[derive(Debug, Clone)]
pub enum Signer<'a> {
    /// A `05` account: signs with its Ed25519 key and sends `pubkey_ed25519`.
    Account(&'a AccountKeys),
    /// A `03` group: signs with the group's Ed25519 key.
    Group(&'a Ed25519Keypair),
    /// A group member: signs with its subaccount key and sends the token.
    Subaccount {
        /// The member's subaccount keypair (the token's key).
        key: &'a Ed25519Keypair,
        /// The token.
        token: SubaccountToken,
        /// The group key's signature over the token.
        token_sig: Signature,
    },
}

impl Signer<'_> {
    /// Signs `signed` and returns the auth fields to send.
    pub fn auth(&self, signed: &[u8]) -> AuthParams {
        match self {
            Signer::Account(keys) => AuthParams {
                signature: Some(Signature(keys.ed25519().sign(signed))),
                pubkey_ed25519: Some(Ed25519Hex(keys.ed25519_public())),
                ..AuthParams::default()
            },
            Signer::Group(kp) => AuthParams {
                signature: Some(Signature(kp.sign(signed))),
                ..AuthParams::default()
            },
            Signer::Subaccount {
                key,
                token,
                token_sig,
            } => AuthParams {
                signature: Some(Signature(key.sign(signed))),
                pubkey_ed25519: None,
                subaccount: Some(*token),
                subaccount_sig: Some(*token_sig),
            },
        }
    }
}

/// Who a verified request was authorised as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authorized {
    /// No authentication was needed (public inbox `store`, public outbox
    /// `retrieve`, …).
    Public,
    /// The account's own key signed.
    Owner,
    /// A subaccount holding this token signed.
    Subaccount(SubaccountToken),
}

impl Authorized {
    /// The permissions this authorisation holds: all for the owner and for
    /// public access (the caller only asks for what the method needs), the
    /// token's flags for a subaccount.
    pub fn perms(&self) -> Perms {
        match self {
            Authorized::Public | Authorized::Owner => Perms(0x07),
            Authorized::Subaccount(t) => t.flags(),
        }
    }
}

/// What a method requires of a signed request.
#[derive(Clone, Copy)]
pub struct AuthRule<'a> {
    /// Flags a subaccount must hold (§9, "Perm").
    pub perms: Perms,
    /// Whether a subaccount may sign at all (not for `revoke_subaccount`).
    pub allow_subaccount: bool,
    /// Whether the revocation list is consulted (skipped for `retrieve`
    /// from an unrevocable namespace).
    pub check_revocation: bool,
    /// The account's revocation list.
    pub is_revoked: &'a dyn Fn(&SubaccountToken) -> bool,
}

impl fmt::Debug for AuthRule<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthRule")
            .field("perms", &self.perms)
            .field("allow_subaccount", &self.allow_subaccount)
            .field("check_revocation", &self.check_revocation)
            .finish_non_exhaustive()
    }
}

/// A revocation list that revokes nothing.
pub fn nothing_revoked(_: &SubaccountToken) -> bool {
    false
}

/// Verifies a request's signature over `signed` for `account` (§2.2–2.3).
/// Every failure is `401`, except the `400` shape errors of
/// [`AuthParams::check_shape`].
pub fn verify_auth(
    account: &AccountId,
    auth: &AuthParams,
    signed: &[u8],
    rule: AuthRule<'_>,
) -> Result<Authorized, RpcError> {
    auth.check_shape(account)?;
    let signature = auth
        .signature
        .ok_or_else(|| RpcError::unauthorized("signature is missing"))?;
    if let (Some(token), Some(token_sig)) = (auth.subaccount, auth.subaccount_sig) {
        if !rule.allow_subaccount {
            return Err(RpcError::unauthorized(
                "this method requires the account key, not a subaccount",
            ));
        }
        // 1. groups only.
        if account.prefix() != IdPrefix::Group {
            return Err(RpcError::unauthorized(
                "subaccounts are accepted only for 03 accounts",
            ));
        }
        // 2. token prefix.
        if token.prefix() != IdPrefix::Group.byte() {
            return Err(RpcError::unauthorized(
                "subaccount token is not for a 03 account",
            ));
        }
        // 3. revocation.
        if rule.check_revocation && (rule.is_revoked)(&token) {
            return Err(RpcError::unauthorized("subaccount token is revoked"));
        }
        // 4. flags.
        if !token.flags().contains(rule.perms) {
            return Err(RpcError::unauthorized(
                "subaccount token lacks a required permission",
            ));
        }
        // 5. token signature by the account key.
        let group_key = Ed25519Public::from_bytes(*account.key());
        group_key
            .verify(&token.0, &token_sig.0)
            .map_err(|_| RpcError::unauthorized("subaccount_sig does not verify"))?;
        // 6. request signature by the subaccount key.
        token
            .key()
            .verify(signed, &signature.0)
            .map_err(|_| RpcError::unauthorized("signature does not verify"))?;
        return Ok(Authorized::Subaccount(token));
    }
    let key = match account.prefix() {
        IdPrefix::Standard => {
            let ed = auth
                .pubkey_ed25519
                .ok_or_else(|| {
                    RpcError::unauthorized("pubkey_ed25519 is required for a 05 account")
                })?
                .0;
            let x = ed
                .to_x25519()
                .map_err(|_| RpcError::unauthorized("pubkey_ed25519 is not a valid key"))?;
            if x.as_bytes() != account.key() {
                return Err(RpcError::unauthorized(
                    "pubkey_ed25519 does not match pubkey",
                ));
            }
            ed
        }
        IdPrefix::Group => Ed25519Public::from_bytes(*account.key()),
        _ => {
            return Err(RpcError::bad_request(
                "only 05 and 03 accounts are supported",
            ));
        }
    };
    key.verify(signed, &signature.0)
        .map_err(|_| RpcError::unauthorized("signature does not verify"))?;
    Ok(Authorized::Owner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::status::StatusCode;

    fn keys(n: u8) -> AccountKeys {
        AccountKeys::from_seed(&[n; 32])
    }

    #[test]
    fn spec_examples() {
        assert_eq!(
            store_string(Namespace(2), 1_700_000_000_000),
            b"store21700000000000"
        );
        assert_eq!(
            retrieve_string(Namespace(0), 1_700_000_000_000),
            b"retrieve1700000000000"
        );
        assert_eq!(
            expire_string(
                ExpireMode::Extend,
                &[1_700_000_060_000],
                &["hash4321", "hash4221"]
            ),
            b"expireextend1700000060000hash4321hash4221"
        );
        assert_eq!(delete_all_string(NamespaceSel::All, 5), b"delete_allall5");
        assert_eq!(
            delete_before_string(Namespace(-11).into(), 7),
            b"delete_before-117"
        );
        assert_eq!(
            expire_all_string(NamespaceSel::default(), 9),
            b"expire_all9"
        );
        assert_eq!(get_expiries_string(3, &["a", "b"]), b"get_expiries3ab");
        assert_eq!(delete_string::<&str>(&[]), b"delete");
        let t = SubaccountToken([9; 36]);
        let mut want = b"revoke_subaccount12".to_vec();
        want.extend_from_slice(&[9; 36]);
        assert_eq!(revoke_subaccount_string(12, &[t]), want);
        assert_eq!(
            unrevoke_subaccount_string(12, &[t])[..21],
            *b"unrevoke_subaccount12"
        );
    }

    #[test]
    fn token_parse_forms() {
        let kp = Ed25519Keypair::from_seed(&[4; 32]);
        let t = SubaccountToken::new(Perms::READ | Perms::WRITE, &kp.public());
        assert_eq!(t.prefix(), 0x03);
        assert_eq!(t.flags(), Perms(3));
        assert_eq!(&t.0[2..4], &[0, 0]);
        assert_eq!(t.key(), kp.public());
        assert_eq!(SubaccountToken::parse(&t.to_base64()).unwrap(), t);
        assert_eq!(SubaccountToken::parse(&hex::encode(t.0)).unwrap(), t);
        assert_eq!(
            SubaccountToken::parse(&hex::encode(t.0).to_uppercase()).unwrap(),
            t
        );
        assert!(SubaccountToken::parse(&t.to_base64()[..47]).is_err());
        assert!(SubaccountToken::parse(&"g".repeat(72)).is_err());
    }

    fn owner_rule() -> AuthRule<'static> {
        AuthRule {
            perms: Perms::READ,
            allow_subaccount: true,
            check_revocation: true,
            is_revoked: &nothing_revoked,
        }
    }

    #[test]
    fn standard_account_round_trip_and_failures() {
        let k = keys(1);
        let id = k.account_id();
        let msg = retrieve_string(Namespace(0), 1_700_000_000_000);
        let auth = Signer::Account(&k).auth(&msg);
        assert_eq!(
            verify_auth(&id, &auth, &msg, owner_rule()),
            Ok(Authorized::Owner)
        );
        // Tampered string.
        let other = retrieve_string(Namespace(0), 1_700_000_000_001);
        assert_eq!(
            verify_auth(&id, &auth, &other, owner_rule())
                .unwrap_err()
                .status,
            StatusCode::Unauthorized
        );
        // Missing pubkey_ed25519.
        let mut a = auth.clone();
        a.pubkey_ed25519 = None;
        assert_eq!(
            verify_auth(&id, &a, &msg, owner_rule()).unwrap_err().code(),
            401
        );
        // Another account's key.
        let mut a = auth.clone();
        a.pubkey_ed25519 = Some(Ed25519Hex(keys(2).ed25519_public()));
        assert!(
            verify_auth(&id, &a, &msg, owner_rule())
                .unwrap_err()
                .message
                .contains("does not match")
        );
        // Invalid point (small order: identity).
        let mut ident = [0u8; 32];
        ident[0] = 1;
        a.pubkey_ed25519 = Some(Ed25519Hex(Ed25519Public::from_bytes(ident)));
        assert_eq!(
            verify_auth(&id, &a, &msg, owner_rule()).unwrap_err().code(),
            401
        );
        // Missing signature.
        let mut a = auth.clone();
        a.signature = None;
        assert_eq!(
            verify_auth(&id, &a, &msg, owner_rule()).unwrap_err().code(),
            401
        );
        // Subaccounts are refused on 05 accounts.
        let mut a = auth;
        a.pubkey_ed25519 = None;
        a.subaccount = Some(SubaccountToken::new(Perms(7), &keys(3).ed25519_public()));
        a.subaccount_sig = Some(Signature([0; 64]));
        assert_eq!(
            verify_auth(&id, &a, &msg, owner_rule()).unwrap_err().code(),
            401
        );
    }

    #[test]
    fn group_and_subaccount() {
        let group = Ed25519Keypair::from_seed(&[5; 32]);
        let gid = AccountId::group(&group.public());
        let msg = delete_string(&["x"]);
        let auth = Signer::Group(&group).auth(&msg);
        assert_eq!(
            verify_auth(&gid, &auth, &msg, owner_rule()),
            Ok(Authorized::Owner)
        );
        // pubkey_ed25519 on a 03 account → 400.
        let mut a = auth.clone();
        a.pubkey_ed25519 = Some(Ed25519Hex(group.public()));
        assert_eq!(
            verify_auth(&gid, &a, &msg, owner_rule())
                .unwrap_err()
                .code(),
            400
        );

        let member = Ed25519Keypair::from_seed(&[6; 32]);
        let token = SubaccountToken::new(Perms::READ | Perms::WRITE, &member.public());
        let sub = Signer::Subaccount {
            key: &member,
            token,
            token_sig: token.sign(&group),
        };
        let a = sub.auth(&msg);
        assert_eq!(
            verify_auth(&gid, &a, &msg, owner_rule()),
            Ok(Authorized::Subaccount(token))
        );
        // Missing flag.
        let rule = AuthRule {
            perms: Perms::DELETE,
            ..owner_rule()
        };
        assert!(
            verify_auth(&gid, &a, &msg, rule)
                .unwrap_err()
                .message
                .contains("permission")
        );
        // Revoked, and revocation skipped.
        let revoked = move |t: &SubaccountToken| *t == token;
        let rule = AuthRule {
            is_revoked: &revoked,
            ..owner_rule()
        };
        assert!(
            verify_auth(&gid, &a, &msg, rule)
                .unwrap_err()
                .message
                .contains("revoked")
        );
        let rule = AuthRule {
            check_revocation: false,
            ..rule
        };
        assert!(verify_auth(&gid, &a, &msg, rule).is_ok());
        // Not allowed at all.
        let rule = AuthRule {
            allow_subaccount: false,
            ..owner_rule()
        };
        assert_eq!(verify_auth(&gid, &a, &msg, rule).unwrap_err().code(), 401);
        // Token signed by someone else.
        let forged = Signer::Subaccount {
            key: &member,
            token,
            token_sig: token.sign(&member),
        }
        .auth(&msg);
        assert!(
            verify_auth(&gid, &forged, &msg, owner_rule())
                .unwrap_err()
                .message
                .contains("subaccount_sig")
        );
        // Tampered request.
        assert!(verify_auth(&gid, &a, &delete_string(&["y"]), owner_rule()).is_err());
        // Any-prefix token with another prefix byte.
        let mut t2 = token;
        t2.0[0] = 0x05;
        t2.0[1] |= Perms::ANY_PREFIX.0;
        let a2 = Signer::Subaccount {
            key: &member,
            token: t2,
            token_sig: t2.sign(&group),
        }
        .auth(&msg);
        assert!(
            verify_auth(&gid, &a2, &msg, owner_rule())
                .unwrap_err()
                .message
                .contains("not for a 03")
        );
        // Only one of the pair → 400.
        let mut half = a;
        half.subaccount_sig = None;
        assert_eq!(
            verify_auth(&gid, &half, &msg, owner_rule())
                .unwrap_err()
                .code(),
            400
        );
    }

    #[test]
    fn monitor_string_format() {
        let id: AccountId = "05558d6fa8ef7575344a73dc56ba0ece787ba6cc90032db762ddb44bd5d6491661"
            .parse()
            .unwrap();
        let s = monitor_string(
            &id,
            1_700_000_000,
            true,
            &[Namespace(0), Namespace(2), Namespace(3)],
        );
        let want = format!("MONITOR{id}{}{}{}", 1_700_000_000u64, "1", "0,2,3");
        assert_eq!(s, want.into_bytes());
    }
}
