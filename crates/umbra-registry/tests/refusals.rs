//! Issue 11 acceptance: nodes and clients refuse a document signed by one
//! instance only (threshold 2), one whose `p` does not chain to the epoch
//! they hold, and a replay of an older epoch; a node that polls a
//! publication URL serving such documents keeps its epoch. Record
//! submission is authenticated by the node's own key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{PARAMS, now_ms, registry_key};
use umbra_client::net::Network;
use umbra_crypto::Ed25519Keypair;
use umbra_node::NodeConfig;
use umbra_node::registry::PublicationUrl;
use umbra_proto::network::{NetworkConfig, SwarmParamsJson};
use umbra_proto::path::PathConfig;
use umbra_proto::rpc::encoding::Ed25519Hex;
use umbra_proto::rpc::node_req::NodeRequestAuth;
use umbra_proto::swarm::{NodeRecord, RegistryDocument, RegistryError};
use umbra_registry::instance::PATH_SUBMIT;
use umbra_transport::{NodeAddr, NodeClient, Request, SystemClock};

fn network(urls: Vec<String>) -> NetworkConfig {
    NetworkConfig {
        name: "refusals".into(),
        registry_keys: (0..3)
            .map(|i| Ed25519Hex(registry_key(i).public()))
            .collect(),
        threshold: 2,
        swarm_params: Some(SwarmParamsJson::from(PARAMS)),
        registry_urls: urls,
        seed_nodes: vec![],
        file_server: None,
    }
}

fn records(n: u8) -> Vec<NodeRecord> {
    (1..=n)
        .map(|i| {
            NodeRecord::sign(
                &Ed25519Keypair::from_seed(&[i; 32]),
                Ipv4Addr::LOCALHOST,
                30_000 + u16::from(i),
                [0, 1, 0],
            )
            .unwrap()
        })
        .collect()
}

fn next(prev: Option<&RegistryDocument>, at: u64, n: u8) -> RegistryDocument {
    let b = match prev {
        Some(p) => p.next_builder(at),
        None => RegistryDocument::builder(1, at),
    };
    b.params(PARAMS).nodes(records(n)).build().unwrap()
}

/// Epoch 1 and 2 (both signed by two instances), a one-signature epoch 3, a
/// two-signature epoch 3 chained to a different epoch 2.
struct Docs {
    e1: RegistryDocument,
    e2: RegistryDocument,
    e3_one_sig: RegistryDocument,
    e3_bad_chain: RegistryDocument,
}

fn docs() -> Docs {
    let (k0, k1) = (registry_key(0), registry_key(1));
    let e1 = next(None, 1_000, 6).signed(&k0).signed(&k1);
    let e2 = next(Some(&e1), 2_000, 5).signed(&k0).signed(&k2());
    let e3_one_sig = next(Some(&e2), 3_000, 4).signed(&k1);
    let other_e2 = next(Some(&e1), 2_500, 5).signed(&k0).signed(&k1);
    let e3_bad_chain = next(Some(&other_e2), 3_000, 4).signed(&k0).signed(&k1);
    assert_ne!(e3_bad_chain.prev_hash(), e2.doc_hash());
    Docs {
        e1,
        e2,
        e3_one_sig,
        e3_bad_chain,
    }
}

fn k2() -> Ed25519Keypair {
    registry_key(2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_refuse_below_threshold_bad_chain_and_replayed_documents() {
    let d = docs();
    let dir = tempfile::tempdir().unwrap();
    let cfg = NodeConfig {
        data_dir: dir.path().join("node"),
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        ..NodeConfig::default()
    };
    let h = umbra_node::start(cfg, &network(vec![]), Arc::new(SystemClock))
        .await
        .unwrap();
    let node = &h.node;
    // Epoch 1 with a single signature: below the threshold.
    let single = next(None, 1_000, 6).signed(&registry_key(0));
    let e = node.offer_registry(&single.encode()).unwrap_err();
    assert!(
        matches!(
            e,
            RegistryError::BelowThreshold {
                valid: 1,
                threshold: 2
            }
        ),
        "{e}"
    );
    assert_eq!(node.registry().epoch(), 0);

    assert_eq!(node.offer_registry(&d.e1.encode()).unwrap(), Some(1));
    assert_eq!(node.offer_registry(&d.e2.encode()).unwrap(), Some(2));
    let e = node.offer_registry(&d.e3_one_sig.encode()).unwrap_err();
    assert_eq!(e.rule(), Some(5), "{e}");
    let e = node.offer_registry(&d.e3_bad_chain.encode()).unwrap_err();
    assert!(matches!(e, RegistryError::BrokenChain { held: 2 }), "{e}");
    // A replay of epoch 1 is not adopted.
    assert_eq!(node.offer_registry(&d.e1.encode()).unwrap(), None);
    assert_eq!(node.registry().epoch(), 2);
    assert_eq!(
        node.registry().current().unwrap().doc_hash(),
        d.e2.doc_hash()
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_refuse_below_threshold_bad_chain_and_replayed_documents() {
    let d = docs();
    let net = Network::new(
        network(vec![]),
        PathConfig::default(),
        None,
        None,
        Arc::new(SystemClock),
    )
    .unwrap();
    let single = next(None, 1_000, 6).signed(&registry_key(1));
    let e = net.offer_registry(&single.encode()).await.unwrap_err();
    assert!(e.to_string().contains("rule 5"), "{e}");
    assert!(net.registry().await.is_none());
    assert!(net.offer_registry(&d.e1.encode()).await.unwrap());
    assert!(net.offer_registry(&d.e2.encode()).await.unwrap());
    let e = net
        .offer_registry(&d.e3_one_sig.encode())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("rule 5"), "{e}");
    let e = net
        .offer_registry(&d.e3_bad_chain.encode())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("rule 6"), "{e}");
    assert!(
        !net.offer_registry(&d.e1.encode()).await.unwrap(),
        "replay ignored"
    );
    assert_eq!(net.registry().await.unwrap().doc_hash(), d.e2.doc_hash());
    // A client that starts from a persisted one-signature document holds nothing.
    let again = Network::new(
        network(vec![]),
        PathConfig::default(),
        None,
        Some(&single.encode()),
        Arc::new(SystemClock),
    )
    .unwrap();
    assert!(again.registry().await.is_none());
}

/// An instance alone on a network that needs two signatures issues
/// nothing; record submission is authenticated by the node's key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_instance_publishes_nothing_and_submissions_are_authenticated() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::instance_config(dir.path(), 0);
    let l = umbra_registry::instance::bind(&cfg).await.unwrap();
    let url = PublicationUrl::format(
        l.local_addr().unwrap(),
        &registry_key(0).public(),
        umbra_registry::instance::PATH_CURRENT,
    );
    let net = network(vec![url.clone()]);
    let reg = umbra_registry::start(cfg, &net, Some(registry_key(0)), l, Arc::new(SystemClock))
        .await
        .unwrap();
    let node_cfg = NodeConfig {
        data_dir: dir.path().join("node"),
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        publication_poll_ms: 100,
        ..NodeConfig::default()
    };
    // The node is not told the publication URL, so it does not submit its
    // own record (umbrad does when it is): the submissions below are the only ones.
    let h = umbra_node::start(node_cfg, &network(vec![]), Arc::new(SystemClock))
        .await
        .unwrap();
    let record =
        NodeRecord::sign(&h.node.keys, Ipv4Addr::LOCALHOST, h.addr.port(), [0, 1, 0]).unwrap();
    let u = PublicationUrl::parse(&url).unwrap();
    let client = NodeClient::default();

    // A submission signed by another key than the record's → 401.
    let body = record.encode();
    let stranger = Ed25519Keypair::from_seed(&[9; 32]);
    {
        let auth = NodeRequestAuth::sign(&stranger, "POST", PATH_SUBMIT, 0, now_ms(), &body);
        let mut req = Request::post(PATH_SUBMIT, Bytes::from(body.clone())).unwrap();
        for (n, v) in auth.headers() {
            req = req.header(
                http::HeaderName::try_from(n).unwrap(),
                http::HeaderValue::try_from(v).unwrap(),
            );
        }
        let resp = client
            .send(&NodeAddr::new(u.addr, u.key), req)
            .await
            .unwrap();
        assert_eq!(resp.status, 401, "{}", String::from_utf8_lossy(&resp.body));
    }
    // Unsigned → 401; stale timestamp → 401.
    let req = Request::post(PATH_SUBMIT, Bytes::from(body.clone())).unwrap();
    let resp = client
        .send(&NodeAddr::new(u.addr, u.key), req)
        .await
        .unwrap();
    assert_eq!(resp.status, 401);
    let err = umbra_registry::submit_record(&client, &u, &h.node.keys, &record, now_ms() - 120_000)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
    assert!(reg.instance.store().records().is_empty());
    // The node's own signed submission is accepted.
    let ok = umbra_registry::submit_record(&client, &u, &h.node.keys, &record, now_ms())
        .await
        .unwrap();
    assert_eq!(ok, "accepted");

    // The lone instance sees the node healthy, but alone it is fewer
    // ballots than the threshold: it signs nothing and publishes nothing.
    let voted = common::eventually(Duration::from_secs(10), || async {
        reg.instance.votes().len() == 1
    })
    .await;
    assert!(voted, "the instance votes for the submitted node");
    let mut rx = reg.instance.subscribe();
    let waited = tokio::time::timeout(Duration::from_millis(2_000), rx.changed()).await;
    assert!(waited.is_err(), "no epoch is issued by one instance");
    assert!(reg.instance.lock().is_none(), "and it signed no candidate");
    assert_eq!(reg.instance.epoch(), 0);
    let resp = client
        .send(
            &NodeAddr::new(u.addr, u.key),
            Request::get(umbra_registry::instance::PATH_CURRENT).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status, 404, "nothing published");
    assert_eq!(h.node.registry().epoch(), 0);
    h.shutdown().await;
    reg.shutdown().await;
}

/// A pinned "instance" that publishes whatever the test puts there: the
/// node polling its publication URL adopts good documents only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_polling_a_publication_url_refuses_bad_documents() {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};
    let d = docs();
    let served: Arc<(Mutex<Vec<u8>>, AtomicU64)> =
        Arc::new((Mutex::new(d.e1.encode()), AtomicU64::new(0)));
    let router = {
        let served = served.clone();
        axum::Router::new().route(
            umbra_registry::instance::PATH_CURRENT,
            axum::routing::get(move || {
                let served = served.clone();
                async move {
                    served.1.fetch_add(1, Ordering::SeqCst);
                    served.0.lock().unwrap().clone()
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let tls = umbra_transport::tls::server_config(&registry_key(0)).unwrap();
    let server = tokio::spawn(async move {
        let _ = umbra_transport::Server::new(router)
            .serve_tls(listener, tls, std::future::pending())
            .await;
    });
    let url = PublicationUrl::format(
        addr,
        &registry_key(0).public(),
        umbra_registry::instance::PATH_CURRENT,
    );
    let dir = tempfile::tempdir().unwrap();
    let node_cfg = NodeConfig {
        data_dir: dir.path().join("node"),
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        publication_poll_ms: 50,
        ..NodeConfig::default()
    };
    let h = umbra_node::start(node_cfg, &network(vec![url]), Arc::new(SystemClock))
        .await
        .unwrap();
    let epoch_is = |e: u64| {
        let node = h.node.clone();
        async move { node.registry().epoch() == e }
    };
    assert!(common::eventually(Duration::from_secs(10), || epoch_is(1)).await);
    *served.0.lock().unwrap() = d.e2.encode();
    assert!(common::eventually(Duration::from_secs(10), || epoch_is(2)).await);
    for bad in [&d.e3_one_sig, &d.e3_bad_chain, &d.e1] {
        *served.0.lock().unwrap() = bad.encode();
        let seen = served.1.load(Ordering::SeqCst);
        // Two more polls have fetched the bad document.
        let polled = common::eventually(Duration::from_secs(10), || {
            let served = served.clone();
            async move { served.1.load(Ordering::SeqCst) >= seen + 2 }
        })
        .await;
        assert!(polled);
        assert_eq!(
            h.node.registry().epoch(),
            2,
            "epoch {} refused",
            bad.epoch()
        );
        assert_eq!(
            h.node.registry().current().unwrap().doc_hash(),
            d.e2.doc_hash()
        );
    }
    h.shutdown().await;
    server.abort();
}
