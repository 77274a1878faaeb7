//! Node self-registration (issue 11): an `umbrad` node started with a
//! network whose publication URLs name registry instances submits its own
//! self-signed record to every instance — nobody submits for it — and is
//! listed in the next threshold-signed epoch, which it then adopts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use common::{Net, SCALE_MS};
use umbra_node::NodeConfig;
use umbra_transport::SystemClock;

/// Polls `cond` every 50 ms until it holds or `timeout` passes.
async fn until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_with_registry_urls_submit_their_own_records_and_get_listed() {
    let mut net = Net::start(3, 2, 0).await;
    let mut nodes = Vec::new();
    for i in 0..3 {
        let cfg = NodeConfig {
            data_dir: net.dir.path().join(format!("self{i}")),
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            registry_poll_ms: 60_000,
            publication_poll_ms: SCALE_MS,
            ..NodeConfig::default()
        };
        let h = umbra_node::start(cfg, &net.network, Arc::new(SystemClock))
            .await
            .unwrap();
        nodes.push(h);
    }
    let want: BTreeSet<_> = nodes.iter().map(|h| h.public()).collect();
    // Every instance holds every node's record, signed by the node, with the
    // address the node listens on.
    for k in 0..3 {
        let inst = net.registry(k).instance.clone();
        until(Duration::from_secs(20), "candidate records", || {
            inst.store()
                .records()
                .keys()
                .copied()
                .collect::<BTreeSet<_>>()
                == want
        })
        .await;
        let records = inst.store().records();
        for h in &nodes {
            let r = &records[&h.public()];
            assert!(r.verify().is_ok());
            assert_eq!(
                (r.ipv4, r.https_port),
                (Ipv4Addr::LOCALHOST, h.addr.port()),
                "the record names the node's bound address"
            );
        }
    }
    // The instances agree on an epoch listing exactly these nodes...
    let inst = net.registry(0).instance.clone();
    until(
        Duration::from_secs(30),
        "an epoch listing the nodes",
        || {
            inst.current().is_some_and(|d| {
                d.nodes().iter().map(|r| r.ed25519).collect::<BTreeSet<_>>() == want
            })
        },
    )
    .await;
    // ...and the nodes adopt it from the publication URLs.
    for h in &nodes {
        let node = h.node.clone();
        until(Duration::from_secs(20), "node adopts the epoch", || {
            node.registry().is_ready()
        })
        .await;
    }
    for h in nodes {
        h.shutdown().await;
    }
    for k in 0..3 {
        net.kill_registry(k).await;
    }
}

/// A node started while its registry instance is down keeps retrying (with
/// backoff) and its record arrives once the instance is up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_retries_until_its_instance_is_up() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::instance_config(dir.path(), 0);
    let l = umbra_registry::instance::bind(&cfg).await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let network = umbra_proto::network::NetworkConfig {
        name: "self-registration".into(),
        registry_keys: vec![umbra_proto::rpc::encoding::Ed25519Hex(
            common::registry_key(0).public(),
        )],
        threshold: 1,
        swarm_params: Some(umbra_proto::network::SwarmParamsJson::from(common::PARAMS)),
        registry_urls: vec![umbra_node::registry::PublicationUrl::format(
            addr,
            &common::registry_key(0).public(),
            umbra_registry::instance::PATH_CURRENT,
        )],
        seed_nodes: vec![],
        file_server: None,
    };
    let node_cfg = NodeConfig {
        data_dir: dir.path().join("node"),
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        ..NodeConfig::default()
    };
    let h = umbra_node::start(node_cfg, &network, Arc::new(SystemClock))
        .await
        .unwrap();
    // Its first attempts are refused (nothing listens)...
    tokio::time::sleep(Duration::from_millis(300)).await;
    // ...then the instance comes up on the published address.
    let mut cfg = cfg;
    cfg.listen = addr;
    let l = umbra_registry::instance::bind(&cfg).await.unwrap();
    let reg = umbra_registry::start(
        cfg,
        &network,
        Some(common::registry_key(0)),
        l,
        Arc::new(SystemClock),
    )
    .await
    .unwrap();
    let inst = reg.instance.clone();
    let key = h.public();
    until(Duration::from_secs(20), "the retried submission", || {
        inst.store().records().contains_key(&key)
    })
    .await;
    h.shutdown().await;
    reg.shutdown().await;
}
