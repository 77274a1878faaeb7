//! The persisted guard state (`onion.md` §10.2).
//!
//! The client keeps [`GUARD_COUNT`] (2) guards across restarts. What is
//! stored is each guard's Ed25519 key and when it was chosen; the address
//! comes from the registry on the next start (a guard that left the registry
//! is replaced). The JSON form is
//!
//! ```json
//! {"guards": [{"ed25519": "<64 hex>", "added_ms": 1700000000000}, …]}
//! ```
//!
//! Decoding refuses more than two guards, the same key twice, and keys that
//! are not 64 hex digits.

use serde::{Deserialize, Serialize};
use umbra_crypto::Ed25519Public;

use super::GUARD_COUNT;

/// One persisted guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedGuard {
    /// The guard's Ed25519 key, as 64 hex digits.
    #[serde(with = "key_hex")]
    pub ed25519: Ed25519Public,
    /// When the guard was chosen (local unix ms); it is rotated 60 days later.
    pub added_ms: u64,
}

/// The guards to persist between runs ([`PathManager::guard_state`]).
///
/// [`PathManager::guard_state`]: super::PathManager::guard_state
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawGuardState")]
pub struct GuardState {
    guards: Vec<SavedGuard>,
}

/// Why a guard state was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GuardStateError {
    /// More than [`GUARD_COUNT`] guards.
    #[error("at most {GUARD_COUNT} guards, got {0}")]
    TooMany(usize),
    /// The same key twice.
    #[error("the same guard is listed twice")]
    Duplicate,
}

impl GuardState {
    /// Builds a state, refusing more than two guards or a repeated key.
    pub fn new(guards: Vec<SavedGuard>) -> Result<Self, GuardStateError> {
        if guards.len() > GUARD_COUNT {
            return Err(GuardStateError::TooMany(guards.len()));
        }
        if guards
            .iter()
            .enumerate()
            .any(|(i, g)| guards.iter().skip(i + 1).any(|h| h.ed25519 == g.ed25519))
        {
            return Err(GuardStateError::Duplicate);
        }
        Ok(GuardState { guards })
    }

    /// The guards, in slot order.
    pub fn guards(&self) -> &[SavedGuard] {
        &self.guards
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGuardState {
    guards: Vec<SavedGuard>,
}

impl TryFrom<RawGuardState> for GuardState {
    type Error = GuardStateError;
    fn try_from(raw: RawGuardState) -> Result<Self, GuardStateError> {
        GuardState::new(raw.guards)
    }
}

mod key_hex {
    use serde::{Deserialize, Deserializer, Serializer};
    use umbra_crypto::Ed25519Public;

    pub(super) fn serialize<S: Serializer>(key: &Ed25519Public, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(key.as_bytes()))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Ed25519Public, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let mut bytes = [0u8; 32];
        if s.len() != 64 {
            return Err(serde::de::Error::custom("a guard key is 64 hex digits"));
        }
        hex::decode_to_slice(s.as_bytes(), &mut bytes)
            .map_err(|_| serde::de::Error::custom("a guard key is 64 hex digits"))?;
        Ok(Ed25519Public::from_bytes(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn g(b: u8, t: u64) -> SavedGuard {
        SavedGuard {
            ed25519: Ed25519Public::from_bytes([b; 32]),
            added_ms: t,
        }
    }

    #[test]
    fn json_form() {
        let s = GuardState::new(vec![g(0xab, 5)]).unwrap();
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(
            json,
            format!(
                r#"{{"guards":[{{"ed25519":"{}","added_ms":5}}]}}"#,
                "ab".repeat(32)
            )
        );
        let upper = json.replace("ab", "AB");
        assert_eq!(serde_json::from_str::<GuardState>(&upper).unwrap(), s);
    }

    #[test]
    fn refuses_bad_states() {
        assert_eq!(
            GuardState::new(vec![g(1, 0), g(2, 0), g(3, 0)]),
            Err(GuardStateError::TooMany(3))
        );
        assert_eq!(
            GuardState::new(vec![g(1, 0), g(1, 9)]),
            Err(GuardStateError::Duplicate)
        );
        let dup = serde_json::to_string(&GuardState {
            guards: vec![g(1, 0), g(1, 9)],
        })
        .unwrap();
        assert!(serde_json::from_str::<GuardState>(&dup).is_err());
        let short = format!(
            r#"{{"guards":[{{"ed25519":"{}","added_ms":5}}]}}"#,
            "ab".repeat(31)
        );
        assert!(serde_json::from_str::<GuardState>(&short).is_err());
        let nonhex = format!(
            r#"{{"guards":[{{"ed25519":"{}","added_ms":5}}]}}"#,
            "zz".repeat(32)
        );
        assert!(serde_json::from_str::<GuardState>(&nonhex).is_err());
        let extra = format!(
            r#"{{"guards":[{{"ed25519":"{}","added_ms":5,"x":1}}]}}"#,
            "ab".repeat(32)
        );
        assert!(serde_json::from_str::<GuardState>(&extra).is_err());
        assert!(serde_json::from_str::<GuardState>(r#"{"guards":[{"added_ms":5}]}"#).is_err());
    }

    proptest! {
        #[test]
        fn serde_round_trip(a in any::<[u8; 32]>(), b in any::<[u8; 32]>(), ta: u64, tb: u64, n in 0usize..=2) {
            prop_assume!(a != b);
            let all = [
                SavedGuard { ed25519: Ed25519Public::from_bytes(a), added_ms: ta },
                SavedGuard { ed25519: Ed25519Public::from_bytes(b), added_ms: tb },
            ];
            let s = GuardState::new(all[..n].to_vec()).unwrap();
            let json = serde_json::to_string(&s).unwrap();
            prop_assert_eq!(serde_json::from_str::<GuardState>(&json).unwrap(), s);
        }
    }
}
