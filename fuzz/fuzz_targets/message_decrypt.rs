//! Untrusted stored message bytes: unwrap, unseal, verify, decode Content.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use umbra_proto::identity::AccountKeys;
use umbra_proto::message::{decode_content, decrypt, open_envelope, unwrap_stored};

/// Derived once: deriving the keys per input dominated the run.
static KEYS: LazyLock<AccountKeys> = LazyLock::new(|| AccountKeys::from_seed(&[9; 32]));

fuzz_target!(|data: &[u8]| {
    let keys = &*KEYS;
    let _ = open_envelope(keys, data);
    let _ = decrypt(keys.x25519_secret(), data);
    let _ = unwrap_stored(data);
    let _ = decode_content(data);
});
