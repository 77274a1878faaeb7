use super::*;
use crate::identity::{AccountKeys, IdPrefix};
use crate::rpc::namespace::{Namespace, NamespaceSel};
use crate::rpc::sign::{AuthParams, Perms};
use crate::rpc::types::{Expiries, Tokens};
use std::collections::BTreeMap;

const NOW: u64 = 1_700_000_000_000;

fn node() -> Ed25519Keypair {
    Ed25519Keypair::from_seed(&[0x42; 32])
}

fn acc() -> AccountId {
    AccountKeys::from_seed(&[1; 32]).account_id()
}

fn h(n: u8) -> MessageHash {
    MessageHash::from_digest(&[n; 32])
}

#[test]
fn store_round_trip() {
    let n = node();
    let r = sign_store_result(&n, h(1), NOW, true);
    assert!(verify_store_result(&n.public(), &r).is_ok());
    let other = Ed25519Keypair::from_seed(&[0x43; 32]).public();
    assert_eq!(
        verify_store_result(&other, &r),
        Err(NodeSignatureError::BadSignature("store"))
    );
    let mut t = r;
    t.hash = h(2);
    assert!(verify_store_result(&n.public(), &t).is_err());
}

#[test]
fn delete_round_trip_and_layout() {
    let n = node();
    let req = DeleteParams {
        pubkey: acc(),
        messages: vec![h(9), h(1)],
        required: false,
        auth: AuthParams::default(),
    };
    let r = sign_delete_result(&n, &req, vec![h(9), h(1)]);
    let mut sorted = vec![h(9), h(1)];
    sorted.sort();
    assert_eq!(r.deleted, sorted);
    assert!(verify_delete_result(&n.public(), &req, &r).is_ok());
    let want = format!("{}{}{}{}{}", acc(), h(9), h(1), sorted[0], sorted[1]);
    assert_eq!(
        delete_node_string(
            &acc(),
            [h(9).as_str(), h(1).as_str()],
            [h(1).as_str(), h(9).as_str()]
        ),
        want.into_bytes()
    );
    let mut t = r.clone();
    t.deleted.pop();
    assert!(verify_delete_result(&n.public(), &req, &t).is_err());
}

#[test]
fn namespace_ops_round_trip() {
    let n = node();
    let mut by_ns = BTreeMap::new();
    by_ns.insert(Namespace(0), vec![h(5), h(2)]);
    by_ns.insert(Namespace(13), vec![h(3)]);
    let req = DeleteAllParams {
        pubkey: acc(),
        namespace: NamespaceSel::All,
        timestamp: NOW,
        auth: AuthParams::default(),
    };
    let r = sign_delete_all_result(&n, &req, HashesByNamespace::ByNamespace(by_ns.clone()));
    assert!(verify_delete_all_result(&n.public(), &req, &r).is_ok());
    // One global sort across namespaces.
    let mut all = [h(5), h(2), h(3)];
    all.sort();
    let want: String =
        format!("{}{NOW}", acc()) + &all.iter().map(MessageHash::as_str).collect::<String>();
    assert!(n.public().verify(want.as_bytes(), &r.signature.0).is_ok());
    let mut t = req.clone();
    t.timestamp += 1;
    assert!(verify_delete_all_result(&n.public(), &t, &r).is_err());

    let req = DeleteBeforeParams {
        pubkey: acc(),
        namespace: Namespace(2).into(),
        before: NOW,
        auth: AuthParams::default(),
    };
    let r = sign_delete_before_result(&n, &req, HashesByNamespace::List(vec![h(4), h(1)]));
    assert!(verify_delete_before_result(&n.public(), &req, &r).is_ok());
    let mut t = r.clone();
    t.deleted = HashesByNamespace::List(vec![h(4)]);
    assert!(verify_delete_before_result(&n.public(), &req, &t).is_err());

    let req = ExpireAllParams {
        pubkey: acc(),
        namespace: NamespaceSel::All,
        expiry: NOW,
        auth: AuthParams::default(),
    };
    let r = sign_expire_all_result(&n, &req, HashesByNamespace::ByNamespace(by_ns));
    assert!(verify_expire_all_result(&n.public(), &req, &r).is_ok());
    assert!(
        verify_expire_all_result(&Ed25519Keypair::from_seed(&[1; 32]).public(), &req, &r).is_err()
    );
}

#[test]
fn expire_round_trip() {
    let n = node();
    let req = ExpireParams {
        pubkey: acc(),
        messages: vec![h(3), h(1), h(2)],
        expiry: Expiries::Single(NOW),
        shorten: false,
        extend: true,
        auth: AuthParams::default(),
    };
    let mut unchanged = BTreeMap::new();
    unchanged.insert(h(2), NOW + 9);
    let draft = ExpireResult {
        updated: vec![h(3), h(1)],
        unchanged: Some(unchanged),
        expiry: Expiries::Single(NOW),
        signature: Signature([0; 64]),
    };
    let r = sign_expire_result(&n, &req, draft);
    assert!(r.updated.windows(2).all(|w| w[0] <= w[1]));
    assert!(verify_expire_result(&n.public(), &req, &r).is_ok());
    let mut t = r.clone();
    t.unchanged = None;
    assert!(verify_expire_result(&n.public(), &req, &t).is_err());
    let mut t = r.clone();
    t.expiry = Expiries::Single(NOW + 1);
    assert!(verify_expire_result(&n.public(), &req, &t).is_err());

    // Per-message expiries stay aligned with the sorted updated list.
    let req = ExpireParams {
        expiry: Expiries::PerMessage(vec![NOW + 3, NOW + 1]),
        messages: vec![h(3), h(1)],
        ..req
    };
    let draft = ExpireResult {
        updated: vec![h(3), h(1)],
        unchanged: None,
        expiry: Expiries::PerMessage(vec![NOW + 3, NOW + 1]),
        signature: Signature([0; 64]),
    };
    let r = sign_expire_result(&n, &req, draft);
    let pos3 = r.updated.iter().position(|x| *x == h(3)).unwrap();
    assert_eq!(r.expiry.values()[pos3], NOW + 3);
    assert!(verify_expire_result(&n.public(), &req, &r).is_ok());
}

#[test]
fn expire_string_layout() {
    let s = expire_node_string(
        &acc(),
        &[5, 6],
        ["r1", "r2"],
        ["u2", "u1"],
        [("z", 9), ("a", 8)],
    );
    assert_eq!(s, format!("{}56r1r2u1u2a8z9", acc()).into_bytes());
}

#[test]
fn revocation_round_trip() {
    let n = node();
    let g = AccountId::new(IdPrefix::Group, [7; 32]);
    let tok = SubaccountToken::new(Perms::READ, &n.public());
    let req = RevokeSubaccountParams {
        pubkey: g,
        revoke: Tokens::One(tok),
        timestamp: NOW,
        auth: AuthParams::default(),
    };
    let r = sign_revoke_result(&n, &req, 1);
    assert!(verify_revoke_result(&n.public(), &req, &r).is_ok());
    let mut want = format!("{g}{NOW}").into_bytes();
    want.extend_from_slice(&tok.0);
    assert_eq!(revocation_node_string(&g, NOW, &[tok]), want);
    let ureq = UnrevokeSubaccountParams {
        pubkey: g,
        unrevoke: Tokens::One(tok),
        timestamp: NOW,
        auth: AuthParams::default(),
    };
    let u = sign_unrevoke_result(&n, &ureq, 0);
    assert!(verify_unrevoke_result(&n.public(), &ureq, &u).is_ok());
    let t = UnrevokeSubaccountParams {
        timestamp: NOW + 1,
        ..ureq
    };
    assert!(verify_unrevoke_result(&n.public(), &t, &u).is_err());
}
