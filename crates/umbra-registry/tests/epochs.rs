//! Issue 11 acceptance: registry instances admit nodes, drop dead ones in a
//! threshold-signed epoch that nodes adopt (and hand their data over), and
//! keep working when instances die — or stop issuing when fewer than the
//! threshold remain, while the network keeps working on the last epoch.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Net, SCALE_MS, account, eventually, registry_key};
use umbra_proto::swarm::RegistryDocument;
use umbra_registry::agreement::valid_signatures;

fn signers(net: &Net, doc: &RegistryDocument) -> Vec<usize> {
    let cfg = net.network.registry_config().unwrap();
    let msg = doc.signing_message();
    (0..net.registries.len())
        .filter(|&i| {
            let k = registry_key(i).public();
            cfg.pinned_keys().contains(&k)
                && doc
                    .signatures()
                    .iter()
                    .any(|s| s.key == k && k.verify(&msg, &s.signature).is_ok())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_node_leaves_the_next_epoch_and_no_acknowledged_message_is_lost() {
    let mut net = Net::start(3, 2, 12).await;
    let cfg = net.network.registry_config().unwrap();
    let e1 = net
        .wait_epoch(Duration::from_secs(40), |d| d.nodes().len() == 12)
        .await;
    assert!(
        valid_signatures(&e1, &cfg) >= 2,
        "epoch 1 has the threshold"
    );
    assert!(e1.swarm_ids().len() >= 3, "12 nodes form several swarms");

    // Acknowledged messages in every swarm.
    let mut sent = Vec::new();
    for a in 1..=30u8 {
        let acc = account(a).account_id();
        let data = format!("message for account {a}").into_bytes();
        net.store(&e1, &acc, &data).await;
        sent.push((acc, data));
    }
    // The victim owns the first account's messages.
    let victim_key = e1.members_for(&sent[0].0)[0].ed25519;
    let victim = net.index_of(&victim_key);
    let killed = Instant::now();
    net.kill_node(victim).await;

    let e2 = net
        .wait_epoch(Duration::from_secs(30), |d| d.node(&victim_key).is_none())
        .await;
    let took = killed.elapsed();
    let inst = common::instance_config(net.dir.path(), 0);
    println!(
        "dead node dropped after {took:?} (failure limit {} ms, epoch interval {} ms)",
        inst.failure_limit_ms, inst.epoch_interval_ms
    );
    assert!(
        took < Duration::from_millis(inst.failure_limit_ms + inst.epoch_interval_ms + 5_000),
        "the dead node was dropped within the configured interval: {took:?}"
    );
    assert_eq!(e2.nodes().len(), 11);
    assert_eq!(
        e2.prev_hash(),
        e1.doc_hash(),
        "the new epoch chains to the old"
    );
    assert!(
        signers(&net, &e2).len() >= 2,
        "signed by at least two instances"
    );

    // Every remaining and new owner holds every message (hand-over, §7).
    for (acc, data) in &sent {
        let owners: Vec<usize> = e2
            .members_for(acc)
            .into_iter()
            .map(|r| net.index_of(&r.ed25519))
            .collect();
        for i in owners {
            let ok = eventually(Duration::from_secs(20), || async {
                net.held(i, acc).await.contains(data)
            })
            .await;
            assert!(
                ok,
                "node {i}, an owner under epoch {}, holds {acc}'s message",
                e2.epoch()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epochs_continue_with_two_instances_and_stop_with_one() {
    let mut net = Net::start(3, 2, 7).await;
    let e1 = net
        .wait_epoch(Duration::from_secs(40), |d| d.nodes().len() == 7)
        .await;

    // One instance dies: the other two still issue epochs.
    net.kill_registry(2).await;
    let gone = net.node_keys[6];
    net.kill_node(6).await;
    let e2 = net
        .wait_epoch(Duration::from_secs(30), |d| d.node(&gone).is_none())
        .await;
    assert!(e2.epoch() > e1.epoch());
    assert_eq!(
        signers(&net, &e2),
        vec![0, 1],
        "signed by the two live instances"
    );

    // A second instance dies: no new epoch, whatever happens to the nodes.
    net.kill_registry(1).await;
    let gone2 = net.node_keys[5];
    net.kill_node(5).await;
    let inst = common::instance_config(net.dir.path(), 0);
    let wait = Duration::from_millis(inst.failure_limit_ms + inst.epoch_interval_ms + 8 * SCALE_MS);
    tokio::time::sleep(wait).await;
    let r0 = &net.registry(0).instance;
    assert_eq!(r0.epoch(), e2.epoch(), "one instance alone issues nothing");
    if let Some(lock) = r0.lock() {
        let cfg = net.network.registry_config().unwrap();
        assert!(
            lock.node(&gone2).is_none(),
            "it did sign a candidate without the dead node"
        );
        assert_eq!(
            valid_signatures(&lock, &cfg),
            1,
            "but nobody countersigned it"
        );
    }
    for i in 0..5 {
        assert_eq!(net.node(i).node.registry().epoch(), e2.epoch());
    }
    // The network keeps working on the last epoch.
    let acc = account(77).account_id();
    net.store(&e2, &acc, b"still working").await;
    let owners: Vec<usize> = e2
        .members_for(&acc)
        .into_iter()
        .map(|r| net.index_of(&r.ed25519))
        .filter(|&i| net.nodes[i].is_some())
        .collect();
    assert!(!owners.is_empty());
    for i in owners {
        let ok = eventually(Duration::from_secs(10), || async {
            net.held(i, &acc).await.contains(&b"still working".to_vec())
        })
        .await;
        assert!(
            ok,
            "live owner {i} holds the message stored after the registries died"
        );
    }
}

/// Two instances that disagree about one node converge on the rule: the node
/// stays listed while a threshold of instances vote for it, and leaves once
/// fewer do (here: the operators of two instances remove it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_that_disagree_about_a_node_converge() {
    let net = Net::start(3, 2, 5).await;
    let e1 = net
        .wait_epoch(Duration::from_secs(40), |d| d.nodes().len() == 5)
        .await;
    let disputed = net.node_keys[4];
    // Instance 0's operator removes the node: 2 of 3 still vote for it.
    net.registry(0).instance.store().remove(&disputed).unwrap();
    let dropped = eventually(Duration::from_secs(5), || async {
        net.registry(0)
            .instance
            .votes()
            .iter()
            .all(|r| r.ed25519 != disputed)
    })
    .await;
    assert!(dropped, "instance 0 no longer votes for the node");
    let inst = common::instance_config(net.dir.path(), 0);
    tokio::time::sleep(Duration::from_millis(inst.epoch_interval_ms + 4 * SCALE_MS)).await;
    for k in 0..3 {
        let r = &net.registry(k).instance;
        assert_eq!(
            r.epoch(),
            e1.epoch(),
            "instance {k}: no epoch for a minority view"
        );
        assert!(r.lock().is_none(), "instance {k} signed nothing");
    }
    // Instance 1's operator removes it too: now only one vote is left.
    net.registry(1).instance.store().remove(&disputed).unwrap();
    let e2 = net
        .wait_epoch(Duration::from_secs(20), |d| d.node(&disputed).is_none())
        .await;
    assert_eq!(e2.nodes().len(), 4);
    assert_eq!(e2.epoch(), e1.epoch() + 1);
    assert!(signers(&net, &e2).len() >= 2);
}
