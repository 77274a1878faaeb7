//! The node side of an onion (spec `onion.md` §3, §4, §6): read an entry
//! request or a hop-to-hop relay message, decrypt the layer with the node's
//! X25519 secret, and decide what to do with it.
//!
//! ```text
//! client body ──IncomingLayer::from_entry──┐
//! relay body  ──IncomingLayer::from_relay──┴─► peel ─► Forward / Deliver / Proxy
//! ```

use umbra_crypto::{X25519Public, X25519Secret};

use super::routing::hex32;
use super::{
    DeliverOptions, EncType, LayerKey, MAX_ONION_HOPS, NodeLayerSecret, OnionError, ProxyRequest,
    RelayMessage, Route, parse_layer, unframe,
};

/// An encrypted layer addressed to this node, with what is needed to open it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncomingLayer {
    /// The layer ciphertext (`nonce ‖ ciphertext ‖ tag`).
    pub ciphertext: Vec<u8>,
    /// The client's ephemeral X25519 key for this layer.
    pub ephemeral_key: X25519Public,
    /// The layer's cipher.
    pub enc_type: EncType,
    /// This node's hop count (§6.1): `max(0, hop_no)` at the entry,
    /// `max(1, hop_no)` on a relay. The next hop receives `hop_no + 1`.
    pub hop_no: u64,
}

impl IncomingLayer {
    /// Reads the body a client POSTs to `/onion_req/v2` (§3): a container
    /// whose JSON has `ephemeral_key` (64 hex), optional `enc_type` (default
    /// `aes-gcm`) and optional `hop_no` (integer; negative counts as 0, above
    /// [`MAX_ONION_HOPS`] is refused).
    pub fn from_entry(body: &[u8]) -> Result<Self, OnionError> {
        let c = unframe(body)?;
        let enc_type = EncType::from_json(&c.json)?;
        let ephemeral_key = X25519Public::from_bytes(hex32(&c.json, "ephemeral_key")?);
        let hop_no = match c.json.get("hop_no") {
            None => 0,
            Some(v) => match (v.as_i64(), v.as_u64()) {
                (Some(i), _) => u64::try_from(i.max(0)).unwrap_or(0),
                (None, Some(u)) => u,
                _ => {
                    return Err(OnionError::BadField {
                        field: "hop_no",
                        why: "not an integer",
                    });
                }
            },
        };
        if hop_no > MAX_ONION_HOPS {
            return Err(OnionError::HopLimitExceeded(hop_no));
        }
        Ok(IncomingLayer {
            ciphertext: c.blob.to_vec(),
            ephemeral_key,
            enc_type,
            hop_no,
        })
    }

    /// Reads a hop-to-hop relay body (§6); see [`RelayMessage::decode`].
    pub fn from_relay(body: &[u8]) -> Result<Self, OnionError> {
        let m = RelayMessage::decode(body)?;
        Ok(IncomingLayer {
            ciphertext: m.data,
            ephemeral_key: m.ephemeral_key,
            enc_type: m.enc_type,
            hop_no: m.hop_no,
        })
    }

    /// Decrypts the layer: returns the plaintext container and the layer key
    /// (which encrypts the reply if this node is the destination).
    pub fn decrypt(&self, node_secret: &X25519Secret) -> Result<(Vec<u8>, LayerKey), OnionError> {
        self.decrypt_with(&NodeLayerSecret::new(node_secret.clone()))
    }

    /// [`IncomingLayer::decrypt`] with the node's public key already known
    /// (what a running node uses: no base-point multiplication per layer).
    pub fn decrypt_with(&self, node: &NodeLayerSecret) -> Result<(Vec<u8>, LayerKey), OnionError> {
        let key = LayerKey::node_with(self.enc_type, node, &self.ephemeral_key)?;
        let plaintext = key.decrypt(&self.ciphertext)?;
        Ok((plaintext, key))
    }
}

/// What a node must do with a layer it has decrypted (§4).
#[derive(Debug, Clone)]
pub enum Peeled {
    /// Relay to the next node (§4.3, §6). The node looks the key up in its
    /// registry (`502 Next node not found: <hex>` if absent) and POSTs
    /// `message.encode()` to `/node/v1/onion`.
    Forward {
        /// The next node's Ed25519 key.
        next_hop_ed25519: [u8; 32],
        /// The relay message to send; `hop_no` is already incremented.
        message: RelayMessage,
    },
    /// This node is the destination (§4.1): run the RPC, then answer with
    /// [`seal_node_reply`](super::seal_node_reply) under `reply_key`.
    Deliver {
        /// The storage RPC request JSON.
        request: Vec<u8>,
        /// The `json`/`base64` reply options.
        options: DeliverOptions,
        /// The destination-layer key.
        reply_key: LayerKey,
    },
    /// Proxy to a server (§4.2). Target, protocol, port and host syntax are
    /// valid; the node still resolves the host and applies
    /// [`check_resolved_addresses`](super::check_resolved_addresses) before
    /// POSTing `body` to `request.url()`.
    Proxy {
        /// Where to send it.
        request: ProxyRequest,
        /// The entire decrypted container, forwarded unchanged.
        body: Vec<u8>,
    },
}

/// Decrypts `layer` with the node's X25519 secret and interprets its
/// routing JSON.
pub fn peel(layer: &IncomingLayer, node_secret: &X25519Secret) -> Result<Peeled, OnionError> {
    peel_with(layer, &NodeLayerSecret::new(node_secret.clone()))
}

/// [`peel`] with the node's public key already known.
pub fn peel_with(layer: &IncomingLayer, node: &NodeLayerSecret) -> Result<Peeled, OnionError> {
    let (plaintext, reply_key) = layer.decrypt_with(node)?;
    peel_plaintext(layer, plaintext, reply_key)
}

/// Interprets the decrypted `plaintext` of `layer` (§4); `reply_key` is the
/// key it was decrypted with. For a node that needs the plaintext itself as
/// well (a test observer), after [`IncomingLayer::decrypt_with`].
pub fn peel_plaintext(
    layer: &IncomingLayer,
    plaintext: Vec<u8>,
    reply_key: LayerKey,
) -> Result<Peeled, OnionError> {
    let parsed = parse_layer(&plaintext)?;
    match parsed.route {
        Route::Deliver(options) => Ok(Peeled::Deliver {
            request: parsed.blob.to_vec(),
            options,
            reply_key,
        }),
        Route::Relay(r) => Ok(Peeled::Forward {
            next_hop_ed25519: r.destination,
            message: RelayMessage {
                data: parsed.blob.to_vec(),
                enc_type: r.enc_type,
                ephemeral_key: r.ephemeral_key,
                hop_no: layer.hop_no.saturating_add(1),
            },
        }),
        Route::Proxy(p) => {
            let request = ProxyRequest::new(&p.host, &p.target, &p.protocol, p.port)?;
            Ok(Peeled::Proxy {
                request,
                body: plaintext,
            })
        }
    }
}

/// [`IncomingLayer::from_entry`] then [`peel`]: what the guard does with a
/// client's `/onion_req/v2` body.
pub fn peel_entry(body: &[u8], node_secret: &X25519Secret) -> Result<Peeled, OnionError> {
    peel(&IncomingLayer::from_entry(body)?, node_secret)
}

/// [`IncomingLayer::from_relay`] then [`peel`]: what a node does with a
/// `/node/v1/onion` body.
pub fn peel_relay(body: &[u8], node_secret: &X25519Secret) -> Result<Peeled, OnionError> {
    peel(&IncomingLayer::from_relay(body)?, node_secret)
}
