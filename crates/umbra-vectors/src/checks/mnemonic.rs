//! Categories of `mnemonic.json` (identity §3–4): the general phrase codec
//! and the Session 13-word restore chain, run through
//! `umbra_proto::mnemonic`.

use serde_json::Value;
use umbra_proto::mnemonic::{self, AccountSeed, SeedForm};

use crate::input::hx;
use crate::{Category, CheckError, Input, Malformed, Output};

/// The categories of this file.
pub(crate) const CATEGORIES: &[Category] = &[
    Category {
        name: "mnemonic_encode",
        inputs: &["data", "checksum"],
        outputs: Some(&["phrase"]),
        run: encode,
    },
    Category {
        name: "mnemonic_decode",
        inputs: &["phrase"],
        outputs: Some(&["data"]),
        run: decode,
    },
    Category {
        name: "session_id_from_phrase",
        inputs: &["phrase"],
        outputs: Some(&["seed", "ed25519_pk", "session_id"]),
        run: session_id_from_phrase,
    },
];

fn encode(input: &Input) -> Result<Output, CheckError> {
    let data = input.bytes("data")?;
    if !data.len().is_multiple_of(4) {
        return Err(Malformed::new("data", "length must be a multiple of 4").into());
    }
    let checksum = input.bool("checksum")?;
    let phrase = mnemonic::encode(&data, checksum).map_err(CheckError::refused)?;
    // The library's own decoder must give the bytes back.
    let back = mnemonic::decode(&phrase).map_err(CheckError::refused)?;
    if back.as_slice() != data.as_slice() {
        return Err(CheckError::refused(
            "decoding the encoded phrase does not give the data back",
        ));
    }
    let mut out = Output::new();
    out.insert("phrase".into(), Value::String(phrase.to_string()));
    Ok(out)
}

fn decode(input: &Input) -> Result<Output, CheckError> {
    let data = mnemonic::decode(input.str("phrase")?).map_err(CheckError::refused)?;
    let mut out = Output::new();
    out.insert("data".into(), hx(data.as_slice()));
    Ok(out)
}

fn session_id_from_phrase(input: &Input) -> Result<Output, CheckError> {
    let seed = AccountSeed::from_phrase(input.str("phrase")?).map_err(CheckError::refused)?;
    if seed.form() != SeedForm::Session {
        return Err(CheckError::refused("not a 13-word Session phrase"));
    }
    let keys = seed.keys();
    let mut out = Output::new();
    out.insert("seed".into(), hx(seed.encoded_seed()));
    out.insert("ed25519_pk".into(), hx(keys.ed25519_public().as_bytes()));
    out.insert("session_id".into(), hx(keys.account_id().to_bytes()));
    Ok(out)
}
