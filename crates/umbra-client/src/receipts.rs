//! Read-receipt batching (`messages.md` §12): at most one receipt message
//! per conversation per window ([`RECEIPT_WINDOW_MS`], 2 s), carrying every
//! timestamp read in that window.
//!
//! The first read after a quiet window goes out at once; reads inside the
//! window are queued and go out together when it has passed, at the next
//! flush ([`crate::client::Client::flush_receipts`], called by every read
//! and every sync, and by long-running front ends on a timer). The queue is
//! kept in the encrypted store so that timestamps read by one short-lived
//! command are sent by the next one. Timestamps leave the queue only once
//! their receipt message has gone out ([`due`] then [`sent`]): a send that
//! fails (network down, no path, timeout) leaves them queued for a later
//! flush, at most one attempt per conversation per window.
//!
//! This module only keeps the queue; whether receipts may be sent at all
//! (setting, approval, blocking) is decided by the client.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use umbra_proto::identity::AccountId;

use crate::store::{LocalStore, StoreError};

/// The batching window (§12).
pub const RECEIPT_WINDOW_MS: u64 = 2_000;

/// The most timestamps one conversation queues (older ones are dropped).
pub const MAX_PENDING: usize = 1_000;

const RECEIPTS_BLOB: &str = "receipt_batches";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Batch {
    /// When the last receipt message of this conversation was sent or
    /// attempted (ms): the start of its current window.
    last_sent_ms: u64,
    /// Timestamps read whose receipt message has not gone out yet.
    pending: Vec<u64>,
}

type Batches = BTreeMap<String, Batch>;

fn load(store: &LocalStore) -> Result<Batches, StoreError> {
    Ok(store
        .blob(RECEIPTS_BLOB)?
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default())
}

fn save(store: &LocalStore, b: &Batches) -> Result<(), StoreError> {
    match serde_json::to_vec(b) {
        Ok(bytes) => store.put_blob(RECEIPTS_BLOB, &bytes),
        Err(_) => Ok(()),
    }
}

/// Queues the sent timestamps of messages just read in `peer`'s conversation.
pub fn queue(store: &LocalStore, peer: &AccountId, timestamps: &[u64]) -> Result<(), StoreError> {
    if timestamps.is_empty() {
        return Ok(());
    }
    let mut all = load(store)?;
    let b = all.entry(peer.to_string()).or_default();
    for t in timestamps {
        if !b.pending.contains(t) {
            b.pending.push(*t);
        }
    }
    if b.pending.len() > MAX_PENDING {
        let excess = b.pending.len() - MAX_PENDING;
        b.pending.drain(..excess);
    }
    save(store, &all)
}

/// The batches whose window has passed at `now_ms` (`window_ms` after the
/// conversation's last attempt): each returned entry is one receipt message
/// to send. The attempt starts the conversation's window at `now_ms`, so a
/// failing network is retried at most once per window and a concurrent
/// flush does not send the same batch again; the timestamps stay queued
/// until [`sent`] says the message went out. A batch whose send fails is
/// therefore sent by a later flush, and nothing is lost to a store error.
pub fn due(
    store: &LocalStore,
    now_ms: u64,
    window_ms: u64,
) -> Result<Vec<(AccountId, Vec<u64>)>, StoreError> {
    let mut all = load(store)?;
    let mut due = Vec::new();
    let mut changed = false;
    all.retain(|peer, b| {
        if b.pending.is_empty() {
            // Nothing queued: keep the entry only while its window runs.
            let keep = now_ms < b.last_sent_ms.saturating_add(window_ms);
            changed |= !keep;
            return keep;
        }
        let never_sent = b.last_sent_ms == 0;
        if never_sent
            || now_ms >= b.last_sent_ms.saturating_add(window_ms)
            || now_ms < b.last_sent_ms
        {
            match peer.parse::<AccountId>() {
                Ok(p) => due.push((p, b.pending.clone())),
                Err(_) => {
                    changed = true;
                    return false;
                }
            }
            b.last_sent_ms = now_ms;
            changed = true;
        }
        true
    });
    if changed {
        save(store, &all)?;
    }
    Ok(due)
}

/// Drops `timestamps` from `peer`'s queue: their receipt message went out
/// (or may never go: receipts turned off, conversation no longer approved).
/// Timestamps queued since [`due`] returned them stay queued.
pub fn sent(store: &LocalStore, peer: &AccountId, timestamps: &[u64]) -> Result<(), StoreError> {
    let mut all = load(store)?;
    let Some(b) = all.get_mut(&peer.to_string()) else {
        return Ok(());
    };
    let before = b.pending.len();
    b.pending.retain(|t| !timestamps.contains(t));
    if b.pending.len() != before {
        save(store, &all)?;
    }
    Ok(())
}

/// Timestamps queued for `peer` and not sent yet.
pub fn pending(store: &LocalStore, peer: &AccountId) -> Result<Vec<u64>, StoreError> {
    Ok(load(store)?
        .remove(&peer.to_string())
        .map(|b| b.pending)
        .unwrap_or_default())
}

/// Drops `peer`'s queue (blocked, declined, or receipts turned off).
pub fn forget(store: &LocalStore, peer: &AccountId) -> Result<(), StoreError> {
    let mut all = load(store)?;
    if all.remove(&peer.to_string()).is_some() {
        save(store, &all)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LocalKey;

    fn peer(n: u8) -> AccountId {
        AccountId::new(umbra_proto::identity::IdPrefix::Standard, [n; 32])
    }

    /// [`due`], every batch then sent successfully.
    fn take_due(s: &LocalStore, now: u64, window: u64) -> Vec<(AccountId, Vec<u64>)> {
        let batches = due(s, now, window).unwrap();
        for (p, ts) in &batches {
            sent(s, p, ts).unwrap();
        }
        batches
    }

    #[test]
    fn one_message_per_window_with_every_timestamp() {
        let s = LocalStore::open_in_memory(&LocalKey::from_bytes([9; 32])).unwrap();
        let (a, b) = (peer(1), peer(2));
        // The first read goes out at once.
        queue(&s, &a, &[10]).unwrap();
        assert_eq!(take_due(&s, 1_000, 2_000), vec![(a, vec![10])]);
        // Reads inside the window wait, and are merged.
        queue(&s, &a, &[11, 12]).unwrap();
        queue(&s, &a, &[12, 13]).unwrap();
        queue(&s, &b, &[20]).unwrap();
        assert_eq!(take_due(&s, 1_500, 2_000), vec![(b, vec![20])]);
        assert!(take_due(&s, 2_999, 2_000).is_empty());
        assert_eq!(pending(&s, &a).unwrap(), vec![11, 12, 13]);
        assert_eq!(take_due(&s, 3_000, 2_000), vec![(a, vec![11, 12, 13])]);
        assert!(pending(&s, &a).unwrap().is_empty());
        // A clock that went backwards does not hold receipts forever.
        queue(&s, &a, &[14]).unwrap();
        assert_eq!(take_due(&s, 100, 2_000), vec![(a, vec![14])]);
        forget(&s, &a).unwrap();
        queue(&s, &a, &[15]).unwrap();
        assert_eq!(take_due(&s, 101, 2_000), vec![(a, vec![15])]);
    }

    #[test]
    fn a_batch_whose_send_failed_stays_queued_and_is_retried_once_per_window() {
        let s = LocalStore::open_in_memory(&LocalKey::from_bytes([9; 32])).unwrap();
        let a = peer(1);
        queue(&s, &a, &[10, 11]).unwrap();
        // Attempted at 1 000, the send failed: nothing is marked sent.
        assert_eq!(due(&s, 1_000, 2_000).unwrap(), vec![(a, vec![10, 11])]);
        assert_eq!(pending(&s, &a).unwrap(), vec![10, 11]);
        // The attempt started the window: no second try inside it.
        assert!(due(&s, 2_999, 2_000).unwrap().is_empty());
        // A read during the retried send is queued and not dropped by it.
        assert_eq!(due(&s, 3_000, 2_000).unwrap(), vec![(a, vec![10, 11])]);
        queue(&s, &a, &[12]).unwrap();
        sent(&s, &a, &[10, 11]).unwrap();
        assert_eq!(pending(&s, &a).unwrap(), vec![12]);
        // What was sent is not sent again; the rest goes next window.
        assert!(due(&s, 4_999, 2_000).unwrap().is_empty());
        assert_eq!(take_due(&s, 5_000, 2_000), vec![(a, vec![12])]);
        assert!(pending(&s, &a).unwrap().is_empty());
        assert!(due(&s, 9_000, 2_000).unwrap().is_empty());
    }
}
