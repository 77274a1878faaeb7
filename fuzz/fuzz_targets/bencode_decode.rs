//! Untrusted bencode (registry documents, relay messages, push bodies).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = umbra_proto::bencode::decode(data) {
        // Canonical input re-encodes to the same bytes.
        assert_eq!(umbra_proto::bencode::encode(&v), data);
    }
    let _ = umbra_proto::rpc::node_req::decode_push_body(data);
    let _ = umbra_proto::swarm::RegistryDocument::parse(data);
});
