//! Issue 8 in the TUI: the app's group decisions carried out by the real
//! network side ([`umbra_tui::net::Net`]) against an in-process devnet.
//! Alice creates a group with `/group create`; Bob's app lists the invite
//! as a request named after the group, `/accept` joins it, Enter in the
//! group conversation sends with the group path, and Alice's store holds
//! the message with Bob as its author.
//!
//! Waits poll with a deadline, never fixed sleeps.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "integration test: a panic is a test failure"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use tokio::sync::mpsc::{self, UnboundedReceiver};
use umbra_client::client::Client;
use umbra_client::profile::Profile;
use umbra_devnet::{Devnet, DevnetOptions};
use umbra_proto::identity::AccountId;
use umbra_proto::mnemonic::AccountSeed;
use umbra_proto::path::PathConfig;
use umbra_tui::app::{App, Cmd, GroupOp, NetEvent, Screen};
use umbra_tui::net::Net;

const TIMEOUT: Duration = Duration::from_secs(45);

fn client(devnet: &Devnet, dir: &std::path::Path, name: &str, seed: u8) -> Arc<Client> {
    let profile =
        Profile::create(&dir.join(name), &AccountSeed::new_umbra(&[seed; 32]), None).unwrap();
    Arc::new(
        Client::open(
            profile,
            devnet.network().clone(),
            PathConfig::default().with_min_usable_nodes(4),
        )
        .unwrap(),
    )
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn typed(app: &mut App, s: &str) -> Vec<Cmd> {
    let mut cmds = Vec::new();
    for c in s.chars() {
        cmds.extend(app.on_key(key(KeyCode::Char(c))));
    }
    cmds.extend(app.on_key(key(KeyCode::Enter)));
    cmds
}

/// Runs `cmds` to completion (Typing, MarkRead and Load included) and
/// feeds every event back into the app, following the commands they ask
/// for; returns the events seen.
async fn run(
    app: &mut App,
    net: &Net,
    rx: &mut UnboundedReceiver<NetEvent>,
    cmds: Vec<Cmd>,
) -> Vec<NetEvent> {
    let mut queue = cmds;
    let mut seen = Vec::new();
    while !queue.is_empty() {
        for c in std::mem::take(&mut queue) {
            net.execute(c).await;
        }
        while let Ok(ev) = rx.try_recv() {
            seen.push(ev.clone());
            queue.extend(
                app.on_event(ev)
                    .into_iter()
                    .filter(|c| matches!(c, Cmd::Load { .. } | Cmd::MarkRead(_))),
            );
        }
    }
    seen
}

fn done_ok(events: &[NetEvent], what: &str) -> bool {
    events
        .iter()
        .any(|e| matches!(e, NetEvent::Done { what: w, result } if w == what && result.is_ok()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_is_created_joined_and_used_from_the_tui() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::up(DevnetOptions::in_process(6, dir.path().join("net")))
        .await
        .expect("devnet");
    let alice = client(&devnet, dir.path(), "alice", 7);
    let bob = client(&devnet, dir.path(), "bob", 8);
    for c in [&alice, &bob] {
        c.network().ensure_ready(TIMEOUT).await.unwrap();
    }
    let t0 = 1_700_000_000_000;

    // Alice: /group create from her Note to Self conversation.
    let (atx, mut arx) = mpsc::unbounded_channel();
    let anet = Net::new(Arc::clone(&alice), atx);
    let (mut aapp, _) = App::new(alice.account_id(), t0);
    aapp.on_key(key(KeyCode::Char('n')));
    for c in alice.account_id().to_string().chars() {
        aapp.on_key(key(KeyCode::Char(c)));
    }
    let first = aapp.on_key(key(KeyCode::Enter));
    run(&mut aapp, &anet, &mut arx, first).await;
    assert_eq!(aapp.screen, Screen::Conversation);
    let cmds = typed(
        &mut aapp,
        &format!("/group create Team {}", bob.account_id()),
    );
    assert!(
        matches!(&cmds[..], [Cmd::Group(GroupOp::Create { name, members })]
            if name == "Team" && members == &[bob.account_id()]),
        "{cmds:?}"
    );
    let events = run(&mut aapp, &anet, &mut arx, cmds).await;
    assert!(done_ok(&events, "group created"), "{events:?}");
    let groups = alice.groups().unwrap();
    assert_eq!(groups.len(), 1);
    let g: AccountId = groups[0].id;
    assert_eq!(aapp.name_of(&g), "# Team");

    // Bob: polls until the invite arrives, then sees it as a request named "# Team".
    let (btx, mut brx) = mpsc::unbounded_channel();
    let bnet = Net::new(Arc::clone(&bob), btx);
    let (mut bapp, _) = App::new(bob.account_id(), t0);
    let deadline = Instant::now() + TIMEOUT;
    loop {
        bob.sync().await.unwrap();
        run(&mut bapp, &bnet, &mut brx, vec![Cmd::Load { open: None }]).await;
        if bapp.requests.iter().any(|c| c.peer == g) {
            break;
        }
        assert!(Instant::now() < deadline, "the invite did not arrive");
    }
    assert_eq!(bapp.name_of(&g), "# Team");
    bapp.selected =
        bapp.conversations.len() + bapp.requests.iter().position(|c| c.peer == g).unwrap();
    let cmds = bapp.on_key(key(KeyCode::Enter));
    run(&mut bapp, &bnet, &mut brx, cmds).await;
    assert_eq!(bapp.open, Some(g));

    // /accept joins the group.
    let cmds = typed(&mut bapp, "/accept");
    assert_eq!(cmds, vec![Cmd::AcceptGroup(g)]);
    let events = run(&mut bapp, &bnet, &mut brx, cmds).await;
    assert!(done_ok(&events, "joined the group"), "{events:?}");
    assert!(bob.group_info(&g).unwrap().members.len() >= 2);
    assert!(
        bapp.conversations.iter().any(|c| c.peer == g),
        "no longer a request"
    );

    // Enter in the group sends with the group path.
    let cmds = typed(&mut bapp, "hello team");
    assert!(
        matches!(&cmds[..], [Cmd::SendGroup { group, text, .. }] if *group == g && text == "hello team"),
        "{cmds:?}"
    );
    let events = run(&mut bapp, &bnet, &mut brx, cmds).await;
    assert!(
        events
            .iter()
            .any(|e| matches!(e, NetEvent::SendDone { result: Ok(_), .. })),
        "{events:?}"
    );

    // Alice receives it, authored by Bob.
    let deadline = Instant::now() + TIMEOUT;
    loop {
        alice.sync().await.unwrap();
        let got = alice.profile().store().messages(&g, None).unwrap();
        if let Some(m) = got.iter().find(|m| m.text == "hello team") {
            assert_eq!(m.author, bob.account_id());
            break;
        }
        assert!(Instant::now() < deadline, "alice did not get the message");
    }
}
