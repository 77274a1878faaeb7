//! A devnet run by three registry instances (threshold 2) instead of the
//! built-in signer: a stopped node drops out of a threshold-signed epoch,
//! `add_node` and `remove_node` go through submission and operator removal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use umbra_devnet::registries::{RegistriesOptions, stop_node_and_wait, up_with_registries};
use umbra_devnet::{Devnet, DevnetOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_instances_run_the_devnet_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let (mut net, regs): (Devnet, _) = up_with_registries(
        DevnetOptions::in_process(6, dir.path()),
        RegistriesOptions {
            count: 3,
            threshold: 2,
            scale_ms: 250,
        },
    )
    .await
    .unwrap();
    let cfg = net.network().registry_config().unwrap();
    assert_eq!(cfg.threshold(), 2);
    assert_eq!(cfg.pinned_keys().len(), 3);
    assert_eq!(net.network().registry_urls.len(), 3);
    assert_eq!(net.registry().epoch(), 1);

    // A stopped node leaves in an epoch the instances agreed on.
    let gone = net.node_addr(5).key;
    let (before, after) = stop_node_and_wait(&mut net, 5, Duration::from_secs(30))
        .await
        .unwrap();
    assert!(after.epoch() > before.epoch());
    assert!(after.node(&gone).is_none());
    assert_eq!(after.nodes().len(), 5);
    assert!(after.check_signatures(&cfg).is_ok(), "threshold-signed");
    for i in 0..5 {
        let h = net.handle(i).unwrap();
        let ok = tokio::time::timeout(Duration::from_secs(10), async {
            while h.node.registry().epoch() < after.epoch() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        assert!(ok.is_ok(), "node {i} adopted epoch {}", after.epoch());
    }

    // A new node is admitted by submission; a removed one by the operator.
    let added = net.add_node().await.unwrap();
    let added_key = net.node_addr(added).key;
    assert!(net.registry().node(&added_key).is_some());
    net.remove_node(0).await.unwrap();
    let removed_key = net.node_addr(0).key;
    assert!(net.registry().node(&removed_key).is_none());
    assert!(net.registry().node(&added_key).is_some());
    assert!(net.registry().check_signatures(&cfg).is_ok());
    regs.shutdown().await;
    net.down().await;
}
