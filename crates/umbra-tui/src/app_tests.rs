//! State-machine tests: key sequences and network events in, state and
//! commands out.

use super::*;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use umbra_client::store::{MessageId, MessageStatus};

pub(crate) fn id(n: u8) -> AccountId {
    let hex = format!("05{}", format!("{n:02x}").repeat(32));
    hex.parse().expect("test account ID")
}

pub(crate) fn conv(peer: AccountId, unread: u64, is_request: bool) -> Conversation {
    Conversation {
        peer,
        approved_by_us: !is_request,
        approved_us: true,
        blocked: false,
        disappearing: Disappearing::OFF,
        last_activity_ms: 1_700_000_000_000,
        unread,
        is_request,
        contact_name: None,
    }
}

pub(crate) fn msg(
    peer: AccountId,
    author: AccountId,
    direction: Direction,
    ts: u64,
    text: &str,
    status: MessageStatus,
) -> Message {
    Message {
        id: MessageId(ts as i64),
        peer,
        direction,
        author,
        timestamp_ms: ts,
        received_at_ms: ts,
        text: text.to_string(),
        status,
        hash: None,
        disappearing: Disappearing::OFF,
        expiration_start_ms: None,
        expires_at_ms: None,
        read_at_ms: None,
        deleted: false,
    }
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn typed(app: &mut App, s: &str) -> Vec<Cmd> {
    let mut cmds = Vec::new();
    for c in s.chars() {
        cmds.extend(app.on_key(key(KeyCode::Char(c))));
    }
    cmds
}

const T0: u64 = 1_700_000_000_000;

/// An app with two conversations (Bob with 2 unread, Carol) and one request (Dave).
pub(crate) fn app_with_list() -> App {
    let (mut app, _) = App::new(id(1), T0);
    app.on_event(NetEvent::Synced(Ok(SyncSummary::default())));
    app.on_event(NetEvent::Snapshot {
        conversations: vec![
            conv(id(2), 2, false),
            conv(id(4), 1, true),
            conv(id(3), 0, false),
        ],
        open: None,
        messages: vec![],
    });
    app
}

fn open_bob() -> App {
    let mut app = app_with_list();
    let cmds = app.on_key(key(KeyCode::Enter));
    assert_eq!(
        cmds,
        vec![Cmd::Load { open: Some(id(2)) }, Cmd::MarkRead(id(2))]
    );
    app
}

#[test]
fn start_loads_and_polls() {
    let (app, cmds) = App::new(id(1), T0);
    assert_eq!(cmds, vec![Cmd::Load { open: None }, Cmd::Sync]);
    assert_eq!(app.screen, Screen::List);
}

#[test]
fn snapshot_puts_requests_apart_and_selection_walks_both() {
    let mut app = app_with_list();
    assert_eq!(app.conversations.len(), 2);
    assert_eq!(app.requests.len(), 1);
    assert_eq!(app.requests[0].peer, id(4));
    assert_eq!(app.selected_peer(), Some(id(2)));
    app.on_key(key(KeyCode::Down));
    assert_eq!(app.selected_peer(), Some(id(3)));
    app.on_key(key(KeyCode::Char('j')));
    assert_eq!(app.selected_peer(), Some(id(4)), "requests follow");
    app.on_key(key(KeyCode::Down));
    assert_eq!(app.selected_peer(), Some(id(4)), "stops at the end");
    app.on_key(key(KeyCode::Up));
    app.on_key(key(KeyCode::Char('k')));
    app.on_key(key(KeyCode::Up));
    assert_eq!(app.selected, 0);
}

#[test]
fn selection_follows_its_conversation_across_reloads() {
    let mut app = app_with_list();
    app.on_key(key(KeyCode::Down)); // Carol
    app.on_event(NetEvent::Snapshot {
        conversations: vec![conv(id(3), 1, false), conv(id(2), 2, false)],
        open: None,
        messages: vec![],
    });
    assert_eq!(app.selected_peer(), Some(id(3)));
}

#[test]
fn enter_opens_and_marks_read_and_esc_returns() {
    let mut app = open_bob();
    assert_eq!(app.screen, Screen::Conversation);
    assert_eq!(app.open, Some(id(2)));
    let cmds = app.on_key(key(KeyCode::Esc));
    assert_eq!(cmds, vec![Cmd::Load { open: None }]);
    assert_eq!(app.screen, Screen::List);
    assert_eq!(app.open, None);
}

#[test]
fn send_shows_sending_at_once_and_settles_on_result() {
    let mut app = open_bob();
    assert!(
        typed(&mut app, "hi").is_empty(),
        "typing indicators are off"
    );
    let cmds = app.on_key(key(KeyCode::Enter));
    assert_eq!(
        cmds,
        vec![Cmd::Send {
            peer: id(2),
            text: "hi".into(),
            local_id: 1
        }]
    );
    assert!(app.compose.is_empty());
    assert_eq!(app.visible_pending().len(), 1);
    // A reload showing the stored `sending` row hides the pending copy.
    app.on_event(NetEvent::Snapshot {
        conversations: vec![conv(id(2), 0, false)],
        open: Some(id(2)),
        messages: vec![msg(
            id(2),
            id(1),
            Direction::Out,
            T0,
            "hi",
            MessageStatus::Sending,
        )],
    });
    assert!(app.visible_pending().is_empty());
    let cmds = app.on_event(NetEvent::SendDone {
        local_id: 1,
        result: Ok(T0),
    });
    assert_eq!(cmds, vec![Cmd::Load { open: Some(id(2)) }]);
    assert!(app.pending.is_empty());
    assert_eq!(app.status, None);
}

#[test]
fn failed_send_says_so_and_retry_resends() {
    let mut app = open_bob();
    typed(&mut app, "hello");
    app.on_key(key(KeyCode::Enter));
    app.on_event(NetEvent::SendDone {
        local_id: 1,
        result: Err("no path".into()),
    });
    assert!(app.status.as_deref().is_some_and(|s| s.contains("no path")));
    app.on_event(NetEvent::Snapshot {
        conversations: vec![conv(id(2), 0, false)],
        open: Some(id(2)),
        messages: vec![msg(
            id(2),
            id(1),
            Direction::Out,
            T0,
            "hello",
            MessageStatus::Failed,
        )],
    });
    typed(&mut app, "/retry");
    let cmds = app.on_key(key(KeyCode::Enter));
    assert_eq!(
        cmds,
        vec![Cmd::Send {
            peer: id(2),
            text: "hello".into(),
            local_id: 2
        }]
    );
}

#[test]
fn empty_enter_sends_nothing() {
    let mut app = open_bob();
    typed(&mut app, "   ");
    assert!(app.on_key(key(KeyCode::Enter)).is_empty());
}

#[test]
fn alt_enter_adds_a_line_and_backspace_edits() {
    let mut app = open_bob();
    typed(&mut app, "a");
    let cmds = app.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::ALT));
    assert!(cmds.is_empty());
    typed(&mut app, "bc");
    app.on_key(key(KeyCode::Backspace));
    assert_eq!(app.compose, "a\nb");
    let cmds = app.on_key(key(KeyCode::Enter));
    assert!(matches!(&cmds[..], [Cmd::Send { text, .. }] if text == "a\nb"));
}

#[test]
fn letters_in_a_conversation_are_text_not_shortcuts() {
    let mut app = open_bob();
    typed(&mut app, "qs?a");
    assert!(!app.quit);
    assert_eq!(app.screen, Screen::Conversation);
    assert_eq!(app.compose, "qs?a");
    app.on_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    assert!(app.quit);
}

#[test]
fn slash_commands_become_commands() {
    let mut app = open_bob();
    typed(&mut app, "/accept");
    assert_eq!(app.on_key(key(KeyCode::Enter)), vec![Cmd::Accept(id(2))]);
    typed(&mut app, "/unsend 1700000000123");
    assert_eq!(
        app.on_key(key(KeyCode::Enter)),
        vec![Cmd::Unsend {
            peer: id(2),
            timestamp_ms: 1_700_000_000_123
        }]
    );
    typed(&mut app, "/disappearing after-send 60");
    assert_eq!(
        app.on_key(key(KeyCode::Enter)),
        vec![Cmd::SetDisappearing {
            peer: id(2),
            setting: Disappearing {
                mode: DisappearingMode::AfterSend,
                timer_s: 60
            }
        }]
    );
    typed(&mut app, "/disappearing off");
    assert_eq!(
        app.on_key(key(KeyCode::Enter)),
        vec![Cmd::SetDisappearing {
            peer: id(2),
            setting: Disappearing::OFF
        }]
    );
    assert_eq!(app.screen, Screen::Conversation);
    typed(&mut app, "/block");
    let cmds = app.on_key(key(KeyCode::Enter));
    assert_eq!(cmds, vec![Cmd::Block(id(2)), Cmd::Load { open: None }]);
    assert_eq!(app.screen, Screen::List, "a blocked conversation closes");
}

#[test]
fn open_attachment_command() {
    let mut app = open_bob();
    typed(&mut app, "/open 1700000000123:1");
    assert_eq!(
        app.on_key(key(KeyCode::Enter)),
        vec![Cmd::OpenAttachment {
            timestamp_ms: 1_700_000_000_123,
            index: 1
        }]
    );
    typed(&mut app, "/open 1700000000123");
    assert_eq!(
        app.on_key(key(KeyCode::Enter)),
        vec![Cmd::OpenAttachment {
            timestamp_ms: 1_700_000_000_123,
            index: 0
        }]
    );
    for bad in ["/open", "/open x", "/open 17:y"] {
        typed(&mut app, bad);
        assert!(app.on_key(key(KeyCode::Enter)).is_empty(), "{bad}");
        assert!(
            app.status.as_deref().unwrap_or("").contains("usage"),
            "{bad}"
        );
    }
}

#[test]
fn bad_slash_commands_explain_and_send_nothing() {
    let mut app = open_bob();
    for bad in [
        "/unsend",
        "/unsend yesterday",
        "/disappearing after-send 5",
        "/disappearing sometimes",
        "/frobnicate",
        "/attach",
    ] {
        typed(&mut app, bad);
        assert!(app.on_key(key(KeyCode::Enter)).is_empty(), "{bad}");
        assert!(app.status.is_some(), "{bad} explains");
        assert!(app.compose.is_empty());
    }
    assert_eq!(
        parse_disappearing(&["after-send", "5"]),
        Err("the timer must be between 10 s and 14 days".to_string())
    );
}

#[test]
fn settings_toggle_sends_set_setting() {
    let mut app = app_with_list();
    app.on_key(key(KeyCode::Char('s')));
    assert_eq!(app.screen, Screen::Settings);
    app.on_key(key(KeyCode::Down));
    let cmds = app.on_key(key(KeyCode::Char(' ')));
    assert_eq!(
        cmds,
        vec![Cmd::SetSetting {
            setting: Setting::TypingIndicators,
            on: true
        }]
    );
    assert!(app.settings.typing_indicators);
    // The store's answer wins.
    app.on_event(NetEvent::Settings(Settings::default()));
    assert!(!app.settings.typing_indicators);
    app.on_key(key(KeyCode::Esc));
    assert_eq!(app.screen, Screen::List);
}

#[test]
fn new_conversation_by_pasting_an_id() {
    let mut app = app_with_list();
    app.on_key(key(KeyCode::Char('n')));
    assert_eq!(app.screen, Screen::NewConversation);
    app.on_paste(&format!(" {}\n", id(9)));
    let cmds = app.on_key(key(KeyCode::Enter));
    assert_eq!(
        cmds,
        vec![Cmd::Load { open: Some(id(9)) }, Cmd::MarkRead(id(9))]
    );
    assert_eq!(app.screen, Screen::Conversation);
    assert_eq!(app.open, Some(id(9)));
}

#[test]
fn new_conversation_refuses_bad_ids() {
    let mut app = app_with_list();
    app.on_key(key(KeyCode::Char('n')));
    typed(&mut app, "05abc");
    assert!(app.on_key(key(KeyCode::Enter)).is_empty());
    assert_eq!(app.screen, Screen::NewConversation);
    assert!(app.status.is_some());
    // A group (03) ID is not a conversation partner.
    app.new_input = format!("03{}", "11".repeat(32));
    assert!(app.on_key(key(KeyCode::Enter)).is_empty());
    app.on_key(key(KeyCode::Esc));
    assert_eq!(app.screen, Screen::List);
}

#[test]
fn polling_is_fast_in_a_conversation_and_backs_off_on_errors() {
    let mut app = app_with_list();
    // Synced at T0 on the list: next poll after the idle interval.
    assert!(app.on_tick(T0 + POLL_IDLE_MS - 1).is_empty());
    assert_eq!(app.on_tick(T0 + POLL_IDLE_MS), vec![Cmd::Sync]);
    assert!(
        app.on_tick(T0 + POLL_IDLE_MS + 1).is_empty(),
        "one at a time"
    );
    let t1 = T0 + POLL_IDLE_MS + 1;
    app.on_key(key(KeyCode::Enter));
    app.on_event(NetEvent::Synced(Ok(SyncSummary::default())));
    assert_eq!(app.poll_interval_ms(), POLL_ACTIVE_MS);
    assert!(app.on_tick(t1 + POLL_ACTIVE_MS - 1).is_empty());
    assert_eq!(app.on_tick(t1 + POLL_ACTIVE_MS), vec![Cmd::Sync]);
    let t2 = t1 + POLL_ACTIVE_MS;
    app.on_event(NetEvent::Synced(Err("guard unreachable".into())));
    assert!(app.offline.is_some());
    assert!(app.on_tick(t2 + POLL_ACTIVE_MS).is_empty());
    assert_eq!(app.on_tick(t2 + POLL_ERROR_MS), vec![Cmd::Sync]);
    // New messages reload the store.
    let cmds = app.on_event(NetEvent::Synced(Ok(SyncSummary {
        new_messages: 1,
        ..Default::default()
    })));
    assert_eq!(cmds, vec![Cmd::Load { open: Some(id(2)) }]);
    assert!(app.offline.is_none());
}

#[test]
fn r_polls_now() {
    let mut app = app_with_list();
    assert_eq!(app.on_key(key(KeyCode::Char('r'))), vec![Cmd::Sync]);
}

#[test]
fn typing_indicator_timing() {
    let mut app = open_bob();
    app.settings.typing_indicators = true;
    let started = Cmd::Typing {
        peer: id(2),
        started: true,
    };
    assert_eq!(typed(&mut app, "h"), vec![started.clone()]);
    assert!(typed(&mut app, "e").is_empty(), "not re-sent at once");
    app.on_tick(T0 + TYPING_PAUSE_MS - 1);
    assert_eq!(
        typed(&mut app, "l"),
        Vec::<Cmd>::new(),
        "still within the refresh interval"
    );
    let last_key = app.now_ms;
    let cmds = app.on_tick(last_key + TYPING_PAUSE_MS);
    assert!(cmds.contains(&Cmd::Typing {
        peer: id(2),
        started: false
    }));
    assert_eq!(typed(&mut app, "l"), vec![started]);
    // Commands are not "typing".
    app.compose.clear();
    app.on_tick(app.now_ms + TYPING_PAUSE_MS);
    assert!(typed(&mut app, "/acc").is_empty());
}

#[test]
fn peer_typing_shows_until_timeout_or_their_message() {
    let mut app = open_bob();
    app.on_event(NetEvent::Snapshot {
        conversations: vec![conv(id(2), 0, false)],
        open: Some(id(2)),
        messages: vec![msg(
            id(2),
            id(2),
            Direction::In,
            T0,
            "yo",
            MessageStatus::Delivered,
        )],
    });
    app.on_event(NetEvent::Synced(Ok(SyncSummary {
        typing: vec![id(2)],
        ..Default::default()
    })));
    assert!(app.is_typing(&id(2)));
    app.on_tick(T0 + TYPING_SHOW_MS - 1);
    assert!(app.is_typing(&id(2)));
    app.on_tick(T0 + TYPING_SHOW_MS);
    assert!(!app.is_typing(&id(2)));
    // Shown again, then ended by their next message.
    app.on_event(NetEvent::Synced(Ok(SyncSummary {
        typing: vec![id(2)],
        ..Default::default()
    })));
    assert!(app.is_typing(&id(2)));
    app.on_event(NetEvent::Snapshot {
        conversations: vec![conv(id(2), 0, false)],
        open: Some(id(2)),
        messages: vec![
            msg(
                id(2),
                id(2),
                Direction::In,
                T0,
                "yo",
                MessageStatus::Delivered,
            ),
            msg(
                id(2),
                id(2),
                Direction::In,
                T0 + 1,
                "there?",
                MessageStatus::Delivered,
            ),
        ],
    });
    assert!(!app.is_typing(&id(2)));
}

#[test]
fn unread_in_the_open_conversation_is_marked_read_once() {
    let mut app = open_bob(); // MarkRead in flight
    let snap = NetEvent::Snapshot {
        conversations: vec![conv(id(2), 1, false)],
        open: Some(id(2)),
        messages: vec![],
    };
    assert!(app.on_event(snap.clone()).is_empty(), "one at a time");
    assert_eq!(
        app.on_event(NetEvent::MarkedRead(id(2))),
        vec![Cmd::Load { open: Some(id(2)) }]
    );
    assert_eq!(app.on_event(snap), vec![Cmd::MarkRead(id(2))]);
}

#[test]
fn snapshot_of_another_conversation_does_not_replace_messages() {
    let mut app = open_bob();
    app.on_event(NetEvent::Snapshot {
        conversations: vec![conv(id(2), 0, false)],
        open: Some(id(3)),
        messages: vec![msg(
            id(3),
            id(3),
            Direction::In,
            T0,
            "x",
            MessageStatus::Delivered,
        )],
    });
    assert!(app.messages.is_empty());
}

#[test]
fn help_opens_and_closes() {
    let mut app = app_with_list();
    app.on_key(key(KeyCode::Char('?')));
    assert_eq!(app.screen, Screen::Help);
    app.on_key(key(KeyCode::Esc));
    assert_eq!(app.screen, Screen::List);
    let mut app = open_bob();
    app.on_key(key(KeyCode::F(1)));
    assert_eq!(app.screen, Screen::Help);
    app.on_key(key(KeyCode::Esc));
    assert_eq!(app.screen, Screen::Conversation);
}

#[test]
fn q_quits_from_the_list() {
    let mut app = app_with_list();
    app.on_key(key(KeyCode::Char('q')));
    assert!(app.quit);
}

#[test]
fn durations_read_naturally() {
    assert_eq!(duration_text(30), "30s");
    assert_eq!(duration_text(60), "1m");
    assert_eq!(duration_text(90), "90s");
    assert_eq!(duration_text(43_200), "12h");
    assert_eq!(duration_text(86_400), "1d");
}

fn incoming(peer: AccountId, author: AccountId, direction: Direction, blocked: bool) -> Incoming {
    Incoming {
        peer,
        author,
        direction,
        text: "secret text".to_string(),
        blocked,
    }
}

fn synced_with(app: &mut App, msgs: Vec<Incoming>) -> Vec<Cmd> {
    app.on_event(NetEvent::Synced(Ok(SyncSummary {
        new_messages: msgs.len(),
        incoming: msgs,
        ..SyncSummary::default()
    })))
    .into_iter()
    .filter(|c| matches!(c, Cmd::Notify { .. }))
    .collect()
}

#[test]
fn notifications_are_off_by_default() {
    let mut app = app_with_list();
    let got = synced_with(&mut app, vec![incoming(id(2), id(2), Direction::In, false)]);
    assert!(got.is_empty(), "{got:?}");
}

#[test]
fn notifications_carry_text_only_when_opted_in() {
    let mut app = app_with_list();
    app.settings.notify_command = Some("notify-send Umbra".to_string());
    let got = synced_with(&mut app, vec![incoming(id(2), id(2), Direction::In, false)]);
    assert_eq!(
        got,
        vec![Cmd::Notify {
            peer_short: id(2).short(),
            text: None,
            bell: false,
            command: Some("notify-send Umbra".to_string()),
        }]
    );
    app.settings.notify_text = true;
    app.settings.notify_bell = true;
    let got = synced_with(&mut app, vec![incoming(id(2), id(2), Direction::In, false)]);
    assert_eq!(
        got,
        vec![Cmd::Notify {
            peer_short: id(2).short(),
            text: Some("secret text".to_string()),
            bell: true,
            command: Some("notify-send Umbra".to_string()),
        }]
    );
    // The bell alone never carries text, even when opted in.
    app.settings.notify_command = None;
    let got = synced_with(&mut app, vec![incoming(id(2), id(2), Direction::In, false)]);
    assert_eq!(
        got,
        vec![Cmd::Notify {
            peer_short: id(2).short(),
            text: None,
            bell: true,
            command: None,
        }]
    );
}

#[test]
fn notifications_skip_own_and_blocked_and_are_capped() {
    let mut app = app_with_list();
    app.settings.notify_bell = true;
    let got = synced_with(
        &mut app,
        vec![
            // A sync copy of our own message.
            incoming(id(2), id(1), Direction::Out, false),
            // Note to Self.
            incoming(id(1), id(1), Direction::In, false),
            // A blocked peer.
            incoming(id(3), id(3), Direction::In, true),
        ],
    );
    assert!(got.is_empty(), "{got:?}");
    let burst = (0..10)
        .map(|_| incoming(id(2), id(2), Direction::In, false))
        .collect();
    assert_eq!(synced_with(&mut app, burst).len(), NOTIFY_MAX_PER_SYNC);
    // A failed poll notifies nothing.
    let cmds = app.on_event(NetEvent::Synced(Err("offline".to_string())));
    assert!(!cmds.iter().any(|c| matches!(c, Cmd::Notify { .. })));
}

#[test]
fn notify_settings_toggle_and_the_command_is_edited() {
    let mut app = app_with_list();
    app.on_key(key(KeyCode::Char('s')));
    for _ in 0..3 {
        app.on_key(key(KeyCode::Down));
    }
    assert_eq!(Setting::ALL[app.settings_selected], Setting::NotifyCommand);
    // Enter edits; typed keys are text, not shortcuts.
    assert!(app.on_key(key(KeyCode::Enter)).is_empty());
    for c in "notify-send q".chars() {
        assert!(app.on_key(key(KeyCode::Char(c))).is_empty());
    }
    assert_eq!(app.screen, Screen::Settings);
    app.on_key(key(KeyCode::Backspace));
    let cmds = app.on_key(key(KeyCode::Enter));
    assert_eq!(
        cmds,
        vec![Cmd::SetNotifyCommand(Some("notify-send".to_string()))]
    );
    assert_eq!(app.command_input, None);
    assert_eq!(app.settings.notify_command.as_deref(), Some("notify-send"));
    // Space clears it.
    assert_eq!(
        app.on_key(key(KeyCode::Char(' '))),
        vec![Cmd::SetNotifyCommand(None)]
    );
    // Esc cancels an edit.
    app.on_key(key(KeyCode::Enter));
    app.on_key(key(KeyCode::Char('x')));
    assert!(app.on_key(key(KeyCode::Esc)).is_empty());
    assert_eq!(app.settings.notify_command, None);
    assert_eq!(app.screen, Screen::Settings);
    // Bell and text are toggles.
    app.on_key(key(KeyCode::Down));
    assert_eq!(
        app.on_key(key(KeyCode::Char(' '))),
        vec![Cmd::SetSetting {
            setting: Setting::NotifyBell,
            on: true
        }]
    );
    app.on_key(key(KeyCode::Down));
    assert_eq!(
        app.on_key(key(KeyCode::Char(' '))),
        vec![Cmd::SetSetting {
            setting: Setting::NotifyText,
            on: true
        }]
    );
}

// ---- groups (issue 8) ----

pub(crate) fn gid(n: u8) -> AccountId {
    let hex = format!("03{}", format!("{n:02x}").repeat(32));
    hex.parse().expect("test group ID")
}

/// An app with Bob (contact "bob"), a group "Friends" (joined) and a group
/// invite "Club" in the requests; the group conversation open.
pub(crate) fn app_with_group() -> App {
    let (mut app, _) = App::new(id(1), T0);
    app.on_event(NetEvent::Synced(Ok(SyncSummary::default())));
    app.on_event(NetEvent::GroupNames(vec![
        (gid(9), "Friends".into()),
        (gid(8), "Club".into()),
    ]));
    let mut bob = conv(id(2), 0, false);
    bob.contact_name = Some("bob".into());
    app.on_event(NetEvent::Snapshot {
        conversations: vec![conv(gid(9), 1, false), bob, conv(gid(8), 1, true)],
        open: None,
        messages: vec![],
    });
    app
}

#[test]
fn group_names_and_authors_come_from_the_group_list_and_contacts() {
    let app = app_with_group();
    assert_eq!(app.name_of(&gid(9)), "# Friends");
    assert_eq!(app.name_of(&gid(8)), "# Club");
    assert_eq!(app.name_of(&id(2)), "bob");
    // An author with no conversation: the short ID.
    assert_eq!(app.name_of(&id(5)), id(5).short());
    assert!(is_group(&gid(9)) && !is_group(&id(2)));
}

#[test]
fn sending_in_a_group_uses_the_group_path_and_no_typing_indicator() {
    let mut app = app_with_group();
    app.settings.typing_indicators = true;
    assert_eq!(app.selected_peer(), Some(gid(9)));
    let cmds = app.on_key(key(KeyCode::Enter));
    assert!(cmds.contains(&Cmd::MarkRead(gid(9))), "{cmds:?}");
    // Typing in a group sends no indicator (they are 1:1 only).
    assert_eq!(typed(&mut app, "hi all"), vec![]);
    let cmds = app.on_key(key(KeyCode::Enter));
    assert_eq!(
        cmds,
        vec![Cmd::SendGroup {
            group: gid(9),
            text: "hi all".into(),
            local_id: 1
        }]
    );
    assert_eq!(app.visible_pending().len(), 1);
    // 1:1 still uses the 1:1 send.
    app.on_key(key(KeyCode::Esc));
    app.selected = 1;
    app.on_key(key(KeyCode::Enter));
    assert_eq!(app.open, Some(id(2)));
    typed(&mut app, "hey");
    let cmds = app.on_key(key(KeyCode::Enter));
    assert!(
        cmds.iter()
            .any(|c| matches!(c, Cmd::Send { peer, .. } if *peer == id(2))),
        "{cmds:?}"
    );
    assert!(!cmds.iter().any(|c| matches!(c, Cmd::SendGroup { .. })));
}

#[test]
fn accepting_a_group_invite_joins_the_group() {
    let mut app = app_with_group();
    app.selected = 2;
    assert_eq!(app.selected_peer(), Some(gid(8)));
    app.on_key(key(KeyCode::Enter));
    typed(&mut app, "/accept");
    assert_eq!(
        app.on_key(key(KeyCode::Enter)),
        vec![Cmd::AcceptGroup(gid(8))]
    );
    typed(&mut app, "/decline");
    let cmds = app.on_key(key(KeyCode::Enter));
    assert_eq!(cmds.first(), Some(&Cmd::DeclineGroup(gid(8))));
    assert_eq!(app.screen, Screen::List);
    // Blocking a group is not a thing.
    app.selected = 0;
    app.on_key(key(KeyCode::Enter));
    typed(&mut app, "/block");
    assert_eq!(app.on_key(key(KeyCode::Enter)), vec![]);
    assert!(
        app.status
            .as_deref()
            .is_some_and(|s| s.contains("not available"))
    );
    // Unsending one's own group message is (in the group now open).
    typed(&mut app, "/unsend 1700000000123");
    assert_eq!(
        app.on_key(key(KeyCode::Enter)),
        vec![Cmd::Unsend {
            peer: gid(9),
            timestamp_ms: 1_700_000_000_123
        }]
    );
}

#[test]
fn group_commands_parse_members_by_id_or_contact_name() {
    let mut app = app_with_group();
    app.on_key(key(KeyCode::Enter)); // Friends
    let cmd = |app: &mut App, line: &str| {
        typed(app, line);
        app.on_key(key(KeyCode::Enter))
    };
    let three = id(3).to_string();
    assert_eq!(
        cmd(&mut app, &format!("/group add bob {three}")),
        vec![Cmd::Group(GroupOp::Add {
            group: gid(9),
            members: vec![id(2), id(3)]
        })]
    );
    assert_eq!(
        cmd(&mut app, "/group remove bob"),
        vec![Cmd::Group(GroupOp::Remove {
            group: gid(9),
            members: vec![id(2)]
        })]
    );
    assert_eq!(
        cmd(&mut app, "/group rename Old Friends"),
        vec![Cmd::Group(GroupOp::Rename {
            group: gid(9),
            name: "Old Friends".into()
        })]
    );
    assert_eq!(
        cmd(&mut app, "/group info"),
        vec![Cmd::Group(GroupOp::Info(gid(9)))]
    );
    // Unknown members and a group ID as a member are refused, nothing sent.
    assert_eq!(cmd(&mut app, "/group add carol"), vec![]);
    assert!(app.status.as_deref().is_some_and(|s| s.contains("carol")));
    assert_eq!(cmd(&mut app, &format!("/group add {}", gid(8))), vec![]);
    assert_eq!(cmd(&mut app, "/group add"), vec![]);
    assert_eq!(app.status.as_deref(), Some(GROUP_USAGE));
    // Leave closes the conversation.
    let cmds = cmd(&mut app, "/group leave");
    assert_eq!(cmds.first(), Some(&Cmd::Group(GroupOp::Leave(gid(9)))));
    assert_eq!(app.screen, Screen::List);
    // In a 1:1 conversation: create works, the others say where they work.
    app.selected = 1;
    app.on_key(key(KeyCode::Enter));
    assert_eq!(
        cmd(&mut app, "/group create Team bob"),
        vec![Cmd::Group(GroupOp::Create {
            name: "Team".into(),
            members: vec![id(2)]
        })]
    );
    assert_eq!(cmd(&mut app, "/group leave"), vec![]);
    assert!(
        app.status
            .as_deref()
            .is_some_and(|s| s.contains("group conversation"))
    );
}

#[test]
fn group_info_lists_members_with_roles() {
    let v = umbra_client::groups::GroupView {
        id: gid(9),
        name: "Friends".into(),
        is_admin: true,
        generation: Some(1),
        version: 2,
        timer_s: 300,
        share_history: false,
        members: vec![
            umbra_client::groups::GroupMember {
                id: id(1),
                admin: true,
                joined: true,
            },
            umbra_client::groups::GroupMember {
                id: id(2),
                admin: false,
                joined: false,
            },
        ],
        removed: false,
    };
    let t = group_info_text(&v);
    assert!(
        t.starts_with("group \"Friends\" (admin): 2 member(s): "),
        "{t}"
    );
    assert!(t.contains(&format!("{}*", id(1).short())), "{t}");
    assert!(t.contains(&format!("{}?", id(2).short())), "{t}");
    assert!(t.ends_with("disappear 5m after send"), "{t}");
}

#[test]
fn the_first_link_sent_with_previews_off_explains_them_once() {
    let mut app = open_bob();
    assert!(!app.settings.link_previews);
    typed(&mut app, "no link here");
    app.on_key(key(KeyCode::Enter));
    assert!(app.status.is_none());
    typed(&mut app, "see https://example.org/a");
    let cmds = app.on_key(key(KeyCode::Enter));
    assert!(
        matches!(cmds.as_slice(), [Cmd::PreviewHintShown, Cmd::Send { .. }]),
        "{cmds:?}"
    );
    let hint = app.status.clone().unwrap();
    assert!(
        hint.contains("link preview") && hint.contains("random node"),
        "{hint}"
    );
    // Once: not again in this run …
    app.status = None;
    typed(&mut app, "and https://example.org/b");
    let cmds = app.on_key(key(KeyCode::Enter));
    assert!(matches!(cmds.as_slice(), [Cmd::Send { .. }]), "{cmds:?}");
    assert!(app.status.is_none());
    // Settings read before the flag was saved do not bring it back.
    let stale = Settings {
        preview_hint_shown: false,
        ..app.settings.clone()
    };
    app.on_event(NetEvent::Settings(stale));
    assert!(app.settings.preview_hint_shown);
    // … nor in a later one, whose settings remember it.
    let mut app = open_bob();
    app.settings.preview_hint_shown = true;
    typed(&mut app, "see https://example.org/a");
    app.on_key(key(KeyCode::Enter));
    assert!(app.status.is_none());
    // With previews on there is nothing to explain.
    let mut app = open_bob();
    app.settings.link_previews = true;
    typed(&mut app, "see https://example.org/a");
    app.on_key(key(KeyCode::Enter));
    assert!(app.status.is_none());
}
