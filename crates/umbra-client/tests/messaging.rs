//! End-to-end tests of the messaging client (`messages.md` §5–14) as a user
//! would see it: 2–3 [`Client`]s on one shared 8-node in-process devnet,
//! every request going through 3-hop onion paths.
//!
//! Covered: message requests (accept, decline, block, unblock: §11), read
//! receipts (§12), typing indicators (§13), disappearing messages after send
//! and after read (§14), unsend and forged unsends (§10), a second device
//! restored from the same seed (§9) and de-duplication (§5.3, §7).
//!
//! The devnet is started once for the whole file, on its own runtime in a
//! background thread (its data lives in `CARGO_TARGET_TMPDIR`); each test
//! creates fresh accounts, so tests are independent and may run in
//! parallel. Waits use [`wait_until`] (poll with a deadline), never fixed
//! sleeps. Swarm state is checked by asking **every** member of the
//! account's swarm directly ([`on_every_member`]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "integration test: a panic is a test failure"
)]

use std::cell::Cell;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use umbra_client::client::{Client, ClientError};
use umbra_client::store::{Direction, Disappearing, DisappearingMode, MessageStatus};
use umbra_proto::identity::{AccountId, AccountKeys};
use umbra_proto::message::protos::{DataMessage, UnsendRequest, typing_message};
use umbra_proto::message::{Content, Opened, open_envelope, seal_content};
use umbra_proto::mnemonic::AccountSeed;
use umbra_proto::network::NetworkConfig;
use umbra_transport::{NodeAddr, NodeClient};

/// How long any one network event may take to show up.
const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

// ----- the shared devnet -----

mod common;

use common::{Accounts, wait_until};

/// The network configuration of the devnet shared by every test here.
fn network() -> &'static NetworkConfig {
    common::devnet("umbra-client-messaging-devnet", 8)
}

// ----- helpers -----

/// Syncs `c` until its conversation with `peer` holds a message that
/// satisfies `pred`; returns that message's timestamp and swarm hash.
async fn sync_until_message(
    c: &Client,
    peer: &AccountId,
    what: &str,
    pred: impl Fn(&umbra_client::store::Message) -> bool,
) -> umbra_client::store::Message {
    wait_until(what, EVENT_TIMEOUT, || async {
        c.sync().await.unwrap();
        c.profile()
            .store()
            .messages(peer, None)
            .unwrap()
            .into_iter()
            .find(|m| pred(m))
    })
    .await
}

/// One message as the swarm holds it.
struct Stored {
    hash: String,
    expiration: u64,
    /// The message decrypted with the owner's keys (`None`: not for them).
    opened: Option<Opened>,
}

fn signed_retrieve(keys: &AccountKeys, t: u64) -> Value {
    let sig = keys.ed25519().sign(format!("retrieve{t}").as_bytes());
    json!({
        "pubkey": keys.account_id().to_string(),
        "pubkey_ed25519": hex::encode(keys.ed25519_public().as_bytes()),
        "timestamp": t,
        "signature": STANDARD.encode(sig),
    })
}

fn parse_stored(keys: &AccountKeys, body: &Value) -> Vec<Stored> {
    body["messages"]
        .as_array()
        .expect("retrieve result has messages")
        .iter()
        .map(|m| Stored {
            hash: m["hash"].as_str().unwrap().to_string(),
            expiration: m["expiration"].as_u64().unwrap(),
            opened: STANDARD
                .decode(m["data"].as_str().unwrap())
                .ok()
                .and_then(|b| open_envelope(keys, &b).ok()),
        })
        .collect()
}

/// A signed `retrieve` of `keys`' inbox, asked directly of **each** member
/// of its swarm (the registry as `via` holds it): one list per member.
async fn on_every_member(via: &Client, keys: &AccountKeys) -> Vec<Vec<Stored>> {
    let doc = via.network().registry().await.expect("a registry");
    let members = doc.members_for(&keys.account_id());
    assert!(!members.is_empty());
    let client = NodeClient::default();
    let mut out = Vec::new();
    for r in members {
        let t = via.now().await;
        let body = json!({"method": "retrieve", "params": signed_retrieve(keys, t)}).to_string();
        let addr = NodeAddr::new(SocketAddr::from((r.ipv4, r.https_port)), r.ed25519);
        let resp = client
            .post(&addr, "/storage_rpc/v1", body.into_bytes())
            .await
            .expect("direct retrieve");
        assert_eq!(resp.status.as_u16(), 200, "direct retrieve refused");
        let v: Value = serde_json::from_slice(&resp.body).unwrap();
        out.push(parse_stored(keys, &v));
    }
    out
}

/// Whether no member of `keys`' swarm holds `hash`.
async fn gone_from_swarm(via: &Client, keys: &AccountKeys, hash: &str) -> bool {
    on_every_member(via, keys)
        .await
        .iter()
        .all(|member| member.iter().all(|s| s.hash != hash))
}

/// Every message any member of `keys`' swarm holds, decrypted.
async fn swarm_contents(via: &Client, keys: &AccountKeys) -> Vec<Stored> {
    let mut all: Vec<Stored> = Vec::new();
    for member in on_every_member(via, keys).await {
        for s in member {
            if !all.iter().any(|a| a.hash == s.hash) {
                all.push(s);
            }
        }
    }
    all
}

/// Stores a raw `content` sealed by `from` to `to` at time `t` (14-day TTL),
/// through `via`'s onion paths; returns the swarm hash.
async fn store_raw(
    via: &Client,
    from: &AccountKeys,
    to: &AccountId,
    content: &Content,
    t: u64,
) -> String {
    store_raw_ttl(via, from, to, content, t, 14 * 86_400_000).await
}

/// As [`store_raw`], with a given TTL (ms).
async fn store_raw_ttl(
    via: &Client,
    from: &AccountKeys,
    to: &AccountId,
    content: &Content,
    t: u64,
    ttl_ms: u64,
) -> String {
    let blob = seal_content(from, to, content, t, umbra_crypto::random_bytes::<32>()).unwrap();
    store_blob(via, to, &blob, t, ttl_ms).await
}

/// Stores the sealed `blob` for `to` with store timestamp `t` and TTL
/// `ttl_ms`, through `via`'s onion paths; returns the swarm hash.
async fn store_blob(via: &Client, to: &AccountId, blob: &[u8], t: u64, ttl_ms: u64) -> String {
    let reply = via
        .network()
        .storage_request(
            to,
            "store",
            json!({
                "pubkey": to.to_string(),
                "timestamp": t,
                "ttl": ttl_ms,
                "data": STANDARD.encode(blob),
            }),
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["swarm"]
        .as_object()
        .unwrap()
        .values()
        .find_map(|r| r["hash"].as_str())
        .expect("a member stored it")
        .to_string()
}

/// `a` writes to `b`, `b` accepts, and `a` learns it: an approved 1:1 chat.
async fn approved_pair(a: &Client, b: &Client) {
    let (a_id, b_id) = (a.account_id(), b.account_id());
    a.send_text(&b_id, "hello").await.unwrap();
    sync_until_message(b, &a_id, "the first message", |m| m.text == "hello").await;
    b.accept(&a_id).await.unwrap();
    wait_until("the accept to reach the sender", EVENT_TIMEOUT, || async {
        a.sync().await.unwrap();
        a.profile()
            .store()
            .conversation(&b_id)
            .unwrap()
            .filter(|c| c.approved_us)
    })
    .await;
}

/// Messages of `peer`'s conversation whose text is `text`.
fn count_text(c: &Client, peer: &AccountId, text: &str) -> usize {
    c.profile()
        .store()
        .messages(peer, None)
        .unwrap()
        .iter()
        .filter(|m| m.text == text)
        .count()
}

/// Every file under `dir`, recursively, with its bytes.
fn all_files(dir: &std::path::Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(all_files(&p));
        } else if let Ok(bytes) = std::fs::read(&p) {
            out.push((p, bytes));
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

// ----- 1. message requests -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_accept_decline_block_unblock() {
    let accts = Accounts::new(network());
    let (alice, bob, carol) = (
        accts.client("alice"),
        accts.client("bob"),
        accts.client("carol"),
    );
    let (a_id, b_id, c_id) = (alice.account_id(), bob.account_id(), carol.account_id());
    let bob_store = bob.profile().store();

    // First message from an unknown account: a request.
    alice.send_text(&b_id, "hi bob, it's alice").await.unwrap();
    let rep = wait_until("Bob to receive Alice's request", EVENT_TIMEOUT, || async {
        let r = bob.sync().await.unwrap();
        (r.new_messages > 0).then_some(r)
    })
    .await;
    assert_eq!(rep.new_requests, 1, "{rep:?}");
    let reqs = bob_store.requests().unwrap();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].peer, a_id);
    assert!(reqs[0].is_request && !reqs[0].approved_by_us);
    // Documented (`LocalStore::conversations`): requests are listed too,
    // marked `is_request`; the main list is the non-request ones.
    let convs = bob_store.conversations().unwrap();
    assert_eq!(convs.len(), 1);
    assert!(convs[0].is_request);
    assert!(
        convs.iter().all(|c| c.is_request),
        "a request must not be in the main list"
    );
    // The sender has not been approved yet.
    alice.sync().await.unwrap();
    let a_conv = alice
        .profile()
        .store()
        .conversation(&b_id)
        .unwrap()
        .unwrap();
    assert!(a_conv.approved_by_us && !a_conv.approved_us && !a_conv.is_request);

    // Accept: moves to the main list; the sender learns it after a sync.
    bob.accept(&a_id).await.unwrap();
    assert!(bob_store.requests().unwrap().is_empty());
    let conv = bob_store.conversation(&a_id).unwrap().unwrap();
    assert!(!conv.is_request && conv.approved_by_us && conv.approved_us);
    wait_until("Alice to learn Bob accepted", EVENT_TIMEOUT, || async {
        alice.sync().await.unwrap();
        alice
            .profile()
            .store()
            .conversation(&b_id)
            .unwrap()
            .filter(|c| c.approved_us)
    })
    .await;

    // Decline: the conversation and its messages go, locally and from our
    // swarm; nothing is sent to the requester.
    carol
        .send_text(&b_id, "carol here, first try")
        .await
        .unwrap();
    let m = sync_until_message(&bob, &c_id, "Carol's request", |m| {
        m.text == "carol here, first try"
    })
    .await;
    let carol_hash = m.hash.clone().expect("incoming messages keep their hash");
    // Even with read receipts on, reading a request sends none (§11.1, §12).
    bob_store.set_read_receipts(true).unwrap();
    carol.profile().store().set_read_receipts(true).unwrap();
    bob.read_conversation(&c_id, None).await.unwrap();
    bob.decline(&c_id).await.unwrap();
    assert!(bob_store.conversation(&c_id).unwrap().is_none());
    assert!(bob_store.messages(&c_id, None).unwrap().is_empty());
    assert!(bob_store.requests().unwrap().is_empty());
    wait_until(
        "the declined message to leave Bob's swarm",
        EVENT_TIMEOUT,
        || async {
            gone_from_swarm(&bob, bob.profile().keys(), &carol_hash)
                .await
                .then_some(())
        },
    )
    .await;
    // Syncing again does not bring it back.
    bob.sync().await.unwrap();
    assert!(bob_store.conversation(&c_id).unwrap().is_none());

    // Block: later messages are retrieved, dropped and counted.
    bob.block(&c_id).await.unwrap();
    assert_eq!(bob_store.blocked_accounts().unwrap(), vec![c_id]);
    assert!(matches!(
        bob.send_text(&c_id, "no").await,
        Err(ClientError::Invalid(_))
    ));
    carol
        .send_text(&b_id, "carol again, blocked")
        .await
        .unwrap();
    let blocked = Cell::new(0);
    wait_until("Bob to drop Carol's message", EVENT_TIMEOUT, || async {
        blocked.set(blocked.get() + bob.sync().await.unwrap().blocked);
        (blocked.get() > 0).then_some(())
    })
    .await;
    assert_eq!(blocked.get(), 1);
    assert!(bob_store.messages(&c_id, None).unwrap().is_empty());
    assert!(bob_store.requests().unwrap().is_empty());
    assert!(
        !bob_store
            .conversations()
            .unwrap()
            .iter()
            .any(|c| c.peer == c_id)
    );
    bob.read_conversation(&c_id, None).await.unwrap();

    // Unblock: earlier messages are not restored; new ones arrive as a request.
    bob.unblock(&c_id).unwrap();
    assert!(bob_store.blocked_accounts().unwrap().is_empty());
    bob.sync().await.unwrap();
    assert_eq!(count_text(&bob, &c_id, "carol again, blocked"), 0);
    carol
        .send_text(&b_id, "carol, after unblock")
        .await
        .unwrap();
    sync_until_message(&bob, &c_id, "Carol's message after the unblock", |m| {
        m.text == "carol, after unblock"
    })
    .await;
    assert_eq!(bob_store.requests().unwrap().len(), 1);

    // Nothing at all from Bob ever reached Carol: no accept, no decline,
    // no read receipt (neither for the request nor while blocked).
    let from_bob: Vec<_> = swarm_contents(&carol, carol.profile().keys())
        .await
        .into_iter()
        .filter_map(|s| s.opened)
        .filter(|o| o.sender == b_id)
        .collect();
    assert!(
        from_bob.is_empty(),
        "Bob sent Carol {} message(s): {:?}",
        from_bob.len(),
        from_bob.iter().map(|o| &o.content).collect::<Vec<_>>()
    );
    let c_conv = carol
        .profile()
        .store()
        .conversation(&b_id)
        .unwrap()
        .unwrap();
    assert!(!c_conv.approved_us);

    // Replying to a request counts as accepting it (§11.2): the accept is
    // sent first, and the chat leaves the requests inbox.
    bob.send_text(&c_id, "bob replies to carol").await.unwrap();
    assert!(bob_store.requests().unwrap().is_empty());
    let conv = bob_store.conversation(&c_id).unwrap().unwrap();
    assert!(conv.approved_by_us && !conv.is_request);
    wait_until(
        "Carol to see Bob's accept and reply",
        EVENT_TIMEOUT,
        || async {
            let got = swarm_contents(&carol, carol.profile().keys())
                .await
                .into_iter()
                .filter_map(|s| s.opened)
                .filter(|o| o.sender == b_id)
                .fold((false, false), |(acc, reply), o| {
                    (
                        acc || o
                            .content
                            .message_request_response
                            .as_ref()
                            .is_some_and(|r| r.is_approved),
                        reply
                            || o.content
                                .data_message
                                .as_ref()
                                .is_some_and(|d| d.body.as_deref() == Some("bob replies to carol")),
                    )
                });
            (got == (true, true)).then_some(())
        },
    )
    .await;
    sync_until_message(&carol, &b_id, "Bob's reply", |m| {
        m.text == "bob replies to carol"
    })
    .await;
    let c_conv = carol
        .profile()
        .store()
        .conversation(&b_id)
        .unwrap()
        .unwrap();
    assert!(c_conv.approved_us);
}

// ----- 2. read receipts -----

/// The swarm hashes of the receipts from `from` in `to`'s swarm that list `t`.
async fn receipts_for(to: &Client, from: &AccountId, t: u64) -> Vec<String> {
    swarm_contents(to, to.profile().keys())
        .await
        .into_iter()
        .filter(|s| {
            s.opened.as_ref().is_some_and(|o| {
                o.sender == *from
                    && o.content
                        .receipt_message
                        .as_ref()
                        .is_some_and(|r| r.timestamp.contains(&t))
            })
        })
        .map(|s| s.hash)
        .collect()
}

/// Syncs `c` until it has processed every hash in `hashes`; returns the
/// sum of the reports' `field`.
async fn sync_until_seen(
    c: &Client,
    hashes: &[String],
    field: impl Fn(&umbra_client::client::SyncReport) -> usize,
) -> usize {
    let sum = Cell::new(0);
    wait_until("the messages to be processed", EVENT_TIMEOUT, || async {
        sum.set(sum.get() + field(&c.sync().await.unwrap()));
        let store = c.profile().store();
        hashes
            .iter()
            .all(|h| store.is_seen(h).unwrap())
            .then_some(())
    })
    .await;
    sum.get()
}

fn status_of(c: &Client, peer: &AccountId, t: u64) -> MessageStatus {
    c.profile()
        .store()
        .message_by_author_ts(peer, &c.account_id(), t)
        .unwrap()
        .expect("our message")
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_receipts_off_by_default_and_both_ways() {
    let accts = Accounts::new(network());
    let (alice, bob) = (accts.client("alice"), accts.client("bob"));
    let (a_id, b_id) = (alice.account_id(), bob.account_id());
    approved_pair(&alice, &bob).await;
    // Each read below must send its receipt at once: no batching window
    // (batching itself: receipts_sync.rs).
    bob.set_receipt_window(Duration::ZERO);
    assert!(!alice.profile().store().read_receipts().unwrap());
    assert!(!bob.profile().store().read_receipts().unwrap());

    // Off by default: Bob reads, no receipt is sent.
    let m1 = alice.send_text(&b_id, "receipts: default").await.unwrap();
    sync_until_message(&bob, &a_id, "m1", |m| m.timestamp_ms == m1.timestamp_ms).await;
    let read = bob.read_conversation(&a_id, None).await.unwrap();
    assert!(
        read.iter()
            .any(|m| m.timestamp_ms == m1.timestamp_ms && m.read_at_ms.is_some())
    );

    // On at the reader only: the receipt is sent, but the sender (setting
    // off) ignores it — the setting works in both directions.
    bob.profile().store().set_read_receipts(true).unwrap();
    let m2 = alice
        .send_text(&b_id, "receipts: reader only")
        .await
        .unwrap();
    sync_until_message(&bob, &a_id, "m2", |m| m.timestamp_ms == m2.timestamp_ms).await;
    bob.read_conversation(&a_id, None).await.unwrap();
    let receipt = wait_until(
        "Bob's receipt for m2 in Alice's swarm",
        EVENT_TIMEOUT,
        || async {
            let r = receipts_for(&alice, &b_id, m2.timestamp_ms).await;
            (!r.is_empty()).then_some(r)
        },
    )
    .await;
    let applied = sync_until_seen(&alice, &receipt, |r| r.receipts).await;
    assert_eq!(applied, 0, "Alice's setting is off: the receipt is ignored");
    assert_eq!(
        status_of(&alice, &b_id, m2.timestamp_ms),
        MessageStatus::Sent
    );
    // m1 was read with receipts off: none was ever sent for it.
    assert!(
        receipts_for(&alice, &b_id, m1.timestamp_ms)
            .await
            .is_empty()
    );

    // On at the sender only: Bob (off) sends none.
    bob.profile().store().set_read_receipts(false).unwrap();
    alice.profile().store().set_read_receipts(true).unwrap();
    let m3 = alice
        .send_text(&b_id, "receipts: sender only")
        .await
        .unwrap();
    sync_until_message(&bob, &a_id, "m3", |m| m.timestamp_ms == m3.timestamp_ms).await;
    bob.read_conversation(&a_id, None).await.unwrap();

    // On at both ends: the sender's message becomes Read.
    bob.profile().store().set_read_receipts(true).unwrap();
    let m4 = alice.send_text(&b_id, "receipts: both").await.unwrap();
    sync_until_message(&bob, &a_id, "m4", |m| m.timestamp_ms == m4.timestamp_ms).await;
    bob.read_conversation(&a_id, None).await.unwrap();
    wait_until("m4 to show as read", EVENT_TIMEOUT, || async {
        alice.sync().await.unwrap();
        (status_of(&alice, &b_id, m4.timestamp_ms) == MessageStatus::Read).then_some(())
    })
    .await;
    // By now m4's receipt arrived, so a receipt for m3 would have too.
    assert!(
        receipts_for(&alice, &b_id, m3.timestamp_ms)
            .await
            .is_empty()
    );
    assert_eq!(
        status_of(&alice, &b_id, m3.timestamp_ms),
        MessageStatus::Sent
    );
    assert_eq!(
        status_of(&alice, &b_id, m2.timestamp_ms),
        MessageStatus::Sent
    );
}

// ----- 3. typing indicators -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_indicators() {
    let accts = Accounts::new(network());
    let (alice, bob, carol) = (
        accts.client("alice"),
        accts.client("bob"),
        accts.client("carol"),
    );
    let (a_id, b_id) = (alice.account_id(), bob.account_id());
    approved_pair(&alice, &bob).await;

    // Off by default: nothing is sent.
    assert!(!alice.profile().store().typing_indicators().unwrap());
    assert!(!alice.send_typing(&b_id, true).await.unwrap());

    // Never in a chat that is not approved both ways (a request), even when on.
    carol.profile().store().set_typing_indicators(true).unwrap();
    carol.send_text(&b_id, "carol").await.unwrap();
    assert!(
        !carol.send_typing(&b_id, true).await.unwrap(),
        "Bob has not approved Carol"
    );

    // On at the sender only: sent, but Bob (off) does not show it.
    alice.profile().store().set_typing_indicators(true).unwrap();
    assert!(alice.send_typing(&b_id, true).await.unwrap());
    let typing = wait_until(
        "the typing message in Bob's swarm",
        EVENT_TIMEOUT,
        || async {
            let h: Vec<String> = swarm_contents(&bob, bob.profile().keys())
                .await
                .into_iter()
                .filter(|s| {
                    s.opened
                        .as_ref()
                        .is_some_and(|o| o.sender == a_id && o.content.typing_message.is_some())
                })
                .map(|s| s.hash)
                .collect();
            (!h.is_empty()).then_some(h)
        },
    )
    .await;
    let shown = sync_until_seen(&bob, &typing, |r| r.typing.len()).await;
    assert_eq!(shown, 0, "Bob's setting is off: not shown");

    // On at both ends: Bob's sync reports Alice typing.
    bob.profile().store().set_typing_indicators(true).unwrap();
    assert!(alice.send_typing(&b_id, true).await.unwrap());
    wait_until("Bob to see Alice typing", EVENT_TIMEOUT, || async {
        let r = bob.sync().await.unwrap();
        r.typing.contains(&a_id).then_some(())
    })
    .await;
    // A STOPPED indicator is not reported as typing.
    assert!(alice.send_typing(&b_id, false).await.unwrap());
    let stopped = wait_until(
        "the STOPPED message in Bob's swarm",
        EVENT_TIMEOUT,
        || async {
            let h: Vec<String> = swarm_contents(&bob, bob.profile().keys())
                .await
                .into_iter()
                .filter(|s| {
                    s.opened.as_ref().is_some_and(|o| {
                        o.sender == a_id
                            && o.content
                                .typing_message
                                .as_ref()
                                .is_some_and(|t| t.action == typing_message::Action::Stopped as i32)
                    })
                })
                .map(|s| s.hash)
                .collect();
            (!h.is_empty()).then_some(h)
        },
    )
    .await;
    let shown = sync_until_seen(&bob, &stopped, |r| r.typing.len()).await;
    assert_eq!(shown, 0, "STOPPED is not typing");
    // Typing messages are not synced to our own swarm and never shown as messages.
    assert!(
        !swarm_contents(&alice, alice.profile().keys())
            .await
            .into_iter()
            .filter_map(|s| s.opened)
            .any(|o| o.content.typing_message.is_some())
    );
}

/// §13 receiver: a STARTED older than 15 s (e.g. retrieved late; typing
/// messages live 20 s on the swarm) is not shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_indicator_stale_started_is_not_shown() {
    let accts = Accounts::new(network());
    let (alice, bob) = (accts.client("alice"), accts.client("bob"));
    let (_a_id, b_id) = (alice.account_id(), bob.account_id());
    approved_pair(&alice, &bob).await;
    alice.profile().store().set_typing_indicators(true).unwrap();
    bob.profile().store().set_typing_indicators(true).unwrap();
    let typing = |t: u64, action: typing_message::Action| Content {
        typing_message: Some(umbra_proto::message::protos::TypingMessage {
            timestamp: t,
            action: action as i32,
        }),
        ..Content::default()
    };
    let keys = alice.profile().keys();

    // A STARTED sent 16 s ago (e.g. retrieved late): stale, not shown.
    let t = alice.now().await - 16_000;
    let stale = store_raw_ttl(
        &alice,
        keys,
        &b_id,
        &typing(t, typing_message::Action::Started),
        t,
        60_000,
    )
    .await;
    let shown = sync_until_seen(&bob, &[stale], |r| r.typing.len()).await;
    assert_eq!(shown, 0, "a STARTED older than 15 s is shown as typing");
}

/// §13 receiver: a STOPPED that follows a STARTED clears it, also when
/// both arrive in the same sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_indicator_stopped_in_the_same_sync_clears_it() {
    let accts = Accounts::new(network());
    let (alice, bob) = (accts.client("alice"), accts.client("bob"));
    let (a_id, b_id) = (alice.account_id(), bob.account_id());
    approved_pair(&alice, &bob).await;
    alice.profile().store().set_typing_indicators(true).unwrap();
    bob.profile().store().set_typing_indicators(true).unwrap();
    let typing = |t: u64, action: typing_message::Action| Content {
        typing_message: Some(umbra_proto::message::protos::TypingMessage {
            timestamp: t,
            action: action as i32,
        }),
        ..Content::default()
    };
    let keys = alice.profile().keys();

    // STARTED then STOPPED, both on every member before Bob syncs once.
    let t1 = alice.now().await;
    let started = store_raw_ttl(
        &alice,
        keys,
        &b_id,
        &typing(t1, typing_message::Action::Started),
        t1,
        20_000,
    )
    .await;
    let t2 = t1 + 1;
    let stopped = store_raw_ttl(
        &alice,
        keys,
        &b_id,
        &typing(t2, typing_message::Action::Stopped),
        t2,
        20_000,
    )
    .await;
    wait_until(
        "both typing messages on every member",
        EVENT_TIMEOUT,
        || async {
            on_every_member(&bob, bob.profile().keys())
                .await
                .iter()
                .all(|m| {
                    [&started, &stopped]
                        .iter()
                        .all(|h| m.iter().any(|s| &&s.hash == h))
                })
                .then_some(())
        },
    )
    .await;
    let rep = bob.sync().await.unwrap();
    assert!(bob.profile().store().is_seen(&stopped).unwrap());
    assert!(
        !rep.typing.contains(&a_id),
        "Alice stopped typing, yet the sync reports her typing: {rep:?}"
    );
}

// ----- 4. disappearing messages -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disappearing_after_send_and_after_read() {
    let accts = Accounts::new(network());
    let (alice, bob) = (accts.client("alice"), accts.client("bob"));
    let (a_id, b_id) = (alice.account_id(), bob.account_id());
    approved_pair(&alice, &bob).await;

    // Delete after send, 10 s (the shortest TTL a node accepts).
    alice
        .set_disappearing(
            &b_id,
            Disappearing {
                mode: DisappearingMode::AfterSend,
                timer_s: 10,
            },
        )
        .await
        .unwrap();
    let sent = alice.send_text(&b_id, "gone in ten").await.unwrap();
    let m = sync_until_message(&bob, &a_id, "the DaS message", |m| m.text == "gone in ten").await;
    assert_eq!(m.disappearing.mode, DisappearingMode::AfterSend);
    let expires = m.expires_at_ms.expect("a running timer");
    assert!(
        expires.abs_diff(sent.timestamp_ms + 10_000) < 2_000,
        "expires at the swarm expiry: T + 10 s"
    );
    let das10 = Disappearing {
        mode: DisappearingMode::AfterSend,
        timer_s: 10,
    };
    wait_until(
        "the timer update to change Bob's setting",
        EVENT_TIMEOUT,
        || async {
            bob.sync().await.unwrap();
            let c = bob.profile().store().conversation(&a_id).unwrap().unwrap();
            (c.disappearing == das10).then_some(())
        },
    )
    .await;
    let hash = m.hash.clone().unwrap();
    let before = on_every_member(&bob, bob.profile().keys()).await;
    assert!(
        before.iter().any(|mem| mem.iter().any(|s| s.hash == hash)),
        "the swarm holds it before the timer"
    );
    // Gone from Bob's device after the timer …
    wait_until(
        "the DaS message to leave Bob's device",
        Duration::from_secs(25),
        || async {
            bob.sync().await.unwrap();
            (count_text(&bob, &a_id, "gone in ten") == 0).then_some(())
        },
    )
    .await;
    let elapsed = alice.now().await.saturating_sub(sent.timestamp_ms);
    assert!(elapsed >= 10_000, "gone after {elapsed} ms: too early");
    // … from Alice's device …
    alice.sync().await.unwrap();
    assert_eq!(count_text(&alice, &b_id, "gone in ten"), 0);
    // … and from every member of Bob's swarm.
    wait_until(
        "the DaS message to leave the swarm",
        EVENT_TIMEOUT,
        || async {
            gone_from_swarm(&bob, bob.profile().keys(), &hash)
                .await
                .then_some(())
        },
    )
    .await;

    // Delete after read, 600 s: the swarm copy keeps its 14-day TTL until
    // Bob reads it, then Bob shortens it to read time + 600 s.
    alice
        .set_disappearing(
            &b_id,
            Disappearing {
                mode: DisappearingMode::AfterRead,
                timer_s: 600,
            },
        )
        .await
        .unwrap();
    let sent = alice.send_text(&b_id, "read me once").await.unwrap();
    let m = sync_until_message(&bob, &a_id, "the DaR message", |m| m.text == "read me once").await;
    assert_eq!(m.disappearing.mode, DisappearingMode::AfterRead);
    assert_eq!(m.expires_at_ms, None, "no timer before it is read");
    let hash = m.hash.clone().unwrap();
    let long = sent.timestamp_ms + 14 * 86_400_000 - 60_000;
    wait_until("the DaR copy on every member", EVENT_TIMEOUT, || async {
        on_every_member(&bob, bob.profile().keys())
            .await
            .iter()
            .all(|mem| mem.iter().any(|s| s.hash == hash && s.expiration > long))
            .then_some(())
    })
    .await;
    let read_at = bob.now().await;
    bob.read_conversation(&a_id, None).await.unwrap();
    let m = bob
        .profile()
        .store()
        .message_by_author_ts(&a_id, &a_id, sent.timestamp_ms)
        .unwrap()
        .unwrap();
    let local = m.expires_at_ms.expect("the timer started on read");
    assert!(local.abs_diff(read_at + 600_000) < 5_000);
    wait_until("the swarm copy to be shortened", EVENT_TIMEOUT, || async {
        on_every_member(&bob, bob.profile().keys())
            .await
            .iter()
            .all(|mem| {
                mem.iter().any(|s| {
                    s.hash == hash
                        && s.expiration <= read_at + 600_000 + 5_000
                        && s.expiration >= read_at
                })
            })
            .then_some(())
    })
    .await;
    // The sender's own sync copy was stored with the timer as TTL (§14.2).
    let own = swarm_contents(&alice, alice.profile().keys()).await;
    let copy = own
        .iter()
        .find(|s| {
            s.opened
                .as_ref()
                .is_some_and(|o| o.sender == a_id && o.timestamp_ms == sent.timestamp_ms)
        })
        .expect("Alice's sync copy");
    assert!(copy.expiration <= sent.timestamp_ms + 600_000 + 1_000);

    alice
        .set_disappearing(&b_id, Disappearing::OFF)
        .await
        .unwrap();
}

/// §14.3: a delete-after-read message that another device of the reader
/// already read (its swarm copy was shortened) arrives as read, with
/// `expires_at` = its swarm expiration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_read_on_one_device_is_read_on_the_other() {
    let accts = Accounts::new(network());
    let bob_seed = AccountSeed::new_umbra(&umbra_crypto::random_bytes::<32>());
    let (alice, bob) = (accts.client("alice"), accts.client_for("bob", &bob_seed));
    let (a_id, b_id) = (alice.account_id(), bob.account_id());
    approved_pair(&alice, &bob).await;
    alice
        .set_disappearing(
            &b_id,
            Disappearing {
                mode: DisappearingMode::AfterRead,
                timer_s: 600,
            },
        )
        .await
        .unwrap();
    let sent = alice.send_text(&b_id, "read on device 1").await.unwrap();
    let m = sync_until_message(&bob, &a_id, "the DaR message", |m| {
        m.timestamp_ms == sent.timestamp_ms
    })
    .await;
    let hash = m.hash.unwrap();
    bob.read_conversation(&a_id, None).await.unwrap();
    let expiration = wait_until("the swarm copy to be shortened", EVENT_TIMEOUT, || async {
        let all = on_every_member(&bob, bob.profile().keys()).await;
        let e: Vec<u64> = all
            .iter()
            .filter_map(|m| m.iter().find(|s| s.hash == hash).map(|s| s.expiration))
            .collect();
        (e.len() == all.len()
            && e.iter()
                .all(|&x| x == e[0] && x < sent.timestamp_ms + 86_400_000))
        .then(|| e[0])
    })
    .await;

    let bob2 = accts.client_for("bob-2", &bob_seed);
    let m2 = sync_until_message(&bob2, &a_id, "device 2 to get it", |m| {
        m.timestamp_ms == sent.timestamp_ms
    })
    .await;
    assert!(
        m2.read_at_ms.is_some(),
        "device 1 read it (its swarm copy was shortened), device 2 shows it unread"
    );
    assert_eq!(m2.expires_at_ms, Some(expiration));
}

// ----- 5. unsend -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsend_and_forged_unsend() {
    let accts = Accounts::new(network());
    let (alice, bob, carol) = (
        accts.client("alice"),
        accts.client("bob"),
        accts.client("carol"),
    );
    let (a_id, b_id) = (alice.account_id(), bob.account_id());
    approved_pair(&alice, &bob).await;

    // The author unsends: Bob's copy is marked deleted, its text scrubbed,
    // and its swarm copies go (Bob's inbox copy and Alice's sync copy).
    let oops = alice.send_text(&b_id, "oops, wrong chat").await.unwrap();
    let m = sync_until_message(&bob, &a_id, "the message to unsend", |m| {
        m.timestamp_ms == oops.timestamp_ms
    })
    .await;
    let bob_hash = m.hash.clone().unwrap();
    let alice_hash = alice
        .profile()
        .store()
        .message_by_author_ts(&b_id, &a_id, oops.timestamp_ms)
        .unwrap()
        .unwrap()
        .hash
        .expect("the sync copy's hash");
    alice.unsend(&b_id, oops.timestamp_ms).await.unwrap();
    let mine = alice
        .profile()
        .store()
        .message_by_author_ts(&b_id, &a_id, oops.timestamp_ms)
        .unwrap()
        .unwrap();
    assert!(mine.deleted);
    let unsent = Cell::new(0);
    let m = wait_until("Bob's copy to be deleted", EVENT_TIMEOUT, || async {
        unsent.set(unsent.get() + bob.sync().await.unwrap().unsent);
        bob.profile()
            .store()
            .message_by_author_ts(&a_id, &a_id, oops.timestamp_ms)
            .unwrap()
            .filter(|m| m.deleted)
    })
    .await;
    assert_eq!(unsent.get(), 1);
    assert_eq!(m.display_text(), "This message was deleted");
    assert!(m.text.is_empty(), "the text is scrubbed");
    wait_until("Bob's swarm copy to go", EVENT_TIMEOUT, || async {
        gone_from_swarm(&bob, bob.profile().keys(), &bob_hash)
            .await
            .then_some(())
    })
    .await;
    wait_until("Alice's sync copy to go", EVENT_TIMEOUT, || async {
        gone_from_swarm(&alice, alice.profile().keys(), &alice_hash)
            .await
            .then_some(())
    })
    .await;

    // Only the author can unsend: Carol forges requests for Alice's message.
    let keep = alice.send_text(&b_id, "keep me").await.unwrap();
    sync_until_message(&bob, &a_id, "the message to keep", |m| {
        m.timestamp_ms == keep.timestamp_ms
    })
    .await;
    let carol_keys = carol.profile().keys();
    let mut forged = Vec::new();
    for author in [a_id, carol.account_id()] {
        let content = Content {
            unsend_request: Some(UnsendRequest {
                timestamp: keep.timestamp_ms,
                author: author.to_string(),
            }),
            ..Content::default()
        };
        let t = carol.now().await;
        forged.push(store_raw(&carol, carol_keys, &b_id, &content, t).await);
        // A forged "sync copy" pointing at Alice's conversation.
        let content = Content {
            unsend_request: Some(UnsendRequest {
                timestamp: keep.timestamp_ms,
                author: author.to_string(),
            }),
            data_message: Some(DataMessage {
                sync_target: Some(a_id.to_string()),
                ..DataMessage::default()
            }),
            ..Content::default()
        };
        let t = carol.now().await;
        forged.push(store_raw(&carol, carol_keys, &b_id, &content, t).await);
    }
    let unsent = Cell::new(0);
    wait_until("Bob to process the forgeries", EVENT_TIMEOUT, || async {
        unsent.set(unsent.get() + bob.sync().await.unwrap().unsent);
        let store = bob.profile().store();
        forged
            .iter()
            .all(|h| store.is_seen(h).unwrap())
            .then_some(())
    })
    .await;
    assert_eq!(unsent.get(), 0);
    let kept = bob
        .profile()
        .store()
        .message_by_author_ts(&a_id, &a_id, keep.timestamp_ms)
        .unwrap()
        .unwrap();
    assert!(!kept.deleted);
    assert_eq!(kept.display_text(), "keep me");

    // Unsending a message that is not ours is refused locally.
    assert!(matches!(
        bob.unsend(&a_id, keep.timestamp_ms).await,
        Err(ClientError::Invalid(_))
    ));
}

/// A message whose signed time no store can hold (2^63 ms and beyond) is
/// dropped, and the messages after it still arrive: it must not stop the
/// recipient's sync (it used to fail every sync at the same page for as
/// long as the swarm kept it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_with_an_impossible_time_does_not_stop_sync() {
    let accts = Accounts::new(network());
    let alice = accts.client("alice");
    let bob = accts.client("bob");
    let (a_id, b_id) = (alice.account_id(), bob.account_id());

    let content = Content {
        data_message: Some(DataMessage {
            body: Some("from the far future".into()),
            ..DataMessage::default()
        }),
        ..Content::default()
    };
    let mut hostile = Vec::new();
    for signed_ms in [1u64 << 63, u64::MAX] {
        let blob = seal_content(
            alice.profile().keys(),
            &b_id,
            &content,
            signed_ms,
            umbra_crypto::random_bytes::<32>(),
        )
        .unwrap();
        let t = alice.now().await;
        hostile.push(store_blob(&alice, &b_id, &blob, t, 3_600_000).await);
    }
    let sent = alice
        .send_text(&b_id, "after the impossible ones")
        .await
        .unwrap();

    let dropped = Cell::new(0);
    let after = wait_until("Bob's sync to get past them", EVENT_TIMEOUT, || async {
        dropped.set(dropped.get() + bob.sync().await.unwrap().undecryptable);
        bob.profile()
            .store()
            .messages(&a_id, None)
            .unwrap()
            .into_iter()
            .find(|m| m.timestamp_ms == sent.timestamp_ms)
    })
    .await;
    assert_eq!(after.text, "after the impossible ones");
    let store = bob.profile().store();
    assert!(hostile.iter().all(|h| store.is_seen(h).unwrap()));
    assert_eq!(dropped.get(), 2);
    assert_eq!(store.messages(&a_id, None).unwrap().len(), 1);
}

// ----- 6. a second device -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_device_from_the_same_seed() {
    let accts = Accounts::new(network());
    let seed = AccountSeed::new_umbra(&umbra_crypto::random_bytes::<32>());
    let alice = accts.client_for("alice", &seed);
    let bob = accts.client("bob");
    let (a_id, b_id) = (alice.account_id(), bob.account_id());

    alice
        .send_text(&b_id, "from device 1, early")
        .await
        .unwrap();
    sync_until_message(&bob, &a_id, "Alice's first message", |m| {
        m.text == "from device 1, early"
    })
    .await;
    bob.send_text(&a_id, "reply from bob").await.unwrap();

    // A second device: the same seed restored in another profile.
    let restored = AccountSeed::from_phrase(&seed.phrase()).unwrap();
    let alice2 = accts.client_for("alice-2", &restored);
    assert_eq!(alice2.account_id(), a_id);
    let check = |c: &Client, text: &str, dir: Direction| {
        c.profile()
            .store()
            .messages(&b_id, None)
            .unwrap()
            .into_iter()
            .find(|m| m.text == text)
            .is_some_and(|m| m.direction == dir && m.peer == b_id)
    };
    wait_until("device 2 to get the history", EVENT_TIMEOUT, || async {
        alice2.sync().await.unwrap();
        (check(&alice2, "from device 1, early", Direction::Out)
            && check(&alice2, "reply from bob", Direction::In))
        .then_some(())
    })
    .await;
    let out = alice2
        .profile()
        .store()
        .messages(&b_id, None)
        .unwrap()
        .into_iter()
        .find(|m| m.text == "from device 1, early")
        .unwrap();
    assert_eq!(out.author, a_id);
    assert_eq!(out.status, MessageStatus::Sent);
    let conv = alice2
        .profile()
        .store()
        .conversation(&b_id)
        .unwrap()
        .unwrap();
    assert!(conv.approved_by_us && conv.approved_us && !conv.is_request);
    assert!(
        alice2
            .profile()
            .store()
            .conversation(&a_id)
            .unwrap()
            .is_none(),
        "sync copies are not Note-to-Self messages"
    );

    // Note-to-Self: a message to our own account, on the other device.
    alice.send_text(&a_id, "note to self").await.unwrap();
    wait_until("device 2 to get the note", EVENT_TIMEOUT, || async {
        alice2.sync().await.unwrap();
        alice2
            .profile()
            .store()
            .messages(&a_id, None)
            .unwrap()
            .into_iter()
            .find(|m| m.text == "note to self")
            .filter(|m| m.direction == Direction::Out && m.peer == a_id)
    })
    .await;
    alice.sync().await.unwrap();
    assert_eq!(count_text(&alice, &a_id, "note to self"), 1);

    // New traffic reaches both devices.
    alice
        .send_text(&b_id, "from device 1, later")
        .await
        .unwrap();
    bob.send_text(&a_id, "to both devices").await.unwrap();
    wait_until(
        "device 2 to get the new messages",
        EVENT_TIMEOUT,
        || async {
            alice2.sync().await.unwrap();
            (check(&alice2, "from device 1, later", Direction::Out)
                && check(&alice2, "to both devices", Direction::In))
            .then_some(())
        },
    )
    .await;
    wait_until("device 1 to get Bob's message", EVENT_TIMEOUT, || async {
        alice.sync().await.unwrap();
        check(&alice, "to both devices", Direction::In).then_some(())
    })
    .await;
    // Device 1 did not get a duplicate of its own message from the sync copy.
    assert_eq!(count_text(&alice, &b_id, "from device 1, later"), 1);

    // Device 2 sends; device 1 sees it as its own outgoing message.
    alice2.send_text(&b_id, "from device 2").await.unwrap();
    wait_until(
        "device 1 to get device 2's message",
        EVENT_TIMEOUT,
        || async {
            alice.sync().await.unwrap();
            check(&alice, "from device 2", Direction::Out).then_some(())
        },
    )
    .await;

    // At rest, while all three clients are open (so the SQLite WAL files
    // exist and hold the latest writes): no file of any profile contains a
    // message text, the phrase or the seed.
    let phrase = seed.phrase();
    let mut secrets: Vec<&[u8]> = [
        "from device 1, early",
        "reply from bob",
        "from device 1, later",
        "to both devices",
        "from device 2",
    ]
    .iter()
    .map(|t| t.as_bytes())
    .collect();
    secrets.push(phrase.as_bytes());
    secrets.push(seed.ed_seed());
    let seed_hex = hex::encode(seed.ed_seed());
    secrets.push(seed_hex.as_bytes());
    let files = all_files(accts.dir.path());
    let wal_bytes: usize = files
        .iter()
        .filter(|(p, _)| p.to_string_lossy().ends_with("-wal"))
        .map(|(_, b)| b.len())
        .sum();
    assert!(wal_bytes > 0, "the WAL files were checked too: {files:?}");
    for (path, bytes) in &files {
        for needle in &secrets {
            assert!(
                !contains(bytes, needle),
                "{} holds a secret in the clear",
                path.display()
            );
        }
    }
}

// ----- 7. de-duplication -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dedup_sync_twice_and_double_delivery() {
    let accts = Accounts::new(network());
    let (alice, bob) = (accts.client("alice"), accts.client("bob"));
    let (a_id, b_id) = (alice.account_id(), bob.account_id());

    // Sync twice: no duplicates.
    alice.send_text(&b_id, "once").await.unwrap();
    sync_until_message(&bob, &a_id, "the message", |m| m.text == "once").await;
    let n = bob.profile().store().messages(&a_id, None).unwrap().len();
    for _ in 0..2 {
        let rep = bob.sync().await.unwrap();
        assert_eq!(rep.new_messages, 0, "{rep:?}");
        assert_eq!(rep.new_requests, 0, "{rep:?}");
    }
    assert_eq!(
        bob.profile().store().messages(&a_id, None).unwrap().len(),
        n
    );
    assert_eq!(count_text(&bob, &a_id, "once"), 1);
    // The sender's own sync copy did not duplicate its message either.
    alice.sync().await.unwrap();
    alice.sync().await.unwrap();
    assert_eq!(count_text(&alice, &b_id, "once"), 1);

    // The same message (same sender and T) delivered twice, as two
    // different blobs (fresh ephemeral keys, so different swarm hashes):
    // stored once.
    let t = alice.now().await;
    let content = Content {
        data_message: Some(DataMessage {
            body: Some("twice".into()),
            ..DataMessage::default()
        }),
        ..Content::default()
    };
    let h1 = store_raw(&alice, alice.profile().keys(), &b_id, &content, t).await;
    let h2 = store_raw(&alice, alice.profile().keys(), &b_id, &content, t).await;
    assert_ne!(h1, h2);
    let new = Cell::new(0);
    wait_until("Bob to process both copies", EVENT_TIMEOUT, || async {
        new.set(new.get() + bob.sync().await.unwrap().new_messages);
        let store = bob.profile().store();
        [&h1, &h2]
            .iter()
            .all(|h| store.is_seen(h).unwrap())
            .then_some(())
    })
    .await;
    assert_eq!(new.get(), 1);
    assert_eq!(count_text(&bob, &a_id, "twice"), 1);
}
