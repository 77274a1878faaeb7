//! The messaging client (`messages.md` §5, §7–14): sending (recipient copy
//! and sync copy through onion paths), syncing (poll, decrypt, de-duplicate,
//! apply), message requests and blocking, read receipts and typing
//! indicators (off by default), disappearing messages, and unsend.
//!
//! All decisions about what a message means happen here; the store
//! ([`crate::store`]) only keeps state and the network ([`crate::net`]) only
//! carries requests.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use umbra_proto::identity::{AccountId, AccountKeys};
use umbra_proto::message::protos::{
    DataMessage, MessageRequestResponse, ReceiptMessage, TypingMessage, UnsendRequest, content,
    receipt_message, typing_message,
};
use umbra_proto::message::{Content, Opened, open_envelope, seal_content};
use umbra_proto::network::NetworkConfig;
use umbra_proto::path::{GuardState, PathConfig};
use umbra_proto::rpc::Namespace;
use umbra_transport::{Clock, SystemClock};

use crate::net::{NetError, Network, RpcReply};
use crate::profile::Profile;
use crate::store::{
    Direction, Disappearing, DisappearingMode, MAX_STORED_MS, Message, MessageStatus, NewMessage,
    StoreError,
};

/// The default TTL of a stored message: 14 days.
pub const DEFAULT_TTL_MS: u64 = 14 * 86_400_000;
/// TTL of typing indicators.
pub const TYPING_TTL_MS: u64 = 20_000;
/// A typing indicator is shown at most this long after its STARTED (§13).
pub const TYPING_SHOW_MS: u64 = 15_000;
/// The longest disappearing timer a receiver honours (§14.1), seconds.
pub const MAX_TIMER_S: u32 = 1_209_600;

const GUARDS_BLOB: &str = "guards";
const REGISTRY_BLOB: &str = "registry";
/// The swarm member `sync` polled last (hex Ed25519), for its `last_hash`.
const SYNC_NODE_BLOB: &str = "sync_node";

/// A client failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The network could not carry the request.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The local store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A node refused the request.
    #[error("the swarm refused the request ({status}): {text}")]
    Refused {
        /// The RPC status.
        status: u16,
        /// The node's text.
        text: String,
    },
    /// Encrypting a message failed.
    #[error("cannot encrypt the message: {0}")]
    Encrypt(String),
    /// A user error (unknown message, blocked peer, …).
    #[error("{0}")]
    Invalid(String),
    /// A group item or operation failed (`groups.md`; see [`crate::groups`]).
    #[error("group: {0}")]
    Group(String),
    /// The swarm did not answer usefully (a timeout, a malformed reply, no
    /// member confirming a store): worth trying again later.
    #[error("the swarm did not answer: {0}")]
    Swarm(String),
}

impl ClientError {
    /// Whether the failure lies in the item being processed (a number the
    /// store cannot hold, a swarm hash already taken, a group item that does
    /// not apply, a request it led to that the swarm refuses for good: bad,
    /// unauthorised, forbidden) rather than in this device or the network:
    /// processing the same item again can never succeed.
    pub fn is_about_the_item(&self) -> bool {
        matches!(
            self,
            ClientError::Store(StoreError::OutOfRange(_) | StoreError::HashInUse)
                | ClientError::Invalid(_)
                | ClientError::Group(_)
                | ClientError::Encrypt(_)
                | ClientError::Refused {
                    status: 400 | 401 | 403 | 404,
                    ..
                }
        )
    }
}

/// What one `sync` brought.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// New visible messages stored (including sync copies of our own).
    pub new_messages: usize,
    /// Messages that were requests (from unknown accounts).
    pub new_requests: usize,
    /// Read receipts applied.
    pub receipts: usize,
    /// Unsend requests applied.
    pub unsent: usize,
    /// Blobs that could not be decrypted or verified, or whose content can
    /// never be applied (a time beyond 2^63 − 1 ms, …): dropped.
    pub undecryptable: usize,
    /// Messages from blocked accounts (dropped).
    pub blocked: usize,
    /// Peers currently typing (typing indicators on).
    pub typing: Vec<AccountId>,
    /// Messages the swarm returned over the wire, new or already seen
    /// (the per-node `last_hash` keeps this near the number of new ones).
    pub retrieved: usize,
}

/// A message just sent.
#[derive(Debug, Clone)]
pub struct Sent {
    /// Its sent time `T`.
    pub timestamp_ms: u64,
    /// The route of the recipient copy: guard, hop, hop, destination (Ed25519 keys).
    pub route: Vec<[u8; 32]>,
    /// Swarm members whose result verified.
    pub accepted_by: usize,
}

/// One client: a profile and its network.
pub struct Client {
    profile: Profile,
    net: Network,
    /// The read-receipt batching window, ms (§12; tests change it).
    receipt_window_ms: std::sync::atomic::AtomicU64,
}

fn data_message(body: Option<String>) -> DataMessage {
    DataMessage {
        body,
        ..DataMessage::default()
    }
}

pub(crate) fn expiration(content: &mut Content, d: Disappearing) {
    match d.mode {
        DisappearingMode::Off => {}
        DisappearingMode::AfterRead => {
            content.expiration_type = Some(content::ExpirationType::DeleteAfterRead as i32);
            content.expiration_timer = Some(d.timer_s);
        }
        DisappearingMode::AfterSend => {
            content.expiration_type = Some(content::ExpirationType::DeleteAfterSend as i32);
            content.expiration_timer = Some(d.timer_s);
        }
    }
}

fn disappearing_of(content: &Content) -> Disappearing {
    let timer_s = content.expiration_timer.unwrap_or(0).min(MAX_TIMER_S);
    let mode = match content.expiration_type {
        Some(t) if t == content::ExpirationType::DeleteAfterRead as i32 && timer_s > 0 => {
            DisappearingMode::AfterRead
        }
        Some(t) if t == content::ExpirationType::DeleteAfterSend as i32 && timer_s > 0 => {
            DisappearingMode::AfterSend
        }
        _ => DisappearingMode::Off,
    };
    Disappearing {
        mode,
        timer_s: if mode == DisappearingMode::Off {
            0
        } else {
            timer_s
        },
    }
}

fn is_timer_update(dm: &DataMessage) -> bool {
    dm.flags.unwrap_or(0) & 2 != 0
}

impl Client {
    /// Opens the client of `profile` on `network`.
    pub fn open(
        profile: Profile,
        network: NetworkConfig,
        path_config: PathConfig,
    ) -> Result<Client, ClientError> {
        Self::open_with_clock(profile, network, path_config, Arc::new(SystemClock))
    }

    /// As [`Client::open`], with a given clock (tests).
    pub fn open_with_clock(
        profile: Profile,
        network: NetworkConfig,
        path_config: PathConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Client, ClientError> {
        let guards = profile
            .store()
            .blob(GUARDS_BLOB)?
            .and_then(|b| serde_json::from_slice::<GuardState>(&b).ok());
        let registry = profile.store().blob(REGISTRY_BLOB)?;
        let net = Network::new(
            network,
            path_config,
            guards.as_ref(),
            registry.as_deref(),
            clock,
        )?;
        Ok(Client {
            profile,
            net,
            receipt_window_ms: crate::receipts::RECEIPT_WINDOW_MS.into(),
        })
    }

    /// The account ID.
    pub fn account_id(&self) -> AccountId {
        self.profile.keys().account_id()
    }

    /// The profile.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The network layer.
    pub fn network(&self) -> &Network {
        &self.net
    }

    fn keys(&self) -> &AccountKeys {
        self.profile.keys()
    }

    /// Saves the guards and the registry for the next start.
    pub async fn persist(&self) -> Result<(), ClientError> {
        if let Some(g) = self.net.take_guard_state().await
            && let Ok(bytes) = serde_json::to_vec(&g)
        {
            self.profile.store().put_blob(GUARDS_BLOB, &bytes)?;
        }
        if let Some(r) = self.net.registry_bytes().await {
            self.profile.store().put_blob(REGISTRY_BLOB, &r)?;
        }
        Ok(())
    }

    /// Network time in ms.
    pub async fn now(&self) -> u64 {
        self.net.network_now().await
    }

    /// Encrypts `content` (timestamp `t`) to `to` and stores it in `to`'s
    /// swarm, namespace 0 (a public inbox: no signature).
    async fn store_to(
        &self,
        to: &AccountId,
        content: &Content,
        t: u64,
        ttl_ms: u64,
    ) -> Result<RpcReply, ClientError> {
        let blob = seal_content(
            self.keys(),
            to,
            content,
            t,
            umbra_crypto::random_bytes::<32>(),
        )
        .map_err(|e| ClientError::Encrypt(e.to_string()))?;
        let params = json!({
            "pubkey": to.to_string(),
            "timestamp": t,
            "ttl": ttl_ms,
            "data": STANDARD.encode(&blob),
        });
        let reply = self.net.storage_request(to, "store", params).await?;
        if reply.status != 200 {
            return Err(ClientError::Refused {
                status: reply.status,
                text: reply.error_text(),
            });
        }
        Ok(reply)
    }

    /// Members of a `store` reply whose per-node result carries a hash.
    fn accepted(reply: &RpcReply) -> (usize, Option<String>) {
        let Some(swarm) = reply.body.get("swarm").and_then(Value::as_object) else {
            return (0, None);
        };
        let mut n = 0;
        let mut hash = None;
        for r in swarm.values() {
            if let Some(h) = r.get("hash").and_then(Value::as_str) {
                n += 1;
                hash = Some(h.to_string());
            }
        }
        (n, hash)
    }

    /// Sends a control or visible message to `to` and, when `sync` is set,
    /// a sync copy (with `syncTarget`) to our own swarm. Returns the reply to
    /// the recipient copy and the hash of the sync copy.
    pub(crate) async fn send_content(
        &self,
        to: &AccountId,
        mut content: Content,
        t: u64,
        ttl_ms: u64,
        sync: Option<u64>,
    ) -> Result<(RpcReply, Option<String>), ClientError> {
        let me = self.account_id();
        let reply = if *to == me {
            None
        } else {
            Some(self.store_to(to, &content, t, ttl_ms).await?)
        };
        let mut sync_hash = None;
        if let Some(sync_ttl) = sync {
            let dm = content
                .data_message
                .get_or_insert_with(DataMessage::default);
            if *to != me {
                dm.sync_target = Some(to.to_string());
            }
            let r = self.store_to(&me, &content, t, sync_ttl).await?;
            sync_hash = Self::accepted(&r).1;
            if reply.is_none() {
                return Ok((r, sync_hash));
            }
        }
        match reply {
            Some(r) => Ok((r, sync_hash)),
            None => Err(ClientError::Invalid("nothing to send".into())),
        }
    }

    /// Sends a text message (`messages.md` §5.2, §9, §11.2 "Reply", §14).
    pub async fn send_text(&self, to: &AccountId, text: &str) -> Result<Sent, ClientError> {
        let store = self.profile.store();
        if store.conversation(to)?.is_some_and(|c| c.blocked) {
            return Err(ClientError::Invalid(
                "that account is blocked; unblock it first".into(),
            ));
        }
        let conv = store.conversation(to)?;
        // Replying to a request accepts it first (§11.2).
        if conv
            .as_ref()
            .is_some_and(|c| !c.approved_by_us && c.approved_us)
        {
            self.accept(to).await?;
        }
        // Link preview (§16): only when the setting is on; through a node.
        let preview = match crate::preview::first_https_url(text) {
            Some(url) if store.link_previews()? => {
                match crate::preview::fetch_preview(&self.net, url).await {
                    Ok(f) => Some(self.with_thumbnail(f).await),
                    Err(e) => {
                        tracing::debug!(error = %e, "sending without a link preview");
                        None
                    }
                }
            }
            _ => None,
        };
        let t = self.now().await;
        let d = conv.map(|c| c.disappearing).unwrap_or_default();
        let mut dm = data_message(Some(text.to_string()));
        dm.preview = preview.iter().map(|p| p.to_proto()).collect();
        let mut content = Content {
            data_message: Some(dm),
            ..Content::default()
        };
        expiration(&mut content, d);
        let (recipient_ttl, sync_ttl) = match d.mode {
            DisappearingMode::Off => (DEFAULT_TTL_MS, DEFAULT_TTL_MS),
            DisappearingMode::AfterSend => {
                (u64::from(d.timer_s) * 1000, u64::from(d.timer_s) * 1000)
            }
            DisappearingMode::AfterRead => (DEFAULT_TTL_MS, u64::from(d.timer_s) * 1000),
        };
        let me = self.account_id();
        let id = store.insert_message(&NewMessage {
            peer: *to,
            direction: Direction::Out,
            author: me,
            timestamp_ms: t,
            received_at_ms: t,
            text: text.to_string(),
            status: MessageStatus::Sending,
            hash: None,
            disappearing: d,
            expires_at_ms: (d.mode != DisappearingMode::Off)
                .then(|| t + u64::from(d.timer_s) * 1000),
        })?;
        store.set_approved_by_us(to, true)?;
        if let (Some(p), Some(_)) = (&preview, id) {
            crate::preview::remember(store, to, &me, t, p)?;
        }
        let result = self
            .send_content(to, content, t, recipient_ttl, Some(sync_ttl))
            .await;
        let Some(id) = id else {
            return Err(ClientError::Invalid("duplicate message".into()));
        };
        match result {
            Ok((reply, sync_hash)) => {
                store.set_status(id, MessageStatus::Sent)?;
                if let Some(h) = sync_hash {
                    store.set_hash(id, &h)?;
                }
                let _ = self.persist().await;
                Ok(Sent {
                    timestamp_ms: t,
                    route: reply.route.clone(),
                    accepted_by: Self::accepted(&reply).0,
                })
            }
            Err(e) => {
                store.set_status(id, MessageStatus::Failed)?;
                Err(e)
            }
        }
    }

    /// Accepts a message request (§11.2): tells the requester and our other
    /// devices, and fetches the images and voice notes its messages carry
    /// (up to the auto-download size; the others stay for `download`).
    pub async fn accept(&self, peer: &AccountId) -> Result<(), ClientError> {
        let t = self.now().await;
        let content = Content {
            message_request_response: Some(MessageRequestResponse {
                is_approved: true,
                ..Default::default()
            }),
            ..Content::default()
        };
        self.send_content(peer, content, t, DEFAULT_TTL_MS, Some(DEFAULT_TTL_MS))
            .await?;
        self.profile.store().set_approved_by_us(peer, true)?;
        // Images and voice notes the request brought, now that it may
        // (attachments.md §1): what sync would have fetched.
        if let Err(e) = self.download_pending_of(peer).await {
            tracing::debug!(error = %e, "fetching the accepted request's attachments failed");
        }
        Ok(())
    }

    /// Declines a request: deletes the conversation and its messages, and
    /// their copies in our swarm. Nothing is sent (§11.2).
    pub async fn decline(&self, peer: &AccountId) -> Result<(), ClientError> {
        let hashes: Vec<String> = self
            .profile
            .store()
            .messages(peer, None)?
            .into_iter()
            .filter_map(|m| m.hash)
            .collect();
        self.profile.store().delete_conversation(peer)?;
        // A group's request: its pending invite goes with it.
        if self.group_invites()?.iter().any(|i| i.group == *peer) {
            self.decline_group_invite(peer)?;
        }
        if !hashes.is_empty() {
            let _ = self.delete_own(&hashes).await;
        }
        Ok(())
    }

    /// Blocks: declines and remembers the block (§11.2).
    pub async fn block(&self, peer: &AccountId) -> Result<(), ClientError> {
        self.decline(peer).await?;
        self.profile.store().set_blocked(peer, true)?;
        Ok(())
    }

    /// Unblocks (earlier messages are not restored).
    pub fn unblock(&self, peer: &AccountId) -> Result<(), ClientError> {
        self.profile.store().set_blocked(peer, false)?;
        Ok(())
    }

    /// Deletes messages from our own swarm (signed `delete`).
    async fn delete_own(&self, hashes: &[String]) -> Result<RpcReply, ClientError> {
        let me = self.account_id();
        let mut signed = b"delete".to_vec();
        for h in hashes {
            signed.extend_from_slice(h.as_bytes());
        }
        let params = json!({
            "pubkey": me.to_string(),
            "pubkey_ed25519": hex::encode(self.keys().ed25519_public().as_bytes()),
            "messages": hashes,
            "signature": STANDARD.encode(self.keys().ed25519().sign(&signed)),
        });
        Ok(self.net.storage_request(&me, "delete", params).await?)
    }

    /// Shortens messages in our own swarm (`expire` with `shorten`, §14.2).
    async fn shorten_own(&self, hashes: &[String], expiry: u64) -> Result<RpcReply, ClientError> {
        let me = self.account_id();
        let mut signed = format!("expireshorten{expiry}").into_bytes();
        for h in hashes {
            signed.extend_from_slice(h.as_bytes());
        }
        let params = json!({
            "pubkey": me.to_string(),
            "pubkey_ed25519": hex::encode(self.keys().ed25519_public().as_bytes()),
            "messages": hashes,
            "expiry": expiry,
            "shorten": true,
            "signature": STANDARD.encode(self.keys().ed25519().sign(&signed)),
        });
        Ok(self.net.storage_request(&me, "expire", params).await?)
    }

    /// The fetched preview with its thumbnail uploaded as an ordinary
    /// attachment (§16.1 step 5); without one when there is none or the
    /// upload fails (the preview still goes with URL and title).
    async fn with_thumbnail(
        &self,
        fetched: crate::preview::Fetched,
    ) -> crate::preview::LinkPreview {
        let mut preview = fetched.preview;
        let Some(thumb) = fetched.thumbnail else {
            return preview;
        };
        let uploaded = match self.file_server() {
            Ok(server) => {
                crate::attachments::transfer::upload_legacy(
                    &self.net,
                    &server,
                    &thumb.jpeg,
                    None,
                    "preview image",
                )
                .await
            }
            Err(e) => Err(e),
        };
        match (uploaded, u32::try_from(thumb.jpeg.len())) {
            (Ok(up), Ok(size)) => {
                preview.image = Some(crate::preview::PreviewImage {
                    url: up.url,
                    key: hex::encode(&*up.key),
                    digest: Some(hex::encode(up.digest)),
                    size,
                    content_type: "image/jpeg".into(),
                    width: Some(thumb.width),
                    height: Some(thumb.height),
                });
            }
            (Err(e), _) => tracing::debug!(error = %e, "sending the preview without its image"),
            (_, Err(_)) => {}
        }
        preview
    }

    /// Unsends our message sent at `timestamp_ms` to `peer` (§10).
    pub async fn unsend(&self, peer: &AccountId, timestamp_ms: u64) -> Result<(), ClientError> {
        let me = self.account_id();
        let store = self.profile.store();
        let msg = store
            .message_by_author_ts(peer, &me, timestamp_ms)?
            .ok_or_else(|| {
                ClientError::Invalid(format!(
                    "no message of ours at {timestamp_ms} in that conversation"
                ))
            })?;
        let t = self.now().await;
        let content = unsend_content(&me, timestamp_ms);
        self.send_content(peer, content, t, DEFAULT_TTL_MS, Some(DEFAULT_TTL_MS))
            .await?;
        if let Some(h) = &msg.hash {
            let _ = self.delete_own(std::slice::from_ref(h)).await;
        }
        store.mark_deleted(msg.id)?;
        Ok(())
    }

    /// Changes the conversation's disappearing-messages setting and tells
    /// the peer with a timer-update message (§14.1).
    pub async fn set_disappearing(
        &self,
        peer: &AccountId,
        d: Disappearing,
    ) -> Result<(), ClientError> {
        let store = self.profile.store();
        store.set_disappearing(peer, d)?;
        let t = self.now().await;
        let mut dm = data_message(None);
        dm.flags = Some(2);
        let mut content = Content {
            data_message: Some(dm),
            ..Content::default()
        };
        expiration(&mut content, d);
        self.send_content(peer, content, t, DEFAULT_TTL_MS, Some(DEFAULT_TTL_MS))
            .await?;
        Ok(())
    }

    /// Sends a typing indicator when allowed (§13): setting on, approved both ways, not blocked.
    pub async fn send_typing(&self, peer: &AccountId, started: bool) -> Result<bool, ClientError> {
        let store = self.profile.store();
        let allowed = store.typing_indicators()?
            && store
                .conversation(peer)?
                .is_some_and(|c| c.approved_by_us && c.approved_us && !c.blocked);
        if !allowed {
            return Ok(false);
        }
        let t = self.now().await;
        let action = if started {
            typing_message::Action::Started
        } else {
            typing_message::Action::Stopped
        };
        let content = Content {
            typing_message: Some(TypingMessage {
                timestamp: t,
                action: action as i32,
            }),
            ..Content::default()
        };
        // Not retried, never synced.
        let _ = self
            .send_content(peer, content, t, TYPING_TTL_MS, None)
            .await;
        Ok(true)
    }

    /// Sets the read-receipt batching window (default 2 s, §12).
    pub fn set_receipt_window(&self, window: std::time::Duration) {
        let ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        self.receipt_window_ms
            .store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// Sends the batched read receipts whose window has passed: one
    /// ReceiptMessage per conversation with every queued timestamp (§12).
    /// Returns how many receipt messages went out. A batch whose send fails
    /// stays queued and is tried again by a flush after its window; only a
    /// batch that went out (or may no longer be sent) leaves the queue.
    /// Front ends that stay open call this on a timer; reads and syncs call
    /// it too.
    pub async fn flush_receipts(&self) -> Result<usize, ClientError> {
        let store = self.profile.store();
        let now = self.now().await;
        let window = self
            .receipt_window_ms
            .load(std::sync::atomic::Ordering::Relaxed);
        let mut sent = 0;
        for (peer, timestamps) in crate::receipts::due(store, now, window)? {
            // Checked again: the setting or the conversation may have changed.
            let allowed = store.read_receipts()?
                && store
                    .conversation(&peer)?
                    .is_some_and(|c| c.approved_by_us && c.approved_us && !c.blocked);
            if !allowed {
                crate::receipts::sent(store, &peer, &timestamps)?;
                continue;
            }
            let t = self.now().await;
            let content = Content {
                receipt_message: Some(ReceiptMessage {
                    r#type: receipt_message::Type::Read as i32,
                    timestamp: timestamps.clone(),
                }),
                ..Content::default()
            };
            match self
                .send_content(&peer, content, t, DEFAULT_TTL_MS, None)
                .await
            {
                Ok(_) => {
                    crate::receipts::sent(store, &peer, &timestamps)?;
                    sent += 1;
                }
                Err(e) => {
                    // Kept queued for the next window's flush.
                    tracing::debug!(error = %e, "read receipt not sent; kept queued");
                }
            }
        }
        Ok(sent)
    }

    /// Lists a conversation and marks it read: sends read receipts when
    /// allowed (§12) and starts delete-after-read timers (§14).
    pub async fn read_conversation(
        &self,
        peer: &AccountId,
        since_ms: Option<u64>,
    ) -> Result<Vec<Message>, ClientError> {
        let store = self.profile.store();
        let now = self.now().await;
        let newly_read = store.mark_read(peer, now)?;
        if !newly_read.is_empty() {
            // Delete-after-read: start the timers and shorten our swarm copies.
            let mut by_expiry: std::collections::BTreeMap<u64, Vec<String>> = Default::default();
            for m in &newly_read {
                if m.disappearing.mode == DisappearingMode::AfterRead {
                    let expires = now + u64::from(m.disappearing.timer_s) * 1000;
                    store.set_expiry(m.id, now, expires)?;
                    if let Some(h) = &m.hash {
                        by_expiry.entry(expires).or_default().push(h.clone());
                    }
                }
            }
            for (expiry, hashes) in by_expiry {
                let _ = self.shorten_own(&hashes, expiry).await;
            }
            let conv = store.conversation(peer)?;
            let allowed = store.read_receipts()?
                && conv.is_some_and(|c| c.approved_by_us && c.approved_us && !c.blocked)
                && *peer != self.account_id()
                // Receipts are 1:1 only: never to a group's swarm.
                && peer.prefix() == umbra_proto::identity::IdPrefix::Standard;
            if allowed {
                // Batched (§12): queued, sent by the flush below once the
                // conversation's window has passed.
                let read: Vec<u64> = newly_read.iter().map(|m| m.timestamp_ms).collect();
                crate::receipts::queue(store, peer, &read)?;
            }
        }
        self.flush_receipts().await?;
        store.expire_due(now)?;
        Ok(store.messages(peer, since_ms)?)
    }

    /// Polls our swarm (namespace 0) and applies everything new.
    ///
    /// Polls one swarm member (the one polled last, while it stays in the
    /// swarm) and asks only for what was stored after the `last_hash` this
    /// device holds *for that node*: insertion order is per node, so each
    /// member has its own. If another member answers (a `421` moved us),
    /// paging restarts from that node's own hash, or from the start
    /// (already-seen messages are skipped by hash).
    pub async fn sync(&self) -> Result<SyncReport, ClientError> {
        let me = self.account_id();
        let mut report = SyncReport::default();
        let mut typing: std::collections::HashMap<AccountId, (u64, bool)> = Default::default();
        let store = self.profile.store();
        self.net
            .ensure_ready(std::time::Duration::from_secs(30))
            .await?;
        let members = self.net.swarm_of(&me).await?;
        let previous = store
            .blob(SYNC_NODE_BLOB)?
            .and_then(|b| String::from_utf8(b).ok());
        // A destination is never on the path carrying the request (onion.md
        // §10.4): members on every ready path cannot be polled now. Among
        // the others: the previous node, else one we hold a hash for, else any.
        let paths = self.net.paths().await;
        let usable: Vec<_> = members
            .iter()
            .filter(|m| {
                paths.is_empty()
                    || paths
                        .iter()
                        .any(|p| p.iter().all(|n| n.ed25519 != m.ed25519))
            })
            .collect();
        let key_hex = |n: &umbra_proto::swarm::NodeRecord| hex::encode(n.ed25519.as_bytes());
        let mut with_hash = Vec::new();
        for n in &usable {
            if store.last_hash(Namespace(0), &key_hex(n))?.is_some() {
                with_hash.push(*n);
            }
        }
        fn pick<'a>(
            from: &[&'a umbra_proto::swarm::NodeRecord],
        ) -> Option<&'a umbra_proto::swarm::NodeRecord> {
            let i = crate::net::draw(from.len() as u64);
            from.get(usize::try_from(i).unwrap_or(0)).copied()
        }
        let mut node = usable
            .iter()
            .copied()
            .find(|n| previous.as_deref() == Some(key_hex(n).as_str()))
            .or_else(|| pick(&with_hash))
            .or_else(|| pick(&usable))
            .or_else(|| members.first())
            .cloned()
            .ok_or(NetError::NoSwarm)?;
        let mut node_hex = hex::encode(node.ed25519.as_bytes());
        let mut last_hash = store.last_hash(Namespace(0), &node_hex)?;
        for _page in 0..20 {
            let t = self.now().await;
            let mut params = json!({
                "pubkey": me.to_string(),
                "pubkey_ed25519": hex::encode(self.keys().ed25519_public().as_bytes()),
                "timestamp": t,
                "signature": STANDARD.encode(self.keys().ed25519().sign(format!("retrieve{t}").as_bytes())),
            });
            let mut used_hash = false;
            if let Some(h) = &last_hash {
                params["last_hash"] = json!(h);
                used_hash = true;
            }
            // In tiny networks the planner may draw a path holding `node`
            // (no destination): draw again a few times before giving up.
            let mut polled = Err(NetError::NoSwarm);
            for _ in 0..6 {
                polled = self
                    .net
                    .request_via(vec![node.clone()], "retrieve", params.clone(), Some(me))
                    .await;
                if !matches!(
                    polled,
                    Err(NetError::Path(umbra_proto::path::PathError::NoDestination))
                ) {
                    break;
                }
            }
            let reply = match polled {
                Ok(r) => r,
                // That member is unreachable: any member, from the start.
                Err(e) => {
                    tracing::debug!(error = %e, "polled node failed; polling another member");
                    if let Some(obj) = params.as_object_mut() {
                        obj.remove("last_hash");
                    }
                    used_hash = false;
                    self.net.storage_request(&me, "retrieve", params).await?
                }
            };
            if reply.status != 200 {
                return Err(ClientError::Refused {
                    status: reply.status,
                    text: reply.error_text(),
                });
            }
            // Which node answered: its own hash chain from here on.
            let answered = reply.route.last().map(hex::encode);
            if let Some(a) = answered.filter(|a| *a != node_hex) {
                node_hex = a;
                if let Some(n) = self
                    .net
                    .swarm_of(&me)
                    .await?
                    .into_iter()
                    .find(|n| hex::encode(n.ed25519.as_bytes()) == node_hex)
                {
                    node = n;
                }
                last_hash = store.last_hash(Namespace(0), &node_hex)?;
                if used_hash {
                    // Another node's hash means nothing in this node's order.
                    continue;
                }
            }
            let messages = reply.body["messages"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            report.retrieved += messages.len();
            for m in &messages {
                let (Some(hash), Some(data), Some(expiry)) = (
                    m["hash"].as_str(),
                    m["data"].as_str(),
                    m["expiration"].as_u64(),
                ) else {
                    report.undecryptable += 1;
                    continue;
                };
                // A node may claim any expiry; the store holds up to 2^63 − 1.
                let expiry = expiry.min(MAX_STORED_MS);
                last_hash = Some(hash.to_string());
                if store.is_seen(hash)? {
                    continue;
                }
                match STANDARD
                    .decode(data)
                    .ok()
                    .and_then(|b| open_envelope(self.keys(), &b).ok())
                {
                    // Signed, but no clock reads that time: nothing to show.
                    Some(opened) if opened.timestamp_ms > MAX_STORED_MS => {
                        report.undecryptable += 1;
                    }
                    Some(opened) => {
                        match self
                            .apply(opened, hash, expiry, &mut report, &mut typing)
                            .await
                        {
                            Ok(()) => {}
                            // This message can never be applied: drop it, or
                            // it would stop every later sync at the same place.
                            Err(e) if e.is_about_the_item() => {
                                tracing::debug!(error = %e, "message dropped");
                                report.undecryptable += 1;
                            }
                            // This device or the network: the page is fetched
                            // again by the next sync, nothing is lost.
                            Err(e) => return Err(e),
                        }
                    }
                    None => report.undecryptable += 1,
                }
                store.mark_seen(hash, expiry)?;
            }
            if let Some(h) = &last_hash {
                store.set_last_hash(Namespace(0), &node_hex, h)?;
            }
            store.put_blob(SYNC_NODE_BLOB, node_hex.as_bytes())?;
            if !reply.body["more"].as_bool().unwrap_or(false) || messages.is_empty() {
                break;
            }
        }
        // Groups (issue 8): poll every group swarm this device is in.
        self.sync_groups(&mut report).await?;
        self.flush_receipts().await?;
        let now = self.now().await;
        report.typing = typing
            .into_iter()
            .filter(|(_, (t, on))| *on && now.saturating_sub(*t) <= TYPING_SHOW_MS)
            .map(|(p, _)| p)
            .collect();
        self.profile.store().expire_due(now)?;
        let _ = self.persist().await;
        Ok(report)
    }

    /// Applies one decrypted message.
    async fn apply(
        &self,
        o: Opened,
        hash: &str,
        swarm_expiry: u64,
        report: &mut SyncReport,
        typing: &mut std::collections::HashMap<AccountId, (u64, bool)>,
    ) -> Result<(), ClientError> {
        let store = self.profile.store();
        let me = self.account_id();
        let now = self.now().await;
        let from_self = o.sender == me;
        // The conversation this message belongs to.
        let sync_target = o
            .content
            .data_message
            .as_ref()
            .and_then(|d| d.sync_target.as_deref())
            .and_then(|s| s.parse::<AccountId>().ok());
        let peer = if from_self {
            sync_target.unwrap_or(me)
        } else {
            o.sender
        };
        if !from_self && store.conversation(&peer)?.is_some_and(|c| c.blocked) {
            report.blocked += 1;
            return Ok(());
        }
        // Groups (issue 8): 1:1 INVITE, PROMOTE and shared-history keys.
        if let Some(ctrl) = o
            .content
            .data_message
            .as_ref()
            .and_then(|d| d.umbra_group_control.as_ref())
        {
            return self.apply_group_direct(&o, ctrl, report).await;
        }
        let d = disappearing_of(&o.content);
        if let Some(r) = &o.content.message_request_response {
            if r.is_approved {
                if from_self {
                    store.set_approved_by_us(&peer, true)?;
                } else {
                    store.set_approved_us(&peer, true)?;
                }
            }
            return Ok(());
        }
        if let Some(u) = &o.content.unsend_request {
            // Only the author may unsend (§10).
            if u.author.parse::<AccountId>().ok() == Some(o.sender)
                && let Some(m) = store.message_by_author_ts(&peer, &o.sender, u.timestamp)?
            {
                store.mark_deleted(m.id)?;
                if let Some(h) = m.hash.filter(|_| !from_self) {
                    let _ = self.delete_own(&[h]).await;
                }
                report.unsent += 1;
            }
            return Ok(());
        }
        if let Some(r) = &o.content.receipt_message {
            if !from_self
                && store.read_receipts()?
                && r.r#type == receipt_message::Type::Read as i32
            {
                store.mark_outgoing_read(&peer, &r.timestamp)?;
                report.receipts += 1;
            }
            return Ok(());
        }
        if let Some(t) = &o.content.typing_message {
            if !from_self && store.typing_indicators()? && t.timestamp == o.timestamp_ms {
                let started = t.action == typing_message::Action::Started as i32;
                let e = typing.entry(peer).or_insert((0, false));
                if o.timestamp_ms >= e.0 {
                    *e = (o.timestamp_ms, started);
                }
            }
            return Ok(());
        }
        let Some(dm) = &o.content.data_message else {
            return Ok(());
        };
        // A visible message ends the sender's typing indicator (§13).
        if !from_self
            && let Some(e) = typing.get_mut(&peer)
            && o.timestamp_ms >= e.0
        {
            *e = (o.timestamp_ms, false);
        }
        if is_timer_update(dm) {
            store.set_disappearing(&peer, d)?;
        }
        let text = match (&dm.body, is_timer_update(dm)) {
            (Some(b), _) => b.clone(),
            (None, true) => match d.mode {
                DisappearingMode::Off => "disappearing messages turned off".to_string(),
                DisappearingMode::AfterRead => {
                    format!("disappearing messages: {} s after read", d.timer_s)
                }
                DisappearingMode::AfterSend => {
                    format!("disappearing messages: {} s after send", d.timer_s)
                }
            },
            // A message with only attachments (issue 9).
            (None, false) if !dm.attachments.is_empty() => String::new(),
            (None, false) => return Ok(()),
        };
        let (expires_at, direction) = if from_self {
            (
                (d.mode != DisappearingMode::Off)
                    .then(|| o.timestamp_ms.min(now) + u64::from(d.timer_s) * 1000),
                Direction::Out,
            )
        } else {
            let e = match d.mode {
                DisappearingMode::AfterSend => Some(swarm_expiry),
                // Shortened by another device of ours, so read there (§14.3).
                DisappearingMode::AfterRead
                    if swarm_expiry <= now + d.timer_ms()
                        && swarm_expiry < o.timestamp_ms.saturating_add(DEFAULT_TTL_MS) =>
                {
                    Some(swarm_expiry)
                }
                _ => None,
            };
            (e, Direction::In)
        };
        if expires_at.is_some_and(|e| e <= now) {
            return Ok(());
        }
        let was_request =
            !from_self && !store.conversation(&peer)?.is_some_and(|c| c.approved_by_us);
        let inserted = store.insert_message(&NewMessage {
            peer,
            direction,
            author: o.sender,
            timestamp_ms: o.timestamp_ms,
            received_at_ms: now,
            text,
            status: if from_self {
                MessageStatus::Sent
            } else {
                MessageStatus::Delivered
            },
            hash: Some(hash.to_string()),
            disappearing: d,
            expires_at_ms: expires_at,
        })?;
        if from_self {
            store.set_approved_by_us(&peer, true)?;
        } else {
            // Any visible message from them means they approved us (§11).
            store.set_approved_us(&peer, true)?;
        }
        if let Some(id) = inserted
            && !from_self
            && d.mode == DisappearingMode::AfterRead
            && expires_at.is_some()
        {
            store.mark_message_read(id, swarm_expiry.saturating_sub(d.timer_ms()))?;
        }
        // Attachments (issue 9): record them, fetch small images and voice.
        if let Some(id) = inserted
            && !dm.attachments.is_empty()
        {
            self.on_received_attachments(id, dm, was_request).await?;
        }
        if inserted.is_some()
            && let Some(p) = crate::preview::LinkPreview::from_proto(&dm.preview)
        {
            crate::preview::remember(store, &peer, &o.sender, o.timestamp_ms, &p)?;
        }
        if inserted.is_some() {
            report.new_messages += 1;
            if was_request {
                report.new_requests += 1;
            }
        }
        Ok(())
    }
}
/// The unsend request for the message `author` sent at `timestamp_ms`
/// (`messages.md` §10; groups §6.4).
pub(crate) fn unsend_content(author: &AccountId, timestamp_ms: u64) -> Content {
    Content {
        unsend_request: Some(UnsendRequest {
            timestamp: timestamp_ms,
            author: author.to_string(),
        }),
        ..Content::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only failures that another try cannot mend drop an item; the
    /// network, the swarm and this device's store make the sync stop and
    /// read the item again later.
    #[test]
    fn only_failures_of_the_item_drop_it() {
        let refused = |status| ClientError::Refused {
            status,
            text: String::new(),
        };
        for dropped in [
            ClientError::Store(StoreError::OutOfRange("message timestamp")),
            ClientError::Store(StoreError::HashInUse),
            ClientError::Group("not an INVITE".into()),
            ClientError::Invalid("no such message".into()),
            refused(400),
            refused(401),
            refused(403),
            refused(404),
        ] {
            assert!(dropped.is_about_the_item(), "{dropped:?}");
        }
        for kept in [
            ClientError::Net(NetError::NoSwarm),
            ClientError::Swarm("retrieve timed out after 10s".into()),
            ClientError::Store(StoreError::Corrupt { what: "a row" }),
            ClientError::Store(StoreError::WrongKey),
            refused(406),
            refused(421),
            refused(425),
            refused(429),
            refused(500),
            refused(503),
            refused(507),
        ] {
            assert!(!kept.is_about_the_item(), "{kept:?}");
        }
    }
}
