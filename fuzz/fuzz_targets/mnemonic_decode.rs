//! Untrusted recovery phrases.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = umbra_proto::mnemonic::decode(s);
        let _ = umbra_proto::mnemonic::AccountSeed::from_phrase(s);
    }
});
