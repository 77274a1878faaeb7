//! Building an onion on the client (spec `onion.md` §5) and padding it to
//! a size bucket (§9.2).
//!
//! All randomness (one ephemeral X25519 secret and one nonce per layer) is
//! passed in as [`LayerRandom`]; the result remembers the destination-layer
//! key, which is the only key a reply is encrypted under (§7).

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Value, json};
use umbra_crypto::{X25519Public, X25519Secret};
use zeroize::Zeroizing;

use super::pad::{buckets_from, pad_string};
use super::{
    EncType, LayerKey, MAX_BODY_SIZE, MAX_ONION_HOPS, OnionError, Protocol, ProxyRequest, frame,
};

/// A node on the path or a destination node: its Ed25519 key names it in
/// routing JSON, its X25519 key (the Montgomery form of the Ed25519 key)
/// encrypts its layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PathNode {
    /// Registry Ed25519 key.
    pub ed25519: [u8; 32],
    /// X25519 encryption key.
    pub x25519: X25519Public,
}

/// The randomness of one layer: the client's ephemeral X25519 secret and the
/// nonce. Both must be fresh for every onion. The secret is zeroized on drop.
#[derive(Clone)]
pub struct LayerRandom {
    ephemeral_secret: Zeroizing<[u8; 32]>,
    nonce: [u8; 24],
}

impl fmt::Debug for LayerRandom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LayerRandom").finish_non_exhaustive()
    }
}

impl LayerRandom {
    /// From 32 secret bytes and 24 nonce bytes (AES-GCM layers use the first
    /// 12 nonce bytes).
    pub fn new(ephemeral_secret: [u8; 32], nonce: [u8; 24]) -> Self {
        LayerRandom {
            ephemeral_secret: Zeroizing::new(ephemeral_secret),
            nonce,
        }
    }

    /// From a secret and a nonce of exactly `enc_type.nonce_len()` bytes.
    pub fn with_nonce(
        ephemeral_secret: [u8; 32],
        nonce: &[u8],
        enc_type: EncType,
    ) -> Result<Self, OnionError> {
        let expected = enc_type.nonce_len();
        if nonce.len() != expected {
            return Err(OnionError::BadNonceLength {
                expected,
                got: nonce.len(),
            });
        }
        let mut n = [0u8; 24];
        n.get_mut(..expected)
            .ok_or(OnionError::BadNonceLength {
                expected,
                got: nonce.len(),
            })?
            .copy_from_slice(nonce);
        Ok(Self::new(ephemeral_secret, n))
    }

    /// The key agreement with `node`: the layer key and the ephemeral
    /// public key `E` (one X25519 and one base-point multiplication).
    fn agree(&self, enc_type: EncType, node: &X25519Public) -> Result<AgreedLayer, OnionError> {
        let secret = X25519Secret::from_bytes(*self.ephemeral_secret);
        let (key, ephemeral) = LayerKey::client_with_public(enc_type, &secret, node)?;
        let nonce_len = enc_type.nonce_len();
        let nonce = self.nonce.get(..nonce_len).unwrap_or(&self.nonce[..]);
        Ok(AgreedLayer {
            key,
            ephemeral,
            nonce: nonce.to_vec(),
        })
    }
}

/// One layer after its key agreement: what encrypting it needs.
struct AgreedLayer {
    key: LayerKey,
    ephemeral: X25519Public,
    nonce: Vec<u8>,
}

/// What a layer is built of: the bytes ([`Vec<u8>`]: the real onion), or
/// only their length (`usize`: measuring an onion's size without copying or
/// encrypting its payload).
trait LayerBody: Sized {
    /// The innermost body: the payload itself.
    fn payload(payload: &[u8]) -> Self;
    /// `len ‖ self ‖ json` (§2).
    fn frame(&self, json: &[u8]) -> Result<Self, OnionError>;
    /// `len ‖ payload ‖ json`.
    fn framed_payload(payload: &[u8], json: &[u8]) -> Result<Self, OnionError> {
        Self::payload(payload).frame(json)
    }
    /// The layer's ciphertext (`nonce ‖ ciphertext ‖ tag`).
    fn encrypt(&self, layer: &AgreedLayer) -> Result<Self, OnionError>;
}

impl LayerBody for Vec<u8> {
    fn payload(payload: &[u8]) -> Self {
        payload.to_vec()
    }
    fn frame(&self, json: &[u8]) -> Result<Self, OnionError> {
        frame(self, json)
    }
    fn framed_payload(payload: &[u8], json: &[u8]) -> Result<Self, OnionError> {
        // One copy of the payload, not two.
        frame(payload, json)
    }
    fn encrypt(&self, layer: &AgreedLayer) -> Result<Self, OnionError> {
        layer.key.encrypt(&layer.nonce, self)
    }
}

impl LayerBody for usize {
    fn payload(payload: &[u8]) -> Self {
        payload.len()
    }
    fn frame(&self, json: &[u8]) -> Result<Self, OnionError> {
        u32::try_from(*self).map_err(|_| OnionError::BlobTooLarge(*self))?;
        Ok(4 + self + json.len())
    }
    fn encrypt(&self, layer: &AgreedLayer) -> Result<Self, OnionError> {
        Ok(self + layer.key.enc_type().overhead())
    }
}

/// An onion assembled from [`LayerBody`]s.
struct Assembled<B> {
    body: B,
    /// `[P_0, …, P_{k−1}, P_D]`, as in [`BuiltOnion::layer_plaintexts`].
    plaintexts: Vec<B>,
}

/// The §4.1 options a client puts in the destination layer. `None` leaves
/// the key out (the node then applies the protocol default).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NodeRequestOptions {
    /// `"json"`.
    pub json: Option<bool>,
    /// `"base64"`.
    pub base64: Option<bool>,
}

impl Default for NodeRequestOptions {
    /// What Umbra clients send: `"json": true, "base64": false`.
    fn default() -> Self {
        NodeRequestOptions {
            json: Some(true),
            base64: Some(false),
        }
    }
}

impl NodeRequestOptions {
    /// Neither key: `{"headers":""}` only (Session's minimal form).
    pub const fn bare() -> Self {
        NodeRequestOptions {
            json: None,
            base64: None,
        }
    }
}

/// A server reached through the last hop (v4 lsrpc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerTarget {
    /// DNS name or IPv4 literal.
    pub host: String,
    /// Path; Umbra uses `/oxen/v4/lsrpc`.
    pub target: String,
    /// `http` or `https`.
    pub protocol: Protocol,
    /// TCP port.
    pub port: u16,
    /// The server's X25519 key.
    pub x25519: X25519Public,
}

/// Where the onion ends (§5 step 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OnionDestination {
    /// A 4th storage node; the payload is a storage RPC request JSON.
    Node {
        /// The node.
        node: PathNode,
        /// The reply options written into its layer.
        options: NodeRequestOptions,
    },
    /// A server proxied by the last hop; the payload is a v4 request list.
    Server(ServerTarget),
}

/// A built onion.
#[derive(Clone, Debug)]
pub struct BuiltOnion {
    /// The body to POST to the guard (`/onion_req/v2`).
    pub body: Vec<u8>,
    /// The destination-layer key: replies decrypt under it.
    pub reply_key: LayerKey,
    /// The key of each hop's layer, guard first.
    pub hop_keys: Vec<LayerKey>,
    /// What each party decrypts: `[P_0, …, P_{k−1}, P_D]`, the guard first
    /// and the destination last (for a server, `P_D` is the v4 payload).
    pub layer_plaintexts: Vec<Vec<u8>>,
}

fn to_json(map: &BTreeMap<&'static str, Value>) -> Result<Vec<u8>, OnionError> {
    serde_json::to_vec(map).map_err(|e| OnionError::InvalidJson(e.to_string()))
}

/// Builds an onion for `hops` (guard first) ending at `destination`.
///
/// `random` holds one [`LayerRandom`] per hop, in path order, followed by
/// the destination's. `pad` is the number of `0` characters of the `"pad"`
/// string (§9.2), written into the destination layer's JSON (node) or the
/// last hop's route (server); `None` leaves the key out. Routing JSON is
/// compact with sorted keys and lowercase hex.
pub fn build_onion(
    enc_type: EncType,
    payload: &[u8],
    hops: &[PathNode],
    destination: &OnionDestination,
    random: &[LayerRandom],
    pad: Option<usize>,
) -> Result<BuiltOnion, OnionError> {
    let agreed = agree_layers(enc_type, hops, destination, random)?;
    let onion = assemble::<Vec<u8>>(enc_type, payload, hops, destination, &agreed, pad)?;
    built(onion, &agreed)
}

/// The [`BuiltOnion`] of an onion assembled from `agreed`.
fn built(onion: Assembled<Vec<u8>>, agreed: &[AgreedLayer]) -> Result<BuiltOnion, OnionError> {
    let (dest_layer, hop_layers) = agreed.split_last().ok_or(OnionError::EmptyPath)?;
    Ok(BuiltOnion {
        body: onion.body,
        reply_key: dest_layer.key.clone(),
        hop_keys: hop_layers.iter().map(|l| l.key.clone()).collect(),
        layer_plaintexts: onion.plaintexts,
    })
}

/// The key agreement of every layer, path order, destination last; checks
/// the path and the randomness count.
fn agree_layers(
    enc_type: EncType,
    hops: &[PathNode],
    destination: &OnionDestination,
    random: &[LayerRandom],
) -> Result<Vec<AgreedLayer>, OnionError> {
    if hops.is_empty() {
        return Err(OnionError::EmptyPath);
    }
    if random.len() != hops.len() + 1 {
        return Err(OnionError::RandomnessCount {
            expected: hops.len() + 1,
            got: random.len(),
        });
    }
    let hop_count = u64::try_from(hops.len()).unwrap_or(u64::MAX);
    if hop_count > MAX_ONION_HOPS {
        return Err(OnionError::HopLimitExceeded(hop_count));
    }
    let dest_x25519 = match destination {
        OnionDestination::Node { node, .. } => &node.x25519,
        OnionDestination::Server(s) => {
            // Refused before any public-key work.
            ProxyRequest::new(&s.host, &s.target, s.protocol.as_str(), s.port)?;
            &s.x25519
        }
    };
    hops.iter()
        .map(|hop| &hop.x25519)
        .chain(std::iter::once(dest_x25519))
        .zip(random)
        .map(|(node, r)| r.agree(enc_type, node))
        .collect()
}

/// Wraps `payload` in the layers of `agreed` (from [`agree_layers`]): only
/// framing, JSON and symmetric encryption. With `B = usize` it only adds up
/// lengths: a padded build measures the unpadded size that way.
fn assemble<B: LayerBody>(
    enc_type: EncType,
    payload: &[u8],
    hops: &[PathNode],
    destination: &OnionDestination,
    agreed: &[AgreedLayer],
    pad: Option<usize>,
) -> Result<Assembled<B>, OnionError> {
    let (dest_layer, hop_layers) = agreed.split_last().ok_or(OnionError::EmptyPath)?;
    let enc_name = Value::from(enc_type.as_str());

    // Destination layer and the route the last hop reads.
    let (dest_plaintext, mut ciphertext, mut route) = match destination {
        OnionDestination::Node { node, options } => {
            let mut j = BTreeMap::new();
            j.insert("headers", Value::from(""));
            if let Some(b) = options.json {
                j.insert("json", Value::from(b));
            }
            if let Some(b) = options.base64 {
                j.insert("base64", Value::from(b));
            }
            if let Some(n) = pad {
                j.insert("pad", Value::from(pad_string(n)));
            }
            let c0 = B::framed_payload(payload, &to_json(&j)?)?;
            let x0 = c0.encrypt(dest_layer)?;
            let mut r = BTreeMap::new();
            r.insert("destination", Value::from(hex::encode(node.ed25519)));
            r.insert("enc_type", enc_name.clone());
            r.insert(
                "ephemeral_key",
                Value::from(hex::encode(dest_layer.ephemeral.as_bytes())),
            );
            (c0, x0, r)
        }
        OnionDestination::Server(s) => {
            let p0 = B::payload(payload);
            let x0 = p0.encrypt(dest_layer)?;
            let mut r = BTreeMap::new();
            r.insert("host", Value::from(s.host.as_str()));
            r.insert("target", Value::from(s.target.as_str()));
            r.insert("method", Value::from("POST"));
            r.insert("protocol", Value::from(s.protocol.as_str()));
            r.insert("port", json!(s.port));
            r.insert("enc_type", enc_name.clone());
            r.insert(
                "ephemeral_key",
                Value::from(hex::encode(dest_layer.ephemeral.as_bytes())),
            );
            if let Some(n) = pad {
                r.insert("pad", Value::from(pad_string(n)));
            }
            (p0, x0, r)
        }
    };

    // Relay layers, innermost first.
    let mut plaintexts = Vec::with_capacity(hops.len() + 1);
    for (hop, layer) in hops.iter().zip(hop_layers).rev() {
        let p = ciphertext.frame(&to_json(&route)?)?;
        ciphertext = p.encrypt(layer)?;
        plaintexts.push(p);
        route = BTreeMap::new();
        route.insert("destination", Value::from(hex::encode(hop.ed25519)));
        route.insert("enc_type", enc_name.clone());
        route.insert(
            "ephemeral_key",
            Value::from(hex::encode(layer.ephemeral.as_bytes())),
        );
    }
    let guard = hop_layers.first().ok_or(OnionError::EmptyPath)?;
    plaintexts.reverse();
    plaintexts.push(dest_plaintext);

    let mut entry = BTreeMap::new();
    entry.insert("enc_type", enc_name);
    entry.insert(
        "ephemeral_key",
        Value::from(hex::encode(guard.ephemeral.as_bytes())),
    );
    let body = ciphertext.frame(&to_json(&entry)?)?;
    Ok(Assembled { body, plaintexts })
}

/// Builds an onion whose body is exactly the smallest size bucket that fits
/// (§9.2): measures the size with an empty pad (framing only, no
/// encryption), then builds with the pad that fills the bucket. The key
/// agreements (the public-key work) are done once. Requests over 10 MiB are
/// refused.
pub fn build_padded_onion(
    enc_type: EncType,
    payload: &[u8],
    hops: &[PathNode],
    destination: &OnionDestination,
    random: &[LayerRandom],
) -> Result<BuiltOnion, OnionError> {
    let agreed = agree_layers(enc_type, hops, destination, random)?;
    let s0 = assemble::<usize>(enc_type, payload, hops, destination, &agreed, Some(0))?.body;
    let bucket = buckets_from(s0).next().ok_or(OnionError::TooLarge(s0))?;
    if bucket > MAX_BODY_SIZE {
        return Err(OnionError::TooLarge(s0));
    }
    let padded = built(
        assemble::<Vec<u8>>(
            enc_type,
            payload,
            hops,
            destination,
            &agreed,
            Some(bucket - s0),
        )?,
        &agreed,
    )?;
    if padded.body.len() != bucket {
        return Err(OnionError::PaddingMismatch {
            want: bucket,
            got: padded.body.len(),
        });
    }
    Ok(padded)
}
