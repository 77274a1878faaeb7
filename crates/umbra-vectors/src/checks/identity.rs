//! Categories of `identity.json` (identity §1, the BLAKE2b primitive of the
//! spec README): seed → keys, Ed25519 ⇄ X25519 public keys, signatures and
//! parametrised BLAKE2b, all run through `umbra-proto`/`umbra-crypto`.

use serde_json::Value;
use umbra_crypto::hash::{Blake2bParams, blake2b};
use umbra_crypto::{Ed25519Keypair, Ed25519Public, X25519Public, ed25519};
use umbra_proto::identity::AccountKeys;

use crate::input::hx;
use crate::{Category, CheckError, Input, Malformed, Output};

/// The categories of this file.
pub(crate) const CATEGORIES: &[Category] = &[
    Category {
        name: "ed25519_seed_to_keys",
        inputs: &["seed"],
        outputs: Some(&["ed25519_pk", "x25519_sk", "x25519_pk", "session_id"]),
        run: seed_to_keys,
    },
    Category {
        name: "ed25519_pk_to_x25519_pk",
        inputs: &["ed25519_pk"],
        outputs: Some(&["x25519_pk"]),
        run: ed_to_x,
    },
    Category {
        name: "x25519_pk_to_ed25519_pk",
        inputs: &["x25519_pk"],
        outputs: Some(&["ed25519_pk"]),
        run: x_to_ed,
    },
    Category {
        name: "ed25519_sign",
        inputs: &["seed", "message"],
        outputs: Some(&["ed25519_pk", "signature"]),
        run: sign,
    },
    Category {
        name: "blake2b",
        inputs: &["data", "key", "personal", "outlen"],
        outputs: Some(&["hash"]),
        run: blake2b_hash,
    },
];

/// Reads a byte string of exactly `N` bytes; other sizes are malformed.
fn fixed<const N: usize>(input: &Input, key: &str) -> Result<[u8; N], Malformed> {
    let b = input.bytes(key)?;
    b.as_slice()
        .try_into()
        .map_err(|_| Malformed::new(key, format!("must be {N} bytes, got {}", b.len())))
}

fn output<const K: usize>(pairs: [(&str, Value); K]) -> Output {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn seed_to_keys(input: &Input) -> Result<Output, CheckError> {
    let seed = input.bytes("seed")?;
    if seed.len() != 16 && seed.len() != 32 {
        return Err(Malformed::new(
            "seed",
            format!("must be 16 or 32 bytes, got {}", seed.len()),
        )
        .into());
    }
    let keys = AccountKeys::from_seed_slice(&seed).map_err(CheckError::refused)?;
    // identity §1: X25519(x25519_sk, 9) equals the Montgomery form of the Ed25519 key.
    if keys.x25519_secret().public() != keys.x25519_public() {
        return Err(CheckError::refused(
            "the X25519 secret and public keys disagree",
        ));
    }
    Ok(output([
        ("ed25519_pk", hx(keys.ed25519_public().as_bytes())),
        ("x25519_sk", hx(*keys.x25519_secret().to_bytes())),
        ("x25519_pk", hx(keys.x25519_public().as_bytes())),
        ("session_id", hx(keys.account_id().to_bytes())),
    ]))
}

fn ed_to_x(input: &Input) -> Result<Output, CheckError> {
    let pk = Ed25519Public::from_bytes(fixed::<32>(input, "ed25519_pk")?);
    let x = pk.to_x25519().map_err(CheckError::refused)?;
    Ok(output([("x25519_pk", hx(x.as_bytes()))]))
}

fn x_to_ed(input: &Input) -> Result<Output, CheckError> {
    let x = X25519Public::from_bytes(fixed::<32>(input, "x25519_pk")?);
    let ed = ed25519::x25519_to_ed25519(&x).map_err(CheckError::refused)?;
    Ok(output([("ed25519_pk", hx(ed.as_bytes()))]))
}

fn sign(input: &Input) -> Result<Output, CheckError> {
    let keypair = Ed25519Keypair::from_seed(&fixed::<32>(input, "seed")?);
    let message = input.bytes("message")?;
    Ok(output([
        ("ed25519_pk", hx(keypair.public().as_bytes())),
        ("signature", hx(keypair.sign(&message))),
    ]))
}

fn blake2b_hash(input: &Input) -> Result<Output, CheckError> {
    let data = input.bytes("data")?;
    let key = input.bytes("key")?;
    if key.len() > 64 {
        return Err(Malformed::new("key", "at most 64 bytes").into());
    }
    let personal = input.bytes("personal")?;
    if !personal.is_empty() && personal.len() != 16 {
        return Err(Malformed::new("personal", "must be empty or 16 bytes").into());
    }
    let outlen = input.int("outlen")?;
    let outlen = usize::try_from(outlen)
        .ok()
        .filter(|n| (1..=64).contains(n))
        .ok_or_else(|| Malformed::new("outlen", "must be 1 to 64"))?;
    let params = Blake2bParams {
        key: &key,
        salt: &[],
        personal: &personal,
    };
    let hash = blake2b(&data, outlen, params).map_err(CheckError::refused)?;
    Ok(output([("hash", hx(hash))]))
}
