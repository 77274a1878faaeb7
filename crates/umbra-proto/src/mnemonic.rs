//! Recovery phrases (`shared/spec/identity.md` §3–4).
//!
//! The codec is Session's (Monero "electrum words" with its English list of
//! 1626 words, [`WORD_LIST_SHA256`]):
//!
//! * **Encode** ([`encode`]): every 4-byte group, read as a little-endian
//!   `u32` `x`, becomes three words `w1 = x mod N`,
//!   `w2 = (⌊x/N⌋ + w1) mod N`, `w3 = (⌊x/N²⌋ + w2) mod N`. An optional
//!   checksum word repeats seed word `CRC32(prefixes) mod m`, where the
//!   prefixes are the first three letters of the `m` seed words.
//! * **Decode** ([`decode`]): `3k` words (no checksum) or `3k + 1` words
//!   (checksum last). A word is matched by its first three letters, ASCII
//!   case folded, so typos after the third letter are tolerated. A triple
//!   whose value is `≥ 2^32` is refused, as is a checksum word that does
//!   not denote the expected seed word.
//!
//! On top of the codec, [`AccountSeed`] applies the account rules of §4:
//! a new account is a 32-byte `ed_seed` shown as 25 words; restore accepts
//! **only** 13 words (a Session phrase: 16 bytes, zero-padded to the
//! 32-byte `ed_seed`) or 25 words (an Umbra phrase: the 32-byte `ed_seed`).
//! Every other count is refused, so restore always checks a checksum word.
//!
//! Phrases and decoded seeds are secrets: they are returned in
//! [`Zeroizing`] buffers, and [`AccountSeed`]'s `Debug` shows only the form.

use std::collections::HashMap;
use std::fmt;
use std::sync::LazyLock;

use zeroize::Zeroizing;

use crate::identity::AccountKeys;

/// The English word list, one word per line (`shared/spec/mnemonic-english.txt`).
const WORD_LIST_TEXT: &str = include_str!("mnemonic-english.txt");

/// The SHA-256 of the word list file, as the spec states it (lowercase hex).
pub const WORD_LIST_SHA256: &str =
    "eaa6bce7dd92f4d6dd74f224264e0ef4ad21095d68ec77616b26ceb599baf4f7";

/// `N`: the number of words in the list.
pub const WORD_LIST_LEN: usize = 1626;

/// Words are identified by this many leading letters.
pub const PREFIX_LEN: usize = 3;

/// Words in a Session recovery phrase (12 seed words + checksum; 16-byte seed).
pub const SESSION_PHRASE_WORDS: usize = 13;

/// Words in an Umbra recovery phrase (24 seed words + checksum; 32-byte seed).
pub const UMBRA_PHRASE_WORDS: usize = 25;

/// Longest part of an unknown word quoted back in [`MnemonicError::UnknownWord`].
const MAX_QUOTED_CHARS: usize = 24;

/// Why a phrase or seed was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MnemonicError {
    /// Encode input that is empty or not a multiple of 4 bytes.
    #[error("a phrase encodes a non-empty multiple of 4 bytes, got {0} bytes")]
    BadDataLength(usize),
    /// The codec accepts `3k` or `3k + 1` words (`k ≥ 1`) only.
    #[error("a phrase has 3k words, or 3k+1 with a checksum word (k ≥ 1), got {0} words")]
    BadWordCount(usize),
    /// An account restore accepts 13 (Session) or 25 (Umbra) words only.
    #[error("an account recovery phrase has 13 words (Session) or 25 words (Umbra), got {0} words")]
    NotAnAccountPhrase(usize),
    /// A word whose first three letters match no list word.
    #[error("word {position} ({word:?}) is not in the word list")]
    UnknownWord {
        /// 1-based position of the word in the phrase.
        position: usize,
        /// The word as typed (at most 24 characters of it).
        word: String,
    },
    /// Three words that encode a value of 2^32 or more.
    #[error("words {first_word} to {} do not form a valid group (value ≥ 2^32): the phrase has a typo", first_word + 2)]
    ValueOutOfRange {
        /// 1-based position of the first word of the group.
        first_word: usize,
    },
    /// The checksum word does not denote the seed word it must repeat.
    #[error("checksum word does not match: the phrase has a typo")]
    ChecksumMismatch,
    /// An account seed that is neither 16 nor 32 bytes.
    #[error("an account seed is 32 bytes (or 16 for a Session account), got {0} bytes")]
    BadSeedLength(usize),
}

/// The parsed word list with its prefix index.
struct WordList {
    words: Vec<&'static str>,
    by_prefix: HashMap<[u8; PREFIX_LEN], u16>,
}

static LIST: LazyLock<WordList> = LazyLock::new(|| {
    let words: Vec<&'static str> = WORD_LIST_TEXT.lines().collect();
    let by_prefix = words
        .iter()
        .enumerate()
        .filter_map(|(i, w)| Some((prefix_of(w)?, u16::try_from(i).ok()?)))
        .collect();
    WordList { words, by_prefix }
});

/// The 1626 words of the list, in index order.
pub fn word_list() -> &'static [&'static str] {
    &LIST.words
}

/// The lowercased first [`PREFIX_LEN`] bytes of `word`, if it has that many.
fn prefix_of(word: &str) -> Option<[u8; PREFIX_LEN]> {
    match word.as_bytes() {
        [a, b, c, ..] => Some([
            a.to_ascii_lowercase(),
            b.to_ascii_lowercase(),
            c.to_ascii_lowercase(),
        ]),
        _ => None,
    }
}

/// The list index a typed word denotes (identity §3.2 step 2).
fn lookup(word: &str) -> Option<u16> {
    LIST.by_prefix.get(&prefix_of(word)?).copied()
}

/// The word at list index `i` (always `< N` by construction).
fn word(i: u16) -> &'static str {
    LIST.words[usize::from(i)]
}

/// Checksum position `CRC32(pre(w_0) ‖ … ‖ pre(w_{m−1})) mod m` for `m ≥ 1` seed words.
fn checksum_index(seed_words: &[u16]) -> usize {
    let mut crc = crc32fast::Hasher::new();
    for &i in seed_words {
        let w = word(i).as_bytes();
        crc.update(&w[..PREFIX_LEN.min(w.len())]);
    }
    // u32 → usize never truncates on the 32- and 64-bit targets we build for.
    crc.finalize() as usize % seed_words.len()
}

/// Encodes `data` (a non-empty multiple of 4 bytes) as a phrase of
/// `3·len/4` words, plus a checksum word when `checksum` is true
/// (identity §3.1). Words are joined by single spaces.
pub fn encode(data: &[u8], checksum: bool) -> Result<Zeroizing<String>, MnemonicError> {
    if data.is_empty() || !data.len().is_multiple_of(4) {
        return Err(MnemonicError::BadDataLength(data.len()));
    }
    let n = WORD_LIST_LEN as u64;
    let mut indices: Zeroizing<Vec<u16>> =
        Zeroizing::new(Vec::with_capacity(data.len() / 4 * 3 + 1));
    for group in data.chunks_exact(4) {
        let mut le = Zeroizing::new([0u8; 4]);
        le.copy_from_slice(group);
        let x = u64::from(u32::from_le_bytes(*le));
        let w1 = x % n;
        let w2 = (x / n + w1) % n;
        let w3 = (x / n / n + w2) % n;
        for w in [w1, w2, w3] {
            // Every value is reduced mod N = 1626, so it fits a u16.
            indices.push(w as u16);
        }
    }
    if checksum {
        let j = checksum_index(&indices);
        let repeated = indices[j];
        indices.push(repeated);
    }
    let len = indices.iter().map(|&i| word(i).len() + 1).sum::<usize>();
    let mut phrase = Zeroizing::new(String::with_capacity(len));
    for (k, &i) in indices.iter().enumerate() {
        if k > 0 {
            phrase.push(' ');
        }
        phrase.push_str(word(i));
    }
    Ok(phrase)
}

/// Decodes a phrase of `3k` words, or `3k + 1` words whose last word is a
/// checksum, into `4k` bytes (identity §3.2). Words are separated by runs
/// of ASCII whitespace and matched by their first three letters, ignoring
/// ASCII case.
pub fn decode(phrase: &str) -> Result<Zeroizing<Vec<u8>>, MnemonicError> {
    let typed: Vec<&str> = phrase.split_ascii_whitespace().collect();
    let count = typed.len();
    let (seed_words, has_checksum) = match count % 3 {
        0 if count >= 3 => (count, false),
        1 if count >= 4 => (count - 1, true),
        _ => return Err(MnemonicError::BadWordCount(count)),
    };
    let mut indices: Zeroizing<Vec<u16>> = Zeroizing::new(Vec::with_capacity(count));
    for (k, w) in typed.iter().enumerate() {
        let i = lookup(w).ok_or_else(|| MnemonicError::UnknownWord {
            position: k + 1,
            word: w.chars().take(MAX_QUOTED_CHARS).collect(),
        })?;
        indices.push(i);
    }
    let n = WORD_LIST_LEN as u64;
    let mut out = Zeroizing::new(Vec::with_capacity(seed_words / 3 * 4));
    for (g, t) in indices[..seed_words].chunks_exact(3).enumerate() {
        let (a, b, c) = (u64::from(t[0]), u64::from(t[1]), u64::from(t[2]));
        let x = a + n * ((n - a + b) % n) + n * n * ((n - b + c) % n);
        let x = u32::try_from(x).map_err(|_| MnemonicError::ValueOutOfRange {
            first_word: 3 * g + 1,
        })?;
        out.extend_from_slice(&x.to_le_bytes());
    }
    if has_checksum {
        let j = checksum_index(&indices[..seed_words]);
        if indices[seed_words] != indices[j] {
            return Err(MnemonicError::ChecksumMismatch);
        }
    }
    Ok(out)
}

/// Which phrase form an account's seed belongs to (identity §4.2–4.3).
///
/// A client stores this next to the seed: a Session account keeps being
/// shown as 13 words and is never re-encoded as 25.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeedForm {
    /// A Session account: 16-byte seed, zero-padded to `ed_seed`; 13 words.
    Session,
    /// An Umbra account: the 32-byte `ed_seed` itself; 25 words.
    Umbra,
}

impl SeedForm {
    /// The number of words of this form's phrase (13 or 25).
    pub const fn phrase_words(self) -> usize {
        match self {
            SeedForm::Session => SESSION_PHRASE_WORDS,
            SeedForm::Umbra => UMBRA_PHRASE_WORDS,
        }
    }

    /// The number of seed bytes the phrase encodes (16 or 32).
    pub const fn seed_len(self) -> usize {
        match self {
            SeedForm::Session => 16,
            SeedForm::Umbra => 32,
        }
    }
}

/// An account secret: the 32-byte `ed_seed` and the form it came from
/// (identity §4). All account keys derive from it ([`AccountSeed::keys`]).
#[derive(Clone)]
pub struct AccountSeed {
    ed_seed: Zeroizing<[u8; 32]>,
    form: SeedForm,
}

impl fmt::Debug for AccountSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountSeed")
            .field("form", &self.form)
            .finish_non_exhaustive()
    }
}

impl AccountSeed {
    /// A new Umbra account from 32 random bytes that the caller drew from
    /// the OS CSPRNG (identity §4.1). Its phrase has 25 words.
    pub fn new_umbra(ed_seed: &[u8; 32]) -> Self {
        Self {
            ed_seed: Zeroizing::new(*ed_seed),
            form: SeedForm::Umbra,
        }
    }

    /// A Session account from its 16-byte seed; `ed_seed` is the seed
    /// followed by 16 zero bytes. Its phrase has 13 words.
    pub fn from_session_seed(seed: &[u8; 16]) -> Self {
        let mut ed_seed = Zeroizing::new([0u8; 32]);
        ed_seed[..16].copy_from_slice(seed);
        Self {
            ed_seed,
            form: SeedForm::Session,
        }
    }

    /// A seed given as bytes: 16 bytes are a Session seed, 32 bytes an
    /// Umbra `ed_seed`; any other length is refused.
    pub fn from_bytes(seed: &[u8]) -> Result<Self, MnemonicError> {
        if let Ok(s) = <&[u8; 32]>::try_from(seed) {
            Ok(Self::new_umbra(s))
        } else if let Ok(s) = <&[u8; 16]>::try_from(seed) {
            Ok(Self::from_session_seed(s))
        } else {
            Err(MnemonicError::BadSeedLength(seed.len()))
        }
    }

    /// Restores an account from its recovery phrase (identity §4.2).
    ///
    /// Accepts **only** 13 words (Session: 16-byte seed, zero-padded) or
    /// 25 words (Umbra: 32-byte `ed_seed`); both end in a checksum word.
    /// Other counts, including 12 or 24 words without a checksum, are
    /// refused with [`MnemonicError::NotAnAccountPhrase`].
    pub fn from_phrase(phrase: &str) -> Result<Self, MnemonicError> {
        let count = phrase.split_ascii_whitespace().count();
        if count != SESSION_PHRASE_WORDS && count != UMBRA_PHRASE_WORDS {
            return Err(MnemonicError::NotAnAccountPhrase(count));
        }
        let bytes = decode(phrase)?;
        Self::from_bytes(&bytes)
    }

    /// The recovery phrase of this account in its own form: 13 words for a
    /// Session account, 25 for an Umbra account.
    pub fn phrase(&self) -> Zeroizing<String> {
        // encoded_seed() is 16 or 32 bytes, which encode always accepts.
        encode(self.encoded_seed(), true).expect("a 16- or 32-byte seed always encodes")
    }

    /// The bytes the phrase encodes: the 16-byte Session seed, or the
    /// 32-byte `ed_seed` of an Umbra account.
    pub fn encoded_seed(&self) -> &[u8] {
        &self.ed_seed[..self.form.seed_len()]
    }

    /// The 32-byte `ed_seed` the account keys derive from.
    pub fn ed_seed(&self) -> &[u8; 32] {
        &self.ed_seed
    }

    /// Which form the seed came from.
    pub fn form(&self) -> SeedForm {
        self.form
    }

    /// The account keys (identity §1).
    pub fn keys(&self) -> AccountKeys {
        AccountKeys::from_seed(&self.ed_seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const AMAZE: &str =
        "amaze buffet cake entrance symptoms tiger lamb maze nestle python dusted faxed faxed";

    fn seq(n: u8) -> Vec<u8> {
        (0..n).collect()
    }

    #[test]
    fn word_list_is_the_spec_file() {
        let digest = umbra_crypto::hash::sha256(WORD_LIST_TEXT.as_bytes());
        assert_eq!(hex::encode(digest), WORD_LIST_SHA256);
        let words = word_list();
        assert_eq!(words.len(), WORD_LIST_LEN);
        assert_eq!(words[0], "abbey");
        assert_eq!(words[WORD_LIST_LEN - 1], "zoom");
        for w in words {
            assert!((4..=12).contains(&w.len()), "{w}");
            assert!(w.bytes().all(|b| b.is_ascii_lowercase()), "{w}");
        }
        // Every prefix is unique, so the index has one entry per word.
        assert_eq!(LIST.by_prefix.len(), WORD_LIST_LEN);
    }

    #[test]
    fn crc32_is_the_zlib_one() {
        assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn known_answers() {
        assert_eq!(encode(&seq(16), true).unwrap().as_str(), AMAZE);
        assert_eq!(
            encode(&[0u8; 16], true).unwrap().as_str(),
            vec!["abbey"; 13].join(" ")
        );
        assert_eq!(
            encode(&[1, 2, 3, 4], false).unwrap().as_str(),
            "object anxiety asked"
        );
        let p32 = encode(&seq(32), true).unwrap();
        assert_eq!(p32.split(' ').count(), 25);
        assert!(p32.ends_with(" afield calamity boxes"), "{}", p32.as_str());
        assert_eq!(decode(&p32).unwrap().as_slice(), seq(32).as_slice());
        assert_eq!(decode(AMAZE).unwrap().as_slice(), seq(16).as_slice());
    }

    #[test]
    fn decode_tolerance() {
        let typos = "amazing buffalo cakewalk entropy symbol tigger lambda mazurka nestling \
                     pythons dustpan faxing faxing";
        assert_eq!(decode(typos).unwrap().as_slice(), seq(16).as_slice());
        let prefixes = "ama buf cak ent sym tig lam maz nes pyt dus fax fax";
        assert_eq!(decode(prefixes).unwrap().as_slice(), seq(16).as_slice());
        let spaced = format!("\n\t  {}  \r\n", AMAZE.to_uppercase().replace(' ', " \t "));
        assert_eq!(decode(&spaced).unwrap().as_slice(), seq(16).as_slice());
        assert_eq!(
            decode("OBJECT ANXIETY ASKED").unwrap().as_slice(),
            &[1, 2, 3, 4]
        );
    }

    #[test]
    fn decode_refusals() {
        let bad_checksum = AMAZE.replace("faxed faxed", "faxed amaze");
        assert_eq!(decode(&bad_checksum), Err(MnemonicError::ChecksumMismatch));
        let altered = AMAZE.replace("dusted faxed", "dusted gagged");
        assert_eq!(decode(&altered), Err(MnemonicError::ChecksumMismatch));
        assert_eq!(
            decode(&AMAZE.replace("faxed faxed", "faxed zzzzz")),
            Err(MnemonicError::UnknownWord {
                position: 13,
                word: "zzzzz".into()
            })
        );
        assert_eq!(
            decode("ab abbey abbey"),
            Err(MnemonicError::UnknownWord {
                position: 1,
                word: "ab".into()
            })
        );
        assert_eq!(
            decode("abbéy abbey abbey"),
            Ok(Zeroizing::new(vec![0u8; 4])),
            "only the first three characters count"
        );
        assert!(matches!(
            decode("äbbey abbey abbey"),
            Err(MnemonicError::UnknownWord { position: 1, .. })
        ));
        assert_eq!(
            decode("abbey abbey zoom"),
            Err(MnemonicError::ValueOutOfRange { first_word: 1 })
        );
        assert_eq!(
            decode("abbey abbey abbey abbey abbey zoom"),
            Err(MnemonicError::ValueOutOfRange { first_word: 4 })
        );
        for n in [0, 1, 2, 5, 8] {
            let p = vec!["abbey"; n].join(" ");
            assert_eq!(decode(&p), Err(MnemonicError::BadWordCount(n)));
        }
        assert_eq!(decode("   \n "), Err(MnemonicError::BadWordCount(0)));
        let long = format!("{} {}", "x".repeat(100), "abbey abbey");
        match decode(&long) {
            Err(MnemonicError::UnknownWord { word, .. }) => {
                assert_eq!(word.chars().count(), MAX_QUOTED_CHARS)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn encode_refusals() {
        assert_eq!(encode(&[], true), Err(MnemonicError::BadDataLength(0)));
        assert_eq!(
            encode(&[1, 2, 3], false),
            Err(MnemonicError::BadDataLength(3))
        );
        assert_eq!(
            encode(&[0; 17], true),
            Err(MnemonicError::BadDataLength(17))
        );
    }

    #[test]
    fn error_messages_name_the_problem() {
        assert_eq!(
            MnemonicError::ChecksumMismatch.to_string(),
            "checksum word does not match: the phrase has a typo"
        );
        assert!(
            MnemonicError::NotAnAccountPhrase(12)
                .to_string()
                .contains("13 words")
        );
        assert!(
            MnemonicError::NotAnAccountPhrase(12)
                .to_string()
                .contains("25 words")
        );
        assert_eq!(
            MnemonicError::ValueOutOfRange { first_word: 4 }.to_string(),
            "words 4 to 6 do not form a valid group (value ≥ 2^32): the phrase has a typo"
        );
    }

    #[test]
    fn session_phrase_restores_the_session_account() {
        // identity §4.2 example.
        let p = "cage gimmick ocean festival unplugs goat knife history paradise soya phase \
                 ember festival";
        let seed = AccountSeed::from_phrase(p).unwrap();
        assert_eq!(seed.form(), SeedForm::Session);
        assert_eq!(
            hex::encode(seed.encoded_seed()),
            "b0e12943e22e8f71774c2c4205fed598"
        );
        assert_eq!(&seed.ed_seed()[16..], &[0u8; 16]);
        assert_eq!(
            seed.keys().account_id().to_string(),
            "05558d6fa8ef7575344a73dc56ba0ece787ba6cc90032db762ddb44bd5d6491661"
        );
        // It is shown again as 13 words, never as 25.
        assert_eq!(seed.phrase().as_str(), p);
    }

    #[test]
    fn restore_accepts_only_13_or_25_words() {
        let p24 = encode(&seq(32), false).unwrap();
        assert_eq!(
            AccountSeed::from_phrase(&p24).unwrap_err(),
            MnemonicError::NotAnAccountPhrase(24)
        );
        let p12 = encode(&seq(16), false).unwrap();
        assert_eq!(
            AccountSeed::from_phrase(&p12).unwrap_err(),
            MnemonicError::NotAnAccountPhrase(12)
        );
        let p49 = encode(&seq(64), true).unwrap();
        assert_eq!(
            AccountSeed::from_phrase(&p49).unwrap_err(),
            MnemonicError::NotAnAccountPhrase(49)
        );
        assert_eq!(
            AccountSeed::from_phrase(&AMAZE.replace("faxed faxed", "faxed amaze")).unwrap_err(),
            MnemonicError::ChecksumMismatch
        );
        let p25 = encode(&seq(32), true).unwrap();
        let restored = AccountSeed::from_phrase(&p25).unwrap();
        assert_eq!(restored.form(), SeedForm::Umbra);
        assert_eq!(restored.ed_seed().as_slice(), seq(32).as_slice());
        assert_eq!(restored.phrase().as_str(), p25.as_str());
    }

    #[test]
    fn seed_from_bytes() {
        assert_eq!(
            AccountSeed::from_bytes(&[0; 16]).unwrap().form(),
            SeedForm::Session
        );
        assert_eq!(
            AccountSeed::from_bytes(&[0; 32]).unwrap().form(),
            SeedForm::Umbra
        );
        assert_eq!(
            AccountSeed::from_bytes(&[0; 24]).unwrap_err(),
            MnemonicError::BadSeedLength(24)
        );
        let s = AccountSeed::from_bytes(&[7; 16]).unwrap();
        assert_eq!(s.phrase().split(' ').count(), SESSION_PHRASE_WORDS);
        let debug = format!("{:?}", AccountSeed::new_umbra(&[0xab; 32]));
        assert!(!debug.contains("ab, ") && !debug.contains("171"), "{debug}");
    }

    /// Replaces everything after the third letter of word `k` with `tail`.
    fn with_typo(phrase: &str, k: usize, tail: &str, upper: bool) -> String {
        phrase
            .split(' ')
            .enumerate()
            .map(|(i, w)| {
                let w = if i == k {
                    format!("{}{tail}", &w[..3])
                } else {
                    w.to_string()
                };
                if upper { w.to_uppercase() } else { w }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    proptest! {
        #[test]
        fn round_trip_16(data in any::<[u8; 16]>(), checksum in any::<bool>()) {
            let p = encode(&data, checksum).unwrap();
            prop_assert_eq!(p.split(' ').count(), if checksum { 13 } else { 12 });
            let back = decode(&p).unwrap();
            prop_assert_eq!(back.as_slice(), &data[..]);
        }

        #[test]
        fn round_trip_32(data in any::<[u8; 32]>(), checksum in any::<bool>()) {
            let p = encode(&data, checksum).unwrap();
            prop_assert_eq!(p.split(' ').count(), if checksum { 25 } else { 24 });
            let back = decode(&p).unwrap();
            prop_assert_eq!(back.as_slice(), &data[..]);
        }

        #[test]
        fn round_trip_any_group_count(data in proptest::collection::vec(any::<[u8; 4]>(), 1..20)) {
            let data: Vec<u8> = data.concat();
            let back = decode(&encode(&data, true).unwrap()).unwrap();
            prop_assert_eq!(back.as_slice(), &data[..]);
        }

        #[test]
        fn account_round_trip(data in any::<[u8; 32]>(), short in any::<[u8; 16]>()) {
            let s = AccountSeed::new_umbra(&data);
            let back = AccountSeed::from_phrase(&s.phrase()).unwrap();
            prop_assert_eq!(back.form(), SeedForm::Umbra);
            prop_assert_eq!(back.ed_seed(), &data);
            let s = AccountSeed::from_session_seed(&short);
            let back = AccountSeed::from_phrase(&s.phrase()).unwrap();
            prop_assert_eq!(back.form(), SeedForm::Session);
            prop_assert_eq!(back.encoded_seed(), &short[..]);
        }

        #[test]
        fn typos_after_third_letter_are_tolerated(
            data in any::<[u8; 32]>(),
            k in 0usize..25,
            tail in "[a-z]{0,9}",
            upper in any::<bool>(),
        ) {
            let p = encode(&data, true).unwrap();
            let typo = with_typo(&p, k, &tail, upper);
            let back = decode(&typo).unwrap();
            prop_assert_eq!(back.as_slice(), &data[..]);
        }

        #[test]
        fn wrong_checksum_word_is_refused(data in any::<[u8; 16]>(), other in 0u16..1626) {
            let p = encode(&data, true).unwrap();
            let words: Vec<&str> = p.split(' ').collect();
            prop_assume!(lookup(words[12]) != Some(other));
            let tampered = format!("{} {}", words[..12].join(" "), word(other));
            prop_assert_eq!(decode(&tampered), Err(MnemonicError::ChecksumMismatch));
        }

        #[test]
        fn decode_never_panics(s in "\\PC{0,200}") {
            let _ = decode(&s);
            let _ = AccountSeed::from_phrase(&s);
        }

        #[test]
        fn decode_never_panics_on_list_words(
            idx in proptest::collection::vec(0u16..1626, 0..30),
        ) {
            let p = idx.iter().map(|&i| word(i)).collect::<Vec<_>>().join(" ");
            if let Ok(bytes) = decode(&p) {
                prop_assert_eq!(bytes.len(), idx.len() / 3 * 4);
            }
        }
    }
}
