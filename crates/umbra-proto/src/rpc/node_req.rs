//! Node-to-node requests (`swarms.md` §6–8): the authentication headers and
//! their signed string (§8.2), the header checks (§8.3), and the hand-over
//! push body (§7.2) with its receiver rules (§7.3).

use std::collections::HashMap;
use std::sync::Arc;

use umbra_crypto::hash::blake2b_fixed;
use umbra_crypto::{Ed25519Keypair, Ed25519Public};

use super::encoding::{Ed25519Hex, Signature};
use super::hash::{MessageHash, message_hash};
use super::limits::SIGNATURE_TOLERANCE_MS;
use super::namespace::Namespace;
use super::status::RpcError;
use crate::bencode::{self, Value};
use crate::identity::AccountId;

/// `POST /node/v1/swarm`: swarm fan-out (§6).
pub const PATH_SWARM: &str = "/node/v1/swarm";
/// `POST /node/v1/push`: hand-over (§7).
pub const PATH_PUSH: &str = "/node/v1/push";
/// `POST /node/v1/since`: catch-up pull (§6).
pub const PATH_SINCE: &str = "/node/v1/since";
/// `POST /node/v1/onion`: onion relay between hops.
pub const PATH_ONION: &str = "/node/v1/onion";
/// `POST /node/v1/ping`: reachability, unauthenticated; reply `pong`.
pub const PATH_PING: &str = "/node/v1/ping";
/// The `ping` reply body.
pub const PING_REPLY: &[u8] = b"pong";

/// Header: sender's Ed25519 key, 64 hex.
pub const HEADER_NODE: &str = "X-Umbra-Node";
/// Header: sender's current epoch, decimal.
pub const HEADER_EPOCH: &str = "X-Umbra-Epoch";
/// Header: unix ms, decimal.
pub const HEADER_TIMESTAMP: &str = "X-Umbra-Timestamp";
/// Header: base64 Ed25519 signature.
pub const HEADER_SIGNATURE: &str = "X-Umbra-Signature";

/// Maximum push body size in bytes (§7.2).
pub const MAX_PUSH_BODY: usize = 9_000_000;
/// The version byte that starts a push body (§7.2).
pub const PUSH_VERSION: u8 = 0x01;
/// A sender with an older epoch stays accepted this long after it was
/// superseded (§8.3), in ms.
pub const SUPERSEDED_GRACE_MS: u64 = 60 * 60 * 1000;

/// The signed string of a node request (§8.2):
/// `"UmbraNodeRequest\n" ‖ METHOD ‖ "\n" ‖ PATH ‖ "\n" ‖ epoch ‖ "\n" ‖
/// timestamp ‖ "\n" ‖ BLAKE2b-256(body)`.
pub fn node_request_string(
    method: &str,
    path: &str,
    epoch: u64,
    timestamp: u64,
    body: &[u8],
) -> Vec<u8> {
    let mut out =
        format!("UmbraNodeRequest\n{method}\n{path}\n{epoch}\n{timestamp}\n").into_bytes();
    out.extend_from_slice(&blake2b_fixed::<32>(&[body]));
    out
}

fn parse_decimal(what: &str, s: &str) -> Result<u64, RpcError> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if !canonical {
        return Err(RpcError::unauthorized(format!(
            "{what} is not a decimal integer"
        )));
    }
    s.parse()
        .map_err(|_| RpcError::unauthorized(format!("{what} is out of range")))
}

/// The four authentication headers of a node request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRequestAuth {
    /// The sender's Ed25519 key.
    pub node: Ed25519Public,
    /// The sender's epoch.
    pub epoch: u64,
    /// The request time (unix ms).
    pub timestamp: u64,
    /// The signature.
    pub signature: Signature,
}

impl NodeRequestAuth {
    /// Signs a request (sender side).
    pub fn sign(
        node: &Ed25519Keypair,
        method: &str,
        path: &str,
        epoch: u64,
        timestamp: u64,
        body: &[u8],
    ) -> Self {
        let signature =
            Signature(node.sign(&node_request_string(method, path, epoch, timestamp, body)));
        NodeRequestAuth {
            node: node.public(),
            epoch,
            timestamp,
            signature,
        }
    }

    /// The header name/value pairs to send.
    pub fn headers(&self) -> [(&'static str, String); 4] {
        [
            (HEADER_NODE, Ed25519Hex(self.node).to_string()),
            (HEADER_EPOCH, self.epoch.to_string()),
            (HEADER_TIMESTAMP, self.timestamp.to_string()),
            (HEADER_SIGNATURE, self.signature.to_base64()),
        ]
    }

    /// Parses the header values (any missing or malformed header → `401`).
    pub fn from_headers(
        node: Option<&str>,
        epoch: Option<&str>,
        timestamp: Option<&str>,
        signature: Option<&str>,
    ) -> Result<Self, RpcError> {
        let missing = |h: &str| RpcError::unauthorized(format!("{h} header is missing"));
        let node: Ed25519Hex = node
            .ok_or_else(|| missing(HEADER_NODE))?
            .parse()
            .map_err(|_| RpcError::unauthorized(format!("{HEADER_NODE} is not a 64-hex key")))?;
        let epoch = parse_decimal(HEADER_EPOCH, epoch.ok_or_else(|| missing(HEADER_EPOCH))?)?;
        let timestamp = parse_decimal(
            HEADER_TIMESTAMP,
            timestamp.ok_or_else(|| missing(HEADER_TIMESTAMP))?,
        )?;
        let signature = Signature::parse(signature.ok_or_else(|| missing(HEADER_SIGNATURE))?)
            .map_err(|e| RpcError::unauthorized(format!("{HEADER_SIGNATURE}: {e}")))?;
        Ok(NodeRequestAuth {
            node: node.0,
            epoch,
            timestamp,
            signature,
        })
    }

    /// The timestamp and signature checks of §8.3 (`401`). Whether the
    /// sender is listed (current epoch, or superseded < 60 min ago) and the
    /// epoch catch-up (`503`) are the caller's registry checks.
    pub fn verify(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        now_ms: u64,
    ) -> Result<(), RpcError> {
        if self.timestamp.abs_diff(now_ms) > SIGNATURE_TOLERANCE_MS {
            return Err(RpcError::unauthorized(
                "node request timestamp is more than 60 s from now",
            ));
        }
        let signed = node_request_string(method, path, self.epoch, self.timestamp, body);
        self.node
            .verify(&signed, &self.signature.0)
            .map_err(|_| RpcError::unauthorized("node request signature does not verify"))
    }
}

/// One message of a hand-over push (§7.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushItem {
    /// The account.
    pub account: AccountId,
    /// The message hash.
    pub hash: MessageHash,
    /// Message timestamp (ms).
    pub timestamp: u64,
    /// Expiry (ms).
    pub expiry: u64,
    /// Message bytes.
    pub data: Vec<u8>,
    /// Namespace (always carried in Umbra).
    pub namespace: Namespace,
}

/// Why a push body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// The body does not start with the version byte 0x01.
    #[error("push body must start with version byte 0x01")]
    BadVersion,
    /// The bencode is not canonical or malformed.
    #[error("push body: {0}")]
    Bencode(#[from] bencode::BencodeError),
    /// The value is not a list of 6-element items of the right types.
    #[error("push item {0} is malformed: {1}")]
    BadItem(usize, &'static str),
    /// A timestamp or expiry does not fit the bencode integer range.
    #[error("push item value out of range")]
    OutOfRange,
}

/// The account, hash and namespace elements shared by push items and tombstones.
fn account_and_hash(
    i: usize,
    acc: &Value,
    hash: &Value,
) -> Result<(AccountId, MessageHash), PushError> {
    let bad = |why| PushError::BadItem(i, why);
    let account = AccountId::from_bytes(acc.as_bytes().ok_or(bad("account is not a string"))?)
        .map_err(|_| bad("bad account ID"))?;
    let hash_text = std::str::from_utf8(hash.as_bytes().ok_or(bad("hash is not a string"))?)
        .map_err(|_| bad("hash is not text"))?;
    let hash = MessageHash::parse(hash_text).map_err(|_| bad("bad hash"))?;
    Ok((account, hash))
}

fn namespace_of(i: usize, ns: &Value) -> Result<Namespace, PushError> {
    ns.as_int()
        .and_then(|n| i16::try_from(n).ok())
        .map(Namespace)
        .ok_or(PushError::BadItem(i, "bad namespace"))
}

impl PushItem {
    /// Receiver rule (§7.3): the hash matches the one recomputed from
    /// (account, namespace, data).
    pub fn hash_matches(&self) -> bool {
        message_hash(&self.account, self.namespace, &self.data) == self.hash
    }

    /// Receiver rule (§7.3): the hash matches and the item has not expired.
    /// (Ownership under the receiver's epoch is the caller's check.)
    pub fn acceptable(&self, now_ms: u64) -> bool {
        self.expiry > now_ms && self.hash_matches()
    }

    fn to_value(&self) -> Result<Value, PushError> {
        let int = |v: u64| {
            i64::try_from(v)
                .map(Value::Int)
                .map_err(|_| PushError::OutOfRange)
        };
        Ok(Value::List(vec![
            Value::bytes(self.account.to_bytes().to_vec()),
            Value::bytes(self.hash.as_str().as_bytes().to_vec()),
            int(self.timestamp)?,
            int(self.expiry)?,
            Value::bytes(self.data.clone()),
            Value::Int(i64::from(self.namespace.0)),
        ]))
    }

    fn from_value(i: usize, v: &Value) -> Result<Self, PushError> {
        let bad = |why| PushError::BadItem(i, why);
        let l = v.as_list().ok_or(bad("not a list"))?;
        let [acc, hash, ts, exp, data, ns] = l else {
            return Err(bad("an item has 6 elements"));
        };
        let (account, hash) = account_and_hash(i, acc, hash)?;
        let u = |v: &Value, why| {
            v.as_int()
                .and_then(|n| u64::try_from(n).ok())
                .ok_or(bad(why))
        };
        let timestamp = u(ts, "bad timestamp")?;
        let expiry = u(exp, "bad expiry")?;
        let data = data.as_bytes().ok_or(bad("data is not a string"))?.to_vec();
        let namespace = namespace_of(i, ns)?;
        Ok(PushItem {
            account,
            hash,
            timestamp,
            expiry,
            data,
            namespace,
        })
    }
}

/// Encodes a push body: `0x01 ‖ bencode([item, …])`.
pub fn encode_push(items: &[PushItem]) -> Result<Vec<u8>, PushError> {
    let list = items
        .iter()
        .map(PushItem::to_value)
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = vec![PUSH_VERSION];
    bencode::encode_into(&Value::List(list), &mut out);
    Ok(out)
}

/// Encodes items into as many push bodies as needed so that each is at
/// most `max_body` bytes (use [`MAX_PUSH_BODY`]). An item too large for
/// any body on its own gets a body of its own.
pub fn encode_push_split(items: &[PushItem], max_body: usize) -> Result<Vec<Vec<u8>>, PushError> {
    let mut bodies = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    for item in items {
        let enc = bencode::encode(&item.to_value()?);
        // 1 version byte + 'l' + items + 'e'.
        if !current.is_empty() && 3 + current.len() + enc.len() > max_body {
            bodies.push(wrap(&current));
            current.clear();
        }
        current.extend_from_slice(&enc);
    }
    if !current.is_empty() {
        bodies.push(wrap(&current));
    }
    Ok(bodies)
}

fn wrap(items: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(items.len() + 3);
    out.push(PUSH_VERSION);
    out.push(b'l');
    out.extend_from_slice(items);
    out.push(b'e');
    out
}

/// Decodes a push body (canonical bencode only).
pub fn decode_push(body: &[u8]) -> Result<Vec<PushItem>, PushError> {
    let (&v, rest) = body.split_first().ok_or(PushError::BadVersion)?;
    if v != PUSH_VERSION {
        return Err(PushError::BadVersion);
    }
    let value = bencode::decode(rest)?;
    let list = value
        .as_list()
        .ok_or(PushError::BadItem(0, "the body is not a list"))?;
    list.iter()
        .enumerate()
        .map(|(i, v)| PushItem::from_value(i, v))
        .collect()
}

/// Version byte of a push body that also carries tombstones:
/// `0x02 ‖ bencode([[item, …], [tombstone, …]])`.
pub const PUSH_VERSION_TOMBSTONES: u8 = 0x02;

/// A deletion a peer missed (`swarms.md` §6, "Deletions are caught up too"):
/// `[account (33 bytes), hash (43 bytes), namespace, new_expiry (-1 = deleted),
/// keep_until]`, plus, when it carries the owner's signed request that caused
/// it ([`super::tombstone_proof`]), a sixth element: the index of that
/// request in the body's list of proofs. A body's proofs are listed once each
/// (many tombstones of one `delete_all` share one), as the optional third
/// element of the body: `[[item…], [tombstone…], [proof…]]`.
///
/// Receivers require the proof (nodes of this repository are the only
/// implementation); a tombstone without one still decodes, so a receiver can
/// count and skip it instead of refusing the whole push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushTombstone {
    /// The account.
    pub account: AccountId,
    /// The deleted or shortened message.
    pub hash: MessageHash,
    /// Its namespace.
    pub namespace: Namespace,
    /// The shortened expiry, or `None` when the message was deleted.
    pub new_expiry: Option<u64>,
    /// Kept until (the message's original expiry), ms.
    pub keep_until: u64,
    /// The owner's signed `{"method","params"}` request that caused it.
    pub proof: Option<Arc<[u8]>>,
}

impl PushTombstone {
    fn to_value(&self, proof_index: Option<usize>) -> Result<Value, PushError> {
        let int = |v: u64| {
            i64::try_from(v)
                .map(Value::Int)
                .map_err(|_| PushError::OutOfRange)
        };
        let mut l = vec![
            Value::bytes(self.account.to_bytes().to_vec()),
            Value::bytes(self.hash.as_str().as_bytes().to_vec()),
            Value::Int(i64::from(self.namespace.0)),
            match self.new_expiry {
                Some(e) => int(e)?,
                None => Value::Int(-1),
            },
            int(self.keep_until)?,
        ];
        if let Some(i) = proof_index {
            l.push(int(i as u64)?);
        }
        Ok(Value::List(l))
    }

    fn from_value(i: usize, v: &Value, proofs: &[Arc<[u8]>]) -> Result<Self, PushError> {
        let bad = |why| PushError::BadItem(i, why);
        let l = v.as_list().ok_or(bad("not a list"))?;
        let (acc, hash, ns, exp, keep, proof) = match l {
            [acc, hash, ns, exp, keep] => (acc, hash, ns, exp, keep, None),
            [acc, hash, ns, exp, keep, p] => (acc, hash, ns, exp, keep, Some(p)),
            _ => return Err(bad("a tombstone has 5 or 6 elements")),
        };
        let (account, hash) = account_and_hash(i, acc, hash)?;
        let namespace = namespace_of(i, ns)?;
        let new_expiry = match exp.as_int() {
            Some(-1) => None,
            Some(n) => Some(u64::try_from(n).map_err(|_| bad("bad expiry"))?),
            None => return Err(bad("bad expiry")),
        };
        let keep_until = keep
            .as_int()
            .and_then(|n| u64::try_from(n).ok())
            .ok_or(bad("bad keep_until"))?;
        let proof = match proof {
            None => None,
            Some(p) => Some(
                p.as_int()
                    .and_then(|n| usize::try_from(n).ok())
                    .and_then(|n| proofs.get(n))
                    .cloned()
                    .ok_or(bad("bad proof index"))?,
            ),
        };
        Ok(PushTombstone {
            account,
            hash,
            namespace,
            new_expiry,
            keep_until,
            proof,
        })
    }
}

/// Encodes tombstones and the list of their distinct proofs.
fn tombstones_to_values(tombstones: &[PushTombstone]) -> Result<(Value, Value), PushError> {
    let mut index: HashMap<&[u8], usize> = HashMap::new();
    let mut proofs = Vec::new();
    let mut tombs = Vec::with_capacity(tombstones.len());
    for t in tombstones {
        let at = t.proof.as_deref().map(|p| {
            *index.entry(p).or_insert_with(|| {
                proofs.push(Value::bytes(p.to_vec()));
                proofs.len() - 1
            })
        });
        tombs.push(t.to_value(at)?);
    }
    Ok((Value::List(tombs), Value::List(proofs)))
}

/// A decoded push body: messages and (version 2) tombstones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushBody {
    /// Messages.
    pub items: Vec<PushItem>,
    /// Deletions and shortened expiries.
    pub tombstones: Vec<PushTombstone>,
}

/// Encodes messages and tombstones: `0x02 ‖ bencode([[item…], [tombstone…]])`,
/// or `0x02 ‖ bencode([[item…], [tombstone…], [proof…]])` when any tombstone
/// carries a proof.
pub fn encode_push_with_tombstones(
    items: &[PushItem],
    tombstones: &[PushTombstone],
) -> Result<Vec<u8>, PushError> {
    let items = items
        .iter()
        .map(PushItem::to_value)
        .collect::<Result<Vec<_>, _>>()?;
    let (tombs, proofs) = tombstones_to_values(tombstones)?;
    let mut parts = vec![Value::List(items), tombs];
    if proofs.as_list().is_some_and(|l| !l.is_empty()) {
        parts.push(proofs);
    }
    let mut out = vec![PUSH_VERSION_TOMBSTONES];
    bencode::encode_into(&Value::List(parts), &mut out);
    Ok(out)
}

/// Encodes tombstones (with their proofs, no messages) into as many push
/// bodies as needed so that each is at most `max_body` bytes (use
/// [`MAX_PUSH_BODY`]); tombstones sharing a proof stay in one body where
/// they fit. A tombstone too large for any body on its own gets a body of
/// its own.
pub fn encode_tombstones_split(
    tombstones: &[PushTombstone],
    max_body: usize,
) -> Result<Vec<Vec<u8>>, PushError> {
    let mut bodies = Vec::new();
    let mut current: Vec<PushTombstone> = Vec::new();
    let mut size = 0usize;
    let mut proofs_in: std::collections::HashSet<&[u8]> = std::collections::HashSet::new();
    // Version byte, the lists' framing and an empty item list.
    const FRAME: usize = 16;
    for t in tombstones {
        let own = bencode::encode(&t.to_value(Some(usize::MAX >> 1))?).len();
        let proof = t.proof.as_deref().filter(|p| !proofs_in.contains(p));
        let extra = proof.map_or(0, |p| p.len() + 24);
        if !current.is_empty() && FRAME + size + own + extra > max_body {
            bodies.push(encode_push_with_tombstones(&[], &current)?);
            current.clear();
            proofs_in.clear();
            size = 0;
        }
        let extra = match t.proof.as_deref() {
            Some(p) if proofs_in.insert(p) => p.len() + 24,
            _ => 0,
        };
        size += own + extra;
        current.push(t.clone());
    }
    if !current.is_empty() {
        bodies.push(encode_push_with_tombstones(&[], &current)?);
    }
    Ok(bodies)
}

/// Decodes a push body of either version.
pub fn decode_push_body(body: &[u8]) -> Result<PushBody, PushError> {
    match body.first() {
        Some(&PUSH_VERSION) => Ok(PushBody {
            items: decode_push(body)?,
            tombstones: Vec::new(),
        }),
        Some(&PUSH_VERSION_TOMBSTONES) => {
            let value = bencode::decode(&body[1..])?;
            let bad = PushError::BadItem(0, "the body is not [items, tombstones, proofs?]");
            let (items, tombs, proofs) = match value.as_list().ok_or(bad.clone())? {
                [items, tombs] => (items, tombs, None),
                [items, tombs, proofs] => (items, tombs, Some(proofs)),
                _ => return Err(bad),
            };
            let proofs: Vec<Arc<[u8]>> = match proofs {
                None => Vec::new(),
                Some(p) => p
                    .as_list()
                    .ok_or(bad.clone())?
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        v.as_bytes()
                            .map(Arc::from)
                            .ok_or(PushError::BadItem(i, "a proof is not a string"))
                    })
                    .collect::<Result<_, _>>()?,
            };
            let items = items
                .as_list()
                .ok_or(bad.clone())?
                .iter()
                .enumerate()
                .map(|(i, v)| PushItem::from_value(i, v))
                .collect::<Result<_, _>>()?;
            let tombstones = tombs
                .as_list()
                .ok_or(bad)?
                .iter()
                .enumerate()
                .map(|(i, v)| PushTombstone::from_value(i, v, &proofs))
                .collect::<Result<_, _>>()?;
            Ok(PushBody { items, tombstones })
        }
        _ => Err(PushError::BadVersion),
    }
}

/// The push reply `{"stored": <number inserted>}` (§7.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PushReply {
    /// Items inserted.
    pub stored: u64,
}

#[cfg(test)]
mod tombstone_tests {
    use super::*;

    #[test]
    fn push_body_with_tombstones_round_trips() {
        let account = AccountId::new(crate::identity::IdPrefix::Standard, [5; 32]);
        let data = b"hello".to_vec();
        let hash = message_hash(&account, Namespace(0), &data);
        let item = PushItem {
            account,
            hash: hash.clone(),
            timestamp: 1,
            expiry: 2,
            data,
            namespace: Namespace(0),
        };
        let tombs = vec![
            PushTombstone {
                account,
                hash: hash.clone(),
                namespace: Namespace(0),
                new_expiry: None,
                keep_until: 9,
                proof: None,
            },
            PushTombstone {
                account,
                hash,
                namespace: Namespace(-11),
                new_expiry: Some(7),
                keep_until: 9,
                proof: None,
            },
        ];
        let body = encode_push_with_tombstones(std::slice::from_ref(&item), &tombs).unwrap();
        let back = decode_push_body(&body).unwrap();
        assert_eq!(back.items, vec![item.clone()]);
        assert_eq!(back.tombstones, tombs);
        // Version 1 bodies still decode, without tombstones.
        let v1 = decode_push_body(&encode_push(&[item]).unwrap()).unwrap();
        assert!(v1.tombstones.is_empty());
        assert_eq!(
            decode_push_body(&[3, b'l', b'e']),
            Err(PushError::BadVersion)
        );
        assert!(decode_push_body(&[2, b'l', b'e']).is_err());
    }

    fn tomb(n: u8, proof: Option<&Arc<[u8]>>) -> PushTombstone {
        let account = AccountId::new(crate::identity::IdPrefix::Standard, [5; 32]);
        PushTombstone {
            account,
            hash: message_hash(&account, Namespace(0), &[n]),
            namespace: Namespace(0),
            new_expiry: None,
            keep_until: 9,
            proof: proof.cloned(),
        }
    }

    #[test]
    fn tombstone_proofs_round_trip_once_per_body() {
        let p1: Arc<[u8]> = Arc::from(&br#"{"method":"delete_all","params":{}}"#[..]);
        let p2: Arc<[u8]> = Arc::from(&br#"{"method":"delete","params":{}}"#[..]);
        let tombs = vec![
            tomb(1, Some(&p1)),
            tomb(2, Some(&p1)),
            tomb(3, None),
            tomb(4, Some(&p2)),
            tomb(5, Some(&p1)),
        ];
        let body = encode_push_with_tombstones(&[], &tombs).unwrap();
        // Each distinct proof is sent once.
        let count = |needle: &[u8]| body.windows(needle.len()).filter(|w| *w == needle).count();
        assert_eq!(count(&p1), 1);
        assert_eq!(count(&p2), 1);
        let back = decode_push_body(&body).unwrap();
        assert_eq!(back.tombstones, tombs);
        assert!(Arc::ptr_eq(
            back.tombstones[0].proof.as_ref().unwrap(),
            back.tombstones[1].proof.as_ref().unwrap()
        ));
        // No proof at all: the two-element body of before.
        let plain = encode_push_with_tombstones(&[], &[tomb(1, None)]).unwrap();
        assert_eq!(
            bencode::decode(&plain[1..])
                .unwrap()
                .as_list()
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn malformed_tombstone_proofs_are_refused() {
        let t = tomb(1, None).to_value(None).unwrap();
        let with_index = |idx: Value, proofs: Option<Value>| {
            let mut l = t.as_list().unwrap().to_vec();
            l.push(idx);
            let mut parts = vec![Value::List(vec![]), Value::List(vec![Value::List(l)])];
            parts.extend(proofs);
            let mut body = vec![PUSH_VERSION_TOMBSTONES];
            bencode::encode_into(&Value::List(parts), &mut body);
            decode_push_body(&body)
        };
        let one = Some(Value::List(vec![Value::bytes(b"{}".to_vec())]));
        assert!(with_index(Value::Int(0), one.clone()).is_ok());
        // Index past the list, negative, not an integer, no list at all.
        for (idx, proofs) in [
            (Value::Int(1), one.clone()),
            (Value::Int(-1), one.clone()),
            (Value::bytes(b"0".to_vec()), one.clone()),
            (Value::Int(0), None),
        ] {
            assert!(
                matches!(with_index(idx, proofs), Err(PushError::BadItem(0, _))),
                "must be refused"
            );
        }
        // A proof that is not a string; a body of four lists.
        assert!(with_index(Value::Int(0), Some(Value::List(vec![Value::Int(3)]))).is_err());
        let mut body = vec![PUSH_VERSION_TOMBSTONES];
        bencode::encode_into(
            &Value::List(vec![
                Value::List(vec![]),
                Value::List(vec![]),
                Value::List(vec![]),
                Value::List(vec![]),
            ]),
            &mut body,
        );
        assert!(decode_push_body(&body).is_err());
    }

    #[test]
    fn tombstone_split_respects_the_limit_and_keeps_proofs() {
        let big: Arc<[u8]> = Arc::from(vec![b'x'; 3000]);
        let other: Arc<[u8]> = Arc::from(vec![b'y'; 3000]);
        let tombs: Vec<PushTombstone> = (0..40)
            .map(|n| tomb(n, Some(if n < 20 { &big } else { &other })))
            .chain((40..60).map(|n| tomb(n, None)))
            .collect();
        let bodies = encode_tombstones_split(&tombs, 5000).unwrap();
        assert!(bodies.len() > 1);
        let mut back = Vec::new();
        for b in &bodies {
            assert!(b.len() <= 5000, "body of {} bytes", b.len());
            back.extend(decode_push_body(b).unwrap().tombstones);
        }
        assert_eq!(back, tombs);
        assert_eq!(
            encode_tombstones_split(&tombs, usize::MAX).unwrap(),
            vec![encode_push_with_tombstones(&[], &tombs).unwrap()]
        );
    }

    proptest::proptest! {
        #[test]
        fn push_body_decode_never_panics(b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let mut body = vec![PUSH_VERSION_TOMBSTONES];
            body.extend(b);
            let _ = decode_push_body(&body);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::IdPrefix;
    use proptest::prelude::*;

    const NOW: u64 = 1_700_000_000_000;

    #[test]
    fn request_auth_round_trip_and_tamper() {
        let kp = Ed25519Keypair::from_seed(&[8; 32]);
        let body = br#"{"method":"store"}"#;
        let auth = NodeRequestAuth::sign(&kp, "POST", PATH_SWARM, 7, NOW, body);
        let h = auth.headers();
        let get = |n: &str| h.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str());
        let parsed = NodeRequestAuth::from_headers(
            get(HEADER_NODE),
            get(HEADER_EPOCH),
            get(HEADER_TIMESTAMP),
            get(HEADER_SIGNATURE),
        )
        .unwrap();
        assert_eq!(parsed, auth);
        assert!(
            parsed
                .verify("POST", PATH_SWARM, body, NOW + 60_000)
                .is_ok()
        );
        assert_eq!(
            parsed
                .verify("POST", PATH_SWARM, body, NOW + 60_001)
                .unwrap_err()
                .code(),
            401
        );
        assert_eq!(
            parsed
                .verify("POST", PATH_PUSH, body, NOW)
                .unwrap_err()
                .code(),
            401
        );
        assert_eq!(
            parsed
                .verify("POST", PATH_SWARM, b"{}", NOW)
                .unwrap_err()
                .code(),
            401
        );
        let mut other = parsed.clone();
        other.epoch = 8;
        assert!(other.verify("POST", PATH_SWARM, body, NOW).is_err());
        assert!(
            NodeRequestAuth::from_headers(
                get(HEADER_NODE),
                Some("07"),
                get(HEADER_TIMESTAMP),
                get(HEADER_SIGNATURE)
            )
            .is_err()
        );
        assert!(
            NodeRequestAuth::from_headers(
                None,
                get(HEADER_EPOCH),
                get(HEADER_TIMESTAMP),
                get(HEADER_SIGNATURE)
            )
            .is_err()
        );
    }

    #[test]
    fn signed_string_layout() {
        let s = node_request_string("POST", "/node/v1/push", 3, 12, b"");
        let mut want = b"UmbraNodeRequest\nPOST\n/node/v1/push\n3\n12\n".to_vec();
        want.extend_from_slice(&blake2b_fixed::<32>(&[b""]));
        assert_eq!(s, want);
    }

    fn item(data: Vec<u8>, ns: i16, ts: u64) -> PushItem {
        let account = AccountId::new(IdPrefix::Standard, [3; 32]);
        let namespace = Namespace(ns);
        PushItem {
            hash: message_hash(&account, namespace, &data),
            account,
            timestamp: ts,
            expiry: ts + 1000,
            data,
            namespace,
        }
    }

    #[test]
    fn push_checks() {
        let it = item(b"x".to_vec(), -11, NOW);
        assert!(it.acceptable(NOW));
        assert!(!it.acceptable(NOW + 1000), "expired at expiry ≤ now");
        let mut wrong_ns = it.clone();
        wrong_ns.namespace = Namespace(0);
        assert!(!wrong_ns.hash_matches());
        assert_eq!(decode_push(b""), Err(PushError::BadVersion));
        assert_eq!(decode_push(b"\x02le"), Err(PushError::BadVersion));
        assert!(matches!(
            decode_push(b"\x01li1ee"),
            Err(PushError::BadItem(0, _))
        ));
        assert!(matches!(decode_push(b"\x01l"), Err(PushError::Bencode(_))));
        assert_eq!(decode_push(b"\x01le"), Ok(vec![]));
    }

    #[test]
    fn push_split_respects_the_limit() {
        let items: Vec<PushItem> = (0..10).map(|i| item(vec![i; 100], 0, NOW)).collect();
        let one = encode_push(&items).unwrap();
        let bodies = encode_push_split(&items, 600).unwrap();
        assert!(bodies.len() > 1);
        let mut back = Vec::new();
        for b in &bodies {
            assert!(b.len() <= 600);
            back.extend(decode_push(b).unwrap());
        }
        assert_eq!(back, items);
        assert_eq!(encode_push_split(&items, usize::MAX).unwrap(), vec![one]);
    }

    proptest! {
        #[test]
        fn push_round_trips(data in proptest::collection::vec(any::<u8>(), 0..200), ns in any::<i16>(), ts in 0u64..(i64::MAX as u64 - 2000)) {
            let items = vec![item(data, ns, ts), item(vec![], 0, 1_000_000_000_000)];
            let body = encode_push(&items).unwrap();
            prop_assert_eq!(decode_push(&body).unwrap(), items);
        }

        #[test]
        fn push_decode_never_panics(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_push(&b);
        }
    }
}
