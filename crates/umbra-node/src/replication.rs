//! The node's background work (`swarms.md` §6, §7, §9, §10):
//! - the expiry sweep (at start and every 10 s) and metric sampling;
//! - hand-over when a new epoch is adopted: push every account's messages to
//!   its new owners that were not old owners, then drop what this node no
//!   longer owns once enough new owners hold it;
//! - catch-up pushes to peers that missed a store (marks, every 30 s);
//! - the pull of a rejoining member from its swarm peers;
//! - picking up a new registry file.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use umbra_crypto::Ed25519Public;
use umbra_proto::rpc::node_req::{
    MAX_PUSH_BODY, PATH_PUSH, PushItem, encode_push_split, encode_tombstones_split,
};
use umbra_proto::swarm::{NodeRecord, RegistryDocument};

use crate::fanout::node_post;
use crate::peer::{pull_from, to_push_item, to_push_tombstone};
use crate::registry::Transition;
use crate::state::Node;
use crate::storage::{StoredMessage, Tombstone};

/// Deletes expired messages now and then every `every`.
pub async fn sweeper(node: Node, every: Duration) {
    loop {
        let now = node.now_ms();
        match node.store.sweep_expired(now).await {
            Ok(n) if n > 0 => {
                node.metrics.swept.inc_by(n as u64);
                tracing::debug!(swept = n, "expired messages deleted");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "expiry sweep failed"),
        }
        if let Ok(n) = node.store.count().await {
            node.metrics.stored_messages.set(n as i64);
        }
        if let Ok(n) = node.store.db_size_bytes().await {
            node.metrics.db_size_bytes.set(n as i64);
        }
        node.limiter.shrink();
        tokio::time::sleep(every).await;
    }
}

/// Pushes `msgs` to `target` in bodies of at most 9 MB; true when every
/// body was answered `200`.
async fn push_to(node: &Node, target: &NodeRecord, msgs: &[StoredMessage]) -> bool {
    push_with_tombstones(node, target, msgs, Vec::new()).await
}

/// Pushes tombstones with their proofs (in the first bodies, each at most
/// 9 MB) and messages to `target`.
async fn push_with_tombstones(
    node: &Node,
    target: &NodeRecord,
    msgs: &[StoredMessage],
    tombstones: Vec<Tombstone>,
) -> bool {
    let items: Vec<PushItem> = msgs.iter().cloned().filter_map(to_push_item).collect();
    let mut bodies = Vec::new();
    if !tombstones.is_empty() {
        let tombs: Vec<_> = tombstones
            .into_iter()
            .filter_map(to_push_tombstone)
            .collect();
        match encode_tombstones_split(&tombs, MAX_PUSH_BODY) {
            Ok(b) => bodies.extend(b),
            Err(_) => return false,
        }
    }
    match encode_push_split(&items, MAX_PUSH_BODY) {
        Ok(b) => bodies.extend(b),
        Err(_) => return false,
    }
    for body in bodies {
        match node_post(node, target, PATH_PUSH, body, Duration::from_secs(30)).await {
            Ok(r) if r.status == 200 => {}
            Ok(r) => {
                tracing::debug!(status = r.status.as_u16(), "push refused");
                return false;
            }
            Err(e) => {
                tracing::debug!(error = %e, "push failed");
                return false;
            }
        }
    }
    node.metrics.pushed_messages.inc_by(items.len() as u64);
    true
}

fn members_owning(
    doc: &RegistryDocument,
    account: &umbra_proto::identity::AccountId,
) -> Vec<NodeRecord> {
    doc.members_for(account).into_iter().cloned().collect()
}

/// A hand-over that still has targets to reach (§7.4).
struct PendingHandOver {
    account: umbra_proto::identity::AccountId,
    targets: Vec<NodeRecord>,
    /// New owners known to hold the messages.
    holders: usize,
    /// Holders needed before a node that no longer owns the account drops its copy.
    needed: usize,
    since: tokio::time::Instant,
}

/// Drops this node's copy of `account` when it no longer owns it and
/// enough new owners hold the messages (§10).
async fn drop_if_handed_over(
    node: &Node,
    account: &umbra_proto::identity::AccountId,
    holders: usize,
    needed: usize,
) {
    if node.registry().owns(account) || holders < needed {
        return;
    }
    let now = node.now_ms();
    let Ok(msgs) = node.store.messages_for_push(account, now).await else {
        return;
    };
    let hashes = msgs.into_iter().map(|m| m.hash).collect();
    if let Err(e) = node.store.forget(account, hashes).await {
        tracing::warn!(error = %e, "cannot drop handed-over messages");
    }
}

/// Hand-over (§7.1, §10) for one epoch transition. Returns the hand-overs
/// with failed pushes, to retry.
async fn hand_over(node: &Node, t: &Transition) -> Vec<PendingHandOver> {
    // Without a previous epoch (a first start) the old owners are unknown;
    // pushing everything to everyone would only repeat what the swarm holds.
    let Some(old_doc) = &t.old else {
        return Vec::new();
    };
    let me = node.public();
    let now = node.now_ms();
    let Ok(owners) = node.store.owners(now).await else {
        return Vec::new();
    };
    let mut failed = Vec::new();
    for account in owners {
        let old: BTreeSet<Ed25519Public> = members_owning(old_doc, &account)
            .into_iter()
            .map(|r| r.ed25519)
            .collect();
        let new_owners = members_owning(&t.new, &account);
        let targets: Vec<&NodeRecord> = new_owners
            .iter()
            .filter(|r| r.ed25519 != me && !old.contains(&r.ed25519))
            .collect();
        let still_mine = new_owners.iter().any(|r| r.ed25519 == me);
        if targets.is_empty() && still_mine {
            continue;
        }
        let Ok(msgs) = node.store.messages_for_push(&account, now).await else {
            continue;
        };
        if msgs.is_empty() {
            continue;
        }
        // Old owners still listed hold the data already (§10).
        let mut holders = new_owners
            .iter()
            .filter(|r| old.contains(&r.ed25519) && r.ed25519 != me)
            .count();
        let needed = new_owners.len().div_ceil(2);
        let mut missed = Vec::new();
        for target in targets {
            if push_to(node, target, &msgs).await {
                holders += 1;
            } else {
                missed.push(target.clone());
            }
        }
        if !still_mine {
            drop_if_handed_over(node, &account, holders, needed).await;
        }
        if !missed.is_empty() {
            failed.push(PendingHandOver {
                account,
                targets: missed,
                holders,
                needed,
                since: tokio::time::Instant::now(),
            });
        }
    }
    failed
}

/// Runs hand-overs for every adopted epoch, retrying failed pushes every
/// `retry_every` for at most `retry_for`; after that window a node that no
/// longer owns the account keeps the messages until they expire (§10).
pub async fn hand_overs(
    node: Node,
    mut transitions: tokio::sync::mpsc::UnboundedReceiver<Transition>,
    retry_every: Duration,
    retry_for: Duration,
) {
    let mut pending: Vec<PendingHandOver> = Vec::new();
    loop {
        tokio::select! {
            t = transitions.recv() => {
                let Some(t) = t else { return };
                tracing::info!(epoch = t.new.epoch(), "hand-over for new epoch");
                pending.extend(hand_over(&node, &t).await);
            }
            _ = tokio::time::sleep(retry_every), if !pending.is_empty() => {
                let now = node.now_ms();
                let mut still = Vec::new();
                for mut p in pending.drain(..) {
                    if p.since.elapsed() > retry_for {
                        continue;
                    }
                    let msgs = node.store.messages_for_push(&p.account, now).await.unwrap_or_default();
                    if msgs.is_empty() {
                        continue;
                    }
                    let mut missed = Vec::new();
                    for target in std::mem::take(&mut p.targets) {
                        if push_to(&node, &target, &msgs).await {
                            p.holders += 1;
                        } else {
                            missed.push(target);
                        }
                    }
                    drop_if_handed_over(&node, &p.account, p.holders, p.needed).await;
                    if !missed.is_empty() {
                        p.targets = missed;
                        still.push(p);
                    }
                }
                pending = still;
            }
        }
    }
}

/// Catch-up (§6): pushes to every marked peer what it may have missed.
pub async fn catch_up(node: Node, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        catch_up_once(&node).await;
    }
}

/// One catch-up round over every mark.
pub async fn catch_up_once(node: &Node) {
    let Ok(marks) = node.store.catchup_marks().await else {
        return;
    };
    node.metrics.catchup_pending.set(marks.len() as i64);
    for (peer_key, mark) in marks {
        let key = Ed25519Public::from_bytes(peer_key);
        let (record, peer_swarm, doc) = {
            let reg = node.registry();
            let Some(doc) = reg.current().cloned() else {
                return;
            };
            (doc.node(&key).cloned(), doc.swarm_of_node(&key), doc)
        };
        let (Some(record), Some(swarm)) = (record, peer_swarm) else {
            // The peer left the registry: hand-over covers it now.
            let _ = node.store.clear_catchup_mark(peer_key).await;
            continue;
        };
        node.catchup_dirty
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&peer_key);
        let now = node.now_ms();
        let mut from = mark;
        let mut ok = true;
        loop {
            let Ok(batch) = node
                .store
                .since(from, 2_000, crate::peer::SINCE_PAGE_BYTES, now)
                .await
            else {
                ok = false;
                break;
            };
            let msgs: Vec<StoredMessage> = batch
                .messages
                .into_iter()
                .map(|m| m.message)
                .filter(|m| doc.swarm_of(&m.owner) == Some(swarm))
                .collect();
            let tombs: Vec<Tombstone> = batch
                .tombstones
                .into_iter()
                .filter(|t| doc.swarm_of(&t.owner) == Some(swarm))
                .collect();
            if (!msgs.is_empty() || !tombs.is_empty())
                && !push_with_tombstones(node, &record, &msgs, tombs).await
            {
                ok = false;
                break;
            }
            match batch.next_seq {
                Some(n) => {
                    // The peer has everything below `n` now: a later
                    // failure resends from here, not from the first mark.
                    let _ = node.store.advance_catchup_mark(peer_key, n).await;
                    from = n;
                }
                None => break,
            }
        }
        // A change the peer missed during this round keeps its mark.
        let missed_again = node
            .catchup_dirty
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&peer_key);
        if ok && !missed_again {
            tracing::info!(peer = %hex::encode(&peer_key[..4]), "peer caught up");
            let _ = node.store.clear_catchup_mark(peer_key).await;
        }
    }
}

/// Where a rejoining member records how far it pulled from each peer.
fn cursor_path(node: &Node) -> PathBuf {
    node.config.data_dir.join("pull-cursors.json")
}

/// A rejoining member pulls from every swarm peer what they inserted since
/// the last pull (§6). Runs once the node is ready. The peers are pulled
/// concurrently and each peer's cursor is saved as soon as its pull ends,
/// so a slow or hostile peer delays neither the others nor their cursors.
pub async fn pull_on_start(node: Node) {
    let mut rx = node.epoch_tx.subscribe();
    while !node.registry().is_ready() {
        if rx.changed().await.is_err() {
            return;
        }
    }
    let path = cursor_path(&node);
    let mut cursors: HashMap<String, u64> = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let peers = node.registry().peers();
    let mut pulls: futures::stream::FuturesUnordered<_> = peers
        .into_iter()
        .map(|peer| {
            let key = hex::encode(peer.ed25519.as_bytes());
            let from = cursors.get(&key).copied().unwrap_or(0);
            let node = &node;
            async move { (key, pull_from(node, &peer, from).await) }
        })
        .collect();
    while let Some((key, pulled)) = futures::StreamExt::next(&mut pulls).await {
        match pulled {
            Ok(next) => {
                cursors.insert(key, next);
                save_cursors(&path, &cursors);
            }
            Err(e) => tracing::info!(peer = %&key[..8], error = %e, "pull from peer failed"),
        }
    }
}

/// Writes the pull cursors (through a temporary file, so a crash leaves the
/// old or the new cursors, never half of them).
fn save_cursors(path: &std::path::Path, cursors: &HashMap<String, u64>) {
    let Ok(bytes) = serde_json::to_vec(cursors) else {
        return;
    };
    if crate::state::write_replacing(path, &bytes).is_err() {
        tracing::warn!("cannot save the pull cursors");
    }
}

/// Re-reads the registry file whenever it changes.
pub async fn watch_registry_file(node: Node, path: PathBuf, every: Duration) {
    let mut last: Option<std::time::SystemTime> = None;
    loop {
        if let Ok(meta) = std::fs::metadata(&path) {
            let modified = meta.modified().ok();
            if modified != last {
                last = modified;
                match std::fs::read(&path) {
                    Ok(bytes) => {
                        if let Err(e) = node.offer_registry(&bytes) {
                            tracing::warn!(error = %e, file = %path.display(), "registry file refused");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot read registry file"),
                }
            }
        }
        tokio::time::sleep(every).await;
    }
}
