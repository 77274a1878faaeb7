use super::*;
use crate::identity::AccountKeys;
use crate::rpc::encoding::MessageData;
use crate::rpc::limits::{MAX_TTL_MS, MAX_TTL_PUBLIC_MS, MIN_TTL_MS};
use crate::rpc::sign::{Signer, SubaccountToken};
use crate::rpc::status::StatusCode;
use crate::rpc::types::{Params, Tokens};
use umbra_crypto::Ed25519Keypair;

const NOW: u64 = 1_700_000_000_000;

fn k() -> AccountKeys {
    AccountKeys::from_seed(&[1; 32])
}

fn h(n: u8) -> MessageHash {
    MessageHash::from_digest(&[n; 32])
}

fn store(ns: i16, ts: u64, ttl: u64, sig_ts: Option<u64>) -> StoreParams {
    let mut p = StoreParams {
        pubkey: k().account_id(),
        timestamp: ts,
        ttl: Some(ttl),
        expiry: None,
        data: MessageData(b"hello".to_vec()),
        namespace: Namespace(ns),
        sig_timestamp: sig_ts,
        auth: AuthParams::default(),
    };
    let keys = k();
    p.auth = Signer::Account(&keys).auth(&p.signed_string());
    p
}

fn status<T: std::fmt::Debug>(r: Result<T, RpcError>) -> StatusCode {
    r.expect_err("expected a refusal").status
}

#[test]
fn store_ok_and_hash() {
    let p = store(2, NOW, 86_400_000, None);
    let v = validate_store(&p, NOW, &AuthEnv::CLIENT).unwrap();
    assert_eq!(v.expiry, NOW + 86_400_000);
    assert_eq!(v.auth, Authorized::Owner);
    assert_eq!(v.hash, message_hash(&p.pubkey, Namespace(2), b"hello"));
    assert!(!v.replaces_others);
}

#[test]
fn store_ttl_limits_per_namespace() {
    // Public inbox: 14 days.
    assert!(
        validate_store(
            &store(0, NOW, MAX_TTL_PUBLIC_MS, None),
            NOW,
            &AuthEnv::CLIENT
        )
        .is_ok()
    );
    assert_eq!(
        status(validate_store(
            &store(0, NOW, MAX_TTL_PUBLIC_MS + 1, None),
            NOW,
            &AuthEnv::CLIENT
        )),
        StatusCode::Forbidden
    );
    assert_eq!(
        status(validate_store(
            &store(-10, NOW, MAX_TTL_PUBLIC_MS + 1, None),
            NOW,
            &AuthEnv::CLIENT
        )),
        StatusCode::Forbidden
    );
    // Others: 30 days.
    assert!(validate_store(&store(2, NOW, MAX_TTL_MS, None), NOW, &AuthEnv::CLIENT).is_ok());
    assert_eq!(
        status(validate_store(
            &store(2, NOW, MAX_TTL_MS + 1, None),
            NOW,
            &AuthEnv::CLIENT
        )),
        StatusCode::Forbidden
    );
    assert_eq!(
        status(validate_store(
            &store(2, NOW, MIN_TTL_MS - 1, None),
            NOW,
            &AuthEnv::CLIENT
        )),
        StatusCode::Forbidden
    );
    // expiry before timestamp.
    let mut p = store(0, NOW, 0, None);
    p.ttl = None;
    p.expiry = Some(NOW - 1);
    assert_eq!(
        status(validate_store(&p, NOW, &AuthEnv::CLIENT)),
        StatusCode::Forbidden
    );
    // TTL comes before the clock check: a bad TTL in the future is 403.
    assert_eq!(
        status(validate_store(
            &store(0, NOW + 20_000, 1, None),
            NOW,
            &AuthEnv::CLIENT
        )),
        StatusCode::Forbidden
    );
}

#[test]
fn store_time_tolerance_edges() {
    assert!(
        validate_store(
            &store(0, NOW + 10_000, 86_400_000, None),
            NOW,
            &AuthEnv::CLIENT
        )
        .is_ok()
    );
    assert_eq!(
        status(validate_store(
            &store(0, NOW + 10_001, 86_400_000, None),
            NOW,
            &AuthEnv::CLIENT
        )),
        StatusCode::NotAcceptable
    );
    // Expiry just inside / outside now − 10 s.
    let old = NOW - 60_000;
    assert!(validate_store(&store(0, old, 50_000, None), NOW, &AuthEnv::CLIENT).is_ok());
    assert_eq!(
        status(validate_store(
            &store(0, old, 49_999, None),
            NOW,
            &AuthEnv::CLIENT
        )),
        StatusCode::NotAcceptable
    );
    // sig_timestamp ±60 s (70 s forwarded) in a private namespace.
    assert!(
        validate_store(
            &store(2, NOW, 86_400_000, Some(NOW - 60_000)),
            NOW,
            &AuthEnv::CLIENT
        )
        .is_ok()
    );
    let e = validate_store(
        &store(2, NOW, 86_400_000, Some(NOW - 60_001)),
        NOW,
        &AuthEnv::CLIENT,
    )
    .unwrap_err();
    assert_eq!(e.status, StatusCode::NotAcceptable);
    assert!(e.message.contains("sig_timestamp"));
    assert!(
        validate_store(
            &store(2, NOW, 86_400_000, Some(NOW - 65_000)),
            NOW,
            &AuthEnv::FORWARDED
        )
        .is_ok()
    );
    assert_eq!(
        status(validate_store(
            &store(2, NOW, 86_400_000, Some(NOW + 70_001)),
            NOW,
            &AuthEnv::FORWARDED
        )),
        StatusCode::NotAcceptable
    );
    // A message timestamp long ago is fine when sig_timestamp is current.
    assert!(
        validate_store(
            &store(2, NOW - 3_600_000, 86_400_000, Some(NOW)),
            NOW,
            &AuthEnv::CLIENT
        )
        .is_ok()
    );
}

#[test]
fn store_auth_by_namespace_class() {
    // Public inbox: no signature needed, auth fields ignored (even broken ones).
    let mut p = store(0, NOW, 86_400_000, None);
    p.auth = AuthParams::default();
    assert_eq!(
        validate_store(&p, NOW, &AuthEnv::CLIENT).unwrap().auth,
        Authorized::Public
    );
    p.auth.subaccount = Some(SubaccountToken([0; 36]));
    assert!(validate_store(&p, NOW, &AuthEnv::CLIENT).is_ok());
    // Private: missing signature 401, tampered 401.
    let mut p = store(2, NOW, 86_400_000, None);
    let good = p.clone();
    p.auth.signature = None;
    assert_eq!(
        status(validate_store(&p, NOW, &AuthEnv::CLIENT)),
        StatusCode::Unauthorized
    );
    let mut p = good.clone();
    p.namespace = Namespace(3);
    assert_eq!(
        status(validate_store(&p, NOW, &AuthEnv::CLIENT)),
        StatusCode::Unauthorized
    );
    let mut p = good;
    p.sig_timestamp = Some(NOW + 1);
    assert_eq!(
        status(validate_store(&p, NOW, &AuthEnv::CLIENT)),
        StatusCode::Unauthorized
    );
    // Public outbox: owner auth, replaces others; subaccount needs write+delete.
    let v = validate_store(&store(-1, NOW, 86_400_000, None), NOW, &AuthEnv::CLIENT).unwrap();
    assert!(v.replaces_others);
}

fn group() -> Ed25519Keypair {
    Ed25519Keypair::from_seed(&[5; 32])
}

fn member() -> Ed25519Keypair {
    Ed25519Keypair::from_seed(&[6; 32])
}

fn sub_signer<'a>(m: &'a Ed25519Keypair, perms: Perms) -> Signer<'a> {
    let token = SubaccountToken::new(perms, &m.public());
    Signer::Subaccount {
        key: m,
        token,
        token_sig: token.sign(&group()),
    }
}

#[test]
fn subaccount_store_needs_write_and_delete_in_outbox() {
    let gid = AccountId::group(&group().public());
    let m = member();
    let mk = |ns: i16, perms: Perms| {
        let mut p = store(ns, NOW, 86_400_000, None);
        p.pubkey = gid;
        p.auth = sub_signer(&m, perms).auth(&p.signed_string());
        p
    };
    assert!(validate_store(&mk(11, Perms::WRITE), NOW, &AuthEnv::CLIENT).is_ok());
    assert_eq!(
        status(validate_store(&mk(11, Perms::READ), NOW, &AuthEnv::CLIENT)),
        StatusCode::Unauthorized
    );
    assert_eq!(
        status(validate_store(
            &mk(-21, Perms::WRITE),
            NOW,
            &AuthEnv::CLIENT
        )),
        StatusCode::Unauthorized
    );
    assert!(
        validate_store(
            &mk(-21, Perms::WRITE | Perms::DELETE),
            NOW,
            &AuthEnv::CLIENT
        )
        .is_ok()
    );
}

fn retrieve(ns: i16, ts: u64) -> RetrieveParams {
    let keys = k();
    RetrieveParams {
        pubkey: keys.account_id(),
        namespace: Namespace(ns),
        last_hash: None,
        max_count: None,
        max_size: None,
        timestamp: Some(ts),
        auth: Signer::Account(&keys).auth(&crate::rpc::sign::retrieve_string(Namespace(ns), ts)),
    }
}

#[test]
fn retrieve_rules() {
    let v = validate_retrieve(&retrieve(0, NOW), NOW, &AuthEnv::CLIENT).unwrap();
    assert_eq!(v.auth, Authorized::Owner);
    assert_eq!(v.limits.max_size, Some(1_560_000));
    assert!(validate_retrieve(&retrieve(0, NOW + 60_000), NOW, &AuthEnv::CLIENT).is_ok());
    assert_eq!(
        status(validate_retrieve(
            &retrieve(0, NOW + 60_001),
            NOW,
            &AuthEnv::CLIENT
        )),
        StatusCode::NotAcceptable
    );
    // Public outbox needs no auth.
    let mut p = retrieve(-1, NOW);
    p.auth = AuthParams::default();
    p.timestamp = None;
    assert_eq!(
        validate_retrieve(&p, NOW, &AuthEnv::CLIENT).unwrap().auth,
        Authorized::Public
    );
    // Inbox retrieve does need auth.
    let mut p = retrieve(0, NOW);
    p.auth.signature = None;
    assert_eq!(
        status(validate_retrieve(&p, NOW, &AuthEnv::CLIENT)),
        StatusCode::Unauthorized
    );
    let mut p = retrieve(0, NOW);
    p.timestamp = None;
    assert_eq!(
        status(validate_retrieve(&p, NOW, &AuthEnv::CLIENT)),
        StatusCode::BadRequest
    );
    // Tampered namespace.
    let mut p = retrieve(0, NOW);
    p.namespace = Namespace(2);
    assert_eq!(
        status(validate_retrieve(&p, NOW, &AuthEnv::CLIENT)),
        StatusCode::Unauthorized
    );
}

#[test]
fn retrieve_revocation_is_skipped_in_unrevocable_namespaces() {
    let gid = AccountId::group(&group().public());
    let m = member();
    let signer = sub_signer(&m, Perms::READ);
    let Signer::Subaccount { token, .. } = signer.clone() else {
        unreachable!()
    };
    let revoked = move |t: &SubaccountToken| *t == token;
    let env = AuthEnv {
        origin: Origin::Client,
        is_revoked: &revoked,
    };
    let mk = |ns: i16| RetrieveParams {
        pubkey: gid,
        namespace: Namespace(ns),
        last_hash: None,
        max_count: None,
        max_size: None,
        timestamp: Some(NOW),
        auth: signer.auth(&crate::rpc::sign::retrieve_string(Namespace(ns), NOW)),
    };
    assert_eq!(
        status(validate_retrieve(&mk(11), NOW, &env)),
        StatusCode::Unauthorized
    );
    assert_eq!(
        validate_retrieve(&mk(-11), NOW, &env).unwrap().auth,
        Authorized::Subaccount(token)
    );
    assert!(validate_retrieve(&mk(11), NOW, &AuthEnv::CLIENT).is_ok());
}

fn signed<P: Params>(mut p: P, f: impl Fn(&P) -> Vec<u8>, set: impl Fn(&mut P, AuthParams)) -> P {
    let keys = k();
    let a = Signer::Account(&keys).auth(&f(&p));
    set(&mut p, a);
    p
}

#[test]
fn delete_family() {
    let acc = k().account_id();
    let d = signed(
        DeleteParams {
            pubkey: acc,
            messages: vec![h(1), h(2)],
            required: true,
            auth: AuthParams::default(),
        },
        DeleteParams::signed_string,
        |p, a| p.auth = a,
    );
    let v = validate_delete(&d, NOW, &AuthEnv::CLIENT).unwrap();
    assert_eq!(v.messages, vec![h(1), h(2)]);
    assert!(v.required);
    let mut t = d.clone();
    t.messages.reverse();
    assert_eq!(
        status(validate_delete(&t, NOW, &AuthEnv::CLIENT)),
        StatusCode::Unauthorized
    );

    let da = signed(
        DeleteAllParams {
            pubkey: acc,
            namespace: NamespaceSel::All,
            timestamp: NOW,
            auth: AuthParams::default(),
        },
        DeleteAllParams::signed_string,
        |p, a| p.auth = a,
    );
    assert_eq!(
        validate_delete_all(&da, NOW, &AuthEnv::CLIENT)
            .unwrap()
            .namespace,
        NamespaceSel::All
    );
    assert_eq!(
        status(validate_delete_all(&da, NOW + 60_001, &AuthEnv::CLIENT)),
        StatusCode::NotAcceptable
    );
    assert!(validate_delete_all(&da, NOW + 70_000, &AuthEnv::FORWARDED).is_ok());
    let mut t = da.clone();
    t.namespace = NamespaceSel::One(Namespace(0));
    assert_eq!(
        status(validate_delete_all(&t, NOW, &AuthEnv::CLIENT)),
        StatusCode::Unauthorized
    );

    let db = signed(
        DeleteBeforeParams {
            pubkey: acc,
            namespace: Namespace(3).into(),
            before: NOW + 60_000,
            auth: AuthParams::default(),
        },
        DeleteBeforeParams::signed_string,
        |p, a| p.auth = a,
    );
    assert!(validate_delete_before(&db, NOW, &AuthEnv::CLIENT).is_ok());
    assert_eq!(
        status(validate_delete_before(&db, NOW - 1, &AuthEnv::CLIENT)),
        StatusCode::NotAcceptable
    );
    let mut t = db.clone();
    t.before -= 1;
    assert_eq!(
        status(validate_delete_before(&t, NOW, &AuthEnv::CLIENT)),
        StatusCode::Unauthorized
    );

    let ea = signed(
        ExpireAllParams {
            pubkey: acc,
            namespace: NamespaceSel::All,
            expiry: NOW - 60_000,
            auth: AuthParams::default(),
        },
        ExpireAllParams::signed_string,
        |p, a| p.auth = a,
    );
    assert!(validate_expire_all(&ea, NOW, &AuthEnv::CLIENT).is_ok());
    assert_eq!(
        status(validate_expire_all(&ea, NOW + 1, &AuthEnv::CLIENT)),
        StatusCode::NotAcceptable
    );
    assert!(validate_expire_all(&ea, NOW + 10_000, &AuthEnv::FORWARDED).is_ok());
    assert_eq!(
        status(validate_expire_all(&ea, NOW + 10_001, &AuthEnv::FORWARDED)),
        StatusCode::NotAcceptable
    );
    let mut t = ea.clone();
    t.expiry += 1;
    assert_eq!(
        status(validate_expire_all(&t, NOW, &AuthEnv::CLIENT)),
        StatusCode::Unauthorized
    );

    let ge = signed(
        GetExpiriesParams {
            pubkey: acc,
            messages: vec![h(7)],
            timestamp: NOW,
            auth: AuthParams::default(),
        },
        GetExpiriesParams::signed_string,
        |p, a| p.auth = a,
    );
    assert!(validate_get_expiries(&ge, NOW, &AuthEnv::CLIENT).is_ok());
    assert_eq!(
        status(validate_get_expiries(&ge, NOW - 60_001, &AuthEnv::CLIENT)),
        StatusCode::NotAcceptable
    );
    let mut t = ge;
    t.messages = vec![h(8)];
    assert_eq!(
        status(validate_get_expiries(&t, NOW, &AuthEnv::CLIENT)),
        StatusCode::Unauthorized
    );
}

fn expire_params(shorten: bool, extend: bool, expiry: Expiries) -> ExpireParams {
    ExpireParams {
        pubkey: k().account_id(),
        messages: vec![h(1), h(2)],
        expiry,
        shorten,
        extend,
        auth: AuthParams::default(),
    }
}

#[test]
fn expire_rules() {
    let p = signed(
        expire_params(false, true, Expiries::Single(NOW + 40 * 86_400_000)),
        ExpireParams::signed_string,
        |p, a| p.auth = a,
    );
    let v = validate_expire(&p, NOW, &AuthEnv::CLIENT).unwrap();
    assert_eq!(v.mode, ExpireMode::Extend);
    assert_eq!(
        v.expiries,
        Expiries::Single(NOW + 30 * 86_400_000),
        "clamped, not refused"
    );
    assert_eq!(v.expiry_for(1), Some(NOW + 30 * 86_400_000));
    assert_eq!(v.expiry_for(2), None);
    let p = signed(
        expire_params(
            false,
            false,
            Expiries::PerMessage(vec![NOW - 60_000, NOW + 5]),
        ),
        ExpireParams::signed_string,
        |p, a| p.auth = a,
    );
    let v = validate_expire(&p, NOW, &AuthEnv::CLIENT).unwrap();
    assert_eq!(v.mode, ExpireMode::Any);
    assert_eq!(v.expiry_for(0), Some(NOW - 60_000));
    let p = signed(
        expire_params(
            false,
            false,
            Expiries::PerMessage(vec![NOW - 60_001, NOW + 5]),
        ),
        ExpireParams::signed_string,
        |p, a| p.auth = a,
    );
    assert_eq!(
        status(validate_expire(&p, NOW, &AuthEnv::CLIENT)),
        StatusCode::NotAcceptable
    );
    // The mode is part of the signed string.
    let mut p = signed(
        expire_params(true, false, Expiries::Single(NOW)),
        ExpireParams::signed_string,
        |p, a| p.auth = a,
    );
    assert!(validate_expire(&p, NOW, &AuthEnv::CLIENT).is_ok());
    p.shorten = false;
    assert_eq!(
        status(validate_expire(&p, NOW, &AuthEnv::CLIENT)),
        StatusCode::Unauthorized
    );
}

#[test]
fn expire_subaccount_modes() {
    let gid = AccountId::group(&group().public());
    let m = member();
    let mk = |shorten: bool, perms: Perms| {
        let mut p = expire_params(shorten, false, Expiries::Single(NOW + 1000));
        p.pubkey = gid;
        p.auth = sub_signer(&m, perms).auth(&p.signed_string());
        p
    };
    assert_eq!(
        validate_expire(&mk(false, Perms::WRITE), NOW, &AuthEnv::CLIENT)
            .unwrap()
            .mode,
        ExpireMode::Extend
    );
    assert_eq!(
        validate_expire(
            &mk(false, Perms::WRITE | Perms::DELETE),
            NOW,
            &AuthEnv::CLIENT
        )
        .unwrap()
        .mode,
        ExpireMode::Any
    );
    assert_eq!(
        status(validate_expire(
            &mk(true, Perms::WRITE),
            NOW,
            &AuthEnv::CLIENT
        )),
        StatusCode::Unauthorized
    );
    assert_eq!(
        validate_expire(
            &mk(true, Perms::WRITE | Perms::DELETE),
            NOW,
            &AuthEnv::CLIENT
        )
        .unwrap()
        .mode,
        ExpireMode::Shorten
    );
    assert_eq!(
        status(validate_expire(
            &mk(false, Perms::READ),
            NOW,
            &AuthEnv::CLIENT
        )),
        StatusCode::Unauthorized
    );
}

#[test]
fn revocation_requires_the_account_key() {
    let g = group();
    let gid = AccountId::group(&g.public());
    let m = member();
    let token = SubaccountToken::new(Perms::READ, &m.public());
    let mut p = RevokeSubaccountParams {
        pubkey: gid,
        revoke: Tokens::Many(vec![token]),
        timestamp: NOW,
        auth: AuthParams::default(),
    };
    p.auth = Signer::Group(&g).auth(&p.signed_string());
    let v = validate_revoke_subaccount(&p, NOW, &AuthEnv::CLIENT).unwrap();
    assert_eq!(v.tokens, vec![token]);
    assert_eq!(
        status(validate_revoke_subaccount(
            &p,
            NOW + 60_001,
            &AuthEnv::CLIENT
        )),
        StatusCode::NotAcceptable
    );
    let mut t = p.clone();
    t.revoke = Tokens::One(SubaccountToken::new(Perms::WRITE, &m.public()));
    assert_eq!(
        status(validate_revoke_subaccount(&t, NOW, &AuthEnv::CLIENT)),
        StatusCode::Unauthorized
    );
    // A subaccount, even with every flag, cannot revoke.
    let mut s = p.clone();
    s.auth = sub_signer(&m, Perms(7)).auth(&s.signed_string());
    assert_eq!(
        status(validate_revoke_subaccount(&s, NOW, &AuthEnv::CLIENT)),
        StatusCode::Unauthorized
    );

    let mut u = UnrevokeSubaccountParams {
        pubkey: gid,
        unrevoke: Tokens::One(token),
        timestamp: NOW,
        auth: AuthParams::default(),
    };
    u.auth = Signer::Group(&g).auth(&u.signed_string());
    assert!(validate_unrevoke_subaccount(&u, NOW, &AuthEnv::CLIENT).is_ok());
    // A revoke signature does not authorise an unrevoke.
    u.auth = p.auth.clone();
    assert_eq!(
        status(validate_unrevoke_subaccount(&u, NOW, &AuthEnv::CLIENT)),
        StatusCode::Unauthorized
    );
}

#[test]
fn signed_request_survives_json_round_trip() {
    // A client builds and signs, the node parses the body and validates.
    let p = store(2, NOW, 86_400_000, Some(NOW));
    let body = crate::rpc::types::Request::Store(p).to_body();
    let crate::rpc::types::Request::Store(parsed) =
        crate::rpc::types::Request::parse_body(&body, crate::rpc::types::Via::Onion).unwrap()
    else {
        panic!("not a store");
    };
    assert!(validate_store(&parsed, NOW, &AuthEnv::CLIENT).is_ok());
    // A tampered body fails authentication.
    let text = String::from_utf8(body)
        .unwrap()
        .replace("\"namespace\":2", "\"namespace\":4");
    let crate::rpc::types::Request::Store(t) =
        crate::rpc::types::Request::parse_body(text.as_bytes(), crate::rpc::types::Via::Onion)
            .unwrap()
    else {
        panic!("not a store");
    };
    assert_eq!(t.namespace, Namespace(4));
    assert_eq!(
        status(validate_store(&t, NOW, &AuthEnv::CLIENT)),
        StatusCode::Unauthorized
    );
}
