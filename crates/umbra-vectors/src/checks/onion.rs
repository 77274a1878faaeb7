//! Categories of `onion.json` (`test-vectors/README.md`, "Onion requests";
//! spec `shared/spec/onion.md` §1–5 and §8): `onion_hop_decrypt`,
//! `onion_request_parse`, `onion_layer_parse`, `onion_target_allowed`,
//! `onion_v4_encode`, `onion_build`. Every operation is the library's
//! (`umbra_proto::onion`); this file only converts inputs and outputs.

use serde_json::{Map, Value};
use umbra_crypto::{X25519Public, X25519Secret};
use umbra_proto::onion::{
    EncType, IncomingLayer, LayerKey, LayerRandom, NodeRequestOptions, OnionDestination, PathNode,
    Route, build_onion, decode_v4_list, encode_v4_list, parse_layer, target_allowed,
};

use crate::input::{Malformed, hx};
use crate::{Category, CheckError, Input, Output};

/// The categories of this file.
pub(crate) const CATEGORIES: &[Category] = &[
    Category {
        name: "onion_hop_decrypt",
        inputs: &[
            "enc_type",
            "direction",
            "local_x25519_sk",
            "remote_x25519_pk",
            "ciphertext",
        ],
        outputs: Some(&["plaintext"]),
        run: hop_decrypt,
    },
    Category {
        name: "onion_request_parse",
        inputs: &["node_x25519_sk", "blob"],
        outputs: Some(&["enc_type", "ephemeral_key", "plaintext"]),
        run: request_parse,
    },
    Category {
        name: "onion_layer_parse",
        inputs: &["plaintext"],
        // The key set depends on `kind`.
        outputs: None,
        run: layer_parse,
    },
    Category {
        name: "onion_target_allowed",
        inputs: &["target"],
        outputs: Some(&["allowed"]),
        run: target,
    },
    Category {
        name: "onion_v4_encode",
        inputs: &["meta_json", "body"],
        outputs: Some(&["encoded"]),
        run: v4_encode,
    },
    Category {
        name: "onion_build",
        inputs: &["enc_type", "payload", "hops", "destination"],
        outputs: Some(&["blob", "layer_plaintexts"]),
        run: build,
    },
];

/// A 32-byte field of `input`; other sizes are malformed.
fn bytes32(input: &Input, key: &str) -> Result<[u8; 32], CheckError> {
    let b = input.bytes(key)?;
    <[u8; 32]>::try_from(b.as_slice())
        .map_err(|_| Malformed::new(key, format!("must be 32 bytes, got {}", b.len())).into())
}

fn hop_decrypt(input: &Input) -> Result<Output, CheckError> {
    let enc = EncType::parse(input.str("enc_type")?).map_err(CheckError::refused)?;
    let local = X25519Secret::from_bytes(bytes32(input, "local_x25519_sk")?);
    let remote = X25519Public::from_bytes(bytes32(input, "remote_x25519_pk")?);
    let key = match input.str("direction")? {
        "request" => LayerKey::node(enc, &local, &remote),
        "reply" => LayerKey::client(enc, &local, &remote),
        other => {
            return Err(
                Malformed::new("direction", format!("{other:?} is not request/reply")).into(),
            );
        }
    }
    .map_err(CheckError::refused)?;
    let plaintext = key
        .decrypt(&input.bytes("ciphertext")?)
        .map_err(CheckError::refused)?;
    let mut out = Map::new();
    out.insert("plaintext".into(), hx(plaintext));
    Ok(out)
}

fn request_parse(input: &Input) -> Result<Output, CheckError> {
    let node = X25519Secret::from_bytes(bytes32(input, "node_x25519_sk")?);
    let layer = IncomingLayer::from_entry(&input.bytes("blob")?).map_err(CheckError::refused)?;
    let (plaintext, _key) = layer.decrypt(&node).map_err(CheckError::refused)?;
    let mut out = Map::new();
    out.insert("enc_type".into(), Value::from(layer.enc_type.as_str()));
    out.insert("ephemeral_key".into(), hx(layer.ephemeral_key.as_bytes()));
    out.insert("plaintext".into(), hx(plaintext));
    Ok(out)
}

fn layer_parse(input: &Input) -> Result<Output, CheckError> {
    let plaintext = input.bytes("plaintext")?;
    let layer = parse_layer(&plaintext).map_err(CheckError::refused)?;
    let mut out = Map::new();
    match layer.route {
        Route::Deliver(opts) => {
            out.insert("kind".into(), Value::from("final"));
            out.insert("body".into(), hx(layer.blob));
            out.insert("json".into(), Value::from(opts.json));
            out.insert("base64".into(), Value::from(opts.base64));
        }
        Route::Proxy(p) => {
            out.insert("kind".into(), Value::from("relay_to_server"));
            out.insert("host".into(), Value::from(p.host));
            out.insert("port".into(), Value::from(p.port));
            out.insert("protocol".into(), Value::from(p.protocol));
            out.insert("target".into(), Value::from(p.target));
        }
        Route::Relay(r) => {
            out.insert("kind".into(), Value::from("relay_to_node"));
            out.insert("ciphertext".into(), hx(layer.blob));
            out.insert("destination".into(), hx(r.destination));
            out.insert("ephemeral_key".into(), hx(r.ephemeral_key.as_bytes()));
            out.insert("enc_type".into(), Value::from(r.enc_type.as_str()));
        }
    }
    Ok(out)
}

fn target(input: &Input) -> Result<Output, CheckError> {
    let mut out = Map::new();
    out.insert(
        "allowed".into(),
        Value::from(target_allowed(input.str("target")?)),
    );
    Ok(out)
}

fn v4_encode(input: &Input) -> Result<Output, CheckError> {
    let meta = input.str("meta_json")?.as_bytes();
    let body = if input.is_null("body")? {
        None
    } else {
        Some(input.bytes("body")?)
    };
    let encoded = encode_v4_list(meta, body.as_deref());
    // Round trip: parsing must give back the parts.
    let (m, b) = decode_v4_list(&encoded).map_err(CheckError::refused)?;
    if m != meta || b != body {
        return Err(CheckError::Refused(
            "v4 round trip gave different parts".into(),
        ));
    }
    let mut out = Map::new();
    out.insert("encoded".into(), hx(encoded));
    Ok(out)
}

/// A layer object: the node it addresses and the client randomness for it.
fn layer_object(
    obj: &Value,
    key: &str,
    enc: EncType,
) -> Result<(PathNode, LayerRandom), CheckError> {
    let map = obj
        .as_object()
        .ok_or_else(|| Malformed::new(key, "layer is not an object"))?;
    let l = Input::new(map);
    let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
    keys.sort_unstable();
    if keys != ["ed25519_pk", "ephemeral_x25519_sk", "nonce", "x25519_pk"] {
        return Err(Malformed::new(key, format!("layer keys are {keys:?}")).into());
    }
    let node = PathNode {
        ed25519: bytes32(&l, "ed25519_pk")?,
        x25519: X25519Public::from_bytes(bytes32(&l, "x25519_pk")?),
    };
    let random =
        LayerRandom::with_nonce(bytes32(&l, "ephemeral_x25519_sk")?, &l.bytes("nonce")?, enc)
            .map_err(|e| Malformed::new("nonce", e.to_string()))?;
    Ok((node, random))
}

fn build(input: &Input) -> Result<Output, CheckError> {
    let enc = EncType::parse(input.str("enc_type")?).map_err(CheckError::refused)?;
    let payload = input.bytes("payload")?;
    let mut hops = Vec::new();
    let mut random = Vec::new();
    for h in input.array("hops")? {
        let (node, r) = layer_object(h, "hops", enc)?;
        hops.push(node);
        random.push(r);
    }
    let (dest, r) = layer_object(input.value("destination")?, "destination", enc)?;
    random.push(r);
    let destination = OnionDestination::Node {
        node: dest,
        options: NodeRequestOptions::bare(),
    };
    let built = build_onion(enc, &payload, &hops, &destination, &random, None)
        .map_err(CheckError::refused)?;
    let mut out = Map::new();
    out.insert("blob".into(), hx(&built.body));
    out.insert(
        "layer_plaintexts".into(),
        Value::Array(built.layer_plaintexts.iter().map(hx).collect()),
    );
    Ok(out)
}
