//! Group identity and member credentials (`groups.md` §1 and §5): the group
//! keypair from `group_seed`, the `03` group ID, roles and statuses, and the
//! 132-byte `member_auth` (subaccount seed, token, token signature) admins
//! issue to each role-0 member (`storage-rpc.md` §2.3).

use std::fmt;

use umbra_crypto::{Ed25519Keypair, Ed25519Public};
use zeroize::Zeroizing;

use super::GroupError;
use crate::identity::{AccountId, IdPrefix};
use crate::rpc::Signature;
use crate::rpc::sign::{Perms, Signer, SubaccountToken};

/// A group's keypair `(gsk, GPK)` and ID `03 ‖ GPK`, held by admins (§1).
#[derive(Clone)]
pub struct GroupKeys {
    keypair: Ed25519Keypair,
    id: AccountId,
}

impl fmt::Debug for GroupKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupKeys")
            .field("id", &self.id.short())
            .finish_non_exhaustive()
    }
}

impl GroupKeys {
    /// The group keypair of `group_seed` (32 random bytes drawn at creation).
    pub fn from_seed(group_seed: &[u8; 32]) -> Self {
        let keypair = Ed25519Keypair::from_seed(group_seed);
        let id = AccountId::group(&keypair.public());
        Self { keypair, id }
    }

    /// Like [`GroupKeys::from_seed`], checking that the seed belongs to
    /// `group_id` (a PROMOTE's check, §7.6).
    pub fn from_seed_for(group_seed: &[u8], group_id: &AccountId) -> Result<Self, GroupError> {
        let seed: Zeroizing<[u8; 32]> = Zeroizing::new(
            group_seed
                .try_into()
                .map_err(|_| GroupError::Malformed { what: "group seed" })?,
        );
        let keys = Self::from_seed(&seed);
        if keys.id != *group_id {
            return Err(GroupError::SeedMismatch);
        }
        Ok(keys)
    }

    /// `group_seed`.
    pub fn seed(&self) -> Zeroizing<[u8; 32]> {
        self.keypair.seed()
    }

    /// The group ID `03 ‖ GPK`.
    pub fn id(&self) -> AccountId {
        self.id
    }

    /// `GPK`.
    pub fn public(&self) -> Ed25519Public {
        self.keypair.public()
    }

    /// The keypair, for signing storage requests as the group itself.
    pub fn keypair(&self) -> &Ed25519Keypair {
        &self.keypair
    }

    /// The storage-RPC signer for the group key (admins).
    pub fn signer(&self) -> Signer<'_> {
        Signer::Group(&self.keypair)
    }
}

/// `GPK` of a group ID; fails unless the ID has prefix `03`.
pub fn group_public(group_id: &AccountId) -> Result<Ed25519Public, GroupError> {
    if group_id.prefix() != IdPrefix::Group {
        return Err(GroupError::NotGroupId);
    }
    Ok(Ed25519Public::from_bytes(*group_id.key()))
}

/// A roster member's role (§4.2 `"r"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// 0: member.
    Member,
    /// 1: admin (holds `group_seed`).
    Admin,
}

impl Role {
    /// The wire value.
    pub const fn value(self) -> u8 {
        match self {
            Role::Member => 0,
            Role::Admin => 1,
        }
    }

    /// Parses the wire value.
    pub fn from_value(v: u64) -> Result<Self, GroupError> {
        match v {
            0 => Ok(Role::Member),
            1 => Ok(Role::Admin),
            _ => Err(GroupError::Malformed {
                what: "member role",
            }),
        }
    }
}

/// A roster member's status (§4.2 `"s"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MemberStatus {
    /// 0: invited, not yet accepted.
    Invited,
    /// 1: joined.
    Joined,
}

impl MemberStatus {
    /// The wire value.
    pub const fn value(self) -> u8 {
        match self {
            MemberStatus::Invited => 0,
            MemberStatus::Joined => 1,
        }
    }

    /// Parses the wire value.
    pub fn from_value(v: u64) -> Result<Self, GroupError> {
        match v {
            0 => Ok(MemberStatus::Invited),
            1 => Ok(MemberStatus::Joined),
            _ => Err(GroupError::Malformed {
                what: "member status",
            }),
        }
    }
}

/// Length of `member_auth` (§5).
pub const MEMBER_AUTH_LEN: usize = 132;

/// A member's swarm credentials (§5): `sub_seed ‖ token ‖ token_sig`.
#[derive(Clone)]
pub struct MemberAuth {
    keypair: Ed25519Keypair,
    token: SubaccountToken,
    token_sig: Signature,
}

impl fmt::Debug for MemberAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemberAuth")
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

impl MemberAuth {
    /// Issues credentials for a new member from 32 random bytes `sub_seed`:
    /// `token = 03 ‖ 03 ‖ 0000 ‖ SPK`, `token_sig = sign(gsk, token)`.
    pub fn issue(group: &GroupKeys, sub_seed: &[u8; 32]) -> Self {
        let keypair = Ed25519Keypair::from_seed(sub_seed);
        let token = SubaccountToken::new(Perms::READ | Perms::WRITE, &keypair.public());
        let token_sig = token.sign(group.keypair());
        Self {
            keypair,
            token,
            token_sig,
        }
    }

    /// Parses and checks 132 bytes received in an INVITE (§7.2): the token's
    /// prefix is `03`, its key is the public key of `sub_seed`, and
    /// `token_sig` verifies under the group key.
    pub fn from_bytes(bytes: &[u8], group_id: &AccountId) -> Result<Self, GroupError> {
        let gpk = group_public(group_id)?;
        if bytes.len() != MEMBER_AUTH_LEN {
            return Err(GroupError::Malformed {
                what: "member_auth",
            });
        }
        let keypair = Ed25519Keypair::from_seed_slice(&bytes[..32])?;
        let mut t = [0u8; 36];
        t.copy_from_slice(&bytes[32..68]);
        let token = SubaccountToken(t);
        let mut s = [0u8; 64];
        s.copy_from_slice(&bytes[68..]);
        if token.prefix() != IdPrefix::Group.byte() {
            return Err(GroupError::Malformed {
                what: "subaccount token prefix",
            });
        }
        if token.key() != keypair.public() {
            return Err(GroupError::Malformed {
                what: "subaccount token key",
            });
        }
        gpk.verify(&token.0, &s)
            .map_err(|_| GroupError::BadSignature {
                what: "subaccount token",
            })?;
        Ok(Self {
            keypair,
            token,
            token_sig: Signature(s),
        })
    }

    /// The 132-byte form carried in an INVITE's `memberAuth`.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(MEMBER_AUTH_LEN));
        out.extend_from_slice(self.keypair.seed().as_slice());
        out.extend_from_slice(&self.token.0);
        out.extend_from_slice(&self.token_sig.0);
        out
    }

    /// The token (also stored in the roster's `"x"`, and revoked on removal).
    pub fn token(&self) -> SubaccountToken {
        self.token
    }

    /// The group key's signature over the token.
    pub fn token_sig(&self) -> Signature {
        self.token_sig
    }

    /// The storage-RPC signer for requests to the group swarm (§5.1).
    pub fn signer(&self) -> Signer<'_> {
        Signer::Subaccount {
            key: &self.keypair,
            token: self.token,
            token_sig: self.token_sig,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::AccountKeys;

    #[test]
    fn group_id_is_03_and_seed_checked() {
        let g = GroupKeys::from_seed(&[9; 32]);
        assert_eq!(g.id().prefix(), IdPrefix::Group);
        assert_eq!(g.id().key(), g.public().as_bytes());
        assert_eq!(group_public(&g.id()).unwrap(), g.public());
        assert!(GroupKeys::from_seed_for(&[9; 32], &g.id()).is_ok());
        assert_eq!(
            GroupKeys::from_seed_for(&[8; 32], &g.id()).unwrap_err(),
            GroupError::SeedMismatch
        );
        let user = AccountKeys::from_seed(&[1; 32]).account_id();
        assert_eq!(group_public(&user).unwrap_err(), GroupError::NotGroupId);
    }

    #[test]
    fn member_auth_round_trip_and_checks() {
        let g = GroupKeys::from_seed(&[9; 32]);
        let auth = MemberAuth::issue(&g, &[4; 32]);
        assert_eq!(auth.token().0[..4], [0x03, 0x03, 0, 0]);
        let bytes = auth.to_bytes();
        assert_eq!(bytes.len(), MEMBER_AUTH_LEN);
        let back = MemberAuth::from_bytes(&bytes, &g.id()).unwrap();
        assert_eq!(back.token(), auth.token());
        assert_eq!(back.token_sig(), auth.token_sig());

        // Signed by another group key → rejected.
        let other = GroupKeys::from_seed(&[10; 32]);
        assert_eq!(
            MemberAuth::from_bytes(&bytes, &other.id()).unwrap_err(),
            GroupError::BadSignature {
                what: "subaccount token"
            }
        );
        // Seed not matching the token's key.
        let mut bad = bytes.to_vec();
        bad[0] ^= 1;
        assert_eq!(
            MemberAuth::from_bytes(&bad, &g.id()).unwrap_err(),
            GroupError::Malformed {
                what: "subaccount token key"
            }
        );
        // Wrong prefix.
        let mut bad = bytes.to_vec();
        bad[32] = 0x05;
        assert!(matches!(
            MemberAuth::from_bytes(&bad, &g.id()),
            Err(GroupError::Malformed { .. })
        ));
        // Truncated.
        assert!(matches!(
            MemberAuth::from_bytes(&bytes[..131], &g.id()),
            Err(GroupError::Malformed {
                what: "member_auth"
            })
        ));
    }

    #[test]
    fn roles_and_statuses() {
        assert_eq!(Role::from_value(1).unwrap(), Role::Admin);
        assert_eq!(Role::Member.value(), 0);
        assert!(Role::from_value(2).is_err());
        assert_eq!(MemberStatus::from_value(0).unwrap(), MemberStatus::Invited);
        assert!(MemberStatus::from_value(7).is_err());
    }
}
