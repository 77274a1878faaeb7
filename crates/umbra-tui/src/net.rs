//! The network side of `umbra chat` (issue 7, "Architecture"): each
//! [`Cmd`] runs in its own background tokio task against the shared
//! [`Client`] and reports back as [`NetEvent`]s over a channel, so the UI
//! loop never waits on the network. Store reads ([`Cmd::Load`]) are local
//! and quick; everything that touches the swarm (send, sync, receipts,
//! accept, …) may take seconds or fail, and only its event says so.
//!
//! [`Cmd::Notify`] runs the user's notification command as a program with
//! arguments (never through a shell): the setting is split on whitespace
//! into the program and its fixed arguments, then the sender's short ID is
//! appended, then the text (only when the app put it in, i.e. the user
//! opted in). The bell is the UI loop's job (it owns the terminal).

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::mpsc::UnboundedSender;
use umbra_client::client::Client;
use umbra_client::store::Direction;
use umbra_proto::identity::AccountId;

use crate::app::{Cmd, GroupOp, Incoming, NetEvent, Setting, Settings, SyncSummary, is_group};

/// Setting key: the notification command (unset by default).
pub const NOTIFY_COMMAND_KEY: &str = "ui.notify_command";
/// Setting key: ring the terminal bell on new messages (`"true"`; off by default).
pub const BELL_KEY: &str = "ui.bell";
/// Setting key: give the message text to the notification command
/// (`"true"`; off by default).
pub const NOTIFY_TEXT_KEY: &str = "ui.notify_text";
/// Setting key: the one-time link-preview explanation has been shown
/// (`"true"`), so it is not shown again (`messages.md` §16.1 step 1).
pub const PREVIEW_HINT_KEY: &str = "ui.link_preview_hint_shown";

/// The program and arguments for a notification: the command's words, the
/// sender's short ID, then the text if given. `None` when `command` has no
/// program.
pub fn notify_argv(command: &str, peer_short: &str, text: Option<&str>) -> Option<Vec<String>> {
    let mut argv: Vec<String> = command.split_whitespace().map(str::to_string).collect();
    if argv.is_empty() {
        return None;
    }
    argv.push(peer_short.to_string());
    argv.extend(text.map(str::to_string));
    Some(argv)
}

/// Runs commands against a client.
#[derive(Clone)]
pub struct Net {
    client: Arc<Client>,
    tx: UnboundedSender<NetEvent>,
    syncing: Arc<AtomicBool>,
}

impl Net {
    /// A runner reporting to `tx`.
    pub fn new(client: Arc<Client>, tx: UnboundedSender<NetEvent>) -> Net {
        Net {
            client,
            tx,
            syncing: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Reads the settings from the store.
    pub fn settings(&self) -> Settings {
        let store = self.client.profile().store();
        Settings {
            read_receipts: store.read_receipts().unwrap_or(false),
            typing_indicators: store.typing_indicators().unwrap_or(false),
            link_previews: store.link_previews().unwrap_or(false),
            notify_command: store
                .setting(NOTIFY_COMMAND_KEY)
                .ok()
                .flatten()
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty()),
            notify_bell: store.bool_setting(BELL_KEY).unwrap_or(false),
            notify_text: store.bool_setting(NOTIFY_TEXT_KEY).unwrap_or(false),
            preview_hint_shown: store.bool_setting(PREVIEW_HINT_KEY).unwrap_or(false),
        }
    }

    /// Starts `cmd` in the background (needs a tokio runtime).
    pub fn spawn(&self, cmd: Cmd) {
        let this = self.clone();
        tokio::spawn(async move { this.execute(cmd).await });
    }

    fn send(&self, ev: NetEvent) {
        // The UI has gone: nothing left to report to.
        let _ = self.tx.send(ev);
    }

    fn done(&self, what: &str, result: Result<(), String>) {
        self.send(NetEvent::Done {
            what: what.to_string(),
            result,
        });
    }

    /// Unread counts per conversation (empty if the store fails).
    fn unread(&self) -> HashMap<AccountId, u64> {
        self.client
            .profile()
            .store()
            .conversations()
            .map(|cs| cs.into_iter().map(|c| (c.peer, c.unread)).collect())
            .unwrap_or_default()
    }

    /// The incoming messages a poll added: in each conversation whose
    /// unread count grew, that many newest unread incoming messages.
    fn new_incoming(&self, before: &HashMap<AccountId, u64>) -> Vec<Incoming> {
        let store = self.client.profile().store();
        let Ok(convs) = store.conversations() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for conv in convs {
            let grew = conv
                .unread
                .saturating_sub(before.get(&conv.peer).copied().unwrap_or(0));
            if grew == 0 {
                continue;
            }
            let Ok(msgs) = store.messages(&conv.peer, None) else {
                continue;
            };
            let unread: Vec<_> = msgs
                .into_iter()
                .filter(|m| m.direction == Direction::In && m.read_at_ms.is_none() && !m.deleted)
                .collect();
            let skip = unread
                .len()
                .saturating_sub(usize::try_from(grew).unwrap_or(usize::MAX));
            out.extend(unread.into_iter().skip(skip).map(|m| Incoming {
                peer: m.peer,
                author: m.author,
                direction: m.direction,
                text: m.text,
                blocked: conv.blocked,
            }));
        }
        out
    }

    /// Runs `cmd` to completion and reports its events.
    pub async fn execute(&self, cmd: Cmd) {
        let c = &*self.client;
        match cmd {
            Cmd::Load { open } => {
                let store = c.profile().store();
                let conversations = store.conversations();
                let messages = match open {
                    Some(p) => store.messages(&p, None),
                    None => Ok(Vec::new()),
                };
                // Attachments (issue 9): shown after the text, with the
                // timestamp `umbra download` takes.
                let messages = messages.map(|mut list| {
                    for m in &mut list {
                        for a in c.attachments(m.id).unwrap_or_default() {
                            if !m.text.is_empty() {
                                m.text.push(' ');
                            }
                            m.text.push_str(&format!(
                                "[attachment {}:{} {}]",
                                m.timestamp_ms,
                                a.index,
                                a.describe()
                            ));
                        }
                    }
                    list
                });
                // Group names (issue 8): known groups, then pending invites.
                let mut names: Vec<(AccountId, String)> = c
                    .groups()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|g| (g.id, g.name))
                    .collect();
                for i in c.group_invites().unwrap_or_default() {
                    if !names.iter().any(|(g, _)| *g == i.group) {
                        names.push((i.group, i.name));
                    }
                }
                self.send(NetEvent::GroupNames(names));
                match (conversations, messages) {
                    (Ok(conversations), Ok(messages)) => self.send(NetEvent::Snapshot {
                        conversations,
                        open,
                        messages,
                    }),
                    (Err(e), _) | (_, Err(e)) => {
                        self.done("reading the store", Err(e.to_string()));
                    }
                }
            }
            Cmd::Sync => {
                // One poll at a time.
                if self.syncing.swap(true, Ordering::SeqCst) {
                    self.send(NetEvent::Synced(Ok(SyncSummary::default())));
                    return;
                }
                let unread_before = self.unread();
                let r = c.sync().await;
                self.syncing.store(false, Ordering::SeqCst);
                let incoming = match &r {
                    Ok(r) if r.new_messages > 0 => self.new_incoming(&unread_before),
                    _ => Vec::new(),
                };
                self.send(NetEvent::Synced(
                    r.map(|r| SyncSummary {
                        new_messages: r.new_messages,
                        new_requests: r.new_requests,
                        receipts: r.receipts,
                        unsent: r.unsent,
                        typing: r.typing,
                        incoming,
                    })
                    .map_err(|e| e.to_string()),
                ));
            }
            Cmd::Send {
                peer,
                text,
                local_id,
            } => {
                let result = c
                    .send_text(&peer, &text)
                    .await
                    .map(|s| s.timestamp_ms)
                    .map_err(|e| e.to_string());
                self.send(NetEvent::SendDone { local_id, result });
            }
            Cmd::SendGroup {
                group,
                text,
                local_id,
            } => {
                let result = c
                    .send_group_text(&group, &text)
                    .await
                    .map(|s| s.timestamp_ms)
                    .map_err(|e| e.to_string());
                self.send(NetEvent::SendDone { local_id, result });
            }
            Cmd::AcceptGroup(group) => {
                let r = c
                    .accept_group_invite(&group)
                    .await
                    .map_err(|e| e.to_string());
                self.done("joined the group", r);
            }
            Cmd::DeclineGroup(group) => {
                let r = c.decline_group_invite(&group).map_err(|e| e.to_string());
                self.done("group invite declined", r);
            }
            Cmd::Group(op) => {
                let (what, r) = match op {
                    GroupOp::Create { name, members } => (
                        "group created".to_string(),
                        c.create_group(&name, &members).await.map(drop),
                    ),
                    GroupOp::Add { group, members } => (
                        "members added".to_string(),
                        c.add_group_members(&group, &members).await,
                    ),
                    GroupOp::Remove { group, members } => (
                        "members removed".to_string(),
                        c.remove_group_members(&group, &members).await,
                    ),
                    GroupOp::Leave(group) => {
                        ("left the group".to_string(), c.leave_group(&group).await)
                    }
                    GroupOp::Rename { group, name } => (
                        "group renamed".to_string(),
                        c.rename_group(&group, &name).await,
                    ),
                    GroupOp::Info(group) => {
                        // Fetch the current state first; show what we hold.
                        let _ = c.refresh_group(&group).await;
                        match c.group_info(&group) {
                            Ok(v) => (crate::app::group_info_text(&v), Ok(())),
                            Err(e) => ("group info".to_string(), Err(e)),
                        }
                    }
                };
                self.done(&what, r.map_err(|e| e.to_string()));
            }
            Cmd::MarkRead(peer) => {
                if let Err(e) = c.read_conversation(&peer, None).await {
                    self.done("marking read", Err(e.to_string()));
                }
                self.send(NetEvent::MarkedRead(peer));
            }
            Cmd::Accept(peer) => {
                let r = c.accept(&peer).await.map_err(|e| e.to_string());
                self.done("request accepted", r);
            }
            Cmd::Decline(peer) => {
                let r = c.decline(&peer).await.map_err(|e| e.to_string());
                self.done("request declined", r);
            }
            Cmd::Block(peer) => {
                let r = c.block(&peer).await.map_err(|e| e.to_string());
                self.done("blocked", r);
            }
            Cmd::Unblock(peer) => {
                let r = c.unblock(&peer).map_err(|e| e.to_string());
                self.done("unblocked", r);
            }
            Cmd::Unsend { peer, timestamp_ms } => {
                let r = if is_group(&peer) {
                    c.unsend_group(&peer, &c.account_id(), timestamp_ms).await
                } else {
                    c.unsend(&peer, timestamp_ms).await
                }
                .map_err(|e| e.to_string());
                self.done("message unsent", r);
            }
            Cmd::SetDisappearing { peer, setting } => {
                let r = c
                    .set_disappearing(&peer, setting)
                    .await
                    .map_err(|e| e.to_string());
                self.done("disappearing messages updated", r);
            }
            Cmd::SetSetting { setting, on } => {
                let store = c.profile().store();
                let r = match setting {
                    Setting::ReadReceipts => store.set_read_receipts(on),
                    Setting::TypingIndicators => store.set_typing_indicators(on),
                    Setting::LinkPreviews => store.set_link_previews(on),
                    Setting::NotifyCommand if on => Ok(()),
                    Setting::NotifyCommand => store.remove_setting(NOTIFY_COMMAND_KEY).map(drop),
                    Setting::NotifyBell => store.set_bool_setting(BELL_KEY, on),
                    Setting::NotifyText => store.set_bool_setting(NOTIFY_TEXT_KEY, on),
                };
                if let Err(e) = r {
                    self.done("saving the setting", Err(e.to_string()));
                }
                self.send(NetEvent::Settings(self.settings()));
            }
            Cmd::Typing { peer, started } => {
                // Best effort: indicators are never retried (§13).
                let _ = c.send_typing(&peer, started).await;
            }
            Cmd::PreviewHintShown => {
                let store = c.profile().store();
                if let Err(e) = store.set_bool_setting(PREVIEW_HINT_KEY, true) {
                    self.done("saving the setting", Err(e.to_string()));
                }
            }
            Cmd::SetNotifyCommand(command) => {
                let store = c.profile().store();
                let r = match command {
                    Some(cmd) => store.set_setting(NOTIFY_COMMAND_KEY, &cmd),
                    None => store.remove_setting(NOTIFY_COMMAND_KEY).map(drop),
                };
                if let Err(e) = r {
                    self.done("saving the setting", Err(e.to_string()));
                }
                self.send(NetEvent::Settings(self.settings()));
            }
            Cmd::OpenAttachment {
                timestamp_ms,
                index,
            } => {
                let r = async {
                    let m = c
                        .message_at(timestamp_ms)
                        .map_err(|e| e.to_string())?
                        .ok_or_else(|| format!("no message sent at {timestamp_ms}"))?;
                    let path = c.open_copy(m.id, index).await.map_err(|e| e.to_string())?;
                    let opener =
                        std::env::var("UMBRA_OPENER").unwrap_or_else(|_| "xdg-open".to_string());
                    run_detached(&[opener, path.display().to_string()]).await
                }
                .await;
                self.done("opening the attachment", r);
            }
            Cmd::Notify {
                peer_short,
                text,
                command,
                bell: _,
            } => {
                let Some(argv) = command
                    .as_deref()
                    .and_then(|cmd| notify_argv(cmd, &peer_short, text.as_deref()))
                else {
                    return;
                };
                if let Err(e) = run_detached(&argv).await {
                    self.done("notify command", Err(e));
                }
            }
        }
    }
}

/// Starts `argv` (no shell, no terminal I/O) and reaps it off the runtime.
async fn run_detached(argv: &[String]) -> Result<(), String> {
    let Some((program, args)) = argv.split_first() else {
        return Ok(());
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{program}: {e}"))?;
    // Reaped in a blocking thread so no zombie is left.
    tokio::task::spawn_blocking(move || child.wait())
        .await
        .map_err(|e| e.to_string())?
        .map(drop)
        .map_err(|e| format!("{program}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_has_no_text_unless_given() {
        assert_eq!(
            notify_argv("notify-send -u low", "05ab…cd", None),
            Some(vec![
                "notify-send".to_string(),
                "-u".to_string(),
                "low".to_string(),
                "05ab…cd".to_string()
            ])
        );
        let argv = notify_argv("notify-send", "05ab…cd", Some("hi; rm -rf /"));
        // The text is one argument, never interpreted by a shell.
        assert_eq!(
            argv,
            Some(vec![
                "notify-send".to_string(),
                "05ab…cd".to_string(),
                "hi; rm -rf /".to_string()
            ])
        );
        assert_eq!(notify_argv("   ", "05ab…cd", Some("x")), None);
    }

    /// The link-preview explanation is remembered in the profile: a later
    /// run's settings say it was shown.
    #[tokio::test]
    async fn the_preview_hint_is_remembered_in_the_profile() {
        let dir = tempfile::tempdir().expect("tempdir");
        let seed = umbra_proto::mnemonic::AccountSeed::new_umbra(&[7; 32]);
        let open = || {
            let profile = umbra_client::profile::Profile::open(dir.path(), None)
                .or_else(|_| umbra_client::profile::Profile::create(dir.path(), &seed, None))
                .expect("profile");
            let network = umbra_proto::network::NetworkConfig {
                name: "offline".into(),
                registry_keys: vec![umbra_proto::rpc::encoding::Ed25519Hex(
                    umbra_crypto::Ed25519Keypair::from_seed(&[1; 32]).public(),
                )],
                threshold: 1,
                swarm_params: None,
                registry_urls: vec![],
                seed_nodes: vec![],
                file_server: None,
            };
            let client = Client::open(profile, network, Default::default()).expect("client");
            let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
            Net::new(Arc::new(client), tx)
        };
        let net = open();
        assert!(!net.settings().preview_hint_shown);
        net.execute(Cmd::PreviewHintShown).await;
        drop(net);
        assert!(open().settings().preview_hint_shown);
    }
}
