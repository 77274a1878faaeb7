//! Control messages and admin-signed notices (`groups.md` §7.2–7.3, §8):
//! building and checking `UmbraGroupControl` (INVITE and PROMOTE travel 1:1,
//! the other types are posted to the group), the INVITE admin signature,
//! the sealed removal notice of namespace −11, and the sealed history-key
//! list of §7.2 step 4.

use umbra_crypto::sealed::{seal, unseal};
use zeroize::Zeroizing;

use super::identity::{GroupKeys, MemberAuth, Role, group_public};
use super::keys::GenerationKey;
use super::state::GroupInfo;
use super::{GroupError, decode_dict, get_array, get_bytes, get_u64, int};
use crate::bencode::{Value, encode};
use crate::identity::{AccountId, AccountKeys, IdPrefix};
pub use crate::message::protos::UmbraGroupControl;
pub use crate::message::protos::umbra_group_control::Type as ControlType;

/// Signature domain of INVITE (§7.2).
pub const INVITE_DOMAIN: &[u8] = b"UmbraGroupInvite";
/// Signature domain and payload prefix of removal notices (§7.3).
pub const REMOVED_DOMAIN: &[u8] = b"UmbraGroupRemoved";
/// Signature domain of shared history keys (§7.2 step 4; the transport is
/// not fixed by the spec, see [`seal_history_keys`]).
pub const HISTORY_DOMAIN: &[u8] = b"UmbraGroupHistory";
/// Size of a removal notice: 122-byte payload + 48.
pub const REMOVAL_NOTICE_LEN: usize = 170;

fn invite_message(group_id: &AccountId, invitee: &AccountId, sig_timestamp: u64) -> Vec<u8> {
    let mut m = INVITE_DOMAIN.to_vec();
    m.extend_from_slice(&group_id.to_bytes());
    m.extend_from_slice(&invitee.to_bytes());
    m.extend_from_slice(&sig_timestamp.to_le_bytes());
    m
}

/// An INVITE for `invitee` (§8), to send 1:1 in a Content whose
/// `sigTimestamp` is `sig_timestamp`.
pub fn build_invite(
    group: &GroupKeys,
    invitee: &AccountId,
    name: &str,
    auth: &MemberAuth,
    sig_timestamp: u64,
) -> UmbraGroupControl {
    let sig = group
        .keypair()
        .sign(&invite_message(&group.id(), invitee, sig_timestamp));
    UmbraGroupControl {
        r#type: ControlType::Invite as i32,
        group_id: Some(group.id().to_bytes().to_vec()),
        name: Some(name.to_owned()),
        member_auth: Some(auth.to_bytes().to_vec()),
        admin_signature: Some(sig.to_vec()),
        ..Default::default()
    }
}

/// A checked INVITE.
#[derive(Debug, Clone)]
pub struct VerifiedInvite {
    /// The group.
    pub group_id: AccountId,
    /// The group's name at invite time (display only; the state document is
    /// authoritative).
    pub name: String,
    /// Our swarm credentials.
    pub auth: MemberAuth,
}

/// Checks an INVITE received 1:1 by `me` in a Content with `sigTimestamp`
/// `sig_timestamp` (§7.2): the admin signature under the `GPK` of `groupId`,
/// and `member_auth`.
pub fn verify_invite(
    ctrl: &UmbraGroupControl,
    me: &AccountId,
    sig_timestamp: u64,
) -> Result<VerifiedInvite, GroupError> {
    if ctrl.r#type != ControlType::Invite as i32 {
        return Err(GroupError::BadControl("not an INVITE"));
    }
    let group_id = control_group_id(ctrl)?;
    let gpk = group_public(&group_id)?;
    let sig = ctrl
        .admin_signature
        .as_deref()
        .ok_or(GroupError::BadControl("INVITE without adminSignature"))?;
    gpk.verify(&invite_message(&group_id, me, sig_timestamp), sig)
        .map_err(|_| GroupError::BadSignature { what: "INVITE" })?;
    let auth = MemberAuth::from_bytes(
        ctrl.member_auth
            .as_deref()
            .ok_or(GroupError::BadControl("INVITE without memberAuth"))?,
        &group_id,
    )?;
    Ok(VerifiedInvite {
        group_id,
        name: ctrl.name.clone().unwrap_or_default(),
        auth,
    })
}

fn control_group_id(ctrl: &UmbraGroupControl) -> Result<AccountId, GroupError> {
    let raw = ctrl
        .group_id
        .as_deref()
        .ok_or(GroupError::BadControl("missing groupId"))?;
    let id = AccountId::from_bytes(raw).map_err(|_| GroupError::BadControl("bad groupId"))?;
    if id.prefix() != IdPrefix::Group {
        return Err(GroupError::NotGroupId);
    }
    Ok(id)
}

/// A PROMOTE carrying `group_seed` (§7.6), sent 1:1 to the new admin (and
/// to the creator's own account at creation).
pub fn build_promote(group: &GroupKeys) -> UmbraGroupControl {
    UmbraGroupControl {
        r#type: ControlType::Promote as i32,
        group_id: Some(group.id().to_bytes().to_vec()),
        group_seed: Some(group.seed().to_vec()),
        ..Default::default()
    }
}

/// A checked PROMOTE: the seed yields the `GPK` of `groupId`.
#[derive(Debug, Clone)]
pub struct VerifiedPromote {
    /// The group's keys.
    pub keys: GroupKeys,
}

/// Checks a PROMOTE (§7.6).
pub fn verify_promote(ctrl: &UmbraGroupControl) -> Result<VerifiedPromote, GroupError> {
    if ctrl.r#type != ControlType::Promote as i32 {
        return Err(GroupError::BadControl("not a PROMOTE"));
    }
    let group_id = control_group_id(ctrl)?;
    let seed = Zeroizing::new(
        ctrl.group_seed
            .clone()
            .ok_or(GroupError::BadControl("PROMOTE without groupSeed"))?,
    );
    Ok(VerifiedPromote {
        keys: GroupKeys::from_seed_for(&seed, &group_id)?,
    })
}

fn ids_bytes(ids: &[AccountId]) -> Vec<Vec<u8>> {
    ids.iter().map(|i| i.to_bytes().to_vec()).collect()
}

/// A notice posted to the group (§8). INVITE and PROMOTE are not notices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// INVITE_RESPONSE from the invitee.
    InviteResponse {
        /// Whether they accepted.
        accepted: bool,
    },
    /// MEMBER_LEFT from the leaver.
    MemberLeft,
    /// MEMBERS_ADDED by an admin.
    MembersAdded(Vec<AccountId>),
    /// MEMBERS_REMOVED by an admin.
    MembersRemoved(Vec<AccountId>),
    /// MEMBERS_PROMOTED by an admin.
    MembersPromoted(Vec<AccountId>),
    /// NAME_CHANGED by an admin.
    NameChanged(String),
    /// DISAPPEARING_CHANGED by an admin (seconds, 0 = off).
    DisappearingChanged(u32),
}

impl Notice {
    /// Whether only an admin may post it.
    pub fn admin_only(&self) -> bool {
        !matches!(self, Notice::InviteResponse { .. } | Notice::MemberLeft)
    }

    /// The `UmbraGroupControl` to post; admin notices carry `state_version`.
    pub fn to_control(&self, state_version: Option<u64>) -> UmbraGroupControl {
        let mut c = UmbraGroupControl {
            state_version: if self.admin_only() {
                state_version
            } else {
                None
            },
            ..Default::default()
        };
        let t = match self {
            Notice::InviteResponse { accepted } => {
                c.accepted = Some(*accepted);
                ControlType::InviteResponse
            }
            Notice::MemberLeft => ControlType::MemberLeft,
            Notice::MembersAdded(ids) => {
                c.member_ids = ids_bytes(ids);
                ControlType::MembersAdded
            }
            Notice::MembersRemoved(ids) => {
                c.member_ids = ids_bytes(ids);
                ControlType::MembersRemoved
            }
            Notice::MembersPromoted(ids) => {
                c.member_ids = ids_bytes(ids);
                ControlType::MembersPromoted
            }
            Notice::NameChanged(n) => {
                c.name = Some(n.clone());
                ControlType::NameChanged
            }
            Notice::DisappearingChanged(s) => {
                c.expiration_timer = Some(*s);
                ControlType::DisappearingChanged
            }
        };
        c.r#type = t as i32;
        c
    }

    /// Parses a control message posted to the group; returns the notice and
    /// its `stateVersion`. INVITE and PROMOTE in a group are refused.
    pub fn from_control(c: &UmbraGroupControl) -> Result<(Notice, Option<u64>), GroupError> {
        let ids = || {
            c.member_ids
                .iter()
                .map(|b| {
                    AccountId::from_bytes(b)
                        .ok()
                        .filter(|i| i.prefix() == IdPrefix::Standard)
                        .ok_or(GroupError::BadControl("bad memberIds entry"))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let t = ControlType::try_from(c.r#type)
            .map_err(|_| GroupError::BadControl("unknown control type"))?;
        let n = match t {
            ControlType::Invite | ControlType::Promote => {
                return Err(GroupError::BadControl("INVITE/PROMOTE travel 1:1"));
            }
            ControlType::InviteResponse => Notice::InviteResponse {
                accepted: c.accepted.unwrap_or(false),
            },
            ControlType::MemberLeft => Notice::MemberLeft,
            ControlType::MembersAdded => Notice::MembersAdded(ids()?),
            ControlType::MembersRemoved => Notice::MembersRemoved(ids()?),
            ControlType::MembersPromoted => Notice::MembersPromoted(ids()?),
            ControlType::NameChanged => Notice::NameChanged(
                c.name
                    .clone()
                    .ok_or(GroupError::BadControl("NAME_CHANGED without name"))?,
            ),
            ControlType::DisappearingChanged => Notice::DisappearingChanged(
                c.expiration_timer
                    .ok_or(GroupError::BadControl("DISAPPEARING_CHANGED without timer"))?,
            ),
        };
        if n.admin_only() && c.state_version.is_none() {
            return Err(GroupError::BadControl("admin notice without stateVersion"));
        }
        Ok((n, c.state_version))
    }

    /// Whether the notice agrees with the state it announces (§8).
    pub fn agrees_with(&self, info: &GroupInfo) -> bool {
        match self {
            Notice::InviteResponse { .. } | Notice::MemberLeft => true,
            Notice::MembersAdded(ids) => ids.iter().all(|i| info.member(i).is_some()),
            Notice::MembersRemoved(ids) => ids.iter().all(|i| info.member(i).is_none()),
            Notice::MembersPromoted(ids) => ids.iter().all(|i| info.is_admin(i)),
            Notice::NameChanged(n) => *n == info.name,
            Notice::DisappearingChanged(s) => *s == info.timer_s,
        }
    }
}

/// The verdict on a notice (§8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoticeCheck {
    /// Show it.
    Show(Notice),
    /// The announced state version is newer than ours: fetch namespaces 12
    /// and 13, then check again.
    AwaitState {
        /// The version announced.
        version: u64,
    },
}

/// Checks a notice posted to the group by `sender` against the current
/// roster `info` (version `version`): admin notices need role 1 and must
/// agree with the state they announce once we hold it. Forged notices
/// (a non-admin sender, or disagreeing with the signed state) are refused.
pub fn check_notice(
    ctrl: &UmbraGroupControl,
    sender: &AccountId,
    info: &GroupInfo,
    version: u64,
) -> Result<NoticeCheck, GroupError> {
    let (notice, announced) = Notice::from_control(ctrl)?;
    if !notice.admin_only() {
        return Ok(NoticeCheck::Show(notice));
    }
    if info.member(sender).map(|m| m.role) != Some(Role::Admin) {
        return Err(GroupError::BadControl("admin notice from a non-admin"));
    }
    match announced {
        Some(v) if v > version => Ok(NoticeCheck::AwaitState { version: v }),
        Some(v) if v == version && !notice.agrees_with(info) => Err(GroupError::BadControl(
            "notice disagrees with the signed state",
        )),
        _ => Ok(NoticeCheck::Show(notice)),
    }
}

fn removal_signed(group_id: &AccountId, member: &AccountId, generation: u64) -> Vec<u8> {
    let mut m = REMOVED_DOMAIN.to_vec();
    m.extend_from_slice(&group_id.to_bytes());
    m.extend_from_slice(&member.to_bytes());
    m.extend_from_slice(&generation.to_le_bytes());
    m
}

/// The 170-byte removal notice for `member` (§7.3 step 3), stored in
/// namespace −11; `generation` is the new generation `G + 1`.
pub fn build_removal_notice(
    group: &GroupKeys,
    member: &AccountId,
    generation: u64,
    ephemeral: [u8; 32],
) -> Result<Vec<u8>, GroupError> {
    let x = member.x25519().ok_or(GroupError::NotAccountId)?;
    let sig = group
        .keypair()
        .sign(&removal_signed(&group.id(), member, generation));
    let mut payload = REMOVED_DOMAIN.to_vec();
    payload.extend_from_slice(&group.id().to_bytes());
    payload.extend_from_slice(&generation.to_le_bytes());
    payload.extend_from_slice(&sig);
    Ok(seal(&payload, &x, ephemeral)?)
}

/// Opens a namespace −11 item as `me` for `group_id`; returns the
/// generation from which we are removed. Anything that does not open, names
/// another group or fails the group-key signature is refused.
pub fn open_removal_notice(
    data: &[u8],
    me: &AccountKeys,
    group_id: &AccountId,
) -> Result<u64, GroupError> {
    let gpk = group_public(group_id)?;
    if data.len() != REMOVAL_NOTICE_LEN {
        return Err(GroupError::Malformed {
            what: "removal notice",
        });
    }
    let p = unseal(data, me.x25519_secret()).map_err(|_| GroupError::DecryptFailed {
        what: "removal notice",
    })?;
    let d = REMOVED_DOMAIN.len();
    if p.len() != d + 33 + 8 + 64 || &p[..d] != REMOVED_DOMAIN {
        return Err(GroupError::Malformed {
            what: "removal notice",
        });
    }
    if p[d..d + 33] != group_id.to_bytes() {
        return Err(GroupError::WrongGroup);
    }
    let mut g = [0u8; 8];
    g.copy_from_slice(&p[d + 33..d + 41]);
    let generation = u64::from_le_bytes(g);
    gpk.verify(
        &removal_signed(group_id, &me.account_id(), generation),
        &p[d + 41..],
    )
    .map_err(|_| GroupError::BadSignature {
        what: "removal notice",
    })?;
    Ok(generation)
}

/// Seals earlier generation keys for a new member when the group shares
/// history (§7.2 step 4): `{"g": group_id, "k": [{"G", "k"}…], "~": sig}`
/// with `sig = sign(gsk, "UmbraGroupHistory" ‖ member_id ‖ bencode(without "~"))`,
/// sealed to the member. The spec fixes the content but not the 1:1
/// carrier; the client sends these bytes as an attachment-free 1:1 payload
/// of its choice.
pub fn seal_history_keys(
    group: &GroupKeys,
    member: &AccountId,
    keys: &[(u64, GenerationKey)],
    ephemeral: [u8; 32],
) -> Result<Vec<u8>, GroupError> {
    let x = member.x25519().ok_or(GroupError::NotAccountId)?;
    let list = keys
        .iter()
        .map(|(g, k)| {
            Ok(Value::dict([
                (b"G".to_vec(), int(*g, "generation")?),
                (b"k".to_vec(), Value::bytes(k.as_bytes().to_vec())),
            ]))
        })
        .collect::<Result<Vec<_>, GroupError>>()?;
    let mut d = std::collections::BTreeMap::new();
    d.insert(b"g".to_vec(), Value::bytes(group.id().to_bytes().to_vec()));
    d.insert(b"k".to_vec(), Value::List(list));
    let body = Zeroizing::new(encode(&Value::Dict(d.clone())));
    let mut msg = Zeroizing::new(HISTORY_DOMAIN.to_vec());
    msg.extend_from_slice(&member.to_bytes());
    msg.extend_from_slice(&body);
    d.insert(
        b"~".to_vec(),
        Value::bytes(group.keypair().sign(&msg).to_vec()),
    );
    let plain = Zeroizing::new(encode(&Value::Dict(d)));
    Ok(seal(&plain, &x, ephemeral)?)
}

/// Opens [`seal_history_keys`] output as `me` for `group_id`.
pub fn open_history_keys(
    data: &[u8],
    me: &AccountKeys,
    group_id: &AccountId,
) -> Result<Vec<(u64, GenerationKey)>, GroupError> {
    let gpk = group_public(group_id)?;
    let plain = Zeroizing::new(unseal(data, me.x25519_secret()).map_err(|_| {
        GroupError::DecryptFailed {
            what: "history keys",
        }
    })?);
    let mut d = decode_dict(&plain, "history keys")?;
    let sig: [u8; 64] = get_array(&d, b"~", "history signature")?;
    d.remove(b"~".as_slice());
    if get_bytes(&d, b"g", "history group")? != group_id.to_bytes() {
        return Err(GroupError::WrongGroup);
    }
    let mut msg = Zeroizing::new(HISTORY_DOMAIN.to_vec());
    msg.extend_from_slice(&me.account_id().to_bytes());
    msg.extend_from_slice(&encode(&Value::Dict(d.clone())));
    gpk.verify(&msg, &sig)
        .map_err(|_| GroupError::BadSignature {
            what: "history keys",
        })?;
    let list = d
        .get(b"k".as_slice())
        .and_then(Value::as_list)
        .ok_or(GroupError::Malformed {
            what: "history keys",
        })?;
    list.iter()
        .map(|v| {
            let e = v.as_dict().ok_or(GroupError::Malformed {
                what: "history key",
            })?;
            Ok((
                get_u64(e, b"G", "history generation")?,
                GenerationKey::from_bytes(get_array(e, b"k", "history key")?),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::identity::MemberStatus;
    use crate::group::state::Member;

    fn keys(s: u8) -> AccountKeys {
        AccountKeys::from_seed(&[s; 32])
    }

    #[test]
    fn invite_round_trip_and_forgery() {
        let g = GroupKeys::from_seed(&[7; 32]);
        let bob = keys(2).account_id();
        let auth = MemberAuth::issue(&g, &[3; 32]);
        let c = build_invite(&g, &bob, "Team", &auth, 1234);
        let v = verify_invite(&c, &bob, 1234).unwrap();
        assert_eq!(v.group_id, g.id());
        assert_eq!(v.name, "Team");
        assert_eq!(v.auth.token(), auth.token());
        // Replayed to someone else, or with another timestamp: refused.
        let carol = keys(3).account_id();
        assert_eq!(
            verify_invite(&c, &carol, 1234).unwrap_err(),
            GroupError::BadSignature { what: "INVITE" }
        );
        assert!(verify_invite(&c, &bob, 1235).is_err());
        // Forged: signed by a different key, claiming the group's ID.
        let forger = GroupKeys::from_seed(&[8; 32]);
        let mut f = build_invite(&forger, &bob, "Team", &auth, 1234);
        f.group_id = Some(g.id().to_bytes().to_vec());
        assert_eq!(
            verify_invite(&f, &bob, 1234).unwrap_err(),
            GroupError::BadSignature { what: "INVITE" }
        );
    }

    #[test]
    fn promote_checks_the_seed() {
        let g = GroupKeys::from_seed(&[7; 32]);
        let c = build_promote(&g);
        assert_eq!(verify_promote(&c).unwrap().keys.id(), g.id());
        let mut bad = c.clone();
        bad.group_seed = Some(vec![8; 32]);
        assert_eq!(verify_promote(&bad).unwrap_err(), GroupError::SeedMismatch);
    }

    #[test]
    fn removal_notice_round_trip_and_forgery() {
        let g = GroupKeys::from_seed(&[7; 32]);
        let bob = keys(2);
        let n = build_removal_notice(&g, &bob.account_id(), 5, [9; 32]).unwrap();
        assert_eq!(n.len(), REMOVAL_NOTICE_LEN);
        assert_eq!(open_removal_notice(&n, &bob, &g.id()).unwrap(), 5);
        // Someone else cannot open it.
        assert!(matches!(
            open_removal_notice(&n, &keys(3), &g.id()),
            Err(GroupError::DecryptFailed { .. })
        ));
        // Forged by another key for this group ID: bad signature.
        let forger = GroupKeys::from_seed(&[8; 32]);
        let sig = forger
            .keypair()
            .sign(&removal_signed(&g.id(), &bob.account_id(), 5));
        let mut payload = REMOVED_DOMAIN.to_vec();
        payload.extend_from_slice(&g.id().to_bytes());
        payload.extend_from_slice(&5u64.to_le_bytes());
        payload.extend_from_slice(&sig);
        let forged = seal(&payload, &bob.x25519_public(), [1; 32]).unwrap();
        assert_eq!(
            open_removal_notice(&forged, &bob, &g.id()).unwrap_err(),
            GroupError::BadSignature {
                what: "removal notice"
            }
        );
        // A notice of another group.
        assert_eq!(
            open_removal_notice(&n, &bob, &forger.id()).unwrap_err(),
            GroupError::WrongGroup
        );
    }

    #[test]
    fn history_keys_round_trip() {
        let g = GroupKeys::from_seed(&[7; 32]);
        let bob = keys(2);
        let ks = vec![
            (1, GenerationKey::from_bytes([1; 32])),
            (2, GenerationKey::from_bytes([2; 32])),
        ];
        let s = seal_history_keys(&g, &bob.account_id(), &ks, [4; 32]).unwrap();
        assert_eq!(open_history_keys(&s, &bob, &g.id()).unwrap(), ks);
        let forger = GroupKeys::from_seed(&[8; 32]);
        assert!(matches!(
            open_history_keys(&s, &bob, &forger.id()),
            Err(GroupError::WrongGroup)
        ));
    }

    fn roster(admin: &AccountId, member: &AccountId) -> GroupInfo {
        let mut i = GroupInfo {
            name: "Team".into(),
            members: vec![
                Member {
                    id: *admin,
                    added_at: 1,
                    role: Role::Admin,
                    status: MemberStatus::Joined,
                    token: None,
                },
                Member {
                    id: *member,
                    added_at: 1,
                    role: Role::Member,
                    status: MemberStatus::Joined,
                    token: Some(crate::rpc::sign::SubaccountToken([1; 36])),
                },
            ],
            timer_s: 0,
            share_history: false,
            avatar: None,
            updated_at: 1,
        };
        i.sort_members();
        i
    }

    #[test]
    fn notices_need_an_admin_and_agreement() {
        let admin = keys(1).account_id();
        let member = keys(2).account_id();
        let info = roster(&admin, &member);
        let rename = Notice::NameChanged("Team".into()).to_control(Some(4));
        assert_eq!(
            check_notice(&rename, &admin, &info, 4).unwrap(),
            NoticeCheck::Show(Notice::NameChanged("Team".into()))
        );
        // Forged: a plain member claims an admin notice.
        assert_eq!(
            check_notice(&rename, &member, &info, 4).unwrap_err(),
            GroupError::BadControl("admin notice from a non-admin")
        );
        // Disagrees with the signed state of that version.
        let lie = Notice::NameChanged("Other".into()).to_control(Some(4));
        assert!(check_notice(&lie, &admin, &info, 4).is_err());
        // Announces a newer state: wait for it.
        assert_eq!(
            check_notice(&lie, &admin, &info, 3).unwrap(),
            NoticeCheck::AwaitState { version: 4 }
        );
        // Members' own notices.
        let left = Notice::MemberLeft.to_control(None);
        assert_eq!(
            check_notice(&left, &member, &info, 4).unwrap(),
            NoticeCheck::Show(Notice::MemberLeft)
        );
        // INVITE posted to the group, or an admin notice without version.
        let g = GroupKeys::from_seed(&[7; 32]);
        assert!(check_notice(&build_promote(&g), &admin, &info, 4).is_err());
        let mut nov = rename.clone();
        nov.state_version = None;
        assert!(check_notice(&nov, &admin, &info, 4).is_err());
        // Round trips of every notice.
        for n in [
            Notice::InviteResponse { accepted: true },
            Notice::MembersAdded(vec![member]),
            Notice::MembersRemoved(vec![member]),
            Notice::MembersPromoted(vec![admin]),
            Notice::DisappearingChanged(60),
        ] {
            let (back, _) = Notice::from_control(&n.to_control(Some(1))).unwrap();
            assert_eq!(back, n);
        }
        assert!(
            Notice::MembersRemoved(vec![member])
                .to_control(Some(4))
                .member_ids
                .len()
                == 1
        );
        assert!(!Notice::MembersRemoved(vec![member]).agrees_with(&info));
        assert!(Notice::MembersPromoted(vec![admin]).agrees_with(&info));
    }
}
