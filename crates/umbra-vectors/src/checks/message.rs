//! Categories of `message.json` (messages §2–5): deterministic 1:1
//! encryption, decryption with sender recovery, padding (both sender styles,
//! with the required unpadding round trip) and the Envelope /
//! WebSocketMessage wire bytes, all run through `umbra_proto::message`.

use serde_json::Value;
use umbra_proto::identity::{AccountId, AccountKeys};
use umbra_proto::message::{encrypt, padding, wire};

use crate::input::hx;
use crate::{Category, CheckError, Input, Malformed, Output};

/// The categories of this file.
pub(crate) const CATEGORIES: &[Category] = &[
    Category {
        name: "session_encrypt_deterministic",
        inputs: &["sender_seed", "recipient_session_id", "plaintext"],
        outputs: Some(&["ciphertext"]),
        run: encrypt_deterministic,
    },
    Category {
        name: "session_decrypt",
        inputs: &["recipient_seed", "ciphertext"],
        outputs: Some(&["plaintext", "sender_ed25519_pk", "sender_session_id"]),
        run: decrypt,
    },
    Category {
        name: "message_padding",
        inputs: &["plaintext"],
        outputs: Some(&["padded", "legacy_padded"]),
        run: pad,
    },
    Category {
        name: "envelope_wire",
        inputs: &["content", "timestamp", "pro_sig"],
        outputs: Some(&["envelope", "websocket_message"]),
        run: envelope_wire,
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

fn encrypt_deterministic(input: &Input) -> Result<Output, CheckError> {
    let sender = AccountKeys::from_seed(&fixed::<32>(input, "sender_seed")?);
    let recipient: [u8; 33] = fixed(input, "recipient_session_id")?;
    let recipient = AccountId::from_bytes(&recipient).map_err(CheckError::refused)?;
    let plaintext = input.bytes("plaintext")?;
    let ct = encrypt::encrypt_deterministic(sender.ed25519(), &recipient, &plaintext)
        .map_err(CheckError::refused)?;
    Ok(output([("ciphertext", hx(ct))]))
}

fn decrypt(input: &Input) -> Result<Output, CheckError> {
    let recipient = AccountKeys::from_seed(&fixed::<32>(input, "recipient_seed")?);
    let ciphertext = input.bytes("ciphertext")?;
    let d =
        encrypt::decrypt(recipient.x25519_secret(), &ciphertext).map_err(CheckError::refused)?;
    Ok(output([
        ("plaintext", hx(&d.plaintext)),
        ("sender_ed25519_pk", hx(d.sender_ed25519.as_bytes())),
        ("sender_session_id", hx(d.sender.to_bytes())),
    ]))
}

fn pad(input: &Input) -> Result<Output, CheckError> {
    let plaintext = input.bytes("plaintext")?;
    let padded = padding::pad(&plaintext);
    let legacy = padding::pad_legacy(&plaintext);
    // The category requires the round trip through the receiver's unpadding.
    for (name, p) in [("padded", &padded), ("legacy_padded", &legacy)] {
        if padding::unpad(p) != plaintext.as_slice() {
            return Err(CheckError::refused(format!(
                "unpadding {name} does not give back the plaintext"
            )));
        }
    }
    Ok(output([
        ("padded", hx(&padded)),
        ("legacy_padded", hx(&legacy)),
    ]))
}

fn envelope_wire(input: &Input) -> Result<Output, CheckError> {
    let content = input.bytes("content")?;
    let timestamp = input.u64("timestamp")?;
    let pro_sig = input.bytes("pro_sig")?;
    if !pro_sig.is_empty() && pro_sig.len() != 64 {
        return Err(Malformed::new(
            "pro_sig",
            format!("must be empty or 64 bytes, got {}", pro_sig.len()),
        )
        .into());
    }
    let envelope = wire::encode_envelope_with_pro_sig(&content, timestamp, &pro_sig);
    let websocket_message = wire::wrap_websocket(&envelope);
    // Receivers parse rather than compare: both forms must read back.
    for stored in [&websocket_message, &envelope] {
        let got = wire::unwrap_stored(stored).map_err(CheckError::refused)?;
        if got.timestamp_ms != timestamp || got.ciphertext != content {
            return Err(CheckError::refused(
                "the receiver does not read back the written Envelope",
            ));
        }
    }
    Ok(output([
        ("envelope", hx(&envelope)),
        ("websocket_message", hx(&websocket_message)),
    ]))
}
