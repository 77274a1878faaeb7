//! The event stream of `subscribe` (`docs/API.md`, "Events"): after each
//! background sync (and after the daemon sends a message) the local store
//! is compared with what was already reported, and new messages, read
//! receipts, new message requests and typing changes become events.
//!
//! The [`Watcher`] keeps the high-water mark of message row IDs, the
//! outgoing messages already reported read, the known request peers and the
//! peers currently typing. Its first [`Watcher::scan`] only records the
//! current state, so a (re)started daemon does not replay history.

use std::collections::HashSet;
use std::sync::Mutex;

use serde_json::{Value, json};
use umbra_client::client::SyncReport;
use umbra_client::store::{Direction, LocalStore, Message, MessageId, MessageStatus, StoreError};
use umbra_proto::identity::AccountId;

/// What has already been reported.
#[derive(Debug, Default)]
struct Seen {
    primed: bool,
    max_id: Option<MessageId>,
    read: HashSet<MessageId>,
    requests: HashSet<AccountId>,
    typing: HashSet<AccountId>,
}

/// Turns store changes into events.
#[derive(Debug, Default)]
pub struct Watcher {
    seen: Mutex<Seen>,
}

/// The API name of a direction.
pub fn direction_str(d: Direction) -> &'static str {
    match d {
        Direction::In => "in",
        Direction::Out => "out",
    }
}

/// The API name of a message status.
pub fn status_str(s: MessageStatus) -> &'static str {
    match s {
        MessageStatus::Sending => "sending",
        MessageStatus::Sent => "sent",
        MessageStatus::Failed => "failed",
        MessageStatus::Delivered => "delivered",
        MessageStatus::Read => "read",
    }
}

/// A `message` event.
fn message_event(m: &Message, request: bool) -> Value {
    json!({
        "type": "message",
        "peer": m.peer.to_string(),
        "author": m.author.to_string(),
        "direction": direction_str(m.direction),
        "timestamp": m.timestamp_ms,
        "text": m.display_text(),
        "status": status_str(m.status),
        "request": request,
    })
}

impl Watcher {
    /// A watcher that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Compares the store with what was reported and returns the new events,
    /// oldest message first. `report` is the sync just done (`None` after a
    /// local change): its typing list is diffed; without one the typing
    /// state is left as it is.
    pub fn scan(
        &self,
        store: &LocalStore,
        report: Option<&SyncReport>,
    ) -> Result<Vec<Value>, StoreError> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let mut events = Vec::new();
        let mut new_max = seen.max_id;
        let mut new_read = Vec::new();
        let mut new_requests = Vec::new();
        for conv in store.conversations()? {
            let mut fresh: Vec<Message> = Vec::new();
            for m in store.messages(&conv.peer, None)? {
                if new_max.is_none_or(|x| m.id > x) {
                    new_max = Some(m.id);
                }
                let is_new = seen.max_id.is_none_or(|x| m.id > x);
                if m.direction == Direction::Out
                    && m.status == MessageStatus::Read
                    && !seen.read.contains(&m.id)
                {
                    new_read.push(m.id);
                    if seen.primed && !is_new {
                        events.push(json!({
                            "type": "receipt",
                            "peer": m.peer.to_string(),
                            "timestamp": m.timestamp_ms,
                            "status": "read",
                        }));
                    }
                }
                if is_new {
                    fresh.push(m);
                }
            }
            if conv.is_request && !seen.requests.contains(&conv.peer) {
                new_requests.push(conv.peer);
                if seen.primed {
                    let first = fresh.iter().find(|m| m.direction == Direction::In);
                    events.push(json!({
                        "type": "request",
                        "peer": conv.peer.to_string(),
                        "timestamp": first.map(|m| m.timestamp_ms),
                        "text": first.map(Message::display_text),
                    }));
                }
            }
            if seen.primed {
                events.extend(fresh.iter().map(|m| message_event(m, conv.is_request)));
            }
        }
        seen.max_id = new_max;
        seen.read.extend(new_read);
        seen.requests.extend(new_requests);
        if let Some(r) = report {
            let now: HashSet<AccountId> = r.typing.iter().copied().collect();
            if seen.primed {
                let mut started: Vec<_> = now.difference(&seen.typing).collect();
                let mut stopped: Vec<_> = seen.typing.difference(&now).collect();
                started.sort_by_key(|p| p.to_string());
                stopped.sort_by_key(|p| p.to_string());
                for p in started {
                    events.push(json!({"type": "typing", "peer": p.to_string(), "typing": true}));
                }
                for p in stopped {
                    events.push(json!({"type": "typing", "peer": p.to_string(), "typing": false}));
                }
            }
            seen.typing = now;
        }
        seen.primed = true;
        Ok(events)
    }

    /// Forgets a peer's request state (after accept/decline/block), so a new
    /// request from it is reported again.
    pub fn forget_request(&self, peer: &AccountId) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.requests.remove(peer);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use umbra_client::store::{Disappearing, LocalKey, NewMessage};
    use umbra_proto::identity::AccountKeys;

    fn account(n: u8) -> AccountId {
        AccountKeys::from_seed(&[n; 32]).account_id()
    }

    fn insert(store: &LocalStore, peer: AccountId, author: AccountId, ts: u64, text: &str) {
        store
            .insert_message(&NewMessage {
                peer,
                direction: if author == peer {
                    Direction::In
                } else {
                    Direction::Out
                },
                author,
                timestamp_ms: ts,
                received_at_ms: ts,
                text: text.into(),
                status: if author == peer {
                    MessageStatus::Delivered
                } else {
                    MessageStatus::Sent
                },
                hash: None,
                disappearing: Disappearing::OFF,
                expires_at_ms: None,
            })
            .unwrap();
    }

    #[test]
    fn first_scan_primes_then_new_messages_requests_receipts_and_typing_are_reported() {
        let store = LocalStore::open_in_memory(&LocalKey::from_bytes([1; 32])).unwrap();
        let (me, alice, carol) = (account(1), account(2), account(3));
        insert(&store, alice, alice, 1000, "old");
        store.set_approved_by_us(&alice, true).unwrap();
        let w = Watcher::new();
        assert!(
            w.scan(&store, None).unwrap().is_empty(),
            "history is not replayed"
        );

        insert(&store, alice, alice, 2000, "hi");
        insert(&store, alice, me, 3000, "reply");
        insert(&store, carol, carol, 4000, "who are you");
        let ev = w.scan(&store, None).unwrap();
        let types: Vec<&str> = ev.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(types.iter().filter(|t| **t == "message").count(), 3);
        let req = ev.iter().find(|e| e["type"] == "request").unwrap();
        assert_eq!(req["peer"], carol.to_string());
        assert_eq!(req["text"], "who are you");
        let hi = ev.iter().find(|e| e["text"] == "hi").unwrap();
        assert_eq!(hi["direction"], "in");
        assert_eq!(hi["author"], alice.to_string());
        assert_eq!(hi["timestamp"], 2000);
        assert_eq!(hi["request"], false);
        let reply = ev.iter().find(|e| e["text"] == "reply").unwrap();
        assert_eq!(reply["direction"], "out");
        assert!(w.scan(&store, None).unwrap().is_empty(), "reported once");

        store.mark_outgoing_read(&alice, &[3000]).unwrap();
        let ev = w.scan(&store, None).unwrap();
        assert_eq!(
            ev,
            vec![
                json!({"type":"receipt","peer":alice.to_string(),"timestamp":3000,"status":"read"})
            ]
        );

        let typing = SyncReport {
            typing: vec![alice],
            ..SyncReport::default()
        };
        let ev = w.scan(&store, Some(&typing)).unwrap();
        assert_eq!(
            ev,
            vec![json!({"type":"typing","peer":alice.to_string(),"typing":true})]
        );
        assert!(w.scan(&store, Some(&typing)).unwrap().is_empty());
        assert!(
            w.scan(&store, None).unwrap().is_empty(),
            "no report: unchanged"
        );
        let ev = w.scan(&store, Some(&SyncReport::default())).unwrap();
        assert_eq!(
            ev,
            vec![json!({"type":"typing","peer":alice.to_string(),"typing":false})]
        );
    }
}
