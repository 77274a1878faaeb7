//! The ledger of every message the load generator sent: who to whom, the
//! hash of its plaintext, when it was sent, whether and when the swarm
//! acknowledged it (and under which storage hash), and every time a
//! recipient's sync delivered it. The end-of-run exactly-once check reads it.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

/// One sent message.
#[derive(Debug, Clone)]
struct Entry {
    sender: u32,
    recipient: u32,
    body_hash: [u8; 32],
    sent_at: Instant,
    /// The storage hash the swarm confirmed, once acknowledged.
    acked: Option<String>,
    /// Storage hashes under which the recipient's syncs delivered it (one
    /// element when delivered exactly once).
    delivered: Vec<String>,
    /// Deliveries whose sender, recipient or plaintext did not match.
    mismatched: u32,
}

/// What a delivery was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The first delivery of a known message, with its latency from send.
    First(Duration),
    /// A second (or later) delivery of the same message.
    Duplicate,
    /// Sender, recipient or plaintext hash differ from what was sent.
    Mismatch,
    /// No message with that ID was sent.
    Unknown,
}

/// The ledger (shared by every simulated account).
#[derive(Debug, Default)]
pub struct Ledger {
    entries: Mutex<Vec<Entry>>,
}

/// The exactly-once verdict over acknowledged messages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Messages sent (acknowledged or not).
    pub sent: usize,
    /// Messages a swarm acknowledged (at least one verified member result).
    pub acked: usize,
    /// Acknowledged messages delivered exactly once with a matching hash.
    pub delivered_once: usize,
    /// Acknowledged messages never delivered.
    pub lost: usize,
    /// Messages delivered more than once (under distinct storage hashes).
    pub duplicated: usize,
    /// Deliveries that did not match what was sent (sender, recipient, hash).
    pub mismatched: usize,
    /// Unacknowledged messages (every try failed) that were delivered anyway.
    pub unacked_delivered: usize,
    /// Delivered under a storage hash other than the acknowledged one.
    pub wrong_storage_hash: usize,
}

impl Ledger {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records a message about to be sent; returns its ID.
    pub fn sent(&self, sender: u32, recipient: u32, body_hash: [u8; 32], at: Instant) -> u64 {
        self.sent_with(sender, recipient, at, |_| body_hash)
    }

    /// Records a message whose plaintext hash depends on its ID (the body
    /// carries the ID); returns the ID.
    pub fn sent_with(
        &self,
        sender: u32,
        recipient: u32,
        at: Instant,
        body_hash: impl FnOnce(u64) -> [u8; 32],
    ) -> u64 {
        let mut e = self.lock();
        let id = e.len() as u64;
        e.push(Entry {
            sender,
            recipient,
            body_hash: body_hash(id),
            sent_at: at,
            acked: None,
            delivered: Vec::new(),
            mismatched: 0,
        });
        id
    }

    /// Records the swarm's acknowledgement of message `id`.
    pub fn acked(&self, id: u64, storage_hash: &str) {
        if let Some(e) = self.lock().get_mut(id as usize) {
            e.acked = Some(storage_hash.to_string());
        }
    }

    /// Records that `recipient`'s sync decrypted message `id` from `sender`
    /// with plaintext hash `body_hash`, stored under `storage_hash`.
    pub fn delivered(
        &self,
        id: u64,
        sender: u32,
        recipient: u32,
        body_hash: [u8; 32],
        storage_hash: &str,
        at: Instant,
    ) -> Delivery {
        let mut g = self.lock();
        let Some(e) = g.get_mut(id as usize) else {
            return Delivery::Unknown;
        };
        if e.sender != sender || e.recipient != recipient || e.body_hash != body_hash {
            e.mismatched += 1;
            return Delivery::Mismatch;
        }
        e.delivered.push(storage_hash.to_string());
        if e.delivered.len() == 1 {
            Delivery::First(at.saturating_duration_since(e.sent_at))
        } else {
            Delivery::Duplicate
        }
    }

    /// Acknowledged messages to `recipient` not delivered yet.
    pub fn pending_for(&self, recipient: u32) -> usize {
        self.lock()
            .iter()
            .filter(|e| e.recipient == recipient && e.acked.is_some() && e.delivered.is_empty())
            .count()
    }

    /// Recipients with acknowledged but undelivered messages.
    pub fn recipients_pending(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self
            .lock()
            .iter()
            .filter(|e| e.acked.is_some() && e.delivered.is_empty())
            .map(|e| e.recipient)
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Acknowledged storage hashes by recipient (for the swarm check).
    pub fn acked_hashes(&self) -> BTreeMap<u32, Vec<String>> {
        let mut m: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        for e in self.lock().iter() {
            if let Some(h) = &e.acked {
                m.entry(e.recipient).or_default().push(h.clone());
            }
        }
        m
    }

    /// The exactly-once verdict.
    pub fn verdict(&self) -> Verdict {
        let g = self.lock();
        let mut v = Verdict {
            sent: g.len(),
            ..Verdict::default()
        };
        for e in g.iter() {
            v.mismatched += e.mismatched as usize;
            let mut distinct = e.delivered.clone();
            distinct.sort();
            distinct.dedup();
            if distinct.len() > 1 || e.delivered.len() > 1 {
                v.duplicated += 1;
            }
            match &e.acked {
                Some(h) => {
                    v.acked += 1;
                    match e.delivered.len() {
                        0 => v.lost += 1,
                        1 if &e.delivered[0] == h => v.delivered_once += 1,
                        1 => v.wrong_storage_hash += 1,
                        _ => {}
                    }
                }
                None if !e.delivered.is_empty() => v.unacked_delivered += 1,
                None => {}
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_counts_lost_duplicated_and_mismatched() {
        let l = Ledger::default();
        let t = Instant::now();
        let a = l.sent(1, 2, [1; 32], t);
        let b = l.sent(1, 3, [2; 32], t);
        let c = l.sent(2, 3, [3; 32], t);
        let d = l.sent(3, 1, [4; 32], t);
        l.acked(a, "ha");
        l.acked(b, "hb");
        l.acked(c, "hc");
        assert!(matches!(
            l.delivered(a, 1, 2, [1; 32], "ha", t),
            Delivery::First(_)
        ));
        assert_eq!(
            l.delivered(c, 2, 3, [3; 32], "hc", t),
            Delivery::First(Duration::ZERO)
        );
        assert_eq!(l.delivered(c, 2, 3, [3; 32], "hc2", t), Delivery::Duplicate);
        assert_eq!(l.delivered(d, 3, 1, [9; 32], "hd", t), Delivery::Mismatch);
        assert_eq!(l.delivered(99, 3, 1, [9; 32], "hx", t), Delivery::Unknown);
        assert_eq!(l.recipients_pending(), vec![3]);
        let v = l.verdict();
        assert_eq!(v.sent, 4);
        assert_eq!(v.acked, 3);
        assert_eq!(v.delivered_once, 1);
        assert_eq!(v.lost, 1, "b was never delivered");
        assert_eq!(v.duplicated, 1, "c came twice");
        assert_eq!(v.mismatched, 1);
    }
}
