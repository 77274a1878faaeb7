//! Read-receipt batching (`messages.md` §12) and `sync` with per-node
//! `last_hash` (`storage-rpc.md` §9.2), on a 6-node in-process devnet with
//! every request through 3-hop onion paths.
//!
//! - receipts: reads inside one window give one receipt message carrying
//!   every timestamp read, sent when the window has passed; a receipt whose
//!   send fails (every node down, on a devnet of the test's own) stays
//!   queued and is delivered once, by a flush after the network is back;
//! - sync: a second sync downloads nothing over the wire; a new message
//!   downloads just itself; a node this device holds no hash for is read
//!   from the start, de-duplicated, and read incrementally after that.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "integration test: a panic is a test failure"
)]

use std::cell::Cell;
use std::time::Duration;

use umbra_client::client::{Client, SyncReport};
use umbra_client::receipts;
use umbra_client::store::MessageStatus;
use umbra_devnet::{Devnet, DevnetOptions};
use umbra_proto::identity::AccountId;
use umbra_proto::network::NetworkConfig;
use umbra_proto::rpc::Namespace;

const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

mod common;

use common::{Accounts, wait_until};

fn network() -> &'static NetworkConfig {
    common::devnet("umbra-client-receipts-devnet", 6)
}

/// Syncs `c` until its conversation with `peer` has a message sent at `t`;
/// returns the sum of the sync reports' `retrieved` and `new_messages`.
async fn sync_until_ts(c: &Client, peer: &AccountId, t: u64) -> SyncReport {
    let retrieved = Cell::new(0);
    let new_messages = Cell::new(0);
    wait_until("a message", EVENT_TIMEOUT, || async {
        let r = c.sync().await.unwrap();
        retrieved.set(retrieved.get() + r.retrieved);
        new_messages.set(new_messages.get() + r.new_messages);
        c.profile()
            .store()
            .messages(peer, None)
            .unwrap()
            .iter()
            .any(|m| m.timestamp_ms == t)
            .then_some(())
    })
    .await;
    SyncReport {
        retrieved: retrieved.get(),
        new_messages: new_messages.get(),
        ..SyncReport::default()
    }
}

fn status_of(c: &Client, peer: &AccountId, t: u64) -> MessageStatus {
    c.profile()
        .store()
        .messages(peer, None)
        .unwrap()
        .into_iter()
        .find(|m| m.timestamp_ms == t)
        .expect("message")
        .status
}

/// Turns read receipts on for both and makes the chat approved both ways:
/// Alice writes, Bob accepts, and Alice learns it. Returns Alice's first
/// message.
async fn receipts_between(alice: &Client, bob: &Client) -> umbra_client::client::Sent {
    let (a_id, b_id) = (alice.account_id(), bob.account_id());
    alice.profile().store().set_read_receipts(true).unwrap();
    bob.profile().store().set_read_receipts(true).unwrap();
    let hello = alice.send_text(&b_id, "hello").await.unwrap();
    sync_until_ts(bob, &a_id, hello.timestamp_ms).await;
    bob.accept(&a_id).await.unwrap();
    wait_until("the accept", EVENT_TIMEOUT, || async {
        alice.sync().await.unwrap();
        alice
            .profile()
            .store()
            .conversation(&b_id)
            .unwrap()
            .filter(|c| c.approved_us)
    })
    .await;
    hello
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_are_batched_per_window() {
    let accts = Accounts::new(network());
    let (alice, bob) = (accts.client("alice"), accts.client("bob"));
    let (a_id, b_id) = (alice.account_id(), bob.account_id());
    // Approved both ways (§12 sends receipts only then), receipts on.
    let hello = receipts_between(&alice, &bob).await;
    // A window long enough that nothing below outlasts it.
    bob.set_receipt_window(Duration::from_secs(120));

    // The first read goes out at once.
    bob.read_conversation(&a_id, None).await.unwrap();
    assert!(
        receipts::pending(bob.profile().store(), &a_id)
            .unwrap()
            .is_empty()
    );
    let receipts_at_alice = Cell::new(0);
    wait_until("the first receipt", EVENT_TIMEOUT, || async {
        receipts_at_alice.set(receipts_at_alice.get() + alice.sync().await.unwrap().receipts);
        (status_of(&alice, &b_id, hello.timestamp_ms) == MessageStatus::Read).then_some(())
    })
    .await;
    assert_eq!(receipts_at_alice.get(), 1);

    // Two more reads inside the window: queued, nothing sent.
    let m2 = alice.send_text(&b_id, "two").await.unwrap();
    sync_until_ts(&bob, &a_id, m2.timestamp_ms).await;
    bob.read_conversation(&a_id, None).await.unwrap();
    let m3 = alice.send_text(&b_id, "three").await.unwrap();
    sync_until_ts(&bob, &a_id, m3.timestamp_ms).await;
    bob.read_conversation(&a_id, None).await.unwrap();
    assert_eq!(bob.flush_receipts().await.unwrap(), 0);
    assert_eq!(
        receipts::pending(bob.profile().store(), &a_id).unwrap(),
        vec![m2.timestamp_ms, m3.timestamp_ms]
    );
    let r = alice.sync().await.unwrap();
    assert_eq!(r.receipts, 0, "no receipt inside the window");
    assert_eq!(
        status_of(&alice, &b_id, m2.timestamp_ms),
        MessageStatus::Sent
    );

    // The window passes (made zero here): one receipt message for both.
    bob.set_receipt_window(Duration::ZERO);
    assert_eq!(bob.flush_receipts().await.unwrap(), 1);
    assert!(
        receipts::pending(bob.profile().store(), &a_id)
            .unwrap()
            .is_empty()
    );
    let applied = Cell::new(0);
    wait_until("m2 and m3 read", EVENT_TIMEOUT, || async {
        applied.set(applied.get() + alice.sync().await.unwrap().receipts);
        (status_of(&alice, &b_id, m2.timestamp_ms) == MessageStatus::Read
            && status_of(&alice, &b_id, m3.timestamp_ms) == MessageStatus::Read)
            .then_some(())
    })
    .await;
    assert_eq!(
        applied.get(),
        1,
        "one receipt message carried both timestamps"
    );
    // Nothing is left to send.
    assert_eq!(bob.flush_receipts().await.unwrap(), 0);
}

/// The network goes down while Bob reads Alice's message: the receipt
/// cannot be sent, stays queued, and a flush after the network is back
/// delivers it (once). Every node of a devnet of this test's own is
/// stopped, so the shared devnet of the other tests is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_whose_send_fails_is_kept_and_sent_later() {
    let dir = tempfile::tempdir().unwrap();
    let mut devnet = Devnet::up(DevnetOptions::in_process(6, dir.path()))
        .await
        .unwrap();
    let accts = Accounts::new(devnet.network());
    let (alice, bob) = (accts.client("alice"), accts.client("bob"));
    let (a_id, b_id) = (alice.account_id(), bob.account_id());
    // Approved both ways (§12 sends receipts only then), receipts on.
    let hello = receipts_between(&alice, &bob).await;

    // Every node down: Bob reads, the receipt's send fails.
    for i in 0..devnet.len() {
        devnet.stop_node(i).await;
    }
    bob.read_conversation(&a_id, None).await.unwrap();
    assert_eq!(
        receipts::pending(bob.profile().store(), &a_id).unwrap(),
        vec![hello.timestamp_ms],
        "a receipt whose send failed is still queued"
    );

    // The network is back: a flush (the window made zero, so that it need
    // not be waited for) delivers it, and it leaves the queue.
    for i in 0..devnet.len() {
        devnet.restart_node(i, EVENT_TIMEOUT).await.unwrap();
    }
    bob.set_receipt_window(Duration::ZERO);
    wait_until("the queued receipt sent", EVENT_TIMEOUT, || async {
        (bob.flush_receipts().await.unwrap() == 1).then_some(())
    })
    .await;
    assert!(
        receipts::pending(bob.profile().store(), &a_id)
            .unwrap()
            .is_empty()
    );
    let receipts_at_alice = Cell::new(0);
    wait_until("hello read", EVENT_TIMEOUT, || async {
        receipts_at_alice.set(receipts_at_alice.get() + alice.sync().await.unwrap().receipts);
        (status_of(&alice, &b_id, hello.timestamp_ms) == MessageStatus::Read).then_some(())
    })
    .await;
    // Sent once: nothing is left to send, and Alice got one receipt.
    assert_eq!(bob.flush_receipts().await.unwrap(), 0);
    assert_eq!(alice.sync().await.unwrap().receipts, 0);
    assert_eq!(receipts_at_alice.get(), 1);
    devnet.down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_downloads_only_what_follows_the_nodes_last_hash() {
    let accts = Accounts::new(network());
    let (alice, bob) = (accts.client("alice"), accts.client("bob"));
    let (a_id, b_id) = (alice.account_id(), bob.account_id());
    let mut last = 0;
    for i in 0..5 {
        last = alice
            .send_text(&b_id, &format!("message {i}"))
            .await
            .unwrap()
            .timestamp_ms;
    }
    let first = sync_until_ts(&bob, &a_id, last).await;
    assert!(first.retrieved >= 5, "{first:?}");
    assert_eq!(
        bob.profile().store().messages(&a_id, None).unwrap().len(),
        5
    );

    // Nothing new: nothing comes over the wire.
    let again = bob.sync().await.unwrap();
    assert_eq!(again.retrieved, 0, "{again:?}");
    assert_eq!(again.new_messages, 0);

    // One new message: just that one.
    let t = alice.send_text(&b_id, "sixth").await.unwrap().timestamp_ms;
    let next = sync_until_ts(&bob, &a_id, t).await;
    assert_eq!(next.retrieved, 1, "{next:?}");

    // The hashes are per node: the polled member(s) hold one.
    let store = bob.profile().store();
    let members = bob.network().swarm_of(&b_id).await.unwrap();
    let with_hash: Vec<String> = members
        .iter()
        .map(|m| hex::encode(m.ed25519.as_bytes()))
        .filter(|h| store.last_hash(Namespace(0), h).unwrap().is_some())
        .collect();
    assert!(!with_hash.is_empty());

    // Those hashes gone (as for nodes never polled): read from the start,
    // nothing applied twice, then incremental again.
    for h in &with_hash {
        assert!(store.clear_last_hash(Namespace(0), h).unwrap());
    }
    let fresh = bob.sync().await.unwrap();
    assert!(fresh.retrieved >= 6, "{fresh:?}");
    assert_eq!(fresh.new_messages, 0);
    assert_eq!(store.messages(&a_id, None).unwrap().len(), 6);
    assert_eq!(bob.sync().await.unwrap().retrieved, 0);
}
