//! Replies (spec `onion.md` §7) and their padding (§9.3, §9.4).
//!
//! Only the destination encrypts, under the destination-layer key; relays
//! pass its status and body back unchanged, and answer their own errors in
//! plaintext. The client therefore classifies what comes back with
//! [`open_node_reply`] / [`open_server_reply`] into a [`ReplyOutcome`].

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde_json::Value;
use umbra_crypto::X25519Secret;

use super::pad::{BUCKETS, pad_string};
use super::{DeliverOptions, IncomingLayer, LayerKey, OnionError, V4Request, V4Response};

/// The RPC outcome a destination node returns.
#[derive(Clone, Debug, PartialEq)]
pub enum ReplyBody {
    /// A result; embedded as a JSON value (`json: true`) or as its
    /// JSON-encoded text (`json: false`).
    Json(Value),
    /// An error text; always a JSON string.
    Text(String),
}

/// A decrypted destination-node reply (§7.1). `pad` is dropped.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeReply {
    /// The RPC status (`status`, or `status_code` from other
    /// implementations).
    pub status: u16,
    /// The `body` as sent: a JSON value with `json: true`, a string holding
    /// JSON text with `json: false`, a string for error texts, `null` when
    /// absent.
    pub body: Value,
}

/// What a client makes of an onion response (§7.3).
#[derive(Clone, Debug, PartialEq)]
pub enum ReplyOutcome<T> {
    /// The destination answered; the body decrypted under the
    /// destination-layer key.
    Reply(T),
    /// A relay answered a non-200 status in plaintext (a path-level error,
    /// §10.6). `text` is the body as lossy UTF-8, at most 256 characters.
    RelayError {
        /// The HTTP status.
        status: u16,
        /// The body text.
        text: String,
    },
    /// A `200` whose body does not decrypt: a path failure.
    Undecryptable,
    /// The body decrypted but is not a valid reply: the destination's fault.
    Malformed(OnionError),
}

#[derive(Serialize)]
struct ReplyJson<'a> {
    status: u16,
    body: &'a Value,
    pad: String,
}

fn reply_json(status: u16, body: &Value, pad: usize) -> Result<Vec<u8>, OnionError> {
    serde_json::to_vec(&ReplyJson {
        status,
        body,
        pad: pad_string(pad),
    })
    .map_err(|e| OnionError::InvalidJson(e.to_string()))
}

/// Builds, pads and encrypts a destination node's reply (§7.1, §9.3): the
/// JSON `{"status","body","pad"}` encrypted under `key` with a nonce from
/// `random`, base64-encoded when `options.base64`. The returned HTTP body is
/// exactly a bucket size (base64 text without `=`); the HTTP status is
/// always 200. A reply no bucket fits becomes
/// `{"status":413,"body":"response too large"}` padded to the first bucket.
pub fn seal_node_reply(
    key: &LayerKey,
    status: u16,
    body: &ReplyBody,
    options: DeliverOptions,
    random: &[u8; 24],
) -> Result<Vec<u8>, OnionError> {
    let value = match (body, options.json) {
        (ReplyBody::Json(v), true) => v.clone(),
        (ReplyBody::Json(v), false) => Value::String(v.to_string()),
        (ReplyBody::Text(s), _) => Value::String(s.clone()),
    };
    let (json, bucket) = match padded_reply_json(key, status, &value, options.base64)? {
        Some(found) => found,
        None => padded_reply_json(key, 413, &Value::from("response too large"), options.base64)?
            .ok_or(OnionError::TooLarge(0))?,
    };
    let ct = key.seal(random, &json);
    let out = if options.base64 {
        STANDARD.encode(&ct).into_bytes()
    } else {
        ct
    };
    if out.len() != bucket {
        return Err(OnionError::PaddingMismatch {
            want: bucket,
            got: out.len(),
        });
    }
    Ok(out)
}

/// The padded reply JSON and its bucket, or `None` if no bucket fits.
fn padded_reply_json(
    key: &LayerKey,
    status: u16,
    body: &Value,
    base64: bool,
) -> Result<Option<(Vec<u8>, usize)>, OnionError> {
    let l0 = reply_json(status, body, 0)?.len();
    let overhead = key.enc_type().overhead();
    for bucket in BUCKETS {
        let ct_len = if base64 { bucket / 4 * 3 } else { bucket };
        if let Some(pad) = ct_len.checked_sub(overhead + l0) {
            return Ok(Some((reply_json(status, body, pad)?, bucket)));
        }
    }
    Ok(None)
}

/// Tries the body as raw ciphertext, as base64 text, and inside a
/// `{"result": "<base64>"}` wrapper.
fn try_decrypt(key: &LayerKey, body: &[u8]) -> Option<Vec<u8>> {
    if let Ok(pt) = key.decrypt(body) {
        return Some(pt);
    }
    if let Ok(raw) = STANDARD.decode(body.trim_ascii())
        && let Ok(pt) = key.decrypt(&raw)
    {
        return Some(pt);
    }
    if crate::rpc::limits::json_values_within(body, crate::rpc::limits::MAX_JSON_VALUES)
        && let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(body)
        && let Some(Value::String(s)) = m.get("result")
        && let Ok(raw) = STANDARD.decode(s.trim())
        && let Ok(pt) = key.decrypt(&raw)
    {
        return Some(pt);
    }
    None
}

fn classify<T>(
    key: &LayerKey,
    http_status: u16,
    body: &[u8],
    parse: impl FnOnce(&[u8]) -> Result<T, OnionError>,
) -> ReplyOutcome<T> {
    match try_decrypt(key, body) {
        Some(pt) => match parse(&pt) {
            Ok(r) => ReplyOutcome::Reply(r),
            Err(e) => ReplyOutcome::Malformed(e),
        },
        None if http_status != 200 => ReplyOutcome::RelayError {
            status: http_status,
            text: String::from_utf8_lossy(body).chars().take(256).collect(),
        },
        None => ReplyOutcome::Undecryptable,
    }
}

fn parse_node_reply(pt: &[u8]) -> Result<NodeReply, OnionError> {
    if !crate::rpc::limits::json_values_within(pt, crate::rpc::limits::MAX_REPLY_JSON_VALUES) {
        return Err(OnionError::BadReply("too many JSON values"));
    }
    let mut m = match serde_json::from_slice::<Value>(pt) {
        Ok(Value::Object(m)) => m,
        _ => return Err(OnionError::BadReply("not a JSON object")),
    };
    let status = m
        .get("status")
        .or_else(|| m.get("status_code"))
        .ok_or(OnionError::BadReply("no status"))?
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .ok_or(OnionError::BadReply("status is not an HTTP code"))?;
    let body = m.remove("body").unwrap_or(Value::Null);
    Ok(NodeReply { status, body })
}

/// Classifies the HTTP response to an onion whose destination is a node
/// (§7.1, §7.3), decrypting it under the destination-layer key.
pub fn open_node_reply(key: &LayerKey, http_status: u16, body: &[u8]) -> ReplyOutcome<NodeReply> {
    classify(key, http_status, body, parse_node_reply)
}

/// Classifies the HTTP response to an onion whose destination is a server
/// (§7.2, §7.3): the decrypted body is a v4 response list.
pub fn open_server_reply(
    key: &LayerKey,
    http_status: u16,
    body: &[u8],
) -> ReplyOutcome<V4Response> {
    classify(key, http_status, body, V4Response::decode)
}

/// The server side of §8.2: reads the container hop 3 forwarded
/// (`ephemeral_key`, `enc_type` from its JSON), decrypts its blob with the
/// server's X25519 secret and parses the v4 request. The key encrypts the
/// reply ([`seal_server_reply`]).
pub fn open_server_request(
    container: &[u8],
    server_secret: &X25519Secret,
) -> Result<(V4Request, LayerKey), OnionError> {
    let layer = IncomingLayer::from_entry(container)?;
    let (plaintext, key) = layer.decrypt(server_secret)?;
    Ok((V4Request::decode(&plaintext)?, key))
}

/// Encrypts a server's v4 reply (§7.2) under `key`, raw (no base64). With
/// `pad`, a `"pad"` key in `meta_json` makes the ciphertext exactly a bucket
/// size, or the next bucket when a length-prefix digit skips the exact size
/// (§9.4); a reply too large for any bucket is refused.
pub fn seal_server_reply(
    key: &LayerKey,
    response: &V4Response,
    pad: bool,
    random: &[u8; 24],
) -> Result<Vec<u8>, OnionError> {
    let plaintext = if pad {
        padded_server_reply(key, response)?
    } else {
        response.encode(None)?
    };
    Ok(key.seal(random, &plaintext))
}

fn digits(n: usize) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

fn padded_server_reply(key: &LayerKey, response: &V4Response) -> Result<Vec<u8>, OnionError> {
    let m0 = response.meta_json(Some(0))?.len();
    let unpadded = response.encode(Some(0))?.len() + key.enc_type().overhead();
    // Everything except the meta length prefix and the meta itself.
    let fixed = unpadded - digits(m0) - m0;
    for bucket in BUCKETS {
        for d in 1..=20 {
            let Some(p) = bucket.checked_sub(fixed + d + m0) else {
                continue;
            };
            if digits(m0 + p) == d {
                let out = response.encode(Some(p))?;
                if out.len() + key.enc_type().overhead() == bucket {
                    return Ok(out);
                }
            }
        }
    }
    Err(OnionError::TooLarge(unpadded))
}
