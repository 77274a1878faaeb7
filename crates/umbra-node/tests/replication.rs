//! Replication between real nodes (`swarms.md` §6, §7, §10): a member that
//! missed stores while down ends up holding them (catch-up marks pushed
//! every `catchup_interval_ms`, and the `/node/v1/since` pull on start), a
//! node that joins a swarm through a new registry epoch receives the swarm's
//! messages, and an account re-mapped to another swarm moves there and is
//! dropped by the nodes that no longer own it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

fn set(v: Vec<Vec<u8>>) -> BTreeSet<Vec<u8>> {
    v.into_iter().collect()
}

fn key_bytes(net: &TestNet, i: usize) -> [u8; 32] {
    *net.keys[i].public().as_bytes()
}

async fn marks_for(net: &TestNet, at: usize, peer: usize) -> Vec<u64> {
    let want = key_bytes(net, peer);
    net.node(at)
        .node
        .store
        .catchup_marks()
        .await
        .unwrap()
        .into_iter()
        .filter(|(k, _)| *k == want)
        .map(|(_, m)| m)
        .collect()
}

/// Stores `count` messages for `to` through node `entry`, checking that
/// every member but `down` acknowledged and that `down`'s entry failed.
async fn store_while_down(
    net: &TestNet,
    entry: usize,
    down: usize,
    to: &umbra_proto::identity::AccountKeys,
    tag: &str,
    count: usize,
) -> BTreeSet<Vec<u8>> {
    let down_key = hex::encode(net.keys[down].public().as_bytes());
    let mut sent = BTreeSet::new();
    for n in 0..count {
        let data = format!("{tag} message {n}").into_bytes();
        let (status, body) = net
            .rpc(
                entry,
                &store_req(&to.account_id(), &data, now_ms(), 600_000),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["swarm"][&down_key]["failed"],
            json!(true),
            "the stopped member cannot have answered: {body}"
        );
        sent.insert(data);
    }
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_was_down_gets_the_messages_it_missed() {
    let mut net = TestNet::start(4).await;
    let bob = account(11);
    let owners = net.owners(&bob.account_id());
    assert!(owners.len() >= 2, "swarm of {owners:?}");
    let (a, b) = (owners[0], owners[1]);

    net.stop(b).await;
    let sent = store_while_down(&net, a, b, &bob, "rejoin", 5).await;
    // §6: the entry node marked the member that missed the stores.
    assert_eq!(
        marks_for(&net, a, b).await.len(),
        1,
        "no catch-up mark for B"
    );

    net.restart(b).await;
    assert!(
        eventually(WAIT, || async {
            set(net.retrieve_all(b, &bob).await) == sent
        })
        .await,
        "the rejoined member holds {:?}",
        net.retrieve_all(b, &bob).await.len()
    );
    // Once a catch-up round is acknowledged the mark is cleared.
    assert!(
        eventually(WAIT, || async { marks_for(&net, a, b).await.is_empty() }).await,
        "catch-up mark never cleared"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_marks_survive_a_restart_of_the_entry_node() {
    let mut net = TestNet::start(2).await;
    let bob = account(12);
    let owners = net.owners(&bob.account_id());
    assert_eq!(owners.len(), 2);
    let (a, b) = (owners[0], owners[1]);

    net.stop(b).await;
    let sent = store_while_down(&net, a, b, &bob, "marked", 3).await;
    // A goes down too, B comes back: B's pull from A fails, so only A's
    // durable mark can bring B the messages.
    net.stop(a).await;
    net.restart(b).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        net.held(b, &bob.account_id()).await.is_empty(),
        "B got the messages with A down"
    );

    net.restart(a).await;
    assert_eq!(
        marks_for(&net, a, b).await.len(),
        1,
        "the mark did not survive A's restart"
    );
    assert!(
        eventually(WAIT, || async {
            set(net.retrieve_all(b, &bob).await) == sent
        })
        .await,
        "A's catch-up push never reached B"
    );
    assert!(eventually(WAIT, || async { marks_for(&net, a, b).await.is_empty() }).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarting_member_pulls_what_it_missed() {
    let mut net = TestNet::start(2).await;
    let bob = account(13);
    let owners = net.owners(&bob.account_id());
    assert_eq!(owners.len(), 2);
    let (a, b) = (owners[0], owners[1]);

    let (status, _) = net
        .rpc(
            a,
            &store_req(&bob.account_id(), b"before", now_ms(), 600_000),
        )
        .await;
    assert_eq!(status, 200);
    net.stop(b).await;
    let mut sent = store_while_down(&net, a, b, &bob, "pulled", 4).await;
    sent.insert(b"before".to_vec());
    only_pull_can_tell(&net, a, b).await;
    net.restart(b).await;
    assert!(
        eventually(WAIT, || async {
            set(net.retrieve_all(b, &bob).await) == sent
        })
        .await,
        "the pull on start did not bring the missed messages"
    );
    assert!(marks_for(&net, a, b).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_change_hands_messages_over_and_old_owners_drop_them() {
    let mut net = TestNet::start(4).await;
    let accounts: Vec<_> = (40..56u8).map(account).collect();
    for a in &accounts {
        let data = format!("for {}", a.account_id()).into_bytes();
        let entry = net.owners(&a.account_id())[0];
        let (status, body) = net
            .rpc(entry, &store_req(&a.account_id(), &data, now_ms(), 600_000))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let old = net.doc().clone();
    let newcomer = net.add_node().await;
    let ids: Vec<_> = accounts.iter().map(|a| a.account_id()).collect();
    // An epoch where the newcomer shares a swarm with stored messages and
    // where some account loses one of its old owners.
    let keys = net.keys.clone();
    let owners_in = |doc: &umbra_proto::swarm::RegistryDocument, a| -> Vec<usize> {
        let m: Vec<_> = doc.members_for(a).into_iter().map(|r| r.ed25519).collect();
        (0..keys.len())
            .filter(|&i| m.contains(&keys[i].public()))
            .collect()
    };
    let new = net
        .publish_where(&[0, 1, 2, 3, newcomer], |new, old| {
            let joined = ids.iter().any(|a| owners_in(new, a).contains(&newcomer));
            let moved = ids.iter().any(|a| {
                let w = owners_in(new, a);
                owners_in(old, a).iter().any(|o| !w.contains(o))
            });
            joined && moved
        })
        .await;

    let mut checked_join = 0;
    let mut checked_drop = 0;
    for a in &accounts {
        let id = a.account_id();
        let data = format!("for {id}").into_bytes();
        let o = net.owners_in(&old, &id);
        let w = net.owners_in(&new, &id);
        // Every new owner ends up holding the message (§7.1).
        for &m in &w {
            assert!(
                eventually(WAIT, || async {
                    net.retrieve_all(m, a).await == vec![data.clone()]
                })
                .await,
                "new owner {m} of {id} (old {o:?}, new {w:?}) lacks its message"
            );
            if m == newcomer {
                checked_join += 1;
            }
        }
        // An old owner outside the new swarm answers 421 and, once enough
        // new owners hold the message, drops its copy (§10).
        for &gone in o.iter().filter(|x| !w.contains(x)) {
            let (status, _) = net.rpc(gone, &retrieve_req(a, now_ms())).await;
            assert_eq!(status, 421, "old owner {gone} still serves {id}");
            assert!(
                eventually(WAIT, || async { net.held(gone, &id).await.is_empty() }).await,
                "old owner {gone} of {id} (new {w:?}) kept its copy"
            );
            checked_drop += 1;
        }
    }
    assert!(checked_join > 0 && checked_drop > 0);
}

/// `swarms.md` §6: "Deletions are caught up too … a deleted message never
/// comes back." A member that was down during a `delete` must not serve the
/// deleted message after it rejoins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_missed_while_down_is_caught_up() {
    let mut net = TestNet::start(2).await;
    let bob = account(14);
    let owners = net.owners(&bob.account_id());
    let (a, b) = (owners[0], owners[1]);
    let (status, body) = net
        .rpc(
            a,
            &store_req(&bob.account_id(), b"doomed", now_ms(), 600_000),
        )
        .await;
    assert_eq!(status, 200);
    let hash = body["swarm"].as_object().unwrap().values().next().unwrap()["hash"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(net.retrieve_all(b, &bob).await, vec![b"doomed".to_vec()]);

    net.stop(b).await;
    let signed = format!("delete{hash}");
    let del = json!({"method": "delete", "params": {
        "pubkey": bob.account_id().to_string(),
        "pubkey_ed25519": hex::encode(bob.ed25519_public().as_bytes()),
        "messages": [hash],
        "signature": sig(&bob, signed.as_bytes()),
    }});
    let (status, body) = net.rpc(a, &del).await;
    assert_eq!(status, 200, "{body}");
    net.restart(b).await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            net.retrieve_all(b, &bob).await.is_empty()
        })
        .await,
        "the deleted message came back on the member that missed the delete"
    );
}

/// The expiry of the first of `keys`' messages on node `i`.
async fn first_expiry(
    net: &TestNet,
    i: usize,
    keys: &umbra_proto::identity::AccountKeys,
) -> Option<u64> {
    let (_, reply) = net.rpc(i, &retrieve_req(keys, now_ms())).await;
    reply["messages"][0]["expiration"].as_u64()
}

/// How a restarted member learns what it missed.
#[derive(Clone, Copy, Debug)]
enum CatchUp {
    /// Only its `/node/v1/since` pull on start (the entry node's mark is
    /// cleared).
    Pull,
    /// Only the entry node's catch-up push (the member's pull cursor is
    /// set past everything, so its pull brings nothing).
    Push,
}

/// `swarms.md` §6 "Deletions are caught up too": a member that was down
/// while the owner deleted one message (`delete`), then the rest of a
/// namespace (`delete_all`), and shortened another account's message
/// (`expire`), applies all three when it catches up by `how`: each
/// tombstone carries the owner's signed request and passes the member's own
/// checks (none is ignored). A message stored after the `delete_all` is
/// not touched.
/// Clears `a`'s catch-up mark for stopped member `b`: without it only `b`'s
/// pull on start (`/node/v1/since`) can bring `b` what it missed.
async fn only_pull_can_tell(net: &TestNet, a: usize, b: usize) {
    net.node(a)
        .node
        .store
        .clear_catchup_mark(key_bytes(net, b))
        .await
        .unwrap();
}

/// Sets stopped member `b`'s pull cursor for `a` far ahead, so that only
/// `a`'s catch-up push can bring `b` what it missed.
fn only_push_can_tell(net: &TestNet, a: usize, b: usize) {
    let peer = hex::encode(key_bytes(net, a));
    std::fs::write(
        net.data_dir(b).join("pull-cursors.json"),
        serde_json::to_vec(&json!({ peer: u64::MAX / 2 })).unwrap(),
    )
    .unwrap();
}

async fn deletions_missed_while_down_are_caught_up(how: CatchUp, seeds: (u8, u8)) {
    use umbra_proto::rpc::{Namespace, NamespaceSel, message_hash};
    let mut net = TestNet::start(2).await;
    let (bob, carol) = (account(seeds.0), account(seeds.1));
    let owners = net.owners(&bob.account_id());
    assert_eq!(owners, net.owners(&carol.account_id()));
    let (a, b) = (owners[0], owners[1]);
    let now = now_ms();
    for (to, data) in [
        (&bob, b"deleted by hash".as_slice()),
        (&bob, b"deleted by delete_all".as_slice()),
        (&carol, b"shortened".as_slice()),
    ] {
        let (status, body) = net
            .rpc(a, &store_req(&to.account_id(), data, now, 600_000))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(net.retrieve_all(b, &bob).await.len(), 2);

    net.stop(b).await;
    let by_hash = message_hash(&bob.account_id(), Namespace(0), b"deleted by hash");
    let (status, body) = net.rpc(a, &owner::delete(&bob, &[by_hash])).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = net
        .rpc(a, &owner::delete_all(&bob, NamespaceSel::All, now_ms()))
        .await;
    assert_eq!(status, 200, "{body}");
    let later = b"stored after the delete_all".to_vec();
    let (status, body) = net
        .rpc(a, &store_req(&bob.account_id(), &later, now_ms(), 600_000))
        .await;
    assert_eq!(status, 200, "{body}");
    let shortened = now_ms() + 120_000;
    let carols = message_hash(&carol.account_id(), Namespace(0), b"shortened");
    let (status, body) = net
        .rpc(a, &owner::expire(&carol, &[carols], shortened, true))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(marks_for(&net, a, b).await.len(), 1, "a recorded the miss");
    match how {
        CatchUp::Pull => only_pull_can_tell(&net, a, b).await,
        CatchUp::Push => only_push_can_tell(&net, a, b),
    }

    net.restart(b).await;
    assert!(
        eventually(WAIT, || async {
            net.retrieve_all(b, &bob).await == vec![later.clone()]
                && first_expiry(&net, b, &carol).await == Some(shortened)
        })
        .await,
        "{how:?}: b holds {:?} for Bob and Carol's expiry is {:?}",
        net.retrieve_all(b, &bob).await,
        first_expiry(&net, b, &carol).await
    );
    assert_eq!(
        net.node(b).node.metrics.ignored_tombstones.get(),
        0,
        "{how:?}: an honest tombstone was refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletions_missed_while_down_are_caught_up_by_pull() {
    deletions_missed_while_down_are_caught_up(CatchUp::Pull, (17, 18)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletions_missed_while_down_are_caught_up_by_push() {
    deletions_missed_while_down_are_caught_up(CatchUp::Push, (19, 20)).await;
}

/// A store to a public outbox replaces what the outbox held: the node
/// records tombstones for the replaced messages, then stores the new one. A
/// member that was down at the time learns both from the catch-up push (the
/// mark starts below the tombstones, not at the new message).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbox_replacement_missed_while_down_is_caught_up() {
    let mut net = TestNet::start(2).await;
    let dave = account(23);
    let owners = net.owners(&dave.account_id());
    let (a, b) = (owners[0], owners[1]);
    let outbox = |net: &TestNet, i: usize| {
        let node = net.node(i).node.clone();
        let id = dave.account_id();
        async move {
            let mut got = node
                .store
                .retrieve(
                    &id,
                    -1,
                    None,
                    umbra_proto::rpc::limits::RetrieveLimits::new(None, None),
                    now_ms(),
                )
                .await
                .map(|r| r.messages.into_iter().map(|m| m.data).collect::<Vec<_>>())
                .unwrap_or_default();
            got.sort();
            got
        }
    };
    let (status, body) = net
        .rpc(a, &owner::store_outbox(&dave, b"first", now_ms(), 600_000))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        eventually(WAIT, || async {
            outbox(&net, b).await == vec![b"first".to_vec()]
        })
        .await,
        "b holds the first outbox message"
    );

    net.stop(b).await;
    let (status, body) = net
        .rpc(a, &owner::store_outbox(&dave, b"second", now_ms(), 600_000))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(outbox(&net, a).await, vec![b"second".to_vec()]);
    assert_eq!(marks_for(&net, a, b).await.len(), 1, "a recorded the miss");
    only_push_can_tell(&net, a, b);
    net.restart(b).await;
    assert!(
        eventually(WAIT, || async {
            outbox(&net, b).await == vec![b"second".to_vec()]
        })
        .await,
        "b holds {:?}",
        outbox(&net, b).await
    );
}

/// `swarms.md` §10 and §7.4: an old owner whose first hand-over push failed
/// (the new owners were down) retries, and once enough new owners hold the
/// messages it drops its copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_owner_drops_its_copy_after_a_retried_hand_over() {
    let mut net = TestNet::start(2).await;
    let accounts: Vec<_> = (80..96u8).map(account).collect();
    for a in &accounts {
        let (status, _) = net
            .rpc(0, &store_req(&a.account_id(), b"moving", now_ms(), 600_000))
            .await;
        assert_eq!(status, 200);
    }
    let newcomers = [
        net.add_node().await,
        net.add_node().await,
        net.add_node().await,
    ];
    let ids: Vec<_> = accounts.iter().map(|a| a.account_id()).collect();
    let keys: Vec<_> = newcomers.iter().map(|&i| net.keys[i].public()).collect();
    let only_newcomers = |doc: &umbra_proto::swarm::RegistryDocument,
                          a: &umbra_proto::identity::AccountId| {
        let m: Vec<_> = doc.members_for(a).into_iter().map(|r| r.ed25519).collect();
        !m.is_empty() && m.iter().all(|k| keys.contains(k))
    };
    // An epoch where some stored accounts move to a swarm of newcomers
    // only, so that the old owners must push before they may drop.
    let doc = net.choose_doc(&[0, 1, 2, 3, 4], |new, _| {
        ids.iter().any(|a| only_newcomers(new, a))
    });
    let moved: Vec<_> = accounts
        .iter()
        .filter(|a| only_newcomers(&doc, &a.account_id()))
        .collect();
    let targets: BTreeSet<usize> = moved
        .iter()
        .flat_map(|a| net.owners_in(&doc, &a.account_id()))
        .collect();
    let old = net.doc().clone();
    // The newcomers are down when the epoch is adopted: every first push
    // fails, and only the retries (every catchup_interval_ms) can succeed.
    for &t in &targets {
        net.stop(t).await;
    }
    net.publish_doc(doc).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for &t in &targets {
        net.restart(t).await;
    }
    for a in &moved {
        let id = a.account_id();
        for &m in &targets {
            assert!(
                eventually(WAIT, || async {
                    net.retrieve_all(m, a).await == vec![b"moving".to_vec()]
                })
                .await,
                "retried hand-over of {id} never reached node {m}"
            );
        }
        for x in net.owners_in(&old, &id) {
            assert!(
                eventually(WAIT, || async { net.held(x, &id).await.is_empty() }).await,
                "old owner {x} of {id} kept its copy after the retried hand-over"
            );
        }
    }
}

/// `swarms.md` §7.1 pushes only to new owners that were not old owners. A
/// plain restart changes no ownership, so it must not re-push the node's
/// whole database to its swarm peers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_does_not_re_push_everything() {
    let mut net = TestNet::start(2).await;
    let bob = account(15);
    let (a, b) = (
        net.owners(&bob.account_id())[0],
        net.owners(&bob.account_id())[1],
    );
    for n in 0..20 {
        let data = format!("held by both {n}").into_bytes();
        let (status, _) = net
            .rpc(a, &store_req(&bob.account_id(), &data, now_ms(), 600_000))
            .await;
        assert_eq!(status, 200);
    }
    let received_before = net.node(a).node.metrics.received_pushes.get();
    net.stop(b).await;
    net.restart(b).await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(
        net.node(b).node.metrics.pushed_messages.get(),
        0,
        "the restarted node pushed messages its peer already holds"
    );
    assert_eq!(
        net.node(a).node.metrics.received_pushes.get(),
        received_before
    );
}

/// A hostile swarm peer in place of stopped node `i` (its address, its TLS
/// key): every `/node/v1/since` reply is empty, says more follows and
/// moves the cursor by one, after `delay`. Returns the count of pages
/// asked of it.
async fn serve_endless_since(
    net: &TestNet,
    i: usize,
    delay: Duration,
) -> std::sync::Arc<std::sync::atomic::AtomicUsize> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use umbra_node::peer::{HEADER_MORE, HEADER_NEXT_SEQ, SinceRequest};
    let served = Arc::new(AtomicUsize::new(0));
    let count = served.clone();
    let router = axum::Router::new().route(
        umbra_proto::rpc::node_req::PATH_SINCE,
        axum::routing::post(move |body: axum::body::Bytes| {
            let count = count.clone();
            async move {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                let since = serde_json::from_slice::<SinceRequest>(&body)
                    .map(|r| r.since)
                    .unwrap_or(0);
                let body =
                    umbra_proto::rpc::node_req::encode_push_with_tombstones(&[], &[]).unwrap();
                (
                    [
                        (HEADER_NEXT_SEQ, (since + 1).to_string()),
                        (HEADER_MORE, "1".to_string()),
                    ],
                    body,
                )
            }
        }),
    );
    let mut listener = None;
    for _ in 0..50 {
        match tokio::net::TcpListener::bind(net.addrs[i]).await {
            Ok(l) => {
                listener = Some(l);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let listener = listener.expect("the stopped node's address is free again");
    let tls = umbra_transport::tls::server_config(&net.keys[i]).unwrap();
    tokio::spawn(umbra_transport::serve(
        router,
        listener,
        tls,
        std::future::pending(),
    ));
    served
}

/// A peer that answers every `/node/v1/since` page with "more follows"
/// (and a cursor that moves) cannot keep a pull going forever: the pull
/// stops at its page cap and returns where it stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_from_a_peer_that_always_has_more_stops_at_the_page_cap() {
    let mut net = TestNet::start(2).await;
    net.stop(1).await;
    let served = serve_endless_since(&net, 1, Duration::ZERO).await;
    let hostile = net.doc().node(&net.keys[1].public()).unwrap();
    let pulled = tokio::time::timeout(
        Duration::from_secs(30),
        umbra_node::peer::pull_from_at_most(&net.node(0).node, hostile, 7, 25),
    )
    .await
    .expect("the pull stops at its cap");
    assert_eq!(pulled, Ok(32), "the cursor where the pull stopped");
    assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 25);
    assert_eq!(umbra_node::peer::MAX_PULL_PAGES, 10_000);
}

/// One hostile swarm peer (endless `since` pages) delays neither the pull
/// from the honest peer nor the saving of its cursor: a restarted member
/// gets what it missed from the honest peer and records how far it got.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_peer_does_not_stall_the_pull_from_the_others() {
    let mut net = TestNet::start(3).await;
    let bob = account(14);
    let owners = net.owners(&bob.account_id());
    assert_eq!(owners.len(), 3, "one swarm of three");
    let (a, b, h) = (owners[0], owners[1], owners[2]);

    net.stop(b).await;
    let sent = store_while_down(&net, a, b, &bob, "beside a hostile peer", 3).await;
    only_pull_can_tell(&net, a, b).await;
    only_pull_can_tell(&net, h, b).await;
    let cursors = |net: &TestNet| -> serde_json::Value {
        std::fs::read(net.data_dir(b).join("pull-cursors.json"))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    };
    let a_key = hex::encode(key_bytes(&net, a));
    let before = cursors(&net)[&a_key].as_u64().unwrap_or(0);
    net.stop(h).await;
    let served = serve_endless_since(&net, h, Duration::from_millis(50)).await;

    net.restart(b).await;
    assert!(
        eventually(WAIT, || async {
            set(net.retrieve_all(b, &bob).await) == sent
        })
        .await,
        "the pull from the honest peer did not bring the missed messages"
    );
    assert!(
        eventually(WAIT, || async {
            cursors(&net)[&a_key].as_u64().unwrap_or(0) > before
        })
        .await,
        "the honest peer's cursor was not saved: {} (was {before})",
        cursors(&net)
    );
    assert!(
        eventually(WAIT, || async {
            served.load(std::sync::atomic::Ordering::SeqCst) > 1
        })
        .await,
        "the hostile peer is pulled from too, page after page"
    );
}
