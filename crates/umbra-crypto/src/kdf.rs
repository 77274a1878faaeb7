//! Password-based key derivation: Argon2id (RFC 9106, version 0x13).
//!
//! Used by the client to wrap the local-store key of a profile under the
//! user's passphrase (client profile `profile.key`; identity.md §4.3 keeps
//! the seed "encrypted at rest"). The cost parameters are stored next to
//! the salt so that they can be raised later without breaking old profiles.

use zeroize::Zeroizing;

/// Minimum salt length accepted (RFC 9106 recommends 16 bytes).
pub const MIN_SALT_LEN: usize = 16;

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Argon2Params {
    /// Memory cost in KiB (at least `8 × lanes`).
    pub memory_kib: u32,
    /// Number of passes over the memory (at least 1).
    pub iterations: u32,
    /// Degree of parallelism (lanes, at least 1). Computation is single
    /// threaded here; lanes only change the output.
    pub lanes: u32,
}

impl Argon2Params {
    /// The default for wrapping a profile key: 64 MiB, 3 passes, 1 lane
    /// (RFC 9106 §7.4's second recommended option uses 64 MiB with 3 passes
    /// and 4 lanes; one lane keeps the cost the same on every machine since
    /// this implementation runs single-threaded).
    pub const PROFILE: Argon2Params = Argon2Params {
        memory_kib: 64 * 1024,
        iterations: 3,
        lanes: 1,
    };

    /// Very cheap parameters for tests only: 64 KiB, 1 pass. Never use these
    /// for a real passphrase.
    pub const INSECURE_TEST: Argon2Params = Argon2Params {
        memory_kib: 64,
        iterations: 1,
        lanes: 1,
    };

    /// The largest memory cost accepted when reading parameters from a file
    /// (4 GiB), so a corrupted file cannot make us allocate without bound.
    pub const MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;

    /// The largest pass count accepted when reading parameters from a file.
    pub const MAX_ITERATIONS: u32 = 1024;

    /// The largest lane count accepted.
    pub const MAX_LANES: u32 = 64;

    /// Checks that the parameters are within Argon2's limits and ours.
    pub fn validate(&self) -> Result<(), KdfError> {
        if self.lanes == 0 || self.lanes > Self::MAX_LANES {
            return Err(KdfError::BadParams("lanes must be 1..=64"));
        }
        if self.iterations == 0 || self.iterations > Self::MAX_ITERATIONS {
            return Err(KdfError::BadParams("iterations must be 1..=1024"));
        }
        if self.memory_kib < 8 * self.lanes || self.memory_kib > Self::MAX_MEMORY_KIB {
            return Err(KdfError::BadParams(
                "memory must be at least 8 KiB per lane and at most 4 GiB",
            ));
        }
        Ok(())
    }
}

/// Why a key derivation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KdfError {
    /// The salt is shorter than [`MIN_SALT_LEN`].
    #[error("Argon2id salt must be at least {MIN_SALT_LEN} bytes, got {0}")]
    SaltTooShort(usize),
    /// A cost parameter is out of range.
    #[error("invalid Argon2id parameters: {0}")]
    BadParams(&'static str),
    /// The Argon2 implementation refused its input (for example a
    /// passphrase longer than 2^32 − 1 bytes).
    #[error("Argon2id failed: {0}")]
    Argon2(String),
}

/// Derives a 32-byte key from `passphrase` and `salt` with Argon2id
/// (version 0x13, no secret, no associated data).
pub fn argon2id(
    passphrase: &[u8],
    salt: &[u8],
    params: &Argon2Params,
) -> Result<Zeroizing<[u8; 32]>, KdfError> {
    if salt.len() < MIN_SALT_LEN {
        return Err(KdfError::SaltTooShort(salt.len()));
    }
    argon2id_unchecked_salt(passphrase, salt, params)
}

/// The derivation itself; salts of at least 8 bytes (Argon2's own minimum)
/// are accepted, which lets the tests use reference vectors.
fn argon2id_unchecked_salt(
    passphrase: &[u8],
    salt: &[u8],
    params: &Argon2Params,
) -> Result<Zeroizing<[u8; 32]>, KdfError> {
    params.validate()?;
    let p = argon2::Params::new(params.memory_kib, params.iterations, params.lanes, Some(32))
        .map_err(|e| KdfError::Argon2(e.to_string()))?;
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p);
    let mut out = Zeroizing::new([0u8; 32]);
    a.hash_password_into(passphrase, salt, out.as_mut())
        .map_err(|e| KdfError::Argon2(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn params(memory_kib: u32, iterations: u32, lanes: u32) -> Argon2Params {
        Argon2Params {
            memory_kib,
            iterations,
            lanes,
        }
    }

    /// Reference values computed with the reference C implementation
    /// (libargon2 `argon2id_hash_raw`, 32-byte output).
    #[test]
    fn matches_reference_implementation() {
        let cases: [(&[u8], &[u8], Argon2Params, &str); 3] = [
            (
                b"password",
                b"somesalt",
                params(256, 2, 1),
                "9dfeb910e80bad0311fee20f9c0e2b12c17987b4cac90c2ef54d5b3021c68bfe",
            ),
            (
                "umbra pässphrase".as_bytes(),
                b"0123456789abcdef",
                params(64, 3, 1),
                "6be4e491f191efaf63b4edd48c04789b78a36308acfff012afc412c9aefc9a0a",
            ),
            (
                b"",
                b"saltsalt",
                params(32, 1, 2),
                "50d38685fcf0c09073a97ed2c30fe2864a9f7d2d54aa6b7c1b7b1231fa1213da",
            ),
        ];
        for (pw, salt, p, want) in cases {
            let got = argon2id_unchecked_salt(pw, salt, &p).unwrap();
            assert_eq!(hex::encode(*got), want);
        }
        // The same derivation through the public entry point (16-byte salt).
        let got = argon2id(
            "umbra pässphrase".as_bytes(),
            b"0123456789abcdef",
            &params(64, 3, 1),
        )
        .unwrap();
        assert_eq!(
            hex::encode(*got),
            "6be4e491f191efaf63b4edd48c04789b78a36308acfff012afc412c9aefc9a0a"
        );
    }

    #[test]
    fn refuses_short_salt_and_bad_params() {
        let p = Argon2Params::INSECURE_TEST;
        assert_eq!(
            argon2id(b"pw", b"short-salt", &p),
            Err(KdfError::SaltTooShort(10))
        );
        let salt = [7u8; 16];
        for bad in [
            params(64, 0, 1),
            params(64, 1, 0),
            params(7, 1, 1),
            params(15, 1, 2),
            params(64, 1, 65),
            params(64, 1025, 1),
            params(Argon2Params::MAX_MEMORY_KIB + 1, 1, 1),
        ] {
            assert!(
                matches!(argon2id(b"pw", &salt, &bad), Err(KdfError::BadParams(_))),
                "{bad:?} accepted"
            );
        }
        assert!(Argon2Params::PROFILE.validate().is_ok());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        #[test]
        fn deterministic_and_input_sensitive(
            pw in proptest::collection::vec(any::<u8>(), 0..40),
            salt in any::<[u8; 16]>(),
            flip in 0usize..16,
        ) {
            let p = Argon2Params::INSECURE_TEST;
            let a = argon2id(&pw, &salt, &p).unwrap();
            let b = argon2id(&pw, &salt, &p).unwrap();
            prop_assert_eq!(*a, *b);
            let mut salt2 = salt;
            salt2[flip] ^= 1;
            let c = argon2id(&pw, &salt2, &p).unwrap();
            prop_assert_ne!(*a, *c);
            let mut pw2 = pw.clone();
            pw2.push(0);
            let d = argon2id(&pw2, &salt, &p).unwrap();
            prop_assert_ne!(*a, *d);
        }
    }
}
