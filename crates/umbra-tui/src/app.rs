//! The chat application's state machine (issue 7, "Architecture"): every
//! screen's state, mutated only by [`App::on_key`], [`App::on_paste`],
//! [`App::on_tick`] and [`App::on_event`], each returning the [`Cmd`]s the
//! network side ([`crate::net`]) must carry out. No I/O, no clock reads:
//! time arrives with ticks, results arrive as [`NetEvent`]s. This is what the
//! unit tests drive.
//!
//! Timing rules (Session's, `messages.md` §13 for typing):
//! - polling: every [`POLL_ACTIVE_MS`] while a conversation is open, every
//!   [`POLL_IDLE_MS`] on the other screens, [`POLL_ERROR_MS`] after a failed
//!   poll (Session polls every 5 s in the foreground and 60–120 s in the
//!   background; a terminal chat that is open is always "foreground", and
//!   an open conversation polls faster still);
//! - typing: STARTED on the first key, re-sent every [`TYPING_REFRESH_MS`]
//!   while typing; STOPPED after [`TYPING_PAUSE_MS`] without a key; a peer's
//!   indicator is shown for at most [`umbra_client::client::TYPING_SHOW_MS`]
//!   or until their next visible message.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use umbra_client::client::TYPING_SHOW_MS;
use umbra_client::store::{Conversation, Direction, Disappearing, DisappearingMode, Message};
use umbra_proto::identity::{AccountId, IdPrefix};

/// Whether `peer` is a group (a `03` ID, issue 8): its conversation sends
/// with the group path and its request is a group invite.
pub fn is_group(peer: &AccountId) -> bool {
    peer.prefix() == IdPrefix::Group
}

/// A `/group` operation (issue 8), carried out by the network side with the
/// client's group methods; answered by [`NetEvent::Done`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupOp {
    /// Create a group and invite members.
    Create {
        /// The name.
        name: String,
        /// The `05` accounts invited.
        members: Vec<AccountId>,
    },
    /// Add members (admins only).
    Add {
        /// The group.
        group: AccountId,
        /// The `05` accounts.
        members: Vec<AccountId>,
    },
    /// Remove members (admins only).
    Remove {
        /// The group.
        group: AccountId,
        /// The `05` accounts.
        members: Vec<AccountId>,
    },
    /// Leave the group.
    Leave(AccountId),
    /// Rename the group (admins only).
    Rename {
        /// The group.
        group: AccountId,
        /// The new name.
        name: String,
    },
    /// Show the group's name and roster on the status line.
    Info(AccountId),
}

/// A group's info for the status line: name, role, members (short IDs,
/// `*` admin, `?` invited), timer.
pub fn group_info_text(v: &umbra_client::groups::GroupView) -> String {
    let members: Vec<String> = v
        .members
        .iter()
        .map(|m| {
            let mark = match (m.admin, m.joined) {
                (true, _) => "*",
                (false, false) => "?",
                (false, true) => "",
            };
            format!("{}{mark}", m.id.short())
        })
        .collect();
    let mut out = format!(
        "group {:?}{}: {} member(s): {}",
        v.name,
        if v.is_admin { " (admin)" } else { "" },
        v.members.len(),
        members.join(", ")
    );
    if v.timer_s > 0 {
        out.push_str(&format!(
            "; messages disappear {} after send",
            duration_text(v.timer_s)
        ));
    }
    if v.removed {
        out.push_str("; you were removed");
    }
    out
}

/// The `/group` usage line.
pub const GROUP_USAGE: &str = "usage: /group create NAME [ID…] | add ID… | remove ID… | leave | rename NAME | info (in a group)";

/// Poll interval while a conversation is open (ms).
pub const POLL_ACTIVE_MS: u64 = 2_000;
/// Poll interval on the other screens (ms).
pub const POLL_IDLE_MS: u64 = 5_000;
/// Poll interval after a failed poll (ms).
pub const POLL_ERROR_MS: u64 = 15_000;
/// A STARTED typing indicator is re-sent this often while typing (ms).
pub const TYPING_REFRESH_MS: u64 = 10_000;
/// STOPPED is sent after this long without a key (ms).
pub const TYPING_PAUSE_MS: u64 = 3_000;
/// The shortest and longest disappearing timers (s), as in the CLI.
pub const TIMER_RANGE_S: std::ops::RangeInclusive<u32> = 10..=1_209_600;

/// A privacy setting shown on the settings screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// Read receipts (§12).
    ReadReceipts,
    /// Typing indicators (§13).
    TypingIndicators,
    /// Link previews.
    LinkPreviews,
    /// The notification command (`ui.notify_command`): a program run on a
    /// new incoming message. Edited as text, not toggled.
    NotifyCommand,
    /// The terminal bell on a new incoming message (`ui.bell`).
    NotifyBell,
    /// Pass the message text to the notification command (`ui.notify_text`).
    NotifyText,
}

impl Setting {
    /// All settings, in screen order.
    pub const ALL: [Setting; 6] = [
        Setting::ReadReceipts,
        Setting::TypingIndicators,
        Setting::LinkPreviews,
        Setting::NotifyCommand,
        Setting::NotifyBell,
        Setting::NotifyText,
    ];

    /// The setting's name.
    pub fn label(self) -> &'static str {
        match self {
            Setting::ReadReceipts => "Read receipts",
            Setting::TypingIndicators => "Typing indicators",
            Setting::LinkPreviews => "Link previews",
            Setting::NotifyCommand => "Notify command",
            Setting::NotifyBell => "Terminal bell",
            Setting::NotifyText => "Text in notices",
        }
    }

    /// What turning it on reveals, in one line.
    pub fn reveals(self) -> &'static str {
        match self {
            Setting::ReadReceipts => {
                "Reveals when you read a message (to contacts who enable it too)."
            }
            Setting::TypingIndicators => {
                "Reveals when you are typing (to contacts who enable it too)."
            }
            Setting::LinkPreviews => {
                "Links you send are fetched by a random node: the site sees it, not you."
            }
            Setting::NotifyCommand => {
                "Runs it on new messages with the sender's short ID (Enter edits)."
            }
            Setting::NotifyBell => "Rings the terminal bell on new messages: heard nearby.",
            Setting::NotifyText => {
                "Also gives the message text to the notify command (it may show it)."
            }
        }
    }
}

/// The settings' current values.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settings {
    /// Read receipts on.
    pub read_receipts: bool,
    /// Typing indicators on.
    pub typing_indicators: bool,
    /// Link previews on.
    pub link_previews: bool,
    /// The notification command (program and fixed arguments, split on
    /// whitespace, no shell); `None` when unset (the default).
    pub notify_command: Option<String>,
    /// Ring the terminal bell on new messages.
    pub notify_bell: bool,
    /// Give the message text to the notification command.
    pub notify_text: bool,
    /// The one-time link-preview explanation was shown (in any run).
    pub preview_hint_shown: bool,
}

impl Settings {
    /// The value of `s`.
    pub fn get(&self, s: Setting) -> bool {
        match s {
            Setting::ReadReceipts => self.read_receipts,
            Setting::TypingIndicators => self.typing_indicators,
            Setting::LinkPreviews => self.link_previews,
            Setting::NotifyCommand => self.notify_command.is_some(),
            Setting::NotifyBell => self.notify_bell,
            Setting::NotifyText => self.notify_text,
        }
    }

    fn set(&mut self, s: Setting, on: bool) {
        match s {
            Setting::ReadReceipts => self.read_receipts = on,
            Setting::TypingIndicators => self.typing_indicators = on,
            Setting::LinkPreviews => self.link_previews = on,
            Setting::NotifyCommand => {
                if !on {
                    self.notify_command = None;
                }
            }
            Setting::NotifyBell => self.notify_bell = on,
            Setting::NotifyText => self.notify_text = on,
        }
    }
}

/// A command for the network side. Each one is answered by one or more
/// [`NetEvent`]s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cmd {
    /// Send a text message to a group (issue 8, `send_group_text`);
    /// answered by [`NetEvent::SendDone`] with `local_id`.
    SendGroup {
        /// The group's `03` ID.
        group: AccountId,
        /// The text.
        text: String,
        /// The app's ID of the pending message.
        local_id: u64,
    },
    /// Accept a group invite: join the group (issue 8).
    AcceptGroup(AccountId),
    /// Decline a group invite (forgets it; nothing is sent).
    DeclineGroup(AccountId),
    /// A `/group` operation.
    Group(GroupOp),
    /// Send a text message; answered by [`NetEvent::SendDone`] with `local_id`.
    Send {
        /// The conversation.
        peer: AccountId,
        /// The text.
        text: String,
        /// The app's ID of the pending message.
        local_id: u64,
    },
    /// Poll the swarm; answered by [`NetEvent::Synced`].
    Sync,
    /// Read the conversation list (and the open conversation) from the
    /// store; answered by [`NetEvent::Snapshot`].
    Load {
        /// The open conversation, whose messages to read.
        open: Option<AccountId>,
    },
    /// Mark a conversation read (read receipts when allowed, DaR timers).
    MarkRead(AccountId),
    /// Accept a message request.
    Accept(AccountId),
    /// Decline a message request.
    Decline(AccountId),
    /// Block an account.
    Block(AccountId),
    /// Unblock an account.
    Unblock(AccountId),
    /// Unsend our message sent at `timestamp_ms`.
    Unsend {
        /// The conversation.
        peer: AccountId,
        /// The message's timestamp.
        timestamp_ms: u64,
    },
    /// Change a conversation's disappearing-messages setting.
    SetDisappearing {
        /// The conversation.
        peer: AccountId,
        /// The new setting.
        setting: Disappearing,
    },
    /// Change a privacy setting; answered by [`NetEvent::Settings`].
    SetSetting {
        /// Which.
        setting: Setting,
        /// The new value.
        on: bool,
    },
    /// Send a typing indicator (the client checks it is allowed).
    Typing {
        /// The conversation.
        peer: AccountId,
        /// STARTED (true) or STOPPED.
        started: bool,
    },
    /// Set (`Some`) or clear (`None`) the notification command; answered
    /// by [`NetEvent::Settings`].
    SetNotifyCommand(Option<String>),
    /// Remember that the link-preview explanation was shown, so that it is
    /// shown once per profile, not once per run.
    PreviewHintShown,
    /// Notify the user of a new incoming message: ring the terminal bell
    /// (`bell`, done by the UI loop) and/or run `command` with the sender's
    /// short ID and, only if the user opted in, the text.
    Notify {
        /// The sender's short ID.
        peer_short: String,
        /// The message text, only with `ui.notify_text` on.
        text: Option<String>,
        /// Ring the terminal bell.
        bell: bool,
        /// The command to run, if one is set.
        command: Option<String>,
    },
    /// Open attachment `index` of the message sent at `timestamp_ms` with
    /// the system opener (issue 9): downloaded and verified if needed, a
    /// decrypted copy in the profile handed to `$UMBRA_OPENER` or `xdg-open`.
    OpenAttachment {
        /// The message's timestamp.
        timestamp_ms: u64,
        /// The attachment's index.
        index: usize,
    },
}

/// The most notifications one poll raises (a burst is one poll).
pub const NOTIFY_MAX_PER_SYNC: usize = 3;

/// A message a poll stored (what notifications are decided from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// The conversation.
    pub peer: AccountId,
    /// The sender.
    pub author: AccountId,
    /// In, or out (a sync copy of our own message).
    pub direction: Direction,
    /// The text.
    pub text: String,
    /// The conversation is blocked.
    pub blocked: bool,
}

/// What a poll brought (the part of the client's `SyncReport` the UI shows).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncSummary {
    /// New visible messages.
    pub new_messages: usize,
    /// Of those, message requests.
    pub new_requests: usize,
    /// Read receipts applied.
    pub receipts: usize,
    /// Messages unsent by their author.
    pub unsent: usize,
    /// Peers typing now.
    pub typing: Vec<AccountId>,
    /// The new messages themselves (for notifications).
    pub incoming: Vec<Incoming>,
}

/// A result reported by the network side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetEvent {
    /// The store's current conversations and the open conversation's messages.
    Snapshot {
        /// Conversations (requests included, marked `is_request`).
        conversations: Vec<Conversation>,
        /// The conversation these messages belong to.
        open: Option<AccountId>,
        /// Its messages, oldest first.
        messages: Vec<Message>,
    },
    /// The settings' values.
    Settings(Settings),
    /// A poll finished.
    Synced(Result<SyncSummary, String>),
    /// A send finished: the message's timestamp, or why it failed.
    SendDone {
        /// The pending message.
        local_id: u64,
        /// Its timestamp, or the error.
        result: Result<u64, String>,
    },
    /// The names of the groups this device knows and of pending group
    /// invites (issue 8), sent with each snapshot.
    GroupNames(Vec<(AccountId, String)>),
    /// Marking a conversation read finished.
    MarkedRead(AccountId),
    /// Another command finished (`what` names it for the status line).
    Done {
        /// "accepted", "blocked", …
        what: String,
        /// Success or the error.
        result: Result<(), String>,
    },
}

/// The screens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// The conversation list and message requests.
    List,
    /// One open conversation with the compose line.
    Conversation,
    /// Privacy settings.
    Settings,
    /// The account ID (text and QR code).
    Account,
    /// Start a conversation by pasting an account ID.
    NewConversation,
    /// Key bindings.
    Help,
}

/// A message being sent (shown as `sending` until the network answers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The app's ID.
    pub local_id: u64,
    /// The conversation.
    pub peer: AccountId,
    /// The text.
    pub text: String,
    /// When Enter was pressed (app time, ms).
    pub queued_at_ms: u64,
}

/// The whole UI state.
#[derive(Debug, Clone)]
pub struct App {
    /// This account.
    pub me: AccountId,
    /// The current screen.
    pub screen: Screen,
    /// Where `Esc` from help returns to.
    pub help_return: Screen,
    /// Approved conversations, newest first.
    pub conversations: Vec<Conversation>,
    /// Message requests, newest first.
    pub requests: Vec<Conversation>,
    /// The list selection: an index into conversations, then requests.
    pub selected: usize,
    /// The open conversation.
    pub open: Option<AccountId>,
    /// Its messages, oldest first.
    pub messages: Vec<Message>,
    /// Messages being sent.
    pub pending: Vec<Pending>,
    /// The compose line (may hold newlines).
    pub compose: String,
    /// Lines scrolled up from the bottom of the open conversation.
    pub scroll: u16,
    /// The settings.
    pub settings: Settings,
    /// The settings-screen selection.
    pub settings_selected: usize,
    /// The new-conversation input.
    pub new_input: String,
    /// The status line (last result or error).
    pub status: Option<String>,
    /// Peers typing and until when their indicator shows (app time, ms).
    pub typing: Vec<(AccountId, u64)>,
    /// The last poll failed with this error.
    pub offline: Option<String>,
    /// App time (ms), from the last tick.
    pub now_ms: u64,
    /// Set when the app should exit.
    pub quit: bool,
    /// The notification command being edited on the settings screen.
    pub command_input: Option<String>,
    /// Group names by `03` ID (groups and pending invites).
    pub group_names: Vec<(AccountId, String)>,
    next_local_id: u64,
    sync_in_flight: bool,
    next_sync_at_ms: u64,
    mark_read_in_flight: Option<AccountId>,
    typing_sent: Option<(AccountId, u64)>,
    last_key_ms: u64,
}

fn d_text(d: Disappearing) -> String {
    match d.mode {
        DisappearingMode::Off => "off".to_string(),
        DisappearingMode::AfterRead => format!("{} after read", duration_text(d.timer_s)),
        DisappearingMode::AfterSend => format!("{} after send", duration_text(d.timer_s)),
    }
}

/// A timer as `30s`, `5m`, `12h`, `1d` (whole units; seconds otherwise).
pub fn duration_text(s: u32) -> String {
    if s >= 86_400 && s.is_multiple_of(86_400) {
        format!("{}d", s / 86_400)
    } else if s >= 3_600 && s.is_multiple_of(3_600) {
        format!("{}h", s / 3_600)
    } else if s >= 60 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// A conversation's disappearing setting for display ("off", "1m after send").
pub fn disappearing_text(d: Disappearing) -> String {
    d_text(d)
}

/// Parses `/disappearing` arguments: `off`, `after-read [secs]`, `after-send [secs]`.
pub fn parse_disappearing(args: &[&str]) -> Result<Disappearing, String> {
    let timer = |default: u32| -> Result<u32, String> {
        match args.get(1) {
            None => Ok(default),
            Some(t) => t
                .parse::<u32>()
                .map_err(|_| format!("{t:?} is not a number of seconds")),
        }
    };
    let d = match args.first().copied() {
        Some("off") => Disappearing::OFF,
        Some("after-read") => Disappearing {
            mode: DisappearingMode::AfterRead,
            timer_s: timer(43_200)?,
        },
        Some("after-send") => Disappearing {
            mode: DisappearingMode::AfterSend,
            timer_s: timer(86_400)?,
        },
        _ => {
            return Err(
                "usage: /disappearing off | after-read [secs] | after-send [secs]".to_string(),
            );
        }
    };
    if d.mode != DisappearingMode::Off && !TIMER_RANGE_S.contains(&d.timer_s) {
        return Err("the timer must be between 10 s and 14 days".to_string());
    }
    Ok(d)
}

impl App {
    /// A new app for account `me` at app time `now_ms`. Returns the
    /// commands to run first (load the store, poll).
    pub fn new(me: AccountId, now_ms: u64) -> (App, Vec<Cmd>) {
        let app = App {
            me,
            screen: Screen::List,
            help_return: Screen::List,
            conversations: Vec::new(),
            requests: Vec::new(),
            selected: 0,
            open: None,
            messages: Vec::new(),
            pending: Vec::new(),
            compose: String::new(),
            scroll: 0,
            settings: Settings::default(),
            settings_selected: 0,
            new_input: String::new(),
            status: None,
            typing: Vec::new(),
            offline: None,
            now_ms,
            quit: false,
            command_input: None,
            group_names: Vec::new(),
            next_local_id: 1,
            sync_in_flight: true,
            next_sync_at_ms: now_ms,
            mark_read_in_flight: None,
            typing_sent: None,
            last_key_ms: now_ms,
        };
        (app, vec![Cmd::Load { open: None }, Cmd::Sync])
    }

    /// The open conversation's record, if it is listed.
    pub fn open_conversation(&self) -> Option<&Conversation> {
        let peer = self.open?;
        self.conversations
            .iter()
            .chain(self.requests.iter())
            .find(|c| c.peer == peer)
    }

    /// A display name for `peer`: "Note to Self", its contact name, or its short ID.
    pub fn name_of(&self, peer: &AccountId) -> String {
        if *peer == self.me {
            return "Note to Self".to_string();
        }
        if let Some((_, name)) = self.group_names.iter().find(|(g, _)| g == peer) {
            return format!("# {name}");
        }
        self.conversations
            .iter()
            .chain(self.requests.iter())
            .find(|c| c.peer == *peer)
            .and_then(|c| c.contact_name.clone())
            .unwrap_or_else(|| peer.short())
    }

    /// Whether `peer` is typing (their indicator is showing).
    pub fn is_typing(&self, peer: &AccountId) -> bool {
        self.typing
            .iter()
            .any(|(p, until)| p == peer && *until > self.now_ms)
    }

    /// Pending messages of the open conversation not yet in the store list.
    pub fn visible_pending(&self) -> Vec<&Pending> {
        let Some(peer) = self.open else {
            return Vec::new();
        };
        self.pending
            .iter()
            .filter(|p| p.peer == peer)
            .filter(|p| {
                // `send_text` stores the message as `sending` before it
                // returns; a reload may already show it.
                !self.messages.iter().any(|m| {
                    m.direction == Direction::Out
                        && m.text == p.text
                        && m.status == umbra_client::store::MessageStatus::Sending
                })
            })
            .collect()
    }

    /// The current poll interval (ms).
    pub fn poll_interval_ms(&self) -> u64 {
        if self.offline.is_some() {
            POLL_ERROR_MS
        } else if self.screen == Screen::Conversation
            || (self.screen == Screen::Help && self.help_return == Screen::Conversation)
        {
            POLL_ACTIVE_MS
        } else {
            POLL_IDLE_MS
        }
    }

    fn list_len(&self) -> usize {
        self.conversations.len() + self.requests.len()
    }

    /// The conversation selected in the list.
    pub fn selected_peer(&self) -> Option<AccountId> {
        self.conversations
            .iter()
            .chain(self.requests.iter())
            .nth(self.selected)
            .map(|c| c.peer)
    }

    fn load(&self) -> Cmd {
        Cmd::Load { open: self.open }
    }

    fn open_peer(&mut self, peer: AccountId) -> Vec<Cmd> {
        self.open = Some(peer);
        self.messages.clear();
        self.scroll = 0;
        self.screen = Screen::Conversation;
        self.status = None;
        // Poll soon: a conversation is now active.
        self.next_sync_at_ms = self.next_sync_at_ms.min(self.now_ms + POLL_ACTIVE_MS);
        let mut cmds = vec![self.load()];
        if self.mark_read_in_flight.is_none() {
            self.mark_read_in_flight = Some(peer);
            cmds.push(Cmd::MarkRead(peer));
        }
        cmds
    }

    fn close_conversation(&mut self) -> Vec<Cmd> {
        let mut cmds = self.stop_typing();
        self.open = None;
        self.messages.clear();
        self.screen = Screen::List;
        cmds.push(self.load());
        cmds
    }

    fn stop_typing(&mut self) -> Vec<Cmd> {
        match self.typing_sent.take() {
            Some((peer, _)) => vec![Cmd::Typing {
                peer,
                started: false,
            }],
            None => Vec::new(),
        }
    }

    /// Handles a key press.
    pub fn on_key(&mut self, key: KeyEvent) -> Vec<Cmd> {
        if key.kind == KeyEventKind::Release {
            return Vec::new();
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && matches!(key.code, KeyCode::Char('c') | KeyCode::Char('q')) {
            self.quit = true;
            return self.stop_typing();
        }
        if key.code == KeyCode::F(1) && self.screen != Screen::Help {
            self.help_return = self.screen;
            self.screen = Screen::Help;
            return Vec::new();
        }
        match self.screen {
            Screen::List => self.key_list(key),
            Screen::Conversation => self.key_conversation(key),
            Screen::Settings => self.key_settings(key),
            Screen::Account => {
                if matches!(key.code, KeyCode::Esc | KeyCode::Char('q')) {
                    self.screen = Screen::List;
                } else if key.code == KeyCode::Char('?') {
                    self.help_return = Screen::Account;
                    self.screen = Screen::Help;
                }
                Vec::new()
            }
            Screen::NewConversation => self.key_new(key),
            Screen::Help => {
                if matches!(
                    key.code,
                    KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char('?') | KeyCode::Enter
                ) {
                    self.screen = self.help_return;
                }
                Vec::new()
            }
        }
    }

    fn key_list(&mut self, key: KeyEvent) -> Vec<Cmd> {
        match key.code {
            KeyCode::Char('q') => {
                self.quit = true;
            }
            KeyCode::Up | KeyCode::Char('k') => {
                self.selected = self.selected.saturating_sub(1);
            }
            KeyCode::Down | KeyCode::Char('j') if self.selected + 1 < self.list_len() => {
                self.selected += 1;
            }
            KeyCode::Enter => {
                if let Some(peer) = self.selected_peer() {
                    return self.open_peer(peer);
                }
            }
            KeyCode::Char('n') => {
                self.new_input.clear();
                self.screen = Screen::NewConversation;
            }
            KeyCode::Char('s') => self.screen = Screen::Settings,
            KeyCode::Char('a') => self.screen = Screen::Account,
            KeyCode::Char('r') => {
                self.next_sync_at_ms = self.now_ms;
                return self.maybe_sync();
            }
            KeyCode::Char('?') => {
                self.help_return = Screen::List;
                self.screen = Screen::Help;
            }
            _ => {}
        }
        Vec::new()
    }

    fn key_settings(&mut self, key: KeyEvent) -> Vec<Cmd> {
        if let Some(input) = self.command_input.as_mut() {
            match key.code {
                KeyCode::Esc => self.command_input = None,
                KeyCode::Backspace => {
                    input.pop();
                }
                KeyCode::Enter => {
                    let text = input.trim().to_string();
                    self.command_input = None;
                    let command = (!text.is_empty()).then_some(text);
                    self.settings.notify_command = command.clone();
                    return vec![Cmd::SetNotifyCommand(command)];
                }
                KeyCode::Char(c)
                    if !key.modifiers.contains(KeyModifiers::CONTROL) && input.len() < 200 =>
                {
                    input.push(c);
                }
                _ => {}
            }
            return Vec::new();
        }
        match key.code {
            KeyCode::Esc | KeyCode::Char('q') => self.screen = Screen::List,
            KeyCode::Up | KeyCode::Char('k') => {
                self.settings_selected = self.settings_selected.saturating_sub(1);
            }
            KeyCode::Down | KeyCode::Char('j')
                if self.settings_selected + 1 < Setting::ALL.len() =>
            {
                self.settings_selected += 1;
            }
            KeyCode::Enter
                if Setting::ALL.get(self.settings_selected) == Some(&Setting::NotifyCommand) =>
            {
                self.command_input = Some(self.settings.notify_command.clone().unwrap_or_default());
            }
            KeyCode::Char(' ') | KeyCode::Enter => {
                if let Some(&s) = Setting::ALL.get(self.settings_selected) {
                    if s == Setting::NotifyCommand {
                        // Space clears a set command; Enter edits it.
                        if self.settings.notify_command.take().is_some() {
                            return vec![Cmd::SetNotifyCommand(None)];
                        }
                        self.command_input = Some(String::new());
                        return Vec::new();
                    }
                    let on = !self.settings.get(s);
                    // Shown at once; the store's answer confirms it.
                    self.settings.set(s, on);
                    return vec![Cmd::SetSetting { setting: s, on }];
                }
            }
            KeyCode::Char('?') => {
                self.help_return = Screen::Settings;
                self.screen = Screen::Help;
            }
            _ => {}
        }
        Vec::new()
    }

    fn key_new(&mut self, key: KeyEvent) -> Vec<Cmd> {
        match key.code {
            KeyCode::Esc => self.screen = Screen::List,
            KeyCode::Backspace => {
                self.new_input.pop();
            }
            KeyCode::Enter => {
                let text = self.new_input.trim().to_string();
                match text.parse::<AccountId>() {
                    Ok(peer) if peer.x25519().is_some() => {
                        self.new_input.clear();
                        return self.open_peer(peer);
                    }
                    _ => {
                        self.status = Some(
                            "not an account ID: expected 66 hex characters starting with 05"
                                .to_string(),
                        );
                    }
                }
            }
            KeyCode::Char(c)
                if !key.modifiers.contains(KeyModifiers::CONTROL) && self.new_input.len() < 200 =>
            {
                self.new_input.push(c);
            }
            _ => {}
        }
        Vec::new()
    }

    fn key_conversation(&mut self, key: KeyEvent) -> Vec<Cmd> {
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        match key.code {
            KeyCode::Esc => self.close_conversation(),
            KeyCode::Enter if alt || key.modifiers.contains(KeyModifiers::SHIFT) => {
                self.compose.push('\n');
                self.typed()
            }
            KeyCode::Enter => self.submit(),
            KeyCode::Backspace => {
                self.compose.pop();
                Vec::new()
            }
            KeyCode::PageUp => {
                self.scroll = self.scroll.saturating_add(5);
                Vec::new()
            }
            KeyCode::PageDown => {
                self.scroll = self.scroll.saturating_sub(5);
                Vec::new()
            }
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                self.compose.push(c);
                self.typed()
            }
            _ => Vec::new(),
        }
    }

    /// A key went into the compose line: typing indicator timing (§13).
    fn typed(&mut self) -> Vec<Cmd> {
        self.last_key_ms = self.now_ms;
        let Some(peer) = self.open else {
            return Vec::new();
        };
        if !self.settings.typing_indicators || self.compose.starts_with('/') || is_group(&peer) {
            return Vec::new();
        }
        let due = match self.typing_sent {
            Some((p, at)) => p != peer || self.now_ms.saturating_sub(at) >= TYPING_REFRESH_MS,
            None => true,
        };
        if due {
            self.typing_sent = Some((peer, self.now_ms));
            vec![Cmd::Typing {
                peer,
                started: true,
            }]
        } else {
            Vec::new()
        }
    }

    /// Handles pasted text (bracketed paste).
    pub fn on_paste(&mut self, text: &str) -> Vec<Cmd> {
        match self.screen {
            Screen::NewConversation => {
                let clean: String = text.chars().filter(|c| !c.is_whitespace()).collect();
                self.new_input.push_str(&clean);
                self.new_input.truncate(200);
                Vec::new()
            }
            Screen::Conversation => {
                self.compose.push_str(&text.replace("\r\n", "\n"));
                self.typed()
            }
            _ => Vec::new(),
        }
    }

    /// Enter in the compose line: a `/command` or a message.
    fn submit(&mut self) -> Vec<Cmd> {
        let Some(peer) = self.open else {
            return Vec::new();
        };
        let text = std::mem::take(&mut self.compose);
        if text.trim().is_empty() {
            return Vec::new();
        }
        if let Some(command) = text.strip_prefix('/') {
            return self.command(peer, command);
        }
        // The first link sent with previews off: say what turning them on
        // would cost, once per profile (§16.1 step 1: a one-time prompt).
        let mut cmds = Vec::new();
        if !self.settings.link_previews
            && !self.settings.preview_hint_shown
            && umbra_client::preview::first_https_url(&text).is_some()
        {
            self.settings.preview_hint_shown = true;
            cmds.push(Cmd::PreviewHintShown);
            self.status = Some(format!(
                "Sent without a link preview (they are off). {} (Settings: Esc, then s)",
                Setting::LinkPreviews.reveals()
            ));
        }
        let local_id = self.next_local_id;
        self.next_local_id += 1;
        self.pending.push(Pending {
            local_id,
            peer,
            text: text.clone(),
            queued_at_ms: self.now_ms,
        });
        self.scroll = 0;
        // A visible message ends our typing indicator on their side.
        self.typing_sent = None;
        cmds.push(if is_group(&peer) {
            Cmd::SendGroup {
                group: peer,
                text,
                local_id,
            }
        } else {
            Cmd::Send {
                peer,
                text,
                local_id,
            }
        });
        cmds
    }

    fn command(&mut self, peer: AccountId, command: &str) -> Vec<Cmd> {
        let words: Vec<&str> = command.split_whitespace().collect();
        let (name, args) = match words.split_first() {
            Some((n, a)) => (*n, a),
            None => ("", &[][..]),
        };
        match name {
            "block" | "unblock" | "disappearing" if is_group(&peer) => {
                self.status = Some(format!("/{name} is not available in a group"));
                Vec::new()
            }
            "accept" if is_group(&peer) => {
                self.status = Some("joining the group…".to_string());
                vec![Cmd::AcceptGroup(peer)]
            }
            "accept" => {
                self.status = Some("accepting…".to_string());
                vec![Cmd::Accept(peer)]
            }
            "decline" => {
                self.status = Some("declining…".to_string());
                let first = if is_group(&peer) {
                    Cmd::DeclineGroup(peer)
                } else {
                    Cmd::Decline(peer)
                };
                let mut cmds = vec![first];
                cmds.extend(self.close_conversation());
                cmds
            }
            "block" => {
                self.status = Some("blocking…".to_string());
                let mut cmds = vec![Cmd::Block(peer)];
                cmds.extend(self.close_conversation());
                cmds
            }
            "group" => match self.parse_group(peer, args) {
                Ok(op) => {
                    self.status = Some("group: working…".to_string());
                    let leave = matches!(op, GroupOp::Leave(_));
                    let mut cmds = vec![Cmd::Group(op)];
                    if leave {
                        cmds.extend(self.close_conversation());
                    }
                    cmds
                }
                Err(e) => {
                    self.status = Some(e);
                    Vec::new()
                }
            },
            "unblock" => vec![Cmd::Unblock(peer)],
            "unsend" => match args.first().map(|t| t.parse::<u64>()) {
                Some(Ok(timestamp_ms)) => {
                    self.status = Some(format!("unsending {timestamp_ms}…"));
                    vec![Cmd::Unsend { peer, timestamp_ms }]
                }
                _ => {
                    self.status = Some(
                        "usage: /unsend <timestamp> (the number shown before your message)"
                            .to_string(),
                    );
                    Vec::new()
                }
            },
            "open" => {
                let parsed = args.first().and_then(|a| {
                    let (t, i) = a.split_once(':').unwrap_or((a, "0"));
                    Some((t.parse::<u64>().ok()?, i.parse::<usize>().ok()?))
                });
                match parsed {
                    Some((timestamp_ms, index)) => {
                        self.status = Some(format!("opening {timestamp_ms}:{index}…"));
                        vec![Cmd::OpenAttachment {
                            timestamp_ms,
                            index,
                        }]
                    }
                    None => {
                        self.status = Some(
                            "usage: /open <timestamp>[:<index>] (as shown in [attachment …])"
                                .to_string(),
                        );
                        Vec::new()
                    }
                }
            }
            "disappearing" => match parse_disappearing(args) {
                Ok(setting) => {
                    self.status = Some(format!("disappearing messages: {}", d_text(setting)));
                    vec![Cmd::SetDisappearing { peer, setting }]
                }
                Err(e) => {
                    self.status = Some(e);
                    Vec::new()
                }
            },
            "retry" => {
                let failed = self.messages.iter().rev().find(|m| {
                    m.direction == Direction::Out
                        && m.status == umbra_client::store::MessageStatus::Failed
                });
                match failed {
                    Some(m) => {
                        self.compose = m.text.clone();
                        self.submit()
                    }
                    None => {
                        self.status = Some("no failed message to retry".to_string());
                        Vec::new()
                    }
                }
            }
            "attach" => {
                self.status = Some("attachments are not supported yet".to_string());
                Vec::new()
            }
            "help" => {
                self.help_return = Screen::Conversation;
                self.screen = Screen::Help;
                Vec::new()
            }
            _ => {
                self.status = Some(format!(
                    "unknown command /{name} (try /accept /decline /block /unblock /unsend /open /disappearing /retry /group /help)"
                ));
                Vec::new()
            }
        }
    }

    /// Resolves an account given as a `05` ID or a contact name.
    fn member(&self, who: &str) -> Result<AccountId, String> {
        if let Ok(id) = who.parse::<AccountId>() {
            if id.prefix() == IdPrefix::Standard {
                return Ok(id);
            }
            return Err(format!("{} is not an account ID (05…)", id.short()));
        }
        self.conversations
            .iter()
            .find(|c| c.contact_name.as_deref() == Some(who))
            .map(|c| c.peer)
            .ok_or_else(|| format!("{who:?} is neither an account ID nor a contact name"))
    }

    /// Parses `/group` arguments; `open` is the open conversation (the
    /// group the operation is about, except for `create`).
    pub fn parse_group(&self, open: AccountId, args: &[&str]) -> Result<GroupOp, String> {
        let Some((&op, rest)) = args.split_first() else {
            return Err(GROUP_USAGE.to_string());
        };
        let members = |ids: &[&str]| -> Result<Vec<AccountId>, String> {
            ids.iter().map(|w| self.member(w)).collect()
        };
        if op == "create" {
            let Some((&name, ids)) = rest.split_first() else {
                return Err(GROUP_USAGE.to_string());
            };
            return Ok(GroupOp::Create {
                name: name.to_string(),
                members: members(ids)?,
            });
        }
        if !is_group(&open) {
            return Err(format!("/group {op} works in a group conversation"));
        }
        let group = open;
        match op {
            "add" | "remove" if !rest.is_empty() => {
                let members = members(rest)?;
                Ok(if op == "add" {
                    GroupOp::Add { group, members }
                } else {
                    GroupOp::Remove { group, members }
                })
            }
            "leave" => Ok(GroupOp::Leave(group)),
            "rename" if !rest.is_empty() => Ok(GroupOp::Rename {
                group,
                name: rest.join(" "),
            }),
            "info" => Ok(GroupOp::Info(group)),
            _ => Err(GROUP_USAGE.to_string()),
        }
    }

    fn maybe_sync(&mut self) -> Vec<Cmd> {
        if self.sync_in_flight || self.now_ms < self.next_sync_at_ms {
            return Vec::new();
        }
        self.sync_in_flight = true;
        vec![Cmd::Sync]
    }

    /// The notifications to raise for the messages a poll stored: none
    /// unless the bell or a command is configured; never for our own
    /// messages (sync copies, Note to Self) or blocked peers; the text only
    /// with [`Settings::notify_text`]; at most [`NOTIFY_MAX_PER_SYNC`].
    pub fn notifications(&self, incoming: &[Incoming]) -> Vec<Cmd> {
        let s = &self.settings;
        if !s.notify_bell && s.notify_command.is_none() {
            return Vec::new();
        }
        incoming
            .iter()
            .filter(|m| {
                m.direction == Direction::In
                    && m.author != self.me
                    && m.peer != self.me
                    && !m.blocked
            })
            .take(NOTIFY_MAX_PER_SYNC)
            .map(|m| Cmd::Notify {
                peer_short: m.author.short(),
                text: (s.notify_text && s.notify_command.is_some()).then(|| m.text.clone()),
                bell: s.notify_bell,
                command: s.notify_command.clone(),
            })
            .collect()
    }

    /// Advances app time: polling, typing-indicator timeouts.
    pub fn on_tick(&mut self, now_ms: u64) -> Vec<Cmd> {
        self.now_ms = self.now_ms.max(now_ms);
        let mut cmds = self.maybe_sync();
        if let Some((_, _)) = self.typing_sent
            && self.now_ms.saturating_sub(self.last_key_ms) >= TYPING_PAUSE_MS
        {
            cmds.extend(self.stop_typing());
        }
        let now = self.now_ms;
        self.typing.retain(|(_, until)| *until > now);
        cmds
    }

    /// Applies a network result.
    pub fn on_event(&mut self, ev: NetEvent) -> Vec<Cmd> {
        match ev {
            NetEvent::Snapshot {
                conversations,
                open,
                messages,
            } => {
                let (requests, convs): (Vec<_>, Vec<_>) =
                    conversations.into_iter().partition(|c| c.is_request);
                let before = self.selected_peer();
                self.conversations = convs;
                self.requests = requests;
                // Keep the selection on the same conversation.
                self.selected = before
                    .and_then(|p| {
                        self.conversations
                            .iter()
                            .chain(self.requests.iter())
                            .position(|c| c.peer == p)
                    })
                    .unwrap_or_else(|| self.selected.min(self.list_len().saturating_sub(1)));
                if open.is_some() && open == self.open {
                    // A visible message from a typing peer ends the indicator.
                    let incoming =
                        |ms: &[Message]| ms.iter().filter(|m| m.direction == Direction::In).count();
                    if let Some(peer) = open
                        && !self.messages.is_empty()
                        && incoming(&messages) > incoming(&self.messages)
                    {
                        self.typing.retain(|(p, _)| *p != peer);
                    }
                    self.messages = messages;
                }
                // New incoming messages in the open conversation: mark read.
                if let Some(c) = self.open_conversation()
                    && c.unread > 0
                    && self.mark_read_in_flight.is_none()
                    && self.screen == Screen::Conversation
                {
                    let peer = c.peer;
                    self.mark_read_in_flight = Some(peer);
                    return vec![Cmd::MarkRead(peer)];
                }
                Vec::new()
            }
            NetEvent::Settings(mut s) => {
                // Read while the hint's flag may not be saved yet: it only
                // ever goes from unseen to seen.
                s.preview_hint_shown |= self.settings.preview_hint_shown;
                self.settings = s;
                Vec::new()
            }
            NetEvent::Synced(result) => {
                self.sync_in_flight = false;
                let mut cmds = Vec::new();
                match result {
                    Ok(s) => {
                        self.offline = None;
                        for p in s.typing {
                            self.typing.retain(|(q, _)| *q != p);
                            self.typing.push((p, self.now_ms + TYPING_SHOW_MS));
                        }
                        if s.new_messages + s.receipts + s.unsent > 0 {
                            cmds.push(self.load());
                        }
                        cmds.extend(self.notifications(&s.incoming));
                    }
                    Err(e) => self.offline = Some(e),
                }
                self.next_sync_at_ms = self.now_ms + self.poll_interval_ms();
                cmds
            }
            NetEvent::SendDone { local_id, result } => {
                self.pending.retain(|p| p.local_id != local_id);
                if let Err(e) = result {
                    self.status = Some(format!("sending failed: {e} (type /retry to resend)"));
                }
                vec![self.load()]
            }
            NetEvent::GroupNames(names) => {
                self.group_names = names;
                Vec::new()
            }
            NetEvent::MarkedRead(_) => {
                self.mark_read_in_flight = None;
                vec![self.load()]
            }
            NetEvent::Done { what, result } => {
                self.status = Some(match result {
                    Ok(()) => what,
                    Err(e) => format!("{what} failed: {e}"),
                });
                vec![self.load()]
            }
        }
    }
}

#[cfg(test)]
#[path = "app_tests.rs"]
pub(crate) mod tests;
