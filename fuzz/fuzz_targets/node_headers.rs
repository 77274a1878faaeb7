//! Untrusted node-request headers (`swarms.md` §8.2): the four
//! `X-Umbra-*` values of `/node/v1/{swarm,push,since,onion}`, parsed and
//! verified against the body, as every node does before looking at it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use umbra_proto::rpc::node_req::NodeRequestAuth;

fuzz_target!(|data: &[u8]| {
    // Four header values separated by newlines, then the body.
    let mut parts = data.splitn(5, |&b| b == b'\n');
    let mut next = || parts.next().and_then(|p| std::str::from_utf8(p).ok());
    let (node, epoch, ts, sig) = (next(), next(), next(), next());
    let body = parts.next().unwrap_or_default();
    if let Ok(auth) = NodeRequestAuth::from_headers(node, epoch, ts, sig) {
        let _ = auth.verify("POST", "/node/v1/push", body, auth.timestamp);
        let _ = auth.headers();
    }
});
