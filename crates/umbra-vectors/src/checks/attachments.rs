//! Categories of `attachments.json` (spec `attachments.md` §2–3), run
//! through `umbra_proto::attachment::{legacy, deterministic}`.

use serde_json::Value;
use umbra_proto::attachment::{deterministic, legacy};

use crate::input::hx;
use crate::{Category, CheckError, Input, Malformed, Output};

/// The categories of this file.
pub(crate) const CATEGORIES: &[Category] = &[
    Category {
        name: "attachment_encrypted_size",
        inputs: &["plaintext_size"],
        outputs: Some(&["encrypted_size"]),
        run: encrypted_size,
    },
    Category {
        name: "attachment_encrypt",
        inputs: &["seed", "domain", "plaintext"],
        outputs: Some(&["key", "encrypted"]),
        run: encrypt,
    },
    Category {
        name: "attachment_decrypt",
        inputs: &["key", "encrypted"],
        outputs: Some(&["plaintext"]),
        run: decrypt,
    },
    Category {
        name: "attachment_legacy_padded_size",
        inputs: &["size"],
        outputs: Some(&["padded_size"]),
        run: legacy_padded_size,
    },
    Category {
        name: "attachment_legacy_encrypt",
        inputs: &["key", "iv", "plaintext"],
        outputs: Some(&["encrypted", "digest"]),
        run: legacy_encrypt,
    },
    Category {
        name: "attachment_legacy_decrypt",
        inputs: &["key", "digest", "encrypted"],
        outputs: Some(&["plaintext"]),
        run: legacy_decrypt,
    },
];

fn size(input: &Input, key: &str) -> Result<usize, Malformed> {
    let n = input.int(key)?;
    usize::try_from(n).map_err(|_| Malformed::new(key, "must be a non-negative size"))
}

fn fixed<const N: usize>(input: &Input, key: &str) -> Result<[u8; N], Malformed> {
    let b = input.bytes(key)?;
    b.try_into()
        .map_err(|_| Malformed::new(key, format!("must be {N} bytes")))
}

fn encrypted_size(input: &Input) -> Result<Output, CheckError> {
    let n = size(input, "plaintext_size")?;
    let mut out = Output::new();
    out.insert(
        "encrypted_size".into(),
        Value::from(deterministic::encrypted_size(n)),
    );
    Ok(out)
}

fn encrypt(input: &Input) -> Result<Output, CheckError> {
    let seed: [u8; 32] = fixed(input, "seed")?;
    let domain = match input.str("domain")? {
        "attachment" => deterministic::Domain::Attachment,
        "profile_pic" => deterministic::Domain::ProfilePic,
        _ => {
            return Err(
                Malformed::new("domain", "must be \"attachment\" or \"profile_pic\"").into(),
            );
        }
    };
    let plaintext = input.bytes("plaintext")?;
    let (key, encrypted) =
        deterministic::encrypt(&seed, domain, &plaintext, false).map_err(CheckError::refused)?;
    if encrypted.len() != deterministic::encrypted_size(plaintext.len()) {
        return Err(CheckError::refused(
            "the blob's length differs from encrypted_size",
        ));
    }
    // Round trip through the library's decryption.
    let back = deterministic::decrypt(&*key, &encrypted, Some(plaintext.len() as u64))
        .map_err(CheckError::refused)?;
    if back != plaintext {
        return Err(CheckError::refused(
            "decrypting the blob does not give the plaintext back",
        ));
    }
    let mut out = Output::new();
    out.insert("key".into(), hx(*key));
    out.insert("encrypted".into(), hx(&encrypted));
    Ok(out)
}

fn decrypt(input: &Input) -> Result<Output, CheckError> {
    let key = input.bytes("key")?;
    let encrypted = input.bytes("encrypted")?;
    let plaintext = deterministic::decrypt(&key, &encrypted, None).map_err(CheckError::refused)?;
    let mut out = Output::new();
    out.insert("plaintext".into(), hx(&plaintext));
    Ok(out)
}

fn legacy_padded_size(input: &Input) -> Result<Output, CheckError> {
    let n = size(input, "size")?;
    let mut out = Output::new();
    out.insert(
        "padded_size".into(),
        Value::from(legacy::session_padded_size(n as u64)),
    );
    Ok(out)
}

fn legacy_encrypt(input: &Input) -> Result<Output, CheckError> {
    let key: [u8; 64] = fixed(input, "key")?;
    let iv: [u8; 16] = fixed(input, "iv")?;
    let plaintext = input.bytes("plaintext")?;
    let blob = legacy::encrypt_unpadded(&key, &iv, &plaintext);
    let back =
        legacy::decrypt(&key, &blob.digest, &blob.blob, None).map_err(CheckError::refused)?;
    if back != plaintext {
        return Err(CheckError::refused(
            "decrypting the blob does not give the plaintext back",
        ));
    }
    let mut out = Output::new();
    out.insert("encrypted".into(), hx(&blob.blob));
    out.insert("digest".into(), hx(blob.digest));
    Ok(out)
}

fn legacy_decrypt(input: &Input) -> Result<Output, CheckError> {
    let key = input.bytes("key")?;
    let digest = input.bytes("digest")?;
    let encrypted = input.bytes("encrypted")?;
    let plaintext =
        legacy::decrypt(&key, &digest, &encrypted, None).map_err(CheckError::refused)?;
    let mut out = Output::new();
    out.insert("plaintext".into(), hx(&plaintext));
    Ok(out)
}
