//! The group state document (`groups.md` §4, namespace 13): the plaintext
//! [`GroupInfo`] (name, roster, timer, history setting, avatar), its
//! encryption under a generation key, the outer bencoded layout signed by
//! the group key, and the choice of the current document (§4.3).

use std::collections::BTreeMap;
use std::fmt;

use umbra_crypto::aead::{xchacha20_decrypt, xchacha20_encrypt};
use zeroize::Zeroizing;

use super::identity::{GroupKeys, MemberStatus, Role, group_public};
use super::keys::GenerationKey;
use super::{
    GroupError, MAX_MEMBERS, MAX_NAME_LEN, decode_dict, get_array, get_bytes, get_u64, int,
    tie_digest,
};
use crate::bencode::{Value, encode};
use crate::identity::{AccountId, IdPrefix};
use crate::rpc::sign::SubaccountToken;

/// Signature domain and AAD prefix of state documents (§4.1).
pub const STATE_DOMAIN: &[u8] = b"UmbraGroupState";

/// The group avatar (§4.2 `"p"`).
#[derive(Clone, PartialEq, Eq)]
pub struct Avatar {
    /// The 32-byte profile-style key.
    pub key: [u8; 32],
    /// The file URL.
    pub url: String,
}

impl fmt::Debug for Avatar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Avatar")
            .field("url_len", &self.url.len())
            .finish_non_exhaustive()
    }
}

/// One roster entry (§4.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The member's `05` account ID.
    pub id: AccountId,
    /// When they were added (unix ms).
    pub added_at: u64,
    /// Member or admin.
    pub role: Role,
    /// Invited or joined.
    pub status: MemberStatus,
    /// Their subaccount token: present exactly for role 0.
    pub token: Option<SubaccountToken>,
}

/// The plaintext of a state document (§4.2).
#[derive(Clone, PartialEq, Eq)]
pub struct GroupInfo {
    /// The group name, 1 … 100 bytes.
    pub name: String,
    /// The roster, sorted by ID, 1 … 100 entries, at least one admin.
    pub members: Vec<Member>,
    /// Delete-after-send timer in seconds (0 = off).
    pub timer_s: u32,
    /// Whether new members receive earlier generation keys (`"h"`).
    pub share_history: bool,
    /// The avatar, if any.
    pub avatar: Option<Avatar>,
    /// When the state was last changed (unix ms).
    pub updated_at: u64,
}

impl fmt::Debug for GroupInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupInfo")
            .field("name_len", &self.name.len())
            .field("members", &self.members.len())
            .field("timer_s", &self.timer_s)
            .field("share_history", &self.share_history)
            .field("avatar", &self.avatar.is_some())
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

impl GroupInfo {
    /// Checks every rule of §4.2 and §10.
    pub fn validate(&self) -> Result<(), GroupError> {
        let len = self.name.len();
        if !(1..=MAX_NAME_LEN).contains(&len) {
            return Err(GroupError::BadName { len });
        }
        if self.members.is_empty() {
            return Err(GroupError::BadRoster("no members"));
        }
        if self.members.len() > MAX_MEMBERS {
            return Err(GroupError::TooManyMembers {
                count: self.members.len(),
            });
        }
        if !self
            .members
            .windows(2)
            .all(|w| w[0].id.to_bytes() < w[1].id.to_bytes())
        {
            return Err(GroupError::BadRoster("members not sorted and unique"));
        }
        if !self.members.iter().any(|m| m.role == Role::Admin) {
            return Err(GroupError::BadRoster("no admin"));
        }
        for m in &self.members {
            if m.id.prefix() != IdPrefix::Standard {
                return Err(GroupError::BadRoster("member ID is not a 05 account"));
            }
            if (m.role == Role::Member) != m.token.is_some() {
                return Err(GroupError::BadRoster(
                    "a token is present exactly for role-0 members",
                ));
            }
        }
        Ok(())
    }

    /// The roster entry of `id`.
    pub fn member(&self, id: &AccountId) -> Option<&Member> {
        self.members
            .binary_search_by(|m| m.id.to_bytes().cmp(&id.to_bytes()))
            .ok()
            .and_then(|i| self.members.get(i))
    }

    /// Whether `id` is an admin in this roster.
    pub fn is_admin(&self, id: &AccountId) -> bool {
        self.member(id).is_some_and(|m| m.role == Role::Admin)
    }

    /// The member IDs, in roster order.
    pub fn member_ids(&self) -> Vec<AccountId> {
        self.members.iter().map(|m| m.id).collect()
    }

    /// Sorts the roster by ID (call after editing `members`).
    pub fn sort_members(&mut self) {
        self.members.sort_by_key(|m| m.id.to_bytes());
    }

    /// The bencoded plaintext (validated first).
    pub fn encode(&self) -> Result<Zeroizing<Vec<u8>>, GroupError> {
        self.validate()?;
        let mut members = Vec::with_capacity(self.members.len());
        for m in &self.members {
            let mut d = BTreeMap::new();
            d.insert(b"i".to_vec(), Value::bytes(m.id.to_bytes().to_vec()));
            d.insert(b"j".to_vec(), int(m.added_at, "added_at")?);
            d.insert(b"r".to_vec(), Value::Int(i64::from(m.role.value())));
            d.insert(b"s".to_vec(), Value::Int(i64::from(m.status.value())));
            if let Some(t) = &m.token {
                d.insert(b"x".to_vec(), Value::bytes(t.0.to_vec()));
            }
            members.push(Value::Dict(d));
        }
        let mut d = BTreeMap::new();
        d.insert(b"M".to_vec(), Value::List(members));
        d.insert(b"e".to_vec(), Value::Int(i64::from(self.timer_s)));
        d.insert(b"h".to_vec(), Value::Int(i64::from(self.share_history)));
        d.insert(b"n".to_vec(), Value::bytes(self.name.as_bytes().to_vec()));
        if let Some(a) = &self.avatar {
            d.insert(
                b"p".to_vec(),
                Value::dict([
                    (b"k".to_vec(), Value::bytes(a.key.to_vec())),
                    (b"u".to_vec(), Value::bytes(a.url.as_bytes().to_vec())),
                ]),
            );
        }
        d.insert(b"t".to_vec(), int(self.updated_at, "updated_at")?);
        Ok(Zeroizing::new(encode(&Value::Dict(d))))
    }

    /// Parses and validates a decrypted plaintext. Unknown keys are ignored.
    pub fn decode(bytes: &[u8]) -> Result<Self, GroupError> {
        let d = decode_dict(bytes, "state plaintext")?;
        let list = d
            .get(b"M".as_slice())
            .and_then(Value::as_list)
            .ok_or(GroupError::Malformed { what: "roster" })?;
        let mut members = Vec::with_capacity(list.len());
        for item in list {
            let m = item.as_dict().ok_or(GroupError::Malformed {
                what: "roster entry",
            })?;
            let id = AccountId::from_bytes(get_bytes(m, b"i", "member ID")?)
                .map_err(|_| GroupError::Malformed { what: "member ID" })?;
            let token = match m.get(b"x".as_slice()) {
                None => None,
                Some(_) => Some(SubaccountToken(get_array(m, b"x", "member token")?)),
            };
            members.push(Member {
                id,
                added_at: get_u64(m, b"j", "member added_at")?,
                role: Role::from_value(get_u64(m, b"r", "member role")?)?,
                status: MemberStatus::from_value(get_u64(m, b"s", "member status")?)?,
                token,
            });
        }
        let timer_s = u32::try_from(get_u64(&d, b"e", "timer")?)
            .map_err(|_| GroupError::Malformed { what: "timer" })?;
        let share_history = match d.get(b"h".as_slice()) {
            None => false,
            Some(_) => match get_u64(&d, b"h", "share history")? {
                0 => false,
                1 => true,
                _ => {
                    return Err(GroupError::Malformed {
                        what: "share history",
                    });
                }
            },
        };
        let name = String::from_utf8(get_bytes(&d, b"n", "name")?.to_vec())
            .map_err(|_| GroupError::Malformed { what: "name" })?;
        let avatar = match d.get(b"p".as_slice()) {
            None => None,
            Some(p) => {
                let p = p
                    .as_dict()
                    .ok_or(GroupError::Malformed { what: "avatar" })?;
                Some(Avatar {
                    key: get_array(p, b"k", "avatar key")?,
                    url: String::from_utf8(get_bytes(p, b"u", "avatar URL")?.to_vec())
                        .map_err(|_| GroupError::Malformed { what: "avatar URL" })?,
                })
            }
        };
        let info = GroupInfo {
            name,
            members,
            timer_s,
            share_history,
            avatar,
            updated_at: get_u64(&d, b"t", "updated_at")?,
        };
        info.validate()?;
        Ok(info)
    }
}

/// A verified state document (§4.1), holding the exact stored bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateDocument {
    generation: u64,
    version: u64,
    sealed: Vec<u8>,
    raw: Vec<u8>,
}

fn state_aad(group_id: &AccountId, generation: u64, version: u64) -> Vec<u8> {
    let mut aad = Vec::with_capacity(STATE_DOMAIN.len() + 33 + 16);
    aad.extend_from_slice(STATE_DOMAIN);
    aad.extend_from_slice(&group_id.to_bytes());
    aad.extend_from_slice(&generation.to_le_bytes());
    aad.extend_from_slice(&version.to_le_bytes());
    aad
}

fn signed_bytes(unsigned: &BTreeMap<Vec<u8>, Value>) -> Vec<u8> {
    let body = encode(&Value::Dict(unsigned.clone()));
    let mut msg = Vec::with_capacity(STATE_DOMAIN.len() + body.len());
    msg.extend_from_slice(STATE_DOMAIN);
    msg.extend_from_slice(&body);
    msg
}

impl StateDocument {
    /// Encrypts `info` under `K_G` with `nonce` (24 random bytes) and signs
    /// the document as version `version`.
    pub fn seal(
        group: &GroupKeys,
        generation: u64,
        key: &GenerationKey,
        version: u64,
        info: &GroupInfo,
        nonce: [u8; 24],
    ) -> Result<Self, GroupError> {
        let plain = info.encode()?;
        let aad = state_aad(&group.id(), generation, version);
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&xchacha20_encrypt(key.as_bytes(), &nonce, &plain, &aad));
        let mut d = BTreeMap::new();
        d.insert(b"G".to_vec(), int(generation, "generation")?);
        d.insert(b"c".to_vec(), Value::bytes(sealed.clone()));
        d.insert(b"v".to_vec(), int(version, "version")?);
        let sig = group.keypair().sign(&signed_bytes(&d));
        d.insert(b"~".to_vec(), Value::bytes(sig.to_vec()));
        Ok(StateDocument {
            generation,
            version,
            sealed,
            raw: encode(&Value::Dict(d)),
        })
    }

    /// Parses a fetched document and verifies `"~"` under the group key of
    /// `group_id`; documents signed by anyone else are rejected.
    pub fn parse(bytes: &[u8], group_id: &AccountId) -> Result<Self, GroupError> {
        let gpk = group_public(group_id)?;
        let mut d = decode_dict(bytes, "state document")?;
        let sig: [u8; 64] = get_array(&d, b"~", "state signature")?;
        d.remove(b"~".as_slice());
        gpk.verify(&signed_bytes(&d), &sig)
            .map_err(|_| GroupError::BadSignature {
                what: "state document",
            })?;
        let sealed = get_bytes(&d, b"c", "state ciphertext")?.to_vec();
        if sealed.len() < 24 + 16 {
            return Err(GroupError::Malformed {
                what: "state ciphertext",
            });
        }
        Ok(StateDocument {
            generation: get_u64(&d, b"G", "state generation")?,
            version: get_u64(&d, b"v", "state version")?,
            sealed,
            raw: bytes.to_vec(),
        })
    }

    /// Decrypts and validates the plaintext with `K_G` of [`Self::generation`].
    pub fn open(&self, group_id: &AccountId, key: &GenerationKey) -> Result<GroupInfo, GroupError> {
        let aad = state_aad(group_id, self.generation, self.version);
        let (nonce, ct) = self.sealed.split_at(24);
        let plain = xchacha20_decrypt(key.as_bytes(), nonce, ct, &aad).map_err(|_| {
            GroupError::DecryptFailed {
                what: "state document",
            }
        })?;
        GroupInfo::decode(&Zeroizing::new(plain))
    }

    /// The generation whose key encrypts the document.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The version `v`.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The bencoded bytes to store in namespace 13.
    pub fn to_bytes(&self) -> &[u8] {
        &self.raw
    }

    /// `BLAKE2b-256` of the stored bytes (§4.3 tie-break).
    pub fn digest(&self) -> [u8; 32] {
        tie_digest(&self.raw)
    }

    /// Whether `self` is preferred over `other` (§4.3): higher `v`, then the
    /// smaller digest.
    pub fn beats(&self, other: &StateDocument) -> bool {
        (self.version, std::cmp::Reverse(self.digest()))
            > (other.version, std::cmp::Reverse(other.digest()))
    }
}

/// The current document among verified ones (§4.3).
pub fn choose_current<'a>(
    docs: impl IntoIterator<Item = &'a StateDocument>,
) -> Option<&'a StateDocument> {
    docs.into_iter()
        .fold(None, |best: Option<&StateDocument>, d| match best {
            Some(b) if !d.beats(b) => Some(b),
            _ => Some(d),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::AccountKeys;
    use proptest::prelude::*;

    fn id(seed: u8) -> AccountId {
        AccountKeys::from_seed(&[seed; 32]).account_id()
    }

    fn info(n: u8) -> GroupInfo {
        let mut members: Vec<Member> = (0..n)
            .map(|i| Member {
                id: id(i.wrapping_add(1)),
                added_at: 1_000 + u64::from(i),
                role: if i == 0 { Role::Admin } else { Role::Member },
                status: MemberStatus::Joined,
                token: (i != 0).then_some(SubaccountToken([i; 36])),
            })
            .collect();
        members.sort_by_key(|m| m.id.to_bytes());
        GroupInfo {
            name: "Team".into(),
            members,
            timer_s: 3600,
            share_history: true,
            avatar: Some(Avatar {
                key: [3; 32],
                url: "http://fs/f/1".into(),
            }),
            updated_at: 99,
        }
    }

    #[test]
    fn document_round_trip_and_wrong_signer() {
        let g = GroupKeys::from_seed(&[7; 32]);
        let key = GenerationKey::from_bytes([1; 32]);
        let i = info(5);
        let doc = StateDocument::seal(&g, 4, &key, 9, &i, [2; 24]).unwrap();
        let parsed = StateDocument::parse(doc.to_bytes(), &g.id()).unwrap();
        assert_eq!(parsed, doc);
        assert_eq!((parsed.generation(), parsed.version()), (4, 9));
        assert_eq!(parsed.open(&g.id(), &key).unwrap(), i);
        assert_eq!(
            parsed
                .open(&g.id(), &GenerationKey::from_bytes([2; 32]))
                .unwrap_err(),
            GroupError::DecryptFailed {
                what: "state document"
            }
        );
        // Signed by a different key (a member's subaccount, say): rejected.
        let forger = GroupKeys::from_seed(&[8; 32]);
        let forged = StateDocument::seal(&forger, 4, &key, 10, &i, [2; 24]).unwrap();
        assert_eq!(
            StateDocument::parse(forged.to_bytes(), &g.id()).unwrap_err(),
            GroupError::BadSignature {
                what: "state document"
            }
        );
        // Truncated.
        assert!(matches!(
            StateDocument::parse(&doc.to_bytes()[..50], &g.id()),
            Err(GroupError::Bencode { .. })
        ));
    }

    #[test]
    fn version_is_bound_into_the_aad() {
        // Re-signing the same ciphertext as another version (which only the
        // group key can do) still fails to decrypt: the AAD binds `v`.
        let g = GroupKeys::from_seed(&[7; 32]);
        let key = GenerationKey::from_bytes([1; 32]);
        let doc = StateDocument::seal(&g, 1, &key, 1, &info(2), [2; 24]).unwrap();
        let mut d = decode_dict(doc.to_bytes(), "t").unwrap();
        d.remove(b"~".as_slice());
        d.insert(b"v".to_vec(), Value::Int(2));
        let sig = g.keypair().sign(&signed_bytes(&d));
        d.insert(b"~".to_vec(), Value::bytes(sig.to_vec()));
        let moved = StateDocument::parse(&encode(&Value::Dict(d)), &g.id()).unwrap();
        assert!(matches!(
            moved.open(&g.id(), &key),
            Err(GroupError::DecryptFailed { .. })
        ));
    }

    #[test]
    fn plaintext_rules() {
        let mut i = info(3);
        i.name = String::new();
        assert_eq!(i.validate().unwrap_err(), GroupError::BadName { len: 0 });
        i.name = "x".repeat(101);
        assert_eq!(i.validate().unwrap_err(), GroupError::BadName { len: 101 });
        let mut i = info(3);
        i.members.reverse();
        assert!(matches!(i.validate(), Err(GroupError::BadRoster(_))));
        let mut i = info(3);
        for m in &mut i.members {
            m.role = Role::Member;
            m.token = Some(SubaccountToken([1; 36]));
        }
        assert_eq!(i.validate().unwrap_err(), GroupError::BadRoster("no admin"));
        let mut i = info(3);
        let dup = i.members[0].clone();
        i.members.insert(0, dup);
        assert!(matches!(i.validate(), Err(GroupError::BadRoster(_))));
        let mut i = info(3);
        if let Some(m) = i.members.iter_mut().find(|m| m.role == Role::Member) {
            m.token = None;
        }
        assert!(matches!(i.validate(), Err(GroupError::BadRoster(_))));
        let i = info(101);
        assert_eq!(
            i.validate().unwrap_err(),
            GroupError::TooManyMembers { count: 101 }
        );
        assert!(info(100).validate().is_ok());
    }

    #[test]
    fn choosing_the_current_document() {
        let g = GroupKeys::from_seed(&[7; 32]);
        let key = GenerationKey::from_bytes([1; 32]);
        let a = StateDocument::seal(&g, 1, &key, 2, &info(2), [1; 24]).unwrap();
        let b = StateDocument::seal(&g, 1, &key, 2, &info(2), [2; 24]).unwrap();
        let c = StateDocument::seal(&g, 1, &key, 1, &info(2), [3; 24]).unwrap();
        let winner = if a.digest() < b.digest() { &a } else { &b };
        assert_eq!(choose_current([&a, &b, &c]), Some(winner));
        assert_eq!(choose_current([&c, &b, &a]), Some(winner));
        assert_eq!(choose_current([&c]), Some(&c));
        assert_eq!(choose_current(std::iter::empty()), None);
    }

    proptest! {
        #[test]
        fn plaintext_round_trip(n in 1u8..20, timer in any::<u32>(), h in any::<bool>(),
                                name in "[a-zA-Z0-9 ]{1,50}", t in 0u64..(1 << 62)) {
            let mut i = info(n);
            i.timer_s = timer;
            i.share_history = h;
            i.name = name;
            i.updated_at = t;
            if h { i.avatar = None; }
            let bytes = i.encode().unwrap();
            prop_assert_eq!(GroupInfo::decode(&bytes).unwrap(), i);
        }
    }
}
