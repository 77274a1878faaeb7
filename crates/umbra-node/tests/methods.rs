//! Account methods through a swarm of real nodes, with requests written
//! from `storage-rpc.md` by hand: client rate limits (§1.4), group
//! subaccounts and their revocation (§2.3, §9.9), and `delete`, `expire`,
//! `get_expiries`, `delete_all`, `batch` and `sequence` (§9.3–9.8, §9.13),
//! with every member's node signature (§8.3) checked against its registry
//! key by the `umbra_proto::rpc::node_sig::verify_*` functions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use serde_json::{Value, json};
use umbra_crypto::Ed25519Keypair;
use umbra_proto::identity::{AccountId, AccountKeys};
use umbra_proto::rpc::node_sig;
use umbra_proto::rpc::types::{
    DeleteAllResult, DeleteResult, ExpireResult, Expiries, HashesByNamespace, RevocationResult,
    StoreResult,
};
use umbra_proto::rpc::{Request, Via};

/// The typed params of a request written by hand (to feed `verify_*`).
fn parsed(req: &Value) -> Request {
    Request::from_parts(req["method"].as_str().unwrap(), &req["params"], Via::Direct).unwrap()
}

/// §7: the message hash, computed from the spec formula.
fn spec_hash(account: &AccountId, ns: i16, data: &[u8]) -> String {
    let raw = account.to_bytes();
    let ns_text = if ns == 0 {
        String::new()
    } else {
        ns.to_string()
    };
    let digest = umbra_crypto::hash::blake2b_fixed::<32>(&[&raw[..], ns_text.as_bytes(), data]);
    b64(&digest).trim_end_matches('=').to_string()
}

/// Checks every member's `store` signature; returns the members that answered.
fn check_store(net: &TestNet, body: &Value, hash: &str) -> BTreeSet<usize> {
    swarm_entries::<StoreResult>(net, body)
        .into_iter()
        .map(|(i, r)| {
            assert_eq!(r.hash.as_str(), hash);
            node_sig::verify_store_result(&net.keys[i].public(), &r).unwrap();
            i
        })
        .collect()
}

fn auth_05(keys: &AccountKeys, signed: &[u8]) -> Value {
    json!({
        "pubkey": keys.account_id().to_string(),
        "pubkey_ed25519": hex::encode(keys.ed25519_public().as_bytes()),
        "signature": sig(keys, signed),
    })
}

fn with(mut base: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_requests_are_rate_limited_node_requests_are_not() {
    let net = TestNet::start_with(2, |c| {
        c.rate_limit_burst = 5;
        c.rate_limit_per_sec = 1;
    })
    .await;
    let bob = account(21);
    let owners = net.owners(&bob.account_id());
    assert_eq!(owners.len(), 2);
    let (entry, other) = (owners[0], owners[1]);

    // Drain `other`'s bucket for 127.0.0.1 with direct requests.
    let mut codes = Vec::new();
    for _ in 0..10 {
        codes.push(net.rpc(other, &json!({"method": "info"})).await.0);
    }
    let ok = codes.iter().filter(|&&c| c == 200).count();
    let limited = codes.iter().filter(|&&c| c == 429).count();
    assert!((5..=7).contains(&ok) && ok + limited == 10, "{codes:?}");

    // Stores through `entry` (from the same IP, within its own burst) are
    // fanned out to `other`, whose bucket is empty: node requests pass.
    for n in 0..4 {
        let data = format!("limited {n}").into_bytes();
        let (status, body) = net
            .rpc(
                entry,
                &store_req(&bob.account_id(), &data, now_ms(), 60_000),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let hash = spec_hash(&bob.account_id(), 0, &data);
        assert_eq!(
            check_store(&net, &body, &hash),
            BTreeSet::from([entry, other])
        );
    }
    assert_eq!(net.held(other, &bob.account_id()).await.len(), 4);
    // …while its clients are still refused.
    let mut codes = Vec::new();
    for _ in 0..3 {
        codes.push(net.rpc(other, &json!({"method": "info"})).await.0);
    }
    assert!(codes.contains(&429), "{codes:?}");
}

/// A group (`03`) account with its Ed25519 key.
fn group() -> (Ed25519Keypair, AccountId) {
    let key = Ed25519Keypair::from_seed(&[0x33; 32]);
    let mut raw = [0u8; 33];
    raw[0] = 0x03;
    raw[1..].copy_from_slice(key.public().as_bytes());
    (key, AccountId::from_bytes(&raw).unwrap())
}

/// §2.3: `03 ‖ flags ‖ 0000 ‖ subaccount key`.
fn token(flags: u8, sub: &Ed25519Keypair) -> [u8; 36] {
    let mut t = [0u8; 36];
    t[0] = 0x03;
    t[1] = flags;
    t[4..].copy_from_slice(sub.public().as_bytes());
    t
}

fn sub_auth(
    group_key: &Ed25519Keypair,
    sub: &Ed25519Keypair,
    tok: &[u8; 36],
    signed: &[u8],
) -> Value {
    json!({
        "subaccount": b64(tok),
        "subaccount_sig": b64(&group_key.sign(tok)),
        "signature": b64(&sub.sign(signed)),
    })
}

fn revocation(
    method: &str,
    field: &str,
    gid: &AccountId,
    gkey: &Ed25519Keypair,
    tok: &[u8; 36],
) -> Value {
    let ts = now_ms();
    let mut signed = format!("{method}{ts}").into_bytes();
    signed.extend_from_slice(tok);
    json!({"method": method, "params": {
        "pubkey": gid.to_string(),
        field: b64(tok),
        "timestamp": ts,
        "signature": b64(&gkey.sign(&signed)),
    }})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_subaccount_store_retrieve_revoke_unrevoke() {
    let net = TestNet::start(3).await;
    let (gkey, gid) = group();
    let owners = net.owners(&gid);
    assert!(owners.len() >= 2, "{owners:?}");
    let member = Ed25519Keypair::from_seed(&[0x34; 32]);
    let tok = token(0x01 | 0x02, &member); // read | write

    let retrieve = |at: u64| {
        let signed = format!("retrieve11{at}");
        json!({"method": "retrieve", "params": with(json!({
            "pubkey": gid.to_string(), "namespace": 11, "timestamp": at,
        }), sub_auth(&gkey, &member, &tok, signed.as_bytes()))})
    };

    // The member stores to the group's private namespace 11.
    let ts = now_ms();
    let signed = format!("store11{ts}");
    let store = json!({"method": "store", "params": with(json!({
        "pubkey": gid.to_string(), "namespace": 11, "timestamp": ts, "ttl": 600_000,
        "data": b64(b"group message"),
    }), sub_auth(&gkey, &member, &tok, signed.as_bytes()))});
    let (status, body) = net.rpc(owners[0], &store).await;
    assert_eq!(status, 200, "{body}");
    let hash = spec_hash(&gid, 11, b"group message");
    assert_eq!(check_store(&net, &body, &hash).len(), owners.len());

    // Another member of the swarm serves it to the subaccount.
    let (status, body) = net.rpc(owners[1], &retrieve(now_ms())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(retrieved_data(&body), vec![b"group message".to_vec()]);

    // A token whose signature is not the group key's is refused.
    let mut forged = retrieve(now_ms());
    forged["params"]["subaccount_sig"] = json!(b64(&member.sign(&tok)));
    assert_eq!(net.rpc(owners[1], &forged).await.0, 401);
    // A read-only token cannot store.
    let ro = token(0x01, &member);
    let ts = now_ms();
    let signed = format!("store11{ts}");
    let ro_store = json!({"method": "store", "params": with(json!({
        "pubkey": gid.to_string(), "namespace": 11, "timestamp": ts, "ttl": 600_000,
        "data": b64(b"not allowed"),
    }), sub_auth(&gkey, &member, &ro, signed.as_bytes()))});
    assert_eq!(net.rpc(owners[0], &ro_store).await.0, 401);

    // The subaccount cannot revoke itself (§2.3: account key only).
    let mut self_revoke = revocation("revoke_subaccount", "revoke", &gid, &gkey, &tok);
    let ts = self_revoke["params"]["timestamp"].as_u64().unwrap();
    let mut signed = format!("revoke_subaccount{ts}").into_bytes();
    signed.extend_from_slice(&tok);
    self_revoke["params"]["signature"] = json!(b64(&member.sign(&signed)));
    assert_eq!(net.rpc(owners[0], &self_revoke).await.0, 401);

    // The group key revokes it on every member (recursive, signed).
    let revoke = revocation("revoke_subaccount", "revoke", &gid, &gkey, &tok);
    let (status, body) = net.rpc(owners[0], &revoke).await;
    assert_eq!(status, 200, "{body}");
    let Request::RevokeSubaccount(p) = parsed(&revoke) else {
        unreachable!()
    };
    let entries = swarm_entries::<RevocationResult>(&net, &body);
    assert_eq!(entries.len(), owners.len());
    for (i, r) in &entries {
        assert_eq!(r.count, 1);
        node_sig::verify_revoke_result(&net.keys[*i].public(), &p, r).unwrap();
        assert!(node_sig::verify_revoke_result(&net.keys[(*i + 1) % 3].public(), &p, r).is_err());
    }
    for &o in &owners {
        assert_eq!(net.rpc(o, &retrieve(now_ms())).await.0, 401, "node {o}");
    }

    let unrevoke = revocation("unrevoke_subaccount", "unrevoke", &gid, &gkey, &tok);
    let (status, body) = net.rpc(owners[1], &unrevoke).await;
    assert_eq!(status, 200, "{body}");
    let Request::UnrevokeSubaccount(p) = parsed(&unrevoke) else {
        unreachable!()
    };
    for (i, r) in swarm_entries::<RevocationResult>(&net, &body) {
        assert_eq!(r.count, 1);
        node_sig::verify_unrevoke_result(&net.keys[i].public(), &p, &r).unwrap();
    }
    for &o in &owners {
        let (status, body) = net.rpc(o, &retrieve(now_ms())).await;
        assert_eq!(status, 200, "node {o}: {body}");
        assert_eq!(retrieved_data(&body), vec![b"group message".to_vec()]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_expire_get_expiries_delete_all_batch_sequence() {
    let net = TestNet::start(3).await;
    let bob = account(22);
    let id = bob.account_id();
    let owners = net.owners(&id);
    assert!(owners.len() >= 2, "{owners:?}");
    let (entry, other) = (owners[0], owners[1]);
    let ttl = 3_600_000;

    // Three messages in namespace 0, one in the private namespace 2.
    let now = now_ms();
    let mut h = Vec::new();
    for (n, data) in [b"one".as_slice(), b"two", b"three"]
        .into_iter()
        .enumerate()
    {
        let (status, body) = net
            .rpc(entry, &store_req(&id, data, now + n as u64, ttl))
            .await;
        assert_eq!(status, 200, "{body}");
        let hash = spec_hash(&id, 0, data);
        assert_eq!(check_store(&net, &body, &hash).len(), owners.len());
        h.push(hash);
    }
    let signed = format!("store2{now}");
    let private = json!({"method": "store", "params": with(json!({
        "timestamp": now, "ttl": ttl, "namespace": 2, "data": b64(b"private"),
    }), auth_05(&bob, signed.as_bytes()))});
    let (status, body) = net.rpc(entry, &private).await;
    assert_eq!(status, 200, "{body}");
    let h_private = spec_hash(&id, 2, b"private");
    check_store(&net, &body, &h_private);

    // get_expiries (not recursive) on another member: only existing hashes.
    let get_expiries = |hashes: &[&str]| {
        let ts = now_ms();
        let signed = format!("get_expiries{ts}{}", hashes.concat());
        json!({"method": "get_expiries", "params": with(json!({
            "timestamp": ts, "messages": hashes,
        }), auth_05(&bob, signed.as_bytes()))})
    };
    let bogus = spec_hash(&id, 0, b"never stored");
    let (status, body) = net
        .rpc(other, &get_expiries(&[&h[0], &h[1], &h[2], &bogus]))
        .await;
    assert_eq!(status, 200, "{body}");
    let want: BTreeMap<String, Value> = (0..3)
        .map(|n| (h[n].clone(), json!(now + n as u64 + ttl)))
        .collect();
    assert_eq!(
        body["expiries"]
            .as_object()
            .unwrap()
            .clone()
            .into_iter()
            .collect::<BTreeMap<_, _>>(),
        want
    );

    // expire shorten h0, h1 to +30 min: both updated on every member.
    let expire = |mode: &str, exp: Value, hashes: &[&str]| {
        let exp_text = match &exp {
            Value::Array(a) => a.iter().map(|e| e.to_string()).collect::<String>(),
            e => e.to_string(),
        };
        let signed = format!("expire{mode}{exp_text}{}", hashes.concat());
        let mut p = with(
            json!({"messages": hashes, "expiry": exp}),
            auth_05(&bob, signed.as_bytes()),
        );
        if !mode.is_empty() {
            p[mode] = json!(true);
        }
        json!({"method": "expire", "params": p})
    };
    let verify_expire = |req: &Value, body: &Value| -> Vec<(usize, ExpireResult)> {
        let Request::Expire(p) = parsed(req) else {
            unreachable!()
        };
        let entries = swarm_entries::<ExpireResult>(&net, body);
        assert_eq!(entries.len(), owners.len(), "{body}");
        for (i, r) in &entries {
            node_sig::verify_expire_result(&net.keys[*i].public(), &p, r).unwrap();
        }
        entries
    };
    let short = now_ms() + 1_800_000;
    let req = expire("shorten", json!(short), &[&h[0], &h[1]]);
    let (status, body) = net.rpc(entry, &req).await;
    assert_eq!(status, 200, "{body}");
    for (_, r) in verify_expire(&req, &body) {
        let mut want = vec![h[0].clone(), h[1].clone()];
        want.sort();
        assert_eq!(
            r.updated.iter().map(|x| x.as_str()).collect::<Vec<_>>(),
            want
        );
        assert_eq!(r.expiry, Expiries::Single(short));
        assert_eq!(r.unchanged, Some(BTreeMap::new()));
    }

    // expire extend h0, h2 to +40 min: h0 extended, h2 (at +60 min) unchanged.
    let ext = now_ms() + 2_400_000;
    let req = expire("extend", json!(ext), &[&h[0], &h[2]]);
    let (status, body) = net.rpc(other, &req).await;
    assert_eq!(status, 200, "{body}");
    for (_, r) in verify_expire(&req, &body) {
        assert_eq!(r.updated.len(), 1);
        assert_eq!(r.updated[0].as_str(), h[0]);
        let unchanged = r.unchanged.unwrap();
        assert_eq!(unchanged.len(), 1);
        let (uh, ue) = unchanged.iter().next().unwrap();
        assert_eq!((uh.as_str(), *ue), (h[2].as_str(), now + 2 + ttl));
    }

    // Per-message expiries, no mode: `expiry` aligned with sorted `updated`.
    let (e1, e2) = (now_ms() + 1_000_000, now_ms() + 1_100_000);
    let req = expire("", json!([e1, e2]), &[&h[1], &h[2]]);
    let (status, body) = net.rpc(entry, &req).await;
    assert_eq!(status, 200, "{body}");
    for (_, r) in verify_expire(&req, &body) {
        let mut want = [(h[1].clone(), e1), (h[2].clone(), e2)];
        want.sort();
        assert_eq!(
            r.updated
                .iter()
                .map(|x| x.as_str().to_string())
                .collect::<Vec<_>>(),
            want.iter().map(|(x, _)| x.clone()).collect::<Vec<_>>()
        );
        assert_eq!(
            r.expiry,
            Expiries::PerMessage(want.iter().map(|(_, e)| *e).collect())
        );
        assert_eq!(r.unchanged, None);
    }
    // Every member applied the expiries.
    for &o in &owners {
        let (_, body) = net.rpc(o, &get_expiries(&[&h[0], &h[1], &h[2]])).await;
        assert_eq!(body["expiries"][&h[0]], json!(ext), "node {o}");
        assert_eq!(body["expiries"][&h[1]], json!(e1), "node {o}");
        assert_eq!(body["expiries"][&h[2]], json!(e2), "node {o}");
    }

    // delete h1 (required): deleted on every member, signatures verify.
    let delete = |hashes: &[&str]| {
        let signed = format!("delete{}", hashes.concat());
        json!({"method": "delete", "params": with(json!({
            "messages": hashes, "required": true,
        }), auth_05(&bob, signed.as_bytes()))})
    };
    let req = delete(&[&h[1], &bogus]);
    let (status, body) = net.rpc(entry, &req).await;
    assert_eq!(status, 200, "{body}");
    let Request::Delete(p) = parsed(&req) else {
        unreachable!()
    };
    for (i, r) in swarm_entries::<DeleteResult>(&net, &body) {
        assert_eq!(r.deleted.len(), 1);
        assert_eq!(r.deleted[0].as_str(), h[1]);
        node_sig::verify_delete_result(&net.keys[i].public(), &p, &r).unwrap();
        // Tampering with the list breaks the signature.
        let mut t = r.clone();
        t.deleted.clear();
        assert!(node_sig::verify_delete_result(&net.keys[i].public(), &p, &t).is_err());
    }
    // Nothing left to delete with `required` → 404.
    let (status, body) = net.rpc(other, &delete(&[&h[1]])).await;
    assert_eq!(status, 404, "{body}");

    // batch: a store (fanned out, signed) and a retrieve.
    let batch = json!({"method": "batch", "params": {"requests": [
        store_req(&id, b"four", now_ms(), ttl),
        retrieve_req(&bob, now_ms()),
    ]}});
    let (status, body) = net.rpc(entry, &batch).await;
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["code"], json!(200));
    let h4 = spec_hash(&id, 0, b"four");
    assert_eq!(
        check_store(&net, &results[0]["body"], &h4).len(),
        owners.len()
    );
    assert_eq!(results[1]["code"], json!(200));
    assert!(body["t"].is_u64());

    // sequence stops at the first failure: the store after it never runs.
    let mut bad = retrieve_req(&bob, now_ms());
    bad["params"]["signature"] = json!(sig(&account(99), b"retrieve0"));
    let sequence = json!({"method": "sequence", "params": {"requests": [
        bad,
        store_req(&id, b"five", now_ms(), ttl),
    ]}});
    let (status, body) = net.rpc(entry, &sequence).await;
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{body}");
    assert_eq!(results[0]["code"], json!(401));
    let want: BTreeSet<Vec<u8>> = [b"one".to_vec(), b"three".to_vec(), b"four".to_vec()].into();
    for &o in &owners {
        assert_eq!(
            net.retrieve_all(o, &bob)
                .await
                .into_iter()
                .collect::<BTreeSet<_>>(),
            want,
            "node {o}"
        );
    }

    // delete_all of every namespace: one sorted list per namespace, signed
    // over one global sort.
    let ts = now_ms();
    let signed = format!("delete_allall{ts}");
    let req = json!({"method": "delete_all", "params": with(json!({
        "namespace": "all", "timestamp": ts,
    }), auth_05(&bob, signed.as_bytes()))});
    let (status, body) = net.rpc(other, &req).await;
    assert_eq!(status, 200, "{body}");
    let Request::DeleteAll(p) = parsed(&req) else {
        unreachable!()
    };
    let mut ns0 = vec![h[0].clone(), h[2].clone(), h4.clone()];
    ns0.sort();
    for (i, r) in swarm_entries::<DeleteAllResult>(&net, &body) {
        node_sig::verify_delete_all_result(&net.keys[i].public(), &p, &r).unwrap();
        let HashesByNamespace::ByNamespace(m) = &r.deleted else {
            panic!("{body}")
        };
        let got: BTreeMap<i16, Vec<String>> = m
            .iter()
            .map(|(k, v)| (k.0, v.iter().map(|x| x.as_str().to_string()).collect()))
            .collect();
        assert_eq!(
            got,
            BTreeMap::from([(0, ns0.clone()), (2, vec![h_private.clone()])])
        );
    }
    for &o in &owners {
        assert!(net.retrieve_all(o, &bob).await.is_empty(), "node {o}");
        assert!(net.held(o, &id).await.is_empty(), "node {o}");
    }
}
