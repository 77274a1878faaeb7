//! End-to-end tests of groups (`groups.md`, issue 8) with five profiles on
//! one 8-node in-process devnet, every request through 3-hop onion paths.
//!
//! `lifecycle`: create, invites as message requests, accept, message, add a
//! member without history (cannot read earlier messages) and one with
//! history (can), delete-after-send timer, remove a member (who then can
//! neither decrypt nor fetch nor post: all three asserted), rename,
//! promote, leave (the admin rekeys without the leaver).
//! `forged_and_replayed`: a NAME_CHANGED posted by a non-admin is ignored;
//! a replayed old key bundle does not replace the current generation.
//! `unsend`: a member unsends its own message, an admin another member's
//! (and deletes it from the group's swarm); a member's unsend request for
//! someone else's message is ignored by everyone.
//!
//! `polling_cadence`: a member's poll reads namespace 11 only inside the
//! 60 s window (and a full poll is one onion `batch` instead of four
//! requests), a notice or a rekey (a decryption miss) prompts an immediate
//! read of 12 and 13, and the poll times survive a restart.
//! `admin_upkeep`: an admin extends the newest bundle and the current state
//! document when below the keep-alive threshold, leaves older bundles and
//! each generation's last document alone, and deletes superseded documents.
//! `admin_restores_lost_keys`: an admin stores its newest bundle and current
//! document again when the swarm lost them, and an invitee can then join.
//!
//! Waits use [`wait_until`] (poll with a deadline), never fixed sleeps.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "integration test: a panic is a test failure"
)]

use std::time::Duration;

use umbra_client::client::{Client, ClientError};
use umbra_client::store::DisappearingMode;
use umbra_proto::group::control::Notice;
use umbra_proto::identity::AccountId;
use umbra_proto::message::Content;
use umbra_proto::message::protos::{DataMessage, UnsendRequest};
use umbra_proto::network::NetworkConfig;
use umbra_proto::rpc::Namespace;

const EVENT_TIMEOUT: Duration = Duration::from_secs(45);

mod common;

use common::{Accounts, wait_until};

fn network() -> &'static NetworkConfig {
    common::devnet("umbra-client-groups-devnet", 8)
}

/// Waits until each client has node lists and paths.
async fn ready(clients: &[&Client]) {
    for c in clients {
        c.network().ensure_ready(EVENT_TIMEOUT).await.unwrap();
    }
}

fn texts(c: &Client, group: &AccountId) -> Vec<String> {
    c.profile()
        .store()
        .messages(group, None)
        .unwrap()
        .into_iter()
        .map(|m| m.text)
        .collect()
}

/// Syncs `c` (1:1 and groups) until the group conversation holds a message containing `needle`.
async fn sync_until_text(c: &Client, group: &AccountId, needle: &str) {
    wait_until(
        &format!("{needle:?} in the group"),
        EVENT_TIMEOUT,
        || async {
            c.sync().await.unwrap();
            texts(c, group)
                .iter()
                .any(|t| t.contains(needle))
                .then_some(())
        },
    )
    .await
}

/// Syncs `c` until it holds an invite to `group` (a message request), then accepts it.
async fn join(c: &Client, group: &AccountId) {
    wait_until("the invite", EVENT_TIMEOUT, || async {
        c.sync().await.unwrap();
        c.group_invites()
            .unwrap()
            .iter()
            .any(|i| i.group == *group)
            .then_some(())
    })
    .await;
    // The invite is a message request: the group's conversation awaits approval.
    assert!(
        c.profile()
            .store()
            .requests()
            .unwrap()
            .iter()
            .any(|r| r.peer == *group)
    );
    c.accept_group_invite(group).await.unwrap();
    assert!(c.group_info(group).unwrap().members.len() >= 2);
}

/// Alice creates group `name` with Bob and Carol, who both join.
async fn group_of_three(accts: &Accounts, name: &str) -> (Client, Client, Client, AccountId) {
    let alice = accts.client("alice");
    let bob = accts.client("bob");
    let carol = accts.client("carol");
    ready(&[&alice, &bob, &carol]).await;
    let g = alice
        .create_group(name, &[bob.account_id(), carol.account_id()])
        .await
        .unwrap();
    join(&bob, &g).await;
    join(&carol, &g).await;
    (alice, bob, carol, g)
}

/// Syncs the group on `c` until `pred` holds of its info.
async fn sync_until_info(
    c: &Client,
    group: &AccountId,
    what: &str,
    pred: impl Fn(&umbra_client::groups::GroupView) -> bool,
) {
    wait_until(what, EVENT_TIMEOUT, || async {
        c.sync().await.unwrap();
        pred(&c.group_info(group).unwrap()).then_some(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle() {
    let accts = Accounts::new(network());
    let alice = accts.client("alice");
    let bob = accts.client("bob");
    let carol = accts.client("carol");
    let dave = accts.client("dave");
    let erin = accts.client("erin");
    let (a_id, b_id, c_id, d_id, e_id) = (
        alice.account_id(),
        bob.account_id(),
        carol.account_id(),
        dave.account_id(),
        erin.account_id(),
    );
    ready(&[&alice, &bob, &carol, &dave, &erin]).await;

    // Create with two invitees; both accept from their requests inbox.
    let g = alice.create_group("Team", &[b_id, c_id]).await.unwrap();
    let info = alice.group_info(&g).unwrap();
    assert!(info.is_admin);
    assert_eq!(
        (info.generation, info.version, info.members.len()),
        (Some(1), 1, 3)
    );
    join(&bob, &g).await;
    join(&carol, &g).await;
    assert!(!bob.group_info(&g).unwrap().is_admin);
    // The admin marks them joined on their INVITE_RESPONSE.
    sync_until_info(&alice, &g, "bob and carol joined", |i| {
        i.members.iter().all(|m| m.joined)
    })
    .await;

    // Message.
    bob.send_group_text(&g, "hello team").await.unwrap();
    sync_until_text(&alice, &g, "hello team").await;
    sync_until_text(&carol, &g, "hello team").await;

    // Add dave (history off): he reads new messages only.
    alice.add_group_members(&g, &[d_id]).await.unwrap();
    join(&dave, &g).await;
    assert_eq!(dave.group_info(&g).unwrap().generation, Some(2));
    carol.send_group_text(&g, "welcome dave").await.unwrap();
    sync_until_text(&dave, &g, "welcome dave").await;
    assert!(
        !texts(&dave, &g).iter().any(|t| t.contains("hello team")),
        "history is off: dave must not read earlier messages"
    );

    // Add erin with history on: she reads the earlier messages too.
    alice.set_group_share_history(&g, true).await.unwrap();
    alice.add_group_members(&g, &[e_id]).await.unwrap();
    join(&erin, &g).await;
    sync_until_text(&erin, &g, "hello team").await;
    sync_until_text(&erin, &g, "welcome dave").await;

    // Delete-after-send timer, set by the admin.
    alice.set_group_disappearing(&g, 600).await.unwrap();
    sync_until_info(&bob, &g, "the timer", |i| i.timer_s == 600).await;
    bob.send_group_text(&g, "this disappears").await.unwrap();
    sync_until_text(&alice, &g, "this disappears").await;
    let m = alice
        .profile()
        .store()
        .messages(&g, None)
        .unwrap()
        .into_iter()
        .find(|m| m.text == "this disappears")
        .unwrap();
    assert_eq!(m.disappearing.mode, DisappearingMode::AfterSend);
    let exp = m.expires_at_ms.expect("an expiry");
    assert!(exp <= m.timestamp_ms + 600_000 + 5_000 && exp > m.timestamp_ms);
    alice.set_group_disappearing(&g, 0).await.unwrap();

    // Remove carol: new generation, token revoked, removal notice.
    let before = alice.group_info(&g).unwrap().generation.unwrap();
    alice.remove_group_members(&g, &[c_id]).await.unwrap();
    assert_eq!(alice.group_info(&g).unwrap().generation, Some(before + 1));
    // She cannot post: the swarm refuses her revoked token.
    match carol.send_group_text(&g, "still here?").await {
        Err(ClientError::Refused { status, .. }) => assert_eq!(status, 401),
        other => panic!("a removed member's post must be refused, got {other:?}"),
    }
    // She cannot fetch; she learns of the removal from namespace −11.
    let r = carol.sync_group(&g).await.unwrap();
    assert!(
        r.refused.is_some(),
        "a removed member must not fetch: {r:?}"
    );
    assert!(r.removed && carol.group_info(&g).unwrap().removed);
    // She cannot decrypt what is sent after her removal.
    sync_until_info(&bob, &g, "carol gone", |i| {
        i.members.iter().all(|m| m.id != c_id)
    })
    .await;
    bob.send_group_text(&g, "after carol").await.unwrap();
    sync_until_text(&alice, &g, "after carol").await;
    let items = alice
        .fetch_group_raw(&g, Namespace::GROUP_MESSAGES)
        .await
        .unwrap();
    let mut found = false;
    for it in &items {
        if let Ok((_, Some(body))) = alice.open_group_item(&g, &it.data).await
            && body == "after carol"
        {
            found = true;
            assert!(carol.open_group_item(&g, &it.data).await.is_err());
        }
    }
    assert!(found);
    assert!(!texts(&carol, &g).iter().any(|t| t == "after carol"));

    // Rename.
    alice.rename_group(&g, "Team 2").await.unwrap();
    sync_until_info(&bob, &g, "the new name", |i| i.name == "Team 2").await;
    sync_until_text(&bob, &g, "renamed the group").await;

    // Promote bob; he can then rename.
    alice.promote_group_member(&g, &b_id).await.unwrap();
    sync_until_info(&bob, &g, "bob is admin", |i| i.is_admin).await;
    bob.rename_group(&g, "Team 3").await.unwrap();
    sync_until_info(&alice, &g, "bob's rename", |i| i.name == "Team 3").await;

    // Dave leaves: an admin rekeys without him.
    let before = alice.group_info(&g).unwrap().generation.unwrap();
    dave.leave_group(&g).await.unwrap();
    assert!(dave.group_info(&g).is_err(), "the leaver forgets the group");
    sync_until_info(&alice, &g, "dave gone and a new key", |i| {
        i.members.iter().all(|m| m.id != d_id) && i.generation > Some(before)
    })
    .await;
    let last = alice.group_info(&g).unwrap();
    assert_eq!(
        last.members.iter().map(|m| m.id).collect::<Vec<_>>().len(),
        3
    );
    assert!(last.members.iter().any(|m| m.id == a_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_replayed() {
    let accts = Accounts::new(network());
    let (alice, bob, carol, g) = group_of_three(&accts, "Club").await;

    // A member (not an admin) posts NAME_CHANGED: ignored by everyone.
    // It announces the current version, so only the signer check rejects it.
    let v = bob.group_info(&g).unwrap().version;
    let forged = Notice::NameChanged("Pwned".into()).to_control(Some(v));
    bob.send_group_content(
        &g,
        Content {
            data_message: Some(DataMessage {
                umbra_group_control: Some(forged),
                ..DataMessage::default()
            }),
            ..Content::default()
        },
    )
    .await
    .unwrap();
    // A later real message shows carol has processed everything before it.
    bob.send_group_text(&g, "marker").await.unwrap();
    sync_until_text(&carol, &g, "marker").await;
    sync_until_text(&alice, &g, "marker").await;
    for c in [&alice, &carol] {
        assert_eq!(c.group_info(&g).unwrap().name, "Club");
        assert!(!texts(c, &g).iter().any(|t| t.contains("Pwned")));
    }

    // Rekey (remove carol) so generation 1 is old, then replay bundle 1.
    let old = alice
        .fetch_group_raw(&g, Namespace::GROUP_KEYS)
        .await
        .unwrap();
    assert_eq!(old.len(), 1);
    alice
        .remove_group_members(&g, &[carol.account_id()])
        .await
        .unwrap();
    sync_until_info(&bob, &g, "generation 2", |i| i.generation == Some(2)).await;
    // Bob (write access, like any member) stores the old bundle again with a fresh TTL.
    bob.store_group_raw(&g, Namespace::GROUP_KEYS, &old[0].data, 29 * 86_400_000)
        .await
        .unwrap();
    let r = bob.refresh_group(&g).await.unwrap();
    assert!(r.refused.is_none() && r.read_keys);
    assert_eq!(bob.group_info(&g).unwrap().generation, Some(2));
    let r = alice.refresh_group(&g).await.unwrap();
    assert!(r.read_keys);
    assert_eq!(r.new_keys, 0);
    assert_eq!(alice.group_info(&g).unwrap().generation, Some(2));
    // Bob still sends under generation 2: carol (generation 1 only) cannot read it.
    bob.send_group_text(&g, "after replay").await.unwrap();
    sync_until_text(&alice, &g, "after replay").await;
    let items = alice
        .fetch_group_raw(&g, Namespace::GROUP_MESSAGES)
        .await
        .unwrap();
    let mut found = false;
    for it in &items {
        if let Ok((_, Some(b))) = alice.open_group_item(&g, &it.data).await
            && b == "after replay"
        {
            found = true;
            assert!(carol.open_group_item(&g, &it.data).await.is_err());
        }
    }
    assert!(found);
}

/// Whether `c` holds a message `text` in `group`, and whether it is deleted.
fn deleted(c: &Client, group: &AccountId, author: &AccountId, ts: u64) -> Option<bool> {
    c.profile()
        .store()
        .message_by_author_ts(group, author, ts)
        .unwrap()
        .map(|m| m.deleted)
}

/// Syncs `c` until its copy of (`author`, `ts`) is deleted.
async fn sync_until_deleted(c: &Client, group: &AccountId, author: &AccountId, ts: u64) {
    wait_until("the unsend", EVENT_TIMEOUT, || async {
        c.sync().await.unwrap();
        (deleted(c, group, author, ts) == Some(true)).then_some(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsend() {
    let accts = Accounts::new(network());
    let (alice, bob, carol, g) = group_of_three(&accts, "Unsend").await;
    let (a, b, c) = (alice.account_id(), bob.account_id(), carol.account_id());
    let from_alice = alice.send_group_text(&g, "alice says").await.unwrap();
    let oops = bob.send_group_text(&g, "bob oops").await.unwrap();
    let rude = carol.send_group_text(&g, "carol rude").await.unwrap();
    for cl in [&alice, &bob, &carol] {
        sync_until_text(cl, &g, "carol rude").await;
        sync_until_text(cl, &g, "bob oops").await;
        sync_until_text(cl, &g, "alice says").await;
    }

    // A member may not unsend someone else's message: refused locally, and
    // a hand-made request is ignored by everyone.
    assert!(matches!(
        bob.unsend_group(&g, &a, from_alice.timestamp_ms).await,
        Err(ClientError::Invalid(_))
    ));
    bob.send_group_content(
        &g,
        Content {
            unsend_request: Some(UnsendRequest {
                timestamp: from_alice.timestamp_ms,
                author: a.to_string(),
            }),
            ..Content::default()
        },
    )
    .await
    .unwrap();

    // Bob unsends his own message; alice (admin) unsends carol's.
    bob.unsend_group(&g, &b, oops.timestamp_ms).await.unwrap();
    assert_eq!(deleted(&bob, &g, &b, oops.timestamp_ms), Some(true));
    alice.unsend_group(&g, &c, rude.timestamp_ms).await.unwrap();
    // A later message shows everything before it was processed.
    alice.send_group_text(&g, "after unsend").await.unwrap();
    for cl in [&alice, &bob, &carol] {
        sync_until_deleted(cl, &g, &b, oops.timestamp_ms).await;
        sync_until_deleted(cl, &g, &c, rude.timestamp_ms).await;
        sync_until_text(cl, &g, "after unsend").await;
        assert_eq!(
            deleted(cl, &g, &a, from_alice.timestamp_ms),
            Some(false),
            "a member's forged unsend was applied"
        );
    }

    // Both unsent messages are gone from the group's swarm (alice deleted
    // carol's at once and bob's when she applied his request); alice's
    // message is still there.
    let mut left = Vec::new();
    for it in alice
        .fetch_group_raw(&g, Namespace::GROUP_MESSAGES)
        .await
        .unwrap()
    {
        if let Ok((_, Some(text))) = alice.open_group_item(&g, &it.data).await {
            left.push(text);
        }
    }
    assert!(left.iter().any(|t| t == "alice says"), "{left:?}");
    assert!(
        !left.iter().any(|t| t == "bob oops" || t == "carol rude"),
        "unsent messages still stored: {left:?}"
    );
}

/// Onion requests `c` sends while running `f`.
async fn onion_requests<T>(c: &Client, f: impl std::future::Future<Output = T>) -> (T, usize) {
    c.network().record_requests(true);
    let out = f.await;
    let n = c
        .network()
        .sent_requests()
        .iter()
        .filter(|r| r.endpoint == "/onion_req/v2")
        .count();
    c.network().record_requests(false);
    (out, n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_cadence() {
    let accts = Accounts::new(network());
    let alice = accts.client("alice");
    let bob = accts.client("bob");
    ready(&[&alice, &bob]).await;
    let g = alice
        .create_group("Cadence", &[bob.account_id()])
        .await
        .unwrap();
    join(&bob, &g).await;

    // A full read: 12, 13, 11 and −11 in one onion `batch`.
    let (r, full) = onion_requests(&bob, bob.refresh_group(&g)).await;
    let r = r.unwrap();
    assert!(r.read_keys && r.read_removals, "{r:?}");
    // Right after: namespace 11 only (12/13 every 60 s, −11 every 10 min).
    let (r, quick) = onion_requests(&bob, bob.sync_group(&g)).await;
    let r = r.unwrap();
    assert!(!r.read_keys && !r.read_removals, "{r:?}");
    assert_eq!(full, 1, "a full poll of a member is one batch");
    assert_eq!(quick, 1, "a poll inside the 60 s window");
    let mut skipped = 0;
    for ns in [Namespace::GROUP_KEYS, Namespace::GROUP_STATE] {
        for m in bob.fetch_group_raw(&g, ns).await.unwrap() {
            skipped += m.data.len();
        }
    }
    println!(
        "member poll: {full} onion request(s) in full, {quick} inside the window; \
         the window skips {skipped} bytes of namespaces 12 and 13"
    );

    // A message in the window: read from 11 without 12/13.
    alice.send_group_text(&g, "plain").await.unwrap();
    let r = wait_until("the message", EVENT_TIMEOUT, || async {
        let r = bob.sync_group(&g).await.unwrap();
        texts(&bob, &g).iter().any(|t| t == "plain").then_some(r)
    })
    .await;
    assert!(!r.read_keys, "a plain message needs no key read: {r:?}");

    // A notice (rename) makes the next poll read 12 and 13 at once, inside
    // the window, and the new name is applied.
    alice.rename_group(&g, "Cadence 2").await.unwrap();
    let r = wait_until("the rename", EVENT_TIMEOUT, || async {
        let r = bob.sync_group(&g).await.unwrap();
        (bob.group_info(&g).unwrap().name == "Cadence 2").then_some(r)
    })
    .await;
    assert!(r.read_keys, "a notice must prompt a read of 12/13: {r:?}");
    // And the window restarts.
    let (r, n) = onion_requests(&bob, bob.sync_group(&g)).await;
    assert!(!r.unwrap().read_keys);
    assert_eq!(n, 1);

    // A rekey inside the window: the notice is under the new generation,
    // so it misses; the miss reads 12 and 13 at once and bob reads the
    // notice and the next message under generation 2.
    let carol = accts.client("carol");
    alice
        .add_group_members(&g, &[carol.account_id()])
        .await
        .unwrap();
    alice.send_group_text(&g, "under two").await.unwrap();
    // (Well inside the 60 s window: any read of 12/13 was prompted.)
    let read_keys = std::sync::atomic::AtomicBool::new(false);
    wait_until("the rekey", EVENT_TIMEOUT, || async {
        let r = bob.sync_group(&g).await.unwrap();
        if r.read_keys {
            read_keys.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        texts(&bob, &g)
            .iter()
            .any(|t| t == "under two")
            .then_some(())
    })
    .await;
    assert!(read_keys.into_inner(), "the rekey was not read at once");
    assert_eq!(bob.group_info(&g).unwrap().generation, Some(2));

    // The poll times are persisted: a restarted client keeps the cadence.
    bob.persist().await.unwrap();
    let dir = accts.dir.path().join("bob");
    drop(bob);
    let profile = umbra_client::profile::Profile::open(&dir, None).unwrap();
    let bob = Client::open(
        profile,
        network().clone(),
        umbra_proto::path::PathConfig::default().with_min_usable_nodes(4),
    )
    .unwrap();
    ready(&[&bob]).await;
    let (r, n) = onion_requests(&bob, bob.sync_group(&g)).await;
    let r = r.unwrap();
    assert!(!r.read_keys && !r.read_removals, "{r:?}");
    assert_eq!(n, 1);
}

/// The expiry of each item of `ns`, by hash.
async fn expiries(
    c: &Client,
    g: &AccountId,
    ns: Namespace,
) -> std::collections::BTreeMap<String, u64> {
    c.fetch_group_raw(g, ns)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.hash.as_str().to_string(), m.expiration))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_upkeep() {
    let accts = Accounts::new(network());
    let alice = accts.client("alice");
    let bob = accts.client("bob");
    let carol = accts.client("carol");
    ready(&[&alice]).await;
    // v1 (generation 1), v2 and v3 (renames, generation 1), v4 (generation 2).
    let g = alice
        .create_group("Keep", &[bob.account_id()])
        .await
        .unwrap();
    alice.rename_group(&g, "Keep 2").await.unwrap();
    alice.rename_group(&g, "Keep 3").await.unwrap();
    alice
        .add_group_members(&g, &[carol.account_id()])
        .await
        .unwrap();
    let keys0 = expiries(&alice, &g, Namespace::GROUP_KEYS).await;
    let docs0 = expiries(&alice, &g, Namespace::GROUP_STATE).await;
    assert_eq!((keys0.len(), docs0.len()), (2, 4));

    // The spec's thresholds: everything is fresh and newer than an hour.
    let r = alice.refresh_group(&g).await.unwrap();
    assert_eq!((r.extended, r.deleted), (0, 0), "{r:?}");
    assert_eq!(expiries(&alice, &g, Namespace::GROUP_STATE).await, docs0);
    assert_eq!(expiries(&alice, &g, Namespace::GROUP_KEYS).await, keys0);

    // Make every item "below the threshold" and the hour elapsed.
    alice
        .set_group_upkeep(umbra_proto::group::KEYS_TTL_MS + 1, 0)
        .unwrap();
    let r = alice.refresh_group(&g).await.unwrap();
    assert_eq!(r.deleted, 2, "v1 and v2 deleted: {r:?}");
    assert_eq!(r.extended, 2, "the newest bundle and v4 extended: {r:?}");

    // The newest bundle is extended, generation 1's is left to expire.
    let keys1 = expiries(&alice, &g, Namespace::GROUP_KEYS).await;
    assert_eq!(keys1.len(), 2);
    let extended: Vec<&String> = keys1
        .iter()
        .filter(|(h, e)| *e > &keys0[*h])
        .map(|(h, _)| h)
        .collect();
    let kept: Vec<&String> = keys1
        .iter()
        .filter(|(h, e)| *e == &keys0[*h])
        .map(|(h, _)| h)
        .collect();
    assert_eq!(
        (extended.len(), kept.len()),
        (1, 1),
        "{keys0:?} → {keys1:?}"
    );
    // v3 (generation 1's roster) stays as it was; v4 (current) is extended.
    let docs1 = expiries(&alice, &g, Namespace::GROUP_STATE).await;
    assert_eq!(docs1.len(), 2, "{docs1:?}");
    let longer = docs1.iter().filter(|(h, e)| *e > &docs0[*h]).count();
    let same = docs1.iter().filter(|(h, e)| *e == &docs0[*h]).count();
    assert_eq!((longer, same), (1, 1), "{docs0:?} → {docs1:?}");
    // The admin's state is unchanged and a new member can still read both
    // the current state and generation 2.
    let info = alice.group_info(&g).unwrap();
    assert_eq!((info.name.as_str(), info.generation), ("Keep 3", Some(2)));
    ready(&[&carol]).await;
    join(&carol, &g).await;
    assert_eq!(carol.group_info(&g).unwrap().name, "Keep 3");
    // Back to the spec's thresholds: nothing is due (the document that
    // carol's join superseded is younger than an hour).
    alice
        .set_group_upkeep(umbra_proto::group::EXTEND_BELOW_MS, 3_600_000)
        .unwrap();
    let r = alice.refresh_group(&g).await.unwrap();
    assert_eq!((r.extended, r.deleted), (0, 0), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_restores_lost_keys() {
    let accts = Accounts::new(network());
    let alice = accts.client("alice");
    let bob = accts.client("bob");
    ready(&[&alice, &bob]).await;
    let g = alice
        .create_group("Lost", &[bob.account_id()])
        .await
        .unwrap();
    // The admin reads 12/13 once and so holds the newest bundle.
    let r = alice.refresh_group(&g).await.unwrap();
    assert_eq!(r.restored, 0, "{r:?}");
    let (mut hashes, mut before) = (Vec::new(), Vec::new());
    for ns in [Namespace::GROUP_KEYS, Namespace::GROUP_STATE] {
        let items = alice.fetch_group_raw(&g, ns).await.unwrap();
        assert_eq!(items.len(), 1);
        hashes.push(items[0].hash.clone());
        before.push(items[0].data.clone());
    }
    // Both expire from the swarm (simulated by deleting them).
    assert_eq!(alice.delete_group_raw(&g, &hashes).await.unwrap(), 2);
    for ns in [Namespace::GROUP_KEYS, Namespace::GROUP_STATE] {
        assert!(alice.fetch_group_raw(&g, ns).await.unwrap().is_empty());
    }
    // The admin's next read stores its copies again, byte for byte.
    let r = alice.refresh_group(&g).await.unwrap();
    assert_eq!(r.restored, 2, "{r:?}");
    for (ns, data) in [Namespace::GROUP_KEYS, Namespace::GROUP_STATE]
        .into_iter()
        .zip(&before)
    {
        let items = alice.fetch_group_raw(&g, ns).await.unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(&items[0].data, data);
    }
    let r = alice.refresh_group(&g).await.unwrap();
    assert_eq!(r.restored, 0, "{r:?}");
    // So an invitee can still join: it reads the key and the roster.
    join(&bob, &g).await;
    assert_eq!(bob.group_info(&g).unwrap().name, "Lost");
}

/// Bob approved Alice, so her invites join him at once. Alice invites him
/// and removes him before his device syncs: the group's state no longer
/// lists him, so joining fails. He is told he was removed, and his sync
/// goes on to what came after the invite (it used to fail at the invite on
/// every sync).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_that_cannot_be_joined_does_not_stop_sync() {
    let accts = Accounts::new(network());
    let alice = accts.client("alice");
    let bob = accts.client("bob");
    let carol = accts.client("carol");
    ready(&[&alice, &bob, &carol]).await;
    let (a_id, b_id) = (alice.account_id(), bob.account_id());
    // Bob writes first: Alice is an approved contact of his.
    bob.send_text(&a_id, "hi Alice").await.unwrap();
    let g = alice
        .create_group("Gone", &[b_id, carol.account_id()])
        .await
        .unwrap();
    alice.remove_group_members(&g, &[b_id]).await.unwrap();
    alice.send_text(&b_id, "after the invite").await.unwrap();

    wait_until(
        "Alice's message after the invite",
        EVENT_TIMEOUT,
        || async {
            bob.sync().await.unwrap();
            bob.profile()
                .store()
                .messages(&a_id, None)
                .unwrap()
                .iter()
                .any(|m| m.text == "after the invite")
                .then_some(())
        },
    )
    .await;
    // He learnt why: the invite led to a group that had removed him.
    let seen = texts(&bob, &g);
    assert!(
        seen.iter().any(|t| t == "you were removed from the group"),
        "{seen:?}"
    );
    assert!(
        !seen.iter().any(|t| t.contains("accept to join")),
        "{seen:?}"
    );
    assert!(bob.group_invites().unwrap().iter().all(|i| i.group != g));
}

/// A member posts a notice signed at a time no store can hold (2^63 ms):
/// every other member drops it and reads on. It used to stop each member's
/// polling of the group at that item for as long as the swarm kept it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_item_with_an_impossible_time_does_not_stop_polling() {
    let accts = Accounts::new(network());
    let (alice, bob, carol, g) = group_of_three(&accts, "Clock").await;
    let notice = Notice::InviteResponse { accepted: false }.to_control(None);
    bob.send_group_content_at(
        &g,
        Content {
            data_message: Some(DataMessage {
                umbra_group_control: Some(notice),
                ..DataMessage::default()
            }),
            ..Content::default()
        },
        1 << 63,
    )
    .await
    .unwrap();
    bob.send_group_text(&g, "after the impossible one")
        .await
        .unwrap();
    sync_until_text(&alice, &g, "after the impossible one").await;
    sync_until_text(&carol, &g, "after the impossible one").await;
}

/// Mallory, a stranger to Bob (no approved chat), invites him to more of
/// her own groups than the per-inviter cap: only the capped number stay
/// pending, the rest are dropped (counted as undecryptable) and the sync
/// goes on; an approved contact's invite still joins him at once; and
/// declining one of Mallory's requests frees its slot. Each invite used to
/// be kept, and each rewrote the whole blob of pending invites.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strangers_invites_are_capped() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    const CAP: usize = 5;
    let accts = Accounts::new(network());
    let mallory = accts.client("mallory");
    let bob = accts.client("bob");
    let carol = accts.client("carol");
    ready(&[&mallory, &bob, &carol]).await;
    let (m_id, b_id, c_id) = (mallory.account_id(), bob.account_id(), carol.account_id());
    // Bob writes first: Carol is an approved contact of his.
    bob.send_text(&c_id, "hi Carol").await.unwrap();
    let mut spam = Vec::new();
    for i in 0..CAP + 2 {
        let g = mallory.create_group(&format!("Spam {i}"), &[b_id]).await;
        spam.push(g.unwrap());
    }
    let friends = carol.create_group("Friends", &[b_id]).await.unwrap();
    carol.send_text(&b_id, "after the invites").await.unwrap();

    let from_mallory = |c: &Client| -> Vec<AccountId> {
        c.group_invites()
            .unwrap()
            .into_iter()
            .filter(|i| i.inviter == m_id)
            .map(|i| i.group)
            .collect()
    };
    let dropped = AtomicUsize::new(0);
    wait_until(
        "every invite and Carol's message",
        EVENT_TIMEOUT,
        || async {
            let r = bob.sync().await.unwrap();
            dropped.fetch_add(r.undecryptable, Ordering::Relaxed);
            let carols = bob.profile().store().messages(&c_id, None).unwrap();
            (from_mallory(&bob).len() + dropped.load(Ordering::Relaxed) >= CAP + 2
                && carols.iter().any(|m| m.text == "after the invites"))
            .then_some(())
        },
    )
    .await;
    let pending = from_mallory(&bob);
    assert_eq!(pending.len(), CAP, "{pending:?}");
    assert_eq!(dropped.load(Ordering::Relaxed), 2);
    assert!(pending.iter().all(|g| spam.contains(g)));
    // A dropped invite leaves no request behind.
    let requests = bob.profile().store().requests().unwrap();
    for g in spam.iter().filter(|g| !pending.contains(g)) {
        assert!(requests.iter().all(|r| r.peer != *g));
    }
    // Carol's invite joined him at once, cap or not.
    assert!(
        bob.group_invites()
            .unwrap()
            .iter()
            .all(|i| i.group != friends)
    );
    assert_eq!(bob.group_info(&friends).unwrap().name, "Friends");

    // Bob declines one of Mallory's requests: her next invite fits again.
    bob.decline(&pending[0]).await.unwrap();
    assert!(
        !from_mallory(&bob).contains(&pending[0]),
        "declining the request forgets its invite at once"
    );
    let more = mallory.create_group("Spam again", &[b_id]).await.unwrap();
    wait_until("Mallory's next invite", EVENT_TIMEOUT, || async {
        bob.sync().await.unwrap();
        from_mallory(&bob).contains(&more).then_some(())
    })
    .await;
    let now = from_mallory(&bob);
    assert_eq!(now.len(), CAP, "{now:?}");
    assert!(!now.contains(&pending[0]));
}
