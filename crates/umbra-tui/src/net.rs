//! The network side of `umbra chat` (issue 7, "Architecture"): each
//! [`Cmd`] runs in its own background tokio task against the shared
//! [`Client`] and reports back as [`NetEvent`]s over a channel, so the UI
//! loop never waits on the network. Store reads ([`Cmd::Load`]) are local
//! and quick; everything that touches the swarm (send, sync, receipts,
//! accept, …) may take seconds or fail, and only its event says so.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::mpsc::UnboundedSender;
use umbra_client::client::Client;

use crate::app::{Cmd, NetEvent, Setting, Settings, SyncSummary};

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
                let r = c.sync().await;
                self.syncing.store(false, Ordering::SeqCst);
                self.send(NetEvent::Synced(
                    r.map(|r| SyncSummary {
                        new_messages: r.new_messages,
                        new_requests: r.new_requests,
                        receipts: r.receipts,
                        unsent: r.unsent,
                        typing: r.typing,
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
                let r = c
                    .unsend(&peer, timestamp_ms)
                    .await
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
        }
    }
}
