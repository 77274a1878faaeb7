//! [`GroupState`]: one client's view of one group (`groups.md` §3–§9) and
//! the membership operations of §7 as pure functions.
//!
//! A member feeds it what it fetched (namespaces 12 and 13 through
//! [`GroupState::ingest_bundle`] / [`GroupState::ingest_state`]), encrypts
//! with [`GroupState::encrypt`] and checks incoming messages with
//! [`GroupState::receive`]. An admin (who holds `group_seed`) additionally
//! calls the operations (`create`, `add_members`, `remove_members`,
//! `member_left`, `rename`, `set_timer`, `set_share_history`, `promote`,
//! `mark_joined`, `reissue`), each returning a [`Publication`]: what to
//! store where, what to revoke and what to send 1:1. The state applies the
//! change to itself optimistically; re-reading namespaces 12 and 13 after
//! publishing settles concurrent changes (§3.5, §4.3).

use std::collections::BTreeMap;

use super::control::{
    Notice, NoticeCheck, UmbraGroupControl, build_invite, build_promote, build_removal_notice,
    check_notice, seal_history_keys,
};
use super::identity::{GroupKeys, MemberAuth, MemberStatus, Role};
use super::keys::{BundleOutcome, GenerationKey, KeyBundle, KeyRing, check_member_id};
use super::message::{ReceivedGroupMessage, encrypt_group_content, open_group_message};
use super::state::{GroupInfo, Member, StateDocument};
use super::{
    GroupError, GroupRng, MAX_MEMBERS, MESSAGE_TTL_MS, SUPERSEDED_GRACE_MS, SUPERSEDED_KEY_KEEP_MS,
};
use crate::identity::{AccountId, AccountKeys};
use crate::message::protos::Content;
use crate::message::protos::content::ExpirationType;
use crate::rpc::sign::SubaccountToken;

/// What an admin operation asks the client to do, in this order:
/// 1. store `bundle` (if any) in namespace 12 and then `state` in namespace
///    13, both signed with the group key, TTL 30 days;
/// 2. `revoke_subaccount` with `revoke`;
/// 3. store each `removal_notices` entry in namespace −11 (TTL 14 days);
/// 4. send each `direct` control 1:1 (with a sync copy), in a Content whose
///    `sigTimestamp` is `timestamp` (the INVITE signature covers it), and
///    each `history` payload 1:1;
/// 5. post `notice` (if any) to the group with [`GroupState::encrypt`].
#[derive(Debug)]
#[non_exhaustive]
pub struct Publication {
    /// The new key bundle (namespace 12), when the member set changed.
    pub bundle: Option<KeyBundle>,
    /// The new state document (namespace 13).
    pub state: StateDocument,
    /// Tokens to revoke at the group's swarm.
    pub revoke: Vec<SubaccountToken>,
    /// Removal notices for namespace −11: (removed member, 170 bytes).
    pub removal_notices: Vec<(AccountId, Vec<u8>)>,
    /// 1:1 control messages (INVITE, PROMOTE): (recipient, control).
    pub direct: Vec<(AccountId, UmbraGroupControl)>,
    /// 1:1 sealed history keys for new members when the group shares history.
    pub history: Vec<(AccountId, Vec<u8>)>,
    /// The notice to post to the group (namespace 11).
    pub notice: Option<UmbraGroupControl>,
    /// The `sigTimestamp` to use for the 1:1 messages and the notice.
    pub timestamp: u64,
}

/// What [`GroupState::ingest_state`] did with a document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateOutcome {
    /// It is the new current document.
    NewCurrent,
    /// Valid but not current; it may still define `roster(G)` of its generation.
    Older,
    /// Already held.
    AlreadyKnown,
    /// We hold no key for its generation yet; kept until a bundle arrives.
    AwaitingKey {
        /// The document's generation.
        generation: u64,
    },
}

/// A group message ready to store in namespace 11.
#[derive(Debug, Clone)]
pub struct OutgoingGroupMessage {
    /// The bytes to store.
    pub data: Vec<u8>,
    /// The store `timestamp` (= `Content.sigTimestamp`).
    pub timestamp: u64,
    /// The TTL: 14 days, or the group's timer.
    pub ttl_ms: u64,
}

/// What a leaving member must do (§7.4).
#[derive(Debug, Clone)]
pub enum LeavePlan {
    /// Post this MEMBER_LEFT to the group, then forget the group's keys.
    PostMemberLeft(UmbraGroupControl),
    /// We are the last member: `delete_all` (namespace `"all"`) with the group key.
    DeleteGroup,
}

/// One client's view of a group: keys, documents, and (for admins) the seed.
#[derive(Debug)]
pub struct GroupState {
    group_id: AccountId,
    admin: Option<GroupKeys>,
    auth: Option<MemberAuth>,
    ring: KeyRing,
    /// Verified documents: the current one, the highest version of each
    /// generation, and those whose key we do not hold yet.
    docs: Vec<StateDocument>,
    current: Option<(StateDocument, GroupInfo)>,
    /// `roster(G)`: the version and roster of the highest-version document under `K_G`.
    rosters: BTreeMap<u64, (u64, GroupInfo)>,
}

impl GroupState {
    /// A member's state after accepting a verified INVITE (§7.2).
    pub fn from_invite(group_id: AccountId, auth: MemberAuth) -> Self {
        Self::empty(group_id, None, Some(auth))
    }

    /// An admin's state from the group keys (after a PROMOTE, or a restore).
    pub fn from_admin_keys(keys: GroupKeys) -> Self {
        Self::empty(keys.id(), Some(keys), None)
    }

    fn empty(group_id: AccountId, admin: Option<GroupKeys>, auth: Option<MemberAuth>) -> Self {
        Self {
            group_id,
            admin,
            auth,
            ring: KeyRing::new(),
            docs: Vec::new(),
            current: None,
            rosters: BTreeMap::new(),
        }
    }

    /// Becomes admin after a verified PROMOTE (§7.6). Returns our old token,
    /// which the new admin revokes.
    pub fn become_admin(&mut self, keys: GroupKeys) -> Result<Option<SubaccountToken>, GroupError> {
        if keys.id() != self.group_id {
            return Err(GroupError::SeedMismatch);
        }
        self.admin = Some(keys);
        Ok(self.auth.as_ref().map(MemberAuth::token))
    }

    /// The group ID.
    pub fn group_id(&self) -> AccountId {
        self.group_id
    }

    /// Whether we hold `group_seed`.
    pub fn is_admin(&self) -> bool {
        self.admin.is_some()
    }

    /// The group keys, for admins.
    pub fn admin_keys(&self) -> Option<&GroupKeys> {
        self.admin.as_ref()
    }

    /// Our subaccount credentials, for members.
    pub fn member_auth(&self) -> Option<&MemberAuth> {
        self.auth.as_ref()
    }

    /// The key ring.
    pub fn keys(&self) -> &KeyRing {
        &self.ring
    }

    /// The current state (name, roster, settings).
    pub fn info(&self) -> Option<&GroupInfo> {
        self.current.as_ref().map(|(_, i)| i)
    }

    /// The current state version (0 before any).
    pub fn version(&self) -> u64 {
        self.current.as_ref().map_or(0, |(d, _)| d.version())
    }

    /// The current document.
    pub fn current_document(&self) -> Option<&StateDocument> {
        self.current.as_ref().map(|(d, _)| d)
    }

    /// The current generation (for sending).
    pub fn generation(&self) -> Option<u64> {
        self.ring.current_generation()
    }

    /// `roster(G)` (§4.3).
    pub fn roster(&self, generation: u64) -> Option<&GroupInfo> {
        self.rosters.get(&generation).map(|(_, i)| i)
    }

    /// Adds a fetched bundle (§3.3). Admins derive the key from the seed;
    /// members open their entry with `me`. Documents waiting for this key
    /// are opened.
    pub fn ingest_bundle(
        &mut self,
        bytes: &[u8],
        me: &AccountKeys,
        now_ms: u64,
    ) -> Result<BundleOutcome, GroupError> {
        let bundle = KeyBundle::parse(bytes, &self.group_id)?;
        let key = match &self.admin {
            Some(g) => bundle.derive(g),
            None => bundle.open(&self.group_id, me.x25519_secret())?,
        };
        let out = self
            .ring
            .insert(bundle.generation(), bundle.digest(), key, now_ms);
        if out != BundleOutcome::AlreadyKnown {
            let waiting: Vec<StateDocument> = self
                .docs
                .iter()
                .filter(|d| d.generation() == bundle.generation())
                .cloned()
                .collect();
            for d in waiting {
                // A document that fails to open under this key stays parked.
                let _ = self.apply_document(d);
            }
        }
        Ok(out)
    }

    /// Adds a fetched state document (§4.3).
    pub fn ingest_state(&mut self, bytes: &[u8]) -> Result<StateOutcome, GroupError> {
        let doc = StateDocument::parse(bytes, &self.group_id)?;
        if self.docs.iter().any(|d| d.to_bytes() == doc.to_bytes()) {
            return Ok(StateOutcome::AlreadyKnown);
        }
        if !self.ring.has(doc.generation()) {
            let generation = doc.generation();
            self.docs.push(doc);
            return Ok(StateOutcome::AwaitingKey { generation });
        }
        self.apply_document(doc)
    }

    fn apply_document(&mut self, doc: StateDocument) -> Result<StateOutcome, GroupError> {
        let info = self
            .ring
            .keys_of(doc.generation())
            .find_map(|k| doc.open(&self.group_id, k).ok())
            .ok_or(GroupError::DecryptFailed {
                what: "state document",
            })?;
        let g = doc.generation();
        if self.rosters.get(&g).is_none_or(|(v, _)| doc.version() > *v) {
            self.rosters.insert(g, (doc.version(), info.clone()));
        }
        let is_new = self.current.as_ref().is_none_or(|(c, _)| doc.beats(c));
        if !self.docs.iter().any(|d| d.to_bytes() == doc.to_bytes()) {
            self.docs.push(doc.clone());
        }
        let outcome = if is_new {
            self.current = Some((doc, info));
            StateOutcome::NewCurrent
        } else {
            StateOutcome::Older
        };
        self.trim_docs();
        Ok(outcome)
    }

    /// Keeps the current document, each generation's roster document, and
    /// documents still waiting for a key.
    fn trim_docs(&mut self) {
        let cur = self.current.as_ref().map(|(d, _)| d.to_bytes().to_vec());
        let rosters = &self.rosters;
        let ring = &self.ring;
        self.docs.retain(|d| {
            Some(d.to_bytes()) == cur.as_deref()
                || !ring.has(d.generation())
                || rosters
                    .get(&d.generation())
                    .is_some_and(|(v, _)| *v == d.version())
        });
    }

    /// Drops keys and rosters superseded more than 30 days ago (§3.4).
    pub fn prune(&mut self, now_ms: u64) {
        let keep_after = now_ms.saturating_sub(SUPERSEDED_KEY_KEEP_MS);
        let drop: Vec<u64> = self
            .rosters
            .keys()
            .copied()
            .filter(|g| self.ring.superseded_at(*g).is_some_and(|t| t < keep_after))
            .collect();
        self.ring.prune(now_ms);
        for g in drop {
            self.rosters.remove(&g);
        }
        self.trim_docs();
    }

    // ---- local persistence and shared-history keys (added for the client, issue 8) ----

    /// Every verified document held: the current one, each generation's
    /// roster document and those waiting for a key. With
    /// [`KeyRing::to_bytes`] of [`GroupState::keys`] this is what a client
    /// persists; [`GroupState::restore`] reads it back.
    pub fn documents(&self) -> impl Iterator<Item = &StateDocument> {
        self.docs.iter()
    }

    /// Rebuilds a state from persisted parts: the group keys (admins), the
    /// member credentials (members), the key ring and the documents' bytes.
    /// Documents that no longer parse are skipped.
    pub fn restore(
        group_id: AccountId,
        admin: Option<GroupKeys>,
        auth: Option<MemberAuth>,
        ring: KeyRing,
        documents: &[Vec<u8>],
    ) -> Result<Self, GroupError> {
        if admin.as_ref().is_some_and(|k| k.id() != group_id) {
            return Err(GroupError::SeedMismatch);
        }
        let mut st = Self::empty(group_id, admin, auth);
        st.ring = ring;
        for d in documents {
            let _ = st.ingest_state(d);
        }
        Ok(st)
    }

    /// Adds generation keys received 1:1 for shared history (§7.2 step 4,
    /// opened with `control::open_history_keys`), learned at `now_ms`.
    /// Generations already held are left alone; documents waiting for one of
    /// these keys are opened. Returns how many generations were added.
    pub fn add_history_keys(&mut self, keys: Vec<(u64, GenerationKey)>, now_ms: u64) -> usize {
        let mut added = 0;
        for (g, key) in keys {
            if self.ring.has(g) {
                continue;
            }
            let digest = super::tie_digest(key.as_bytes());
            self.ring.insert(g, digest, key, now_ms);
            added += 1;
            let waiting: Vec<StateDocument> = self
                .docs
                .iter()
                .filter(|d| d.generation() == g)
                .cloned()
                .collect();
            for d in waiting {
                let _ = self.apply_document(d);
            }
        }
        added
    }

    /// Encrypts `content` under the current generation (§6.2). The group's
    /// timer is copied into `expirationType` / `expirationTimer` (§6.4);
    /// `sigTimestamp` must be set.
    pub fn encrypt(
        &self,
        sender: &AccountKeys,
        mut content: Content,
        nonce: [u8; 24],
    ) -> Result<OutgoingGroupMessage, GroupError> {
        let info = self.info().ok_or(GroupError::NoState)?;
        let (g, key) = self.ring.current().ok_or(GroupError::NoCurrentKey)?;
        let timestamp = content
            .sig_timestamp
            .ok_or(GroupError::MissingSigTimestamp)?;
        if info.timer_s > 0 {
            content.expiration_type = Some(ExpirationType::DeleteAfterSend as i32);
            content.expiration_timer = Some(info.timer_s);
        } else {
            content.expiration_type = Some(ExpirationType::Unknown as i32);
            content.expiration_timer = Some(0);
        }
        let data = encrypt_group_content(sender, &self.group_id, g, key, &content, nonce)?;
        let ttl_ms = if info.timer_s > 0 {
            u64::from(info.timer_s) * 1000
        } else {
            MESSAGE_TTL_MS
        };
        Ok(OutgoingGroupMessage {
            data,
            timestamp,
            ttl_ms,
        })
    }

    /// Receives a namespace-11 item first seen at `first_seen_ms` (§6.3):
    /// decrypts with held keys newest first, verifies the sender, requires
    /// the sender in `roster(G)`, refuses a superseded generation more than
    /// 24 h after we learned of its successor, and applies the unsend rule
    /// of §6.4. Deduplicate with [`ReceivedGroupMessage::dedup_key`].
    pub fn receive(
        &self,
        data: &[u8],
        first_seen_ms: u64,
    ) -> Result<ReceivedGroupMessage, GroupError> {
        let msg = open_group_message(data, &self.group_id, self.ring.newest_first())?;
        let generation = msg.generation;
        let roster = self
            .roster(generation)
            .ok_or(GroupError::RosterUnknown { generation })?;
        if roster.member(&msg.sender).is_none() {
            return Err(GroupError::SenderNotInRoster { generation });
        }
        if let Some(t) = self.ring.superseded_at(generation)
            && first_seen_ms >= t.saturating_add(SUPERSEDED_GRACE_MS)
        {
            return Err(GroupError::SupersededGeneration { generation });
        }
        if let Some(u) = &msg.content.unsend_request
            && u.author != msg.sender.to_string()
            && !roster.is_admin(&msg.sender)
        {
            return Err(GroupError::ContentNotAllowed(
                "unsend of another member's message by a non-admin",
            ));
        }
        Ok(msg)
    }

    /// Checks the control message of a received group message against the
    /// current state (§8). `None` when the message carries no control.
    pub fn check_notice(
        &self,
        msg: &ReceivedGroupMessage,
    ) -> Result<Option<NoticeCheck>, GroupError> {
        let Some(ctrl) = msg
            .content
            .data_message
            .as_ref()
            .and_then(|d| d.umbra_group_control.as_ref())
        else {
            return Ok(None);
        };
        let info = self.info().ok_or(GroupError::NoState)?;
        check_notice(ctrl, &msg.sender, info, self.version()).map(Some)
    }

    /// The plan for leaving as `me` (§7.4).
    pub fn leave(&self, me: &AccountId) -> Result<LeavePlan, GroupError> {
        let info = self.info().ok_or(GroupError::NoState)?;
        if info.members.len() == 1 && info.member(me).is_some() {
            return Ok(LeavePlan::DeleteGroup);
        }
        let admins = info
            .members
            .iter()
            .filter(|m| m.role == Role::Admin)
            .count();
        if admins == 1 && info.is_admin(me) {
            return Err(GroupError::LastAdmin);
        }
        Ok(LeavePlan::PostMemberLeft(
            Notice::MemberLeft.to_control(None),
        ))
    }

    // ---- admin operations (§7) ----

    /// Creates a group (§7.1): `creator` is the first admin, `invitees` are
    /// invited members. Draws every random value from `rng`; the caller
    /// draws `group_seed` too (32 bytes from the OS).
    pub fn create<R: GroupRng>(
        group_seed: &[u8; 32],
        creator: &AccountId,
        name: &str,
        invitees: &[AccountId],
        share_history: bool,
        now_ms: u64,
        rng: &mut R,
    ) -> Result<(GroupState, Publication), GroupError> {
        let keys = GroupKeys::from_seed(group_seed);
        check_member_id(creator)?;
        let mut info = GroupInfo {
            name: name.to_owned(),
            members: vec![Member {
                id: *creator,
                added_at: now_ms,
                role: Role::Admin,
                status: MemberStatus::Joined,
                token: None,
            }],
            timer_s: 0,
            share_history,
            avatar: None,
            updated_at: now_ms,
        };
        let mut direct = Vec::new();
        let auths = add_to_roster(&keys, &mut info, invitees, now_ms, rng)?;
        for (id, auth) in &auths {
            direct.push((*id, build_invite(&keys, id, name, auth, now_ms)));
        }
        direct.push((*creator, build_promote(&keys)));
        let mut st = GroupState::from_admin_keys(keys);
        let (bundle, state) = st.publish(info, 1, 1, now_ms, rng)?;
        Ok((
            st,
            Publication {
                bundle,
                state,
                revoke: Vec::new(),
                removal_notices: Vec::new(),
                direct,
                history: Vec::new(),
                notice: None,
                timestamp: now_ms,
            },
        ))
    }

    /// Adds members (§7.2): new subaccounts, generation `G + 1`, state
    /// `v + 1`, INVITEs, MEMBERS_ADDED and, if the group shares history,
    /// the earlier keys we hold sealed to each new member.
    pub fn add_members<R: GroupRng>(
        &mut self,
        ids: &[AccountId],
        now_ms: u64,
        rng: &mut R,
    ) -> Result<Publication, GroupError> {
        let keys = self.admin.clone().ok_or(GroupError::NotAdmin)?;
        let mut info = self.info().ok_or(GroupError::NoState)?.clone();
        let auths = add_to_roster(&keys, &mut info, ids, now_ms, rng)?;
        let history_keys: Vec<(u64, GenerationKey)> = if info.share_history {
            self.ring
                .newest_first()
                .map(|(g, k)| (g, k.clone()))
                .collect()
        } else {
            Vec::new()
        };
        let (bundle, state) = self.publish_next(info.clone(), true, now_ms, rng)?;
        let mut direct = Vec::new();
        let mut history = Vec::new();
        for (id, auth) in &auths {
            direct.push((*id, build_invite(&keys, id, &info.name, auth, now_ms)));
            if !history_keys.is_empty() {
                history.push((
                    *id,
                    seal_history_keys(&keys, id, &history_keys, rng.array())?,
                ));
            }
        }
        let added: Vec<AccountId> = auths.iter().map(|(i, _)| *i).collect();
        Ok(Publication {
            bundle,
            notice: Some(Notice::MembersAdded(added).to_control(Some(state.version()))),
            state,
            revoke: Vec::new(),
            removal_notices: Vec::new(),
            direct,
            history,
            timestamp: now_ms,
        })
    }

    /// Removes members (§7.3): generation `G + 1` without them, state
    /// `v + 1`, their tokens to revoke, removal notices, MEMBERS_REMOVED.
    pub fn remove_members<R: GroupRng>(
        &mut self,
        ids: &[AccountId],
        now_ms: u64,
        rng: &mut R,
    ) -> Result<Publication, GroupError> {
        self.remove_inner(ids, true, now_ms, rng)
    }

    /// Handles a MEMBER_LEFT from a roster member (§7.4): like a removal,
    /// without a removal notice.
    pub fn member_left<R: GroupRng>(
        &mut self,
        id: &AccountId,
        now_ms: u64,
        rng: &mut R,
    ) -> Result<Publication, GroupError> {
        self.remove_inner(std::slice::from_ref(id), false, now_ms, rng)
    }

    fn remove_inner<R: GroupRng>(
        &mut self,
        ids: &[AccountId],
        notices: bool,
        now_ms: u64,
        rng: &mut R,
    ) -> Result<Publication, GroupError> {
        let keys = self.admin.clone().ok_or(GroupError::NotAdmin)?;
        let mut info = self.info().ok_or(GroupError::NoState)?.clone();
        let mut revoke = Vec::new();
        for id in ids {
            let pos = info
                .members
                .iter()
                .position(|m| m.id == *id)
                .ok_or_else(|| GroupError::NotMember(id.short()))?;
            let m = info.members.remove(pos);
            revoke.extend(m.token);
        }
        let (bundle, state) = self.publish_next(info, true, now_ms, rng)?;
        let mut removal_notices = Vec::new();
        if notices {
            for id in ids {
                removal_notices.push((
                    *id,
                    build_removal_notice(&keys, id, state.generation(), rng.array())?,
                ));
            }
        }
        Ok(Publication {
            bundle,
            notice: Some(Notice::MembersRemoved(ids.to_vec()).to_control(Some(state.version()))),
            state,
            revoke,
            removal_notices,
            direct: Vec::new(),
            history: Vec::new(),
            timestamp: now_ms,
        })
    }

    /// Renames the group (§7.5): state `v + 1`, same `G`, NAME_CHANGED.
    pub fn rename<R: GroupRng>(
        &mut self,
        name: &str,
        now_ms: u64,
        rng: &mut R,
    ) -> Result<Publication, GroupError> {
        self.settings_change(now_ms, rng, |i| {
            i.name = name.to_owned();
            Some(Notice::NameChanged(name.to_owned()))
        })
    }

    /// Sets the delete-after-send timer (§7.5): DISAPPEARING_CHANGED.
    pub fn set_timer<R: GroupRng>(
        &mut self,
        seconds: u32,
        now_ms: u64,
        rng: &mut R,
    ) -> Result<Publication, GroupError> {
        self.settings_change(now_ms, rng, |i| {
            i.timer_s = seconds;
            Some(Notice::DisappearingChanged(seconds))
        })
    }

    /// Changes the share-history setting `"h"` (§7.2 step 4); no notice.
    pub fn set_share_history<R: GroupRng>(
        &mut self,
        share: bool,
        now_ms: u64,
        rng: &mut R,
    ) -> Result<Publication, GroupError> {
        self.settings_change(now_ms, rng, |i| {
            i.share_history = share;
            None
        })
    }

    /// Marks an invitee as joined after their INVITE_RESPONSE (§7.2).
    pub fn mark_joined<R: GroupRng>(
        &mut self,
        id: &AccountId,
        now_ms: u64,
        rng: &mut R,
    ) -> Result<Publication, GroupError> {
        let short = id.short();
        let mut missing = false;
        let p = self.settings_change(now_ms, rng, |i| {
            match i.members.iter_mut().find(|m| m.id == *id) {
                Some(m) => m.status = MemberStatus::Joined,
                None => missing = true,
            }
            None
        });
        if missing {
            return Err(GroupError::NotMember(short));
        }
        p
    }

    /// Promotes a member to admin (§7.6): PROMOTE 1:1 with the seed, state
    /// `v + 1` with role 1 and no token, MEMBERS_PROMOTED.
    pub fn promote<R: GroupRng>(
        &mut self,
        id: &AccountId,
        now_ms: u64,
        rng: &mut R,
    ) -> Result<Publication, GroupError> {
        let keys = self.admin.clone().ok_or(GroupError::NotAdmin)?;
        if self.info().and_then(|i| i.member(id)).is_none() {
            return Err(GroupError::NotMember(id.short()));
        }
        let mut p = self.settings_change(now_ms, rng, |i| {
            if let Some(m) = i.members.iter_mut().find(|m| m.id == *id) {
                m.role = Role::Admin;
                m.token = None;
            }
            Some(Notice::MembersPromoted(vec![*id]))
        })?;
        p.direct.push((*id, build_promote(&keys)));
        Ok(p)
    }

    /// Whether the current state and keys disagree after concurrent admin
    /// changes (§3.5, §4.3): the current document is not under the current
    /// generation, or two bundles claim the current generation.
    pub fn needs_reissue(&self) -> bool {
        match (self.current.as_ref(), self.ring.current_generation()) {
            (Some((d, _)), Some(g)) => d.generation() != g || self.ring.keys_of(g).count() > 1,
            _ => false,
        }
    }

    /// Issues generation `G + 1` for the current roster and state `v + 1`
    /// (the resolution of §3.5). No notice.
    pub fn reissue<R: GroupRng>(
        &mut self,
        now_ms: u64,
        rng: &mut R,
    ) -> Result<Publication, GroupError> {
        self.admin.as_ref().ok_or(GroupError::NotAdmin)?;
        let info = self.info().ok_or(GroupError::NoState)?.clone();
        let (bundle, state) = self.publish_next(info, true, now_ms, rng)?;
        Ok(Publication {
            bundle,
            state,
            revoke: Vec::new(),
            removal_notices: Vec::new(),
            direct: Vec::new(),
            history: Vec::new(),
            notice: None,
            timestamp: now_ms,
        })
    }

    fn settings_change<R: GroupRng>(
        &mut self,
        now_ms: u64,
        rng: &mut R,
        change: impl FnOnce(&mut GroupInfo) -> Option<Notice>,
    ) -> Result<Publication, GroupError> {
        self.admin.as_ref().ok_or(GroupError::NotAdmin)?;
        let mut info = self.info().ok_or(GroupError::NoState)?.clone();
        let notice = change(&mut info);
        let (bundle, state) = self.publish_next(info, false, now_ms, rng)?;
        Ok(Publication {
            bundle,
            notice: notice.map(|n| n.to_control(Some(state.version()))),
            state,
            revoke: Vec::new(),
            removal_notices: Vec::new(),
            direct: Vec::new(),
            history: Vec::new(),
            timestamp: now_ms,
        })
    }

    fn publish_next<R: GroupRng>(
        &mut self,
        info: GroupInfo,
        rekey: bool,
        now_ms: u64,
        rng: &mut R,
    ) -> Result<(Option<KeyBundle>, StateDocument), GroupError> {
        let g = self
            .ring
            .current_generation()
            .ok_or(GroupError::NoCurrentKey)?;
        let g = if rekey {
            g.checked_add(1).ok_or(GroupError::Overflow("generation"))?
        } else {
            g
        };
        let v = self
            .version()
            .checked_add(1)
            .ok_or(GroupError::Overflow("version"))?;
        self.publish(info, g, v, now_ms, rng)
    }

    /// Builds (when `generation` is new) the bundle and the state document,
    /// and applies both to this state.
    fn publish<R: GroupRng>(
        &mut self,
        mut info: GroupInfo,
        generation: u64,
        version: u64,
        now_ms: u64,
        rng: &mut R,
    ) -> Result<(Option<KeyBundle>, StateDocument), GroupError> {
        let keys = self.admin.clone().ok_or(GroupError::NotAdmin)?;
        info.updated_at = now_ms;
        info.validate()?;
        let mut bundle = None;
        let key = if self.ring.has(generation) {
            self.ring
                .current()
                .map(|(_, k)| k.clone())
                .ok_or(GroupError::NoCurrentKey)?
        } else {
            let (b, k) = KeyBundle::build(&keys, generation, now_ms, &info.member_ids(), rng)?;
            self.ring.insert(generation, b.digest(), k.clone(), now_ms);
            bundle = Some(b);
            k
        };
        let doc = StateDocument::seal(&keys, generation, &key, version, &info, rng.array())?;
        self.apply_document(doc.clone())?;
        Ok((bundle, doc))
    }
}

/// Adds `ids` as invited role-0 members with fresh subaccounts.
fn add_to_roster<R: GroupRng>(
    keys: &GroupKeys,
    info: &mut GroupInfo,
    ids: &[AccountId],
    now_ms: u64,
    rng: &mut R,
) -> Result<Vec<(AccountId, MemberAuth)>, GroupError> {
    for (n, id) in ids.iter().enumerate() {
        check_member_id(id)?;
        if info.member(id).is_some() || ids[..n].contains(id) {
            return Err(GroupError::AlreadyMember(id.short()));
        }
    }
    let count = info.members.len() + ids.len();
    if count > MAX_MEMBERS {
        return Err(GroupError::TooManyMembers { count });
    }
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let sub_seed = zeroize::Zeroizing::new(rng.array::<32>());
        let auth = MemberAuth::issue(keys, &sub_seed);
        info.members.push(Member {
            id: *id,
            added_at: now_ms,
            role: Role::Member,
            status: MemberStatus::Invited,
            token: Some(auth.token()),
        });
        out.push((*id, auth));
    }
    info.sort_members();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::ExpandRng;
    use crate::group::control::{
        ControlType, open_history_keys, open_removal_notice, verify_invite, verify_promote,
    };
    use crate::message::protos::DataMessage;

    const T0: u64 = 1_700_000_000_000;
    const HOUR: u64 = 3600 * 1000;

    fn user(s: u8) -> AccountKeys {
        AccountKeys::from_seed(&[s; 32])
    }

    fn text(body: &str, t: u64) -> Content {
        Content {
            data_message: Some(DataMessage {
                body: Some(body.into()),
                ..Default::default()
            }),
            sig_timestamp: Some(t),
            ..Default::default()
        }
    }

    fn body(m: &ReceivedGroupMessage) -> &str {
        m.content
            .data_message
            .as_ref()
            .and_then(|d| d.body.as_deref())
            .unwrap_or("")
    }

    /// A member joining from the INVITE in `p` and the published items.
    fn join(p: &Publication, me: &AccountKeys, now: u64) -> GroupState {
        let (_, ctrl) = p
            .direct
            .iter()
            .find(|(id, _)| *id == me.account_id())
            .unwrap();
        let inv = verify_invite(ctrl, &me.account_id(), p.timestamp).unwrap();
        let mut st = GroupState::from_invite(inv.group_id, inv.auth);
        publish_to(&mut st, p, me, now);
        st
    }

    fn publish_to(st: &mut GroupState, p: &Publication, me: &AccountKeys, now: u64) {
        if let Some(b) = &p.bundle {
            st.ingest_bundle(b.to_bytes(), me, now).unwrap();
        }
        st.ingest_state(p.state.to_bytes()).unwrap();
    }

    struct World {
        alice: AccountKeys,
        bob: AccountKeys,
        carol: AccountKeys,
        admin: GroupState,
        create: Publication,
        rng: ExpandRng,
    }

    fn world() -> World {
        let (alice, bob, carol) = (user(1), user(2), user(3));
        let mut rng = ExpandRng::new([42; 32]);
        let (admin, create) = GroupState::create(
            &[7; 32],
            &alice.account_id(),
            "Team",
            &[bob.account_id(), carol.account_id()],
            false,
            T0,
            &mut rng,
        )
        .unwrap();
        World {
            alice,
            bob,
            carol,
            admin,
            create,
            rng,
        }
    }

    #[test]
    fn create_publishes_generation_1_and_version_1() {
        let w = world();
        let b = w.create.bundle.as_ref().unwrap();
        assert_eq!((b.generation(), w.create.state.version()), (1, 1));
        assert_eq!(w.create.direct.len(), 3);
        let promote = &w.create.direct[2];
        assert_eq!(promote.0, w.alice.account_id());
        assert_eq!(
            verify_promote(&promote.1).unwrap().keys.id(),
            w.admin.group_id()
        );
        let info = w.admin.info().unwrap();
        assert_eq!(info.members.len(), 3);
        assert!(info.is_admin(&w.alice.account_id()));
        let bob = info.member(&w.bob.account_id()).unwrap();
        assert_eq!(
            (bob.role, bob.status),
            (Role::Member, MemberStatus::Invited)
        );
        assert!(bob.token.is_some());
        // Another device of the creator restores the admin view from the
        // PROMOTE and the published items.
        let mut dev2 = GroupState::from_admin_keys(verify_promote(&promote.1).unwrap().keys);
        publish_to(&mut dev2, &w.create, &w.alice, T0);
        assert_eq!(dev2.info(), w.admin.info());
    }

    #[test]
    fn lifecycle_message_add_remove_rename_promote_leave() {
        let mut w = world();
        let mut bob = join(&w.create, &w.bob, T0);
        let mut carol = join(&w.create, &w.carol, T0);
        assert_eq!(bob.generation(), Some(1));
        assert_eq!(bob.info().unwrap().name, "Team");

        // Bob accepts; the admin marks him joined (same G, v + 1).
        let p = w
            .admin
            .mark_joined(&w.bob.account_id(), T0 + 1, &mut w.rng)
            .unwrap();
        assert!(p.bundle.is_none());
        assert_eq!((p.state.generation(), p.state.version()), (1, 2));
        publish_to(&mut bob, &p, &w.bob, T0 + 1);
        publish_to(&mut carol, &p, &w.carol, T0 + 1);

        // Bob writes; Alice and Carol read.
        let m1 = bob.encrypt(&w.bob, text("hello", T0 + 2), [1; 24]).unwrap();
        assert_eq!(m1.ttl_ms, MESSAGE_TTL_MS);
        let got = w.admin.receive(&m1.data, T0 + 3).unwrap();
        assert_eq!((body(&got), got.sender), ("hello", w.bob.account_id()));
        assert_eq!(body(&carol.receive(&m1.data, T0 + 3).unwrap()), "hello");

        // Add Dave without shared history: he reads new messages only.
        let dave_keys = user(4);
        let p = w
            .admin
            .add_members(&[dave_keys.account_id()], T0 + 4, &mut w.rng)
            .unwrap();
        assert_eq!(p.bundle.as_ref().unwrap().generation(), 2);
        assert!(p.history.is_empty());
        assert_eq!(
            Notice::from_control(p.notice.as_ref().unwrap()).unwrap().0,
            Notice::MembersAdded(vec![dave_keys.account_id()])
        );
        let dave = join(&p, &dave_keys, T0 + 4);
        publish_to(&mut bob, &p, &w.bob, T0 + 4);
        publish_to(&mut carol, &p, &w.carol, T0 + 4);
        assert!(matches!(
            dave.receive(&m1.data, T0 + 5),
            Err(GroupError::DecryptFailed { .. })
        ));
        let m2 = bob
            .encrypt(&w.bob, text("welcome", T0 + 5), [2; 24])
            .unwrap();
        assert_eq!(body(&dave.receive(&m2.data, T0 + 6).unwrap()), "welcome");

        // Remove Carol: new generation without her, token revoked, notice.
        let carol_token = w
            .admin
            .info()
            .unwrap()
            .member(&w.carol.account_id())
            .unwrap()
            .token;
        let p = w
            .admin
            .remove_members(&[w.carol.account_id()], T0 + 7, &mut w.rng)
            .unwrap();
        assert_eq!(p.revoke, carol_token.into_iter().collect::<Vec<_>>());
        assert_eq!(p.bundle.as_ref().unwrap().generation(), 3);
        let (who, notice) = &p.removal_notices[0];
        assert_eq!(*who, w.carol.account_id());
        assert_eq!(
            open_removal_notice(notice, &w.carol, &carol.group_id()).unwrap(),
            3
        );
        publish_to(&mut bob, &p, &w.bob, T0 + 7);
        // Carol cannot open the new bundle nor decrypt the new generation.
        assert_eq!(
            carol
                .ingest_bundle(p.bundle.as_ref().unwrap().to_bytes(), &w.carol, T0 + 7)
                .unwrap_err(),
            GroupError::NotInGeneration { generation: 3 }
        );
        assert!(matches!(
            carol.ingest_state(p.state.to_bytes()),
            Ok(StateOutcome::AwaitingKey { generation: 3 })
        ));
        let m3 = bob
            .encrypt(&w.bob, text("secret", T0 + 8), [3; 24])
            .unwrap();
        assert!(matches!(
            carol.receive(&m3.data, T0 + 9),
            Err(GroupError::DecryptFailed { .. })
        ));
        assert_eq!(body(&w.admin.receive(&m3.data, T0 + 9).unwrap()), "secret");
        // A message Carol posts (her token may have aged out) is rejected:
        // she only holds old keys, and generation 2 is no longer hers after
        // the grace, and she is not in roster(3) anyway.
        let forged = carol
            .encrypt(&w.carol, text("still here", T0 + 10), [4; 24])
            .unwrap();
        assert_eq!(
            bob.receive(&forged.data, T0 + 25 * HOUR).unwrap_err(),
            GroupError::SupersededGeneration { generation: 2 }
        );

        // Rename: a notice Bob shows because it agrees with the state.
        let p = w.admin.rename("Team 2", T0 + 11, &mut w.rng).unwrap();
        publish_to(&mut bob, &p, &w.bob, T0 + 11);
        assert_eq!(bob.info().unwrap().name, "Team 2");
        let mut c = text("", T0 + 12);
        if let Some(d) = c.data_message.as_mut() {
            d.umbra_group_control = p.notice.clone();
        }
        let posted = w.admin.encrypt(&w.alice, c, [5; 24]).unwrap();
        let got = bob.receive(&posted.data, T0 + 12).unwrap();
        assert_eq!(
            bob.check_notice(&got).unwrap(),
            Some(NoticeCheck::Show(Notice::NameChanged("Team 2".into())))
        );

        // Timer: later messages carry delete-after-send and a shorter TTL.
        let p = w.admin.set_timer(600, T0 + 13, &mut w.rng).unwrap();
        publish_to(&mut bob, &p, &w.bob, T0 + 13);
        let m = bob
            .encrypt(&w.bob, text("brief", T0 + 14), [6; 24])
            .unwrap();
        assert_eq!(m.ttl_ms, 600_000);
        let got = w.admin.receive(&m.data, T0 + 14).unwrap();
        assert_eq!(got.content.expiration_timer, Some(600));
        assert_eq!(
            got.content.expiration_type,
            Some(ExpirationType::DeleteAfterSend as i32)
        );

        // Promote Bob; he checks the seed and revokes his old token.
        let p = w
            .admin
            .promote(&w.bob.account_id(), T0 + 15, &mut w.rng)
            .unwrap();
        let (_, ctrl) = p
            .direct
            .iter()
            .find(|(i, _)| *i == w.bob.account_id())
            .unwrap();
        assert_eq!(ctrl.r#type, ControlType::Promote as i32);
        let old = bob
            .become_admin(verify_promote(ctrl).unwrap().keys)
            .unwrap();
        assert_eq!(old, bob.member_auth().map(MemberAuth::token));
        publish_to(&mut bob, &p, &w.bob, T0 + 15);
        let me = bob.info().unwrap().member(&w.bob.account_id()).unwrap();
        assert_eq!((me.role, me.token), (Role::Admin, None));

        // Alice may now leave; Bob, as an admin, handles MEMBER_LEFT.
        assert!(matches!(
            w.admin.leave(&w.alice.account_id()),
            Ok(LeavePlan::PostMemberLeft(_))
        ));
        let p = bob
            .member_left(&w.alice.account_id(), T0 + 16, &mut w.rng)
            .unwrap();
        assert!(p.removal_notices.is_empty());
        assert_eq!(p.bundle.as_ref().unwrap().generation(), 4);
        assert!(!bob.info().unwrap().is_admin(&w.alice.account_id()));
        // Bob is now the last admin with Dave still in: he must promote first.
        assert_eq!(
            bob.leave(&w.bob.account_id()).unwrap_err(),
            GroupError::LastAdmin
        );
        let p = bob
            .remove_members(&[dave_keys.account_id()], T0 + 17, &mut w.rng)
            .unwrap();
        assert_eq!(p.state.version(), bob.version());
        assert!(matches!(
            bob.leave(&w.bob.account_id()),
            Ok(LeavePlan::DeleteGroup)
        ));
    }

    #[test]
    fn forged_items_are_rejected() {
        let mut w = world();
        let mut bob = join(&w.create, &w.bob, T0);
        let carol = join(&w.create, &w.carol, T0);
        // Carol (not an admin) posts a NAME_CHANGED: refused.
        let mut c = text("", T0 + 1);
        if let Some(d) = c.data_message.as_mut() {
            d.umbra_group_control = Some(Notice::NameChanged("Pwned".into()).to_control(Some(1)));
        }
        let m = carol.encrypt(&w.carol, c, [1; 24]).unwrap();
        let got = bob.receive(&m.data, T0 + 1).unwrap();
        assert_eq!(
            bob.check_notice(&got).unwrap_err(),
            GroupError::BadControl("admin notice from a non-admin")
        );
        // A state document and bundle signed by another key: refused.
        let mut rng = ExpandRng::new([1; 32]);
        let (_, forged) = GroupState::create(
            &[8; 32],
            &w.carol.account_id(),
            "Pwned",
            &[w.bob.account_id()],
            false,
            T0,
            &mut rng,
        )
        .unwrap();
        assert!(matches!(
            bob.ingest_state(forged.state.to_bytes()),
            Err(GroupError::BadSignature { .. })
        ));
        assert!(matches!(
            bob.ingest_bundle(forged.bundle.as_ref().unwrap().to_bytes(), &w.bob, T0),
            Err(GroupError::BadSignature { .. })
        ));
        // A non-admin cannot run admin operations.
        assert_eq!(
            bob.rename("x", T0, &mut w.rng).unwrap_err(),
            GroupError::NotAdmin
        );
        // An outsider's message, even under the right key, is refused.
        let eve = user(9);
        let (g, key) = bob.keys().current().unwrap();
        let data = crate::group::message::encrypt_group_content(
            &eve,
            &bob.group_id(),
            g,
            key,
            &text("hi", T0),
            [0; 24],
        )
        .unwrap();
        assert_eq!(
            bob.receive(&data, T0).unwrap_err(),
            GroupError::SenderNotInRoster { generation: 1 }
        );
        // Unsend of someone else's message by a non-admin.
        let unsend = Content {
            unsend_request: Some(crate::message::protos::UnsendRequest {
                timestamp: 1,
                author: w.alice.account_id().to_string(),
            }),
            sig_timestamp: Some(T0),
            ..Default::default()
        };
        let m = carol.encrypt(&w.carol, unsend, [2; 24]).unwrap();
        assert!(matches!(
            bob.receive(&m.data, T0),
            Err(GroupError::ContentNotAllowed(_))
        ));
        let _ = &mut w.admin;
    }

    #[test]
    fn replayed_old_generation_is_ignored() {
        let mut w = world();
        let mut bob = join(&w.create, &w.bob, T0);
        let old_msg = bob.encrypt(&w.bob, text("old", T0 + 1), [1; 24]).unwrap();
        let p = w
            .admin
            .remove_members(&[w.carol.account_id()], T0 + HOUR, &mut w.rng)
            .unwrap();
        publish_to(&mut bob, &p, &w.bob, T0 + HOUR);
        assert_eq!(bob.generation(), Some(2));
        // Someone re-stores the generation-1 bundle and the v1 state.
        let b1 = w.create.bundle.as_ref().unwrap().to_bytes();
        assert_eq!(
            bob.ingest_bundle(b1, &w.bob, T0 + 2 * HOUR).unwrap(),
            BundleOutcome::AlreadyKnown
        );
        assert_eq!(
            bob.ingest_state(w.create.state.to_bytes()).unwrap(),
            StateOutcome::AlreadyKnown
        );
        assert_eq!(bob.generation(), Some(2));
        assert_eq!(bob.version(), 2);
        assert!(bob.info().unwrap().member(&w.carol.account_id()).is_none());
        // New messages go out under generation 2.
        let m = bob
            .encrypt(&w.bob, text("new", T0 + 2 * HOUR), [2; 24])
            .unwrap();
        assert_eq!(
            w.admin.receive(&m.data, T0 + 2 * HOUR).unwrap().generation,
            2
        );
        // An old-generation message within 24 h of learning G = 2 is read;
        // replayed later, it is ignored.
        assert_eq!(
            body(&bob.receive(&old_msg.data, T0 + 2 * HOUR).unwrap()),
            "old"
        );
        assert_eq!(
            bob.receive(&old_msg.data, T0 + 26 * HOUR).unwrap_err(),
            GroupError::SupersededGeneration { generation: 1 }
        );
        // 30 days after, the old key is dropped altogether.
        bob.prune(T0 + HOUR + SUPERSEDED_KEY_KEEP_MS + 1);
        assert!(!bob.keys().has(1));
        assert!(bob.roster(1).is_none());
        assert!(bob.keys().has(2));
    }

    #[test]
    fn shared_history_gives_new_members_old_keys() {
        let mut w = world();
        let p = w.admin.set_share_history(true, T0 + 1, &mut w.rng).unwrap();
        assert!(p.notice.is_none());
        let old = w
            .admin
            .encrypt(&w.alice, text("before", T0 + 2), [1; 24])
            .unwrap();
        let dave = user(4);
        let p = w
            .admin
            .add_members(&[dave.account_id()], T0 + 3, &mut w.rng)
            .unwrap();
        let (_, sealed) = &p.history[0];
        let keys = open_history_keys(sealed, &dave, &w.admin.group_id()).unwrap();
        assert_eq!(keys.iter().map(|(g, _)| *g).collect::<Vec<_>>(), vec![1]);
        let (g, k) = &keys[0];
        let got =
            crate::group::message::open_group_message(&old.data, &w.admin.group_id(), [(*g, k)])
                .unwrap();
        assert_eq!(body(&got), "before");
    }

    #[test]
    fn restore_round_trips_and_history_keys_open_parked_documents() {
        let mut w = world();
        let bob = join(&w.create, &w.bob, T0);
        let docs: Vec<Vec<u8>> = bob.documents().map(|d| d.to_bytes().to_vec()).collect();
        let ring = KeyRing::from_bytes(&bob.keys().to_bytes().unwrap()).unwrap();
        let auth = MemberAuth::from_bytes(&bob.member_auth().unwrap().to_bytes(), &bob.group_id())
            .unwrap();
        let again = GroupState::restore(bob.group_id(), None, Some(auth), ring, &docs).unwrap();
        assert_eq!(again.info(), bob.info());
        assert_eq!((again.generation(), again.version()), (Some(1), 1));
        // Wrong seed for the ID.
        assert!(matches!(
            GroupState::restore(
                bob.group_id(),
                Some(GroupKeys::from_seed(&[9; 32])),
                None,
                KeyRing::new(),
                &docs
            ),
            Err(GroupError::SeedMismatch)
        ));

        let v2 = w.admin.set_share_history(true, T0 + 1, &mut w.rng).unwrap();
        let dave = user(4);
        let p = w
            .admin
            .add_members(&[dave.account_id()], T0 + 2, &mut w.rng)
            .unwrap();
        let mut d = join(&p, &dave, T0 + 2);
        assert_eq!(
            d.ingest_state(v2.state.to_bytes()).unwrap(),
            StateOutcome::AwaitingKey { generation: 1 }
        );
        assert!(d.roster(1).is_none());
        let keys = open_history_keys(&p.history[0].1, &dave, &d.group_id()).unwrap();
        assert_eq!(d.add_history_keys(keys, T0 + 3), 1);
        assert!(d.roster(1).is_some());
        assert_eq!(d.generation(), Some(2), "history keys never become current");
    }

    #[test]
    fn one_hundred_members_and_no_more() {
        let mut w = world();
        let more: Vec<AccountId> = (10..107).map(|s| user(s).account_id()).collect();
        let p = w.admin.add_members(&more, T0 + 1, &mut w.rng).unwrap();
        assert_eq!(w.admin.info().unwrap().members.len(), 100);
        assert_eq!(p.direct.len(), 97);
        // The last added member opens the bundle and reads the state.
        let last = user(106);
        let st = join(&p, &last, T0 + 1);
        assert_eq!(st.info().unwrap().members.len(), 100);
        assert_eq!(
            w.admin
                .add_members(&[user(200).account_id()], T0 + 2, &mut w.rng)
                .unwrap_err(),
            GroupError::TooManyMembers { count: 101 }
        );
        assert!(matches!(
            w.admin
                .add_members(&[w.bob.account_id()], T0 + 2, &mut w.rng),
            Err(GroupError::AlreadyMember(_))
        ));
    }

    #[test]
    fn concurrent_rekeys_resolve_by_digest() {
        let mut w = world();
        let mut bob_admin = GroupState::from_admin_keys(GroupKeys::from_seed(&[7; 32]));
        publish_to(&mut bob_admin, &w.create, &w.bob, T0);
        let mut rng2 = ExpandRng::new([43; 32]);
        // Both admins remove someone at the same time.
        let pa = w
            .admin
            .remove_members(&[w.carol.account_id()], T0 + 1, &mut w.rng)
            .unwrap();
        let pb = bob_admin.rename("Other", T0 + 1, &mut rng2).unwrap();
        let pc = bob_admin.reissue(T0 + 1, &mut rng2).unwrap();
        assert_eq!(pc.bundle.as_ref().unwrap().generation(), 2);
        // A member sees everything.
        let mut bob = join(&w.create, &w.bob, T0);
        for p in [&pa, &pb, &pc] {
            publish_to(&mut bob, p, &w.bob, T0 + 2);
        }
        assert_eq!(bob.generation(), Some(2));
        assert_eq!(bob.keys().keys_of(2).count(), 2);
        let da = pa.bundle.as_ref().unwrap().digest();
        let dc = pc.bundle.as_ref().unwrap().digest();
        let winner = if da < dc { &pa } else { &pc };
        let (_, cur) = bob.keys().current().unwrap();
        assert_eq!(
            Some(cur.clone()),
            bob.keys()
                .keys_of(2)
                .find(|k| { winner.state.open(&bob.group_id(), k).is_ok() })
                .cloned()
        );
        assert!(bob.needs_reissue());
        // Both versions are 3 (v1 → 2 on Alice's side; v1 → 2 → 3 on Bob's):
        // the state tie is decided by digest, and an admin reissues.
        assert_eq!(bob.version(), 3);
        for p in [&pa, &pb, &pc] {
            publish_to(&mut w.admin, p, &w.alice, T0 + 2);
        }
        let r = w.admin.reissue(T0 + 3, &mut w.rng).unwrap();
        assert_eq!(r.bundle.as_ref().unwrap().generation(), 3);
        assert!(!w.admin.needs_reissue());
    }
}
