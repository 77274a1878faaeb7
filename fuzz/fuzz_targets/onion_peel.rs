//! Untrusted onion bytes at a node: the entry container (`/onion_req/v2`),
//! the relay message (`/node/v1/onion`), a decrypted layer's routing JSON and
//! the v4 request/response framing an exit or a client decodes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use umbra_crypto::X25519Secret;
use umbra_proto::onion::{V4Request, V4Response, parse_layer, peel_entry, peel_relay};

fuzz_target!(|data: &[u8]| {
    let key = X25519Secret::from_bytes([7; 32]);
    let _ = peel_entry(data, &key);
    let _ = peel_relay(data, &key);
    let _ = parse_layer(data);
    let _ = V4Request::decode(data);
    let _ = V4Response::decode(data);
});
