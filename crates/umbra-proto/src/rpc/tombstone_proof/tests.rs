use std::sync::Arc;

use umbra_crypto::Ed25519Keypair;

use super::*;
use crate::identity::AccountKeys;
use crate::rpc::encoding::MessageData;
use crate::rpc::sign::{AuthParams, Perms, Signer, nothing_revoked};
use crate::rpc::status::StatusCode;
use crate::rpc::types::{
    DeleteAllParams, DeleteBeforeParams, DeleteParams, ExpireAllParams, ExpireParams, Expiries,
    StoreParams,
};

const NOW: u64 = 1_700_000_000_000;
/// Catch-up hours after the request: only freshness is skipped.
const LATER: u64 = NOW + 5 * 3_600_000;

fn owner() -> AccountKeys {
    AccountKeys::from_seed(&[1; 32])
}

fn stranger() -> AccountKeys {
    AccountKeys::from_seed(&[2; 32])
}

fn h(n: u8) -> MessageHash {
    MessageHash::from_digest(&[n; 32])
}

fn tomb(account: AccountId, hash: MessageHash, ns: i16, new_expiry: Option<u64>) -> PushTombstone {
    PushTombstone {
        account,
        hash,
        namespace: Namespace(ns),
        new_expiry,
        keep_until: NOW + 86_400_000,
        proof: None,
    }
}

fn body(req: Request) -> Vec<u8> {
    req.to_body()
}

fn verified(bytes: &[u8]) -> Result<VerifiedProof, ProofError> {
    ProofRequest::parse(bytes)?.verify(LATER, &nothing_revoked)
}

fn delete(keys: &AccountKeys, hashes: Vec<MessageHash>) -> Vec<u8> {
    let mut p = DeleteParams {
        pubkey: keys.account_id(),
        messages: hashes,
        required: false,
        auth: AuthParams::default(),
    };
    p.auth = Signer::Account(keys).auth(&p.signed_string());
    body(Request::Delete(p))
}

#[test]
fn delete_proof_covers_only_its_hashes() {
    let acc = owner().account_id();
    let v = verified(&delete(&owner(), vec![h(1), h(2)])).expect("valid hours later");
    assert_eq!(v.account(), &acc);
    assert_eq!(
        v.covers(&tomb(acc, h(2), 0, None)),
        Ok(Coverage {
            max_message_timestamp: None
        })
    );
    assert!(matches!(
        v.covers(&tomb(acc, h(3), 0, None)),
        Err(ProofError::NotCovered(_))
    ));
    // A delete never shortens.
    assert!(matches!(
        v.covers(&tomb(acc, h(1), 0, Some(NOW))),
        Err(ProofError::NotCovered(_))
    ));
    // Another account's tombstone.
    let other = stranger().account_id();
    assert_eq!(
        v.covers(&tomb(other, h(1), 0, None)),
        Err(ProofError::OtherAccount)
    );
}

#[test]
fn forged_and_foreign_signatures_are_refused() {
    // A request for the owner's account signed by another key.
    let mut p = DeleteParams {
        pubkey: owner().account_id(),
        messages: vec![h(1)],
        required: false,
        auth: AuthParams::default(),
    };
    p.auth = Signer::Account(&stranger()).auth(&p.signed_string());
    let forged = body(Request::Delete(p));
    match verified(&forged) {
        Err(ProofError::Refused(e)) => assert_eq!(e.status, StatusCode::Unauthorized),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // A hash list changed after signing.
    let text = String::from_utf8(delete(&owner(), vec![h(1)])).unwrap();
    let tampered = text.replace(h(1).as_str(), h(9).as_str());
    assert!(matches!(
        verified(tampered.as_bytes()),
        Err(ProofError::Refused(_))
    ));
    // A stranger's own valid request does not cover the owner's message.
    let v = verified(&delete(&stranger(), vec![h(1)])).unwrap();
    assert_eq!(
        v.covers(&tomb(owner().account_id(), h(1), 0, None)),
        Err(ProofError::OtherAccount)
    );
}

#[test]
fn namespace_deletions_bound_the_message_timestamp() {
    let keys = owner();
    let acc = keys.account_id();
    let mut da = DeleteAllParams {
        pubkey: acc,
        namespace: NamespaceSel::One(Namespace(3)),
        timestamp: NOW,
        auth: AuthParams::default(),
    };
    da.auth = Signer::Account(&keys).auth(&da.signed_string());
    let v = verified(&body(Request::DeleteAll(da.clone()))).expect("valid hours later");
    assert_eq!(
        v.covers(&tomb(acc, h(1), 3, None)),
        Ok(Coverage {
            max_message_timestamp: Some(NOW + NAMESPACE_DELETE_SLACK_MS)
        })
    );
    assert!(v.covers(&tomb(acc, h(1), 4, None)).is_err());
    assert!(v.covers(&tomb(acc, h(1), 3, Some(NOW))).is_err());
    // The ±60 s window still applies to the client request itself.
    assert!(validate::validate_delete_all(&da, LATER, &AuthEnv::CLIENT).is_err());

    let mut db = DeleteBeforeParams {
        pubkey: acc,
        namespace: NamespaceSel::All,
        before: NOW - 1000,
        auth: AuthParams::default(),
    };
    db.auth = Signer::Account(&keys).auth(&db.signed_string());
    let v = verified(&body(Request::DeleteBefore(db))).unwrap();
    assert_eq!(
        v.covers(&tomb(acc, h(1), -7, None)),
        Ok(Coverage {
            max_message_timestamp: Some(NOW - 1000)
        })
    );
}

fn expire(keys: &AccountKeys, shorten: bool, extend: bool, expiry: Expiries) -> Vec<u8> {
    let mut p = ExpireParams {
        pubkey: keys.account_id(),
        messages: vec![h(1), h(2)],
        expiry,
        shorten,
        extend,
        auth: AuthParams::default(),
    };
    p.auth = Signer::Account(keys).auth(&p.signed_string());
    body(Request::Expire(p))
}

#[test]
fn expire_proof_must_set_exactly_the_tombstones_expiry() {
    let acc = owner().account_id();
    let e = NOW + 3_600_000;
    // Its expiry lies in the past at catch-up time: still a valid proof.
    let v = verified(&expire(&owner(), true, false, Expiries::Single(e))).unwrap();
    assert!(v.covers(&tomb(acc, h(1), 0, Some(e))).is_ok());
    assert!(matches!(
        v.covers(&tomb(acc, h(1), 0, Some(e - 1))),
        Err(ProofError::NotCovered(_))
    ));
    assert!(v.covers(&tomb(acc, h(1), 0, None)).is_err(), "not a delete");
    assert!(
        v.covers(&tomb(acc, h(3), 0, Some(e))).is_err(),
        "not listed"
    );
    // Per-message expiries are matched by position.
    let v = verified(&expire(
        &owner(),
        false,
        false,
        Expiries::PerMessage(vec![e, e + 5]),
    ))
    .unwrap();
    assert!(v.covers(&tomb(acc, h(2), 0, Some(e + 5))).is_ok());
    assert!(v.covers(&tomb(acc, h(2), 0, Some(e))).is_err());
    // An extend-only request never shortens.
    assert!(matches!(
        verified(&expire(&owner(), false, true, Expiries::Single(e))),
        Err(ProofError::NotADeletion(_))
    ));
    // expire_all: its namespace and expiry.
    let keys = owner();
    let mut ea = ExpireAllParams {
        pubkey: acc,
        namespace: NamespaceSel::One(Namespace(2)),
        expiry: e,
        auth: AuthParams::default(),
    };
    ea.auth = Signer::Account(&keys).auth(&ea.signed_string());
    let v = verified(&body(Request::ExpireAll(ea))).unwrap();
    assert!(v.covers(&tomb(acc, h(1), 2, Some(e))).is_ok());
    assert!(v.covers(&tomb(acc, h(1), 2, Some(e - 1))).is_err());
    assert!(v.covers(&tomb(acc, h(1), 5, Some(e))).is_err());
}

fn store(keys: &AccountKeys, ns: i16) -> (Vec<u8>, MessageHash) {
    let mut p = StoreParams {
        pubkey: keys.account_id(),
        timestamp: NOW,
        ttl: Some(86_400_000),
        expiry: None,
        data: MessageData(b"profile".to_vec()),
        namespace: Namespace(ns),
        sig_timestamp: None,
        auth: AuthParams::default(),
    };
    p.auth = Signer::Account(keys).auth(&p.signed_string());
    let hash = crate::rpc::hash::message_hash(&p.pubkey, p.namespace, &p.data.0);
    (body(Request::Store(p)), hash)
}

#[test]
fn public_outbox_store_covers_the_replaced_messages_only() {
    let acc = owner().account_id();
    let (b, kept) = store(&owner(), -1);
    let v = verified(&b).unwrap();
    assert!(v.covers(&tomb(acc, h(1), -1, None)).is_ok());
    assert!(v.covers(&tomb(acc, kept, -1, None)).is_err());
    assert!(v.covers(&tomb(acc, h(1), -21, None)).is_err());
    // A store elsewhere deletes nothing.
    let (b, _) = store(&owner(), 2);
    assert!(matches!(verified(&b), Err(ProofError::NotADeletion(_))));
}

#[test]
fn subaccount_rules_and_revocation_still_apply() {
    let group = Ed25519Keypair::from_seed(&[5; 32]);
    let member = Ed25519Keypair::from_seed(&[6; 32]);
    let gid = AccountId::group(&group.public());
    let signed_by = |perms: Perms| {
        let token = SubaccountToken::new(perms, &member.public());
        let signer = Signer::Subaccount {
            key: &member,
            token,
            token_sig: token.sign(&group),
        };
        let mut p = DeleteParams {
            pubkey: gid,
            messages: vec![h(1)],
            required: false,
            auth: AuthParams::default(),
        };
        p.auth = signer.auth(&p.signed_string());
        (body(Request::Delete(p)), token)
    };
    let (ok, token) = signed_by(Perms::WRITE | Perms::DELETE);
    let parsed = ProofRequest::parse(&ok).unwrap();
    assert_eq!(parsed.subaccount(), Some(token));
    assert!(parsed.verify(LATER, &nothing_revoked).is_ok());
    let revoked = move |t: &SubaccountToken| *t == token;
    assert!(matches!(
        parsed.verify(LATER, &revoked),
        Err(ProofError::Refused(_))
    ));
    let (no_delete, _) = signed_by(Perms::WRITE);
    assert!(matches!(verified(&no_delete), Err(ProofError::Refused(_))));
}

#[test]
fn malformed_proofs_are_refused() {
    assert!(matches!(verified(b""), Err(ProofError::Malformed(_))));
    assert!(matches!(verified(b"[1]"), Err(ProofError::Malformed(_))));
    assert!(matches!(
        verified(br#"{"method":"delete","params":[]}"#),
        Err(ProofError::Malformed(_))
    ));
    assert!(matches!(
        verified(br#"{"method":"delete","params":{"pubkey":"05"}}"#),
        Err(ProofError::Malformed(_))
    ));
    assert!(matches!(
        verified(br#"{"method":"retrieve","params":{}}"#),
        Err(ProofError::NotADeletion(_))
    ));
    let huge = vec![b' '; MAX_PROOF_BYTES + 1];
    assert_eq!(
        verified(&huge).unwrap_err(),
        ProofError::TooLarge(MAX_PROOF_BYTES + 1)
    );
}

#[test]
fn encode_proof_is_the_forwarded_body() {
    let bytes = delete(&owner(), vec![h(1)]);
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    let again = encode_proof(v["method"].as_str().unwrap(), &v["params"]).unwrap();
    assert!(verified(&again).is_ok());
    let _: Arc<[u8]> = Arc::from(again);
    let big = json!({"pad": "x".repeat(MAX_PROOF_BYTES)});
    assert_eq!(encode_proof("delete", &big), None);
}
