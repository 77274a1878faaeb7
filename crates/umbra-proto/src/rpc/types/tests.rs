use super::*;
use crate::identity::AccountKeys;
use crate::rpc::encoding::b64;
use crate::rpc::hash::message_hash;
use crate::rpc::sign::Signer;
use proptest::prelude::*;
use serde_json::json;

const NOW: u64 = 1_700_000_000_000;

fn keys() -> AccountKeys {
    AccountKeys::from_seed(&[1; 32])
}

fn acc() -> AccountId {
    keys().account_id()
}

fn h(n: u8) -> MessageHash {
    MessageHash::from_digest(&[n; 32])
}

fn round_trip(req: Request) {
    let body = req.to_body();
    let back = Request::parse_body(&body, Via::Onion)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&body)));
    assert_eq!(back, req);
}

fn parse(method: &str, params: Value) -> Result<Request, RpcError> {
    Request::from_parts(method, &params, Via::Onion)
}

fn code(method: &str, params: Value) -> u16 {
    match parse(method, params) {
        Ok(r) => panic!("accepted {r:?}"),
        Err(e) => e.code(),
    }
}

fn store_json() -> Value {
    json!({"pubkey": acc().to_string(), "timestamp": NOW, "ttl": 86_400_000u64, "data": b64(b"hi")})
}

#[test]
fn every_request_round_trips() {
    let k = keys();
    let token = SubaccountToken::new(sign::Perms::READ, &k.ed25519_public());
    let mut store = StoreParams {
        pubkey: acc(),
        timestamp: NOW,
        ttl: Some(1000),
        expiry: None,
        data: MessageData(b"x".to_vec()),
        namespace: Namespace(-11),
        sig_timestamp: Some(NOW + 1),
        auth: AuthParams::default(),
    };
    store.auth = Signer::Account(&k).auth(&store.signed_string());
    let reqs = vec![
        Request::Store(store),
        Request::Retrieve(RetrieveParams {
            pubkey: acc(),
            namespace: Namespace(2),
            last_hash: Some(h(1)),
            max_count: Some(3),
            max_size: Some(-4),
            timestamp: Some(NOW),
            auth: Signer::Account(&k).auth(b"x"),
        }),
        Request::Delete(DeleteParams {
            pubkey: acc(),
            messages: vec![h(1), h(2)],
            required: true,
            auth: AuthParams::default(),
        }),
        Request::DeleteAll(DeleteAllParams {
            pubkey: acc(),
            namespace: NamespaceSel::All,
            timestamp: NOW,
            auth: AuthParams::default(),
        }),
        Request::DeleteBefore(DeleteBeforeParams {
            pubkey: acc(),
            namespace: Namespace(5).into(),
            before: NOW,
            auth: AuthParams::default(),
        }),
        Request::Expire(ExpireParams {
            pubkey: acc(),
            messages: vec![h(1), h(2)],
            expiry: Expiries::PerMessage(vec![NOW, NOW + 1]),
            shorten: false,
            extend: true,
            auth: AuthParams::default(),
        }),
        Request::Expire(ExpireParams {
            pubkey: acc(),
            messages: vec![h(1)],
            expiry: Expiries::Single(NOW),
            shorten: true,
            extend: false,
            auth: AuthParams::default(),
        }),
        Request::ExpireAll(ExpireAllParams {
            pubkey: acc(),
            namespace: NamespaceSel::default(),
            expiry: NOW,
            auth: AuthParams::default(),
        }),
        Request::GetExpiries(GetExpiriesParams {
            pubkey: acc(),
            messages: vec![h(3)],
            timestamp: NOW,
            auth: AuthParams::default(),
        }),
        Request::RevokeSubaccount(RevokeSubaccountParams {
            pubkey: AccountId::new(IdPrefix::Group, [9; 32]),
            revoke: Tokens::One(token),
            timestamp: NOW,
            auth: AuthParams::default(),
        }),
        Request::UnrevokeSubaccount(UnrevokeSubaccountParams {
            pubkey: AccountId::new(IdPrefix::Group, [9; 32]),
            unrevoke: Tokens::Many(vec![token, token]),
            timestamp: NOW,
            auth: AuthParams::default(),
        }),
        Request::GetSwarm(GetSwarmParams { pubkey: acc() }),
        Request::Info(InfoParams {}),
        Request::GetRegistry(GetRegistryParams { epoch: Some(4) }),
        Request::GetRegistry(GetRegistryParams { epoch: None }),
        Request::Batch(BatchParams {
            requests: vec![SubRequest::from_request(&Request::Info(InfoParams {}))],
        }),
        Request::Sequence(BatchParams {
            requests: vec![SubRequest::from_request(&Request::GetSwarm(
                GetSwarmParams { pubkey: acc() },
            ))],
        }),
        Request::ProxyFetch(ProxyFetchParams {
            url: "https://example.org/a?b=c".into(),
            accept: ProxyAccept::Html,
        }),
    ];
    for r in reqs {
        round_trip(r);
    }
}

proptest! {
    #[test]
    fn store_round_trips(
        data in proptest::collection::vec(any::<u8>(), 0..300),
        ns in any::<i16>(),
        ts in MIN_TIMESTAMP_MS..u64::MAX / 2,
        ttl in 0..=u64::MAX / 2, // timestamp + ttl must fit in u64 (else 400)
        use_ttl in any::<bool>(),
    ) {
        let p = StoreParams {
            pubkey: acc(),
            timestamp: ts,
            ttl: use_ttl.then_some(ttl),
            expiry: (!use_ttl).then_some(ts),
            data: MessageData(data),
            namespace: Namespace(ns),
            sig_timestamp: None,
            auth: AuthParams::default(),
        };
        let body = Request::Store(p.clone()).to_body();
        prop_assert_eq!(Request::parse_body(&body, Via::Direct).unwrap(), Request::Store(p));
    }

    #[test]
    fn expire_round_trips(n in 1usize..20, per in any::<bool>(), e in MIN_TIMESTAMP_MS..u64::MAX) {
        let messages: Vec<MessageHash> = (0..n).map(|i| h(i as u8)).collect();
        let expiry = if per { Expiries::PerMessage(vec![e; n]) } else { Expiries::Single(e) };
        let p = ExpireParams { pubkey: acc(), messages, expiry, shorten: false, extend: false, auth: AuthParams::default() };
        let body = Request::Expire(p.clone()).to_body();
        prop_assert_eq!(Request::parse_body(&body, Via::Direct).unwrap(), Request::Expire(p));
    }

    #[test]
    fn parse_body_never_panics(b in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Request::parse_body(&b, Via::Onion);
    }

    #[test]
    fn parse_json_never_panics(s in r#"\{"method":"(store|retrieve|expire|delete_all|batch)","params":\{.{0,80}\}\}"#) {
        let _ = Request::parse_body(s.as_bytes(), Via::Onion);
    }

    #[test]
    fn retrieve_response_round_trips(n in 0usize..5, more in any::<bool>(), t in any::<u64>()) {
        let r = RetrieveResponse {
            messages: (0..n).map(|i| RetrievedMessage { hash: h(i as u8), timestamp: t, expiration: t / 2, data: Base64Bytes(vec![i as u8; i]) }).collect(),
            more,
            t,
        };
        let s = serde_json::to_string(&r).unwrap();
        prop_assert_eq!(serde_json::from_str::<RetrieveResponse>(&s).unwrap(), r);
    }
}

#[test]
fn strictness_400() {
    let mut p = store_json();
    assert!(parse("store", p.clone()).is_ok());
    p["timestamp"] = json!(NOW.to_string());
    assert_eq!(code("store", p), 400, "stringified integer");
    let mut p = store_json();
    p["ttl"] = json!("86400000");
    assert_eq!(code("store", p), 400);
    let mut p = store_json();
    p["timestamp"] = json!(999_999_999u64);
    let e = parse("store", p).unwrap_err();
    assert_eq!(e.code(), 400);
    assert!(
        e.message.contains("timestamp must be in milliseconds"),
        "{}",
        e.message
    );
    let mut p = store_json();
    p["expiry"] = json!(NOW + 1000);
    assert_eq!(code("store", p), 400, "ttl and expiry");
    let mut p = store_json();
    p.as_object_mut().unwrap().remove("ttl");
    assert_eq!(code("store", p), 400, "neither ttl nor expiry");
    let mut p = store_json();
    p["namespace"] = json!(null);
    assert_eq!(code("store", p), 400, "null namespace");
    let mut p = store_json();
    p["sig_timestamp"] = json!(null);
    assert_eq!(code("store", p), 400, "null optional");
    let mut p = store_json();
    p["namespace"] = json!(40000);
    assert_eq!(code("store", p), 400);
    let mut p = store_json();
    p["namespace"] = json!("all");
    assert_eq!(code("store", p), 400, "all is not allowed for store");
    let mut p = store_json();
    p["pubkey"] = json!(format!("15{}", "00".repeat(32)));
    assert_eq!(code("store", p), 400, "unsupported prefix");
    let mut p = store_json();
    let v = p.as_object_mut().unwrap().remove("pubkey").unwrap();
    p["pubKey"] = v;
    assert_eq!(code("store", p), 400, "no aliases");
    let mut p = store_json();
    p["unknown_thing"] = json!({"x": 1});
    assert!(parse("store", p).is_ok(), "unknown params are ignored");
    let mut p = store_json();
    p["data"] = json!(b64(&vec![0u8; 76_801]));
    assert_eq!(code("store", p), 400, "oversize data");
    let mut p = store_json();
    p["data"] = json!(b64(&vec![0u8; 76_800]));
    assert!(parse("store", p).is_ok());
    let mut p = store_json();
    p["signature"] = json!("abc");
    assert_eq!(code("store", p), 400, "bad signature encoding");
    let mut p = store_json();
    p["subaccount"] = json!(42);
    assert_eq!(code("store", p), 400);
    // Uppercase pubkey accepted.
    let mut p = store_json();
    p["pubkey"] = json!(acc().to_string().to_uppercase());
    assert!(parse("store", p).is_ok());
}

#[test]
fn strictness_other_methods() {
    let a = acc().to_string();
    let hashes: Vec<String> = (0..1001).map(|i| h((i % 256) as u8).to_string()).collect();
    assert_eq!(
        code("delete", json!({"pubkey": a, "messages": hashes})),
        400
    );
    assert!(parse("delete", json!({"pubkey": a, "messages": &hashes[..1000]})).is_ok());
    assert_eq!(code("delete", json!({"pubkey": a, "messages": []})), 400);
    assert_eq!(
        code("delete", json!({"pubkey": a, "messages": ["hash4321"]})),
        400,
        "bad hash"
    );
    assert_eq!(
        code(
            "delete",
            json!({"pubkey": a, "messages": [h(1).to_string()], "required": "true"})
        ),
        400
    );
    let m = [h(1).to_string(), h(2).to_string()];
    assert_eq!(
        code(
            "expire",
            json!({"pubkey": a, "messages": m, "expiry": NOW, "shorten": true, "extend": true})
        ),
        400
    );
    assert_eq!(
        code(
            "expire",
            json!({"pubkey": a, "messages": m, "expiry": [NOW]})
        ),
        400,
        "per-message count"
    );
    assert!(
        parse(
            "expire",
            json!({"pubkey": a, "messages": m, "expiry": [NOW, NOW]})
        )
        .is_ok()
    );
    assert_eq!(
        code(
            "expire",
            json!({"pubkey": a, "messages": m, "expiry": [NOW, "1"]})
        ),
        400
    );
    assert_eq!(
        code(
            "delete_all",
            json!({"pubkey": a, "namespace": "ALL", "timestamp": NOW})
        ),
        400
    );
    assert!(
        parse(
            "delete_all",
            json!({"pubkey": a, "namespace": "all", "timestamp": NOW})
        )
        .is_ok()
    );
    assert_eq!(
        code(
            "retrieve",
            json!({"pubkey": a, "lastHash": "x", "last_hash": "nothash"})
        ),
        400
    );
    let r = parse("retrieve", json!({"pubkey": a, "last_hash": ""})).unwrap();
    assert!(matches!(
        r,
        Request::Retrieve(RetrieveParams {
            last_hash: None,
            ..
        })
    ));
    assert_eq!(code("retrieve", json!({"pubkey": a, "max_size": 1.5})), 400);
    // revoke: 03 only, 1..50 tokens, one or a list.
    let g = AccountId::new(IdPrefix::Group, [9; 32]).to_string();
    let tok = SubaccountToken::new(sign::Perms::READ, &keys().ed25519_public());
    assert_eq!(
        code(
            "revoke_subaccount",
            json!({"pubkey": a, "revoke": tok.to_base64(), "timestamp": NOW})
        ),
        400
    );
    assert!(
        parse(
            "revoke_subaccount",
            json!({"pubkey": g, "revoke": hex::encode(tok.0), "timestamp": NOW})
        )
        .is_ok()
    );
    let many: Vec<String> = (0..51).map(|_| tok.to_base64()).collect();
    assert_eq!(
        code(
            "unrevoke_subaccount",
            json!({"pubkey": g, "unrevoke": many, "timestamp": NOW})
        ),
        400
    );
    assert!(
        parse(
            "unrevoke_subaccount",
            json!({"pubkey": g, "unrevoke": &many[..50], "timestamp": NOW})
        )
        .is_ok()
    );
    assert_eq!(
        code(
            "revoke_subaccount",
            json!({"pubkey": g, "unrevoke": [tok.to_base64()], "timestamp": NOW})
        ),
        400
    );
    // pubkey_ed25519 with a 03 account.
    assert_eq!(
        code(
            "revoke_subaccount",
            json!({"pubkey": g, "revoke": [tok.to_base64()], "timestamp": NOW, "pubkey_ed25519": "00".repeat(32)})
        ),
        400
    );
    assert_eq!(code("get_registry", json!({"epoch": "3"})), 400);
    assert_eq!(code("get_swarm", json!({})), 400);
}

#[test]
fn envelope_rules() {
    assert_eq!(
        Request::parse_body(b"not json", Via::Onion)
            .unwrap_err()
            .code(),
        400
    );
    assert_eq!(
        Request::parse_body(br#"{"params":{}}"#, Via::Onion)
            .unwrap_err()
            .code(),
        400
    );
    assert_eq!(
        Request::parse_body(br#"{"method":"info","params":[]}"#, Via::Onion)
            .unwrap_err()
            .code(),
        400
    );
    assert_eq!(
        Request::parse_body(br#"{"method":"oxend_request","params":{}}"#, Via::Onion)
            .unwrap_err()
            .code(),
        400
    );
    assert_eq!(
        Request::parse_body(
            br#"{"method":"get_snodes_for_pubkey","params":{}}"#,
            Via::Onion
        )
        .unwrap_err()
        .code(),
        400
    );
    assert_eq!(
        Request::parse_body(br#"{"method":"Info","params":{}}"#, Via::Onion)
            .unwrap_err()
            .code(),
        400
    );
    assert!(Request::parse_body(br#"{"method":"info","params":{},"id":5}"#, Via::Direct).is_ok());
    assert!(Request::parse_body(br#"{"method":"info"}"#, Via::Direct).is_ok());
    let big = vec![b' '; crate::rpc::limits::MAX_BODY_BYTES + 1];
    assert_eq!(
        Request::parse_body(&big, Via::Onion).unwrap_err().code(),
        413
    );
    // proxy_fetch only through onion requests.
    let pf =
        br#"{"method":"proxy_fetch","params":{"url":"https://example.org/","accept":"image"}}"#;
    assert!(Request::parse_body(pf, Via::Onion).is_ok());
    assert_eq!(
        Request::parse_body(pf, Via::Direct).unwrap_err().code(),
        400
    );
    assert_eq!(
        Request::parse_body(pf, Via::Forwarded).unwrap_err().code(),
        400
    );
}

#[test]
fn batch_rules() {
    let info = json!({"method": "info", "params": {}});
    let ok = parse("batch", json!({"requests": vec![info.clone(); 20]})).unwrap();
    assert_eq!(ok.method(), Method::Batch);
    assert_eq!(
        code("batch", json!({"requests": vec![info.clone(); 21]})),
        400
    );
    assert_eq!(code("sequence", json!({"requests": []})), 400);
    for nested in ["batch", "sequence", "proxy_fetch"] {
        assert_eq!(
            code(
                "batch",
                json!({"requests": [{"method": nested, "params": {}}]})
            ),
            400,
            "{nested}"
        );
    }
    assert_eq!(
        code(
            "batch",
            json!({"requests": [{"method": "info", "params": 3}]})
        ),
        400
    );
    // A subrequest with bad params is that subrequest's own 400.
    let Request::Sequence(b) = parse(
        "sequence",
        json!({"requests": [info, {"method": "store", "params": {}}, {"method": "nope"}]}),
    )
    .unwrap() else {
        panic!("not a sequence");
    };
    assert!(b.requests[0].parse().is_ok());
    assert_eq!(b.requests[1].parse().unwrap_err().code(), 400);
    assert_eq!(b.requests[2].parse().unwrap_err().code(), 400);
    assert_eq!(
        b.requests[0].to_json(),
        json!({"method": "info", "params": {}})
    );
}

#[test]
fn retrieve_response_exact_json() {
    let r = RetrieveResponse {
        messages: vec![RetrievedMessage {
            hash: h(0),
            timestamp: NOW,
            expiration: NOW + 5,
            data: Base64Bytes(b"hi".to_vec()),
        }],
        more: false,
        t: NOW,
    };
    let text = serde_json::to_string(&r).unwrap();
    assert_eq!(
        text,
        format!(
            r#"{{"messages":[{{"hash":"{}","timestamp":1700000000000,"expiration":1700000000005,"data":"aGk="}}],"more":false,"t":1700000000000}}"#,
            h(0)
        )
    );
}

#[test]
fn store_result_and_swarm_shapes() {
    let sig = Signature([1; 64]);
    let r = StoreResult {
        hash: h(1),
        signature: sig,
        expiry: NOW,
        already: false,
    };
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(
        v,
        json!({"hash": h(1).to_string(), "signature": sig.to_base64(), "expiry": NOW})
    );
    let r2 = StoreResult {
        already: true,
        ..r.clone()
    };
    assert_eq!(serde_json::to_value(&r2).unwrap()["already"], json!(true));

    let k1 = Ed25519Hex(keys().ed25519_public());
    let k2 = Ed25519Hex(AccountKeys::from_seed(&[2; 32]).ed25519_public());
    let k3 = Ed25519Hex(AccountKeys::from_seed(&[3; 32]).ed25519_public());
    let k4 = Ed25519Hex(AccountKeys::from_seed(&[4; 32]).ed25519_public());
    let k5 = Ed25519Hex(AccountKeys::from_seed(&[5; 32]).ed25519_public());
    let mut swarm = BTreeMap::new();
    swarm.insert(k1, NodeResult::Ok(r.clone()));
    swarm.insert(k2, NodeResult::Failed(NodeFailure::Timeout));
    swarm.insert(
        k3,
        NodeResult::Failed(NodeFailure::Code {
            code: 421,
            reason: "not mine".into(),
        }),
    );
    swarm.insert(k4, NodeResult::Failed(NodeFailure::BadPeerResponse));
    swarm.insert(k5, NodeResult::Failed(NodeFailure::QueryFailure));
    let resp = SwarmResponse { swarm, t: NOW };
    assert_eq!(resp.status(), StatusCode::Ok);
    let v = serde_json::to_value(&resp).unwrap();
    assert_eq!(
        v["swarm"][k2.to_string()],
        json!({"failed": true, "timeout": true})
    );
    assert_eq!(
        v["swarm"][k3.to_string()],
        json!({"failed": true, "code": 421, "reason": "not mine"})
    );
    assert_eq!(
        v["swarm"][k4.to_string()],
        json!({"failed": true, "bad_peer_response": true})
    );
    assert_eq!(
        v["swarm"][k5.to_string()],
        json!({"failed": true, "query_failure": true})
    );
    assert_eq!(v["t"], json!(NOW));
    let back: SwarmResponse<StoreResult> = serde_json::from_value(v).unwrap();
    assert_eq!(back, resp);
    let all_failed = SwarmResponse::<StoreResult> {
        swarm: [(k2, NodeResult::Failed(NodeFailure::Timeout))].into(),
        t: NOW,
    };
    assert_eq!(all_failed.status(), StatusCode::InternalServerError);
    // Two failure reasons at once is refused.
    let bad = json!({"swarm": {k1.to_string(): {"failed": true, "timeout": true, "query_failure": true}}, "t": 1});
    assert!(serde_json::from_value::<SwarmResponse<StoreResult>>(bad).is_err());
}

#[test]
fn namespace_keyed_results() {
    let mut m = BTreeMap::new();
    m.insert(Namespace(-11), vec![h(2)]);
    m.insert(Namespace(0), vec![h(1), h(3)]);
    let r = DeleteAllResult {
        deleted: HashesByNamespace::ByNamespace(m),
        signature: Signature([0; 64]),
    };
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["deleted"]["-11"], json!([h(2).to_string()]));
    assert_eq!(
        v["deleted"]["0"],
        json!([h(1).to_string(), h(3).to_string()])
    );
    assert_eq!(serde_json::from_value::<DeleteAllResult>(v).unwrap(), r);
    assert_eq!(r.deleted.sorted_all().len(), 3);
    let list = DeleteAllResult {
        deleted: HashesByNamespace::List(vec![h(1)]),
        signature: Signature([0; 64]),
    };
    let v = serde_json::to_value(&list).unwrap();
    assert_eq!(serde_json::from_value::<DeleteAllResult>(v).unwrap(), list);
    assert!(serde_json::from_value::<HashesByNamespace>(json!({"011": []})).is_err());
    assert!(serde_json::from_value::<HashesByNamespace>(json!({"x": []})).is_err());

    let mut unchanged = BTreeMap::new();
    unchanged.insert(h(4), NOW);
    let e = ExpireResult {
        updated: vec![h(1)],
        unchanged: Some(unchanged),
        expiry: Expiries::Single(NOW),
        signature: Signature([2; 64]),
    };
    let v = serde_json::to_value(&e).unwrap();
    assert_eq!(v["unchanged"][h(4).to_string()], json!(NOW));
    assert_eq!(v["expiry"], json!(NOW));
    assert_eq!(serde_json::from_value::<ExpireResult>(v).unwrap(), e);
    let e2 = ExpireResult {
        unchanged: None,
        expiry: Expiries::PerMessage(vec![NOW]),
        ..e
    };
    let v = serde_json::to_value(&e2).unwrap();
    assert!(v.get("unchanged").is_none());
    assert_eq!(serde_json::from_value::<ExpireResult>(v).unwrap(), e2);

    let ea = ExpireAllResult {
        updated: HashesByNamespace::List(vec![h(9)]),
        signature: Signature([3; 64]),
    };
    assert_eq!(
        serde_json::from_value::<ExpireAllResult>(serde_json::to_value(&ea).unwrap()).unwrap(),
        ea
    );
    let d = DeleteResult {
        deleted: vec![h(1)],
        signature: Signature([3; 64]),
    };
    assert_eq!(
        serde_json::from_value::<DeleteResult>(serde_json::to_value(&d).unwrap()).unwrap(),
        d
    );
    let g = GetExpiriesResponse {
        expiries: [(h(1), NOW)].into(),
        t: NOW,
    };
    let v = serde_json::to_value(&g).unwrap();
    assert_eq!(v, json!({"expiries": {h(1).to_string(): NOW}, "t": NOW}));
    assert_eq!(serde_json::from_value::<GetExpiriesResponse>(v).unwrap(), g);
    let rv = RevocationResult {
        count: 2,
        signature: Signature([4; 64]),
    };
    assert_eq!(serde_json::to_value(&rv).unwrap()["count"], json!(2));
}

#[test]
fn other_response_shapes() {
    let ed = AccountKeys::from_seed(&[7; 32]);
    let sw = GetSwarmResponse {
        snodes: vec![SnodeInfo {
            pubkey_ed25519: Ed25519Hex(ed.ed25519_public()),
            pubkey_x25519: X25519Hex(ed.x25519_public()),
            ip: Ipv4Addr::new(203, 0, 113, 7),
            port_https: 22021,
        }],
        swarm: SwarmIdHex(0xab),
        epoch: 1234,
        t: NOW,
    };
    let v = serde_json::to_value(&sw).unwrap();
    assert_eq!(v["swarm"], json!("00000000000000ab"));
    assert_eq!(v["snodes"][0]["ip"], json!("203.0.113.7"));
    assert_eq!(v["snodes"][0]["port_https"], json!(22021));
    assert_eq!(v["epoch"], json!(1234));
    assert_eq!(serde_json::from_value::<GetSwarmResponse>(v).unwrap(), sw);
    let none = GetSwarmResponse {
        snodes: vec![],
        swarm: SwarmIdHex::NONE,
        epoch: 1,
        t: NOW,
    };
    assert_eq!(
        serde_json::to_value(&none).unwrap()["swarm"],
        json!("ffffffffffffffff")
    );
    assert!(serde_json::from_value::<SwarmIdHex>(json!("abc")).is_err());

    let info = InfoResponse {
        version: [1, 2, 3],
        timestamp: NOW,
        epoch: 0,
        t: NOW,
    };
    assert_eq!(
        serde_json::to_value(&info).unwrap(),
        json!({"version": [1, 2, 3], "timestamp": NOW, "epoch": 0, "t": NOW})
    );

    let reg = GetRegistryResponse {
        epoch: 3,
        registry: Some(Base64Bytes(b"doc".to_vec())),
        unchanged: false,
        t: NOW,
    };
    assert_eq!(
        serde_json::to_value(&reg).unwrap(),
        json!({"epoch": 3, "registry": "ZG9j", "t": NOW})
    );
    let same = GetRegistryResponse {
        epoch: 3,
        registry: None,
        unchanged: true,
        t: NOW,
    };
    let v = serde_json::to_value(&same).unwrap();
    assert_eq!(v, json!({"epoch": 3, "unchanged": true, "t": NOW}));
    assert_eq!(
        serde_json::from_value::<GetRegistryResponse>(v).unwrap(),
        same
    );

    let b = BatchResponse {
        results: vec![
            SubResult {
                code: 200,
                body: json!({"x": 1}),
            },
            SubResult::error(&RpcError::unauthorized("nope")),
        ],
        t: NOW,
    };
    let v = serde_json::to_value(&b).unwrap();
    assert_eq!(v["results"][1], json!({"code": 401, "body": "nope"}));
    assert_eq!(serde_json::from_value::<BatchResponse>(v).unwrap(), b);

    let pf = ProxyFetchResponse {
        status: 200,
        url: "https://example.org/".into(),
        content_type: "text/html".into(),
        data: Base64Bytes(b"<html>".to_vec()),
        truncated: true,
        t: NOW,
    };
    let v = serde_json::to_value(&pf).unwrap();
    assert_eq!(v["data"], json!("PGh0bWw+"));
    assert_eq!(serde_json::from_value::<ProxyFetchResponse>(v).unwrap(), pf);
}

#[test]
fn proxy_url_rules() {
    let t = check_proxy_url("https://Example.org/path?q=1#frag").unwrap();
    assert_eq!(
        t,
        ProxyTarget {
            host: "example.org".into(),
            port: 443,
            path: "/path?q=1".into()
        }
    );
    assert_eq!(
        check_proxy_url("https://example.org:443").unwrap().path,
        "/"
    );
    for bad in [
        "http://example.org/",
        "ftp://example.org/",
        "https://example.org:8443/",
        "https://127.0.0.1/",
        "https://10.1.2.3:443/",
        "https://[::1]/",
        "https://0x7f000001/",
        "https://2130706433/",
        "https://user@example.org/",
        "https://exa mple.org/",
        "https:///x",
        "https://-bad.org/",
        "example.org",
    ] {
        assert_eq!(check_proxy_url(bad).unwrap_err().code(), 400, "{bad}");
    }
    let long = format!("https://example.org/{}", "a".repeat(2048));
    assert!(check_proxy_url(&long).is_err());
    assert!(ProxyAccept::Html.allows("text/html; charset=utf-8"));
    assert!(!ProxyAccept::Html.allows("image/png"));
    assert!(ProxyAccept::Image.allows("IMAGE/PNG"));
    assert!(!ProxyAccept::Image.allows("image/svg+xml"));
}

#[test]
fn method_table() {
    for m in Method::ALL {
        assert_eq!(Method::from_name(m.name()), Some(m));
    }
    assert!(Method::Store.is_recursive());
    assert!(!Method::Retrieve.is_recursive());
    assert!(!Method::GetExpiries.is_recursive());
    assert!(Method::UnrevokeSubaccount.is_recursive());
    assert!(!Method::ProxyFetch.allowed_in_batch());
    assert_eq!(Method::from_name("monitor"), None);
    let _ = message_hash(&acc(), Namespace(0), b"");
}

#[test]
fn proxy_address_rules() {
    use std::net::IpAddr;
    let f = |s: &str| is_forbidden_proxy_address(s.parse::<IpAddr>().unwrap());
    for bad in [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.1.1",
        "100.64.0.1",
        "100.127.255.255",
        "224.0.0.1",
        "0.0.0.0",
        "255.255.255.255",
        "240.0.0.1",
        "::1",
        "::",
        "fc00::1",
        "fd12::1",
        "fe80::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.1.1.1",
        "192.0.2.1",
        "198.18.0.1",
    ] {
        assert!(f(bad), "{bad} must be refused");
    }
    for good in [
        "93.184.216.34",
        "1.1.1.1",
        "100.128.0.1",
        "2606:4700::1111",
        "::ffff:8.8.8.8",
    ] {
        assert!(!f(good), "{good} must be allowed");
    }
}

/// Issue 10 catalogue: a `timestamp + ttl` beyond `u64` is a malformed
/// request (400), not a saturated expiry misreported as a zero TTL (403).
#[test]
fn store_ttl_overflow_is_400() {
    let mut p = store_json();
    p["timestamp"] = json!(u64::MAX);
    p["ttl"] = json!(60_000);
    assert_eq!(code("store", p), 400);
    let mut p = store_json();
    p["ttl"] = json!(u64::MAX);
    assert_eq!(code("store", p), 400);
}
