//! Untrusted protobuf and padded plaintext after decryption: `Content`,
//! `Envelope`, the WebSocket wrapper a node stores, Session padding, and a
//! group's decrypted state plaintext (bencode).
#![no_main]

use libfuzzer_sys::fuzz_target;
use umbra_proto::message::{decode_content, decode_envelope, encode_content, unpad, unwrap_stored};

fuzz_target!(|data: &[u8]| {
    if let Ok(content) = decode_content(data) {
        // Whatever decodes re-encodes and decodes to the same message.
        if let Ok(bytes) = encode_content(&content) {
            assert_eq!(decode_content(&bytes).ok(), Some(content));
        }
    }
    let _ = decode_envelope(data);
    let _ = unwrap_stored(data);
    let _ = decode_content(unpad(data));
    let _ = umbra_proto::group::GroupInfo::decode(data);
});
