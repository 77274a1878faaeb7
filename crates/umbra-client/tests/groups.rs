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
    let alice = accts.client("alice");
    let bob = accts.client("bob");
    let carol = accts.client("carol");
    ready(&[&alice, &bob, &carol]).await;
    let g = alice
        .create_group("Club", &[bob.account_id(), carol.account_id()])
        .await
        .unwrap();
    join(&bob, &g).await;
    join(&carol, &g).await;

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
    let r = bob.sync_group(&g).await.unwrap();
    assert!(r.refused.is_none());
    assert_eq!(bob.group_info(&g).unwrap().generation, Some(2));
    assert_eq!(alice.sync_group(&g).await.unwrap().new_keys, 0);
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
    let alice = accts.client("alice");
    let bob = accts.client("bob");
    let carol = accts.client("carol");
    ready(&[&alice, &bob, &carol]).await;
    let g = alice
        .create_group("Unsend", &[bob.account_id(), carol.account_id()])
        .await
        .unwrap();
    join(&bob, &g).await;
    join(&carol, &g).await;
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
