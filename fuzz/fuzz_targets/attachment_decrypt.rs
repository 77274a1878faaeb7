//! Untrusted attachment bytes (spec `attachments.md`): legacy CBC+HMAC
//! blobs, deterministic secretstream blobs, chunk manifests, stored chunks
//! and file server URLs/headers. The first input byte picks the path; the
//! MAC-fixing and round-trip paths get past authentication so the padding,
//! framing and truncation checks behind it are fuzzed too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use umbra_crypto::hash::{hmac_sha256, sha256};
use umbra_proto::attachment::{chunked, deterministic, legacy, server};

const LEGACY_KEY: [u8; legacy::KEY_LEN] = [0x5a; legacy::KEY_LEN];
const DET_KEY: [u8; deterministic::KEY_LEN] = [0x3c; deterministic::KEY_LEN];

fn u64_prefix(data: &[u8]) -> (u64, &[u8]) {
    if data.len() < 8 {
        return (0, data);
    }
    let (head, rest) = data.split_at(8);
    (u64::from_le_bytes(head.try_into().unwrap_or([0; 8])), rest)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 7 {
        0 => {
            // Raw blob; the digest matches so only the MAC stands in the way.
            let _ = legacy::decrypt(&LEGACY_KEY, &sha256(rest), rest, None);
            let _ = legacy::decrypt(&rest[..rest.len().min(64)], rest, rest, Some(1));
        }
        1 => {
            // `iv ‖ ct` with a valid MAC and digest appended: reaches the
            // ciphertext length, CBC and PKCS#7 checks and the size cut.
            let (size, body) = u64_prefix(rest);
            let mut blob = body.to_vec();
            let mac = hmac_sha256(&LEGACY_KEY[32..], &blob);
            blob.extend_from_slice(&mac);
            let digest = sha256(&blob);
            let _ = legacy::decrypt(&LEGACY_KEY, &digest, &blob, Some(size));
            let _ = legacy::decrypt(&LEGACY_KEY, &digest, &blob, None);
        }
        2 => {
            let (size, body) = u64_prefix(rest);
            let _ = deterministic::decrypt(&DET_KEY, body, Some(size));
            let _ = deterministic::decrypt(&DET_KEY, rest, None);
        }
        3 => {
            // Round trips: what we encrypt we decrypt unchanged.
            if let Ok((key, enc)) =
                deterministic::encrypt(&[1; 32], deterministic::Domain::Attachment, rest, false)
            {
                let plain = deterministic::decrypt(key.as_slice(), &enc, Some(rest.len() as u64))
                    .expect("own deterministic blob decrypts");
                assert_eq!(plain, rest);
            }
            if let Ok(b) = legacy::encrypt(&LEGACY_KEY, &[2; legacy::IV_LEN], rest) {
                let plain = legacy::decrypt(&LEGACY_KEY, &b.digest, &b.blob, Some(rest.len() as u64))
                    .expect("own legacy blob decrypts");
                assert_eq!(plain, rest);
            }
        }
        4 => {
            let (pointer_size, body) = u64_prefix(rest);
            if let Ok(m) = chunked::ChunkManifest::decode_checked(body, pointer_size) {
                let _ = m.key_array();
                let again = chunked::ChunkManifest::decode_checked(&m.encode(), pointer_size);
                assert!(again.is_ok(), "a decoded manifest re-encodes to a valid one");
            }
            let _ = chunked::ChunkManifest::decode_padded(body, pointer_size);
        }
        5 => {
            let (n, rest) = u64_prefix(rest);
            let (i, stored) = u64_prefix(rest);
            let _ = chunked::chunk_range(n, i);
            let _ = chunked::n_chunks(n.min(chunked::MAX_FILE_SIZE));
            let _ = chunked::decrypt_chunk(&DET_KEY, n, i, stored, &sha256(stored));
        }
        _ => {
            if let Ok(s) = std::str::from_utf8(rest) {
                if let Ok(url) = server::FileUrl::parse(s) {
                    let _ = url.effective_port();
                    let _ = url.deprecated_id();
                }
                let _ = server::parse_ttl(s);
                let _ = server::numeric_id(s);
                let _ = server::is_file_id(s);
            }
        }
    }
});
