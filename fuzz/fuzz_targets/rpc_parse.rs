//! Untrusted storage RPC request bodies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use umbra_proto::rpc::{Request, Via};

fuzz_target!(|data: &[u8]| {
    let _ = Request::parse_body(data, Via::Direct);
    let _ = Request::parse_body(data, Via::Onion);
});
