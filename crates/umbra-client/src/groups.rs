//! Groups (`groups.md`): the client side of [`umbra_proto::group`].
//!
//! This module owns everything a device does with a group: creating one,
//! the admin operations (add, remove, promote, rename, timer, history
//! setting) and carrying out the [`Publication`]s they return (stores to
//! namespaces 12, 13 and −11 signed with the group key, `revoke_subaccount`,
//! 1:1 INVITE/PROMOTE/history messages, notices in namespace 11), sending
//! group messages, polling the group swarm (namespaces 11, 12, 13 and −11
//! through onion paths, authenticated as a subaccount or with the group
//! key), and applying what arrives, including 1:1 invites from the
//! messaging client's `apply`.
//!
//! Polling follows the cadence of §9 ([`umbra_proto::group::due_polls`]):
//! [`Client::sync_group`] reads namespace 11 every time, 12 and 13 when
//! 60 s have passed (at once after a notice, a decryption or roster miss,
//! and 10 s after this device published), −11 every 10 minutes (at once
//! after the swarm refused our subaccount); [`Client::refresh_group`] reads
//! all of them (admin operations and accepting an invite use it; sending
//! reads 12 and 13 first as before). The namespaces due are read with one
//! onion `batch` of `retrieve`s (`storage-rpc.md` §9.13; further pages, and
//! a node refusing the batch, fall back to single `retrieve`s), so a poll is
//! one onion request whatever is due. After reading 12 and 13 an admin does
//! the housekeeping of §3.4 and §4.3 ([`umbra_proto::group::plan_upkeep`]): `expire` with
//! `extend` of the newest bundle and the current document below 15 days
//! left (stored again from its own copies when the swarm lost them),
//! `delete` of superseded documents an hour after a newer one (both
//! thresholds are a profile setting, [`Client::set_group_upkeep`]).
//!
//! Local state: one encrypted blob per group (`group:<id hex>`, JSON with
//! hex fields: the key ring, the verified state documents, the group seed
//! for admins, `member_auth` for members, last hashes, removed flag, the
//! last poll times so a restarted client keeps the cadence, and for admins
//! the newest bundle seen), an index blob
//! (`groups`), a blob of pending invites (`group-invites`) and the
//! housekeeping thresholds when changed (`group-upkeep`).
//! Group messages are kept in the messages table with the group's `03`
//! ID as the conversation peer.
//!
//! Pending invites are bounded: an account we have not approved may have
//! [`MAX_STRANGER_INVITES`] invites pending, and a stranger's invite is
//! taken only while fewer than [`MAX_PENDING_INVITES`] are pending in all;
//! one beyond either is dropped (counted as undecryptable, no request is
//! shown), an approved contact's never is. Invites whose request
//! conversation was declined or deleted, or whose inviter was blocked, are
//! forgotten at the next sync (and before a stranger's invite is refused).
//! Each pending invite keeps at most [`MAX_INVITE_HISTORY`] sealed history
//! lists.
//!
//! Shared history (§7.2 step 4) has no carrier in the spec: Umbra sends the
//! sealed key list 1:1 as an `UmbraGroupControl` of type MEMBERS_ADDED with
//! `groupId` set and the sealed bytes in `memberAuth` (the list is signed
//! with the group key inside the seal, so its authenticity does not depend
//! on the carrier).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use umbra_proto::group::control::{
    ControlType, Notice, NoticeCheck, UmbraGroupControl, open_history_keys, open_removal_notice,
    verify_invite, verify_promote,
};
use umbra_proto::group::{
    ExpandRng, GroupError, GroupKeys, GroupState, Held, KEYS_TTL_MS, KeyRing, LeavePlan,
    MESSAGE_TTL_MS, MemberAuth, MemberStatus, PollTimes, Publication, Role, StoredItem,
    UpkeepConfig, due_polls, plan_upkeep,
};
use umbra_proto::identity::{AccountId, IdPrefix};
use umbra_proto::message::protos::{DataMessage, UnsendRequest};
use umbra_proto::message::{Content, Opened};
use umbra_proto::rpc::sign::{ExpireMode, Signer, SubaccountToken};
use umbra_proto::rpc::types::{DeleteAllParams, RevokeSubaccountParams, Tokens};
use umbra_proto::rpc::{MessageHash, Namespace, NamespaceSel, sign};
use zeroize::Zeroizing;

use crate::api::{Api, ApiError, Retrieved};
use crate::client::{Client, ClientError, DEFAULT_TTL_MS, Sent, SyncReport};
use crate::store::{Direction, Disappearing, DisappearingMode, MessageStatus, NewMessage};

const INDEX_BLOB: &str = "groups";
const INVITES_BLOB: &str = "group-invites";
const UPKEEP_BLOB: &str = "group-upkeep";
/// Deadline of each group storage call (a loaded 2-core devnet can be slow).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Pages of one namespace fetched per poll.
const MAX_PAGES: usize = 20;
/// Invites pending from one account we have not approved: further ones
/// from it are dropped (a stranger can make groups at will, and each
/// verified invite rewrites the whole blob of pending invites).
pub const MAX_STRANGER_INVITES: usize = 5;
/// Pending invites in all above which a stranger's new invite is dropped
/// (an approved contact's is kept whatever the count).
pub const MAX_PENDING_INVITES: usize = 200;
/// Sealed history lists kept with one pending invite.
pub const MAX_INVITE_HISTORY: usize = 16;

fn blob_name(id: &AccountId) -> String {
    format!("group:{id}")
}

fn bad(what: &str) -> ClientError {
    ClientError::Invalid(format!("corrupt local group record: {what}"))
}

/// A secret held as lowercase hex in a stored record (the group seed,
/// `member_auth`, the key ring). Serialized as a plain JSON string, so the
/// stored format is that of a `String`; the text is zeroized on drop,
/// including when a field is overwritten. Encoding and decoding go through
/// buffers of the exact size, so no grown-and-freed copy is left behind.
#[derive(Clone, Default)]
struct SecretHex(Zeroizing<String>);

impl SecretHex {
    /// Hex of `bytes`.
    fn encode(bytes: &[u8]) -> Self {
        let mut text = vec![0u8; bytes.len() * 2];
        // Cannot fail: the buffer is exactly twice as long as `bytes`.
        let _ = hex::encode_to_slice(bytes, &mut text);
        // Hex is ASCII: the buffer becomes the string without a copy.
        Self(Zeroizing::new(String::from_utf8(text).unwrap_or_default()))
    }

    /// The bytes, or `None` when the text is not hex (odd lengths too).
    fn decode(&self) -> Option<Zeroizing<Vec<u8>>> {
        let text = self.0.as_bytes();
        let mut out = Zeroizing::new(vec![0u8; text.len() / 2]);
        hex::decode_to_slice(text, &mut out[..]).ok()?;
        Some(out)
    }
}

impl Serialize for SecretHex {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SecretHex {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|t| Self(Zeroizing::new(t)))
    }
}

/// `value` as JSON in a buffer sized exactly beforehand (a growing
/// `serde_json::to_vec` buffer would leave freed copies of the secrets).
fn secret_json<T: Serialize>(value: &T) -> Result<Zeroizing<Vec<u8>>, serde_json::Error> {
    /// Counts the bytes written.
    struct Len(usize);
    impl std::io::Write for Len {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut len = Len(0);
    serde_json::to_writer(&mut len, value)?;
    let mut out = Zeroizing::new(Vec::with_capacity(len.0));
    serde_json::to_writer(&mut *out, value)?;
    Ok(out)
}

/// What this device holds for one group (persisted, encrypted at rest).
/// The secret fields are [`SecretHex`]: zeroized on drop and overwrite.
#[derive(Serialize, Deserialize, Default)]
struct Record {
    /// `group_seed` (hex) for admins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seed: Option<SecretHex>,
    /// `member_auth` (hex) for members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    auth: Option<SecretHex>,
    /// [`KeyRing::to_bytes`] (hex).
    ring: SecretHex,
    /// The verified state documents (hex).
    docs: Vec<String>,
    /// Last hash seen per namespace.
    #[serde(default)]
    last_hash: BTreeMap<i16, String>,
    /// A removal notice for us was verified (§7.3): stop polling.
    #[serde(default)]
    removed: bool,
    /// When namespaces 12 and 13 were last read (§9 cadence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    polled_keys_ms: Option<u64>,
    /// When namespace −11 was last read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    polled_removals_ms: Option<u64>,
    /// When this device last published a bundle or state document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    published_ms: Option<u64>,
    /// A notice or a miss asked for 12 and 13 and reading them failed.
    #[serde(default)]
    keys_prompted: bool,
    /// Admins: the newest bundle seen in namespace 12 (hex), stored again
    /// if the swarm loses it (§3.4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bundle: Option<String>,
}

impl Record {
    fn poll_times(&self) -> PollTimes {
        PollTimes {
            keys_state_ms: self.polled_keys_ms,
            removals_ms: self.polled_removals_ms,
            published_ms: self.published_ms,
            keys_prompted: self.keys_prompted,
        }
    }
}

/// The housekeeping thresholds as stored (`group-upkeep` blob).
#[derive(Serialize, Deserialize)]
struct StoredUpkeep {
    extend_below_ms: u64,
    delete_superseded_after_ms: u64,
}

/// What happened during one poll of a group, beyond the report.
#[derive(Default)]
struct PollFlags {
    /// Namespaces 12 and 13 were read during this sync at this time.
    keys_read_at: Option<u64>,
    /// What they held (bundles, documents), for the admin's housekeeping.
    fetched: Option<(Vec<Retrieved>, Vec<Retrieved>)>,
    /// 12 and 13 were read after namespace 11 was fetched (on a miss or a
    /// notice): no second read in this sync.
    refreshed: bool,
    /// A notice was processed and 12 and 13 were not read after it.
    notice_pending: bool,
    /// Reading 12 and 13 on a miss failed: the missed items are read again
    /// next time, and so are 12 and 13.
    miss_read_failed: bool,
    /// We published a bundle or state document (acting on a notice).
    published_at: Option<u64>,
}

/// A verified INVITE waiting for the user to accept it.
#[derive(Serialize, Deserialize, Clone)]
struct PendingInvite {
    inviter: String,
    name: String,
    /// `member_auth` (hex).
    auth: SecretHex,
    /// Sealed history key lists that arrived before the accept (hex).
    #[serde(default)]
    history: Vec<String>,
}

/// Whether a stranger's new invite (to a group not pending yet) fits under
/// [`MAX_STRANGER_INVITES`] from `inviter` and [`MAX_PENDING_INVITES`].
fn stranger_invite_fits(invites: &BTreeMap<String, PendingInvite>, inviter: &str) -> bool {
    invites.len() < MAX_PENDING_INVITES
        && invites.values().filter(|p| p.inviter == inviter).count() < MAX_STRANGER_INVITES
}

/// A group as the user sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupView {
    /// The `03` group ID.
    pub id: AccountId,
    /// The name (from the current state document).
    pub name: String,
    /// Whether this device holds the group seed.
    pub is_admin: bool,
    /// The current generation.
    pub generation: Option<u64>,
    /// The current state version.
    pub version: u64,
    /// Delete-after-send timer in seconds (0 = off).
    pub timer_s: u32,
    /// Whether new members receive earlier keys.
    pub share_history: bool,
    /// The roster: (account, admin?, joined?).
    pub members: Vec<GroupMember>,
    /// We were removed (a verified removal notice).
    pub removed: bool,
}

impl GroupView {
    /// The JSON form shown by `umbra group … --json` and the daemon's
    /// `group.*` methods (docs/API.md).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "group_id": self.id.to_string(),
            "name": self.name,
            "admin": self.is_admin,
            "generation": self.generation,
            "version": self.version,
            "disappearing_s": self.timer_s,
            "share_history": self.share_history,
            "removed": self.removed,
            "members": self.members.iter().map(|m| serde_json::json!({
                "account_id": m.id.to_string(),
                "role": if m.admin { "admin" } else { "member" },
                "status": if m.joined { "joined" } else { "invited" },
            })).collect::<Vec<_>>(),
        })
    }
}

/// One roster entry as shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// The `05` account.
    pub id: AccountId,
    /// Admin (role 1).
    pub admin: bool,
    /// Joined (else invited).
    pub joined: bool,
}

/// A pending invite (a group message request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInvite {
    /// The group.
    pub group: AccountId,
    /// The group's name at invite time.
    pub name: String,
    /// Who invited us.
    pub inviter: AccountId,
}

/// What one poll of one group did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupSyncReport {
    /// Visible messages and status lines stored.
    pub new_messages: usize,
    /// Items dropped: undecryptable, forged, not from the roster.
    pub rejected: usize,
    /// Key bundles newly accepted.
    pub new_keys: usize,
    /// State documents that became current.
    pub new_states: usize,
    /// The swarm refused our subaccount (revoked): status and text.
    pub refused: Option<(u16, String)>,
    /// We were removed from the group by a verified notice.
    pub removed: bool,
    /// Whether namespaces 12 and 13 were read (§9: every 60 s, at once after
    /// a notice or a miss).
    pub read_keys: bool,
    /// Whether namespace −11 was read (§9: every 10 minutes).
    pub read_removals: bool,
    /// Bundles and state documents an admin kept alive (§3.4, §4.3).
    pub extended: usize,
    /// Superseded state documents an admin deleted (§4.3).
    pub deleted: usize,
    /// Bundles and state documents an admin stored again from its own
    /// copies because the swarm no longer had them (§3.4).
    pub restored: usize,
}

fn api_err(e: ApiError) -> ClientError {
    match e {
        ApiError::Refused { status, text, .. } => ClientError::Refused { status, text },
        ApiError::Path { source, .. } => ClientError::Net(source),
        // Nothing to do with the item at hand: a later try may succeed.
        e @ (ApiError::Timeout { .. }
        | ApiError::BadReply { .. }
        | ApiError::Unconfirmed { .. }) => ClientError::Swarm(e.to_string()),
        other => ClientError::Group(other.to_string()),
    }
}

fn group_err(e: GroupError) -> ClientError {
    match e {
        GroupError::NotAdmin
        | GroupError::AlreadyMember(_)
        | GroupError::NotMember(_)
        | GroupError::LastAdmin
        | GroupError::BadName { .. }
        | GroupError::TooManyMembers { .. }
        | GroupError::NotAccountId
        | GroupError::ContentTooLarge { .. } => ClientError::Invalid(e.to_string()),
        other => ClientError::Group(other.to_string()),
    }
}

/// Fetched items as [`plan_upkeep`] reads them.
fn stored(items: &[Retrieved]) -> Vec<StoredItem<'_>> {
    items
        .iter()
        .map(|m| StoredItem {
            hash: &m.hash,
            data: &m.data,
            stored_at_ms: m.timestamp,
            expiry_ms: m.expiration,
        })
        .collect()
}

fn rng() -> ExpandRng {
    ExpandRng::new(umbra_crypto::random_bytes::<32>())
}

fn control_content(ctrl: UmbraGroupControl) -> Content {
    Content {
        data_message: Some(DataMessage {
            umbra_group_control: Some(ctrl),
            ..DataMessage::default()
        }),
        ..Content::default()
    }
}

fn names(ids: &[AccountId]) -> String {
    ids.iter()
        .map(AccountId::short)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The status line of a notice (§8: "Alice added Bob").
fn notice_text(sender: &AccountId, n: &Notice) -> String {
    let s = sender.short();
    match n {
        Notice::InviteResponse { accepted: true } => format!("{s} joined the group"),
        Notice::InviteResponse { accepted: false } => format!("{s} declined the invitation"),
        Notice::MemberLeft => format!("{s} left the group"),
        Notice::MembersAdded(ids) => format!("{s} added {}", names(ids)),
        Notice::MembersRemoved(ids) => format!("{s} removed {}", names(ids)),
        Notice::MembersPromoted(ids) => format!("{s} made {} admin", names(ids)),
        Notice::NameChanged(name) => format!("{s} renamed the group to \u{201c}{name}\u{201d}"),
        Notice::DisappearingChanged(0) => format!("{s} turned disappearing messages off"),
        Notice::DisappearingChanged(t) => {
            format!("{s} set disappearing messages to {t} s after send")
        }
    }
}

impl Client {
    // ---- local records ----

    fn group_index(&self) -> Result<Vec<AccountId>, ClientError> {
        let Some(b) = self.profile().store().blob(INDEX_BLOB)? else {
            return Ok(Vec::new());
        };
        let ids: Vec<String> = serde_json::from_slice(&b).map_err(|_| bad("index"))?;
        Ok(ids.iter().filter_map(|s| s.parse().ok()).collect())
    }

    fn set_group_index(&self, ids: &[AccountId]) -> Result<(), ClientError> {
        let v: Vec<String> = ids.iter().map(ToString::to_string).collect();
        let b = serde_json::to_vec(&v).map_err(|_| bad("index"))?;
        self.profile().store().put_blob(INDEX_BLOB, &b)?;
        Ok(())
    }

    fn load_record(&self, id: &AccountId) -> Result<Option<Record>, ClientError> {
        let Some(b) = self.profile().store().blob(&blob_name(id))? else {
            return Ok(None);
        };
        let b = Zeroizing::new(b);
        Ok(Some(serde_json::from_slice(&b).map_err(|_| bad("record"))?))
    }

    /// Loads a group's state and record.
    fn load_group(&self, id: &AccountId) -> Result<(GroupState, Record), ClientError> {
        let rec = self
            .load_record(id)?
            .ok_or_else(|| ClientError::Invalid(format!("no group {}", id.short())))?;
        let admin = match &rec.seed {
            Some(s) => {
                let seed = s.decode().ok_or_else(|| bad("seed"))?;
                Some(GroupKeys::from_seed_for(&seed, id).map_err(group_err)?)
            }
            None => None,
        };
        let auth = match &rec.auth {
            Some(a) => {
                let b = a.decode().ok_or_else(|| bad("auth"))?;
                Some(MemberAuth::from_bytes(&b, id).map_err(group_err)?)
            }
            None => None,
        };
        let ring_bytes = rec.ring.decode().ok_or_else(|| bad("ring"))?;
        let ring = KeyRing::from_bytes(&ring_bytes).map_err(group_err)?;
        let docs: Vec<Vec<u8>> = rec
            .docs
            .iter()
            .filter_map(|d| hex::decode(d).ok())
            .collect();
        let st = GroupState::restore(*id, admin, auth, ring, &docs).map_err(group_err)?;
        Ok((st, rec))
    }

    /// Saves a group's state (and adds it to the index).
    fn save_group(&self, st: &GroupState, rec: &mut Record) -> Result<(), ClientError> {
        let id = st.group_id();
        // Overwriting a `SecretHex` zeroizes the old text.
        rec.seed = st
            .admin_keys()
            .map(|k| SecretHex::encode(k.seed().as_slice()));
        rec.auth = st.member_auth().map(|a| SecretHex::encode(&a.to_bytes()));
        rec.ring = SecretHex::encode(&st.keys().to_bytes().map_err(group_err)?);
        rec.docs = st.documents().map(|d| hex::encode(d.to_bytes())).collect();
        let b = secret_json(rec).map_err(|_| bad("record"))?;
        self.profile().store().put_blob(&blob_name(&id), &b)?;
        let mut idx = self.group_index()?;
        if !idx.contains(&id) {
            idx.push(id);
            self.set_group_index(&idx)?;
        }
        Ok(())
    }

    fn forget_group(&self, id: &AccountId) -> Result<(), ClientError> {
        self.profile().store().remove_blob(&blob_name(id))?;
        let idx: Vec<AccountId> = self
            .group_index()?
            .into_iter()
            .filter(|g| g != id)
            .collect();
        self.set_group_index(&idx)
    }

    fn invites(&self) -> Result<BTreeMap<String, PendingInvite>, ClientError> {
        match self.profile().store().blob(INVITES_BLOB)? {
            Some(b) => {
                let b = Zeroizing::new(b);
                serde_json::from_slice(&b).map_err(|_| bad("invites"))
            }
            None => Ok(BTreeMap::new()),
        }
    }

    fn set_invites(&self, inv: &BTreeMap<String, PendingInvite>) -> Result<(), ClientError> {
        let b = secret_json(inv).map_err(|_| bad("invites"))?;
        self.profile().store().put_blob(INVITES_BLOB, &b)?;
        Ok(())
    }

    /// Drops the invites the user has done with: the group's request
    /// conversation is gone (declined or deleted) and no join was started,
    /// or the inviter is blocked. Returns how many were dropped.
    fn prune_invites(
        &self,
        invites: &mut BTreeMap<String, PendingInvite>,
    ) -> Result<usize, ClientError> {
        let store = self.profile().store();
        let mut stale = Vec::new();
        for (key, p) in invites.iter() {
            let Ok(group) = key.parse::<AccountId>() else {
                stale.push(key.clone()); // never shown, never joinable
                continue;
            };
            let blocked = match p.inviter.parse::<AccountId>() {
                Ok(inviter) => store.conversation(&inviter)?.is_some_and(|c| c.blocked),
                Err(_) => false,
            };
            if blocked
                || (store.conversation(&group)?.is_none() && self.load_record(&group)?.is_none())
            {
                stale.push(key.clone());
            }
        }
        for key in &stale {
            invites.remove(key);
        }
        Ok(stale.len())
    }

    /// Forgets the invites [`Client::prune_invites`] finds done with, at
    /// each sync (declining a group's request forgets its invite at once;
    /// this catches the rest: an inviter blocked, a conversation deleted).
    fn prune_stored_invites(&self) -> Result<(), ClientError> {
        let mut invites = self.invites()?;
        if !invites.is_empty() && self.prune_invites(&mut invites)? > 0 {
            self.set_invites(&invites)?;
        }
        Ok(())
    }

    // ---- views ----

    /// The groups this device knows.
    pub fn groups(&self) -> Result<Vec<GroupView>, ClientError> {
        let mut out = Vec::new();
        for id in self.group_index()? {
            if let Ok(v) = self.group_info(&id) {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// The current state of a group as this device holds it.
    pub fn group_info(&self, id: &AccountId) -> Result<GroupView, ClientError> {
        let (st, rec) = self.load_group(id)?;
        let info = st.info();
        Ok(GroupView {
            id: *id,
            name: info.map(|i| i.name.clone()).unwrap_or_default(),
            is_admin: st.is_admin(),
            generation: st.generation(),
            version: st.version(),
            timer_s: info.map_or(0, |i| i.timer_s),
            share_history: info.is_some_and(|i| i.share_history),
            members: info
                .map(|i| {
                    i.members
                        .iter()
                        .map(|m| GroupMember {
                            id: m.id,
                            admin: m.role == Role::Admin,
                            joined: m.status == MemberStatus::Joined,
                        })
                        .collect()
                })
                .unwrap_or_default(),
            removed: rec.removed,
        })
    }

    /// Finds a group by `03` ID or by name (exact match, unique).
    pub fn find_group(&self, id_or_name: &str) -> Result<Option<AccountId>, ClientError> {
        if let Ok(id) = id_or_name.parse::<AccountId>() {
            return Ok((id.prefix() == IdPrefix::Group).then_some(id));
        }
        let matches: Vec<AccountId> = self
            .groups()?
            .into_iter()
            .filter(|g| g.name == id_or_name)
            .map(|g| g.id)
            .collect();
        match matches.len() {
            0 => Ok(None),
            1 => Ok(Some(matches[0])),
            n => Err(ClientError::Invalid(format!(
                "{n} groups are named {id_or_name:?}; use the group ID"
            ))),
        }
    }

    /// Invites waiting to be accepted (shown as message requests).
    pub fn group_invites(&self) -> Result<Vec<GroupInvite>, ClientError> {
        Ok(self
            .invites()?
            .iter()
            .filter_map(|(g, p)| {
                Some(GroupInvite {
                    group: g.parse().ok()?,
                    name: p.name.clone(),
                    inviter: p.inviter.parse().ok()?,
                })
            })
            .collect())
    }

    // ---- network helpers ----

    fn group_api(&self) -> Api<'_> {
        Api::new(self.network()).with_timeout(CALL_TIMEOUT)
    }

    /// Carries out an admin [`Publication`] (in the order it documents).
    async fn publish(&self, st: &GroupState, p: Publication) -> Result<(), ClientError> {
        let id = st.group_id();
        let keys = st
            .admin_keys()
            .ok_or_else(|| group_err(GroupError::NotAdmin))?;
        let signer = keys.signer();
        let api = self.group_api();
        if let Some(b) = &p.bundle {
            api.send_to_swarm(
                &id,
                Some(&signer),
                Namespace::GROUP_KEYS,
                b.to_bytes(),
                KEYS_TTL_MS,
            )
            .await
            .map_err(api_err)?;
        }
        api.send_to_swarm(
            &id,
            Some(&signer),
            Namespace::GROUP_STATE,
            p.state.to_bytes(),
            KEYS_TTL_MS,
        )
        .await
        .map_err(api_err)?;
        if !p.revoke.is_empty() {
            self.revoke_tokens(&id, keys, &p.revoke).await?;
        }
        for (_, notice) in &p.removal_notices {
            api.send_to_swarm(
                &id,
                Some(&signer),
                Namespace::GROUP_REMOVALS,
                notice,
                MESSAGE_TTL_MS,
            )
            .await
            .map_err(api_err)?;
        }
        for (to, ctrl) in &p.direct {
            self.send_content(
                to,
                control_content(ctrl.clone()),
                p.timestamp,
                DEFAULT_TTL_MS,
                Some(DEFAULT_TTL_MS),
            )
            .await?;
        }
        for (to, sealed) in &p.history {
            let ctrl = UmbraGroupControl {
                r#type: ControlType::MembersAdded as i32,
                group_id: Some(id.to_bytes().to_vec()),
                member_auth: Some(sealed.clone()),
                ..Default::default()
            };
            let t = self.now().await;
            self.send_content(to, control_content(ctrl), t, DEFAULT_TTL_MS, None)
                .await?;
        }
        if let Some(n) = p.notice {
            let t = self.now().await.max(p.timestamp);
            self.post_to_group(st, control_content(n), t).await?;
        }
        Ok(())
    }

    /// `revoke_subaccount` at the group's swarm, signed with the group key (§5.2).
    async fn revoke_tokens(
        &self,
        id: &AccountId,
        keys: &GroupKeys,
        tokens: &[SubaccountToken],
    ) -> Result<(), ClientError> {
        for chunk in tokens.chunks(50) {
            let timestamp = self.now().await;
            let auth = keys
                .signer()
                .auth(&sign::revoke_subaccount_string(timestamp, chunk));
            let params = RevokeSubaccountParams {
                pubkey: *id,
                revoke: Tokens::Many(chunk.to_vec()),
                timestamp,
                auth,
            };
            let v = serde_json::to_value(&params).map_err(|e| ClientError::Group(e.to_string()))?;
            let reply = self
                .network()
                .storage_request(id, "revoke_subaccount", v)
                .await?;
            if reply.status != 200 {
                return Err(ClientError::Refused {
                    status: reply.status,
                    text: reply.error_text(),
                });
            }
        }
        Ok(())
    }

    /// Encrypts `content` for the group and stores it in namespace 11.
    async fn post_to_group(
        &self,
        st: &GroupState,
        mut content: Content,
        t: u64,
    ) -> Result<(MessageHash, u64), ClientError> {
        content.sig_timestamp = Some(t);
        let out = st
            .encrypt(self.profile().keys(), content, umbra_crypto::random_bytes())
            .map_err(group_err)?;
        let id = st.group_id();
        let signer = self.group_signer(st)?;
        let r = self
            .group_api()
            .send_to_swarm(
                &id,
                Some(&signer),
                Namespace::GROUP_MESSAGES,
                &out.data,
                out.ttl_ms,
            )
            .await
            .map_err(api_err)?;
        Ok((r.hash, r.accepted_by.len() as u64))
    }

    fn group_signer<'a>(&self, st: &'a GroupState) -> Result<Signer<'a>, ClientError> {
        if let Some(k) = st.admin_keys() {
            return Ok(k.signer());
        }
        st.member_auth()
            .map(MemberAuth::signer)
            .ok_or_else(|| ClientError::Invalid("no credentials for this group".into()))
    }

    // ---- admin operations ----

    /// Creates a group (§7.1) with us as the first admin and `members`
    /// invited (INVITEs sent 1:1). Returns its `03` ID.
    pub async fn create_group(
        &self,
        name: &str,
        members: &[AccountId],
    ) -> Result<AccountId, ClientError> {
        self.create_group_with(name, members, false).await
    }

    /// As [`Client::create_group`], choosing whether new members may read
    /// history (`"h"`).
    pub async fn create_group_with(
        &self,
        name: &str,
        members: &[AccountId],
        share_history: bool,
    ) -> Result<AccountId, ClientError> {
        let me = self.account_id();
        if members.contains(&me) {
            return Err(ClientError::Invalid(
                "the creator is in the group already".into(),
            ));
        }
        let seed = Zeroizing::new(umbra_crypto::random_bytes::<32>());
        let now = self.now().await;
        let (st, p) = GroupState::create(&seed, &me, name, members, share_history, now, &mut rng())
            .map_err(group_err)?;
        let id = st.group_id();
        self.save_group(
            &st,
            &mut Record {
                published_ms: Some(now),
                ..Record::default()
            },
        )?;
        self.profile().store().set_approved_by_us(&id, true)?;
        self.publish(&st, p).await?;
        self.insert_status(
            &id,
            &me,
            now,
            format!("you created the group \u{201c}{name}\u{201d}"),
        )?;
        Ok(id)
    }

    /// Runs one admin operation on a group: load, change, save, publish.
    async fn admin_op(
        &self,
        id: &AccountId,
        op: impl FnOnce(&mut GroupState, u64, &mut ExpandRng) -> Result<Publication, GroupError>,
    ) -> Result<(), ClientError> {
        // Catch up first so the change applies to the current state (§4.3).
        self.refresh_group(id).await?;
        let (mut st, mut rec) = self.load_group(id)?;
        let now = self.now().await;
        let p = op(&mut st, now, &mut rng()).map_err(group_err)?;
        // Published first: if that fails, nothing is saved and the operation
        // can simply be run again (saved first, a failed publication would
        // be lost: the saved state no longer asks for it).
        self.publish(&st, p).await?;
        rec.published_ms = Some(now);
        self.save_group(&st, &mut rec)
    }

    /// Adds members (§7.2): new generation, INVITEs, MEMBERS_ADDED, and
    /// earlier keys when the group shares history.
    pub async fn add_group_members(
        &self,
        id: &AccountId,
        members: &[AccountId],
    ) -> Result<(), ClientError> {
        self.admin_op(id, |st, now, r| st.add_members(members, now, r))
            .await
    }

    /// Removes members (§7.3): new generation without them, their tokens
    /// revoked at the swarm, removal notices, MEMBERS_REMOVED.
    pub async fn remove_group_members(
        &self,
        id: &AccountId,
        members: &[AccountId],
    ) -> Result<(), ClientError> {
        self.admin_op(id, |st, now, r| st.remove_members(members, now, r))
            .await
    }

    /// Promotes a member to admin (§7.6).
    pub async fn promote_group_member(
        &self,
        id: &AccountId,
        member: &AccountId,
    ) -> Result<(), ClientError> {
        self.admin_op(id, |st, now, r| st.promote(member, now, r))
            .await
    }

    /// Renames the group (§7.5).
    pub async fn rename_group(&self, id: &AccountId, name: &str) -> Result<(), ClientError> {
        self.admin_op(id, |st, now, r| st.rename(name, now, r))
            .await
    }

    /// Sets the group's delete-after-send timer in seconds, 0 = off (§6.4, §7.5).
    pub async fn set_group_disappearing(
        &self,
        id: &AccountId,
        timer_s: u32,
    ) -> Result<(), ClientError> {
        self.admin_op(id, |st, now, r| st.set_timer(timer_s, now, r))
            .await
    }

    /// Whether members added from now on receive earlier keys (`"h"`).
    pub async fn set_group_share_history(
        &self,
        id: &AccountId,
        share: bool,
    ) -> Result<(), ClientError> {
        self.admin_op(id, |st, now, r| st.set_share_history(share, now, r))
            .await
    }

    /// Leaves the group (§7.4): posts MEMBER_LEFT (an admin then rekeys
    /// without us) and forgets the group's keys and credentials. The last
    /// admin must promote someone first; the last member deletes the group.
    pub async fn leave_group(&self, id: &AccountId) -> Result<(), ClientError> {
        let _ = self.refresh_group(id).await;
        let (st, _) = self.load_group(id)?;
        let me = self.account_id();
        match st.leave(&me).map_err(group_err)? {
            LeavePlan::PostMemberLeft(ctrl) => {
                let t = self.now().await;
                self.post_to_group(&st, control_content(ctrl), t).await?;
            }
            LeavePlan::DeleteGroup => {
                let keys = st
                    .admin_keys()
                    .ok_or_else(|| group_err(GroupError::NotAdmin))?;
                let timestamp = self.now().await;
                let auth = keys
                    .signer()
                    .auth(&sign::delete_all_string(NamespaceSel::All, timestamp));
                let params = DeleteAllParams {
                    pubkey: *id,
                    namespace: NamespaceSel::All,
                    timestamp,
                    auth,
                };
                let v =
                    serde_json::to_value(&params).map_err(|e| ClientError::Group(e.to_string()))?;
                let reply = self.network().storage_request(id, "delete_all", v).await?;
                if reply.status != 200 {
                    return Err(ClientError::Refused {
                        status: reply.status,
                        text: reply.error_text(),
                    });
                }
            }
        }
        let now = self.now().await;
        self.insert_status(id, &me, now, "you left the group".into())?;
        self.forget_group(id)
    }

    // ---- messages ----

    /// Sends a text message to the group (§6): encrypted under the current
    /// generation, signed by our account key, stored in namespace 11 with
    /// the group's delete-after-send timer.
    pub async fn send_group_text(&self, id: &AccountId, text: &str) -> Result<Sent, ClientError> {
        let (mut st, mut rec) = self.load_group(id)?;
        if rec.removed {
            return Err(ClientError::Invalid(
                "you were removed from this group".into(),
            ));
        }
        // Send under the newest generation: read namespaces 12 and 13 first
        // (a failure here is not fatal; the store below decides).
        let mut ignored = GroupSyncReport::default();
        let at = self.now().await;
        if self
            .refresh_keys_and_state(&mut st, &mut ignored)
            .await
            .is_ok()
        {
            rec.polled_keys_ms = Some(at);
            self.save_group(&st, &mut rec)?;
        }
        let timer_s = st.info().map_or(0, |i| i.timer_s);
        let t = self.now().await;
        let content = Content {
            data_message: Some(DataMessage {
                body: Some(text.to_string()),
                ..DataMessage::default()
            }),
            ..Content::default()
        };
        let me = self.account_id();
        let d = if timer_s > 0 {
            Disappearing {
                mode: DisappearingMode::AfterSend,
                timer_s,
            }
        } else {
            Disappearing::default()
        };
        let store = self.profile().store();
        let row = store.insert_message(&NewMessage {
            peer: *id,
            direction: Direction::Out,
            author: me,
            timestamp_ms: t,
            received_at_ms: t,
            text: text.to_string(),
            status: MessageStatus::Sending,
            hash: None,
            disappearing: d,
            expires_at_ms: (timer_s > 0).then(|| t + u64::from(timer_s) * 1000),
        })?;
        match self.post_to_group(&st, content, t).await {
            Ok((hash, accepted)) => {
                if let Some(row) = row {
                    store.set_status(row, MessageStatus::Sent)?;
                    store.set_hash(row, hash.as_str())?;
                }
                store.mark_seen(hash.as_str(), t + MESSAGE_TTL_MS)?;
                Ok(Sent {
                    timestamp_ms: t,
                    route: Vec::new(),
                    accepted_by: accepted as usize,
                })
            }
            Err(e) => {
                if let Some(row) = row {
                    store.set_status(row, MessageStatus::Failed)?;
                }
                Err(e)
            }
        }
    }

    /// Unsends a group message for everyone (§6.4): our own, or, as an
    /// admin, any member's (`author`). Members see it deleted when they
    /// next sync; an admin also deletes it from the group's swarm (our own
    /// admin client at once, otherwise the first admin that syncs).
    pub async fn unsend_group(
        &self,
        id: &AccountId,
        author: &AccountId,
        timestamp_ms: u64,
    ) -> Result<(), ClientError> {
        let (st, rec) = self.load_group(id)?;
        if rec.removed {
            return Err(ClientError::Invalid(
                "you were removed from this group".into(),
            ));
        }
        if *author != self.account_id() && !st.is_admin() {
            return Err(ClientError::Invalid(
                "only an admin can unsend another member's message".into(),
            ));
        }
        let store = self.profile().store();
        let msg = store
            .message_by_author_ts(id, author, timestamp_ms)?
            .filter(|m| !m.deleted)
            .ok_or_else(|| {
                ClientError::Invalid(format!(
                    "no message by that author at {timestamp_ms} in this group"
                ))
            })?;
        let t = self.now().await;
        let content = crate::client::unsend_content(author, timestamp_ms);
        self.post_to_group(&st, content, t).await?;
        self.delete_group_message(&st, msg.hash.as_deref()).await;
        store.mark_deleted(msg.id)?;
        Ok(())
    }

    /// Deletes one message from the group's namespace 11 when we are an
    /// admin (best effort: the unsend request already hides it).
    async fn delete_group_message(&self, st: &GroupState, hash: Option<&str>) {
        let Some(Ok(hash)) = hash.map(str::parse::<MessageHash>) else {
            return;
        };
        if !st.is_admin() {
            return;
        }
        if let Err(e) = self.admin_delete(st, &[hash]).await {
            tracing::debug!(error = %e, "cannot delete an unsent group message from the swarm");
        }
    }

    /// Deletes items of the group's swarm by hash with the group key;
    /// returns how many a swarm member confirmed deleting.
    async fn admin_delete(
        &self,
        st: &GroupState,
        hashes: &[MessageHash],
    ) -> Result<usize, ClientError> {
        let keys = st
            .admin_keys()
            .ok_or_else(|| group_err(GroupError::NotAdmin))?;
        let out = self
            .group_api()
            .delete(&st.group_id(), &keys.signer(), hashes)
            .await
            .map_err(api_err)?;
        Ok(out.deleted.len())
    }

    fn insert_status(
        &self,
        id: &AccountId,
        author: &AccountId,
        t: u64,
        text: String,
    ) -> Result<bool, ClientError> {
        let me = self.account_id();
        Ok(self
            .profile()
            .store()
            .insert_message(&NewMessage {
                peer: *id,
                direction: if *author == me {
                    Direction::Out
                } else {
                    Direction::In
                },
                author: *author,
                timestamp_ms: t,
                received_at_ms: t,
                text,
                status: MessageStatus::Delivered,
                hash: None,
                disappearing: Disappearing::default(),
                expires_at_ms: None,
            })?
            .is_some())
    }

    // ---- 1:1 control messages (from the messaging client's `apply`) ----

    /// Applies a 1:1 message carrying an `UmbraGroupControl` (INVITE,
    /// PROMOTE, shared-history keys). Called by the messaging client for
    /// every opened 1:1 message that has one; anything that does not verify
    /// is dropped.
    pub(crate) async fn apply_group_direct(
        &self,
        o: &Opened,
        ctrl: &UmbraGroupControl,
        report: &mut SyncReport,
    ) -> Result<(), ClientError> {
        let me = self.account_id();
        let from_self = o.sender == me;
        let t = o.content.sig_timestamp.unwrap_or(o.timestamp_ms);
        if ctrl.r#type == ControlType::Invite as i32 {
            if from_self {
                return Ok(()); // our sync copy of an invite we sent
            }
            let Ok(inv) = verify_invite(ctrl, &me, t) else {
                report.undecryptable += 1;
                return Ok(());
            };
            let mut invites = self.invites()?;
            let key = inv.group_id.to_string();
            // Already in the group, unless joining it was cut short.
            if self.load_record(&inv.group_id)?.is_some() && !invites.contains_key(&key) {
                return Ok(());
            }
            let known = self
                .profile()
                .store()
                .conversation(&o.sender)?
                .is_some_and(|c| c.approved_by_us && !c.blocked);
            // A stranger's new invite must fit under the caps (after
            // forgetting the invites the user has done with).
            let inviter = o.sender.to_string();
            if !known && !invites.contains_key(&key) && !stranger_invite_fits(&invites, &inviter) {
                let pruned = self.prune_invites(&mut invites)?;
                if !stranger_invite_fits(&invites, &inviter) {
                    if pruned > 0 {
                        self.set_invites(&invites)?;
                    }
                    tracing::debug!(
                        inviter = %o.sender.short(),
                        "a stranger's group invite over the pending cap: dropped"
                    );
                    report.undecryptable += 1;
                    return Ok(());
                }
            }
            let history = invites
                .get(&key)
                .map(|p| p.history.clone())
                .unwrap_or_default();
            invites.insert(
                key,
                PendingInvite {
                    inviter,
                    name: inv.name.clone(),
                    auth: SecretHex::encode(&inv.auth.to_bytes()),
                    history,
                },
            );
            self.set_invites(&invites)?;
            let joined = if known {
                match self.accept_group_invite(&inv.group_id).await {
                    Ok(_) => true,
                    // The network, the swarm, this device: this message is
                    // read again next sync.
                    Err(e) if !e.is_about_the_item() => return Err(e),
                    // Not joinable now (the group's state does not list us,
                    // …): it stays an invite to accept later, and must not
                    // stop the sync.
                    Err(e) => {
                        tracing::debug!(error = %e, "cannot join an invited group yet");
                        false
                    }
                }
            } else {
                false
            };
            // Still pending (joining can also fail after the invite was
            // taken, e.g. on learning we were removed, which is shown).
            if !joined && self.invites()?.contains_key(&inv.group_id.to_string()) {
                let text = format!(
                    "{} invited you to the group \u{201c}{}\u{201d} (accept to join)",
                    o.sender.short(),
                    inv.name
                );
                if self.insert_status(&inv.group_id, &o.sender, t, text)? {
                    report.new_messages += 1;
                    if !known {
                        report.new_requests += 1;
                    }
                }
            }
            return Ok(());
        }
        if ctrl.r#type == ControlType::Promote as i32 {
            let Ok(p) = verify_promote(ctrl) else {
                report.undecryptable += 1;
                return Ok(());
            };
            let id = p.keys.id();
            match self.load_group(&id) {
                Ok((mut st, mut rec)) => {
                    if st.is_admin() {
                        return Ok(());
                    }
                    let old = st.become_admin(p.keys).map_err(group_err)?;
                    self.save_group(&st, &mut rec)?;
                    if let (Some(tok), Some(k)) = (old, st.admin_keys()) {
                        let _ = self.revoke_tokens(&id, k, &[tok]).await;
                    }
                }
                Err(_) if from_self => {
                    // Another device of ours created or was promoted in the group.
                    let st = GroupState::from_admin_keys(p.keys);
                    self.save_group(&st, &mut Record::default())?;
                    self.profile().store().set_approved_by_us(&id, true)?;
                    let _ = self.sync_group(&id).await;
                }
                Err(_) => {}
            }
            return Ok(());
        }
        if ctrl.r#type == ControlType::MembersAdded as i32
            && !from_self
            && let (Some(g), Some(sealed)) = (&ctrl.group_id, &ctrl.member_auth)
            && let Ok(id) = AccountId::from_bytes(g)
        {
            // Shared-history keys (see the module doc).
            if open_history_keys(sealed, self.profile().keys(), &id).is_err() {
                report.undecryptable += 1;
                return Ok(());
            }
            if self.load_record(&id)?.is_some() {
                self.add_history(&id, sealed).await?;
            } else {
                let mut invites = self.invites()?;
                let h = hex::encode(sealed);
                if let Some(p) = invites.get_mut(&id.to_string())
                    && !p.history.contains(&h)
                {
                    if p.history.len() >= MAX_INVITE_HISTORY {
                        tracing::debug!(group = %id.short(), "too many history lists for an invite: dropped");
                        report.undecryptable += 1;
                        return Ok(());
                    }
                    p.history.push(h);
                    self.set_invites(&invites)?;
                }
            }
        }
        Ok(())
    }

    async fn add_history(&self, id: &AccountId, sealed: &[u8]) -> Result<(), ClientError> {
        let keys = open_history_keys(sealed, self.profile().keys(), id).map_err(group_err)?;
        let (mut st, mut rec) = self.load_group(id)?;
        let now = self.now().await;
        if st.add_history_keys(keys, now) > 0 {
            // Messages that did not decrypt before may now: read namespace 11 again.
            rec.last_hash.remove(&Namespace::GROUP_MESSAGES.get());
            self.save_group(&st, &mut rec)?;
        }
        Ok(())
    }

    /// Accepts a pending invite (§7.2): fetches the keys and state with the
    /// subaccount, checks we are in the roster, posts INVITE_RESPONSE.
    /// Does not approve the inviter's 1:1 chat.
    pub async fn accept_group_invite(&self, id: &AccountId) -> Result<(), ClientError> {
        let mut invites = self.invites()?;
        let key = id.to_string();
        let p = invites
            .get(&key)
            .cloned()
            .ok_or_else(|| ClientError::Invalid(format!("no invite to group {}", id.short())))?;
        let auth_bytes = p.auth.decode().ok_or_else(|| bad("invite"))?;
        let auth = MemberAuth::from_bytes(&auth_bytes, id).map_err(group_err)?;
        let st = GroupState::from_invite(*id, auth);
        self.save_group(&st, &mut Record::default())?;
        for h in &p.history {
            if let Ok(b) = hex::decode(h) {
                let _ = self.add_history(id, &b).await;
            }
        }
        self.profile().store().set_approved_by_us(id, true)?;
        // The invite is kept until the group has answered, so that a
        // network failure from here on leaves it to accept again (or to
        // the next sync of the invite, from an approved contact).
        let forget = |invites: &mut BTreeMap<String, PendingInvite>| {
            invites.remove(&key);
            self.set_invites(invites)
        };
        self.refresh_group(id).await?;
        let (st, _) = self.load_group(id)?;
        let me = self.account_id();
        if st.info().and_then(|i| i.member(&me)).is_none() {
            forget(&mut invites)?;
            return Err(ClientError::Group(
                "the group's state does not list us (yet); try `sync` later".into(),
            ));
        }
        let t = self.now().await;
        let ctrl = Notice::InviteResponse { accepted: true }.to_control(None);
        self.post_to_group(&st, control_content(ctrl), t).await?;
        forget(&mut invites)?;
        Ok(())
    }

    /// Declines a pending invite: forgets it; nothing is sent (§7.2).
    pub fn decline_group_invite(&self, id: &AccountId) -> Result<(), ClientError> {
        let mut invites = self.invites()?;
        invites.remove(&id.to_string());
        self.set_invites(&invites)?;
        self.profile().store().delete_conversation(id)?;
        Ok(())
    }

    // ---- raw access (diagnostics and tests) ----

    /// Every item of `namespace` in the group's swarm, fetched with this
    /// device's credentials (group key or subaccount) through the onion.
    pub async fn fetch_group_raw(
        &self,
        id: &AccountId,
        namespace: Namespace,
    ) -> Result<Vec<Retrieved>, ClientError> {
        let (st, _) = self.load_group(id)?;
        self.fetch_ns(&st, None, namespace).await.map_err(api_err)
    }

    /// Deletes items of the group's swarm by hash with the group key
    /// (admins; diagnostics and tests: simulating items that expired).
    /// Returns how many a swarm member confirmed deleting.
    pub async fn delete_group_raw(
        &self,
        id: &AccountId,
        hashes: &[MessageHash],
    ) -> Result<usize, ClientError> {
        let (st, _) = self.load_group(id)?;
        self.admin_delete(&st, hashes).await
    }

    /// Decrypts a namespace-11 item with the keys this device holds and
    /// applies the receiving rules of §6.3; returns the sender and body.
    pub async fn open_group_item(
        &self,
        id: &AccountId,
        data: &[u8],
    ) -> Result<(AccountId, Option<String>), ClientError> {
        let (st, _) = self.load_group(id)?;
        let now = self.now().await;
        let m = st
            .receive(data, now)
            .map_err(|e| ClientError::Group(e.to_string()))?;
        let body = m.content.data_message.and_then(|d| d.body);
        Ok((m.sender, body))
    }

    /// Posts any `content` to the group (namespace 11) as this account,
    /// without storing it locally; `sigTimestamp` is set to now. For
    /// content without a helper of its own (reactions, quotes, controls).
    pub async fn send_group_content(
        &self,
        id: &AccountId,
        content: Content,
    ) -> Result<MessageHash, ClientError> {
        let t = self.now().await;
        self.send_group_content_at(id, content, t).await
    }

    /// [`Client::send_group_content`] signed with the time `t` (ms) instead
    /// of now (diagnostics and tests: a member's wrong or hostile clock).
    pub async fn send_group_content_at(
        &self,
        id: &AccountId,
        content: Content,
        t: u64,
    ) -> Result<MessageHash, ClientError> {
        let (st, _) = self.load_group(id)?;
        Ok(self.post_to_group(&st, content, t).await?.0)
    }

    /// Stores raw bytes in `namespace` of the group's swarm with this
    /// device's credentials (diagnostics and tests: a replayed bundle).
    pub async fn store_group_raw(
        &self,
        id: &AccountId,
        namespace: Namespace,
        data: &[u8],
        ttl_ms: u64,
    ) -> Result<MessageHash, ClientError> {
        let (st, _) = self.load_group(id)?;
        let signer = self.group_signer(&st)?;
        let r = self
            .group_api()
            .send_to_swarm(id, Some(&signer), namespace, data, ttl_ms)
            .await
            .map_err(api_err)?;
        Ok(r.hash)
    }

    // ---- polling ----

    /// Polls every group this device is in (called at the end of `sync`).
    pub async fn sync_groups(&self, report: &mut SyncReport) -> Result<(), ClientError> {
        if let Err(e) = self.prune_stored_invites() {
            tracing::debug!("forgetting declined group invites failed: {e}");
        }
        for id in self.group_index()? {
            match self.sync_group(&id).await {
                Ok(r) => {
                    report.new_messages += r.new_messages;
                    report.undecryptable += r.rejected;
                }
                Err(e) => tracing::debug!(group = %id.short(), "group poll failed: {e}"),
            }
        }
        Ok(())
    }

    /// Reads several namespaces of the group's swarm in one onion `batch`
    /// (`storage-rpc.md` §9.13; §9: "members poll with one `batch`"): one
    /// `retrieve` subrequest per `(namespace, last hash)`, each signed on
    /// its own. A namespace whose page says `more` is read on with single
    /// `retrieve`s. One result per namespace, in order; `Err` when the
    /// batch itself failed (no path, timeout, malformed reply). A node that
    /// refuses the batch as a whole, or answers `421` (not in the swarm) to
    /// a subrequest, is asked namespace by namespace instead.
    async fn fetch_many(
        &self,
        st: &GroupState,
        wanted: &[(Namespace, Option<&String>)],
    ) -> Result<Vec<Result<Vec<Retrieved>, ApiError>>, ApiError> {
        if wanted.len() == 1 {
            let (ns, after) = wanted[0];
            return Ok(vec![self.fetch_ns(st, after, ns).await]);
        }
        // A `421` inside the batch (the swarm moved) is left to the single
        // requests, whose `421` handling learns the new swarm.
        let moved = |pages: &Vec<Result<(Vec<Retrieved>, bool), ApiError>>| {
            pages
                .iter()
                .any(|p| matches!(p, Err(ApiError::Refused { status: 421, .. })))
        };
        let first = match self.batch_retrieve(st, wanted).await {
            Ok(pages) if !moved(&pages) => pages,
            Ok(_) | Err(ApiError::Refused { .. }) => {
                let mut out = Vec::with_capacity(wanted.len());
                for (ns, after) in wanted {
                    out.push(self.fetch_ns(st, *after, *ns).await);
                }
                return Ok(out);
            }
            Err(e) => return Err(e),
        };
        let mut out = Vec::with_capacity(wanted.len());
        for ((ns, _), page) in wanted.iter().zip(first) {
            out.push(match page {
                Ok((mut items, true)) => {
                    let last = items.last().map(|m| m.hash.as_str().to_string());
                    match self.fetch_ns(st, last.as_ref(), *ns).await {
                        Ok(more) => {
                            items.extend(more);
                            Ok(items)
                        }
                        Err(e) => Err(e),
                    }
                }
                Ok((items, false)) => Ok(items),
                Err(e) => Err(e),
            });
        }
        Ok(out)
    }

    /// One `batch` of `retrieve`s ([`Api::retrieve_batch`]): per
    /// namespace, the first page and whether more follow, or the
    /// subrequest's refusal.
    async fn batch_retrieve(
        &self,
        st: &GroupState,
        wanted: &[(Namespace, Option<&String>)],
    ) -> Result<Vec<Result<(Vec<Retrieved>, bool), ApiError>>, ApiError> {
        let signer = self
            .group_signer(st)
            .map_err(|e| ApiError::Invalid(e.to_string()))?;
        let hashes: Vec<Option<MessageHash>> = wanted
            .iter()
            .map(|(_, after)| after.and_then(|h| MessageHash::parse(h).ok()))
            .collect();
        let wanted: Vec<(Namespace, Option<&MessageHash>)> = wanted
            .iter()
            .zip(&hashes)
            .map(|((ns, _), h)| (*ns, h.as_ref()))
            .collect();
        let pages = self
            .group_api()
            .retrieve_batch(&st.group_id(), Some(&signer), &wanted)
            .await?;
        Ok(pages
            .into_iter()
            .map(|p| p.map(|p| (p.messages, p.more)))
            .collect())
    }

    /// Fetches all pages of one namespace after the stored last hash.
    async fn fetch_ns(
        &self,
        st: &GroupState,
        after: Option<&String>,
        ns: Namespace,
    ) -> Result<Vec<Retrieved>, ApiError> {
        let id = st.group_id();
        let signer = self
            .group_signer(st)
            .map_err(|e| ApiError::Invalid(e.to_string()))?;
        let api = self.group_api();
        let mut last = after.and_then(|h| MessageHash::parse(h).ok());
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            let page = api.retrieve(&id, Some(&signer), ns, last.as_ref()).await?;
            let n = page.messages.len();
            if let Some(m) = page.messages.last() {
                last = Some(m.hash.clone());
            }
            out.extend(page.messages);
            if !page.more || n == 0 {
                break;
            }
        }
        Ok(out)
    }

    /// Ingests what namespaces 12 and 13 held (bundles first).
    fn ingest_keys_and_state(
        &self,
        st: &mut GroupState,
        report: &mut GroupSyncReport,
        bundles: &[Retrieved],
        docs: &[Retrieved],
        now: u64,
    ) {
        let me = self.profile().keys();
        for m in bundles {
            match st.ingest_bundle(&m.data, me, now) {
                Ok(
                    umbra_proto::group::BundleOutcome::NewCurrent
                    | umbra_proto::group::BundleOutcome::KeptForReading,
                ) => report.new_keys += 1,
                Ok(_) => {}
                // Not for us (a generation we are not in), or not signed by
                // the group key: ignored (§2, §3.3).
                Err(_) => report.rejected += 1,
            }
        }
        for m in docs {
            match st.ingest_state(&m.data) {
                Ok(umbra_proto::group::StateOutcome::NewCurrent) => report.new_states += 1,
                Ok(_) => {}
                Err(_) => report.rejected += 1,
            }
        }
    }

    /// Fetches namespaces 12 and 13 whole (one `batch`) and ingests them;
    /// returns what they held (bundles, documents). They are small: re-read
    /// whole each time, so a document that waited for its key is seen again.
    async fn refresh_keys_and_state(
        &self,
        st: &mut GroupState,
        report: &mut GroupSyncReport,
    ) -> Result<(Vec<Retrieved>, Vec<Retrieved>), ApiError> {
        let now = self.now().await;
        let mut r = self
            .fetch_many(
                st,
                &[
                    (Namespace::GROUP_KEYS, None),
                    (Namespace::GROUP_STATE, None),
                ],
            )
            .await?
            .into_iter();
        let bundles = r.next().unwrap_or_else(|| Ok(Vec::new()))?;
        let docs = r.next().unwrap_or_else(|| Ok(Vec::new()))?;
        self.ingest_keys_and_state(st, report, &bundles, &docs, now);
        Ok((bundles, docs))
    }

    /// Reads namespaces 12 and 13 and notes it in `flags`.
    async fn read_keys(
        &self,
        st: &mut GroupState,
        report: &mut GroupSyncReport,
        flags: &mut PollFlags,
    ) -> Result<(), ApiError> {
        let at = self.now().await;
        let fetched = self.refresh_keys_and_state(st, report).await?;
        Self::note_keys_read(flags, report, at, fetched);
        Ok(())
    }

    fn note_keys_read(
        flags: &mut PollFlags,
        report: &mut GroupSyncReport,
        at: u64,
        fetched: (Vec<Retrieved>, Vec<Retrieved>),
    ) {
        flags.keys_read_at = Some(at);
        flags.fetched = Some(fetched);
        flags.notice_pending = false;
        report.read_keys = true;
    }

    /// Polls one group on the §9 cadence: namespace 11 always; 12 and 13
    /// when 60 s have passed since they were last read, at once after a
    /// notice or a decryption or roster miss, and 10 s after we published;
    /// −11 (members) every 10 minutes and at once after the swarm refused
    /// our subaccount. An admin that read 12 and 13 then keeps the newest
    /// bundle and the current document alive and deletes superseded
    /// documents ([`plan_upkeep`]). The poll times are persisted with the
    /// group, so a restarted client keeps the cadence.
    pub async fn sync_group(&self, id: &AccountId) -> Result<GroupSyncReport, ClientError> {
        self.poll_group(id, false).await
    }

    /// As [`Client::sync_group`], reading every namespace (12, 13 and −11
    /// too) whatever the cadence: for an explicit refresh, before an admin
    /// change, and for diagnostics.
    pub async fn refresh_group(&self, id: &AccountId) -> Result<GroupSyncReport, ClientError> {
        self.poll_group(id, true).await
    }

    async fn poll_group(
        &self,
        id: &AccountId,
        force: bool,
    ) -> Result<GroupSyncReport, ClientError> {
        let (mut st, mut rec) = self.load_group(id)?;
        let mut report = GroupSyncReport::default();
        if rec.removed {
            report.removed = true;
            return Ok(report);
        }
        let now = self.now().await;
        let admin = st.is_admin();
        let due = due_polls(&rec.poll_times(), now, admin, false);
        let mut flags = PollFlags::default();
        // One batch: 12 and 13 when due, 11, −11 when due (§9).
        let keys_due = force || due.keys_state;
        let removals_due = !admin && (force || due.removals);
        let mut wanted: Vec<(Namespace, Option<String>)> = Vec::with_capacity(4);
        if keys_due {
            wanted.push((Namespace::GROUP_KEYS, None));
            wanted.push((Namespace::GROUP_STATE, None));
        }
        for (ns, due) in [
            (Namespace::GROUP_MESSAGES, true),
            (Namespace::GROUP_REMOVALS, removals_due),
        ] {
            if due {
                wanted.push((ns, rec.last_hash.get(&ns.get()).cloned()));
            }
        }
        let refs: Vec<(Namespace, Option<&String>)> =
            wanted.iter().map(|(ns, h)| (*ns, h.as_ref())).collect();
        let mut results = self
            .fetch_many(&st, &refs)
            .await
            .map_err(api_err)?
            .into_iter();
        if keys_due {
            let bundles = results.next().unwrap_or_else(|| Ok(Vec::new()));
            let docs = results.next().unwrap_or_else(|| Ok(Vec::new()));
            match bundles.and_then(|b| docs.map(|d| (b, d))) {
                Ok((b, d)) => {
                    self.ingest_keys_and_state(&mut st, &mut report, &b, &d, now);
                    Self::note_keys_read(&mut flags, &mut report, now, (b, d));
                    self.save_group(&st, &mut rec)?;
                }
                Err(ApiError::Refused { status, text, .. }) => {
                    report.refused = Some((status, text));
                }
                Err(e) => return Err(api_err(e)),
            }
        }
        let messages = results.next().unwrap_or_else(|| Ok(Vec::new()));
        let removals = results.next();
        if report.refused.is_none() {
            self.poll_messages(&mut st, &mut rec, &mut report, &mut flags, messages)
                .await?;
        }
        // §9: 12 and 13 at once after any notice.
        if flags.notice_pending && report.refused.is_none() {
            flags.refreshed = true;
            if let Err(e) = self.read_keys(&mut st, &mut report, &mut flags).await {
                tracing::debug!(group = %id.short(), "reading 12/13 after a notice failed: {e}");
            }
        }
        rec.keys_prompted = flags.notice_pending || flags.miss_read_failed;
        if let Some(t) = flags.keys_read_at {
            rec.polled_keys_ms = Some(t);
        }
        if let Some(t) = flags.published_at {
            rec.published_ms = Some(t);
        }
        // −11: from the batch, or at once after a refusal (a likely removal).
        let removals = match removals {
            Some(r) => Some(r),
            None if !admin && report.refused.is_some() => {
                let after = rec.last_hash.get(&Namespace::GROUP_REMOVALS.get()).cloned();
                Some(
                    self.fetch_ns(&st, after.as_ref(), Namespace::GROUP_REMOVALS)
                        .await,
                )
            }
            None => None,
        };
        if let Some(Ok(items)) = removals {
            self.apply_removals(&st, &mut rec, &mut report, &items, now);
            rec.polled_removals_ms = Some(now);
        }
        if let Some((bundles, docs)) = &flags.fetched {
            self.upkeep(&st, &mut rec, bundles, docs, &mut report).await;
        }
        self.save_group(&st, &mut rec)?;
        // Concurrent admin changes: settle them (§3.5, §4.3).
        if st.is_admin() && st.needs_reissue() {
            let now = self.now().await;
            if let Ok(p) = st.reissue(now, &mut rng()) {
                rec.published_ms = Some(now);
                self.save_group(&st, &mut rec)?;
                self.publish(&st, p).await?;
            }
        }
        Ok(report)
    }

    /// The admin housekeeping of §3.4 and §4.3 over what 12 and 13 held:
    /// extends the newest bundle and the current document when due, stores
    /// them again from the held copies when the swarm no longer has them,
    /// deletes superseded documents, and holds the newest bundle seen (in
    /// `rec`). Best effort: a failure is retried at the next read of 12
    /// and 13.
    async fn upkeep(
        &self,
        st: &GroupState,
        rec: &mut Record,
        bundles: &[Retrieved],
        docs: &[Retrieved],
        report: &mut GroupSyncReport,
    ) {
        let Some(keys) = st.admin_keys() else {
            return;
        };
        let cfg = match self.group_upkeep() {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!("group housekeeping settings unreadable: {e}");
                return;
            }
        };
        let id = st.group_id();
        let now = self.now().await;
        let held_bundle = rec.bundle.as_deref().and_then(|h| hex::decode(h).ok());
        let held = Held {
            bundle: held_bundle.as_deref(),
            document: st.current_document().map(|d| d.to_bytes()),
        };
        let plan = plan_upkeep(&id, &stored(bundles), &stored(docs), held, now, &cfg);
        if let Some(b) = &plan.newest_bundle
            && held_bundle.as_deref() != Some(b.as_slice())
        {
            rec.bundle = Some(hex::encode(b));
        }
        if plan.is_empty() {
            return;
        }
        let signer = keys.signer();
        let api = self.group_api();
        for (ns, data) in [
            (Namespace::GROUP_KEYS, &plan.restore_bundle),
            (Namespace::GROUP_STATE, &plan.restore_document),
        ] {
            let Some(data) = data else { continue };
            match api
                .send_to_swarm(&id, Some(&signer), ns, data, KEYS_TTL_MS)
                .await
            {
                Ok(_) => report.restored += 1,
                Err(e) => tracing::debug!(group = %id.short(), "storing keys again failed: {e}"),
            }
        }
        if !plan.extend.is_empty() {
            match api
                .expire(
                    &id,
                    &signer,
                    &plan.extend,
                    plan.extend_to_ms,
                    ExpireMode::Extend,
                )
                .await
            {
                Ok(o) => report.extended += o.updated.len(),
                Err(e) => tracing::debug!(group = %id.short(), "keeping keys alive failed: {e}"),
            }
        }
        if !plan.delete.is_empty() {
            match api.delete(&id, &signer, &plan.delete).await {
                Ok(o) => report.deleted += o.deleted.len(),
                Err(e) => {
                    tracing::debug!(group = %id.short(), "deleting superseded documents failed: {e}");
                }
            }
        }
    }

    /// The admin housekeeping thresholds (§3.4, §4.3; the spec's values
    /// unless changed with [`Client::set_group_upkeep`]).
    pub fn group_upkeep(&self) -> Result<UpkeepConfig, ClientError> {
        let mut cfg = UpkeepConfig::default();
        if let Some(b) = self.profile().store().blob(UPKEEP_BLOB)? {
            let s: StoredUpkeep = serde_json::from_slice(&b).map_err(|_| bad("upkeep"))?;
            cfg.extend_below_ms = s.extend_below_ms;
            cfg.delete_superseded_after_ms = s.delete_superseded_after_ms;
        }
        Ok(cfg)
    }

    /// Changes the admin housekeeping thresholds of this profile: keep the
    /// newest bundle and current document alive below `extend_below_ms` of
    /// remaining lifetime (spec: 15 days), delete superseded documents
    /// `delete_superseded_after_ms` after a newer one (spec: 1 hour). For
    /// tests and diagnostics; the TTL given by an extension stays 30 days.
    pub fn set_group_upkeep(
        &self,
        extend_below_ms: u64,
        delete_superseded_after_ms: u64,
    ) -> Result<(), ClientError> {
        let b = serde_json::to_vec(&StoredUpkeep {
            extend_below_ms,
            delete_superseded_after_ms,
        })
        .map_err(|_| bad("upkeep"))?;
        self.profile().store().put_blob(UPKEEP_BLOB, &b)?;
        Ok(())
    }

    /// Applies what namespace −11 held: a removal notice for us (§7.3).
    fn apply_removals(
        &self,
        st: &GroupState,
        rec: &mut Record,
        report: &mut GroupSyncReport,
        items: &[Retrieved],
        now: u64,
    ) {
        report.read_removals = true;
        let id = st.group_id();
        for m in items {
            if open_removal_notice(&m.data, self.profile().keys(), &id).is_ok() {
                rec.removed = true;
                report.removed = true;
                if let Err(e) =
                    self.insert_status(&id, &id, now, "you were removed from the group".into())
                {
                    tracing::debug!("cannot store the removal line: {e}");
                }
            }
        }
        if let Some(m) = items.last() {
            rec.last_hash
                .insert(Namespace::GROUP_REMOVALS.get(), m.hash.as_str().to_string());
        }
    }

    async fn poll_messages(
        &self,
        st: &mut GroupState,
        rec: &mut Record,
        report: &mut GroupSyncReport,
        flags: &mut PollFlags,
        fetched: Result<Vec<Retrieved>, ApiError>,
    ) -> Result<(), ClientError> {
        let items = match fetched {
            Ok(i) => i,
            Err(ApiError::Refused { status, text, .. }) => {
                report.refused = Some((status, text));
                return Ok(());
            }
            Err(e) => return Err(api_err(e)),
        };
        let store = self.profile().store();
        // The last hash advances only over items we are done with; an item
        // whose roster we do not hold yet is read again next time.
        let mut advance = true;
        for m in &items {
            if store.is_seen(m.hash.as_str())? {
                if advance {
                    rec.last_hash
                        .insert(Namespace::GROUP_MESSAGES.get(), m.hash.as_str().to_string());
                }
                continue;
            }
            let now = self.now().await;
            let mut msg = st.receive(&m.data, now);
            // A miss (a key or roster we may not have read yet, §9): read
            // 12 and 13 once and try again.
            if matches!(
                msg,
                Err(GroupError::RosterUnknown { .. } | GroupError::DecryptFailed { .. })
            ) && !flags.refreshed
            {
                flags.refreshed = true;
                if self.read_keys(st, report, flags).await.is_err() {
                    flags.miss_read_failed = true;
                }
                msg = st.receive(&m.data, now);
            }
            let done = match msg {
                Ok(msg) => match self.apply_group_message(st, &msg, m, report, flags).await {
                    Ok(()) => true,
                    // This item can never be applied (a time no store can
                    // hold, …): past it, or it would stop every later poll
                    // of the group here.
                    Err(e) if e.is_about_the_item() => {
                        tracing::debug!(error = %e, "group message dropped");
                        report.rejected += 1;
                        store.mark_seen(m.hash.as_str(), m.expiration)?;
                        true
                    }
                    Err(e) => return Err(e),
                },
                Err(GroupError::RosterUnknown { .. }) => false,
                // The keys could not be read: try this item again.
                Err(GroupError::DecryptFailed { .. }) if flags.miss_read_failed => false,
                Err(GroupError::DecryptFailed { .. }) => {
                    // Perhaps under a key we get later (shared history).
                    report.rejected += 1;
                    true
                }
                Err(_) => {
                    report.rejected += 1;
                    store.mark_seen(m.hash.as_str(), m.expiration)?;
                    true
                }
            };
            if !done {
                advance = false;
            }
            if advance {
                rec.last_hash
                    .insert(Namespace::GROUP_MESSAGES.get(), m.hash.as_str().to_string());
            }
        }
        Ok(())
    }

    async fn apply_group_message(
        &self,
        st: &mut GroupState,
        msg: &umbra_proto::group::ReceivedGroupMessage,
        item: &Retrieved,
        report: &mut GroupSyncReport,
        flags: &mut PollFlags,
    ) -> Result<(), ClientError> {
        let store = self.profile().store();
        let id = st.group_id();
        let me = self.account_id();
        let from_self = msg.sender == me;
        let t = msg.content.sig_timestamp.unwrap_or(item.timestamp);
        let now = self.now().await;
        let dm = msg.content.data_message.as_ref();
        if dm.and_then(|d| d.umbra_group_control.as_ref()).is_some() {
            let mut check = st.check_notice(msg);
            if matches!(check, Ok(Some(NoticeCheck::AwaitState { .. }))) && !flags.refreshed {
                flags.refreshed = true;
                let _ = self.read_keys(st, report, flags).await;
                check = st.check_notice(msg);
            }
            // §9: a notice prompts a read of 12 and 13 — at the end of this
            // poll, unless they were read during it already.
            if flags.keys_read_at.is_none() {
                flags.notice_pending = true;
            }
            match check {
                Ok(Some(NoticeCheck::Show(notice))) => {
                    if let Some(t) = self.act_on_notice(st, &msg.sender, &notice).await? {
                        flags.published_at = Some(t);
                    }
                    if self.insert_status(&id, &msg.sender, t, notice_text(&msg.sender, &notice))? {
                        report.new_messages += 1;
                    }
                    store.mark_seen(item.hash.as_str(), item.expiration)?;
                }
                Ok(Some(NoticeCheck::AwaitState { .. })) => {}
                // A forged notice (wrong signer, disagreeing with the
                // signed state): ignored.
                _ => {
                    report.rejected += 1;
                    store.mark_seen(item.hash.as_str(), item.expiration)?;
                }
            }
            return Ok(());
        }
        store.mark_seen(item.hash.as_str(), item.expiration)?;
        if let Some(UnsendRequest { timestamp, author }) = &msg.content.unsend_request {
            // `receive` has checked §6.4: the sender's own message, or any
            // member's when the sender is an admin.
            if let Ok(a) = author.parse::<AccountId>()
                && let Some(row) = store.message_by_author_ts(&id, &a, *timestamp)?
            {
                store.mark_deleted(row.id)?;
                // Admins also delete it from the group's swarm.
                self.delete_group_message(st, row.hash.as_deref()).await;
            }
            return Ok(());
        }
        let Some(body) = dm.and_then(|d| d.body.clone()) else {
            return Ok(());
        };
        let timer = msg.content.expiration_timer.unwrap_or(0);
        let after_send = msg.content.expiration_type
            == Some(umbra_proto::message::protos::content::ExpirationType::DeleteAfterSend as i32)
            && timer > 0;
        let (d, expires_at) = if after_send {
            (
                Disappearing {
                    mode: DisappearingMode::AfterSend,
                    timer_s: timer,
                },
                Some(item.expiration),
            )
        } else {
            (Disappearing::default(), None)
        };
        if expires_at.is_some_and(|e| e <= now) {
            return Ok(());
        }
        let inserted = store.insert_message(&NewMessage {
            peer: id,
            direction: if from_self {
                Direction::Out
            } else {
                Direction::In
            },
            author: msg.sender,
            timestamp_ms: t,
            received_at_ms: now,
            text: body,
            status: if from_self {
                MessageStatus::Sent
            } else {
                MessageStatus::Delivered
            },
            hash: Some(item.hash.as_str().to_string()),
            disappearing: d,
            expires_at_ms: expires_at,
        })?;
        if inserted.is_some() {
            report.new_messages += 1;
        }
        Ok(())
    }

    /// What an admin does on a member's notice (§7.2, §7.4); returns when
    /// it published.
    async fn act_on_notice(
        &self,
        st: &mut GroupState,
        sender: &AccountId,
        notice: &Notice,
    ) -> Result<Option<u64>, ClientError> {
        if !st.is_admin() {
            return Ok(None);
        }
        let now = self.now().await;
        let member = st.info().and_then(|i| i.member(sender)).cloned();
        let p = match (notice, member) {
            (Notice::InviteResponse { accepted: true }, Some(m))
                if m.status == MemberStatus::Invited =>
            {
                st.mark_joined(sender, now, &mut rng())
            }
            (Notice::MemberLeft, Some(_)) => st.member_left(sender, now, &mut rng()),
            _ => return Ok(None),
        };
        let Ok(p) = p else { return Ok(None) };
        // Published before saving (see `admin_op`). `st` holds the change
        // already, so any failure must stop this poll before it saves `st`
        // (never drop the notice as the item's fault): the next poll reads
        // the notice and acts on it again.
        self.publish(st, p)
            .await
            .map_err(|e| ClientError::Swarm(format!("publishing after a notice: {e}")))?;
        let mut rec = self.load_record(&st.group_id())?.unwrap_or_default();
        rec.published_ms = Some(now);
        self.save_group(st, &mut rec)?;
        Ok(Some(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notice_lines_name_the_actors() {
        let a = AccountId::new(IdPrefix::Standard, [1; 32]);
        let b = AccountId::new(IdPrefix::Standard, [2; 32]);
        let line = notice_text(&a, &Notice::MembersAdded(vec![b]));
        assert!(line.contains(&a.short()) && line.contains(&b.short()));
        assert!(notice_text(&a, &Notice::DisappearingChanged(0)).contains("off"));
    }

    #[test]
    fn secret_hex_matches_hex_and_rejects_non_hex() {
        let bytes: Vec<u8> = (0..=255).collect();
        let h = SecretHex::encode(&bytes);
        assert_eq!(*h.0, hex::encode(&bytes));
        assert_eq!(
            h.decode().as_deref().map(|v| v.as_slice()),
            Some(&bytes[..])
        );
        for bad in ["abc", "zz", "0g"] {
            assert!(SecretHex(Zeroizing::new(bad.into())).decode().is_none());
        }
        assert_eq!(SecretHex::default().decode().as_deref(), Some(&Vec::new()));
    }

    /// A stranger's new invite fits while it has fewer than
    /// `MAX_STRANGER_INVITES` pending and fewer than `MAX_PENDING_INVITES`
    /// are pending in all (whoever sent them).
    #[test]
    fn stranger_invite_caps() {
        let pending = |inviter: &str| PendingInvite {
            inviter: inviter.into(),
            name: "n".into(),
            auth: SecretHex::default(),
            history: Vec::new(),
        };
        let mut inv = BTreeMap::new();
        for i in 0..MAX_STRANGER_INVITES {
            assert!(stranger_invite_fits(&inv, "05aa"));
            inv.insert(format!("a{i}"), pending("05aa"));
        }
        assert!(!stranger_invite_fits(&inv, "05aa"));
        assert!(stranger_invite_fits(&inv, "05bb"));
        let mut i = 0;
        while inv.len() < MAX_PENDING_INVITES {
            inv.insert(format!("c{i}"), pending("05cc"));
            i += 1;
        }
        assert!(!stranger_invite_fits(&inv, "05bb"));
        inv.remove("c0");
        assert!(stranger_invite_fits(&inv, "05bb"));
    }

    /// The stored format is unchanged: a record and an invite written with
    /// plain `String` fields load, and are written back byte for byte.
    #[test]
    fn stored_records_keep_their_format() {
        // As the `String` fields wrote it (field order, skipped `None`s).
        let text = format!(
            r#"{{"seed":"{}","auth":"00ff10","ring":"abcdef","docs":["0102"],"last_hash":{{"11":"h"}},"removed":false,"polled_keys_ms":5,"keys_prompted":false,"bundle":"0a0b"}}"#,
            hex::encode([0x5au8; 32])
        )
        .into_bytes();
        let rec: Record = serde_json::from_slice(&text).unwrap();
        assert_eq!(
            rec.seed.as_ref().and_then(SecretHex::decode).as_deref(),
            Some(&vec![0x5a; 32])
        );
        assert_eq!(rec.ring.decode().as_deref(), Some(&vec![0xab, 0xcd, 0xef]));
        let again = secret_json(&rec).unwrap();
        assert_eq!(*again, text);
        // Sized beforehand: no grown (and freed) copy of the secrets.
        assert_eq!(again.capacity(), again.len());
        // A member record without a seed.
        let member: Record = serde_json::from_str(r#"{"auth":"01","ring":"","docs":[]}"#).unwrap();
        assert!(member.seed.is_none());
        assert_eq!(
            member.auth.as_ref().and_then(SecretHex::decode).as_deref(),
            Some(&vec![1])
        );

        let text =
            br#"{"g":{"inviter":"05aa","name":"n","auth":"beef","history":["01"]}}"#.to_vec();
        let inv: BTreeMap<String, PendingInvite> = serde_json::from_slice(&text).unwrap();
        assert_eq!(inv["g"].auth.decode().as_deref(), Some(&vec![0xbe, 0xef]));
        assert_eq!(*secret_json(&inv).unwrap(), text);
    }
}
