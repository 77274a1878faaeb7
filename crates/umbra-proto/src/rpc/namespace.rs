//! Namespaces (`storage-rpc.md` §5): the `int16` mailboxes of an account,
//! their classes (public inbox, public outbox, unrevocable retrieve,
//! private) and their textual forms in signed strings and hashes (§2.4, §7).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A namespace: an `int16` mailbox within an account. Omitted means 0.
///
/// Serialises as a JSON integer; as a JSON object key (e.g. `delete_all`
/// with `"all"`) it is the decimal string.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Namespace(pub i16);

/// The class of a namespace, which decides its authentication rules (§5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NamespaceClass {
    /// `n mod 10 == 0`: anyone may `store` without a signature.
    PublicInbox,
    /// `n < 0` and `(−n) mod 20 == 1`: owner-only `store` that replaces the
    /// namespace's other messages; `retrieve` needs no auth.
    PublicOutbox,
    /// Everything else: every method needs auth.
    Private,
}

impl Namespace {
    /// Namespace 0: 1:1 messages.
    pub const DEFAULT: Namespace = Namespace(0);
    /// `03` accounts: group messages.
    pub const GROUP_MESSAGES: Namespace = Namespace(11);
    /// `03` accounts: group key bundles.
    pub const GROUP_KEYS: Namespace = Namespace(12);
    /// `03` accounts: group state (info and roster).
    pub const GROUP_STATE: Namespace = Namespace(13);
    /// `03` accounts: removal notices for removed members.
    pub const GROUP_REMOVALS: Namespace = Namespace(-11);

    /// The numeric value.
    pub const fn get(self) -> i16 {
        self.0
    }

    /// Public inbox: `n mod 10 == 0` (0, 10, −30, …).
    pub const fn is_public_inbox(self) -> bool {
        self.0 % 10 == 0
    }

    /// Public outbox: `n < 0` and `(−n) mod 20 == 1` (−1, −21, −41, …).
    pub const fn is_public_outbox(self) -> bool {
        self.0 < 0 && (-(self.0 as i32)) % 20 == 1
    }

    /// Unrevocable retrieve: `n < 0` and `(−n) mod 100 == 11` (−11, −111,
    /// …). A revoked subaccount may still `retrieve` here. This is a
    /// property orthogonal to [`NamespaceClass`]: −11 is also private.
    pub const fn is_unrevocable(self) -> bool {
        self.0 < 0 && (-(self.0 as i32)) % 100 == 11
    }

    /// The class (§5).
    pub const fn class(self) -> NamespaceClass {
        if self.is_public_inbox() {
            NamespaceClass::PublicInbox
        } else if self.is_public_outbox() {
            NamespaceClass::PublicOutbox
        } else {
            NamespaceClass::Private
        }
    }

    /// `NS` of signed strings and message hashes: empty for 0, else the
    /// ASCII decimal (with `-` when negative).
    pub fn signed_text(self) -> String {
        if self.0 == 0 {
            String::new()
        } else {
            self.0.to_string()
        }
    }
}

impl From<i16> for Namespace {
    fn from(n: i16) -> Self {
        Namespace(n)
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A namespace parameter of the methods that allow `"all"` (`delete_all`,
/// `delete_before`, `expire_all`): a JSON integer or the string `"all"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NamespaceSel {
    /// One namespace.
    One(Namespace),
    /// Every namespace of the account.
    All,
}

impl Default for NamespaceSel {
    fn default() -> Self {
        NamespaceSel::One(Namespace::DEFAULT)
    }
}

impl NamespaceSel {
    /// `NS` of signed strings: empty for 0, the decimal otherwise, `all`.
    pub fn signed_text(self) -> String {
        match self {
            NamespaceSel::One(ns) => ns.signed_text(),
            NamespaceSel::All => "all".to_string(),
        }
    }
}

impl From<Namespace> for NamespaceSel {
    fn from(ns: Namespace) -> Self {
        NamespaceSel::One(ns)
    }
}

impl Serialize for NamespaceSel {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            NamespaceSel::One(ns) => s.serialize_i16(ns.0),
            NamespaceSel::All => s.serialize_str("all"),
        }
    }
}

impl<'de> Deserialize<'de> for NamespaceSel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = NamespaceSel;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer namespace -32768..32767 or \"all\"")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<NamespaceSel, E> {
                i16::try_from(v)
                    .map(|n| NamespaceSel::One(Namespace(n)))
                    .map_err(|_| E::custom("namespace out of range -32768..32767"))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<NamespaceSel, E> {
                i16::try_from(v)
                    .map(|n| NamespaceSel::One(Namespace(n)))
                    .map_err(|_| E::custom("namespace out of range -32768..32767"))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<NamespaceSel, E> {
                if v == "all" {
                    Ok(NamespaceSel::All)
                } else {
                    Err(E::custom("namespace string must be \"all\""))
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn classes_match_the_spec_examples() {
        for n in [0, 10, -30, 32760, -32760] {
            assert_eq!(Namespace(n).class(), NamespaceClass::PublicInbox, "{n}");
        }
        for n in [-1, -21, -41, -32761] {
            assert_eq!(Namespace(n).class(), NamespaceClass::PublicOutbox, "{n}");
        }
        for n in [2, 11, 13, 1, 21, -11, -2, -32768, 32767] {
            assert_eq!(Namespace(n).class(), NamespaceClass::Private, "{n}");
        }
        for n in [-11, -111, -211] {
            assert!(Namespace(n).is_unrevocable(), "{n}");
        }
        for n in [11, -1, -12, 0, -32768] {
            assert!(!Namespace(n).is_unrevocable(), "{n}");
        }
    }

    #[test]
    fn signed_text() {
        assert_eq!(Namespace(0).signed_text(), "");
        assert_eq!(Namespace(-11).signed_text(), "-11");
        assert_eq!(Namespace(13).signed_text(), "13");
        assert_eq!(NamespaceSel::All.signed_text(), "all");
        assert_eq!(NamespaceSel::default().signed_text(), "");
    }

    #[test]
    fn sel_json_is_strict() {
        let p = |s: &str| serde_json::from_str::<NamespaceSel>(s);
        assert_eq!(p("\"all\"").unwrap(), NamespaceSel::All);
        assert_eq!(p("-11").unwrap(), NamespaceSel::One(Namespace(-11)));
        assert!(p("\"ALL\"").is_err());
        assert!(p("\"5\"").is_err());
        assert!(p("32768").is_err());
        assert!(p("-32769").is_err());
        assert!(p("1.5").is_err());
        assert!(p("null").is_err());
        assert!(serde_json::from_str::<Namespace>("\"3\"").is_err());
        assert!(serde_json::from_str::<Namespace>("40000").is_err());
    }

    proptest! {
        #[test]
        fn sel_round_trips(n in any::<i16>(), all in any::<bool>()) {
            let sel = if all { NamespaceSel::All } else { NamespaceSel::One(Namespace(n)) };
            let json = serde_json::to_string(&sel).unwrap();
            prop_assert_eq!(serde_json::from_str::<NamespaceSel>(&json).unwrap(), sel);
        }

        #[test]
        fn classes_never_panic_and_agree(n in any::<i16>()) {
            let ns = Namespace(n);
            let c = ns.class();
            prop_assert_eq!(c == NamespaceClass::PublicInbox, n % 10 == 0);
            if ns.is_public_outbox() { prop_assert!(n < 0); }
        }
    }
}
