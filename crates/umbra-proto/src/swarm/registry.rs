//! The signed node registry (`shared/spec/swarms.md` §3): node records, the
//! canonical bencoded document, its epoch and document hashes, registry
//! signatures, the validity rules of §3.2 and epoch chaining; plus the
//! queries a node or client needs (which swarm owns an account, who its
//! members are).
//!
//! Typical use:
//!
//! - an operator builds a document with [`RegistryDocument::builder`] for
//!   the first epoch or [`RegistryDocument::next_builder`] for epoch N + 1,
//!   adds self-signed [`NodeRecord`]s, calls [`RegistryBuilder::build`]
//!   (which runs the §4 assignment) and [`RegistryDocument::sign`]s it;
//! - readers call [`RegistryDocument::verify`] on the received bytes with the
//!   network's [`RegistryConfig`] and the epoch they hold.
//!
//! The format is closed: a dictionary with a key the spec does not list is
//! refused as malformed, so that every accepted document re-encodes to
//! exactly the bytes that were hashed and signed.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::Ipv4Addr;

use umbra_crypto::hash::{Blake2bParams, blake2b};
use umbra_crypto::{CryptoError, Ed25519Keypair, Ed25519Public, X25519Public};

use crate::bencode::{self, BencodeError, Value};
use crate::identity::AccountId;

use super::assign::{SwarmParams, assign_swarms, seed_from_epoch_hash};
use super::space::{SwarmRange, SwarmRing};
use super::{SwarmError, SwarmId};

/// Prefix of the message a node signs over its record (§3.1).
pub const NODE_RECORD_CONTEXT: &[u8] = b"UmbraNodeRecord";
/// Prefix of the message a registry key signs: `"UmbraRegistrySig" ‖ doc_hash`.
pub const REGISTRY_SIG_CONTEXT: &[u8] = b"UmbraRegistrySig";
/// BLAKE2b personalisation of the epoch hash.
pub const EPOCH_HASH_PERSONAL: &[u8; 16] = b"UmbraRegistryEp1";
/// BLAKE2b personalisation of the document hash.
pub const DOC_HASH_PERSONAL: &[u8; 16] = b"UmbraRegistryDoc";

/// Why a registry document, record or configuration was refused. Variants
/// that break a validity rule of §3.2 name it in their message and in
/// [`RegistryError::rule`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// Rule 1: the bytes are not canonical bencode.
    #[error("rule 1: {0}")]
    Bencode(#[from] BencodeError),
    /// Rule 1: canonical bencode, but not the document format of §3.1.
    #[error("rule 1: malformed document: {0}")]
    Malformed(&'static str),
    /// Rule 2: the epoch is not newer than the one held.
    #[error("rule 2: epoch {got} is not newer than the held epoch {held}")]
    StaleEpoch {
        /// The document's epoch.
        got: u64,
        /// The reader's epoch.
        held: u64,
    },
    /// Rule 3: node keys are not strictly ascending (or repeat).
    #[error("rule 3: node keys are not strictly ascending at index {0}")]
    NodesNotAscending(usize),
    /// Rule 3: a node record's signature does not verify (or its key is not a
    /// valid Ed25519 key).
    #[error("rule 3: the node record of {} is not validly signed", hex::encode(.0.as_bytes()))]
    BadNodeSignature(Ed25519Public),
    /// Rule 3: two records share IPv4 address and port.
    #[error("rule 3: two nodes share the address {0}:{1}")]
    DuplicateAddress(Ipv4Addr, u16),
    /// Rule 4: `a` and `m.n` differ in length.
    #[error("rule 4: {swarms} swarm IDs for {nodes} nodes")]
    AssignmentLength {
        /// `len(a)`.
        swarms: usize,
        /// `len(m.n)`.
        nodes: usize,
    },
    /// Rule 4: an entry of `a` is UNASSIGNED.
    #[error("rule 4: the swarm ID of node {0} is UNASSIGNED")]
    UnassignedSwarm(usize),
    /// Rule 5: too few distinct pinned keys signed validly.
    #[error("rule 5: {valid} valid signatures by pinned registry keys, {threshold} needed")]
    BelowThreshold {
        /// Distinct pinned keys with a valid signature.
        valid: usize,
        /// The network's threshold.
        threshold: usize,
    },
    /// Rule 6: `p` is not the `doc_hash` of the held epoch N − 1.
    #[error("rule 6: p is not the doc_hash of the held epoch {held}")]
    BrokenChain {
        /// The held epoch.
        held: u64,
    },
    /// Rule 6: `a` is not the §4 output seeded from this document. The
    /// document is rejected and an operator alert is due.
    #[error(
        "rule 6: the swarm assignment of epoch {epoch} is not the output of section 4 (operator alert)"
    )]
    AssignmentMismatch {
        /// The document's epoch.
        epoch: u64,
    },
    /// A registry signature added to a document does not verify.
    #[error("the registry signature does not verify")]
    BadRegistrySignature,
    /// The network configuration (pinned keys, threshold, constants) is unusable.
    #[error("bad registry configuration: {0}")]
    BadConfig(&'static str),
    /// A document or record cannot be built from the values given.
    #[error("cannot build: {0}")]
    Build(&'static str),
    /// The swarm assignment refused its input.
    #[error(transparent)]
    Swarm(#[from] SwarmError),
    /// A cryptographic primitive failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

impl RegistryError {
    /// The validity rule of §3.2 that failed (1–6), if the error is one.
    pub fn rule(&self) -> Option<u8> {
        Some(match self {
            RegistryError::Bencode(_) | RegistryError::Malformed(_) => 1,
            RegistryError::StaleEpoch { .. } => 2,
            RegistryError::NodesNotAscending(_)
            | RegistryError::BadNodeSignature(_)
            | RegistryError::DuplicateAddress(..) => 3,
            RegistryError::AssignmentLength { .. } | RegistryError::UnassignedSwarm(_) => 4,
            RegistryError::BelowThreshold { .. } => 5,
            RegistryError::BrokenChain { .. } | RegistryError::AssignmentMismatch { .. } => 6,
            _ => return None,
        })
    }

    /// True when §3.2 rule 6 asks for an operator alert (the registry issued
    /// a document whose assignment does not follow §4).
    pub fn is_operator_alert(&self) -> bool {
        matches!(self, RegistryError::AssignmentMismatch { .. })
    }
}

/// BLAKE2b-256 with a 16-byte personalisation.
fn personal_hash(personal: &[u8; 16], data: &[u8]) -> Result<[u8; 32], RegistryError> {
    let h = blake2b(
        data,
        32,
        Blake2bParams {
            key: &[],
            salt: &[],
            personal,
        },
    )?;
    <[u8; 32]>::try_from(h.as_slice())
        .map_err(|_| RegistryError::Build("BLAKE2b returned a wrong length"))
}

fn int(v: u64) -> Result<Value, RegistryError> {
    i64::try_from(v)
        .map(Value::Int)
        .map_err(|_| RegistryError::Build("integer above 2^63 − 1"))
}

// ---- parsing helpers -------------------------------------------------------

type Dict = BTreeMap<Vec<u8>, Value>;

fn as_dict<'a>(v: &'a Value, what: &'static str) -> Result<&'a Dict, RegistryError> {
    v.as_dict().ok_or(RegistryError::Malformed(what))
}

fn as_list<'a>(v: &'a Value, what: &'static str) -> Result<&'a [Value], RegistryError> {
    v.as_list().ok_or(RegistryError::Malformed(what))
}

/// Checks that `d` has exactly the keys `keys`.
fn exact_keys(d: &Dict, keys: &[&[u8]], what: &'static str) -> Result<(), RegistryError> {
    if d.len() == keys.len() && keys.iter().all(|k| d.contains_key(*k)) {
        Ok(())
    } else {
        Err(RegistryError::Malformed(what))
    }
}

fn field<'a>(d: &'a Dict, key: &[u8], what: &'static str) -> Result<&'a Value, RegistryError> {
    d.get(key).ok_or(RegistryError::Malformed(what))
}

fn fixed<const N: usize>(v: &Value, what: &'static str) -> Result<[u8; N], RegistryError> {
    v.as_bytes()
        .and_then(|b| <[u8; N]>::try_from(b).ok())
        .ok_or(RegistryError::Malformed(what))
}

fn int_in(v: &Value, lo: i64, hi: i64, what: &'static str) -> Result<i64, RegistryError> {
    v.as_int()
        .filter(|i| (lo..=hi).contains(i))
        .ok_or(RegistryError::Malformed(what))
}

fn u64_in(v: &Value, lo: u64, what: &'static str) -> Result<u64, RegistryError> {
    v.as_int()
        .and_then(|i| u64::try_from(i).ok())
        .filter(|&i| i >= lo)
        .ok_or(RegistryError::Malformed(what))
}

// ---- node records ------------------------------------------------------------

/// One node of the registry (§3.1 `node_record`): its Ed25519 key, address,
/// HTTPS port, software version and self-signature.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeRecord {
    /// The node's Ed25519 key (`k`); its X25519 key is the Montgomery form.
    pub ed25519: Ed25519Public,
    /// IPv4 address (`i`).
    pub ipv4: Ipv4Addr,
    /// HTTPS port (`h`), 1…65535.
    pub https_port: u16,
    /// Software version `[major, minor, patch]` (`v`).
    pub version: [u32; 3],
    /// `Ed25519_sign(node_sk, "UmbraNodeRecord" ‖ bencode(record without "s"))`.
    pub signature: [u8; 64],
}

impl NodeRecord {
    /// Builds and signs the record of the node holding `node_key`.
    pub fn sign(
        node_key: &Ed25519Keypair,
        ipv4: Ipv4Addr,
        https_port: u16,
        version: [u32; 3],
    ) -> Result<Self, RegistryError> {
        if https_port == 0 {
            return Err(RegistryError::Build("the HTTPS port must be 1…65535"));
        }
        let mut rec = NodeRecord {
            ed25519: node_key.public(),
            ipv4,
            https_port,
            version,
            signature: [0; 64],
        };
        rec.signature = node_key.sign(&rec.signed_message());
        Ok(rec)
    }

    /// The message the node signs: `"UmbraNodeRecord" ‖ bencode(record without "s")`.
    pub fn signed_message(&self) -> Vec<u8> {
        let mut msg = NODE_RECORD_CONTEXT.to_vec();
        bencode::encode_into(&self.to_value_inner(false), &mut msg);
        msg
    }

    /// Checks the port range and the node's signature (§3.2 rule 3).
    pub fn verify(&self) -> Result<(), RegistryError> {
        if self.https_port == 0 {
            return Err(RegistryError::Malformed(
                "node_record.h: port must be 1…65535",
            ));
        }
        self.ed25519
            .verify(&self.signed_message(), &self.signature)
            .map_err(|_| RegistryError::BadNodeSignature(self.ed25519))
    }

    /// The node's X25519 key (Montgomery form of `k`); fails for keys that
    /// are not valid points.
    pub fn x25519(&self) -> Result<X25519Public, RegistryError> {
        Ok(self.ed25519.to_x25519()?)
    }

    /// The record as a bencode value (with `"s"`).
    pub fn to_value(&self) -> Value {
        self.to_value_inner(true)
    }

    fn to_value_inner(&self, with_sig: bool) -> Value {
        let mut d = Dict::new();
        d.insert(b"h".to_vec(), Value::Int(i64::from(self.https_port)));
        d.insert(b"i".to_vec(), Value::bytes(self.ipv4.octets()));
        d.insert(b"k".to_vec(), Value::bytes(*self.ed25519.as_bytes()));
        if with_sig {
            d.insert(b"s".to_vec(), Value::bytes(self.signature));
        }
        d.insert(
            b"v".to_vec(),
            Value::List(
                self.version
                    .iter()
                    .map(|&x| Value::Int(i64::from(x)))
                    .collect(),
            ),
        );
        Value::Dict(d)
    }

    /// The canonical bencoding of the record.
    pub fn encode(&self) -> Vec<u8> {
        bencode::encode(&self.to_value())
    }

    /// Parses a record from a bencode value (structure only; the signature is
    /// checked by [`NodeRecord::verify`]).
    pub fn from_value(v: &Value) -> Result<Self, RegistryError> {
        let d = as_dict(v, "node_record: not a dictionary")?;
        exact_keys(
            d,
            &[b"h", b"i", b"k", b"s", b"v"],
            "node_record: keys must be exactly h, i, k, s, v",
        )?;
        let port = int_in(
            field(d, b"h", "node_record.h")?,
            1,
            65535,
            "node_record.h: port must be 1…65535",
        )?;
        let ip = fixed::<4>(
            field(d, b"i", "node_record.i")?,
            "node_record.i: IPv4 is 4 bytes",
        )?;
        let key = fixed::<32>(
            field(d, b"k", "node_record.k")?,
            "node_record.k: key is 32 bytes",
        )?;
        let sig = fixed::<64>(
            field(d, b"s", "node_record.s")?,
            "node_record.s: signature is 64 bytes",
        )?;
        let ver = as_list(
            field(d, b"v", "node_record.v")?,
            "node_record.v: not a list",
        )?;
        let [ma, mi, pa] = ver else {
            return Err(RegistryError::Malformed(
                "node_record.v: [major, minor, patch]",
            ));
        };
        let part = |x: &Value| -> Result<u32, RegistryError> {
            let i = int_in(
                x,
                0,
                i64::from(u32::MAX),
                "node_record.v: version parts are 0…2^32 − 1",
            )?;
            u32::try_from(i).map_err(|_| RegistryError::Malformed("node_record.v"))
        };
        Ok(NodeRecord {
            ed25519: Ed25519Public::from_bytes(key),
            ipv4: Ipv4Addr::from(ip),
            https_port: u16::try_from(port)
                .map_err(|_| RegistryError::Malformed("node_record.h"))?,
            version: [part(ma)?, part(mi)?, part(pa)?],
            signature: sig,
        })
    }

    /// Parses a canonical bencoded record (structure only).
    pub fn parse(bytes: &[u8]) -> Result<Self, RegistryError> {
        Self::from_value(&bencode::decode(bytes)?)
    }
}

// ---- network configuration -----------------------------------------------------

/// The registry part of a network configuration (§3): the pinned registry
/// keys, how many of them must sign, and the assignment constants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryConfig {
    pinned_keys: BTreeSet<Ed25519Public>,
    threshold: usize,
    params: SwarmParams,
}

impl RegistryConfig {
    /// Builds a configuration. Duplicated keys count once; the threshold must
    /// be between 1 and the number of keys, and the constants valid.
    pub fn new(
        pinned_keys: impl IntoIterator<Item = Ed25519Public>,
        threshold: usize,
        params: SwarmParams,
    ) -> Result<Self, RegistryError> {
        let pinned_keys: BTreeSet<Ed25519Public> = pinned_keys.into_iter().collect();
        if threshold == 0 {
            return Err(RegistryError::BadConfig("the threshold must be at least 1"));
        }
        if threshold > pinned_keys.len() {
            return Err(RegistryError::BadConfig(
                "the threshold exceeds the number of pinned keys",
            ));
        }
        params.validate()?;
        Ok(Self {
            pinned_keys,
            threshold,
            params,
        })
    }

    /// A local devnet's configuration: one registry key, threshold 1.
    pub fn single_key(key: Ed25519Public, params: SwarmParams) -> Result<Self, RegistryError> {
        Self::new([key], 1, params)
    }

    /// The pinned registry keys.
    pub fn pinned_keys(&self) -> &BTreeSet<Ed25519Public> {
        &self.pinned_keys
    }

    /// The number of distinct pinned keys that must sign.
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// The assignment constants of this network.
    pub fn params(&self) -> &SwarmParams {
        &self.params
    }
}

/// Who reads a document: §3.2 rule 6 asks more of nodes than of clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReaderRole {
    /// A client: the chain is checked when the previous epoch is held.
    Client,
    /// A storage node: additionally recomputes the §4 assignment.
    Node,
}

// ---- the document ------------------------------------------------------------------

/// One registry signature: `Ed25519_sign(registry_sk, "UmbraRegistrySig" ‖ doc_hash)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RegistrySignature {
    /// The registry key.
    pub key: Ed25519Public,
    /// The signature.
    pub signature: [u8; 64],
}

/// A parsed registry document of one epoch (§3.1).
///
/// Obtained from [`RegistryDocument::verify`] (received bytes),
/// [`RegistryDocument::parse`] (structure only, e.g. a document this program
/// stored itself) or [`RegistryBuilder::build`] (issuing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryDocument {
    epoch: u64,
    issued_at_ms: u64,
    prev_hash: [u8; 32],
    nodes: Vec<NodeRecord>,
    swarms: Vec<SwarmId>,
    signatures: Vec<RegistrySignature>,
    epoch_hash: [u8; 32],
    doc_hash: [u8; 32],
    ring: Option<SwarmRing>,
}

impl RegistryDocument {
    /// Starts a document of `epoch` issued at `issued_at_ms`. Epoch 1 needs
    /// nothing else; a later epoch must be chained with
    /// [`RegistryBuilder::follows`] (or use [`RegistryDocument::next_builder`]).
    pub fn builder(epoch: u64, issued_at_ms: u64) -> RegistryBuilder {
        RegistryBuilder {
            epoch,
            issued_at_ms,
            previous: None,
            nodes: Vec::new(),
            params: SwarmParams::PUBLIC,
        }
    }

    /// Starts the document of the next epoch, chained to this one.
    pub fn next_builder(&self, issued_at_ms: u64) -> RegistryBuilder {
        Self::builder(self.epoch.saturating_add(1), issued_at_ms).follows(self)
    }

    /// Assembles a document from its parts and computes its hashes.
    fn assemble(
        epoch: u64,
        issued_at_ms: u64,
        prev_hash: [u8; 32],
        nodes: Vec<NodeRecord>,
        swarms: Vec<SwarmId>,
        signatures: Vec<RegistrySignature>,
    ) -> Result<Self, RegistryError> {
        let mut doc = RegistryDocument {
            epoch,
            issued_at_ms,
            prev_hash,
            nodes,
            swarms,
            signatures,
            epoch_hash: [0; 32],
            doc_hash: [0; 32],
            ring: None,
        };
        let m = doc.m_value()?;
        doc.epoch_hash = personal_hash(EPOCH_HASH_PERSONAL, &bencode::encode(&m))?;
        let am = Value::dict([(b"a".to_vec(), doc.a_value()), (b"m".to_vec(), m)]);
        doc.doc_hash = personal_hash(DOC_HASH_PERSONAL, &bencode::encode(&am))?;
        doc.ring = SwarmRing::new(doc.swarms.iter().copied()).ok();
        Ok(doc)
    }

    fn m_value(&self) -> Result<Value, RegistryError> {
        Ok(Value::dict([
            (b"e".to_vec(), int(self.epoch)?),
            (
                b"n".to_vec(),
                Value::List(self.nodes.iter().map(NodeRecord::to_value).collect()),
            ),
            (b"p".to_vec(), Value::bytes(self.prev_hash)),
            (b"t".to_vec(), int(self.issued_at_ms)?),
        ]))
    }

    fn a_value(&self) -> Value {
        Value::List(
            self.swarms
                .iter()
                .map(|s| Value::bytes(s.to_be_bytes()))
                .collect(),
        )
    }

    fn s_value(&self) -> Value {
        Value::List(
            self.signatures
                .iter()
                .map(|s| {
                    Value::List(vec![
                        Value::bytes(*s.key.as_bytes()),
                        Value::bytes(s.signature),
                    ])
                })
                .collect(),
        )
    }

    /// The canonical bencoding of the whole document, signatures included.
    pub fn encode(&self) -> Vec<u8> {
        // Epoch and time were range-checked when the document was made, so
        // `m_value` cannot fail here; fall back to an empty dict defensively.
        let m = self.m_value().unwrap_or_else(|_| Value::Dict(Dict::new()));
        bencode::encode(&Value::dict([
            (b"a".to_vec(), self.a_value()),
            (b"m".to_vec(), m),
            (b"s".to_vec(), self.s_value()),
        ]))
    }

    /// Parses a document: canonical bencode and the exact format of §3.1
    /// (rule 1), strictly ascending node keys and unique addresses (the
    /// structural part of rule 3), and rule 4. Signatures are **not**
    /// checked: use [`RegistryDocument::verify`] for received bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, RegistryError> {
        let top = bencode::decode(bytes)?;
        let top = as_dict(&top, "the document is not a dictionary")?;
        exact_keys(
            top,
            &[b"a", b"m", b"s"],
            "the document's keys must be exactly a, m, s",
        )?;
        let m = as_dict(field(top, b"m", "m")?, "m: not a dictionary")?;
        exact_keys(
            m,
            &[b"e", b"n", b"p", b"t"],
            "m: keys must be exactly e, n, p, t",
        )?;
        let epoch = u64_in(
            field(m, b"e", "m.e")?,
            1,
            "m.e: the epoch is an integer ≥ 1",
        )?;
        let issued_at_ms = u64_in(
            field(m, b"t", "m.t")?,
            0,
            "m.t: issued_at is a non-negative integer",
        )?;
        let prev_hash = fixed::<32>(field(m, b"p", "m.p")?, "m.p: 32 bytes")?;
        if epoch == 1 && prev_hash != [0; 32] {
            return Err(RegistryError::Malformed(
                "m.p: must be 32 zero bytes in epoch 1",
            ));
        }
        let nodes = as_list(field(m, b"n", "m.n")?, "m.n: not a list")?
            .iter()
            .map(NodeRecord::from_value)
            .collect::<Result<Vec<_>, _>>()?;
        let a = as_list(field(top, b"a", "a")?, "a: not a list")?;
        let mut swarms = Vec::with_capacity(a.len());
        for (i, entry) in a.iter().enumerate() {
            let raw = fixed::<8>(entry, "a: swarm IDs are 8-byte strings")?;
            swarms.push(
                SwarmId::new(u64::from_be_bytes(raw))
                    .map_err(|_| RegistryError::UnassignedSwarm(i))?,
            );
        }
        let s = as_list(field(top, b"s", "s")?, "s: not a list")?;
        let mut signatures = Vec::with_capacity(s.len());
        for entry in s {
            let [k, sig] = as_list(entry, "s: entries are [key, signature] lists")? else {
                return Err(RegistryError::Malformed(
                    "s: entries are [key, signature] lists",
                ));
            };
            signatures.push(RegistrySignature {
                key: Ed25519Public::from_bytes(fixed::<32>(k, "s: registry keys are 32 bytes")?),
                signature: fixed::<64>(sig, "s: signatures are 64 bytes")?,
            });
        }
        check_node_structure(&nodes)?;
        if swarms.len() != nodes.len() {
            return Err(RegistryError::AssignmentLength {
                swarms: swarms.len(),
                nodes: nodes.len(),
            });
        }
        Self::assemble(epoch, issued_at_ms, prev_hash, nodes, swarms, signatures)
    }

    /// Parses and validates received bytes by every rule of §3.2, as `role`
    /// holding `held` (the newest epoch this reader has, if any):
    ///
    /// 1. canonical decoding and the §3.1 format;
    /// 2. the epoch is newer than `held`'s;
    /// 3. node keys strictly ascending, every node signature valid, unique
    ///    addresses;
    /// 4. one non-UNASSIGNED swarm ID per node;
    /// 5. at least `config.threshold()` distinct pinned keys signed validly;
    /// 6. when `held` is epoch N − 1, `p` is its `doc_hash`; a
    ///    [`ReaderRole::Node`] then also recomputes the §4 assignment from
    ///    `held`'s (for epoch 1, from the empty assignment) and requires `a`
    ///    to equal it ([`RegistryError::AssignmentMismatch`] asks for an
    ///    operator alert).
    ///
    /// Registry signatures are checked before node signatures and the
    /// assignment, so unsigned input costs little. §3.2 has no time rule, so
    /// no clock value is needed.
    pub fn verify(
        bytes: &[u8],
        config: &RegistryConfig,
        held: Option<&RegistryDocument>,
        role: ReaderRole,
    ) -> Result<Self, RegistryError> {
        let doc = Self::parse(bytes)?;
        if let Some(h) = held
            && doc.epoch <= h.epoch
        {
            return Err(RegistryError::StaleEpoch {
                got: doc.epoch,
                held: h.epoch,
            });
        }
        doc.check_signatures(config)?;
        for n in &doc.nodes {
            n.verify()?;
        }
        let previous = match held {
            Some(h) if h.epoch.checked_add(1) == Some(doc.epoch) => {
                if h.doc_hash != doc.prev_hash {
                    return Err(RegistryError::BrokenChain { held: h.epoch });
                }
                Some(Some(h))
            }
            None if doc.epoch == 1 => Some(None),
            _ => None,
        };
        if role == ReaderRole::Node
            && let Some(previous) = previous
            && doc.compute_assignment(previous, config.params())? != doc.assignment()
        {
            return Err(RegistryError::AssignmentMismatch { epoch: doc.epoch });
        }
        Ok(doc)
    }

    /// Checks rule 5: counts the distinct pinned keys whose signature in `s`
    /// verifies. Signatures by other keys, and invalid ones, are ignored.
    pub fn check_signatures(&self, config: &RegistryConfig) -> Result<(), RegistryError> {
        let msg = self.signing_message();
        let mut valid = HashSet::new();
        for s in &self.signatures {
            if config.pinned_keys.contains(&s.key)
                && !valid.contains(&s.key)
                && s.key.verify(&msg, &s.signature).is_ok()
            {
                valid.insert(s.key);
            }
        }
        if valid.len() < config.threshold {
            return Err(RegistryError::BelowThreshold {
                valid: valid.len(),
                threshold: config.threshold,
            });
        }
        Ok(())
    }

    /// The message registry keys sign: `"UmbraRegistrySig" ‖ doc_hash`.
    pub fn signing_message(&self) -> Vec<u8> {
        [REGISTRY_SIG_CONTEXT, &self.doc_hash].concat()
    }

    /// Signs the document with a registry key, replacing an earlier signature
    /// by the same key.
    pub fn sign(&mut self, registry_key: &Ed25519Keypair) -> &mut Self {
        let sig = RegistrySignature {
            key: registry_key.public(),
            signature: registry_key.sign(&self.signing_message()),
        };
        self.put_signature(sig);
        self
    }

    /// [`sign`](Self::sign), by value, for chaining.
    pub fn signed(mut self, registry_key: &Ed25519Keypair) -> Self {
        self.sign(registry_key);
        self
    }

    /// Adds a signature made elsewhere (e.g. by another operator over
    /// [`signing_message`](Self::signing_message)) after checking it.
    pub fn add_signature(&mut self, sig: RegistrySignature) -> Result<(), RegistryError> {
        sig.key
            .verify(&self.signing_message(), &sig.signature)
            .map_err(|_| RegistryError::BadRegistrySignature)?;
        self.put_signature(sig);
        Ok(())
    }

    fn put_signature(&mut self, sig: RegistrySignature) {
        match self.signatures.iter_mut().find(|s| s.key == sig.key) {
            Some(slot) => *slot = sig,
            None => self.signatures.push(sig),
        }
    }

    /// The epoch (`m.e`).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// When the document was issued, unix ms (`m.t`).
    pub fn issued_at_ms(&self) -> u64 {
        self.issued_at_ms
    }

    /// The `doc_hash` of the previous epoch (`m.p`; zeros in epoch 1).
    pub fn prev_hash(&self) -> &[u8; 32] {
        &self.prev_hash
    }

    /// `BLAKE2b-256(personal = "UmbraRegistryEp1", bencode(m))`.
    pub fn epoch_hash(&self) -> &[u8; 32] {
        &self.epoch_hash
    }

    /// `BLAKE2b-256(personal = "UmbraRegistryDoc", bencode({"a": a, "m": m}))`.
    pub fn doc_hash(&self) -> &[u8; 32] {
        &self.doc_hash
    }

    /// The assignment seed of this epoch (§4.2).
    pub fn seed(&self) -> u64 {
        seed_from_epoch_hash(&self.epoch_hash)
    }

    /// The node records, in ascending key order.
    pub fn nodes(&self) -> &[NodeRecord] {
        &self.nodes
    }

    /// The registry signatures, in document order.
    pub fn signatures(&self) -> &[RegistrySignature] {
        &self.signatures
    }

    fn index_of(&self, key: &Ed25519Public) -> Option<usize> {
        self.nodes.binary_search_by(|n| n.ed25519.cmp(key)).ok()
    }

    /// The record of the node with Ed25519 key `key`.
    pub fn node(&self, key: &Ed25519Public) -> Option<&NodeRecord> {
        self.index_of(key).and_then(|i| self.nodes.get(i))
    }

    /// The swarm of the node with key `key` in this epoch.
    pub fn swarm_of_node(&self, key: &Ed25519Public) -> Option<SwarmId> {
        self.index_of(key).and_then(|i| self.swarms.get(i)).copied()
    }

    /// The node → swarm map stored in the document (`a`).
    pub fn assignment(&self) -> BTreeMap<Ed25519Public, SwarmId> {
        self.nodes
            .iter()
            .map(|n| n.ed25519)
            .zip(self.swarms.iter().copied())
            .collect()
    }

    /// Recomputes the node → swarm map of this document by §4: this epoch's
    /// nodes, `previous`'s assignment (`None` for epoch 1), seeded with this
    /// epoch's hash.
    pub fn compute_assignment(
        &self,
        previous: Option<&RegistryDocument>,
        params: &SwarmParams,
    ) -> Result<BTreeMap<Ed25519Public, SwarmId>, RegistryError> {
        let prev = previous
            .map(RegistryDocument::assignment)
            .unwrap_or_default();
        Ok(assign_swarms(
            self.nodes.iter().map(|n| n.ed25519),
            &prev,
            self.seed(),
            params,
        )?)
    }

    /// The ring of this epoch's swarms (`None` when there are no nodes).
    pub fn ring(&self) -> Option<&SwarmRing> {
        self.ring.as_ref()
    }

    /// This epoch's swarm IDs, ascending (empty when there are no nodes).
    pub fn swarm_ids(&self) -> &[SwarmId] {
        self.ring.as_ref().map_or(&[], SwarmRing::ids)
    }

    /// The swarm that owns `account` (§2); `None` when there are no nodes.
    pub fn swarm_of(&self, account: &AccountId) -> Option<SwarmId> {
        self.ring.as_ref().map(|r| r.owner(account))
    }

    /// The ring interval swarm `swarm` owns (§2); `None` if it is no swarm of
    /// this epoch.
    pub fn range_of(&self, swarm: SwarmId) -> Option<SwarmRange> {
        self.ring.as_ref().and_then(|r| r.range(swarm).ok())
    }

    /// The members of `swarm`, in ascending key order (empty if none).
    pub fn members(&self, swarm: SwarmId) -> Vec<&NodeRecord> {
        self.nodes
            .iter()
            .zip(&self.swarms)
            .filter(|(_, s)| **s == swarm)
            .map(|(n, _)| n)
            .collect()
    }

    /// The members of the swarm that owns `account` (empty when there are no
    /// nodes).
    pub fn members_for(&self, account: &AccountId) -> Vec<&NodeRecord> {
        self.swarm_of(account)
            .map(|s| self.members(s))
            .unwrap_or_default()
    }

    /// Every swarm with its members.
    pub fn swarms(&self) -> BTreeMap<SwarmId, Vec<&NodeRecord>> {
        let mut out: BTreeMap<SwarmId, Vec<&NodeRecord>> = BTreeMap::new();
        for (n, s) in self.nodes.iter().zip(&self.swarms) {
            out.entry(*s).or_default().push(n);
        }
        out
    }
}

/// Rule 3's structural checks: strictly ascending keys, unique (IPv4, port).
fn check_node_structure(nodes: &[NodeRecord]) -> Result<(), RegistryError> {
    if let Some(i) = nodes.windows(2).position(|w| w[0].ed25519 >= w[1].ed25519) {
        return Err(RegistryError::NodesNotAscending(i + 1));
    }
    let mut seen = HashSet::new();
    for n in nodes {
        if !seen.insert((n.ipv4, n.https_port)) {
            return Err(RegistryError::DuplicateAddress(n.ipv4, n.https_port));
        }
    }
    Ok(())
}

/// Builds an unsigned registry document; see [`RegistryDocument::builder`].
#[derive(Debug, Clone)]
pub struct RegistryBuilder {
    epoch: u64,
    issued_at_ms: u64,
    previous: Option<RegistryDocument>,
    nodes: Vec<NodeRecord>,
    params: SwarmParams,
}

impl RegistryBuilder {
    /// Chains the document to `previous` (epoch N − 1): sets `p` to its
    /// `doc_hash` and assigns swarms starting from its assignment.
    pub fn follows(mut self, previous: &RegistryDocument) -> Self {
        self.previous = Some(previous.clone());
        self
    }

    /// Adds one node record.
    pub fn node(mut self, record: NodeRecord) -> Self {
        self.nodes.push(record);
        self
    }

    /// Adds node records.
    pub fn nodes(mut self, records: impl IntoIterator<Item = NodeRecord>) -> Self {
        self.nodes.extend(records);
        self
    }

    /// Sets the network's assignment constants (default: the public network's).
    pub fn params(mut self, params: SwarmParams) -> Self {
        self.params = params;
        self
    }

    /// Sorts the records, checks them (rule 3), runs the §4 assignment and
    /// returns the unsigned document.
    pub fn build(self) -> Result<RegistryDocument, RegistryError> {
        if self.epoch == 0 {
            return Err(RegistryError::Build("the epoch must be at least 1"));
        }
        int(self.epoch)?;
        int(self.issued_at_ms)?;
        let prev_hash = match (&self.previous, self.epoch) {
            (None, 1) => [0; 32],
            (None, _) => {
                return Err(RegistryError::Build(
                    "an epoch after 1 must follow the previous document",
                ));
            }
            (Some(p), e) if p.epoch.checked_add(1) == Some(e) => p.doc_hash,
            (Some(_), _) => {
                return Err(RegistryError::Build(
                    "the previous document is not epoch N − 1",
                ));
            }
        };
        let mut nodes = self.nodes;
        nodes.sort_by_key(|n| n.ed25519);
        check_node_structure(&nodes)?;
        for n in &nodes {
            n.verify()?;
        }
        // The epoch hash does not depend on `a`: hash first, then assign.
        let draft = RegistryDocument::assemble(
            self.epoch,
            self.issued_at_ms,
            prev_hash,
            nodes,
            Vec::new(),
            Vec::new(),
        )?;
        let map = draft.compute_assignment(self.previous.as_ref(), &self.params)?;
        let swarms = draft
            .nodes
            .iter()
            .map(|n| {
                map.get(&n.ed25519)
                    .copied()
                    .ok_or(RegistryError::Build("a node was left unassigned"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        RegistryDocument::assemble(
            draft.epoch,
            draft.issued_at_ms,
            prev_hash,
            draft.nodes,
            swarms,
            Vec::new(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn kp(i: u8) -> Ed25519Keypair {
        Ed25519Keypair::from_seed(&[i; 32])
    }

    fn record(i: u8) -> NodeRecord {
        NodeRecord::sign(&kp(i), Ipv4Addr::new(10, 0, 0, i), 22021, [1, 2, 3]).unwrap()
    }

    fn registry_key() -> Ed25519Keypair {
        Ed25519Keypair::from_seed(&[0xaa; 32])
    }

    fn config() -> RegistryConfig {
        RegistryConfig::single_key(registry_key().public(), SwarmParams::PUBLIC).unwrap()
    }

    fn epoch1(n: u8) -> RegistryDocument {
        RegistryDocument::builder(1, 1_700_000_000_000)
            .nodes((1..=n).map(record))
            .build()
            .unwrap()
            .signed(&registry_key())
    }

    #[test]
    fn node_record_sign_verify_and_tamper() {
        let r = record(1);
        r.verify().unwrap();
        assert_eq!(NodeRecord::parse(&r.encode()).unwrap(), r);
        let mut bad = r.clone();
        bad.https_port = 443;
        assert_eq!(
            bad.verify(),
            Err(RegistryError::BadNodeSignature(r.ed25519))
        );
        let mut bad = r.clone();
        bad.ed25519 = kp(2).public();
        assert_eq!(
            bad.verify(),
            Err(RegistryError::BadNodeSignature(kp(2).public()))
        );
        assert!(NodeRecord::sign(&kp(1), Ipv4Addr::LOCALHOST, 0, [0; 3]).is_err());
        assert_eq!(r.x25519().unwrap(), kp(1).x25519_public());
        // The signed message is the context followed by the record without "s".
        let msg = r.signed_message();
        assert!(msg.starts_with(b"UmbraNodeRecordd1:hi22021e1:i4:"));
        assert!(!msg.windows(3).any(|w| w == b"1:s"));
    }

    #[test]
    fn node_record_structure_errors() {
        let r = record(1);
        let mut v = r.to_value();
        if let Value::Dict(d) = &mut v {
            d.insert(b"x".to_vec(), Value::Int(1));
        }
        assert!(matches!(
            NodeRecord::from_value(&v),
            Err(RegistryError::Malformed(_))
        ));
        let mut v = r.to_value();
        if let Value::Dict(d) = &mut v {
            d.insert(b"h".to_vec(), Value::Int(65536));
        }
        assert!(matches!(
            NodeRecord::from_value(&v),
            Err(RegistryError::Malformed(_))
        ));
        let mut v = r.to_value();
        if let Value::Dict(d) = &mut v {
            d.insert(
                b"v".to_vec(),
                Value::List(vec![Value::Int(1), Value::Int(-1), Value::Int(0)]),
            );
        }
        assert!(matches!(
            NodeRecord::from_value(&v),
            Err(RegistryError::Malformed(_))
        ));
        let mut v = r.to_value();
        if let Value::Dict(d) = &mut v {
            d.insert(b"i".to_vec(), Value::bytes([1, 2, 3]));
        }
        assert!(matches!(
            NodeRecord::from_value(&v),
            Err(RegistryError::Malformed(_))
        ));
    }

    #[test]
    fn build_encode_parse_verify() {
        let doc = epoch1(12);
        assert_eq!(doc.epoch(), 1);
        assert_eq!(doc.prev_hash(), &[0; 32]);
        assert_eq!(doc.nodes().len(), 12);
        assert!(doc.nodes().windows(2).all(|w| w[0].ed25519 < w[1].ed25519));
        let bytes = doc.encode();
        assert_eq!(RegistryDocument::parse(&bytes).unwrap(), doc);
        let v = RegistryDocument::verify(&bytes, &config(), None, ReaderRole::Node).unwrap();
        assert_eq!(v, doc);
        assert_eq!(v.encode(), bytes);
        // 12 nodes: one swarm, swarm 0.
        assert_eq!(doc.swarm_ids(), &[SwarmId::ZERO]);
        let account = crate::identity::AccountKeys::from_seed(&[5; 32]).account_id();
        assert_eq!(doc.swarm_of(&account), Some(SwarmId::ZERO));
        assert_eq!(doc.members_for(&account).len(), 12);
        assert!(doc.range_of(SwarmId::ZERO).unwrap().is_whole_ring());
        assert_eq!(doc.swarm_of_node(&kp(3).public()), Some(SwarmId::ZERO));
        assert_eq!(doc.node(&kp(3).public()), Some(&record(3)));
        assert_eq!(doc.node(&kp(99).public()), None);
        assert_eq!(
            doc.assignment(),
            doc.compute_assignment(None, &SwarmParams::PUBLIC).unwrap()
        );
    }

    #[test]
    fn hashes_follow_the_spec() {
        let doc = epoch1(3);
        let bytes = doc.encode();
        let top = bencode::decode(&bytes).unwrap();
        let m = top.get(b"m").unwrap();
        let a = top.get(b"a").unwrap();
        let eh = blake2b(
            &bencode::encode(m),
            32,
            Blake2bParams {
                personal: b"UmbraRegistryEp1",
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(&eh[..], doc.epoch_hash());
        let am = Value::dict([(b"a".to_vec(), a.clone()), (b"m".to_vec(), m.clone())]);
        let dh = blake2b(
            &bencode::encode(&am),
            32,
            Blake2bParams {
                personal: b"UmbraRegistryDoc",
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(&dh[..], doc.doc_hash());
        let mut seed = [0u8; 8];
        seed.copy_from_slice(&eh[..8]);
        assert_eq!(doc.seed(), u64::from_le_bytes(seed));
        // The registry signature covers "UmbraRegistrySig" ‖ doc_hash.
        let s = &doc.signatures()[0];
        registry_key()
            .public()
            .verify(
                &[b"UmbraRegistrySig".as_slice(), &dh].concat(),
                &s.signature,
            )
            .unwrap();
    }

    #[test]
    fn many_nodes_make_several_swarms() {
        let doc = epoch1(30);
        let swarms = doc.swarms();
        assert!(swarms.len() >= 2, "{swarms:?}");
        assert!(swarms.values().all(|m| m.len() >= 5));
        let total: usize = swarms.values().map(Vec::len).sum();
        assert_eq!(total, 30);
        for (id, members) in &swarms {
            assert_eq!(&doc.members(*id), members);
        }
        let unknown = SwarmId::new(12345).unwrap();
        assert!(doc.members(unknown).is_empty());
        assert_eq!(doc.range_of(unknown), None);
    }

    #[test]
    fn chain_and_next_epoch() {
        let one = epoch1(12);
        let two = one
            .next_builder(1_700_000_600_000)
            .node(record(13))
            .node(record(14))
            .build()
            .unwrap()
            .signed(&registry_key());
        assert_eq!(two.epoch(), 2);
        assert_eq!(two.prev_hash(), one.doc_hash());
        let bytes = two.encode();
        let v = RegistryDocument::verify(&bytes, &config(), Some(&one), ReaderRole::Node).unwrap();
        assert_eq!(v, two);
        // Skipped epochs: signatures alone.
        RegistryDocument::verify(&bytes, &config(), None, ReaderRole::Node).unwrap();
        // Stale: holding epoch 2 already.
        assert_eq!(
            RegistryDocument::verify(&bytes, &config(), Some(&two), ReaderRole::Client),
            Err(RegistryError::StaleEpoch { got: 2, held: 2 })
        );
        // Broken chain: a different epoch 1 is held.
        let other_one = epoch1(11);
        let err = RegistryDocument::verify(&bytes, &config(), Some(&other_one), ReaderRole::Client)
            .unwrap_err();
        assert_eq!(err, RegistryError::BrokenChain { held: 1 });
        assert_eq!(err.rule(), Some(6));
    }

    #[test]
    fn builder_errors() {
        assert_eq!(
            RegistryDocument::builder(0, 0).build(),
            Err(RegistryError::Build("the epoch must be at least 1"))
        );
        assert!(matches!(
            RegistryDocument::builder(2, 0).build(),
            Err(RegistryError::Build(_))
        ));
        let one = epoch1(5);
        assert!(matches!(
            RegistryDocument::builder(3, 0).follows(&one).build(),
            Err(RegistryError::Build(_))
        ));
        assert!(matches!(
            RegistryDocument::builder(1, u64::MAX).build(),
            Err(RegistryError::Build(_))
        ));
        // Duplicate key.
        let err = RegistryDocument::builder(1, 0)
            .node(record(1))
            .node(record(1))
            .build()
            .unwrap_err();
        assert_eq!(err, RegistryError::NodesNotAscending(1));
        // Shared address.
        let r2 = NodeRecord::sign(&kp(2), Ipv4Addr::new(10, 0, 0, 1), 22021, [1, 2, 3]).unwrap();
        let err = RegistryDocument::builder(1, 0)
            .node(record(1))
            .node(r2)
            .build()
            .unwrap_err();
        assert_eq!(
            err,
            RegistryError::DuplicateAddress(Ipv4Addr::new(10, 0, 0, 1), 22021)
        );
        // Same address, other port: fine.
        let r3 = NodeRecord::sign(&kp(3), Ipv4Addr::new(10, 0, 0, 1), 22022, [1, 2, 3]).unwrap();
        RegistryDocument::builder(1, 0)
            .node(record(1))
            .node(r3)
            .build()
            .unwrap();
        // Bad node signature.
        let mut r4 = record(4);
        r4.version = [9, 9, 9];
        assert_eq!(
            RegistryDocument::builder(1, 0).node(r4).build(),
            Err(RegistryError::BadNodeSignature(kp(4).public()))
        );
    }

    #[test]
    fn config_rules() {
        let k = registry_key().public();
        assert!(matches!(
            RegistryConfig::new([k], 0, SwarmParams::PUBLIC),
            Err(RegistryError::BadConfig(_))
        ));
        assert!(matches!(
            RegistryConfig::new([k, k], 2, SwarmParams::PUBLIC),
            Err(RegistryError::BadConfig(_))
        ));
        let bad = SwarmParams {
            min_swarm_size: 0,
            ..SwarmParams::PUBLIC
        };
        assert!(matches!(
            RegistryConfig::new([k], 1, bad),
            Err(RegistryError::Swarm(_))
        ));
        let c = RegistryConfig::new([k, kp(1).public()], 2, SwarmParams::PUBLIC).unwrap();
        assert_eq!(c.threshold(), 2);
        assert_eq!(c.pinned_keys().len(), 2);
    }

    #[test]
    fn threshold_signatures() {
        let keys: Vec<Ed25519Keypair> = (100..103).map(kp).collect();
        let cfg = RegistryConfig::new(
            keys.iter().map(Ed25519Keypair::public),
            2,
            SwarmParams::PUBLIC,
        )
        .unwrap();
        let mut doc = RegistryDocument::builder(1, 5)
            .nodes((1..=6).map(record))
            .build()
            .unwrap();
        // Unsigned.
        assert_eq!(
            RegistryDocument::verify(&doc.encode(), &cfg, None, ReaderRole::Client),
            Err(RegistryError::BelowThreshold {
                valid: 0,
                threshold: 2
            })
        );
        doc.sign(&keys[0]);
        // The same key twice still counts once.
        doc.signatures.push(doc.signatures[0].clone());
        // An unpinned key does not count.
        doc.sign(&kp(7));
        let err =
            RegistryDocument::verify(&doc.encode(), &cfg, None, ReaderRole::Client).unwrap_err();
        assert_eq!(
            err,
            RegistryError::BelowThreshold {
                valid: 1,
                threshold: 2
            }
        );
        assert_eq!(err.rule(), Some(5));
        // A second pinned key, signed elsewhere and added.
        let sig = RegistrySignature {
            key: keys[2].public(),
            signature: keys[2].sign(&doc.signing_message()),
        };
        doc.add_signature(sig.clone()).unwrap();
        RegistryDocument::verify(&doc.encode(), &cfg, None, ReaderRole::Client).unwrap();
        // add_signature refuses a bad one.
        let mut bad = sig;
        bad.signature[0] ^= 1;
        assert_eq!(
            doc.add_signature(bad),
            Err(RegistryError::BadRegistrySignature)
        );
    }

    #[test]
    fn tampered_signature_and_body_fail() {
        let doc = epoch1(6);
        let bytes = doc.encode();
        // Flip one bit of the registry signature (the 64 bytes before "eee").
        let mut t = bytes.clone();
        let at = t.len() - 4;
        t[at] ^= 1;
        assert_eq!(
            RegistryDocument::verify(&t, &config(), None, ReaderRole::Client),
            Err(RegistryError::BelowThreshold {
                valid: 0,
                threshold: 1
            })
        );
        // Change the issue time in the body: the doc hash changes.
        let mut d2 = doc.clone();
        d2.issued_at_ms += 1;
        let d2 = RegistryDocument::assemble(
            d2.epoch,
            d2.issued_at_ms,
            d2.prev_hash,
            d2.nodes,
            d2.swarms,
            d2.signatures,
        )
        .unwrap();
        assert!(matches!(
            RegistryDocument::verify(&d2.encode(), &config(), None, ReaderRole::Client),
            Err(RegistryError::BelowThreshold { .. })
        ));
        // Re-signed, but a node's swarm changed: clients accept, nodes alert.
        let mut swarms = doc.swarms.clone();
        swarms[0] = SwarmId::new(77).unwrap();
        let d3 = RegistryDocument::assemble(
            1,
            doc.issued_at_ms,
            [0; 32],
            doc.nodes.clone(),
            swarms,
            Vec::new(),
        )
        .unwrap()
        .signed(&registry_key());
        RegistryDocument::verify(&d3.encode(), &config(), None, ReaderRole::Client).unwrap();
        let err =
            RegistryDocument::verify(&d3.encode(), &config(), None, ReaderRole::Node).unwrap_err();
        assert_eq!(err, RegistryError::AssignmentMismatch { epoch: 1 });
        assert!(err.is_operator_alert());
        // Re-signed with a forged node record: rule 3.
        let mut nodes = doc.nodes.clone();
        nodes[1].https_port = 1;
        let d4 = RegistryDocument::assemble(1, 0, [0; 32], nodes, doc.swarms.clone(), Vec::new())
            .unwrap()
            .signed(&registry_key());
        let err = RegistryDocument::verify(&d4.encode(), &config(), None, ReaderRole::Client)
            .unwrap_err();
        assert_eq!(err, RegistryError::BadNodeSignature(doc.nodes[1].ed25519));
        assert_eq!(err.rule(), Some(3));
    }

    /// Re-encodes a document with one part replaced, to build malformed input.
    fn with(bytes: &[u8], f: impl FnOnce(&mut Dict)) -> Vec<u8> {
        let mut top = bencode::decode(bytes).unwrap();
        if let Value::Dict(d) = &mut top {
            f(d);
        }
        bencode::encode(&top)
    }

    fn m_mut(d: &mut Dict) -> &mut Dict {
        match d.get_mut(b"m".as_slice()) {
            Some(Value::Dict(m)) => m,
            _ => panic!("no m"),
        }
    }

    #[test]
    fn parse_rejects_format_errors() {
        let bytes = epoch1(6).encode();
        // Non-canonical bencode: trailing byte.
        let mut t = bytes.clone();
        t.push(b'e');
        assert!(matches!(
            RegistryDocument::parse(&t),
            Err(RegistryError::Bencode(_))
        ));
        // Truncation.
        assert!(matches!(
            RegistryDocument::parse(&bytes[..bytes.len() - 1]),
            Err(RegistryError::Bencode(_))
        ));
        // Unknown top-level key.
        let t = with(&bytes, |d| {
            d.insert(b"x".to_vec(), Value::Int(0));
        });
        assert!(matches!(
            RegistryDocument::parse(&t),
            Err(RegistryError::Malformed(_))
        ));
        // Epoch 0.
        let t = with(&bytes, |d| {
            m_mut(d).insert(b"e".to_vec(), Value::Int(0));
        });
        assert!(matches!(
            RegistryDocument::parse(&t),
            Err(RegistryError::Malformed(_))
        ));
        // Epoch 1 with a non-zero p.
        let t = with(&bytes, |d| {
            m_mut(d).insert(b"p".to_vec(), Value::bytes([1; 32]));
        });
        assert!(matches!(
            RegistryDocument::parse(&t),
            Err(RegistryError::Malformed(_))
        ));
        // Negative time.
        let t = with(&bytes, |d| {
            m_mut(d).insert(b"t".to_vec(), Value::Int(-1));
        });
        assert!(matches!(
            RegistryDocument::parse(&t),
            Err(RegistryError::Malformed(_))
        ));
        // Rule 4: one swarm ID missing, or UNASSIGNED.
        let t = with(&bytes, |d| {
            if let Some(Value::List(a)) = d.get_mut(b"a".as_slice()) {
                a.pop();
            }
        });
        assert_eq!(
            RegistryDocument::parse(&t),
            Err(RegistryError::AssignmentLength {
                swarms: 5,
                nodes: 6
            })
        );
        let t = with(&bytes, |d| {
            if let Some(Value::List(a)) = d.get_mut(b"a".as_slice()) {
                a[2] = Value::bytes([0xff; 8]);
            }
        });
        assert_eq!(
            RegistryDocument::parse(&t),
            Err(RegistryError::UnassignedSwarm(2))
        );
        // Rule 3: nodes out of order.
        let t = with(&bytes, |d| {
            if let Some(Value::List(n)) = m_mut(d).get_mut(b"n".as_slice()) {
                n.swap(0, 1);
            }
        });
        assert_eq!(
            RegistryDocument::parse(&t),
            Err(RegistryError::NodesNotAscending(1))
        );
        // Signature entries of the wrong shape.
        let t = with(&bytes, |d| {
            d.insert(
                b"s".to_vec(),
                Value::List(vec![Value::List(vec![Value::bytes([0; 32])])]),
            );
        });
        assert!(matches!(
            RegistryDocument::parse(&t),
            Err(RegistryError::Malformed(_))
        ));
        assert_eq!(RegistryDocument::parse(&t).unwrap_err().rule(), Some(1));
    }

    #[test]
    fn empty_registry_is_valid() {
        let doc = RegistryDocument::builder(1, 0)
            .build()
            .unwrap()
            .signed(&registry_key());
        let v = RegistryDocument::verify(&doc.encode(), &config(), None, ReaderRole::Node).unwrap();
        assert!(v.nodes().is_empty());
        assert!(v.swarm_ids().is_empty());
        let account = crate::identity::AccountKeys::from_seed(&[5; 32]).account_id();
        assert_eq!(v.swarm_of(&account), None);
        assert!(v.members_for(&account).is_empty());
    }

    fn arb_records() -> impl Strategy<Value = Vec<NodeRecord>> {
        proptest::collection::btree_set(1u8..=200, 0..12).prop_flat_map(|seeds| {
            let n = seeds.len();
            (
                Just(seeds),
                proptest::collection::vec((any::<u16>(), any::<[u32; 3]>()), n),
            )
                .prop_map(|(seeds, extra)| {
                    seeds
                        .into_iter()
                        .zip(extra)
                        .map(|(s, (port, version))| {
                            NodeRecord::sign(
                                &kp(s),
                                Ipv4Addr::new(192, 0, 2, s),
                                port.max(1),
                                version,
                            )
                            .unwrap()
                        })
                        .collect()
                })
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn round_trip(records in arb_records(), t in 0u64..=i64::MAX as u64, extra in 0u8..12) {
            let one = RegistryDocument::builder(1, t).nodes(records.clone()).build().unwrap().signed(&registry_key());
            let bytes = one.encode();
            prop_assert_eq!(&RegistryDocument::parse(&bytes).unwrap(), &one);
            prop_assert_eq!(&RegistryDocument::verify(&bytes, &config(), None, ReaderRole::Node).unwrap(), &one);
            // Next epoch: keep some nodes and add new ones.
            let next = one
                .next_builder(t / 2)
                .nodes(records.into_iter().skip(1))
                .nodes((0..extra).map(|i| NodeRecord::sign(&kp(201 + i), Ipv4Addr::new(198, 51, 100, i), 443, [0, 0, 1]).unwrap()))
                .build()
                .unwrap()
                .signed(&registry_key());
            let nb = next.encode();
            prop_assert_eq!(&RegistryDocument::verify(&nb, &config(), Some(&one), ReaderRole::Node).unwrap(), &next);
            prop_assert_eq!(next.prev_hash(), one.doc_hash());
        }

        #[test]
        fn record_round_trip(records in arb_records()) {
            for r in records {
                prop_assert_eq!(NodeRecord::parse(&r.encode()).unwrap(), r.clone());
                prop_assert!(r.verify().is_ok());
            }
        }

        #[test]
        fn any_bit_flip_fails(idx in any::<prop::sample::Index>(), bit in 0u8..8) {
            let bytes = epoch1(6).encode();
            let mut t = bytes.clone();
            let i = idx.index(t.len());
            t[i] ^= 1 << bit;
            prop_assert!(RegistryDocument::verify(&t, &config(), None, ReaderRole::Client).is_err());
        }
    }
}
