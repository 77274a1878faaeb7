//! Issue 7 acceptance: "the UI stays responsive (a key press is drawn
//! within 50 ms) while a guard node is unreachable — shown by a test with a
//! stopped node".
//!
//! Runs the real loop pieces ([`umbra_tui::step`], [`umbra_tui::dispatch`]
//! and [`umbra_tui::ui::draw`] on ratatui's `TestBackend`) against an
//! in-process devnet whose guard nodes are stopped after the client built
//! its paths. A message is sent (it stays `sending` while the client
//! struggles with the dead guards) and every key press typed meanwhile must
//! be applied and drawn within 50 ms. If the loop awaited the network (for
//! example if `dispatch` ran the send instead of spawning it) the first
//! key would take as long as the send and the test would fail.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "integration test: a panic is a test failure"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tokio::sync::mpsc;
use umbra_client::client::Client;
use umbra_client::profile::Profile;
use umbra_devnet::{Devnet, DevnetOptions};
use umbra_proto::identity::AccountKeys;
use umbra_proto::mnemonic::AccountSeed;
use umbra_proto::path::PathConfig;
use umbra_tui::app::{App, Cmd, Screen};
use umbra_tui::net::Net;
use umbra_tui::{Input, dispatch, step, ui};

/// The bound on drawing a key press.
const KEY_DRAWN_MS: u128 = 50;

fn key(c: char) -> Input {
    Input::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}

fn screen_text(t: &Terminal<TestBackend>) -> String {
    let buf = t.backend().buffer();
    let mut s = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            s.push_str(buf[(x, y)].symbol());
        }
        s.push('\n');
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_drawn_within_50_ms_while_the_guards_are_down() {
    let dir = tempfile::tempdir().unwrap();
    let mut devnet = Devnet::up(DevnetOptions::in_process(6, dir.path().join("net")))
        .await
        .expect("devnet");
    let profile = Profile::create(
        &dir.path().join("alice"),
        &AccountSeed::new_umbra(&[7u8; 32]),
        None,
    )
    .unwrap();
    let client = Client::open(
        profile,
        devnet.network().clone(),
        PathConfig::default().with_min_usable_nodes(4),
    )
    .unwrap();
    // Ready: paths built, the swarm reachable.
    client.sync().await.expect("first sync");
    let paths = client.network().paths().await;
    assert!(!paths.is_empty(), "the client built onion paths");

    // Stop every node that is a guard of one of the client's paths.
    let guard_ports: Vec<u16> = paths.iter().map(|p| p[0].https_port).collect();
    let mut stopped = 0;
    for i in 0..devnet.len() {
        if devnet
            .handle(i)
            .is_some_and(|h| guard_ports.contains(&h.addr.port()))
        {
            devnet.stop_node(i).await;
            stopped += 1;
        }
    }
    assert!(stopped > 0, "a guard node was stopped");

    // The UI, as `run_async` builds it, on a test terminal.
    let client = Arc::new(client);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let net = Net::new(Arc::clone(&client), tx);
    let (mut app, first) = App::new(client.account_id(), 0);
    app.settings = net.settings();
    dispatch(&net, first);
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    terminal.draw(|f| ui::draw(f, &app)).unwrap();

    // Open a conversation with Bob and send him a message.
    let bob = AccountKeys::from_seed(&[9u8; 32]).account_id();
    let typed = |app: &mut App, input: Input| {
        let cmds = step(app, input);
        dispatch(&net, cmds.clone());
        cmds
    };
    typed(&mut app, key('n'));
    typed(&mut app, Input::Paste(bob.to_string()));
    typed(
        &mut app,
        Input::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)),
    );
    assert_eq!(app.screen, Screen::Conversation);
    for c in "hello".chars() {
        typed(&mut app, key(c));
    }
    let sent_at = Instant::now();
    let cmds = typed(
        &mut app,
        Input::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)),
    );
    terminal.draw(|f| ui::draw(f, &app)).unwrap();
    assert!(
        sent_at.elapsed().as_millis() < KEY_DRAWN_MS,
        "Enter (send) took {:?} to be drawn",
        sent_at.elapsed()
    );
    assert!(
        screen_text(&terminal).contains("sending"),
        "{}",
        screen_text(&terminal)
    );
    assert!(cmds.iter().any(|c| matches!(c, Cmd::Send { .. })));
    assert_eq!(app.pending.len(), 1, "shown as sending at once");

    // Type while the send is pending; network events are applied as the
    // loop would (and timed the same way).
    let mut keys_while_pending = 0;
    let mut worst = Duration::ZERO;
    let text: Vec<char> = "the network is slow but the screen is not "
        .chars()
        .collect();
    for (n, c) in text.iter().cycle().take(60).enumerate() {
        while let Ok(ev) = rx.try_recv() {
            let t = Instant::now();
            let bell = dispatch(&net, step(&mut app, Input::Net(ev)));
            terminal.draw(|f| ui::draw(f, &app)).unwrap();
            assert!(!bell);
            assert!(
                t.elapsed().as_millis() < KEY_DRAWN_MS,
                "a network event took {:?}",
                t.elapsed()
            );
        }
        let pending = !app.pending.is_empty();
        let t = Instant::now();
        dispatch(&net, step(&mut app, key(*c)));
        terminal.draw(|f| ui::draw(f, &app)).unwrap();
        let took = t.elapsed();
        worst = worst.max(took);
        assert!(
            took.as_millis() < KEY_DRAWN_MS,
            "key {n} took {took:?} to be drawn (send pending: {pending})"
        );
        // The key is on screen: the compose line ends with it.
        let shown: String = app
            .compose
            .chars()
            .rev()
            .take(8)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        assert!(
            screen_text(&terminal).contains(shown.trim()),
            "key {n} is drawn:\n{}",
            screen_text(&terminal)
        );
        if pending {
            keys_while_pending += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "{keys_while_pending} keys drawn while the send was pending; worst {worst:?}; \
         send pending for {:?} so far ({stopped} guard node(s) stopped)",
        sent_at.elapsed()
    );
    assert!(
        keys_while_pending >= 10,
        "the send was still pending while keys were typed (it finished after {keys_while_pending} keys)"
    );
}
